/*
 * test_sdk_c.c — the pure parts of sdk/c (rtgw_client): base URL parsing,
 * percent-encoding, error and close-code tables, offline mint (verified with
 * rt_tokens), credential hashing. Network behaviour is covered by cli.mjs.
 */
#include "internal.h"
#include "rt_test.h"
#include "rt_tokens.h"

#include <stdlib.h>
#include <time.h>

RT_TEST(url_parse_forms)
{
    rtc__url_t u;
    RT_ASSERT_INT_EQ(rtc__url_parse("http://127.0.0.1:8288", &u), 0);
    RT_ASSERT_STR_EQ(u.host, "127.0.0.1");
    RT_ASSERT_INT_EQ(u.port, 8288);
    RT_ASSERT_INT_EQ(u.tls, 0);
    RT_ASSERT_STR_EQ(u.prefix, "");
    RT_ASSERT_INT_EQ(rtc__url_parse("https://rt.example.com/", &u), 0);
    RT_ASSERT_STR_EQ(u.host, "rt.example.com");
    RT_ASSERT_INT_EQ(u.port, 443);
    RT_ASSERT_INT_EQ(u.tls, 1);
    RT_ASSERT_STR_EQ(u.prefix, "");
    RT_ASSERT_INT_EQ(rtc__url_parse("http://[::1]:9/rt//", &u), 0);
    RT_ASSERT_STR_EQ(u.host, "::1");
    RT_ASSERT_INT_EQ(u.port, 9);
    RT_ASSERT_STR_EQ(u.prefix, "/rt");
    RT_ASSERT_INT_EQ(rtc__url_parse("http://h", &u), 0);
    RT_ASSERT_INT_EQ(u.port, 80);
}

RT_TEST(url_parse_refusals)
{
    rtc__url_t u;
    const char *bad[] = {NULL,
                         "",
                         "ws://h:1",
                         "http://",
                         "http://:80",
                         "http://h:0",
                         "http://h:65536",
                         "http://h:x",
                         "http://h?q=1",
                         "http://h/p?q",
                         "http://[::1",
                         "http://u@h",
                         "127.0.0.1:8288"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (rtc__url_parse(bad[i], &u) != RTC_EURL)
            rt_test_fail(__FILE__, __LINE__, "accepted '%s'", bad[i] ? bad[i] : "(null)");
}

RT_TEST(percent_encoding)
{
    rtc__buf_t b = {0};
    RT_ASSERT_INT_EQ(rtc__buf_addenc(&b, "user:42 a/b&c=d~_.-ü"), 0);
    RT_ASSERT_STR_EQ(b.p, "user%3A42%20a%2Fb%26c%3Dd~_.-%C3%BC");
    rtc__buf_free(&b);
}

RT_TEST(error_table)
{
    RT_ASSERT_STR_EQ(rtc_errname(RTC_ECONNECT), "unreachable");
    RT_ASSERT_STR_EQ(rtc_errname(RTC_EREFUSED), "refused");
    RT_ASSERT_STR_EQ(rtc_errname(0), "ok");
    RT_ASSERT_STR_EQ(rtc_errname(-999), "unknown");
    RT_ASSERT_STR_EQ(rtc_strerror(RTC_ECONNECT), "cannot connect to the gateway");
    /* Every code has a distinct name. */
    int codes[] = {
#define X(n, c, id, t) c,
        RTC_ERRNO_MAP(X)
#undef X
    };
    size_t n = sizeof(codes) / sizeof(codes[0]);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            RT_ASSERT(strcmp(rtc_errname(codes[i]), rtc_errname(codes[j])) != 0);
}

RT_TEST(close_codes_match_protocol_doc)
{
    RT_ASSERT_STR_EQ(rtc_close_name(4402), "token_invalid");
    RT_ASSERT_STR_EQ(rtc_close_name(4429), "slow_consumer");
    RT_ASSERT_STR_EQ(rtc_close_name(1006), "connection_lost");
    RT_ASSERT_STR_EQ(rtc_close_name(4999), "unknown");
    int retry[] = {1001, 1005, 1006, 1011, 4408, 4409, 4429, 4503, 1012};
    int final[] = {1000, 1002, 1009, 4400, 4401, 4402, 4403, 4405, 4777};
    for (size_t i = 0; i < sizeof(retry) / sizeof(retry[0]); i++)
        RT_ASSERT_INT_EQ(rtc_close_retryable(retry[i]), 1);
    for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++)
        RT_ASSERT_INT_EQ(rtc_close_retryable(final[i]), 0);
}

