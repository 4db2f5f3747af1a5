/*
 * api.c — token mint and publish, independent of the HTTP server.
 * See docs/inngest-wire-notes.md for the client behaviour this matches:
 * non-2xx → thrown error, 401/403 → one retry with the fallback key, publish
 * bodies labelled application/json that are not JSON are embedded as strings.
 */
#include "api.h"
#include "log.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void rt_resp_clear(rt_resp_t *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

static void resp_json(rt_resp_t *r, int status, json_t *obj)
{
    r->status = status;
    r->body = json_dumps(obj, JSON_COMPACT);
    r->len = r->body ? strlen(r->body) : 0;
    json_decref(obj);
}

void rt_resp_error(rt_resp_t *r, int status, const char *name, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:s,s:s}", "error", name, "message", msg);
    if (!o) {
        /* The message quotes input that is not UTF-8 (e.g. jansson's error
         * text for a bad \u escape, or a cut multi-byte character): keep the
         * ASCII so the refusal still has its JSON body. */
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        o = json_pack("{s:s,s:s}", "error", name, "message", msg);
    }
    resp_json(r, status, o);
}

rt_slice_t rt_api_bearer(const char *h)
{
    rt_slice_t s = {"", 0};
    if (!h)
        return s;
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "Bearer", 6) != 0)
        return s;
    h += 6;
    if (*h && *h != ' ')
        return s;
    while (*h == ' ')
        h++;
    size_t n = strlen(h);
    while (n && h[n - 1] == ' ')
        n--;
    s.base = h;
    s.len = n;
    return s;
}

int rt_api_check_key(rt_api_t *api, const char *authorization, rt_resp_t *r)
{
    rt_slice_t cred = rt_api_bearer(authorization);
    if (cred.len == 0) {
        if (api->dev)
            return 0;
        atomic_fetch_add(&api->metrics->auth_failures, 1);
        rt_resp_error(r, 401, "unauthorized",
                      "missing Authorization: Bearer <signing key> (plain or hashed)");
        return -1;
    }
    if (rt_keyring_check_bearer(api->ring, cred, NULL) == 0)
        return 0;
    atomic_fetch_add(&api->metrics->auth_failures, 1);
    rt_resp_error(r, 401, "unauthorized",
                  "the Bearer credential is not this gateway's signing key (plain or hashed, "
                  "current or fallback)");
    return -1;
}

/* ---- token ---- */

static int topic_from_json(json_t *t, rt_topic_ref_t *ref, size_t idx, rt_resp_t *r, size_t maxn)
{
    if (!json_is_object(t)) {
        rt_resp_error(r, 400, "bad_request", "topics[%zu] is not an object {channel,name,kind}",
                      idx);
        return -1;
    }
    json_t *c = json_object_get(t, "channel"), *n = json_object_get(t, "name"),
           *k = json_object_get(t, "kind");
    if (!json_is_string(c) || !json_is_string(n) || (k && !json_is_string(k))) {
        rt_resp_error(r, 400, "bad_request",
                      "topics[%zu] needs string fields channel and name (and optional kind)", idx);
        return -1;
    }
    const char *fields[2] = {"channel", "name"};
    json_t *vals[2] = {c, n};
    for (int i = 0; i < 2; i++) {
        int rc = rt_name_validate(
            (rt_slice_t){json_string_value(vals[i]), json_string_length(vals[i])}, maxn);
        if (rc) {
            rt_resp_error(r, 400, rt_tok_errname(rc), "topics[%zu].%s: %s", idx, fields[i],
                          rt_tok_strerror(rc));
            return -1;
        }
    }
    ref->channel = json_string_value(c);
    ref->name = json_string_value(n);
    ref->kind = k ? json_string_value(k) : "run";
    return 0;
}

