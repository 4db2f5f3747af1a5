/*
 * fuzz_token_verify.c — libFuzzer target for rt_token_verify.
 *
 * The first input byte picks what the bytes mean, so that the fuzzer reaches
 * the code behind the signature check too (it cannot forge HMACs itself):
 *   'P' rest is a payload, signed HS256 with the current key and a good header
 *   'E' rest is a payload, signed EdDSA with the fallback key and a good header
 *   'H' rest is a header, signed HS256 with the current key over good claims
 *   anything else: the whole input is a token, verified as received.
 * Invariants checked (abort on violation, not just "no crash"):
 *   - the result is 0 or a code from the table (never EINVAL/ENOKEY here);
 *   - a refusal leaves *out zeroed;
 *   - accepted claims are well-formed: iss and env as configured, kid one of
 *     the ring's, names valid, ntopics within bounds, times within leeway;
 *   - verifying the same bytes again gives the same result and claims;
 *   - a payload read directly (the mint's own form, claimsjson.c) is one
 *     jansson reads too, with the same verdict and claims.
 */
#include "fuzz_common.h"
#include "rt_tokens_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

static rt_keyring_t *ring;
static rt_token_opts_t opts;

static bool str_eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static void check_claims(const rt_claims_t *c)
{
    CHECK(c->iss && c->sub && c->jti && c->env);
    CHECK(str_eq(c->iss, opts.issuer));
    CHECK(str_eq(c->env, "test"));
    CHECK(str_eq(c->kid, rt_keyring_kid(ring, RT_KEY_CURRENT)) ||
          str_eq(c->kid, rt_keyring_kid(ring, RT_KEY_FALLBACK)));
    CHECK(c->ntopics <= opts.max_topics);
    CHECK((c->ntopics == 0) == (c->topics == NULL));
    CHECK(c->exp > FUZZ_NOW - opts.leeway);
    CHECK(c->iat <= FUZZ_NOW + opts.leeway);
    CHECK(c->nbf <= FUZZ_NOW + opts.leeway);
    for (size_t i = 0; i < c->ntopics; i++) {
        const rt_topic_t *t = &c->topics[i];
        CHECK(rt_name_validate(rt_slice_cstr(t->channel), opts.max_name_bytes) == 0);
        CHECK(rt_name_validate(rt_slice_cstr(t->name), opts.max_name_bytes) == 0);
        CHECK(rt_name_validate(rt_slice_cstr(t->kind), opts.max_name_bytes) == 0);
        CHECK(rt_claims_grants(c, rt_slice_cstr(t->channel), rt_slice_cstr(t->name)));
    }
}

static bool claims_equal(const rt_claims_t *a, const rt_claims_t *b)
{
    if (!str_eq(a->iss, b->iss) || !str_eq(a->sub, b->sub) || !str_eq(a->jti, b->jti) ||
        !str_eq(a->env, b->env) || strcmp(a->kid, b->kid) != 0 || a->iat != b->iat ||
        a->exp != b->exp || a->nbf != b->nbf || a->publish != b->publish ||
        a->ntopics != b->ntopics)
        return false;
    for (size_t i = 0; i < a->ntopics; i++)
        if (!str_eq(a->topics[i].channel, b->topics[i].channel) ||
            !str_eq(a->topics[i].name, b->topics[i].name) ||
            !str_eq(a->topics[i].kind, b->topics[i].kind))
            return false;
    return true;
}

static bool is_zeroed(const rt_claims_t *c)
{
    static const rt_claims_t zero;
    return memcmp(c, &zero, sizeof zero) == 0;
}

static void verify_and_check(rt_slice_t jwt)
{
    rt_claims_t a, b;
    int rc = rt_token_verify(ring, &opts, jwt, FUZZ_NOW, &a);
    int rc2;

    if (getenv("RT_FUZZ_VERBOSE")) /* replay: say what each seed exercised */
        fprintf(stderr, "verify: %s\n", rt_tok_errname(rc));
    CHECK(rc <= 0);
    CHECK(strcmp(rt_tok_errname(rc), "unknown_error") != 0);
    CHECK(rc != RT_TOK_EINVAL && rc != RT_TOK_ENOKEY && rc != RT_TOK_ENOMEM);
    if (rc != 0) {
        CHECK(is_zeroed(&a));
    } else {
        check_claims(&a);
    }
    rc2 = rt_token_verify(ring, &opts, jwt, FUZZ_NOW, &b);
    CHECK(rc2 == rc);
    if (rc == 0)
        CHECK(claims_equal(&a, &b));
    rt_claims_clear(&a);
    rt_claims_clear(&b);
}

/* A payload the direct reading (claimsjson.c) takes is one jansson takes, and
 * the checks give the same verdict and claims either way. */
static void check_direct_reading(rt_slice_t payload, rt_key_slot_t slot)
{
    rt__claims_raw_t raw;
    if (!rt__claims_match((const uint8_t *)payload.base, payload.len, &raw))
        return;
    rt__verkey_t key;
    CHECK(rt__keyring_lookup(ring, rt_slice_cstr(rt_keyring_kid(ring, slot)), &key) == 0);
    json_t *doc = json_loadb(payload.base, payload.len, JSON_REJECT_DUPLICATES, NULL);
    CHECK(doc != NULL);
    rt_claims_t a, b;
    int ra = rt__claims_check(&raw, &opts, &key, FUZZ_NOW, &a);
    int rb = rt__claims_decode(doc, &opts, &key, FUZZ_NOW, &b);
    json_decref(doc);
    CHECK(ra == rb);
    if (ra == 0)
        CHECK(claims_equal(&a, &b));
    rt_claims_clear(&a);
    rt_claims_clear(&b);
}

static const char good_payload[] =
    "{\"iss\":\"rtgw\",\"sub\":\"user:42\",\"iat\":1700000000,\"exp\":1700000060,\"jti\":\"j\","
    "\"env\":\"test\",\"topics\":[{\"channel\":\"user:42\",\"name\":\"ai\",\"kind\":\"run\"}],"
    "\"publish\":false}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char header[128], *jwt = NULL;
    size_t len = 0;
    rt_slice_t rest = {(const char *)data + 1, size ? size - 1 : 0};

    if (!ring) {
        ring = fuzz_ring_new();
        CHECK(ring != NULL);
        fuzz_opts(&opts);
    }
    if (size == 0) {
        verify_and_check((rt_slice_t){"", 0});
        return 0;
    }
    switch (data[0]) {
    case 'P':
    case 'E': {
        rt_key_slot_t slot = data[0] == 'P' ? RT_KEY_CURRENT : RT_KEY_FALLBACK;
        rt_alg_t alg = data[0] == 'P' ? RT_ALG_HS256 : RT_ALG_EDDSA;
        snprintf(header, sizeof header, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
                 rt_alg_name(alg), rt_keyring_kid(ring, slot));
        CHECK(rt__jws_forge(ring, slot, alg, rt_slice_cstr(header), rest, &jwt, &len) == 0);
        check_direct_reading(rest, slot);
        break;
    }
    case 'H':
        CHECK(rt__jws_forge(ring, RT_KEY_CURRENT, RT_ALG_HS256, rest, rt_slice_cstr(good_payload),
                            &jwt, &len) == 0);
        break;
    default:
        verify_and_check((rt_slice_t){(const char *)data, size});
        return 0;
    }
    verify_and_check((rt_slice_t){jwt, len});
    free(jwt);
    return 0;
}
