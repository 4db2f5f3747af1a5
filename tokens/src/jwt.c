/*
 * jwt.c — compact JWS mint and verify for rtgw subscription tokens.
 *
 * Verification order is the security argument:
 *   1. cheap, unauthenticated structure checks (size, segments, base64url);
 *   2. the header, trusted only to *name* a key: the algorithm always comes
 *      from the ring (pinned per key), and a header whose alg disagrees is
 *      refused rather than obeyed; "none" is refused by name;
 *   3. the signature, over the exact bytes received;
 *   4. only then the payload JSON and its claims.
 * A header without a kid is checked against the current key only (never by
 * trying each key in turn), so a token cannot choose its key by trial.
 *
 * JSON is parsed with JSON_REJECT_DUPLICATES and without
 * JSON_DISABLE_EOF_CHECK: duplicate keys (parser differentials between
 * services) and bytes after the JSON value are both refused. A header that is
 * byte for byte one the mint writes with a ring key, and a payload in the
 * mint's exact form, are read without jansson (claimsjson.c): the verdict is
 * the one the parse would give, at a fraction of the cost.
 */
#include "rt_tokens_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SIG_MAX 64

int rt__jws_sign(rt_alg_t alg, const uint8_t *key, size_t keylen, const uint8_t *input, size_t len,
                 uint8_t sig[SIG_MAX], size_t *sig_len)
{
    switch (alg) {
    case RT_ALG_HS256:
        rt__hmac_sha256(key, keylen, input, len, sig);
        *sig_len = 32;
        return 0;
    case RT_ALG_EDDSA:
        if (keylen != crypto_sign_SECRETKEYBYTES)
            return RT_TOK_EINVAL;
        crypto_sign_detached(sig, NULL, input, len, key);
        *sig_len = crypto_sign_BYTES;
        return 0;
    }
    return RT_TOK_EINVAL;
}

int rt__jws_verify_sig(rt_alg_t alg, const uint8_t *key, size_t keylen, const uint8_t *input,
                       size_t len, const uint8_t *sig, size_t sig_len)
{
    uint8_t mac[32];
    int ok;

    switch (alg) {
    case RT_ALG_HS256:
        if (sig_len != sizeof mac)
            return RT_TOK_ESIGNATURE;
        rt__hmac_sha256(key, keylen, input, len, mac);
        ok = crypto_verify_32(mac, sig) == 0;
        sodium_memzero(mac, sizeof mac);
        return ok ? 0 : RT_TOK_ESIGNATURE;
    case RT_ALG_EDDSA:
        if (keylen != crypto_sign_PUBLICKEYBYTES || sig_len != crypto_sign_BYTES)
            return RT_TOK_ESIGNATURE;
        return crypto_sign_verify_detached(sig, input, len, key) == 0 ? 0 : RT_TOK_ESIGNATURE;
    }
    return RT_TOK_ESIGNATURE;
}

/* "<header_b64>.b64(payload).b64(sig)" as a new malloc'd string: the header
 * comes encoded (the key's, rt__signkey_t.header). */
static int build_compact(rt_alg_t alg, const uint8_t *key, size_t keylen, rt_slice_t header_b64,
                         rt_slice_t payload, char **out, size_t *out_len)
{
    size_t pl = rt_b64url_encoded_len(payload.len);
    size_t sl = rt_b64url_encoded_len(SIG_MAX), cap, n;
    uint8_t sig[SIG_MAX];
    size_t sig_len = 0;
    char *buf;
    int rc;

    if (header_b64.len > SIZE_MAX / 4 || payload.len > SIZE_MAX / 2)
        return RT_TOK_EINVAL;
    cap = header_b64.len + 1 + pl + 1 + sl + 1;
    buf = malloc(cap);
    if (!buf)
        return RT_TOK_ENOMEM;
    memcpy(buf, header_b64.base, header_b64.len);
    n = header_b64.len;
    buf[n++] = '.';
    if ((rc = rt_b64url_encode((const uint8_t *)payload.base, payload.len, buf + n, cap - n)) < 0)
        goto fail;
    n += (size_t)rc;
    if ((rc = rt__jws_sign(alg, key, keylen, (const uint8_t *)buf, n, sig, &sig_len)) != 0)
        goto fail;
    buf[n++] = '.';
    if ((rc = rt_b64url_encode(sig, sig_len, buf + n, cap - n)) < 0)
        goto fail;
    n += (size_t)rc;
    *out = buf;
    if (out_len)
        *out_len = n;
    return 0;
fail:
    free(buf);
    return rc;
}

