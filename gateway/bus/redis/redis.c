/*
 * redis.c — the Redis bus: one logical gateway across several nodes. This
 * file makes, starts and frees it (rt_bus_redis_new, the ops table).
 *
 * Keys of channel C (they share the hash tag {C}, so a Redis Cluster keeps
 * them in one slot):
 *   rtgw:{C}:stream      the history: a stream, entries {t: topic, x: "1" for
 *                        extended-only frames, e: the event JSON without "id"},
 *                        bounded by RTGW_HISTORY_MAX (XADD MAXLEN ~) and
 *                        RTGW_HISTORY_MAX_AGE (XTRIM MINID ~ now-age);
 *   rtgw:{C}:epoch       the channel's epoch (hex), random, set when absent, and
 *                        lost with the stream (both expire together after the
 *                        history age, and both vanish on a flush), so a position
 *                        from lost history is always detected;
 *   rtgw:{C}:idem:<n>:<topic>:<key>  "<epoch> <stream id>" of a publish with an
 *                        Idempotency-Key, for the idempotency window;
 *   rtgw:{C}:live        the pub/sub channel: "<epoch>\n<id>\n<topic>\n<x>\n<json>".
 *
 * A publish is ONE Lua script (EVALSHA, EVAL on NOSCRIPT): idempotency check,
 * XADD, trim, PUBLISH — atomic, so the stream order is the live order. The
 * stream id ms-seq becomes the position's offset ms * 2^20 + seq (monotonic,
 * not contiguous), computed in C (Lua numbers are doubles). Every node
 * therefore names an event with the same id.
 *
 * Threads: publishes and history reads use a small pool of blocking
 * connections (one request at a time each). One thread owns a connection in
 * SUBSCRIBE mode, subscribed to exactly the channels this node wants (the
 * hub's interest hook, plus in-flight subscribes); it frames each live event
 * once (adding "id") and hands it to the hub. After a reconnect it
 * resubscribes, then fills each channel's gap from its stream, starting after
 * the last position the hub delivered; the hub drops what it already has.
 *
 * Lock order: hub channel lock → bus lock (the interest hook). The bus lock is
 * never held while calling the hub or doing I/O.
 *
 * Files (see redis.h for the internal calls between them):
 *   lua.c         the three scripts          keys.c    key names, ids, epochs
 *   entry.c       stored/live event → entry  url.c     RTGW_REDIS_URL
 *   conn.c        open + authenticate        pool.c    command connections
 *   chans.c       the channels this node wants (holds, the interest hook)
 *   publish.c     publish, history reads, position (on the pool)
 *   subscriber.c  the pub/sub thread: live events, reconnect, gap fill
 *
 * rt_bus_redis_new and the ops' free run on the thread that owns the bus
 * (the server's start and stop); free joins the subscriber thread.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "redis.h"

#include "err.h"
#include "log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static bool redis_ready(rt_bus_t *bus)
{
    return atomic_load(&((rt__rbus_t *)bus)->up);
}

static void redis_free(rt_bus_t *bus)
{
    rt__rbus_t *b = (rt__rbus_t *)bus;
    rt_hub_set_interest_hook(b->base.hub, NULL, NULL);
    atomic_store(&b->stop, true);
    if (b->thread_started) {
        rt__redis_wake(b);
        pthread_join(b->thread, NULL);
    }
    for (int i = 0; i < b->npool; i++) {
        rt__redis_pconn_drop(&b->pool[i]);
        pthread_mutex_destroy(&b->pool[i].lock);
    }
    free(b->pool);
    RT_MAP_FOREACH(&b->chans, e)
    {
        rt__chan_t *c = e->value;
        free(c->name);
        free(c);
    }
    rt_map_clear(&b->chans);
    free(b->dirty);
    if (b->evfd >= 0)
        close(b->evfd);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->cond);
    sodium_memzero(&b->url, sizeof(b->url));
    free(b);
}

static const rt_bus_ops_t redis_ops = {
    .name = "redis",
    .waits = true,
    .publish = rt__redis_publish,
    .subscribe_channel = rt__redis_subscribe_channel,
    .unsubscribe_channel = rt__redis_unsubscribe_channel,
    .read_history = rt__redis_read_history,
    .position = rt__redis_position,
    .ready = redis_ready,
    .free = redis_free,
};

/* A new bus with its options and defaults, not yet connected. NULL on OOM. */
static rt__rbus_t *rbus_alloc(rt_hub_t *hub, const rt_bus_redis_opts_t *opts)
{
    rt__rbus_t *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->base.ops = &redis_ops;
    b->base.hub = hub;
    b->o = *opts;
    b->o.url = NULL; /* parsed below; the caller's string is not kept */
    b->m = opts->metrics;
    b->evfd = -1;
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    rt_map_init(&b->chans);
    if (b->o.timeout_ms <= 0)
        b->o.timeout_ms = 1000;
    if (b->o.pool <= 0)
        b->o.pool = 4;
    int64_t keep = b->o.history_max_age_ms > b->o.idem_window_ms ? b->o.history_max_age_ms
                                                                 : b->o.idem_window_ms;
    b->ttl_ms = keep + 60000;
    return b;
}

