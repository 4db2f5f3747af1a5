/*
 * sub.c — the subscriber handle and the sink side of its queue; see sub.h
 * for who may touch which field, queue.h for the queue's rules.
 *
 * Threads: rt_sub_pop/close/queue_size are for the owner's writer (one
 * consumer at a time); rt_sub_push/push_front and rt__sub_push_data may come
 * from any thread. Each takes only the subscriber's queue lock, and calls
 * the sink after releasing it. The last rt_sub_unref frees the queue and the
 * links; the hub must have been left (rt_hub_unsubscribe_all) before.
 */
#include "sub.h"

#include "hub_internal.h"

#include <stdlib.h>
#include <string.h>

/* hub.h's contract for a push the queue refuses (closed, kicked, or, for
 * push_front, no memory to grow): -1, pinned by test_hub. It predates
 * err.h; RT_E_CLOSED would name it, but changing the value changes the
 * public contract. */
#define RT__SUB_REFUSED (-1)

rt_sub_t *rt_sub_new(rt_hub_t *hub, rt_format_t fmt, const rt_sink_ops_t *ops, void *owner)
{
    rt_sub_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    atomic_init(&s->refs, 1);
    s->hub = hub;
    s->fmt = fmt;
    s->ops = ops;
    s->owner = owner;
    rt__queue_init(&s->q, hub->opts.queue_max_frames, hub->opts.queue_max_bytes);
    return s;
}

rt_sub_t *rt_sub_ref(rt_sub_t *s)
{
    atomic_fetch_add(&s->refs, 1);
    return s;
}

void rt_sub_unref(rt_sub_t *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    rt__queue_destroy(&s->q);
    for (size_t i = 0; i < s->nlinks; i++)
        free(s->links[i].topic);
    free(s->links);
    free(s);
}

void rt_sub_set_ext(rt_sub_t *s, bool ext)
{
    s->ext = ext;
}

void *rt_sub_owner(const rt_sub_t *s)
{
    return s->owner;
}

/* ---- the queue, for the sink's owner ---- */

int rt_sub_push(rt_sub_t *s, rt_frame_t *f)
{
    pthread_mutex_lock(&s->q.lock);
    rt__push_t r = rt__queue_push_locked(&s->q, f, false);
    pthread_mutex_unlock(&s->q.lock);
    if (r == RT__PUSH_WAKE)
        rt__sub_wake(s);
    return r == RT__PUSH_CLOSED ? RT__SUB_REFUSED : 0;
}

int rt_sub_push_front(rt_sub_t *s, rt_frame_t *f)
{
    pthread_mutex_lock(&s->q.lock);
    rt__push_t r = rt__queue_push_front_locked(&s->q, f);
    pthread_mutex_unlock(&s->q.lock);
    if (r == RT__PUSH_WAKE)
        rt__sub_wake(s);
    return r == RT__PUSH_CLOSED || r == RT__PUSH_OVER ? RT__SUB_REFUSED : 0;
}

size_t rt_sub_pop(rt_sub_t *s, rt_frame_t **out, size_t max)
{
    pthread_mutex_lock(&s->q.lock);
    size_t n = rt__queue_pop_locked(&s->q, out, max);
    pthread_mutex_unlock(&s->q.lock);
    return n;
}

void rt_sub_close(rt_sub_t *s)
{
    pthread_mutex_lock(&s->q.lock);
    s->q.closed = true;
    rt__queue_drop_locked(&s->q);
    pthread_mutex_unlock(&s->q.lock);
}

void rt_sub_queue_size(rt_sub_t *s, size_t *frames, size_t *bytes)
{
    pthread_mutex_lock(&s->q.lock);
    if (frames)
        *frames = s->q.count;
    if (bytes)
        *bytes = s->q.bytes;
    pthread_mutex_unlock(&s->q.lock);
}

/* ---- for the hub ---- */

rt__push_t rt__sub_push_data(rt_sub_t *s, rt_frame_t *f)
{
    pthread_mutex_lock(&s->q.lock);
    rt__push_t r = rt__queue_push_locked(&s->q, f, true);
    pthread_mutex_unlock(&s->q.lock);
    if (r == RT__PUSH_WAKE)
        rt__sub_wake(s);
    return r;
}

void rt__sub_kick(rt_sub_t *s)
{
    atomic_fetch_add(&s->hub->slow_kicks, 1);
    if (s->ops && s->ops->kick)
        s->ops->kick(s->owner, s, RT_REASON_SLOW_CONSUMER);
}

bool rt__topics_match(rt_slice_t t, const rt_slice_t *topics, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (topics[i].len == 1 && topics[i].base[0] == '*')
            return true;
        if (topics[i].len == t.len && memcmp(topics[i].base, t.base, t.len) == 0)
            return true;
    }
    return false;
}

/* ---- slow-consumer kicks, after the channel lock ---- */

void rt__kicks_init(rt__kicks_t *k)
{
    k->v = k->inline_v;
    k->n = 0;
    k->cap = sizeof(k->inline_v) / sizeof(k->inline_v[0]);
}

void rt__kicks_add(rt__kicks_t *k, rt_sub_t *s)
{
    if (k->n == k->cap) {
        size_t nc = k->cap * 2;
        rt_sub_t **nv = malloc(nc * sizeof(*nv));
        if (!nv)
            return; /* marked kicked anyway; the owner's sweep closes it */
        memcpy(nv, k->v, k->n * sizeof(*nv));
        if (k->v != k->inline_v)
            free(k->v);
        k->v = nv;
        k->cap = nc;
    }
    k->v[k->n++] = rt_sub_ref(s);
}

void rt__kicks_run(rt__kicks_t *k)
{
    for (size_t i = 0; i < k->n; i++) {
        rt__sub_kick(k->v[i]);
        rt_sub_unref(k->v[i]);
    }
    if (k->v != k->inline_v)
        free(k->v);
}
