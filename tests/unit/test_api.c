/*
 * test_api.c — unit tests for gateway/api/include/api.h: bearer parsing, query decoding,
 * token minting and publishing, without an HTTP server. Publishing is checked
 * end to end through the hub and an in-memory subscriber.
 */
#include "api.h"
#include "httphead.h"
#include "hub.h"
#include "rt_test.h"

#include <jansson.h>

#define NOW INT64_C(1700000000)
#define NOW_MS (NOW * 1000)

typedef struct {
    rt_api_t api;
    rt_keyring_t *ring;
    rt_hub_t *hub;
    rt_metrics_t metrics;
    rt_config_t cfg;
    char key[200];
    char auth[220];
    rt_resp_t r;
} fx_t;

static void fx_init(fx_t *fx, bool dev)
{
    memset(fx, 0, sizeof(*fx));
    RT_ASSERT_INT_EQ(rt_tokens_init(), 0);
    fx->ring = rt_keyring_new();
    RT_ASSERT(fx->ring != NULL);
    RT_ASSERT(rt_signing_key_generate("test", fx->key, sizeof(fx->key)) > 0);
    RT_ASSERT_INT_EQ(
        rt_keyring_set_signing_key(fx->ring, RT_KEY_CURRENT, rt_slice_cstr(fx->key), RT_ALG_HS256),
        0);
    snprintf(fx->auth, sizeof(fx->auth), "Bearer %s", fx->key);
    fx->hub = rt_hub_new(NULL, 42);
    RT_ASSERT(fx->hub != NULL);
    rt_metrics_init(&fx->metrics);
    fx->cfg.max_batch = 1000;
    fx->cfg.max_json_depth = 64;
    fx->api.keys = rt_livecell_new(rt_live_new(fx->ring, NULL, 0)); /* owns fx->ring */
    RT_ASSERT(fx->api.keys != NULL);
    rt_token_opts_default(&fx->api.topts);
    fx->api.topts.max_topics = 4;
    fx->api.hub = fx->hub;
    fx->api.metrics = &fx->metrics;
    fx->api.cfg = &fx->cfg;
    fx->api.dev = dev;
}

static void fx_done(fx_t *fx)
{
    rt_resp_clear(&fx->r);
    rt_hub_free(fx->hub);
    rt_livecell_free(fx->api.keys);
}

static json_t *body_json(const rt_resp_t *r)
{
    RT_ASSERT(r->body != NULL);
    RT_ASSERT_INT_EQ(r->len, strlen(r->body));
    json_error_t err;
    json_t *o = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &err);
    if (!o)
        rt_test_fail(__FILE__, __LINE__, "response is not JSON: %s: %s", err.text, r->body);
    return o;
}

/* Status and {"error":name} of a refusal; the message is non-empty. */
#define ASSERT_ERR(resp, want_status, want_name)                                                   \
    do {                                                                                           \
        RT_ASSERT_INT_EQ((resp)->status, want_status);                                             \
        json_t *o_ = body_json(resp);                                                              \
        RT_ASSERT_STR_EQ(json_string_value(json_object_get(o_, "error")), want_name);              \
        const char *m_ = json_string_value(json_object_get(o_, "message"));                        \
        RT_ASSERT(m_ != NULL && *m_);                                                              \
        json_decref(o_);                                                                           \
    } while (0)

/* ---- rt_api_bearer ---- */

static void bearer_is(const char *header, const char *want)
{
    rt_slice_t s = rt_api_bearer(header);
    RT_ASSERT(s.base != NULL);
    if (s.len != strlen(want) || memcmp(s.base, want, s.len) != 0)
        rt_test_fail(__FILE__, __LINE__,
                     "rt_api_bearer(\"%s\")\n    left:  \"%.*s\"\n    right: \"%s\"",
                     header ? header : "(null)", (int)s.len, s.base, want);
}

RT_TEST(bearer_plain)
{
    bearer_is("Bearer abc.def", "abc.def");
}

RT_TEST(bearer_scheme_case_insensitive)
{
    bearer_is("bearer abc", "abc");
    bearer_is("BEARER abc", "abc");
    bearer_is("bEaReR abc", "abc");
}

RT_TEST(bearer_extra_spaces)
{
    bearer_is("   Bearer    abc   ", "abc");
}

RT_TEST(bearer_empty)
{
    bearer_is(NULL, "");
    bearer_is("", "");
    bearer_is("Bearer", "");
    bearer_is("Bearer ", "");
    bearer_is("Bearer      ", "");
}

RT_TEST(bearer_other_schemes_refused)
{
    bearer_is("Basic dXNlcjpwYXNz", "");
    bearer_is("Bearerabc", "");
    bearer_is("Token abc", "");
    bearer_is("abc", "");
}

/* ---- rt_query_param ---- */

static void query_is(const char *q, const char *name, int idx, int want_rc, const char *want)
{
    char out[64];
    memset(out, 'Z', sizeof(out));
    int rc = rt_query_param(q, name, idx, out, sizeof(out));
    if (rc != want_rc)
        rt_test_fail(__FILE__, __LINE__,
                     "rt_query_param(\"%s\", \"%s\", %d)\n    left:  %d\n    right: %d",
                     q ? q : "(null)", name, idx, rc, want_rc);
    if (want) {
        RT_ASSERT_INT_EQ(strlen(out), (size_t)rc);
        RT_ASSERT_STR_EQ(out, want);
    }
}

RT_TEST(query_plain)
{
    query_is("a=1&b=22&c=", "a", 0, 1, "1");
    query_is("a=1&b=22&c=", "b", 0, 2, "22");
    query_is("a=1&b=22&c=", "c", 0, 0, "");
    query_is("flag&x=1", "flag", 0, 0, "");
}

RT_TEST(query_percent_decoding)
{
    query_is("ch=user%3A42%2Fx%2fy", "ch", 0, 11, "user:42/x/y");
    query_is("t=%C3%A9t%c3%a9", "t", 0, 5, "\xc3\xa9t\xc3\xa9");
    query_is("t=100%25", "t", 0, 4, "100%");
}

RT_TEST(query_plus_is_space)
{
    query_is("q=a+b+c", "q", 0, 5, "a b c");
    query_is("q=a%2Bb", "q", 0, 3, "a+b");
}

