/*
 * bench_tokens.c — mint and verify throughput of tokens/ on one core.
 *
 *   build/bench/bench_tokens [seconds-per-case]     (default 1)
 *
 * Each case runs for about the given time on the calling thread and prints
 * operations per second. Tokens carry one topic and the default options, as
 * the gateway's POST /v1/realtime/token does.
 */
#include "rt_tokens.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BENCH_NOW INT64_C(1700000000)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const rt_topic_ref_t topic = {"user:42", "ai", NULL};

static double bench_mint(const rt_keyring_t *ring, double seconds)
{
    rt_mint_req_t req = {.topics = &topic, .ntopics = 1};
    double start = now_s(), elapsed;
    long ops = 0;

    do {
        for (int i = 0; i < 64; i++) {
            char *jwt = NULL;
            if (rt_token_mint(ring, NULL, &req, BENCH_NOW, &jwt, NULL) != 0)
                abort();
            free(jwt);
        }
        ops += 64;
        elapsed = now_s() - start;
    } while (elapsed < seconds);
    return (double)ops / elapsed;
}

static double bench_verify(const rt_keyring_t *ring, double seconds, size_t *token_len)
{
    rt_mint_req_t req = {.topics = &topic, .ntopics = 1};
    char *jwt = NULL;
    size_t len = 0;
    double start, elapsed;
    long ops = 0;

    if (rt_token_mint(ring, NULL, &req, BENCH_NOW, &jwt, &len) != 0)
        abort();
    *token_len = len;
    start = now_s();
    do {
        for (int i = 0; i < 64; i++) {
            rt_claims_t c;
            if (rt_token_verify(ring, NULL, (rt_slice_t){jwt, len}, BENCH_NOW, &c) != 0)
                abort();
            rt_claims_clear(&c);
        }
        ops += 64;
        elapsed = now_s() - start;
    } while (elapsed < seconds);
    free(jwt);
    return (double)ops / elapsed;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    static const rt_alg_t algs[] = {RT_ALG_HS256, RT_ALG_EDDSA};
    char key[128];

    if (seconds <= 0 || rt_tokens_init() != 0 ||
        rt_signing_key_generate("bench", key, sizeof key) < 0)
        return 1;
    printf("| alg | mint ops/s | verify ops/s | token bytes |\n");
    printf("|---|---:|---:|---:|\n");
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
        rt_keyring_t *ring = rt_keyring_new();
        size_t token_len = 0;
        double mint, verify;

        if (!ring ||
            rt_keyring_set_signing_key(ring, RT_KEY_CURRENT, rt_slice_cstr(key), algs[i]) != 0)
            return 1;
        mint = bench_mint(ring, seconds);
        verify = bench_verify(ring, seconds, &token_len);
        printf("| %s | %.0f | %.0f | %zu |\n", rt_alg_name(algs[i]), mint, verify, token_len);
        rt_keyring_free(ring);
    }
    return 0;
}
