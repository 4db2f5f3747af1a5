/*
 * hub.c — the fan-out core: channels, the two-way channel ↔ subscriber
 * index, publish and subscribe. See hub.h for the contract. Its other parts:
 * hub_bus.c (events positioned by an external bus), sub.c (the subscriber
 * handle), queue.c (its bounded queue), history.c (a channel's ring),
 * idempotency.c (a channel's keys); hub_internal.h has the hub and channel
 * objects and the lock order.
 *
 * Locks (order hub → channel → queue; any thread may call in):
 * - hub->lock guards the channel map: read to find a channel, write to add
 *   one or (sweep) free one. rt__hub_channel_acquire returns a channel
 *   locked; it stays alive while locked: the sweep takes its lock before
 *   freeing it.
 * - ch->lock guards everything in rt__channel_t. Functions named _locked
 *   need it held. A subscriber's links are touched only by its owner.
 * - The queue lock is taken inside the channel lock to enqueue (sub.c,
 *   history.c) and never held across a call out.
 * The sink's wake may run under a channel lock; its kick runs after every
 * hub lock is released, from a list collected during the fan-out.
 *
 * Design notes:
 * - One channel = one mutex. A publish holds it while it assigns the position,
 *   appends to history and pushes a frame pointer onto each subscriber's queue;
 *   that is O(subscribers) pointer pushes and no I/O, so the lock is short and
 *   per-channel order is identical for every subscriber.
 * - The frame is encoded once per format that has subscribers (WebSocket
 *   always, for history; SSE lazily) and shared by reference.
 * - A subscriber over its queue bound is marked kicked under its queue lock
 *   (no more frames are accepted) and the sink's kick runs after the channel
 *   lock is released: closing happens asynchronously in the owner, never here.
 * - Subscriber → channels links make unsubscribe cost only that subscriber's
 *   subscriptions (as in redis pub/sub); an empty channel with no history is
 *   freed by the sweep.
 */
#include "hub.h"

#include "clock.h"
#include "err.h"
#include "hub_internal.h"

#include <stdlib.h>
#include <string.h>

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void rt_hub_opts_default(rt_hub_opts_t *o)
{
    o->queue_max_frames = 4096;
    o->queue_max_bytes = 8u << 20;
    o->history_max = 1000;
    o->history_max_age_ms = 300000;
    o->idem_window_ms = 300000;
    o->idem_max_keys = 100000;
}

rt_hub_t *rt_hub_new(const rt_hub_opts_t *opts, uint64_t seed)
{
    rt_hub_t *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    if (opts)
        h->opts = *opts;
    else
        rt_hub_opts_default(&h->opts);
    pthread_rwlock_init(&h->lock, NULL);
    rt_map_init(&h->channels);
    h->seed = seed;
    return h;
}

static void subvec_free(rt__subvec_t *v)
{
    free(v->v);
    v->v = NULL;
    v->n = v->cap = 0;
}

static void channel_free(rt__channel_t *ch)
{
    RT_MAP_FOREACH(&ch->topics, e)
    {
        subvec_free(e->value);
        free(e->value);
    }
    rt_map_clear(&ch->topics);
    subvec_free(&ch->wildcard);
    rt__idem_free(&ch->idem);
    rt__history_free(&ch->hist);
    pthread_mutex_destroy(&ch->lock);
    free(ch->name);
    free(ch);
}

void rt_hub_free(rt_hub_t *hub)
{
    if (!hub)
        return;
    RT_MAP_FOREACH(&hub->channels, e)
    channel_free(e->value);
    rt_map_clear(&hub->channels);
    pthread_rwlock_destroy(&hub->lock);
    free(hub);
}

