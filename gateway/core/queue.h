/*
 * queue.h — the per-subscriber bounded queue: a ring of frame references,
 * bounded by frames and by bytes. Private to the hub (sub.c, hub.c,
 * history.c); the contract the sink sees is rt_sub_pop/push/close in hub.h.
 *
 * Lock: q->lock protects every field below it. Functions named _locked need
 * the caller to hold it; the lock is the innermost of the hub's (hub →
 * channel → queue), so nothing here takes another lock or calls out.
 *
 * Bounds: data frames (publishes, rt__queue_push_locked bounded=true) count
 * against max_frames/max_bytes. Going over marks the queue kicked and drops
 * what it holds: the slow consumer is closed by its owner, never here.
 * Control frames and replayed frames are outside the bounds (replayed ones
 * are shared history references, bounded by the history's own size).
 *
 * Ownership: the queue holds one reference of each frame it stores; pop moves
 * those references to the caller. No allocation but the ring's growth.
 */
#ifndef RT__QUEUE_H
#define RT__QUEUE_H

#include "frame.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    pthread_mutex_t lock;
    rt_frame_t **v; /* ring of cap slots, count from head */
    size_t head, count, cap, bytes;
    /* Replayed frames still queued: exempt from the data bounds, so a
     * subscriber kicked as slow can always resume, even when its gap exceeds
     * the queue. They sit at the head (after a pushed-front ack). */
    size_t rq_frames, rq_bytes;
    size_t max_frames, max_bytes; /* fixed at init */
    bool scheduled;               /* the owner has been woken and has not yet drained it */
    bool kicked;                  /* went over a bound: accepts nothing more */
    bool closed;                  /* the owner closed it: accepts nothing more */
} rt__queue_t;

/* What a push did: stored (and the owner was already scheduled), stored and
 * the owner must be woken, over a bound (now kicked), or refused (closed or
 * kicked before). */
typedef enum {
    RT__PUSH_OK = 0,
    RT__PUSH_WAKE = 1,
    RT__PUSH_OVER = 2,
    RT__PUSH_CLOSED = 3
} rt__push_t;

/* What a replay did to one queue, accumulated over its frames. */
typedef struct {
    size_t pushed; /* replayed frames stored */
    bool wake;     /* one of them needs the owner woken */
    bool kicked;   /* the queue could not hold one (stop replaying) */
} rt__replay_t;

void rt__queue_init(rt__queue_t *q, size_t max_frames, size_t max_bytes);
/* Drops the frames, frees the ring and destroys the lock. No one else may
 * hold a pointer to q. */
void rt__queue_destroy(rt__queue_t *q);

/* Append f at the tail (a reference of its own). bounded: a data frame,
 * subject to the bounds. Growth failure counts as over: never lose silently. */
rt__push_t rt__queue_push_locked(rt__queue_t *q, rt_frame_t *f, bool bounded);
/* Put f at the head, outside the bounds. OVER means the ring could not grow. */
rt__push_t rt__queue_push_front_locked(rt__queue_t *q, rt_frame_t *f);
/* Append a replayed frame (outside the bounds, counted as replayed). */
void rt__queue_replay_locked(rt__queue_t *q, rt_frame_t *f, rt__replay_t *acc);
/* Pop up to max frames into out (references move). Popping none clears
 * `scheduled`, so the next push wakes the owner again. */
size_t rt__queue_pop_locked(rt__queue_t *q, rt_frame_t **out, size_t max);
/* Unref every frame held; the queue stays usable (and its flags unchanged). */
void rt__queue_drop_locked(rt__queue_t *q);

#endif
