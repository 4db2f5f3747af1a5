/*
 * heartbeat.c — the heartbeat thread (see heartbeat.h).
 *
 * Every tick it walks srv->conns under conns_lock and only flags or queues:
 * a ping is pushed to the session's queue, an idle or expired session is
 * closed asynchronously (its writer sends the close frame). The one socket
 * call is a shutdown of a session whose closing handshake the peer did not
 * finish within 2 s. Nothing here blocks on a client.
 */
#include "heartbeat.h"
#include "clock.h"
#include "conn.h"
#include "log.h"

#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* One session's check. now: monotonic ms; wall: wall-clock seconds. */
static void heartbeat_conn(rt_server_t *srv, rt_conn_t *c, int64_t now, int64_t wall)
{
    int64_t interval = srv->cfg->ping_interval_ms;
    int64_t deadline = srv->cfg->ping_interval_ms + srv->cfg->pong_timeout_ms;
    int st = atomic_load(&c->state);
    if (st == RT_CONN_CLOSING && now - c->closing_since_ms > 2000) {
        /* A graceful close that the peer did not finish. */
        rt__conn_shutdown_socket(c, SHUT_RDWR);
        return;
    }
    if (st != RT_CONN_OPEN)
        return;
    if (!c->sse && now - atomic_load(&c->last_rx_ms) > deadline) {
        rt_log_info("closing idle connection", "peer=%s reason=idle_timeout", c->peer);
        rt__conn_close_async(c, RT_REASON_IDLE_TIMEOUT);
        return;
    }
    if (srv->cfg->close_on_expiry && c->token_exp && wall > c->token_exp) {
        rt_log_info("closing connection with an expired token", "peer=%s reason=token_expired",
                    c->peer);
        rt__conn_close_async(c, RT_REASON_TOKEN_EXPIRED);
        return;
    }
    if (now - c->last_ping_ms >= interval) {
        c->last_ping_ms = now;
        rt_sub_push(c->sub, c->sse ? srv->sse_ping_frame : srv->ping_frame);
    }
}

void rt__heartbeat_init(rt_server_t *srv)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&srv->heartbeat_cond, &a);
    pthread_condattr_destroy(&a);
    pthread_mutex_init(&srv->heartbeat_lock, NULL);
}

void rt__heartbeat_wake(rt_server_t *srv)
{
    pthread_mutex_lock(&srv->heartbeat_lock);
    pthread_cond_broadcast(&srv->heartbeat_cond);
    pthread_mutex_unlock(&srv->heartbeat_lock);
}

/* One tick's sleep, or less once srv->stop is set (rt__heartbeat_wake). */
static void sleep_tick(rt_server_t *srv, int64_t tick_ms)
{
    struct timespec at;
    clock_gettime(CLOCK_MONOTONIC, &at);
    at.tv_sec += tick_ms / 1000;
    at.tv_nsec += (tick_ms % 1000) * 1000000;
    if (at.tv_nsec >= 1000000000) {
        at.tv_sec++;
        at.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&srv->heartbeat_lock);
    while (!atomic_load(&srv->stop) &&
           pthread_cond_timedwait(&srv->heartbeat_cond, &srv->heartbeat_lock, &at) == 0)
        ; /* a wake-up for the stop, or a spurious one: the loop checks */
    pthread_mutex_unlock(&srv->heartbeat_lock);
}

void *rt__heartbeat_main(void *arg)
{
    rt_server_t *srv = arg;
    int64_t last_sweep = rt_clock_mono_ms();
    /* The tick walks every connection under conns_lock: a quarter of the
     * shorter of the two timers, between 10 ms and 1 s. */
    int64_t interval = srv->cfg->ping_interval_ms;
    int64_t shorter = interval < srv->cfg->pong_timeout_ms ? interval : srv->cfg->pong_timeout_ms;
    int64_t tick = shorter / 4 < 10 ? 10 : shorter / 4 > 1000 ? 1000 : shorter / 4;
    while (!atomic_load(&srv->stop)) {
        sleep_tick(srv, tick);
        if (atomic_load(&srv->stop))
            break;
        int64_t now = rt_clock_mono_ms();
        int64_t wall = rt_clock_wall_ms() / 1000;
        pthread_mutex_lock(&srv->conns_lock);
        for (rt_conn_t *c = srv->conns; c; c = c->next)
            heartbeat_conn(srv, c, now, wall);
        pthread_mutex_unlock(&srv->conns_lock);
        if (now - last_sweep > 5000) {
            rt_limiter_sweep(srv->publish_limit, now);
            rt_limiter_sweep(srv->mint_limit, now);
            rt_hub_sweep(srv->hub, rt_clock_wall_ms());
            last_sweep = now;
        }
    }
    return NULL;
}
