/*
 * http.c — HTTP helpers (see http.h). Civetweb request threads only; no
 * locks of their own (the limiters lock themselves).
 */
#include "http.h"
#include "httplist.h"
#include "clock.h"
#include "err.h"
#include "frontdoor.h"
#include "linger.h"
#include "log.h"
#include "httphead.h"
#include "probe_record.h"
#include "sockhook.h"

#include <civetweb.h>
#include <stddef.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The server a request belongs to: the user data of civetweb's context. */
static rt_server_t *srv_of(struct mg_connection *conn)
{
    return mg_get_user_data(mg_get_context(conn));
}

/* civetweb's headers are read as rt_http_header_t (httphead.h). */
_Static_assert(sizeof(struct mg_header) == sizeof(rt_http_header_t) &&
                   offsetof(struct mg_header, name) == offsetof(rt_http_header_t, name) &&
                   offsetof(struct mg_header, value) == offsetof(rt_http_header_t, value),
               "struct mg_header is rt_http_header_t's layout");

void rt__req_of(struct mg_connection *conn, rt__req_t *req)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    *req = (rt__req_t){ri->request_method,
                       ri->local_uri_raw,
                       ri->query_string,
                       ri->http_version,
                       ri->remote_addr,
                       ri->remote_port,
                       (const rt_http_header_t *)ri->http_headers,
                       ri->num_headers};
}