void rt_hub_stats(rt_hub_t *hub, rt_hub_stats_t *out)
{
    pthread_rwlock_rdlock(&hub->lock);
    out->channels = hub->channels.count;
    pthread_rwlock_unlock(&hub->lock);
    out->subscriptions = atomic_load(&hub->subscriptions);
    out->publishes = atomic_load(&hub->publishes);
    out->deliveries = atomic_load(&hub->deliveries);
    out->replayed = atomic_load(&hub->replayed);
    out->slow_kicks = atomic_load(&hub->slow_kicks);
    out->history_events = atomic_load(&hub->history_events);
}

/* ---- channels ---- */

static rt__channel_t *channel_new(rt_hub_t *hub, rt_slice_t name)
{
    rt__channel_t *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return NULL;
    ch->name = malloc(name.len + 1);
    if (!ch->name) {
        free(ch);
        return NULL;
    }
    memcpy(ch->name, name.base, name.len);
    ch->name[name.len] = 0;
    ch->nlen = name.len;
    pthread_mutex_init(&ch->lock, NULL);
    rt_map_init(&ch->topics);
    rt__idem_init(&ch->idem);
    rt__history_init(&ch->hist, hub->opts.history_max, hub->opts.history_max_age_ms,
                     &hub->history_events);
    /* A new channel object means any earlier history is gone: new epoch. */
    ch->epoch = mix64(hub->seed ^ mix64(atomic_fetch_add(&hub->epoch_counter, 1) + 1)) >> 16;
    if (ch->epoch == 0)
        ch->epoch = 1;
    ch->last_activity_ms = rt_clock_wall_ms();
    return ch;
}

rt__channel_t *rt__hub_channel_acquire(rt_hub_t *hub, rt_slice_t name, bool create)
{
    pthread_rwlock_rdlock(&hub->lock);
    rt__channel_t *ch = rt_map_get(&hub->channels, name.base, name.len);
    if (ch) {
        pthread_mutex_lock(&ch->lock);
        pthread_rwlock_unlock(&hub->lock);
        return ch;
    }
    pthread_rwlock_unlock(&hub->lock);
    if (!create)
        return NULL;
    pthread_rwlock_wrlock(&hub->lock);
    ch = rt_map_get(&hub->channels, name.base, name.len);
    if (!ch) {
        ch = channel_new(hub, name);
        if (ch && rt_map_put(&hub->channels, name.base, name.len, ch) != 0) {
            channel_free(ch);
            ch = NULL;
        }
    }
    if (ch)
        pthread_mutex_lock(&ch->lock);
    pthread_rwlock_unlock(&hub->lock);
    return ch;
}

void rt_hub_set_interest_hook(rt_hub_t *hub, rt_hub_interest_fn fn, void *ctx)
{
    hub->interest = fn;
    hub->interest_ctx = ctx;
}

/* Report a change between "has subscriptions" and "has none" since `before`
 * (ch->nsubs when the caller took the lock). Caller holds ch->lock, so the
 * reports of one channel reach the hook in order. Comparing only at the end
 * of a locked section keeps a remove-then-re-add (set_topics) silent. */
static void interest_locked(rt_hub_t *hub, rt__channel_t *ch, size_t before)
{
    bool had = before > 0, has = ch->nsubs > 0;
    if (had != has && hub->interest)
        hub->interest(hub->interest_ctx, (rt_slice_t){ch->name, ch->nlen}, has);
}

int rt_hub_position(rt_hub_t *hub, rt_slice_t channel, rt_pos_t *out)
{
    rt__channel_t *ch = rt__hub_channel_acquire(hub, channel, true);
    if (!ch)
        return RT_E_NOMEM;
    out->epoch = ch->epoch;
    out->offset = ch->last_offset;
    ch->last_activity_ms = rt_clock_wall_ms();
    pthread_mutex_unlock(&ch->lock);
    return 0;
}

/* ---- the index: channel → subscribers (subvec), subscriber → links ---- */

/* Append s. The caller knows s is not in v yet: v holds s exactly when s has
 * the link (sub_has_link), so no scan of v (a scan made each attach to a
 * channel of n subscribers cost O(n): 3.7% of a front-door thread's time with
 * 16,000 subscribers on one channel, benchmarks.md §3). */
