/*
 * linger.h — connections the front door closes gently: an answer was written
 * (a 431 for an oversized head, a WebSocket close after a refused frame), the
 * connection is half-closed, and what the client still sends is read and
 * dropped until it closes, a byte budget is spent, or a deadline passes.
 * Closing at once would reset a connection with unread bytes, and a reset
 * makes the client's kernel drop the answer it has not read yet.
 *
 * civetweb's thread used to do that wait itself (up to 2 s per connection):
 * a client sending oversized heads and never closing held every HTTP worker,
 * and GET /health waited ~2 s behind them. Now the worker hands the socket
 * over (sockhook.c, as it parks a kept-alive connection) and a front-door
 * lane holds it in its epoll, at no thread's cost.
 *
 * One rt_linger_t per lane, used by that lane's thread only. Its items are in
 * the lane's epoll; each begins with the int tag given to rt__linger_new, so
 * the lane can tell them from its other items and pass their events here.
 * At most cap at once: one more is closed at once (the oldest is not
 * sacrificed: the newest answer is the one a flood sends).
 */
#ifndef RT_LINGER_H
#define RT_LINGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How long, and how many bytes, a connection lingers after its final answer. */
#define RT__LINGER_MS 2000
#define RT__LINGER_MAX (8u << 20)

typedef struct rt_linger_s rt_linger_t;
typedef struct rt_tls_s rt_tls_t;

/* For the lane whose epoll is epfd; items carry tag as their first int. NULL
 * when out of memory. */
rt_linger_t *rt__linger_new(int epfd, int tag, size_t cap);
/* Hold fd (half-closed by the caller, its TLS or NULL: both now owned here)
 * until its client closes, max bytes are dropped, or until_ms (monotonic). */
void rt__linger_add(rt_linger_t *g, int fd, rt_tls_t *tls, int64_t until_ms, size_t max);
/* An epoll event for item (one of g's). */
void rt__linger_event(rt_linger_t *g, void *item);
/* The earliest deadline held (INT64_MAX: none), for the lane's epoll_wait. */
int64_t rt__linger_next(const rt_linger_t *g);
/* Close those whose deadline has passed. */
void rt__linger_sweep(rt_linger_t *g, int64_t now_ms);
/* How many are held (tests, logs). */
size_t rt__linger_count(const rt_linger_t *g);
/* Close them all and free g. NULL is fine. */
void rt__linger_free(rt_linger_t *g);

#endif
