/*
 * publish.c — POST /v1/realtime/publish: the target (channel, up to 16
 * topics, run_id, fn_id, fn_slug, metadata, idempotency key) from the query
 * string and its authorisation, then the body published once per topic. A body that is
 * JSON is embedded as the bytes it came as (jsonraw.h), anything else as a
 * JSON string (what the official clients send as application/json need not
 * be JSON). Also the
 * stream events of a streamed publish, and the one path to the bus that
 * batch.c shares.
 *
 * Any request thread; no locks of its own; publishing blocks on the bus
 * (bounded by its timeout) and must run with no hub lock held. The
 * normalised body is freed here; responses are the caller's (rt_resp_clear).
 */
#include "api_internal.h"
#include "clock.h"
#include "jsonraw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the target ---- */

/* The idx-th query parameter pname as a valid name into out. An absent
 * optional one leaves "". 0, or RT_E_INVAL with r filled (400). */
static int name_param(const char *query, const char *pname, int idx, char *out, size_t cap,
                      size_t maxn, bool required, rt_resp_t *r)
{
    int n = rt_query_param(query, pname, idx, out, cap);
    if (n == RT_E_ABSENT) {
        out[0] = 0;
        if (!required)
            return 0;
        rt_resp_error(r, 400, "bad_request", "missing query parameter '%s'", pname);
        return RT_E_INVAL;
    }
    if (n < 0) {
        rt_resp_error(r, 400, "name_too_long", "query parameter '%s' is too long or badly encoded",
                      pname);
        return RT_E_INVAL;
    }
    int rc = rt_name_validate((rt_slice_t){out, (size_t)n}, maxn);
    if (rc) {
        rt_resp_error(r, 400, rt_tok_errname(rc), "%s: %s", pname, rt_tok_strerror(rc));
        return RT_E_INVAL;
    }
    if (strlen(out) != (size_t)n) {
        rt_resp_error(r, 400, "name_bad_chars", "%s: contains a NUL byte", pname);
        return RT_E_INVAL;
    }
    return 0;
}

/* channel and topic=… (1 to 16, no wildcard). 0, or RT_E_INVAL with r filled. */
static int target_names(const char *query, size_t maxn, rt_publish_target_t *t, rt_resp_t *r)
{
    if (name_param(query, "channel", 0, t->channel, sizeof(t->channel), maxn, true, r))
        return RT_E_INVAL;
    for (int i = 0; i < 16; i++) {
        if (name_param(query, "topic", i, t->topics[i], sizeof(t->topics[i]), maxn, i == 0, r))
            return RT_E_INVAL;
        if (!t->topics[i][0])
            break;
        if (strcmp(t->topics[i], "*") == 0) {
            rt_resp_error(r, 400, "bad_request",
                          "topic '*' is a subscription wildcard; publish to a named topic");
            return RT_E_INVAL;
        }
        t->ntopics++;
    }
    if (rt_query_param(query, "topic", 16, t->run_id, sizeof(t->run_id)) != RT_E_ABSENT) {
        rt_resp_error(r, 400, "bad_request", "at most 16 topic parameters per publish");
        return RT_E_INVAL;
    }
    return 0;
}

/* idempotency_key, run_id and fn_id (optional, printable UTF-8, ≤ 255 bytes;
 * "" when absent). 0, or RT_E_INVAL with r filled. */
static int target_options(const char *query, rt_publish_target_t *t, rt_resp_t *r)
{
    int il = rt_query_param(query, "idempotency_key", 0, t->idem_key, sizeof(t->idem_key));
    if ((il < 0 && il != RT_E_ABSENT) ||
        (il >= 0 && rt_name_validate((rt_slice_t){t->idem_key, (size_t)il}, 255) != 0)) {
        rt_resp_error(r, 400, "bad_request",
                      "idempotency_key must be 1-255 bytes of printable UTF-8");
        return RT_E_INVAL;
    }
    if (il < 0)
        t->idem_key[0] = 0;
    const char *opt[3] = {"run_id", "fn_id", "fn_slug"};
    char *dst[3] = {t->run_id, t->fn_id, t->fn_slug};
    for (int i = 0; i < 3; i++) {
        int n = rt_query_param(query, opt[i], 0, dst[i], 256);
        if ((n < 0 && n != RT_E_ABSENT) ||
            (n > 0 && rt_name_validate((rt_slice_t){dst[i], (size_t)n}, 255) != 0)) {
            rt_resp_error(r, 400, "bad_request", "%s must be at most 255 bytes of printable UTF-8",
                          opt[i]);
            return RT_E_INVAL;
        }
        if (n < 0)
            dst[i][0] = 0;
    }
    return 0;
}

/* metadata (optional): JSON, kept as its bytes like a body (Inngest passes
 * it through as a raw message), at most RT_API_MAX_METADATA bytes and
 * RTGW_MAX_JSON_DEPTH deep. 0, or RT_E_INVAL with r filled. */
