/*
 * test_hub.c — unit tests for gateway/core/include/hub.h, driven through an in-memory sink
 * (no sockets): wake counts wakes, kick records the reason.
 */
#include "err.h"
#include "hub.h"
#include "rt_test.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <time.h>

/* ---- the in-memory sink ---- */

typedef struct {
    atomic_int wakes;
    atomic_int kicks;
    atomic_int reason;
    sem_t sem; /* posted on wake (used by the threaded test) */
} sink_t;

static void sink_wake(void *owner, rt_sub_t *sub)
{
    sink_t *s = owner;
    atomic_fetch_add(&s->wakes, 1);
    sem_post(&s->sem);
}

static void sink_kick(void *owner, rt_sub_t *sub, rt_reason_t reason)
{
    sink_t *s = owner;
    atomic_fetch_add(&s->kicks, 1);
    atomic_store(&s->reason, (int)reason);
}

static const rt_sink_ops_t sink_ops = {sink_wake, sink_kick};

typedef struct {
    sink_t sink;
    rt_sub_t *sub;
} client_t;

static void client_init(client_t *c, rt_hub_t *hub, rt_format_t fmt)
{
    memset(c, 0, sizeof(*c));
    atomic_init(&c->sink.reason, -1);
    sem_init(&c->sink.sem, 0, 0);
    c->sub = rt_sub_new(hub, fmt, &sink_ops, &c->sink);
    RT_ASSERT(c->sub != NULL);
    RT_ASSERT(rt_sub_owner(c->sub) == &c->sink);
}

static void client_done(rt_hub_t *hub, client_t *c)
{
    rt_hub_unsubscribe_all(hub, c->sub);
    rt_sub_unref(c->sub);
    sem_destroy(&c->sink.sem);
}

static rt_hub_t *hub_with(size_t qframes, size_t qbytes, size_t hist)
{
    rt_hub_opts_t o;
    rt_hub_opts_default(&o);
    if (qframes)
        o.queue_max_frames = qframes;
    if (qbytes)
        o.queue_max_bytes = qbytes;
    o.history_max = hist;
    rt_hub_t *h = rt_hub_new(&o, 0x1234);
    RT_ASSERT(h != NULL);
    return h;
}

static rt_hub_t *hub_default(void)
{
    return hub_with(0, 0, 1000);
}

static void sub_topics(rt_hub_t *hub, client_t *c, const char *channel, const char *t1,
                       const char *t2)
{
    rt_slice_t ts[2] = {rt_slice_cstr(t1), t2 ? rt_slice_cstr(t2) : rt_slice_cstr("")};
    rt_resume_t res;
    RT_ASSERT_INT_EQ(
        rt_hub_subscribe(hub, c->sub, rt_slice_cstr(channel), ts, t2 ? 2 : 1, NULL, &res), 0);
    RT_ASSERT(res.recovered);
    RT_ASSERT(!res.had_since);
}

static rt_pos_t publish_ev(rt_hub_t *hub, const char *channel, const char *topic, const char *data,
                           bool ext_only, size_t *delivered)
{
    rt_event_t ev = {.kind = ext_only ? "chunk" : "data",
                     .channel = rt_slice_cstr(channel),
                     .topic = rt_slice_cstr(topic),
                     .data = rt_slice_cstr(data),
                     .created_at_ms = INT64_C(1700000000000),
                     .ext_only = ext_only};
    rt_pos_t pos = {0, 0};
    size_t d = 999;
    RT_ASSERT_INT_EQ(rt_hub_publish(hub, &ev, &pos, &d), 0);
    RT_ASSERT(pos.epoch != 0);
    if (delivered)
        *delivered = d;
    return pos;
}

static rt_pos_t pub(rt_hub_t *hub, const char *channel, const char *topic, const char *data)
{
    return publish_ev(hub, channel, topic, data, false, NULL);
}

/* Pop everything (up to cap frames) into out; returns the count. */
static size_t drain(rt_sub_t *sub, rt_frame_t **out, size_t cap)
{
    size_t n = 0, got;
    while (n < cap && (got = rt_sub_pop(sub, out + n, cap - n)) > 0)
        n += got;
    return n;
}

static void unref_all(rt_frame_t **f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rt_frame_unref(f[i]);
}

static size_t queued(rt_sub_t *sub)
{
    size_t n = 0;
    rt_sub_queue_size(sub, &n, NULL);
    return n;
}

/* The JSON payload of a WebSocket text frame. */
static rt_slice_t ws_payload(const rt_frame_t *f)
{
    const unsigned char *p = (const unsigned char *)f->data;
    RT_ASSERT(f->len >= 2);
    RT_ASSERT_INT_EQ(p[0], 0x81);
    size_t hl = (p[1] & 127) < 126 ? 2 : (p[1] & 127) == 126 ? 4 : 10;
    return (rt_slice_t){f->data + hl, f->len - hl};
}

static json_t *ws_json(const rt_frame_t *f)
{
    rt_slice_t s = ws_payload(f);
    json_error_t err;
    json_t *o = json_loadb(s.base, s.len, JSON_REJECT_DUPLICATES, &err);
    if (!o)
        rt_test_fail(__FILE__, __LINE__, "frame is not JSON: %s: %.*s", err.text, (int)s.len,
                     s.base);
    return o;
}

/* topic and position of an event frame */
static void frame_info(const rt_frame_t *f, char *topic, size_t tcap, rt_pos_t *pos)
{
    json_t *o = ws_json(f);
    const char *t = json_string_value(json_object_get(o, "topic"));
    const char *id = json_string_value(json_object_get(o, "id"));
    RT_ASSERT(t != NULL && id != NULL);
    snprintf(topic, tcap, "%s", t);
    RT_ASSERT_INT_EQ(rt_pos_parse(rt_slice_cstr(id), pos), 0);
    json_decref(o);
}

static void assert_frame(const rt_frame_t *f, const char *want_topic, rt_pos_t want_pos)
{
    char topic[64];
    rt_pos_t pos;
    frame_info(f, topic, sizeof(topic), &pos);
    RT_ASSERT_STR_EQ(topic, want_topic);
    RT_ASSERT_INT_EQ(pos.epoch, want_pos.epoch);
    RT_ASSERT_INT_EQ(pos.offset, want_pos.offset);
}

/* ---- fan-out and isolation ---- */

RT_TEST(fanout_to_n_subscribers)
{
    enum { N = 7 };
    rt_hub_t *hub = hub_default();
    client_t c[N];
    for (int i = 0; i < N; i++) {
        client_init(&c[i], hub, RT_FMT_WS);
        sub_topics(hub, &c[i], "user:1", "ai", NULL);
    }
    rt_hub_stats_t st;
    rt_hub_stats(hub, &st);
    RT_ASSERT_INT_EQ(st.subscriptions, N);
    size_t delivered;
    rt_pos_t pos = publish_ev(hub, "user:1", "ai", "{\"n\":1}", false, &delivered);
    RT_ASSERT_INT_EQ(delivered, N);
    for (int i = 0; i < N; i++) {
        rt_frame_t *f[4];
        RT_ASSERT_INT_EQ(drain(c[i].sub, f, 4), 1);
        assert_frame(f[0], "ai", pos);
        unref_all(f, 1);
    }
    rt_hub_stats(hub, &st);
    RT_ASSERT_INT_EQ(st.publishes, 1);
    RT_ASSERT_INT_EQ(st.deliveries, N);
    for (int i = 0; i < N; i++)
        client_done(hub, &c[i]);
    rt_hub_free(hub);
}