RT_TEST(query_repeated_keys_by_index)
{
    const char *q = "topic=a&x=0&topic=b&topic=c";
    query_is(q, "topic", 0, 1, "a");
    query_is(q, "topic", 1, 1, "b");
    query_is(q, "topic", 2, 1, "c");
    query_is(q, "topic", 3, RT_E_ABSENT, NULL);
}

RT_TEST(query_missing)
{
    query_is("a=1", "b", 0, RT_E_ABSENT, NULL);
    query_is("ab=1&ba=2", "a", 0, RT_E_ABSENT, NULL); /* no prefix or suffix match */
    query_is("", "a", 0, RT_E_ABSENT, NULL);
    query_is(NULL, "a", 0, RT_E_ABSENT, NULL);
}

RT_TEST(query_bad_escape)
{
    query_is("a=%zz", "a", 0, RT_E_INVAL, NULL);
    query_is("a=%4", "a", 0, RT_E_INVAL, NULL);
    query_is("a=%", "a", 0, RT_E_INVAL, NULL);
    query_is("a=%4&b=1", "a", 0, RT_E_INVAL, NULL);
    query_is("a=%g1", "a", 0, RT_E_INVAL, NULL);
}

RT_TEST(query_too_long)
{
    char q[200] = "a=";
    memset(q + 2, 'x', 64);
    q[66] = 0;
    query_is(q, "a", 0, RT_E_TOOLONG, NULL); /* 64 bytes + NUL do not fit in 64 */
    q[65] = 0;
    query_is(q, "a", 0, 63, NULL);
    char out[4];
    RT_ASSERT_INT_EQ(rt_query_param("a=abc", "a", 0, out, sizeof(out)), 3);
    RT_ASSERT_INT_EQ(rt_query_param("a=abcd", "a", 0, out, sizeof(out)), RT_E_TOOLONG);
    RT_ASSERT_INT_EQ(rt_query_param("a=%41%41%41%41", "a", 0, out, sizeof(out)), RT_E_TOOLONG);
    /* a bad escape is named as such even when the value would not fit either */
    RT_ASSERT_INT_EQ(rt_query_param("a=abc%zz", "a", 0, out, sizeof(out)), RT_E_INVAL);
}

/* ---- rt_api_token ---- */

static void token(fx_t *fx, const char *auth, const char *body)
{
    rt_resp_clear(&fx->r);
    fx->r.status = 0;
    rt_api_token(&fx->api, auth, body, strlen(body), NOW, &fx->r);
    RT_ASSERT(fx->r.status != 0);
}

#define ONE_TOPIC "[{\"channel\":\"user:42\",\"name\":\"ai\",\"kind\":\"run\"}]"

RT_TEST(token_no_auth_refused_outside_dev)
{
    fx_t fx;
    fx_init(&fx, false);
    token(&fx, NULL, ONE_TOPIC);
    ASSERT_ERR(&fx.r, 401, "unauthorized");
    token(&fx, "Bearer ", ONE_TOPIC);
    ASSERT_ERR(&fx.r, 401, "unauthorized");
    RT_ASSERT_INT_EQ(atomic_load(&fx.metrics.auth_failures), 2);
    RT_ASSERT(strstr(fx.r.body, fx.key) == NULL);
    fx_done(&fx);
}

RT_TEST(token_no_auth_accepted_in_dev)
{
    fx_t fx;
    fx_init(&fx, true);
    token(&fx, NULL, ONE_TOPIC);
    RT_ASSERT_INT_EQ(fx.r.status, 201);
    token(&fx, "Bearer", ONE_TOPIC); /* the official clients send an empty Bearer */
    RT_ASSERT_INT_EQ(fx.r.status, 201);
    /* dev does not make a wrong key right */
    token(&fx, "Bearer signkey-test-00", ONE_TOPIC);
    ASSERT_ERR(&fx.r, 401, "unauthorized");
    fx_done(&fx);
}

RT_TEST(token_foreign_key_accepted_only_with_dev_any_key)
{
    fx_t fx;
    fx_init(&fx, true);
    char other[200], auth[220];
    RT_ASSERT(rt_signing_key_generate("prod", other, sizeof(other)) > 0);
    snprintf(auth, sizeof(auth), "Bearer %s", other);
    token(&fx, auth, ONE_TOPIC); /* dev, but not on loopback: strict */
    ASSERT_ERR(&fx.r, 401, "unauthorized");
    fx.api.dev_any_key = true; /* dev on loopback */
    token(&fx, auth, ONE_TOPIC);
    RT_ASSERT_INT_EQ(fx.r.status, 201);
    token(&fx, "Bearer not-a-key", ONE_TOPIC); /* not a signing key at all */
    ASSERT_ERR(&fx.r, 401, "unauthorized");
    fx_done(&fx);
}

RT_TEST(token_wrong_key_refused)
{
    fx_t fx;
    fx_init(&fx, false);
    char other[200], auth[220];
    RT_ASSERT(rt_signing_key_generate("test", other, sizeof(other)) > 0);
    snprintf(auth, sizeof(auth), "Bearer %s", other);
    token(&fx, auth, ONE_TOPIC);
    ASSERT_ERR(&fx.r, 401, "unauthorized");
    RT_ASSERT(strstr(fx.r.body, other) == NULL); /* never echoed */
    token(&fx, "Bearer not-a-key", ONE_TOPIC);
    ASSERT_ERR(&fx.r, 401, "unauthorized");
    snprintf(auth, sizeof(auth), "Basic %s", fx.key);
    token(&fx, auth, ONE_TOPIC);
    ASSERT_ERR(&fx.r, 401, "unauthorized");
    fx_done(&fx);
}

RT_TEST(token_hashed_key_accepted)
{
    fx_t fx;
    fx_init(&fx, false);
    char hashed[RT_TOK_HASHED_KEY_MAX], auth[RT_TOK_HASHED_KEY_MAX + 10];
    RT_ASSERT(rt_signing_key_hash(rt_slice_cstr(fx.key), hashed, sizeof(hashed)) > 0);
    snprintf(auth, sizeof(auth), "Bearer %s", hashed);
    token(&fx, auth, ONE_TOPIC);
    RT_ASSERT_INT_EQ(fx.r.status, 201);
    fx_done(&fx);
}

