/*
 * common.c — base URLs, growing buffers, error filling, credentials and one
 * HTTP exchange over civetweb's client API (mg_connect_client, mg_get_response,
 * mg_read). This file and subscribe.c are the only ones that include civetweb.h.
 */
#include "internal.h"

#include "rt_tokens.h"

#include <civetweb.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RTC_MAX_REPLY (1u << 20)

/* ---- init ---- */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_rc;
static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;
static int tls_state; /* 0 untried, 1 ok, -1 unavailable */

static void lib_init_once(void)
{
    lib_rc = rt_tokens_init() == 0 ? 0 : RTC_ENOMEM;
    if (lib_rc == 0)
        mg_init_library(0);
}

int rtc_init(void)
{
    pthread_once(&lib_once, lib_init_once);
    return lib_rc;
}

int rtc__lib_init(int tls)
{
    int rc = rtc_init();
    if (rc || !tls)
        return rc;
    pthread_mutex_lock(&tls_lock);
    if (tls_state == 0) {
        /* A second mg_init_library call only adds the TLS feature. */
        tls_state = (mg_check_feature(MG_FEATURES_TLS) &&
                     (mg_init_library(MG_FEATURES_TLS) & MG_FEATURES_TLS))
                        ? 1
                        : -1;
    }
    rc = tls_state == 1 ? 0 : RTC_ETLS;
    pthread_mutex_unlock(&tls_lock);
    return rc;
}

/* ---- URL ---- */

int rtc__url_parse(const char *base, rtc__url_t *u)
{
    memset(u, 0, sizeof(*u));
    if (!base)
        return RTC_EURL;
    const char *p;
    if (strncmp(base, "http://", 7) == 0) {
        p = base + 7;
        u->port = 80;
    } else if (strncmp(base, "https://", 8) == 0) {
        p = base + 8;
        u->port = 443;
        u->tls = 1;
    } else {
        return RTC_EURL;
    }
    const char *hend;
    if (*p == '[') {
        hend = strchr(p, ']');
        if (!hend || hend == p + 1 || (size_t)(hend - p - 1) >= sizeof(u->host))
            return RTC_EURL;
        memcpy(u->host, p + 1, (size_t)(hend - p - 1));
        hend++;
    } else {
        hend = p + strcspn(p, ":/?#");
        if (hend == p || (size_t)(hend - p) >= sizeof(u->host))
            return RTC_EURL;
        memcpy(u->host, p, (size_t)(hend - p));
    }
    p = hend;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535)
            return RTC_EURL;
        u->port = (int)port;
        p = end;
    }
    if (*p == '?' || *p == '#')
        return RTC_EURL;
    if (*p && *p != '/')
        return RTC_EURL;
    size_t pl = strcspn(p, "?#");
    if (p[pl])
        return RTC_EURL;
    while (pl && p[pl - 1] == '/')
        pl--;
    if (pl >= sizeof(u->prefix))
        return RTC_EURL;
    memcpy(u->prefix, p, pl);
    for (const char *h = u->host; *h; h++)
        if ((unsigned char)*h <= ' ' || *h == '@')
            return RTC_EURL;
    return 0;
}

/* ---- buffers ---- */

int rtc__buf_add(rtc__buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            return RTC_ENOMEM;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int rtc__buf_adds(rtc__buf_t *b, const char *s)
{
    return rtc__buf_add(b, s, strlen(s));
}

int rtc__buf_addenc(rtc__buf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char e[3];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            if (rtc__buf_add(b, (const char *)&c, 1))
                return RTC_ENOMEM;
            continue;
        }
        e[0] = '%';
        e[1] = hex[c >> 4];
        e[2] = hex[c & 15];
        if (rtc__buf_add(b, e, 3))
            return RTC_ENOMEM;
    }
    return 0;
}

void rtc__buf_free(rtc__buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- errors ---- */

int rtc__fail(rtc_error_t *err, int code, int status, const char *name, const char *fmt, ...)
{
    if (!err)
        return code;
    memset(err, 0, sizeof(*err));
    err->code = code;
    err->status = status;
    snprintf(err->name, sizeof(err->name), "%s", name ? name : rtc_errname(code));
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    } else {
        snprintf(err->message, sizeof(err->message), "%s", rtc_strerror(code));
    }
    return code;
}

int rtc__http_refusal(int status, const char *body, size_t len, rtc_error_t *err)
{
    int code = status == 401 ? RTC_EUNAUTHORIZED : status == 403 ? RTC_EFORBIDDEN : RTC_EHTTP;
    json_error_t je;
    json_t *o = body ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    const char *name = NULL, *msg = NULL;
    if (json_is_object(o)) {
        name = json_string_value(json_object_get(o, "error"));
        msg = json_string_value(json_object_get(o, "message"));
    }
    if (name)
        rtc__fail(err, code, status, name, "%s", msg ? msg : name);
    else
        rtc__fail(err, code, status, NULL, "HTTP %d from the gateway", status);
    json_decref(o);
    return code;
}

/* ---- credentials ---- */