RT_TEST(topic_isolation)
{
    rt_hub_t *hub = hub_default();
    client_t a;
    client_init(&a, hub, RT_FMT_WS);
    sub_topics(hub, &a, "c1", "t1", NULL);
    size_t d;
    publish_ev(hub, "c1", "t2", "1", false, &d); /* other topic */
    RT_ASSERT_INT_EQ(d, 0);
    publish_ev(hub, "c2", "t1", "2", false, &d); /* same topic name, other channel */
    RT_ASSERT_INT_EQ(d, 0);
    publish_ev(hub, "c1x", "t1", "3", false, &d); /* channel name with the same prefix */
    RT_ASSERT_INT_EQ(d, 0);
    publish_ev(hub, "c1", "t", "4", false, &d); /* topic prefix */
    RT_ASSERT_INT_EQ(d, 0);
    RT_ASSERT_INT_EQ(queued(a.sub), 0);
    RT_ASSERT_INT_EQ(atomic_load(&a.sink.wakes), 0);
    rt_pos_t p = pub(hub, "c1", "t1", "5");
    rt_frame_t *f[4];
    RT_ASSERT_INT_EQ(drain(a.sub, f, 4), 1);
    assert_frame(f[0], "t1", p);
    unref_all(f, 1);
    client_done(hub, &a);
    rt_hub_free(hub);
}

RT_TEST(wildcard_gets_every_topic_of_its_channel_only)
{
    rt_hub_t *hub = hub_default();
    client_t w;
    client_init(&w, hub, RT_FMT_WS);
    sub_topics(hub, &w, "c1", "*", NULL);
    rt_pos_t p1 = pub(hub, "c1", "a", "1");
    pub(hub, "c2", "a", "2");
    rt_pos_t p3 = pub(hub, "c1", "b", "3");
    pub(hub, "c2", "*", "4");
    rt_frame_t *f[8];
    RT_ASSERT_INT_EQ(drain(w.sub, f, 8), 2);
    assert_frame(f[0], "a", p1);
    assert_frame(f[1], "b", p3);
    unref_all(f, 2);
    client_done(hub, &w);
    rt_hub_free(hub);
}

/* A subscriber holding both "*" and an exact topic gets each event once,
 * whatever order it subscribed in, in one call or two. */
static void wildcard_no_dup(const char *first, const char *second, bool one_call)
{
    rt_hub_t *hub = hub_default();
    client_t c;
    client_init(&c, hub, RT_FMT_WS);
    if (one_call) {
        sub_topics(hub, &c, "ch", first, second);
    } else {
        sub_topics(hub, &c, "ch", first, NULL);
        sub_topics(hub, &c, "ch", second, NULL);
    }
    size_t d;
    rt_pos_t p1 = publish_ev(hub, "ch", "a", "1", false, &d);
    if (d != 1)
        rt_test_fail(__FILE__, __LINE__, "subscribed [%s, %s]%s: delivered %zu, want 1", first,
                     second, one_call ? " in one call" : " in two calls", d);
    rt_pos_t p2 = publish_ev(hub, "ch", "b", "2", false, &d);
    RT_ASSERT_INT_EQ(d, 1);
    rt_frame_t *f[8];
    RT_ASSERT_INT_EQ(drain(c.sub, f, 8), 2);
    assert_frame(f[0], "a", p1);
    assert_frame(f[1], "b", p2);
    unref_all(f, 2);
    client_done(hub, &c);
    rt_hub_free(hub);
}

RT_TEST(wildcard_then_exact_no_duplicate)
{
    wildcard_no_dup("*", "a", true);
    wildcard_no_dup("*", "a", false);
}

RT_TEST(exact_then_wildcard_no_duplicate)
{
    wildcard_no_dup("a", "*", true);
    wildcard_no_dup("a", "*", false);
}

RT_TEST(set_topics_wildcard_no_duplicate)
{
    rt_hub_t *hub = hub_default();
    client_t c;
    client_init(&c, hub, RT_FMT_WS);
    sub_topics(hub, &c, "ch", "a", NULL);
    rt_slice_t ts[2] = {RT_SLICE_LIT("a"), RT_SLICE_LIT("*")};
    RT_ASSERT_INT_EQ(rt_hub_set_topics(hub, c.sub, RT_SLICE_LIT("ch"), ts, 2), 0);
    size_t d;
    publish_ev(hub, "ch", "a", "1", false, &d);
    RT_ASSERT_INT_EQ(d, 1);
    publish_ev(hub, "ch", "b", "2", false, &d);
    RT_ASSERT_INT_EQ(d, 1);
    RT_ASSERT_INT_EQ(queued(c.sub), 2);
    client_done(hub, &c);
    rt_hub_free(hub);
}

RT_TEST(subscribe_is_idempotent)
{
    rt_hub_t *hub = hub_default();
    client_t c;
    client_init(&c, hub, RT_FMT_WS);
    sub_topics(hub, &c, "ch", "a", "a");
    sub_topics(hub, &c, "ch", "a", NULL);
    rt_hub_stats_t st;
    rt_hub_stats(hub, &st);
    RT_ASSERT_INT_EQ(st.subscriptions, 1);
    size_t d;
    publish_ev(hub, "ch", "a", "1", false, &d);
    RT_ASSERT_INT_EQ(d, 1);
    RT_ASSERT_INT_EQ(queued(c.sub), 1);
    client_done(hub, &c);
    rt_hub_free(hub);
}

/* ---- ordering, positions, sharing ---- */

RT_TEST(positions_increase_with_same_epoch)
{
    rt_hub_t *hub = hub_default();
    client_t c;
    client_init(&c, hub, RT_FMT_WS);
    sub_topics(hub, &c, "ch", "*", NULL);
    rt_pos_t p[3];
    p[0] = pub(hub, "ch", "a", "1");
    p[1] = pub(hub, "ch", "b", "2");
    p[2] = pub(hub, "ch", "a", "3");
    for (int i = 0; i < 3; i++) {
        RT_ASSERT_INT_EQ(p[i].offset, i + 1);
        RT_ASSERT_INT_EQ(p[i].epoch, p[0].epoch);
    }
    /* Another channel has its own sequence. */
    rt_pos_t q = pub(hub, "other", "a", "x");
    RT_ASSERT_INT_EQ(q.offset, 1);
    RT_ASSERT_INT_NE(q.epoch, p[0].epoch);
    rt_frame_t *f[8];
    RT_ASSERT_INT_EQ(drain(c.sub, f, 8), 3);
    assert_frame(f[0], "a", p[0]);
    assert_frame(f[1], "b", p[1]);
    assert_frame(f[2], "a", p[2]);
    json_t *o = ws_json(f[2]);
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(o, "kind")), "data");
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(o, "channel")), "ch");
    RT_ASSERT_INT_EQ(json_integer_value(json_object_get(o, "data")), 3);
    json_decref(o);
    unref_all(f, 3);
    client_done(hub, &c);
    rt_hub_free(hub);
}

RT_TEST(published_frame_is_shared)
{
    enum { N = 4 };
    rt_hub_t *hub = hub_default();
    client_t c[N];
    for (int i = 0; i < N; i++) {
        client_init(&c[i], hub, RT_FMT_WS);
        /* half by exact topic, half by wildcard: still one frame */
        sub_topics(hub, &c[i], "ch", i % 2 ? "*" : "t", NULL);
    }
    pub(hub, "ch", "t", "{\"big\":\"payload\"}");
    rt_frame_t *f[N];
    for (int i = 0; i < N; i++) {
        RT_ASSERT_INT_EQ(rt_sub_pop(c[i].sub, &f[i], 1), 1);
        RT_ASSERT(f[i] == f[0]);
    }
    /* N queue references were handed to us, plus one held by history. */
    RT_ASSERT_INT_EQ(atomic_load(&f[0]->refs), N + 1);
    unref_all(f, N);
    for (int i = 0; i < N; i++)
        client_done(hub, &c[i]);
    rt_hub_free(hub);
}

/* ---- wakes ---- */

