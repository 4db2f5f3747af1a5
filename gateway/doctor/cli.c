/*
 * cli.c — `rtgw doctor`: its arguments, its usage text, and the dispatch to
 * rt_doctor_run or rt_doctor_config (doctor.h). Exit codes: 0 nothing
 * failed, 1 a check failed, 2 bad usage.
 *
 * Called once from the rtgw executable's main thread. Reads stdin only for
 * --signing-key - (so the key stays out of the process list), ignores
 * SIGPIPE for the run (a peer may close mid-write), and prints usage errors
 * to stderr.
 */
#include "doctor.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void doctor_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: rtgw doctor <url> [--signing-key K | --token T] [--origin O] [--idle SECONDS]\n"
        "                   [--timeout SECONDS] [--cacert FILE] [--json]\n"
        "       rtgw doctor --config [--env-file FILE] [--json]\n\n"
        "Walks the path a browser takes to the gateway and stops at the first broken link,\n"
        "printing what it checked, what it found and the fix:\n"
        "  url, dns, tcp, tls (wss/https, ALPN), http (GET /health), route (which server\n"
        "  answers /v1/realtime/), clock, token, upgrade (WebSocket handshake, close codes),\n"
        "  subscribe, delivery (a probe published to channel rtgw-doctor, topic probe),\n"
        "  sse (proxy buffering), idle.\n"
        "Every request carries a probe id; with --signing-key doctor reads what rtgw\n"
        "received of it, and names the hop that changed or dropped the request.\n\n"
        "  <url>              the origin browsers use, e.g. https://rt.example.com (or wss://)\n"
        "  --signing-key K    mint a token and publish probes (never printed; - reads it\n"
        "                     from stdin, keeping it out of the process list)\n"
        "  --token T          use this token instead (subscribe checks only)\n"
        "  --origin O         the page origin to send, e.g. https://app.example.com\n"
        "  --idle SECONDS     keep the WebSocket open that long, answering pings (without\n"
        "                     it, idle timeouts are not checked: a warning says so)\n"
        "  --timeout SECONDS  per network step (default 5)\n"
        "  --cacert FILE      trust this PEM CA instead of the system's\n"
        "  --json             {\"ok\":bool,\"checks\":[{\"name\",\"status\",\"found\",\"fix\"}]}\n"
        "  --config           check the configuration rtgw serve would load instead\n\n"
        "Exit codes: 0 nothing failed, 1 a check failed, 2 bad usage.\n");
}

static int parse_secs(const char *opt, const char *v, int min, int *out)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || end == v || x < min || x > 86400) {
        fprintf(stderr, "rtgw doctor: %s must be a whole number of seconds (%d-86400)\n", opt, min);
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* What the command line asked for. */
typedef struct {
    rt_doctor_opts_t o;
    bool config;
    const char *env_file;
} doctor_args_t;

#define ARGS_OK (-1) /* parse_args: go on (any other value is the exit code) */

/* An option that takes a value (is_valued(opt)): stores v. ARGS_OK, or 2. */
static int parse_valued(doctor_args_t *a, const char *opt, const char *v)
{
    if (strcmp(opt, "--env-file") == 0)
        a->env_file = v;
    else if (strcmp(opt, "--signing-key") == 0)
        a->o.signing_key = v;
    else if (strcmp(opt, "--token") == 0)
        a->o.token = v;
    else if (strcmp(opt, "--origin") == 0)
        a->o.origin = v;
    else if (strcmp(opt, "--cacert") == 0)
        a->o.cacert = v;
    else if (strcmp(opt, "--idle") == 0)
        return parse_secs("--idle", v, 0, &a->o.idle_s) != 0 ? 2 : ARGS_OK;
    else /* --timeout */
        return parse_secs("--timeout", v, 1, &a->o.timeout_s) != 0 ? 2 : ARGS_OK;
    return ARGS_OK;
}

static bool is_valued(const char *opt)
{
    static const char *const valued[] = {"--env-file", "--signing-key", "--token",  "--origin",
                                         "--cacert",   "--idle",        "--timeout"};
    for (size_t i = 0; i < sizeof(valued) / sizeof(valued[0]); i++)
        if (strcmp(opt, valued[i]) == 0)
            return true;
    return false;
}

/* ARGS_OK, or the exit code: 0 after --help, 2 on bad usage. */
static int parse_args(int argc, char **argv, doctor_args_t *a)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            doctor_usage(stdout);
            return 0;
        } else if (strcmp(arg, "--json") == 0) {
            a->o.json = true;
        } else if (strcmp(arg, "--config") == 0) {
            a->config = true;
        } else if (is_valued(arg) && i + 1 < argc) {
            int rc = parse_valued(a, arg, argv[++i]);
            if (rc != ARGS_OK)
                return rc;
        } else if (arg[0] == '-') {
            fprintf(stderr,
                    "rtgw doctor: unknown option or missing value '%s' (see rtgw doctor --help)\n",
                    arg);
            return 2;
        } else if (!a->o.url) {
            a->o.url = arg;
        } else {
            fprintf(stderr, "rtgw doctor: one URL only ('%s' is extra)\n", arg);
            return 2;
        }
    }
    return ARGS_OK;
}

/* --signing-key -: the key from stdin, so that it stays out of the process
 * list and shell history. ARGS_OK, or 2. */
static int key_from_stdin(rt_doctor_opts_t *o)
{
    static char key_in[600];
    if (!(o->signing_key && strcmp(o->signing_key, "-") == 0))
        return ARGS_OK;
    if (!fgets(key_in, sizeof(key_in), stdin)) {
        fprintf(stderr, "rtgw doctor: --signing-key -: nothing on stdin\n");
        return 2;
    }
    key_in[strcspn(key_in, "\r\n")] = 0;
    o->signing_key = key_in;
    return ARGS_OK;
}

/* The options of a URL run that do not fit together. ARGS_OK, or 2. */
static int check_url_args(doctor_args_t *a)
{
    rt_doctor_opts_t *o = &a->o;
    if (a->env_file) {
        fprintf(stderr, "rtgw doctor: --env-file goes with --config\n");
        return 2;
    }
    if (!o->url) {
        fprintf(stderr,
                "rtgw doctor: give the gateway URL, e.g. rtgw doctor https://rt.example.com "
                "(or --config)\n\n");
        doctor_usage(stderr);
        return 2;
    }
    if (key_from_stdin(o) != ARGS_OK)
        return 2;
    if (o->signing_key && o->token) {
        fprintf(stderr, "rtgw doctor: --signing-key and --token exclude each other\n");
        return 2;
    }
    if (o->origin && strncmp(o->origin, "http://", 7) != 0 &&
        strncmp(o->origin, "https://", 8) != 0) {
        fprintf(stderr, "rtgw doctor: --origin is a page origin such as https://app.example.com\n");
        return 2;
    }
    return ARGS_OK;
}

int rt_doctor_main(int argc, char **argv)
{
    doctor_args_t a = {.o = {.timeout_s = 5}};
    int rc = parse_args(argc, argv, &a);
    if (rc != ARGS_OK)
        return rc;
    const rt_doctor_opts_t *o = &a.o;
    if (a.config) {
        if (o->url || o->signing_key || o->token || o->origin || o->idle_s || o->cacert) {
            fprintf(stderr, "rtgw doctor: --config takes only --env-file and --json\n");
            return 2;
        }
        return rt_doctor_config(a.env_file, o->json, stdout);
    }
    rc = check_url_args(&a);
    if (rc != ARGS_OK)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    return rt_doctor_run(o, stdout);
}
