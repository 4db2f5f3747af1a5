/*
 * bus.h — how events travel between publishers and hubs.
 *
 * The API publishes through a bus and sessions subscribe through it; the hub
 * never knows which bus it serves. Two implementations:
 *   memory (memory.c) — one node: the hub assigns positions and keeps the
 *                       history (the embedded default);
 *   redis  (redis/)   — several nodes: a Redis stream per channel holds the
 *                       history and assigns positions, Redis pub/sub carries
 *                       live events to the nodes that have subscribers.
 * Only the files of redis/ include hiredis.
 *
 * Threads: every operation may be called from any thread. publish, read_history,
 * position and subscribe_channel block on network I/O (bounded by the bus's
 * timeout) and must be called with no hub lock held.
 */
#ifndef RT_BUS_H
#define RT_BUS_H

#include "err.h"
#include "event.h"
#include "hub.h"
#include "metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Results of bus operations: 0, or a negative value of err.h:
 *   RT_E_NOMEM        out of memory;
 *   RT_E_LIMIT        too many live idempotency keys on this channel;
 *   RT_E_UNAVAILABLE  the bus (Redis) is unavailable.
 * rt_strerror (err.h) names them. */

typedef struct rt_bus_s rt_bus_t;

typedef struct {
    const char *name; /* "memory" or "redis" */
    /* Whether subscribing may wait on the network (position, subscribe_channel,
     * read_history): who must never wait (the front door's threads) leaves
     * such sessions to a thread that may (fastpath.h). */
    bool waits;
    /* Publish one event: assigns its position (*pos), delivers it to this
     * node's hub (and, for redis, every node's). With an idempotency key, a
     * repeat within the window is not published again: *dup is set and *pos is
     * the original position. *delivered counts local enqueues (redis: 0, the
     * delivery is asynchronous). 0, RT_E_NOMEM, RT_E_LIMIT or RT_E_UNAVAILABLE. */
    int (*publish)(rt_bus_t *bus, const rt_event_t *ev, rt_slice_t idem_key, int64_t now_ms,
                   rt_pos_t *pos, size_t *delivered, bool *dup);
    /* Hold a node-level subscription to channel and wait (bounded) until the
     * bus confirms it: live events published from now on reach this node's
     * hub. Each successful call is paired with unsubscribe_channel. NULL when
     * the bus has nothing to subscribe (memory). 0 or RT_E_UNAVAILABLE (the hold
     * is kept either way, and the subscription is made once the bus is back). */
    int (*subscribe_channel)(rt_bus_t *bus, rt_slice_t channel);
    void (*unsubscribe_channel)(rt_bus_t *bus, rt_slice_t channel);
    /* Read the channel's history after the candidate (the one of the channel's
     * epoch) into *out (free with rt_backfill_clear). NULL when the hub's own
     * history is the history (memory). 0, RT_E_NOMEM or RT_E_UNAVAILABLE. */
    int (*read_history)(rt_bus_t *bus, rt_slice_t channel, const rt_pos_t *cands, size_t ncands,
                        rt_backfill_t *out);
    /* The channel's latest position (fixing its epoch if it had none). 0,
     * RT_E_NOMEM or RT_E_UNAVAILABLE. */
    int (*position)(rt_bus_t *bus, rt_slice_t channel, rt_pos_t *out);
    /* Whether the bus can publish now (for /ready). */
    bool (*ready)(rt_bus_t *bus);
    /* Stop background work and free. */
    void (*free)(rt_bus_t *bus);
} rt_bus_ops_t;

struct rt_bus_s {
    const rt_bus_ops_t *ops;
    rt_hub_t *hub; /* borrowed */
};

/* ---- memory ---- */
/* The one-node bus over hub (borrowed). NULL on OOM. */
rt_bus_t *rt_bus_memory_new(rt_hub_t *hub);