void rt_api_token(rt_api_t *api, const char *authorization, const char *body, size_t len,
                  int64_t now, rt_resp_t *r)
{
    if (rt_api_check_key(api, authorization, r) != 0)
        return;
    json_error_t err;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        rt_resp_error(r, 400, "bad_json", "body is not valid JSON: %s (line %d, column %d)",
                      err.text, err.line, err.column);
        return;
    }
    /* Inngest form: a bare array of topics. rtgw form: {"topics":[…],"ttl":s,"publish":b,"sub":s}.
     */
    json_t *topics = root;
    int64_t ttl = 0;
    bool publish = false;
    const char *sub = NULL;
    if (json_is_object(root)) {
        topics = json_object_get(root, "topics");
        json_t *t = json_object_get(root, "ttl"), *p = json_object_get(root, "publish"),
               *s = json_object_get(root, "sub");
        if ((t && !json_is_integer(t)) || (p && !json_is_boolean(p)) || (s && !json_is_string(s))) {
            rt_resp_error(r, 400, "bad_request",
                          "ttl must be an integer, publish a boolean, sub a string");
            goto out;
        }
        ttl = t ? json_integer_value(t) : 0;
        publish = p && json_is_true(p);
        sub = s ? json_string_value(s) : NULL;
        if (t && ttl <= 0) {
            rt_resp_error(r, 400, "bad_request", "ttl must be a positive number of seconds");
            goto out;
        }
    }
    if (!json_is_array(topics) || json_array_size(topics) == 0) {
        rt_resp_error(r, 400, "bad_request",
                      "body must be a non-empty array of {\"channel\",\"name\",\"kind\"} topics");
        goto out;
    }
    size_t n = json_array_size(topics);
    if (n > api->topts.max_topics) {
        rt_resp_error(r, 400, "token_too_many_topics",
                      "%zu topics requested; the limit is %zu (RTGW_MAX_TOPICS)", n,
                      api->topts.max_topics);
        goto out;
    }
    rt_topic_ref_t *refs = calloc(n, sizeof(*refs));
    if (!refs) {
        rt_resp_error(r, 500, "internal_error", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (topic_from_json(json_array_get(topics, i), &refs[i], i, r, api->topts.max_name_bytes) !=
            0) {
            free(refs);
            goto out;
        }
    }
    rt_mint_req_t req = {.sub = sub, .topics = refs, .ntopics = n, .ttl = ttl, .publish = publish};
    char *jwt = NULL;
    size_t jl = 0;
    int rc = rt_token_mint(api->ring, &api->topts, &req, now, &jwt, &jl);
    free(refs);
    if (rc) {
        int st = rc == RT_TOK_ENOMEM ? 500 : 400;
        rt_resp_error(r, st, rt_tok_errname(rc), "%s", rt_tok_strerror(rc));
        goto out;
    }
    atomic_fetch_add(&api->metrics->tokens_minted, 1);
    int64_t eff_ttl = ttl ? ttl : api->topts.ttl;
    resp_json(r, 201,
              json_pack("{s:s,s:I}", "jwt", jwt, "expires_at", (json_int_t)(now + eff_ttl)));
    free(jwt);
out:
    json_decref(root);
}

/* ---- query ---- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int rt_query_get(const char *query, const char *name, int idx, char *out, size_t cap)
{
    if (!query)
        return -1;
    size_t nl = strlen(name);
    const char *p = query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', plen);
        size_t klen = eq ? (size_t)(eq - p) : plen;
        if (klen == nl && memcmp(p, name, nl) == 0 && idx-- == 0) {
            size_t o = 0;
            const char *v = eq ? eq + 1 : p + plen, *end = p + plen;
            while (v < end) {
                int c = (unsigned char)*v;
                if (c == '%') {
                    if (end - v < 3 || hexval(v[1]) < 0 || hexval(v[2]) < 0)
                        return -2;
                    c = hexval(v[1]) * 16 + hexval(v[2]);
                    v += 3;
                } else {
                    if (c == '+')
                        c = ' ';
                    v++;
                }
                if (o + 1 >= cap)
                    return -2;
                out[o++] = (char)c;
            }
            out[o] = 0;
            return (int)o;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return -1;
}

/* ---- publish ---- */

