#include "ratelimit.h"
#include "map.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double tokens;
    int64_t last_ms;
} bucket_t;

struct rt_limiter_s {
    pthread_mutex_t lock;
    rt_map_t keys; /* key → bucket_t* */
    double rate, burst;
    size_t max_keys;
};

rt_limiter_t *rt_limiter_new(double rate, double burst, size_t max_keys)
{
    rt_limiter_t *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    pthread_mutex_init(&l->lock, NULL);
    rt_map_init(&l->keys);
    l->rate = rate;
    l->burst = burst < 1 ? 1 : burst;
    l->max_keys = max_keys;
    return l;
}

void rt_limiter_free(rt_limiter_t *l)
{
    if (!l)
        return;
    RT_MAP_FOREACH(&l->keys, e)
    free(e->value);
    rt_map_clear(&l->keys);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

int64_t rt_limiter_take(rt_limiter_t *l, const char *key, double cost, int64_t now_ms)
{
    if (!l || l->rate <= 0)
        return 0;
    size_t kl = strlen(key);
    pthread_mutex_lock(&l->lock);
    bucket_t *b = rt_map_get(&l->keys, key, kl);
    if (!b) {
        if (l->keys.count >= l->max_keys || !(b = malloc(sizeof(*b))) ||
            rt_map_put(&l->keys, key, kl, b) != 0) {
            if (b && !rt_map_get(&l->keys, key, kl))
                free(b);
            pthread_mutex_unlock(&l->lock);
            return 1000; /* table full: refuse rather than grow without bound */
        }
        b->tokens = l->burst;
        b->last_ms = now_ms;
    }
    double elapsed = (double)(now_ms - b->last_ms) / 1000.0;
    if (elapsed > 0) {
        b->tokens = fmin(l->burst, b->tokens + elapsed * l->rate);
        b->last_ms = now_ms;
    }
    int64_t wait = 0;
    if (b->tokens >= cost) {
        b->tokens -= cost;
    } else {
        wait = (int64_t)ceil((cost - b->tokens) / l->rate * 1000.0);
        if (wait < 1)
            wait = 1;
    }
    pthread_mutex_unlock(&l->lock);
    return wait;
}

void rt_limiter_sweep(rt_limiter_t *l, int64_t now_ms)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < l->keys.cap;) {
        rt_map_entry_t *e = &l->keys.slots[i];
        if (e->key) {
            bucket_t *b = e->value;
            double full_at = b->last_ms + (l->burst - b->tokens) / l->rate * 1000.0;
            if (now_ms > full_at + 60000) {
                free(b);
                rt_map_del(&l->keys, e->key, e->klen);
                continue; /* backward shift may have moved another entry here */
            }
        }
        i++;
    }
    pthread_mutex_unlock(&l->lock);
}

struct rt_conncount_s {
    pthread_mutex_t lock;
    rt_map_t keys; /* key → (void*)count */
    size_t max;
};

rt_conncount_t *rt_conncount_new(size_t max_per_key)
{
    rt_conncount_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    rt_map_init(&c->keys);
    c->max = max_per_key;
    return c;
}

void rt_conncount_free(rt_conncount_t *c)
{
    if (!c)
        return;
    rt_map_clear(&c->keys);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

bool rt_conncount_acquire(rt_conncount_t *c, const char *key)
{
    if (!c || c->max == 0)
        return true;
    size_t kl = strlen(key);
    pthread_mutex_lock(&c->lock);
    uintptr_t n = (uintptr_t)rt_map_get(&c->keys, key, kl);
    bool ok = n < c->max && rt_map_put(&c->keys, key, kl, (void *)(n + 1)) == 0;
    pthread_mutex_unlock(&c->lock);
    return ok;
}

void rt_conncount_release(rt_conncount_t *c, const char *key)
{
    if (!c || c->max == 0)
        return;
    size_t kl = strlen(key);
    pthread_mutex_lock(&c->lock);
    uintptr_t n = (uintptr_t)rt_map_get(&c->keys, key, kl);
    if (n <= 1)
        rt_map_del(&c->keys, key, kl);
    else
        rt_map_put(&c->keys, key, kl, (void *)(n - 1));
    pthread_mutex_unlock(&c->lock);
}

size_t rt_conncount_get(rt_conncount_t *c, const char *key)
{
    if (!c)
        return 0;
    pthread_mutex_lock(&c->lock);
    uintptr_t n = (uintptr_t)rt_map_get(&c->keys, key, strlen(key));
    pthread_mutex_unlock(&c->lock);
    return (size_t)n;
}

static bool ip_in_list(const char *ip, size_t len, const char *list)
{
    if (!list || !*list)
        return false;
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        if ((size_t)(e - p) == len && len && strncmp(p, ip, len) == 0)
            return true;
        p = e;
    }
    return false;
}

bool rt_ip_trusted(const char *ip, const char *trusted)
{
    return ip && ip_in_list(ip, strlen(ip), trusted);
}

void rt_client_ip(const char *peer, const char *xff, const char *trusted, char *out, size_t cap)
{
    snprintf(out, cap, "%s", peer ? peer : "");
    if (!xff || !*xff || !peer || !ip_in_list(peer, strlen(peer), trusted))
        return;
    /* Walk X-Forwarded-For from the right, skipping trusted proxies. */
    const char *end = xff + strlen(xff);
    const char *leftmost = NULL;
    size_t leftlen = 0;
    while (end > xff) {
        const char *comma = end;
        while (comma > xff && comma[-1] != ',')
            comma--;
        const char *s = comma, *e = end;
        while (s < e && *s == ' ')
            s++;
        while (e > s && e[-1] == ' ')
            e--;
        if (e > s) {
            leftmost = s;
            leftlen = (size_t)(e - s);
            if (!ip_in_list(s, leftlen, trusted)) {
                snprintf(out, cap, "%.*s", (int)(leftlen < 63 ? leftlen : 63), s);
                return;
            }
        }
        end = comma > xff ? comma - 1 : xff;
    }
    if (leftmost)
        snprintf(out, cap, "%.*s", (int)(leftlen < 63 ? leftlen : 63), leftmost);
}