static int target_metadata(rt_api_t *api, const char *query, rt_publish_target_t *t, rt_resp_t *r)
{
    char raw[RT_API_MAX_METADATA];
    int n = rt_query_param(query, "metadata", 0, raw, sizeof(raw));
    if (n == RT_E_ABSENT || n == 0)
        return 0;
    if (n < 0) {
        rt_resp_error(r, 400, "bad_metadata",
                      "metadata is badly %%-encoded or longer than %d bytes",
                      RT_API_MAX_METADATA - 1);
        return RT_E_INVAL;
    }
    long m = rt_json_compact(raw, (size_t)n, (size_t)api->cfg->max_json_depth, t->metadata, NULL);
    if (m < 0) {
        rt_resp_error(r, 400, "bad_metadata",
                      m == RT_E_LIMIT ? "metadata nests deeper than RTGW_MAX_JSON_DEPTH"
                                      : "metadata is not JSON (it is forwarded as JSON, as is)");
        return RT_E_INVAL;
    }
    t->metadata_len = (size_t)m;
    return 0;
}

/* Authorise t's publisher (filling t->env_id): a signing key, or a token
 * with publish:true that grants every topic of t. 0, or RT_E_DENIED with r
 * filled. */
static int target_authorise(rt_api_t *api, const char *authorization, int64_t now,
                            rt_publish_target_t *t, rt_resp_t *r)
{
    rt_claims_t claims;
    bool by_token;
    int rc = rt__api_auth_publisher(api, authorization, now, &claims, &by_token, t->env_id, r);
    if (rc || !by_token)
        return rc;
    bool ok = claims.publish;
    for (int i = 0; ok && i < t->ntopics; i++)
        ok = rt_claims_grants(&claims, rt_slice_cstr(t->channel), rt_slice_cstr(t->topics[i]));
    rt_claims_clear(&claims);
    if (!ok) {
        rt_resp_error(r, 403, "topic_not_allowed",
                      "the token does not allow publishing to this channel and topic");
        return RT_E_DENIED;
    }
    return 0;
}

int rt_api_publish_prepare(rt_api_t *api, const char *authorization, const char *query, int64_t now,
                           rt_publish_target_t *t, rt_resp_t *r)
{
    memset(t, 0, sizeof(*t));
    if (target_names(query, api->topts.max_name_bytes, t, r) || target_options(query, t, r) ||
        target_metadata(api, query, t, r))
        return RT_E_INVAL;
    return target_authorise(api, authorization, now, t, r);
}

int rt_api_tee_prepare(rt_api_t *api, const char *authorization, const char *query, int64_t now,
                       rt_publish_target_t *t, rt_resp_t *r)
{
    memset(t, 0, sizeof(*t));
    if (name_param(query, "channel", 0, t->channel, sizeof(t->channel), api->topts.max_name_bytes,
                   true, r))
        return RT_E_INVAL;
    snprintf(t->topics[0], sizeof(t->topics[0]), "%s", RT_TEE_TOPIC);
    t->ntopics = 1;
    return target_authorise(api, authorization, now, t, r);
}

/* ---- publishing ---- */

int rt__api_publish_event(rt_api_t *api, const rt_event_t *ev, rt_slice_t idem_key, int64_t now_ms,
                          rt_pos_t *pos, size_t *delivered, bool *dup)
{
    if (api->bus)
        return rt_bus_publish(api->bus, ev, idem_key, now_ms, pos, delivered, dup);
    int rc = rt_hub_publish_idem(api->hub, ev, idem_key, now_ms, pos, delivered, dup);
    /* the hub: -1 out of memory, -2 (RT_E_LIMIT) too many live keys */
    return rc == RT_E_LIMIT ? RT_E_LIMIT : rc < 0 ? RT_E_NOMEM : 0;
}

/* Normalise a body to one line of JSON: JSON as the bytes it came as (only
 * the whitespace between tokens dropped, see jsonraw.h), anything else as a
 * JSON string. Returns malloc'd text or NULL (invalid UTF-8 / OOM). */
