/*
 * chans.c — the channels this node wants from Redis pub/sub: a hold count per
 * channel (the hub's interest hook, plus each in-flight attach), and the
 * queue of channels whose wanted state changed ("dirty"), which the
 * subscriber thread turns into SUBSCRIBE/UNSUBSCRIBE. A channel entry lives
 * while it is held, queued, or subscribed in Redis.
 *
 * Threads: any thread holds and releases; the subscriber thread confirms.
 * Everything here runs under b->lock (the _locked functions expect it held);
 * the interest hook is called with a hub channel lock held (lock order: hub
 * channel lock → b->lock). No I/O other than waking the subscriber thread.
 */
#include "redis.h"

#include "clock.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void rt__redis_wake(rt__rbus_t *b)
{
    uint64_t one = 1;
    ssize_t w = write(b->evfd, &one, sizeof(one));
    (void)w; /* a full counter already wakes it */
}

rt__chan_t *rt__redis_chan_get(rt__rbus_t *b, rt_slice_t ch, bool create)
{
    rt__chan_t *c = rt_map_get(&b->chans, ch.base, ch.len);
    if (c || !create)
        return c;
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->name = malloc(ch.len + 1);
    if (!c->name || rt_map_put(&b->chans, ch.base, ch.len, c) != 0) {
        free(c->name);
        free(c);
        return NULL;
    }
    memcpy(c->name, ch.base, ch.len);
    c->name[ch.len] = 0;
    c->nlen = ch.len;
    return c;
}

static void chan_mark_dirty(rt__rbus_t *b, rt__chan_t *c)
{
    if (c->dirty)
        return;
    if (b->ndirty == b->dcap) {
        size_t nc = b->dcap ? b->dcap * 2 : 32;
        rt__chan_t **nd = realloc(b->dirty, nc * sizeof(*nd));
        if (!nd)
            return; /* picked up at the next reconnect; rare OOM */
        b->dirty = nd;
        b->dcap = nc;
    }
    b->dirty[b->ndirty++] = c;
    c->dirty = true;
    rt__redis_wake(b);
}

static int hold_locked(rt__rbus_t *b, rt_slice_t ch, rt__chan_t **out)
{
    rt__chan_t *c = rt__redis_chan_get(b, ch, true);
    if (!c)
        return RT_E_NOMEM;
    if (c->refs++ == 0)
        chan_mark_dirty(b, c);
    if (out)
        *out = c;
    return 0;
}

static void release_locked(rt__rbus_t *b, rt_slice_t ch)
{
    rt__chan_t *c = rt__redis_chan_get(b, ch, false);
    if (!c || c->refs == 0)
        return;
    if (--c->refs == 0)
        chan_mark_dirty(b, c);
}

void rt__redis_chan_maybe_free_locked(rt__rbus_t *b, rt__chan_t *c)
{
    if (c->refs || c->sent || c->outstanding || c->dirty)
        return;
    rt_map_del(&b->chans, c->name, c->nlen);
    free(c->name);
    free(c);
}

void rt__redis_interest_hook(void *ctx, rt_slice_t channel, bool active)
{
    rt__rbus_t *b = ctx;
    pthread_mutex_lock(&b->lock);
    if (active)
        hold_locked(b, channel, NULL);
    else
        release_locked(b, channel);
    pthread_mutex_unlock(&b->lock);
}

static bool confirmed_locked(rt__rbus_t *b, const rt__chan_t *c)
{
    return b->connected && c->sent && c->outstanding == 0 && !c->dirty;
}

/* The CLOCK_REALTIME instant left_ms from now, for pthread_cond_timedwait. */
static struct timespec wall_after(int64_t left_ms)
{
    int64_t at = rt_clock_wall_ms() + left_ms;
    return (struct timespec){.tv_sec = (time_t)(at / 1000),
                             .tv_nsec = (long)(at % 1000) * 1000000L};
}

/* Hold channel and wait (bounded by the bus's timeout) until Redis confirms
 * the subscription. The hold is kept either way. */
int rt__redis_subscribe_channel(rt_bus_t *bus, rt_slice_t channel)
{
    rt__rbus_t *b = (rt__rbus_t *)bus;
    pthread_mutex_lock(&b->lock);
    rt__chan_t *c;
    int rc = hold_locked(b, channel, &c);
    if (rc != 0) {
        pthread_mutex_unlock(&b->lock);
        return rc;
    }
    int64_t deadline = rt_clock_mono_ms() + b->o.timeout_ms;
    while (!confirmed_locked(b, c) && b->connected && !atomic_load(&b->stop)) {
        int64_t left = deadline - rt_clock_mono_ms();
        if (left <= 0)
            break;
        struct timespec ts = wall_after(left);
        pthread_cond_timedwait(&b->cond, &b->lock, &ts);
    }
    bool ok = confirmed_locked(b, c);
    pthread_mutex_unlock(&b->lock);
    return ok ? 0 : RT_E_UNAVAILABLE;
}

void rt__redis_unsubscribe_channel(rt_bus_t *bus, rt_slice_t channel)
{
    rt__rbus_t *b = (rt__rbus_t *)bus;
    pthread_mutex_lock(&b->lock);
    release_locked(b, channel);
    pthread_mutex_unlock(&b->lock);
}
