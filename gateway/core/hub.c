/*
 * hub.c — fan-out core. See hub.h for the contract.
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
#include "map.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    rt_sub_t **v;
    size_t n, cap;
} subvec_t;

typedef struct {
    uint64_t offset;
    int64_t ts_ms;
    char *topic;
    size_t tlen;
    bool ext_only;
    rt_frame_t *f[2]; /* per rt_format_t; [RT_FMT_SSE] built on first replay to SSE */
} hist_t;

typedef struct channel_s {
    char *name;
    size_t nlen;
    pthread_mutex_t lock;
    rt_map_t topics; /* topic name → subvec_t* */
    subvec_t wildcard;
    size_t nsubs; /* subscription entries in topics + wildcard */
    uint64_t epoch;
    uint64_t last_offset;
    hist_t *hist;
    size_t hhead, hcount, hcap;
    int64_t last_activity_ms;
    rt_map_t idem; /* "<topic>\0<key>" → idem_t* */
} channel_t;

typedef struct {
    rt_pos_t pos;
    int64_t expires_ms;
} idem_t;

typedef struct {
    channel_t *ch;
    char *topic; /* NULL for "*" */
    size_t tlen;
} link_t;

struct rt_sub_s {
    atomic_uint refs;
    rt_hub_t *hub;
    rt_format_t fmt;
    const rt_sink_ops_t *ops;
    void *owner;
    pthread_mutex_t qlock;
    rt_frame_t **q;
    size_t qhead, qcount, qcap, qbytes;
    bool scheduled, kicked, closed;
    bool ext;
    /* Replayed frames still queued: exempt from the data bounds (they are
     * shared history references, bounded by history_max), so a subscriber
     * kicked as slow can always resume, even when its gap exceeds the queue. */
    size_t rq_frames, rq_bytes;
    link_t *links; /* guarded by the subscriber's owner: subscribe/unsubscribe */
    size_t nlinks;
};

