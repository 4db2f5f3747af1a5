/*
 * history.h — one channel's history: a ring of its recent events, bounded
 * by count (history_max, 0 disables) and by age (history_max_age_ms), from
 * which a subscribe with a position replays what it missed. Private to the
 * hub (hub.c).
 *
 * Lock: a ring belongs to its channel; every function needs the caller to
 * hold that channel's lock. Replay also needs the subscriber's queue lock
 * (the order is channel → queue). Nothing here calls a sink.
 *
 * Ownership: an entry holds one reference of its WebSocket frame (the
 * canonical form, JSON with "id") and, once a replay to SSE built it, of the
 * SSE frame; its topic is a copy. The hub's history_events gauge counts the
 * entries of every ring (rt__history_free leaves it alone: the hub frees
 * rings only when it is itself freed, or when they are empty).
 */
#ifndef RT__HISTORY_H
#define RT__HISTORY_H

#include "event.h"
#include "sub.h"

#include <stdatomic.h>

typedef struct {
    uint64_t offset;
    int64_t ts_ms; /* wall clock when kept: the age bound */
    char *topic;
    size_t tlen;
    bool ext_only;
    rt_frame_t *f[2]; /* per rt_format_t; [RT_FMT_SSE] built on first replay to SSE */
} rt__hist_entry_t;

typedef struct {
    rt__hist_entry_t *v; /* ring of cap slots (grows up to max), count from head */
    size_t head, count, cap;
    size_t max;           /* fixed at init */
    int64_t max_age_ms;   /* fixed at init */
    atomic_ullong *gauge; /* the hub's history_events */
} rt__history_t;

void rt__history_init(rt__history_t *h, size_t max, int64_t max_age_ms, atomic_ullong *gauge);
/* Frees the entries and the ring (the gauge is not adjusted, see above). */
void rt__history_free(rt__history_t *h);

/* Keep an event (ws borrowed: the ring takes its own reference), evicting
 * the oldest when full. Best effort: on OOM the event is not kept, and a
 * later resume across it reports not recovered. */
void rt__history_append(rt__history_t *h, uint64_t offset, rt_slice_t topic, bool ext_only,
                        rt_frame_t *ws);
/* Evict the events older than the age bound at `now` (wall ms). */
void rt__history_expire(rt__history_t *h, int64_t now);
/* Evict everything (the channel's epoch changed). */
void rt__history_clear(rt__history_t *h);

/* The oldest offset kept; `none` when the ring is empty. */
static inline uint64_t rt__history_oldest(const rt__history_t *h, uint64_t none)
{
    return h->count ? h->v[h->head].offset : none;
}

/* Replay into sub's queue the kept events after offset `after` that sub may
 * see (its topics, ext), in order, outside the queue's bounds; epoch is the
 * channel's (for SSE ids). Stops when the queue kicks (acc->kicked). Caller
 * holds the channel lock and sub->q.lock. 0, or RT_E_NOMEM when an SSE frame
 * could not be built (the resume is then not recovered). */
int rt__history_replay_locked(rt__history_t *h, uint64_t epoch, uint64_t after, rt_sub_t *sub,
                              const rt_slice_t *topics, size_t ntopics, rt__replay_t *acc);

/* The SSE record of an event from its WebSocket frame (server frames are
 * unmasked). A new frame (caller unrefs); NULL on OOM. */
rt_frame_t *rt__history_sse_frame(rt_frame_t *ws, uint64_t epoch, uint64_t offset);

/* What an official (not extended) WebSocket client gets of an extended-only
 * frame: a stream's "chunk" frame becomes the same JSON with kind "data"
 * (the official clients show data frames; they drop chunks whose
 * datastream-start they could not handle, docs/protocol.md "Streams to
 * official clients"); any other extended-only frame has no plain form (NULL).
 * A new frame (caller unrefs); NULL also on OOM. */
rt_frame_t *rt__history_plain_frame(const rt_frame_t *ws);

/* The frame sub gets of a frame kept as ws (extended-only or not): ws itself
 * (a new reference), its plain form, or NULL when sub gets nothing of it. */
rt_frame_t *rt__history_frame_for(const rt_sub_t *sub, rt_frame_t *ws, bool ext_only);

#endif
