/*
 * routes.c — the HTTP routes: token, publish, batch, health, ready, metrics,
 * dev, the demo page and a plain GET on the WebSocket endpoint.
 *
 *   POST /v1/realtime/token          mint a token (rt_api_token)
 *   POST /v1/realtime/publish        publish a body, or a stream (publish_stream.c)
 *   POST /v1/realtime/publish/batch  publish many events (rt_api_publish_batch)
 *   POST /v1/realtime/publish/tee    a body tee'd to a channel's $stream (publish_stream.c)
 *   GET  /v1/realtime/sse            an SSE session (sse.c)
 *   GET  /v1/realtime/connect        a WebSocket session (ws.c); 426 without Upgrade
 *   GET  /health, /ready, /metrics   state for operators and load balancers
 *   GET  /dev                        {} for the Inngest dev-mode probe
 *   GET  /v1/realtime/doctor/probes/<id>  what arrived of a doctor probe (probe_record.c)
 *   GET  /, /dev/key, /sdk/{index,codes}.js   the demo page, its key and sdk/js (--dev only)
 *
 * Each handler runs on a civetweb request thread, gets the server as its
 * callback data, and returns the HTTP status it sent. The logic of token and
 * publish requests lives in api/ (no HTTP types); these adapt civetweb to it.
 */
#include "routes.h"
#include "waiters.h"
#include "clock.h"
#include "http.h"
#include "probe_record.h"
#include "publish_stream.h"
#include "sse.h"
#include "ws.h"

#include <civetweb.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "demo_page.h"
#include "demo_sdk_codes.h"
#include "demo_sdk_index.h"

/* Send an api.h response, log the request; returns its status. */
static int reply(struct mg_connection *conn, rt_resp_t *r)
{
    int st = r->status;
    rt__send_resp(conn, r);
    rt__log_request(conn, st);
    return st;
}

/* Read the request's body (bounded by RTGW_MAX_BODY_BYTES) into *body, which
 * the caller frees. 0, or the status of the refusal rt__read_body already
 * answered (logged here). */
static int read_request_body(rt_server_t *srv, struct mg_connection *conn, char **body, size_t *len)
{
    int rc = rt__read_body(conn, (size_t)srv->cfg->max_body_bytes, body, len);
    if (rc == 0)
        return 0;
    int st = rc == RT_E_TOOLONG ? 413 : rc == RT_E_INVAL ? 417 : rc == RT_E_NOMEM ? 500 : 400;
    rt__log_request(conn, st);
    return st;
}

static int h_token(struct mg_connection *conn, void *cb)
{
    rt_server_t *srv = cb;
    if (rt__method_is(conn, "OPTIONS"))
        return rt__handle_options(conn);
    if (!rt__method_is(conn, "POST")) {
        rt__send_error(conn, 405, "method_not_allowed", "use POST /v1/realtime/token");
        return 405;
    }
    if (rt__rate_limit(srv, conn, srv->mint_limit, 1, "token mints", "RTGW_RATE_LIMIT_MINT") != 0)
        return 429;
    char *body;
    size_t len;
    int st = read_request_body(srv, conn, &body, &len);
    if (st)
        return st;
    rt_resp_t r = {0};
    rt_api_token(&srv->api, mg_get_header(conn, "Authorization"), body, len,
                 rt_clock_wall_ms() / 1000, &r);
    free(body);
    return reply(conn, &r);
}

/* The refusals shared by both publish routes: the method, and draining.
 * Returns 0, or the status already answered. */
static int publish_refused(rt_server_t *srv, struct mg_connection *conn, const char *usage)
{
    if (rt__method_is(conn, "OPTIONS"))
        return rt__handle_options(conn);
    if (!rt__method_is(conn, "POST")) {
        rt__send_error(conn, 405, "method_not_allowed", "%s", usage);
        return 405;
    }
    if (atomic_load(&srv->draining)) {
        rt__send_error(conn, 503, "shutting_down",
                       "the gateway is shutting down; retry on another node");
        return 503;
    }
    return 0;
}

/* The publish routes' start: their refusals (publish_refused), then a target
 * to fill. NULL with the status already answered in *st. */
