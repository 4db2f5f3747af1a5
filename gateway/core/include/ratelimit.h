/*
 * ratelimit.h — abuse limits that do not depend on the HTTP server: token-bucket
 * rate limiters keyed by client (IP), and per-IP connection counters.
 * Thread-safe (one mutex per table); bounded in memory: idle entries are
 * dropped by rt_limiter_sweep, and a full table refuses new keys rather than
 * growing (a refusal is always safe: the caller answers 429/503).
 */
#ifndef RT_RATELIMIT_H
#define RT_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_limiter_s rt_limiter_t;

/* A limiter allowing `rate` events per second per key with bursts of `burst`
 * (rate 0 disables it: every call is allowed). At most max_keys keys are
 * tracked at once. NULL on OOM. */
rt_limiter_t *rt_limiter_new(double rate, double burst, size_t max_keys);
void rt_limiter_free(rt_limiter_t *l);

/* Take `cost` tokens for key at now_ms. Returns 0 if allowed; otherwise the
 * number of milliseconds after which it would be (>= 1), for Retry-After. */
int64_t rt_limiter_take(rt_limiter_t *l, const char *key, double cost, int64_t now_ms);

/* Forget keys whose bucket has been full for a while. */
void rt_limiter_sweep(rt_limiter_t *l, int64_t now_ms);

typedef struct rt_conncount_s rt_conncount_t;

/* Counts open connections per key (client IP); max 0 disables the limit. */
rt_conncount_t *rt_conncount_new(size_t max_per_key);
void rt_conncount_free(rt_conncount_t *c);
/* Add one for key; false (and nothing added) when key is at its limit. */
bool rt_conncount_acquire(rt_conncount_t *c, const char *key);
/* Remove one added by rt_conncount_acquire. */
void rt_conncount_release(rt_conncount_t *c, const char *key);
size_t rt_conncount_get(rt_conncount_t *c, const char *key);

/* The client address for a request: the peer address, unless the peer is one
 * of `trusted` (comma-separated IPs), in which case the rightmost address of
 * X-Forwarded-For that is not trusted (or the leftmost, if all are). Writes
 * into out (cap >= 64). */
void rt_client_ip(const char *peer, const char *xff, const char *trusted, char *out, size_t cap);
/* Whether ip is one of `trusted` (comma-separated IPs; NULL or "" trusts none). */
bool rt_ip_trusted(const char *ip, const char *trusted);

#endif
