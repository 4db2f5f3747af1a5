/*
 * floor.c — the benchmark's floor: the least a WebSocket broadcast server can do.
 *
 * One thread, epoll. WebSocket subscribers connect to ws://HOST:WSPORT/<topic>;
 * the 101 means subscribed. A publisher connects to the TCP port PUBPORT and
 * sends lines "PUB <topic> <payload>\n"; the floor frames the payload once
 * (text frame, unmasked) and send()s the same bytes to every subscriber of the
 * topic, then answers "+<n>\n" (n = sockets written). A socket that cannot take
 * a frame whole gets the rest buffered (capped at 8 MiB, then closed), so one
 * stuck reader never blocks the others. Pings from clients are answered; nothing
 * else is parsed. No auth, no JSON, no history: this is what rtgw is measured
 * against.
 *
 *   bench_floor [WSPORT [PUBPORT [HOST]]]      (defaults 18090 18091 127.0.0.1)
 */
#define _GNU_SOURCE
#include "peer_ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define OUT_CAP_MAX (8u << 20)

/* ---- connections and topics ---- */
enum { K_LISTEN_WS, K_LISTEN_PUB, K_WS_HS, K_WS, K_PUB };

typedef struct topic_s topic_t;
typedef struct {
    int fd, kind;
    char *in; /* handshake / publish line / client frame bytes */
    size_t inlen, incap;
    char *out; /* bytes a full socket could not take */
    size_t outlen, outoff, outcap;
    topic_t *topic;
    size_t topic_idx;
} conn_t;

struct topic_s {
    char *name;
    conn_t **subs;
    size_t n, cap;
    topic_t *next;
};

static conn_t **conns; /* by fd */
static size_t nconns_cap;
static topic_t *buckets[65536];
static int epfd;

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

static void topic_add(topic_t *t, conn_t *c)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->subs = realloc(t->subs, t->cap * sizeof(*t->subs));
    }
    c->topic = t;
    c->topic_idx = t->n;
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
    free(c->out);
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

/* Send bytes, buffering what the socket cannot take. Returns -1 to close. */
static int conn_send(conn_t *c, const char *p, size_t n)
{
    if (c->outlen == c->outoff) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w == (ssize_t)n)
            return 0;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (w < 0)
            w = 0;
        p += w;
        n -= (size_t)w;
        c->outlen = c->outoff = 0;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.fd = c->fd};
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    }
    if (c->outlen + n > OUT_CAP_MAX)
        return -1;
    if (c->outlen + n > c->outcap) {
        size_t nc = c->outcap ? c->outcap : 4096;
        while (nc < c->outlen + n)
            nc *= 2;
        c->out = realloc(c->out, nc);
        c->outcap = nc;
    }
    memcpy(c->out + c->outlen, p, n);
    c->outlen += n;
    return 0;
}

static int conn_flush(conn_t *c)
{
    while (c->outoff < c->outlen) {
        ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (w < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        c->outoff += (size_t)w;
    }
    c->outlen = c->outoff = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = c->fd};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    return 0;
}

static int ws_handshake(conn_t *c)
{
    char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
    if (!end)
        return c->inlen > 16384 ? -1 : 0;
    const char *path;
    size_t plen;
    char resp[256];
    int n = peer_ws_upgrade(c->in, c->inlen, &path, &plen, resp, sizeof(resp));
    if (n < 0)
        return -1;
    topic_add(topic_get(path, plen, 1), c);
    in_consume(c, (size_t)(end + 4 - c->in));
    c->kind = K_WS;
    return conn_send(c, resp, (size_t)n);
}

/* Client frames: answer ping, close on close, ignore the rest. */
static int ws_client_frames(conn_t *c)
{
    for (;;) {
        if (c->inlen < 2)
            return 0;
        uint8_t *p = (uint8_t *)c->in;
        uint8_t op = p[0] & 15;
        size_t len = p[1] & 127, hl = 2;
        if (len == 126) {
            if (c->inlen < 4)
                return 0;
            len = (size_t)p[2] << 8 | p[3];
            hl = 4;
        } else if (len == 127) {
            return -1;
        }
        int masked = p[1] & 128;
        if (masked)
            hl += 4;
        if (c->inlen < hl + len)
            return 0;
        if (op == 8)
            return -1;
        if (op == 9) {
            uint8_t out[130];
            size_t oh = peer_frame_header(out, 10, len);
            for (size_t i = 0; i < len && i < 125; i++)
                out[oh + i] = p[hl + i] ^ (masked ? p[hl - 4 + (i & 3)] : 0);
            if (conn_send(c, (char *)out, oh + len) != 0)
                return -1;
        }
        in_consume(c, hl + len);
    }
}