static int subvec_add(rt__subvec_t *v, rt_sub_t *s)
{
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 4;
        rt_sub_t **nv = realloc(v->v, nc * sizeof(*nv));
        if (!nv)
            return -1;
        v->v = nv;
        v->cap = nc;
    }
    v->v[v->n++] = s;
    return 0;
}

static bool subvec_del(rt__subvec_t *v, rt_sub_t *s)
{
    for (size_t i = 0; i < v->n; i++) {
        if (v->v[i] == s) {
            /* Keep order: delivery order across subscribers does not matter,
             * but a stable order keeps fan-out cache-friendly. */
            memmove(&v->v[i], &v->v[i + 1], (v->n - i - 1) * sizeof(*v->v));
            v->n--;
            return true;
        }
    }
    return false;
}

/* The subscriber list a topic's events go to; created when create is set.
 * NULL if absent or OOM. Caller holds ch->lock. */
static rt__subvec_t *topic_subs_locked(rt__channel_t *ch, rt_slice_t t, bool create)
{
    if (t.len == 1 && t.base[0] == '*')
        return &ch->wildcard;
    rt__subvec_t *v = rt_map_get(&ch->topics, t.base, t.len);
    if (v || !create)
        return v;
    v = calloc(1, sizeof(*v));
    if (!v || rt_map_put(&ch->topics, t.base, t.len, v) != 0) {
        free(v);
        return NULL;
    }
    return v;
}

static bool sub_has_link(rt_sub_t *s, rt__channel_t *ch, rt_slice_t topic)
{
    for (size_t i = 0; i < s->nlinks; i++) {
        rt__link_t *l = &s->links[i];
        if (l->ch != ch)
            continue;
        if (!l->topic)
            return true; /* "*" covers everything */
        if (l->tlen == topic.len && memcmp(l->topic, topic.base, topic.len) == 0)
            return true;
    }
    return false;
}

static bool link_is(const rt__link_t *l, rt_slice_t channel)
{
    return l->ch->nlen == channel.len && memcmp(l->ch->name, channel.base, channel.len) == 0;
}

/* Take sub out of the channel's list for link l (the link itself stays);
 * an exact topic's emptied list is freed. Caller holds l->ch->lock. */
static void index_del_locked(rt_hub_t *hub, rt_sub_t *sub, const rt__link_t *l)
{
    rt__channel_t *ch = l->ch;
    rt__subvec_t *v = l->topic ? rt_map_get(&ch->topics, l->topic, l->tlen) : &ch->wildcard;
    if (v && subvec_del(v, sub)) {
        ch->nsubs--;
        atomic_fetch_sub(&hub->subscriptions, 1);
        if (l->topic && v->n == 0) {
            rt_map_del(&ch->topics, l->topic, l->tlen);
            subvec_free(v);
            free(v);
        }
    }
}

/* Remove link i of sub; caller holds its channel's lock. */
static void link_remove_locked(rt_hub_t *hub, rt_sub_t *sub, size_t i)
{
    rt__link_t *l = &sub->links[i];
    index_del_locked(hub, sub, l);
    free(l->topic);
    sub->links[i] = sub->links[--sub->nlinks];
}

/* "*" covers every topic of the channel: the exact links it supersedes are
 * removed, or each of their events would be enqueued twice (once per list).
 * Caller holds ch->lock. */
static void drop_exact_links_locked(rt_hub_t *hub, rt_sub_t *sub, rt__channel_t *ch)
{
    for (size_t k = sub->nlinks; k-- > 0;)
        if (sub->links[k].ch == ch && sub->links[k].topic)
            link_remove_locked(hub, sub, k);
}

/* Make room for the link (ch, t) at the end of sub's links, with a copy of
 * the topic (none for "*"). It counts only once the caller commits it
 * (sub->nlinks++). NULL on OOM. */