/* Parse and check the URL, then make the pool and the wake-up fd. 0, or
 * RT_E_INVAL / RT_E_NOMEM with err filled. */
static int rbus_setup(rt__rbus_t *b, const char *url, char *err, size_t errcap)
{
    if (rt_redis_url_parse_usable(url, &b->url, err, errcap) != 0)
        return RT_E_INVAL;
    bool v6 = strchr(b->url.host, ':') != NULL;
    snprintf(b->where, sizeof(b->where), v6 ? "redis://[%s]:%d/%d" : "redis://%s:%d/%d",
             b->url.host, b->url.port, b->url.db);
    b->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    b->npool = b->o.pool;
    b->pool = calloc((size_t)b->npool, sizeof(*b->pool));
    if (b->evfd < 0 || !b->pool) {
        snprintf(err, errcap, "out of memory");
        return RT_E_NOMEM;
    }
    for (int i = 0; i < b->npool; i++)
        pthread_mutex_init(&b->pool[i].lock, NULL);
    if (b->m) {
        b->m->bus_name = "redis";
        atomic_store(&b->m->bus_up, 0);
    }
    return 0;
}

rt_bus_t *rt_bus_redis_new(rt_hub_t *hub, const rt_bus_redis_opts_t *opts, char *err, size_t errcap)
{
    rt__rbus_t *b = rbus_alloc(hub, opts);
    if (!b) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    if (rbus_setup(b, opts->url, err, errcap) != 0)
        goto fail;
    /* Check the URL's credentials now: a wrong password is a configuration
     * error (exit), an unreachable Redis is an outage (start, not ready). */
    redisContext *c;
    char cerr[1024];
    int rc = rt__redis_conn_open(b, &c, cerr, sizeof(cerr));
    if (rc == RT_E_DENIED) {
        snprintf(err, errcap, "%s", cerr);
        goto fail;
    }
    if (rc == 0)
        redisFree(c);
    else
        rt_log_warn("redis bus not reachable at start; serving, not ready, retrying",
                    "where=%s detail=\"%s\"", b->where, cerr);
    rt_hub_set_interest_hook(hub, rt__redis_interest_hook, b);
    if (pthread_create(&b->thread, NULL, rt__redis_sub_main, b) != 0) {
        snprintf(err, errcap, "cannot start the Redis subscriber thread");
        rt_hub_set_interest_hook(hub, NULL, NULL);
        goto fail;
    }
    b->thread_started = true;
    pthread_setname_np(b->thread, "rtgw-redis");
    /* Give the first connection a moment, so /ready is true from the start
     * when Redis is there. */
    for (int i = 0; i < 100 && rc == 0 && !atomic_load(&b->up); i++)
        usleep(10000);
    return &b->base;
fail:
    redis_free(&b->base);
    return NULL;
}
