/*
 * memory.c — the one-node bus: the hub is the whole bus. Publishing is
 * rt_hub_publish_idem, the history is the hub's ring, positions are the hub's.
 */
#include "bus.h"

#include <stdlib.h>

static int mem_publish(rt_bus_t *bus, const rt_event_t *ev, rt_slice_t idem_key, int64_t now_ms,
                       rt_pos_t *pos, size_t *delivered, bool *dup)
{
    int rc = rt_hub_publish_idem(bus->hub, ev, idem_key, now_ms, pos, delivered, dup);
    /* the hub: -1 out of memory, -2 (RT_E_LIMIT) too many live keys */
    return rc == RT_E_LIMIT ? RT_E_LIMIT : rc < 0 ? RT_E_NOMEM : 0;
}

static int mem_position(rt_bus_t *bus, rt_slice_t channel, rt_pos_t *out)
{
    return rt_hub_position(bus->hub, channel, out) == 0 ? 0 : RT_E_NOMEM;
}

static bool mem_ready(rt_bus_t *bus)
{
    (void)bus;
    return true;
}

static void mem_free(rt_bus_t *bus)
{
    free(bus);
}

static const rt_bus_ops_t mem_ops = {
    .name = "memory",
    .waits = false,
    .publish = mem_publish,
    .subscribe_channel = NULL,
    .unsubscribe_channel = NULL,
    .read_history = NULL,
    .position = mem_position,
    .ready = mem_ready,
    .free = mem_free,
};

rt_bus_t *rt_bus_memory_new(rt_hub_t *hub)
{
    rt_bus_t *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->ops = &mem_ops;
    b->hub = hub;
    return b;
}
