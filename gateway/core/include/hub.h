/*
 * hub.h — the fan-out core: channel/topic → subscribers, per-subscriber
 * bounded queues, and per-channel history for resume. Never includes
 * civetweb; it reaches a connection only through rt_sink_ops_t.
 *
 * Concurrency: any thread may publish, subscribe or unsubscribe. Locks, in
 * order: hub (rwlock over the channel map) → channel (mutex: positions,
 * history, subscriber lists) → subscriber queue (mutex). Publishing only
 * enqueues frame references; nothing here touches a socket. The sink's wake
 * is called with a channel lock held and must only schedule work (no I/O
 * that can block, no call back into the hub); kick is called with no hub lock.
 *
 * Ordering: events of one channel get increasing positions and are enqueued
 * to every subscriber in that order, under the channel lock; a subscribe with
 * `since` replays from history under the same lock, so there is no gap and no
 * duplicate between replay and live.
 *
 * Errors are err.h values (RT_E_NOMEM, RT_E_LIMIT, RT_E_ABSENT).
 *
 * Inside (gateway/core): hub.c channels, the channel ↔ subscriber index and
 * the fan-out; hub_bus.c events positioned by a bus; sub.c the subscriber;
 * queue.c its bounded queue; history.c a channel's ring; idempotency.c a
 * channel's keys.
 */
#ifndef RT_HUB_H
#define RT_HUB_H

#include "err.h"
#include "event.h"
#include "frame.h"
#include "reason.h"
#include "rt_tokens.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_hub_s rt_hub_t;
typedef struct rt_sub_s rt_sub_t;

typedef enum { RT_FMT_WS = 0, RT_FMT_SSE = 1 } rt_format_t;

typedef struct {
    /* The subscriber's queue went from idle to having work. Called with a
     * channel lock held: only schedule the writer; never block. */
    void (*wake)(void *owner, rt_sub_t *sub);
    /* The subscriber went over its queue bound (RT_REASON_SLOW_CONSUMER).
     * Called without hub locks; must close asynchronously, never write. */
    void (*kick)(void *owner, rt_sub_t *sub, rt_reason_t reason);
} rt_sink_ops_t;

typedef struct {
    size_t queue_max_frames;    /* per subscriber; default 4096 */
    size_t queue_max_bytes;     /* per subscriber; default 8 MiB */
    size_t history_max;         /* events kept per channel; default 1000; 0 disables */
    int64_t history_max_age_ms; /* default 300000 (5 min) */
    int64_t idem_window_ms;     /* idempotency keys remembered this long; default 300000 */
    size_t idem_max_keys;       /* live keys per channel; default 100000 */
} rt_hub_opts_t;

void rt_hub_opts_default(rt_hub_opts_t *o);

typedef struct {
    uint64_t channels;       /* live channels (with subscribers or history) */
    uint64_t subscriptions;  /* (subscriber, channel, topic) pairs */
    uint64_t publishes;      /* events published since start */
    uint64_t deliveries;     /* frame references enqueued to subscribers */
    uint64_t replayed;       /* frames replayed from history */
    uint64_t slow_kicks;     /* subscribers disconnected as slow consumers */
    uint64_t history_events; /* events held in history now */
} rt_hub_stats_t;

/* New hub; copies opts. `seed` makes channel epochs unique per process start
 * (pass random bytes). NULL on OOM. */
rt_hub_t *rt_hub_new(const rt_hub_opts_t *opts, uint64_t seed);
/* Frees channels and history. All subscribers must be unsubscribed first. */
void rt_hub_free(rt_hub_t *hub);
void rt_hub_stats(rt_hub_t *hub, rt_hub_stats_t *out);

/* ---- subscribers ---- */
/* New subscriber with one reference for the caller. NULL on OOM. */
rt_sub_t *rt_sub_new(rt_hub_t *hub, rt_format_t fmt, const rt_sink_ops_t *ops, void *owner);
rt_sub_t *rt_sub_ref(rt_sub_t *sub);
/* Mark a subscriber as speaking the extended protocol (receives stream
 * frames). Set before rt_hub_subscribe. */
