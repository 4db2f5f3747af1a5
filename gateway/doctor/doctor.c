/*
 * doctor.c — `rtgw doctor <url>`: the path a browser takes to the gateway,
 * one link at a time, stopping at the first broken one (rt_doctor_run,
 * doctor.h).
 *
 * Why a hand-written client: every failure diagnosed here lives in bytes that
 * a proxy changes — the Upgrade/Connection headers, the status of an upgrade
 * it answered itself, a buffered SSE body, a tunnel closed after an idle
 * period — and a WebSocket library hides exactly those. So the doctor speaks
 * HTTP/1.1 (http_client.c) and RFC 6455 (ws_client.c) itself over
 * non-blocking sockets and OpenSSL (net.c), sends what a browser sends
 * (masked frames, pongs, Origin), and never includes civetweb.
 *
 * This file owns one run: the context (checks.h), the order of the checks,
 * and freeing what they left (the address list, the TLS context, the token,
 * an open WebSocket). Each check prints through report.c, where neither the
 * signing key nor a token is ever printed. Blocking, single-threaded.
 */
#include "checks.h"
#include "probe.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* The checks in the order a browser meets the links. */
static const struct {
    const char *name;
    int (*fn)(rt__doctor_t *);
} checks[] = {
    {"url", rt__check_url},           {"dns", rt__check_dns},     {"tcp", rt__check_tcp},
    {"tls", rt__check_tls},           {"http", rt__check_http},   {"route", rt__check_route},
    {"clock", rt__check_clock},       {"token", rt__check_token}, {"upgrade", rt__check_upgrade},
    {"delivery", rt__check_delivery}, {"sse", rt__check_sse},     {"idle", rt__check_idle}};

/* Run the checks until one fails; the name of that one, or NULL. */
static const char *run_checks(rt__doctor_t *d)
{
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++)
        if (checks[i].fn(d) != 0 || d->rep.failed)
            return checks[i].name;
    return NULL;
}

/* Free what the checks left in d, and d. */
static void doctor_free(rt__doctor_t *d)
{
    if (d->ws_open)
        rt__ws_close(&d->ws);
    if (d->ai)
        freeaddrinfo(d->ai);
    if (d->net.ctx)
        SSL_CTX_free(d->net.ctx);
    if (d->jwt) {
        sodium_memzero(d->jwt, strlen(d->jwt));
        free(d->jwt);
    }
    rt__report_free(&d->rep);
    free(d);
}

int rt_doctor_run(const rt_doctor_opts_t *o, FILE *out)
{
    rt__doctor_t *d = calloc(1, sizeof(*d));
    if (!d)
        return 1;
    d->o = o;
    rt__report_init(&d->rep, out, o->json, o->signing_key, o->token);
    d->net.timeout_ms = (int64_t)(o->timeout_s > 0 ? o->timeout_s : 5) * 1000;
    d->ws.c.fd = -1;
    d->proxy = RT__WHO_OTHER;
    rt__random_hex(d->net.probe, 12); /* the run's probe id (record.h) */
    rt__report_finish(&d->rep, run_checks(d));
    int rc = d->rep.failed ? 1 : 0;
    doctor_free(d);
    return rc;
}
