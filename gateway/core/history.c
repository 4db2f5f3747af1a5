/*
 * history.c — one channel's ring of recent events; see history.h. Every
 * function runs under the channel's lock (held by the caller, hub.c), replay
 * also under the subscriber's queue lock. Allocates only when the ring grows
 * (up to history_max slots), for each kept topic, and for a lazily built SSE
 * frame.
 */
#include "history.h"

#include "clock.h"
#include "err.h"
#include "wsframe.h"

#include <stdlib.h>
#include <string.h>

void rt__history_init(rt__history_t *h, size_t max, int64_t max_age_ms, atomic_ullong *gauge)
{
    *h = (rt__history_t){.max = max, .max_age_ms = max_age_ms, .gauge = gauge};
}

static void entry_free(rt__hist_entry_t *e)
{
    rt_frame_unref(e->f[0]);
    rt_frame_unref(e->f[1]);
    free(e->topic);
    memset(e, 0, sizeof(*e));
}

void rt__history_free(rt__history_t *h)
{
    for (size_t i = 0; i < h->count; i++)
        entry_free(&h->v[(h->head + i) % h->cap]);
    free(h->v);
    h->v = NULL;
    h->head = h->count = h->cap = 0;
}

static void evict_front(rt__history_t *h)
{
    entry_free(&h->v[h->head]);
    h->head = (h->head + 1) % h->cap;
    h->count--;
    atomic_fetch_sub(h->gauge, 1);
}

void rt__history_expire(rt__history_t *h, int64_t now)
{
    while (h->count && now - h->v[h->head].ts_ms > h->max_age_ms)
        evict_front(h);
}

void rt__history_clear(rt__history_t *h)
{
    while (h->count)
        evict_front(h);
}

/* Grow the ring (doubling, up to max) when it is full. Returns false on OOM. */
static bool ring_grow(rt__history_t *h)
{
    size_t nc = h->cap ? h->cap * 2 : 16;
    if (nc > h->max)
        nc = h->max;
    rt__hist_entry_t *nv = calloc(nc, sizeof(*nv));
    if (!nv)
        return false;
    for (size_t i = 0; i < h->count; i++)
        nv[i] = h->v[(h->head + i) % h->cap];
    free(h->v);
    h->v = nv;
    h->cap = nc;
    h->head = 0;
    return true;
}

void rt__history_append(rt__history_t *h, uint64_t offset, rt_slice_t topic, bool ext_only,
                        rt_frame_t *ws)
{
    if (h->max == 0)
        return;
    if (h->cap < h->max && h->count == h->cap && !ring_grow(h))
        return; /* history is best effort; resume then reports not recovered */
    if (h->count == h->cap)
        evict_front(h);
    char *t = malloc(topic.len + 1);
    if (!t)
        return;
    memcpy(t, topic.base, topic.len);
    t[topic.len] = 0;
    rt__hist_entry_t *e = &h->v[(h->head + h->count) % h->cap];
    e->offset = offset;
    e->ts_ms = rt_clock_wall_ms();
    e->topic = t;
    e->tlen = topic.len;
    e->ext_only = ext_only;
    e->f[RT_FMT_WS] = rt_frame_ref(ws);
    e->f[RT_FMT_SSE] = NULL;
    h->count++;
    atomic_fetch_add(h->gauge, 1);
}

rt_frame_t *rt__history_sse_frame(rt_frame_t *ws, uint64_t epoch, uint64_t offset)
{
    const unsigned char *p = (const unsigned char *)ws->data;
    size_t hl = rt_ws_hdr_need(p[1]); /* server frames are unmasked */
    rt_pos_t pos = {epoch, offset};
    return rt_event_sse_frame(ws->data + hl, ws->len - hl, &pos);
}

rt_frame_t *rt__history_plain_frame(const rt_frame_t *ws)
{
    static const char chunk[] = "{\"kind\":\"chunk\",", data[] = "{\"kind\":\"data\",";
    const unsigned char *p = (const unsigned char *)ws->data;
    size_t hl = rt_ws_hdr_need(p[1]);
    if (ws->len < hl + sizeof(chunk) - 1 || memcmp(ws->data + hl, chunk, sizeof(chunk) - 1) != 0)
        return NULL;
    size_t rest = ws->len - hl - (sizeof(chunk) - 1), n = sizeof(data) - 1 + rest;
    char stackbuf[2048];
    char *buf = n <= sizeof(stackbuf) ? stackbuf : malloc(n);
    if (!buf)
        return NULL;
    memcpy(buf, data, sizeof(data) - 1);
    memcpy(buf + sizeof(data) - 1, ws->data + hl + sizeof(chunk) - 1, rest);
    rt_frame_t *f = rt_ws_frame_new(RT_WS_TEXT, buf, n);
    if (buf != stackbuf)
        free(buf);
    return f;
}

rt_frame_t *rt__history_frame_for(const rt_sub_t *sub, rt_frame_t *ws, bool ext_only)
{
    if (!ext_only || sub->ext)
        return rt_frame_ref(ws);
    return sub->fmt == RT_FMT_WS ? rt__history_plain_frame(ws) : NULL;
}

/* The entry's frame in fmt, building the SSE one on first use (kept). */
static rt_frame_t *entry_frame(rt__hist_entry_t *e, rt_format_t fmt, uint64_t epoch)
{
    if (!e->f[fmt] && fmt == RT_FMT_SSE)
        e->f[fmt] = rt__history_sse_frame(e->f[RT_FMT_WS], epoch, e->offset);
    return e->f[fmt];
}

int rt__history_replay_locked(rt__history_t *h, uint64_t epoch, uint64_t after, rt_sub_t *sub,
                              const rt_slice_t *topics, size_t ntopics, rt__replay_t *acc)
{
    for (size_t i = 0; i < h->count && !acc->kicked; i++) {
        rt__hist_entry_t *e = &h->v[(h->head + i) % h->cap];
        if (e->offset <= after ||
            !rt__topics_match((rt_slice_t){e->topic, e->tlen}, topics, ntopics))
            continue;
        if (e->ext_only && !sub->ext) { /* an official client: the plain form, if any */
            rt_frame_t *pf = rt__history_frame_for(sub, e->f[RT_FMT_WS], true);
            if (pf)
                rt__queue_replay_locked(&sub->q, pf, acc);
            rt_frame_unref(pf);
            continue;
        }
        rt_frame_t *f = entry_frame(e, sub->fmt, epoch);
        if (!f)
            return RT_E_NOMEM;
        rt__queue_replay_locked(&sub->q, f, acc);
    }
    return 0;
}