RT_TEST(wake_once_per_idle_to_busy)
{
    rt_hub_t *hub = hub_default();
    client_t c;
    client_init(&c, hub, RT_FMT_WS);
    sub_topics(hub, &c, "ch", "t", NULL);
    RT_ASSERT_INT_EQ(atomic_load(&c.sink.wakes), 0);
    for (int i = 0; i < 5; i++)
        pub(hub, "ch", "t", "1");
    RT_ASSERT_INT_EQ(atomic_load(&c.sink.wakes), 1);
    rt_frame_t *f[8];
    RT_ASSERT_INT_EQ(rt_sub_pop(c.sub, f, 8), 5);
    unref_all(f, 5);
    /* Popped frames but the pop did not return 0: still scheduled, no wake. */
    pub(hub, "ch", "t", "2");
    RT_ASSERT_INT_EQ(atomic_load(&c.sink.wakes), 1);
    RT_ASSERT_INT_EQ(rt_sub_pop(c.sub, f, 8), 1);
    unref_all(f, 1);
    RT_ASSERT_INT_EQ(rt_sub_pop(c.sub, f, 8), 0); /* idle again */
    RT_ASSERT_INT_EQ(atomic_load(&c.sink.wakes), 1);
    pub(hub, "ch", "t", "3");
    RT_ASSERT_INT_EQ(atomic_load(&c.sink.wakes), 2);
    pub(hub, "ch", "t", "4");
    RT_ASSERT_INT_EQ(atomic_load(&c.sink.wakes), 2);
    /* Control frames count as work too. */
    RT_ASSERT_INT_EQ(drain(c.sub, f, 8), 2);
    unref_all(f, 2);
    rt_frame_t *ping = rt_ws_frame_new(RT_WS_PING, NULL, 0);
    RT_ASSERT_INT_EQ(rt_sub_push(c.sub, ping), 0);
    RT_ASSERT_INT_EQ(atomic_load(&c.sink.wakes), 3);
    rt_frame_unref(ping);
    client_done(hub, &c);
    rt_hub_free(hub);
}

/* ---- slow consumers ---- */

static void slow_consumer_case(size_t qframes, size_t qbytes, int npub, int kick_at)
{
    rt_hub_t *hub = hub_with(qframes, qbytes, 1000);
    client_t slow, fast;
    client_init(&slow, hub, RT_FMT_WS);
    client_init(&fast, hub, RT_FMT_WS);
    sub_topics(hub, &slow, "ch", "t", NULL);
    sub_topics(hub, &fast, "ch", "t", NULL);
    char data[128];
    memset(data, 'x', sizeof(data));
    data[0] = '"';
    data[sizeof(data) - 2] = '"';
    data[sizeof(data) - 1] = 0;
    for (int i = 1; i <= npub; i++) {
        size_t d;
        publish_ev(hub, "ch", "t", data, false, &d);
        int want_kicks = i >= kick_at ? 1 : 0;
        if (atomic_load(&slow.sink.kicks) != want_kicks)
            rt_test_fail(__FILE__, __LINE__, "after publish %d: kicks %d, want %d", i,
                         atomic_load(&slow.sink.kicks), want_kicks);
        RT_ASSERT_INT_EQ(d, i >= kick_at ? 1 : 2);
        /* the fast one keeps reading */
        rt_frame_t *f[4];
        RT_ASSERT_INT_EQ(drain(fast.sub, f, 4), 1);
        unref_all(f, 1);
        size_t frames, bytes;
        rt_sub_queue_size(slow.sub, &frames, &bytes);
        RT_ASSERT(frames <= qframes);
        RT_ASSERT(bytes <= qbytes);
        if (i >= kick_at) {
            RT_ASSERT_INT_EQ(frames, 0); /* dropped, and nothing more accepted */
            RT_ASSERT_INT_EQ(bytes, 0);
        } else {
            RT_ASSERT_INT_EQ(frames, i);
        }
    }
    RT_ASSERT_INT_EQ(atomic_load(&slow.sink.reason), RT_REASON_SLOW_CONSUMER);
    RT_ASSERT_INT_EQ(atomic_load(&fast.sink.kicks), 0);
    rt_frame_t *f[4];
    RT_ASSERT_INT_EQ(rt_sub_pop(slow.sub, f, 4), 0);
    rt_frame_t *ping = rt_ws_frame_new(RT_WS_PING, NULL, 0);
    RT_ASSERT_INT_EQ(rt_sub_push(slow.sub, ping), -1); /* a kicked subscriber takes nothing */
    rt_frame_unref(ping);
    rt_hub_stats_t st;
    rt_hub_stats(hub, &st);
    RT_ASSERT_INT_EQ(st.slow_kicks, 1);
    client_done(hub, &slow);
    client_done(hub, &fast);
    rt_hub_free(hub);
}

RT_TEST(slow_consumer_over_frames)
{
    /* 3 frames fit; the 4th publish kicks; later ones are not accepted. */
    slow_consumer_case(3, 1u << 20, 8, 4);
}

RT_TEST(slow_consumer_over_bytes)
{
    /* Each frame is a bit over 200 bytes: 4 fit in 1024, the 5th kicks. */
    rt_hub_t *hub = hub_default();
    client_t probe;
    client_init(&probe, hub, RT_FMT_WS);
    sub_topics(hub, &probe, "ch", "t", NULL);
    char data[128];
    memset(data, 'x', sizeof(data));
    data[0] = '"';
    data[sizeof(data) - 2] = '"';
    data[sizeof(data) - 1] = 0;
    pub(hub, "ch", "t", data);
    size_t fl;
    rt_sub_queue_size(probe.sub, NULL, &fl);
    client_done(hub, &probe);
    rt_hub_free(hub);
    RT_ASSERT(fl > 128 && fl < 1024 / 4);
    slow_consumer_case(1000, 4 * fl + fl / 2, 8, 5);
}

/* Replayed history is exempt from the queue bounds (it is shared history,
 * bounded by history_max), so a consumer kicked as slow can always resume;
 * live frames after it are bounded as usual. */
RT_TEST(replay_is_exempt_from_queue_bounds)
{
    rt_hub_t *hub = hub_with(2, 0, 100);
    rt_pos_t first = pub(hub, "ch", "t", "0");
    for (int i = 0; i < 5; i++)
        pub(hub, "ch", "t", "1");
    client_t c;
    client_init(&c, hub, RT_FMT_WS);
    rt_slice_t t = RT_SLICE_LIT("t");
    rt_resume_t res;
    RT_ASSERT_INT_EQ(rt_hub_subscribe(hub, c.sub, RT_SLICE_LIT("ch"), &t, 1, &first, &res), 0);
    RT_ASSERT(res.recovered);
    RT_ASSERT_INT_EQ(res.replayed, 5);
    RT_ASSERT_INT_EQ(atomic_load(&c.sink.kicks), 0);
    RT_ASSERT_INT_EQ(queued(c.sub), 5);
    pub(hub, "ch", "t", "2");
    pub(hub, "ch", "t", "3");
    RT_ASSERT_INT_EQ(atomic_load(&c.sink.kicks), 0);
    RT_ASSERT_INT_EQ(queued(c.sub), 7);
    pub(hub, "ch", "t", "4"); /* third live frame: over the bound of 2 */
    RT_ASSERT_INT_EQ(atomic_load(&c.sink.kicks), 1);
    RT_ASSERT_INT_EQ(atomic_load(&c.sink.reason), RT_REASON_SLOW_CONSUMER);
    RT_ASSERT_INT_EQ(queued(c.sub), 0);
    client_done(hub, &c);
    rt_hub_free(hub);
}

/* ---- replay ---- */

static rt_resume_t resume(rt_hub_t *hub, client_t *c, const char *channel, const char *topic,
                          const rt_pos_t *since)
{
    rt_slice_t t = rt_slice_cstr(topic);
    rt_resume_t res;
    memset(&res, 0xAB, sizeof(res));
    RT_ASSERT_INT_EQ(rt_hub_subscribe(hub, c->sub, rt_slice_cstr(channel), &t, 1, since, &res), 0);
    RT_ASSERT_INT_EQ(res.had_since, since != NULL);
    return res;
}