RT_TEST(token_malformed_json)
{
    fx_t fx;
    fx_init(&fx, false);
    token(&fx, fx.auth, "[{\"channel\":");
    ASSERT_ERR(&fx.r, 400, "bad_json");
    token(&fx, fx.auth, "");
    ASSERT_ERR(&fx.r, 400, "bad_json");
    token(&fx, fx.auth, "{\"topics\":[],\"topics\":[]}"); /* duplicate keys */
    ASSERT_ERR(&fx.r, 400, "bad_json");
    fx_done(&fx);
}

RT_TEST(token_not_an_array_or_empty)
{
    fx_t fx;
    fx_init(&fx, false);
    const char *bodies[] = {"[]",
                            "{}",
                            "{\"topics\":{}}",
                            "{\"topics\":[]}",
                            "{\"topics\":\"c\"}",
                            "{\"channel\":\"c\",\"name\":\"t\"}"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        token(&fx, fx.auth, bodies[i]);
        if (fx.r.status != 400)
            rt_test_fail(__FILE__, __LINE__, "body %s: status %d, want 400: %s", bodies[i],
                         fx.r.status, fx.r.body);
        ASSERT_ERR(&fx.r, 400, "bad_request");
    }
    /* A bare scalar is not even a JSON text the parser takes (no JSON_DECODE_ANY). */
    token(&fx, fx.auth, "\"x\"");
    ASSERT_ERR(&fx.r, 400, "bad_json");
    token(&fx, fx.auth, "42");
    ASSERT_ERR(&fx.r, 400, "bad_json");
    fx_done(&fx);
}

RT_TEST(token_topic_not_an_object)
{
    fx_t fx;
    fx_init(&fx, false);
    token(&fx, fx.auth, "[\"user:42\"]");
    ASSERT_ERR(&fx.r, 400, "bad_request");
    token(&fx, fx.auth, "[{\"channel\":\"c\"}]");
    ASSERT_ERR(&fx.r, 400, "bad_request");
    token(&fx, fx.auth, "[{\"channel\":\"c\",\"name\":5}]");
    ASSERT_ERR(&fx.r, 400, "bad_request");
    token(&fx, fx.auth, "[{\"channel\":\"c\",\"name\":\"t\",\"kind\":1}]");
    ASSERT_ERR(&fx.r, 400, "bad_request");
    fx_done(&fx);
}

RT_TEST(token_too_many_topics)
{
    fx_t fx;
    fx_init(&fx, false); /* max_topics = 4 */
    token(&fx, fx.auth,
          "[{\"channel\":\"c\",\"name\":\"a\"},{\"channel\":\"c\",\"name\":\"b\"},"
          "{\"channel\":\"c\",\"name\":\"c\"},{\"channel\":\"c\",\"name\":\"d\"},"
          "{\"channel\":\"c\",\"name\":\"e\"}]");
    ASSERT_ERR(&fx.r, 400, "token_too_many_topics");
    token(&fx, fx.auth,
          "[{\"channel\":\"c\",\"name\":\"a\"},{\"channel\":\"c\",\"name\":\"b\"},"
          "{\"channel\":\"c\",\"name\":\"c\"},{\"channel\":\"c\",\"name\":\"d\"}]");
    RT_ASSERT_INT_EQ(fx.r.status, 201);
    fx_done(&fx);
}

RT_TEST(token_bad_names)
{
    fx_t fx;
    fx_init(&fx, false);
    token(&fx, fx.auth, "[{\"channel\":\"\",\"name\":\"ai\"}]");
    ASSERT_ERR(&fx.r, 400, "name_empty");
    token(&fx, fx.auth, "[{\"channel\":\"c\",\"name\":\"\"}]");
    ASSERT_ERR(&fx.r, 400, "name_empty");
    token(&fx, fx.auth, "[{\"channel\":\"c\\u0001\",\"name\":\"ai\"}]");
    ASSERT_ERR(&fx.r, 400, "name_bad_chars");
    token(&fx, fx.auth, "[{\"channel\":\"c\",\"name\":\"a\\u007fb\"}]");
    ASSERT_ERR(&fx.r, 400, "name_bad_chars");
    token(&fx, fx.auth, "[{\"channel\":\"c\",\"name\":\"a\\u0000b\"}]"); /* jansson refuses NUL */
    ASSERT_ERR(&fx.r, 400, "bad_json");
    char body[1024];
    char longname[300];
    memset(longname, 'n', 257);
    longname[257] = 0;
    snprintf(body, sizeof(body), "[{\"channel\":\"c\",\"name\":\"%s\"}]", longname);
    token(&fx, fx.auth, body);
    ASSERT_ERR(&fx.r, 400, "name_too_long");
    /* the second topic's problem is reported with its index */
    token(&fx, fx.auth, "[{\"channel\":\"c\",\"name\":\"ok\"},{\"channel\":\"c\",\"name\":\"\"}]");
    ASSERT_ERR(&fx.r, 400, "name_empty");
    RT_ASSERT(strstr(fx.r.body, "topics[1]") != NULL);
    fx_done(&fx);
}

static json_t *minted_claims(fx_t *fx, rt_claims_t *c)
{
    json_t *o = body_json(&fx->r);
    const char *jwt = json_string_value(json_object_get(o, "jwt"));
    RT_ASSERT(jwt != NULL);
    RT_ASSERT_INT_EQ(rt_token_verify(fx->ring, &fx->api.topts, rt_slice_cstr(jwt), NOW, c), 0);
    return o;
}