const char *rt__req_header(const rt__req_t *req, const char *name)
{
    for (int i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

const char *rt__req_cors_origin(rt_server_t *srv, const rt__req_t *req)
{
    const char *o = rt__req_header(req, "Origin");
    if (!o || !rt_livecell_origin_allowed(srv->live, o))
        return NULL;
    return o;
}

const char *rt__cors_origin(rt_server_t *srv, struct mg_connection *conn)
{
    rt__req_t req;
    rt__req_of(conn, &req);
    return rt__req_cors_origin(srv, &req);
}

/* Whether the connection closes after this response because the request
 * asked for it: HTTP/1.0 without "Connection: keep-alive", or any
 * "Connection: close". Such a response must say "Connection: close" itself
 * (RFC 9112 section 9.6): a proxy that pools connections (nginx's upstream
 * keepalive) otherwise keeps the connection, and its next request on it fails
 * with "upstream prematurely closed connection" (a 502 to its client). */
bool rt__req_closes(const rt__req_t *req)
{
    const char *h = rt__req_header(req, "Connection");
    if (rt_http_list_has(h, "close"))
        return true;
    bool http10 = req->http_version && strcmp(req->http_version, "1.0") == 0;
    return http10 && !rt_http_list_has(h, "keep-alive");
}

const char *rt__connection_close_header(struct mg_connection *conn)
{
    rt__req_t req;
    rt__req_of(conn, &req);
    return rt__req_closes(&req) ? "Connection: close\r\n" : "";
}

int rt__write(struct mg_connection *conn, const void *buf, size_t len)
{
    int n = mg_write(conn, buf, len);
    if (n < 0 || (size_t)n != len)
        mg_disable_connection_keep_alive(conn);
    return n < 0 || (size_t)n != len ? RT_E_IO : 0;
}

int rt__printf(struct mg_connection *conn, const char *fmt, ...)
{
    char small[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return RT_E_INVAL;
    if ((size_t)n < sizeof(small))
        return rt__write(conn, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big) {
        mg_disable_connection_keep_alive(conn);
        return RT_E_NOMEM;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = rt__write(conn, big, (size_t)n);
    free(big);
    return rc;
}

int rt__json_head(rt_server_t *srv, const rt__req_t *req, int status, size_t len,
                  const char *extra_headers, char *out, size_t cap)
{
    const char *origin = rt__req_cors_origin(srv, req);
    /* Date lets clients (and rtgw doctor) measure clock skew against rtgw. */
    char date[64];
    time_t now = (time_t)(rt_clock_wall_ms() / 1000);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    bool own_connection = extra_headers && strstr(extra_headers, "Connection:");
    return snprintf(out, cap,
                    "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                    "Cache-Control: no-store\r\nDate: %s\r\n" RT__MARK_HEADER "%s%s%s%s%s\r\n",
                    status, mg_get_response_code_text(NULL, status), len, date,
                    origin ? "Access-Control-Allow-Origin: " : "", origin ? origin : "",
                    origin ? "\r\nVary: Origin\r\n" : "", extra_headers ? extra_headers : "",
                    !own_connection && rt__req_closes(req) ? "Connection: close\r\n" : "");
}

void rt__send_json(struct mg_connection *conn, int status, const char *body, size_t len,
                   const char *extra_headers)
{
    rt__req_t req;
    rt__req_of(conn, &req);
    char small[1024];
    int n = rt__json_head(srv_of(conn), &req, status, len, extra_headers, small, sizeof(small));
    if (n < 0)
        return;
    int rc;
    if ((size_t)n < sizeof(small)) {
        rc = rt__write(conn, small, (size_t)n);
    } else { /* a long allowed Origin */
        char *big = malloc((size_t)n + 1);
        if (!big) {
            mg_disable_connection_keep_alive(conn);
            return;
        }
        rt__json_head(srv_of(conn), &req, status, len, extra_headers, big, (size_t)n + 1);
        rc = rt__write(conn, big, (size_t)n);
        free(big);
    }
    if (rc == 0)
        rt__write(conn, body, len);
}

void rt__send_resp(struct mg_connection *conn, rt_resp_t *r)
{
    rt__send_json(conn, r->status, r->body ? r->body : "{}", r->body ? r->len : 2, NULL);
    rt_resp_clear(r);
}

void rt__send_error(struct mg_connection *conn, int status, const char *name, const char *fmt, ...)
{
    rt_resp_t r = {0};
    va_list ap;
    va_start(ap, fmt);
    rt_resp_errorv(&r, status, name, fmt, ap); /* the api's refusal body, one way */
    va_end(ap);
    rt__send_resp(conn, &r);
}

void rt__req_log(const rt__req_t *req, int status)
{
    if (!rt_log_enabled(RT_LOG_DEBUG))
        return;
    char url[512];
    rt_log_redact_url(req->uri_raw, req->query, url, sizeof(url));
    char q[600];
    rt_log_quote(url, q, sizeof(q));
    rt_log_debug("request", "method=%s url=%s status=%d peer=%s", req->method, q, status,
                 req->remote_addr);
}

void rt__log_request(struct mg_connection *conn, int status)
{
    rt__req_t req;
    rt__req_of(conn, &req);
    rt__req_log(&req, status);
}

void rt__req_client_ip(rt_server_t *srv, const rt__req_t *req, char *out, size_t cap)
{
    rt_client_ip(req->remote_addr, rt__req_header(req, "X-Forwarded-For"),
                 srv->cfg->trusted_proxies, out, cap);
}

void rt__client_ip(rt_server_t *srv, struct mg_connection *conn, char *out, size_t cap)
{
    rt__req_t req;
    rt__req_of(conn, &req);
    rt__req_client_ip(srv, &req, out, cap);
}

int rt__rate_check(rt_server_t *srv, const rt__req_t *req, rt_limiter_t *l, double cost,
                   const char *what, const char *var, rt_resp_t *r, char *hdr, size_t cap)
{
    char ip[64];
    rt__req_client_ip(srv, req, ip, sizeof(ip));
    int64_t wait = rt_limiter_take(l, ip, cost, rt_clock_mono_ms());
    if (wait == 0)
        return 0;
    atomic_fetch_add(&srv->metrics.refusals[RT_REASON_RATE_LIMITED], 1);
    long secs = (long)((wait + 999) / 1000);
    char msg[200];
    snprintf(hdr, cap, "Retry-After: %ld\r\n", secs);
    snprintf(msg, sizeof(msg), "too many %s from %s; retry after %ld s (%s)", what, ip, secs, var);
    json_t *o = json_pack("{s:s,s:s,s:I}", "error", "rate_limited", "message", msg, "retry_after",
                          (json_int_t)secs);
    r->status = 429;
    r->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    r->len = r->body ? strlen(r->body) : 0;
    json_decref(o);
    rt_log_info("rate limited", "what=%s ip=%s retry_after=%ld", what, ip, secs);
    return RT_E_LIMIT;
}

int rt__rate_limit(rt_server_t *srv, struct mg_connection *conn, rt_limiter_t *l, double cost,
                   const char *what, const char *var)
{
    rt__req_t req;
    rt__req_of(conn, &req);
    rt_resp_t r = {0};
    char hdr[48];
    if (rt__rate_check(srv, &req, l, cost, what, var, &r, hdr, sizeof(hdr)) == 0)
        return 0;
    rt__send_json(conn, r.status, r.body ? r.body : "{}", r.body ? r.len : 2, hdr);
    rt_resp_clear(&r);
    return RT_E_LIMIT;
}

int rt__expect_continue(struct mg_connection *conn)
{
    const char *e = mg_get_header(conn, "Expect");
    if (!e)
        return 0;
    if (strcasecmp(e, "100-continue") != 0) {
        rt__send_error(conn, 417, "expectation_failed", "only Expect: 100-continue is supported");
        return RT_E_INVAL;
    }
    rt__printf(conn, "HTTP/1.1 100 Continue\r\n\r\n");
    return 0;
}

/* Answer status {"error":name,...} with Connection: close, and make civetweb
 * close the connection afterwards instead of reading another request from it. */
static void refuse_and_close(struct mg_connection *conn, int status, const char *name,
                             const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void refuse_and_close(struct mg_connection *conn, int status, const char *name,
                             const char *fmt, ...)
{
    rt_resp_t r = {0};
    va_list ap;
    va_start(ap, fmt);
    rt_resp_errorv(&r, status, name, fmt, ap);
    va_end(ap);
    mg_disable_connection_keep_alive(conn);
    rt__send_json(conn, r.status, r.body ? r.body : "{}", r.body ? r.len : 2,
                  "Connection: close\r\n");
    rt_resp_clear(&r);
}

/* Answer 413 and end the connection cleanly. The client may still be sending
 * the body: closing with it unread would reset the connection, and a client or
 * a proxy in front would then report the reset instead of the 413. So the rest
 * is read and dropped (at most 8 MiB, for at most 2 s) before civetweb closes
 * the connection. A client that sent Expect: 100-continue has sent no body.
 * Returns RT_E_TOOLONG. */
static int refuse_too_large(struct mg_connection *conn, size_t max, long long announced)
{
    char msg[200];
    if (announced >= 0)
        snprintf(msg, sizeof(msg),
                 "request body is %lld bytes; the limit is %zu (RTGW_MAX_BODY_BYTES)", announced,
                 max);
    else
        snprintf(msg, sizeof(msg),
                 "request body exceeds the limit of %zu bytes (RTGW_MAX_BODY_BYTES)", max);
    json_t *o = json_pack("{s:s,s:s}", "error", "body_too_large", "message", msg);
    char *js = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    mg_disable_connection_keep_alive(conn);
    rt__send_json(conn, 413, js ? js : "{}", js ? strlen(js) : 2, "Connection: close\r\n");
    free(js);
    if (mg_get_header(conn, "Expect"))
        return RT_E_TOOLONG;
    char scratch[16384];
    size_t dropped = 0;
    int64_t until = rt_clock_mono_ms() + 2000;
    while (dropped < (8u << 20) && rt_clock_mono_ms() < until) {
        int n = mg_read(conn, scratch, sizeof(scratch));
        if (n <= 0)
            break;
        dropped += (size_t)n;
    }
    return RT_E_TOOLONG;
}

/* Answer 500 for an allocation that failed. Returns RT_E_NOMEM. */
static int refuse_nomem(struct mg_connection *conn)
{
    rt__send_error(conn, 500, "internal_error", "out of memory");
    return RT_E_NOMEM;
}

/* conn's socket (-1 if unknown), looked up once per body: the peer table is
 * under a lock every request thread shares. */
static int conn_fd(struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    return rt__sockhook_fd_of(ri->remote_addr, ri->remote_port, ri->server_port);
}

/* Answer 400 body_incomplete for a body not whole by its deadline (len bytes
 * of announced, -1: chunked). Returns RT_E_CLOSED. */
static int refuse_late(struct mg_connection *conn, size_t len, long long announced,
                       int64_t timeout_ms)
{
    char got[96];
    if (announced >= 0)
        snprintf(got, sizeof(got), "%zu of the %lld bytes its Content-Length announced", len,
                 announced);
    else
        snprintf(got, sizeof(got), "%zu bytes of a chunked body", len);
    refuse_and_close(conn, 400, "body_incomplete",
                     "the body ended after %s: it must arrive whole within "
                     "RTGW_REQUEST_TIMEOUT_MS (%lld ms); nothing was done",
                     got, (long long)timeout_ms);
    return RT_E_CLOSED;
}

/* Read the body into buf (cap bytes, grown by doubling) until it ends, all of
 * it: a body shorter than its Content-Length is refused. fd is conn's socket,
 * whose read deadline this sets; the caller clears it. Returns 0 with *pbuf,
 * *plen set, or an error after answering it (buf freed). */
static int read_all(struct mg_connection *conn, int fd, size_t max, char *buf, size_t cap,
                    char **pbuf, size_t *plen)
{
    size_t len = 0;
    /* civetweb's read timeout bounds one wait for bytes, and mg_read goes on
     * while each byte comes within it: a client dribbling a byte now and then
     * would hold this thread for ever. The whole body gets
     * RTGW_REQUEST_TIMEOUT_MS: the socket's reads fail after it (sockhook.c),
     * and the loop stops there. The caller clears the deadline. */
    int64_t timeout_ms = srv_of(conn)->cfg->request_timeout_ms;
    int64_t until = rt_clock_mono_ms() + timeout_ms;
    long long announced = mg_get_request_info(conn)->content_length;
    rt__sockhook_read_deadline(fd, until);
    for (;;) {
        if (len == cap - 1) {
            if (cap - 1 > max) {
                free(buf);
                rt__sockhook_read_deadline(fd, 0); /* the drain after a 413 keeps its own bound */
                return refuse_too_large(conn, max, -1);
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return refuse_nomem(conn);
            }
            buf = nb;
            cap *= 2;
        }
        int n = mg_read(conn, buf + len, cap - 1 - len);
        if (n < 0) { /* the client closed, or the read failed, mid-body */
            free(buf);
            if (rt_clock_mono_ms() >= until)
                return refuse_late(conn, len, announced, timeout_ms);
            refuse_and_close(conn, 400, "body_incomplete",
                             "the body could not be read to its end (the client closed or the "
                             "read failed after %zu bytes); nothing was done",
                             len);
            return RT_E_CLOSED;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            free(buf);
            rt__sockhook_read_deadline(fd, 0); /* the drain after a 413 keeps its own bound */
            return refuse_too_large(conn, max, -1);
        }
        if ((announced < 0 || len < (size_t)announced) && rt_clock_mono_ms() >= until) {
            free(buf);
            return refuse_late(conn, len, announced, timeout_ms);
        }
    }
    if (announced >= 0 && len < (size_t)announced) {
        /* mg_read ends a short body at its read timeout as if it were
         * complete; a publish must be all or nothing. */
        free(buf);
        refuse_and_close(conn, 400, "body_incomplete",
                         "the body ended after %zu of the %lld bytes its Content-Length "
                         "announced (the client stopped sending or closed); nothing was done",
                         len, announced);
        return RT_E_CLOSED;
    }
    buf[len] = 0;
    *pbuf = buf;
    *plen = len;
    return 0;
}

int rt__read_body(struct mg_connection *conn, size_t max, char **out, size_t *out_len)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (ri->content_length > (long long)max)
        return refuse_too_large(conn, max, ri->content_length);
    int rc = rt__expect_continue(conn);
    if (rc != 0)
        return rc;
    size_t cap = ri->content_length >= 0 ? (size_t)ri->content_length + 1 : 4096;
    char *buf = malloc(cap);
    if (!buf)
        return refuse_nomem(conn);
    int fd = conn_fd(conn);
    rc = read_all(conn, fd, max, buf, cap, out, out_len);
    rt__sockhook_read_deadline(fd, 0);
    return rc;
}

int rt__http_framing_guard(struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    rt__probe_note(srv_of(conn), conn); /* before any refusal: doctor asks what arrived */
    char ip[64];
    if (ri->num_headers >= MG_MAX_HEADERS) {
        /* civetweb keeps MG_MAX_HEADERS header lines and drops the rest
         * unread: a Content-Length or Transfer-Encoding among them would be
         * lost, and the body read as the next request. */
        rt__client_ip(srv_of(conn), conn, ip, sizeof(ip));
        rt_log_info("request refused", "reason=headers_too_large ip=%s", ip);
        refuse_and_close(conn, 431, "headers_too_large",
                         "the request has %d or more header lines; at most %d are read, and one "
                         "dropped unread could change how the body is framed, so the request is "
                         "refused and the connection closed",
                         MG_MAX_HEADERS, MG_MAX_HEADERS - 1);
        return 1;
    }
    const char *why =
        rt_http_framing_problem((const rt_http_header_t *)ri->http_headers, ri->num_headers);
    if (!why)
        return 0;
    rt__client_ip(srv_of(conn), conn, ip, sizeof(ip));
    rt_log_info("request refused", "reason=ambiguous_framing ip=%s detail=\"%s\"", ip, why);
    refuse_and_close(conn, 400, "ambiguous_framing",
                     "%s: the body's length is ambiguous (RFC 9112 section 6.3), so the request is "
                     "refused and the connection closed",
                     why);
    return 1;
}

bool rt__method_is(struct mg_connection *conn, const char *m)
{
    return strcmp(mg_get_request_info(conn)->request_method, m) == 0;
}

int rt__handle_options(struct mg_connection *conn)
{
    const char *origin = rt__cors_origin(srv_of(conn), conn);
    rt__printf(
        conn,
        "HTTP/1.1 204 No Content\r\n%s%s%sAccess-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
        "Access-Control-Allow-Headers: Authorization, Content-Type, Idempotency-Key, "
        "Last-Event-ID\r\n"
        "Access-Control-Max-Age: 600\r\nContent-Length: 0\r\n" RT__MARK_HEADER "%s\r\n",
        origin ? "Access-Control-Allow-Origin: " : "", origin ? origin : "",
        origin ? "\r\nVary: Origin\r\n" : "", rt__connection_close_header(conn));
    return 204;
}

void rt__http_end_request(const struct mg_connection *conn, int status)
{
    if (status == 101)
        return;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    rt__sockhook_request_done(
        rt__sockhook_fd_of(ri->remote_addr, ri->remote_port, ri->server_port));
}

int rt__http_error(struct mg_connection *conn, int status, const char *errmsg)
{
    const char *name = status == 413   ? "request_too_large"
                       : status == 414 ? "uri_too_long"
                       : status == 431 ? "headers_too_large"
                       : status == 505 ? "http_version_not_supported"
                       : status >= 500 ? "internal_error"
                                       : "bad_request";
    const char *text = errmsg && *errmsg ? errmsg : mg_get_response_code_text(conn, status);
    /* civetweb 1.15 says "Malformed message" for a head over its size limit
     * too (read_message's -2 never reaches its 413): the front door knows
     * when it was the size, and which line. */
    rt_head_big_t big = strcmp(text, "Malformed message") == 0
                            ? rt__sockhook_head_big(conn_fd(conn))
                            : RT_HEAD_FITS;
    if (big != RT_HEAD_FITS) {
        char ip[64];
        const char *bname = big == RT_HEAD_BIG_OTHER ? "headers_too_large" : "token_too_large";
        rt__client_ip(srv_of(conn), conn, ip, sizeof(ip));
        rt_log_info("request refused", "reason=%s ip=%s", bname, ip);
        if (big == RT_HEAD_BIG_OTHER)
            refuse_and_close(conn, 431, bname, "the request head is longer than %d bytes",
                             RT__MAX_REQUEST_HEAD);
        else
            refuse_and_close(conn, 431, bname,
                             "the token in %s makes the request head longer than %d bytes; a "
                             "token is at most %zu bytes (RTGW_MAX_TOKEN_BYTES)",
                             big == RT_HEAD_BIG_TOKEN_QUERY ? "the query string"
                                                            : "the Authorization header",
                             RT__MAX_REQUEST_HEAD, srv_of(conn)->topts.max_token_bytes);
        /* The rest of the head is still coming: read it off before the close
         * (the same bound as a 413's body), or the client may see a reset
         * instead of the 431. */
        rt__sockhook_linger(conn_fd(conn), RT__LINGER_MS, RT__LINGER_MAX);
    } else if (strcmp(text, "Malformed message") == 0)
        refuse_and_close(conn, status, name,
                         "%s: the request head is malformed, cut off, or longer than the limit of "
                         "%d bytes (refused by the HTTP layer before any route)",
                         text, RT__MAX_REQUEST_HEAD);
    else
        refuse_and_close(conn, status, name, "%s (refused by the HTTP layer before any route)",
                         text);
    return 0;
}