/* Key material of a ring slot for `alg`, as rt__jws_sign wants it. */
static void slot_signing_key(const rt__signkey_t *k, rt_alg_t alg, const uint8_t **key,
                             size_t *keylen)
{
    if (alg == RT_ALG_EDDSA) {
        *key = k->ed_sk;
        *keylen = sizeof k->ed_sk;
    } else {
        *key = k->hs_secret;
        *keylen = sizeof k->hs_secret;
    }
}

int rt__jws_forge(const rt_keyring_t *ring, rt_key_slot_t slot, rt_alg_t alg, rt_slice_t header,
                  rt_slice_t payload, char **out, size_t *out_len)
{
    const uint8_t *key;
    size_t keylen;

    if (!ring || (slot != RT_KEY_CURRENT && slot != RT_KEY_FALLBACK) || !out)
        return RT_TOK_EINVAL;
    if (!ring->slot[slot].present)
        return RT_TOK_ENOKEY;
    if (header.len > SIZE_MAX / 2)
        return RT_TOK_EINVAL;
    size_t hcap = rt_b64url_encoded_len(header.len) + 1;
    char *h = malloc(hcap);
    if (!h)
        return RT_TOK_ENOMEM;
    int rc = rt_b64url_encode((const uint8_t *)header.base, header.len, h, hcap);
    if (rc >= 0) {
        slot_signing_key(&ring->slot[slot], alg, &key, &keylen);
        rc = build_compact(alg, key, keylen, (rt_slice_t){h, (size_t)rc}, payload, out, out_len);
    }
    free(h);
    return rc;
}

static const rt_token_opts_t *opts_or_default(const rt_token_opts_t *opts, rt_token_opts_t *tmp)
{
    if (opts)
        return opts;
    rt_token_opts_default(tmp);
    return tmp;
}

static bool opts_valid(const rt_token_opts_t *o)
{
    return o->issuer && o->leeway >= 0 && o->ttl > 0 && o->max_ttl > 0 && o->max_topics > 0 &&
           o->max_name_bytes > 0 && o->max_token_bytes > 0;
}

int rt_token_mint(const rt_keyring_t *ring, const rt_token_opts_t *opts_in,
                  const rt_mint_req_t *req, int64_t now, char **out_jwt, size_t *out_len)
{
    rt_token_opts_t tmp;
    const rt_token_opts_t *opts = opts_or_default(opts_in, &tmp);
    const rt__signkey_t *k;
    rt__jw_t pw = {0};
    char *jwt = NULL;
    const uint8_t *key;
    size_t keylen, jwt_len = 0;
    uint8_t jti_raw[16];
    char jti[32];
    int64_t ttl, exp;
    int rc;

    if (out_jwt)
        *out_jwt = NULL;
    if (out_len)
        *out_len = 0;
    if (!ring || !req || !out_jwt || !opts_valid(opts) || (!req->topics && req->ntopics))
        return RT_TOK_EINVAL;
    k = &ring->slot[RT_KEY_CURRENT];
    if (!k->present)
        return RT_TOK_ENOKEY;
    if (req->ntopics == 0)
        return RT_TOK_ETOPICS_EMPTY;
    if (req->ntopics > opts->max_topics)
        return RT_TOK_ETOPICS_MANY;
    ttl = req->ttl ? req->ttl : opts->ttl;
    if (ttl < 0)
        return RT_TOK_EINVAL;
    if (ttl > opts->max_ttl)
        return RT_TOK_ELIFETIME;
    if (__builtin_add_overflow(now, ttl, &exp))
        return RT_TOK_EINVAL;
    for (size_t i = 0; i < req->ntopics; i++) {
        const rt_topic_ref_t *t = &req->topics[i];
        if ((rc = rt_name_validate(rt_slice_cstr(t->channel), opts->max_name_bytes)) ||
            (rc = rt_name_validate(rt_slice_cstr(t->name), opts->max_name_bytes)) ||
            (rc = rt_topic_kind_validate(rt_slice_cstr(t->kind ? t->kind : "run"))))
            return rc;
    }
    /* sub becomes a JSON string, so it must be valid UTF-8; the name rules are
     * the simplest strict rule that already exists. */
    if (req->sub && (rc = rt_name_validate(rt_slice_cstr(req->sub), opts->max_name_bytes)))
        return rc;
    if (rt_name_validate(rt_slice_cstr(opts->issuer), opts->max_name_bytes) != 0)
        return RT_TOK_EINVAL;

    randombytes_buf(jti_raw, sizeof jti_raw);
    if (rt_b64url_encode(jti_raw, sizeof jti_raw, jti, sizeof jti) < 0)
        return RT_TOK_EINVAL;

    /* The claims written directly (claimsjson.c), in the form verify reads
     * back without jansson; the header is the key's, written once. */
    rt__claims_out_t c = {.iss = opts->issuer,
                          .sub = req->sub ? req->sub : req->topics[0].channel,
                          .iat = now,
                          .exp = exp,
                          .jti = jti,
                          .env = k->env,
                          .topics = req->topics,
                          .ntopics = req->ntopics,
                          .publish = req->publish};
    rt__jw_claims(&pw, &c);
    if (pw.oom) {
        rc = RT_TOK_ENOMEM;
        goto done;
    }
    slot_signing_key(k, k->alg, &key, &keylen);
    rc = build_compact(k->alg, key, keylen, (rt_slice_t){k->header, k->header_len},
                       (rt_slice_t){pw.p, pw.len}, &jwt, &jwt_len);
    if (rc != 0)
        goto done;
    if (jwt_len > opts->max_token_bytes) { /* it would not verify: say so now */
        free(jwt);
        rc = RT_TOK_ETOO_LARGE;
        goto done;
    }
    *out_jwt = jwt;
    if (out_len)
        *out_len = jwt_len;
    rc = 0;
done:
    free(pw.p);
    return rc;
}

