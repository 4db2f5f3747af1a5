/*
 * conn.c — opening one connection to Redis: connect (bounded by the bus's
 * timeout), AUTH or PING, SELECT. Tells an outage (retry later) from a
 * refusal of the URL's credentials or database (a configuration error, which
 * stops the gateway at start). Called by the pool, the subscriber thread and
 * rt_bus_redis_new; blocks on network I/O; takes no lock. The connection is
 * the caller's (redisFree). Error texts name the server, never the password.
 */
#include "redis.h"

#include "err.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

static bool is_auth_error(const char *s)
{
    return strncmp(s, "WRONGPASS", 9) == 0 || strncmp(s, "NOAUTH", 6) == 0 ||
           strstr(s, "invalid password") || strstr(s, "invalid username") ||
           strstr(s, "AUTH <password> called without") || strstr(s, "without any password");
}

/* AUTH with the URL's credentials (PING without). 0, RT_E_UNAVAILABLE or RT_E_DENIED. */
static int conn_auth(rt__rbus_t *b, redisContext *c, char *err, size_t errcap)
{
    redisReply *r;
    if (b->url.password[0]) {
        if (b->url.user[0])
            r = redisCommand(c, "AUTH %s %s", b->url.user, b->url.password);
        else
            r = redisCommand(c, "AUTH %s", b->url.password);
    } else {
        r = redisCommand(c, "PING");
    }
    int rc = 0;
    if (!r) {
        snprintf(err, errcap, "lost the connection to %s during AUTH: %s", b->where, c->errstr);
        rc = RT_E_UNAVAILABLE;
    } else if (r->type == REDIS_REPLY_ERROR) {
        bool auth = is_auth_error(r->str);
        char q[200];
        snprintf(q, sizeof(q), "%.*s", (int)(r->len < 150 ? r->len : 150), r->str);
        if (auth)
            snprintf(
                err, errcap,
                "RTGW_REDIS_URL: Redis at %s refused the credentials (%s); put the right password "
                "in the URL: redis://:PASSWORD@host:port/db",
                b->where, q);
        else
            snprintf(err, errcap, "RTGW_REDIS_URL: Redis at %s answered an error: %s", b->where, q);
        rc = auth ? RT_E_DENIED : RT_E_UNAVAILABLE;
    }
    freeReplyObject(r);
    return rc;
}

/* SELECT the URL's database. 0, RT_E_UNAVAILABLE or RT_E_DENIED. */
static int conn_select(rt__rbus_t *b, redisContext *c, char *err, size_t errcap)
{
    redisReply *r = redisCommand(c, "SELECT %d", b->url.db);
    int rc = 0;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errcap, "RTGW_REDIS_URL: Redis at %s refused database %d: %s", b->where,
                 b->url.db, r ? r->str : c->errstr);
        rc = r ? RT_E_DENIED : RT_E_UNAVAILABLE;
    }
    freeReplyObject(r);
    return rc;
}

int rt__redis_conn_open(rt__rbus_t *b, redisContext **out, char *err, size_t errcap)
{
    *out = NULL;
    struct timeval tv = {(time_t)(b->o.timeout_ms / 1000),
                         (suseconds_t)((b->o.timeout_ms % 1000) * 1000)};
    redisContext *c = redisConnectWithTimeout(b->url.host, b->url.port, tv);
    if (!c || c->err) {
        snprintf(err, errcap, "cannot connect to %s: %s", b->where,
                 c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return RT_E_UNAVAILABLE;
    }
    redisSetTimeout(c, tv);
    redisEnableKeepAlive(c);
    int rc = conn_auth(b, c, err, errcap);
    if (rc == 0 && b->url.db)
        rc = conn_select(b, c, err, errcap);
    if (rc != 0) {
        redisFree(c);
        return rc;
    }
    *out = c;
    return 0;
}
