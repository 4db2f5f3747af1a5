/*
 * reload.c — SIGHUP (reload.h). The new configuration is loaded whole and
 * checked by rt_config_load, so a reload accepts exactly what a start would;
 * only the keys and the origins are applied (live.h swaps them atomically for
 * every reader), the rest is compared and named as needing a restart.
 *
 * A variable set in the process environment wins over the env file (config.h),
 * so a reload cannot change it: that is said in the log, once per reload.
 * Key values are compared in constant time and never logged.
 */
#include "reload.h"
#include "live.h"
#include "log.h"
#include "notify.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Append name to a comma-separated list in buf. */
static void list_add(char *buf, size_t cap, const char *name)
{
    size_t used = strlen(buf);
    snprintf(buf + used, cap - used, "%s%s", used ? "," : "", name);
}

/* Whether two optional secrets differ; constant time over equal lengths. */
static bool secret_changed(const char *a, const char *b)
{
    if (!a || !b)
        return a != b;
    size_t n = strlen(a);
    return n != strlen(b) || sodium_memcmp(a, b, n) != 0;
}

static bool str_changed(const char *a, const char *b)
{
    if (!a || !b)
        return a != b;
    return strcmp(a, b) != 0;
}

/* What changed: applied, the keys and origins since the last load (prev);
 * restart, every other variable that differs from the running cur. */
static void diff(const rt_config_t *cur, const rt_config_t *prev, const rt_config_t *next,
                 char *applied, size_t acap, char *restart, size_t rcap)
{
    if (secret_changed(prev->signing_key, next->signing_key))
        list_add(applied, acap, "RTGW_SIGNING_KEY");
    if (secret_changed(prev->signing_key_fallback, next->signing_key_fallback))
        list_add(applied, acap, "RTGW_SIGNING_KEY_FALLBACK");
    if (str_changed(prev->allowed_origins, next->allowed_origins))
        list_add(applied, acap, "RTGW_ALLOWED_ORIGINS");
#define RT_RELOAD_INT(f, env, def, mn, mx, help)                                                   \
    if (cur->f != next->f)                                                                         \
        list_add(restart, rcap, env);
    RT_CONFIG_INTS(RT_RELOAD_INT)
#undef RT_RELOAD_INT
#define RT_RELOAD_STR(f, env, def, help)                                                           \
    if (strcmp(env, "RTGW_SIGNING_KEY") != 0 && strcmp(env, "RTGW_SIGNING_KEY_FALLBACK") != 0 &&   \
        strcmp(env, "RTGW_ALLOWED_ORIGINS") != 0 && secret_changed(cur->f, next->f))               \
        list_add(restart, rcap, env);
    RT_CONFIG_STRS(RT_RELOAD_STR)
#undef RT_RELOAD_STR
}

/* The reloadable variables the environment pins. */
static void warn_pinned(void)
{
    static const char *const names[] = {"RTGW_SIGNING_KEY", "RTGW_SIGNING_KEY_FALLBACK",
                                        "RTGW_ALLOWED_ORIGINS"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = getenv(names[i]);
        if (v && *v)
            rt_log_warn("reload cannot change a variable set in the environment",
                        "variable=%s fix=\"set it in the env file only\"", names[i]);
    }
}

static void notify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[80];
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%lld",
             (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
    rt__notify(msg);
}

/* Log each problem rt_config_load found (one line each, values of secrets
 * never included: config.c's promise). */
static void log_refused(const char *file, int nerr, char *errs)
{
    rt_log_error("reload refused: keeping the running configuration", "env_file=%s problems=%d",
                 file, nerr);
    char *save = NULL;
    for (char *line = strtok_r(errs, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char q[600];
        rt_log_quote(line, q, sizeof(q));
        rt_log_error("reload refused", "problem=%s", q);
    }
}

void rt__reload(rt_server_t *srv)
{
    const rt_config_t *cur = srv->cfg;
    const char *file = cur->env_file ? cur->env_file : ".env";
    if (cur->dev) {
        rt_log_warn("reload ignored in --dev", "%s", "fix=\"restart, or run without --dev\"");
        return;
    }
    notify_reloading();
    rt_config_t *next = calloc(1, sizeof(*next));
    if (!next) {
        rt_log_error("reload refused: keeping the running configuration", "%s", "error=nomem");
        return;
    }
    char errs[4096];
    int nerr = rt_config_load(next, cur->env_file, false, errs, sizeof(errs));
    rt_live_t *live = NULL;
    if (nerr == 0) {
        /* The ring uses the running algorithm: RTGW_TOKEN_ALG takes a restart. */
        char *alg = next->token_alg;
        next->token_alg = cur->token_alg;
        int err = 0;
        live = rt_live_from_config(next, &err);
        next->token_alg = alg;
        if (!live)
            snprintf(errs, sizeof(errs), "cannot build the key ring (error %d)\n", err), nerr = 1;
    }
    if (nerr) {
        log_refused(file, nerr, errs);
    } else {
        char applied[200] = "", restart[1024] = "";
        diff(cur, srv->reloaded ? srv->reloaded : cur, next, applied, sizeof(applied), restart,
             sizeof(restart));
        rt_livecell_set(srv->live, live);
        rt_log_info("configuration reloaded", "env_file=%s changed=%s restart_needed=%s", file,
                    applied[0] ? applied : "none", restart[0] ? restart : "none");
        warn_pinned();
        rt_config_t *old = srv->reloaded;
        srv->reloaded = next;
        next = old;
    }
    if (next) {
        rt_config_free(next);
        free(next);
    }
    rt__notify("READY=1");
}
