/*
 * keyring.c — the current and fallback signing keys, verify-only Ed25519 keys,
 * the Bearer check, and JWKS export.
 *
 * Everything a token needs is derived from the signing key once, when it is
 * installed, with HMAC-SHA256 keyed by the decoded secret and a fixed label
 * (see rt_tokens.h). Distinct labels keep the HS256 secret, the Ed25519 seed and
 * the kid independent: publishing a kid or a public key says nothing about the
 * HS256 secret, and the raw signing key never signs a token directly, so a
 * token secret leaking from a verifier does not let anyone call the HTTP API.
 *
 * The kid includes the algorithm name, so one key pinned to HS256 on one node
 * and EdDSA on another yields two different kids rather than a token that two
 * algorithms could claim.
 */
#include "rt_tokens_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

rt_keyring_t *rt_keyring_new(void)
{
    return calloc(1, sizeof(rt_keyring_t));
}

void rt_keyring_free(rt_keyring_t *ring)
{
    if (!ring)
        return;
    free(ring->pubkeys); /* public material: nothing to wipe */
    sodium_memzero(ring, sizeof *ring);
    free(ring);
}

static void derive(const uint8_t *raw, size_t raw_len, const char *label, uint8_t out[32])
{
    rt__hmac_sha256(raw, raw_len, (const uint8_t *)label, strlen(label), out);
}

int rt_keyring_set_signing_key(rt_keyring_t *ring, rt_key_slot_t slot, rt_slice_t key, rt_alg_t alg)
{
    rt__signkey_t k;
    uint8_t seed[32], kid_mac[32];
    char kid_label[32];
    int rc;

    if (!ring || (slot != RT_KEY_CURRENT && slot != RT_KEY_FALLBACK) ||
        (alg != RT_ALG_HS256 && alg != RT_ALG_EDDSA))
        return RT_TOK_EINVAL;
    memset(&k, 0, sizeof k);
    if ((rc = rt__signing_key_parse(key, k.env, k.raw, &k.raw_len)) != 0)
        goto done;
    if (key.len >= sizeof k.plain) { /* cannot happen after parsing; keeps the copy obvious */
        rc = RT_TOK_EKEY_LONG;
        goto done;
    }
    memcpy(k.plain, key.base, key.len);
    k.plain_len = key.len;
    rc = rt_signing_key_hash(key, k.hashed, sizeof k.hashed);
    if (rc < 0)
        goto done;
    k.hashed_len = (size_t)rc;

    derive(k.raw, k.raw_len, "rtgw/v1/hs256", k.hs_secret);
    derive(k.raw, k.raw_len, "rtgw/v1/ed25519", seed);
    crypto_sign_seed_keypair(k.ed_pk, k.ed_sk, seed);
    snprintf(kid_label, sizeof kid_label, "rtgw/v1/kid/%s", rt_alg_name(alg));
    derive(k.raw, k.raw_len, kid_label, kid_mac);
    rt__hex_encode(kid_mac, RT_TOK_KID_LEN / 2, k.kid);
    k.alg = alg;
    rt__jw_t hw = {0};
    rt__jw_header(&hw, rt_alg_name(alg), k.kid);
    rc = hw.oom ? RT_TOK_ENOMEM
                : rt_b64url_encode((const uint8_t *)hw.p, hw.len, k.header, sizeof k.header);
    free(hw.p);
    if (rc < 0)
        goto done;
    k.header_len = (size_t)rc;
    k.present = true;

    sodium_memzero(&ring->slot[slot], sizeof ring->slot[slot]);
    ring->slot[slot] = k;
    rc = 0;
done:
    sodium_memzero(&k, sizeof k);
    sodium_memzero(seed, sizeof seed);
    return rc;
}

int rt_keyring_add_ed25519_public(rt_keyring_t *ring, rt_slice_t kid, const uint8_t pk[32])
{
    rt__pubkey_t *grown;

    if (!ring || !pk || !kid.base || kid.len == 0 || kid.len > RT__KID_MAX)
        return RT_TOK_EINVAL;
    for (size_t i = 0; i < kid.len; i++) /* printable ASCII: it ends up in logs and JWKS */
        if ((unsigned char)kid.base[i] < 0x21 || (unsigned char)kid.base[i] > 0x7e)
            return RT_TOK_EINVAL;
    /* Refuse points off the curve, outside the main subgroup, or of small order. */
    if (crypto_core_ed25519_is_valid_point(pk) != 1)
        return RT_TOK_EINVAL;
    for (size_t i = 0; i < ring->npubkeys; i++) {
        if (strlen(ring->pubkeys[i].kid) == kid.len &&
            memcmp(ring->pubkeys[i].kid, kid.base, kid.len) == 0) {
            memcpy(ring->pubkeys[i].pk, pk, 32);
            return 0;
        }
    }
    if (ring->npubkeys == RT__PUBKEYS_MAX)
        return RT_TOK_EINVAL;
    grown = realloc(ring->pubkeys, (ring->npubkeys + 1) * sizeof *grown);
    if (!grown)
        return RT_TOK_ENOMEM;
    ring->pubkeys = grown;
    memset(&grown[ring->npubkeys], 0, sizeof *grown);
    memcpy(grown[ring->npubkeys].kid, kid.base, kid.len);
    memcpy(grown[ring->npubkeys].pk, pk, 32);
    ring->npubkeys++;
    return 0;
}

/* 1 if a == b, else 0, without a data-dependent branch. */
static unsigned ct_eq_size(size_t a, size_t b)
{
    size_t x = a ^ b;
    /* x == 0  <=>  (x | -x) has its top bit clear */
    return (unsigned)(1 ^ ((x | (0 - x)) >> (sizeof(size_t) * 8 - 1)));
}