static rt__link_t *link_reserve(rt_sub_t *sub, rt__channel_t *ch, rt_slice_t t, bool wild)
{
    rt__link_t *nl = realloc(sub->links, (sub->nlinks + 1) * sizeof(*nl));
    if (!nl)
        return NULL;
    sub->links = nl;
    rt__link_t *l = &sub->links[sub->nlinks];
    l->ch = ch;
    l->topic = NULL;
    l->tlen = 0;
    if (!wild) {
        l->topic = malloc(t.len + 1);
        if (!l->topic)
            return NULL;
        memcpy(l->topic, t.base, t.len);
        l->topic[t.len] = 0;
        l->tlen = t.len;
    }
    return l;
}

int rt__hub_attach_locked(rt_hub_t *hub, rt_sub_t *sub, rt__channel_t *ch, const rt_slice_t *topics,
                          size_t ntopics)
{
    for (size_t i = 0; i < ntopics; i++) {
        rt_slice_t t = topics[i];
        bool wild = t.len == 1 && t.base[0] == '*';
        if (sub_has_link(sub, ch, t))
            continue;
        if (wild)
            drop_exact_links_locked(hub, sub, ch);
        rt__subvec_t *v = topic_subs_locked(ch, t, true);
        if (!v)
            return RT_E_NOMEM;
        rt__link_t *l = link_reserve(sub, ch, t, wild);
        if (!l)
            return RT_E_NOMEM;
        if (subvec_add(v, sub) < 0) {
            free(l->topic);
            return RT_E_NOMEM;
        }
        sub->nlinks++;
        ch->nsubs++;
        atomic_fetch_add(&hub->subscriptions, 1);
    }
    return 0;
}

/* ---- publish: fan-out ---- */

/* The frame subscriber s gets of this event (borrowed from frames, built on
 * first use), or NULL: an extended-only frame reaches an official client in
 * its plain form, if it has one. */
static rt_frame_t *frame_for(rt_sub_t *s, rt_frame_t **frames, const rt_pos_t *pos, bool ext_only)
{
    if (ext_only && !s->ext) {
        if (s->fmt != RT_FMT_WS)
            return NULL;
        if (!frames[RT__FRAME_PLAIN])
            frames[RT__FRAME_PLAIN] = rt__history_plain_frame(frames[RT_FMT_WS]);
        return frames[RT__FRAME_PLAIN];
    }
    if (!frames[s->fmt]) /* only SSE is lazy; built from the same JSON once per publish */
        frames[s->fmt] = rt__history_sse_frame(frames[RT_FMT_WS], pos->epoch, pos->offset);
    return frames[s->fmt];
}

static void fanout(rt__subvec_t *v, rt_frame_t **frames, const rt_pos_t *pos, bool ext_only,
                   size_t *delivered, rt__kicks_t *kicks)
{
    for (size_t i = 0; i < v->n; i++) {
        rt_sub_t *s = v->v[i];
        rt_frame_t *f = frame_for(s, frames, pos, ext_only);
        if (!f)
            continue;
        rt__push_t r = rt__sub_push_data(s, f);
        if (r == RT__PUSH_OK || r == RT__PUSH_WAKE)
            (*delivered)++;
        else if (r == RT__PUSH_OVER)
            rt__kicks_add(kicks, s);
    }
}

void rt__hub_emit_locked(rt__channel_t *ch, rt_frame_t **frames, const rt_pos_t *pos,
                         rt_slice_t topic, bool ext_only, size_t *delivered, rt__kicks_t *kicks)
{
    rt__history_append(&ch->hist, pos->offset, topic, ext_only, frames[RT_FMT_WS]);
    rt__subvec_t *tv = rt_map_get(&ch->topics, topic.base, topic.len);
    if (tv)
        fanout(tv, frames, pos, ext_only, delivered, kicks);
    fanout(&ch->wildcard, frames, pos, ext_only, delivered, kicks);
}

