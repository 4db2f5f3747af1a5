/*
 * api_internal.h — private to gateway/api/: the calls its files share. The
 * public contract is api.h. Same rules: no HTTP library types, no locks of
 * its own; every call runs on the caller's (request) thread.
 */
#ifndef RT__API_INTERNAL_H
#define RT__API_INTERNAL_H

#include "api.h"

#include <jansson.h>

/* Fill r with status and obj as compact JSON; steals obj (NULL → empty body). */
void rt__api_resp_json(rt_resp_t *r, int status, json_t *obj);

/* Refuse a body nested deeper than RTGW_MAX_JSON_DEPTH (+ extra levels the
 * body's own framing adds, e.g. a batch's array and event objects) before a
 * recursive parser sees it. true with r filled (400 json_too_deep). */
bool rt__api_json_too_deep(rt_api_t *api, const char *body, size_t len, int extra, rt_resp_t *r);

/* Like rt_api_check_key; on success env holds the environment the caller
 * acts in: the matched key's <env>, or the current key's (an empty Bearer or
 * a foreign key in dev mode), copied (a SIGHUP may replace the ring). */
int rt__api_check_key_env(rt_api_t *api, const char *authorization, char env[65], rt_resp_t *r);

/* Authorise a publisher: a signing key (or an empty Bearer in dev mode), or a
 * token that verifies at now_s. With a token, *claims holds its claims
 * (caller clears them with rt_claims_clear) and *by_token is set. On success
 * env (65 bytes) holds the publisher's environment (see rt_publish_target_t).
 * 0, or RT_E_DENIED with r filled (401; claims left empty). */
int rt__api_auth_publisher(rt_api_t *api, const char *authorization, int64_t now_s,
                           rt_claims_t *claims, bool *by_token, char env[65], rt_resp_t *r);

/* Publish one event through the bus (or straight to the hub when there is
 * none). 0, RT_E_NOMEM, RT_E_LIMIT (too many idempotency keys) or
 * RT_E_UNAVAILABLE. Blocks on the bus's I/O; call with no hub lock held. */
int rt__api_publish_event(rt_api_t *api, const rt_event_t *ev, rt_slice_t idem_key, int64_t now_ms,
                          rt_pos_t *pos, size_t *delivered, bool *dup);

#endif
