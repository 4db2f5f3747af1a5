/*
 * extmsg.h — the extended-protocol client messages (rtgw.v1 WebSocket text
 * frames), parsed and validated without civetweb so that they can be unit
 * tested and fuzzed; gateway/server/ws.c applies the result to the connection.
 *
 *   {"kind":"rtgw.refresh","token":"<jwt>"}
 *     → {"kind":"rtgw.refreshed","expires_at":s}, or
 *       {"kind":"rtgw.error","error":<name>,"message":…} (the old token stays).
 * Anything else gets an rtgw.error. See docs/protocol.md.
 */
#ifndef RT_EXTMSG_H
#define RT_EXTMSG_H

#include "rt_tokens.h"

#include <stddef.h>
#include <stdint.h>

/* Messages longer than this are refused without being parsed. */
#define RT_EXTMSG_MAX_BYTES 65536
/* Deepest JSON nesting a client message may have (they are flat objects). */
#define RT_EXTMSG_MAX_DEPTH 8

typedef struct {
    const char *error;   /* stable name for the rtgw.error frame; static storage */
    const char *message; /* readable text; static storage */
    int tok_err;         /* rt_token_verify's code when the token was refused, else 0 */
} rt_extmsg_refusal_t;

/* Parse data[0..len) as a client message and validate it as a refresh of a
 * connection whose current grant is `cur`: the kind must be "rtgw.refresh",
 * the token must verify at now_s, and it must grant the same topics as cur or
 * fewer. Returns 0 and fills *next (the caller owns it: rt_claims_clear), or
 * -1 with *why filled and *next zeroed. Pure: no I/O, no locks. */
int rt_extmsg_refresh(const rt_keyring_t *ring, const rt_token_opts_t *topts,
                      const rt_claims_t *cur, const char *data, size_t len, int64_t now_s,
                      rt_claims_t *next, rt_extmsg_refusal_t *why);

/* The topic names `next` grants on channel ch, at most cap of them, into
 * names (borrowed from next). Returns the count. */
size_t rt_extmsg_channel_topics(const rt_claims_t *next, const char *ch, rt_slice_t *names,
                                size_t cap);

#endif
