/*
 * mint.c — POST /v1/realtime/token: a signing key in, a subscription token
 * out. The body is Inngest's bare array of topics, or rtgw's object form
 * {"topics":[…],"ttl":s,"publish":b,"sub":s}. Any request thread; no locks;
 * the JWT is built in a buffer freed here, and only leaves in r's body.
 * See docs/inngest-wire-notes.md for the client behaviour this matches.
 */
#include "api_internal.h"

#include <stdio.h>
#include <stdlib.h>

/* The request, borrowed from the parsed body. */
typedef struct {
    json_t *topics;
    int64_t ttl; /* 0: the configured default */
    bool publish;
    const char *sub;
} mint_args_t;

/* topics[idx] {channel, name, kind?} into *ref (strings borrowed). 0, or
 * RT_E_INVAL with r filled (400). */
static int topic_from_json(json_t *t, rt_topic_ref_t *ref, size_t idx, rt_resp_t *r, size_t maxn)
{
    if (!json_is_object(t)) {
        rt_resp_error(r, 400, "bad_request", "topics[%zu] is not an object {channel,name,kind}",
                      idx);
        return RT_E_INVAL;
    }
    json_t *c = json_object_get(t, "channel"), *n = json_object_get(t, "name"),
           *k = json_object_get(t, "kind");
    if (!json_is_string(c) || !json_is_string(n) || (k && !json_is_string(k))) {
        rt_resp_error(r, 400, "bad_request",
                      "topics[%zu] needs string fields channel and name (and optional kind)", idx);
        return RT_E_INVAL;
    }
    const char *fields[2] = {"channel", "name"};
    json_t *vals[2] = {c, n};
    for (int i = 0; i < 2; i++) {
        int rc = rt_name_validate(
            (rt_slice_t){json_string_value(vals[i]), json_string_length(vals[i])}, maxn);
        if (rc) {
            rt_resp_error(r, 400, rt_tok_errname(rc), "topics[%zu].%s: %s", idx, fields[i],
                          rt_tok_strerror(rc));
            return RT_E_INVAL;
        }
    }
    ref->channel = json_string_value(c);
    ref->name = json_string_value(n);
    ref->kind = k ? json_string_value(k) : "run";
    int rc = rt_topic_kind_validate((rt_slice_t){ref->kind, k ? json_string_length(k) : 3});
    if (rc) {
        rt_resp_error(r, 400, rt_tok_errname(rc), "topics[%zu].kind: %s", idx, rt_tok_strerror(rc));
        return RT_E_INVAL;
    }
    return 0;
}

/* The body's form into *a. 0, or RT_E_INVAL with r filled (400). */
static int mint_args(json_t *root, size_t max_topics, mint_args_t *a, rt_resp_t *r)
{
    *a = (mint_args_t){.topics = root};
    if (json_is_object(root)) {
        a->topics = json_object_get(root, "topics");
        json_t *t = json_object_get(root, "ttl"), *p = json_object_get(root, "publish"),
               *s = json_object_get(root, "sub");
        if ((t && !json_is_integer(t)) || (p && !json_is_boolean(p)) || (s && !json_is_string(s))) {
            rt_resp_error(r, 400, "bad_request",
                          "ttl must be an integer, publish a boolean, sub a string");
            return RT_E_INVAL;
        }
        a->ttl = t ? json_integer_value(t) : 0;
        a->publish = p && json_is_true(p);
        a->sub = s ? json_string_value(s) : NULL;
        if (t && a->ttl <= 0) {
            rt_resp_error(r, 400, "bad_request", "ttl must be a positive number of seconds");
            return RT_E_INVAL;
        }
    }
    if (!json_is_array(a->topics) || json_array_size(a->topics) == 0) {
        rt_resp_error(r, 400, "bad_request",
                      "body must be a non-empty array of {\"channel\",\"name\",\"kind\"} topics");
        return RT_E_INVAL;
    }
    size_t n = json_array_size(a->topics);
    if (n > max_topics) {
        rt_resp_error(r, 400, "token_too_many_topics",
                      "%zu topics requested; the limit is %zu (RTGW_MAX_TOPICS)", n, max_topics);
        return RT_E_INVAL;
    }
    return 0;
}

/* Mint the token of a and fill r with 201 {"jwt","expires_at"} or the refusal. */
static void mint(rt_api_t *api, const mint_args_t *a, int64_t now, rt_resp_t *r)
{
    size_t n = json_array_size(a->topics);
    rt_topic_ref_t *refs = calloc(n, sizeof(*refs));
    if (!refs) {
        rt_resp_error(r, 500, "internal_error", "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (topic_from_json(json_array_get(a->topics, i), &refs[i], i, r,
                            api->topts.max_name_bytes) != 0) {
            free(refs);
            return;
        }
    }
    rt_mint_req_t req = {
        .sub = a->sub, .topics = refs, .ntopics = n, .ttl = a->ttl, .publish = a->publish};
    char *jwt = NULL;
    size_t jl = 0;
    rt_live_t *keys = rt_livecell_get(api->keys);
    int rc = rt_token_mint(rt_live_ring(keys), &api->topts, &req, now, &jwt, &jl);
    rt_live_unref(keys);
    free(refs);
    if (rc) {
        int st = rc == RT_TOK_ENOMEM ? 500 : 400;
        rt_resp_error(r, st, rt_tok_errname(rc), "%s", rt_tok_strerror(rc));
        return;
    }
    atomic_fetch_add(&api->metrics->tokens_minted, 1);
    int64_t eff_ttl = a->ttl ? a->ttl : api->topts.ttl;
    /* Written directly: a compact JWS is base64url and dots, nothing to
     * escape; json_pack + json_dumps were 2% of S4's front door. */
    static const char fmt[] = "{\"jwt\":\"%s\",\"expires_at\":%lld}";
    size_t cap = sizeof fmt + jl + 20; /* 20: the longest int64_t; the format's own %s%lld spare */
    r->body = malloc(cap);
    int wl = r->body ? snprintf(r->body, cap, fmt, jwt, (long long)(now + eff_ttl)) : -1;
    free(jwt);
    if (wl < 0 || (size_t)wl >= cap) {
        free(r->body);
        r->body = NULL;
        rt_resp_error(r, 500, "internal_error", "out of memory");
        return;
    }
    r->status = 201;
    r->len = (size_t)wl;
}

void rt_api_token(rt_api_t *api, const char *authorization, const char *body, size_t len,
                  int64_t now, rt_resp_t *r)
{
    if (rt_api_check_key(api, authorization, r) != 0)
        return;
    json_error_t err;
    if (rt__api_json_too_deep(api, body, len, 0, r))
        return;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        rt_resp_error(r, 400, "bad_json", "body is not valid JSON: %s (line %d, column %d)",
                      err.text, err.line, err.column);
        return;
    }
    mint_args_t a;
    if (mint_args(root, api->topts.max_topics, &a, r) == 0)
        mint(api, &a, now, r);
    json_decref(root);
}
