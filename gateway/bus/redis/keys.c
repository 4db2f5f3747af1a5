/*
 * keys.c — the names the Redis bus uses: the keys of a channel (all sharing
 * the hash tag {C}, so a Redis Cluster keeps them in one slot), stream ids ↔
 * position offsets, and epochs as text. Pure functions: no I/O, no locks, any
 * thread; a returned key is the caller's to free.
 */
#include "redis.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "rtgw:{<channel>}:<suffix of sl bytes>"; NULL on OOM. */
static char *key_join(rt_slice_t ch, const char *suffix, size_t sl, size_t *len)
{
    size_t n = 6 + ch.len + 2 + sl;
    char *k = malloc(n + 1);
    if (!k)
        return NULL;
    memcpy(k, "rtgw:{", 6);
    memcpy(k + 6, ch.base, ch.len);
    memcpy(k + 6 + ch.len, "}:", 2);
    memcpy(k + 8 + ch.len, suffix, sl);
    k[n] = 0;
    if (len)
        *len = n;
    return k;
}

char *rt__redis_key(rt_slice_t channel, const char *suffix, size_t *len)
{
    return key_join(channel, suffix, strlen(suffix), len);
}

char *rt__redis_idem_key(rt_slice_t channel, rt_slice_t topic, rt_slice_t key, size_t *len)
{
    char head[32];
    int hl = snprintf(head, sizeof(head), "idem:%zu:", topic.len);
    size_t sl = (size_t)hl + topic.len + 1 + key.len;
    char *suffix = malloc(sl + 1);
    if (!suffix)
        return NULL;
    memcpy(suffix, head, (size_t)hl);
    memcpy(suffix + hl, topic.base, topic.len);
    suffix[(size_t)hl + topic.len] = ':';
    memcpy(suffix + hl + topic.len + 1, key.base, key.len);
    suffix[sl] = 0;
    char *k = key_join(channel, suffix, sl, len);
    free(suffix);
    return k;
}

bool rt__redis_live_channel(const char *s, size_t n, rt_slice_t *out)
{
    if (n < 12 || memcmp(s, "rtgw:{", 6) != 0 || memcmp(s + n - 6, "}:live", 6) != 0)
        return false;
    out->base = s + 6;
    out->len = n - 12;
    return true;
}

bool rt__redis_stream_id_parse(const char *s, size_t n, uint64_t *offset)
{
    uint64_t ms = 0, seq = 0;
    size_t i = 0;
    for (; i < n && s[i] != '-'; i++) {
        if (s[i] < '0' || s[i] > '9' || ms > (UINT64_MAX - 9) / 10)
            return false;
        ms = ms * 10 + (uint64_t)(s[i] - '0');
    }
    if (i == 0 || i >= n)
        return false;
    for (i++; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || seq > (1u << 20))
            return false;
        seq = seq * 10 + (uint64_t)(s[i] - '0');
    }
    if (seq >= (1u << 20) || ms >= (UINT64_C(1) << 43))
        return false;
    *offset = (ms << 20) | seq;
    return true;
}

void rt__redis_stream_id_format(uint64_t offset, char *out, size_t cap)
{
    snprintf(out, cap, "%" PRIu64 "-%" PRIu64, offset >> 20, offset & ((1u << 20) - 1));
}

bool rt__redis_epoch_parse(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 16)
        return false;
    uint64_t e = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (v < 0)
            return false;
        e = e * 16 + (uint64_t)v;
    }
    *out = e;
    return e != 0;
}

void rt__redis_epoch_new(char *out, size_t cap)
{
    uint64_t e = 0;
    while (e == 0) {
        randombytes_buf(&e, sizeof(e));
        e >>= 16; /* the same width as the hub's own epochs */
    }
    snprintf(out, cap, "%" PRIx64, e);
}
