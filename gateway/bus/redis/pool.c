/*
 * pool.c — the command connections: a small fixed pool of blocking
 * connections, one request at a time each, for publishes, history reads and
 * positions (any thread). A caller takes one with rt__redis_pool_get (which
 * locks it; round robin, waiting on a busy one only when all are busy), makes
 * it usable with rt__redis_pconn_ready, runs scripts, and gives it back with
 * rt__redis_pool_put. The connection lock is held across the I/O of one
 * command, never with another lock. A connection opened before the last outage
 * (an older bus generation) is reopened; script SHAs are cached per connection.
 */
#include "redis.h"

#include "err.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

rt__pconn_t *rt__redis_pool_get(rt__rbus_t *b)
{
    unsigned start = atomic_fetch_add(&b->rr, 1);
    for (int i = 0; i < b->npool; i++) {
        rt__pconn_t *p = &b->pool[(start + (unsigned)i) % (unsigned)b->npool];
        if (pthread_mutex_trylock(&p->lock) == 0)
            return p;
    }
    rt__pconn_t *p = &b->pool[start % (unsigned)b->npool];
    pthread_mutex_lock(&p->lock);
    return p;
}

void rt__redis_pool_put(rt__pconn_t *p)
{
    pthread_mutex_unlock(&p->lock);
}

void rt__redis_pconn_drop(rt__pconn_t *p)
{
    if (p->c)
        redisFree(p->c);
    p->c = NULL;
    for (int i = 0; i < RT__SCRIPT_COUNT; i++)
        p->sha[i][0] = 0;
}

/* While the subscriber connection is down the bus is down: fail fast rather
 * than wait for timeouts. */
int rt__redis_pconn_ready(rt__rbus_t *b, rt__pconn_t *p)
{
    if (!atomic_load(&b->up))
        return RT_E_UNAVAILABLE;
    uint64_t gen = atomic_load(&b->gen);
    if (p->c && (p->gen != gen || p->c->err))
        rt__redis_pconn_drop(p); /* opened before the last outage: its server may be gone */
    if (p->c)
        return 0;
    char err[1024];
    if (rt__redis_conn_open(b, &p->c, err, sizeof(err)) != 0) {
        rt__redis_count_error(b);
        rt_log_debug("redis command connection failed", "detail=\"%s\"", err);
        return RT_E_UNAVAILABLE;
    }
    p->gen = gen;
    for (int i = 0; i < RT__SCRIPT_COUNT; i++) {
        redisReply *r = redisCommand(p->c, "SCRIPT LOAD %s", rt__redis_scripts[i]);
        if (r && r->type == REDIS_REPLY_STRING && r->len == 40)
            memcpy(p->sha[i], r->str, 41);
        freeReplyObject(r);
    }
    return 0;
}

redisReply *rt__redis_run_script(rt__pconn_t *p, int which, int nkeys, int nargs, const char **argv,
                                 const size_t *lens)
{
    const char *av[64];
    size_t al[64];
    char nk[16];
    int n = 0;
    snprintf(nk, sizeof(nk), "%d", nkeys);
    for (int attempt = 0; attempt < 2; attempt++) {
        bool sha = attempt == 0 && p->sha[which][0];
        if (attempt == 0 && !sha)
            attempt = 1;
        n = 0;
        av[n] = sha ? "EVALSHA" : "EVAL";
        al[n++] = strlen(av[0]);
        av[n] = sha ? p->sha[which] : rt__redis_scripts[which];
        al[n++] = strlen(av[1]);
        av[n] = nk;
        al[n++] = strlen(nk);
        for (int i = 0; i < nargs && n < 64; i++) {
            av[n] = argv[i];
            al[n++] = lens[i];
        }
        redisReply *r = redisCommandArgv(p->c, n, av, al);
        if (!r) {
            rt__redis_pconn_drop(p);
            return NULL;
        }
        if (sha && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
            freeReplyObject(r);
            p->sha[which][0] = 0; /* Redis restarted without it: EVAL caches it again */
            continue;
        }
        return r;
    }
    return NULL;
}
