/*
 * writer.h — the writer threads: they move subscriber queues into sockets
 * without ever blocking on one client.
 *
 * The hub only enqueues and wakes (rt__conn_sink_ops); a writer writes a
 * session only while its socket has room, and parks it in its epoll until
 * writable otherwise. Each writer also reads its detached sessions' client
 * frames (detached.c), from the same epoll.
 */
#ifndef RT_WRITER_H
#define RT_WRITER_H

#include "conn.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct rt_writer_s {
    pthread_t thread;
    rt_server_t *srv;
    int epfd; /* parked sessions (EPOLLOUT), detached ones (EPOLLIN), and evfd */
    int evfd; /* wakes the thread when ready_head becomes non-empty */
    pthread_mutex_t lock;
    rt_conn_t *ready_head, *ready_tail; /* sessions with work (lock) */
};

/* Start srv->nwriters writer threads (srv->writers). Main thread, before
 * civetweb starts. 0, or RT_E_NOMEM. */
int rt__writers_start(rt_server_t *srv);
/* Join the writers (after srv->stop is set) and close their descriptors. */
void rt__writers_stop(rt_server_t *srv);

/* The hub's sink for a session: wake → rt__writer_schedule; over its queue
 * bound → rt__conn_close_async. Neither writes. */
extern const rt_sink_ops_t rt__conn_sink_ops;

/* Put c on its writer's ready list (once; holds a reference while listed).
 * Any thread; takes the writer's lock, never writes to the socket. No-op
 * until the session has a writer. */
void rt__writer_schedule(rt_conn_t *c);
/* Wait in the writer's epoll until c's socket is writable. Writer thread. */
void rt__writer_park(rt_conn_t *c);
/* Room in c's socket send buffer, by SIOCOUTQ against the SO_SNDBUF set at
 * the session's start (INT32_MAX when the socket is unknown). */
int64_t rt__conn_socket_room(rt_conn_t *c);
/* Drain c's queue as far as its socket allows, then park it; finishes the
 * close of a CLOSING session. Writer thread only. */
void rt__writer_drain(rt_conn_t *c);
/* Write bytes to the session: a non-blocking send() for a detached session
 * (a short write keeps the rest, sent first next time), mg_write otherwise.
 * Takes wlock. 0, or RT_E_CLOSED when the session is gone (RT_E_NOMEM when
 * the rest of a short write cannot be kept). */
int rt__conn_write(rt_conn_t *c, const char *buf, size_t len);

#endif
