/*
 * fastpath.c — the upgrade and the mint, answered by the front door (see
 * fastpath.h).
 *
 * The head parser here is stricter than civetweb's, never looser: whatever it
 * does not recognise exactly is declined, and civetweb parses and answers it
 * as it always did. What the two requests then do is the code civetweb's
 * handlers run too: rt__session_admit and the session's life (session.c),
 * rt_api_token (api/mint.c), the rate limit and the JSON response's head
 * (http.c). The 101 is civetweb's, byte for byte.
 *
 * An upgrade rtgw would refuse is declined before anything is counted: the
 * refusal, its metrics and its log come from civetweb's thread, which checks
 * the token again (a refused connect costs two verifications; an admitted one
 * costs one).
 */
#include "fastpath.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "session.h"
#include "frontdoor.h"
#include "httplist.h"
#include "linger.h"
#include "tlsconn.h"
#include "waiters.h"
#include "writer.h"

#include <civetweb.h>
#include <errno.h>
#include <linux/sockios.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONNECT_PATH "/v1/realtime/connect"
#define TOKEN_PATH "/v1/realtime/token"
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* A mint body the front door parses on its own thread: bounded, so that one
 * connection's request keeps the others waiting a few microseconds at most.
 * A larger one (a token for many topics) goes to civetweb. */
#define FAST_MINT_BODY_MAX 16384

/* ---- the head ---- */

/* The head in fc->buf, parsed in place into fc->req. false: not the strict
 * shape taken here. */
static bool parse_head(rt_fast_conn_t *fc)
{
    rt_http_strict_t *h = &fc->head;
    if (rt_http_parse_strict((char *)fc->buf, fc->n, h) != 0)
        return false;
    fc->req = (rt__req_t){h->method, h->uri_raw, h->query,   h->http_version,
                          fc->ip,    fc->port,   h->headers, h->nheaders};
    return true;
}

/* How many times header name appears. */
static int header_count(const rt__req_t *req, const char *name)
{
    int n = 0;
    for (int i = 0; i < req->nheaders; i++)
        n += strcasecmp(req->headers[i].name, name) == 0;
    return n;
}

/* What every request taken here must not have: a probe id (doctor's record
 * is made on civetweb's thread), an expectation, an ambiguous body length. */
static bool plain_enough(const rt__req_t *req)
{
    if (rt__req_header(req, "X-Rtgw-Probe") || rt__req_header(req, "Expect") ||
        (req->query && strstr(req->query, "rtgw_probe")))
        return false;
    return rt_http_framing_problem(req->headers, req->nheaders) == NULL;
}

/* A WebSocket upgrade civetweb would take, in its plainest form. *ext is set
 * for the one subprotocol offer taken here, rtgw.v1 alone. */
static bool is_upgrade(const rt_fast_conn_t *fc)
{
    const rt__req_t *r = &fc->req;
    const char *up = rt__req_header(r, "Upgrade"),
               *ver = rt__req_header(r, "Sec-WebSocket-Version"),
               *key = rt__req_header(r, "Sec-WebSocket-Key"),
               *proto = rt__req_header(r, "Sec-WebSocket-Protocol");
    return strcmp(r->method, "GET") == 0 && strcmp(r->uri_raw, CONNECT_PATH) == 0 &&
           strcmp(r->http_version, "1.1") == 0 && fc->n == fc->head.head_len &&
           !(fc->tls && rt__tls_more_than(fc->tls, fc->head.head_len)) && up &&
           strcasecmp(up, "websocket") == 0 &&
           rt_http_list_has(rt__req_header(r, "Connection"), "upgrade") && ver &&
           strcmp(ver, "13") == 0 && rt_ws_key_valid(key) &&
           header_count(r, "Sec-WebSocket-Key") == 1 && header_count(r, "Upgrade") == 1 &&
           header_count(r, "Sec-WebSocket-Protocol") <= 1 &&
           (!proto || strcmp(proto, "rtgw.v1") == 0) && !rt__req_header(r, "Content-Length") &&
           !rt__req_header(r, "Transfer-Encoding");
}

/* Whether the answers already written on fd (and its TLS) have all left:
 * a client that stops reading is civetweb's, whose write waits for it, where
 * the front door's would come up short. */
static bool nothing_unsent(const rt_fast_conn_t *fc)
{
    int queued = 0;
    return ioctl(fc->fd, SIOCOUTQ, &queued) == 0 && queued == 0 &&
           !(fc->tls && rt__tls_unsent(fc->tls));
}

