/*
 * http.h — HTTP helpers for the routes and the handshakes: JSON replies with
 * CORS and a Date header, errors in the API's shape, request bodies, per-IP
 * rate limits, the client's address.
 *
 * All run on the civetweb thread of the request and write to it with
 * rt__printf/rt__write (civetweb's write timeout, RTGW_REQUEST_TIMEOUT_MS,
 * bounds each). They reach the server through the user data of civetweb's
 * context (mg_init_data).
 */
#ifndef RT_HTTP_H
#define RT_HTTP_H

#include "httphead.h"
#include "srv.h"

#include <stdbool.h>
#include <stddef.h>

/* The mark on every response rtgw writes (JSON replies and errors, /health,
 * /metrics, SSE heads, CORS preflights, the HTTP layer's own refusals): a
 * proxy's or an app's answer lacks it, which is how `rtgw doctor` tells who
 * answered. The 101 (civetweb's, or the front door's, byte for byte the same:
 * fastpath.c) carries no extra header; after it, the
 * first frame (rtgw.subscribed, or a close with an rtgw code) is the mark. */
#define RT__MARK_HEADER "X-Rtgw: " RT_VERSION "\r\n"

/* A request as rtgw's checks read it, whoever parsed it: civetweb
 * (rt__req_of) or the front door (fastpath.c). Pointers into the parser's
 * buffers, valid while the request is being answered. */
typedef struct {
    const char *method;       /* "GET" */
    const char *uri_raw;      /* the path as sent, without the query */
    const char *query;        /* after '?', or NULL */
    const char *http_version; /* "1.1" */
    const char *remote_addr;  /* the peer's address */
    int remote_port;
    const rt_http_header_t *headers;
    int nheaders;
} rt__req_t;

/* The request civetweb parsed for conn. */
void rt__req_of(struct mg_connection *conn, rt__req_t *req);
/* The value of header `name` (any case), the first if it repeats, or NULL. */
const char *rt__req_header(const rt__req_t *req, const char *name);
/* The request's Origin when RTGW_ALLOWED_ORIGINS allows it, else NULL. */
const char *rt__req_cors_origin(rt_server_t *srv, const rt__req_t *req);
/* Whether the connection closes after this request's response: HTTP/1.0
 * without "Connection: keep-alive", or any "Connection: close". */
bool rt__req_closes(const rt__req_t *req);
/* The client's address: X-Forwarded-For from a trusted proxy, else the peer. */
void rt__req_client_ip(rt_server_t *srv, const rt__req_t *req, char *out, size_t cap);
/* Log the request at debug level, its URL redacted. */
void rt__req_log(const rt__req_t *req, int status);
/* The head of a JSON response (every JSON reply rtgw writes has this one):
 * status line, Content-Type, Content-Length: len, Cache-Control, Date, the
 * mark, CORS for an allowed origin, extra_headers (each ending in \r\n, or
 * NULL), "Connection: close" when the request closes (unless extra_headers
 * says Connection), and the blank line. Its length (snprintf's: compare with
 * cap). */
int rt__json_head(rt_server_t *srv, const rt__req_t *req, int status, size_t len,
                  const char *extra_headers, char *out, size_t cap);
/* A per-IP rate limit's verdict: 0 if allowed; else RT_E_LIMIT with the 429
 * to send in *r and its Retry-After header in hdr (cap >= 48). */
int rt__rate_check(rt_server_t *srv, const rt__req_t *req, rt_limiter_t *l, double cost,
                   const char *what, const char *var, rt_resp_t *r, char *hdr, size_t cap);

/* mg_write, and when not all of buf went out (the client stopped reading
 * for RTGW_REQUEST_TIMEOUT_MS, or went away) the connection is closed after
 * this request: the response on it is cut, and civetweb would otherwise go on
 * to the next pipelined request and wait out the write timeout once per
 * request, holding its thread. 0, or RT_E_IO (RT_E_NOMEM for rt__printf). */
