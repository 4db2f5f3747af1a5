/*
 * srv.h — the state of one `rtgw serve`, shared by the files of
 * gateway/server/ (private: the public header is server.h).
 *
 * One rt_server_t, built and freed by server.c (rt_server_run). There is no
 * global server: every file is handed it, as civetweb's callback data or the
 * user data of its context (mg_init_data), as a thread's argument, or as
 * conn->srv. (The one exception, the fd tables of sockhook.c, is explained
 * there: a libc override cannot receive a context.)
 *
 * Fields set before civetweb starts are not reassigned afterwards: cfg, ctx,
 * frontdoor, waiters, live, topts, hub, bus, api, writers, nwriters, started_ms, the ping and
 * closing frames, the limiters and ip_conns (the objects they point to lock themselves). The rest:
 * conns under conns_lock; nconns, next_writer, draining, stop and the counters in metrics are
 * atomics. Freed by server.c after every thread has stopped.
 *
 * The files, one stage of a session's life each:
 *   frontdoor.c       the public listener: connections until their first head
 *   fastpath.c        the upgrade and the mint, answered by the front door
 *   linger.c          answered connections the front door closes gently
 *   sockhook.c        libc/OpenSSL hooks: the hand-over to civetweb, peer → fd,
 *                     the client frame guard
 *   reload.c          SIGHUP: new keys and origins from the env file
 *   notify.c          sd_notify (systemd readiness) over $NOTIFY_SOCKET
 *   conn.c            a session's record, its references and its closing
 *   writer.c          writer threads: queues to sockets, never blocking
 *   http.c            HTTP helpers: JSON replies, CORS, bodies, rate limits
 *   routes.c          the HTTP routes (token, publish, health, ...)
 *   publish_stream.c  a streamed publish (text/stream) and its flusher
 *   session.c         admission and the life of a session (WebSocket, SSE)
 *   ws.c              WebSocket callbacks and client frames
 *   detached.c        client frames of sessions that left civetweb's threads
 *   sse.c             the SSE route
 *   probe_record.c    doctor's probe record and its route
 *   heartbeat.c       pings, idle and expiry checks, sweeps
 *   server.c          assembly, start and drain
 */
#ifndef RT_SRV_H
#define RT_SRV_H

#include "api.h"
#include "bus.h"
#include "config.h"
#include "hub.h"
#include "live.h"
#include "metrics.h"
#include "probes.h"
#include "ratelimit.h"
#include "rt_tokens.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct mg_context;
struct mg_connection;
typedef struct rt_conn_s rt_conn_t;           /* conn.h */
typedef struct rt_writer_s rt_writer_t;       /* writer.h */
typedef struct rt_frontdoor_s rt_frontdoor_t; /* frontdoor.h */
typedef struct rt_tls_s rt_tls_t;             /* tlsconn.h */
typedef struct rt_waiters_s rt_waiters_t;     /* waiters.h */

typedef struct rt_server_s {
    rt_config_t *cfg;
    struct mg_context *ctx;
    rt_frontdoor_t *frontdoor; /* the public listener (frontdoor.c) */
    rt_waiters_t *waiters;     /* the front door's upgrades that wait on the bus; NULL: none */
    rt_livecell_t *live;       /* keys and origins: SIGHUP swaps the snapshot (live.h) */
    rt_token_opts_t topts;
    rt_hub_t *hub;
    rt_bus_t *bus; /* memory, or redis with RTGW_REDIS_URL */
    rt_metrics_t metrics;
    rt_api_t api;
    rt_writer_t *writers;
    int nwriters;
    atomic_int next_writer;
    pthread_mutex_t conns_lock;
    rt_conn_t *conns; /* every open session, for the heartbeat and shutdown */
    atomic_long nconns;
    atomic_bool draining;
    atomic_bool stop;
    int64_t started_ms; /* wall clock */
    rt_frame_t *ping_frame, *sse_ping_frame;
    rt_frame_t *closing_frame, *sse_closing_frame; /* {"kind":"closing"}: the drain's */
    rt_limiter_t *publish_limit, *mint_limit;      /* per client IP */
    rt_conncount_t *ip_conns;
    rt_probes_t *probes; /* doctor's probe record (core/probes.h; NULL: not kept) */
    pthread_t heartbeat;
    pthread_mutex_t heartbeat_lock; /* with heartbeat_cond: its sleep, cut short at stop */
    pthread_cond_t heartbeat_cond;  /* CLOCK_MONOTONIC */
    rt_config_t *reloaded;          /* main thread only: what the last SIGHUP loaded (reload.c) */
} rt_server_t;

#endif