/* The event's WebSocket frame at pos (encoded once, shared). NULL on OOM. */
static rt_frame_t *encode_ws(const rt_event_t *ev, const rt_pos_t *pos)
{
    size_t jlen;
    char *json = rt_event_json(ev, pos, &jlen);
    if (!json)
        return NULL;
    rt_frame_t *f = rt_event_ws_frame(json, jlen);
    free(json);
    return f;
}

int rt_hub_publish(rt_hub_t *hub, const rt_event_t *ev, rt_pos_t *pos_out, size_t *delivered_out)
{
    return rt_hub_publish_idem(hub, ev, (rt_slice_t){"", 0}, 0, pos_out, delivered_out, NULL);
}

/* Check the idempotency key under ch->lock. 0: publish; RT_E_DUPLICATE (the
 * outputs are filled with the original), RT_E_LIMIT or RT_E_NOMEM: do not,
 * and the key is already released. */
static int idem_admit_locked(rt_hub_t *hub, rt__channel_t *ch, rt__idem_key_t *key, int64_t now,
                             rt_pos_t *pos_out, size_t *delivered_out, bool *duplicate)
{
    rt_pos_t orig;
    int rc = rt__idem_check(&ch->idem, key, now, hub->opts.idem_max_keys, &orig);
    if (rc == 0)
        return 0;
    rt__idem_key_free(key);
    if (rc == RT_E_DUPLICATE) {
        if (pos_out)
            *pos_out = orig;
        if (delivered_out)
            *delivered_out = 0;
        if (duplicate)
            *duplicate = true;
    }
    return rc;
}

int rt_hub_publish_idem(rt_hub_t *hub, const rt_event_t *ev, rt_slice_t idem_key, int64_t now,
                        rt_pos_t *pos_out, size_t *delivered_out, bool *duplicate)
{
    if (duplicate)
        *duplicate = false;
    rt__channel_t *ch = rt__hub_channel_acquire(hub, ev->channel, true);
    if (!ch)
        return RT_E_NOMEM;
    rt__idem_key_t key;
    bool keyed = idem_key.len > 0;
    if (keyed) {
        int rc = rt__idem_key_init(&key, ev->topic, idem_key);
        if (rc == 0)
            rc = idem_admit_locked(hub, ch, &key, now, pos_out, delivered_out, duplicate);
        if (rc != 0) {
            pthread_mutex_unlock(&ch->lock);
            return rc == RT_E_DUPLICATE ? 0 : rc;
        }
    }
    rt_pos_t pos = {ch->epoch, ch->last_offset + 1};
    rt_frame_t *frames[RT__NFRAMES] = {encode_ws(ev, &pos), NULL, NULL};
    if (!frames[RT_FMT_WS]) {
        pthread_mutex_unlock(&ch->lock);
        if (keyed)
            rt__idem_key_free(&key);
        return RT_E_NOMEM;
    }
    ch->last_offset = pos.offset;
    ch->last_activity_ms = rt_clock_wall_ms();
    if (keyed) {
        rt__idem_remember(&ch->idem, &key, pos, now + hub->opts.idem_window_ms);
        rt__idem_key_free(&key);
    }
    size_t delivered = 0;
    rt__kicks_t kicks;
    rt__kicks_init(&kicks);
    rt__hub_emit_locked(ch, frames, &pos, ev->topic, ev->ext_only, &delivered, &kicks);
    pthread_mutex_unlock(&ch->lock);
    rt_frame_unref(frames[0]);
    rt_frame_unref(frames[1]);
    rt_frame_unref(frames[RT__FRAME_PLAIN]);
    atomic_fetch_add(&hub->publishes, 1);
    atomic_fetch_add(&hub->deliveries, delivered);
    rt__kicks_run(&kicks);
    if (pos_out)
        *pos_out = pos;
    if (delivered_out)
        *delivered_out = delivered;
    return 0;
}

/* ---- subscribe ---- */

