/*
 * checks.h — the doctor's checks and the context they share (private to
 * rt_doctor). rt_doctor_run (doctor.c) runs them in order and stops at the
 * first failure; each check reads what earlier ones found in rt__doctor_t
 * and adds its own findings (the target's address after tcp, the TLS
 * context after tls, the token after token, the open WebSocket after
 * upgrade).
 *
 * Every check reports its result (a skip counts) under its name (upgrade also
 * judges subscribe), and returns 0 when the next check may run, or -1 when it
 * failed (a verdict, already reported, not an error code). Blocking,
 * single-threaded: the run's thread owns the context.
 */
#ifndef RT_DOCTOR_CHECKS_H
#define RT_DOCTOR_CHECKS_H

#include "doctor.h"
#include "net.h"
#include "http_client.h"
#include "report.h"
#include "who.h"
#include "ws_client.h"

#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>

/* The probe topic: each probe carries a random nonce, so concurrent doctors
 * against one gateway do not confuse each other. */
#define RT__PROBE_CHANNEL "rtgw-doctor"
#define RT__PROBE_TOPIC "probe"
/* How long a published probe may take to arrive (and the SSE head with it). */
#define RT__DELIVERY_MS 2000
/* How long to wait for the body of a refusal (an upgrade or a stream that
 * was answered with an error page). */
#define RT__ERROR_BODY_MS 1000

typedef struct {
    const rt_doctor_opts_t *o; /* borrowed */
    rt__report_t rep;
    rt__target_t net;    /* url: host, port, tls; tcp: addr; tls: ctx (owned by the run) */
    char shown[400];     /* scheme://host[:port] as the report shows it */
    char url_path[256];  /* the URL's path without a trailing slash ("" none) */
    struct addrinfo *ai; /* owned: the dns answer, freed by the run */
    /* http */
    char date[80]; /* the Date header of /health, "" when absent */
    int64_t date_local_s;
    /* token: jwt is owned (wiped and freed by the run) and a report secret */
    char *jwt;
    bool minted, mint_tried;
    int mint_status; /* HTTP status of the mint, -1 when no response */
    char mint_err[512];
    char mint_who[560]; /* who answered the mint (who.h) */
    bool mint_rtgw;     /* the mint's answer carried X-Rtgw */
    int64_t tok_iat, tok_exp;
    /* websocket: open after a successful upgrade, until a check closes it */
    rt__ws_t ws;
    bool ws_open;
    int64_t ws_delivery_ms;
    /* who is in front: the proxy named by the answers' Server/Via headers
     * (RT__WHO_OTHER: none named), HAProxy by its own pages */
    rt__who_kind_t proxy;
    bool route_rtgw; /* the route check saw rtgw answer /v1/realtime/ */
} rt__doctor_t;

/* checks_url.c: the way to the server. */
int rt__check_url(rt__doctor_t *d);
int rt__check_dns(rt__doctor_t *d);
int rt__check_tcp(rt__doctor_t *d);
int rt__check_tls(rt__doctor_t *d);
/* checks_http.c: rtgw answers, clocks agree, a token can be had. */
int rt__check_http(rt__doctor_t *d);
int rt__check_clock(rt__doctor_t *d);
int rt__check_token(rt__doctor_t *d);
/* checks_ws.c: the WebSocket upgrade (and subscribe), delivery, idle. */
int rt__check_upgrade(rt__doctor_t *d);
int rt__check_delivery(rt__doctor_t *d);
int rt__check_idle(rt__doctor_t *d);
/* checks_sse.c: the same probe over Server-Sent Events. */
int rt__check_sse(rt__doctor_t *d);

/* checks_route.c: which server answers the /v1/realtime/ paths. */
int rt__check_route(rt__doctor_t *d);

/* hops.c: the verdicts on an upgrade that went wrong, from the probe record
 * (what arrived) or who answered; each reports under "upgrade", returns -1.
 * not_rtgw: the answer r lacks X-Rtgw. upgrade_plain: rtgw answered status
 * ename (426 upgrade_required, 404 not_found): it saw no upgrade.
 * token_missing: a token was sent, and rtgw answered (answer, e.g. "closed
 * with 4401 token_missing") as if none came. */
int rt__hop_not_rtgw(rt__doctor_t *d, const rt__http_resp_t *r, const char *via);
int rt__hop_upgrade_plain(rt__doctor_t *d, int status, const char *ename, const char *via);
int rt__hop_token_missing(rt__doctor_t *d, const char *answer);

/* fixes.c: fix texts shared by several checks, and the routing advice for
 * the proxy in front (RT__WHO_OTHER: every proxy's). */
void rt__fix_route(rt__who_kind_t proxy, char *out, size_t cap);
void rt__fix_rewrite(rt__who_kind_t proxy, char *out, size_t cap);
extern const char rt__fix_upgrade[];
extern const char rt__fix_backend_down[];
extern const char rt__fix_sse[];
/* The fix for a WebSocket closed after timeout_s idle: the setting to raise
 * in that proxy, and a heartbeat strictly below timeout_s. */
void rt__fix_idle_for(rt__who_kind_t proxy, double timeout_s, char *out, size_t cap);

#endif
