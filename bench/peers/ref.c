/*
 * ref.c — the benchmark's coalescing reference: what a careful broadcast
 * server does, so every bench run has a truer ceiling than the floor.
 *
 * Speaks the floor's protocol (loadgen --proto floor): WebSocket subscribers
 * connect to ws://HOST:WSPORT/<topic> (the 101 means subscribed); a publisher
 * sends lines "PUB <topic> <payload>\n" on TCP PUBPORT and gets "+<n>\n" back.
 *
 * What it does differently from the floor:
 *   - one shared log per topic: a publish frames its payload once and appends
 *     the frame to the topic's byte log; each subscriber is a cursor into it;
 *   - acks on enqueue: "+<n>" (n = subscribers of the topic) is answered as
 *     soon as the frame is in the log, before any subscriber is written;
 *   - coalescing: a subscriber is served at most every TICK µs (default 2000),
 *     with one send() of everything between its cursor and the log's end;
 *   - backpressure by lag: a subscriber whose socket is full waits for EPOLLOUT;
 *     one more than 8 MiB behind the log's end is closed (as the floor does).
 * The log keeps the bytes from the slowest cursor on (trimmed after each pass).
 * Pings and other client frames are ignored (loadgen sends none); close closes.
 *
 * One thread, epoll, no locks. Every buffer belongs to its conn or topic and is
 * freed with it; topics live until exit.
 *
 *   bench_ref [WSPORT [PUBPORT [HOST [TICK_US]]]]  (defaults 18092 18093 127.0.0.1 2000)
 */
#define _GNU_SOURCE
#include "peer_ws.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LAG_MAX (8u << 20)

enum { K_LISTEN_WS, K_LISTEN_PUB, K_WS_HS, K_WS, K_PUB };

typedef struct topic_s topic_t;
typedef struct {
    int fd, kind;
    char *in; /* handshake / publish lines / client frames */
    size_t inlen, incap;
    topic_t *topic;
    size_t topic_idx;
    uint64_t cursor; /* subscriber: absolute log offset of the next byte to send */
    int blocked;     /* subscriber: socket full, waiting for EPOLLOUT */
} conn_t;

struct topic_s {
    char *name;
    conn_t **subs;
    size_t n, cap;
    char *log; /* bytes [base, base + len) of the topic's frame stream */
    uint64_t base;
    size_t len, logcap;
    int dirty; /* some subscriber may be behind the end */
    topic_t *next, *next_dirty;
};

static conn_t **conns; /* by fd */
static size_t nconns_cap;
static topic_t *buckets[65536];
static topic_t *dirty_list;
static int epfd;

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint32_t hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static topic_t *topic_get(const char *name, size_t n, int create)
{
    uint32_t b = hash(name, n) & 65535;
    for (topic_t *t = buckets[b]; t; t = t->next)
        if (strlen(t->name) == n && memcmp(t->name, name, n) == 0)
            return t;
    if (!create)
        return NULL;
    topic_t *t = calloc(1, sizeof(*t));
    t->name = strndup(name, n);
    t->next = buckets[b];
    buckets[b] = t;
    return t;
}

static void topic_mark(topic_t *t)
{
    if (t->dirty)
        return;
    t->dirty = 1;
    t->next_dirty = dirty_list;
    dirty_list = t;
}

static void topic_add(topic_t *t, conn_t *c)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->subs = realloc(t->subs, t->cap * sizeof(*t->subs));
    }
    c->topic = t;
    c->topic_idx = t->n;
    c->cursor = t->base + t->len; /* live from now on */
    t->subs[t->n++] = c;
}

static void topic_remove(conn_t *c)
{
    topic_t *t = c->topic;
    if (!t)
        return;
    t->subs[c->topic_idx] = t->subs[--t->n];
    t->subs[c->topic_idx]->topic_idx = c->topic_idx;
    c->topic = NULL;
}

/* Appends one frame to the log; returns -1 when out of memory. */
static int topic_append(topic_t *t, const uint8_t *hdr, size_t hl, const char *p, size_t n)
{
    if (t->len + hl + n > t->logcap) {
        size_t nc = t->logcap ? t->logcap : 4096;
        while (nc < t->len + hl + n)
            nc *= 2;
        char *nl = realloc(t->log, nc);
        if (!nl)
            return -1;
        t->log = nl;
        t->logcap = nc;
    }
    memcpy(t->log + t->len, hdr, hl);
    memcpy(t->log + t->len + hl, p, n);
    t->len += hl + n;
    topic_mark(t);
    return 0;
}

