/*
 * conn.h — one client session (WebSocket or SSE): its record, its references
 * and its closing.
 *
 * References: rt__conn_new returns one, the creating civetweb callback's
 * (handed to civetweb's user connection data for a WebSocket, dropped by
 * ws_close). Others are held by the writer's ready list (rt__writer_schedule),
 * by a parked epoll registration (rt__writer_park) and by a detached
 * session's epoll registration (rt__session_go until detached_finish). The
 * last rt__conn_unref frees the record and what it holds (queued frames, the
 * subscription, claims, its per-IP count and its connection slot).
 *
 * A session is never freed inside its own callback: it is flagged (state)
 * and its owner frees it.
 *
 * States: RT_CONN_OPEN → RT_CONN_CLOSING (rt__conn_close_async, any thread:
 * the writer sends the close frame) → RT_CONN_GONE (rt__session_end).
 */
#ifndef RT_CONN_H
#define RT_CONN_H

#include "srv.h"

#include <stdbool.h>
#include <stdint.h>

enum { RT_CONN_OPEN = 0, RT_CONN_CLOSING = 1, RT_CONN_GONE = 2 };

struct rt_conn_s {
    atomic_uint refs;
    rt_server_t *srv;
    struct mg_connection *mg; /* NULL once civetweb closed it (guarded by wlock) */
    pthread_mutex_t wlock;    /* held by the writer during a write; by close to clear mg */
    int fd;
    bool sse;
    bool ext;
    rt_sub_t *sub;
    _Atomic(rt_writer_t *) writer; /* NULL until the subscription ack is queued */
    atomic_int state;
    atomic_int close_reason; /* rt_reason_t */
    atomic_llong last_rx_ms;
    int64_t last_ping_ms;
    int64_t closing_since_ms;
    int64_t token_exp;
    int64_t credit;          /* bytes we may write before checking the socket again */
    rt_frame_t *pending[64]; /* popped from the queue, not yet written */
    size_t npending, pend_idx;
    bool in_ready;      /* on the writer's ready list (writer lock) */
    atomic_bool parked; /* waiting in epoll for EPOLLOUT (set/cleared by the writer) */
    bool close_sent;
    rt_ws_rx_t rx; /* RFC 6455 receive rules (wsframe.h): the reading thread's */
    bool refused;  /* an ext refusal: close right after the upgrade */
    rt_reason_t refuse_reason;
    char refuse_detail[96];
    rt_claims_t claims;
    rt_pos_t since[16]; /* resume candidates: one per channel (matched by epoch) */
    size_t nsince;
    rt_pos_t connect_pos[16]; /* channel positions before the handshake (no since given) */
    size_t nconnect_pos;
    rt_conn_t *next_ready;
    rt_conn_t *prev, *next; /* srv->conns */
    char peer[64];
    char ip[64];    /* client address (X-Forwarded-For from a trusted proxy) */
    bool ip_held;   /* counted in srv->ip_conns */
    bool slot_held; /* counted in srv->nconns (admitted, or listed in srv->conns) */
    int64_t frame_window_ms;
    double frame_tokens; /* client frame budget (RTGW_RATE_LIMIT_CLIENT_FRAMES) */
    /* Detached sessions (see rt__session_detach): the socket belongs to a
     * writer thread's epoll, which also reads the client's frames. Writer
     * thread only. */
    bool detached;
    bool detached_done;
    uint8_t *rbuf; /* client bytes not yet parsed into frames */
    size_t rlen, rcap;
    char *wpend;   /* bytes a short send() left over */
    rt_tls_t *tls; /* a detached TLS session's TLS (tlsconn.h); wlock while writing */
    size_t wpend_len, wpend_off;
};

/* A new session record, one reference; NULL when out of memory. mg: the
 * civetweb connection, or NULL for one the front door answered itself
 * (fastpath.c); addr and port: the peer's. */
rt_conn_t *rt__conn_new(rt_server_t *srv, struct mg_connection *mg, const char *addr, int port,
                        bool sse);
/* Take a reference; returns c. Any thread. */
rt_conn_t *rt__conn_ref(rt_conn_t *c);
/* Drop a reference; the last one frees c. Any thread. */
void rt__conn_unref(rt_conn_t *c);

/* Start closing with a reason (once; later calls are ignored): the writer
 * sends the close frame. Any thread; never writes. */
void rt__conn_close_async(rt_conn_t *c, rt_reason_t reason);
/* The writer's part of closing: a close frame when the socket has room (it
 * waits for room up to 1.5 s, parked), then a half or full shutdown. Writer
 * thread only. */
void rt__conn_finish_close(rt_conn_t *c);
/* shutdown(2) the session's socket with `how`, if civetweb or a writer still
 * owns it. Any thread; takes wlock. */
void rt__conn_shutdown_socket(rt_conn_t *c, int how);
/* The client frame guard (sockhook.c) or the detached reader refused a
 * client frame from its header, for `reason` (RT_REASON_MESSAGE_TOO_BIG or
 * RT_REASON_PROTOCOL_ERROR): send the close frame now, on the thread that
 * read it, and keep the writer from sending a second one. */
void rt__conn_refuse_frame(rt_conn_t *c, rt_reason_t reason);

#endif
