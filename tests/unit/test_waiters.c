/* Unit tests for gateway/core/waiters.c: the bounded queue of jobs that may
 * wait, served first in first out; full and stopping say no; what is still
 * queued is dropped, never run, when the queue is dropped or freed. */
#include "rt_test.h"
#include "waiters.h"
#include "clock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

/* A job that blocks until released, recording the order jobs ran in. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static atomic_int running, ran_n, dropped_n;
static int ran[64];

static void gate(bool open)
{
    pthread_mutex_lock(&gate_lock);
    gate_open = open;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

static void job_run(void *arg)
{
    atomic_fetch_add(&running, 1);
    pthread_mutex_lock(&gate_lock);
    while (!gate_open)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
    ran[atomic_fetch_add(&ran_n, 1) & 63] = (int)(intptr_t)arg;
}

static void job_drop(void *arg)
{
    (void)arg;
    atomic_fetch_add(&dropped_n, 1);
}

static void reset(void)
{
    gate(false);
    atomic_store(&running, 0);
    atomic_store(&ran_n, 0);
    atomic_store(&dropped_n, 0);
}

/* Up to 2 s for counter to reach n. */
static void wait_for(atomic_int *counter, int n)
{
    for (int i = 0; i < 2000 && atomic_load(counter) < n; i++)
        usleep(1000);
}

static void wait_running(int n)
{
    wait_for(&running, n);
}

RT_TEST(runs_jobs_first_in_first_out)
{
    reset();
    rt_waiters_t *w = rt_waiters_new(1, 8, "test-waiter");
    RT_ASSERT(w != NULL);
    for (intptr_t i = 1; i <= 5; i++)
        RT_ASSERT(rt_waiters_submit(w, job_run, job_drop, (void *)i));
    gate(true);
    wait_for(&ran_n, 5);
    RT_ASSERT_INT_EQ(atomic_load(&ran_n), 5);
    for (int i = 0; i < 5; i++)
        RT_ASSERT_INT_EQ(ran[i], i + 1);
    rt_waiters_free(w);
    RT_ASSERT_INT_EQ(atomic_load(&dropped_n), 0);
}

RT_TEST(full_queue_says_no_and_the_caller_keeps_the_job)
{
    reset();
    rt_waiters_t *w = rt_waiters_new(2, 3, "test-waiter");
    RT_ASSERT(rt_waiters_submit(w, job_run, job_drop, (void *)1));
    RT_ASSERT(rt_waiters_submit(w, job_run, job_drop, (void *)2));
    wait_running(2); /* both threads hold a job: the queue is empty again */
    RT_ASSERT_INT_EQ(atomic_load(&running), 2);
    for (intptr_t i = 3; i <= 5; i++)
        RT_ASSERT(rt_waiters_submit(w, job_run, job_drop, (void *)i));
    RT_ASSERT_INT_EQ((long long)rt_waiters_queued(w), 3);
    RT_ASSERT(!rt_waiters_submit(w, job_run, job_drop, (void *)6)); /* full */
    RT_ASSERT_INT_EQ(atomic_load(&dropped_n), 0);                   /* not dropped: refused */
    gate(true);
    wait_for(&ran_n, 5);
    RT_ASSERT_INT_EQ(atomic_load(&ran_n), 5);
    RT_ASSERT(rt_waiters_submit(w, job_run, job_drop, (void *)7)); /* room again */
    rt_waiters_free(w);
}

RT_TEST(drop_queued_drops_what_waits_and_keeps_serving)
{
    reset();
    rt_waiters_t *w = rt_waiters_new(1, 16, "test-waiter");
    RT_ASSERT(rt_waiters_submit(w, job_run, job_drop, (void *)1));
    wait_running(1);
    for (intptr_t i = 2; i <= 6; i++)
        RT_ASSERT(rt_waiters_submit(w, job_run, job_drop, (void *)i));
    rt_waiters_drop_queued(w);
    RT_ASSERT_INT_EQ(atomic_load(&dropped_n), 5);
    RT_ASSERT_INT_EQ((long long)rt_waiters_queued(w), 0);
    gate(true);
    RT_ASSERT(rt_waiters_submit(w, job_run, job_drop, (void *)7));
    wait_for(&ran_n, 2);
    RT_ASSERT_INT_EQ(atomic_load(&ran_n), 2); /* the running one, then 7 */
    RT_ASSERT_INT_EQ(ran[0], 1);
    RT_ASSERT_INT_EQ(ran[1], 7);
    rt_waiters_free(w);
}

/* A thread that opens the gate a moment later: free must wait for the job
 * that runs, and drop (never run) the queued ones. */
static void *open_later(void *arg)
{
    (void)arg;
    usleep(50000);
    gate(true);
    return NULL;
}

RT_TEST(free_finishes_the_running_job_and_drops_the_queued)
{
    reset();
    rt_waiters_t *w = rt_waiters_new(1, 16, "test-waiter");
    RT_ASSERT(rt_waiters_submit(w, job_run, job_drop, (void *)1));
    wait_running(1);
    for (intptr_t i = 2; i <= 4; i++)
        RT_ASSERT(rt_waiters_submit(w, job_run, job_drop, (void *)i));
    pthread_t t;
    pthread_create(&t, NULL, open_later, NULL);
    rt_waiters_free(w);
    pthread_join(t, NULL);
    RT_ASSERT_INT_EQ(atomic_load(&ran_n), 1);
    RT_ASSERT_INT_EQ(atomic_load(&dropped_n), 3);
    rt_waiters_free(NULL);
    rt_waiters_drop_queued(NULL);
}

RT_TEST(bad_sizes_are_refused)
{
    RT_ASSERT(rt_waiters_new(0, 4, "x") == NULL);
    RT_ASSERT(rt_waiters_new(1, 0, "x") == NULL);
}

RT_TEST(oldest_queued_time_is_the_head_of_the_queue)
{
    reset();
    rt_waiters_t *w = rt_waiters_new(1, 8, "test-waiter");
    RT_ASSERT(rt_waiters_oldest_ms(w) == INT64_MAX); /* nothing waits */
    RT_ASSERT(rt_waiters_submit(w, job_run, job_drop, (void *)1));
    wait_running(1); /* taken: the queue is empty again */
    RT_ASSERT(rt_waiters_oldest_ms(w) == INT64_MAX);
    int64_t before = rt_clock_mono_ms();
    RT_ASSERT(rt_waiters_submit(w, job_run, job_drop, (void *)2));
    usleep(20000);
    RT_ASSERT(rt_waiters_submit(w, job_run, job_drop, (void *)3));
    int64_t oldest = rt_waiters_oldest_ms(w);
    RT_ASSERT(oldest >= before && oldest <= before + 10); /* job 2's, not job 3's */
    gate(true);
    rt_waiters_free(w);
}