static char *body_to_json(rt_api_t *api, const char *body, size_t len, size_t *out_len,
                          bool *not_utf8)
{
    *not_utf8 = false;
    if (len) {
        char *raw = malloc(len);
        if (!raw)
            return NULL;
        long n = rt_json_compact(body, len, (size_t)api->cfg->max_json_depth, raw, NULL);
        if (n > 0) {
            *out_len = (size_t)n;
            return raw;
        }
        free(raw);
    }
    json_t *v = json_stringn(body, len);
    if (!v) {
        *not_utf8 = true;
        return NULL;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    if (s)
        *out_len = strlen(s);
    return s;
}

/* Fill r with the refusal of a failed publish (rc from rt__api_publish_event). */
static void publish_refusal(rt_resp_t *r, int rc)
{
    if (rc == RT_E_LIMIT)
        rt_resp_error(r, 429, "too_many_idempotency_keys",
                      "this channel holds too many live idempotency keys; retry later");
    else if (rc == RT_E_UNAVAILABLE)
        rt_resp_error(r, 503, "bus_unavailable",
                      "the bus (Redis) is unavailable; nothing was published (retry, with "
                      "the same Idempotency-Key)");
    else
        rt_resp_error(r, 500, "internal_error", "out of memory while publishing");
}

/* The event of t's i-th topic carrying data (all borrowed). Chunks carry no
 * metadata (Inngest's chunk has none). */
static rt_event_t target_event(const rt_publish_target_t *t, int i, const char *kind,
                               rt_slice_t data, int64_t now_ms)
{
    bool chunk = strcmp(kind, "chunk") == 0;
    return (rt_event_t){
        .kind = kind,
        .channel = rt_slice_cstr(t->channel),
        .topic = rt_slice_cstr(t->topics[i]),
        .data = data,
        .metadata = {t->metadata, chunk ? 0 : t->metadata_len},
        .created_at_ms = now_ms,
        .env_id = rt_slice_cstr(t->env_id),
        .run_id = rt_slice_cstr(t->run_id),
        .fn_id = rt_slice_cstr(t->fn_id),
        .fn_slug = rt_slice_cstr(t->fn_slug),
    };
}

void rt_api_publish_body(rt_api_t *api, const rt_publish_target_t *t, const char *body, size_t len,
                         int64_t now_ms, rt_resp_t *r)
{
    int64_t t0 = rt_clock_mono_us();
    atomic_fetch_add(&api->metrics->publish_requests, 1);
    size_t jlen = 0;
    bool not_utf8;
    if (rt__api_json_too_deep(api, body, len, 0, r)) {
        atomic_fetch_add(&api->metrics->publish_errors, 1);
        return;
    }
    char *json = body_to_json(api, body, len, &jlen, &not_utf8);
    if (!json) {
        atomic_fetch_add(&api->metrics->publish_errors, 1);
        if (not_utf8)
            rt_resp_error(r, 400, "bad_body", "body is neither JSON nor valid UTF-8 text");
        else
            rt_resp_error(r, 500, "internal_error", "out of memory");
        return;
    }
    json_t *ids = json_array();
    size_t delivered = 0;
    int duplicates = 0;
    for (int i = 0; i < t->ntopics; i++) {
        rt_event_t ev = target_event(t, i, "data", (rt_slice_t){json, jlen}, now_ms);
        rt_pos_t pos;
        size_t d = 0;
        bool dup = false;
        int rc =
            rt__api_publish_event(api, &ev, rt_slice_cstr(t->idem_key), now_ms, &pos, &d, &dup);
        if (rc != 0) {
            free(json);
            json_decref(ids);
            atomic_fetch_add(&api->metrics->publish_errors, 1);
            publish_refusal(r, rc);
            return;
        }
        duplicates += dup;
        delivered += d;
        char ps[RT_POS_MAX];
        rt_pos_format(pos, ps, sizeof(ps));
        json_array_append_new(ids, json_string(ps));
    }
    free(json);
    rt_metrics_publish_latency(api->metrics, (uint64_t)(rt_clock_mono_us() - t0));
    json_t *o = json_pack("{s:b,s:o,s:I}", "ok", 1, "ids", ids, "delivered", (json_int_t)delivered);
    if (duplicates)
        json_object_set_new(o, "duplicate", json_true());
    rt__api_resp_json(r, 200, o);
}

int rt_api_publish_tee_chunk(rt_api_t *api, const rt_publish_target_t *t, const char *text,
                             size_t len, int64_t now_ms)
{
    json_t *v = json_stringn(text, len);
    if (!v)
        return RT_E_INVAL;
    char *json = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    if (!json)
        return RT_E_NOMEM;
    rt_event_t ev = target_event(t, 0, RT_EVENT_KIND_RAW, rt_slice_cstr(json), now_ms);
    int rc = rt__api_publish_event(api, &ev, (rt_slice_t){"", 0}, now_ms, NULL, NULL, NULL);
    free(json);
    return rc;
}

int rt_api_publish_stream_event(rt_api_t *api, const rt_publish_target_t *t, const char *kind,
                                const char *stream_id, const char *text, size_t len, int64_t now_ms)
{
    json_t *v = json_stringn(text, len);
    if (!v)
        return RT_E_INVAL; /* not UTF-8 (or out of memory) */
    char *json = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    if (!json)
        return RT_E_NOMEM;
    int rc = 0;
    for (int i = 0; i < t->ntopics && rc == 0; i++) {
        rt_event_t ev = target_event(t, i, kind, rt_slice_cstr(json), now_ms);
        ev.stream_id = rt_slice_cstr(stream_id);
        ev.ext_only = true;
        rc = rt__api_publish_event(api, &ev, (rt_slice_t){"", 0}, now_ms, NULL, NULL, NULL);
    }
    free(json);
    return rc;
}
