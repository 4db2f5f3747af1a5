/*
 * writer.c — the writer threads (see writer.h).
 *
 * The hub only enqueues. A writer writes a session only while its socket has
 * room (SIOCOUTQ against a fixed SO_SNDBUF), so one client that stops reading
 * never stalls the writer for the others: its socket is parked in epoll until
 * writable, its queue grows, and the hub disconnects it at its bound (slow
 * consumer).
 *
 * Server-to-client WebSocket frames are unmasked, so the hub builds each frame
 * (header + JSON) once and a writer sends the same bytes to every subscriber
 * with one send() (detached; one SSL_write for TLS) or one mg_write under
 * mg_lock_connection (a session that could not detach), which serialises with
 * civetweb's own pong/close writes.
 *
 * Threads: writer_main and rt__writer_drain/park run on the session's writer
 * thread; rt__writer_schedule and the sink on any thread (publishers, the
 * heartbeat, civetweb's). Locks: the writer's lock guards its ready list only;
 * a session's wlock is held for the length of one write to its socket.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "writer.h"
#include "clock.h"
#include "detached.h"
#include "err.h"
#include "log.h"
#include "tlsconn.h"

#include <civetweb.h>
#include <errno.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

void rt__writer_schedule(rt_conn_t *c)
{
    rt_writer_t *w = atomic_load(&c->writer);
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    bool signal = false;
    if (!c->in_ready) {
        c->in_ready = true;
        rt__conn_ref(c);
        c->next_ready = NULL;
        if (w->ready_tail)
            w->ready_tail->next_ready = c;
        else
            w->ready_head = c;
        w->ready_tail = c;
        signal = w->ready_head == c;
    }
    pthread_mutex_unlock(&w->lock);
    if (signal) {
        uint64_t one = 1;
        ssize_t r = write(w->evfd, &one, sizeof(one));
        (void)r;
    }
}

/* Sink: the hub says this subscriber has work. Only schedules. */
static void sink_wake(void *owner, rt_sub_t *sub)
{
    (void)sub;
    rt__writer_schedule(owner);
}

/* Sink: the subscriber is over its queue bound. Close asynchronously. */
static void sink_kick(void *owner, rt_sub_t *sub, rt_reason_t reason)
{
    (void)sub;
    rt_conn_t *c = owner;
    rt_log_warn("disconnecting subscriber", "peer=%s reason=%s", c->peer, rt_reason_name(reason));
    rt__conn_close_async(c, reason);
}

const rt_sink_ops_t rt__conn_sink_ops = {sink_wake, sink_kick};

int64_t rt__conn_socket_room(rt_conn_t *c)
{
    int queued = 0;
    if (c->fd < 0 || ioctl(c->fd, SIOCOUTQ, &queued) != 0)
        return INT32_MAX; /* unknown: let civetweb's bounded write decide */
    int64_t room = c->srv->cfg->sndbuf_bytes - queued;
    return room > 0 ? room : 0;
}

void rt__writer_park(rt_conn_t *c)
{
    rt_writer_t *w = atomic_load(&c->writer);
    if (c->fd < 0 || c->parked || !w)
        return;
    if (c->detached) {
        /* Registered for good (EPOLLIN); add EPOLLOUT until it fires. */
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLOUT, .data.ptr = c};
        if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
            c->parked = true;
        return;
    }
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLONESHOT, .data.ptr = c};
    c->parked = true;
    rt__conn_ref(c);
    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0 &&
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        c->parked = false;
        rt__conn_unref(c);
    }
}

/* A detached session's write: non-blocking. rt__writer_drain checked the
 * room, so a short write is rare; keep the rest and send it before anything
 * else. wlock held. */
/* One non-blocking send on a detached session's socket, through its TLS if
 * it has one. wlock held. */
