/*
 * server.c — `rtgw serve`: builds the server, starts civetweb and the
 * threads, waits for SIGTERM/SIGINT, drains and stops (rt_server_run). The
 * other files of gateway/server/ are listed in srv.h.
 *
 * Threads:
 * - the front door (frontdoor.c): listens on RTGW_LISTEN and holds each new
 *   connection, at no thread's cost, until its TLS handshake is done (with
 *   RTGW_TLS_CERT: rtgw terminates TLS, tlsconn.c) and its first request head
 *   has arrived (or its deadline passed); then hands it to civetweb, which
 *   listens for plain HTTP on a private loopback port only (sockhook.c, the
 *   hand-over; its hooks encrypt and decrypt for civetweb).
 * - civetweb workers: HTTP requests and WebSocket/SSE handshakes. After the
 *   handshake a session, ws or wss, leaves its worker (rt__session_detach) and
 *   lives in a writer's epoll, so an open subscriber costs no thread.
 * - writers (RTGW_WRITER_THREADS, writer.c): drain subscriber queues into
 *   sockets, and read detached sessions' client frames (detached.c).
 * - subscribe threads (waiters.c), with the Redis bus only: the front door's
 *   upgrades, whose positions and subscriptions wait on Redis.
 * - heartbeat (heartbeat.c): pings, idle (no pong) detection, token expiry,
 *   sweeps.
 * - this thread: waits for a signal: SIGHUP reloads the keys and origins
 *   (reload.c), SIGTERM/SIGINT drain. It tells systemd (notify.c) when the
 *   gateway is ready, reloading and stopping.
 *
 * The server reaches civetweb's callbacks as their callback data and as the
 * user data of civetweb's context. The only process-wide state here is the
 * signals that were received (a signal handler cannot be handed a context).
 */
#define _GNU_SOURCE
#include "server.h"
#include "srv.h"
#include "clock.h"
#include "conn.h"
#include "err.h"
#include "frontdoor.h"
#include "heartbeat.h"
#include "http.h"
#include "log.h"
#include "notify.h"
#include "reload.h"
#include "routes.h"
#include "session.h"
#include "sockhook.h"
#include "waiters.h"
#include "writer.h"

#include <civetweb.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* At most this many upgrades queued for the subscribe threads (each holds a
 * socket and a connection slot, a few hundred bytes): a reconnect storm with
 * Redis answering queues thousands for a moment. What sheds connects when
 * Redis is slow is the age of the oldest queued one (fastpath.c), not this. */
#define WAITERS_QUEUE 4096

static volatile sig_atomic_t got_signal, got_hup;
static void on_signal(int sig)
{
    got_signal = sig;
}
static void on_hup(int sig)
{
    got_hup = sig;
}

static int cw_log(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    char q[400];
    rt_log_quote(message, q, sizeof(q));
    rt_log_warn("http server", "detail=%s", q);
    return 1;
}

/* ---- assembly ---- */

static void token_opts_from_config(rt_server_t *srv)
{
    rt_config_t *cfg = srv->cfg;
    rt_token_opts_default(&srv->topts);
    srv->topts.issuer = cfg->issuer;
    srv->topts.ttl = cfg->token_ttl_s;
    srv->topts.max_ttl = cfg->token_max_ttl_s;
    srv->topts.leeway = cfg->clock_leeway_s;
    srv->topts.max_token_bytes = (size_t)cfg->max_token_bytes;
    srv->topts.max_topics = (size_t)cfg->max_topics;
    srv->topts.max_name_bytes = (size_t)cfg->max_name_bytes;
}

/* The hub, and the bus in front of it: memory, or Redis with RTGW_REDIS_URL.
 * Returns false after saying why. */
static bool hub_and_bus(rt_server_t *srv)
{
    rt_config_t *cfg = srv->cfg;
    rt_hub_opts_t ho;
    rt_hub_opts_default(&ho);
    ho.queue_max_frames = (size_t)cfg->queue_max_messages;
    ho.queue_max_bytes = (size_t)cfg->queue_max_bytes;
    ho.history_max = (size_t)cfg->history_max;
    ho.history_max_age_ms = cfg->history_max_age_s * 1000;
    ho.idem_window_ms = cfg->idempotency_window_s * 1000;
    uint64_t seed;
    randombytes_buf(&seed, sizeof(seed));
    srv->hub = rt_hub_new(&ho, seed);
    if (!cfg->redis_url) {
        srv->bus = rt_bus_memory_new(srv->hub);
        return srv->bus != NULL;
    }
    rt_bus_redis_opts_t bo = {
        .url = cfg->redis_url,
        .history_max = ho.history_max,
        .history_max_age_ms = ho.history_max_age_ms,
        .idem_window_ms = ho.idem_window_ms,
        .timeout_ms = cfg->redis_timeout_ms,
        .pool = (int)cfg->redis_pool,
        .metrics = &srv->metrics,
    };
    char berr[512] = "";
    srv->bus = rt_bus_redis_new(srv->hub, &bo, berr, sizeof(berr));
    if (!srv->bus) {
        fprintf(stderr, "rtgw: %s\n", berr); /* one line, naming the variable; no password */
        return false;
    }
    return true;
}

