/*
 * map.h — a small string-keyed hash map (open addressing, linear probing,
 * backward-shift deletion). Keys are copied; values are borrowed pointers.
 * Not thread-safe: the owner locks.
 */
#ifndef RT_MAP_H
#define RT_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *key;
    size_t klen;
    uint64_t hash;
    void *value;
} rt_map_entry_t;

typedef struct {
    rt_map_entry_t *slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
} rt_map_t;

void rt_map_init(rt_map_t *m);
/* Frees the key copies and the table; values are the caller's. */
void rt_map_clear(rt_map_t *m);
void *rt_map_get(const rt_map_t *m, const char *key, size_t klen);
/* Insert or replace. Returns 0, or -1 on out-of-memory (map unchanged). */
int rt_map_put(rt_map_t *m, const char *key, size_t klen, void *value);
/* Remove; returns the old value or NULL. */
void *rt_map_del(rt_map_t *m, const char *key, size_t klen);
uint64_t rt_hash_bytes(const void *p, size_t n);

#define RT_MAP_FOREACH(m, e)                                                                       \
    for (rt_map_entry_t *e = (m)->slots; (m)->slots && e < (m)->slots + (m)->cap; e++)             \
        if (e->key)

#endif
