/*
 * live.h — the part of the configuration that SIGHUP replaces while the
 * gateway runs: the signing-key ring (current + fallback, for rotation) and
 * the allowed origins. Everything else is read once at start.
 *
 * rt_live_t is an immutable snapshot with a reference count. rt_livecell_t
 * holds the current one: readers (civetweb's request and connection threads,
 * the writers reading detached sessions' frames) take a reference with
 * rt_livecell_get, use it, and drop it with rt_live_unref; the reload (the
 * main thread) builds a new snapshot and swaps it in with rt_livecell_set.
 * A reader therefore always sees one whole snapshot, never half of a reload,
 * and the old snapshot is freed by whoever drops its last reference. The
 * cell's mutex is held only to read or replace the pointer and bump the
 * count, never while a key is used. Nothing here blocks otherwise.
 */
#ifndef RT_LIVE_H
#define RT_LIVE_H

#include "config.h"
#include "rt_tokens.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct rt_live_s rt_live_t;
typedef struct rt_livecell_s rt_livecell_t;

/* A snapshot of ring (taken: freed with the snapshot) and a copy of origins
 * (NULL: every origin allowed). NULL on out-of-memory, ring freed. */
rt_live_t *rt_live_new(rt_keyring_t *ring, char *const *origins, size_t norigins);
/* The snapshot of cfg's keys (RTGW_SIGNING_KEY, RTGW_SIGNING_KEY_FALLBACK,
 * with RTGW_TOKEN_ALG) and origins. NULL with *err set: RT_E_NOMEM or an
 * rt_keyring_set_signing_key error (rt_tokens.h). */
rt_live_t *rt_live_from_config(const rt_config_t *cfg, int *err);
/* Drop a reference; the last one frees the snapshot. NULL is ignored. */
void rt_live_unref(rt_live_t *l);
/* The snapshot's key ring, borrowed for as long as the reference is held. */
const rt_keyring_t *rt_live_ring(const rt_live_t *l);
/* rt_origins_allowed (config.h) over the snapshot's origins. */
bool rt_live_origin_allowed(const rt_live_t *l, const char *origin);

/* A cell holding first (taken). NULL on out-of-memory, first dropped. */
rt_livecell_t *rt_livecell_new(rt_live_t *first);
/* Drops the current snapshot and frees the cell; no reader may use it after. */
void rt_livecell_free(rt_livecell_t *cell);
/* A new reference to the current snapshot (never NULL); any thread. */
rt_live_t *rt_livecell_get(rt_livecell_t *cell);
/* Make next (taken) current; the previous one goes when its last reader
 * drops it. Any thread. */
void rt_livecell_set(rt_livecell_t *cell, rt_live_t *next);
/* rt_live_origin_allowed over the current snapshot. */
bool rt_livecell_origin_allowed(rt_livecell_t *cell, const char *origin);

#endif
