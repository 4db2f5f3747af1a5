/*
 * detached.c — reading detached sessions' client frames on the writers'
 * epoll (see detached.h).
 *
 * A detached session's socket is registered in its writer's epoll for good
 * (EPOLLIN | EPOLLRDHUP; EPOLLOUT added while parked), with one reference on
 * the session that detached_finish drops. The writer thread reads the client's
 * bytes into c->rbuf, parses WebSocket frames with wsframe.h, applying the
 * same rules as the client frame guard on civetweb's threads (size from the
 * header, masked frames only, then RFC 6455's stream rules: RSV bits,
 * opcodes, control frames, fragments), and hands each one to
 * rt__ws_session_frame, which checks its payload.
 * For SSE, or once the session is closing, bytes are only discarded: the
 * client only has to go away.
 *
 * A TLS session's bytes are decrypted here (tlsconn.h), under the session's
 * wlock, which its writes hold too: one thread at a time in its SSL object.
 *
 * Everything here runs on the session's writer thread; c->rbuf, rlen, rcap
 * and detached_done belong to it.
 */
#include "detached.h"
#include "session.h"
#include "tlsconn.h"
#include "writer.h"
#include "ws.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* What reading left the session as. */
typedef enum {
    READ_MORE, /* parsed what arrived; read again */
    READ_WAIT, /* the socket is drained; wait for epoll */
    READ_END   /* the session is over (detached_finish done, or refused) */
} read_t;

/* End a detached session: out of epoll, unsubscribed, socket closed. */
static void detached_finish(rt_conn_t *c)
{
    if (c->detached_done)
        return;
    c->detached_done = true;
    rt_writer_t *w = atomic_load(&c->writer);
    if (w && c->fd >= 0)
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->parked = false;
    rt__session_end(c->srv, c);
    pthread_mutex_lock(&c->wlock);
    int fd = c->fd;
    c->fd = -1;
    rt_tls_t *tls = c->tls;
    c->tls = NULL;
    pthread_mutex_unlock(&c->wlock);
    rt__tls_close_notify(tls);
    rt__tls_free(tls);
    if (fd >= 0)
        close(fd);
    rt__conn_unref(c); /* the epoll registration's reference */
}

/* The frame header at p[0..avail), judged as soon as its length is known:
 * the mask, the header's last four bytes, is not needed to refuse a frame
 * from its header. Returns 1 with *h filled (h->mask valid only when
 * avail >= h->hlen), 0 when more bytes are needed, -1 for a 64-bit length
 * with its top bit set (wsframe.h). */
static int header_peek(const uint8_t *p, size_t avail, rt_ws_hdr_t *h)
{
    if (avail < 2)
        return 0;
    size_t need = rt_ws_hdr_need(p[1]);
    if (avail < ((p[1] & 0x80) ? need - 4 : need))
        return 0;
    uint8_t hdr[RT_WS_HDR_MAX] = {0};
    memcpy(hdr, p, avail < need ? avail : need);
    return rt_ws_hdr_parse(hdr, need, h) < 0 ? -1 : 1;
}

/* Refuse the client's stream: the close frame with the reason's code, then
 * half-close; what the client still sends is discarded. */
static read_t refuse(rt_conn_t *c, rt_reason_t why)
{
    rt__conn_refuse_frame(c, why);
    rt__conn_shutdown_socket(c, SHUT_WR);
    c->rlen = 0;
    return READ_END;
}

/* Handle the complete frames in c->rbuf, keeping a partial one for later. */
static read_t parse_frames(rt_conn_t *c)
{
    uint64_t limit = (uint64_t)c->srv->cfg->max_client_frame_bytes;
    size_t off = 0;
    while (c->rlen > off) {
        uint8_t *p = c->rbuf + off;
        size_t avail = c->rlen - off;
        rt_ws_hdr_t h;
        int r = header_peek(p, avail, &h);
        if (r == 0)
            break;
        bool masked = (p[1] & 0x80) != 0;
        if (!masked || r < 0 || h.len > limit)
            /* Refused from the header, before buffering the payload. */
            return refuse(c, masked ? RT_REASON_MESSAGE_TOO_BIG : RT_REASON_PROTOCOL_ERROR);
        if (avail < h.hlen + h.len)
            break;
        /* The stream rules (RSV, opcodes, control frames, fragments), once per
         * frame: it is whole now, and bounded by the limit above. */
        rt_reason_t why = rt_ws_rx_header(&c->rx, &h, limit);
        if (why != RT_REASON_NORMAL)
            return refuse(c, why);
        uint8_t *data = p + h.hlen;
        rt_ws_unmask(data, (size_t)h.len, h.mask, 0);
        bool go_on = rt__ws_session_frame(c->srv, c, h.fin, h.opcode, (char *)data, (size_t)h.len);
        off += h.hlen + (size_t)h.len;
        if (!go_on) {
            detached_finish(c);
            return READ_END;
        }
    }
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
    return READ_MORE;
}

/* Grow c->rbuf towards the largest frame the limit allows (header included).
 * false when out of memory. */
static bool rbuf_reserve(rt_conn_t *c, size_t limit)
{
    if (c->rcap - c->rlen >= 2048 || c->rcap >= limit + RT_WS_HDR_MAX)
        return true;
    size_t nc = c->rcap ? c->rcap * 2 : 4096;
    if (nc > limit + RT_WS_HDR_MAX)
        nc = limit + RT_WS_HDR_MAX;
    uint8_t *nb = realloc(c->rbuf, nc);
    if (!nb)
        return false;
    c->rbuf = nb;
    c->rcap = nc;
    return true;
}

/* One read from the socket, and the frames it completes. */
static read_t read_once(rt_conn_t *c)
{
    if (!rbuf_reserve(c, (size_t)c->srv->cfg->max_client_frame_bytes)) {
        detached_finish(c);
        return READ_END;
    }
    ssize_t n;
    if (c->tls) { /* one thread at a time in an SSL object: the writer's wlock */
        pthread_mutex_lock(&c->wlock);
        n = rt__tls_read(c->tls, c->rbuf + c->rlen, c->rcap - c->rlen);
        pthread_mutex_unlock(&c->wlock);
    } else {
        n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
    }
    if (n == 0) {
        detached_finish(c);
        return READ_END;
    }
    if (n < 0) {
        if (errno == EINTR)
            return READ_MORE;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            detached_finish(c);
            return READ_END;
        }
        return READ_WAIT;
    }
    if (c->sse || atomic_load(&c->state) == RT_CONN_GONE || c->close_sent) {
        c->rlen = 0; /* nothing to parse: the client only has to go away */
        return READ_MORE;
    }
    c->rlen += (size_t)n;
    return parse_frames(c);
}

void rt__detached_event(rt_conn_t *c, uint32_t events)
{
    if (c->detached_done)
        return;
    rt__conn_ref(c); /* detached_finish may drop the last other reference */
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        while (read_once(c) == READ_MORE)
            ;
        if (c->detached_done) {
            rt__conn_unref(c);
            return;
        }
    }
    if ((events & EPOLLOUT) && c->parked) {
        rt_writer_t *w = atomic_load(&c->writer);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        if (w)
            epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->parked = false;
        c->credit = 0;
        rt__writer_drain(c);
    }
    rt__conn_unref(c);
}
