/*
 * publish_stream.c — a streamed publish and its flusher thread (see
 * publish_stream.h).
 *
 * civetweb's mg_read on a chunked body keeps reading across HTTP chunks until
 * its buffer is full, so reading in blocks would hold a slow producer's tokens
 * back. The request thread therefore reads byte by byte into a small buffer,
 * and a flusher thread publishes whatever has arrived every
 * RT_STREAM_FLUSH_MS (and at 1 KiB), never splitting a UTF-8 sequence. Only
 * the flusher publishes chunks (and, after it has been joined, the request
 * thread's final flush), so their order is the byte order.
 *
 * Threads and locks: the request thread and the flusher share one stream_t
 * under its lock; the request thread owns it, joins the flusher and frees it.
 * The buffer is bounded (4 KiB): a full buffer makes the reader wait for the
 * flusher (backpressure on the producer).
 *
 * publish/tee reads its body the same way; its chunks are raw events on the
 * channel's RT_TEE_TOPIC (rt_api_publish_tee_chunk), with no start or end.
 */
#include "publish_stream.h"
#include "clock.h"
#include "http.h"

#include <civetweb.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RT_STREAM_FLUSH_MS 20
#define RT_STREAM_CHUNK 1024

typedef struct {
    rt_server_t *srv;
    const rt_publish_target_t *t;
    bool tee; /* publish/tee: raw chunks, no datastream-start/-end */
    char sid[16];
    pthread_mutex_t lock;
    pthread_cond_t cond; /* on the monotonic clock */
    char buf[4 * RT_STREAM_CHUNK];
    size_t len;
    bool done;
    int chunks;
    int64_t total;
} stream_t;

/* The length of buf[0..n)'s prefix that ends on a whole UTF-8 sequence
 * (an incomplete trailing sequence is held back). */
static size_t utf8_whole(const char *buf, size_t n)
{
    size_t i = n;
    while (i > 0 && n - i < 3 && ((unsigned char)buf[i - 1] & 0xC0) == 0x80)
        i--;
    if (i > 0) {
        unsigned char lead = (unsigned char)buf[i - 1];
        size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
        if (n - (i - 1) < need)
            return i - 1;
    }
    return n;
}

/* Publish buf's complete UTF-8 prefix (all of it when final). Lock held. */
static void stream_flush_locked(stream_t *st, bool final)
{
    while (st->len) {
        size_t n = st->len < RT_STREAM_CHUNK ? st->len : RT_STREAM_CHUNK;
        if (!final || n < st->len) {
            n = utf8_whole(st->buf, n);
            if (n == 0)
                return;
        }
        int rc =
            st->tee ? rt_api_publish_tee_chunk(&st->srv->api, st->t, st->buf, n, rt_clock_wall_ms())
                    : rt_api_publish_stream_event(&st->srv->api, st->t, "chunk", st->sid, st->buf,
                                                  n, rt_clock_wall_ms());
        if (rc == 0) {
            st->chunks++;
            st->total += (int64_t)n;
        }
        memmove(st->buf, st->buf + n, st->len - n);
        st->len -= n;
        if (!final && st->len < RT_STREAM_CHUNK)
            break;
    }
    pthread_cond_broadcast(&st->cond);
}

