/*
 * subscribe.c — `rtgw subscribe`: subscribe to a (possibly remote) gateway
 * over sdk/c (rtgw_client, extended protocol) and print every event as one
 * JSON line on stdout; status lines go to stderr. The client reconnects and
 * resumes by itself; this file mints a token per connection (unless
 * --token), prints, and stops on --count, SIGINT or SIGTERM.
 *
 * Threads: main thread only. The signal handler touches nothing but
 * rtc_sub_stop on the one active subscription (async-signal-safe by the
 * SDK's contract). Credentials as publish.c: --token, or RTGW_SIGNING_KEY
 * (environment or .env), never printed.
 */
#include "cli.h"
#include "rtgw_client.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RT_SUB_MAX_TOPICS 64
#define RT_SUB_MAX_SINCE 16

static void subscribe_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: rtgw subscribe --channel C --topic T [--topic T2 ...] [--url URL] [--since ID "
        "...]\n"
        "                      [--count N] [--timeout S] [--token JWT]\n\n"
        "Subscribes over WebSocket (extended protocol) and prints every event as one JSON line on\n"
        "stdout; status lines go to stderr. Reconnects with backoff after a disconnect and "
        "resumes\n"
        "from the last id of each channel, so nothing is lost within the gateway's history; when\n"
        "the history cannot cover a gap it says \"not recovered\" on stderr.\n\n"
        "  --url URL      the gateway (default " RT_CLI_DEFAULT_URL ")\n"
        "  --token JWT    subscribe with this token instead of minting one per connection\n"
        "                 with RTGW_SIGNING_KEY (environment or .env)\n"
        "  --since ID     resume from this event id (repeat: one per channel)\n"
        "  --count N      exit 0 after N events\n"
        "  --timeout S    exit 1 when no subscription could be established for S seconds\n"
        "                 (default 30; 0 retries forever)\n\n"
        "Exit codes: 0 after --count events or on SIGINT/SIGTERM, 1 refused by the gateway\n"
        "(the close reason is printed, e.g. token_invalid) or unreachable, 2 bad usage.\n");
}

typedef struct {
    const char *channel, *url, *token;
    const char *topics[RT_SUB_MAX_TOPICS], *since[RT_SUB_MAX_SINCE];
    size_t ntopics, nsince;
    long long count, timeout_s;
} subscribe_args_t;

static bool parse_nonneg(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < 0)
        return false;
    *out = v;
    return true;
}

/* Take option opt's value v. Returns -1 to go on, or 2 (bad usage). */
static int subscribe_set(subscribe_args_t *a, const char *opt, const char *v)
{
    if (strcmp(opt, "--channel") == 0) {
        a->channel = v;
    } else if (strcmp(opt, "--topic") == 0) {
        if (a->ntopics == RT_SUB_MAX_TOPICS) {
            fprintf(stderr, "rtgw subscribe: at most %d --topic options\n", RT_SUB_MAX_TOPICS);
            return 2;
        }
        a->topics[a->ntopics++] = v;
    } else if (strcmp(opt, "--url") == 0) {
        a->url = v;
    } else if (strcmp(opt, "--token") == 0) {
        a->token = v;
    } else if (strcmp(opt, "--since") == 0) {
        if (a->nsince == RT_SUB_MAX_SINCE) {
            fprintf(stderr, "rtgw subscribe: at most 16 --since options (one per channel)\n");
            return 2;
        }
        a->since[a->nsince++] = v;
    } else if (strcmp(opt, "--count") == 0) {
        if (!parse_nonneg(v, &a->count) || a->count == 0) {
            fprintf(stderr, "rtgw subscribe: --count must be a positive number of events\n");
            return 2;
        }
    } else if (!parse_nonneg(v, &a->timeout_s) || a->timeout_s > 86400) {
        fprintf(stderr, "rtgw subscribe: --timeout must be 0..86400 seconds\n");
        return 2;
    }
    return -1;
}

/* Returns -1 to go on, or the exit code (0 after --help, 2 bad usage). */
static int subscribe_parse(int argc, char **argv, subscribe_args_t *a)
{
    const char *v;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            subscribe_usage(stdout);
            return 0;
        }
        const char *opt = argv[i];
        if (rt_cli_opt_arg(argc, argv, &i, "--channel", &v) ||
            rt_cli_opt_arg(argc, argv, &i, "--topic", &v) ||
            rt_cli_opt_arg(argc, argv, &i, "--url", &v) ||
            rt_cli_opt_arg(argc, argv, &i, "--token", &v) ||
            rt_cli_opt_arg(argc, argv, &i, "--since", &v) ||
            rt_cli_opt_arg(argc, argv, &i, "--count", &v) ||
            rt_cli_opt_arg(argc, argv, &i, "--timeout", &v)) {
            if (!v) {
                fprintf(stderr, "rtgw subscribe: %s needs a value (see rtgw subscribe --help)\n",
                        opt);
                return 2;
            }
        } else {
            fprintf(stderr, "rtgw subscribe: unknown option '%s' (see rtgw subscribe --help)\n",
                    opt);
            return 2;
        }
        int rc = subscribe_set(a, opt, v);
        if (rc >= 0)
            return rc;
    }
    if (!a->token && (!a->channel || a->ntopics == 0)) {
        fprintf(stderr, "rtgw subscribe: --channel and at least one --topic are required "
                        "(or --token JWT; see rtgw subscribe --help)\n");
        return 2;
    }
    if (a->token && (a->channel || a->ntopics))
        fprintf(stderr, "rtgw subscribe: note: with --token the token's own topics apply; "
                        "--channel/--topic are ignored\n");
    return -1;
}