static rt_publish_target_t *publish_target(rt_server_t *srv, struct mg_connection *conn,
                                           const char *usage, int *st)
{
    if ((*st = publish_refused(srv, conn, usage)) != 0)
        return NULL;
    rt_publish_target_t *t = malloc(sizeof(*t));
    if (!t) {
        rt__send_error(conn, 500, "internal_error", "out of memory");
        *st = 500;
    }
    return t;
}

/* Authorise the publish query into t (a publish/tee's when tee), then the
 * rate limit and (not for a tee) the Idempotency-Key header. Returns 0, or
 * the status already answered. */
static int publish_prepare(rt_server_t *srv, struct mg_connection *conn, rt_publish_target_t *t,
                           bool tee)
{
    rt_resp_t r = {0};
    const char *auth = mg_get_header(conn, "Authorization"),
               *query = mg_get_request_info(conn)->query_string;
    int64_t now = rt_clock_wall_ms() / 1000;
    if ((tee ? rt_api_tee_prepare(&srv->api, auth, query, now, t, &r)
             : rt_api_publish_prepare(&srv->api, auth, query, now, t, &r)) != 0) {
        atomic_fetch_add(&srv->metrics.publish_errors, 1);
        int st = r.status;
        rt__send_resp(conn, &r);
        return st;
    }
    if (rt__rate_limit(srv, conn, srv->publish_limit, t->ntopics, "publishes",
                       "RTGW_RATE_LIMIT_PUBLISH") != 0)
        return 429;
    const char *ik = tee ? NULL : mg_get_header(conn, "Idempotency-Key");
    if (ik && !t->idem_key[0]) {
        if (rt_name_validate(rt_slice_cstr(ik), 255) != 0) {
            rt__send_error(conn, 400, "bad_request",
                           "Idempotency-Key must be 1-255 bytes of printable UTF-8");
            return 400;
        }
        snprintf(t->idem_key, sizeof(t->idem_key), "%s", ik);
    }
    return 0;
}

static int h_publish(struct mg_connection *conn, void *cb)
{
    rt_server_t *srv = cb;
    int st;
    rt_publish_target_t *t =
        publish_target(srv, conn, "use POST /v1/realtime/publish?channel=…&topic=…", &st);
    if (!t)
        return st;
    st = publish_prepare(srv, conn, t, false);
    if (st) {
        free(t);
        return st;
    }
    const char *ct = mg_get_header(conn, "Content-Type");
    if (ct && strncasecmp(ct, "text/stream", 11) == 0) {
        rt__publish_stream(srv, conn, t);
        free(t);
        return 200;
    }
    char *body;
    size_t len;
    if ((st = read_request_body(srv, conn, &body, &len)) != 0) {
        free(t);
        atomic_fetch_add(&srv->metrics.publish_errors, 1);
        return st;
    }
    rt_resp_t r = {0};
    rt_api_publish_body(&srv->api, t, body, len, rt_clock_wall_ms(), &r);
    free(body);
    free(t);
    return reply(conn, &r);
}

static int h_publish_tee(struct mg_connection *conn, void *cb)
{
    rt_server_t *srv = cb;
    int st;
    rt_publish_target_t *t =
        publish_target(srv, conn, "use POST /v1/realtime/publish/tee?channel=…", &st);
    if (!t)
        return st;
    st = publish_prepare(srv, conn, t, true);
    if (st == 0)
        rt__publish_tee(srv, conn, t);
    free(t);
    return st ? st : 200;
}

static int h_publish_batch(struct mg_connection *conn, void *cb)
{
    rt_server_t *srv = cb;
    int st = publish_refused(srv, conn, "use POST /v1/realtime/publish/batch");
    if (st)
        return st;
    if (rt__rate_limit(srv, conn, srv->publish_limit, 1, "publishes", "RTGW_RATE_LIMIT_PUBLISH") !=
        0)
        return 429;
    char *body;
    size_t len;
    if ((st = read_request_body(srv, conn, &body, &len)) != 0)
        return st;
    rt_resp_t r = {0};
    rt_api_publish_batch(&srv->api, mg_get_header(conn, "Authorization"), body, len,
                         rt_clock_wall_ms(), &r);
    free(body);
    return reply(conn, &r);
}