static void *stream_flusher(void *arg)
{
    stream_t *st = arg;
    pthread_mutex_lock(&st->lock);
    while (!st->done) {
        int64_t at = rt_clock_mono_ms() + RT_STREAM_FLUSH_MS;
        struct timespec ts = {.tv_sec = at / 1000, .tv_nsec = (long)(at % 1000) * 1000000L};
        pthread_cond_timedwait(&st->cond, &st->lock, &ts);
        if (!st->done)
            stream_flush_locked(st, false);
    }
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

static stream_t *stream_new(rt_server_t *srv, const rt_publish_target_t *t)
{
    stream_t *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->srv = srv;
    st->t = t;
    unsigned char rnd[9];
    randombytes_buf(rnd, sizeof(rnd));
    rt_b64url_encode(rnd, sizeof(rnd), st->sid, sizeof(st->sid));
    pthread_mutex_init(&st->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->cond, &ca);
    pthread_condattr_destroy(&ca);
    return st;
}

static void stream_free(stream_t *st)
{
    pthread_cond_destroy(&st->cond);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

/* How reading the body ended. */
typedef enum { BODY_END, BODY_TOO_LARGE, BODY_FAILED } body_end_t;

/* Read the body byte by byte into st->buf until it ends or passes limit. */
static body_end_t stream_read(stream_t *st, struct mg_connection *conn, int64_t limit,
                              bool threaded)
{
    int64_t read_total = 0;
    for (;;) {
        char c;
        int n = mg_read(conn, &c, 1);
        if (n <= 0)
            return n < 0 ? BODY_FAILED : BODY_END;
        if (++read_total > limit)
            return BODY_TOO_LARGE;
        pthread_mutex_lock(&st->lock);
        while (st->len == sizeof(st->buf)) { /* backpressure: wait for the flusher */
            if (threaded)
                pthread_cond_wait(&st->cond, &st->lock);
            else
                stream_flush_locked(st, false);
        }
        st->buf[st->len++] = c;
        if (st->len >= RT_STREAM_CHUNK)
            pthread_cond_broadcast(&st->cond);
        pthread_mutex_unlock(&st->lock);
    }
}

static void stream_answer(stream_t *st, struct mg_connection *conn, body_end_t end, int64_t limit)
{
    if (st->tee && end == BODY_END) {
        char resp[96];
        int rl = snprintf(resp, sizeof(resp), "{\"ok\":true,\"chunks\":%d,\"bytes\":%lld}",
                          st->chunks, (long long)st->total);
        rt__send_json(conn, 200, resp, (size_t)rl, NULL);
        return;
    }
    if (end == BODY_TOO_LARGE) {
        rt__send_error(
            conn, 413, "body_too_large",
            "a streamed body may carry at most %lld bytes (64 x RTGW_MAX_BODY_BYTES); the stream "
            "was ended after %d chunks",
            (long long)limit, st->chunks);
    } else if (end == BODY_FAILED) {
        rt__send_error(conn, 400, "bad_request",
                       "the streamed body ended abnormally after %d chunks", st->chunks);
    } else {
        char resp[160];
        int rl = snprintf(resp, sizeof(resp),
                          "{\"ok\":true,\"stream_id\":\"%s\",\"chunks\":%d,\"bytes\":%lld}",
                          st->sid, st->chunks, (long long)st->total);
        rt__send_json(conn, 200, resp, (size_t)rl, NULL);
    }
}

/* Read conn's body through st (the flusher publishes it), then answer. */
static void stream_body(rt_server_t *srv, struct mg_connection *conn, stream_t *st)
{
    pthread_t flusher;
    bool threaded = pthread_create(&flusher, NULL, stream_flusher, st) == 0;
    int64_t limit = srv->cfg->max_body_bytes * 64;
    body_end_t end = stream_read(st, conn, limit, threaded);
    pthread_mutex_lock(&st->lock);
    st->done = true;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
    if (threaded)
        pthread_join(flusher, NULL);
    stream_flush_locked(st, true);
    if (!st->tee)
        rt_api_publish_stream_event(&srv->api, st->t, "datastream-end", st->sid, st->sid,
                                    strlen(st->sid), rt_clock_wall_ms());
    stream_answer(st, conn, end, limit);
}

/* A streamed publish (tee false: between datastream-start and -end) or a
 * publish/tee (raw chunks) of conn's body to t. */
static void stream_run(rt_server_t *srv, struct mg_connection *conn, const rt_publish_target_t *t,
                       bool tee)
{
    if (rt__expect_continue(conn) != 0)
        return;
    stream_t *st = stream_new(srv, t);
    if (!st) {
        rt__send_error(conn, 500, "internal_error", "out of memory");
        return;
    }
    st->tee = tee;
    if (!tee)
        rt_api_publish_stream_event(&srv->api, t, "datastream-start", st->sid, st->sid,
                                    strlen(st->sid), rt_clock_wall_ms());
    stream_body(srv, conn, st);
    stream_free(st);
}

void rt__publish_stream(rt_server_t *srv, struct mg_connection *conn, const rt_publish_target_t *t)
{
    stream_run(srv, conn, t, false);
}

void rt__publish_tee(rt_server_t *srv, struct mg_connection *conn, const rt_publish_target_t *t)
{
    stream_run(srv, conn, t, true);
}
