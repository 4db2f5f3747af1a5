/*
 * rt_tokens.h — signing keys, key ring and JWT subscription tokens for rtgw.
 *
 * A library with no I/O: it never reads a clock, a file or a socket. The caller
 * passes "now" (Unix seconds) in, so verification is deterministic and testable.
 *
 * Thread safety: a key ring is immutable after it is built (rt_keyring_set_*),
 * so any number of threads may mint and verify with one ring concurrently.
 * Building or freeing a ring must not race with its use.
 *
 * Memory: functions returning allocated memory say so; nothing here aborts on
 * out-of-memory, RT_TOK_ENOMEM is returned instead. Secret material inside a
 * ring is wiped (sodium_memzero) when the ring is freed.
 *
 * rt_tokens_init() must be called once before anything else (it initialises
 * libsodium); it is safe to call more than once.
 */
#ifndef RT_TOKENS_H
#define RT_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors --------------------------------------------------------------
 * Every refusal has its own stable negative code, a stable machine name
 * (rt_tok_errname: what the gateway puts in JSON errors, metrics labels and
 * close reasons) and a readable sentence (rt_tok_strerror). Neither ever
 * contains token or key material. Codes are stable: append, never renumber. */
#define RT_TOK_ERRNO_MAP(XX)                                                                       \
    XX(ENOMEM, -1, "out_of_memory", "out of memory")                                               \
    XX(EINVAL, -2, "invalid_argument", "invalid argument")                                         \
    XX(EKEY_FORMAT, -10, "key_malformed", "signing key is not of the form signkey-<env>-<hex>")    \
    XX(EKEY_HEX, -11, "key_not_hex", "signing key secret part is not an even-length hex string")   \
    XX(EKEY_SHORT, -12, "key_too_short", "signing key secret is shorter than 32 bytes")            \
    XX(EKEY_LONG, -13, "key_too_long", "signing key secret is longer than 256 bytes")              \
    XX(EKEY_ENV, -14, "key_env_invalid",                                                           \
       "signing key environment must be 1-64 characters of [a-z0-9_]")                             \
    XX(EKEY_MISMATCH, -15, "key_mismatch", "signing key does not match the gateway's keys")        \
    XX(ENOKEY, -16, "no_key", "no key is configured for this operation")                           \
    XX(ETOO_LARGE, -20, "token_too_large", "token is larger than the allowed size")                \
    XX(EMALFORMED, -21, "token_malformed", "token is not three base64url segments")                \
    XX(EBASE64, -22, "token_bad_base64", "token segment is not canonical unpadded base64url")      \
    XX(EJSON, -23, "token_bad_json", "token header or payload is not a JSON object")               \
    XX(EDUPKEY, -24, "token_duplicate_key", "token JSON has a duplicate key")                      \
    XX(EALG, -25, "token_bad_alg", "token alg is not the algorithm pinned for its key")            \
    XX(EALG_NONE, -26, "token_alg_none", "unsigned tokens (alg none) are refused")                 \
    XX(ETYP, -27, "token_bad_header", "token header has an unexpected typ, crit or field type")    \
    XX(EKID, -28, "token_unknown_kid", "token kid names no key known to this gateway")             \
    XX(ESIGNATURE, -29, "token_bad_signature", "token signature does not verify")                  \
    XX(EEXPIRED, -30, "token_expired", "token has expired")                                        \
    XX(ENOT_YET_VALID, -31, "token_not_yet_valid", "token is not valid yet (nbf in the future)")   \
    XX(EIAT_FUTURE, -32, "token_issued_in_future",                                                 \
       "token was issued in the future (check the clocks)")                                        \
    XX(EISSUER, -33, "token_wrong_issuer", "token issuer is not this gateway's issuer")            \
    XX(ECLAIM_MISSING, -34, "token_missing_claim", "token lacks a required claim")                 \
    XX(ECLAIM_TYPE, -35, "token_bad_claim_type", "token claim has the wrong JSON type")            \
    XX(ETOPICS_MANY, -36, "token_too_many_topics", "token grants more topics than allowed")        \
    XX(ENAME_EMPTY, -37, "name_empty", "channel or topic name is empty")                           \
    XX(ENAME_LONG, -38, "name_too_long", "channel or topic name is too long")                      \
    XX(ENAME_CHARS, -39, "name_bad_chars",                                                         \
       "channel or topic name has control characters or invalid UTF-8")                            \
    XX(ELIFETIME, -40, "token_lifetime_too_long", "token lifetime exceeds the configured maximum") \
    XX(EENV, -41, "token_wrong_env", "token env does not match the key's environment")             \
    XX(ENOT_ALLOWED, -42, "topic_not_allowed", "token does not grant this channel and topic")      \
    XX(EJSON_DEPTH, -43, "token_json_too_deep",                                                    \
       "token header or payload nests deeper than RT_TOK_MAX_JSON_DEPTH")                          \
    XX(ETOPIC_KIND, -44, "token_bad_topic_kind",                                                   \
       "topic kind is not one Inngest uses (\"run\" or \"event\")")                                \
    XX(ETOPICS_EMPTY, -45, "token_no_topics", "token grants no topics")

