/*
 * main.c — the rtgw command line: serve (default), keygen, token, publish,
 * subscribe, doctor, version. publish and subscribe live in client_cmds.c,
 * doctor in doctor.c.
 * Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration.
 */
#include "client_cmds.h"
#include "config.h"
#include "doctor.h"
#include "log.h"
#include "rt_tokens.h"
#include "server.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *out)
{
    fprintf(out,
            "rtgw %s — realtime gateway (Inngest Realtime protocol)\n\n"
            "Usage: rtgw [command] [options]\n\n"
            "Commands:\n"
            "  serve      run the gateway (the default command)\n"
            "  keygen     print a new signing key\n"
            "  token      mint a subscription token offline with RTGW_SIGNING_KEY\n"
            "  publish    publish an event (or a stream) to a gateway\n"
            "  subscribe  subscribe to a gateway and print events as JSON lines\n"
            "  doctor     check the path from a browser to a gateway, or its configuration\n"
            "  version    print the version\n\n"
            "Run 'rtgw <command> --help' for a command's options.\n",
            RT_VERSION);
}

static void serve_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: rtgw serve [--dev] [--env-file FILE]\n\n"
        "  --dev            throwaway signing key (printed), demo page at /, all origins allowed\n"
        "  --env-file FILE  read configuration from FILE instead of ./.env\n\n");
    rt_config_print_help();
}

static int cmd_serve(int argc, char **argv)
{
    bool dev = false;
    const char *env_file = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--dev") == 0) {
            dev = true;
        } else if (strcmp(argv[i], "--env-file") == 0 && i + 1 < argc) {
            env_file = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            serve_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "rtgw serve: unknown option '%s' (see rtgw serve --help)\n", argv[i]);
            return 2;
        }
    }
    rt_config_t cfg;
    char errs[4096];
    int nerr = rt_config_load(&cfg, env_file, dev, errs, sizeof(errs));
    if (nerr) {
        fprintf(stderr, "rtgw: configuration refused (%d problem%s):\n", nerr,
                nerr == 1 ? "" : "s");
        for (char *line = strtok(errs, "\n"); line; line = strtok(NULL, "\n"))
            fprintf(stderr, "  %s\n", line);
        rt_config_free(&cfg);
        return 2;
    }
    rt_log_set_level((rt_log_level_t)rt_log_level_parse(cfg.log_level));
    if (dev && !cfg.signing_key) {
        char key[128];
        rt_signing_key_generate("dev", key, sizeof(key));
        cfg.signing_key = strdup(key);
        sodium_memzero(key, sizeof(key));
    }
    if (dev) {
        char hp[300];
        snprintf(hp, sizeof(hp), strchr(cfg.host, ':') ? "[%s]:%d" : "%s:%d", cfg.host, cfg.port);
        printf("rtgw dev mode — not for production\n"
               "  demo page       http://%s/\n"
               "  signing key     %s   (throwaway; export RTGW_SIGNING_KEY to keep one)\n"
               "  mint a token    curl -s -X POST http://%s/v1/realtime/token -H 'Authorization: "
               "Bearer <key>' "
               "-d '[{\"channel\":\"user:42\",\"name\":\"ai\",\"kind\":\"run\"}]'\n"
               "  subscribe       ws://%s/v1/realtime/connect?token=<jwt>\n"
               "  publish         curl -s -X POST "
               "'http://%s/v1/realtime/publish?channel=user:42&topic=ai' "
               "-H 'Authorization: Bearer <key>' -d '{\"hello\":\"world\"}'\n"
               "  official client INNGEST_DEV=1 (inngest v4) or nothing at all (@inngest/realtime) "
               "finds it on :8288\n",
               hp, cfg.signing_key, hp, hp, hp);
        fflush(stdout);
        if (strcmp(cfg.host, "127.0.0.1") != 0 && strcmp(cfg.host, "localhost") != 0 &&
            strcmp(cfg.host, "::1") != 0)
            rt_log_warn("dev mode on a non-loopback address exposes the demo page and its key",
                        "host=%s", cfg.host);
    } else if (!cfg.allowed_origins) {
        rt_log_warn("RTGW_ALLOWED_ORIGINS is not set: WebSocket/SSE from every origin is allowed",
                    "fix=\"set RTGW_ALLOWED_ORIGINS=https://app.example.com\"");
    }
    int rc = rt_server_run(&cfg);
    rt_config_free(&cfg);
    return rc;
}

static int cmd_keygen(int argc, char **argv)
{
    const char *env = "prod";
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--env") == 0 && i + 1 < argc) {
            env = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0) {
            printf("Usage: rtgw keygen [--env NAME]\n\nPrints a new signing key signkey-<NAME>-<64 "
                   "hex> "
                   "(NAME defaults to prod; [a-z0-9_], 1-64 chars).\n");
            return 0;
        } else {
            fprintf(stderr, "rtgw keygen: unknown option '%s' (see rtgw keygen --help)\n", argv[i]);
            return 2;
        }
    }
    char key[160];
    int n = rt_signing_key_generate(env, key, sizeof(key));
    if (n < 0) {
        fprintf(stderr, "rtgw keygen: %s\n", rt_tok_strerror(n));
        return 2;
    }
    printf("%s\n", key);
    sodium_memzero(key, sizeof(key));
    return 0;
}

