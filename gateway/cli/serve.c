/*
 * serve.c — `rtgw serve` (the default command): load the configuration,
 * announce dev mode, run the gateway until it is told to stop. Main thread;
 * rt_server_run blocks and owns every thread of the gateway. The throwaway
 * dev signing key is printed (that is its point) and never logged.
 */
#include "cli.h"
#include "log.h"
#include "rt_tokens.h"
#include "server.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void serve_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: rtgw serve [--dev] [--env-file FILE]\n\n"
        "  --dev            throwaway signing key (printed), demo page at /, all origins allowed\n"
        "  --env-file FILE  read configuration from FILE instead of ./.env\n\n");
    rt_config_print_help();
}

/* Returns -1 to go on, or the exit code (0 after --help, 2 bad usage). */
static int serve_parse(int argc, char **argv, bool *dev, const char **env_file)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--dev") == 0) {
            *dev = true;
        } else if (strcmp(argv[i], "--env-file") == 0 && i + 1 < argc) {
            *env_file = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            serve_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "rtgw serve: unknown option '%s' (see rtgw serve --help)\n", argv[i]);
            return 2;
        }
    }
    return -1;
}

/* What dev mode is, and how to try it, on stdout; warnings about a dev
 * gateway on a non-loopback address, or any origin allowed, in the log. */
static void serve_announce(const rt_config_t *cfg, bool dev)
{
    if (dev) {
        char hp[300];
        snprintf(hp, sizeof(hp), strchr(cfg->host, ':') ? "[%s]:%d" : "%s:%d", cfg->host,
                 cfg->port);
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
               hp, cfg->signing_key, hp, hp, hp);
        if (rt_config_listen_loopback(cfg))
            printf("  any signing key accepted for mint and publish, as by Inngest's dev server "
                   "(loopback only)\n");
        fflush(stdout);
        if (!rt_config_listen_loopback(cfg))
            rt_log_warn("dev mode on a non-loopback address exposes the demo page and its key; "
                        "only its own signing key is accepted here",
                        "host=%s", cfg->host);
    } else if (!cfg->allowed_origins) {
        rt_log_warn("RTGW_ALLOWED_ORIGINS is not set: WebSocket/SSE from every origin is allowed",
                    "fix=\"set RTGW_ALLOWED_ORIGINS=https://app.example.com\"");
    }
}

int rt_cmd_serve(int argc, char **argv)
{
    bool dev = false;
    const char *env_file = NULL;
    int rc = serve_parse(argc, argv, &dev, &env_file);
    if (rc >= 0)
        return rc;
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
    serve_announce(&cfg, dev);
    rc = rt_server_run(&cfg);
    rt_config_free(&cfg);
    return rc;
}