/* A mint whose Content-Length body is all in buf, within the limit, and
 * nothing after it: a pipelined request is civetweb's, which buffers it (a
 * peek would leave it in the kernel, the receive window could close on it),
 * takes one request per hand-over, and writes at the reader's pace. */
static bool is_mint(rt_server_t *srv, const rt_fast_conn_t *fc)
{
    const rt__req_t *r = &fc->req;
    const char *cl = rt__req_header(r, "Content-Length");
    if (strcmp(r->method, "POST") != 0 || strcmp(r->uri_raw, TOKEN_PATH) != 0 || !cl ||
        rt__req_header(r, "Transfer-Encoding") || strlen(cl) > 9)
        return false;
    size_t len = (size_t)strtoul(cl, NULL, 10); /* a decimal number: plain_enough */
    return len <= (size_t)srv->cfg->max_body_bytes && len <= FAST_MINT_BODY_MAX &&
           fc->n == fc->head.head_len + len &&
           !(fc->tls && rt__tls_more_than(fc->tls, fc->head.head_len + len)) && nothing_unsent(fc);
}

rt_fast_kind_t rt__fast_kind(rt_fast_conn_t *fc)
{
    if (fc->n < 16 || (memcmp(fc->buf, "GET ", 4) != 0 && memcmp(fc->buf, "POST ", 5) != 0))
        return RT_FAST_NONE;
    if (!parse_head(fc) || !plain_enough(&fc->req))
        return RT_FAST_NONE;
    if (is_upgrade(fc))
        return RT_FAST_UPGRADE;
    return strcmp(fc->req.method, "POST") == 0 && strcmp(fc->req.uri_raw, TOKEN_PATH) == 0
               ? RT_FAST_MINT
               : RT_FAST_NONE;
}

/* ---- answering ---- */

/* Read the request's n bytes off the connection (a MSG_PEEK saw them, or
 * the TLS buffer holds them) and write the answer. 0, or RT_E_IO. The
 * connection is fresh or between requests: its send buffer has room for a
 * small answer. */
static int consume_and_answer(int fd, rt_tls_t *tls, uint8_t *room, size_t n, const char *out,
                              size_t len)
{
    if (tls) {
        rt__tls_consume(tls, n);
        return rt__tls_write(tls, out, len) == (ssize_t)len ? 0 : RT_E_IO;
    }
    /* Discarded, not copied (TCP's MSG_TRUNC, tcp(7)): the parsed request
     * points into the front door's buffer, whose strings a read there would
     * overwrite with the raw head (and the debug request line would print it,
     * Authorization and all: integration.ops.secrets_never_logged). room is
     * passed only as n bytes the kernel may address (valgrind checks it).
     * recvfrom(2), not recv(2): sockhook's recv is civetweb's. */
    ssize_t r = recvfrom(fd, room, n, MSG_TRUNC | MSG_DONTWAIT, NULL, NULL);
    if (r != (ssize_t)n)
        return RT_E_IO;
    r = write(fd, out, len);
    return r == (ssize_t)len ? 0 : RT_E_IO;
}

/* A JSON answer (rt__json_head's head, then body) written after the
 * request's n bytes are read off. 0; RT_E_NOMEM with nothing read or written
 * (civetweb may still answer); RT_E_IO. */
static int answer_json(rt_server_t *srv, const rt__req_t *req, int fd, rt_tls_t *tls, uint8_t *room,
                       size_t n, int status, const char *body, size_t len, const char *extra)
{
    int hl = rt__json_head(srv, req, status, len, extra, NULL, 0);
    char *out = hl > 0 ? malloc((size_t)hl + 1 + len) : NULL;
    if (!out)
        return RT_E_NOMEM;
    rt__json_head(srv, req, status, len, extra, out, (size_t)hl + 1);
    memcpy(out + hl, body, len);
    int rc = consume_and_answer(fd, tls, room, n, out, (size_t)hl + len);
    free(out);
    return rc;
}

/* A refused upgrade's accounting once its answer is out, as ws.c's
 * ws_refuse does it: the refusal's metrics, the info line, the request line. */
