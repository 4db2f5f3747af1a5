/*
 * sockhook.h — what the server asks of the hooks in sockhook.c (accept, recv,
 * send, poll, shutdown, close): the hand-over of ready connections from the front door to
 * civetweb, a session's socket, and the client frame guard. The contract of
 * each hook, and why it exists, is at the top of sockhook.c.
 */
#ifndef RT_SOCKHOOK_H
#define RT_SOCKHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct rt_conn_s rt_conn_t;
typedef struct rt_tls_s rt_tls_t;

/* Before civetweb starts (main thread, once): size the fd tables to
 * RLIMIT_NOFILE and set the first request's header deadline (ms; 0: none). */
void rt__sockhook_init(int64_t header_deadline_ms);

/* From now on, accept() on civetweb's listener at 127.0.0.1:private_port
 * returns the sockets queued by rt__sockhook_handover instead of the
 * connections made to that port. Main thread, once civetweb listens. */
void rt__sockhook_handover_begin(int private_port);
/* Why the front door handed a head over before its end: it passed
 * RT__MAX_REQUEST_HEAD bytes in the line that carries a token (the request
 * line with token=, or Authorization), or in another line. civetweb answers
 * such a head "Malformed message"; rt__http_error names it from this. */
typedef enum {
    RT_HEAD_FITS = 0,
    RT_HEAD_BIG_TOKEN_QUERY,
    RT_HEAD_BIG_TOKEN_AUTH,
    RT_HEAD_BIG_OTHER,
} rt_head_big_t;

/* Queue client socket fd (accepted at accepted_ms, monotonic, from peer) for
 * civetweb's next accept() on its private listener; head_complete: its first
 * request head has arrived (in the kernel, or decrypted in tls); big: why it
 * was handed over unfinished. tls: the connection's TLS, handshaken (NULL:
 * plain TCP); the hooks then encrypt and decrypt for civetweb. The caller then
 * connects a throwaway socket to the private port to wake civetweb. Ownership
 * of fd and tls passes to the queue (then to civetweb). 0, or RT_E_NOMEM (both
 * still the caller's). The front door's thread; takes the hand-over lock. */
int rt__sockhook_handover(int fd, const struct sockaddr *peer, socklen_t peerlen,
                          int64_t accepted_ms, bool head_complete, rt_head_big_t big,
                          rt_tls_t *tls);
/* The rt_head_big_t the front door gave fd's connection (RT_HEAD_FITS for
 * fd < 0 or a connection accepted otherwise). Any thread. */
rt_head_big_t rt__sockhook_head_big(int fd);
/* Before the first TLS hand-over (main thread): poll() looks for TLS
 * connections from now on. */
void rt__sockhook_tls_enable(void);
/* Whether the client of fd has already sent bytes civetweb has not read (in
 * the kernel, or decrypted and buffered for a TLS connection). The thread
 * that owns fd. */
bool rt__sockhook_has_early_bytes(int fd);
/* Whether fd is a TLS connection with decrypted bytes civetweb has not read. */
bool rt__sockhook_tls_buffered(int fd);
/* Take fd's TLS away from civetweb's hooks (a session detaching: its writer
 * does the TLS from now on), or NULL for a plain connection. The thread that
 * owns fd (civetweb's, in the session's callback). */
rt_tls_t *rt__sockhook_tls_take(int fd);
/* How many sockets wait in the queue. Any thread. */
size_t rt__sockhook_handover_queued(void);
/* After civetweb has stopped: close the sockets still queued, and stop
 * handing over. Main thread. */
void rt__sockhook_handover_end(void);

/* After a final answer on fd: half-close, then read and drop what the client
 * still sends (its raw bytes; at most max, for at most ms) until it closes,
 * so that closing does not reset the connection: a reset makes the client's
 * kernel drop the answer it has not read yet. The front door does the wait
 * (linger.h; the socket goes to it as a parked one does, and civetweb's
 * descriptor ends at once); only when it cannot take the socket (stopping,
 * out of memory) does the calling thread wait. */
void rt__sockhook_linger(int fd, int64_t ms, size_t max);

/* Kept-alive connections between requests go back to the front door: after
 * rt__sockhook_request_done(fd) (civetweb's end_request), civetweb's next
 * poll for that connection's next request, if nothing of it has arrived,
 * calls fn(ctx, dup of fd, its TLS or NULL, 0, 0) (0: taken; the front door's
 * rt__frontdoor_adopt) and ends civetweb's side of it; rt__sockhook_linger
 * calls fn(ctx, dup, TLS, linger_ms, linger_max) (rt__frontdoor_linger). begin
 * once the front door exists; end before it is freed (in-flight calls finish
 * first). Main thread. */
typedef int (*rt__sockhook_park_fn)(void *ctx, int fd, rt_tls_t *tls, int64_t linger_ms,
                                    size_t linger_max);
void rt__sockhook_park_begin(rt__sockhook_park_fn fn, void *ctx);
void rt__sockhook_park_end(void);
/* The server is stopping: civetweb's polls end within 100 ms (as timeouts),
 * so that mg_stop does not wait out its master thread's 2-second poll. Main
 * thread, right before mg_stop. */
void rt__sockhook_stopping(void);
/* civetweb has finished a request on fd (any status but 101). Its worker. */
void rt__sockhook_request_done(int fd);

/* The socket civetweb accepted for a peer (its address as civetweb prints it,
 * its port, and our port), or -1 when unknown. Any thread; takes the peers
 * lock. */
int rt__sockhook_fd_of(const char *remote_addr, int remote_port, int server_port);

/* From until_ms (monotonic) on, reads of fd in its HTTP phase fail
 * (ETIMEDOUT; TLS connections too), so a body dribbled a byte at a time
 * cannot hold civetweb's thread past it; 0 clears it (so does a new
 * connection on fd). The request's civetweb thread. No-op for fd < 0. */
void rt__sockhook_read_deadline(int fd, int64_t until_ms);
/* Guard c's WebSocket frames on fd from the next byte read: a header
 * announcing more than limit bytes, or an unmasked frame, fails the read and
 * calls rt__conn_refuse_frame(c, …). Call before the 101 goes out, on the
 * session's civetweb thread. No-op for fd < 0. */
void rt__guard_start(rt_conn_t *c, int fd, uint64_t limit);
/* Stop guarding fd, if c still holds its guard. Any thread. */
void rt__guard_stop(rt_conn_t *c, int fd);

#endif
