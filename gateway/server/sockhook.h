/*
 * sockhook.h — what the server asks of the hooks in sockhook.c (accept, recv,
 * SSL_read): a session's socket, and the client frame guard. The contract of
 * each hook, and why it exists, is at the top of sockhook.c.
 */
#ifndef RT_SOCKHOOK_H
#define RT_SOCKHOOK_H

#include <stdint.h>

typedef struct rt_conn_s rt_conn_t;

/* Before civetweb starts (main thread, once): size the fd tables to
 * RLIMIT_NOFILE, set the first request's header deadline (ms; 0: none), and
 * install the guard as the libssl shim's read hook. */
void rt__sockhook_init(int64_t header_deadline_ms);

/* The socket civetweb accepted for a peer (its address as civetweb prints it,
 * its port, and our port), or -1 when unknown. Any thread; takes the peers
 * lock. */
int rt__sockhook_fd_of(const char *remote_addr, int remote_port, int server_port);

/* Guard c's WebSocket frames on fd from the next byte read: a header
 * announcing more than limit bytes, or an unmasked frame, fails the read and
 * calls rt__conn_refuse_frame(c, …). Call before the 101 goes out, on the
 * session's civetweb thread. No-op for fd < 0. */
void rt__guard_start(rt_conn_t *c, int fd, uint64_t limit);
/* Stop guarding fd, if c still holds its guard. Any thread. */
void rt__guard_stop(rt_conn_t *c, int fd);

#endif
