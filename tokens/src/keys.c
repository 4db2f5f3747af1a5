/*
 * keys.c — Inngest signing keys ("signkey-<env>-<hex>"), their hashed Bearer
 * form, and the HMAC / hex helpers the rest of the library derives from.
 *
 * The hashed form is what the Inngest SDKs send (hashSigningKey in the JS SDK):
 * the "signkey-<env>-" prefix followed by hex(sha256(hex_decode(<hex>))). A
 * gateway that accepts it never needs the SDK to send the raw key over the wire.
 */
#include "rt_tokens_int.h"

#include <string.h>

#define SIGNKEY_PREFIX "signkey-"
#define SIGNKEY_PREFIX_LEN (sizeof(SIGNKEY_PREFIX) - 1)

void rt__hmac_sha256(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t len,
                     uint8_t out[32])
{
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256_init(&st, key, keylen);
    crypto_auth_hmacsha256_update(&st, msg, len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

void rt__hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int rt__hex_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    if (len % 2 != 0 || len / 2 > cap)
        return -1;
    for (size_t i = 0; i < len; i += 2) {
        int hi = hex_value((unsigned char)in[i]), lo = hex_value((unsigned char)in[i + 1]);
        if ((hi | lo) < 0)
            return -1;
        out[i / 2] = (uint8_t)((hi << 4) | lo);
    }
    return (int)(len / 2);
}

static bool env_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* Check an <env> string: 1..RT_TOK_ENV_MAX chars of [a-z0-9_]. */
static int env_validate(const char *env, size_t len)
{
    if (len == 0 || len > RT_TOK_ENV_MAX)
        return RT_TOK_EKEY_ENV;
    for (size_t i = 0; i < len; i++)
        if (!env_char_ok((unsigned char)env[i]))
            return RT_TOK_EKEY_ENV;
    return 0;
}

/* Split a key into env and hex parts, checking everything but the hex digits. */
static int key_split(rt_slice_t key, rt_slice_t *env, rt_slice_t *hex)
{
    const char *dash;
    int rc;

    if (!key.base || key.len < SIGNKEY_PREFIX_LEN ||
        memcmp(key.base, SIGNKEY_PREFIX, SIGNKEY_PREFIX_LEN) != 0)
        return RT_TOK_EKEY_FORMAT;
    env->base = key.base + SIGNKEY_PREFIX_LEN;
    dash = memchr(env->base, '-', key.len - SIGNKEY_PREFIX_LEN);
    if (!dash)
        return RT_TOK_EKEY_FORMAT;
    env->len = (size_t)(dash - env->base);
    if ((rc = env_validate(env->base, env->len)) != 0)
        return rc;
    hex->base = dash + 1;
    hex->len = key.len - SIGNKEY_PREFIX_LEN - env->len - 1;
    return 0;
}

int rt__signing_key_parse(rt_slice_t key, char env_out[RT_TOK_ENV_MAX + 1], uint8_t *raw,
                          size_t *raw_len)
{
    rt_slice_t env, hex;
    int rc, n;

    if ((rc = key_split(key, &env, &hex)) != 0)
        return rc;
    if (hex.len == 0 || hex.len % 2 != 0)
        return RT_TOK_EKEY_HEX;
    for (size_t i = 0; i < hex.len; i++)
        if (hex_value((unsigned char)hex.base[i]) < 0)
            return RT_TOK_EKEY_HEX;
    if (hex.len / 2 < RT__KEY_SECRET_MIN)
        return RT_TOK_EKEY_SHORT;
    if (hex.len / 2 > RT__KEY_SECRET_MAX)
        return RT_TOK_EKEY_LONG;
    n = rt__hex_decode(hex.base, hex.len, raw, RT__KEY_SECRET_MAX);
    if (n < 0) /* unreachable after the checks above */
        return RT_TOK_EKEY_HEX;
    memcpy(env_out, env.base, env.len);
    env_out[env.len] = '\0';
    *raw_len = (size_t)n;
    return 0;
}

int rt_signing_key_validate(rt_slice_t key)
{
    uint8_t raw[RT__KEY_SECRET_MAX];
    char env[RT_TOK_ENV_MAX + 1];
    size_t raw_len = 0;
    int rc = rt__signing_key_parse(key, env, raw, &raw_len);

    sodium_memzero(raw, sizeof raw);
    return rc;
}

int rt_signing_key_hash(rt_slice_t key, char *out, size_t cap)
{
    uint8_t raw[RT__KEY_SECRET_MAX], digest[crypto_hash_sha256_BYTES];
    char env[RT_TOK_ENV_MAX + 1];
    size_t raw_len = 0, prefix_len;
    int rc;

    if (!out || cap < RT_TOK_HASHED_KEY_MAX)
        return RT_TOK_EINVAL;
    if ((rc = rt__signing_key_parse(key, env, raw, &raw_len)) != 0)
        goto done;
    crypto_hash_sha256(digest, raw, raw_len);
    prefix_len = SIGNKEY_PREFIX_LEN + strlen(env) + 1;
    memcpy(out, key.base, prefix_len); /* "signkey-<env>-" exactly as given */
    rt__hex_encode(digest, sizeof digest, out + prefix_len);
    rc = (int)(prefix_len + 2 * sizeof digest);
done:
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(digest, sizeof digest);
    return rc;
}

int rt_signing_key_generate(const char *env, char *out, size_t cap)
{
    uint8_t raw[32];
    size_t env_len;
    int rc;

    if (!env || !out)
        return RT_TOK_EINVAL;
    env_len = strlen(env);
    if ((rc = env_validate(env, env_len)) != 0)
        return rc;
    if (cap < SIGNKEY_PREFIX_LEN + env_len + 1 + 2 * sizeof raw + 1)
        return RT_TOK_EINVAL;
    randombytes_buf(raw, sizeof raw);
    memcpy(out, SIGNKEY_PREFIX, SIGNKEY_PREFIX_LEN);
    memcpy(out + SIGNKEY_PREFIX_LEN, env, env_len);
    out[SIGNKEY_PREFIX_LEN + env_len] = '-';
    rt__hex_encode(raw, sizeof raw, out + SIGNKEY_PREFIX_LEN + env_len + 1);
    sodium_memzero(raw, sizeof raw);
    return (int)(SIGNKEY_PREFIX_LEN + env_len + 1 + 2 * sizeof raw);
}

const char *rt_alg_name(rt_alg_t alg)
{
    switch (alg) {
    case RT_ALG_HS256:
        return "HS256";
    case RT_ALG_EDDSA:
        return "EdDSA";
    }
    return "unknown";
}

int rt_alg_parse(rt_slice_t name)
{
    if (!name.base)
        return -1;
    if (name.len == 5 && memcmp(name.base, "HS256", 5) == 0)
        return RT_ALG_HS256;
    if (name.len == 5 && memcmp(name.base, "EdDSA", 5) == 0)
        return RT_ALG_EDDSA;
    return -1;
}
