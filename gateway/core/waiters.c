/*
 * waiters.c — threads that may wait (see waiters.h).
 *
 * One lock and one condition variable over a ring of jobs: the jobs are few
 * (a connect each) and each runs for a network round trip or more, so the
 * lock is never what a job waits for.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "waiters.h"
#include "clock.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    rt_waiter_fn run, drop;
    void *arg;
    int64_t queued_ms; /* monotonic, at submit */
} job_t;

struct rt_waiters_s {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    job_t *ring;
    size_t cap, head, count;
    bool stop;
    int nthreads;
    pthread_t *threads;
};

/* The oldest job off the ring; w->lock held, w->count > 0. */
static job_t pop_locked(rt_waiters_t *w)
{
    job_t j = w->ring[w->head];
    w->head = (w->head + 1) % w->cap;
    w->count--;
    return j;
}

static void *waiter_main(void *arg)
{
    rt_waiters_t *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->count == 0 && !w->stop)
            pthread_cond_wait(&w->cond, &w->lock);
        if (w->stop)
            break;
        job_t j = pop_locked(w);
        pthread_mutex_unlock(&w->lock);
        j.run(j.arg);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

rt_waiters_t *rt_waiters_new(int nthreads, size_t cap, const char *name)
{
    if (nthreads < 1 || cap < 1)
        return NULL;
    rt_waiters_t *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->ring = calloc(cap, sizeof(*w->ring));
    w->threads = calloc((size_t)nthreads, sizeof(*w->threads));
    w->cap = cap;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    if (!w->ring || !w->threads) {
        rt_waiters_free(w);
        return NULL;
    }
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&w->threads[i], NULL, waiter_main, w) != 0) {
            rt_waiters_free(w);
            return NULL;
        }
        w->nthreads++;
        pthread_setname_np(w->threads[i], name);
    }
    return w;
}

bool rt_waiters_submit(rt_waiters_t *w, rt_waiter_fn run, rt_waiter_fn drop, void *arg)
{
    pthread_mutex_lock(&w->lock);
    bool ok = !w->stop && w->count < w->cap;
    if (ok) {
        w->ring[(w->head + w->count) % w->cap] = (job_t){run, drop, arg, rt_clock_mono_ms()};
        w->count++;
        pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    return ok;
}

int64_t rt_waiters_oldest_ms(rt_waiters_t *w)
{
    pthread_mutex_lock(&w->lock);
    int64_t t = w->count > 0 ? w->ring[w->head].queued_ms : INT64_MAX;
    pthread_mutex_unlock(&w->lock);
    return t;
}

size_t rt_waiters_queued(rt_waiters_t *w)
{
    pthread_mutex_lock(&w->lock);
    size_t n = w->count;
    pthread_mutex_unlock(&w->lock);
    return n;
}

/* The oldest job not started, taken off the queue; false when none. */
static bool take(rt_waiters_t *w, job_t *out)
{
    pthread_mutex_lock(&w->lock);
    bool any = w->count > 0;
    if (any)
        *out = pop_locked(w);
    pthread_mutex_unlock(&w->lock);
    return any;
}

void rt_waiters_drop_queued(rt_waiters_t *w)
{
    job_t j;
    while (w && take(w, &j))
        if (j.drop)
            j.drop(j.arg);
}

void rt_waiters_free(rt_waiters_t *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    for (int i = 0; i < w->nthreads; i++)
        pthread_join(w->threads[i], NULL);
    rt_waiters_drop_queued(w);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w->ring);
    free(w->threads);
    free(w);
}