RT_TEST(token_success_verifies)
{
    fx_t fx;
    fx_init(&fx, false);
    token(&fx, fx.auth,
          "[{\"channel\":\"user:42\",\"name\":\"ai\",\"kind\":\"run\"},{\"channel\":\"user:42\","
          "\"name\":\"*\"}]");
    RT_ASSERT_INT_EQ(fx.r.status, 201);
    rt_claims_t c;
    json_t *o = minted_claims(&fx, &c);
    RT_ASSERT_INT_EQ(json_integer_value(json_object_get(o, "expires_at")), NOW + 60);
    RT_ASSERT_INT_EQ(c.exp, NOW + 60);
    RT_ASSERT_INT_EQ(c.iat, NOW);
    RT_ASSERT_STR_EQ(c.iss, "rtgw");
    RT_ASSERT_STR_EQ(c.sub, "user:42");
    RT_ASSERT_STR_EQ(c.env, "test");
    RT_ASSERT(!c.publish);
    RT_ASSERT_INT_EQ(c.ntopics, 2);
    RT_ASSERT_STR_EQ(c.topics[0].channel, "user:42");
    RT_ASSERT_STR_EQ(c.topics[0].name, "ai");
    RT_ASSERT_STR_EQ(c.topics[0].kind, "run");
    RT_ASSERT_STR_EQ(c.topics[1].name, "*");
    RT_ASSERT_STR_EQ(c.topics[1].kind, "run"); /* default kind */
    RT_ASSERT(rt_claims_grants(&c, RT_SLICE_LIT("user:42"), RT_SLICE_LIT("anything")));
    RT_ASSERT(!rt_claims_grants(&c, RT_SLICE_LIT("user:43"), RT_SLICE_LIT("ai")));
    rt_claims_clear(&c);
    json_decref(o);
    RT_ASSERT_INT_EQ(atomic_load(&fx.metrics.tokens_minted), 1);
    fx_done(&fx);
}

RT_TEST(token_object_form_ttl_publish_sub)
{
    fx_t fx;
    fx_init(&fx, false);
    token(&fx, fx.auth,
          "{\"topics\":" ONE_TOPIC ",\"ttl\":120,\"publish\":true,\"sub\":\"svc-1\"}");
    RT_ASSERT_INT_EQ(fx.r.status, 201);
    rt_claims_t c;
    json_t *o = minted_claims(&fx, &c);
    RT_ASSERT_INT_EQ(json_integer_value(json_object_get(o, "expires_at")), NOW + 120);
    RT_ASSERT_INT_EQ(c.exp, NOW + 120);
    RT_ASSERT(c.publish);
    RT_ASSERT_STR_EQ(c.sub, "svc-1");
    rt_claims_clear(&c);
    json_decref(o);
    /* publish:false is the same as absent */
    token(&fx, fx.auth, "{\"topics\":" ONE_TOPIC ",\"publish\":false}");
    RT_ASSERT_INT_EQ(fx.r.status, 201);
    o = minted_claims(&fx, &c);
    RT_ASSERT(!c.publish);
    RT_ASSERT_INT_EQ(c.exp, NOW + 60);
    rt_claims_clear(&c);
    json_decref(o);
    fx_done(&fx);
}

RT_TEST(token_object_form_refusals)
{
    fx_t fx;
    fx_init(&fx, false);
    token(&fx, fx.auth, "{\"topics\":" ONE_TOPIC ",\"ttl\":\"60\"}");
    ASSERT_ERR(&fx.r, 400, "bad_request");
    token(&fx, fx.auth, "{\"topics\":" ONE_TOPIC ",\"ttl\":0}");
    ASSERT_ERR(&fx.r, 400, "bad_request");
    token(&fx, fx.auth, "{\"topics\":" ONE_TOPIC ",\"ttl\":-5}");
    ASSERT_ERR(&fx.r, 400, "bad_request");
    token(&fx, fx.auth, "{\"topics\":" ONE_TOPIC ",\"ttl\":1.5}");
    ASSERT_ERR(&fx.r, 400, "bad_request");
    token(&fx, fx.auth, "{\"topics\":" ONE_TOPIC ",\"publish\":1}");
    ASSERT_ERR(&fx.r, 400, "bad_request");
    token(&fx, fx.auth, "{\"topics\":" ONE_TOPIC ",\"sub\":7}");
    ASSERT_ERR(&fx.r, 400, "bad_request");
    token(&fx, fx.auth, "{\"topics\":" ONE_TOPIC ",\"ttl\":3601}"); /* over max_ttl */
    ASSERT_ERR(&fx.r, 400, "token_lifetime_too_long");
    token(&fx, fx.auth, "{\"topics\":" ONE_TOPIC ",\"sub\":\"a\\u0001\"}");
    RT_ASSERT_INT_EQ(fx.r.status, 400);
    fx_done(&fx);
}

/* ---- rt_api_publish_prepare ---- */

static int prepare(fx_t *fx, const char *auth, const char *query, rt_publish_target_t *t)
{
    rt_resp_clear(&fx->r);
    fx->r.status = 0;
    int rc = rt_api_publish_prepare(&fx->api, auth, query, NOW, t, &fx->r);
    if (rc == 0 && fx->r.status != 0)
        rt_test_fail(__FILE__, __LINE__, "prepare(%s) returned 0 but filled a %d response", query,
                     fx->r.status);
    if (rc != 0 && fx->r.status == 0)
        rt_test_fail(__FILE__, __LINE__, "prepare(%s) returned %d without a response", query, rc);
    return rc;
}

static char *mint_token(fx_t *fx, const char *channel, const char *topic, bool publish, int64_t now)
{
    rt_topic_ref_t ref = {channel, topic, NULL};
    rt_mint_req_t req = {.topics = &ref, .ntopics = 1, .publish = publish};
    char *jwt = NULL;
    RT_ASSERT_INT_EQ(rt_token_mint(fx->ring, &fx->api.topts, &req, now, &jwt, NULL), 0);
    return jwt;
}

RT_TEST(prepare_signing_key)
{
    fx_t fx;
    fx_init(&fx, false);
    static rt_publish_target_t t;
    RT_ASSERT_INT_EQ(
        prepare(&fx, fx.auth, "channel=user%3A42&topic=ai&topic=log&run_id=r1&fn_id=f1", &t), 0);
    RT_ASSERT_STR_EQ(t.channel, "user:42");
    RT_ASSERT_INT_EQ(t.ntopics, 2);
    RT_ASSERT_STR_EQ(t.topics[0], "ai");
    RT_ASSERT_STR_EQ(t.topics[1], "log");
    RT_ASSERT_STR_EQ(t.run_id, "r1");
    RT_ASSERT_STR_EQ(t.fn_id, "f1");
    /* no Authorization outside dev: 401 */
    RT_ASSERT_INT_EQ(prepare(&fx, NULL, "channel=c&topic=t", &t), RT_E_DENIED);
    ASSERT_ERR(&fx.r, 401, "unauthorized");
    /* a wrong signing key: 401 */
    RT_ASSERT_INT_EQ(prepare(&fx, "Bearer signkey-test-0123", "channel=c&topic=t", &t),
                     RT_E_DENIED);
    ASSERT_ERR(&fx.r, 401, "unauthorized");
    fx_done(&fx);
}