typedef enum {
#define RT_TOK_XX(name, code, id, text) RT_TOK_##name = code,
    RT_TOK_ERRNO_MAP(RT_TOK_XX)
#undef RT_TOK_XX
        RT_TOK_OK = 0
} rt_tok_err_t;

/* Readable sentence for an error code; never NULL, static storage. */
const char *rt_tok_strerror(int code);
/* Stable snake_case identifier for an error code ("token_expired"); never NULL. */
const char *rt_tok_errname(int code);

/* Initialise libsodium. Returns 0, or RT_TOK_ENOMEM if libsodium cannot start. */
int rt_tokens_init(void);

/* ---- slices --------------------------------------------------------------- */
/* A length-carrying view of bytes that the holder does not own. */
typedef struct {
    const char *base;
    size_t len;
} rt_slice_t;

#define RT_SLICE_LIT(s) ((rt_slice_t){(s), sizeof(s) - 1})
rt_slice_t rt_slice_cstr(const char *s);

/* ---- limits ---------------------------------------------------------------- */
#define RT_TOK_ENV_MAX 64
#define RT_TOK_KID_LEN 16 /* hex characters */
#define RT_TOK_HASHED_KEY_MAX (8 + RT_TOK_ENV_MAX + 1 + 64 + 1)

/* ---- signing keys ------------------------------------------------------------
 * Inngest format: "signkey-<env>-<hex>", e.g. "signkey-prod-0123…". <env> is
 * 1..64 chars of [a-z0-9_]; <hex> decodes to 32..256 bytes.
 * The hashed form that Inngest SDKs send as a Bearer credential is
 * "signkey-<env>-" + hex(sha256(hex_decode(<hex>))). */

/* Validate a signing key without keeping it. Returns 0 or an RT_TOK_EKEY_* code. */
int rt_signing_key_validate(rt_slice_t key);

/* Write the hashed form of `key` into out (NUL-terminated; cap must be at least
 * RT_TOK_HASHED_KEY_MAX). Returns the length written, or a negative code. */
int rt_signing_key_hash(rt_slice_t key, char *out, size_t cap);

/* Create a new random key "signkey-<env>-<64 hex>" into out (cap >= 8+len(env)+1+64+1).
 * Returns the length written, or a negative code. */
int rt_signing_key_generate(const char *env, char *out, size_t cap);

/* ---- algorithms ---------------------------------------------------------------- */
typedef enum {
    RT_ALG_HS256 = 0, /* HMAC-SHA256, secret derived from the signing key (default) */
    RT_ALG_EDDSA = 1  /* Ed25519, key pair derived from the signing key */
} rt_alg_t;

/* "HS256" / "EdDSA"; and the reverse (returns -1 for an unknown name). */
const char *rt_alg_name(rt_alg_t alg);
int rt_alg_parse(rt_slice_t name);

/* ---- key ring -----------------------------------------------------------------
 * Holds the current signing key and an optional fallback (the previous key during
 * a rotation), each with its pinned algorithm, plus optional verify-only Ed25519
 * public keys. Tokens are always minted with the current key; they verify with
 * whichever key their `kid` names. The token secret and Ed25519 seed are derived
 * from the signing key (see docs/protocol.md, "Token keys"):
 *   hs256 secret = HMAC-SHA256(key = hex_decode(<hex>), msg = "rtgw/v1/hs256")
 *   ed25519 seed = HMAC-SHA256(key = hex_decode(<hex>), msg = "rtgw/v1/ed25519")
 *   kid          = hex(first 8 bytes of HMAC-SHA256(key = hex_decode(<hex>), msg = "rtgw/v1/kid/" +
 * alg name)) The ring owns copies of everything passed in; callers may wipe their buffers. */
typedef struct rt_keyring_s rt_keyring_t;