typedef struct {
    rt_config_t *cfg;
    const char *channel;
    const char **topics;
    size_t ntopics;
    long long count, seen;
    char mint_err[400];
} sub_ctx_t;

static rtc_sub_t *volatile active_sub;

static void on_signal(int sig)
{
    (void)sig;
    if (active_sub)
        rtc_sub_stop(active_sub);
}

static char *mint_token(void *user)
{
    sub_ctx_t *c = user;
    rtc_mint_opts_t mo = {
        .alg = c->cfg->token_alg, .issuer = c->cfg->issuer, .max_ttl = c->cfg->token_max_ttl_s};
    char *jwt = NULL;
    rtc_error_t err;
    if (rtc_mint_local_opts(c->cfg->signing_key, c->channel, c->topics, c->ntopics,
                            c->cfg->token_ttl_s, false, &mo, &jwt, &err) != 0) {
        snprintf(c->mint_err, sizeof(c->mint_err), "%s (%s)", err.message, err.name);
        return NULL;
    }
    return jwt;
}

static int print_event(const char *json, size_t len, void *user)
{
    sub_ctx_t *c = user;
    fwrite(json, 1, len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    c->seen++;
    return c->count > 0 && c->seen >= c->count;
}

static void print_status(rtc_status_t st, const char *reason, void *user)
{
    switch (st) {
    case RTC_STATUS_NOT_RECOVERED:
        fprintf(stderr,
                "rtgw subscribe: not recovered: channel %s — the gateway's history does not cover "
                "the gap (\"recovered\":false); events may have been missed, refetch state\n",
                reason);
        break;
    case RTC_STATUS_CLOSING:
        fprintf(stderr, "rtgw subscribe: the gateway is shutting down\n");
        break;
    default:
        fprintf(stderr, "rtgw subscribe: %s: %s\n", rtc_status_name(st), reason);
        break;
    }
}

/* Why the subscription ended (stderr); the exit code. */
static int subscribe_report(int rc, const rtc_error_t *err, const sub_ctx_t *ctx)
{
    if (rc == RTC_EREFUSED) {
        /* err.message is "<code> <name>[: detail]", e.g. "4402 token_invalid: token_expired". */
        fprintf(stderr, "rtgw subscribe: refused by the gateway: %s (not retried)\n", err->message);
        return 1;
    }
    if (rc == RTC_ETOKEN) {
        fprintf(stderr, "rtgw subscribe: cannot mint a token: %s\n", ctx->mint_err);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "rtgw subscribe: %s: %s\n", err->name, err->message);
        return 1;
    }
    if (ctx->count && ctx->seen < ctx->count)
        fprintf(stderr, "rtgw subscribe: stopped after %lld of %lld events\n", ctx->seen,
                ctx->count);
    return 0;
}

/* Run the subscription until it ends (--count, a signal, a refusal, the
 * timeout); the exit code. */
static int subscribe_run(subscribe_args_t *a, sub_ctx_t *ctx)
{
    rtc_subscribe_opts_t so = {.base_url = a->url,
                               .token = a->token,
                               .token_fn = a->token ? NULL : mint_token,
                               .since = a->since,
                               .nsince = a->nsince,
                               .on_message = print_event,
                               .on_status = print_status,
                               .user = ctx,
                               .give_up_ms = (int)(a->timeout_s * 1000)};
    rtc_sub_t *sub = rtc_sub_new(&so);
    if (!sub) {
        fprintf(stderr, "rtgw subscribe: bad --url '%s' (http://host:port or https://host:port)\n",
                a->url);
        return 2;
    }
    active_sub = sub;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    rtc_error_t err;
    int rc = rtc_sub_run(sub, &err);
    active_sub = NULL;
    rtc_sub_free(sub);
    return subscribe_report(rc, &err, ctx);
}

int rt_cmd_subscribe(int argc, char **argv)
{
    subscribe_args_t a = {.url = RT_CLI_DEFAULT_URL, .timeout_s = 30};
    int rc = subscribe_parse(argc, argv, &a);
    if (rc >= 0)
        return rc;
    if (rtc_init() != 0) {
        fprintf(stderr, "rtgw subscribe: cannot initialise\n");
        return 1;
    }
    rt_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    bool have_cfg = false;
    if (!a.token) {
        rc = rt_cli_load_key_config("subscribe", &cfg);
        have_cfg = true;
        if (rc) {
            rt_config_free(&cfg);
            return rc;
        }
    }
    sub_ctx_t ctx = {.cfg = &cfg,
                     .channel = a.channel,
                     .topics = a.topics,
                     .ntopics = a.ntopics,
                     .count = a.count};
    if (!a.token) {
        /* Fail fast on a token the gateway could never accept (bad names, ttl). */
        char *probe = mint_token(&ctx);
        if (!probe) {
            fprintf(stderr, "rtgw subscribe: cannot mint a token: %s\n", ctx.mint_err);
            rt_config_free(&cfg);
            return 2;
        }
        free(probe);
    }
    int exit_code = subscribe_run(&a, &ctx);
    if (have_cfg)
        rt_config_free(&cfg);
    return exit_code;
}