RT_TEST(prepare_env_fn_slug_metadata)
{
    fx_t fx;
    fx_init(&fx, false);
    static rt_publish_target_t t;
    RT_ASSERT_INT_EQ(
        prepare(&fx, fx.auth,
                "channel=c&topic=t&fn_slug=app-fn&metadata=%7B%20%22a%22%20%3A%201e2%7D", &t),
        0);
    RT_ASSERT_STR_EQ(t.env_id, "test");
    RT_ASSERT_STR_EQ(t.fn_slug, "app-fn");
    RT_ASSERT_MEM_EQ(t.metadata, t.metadata_len, "{\"a\":1e2}", 9);
    RT_ASSERT_INT_EQ(prepare(&fx, fx.auth, "channel=c&topic=t&metadata=%7Bno", &t), RT_E_INVAL);
    ASSERT_ERR(&fx.r, 400, "bad_metadata");
    RT_ASSERT_INT_EQ(prepare(&fx, fx.auth, "channel=c&topic=t&fn_slug=a%01b", &t), RT_E_INVAL);
    ASSERT_ERR(&fx.r, 400, "bad_request");
    fx_done(&fx);
}

RT_TEST(tee_prepare)
{
    fx_t fx;
    fx_init(&fx, false);
    static rt_publish_target_t t;
    rt_resp_clear(&fx.r);
    RT_ASSERT_INT_EQ(rt_api_tee_prepare(&fx.api, fx.auth, "channel=run-1&topic=x", NOW, &t, &fx.r),
                     0);
    RT_ASSERT_STR_EQ(t.channel, "run-1");
    RT_ASSERT_INT_EQ(t.ntopics, 1);
    RT_ASSERT_STR_EQ(t.topics[0], "$stream"); /* topic parameters are not a tee's */
    RT_ASSERT_STR_EQ(t.env_id, "test");
    RT_ASSERT_INT_EQ(rt_api_tee_prepare(&fx.api, fx.auth, "topic=x", NOW, &t, &fx.r), RT_E_INVAL);
    ASSERT_ERR(&fx.r, 400, "bad_request");
    rt_resp_clear(&fx.r);
    RT_ASSERT_INT_EQ(rt_api_tee_prepare(&fx.api, "Bearer x.y.z", "channel=c", NOW, &t, &fx.r),
                     RT_E_DENIED);
    RT_ASSERT_INT_EQ(fx.r.status, 401);
    fx_done(&fx);
}

RT_TEST(prepare_missing_channel_or_topic)
{
    fx_t fx;
    fx_init(&fx, false);
    static rt_publish_target_t t;
    RT_ASSERT_INT_EQ(prepare(&fx, fx.auth, "topic=t", &t), RT_E_INVAL);
    ASSERT_ERR(&fx.r, 400, "bad_request");
    RT_ASSERT(strstr(fx.r.body, "channel") != NULL);
    RT_ASSERT_INT_EQ(prepare(&fx, fx.auth, "channel=c", &t), RT_E_INVAL);
    ASSERT_ERR(&fx.r, 400, "bad_request");
    RT_ASSERT(strstr(fx.r.body, "topic") != NULL);
    RT_ASSERT_INT_EQ(prepare(&fx, fx.auth, NULL, &t), RT_E_INVAL);
    ASSERT_ERR(&fx.r, 400, "bad_request");
    RT_ASSERT_INT_EQ(prepare(&fx, fx.auth, "channel=&topic=t", &t), RT_E_INVAL);
    ASSERT_ERR(&fx.r, 400, "name_empty");
    RT_ASSERT_INT_EQ(prepare(&fx, fx.auth, "channel=c&topic=a&topic=", &t), RT_E_INVAL);
    ASSERT_ERR(&fx.r, 400, "name_empty");
    fx_done(&fx);
}

RT_TEST(prepare_wildcard_topic_refused)
{
    fx_t fx;
    fx_init(&fx, false);
    static rt_publish_target_t t;
    RT_ASSERT_INT_EQ(prepare(&fx, fx.auth, "channel=c&topic=*", &t), RT_E_INVAL);
    ASSERT_ERR(&fx.r, 400, "bad_request");
    RT_ASSERT_INT_EQ(prepare(&fx, fx.auth, "channel=c&topic=a&topic=%2A", &t), RT_E_INVAL);
    ASSERT_ERR(&fx.r, 400, "bad_request");
    fx_done(&fx);
}

RT_TEST(prepare_topic_count_bound)
{
    fx_t fx;
    fx_init(&fx, false);
    static rt_publish_target_t t;
    char q[512] = "channel=c";
    for (int i = 0; i < 16; i++)
        snprintf(q + strlen(q), sizeof(q) - strlen(q), "&topic=t%d", i);
    RT_ASSERT_INT_EQ(prepare(&fx, fx.auth, q, &t), 0);
    RT_ASSERT_INT_EQ(t.ntopics, 16);
    RT_ASSERT_STR_EQ(t.topics[15], "t15");
    strcat(q, "&topic=t16");
    RT_ASSERT_INT_EQ(prepare(&fx, fx.auth, q, &t), RT_E_INVAL);
    ASSERT_ERR(&fx.r, 400, "bad_request");
    fx_done(&fx);
}

RT_TEST(prepare_bad_names_refused)
{
    fx_t fx;
    fx_init(&fx, false);
    static rt_publish_target_t t;
    RT_ASSERT_INT_EQ(prepare(&fx, fx.auth, "channel=%ff&topic=t", &t), RT_E_INVAL);
    ASSERT_ERR(&fx.r, 400, "name_bad_chars");
    RT_ASSERT_INT_EQ(prepare(&fx, fx.auth, "channel=c&topic=%C3%28", &t),
                     RT_E_INVAL); /* bad continuation */
    ASSERT_ERR(&fx.r, 400, "name_bad_chars");
    RT_ASSERT_INT_EQ(prepare(&fx, fx.auth, "channel=c&topic=a%00b", &t), RT_E_INVAL);
    ASSERT_ERR(&fx.r, 400, "name_bad_chars");
    RT_ASSERT_INT_EQ(prepare(&fx, fx.auth, "channel=c%0A&topic=t", &t), RT_E_INVAL);
    ASSERT_ERR(&fx.r, 400, "name_bad_chars");
    RT_ASSERT_INT_EQ(prepare(&fx, fx.auth, "channel=%zz&topic=t", &t), RT_E_INVAL);
    RT_ASSERT_INT_EQ(fx.r.status, 400);
    char q[1400] = "channel=";
    memset(q + 8, 'c', 257);
    strcat(q, "&topic=t");
    RT_ASSERT_INT_EQ(prepare(&fx, fx.auth, q, &t), RT_E_INVAL);
    ASSERT_ERR(&fx.r, 400, "name_too_long");
    RT_ASSERT_INT_EQ(prepare(&fx, fx.auth, "channel=c&topic=t&run_id=%01", &t), RT_E_INVAL);
    ASSERT_ERR(&fx.r, 400, "bad_request");
    fx_done(&fx);
}