void rt_sub_set_ext(rt_sub_t *sub, bool ext);
void rt_sub_unref(rt_sub_t *sub);
void *rt_sub_owner(const rt_sub_t *sub);

typedef struct {
    bool recovered; /* since was given and history covered it (or no since) */
    bool had_since;
    rt_pos_t current; /* the channel's latest position (offset 0: none yet) */
    size_t replayed;  /* frames replayed from history */
    bool bus_down;    /* the bus could not be read: attached without replay (bus.h) */
} rt_resume_t;

/* Subscribe sub to `topics` of `channel` ("*" means every topic). When since
 * is non-NULL, replays the events after it (of these topics) into the queue
 * first. Idempotent for a (channel, topic) already held. 0 or RT_E_NOMEM. */
int rt_hub_subscribe(rt_hub_t *hub, rt_sub_t *sub, rt_slice_t channel, const rt_slice_t *topics,
                     size_t ntopics, const rt_pos_t *since, rt_resume_t *out);

/* Like rt_hub_subscribe, with candidate positions: the one whose epoch is
 * this channel's is used (positions carry their channel's random epoch, so a
 * client can send one per channel without naming channels). When candidates
 * are given and none matches, the result is recovered=false. */
int rt_hub_subscribe_any(rt_hub_t *hub, rt_sub_t *sub, rt_slice_t channel, const rt_slice_t *topics,
                         size_t ntopics, const rt_pos_t *cands, size_t ncands, rt_resume_t *out);

/* The channel's latest position (creating the channel, so its epoch is fixed
 * from now on). A session takes it before the WebSocket handshake and resumes
 * from it after, so nothing published in between is missed. 0 or RT_E_NOMEM. */
int rt_hub_position(rt_hub_t *hub, rt_slice_t channel, rt_pos_t *out);

/* ---- an external bus (several nodes) ----
 * With a bus such as Redis, positions are assigned by the bus, not the hub:
 * the hub then caches recent events per channel (its ring), fans them out, and
 * joins a replay read from the bus with the live stream. */

/* Called when a channel gets its first subscription (active=true) or loses its
 * last (false). Runs with that channel's lock held, in the order the changes
 * happen: it must only record or schedule (no blocking I/O, no hub calls). */
typedef void (*rt_hub_interest_fn)(void *ctx, rt_slice_t channel, bool active);
/* Set before any subscribe; fn NULL removes it. */
void rt_hub_set_interest_hook(rt_hub_t *hub, rt_hub_interest_fn fn, void *ctx);

/* One event with a position assigned elsewhere. ws is its WebSocket frame
 * (JSON with "id"), borrowed: the hub takes references of its own. */
typedef struct {
    uint64_t offset;
    rt_slice_t topic;
    bool ext_only;
    rt_frame_t *ws;
} rt_hub_entry_t;

/* A replay read from the bus for one channel (see rt_hub_subscribe_backfill). */
typedef struct {
    uint64_t epoch;       /* the channel's epoch on the bus (0: unknown) */
    bool matched;         /* a candidate position had this epoch */
    uint64_t since;       /* that candidate's offset */
    bool covered;         /* the bus still holds every event after `since` */
    uint64_t last_offset; /* the bus's latest offset of this epoch (0: none) */
    rt_hub_entry_t *v;    /* events after `since`, in order (only when covered) */
    size_t n;
} rt_backfill_t;

/* Deliver an event positioned by the bus: the channel's epoch follows the
 * event's (a new epoch clears the ring), an offset at or below the channel's
 * last delivered one is dropped (a duplicate), anything else is kept in the
 * ring and enqueued to the subscribers of its topic. Creates the channel.
 * Returns 0 (delivered count in *delivered), 1 dropped, or RT_E_NOMEM. */
int rt_hub_deliver(rt_hub_t *hub, rt_slice_t channel, uint64_t epoch, const rt_hub_entry_t *e,
                   size_t *delivered);

