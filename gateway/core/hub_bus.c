/*
 * hub_bus.c — the hub's side of an external bus (several nodes, e.g. Redis):
 * events whose positions the bus assigned are delivered into a channel
 * (duplicates dropped, a new epoch clears the ring), and a subscribe joins a
 * replay read from the bus with the live stream. See hub.h ("an external
 * bus") for the contract.
 *
 * Locks: as hub.c. Each function takes the channel's lock through
 * rt__hub_channel_acquire, and the subscriber's queue lock inside it to
 * replay; slow-consumer kicks run after the channel lock is released. Called
 * from the bus's reader thread (rt_hub_deliver) and from sessions
 * (rt_hub_subscribe_backfill, rt_hub_last). The entries of a backfill are
 * borrowed: the hub takes references of its own.
 */
#include "clock.h"
#include "err.h"
#include "hub_internal.h"

int rt_hub_last(rt_hub_t *hub, rt_slice_t channel, rt_pos_t *out)
{
    rt__channel_t *ch = rt__hub_channel_acquire(hub, channel, false);
    if (!ch)
        return RT_E_ABSENT;
    out->epoch = ch->epoch;
    out->offset = ch->last_offset;
    pthread_mutex_unlock(&ch->lock);
    return 0;
}

/* The bus says the channel's history is another one (new epoch): forget the
 * ring, so nothing of the old epoch is replayed under the new one. */
static void channel_reset_locked(rt__channel_t *ch, uint64_t epoch)
{
    rt__history_clear(&ch->hist);
    ch->epoch = epoch;
    ch->last_offset = 0;
}

/* Deliver e to ch if it is newer than the last delivered event; caller holds
 * ch->lock. Returns true if delivered. */
static bool deliver_locked(rt_hub_t *hub, rt__channel_t *ch, const rt_hub_entry_t *e,
                           size_t *delivered, rt__kicks_t *kicks)
{
    if (e->offset <= ch->last_offset || !e->ws)
        return false;
    ch->last_offset = e->offset;
    ch->last_activity_ms = rt_clock_wall_ms();
    rt_frame_t *frames[RT__NFRAMES] = {e->ws, NULL, NULL};
    rt_pos_t pos = {ch->epoch, e->offset};
    rt__hub_emit_locked(ch, frames, &pos, e->topic, e->ext_only, delivered, kicks);
    rt_frame_unref(frames[RT_FMT_SSE]); /* frames[WS] stays borrowed */
    rt_frame_unref(frames[RT__FRAME_PLAIN]);
    atomic_fetch_add(&hub->publishes, 1);
    return true;
}

int rt_hub_deliver(rt_hub_t *hub, rt_slice_t channel, uint64_t epoch, const rt_hub_entry_t *e,
                   size_t *delivered_out)
{
    rt__channel_t *ch = rt__hub_channel_acquire(hub, channel, true);
    if (!ch)
        return RT_E_NOMEM;
    if (epoch != ch->epoch)
        channel_reset_locked(ch, epoch);
    size_t delivered = 0;
    rt__kicks_t kicks;
    rt__kicks_init(&kicks);
    bool done = deliver_locked(hub, ch, e, &delivered, &kicks);
    pthread_mutex_unlock(&ch->lock);
    atomic_fetch_add(&hub->deliveries, delivered);
    rt__kicks_run(&kicks);
    if (delivered_out)
        *delivered_out = delivered;
    return done ? 0 : 1;
}

/* Replay bf's events after bf->since into sub, then the ring's events after
 * bf's last one (received live since the read). Caller holds ch->lock. */
static void backfill_replay_locked(rt__channel_t *ch, rt_sub_t *sub, const rt_slice_t *topics,
                                   size_t ntopics, const rt_backfill_t *bf, rt_resume_t *res,
                                   rt__replay_t *rp)
{
    uint64_t upto = bf->since;
    pthread_mutex_lock(&sub->q.lock);
    for (size_t i = 0; i < bf->n && !rp->kicked; i++) {
        const rt_hub_entry_t *e = &bf->v[i];
        if (e->offset <= upto || !rt__topics_match(e->topic, topics, ntopics))
            continue;
        upto = e->offset;
        if (e->ext_only && !sub->ext) { /* an official client: the plain form, if any */
            rt_frame_t *pf = rt__history_frame_for(sub, e->ws, true);
            if (pf)
                rt__queue_replay_locked(&sub->q, pf, rp);
            rt_frame_unref(pf);
            continue;
        }
        rt_frame_t *f = sub->fmt == RT_FMT_WS ? rt_frame_ref(e->ws)
                                              : rt__history_sse_frame(e->ws, ch->epoch, e->offset);
        if (!f) {
            res->recovered = false;
            break;
        }
        rt__queue_replay_locked(&sub->q, f, rp);
        rt_frame_unref(f);
    }
    if (bf->n && bf->v[bf->n - 1].offset > upto)
        upto = bf->v[bf->n - 1].offset;
    if (res->recovered &&
        rt__history_replay_locked(&ch->hist, ch->epoch, upto, sub, topics, ntopics, rp))
        res->recovered = false;
    pthread_mutex_unlock(&sub->q.lock);
}

int rt_hub_subscribe_backfill(rt_hub_t *hub, rt_sub_t *sub, rt_slice_t channel,
                              const rt_slice_t *topics, size_t ntopics, bool had_since,
                              const rt_backfill_t *bf, rt_resume_t *out)
{
    rt_resume_t res = {.recovered = true, .had_since = had_since};
    rt__replay_t rp = {0};
    rt__channel_t *ch = rt__hub_channel_acquire(hub, channel, true);
    if (!ch)
        return RT_E_NOMEM;
    size_t delivered = 0;
    rt__kicks_t kicks;
    rt__kicks_init(&kicks);
    if (bf->epoch && bf->epoch != ch->epoch)
        channel_reset_locked(ch, bf->epoch);
    /* What the read found beyond the live stream so far goes to the channel
     * first, so its current subscribers get it too (the live copy, still in
     * flight, will then be dropped as a duplicate). */
    for (size_t i = 0; i < bf->n; i++)
        deliver_locked(hub, ch, &bf->v[i], &delivered, &kicks);
    if (had_since && (!bf->matched || !bf->covered || bf->epoch != ch->epoch))
        res.recovered = false;
    else if (had_since)
        backfill_replay_locked(ch, sub, topics, ntopics, bf, &res, &rp);
    size_t before = ch->nsubs;
    int rc = rt__hub_attach_locked(hub, sub, ch, topics, ntopics);
    if (ch->epoch == bf->epoch)
        res.current.offset = bf->last_offset;
    rt__hub_subscribe_finish(hub, sub, ch, before, &res, &rp);
    atomic_fetch_add(&hub->deliveries, delivered);
    rt__kicks_run(&kicks);
    if (out)
        *out = res;
    return rc;
}