/* Drops the log's bytes every cursor has passed. */
static void topic_trim(topic_t *t, uint64_t min_cursor)
{
    size_t drop = (size_t)(min_cursor - t->base);
    if (!drop)
        return;
    memmove(t->log, t->log + drop, t->len - drop);
    t->len -= drop;
    t->base = min_cursor;
}

static conn_t *conn_add(int fd, int kind, uint32_t events)
{
    if ((size_t)fd >= nconns_cap) {
        size_t nc = nconns_cap ? nconns_cap : 1024;
        while (nc <= (size_t)fd)
            nc *= 2;
        conns = realloc(conns, nc * sizeof(*conns));
        memset(conns + nconns_cap, 0, (nc - nconns_cap) * sizeof(*conns));
        nconns_cap = nc;
    }
    conn_t *c = calloc(1, sizeof(*c));
    c->fd = fd;
    c->kind = kind;
    conns[fd] = c;
    struct epoll_event ev = {.events = events, .data.fd = fd};
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    return c;
}

static void conn_close(conn_t *c)
{
    topic_remove(c);
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    conns[c->fd] = NULL;
    free(c->in);
    free(c);
}

static int in_append(conn_t *c, const char *p, size_t n)
{
    if (c->inlen + n > c->incap) {
        size_t nc = c->incap ? c->incap : 1024;
        while (nc < c->inlen + n)
            nc *= 2;
        if (nc > (1u << 20))
            return -1;
        c->in = realloc(c->in, nc);
        c->incap = nc;
    }
    memcpy(c->in + c->inlen, p, n);
    c->inlen += n;
    return 0;
}

static void in_consume(conn_t *c, size_t n)
{
    memmove(c->in, c->in + n, c->inlen - n);
    c->inlen -= n;
}

/* Small replies (101, acks): written whole or the connection is closed. A
 * publisher that does not read its acks is not worth buffering for. */
static int send_whole(conn_t *c, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- the coalescing pass ---- */

/* One send() of everything pending; returns -1 to close the subscriber. */
static int sub_serve(conn_t *s, topic_t *t)
{
    size_t pending = (size_t)(t->base + t->len - s->cursor);
    if (!pending || s->blocked)
        return 0;
    if (pending > LAG_MAX)
        return -1;
    ssize_t w = send(s->fd, t->log + (s->cursor - t->base), pending, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        return -1;
    if (w > 0)
        s->cursor += (uint64_t)w;
    if (w < (ssize_t)pending) {
        s->blocked = 1;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.fd = s->fd};
        epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &ev);
    }
    return 0;
}

static void topic_serve(topic_t *t)
{
    uint64_t end = t->base + t->len, min_cursor = end;
    int behind = 0;
    for (size_t i = 0; i < t->n;) {
        conn_t *s = t->subs[i];
        if (sub_serve(s, t) != 0) {
            conn_close(s); /* swaps the last subscriber into i */
            continue;
        }
        if (s->cursor < min_cursor)
            min_cursor = s->cursor;
        behind |= s->cursor < end;
        i++;
    }
    topic_trim(t, min_cursor);
    if (behind) /* served again on the next pass (blocked ones after EPOLLOUT) */
        topic_mark(t);
}

static void serve_all(void)
{
    topic_t *list = dirty_list;
    dirty_list = NULL;
    while (list) {
        topic_t *t = list;
        list = t->next_dirty;
        t->dirty = 0;
        topic_serve(t);
    }
}

/* ---- input ---- */

static int ws_handshake(conn_t *c)
{
    char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
    if (!end)
        return c->inlen > 16384 ? -1 : 0;
    const char *path;
    size_t plen;
    char resp[256];
    int n = peer_ws_upgrade(c->in, c->inlen, &path, &plen, resp, sizeof(resp));
    if (n < 0 || send_whole(c, resp, (size_t)n) != 0)
        return -1;
    topic_add(topic_get(path, plen, 1), c);
    in_consume(c, (size_t)(end + 4 - c->in));
    c->kind = K_WS;
    return 0;
}

/* Client frames: close on close, ignore the rest. */
static int ws_client_frames(conn_t *c)
{
    for (;;) {
        if (c->inlen < 2)
            return 0;
        uint8_t *p = (uint8_t *)c->in;
        size_t len = p[1] & 127, hl = 2;
        if (len == 126) {
            if (c->inlen < 4)
                return 0;
            len = (size_t)p[2] << 8 | p[3];
            hl = 4;
        } else if (len == 127) {
            return -1;
        }
        if (p[1] & 128)
            hl += 4;
        if (c->inlen < hl + len)
            return 0;
        if ((p[0] & 15) == 8)
            return -1;
        in_consume(c, hl + len);
    }
}

