/*
 * config.c — environment + .env loading and validation. Every refusal is one
 * line naming the variable, what is wrong, and the fix; secrets are never
 * echoed back.
 */
#include "config.h"
#include "clock.h"
#include "bus.h"
#include "log.h"
#include "rt_tokens.h"
#include "tls.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

typedef struct {
    char *name;
    char *value;
} kv_t;

typedef struct {
    kv_t *v;
    size_t n;
} envfile_t;

static void addf(char *errs, size_t cap, int *count, const char *fmt, ...)
{
    size_t used = strlen(errs);
    va_list ap;
    va_start(ap, fmt);
    if (used < cap)
        vsnprintf(errs + used, cap - used, fmt, ap);
    va_end(ap);
    used = strlen(errs);
    if (used + 1 < cap) {
        errs[used] = '\n';
        errs[used + 1] = 0;
    }
    (*count)++;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

/* KEY=VALUE lines; '#' comments; optional "export "; single or double quotes. */
static int envfile_load(envfile_t *ef, const char *path, char *errs, size_t cap, int *count,
                        bool must_exist)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        if (must_exist || errno != ENOENT)
            addf(errs, cap, count, "env file %s: cannot read it: %s", path, strerror(errno));
        return -1;
    }
    char line[8192];
    int lineno = 0;
    while (fgets(line, sizeof(line), fp)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        if (strncmp(s, "export ", 7) == 0)
            s = trim(s + 7);
        char *eq = strchr(s, '=');
        if (!eq) {
            addf(errs, cap, count, "env file %s:%d: expected NAME=value", path, lineno);
            continue;
        }
        *eq = 0;
        char *name = trim(s), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) {
            val[vl - 1] = 0;
            val++;
        } else {
            char *hash = strstr(val, " #");
            if (hash)
                *hash = 0, val = trim(val);
        }
        kv_t *nv = realloc(ef->v, (ef->n + 1) * sizeof(*nv));
        if (!nv)
            break;
        ef->v = nv;
        ef->v[ef->n].name = strdup(name);
        ef->v[ef->n].value = strdup(val);
        ef->n++;
    }
    sodium_memzero(line, sizeof(line));
    int rerr = ferror(fp) ? errno : 0; /* e.g. EISDIR: fopen accepts a directory */
    fclose(fp);
    if (rerr) {
        addf(errs, cap, count, "env file %s: cannot read it: %s", path, strerror(rerr));
        return -1;
    }
    return 0;
}

static void envfile_free(envfile_t *ef)
{
    for (size_t i = 0; i < ef->n; i++) {
        free(ef->v[i].name);
        if (ef->v[i].value) {
            sodium_memzero(ef->v[i].value, strlen(ef->v[i].value));
            free(ef->v[i].value);
        }
    }
    free(ef->v);
}

static const char *lookup(const envfile_t *ef, const char *name)
{
    const char *v = getenv(name);
    if (v && *v)
        return v;
    for (size_t i = ef->n; i-- > 0;)
        if (strcmp(ef->v[i].name, name) == 0)
            return *ef->v[i].value ? ef->v[i].value : NULL;
    return NULL;
}

int rt_config_parse_listen(const char *s, char *host, size_t hostcap, int *port)
{
    const char *colon;
    size_t hl;
    const char *h = s;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hl = (size_t)(colon - s);
    }
    if (hl >= hostcap)
        return -1;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || p < 0 || p > 65535)
        return -1;
    memcpy(host, h, hl);
    host[hl] = 0;
    if (!*host)
        snprintf(host, hostcap, "0.0.0.0");
    *port = (int)p;
    return 0;
}

static bool is_local_host(const char *h, size_t n)
{
    if (n >= 4 && strncmp(h, "127.", 4) == 0) { /* 127.0.0.0/8, not a name like 127.example.com */
        for (size_t i = 4; i < n; i++)
            if (!isdigit((unsigned char)h[i]) && h[i] != '.')
                return false;
        return true;
    }
    return (n == 9 && strncasecmp(h, "localhost", 9) == 0) ||
           (n == 5 && strncmp(h, "[::1]", 5) == 0);
}

