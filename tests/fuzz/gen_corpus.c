/*
 * gen_corpus.c — writes the seed corpus of fuzz_token_verify into a directory.
 * Run once by hand (the seeds are committed); tokens carry random jti values,
 * so re-running changes bytes but not what the seeds exercise.
 *   build/tests/fuzz/fuzz_gen_corpus tests/fuzz/corpus/token_verify
 */
#include "fuzz_common.h"
#include "rt_tokens_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *dir;

static void put(const char *name, const char *data, size_t len)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void puts_(const char *name, const char *s)
{
    put(name, s, strlen(s));
}

static char *mint_with(rt_keyring_t *ring, int64_t now, size_t ntopics, bool publish)
{
    static const rt_topic_ref_t topics[] = {
        {"user:42", "ai", NULL},
        {"user:42", "*", "run"},
        {"team:7", "status", NULL},
        {"caf\xc3\xa9", "\xe2\x82\xac", NULL},
    };
    rt_token_opts_t o;
    rt_mint_req_t req = {.topics = topics, .ntopics = ntopics, .publish = publish};
    char *jwt = NULL;

    fuzz_opts(&o);
    if (rt_token_mint(ring, &o, &req, now, &jwt, NULL) != 0) {
        fprintf(stderr, "mint failed\n");
        exit(1);
    }
    return jwt;
}

static char *forge(rt_keyring_t *ring, rt_key_slot_t slot, rt_alg_t alg, const char *h,
                   const char *p)
{
    char *jwt = NULL;
    if (rt__jws_forge(ring, slot, alg, rt_slice_cstr(h), rt_slice_cstr(p), &jwt, NULL) != 0)
        exit(1);
    return jwt;
}

static void with_prefix(const char *name, char mode, const char *rest)
{
    size_t n = strlen(rest);
    char *buf = malloc(n + 1);
    buf[0] = mode;
    memcpy(buf + 1, rest, n);
    put(name, buf, n + 1);
    free(buf);
}

