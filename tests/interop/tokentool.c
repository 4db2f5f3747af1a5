/*
 * tokentool — a tiny CLI over the rt_tokens library, for interop tests only.
 *
 *   tokentool hash   <signkey>                              hashed Bearer form of the key
 *   tokentool mint   <signkey> <HS256|EdDSA> <channel> <topic> [ttl]
 *                                                           prints a JWT minted with the key
 *   tokentool verify <signkey> <HS256|EdDSA> <jwt>          prints the claims as JSON, or the
 *                                                           error name (rt_tok_errname), exit 1
 *   tokentool secret <signkey>                              derived HS256 secret, hex (test only!)
 *   tokentool jwks   <signkey>                              JWKS of the derived Ed25519 key
 *   tokentool kid    <signkey> <HS256|EdDSA>                kid the ring gives the key
 *
 * "now" is the wall clock, or RT_TOKENTOOL_NOW (Unix seconds) when set.
 * Errors go to stdout as a bare error name (so tests can compare it) and exit 1;
 * usage errors exit 2.
 *
 * `secret` recomputes the documented derivation (rt_tokens.h, "Token keys")
 * with libsodium directly, so a test comparing it against tokens minted by the
 * library checks the library against its documentation.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt_tokens.h"

static int usage(void)
{
    fputs("usage: tokentool hash <signkey>\n"
          "       tokentool mint <signkey> <HS256|EdDSA> <channel> <topic> [ttl]\n"
          "       tokentool verify <signkey> <HS256|EdDSA> <jwt>\n"
          "       tokentool secret <signkey>\n"
          "       tokentool jwks <signkey>\n"
          "       tokentool kid <signkey> <HS256|EdDSA>\n",
          stderr);
    return 2;
}

static int fail(int code)
{
    printf("%s\n", rt_tok_errname(code));
    return 1;
}

static int64_t now_s(void)
{
    const char *s = getenv("RT_TOKENTOOL_NOW");
    if (s && *s)
        return (int64_t)strtoll(s, NULL, 10);
    return (int64_t)time(NULL);
}

static int parse_alg(const char *name, rt_alg_t *alg)
{
    int a = rt_alg_parse(rt_slice_cstr(name));
    if (a < 0) {
        fprintf(stderr, "tokentool: unknown algorithm '%s' (HS256 or EdDSA)\n", name);
        return -1;
    }
    *alg = (rt_alg_t)a;
    return 0;
}

/* A key ring whose current key is key, pinned to the algorithm named algname.
 * 0 with *out set, or the tool's exit code: 2 for an unknown algorithm, 1
 * (after printing the error's name) when the key is refused. */
static int open_ring(const char *key, const char *algname, rt_keyring_t **out)
{
    rt_alg_t alg;
    if (parse_alg(algname, &alg) != 0)
        return 2;
    rt_keyring_t *ring = rt_keyring_new();
    if (!ring)
        return fail(RT_TOK_ENOMEM);
    int rc = rt_keyring_set_signing_key(ring, RT_KEY_CURRENT, rt_slice_cstr(key), alg);
    if (rc != 0) {
        rt_keyring_free(ring);
        return fail(rc);
    }
    *out = ring;
    return 0;
}

static int cmd_hash(const char *key)
{
    char out[RT_TOK_HASHED_KEY_MAX];
    int n = rt_signing_key_hash(rt_slice_cstr(key), out, sizeof out);
    if (n < 0)
        return fail(n);
    printf("%s\n", out);
    return 0;
}