typedef enum { RT_KEY_CURRENT = 0, RT_KEY_FALLBACK = 1 } rt_key_slot_t;

/* New empty ring; NULL on out-of-memory. Free with rt_keyring_free. */
rt_keyring_t *rt_keyring_new(void);
/* Wipes secrets and frees the ring. NULL is ignored. */
void rt_keyring_free(rt_keyring_t *ring);

/* Install a signing key in a slot with its pinned algorithm, replacing what was
 * there. Returns 0 or an RT_TOK_EKEY_* code (the ring is then unchanged), or
 * RT_TOK_EINVAL for an unknown slot or algorithm. */
int rt_keyring_set_signing_key(rt_keyring_t *ring, rt_key_slot_t slot, rt_slice_t key,
                               rt_alg_t alg);

/* Add a verify-only Ed25519 public key (32 raw bytes) under `kid` (1..64 chars).
 * Lets a gateway verify EdDSA tokens without holding the signing key.
 * The kid must be printable ASCII (0x21..0x7e); a key that is not a valid
 * point of the main subgroup is refused; at most 64 such keys; adding a kid
 * again replaces its key. Returns 0, RT_TOK_EINVAL or RT_TOK_ENOMEM.
 * Such keys carry no environment, so the `env` claim of the tokens they verify
 * is not compared. Lookup order for a kid: current, fallback, verify-only. */
int rt_keyring_add_ed25519_public(rt_keyring_t *ring, rt_slice_t kid, const uint8_t pk[32]);

/* Check an HTTP Bearer credential: the plain signing key or its hashed form, for
 * the current or the fallback key. All comparisons run in constant time and
 * every candidate is compared (no early exit that reveals which one matched).
 * Returns 0 and sets *matched (if non-NULL) to the slot on success, or
 * RT_TOK_EKEY_MISMATCH / RT_TOK_ENOKEY. */
int rt_keyring_check_bearer(const rt_keyring_t *ring, rt_slice_t credential,
                            rt_key_slot_t *matched);

/* The environment (<env>) of the key in `slot`, or NULL if the slot is empty. */
const char *rt_keyring_env(const rt_keyring_t *ring, rt_key_slot_t slot);
/* The kid of the key in `slot`, or NULL if the slot is empty. */
const char *rt_keyring_kid(const rt_keyring_t *ring, rt_key_slot_t slot);

/* JWKS JSON ({"keys":[{"kty":"OKP","crv":"Ed25519","x":…,"kid":…,"alg":"EdDSA","use":"sig"}]})
 * for every EdDSA key in the ring (signing slots and verify-only keys). HS256
 * keys are never exported. Returns a new malloc'd NUL-terminated string the
 * caller frees, or NULL on out-of-memory. */
char *rt_keyring_jwks_json(const rt_keyring_t *ring);

/* ---- claims -------------------------------------------------------------------- */
typedef struct {
    char *channel; /* owned by the enclosing rt_claims_t */
    char *name;    /* topic name; "*" means every topic of the channel */
    char *kind;    /* "run" in the Inngest protocol; kept as given */
} rt_topic_t;

typedef struct {
    char *iss;
    char *sub;
    char *jti;
    char *env;
    char kid[65];
    int64_t iat;
    int64_t exp;
    int64_t nbf; /* 0 when absent */
    rt_topic_t *topics;
    size_t ntopics;
    bool publish; /* the token may also publish to its granted topics */
} rt_claims_t;

/* Free every string and the topic array inside claims, and zero the struct.
 * The struct itself is the caller's (usually on the stack). */
void rt_claims_clear(rt_claims_t *claims);

/* ---- options --------------------------------------------------------------------- */
typedef struct {
    const char *issuer;     /* "iss" written and required; default "rtgw" */
    int64_t ttl;            /* seconds; default 60 */
    int64_t max_ttl;        /* seconds; mint refuses ttl above it, verify refuses
                               exp - iat above max_ttl + leeway; default 3600 */
    int64_t leeway;         /* clock leeway in seconds; default 30 */
    size_t max_token_bytes; /* default 8192 */
    size_t max_topics;      /* default 64 */
    size_t max_name_bytes;  /* channel and topic names; default 256 */
} rt_token_opts_t;

/* Fill opts with the defaults above. */
void rt_token_opts_default(rt_token_opts_t *opts);

/* Validate a channel or topic name: 1..max bytes, valid UTF-8, no control
 * characters (C0, DEL, C1). Returns 0 or RT_TOK_ENAME_*. */
