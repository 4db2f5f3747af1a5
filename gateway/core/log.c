#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = RT_LOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void rt_log_set_level(rt_log_level_t level)
{
    atomic_store(&log_level, (int)level);
}

rt_log_level_t rt_log_get_level(void)
{
    return (rt_log_level_t)atomic_load(&log_level);
}

int rt_log_enabled(rt_log_level_t level)
{
    return (int)level <= atomic_load(&log_level);
}

int rt_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return RT_LOG_WARN;
    return -1;
}

void rt_log(rt_log_level_t level, const char *msg, const char *kvfmt, ...)
{
    if (!rt_log_enabled(level))
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char q[512];
    rt_log_quote(msg, q, sizeof(q));
    int n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], q);
    if (n < 0)
        return;
    if (kvfmt && *kvfmt && (size_t)n < sizeof(line) - 2) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, kvfmt);
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n, kvfmt, ap);
        va_end(ap);
        if (m > 0)
            n += m;
    }
    if ((size_t)n >= sizeof(line) - 1)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void rt_log_quote(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    if (cap < 3) {
        if (cap)
            out[0] = 0;
        return;
    }
    out[o++] = '"';
    for (; s && *s && o + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7F) {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = 0;
}

static int sensitive_param(const char *name, size_t len)
{
    static const char *const names[] = {"token",      "key", "signing_key",
                                        "signingKey", "jwt", "access_token"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == len && strncasecmp(name, names[i], len) == 0)
            return 1;
    return 0;
}

void rt_log_redact_url(const char *uri, const char *query, char *out, size_t cap)
{
    size_t o = 0;
    if (!cap)
        return;
    for (const char *p = uri ? uri : ""; *p && o + 1 < cap; p++)
        out[o++] = *p;
    if (query && *query && o + 1 < cap) {
        out[o++] = '?';
        const char *p = query;
        while (*p && o + 1 < cap) {
            const char *amp = strchr(p, '&');
            size_t plen = amp ? (size_t)(amp - p) : strlen(p);
            const char *eq = memchr(p, '=', plen);
            size_t nlen = eq ? (size_t)(eq - p) : plen;
            size_t copy = sensitive_param(p, nlen) && eq ? nlen + 1 : plen;
            for (size_t i = 0; i < copy && o + 1 < cap; i++)
                out[o++] = p[i];
            if (copy != plen) {
                const char *r = "[redacted]";
                while (*r && o + 1 < cap)
                    out[o++] = *r++;
            }
            if (!amp)
                break;
            if (o + 1 < cap)
                out[o++] = '&';
            p = amp + 1;
        }
    }
    out[o] = 0;
}