static int cmd_mint(const char *key, const char *algname, const char *channel, const char *topic,
                    const char *ttl)
{
    rt_keyring_t *ring = NULL;
    int rc = open_ring(key, algname, &ring);
    if (rc != 0)
        return rc;
    rt_token_opts_t opts;
    rt_token_opts_default(&opts);
    rt_topic_ref_t t = {.channel = channel, .name = topic, .kind = "run"};
    rt_mint_req_t req = {.sub = NULL,
                         .topics = &t,
                         .ntopics = 1,
                         .ttl = ttl ? (int64_t)strtoll(ttl, NULL, 10) : 0,
                         .publish = false};
    char *jwt = NULL;
    rc = rt_token_mint(ring, &opts, &req, now_s(), &jwt, NULL);
    rt_keyring_free(ring);
    if (rc != 0)
        return fail(rc);
    printf("%s\n", jwt);
    free(jwt);
    return 0;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static int cmd_verify(const char *key, const char *algname, const char *jwt)
{
    rt_keyring_t *ring = NULL;
    int rc = open_ring(key, algname, &ring);
    if (rc != 0)
        return rc;
    rt_token_opts_t opts;
    rt_token_opts_default(&opts);
    rt_claims_t c;
    rc = rt_token_verify(ring, &opts, rt_slice_cstr(jwt), now_s(), &c);
    rt_keyring_free(ring);
    if (rc != 0)
        return fail(rc);

    json_t *o = json_object();
    json_object_set_new(o, "iss", str_or_null(c.iss));
    json_object_set_new(o, "sub", str_or_null(c.sub));
    json_object_set_new(o, "jti", str_or_null(c.jti));
    json_object_set_new(o, "env", str_or_null(c.env));
    json_object_set_new(o, "kid", json_string(c.kid));
    json_object_set_new(o, "iat", json_integer(c.iat));
    json_object_set_new(o, "exp", json_integer(c.exp));
    if (c.nbf)
        json_object_set_new(o, "nbf", json_integer(c.nbf));
    json_t *topics = json_array();
    for (size_t i = 0; i < c.ntopics; i++) {
        json_t *t = json_object();
        json_object_set_new(t, "channel", str_or_null(c.topics[i].channel));
        json_object_set_new(t, "name", str_or_null(c.topics[i].name));
        json_object_set_new(t, "kind", str_or_null(c.topics[i].kind));
        json_array_append_new(topics, t);
    }
    json_object_set_new(o, "topics", topics);
    json_object_set_new(o, "publish", json_boolean(c.publish));
    rt_claims_clear(&c);
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (!s)
        return fail(RT_TOK_ENOMEM);
    printf("%s\n", s);
    free(s);
    return 0;
}

/* HMAC-SHA256(key = hex_decode(<hex>), msg = "rtgw/v1/hs256"), as documented. */
static int cmd_secret(const char *key)
{
    int rc = rt_signing_key_validate(rt_slice_cstr(key));
    if (rc != 0)
        return fail(rc);
    /* "signkey-" <env> "-" <hex>; env has no '-', so <hex> follows the second '-'. */
    const char *dash = strchr(key + strlen("signkey-"), '-');
    if (!dash)
        return fail(RT_TOK_EKEY_FORMAT);
    const char *hex = dash + 1;
    size_t hexlen = strlen(hex);
    unsigned char *raw = malloc(hexlen / 2 + 1);
    if (!raw)
        return fail(RT_TOK_ENOMEM);
    size_t rawlen = 0;
    if (sodium_hex2bin(raw, hexlen / 2 + 1, hex, hexlen, NULL, &rawlen, NULL) != 0) {
        free(raw);
        return fail(RT_TOK_EKEY_HEX);
    }
    static const char msg[] = "rtgw/v1/hs256";
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, raw, rawlen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, sizeof msg - 1);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(raw, rawlen);
    free(raw);
    char out[2 * sizeof mac + 1];
    sodium_bin2hex(out, sizeof out, mac, sizeof mac);
    sodium_memzero(mac, sizeof mac);
    printf("%s\n", out);
    return 0;
}

static int cmd_jwks(const char *key)
{
    rt_keyring_t *ring = NULL;
    int rc = open_ring(key, "EdDSA", &ring);
    if (rc != 0)
        return rc;
    char *s = rt_keyring_jwks_json(ring);
    rt_keyring_free(ring);
    if (!s)
        return fail(RT_TOK_ENOMEM);
    printf("%s\n", s);
    free(s);
    return 0;
}

static int cmd_kid(const char *key, const char *algname)
{
    rt_keyring_t *ring = NULL;
    int rc = open_ring(key, algname, &ring);
    if (rc != 0)
        return rc;
    const char *kid = rt_keyring_kid(ring, RT_KEY_CURRENT);
    if (kid)
        printf("%s\n", kid);
    rt_keyring_free(ring);
    return kid ? 0 : fail(RT_TOK_ENOKEY);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    if (rt_tokens_init() != 0)
        return fail(RT_TOK_ENOMEM);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "hash") && argc == 3)
        return cmd_hash(argv[2]);
    if (!strcmp(cmd, "mint") && (argc == 6 || argc == 7))
        return cmd_mint(argv[2], argv[3], argv[4], argv[5], argc == 7 ? argv[6] : NULL);
    if (!strcmp(cmd, "verify") && argc == 5)
        return cmd_verify(argv[2], argv[3], argv[4]);
    if (!strcmp(cmd, "secret") && argc == 3)
        return cmd_secret(argv[2]);
    if (!strcmp(cmd, "jwks") && argc == 3)
        return cmd_jwks(argv[2]);
    if (!strcmp(cmd, "kid") && argc == 4)
        return cmd_kid(argv[2], argv[3]);
    return usage();
}
