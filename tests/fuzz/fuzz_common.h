/*
 * fuzz_common.h — the fixed key ring and clock shared by the token_verify
 * fuzz target and its corpus generator, so that seeds minted by the
 * generator verify inside the target.
 */
#ifndef RT_FUZZ_COMMON_H
#define RT_FUZZ_COMMON_H

#include "rt_tokens.h"

#define FUZZ_NOW INT64_C(1700000000)
#define FUZZ_MAX_TOPICS 8
/* Public test keys: never use them anywhere real. */
#define FUZZ_KEY_HS "signkey-test-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define FUZZ_KEY_ED "signkey-test-fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

/* Current: FUZZ_KEY_HS pinned to HS256. Fallback: FUZZ_KEY_ED pinned to EdDSA.
 * NULL on failure. */
static inline rt_keyring_t *fuzz_ring_new(void)
{
    rt_keyring_t *ring;

    if (rt_tokens_init() != 0 || !(ring = rt_keyring_new()))
        return NULL;
    if (rt_keyring_set_signing_key(ring, RT_KEY_CURRENT, rt_slice_cstr(FUZZ_KEY_HS),
                                   RT_ALG_HS256) != 0 ||
        rt_keyring_set_signing_key(ring, RT_KEY_FALLBACK, rt_slice_cstr(FUZZ_KEY_ED),
                                   RT_ALG_EDDSA) != 0) {
        rt_keyring_free(ring);
        return NULL;
    }
    return ring;
}

static inline void fuzz_opts(rt_token_opts_t *o)
{
    rt_token_opts_default(o);
    o->max_topics = FUZZ_MAX_TOPICS;
    o->max_name_bytes = 64;
}

#endif