static int name_param(const char *query, const char *pname, int idx, char *out, size_t cap,
                      size_t maxn, bool required, rt_resp_t *r)
{
    int n = rt_query_get(query, pname, idx, out, cap);
    if (n == -1) {
        out[0] = 0;
        if (required)
            rt_resp_error(r, 400, "bad_request", "missing query parameter '%s'", pname);
        return required ? -1 : 0;
    }
    if (n == -2) {
        rt_resp_error(r, 400, "name_too_long", "query parameter '%s' is too long or badly encoded",
                      pname);
        return -1;
    }
    int rc = rt_name_validate((rt_slice_t){out, (size_t)n}, maxn);
    if (rc) {
        rt_resp_error(r, 400, rt_tok_errname(rc), "%s: %s", pname, rt_tok_strerror(rc));
        return -1;
    }
    if (strlen(out) != (size_t)n) {
        rt_resp_error(r, 400, "name_bad_chars", "%s: contains a NUL byte", pname);
        return -1;
    }
    return 0;
}

int rt_api_publish_prepare(rt_api_t *api, const char *authorization, const char *query, int64_t now,
                           rt_publish_target_t *t, rt_resp_t *r)
{
    memset(t, 0, sizeof(*t));
    size_t maxn = api->topts.max_name_bytes;
    if (name_param(query, "channel", 0, t->channel, sizeof(t->channel), maxn, true, r))
        return -1;
    for (int i = 0; i < 16; i++) {
        int rc = name_param(query, "topic", i, t->topics[i], sizeof(t->topics[i]), maxn, i == 0, r);
        if (rc)
            return -1;
        if (!t->topics[i][0])
            break;
        if (strcmp(t->topics[i], "*") == 0) {
            rt_resp_error(r, 400, "bad_request",
                          "topic '*' is a subscription wildcard; publish to a named topic");
            return -1;
        }
        t->ntopics++;
    }
    if (rt_query_get(query, "topic", 16, t->run_id, sizeof(t->run_id)) != -1) {
        rt_resp_error(r, 400, "bad_request", "at most 16 topic parameters per publish");
        return -1;
    }
    int il = rt_query_get(query, "idempotency_key", 0, t->idem_key, sizeof(t->idem_key));
    if (il == -2 ||
        (il >= 0 && rt_name_validate((rt_slice_t){t->idem_key, (size_t)il}, 255) != 0)) {
        rt_resp_error(r, 400, "bad_request",
                      "idempotency_key must be 1-255 bytes of printable UTF-8");
        return -1;
    }
    if (il < 0)
        t->idem_key[0] = 0;
    const char *opt[2] = {"run_id", "fn_id"};
    char *dst[2] = {t->run_id, t->fn_id};
    for (int i = 0; i < 2; i++) {
        int n = rt_query_get(query, opt[i], 0, dst[i], 256);
        if (n == -2 || (n > 0 && rt_name_validate((rt_slice_t){dst[i], (size_t)n}, 255) != 0)) {
            rt_resp_error(r, 400, "bad_request", "%s must be at most 255 bytes of printable UTF-8",
                          opt[i]);
            return -1;
        }
        if (n < 0)
            dst[i][0] = 0;
    }

    /* Authorization: a signing key, or a token that may publish here. */
    rt_slice_t cred = rt_api_bearer(authorization);
    if (cred.len == 0 || strncmp(cred.base, "signkey-", 8) == 0)
        return rt_api_check_key(api, authorization, r);
    rt_claims_t claims;
    int rc = rt_token_verify(api->ring, &api->topts, cred, now, &claims);
    if (rc) {
        rt_metrics_token_refusal(api->metrics, rc);
        atomic_fetch_add(&api->metrics->auth_failures, 1);
        rt_resp_error(r, 401, rt_tok_errname(rc), "%s", rt_tok_strerror(rc));
        return -1;
    }
    bool ok = claims.publish;
    for (int i = 0; ok && i < t->ntopics; i++)
        ok = rt_claims_grants(&claims, rt_slice_cstr(t->channel), rt_slice_cstr(t->topics[i]));
    rt_claims_clear(&claims);
    if (!ok) {
        rt_resp_error(r, 403, "topic_not_allowed",
                      "the token does not allow publishing to this channel and topic");
        return -1;
    }
    return 0;
}

