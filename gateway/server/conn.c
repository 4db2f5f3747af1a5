/*
 * conn.c — a session's record, its references and its closing (see conn.h).
 *
 * Closing is asynchronous: whoever decides a session ends (the hub over a
 * queue bound, the heartbeat, a refused frame) flags it CLOSING and schedules
 * its writer; the writer sends the close frame when the socket has room
 * (rt__conn_finish_close) and shuts the socket, which wakes whoever reads it.
 * Nothing here frees a session inside its own callback.
 *
 * Locks: wlock (the session's write lock) around writes and around the
 * socket's shutdown, so a write never races civetweb clearing c->mg.
 */
#include "conn.h"
#include "log.h"
#include "clock.h"
#include "tlsconn.h"
#include "writer.h"

#include <civetweb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

rt_conn_t *rt__conn_new(rt_server_t *srv, struct mg_connection *mg, const char *addr, int port,
                        bool sse)
{
    rt_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    c->srv = srv;
    c->mg = mg;
    c->sse = sse;
    c->fd = -1;
    pthread_mutex_init(&c->wlock, NULL);
    atomic_init(&c->state, RT_CONN_OPEN);
    atomic_init(&c->last_rx_ms, rt_clock_mono_ms());
    c->last_ping_ms = rt_clock_mono_ms();
    snprintf(c->peer, sizeof(c->peer), "%s:%d", addr, port);
    return c;
}

rt_conn_t *rt__conn_ref(rt_conn_t *c)
{
    atomic_fetch_add(&c->refs, 1);
    return c;
}

void rt__conn_unref(rt_conn_t *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    for (size_t i = c->pend_idx; i < c->npending; i++)
        rt_frame_unref(c->pending[i]);
    if (c->ip_held)
        rt_conncount_release(c->srv->ip_conns, c->ip);
    if (c->slot_held) /* admitted, but the session never started */
        atomic_fetch_sub(&c->srv->nconns, 1);
    free(c->rbuf);
    free(c->wpend);
    rt__tls_free(c->tls);
    rt_sub_unref(c->sub);
    rt_claims_clear(&c->claims);
    pthread_mutex_destroy(&c->wlock);
    free(c);
}

void rt__conn_close_async(rt_conn_t *c, rt_reason_t reason)
{
    int expect = RT_CONN_OPEN;
    if (!atomic_compare_exchange_strong(&c->state, &expect, RT_CONN_CLOSING))
        return;
    atomic_store(&c->close_reason, (int)reason);
    c->closing_since_ms = rt_clock_mono_ms();
    rt__writer_schedule(c);
}

void rt__conn_refuse_frame(rt_conn_t *c, rt_reason_t r)
{
    rt_log_info("client frame refused before reading it", "peer=%s reason=%s", c->peer,
                rt_reason_name(r));
    int expect = RT_CONN_OPEN;
    if (atomic_compare_exchange_strong(&c->state, &expect, RT_CONN_CLOSING)) {
        atomic_store(&c->close_reason, (int)r);
        c->closing_since_ms = rt_clock_mono_ms();
    }
    if (c->sub)
        rt_sub_close(c->sub);
    pthread_mutex_lock(&c->wlock);
    bool send_it = !c->close_sent && (c->mg || c->detached);
    c->close_sent = true;
    pthread_mutex_unlock(&c->wlock);
    if (send_it) {
        rt_frame_t *f = rt_ws_close_frame_new(rt_reason_ws_code(r), rt_reason_name(r));
        if (f) {
            rt__conn_write(c, f->data, f->len);
            rt_frame_unref(f);
        }
    }
}

void rt__conn_shutdown_socket(rt_conn_t *c, int how)
{
    pthread_mutex_lock(&c->wlock);
    if ((c->mg || c->detached) && c->fd >= 0) {
        if (c->tls && how != SHUT_RD)
            rt__tls_close_notify(c->tls);
        shutdown(c->fd, how);
    }
    pthread_mutex_unlock(&c->wlock);
}

/* Whether the close frame can go now. A slow consumer's socket is full: wait
 * for room for the close frame (bounded; the heartbeat shuts the socket after
 * 2 s in CLOSING), so the client learns the reason instead of seeing 1006.
 * Sets *later (and parks) when the writer should come back. */
static bool close_frame_fits(rt_conn_t *c, bool *later)
{
    *later = false;
    if (c->fd < 0) /* socket unknown: civetweb's bounded write decides */
        return rt__conn_socket_room(c) > 256;
    if (c->sse)
        return false;
    struct pollfd p = {.fd = c->fd, .events = POLLOUT};
    bool ready = poll(&p, 1, 0) == 1;
    if (!ready && rt_clock_mono_ms() - c->closing_since_ms < 1500) {
        rt__writer_park(c);
        *later = true;
        return false;
    }
    return ready && (p.revents & POLLOUT) && !(p.revents & (POLLERR | POLLHUP));
}

void rt__conn_finish_close(rt_conn_t *c)
{
    if (c->close_sent)
        return;
    rt_reason_t r = (rt_reason_t)atomic_load(&c->close_reason);
    rt_sub_close(c->sub);
    for (size_t i = c->pend_idx; i < c->npending; i++)
        rt_frame_unref(c->pending[i]);
    c->npending = c->pend_idx = 0;
    bool later;
    bool writable = close_frame_fits(c, &later);
    if (later)
        return;
    c->close_sent = true;
    bool sent = false;
    if (!c->sse && writable) {
        rt_frame_t *f = rt_ws_close_frame_new(rt_reason_ws_code(r), rt_reason_name(r));
        if (f) {
            sent = rt__conn_write(c, f->data, f->len) == 0;
            rt_frame_unref(f);
        }
    }
    /* After a close frame, only half-close: shutting the read side while the
     * client's frames sit unread makes the kernel send a reset, and the client
     * may lose the close frame and see 1006. Its close reply (or EOF) ends the
     * session; the heartbeat shuts the socket fully after 2 s otherwise.
     * Without a close frame, shut both sides now: that wakes civetweb's
     * reader, which runs the close handler. */
    rt__conn_shutdown_socket(c, sent ? SHUT_WR : SHUT_RDWR);
}