static void refused(rt_server_t *srv, const rt__req_t *req, const char *peer, bool ext,
                    const rt__refusal_t *why, int status)
{
    rt__session_refused(srv, req, why);
    rt_log_info("websocket refused", "peer=%s reason=%s detail=%s ext=%d", peer,
                rt_reason_name(why->reason), why->detail[0] ? why->detail : "-", ext);
    rt__req_log(req, status);
    atomic_fetch_add(&srv->metrics.frontdoor_refusals, 1);
}

/* An admitted upgrade, with all its answer needs once the front door's
 * buffer (where its head was parsed) has moved on to other connections. */
typedef struct {
    rt_server_t *srv;
    rt_conn_t *c; /* admitted: holds its slot and its per-IP place */
    int fd;
    rt_tls_t *tls;
    size_t head_len; /* the request's bytes, read off once answered */
    int rl;
    char resp[192]; /* the 101 */
    char *query;    /* for the debug request line (redacted there): a copy, or NULL */
    char ip[64];
} upgrade_t;

/* The query copy holds the token: wiped, then freed. */
static void free_query(upgrade_t *u)
{
    if (u->query) {
        sodium_memzero(u->query, strlen(u->query));
        free(u->query);
        u->query = NULL;
    }
}

/* The request as the debug line and the refusal's head read it: no headers
 * kept (no CORS for an upgrade; the answer closes). */
static rt__req_t upgrade_req(const upgrade_t *u)
{
    return (rt__req_t){.method = "GET",
                       .uri_raw = CONNECT_PATH,
                       .query = u->query,
                       .http_version = "1.1",
                       .remote_addr = u->ip};
}

/* A job refused after its admission: the client gets what civetweb's path
 * says for the same (a drain that began meanwhile: 503 shutting_down, as
 * admission would; bytes sent before the 101: 400 protocol_error, as ws.c),
 * the slot back at once, and a close. Frees u. */
static void upgrade_refuse(upgrade_t *u, uint8_t *room, rt_reason_t reason, int status,
                           const char *text)
{
    rt__refusal_t why = {.reason = reason};
    rt__req_t req = upgrade_req(u);
    rt_resp_t r = {0};
    rt_resp_error(&r, status, rt_reason_name(reason), "%s", text);
    if (answer_json(u->srv, &req, u->fd, u->tls, room, u->head_len, r.status, r.body, r.len,
                    "Connection: close\r\n") == 0)
        rt__req_log(&req, r.status);
    rt_resp_clear(&r);
    rt__session_refused(u->srv, &req, &why);
    rt__conn_unref(u->c);
    rt__tls_free(u->tls);
    /* What else it sent (early frames) is read first, so the close is a FIN,
     * not a reset that could drop the answer unread in the client's kernel.
     * room holds RT__MAX_REQUEST_HEAD bytes; wiped (a frame may carry a token). */
    ssize_t n = read(u->fd, room, RT__MAX_REQUEST_HEAD);
    if (n > 0)
        sodium_memzero(room, (size_t)n);
    close(u->fd);
    free_query(u);
    free(u);
}

/* Answer 101 and hand the session to a writer; its positions are pinned
 * (rt__session_pin_positions: before the 101, see session.h). RT_FAST_TAKEN,
 * or RT_FAST_CLOSE when the client is gone (u->fd and u->tls are still the
 * caller's then). Frees u->query. */
static rt_fast_result_t upgrade_answer(upgrade_t *u, uint8_t *room)
{
    rt_server_t *srv = u->srv;
    rt_conn_t *c = u->c;
    rt_fast_result_t res = RT_FAST_CLOSE;
    if (consume_and_answer(u->fd, u->tls, room, u->head_len, u->resp, (size_t)u->rl) != 0) {
        rt__conn_unref(c);
    } else {
        rt__req_t req = upgrade_req(u);
        rt__req_log(&req, 101);
        atomic_fetch_add(&srv->metrics.frontdoor_upgrades, 1);
        c->fd = u->fd;
        c->tls = u->tls;    /* its writer encrypts and decrypts from now on */
        c->detached = true; /* never civetweb's: its writer reads it from the start */
        rt__session_start(srv, c, NULL);
        rt__session_go(srv, c);
        rt__conn_unref(c); /* the epoll registration holds it now */
        res = RT_FAST_TAKEN;
    }
    free_query(u);
    return res;
}

/* Whether the client sent anything after its head while the job waited (the
 * head is still unread: the kernel's, or the TLS buffer's). room holds
 * head_len + 1 bytes. */
