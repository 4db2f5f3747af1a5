/*
 * queue.c — the per-subscriber bounded queue; see queue.h for its contract
 * (q->lock protects it; the caller holds it for every _locked function).
 * Any thread that holds the lock may call in; nothing here blocks, takes
 * another lock or calls a sink.
 */
#include "queue.h"

#include <stdlib.h>

void rt__queue_init(rt__queue_t *q, size_t max_frames, size_t max_bytes)
{
    *q = (rt__queue_t){.max_frames = max_frames, .max_bytes = max_bytes};
    pthread_mutex_init(&q->lock, NULL);
}

void rt__queue_drop_locked(rt__queue_t *q)
{
    for (size_t i = 0; i < q->count; i++)
        rt_frame_unref(q->v[(q->head + i) % q->cap]);
    q->head = q->count = q->bytes = 0;
    q->rq_frames = q->rq_bytes = 0;
}

void rt__queue_destroy(rt__queue_t *q)
{
    rt__queue_drop_locked(q);
    free(q->v);
    q->v = NULL;
    pthread_mutex_destroy(&q->lock);
}

static int queue_grow(rt__queue_t *q)
{
    size_t nc = q->cap ? q->cap * 2 : 16;
    rt_frame_t **nv = malloc(nc * sizeof(*nv));
    if (!nv)
        return -1;
    for (size_t i = 0; i < q->count; i++)
        nv[i] = q->v[(q->head + i) % q->cap];
    free(q->v);
    q->v = nv;
    q->cap = nc;
    q->head = 0;
    return 0;
}

/* A stored frame: the owner needs waking unless it already is. */
static rt__push_t stored(rt__queue_t *q)
{
    if (!q->scheduled) {
        q->scheduled = true;
        return RT__PUSH_WAKE;
    }
    return RT__PUSH_OK;
}

/* Over a bound (or out of memory): kicked, and what is queued is dropped. */
static rt__push_t over(rt__queue_t *q)
{
    q->kicked = true;
    rt__queue_drop_locked(q);
    return RT__PUSH_OVER;
}

rt__push_t rt__queue_push_locked(rt__queue_t *q, rt_frame_t *f, bool bounded)
{
    if (q->closed || q->kicked)
        return RT__PUSH_CLOSED;
    if (bounded && (q->count - q->rq_frames + 1 > q->max_frames ||
                    q->bytes - q->rq_bytes + f->len > q->max_bytes))
        return over(q);
    if (q->count == q->cap && queue_grow(q) != 0)
        return over(q); /* cannot hold it: treat like a full queue, never lose silently */
    q->v[(q->head + q->count) % q->cap] = rt_frame_ref(f);
    q->count++;
    q->bytes += f->len;
    return stored(q);
}

rt__push_t rt__queue_push_front_locked(rt__queue_t *q, rt_frame_t *f)
{
    if (q->closed || q->kicked)
        return RT__PUSH_CLOSED;
    if (q->count == q->cap && queue_grow(q) != 0)
        return RT__PUSH_OVER; /* not kicked: the caller reports out of memory */
    q->head = (q->head + q->cap - 1) % q->cap;
    q->v[q->head] = rt_frame_ref(f);
    q->count++;
    q->bytes += f->len;
    return stored(q);
}

void rt__queue_replay_locked(rt__queue_t *q, rt_frame_t *f, rt__replay_t *acc)
{
    rt__push_t r = rt__queue_push_locked(q, f, false);
    if (r == RT__PUSH_OVER) {
        acc->kicked = true;
    } else if (r != RT__PUSH_CLOSED) {
        acc->pushed++;
        q->rq_frames++;
        q->rq_bytes += f->len;
    }
    acc->wake |= r == RT__PUSH_WAKE;
}

size_t rt__queue_pop_locked(rt__queue_t *q, rt_frame_t **out, size_t max)
{
    size_t n = 0;
    while (n < max && q->count) {
        rt_frame_t *f = q->v[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        q->bytes -= f->len;
        if (q->rq_frames) { /* replayed frames sit at the head (after the ack) */
            q->rq_frames--;
            q->rq_bytes -= f->len < q->rq_bytes ? f->len : q->rq_bytes;
        }
        out[n++] = f;
    }
    if (n == 0)
        q->scheduled = false;
    return n;
}
