/*
 * publish.c — the Redis bus's commands on the pool: publish (one atomic
 * script: idempotency check, XADD, trim, PUBLISH), the history read that
 * resume and gap fill replay from, and a channel's position. The stream id
 * ms-seq becomes the position's offset ms * 2^20 + seq, computed here in C
 * (Lua numbers are doubles), so every node names an event with the same id.
 *
 * Threads: any (the API's publishers, sessions attaching, and the subscriber
 * thread's gap fill). Each call takes one pool connection for one command and
 * blocks on its I/O (bounded by the bus's timeout); no other lock is taken.
 * The caller must hold no hub lock. Keys built here are freed here.
 */
#include "redis.h"

#include "clock.h"
#include "err.h"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An error reply, logged once with what (at most 200 bytes of it). */
static void log_refused(const char *what, const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_ERROR)
        rt_log_warn(what, "detail=\"%.*s\"", (int)(r->len < 200 ? r->len : 200), r->str);
}

/* The keys of one publish: stream, epoch, idem (a placeholder in the same
 * slot when there is no idempotency key) and the live channel. */
typedef struct {
    char *k[4];
    size_t kl[4];
} pub_keys_t;

static bool pub_keys_new(pub_keys_t *pk, const rt_event_t *ev, rt_slice_t idem_key)
{
    *pk = (pub_keys_t){0};
    pk->k[0] = rt__redis_key(ev->channel, "stream", &pk->kl[0]);
    pk->k[1] = rt__redis_key(ev->channel, "epoch", &pk->kl[1]);
    pk->k[2] = idem_key.len ? rt__redis_idem_key(ev->channel, ev->topic, idem_key, &pk->kl[2])
                            : rt__redis_key(ev->channel, "idem:-", &pk->kl[2]); /* unused */
    pk->k[3] = rt__redis_key(ev->channel, "live", &pk->kl[3]);
    return pk->k[0] && pk->k[1] && pk->k[2] && pk->k[3];
}

static void pub_keys_free(pub_keys_t *pk)
{
    for (int i = 0; i < 4; i++)
        free(pk->k[i]);
}

/* The publish script's reply {duplicate, epoch, stream id}. 0 or RT_E_UNAVAILABLE. */
static int publish_reply(const redisReply *r, rt_pos_t *pos, bool *dup)
{
    uint64_t e, off;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[2]->type != REDIS_REPLY_STRING ||
        !rt__redis_epoch_parse(r->element[1]->str, r->element[1]->len, &e) ||
        !rt__redis_stream_id_parse(r->element[2]->str, r->element[2]->len, &off))
        return RT_E_UNAVAILABLE;
    if (pos)
        *pos = (rt_pos_t){e, off};
    if (dup)
        *dup = r->element[0]->integer == 1;
    return 0;
}

/* Run the publish script with the 13 arguments (keys first) on a pool connection. */
static int publish_run(rt__rbus_t *b, const char **av, const size_t *al, rt_pos_t *pos, bool *dup)
{
    rt__pconn_t *p = rt__redis_pool_get(b);
    int rc = rt__redis_pconn_ready(b, p);
    if (rc == 0) {
        int64_t t0 = rt_clock_mono_us();
        redisReply *r = rt__redis_run_script(p, RT__SCRIPT_PUBLISH, 3, 13, av, al);
        if (b->m)
            rt_metrics_bus_latency(b->m, (uint64_t)(rt_clock_mono_us() - t0));
        rc = publish_reply(r, pos, dup);
        if (rc != 0) {
            log_refused("redis publish refused", r);
            rt__redis_count_error(b);
        }
        freeReplyObject(r);
    }
    rt__redis_pool_put(p);
    return rc;
}

int rt__redis_publish(rt_bus_t *bus, const rt_event_t *ev, rt_slice_t idem_key, int64_t now_ms,
                      rt_pos_t *pos, size_t *delivered, bool *dup)
{
    rt__rbus_t *b = (rt__rbus_t *)bus;
    (void)now_ms; /* Redis's clock bounds the history and the window */
    if (dup)
        *dup = false;
    if (delivered)
        *delivered = 0; /* delivery is asynchronous, through pub/sub */
    size_t jlen;
    char *json = rt_event_json(ev, NULL, &jlen);
    pub_keys_t pk;
    bool keys = json && pub_keys_new(&pk, ev, idem_key);
    int rc = RT_E_NOMEM;
    if (keys) {
        char maxlen[24], age[24], window[24], ttl[24], ep[24];
        snprintf(maxlen, sizeof(maxlen), "%zu", b->o.history_max ? b->o.history_max : 1);
        snprintf(age, sizeof(age), "%" PRId64, b->o.history_max_age_ms);
        snprintf(window, sizeof(window), "%" PRId64, b->o.idem_window_ms);
        snprintf(ttl, sizeof(ttl), "%" PRId64, b->ttl_ms);
        rt__redis_epoch_new(ep, sizeof(ep));
        const char *av[] = {pk.k[0],
                            pk.k[1],
                            pk.k[2],
                            pk.k[3],
                            maxlen,
                            age,
                            ev->topic.base,
                            ev->ext_only ? "1" : "0",
                            json,
                            idem_key.len ? "1" : "0",
                            window,
                            ep,
                            ttl};
        size_t al[] = {pk.kl[0],       pk.kl[1],      pk.kl[2],   pk.kl[3], strlen(maxlen),
                       strlen(age),    ev->topic.len, 1,          jlen,     1,
                       strlen(window), strlen(ep),    strlen(ttl)};
        rc = publish_run(b, av, al, pos, dup);
    }
    if (json)
        pub_keys_free(&pk);
    free(json);
    return rc;
}

