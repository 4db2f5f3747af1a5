/*
 * token.c — `rtgw token`: mint a subscription (or publish) token offline
 * with RTGW_SIGNING_KEY, exactly as POST /v1/realtime/token does, and with
 * --explain print its decoded claims to stderr. Main thread; the key stays
 * in the key ring and is never printed.
 */
#include "cli.h"
#include "clock.h"
#include "rt_tokens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RT_TOKEN_MAX_TOPICS 64

typedef struct {
    const char *channel;
    const char *topics[RT_TOKEN_MAX_TOPICS];
    int ntopics;
    long long ttl; /* 0: the configured default */
    bool explain, publish;
} token_args_t;

static void token_usage(void)
{
    printf("Usage: rtgw token --channel C --topic T [--topic T2 ...] [--ttl SECONDS] "
           "[--publish] [--explain]\n\n"
           "Mints a token offline with RTGW_SIGNING_KEY (environment or .env), the same way\n"
           "POST /v1/realtime/token does. --explain also prints the decoded claims to "
           "stderr.\n"
           "Topic * grants every topic of the channel. RTGW_TOKEN_ALG, RTGW_TOKEN_ISSUER,\n"
           "RTGW_TOKEN_TTL and RTGW_TOKEN_MAX_TTL apply.\n");
}

/* Returns -1 to go on, or the exit code (0 after --help, 2 bad usage). */
static int token_parse(int argc, char **argv, token_args_t *a)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--channel") == 0 && i + 1 < argc) {
            a->channel = argv[++i];
        } else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc) {
            if (a->ntopics == RT_TOKEN_MAX_TOPICS) {
                fprintf(stderr, "rtgw token: at most 64 --topic options\n");
                return 2;
            }
            a->topics[a->ntopics++] = argv[++i];
        } else if (strcmp(argv[i], "--ttl") == 0 && i + 1 < argc) {
            char *end;
            a->ttl = strtoll(argv[++i], &end, 10);
            if (*end || a->ttl <= 0) {
                fprintf(stderr, "rtgw token: --ttl must be a positive number of seconds\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--explain") == 0) {
            a->explain = true;
        } else if (strcmp(argv[i], "--publish") == 0) {
            a->publish = true;
        } else if (strcmp(argv[i], "--help") == 0) {
            token_usage();
            return 0;
        } else {
            fprintf(stderr, "rtgw token: unknown option '%s' (see rtgw token --help)\n", argv[i]);
            return 2;
        }
    }
    if (!a->channel || a->ntopics == 0) {
        fprintf(stderr, "rtgw token: --channel and at least one --topic are required\n");
        return 2;
    }
    return -1;
}

/* The token options of the configuration, as the gateway applies them. */
static void token_opts(const rt_config_t *cfg, rt_token_opts_t *o)
{
    rt_token_opts_default(o);
    o->issuer = cfg->issuer;
    o->ttl = cfg->token_ttl_s;
    o->max_ttl = cfg->token_max_ttl_s;
    o->max_topics = (size_t)cfg->max_topics;
    o->max_name_bytes = (size_t)cfg->max_name_bytes;
}

/* --explain: verify jwt as the gateway would and print its claims to stderr. */
static void token_explain(rt_keyring_t *ring, const rt_token_opts_t *o, const char *jwt,
                          const rt_config_t *cfg)
{
    rt_claims_t c;
    if (rt_token_verify(ring, o, rt_slice_cstr(jwt), rt_clock_wall_ms() / 1000, &c) != 0)
        return;
    fprintf(stderr, "kid=%s alg=%s iss=%s sub=%s env=%s exp=%lld (in %llds) publish=%s\n", c.kid,
            cfg->token_alg, c.iss, c.sub, c.env, (long long)c.exp,
            (long long)(c.exp - rt_clock_wall_ms() / 1000), c.publish ? "yes" : "no");
    for (size_t i = 0; i < c.ntopics; i++)
        fprintf(stderr, "  topic channel=%s name=%s kind=%s\n", c.topics[i].channel,
                c.topics[i].name, c.topics[i].kind);
    rt_claims_clear(&c);
}

int rt_cmd_token(int argc, char **argv)
{
    token_args_t a = {0};
    int rc = token_parse(argc, argv, &a);
    if (rc >= 0)
        return rc;
    rt_config_t cfg;
    char errs[4096];
    if (rt_config_load(&cfg, NULL, false, errs, sizeof(errs)) != 0) {
        fprintf(stderr, "rtgw token: configuration refused:\n%s", errs);
        rt_config_free(&cfg);
        return 2;
    }
    rt_keyring_t *ring = rt_keyring_new();
    rc = rt_keyring_set_signing_key(ring, RT_KEY_CURRENT, rt_slice_cstr(cfg.signing_key),
                                    (rt_alg_t)rt_alg_parse(rt_slice_cstr(cfg.token_alg)));
    rt_token_opts_t o;
    token_opts(&cfg, &o);
    rt_topic_ref_t refs[RT_TOKEN_MAX_TOPICS];
    for (int i = 0; i < a.ntopics; i++)
        refs[i] = (rt_topic_ref_t){a.channel, a.topics[i], "run"};
    rt_mint_req_t req = {
        .topics = refs, .ntopics = (size_t)a.ntopics, .ttl = a.ttl, .publish = a.publish};
    char *jwt = NULL;
    if (rc == 0)
        rc = rt_token_mint(ring, &o, &req, rt_clock_wall_ms() / 1000, &jwt, NULL);
    if (rc) {
        fprintf(stderr, "rtgw token: %s (%s)\n", rt_tok_strerror(rc), rt_tok_errname(rc));
        rt_keyring_free(ring);
        rt_config_free(&cfg);
        return 2;
    }
    printf("%s\n", jwt);
    if (a.explain)
        token_explain(ring, &o, jwt, &cfg);
    free(jwt);
    rt_keyring_free(ring);
    rt_config_free(&cfg);
    return 0;
}
