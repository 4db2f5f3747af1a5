/*
 * idempotency.h — one channel's idempotency keys: "(topic, key) was
 * published at position P, remembered until T", bounded per channel
 * (idem_max_keys). Private to the hub (hub.c, rt_hub_publish_idem).
 *
 * Lock: a table belongs to its channel; every function needs the caller to
 * hold that channel's lock (a check and the remember that follows it must
 * be under the same hold). Expired keys are purged when the bound is
 * reached and by the hub's sweep.
 *
 * Ownership: the table owns its entries; a key (rt__idem_key_t) lives on
 * the caller's stack and allocates only when longer than its buffer.
 */
#ifndef RT__IDEMPOTENCY_H
#define RT__IDEMPOTENCY_H

#include "event.h"
#include "map.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    rt_map_t keys; /* "<topic>\0<key>" → rt__idem_entry_t* */
} rt__idem_t;

/* The table key of (topic, key). */
typedef struct {
    char *base; /* buf, or malloc'd when longer */
    size_t len;
    char buf[512];
} rt__idem_key_t;

void rt__idem_init(rt__idem_t *t);
void rt__idem_free(rt__idem_t *t);

static inline size_t rt__idem_count(const rt__idem_t *t)
{
    return t->keys.count;
}

/* Build the key of (topic, key). 0 or RT_E_NOMEM; rt__idem_key_free after 0. */
int rt__idem_key_init(rt__idem_key_t *k, rt_slice_t topic, rt_slice_t key);
void rt__idem_key_free(rt__idem_key_t *k);

/* May k be published at `now`? 0: yes (a new key, or an expired one);
 * RT_E_DUPLICATE: it was published within the window, *orig is its
 * position; RT_E_LIMIT: a new key, and the table still holds max_keys live
 * keys after purging the expired ones. */
int rt__idem_check(rt__idem_t *t, const rt__idem_key_t *k, int64_t now, size_t max_keys,
                   rt_pos_t *orig);
/* Remember k as published at pos until expires_ms. Best effort: on OOM the
 * key is not remembered (a retry would publish again). */
void rt__idem_remember(rt__idem_t *t, const rt__idem_key_t *k, rt_pos_t pos, int64_t expires_ms);
/* Forget the keys expired at `now`. */
void rt__idem_purge(rt__idem_t *t, int64_t now);

#endif
