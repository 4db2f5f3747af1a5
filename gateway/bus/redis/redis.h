/*
 * redis.h — private to gateway/bus/redis/: the Redis bus's shared state and
 * the internal calls between its files. Nothing outside bus/redis/ includes
 * it; the public contract is bus.h (rt_bus_redis_new, rt_redis_url_parse).
 * Only the files of this folder (and no other library) include hiredis.
 *
 * The design (keys, scripts, threads) is described at the top of redis.c.
 *
 * Locks: b->lock guards chans, dirty, ndirty and connected (chans.c and the
 * subscriber thread); each pool connection has its own lock (pool.c). Lock
 * order: hub channel lock → b->lock. Neither lock is held while calling the
 * hub or doing I/O, except a pool connection's lock, which its one user holds
 * for the duration of one command.
 *
 * Errors: 0 or a negative RT_E_* value of err.h.
 */
#ifndef RT__BUS_REDIS_H
#define RT__BUS_REDIS_H

#include "bus.h"
#include "map.h"
#include "metrics.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- scripts (lua.c) ---- */

enum { RT__SCRIPT_PUBLISH, RT__SCRIPT_READ, RT__SCRIPT_POSITION, RT__SCRIPT_COUNT };
/* The Lua source of each script, indexed by RT__SCRIPT_*. */
extern const char *const rt__redis_scripts[RT__SCRIPT_COUNT];

/* ---- state ---- */

/* A command connection of the pool; lock held by its one user. */
typedef struct {
    pthread_mutex_t lock;
    redisContext *c;
    uint64_t gen; /* the bus generation it was opened in */
    char sha[RT__SCRIPT_COUNT][41];
} rt__pconn_t;

/* A channel this node wants (or still holds a Redis subscription for). */
typedef struct {
    char *name; /* the rtgw channel */
    size_t nlen;
    int refs;        /* holds: the hub's interest + in-flight attaches */
    bool sent;       /* SUBSCRIBE is the last command sent on this connection */
    int outstanding; /* (un)subscribe replies still due on this connection */
    bool dirty;      /* queued for the subscriber thread */
    bool gapfill;    /* fill from the stream once confirmed (after a reconnect) */
} rt__chan_t;

typedef struct {
    rt_bus_t base; /* first: rt_bus_t * ↔ rt__rbus_t * */
    rt_bus_redis_opts_t o;
    rt_redis_url_t url;
    char where[300]; /* redis://host:port/db, for logs (no password) */
    int64_t ttl_ms;  /* stream and epoch keys expire after this idle time */
    rt__pconn_t *pool;
    int npool;
    atomic_uint rr;
    atomic_ullong gen; /* bumped when the subscriber connection drops */
    atomic_bool up;
    atomic_bool stop;
    int evfd; /* wakes the subscriber thread */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock; /* chans, dirty, connected */
    pthread_cond_t cond;  /* confirmations */
    rt_map_t chans;       /* name → rt__chan_t* */
    rt__chan_t **dirty;
    size_t ndirty, dcap;
    bool connected;
    rt_metrics_t *m;
} rt__rbus_t;

/* Whether the bus is up (the subscriber connection is), for metrics too. */
static inline void rt__redis_set_up(rt__rbus_t *b, bool up)
{
    atomic_store(&b->up, up);
    if (b->m)
        atomic_store(&b->m->bus_up, up ? 1 : 0);
}

/* Count one failed bus operation. */
static inline void rt__redis_count_error(rt__rbus_t *b)
{
    if (b->m)
        atomic_fetch_add_explicit(&b->m->bus_errors, 1, memory_order_relaxed);
}

/* ---- keys and ids (keys.c): pure functions ---- */

/* "rtgw:{<channel>}:<suffix>" in a new buffer (caller frees); NULL on OOM. */
char *rt__redis_key(rt_slice_t channel, const char *suffix, size_t *len);
/* "rtgw:{<channel>}:idem:<topic length>:<topic>:<key>" (caller frees); NULL on OOM. */
char *rt__redis_idem_key(rt_slice_t channel, rt_slice_t topic, rt_slice_t key, size_t *len);
/* The rtgw channel of a pub/sub channel name "rtgw:{C}:live" (borrowed from s). */
bool rt__redis_live_channel(const char *s, size_t n, rt_slice_t *out);
/* Stream id "ms-seq" ↔ position offset ms * 2^20 + seq. */
bool rt__redis_stream_id_parse(const char *s, size_t n, uint64_t *offset);
void rt__redis_stream_id_format(uint64_t offset, char *out, size_t cap);
/* An epoch as Redis keeps it: lower-case hex, non-zero. */
bool rt__redis_epoch_parse(const char *s, size_t n, uint64_t *out);
/* A random new epoch, as hex text (the width of the hub's own epochs). */
void rt__redis_epoch_new(char *out, size_t cap);