int rt_hub_subscribe(rt_hub_t *hub, rt_sub_t *sub, rt_slice_t channel, const rt_slice_t *topics,
                     size_t ntopics, const rt_pos_t *since, rt_resume_t *out)
{
    return rt_hub_subscribe_any(hub, sub, channel, topics, ntopics, since, since ? 1 : 0, out);
}

void rt__hub_subscribe_finish(rt_hub_t *hub, rt_sub_t *sub, rt__channel_t *ch, size_t before,
                              rt_resume_t *res, const rt__replay_t *rp)
{
    res->replayed = rp->pushed;
    res->current.epoch = ch->epoch;
    if (res->current.offset < ch->last_offset)
        res->current.offset = ch->last_offset;
    ch->last_activity_ms = rt_clock_wall_ms();
    if (rp->wake)
        rt__sub_wake(sub);
    interest_locked(hub, ch, before);
    pthread_mutex_unlock(&ch->lock);
    atomic_fetch_add(&hub->replayed, res->replayed);
    if (rp->kicked)
        rt__sub_kick(sub);
}

/* The candidate whose epoch is the channel's; a never-matching position when
 * candidates were given and none matches; NULL when none were given. */
static const rt_pos_t *since_pick(const rt__channel_t *ch, const rt_pos_t *cands, size_t ncands)
{
    static const rt_pos_t nomatch = {0, 0}; /* epoch 0 never matches: not recovered */
    for (size_t i = 0; i < ncands; i++)
        if (cands[i].epoch == ch->epoch)
            return &cands[i];
    return ncands ? &nomatch : NULL;
}

/* Replay the ring after `since` into sub, or say why it cannot (recovered is
 * then true only when since is the channel's latest). Caller holds ch->lock. */
static void replay_since_locked(rt__channel_t *ch, rt_sub_t *sub, const rt_pos_t *since,
                                const rt_slice_t *topics, size_t ntopics, rt_resume_t *res,
                                rt__replay_t *rp)
{
    uint64_t oldest = rt__history_oldest(&ch->hist, ch->last_offset + 1);
    if (since->epoch != ch->epoch || since->offset > ch->last_offset ||
        since->offset + 1 < oldest) {
        res->recovered = since->epoch == ch->epoch && since->offset == ch->last_offset;
        return;
    }
    pthread_mutex_lock(&sub->q.lock);
    if (rt__history_replay_locked(&ch->hist, ch->epoch, since->offset, sub, topics, ntopics, rp))
        res->recovered = false;
    pthread_mutex_unlock(&sub->q.lock);
}

int rt_hub_subscribe_any(rt_hub_t *hub, rt_sub_t *sub, rt_slice_t channel, const rt_slice_t *topics,
                         size_t ntopics, const rt_pos_t *cands, size_t ncands, rt_resume_t *out)
{
    rt_resume_t res = {.recovered = true, .had_since = ncands > 0};
    rt__replay_t rp = {0};
    rt__channel_t *ch = rt__hub_channel_acquire(hub, channel, true);
    if (!ch)
        return RT_E_NOMEM;
    const rt_pos_t *since = since_pick(ch, cands, ncands);
    /* Replay first, under the channel lock: nothing published can slip
     * between the replayed events and the live ones. The age bound applies
     * now, not only at the next sweep: a position older than
     * RTGW_HISTORY_MAX_AGE is not recovered. */
    if (since) {
        rt__history_expire(&ch->hist, rt_clock_wall_ms());
        replay_since_locked(ch, sub, since, topics, ntopics, &res, &rp);
    }
    size_t before = ch->nsubs;
    int rc = rt__hub_attach_locked(hub, sub, ch, topics, ntopics);
    rt__hub_subscribe_finish(hub, sub, ch, before, &res, &rp);
    if (out)
        *out = res;
    return rc;
}

/* ---- unsubscribe ---- */