RT_TEST(prepare_publish_token_only_for_its_topics)
{
    fx_t fx;
    fx_init(&fx, false);
    static rt_publish_target_t t;
    char *jwt = mint_token(&fx, "user:42", "ai", true, NOW);
    char auth[4096];
    snprintf(auth, sizeof(auth), "Bearer %s", jwt);
    RT_ASSERT_INT_EQ(prepare(&fx, auth, "channel=user:42&topic=ai", &t), 0);
    RT_ASSERT_INT_EQ(prepare(&fx, auth, "channel=user:42&topic=other", &t), RT_E_DENIED);
    ASSERT_ERR(&fx.r, 403, "topic_not_allowed");
    RT_ASSERT_INT_EQ(prepare(&fx, auth, "channel=user:43&topic=ai", &t), RT_E_DENIED);
    ASSERT_ERR(&fx.r, 403, "topic_not_allowed");
    /* every topic must be granted */
    RT_ASSERT_INT_EQ(prepare(&fx, auth, "channel=user:42&topic=ai&topic=other", &t), RT_E_DENIED);
    ASSERT_ERR(&fx.r, 403, "topic_not_allowed");
    free(jwt);
    /* a "*" grant covers every topic of its channel */
    jwt = mint_token(&fx, "user:42", "*", true, NOW);
    snprintf(auth, sizeof(auth), "Bearer %s", jwt);
    RT_ASSERT_INT_EQ(prepare(&fx, auth, "channel=user:42&topic=x&topic=y", &t), 0);
    RT_ASSERT_INT_EQ(prepare(&fx, auth, "channel=user:4&topic=x", &t), RT_E_DENIED);
    ASSERT_ERR(&fx.r, 403, "topic_not_allowed");
    free(jwt);
    fx_done(&fx);
}

RT_TEST(prepare_token_without_publish_refused)
{
    fx_t fx;
    fx_init(&fx, false);
    static rt_publish_target_t t;
    char *jwt = mint_token(&fx, "user:42", "ai", false, NOW);
    char auth[4096];
    snprintf(auth, sizeof(auth), "Bearer %s", jwt);
    RT_ASSERT_INT_EQ(prepare(&fx, auth, "channel=user:42&topic=ai", &t), RT_E_DENIED);
    ASSERT_ERR(&fx.r, 403, "topic_not_allowed");
    free(jwt);
    fx_done(&fx);
}

RT_TEST(prepare_bad_or_expired_token)
{
    fx_t fx;
    fx_init(&fx, false);
    static rt_publish_target_t t;
    char *jwt = mint_token(&fx, "user:42", "ai", true, NOW - 1000);
    char auth[4096];
    snprintf(auth, sizeof(auth), "Bearer %s", jwt);
    RT_ASSERT_INT_EQ(prepare(&fx, auth, "channel=user:42&topic=ai", &t), RT_E_DENIED);
    ASSERT_ERR(&fx.r, 401, "token_expired");
    free(jwt);
    RT_ASSERT_INT_EQ(prepare(&fx, "Bearer a.b.c", "channel=user:42&topic=ai", &t), RT_E_DENIED);
    RT_ASSERT_INT_EQ(fx.r.status, 401);
    RT_ASSERT(atomic_load(&fx.metrics.auth_failures) >= 2);
    fx_done(&fx);
}

/* ---- rt_api_publish_body ---- */

typedef struct {
    rt_sub_t *sub;
} listener_t;

static void listen_on(fx_t *fx, listener_t *l, const char *channel, const char *topic, bool ext)
{
    l->sub = rt_sub_new(fx->hub, RT_FMT_WS, NULL, NULL);
    RT_ASSERT(l->sub != NULL);
    rt_sub_set_ext(l->sub, ext);
    rt_slice_t t = rt_slice_cstr(topic);
    RT_ASSERT_INT_EQ(rt_hub_subscribe(fx->hub, l->sub, rt_slice_cstr(channel), &t, 1, NULL, NULL),
                     0);
}

static void listen_done(fx_t *fx, listener_t *l)
{
    rt_hub_unsubscribe_all(fx->hub, l->sub);
    rt_sub_unref(l->sub);
}

