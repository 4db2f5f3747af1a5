/*
 * client_cmds.c — `rtgw publish` and `rtgw subscribe` over sdk/c (rtgw_client).
 *
 * Credentials: --token JWT, or RTGW_SIGNING_KEY from the environment or .env
 * (read with the same loader as `rtgw serve`, so RTGW_TOKEN_ALG, _ISSUER and
 * _TTL apply to locally minted tokens). The key is sent hashed, never as is.
 * The gateway's URL is --url (default http://127.0.0.1:8288, the default
 * RTGW_LISTEN); no variable of its own, so `serve --help` stays the list of
 * every variable.
 */
#include "client_cmds.h"

#include "config.h"
#include "rtgw_client.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RT_DEFAULT_URL "http://127.0.0.1:8288"
#define RT_MAX_CLI_TOPICS 64

/* Load RTGW_SIGNING_KEY (and the token settings) like `rtgw token` does.
 * Returns 0, or prints the problems and returns 2. */
static int load_key_config(const char *cmd, rt_config_t *cfg)
{
    char errs[4096];
    if (rt_config_load(cfg, NULL, false, errs, sizeof(errs)) != 0) {
        fprintf(stderr, "rtgw %s: configuration refused (or pass --token JWT):\n", cmd);
        for (char *line = strtok(errs, "\n"); line; line = strtok(NULL, "\n"))
            fprintf(stderr, "  %s\n", line);
        return 2;
    }
    return 0;
}

static bool opt_arg(int argc, char **argv, int *i, const char *name, const char **out)
{
    if (strcmp(argv[*i], name) != 0)
        return false;
    if (*i + 1 >= argc) {
        *out = NULL;
        return true;
    }
    *out = argv[++*i];
    return true;
}

/* ---- publish ---- */

static void publish_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: rtgw publish --channel C --topic T [--data STRING | --file F] [--stream]\n"
        "                    [--run-id R] [--fn-id F] [--idempotency-key K] [--url URL] [--token "
        "JWT]\n\n"
        "Publishes one event (the body: --data, --file F, or stdin when neither is given; JSON is\n"
        "embedded as JSON, anything else as a string). --stream sends the body as a stream\n"
        "(Transfer-Encoding: chunked, Content-Type: text/stream): each read of stdin becomes a\n"
        "chunk frame as soon as it arrives, e.g. `model | rtgw publish --stream …`.\n\n"
        "  --url URL        the gateway (default " RT_DEFAULT_URL ")\n"
        "  --token JWT      a token minted with --publish, instead of RTGW_SIGNING_KEY\n"
        "  --run-id R, --fn-id F   sent as run_id / fn_id on the event\n"
        "  --idempotency-key K     a retry with the same key publishes nothing\n\n"
        "Credential: RTGW_SIGNING_KEY (environment or .env; sent hashed) unless --token.\n"
        "Prints the gateway's answer as JSON on stdout. Exit codes: 0 published, 1 refused\n"
        "or unreachable (the error name is printed), 2 bad usage or configuration.\n");
}

typedef struct {
    const char *data; /* --data: chunked from memory */
    size_t len, off;
    FILE *f; /* --file / stdin */
    int fd;  /* stdin with --stream: one read() per chunk */
} body_src_t;

static long next_chunk(char *buf, size_t cap, void *user)
{
    body_src_t *b = user;
    if (b->data) {
        size_t n = b->len - b->off < cap ? b->len - b->off : cap;
        memcpy(buf, b->data + b->off, n);
        b->off += n;
        return (long)n;
    }
    if (b->f) {
        size_t n = fread(buf, 1, cap, b->f);
        return n == 0 && ferror(b->f) ? -1 : (long)n;
    }
    for (;;) {
        ssize_t n = read(b->fd, buf, cap);
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? -1 : (long)n;
    }
}

static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *p = malloc(cap);
    while (p) {
        size_t got = fread(p + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            char *np = realloc(p, cap *= 2);
            if (!np) {
                free(p);
                return NULL;
            }
            p = np;
        }
    }
    if (p && ferror(f)) {
        free(p);
        return NULL;
    }
    *len = n;
    return p;
}

