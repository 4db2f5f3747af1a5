/*
 * api.h — the HTTP API's logic without the HTTP server: authentication,
 * validation, token minting and publishing. gateway/server/ adapts civetweb requests
 * to these calls, so every refusal here is unit-testable without sockets.
 *
 * Responses are JSON. Errors are {"error":"<stable name>","message":"<text>"};
 * no error text ever contains a key or a token. Int results are 0 or a
 * negative RT_E_* value of err.h.
 *
 * Files: request.c (responses, credentials, query strings), mint.c (token),
 * publish.c (single publish and stream events), batch.c (batch publish);
 * api_internal.h holds what they share. Every call runs on the caller's
 * request thread, takes no lock of its own, and publishing blocks on the bus
 * (bounded by its timeout).
 */
#ifndef RT_API_H
#define RT_API_H

#include "bus.h"
#include "config.h"
#include "hub.h"
#include "live.h"
#include "metrics.h"
#include "rt_tokens.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    rt_livecell_t *keys; /* borrowed: the signing keys, swapped on reload (live.h) */
    rt_token_opts_t topts;
    rt_hub_t *hub;         /* borrowed */
    rt_metrics_t *metrics; /* borrowed */
    const rt_config_t *cfg;
    bool dev;      /* dev mode: an empty Bearer is accepted (the official clients send one) */
    rt_bus_t *bus; /* borrowed; NULL: publish straight to the hub (unit tests) */
    /* dev mode on a loopback address: any signing key is accepted, as by
     * Inngest's dev server (a leftover INNGEST_SIGNING_KEY in an app); the
     * first such key is logged once, by its env, never its value */
    bool dev_any_key;
    atomic_bool dev_foreign_warned;
} rt_api_t;

typedef struct {
    int status;
    char *body; /* malloc'd, NUL-terminated; caller frees with rt_resp_clear */
    size_t len;
} rt_resp_t;

void rt_resp_clear(rt_resp_t *r);
/* Fill r with an error {"error":name,"message":text}. */
void rt_resp_error(rt_resp_t *r, int status, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same with a va_list (for callers that are variadic themselves). A
 * message that is not UTF-8 keeps its ASCII, so the body is always JSON. */
void rt_resp_errorv(rt_resp_t *r, int status, const char *name, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* Authorization header → 0 if it carries a signing key of the ring (plain or
 * hashed, current or fallback), or is empty in dev mode, or is any signing key
 * with dev_any_key; else RT_E_DENIED, with r filled (401). */
int rt_api_check_key(rt_api_t *api, const char *authorization, rt_resp_t *r);

/* Extract the credential from "Bearer <x>" (case-insensitive scheme, trims
 * spaces). Returns the slice, empty if absent. */
rt_slice_t rt_api_bearer(const char *authorization);

/* POST /v1/realtime/token. */
void rt_api_token(rt_api_t *api, const char *authorization, const char *body, size_t len,
                  int64_t now, rt_resp_t *r);

/* Decoded value of the idx-th occurrence of name in a query string (NULL: an
 * empty one) into out, NUL-terminated. Returns the decoded length, or
 * RT_E_ABSENT (no such parameter), RT_E_INVAL (a bad %-escape) or
 * RT_E_TOOLONG (the value and its NUL do not fit cap). */
int rt_query_param(const char *query, const char *name, int idx, char *out, size_t cap);

/* Largest `metadata` query parameter of a publish (decoded JSON text). */
#define RT_API_MAX_METADATA 4096

typedef struct {
    char channel[1024];
    char topics[16][1024];
    int ntopics;
    char run_id[256];
    char fn_id[256];
    char fn_slug[256];
    char idem_key[256]; /* Idempotency-Key header or idempotency_key parameter; "" = none */
    char env_id[65];    /* the publisher's environment: its key's <env>, or its token's env */
    char metadata[RT_API_MAX_METADATA]; /* compact JSON (jsonraw.h); "" = none */
    size_t metadata_len;
} rt_publish_target_t;

/* Authorise and parse the publish query (channel, topic…, run_id, fn_id,
 * fn_slug, metadata, idempotency_key). Authorization is a signing key or a
 * token whose claims have publish:true and grant every topic. 0, or r filled
 * and RT_E_INVAL (a bad query: 400) or RT_E_DENIED (401/403). */
int rt_api_publish_prepare(rt_api_t *api, const char *authorization, const char *query, int64_t now,
                           rt_publish_target_t *t, rt_resp_t *r);

/* Publish a whole body (JSON embedded as JSON, anything else as a string) to
 * the prepared target; fills r with 200 {"ok":true,"ids":[…],"delivered":n}. */
void rt_api_publish_body(rt_api_t *api, const rt_publish_target_t *t, const char *body, size_t len,
                         int64_t now_ms, rt_resp_t *r);

/* POST /v1/realtime/publish/batch: body [{"channel","topic","data","run_id"?,
 * "fn_id"?,"idempotency_key"?}, …]. Each event is validated, authorised and
 * published on its own; the reply is 200 {"results":[{"ok":true,"id":…} |
 * {"ok":false,"error":…,"message":…}], "published":n, "failed":m}. A body that is
 * not such an array is refused as a whole (400). */
void rt_api_publish_batch(rt_api_t *api, const char *authorization, const char *body, size_t len,
                          int64_t now_ms, rt_resp_t *r);

/* The topic publish/tee writes to, as Inngest's durable endpoints do. */
#define RT_TEE_TOPIC "$stream"

/* POST /v1/realtime/publish/tee?channel=C: t becomes (C, RT_TEE_TOPIC).
 * Authorization is a signing key, or a token with publish:true that grants
 * that topic. 0, or r filled and RT_E_INVAL (400) or RT_E_DENIED (401/403). */
int rt_api_tee_prepare(rt_api_t *api, const char *authorization, const char *query, int64_t now,
                       rt_publish_target_t *t, rt_resp_t *r);

/* Publish bytes of a tee'd body (UTF-8 text; a caller never splits a
 * sequence) as one event of kind "raw" whose data is that text: an SSE
 * subscriber gets the bytes verbatim (rt_event_sse_frame), a WebSocket one
 * the JSON event (official clients drop its kind). 0, or RT_E_INVAL (not
 * UTF-8), RT_E_NOMEM, RT_E_LIMIT or RT_E_UNAVAILABLE. */
int rt_api_publish_tee_chunk(rt_api_t *api, const rt_publish_target_t *t, const char *text,
                             size_t len, int64_t now_ms);

/* Publish a stream event (kind "datastream-start", "chunk", "datastream-end")
 * carrying a string; delivered only to subscribers that opted in. 0, or
 * RT_E_INVAL (text not UTF-8, or out of memory), RT_E_NOMEM, RT_E_LIMIT or
 * RT_E_UNAVAILABLE (the bus's results). */
int rt_api_publish_stream_event(rt_api_t *api, const rt_publish_target_t *t, const char *kind,
                                const char *stream_id, const char *text, size_t len,
                                int64_t now_ms);

#endif
