/*
 * worker.c — a function run that reports its lifecycle through rtgw with
 * rtgw_client: started, three steps, an answer streamed in chunks, finished.
 *
 *   RTGW_SIGNING_KEY=signkey-… ./worker-c [--url http://127.0.0.1:8288] [--channel user:42]
 *                                         [--topic ai] [--run-id run-1] [--delay-ms 200]
 *
 * Every lifecycle event carries run_id and fn_id, and an Idempotency-Key
 * (<run>-<event>), so a worker that retries after a timeout never publishes an
 * event twice. A browser subscribed to (channel, topic) with the rtgw.v1
 * subprotocol sees, in order: {"status":"started"}, {"status":"step","step":1..3},
 * datastream-start, chunk…, datastream-end, {"status":"finished"}.
 */
#include "rtgw_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *url, *key, *channel, *topic, *run_id;
    int delay_ms;
} worker_t;

static void nap(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Publish one lifecycle event; returns 0 or prints why and returns 1. */
static int emit(const worker_t *w, const char *what, const char *json)
{
    char idem[256];
    snprintf(idem, sizeof(idem), "%s-%s", w->run_id, what);
    rtc_publish_opts_t o = {.run_id = w->run_id, .fn_id = "worker-c", .idempotency_key = idem};
    rtc_publish_result_t r;
    int rc = rtc_publish(w->url, w->key, w->channel, w->topic, json, strlen(json), &o, &r);
    if (rc)
        fprintf(stderr, "worker: publishing %s failed: %s (%s)\n", what, r.error.name,
                r.error.message);
    else
        printf("worker: %-8s -> %s%s\n", what, r.ids_json ? r.ids_json : "[]",
               r.duplicate ? " (duplicate)" : "");
    rtc_publish_result_clear(&r);
    return rc ? 1 : 0;
}

/* The "model": yields the answer a few words at a time, like a token stream. */
typedef struct {
    const char *const *parts;
    size_t i, n;
    int delay_ms;
} answer_t;

static long next_part(char *buf, size_t cap, void *user)
{
    answer_t *a = user;
    if (a->i == a->n)
        return 0;
    if (a->i)
        nap(a->delay_ms / 4);
    size_t len = strlen(a->parts[a->i]);
    if (len > cap)
        len = cap;
    memcpy(buf, a->parts[a->i++], len);
    return (long)len;
}

int main(int argc, char **argv)
{
    worker_t w = {.url = "http://127.0.0.1:8288",
                  .key = getenv("RTGW_SIGNING_KEY"),
                  .channel = "user:42",
                  .topic = "ai",
                  .run_id = "run-1",
                  .delay_ms = 200};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--help") == 0) {
            printf("Usage: RTGW_SIGNING_KEY=signkey-… %s [--url URL] [--channel C] [--topic T] "
                   "[--run-id R] [--delay-ms MS]\n",
                   argv[0]);
            return 0;
        } else if (v && strcmp(argv[i], "--url") == 0) {
            w.url = v;
        } else if (v && strcmp(argv[i], "--channel") == 0) {
            w.channel = v;
        } else if (v && strcmp(argv[i], "--topic") == 0) {
            w.topic = v;
        } else if (v && strcmp(argv[i], "--run-id") == 0) {
            w.run_id = v;
        } else if (v && strcmp(argv[i], "--delay-ms") == 0) {
            w.delay_ms = atoi(v);
        } else {
            fprintf(stderr, "worker: unknown option '%s' (see --help)\n", argv[i]);
            return 2;
        }
        i++;
    }
    if (!w.key) {
        fprintf(stderr, "worker: set RTGW_SIGNING_KEY (the gateway's signing key)\n");
        return 2;
    }
    if (rtc_init() != 0)
        return 1;

    if (emit(&w, "started", "{\"status\":\"started\"}"))
        return 1;
    for (int step = 1; step <= 3; step++) {
        nap(w.delay_ms);
        char what[16], json[64];
        snprintf(what, sizeof(what), "step-%d", step);
        snprintf(json, sizeof(json), "{\"status\":\"step\",\"step\":%d}", step);
        if (emit(&w, what, json))
            return 1;
    }

    static const char *const parts[] = {"The answer ", "is ", "forty-", "two."};
    answer_t a = {parts, 0, sizeof(parts) / sizeof(parts[0]), w.delay_ms};
    rtc_publish_opts_t so = {.run_id = w.run_id, .fn_id = "worker-c"};
    rtc_publish_result_t r;
    int rc = rtc_publish_stream(w.url, w.key, w.channel, w.topic, next_part, &a, &so, &r);
    if (rc) {
        fprintf(stderr, "worker: streaming the answer failed: %s (%s)\n", r.error.name,
                r.error.message);
        rtc_publish_result_clear(&r);
        return 1;
    }
    printf("worker: stream   -> %s (%lld chunks, %lld bytes)\n", r.stream_id, r.chunks, r.bytes);
    rtc_publish_result_clear(&r);

    return emit(&w, "finished",
                "{\"status\":\"finished\",\"answer\":\"The answer is forty-two.\"}");
}