/* Pop one event frame and return its JSON object (caller decrefs). */
static json_t *next_event(listener_t *l)
{
    rt_frame_t *f;
    RT_ASSERT_INT_EQ(rt_sub_pop(l->sub, &f, 1), 1);
    const unsigned char *p = (const unsigned char *)f->data;
    size_t hl = (p[1] & 127) < 126 ? 2 : (p[1] & 127) == 126 ? 4 : 10;
    json_error_t err;
    json_t *o =
        json_loadb(f->data + hl, f->len - hl, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (!o)
        rt_test_fail(__FILE__, __LINE__, "frame not JSON: %s", err.text);
    rt_frame_unref(f);
    return o;
}

static void publish(fx_t *fx, const char *query, const char *body, size_t len)
{
    static rt_publish_target_t t;
    RT_ASSERT_INT_EQ(prepare(fx, fx->auth, query, &t), 0);
    rt_resp_clear(&fx->r);
    fx->r.status = 0;
    rt_api_publish_body(&fx->api, &t, body, len, NOW_MS + 123, &fx->r);
}

RT_TEST(publish_json_body_embedded_as_json)
{
    fx_t fx;
    fx_init(&fx, false);
    listener_t l;
    listen_on(&fx, &l, "user:42", "ai", false);
    const char body[] = "{\n  \"msg\": \"hi\",\n  \"n\": [1, 2]\n}";
    publish(&fx, "channel=user:42&topic=ai&run_id=run-1", body, sizeof(body) - 1);
    RT_ASSERT_INT_EQ(fx.r.status, 200);
    json_t *resp = body_json(&fx.r);
    RT_ASSERT(json_is_true(json_object_get(resp, "ok")));
    RT_ASSERT_INT_EQ(json_integer_value(json_object_get(resp, "delivered")), 1);
    json_t *ids = json_object_get(resp, "ids");
    RT_ASSERT_INT_EQ(json_array_size(ids), 1);
    json_t *ev = next_event(&l);
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(ev, "id")),
                     json_string_value(json_array_get(ids, 0)));
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(ev, "kind")), "data");
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(ev, "channel")), "user:42");
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(ev, "topic")), "ai");
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(ev, "run_id")), "run-1");
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(ev, "created_at")),
                     "2023-11-14T22:13:20.123Z");
    RT_ASSERT(json_object_get(ev, "fn_id") == NULL);
    json_t *want = json_loads(body, 0, NULL);
    RT_ASSERT(json_equal(json_object_get(ev, "data"), want));
    json_decref(want);
    json_decref(ev);
    json_decref(resp);
    RT_ASSERT_INT_EQ(atomic_load(&fx.metrics.publish_requests), 1);
    listen_done(&fx, &l);
    fx_done(&fx);
}

RT_TEST(publish_scalar_json_bodies)
{
    fx_t fx;
    fx_init(&fx, false);
    listener_t l;
    listen_on(&fx, &l, "c", "t", false);
    const char *bodies[] = {"42", "\"quoted\"", "true", "null", "[1,\"a\"]"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        publish(&fx, "channel=c&topic=t", bodies[i], strlen(bodies[i]));
        RT_ASSERT_INT_EQ(fx.r.status, 200);
        json_t *ev = next_event(&l);
        json_t *want = json_loads(bodies[i], JSON_DECODE_ANY, NULL);
        json_t *got = json_object_get(ev, "data");
        RT_ASSERT(got != NULL);
        if (!json_equal(got, want)) {
            char *g = json_dumps(got, JSON_ENCODE_ANY);
            rt_test_fail(__FILE__, __LINE__, "body %s embedded as %s", bodies[i], g);
        }
        json_decref(want);
        json_decref(ev);
    }
    listen_done(&fx, &l);
    fx_done(&fx);
}

RT_TEST(publish_text_body_embedded_as_string)
{
    fx_t fx;
    fx_init(&fx, false);
    listener_t l;
    listen_on(&fx, &l, "c", "t", false);
    const char *bodies[] = {"hello world", "line1\nline2\t\"q\" \\ caf\xc3\xa9", "{not json",
                            "42abc", ""};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        publish(&fx, "channel=c&topic=t", bodies[i], strlen(bodies[i]));
        RT_ASSERT_INT_EQ(fx.r.status, 200);
        json_t *ev = next_event(&l);
        RT_ASSERT_STR_EQ(json_string_value(json_object_get(ev, "data")), bodies[i]);
        json_decref(ev);
    }
    listen_done(&fx, &l);
    fx_done(&fx);
}

RT_TEST(publish_invalid_utf8_text_refused)
{
    fx_t fx;
    fx_init(&fx, false);
    listener_t l;
    listen_on(&fx, &l, "c", "t", false);
    const char body[] = "caf\xe9 \xff\xfe";
    publish(&fx, "channel=c&topic=t", body, sizeof(body) - 1);
    ASSERT_ERR(&fx.r, 400, "bad_body");
    RT_ASSERT_INT_EQ(atomic_load(&fx.metrics.publish_errors), 1);
    rt_frame_t *f;
    RT_ASSERT_INT_EQ(rt_sub_pop(l.sub, &f, 1), 0); /* nothing published */
    /* a NUL byte in text is valid UTF-8: embedded as \u0000 */
    publish(&fx, "channel=c&topic=t", "a\0b", 3);
    RT_ASSERT_INT_EQ(fx.r.status, 200);
    json_t *ev = next_event(&l);
    json_t *d = json_object_get(ev, "data");
    RT_ASSERT_INT_EQ(json_string_length(d), 3);
    RT_ASSERT(memcmp(json_string_value(d), "a\0b", 3) == 0);
    json_decref(ev);
    listen_done(&fx, &l);
    fx_done(&fx);
}

RT_TEST(publish_many_topics_ids_and_delivered)
{
    fx_t fx;
    fx_init(&fx, false);
    listener_t a1, a2, b, w;
    listen_on(&fx, &a1, "c", "a", false);
    listen_on(&fx, &a2, "c", "a", false);
    listen_on(&fx, &b, "c", "b", false);
    listen_on(&fx, &w, "c", "*", false);
    publish(&fx, "channel=c&topic=a&topic=b&topic=z", "{\"x\":1}", 7);
    RT_ASSERT_INT_EQ(fx.r.status, 200);
    json_t *resp = body_json(&fx.r);
    json_t *ids = json_object_get(resp, "ids");
    RT_ASSERT_INT_EQ(json_array_size(ids), 3);
    /* a: 2 + wildcard, b: 1 + wildcard, z: wildcard */
    RT_ASSERT_INT_EQ(json_integer_value(json_object_get(resp, "delivered")), 6);
    rt_pos_t pos[3];
    for (int i = 0; i < 3; i++) {
        RT_ASSERT_INT_EQ(
            rt_pos_parse(rt_slice_cstr(json_string_value(json_array_get(ids, i))), &pos[i]), 0);
        RT_ASSERT_INT_EQ(pos[i].offset, i + 1);
    }
    json_t *ev = next_event(&b);
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(ev, "id")),
                     json_string_value(json_array_get(ids, 1)));
    json_decref(ev);
    for (int i = 0; i < 3; i++) {
        ev = next_event(&w);
        RT_ASSERT_STR_EQ(json_string_value(json_object_get(ev, "id")),
                         json_string_value(json_array_get(ids, i)));
        json_decref(ev);
    }
    json_decref(resp);
    listen_done(&fx, &a1);
    listen_done(&fx, &a2);
    listen_done(&fx, &b);
    listen_done(&fx, &w);
    fx_done(&fx);
}