struct rt_hub_s {
    rt_hub_opts_t opts;
    pthread_rwlock_t lock;
    rt_map_t channels;
    uint64_t seed;
    atomic_ullong epoch_counter;
    atomic_ullong subscriptions, publishes, deliveries, replayed, slow_kicks, history_events;
    rt_hub_interest_fn interest; /* set before use; called under a channel lock */
    void *interest_ctx;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

static void subvec_free(subvec_t *v)
{
    free(v->v);
    v->v = NULL;
    v->n = v->cap = 0;
}

static void hist_entry_free(hist_t *e)
{
    rt_frame_unref(e->f[0]);
    rt_frame_unref(e->f[1]);
    free(e->topic);
    memset(e, 0, sizeof(*e));
}

static void channel_free(channel_t *ch)
{
    RT_MAP_FOREACH(&ch->topics, e)
    {
        subvec_free(e->value);
        free(e->value);
    }
    rt_map_clear(&ch->topics);
    subvec_free(&ch->wildcard);
    RT_MAP_FOREACH(&ch->idem, e)
    free(e->value);
    rt_map_clear(&ch->idem);
    for (size_t i = 0; i < ch->hcount; i++)
        hist_entry_free(&ch->hist[(ch->hhead + i) % ch->hcap]);
    free(ch->hist);
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

static channel_t *channel_new(rt_hub_t *hub, rt_slice_t name)
{
    channel_t *ch = calloc(1, sizeof(*ch));
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
    rt_map_init(&ch->idem);
    /* A new channel object means any earlier history is gone: new epoch. */
    ch->epoch = mix64(hub->seed ^ mix64(atomic_fetch_add(&hub->epoch_counter, 1) + 1)) >> 16;
    if (ch->epoch == 0)
        ch->epoch = 1;
    ch->last_activity_ms = now_ms();
    return ch;
}

/* Returns the channel locked; creates it when create is set. NULL if absent or OOM. */
static channel_t *channel_acquire(rt_hub_t *hub, rt_slice_t name, bool create)
{
    pthread_rwlock_rdlock(&hub->lock);
    channel_t *ch = rt_map_get(&hub->channels, name.base, name.len);
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
static void interest_locked(rt_hub_t *hub, channel_t *ch, size_t before)
{
    bool had = before > 0, has = ch->nsubs > 0;
    if (had != has && hub->interest)
        hub->interest(hub->interest_ctx, (rt_slice_t){ch->name, ch->nlen}, has);
}

static int subvec_add(subvec_t *v, rt_sub_t *s)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->v[i] == s)
            return 1;
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

static bool subvec_del(subvec_t *v, rt_sub_t *s)
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

/* ---- subscriber queues ---- */

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
    pthread_mutex_init(&s->qlock, NULL);
    return s;
}

rt_sub_t *rt_sub_ref(rt_sub_t *s)
{
    atomic_fetch_add(&s->refs, 1);
    return s;
}

static void queue_drop(rt_sub_t *s)
{
    for (size_t i = 0; i < s->qcount; i++)
        rt_frame_unref(s->q[(s->qhead + i) % s->qcap]);
    s->qhead = s->qcount = s->qbytes = 0;
    s->rq_frames = s->rq_bytes = 0;
}

void rt_sub_unref(rt_sub_t *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    queue_drop(s);
    free(s->q);
    for (size_t i = 0; i < s->nlinks; i++)
        free(s->links[i].topic);
    free(s->links);
    pthread_mutex_destroy(&s->qlock);
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

static int queue_grow(rt_sub_t *s)
{
    size_t nc = s->qcap ? s->qcap * 2 : 16;
    rt_frame_t **nq = malloc(nc * sizeof(*nq));
    if (!nq)
        return -1;
    for (size_t i = 0; i < s->qcount; i++)
        nq[i] = s->q[(s->qhead + i) % s->qcap];
    free(s->q);
    s->q = nq;
    s->qcap = nc;
    s->qhead = 0;
    return 0;
}

enum { PUSH_OK = 0, PUSH_WAKE = 1, PUSH_OVER = 2, PUSH_CLOSED = 3 };

/* Caller holds s->qlock. bounded: apply the data bounds. */
static int queue_push_locked(rt_sub_t *s, rt_frame_t *f, bool bounded)
{
    if (s->closed || s->kicked)
        return PUSH_CLOSED;
    const rt_hub_opts_t *o = &s->hub->opts;
    if (bounded && (s->qcount - s->rq_frames + 1 > o->queue_max_frames ||
                    s->qbytes - s->rq_bytes + f->len > o->queue_max_bytes)) {
        s->kicked = true;
        queue_drop(s);
        return PUSH_OVER;
    }
    if (s->qcount == s->qcap && queue_grow(s) != 0) {
        s->kicked = true; /* cannot hold it: treat like a full queue, never lose silently */
        queue_drop(s);
        return PUSH_OVER;
    }
    s->q[(s->qhead + s->qcount) % s->qcap] = rt_frame_ref(f);
    s->qcount++;
    s->qbytes += f->len;
    if (!s->scheduled) {
        s->scheduled = true;
        return PUSH_WAKE;
    }
    return PUSH_OK;
}

int rt_sub_push(rt_sub_t *s, rt_frame_t *f)
{
    pthread_mutex_lock(&s->qlock);
    int r = queue_push_locked(s, f, false);
    pthread_mutex_unlock(&s->qlock);
    if (r == PUSH_WAKE && s->ops && s->ops->wake)
        s->ops->wake(s->owner, s);
    return r == PUSH_CLOSED ? -1 : 0;
}

int rt_sub_push_front(rt_sub_t *s, rt_frame_t *f)
{
    pthread_mutex_lock(&s->qlock);
    int r = PUSH_CLOSED;
    if (!s->closed && !s->kicked && (s->qcount < s->qcap || queue_grow(s) == 0)) {
        s->qhead = (s->qhead + s->qcap - 1) % s->qcap;
        s->q[s->qhead] = rt_frame_ref(f);
        s->qcount++;
        s->qbytes += f->len;
        r = PUSH_OK;
        if (!s->scheduled) {
            s->scheduled = true;
            r = PUSH_WAKE;
        }
    }
    pthread_mutex_unlock(&s->qlock);
    if (r == PUSH_WAKE && s->ops && s->ops->wake)
        s->ops->wake(s->owner, s);
    return r == PUSH_CLOSED ? -1 : 0;
}

size_t rt_sub_pop(rt_sub_t *s, rt_frame_t **out, size_t max)
{
    pthread_mutex_lock(&s->qlock);
    size_t n = 0;
    while (n < max && s->qcount) {
        rt_frame_t *f = s->q[s->qhead];
        s->qhead = (s->qhead + 1) % s->qcap;
        s->qcount--;
        s->qbytes -= f->len;
        if (s->rq_frames) { /* replayed frames sit at the head (after the ack) */
            s->rq_frames--;
            s->rq_bytes -= f->len < s->rq_bytes ? f->len : s->rq_bytes;
        }
        out[n++] = f;
    }
    if (n == 0)
        s->scheduled = false;
    pthread_mutex_unlock(&s->qlock);
    return n;
}

void rt_sub_close(rt_sub_t *s)
{
    pthread_mutex_lock(&s->qlock);
    s->closed = true;
    queue_drop(s);
    pthread_mutex_unlock(&s->qlock);
}

void rt_sub_queue_size(rt_sub_t *s, size_t *frames, size_t *bytes)
{
    pthread_mutex_lock(&s->qlock);
    if (frames)
        *frames = s->qcount;
    if (bytes)
        *bytes = s->qbytes;
    pthread_mutex_unlock(&s->qlock);
}

/* ---- history ---- */

static void hist_evict_front(rt_hub_t *hub, channel_t *ch)
{
    hist_entry_free(&ch->hist[ch->hhead]);
    ch->hhead = (ch->hhead + 1) % ch->hcap;
    ch->hcount--;
    atomic_fetch_sub(&hub->history_events, 1);
}

static void hist_append(rt_hub_t *hub, channel_t *ch, uint64_t offset, rt_slice_t topic,
                        bool ext_only, rt_frame_t *ws)
{
    size_t max = hub->opts.history_max;
    if (max == 0)
        return;
    if (ch->hcap < max && ch->hcount == ch->hcap) {
        size_t nc = ch->hcap ? ch->hcap * 2 : 16;
        if (nc > max)
            nc = max;
        hist_t *nh = calloc(nc, sizeof(*nh));
        if (!nh)
            return; /* history is best effort; resume then reports not recovered */
        for (size_t i = 0; i < ch->hcount; i++)
            nh[i] = ch->hist[(ch->hhead + i) % ch->hcap];
        free(ch->hist);
        ch->hist = nh;
        ch->hcap = nc;
        ch->hhead = 0;
    }
    if (ch->hcount == ch->hcap)
        hist_evict_front(hub, ch);
    char *t = malloc(topic.len + 1);
    if (!t)
        return;
    memcpy(t, topic.base, topic.len);
    t[topic.len] = 0;
    hist_t *e = &ch->hist[(ch->hhead + ch->hcount) % ch->hcap];
    e->offset = offset;
    e->ts_ms = now_ms();
    e->topic = t;
    e->tlen = topic.len;
    e->ext_only = ext_only;
    e->f[RT_FMT_WS] = rt_frame_ref(ws);
    e->f[RT_FMT_SSE] = NULL;
    ch->hcount++;
    atomic_fetch_add(&hub->history_events, 1);
}

static rt_frame_t *sse_from_ws(rt_frame_t *ws, uint64_t epoch, uint64_t offset)
{
    const unsigned char *p = (const unsigned char *)ws->data;
    size_t hl = rt_ws_hdr_need(p[1]); /* server frames are unmasked */
    rt_pos_t pos = {epoch, offset};
    return rt_event_sse_frame(ws->data + hl, ws->len - hl, &pos);
}

static rt_frame_t *hist_frame(channel_t *ch, hist_t *e, rt_format_t fmt)
{
    if (!e->f[fmt] && fmt == RT_FMT_SSE)
        e->f[fmt] = sse_from_ws(e->f[RT_FMT_WS], ch->epoch, e->offset);
    return e->f[fmt];
}

/* ---- subscribe ---- */

static bool sub_has_link(rt_sub_t *s, channel_t *ch, rt_slice_t topic)
{
    for (size_t i = 0; i < s->nlinks; i++) {
        link_t *l = &s->links[i];
        if (l->ch != ch)
            continue;
        if (!l->topic)
            return true; /* "*" covers everything */
        if (l->tlen == topic.len && memcmp(l->topic, topic.base, topic.len) == 0)
            return true;
    }
    return false;
}

static void link_remove_locked(rt_hub_t *hub, rt_sub_t *sub, size_t i);

/* "*" covers every topic of the channel: the exact links it supersedes are
 * removed, or each of their events would be enqueued twice (once per list).
 * Caller holds ch->lock. */
static void drop_exact_links_locked(rt_hub_t *hub, rt_sub_t *sub, channel_t *ch)
{
    for (size_t k = sub->nlinks; k-- > 0;)
        if (sub->links[k].ch == ch && sub->links[k].topic)
            link_remove_locked(hub, sub, k);
}

static bool topic_in(rt_slice_t t, const rt_slice_t *topics, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (topics[i].len == 1 && topics[i].base[0] == '*')
            return true;
        if (topics[i].len == t.len && memcmp(topics[i].base, t.base, t.len) == 0)
            return true;
    }
    return false;
}

int rt_hub_position(rt_hub_t *hub, rt_slice_t channel, rt_pos_t *out)
{
    channel_t *ch = channel_acquire(hub, channel, true);
    if (!ch)
        return -1;
    out->epoch = ch->epoch;
    out->offset = ch->last_offset;
    ch->last_activity_ms = now_ms();
    pthread_mutex_unlock(&ch->lock);
    return 0;
}

int rt_hub_subscribe(rt_hub_t *hub, rt_sub_t *sub, rt_slice_t channel, const rt_slice_t *topics,
                     size_t ntopics, const rt_pos_t *since, rt_resume_t *out)
{
    return rt_hub_subscribe_any(hub, sub, channel, topics, ntopics, since, since ? 1 : 0, out);
}

/* Attach sub to topics of ch (caller holds ch->lock). 0 or -1 (OOM). */
static int attach_locked(rt_hub_t *hub, rt_sub_t *sub, channel_t *ch, const rt_slice_t *topics,
                         size_t ntopics)
{
    int rc = 0;
    for (size_t i = 0; i < ntopics && rc == 0; i++) {
        rt_slice_t t = topics[i];
        bool wild = t.len == 1 && t.base[0] == '*';
        if (sub_has_link(sub, ch, t))
            continue;
        if (wild)
            drop_exact_links_locked(hub, sub, ch);
        subvec_t *v = &ch->wildcard;
        if (!wild) {
            v = rt_map_get(&ch->topics, t.base, t.len);
            if (!v) {
                v = calloc(1, sizeof(*v));
                if (!v || rt_map_put(&ch->topics, t.base, t.len, v) != 0) {
                    free(v);
                    rc = -1;
                    break;
                }
            }
        }
        link_t *nl = realloc(sub->links, (sub->nlinks + 1) * sizeof(*nl));
        if (!nl) {
            rc = -1;
            break;
        }
        sub->links = nl;
        link_t *l = &sub->links[sub->nlinks];
        l->ch = ch;
        l->topic = NULL;
        l->tlen = 0;
        if (!wild) {
            l->topic = malloc(t.len + 1);
            if (!l->topic) {
                rc = -1;
                break;
            }
            memcpy(l->topic, t.base, t.len);
            l->topic[t.len] = 0;
            l->tlen = t.len;
        }
        if (subvec_add(v, sub) < 0) {
            free(l->topic);
            rc = -1;
            break;
        }
        sub->nlinks++;
        ch->nsubs++;
        atomic_fetch_add(&hub->subscriptions, 1);
    }
    return rc;
}

/* Enqueue replayed frames (outside the data bounds); caller holds ch->lock
 * and sub->qlock. Sets *kicked when the subscriber was over its bound. */
static void replay_push_locked(rt_sub_t *sub, rt_frame_t *f, rt_resume_t *res, bool *wake,
                               bool *kicked)
{
    int r = queue_push_locked(sub, f, false);
    if (r == PUSH_OVER)
        *kicked = true;
    else if (r != PUSH_CLOSED) {
        res->replayed++;
        sub->rq_frames++;
        sub->rq_bytes += f->len;
    }
    *wake |= r == PUSH_WAKE;
}

/* After a subscribe: wake, unlock, count, kick. */
static void subscribe_finish(rt_hub_t *hub, rt_sub_t *sub, channel_t *ch, size_t before,
                             rt_resume_t *res, bool wake, bool kicked)
{
    res->current.epoch = ch->epoch;
    if (res->current.offset < ch->last_offset)
        res->current.offset = ch->last_offset;
    ch->last_activity_ms = now_ms();
    if (wake && sub->ops && sub->ops->wake)
        sub->ops->wake(sub->owner, sub);
    interest_locked(hub, ch, before);
    pthread_mutex_unlock(&ch->lock);
    atomic_fetch_add(&hub->replayed, res->replayed);
    if (kicked) {
        atomic_fetch_add(&hub->slow_kicks, 1);
        if (sub->ops && sub->ops->kick)
            sub->ops->kick(sub->owner, sub, RT_REASON_SLOW_CONSUMER);
    }
}

int rt_hub_subscribe_any(rt_hub_t *hub, rt_sub_t *sub, rt_slice_t channel, const rt_slice_t *topics,
                         size_t ntopics, const rt_pos_t *cands, size_t ncands, rt_resume_t *out)
{
    rt_resume_t res = {.recovered = true, .had_since = ncands > 0};
    bool wake = false;
    channel_t *ch = channel_acquire(hub, channel, true);
    if (!ch)
        return -1;
    int rc = 0;
    bool kicked = false;
    const rt_pos_t *since = NULL;
    rt_pos_t nomatch = {0, 0};
    for (size_t i = 0; i < ncands && !since; i++)
        if (cands[i].epoch == ch->epoch)
            since = &cands[i];
    if (ncands && !since)
        since = &nomatch; /* epoch 0 never matches: reported as not recovered */
    /* Apply the age bound now, not only at the next sweep: a position older
     * than RTGW_HISTORY_MAX_AGE is not recovered. */
    int64_t now = now_ms();
    while (since && ch->hcount && now - ch->hist[ch->hhead].ts_ms > hub->opts.history_max_age_ms)
        hist_evict_front(hub, ch);

    /* Replay first, under the channel lock: nothing published can slip
     * between the replayed events and the live ones. */
    if (since) {
        uint64_t oldest = ch->hcount ? ch->hist[ch->hhead].offset : ch->last_offset + 1;
        if (since->epoch != ch->epoch || since->offset > ch->last_offset ||
            since->offset + 1 < oldest) {
            res.recovered = since->epoch == ch->epoch && since->offset == ch->last_offset;
        } else {
            pthread_mutex_lock(&sub->qlock);
            for (size_t i = 0; i < ch->hcount && !kicked; i++) {
                hist_t *e = &ch->hist[(ch->hhead + i) % ch->hcap];
                if (e->offset <= since->offset || (e->ext_only && !sub->ext))
                    continue;
                if (!topic_in((rt_slice_t){e->topic, e->tlen}, topics, ntopics))
                    continue;
                rt_frame_t *f = hist_frame(ch, e, sub->fmt);
                if (!f) {
                    res.recovered = false;
                    break;
                }
                int r = queue_push_locked(sub, f, false);
                if (r == PUSH_OVER)
                    kicked = true;
                else if (r != PUSH_CLOSED) {
                    res.replayed++;
                    sub->rq_frames++;
                    sub->rq_bytes += f->len;
                }
                wake |= r == PUSH_WAKE;
            }
            pthread_mutex_unlock(&sub->qlock);
        }
    }

    size_t before = ch->nsubs;
    rc = attach_locked(hub, sub, ch, topics, ntopics);
    subscribe_finish(hub, sub, ch, before, &res, wake, kicked);
    if (out)
        *out = res;
    return rc;
}

/* Remove link i of sub; caller holds its channel's lock. */
static void link_remove_locked(rt_hub_t *hub, rt_sub_t *sub, size_t i)
{
    link_t *l = &sub->links[i];
    channel_t *ch = l->ch;
    subvec_t *v = l->topic ? rt_map_get(&ch->topics, l->topic, l->tlen) : &ch->wildcard;
    if (v && subvec_del(v, sub)) {
        ch->nsubs--;
        atomic_fetch_sub(&hub->subscriptions, 1);
        if (l->topic && v->n == 0) {
            rt_map_del(&ch->topics, l->topic, l->tlen);
            subvec_free(v);
            free(v);
        }
    }
    free(l->topic);
    sub->links[i] = sub->links[--sub->nlinks];
}

void rt_hub_unsubscribe(rt_hub_t *hub, rt_sub_t *sub, rt_slice_t channel, rt_slice_t topic)
{
    bool wild = topic.len == 1 && topic.base[0] == '*';
    for (size_t i = 0; i < sub->nlinks; i++) {
        link_t *l = &sub->links[i];
        if (l->ch->nlen != channel.len || memcmp(l->ch->name, channel.base, channel.len) != 0)
            continue;
        if (wild ? l->topic != NULL
                 : (!l->topic || l->tlen != topic.len ||
                    memcmp(l->topic, topic.base, topic.len) != 0))
            continue;
        channel_t *ch = l->ch;
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
    channel_t *ch = NULL;
    for (size_t i = 0; i < sub->nlinks && !ch; i++)
        if (sub->links[i].ch->nlen == channel.len &&
            memcmp(sub->links[i].ch->name, channel.base, channel.len) == 0)
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
    int rc = attach_locked(hub, sub, ch, topics, ntopics);
    ch->last_activity_ms = now_ms();
    interest_locked(hub, ch, before);
    pthread_mutex_unlock(&ch->lock);
    return rc;
}

void rt_hub_unsubscribe_all(rt_hub_t *hub, rt_sub_t *sub)
{
    for (size_t i = 0; i < sub->nlinks; i++) {
        link_t *l = &sub->links[i];
        channel_t *ch = l->ch; /* alive: a channel with subscriptions is never freed */
        pthread_mutex_lock(&ch->lock);
        size_t before = ch->nsubs;
        subvec_t *v = l->topic ? rt_map_get(&ch->topics, l->topic, l->tlen) : &ch->wildcard;
        if (v && subvec_del(v, sub)) {
            ch->nsubs--;
            atomic_fetch_sub(&hub->subscriptions, 1);
            if (l->topic && v->n == 0) {
                rt_map_del(&ch->topics, l->topic, l->tlen);
                subvec_free(v);
                free(v);
            }
        }
        ch->last_activity_ms = now_ms();
        interest_locked(hub, ch, before);
        pthread_mutex_unlock(&ch->lock);
        free(l->topic);
    }
    free(sub->links);
    sub->links = NULL;
    sub->nlinks = 0;
    rt_sub_close(sub);
}

/* ---- publish ---- */

typedef struct {
    rt_sub_t **v;
    size_t n, cap;
    rt_sub_t *inline_v[16];
} kicklist_t;

static void fanout(subvec_t *v, rt_frame_t **frames, const rt_pos_t *pos, bool ext_only,
                   size_t *delivered, kicklist_t *kicks)
{
    for (size_t i = 0; i < v->n; i++) {
        rt_sub_t *s = v->v[i];
        if (ext_only && !s->ext)
            continue;
        rt_frame_t *f = frames[s->fmt];
        if (!f) {
            /* Only SSE is lazy; built from the same JSON once per publish. */
            f = frames[s->fmt] = sse_from_ws(frames[RT_FMT_WS], pos->epoch, pos->offset);
            if (!f)
                continue;
        }
        pthread_mutex_lock(&s->qlock);
        int r = queue_push_locked(s, f, true);
        pthread_mutex_unlock(&s->qlock);
        if (r == PUSH_WAKE && s->ops && s->ops->wake)
            s->ops->wake(s->owner, s);
        if (r == PUSH_OK || r == PUSH_WAKE) {
            (*delivered)++;
        } else if (r == PUSH_OVER) {
            if (kicks->n == kicks->cap) {
                size_t nc = kicks->cap * 2;
                rt_sub_t **nv = malloc(nc * sizeof(*nv));
                if (!nv)
                    continue; /* marked kicked anyway; the owner's sweep closes it */
                memcpy(nv, kicks->v, kicks->n * sizeof(*nv));
                if (kicks->v != kicks->inline_v)
                    free(kicks->v);
                kicks->v = nv;
                kicks->cap = nc;
            }
            kicks->v[kicks->n++] = rt_sub_ref(s);
        }
    }
}

/* Keep an event in history and enqueue it to the subscribers of its topic;
 * caller holds ch->lock and has set ch->last_offset. frames[RT_FMT_WS] is
 * borrowed; frames[RT_FMT_SSE] may be built here (caller unrefs both). */
static void emit_locked(rt_hub_t *hub, channel_t *ch, rt_frame_t **frames, const rt_pos_t *pos,
                        rt_slice_t topic, bool ext_only, size_t *delivered, kicklist_t *kicks)
{
    hist_append(hub, ch, pos->offset, topic, ext_only, frames[RT_FMT_WS]);
    subvec_t *tv = rt_map_get(&ch->topics, topic.base, topic.len);
    if (tv)
        fanout(tv, frames, pos, ext_only, delivered, kicks);
    fanout(&ch->wildcard, frames, pos, ext_only, delivered, kicks);
}

static void kicks_init(kicklist_t *kicks)
{
    kicks->v = kicks->inline_v;
    kicks->n = 0;
    kicks->cap = 16;
}

/* After emit_locked, with no lock held: slow-consumer kicks. */
static void kicks_run(rt_hub_t *hub, kicklist_t *kicks)
{
    for (size_t i = 0; i < kicks->n; i++) {
        rt_sub_t *s = kicks->v[i];
        atomic_fetch_add(&hub->slow_kicks, 1);
        if (s->ops && s->ops->kick)
            s->ops->kick(s->owner, s, RT_REASON_SLOW_CONSUMER);
        rt_sub_unref(s);
    }
    if (kicks->v != kicks->inline_v)
        free(kicks->v);
}

int rt_hub_publish(rt_hub_t *hub, const rt_event_t *ev, rt_pos_t *pos_out, size_t *delivered_out)
{
    return rt_hub_publish_idem(hub, ev, (rt_slice_t){"", 0}, 0, pos_out, delivered_out, NULL);
}

static void idem_purge(channel_t *ch, int64_t now_ms)
{
    for (size_t i = 0; i < ch->idem.cap;) {
        rt_map_entry_t *e = &ch->idem.slots[i];
        if (e->key && ((idem_t *)e->value)->expires_ms <= now_ms) {
            free(e->value);
            rt_map_del(&ch->idem, e->key, e->klen);
            continue; /* backward shift may have moved another entry here */
        }
        i++;
    }
}

int rt_hub_publish_idem(rt_hub_t *hub, const rt_event_t *ev, rt_slice_t idem_key, int64_t now,
                        rt_pos_t *pos_out, size_t *delivered_out, bool *duplicate)
{
    if (duplicate)
        *duplicate = false;
    channel_t *ch = channel_acquire(hub, ev->channel, true);
    if (!ch)
        return -1;
    char ikey_buf[512];
    char *ikey = NULL;
    size_t iklen = 0;
    if (idem_key.len) {
        iklen = ev->topic.len + 1 + idem_key.len;
        ikey = iklen <= sizeof(ikey_buf) ? ikey_buf : malloc(iklen);
        if (!ikey) {
            pthread_mutex_unlock(&ch->lock);
            return -1;
        }
        memcpy(ikey, ev->topic.base, ev->topic.len);
        ikey[ev->topic.len] = 0;
        memcpy(ikey + ev->topic.len + 1, idem_key.base, idem_key.len);
        idem_t *seen = rt_map_get(&ch->idem, ikey, iklen);
        if (seen && seen->expires_ms > now) {
            if (pos_out)
                *pos_out = seen->pos;
            if (delivered_out)
                *delivered_out = 0;
            if (duplicate)
                *duplicate = true;
            pthread_mutex_unlock(&ch->lock);
            if (ikey != ikey_buf)
                free(ikey);
            return 0;
        }
        if (!seen && ch->idem.count >= hub->opts.idem_max_keys)
            idem_purge(ch, now);
        if (!seen && ch->idem.count >= hub->opts.idem_max_keys) {
            pthread_mutex_unlock(&ch->lock);
            if (ikey != ikey_buf)
                free(ikey);
            return -2;
        }
    }
    rt_pos_t pos = {ch->epoch, ch->last_offset + 1};
    size_t jlen;
    char *json = rt_event_json(ev, &pos, &jlen);
    rt_frame_t *frames[2] = {NULL, NULL};
    if (json) {
        frames[RT_FMT_WS] = rt_event_ws_frame(json, jlen);
        free(json);
    }
    if (!frames[RT_FMT_WS]) {
        pthread_mutex_unlock(&ch->lock);
        if (ikey && ikey != ikey_buf)
            free(ikey);
        return -1;
    }
    ch->last_offset = pos.offset;
    ch->last_activity_ms = now_ms();
    if (ikey) {
        idem_t *it = rt_map_get(&ch->idem, ikey, iklen);
        if (!it) {
            it = malloc(sizeof(*it));
            if (it && rt_map_put(&ch->idem, ikey, iklen, it) != 0) {
                free(it);
                it = NULL;
            }
        }
        if (it) {
            it->pos = pos;
            it->expires_ms = now + hub->opts.idem_window_ms;
        }
        if (ikey != ikey_buf)
            free(ikey);
    }
    size_t delivered = 0;
    kicklist_t kicks;
    kicks_init(&kicks);
    emit_locked(hub, ch, frames, &pos, ev->topic, ev->ext_only, &delivered, &kicks);
    pthread_mutex_unlock(&ch->lock);
    rt_frame_unref(frames[0]);
    rt_frame_unref(frames[1]);
    atomic_fetch_add(&hub->publishes, 1);
    atomic_fetch_add(&hub->deliveries, delivered);
    kicks_run(hub, &kicks);
    if (pos_out)
        *pos_out = pos;
    if (delivered_out)
        *delivered_out = delivered;
    return 0;
}

/* ---- events positioned by a bus ---- */

/* The bus says the channel's history is another one (new epoch): forget the
 * ring, so nothing of the old epoch is replayed under the new one. */
static void channel_reset_locked(rt_hub_t *hub, channel_t *ch, uint64_t epoch)
{
    while (ch->hcount)
        hist_evict_front(hub, ch);
    ch->epoch = epoch;
    ch->last_offset = 0;
}

/* Deliver e to ch if it is newer than the last delivered event; caller holds
 * ch->lock. Returns true if delivered. */
static bool deliver_locked(rt_hub_t *hub, channel_t *ch, const rt_hub_entry_t *e, size_t *delivered,
                           kicklist_t *kicks)
{
    if (e->offset <= ch->last_offset || !e->ws)
        return false;
    ch->last_offset = e->offset;
    ch->last_activity_ms = now_ms();
    rt_frame_t *frames[2] = {e->ws, NULL};
    rt_pos_t pos = {ch->epoch, e->offset};
    emit_locked(hub, ch, frames, &pos, e->topic, e->ext_only, delivered, kicks);
    rt_frame_unref(frames[RT_FMT_SSE]); /* frames[WS] stays borrowed */
    atomic_fetch_add(&hub->publishes, 1);
    return true;
}

int rt_hub_deliver(rt_hub_t *hub, rt_slice_t channel, uint64_t epoch, const rt_hub_entry_t *e,
                   size_t *delivered_out)
{
    channel_t *ch = channel_acquire(hub, channel, true);
    if (!ch)
        return -1;
    if (epoch != ch->epoch)
        channel_reset_locked(hub, ch, epoch);
    size_t delivered = 0;
    kicklist_t kicks;
    kicks_init(&kicks);
    bool done = deliver_locked(hub, ch, e, &delivered, &kicks);
    pthread_mutex_unlock(&ch->lock);
    atomic_fetch_add(&hub->deliveries, delivered);
    kicks_run(hub, &kicks);
    if (delivered_out)
        *delivered_out = delivered;
    return done ? 0 : 1;
}

int rt_hub_subscribe_backfill(rt_hub_t *hub, rt_sub_t *sub, rt_slice_t channel,
                              const rt_slice_t *topics, size_t ntopics, bool had_since,
                              const rt_backfill_t *bf, rt_resume_t *out)
{
    rt_resume_t res = {.recovered = true, .had_since = had_since};
    channel_t *ch = channel_acquire(hub, channel, true);
    if (!ch)
        return -1;
    bool wake = false, kicked = false;
    size_t delivered = 0;
    kicklist_t kicks;
    kicks_init(&kicks);
    if (bf->epoch && bf->epoch != ch->epoch)
        channel_reset_locked(hub, ch, bf->epoch);
    /* What the read found beyond the live stream so far goes to the channel
     * first, so its current subscribers get it too (the live copy, still in
     * flight, will then be dropped as a duplicate). */
    for (size_t i = 0; i < bf->n; i++)
        deliver_locked(hub, ch, &bf->v[i], &delivered, &kicks);

    if (had_since && (!bf->matched || !bf->covered || bf->epoch != ch->epoch)) {
        res.recovered = false;
    } else if (had_since) {
        uint64_t upto = bf->since;
        pthread_mutex_lock(&sub->qlock);
        for (size_t i = 0; i < bf->n && !kicked; i++) {
            const rt_hub_entry_t *e = &bf->v[i];
            if (e->offset <= upto || (e->ext_only && !sub->ext) ||
                !topic_in(e->topic, topics, ntopics))
                continue;
            upto = e->offset;
            rt_frame_t *f = sub->fmt == RT_FMT_WS ? rt_frame_ref(e->ws)
                                                  : sse_from_ws(e->ws, ch->epoch, e->offset);
            if (!f) {
                res.recovered = false;
                break;
            }
            replay_push_locked(sub, f, &res, &wake, &kicked);
            rt_frame_unref(f);
        }
        if (bf->n && bf->v[bf->n - 1].offset > upto)
            upto = bf->v[bf->n - 1].offset;
        /* Then what arrived live after the read. */
        for (size_t i = 0; i < ch->hcount && !kicked && res.recovered; i++) {
            hist_t *e = &ch->hist[(ch->hhead + i) % ch->hcap];
            if (e->offset <= upto || (e->ext_only && !sub->ext))
                continue;
            if (!topic_in((rt_slice_t){e->topic, e->tlen}, topics, ntopics))
                continue;
            rt_frame_t *f = hist_frame(ch, e, sub->fmt);
            if (!f) {
                res.recovered = false;
                break;
            }
            replay_push_locked(sub, f, &res, &wake, &kicked);
        }
        pthread_mutex_unlock(&sub->qlock);
    }
    size_t before = ch->nsubs;
    int rc = attach_locked(hub, sub, ch, topics, ntopics);
    if (ch->epoch == bf->epoch)
        res.current.offset = bf->last_offset;
    subscribe_finish(hub, sub, ch, before, &res, wake, kicked);
    atomic_fetch_add(&hub->deliveries, delivered);
    kicks_run(hub, &kicks);
    if (out)
        *out = res;
    return rc;
}

int rt_hub_last(rt_hub_t *hub, rt_slice_t channel, rt_pos_t *out)
{
    channel_t *ch = channel_acquire(hub, channel, false);
    if (!ch)
        return -1;
    out->epoch = ch->epoch;
    out->offset = ch->last_offset;
    pthread_mutex_unlock(&ch->lock);
    return 0;
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
        channel_t *ch = e->value;
        pthread_mutex_lock(&ch->lock);
        while (ch->hcount && now - ch->hist[ch->hhead].ts_ms > max_age)
            hist_evict_front(hub, ch);
        if (ch->idem.count)
            idem_purge(ch, now);
        bool idle = ch->nsubs == 0 && ch->hcount == 0 && ch->idem.count == 0 &&
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
