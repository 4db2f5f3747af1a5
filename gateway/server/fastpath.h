/*
 * fastpath.h — the two requests the front door answers itself, on its own
 * thread, instead of handing the connection to civetweb: a WebSocket upgrade
 * on /v1/realtime/connect that rtgw admits, and POST /v1/realtime/token with
 * its body in hand. They are what every subscriber's connect costs (a mint,
 * then the upgrade), and civetweb's way to them is four threads and three
 * extra sockets per connection (the hand-over, its master's queue, a worker,
 * the detach): see docs/architecture.md §5.
 *
 * Only the plain shape of each is taken: an exact path, a strict HTTP/1.x
 * head (CRLF lines, no folding, at most 63 headers), no probe id, no Expect,
 * nothing ambiguous; for the upgrade no body and no byte after the head, and
 * for the mint a Content-Length body that has arrived whole, nothing after it
 * (a pipelined request is civetweb's) and nothing unsent on the connection
 * from an earlier answer (a client that does not read is civetweb's, whose
 * write waits). One request per event: a connection never holds a front-door
 * thread for more than one answer. A refused upgrade is answered here too,
 * with civetweb's bytes, metrics and log line (one token verification: a
 * flood of forged tokens costs no hand-over): a plain client's HTTP error,
 * then the close civetweb makes; an extended client's 101, then a close with
 * the reason's code, then a linger until it answers (civetweb listed such a
 * session until then: it counted in rtgw_connections_total, which a refusal
 * here does not). Everything else is declined untouched (nothing read,
 * nothing written, nothing counted) and civetweb answers it as it always did:
 * one behaviour, whoever answers.
 *
 * Nothing here may wait on the network: with the Redis bus, whose
 * subscriptions do (bus.h, waits), an admitted upgrade goes, socket and TLS
 * with it, to a subscribe thread (waiters.h), which pins its positions,
 * answers the 101 and hands the session to its writer; when they fall
 * behind (the oldest queued upgrade has waited longer than
 * RTGW_REDIS_TIMEOUT_MS: Redis slow or gone) or their queue is full, the
 * upgrade is refused 503 over_capacity with
 * Retry-After (an extended client: the 101, then a 4503 close, and the
 * connection lingers: RT_FAST_LINGER), never handed to civetweb, whose
 * workers would wait on Redis in turn. A job that runs once the server
 * drains answers 503 shutting_down, as admission would. Mints never touch the
 * bus.
 *
 * Over TLS (rtgw terminates it, tlsconn.h) the same: the front door hands
 * the decrypted head (a copy: parsing writes into it), reads it off the TLS
 * buffer and answers through the connection's TLS; an upgraded session takes
 * the TLS state with it to its writer.
 *
 * The front door's thread only.
 */
#ifndef RT_FASTPATH_H
#define RT_FASTPATH_H

#include "http.h"
#include "srv.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    RT_FAST_NONE,    /* not a request the front door takes */
    RT_FAST_UPGRADE, /* a WebSocket upgrade it may take */
    RT_FAST_MINT     /* a token mint it may take (rt__fast_serve checks its body) */
} rt_fast_kind_t;

typedef enum {
    RT_FAST_DECLINED, /* nothing read or written: hand it to civetweb */
    RT_FAST_TAKEN,    /* the socket is a session's now (a writer's epoll) */
    RT_FAST_ANSWERED, /* answered, and the request read off: wait for the next */
    RT_FAST_CLOSE,    /* answered (or broken): close the connection */
    RT_FAST_LINGER    /* a final answer: half-close, then linger (linger.h) */
} rt_fast_result_t;

/* What the front door knows of a connection whose first head is complete:
 * its socket (and TLS), the peer, and its bytes so far, the head first (a
 * MSG_PEEK's, or a copy of the decrypted ones). */
typedef struct rt_tls_s rt_tls_t;

typedef struct {
    int fd;
    rt_tls_t *tls;  /* the connection's TLS, or NULL; an upgrade takes it (set to NULL) */
    const char *ip; /* the peer's address, as text */
    int port;
    uint8_t *buf; /* the peeked bytes; parsed in place */
    size_t n;
    /* Filled by rt__fast_kind: */
    rt__req_t req;         /* pointers into buf and head */
    rt_http_strict_t head; /* httphead.h: head.head_len is where the head ends */
} rt_fast_conn_t;

/* Which request buf holds, parsing its head in place into the scratch state
 * that rt__fast_serve reads next. */
rt_fast_kind_t rt__fast_kind(rt_fast_conn_t *fc);
/* Answer the request rt__fast_kind found. For RT_FAST_UPGRADE the caller
 * has taken the socket out of its own epoll first (a session's writer may
 * close it at once). */
rt_fast_result_t rt__fast_serve(rt_server_t *srv, rt_fast_conn_t *fc, rt_fast_kind_t kind);

#endif
