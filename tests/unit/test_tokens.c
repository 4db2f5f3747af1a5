/*
 * test_tokens.c — unit tests for tokens/ (rt_tokens.h).
 *
 * Published vectors (RFC 7515 A.1, RFC 8037 A.4) run against the bare
 * signature layer; everything else goes through the public API. Refusal tests
 * forge tokens with rt__jws_forge, which signs arbitrary header and payload
 * bytes with a ring key, so each test breaks exactly one thing and asserts
 * exactly one code.
 */
#include "rt_test.h"
#include "rt_tokens.h"
#include "rt_tokens_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define NOW INT64_C(1700000000)
#define HEX_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEX_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define KEY_A "signkey-test-" HEX_A
#define KEY_B "signkey-test-" HEX_B
/* printf %s HEX_A | xxd -r -p | sha256sum (computed outside this code) */
#define KEY_A_HASHED "signkey-test-4884fdaafea47c29fea7159d0daddd9c085d6200e1359e85bb81736af6b7c837"
#define KEY_B_HASHED "signkey-test-8d2e4d6374b604562a5d8c04a4dfc035fa499ec7ad373bd48bd2bd62ca75c3b5"

#define ERR_EQ(got, want) RT_ASSERT_ERR_EQ(rt_tok_errname, got, want)

static rt_keyring_t *ring_with(const char *current, rt_alg_t calg, const char *fallback,
                               rt_alg_t falg)
{
    rt_keyring_t *ring;

    RT_ASSERT_INT_EQ(rt_tokens_init(), 0);
    ring = rt_keyring_new();
    RT_ASSERT(ring != NULL);
    if (current)
        ERR_EQ(rt_keyring_set_signing_key(ring, RT_KEY_CURRENT, rt_slice_cstr(current), calg), 0);
    if (fallback)
        ERR_EQ(rt_keyring_set_signing_key(ring, RT_KEY_FALLBACK, rt_slice_cstr(fallback), falg), 0);
    return ring;
}

static rt_keyring_t *ring_hs(void)
{
    return ring_with(KEY_A, RT_ALG_HS256, NULL, RT_ALG_HS256);
}

static const rt_topic_ref_t default_topic = {"user:42", "ai", NULL};

static char *mint(const rt_keyring_t *ring, const rt_token_opts_t *opts, int64_t now)
{
    rt_mint_req_t req = {.topics = &default_topic, .ntopics = 1};
    char *jwt = NULL;
    size_t len = 0;

    ERR_EQ(rt_token_mint(ring, opts, &req, now, &jwt, &len), 0);
    RT_ASSERT(jwt != NULL);
    RT_ASSERT_INT_EQ(len, strlen(jwt));
    return jwt;
}

static int verify(const rt_keyring_t *ring, const rt_token_opts_t *opts, const char *jwt,
                  int64_t now)
{
    rt_claims_t c;
    int rc = rt_token_verify(ring, opts, rt_slice_cstr(jwt), now, &c);

    if (rc != 0) { /* a refusal leaves nothing behind */
        RT_ASSERT(c.iss == NULL && c.topics == NULL && c.ntopics == 0);
    }
    rt_claims_clear(&c);
    return rc;
}

/* The claims a well-formed token for the current key of ring_hs() carries. */
static json_t *good_claims(void)
{
    json_t *c = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:[{s:s, s:s, s:s}], s:b}", "iss", "rtgw",
                          "sub", "user:42", "iat", (json_int_t)NOW, "exp", (json_int_t)(NOW + 60),
                          "jti", "abc", "env", "test", "topics", "channel", "user:42", "name", "ai",
                          "kind", "run", "publish", 0);
    RT_ASSERT(c != NULL);
    return c;
}

static json_t *good_header(const rt_keyring_t *ring, rt_key_slot_t slot, const char *alg)
{
    json_t *h =
        json_pack("{s:s, s:s, s:s}", "alg", alg, "typ", "JWT", "kid", rt_keyring_kid(ring, slot));
    RT_ASSERT(h != NULL);
    return h;
}

static char *dump(json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT);
    RT_ASSERT(s != NULL);
    json_decref(v);
    return s;
}

/* Sign raw header and payload text with the key in `slot` using `alg`. */
static char *forge_raw(const rt_keyring_t *ring, rt_key_slot_t slot, rt_alg_t alg,
                       const char *header, const char *payload)
{
    char *jwt = NULL;
    ERR_EQ(
        rt__jws_forge(ring, slot, alg, rt_slice_cstr(header), rt_slice_cstr(payload), &jwt, NULL),
        0);
    return jwt;
}

/* Forge with a JSON header and claims (both consumed), signed by the current key. */
static char *forge(const rt_keyring_t *ring, json_t *header, json_t *claims)
{
    char *h = dump(header), *p = dump(claims);
    char *jwt = forge_raw(ring, RT_KEY_CURRENT, RT_ALG_HS256, h, p);
    free(h);
    free(p);
    return jwt;
}

/* Verify claims (consumed) in a correctly signed HS256 token of ring_hs(). */
static int verify_claims(json_t *claims, const rt_token_opts_t *opts, int64_t now)
{
    rt_keyring_t *ring = ring_hs();
    char *jwt = forge(ring, good_header(ring, RT_KEY_CURRENT, "HS256"), claims);
    int rc = verify(ring, opts, jwt, now);
    free(jwt);
    rt_keyring_free(ring);
    return rc;
}

/* Verify a token whose header is `header` text and whose claims are good. */
static int verify_header_text(const char *header)
{
    rt_keyring_t *ring = ring_hs();
    char *p = dump(good_claims());
    char *jwt = forge_raw(ring, RT_KEY_CURRENT, RT_ALG_HS256, header, p);
    int rc = verify(ring, NULL, jwt, NOW);
    free(p);
    free(jwt);
    rt_keyring_free(ring);
    return rc;
}

/* Verify a token whose payload is `payload` text, correctly signed. */
static int verify_payload_text(const char *payload)
{
    rt_keyring_t *ring = ring_hs();
    char *h = dump(good_header(ring, RT_KEY_CURRENT, "HS256"));
    char *jwt = forge_raw(ring, RT_KEY_CURRENT, RT_ALG_HS256, h, payload);
    int rc = verify(ring, NULL, jwt, NOW);
    free(h);
    free(jwt);
    rt_keyring_free(ring);
    return rc;
}

static uint8_t *b64d(const char *s, size_t *len)
{
    static uint8_t buf[256];
    int n = rt_b64url_decode(rt_slice_cstr(s), buf, sizeof buf);
    RT_ASSERT(n >= 0);
    *len = (size_t)n;
    return buf;
}

/* ---- published vectors ------------------------------------------------------------ */

RT_TEST(rfc7515_a1_hs256)
{
    /* RFC 7515 appendix A.1: HMAC SHA-256 JWS. The header contains CRLFs and
     * spaces, so the signing input is taken verbatim from the RFC. */
    static const char input[] = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
                                ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
                                "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
    static const char k[] =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
    static const char sig_b64[] = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    uint8_t key[64], sig[64], want[32];
    size_t sig_len = 0;
    char enc[64];

    RT_ASSERT_INT_EQ(rt_tokens_init(), 0);
    RT_ASSERT_INT_EQ(rt_b64url_decode(rt_slice_cstr(k), key, sizeof key), 64);
    RT_ASSERT_INT_EQ(rt_b64url_decode(rt_slice_cstr(sig_b64), want, sizeof want), 32);
    ERR_EQ(
        rt__jws_sign(RT_ALG_HS256, key, 64, (const uint8_t *)input, strlen(input), sig, &sig_len),
        0);
    RT_ASSERT_INT_EQ(sig_len, 32);
    RT_ASSERT_INT_EQ(rt_b64url_encode(sig, sig_len, enc, sizeof enc), 43);
    RT_ASSERT_STR_EQ(enc, sig_b64);
    ERR_EQ(
        rt__jws_verify_sig(RT_ALG_HS256, key, 64, (const uint8_t *)input, strlen(input), want, 32),
        0);
    want[31] ^= 1;
    ERR_EQ(
        rt__jws_verify_sig(RT_ALG_HS256, key, 64, (const uint8_t *)input, strlen(input), want, 32),
        RT_TOK_ESIGNATURE);
}

RT_TEST(rfc8037_a4_ed25519)
{
    /* RFC 8037 appendices A.1 (key), A.4 (signature). */
    static const char d[] = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    static const char x[] = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    static const char input[] = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
    static const char sig_b64[] =
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
    uint8_t seed[32], want_pk[32], pk[32], sk[64], sig[64], want_sig[64];
    size_t sig_len = 0, n;
    char enc[128];

    RT_ASSERT_INT_EQ(rt_tokens_init(), 0);
    memcpy(seed, b64d(d, &n), 32);
    RT_ASSERT_INT_EQ(n, 32);
    memcpy(want_pk, b64d(x, &n), 32);
    RT_ASSERT_INT_EQ(n, 32);
    memcpy(want_sig, b64d(sig_b64, &n), 64);
    RT_ASSERT_INT_EQ(n, 64);
    RT_ASSERT_INT_EQ(crypto_sign_seed_keypair(pk, sk, seed), 0);
    RT_ASSERT(memcmp(pk, want_pk, 32) == 0);
    ERR_EQ(rt__jws_sign(RT_ALG_EDDSA, sk, 64, (const uint8_t *)input, strlen(input), sig, &sig_len),
           0);
    RT_ASSERT_INT_EQ(sig_len, 64);
    rt_b64url_encode(sig, 64, enc, sizeof enc);
    RT_ASSERT_STR_EQ(enc, sig_b64);
    ERR_EQ(rt__jws_verify_sig(RT_ALG_EDDSA, want_pk, 32, (const uint8_t *)input, strlen(input),
                              want_sig, 64),
           0);
    want_sig[10] ^= 0x40;
    ERR_EQ(rt__jws_verify_sig(RT_ALG_EDDSA, want_pk, 32, (const uint8_t *)input, strlen(input),
                              want_sig, 64),
           RT_TOK_ESIGNATURE);
}

/* ---- happy paths -------------------------------------------------------------------- */

RT_TEST(mint_verify_hs256)
{
    rt_keyring_t *ring = ring_hs();
    rt_topic_ref_t topics[2] = {{"user:42", "ai", NULL}, {"user:42", "*", "run"}};
    rt_mint_req_t req = {.sub = "u42", .topics = topics, .ntopics = 2, .ttl = 120, .publish = true};
    rt_claims_t c;
    char *jwt = NULL;

    ERR_EQ(rt_token_mint(ring, NULL, &req, NOW, &jwt, NULL), 0);
    ERR_EQ(rt_token_verify(ring, NULL, rt_slice_cstr(jwt), NOW + 5, &c), 0);
    RT_ASSERT_STR_EQ(c.iss, "rtgw");
    RT_ASSERT_STR_EQ(c.sub, "u42");
    RT_ASSERT_STR_EQ(c.env, "test");
    RT_ASSERT_STR_EQ(c.kid, rt_keyring_kid(ring, RT_KEY_CURRENT));
    RT_ASSERT_INT_EQ(strlen(c.jti), 22);
    RT_ASSERT_INT_EQ(c.iat, NOW);
    RT_ASSERT_INT_EQ(c.exp, NOW + 120);
    RT_ASSERT_INT_EQ(c.nbf, 0);
    RT_ASSERT(c.publish);
    RT_ASSERT_INT_EQ(c.ntopics, 2);
    RT_ASSERT_STR_EQ(c.topics[0].channel, "user:42");
    RT_ASSERT_STR_EQ(c.topics[0].name, "ai");
    RT_ASSERT_STR_EQ(c.topics[0].kind, "run");
    RT_ASSERT_STR_EQ(c.topics[1].name, "*");
    rt_claims_clear(&c);
    RT_ASSERT(c.iss == NULL && c.topics == NULL);
    /* the header is exactly what the contract says */
    {
        const char *dot = strchr(jwt, '.');
        uint8_t h[128];
        int n = rt_b64url_decode((rt_slice_t){jwt, (size_t)(dot - jwt)}, h, sizeof h);
        char want[96];
        snprintf(want, sizeof want, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
                 rt_keyring_kid(ring, RT_KEY_CURRENT));
        RT_ASSERT_MEM_EQ(h, (size_t)n, want, strlen(want));
    }
    free(jwt);
    rt_keyring_free(ring);
}

