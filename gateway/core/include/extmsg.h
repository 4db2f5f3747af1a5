/*
 * extmsg.h — client messages on a WebSocket (JSON text frames), parsed and
 * validated without civetweb so that they can be unit tested and fuzzed;
 * gateway/server/ws.c applies the result to the connection.
 *
 *   {"kind":"sub","data":"<jwt>"}        Inngest's: add the token's topics
 *   {"kind":"unsub","data":[{topic}…]}   Inngest's: remove these topics
 *   {"kind":"rtgw.refresh","token":"<jwt>"}   extended clients only
 *     → {"kind":"rtgw.refreshed","expires_at":s}, or
 *       {"kind":"rtgw.error","error":<name>,"message":…} (the old token stays).
 * Official clients get no answer to sub/unsub or to a refused message (as
 * Inngest); extended clients get an ack or an rtgw.error. See
 * docs/protocol.md, "Client messages".
 *
 * A connection's grant (its rt_claims_t) is what it is subscribed to now:
 * sub adds to it, unsub and a narrowing refresh take from it.
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

typedef enum {
    RT_CMSG_MALFORMED = 0, /* too large, too deep, not a JSON object with a string kind */
    RT_CMSG_UNKNOWN,       /* a kind rtgw does not serve */
    RT_CMSG_SUB,
    RT_CMSG_UNSUB,
    RT_CMSG_REFRESH,
} rt_cmsg_kind_t;

/* The kind of the client message data[0..len) (parsed with the size and depth
 * bounds above; fills *why for RT_CMSG_MALFORMED and RT_CMSG_UNKNOWN). Pure. */
rt_cmsg_kind_t rt_extmsg_kind(const char *data, size_t len, rt_extmsg_refusal_t *why);

/* Validate {"kind":"sub","data":"<jwt>"} on a connection whose grant is cur:
 * the token must verify at now_s (signature, key ring with rotation,
 * lifetime, issuer, env, names: the checks of a connect). Its channels need
 * not be cur's. *add gets the token's claims with only the topics cur does
 * not already grant (deduplicated; possibly none). Refused when cur would
 * then hold more than max_topics topics (too_many_topics). Returns 0 (the
 * caller owns *add: rt_claims_clear), or -1 with *why filled and *add zeroed. */
int rt_extmsg_sub(const rt_keyring_t *ring, const rt_token_opts_t *topts, const rt_claims_t *cur,
                  const char *data, size_t len, int64_t now_s, size_t max_topics, rt_claims_t *add,
                  rt_extmsg_refusal_t *why);

/* Validate {"kind":"unsub","data":[{"channel":C,"name":T,"kind"?,"env_id"?}…]}
 * (at most max_topics entries, each with string channel and name) and move
 * the topics of cur that match one exactly (channel and name; "*" only
 * matches "*") into *removed (zeroed first; the caller owns it). Topics cur
 * does not hold are ignored. 0, or -1 with *why filled and cur unchanged. */
int rt_extmsg_unsub(rt_claims_t *cur, const char *data, size_t len, size_t max_topics,
                    rt_claims_t *removed, rt_extmsg_refusal_t *why);

/* Move add's topics to the end of cur (add's topic array is freed and add
 * keeps its other claims). 0, or RT_E_NOMEM with both unchanged. */
int rt_extmsg_claims_merge(rt_claims_t *cur, rt_claims_t *add);

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
