/*
 * http_client.c — HTTP/1.1 for the doctor (see http_client.h).
 *
 * Why not a library: the doctor must see the exact status and headers a
 * proxy answered with (its own 400 to a mangled upgrade, a 502 page, a
 * buffered event stream), and a head read that survives a timeout, so that
 * the SSE check can publish while the head is still held back.
 */
#define _GNU_SOURCE /* strcasestr */
#include "http_client.h"
#include "clock.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BODY_MAX (1u << 20)

int rt__buf_add(rt__buf_t *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            return RT_E_NOMEM;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

void rt__buf_free(rt__buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void rt__http_resp_free(rt__http_resp_t *r)
{
    rt__buf_free(&r->body);
    rt__buf_free(&r->extra);
}

bool rt__http_header(const char *head, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l; l = strstr(l, "\r\n")) {
        l += 2;
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t vl = strcspn(v, "\r\n");
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (cap) {
                size_t k = vl < cap - 1 ? vl : cap - 1;
                memcpy(out, v, k);
                out[k] = 0;
            }
            return true;
        }
    }
    return false;
}

int rt__http_read_head(rt__net_conn_t *c, rt__http_resp_t *r, int64_t deadline)
{
    size_t len = strlen(r->head); /* resumable after a timeout: r starts zeroed */
    for (;;) {
        if (len + 1 >= sizeof(r->head))
            return RT_E_PROTOCOL;
        ssize_t n = rt__net_read(c, r->head + len, sizeof(r->head) - 1 - len, deadline);
        if (n == RT_E_TIMEOUT)
            return RT_E_TIMEOUT;
        if (n <= 0)
            return RT_E_CLOSED;
        len += (size_t)n;
        r->head[len] = 0;
        if (len >= 5 && strncmp(r->head, "HTTP/", 5) != 0)
            return RT_E_PROTOCOL;
        char *end = strstr(r->head, "\r\n\r\n");
        if (end) {
            size_t hl = (size_t)(end - r->head) + 4;
            rt__buf_add(&r->extra, r->head + hl, len - hl);
            r->head[hl] = 0;
            int st = 0;
            if (sscanf(r->head, "HTTP/%*d.%*d %d", &st) != 1)
                return RT_E_PROTOCOL;
            r->status = st;
            return 0;
        }
    }
}

int rt__chunked_feed(rt__chunked_t *ch, const char *p, size_t n, rt__buf_t *out)
{
    for (size_t i = 0; i < n;) {
        if (ch->state == 0) {
            char ch1 = p[i++];
            if (ch1 == '\n') {
                ch->line[ch->ll] = 0;
                ch->left = strtoul(ch->line, NULL, 16);
                ch->ll = 0;
                if (ch->left == 0) {
                    ch->state = 3;
                    return 1;
                }
                ch->state = 1;
            } else if (ch->ll + 1 < sizeof(ch->line)) {
                ch->line[ch->ll++] = ch1;
            } else {
                return RT_E_PROTOCOL;
            }
        } else if (ch->state == 1) {
            size_t k = n - i < ch->left ? n - i : ch->left;
            rt__buf_add(out, p + i, k);
            i += k;
            ch->left -= k;
            if (ch->left == 0)
                ch->state = 2;
        } else if (ch->state == 2) {
            if (p[i++] == '\n')
                ch->state = 0;
        } else {
            return 1;
        }
    }
    return ch->state == 3;
}

/* The body length the head announces: -1 up to end of stream (or chunked). */
static long long body_length(const rt__http_resp_t *r, bool *chunked)
{
    char v[64];
    *chunked =
        rt__http_header(r->head, "Transfer-Encoding", v, sizeof(v)) && strcasestr(v, "chunked");
    long long want = -1;
    if (!*chunked && rt__http_header(r->head, "Content-Length", v, sizeof(v)))
        want = strtoll(v, NULL, 10);
    if (r->status == 204 || r->status == 304 || (r->status >= 100 && r->status < 200))
        want = 0;
    return want;
}

int rt__http_read_body(rt__net_conn_t *c, rt__http_resp_t *r, int64_t deadline)
{
    bool chunked;
    long long want = body_length(r, &chunked);
    rt__chunked_t ch = {0};
    rt__buf_t raw = r->extra;
    r->extra = (rt__buf_t){0};
    char tmp[8192];
    int rc = 0;
    const char *p = raw.p;
    size_t n = raw.len;
    for (;;) {
        if (n) {
            if (chunked) {
                int k = rt__chunked_feed(&ch, p, n, &r->body);
                if (k != 0) {
                    rc = k < 0 ? RT_E_PROTOCOL : 0;
                    break;
                }
            } else {
                rt__buf_add(&r->body, p, n);
            }
        }
        if (!chunked && want >= 0 && (long long)r->body.len >= want)
            break;
        if (r->body.len > BODY_MAX)
            break;
        ssize_t k = rt__net_read(c, tmp, sizeof(tmp), deadline);
        if (k == RT_E_TIMEOUT) {
            rc = RT_E_TIMEOUT;
            break;
        }
        if (k <= 0) {
            rc = (!chunked && want < 0) ? 0 : RT_E_CLOSED;
            break;
        }
        p = tmp;
        n = (size_t)k;
    }
    rt__buf_free(&raw);
    if (!r->body.p)
        rt__buf_add(&r->body, "", 0);
    return rc;
}

const char *rt__http_strerror(int rc)
{
    switch (rc) {
    case RT_E_TIMEOUT:
        return "no response within the timeout";
    case RT_E_PROTOCOL:
        return "the answer is not HTTP";
    default:
        return "the server closed the connection without an HTTP response";
    }
}

int rt__http_do(rt__target_t *t, const char *method, const char *path, const char *headers,
                const char *body, rt__http_resp_t *r, char *why, size_t cap)
{
    memset(r, 0, sizeof(*r));
    rt__net_conn_t c;
    int rc = rt__net_open(t, &c, why, cap);
    if (rc != 0)
        return rc;
    char req[8192 + 2048];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: rtgw-doctor/%s\r\n"
                     "Accept: application/json\r\n%s%s%s%sContent-Length: %zu\r\nConnection: "
                     "close\r\n\r\n",
                     method, path, t->hosthdr, RT_VERSION, t->probe[0] ? "X-Rtgw-Probe: " : "",
                     t->probe, t->probe[0] ? "\r\n" : "", headers ? headers : "",
                     body ? strlen(body) : (size_t)0);
    int64_t deadline = rt_clock_mono_ms() + t->timeout_ms;
    if (n < 0 || (size_t)n >= sizeof(req)) {
        snprintf(why, cap, "request too large");
        rc = RT_E_TOOLONG;
    } else if (rt__net_write(&c, req, (size_t)n, deadline) != 0 ||
               (body && rt__net_write(&c, body, strlen(body), deadline) != 0)) {
        snprintf(why, cap, "the connection was closed while sending the request");
        rc = RT_E_IO;
    } else if ((rc = rt__http_read_head(&c, r, deadline)) != 0) {
        snprintf(why, cap, "%s", rt__http_strerror(rc));
    } else if (rt__http_read_body(&c, r, deadline) == RT_E_TIMEOUT) {
        snprintf(why, cap, "HTTP %d, but the body did not arrive within the timeout", r->status);
        rc = RT_E_TIMEOUT;
    }
    rt__net_close(&c);
    return rc;
}
