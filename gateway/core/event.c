#include "event.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int rt_pos_format(rt_pos_t pos, char *out, size_t cap)
{
    return snprintf(out, cap, "%" PRIx64 "-%" PRIu64, pos.epoch, pos.offset);
}

int rt_pos_parse(rt_slice_t s, rt_pos_t *out)
{
    if (s.len == 0 || s.len >= RT_POS_MAX)
        return -1;
    uint64_t e = 0, o = 0;
    size_t i = 0, nd = 0;
    for (; i < s.len && s.base[i] != '-'; i++, nd++) {
        char c = s.base[i];
        int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (v < 0 || nd >= 16)
            return -1;
        e = e * 16 + (uint64_t)v;
    }
    if (nd == 0 || i >= s.len || s.base[i] != '-')
        return -1;
    if (s.base[0] == '0' && nd > 1)
        return -1; /* canonical: rt_pos_format never writes a leading zero */
    i++;
    if (i >= s.len || s.len - i > 19)
        return -1;
    if (s.base[i] == '0' && s.len - i > 1)
        return -1; /* canonical: no leading zeros */
    for (; i < s.len; i++) {
        char c = s.base[i];
        if (c < '0' || c > '9')
            return -1;
        o = o * 10 + (uint64_t)(c - '0');
    }
    out->epoch = e;
    out->offset = o;
    return 0;
}

int rt_json_put_string(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = *len;
    if (o + 2 > cap)
        return -1;
    buf[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o + 7 > cap)
            return -1;
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20) {
            buf[o++] = '\\';
            switch (c) {
            case '\n':
                buf[o++] = 'n';
                break;
            case '\r':
                buf[o++] = 'r';
                break;
            case '\t':
                buf[o++] = 't';
                break;
            case '\b':
                buf[o++] = 'b';
                break;
            case '\f':
                buf[o++] = 'f';
                break;
            default:
                buf[o++] = 'u';
                buf[o++] = '0';
                buf[o++] = '0';
                buf[o++] = hex[c >> 4];
                buf[o++] = hex[c & 15];
            }
        } else {
            buf[o++] = (char)c;
        }
    }
    if (o + 1 > cap)
        return -1;
    buf[o++] = '"';
    *len = o;
    return 0;
}

int rt_rfc3339_ms(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    return snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static int put_raw(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
    if (*len + n > cap)
        return -1;
    memcpy(buf + *len, s, n);
    *len += n;
    return 0;
}

#define PUT_LIT(lit) put_raw(buf, cap, &o, lit, sizeof(lit) - 1)

char *rt_event_json(const rt_event_t *ev, const rt_pos_t *pos, size_t *len)
{
    /* Escaping can grow a string six-fold; data is already JSON. */
    size_t cap = 220 + ev->data.len + ev->metadata.len +
                 6 * (ev->channel.len + ev->topic.len + ev->env_id.len + ev->run_id.len +
                      ev->fn_id.len + ev->fn_slug.len + ev->stream_id.len + strlen(ev->kind));
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    size_t o = 0;
    char ts[40], ps[RT_POS_MAX];
    int tl = rt_rfc3339_ms(ev->created_at_ms, ts, sizeof(ts));
    int rc = PUT_LIT("{\"kind\":");
    rc |= rt_json_put_string(buf, cap, &o, ev->kind, strlen(ev->kind));
    rc |= PUT_LIT(",\"channel\":");
    rc |= rt_json_put_string(buf, cap, &o, ev->channel.base, ev->channel.len);
    rc |= PUT_LIT(",\"topic\":");
    rc |= rt_json_put_string(buf, cap, &o, ev->topic.base, ev->topic.len);
    rc |= PUT_LIT(",\"data\":");
    if (ev->data.len)
        rc |= put_raw(buf, cap, &o, ev->data.base, ev->data.len);
    else
        rc |= PUT_LIT("\"\"");
    if (ev->metadata.len) {
        rc |= PUT_LIT(",\"metadata\":");
        rc |= put_raw(buf, cap, &o, ev->metadata.base, ev->metadata.len);
    }
    rc |= PUT_LIT(",\"created_at\":");
    rc |= rt_json_put_string(buf, cap, &o, ts, (size_t)tl);
    if (ev->env_id.len) {
        rc |= PUT_LIT(",\"env_id\":");
        rc |= rt_json_put_string(buf, cap, &o, ev->env_id.base, ev->env_id.len);
    }
    if (ev->run_id.len) {
        rc |= PUT_LIT(",\"run_id\":");
        rc |= rt_json_put_string(buf, cap, &o, ev->run_id.base, ev->run_id.len);
    }
    if (ev->fn_id.len) {
        rc |= PUT_LIT(",\"fn_id\":");
        rc |= rt_json_put_string(buf, cap, &o, ev->fn_id.base, ev->fn_id.len);
    }
    if (ev->fn_slug.len) {
        rc |= PUT_LIT(",\"fn_slug\":");
        rc |= rt_json_put_string(buf, cap, &o, ev->fn_slug.base, ev->fn_slug.len);
    }
    if (ev->stream_id.len) {
        rc |= PUT_LIT(",\"stream_id\":");
        rc |= rt_json_put_string(buf, cap, &o, ev->stream_id.base, ev->stream_id.len);
    }
    if (pos) {
        int pl = rt_pos_format(*pos, ps, sizeof(ps));
        rc |= PUT_LIT(",\"id\":");
        rc |= rt_json_put_string(buf, cap, &o, ps, (size_t)pl);
    }
    rc |= PUT_LIT("}");
    if (rc) {
        free(buf);
        return NULL;
    }
    *len = o;
    return buf;
}

rt_frame_t *rt_event_ws_frame(const char *json, size_t len)
{
    return rt_ws_frame_new(RT_WS_TEXT, json, len);
}

/* The bytes of a raw event (its data string) as a frame; NULL on OOM or if
 * json is not such an event. */
static rt_frame_t *raw_sse_frame(const char *json, size_t len)
{
    json_error_t err;
    json_t *o = json_loadb(json, len, JSON_ALLOW_NUL, &err);
    json_t *d = json_object_get(o, "data");
    rt_frame_t *f = json_is_string(d) ? rt_frame_new(json_string_length(d)) : NULL;
    if (f) {
        memcpy(f->data, json_string_value(d), json_string_length(d));
        f->len = (uint32_t)json_string_length(d);
    }
    json_decref(o);
    return f;
}

rt_frame_t *rt_event_sse_frame(const char *json, size_t len, const rt_pos_t *pos)
{
    static const char raw[] = "{\"kind\":\"" RT_EVENT_KIND_RAW "\",";
    if (len > sizeof(raw) - 1 && memcmp(json, raw, sizeof(raw) - 1) == 0)
        return raw_sse_frame(json, len);
    char ps[RT_POS_MAX] = "";
    int pl = pos ? rt_pos_format(*pos, ps, sizeof(ps)) : 0;
    rt_frame_t *f = rt_frame_new(len + (size_t)pl + 32);
    if (!f)
        return NULL;
    int n = 0;
    if (pos)
        n = snprintf(f->data, f->cap, "id: %s\n", ps);
    memcpy(f->data + n, "data: ", 6);
    n += 6;
    memcpy(f->data + n, json, len);
    n += (int)len;
    memcpy(f->data + n, "\n\n", 2);
    f->len = (uint32_t)(n + 2);
    return f;
}