static int h_health(struct mg_connection *conn, void *cb)
{
    rt_server_t *srv = cb;
    rt_hub_stats_t hs;
    rt_hub_stats(srv->hub, &hs);
    char body[512];
    bool draining = atomic_load(&srv->draining);
    int n = snprintf(
        body, sizeof(body),
        "{\"status\":\"%s\",\"uptime_s\":%lld,\"connections\":%ld,\"channels\":%llu,"
        "\"subscriptions\":%llu,\"version\":\"%s\",\"dev\":%s}",
        draining ? "draining" : "ok", (long long)((rt_clock_wall_ms() - srv->started_ms) / 1000),
        atomic_load(&srv->nconns), (unsigned long long)hs.channels,
        (unsigned long long)hs.subscriptions, RT_VERSION, srv->cfg->dev ? "true" : "false");
    rt__send_json(conn, draining ? 503 : 200, body, (size_t)n, NULL);
    return 200;
}

static int h_ready(struct mg_connection *conn, void *cb)
{
    rt_server_t *srv = cb;
    bool draining = atomic_load(&srv->draining);
    bool full = atomic_load(&srv->nconns) >= srv->cfg->max_connections;
    bool bus_up = rt_bus_ready(srv->bus);
    bool ready = !draining && bus_up;
    char body[200];
    int n =
        snprintf(body, sizeof(body),
                 "{\"ready\":%s,\"bus\":\"%s\",\"bus_up\":%s,\"draining\":%s,\"at_capacity\":%s}",
                 ready ? "true" : "false", rt_bus_name(srv->bus), bus_up ? "true" : "false",
                 draining ? "true" : "false", full ? "true" : "false");
    rt__send_json(conn, ready ? 200 : 503, body, (size_t)n, NULL);
    return 200;
}

static int h_metrics(struct mg_connection *conn, void *cb)
{
    rt_server_t *srv = cb;
    /* A gauge read from its source: the subscribe queue counts itself. */
    atomic_store(&srv->metrics.subscribe_queued,
                 srv->waiters ? (long long)rt_waiters_queued(srv->waiters) : 0);
    char *text =
        rt_metrics_render(&srv->metrics, srv->hub, (rt_clock_wall_ms() - srv->started_ms) / 1000);
    if (!text) {
        rt__send_error(conn, 500, "internal_error", "out of memory");
        return 500;
    }
    size_t len = strlen(text);
    if (rt__printf(conn,
                   "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: "
                   "%zu\r\n" RT__MARK_HEADER "%s\r\n",
                   len, rt__connection_close_header(conn)) == 0)
        rt__write(conn, text, len);
    free(text);
    return 200;
}

static int h_dev(struct mg_connection *conn, void *cb)
{
    /* The v3 Inngest client probes GET /dev in inferred dev mode and only
     * needs JSON back; this lets it find rtgw on :8288 with no configuration. */
    (void)cb;
    rt__send_json(conn, 200, "{}", 2, NULL);
    return 200;
}

/* A plain GET on the WebSocket endpoint: the Upgrade never reached rtgw. The
 * usual cause is a proxy that does not forward Upgrade/Connection. */
static int h_connect_plain(struct mg_connection *conn, void *cb)
{
    (void)cb;
    rt__send_error(
        conn, 426, "upgrade_required",
        "/v1/realtime/connect needs a WebSocket upgrade (Upgrade: websocket, Connection: "
        "Upgrade); if a proxy sits in front of rtgw it is dropping those headers (nginx: "
        "proxy_http_version 1.1 and proxy_set_header Upgrade/Connection; see docs/operations.md)");
    return 426;
}

/* GET /dev/key (dev only): the demo page mints tokens with this. Only for the
 * demo page itself: a page on another origin that the developer happens to
 * visit must not read the key from localhost (no CORS header, and a
 * cross-origin request is refused outright). */