int rt_keyring_check_bearer(const rt_keyring_t *ring, rt_slice_t credential, rt_key_slot_t *matched)
{
    /* Each comparison covers the credential's length, over candidates kept in
     * longer zero-padded buffers: what it costs depends on the caller's own
     * input only, never on a key's bytes or length (a length that differs
     * makes the result false in constant time, ct_eq_size). Comparing whole
     * buffers instead cost four 586-byte compares per mint, 3% of S4's front
     * door. */
    size_t n = credential.len;
    unsigned hit[2] = {0, 0};

    if (!ring || (!credential.base && n))
        return RT_TOK_EINVAL;
    if (!ring->slot[RT_KEY_CURRENT].present && !ring->slot[RT_KEY_FALLBACK].present)
        return RT_TOK_ENOKEY;
    /* The credential's own length is the caller's to know, so refusing an
     * empty or oversized one up front reveals nothing about the keys. */
    if (n == 0 || n >= sizeof ring->slot[0].plain)
        return RT_TOK_EKEY_MISMATCH;
    for (int s = 0; s < 2; s++) {
        const rt__signkey_t *k = &ring->slot[s];
        /* an absent slot is all zeroes with length 0: never equal */
        unsigned eq = (unsigned)(sodium_memcmp(credential.base, k->plain, n) == 0);
        hit[s] |= eq & ct_eq_size(n, k->plain_len);
        if (n < sizeof k->hashed) { /* longer cannot be the hashed form */
            eq = (unsigned)(sodium_memcmp(credential.base, k->hashed, n) == 0);
            hit[s] |= eq & ct_eq_size(n, k->hashed_len);
        }
        hit[s] &= (unsigned)k->present;
    }
    if (!(hit[0] | hit[1]))
        return RT_TOK_EKEY_MISMATCH;
    if (matched)
        *matched = hit[0] ? RT_KEY_CURRENT : RT_KEY_FALLBACK;
    return 0;
}

const char *rt_keyring_env(const rt_keyring_t *ring, rt_key_slot_t slot)
{
    if (!ring || (slot != RT_KEY_CURRENT && slot != RT_KEY_FALLBACK) || !ring->slot[slot].present)
        return NULL;
    return ring->slot[slot].env;
}

const char *rt_keyring_kid(const rt_keyring_t *ring, rt_key_slot_t slot)
{
    if (!ring || (slot != RT_KEY_CURRENT && slot != RT_KEY_FALLBACK) || !ring->slot[slot].present)
        return NULL;
    return ring->slot[slot].kid;
}

int rt__keyring_lookup(const rt_keyring_t *ring, rt_slice_t kid, rt__verkey_t *out)
{
    memset(out, 0, sizeof *out);
    if (!ring->slot[RT_KEY_CURRENT].present && !ring->slot[RT_KEY_FALLBACK].present &&
        ring->npubkeys == 0)
        return RT_TOK_ENOKEY;
    if (!kid.base) {
        /* No kid: only the current key may sign it. Trying every key in turn
         * would let a token pick its key (and so its algorithm) by trial. */
        const rt__signkey_t *k = &ring->slot[RT_KEY_CURRENT];
        if (!k->present)
            return RT_TOK_ENOKEY;
        out->alg = k->alg;
        out->kid = k->kid;
        out->env = k->env;
        out->hs_secret = k->hs_secret;
        out->ed_pk = k->ed_pk;
        return 0;
    }
    for (int s = 0; s < 2; s++) {
        const rt__signkey_t *k = &ring->slot[s];
        if (k->present && kid.len == RT_TOK_KID_LEN && memcmp(k->kid, kid.base, kid.len) == 0) {
            out->alg = k->alg;
            out->kid = k->kid;
            out->env = k->env;
            out->hs_secret = k->hs_secret;
            out->ed_pk = k->ed_pk;
            return 0;
        }
    }
    for (size_t i = 0; i < ring->npubkeys; i++) {
        const rt__pubkey_t *p = &ring->pubkeys[i];
        if (strlen(p->kid) == kid.len && memcmp(p->kid, kid.base, kid.len) == 0) {
            out->alg = RT_ALG_EDDSA;
            out->kid = p->kid;
            out->env = NULL;
            out->ed_pk = p->pk;
            return 0;
        }
    }
    return RT_TOK_EKID;
}

/* Append one OKP JWK to `keys`. Returns 0 or -1 on out-of-memory. */
static int jwks_add(json_t *keys, const char *kid, const uint8_t pk[32])
{
    char x[64];
    json_t *jwk;

    if (rt_b64url_encode(pk, 32, x, sizeof x) < 0)
        return -1;
    jwk = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed25519", "x", x, "kid",
                    kid, "alg", "EdDSA", "use", "sig");
    if (!jwk)
        return -1;
    return json_array_append_new(keys, jwk);
}

char *rt_keyring_jwks_json(const rt_keyring_t *ring)
{
    json_t *root, *keys;
    char *out = NULL;

    if (!ring)
        return NULL;
    keys = json_array();
    root = json_object();
    if (!keys || !root)
        goto done;
    for (int s = 0; s < 2; s++) {
        const rt__signkey_t *k = &ring->slot[s];
        if (k->present && k->alg == RT_ALG_EDDSA && jwks_add(keys, k->kid, k->ed_pk) != 0)
            goto done;
    }
    for (size_t i = 0; i < ring->npubkeys; i++)
        if (jwks_add(keys, ring->pubkeys[i].kid, ring->pubkeys[i].pk) != 0)
            goto done;
    if (json_object_set(root, "keys", keys) != 0)
        goto done;
    out = json_dumps(root, JSON_COMPACT);
done:
    json_decref(keys);
    json_decref(root);
    return out;
}