/* Everything but civetweb and the threads. Returns false after saying why. */
static bool server_setup(rt_server_t *srv, rt_config_t *cfg)
{
    srv->cfg = cfg;
    srv->started_ms = rt_clock_wall_ms();
    rt_metrics_init(&srv->metrics);
    pthread_mutex_init(&srv->conns_lock, NULL);
    int kerr = 0;
    srv->live = rt_livecell_new(rt_live_from_config(cfg, &kerr));
    if (!srv->live) {
        rt_log_error("cannot load the signing keys", "%s", "");
        return false;
    }
    rt__sockhook_init(cfg->request_timeout_ms);
    token_opts_from_config(srv);
    if (!hub_and_bus(srv))
        return false;
    srv->api = (rt_api_t){.keys = srv->live,
                          .topts = srv->topts,
                          .hub = srv->hub,
                          .metrics = &srv->metrics,
                          .cfg = cfg,
                          .dev = cfg->dev,
                          .bus = srv->bus,
                          .dev_any_key = cfg->dev && rt_config_listen_loopback(cfg)};
    srv->publish_limit = rt_limiter_new((double)cfg->rate_limit_publish,
                                        2.0 * (double)cfg->rate_limit_publish, 100000);
    srv->mint_limit =
        rt_limiter_new((double)cfg->rate_limit_mint, 2.0 * (double)cfg->rate_limit_mint, 100000);
    srv->ip_conns = rt_conncount_new((size_t)cfg->max_connections_per_ip);
    srv->probes = rt_probes_new();
    srv->ping_frame = rt_ws_frame_new(RT_WS_PING, NULL, 0);
    srv->sse_ping_frame = rt_frame_new(16);
    memcpy(srv->sse_ping_frame->data, ": ping\n\n", 8);
    srv->sse_ping_frame->len = 8;
    static const char closing[] = "{\"kind\":\"closing\"}";
    srv->closing_frame = rt_ws_frame_new(RT_WS_TEXT, closing, sizeof(closing) - 1);
    srv->sse_closing_frame = rt_frame_new(64);
    srv->sse_closing_frame->len = (uint32_t)snprintf(srv->sse_closing_frame->data, 64,
                                                     "event: closing\ndata: %s\n\n", closing);
    srv->nwriters = (int)cfg->writer_threads;
    return true;
}

/* ---- civetweb ---- */

#define RT__STR(x) #x
#define RT__XSTR(x) RT__STR(x)

/* Start civetweb with the options of cfg, listening on ports (civetweb's
 * listening_ports). civetweb speaks plain HTTP only: rtgw terminates TLS in
 * the front door (tlsconn.h). */
static bool civetweb_launch(rt_server_t *srv, const char *ports)
{
    rt_config_t *cfg = srv->cfg;
    char threads[32], reqto[32], wsto[32];
    /* Sessions leave civetweb's threads after the handshake
     * (rt__session_detach), so threads are only needed for HTTP requests and
     * handshakes in flight. */
    long long nthreads = cfg->http_threads + 32;
    snprintf(threads, sizeof(threads), "%lld", nthreads);
    snprintf(reqto, sizeof(reqto), "%lld", (long long)cfg->request_timeout_ms);
    snprintf(wsto, sizeof(wsto), "%lld", (long long)cfg->ping_interval_ms);
    /* clang-format off */
    const char *options[] = {
        "listening_ports", ports,
        "num_threads", threads,
        "request_timeout_ms", reqto,
        "websocket_timeout_ms", wsto,
        "enable_websocket_ping_pong", "no",
        "enable_keep_alive", "yes",
        "keep_alive_timeout_ms", "5000",
        "tcp_nodelay", "1",
        "max_request_size", RT__XSTR(RT__MAX_REQUEST_HEAD),
        "listen_backlog", "1024",
        "connection_queue", "256",
        "decode_url", "yes",
        NULL};
    /* clang-format on */
    struct mg_callbacks cbs;
    memset(&cbs, 0, sizeof(cbs));
    cbs.log_message = cw_log;
    cbs.begin_request = rt__http_framing_guard; /* http.c */
    cbs.http_error = rt__http_error;
    cbs.end_request = rt__http_end_request; /* kept-alive connections go back to the front door */
    mg_init_library(MG_FEATURES_WEBSOCKET);
    char errtext[256] = "";
    unsigned errcode = 0;
    struct mg_error_data err = {&errcode, errtext, sizeof(errtext)};
    struct mg_init_data init = {&cbs, srv, options}; /* srv: the context's user data */
    srv->ctx = mg_start2(&init, &err);
    if (!srv->ctx) {
        char q[300];
        rt_log_quote(errtext, q, sizeof(q));
        rt_log_error("cannot start the HTTP server", "listen=%s detail=%s", ports, q);
        return false;
    }
    return true;
}