int rt_cmd_publish(int argc, char **argv)
{
    const char *channel = NULL, *topic = NULL, *data = NULL, *file = NULL, *url = RT_DEFAULT_URL,
               *token = NULL, *v;
    rtc_publish_opts_t po = {0};
    bool stream = false;
    for (int i = 0; i < argc; i++) {
        const char **dst = NULL;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            publish_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--stream") == 0) {
            stream = true;
            continue;
        } else if (opt_arg(argc, argv, &i, "--channel", &v)) {
            dst = &channel;
        } else if (opt_arg(argc, argv, &i, "--topic", &v)) {
            dst = &topic;
        } else if (opt_arg(argc, argv, &i, "--data", &v)) {
            dst = &data;
        } else if (opt_arg(argc, argv, &i, "--file", &v)) {
            dst = &file;
        } else if (opt_arg(argc, argv, &i, "--url", &v)) {
            dst = &url;
        } else if (opt_arg(argc, argv, &i, "--token", &v)) {
            dst = &token;
        } else if (opt_arg(argc, argv, &i, "--run-id", &v)) {
            dst = &po.run_id;
        } else if (opt_arg(argc, argv, &i, "--fn-id", &v)) {
            dst = &po.fn_id;
        } else if (opt_arg(argc, argv, &i, "--idempotency-key", &v)) {
            dst = &po.idempotency_key;
        } else {
            fprintf(stderr, "rtgw publish: unknown option '%s' (see rtgw publish --help)\n",
                    argv[i]);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "rtgw publish: %s needs a value (see rtgw publish --help)\n", argv[i]);
            return 2;
        }
        *dst = v;
    }
    if (!channel || !topic) {
        fprintf(stderr,
                "rtgw publish: --channel and --topic are required (see rtgw publish --help)\n");
        return 2;
    }
    if (data && file) {
        fprintf(stderr, "rtgw publish: give --data or --file, not both\n");
        return 2;
    }
    if (rtc_init() != 0) {
        fprintf(stderr, "rtgw publish: cannot initialise\n");
        return 1;
    }
    rt_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    bool have_cfg = false;
    if (!token) {
        int rc = load_key_config("publish", &cfg);
        have_cfg = true;
        if (rc) {
            rt_config_free(&cfg);
            return rc;
        }
    }
    const char *cred = token ? token : cfg.signing_key;

    body_src_t src = {.fd = -1};
    char *owned = NULL;
    FILE *f = NULL;
    if (data) {
        src.data = data;
        src.len = strlen(data);
    } else if (file && strcmp(file, "-") != 0) {
        f = fopen(file, "rb");
        if (!f) {
            fprintf(stderr, "rtgw publish: cannot open %s: %s\n", file, strerror(errno));
            if (have_cfg)
                rt_config_free(&cfg);
            return 2;
        }
    } else if (stream) {
        src.fd = 0;
    } else {
        f = stdin;
    }
    int rc;
    rtc_publish_result_t res;
    if (stream) {
        src.f = f;
        rc = rtc_publish_stream(url, cred, channel, topic, next_chunk, &src, &po, &res);
    } else {
        if (f) {
            owned = read_all(f, &src.len);
            if (!owned) {
                fprintf(stderr, "rtgw publish: cannot read %s\n", file ? file : "stdin");
                if (f != stdin)
                    fclose(f);
                if (have_cfg)
                    rt_config_free(&cfg);
                return 1;
            }
            src.data = owned;
        }
        rc = rtc_publish(url, cred, channel, topic, src.data, src.len, &po, &res);
    }
    if (f && f != stdin)
        fclose(f);
    free(owned);
    int exit_code = 0;
    if (rc == 0) {
        if (stream)
            printf("{\"ok\":true,\"stream_id\":\"%s\",\"chunks\":%lld,\"bytes\":%lld}\n",
                   res.stream_id, res.chunks, res.bytes);
        else
            printf("{\"ok\":true,\"ids\":%s,\"delivered\":%lld%s}\n",
                   res.ids_json ? res.ids_json : "[]", res.delivered,
                   res.duplicate ? ",\"duplicate\":true" : "");
    } else if (rc == RTC_EURL || rc == RTC_EINVAL) {
        fprintf(stderr, "rtgw publish: %s: %s\n", res.error.name, res.error.message);
        exit_code = 2;
    } else if (res.error.status) {
        fprintf(stderr, "rtgw publish: the gateway refused the event: %d %s (%s)\n",
                res.error.status, res.error.name, res.error.message);
        exit_code = 1;
    } else {
        fprintf(stderr, "rtgw publish: %s: %s (gateway %s)\n", res.error.name, res.error.message,
                url);
        exit_code = 1;
    }
    rtc_publish_result_clear(&res);
    if (have_cfg)
        rt_config_free(&cfg);
    return exit_code;
}

/* ---- subscribe ---- */

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
        "  --url URL      the gateway (default " RT_DEFAULT_URL ")\n"
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