static char *frame_buf;
static size_t frame_cap;

static int pub_lines(conn_t *c)
{
    for (;;) {
        char *nl = memchr(c->in, '\n', c->inlen);
        if (!nl)
            return c->inlen > (1u << 20) - 1 ? -1 : 0;
        size_t linelen = (size_t)(nl - c->in);
        int written = 0;
        if (linelen > 4 && memcmp(c->in, "PUB ", 4) == 0) {
            char *topic = c->in + 4;
            char *sp = memchr(topic, ' ', linelen - 4);
            size_t tlen = sp ? (size_t)(sp - topic) : linelen - 4;
            const char *payload = sp ? sp + 1 : nl;
            size_t plen = (size_t)(nl - payload);
            topic_t *t = topic_get(topic, tlen, 0);
            if (t && t->n) {
                if (frame_cap < plen + 10) {
                    frame_cap = plen + 10;
                    frame_buf = realloc(frame_buf, frame_cap);
                }
                size_t hl = peer_frame_header((uint8_t *)frame_buf, 1, plen);
                memcpy(frame_buf + hl, payload, plen);
                for (size_t i = 0; i < t->n;) {
                    conn_t *s = t->subs[i];
                    if (conn_send(s, frame_buf, hl + plen) != 0) {
                        conn_close(s); /* swaps the last subscriber into i */
                        continue;
                    }
                    written++;
                    i++;
                }
            }
        }
        char ack[32];
        int an = snprintf(ack, sizeof(ack), "+%d\n", written);
        in_consume(c, linelen + 1);
        if (conn_send(c, ack, (size_t)an) != 0)
            return -1;
    }
}

static volatile sig_atomic_t stop;
static void on_term(int s)
{
    (void)s;
    stop = 1;
}

int main(int argc, char **argv)
{
    int wsport = argc > 1 ? atoi(argv[1]) : 18090;
    int pubport = argc > 2 ? atoi(argv[2]) : 18091;
    const char *host = argc > 3 ? argv[3] : "127.0.0.1";
    peer_limits();
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    conn_add(peer_listen(host, wsport), K_LISTEN_WS, EPOLLIN);
    conn_add(peer_listen(host, pubport), K_LISTEN_PUB, EPOLLIN);
    printf("floor listening ws://%s:%d/<topic> pub tcp://%s:%d\n", host, wsport, host, pubport);
    fflush(stdout);
    static char rbuf[65536];
    struct epoll_event evs[256];
    while (!stop) {
        int n = epoll_wait(epfd, evs, 256, 500);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            conn_t *c = (size_t)fd < nconns_cap ? conns[fd] : NULL;
            if (!c)
                continue;
            if (c->kind == K_LISTEN_WS || c->kind == K_LISTEN_PUB) {
                for (;;) {
                    int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0)
                        break;
                    int one = 1;
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    conn_add(cfd, c->kind == K_LISTEN_WS ? K_WS_HS : K_PUB, EPOLLIN);
                }
                continue;
            }
            if (evs[i].events & EPOLLOUT) {
                if (conn_flush(c) != 0) {
                    conn_close(c);
                    continue;
                }
            }
            if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            ssize_t r = recv(fd, rbuf, sizeof(rbuf), 0);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                conn_close(c);
                continue;
            }
            if (r < 0)
                continue;
            int rc = in_append(c, rbuf, (size_t)r);
            if (rc == 0) {
                if (c->kind == K_WS_HS)
                    rc = ws_handshake(c);
                if (rc == 0 && c->kind == K_WS)
                    rc = ws_client_frames(c);
                else if (rc == 0 && c->kind == K_PUB)
                    rc = pub_lines(c);
            }
            if (rc != 0)
                conn_close(c);
        }
    }
    return 0;
}
