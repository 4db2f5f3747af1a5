/*
 * doctor.h — `rtgw doctor`: walk the path a browser takes to a gateway (URL,
 * DNS, TCP, TLS, HTTP, route, clock, token, WebSocket upgrade, subscribe,
 * delivery over WebSocket and SSE, idle survival), stop at the first broken
 * link, and print what was checked, what was found and the fix. Who answered
 * is told by rtgw's X-Rtgw mark and other servers' fingerprints (who.c); what
 * arrived, by rtgw's record of the run's probe id (record.c). `--config` checks the
 * configuration the gateway would load instead.
 *
 * Blocking, single-threaded, no civetweb: raw sockets, poll(2) for every
 * timeout, OpenSSL for TLS and SHA-1. Neither the signing key nor any token is
 * ever printed.
 */
#ifndef RT_DOCTOR_H
#define RT_DOCTOR_H

#include <stdbool.h>
#include <stdio.h>

typedef struct {
    const char *url;         /* http(s):// or ws(s):// origin of the gateway (or its proxy) */
    const char *signing_key; /* borrowed, may be NULL: mint a token, publish probes */
    const char *token;       /* borrowed, may be NULL: use this token instead of minting */
    const char *origin;      /* borrowed, may be NULL: the page origin a browser would send */
    int idle_s;              /* 0: no idle check */
    int timeout_s;           /* per network step; > 0 */
    const char *cacert;      /* borrowed, may be NULL: PEM CA file instead of the system CAs */
    bool json;               /* one JSON object on `out` instead of lines */
} rt_doctor_opts_t;

/* Run the URL checks, printing to out. Returns 0 if no check failed, 1 if
 * one did (the checks after it are not run). Blocks for up to a few timeouts
 * plus idle_s. */
int rt_doctor_run(const rt_doctor_opts_t *o, FILE *out);

/* Load the configuration exactly as `rtgw serve` would (environment over
 * env_file, or ./.env when env_file is NULL; dev off) and print each problem
 * as a failed check and each risky setting as a warning. Returns 0 or 1. */
int rt_doctor_config(const char *env_file, bool json, FILE *out);

/* `rtgw doctor` argument parsing and dispatch; returns the exit code: 0 ok,
 * 1 a check failed, 2 bad usage. */
int rt_doctor_main(int argc, char **argv);

#endif