/* The read script's reply {epoch, coverage, last id, entries} into bf. 0,
 * RT_E_NOMEM or RT_E_UNAVAILABLE (a reply of another shape). */
static int read_reply(const redisReply *r, const rt_pos_t *cands, size_t ncands, rt_backfill_t *bf)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_INTEGER ||
        r->element[2]->type != REDIS_REPLY_STRING || r->element[3]->type != REDIS_REPLY_ARRAY)
        return RT_E_UNAVAILABLE;
    uint64_t e = 0, last = 0;
    if (!rt__redis_epoch_parse(r->element[0]->str, r->element[0]->len, &e))
        return 0; /* the channel has no epoch: no history */
    long long cov = r->element[1]->integer;
    bf->epoch = e;
    if (r->element[2]->len)
        rt__redis_stream_id_parse(r->element[2]->str, r->element[2]->len, &last);
    bf->last_offset = last;
    bf->matched = cov == 0 || cov == 1;
    bf->covered = cov == 1 || cov == 2;
    for (size_t i = 0; i < ncands; i++)
        if (cands[i].epoch == e) {
            bf->since = cands[i].offset;
            break;
        }
    return bf->covered ? rt__redis_entries_parse(r->element[3], e, bf) : 0;
}

int rt__redis_read_stream(rt__rbus_t *b, rt_slice_t channel, const rt_pos_t *cands, size_t ncands,
                          bool whole_if_unmatched, rt_backfill_t *bf)
{
    memset(bf, 0, sizeof(*bf));
    if (ncands > 16)
        ncands = 16;
    size_t kl[2];
    char *stream = rt__redis_key(channel, "stream", &kl[0]);
    char *epoch = rt__redis_key(channel, "epoch", &kl[1]);
    /* ARGV: whole_if_unmatched, then "<epoch hex> <start stream id>" per candidate. */
    char cbuf[16][64];
    const char *av[2 + 1 + 16] = {stream, epoch, whole_if_unmatched ? "1" : "0"};
    size_t al[2 + 1 + 16] = {kl[0], kl[1], 1};
    int n = 3;
    for (size_t i = 0; i < ncands; i++) {
        char sid[48] = "0-0";
        if (cands[i].offset)
            rt__redis_stream_id_format(cands[i].offset, sid, sizeof(sid));
        int l = snprintf(cbuf[i], sizeof(cbuf[i]), "%" PRIx64 " %s", cands[i].epoch, sid);
        av[n] = cbuf[i];
        al[n++] = (size_t)l;
    }
    int rc = RT_E_NOMEM;
    if (stream && epoch) {
        rt__pconn_t *p = rt__redis_pool_get(b);
        rc = rt__redis_pconn_ready(b, p);
        if (rc == 0) {
            redisReply *r = rt__redis_run_script(p, RT__SCRIPT_READ, 2, n, av, al);
            rc = read_reply(r, cands, ncands, bf);
            if (rc == RT_E_UNAVAILABLE) {
                log_refused("redis history read refused", r);
                rt__redis_count_error(b);
            }
            freeReplyObject(r);
        }
        rt__redis_pool_put(p);
    }
    free(stream);
    free(epoch);
    if (rc != 0)
        rt_backfill_clear(bf);
    return rc;
}

int rt__redis_read_history(rt_bus_t *bus, rt_slice_t channel, const rt_pos_t *cands, size_t ncands,
                           rt_backfill_t *out)
{
    return rt__redis_read_stream((rt__rbus_t *)bus, channel, cands, ncands, false, out);
}

/* The position script's reply {epoch, last id or ""}. 0 or RT_E_UNAVAILABLE. */
static int position_reply(const redisReply *r, rt_pos_t *out)
{
    uint64_t e, off = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
        !rt__redis_epoch_parse(r->element[0]->str, r->element[0]->len, &e) ||
        (r->element[1]->len != 0 &&
         !rt__redis_stream_id_parse(r->element[1]->str, r->element[1]->len, &off)))
        return RT_E_UNAVAILABLE;
    *out = (rt_pos_t){e, off};
    return 0;
}

int rt__redis_position(rt_bus_t *bus, rt_slice_t channel, rt_pos_t *out)
{
    rt__rbus_t *b = (rt__rbus_t *)bus;
    size_t kl[2];
    char *stream = rt__redis_key(channel, "stream", &kl[0]);
    char *epoch = rt__redis_key(channel, "epoch", &kl[1]);
    char ep[24], ttl[24];
    rt__redis_epoch_new(ep, sizeof(ep));
    snprintf(ttl, sizeof(ttl), "%" PRId64, b->ttl_ms);
    int rc = RT_E_NOMEM;
    if (stream && epoch) {
        const char *av[] = {stream, epoch, ep, ttl};
        size_t al[] = {kl[0], kl[1], strlen(ep), strlen(ttl)};
        rt__pconn_t *p = rt__redis_pool_get(b);
        rc = rt__redis_pconn_ready(b, p);
        if (rc == 0) {
            redisReply *r = rt__redis_run_script(p, RT__SCRIPT_POSITION, 2, 4, av, al);
            rc = position_reply(r, out);
            if (rc != 0)
                rt__redis_count_error(b);
            freeReplyObject(r);
        }
        rt__redis_pool_put(p);
    }
    free(stream);
    free(epoch);
    return rc;
}
