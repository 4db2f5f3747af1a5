/*
 * log.h — structured log lines on stderr:
 *   ts=2026-11-23T14:00:00.123Z level=info msg="listening" addr=127.0.0.1:8288
 * Callers pass key=value pairs in the format string; values that may hold
 * spaces are quoted by the caller with rt_log_quote. Tokens and keys are never
 * passed here: use rt_log_redact_url for request URIs.
 * Thread-safe (one write(2) per line).
 */
#ifndef RT_LOG_H
#define RT_LOG_H

#include <stddef.h>

typedef enum {
    RT_LOG_ERROR = 0,
    RT_LOG_WARN = 1,
    RT_LOG_INFO = 2,
    RT_LOG_DEBUG = 3
} rt_log_level_t;

void rt_log_set_level(rt_log_level_t level);
rt_log_level_t rt_log_get_level(void);
/* Parse "error|warn|info|debug"; -1 if unknown. */
int rt_log_level_parse(const char *s);
int rt_log_enabled(rt_log_level_t level);

void rt_log(rt_log_level_t level, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 3, 4)));

#define rt_log_error(msg, ...) rt_log(RT_LOG_ERROR, msg, __VA_ARGS__)
#define rt_log_warn(msg, ...) rt_log(RT_LOG_WARN, msg, __VA_ARGS__)
#define rt_log_info(msg, ...) rt_log(RT_LOG_INFO, msg, __VA_ARGS__)
#define rt_log_debug(msg, ...)                                                                     \
    do {                                                                                           \
        if (rt_log_enabled(RT_LOG_DEBUG))                                                          \
            rt_log(RT_LOG_DEBUG, msg, __VA_ARGS__);                                                \
    } while (0)

/* Copy a request URI into out with the values of sensitive query parameters
 * (token, key, signing_key, since is kept) replaced by "[redacted]". */
void rt_log_redact_url(const char *uri, const char *query, char *out, size_t cap);

/* Quote s for a log value: escapes '"', '\\' and control bytes; truncates. */
void rt_log_quote(const char *s, char *out, size_t cap);

#endif
