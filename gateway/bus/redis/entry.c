/*
 * entry.c — an event as Redis keeps it (a stream entry {t: topic, x: "1" for
 * extended-only frames, e: the event JSON without "id"}) or sends it live
 * ("<epoch>\n<id>\n<topic>\n<x>\n<json>") → a hub entry with its WebSocket
 * frame built once. Pure functions over replies and buffers the caller owns:
 * no I/O, no locks, any thread.
 */
#include "redis.h"

#include "err.h"

#include <stdlib.h>
#include <string.h>

rt_frame_t *rt__redis_frame_with_id(const char *json, size_t len, uint64_t epoch, uint64_t offset)
{
    if (len < 2 || json[len - 1] != '}')
        return NULL;
    char ps[RT_POS_MAX];
    int pl = rt_pos_format((rt_pos_t){epoch, offset}, ps, sizeof(ps));
    size_t n = len - 1 + 7 + (size_t)pl + 2;
    char stackbuf[4096];
    char *buf = n <= sizeof(stackbuf) ? stackbuf : malloc(n);
    if (!buf)
        return NULL;
    memcpy(buf, json, len - 1);
    size_t o = len - 1;
    memcpy(buf + o, ",\"id\":\"", 7);
    o += 7;
    memcpy(buf + o, ps, (size_t)pl);
    o += (size_t)pl;
    memcpy(buf + o, "\"}", 2);
    o += 2;
    rt_frame_t *f = rt_event_ws_frame(buf, o);
    if (buf != stackbuf)
        free(buf);
    return f;
}

/* The bytes the topics of an XRANGE reply need, each NUL-terminated. */
static size_t topic_bytes(const redisReply *arr)
{
    size_t tbytes = 0;
    for (size_t i = 0; i < arr->elements; i++) {
        const redisReply *e = arr->element[i];
        if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
            e->element[1]->type == REDIS_REPLY_ARRAY)
            for (size_t j = 0; j + 1 < e->element[1]->elements; j += 2)
                if (e->element[1]->element[j]->len == 1 && e->element[1]->element[j]->str[0] == 't')
                    tbytes += e->element[1]->element[j + 1]->len + 1;
    }
    return tbytes;
}

/* The fields of one stream entry (borrowed from the reply). */
typedef struct {
    uint64_t off;
    const char *topic, *json;
    size_t tl, jl;
    bool ext;
} stored_t;

/* One XRANGE element [id, [field, value, …]] into *s; false if it is not an
 * entry of ours (it is skipped). */
static bool stored_parse(const redisReply *e, stored_t *s)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
        return false;
    if (!rt__redis_stream_id_parse(e->element[0]->str, e->element[0]->len, &s->off))
        return false;
    const redisReply *f = e->element[1];
    *s = (stored_t){.off = s->off};
    for (size_t j = 0; j + 1 < f->elements; j += 2) {
        const redisReply *name = f->element[j], *val = f->element[j + 1];
        if (name->len != 1 || val->type != REDIS_REPLY_STRING)
            continue;
        if (name->str[0] == 't') {
            s->topic = val->str;
            s->tl = val->len;
        } else if (name->str[0] == 'e') {
            s->json = val->str;
            s->jl = val->len;
        } else if (name->str[0] == 'x') {
            s->ext = val->len == 1 && val->str[0] == '1';
        }
    }
    return s->topic && s->json;
}

int rt__redis_entries_parse(const redisReply *arr, uint64_t epoch, rt_backfill_t *bf)
{
    size_t n = arr->elements;
    rt_hub_entry_t *v = calloc(1, n * sizeof(*v) + topic_bytes(arr) + 1);
    if (!v)
        return RT_E_NOMEM;
    char *tp = (char *)(v + n);
    size_t k = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        stored_t s;
        if (!stored_parse(arr->element[i], &s))
            continue;
        rt_frame_t *fr = rt__redis_frame_with_id(s.json, s.jl, epoch, s.off);
        if (!fr) {
            rc = RT_E_NOMEM;
            break;
        }
        memcpy(tp, s.topic, s.tl);
        tp[s.tl] = 0;
        v[k++] = (rt_hub_entry_t){s.off, {tp, s.tl}, s.ext, fr};
        tp += s.tl + 1;
    }
    bf->v = v;
    bf->n = k;
    return rc;
}

bool rt__redis_live_parse(const char *msg, size_t len, uint64_t *epoch, rt_hub_entry_t *e)
{
    const char *part[4];
    size_t plen[4];
    const char *p = msg, *end = msg + len;
    for (int i = 0; i < 4; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return false;
        part[i] = p;
        plen[i] = (size_t)(nl - p);
        p = nl + 1;
    }
    uint64_t off;
    if (!rt__redis_epoch_parse(part[0], plen[0], epoch) ||
        !rt__redis_stream_id_parse(part[1], plen[1], &off))
        return false;
    rt_frame_t *f = rt__redis_frame_with_id(p, (size_t)(end - p), *epoch, off);
    if (!f)
        return false;
    *e = (rt_hub_entry_t){off, {part[2], plen[2]}, plen[3] == 1 && part[3][0] == '1', f};
    return true;
}
