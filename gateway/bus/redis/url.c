/*
 * url.c — RTGW_REDIS_URL: redis://[[user]:password@]host[:port][/db] and
 * rediss://, parsed into rt_redis_url_t (bus.h). Used by config (to refuse a
 * bad URL at start) and by the Redis bus. Pure: no I/O, no locks, any thread.
 * Every refusal is one line in err that never quotes the password.
 */
#include "bus.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool rt_redis_tls_supported(void)
{
    return false; /* Debian 12's libhiredis 0.14 ships no hiredis_ssl */
}

/* %-decode s[0..n) into out (NUL-terminated). 0, or RT_E_INVAL for a bad or
 * %00 escape or a result that does not fit cap. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return RT_E_INVAL;
            char hx[3] = {s[i + 1], s[i + 2], 0};
            char *end;
            long v = strtol(hx, &end, 16);
            if (*end || v == 0)
                return RT_E_INVAL;
            c = (int)v;
            i += 2;
        }
        if (o + 1 >= cap)
            return RT_E_INVAL;
        out[o++] = (char)c;
    }
    out[o] = 0;
    return 0;
}

/* The user and password before the last '@' of p (if any); *rest is what
 * follows it. 0 or RT_E_INVAL (err filled). */
static int parse_userinfo(const char *p, rt_redis_url_t *u, const char **rest, char *err,
                          size_t errcap)
{
    *rest = p;
    const char *at = strrchr(p, '@');
    if (!at)
        return 0;
    const char *colon = memchr(p, ':', (size_t)(at - p));
    const char *ue = colon ? colon : at;
    if (pct_decode(p, (size_t)(ue - p), u->user, sizeof(u->user)) != 0 ||
        (colon &&
         pct_decode(colon + 1, (size_t)(at - colon - 1), u->password, sizeof(u->password)) != 0)) {
        snprintf(err, errcap,
                 "RTGW_REDIS_URL: the user or password part is too long or badly %%-encoded");
        return RT_E_INVAL;
    }
    if (!colon) { /* redis://password@host: a bare word before @ is the password */
        memcpy(u->password, u->user,
               sizeof(u->password) < sizeof(u->user) ? sizeof(u->password) : sizeof(u->user));
        u->user[0] = 0;
    }
    *rest = at + 1;
    return 0;
}

/* host[:port] or [v6][:port], the hl bytes at p. 0 or RT_E_INVAL (err filled). */
static int parse_hostport(const char *p, size_t hl, rt_redis_url_t *u, char *err, size_t errcap)
{
    const char *hs = p, *port = NULL;
    size_t hn = hl;
    if (hl && p[0] == '[') {
        const char *rb = memchr(p, ']', hl);
        if (!rb) {
            snprintf(err, errcap, "RTGW_REDIS_URL: unterminated [IPv6] host");
            return RT_E_INVAL;
        }
        hs = p + 1;
        hn = (size_t)(rb - p - 1);
        if (rb + 1 < p + hl) {
            if (rb[1] != ':') {
                snprintf(err, errcap, "RTGW_REDIS_URL: expected :port after ]");
                return RT_E_INVAL;
            }
            port = rb + 2;
        }
    } else {
        const char *c = memchr(p, ':', hl);
        if (c) {
            hn = (size_t)(c - p);
            port = c + 1;
        }
    }
    if (hn == 0 || hn >= sizeof(u->host)) {
        snprintf(err, errcap, "RTGW_REDIS_URL: has no host (e.g. redis://127.0.0.1:6379/0)");
        return RT_E_INVAL;
    }
    memcpy(u->host, hs, hn);
    u->host[hn] = 0;
    if (port) {
        char *end;
        long v = strtol(port, &end, 10);
        if (end == port || end != p + hl || v < 1 || v > 65535) {
            snprintf(err, errcap, "RTGW_REDIS_URL: the port is not a number in 1-65535");
            return RT_E_INVAL;
        }
        u->port = (int)v;
    }
    return 0;
}

int rt_redis_url_parse(const char *url, rt_redis_url_t *u, char *err, size_t errcap)
{
    memset(u, 0, sizeof(*u));
    u->port = 6379;
    const char *p;
    if (strncmp(url, "redis://", 8) == 0) {
        p = url + 8;
    } else if (strncmp(url, "rediss://", 9) == 0) {
        p = url + 9;
        u->tls = true;
    } else {
        snprintf(
            err, errcap,
            "RTGW_REDIS_URL: must start with redis:// (e.g. redis://:password@127.0.0.1:6379/0)");
        return RT_E_INVAL;
    }
    if (parse_userinfo(p, u, &p, err, errcap) != 0)
        return RT_E_INVAL;
    const char *slash = strchr(p, '/');
    if (parse_hostport(p, slash ? (size_t)(slash - p) : strlen(p), u, err, errcap) != 0)
        return RT_E_INVAL;
    if (slash && slash[1]) {
        char *end;
        long v = strtol(slash + 1, &end, 10);
        if (*end || v < 0 || v > 100000) {
            snprintf(err, errcap, "RTGW_REDIS_URL: the database after / is not a number (e.g. /0)");
            return RT_E_INVAL;
        }
        u->db = (int)v;
    }
    return 0;
}

int rt_redis_url_parse_usable(const char *url, rt_redis_url_t *out, char *err, size_t errcap)
{
    if (rt_redis_url_parse(url, out, err, errcap) != 0)
        return RT_E_INVAL;
    if (out->tls && !rt_redis_tls_supported()) {
        snprintf(err, errcap,
                 "RTGW_REDIS_URL: rediss:// (TLS to Redis) is not supported by this build: its "
                 "libhiredis has no hiredis_ssl (Debian 12 ships hiredis 0.14); use redis:// on a "
                 "private network, or a TLS tunnel (stunnel, spiped) to Redis");
        return RT_E_INVAL;
    }
    return 0;
}