RT_TEST(mint_verify_eddsa)
{
    rt_keyring_t *ring = ring_with(KEY_A, RT_ALG_EDDSA, NULL, RT_ALG_HS256);
    char *jwt = mint(ring, NULL, NOW);
    rt_claims_t c;

    ERR_EQ(rt_token_verify(ring, NULL, rt_slice_cstr(jwt), NOW, &c), 0);
    RT_ASSERT_INT_EQ(c.ntopics, 1);
    RT_ASSERT_STR_EQ(c.sub, "user:42"); /* defaults to the first channel */
    RT_ASSERT(!c.publish);
    rt_claims_clear(&c);
    /* 86 characters of signature: 64 bytes */
    RT_ASSERT_INT_EQ(strlen(strrchr(jwt, '.') + 1), 86);
    free(jwt);
    rt_keyring_free(ring);
}

RT_TEST(kid_depends_on_alg)
{
    rt_keyring_t *a = ring_with(KEY_A, RT_ALG_HS256, NULL, 0);
    rt_keyring_t *b = ring_with(KEY_A, RT_ALG_EDDSA, NULL, 0);
    rt_keyring_t *c = ring_with(KEY_B, RT_ALG_HS256, NULL, 0);

    RT_ASSERT_INT_EQ(strlen(rt_keyring_kid(a, RT_KEY_CURRENT)), RT_TOK_KID_LEN);
    RT_ASSERT(strcmp(rt_keyring_kid(a, RT_KEY_CURRENT), rt_keyring_kid(b, RT_KEY_CURRENT)) != 0);
    RT_ASSERT(strcmp(rt_keyring_kid(a, RT_KEY_CURRENT), rt_keyring_kid(c, RT_KEY_CURRENT)) != 0);
    RT_ASSERT(rt_keyring_kid(a, RT_KEY_FALLBACK) == NULL);
    RT_ASSERT(rt_keyring_env(a, RT_KEY_FALLBACK) == NULL);
    RT_ASSERT_STR_EQ(rt_keyring_env(a, RT_KEY_CURRENT), "test");
    rt_keyring_free(a);
    rt_keyring_free(b);
    rt_keyring_free(c);
}

RT_TEST(fallback_rotation)
{
    /* Before: A is current. Rotation: B current, A fallback. After: A removed. */
    rt_keyring_t *before = ring_with(KEY_A, RT_ALG_HS256, NULL, 0);
    rt_keyring_t *during = ring_with(KEY_B, RT_ALG_HS256, KEY_A, RT_ALG_HS256);
    rt_keyring_t *after = ring_with(KEY_B, RT_ALG_HS256, NULL, 0);
    char *old = mint(before, NULL, NOW), *fresh = mint(during, NULL, NOW);
    rt_claims_t c;

    ERR_EQ(rt_token_verify(during, NULL, rt_slice_cstr(old), NOW, &c), 0);
    RT_ASSERT_STR_EQ(c.kid, rt_keyring_kid(during, RT_KEY_FALLBACK));
    rt_claims_clear(&c);
    ERR_EQ(verify(during, NULL, fresh, NOW), 0);
    ERR_EQ(verify(after, NULL, fresh, NOW), 0);
    ERR_EQ(verify(after, NULL, old, NOW), RT_TOK_EKID);
    free(old);
    free(fresh);
    rt_keyring_free(before);
    rt_keyring_free(during);
    rt_keyring_free(after);
}

RT_TEST(verify_only_ed25519_public_key)
{
    rt_keyring_t *signer = ring_with(KEY_A, RT_ALG_EDDSA, NULL, 0);
    rt_keyring_t *verifier = ring_with(NULL, 0, NULL, 0);
    char *jwt = mint(signer, NULL, NOW);
    const char *kid = rt_keyring_kid(signer, RT_KEY_CURRENT);
    rt_claims_t c;

    ERR_EQ(verify(verifier, NULL, jwt, NOW), RT_TOK_ENOKEY);
    ERR_EQ(rt_keyring_add_ed25519_public(verifier, rt_slice_cstr(kid),
                                         signer->slot[RT_KEY_CURRENT].ed_pk),
           0);
    ERR_EQ(rt_token_verify(verifier, NULL, rt_slice_cstr(jwt), NOW, &c), 0);
    RT_ASSERT_STR_EQ(c.kid, kid);
    rt_claims_clear(&c);
    /* the verify-only ring cannot mint, and knows no Bearer key */
    {
        rt_mint_req_t req = {.topics = &default_topic, .ntopics = 1};
        char *out = NULL;
        ERR_EQ(rt_token_mint(verifier, NULL, &req, NOW, &out, NULL), RT_TOK_ENOKEY);
        ERR_EQ(rt_keyring_check_bearer(verifier, rt_slice_cstr(KEY_A), NULL), RT_TOK_ENOKEY);
    }
    /* a kid not added is unknown; a bad point is refused */
    {
        uint8_t zero[32] = {0};
        ERR_EQ(rt_keyring_add_ed25519_public(verifier, rt_slice_cstr("other"), zero),
               RT_TOK_EINVAL);
        ERR_EQ(rt_keyring_add_ed25519_public(verifier, rt_slice_cstr("bad kid"),
                                             signer->slot[RT_KEY_CURRENT].ed_pk),
               RT_TOK_EINVAL);
    }
    free(jwt);
    rt_keyring_free(signer);
    rt_keyring_free(verifier);
}

RT_TEST(jwks_exports_only_eddsa)
{
    rt_keyring_t *ring = ring_with(KEY_A, RT_ALG_HS256, KEY_B, RT_ALG_EDDSA);
    char *jwks = rt_keyring_jwks_json(ring);
    json_t *root, *keys, *k;
    char x[64];

    RT_ASSERT(jwks != NULL);
    root = json_loads(jwks, 0, NULL);
    RT_ASSERT(root != NULL);
    keys = json_object_get(root, "keys");
    RT_ASSERT_INT_EQ(json_array_size(keys), 1);
    k = json_array_get(keys, 0);
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(k, "kty")), "OKP");
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(k, "crv")), "Ed25519");
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(k, "alg")), "EdDSA");
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(k, "use")), "sig");
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(k, "kid")),
                     rt_keyring_kid(ring, RT_KEY_FALLBACK));
    rt_b64url_encode(ring->slot[RT_KEY_FALLBACK].ed_pk, 32, x, sizeof x);
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(k, "x")), x);
    RT_ASSERT(strstr(jwks, HEX_A) == NULL && strstr(jwks, HEX_B) == NULL);
    json_decref(root);
    free(jwks);
    rt_keyring_free(ring);
}

RT_TEST(publish_flag_roundtrip)
{
    rt_keyring_t *ring = ring_hs();
    rt_mint_req_t req = {.topics = &default_topic, .ntopics = 1, .publish = true};
    rt_claims_t c;
    char *jwt = NULL;

    ERR_EQ(rt_token_mint(ring, NULL, &req, NOW, &jwt, NULL), 0);
    ERR_EQ(rt_token_verify(ring, NULL, rt_slice_cstr(jwt), NOW, &c), 0);
    RT_ASSERT(c.publish);
    rt_claims_clear(&c);
    free(jwt);
    rt_keyring_free(ring);
}

RT_TEST(verify_without_kid_uses_current_key_only)
{
    rt_keyring_t *ring = ring_with(KEY_A, RT_ALG_HS256, KEY_B, RT_ALG_HS256);
    char *p = dump(good_claims());
    char *cur = forge_raw(ring, RT_KEY_CURRENT, RT_ALG_HS256, "{\"alg\":\"HS256\"}", p);
    char *fb = forge_raw(ring, RT_KEY_FALLBACK, RT_ALG_HS256, "{\"alg\":\"HS256\"}", p);

    ERR_EQ(verify(ring, NULL, cur, NOW), 0);
    ERR_EQ(verify(ring, NULL, fb, NOW), RT_TOK_ESIGNATURE);
    free(p);
    free(cur);
    free(fb);
    rt_keyring_free(ring);
}

RT_TEST(verify_leeway_edges)
{
    json_t *c;
    rt_token_opts_t o;

    rt_token_opts_default(&o);
    c = good_claims(); /* expired 10 s ago: inside the 30 s leeway */
    json_object_set_new(c, "exp", json_integer(NOW - 10));
    ERR_EQ(verify_claims(c, &o, NOW), 0);
    c = good_claims(); /* exactly at the leeway: refused (exp must be > now - leeway) */
    json_object_set_new(c, "exp", json_integer(NOW - 30));
    ERR_EQ(verify_claims(c, &o, NOW), RT_TOK_EEXPIRED);
    c = good_claims();
    json_object_set_new(c, "nbf", json_integer(NOW + 30));
    ERR_EQ(verify_claims(c, &o, NOW), 0);
    c = good_claims();
    json_object_set_new(c, "iat", json_integer(NOW + 30));
    ERR_EQ(verify_claims(c, &o, NOW), 0);
    o.leeway = 0;
    c = good_claims();
    json_object_set_new(c, "iat", json_integer(NOW + 1));
    ERR_EQ(verify_claims(c, &o, NOW), RT_TOK_EIAT_FUTURE);
    /* extreme clocks do not overflow */
    c = good_claims();
    ERR_EQ(verify_claims(c, NULL, INT64_MAX), RT_TOK_EEXPIRED);
    c = good_claims();
    ERR_EQ(verify_claims(c, NULL, INT64_MIN), RT_TOK_EIAT_FUTURE);
}

/* ---- bearer ------------------------------------------------------------------------- */

static int bearer(const char *cred, rt_key_slot_t *slot)
{
    rt_keyring_t *ring = ring_with(KEY_A, RT_ALG_HS256, KEY_B, RT_ALG_EDDSA);
    int rc = rt_keyring_check_bearer(ring, rt_slice_cstr(cred), slot);
    rt_keyring_free(ring);
    return rc;
}

RT_TEST(bearer_plain_current)
{
    rt_key_slot_t s = RT_KEY_FALLBACK;
    ERR_EQ(bearer(KEY_A, &s), 0);
    RT_ASSERT_INT_EQ(s, RT_KEY_CURRENT);
}

RT_TEST(bearer_hashed_current)
{
    rt_key_slot_t s = RT_KEY_FALLBACK;
    ERR_EQ(bearer(KEY_A_HASHED, &s), 0);
    RT_ASSERT_INT_EQ(s, RT_KEY_CURRENT);
}