/* Parse one decoded segment as a JSON object. */
static int parse_object(const uint8_t *buf, size_t len, json_t **out)
{
    json_error_t err;
    *out = NULL;
    if (rt_json_depth(buf, len, RT_TOK_MAX_JSON_DEPTH) > RT_TOK_MAX_JSON_DEPTH)
        return RT_TOK_EJSON_DEPTH; /* before the recursive parser sees it */
    json_t *v = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &err);
    if (!v) {
        switch (json_error_code(&err)) {
        case json_error_duplicate_key:
            return RT_TOK_EDUPKEY;
        case json_error_out_of_memory:
            return RT_TOK_ENOMEM;
        default:
            return RT_TOK_EJSON;
        }
    }
    if (!json_is_object(v)) {
        json_decref(v);
        return RT_TOK_EJSON;
    }
    *out = v;
    return 0;
}

/* Header checks up to and including the key lookup (steps 2 of the order above). */
static int check_header(const rt_keyring_t *ring, json_t *h, rt__verkey_t *key)
{
    json_t *alg = json_object_get(h, "alg"), *typ = json_object_get(h, "typ");
    json_t *kid = json_object_get(h, "kid");
    rt_slice_t kid_sl = {NULL, 0};
    int rc, parsed;

    /* typ is a media type, so compared without case (RFC 7515 §4.1.9) */
    if (typ && !(json_is_string(typ) && json_string_length(typ) == 3 &&
                 strncasecmp(json_string_value(typ), "JWT", 3) == 0))
        return RT_TOK_ETYP;
    if (json_object_get(h, "crit")) /* no extension is understood, so none may be critical */
        return RT_TOK_ETYP;
    if (!alg)
        return RT_TOK_EALG;
    if (!json_is_string(alg) || (kid && !json_is_string(kid)))
        return RT_TOK_ETYP;
    if (json_string_length(alg) == 4 && strncasecmp(json_string_value(alg), "none", 4) == 0)
        return RT_TOK_EALG_NONE;
    if (kid) {
        kid_sl.base = json_string_value(kid);
        kid_sl.len = json_string_length(kid);
        if (kid_sl.len == 0 || kid_sl.len > RT__KID_MAX)
            return RT_TOK_EKID;
    }
    if ((rc = rt__keyring_lookup(ring, kid_sl, key)) != 0)
        return rc;
    parsed = rt_alg_parse((rt_slice_t){json_string_value(alg), json_string_length(alg)});
    if (parsed < 0 || (rt_alg_t)parsed != key->alg)
        return RT_TOK_EALG;
    return 0;
}

/* The signing slot whose own header (the mint's, rt__signkey_t.header) seg is,
 * byte for byte; -1 if none. Headers are public: memcmp is fine. */
static int minted_header_slot(const rt_keyring_t *ring, rt_slice_t seg)
{
    for (int s = 0; s < 2; s++) {
        const rt__signkey_t *k = &ring->slot[s];
        if (k->present && k->header_len == seg.len && memcmp(k->header, seg.base, seg.len) == 0)
            return s;
    }
    return -1;
}

