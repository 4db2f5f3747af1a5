/*
 * subscriber.c — the subscriber thread: one connection in SUBSCRIBE mode,
 * subscribed to exactly the channels this node wants (chans.c). It frames
 * each live event once (adding "id") and hands it to the hub. When the
 * connection drops, the bus is down (publishes fail fast) until it reconnects
 * with capped backoff; then it resubscribes, and once Redis confirms a
 * channel it fills that channel's gap from its stream, starting after the
 * last position the hub delivered (the hub drops what it already has).
 *
 * Threads: only the thread started by rt_bus_redis_new runs this file. It
 * takes b->lock briefly (never while calling the hub or doing I/O) and wakes
 * waiters on b->cond; gap fills use a pool connection. It owns its
 * connection and frees it; it stops when b->stop is set and evfd is written.
 */
#include "redis.h"

#include "clock.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reconnect backoff: from 50 ms, doubled per failed attempt, capped at 2 s. */
enum { BACKOFF_FIRST_MS = 50, BACKOFF_MAX_MS = 2000 };

/* ---- channel names, copied out of the bus lock ---- */

typedef struct {
    char **names;
    size_t *lens;
    size_t n, cap;
} namelist_t;

static void namelist_add(namelist_t *l, const char *s, size_t n)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        char **nn = realloc(l->names, nc * sizeof(*nn));
        if (!nn)
            return;
        l->names = nn;
        size_t *nl = realloc(l->lens, nc * sizeof(*nl));
        if (!nl)
            return;
        l->lens = nl;
        l->cap = nc;
    }
    char *c = malloc(n + 1);
    if (!c)
        return;
    memcpy(c, s, n);
    c[n] = 0;
    l->names[l->n] = c;
    l->lens[l->n++] = n;
}

static void namelist_free(namelist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    free(l->lens);
    memset(l, 0, sizeof(*l));
}

/* ---- what arrives ---- */

/* A live message on pub/sub channel chname: to the hub. */
static void on_message(rt__rbus_t *b, const char *chname, size_t chlen, const char *msg, size_t len)
{
    rt_slice_t ch;
    uint64_t epoch;
    rt_hub_entry_t e;
    if (!rt__redis_live_channel(chname, chlen, &ch) || !rt__redis_live_parse(msg, len, &epoch, &e))
        return;
    rt_hub_deliver(b->base.hub, ch, epoch, &e, NULL);
    rt_frame_unref(e.ws);
}

/* Fill a channel's gap from its stream: everything after the hub's last
 * delivered position (the whole epoch if the epoch changed meanwhile). */
static int gap_fill(rt__rbus_t *b, const char *name, size_t nlen)
{
    rt_slice_t ch = {name, nlen};
    rt_pos_t last;
    bool have = rt_hub_last(b->base.hub, ch, &last) == 0;
    rt_backfill_t bf;
    int rc = rt__redis_read_stream(b, ch, have ? &last : NULL, have ? 1 : 0, true, &bf);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < bf.n; i++)
        rt_hub_deliver(b->base.hub, ch, bf.epoch, &bf.v[i], NULL);
    if (bf.n)
        rt_log_info("redis bus gap filled", "channel_bytes=%zu events=%zu", nlen, bf.n);
    rt_backfill_clear(&bf);
    return 0;
}

/* A subscribe/unsubscribe confirmation; a confirmed channel that needs its
 * gap filled is added to gaps. */
static void on_confirm(rt__rbus_t *b, const char *chname, size_t chlen, namelist_t *gaps)
{
    rt_slice_t ch;
    if (!rt__redis_live_channel(chname, chlen, &ch))
        return;
    pthread_mutex_lock(&b->lock);
    rt__chan_t *c = rt__redis_chan_get(b, ch, false);
    if (c && c->outstanding > 0) {
        c->outstanding--;
        if (c->outstanding == 0 && c->sent && c->gapfill) {
            c->gapfill = false;
            namelist_add(gaps, c->name, c->nlen);
        }
        if (c->outstanding == 0)
            rt__redis_chan_maybe_free_locked(b, c);
    }
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

static void handle_reply(rt__rbus_t *b, redisReply *r, namelist_t *gaps)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = r->element[0]->str;
    if (strcmp(kind, "message") == 0 && r->element[2]->type == REDIS_REPLY_STRING)
        on_message(b, r->element[1]->str, r->element[1]->len, r->element[2]->str,
                   r->element[2]->len);
    else if (strcmp(kind, "subscribe") == 0 || strcmp(kind, "unsubscribe") == 0)
        on_confirm(b, r->element[1]->str, r->element[1]->len, gaps);
}

