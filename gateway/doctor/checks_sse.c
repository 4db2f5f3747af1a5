/*
 * checks_sse.c — the probe over Server-Sent Events (sse): the same topic as
 * the WebSocket, through the same proxies, which often buffer event streams
 * where they pass WebSocket frames. See checks.h.
 *
 * A buffering proxy may hold back the response head itself, not only the
 * events, so the probe is published after a short wait whatever has arrived,
 * and the head and the probe then share one RT__DELIVERY_MS window. The
 * verdict compares the delay with the WebSocket's (d->ws_delivery_ms).
 */
#define _GNU_SOURCE /* strcasestr */
#include "checks.h"
#include "clock.h"
#include "describe.h"
#include "err.h"
#include "http_client.h"
#include "probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SSE_ACK_MS 1000    /* phase 1: the head and rtgw.subscribed, at most this long */
#define SSE_PROMPT_MS 1000 /* a probe later than this over SSE: the stream is buffered */

/* One event stream being read. Owns c, r and body. */
typedef struct {
    rt__net_conn_t c;
    rt__http_resp_t *r;
    rt__buf_t body; /* the stream so far, de-chunked */
    rt__chunked_t ch;
    bool chunked, have_head, closed;
    char via[160];
    int64_t t0; /* when the request was sent */
} sse_t;

/* Feed what arrived on the SSE connection into the body (decoding chunked). */
static void sse_take(sse_t *s, const char *p, size_t n)
{
    if (s->chunked)
        rt__chunked_feed(&s->ch, p, n, &s->body);
    else
        rt__buf_add(&s->body, p, n);
}

/* Open the connection and send GET /v1/realtime/sse with the token. 0, or
 * -1 after reporting. */
static int sse_request(rt__doctor_t *d, sse_t *s)
{
    char why[512];
    if (rt__net_open(&d->net, &s->c, why, sizeof(why)) != 0) {
        rt__report(&d->rep, RT_CHECK_FAIL, "sse", why, NULL);
        return -1;
    }
    size_t cap = strlen(d->jwt) + 1024;
    char *req = malloc(cap);
    char originhdr[600] = "";
    if (d->o->origin)
        snprintf(originhdr, sizeof(originhdr), "Origin: %s\r\n", d->o->origin);
    int n = req ? snprintf(req, cap,
                           "GET /v1/realtime/sse?token=%s HTTP/1.1\r\nHost: %s\r\n"
                           "User-Agent: rtgw-doctor/%s\r\nAccept: text/event-stream\r\n"
                           "Cache-Control: no-cache\r\n%s\r\n",
                           d->jwt, d->net.hosthdr, RT_VERSION, originhdr)
                : -1;
    s->r = calloc(1, sizeof(*s->r));
    s->t0 = rt_clock_mono_ms();
    int rc = n < 0 || !s->r ? RT_E_NOMEM
                            : rt__net_write(&s->c, req, (size_t)n, s->t0 + d->net.timeout_ms);
    free(req);
    if (rc != 0) {
        rt__report(&d->rep, RT_CHECK_FAIL, "sse",
                   "the connection closed while sending GET /v1/realtime/sse", NULL);
        return -1;
    }
    return 0;
}

/* The head has arrived: it must be a 200 event stream. 0, or -1 after
 * reporting what answered instead. */
static int sse_head(rt__doctor_t *d, sse_t *s)
{
    rt__http_resp_t *r = s->r;
    char ct[128] = "", te[64] = "";
    s->have_head = true;
    rt__http_header(r->head, "Content-Type", ct, sizeof(ct));
    rt__via_server(r, s->via, sizeof(s->via));
    s->chunked =
        rt__http_header(r->head, "Transfer-Encoding", te, sizeof(te)) && strcasestr(te, "chunked");
    if (r->status == 200 && strcasestr(ct, "text/event-stream")) {
        sse_take(s, r->extra.p ? r->extra.p : "", r->extra.len);
        return 0;
    }
    rt__http_read_body(&s->c, r, rt_clock_mono_ms() + RT__ERROR_BODY_MS);
    char *e = rt__json_error_text(&r->body, false);
    char desc[300], found[1200];
    rt__describe_body(r, desc, sizeof(desc));
    snprintf(found, sizeof(found), "GET /v1/realtime/sse: HTTP %d (%s)%s, not an event stream",
             r->status, e ? e : desc, s->via);
    free(e);
    rt__report(&d->rep, RT_CHECK_FAIL, "sse", found,
               r->status == 502 || r->status == 504
                   ? rt__fix_backend_down
                   : "route /v1/realtime/sse to rtgw, with the query string intact");
    return -1;
}

/* Read the stream until want appears in it, it closes, or deadline. 0, or
 * -1 after reporting a head that is not an event stream. */