RT_TEST(bearer_plain_fallback)
{
    rt_key_slot_t s = RT_KEY_CURRENT;
    ERR_EQ(bearer(KEY_B, &s), 0);
    RT_ASSERT_INT_EQ(s, RT_KEY_FALLBACK);
}

RT_TEST(bearer_hashed_fallback)
{
    rt_key_slot_t s = RT_KEY_CURRENT;
    ERR_EQ(bearer(KEY_B_HASHED, &s), 0);
    RT_ASSERT_INT_EQ(s, RT_KEY_FALLBACK);
}

RT_TEST(bearer_wrong)
{
    char longer[1024];
    rt_keyring_t *ring = ring_hs();

    ERR_EQ(bearer("signkey-test-" HEX_B "00", NULL), RT_TOK_EKEY_MISMATCH);
    ERR_EQ(bearer(KEY_A "0", NULL), RT_TOK_EKEY_MISMATCH);
    ERR_EQ(bearer("signkey-prod-" HEX_A, NULL), RT_TOK_EKEY_MISMATCH);
    ERR_EQ(bearer("signkey-test-", NULL), RT_TOK_EKEY_MISMATCH);
    ERR_EQ(bearer("", NULL), RT_TOK_EKEY_MISMATCH);
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    ERR_EQ(bearer(longer, NULL), RT_TOK_EKEY_MISMATCH);
    /* a prefix of the key padded with NULs must not match the zero-padded buffer */
    ERR_EQ(rt_keyring_check_bearer(ring, (rt_slice_t){KEY_A "\0\0", sizeof KEY_A + 1}, NULL),
           RT_TOK_EKEY_MISMATCH);
    ERR_EQ(rt_keyring_check_bearer(ring, (rt_slice_t){KEY_A, sizeof KEY_A - 2}, NULL),
           RT_TOK_EKEY_MISMATCH);
    /* B is not in this ring at all */
    ERR_EQ(rt_keyring_check_bearer(ring, rt_slice_cstr(KEY_B), NULL), RT_TOK_EKEY_MISMATCH);
    rt_keyring_free(ring);
}

RT_TEST(bearer_no_key)
{
    rt_keyring_t *ring = ring_with(NULL, 0, NULL, 0);
    ERR_EQ(rt_keyring_check_bearer(ring, rt_slice_cstr(KEY_A), NULL), RT_TOK_ENOKEY);
    rt_keyring_free(ring);
}

/* ---- signing keys ------------------------------------------------------------------- */

RT_TEST(hashed_key_known_answer)
{
    char out[RT_TOK_HASHED_KEY_MAX];

    RT_ASSERT_INT_EQ(rt_tokens_init(), 0);
    RT_ASSERT_INT_EQ(rt_signing_key_hash(rt_slice_cstr(KEY_A), out, sizeof out),
                     strlen(KEY_A_HASHED));
    RT_ASSERT_STR_EQ(out, KEY_A_HASHED);
    RT_ASSERT_INT_EQ(rt_signing_key_hash(rt_slice_cstr(KEY_B), out, sizeof out),
                     strlen(KEY_B_HASHED));
    RT_ASSERT_STR_EQ(out, KEY_B_HASHED);
    /* upper-case hex decodes to the same bytes, so hashes the same */
    RT_ASSERT(rt_signing_key_hash(rt_slice_cstr("signkey-test-"
                                                "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
                                                "0123456789ABCDEF"),
                                  out, sizeof out) > 0);
    RT_ASSERT_STR_EQ(out, KEY_A_HASHED);
    ERR_EQ(rt_signing_key_hash(rt_slice_cstr(KEY_A), out, 10), RT_TOK_EINVAL);
    ERR_EQ(rt_signing_key_hash(rt_slice_cstr("nope"), out, sizeof out), RT_TOK_EKEY_FORMAT);
}

