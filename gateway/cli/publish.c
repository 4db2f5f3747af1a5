/*
 * publish.c — `rtgw publish`: the gateway's own command line as a client of
 * a (possibly remote) gateway, over sdk/c (rtgw_client). One event from
 * --data, --file or stdin, or with --stream a chunked stream read as it
 * arrives. Main thread; blocks for the gateway's answer (a stream: until its
 * input ends).
 *
 * Credentials: --token JWT, or RTGW_SIGNING_KEY from the environment or .env
 * (read with the same loader as `rtgw serve`, so RTGW_TOKEN_ALG, _ISSUER and
 * _TTL apply to locally minted tokens). The key is sent hashed, never as is.
 */
#include "cli.h"
#include "rtgw_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
        "  --url URL        the gateway (default " RT_CLI_DEFAULT_URL ")\n"
        "  --token JWT      a token minted with --publish, instead of RTGW_SIGNING_KEY\n"
        "  --run-id R, --fn-id F   sent as run_id / fn_id on the event\n"
        "  --idempotency-key K     a retry with the same key publishes nothing\n\n"
        "Credential: RTGW_SIGNING_KEY (environment or .env; sent hashed) unless --token.\n"
        "Prints the gateway's answer as JSON on stdout. Exit codes: 0 published, 1 refused\n"
        "or unreachable (the error name is printed), 2 bad usage or configuration.\n");
}

typedef struct {
    const char *channel, *topic, *data, *file, *url, *token;
    rtc_publish_opts_t po;
    bool stream;
} publish_args_t;

/* Returns -1 to go on, or the exit code (0 after --help, 2 bad usage). */
static int publish_parse(int argc, char **argv, publish_args_t *a)
{
    const char *v;
    for (int i = 0; i < argc; i++) {
        const char **dst = NULL;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            publish_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--stream") == 0) {
            a->stream = true;
            continue;
        } else if (rt_cli_opt_arg(argc, argv, &i, "--channel", &v)) {
            dst = &a->channel;
        } else if (rt_cli_opt_arg(argc, argv, &i, "--topic", &v)) {
            dst = &a->topic;
        } else if (rt_cli_opt_arg(argc, argv, &i, "--data", &v)) {
            dst = &a->data;
        } else if (rt_cli_opt_arg(argc, argv, &i, "--file", &v)) {
            dst = &a->file;
        } else if (rt_cli_opt_arg(argc, argv, &i, "--url", &v)) {
            dst = &a->url;
        } else if (rt_cli_opt_arg(argc, argv, &i, "--token", &v)) {
            dst = &a->token;
        } else if (rt_cli_opt_arg(argc, argv, &i, "--run-id", &v)) {
            dst = &a->po.run_id;
        } else if (rt_cli_opt_arg(argc, argv, &i, "--fn-id", &v)) {
            dst = &a->po.fn_id;
        } else if (rt_cli_opt_arg(argc, argv, &i, "--idempotency-key", &v)) {
            dst = &a->po.idempotency_key;
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
    if (!a->channel || !a->topic) {
        fprintf(stderr,
                "rtgw publish: --channel and --topic are required (see rtgw publish --help)\n");
        return 2;
    }
    if (a->data && a->file) {
        fprintf(stderr, "rtgw publish: give --data or --file, not both\n");
        return 2;
    }
    return -1;
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

/* Read the body and send it. Returns -1 when sent (*rc is the client's
 * result and res is filled: the caller clears it), or an exit code after
 * printing why the body could not be read. */
static int publish_send(publish_args_t *a, const char *cred, int *rc, rtc_publish_result_t *res)
{
    body_src_t src = {.fd = -1};
    FILE *f = NULL;
    if (a->data) {
        src.data = a->data;
        src.len = strlen(a->data);
    } else if (a->file && strcmp(a->file, "-") != 0) {
        f = fopen(a->file, "rb");
        if (!f) {
            fprintf(stderr, "rtgw publish: cannot open %s: %s\n", a->file, strerror(errno));
            return 2;
        }
    } else if (a->stream) {
        src.fd = 0;
    } else {
        f = stdin;
    }
    char *owned = NULL;
    if (a->stream) {
        src.f = f;
        *rc = rtc_publish_stream(a->url, cred, a->channel, a->topic, next_chunk, &src, &a->po, res);
    } else {
        if (f) {
            owned = read_all(f, &src.len);
            if (!owned) {
                fprintf(stderr, "rtgw publish: cannot read %s\n", a->file ? a->file : "stdin");
                if (f != stdin)
                    fclose(f);
                return 1;
            }
            src.data = owned;
        }
        *rc = rtc_publish(a->url, cred, a->channel, a->topic, src.data, src.len, &a->po, res);
    }
    if (f && f != stdin)
        fclose(f);
    free(owned);
    return -1;
}

/* Print the gateway's answer (stdout) or why there is none (stderr); the
 * exit code. */
static int publish_report(const publish_args_t *a, int rc, const rtc_publish_result_t *res)
{
    if (rc == 0) {
        if (a->stream)
            printf("{\"ok\":true,\"stream_id\":\"%s\",\"chunks\":%lld,\"bytes\":%lld}\n",
                   res->stream_id, res->chunks, res->bytes);
        else
            printf("{\"ok\":true,\"ids\":%s,\"delivered\":%lld%s}\n",
                   res->ids_json ? res->ids_json : "[]", res->delivered,
                   res->duplicate ? ",\"duplicate\":true" : "");
        return 0;
    }
    if (rc == RTC_EURL || rc == RTC_EINVAL) {
        fprintf(stderr, "rtgw publish: %s: %s\n", res->error.name, res->error.message);
        return 2;
    }
    if (res->error.status)
        fprintf(stderr, "rtgw publish: the gateway refused the event: %d %s (%s)\n",
                res->error.status, res->error.name, res->error.message);
    else
        fprintf(stderr, "rtgw publish: %s: %s (gateway %s)\n", res->error.name, res->error.message,
                a->url);
    return 1;
}

int rt_cmd_publish(int argc, char **argv)
{
    publish_args_t a = {.url = RT_CLI_DEFAULT_URL};
    int exit_code = publish_parse(argc, argv, &a);
    if (exit_code >= 0)
        return exit_code;
    if (rtc_init() != 0) {
        fprintf(stderr, "rtgw publish: cannot initialise\n");
        return 1;
    }
    rt_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    bool have_cfg = false;
    if (!a.token) {
        int rc = rt_cli_load_key_config("publish", &cfg);
        have_cfg = true;
        if (rc) {
            rt_config_free(&cfg);
            return rc;
        }
    }
    const char *cred = a.token ? a.token : cfg.signing_key;
    int rc;
    rtc_publish_result_t res;
    exit_code = publish_send(&a, cred, &rc, &res);
    if (exit_code < 0) {
        exit_code = publish_report(&a, rc, &res);
        rtc_publish_result_clear(&res);
    }
    if (have_cfg)
        rt_config_free(&cfg);
    return exit_code;
}