/* check_header's verdict on {"alg":<slot's>,"typ":"JWT","kid":<slot's>}, without
 * parsing it: the key that kid names, and its algorithm must be the slot's. */
static int minted_header_check(const rt_keyring_t *ring, int s, rt__verkey_t *key)
{
    const rt__signkey_t *k = &ring->slot[s];
    int rc = rt__keyring_lookup(ring, (rt_slice_t){k->kid, strlen(k->kid)}, key);
    if (rc == 0 && key->alg != k->alg)
        rc = RT_TOK_EALG;
    return rc;
}

int rt_token_verify(const rt_keyring_t *ring, const rt_token_opts_t *opts_in, rt_slice_t jwt,
                    int64_t now, rt_claims_t *out)
{
    rt_token_opts_t tmp;
    const rt_token_opts_t *opts = opts_or_default(opts_in, &tmp);
    const char *d1, *d2;
    rt_slice_t seg[3];
    uint8_t *buf = NULL, *dec[3];
    int declen[3];
    size_t off = 0;
    json_t *header = NULL, *payload = NULL;
    rt__verkey_t key;
    rt__claims_raw_t raw;
    int rc, hslot;

    if (out)
        memset(out, 0, sizeof *out);
    if (!ring || !out || (!jwt.base && jwt.len) || !opts_valid(opts))
        return RT_TOK_EINVAL;
    if (jwt.len > opts->max_token_bytes)
        return RT_TOK_ETOO_LARGE;

    /* 1. structure */
    if (jwt.len == 0)
        return RT_TOK_EMALFORMED;
    d1 = memchr(jwt.base, '.', jwt.len);
    d2 = d1 ? memchr(d1 + 1, '.', jwt.len - (size_t)(d1 + 1 - jwt.base)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', jwt.len - (size_t)(d2 + 1 - jwt.base)))
        return RT_TOK_EMALFORMED;
    seg[0] = (rt_slice_t){jwt.base, (size_t)(d1 - jwt.base)};
    seg[1] = (rt_slice_t){d1 + 1, (size_t)(d2 - d1 - 1)};
    seg[2] = (rt_slice_t){d2 + 1, jwt.len - (size_t)(d2 + 1 - jwt.base)};
    /* An empty signature is let through so that "alg":"none" tokens are
     * reported as such; it can never verify. */
    if (seg[0].len == 0 || seg[1].len == 0)
        return RT_TOK_EMALFORMED;
    buf = malloc(jwt.len); /* decoded bytes of all three segments fit in the input's size */
    if (!buf)
        return RT_TOK_ENOMEM;
    hslot = minted_header_slot(ring, seg[0]);
    for (int i = 0; i < 3; i++) {
        dec[i] = buf + off;
        if (i == 0 && hslot >= 0) { /* known bytes, known to decode */
            declen[0] = 0;
            continue;
        }
        declen[i] = rt_b64url_decode(seg[i], dec[i], jwt.len - off);
        if (declen[i] < 0) {
            rc = RT_TOK_EBASE64;
            goto done;
        }
        off += (size_t)declen[i];
    }

    /* 2. header: names a key, never chooses an algorithm */
    if (hslot >= 0)
        rc = minted_header_check(ring, hslot, &key);
    else if ((rc = parse_object(dec[0], (size_t)declen[0], &header)) == 0)
        rc = check_header(ring, header, &key);
    if (rc != 0)
        goto done;

    /* 3. signature over the bytes as received */
    rc = rt__jws_verify_sig(key.alg, key.alg == RT_ALG_EDDSA ? key.ed_pk : key.hs_secret,
                            key.alg == RT_ALG_EDDSA ? crypto_sign_PUBLICKEYBYTES : 32,
                            (const uint8_t *)jwt.base, (size_t)(d2 - jwt.base), dec[2],
                            (size_t)declen[2]);
    if (rc != 0)
        goto done;

    /* 4. payload and claims: the mint's own form read directly, any other
     * through jansson (claimsjson.c) */
    if (rt__claims_match(dec[1], (size_t)declen[1], &raw))
        rc = rt__claims_check(&raw, opts, &key, now, out);
    else if ((rc = parse_object(dec[1], (size_t)declen[1], &payload)) == 0)
        rc = rt__claims_decode(payload, opts, &key, now, out);
done:
    json_decref(header);
    json_decref(payload);
    free(buf);
    return rc;
}