/* Publish through the bus (or straight to the hub when there is none).
 * 0 or an rt_bus_err_t. */
static int api_publish(rt_api_t *api, const rt_event_t *ev, rt_slice_t idem_key, int64_t now_ms,
                       rt_pos_t *pos, size_t *delivered, bool *dup)
{
    if (api->bus)
        return rt_bus_publish(api->bus, ev, idem_key, now_ms, pos, delivered, dup);
    int rc = rt_hub_publish_idem(api->hub, ev, idem_key, now_ms, pos, delivered, dup);
    return rc == RT_E_LIMIT ? RT_E_LIMIT : rc < 0 ? RT_E_NOMEM : 0;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Normalise a body to compact JSON text: JSON as itself, anything else as a
 * JSON string. Returns malloc'd text or NULL (invalid UTF-8 / OOM). */
static char *body_to_json(const char *body, size_t len, size_t *out_len, bool *not_utf8)
{
    json_error_t err;
    json_t *v = len ? json_loadb(body, len, JSON_DECODE_ANY, &err) : NULL;
    *not_utf8 = false;
    if (!v) {
        v = json_stringn(body, len);
        if (!v) {
            *not_utf8 = true;
            return NULL;
        }
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    if (s)
        *out_len = strlen(s);
    return s;
}

void rt_api_publish_body(rt_api_t *api, const rt_publish_target_t *t, const char *body, size_t len,
                         int64_t now_ms, rt_resp_t *r)
{
    int64_t t0 = mono_us();
    atomic_fetch_add(&api->metrics->publish_requests, 1);
    size_t jlen = 0;
    bool not_utf8;
    char *json = body_to_json(body, len, &jlen, &not_utf8);
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
        rt_event_t ev = {
            .kind = "data",
            .channel = rt_slice_cstr(t->channel),
            .topic = rt_slice_cstr(t->topics[i]),
            .data = {json, jlen},
            .created_at_ms = now_ms,
            .run_id = rt_slice_cstr(t->run_id),
            .fn_id = rt_slice_cstr(t->fn_id),
        };
        rt_pos_t pos;
        size_t d = 0;
        bool dup = false;
        int rc = api_publish(api, &ev, rt_slice_cstr(t->idem_key), now_ms, &pos, &d, &dup);
        if (rc != 0) {
            free(json);
            json_decref(ids);
            atomic_fetch_add(&api->metrics->publish_errors, 1);
            if (rc == RT_E_LIMIT)
                rt_resp_error(r, 429, "too_many_idempotency_keys",
                              "this channel holds too many live idempotency keys; retry later");
            else if (rc == RT_E_UNAVAILABLE)
                rt_resp_error(r, 503, "bus_unavailable",
                              "the bus (Redis) is unavailable; nothing was published (retry, with "
                              "the same Idempotency-Key)");
            else
                rt_resp_error(r, 500, "internal_error", "out of memory while publishing");
            return;
        }
        duplicates += dup;
        delivered += d;
        char ps[RT_POS_MAX];
        rt_pos_format(pos, ps, sizeof(ps));
        json_array_append_new(ids, json_string(ps));
    }
    free(json);
    rt_metrics_publish_latency(api->metrics, (uint64_t)(mono_us() - t0));
    json_t *o = json_pack("{s:b,s:o,s:I}", "ok", 1, "ids", ids, "delivered", (json_int_t)delivered);
    if (duplicates)
        json_object_set_new(o, "duplicate", json_true());
    resp_json(r, 200, o);
}

int rt_api_publish_stream_event(rt_api_t *api, const rt_publish_target_t *t, const char *kind,
                                const char *stream_id, const char *text, size_t len, int64_t now_ms)
{
    json_t *v = json_stringn(text, len);
    if (!v)
        return -1;
    char *json = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    if (!json)
        return -1;
    int rc = 0;
    for (int i = 0; i < t->ntopics && rc == 0; i++) {
        rt_event_t ev = {
            .kind = kind,
            .channel = rt_slice_cstr(t->channel),
            .topic = rt_slice_cstr(t->topics[i]),
            .data = {json, strlen(json)},
            .created_at_ms = now_ms,
            .run_id = rt_slice_cstr(t->run_id),
            .fn_id = rt_slice_cstr(t->fn_id),
            .stream_id = rt_slice_cstr(stream_id),
            .ext_only = true,
        };
        rc = api_publish(api, &ev, (rt_slice_t){"", 0}, now_ms, NULL, NULL, NULL);
    }
    free(json);
    return rc;
}

/* ---- batch ---- */

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

void rt_api_publish_batch(rt_api_t *api, const char *authorization, const char *body, size_t len,
                          int64_t now_ms, rt_resp_t *r)
{
    /* Authorise once: a signing key may publish anywhere; a token only to its
     * grants, checked per event. */
    rt_slice_t cred = rt_api_bearer(authorization);
    rt_claims_t claims = {0};
    bool by_token = false;
    if (cred.len == 0 || strncmp(cred.base, "signkey-", 8) == 0) {
        if (rt_api_check_key(api, authorization, r) != 0)
            return;
    } else {
        int rc = rt_token_verify(api->ring, &api->topts, cred, now_ms / 1000, &claims);
        if (rc) {
            rt_metrics_token_refusal(api->metrics, rc);
            atomic_fetch_add(&api->metrics->auth_failures, 1);
            rt_resp_error(r, 401, rt_tok_errname(rc), "%s", rt_tok_strerror(rc));
            return;
        }
        if (!claims.publish) {
            rt_claims_clear(&claims);
            rt_resp_error(r, 403, "topic_not_allowed", "the token does not allow publishing");
            return;
        }
        by_token = true;
    }
    json_error_t err;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    if (!root || !json_is_array(root) || json_array_size(root) == 0) {
        if (root)
            rt_resp_error(r, 400, "bad_request", "body must be a non-empty array of events");
        else
            rt_resp_error(r, 400, "bad_json", "body is not valid JSON: %s (line %d, column %d)",
                          err.text, err.line, err.column);
        json_decref(root);
        rt_claims_clear(&claims);
        return;
    }
    size_t n = json_array_size(root);
    if (n > (size_t)api->cfg->max_batch) {
        rt_resp_error(r, 413, "batch_too_large", "%zu events; the limit is %lld (RTGW_MAX_BATCH)",
                      n, (long long)api->cfg->max_batch);
        json_decref(root);
        rt_claims_clear(&claims);
        return;
    }
    json_t *results = json_array();
    size_t ok = 0, failed = 0;
    size_t maxn = api->topts.max_name_bytes;
    for (size_t i = 0; i < n; i++) {
        json_t *ev = json_array_get(root, i), *res = NULL;
        atomic_fetch_add(&api->metrics->publish_requests, 1);
        json_t *c = json_is_object(ev) ? json_object_get(ev, "channel") : NULL;
        json_t *t = json_is_object(ev) ? json_object_get(ev, "topic") : NULL;
        int rc1 =
            json_is_string(c)
                ? rt_name_validate((rt_slice_t){json_string_value(c), json_string_length(c)}, maxn)
                : RT_TOK_ECLAIM_MISSING;
        int rc2 =
            json_is_string(t)
                ? rt_name_validate((rt_slice_t){json_string_value(t), json_string_length(t)}, maxn)
                : RT_TOK_ECLAIM_MISSING;
        int bad = 0;
        const char *run_id = json_is_object(ev) ? opt_string(ev, "run_id", 255, &bad) : "";
        const char *fn_id = json_is_object(ev) ? opt_string(ev, "fn_id", 255, &bad) : "";
        const char *ikey = json_is_object(ev) ? opt_string(ev, "idempotency_key", 255, &bad) : "";
        if (!json_is_object(ev)) {
            res = batch_error("bad_request", "event %zu is not an object", i);
        } else if (rc1 || rc2) {
            int rc = rc1 ? rc1 : rc2;
            res = rc == RT_TOK_ECLAIM_MISSING
                      ? batch_error("bad_request",
                                    "event %zu needs string fields channel and topic", i)
                      : batch_error(rt_tok_errname(rc), "event %zu %s: %s", i,
                                    rc1 ? "channel" : "topic", rt_tok_strerror(rc));
        } else if (strcmp(json_string_value(t), "*") == 0) {
            res = batch_error("bad_request", "event %zu: topic '*' is a subscription wildcard", i);
        } else if (bad) {
            res = batch_error("bad_request",
                              "event %zu: run_id, fn_id and idempotency_key must be 1-255 bytes of "
                              "printable UTF-8",
                              i);
        } else if (by_token &&
                   !rt_claims_grants(&claims,
                                     (rt_slice_t){json_string_value(c), json_string_length(c)},
                                     (rt_slice_t){json_string_value(t), json_string_length(t)})) {
            res = batch_error("topic_not_allowed",
                              "event %zu: the token does not allow this channel and topic", i);
        } else {
            json_t *data = json_object_get(ev, "data");
            char *dj = json_dumps(data ? data : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
            rt_event_t e = {
                .kind = "data",
                .channel = {json_string_value(c), json_string_length(c)},
                .topic = {json_string_value(t), json_string_length(t)},
                .data = {dj ? dj : "null", dj ? strlen(dj) : 4},
                .created_at_ms = now_ms,
                .run_id = rt_slice_cstr(run_id),
                .fn_id = rt_slice_cstr(fn_id),
            };
            rt_pos_t pos;
            size_t d = 0;
            bool dup = false;
            int rc = dj ? api_publish(api, &e, rt_slice_cstr(ikey), now_ms, &pos, &d, &dup)
                        : RT_E_NOMEM;
            free(dj);
            if (rc == 0) {
                char ps[RT_POS_MAX];
                rt_pos_format(pos, ps, sizeof(ps));
                res = json_pack("{s:b,s:s,s:I}", "ok", 1, "id", ps, "delivered", (json_int_t)d);
                if (dup)
                    json_object_set_new(res, "duplicate", json_true());
            } else if (rc == RT_E_LIMIT) {
                res = batch_error("too_many_idempotency_keys",
                                  "event %zu: too many live idempotency keys", i);
            } else if (rc == RT_E_UNAVAILABLE) {
                res = batch_error("bus_unavailable",
                                  "event %zu: the bus (Redis) is unavailable; retry", i);
            } else {
                res = batch_error("internal_error", "event %zu: out of memory", i);
            }
        }
        if (json_is_true(json_object_get(res, "ok")))
            ok++;
        else {
            failed++;
            atomic_fetch_add(&api->metrics->publish_errors, 1);
        }
        json_array_append_new(results, res);
    }
    json_decref(root);
    rt_claims_clear(&claims);
    resp_json(r, 200,
              json_pack("{s:o,s:I,s:I}", "results", results, "published", (json_int_t)ok, "failed",
                        (json_int_t)failed));
}