/* Subscribe with a replay read from the bus, joined to the live stream under
 * the channel lock: bf's events newer than the channel's last delivered one
 * are first delivered to the channel (so its current subscribers get them
 * too), then sub gets bf's events after bf->since, then the ring's events
 * after bf's last one (received live since the read), then is attached.
 * recovered is false when a candidate was given and none matched bf->epoch
 * or the bus no longer covered it. 0 or RT_E_NOMEM. */
int rt_hub_subscribe_backfill(rt_hub_t *hub, rt_sub_t *sub, rt_slice_t channel,
                              const rt_slice_t *topics, size_t ntopics, bool had_since,
                              const rt_backfill_t *bf, rt_resume_t *out);

/* The channel's last delivered position; 0, or RT_E_ABSENT if the hub has no
 * such channel. */
int rt_hub_last(rt_hub_t *hub, rt_slice_t channel, rt_pos_t *out);

/* Remove one (channel, topic) subscription of sub ("*" for the wildcard).
 * Used when a refreshed token narrows the grant. Idempotent. */
void rt_hub_unsubscribe(rt_hub_t *hub, rt_sub_t *sub, rt_slice_t channel, rt_slice_t topic);

/* Replace sub's topics on `channel` with `topics` (possibly none) atomically
 * with respect to publishes on that channel: no event is lost or doubled in
 * between. Used when a refreshed token narrows the grant. 0 or RT_E_NOMEM. */
int rt_hub_set_topics(rt_hub_t *hub, rt_sub_t *sub, rt_slice_t channel, const rt_slice_t *topics,
                      size_t ntopics);

/* Remove every subscription of sub; afterwards nothing more is enqueued and
 * the queue is emptied. Idempotent. */
void rt_hub_unsubscribe_all(rt_hub_t *hub, rt_sub_t *sub);

/* Publish one event: assigns the next position of its channel, encodes it
 * once, keeps it in history and enqueues a reference to every subscriber of
 * (channel, topic) and (channel, "*"). Returns 0 (pos and delivered filled),
 * or RT_E_NOMEM. */
int rt_hub_publish(rt_hub_t *hub, const rt_event_t *ev, rt_pos_t *pos, size_t *delivered);

/* Publish with an idempotency key (may be empty: then like rt_hub_publish).
 * A key already used for the same (channel, topic) within the window is not
 * published again: *duplicate is set and *pos is the original position.
 * Returns 0, RT_E_NOMEM, or RT_E_LIMIT when the channel holds idem_max_keys
 * live keys (RT_E_LIMIT is -2, RT_E_NOMEM -1: the values callers map). */
int rt_hub_publish_idem(rt_hub_t *hub, const rt_event_t *ev, rt_slice_t idem_key, int64_t now_ms,
                        rt_pos_t *pos, size_t *delivered, bool *duplicate);

/* Evict history older than the age bound and free idle empty channels. */
void rt_hub_sweep(rt_hub_t *hub, int64_t now_ms);

/* ---- the queue, for the sink's owner (one consumer thread at a time) ---- */
/* Pop up to max frames (references move to the caller). Returns the count;
 * when it returns 0 the subscriber is idle again and the next enqueue wakes. */
size_t rt_sub_pop(rt_sub_t *sub, rt_frame_t **out, size_t max);
/* Enqueue a control frame (ping, pong, ack, close) ahead of nothing: it goes
 * at the tail, outside the data bounds. Takes a reference of its own. Returns
 * 0, or -1 if the subscriber is closed. */
int rt_sub_push(rt_sub_t *sub, rt_frame_t *f);
/* Put a control frame at the head of the queue (e.g. the subscription ack,
 * ahead of replayed events). Same rules as rt_sub_push. */
int rt_sub_push_front(rt_sub_t *sub, rt_frame_t *f);
/* Stop accepting frames and drop what is queued (owner is closing it). */
void rt_sub_close(rt_sub_t *sub);
/* Frames and bytes queued now. */
void rt_sub_queue_size(rt_sub_t *sub, size_t *frames, size_t *bytes);

#endif
