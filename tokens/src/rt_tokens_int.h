/*
 * rt_tokens_int.h — private to tokens/ (and its tests). Not installed, not stable.
 *
 * Holds the key ring layout shared by keyring.c and jwt.c, the small crypto and
 * hex helpers, and two hooks the unit tests and the fuzz target use to forge
 * tokens (rt__jws_forge) and to run published JWS vectors against the bare
 * signature layer (rt__jws_sign / rt__jws_verify_sig).
 */
#ifndef RT_TOKENS_INT_H
#define RT_TOKENS_INT_H

#include "rt_tokens.h"

#include <jansson.h>
#include <sodium.h>

#define RT__KEY_SECRET_MIN 32
#define RT__KEY_SECRET_MAX 256
/* "signkey-" + env + "-" + hex + NUL */
#define RT__KEY_STR_MAX (8 + RT_TOK_ENV_MAX + 1 + 2 * RT__KEY_SECRET_MAX + 1)
#define RT__KID_MAX 64
#define RT__PUBKEYS_MAX 64

/* One signing key in a ring slot. Every field is wiped when the slot is
 * replaced or the ring freed. Fixed-size buffers so that the bearer check can
 * compare whole buffers in constant time. */
typedef struct {
    bool present;
    rt_alg_t alg;
    char env[RT_TOK_ENV_MAX + 1];
    char kid[RT_TOK_KID_LEN + 1];
    char plain[RT__KEY_STR_MAX]; /* the key string as configured, zero padded */
    size_t plain_len;
    char hashed[RT_TOK_HASHED_KEY_MAX]; /* its hashed (SDK Bearer) form, zero padded */
    size_t hashed_len;
    uint8_t raw[RT__KEY_SECRET_MAX]; /* hex_decode(<hex>) */
    size_t raw_len;
    uint8_t hs_secret[32];                     /* HS256 secret */
    uint8_t ed_pk[crypto_sign_PUBLICKEYBYTES]; /* Ed25519 public key */
    uint8_t ed_sk[crypto_sign_SECRETKEYBYTES]; /* Ed25519 secret key (seed || pk) */
    /* base64url of the header the mint writes with this key (rt__jw_header):
     * minted with it, and a token whose header is these bytes needs no parse. */
    char header[96];
    size_t header_len;
} rt__signkey_t;

typedef struct {
    char kid[RT__KID_MAX + 1];
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
} rt__pubkey_t;

struct rt_keyring_s {
    rt__signkey_t slot[2]; /* indexed by rt_key_slot_t */
    rt__pubkey_t *pubkeys;
    size_t npubkeys;
};

/* What verification needs to know about the key a token names. Borrowed from
 * the ring; valid while the ring is. `env` is NULL for verify-only keys. */
typedef struct {
    rt_alg_t alg;
    const char *kid;
    const char *env;
    const uint8_t *hs_secret; /* HS256 keys */
    const uint8_t *ed_pk;     /* EdDSA keys */
} rt__verkey_t;

/* Find the key a token's kid names: current slot, then fallback, then
 * verify-only keys. kid.base == NULL means "no kid in the header", which
 * selects the current key only. Returns 0, RT_TOK_EKID or RT_TOK_ENOKEY. */
int rt__keyring_lookup(const rt_keyring_t *ring, rt_slice_t kid, rt__verkey_t *out);

/* HMAC-SHA256 with a key of any length. */
void rt__hmac_sha256(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t len,
                     uint8_t out[32]);

/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void rt__hex_encode(const uint8_t *in, size_t n, char *out);
/* Decode an even-length hex string (either case). Returns the byte count, or -1. */
int rt__hex_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* Parse and validate "signkey-<env>-<hex>": on success copies env (NUL-terminated)
 * and the decoded secret into the given buffers (raw must hold RT__KEY_SECRET_MAX). */
int rt__signing_key_parse(rt_slice_t key, char env[RT_TOK_ENV_MAX + 1], uint8_t *raw,
                          size_t *raw_len);

/* Sign `input` with alg: HS256 takes a secret of any length, EdDSA a 64-byte
 * libsodium secret key. sig must hold 64 bytes; *sig_len gets 32 or 64. */
int rt__jws_sign(rt_alg_t alg, const uint8_t *key, size_t keylen, const uint8_t *input, size_t len,
                 uint8_t sig[64], size_t *sig_len);
/* Check a signature in constant time. HS256: key is the secret; EdDSA: key is
 * the 32-byte public key. Returns 0 or RT_TOK_ESIGNATURE. */
int rt__jws_verify_sig(rt_alg_t alg, const uint8_t *key, size_t keylen, const uint8_t *input,
                       size_t len, const uint8_t *sig, size_t sig_len);

/* Tests and fuzzing only: build "b64(header).b64(payload).b64(sig)" from raw
 * header and payload bytes, signed with `alg` using the material derived from
 * the key in `slot` (whatever alg that slot is pinned to). *out is malloc'd. */
int rt__jws_forge(const rt_keyring_t *ring, rt_key_slot_t slot, rt_alg_t alg, rt_slice_t header,
                  rt_slice_t payload, char **out, size_t *out_len);

/* ---- the claims, between their JSON and their checks ---- */

/* Topics the fast reading (rt__claims_match) takes; more go through jansson. */
#define RT__FAST_TOPICS 8

typedef struct {
    rt_slice_t channel, name, kind;
} rt__topic_raw_t;

/* A payload's claims as found, present and of the right JSON type, not yet
 * believed: the slices point into the JSON (or jansson's strings). */
typedef struct {
    rt_slice_t iss, sub, jti, env;
    int64_t iat, exp, nbf;
    bool has_nbf, publish;
    size_t ntopics;
    rt__topic_raw_t *topics; /* inl, or malloc'd when there are more */
    rt__topic_raw_t inl[RT__FAST_TOPICS];
} rt__claims_raw_t;

/* Decode and check the claims of an authenticated payload (claims.c). `key` is
 * the key that verified the signature. Fills *out (zeroed on failure). */
int rt__claims_decode(json_t *payload, const rt_token_opts_t *opts, const rt__verkey_t *key,
                      int64_t now, rt_claims_t *out);
/* The same checks for claims read by rt__claims_match. */
int rt__claims_check(const rt__claims_raw_t *raw, const rt_token_opts_t *opts,
                     const rt__verkey_t *key, int64_t now, rt_claims_t *out);

/* claimsjson.c: the mint's JSON, written directly, and read back when a
 * payload is in exactly that form. */
typedef struct {
    char *p; /* NUL-terminated while !oom; the caller frees */
    size_t len, cap;
    bool oom;
} rt__jw_t;

typedef struct {
    const char *iss, *sub, *jti, *env;
    int64_t iat, exp;
    const rt_topic_ref_t *topics;
    size_t ntopics;
    bool publish;
} rt__claims_out_t;

/* {"alg":…,"typ":"JWT","kid":…} and the claims, appended to w: the bytes
 * json_dumps(JSON_COMPACT) makes of the same objects. */
void rt__jw_header(rt__jw_t *w, const char *alg, const char *kid);
void rt__jw_claims(rt__jw_t *w, const rt__claims_out_t *c);
/* true and *raw filled if buf is a payload in the mint's exact form with
 * 1..RT__FAST_TOPICS topics; false otherwise (not an error: parse it). */
bool rt__claims_match(const uint8_t *buf, size_t len, rt__claims_raw_t *raw);

#endif /* RT_TOKENS_INT_H */