static bool early_bytes(const upgrade_t *u, uint8_t *room)
{
    if (!u->tls) /* recvfrom(2): sockhook's recv is civetweb's */
        return recvfrom(u->fd, room, u->head_len + 1, MSG_PEEK | MSG_DONTWAIT, NULL, NULL) >
               (ssize_t)u->head_len;
    if (rt__tls_more_than(u->tls, u->head_len))
        return true;
    char b;
    if (recvfrom(u->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT, NULL, NULL) <= 0)
        return false;
    (void)rt__tls_fill(u->tls, u->head_len + 17 * 1024); /* a record past the head */
    return rt__tls_more_than(u->tls, u->head_len);
}

/* On a waiter's thread (waiters.h): the bus's waits happen here. A job may
 * outlive the admission's view of the server: one that runs once a drain
 * began (its broadcast would miss the session) is refused instead, checked
 * again after the pinning, which may wait on the bus. */
static void upgrade_run(void *arg)
{
    upgrade_t *u = arg;
    uint8_t room[RT__MAX_REQUEST_HEAD + 1]; /* a waiter's stack is 8 MiB */
    if (!atomic_load(&u->srv->draining))
        rt__session_pin_positions(u->srv, u->c);
    if (atomic_load(&u->srv->draining)) {
        upgrade_refuse(u, room, RT_REASON_SHUTTING_DOWN, 503,
                       rt_reason_text(RT_REASON_SHUTTING_DOWN));
        return;
    }
    if (early_bytes(u, room)) { /* frames before the 101, sent while it waited */
        upgrade_refuse(u, room, RT_REASON_PROTOCOL_ERROR, 400,
                       "the client sent data before the WebSocket handshake completed");
        return;
    }
    if (upgrade_answer(u, room) == RT_FAST_CLOSE) {
        rt__tls_free(u->tls);
        close(u->fd);
    }
    free(u);
}

/* Queued when the server drains or stops (rt_waiters_drop_queued). */
static void upgrade_drop(void *arg)
{
    upgrade_t *u = arg;
    uint8_t room[RT__MAX_REQUEST_HEAD];
    upgrade_refuse(u, room, RT_REASON_SHUTTING_DOWN, 503, rt_reason_text(RT_REASON_SHUTTING_DOWN));
}

/* SHA-1 fetched once, and a digest context per thread that hashes keys (the
 * lanes, the subscribe threads), freed when the thread ends. SHA1() fetches
 * the algorithm from OpenSSL 3's provider store on every call, under its lock,
 * and EVP_Digest allocates a context each time: 3.6% and then 3.0% of a
 * front-door thread in S4 (perf, benchmarks.md §3). */
static EVP_MD *sha1_md;
static pthread_key_t sha1_ctx_key;
static bool sha1_ready;

static void sha1_ctx_free(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void sha1_init(void)
{
    sha1_md = EVP_MD_fetch(NULL, "SHA1", NULL);
    sha1_ready = sha1_md && pthread_key_create(&sha1_ctx_key, sha1_ctx_free) == 0;
}

static void ws_sha1(const char *in, size_t len, unsigned char out[SHA_DIGEST_LENGTH])
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sha1_init);
    EVP_MD_CTX *ctx = sha1_ready ? pthread_getspecific(sha1_ctx_key) : NULL;
    if (sha1_ready && !ctx && (ctx = EVP_MD_CTX_new()) && pthread_setspecific(sha1_ctx_key, ctx)) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
    }
    if (!ctx || !EVP_DigestInit_ex2(ctx, sha1_md, NULL) || !EVP_DigestUpdate(ctx, in, len) ||
        !EVP_DigestFinal_ex(ctx, out, NULL))
        SHA1((const unsigned char *)in, len, out);
}

/* The 101 for fc's upgrade into out (civetweb's bytes; Sec-WebSocket-Accept:
 * RFC 6455 §4.2.2); its length. */
