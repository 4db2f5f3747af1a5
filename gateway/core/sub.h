/*
 * sub.h — the subscriber: a reference-counted handle that pairs a bounded
 * queue (queue.h) with its owner's sink, plus the subscriber → channels half
 * of the hub's two-way index. Private to gateway/core (hub.c, history.c);
 * the public functions (rt_sub_*) are declared in hub.h.
 *
 * Fields and who may touch them:
 *   hub, fmt, ops, owner   fixed at rt_sub_new.
 *   ext                    set by the owner before its first subscribe.
 *   q                      under q.lock (queue.h).
 *   links, nlinks          the owner's thread only: subscribe, unsubscribe
 *                          and set_topics for one subscriber are never
 *                          concurrent (hub.h). Each link's channel is alive
 *                          while the link exists (a channel with
 *                          subscriptions is never freed).
 * The sink's wake and kick are called with no queue lock held; wake may be
 * called with a channel lock held (hub.h says what the sink may do then).
 */
#ifndef RT__SUB_H
#define RT__SUB_H

#include "hub.h"
#include "queue.h"

#include <stdatomic.h>

struct rt__channel_s; /* hub.c */

/* One (channel, topic) subscription, as seen from the subscriber. */
typedef struct {
    struct rt__channel_s *ch;
    char *topic; /* owned; NULL for "*" */
    size_t tlen;
} rt__link_t;

struct rt_sub_s {
    atomic_uint refs;
    rt_hub_t *hub;
    rt_format_t fmt;
    const rt_sink_ops_t *ops;
    void *owner;
    bool ext;
    rt__queue_t q;
    rt__link_t *links; /* owned, with their topics; freed by the last unref */
    size_t nlinks;
};

/* Tell the owner its queue has work (after a push returned RT__PUSH_WAKE). */
static inline void rt__sub_wake(rt_sub_t *s)
{
    if (s->ops && s->ops->wake)
        s->ops->wake(s->owner, s);
}

/* Push a published (bounded) frame: takes and releases q.lock, wakes the
 * owner if needed. The caller holds the channel lock. OVER means the
 * subscriber is now kicked: the caller runs the kick after its lock. */
rt__push_t rt__sub_push_data(rt_sub_t *s, rt_frame_t *f);

/* Count a slow-consumer kick and tell the owner (RT_REASON_SLOW_CONSUMER).
 * No hub lock may be held. */
void rt__sub_kick(rt_sub_t *s);

/* Does a topic list as given to subscribe ("*" for all) include t? */
bool rt__topics_match(rt_slice_t t, const rt_slice_t *topics, size_t n);

/* Subscribers kicked during one fan-out, kicked after the channel lock is
 * released. Holds a reference of each; 16 fit without allocating. */
typedef struct {
    rt_sub_t **v;
    size_t n, cap;
    rt_sub_t *inline_v[16];
} rt__kicks_t;

void rt__kicks_init(rt__kicks_t *k);
/* Remember s (takes a reference). On OOM s is not remembered: it is marked
 * kicked anyway, and the owner's sweep closes it. */
void rt__kicks_add(rt__kicks_t *k, rt_sub_t *s);
/* Kick every remembered subscriber, drop the references, free the list.
 * No hub lock may be held. */
void rt__kicks_run(rt__kicks_t *k);

#endif