/* civetweb's private port (it listens on 127.0.0.1:0), or -1. */
static int civetweb_port(rt_server_t *srv)
{
    struct mg_server_port port;
    if (mg_get_server_ports(srv->ctx, 1, &port) != 1)
        return -1;
    return port.port;
}

/* Bind cfg's address (the front door), then start civetweb on a private
 * loopback port; listen receives the public address as civetweb would have
 * written it ("host:port", "s" appended for TLS). Returns false after saying
 * why. */
static bool civetweb_start(rt_server_t *srv, char *listen, size_t cap)
{
    rt_config_t *cfg = srv->cfg;
    bool v6 = strchr(cfg->host, ':') != NULL;
    bool tls = cfg->tls_cert != NULL;
    snprintf(listen, cap, v6 ? "[%s]:%d%s" : "%s:%d%s", cfg->host, cfg->port, tls ? "s" : "");
    char why[300] = "", q[320];
    srv->frontdoor = rt__frontdoor_new(cfg, why, sizeof(why));
    if (!srv->frontdoor) {
        rt_log_quote(why, q, sizeof(q));
        rt_log_error("cannot start the HTTP server",
                     "listen=%s detail=%s hint=\"is the port in use? set RTGW_LISTEN\"", listen, q);
        return false;
    }
    if (!civetweb_launch(srv, "127.0.0.1:0"))
        return false;
    int port = civetweb_port(srv);
    if (port <= 0) {
        rt_log_error("cannot start the HTTP server", "listen=%s detail=\"no private port\"",
                     listen);
        return false;
    }
    rt__sockhook_handover_begin(port);
    return true;
}

/* Undo what civetweb_start did, in the order that loses nothing: the front
 * door first (no more hand-overs), civetweb, then the sockets it never
 * accepted. */
static void civetweb_stop(rt_server_t *srv)
{
    rt__sockhook_park_end();
    rt__frontdoor_free(srv->frontdoor);
    srv->frontdoor = NULL;
    rt_waiters_free(srv->waiters); /* after the front door: nothing submits now */
    srv->waiters = NULL;
    rt__sockhook_stopping(); /* civetweb's polls end within 100 ms */
    if (srv->ctx)
        mg_stop(srv->ctx);
    rt__sockhook_handover_end();
}

static int park_in_frontdoor(void *frontdoor, int fd, rt_tls_t *tls, int64_t linger_ms,
                             size_t linger_max)
{
    return linger_ms > 0 ? rt__frontdoor_linger(frontdoor, fd, tls, linger_ms, linger_max)
                         : rt__frontdoor_adopt(frontdoor, fd, tls);
}

/* civetweb, its routes, then the front door's thread: no request reaches
 * civetweb before its routes exist. Returns false after saying why. */