static void check_public_url(const char *u, char *errs, size_t cap, int *count)
{
    const char *rest;
    bool tls;
    if (strncmp(u, "https://", 8) == 0 || strncmp(u, "wss://", 6) == 0) {
        tls = true;
        rest = strchr(u, ':') + 3;
    } else if (strncmp(u, "http://", 7) == 0 || strncmp(u, "ws://", 5) == 0) {
        tls = false;
        rest = strchr(u, ':') + 3;
    } else {
        addf(errs, cap, count,
             "RTGW_PUBLIC_URL: must start with https:// (or http:// for localhost), e.g. "
             "https://rt.example.com");
        return;
    }
    const char *slash = strchr(rest, '/');
    size_t hostlen = slash ? (size_t)(slash - rest) : strlen(rest);
    const char *colon = memchr(rest, ':', hostlen);
    size_t namelen = colon && rest[0] != '[' ? (size_t)(colon - rest) : hostlen;
    if (rest[0] == '[') { /* "[::1]:8288": the name is the bracketed part */
        const char *rb = memchr(rest, ']', hostlen);
        namelen = rb ? (size_t)(rb - rest) + 1 : hostlen;
    }
    if (hostlen == 0) {
        addf(errs, cap, count, "RTGW_PUBLIC_URL: has no host");
        return;
    }
    if (slash) {
        addf(errs, cap, count,
             "RTGW_PUBLIC_URL: must be the bare origin with no path or trailing slash (the "
             "clients resolve /v1/realtime/... against the root): use %.*s%.*s",
             (int)(rest - u), u, (int)hostlen, rest);
        return;
    }
    if (!tls && !is_local_host(rest, namelen))
        addf(errs, cap, count,
             "RTGW_PUBLIC_URL: plain http:// or ws:// for a non-local host; browsers on an https "
             "page refuse ws:// (mixed content). Use https:// and terminate TLS in rtgw or the "
             "proxy");
}

static int parse_origins(rt_config_t *cfg, const char *list, char *errs, size_t cap, int *count)
{
    if (!list || strcmp(list, "*") == 0)
        return 0;
    char *copy = strdup(list);
    if (!copy)
        return -1;
    size_t n = 1;
    for (char *p = copy; *p; p++)
        n += *p == ',';
    cfg->origins = calloc(n + 1, sizeof(char *));
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && cfg->origins;
         tok = strtok_r(NULL, ",", &save)) {
        char *o = trim(tok);
        if (!*o)
            continue;
        size_t ol = strlen(o);
        if (strcmp(o, "*") == 0) {
            addf(errs, cap, count, "RTGW_ALLOWED_ORIGINS: '*' must be alone, not in a list");
            continue;
        }
        const char *host = strstr(o, "://");
        if ((strncmp(o, "http://", 7) != 0 && strncmp(o, "https://", 8) != 0) || o[ol - 1] == '/' ||
            strchr(host + 3, '/')) { /* an Origin never has a path: it would match nothing */
            addf(errs, cap, count,
                 "RTGW_ALLOWED_ORIGINS: '%s' is not an origin; write scheme://host[:port] with no "
                 "path or trailing slash, e.g. https://app.example.com",
                 o);
            continue;
        }
        cfg->origins[cfg->norigins++] = strdup(o);
    }
    free(copy);
    return 0;
}

