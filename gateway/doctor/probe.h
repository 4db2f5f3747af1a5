/*
 * probe.h — the doctor as a client of the gateway's HTTP API: it mints a
 * token for the probe topic (rtgw-doctor/probe) with the signing key, reads
 * a token's claims, and publishes probes that carry a random nonce.
 *
 * Private to rt_doctor. Blocking up to the target's timeout, single-threaded.
 * The signing key goes only into Authorization headers, which are wiped.
 */
#ifndef RT_DOCTOR_PROBE_H
#define RT_DOCTOR_PROBE_H

#include "checks.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 2*nbytes hex digits of randomness (nbytes <= 32) into out, NUL-terminated. */
void rt__random_hex(char *out, size_t nbytes);

/* The iat, exp, sub and number of topics of a JWT's claims (not verified).
 * False if jwt is not three base64url segments with JSON claims. */
bool rt__token_claims(const char *jwt, int64_t *iat, int64_t *exp, char *sub, size_t subcap,
                      int *ntopics);

/* POST /v1/realtime/token for the probe topic, once per run: fills d->jwt
 * (registered as a report secret), d->minted, d->tok_iat/exp, or
 * d->mint_status and d->mint_err. Needs d->o->signing_key. */
void rt__probe_mint(rt__doctor_t *d);

/* POST a probe carrying nonce to the probe topic: 0, or a negative RT_E_*
 * value with why filled. */
int rt__probe_publish(rt__doctor_t *d, const char *nonce, char *why, size_t cap);

#endif