int rt_cmd_subscribe(int argc, char **argv)
{
    const char *channel = NULL, *url = RT_DEFAULT_URL, *token = NULL, *v;
    const char *topics[RT_MAX_CLI_TOPICS], *since[16];
    size_t ntopics = 0, nsince = 0;
    long long count = 0, timeout_s = 30;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            subscribe_usage(stdout);
            return 0;
        }
        const char *opt = argv[i];
        if (opt_arg(argc, argv, &i, "--channel", &v) || opt_arg(argc, argv, &i, "--topic", &v) ||
            opt_arg(argc, argv, &i, "--url", &v) || opt_arg(argc, argv, &i, "--token", &v) ||
            opt_arg(argc, argv, &i, "--since", &v) || opt_arg(argc, argv, &i, "--count", &v) ||
            opt_arg(argc, argv, &i, "--timeout", &v)) {
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
        if (strcmp(opt, "--channel") == 0) {
            channel = v;
        } else if (strcmp(opt, "--topic") == 0) {
            if (ntopics == RT_MAX_CLI_TOPICS) {
                fprintf(stderr, "rtgw subscribe: at most %d --topic options\n", RT_MAX_CLI_TOPICS);
                return 2;
            }
            topics[ntopics++] = v;
        } else if (strcmp(opt, "--url") == 0) {
            url = v;
        } else if (strcmp(opt, "--token") == 0) {
            token = v;
        } else if (strcmp(opt, "--since") == 0) {
            if (nsince == 16) {
                fprintf(stderr, "rtgw subscribe: at most 16 --since options (one per channel)\n");
                return 2;
            }
            since[nsince++] = v;
        } else if (strcmp(opt, "--count") == 0) {
            if (!parse_nonneg(v, &count) || count == 0) {
                fprintf(stderr, "rtgw subscribe: --count must be a positive number of events\n");
                return 2;
            }
        } else if (!parse_nonneg(v, &timeout_s) || timeout_s > 86400) {
            fprintf(stderr, "rtgw subscribe: --timeout must be 0..86400 seconds\n");
            return 2;
        }
    }
    if (!token && (!channel || ntopics == 0)) {
        fprintf(stderr, "rtgw subscribe: --channel and at least one --topic are required "
                        "(or --token JWT; see rtgw subscribe --help)\n");
        return 2;
    }
    if (token && (channel || ntopics))
        fprintf(stderr, "rtgw subscribe: note: with --token the token's own topics apply; "
                        "--channel/--topic are ignored\n");
    if (rtc_init() != 0) {
        fprintf(stderr, "rtgw subscribe: cannot initialise\n");
        return 1;
    }
    rt_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    bool have_cfg = false;
    if (!token) {
        int rc = load_key_config("subscribe", &cfg);
        have_cfg = true;
        if (rc) {
            rt_config_free(&cfg);
            return rc;
        }
    }
    sub_ctx_t ctx = {
        .cfg = &cfg, .channel = channel, .topics = topics, .ntopics = ntopics, .count = count};
    if (!token) {
        /* Fail fast on a token the gateway could never accept (bad names, ttl). */
        char *probe = mint_token(&ctx);
        if (!probe) {
            fprintf(stderr, "rtgw subscribe: cannot mint a token: %s\n", ctx.mint_err);
            rt_config_free(&cfg);
            return 2;
        }
        free(probe);
    }
    rtc_subscribe_opts_t so = {.base_url = url,
                               .token = token,
                               .token_fn = token ? NULL : mint_token,
                               .since = since,
                               .nsince = nsince,
                               .on_message = print_event,
                               .on_status = print_status,
                               .user = &ctx,
                               .give_up_ms = (int)(timeout_s * 1000)};
    rtc_sub_t *sub = rtc_sub_new(&so);
    if (!sub) {
        fprintf(stderr, "rtgw subscribe: bad --url '%s' (http://host:port or https://host:port)\n",
                url);
        if (have_cfg)
            rt_config_free(&cfg);
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
    int exit_code = 0;
    if (rc == RTC_EREFUSED) {
        /* err.message is "<code> <name>[: detail]", e.g. "4402 token_invalid: token_expired". */
        fprintf(stderr, "rtgw subscribe: refused by the gateway: %s (not retried)\n", err.message);
        exit_code = 1;
    } else if (rc == RTC_ETOKEN) {
        fprintf(stderr, "rtgw subscribe: cannot mint a token: %s\n", ctx.mint_err);
        exit_code = 1;
    } else if (rc) {
        fprintf(stderr, "rtgw subscribe: %s: %s\n", err.name, err.message);
        exit_code = 1;
    } else if (count && ctx.seen < count) {
        fprintf(stderr, "rtgw subscribe: stopped after %lld of %lld events\n", ctx.seen, count);
    }
    if (have_cfg)
        rt_config_free(&cfg);
    return exit_code;
}