bool rt_config_listen_loopback(const rt_config_t *cfg)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcmp(cfg->host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, cfg->host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, cfg->host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

bool rt_origins_allowed(char *const *origins, size_t norigins, const char *origin)
{
    if (!origins)
        return true;
    if (!origin || !*origin)
        return true; /* not a browser (browsers always send Origin on WebSocket) */
    for (size_t i = 0; i < norigins; i++)
        if (strcasecmp(origins[i], origin) == 0)
            return true;
    return false;
}

bool rt_config_origin_allowed(const rt_config_t *cfg, const char *origin)
{
    return rt_origins_allowed(cfg->origins, cfg->norigins, origin);
}

/* Every RT_CONFIG_INTS/STRS value: from the environment or the env file,
 * else its default; a bad integer is an error line and keeps the default. */
static void load_values(rt_config_t *cfg, const envfile_t *ef, char *errs, size_t cap, int *count)
{
#define RT_CFG_INT_LOAD(f, env, def, mn, mx, help)                                                 \
    do {                                                                                           \
        cfg->f = def;                                                                              \
        const char *v = lookup(ef, env);                                                           \
        if (v) {                                                                                   \
            char *end;                                                                             \
            errno = 0;                                                                             \
            long long x = strtoll(v, &end, 10);                                                    \
            if (errno || *end || end == v)                                                         \
                addf(errs, cap, count, "%s: '%s' is not a whole number", env, v);                  \
            else if (x < (mn) || x > (mx))                                                         \
                addf(errs, cap, count, "%s: %lld is out of range [%lld, %lld]", env, x,            \
                     (long long)(mn), (long long)(mx));                                            \
            else                                                                                   \
                cfg->f = x;                                                                        \
        }                                                                                          \
    } while (0);
    RT_CONFIG_INTS(RT_CFG_INT_LOAD)
#undef RT_CFG_INT_LOAD

#define RT_CFG_STR_LOAD(f, env, def, help)                                                         \
    do {                                                                                           \
        const char *v = lookup(ef, env);                                                           \
        const char *d = def;                                                                       \
        cfg->f = v ? strdup(v) : d ? strdup(d) : NULL;                                             \
    } while (0);
    RT_CONFIG_STRS(RT_CFG_STR_LOAD)
#undef RT_CFG_STR_LOAD
}

/* A key still holding the template's placeholder (.env.example, the
 * package's /etc/rtgw/rtgw.env: "signkey-prod-REPLACE_WITH_..."). */
static bool is_placeholder_key(const char *key)
{
    return strstr(key, "REPLACE_WITH") != NULL;
}

/* One key variable: a placeholder gets its own line (the service's journal
 * shows it), anything else rt_signing_key_validate's reason. */
static int check_key(const char *name, const char *key, char *errs, size_t cap, int *count)
{
    if (is_placeholder_key(key)) {
        addf(errs, cap, count,
             "%s: still the placeholder from the template; replace it with a key from "
             "'rtgw keygen --env <env>'",
             name);
        return -1;
    }
    int rc = rt_signing_key_validate(rt_slice_cstr(key));
    if (rc)
        addf(errs, cap, count, "%s: %s", name, rt_tok_strerror(rc));
    return rc;
}

/* The signing key (required outside dev mode) and its fallback. */
static void check_keys(const rt_config_t *cfg, bool dev, char *errs, size_t cap, int *count)
{
    if (!cfg->signing_key && !dev)
        addf(errs, cap, count,
             "RTGW_SIGNING_KEY: not set; set it to your signkey-<env>-<hex> (make one with "
             "'rtgw keygen'), or run 'rtgw serve --dev' for a throwaway key");
    if (cfg->signing_key)
        check_key("RTGW_SIGNING_KEY", cfg->signing_key, errs, cap, count);
    if (cfg->signing_key_fallback &&
        check_key("RTGW_SIGNING_KEY_FALLBACK", cfg->signing_key_fallback, errs, cap, count) == 0) {
        if (cfg->signing_key && strcmp(cfg->signing_key, cfg->signing_key_fallback) == 0)
            addf(errs, cap, count,
                 "RTGW_SIGNING_KEY_FALLBACK: equals RTGW_SIGNING_KEY; set it to the previous key, "
                 "or unset it");
    }
}

/* RTGW_TLS_CERT/KEY: both or neither, and a pair that loads and is valid now,
 * for the host of RTGW_PUBLIC_URL when it is set. */
static void check_tls(const rt_config_t *cfg, char *errs, size_t cap, int *count)
{
    if (!!cfg->tls_cert != !!cfg->tls_key) {
        addf(errs, cap, count, "%s: set together with %s (both or neither)",
             cfg->tls_cert ? "RTGW_TLS_KEY" : "RTGW_TLS_CERT",
             cfg->tls_cert ? "RTGW_TLS_CERT" : "RTGW_TLS_KEY");
    } else if (cfg->tls_cert) {
        char host[256] = "";
        if (cfg->public_url && strstr(cfg->public_url, "://")) {
            const char *h = strstr(cfg->public_url, "://") + 3;
            size_t hl = strcspn(h, ":/");
            if (hl < sizeof(host)) {
                memcpy(host, h, hl);
                host[hl] = 0;
            }
        }
        char err[512], warn[256];
        if (rt_tls_check(cfg->tls_cert, cfg->tls_key, host[0] ? host : NULL,
                         rt_clock_wall_ms() / 1000, err, sizeof(err), warn, sizeof(warn)) != 0)
            addf(errs, cap, count, "%s", err);
        else if (warn[0])
            rt_log_warn("TLS certificate", "detail=\"%s\"", warn);
    }
}

/* RTGW_REDIS_URL parses, and asks for nothing this build cannot do. */
static void check_redis(const rt_config_t *cfg, char *errs, size_t cap, int *count)
{
    if (!cfg->redis_url)
        return;
    rt_redis_url_t u;
    char e[400];
    if (rt_redis_url_parse_usable(cfg->redis_url, &u, e, sizeof(e)) != 0)
        addf(errs, cap, count, "%s", e);
    sodium_memzero(&u, sizeof(u));
}

int rt_config_load(rt_config_t *cfg, const char *env_file, bool dev, char *errs, size_t cap)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->dev = dev;
    cfg->env_file = env_file ? strdup(env_file) : NULL;
    if (cap)
        errs[0] = 0;
    int count = 0;
    envfile_t ef = {0};
    envfile_load(&ef, env_file ? env_file : ".env", errs, cap, &count, env_file != NULL);
    load_values(cfg, &ef, errs, cap, &count);
    envfile_free(&ef);

    if (rt_config_parse_listen(cfg->listen, cfg->host, sizeof(cfg->host), &cfg->port) != 0)
        addf(errs, cap, &count, "RTGW_LISTEN: '%s' is not host:port (e.g. 127.0.0.1:8288)",
             cfg->listen);
    if (rt_log_level_parse(cfg->log_level) < 0)
        addf(errs, cap, &count, "RTGW_LOG_LEVEL: '%s' is not one of error, warn, info, debug",
             cfg->log_level);
    if (rt_alg_parse(rt_slice_cstr(cfg->token_alg)) < 0)
        addf(errs, cap, &count, "RTGW_TOKEN_ALG: '%s' is not HS256 or EdDSA", cfg->token_alg);
    check_keys(cfg, dev, errs, cap, &count);
    if (cfg->token_ttl_s > cfg->token_max_ttl_s)
        addf(errs, cap, &count, "RTGW_TOKEN_TTL: %lld exceeds RTGW_TOKEN_MAX_TTL (%lld)",
             (long long)cfg->token_ttl_s, (long long)cfg->token_max_ttl_s);
    if (cfg->public_url)
        check_public_url(cfg->public_url, errs, cap, &count);
    check_tls(cfg, errs, cap, &count);
    parse_origins(cfg, cfg->allowed_origins, errs, cap, &count);
    check_redis(cfg, errs, cap, &count);
    return count;
}