int rt__write(struct mg_connection *conn, const void *buf, size_t len);
int rt__printf(struct mg_connection *conn, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The request's Origin when RTGW_ALLOWED_ORIGINS allows it, else NULL. */
const char *rt__cors_origin(rt_server_t *srv, struct mg_connection *conn);
/* A complete JSON response: status, body, CORS for an allowed origin, and
 * extra_headers (each ending in \r\n) or NULL. */
void rt__send_json(struct mg_connection *conn, int status, const char *body, size_t len,
                   const char *extra_headers);
/* "Connection: close\r\n" when the request asked civetweb to close after the
 * response (HTTP/1.0 without keep-alive, or Connection: close), else "": every
 * response rtgw writes by hand carries it, so a pooling proxy never reuses a
 * connection that is about to close. */
const char *rt__connection_close_header(struct mg_connection *conn);
/* Send an api.h response and clear it. */
void rt__send_resp(struct mg_connection *conn, rt_resp_t *r);
/* Send {"error":name,"message":<printf>} with the status. */
void rt__send_error(struct mg_connection *conn, int status, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Log the request at debug level, its URL redacted. */
void rt__log_request(struct mg_connection *conn, int status);
/* The client's address: X-Forwarded-For from a trusted proxy, else the peer. */
void rt__client_ip(rt_server_t *srv, struct mg_connection *conn, char *out, size_t cap);
/* Per-IP rate limit: 0 if allowed, else sends 429 with Retry-After and
 * returns RT_E_LIMIT. `what` and `var` name the limit in the message. */
int rt__rate_limit(rt_server_t *srv, struct mg_connection *conn, rt_limiter_t *l, double cost,
                   const char *what, const char *var);
/* civetweb answers "Expect: 100-continue" only for its own file handlers; a
 * client such as curl otherwise waits a second before sending the body.
 * Returns 0, or RT_E_INVAL after a 417 for an expectation we cannot meet. */
int rt__expect_continue(struct mg_connection *conn);
/* Read the whole body into *out (malloc'd, NUL-terminated; the caller frees),
 * bounded by max. All or nothing: a body that ends before its Content-Length
 * (the client stalled past RTGW_REQUEST_TIMEOUT_MS, or closed) is refused.
 * Returns 0, or an error after answering it: RT_E_TOOLONG (413), RT_E_INVAL
 * (417), RT_E_NOMEM (500), RT_E_CLOSED (400 body_incomplete: the body ended
 * early or could not be read; the connection is closed). */
int rt__read_body(struct mg_connection *conn, size_t max, char **out, size_t *out_len);
/* civetweb's begin_request callback: every request passes here first. A
 * request whose body length is ambiguous (RFC 9112 §6.3: Content-Length and
 * Transfer-Encoding together, either one twice with different values, a
 * coding other than chunked, a malformed length, white space in a header
 * name) is answered 400 ambiguous_framing and its connection closed, so
 * bytes after it never run as a second request. Returns 1 when it answered
 * (civetweb then stops), 0 to let the request through. */
int rt__http_framing_guard(struct mg_connection *conn);
/* civetweb's http_error callback: the errors civetweb finds itself (a
 * malformed request line or header, an unsupported Transfer-Encoding, a
 * request head over its size limit) are answered in the API's JSON shape
 * with a name, like every other refusal, and the connection is closed.
 * Returns 0 (answered). */
int rt__http_error(struct mg_connection *conn, int status, const char *errmsg);
/* civetweb's end_request callback: a request is answered. Unless it became
 * a WebSocket (101), its connection goes back to the front door if civetweb
 * then waits for a next request that has not arrived (sockhook.c,
 * rt__sockhook_request_done): an idle kept-alive connection holds no
 * worker. */
void rt__http_end_request(const struct mg_connection *conn, int status);
/* Whether the request's method is m. */
bool rt__method_is(struct mg_connection *conn, const char *m);
/* Answer a CORS preflight (OPTIONS). Returns 204, the status sent. */
int rt__handle_options(struct mg_connection *conn);

#endif