RT_TEST(replay_since_recovers_in_order_by_topic)
{
    rt_hub_t *hub = hub_default();
    rt_pos_t p[6];
    const char *topics[6] = {"a", "b", "a", "b", "a", "a"};
    for (int i = 0; i < 6; i++)
        p[i] = pub(hub, "ch", topics[i], "1");
    client_t c;
    client_init(&c, hub, RT_FMT_WS);
    rt_resume_t res = resume(hub, &c, "ch", "a", &p[1]);
    RT_ASSERT(res.recovered);
    RT_ASSERT_INT_EQ(res.replayed, 3);
    RT_ASSERT_INT_EQ(res.current.epoch, p[0].epoch);
    RT_ASSERT_INT_EQ(res.current.offset, 6);
    RT_ASSERT_INT_EQ(atomic_load(&c.sink.wakes), 1);
    /* then live, with no gap and no duplicate */
    rt_pos_t p7 = pub(hub, "ch", "a", "2");
    pub(hub, "ch", "b", "3");
    rt_frame_t *f[8];
    RT_ASSERT_INT_EQ(drain(c.sub, f, 8), 4);
    assert_frame(f[0], "a", p[2]);
    assert_frame(f[1], "a", p[4]);
    assert_frame(f[2], "a", p[5]);
    assert_frame(f[3], "a", p7);
    unref_all(f, 4);
    rt_hub_stats_t st;
    rt_hub_stats(hub, &st);
    RT_ASSERT_INT_EQ(st.replayed, 3);
    client_done(hub, &c);
    rt_hub_free(hub);
}

RT_TEST(replay_since_zero_offset_replays_all)
{
    rt_hub_t *hub = hub_default();
    rt_pos_t p1 = pub(hub, "ch", "a", "1");
    pub(hub, "ch", "a", "2");
    client_t c;
    client_init(&c, hub, RT_FMT_WS);
    rt_pos_t zero = {p1.epoch, 0};
    rt_resume_t res = resume(hub, &c, "ch", "a", &zero);
    RT_ASSERT(res.recovered);
    RT_ASSERT_INT_EQ(res.replayed, 2);
    client_done(hub, &c);
    rt_hub_free(hub);
}

RT_TEST(replay_since_latest_recovers_nothing_to_send)
{
    rt_hub_t *hub = hub_default();
    pub(hub, "ch", "a", "1");
    rt_pos_t last = pub(hub, "ch", "a", "2");
    client_t c;
    client_init(&c, hub, RT_FMT_WS);
    rt_resume_t res = resume(hub, &c, "ch", "a", &last);
    RT_ASSERT(res.recovered);
    RT_ASSERT_INT_EQ(res.replayed, 0);
    RT_ASSERT_INT_EQ(res.current.offset, last.offset);
    RT_ASSERT_INT_EQ(queued(c.sub), 0);
    RT_ASSERT_INT_EQ(atomic_load(&c.sink.wakes), 0);
    client_done(hub, &c);
    rt_hub_free(hub);
}

RT_TEST(replay_wrong_epoch_not_recovered)
{
    rt_hub_t *hub = hub_default();
    rt_pos_t p1 = pub(hub, "ch", "a", "1");
    pub(hub, "ch", "a", "2");
    client_t c;
    client_init(&c, hub, RT_FMT_WS);
    rt_pos_t wrong = {p1.epoch ^ 1, 1};
    rt_resume_t res = resume(hub, &c, "ch", "a", &wrong);
    RT_ASSERT(!res.recovered);
    RT_ASSERT_INT_EQ(res.replayed, 0);
    RT_ASSERT_INT_EQ(res.current.epoch, p1.epoch);
    RT_ASSERT_INT_EQ(res.current.offset, 2);
    RT_ASSERT_INT_EQ(queued(c.sub), 0);
    /* still subscribed for live events */
    size_t d;
    publish_ev(hub, "ch", "a", "3", false, &d);
    RT_ASSERT_INT_EQ(d, 1);
    client_done(hub, &c);
    rt_hub_free(hub);
}

RT_TEST(replay_older_than_history_not_recovered)
{
    rt_hub_t *hub = hub_with(0, 0, 3);
    rt_pos_t p[6];
    for (int i = 0; i < 6; i++)
        p[i] = pub(hub, "ch", "a", "1");
    rt_hub_stats_t st;
    rt_hub_stats(hub, &st);
    RT_ASSERT_INT_EQ(st.history_events, 3);
    client_t c;
    client_init(&c, hub, RT_FMT_WS);
    /* history holds 4,5,6: since 2 lost event 3 */
    rt_resume_t res = resume(hub, &c, "ch", "a", &p[1]);
    RT_ASSERT(!res.recovered);
    RT_ASSERT_INT_EQ(res.replayed, 0);
    RT_ASSERT_INT_EQ(queued(c.sub), 0);
    client_done(hub, &c);
    /* since 3 is exactly covered: 4,5,6 replayed */
    client_t d;
    client_init(&d, hub, RT_FMT_WS);
    res = resume(hub, &d, "ch", "a", &p[2]);
    RT_ASSERT(res.recovered);
    RT_ASSERT_INT_EQ(res.replayed, 3);
    rt_frame_t *f[8];
    RT_ASSERT_INT_EQ(drain(d.sub, f, 8), 3);
    for (int i = 0; i < 3; i++)
        assert_frame(f[i], "a", p[3 + i]);
    unref_all(f, 3);
    client_done(hub, &d);
    rt_hub_free(hub);
}

RT_TEST(replay_history_disabled)
{
    rt_hub_t *hub = hub_with(0, 0, 0);
    rt_pos_t p1 = pub(hub, "ch", "a", "1");
    rt_pos_t p2 = pub(hub, "ch", "a", "2");
    client_t c;
    client_init(&c, hub, RT_FMT_WS);
    rt_resume_t res = resume(hub, &c, "ch", "a", &p1);
    RT_ASSERT(!res.recovered);
    client_done(hub, &c);
    client_init(&c, hub, RT_FMT_WS);
    res = resume(hub, &c, "ch", "a", &p2); /* nothing missed */
    RT_ASSERT(res.recovered);
    RT_ASSERT_INT_EQ(res.replayed, 0);
    client_done(hub, &c);
    rt_hub_free(hub);
}

RT_TEST(replay_since_future_not_recovered)
{
    rt_hub_t *hub = hub_default();
    rt_pos_t p1 = pub(hub, "ch", "a", "1");
    client_t c;
    client_init(&c, hub, RT_FMT_WS);
    rt_pos_t future = {p1.epoch, p1.offset + 1};
    rt_resume_t res = resume(hub, &c, "ch", "a", &future);
    RT_ASSERT(!res.recovered);
    RT_ASSERT_INT_EQ(res.replayed, 0);
    RT_ASSERT_INT_EQ(queued(c.sub), 0);
    client_done(hub, &c);
    rt_hub_free(hub);
}

RT_TEST(replay_on_unknown_channel_not_recovered)
{
    rt_hub_t *hub = hub_default();
    client_t c;
    client_init(&c, hub, RT_FMT_WS);
    rt_pos_t old = {0xabc, 5};
    rt_resume_t res = resume(hub, &c, "never", "a", &old);
    RT_ASSERT(!res.recovered);
    RT_ASSERT_INT_EQ(res.current.offset, 0);
    client_done(hub, &c);
    rt_hub_free(hub);
}

/* ---- extended protocol (stream frames) ---- */

/* The kind of a WebSocket event frame. */
static void assert_kind(const rt_frame_t *f, const char *kind)
{
    json_t *o = ws_json(f);
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(o, "kind")), kind);
    json_decref(o);
}

/* Extended-only frames: a chunk reaches official (plain) WebSocket
 * subscribers in its plain form (kind "data", same position and fields);
 * datastream-start/-end do not reach them at all. */
