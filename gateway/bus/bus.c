/*
 * bus.c — what every bus shares: the subscribe order of rt_bus_attach, and
 * releasing a replay. See bus.h.
 */
#include "bus.h"

#include <stdlib.h>

void rt_bus_free(rt_bus_t *bus)
{
    if (bus)
        bus->ops->free(bus);
}

int rt_bus_position(rt_bus_t *bus, rt_slice_t channel, rt_pos_t *out)
{
    return bus->ops->position(bus, channel, out);
}

void rt_backfill_clear(rt_backfill_t *bf)
{
    for (size_t i = 0; i < bf->n; i++)
        rt_frame_unref(bf->v[i].ws);
    free(bf->v); /* topics live in the same block (see redis/entry.c) */
    bf->v = NULL;
    bf->n = 0;
}

int rt_bus_attach(rt_bus_t *bus, rt_sub_t *sub, rt_slice_t channel, const rt_slice_t *topics,
                  size_t ntopics, const rt_pos_t *cands, size_t ncands, rt_resume_t *out)
{
    if (!bus->ops->read_history) {
        int r = rt_hub_subscribe_any(bus->hub, sub, channel, topics, ntopics, cands, ncands, out);
        out->bus_down = false;
        return r;
    }
    /* (1) a confirmed node-level subscription: from here on, every event
     * reaches the hub's ring; the hold is released below, once sub itself
     * keeps the channel wanted (the hub's interest hook). */
    int rc = bus->ops->subscribe_channel ? bus->ops->subscribe_channel(bus, channel) : 0;
    /* (2) the history, with no hub lock held. */
    rt_backfill_t bf = {0};
    if (rc == 0)
        rc = bus->ops->read_history(bus, channel, cands, ncands, &bf);
    if (rc != 0)
        bf = (rt_backfill_t){0}; /* attach without replay: reported as not recovered */
    /* (3) replay, then the ring, then live: under the channel lock. */
    int r =
        rt_hub_subscribe_backfill(bus->hub, sub, channel, topics, ntopics, ncands > 0, &bf, out);
    rt_backfill_clear(&bf);
    if (bus->ops->unsubscribe_channel)
        bus->ops->unsubscribe_channel(bus, channel);
    out->bus_down = rc == RT_E_UNAVAILABLE;
    return r;
}

int rt_bus_attach_live(rt_bus_t *bus, rt_sub_t *sub, rt_slice_t channel, const rt_slice_t *topics,
                       size_t ntopics, bool had_since, rt_resume_t *out)
{
    rt_backfill_t bf = {0};
    int r = rt_hub_subscribe_backfill(bus->hub, sub, channel, topics, ntopics, had_since, &bf, out);
    out->bus_down = bus->ops->waits;
    return r;
}
