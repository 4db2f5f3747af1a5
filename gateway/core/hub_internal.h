/*
 * hub_internal.h — the hub object, shared by the hub's parts (hub.c, sub.c).
 * Private to gateway/core; the contract is include/hub.h.
 *
 * Locks, in the order they may be taken (hub.h has the contract):
 *   hub->lock (rwlock)   the channel map: read to look a channel up, write to
 *                        add one (hub.c channel_acquire) or free one (sweep).
 *   channel lock (mutex) everything of one channel: its subscriber index,
 *                        positions, history ring and idempotency keys (hub.c).
 *   queue lock (mutex)   one subscriber's queue (queue.h); innermost.
 * opts, seed and the interest hook are set before the hub is shared and
 * never change; the counters are atomics, read without a lock.
 */
#ifndef RT__HUB_INTERNAL_H
#define RT__HUB_INTERNAL_H

#include "hub.h"
#include "map.h"

#include <pthread.h>
#include <stdatomic.h>

struct rt_hub_s {
    rt_hub_opts_t opts;
    pthread_rwlock_t lock;
    rt_map_t channels; /* name → rt__channel_t* (hub.c) */
    uint64_t seed;
    atomic_ullong epoch_counter;
    atomic_ullong subscriptions, publishes, deliveries, replayed, slow_kicks, history_events;
    rt_hub_interest_fn interest; /* set before use; called under a channel lock */
    void *interest_ctx;
};

#endif
