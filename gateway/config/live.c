/*
 * live.c — the reloadable snapshot (keys and origins) and its cell; see
 * live.h for the contract. The reference count is atomic, so dropping a
 * reference takes no lock; the cell's mutex guards only its pointer.
 */
#include "live.h"
#include "err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct rt_live_s {
    atomic_int refs;
    rt_keyring_t *ring;
    char **origins; /* NULL: every origin allowed */
    size_t norigins;
};

struct rt_livecell_s {
    pthread_mutex_t lock;
    rt_live_t *cur;
};

static void live_free(rt_live_t *l)
{
    rt_keyring_free(l->ring);
    for (size_t i = 0; i < l->norigins; i++)
        free(l->origins[i]);
    free(l->origins);
    free(l);
}

rt_live_t *rt_live_new(rt_keyring_t *ring, char *const *origins, size_t norigins)
{
    rt_live_t *l = calloc(1, sizeof(*l));
    if (!l) {
        rt_keyring_free(ring);
        return NULL;
    }
    atomic_init(&l->refs, 1);
    l->ring = ring;
    if (origins) {
        l->origins = calloc(norigins + 1, sizeof(char *));
        if (!l->origins) {
            live_free(l);
            return NULL;
        }
        for (; l->norigins < norigins; l->norigins++) {
            l->origins[l->norigins] = strdup(origins[l->norigins]);
            if (!l->origins[l->norigins]) {
                live_free(l);
                return NULL;
            }
        }
    }
    return l;
}

rt_live_t *rt_live_from_config(const rt_config_t *cfg, int *err)
{
    rt_keyring_t *ring = rt_keyring_new();
    if (!ring) {
        *err = RT_E_NOMEM;
        return NULL;
    }
    rt_alg_t alg = (rt_alg_t)rt_alg_parse(rt_slice_cstr(cfg->token_alg));
    int rc = rt_keyring_set_signing_key(ring, RT_KEY_CURRENT, rt_slice_cstr(cfg->signing_key), alg);
    if (rc == 0 && cfg->signing_key_fallback)
        rc = rt_keyring_set_signing_key(ring, RT_KEY_FALLBACK,
                                        rt_slice_cstr(cfg->signing_key_fallback), alg);
    if (rc) {
        rt_keyring_free(ring);
        *err = rc;
        return NULL;
    }
    rt_live_t *l = rt_live_new(ring, cfg->origins, cfg->norigins);
    if (!l)
        *err = RT_E_NOMEM;
    return l;
}

void rt_live_unref(rt_live_t *l)
{
    if (l && atomic_fetch_sub(&l->refs, 1) == 1)
        live_free(l);
}

const rt_keyring_t *rt_live_ring(const rt_live_t *l)
{
    return l->ring;
}

bool rt_live_origin_allowed(const rt_live_t *l, const char *origin)
{
    return rt_origins_allowed(l->origins, l->norigins, origin);
}

rt_livecell_t *rt_livecell_new(rt_live_t *first)
{
    rt_livecell_t *cell = calloc(1, sizeof(*cell));
    if (!cell || !first) {
        free(cell);
        rt_live_unref(first);
        return NULL;
    }
    pthread_mutex_init(&cell->lock, NULL);
    cell->cur = first;
    return cell;
}

void rt_livecell_free(rt_livecell_t *cell)
{
    if (!cell)
        return;
    rt_live_unref(cell->cur);
    pthread_mutex_destroy(&cell->lock);
    free(cell);
}

rt_live_t *rt_livecell_get(rt_livecell_t *cell)
{
    pthread_mutex_lock(&cell->lock);
    rt_live_t *l = cell->cur;
    atomic_fetch_add(&l->refs, 1);
    pthread_mutex_unlock(&cell->lock);
    return l;
}

void rt_livecell_set(rt_livecell_t *cell, rt_live_t *next)
{
    pthread_mutex_lock(&cell->lock);
    rt_live_t *old = cell->cur;
    cell->cur = next;
    pthread_mutex_unlock(&cell->lock);
    rt_live_unref(old);
}

bool rt_livecell_origin_allowed(rt_livecell_t *cell, const char *origin)
{
    rt_live_t *l = rt_livecell_get(cell);
    bool ok = rt_live_origin_allowed(l, origin);
    rt_live_unref(l);
    return ok;
}