static bool http_start(rt_server_t *srv, char *listen, size_t cap)
{
    if (!civetweb_start(srv, listen, cap))
        return false;
    rt__routes_register(srv);
    if (srv->bus->ops->waits) {
        /* The front door's upgrades wait on Redis here (fastpath.c): two
         * threads per pooled Redis connection, so that some wait on a
         * SUBSCRIBE's confirmation while others use the pool. Without them
         * civetweb's threads take those upgrades, as they did before. */
        int n = (int)(srv->cfg->redis_pool * 2 < 32 ? srv->cfg->redis_pool * 2 : 32);
        srv->waiters = rt_waiters_new(n, WAITERS_QUEUE, "rtgw-subscribe");
        if (!srv->waiters)
            rt_log_warn("cannot start the subscribe threads",
                        "detail=\"upgrades with the Redis bus take the slower path\"");
    }
    if (rt__frontdoor_start(srv->frontdoor, civetweb_port(srv), srv) != 0) {
        rt_log_error("cannot start the HTTP server", "listen=%s detail=\"no front door thread\"",
                     listen);
        return false;
    }
    rt__sockhook_park_begin(park_in_frontdoor, srv->frontdoor);
    return true;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void announce(rt_config_t *cfg, char *listen)
{
    bool tls = cfg->tls_cert != NULL;
    rt_log_info("listening", "addr=%s dev=%d max_connections=%lld version=%s", listen, cfg->dev,
                (long long)cfg->max_connections, RT_VERSION);
    if (tls)
        listen[strlen(listen) - 1] = 0; /* drop civetweb's "s" suffix for display */
    printf("rtgw %s listening on %s://%s\n", RT_VERSION, tls ? "https" : "http", listen);
    fflush(stdout);
}

/* ---- drain and stop ---- */

/* Refuse new work, tell every client, wait for them (RTGW_SHUTDOWN_TIMEOUT_MS). */
static void drain(rt_server_t *srv)
{
    rt_log_info("shutting down", "signal=%d connections=%ld", (int)got_signal,
                atomic_load(&srv->nconns));
    /* Under conns_lock: a session listed later sees the flag and is told
     * itself (session.c, conns_add), so none misses the broadcast. */
    pthread_mutex_lock(&srv->conns_lock);
    atomic_store(&srv->draining, true);
    for (rt_conn_t *c = srv->conns; c; c = c->next)
        rt__session_tell_closing(srv, c);
    pthread_mutex_unlock(&srv->conns_lock);
    /* Upgrades still queued for the subscribe threads (Redis slow or gone)
     * are closed now, their slots given back: the wait below is for open
     * sessions, not for Redis. */
    rt_waiters_drop_queued(srv->waiters);
    int64_t until = rt_clock_mono_ms() + srv->cfg->shutdown_timeout_ms;
    while (atomic_load(&srv->nconns) > 0 && rt_clock_mono_ms() < until)
        usleep(20000);
}

static void server_stop(rt_server_t *srv)
{
    atomic_store(&srv->stop, true);
    rt__heartbeat_wake(srv);
    civetweb_stop(srv);
    pthread_join(srv->heartbeat, NULL);
    rt__writers_stop(srv);
    rt_log_info("stopped", "remaining_connections=%ld", atomic_load(&srv->nconns));
    rt_bus_free(srv->bus);
    rt_hub_free(srv->hub);
    rt_livecell_free(srv->live);
    if (srv->reloaded) {
        rt_config_free(srv->reloaded);
        free(srv->reloaded);
    }
    rt_limiter_free(srv->publish_limit);
    rt_limiter_free(srv->mint_limit);
    rt_conncount_free(srv->ip_conns);
    rt_probes_free(srv->probes);
    rt_frame_unref(srv->ping_frame);
    rt_frame_unref(srv->sse_ping_frame);
    rt_frame_unref(srv->closing_frame);
    rt_frame_unref(srv->sse_closing_frame);
    free(srv->writers);
    free(srv);
}

int rt_server_run(rt_config_t *cfg)
{
    rt_server_t *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return 1;
    if (!server_setup(srv, cfg) || rt__writers_start(srv) != 0)
        return 1;
    char listen[300];
    if (!http_start(srv, listen, sizeof(listen))) {
        atomic_store(&srv->stop, true);
        civetweb_stop(srv);
        rt__writers_stop(srv);
        return 1;
    }
    rt__heartbeat_init(srv);
    if (pthread_create(&srv->heartbeat, NULL, rt__heartbeat_main, srv) == 0)
        pthread_setname_np(srv->heartbeat, "rtgw-heartbeat");
    install_signals();
    announce(cfg, listen);
    /* Not pause(): a process-directed SIGTERM may be handled by any thread
     * (civetweb's, the writers'), which leaves this one paused for ever, and
     * one that lands between the test and pause() is lost too. Poll instead. */
    rt__notify("READY=1");
    while (!got_signal) {
        if (got_hup) {
            got_hup = 0;
            rt__reload(srv);
        }
        usleep(50 * 1000);
    }
    rt__notify("STOPPING=1");
    drain(srv);
    server_stop(srv);
    return 0;
}