void rt_hub_unsubscribe(rt_hub_t *hub, rt_sub_t *sub, rt_slice_t channel, rt_slice_t topic)
{
    bool wild = topic.len == 1 && topic.base[0] == '*';
    for (size_t i = 0; i < sub->nlinks; i++) {
        rt__link_t *l = &sub->links[i];
        if (!link_is(l, channel))
            continue;
        if (wild ? l->topic != NULL
                 : (!l->topic || l->tlen != topic.len ||
                    memcmp(l->topic, topic.base, topic.len) != 0))
            continue;
        rt__channel_t *ch = l->ch;
        pthread_mutex_lock(&ch->lock);
        size_t before = ch->nsubs;
        link_remove_locked(hub, sub, i);
        interest_locked(hub, ch, before);
        pthread_mutex_unlock(&ch->lock);
        return;
    }
}

int rt_hub_set_topics(rt_hub_t *hub, rt_sub_t *sub, rt_slice_t channel, const rt_slice_t *topics,
                      size_t ntopics)
{
    rt__channel_t *ch = NULL;
    for (size_t i = 0; i < sub->nlinks && !ch; i++)
        if (link_is(&sub->links[i], channel))
            ch = sub->links[i].ch;
    if (!ch) /* not subscribed there yet: a plain subscribe */
        return ntopics ? rt_hub_subscribe(hub, sub, channel, topics, ntopics, NULL, NULL) : 0;
    pthread_mutex_lock(&ch->lock);
    size_t before = ch->nsubs;
    for (size_t i = sub->nlinks; i-- > 0;)
        if (sub->links[i].ch == ch)
            link_remove_locked(hub, sub, i);
    /* Re-add under the same lock hold: publishes see either the old set or
     * the new one. The channel cannot be freed meanwhile (we hold its lock,
     * and the sweep takes it before freeing). */
    int rc = rt__hub_attach_locked(hub, sub, ch, topics, ntopics);
    ch->last_activity_ms = rt_clock_wall_ms();
    interest_locked(hub, ch, before);
    pthread_mutex_unlock(&ch->lock);
    return rc;
}

void rt_hub_unsubscribe_all(rt_hub_t *hub, rt_sub_t *sub)
{
    for (size_t i = 0; i < sub->nlinks; i++) {
        rt__link_t *l = &sub->links[i];
        rt__channel_t *ch = l->ch; /* alive: a channel with subscriptions is never freed */
        pthread_mutex_lock(&ch->lock);
        size_t before = ch->nsubs;
        index_del_locked(hub, sub, l);
        ch->last_activity_ms = rt_clock_wall_ms();
        interest_locked(hub, ch, before);
        pthread_mutex_unlock(&ch->lock);
        free(l->topic);
    }
    free(sub->links);
    sub->links = NULL;
    sub->nlinks = 0;
    rt_sub_close(sub);
}

/* ---- sweep ---- */

void rt_hub_sweep(rt_hub_t *hub, int64_t now)
{
    int64_t max_age = hub->opts.history_max_age_ms;
    pthread_rwlock_wrlock(&hub->lock);
    for (size_t i = 0; i < hub->channels.cap;) {
        rt_map_entry_t *e = &hub->channels.slots[i];
        if (!e->key) {
            i++;
            continue;
        }
        rt__channel_t *ch = e->value;
        pthread_mutex_lock(&ch->lock);
        rt__history_expire(&ch->hist, now);
        if (rt__idem_count(&ch->idem))
            rt__idem_purge(&ch->idem, now);
        bool idle = ch->nsubs == 0 && ch->hist.count == 0 && rt__idem_count(&ch->idem) == 0 &&
                    now - ch->last_activity_ms > max_age;
        pthread_mutex_unlock(&ch->lock);
        if (idle) {
            rt_map_del(&hub->channels, ch->name, ch->nlen);
            channel_free(ch);
            /* Backward shift may have moved another entry into slot i. */
            continue;
        }
        i++;
    }
    pthread_rwlock_unlock(&hub->lock);
}