RT_TEST(mint_local_verifies)
{
    RT_ASSERT_INT_EQ(rtc_init(), 0);
    char key[160];
    RT_ASSERT(rt_signing_key_generate("test", key, sizeof(key)) > 0);
    const char *topics[] = {"ai", "status"};
    char *jwt = NULL;
    RT_ASSERT_INT_EQ(rtc_mint_local(key, "user:42", topics, 2, 120, true, &jwt), 0);
    rt_keyring_t *ring = rt_keyring_new();
    RT_ASSERT_INT_EQ(
        rt_keyring_set_signing_key(ring, RT_KEY_CURRENT, rt_slice_cstr(key), RT_ALG_HS256), 0);
    rt_claims_t c;
    RT_ASSERT_INT_EQ(rt_token_verify(ring, NULL, rt_slice_cstr(jwt), (int64_t)time(NULL), &c), 0);
    RT_ASSERT_INT_EQ(c.ntopics, 2);
    RT_ASSERT_STR_EQ(c.topics[1].name, "status");
    RT_ASSERT_INT_EQ(c.exp - c.iat, 120);
    RT_ASSERT(c.publish);
    rt_claims_clear(&c);
    rt_keyring_free(ring);
    free(jwt);
}

RT_TEST(mint_local_refusals)
{
    RT_ASSERT_INT_EQ(rtc_init(), 0);
    const char *topics[] = {"ai"};
    char *jwt = (char *)1;
    rtc_error_t err;
    RT_ASSERT_INT_EQ(rtc_mint_local("not-a-key", "c", topics, 1, 0, false, &jwt), RTC_EKEY);
    RT_ASSERT(jwt == NULL);
    char key[160];
    rt_signing_key_generate("test", key, sizeof(key));
    RT_ASSERT_INT_EQ(rtc_mint_local_opts(key, "c", topics, 1, 99999, false, NULL, &jwt, &err),
                     RTC_ETOKEN);
    RT_ASSERT_STR_EQ(err.name, "token_lifetime_too_long");
    RT_ASSERT_INT_EQ(rtc_mint_local(key, "", topics, 1, 0, false, &jwt), RTC_ETOKEN);
    RT_ASSERT_INT_EQ(rtc_mint_local(key, "c", topics, 0, 0, false, &jwt), RTC_EINVAL);
    rtc_mint_opts_t o = {.alg = "RS256"};
    RT_ASSERT_INT_EQ(rtc_mint_local_opts(key, "c", topics, 1, 0, false, &o, &jwt, &err),
                     RTC_EINVAL);
}

RT_TEST(bearer_hashes_signing_keys)
{
    RT_ASSERT_INT_EQ(rtc_init(), 0);
    char key[160], hashed[RT_TOK_HASHED_KEY_MAX];
    rt_signing_key_generate("prod", key, sizeof(key));
    rt_signing_key_hash(rt_slice_cstr(key), hashed, sizeof(hashed));
    char *b = rtc__bearer(key);
    RT_ASSERT_STR_EQ(b, hashed);
    RT_ASSERT(strcmp(b, key) != 0);
    free(b);
    b = rtc__bearer("eyJ.a.b");
    RT_ASSERT_STR_EQ(b, "eyJ.a.b");
    free(b);
}

RT_TEST(sub_new_validates)
{
    RT_ASSERT_INT_EQ(rtc_init(), 0);
    rtc_subscribe_opts_t o = {.base_url = "http://127.0.0.1:1", .token = "t"};
    RT_ASSERT(rtc_sub_new(&o) == NULL); /* no on_message */
    o.on_message = (rtc_message_fn)1;
    o.base_url = "ftp://x";
    RT_ASSERT(rtc_sub_new(&o) == NULL);
    o.base_url = "http://127.0.0.1:1";
    o.token = NULL;
    RT_ASSERT(rtc_sub_new(&o) == NULL); /* neither token nor token_fn */
    o.token = "t";
    const char *since[] = {"abc-1"};
    o.since = since;
    o.nsince = 1;
    rtc_sub_t *s = rtc_sub_new(&o);
    RT_ASSERT(s != NULL);
    RT_ASSERT(rtc_sub_last_id(s, "c") == NULL);
    rtc_sub_free(s);
    rtc_error_t err;
    RT_ASSERT_INT_EQ(rtc_subscribe(NULL, &err), RTC_EINVAL);
}