RT_TEST(ext_only_live_delivery)
{
    rt_hub_t *hub = hub_default();
    client_t plain, ext, wild_ext;
    client_init(&plain, hub, RT_FMT_WS);
    client_init(&ext, hub, RT_FMT_WS);
    client_init(&wild_ext, hub, RT_FMT_WS);
    rt_sub_set_ext(ext.sub, true);
    rt_sub_set_ext(wild_ext.sub, true);
    sub_topics(hub, &plain, "ch", "t", NULL);
    sub_topics(hub, &ext, "ch", "t", NULL);
    sub_topics(hub, &wild_ext, "ch", "*", NULL);
    size_t d;
    rt_event_t start = {.kind = "datastream-start",
                        .channel = rt_slice_cstr("ch"),
                        .topic = rt_slice_cstr("t"),
                        .data = rt_slice_cstr("\"s1\""),
                        .created_at_ms = INT64_C(1700000000000),
                        .ext_only = true};
    rt_pos_t p0;
    RT_ASSERT_INT_EQ(rt_hub_publish(hub, &start, &p0, &d), 0);
    RT_ASSERT_INT_EQ(d, 2);
    rt_pos_t p1 = publish_ev(hub, "ch", "t", "\"chunk\"", true, &d);
    RT_ASSERT_INT_EQ(d, 3);
    rt_pos_t p2 = publish_ev(hub, "ch", "t", "\"data\"", false, &d);
    RT_ASSERT_INT_EQ(d, 3);
    rt_frame_t *f[4];
    RT_ASSERT_INT_EQ(drain(plain.sub, f, 4), 2);
    assert_frame(f[0], "t", p1);
    assert_kind(f[0], "data");
    json_t *o = ws_json(f[0]);
    RT_ASSERT_STR_EQ(json_string_value(json_object_get(o, "data")), "chunk");
    json_decref(o);
    assert_frame(f[1], "t", p2);
    unref_all(f, 2);
    client_t *exts[2] = {&ext, &wild_ext};
    for (int i = 0; i < 2; i++) {
        RT_ASSERT_INT_EQ(drain(exts[i]->sub, f, 4), 3);
        assert_frame(f[0], "t", p0);
        assert_kind(f[0], "datastream-start");
        assert_frame(f[1], "t", p1);
        assert_kind(f[1], "chunk");
        assert_frame(f[2], "t", p2);
        unref_all(f, 3);
    }
    client_done(hub, &plain);
    client_done(hub, &ext);
    client_done(hub, &wild_ext);
    rt_hub_free(hub);
}

RT_TEST(ext_only_replay)
{
    rt_hub_t *hub = hub_default();
    rt_pos_t p0 = pub(hub, "ch", "t", "0");
    rt_pos_t p1 = publish_ev(hub, "ch", "t", "\"c\"", true, NULL);
    rt_pos_t p2 = pub(hub, "ch", "t", "2");
    client_t plain, ext;
    client_init(&plain, hub, RT_FMT_WS);
    client_init(&ext, hub, RT_FMT_WS);
    rt_sub_set_ext(ext.sub, true);
    rt_resume_t res = resume(hub, &plain, "ch", "t", &p0);
    RT_ASSERT(res.recovered);
    RT_ASSERT_INT_EQ(res.replayed, 2);
    res = resume(hub, &ext, "ch", "t", &p0);
    RT_ASSERT(res.recovered);
    RT_ASSERT_INT_EQ(res.replayed, 2);
    rt_frame_t *f[4];
    RT_ASSERT_INT_EQ(drain(plain.sub, f, 4), 2);
    assert_frame(f[0], "t", p1);
    assert_kind(f[0], "data");
    assert_frame(f[1], "t", p2);
    unref_all(f, 2);
    RT_ASSERT_INT_EQ(drain(ext.sub, f, 4), 2);
    assert_frame(f[0], "t", p1);
    assert_kind(f[0], "chunk");
    assert_frame(f[1], "t", p2);
    unref_all(f, 2);
    client_done(hub, &plain);
    client_done(hub, &ext);
    rt_hub_free(hub);
}

/* ---- SSE ---- */

static void assert_sse(const rt_frame_t *sse, const rt_frame_t *ws, rt_pos_t pos)
{
    char want[4096], ps[RT_POS_MAX];
    rt_pos_format(pos, ps, sizeof(ps));
    rt_slice_t j = ws_payload(ws);
    int n = snprintf(want, sizeof(want), "id: %s\ndata: %.*s\n\n", ps, (int)j.len, j.base);
    RT_ASSERT_MEM_EQ(sse->data, sse->len, want, (size_t)n);
}

RT_TEST(sse_subscriber_gets_sse_records)
{
    rt_hub_t *hub = hub_default();
    client_t ws, sse, sse2;
    client_init(&ws, hub, RT_FMT_WS);
    client_init(&sse, hub, RT_FMT_SSE);
    client_init(&sse2, hub, RT_FMT_SSE);
    sub_topics(hub, &ws, "ch", "t", NULL);
    sub_topics(hub, &sse, "ch", "t", NULL);
    sub_topics(hub, &sse2, "ch", "*", NULL);
    rt_pos_t p = pub(hub, "ch", "t", "{\"line\":\"a\\nb\"}");
    rt_frame_t *fw, *fs, *fs2;
    RT_ASSERT_INT_EQ(rt_sub_pop(ws.sub, &fw, 1), 1);
    RT_ASSERT_INT_EQ(rt_sub_pop(sse.sub, &fs, 1), 1);
    RT_ASSERT_INT_EQ(rt_sub_pop(sse2.sub, &fs2, 1), 1);
    assert_sse(fs, fw, p);
    RT_ASSERT(fs == fs2); /* SSE is encoded once too */
    RT_ASSERT(fs != fw);
    rt_frame_unref(fw);
    rt_frame_unref(fs);
    rt_frame_unref(fs2);
    client_done(hub, &ws);
    client_done(hub, &sse);
    client_done(hub, &sse2);
    rt_hub_free(hub);
}

RT_TEST(sse_replay)
{
    rt_hub_t *hub = hub_default();
    client_t ws;
    client_init(&ws, hub, RT_FMT_WS);
    sub_topics(hub, &ws, "ch", "t", NULL);
    rt_pos_t p0 = pub(hub, "ch", "t", "0");
    rt_pos_t p1 = pub(hub, "ch", "t", "{\"x\":1}");
    rt_frame_t *fw[2];
    RT_ASSERT_INT_EQ(drain(ws.sub, fw, 2), 2);
    for (int k = 0; k < 2; k++) { /* twice: the lazily built SSE frame is reused */
        client_t sse;
        client_init(&sse, hub, RT_FMT_SSE);
        rt_resume_t res = resume(hub, &sse, "ch", "t", &p0);
        RT_ASSERT(res.recovered);
        RT_ASSERT_INT_EQ(res.replayed, 1);
        rt_frame_t *fs;
        RT_ASSERT_INT_EQ(rt_sub_pop(sse.sub, &fs, 1), 1);
        assert_sse(fs, fw[1], p1);
        rt_frame_unref(fs);
        client_done(hub, &sse);
    }
    unref_all(fw, 2);
    client_done(hub, &ws);
    rt_hub_free(hub);
}

/* ---- unsubscribe, sweep ---- */

RT_TEST(unsubscribe_all_is_idempotent_and_stops_delivery)
{
    rt_hub_t *hub = hub_default();
    client_t c, other;
    client_init(&c, hub, RT_FMT_WS);
    client_init(&other, hub, RT_FMT_WS);
    sub_topics(hub, &c, "ch", "t", "u");
    sub_topics(hub, &c, "ch2", "*", NULL);
    sub_topics(hub, &other, "ch", "t", NULL);
    pub(hub, "ch", "t", "1");
    RT_ASSERT_INT_EQ(queued(c.sub), 1);
    rt_hub_stats_t st;
    rt_hub_stats(hub, &st);
    RT_ASSERT_INT_EQ(st.subscriptions, 4);
    rt_hub_unsubscribe_all(hub, c.sub);
    RT_ASSERT_INT_EQ(queued(c.sub), 0); /* emptied */
    rt_hub_unsubscribe_all(hub, c.sub);
    rt_hub_stats(hub, &st);
    RT_ASSERT_INT_EQ(st.subscriptions, 1);
    size_t d;
    publish_ev(hub, "ch", "t", "2", false, &d);
    RT_ASSERT_INT_EQ(d, 1); /* only the other one */
    publish_ev(hub, "ch", "u", "3", false, &d);
    RT_ASSERT_INT_EQ(d, 0);
    publish_ev(hub, "ch2", "x", "4", false, &d);
    RT_ASSERT_INT_EQ(d, 0);
    RT_ASSERT_INT_EQ(queued(c.sub), 0);
    RT_ASSERT_INT_EQ(queued(other.sub), 2);
    RT_ASSERT_INT_EQ(atomic_load(&c.sink.kicks), 0);
    rt_sub_unref(c.sub);
    sem_destroy(&c.sink.sem);
    client_done(hub, &other);
    rt_hub_free(hub);
}