static int switching_protocols(const rt_fast_conn_t *fc, char *out, size_t cap)
{
    char keyguid[24 + sizeof(WS_GUID)]; /* rt_ws_key_valid: 24 characters */
    int kl = snprintf(keyguid, sizeof(keyguid), "%s" WS_GUID,
                      rt__req_header(&fc->req, "Sec-WebSocket-Key"));
    unsigned char sha[SHA_DIGEST_LENGTH];
    ws_sha1(keyguid, (size_t)kl, sha);
    char accept[sodium_base64_ENCODED_LEN(SHA_DIGEST_LENGTH, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(accept, sizeof(accept), sha, sizeof(sha), sodium_base64_VARIANT_ORIGINAL);
    bool proto = rt__req_header(&fc->req, "Sec-WebSocket-Protocol") != NULL; /* rtgw.v1 */
    return snprintf(out, cap,
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                    "Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                    accept, proto ? "Sec-WebSocket-Protocol: rtgw.v1\r\n" : "");
}

/* A plain client's refused upgrade, answered as civetweb's path answers it
 * (ws.c, ws_refuse): the same metrics and log line, the same bytes (the
 * refusal's JSON error under rt__json_head), and the connection closed, as
 * civetweb closes it whatever its Connection header asks (tested in
 * hardening.fastpath). One token verification, no hand-over: a
 * flood of forged or expired tokens costs what the front door's check
 * costs. */
static rt_fast_result_t refuse(rt_server_t *srv, rt_fast_conn_t *fc, rt_conn_t *c,
                               const rt__refusal_t *why, const char *extra_headers)
{
    rt_resp_t r = {0};
    rt__session_refusal_resp(why, &r);
    int rc = answer_json(srv, &fc->req, fc->fd, fc->tls, fc->buf, fc->head.head_len, r.status,
                         r.body, r.len, extra_headers);
    if (rc == 0)
        refused(srv, &fc->req, c->peer, c->ext, why, r.status);
    rt_resp_clear(&r);
    return rc == RT_E_NOMEM ? RT_FAST_DECLINED : RT_FAST_CLOSE; /* no memory: civetweb answers */
}

/* An extended client's refusal, as civetweb's path gives it (ws.c,
 * ws_close_refused): the 101, then at once a close with the reason's code and
 * "name: detail" (a browser reads those; a failed upgrade is only 1006 to
 * it). The connection then lingers: the front door reads until the client
 * answers the close. */
static rt_fast_result_t refuse_ext(rt_server_t *srv, rt_fast_conn_t *fc, rt_conn_t *c,
                                   const rt__refusal_t *why, const char *resp, size_t rl)
{
    rt_frame_t *f = rt__session_refusal_close(why->reason, why->detail);
    char *out = f ? malloc(rl + f->len) : NULL;
    rt_fast_result_t res = out ? RT_FAST_CLOSE : RT_FAST_DECLINED; /* civetweb answers */
    if (out) {
        memcpy(out, resp, rl);
        memcpy(out + rl, f->data, f->len);
        if (consume_and_answer(fc->fd, fc->tls, fc->buf, fc->head.head_len, out, rl + f->len) ==
            0) {
            refused(srv, &fc->req, c->peer, c->ext, why, 101);
            res = RT_FAST_LINGER;
        }
        free(out);
    }
    rt_frame_unref(f);
    return res;
}

/* The subscribe threads are behind (Redis slow or gone, and connects keep
 * coming) or their queue is full: the upgrade is refused 503 over_capacity
 * with Retry-After (for an extended client, the 101 and a close with 4503),
 * its slot given back at once. Handing it to civetweb instead would park a
 * worker on Redis, and enough of them (RTGW_HTTP_THREADS + 32) left /health
 * and every other route unanswered. */
static rt_fast_result_t refuse_queue_full(rt_server_t *srv, rt_fast_conn_t *fc, rt_conn_t *c,
                                          const upgrade_t *u)
{
    atomic_fetch_add(&srv->metrics.subscribe_queue_full, 1);
    rt__refusal_t why = {.reason = RT_REASON_OVER_CAPACITY};
    snprintf(why.detail, sizeof(why.detail), "connects wait on Redis; retry with backoff");
    return c->ext ? refuse_ext(srv, fc, c, &why, u->resp, (size_t)u->rl)
                  : refuse(srv, fc, c, &why, "Retry-After: 1\r\n");
}

static rt_fast_result_t upgrade(rt_server_t *srv, rt_fast_conn_t *fc)
{
    rt_conn_t *c = rt__conn_new(srv, NULL, fc->ip, fc->port, false);
    if (!c)
        return RT_FAST_DECLINED;
    const char *proto = rt__req_header(&fc->req, "Sec-WebSocket-Protocol");
    char flag[8];
    c->ext = proto || (rt_query_param(fc->req.query, "rtgw", 0, flag, sizeof(flag)) > 0 &&
                       strcmp(flag, "1") == 0);
    rt__refusal_t why;
    if (!rt__session_admit(srv, &fc->req, c, &why)) {
        char resp[192];
        int rl = c->ext ? switching_protocols(fc, resp, sizeof(resp)) : 0;
        rt_fast_result_t r = c->ext ? refuse_ext(srv, fc, c, &why, resp, (size_t)rl)
                                    : refuse(srv, fc, c, &why, NULL);
        rt__conn_unref(c);
        return r;
    }
    bool waits = srv->bus->ops->waits;
    upgrade_t stack_u, *u = waits ? calloc(1, sizeof(*u)) : &stack_u;
    if (!u) {
        rt__conn_unref(c);
        return RT_FAST_DECLINED;
    }
    *u = (upgrade_t){
        .srv = srv, .c = c, .fd = fc->fd, .tls = fc->tls, .head_len = fc->head.head_len};
    snprintf(u->ip, sizeof(u->ip), "%s", fc->ip);
    if (rt_log_enabled(RT_LOG_DEBUG) && fc->req.query)
        u->query = strdup(fc->req.query);
    u->rl = switching_protocols(fc, u->resp, sizeof(u->resp));
    if (!waits) {
        rt__session_pin_positions(srv, c);
        rt_fast_result_t r = upgrade_answer(u, fc->buf);
        if (r == RT_FAST_TAKEN)
            fc->tls = NULL;
        return r;
    }
    /* With the Redis bus, pinning and subscribing wait on Redis: a waiter
     * does them, the socket and its TLS go with the job. Redis not keeping
     * up (the oldest queued upgrade has waited longer than a Redis round
     * trip's bound) or the queue full: refused, the client backs off. */
    bool behind =
        rt_clock_mono_ms() - rt_waiters_oldest_ms(srv->waiters) > srv->cfg->redis_timeout_ms;
    if (behind || !rt_waiters_submit(srv->waiters, upgrade_run, upgrade_drop, u)) {
        rt_fast_result_t r = refuse_queue_full(srv, fc, c, u);
        free_query(u);
        free(u);
        rt__conn_unref(c);
        return r;
    }
    fc->tls = NULL;
    return RT_FAST_TAKEN;
}

static rt_fast_result_t mint(rt_server_t *srv, rt_fast_conn_t *fc)
{
    const rt__req_t *req = &fc->req;
    size_t blen = (size_t)strtoul(rt__req_header(req, "Content-Length"), NULL, 10);
    rt_resp_t r = {0};
    char extra[48] = "";
    bool limited = rt__rate_check(srv, req, srv->mint_limit, 1, "token mints",
                                  "RTGW_RATE_LIMIT_MINT", &r, extra, sizeof(extra)) != 0;
    if (!limited)
        rt_api_token(&srv->api, rt__req_header(req, "Authorization"),
                     (const char *)fc->buf + fc->head.head_len, blen, rt_clock_wall_ms() / 1000,
                     &r);
    const char *body = r.body ? r.body : "{}";
    size_t len = r.body ? r.len : 2;
    rt_fast_result_t res = RT_FAST_CLOSE;
    if (answer_json(srv, req, fc->fd, fc->tls, fc->buf, fc->head.head_len + blen, r.status, body,
                    len, extra[0] ? extra : NULL) == 0) {
        res = rt__req_closes(req) ? RT_FAST_CLOSE : RT_FAST_ANSWERED;
        atomic_fetch_add(&srv->metrics.frontdoor_mints, 1);
        if (!limited) /* civetweb's path logs a 429 as "rate limited" only */
            rt__req_log(req, r.status);
    }
    rt_resp_clear(&r);
    return res;
}

rt_fast_result_t rt__fast_serve(rt_server_t *srv, rt_fast_conn_t *fc, rt_fast_kind_t kind)
{
    /* With the Redis bus, subscribing waits on Redis (positions, SUBSCRIBE,
     * history): a frozen Redis would freeze the front door, /health with it.
     * The waiters' threads (waiters.h) may wait; without them (they could not
     * start), civetweb's do. */
    if (kind == RT_FAST_UPGRADE)
        return !srv->bus->ops->waits || srv->waiters ? upgrade(srv, fc) : RT_FAST_DECLINED;
    if (kind == RT_FAST_MINT && is_mint(srv, fc))
        return mint(srv, fc);
    return RT_FAST_DECLINED;
}
