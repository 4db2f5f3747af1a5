/*
 * mint.c — tokens: offline with rt_token_mint (the same code the gateway
 * runs), or through POST /v1/realtime/token.
 */
#include "internal.h"

#include "rt_tokens.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RTC_MAX_TOPICS 64

int rtc_mint_local_opts(const char *signing_key, const char *channel, const char *const topics[],
                        size_t n, long long ttl, bool publish, const rtc_mint_opts_t *opts,
                        char **jwt, rtc_error_t *err)
{
    if (jwt)
        *jwt = NULL;
    if (!signing_key || !channel || !topics || n == 0 || n > RTC_MAX_TOPICS || !jwt || ttl < 0)
        return rtc__fail(err, RTC_EINVAL, 0, NULL,
                         "need a signing key, a channel, 1-%d topics and a ttl >= 0",
                         RTC_MAX_TOPICS);
    int rc = rtc_init();
    if (rc)
        return rtc__fail(err, rc, 0, NULL, NULL);
    int alg = RT_ALG_HS256;
    if (opts && opts->alg && (alg = rt_alg_parse(rt_slice_cstr(opts->alg))) < 0)
        return rtc__fail(err, RTC_EINVAL, 0, NULL, "unknown token algorithm (HS256 or EdDSA)");
    rt_keyring_t *ring = rt_keyring_new();
    if (!ring)
        return rtc__fail(err, RTC_ENOMEM, 0, NULL, NULL);
    rc =
        rt_keyring_set_signing_key(ring, RT_KEY_CURRENT, rt_slice_cstr(signing_key), (rt_alg_t)alg);
    if (rc) {
        rt_keyring_free(ring);
        return rtc__fail(err, RTC_EKEY, 0, rt_tok_errname(rc), "%s", rt_tok_strerror(rc));
    }
    rt_token_opts_t o;
    rt_token_opts_default(&o);
    if (opts && opts->issuer)
        o.issuer = opts->issuer;
    if (opts && opts->max_ttl > 0)
        o.max_ttl = opts->max_ttl;
    rt_topic_ref_t refs[RTC_MAX_TOPICS];
    for (size_t i = 0; i < n; i++)
        refs[i] = (rt_topic_ref_t){channel, topics[i], "run"};
    rt_mint_req_t req = {.sub = opts ? opts->sub : NULL,
                         .topics = refs,
                         .ntopics = n,
                         .ttl = ttl,
                         .publish = publish};
    rc = rt_token_mint(ring, &o, &req, (int64_t)time(NULL), jwt, NULL);
    rt_keyring_free(ring);
    if (rc == RT_TOK_ENOMEM)
        return rtc__fail(err, RTC_ENOMEM, 0, NULL, NULL);
    if (rc)
        return rtc__fail(err, RTC_ETOKEN, 0, rt_tok_errname(rc), "%s", rt_tok_strerror(rc));
    return 0;
}

int rtc_mint_local(const char *signing_key, const char *channel, const char *const topics[],
                   size_t n, long long ttl, bool publish, char **jwt)
{
    return rtc_mint_local_opts(signing_key, channel, topics, n, ttl, publish, NULL, jwt, NULL);
}

int rtc_get_token(const char *base_url, const char *signing_key, const char *channel,
                  const char *const topics[], size_t n, char **jwt, rtc_error_t *err)
{
    if (jwt)
        *jwt = NULL;
    if (!signing_key || !channel || !topics || n == 0 || n > RTC_MAX_TOPICS || !jwt)
        return rtc__fail(err, RTC_EINVAL, 0, NULL, "need a signing key, a channel and 1-%d topics",
                         RTC_MAX_TOPICS);
    rtc__url_t u;
    if (rtc__url_parse(base_url, &u))
        return rtc__fail(err, RTC_EURL, 0, NULL, NULL);
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "channel", channel, "name",
                                                 topics[i], "kind", "run")))
            break;
    char *body = arr && json_array_size(arr) == n ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    char *bearer = body ? rtc__bearer(signing_key) : NULL;
    rtc__buf_t target = {0};
    if (!body || !bearer || rtc__buf_adds(&target, u.prefix) ||
        rtc__buf_adds(&target, "/v1/realtime/token")) {
        free(body);
        free(bearer);
        rtc__buf_free(&target);
        return rtc__fail(err, RTC_ENOMEM, 0, NULL, NULL);
    }
    rtc__req_t req = {.method = "POST",
                      .target = target.p,
                      .bearer = bearer,
                      .content_type = "application/json",
                      .body = body,
                      .len = strlen(body)};
    int status;
    char *resp;
    size_t rlen;
    int rc = rtc__http(&u, &req, &status, &resp, &rlen, err);
    free(body);
    free(bearer);
    rtc__buf_free(&target);
    if (rc)
        return rc;
    if (status / 100 != 2) {
        rc = rtc__http_refusal(status, resp, rlen, err);
        free(resp);
        return rc;
    }
    json_error_t je;
    json_t *o = json_loadb(resp, rlen, JSON_REJECT_DUPLICATES, &je);
    free(resp);
    const char *s = json_string_value(json_object_get(o, "jwt"));
    if (!s) {
        json_decref(o);
        return rtc__fail(err, RTC_EPROTO, status, NULL, "the reply has no jwt");
    }
    *jwt = strdup(s);
    json_decref(o);
    return *jwt ? 0 : rtc__fail(err, RTC_ENOMEM, status, NULL, NULL);
}