static int pub_lines(conn_t *c)
{
    char acks[4096];
    size_t alen = 0;
    for (;;) {
        char *nl = memchr(c->in, '\n', c->inlen);
        if (!nl)
            break;
        size_t linelen = (size_t)(nl - c->in);
        size_t subs = 0;
        if (linelen > 4 && memcmp(c->in, "PUB ", 4) == 0) {
            char *topic = c->in + 4;
            char *sp = memchr(topic, ' ', linelen - 4);
            size_t tlen = sp ? (size_t)(sp - topic) : linelen - 4;
            const char *payload = sp ? sp + 1 : nl;
            size_t plen = (size_t)(nl - payload);
            topic_t *t = topic_get(topic, tlen, 0);
            if (t && t->n) {
                uint8_t hdr[10];
                size_t hl = peer_frame_header(hdr, 1, plen);
                if (topic_append(t, hdr, hl, payload, plen) != 0)
                    return -1;
                subs = t->n;
            }
        }
        in_consume(c, linelen + 1);
        if (alen + 24 > sizeof(acks)) {
            if (send_whole(c, acks, alen) != 0)
                return -1;
            alen = 0;
        }
        alen += (size_t)snprintf(acks + alen, sizeof(acks) - alen, "+%zu\n", subs);
    }
    if (alen && send_whole(c, acks, alen) != 0)
        return -1;
    return c->inlen > (1u << 20) - 1 ? -1 : 0;
}

static void on_event(struct epoll_event *e, char *rbuf, size_t rcap)
{
    int fd = e->data.fd;
    conn_t *c = (size_t)fd < nconns_cap ? conns[fd] : NULL;
    if (!c)
        return;
    if (c->kind == K_LISTEN_WS || c->kind == K_LISTEN_PUB) {
        for (;;) {
            int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (cfd < 0)
                break;
            int one = 1;
            setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            conn_add(cfd, c->kind == K_LISTEN_WS ? K_WS_HS : K_PUB, EPOLLIN);
        }
        return;
    }
    if ((e->events & EPOLLOUT) && c->blocked) {
        c->blocked = 0;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = c->fd};
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
        if (c->topic)
            topic_mark(c->topic);
    }
    if (!(e->events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    ssize_t r = recv(fd, rbuf, rcap, 0);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        conn_close(c);
        return;
    }
    if (r < 0)
        return;
    int rc = in_append(c, rbuf, (size_t)r);
    if (rc == 0 && c->kind == K_WS_HS)
        rc = ws_handshake(c);
    if (rc == 0 && c->kind == K_WS)
        rc = ws_client_frames(c);
    else if (rc == 0 && c->kind == K_PUB)
        rc = pub_lines(c);
    if (rc != 0)
        conn_close(c);
}

static volatile sig_atomic_t stop;
static void on_term(int s)
{
    (void)s;
    stop = 1;
}

int main(int argc, char **argv)
{
    int wsport = argc > 1 ? atoi(argv[1]) : 18092;
    int pubport = argc > 2 ? atoi(argv[2]) : 18093;
    const char *host = argc > 3 ? argv[3] : "127.0.0.1";
    int64_t tick_us = argc > 4 ? atoll(argv[4]) : 2000;
    peer_limits();
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    conn_add(peer_listen(host, wsport), K_LISTEN_WS, EPOLLIN);
    conn_add(peer_listen(host, pubport), K_LISTEN_PUB, EPOLLIN);
    printf("ref listening ws://%s:%d/<topic> pub tcp://%s:%d tick %lld us\n", host, wsport, host,
           pubport, (long long)tick_us);
    fflush(stdout);
    static char rbuf[65536];
    struct epoll_event evs[256];
    int64_t last_pass = 0;
    while (!stop) {
        int timeout = 500;
        if (dirty_list) {
            int64_t wait = last_pass + tick_us - mono_us();
            timeout = wait > 0 ? (int)((wait + 999) / 1000) : 0;
        }
        int n = epoll_wait(epfd, evs, 256, timeout);
        for (int i = 0; i < n; i++)
            on_event(&evs[i], rbuf, sizeof(rbuf));
        int64_t now = mono_us();
        if (dirty_list && now >= last_pass + tick_us) {
            last_pass = now;
            serve_all();
        }
    }
    return 0;
}