/* Read what c has and handle every complete reply. 0, or RT_E_IO when the
 * connection failed. */
static int read_replies(rt__rbus_t *b, redisContext *c, namelist_t *gaps)
{
    if (redisBufferRead(c) != REDIS_OK)
        return RT_E_IO;
    for (;;) {
        void *rp = NULL;
        if (redisGetReplyFromReader(c, &rp) != REDIS_OK)
            return RT_E_IO;
        if (!rp)
            return 0;
        handle_reply(b, rp, gaps);
        freeReplyObject(rp);
    }
}

/* ---- what is sent ---- */

/* Append (UN)SUBSCRIBE for names to c, in batches. */
static void append_sub(redisContext *c, const char *cmd, const namelist_t *names)
{
    const size_t batch = 256;
    for (size_t i = 0; i < names->n; i += batch) {
        size_t m = names->n - i < batch ? names->n - i : batch;
        const char **av = malloc((m + 1) * sizeof(*av));
        size_t *al = malloc((m + 1) * sizeof(*al));
        char **keys = calloc(m, sizeof(*keys));
        if (av && al && keys) {
            av[0] = cmd;
            al[0] = strlen(cmd);
            size_t k = 1;
            for (size_t j = 0; j < m; j++) {
                rt_slice_t ch = {names->names[i + j], names->lens[i + j]};
                keys[j] = rt__redis_key(ch, "live", &al[k]);
                if (keys[j])
                    av[k++] = keys[j];
            }
            if (k > 1)
                redisAppendCommandArgv(c, (int)k, av, al);
        }
        for (size_t j = 0; keys && j < m; j++)
            free(keys[j]);
        free(keys);
        free(av);
        free(al);
    }
}

/* Write out what is appended to c. 0 or RT_E_IO. */
static int flush_out(redisContext *c)
{
    int done = 0;
    while (!done)
        if (redisBufferWrite(c, &done) != REDIS_OK)
            return RT_E_IO;
    return 0;
}

static void set_channels_gauge(rt__rbus_t *b, long long n)
{
    if (b->m)
        atomic_store(&b->m->bus_channels, n);
}

/* The pending (un)subscriptions, sent on c. Bus lock not held. 0 or RT_E_IO. */
static int send_dirty(rt__rbus_t *b, redisContext *c)
{
    namelist_t sub = {0}, unsub = {0};
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < b->ndirty; i++) {
        rt__chan_t *ch = b->dirty[i];
        ch->dirty = false;
        bool want = ch->refs > 0;
        if (want != ch->sent) {
            namelist_add(want ? &sub : &unsub, ch->name, ch->nlen);
            ch->sent = want;
            ch->outstanding++;
        } else {
            rt__redis_chan_maybe_free_locked(b, ch);
        }
    }
    b->ndirty = 0;
    long long count = 0;
    RT_MAP_FOREACH(&b->chans, e)
    count += ((rt__chan_t *)e->value)->sent;
    pthread_mutex_unlock(&b->lock);
    set_channels_gauge(b, count);
    append_sub(c, "SUBSCRIBE", &sub);
    append_sub(c, "UNSUBSCRIBE", &unsub);
    namelist_free(&sub);
    namelist_free(&unsub);
    pthread_cond_broadcast(&b->cond); /* a want that matched sent is confirmed now */
    return flush_out(c);
}

/* ---- one session, and the reconnect loop ---- */

static void drain_wakeups(rt__rbus_t *b)
{
    uint64_t v;
    ssize_t rd = read(b->evfd, &v, sizeof(v));
    (void)rd;
}

static void sleep_ms_interruptible(rt__rbus_t *b, int ms)
{
    struct pollfd p = {b->evfd, POLLIN, 0};
    int64_t until = rt_clock_mono_ms() + ms;
    while (!atomic_load(&b->stop) && rt_clock_mono_ms() < until) {
        int left = (int)(until - rt_clock_mono_ms());
        if (poll(&p, 1, left > 0 ? left : 0) > 0)
            drain_wakeups(b);
    }
}

/* At the start of a session: every wanted channel is (re)subscribed, with a
 * gap fill once confirmed after an outage; unwanted entries are freed.
 * Returns the channels to SUBSCRIBE. */