/* ---- stored and live events → hub entries (entry.c): pure functions ---- */

/* The WebSocket frame of an event: its JSON (without "id") plus "id". New
 * reference (rt_frame_unref), NULL on OOM or a JSON that is not an object. */
rt_frame_t *rt__redis_frame_with_id(const char *json, size_t len, uint64_t epoch, uint64_t offset);
/* Entries of an XRANGE reply into bf (frames built once, topics copied into
 * the same block as the array; release with rt_backfill_clear). 0 or
 * RT_E_NOMEM (bf holds the entries built so far). */
int rt__redis_entries_parse(const redisReply *arr, uint64_t epoch, rt_backfill_t *bf);
/* A live message "<epoch>\n<id>\n<topic>\n<x>\n<json>" into *e (topic borrowed
 * from msg, e->ws a new reference) and *epoch. false if it is not one. */
bool rt__redis_live_parse(const char *msg, size_t len, uint64_t *epoch, rt_hub_entry_t *e);

/* ---- connections (conn.c) ---- */

/* Open and authenticate a connection to b's URL (blocking, bounded by the
 * timeout). 0; RT_E_UNAVAILABLE unreachable (err says why); RT_E_DENIED
 * Redis refused the credentials or the database (a configuration error). */
int rt__redis_conn_open(rt__rbus_t *b, redisContext **out, char *err, size_t errcap);

/* ---- the command pool (pool.c) ---- */

/* A pool connection, locked for the caller; release with rt__redis_pool_put. */
rt__pconn_t *rt__redis_pool_get(rt__rbus_t *b);
void rt__redis_pool_put(rt__pconn_t *p);
/* Make p usable (caller holds p->lock): 0 or RT_E_UNAVAILABLE. */
int rt__redis_pconn_ready(rt__rbus_t *b, rt__pconn_t *p);
/* Close p's connection (caller holds p->lock, or is the last user). */
void rt__redis_pconn_drop(rt__pconn_t *p);
/* Run a script on p (EVALSHA, EVAL on NOSCRIPT). Returns the reply (caller
 * frees) or NULL with the connection dropped on I/O error. An error reply is
 * returned as such. */
redisReply *rt__redis_run_script(rt__pconn_t *p, int which, int nkeys, int nargs, const char **argv,
                                 const size_t *lens);

/* ---- the channels this node wants (chans.c) ---- */

/* Wake the subscriber thread (any thread, any lock). */
void rt__redis_wake(rt__rbus_t *b);
/* The channel entry (creating it when asked); b->lock held. NULL if absent or OOM. */
rt__chan_t *rt__redis_chan_get(rt__rbus_t *b, rt_slice_t ch, bool create);
/* Free c if nothing refers to it and Redis holds no subscription for it; b->lock held. */
void rt__redis_chan_maybe_free_locked(rt__rbus_t *b, rt__chan_t *c);
/* The hub's interest hook (hub channel lock held by the caller). */
void rt__redis_interest_hook(void *ctx, rt_slice_t channel, bool active);
/* bus.h's subscribe_channel and unsubscribe_channel. */
int rt__redis_subscribe_channel(rt_bus_t *bus, rt_slice_t channel);
void rt__redis_unsubscribe_channel(rt_bus_t *bus, rt_slice_t channel);

/* ---- publish and reads (publish.c) ---- */

/* bus.h's publish, read_history and position. */
int rt__redis_publish(rt_bus_t *bus, const rt_event_t *ev, rt_slice_t idem_key, int64_t now_ms,
                      rt_pos_t *pos, size_t *delivered, bool *dup);
int rt__redis_read_history(rt_bus_t *bus, rt_slice_t channel, const rt_pos_t *cands, size_t ncands,
                           rt_backfill_t *out);
int rt__redis_position(rt_bus_t *bus, rt_slice_t channel, rt_pos_t *out);
/* Read channel's stream after the candidate of its epoch into bf (the whole
 * epoch if whole_if_unmatched and none matches). 0, RT_E_NOMEM or
 * RT_E_UNAVAILABLE (bf then empty). */
int rt__redis_read_stream(rt__rbus_t *b, rt_slice_t channel, const rt_pos_t *cands, size_t ncands,
                          bool whole_if_unmatched, rt_backfill_t *bf);

/* ---- the subscriber thread (subscriber.c) ---- */

/* The thread's body (arg: the rt__rbus_t); returns once b->stop is set. */
void *rt__redis_sub_main(void *arg);

#endif