static int cmd_token(int argc, char **argv)
{
    const char *channel = NULL;
    const char *topics[64];
    int ntopics = 0;
    long long ttl = 0;
    bool explain = false, publish = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--channel") == 0 && i + 1 < argc) {
            channel = argv[++i];
        } else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc) {
            if (ntopics == 64) {
                fprintf(stderr, "rtgw token: at most 64 --topic options\n");
                return 2;
            }
            topics[ntopics++] = argv[++i];
        } else if (strcmp(argv[i], "--ttl") == 0 && i + 1 < argc) {
            char *end;
            ttl = strtoll(argv[++i], &end, 10);
            if (*end || ttl <= 0) {
                fprintf(stderr, "rtgw token: --ttl must be a positive number of seconds\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--explain") == 0) {
            explain = true;
        } else if (strcmp(argv[i], "--publish") == 0) {
            publish = true;
        } else if (strcmp(argv[i], "--help") == 0) {
            printf(
                "Usage: rtgw token --channel C --topic T [--topic T2 ...] [--ttl SECONDS] "
                "[--publish] [--explain]\n\n"
                "Mints a token offline with RTGW_SIGNING_KEY (environment or .env), the same way\n"
                "POST /v1/realtime/token does. --explain also prints the decoded claims to "
                "stderr.\n"
                "Topic * grants every topic of the channel. RTGW_TOKEN_ALG, RTGW_TOKEN_ISSUER,\n"
                "RTGW_TOKEN_TTL and RTGW_TOKEN_MAX_TTL apply.\n");
            return 0;
        } else {
            fprintf(stderr, "rtgw token: unknown option '%s' (see rtgw token --help)\n", argv[i]);
            return 2;
        }
    }
    if (!channel || ntopics == 0) {
        fprintf(stderr, "rtgw token: --channel and at least one --topic are required\n");
        return 2;
    }
    rt_config_t cfg;
    char errs[4096];
    if (rt_config_load(&cfg, NULL, false, errs, sizeof(errs)) != 0) {
        fprintf(stderr, "rtgw token: configuration refused:\n%s", errs);
        rt_config_free(&cfg);
        return 2;
    }
    rt_keyring_t *ring = rt_keyring_new();
    int rc = rt_keyring_set_signing_key(ring, RT_KEY_CURRENT, rt_slice_cstr(cfg.signing_key),
                                        (rt_alg_t)rt_alg_parse(rt_slice_cstr(cfg.token_alg)));
    rt_token_opts_t o;
    rt_token_opts_default(&o);
    o.issuer = cfg.issuer;
    o.ttl = cfg.token_ttl_s;
    o.max_ttl = cfg.token_max_ttl_s;
    o.max_topics = (size_t)cfg.max_topics;
    o.max_name_bytes = (size_t)cfg.max_name_bytes;
    rt_topic_ref_t refs[64];
    for (int i = 0; i < ntopics; i++)
        refs[i] = (rt_topic_ref_t){channel, topics[i], "run"};
    rt_mint_req_t req = {
        .topics = refs, .ntopics = (size_t)ntopics, .ttl = ttl, .publish = publish};
    char *jwt = NULL;
    if (rc == 0)
        rc = rt_token_mint(ring, &o, &req, (int64_t)time(NULL), &jwt, NULL);
    if (rc) {
        fprintf(stderr, "rtgw token: %s (%s)\n", rt_tok_strerror(rc), rt_tok_errname(rc));
        rt_keyring_free(ring);
        rt_config_free(&cfg);
        return 2;
    }
    printf("%s\n", jwt);
    if (explain) {
        rt_claims_t c;
        if (rt_token_verify(ring, &o, rt_slice_cstr(jwt), (int64_t)time(NULL), &c) == 0) {
            fprintf(stderr, "kid=%s alg=%s iss=%s sub=%s env=%s exp=%lld (in %llds) publish=%s\n",
                    c.kid, cfg.token_alg, c.iss, c.sub, c.env, (long long)c.exp,
                    (long long)(c.exp - time(NULL)), c.publish ? "yes" : "no");
            for (size_t i = 0; i < c.ntopics; i++)
                fprintf(stderr, "  topic channel=%s name=%s kind=%s\n", c.topics[i].channel,
                        c.topics[i].name, c.topics[i].kind);
            rt_claims_clear(&c);
        }
    }
    free(jwt);
    rt_keyring_free(ring);
    rt_config_free(&cfg);
    return 0;
}

int main(int argc, char **argv)
{
    if (rt_tokens_init() != 0) {
        fprintf(stderr, "rtgw: cannot initialise libsodium\n");
        return 1;
    }
    const char *cmd = argc > 1 ? argv[1] : "serve";
    int sub_argc = argc > 1 ? argc - 2 : 0;
    char **sub_argv = argv + 2;
    if (argc > 1 && argv[1][0] == '-' && strcmp(argv[1], "--help") != 0 &&
        strcmp(argv[1], "-h") != 0) {
        cmd = "serve"; /* rtgw --dev == rtgw serve --dev */
        sub_argc = argc - 1;
        sub_argv = argv + 1;
    }
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(sub_argc, sub_argv);
    if (strcmp(cmd, "keygen") == 0)
        return cmd_keygen(sub_argc, sub_argv);
    if (strcmp(cmd, "token") == 0)
        return cmd_token(sub_argc, sub_argv);
    if (strcmp(cmd, "publish") == 0)
        return rt_cmd_publish(sub_argc, sub_argv);
    if (strcmp(cmd, "subscribe") == 0)
        return rt_cmd_subscribe(sub_argc, sub_argv);
    if (strcmp(cmd, "doctor") == 0)
        return rt_doctor_main(sub_argc, sub_argv);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("rtgw %s (civetweb, libsodium %s, jansson %s)\n", RT_VERSION,
               sodium_version_string(), jansson_version_str());
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "rtgw: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
