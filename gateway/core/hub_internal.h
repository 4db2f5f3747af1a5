/*
 * hub_internal.h — the hub and channel objects, shared by the hub's parts
 * (hub.c, hub_bus.c, sub.c). Private to gateway/core; the contract is
 * include/hub.h.
 *
 * Locks, in the order they may be taken (hub.h has the contract):
 *   hub->lock (rwlock)   the channel map: read to look a channel up, write to
 *                        add one (rt__hub_channel_acquire) or free one (sweep).
 *   channel lock (mutex) everything of one channel: its subscriber index,
 *                        positions, history ring and idempotency keys.
 *   queue lock (mutex)   one subscriber's queue (queue.h); innermost.
 * opts, seed and the interest hook are set before the hub is shared and
 * never change; the counters are atomics, read without a lock.
 */
#ifndef RT__HUB_INTERNAL_H
#define RT__HUB_INTERNAL_H

#include "history.h"
#include "hub.h"
#include "idempotency.h"
#include "map.h"
#include "sub.h"

#include <pthread.h>
#include <stdatomic.h>

struct rt_hub_s {
    rt_hub_opts_t opts;
    pthread_rwlock_t lock;
    rt_map_t channels; /* name → rt__channel_t* */
    uint64_t seed;
    atomic_ullong epoch_counter;
    atomic_ullong subscriptions, publishes, deliveries, replayed, slow_kicks, history_events;
    rt_hub_interest_fn interest; /* set before use; called under a channel lock */
    void *interest_ctx;
};

/* The subscribers of one (channel, topic), or of the channel's "*". */
typedef struct {
    rt_sub_t **v;
    size_t n, cap;
} rt__subvec_t;

/* One channel. Every field is guarded by its lock, but name/nlen (fixed). */
typedef struct rt__channel_s {
    char *name;
    size_t nlen;
    pthread_mutex_t lock;
    rt_map_t topics; /* topic name → rt__subvec_t* */
    rt__subvec_t wildcard;
    size_t nsubs; /* subscription entries in topics + wildcard */
    uint64_t epoch;
    uint64_t last_offset;
    rt__history_t hist;
    int64_t last_activity_ms;
    rt__idem_t idem;
} rt__channel_t;

/* ---- hub.c, for hub_bus.c ---- */

/* The channel, locked (ch->lock held by the caller on return); created when
 * create is set. Takes hub->lock for the lookup only. NULL if absent or OOM. */
rt__channel_t *rt__hub_channel_acquire(rt_hub_t *hub, rt_slice_t name, bool create);
/* The frames of one event: by rt_format_t, then the plain form of an
 * extended-only frame for official clients (rt__history_plain_frame). */
#define RT__FRAME_PLAIN 2
#define RT__NFRAMES 3
/* Keep an event in the ring and enqueue it to the subscribers of its topic
 * (and "*"). Caller holds ch->lock and has set ch->last_offset.
 * frames[RT_FMT_WS] is borrowed; frames[RT_FMT_SSE] and frames[RT__FRAME_PLAIN]
 * (RT__NFRAMES of them) may be built here (the caller unrefs them). Subscribers over their bound
 * are added to kicks. */
void rt__hub_emit_locked(rt__channel_t *ch, rt_frame_t **frames, const rt_pos_t *pos,
                         rt_slice_t topic, bool ext_only, size_t *delivered, rt__kicks_t *kicks);
/* Attach sub to topics of ch (caller holds ch->lock). 0 or RT_E_NOMEM. */
int rt__hub_attach_locked(rt_hub_t *hub, rt_sub_t *sub, rt__channel_t *ch, const rt_slice_t *topics,
                          size_t ntopics);
/* End a subscribe: fill res's position, wake sub if the replay asked,
 * report interest, release ch->lock, count, and kick sub if the replay
 * overflowed its queue. */
void rt__hub_subscribe_finish(rt_hub_t *hub, rt_sub_t *sub, rt__channel_t *ch, size_t before,
                              rt_resume_t *res, const rt__replay_t *rp);

#endif