static namelist_t session_reset(rt__rbus_t *b, bool reconnect)
{
    namelist_t all = {0}, drop = {0};
    pthread_mutex_lock(&b->lock);
    RT_MAP_FOREACH(&b->chans, e)
    {
        rt__chan_t *ch = e->value;
        ch->outstanding = 0;
        ch->dirty = false;
        ch->sent = ch->refs > 0;
        if (ch->sent) {
            ch->outstanding = 1;
            ch->gapfill = reconnect;
            namelist_add(&all, ch->name, ch->nlen);
        } else {
            namelist_add(&drop, ch->name, ch->nlen);
        }
    }
    for (size_t i = 0; i < drop.n; i++) {
        rt__chan_t *ch = rt__redis_chan_get(b, (rt_slice_t){drop.names[i], drop.lens[i]}, false);
        if (ch)
            rt__redis_chan_maybe_free_locked(b, ch);
    }
    b->ndirty = 0;
    b->connected = true;
    pthread_mutex_unlock(&b->lock);
    namelist_free(&drop);
    return all;
}

/* Gap fills use a pool connection; the ones that fail stay in gaps, for the
 * next turn. */
static void fill_gaps(rt__rbus_t *b, namelist_t *gaps)
{
    namelist_t left = {0};
    for (size_t i = 0; i < gaps->n; i++)
        if (gap_fill(b, gaps->names[i], gaps->lens[i]) != 0)
            namelist_add(&left, gaps->names[i], gaps->lens[i]);
    namelist_free(gaps);
    *gaps = left;
}

/* One connected session of the subscriber connection; returns when it drops. */
static void sub_session(rt__rbus_t *b, redisContext *c, bool reconnect)
{
    namelist_t all = session_reset(b, reconnect), gaps = {0};
    set_channels_gauge(b, (long long)all.n);
    append_sub(c, "SUBSCRIBE", &all);
    namelist_free(&all);
    if (flush_out(c) == 0) {
        rt__redis_set_up(b, true);
        while (!atomic_load(&b->stop)) {
            struct pollfd p[2] = {{c->fd, POLLIN, 0}, {b->evfd, POLLIN, 0}};
            int pr = poll(p, 2, gaps.n ? 50 : 1000);
            if (pr < 0 && errno != EINTR)
                break;
            if (p[1].revents & POLLIN) {
                drain_wakeups(b);
                if (send_dirty(b, c) != 0)
                    break;
            }
            if ((p[0].revents & (POLLIN | POLLERR | POLLHUP)) && read_replies(b, c, &gaps) != 0)
                break;
            fill_gaps(b, &gaps);
        }
    }
    namelist_free(&gaps);
    rt__redis_set_up(b, false);
    atomic_fetch_add(&b->gen, 1);
    pthread_mutex_lock(&b->lock);
    b->connected = false;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
    set_channels_gauge(b, 0);
}

/* Logs a failed connect once per state change, not per attempt. */
typedef struct {
    bool down_logged;
    char last_err[1024];
} down_log_t;

static void log_down(rt__rbus_t *b, down_log_t *d, int rc, const char *err)
{
    if (d->down_logged && !(rc == RT_E_DENIED && strcmp(err, d->last_err) != 0))
        return;
    if (rc == RT_E_DENIED)
        rt_log_error("redis bus down", "where=%s detail=\"%s\"", b->where, err);
    else
        rt_log_warn("redis bus down", "where=%s detail=\"%s\" retry=\"capped backoff up to 2 s\"",
                    b->where, err);
    d->down_logged = true;
    snprintf(d->last_err, sizeof(d->last_err), "%s", err);
}

void *rt__redis_sub_main(void *arg)
{
    rt__rbus_t *b = arg;
    int backoff = BACKOFF_FIRST_MS;
    bool ever = false;
    down_log_t d = {0};
    while (!atomic_load(&b->stop)) {
        redisContext *c;
        char err[1024];
        int rc = rt__redis_conn_open(b, &c, err, sizeof(err));
        if (rc != 0) {
            log_down(b, &d, rc, err);
            sleep_ms_interruptible(b, backoff);
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
            continue;
        }
        backoff = BACKOFF_FIRST_MS;
        if (ever && b->m)
            atomic_fetch_add(&b->m->bus_reconnects, 1);
        rt_log_info("redis bus up", "where=%s%s", b->where, ever ? " resubscribed=1" : "");
        d.down_logged = false;
        d.last_err[0] = 0;
        sub_session(b, c, ever);
        ever = true;
        redisFree(c);
        if (!atomic_load(&b->stop)) {
            rt_log_warn("redis bus down", "where=%s detail=\"the subscriber connection dropped\"",
                        b->where);
            d.down_logged = true;
            rt__redis_count_error(b);
        }
    }
    return NULL;
}