char *rtc__bearer(const char *credential)
{
    if (strncmp(credential, "signkey-", 8) == 0 &&
        rt_signing_key_validate(rt_slice_cstr(credential)) == 0) {
        char h[RT_TOK_HASHED_KEY_MAX];
        if (rt_signing_key_hash(rt_slice_cstr(credential), h, sizeof(h)) < 0)
            return NULL;
        return strdup(h);
    }
    return strdup(credential);
}

/* ---- HTTP ---- */

static int write_all(struct mg_connection *c, const void *p, size_t n)
{
    return n == 0 || mg_write(c, p, n) == (int)n ? 0 : -1;
}

int rtc__http(const rtc__url_t *u, const rtc__req_t *req, int *status, char **resp,
              size_t *resp_len, rtc_error_t *err)
{
    *status = 0;
    *resp = NULL;
    *resp_len = 0;
    int rc = rtc__lib_init(u->tls);
    if (rc)
        return rtc__fail(err, rc, 0, NULL, NULL);
    char ebuf[256] = "";
    struct mg_connection *c = mg_connect_client(u->host, u->port, u->tls, ebuf, sizeof(ebuf));
    if (!c)
        return rtc__fail(err, RTC_ECONNECT, 0, NULL, "cannot connect to %s:%d (%s)", u->host,
                         u->port, ebuf[0] ? ebuf : "connection failed");
    int timeout = req->timeout_ms > 0 ? req->timeout_ms : 10000;
    int n = mg_printf(c,
                      "%s %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: rtgw_client/" RT_VERSION
                      "\r\nConnection: close\r\n",
                      req->method, req->target, u->host, u->port);
    if (n > 0 && req->bearer)
        n = mg_printf(c, "Authorization: Bearer %s\r\n", req->bearer);
    if (n > 0 && req->content_type)
        n = mg_printf(c, "Content-Type: %s\r\n", req->content_type);
    if (n > 0 && req->extra_header)
        n = mg_printf(c, "%s\r\n", req->extra_header);
    if (n > 0) {
        if (req->next)
            n = mg_printf(c, "Transfer-Encoding: chunked\r\n\r\n");
        else
            n = mg_printf(c, "Content-Length: %zu\r\n\r\n", req->len);
    }
    if (n <= 0) {
        mg_close_connection(c);
        return rtc__fail(err, RTC_EIO, 0, NULL, "sending the request to %s:%d failed", u->host,
                         u->port);
    }
    if (req->next) {
        char chunk[4096];
        for (;;) {
            long got = req->next(chunk, sizeof(chunk), req->next_user);
            if (got < 0) {
                mg_close_connection(c);
                return rtc__fail(err, RTC_ECALLBACK, 0, NULL,
                                 "the chunk callback aborted the stream");
            }
            if (got > (long)sizeof(chunk))
                got = sizeof(chunk);
            char head[32];
            int hl = snprintf(head, sizeof(head), "%lx\r\n", (unsigned long)got);
            if (write_all(c, head, (size_t)hl) ||
                (got && (write_all(c, chunk, (size_t)got) || write_all(c, "\r\n", 2)))) {
                mg_close_connection(c);
                return rtc__fail(err, RTC_EIO, 0, NULL, "the gateway closed the stream");
            }
            if (got == 0) {
                if (write_all(c, "\r\n", 2)) {
                    mg_close_connection(c);
                    return rtc__fail(err, RTC_EIO, 0, NULL, "the gateway closed the stream");
                }
                break;
            }
        }
    } else if (write_all(c, req->body, req->len)) {
        mg_close_connection(c);
        return rtc__fail(err, RTC_EIO, 0, NULL, "sending the body to %s:%d failed", u->host,
                         u->port);
    }
    ebuf[0] = '\0';
    if (mg_get_response(c, ebuf, sizeof(ebuf), timeout) < 0) {
        mg_close_connection(c);
        bool to = strstr(ebuf, "imed out") || strstr(ebuf, "imeout");
        return rtc__fail(err, to ? RTC_ETIMEOUT : RTC_EIO, 0, NULL,
                         "no valid reply from %s:%d within %d ms (%s)", u->host, u->port, timeout,
                         ebuf[0] ? ebuf : "connection closed");
    }
    const struct mg_response_info *ri = mg_get_response_info(c);
    *status = ri ? ri->status_code : 0;
    rtc__buf_t b = {0};
    if (rtc__buf_add(&b, "", 0)) {
        mg_close_connection(c);
        return rtc__fail(err, RTC_ENOMEM, *status, NULL, NULL);
    }
    char tmp[4096];
    int r;
    while ((r = mg_read(c, tmp, sizeof(tmp))) > 0) {
        if (b.len + (size_t)r > RTC_MAX_REPLY || rtc__buf_add(&b, tmp, (size_t)r)) {
            rtc__buf_free(&b);
            mg_close_connection(c);
            return rtc__fail(err, RTC_EPROTO, *status, NULL, "reply too large");
        }
    }
    mg_close_connection(c);
    *resp = b.p;
    *resp_len = b.len;
    return 0;
}