RT_TEST(sweep_frees_idle_channel_and_changes_epoch)
{
    rt_hub_opts_t o;
    rt_hub_opts_default(&o);
    o.history_max_age_ms = 1000;
    rt_hub_t *hub = rt_hub_new(&o, 99);
    rt_pos_t old = pub(hub, "ch", "t", "1");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    rt_hub_stats_t st;
    rt_hub_sweep(hub, now); /* young: kept */
    rt_hub_stats(hub, &st);
    RT_ASSERT_INT_EQ(st.channels, 1);
    RT_ASSERT_INT_EQ(st.history_events, 1);
    /* A channel with a subscriber survives any age. */
    client_t c;
    client_init(&c, hub, RT_FMT_WS);
    sub_topics(hub, &c, "busy", "t", NULL);
    rt_hub_sweep(hub, now + 60000);
    rt_hub_stats(hub, &st);
    RT_ASSERT_INT_EQ(st.channels, 1); /* "ch" freed, "busy" kept */
    RT_ASSERT_INT_EQ(st.history_events, 0);
    pub(hub, "busy", "t", "x");
    RT_ASSERT_INT_EQ(queued(c.sub), 1);
    client_done(hub, &c);
    /* "ch" comes back with a new epoch: the old position does not resume. */
    rt_pos_t fresh = pub(hub, "ch", "t", "2");
    RT_ASSERT_INT_NE(fresh.epoch, old.epoch);
    RT_ASSERT_INT_EQ(fresh.offset, 1);
    client_t r;
    client_init(&r, hub, RT_FMT_WS);
    rt_resume_t res = resume(hub, &r, "ch", "t", &old);
    RT_ASSERT(!res.recovered);
    RT_ASSERT_INT_EQ(res.replayed, 0);
    client_done(hub, &r);
    rt_hub_free(hub);
}

RT_TEST(sweep_many_channels)
{
    rt_hub_opts_t o;
    rt_hub_opts_default(&o);
    o.history_max_age_ms = 1000;
    rt_hub_t *hub = rt_hub_new(&o, 7);
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "c%d", i);
        pub(hub, name, "t", "1");
    }
    rt_hub_stats_t st;
    rt_hub_stats(hub, &st);
    RT_ASSERT_INT_EQ(st.channels, 300);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    rt_hub_sweep(hub, (int64_t)ts.tv_sec * 1000 + 60000);
    rt_hub_stats(hub, &st);
    RT_ASSERT_INT_EQ(st.channels, 0);
    RT_ASSERT_INT_EQ(st.history_events, 0);
    rt_hub_free(hub);
}

/* ---- control frames ---- */

RT_TEST(push_front_goes_ahead_of_queued)
{
    rt_hub_t *hub = hub_default();
    client_t c;
    client_init(&c, hub, RT_FMT_WS);
    sub_topics(hub, &c, "ch", "t", NULL);
    rt_pos_t p1 = pub(hub, "ch", "t", "1");
    rt_pos_t p2 = pub(hub, "ch", "t", "2");
    rt_frame_t *ack = rt_ws_frame_new(RT_WS_TEXT, "{\"ack\":1}", 9);
    rt_frame_t *tail = rt_ws_frame_new(RT_WS_PONG, NULL, 0);
    RT_ASSERT_INT_EQ(rt_sub_push_front(c.sub, ack), 0);
    RT_ASSERT_INT_EQ(rt_sub_push(c.sub, tail), 0);
    rt_frame_t *f[8];
    RT_ASSERT_INT_EQ(drain(c.sub, f, 8), 4);
    RT_ASSERT(f[0] == ack);
    assert_frame(f[1], "t", p1);
    assert_frame(f[2], "t", p2);
    RT_ASSERT(f[3] == tail);
    unref_all(f, 4);
    /* On an empty queue it wakes like any push. */
    RT_ASSERT_INT_EQ(rt_sub_pop(c.sub, f, 8), 0);
    int w = atomic_load(&c.sink.wakes);
    RT_ASSERT_INT_EQ(rt_sub_push_front(c.sub, ack), 0);
    RT_ASSERT_INT_EQ(atomic_load(&c.sink.wakes), w + 1);
    RT_ASSERT_INT_EQ(rt_sub_pop(c.sub, f, 8), 1);
    RT_ASSERT(f[0] == ack);
    rt_frame_unref(f[0]);
    rt_sub_close(c.sub);
    RT_ASSERT_INT_EQ(rt_sub_push_front(c.sub, ack), -1);
    RT_ASSERT_INT_EQ(rt_sub_push(c.sub, ack), -1);
    RT_ASSERT_INT_EQ(atomic_load(&ack->refs), 1);
    rt_frame_unref(ack);
    rt_frame_unref(tail);
    client_done(hub, &c);
    rt_hub_free(hub);
}

RT_TEST(push_front_wraps_ring)
{
    /* Many push_fronts and pops across the ring boundary keep order. */
    rt_hub_t *hub = hub_default();
    client_t c;
    client_init(&c, hub, RT_FMT_WS);
    rt_frame_t *fr[40];
    for (int i = 0; i < 40; i++) {
        fr[i] = rt_ws_frame_new(RT_WS_PING, NULL, 0);
        RT_ASSERT_INT_EQ(rt_sub_push_front(c.sub, fr[i]), 0);
    }
    rt_frame_t *f[40];
    RT_ASSERT_INT_EQ(drain(c.sub, f, 40), 40);
    for (int i = 0; i < 40; i++)
        RT_ASSERT(f[i] == fr[39 - i]);
    unref_all(f, 40);
    unref_all(fr, 40);
    client_done(hub, &c);
    rt_hub_free(hub);
}

/* ---- concurrency ---- */

enum { NPUB = 4, NSUBS = 8, PER_PUB = 2000, TOTAL = NPUB * PER_PUB };

typedef struct {
    rt_hub_t *hub;
    int id;
    atomic_int *go;
} pub_arg_t;

typedef struct {
    client_t c;
    int count;
    int error; /* 0 ok */
    char msg[256];
    int64_t deadline_ms;
    unsigned char seen[TOTAL];
} sub_arg_t;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *pub_thread(void *p)
{
    pub_arg_t *a = p;
    while (!atomic_load(a->go))
        ;
    for (int i = 0; i < PER_PUB; i++) {
        char data[64];
        snprintf(data, sizeof(data), "{\"p\":%d,\"i\":%d}", a->id, i);
        rt_event_t ev = {.kind = "data",
                         .channel = RT_SLICE_LIT("hot"),
                         .topic = RT_SLICE_LIT("t"),
                         .data = rt_slice_cstr(data),
                         .created_at_ms = 0};
        if (rt_hub_publish(a->hub, &ev, NULL, NULL) != 0)
            return (void *)1;
    }
    return NULL;
}