static int dev_key(rt_server_t *srv, struct mg_connection *conn)
{
    const char *origin = mg_get_header(conn, "Origin");
    const char *site = mg_get_header(conn, "Sec-Fetch-Site");
    const char *host = mg_get_header(conn, "Host");
    char self[300];
    snprintf(self, sizeof(self), "http://%s", host ? host : "");
    if ((origin && strcmp(origin, self) != 0) ||
        (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)) {
        rt__printf(
            conn,
            "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
            "Content-Length: 71\r\n" RT__MARK_HEADER "%s\r\n"
            "{\"error\":\"forbidden\",\"message\":\"the dev key is for the demo page only\"}",
            rt__connection_close_header(conn));
        return 403;
    }
    char body[300];
    int n = snprintf(body, sizeof(body), "{\"signing_key\":\"%s\"}", srv->cfg->signing_key);
    if (rt__printf(conn,
                   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                   "Cache-Control: no-store\r\n" RT__MARK_HEADER "%s\r\n",
                   n, rt__connection_close_header(conn)) == 0)
        rt__write(conn, body, (size_t)n);
    sodium_memzero(body, sizeof(body));
    return 200;
}

/* The dev-mode files (--dev only): the demo page and the sdk/js modules it
 * imports, embedded at build time. */
static const struct {
    const char *path, *type, *body;
} dev_files[] = {
    {"/", "text/html; charset=utf-8", rt_demo_page_html},
    {"/sdk/index.js", "text/javascript; charset=utf-8", rt_demo_sdk_index_js},
    {"/sdk/codes.js", "text/javascript; charset=utf-8", rt_demo_sdk_codes_js},
};

/* Answers a GET for a dev file; false when uri is none of them. */
static bool dev_file(struct mg_connection *conn, const char *uri)
{
    for (size_t i = 0; i < sizeof(dev_files) / sizeof(dev_files[0]); i++) {
        if (strcmp(uri, dev_files[i].path) != 0)
            continue;
        size_t len = strlen(dev_files[i].body);
        if (rt__printf(conn,
                       "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
                       "Content-Length: %zu\r\nCache-Control: no-store\r\n" RT__MARK_HEADER
                       "%s\r\n",
                       dev_files[i].type, len, rt__connection_close_header(conn)) == 0)
            rt__write(conn, dev_files[i].body, len);
        return true;
    }
    return false;
}

static int h_root(struct mg_connection *conn, void *cb)
{
    rt_server_t *srv = cb;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (srv->cfg->dev && rt__method_is(conn, "GET") && dev_file(conn, ri->local_uri))
        return 200;
    if (srv->cfg->dev && strcmp(ri->local_uri, "/dev/key") == 0 && rt__method_is(conn, "GET"))
        return dev_key(srv, conn);
    if (rt__probes_path(ri->local_uri))
        return rt__probes_handler(conn, srv);
    rt__send_error(conn, 404, "not_found",
                   "no route %s; see /v1/realtime/token, /v1/realtime/publish, "
                   "/v1/realtime/connect, /v1/realtime/sse, /health, /ready, /metrics",
                   strcmp(ri->local_uri, "/") == 0 ? "/ (the demo page exists only with --dev)"
                                                   : "for this path");
    return 404;
}

void rt__routes_register(rt_server_t *srv)
{
    mg_set_request_handler(srv->ctx, "/v1/realtime/token$", h_token, srv);
    mg_set_request_handler(srv->ctx, "/v1/realtime/publish$", h_publish, srv);
    mg_set_request_handler(srv->ctx, "/v1/realtime/publish/batch$", h_publish_batch, srv);
    mg_set_request_handler(srv->ctx, "/v1/realtime/publish/tee$", h_publish_tee, srv);
    mg_set_request_handler(srv->ctx, "/v1/realtime/sse$", rt__sse_handler, srv);
    mg_set_request_handler(srv->ctx, "/health$", h_health, srv);
    mg_set_request_handler(srv->ctx, "/ready$", h_ready, srv);
    mg_set_request_handler(srv->ctx, "/metrics$", h_metrics, srv);
    mg_set_request_handler(srv->ctx, "/dev$", h_dev, srv);
    mg_set_request_handler(srv->ctx, "/v1/realtime/doctor/probes/", rt__probes_handler, srv);
    mg_set_request_handler(srv->ctx, "/v1/realtime/connect$", h_connect_plain, srv);
    mg_set_request_handler(srv->ctx, "/", h_root, srv);
    rt__ws_register(srv, "/v1/realtime/connect$");
}