RT_TEST(key_validate)
{
    char sk_short[128], sk_long[1024];

    RT_ASSERT_INT_EQ(rt_tokens_init(), 0);
    ERR_EQ(rt_signing_key_validate(rt_slice_cstr(KEY_A)), 0);
    ERR_EQ(rt_signing_key_validate(rt_slice_cstr("signkey-prod_2-" HEX_A)), 0);
    ERR_EQ(rt_signing_key_validate(rt_slice_cstr("signkey" HEX_A)), RT_TOK_EKEY_FORMAT);
    ERR_EQ(rt_signing_key_validate(rt_slice_cstr("sigkey-test-" HEX_A)), RT_TOK_EKEY_FORMAT);
    ERR_EQ(rt_signing_key_validate(rt_slice_cstr("signkey-test" HEX_A)), RT_TOK_EKEY_FORMAT);
    ERR_EQ(rt_signing_key_validate(rt_slice_cstr("")), RT_TOK_EKEY_FORMAT);
    ERR_EQ(rt_signing_key_validate(rt_slice_cstr("signkey--" HEX_A)), RT_TOK_EKEY_ENV);
    ERR_EQ(rt_signing_key_validate(rt_slice_cstr("signkey-Prod-" HEX_A)), RT_TOK_EKEY_ENV);
    ERR_EQ(rt_signing_key_validate(rt_slice_cstr(
               "signkey-"
               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-" HEX_A)),
           RT_TOK_EKEY_ENV);
    ERR_EQ(rt_signing_key_validate(rt_slice_cstr("signkey-test-")), RT_TOK_EKEY_HEX);
    ERR_EQ(rt_signing_key_validate(rt_slice_cstr("signkey-test-" HEX_A "0")), RT_TOK_EKEY_HEX);
    ERR_EQ(rt_signing_key_validate(rt_slice_cstr("signkey-test-" HEX_A "zz")), RT_TOK_EKEY_HEX);
    ERR_EQ(rt_signing_key_validate(rt_slice_cstr("signkey-test-x-" HEX_A)), RT_TOK_EKEY_HEX);
    snprintf(sk_short, sizeof sk_short, "signkey-test-%.62s", HEX_A);
    ERR_EQ(rt_signing_key_validate(rt_slice_cstr(sk_short)), RT_TOK_EKEY_SHORT);
    snprintf(sk_long, sizeof sk_long, "signkey-test-%s%s%s%s%s%s%s%s00", HEX_A, HEX_A, HEX_A, HEX_A,
             HEX_A, HEX_A, HEX_A, HEX_A);
    ERR_EQ(rt_signing_key_validate(rt_slice_cstr(sk_long)), RT_TOK_EKEY_LONG);
    sk_long[strlen(sk_long) - 2] = '\0'; /* exactly 256 bytes */
    ERR_EQ(rt_signing_key_validate(rt_slice_cstr(sk_long)), 0);
    /* a bad key leaves the ring as it was */
    {
        rt_keyring_t *ring = ring_hs();
        ERR_EQ(
            rt_keyring_set_signing_key(ring, RT_KEY_CURRENT, rt_slice_cstr(sk_short), RT_ALG_HS256),
            RT_TOK_EKEY_SHORT);
        ERR_EQ(rt_keyring_check_bearer(ring, rt_slice_cstr(KEY_A), NULL), 0);
        rt_keyring_free(ring);
    }
}

RT_TEST(key_generate)
{
    char a[128], b[128];

    RT_ASSERT_INT_EQ(rt_tokens_init(), 0);
    RT_ASSERT_INT_EQ(rt_signing_key_generate("dev", a, sizeof a), 8 + 3 + 1 + 64);
    RT_ASSERT_INT_EQ(rt_signing_key_generate("dev", b, sizeof b), 8 + 3 + 1 + 64);
    RT_ASSERT(strncmp(a, "signkey-dev-", 12) == 0);
    RT_ASSERT(strcmp(a, b) != 0);
    ERR_EQ(rt_signing_key_validate(rt_slice_cstr(a)), 0);
    ERR_EQ(rt_signing_key_generate("Dev", a, sizeof a), RT_TOK_EKEY_ENV);
    ERR_EQ(rt_signing_key_generate("dev", a, 76), RT_TOK_EINVAL);
}

RT_TEST(alg_names)
{
    RT_ASSERT_STR_EQ(rt_alg_name(RT_ALG_HS256), "HS256");
    RT_ASSERT_STR_EQ(rt_alg_name(RT_ALG_EDDSA), "EdDSA");
    RT_ASSERT_INT_EQ(rt_alg_parse(rt_slice_cstr("HS256")), RT_ALG_HS256);
    RT_ASSERT_INT_EQ(rt_alg_parse(rt_slice_cstr("EdDSA")), RT_ALG_EDDSA);
    RT_ASSERT_INT_EQ(rt_alg_parse(rt_slice_cstr("hs256")), -1);
    RT_ASSERT_INT_EQ(rt_alg_parse(rt_slice_cstr("none")), -1);
}

RT_TEST(error_table)
{
    static const int codes[] = {
#define RT_TOK_XX(name, code, id, text) code,
        RT_TOK_ERRNO_MAP(RT_TOK_XX)
#undef RT_TOK_XX
    };
    size_t n = sizeof codes / sizeof codes[0];

    for (size_t i = 0; i < n; i++) {
        RT_ASSERT(codes[i] < 0);
        RT_ASSERT(strcmp(rt_tok_errname(codes[i]), "unknown_error") != 0);
        RT_ASSERT(strcmp(rt_tok_strerror(codes[i]), "unknown error") != 0);
        for (size_t j = 0; j < i; j++) {
            RT_ASSERT(codes[i] != codes[j]);
            RT_ASSERT(strcmp(rt_tok_errname(codes[i]), rt_tok_errname(codes[j])) != 0);
        }
    }
    RT_ASSERT_STR_EQ(rt_tok_errname(RT_TOK_EEXPIRED), "token_expired");
    RT_ASSERT_STR_EQ(rt_tok_errname(0), "ok");
    RT_ASSERT_STR_EQ(rt_tok_errname(-9999), "unknown_error");
}

/* ---- names and grants ---------------------------------------------------------------- */

static int name(const char *s, size_t len)
{
    return rt_name_validate((rt_slice_t){s, len}, 256);
}
#define NAME(lit) name((lit), sizeof(lit) - 1)

RT_TEST(name_validate_ok)
{
    ERR_EQ(NAME("user:42"), 0);
    ERR_EQ(NAME("a"), 0);
    ERR_EQ(NAME("*"), 0);
    ERR_EQ(NAME("caf\xc3\xa9"), 0);      /* é */
    ERR_EQ(NAME("\xc2\xa0"), 0);         /* U+00A0, first after C1 */
    ERR_EQ(NAME("\xe2\x82\xac"), 0);     /* € */
    ERR_EQ(NAME("\xef\xbf\xbd"), 0);     /* U+FFFD */
    ERR_EQ(NAME("\xf0\x9f\x98\x80"), 0); /* U+1F600 */
    ERR_EQ(NAME("\xf4\x8f\xbf\xbf"), 0); /* U+10FFFF */
    ERR_EQ(NAME("\xed\x9f\xbf"), 0);     /* U+D7FF, last before surrogates */
    ERR_EQ(NAME("a b ~"), 0);
}

RT_TEST(name_validate_empty)
{
    ERR_EQ(NAME(""), RT_TOK_ENAME_EMPTY);
    ERR_EQ(rt_name_validate((rt_slice_t){NULL, 0}, 256), RT_TOK_ENAME_EMPTY);
}

RT_TEST(name_validate_too_long)
{
    char buf[300];
    memset(buf, 'x', sizeof buf);
    ERR_EQ(rt_name_validate((rt_slice_t){buf, 256}, 256), 0);
    ERR_EQ(rt_name_validate((rt_slice_t){buf, 257}, 256), RT_TOK_ENAME_LONG);
    ERR_EQ(rt_name_validate((rt_slice_t){buf, 5}, 4), RT_TOK_ENAME_LONG);
}

RT_TEST(name_validate_control_chars)
{
    ERR_EQ(NAME("a\x00"
                "b"),
           RT_TOK_ENAME_CHARS);
    ERR_EQ(NAME("a\nb"), RT_TOK_ENAME_CHARS);
    ERR_EQ(NAME("\x1f"), RT_TOK_ENAME_CHARS);
    ERR_EQ(NAME("\x7f"), RT_TOK_ENAME_CHARS);
    ERR_EQ(NAME("\xc2\x80"), RT_TOK_ENAME_CHARS); /* U+0080, C1 */
    ERR_EQ(NAME("\xc2\x85"), RT_TOK_ENAME_CHARS); /* NEL */
    ERR_EQ(NAME("\xc2\x9f"), RT_TOK_ENAME_CHARS); /* last C1 */
}

RT_TEST(name_validate_bad_utf8)
{
    ERR_EQ(NAME("\x80"), RT_TOK_ENAME_CHARS);             /* stray continuation */
    ERR_EQ(NAME("\xc0\xaf"), RT_TOK_ENAME_CHARS);         /* overlong '/' */
    ERR_EQ(NAME("\xc1\xbf"), RT_TOK_ENAME_CHARS);         /* overlong */
    ERR_EQ(NAME("\xe0\x80\xaf"), RT_TOK_ENAME_CHARS);     /* overlong 3-byte */
    ERR_EQ(NAME("\xe0\x9f\xbf"), RT_TOK_ENAME_CHARS);     /* overlong 3-byte, top */
    ERR_EQ(NAME("\xf0\x80\x80\xaf"), RT_TOK_ENAME_CHARS); /* overlong 4-byte */
    ERR_EQ(NAME("\xf0\x8f\xbf\xbf"), RT_TOK_ENAME_CHARS); /* overlong 4-byte, top */
    ERR_EQ(NAME("\xed\xa0\x80"), RT_TOK_ENAME_CHARS);     /* U+D800 */
    ERR_EQ(NAME("\xed\xbf\xbf"), RT_TOK_ENAME_CHARS);     /* U+DFFF */
    ERR_EQ(NAME("\xf4\x90\x80\x80"), RT_TOK_ENAME_CHARS); /* U+110000 */
    ERR_EQ(NAME("\xf5\x80\x80\x80"), RT_TOK_ENAME_CHARS);
    ERR_EQ(NAME("\xff"), RT_TOK_ENAME_CHARS);
    ERR_EQ(NAME("\xe2\x82"), RT_TOK_ENAME_CHARS);       /* truncated */
    ERR_EQ(NAME("\xe2\x28\xa1"), RT_TOK_ENAME_CHARS);   /* bad continuation */
    ERR_EQ(NAME("ok\xf0\x9f\x98"), RT_TOK_ENAME_CHARS); /* truncated at the end */
}

static rt_claims_t grants_claims(rt_topic_t *t, size_t n)
{
    rt_claims_t c;
    memset(&c, 0, sizeof c);
    c.topics = t;
    c.ntopics = n;
    return c;
}

RT_TEST(grants_exact)
{
    rt_topic_t t[] = {{"user:42", "ai", "run"}, {"user:7", "status", "run"}};
    rt_claims_t c = grants_claims(t, 2);

    RT_ASSERT(rt_claims_grants(&c, RT_SLICE_LIT("user:42"), RT_SLICE_LIT("ai")));
    RT_ASSERT(rt_claims_grants(&c, RT_SLICE_LIT("user:7"), RT_SLICE_LIT("status")));
    RT_ASSERT(!rt_claims_grants(&c, RT_SLICE_LIT("user:42"), RT_SLICE_LIT("status")));
    RT_ASSERT(!rt_claims_grants(&c, RT_SLICE_LIT("user:4"), RT_SLICE_LIT("ai")));
    RT_ASSERT(!rt_claims_grants(&c, RT_SLICE_LIT("user:420"), RT_SLICE_LIT("ai")));
    RT_ASSERT(!rt_claims_grants(&c, RT_SLICE_LIT("user:42"), RT_SLICE_LIT("AI")));
    RT_ASSERT(!rt_claims_grants(&c, RT_SLICE_LIT("user:42"), RT_SLICE_LIT("*")));
    RT_ASSERT(!rt_claims_grants(&c, RT_SLICE_LIT("user:42"), RT_SLICE_LIT("ai ")));
    RT_ASSERT(!rt_claims_grants(&c, (rt_slice_t){"user:42\0x", 9}, RT_SLICE_LIT("ai")));
}

RT_TEST(grants_wildcard)
{
    rt_topic_t t[] = {{"user:42", "*", "run"}};
    rt_claims_t c = grants_claims(t, 1);

    RT_ASSERT(rt_claims_grants(&c, RT_SLICE_LIT("user:42"), RT_SLICE_LIT("ai")));
    RT_ASSERT(rt_claims_grants(&c, RT_SLICE_LIT("user:42"), RT_SLICE_LIT("*")));
    RT_ASSERT(!rt_claims_grants(&c, RT_SLICE_LIT("user:43"), RT_SLICE_LIT("ai")));
    RT_ASSERT(!rt_claims_grants(&c, RT_SLICE_LIT("*"), RT_SLICE_LIT("ai")));
    c.ntopics = 0;
    RT_ASSERT(!rt_claims_grants(&c, RT_SLICE_LIT("user:42"), RT_SLICE_LIT("ai")));
}

/* ---- mint refusals ------------------------------------------------------------------- */

static int mint_rc(const rt_token_opts_t *opts, const rt_mint_req_t *req)
{
    rt_keyring_t *ring = ring_hs();
    char *jwt = (char *)1;
    int rc = rt_token_mint(ring, opts, req, NOW, &jwt, NULL);
    if (rc != 0)
        RT_ASSERT(jwt == NULL);
    free(jwt);
    rt_keyring_free(ring);
    return rc;
}

RT_TEST(mint_ttl_above_max)
{
    rt_mint_req_t req = {.topics = &default_topic, .ntopics = 1, .ttl = 3601};
    ERR_EQ(mint_rc(NULL, &req), RT_TOK_ELIFETIME);
    req.ttl = 3600;
    ERR_EQ(mint_rc(NULL, &req), 0);
    req.ttl = -1;
    ERR_EQ(mint_rc(NULL, &req), RT_TOK_EINVAL);
}

RT_TEST(mint_refusals)
{
    rt_topic_ref_t bad[] = {{"user:42", "", NULL}};
    rt_topic_ref_t ctl[] = {{"user\n42", "ai", NULL}};
    rt_topic_ref_t many[3] = {{"a", "x", NULL}, {"b", "y", NULL}, {"c", "z", NULL}};
    rt_mint_req_t req = {.topics = bad, .ntopics = 1};
    rt_token_opts_t o;

    ERR_EQ(mint_rc(NULL, &req), RT_TOK_ENAME_EMPTY);
    req.topics = ctl;
    ERR_EQ(mint_rc(NULL, &req), RT_TOK_ENAME_CHARS);
    req.topics = many;
    req.ntopics = 0;
    ERR_EQ(mint_rc(NULL, &req), RT_TOK_ETOPICS_EMPTY);
    {
        rt_topic_ref_t admin[] = {{"a", "x", "admin"}}, event[] = {{"a", "x", "event"}};
        rt_mint_req_t kreq = {.topics = admin, .ntopics = 1};
        ERR_EQ(mint_rc(NULL, &kreq), RT_TOK_ETOPIC_KIND);
        kreq.topics = event;
        ERR_EQ(mint_rc(NULL, &kreq), RT_TOK_OK);
    }
    rt_token_opts_default(&o);
    o.max_topics = 2;
    req.ntopics = 3;
    ERR_EQ(mint_rc(&o, &req), RT_TOK_ETOPICS_MANY);
    rt_token_opts_default(&o);
    o.max_token_bytes = 100; /* a token it could not verify is not minted */
    req.ntopics = 1;
    ERR_EQ(mint_rc(&o, &req), RT_TOK_ETOO_LARGE);
    req.sub = "bad\x01sub";
    ERR_EQ(mint_rc(NULL, &req), RT_TOK_ENAME_CHARS);
    {
        rt_keyring_t *empty = ring_with(NULL, 0, NULL, 0);
        char *jwt = NULL;
        req.sub = NULL;
        ERR_EQ(rt_token_mint(empty, NULL, &req, NOW, &jwt, NULL), RT_TOK_ENOKEY);
        rt_keyring_free(empty);
    }
}

/* ---- base64url ----------------------------------------------------------------------- */

static int b64(const char *s)
{
    uint8_t out[64];
    return rt_b64url_decode(rt_slice_cstr(s), out, sizeof out);
}

RT_TEST(b64url_roundtrip)
{
    uint8_t in[40], out[40];
    char enc[64];

    RT_ASSERT_INT_EQ(rt_tokens_init(), 0);
    for (size_t n = 0; n <= sizeof in; n++) {
        randombytes_buf(in, n);
        RT_ASSERT_INT_EQ(rt_b64url_encode(in, n, enc, sizeof enc), rt_b64url_encoded_len(n));
        RT_ASSERT_INT_EQ(rt_b64url_decode(rt_slice_cstr(enc), out, sizeof out), n);
        RT_ASSERT(memcmp(in, out, n) == 0);
    }
    rt_b64url_encode((const uint8_t *)"\xfb\xff", 2, enc, sizeof enc);
    RT_ASSERT_STR_EQ(enc, "-_8"); /* the URL-safe alphabet */
    ERR_EQ(rt_b64url_encode((const uint8_t *)"abc", 3, enc, 4), RT_TOK_EINVAL);
    ERR_EQ(rt_b64url_decode(rt_slice_cstr("YWJj"), out, 2), RT_TOK_EINVAL);
}

RT_TEST(b64url_strict)
{
    ERR_EQ(b64("YQ"), 1);
    ERR_EQ(b64("YWI"), 2);
    ERR_EQ(b64("YQ=="), RT_TOK_EBASE64); /* padding */
    ERR_EQ(b64("YWI="), RT_TOK_EBASE64); /* padding */
    ERR_EQ(b64("+/8"), RT_TOK_EBASE64);  /* standard alphabet */
    ERR_EQ(b64("-_8"), 2);
    ERR_EQ(b64("YW Jj"), RT_TOK_EBASE64); /* whitespace */
    ERR_EQ(b64("YWJj\n"), RT_TOK_EBASE64);
    ERR_EQ(b64("YR"), RT_TOK_EBASE64);    /* 4 trailing bits not zero */
    ERR_EQ(b64("YWJ"), RT_TOK_EBASE64);   /* 2 trailing bits not zero */
    ERR_EQ(b64("YWJjZ"), RT_TOK_EBASE64); /* a lone character is never a byte */
    ERR_EQ(b64("YW\x80j"), RT_TOK_EBASE64);
    ERR_EQ(rt_b64url_decode((rt_slice_t){"YW\0j", 4}, NULL, 0), RT_TOK_EINVAL);
    {
        uint8_t out[4];
        ERR_EQ(rt_b64url_decode((rt_slice_t){"YW\0j", 4}, out, sizeof out), RT_TOK_EBASE64);
    }
}

/* ---- verify refusals: one per code ----------------------------------------------------- */

RT_TEST(verify_too_large)
{
    rt_keyring_t *ring = ring_hs();
    char *jwt = mint(ring, NULL, NOW);
    rt_token_opts_t o;

    rt_token_opts_default(&o);
    o.max_token_bytes = strlen(jwt);
    ERR_EQ(verify(ring, &o, jwt, NOW), 0);
    o.max_token_bytes = strlen(jwt) - 1;
    ERR_EQ(verify(ring, &o, jwt, NOW), RT_TOK_ETOO_LARGE);
    free(jwt);
    rt_keyring_free(ring);
}

RT_TEST(verify_malformed)
{
    rt_keyring_t *ring = ring_hs();
    char *jwt = mint(ring, NULL, NOW), buf[2048];

    ERR_EQ(verify(ring, NULL, "", NOW), RT_TOK_EMALFORMED);
    ERR_EQ(verify(ring, NULL, "abc", NOW), RT_TOK_EMALFORMED);
    ERR_EQ(verify(ring, NULL, "a.b", NOW), RT_TOK_EMALFORMED);
    ERR_EQ(verify(ring, NULL, "..", NOW), RT_TOK_EMALFORMED);
    ERR_EQ(verify(ring, NULL, ".e30.", NOW), RT_TOK_EMALFORMED);
    snprintf(buf, sizeof buf, "%s.", jwt);
    ERR_EQ(verify(ring, NULL, buf, NOW), RT_TOK_EMALFORMED);
    snprintf(buf, sizeof buf, "%s.e30", jwt);
    ERR_EQ(verify(ring, NULL, buf, NOW), RT_TOK_EMALFORMED);
    *strrchr(jwt, '.') = '\0';
    ERR_EQ(verify(ring, NULL, jwt, NOW), RT_TOK_EMALFORMED);
    free(jwt);
    rt_keyring_free(ring);
}

/* Replace the character at `pos` of a fresh HS256 token, or insert one. */
static int verify_edited(size_t (*where)(const char *), const char *insert, char replace)
{
    rt_keyring_t *ring = ring_hs();
    char *jwt = mint(ring, NULL, NOW), buf[2048];
    size_t pos = where(jwt);
    int rc;

    if (insert)
        snprintf(buf, sizeof buf, "%.*s%s%s", (int)pos, jwt, insert, jwt + pos);
    else {
        snprintf(buf, sizeof buf, "%s", jwt);
        buf[pos] = replace;
    }
    rc = verify(ring, NULL, buf, NOW);
    free(jwt);
    rt_keyring_free(ring);
    return rc;
}

static size_t end_of_header(const char *jwt)
{
    return (size_t)(strchr(jwt, '.') - jwt);
}
static size_t end_of_payload(const char *jwt)
{
    return (size_t)(strrchr(jwt, '.') - jwt);
}
static size_t first_char(const char *jwt)
{
    (void)jwt;
    return 0;
}
static size_t end_of_token(const char *jwt)
{
    return strlen(jwt);
}

RT_TEST(verify_base64_padding)
{
    /* the minted header is 4-aligned or not; padding either way is refused */
    ERR_EQ(verify_edited(end_of_payload, "=", 0), RT_TOK_EBASE64);
    ERR_EQ(verify_edited(end_of_token, "=", 0), RT_TOK_EBASE64);
    ERR_EQ(verify_edited(end_of_header, "==", 0), RT_TOK_EBASE64);
}

RT_TEST(verify_base64_alphabet)
{
    ERR_EQ(verify_edited(first_char, NULL, '+'), RT_TOK_EBASE64);
    ERR_EQ(verify_edited(first_char, NULL, '/'), RT_TOK_EBASE64);
    ERR_EQ(verify_edited(end_of_payload, " ", 0), RT_TOK_EBASE64);
    ERR_EQ(verify_edited(end_of_header, "\n", 0), RT_TOK_EBASE64);
    ERR_EQ(verify_edited(end_of_token, "\r\n", 0), RT_TOK_EBASE64);
}

RT_TEST(verify_base64_trailing_bits)
{
    rt_keyring_t *ring = ring_hs();
    char *jwt = mint(ring, NULL, NOW);
    size_t n = strlen(jwt);
    /* an HS256 signature is 32 bytes: 43 characters, the last holding 2 unused
     * bits. Setting one of them changes the text but not the decoded bytes. */
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int v = (int)(strchr(alpha, jwt[n - 1]) - alpha);

    RT_ASSERT_INT_EQ(v & 3, 0);
    jwt[n - 1] = alpha[v | 1];
    ERR_EQ(verify(ring, NULL, jwt, NOW), RT_TOK_EBASE64);
    free(jwt);
    rt_keyring_free(ring);
}

RT_TEST(verify_header_not_json_object)
{
    ERR_EQ(verify_header_text("not json"), RT_TOK_EJSON);
    ERR_EQ(verify_header_text("[\"HS256\"]"), RT_TOK_EJSON);
    ERR_EQ(verify_header_text("{\"alg\":\"HS256\""), RT_TOK_EJSON);
    ERR_EQ(verify_header_text("{\"alg\":\"HS256\"}{}"), RT_TOK_EJSON); /* trailing JSON */
    ERR_EQ(verify_header_text("{\"alg\":\"HS256\"} x"), RT_TOK_EJSON); /* trailing bytes */
}

RT_TEST(verify_payload_not_json_object)
{
    ERR_EQ(verify_payload_text("not json"), RT_TOK_EJSON);
    ERR_EQ(verify_payload_text("[1,2]"), RT_TOK_EJSON);
    ERR_EQ(verify_payload_text("\"str\""), RT_TOK_EJSON);
    ERR_EQ(verify_payload_text("{\"iss\":\"rtgw\"} trailing"), RT_TOK_EJSON);
    ERR_EQ(verify_payload_text("{\"iss\":\"rtgw\"}{\"iss\":\"x\"}"), RT_TOK_EJSON);
    ERR_EQ(verify_payload_text("{\"iss\":\"\\ud800\"}"), RT_TOK_EJSON);   /* lone surrogate */
    ERR_EQ(verify_payload_text("{\"iss\":\"\xc0\xaf\"}"), RT_TOK_EJSON);  /* overlong */
    ERR_EQ(verify_payload_text("{\"iss\":\"a\\u0000b\"}"), RT_TOK_EJSON); /* NUL */
}

RT_TEST(verify_header_duplicate_key)
{
    ERR_EQ(verify_header_text("{\"alg\":\"HS256\",\"alg\":\"HS256\"}"), RT_TOK_EDUPKEY);
    ERR_EQ(verify_header_text("{\"alg\":\"none\",\"alg\":\"HS256\"}"), RT_TOK_EDUPKEY);
}

RT_TEST(verify_payload_duplicate_key)
{
    char *p = dump(good_claims()), buf[1024];

    /* the second "sub" would win in many parsers */
    snprintf(buf, sizeof buf, "%.*s,\"sub\":\"admin\"}", (int)strlen(p) - 1, p);
    ERR_EQ(verify_payload_text(buf), RT_TOK_EDUPKEY);
    ERR_EQ(verify_payload_text("{\"topics\":[{\"channel\":\"a\",\"channel\":\"b\"}]}"),
           RT_TOK_EDUPKEY);
    free(p);
}

RT_TEST(verify_header_bad_typ_crit_types)
{
    rt_keyring_t *ring = ring_hs();
    const char *kid = rt_keyring_kid(ring, RT_KEY_CURRENT);
    char h[256];

    ERR_EQ(verify_header_text("{\"alg\":\"HS256\",\"typ\":\"JWS\"}"), RT_TOK_ETYP);
    ERR_EQ(verify_header_text("{\"alg\":\"HS256\",\"typ\":\"JWTX\"}"), RT_TOK_ETYP);
    ERR_EQ(verify_header_text("{\"alg\":\"HS256\",\"typ\":1}"), RT_TOK_ETYP);
    ERR_EQ(verify_header_text("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}"), RT_TOK_ETYP);
    ERR_EQ(verify_header_text("{\"alg\":\"HS256\",\"crit\":[]}"), RT_TOK_ETYP);
    ERR_EQ(verify_header_text("{\"alg\":[\"HS256\"]}"), RT_TOK_ETYP);
    ERR_EQ(verify_header_text("{\"alg\":\"HS256\",\"kid\":7}"), RT_TOK_ETYP);
    ERR_EQ(verify_header_text("{\"alg\":\"HS256\",\"kid\":null}"), RT_TOK_ETYP);
    ERR_EQ(verify_header_text("{\"alg\":\"HS256\",\"typ\":\"application/jwt\"}"), RT_TOK_ETYP);
    snprintf(h, sizeof h, "{\"alg\":\"HS256\",\"kid\":\"%s\",\"typ\":\"jwt\"}", kid);
    ERR_EQ(verify_header_text(h), 0); /* media types compare without case */
    /* typ is optional, extra fields are ignored */
    snprintf(h, sizeof h, "{\"alg\":\"HS256\",\"kid\":\"%s\",\"x5u\":\"ignored\"}", kid);
    ERR_EQ(verify_header_text(h), 0);
    rt_keyring_free(ring);
}

RT_TEST(verify_alg_none)
{
    rt_keyring_t *ring = ring_hs();
    const char *kid = rt_keyring_kid(ring, RT_KEY_CURRENT);
    char *p = dump(good_claims()), h[256], jwt[2048], hb[512], pb[1024];
    static const char *spellings[] = {"none", "None", "NONE", "nOnE"};

    for (size_t i = 0; i < 4; i++) {
        snprintf(h, sizeof h, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", spellings[i], kid);
        rt_b64url_encode((const uint8_t *)h, strlen(h), hb, sizeof hb);
        rt_b64url_encode((const uint8_t *)p, strlen(p), pb, sizeof pb);
        snprintf(jwt, sizeof jwt, "%s.%s.", hb, pb);
        ERR_EQ(verify(ring, NULL, jwt, NOW), RT_TOK_EALG_NONE);
        /* even with a valid-looking signature appended */
        snprintf(jwt, sizeof jwt, "%s.%s.AAAA", hb, pb);
        ERR_EQ(verify(ring, NULL, jwt, NOW), RT_TOK_EALG_NONE);
    }
    free(p);
    rt_keyring_free(ring);
}

RT_TEST(verify_alg_not_pinned)
{
    rt_keyring_t *hs = ring_hs();
    rt_keyring_t *ed = ring_with(KEY_A, RT_ALG_EDDSA, NULL, 0);
    char *p = dump(good_claims()), *h, *jwt;

    /* HS256-pinned key, token claims EdDSA (and is validly Ed25519-signed) */
    h = dump(good_header(hs, RT_KEY_CURRENT, "EdDSA"));
    jwt = forge_raw(hs, RT_KEY_CURRENT, RT_ALG_EDDSA, h, p);
    ERR_EQ(verify(hs, NULL, jwt, NOW), RT_TOK_EALG);
    free(h);
    free(jwt);
    /* the classic confusion: EdDSA key, HS256 token keyed with the public key */
    h = dump(good_header(ed, RT_KEY_CURRENT, "HS256"));
    {
        json_t *hj = json_loads(h, 0, NULL);
        char *hs_h = dump(hj);
        char hb[512], pb[1024], input[2048], sb[64], tok[2200];
        uint8_t sig[64];
        size_t sl;
        rt_b64url_encode((const uint8_t *)hs_h, strlen(hs_h), hb, sizeof hb);
        rt_b64url_encode((const uint8_t *)p, strlen(p), pb, sizeof pb);
        snprintf(input, sizeof input, "%s.%s", hb, pb);
        rt__jws_sign(RT_ALG_HS256, ed->slot[RT_KEY_CURRENT].ed_pk, 32, (const uint8_t *)input,
                     strlen(input), sig, &sl);
        rt_b64url_encode(sig, sl, sb, sizeof sb);
        snprintf(tok, sizeof tok, "%s.%s", input, sb);
        ERR_EQ(verify(ed, NULL, tok, NOW), RT_TOK_EALG);
        free(hs_h);
    }
    free(h);
    /* unknown algorithms and a missing alg */
    ERR_EQ(verify_header_text("{\"alg\":\"RS256\"}"), RT_TOK_EALG);
    ERR_EQ(verify_header_text("{\"alg\":\"hs256\"}"), RT_TOK_EALG);
    ERR_EQ(verify_header_text("{\"alg\":\"\"}"), RT_TOK_EALG);
    ERR_EQ(verify_header_text("{\"typ\":\"JWT\"}"), RT_TOK_EALG);
    free(p);
    rt_keyring_free(hs);
    rt_keyring_free(ed);
}

RT_TEST(verify_unknown_kid)
{
    ERR_EQ(verify_header_text("{\"alg\":\"HS256\",\"kid\":\"0000000000000000\"}"), RT_TOK_EKID);
    ERR_EQ(verify_header_text("{\"alg\":\"HS256\",\"kid\":\"\"}"), RT_TOK_EKID);
    ERR_EQ(verify_header_text("{\"alg\":\"HS256\",\"kid\":\"x\"}"), RT_TOK_EKID);
    {
        char h[200], k[101];
        memset(k, 'a', 100);
        k[100] = '\0';
        snprintf(h, sizeof h, "{\"alg\":\"HS256\",\"kid\":\"%s\"}", k);
        ERR_EQ(verify_header_text(h), RT_TOK_EKID);
    }
}

RT_TEST(verify_bad_signature)
{
    rt_keyring_t *ring = ring_hs();
    rt_keyring_t *other = ring_with(KEY_B, RT_ALG_HS256, NULL, 0);
    rt_keyring_t *ed = ring_with(KEY_A, RT_ALG_EDDSA, NULL, 0);
    char *jwt = mint(ring, NULL, NOW), *edjwt = mint(ed, NULL, NOW), buf[2048];
    char *sig = strrchr(jwt, '.') + 1;

    /* signature from a different key under this key's kid */
    {
        char *h = dump(good_header(ring, RT_KEY_CURRENT, "HS256")), *p = dump(good_claims());
        char *forged = forge_raw(other, RT_KEY_CURRENT, RT_ALG_HS256, h, p);
        ERR_EQ(verify(ring, NULL, forged, NOW), RT_TOK_ESIGNATURE);
        free(h);
        free(p);
        free(forged);
    }
    /* one flipped signature character (kept canonical: the first of 43) */
    snprintf(buf, sizeof buf, "%s", jwt);
    buf[sig - jwt] = sig[0] == 'A' ? 'B' : 'A';
    ERR_EQ(verify(ring, NULL, buf, NOW), RT_TOK_ESIGNATURE);
    /* truncated and empty signatures */
    snprintf(buf, sizeof buf, "%.*s", (int)(sig - jwt + 40), jwt);
    ERR_EQ(verify(ring, NULL, buf, NOW), RT_TOK_ESIGNATURE);
    snprintf(buf, sizeof buf, "%.*s", (int)(sig - jwt), jwt);
    ERR_EQ(verify(ring, NULL, buf, NOW), RT_TOK_ESIGNATURE);
    /* EdDSA: a flipped character in the middle */
    snprintf(buf, sizeof buf, "%s", edjwt);
    {
        char *s = strrchr(buf, '.') + 10;
        *s = *s == 'A' ? 'B' : 'A';
    }
    ERR_EQ(verify(ed, NULL, buf, NOW), RT_TOK_ESIGNATURE);
    /* a payload byte changed after signing */
    {
        char *h = dump(good_header(ring, RT_KEY_CURRENT, "HS256")), *p = dump(good_claims());
        char *a = forge_raw(ring, RT_KEY_CURRENT, RT_ALG_HS256, h, p);
        char *q = strstr(p, "user:42"), *b;
        q[5] = '9';
        b = forge_raw(ring, RT_KEY_CURRENT, RT_ALG_HS256, h, p);
        /* splice b's payload with a's signature */
        snprintf(buf, sizeof buf, "%.*s%s", (int)(strrchr(b, '.') - b), b, strrchr(a, '.'));
        ERR_EQ(verify(ring, NULL, buf, NOW), RT_TOK_ESIGNATURE);
        free(h);
        free(p);
        free(a);
        free(b);
    }
    free(jwt);
    free(edjwt);
    rt_keyring_free(ring);
    rt_keyring_free(other);
    rt_keyring_free(ed);
}

RT_TEST(verify_signature_before_claims)
{
    /* garbage claims under a bad signature report the signature, never the claims */
    rt_keyring_t *ring = ring_hs();
    rt_keyring_t *other = ring_with(KEY_B, RT_ALG_HS256, NULL, 0);
    char *h = dump(good_header(ring, RT_KEY_CURRENT, "HS256"));
    char *jwt = forge_raw(other, RT_KEY_CURRENT, RT_ALG_HS256, h, "{\"a\":1,\"a\":2}");

    ERR_EQ(verify(ring, NULL, jwt, NOW), RT_TOK_ESIGNATURE);
    free(jwt);
    jwt = forge_raw(other, RT_KEY_CURRENT, RT_ALG_HS256, h, "not json");
    ERR_EQ(verify(ring, NULL, jwt, NOW), RT_TOK_ESIGNATURE);
    free(jwt);
    free(h);
    rt_keyring_free(ring);
    rt_keyring_free(other);
}

RT_TEST(verify_expired)
{
    rt_keyring_t *ring = ring_hs();
    char *jwt = mint(ring, NULL, NOW);

    ERR_EQ(verify(ring, NULL, jwt, NOW + 60 + 29), 0);
    ERR_EQ(verify(ring, NULL, jwt, NOW + 60 + 30), RT_TOK_EEXPIRED);
    ERR_EQ(verify(ring, NULL, jwt, NOW + 100000), RT_TOK_EEXPIRED);
    free(jwt);
    rt_keyring_free(ring);
}

RT_TEST(verify_not_yet_valid)
{
    json_t *c = good_claims();
    json_object_set_new(c, "nbf", json_integer(NOW + 31));
    ERR_EQ(verify_claims(c, NULL, NOW), RT_TOK_ENOT_YET_VALID);
}

RT_TEST(verify_issued_in_future)
{
    rt_keyring_t *ring = ring_hs();
    char *jwt = mint(ring, NULL, NOW);

    ERR_EQ(verify(ring, NULL, jwt, NOW - 30), 0);
    ERR_EQ(verify(ring, NULL, jwt, NOW - 31), RT_TOK_EIAT_FUTURE);
    free(jwt);
    rt_keyring_free(ring);
}

RT_TEST(verify_wrong_issuer)
{
    json_t *c = good_claims();
    rt_token_opts_t o;

    json_object_set_new(c, "iss", json_string("someone-else"));
    ERR_EQ(verify_claims(c, NULL, NOW), RT_TOK_EISSUER);
    rt_token_opts_default(&o);
    o.issuer = "gw-eu";
    ERR_EQ(verify_claims(good_claims(), &o, NOW), RT_TOK_EISSUER);
    c = good_claims();
    json_object_set_new(c, "iss", json_string("rtgw\xc3\xa9"));
    ERR_EQ(verify_claims(c, NULL, NOW), RT_TOK_EISSUER);
}

RT_TEST(verify_missing_claim)
{
    static const char *required[] = {"iss", "sub", "iat", "exp", "jti", "env", "topics", "publish"};
    static const char *topic_fields[] = {"channel", "name", "kind"};

    for (size_t i = 0; i < 8; i++) {
        json_t *c = good_claims();
        json_object_del(c, required[i]);
        ERR_EQ(verify_claims(c, NULL, NOW), RT_TOK_ECLAIM_MISSING);
    }
    for (size_t i = 0; i < 3; i++) {
        json_t *c = good_claims();
        json_object_del(json_array_get(json_object_get(c, "topics"), 0), topic_fields[i]);
        ERR_EQ(verify_claims(c, NULL, NOW), RT_TOK_ECLAIM_MISSING);
    }
}

RT_TEST(verify_claim_type)
{
    struct {
        const char *key;
        json_t *value;
    } cases[] = {
        {"exp", json_string("1700000060")},
        {"exp", json_real(1700000060.0)},
        {"iat", json_true()},
        {"nbf", json_string("0")},
        {"iss", json_integer(1)},
        {"sub", json_null()},
        {"jti", json_array()},
        {"env", json_object()},
        {"topics", json_object()},
        {"topics", json_string("user:42/ai")},
        {"topics", json_pack("[s]", "ai")},
        {"topics", json_pack("[{s:i, s:s, s:s}]", "channel", 42, "name", "ai", "kind", "run")},
        {"topics", json_pack("[{s:s, s:n, s:s}]", "channel", "c", "name", "kind", "run")},
        {"publish", json_string("true")},
        {"publish", json_integer(1)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *c = good_claims();
        RT_ASSERT(cases[i].value != NULL);
        json_object_set_new(c, cases[i].key, cases[i].value);
        ERR_EQ(verify_claims(c, NULL, NOW), RT_TOK_ECLAIM_TYPE);
    }
}

RT_TEST(verify_wrong_env)
{
    json_t *c = good_claims();
    json_object_set_new(c, "env", json_string("prod"));
    ERR_EQ(verify_claims(c, NULL, NOW), RT_TOK_EENV);
}

static json_t *claims_with_topic(const char *channel, const char *name)
{
    json_t *c = good_claims();
    json_object_set_new(
        c, "topics",
        json_pack("[{s:s, s:s, s:s}]", "channel", channel, "name", name, "kind", "run"));
    return c;
}

RT_TEST(verify_name_empty)
{
    ERR_EQ(verify_claims(claims_with_topic("", "ai"), NULL, NOW), RT_TOK_ENAME_EMPTY);
    ERR_EQ(verify_claims(claims_with_topic("user:42", ""), NULL, NOW), RT_TOK_ENAME_EMPTY);
}

RT_TEST(verify_name_too_long)
{
    char longname[300];
    rt_token_opts_t o;

    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ERR_EQ(verify_claims(claims_with_topic("user:42", longname), NULL, NOW), RT_TOK_ENAME_LONG);
    rt_token_opts_default(&o);
    o.max_name_bytes = 6;
    ERR_EQ(verify_claims(claims_with_topic("user:42", "ai"), &o, NOW), RT_TOK_ENAME_LONG);
}

RT_TEST(verify_name_bad_chars)
{
    ERR_EQ(verify_claims(claims_with_topic("user:42", "a\x01"), NULL, NOW), RT_TOK_ENAME_CHARS);
    ERR_EQ(verify_claims(claims_with_topic("user\n42", "ai"), NULL, NOW), RT_TOK_ENAME_CHARS);
    ERR_EQ(verify_claims(claims_with_topic("user:42", "a\xc2\x85"), NULL, NOW), RT_TOK_ENAME_CHARS);
    ERR_EQ(verify_claims(claims_with_topic("user:42", "\x7f"), NULL, NOW), RT_TOK_ENAME_CHARS);
}

RT_TEST(verify_too_many_topics)
{
    json_t *c = good_claims(), *topics = json_array();
    rt_token_opts_t o;

    for (int i = 0; i < 65; i++)
        json_array_append_new(
            topics, json_pack("{s:s, s:s, s:s}", "channel", "c", "name", "n", "kind", "run"));
    json_object_set_new(c, "topics", topics);
    ERR_EQ(verify_claims(c, NULL, NOW), RT_TOK_ETOPICS_MANY);
    rt_token_opts_default(&o);
    o.max_topics = 1;
    c = good_claims();
    ERR_EQ(verify_claims(c, &o, NOW), 0);
    c = claims_with_topic("a", "b");
    json_array_append_new(json_object_get(c, "topics"),
                          json_pack("{s:s, s:s, s:s}", "channel", "c", "name", "n", "kind", "run"));
    ERR_EQ(verify_claims(c, &o, NOW), RT_TOK_ETOPICS_MANY);
}

RT_TEST(verify_invalid_arguments)
{
    rt_keyring_t *ring = ring_hs();
    rt_claims_t c;
    rt_token_opts_t o;

    ERR_EQ(rt_token_verify(NULL, NULL, RT_SLICE_LIT("a.b.c"), NOW, &c), RT_TOK_EINVAL);
    ERR_EQ(rt_token_verify(ring, NULL, RT_SLICE_LIT("a.b.c"), NOW, NULL), RT_TOK_EINVAL);
    ERR_EQ(rt_token_verify(ring, NULL, (rt_slice_t){NULL, 3}, NOW, &c), RT_TOK_EINVAL);
    rt_token_opts_default(&o);
    o.leeway = -1;
    ERR_EQ(rt_token_verify(ring, &o, RT_SLICE_LIT("a.b.c"), NOW, &c), RT_TOK_EINVAL);
    rt_keyring_free(ring);
}

/* A validly signed token claiming a lifetime this gateway would never mint
 * (exp - iat beyond max_ttl + leeway) is refused. */
RT_TEST(verify_refuses_lifetime_beyond_max)
{
    rt_token_opts_t o;
    rt_token_opts_default(&o);
    json_t *c = good_claims();
    json_object_set_new(c, "exp", json_integer(NOW + o.max_ttl + o.leeway));
    ERR_EQ(verify_claims(c, &o, NOW), 0);
    c = good_claims();
    json_object_set_new(c, "exp", json_integer(NOW + o.max_ttl + o.leeway + 1));
    ERR_EQ(verify_claims(c, &o, NOW), RT_TOK_ELIFETIME);
    c = good_claims();
    json_object_set_new(c, "iat", json_integer(INT64_MIN));
    json_object_set_new(c, "exp", json_integer(INT64_MAX));
    ERR_EQ(verify_claims(c, &o, NOW), RT_TOK_ELIFETIME);
}

/* Deep nesting in a token's header or payload is refused from a linear scan,
 * before jansson's recursive parser runs: 3,000 levels in a forged header
 * crashed the gateway on a connection thread's small stack. */
static char *nested(size_t depth, const char *inner)
{
    size_t il = strlen(inner);
    char *s = malloc(2 * depth + il + 1);
    RT_ASSERT(s != NULL);
    memset(s, '[', depth);
    memcpy(s + depth, inner, il);
    memset(s + depth + il, ']', depth);
    s[2 * depth + il] = 0;
    return s;
}

RT_TEST(verify_refuses_deep_json_before_parsing)
{
    char *deep = nested(1000, ""); /* within the default token size */
    ERR_EQ(verify_header_text(deep), RT_TOK_EJSON_DEPTH);
    ERR_EQ(verify_payload_text(deep), RT_TOK_EJSON_DEPTH);
    free(deep);
    /* exactly at the limit: parsed, and refused only for not being an object */
    char *edge = nested(RT_TOK_MAX_JSON_DEPTH, "");
    ERR_EQ(verify_header_text(edge), RT_TOK_EJSON);
    free(edge);
}

RT_TEST(json_depth_scan)
{
    RT_ASSERT_INT_EQ(rt_json_depth("", 0, 10), 0);
    RT_ASSERT_INT_EQ(rt_json_depth("\"[[[\"", 5, 10), 0);           /* inside a string */
    RT_ASSERT_INT_EQ(rt_json_depth("[\"\\\"[[\",[1]]", 12, 10), 2); /* escaped quote */
    RT_ASSERT_INT_EQ(rt_json_depth("{\"a\":[{},{\"b\":[]}]}", 19, 10), 4);
    RT_ASSERT_INT_EQ(rt_json_depth("[][][]", 6, 10), 1);
    RT_ASSERT_INT_EQ(rt_json_depth("]]]]][", 6, 10), 1); /* malformed: no underflow */
    char *deep = nested(100000, "1");
    RT_ASSERT_INT_EQ(rt_json_depth(deep, strlen(deep), 64), 65); /* stops past the limit */
    RT_ASSERT_INT_EQ(rt_json_depth(deep, strlen(deep), 1000000), 100000);
    free(deep);
}

/* ---- the mint's JSON, and reading it back without jansson (claimsjson.c) ---------- */

/* The payload of jwt, decoded, NUL-terminated (malloc'd). */
static char *payload_of(const char *jwt)
{
    const char *d1 = strchr(jwt, '.'), *d2 = strchr(d1 + 1, '.');
    size_t cap = (size_t)(d2 - d1);
    char *p = malloc(cap + 1);
    int n = rt_b64url_decode((rt_slice_t){d1 + 1, (size_t)(d2 - d1 - 1)}, (uint8_t *)p, cap);
    RT_ASSERT(n >= 0);
    p[n] = 0;
    return p;
}

RT_TEST(mint_writes_what_jansson_would_dump)
{
    /* names with every byte the writer escapes or passes through: quotes,
     * backslashes, '/', 2- and 4-byte UTF-8 */
    rt_keyring_t *ring = ring_with(KEY_A, RT_ALG_EDDSA, NULL, 0);
    rt_topic_ref_t topics[3] = {{"a\"b\\c/d", "x\"y", NULL},
                                {"\xc3\xbc"
                                 "ber",
                                 "\xf0\x9f\x9a\x80", "event"},
                                {"c", "*", "run"}};
    rt_mint_req_t req = {.sub = "s\\\"", .topics = topics, .ntopics = 3, .publish = true};
    char *jwt = NULL;
    ERR_EQ(rt_token_mint(ring, NULL, &req, NOW, &jwt, NULL), 0);
    char *got = payload_of(jwt);
    json_t *doc = json_loads(got, JSON_REJECT_DUPLICATES, NULL);
    RT_ASSERT(doc != NULL);
    json_t *want =
        json_pack("{s:s, s:s, s:I, s:I, s:O, s:s, s:[{s:s,s:s,s:s},{s:s,s:s,s:s},"
                  "{s:s,s:s,s:s}], s:b}",
                  "iss", "rtgw", "sub", "s\\\"", "iat", (json_int_t)NOW, "exp",
                  (json_int_t)(NOW + 60), "jti", json_object_get(doc, "jti"), "env", "test",
                  "topics", "channel", "a\"b\\c/d", "name", "x\"y", "kind", "run", "channel",
                  "\xc3\xbc"
                  "ber",
                  "name", "\xf0\x9f\x9a\x80", "kind", "event", "channel", "c", "name", "*", "kind",
                  "run", "publish", 1);
    RT_ASSERT(want != NULL);
    char *wants = dump(want);
    RT_ASSERT_STR_EQ(got, wants);
    /* and it verifies: through jansson, since it has escapes and UTF-8 */
    rt__claims_raw_t raw;
    RT_ASSERT(!rt__claims_match((const uint8_t *)got, strlen(got), &raw));
    rt_claims_t c;
    ERR_EQ(rt_token_verify(ring, NULL, rt_slice_cstr(jwt), NOW, &c), 0);
    RT_ASSERT_STR_EQ(c.topics[0].channel, "a\"b\\c/d");
    RT_ASSERT_STR_EQ(c.topics[1].name, "\xf0\x9f\x9a\x80");
    rt_claims_clear(&c);
    json_decref(doc);
    free(wants);
    free(got);
    free(jwt);
    rt_keyring_free(ring);
}

/* Read text both ways; where the direct reading takes it, jansson must take it
 * too and the checks must give the same verdict and the same claims. Returns
 * whether the direct reading took it. */
static bool read_both_ways(const char *text, size_t len, const rt_keyring_t *ring, int64_t now)
{
    rt__claims_raw_t raw;
    if (!rt__claims_match((const uint8_t *)text, len, &raw))
        return false;
    rt__verkey_t key;
    ERR_EQ(rt__keyring_lookup(ring, (rt_slice_t){NULL, 0}, &key), 0);
    rt_token_opts_t opts;
    rt_token_opts_default(&opts);
    rt_claims_t a, b;
    int ra = rt__claims_check(&raw, &opts, &key, now, &a);
    json_error_t err;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!doc) {
        fprintf(stderr, "jansson refuses what the direct reading took: %.*s (%s)\n", (int)len, text,
                err.text);
        RT_ASSERT(doc != NULL);
    }
    int rb = rt__claims_decode(doc, &opts, &key, now, &b);
    json_decref(doc);
    ERR_EQ(ra, rb);
    if (ra == 0) {
        RT_ASSERT_STR_EQ(a.iss, b.iss);
        RT_ASSERT_STR_EQ(a.sub, b.sub);
        RT_ASSERT_STR_EQ(a.jti, b.jti);
        RT_ASSERT_STR_EQ(a.env, b.env);
        RT_ASSERT_INT_EQ(a.iat, b.iat);
        RT_ASSERT_INT_EQ(a.exp, b.exp);
        RT_ASSERT_INT_EQ(a.nbf, b.nbf);
        RT_ASSERT_INT_EQ(a.publish, b.publish);
        RT_ASSERT_INT_EQ(a.ntopics, b.ntopics);
        for (size_t i = 0; i < a.ntopics; i++) {
            RT_ASSERT_STR_EQ(a.topics[i].channel, b.topics[i].channel);
            RT_ASSERT_STR_EQ(a.topics[i].name, b.topics[i].name);
            RT_ASSERT_STR_EQ(a.topics[i].kind, b.topics[i].kind);
        }
    }
    rt_claims_clear(&a);
    rt_claims_clear(&b);
    return true;
}

RT_TEST(claims_read_directly_agree_with_jansson)
{
    rt_keyring_t *ring = ring_hs();
    /* the mint's own output is read directly */
    rt_topic_ref_t topics[2] = {{"user:42", "ai", NULL}, {"user:42", "*", "run"}};
    rt_mint_req_t req = {.topics = topics, .ntopics = 2, .ttl = 120};
    char *jwt = NULL;
    ERR_EQ(rt_token_mint(ring, NULL, &req, NOW, &jwt, NULL), 0);
    char *p = payload_of(jwt);
    RT_ASSERT(read_both_ways(p, strlen(p), ring, NOW));
    free(p);
    free(jwt);
    /* forms it must leave to jansson */
    static const char *const other[] = {
        "{\"iss\":\"rtgw\",\"sub\":\"a\",\"iat\":1700000000,\"exp\":1700000060,\"jti\":\"j\","
        "\"env\":\"test\",\"topics\":[{\"channel\":\"c\",\"name\":\"n\",\"kind\":\"run\"}],"
        "\"publish\":false,\"nbf\":1}", /* an extra claim */
        "{\"sub\":\"a\",\"iss\":\"rtgw\",\"iat\":1700000000,\"exp\":1700000060,\"jti\":\"j\","
        "\"env\":\"test\",\"topics\":[{\"channel\":\"c\",\"name\":\"n\",\"kind\":\"run\"}],"
        "\"publish\":false}", /* another order */
        "{\"iss\":\"rtgw\",\"sub\":\"a\\u0041\",\"iat\":1700000000,\"exp\":1700000060,\"jti\":"
        "\"j\",\"env\":\"test\",\"topics\":[{\"channel\":\"c\",\"name\":\"n\",\"kind\":\"run\"}],"
        "\"publish\":false}", /* an escape */
        "{\"iss\":\"rtgw\",\"sub\":\"a\",\"iat\":01700000000,\"exp\":1700000060,\"jti\":\"j\","
        "\"env\":\"test\",\"topics\":[{\"channel\":\"c\",\"name\":\"n\",\"kind\":\"run\"}],"
        "\"publish\":false}", /* a leading zero (not JSON) */
        "{\"iss\":\"rtgw\",\"sub\":\"a\",\"iat\":1700000000,\"exp\":1700000060,\"jti\":\"j\","
        "\"env\":\"test\",\"topics\":[],\"publish\":false}", /* no topics */
        "{\"iss\":\"rtgw\",\"sub\":\"a\",\"iat\":1700000000,\"exp\":1700000060,\"jti\":\"j\","
        "\"env\":\"test\",\"topics\":[{\"channel\":\"c\",\"name\":\"n\",\"kind\":\"run\"}],"
        "\"publish\":false} ", /* trailing whitespace */
        "{\"iss\":\"rtgw\",\"sub\":\"a\",\"iat\":1700000000,\"exp\":1700000060,\"jti\":\"j\","
        "\"env\":\"test\",\"topics\":[{\"channel\":\"c\",\"name\":\"n\",\"kind\":\"run\"}],"
        "\"publish\":0}", /* a number for a boolean */
        "{\"iss\":\"rtgw\",\"sub\":\"a\",\"iat\":1234567890123456789,\"exp\":1700000060,\"jti\":"
        "\"j\",\"env\":\"test\",\"topics\":[{\"channel\":\"c\",\"name\":\"n\",\"kind\":\"run\"}],"
        "\"publish\":false}", /* 19 digits */
    };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        RT_ASSERT(!read_both_ways(other[i], strlen(other[i]), ring, NOW));

    /* seeded mutations of a canonical payload: where the direct reading takes
     * one, jansson agrees (read_both_ways asserts it) */
    static const char base[] =
        "{\"iss\":\"rtgw\",\"sub\":\"user:42\",\"iat\":1700000000,\"exp\":1700000060,\"jti\":"
        "\"abc\",\"env\":\"test\",\"topics\":[{\"channel\":\"user:42\",\"name\":\"ai\",\"kind\":"
        "\"run\"},{\"channel\":\"b\",\"name\":\"*\",\"kind\":\"event\"}],\"publish\":true}";
    static const char alphabet[] = "\"\\{}[],:0123456789-+.eE aAz*/\x7f\x80\xc3\x01";
    uint32_t x = 12345;
    size_t taken = 0, left = 0;
    char buf[sizeof base + 8];
    for (int iter = 0; iter < 30000; iter++) {
        size_t len = sizeof base - 1;
        memcpy(buf, base, len);
        int edits = 1 + (int)((x = x * 1103515245u + 12345u) >> 16) % 3;
        for (int e = 0; e < edits; e++) {
            x = x * 1103515245u + 12345u;
            size_t at = (x >> 8) % len;
            char c = alphabet[(x >> 20) % (sizeof alphabet - 1)];
            switch ((x >> 28) % 3) {
            case 0: /* replace */
                buf[at] = c;
                break;
            case 1: /* insert */
                if (len < sizeof buf - 1) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = c;
                    len++;
                }
                break;
            default: /* delete */
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
            }
        }
        if (read_both_ways(buf, len, ring, NOW + 10))
            taken++;
        else
            left++;
    }
    /* both kinds occurred, so the loop tested something either way */
    RT_ASSERT(taken > 1000);
    RT_ASSERT(left > 1000);
    rt_keyring_free(ring);
}

RT_TEST(header_read_directly_only_when_it_is_the_keys_own)
{
    rt_keyring_t *ring = ring_with(KEY_A, RT_ALG_HS256, KEY_B, RT_ALG_EDDSA);
    char *p = dump(good_claims());
    /* the fallback key's own header: verified with that key, not parsed */
    char h[128];
    snprintf(h, sizeof h, "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
             rt_keyring_kid(ring, RT_KEY_FALLBACK));
    char *jwt = forge_raw(ring, RT_KEY_FALLBACK, RT_ALG_EDDSA, h, p);
    ERR_EQ(verify(ring, NULL, jwt, NOW), 0);
    free(jwt);
    /* the same header with its keys in another order: parsed, the same verdict */
    snprintf(h, sizeof h, "{\"kid\":\"%s\",\"typ\":\"JWT\",\"alg\":\"EdDSA\"}",
             rt_keyring_kid(ring, RT_KEY_FALLBACK));
    jwt = forge_raw(ring, RT_KEY_FALLBACK, RT_ALG_EDDSA, h, p);
    ERR_EQ(verify(ring, NULL, jwt, NOW), 0);
    free(jwt);
    /* the current key's kid with the fallback's algorithm: not a header the
     * mint writes, so parsed, and refused for its algorithm */
    snprintf(h, sizeof h, "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
             rt_keyring_kid(ring, RT_KEY_CURRENT));
    jwt = forge_raw(ring, RT_KEY_FALLBACK, RT_ALG_EDDSA, h, p);
    ERR_EQ(verify(ring, NULL, jwt, NOW), RT_TOK_EALG);
    free(jwt);
    /* the current key's own header over a payload signed by the fallback key */
    snprintf(h, sizeof h, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
             rt_keyring_kid(ring, RT_KEY_CURRENT));
    jwt = forge_raw(ring, RT_KEY_FALLBACK, RT_ALG_HS256, h, p);
    ERR_EQ(verify(ring, NULL, jwt, NOW), RT_TOK_ESIGNATURE);
    free(jwt);
    free(p);
    rt_keyring_free(ring);
}

/* A payload in the mint's form (reordered: "sub" before "iss", which only
 * jansson reads) with n topics of channel ch, kind kind. */
static char *claims_text(bool reordered, const char *iss, int64_t iat, int64_t exp, const char *env,
                         size_t n, const char *ch, const char *kind)
{
    char *p = malloc(4096);
    int k;
    if (reordered)
        k = snprintf(p, 4096, "{\"sub\":\"s\",\"iss\":\"%s\",", iss);
    else
        k = snprintf(p, 4096, "{\"iss\":\"%s\",\"sub\":\"s\",", iss);
    k += snprintf(p + k, 4096 - (size_t)k,
                  "\"iat\":%lld,\"exp\":%lld,\"jti\":\"j\",\"env\":\"%s\",\"topics\":[",
                  (long long)iat, (long long)exp, env);
    for (size_t i = 0; i < n; i++)
        k += snprintf(p + k, 4096 - (size_t)k,
                      "%s{\"channel\":\"%s\",\"name\":\"t%zu\",\"kind\":\"%s\"}", i ? "," : "", ch,
                      i, kind);
    snprintf(p + k, 4096 - (size_t)k, "],\"publish\":false}");
    return p;
}

RT_TEST(claim_refusals_in_order_whichever_reader)
{
    /* Which refusal a payload gets, checked by value (not by comparing the two
     * readers, which share the checks): the precedence of the old reader. */
    static const struct {
        const char *what, *iss, *env, *ch, *kind;
        int64_t iat, exp;
        size_t n, max_topics;
        int want;
    } cases[] = {
        {"good", "rtgw", "test", "c", "run", NOW, NOW + 60, 2, 0, 0},
        {"issuer", "evil", "test", "c", "run", NOW, NOW + 60, 2, 0, RT_TOK_EISSUER},
        {"too many topics before the issuer", "evil", "test", "c", "run", NOW, NOW + 60, 2, 1,
         RT_TOK_ETOPICS_MANY},
        {"issuer before expiry", "evil", "test", "c", "run", NOW - 200, NOW - 100, 1, 0,
         RT_TOK_EISSUER},
        {"expired", "rtgw", "test", "c", "run", NOW - 200, NOW - 100, 1, 0, RT_TOK_EEXPIRED},
        {"expiry before names", "rtgw", "test", "", "nope", NOW - 200, NOW - 100, 1, 0,
         RT_TOK_EEXPIRED},
        {"issued in the future", "rtgw", "test", "c", "run", NOW + 100, NOW + 160, 1, 0,
         RT_TOK_EIAT_FUTURE},
        {"lifetime", "rtgw", "test", "c", "run", NOW, NOW + 3600 + 30 + 1, 1, 0, RT_TOK_ELIFETIME},
        {"environment", "rtgw", "prod", "c", "run", NOW, NOW + 60, 1, 0, RT_TOK_EENV},
        {"empty channel", "rtgw", "test", "", "run", NOW, NOW + 60, 1, 0, RT_TOK_ENAME_EMPTY},
        {"kind", "rtgw", "test", "c", "nope", NOW, NOW + 60, 1, 0, RT_TOK_ETOPIC_KIND},
        {"nine topics (jansson only)", "rtgw", "test", "c", "run", NOW, NOW + 60, 9, 0, 0},
        {"eight topics, max four", "rtgw", "test", "c", "run", NOW, NOW + 60, 8, 4,
         RT_TOK_ETOPICS_MANY},
    };
    rt_keyring_t *ring = ring_hs();
    char h[128];
    snprintf(h, sizeof h, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
             rt_keyring_kid(ring, RT_KEY_CURRENT));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rt_token_opts_t opts;
        rt_token_opts_default(&opts);
        if (cases[i].max_topics)
            opts.max_topics = cases[i].max_topics;
        for (int reordered = 0; reordered < 2; reordered++) {
            char *p = claims_text(reordered, cases[i].iss, cases[i].iat, cases[i].exp, cases[i].env,
                                  cases[i].n, cases[i].ch, cases[i].kind);
            rt__claims_raw_t raw;
            /* the mint's form is read directly up to eight topics, never reordered */
            RT_ASSERT_INT_EQ(rt__claims_match((const uint8_t *)p, strlen(p), &raw),
                             !reordered && cases[i].n <= RT__FAST_TOPICS);
            char *jwt = forge_raw(ring, RT_KEY_CURRENT, RT_ALG_HS256, h, p);
            int rc = verify(ring, &opts, jwt, NOW);
            if (rc != cases[i].want)
                fprintf(stderr, "case \"%s\"%s: %s\n", cases[i].what,
                        reordered ? " (reordered)" : "", rt_tok_errname(rc));
            ERR_EQ(rc, cases[i].want);
            free(jwt);
            free(p);
        }
    }
    rt_keyring_free(ring);
}