/* ---- redis ---- */
typedef struct {
    char host[256];
    int port;
    int db;
    char user[128];
    char password[512];
    bool tls; /* rediss:// */
} rt_redis_url_t;

/* Parse redis://[[user]:password@]host[:port][/db] (and rediss://). Each
 * problem is one line in err, never quoting the password. 0 or RT_E_INVAL. */
int rt_redis_url_parse(const char *url, rt_redis_url_t *out, char *err, size_t errcap);
/* Whether this build can speak TLS to Redis (hiredis_ssl). */
bool rt_redis_tls_supported(void);
/* rt_redis_url_parse, then refuse what this build cannot do (rediss://
 * without hiredis_ssl) with the one line that says so. 0 or RT_E_INVAL. The
 * caller wipes *out (it may hold a password) when done. */
int rt_redis_url_parse_usable(const char *url, rt_redis_url_t *out, char *err, size_t errcap);

typedef struct {
    const char *url;
    size_t history_max;
    int64_t history_max_age_ms;
    int64_t idem_window_ms;
    int64_t timeout_ms;    /* connect and command timeout */
    int pool;              /* command connections */
    rt_metrics_t *metrics; /* borrowed */
} rt_bus_redis_opts_t;

/* Connect to Redis and start the subscriber thread. An unreachable Redis is
 * not fatal (the bus starts down and keeps retrying); a refused password or
 * a bad URL is: NULL, with one line naming RTGW_REDIS_URL in err (no
 * password in it). Registers itself as hub's interest hook. */
rt_bus_t *rt_bus_redis_new(rt_hub_t *hub, const rt_bus_redis_opts_t *opts, char *err,
                           size_t errcap);

/* ---- generic ---- */
static inline int rt_bus_publish(rt_bus_t *bus, const rt_event_t *ev, rt_slice_t idem_key,
                                 int64_t now_ms, rt_pos_t *pos, size_t *delivered, bool *dup)
{
    return bus->ops->publish(bus, ev, idem_key, now_ms, pos, delivered, dup);
}
static inline bool rt_bus_ready(rt_bus_t *bus)
{
    return bus->ops->ready(bus);
}
static inline const char *rt_bus_name(const rt_bus_t *bus)
{
    return bus->ops->name;
}
void rt_bus_free(rt_bus_t *bus);

/* The channel's latest position through the bus. 0, RT_E_NOMEM or RT_E_UNAVAILABLE. */
int rt_bus_position(rt_bus_t *bus, rt_slice_t channel, rt_pos_t *out);

/* Subscribe sub to topics of channel, resuming from the candidate whose epoch
 * is the channel's, in the order that leaves no gap and no duplicate: (1) the
 * node's subscription to the channel is confirmed, (2) the history after the
 * candidate is read from the bus with no hub lock held, (3) under the
 * channel's lock, that history is replayed, then what the hub received live
 * after it, then sub is attached. When the bus cannot be read, sub is attached
 * without replay (recovered=false if a candidate was given). 0 or RT_E_NOMEM. */
int rt_bus_attach(rt_bus_t *bus, rt_sub_t *sub, rt_slice_t channel, const rt_slice_t *topics,
                  size_t ntopics, const rt_pos_t *cands, size_t ncands, rt_resume_t *out);

/* The same without waiting on the bus: no confirmed node-level subscription
 * first and no history (recovered=false when had_since); live events reach sub
 * once the node's subscription is made (the hub's interest hook). For a
 * session's further channels once one found the bus down (out->bus_down), so
 * that a token for many channels does not wait a timeout for each. 0 or
 * RT_E_NOMEM. */
int rt_bus_attach_live(rt_bus_t *bus, rt_sub_t *sub, rt_slice_t channel, const rt_slice_t *topics,
                       size_t ntopics, bool had_since, rt_resume_t *out);

/* Release what read_history put in bf. */
void rt_backfill_clear(rt_backfill_t *bf);

#endif