static void *sub_thread(void *p)
{
    sub_arg_t *a = p;
    uint64_t last = 0;
    int last_i[NPUB];
    for (int k = 0; k < NPUB; k++)
        last_i[k] = -1;
    rt_frame_t *f[64];
    while (a->count < TOTAL) {
        size_t n = rt_sub_pop(a->c.sub, f, 64);
        if (n == 0) {
            if (mono_ms() > a->deadline_ms) {
                snprintf(a->msg, sizeof(a->msg), "timed out after %d of %d events", a->count,
                         TOTAL);
                a->error = 1;
                return NULL;
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 50 * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            while (sem_timedwait(&a->c.sink.sem, &ts) != 0 && errno == EINTR)
                ;
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            const unsigned char *d = (const unsigned char *)f[k]->data;
            size_t hl = (d[1] & 127) < 126 ? 2 : 4;
            const char *json = f[k]->data + hl;
            int pid = -1, idx = -1;
            const char *pp = strstr(json, "\"data\":{\"p\":");
            const char *ip = strstr(json, "\"id\":\"");
            const char *dash = ip ? strchr(ip + 6, '-') : NULL;
            if (!pp || !dash || sscanf(pp, "\"data\":{\"p\":%d,\"i\":%d}", &pid, &idx) != 2 ||
                pid < 0 || pid >= NPUB || idx < 0 || idx >= PER_PUB) {
                snprintf(a->msg, sizeof(a->msg), "bad frame: %.*s", (int)(f[k]->len - hl), json);
                a->error = 1;
            } else {
                uint64_t off = strtoull(dash + 1, NULL, 10);
                if (off <= last) {
                    snprintf(a->msg, sizeof(a->msg), "offset %" PRIu64 " after %" PRIu64, off,
                             last);
                    a->error = 1;
                }
                last = off;
                if (idx <= last_i[pid]) {
                    snprintf(a->msg, sizeof(a->msg), "publisher %d: event %d after %d", pid, idx,
                             last_i[pid]);
                    a->error = 1;
                }
                last_i[pid] = idx;
                if (a->seen[pid * PER_PUB + idx]++) {
                    snprintf(a->msg, sizeof(a->msg), "duplicate p=%d i=%d", pid, idx);
                    a->error = 1;
                }
            }
            rt_frame_unref(f[k]);
            a->count++;
        }
        if (a->error) {
            return NULL;
        }
    }
    return NULL;
}

RT_TEST(concurrent_publishers_and_subscribers)
{
    rt_hub_t *hub = hub_with(TOTAL * 2, 64u << 20, 1000);
    static sub_arg_t subs[NSUBS];
    pub_arg_t pubs[NPUB];
    pthread_t st[NSUBS], pt[NPUB];
    atomic_int go;
    atomic_init(&go, 0);
    int64_t deadline = mono_ms() + 60000;
    for (int i = 0; i < NSUBS; i++) {
        memset(&subs[i], 0, sizeof(subs[i]));
        client_init(&subs[i].c, hub, RT_FMT_WS);
        sub_topics(hub, &subs[i].c, "hot", i % 2 ? "*" : "t", NULL);
        subs[i].deadline_ms = deadline;
        RT_ASSERT_INT_EQ(pthread_create(&st[i], NULL, sub_thread, &subs[i]), 0);
    }
    for (int i = 0; i < NPUB; i++) {
        pubs[i] = (pub_arg_t){hub, i, &go};
        RT_ASSERT_INT_EQ(pthread_create(&pt[i], NULL, pub_thread, &pubs[i]), 0);
    }
    atomic_store(&go, 1);
    for (int i = 0; i < NPUB; i++) {
        void *r;
        pthread_join(pt[i], &r);
        RT_ASSERT(r == NULL);
    }
    for (int i = 0; i < NSUBS; i++)
        pthread_join(st[i], NULL);
    for (int i = 0; i < NSUBS; i++) {
        if (subs[i].error)
            rt_test_fail(__FILE__, __LINE__, "subscriber %d: %s", i, subs[i].msg);
        RT_ASSERT_INT_EQ(subs[i].count, TOTAL);
        for (int k = 0; k < TOTAL; k++)
            RT_ASSERT_INT_EQ(subs[i].seen[k], 1);
        RT_ASSERT_INT_EQ(atomic_load(&subs[i].c.sink.kicks), 0);
    }
    rt_hub_stats_t s;
    rt_hub_stats(hub, &s);
    RT_ASSERT_INT_EQ(s.publishes, TOTAL);
    RT_ASSERT_INT_EQ(s.deliveries, (uint64_t)TOTAL * NSUBS);
    for (int i = 0; i < NSUBS; i++)
        client_done(hub, &subs[i].c);
    rt_hub_free(hub);
}

/* ---- idempotency keys ---- */

static int publish_key(rt_hub_t *hub, const char *channel, const char *topic, const char *key,
                       int64_t now, rt_pos_t *pos, bool *dup)
{
    rt_event_t ev = {.kind = "data",
                     .channel = rt_slice_cstr(channel),
                     .topic = rt_slice_cstr(topic),
                     .data = rt_slice_cstr("1"),
                     .created_at_ms = INT64_C(1700000000000)};
    size_t delivered = 999;
    int rc = rt_hub_publish_idem(hub, &ev, rt_slice_cstr(key), now, pos, &delivered, dup);
    if (rc == 0 && *dup)
        RT_ASSERT_INT_EQ(delivered, 0);
    return rc;
}

RT_TEST(idem_duplicate_within_window_only)
{
    rt_hub_opts_t o;
    rt_hub_opts_default(&o);
    o.idem_window_ms = 1000;
    rt_hub_t *hub = rt_hub_new(&o, 0x1234);
    rt_pos_t p1, p2, p3, p4;
    bool dup = true;
    RT_ASSERT_INT_EQ(publish_key(hub, "c", "t", "k1", 5000, &p1, &dup), 0);
    RT_ASSERT(!dup);
    RT_ASSERT_INT_EQ(publish_key(hub, "c", "t", "k1", 5999, &p2, &dup), 0);
    RT_ASSERT(dup);
    RT_ASSERT_INT_EQ(p2.epoch, p1.epoch);
    RT_ASSERT_INT_EQ(p2.offset, p1.offset);
    /* The key is scoped to (channel, topic). */
    RT_ASSERT_INT_EQ(publish_key(hub, "c", "u", "k1", 5999, &p3, &dup), 0);
    RT_ASSERT(!dup);
    RT_ASSERT_INT_EQ(p3.offset, p1.offset + 1);
    /* An empty key never deduplicates. */
    RT_ASSERT_INT_EQ(publish_key(hub, "c", "t", "", 5999, &p3, &dup), 0);
    RT_ASSERT(!dup);
    /* Past the window the key publishes again. */
    RT_ASSERT_INT_EQ(publish_key(hub, "c", "t", "k1", 6000, &p4, &dup), 0);
    RT_ASSERT(!dup);
    RT_ASSERT_INT_EQ(p4.offset, p3.offset + 1);
    rt_hub_stats_t s;
    rt_hub_stats(hub, &s);
    RT_ASSERT_INT_EQ(s.publishes, 4);
    rt_hub_free(hub);
}

RT_TEST(idem_long_key_outside_stack_buffer)
{
    rt_hub_t *hub = hub_default();
    char key[1500];
    memset(key, 'x', sizeof(key) - 1);
    key[sizeof(key) - 1] = 0;
    rt_pos_t p1, p2;
    bool dup = true;
    RT_ASSERT_INT_EQ(publish_key(hub, "c", "t", key, 1, &p1, &dup), 0);
    RT_ASSERT(!dup);
    RT_ASSERT_INT_EQ(publish_key(hub, "c", "t", key, 2, &p2, &dup), 0);
    RT_ASSERT(dup);
    RT_ASSERT_INT_EQ(p2.offset, p1.offset);
    rt_hub_free(hub);
}

RT_TEST(idem_key_bound_is_limit_until_keys_expire)
{
    rt_hub_opts_t o;
    rt_hub_opts_default(&o);
    o.idem_window_ms = 1000;
    o.idem_max_keys = 2;
    rt_hub_t *hub = rt_hub_new(&o, 0x1234);
    rt_pos_t p;
    bool dup;
    RT_ASSERT_INT_EQ(publish_key(hub, "c", "t", "a", 0, &p, &dup), 0);
    RT_ASSERT_INT_EQ(publish_key(hub, "c", "t", "b", 10, &p, &dup), 0);
    RT_ASSERT_INT_EQ(publish_key(hub, "c", "t", "c", 20, &p, &dup), RT_E_LIMIT);
    RT_ASSERT_INT_EQ(RT_E_LIMIT, -2); /* rt_bus and rt_api map this value */
    /* A key already held still deduplicates at the bound. */
    RT_ASSERT_INT_EQ(publish_key(hub, "c", "t", "a", 20, &p, &dup), 0);
    RT_ASSERT(dup);
    /* The bound is per channel. */
    RT_ASSERT_INT_EQ(publish_key(hub, "d", "t", "c", 20, &p, &dup), 0);
    RT_ASSERT(!dup);
    /* Once "a" expires, the bound purges it and admits a new key. */
    RT_ASSERT_INT_EQ(publish_key(hub, "c", "t", "c", 1000, &p, &dup), 0);
    RT_ASSERT(!dup);
    RT_ASSERT_INT_EQ(publish_key(hub, "c", "t", "d", 1000, &p, &dup), RT_E_LIMIT);
    rt_hub_stats_t s;
    rt_hub_stats(hub, &s);
    RT_ASSERT_INT_EQ(s.publishes, 4);
    rt_hub_free(hub);
}

/* ---- events positioned by a bus ---- */

static rt_frame_t *bus_frame(const char *channel, const char *topic, uint64_t epoch, uint64_t off)
{
    rt_event_t ev = {.kind = "data",
                     .channel = rt_slice_cstr(channel),
                     .topic = rt_slice_cstr(topic),
                     .data = rt_slice_cstr("1"),
                     .created_at_ms = INT64_C(1700000000000)};
    rt_pos_t pos = {epoch, off};
    size_t len;
    char *json = rt_event_json(&ev, &pos, &len);
    RT_ASSERT(json != NULL);
    rt_frame_t *f = rt_event_ws_frame(json, len);
    free(json);
    RT_ASSERT(f != NULL);
    return f;
}

static int bus_deliver(rt_hub_t *hub, const char *channel, const char *topic, uint64_t epoch,
                       uint64_t off, size_t *delivered)
{
    rt_frame_t *f = bus_frame(channel, topic, epoch, off);
    rt_hub_entry_t e = {.offset = off, .topic = rt_slice_cstr(topic), .ws = f};
    int rc = rt_hub_deliver(hub, rt_slice_cstr(channel), epoch, &e, delivered);
    rt_frame_unref(f);
    return rc;
}

RT_TEST(deliver_drops_duplicates_and_follows_epoch)
{
    rt_hub_t *hub = hub_default();
    client_t a;
    client_init(&a, hub, RT_FMT_WS);
    sub_topics(hub, &a, "c", "t", NULL);
    size_t d = 99;
    RT_ASSERT_INT_EQ(bus_deliver(hub, "c", "t", 7, 1, &d), 0);
    RT_ASSERT_INT_EQ(d, 1);
    RT_ASSERT_INT_EQ(bus_deliver(hub, "c", "t", 7, 2, &d), 0);
    RT_ASSERT_INT_EQ(bus_deliver(hub, "c", "t", 7, 2, &d), 1); /* duplicate */
    RT_ASSERT_INT_EQ(d, 0);
    RT_ASSERT_INT_EQ(bus_deliver(hub, "c", "t", 7, 1, &d), 1); /* older */
    rt_pos_t last;
    RT_ASSERT_INT_EQ(rt_hub_last(hub, rt_slice_cstr("c"), &last), 0);
    RT_ASSERT_INT_EQ(last.epoch, 7);
    RT_ASSERT_INT_EQ(last.offset, 2);
    rt_hub_stats_t s;
    rt_hub_stats(hub, &s);
    RT_ASSERT_INT_EQ(s.history_events, 2);
    /* A new epoch forgets the ring: offset 1 of it is delivered. */
    RT_ASSERT_INT_EQ(bus_deliver(hub, "c", "t", 8, 1, &d), 0);
    RT_ASSERT_INT_EQ(d, 1);
    rt_hub_stats(hub, &s);
    RT_ASSERT_INT_EQ(s.history_events, 1);
    RT_ASSERT_INT_EQ(rt_hub_last(hub, rt_slice_cstr("nope"), &last), RT_E_ABSENT);
    rt_frame_t *f[8];
    size_t n = drain(a.sub, f, 8);
    RT_ASSERT_INT_EQ(n, 3);
    assert_frame(f[0], "t", (rt_pos_t){7, 1});
    assert_frame(f[1], "t", (rt_pos_t){7, 2});
    assert_frame(f[2], "t", (rt_pos_t){8, 1});
    unref_all(f, n);
    client_done(hub, &a);
    rt_hub_free(hub);
}

RT_TEST(subscribe_backfill_joins_bus_replay_and_live)
{
    rt_hub_t *hub = hub_default();
    client_t a, b;
    client_init(&a, hub, RT_FMT_WS);
    client_init(&b, hub, RT_FMT_WS);
    sub_topics(hub, &a, "c", "*", NULL);
    /* Live so far: 1, 2. The bus read found 1..4 (3 and 4 not yet live). */
    RT_ASSERT_INT_EQ(bus_deliver(hub, "c", "t", 9, 1, NULL), 0);
    RT_ASSERT_INT_EQ(bus_deliver(hub, "c", "u", 9, 2, NULL), 0);
    rt_frame_t *bfv[4];
    rt_hub_entry_t ev[4];
    const char *topics[4] = {"t", "u", "t", "t"};
    for (int i = 0; i < 4; i++) {
        bfv[i] = bus_frame("c", topics[i], 9, (uint64_t)i + 1);
        ev[i] = (rt_hub_entry_t){
            .offset = (uint64_t)i + 1, .topic = rt_slice_cstr(topics[i]), .ws = bfv[i]};
    }
    rt_backfill_t bf = {.epoch = 9,
                        .matched = true,
                        .since = 1,
                        .covered = true,
                        .last_offset = 4,
                        .v = ev,
                        .n = 4};
    rt_slice_t bt = rt_slice_cstr("t");
    rt_resume_t res;
    RT_ASSERT_INT_EQ(
        rt_hub_subscribe_backfill(hub, b.sub, rt_slice_cstr("c"), &bt, 1, true, &bf, &res), 0);
    RT_ASSERT(res.recovered);
    RT_ASSERT(res.had_since);
    RT_ASSERT_INT_EQ(res.replayed, 2); /* 3 and 4 of topic t; 2 is topic u */
    RT_ASSERT_INT_EQ(res.current.epoch, 9);
    RT_ASSERT_INT_EQ(res.current.offset, 4);
    for (int i = 0; i < 4; i++)
        rt_frame_unref(bfv[i]);
    /* The live copies of 3 and 4 arrive late: dropped; 5 goes to both. */
    RT_ASSERT_INT_EQ(bus_deliver(hub, "c", "t", 9, 3, NULL), 1);
    RT_ASSERT_INT_EQ(bus_deliver(hub, "c", "t", 9, 4, NULL), 1);
    RT_ASSERT_INT_EQ(bus_deliver(hub, "c", "t", 9, 5, NULL), 0);
    rt_frame_t *f[8];
    size_t n = drain(a.sub, f, 8);
    RT_ASSERT_INT_EQ(n, 5);
    for (size_t i = 0; i < n; i++)
        assert_frame(f[i], topics[i < 4 ? i : 0], (rt_pos_t){9, i + 1});
    unref_all(f, n);
    n = drain(b.sub, f, 8);
    RT_ASSERT_INT_EQ(n, 3);
    assert_frame(f[0], "t", (rt_pos_t){9, 3});
    assert_frame(f[1], "t", (rt_pos_t){9, 4});
    assert_frame(f[2], "t", (rt_pos_t){9, 5});
    unref_all(f, n);
    /* A candidate of another epoch: not recovered, nothing replayed. */
    client_t c;
    client_init(&c, hub, RT_FMT_WS);
    rt_backfill_t miss = {.epoch = 9, .matched = false, .last_offset = 5};
    RT_ASSERT_INT_EQ(
        rt_hub_subscribe_backfill(hub, c.sub, rt_slice_cstr("c"), &bt, 1, true, &miss, &res), 0);
    RT_ASSERT(!res.recovered);
    RT_ASSERT_INT_EQ(res.replayed, 0);
    RT_ASSERT_INT_EQ(queued(c.sub), 0);
    client_done(hub, &a);
    client_done(hub, &b);
    client_done(hub, &c);
    rt_hub_free(hub);
}