int rt_name_validate(rt_slice_t name, size_t max_bytes);

/* Validate a topic's kind: one of the kinds Inngest uses, "run" or "event".
 * Returns 0 or RT_TOK_ETOPIC_KIND. */
int rt_topic_kind_validate(rt_slice_t kind);

/* ---- mint ------------------------------------------------------------------------- */
typedef struct {
    const char *channel;
    const char *name;
    const char *kind; /* NULL → "run" */
} rt_topic_ref_t;

typedef struct {
    const char *sub; /* NULL → the first topic's channel */
    const rt_topic_ref_t *topics;
    size_t ntopics; /* 1..opts->max_topics */
    int64_t ttl;    /* 0 → opts->ttl; must be <= opts->max_ttl */
    bool publish;
} rt_mint_req_t;

/* Mint a token with the ring's current key (alg pinned to that key). `now` is
 * Unix seconds. opts may be NULL for the defaults; sub, when given, must pass
 * rt_name_validate (it becomes a JSON string). jti is 16 random bytes, base64url. On success
 * *out_jwt is a new malloc'd NUL-terminated string the caller frees, and *out_len its length
 * (out_len may be NULL). Returns 0 or a negative code (names are validated
 * like verification does, so a token this mints always verifies). */
int rt_token_mint(const rt_keyring_t *ring, const rt_token_opts_t *opts, const rt_mint_req_t *req,
                  int64_t now, char **out_jwt, size_t *out_len);

/* ---- verify ------------------------------------------------------------------------- */
/* Verify a compact JWS and decode its claims. Checks, in order: size bound,
 * three canonical base64url segments, header JSON (duplicate keys refused,
 * typ "JWT" if present, no crit), kid known, alg equal to the kid's pinned
 * algorithm ("none" refused by name), signature, then payload JSON (duplicate
 * keys refused) and claims: iss, sub, iat, exp, jti, env, topics, publish
 * present with their types, exp > now - leeway, nbf <= now + leeway,
 * iat <= now + leeway, env equal to the signing key's env, topic names valid,
 * topic count within max_topics.
 * Precisely: after the header parses, typ (compared without case, as media
 * types are) and crit are checked, then alg
 * (missing → EALG, not a string → ETYP, "none" in any case → EALG_NONE, before
 * the kid is looked up), then the kid. A header without kid is checked against
 * the current key only (never each key in turn, which would let a token pick
 * its key). opts may be NULL for the defaults. An empty topics array is
 * accepted (it grants nothing).
 * On success fills *out (caller calls rt_claims_clear) and returns 0; on
 * failure *out is zeroed and the specific negative code is returned. */
int rt_token_verify(const rt_keyring_t *ring, const rt_token_opts_t *opts, rt_slice_t jwt,
                    int64_t now, rt_claims_t *out);

/* True if the claims grant (channel, topic): an exact (channel, name) pair, or
 * (channel, "*"). Comparison is exact bytes; names are not normalised. */
bool rt_claims_grants(const rt_claims_t *claims, rt_slice_t channel, rt_slice_t topic);

/* ---- base64url (exposed for the gateway and tests) --------------------------------- */
/* Encoded length (no padding) of n bytes. */
size_t rt_b64url_encoded_len(size_t n);
/* Encode without padding into out (cap >= rt_b64url_encoded_len(n)+1, NUL-terminated).
 * Returns the encoded length, or RT_TOK_EINVAL. */
int rt_b64url_encode(const uint8_t *in, size_t n, char *out, size_t cap);
/* Decode strictly: unpadded, canonical (unused trailing bits zero), no whitespace.
 * Returns the decoded length or RT_TOK_EBASE64 (RT_TOK_EINVAL if cap is too small
 * for the decoded length, which is at most in.len * 3 / 4). */
int rt_b64url_decode(rt_slice_t in, uint8_t *out, size_t cap);

#ifdef __cplusplus
}
#endif
/* ---- JSON nesting ---- */

/* Deepest nesting a token's header or payload may have (claims need 3). */
#define RT_TOK_MAX_JSON_DEPTH 16

/* The deepest nesting of arrays and objects in the JSON text buf[0..len), from
 * one linear scan that skips strings: no recursion, no allocation, any thread.
 * Stops as soon as the depth passes stop_above and returns that depth, so
 * `rt_json_depth(b, n, max) > max` is the check to make before handing
 * untrusted text to a recursive parser. */
size_t rt_json_depth(const void *buf, size_t len, size_t stop_above);

#endif /* RT_TOKENS_H */