void rt_config_free(rt_config_t *cfg)
{
#define RT_CFG_STR_FREE(f, env, def, help)                                                         \
    if (cfg->f) {                                                                                  \
        sodium_memzero(cfg->f, strlen(cfg->f));                                                    \
        free(cfg->f);                                                                              \
        cfg->f = NULL;                                                                             \
    }
    RT_CONFIG_STRS(RT_CFG_STR_FREE)
#undef RT_CFG_STR_FREE
    for (size_t i = 0; i < cfg->norigins; i++)
        free(cfg->origins[i]);
    free(cfg->origins);
    cfg->origins = NULL;
    free(cfg->env_file);
    cfg->env_file = NULL;
    cfg->norigins = 0;
}

void rt_config_print_help(void)
{
    printf("Environment (also read from .env; the environment wins):\n");
#define RT_CFG_STR_HELP(f, env, def, help)                                                         \
    printf("  %-28s %s (default: %s)\n", env, help, def ? def : "unset");
    RT_CONFIG_STRS(RT_CFG_STR_HELP)
#undef RT_CFG_STR_HELP
#define RT_CFG_INT_HELP(f, env, def, mn, mx, help)                                                 \
    printf("  %-28s %s (default: %lld)\n", env, help, (long long)(def));
    RT_CONFIG_INTS(RT_CFG_INT_HELP)
#undef RT_CFG_INT_HELP
}
