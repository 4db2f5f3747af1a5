/*
 * config_lint.c — `rtgw doctor --config`: load the configuration exactly as
 * `rtgw serve` would, print each problem as a failed check (named after the
 * variable when the loader names one) and each setting that loads fine but
 * breaks browsers in production as a warning.
 *
 * Public entry rt_doctor_config (doctor.h). Single-threaded; touches the log
 * level only around the load (restored after), reads the environment, the
 * env file and the TLS files, and prints to `out`.
 */
#include "config.h"
#include "doctor.h"
#include "clock.h"
#include "log.h"
#include "report.h"
#include "tls.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

/* Each loader error line as a failed check: "RTGW_X: text" under RTGW_X,
 * env file errors under env_file, the rest under config. */
static void report_load_errors(rt__report_t *rep, char *errs)
{
    for (char *save = NULL, *line = strtok_r(errs, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char name[64] = "config";
        const char *text = line;
        const char *colon = strstr(line, ": ");
        if (strncmp(line, "RTGW_", 5) == 0 && colon && colon - line < (long)sizeof(name)) {
            snprintf(name, sizeof(name), "%.*s", (int)(colon - line), line);
            text = colon + 2;
        } else if (strncmp(line, "env file", 8) == 0) {
            snprintf(name, sizeof(name), "env_file");
        }
        rt__report(rep, RT_CHECK_FAIL, name, text, NULL);
    }
}

static void report_loaded(rt__report_t *rep, const rt_config_t *cfg, const char *src)
{
    char found[1200];
    snprintf(found, sizeof(found),
             "the environment and %s load as rtgw serve would: listen %s:%d, %s, token alg %s, "
             "%s%s",
             src, cfg->host, cfg->port,
             cfg->tls_cert ? "TLS on (https/wss)" : "no TLS (plain http/ws)", cfg->token_alg,
             cfg->signing_key_fallback ? "a fallback key (rotation), " : "",
             cfg->origins ? "an origin allowlist" : "no origin allowlist");
    rt__report(rep, RT_CHECK_OK, "config", found, NULL);
}

/* The certificate pair loads, but expires soon (or does not name the public
 * URL's host): rt_tls_check's warning. */
static void warn_tls(rt__report_t *rep, const rt_config_t *cfg)
{
    if (!(cfg->tls_cert && cfg->tls_key))
        return;
    char err[512], warn[300], host[256] = "";
    if (cfg->public_url && strstr(cfg->public_url, "://")) {
        const char *h = strstr(cfg->public_url, "://") + 3;
        size_t hl = strcspn(h, ":/");
        if (hl < sizeof(host))
            snprintf(host, sizeof(host), "%.*s", (int)hl, h);
    }
    if (rt_tls_check(cfg->tls_cert, cfg->tls_key, host[0] ? host : NULL, rt_clock_wall_ms() / 1000,
                     err, sizeof(err), warn, sizeof(warn)) == 0 &&
        warn[0])
        rt__report(rep, RT_CHECK_WARN, "RTGW_TLS_CERT", warn,
                   "renew it now (certbot renew, or your CA) and restart rtgw: it reads the pair "
                   "only at startup");
}

/* Heartbeat and file limits a proxy or the kernel will cut short. */
static void warn_limits(rt__report_t *rep, const rt_config_t *cfg)
{
    char found[1200], fix[800];
    if (cfg->ping_interval_ms > 55000) {
        snprintf(found, sizeof(found),
                 "%lld ms: a proxy's default 60 s read timeout (nginx proxy_read_timeout) will cut "
                 "idle sockets between pings",
                 (long long)cfg->ping_interval_ms);
        rt__report(rep, RT_CHECK_WARN, "RTGW_PING_INTERVAL_MS", found,
                   "keep it below every idle timeout on the path: RTGW_PING_INTERVAL_MS=15000 (the "
                   "default), or raise proxy_read_timeout");
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (uint64_t)cfg->max_connections > (uint64_t)rl.rlim_cur / 2) {
        snprintf(found, sizeof(found),
                 "%lld, but this process may open only %llu files (RLIMIT_NOFILE); each connection "
                 "needs about two",
                 (long long)cfg->max_connections, (unsigned long long)rl.rlim_cur);
        snprintf(fix, sizeof(fix),
                 "raise the limit where rtgw runs: LimitNOFILE=%lld in the systemd unit (or ulimit "
                 "-n), or lower RTGW_MAX_CONNECTIONS",
                 (long long)cfg->max_connections * 2 + 1024);
        rt__report(rep, RT_CHECK_WARN, "RTGW_MAX_CONNECTIONS", found, fix);
    }
}

/* Settings that load fine but break browsers in production. */
static void report_warnings(rt__report_t *rep, const rt_config_t *cfg)
{
    if (!cfg->allowed_origins)
        rt__report(rep, RT_CHECK_WARN, "RTGW_ALLOWED_ORIGINS",
                   "unset: WebSocket/SSE from every origin is allowed",
                   "list the origins of your pages: RTGW_ALLOWED_ORIGINS=https://app.example.com");
    if (!cfg->public_url)
        rt__report(
            rep, RT_CHECK_WARN, "RTGW_PUBLIC_URL",
            "unset: the startup checks of the URL browsers use (https, no path, no trailing "
            "slash, certificate host) do not run",
            "set it to the origin browsers use: RTGW_PUBLIC_URL=https://rt.example.com, then run "
            "rtgw doctor https://rt.example.com --signing-key …");
    warn_tls(rep, cfg);
    warn_limits(rep, cfg);
}

int rt_doctor_config(const char *env_file, bool json, FILE *out)
{
    rt__report_t rep;
    rt__report_init(&rep, out, json, NULL, NULL);
    rt_log_level_t lvl = rt_log_get_level();
    rt_log_set_level(RT_LOG_ERROR); /* the TLS expiry warning is reported below instead */
    rt_config_t cfg;
    char errs[8192];
    int nerr = rt_config_load(&cfg, env_file, false, errs, sizeof(errs));
    rt_log_set_level(lvl);
    if (nerr == 0)
        report_loaded(&rep, &cfg, env_file ? env_file : "./.env (if present)");
    else
        report_load_errors(&rep, errs);
    report_warnings(&rep, &cfg);
    rt__report_finish(&rep, "the configuration");
    rt_config_free(&cfg);
    int rc = rep.failed ? 1 : 0;
    rt__report_free(&rep);
    return rc;
}
