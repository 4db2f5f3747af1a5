/*
 * batch.c — POST /v1/realtime/publish/batch: body [{"channel","topic","data",
 * "run_id"?,"fn_id"?,"fn_slug"?,"idempotency_key"?}, …]. The request is authorised once
 * (a signing key may publish anywhere; a token only to its grants, checked
 * per event); each event is then validated and published on its own, and
 * gets its own result. Any request thread; no locks of its own; publishing
 * blocks on the bus and must run with no hub lock held. The token's claims
 * are cleared here; the response is the caller's (rt_resp_clear).
 */
#include "api_internal.h"
#include "jsonraw.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Who may publish what: by_token false means anywhere (a signing key). */
typedef struct {
    rt_claims_t claims;
    bool by_token;
    char env[65]; /* the publisher's environment, each event's env_id */
} batch_auth_t;

/* One event's fields (borrowed from the body), once they are valid. */
typedef struct {
    json_t *channel, *topic;
    const char *run_id, *fn_id, *fn_slug, *ikey;
} batch_event_t;

static json_t *batch_error(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static json_t *batch_error(const char *name, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return json_pack("{s:b,s:s,s:s}", "ok", 0, "error", name, "message", msg);
}

static const char *opt_string(json_t *ev, const char *field, size_t max, int *bad)
{
    json_t *v = json_object_get(ev, field);
    if (!v)
        return "";
    if (!json_is_string(v) ||
        rt_name_validate((rt_slice_t){json_string_value(v), json_string_length(v)}, max) != 0) {
        *bad = 1;
        return "";
    }
    return json_string_value(v);
}

static rt_slice_t json_slice(json_t *s)
{
    return (rt_slice_t){json_string_value(s), json_string_length(s)};
}

/* rt_name_validate of a string field, or RT_TOK_ECLAIM_MISSING if it is not one. */
static int name_check(json_t *v, size_t maxn)
{
    return json_is_string(v) ? rt_name_validate(json_slice(v), maxn) : RT_TOK_ECLAIM_MISSING;
}

/* Event i's fields into *e; NULL if valid and allowed, else its error result. */
static json_t *event_check(json_t *ev, size_t i, size_t maxn, const batch_auth_t *a,
                           batch_event_t *e)
{
    if (!json_is_object(ev))
        return batch_error("bad_request", "event %zu is not an object", i);
    e->channel = json_object_get(ev, "channel");
    e->topic = json_object_get(ev, "topic");
    int rc1 = name_check(e->channel, maxn), rc2 = name_check(e->topic, maxn);
    int bad = 0;
    e->run_id = opt_string(ev, "run_id", 255, &bad);
    e->fn_id = opt_string(ev, "fn_id", 255, &bad);
    e->fn_slug = opt_string(ev, "fn_slug", 255, &bad);
    e->ikey = opt_string(ev, "idempotency_key", 255, &bad);
    if (rc1 || rc2) {
        int rc = rc1 ? rc1 : rc2;
        if (rc == RT_TOK_ECLAIM_MISSING)
            return batch_error("bad_request", "event %zu needs string fields channel and topic", i);
        return batch_error(rt_tok_errname(rc), "event %zu %s: %s", i, rc1 ? "channel" : "topic",
                           rt_tok_strerror(rc));
    }
    if (strcmp(json_string_value(e->topic), "*") == 0)
        return batch_error("bad_request", "event %zu: topic '*' is a subscription wildcard", i);
    if (bad)
        return batch_error(
            "bad_request",
            "event %zu: run_id, fn_id, fn_slug and idempotency_key must be 1-255 bytes of "
            "printable UTF-8",
            i);
    if (a->by_token && !rt_claims_grants(&a->claims, json_slice(e->channel), json_slice(e->topic)))
        return batch_error("topic_not_allowed",
                           "event %zu: the token does not allow this channel and topic", i);
    return NULL;
}

/* Publish event i (valid and allowed) with its data (the bytes it came as;
 * absent: null); its result. */
static json_t *event_publish(rt_api_t *api, rt_slice_t data, size_t i, const batch_event_t *e,
                             const char *env, int64_t now_ms)
{
    rt_event_t pe = {
        .kind = "data",
        .channel = json_slice(e->channel),
        .topic = json_slice(e->topic),
        .data = data.len ? data : (rt_slice_t){"null", 4},
        .created_at_ms = now_ms,
        .env_id = rt_slice_cstr(env),
        .run_id = rt_slice_cstr(e->run_id),
        .fn_id = rt_slice_cstr(e->fn_id),
        .fn_slug = rt_slice_cstr(e->fn_slug),
    };
    rt_pos_t pos;
    size_t d = 0;
    bool dup = false;
    int rc = rt__api_publish_event(api, &pe, rt_slice_cstr(e->ikey), now_ms, &pos, &d, &dup);
    if (rc == RT_E_LIMIT)
        return batch_error("too_many_idempotency_keys", "event %zu: too many live idempotency keys",
                           i);
    if (rc == RT_E_UNAVAILABLE)
        return batch_error("bus_unavailable", "event %zu: the bus (Redis) is unavailable; retry",
                           i);
    if (rc != 0)
        return batch_error("internal_error", "event %zu: out of memory", i);
    char ps[RT_POS_MAX];
    rt_pos_format(pos, ps, sizeof(ps));
    json_t *res = json_pack("{s:b,s:s,s:I}", "ok", 1, "id", ps, "delivered", (json_int_t)d);
    if (dup)
        json_object_set_new(res, "duplicate", json_true());
    return res;
}

/* Authorise the batch. 0, or RT_E_DENIED with r filled (401/403). */
static int batch_authorise(rt_api_t *api, const char *authorization, int64_t now_ms,
                           batch_auth_t *a, rt_resp_t *r)
{
    *a = (batch_auth_t){0};
    int rc = rt__api_auth_publisher(api, authorization, now_ms / 1000, &a->claims, &a->by_token,
                                    a->env, r);
    if (rc)
        return rc;
    if (a->by_token && !a->claims.publish) {
        rt_claims_clear(&a->claims);
        rt_resp_error(r, 403, "topic_not_allowed", "the token does not allow publishing");
        return RT_E_DENIED;
    }
    return 0;
}

/* The batch as jansson sees it, and each event's data as the bytes it came
 * as: jansson would rewrite numbers (0.1, 1e2), refuse integers beyond int64
 * and "\u0000", so each event's top-level "data" value is cut out of a
 * compact copy (rt_json_compact) before jansson parses the rest. */
typedef struct {
    char *compact;    /* the body without whitespace between tokens */
    char *stripped;   /* the same with each event's data value replaced by 0 */
    size_t slen;      /* length of stripped */
    rt_slice_t *data; /* data[i]: event i's data in compact (len 0: absent) */
    size_t ndata;     /* slots in data (events past the batch bound are not recorded) */
} batch_raw_t;

static void batch_raw_clear(batch_raw_t *b)
{
    free(b->compact);
    free(b->stripped);
    free(b->data);
}

/* The members of the object at c[i] (a compact text): record "data" as event
 * k's and write the object to out with that value replaced by 0. Returns the
 * offset past the object. */
static size_t strip_event(batch_raw_t *b, size_t k, size_t i, size_t m, size_t *o)
{
    const char *c = b->compact;
    size_t last = i, j = i + 1;
    while (j < m && c[j] != '}') {
        size_t kend = rt_json_value_end(c, m, j), v = kend + 1;
        size_t vend = rt_json_value_end(c, m, v);
        if (kend - j == 6 && memcmp(c + j, "\"data\"", 6) == 0) {
            if (k < b->ndata)
                b->data[k] = (rt_slice_t){c + v, vend - v};
            memcpy(b->stripped + *o, c + last, v - last);
            *o += v - last;
            b->stripped[(*o)++] = '0';
            last = vend;
        }
        j = vend < m && c[vend] == ',' ? vend + 1 : vend;
    }
    size_t end = j < m ? j + 1 : m;
    memcpy(b->stripped + *o, c + last, end - last);
    *o += end - last;
    return end;
}

/* Fill b from the body. 0, RT_E_INVAL (not JSON) or RT_E_NOMEM. */
static int batch_raw(rt_api_t *api, const char *body, size_t len, batch_raw_t *b)
{
    *b = (batch_raw_t){0};
    b->ndata = (size_t)api->cfg->max_batch + 1;
    b->compact = malloc(len + 1);
    b->stripped = malloc(len + 1);
    b->data = calloc(b->ndata, sizeof(*b->data));
    if (!b->compact || !b->stripped || !b->data)
        return RT_E_NOMEM;
    long n = rt_json_compact(body, len, (size_t)api->cfg->max_json_depth + 2, b->compact, NULL);
    if (n <= 0)
        return RT_E_INVAL;
    size_t m = (size_t)n, i = 0, o = 0, k = 0;
    const char *c = b->compact;
    if (c[0] == '[') {
        b->stripped[o++] = '[';
        for (i = 1; i < m && c[i] != ']'; k++) {
            size_t end = c[i] == '{' ? strip_event(b, k, i, m, &o) : rt_json_value_end(c, m, i);
            if (c[i] != '{') {
                memcpy(b->stripped + o, c + i, end - i);
                o += end - i;
            }
            i = end;
            if (i < m && c[i] == ',')
                b->stripped[o++] = c[i++];
        }
    }
    memcpy(b->stripped + o, c + i, m - i);
    b->slen = o + m - i;
    return 0;
}

/* The body as a non-empty array within the batch bound. NULL with r filled. */
static json_t *batch_body(rt_api_t *api, const char *body, size_t len, batch_raw_t *raw,
                          rt_resp_t *r)
{
    json_error_t err;
    /* the array and each event object nest 2 levels above an event's data */
    if (rt__api_json_too_deep(api, body, len, 2, r))
        return NULL;
    int rc = batch_raw(api, body, len, raw);
    if (rc == RT_E_NOMEM) {
        rt_resp_error(r, 500, "internal_error", "out of memory");
        return NULL;
    }
    json_t *root = rc ? NULL : json_loadb(raw->stripped, raw->slen, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        if (rc)
            rt_resp_error(r, 400, "bad_json", "body is not valid JSON");
        else
            rt_resp_error(r, 400, "bad_json", "body is not valid JSON: %s", err.text);
        return NULL;
    }
    if (!json_is_array(root) || json_array_size(root) == 0) {
        rt_resp_error(r, 400, "bad_request", "body must be a non-empty array of events");
        json_decref(root);
        return NULL;
    }
    size_t n = json_array_size(root);
    if (n > (size_t)api->cfg->max_batch) {
        rt_resp_error(r, 413, "batch_too_large", "%zu events; the limit is %lld (RTGW_MAX_BATCH)",
                      n, (long long)api->cfg->max_batch);
        json_decref(root);
        return NULL;
    }
    return root;
}

void rt_api_publish_batch(rt_api_t *api, const char *authorization, const char *body, size_t len,
                          int64_t now_ms, rt_resp_t *r)
{
    batch_auth_t a;
    if (batch_authorise(api, authorization, now_ms, &a, r) != 0)
        return;
    batch_raw_t raw = {0};
    json_t *root = batch_body(api, body, len, &raw, r);
    if (!root) {
        batch_raw_clear(&raw);
        rt_claims_clear(&a.claims);
        return;
    }
    size_t n = json_array_size(root), ok = 0, failed = 0;
    json_t *results = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *ev = json_array_get(root, i);
        atomic_fetch_add(&api->metrics->publish_requests, 1);
        batch_event_t e = {0};
        json_t *res = event_check(ev, i, api->topts.max_name_bytes, &a, &e);
        if (!res)
            res = event_publish(api, raw.data[i], i, &e, a.env, now_ms);
        if (json_is_true(json_object_get(res, "ok")))
            ok++;
        else {
            failed++;
            atomic_fetch_add(&api->metrics->publish_errors, 1);
        }
        json_array_append_new(results, res);
    }
    json_decref(root);
    batch_raw_clear(&raw);
    rt_claims_clear(&a.claims);
    rt__api_resp_json(r, 200,
                      json_pack("{s:o,s:I,s:I}", "results", results, "published", (json_int_t)ok,
                                "failed", (json_int_t)failed));
}
