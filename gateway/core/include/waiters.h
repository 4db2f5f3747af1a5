/*
 * waiters.h — a few threads that may wait, for work the front door's threads
 * must not do themselves: with the Redis bus, a new session's subscription
 * waits on Redis (its positions, SUBSCRIBE, a history read), and a front-door
 * thread that waited would leave every other connection (and /health)
 * unanswered while Redis is slow or gone (fastpath.h).
 *
 * A bounded queue, first in first out, served by a fixed set of threads.
 * Submitting never waits: a full queue says no and the caller does the work
 * another way (the front door hands the connection to civetweb). Freeing
 * stops the threads after the jobs they are running; the jobs still queued
 * are dropped, each through its drop function (which closes what it holds).
 *
 * Generic (no sockets, no civetweb): the server's use is in fastpath.c. Any
 * thread may submit.
 */
#ifndef RT_WAITERS_H
#define RT_WAITERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_waiters_s rt_waiters_t;
typedef void (*rt_waiter_fn)(void *arg);

/* nthreads threads named name (at most 15 characters), at most cap jobs
 * queued. NULL when a thread cannot be started or out of memory. */
rt_waiters_t *rt_waiters_new(int nthreads, size_t cap, const char *name);
/* Queue run(arg). false (the caller keeps arg) when the queue is full or
 * stopping. drop(arg) is called instead of run when the queue is freed
 * first. */
bool rt_waiters_submit(rt_waiters_t *w, rt_waiter_fn run, rt_waiter_fn drop, void *arg);
/* When the oldest job not yet started was queued (rt_clock_mono_ms), or
 * INT64_MAX when none waits: how far behind the threads are. */
int64_t rt_waiters_oldest_ms(rt_waiters_t *w);
/* Jobs queued and not yet started (for tests and metrics). */
size_t rt_waiters_queued(rt_waiters_t *w);
/* Drop every job not yet started (drop(arg) each, on this thread); the
 * threads keep serving what comes next. A draining server's first step: what
 * waits in the queue (for a frozen Redis, say) is not worth its wait now. */
void rt_waiters_drop_queued(rt_waiters_t *w);
/* Stop and join the threads (each finishes its running job), drop what is
 * still queued, free. NULL is fine. */
void rt_waiters_free(rt_waiters_t *w);

#endif