static int sse_read(rt__doctor_t *d, sse_t *s, const char *want, int64_t deadline)
{
    char tmp[8192];
    while (!s->closed && !(s->body.p && strstr(s->body.p, want))) {
        if (!s->have_head) {
            int h = rt__http_read_head(&s->c, s->r, deadline);
            if (h == RT_E_TIMEOUT)
                break;
            if (h != 0) {
                char found[1200];
                snprintf(found, sizeof(found), "GET /v1/realtime/sse: %s", rt__http_strerror(h));
                rt__report(&d->rep, RT_CHECK_FAIL, "sse", found, NULL);
                return -1;
            }
            if (sse_head(d, s) != 0)
                return -1;
            continue;
        }
        ssize_t k = rt__net_read(&s->c, tmp, sizeof(tmp), deadline);
        if (k == RT_E_TIMEOUT)
            break;
        if (k <= 0)
            s->closed = true;
        else
            sse_take(s, tmp, (size_t)k);
    }
    return 0;
}

/* The verdict once the window for the probe with nonce is over; ms: since
 * the window began. */
static int sse_verdict(rt__doctor_t *d, const sse_t *s, const char *nonce, int64_t ms)
{
    char found[1200];
    bool acked = s->body.p && strstr(s->body.p, "rtgw.subscribed");
    bool seen = s->body.p && strstr(s->body.p, nonce);
    if (seen && acked && ms < SSE_PROMPT_MS) {
        snprintf(found, sizeof(found),
                 "received the probe over SSE in %lld ms (WebSocket: %lld ms)%s", (long long)ms,
                 (long long)d->ws_delivery_ms, s->via);
        rt__report(&d->rep, RT_CHECK_OK, "sse", found, NULL);
        return 0;
    }
    if (seen) {
        snprintf(found, sizeof(found),
                 "the probe arrived over SSE only after %lld ms (WebSocket: %lld ms): a proxy "
                 "buffers the SSE stream%s",
                 (long long)ms, (long long)d->ws_delivery_ms, s->via);
        rt__report(&d->rep, RT_CHECK_WARN, "sse", found, rt__fix_sse);
        return 0;
    }
    if (s->closed) {
        snprintf(found, sizeof(found), "the SSE stream closed after %lld ms%s",
                 (long long)(rt_clock_mono_ms() - s->t0), s->via);
        rt__report(&d->rep, RT_CHECK_FAIL, "sse", found,
                   "a proxy closes streaming responses; raise its read timeout (proxy_read_timeout "
                   "3600s) and turn buffering off for /v1/realtime/sse");
        return -1;
    }
    snprintf(found, sizeof(found),
             "the probe did not arrive over SSE within %d s while the WebSocket got it in "
             "%lld ms; %s: a proxy buffers the SSE stream (proxy_buffering)%s",
             RT__DELIVERY_MS / 1000, (long long)d->ws_delivery_ms,
             !s->have_head      ? "not even the response headers arrived"
             : s->body.len == 0 ? "the headers came but not one byte of the stream"
                                : "the stream stalled",
             s->via);
    rt__report(&d->rep, RT_CHECK_FAIL, "sse", found, rt__fix_sse);
    return -1;
}

/* Phase 1: the head and the rtgw.subscribed acknowledgement (up to
 * SSE_ACK_MS), so the probe is not published before the stream subscribed.
 * Phase 2: publish, and wait for the probe. */
static int sse_run(rt__doctor_t *d, sse_t *s)
{
    if (sse_request(d, s) != 0 ||
        sse_read(d, s, "rtgw.subscribed", rt_clock_mono_ms() + SSE_ACK_MS) != 0)
        return -1;
    int64_t deadline = rt_clock_mono_ms() + RT__DELIVERY_MS;
    char nonce[40], why[512];
    rt__random_hex(nonce, 12);
    if (rt__probe_publish(d, nonce, why, sizeof(why)) != 0) {
        rt__report(&d->rep, RT_CHECK_FAIL, "sse", why, NULL);
        return -1;
    }
    if (sse_read(d, s, nonce, deadline) != 0)
        return -1;
    return sse_verdict(d, s, nonce, rt_clock_mono_ms() - (deadline - RT__DELIVERY_MS));
}

int rt__check_sse(rt__doctor_t *d)
{
    if (!d->ws_open || !d->o->signing_key || !d->jwt) {
        rt__report(&d->rep, RT_CHECK_SKIP, "sse",
                   !d->o->signing_key ? "needs --signing-key to publish a probe"
                                      : "no open WebSocket",
                   NULL);
        return 0;
    }
    sse_t s = {.c = {.fd = -1}};
    int rc = sse_run(d, &s);
    rt__buf_free(&s.body);
    if (s.r)
        rt__http_resp_free(s.r);
    free(s.r);
    rt__net_close(&s.c);
    return rc;
}