/* A stream's frames: start and end only to extended subscribers; a chunk to
 * them as is, and to official ones as a data frame with the same fields. */
RT_TEST(publish_stream_chunk_plain_form)
{
    fx_t fx;
    fx_init(&fx, false);
    listener_t plain, ext;
    listen_on(&fx, &plain, "c", "t", false);
    listen_on(&fx, &ext, "c", "t", true);
    static rt_publish_target_t t;
    RT_ASSERT_INT_EQ(prepare(&fx, fx.auth, "channel=c&topic=t", &t), 0);
    RT_ASSERT_INT_EQ(
        rt_api_publish_stream_event(&fx.api, &t, "datastream-start", "s-1", "s-1", 3, NOW_MS), 0);
    rt_frame_t *f;
    RT_ASSERT_INT_EQ(rt_sub_pop(plain.sub, &f, 1), 0);
    json_t *ev = next_event(&ext);
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(ev, "kind")), "datastream-start");
    json_decref(ev);
    RT_ASSERT_INT_EQ(rt_api_publish_stream_event(&fx.api, &t, "chunk", "s-1", "tok\n", 4, NOW_MS),
                     0);
    ev = next_event(&plain);
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(ev, "kind")), "data");
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(ev, "channel")), "c");
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(ev, "topic")), "t");
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(ev, "data")), "tok\n");
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(ev, "stream_id")), "s-1");
    json_decref(ev);
    ev = next_event(&ext);
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(ev, "kind")), "chunk");
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(ev, "stream_id")), "s-1");
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(ev, "data")), "tok\n");
    json_decref(ev);
    listen_done(&fx, &plain);
    listen_done(&fx, &ext);
    fx_done(&fx);
}

RT_TEST(resp_error_shape)
{
    rt_resp_t r = {0};
    rt_resp_error(&r, 418, "teapot", "short and %s", "stout");
    ASSERT_ERR(&r, 418, "teapot");
    json_t *o = body_json(&r);
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(o, "message")), "short and stout");
    json_decref(o);
    rt_resp_clear(&r);
    RT_ASSERT(r.body == NULL);
    rt_resp_clear(&r);
}

/* rt_http_parse_strict: what the front door answers itself (fastpath.c), and
 * what it must leave to civetweb. */
static int strict(const char *head, rt_http_strict_t *out)
{
    static char buf[4096];
    size_t n = strlen(head);
    memcpy(buf, head, n);
    return rt_http_parse_strict(buf, n, out);
}

RT_TEST(strict_head_takes_the_plain_shape)
{
    rt_http_strict_t h;
    const char *up = "GET /v1/realtime/connect?token=a.b.c&rtgw=1 HTTP/1.1\r\nHost: x\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\nX-Empty:\r\n\r\n";
    RT_ASSERT_INT_EQ(strict(up, &h), 0);
    RT_ASSERT_STR_EQ(h.method, "GET");
    RT_ASSERT_STR_EQ(h.uri_raw, "/v1/realtime/connect");
    RT_ASSERT_STR_EQ(h.query, "token=a.b.c&rtgw=1");
    RT_ASSERT_STR_EQ(h.http_version, "1.1");
    RT_ASSERT_INT_EQ((int)h.head_len, (int)strlen(up));
    RT_ASSERT_INT_EQ(h.nheaders, 4);
    RT_ASSERT_STR_EQ(h.headers[1].name, "Upgrade");
    RT_ASSERT_STR_EQ(h.headers[1].value, "websocket");
    RT_ASSERT_STR_EQ(h.headers[3].value, "");
    /* a body after the head is not part of it */
    RT_ASSERT_INT_EQ(strict("POST /t HTTP/1.0\r\nContent-Length:   2\r\n\r\n[]", &h), 0);
    RT_ASSERT_STR_EQ(h.http_version, "1.0");
    RT_ASSERT_STR_EQ(h.headers[0].value, "2"); /* spaces before a value skipped */
    RT_ASSERT_INT_EQ((int)h.head_len, 41);     /* 18 + 21 + 2: the body's 2 bytes are not counted */
    RT_ASSERT(h.query == NULL);
}

RT_TEST(strict_head_declines_what_civetweb_reads_otherwise)
{
    rt_http_strict_t h;
    const char *no[] = {
        "GET / HTTP/1.1\nHost: x\n\n",               /* bare LF */
        "GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n",   /* a bare LF inside */
        "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",      /* a bare CR */
        "GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", /* obs-fold */
        "GET / HTTP/1.1\r\nX : a\r\n\r\n",           /* space before the colon */
        "GET / HTTP/1.1\r\nX: a\tb\r\n\r\n",         /* a tab: the scan calls it early */
        "GET / HTTP/1.1\r\nX: 13 \r\n\r\n",          /* civetweb keeps the space */
        "GET / HTTP/1.1\r\nHost x\r\n\r\n",          /* no colon */
        "GET /%63onnect HTTP/1.1\r\n\r\n",           /* civetweb decodes %-escapes */
        "GET http://x/ HTTP/1.1\r\n\r\n",            /* absolute form */
        "get / HTTP/1.1\r\n\r\n",                    /* lower-case method */
        "GET / HTTP/2.0\r\n\r\n",                    /* version */
        "GET /  HTTP/1.1\r\n\r\n",                   /* two spaces */
        "GET / HTTP/1.1\r\nHost: x\r\n",             /* no end */
    };
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        RT_ASSERT_INT_EQ(strict(no[i], &h), -1);
    /* 63 headers are taken, 64 are not (civetweb keeps 64, rtgw refuses 64) */
    char many[4096];
    for (int n = 63; n <= 64; n++) {
        size_t off = (size_t)snprintf(many, sizeof(many), "GET / HTTP/1.1\r\n");
        for (int i = 0; i < n; i++)
            off += (size_t)snprintf(many + off, sizeof(many) - off, "X-%d: v\r\n", i);
        snprintf(many + off, sizeof(many) - off, "\r\n");
        RT_ASSERT_INT_EQ(strict(many, &h), n == 63 ? 0 : -1);
    }
    /* a NUL inside the head */
    char nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    RT_ASSERT_INT_EQ(rt_http_parse_strict(nul, sizeof(nul) - 1, &h), -1);
}
