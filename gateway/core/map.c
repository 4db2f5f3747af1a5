#include "map.h"

#include <stdlib.h>
#include <string.h>

uint64_t rt_hash_bytes(const void *p, size_t n)
{
    /* FNV-1a 64 with a final mix; keys come from clients, but the table is
     * bounded per channel and names are bounded, so flooding costs them only
     * their own probes. */
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

void rt_map_init(rt_map_t *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
}

void rt_map_clear(rt_map_t *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    rt_map_init(m);
}

static rt_map_entry_t *find(const rt_map_t *m, const char *key, size_t klen, uint64_t h)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        rt_map_entry_t *e = &m->slots[i];
        if (!e->key)
            return NULL;
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    }
}

void *rt_map_get(const rt_map_t *m, const char *key, size_t klen)
{
    rt_map_entry_t *e = find(m, key, klen, rt_hash_bytes(key, klen));
    return e ? e->value : NULL;
}

static void place(rt_map_entry_t *slots, size_t cap, rt_map_entry_t ent)
{
    size_t mask = cap - 1;
    size_t i = ent.hash & mask;
    while (slots[i].key)
        i = (i + 1) & mask;
    slots[i] = ent;
}

static int grow(rt_map_t *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 8;
    rt_map_entry_t *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key)
            place(ns, ncap, m->slots[i]);
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

int rt_map_put(rt_map_t *m, const char *key, size_t klen, void *value)
{
    uint64_t h = rt_hash_bytes(key, klen);
    rt_map_entry_t *e = find(m, key, klen, h);
    if (e) {
        e->value = value;
        return 0;
    }
    if ((m->count + 1) * 4 > m->cap * 3 && grow(m) != 0)
        return -1;
    char *k = malloc(klen + 1);
    if (!k)
        return -1;
    memcpy(k, key, klen);
    k[klen] = 0;
    place(m->slots, m->cap, (rt_map_entry_t){k, klen, h, value});
    m->count++;
    return 0;
}

void *rt_map_del(rt_map_t *m, const char *key, size_t klen)
{
    uint64_t h = rt_hash_bytes(key, klen);
    rt_map_entry_t *e = find(m, key, klen, h);
    if (!e)
        return NULL;
    void *v = e->value;
    free(e->key);
    size_t mask = m->cap - 1;
    size_t i = (size_t)(e - m->slots);
    /* Backward-shift deletion keeps probe sequences intact. */
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].key = NULL;
    m->count--;
    return v;
}