int main(int argc, char **argv)
{
    rt_keyring_t *ring = fuzz_ring_new(), *ed = rt_keyring_new();
    char *t, buf[4096], hdr[256];
    const char *kid;

    if (argc != 2 || !ring || !ed ||
        rt_keyring_set_signing_key(ed, RT_KEY_CURRENT, rt_slice_cstr(FUZZ_KEY_ED), RT_ALG_EDDSA) !=
            0) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    kid = rt_keyring_kid(ring, RT_KEY_CURRENT);

    /* whole tokens, verified as received */
    t = mint_with(ring, FUZZ_NOW, 1, false);
    puts_("hs256_valid", t);
    snprintf(buf, sizeof buf, "%.*s", (int)strlen(t) - 7, t);
    puts_("hs256_truncated", buf);
    snprintf(buf, sizeof buf, "%.*s", (int)(strrchr(t, '.') - t), t);
    puts_("two_segments", buf);
    snprintf(buf, sizeof buf, "%s", t);
    buf[strlen(buf) - 5] ^= 1;
    puts_("hs256_bad_signature", buf);
    snprintf(buf, sizeof buf, "%s=", t);
    puts_("hs256_padded", buf);
    snprintf(buf, sizeof buf, "%s.%s", t, t);
    puts_("five_segments", buf);
    free(t);
    t = mint_with(ring, FUZZ_NOW, 4, true);
    puts_("hs256_four_topics_publish", t);
    free(t);
    t = mint_with(ring, FUZZ_NOW - 100000, 1, false);
    puts_("hs256_expired", t);
    free(t);
    t = mint_with(ed, FUZZ_NOW, 2, false);
    puts_("eddsa_valid", t);
    free(t);
    /* alg none: header names the current kid, empty signature */
    {
        char hb[256], pb[1024];
        snprintf(hdr, sizeof hdr, "{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
        rt_b64url_encode((const uint8_t *)hdr, strlen(hdr), hb, sizeof hb);
        rt_b64url_encode((const uint8_t *)"{\"iss\":\"rtgw\"}", 14, pb, sizeof pb);
        snprintf(buf, sizeof buf, "%s.%s.", hb, pb);
        puts_("alg_none", buf);
    }
    /* alg swap: EdDSA-signed token under the HS256 key's kid */
    snprintf(hdr, sizeof hdr, "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
    t = forge(ring, RT_KEY_CURRENT, RT_ALG_EDDSA, hdr, "{}");
    puts_("alg_swap", t);
    free(t);
    t = forge(ring, RT_KEY_CURRENT, RT_ALG_HS256, "{\"alg\":\"HS256\",\"alg\":\"HS256\"}", "{}");
    puts_("header_duplicate_key", t);
    free(t);
    puts_("empty", "");
    puts_("garbage", "eyJ.\xff\x00.x");

    /* 'P' / 'E': payloads behind a valid signature */
    with_prefix("payload_valid", 'P',
                "{\"iss\":\"rtgw\",\"sub\":\"s\",\"iat\":1700000000,\"exp\":1700000060,"
                "\"nbf\":1699999990,\"jti\":\"j\",\"env\":\"test\",\"topics\":[{\"channel\":"
                "\"c\",\"name\":\"*\",\"kind\":\"run\"}],\"publish\":true}");
    with_prefix("payload_eddsa_valid", 'E',
                "{\"iss\":\"rtgw\",\"sub\":\"s\",\"iat\":1700000000,\"exp\":1700000060,"
                "\"jti\":\"j\",\"env\":\"test\",\"topics\":[],\"publish\":false}");
    /* the mint's own form, which verify reads without jansson (claimsjson.c) */
    with_prefix("payload_minted_form", 'P',
                "{\"iss\":\"rtgw\",\"sub\":\"s\",\"iat\":1700000000,\"exp\":1700000060,"
                "\"jti\":\"j\",\"env\":\"test\",\"topics\":[{\"channel\":\"c\",\"name\":"
                "\"*\",\"kind\":\"run\"},{\"channel\":\"d\",\"name\":\"t\",\"kind\":"
                "\"event\"}],\"publish\":true}");
    with_prefix("payload_minted_form_expired", 'E',
                "{\"iss\":\"rtgw\",\"sub\":\"s\",\"iat\":1600000000,\"exp\":1600000060,"
                "\"jti\":\"j\",\"env\":\"test\",\"topics\":[{\"channel\":\"c\",\"name\":"
                "\"n\",\"kind\":\"run\"}],\"publish\":false}");
    with_prefix("payload_duplicate_key", 'P', "{\"iss\":\"rtgw\",\"iss\":\"evil\"}");
    with_prefix("payload_wrong_types", 'P',
                "{\"iss\":\"rtgw\",\"sub\":\"s\",\"iat\":\"1\",\"exp\":1.5,\"jti\":1,"
                "\"env\":null,\"topics\":{},\"publish\":\"yes\"}");
    with_prefix("payload_nbf_future", 'P',
                "{\"iss\":\"rtgw\",\"sub\":\"s\",\"iat\":1700000000,\"exp\":1700000060,"
                "\"nbf\":1800000000,\"jti\":\"j\",\"env\":\"test\",\"topics\":[],"
                "\"publish\":false}");
    with_prefix("payload_bad_names", 'P',
                "{\"iss\":\"rtgw\",\"sub\":\"s\",\"iat\":1700000000,\"exp\":1700000060,"
                "\"jti\":\"j\",\"env\":\"test\",\"topics\":[{\"channel\":\"a\\u0085\",\"name\":"
                "\"\",\"kind\":\"run\"}],\"publish\":false}");
    with_prefix("payload_huge_ints", 'P',
                "{\"iss\":\"rtgw\",\"sub\":\"s\",\"iat\":-9223372036854775808,\"exp\":"
                "9223372036854775807,\"jti\":\"j\",\"env\":\"test\",\"topics\":[],"
                "\"publish\":false}");
    {
        size_t n = 0;
        for (int i = 0; i < 2000; i++)
            buf[n++] = '[';
        buf[n] = '\0';
        with_prefix("payload_deep_nesting", 'P', buf);
    }
    snprintf(hdr, sizeof hdr, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\",\"crit\":[]}",
             kid);
    with_prefix("header_crit", 'H', hdr);
    snprintf(hdr, sizeof hdr, "{\"alg\":\"HS256\",\"kid\":\"%s\"}", kid);
    with_prefix("header_valid", 'H', hdr);
    with_prefix("header_no_kid", 'H', "{\"alg\":\"HS256\"}");

    rt_keyring_free(ring);
    rt_keyring_free(ed);
    return 0;
}
