/*
 * tlsconn.h — rtgw's own TLS (OpenSSL): the server's context, and one TLS
 * connection's state and I/O. rtgw terminates TLS itself, in the front door,
 * so that civetweb only ever sees plain HTTP (through sockhook.c's hooks) and
 * a wss session can leave civetweb's thread after its handshake, like a ws
 * one (session.c, detached.c). Why and how: the top of tlsconn.c.
 *
 * An rt_tls_t belongs to one thread at a time: the front door's during the
 * handshake, the connection's civetweb thread in its HTTP phase, then (after a
 * WebSocket or SSE session detaches) its writer thread under the session's
 * wlock. Hand-offs between them go through a lock (the hand-over queue, the
 * session's wlock), which orders them. A session that stays on civetweb's
 * thread is read there and written by its writer: reads and writes take the
 * connection's own lock, so OpenSSL never sees two threads in one object.
 */
#ifndef RT_TLSCONN_H
#define RT_TLSCONN_H

#include "config.h"

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct rt_tls_s rt_tls_t;

/* The server's TLS context for cfg's RTGW_TLS_CERT (a chain) and RTGW_TLS_KEY:
 * TLS 1.2 and 1.3, ALPN http/1.1, small idle connections. NULL with why in
 * err. Main thread. */
SSL_CTX *rt__tls_ctx_new(const rt_config_t *cfg, char *err, size_t cap);

/* A server-side TLS connection on socket fd (non-blocking), not handshaken
 * yet. NULL when out of memory. The socket stays the caller's. */
rt_tls_t *rt__tls_new(SSL_CTX *ctx, int fd);
/* Point t at socket fd from now on (a detached session's duplicate of the
 * descriptor it was made with). */
void rt__tls_set_fd(rt_tls_t *t, int fd);
/* Drive the handshake: 1 done, 0 wants more bytes (or room), RT_E_PROTOCOL
 * failed (not TLS, or no common version or cipher). */
int rt__tls_handshake(rt_tls_t *t);

/* Decrypt what the socket holds into t's buffer, as far as it has room (at
 * most cap bytes buffered in all). The number of bytes added; 0 with
 * errno EAGAIN when none are complete yet; -1 at the peer's end of stream
 * (errno 0) or on an error (errno ECONNRESET or EPROTO). */
ssize_t rt__tls_fill(rt_tls_t *t, size_t cap);
/* The plaintext buffered (decrypted, not consumed yet), and its length. */
const uint8_t *rt__tls_peek(const rt_tls_t *t, size_t *len);
/* Drop the first n buffered bytes. */
void rt__tls_consume(rt_tls_t *t, size_t n);
/* Whether plaintext is ready without touching the socket. */
bool rt__tls_readable(const rt_tls_t *t);
/* Whether more than n bytes of plaintext are ready without touching the
 * socket (buffered, or in whole records not yet decrypted). */
bool rt__tls_more_than(const rt_tls_t *t, size_t n);

/* recv(2)-like: buffered plaintext first, then one record from the socket.
 * n > 0; 0 at the peer's end of stream; -1 with errno EAGAIN (nothing yet),
 * ECONNRESET or EPROTO. */
ssize_t rt__tls_read(rt_tls_t *t, void *buf, size_t len);
/* send(2)-like, non-blocking: the bytes taken (maybe fewer than len), or -1
 * with errno EAGAIN (nothing taken: call again with the same bytes, at least
 * as many) or EPIPE. */
ssize_t rt__tls_write(rt_tls_t *t, const void *buf, size_t len);

/* t moved into memory of the calling thread's malloc arena (t itself is
 * freed), or t unchanged when that fails. The front door's thread allocates
 * while it runs many handshakes at once; what lives on after them is moved
 * out, so its arena frees whole again instead of staying pinned by small
 * long-lived blocks (~5 KiB per idle wss connection, measured with
 * bench/idle_tls.mjs). */
rt_tls_t *rt__tls_move(rt_tls_t *t);
/* Drop the decrypted bytes waiting (an SSE client's input means nothing). */
void rt__tls_drop_buffered(rt_tls_t *t);
/* Whether a record the socket took only part of waits to be sent: the
 * connection is mid-write. */
bool rt__tls_unsent(rt_tls_t *t);
/* Send a close_notify if the socket has room (never blocks). */
void rt__tls_close_notify(rt_tls_t *t);
/* Free t (not its socket). NULL is a no-op. */
void rt__tls_free(rt_tls_t *t);

#endif