static ssize_t sock_send(rt_conn_t *c, const char *buf, size_t len)
{
    if (!c->tls)
        return send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    /* A TLS write takes one record (16 KiB) at a time: go on while the
     * socket takes them, as send() would. */
    size_t done = 0;
    while (done < len) {
        ssize_t n = rt__tls_write(c->tls, buf + done, len - done);
        if (n <= 0)
            return done > 0 ? (ssize_t)done : n;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

static int send_detached(rt_conn_t *c, const char *buf, size_t len)
{
    ssize_t n = c->wpend_len ? 0 : sock_send(c, buf, len);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        n = 0;
    if (n < 0)
        return RT_E_CLOSED;
    if ((size_t)n == len)
        return 0;
    char *nb = realloc(c->wpend, c->wpend_len + (len - (size_t)n));
    if (!nb)
        return RT_E_NOMEM;
    memcpy(nb + c->wpend_len, buf + n, len - (size_t)n);
    c->wpend = nb;
    c->wpend_len += len - (size_t)n;
    return 0;
}

int rt__conn_write(rt_conn_t *c, const char *buf, size_t len)
{
    int rc = RT_E_CLOSED;
    pthread_mutex_lock(&c->wlock);
    if (c->detached && c->fd >= 0) {
        rc = send_detached(c, buf, len);
    } else if (c->mg) {
        if (!c->sse)
            mg_lock_connection(c->mg);
        int n = mg_write(c->mg, buf, len);
        if (!c->sse)
            mg_unlock_connection(c->mg);
        rc = n == (int)len ? 0 : RT_E_CLOSED;
    }
    pthread_mutex_unlock(&c->wlock);
    if (rc == 0) {
        atomic_fetch_add_explicit(&c->srv->metrics.bytes_written, len, memory_order_relaxed);
        c->credit -= (int64_t)len + 64; /* TLS record overhead, generously */
    }
    return rc;
}

/* Where one step of draining left the session. */
typedef enum {
    DRAIN_MORE, /* go on */
    DRAIN_STOP, /* parked, or nothing left to write */
    DRAIN_GONE  /* the socket failed */
} drain_t;

/* Send what a short send() left over, before anything else. */
static drain_t drain_leftover(rt_conn_t *c)
{
    if (c->wpend_len <= c->wpend_off)
        return DRAIN_MORE;
    /* The same bytes again, and perhaps more: what TLS asks of a retried write. */
    pthread_mutex_lock(&c->wlock);
    ssize_t n = c->fd < 0 ? -1 : sock_send(c, c->wpend + c->wpend_off, c->wpend_len - c->wpend_off);
    pthread_mutex_unlock(&c->wlock);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return DRAIN_GONE;
    if (n > 0)
        c->wpend_off += (size_t)n;
    if (c->wpend_off < c->wpend_len) {
        rt__writer_park(c);
        return DRAIN_STOP;
    }
    c->wpend_len = c->wpend_off = 0;
    return DRAIN_MORE;
}

/* Write the next queued frames in one write: whole frames that fit both the
 * credit and the coalescing buffer, or the first one alone when it does not. */
static drain_t drain_batch(rt_conn_t *c)
{
    char coalesce[65536];
    if (c->pend_idx == c->npending) {
        c->pend_idx = 0;
        c->npending = rt_sub_pop(c->sub, c->pending, 64);
        if (c->npending == 0) {
            if (atomic_load(&c->state) == RT_CONN_CLOSING)
                rt__conn_finish_close(c);
            return DRAIN_STOP;
        }
    }
    int64_t sndbuf = c->srv->cfg->sndbuf_bytes;
    rt_frame_t *first = c->pending[c->pend_idx];
    int64_t need = first->len < sndbuf / 2 ? first->len : sndbuf / 2;
    if (c->credit < need) {
        c->credit = rt__conn_socket_room(c);
        if (c->credit < need) {
            rt__writer_park(c);
            return DRAIN_STOP;
        }
    }
    size_t len = 0, k = c->pend_idx;
    /* A frame bigger than the credit (but within `need`) goes alone, like a
     * big one: the coalescing loop below would take nothing and spin. */
    if (first->len > sizeof(coalesce) || k + 1 == c->npending || (int64_t)first->len > c->credit) {
        if (rt__conn_write(c, first->data, first->len) != 0)
            return DRAIN_GONE;
        k++;
    } else {
        while (k < c->npending && len + c->pending[k]->len <= sizeof(coalesce) &&
               (int64_t)(len + c->pending[k]->len) <= c->credit) {
            memcpy(coalesce + len, c->pending[k]->data, c->pending[k]->len);
            len += c->pending[k]->len;
            k++;
        }
        if (len && rt__conn_write(c, coalesce, len) != 0)
            return DRAIN_GONE;
    }
    atomic_fetch_add_explicit(&c->srv->metrics.frames_written, k - c->pend_idx,
                              memory_order_relaxed);
    for (size_t i = c->pend_idx; i < k; i++)
        rt_frame_unref(c->pending[i]);
    c->pend_idx = k;
    return DRAIN_MORE;
}

void rt__writer_drain(rt_conn_t *c)
{
    int state = atomic_load(&c->state);
    if (state == RT_CONN_GONE)
        return;
    /* A shutdown or an expired token still delivers what is queued (the
     * "closing" notice); any other reason closes at once. */
    if (state == RT_CONN_CLOSING && atomic_load(&c->close_reason) != RT_REASON_SHUTTING_DOWN &&
        atomic_load(&c->close_reason) != RT_REASON_TOKEN_EXPIRED) {
        rt__conn_finish_close(c);
        return;
    }
    drain_t d = drain_leftover(c);
    while (d == DRAIN_MORE)
        d = drain_batch(c);
    /* Bytes a short write left over go out when the socket has room, not at
     * the next publish. */
    if (d == DRAIN_STOP && c->wpend_off < c->wpend_len && !c->parked)
        rt__writer_park(c);
    if (d == DRAIN_GONE) {
        rt_sub_close(c->sub);
        atomic_store(&c->state, RT_CONN_CLOSING);
        rt__conn_shutdown_socket(c, SHUT_RDWR);
    }
}

/* Drain every session on the ready list. */
static void drain_ready(rt_writer_t *w)
{
    for (;;) {
        pthread_mutex_lock(&w->lock);
        rt_conn_t *c = w->ready_head;
        if (c) {
            w->ready_head = c->next_ready;
            if (!w->ready_head)
                w->ready_tail = NULL;
            c->in_ready = false;
        }
        pthread_mutex_unlock(&w->lock);
        if (!c)
            break;
        if (!c->parked)
            rt__writer_drain(c);
        rt__conn_unref(c);
    }
}

static void *writer_main(void *arg)
{
    rt_writer_t *w = arg;
    struct epoll_event evs[64];
    while (!atomic_load(&w->srv->stop)) {
        int n = epoll_wait(w->epfd, evs, 64, 500);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                uint64_t v;
                ssize_t r = read(w->evfd, &v, sizeof(v));
                (void)r;
                continue;
            }
            rt_conn_t *c = evs[i].data.ptr;
            if (c->detached) {
                rt__detached_event(c, evs[i].events);
                continue;
            }
            /* A parked session's socket has room again (the registration's
             * reference is dropped here). */
            c->parked = false;
            c->credit = 0;
            rt__writer_drain(c);
            rt__conn_unref(c);
        }
        drain_ready(w);
    }
    return NULL;
}

int rt__writers_start(rt_server_t *srv)
{
    srv->writers = calloc((size_t)srv->nwriters, sizeof(rt_writer_t));
    if (!srv->writers)
        return RT_E_NOMEM;
    for (int i = 0; i < srv->nwriters; i++) {
        rt_writer_t *w = &srv->writers[i];
        w->srv = srv;
        pthread_mutex_init(&w->lock, NULL);
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev);
        if (pthread_create(&w->thread, NULL, writer_main, w) == 0)
            pthread_setname_np(w->thread, "rtgw-writer");
    }
    return 0;
}

void rt__writers_stop(rt_server_t *srv)
{
    for (int i = 0; i < srv->nwriters; i++) { /* srv->stop is set: no epoll_wait out */
        uint64_t one = 1;
        (void)!write(srv->writers[i].evfd, &one, sizeof(one));
    }
    for (int i = 0; i < srv->nwriters; i++) {
        pthread_join(srv->writers[i].thread, NULL);
        close(srv->writers[i].epfd);
        close(srv->writers[i].evfd);
    }
}
