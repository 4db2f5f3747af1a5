/*
 * idempotency.c — one channel's idempotency keys; see idempotency.h. Runs
 * under the channel's lock (held by the caller, hub.c); allocates one entry
 * per new key, and a key buffer only for keys longer than 512 bytes.
 */
#include "idempotency.h"

#include "err.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    rt_pos_t pos;
    int64_t expires_ms;
} rt__idem_entry_t;

void rt__idem_init(rt__idem_t *t)
{
    rt_map_init(&t->keys);
}

void rt__idem_free(rt__idem_t *t)
{
    RT_MAP_FOREACH(&t->keys, e)
    free(e->value);
    rt_map_clear(&t->keys);
}

int rt__idem_key_init(rt__idem_key_t *k, rt_slice_t topic, rt_slice_t key)
{
    k->len = topic.len + 1 + key.len;
    k->base = k->len <= sizeof(k->buf) ? k->buf : malloc(k->len);
    if (!k->base)
        return RT_E_NOMEM;
    memcpy(k->base, topic.base, topic.len);
    k->base[topic.len] = 0;
    memcpy(k->base + topic.len + 1, key.base, key.len);
    return 0;
}

void rt__idem_key_free(rt__idem_key_t *k)
{
    if (k->base != k->buf)
        free(k->base);
    k->base = NULL;
}

void rt__idem_purge(rt__idem_t *t, int64_t now)
{
    for (size_t i = 0; i < t->keys.cap;) {
        rt_map_entry_t *e = &t->keys.slots[i];
        if (e->key && ((rt__idem_entry_t *)e->value)->expires_ms <= now) {
            free(e->value);
            rt_map_del(&t->keys, e->key, e->klen);
            continue; /* backward shift may have moved another entry here */
        }
        i++;
    }
}

int rt__idem_check(rt__idem_t *t, const rt__idem_key_t *k, int64_t now, size_t max_keys,
                   rt_pos_t *orig)
{
    rt__idem_entry_t *seen = rt_map_get(&t->keys, k->base, k->len);
    if (seen && seen->expires_ms > now) {
        *orig = seen->pos;
        return RT_E_DUPLICATE;
    }
    if (!seen && t->keys.count >= max_keys)
        rt__idem_purge(t, now);
    if (!seen && t->keys.count >= max_keys)
        return RT_E_LIMIT;
    return 0;
}

void rt__idem_remember(rt__idem_t *t, const rt__idem_key_t *k, rt_pos_t pos, int64_t expires_ms)
{
    rt__idem_entry_t *it = rt_map_get(&t->keys, k->base, k->len);
    if (!it) {
        it = malloc(sizeof(*it));
        if (it && rt_map_put(&t->keys, k->base, k->len, it) != 0) {
            free(it);
            it = NULL;
        }
    }
    if (it) {
        it->pos = pos;
        it->expires_ms = expires_ms;
    }
}
