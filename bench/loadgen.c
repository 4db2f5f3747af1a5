/*
 * loadgen.c — rtgw's load generator: one process, one thread, epoll, non-blocking.
 *
 * Opens thousands of WebSocket subscribers (spread over 127.0.0.x source
 * addresses so the ephemeral ports of one address do not run out), then
 * publishes at a fixed rate (latency, coordinated-omission corrected: each
 * payload carries its *intended* send time) or as fast as acknowledgements
 * and a delivery window allow (throughput). Every payload is JSON carrying
 * {"t":topic,"seq":n,"ts":monotonic ns}; each subscriber checks its topic's
 * sequence for gaps, duplicates and reordering. Samples the server's CPU
 * time (utime+stime) and RSS from /proc/<pid>. Prints one line:
 *   RESULT key=value ...
 * which bench/run.sh turns into the table.
 *
 * Protocols (--proto):
 *   rtgw   WS /v1/realtime/connect?token=… (token minted offline with rt_tokens,
 *          or per connection with POST /v1/realtime/token: --mint-http);
 *          publish POST /v1/realtime/publish?channel=bench-<t>&topic=m (keep-alive)
 *   node   WS /ws + {"type":"JOIN_PROJECT"}; publish POST /broadcast
 *   floor  WS /t<t>; publish "PUB t<t> <payload>\n" on a TCP line socket
 *   nats   WS (nats-server websocket listener), lg_nats.c; publish PUB+PING over TCP
 *   mqtt   WS subprotocol mqtt (mosquitto), lg_mqtt.c; publish QoS1 over TCP
 */
#define _GNU_SOURCE
#include "loadgen.h"
#include "rt_tokens.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum { P_RTGW, P_NODE, P_FLOOR, P_NATS, P_MQTT };
static const char *proto_names[] = {"rtgw", "node", "floor", "nats", "mqtt"};
enum { K_SUB, K_PUB, K_MINT, K_TIMER };
enum { S_IDLE, S_MINTING, S_CONNECTING, S_HS, S_WAITSUB, S_SUBSCRIBED, S_FAILED, S_CLOSED };

struct lg_conn {
    int fd;
    uint8_t kind, state;
    bool stuck, busy, ever_subscribed;
    uint32_t outstanding; /* publisher: requests sent, not yet acknowledged */
    uint32_t idx, topic;
    lg_buf_t in, stream;
    uint64_t last_seq;
    uint64_t recv, missing, dup, ooo;
    bool got_probe;
    char *token;
    lg_conn_t *mint_for;
    int64_t t_start;
};

/* ---- options ---- */
static int proto = P_RTGW;
static const char *host = "127.0.0.1";
static int ws_port = 8288, pub_port = 8288;
/* --ws-port P1,P2,…: subscriber i connects to ws_ports[i % nws_ports] (several nodes) */
static int ws_ports[16];
static uint32_t nws_ports;
static uint32_t nsubs = 1000, ntopics = 1;
static double rate = 0;
static double duration = 0, idle_secs = 0;
static uint32_t max_out = 0;
static uint32_t window = 32, npub = 0, payload_bytes = 128, concurrency = 200, nsrc = 50;
static double stuck_pct = 0;
static bool capacity_mode = false, mint_http = false;
static const char *signing_key = NULL;
static int server_pid = 0;
/* --server-pid A,B,…: CPU and RSS are summed over these processes (several nodes) */
static int server_pids[16];
static uint32_t nserver_pids;
/* --topic-base B: rtgw channels are bench-<B + t> (several load generators, one channel each) */
static uint32_t topic_base;
static const char *label = "";
static double connect_limit_s = 120;
static uint32_t mint_conns = 8;

/* ---- state ---- */
static int epfd, timer_fd;
static lg_conn_t *subs;
static lg_conn_t *pubs;
static lg_conn_t *mints;
static lg_conn_t timer_conn = {.kind = K_TIMER};
static int64_t now_ns;
static char *rbuf;
static const size_t rbuf_cap = 4u << 20;

static uint32_t next_sub, inflight, nsubscribed, nfailed, consecutive_fail, nclosed_readers;
static uint32_t nstuck, nreaders_open, stuck_closed;
static bool stop_launching;
static int64_t connect_t0, connect_t1;

static uint64_t *pub_seq; /* per topic: last seq published */
static uint64_t sent, acked, pub_errors, count_limit;
static bool publishing;
static int64_t pub_t0, measure_t0, measure_t1;
static uint64_t deliveries_measured, deliveries_total, unparsed;
static uint32_t *recv_cnt;   /* S1 delivery window ring */
static uint64_t win_low = 1; /* lowest seq not yet received by every reader */
static int64_t win_blocked_since;
static uint64_t win_stalls;
static uint32_t pub_rr;
static char first_error[256];

static rt_keyring_t *ring;
static rt_token_opts_t topts;

/* latency histogram: 64 linear sub-buckets per power of two (~1.6% error) */
#define HBUCKETS (64 * 48)
static uint64_t hist[HBUCKETS], hist_n, hist_max;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int hidx(uint64_t v)
{
    if (v < 64)
        return (int)v;
    int e = 63 - __builtin_clzll(v);
    int i = (e - 5) * 64 + (int)((v >> (e - 6)) & 63);
    return i < HBUCKETS ? i : HBUCKETS - 1;
}

static uint64_t hval(int i)
{
    if (i < 64)
        return (uint64_t)i;
    int e = i / 64 + 5;
    return ((uint64_t)64 + (uint64_t)(i % 64)) << (e - 6);
}

static void hist_add(int64_t v)
{
    if (v < 0)
        v = 0;
    hist[hidx((uint64_t)v)]++;
    hist_n++;
    if ((uint64_t)v > hist_max)
        hist_max = (uint64_t)v;
}

static double hist_pct(double p)
{
    if (!hist_n)
        return 0;
    uint64_t want = (uint64_t)(p / 100.0 * (double)hist_n);
    if (want >= hist_n)
        want = hist_n - 1;
    uint64_t acc = 0;
    for (int i = 0; i < HBUCKETS; i++) {
        acc += hist[i];
        if (acc > want)
            return (double)hval(i) / 1000.0;
    }
    return (double)hist_max / 1000.0;
}

/* ---- /proc sampling ---- */
static double proc1_cpu_s(int pid)
{
    if (pid <= 0)
        return 0;
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    p += 2;
    unsigned long long ut = 0, st = 0;
    for (int field = 3; field < 14 && p; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (!p || sscanf(p, "%llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long proc1_rss_kib(int pid)
{
    if (pid <= 0)
        return 0;
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    long v = 0;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = atol(line + 6);
    fclose(f);
    return v;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* ---- buffers ---- */
lg_buf_t *lg_stream(lg_conn_t *c)
{
    return &c->stream;
}

void lg_buf_append(lg_buf_t *b, const char *p, size_t n)
{
    if (!n)
        return;
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) {
            fprintf(stderr, "loadgen: out of memory\n");
            exit(1);
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void lg_buf_consume(lg_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        if (b->cap > 65536) {
            free(b->p);
            b->p = NULL;
            b->cap = 0;
        }
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

void lg_buf_free(lg_buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

uint32_t lg_sub_index(const lg_conn_t *c)
{
    return c->idx;
}
uint32_t lg_sub_topic(const lg_conn_t *c)
{
    return c->topic;
}

/* ---- sending ---- */
static int send_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    int spins = 0;
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0) {
            if ((errno == EAGAIN || errno == EWOULDBLOCK) && ++spins < 100000)
                continue; /* small control writes only: never expected to block */
            return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

int lg_tcp_send(lg_conn_t *c, const void *p, size_t n)
{
    return send_all(c->fd, p, n);
}

int lg_ws_send(lg_conn_t *c, int opcode, const void *p, size_t n)
{
    char buf[1024];
    if (n + 14 > sizeof(buf))
        return -1;
    size_t h = 0;
    buf[h++] = (char)(0x80 | opcode);
    if (n < 126) {
        buf[h++] = (char)(0x80 | n);
    } else {
        buf[h++] = (char)(0x80 | 126);
        buf[h++] = (char)(n >> 8);
        buf[h++] = (char)n;
    }
    memset(buf + h, 0, 4); /* mask key 0: masked as RFC 6455 requires, bytes unchanged */
    h += 4;
    memcpy(buf + h, p, n);
    return send_all(c->fd, buf, h + n);
}

/* ---- epoll ---- */
static void ep_set(lg_conn_t *c, uint32_t events, int op)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(epfd, op, c->fd, &ev);
}

/* ---- subscribers ---- */
static void launch(void);

static void sub_done_connecting(lg_conn_t *c, bool ok)
{
    if (inflight)
        inflight--;
    if (ok) {
        nsubscribed++;
        consecutive_fail = 0;
    } else {
        nfailed++;
        consecutive_fail++;
        if (capacity_mode && consecutive_fail >= 100)
            stop_launching = true;
    }
    (void)c;
}

void lg_subscribed(lg_conn_t *c)
{
    if (c->state == S_SUBSCRIBED)
        return;
    c->state = S_SUBSCRIBED;
    c->ever_subscribed = true;
    if (c->stuck) {
        nstuck++;
        ep_set(c, 0, EPOLL_CTL_MOD); /* never read again */
    } else {
        nreaders_open++;
    }
    sub_done_connecting(c, true);
}

static void sub_close(lg_conn_t *c, bool failed)
{
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    if (c->state == S_SUBSCRIBED) {
        if (c->stuck)
            stuck_closed++;
        else {
            nclosed_readers++;
            if (nreaders_open)
                nreaders_open--;
        }
        c->state = S_CLOSED;
    } else if (c->state != S_CLOSED && c->state != S_FAILED) {
        if (!first_error[0])
            snprintf(first_error, sizeof(first_error),
                     "closed by the server before subscribed (%s)",
                     c->state == S_HS        ? "handshake sent"
                     : c->state == S_WAITSUB ? "waiting for the subscription ack"
                                             : "connecting");
        c->state = S_FAILED;
        (void)failed;
        sub_done_connecting(c, false);
    }
    lg_buf_free(&c->in);
    lg_buf_free(&c->stream);
}

static void window_advance(void)
{
    while (win_low <= sent && recv_cnt[win_low & 4095] >= nreaders_open) {
        recv_cnt[win_low & 4095] = 0;
        win_low++;
        win_blocked_since = 0;
    }
}

void lg_event(lg_conn_t *c, const char *p, size_t n)
{
    const char *s = memmem(p, n, "\"seq\":", 6);
    const char *t = memmem(p, n, "\"ts\":", 5);
    if (!s || !t) {
        unparsed++;
        return;
    }
    uint64_t seq = strtoull(s + 6, NULL, 10);
    int64_t ts = strtoll(t + 5, NULL, 10);
    c->recv++;
    deliveries_total++;
    if (capacity_mode)
        c->got_probe = true;
    if (seq == c->last_seq + 1) {
        c->last_seq = seq;
    } else if (seq > c->last_seq + 1) {
        c->missing += seq - c->last_seq - 1;
        c->last_seq = seq;
    } else if (seq == c->last_seq) {
        c->dup++;
    } else {
        c->ooo++;
        if (c->missing)
            c->missing--; /* a late arrival of a message counted missing */
    }
    if (now_ns >= measure_t0 && measure_t0 && (measure_t1 == 0 || now_ns < measure_t1))
        deliveries_measured++;
    if (ts >= measure_t0 && measure_t0 && (measure_t1 == 0 || ts < measure_t1))
        hist_add(now_ns - ts);
    if (ntopics == 1 && rate == 0 && seq >= win_low && seq <= sent) {
        recv_cnt[seq & 4095]++;
        if (seq == win_low)
            window_advance();
    }
}

static void sub_ws_message(lg_conn_t *c, int op, const char *p, size_t n)
{
    switch (proto) {
    case P_NATS:
        if (nats_sub_data(c, p, n) != 0)
            sub_close(c, true);
        return;
    case P_MQTT:
        if (mqtt_sub_data(c, p, n) != 0)
            sub_close(c, true);
        return;
    case P_NODE:
        if (c->state == S_WAITSUB) {
            if (memmem(p, n, "PROJECT_JOINED", 14))
                lg_subscribed(c);
            return;
        }
        lg_event(c, p, n);
        return;
    default:
        (void)op;
        lg_event(c, p, n);
    }
}

/* Parse frames; returns bytes consumed, or -1 to close. */
static long sub_frames(lg_conn_t *c, char *p, size_t n)
{
    size_t off = 0;
    while (n - off >= 2) {
        uint8_t *h = (uint8_t *)p + off;
        int op = h[0] & 15;
        uint64_t len = h[1] & 127;
        size_t hl = 2;
        if (len == 126) {
            if (n - off < 4)
                break;
            len = (uint64_t)h[2] << 8 | h[3];
            hl = 4;
        } else if (len == 127) {
            if (n - off < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | h[2 + i];
            hl = 10;
        }
        if (h[1] & 128)
            hl += 4;
        if (n - off < hl + len)
            break;
        char *pl = p + off + hl;
        if (op == 8)
            return -1;
        if (op == 9)
            lg_ws_send(c, 10, pl, (size_t)len);
        else if (op <= 2)
            sub_ws_message(c, op, pl, (size_t)len);
        if (c->fd < 0)
            return -1;
        off += hl + (size_t)len;
    }
    return (long)off;
}

static void sub_handshake_reply(lg_conn_t *c, char *p, size_t n, size_t *used)
{
    *used = 0;
    char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end)
        return;
    *used = (size_t)(end + 4 - p);
    if (n < 12 || memcmp(p + 9, "101", 3) != 0) {
        if (!first_error[0])
            snprintf(first_error, sizeof(first_error), "upgrade refused: %.*s",
                     (int)(strcspn(p, "\r\n") < 120 ? strcspn(p, "\r\n") : 120), p);
        sub_close(c, true);
        return;
    }
    free(c->token);
    c->token = NULL;
    switch (proto) {
    case P_RTGW:
    case P_FLOOR:
        lg_subscribed(c);
        break;
    case P_NODE: {
        char msg[96];
        int m = snprintf(msg, sizeof(msg), "{\"type\":\"JOIN_PROJECT\",\"projectId\":\"p%u\"}",
                         c->topic);
        c->state = S_WAITSUB;
        lg_ws_send(c, 1, msg, (size_t)m);
        break;
    }
    case P_NATS:
        c->state = S_WAITSUB;
        nats_sub_open(c);
        break;
    case P_MQTT:
        c->state = S_WAITSUB;
        mqtt_sub_open(c);
        break;
    }
}

static void sub_readable(lg_conn_t *c)
{
    size_t have = c->in.len;
    if (have)
        memcpy(rbuf, c->in.p, have);
    c->in.len = 0;
    ssize_t r = recv(c->fd, rbuf + have, rbuf_cap - have, 0);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        sub_close(c, true);
        return;
    }
    if (r < 0) {
        lg_buf_append(&c->in, rbuf, have);
        return;
    }
    now_ns = mono_ns();
    size_t n = have + (size_t)r, off = 0;
    if (c->state == S_HS) {
        size_t used;
        sub_handshake_reply(c, rbuf, n, &used);
        if (c->fd < 0)
            return;
        if (!used) {
            lg_buf_append(&c->in, rbuf, n);
            return;
        }
        off = used;
    }
    long k = sub_frames(c, rbuf + off, n - off);
    if (k < 0) {
        if (c->fd >= 0)
            sub_close(c, true);
        return;
    }
    off += (size_t)k;
    if (c->fd >= 0)
        lg_buf_append(&c->in, rbuf + off, n - off);
}

/* Sums over --server-pid's list (one pid unless several nodes are measured). */
static double proc_cpu_s(int pid)
{
    if (nserver_pids < 2)
        return proc1_cpu_s(pid);
    double t = 0;
    for (uint32_t i = 0; i < nserver_pids; i++)
        t += proc1_cpu_s(server_pids[i]);
    return t;
}

static long proc_rss_kib(int pid)
{
    if (nserver_pids < 2)
        return proc1_rss_kib(pid);
    long t = 0;
    for (uint32_t i = 0; i < nserver_pids; i++)
        t += proc1_rss_kib(server_pids[i]);
    return t;
}

static int sub_port(const lg_conn_t *c)
{
    return nws_ports > 1 ? ws_ports[c->idx % nws_ports] : ws_port;
}

static void sub_send_handshake(lg_conn_t *c)
{
    char req[9000];
    char path[8300];
    const char *extra = "";
    switch (proto) {
    case P_RTGW:
        snprintf(path, sizeof(path), "/v1/realtime/connect?token=%s", c->token ? c->token : "");
        break;
    case P_NODE:
        snprintf(path, sizeof(path), "/ws");
        break;
    case P_FLOOR:
        snprintf(path, sizeof(path), "/t%u", c->topic);
        break;
    case P_NATS:
        snprintf(path, sizeof(path), "/");
        break;
    case P_MQTT:
        snprintf(path, sizeof(path), "/mqtt");
        extra = "Sec-WebSocket-Protocol: mqtt\r\n";
        break;
    }
    int n = snprintf(
        req, sizeof(req),
        "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
        path, host, sub_port(c), extra);
    if (send_all(c->fd, req, (size_t)n) != 0) {
        sub_close(c, true);
        return;
    }
    c->state = S_HS;
    ep_set(c, EPOLLIN, EPOLL_CTL_MOD);
}

static void sub_connect(lg_conn_t *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        if (!first_error[0])
            snprintf(first_error, sizeof(first_error), "socket: %s", strerror(errno));
        stop_launching = true;
        c->state = S_FAILED;
        sub_done_connecting(c, false);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (c->stuck) {
        int small = 4096; /* a stalled reader: its window fills quickly */
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    }
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000000u | (2 + c->idx % nsrc));
    bind(fd, (struct sockaddr *)&src, sizeof(src));
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)sub_port(c))};
    inet_pton(AF_INET, host, &dst.sin_addr);
    c->fd = fd;
    c->t_start = mono_ns();
    c->state = S_CONNECTING;
    int r = connect(fd, (struct sockaddr *)&dst, sizeof(dst));
    if (r != 0 && errno != EINPROGRESS) {
        if (!first_error[0])
            snprintf(first_error, sizeof(first_error), "connect: %s", strerror(errno));
        close(fd);
        c->fd = -1;
        c->state = S_FAILED;
        sub_done_connecting(c, false);
        return;
    }
    ep_set(c, EPOLLOUT, EPOLL_CTL_ADD);
}

static void sub_writable(lg_conn_t *c)
{
    if (c->state != S_CONNECTING)
        return;
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        if (!first_error[0])
            snprintf(first_error, sizeof(first_error), "connect: %s", strerror(err));
        sub_close(c, true);
        return;
    }
    sub_send_handshake(c);
}

/* ---- tokens ---- */
static char *mint_offline(uint32_t topic)
{
    char ch[32];
    snprintf(ch, sizeof(ch), "bench-%u", topic_base + topic);
    rt_topic_ref_t t = {ch, "m", "run"};
    rt_mint_req_t req = {.topics = &t, .ntopics = 1, .ttl = 3600};
    char *jwt = NULL;
    int rc = rt_token_mint(ring, &topts, &req, (int64_t)time(NULL), &jwt, NULL);
    if (rc != 0) {
        fprintf(stderr, "loadgen: mint: %s\n", rt_tok_strerror(rc));
        exit(1);
    }
    return jwt;
}

/* ---- HTTP helpers (publishers and mint) ---- */
/* Consume complete HTTP responses from b; returns the count, reports non-2xx. */
static int http_responses(lg_buf_t *b,
                          void (*each)(int status, const char *body, size_t n, void *u), void *u)
{
    int count = 0;
    size_t off = 0;
    for (;;) {
        char *s = b->p + off;
        size_t avail = b->len - off;
        char *end = avail ? memmem(s, avail, "\r\n\r\n", 4) : NULL;
        if (!end)
            break;
        size_t hl = (size_t)(end + 4 - s);
        long clen = 0;
        for (char *l = s; l < end;) {
            char *e = memmem(l, (size_t)(end + 2 - l), "\r\n", 2);
            if (!e)
                break;
            if ((size_t)(e - l) > 15 && strncasecmp(l, "Content-Length:", 15) == 0)
                clen = strtol(l + 15, NULL, 10);
            l = e + 2;
        }
        if (avail < hl + (size_t)clen)
            break;
        int status = avail > 12 ? atoi(s + 9) : 0;
        if (each)
            each(status, s + hl, (size_t)clen, u);
        count++;
        off += hl + (size_t)clen;
    }
    lg_buf_consume(b, off);
    return count;
}

static int tcp_connect_blocking(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &dst.sin_addr);
    if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0) {
        fprintf(stderr, "loadgen: connect %s:%d: %s\n", host, port, strerror(errno));
        exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* ---- mint over HTTP (S4 for rtgw) ---- */
static void mint_send(lg_conn_t *m, lg_conn_t *sub)
{
    char body[128], req[1024];
    int bl =
        snprintf(body, sizeof(body), "[{\"channel\":\"bench-%u\",\"name\":\"m\",\"kind\":\"run\"}]",
                 topic_base + sub->topic);
    int n =
        snprintf(req, sizeof(req),
                 "POST /v1/realtime/token HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                 "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                 host, pub_port, signing_key, bl, body);
    m->busy = true;
    m->mint_for = sub;
    sub->state = S_MINTING;
    sub->t_start = mono_ns();
    if (send_all(m->fd, req, (size_t)n) != 0) {
        fprintf(stderr, "loadgen: mint connection failed\n");
        exit(1);
    }
}

static void mint_each(int status, const char *body, size_t n, void *u)
{
    lg_conn_t *m = u;
    lg_conn_t *sub = m->mint_for;
    m->mint_for = NULL;
    m->busy = false;
    if (!sub)
        return;
    const char *j = memmem(body, n, "\"jwt\":\"", 7);
    if (status != 201 || !j) {
        if (!first_error[0])
            snprintf(first_error, sizeof(first_error), "mint: HTTP %d", status);
        sub->state = S_FAILED;
        sub_done_connecting(sub, false);
        return;
    }
    j += 7;
    const char *e = memchr(j, '"', n - (size_t)(j - body));
    sub->token = strndup(j, e ? (size_t)(e - j) : 0);
    sub_connect(sub);
}

static void mint_readable(lg_conn_t *m)
{
    char buf[65536];
    ssize_t r = recv(m->fd, buf, sizeof(buf), 0);
    if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        fprintf(stderr, "loadgen: mint connection closed by the server\n");
        exit(1);
    }
    lg_buf_append(&m->in, buf, (size_t)r);
    http_responses(&m->in, mint_each, m);
}

/* ---- connect launcher ---- */
static void launch(void)
{
    while (!stop_launching && inflight < concurrency && next_sub < nsubs) {
        lg_conn_t *c = &subs[next_sub];
        if (mint_http) {
            lg_conn_t *m = NULL;
            for (uint32_t i = 0; i < mint_conns; i++)
                if (!mints[i].busy) {
                    m = &mints[i];
                    break;
                }
            if (!m)
                return;
            next_sub++;
            inflight++;
            mint_send(m, c);
            continue;
        }
        next_sub++;
        inflight++;
        if (proto == P_RTGW && !c->token)
            c->token = mint_offline(c->topic);
        sub_connect(c);
    }
}

/* ---- publishing ---- */
static size_t build_payload(char *out, size_t cap, uint32_t topic, uint64_t seq, int64_t ts)
{
    int n = snprintf(out, cap, "{\"t\":%u,\"seq\":%llu,\"ts\":%lld,\"pad\":\"", topic,
                     (unsigned long long)seq, (long long)ts);
    size_t len = (size_t)n;
    while (len + 2 < payload_bytes && len + 3 < cap)
        out[len++] = 'x';
    out[len++] = '"';
    out[len++] = '}';
    out[len] = 0;
    return len;
}

static int pub_send(lg_conn_t *p, uint32_t topic, uint64_t seq, int64_t ts)
{
    char payload[70000];
    static char req[140000];
    size_t pl = build_payload(payload, sizeof(payload), topic, seq, ts);
    size_t n = 0;
    switch (proto) {
    case P_RTGW:
        n = (size_t)snprintf(
            req, sizeof(req),
            "POST /v1/realtime/publish?channel=bench-%u&topic=m HTTP/1.1\r\nHost: %s:%d\r\n"
            "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
            "Content-Length: %zu\r\n\r\n",
            topic_base + topic, host, pub_port, signing_key, pl);
        memcpy(req + n, payload, pl);
        n += pl;
        break;
    case P_NODE: {
        char body[70100];
        int bl =
            snprintf(body, sizeof(body),
                     "{\"type\":\"BENCH\",\"projectId\":\"p%u\",\"payload\":%s}", topic, payload);
        n = (size_t)snprintf(
            req, sizeof(req),
            "POST /broadcast HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n%s",
            host, pub_port, bl, body);
        break;
    }
    case P_FLOOR:
        n = (size_t)snprintf(req, sizeof(req), "PUB t%u %s\n", topic, payload);
        break;
    case P_NATS:
        n = nats_pub_build(req, sizeof(req), topic, payload, pl);
        break;
    case P_MQTT:
        n = mqtt_pub_build(req, sizeof(req), topic, payload, pl);
        break;
    }
    p->outstanding++;
    return send_all(p->fd, req, n);
}

static void pub_pump(void)
{
    if (!publishing)
        return;
    for (;;) {
        if (count_limit && sent >= count_limit)
            return;
        int64_t intended;
        if (rate > 0) {
            intended = pub_t0 + (int64_t)((double)sent * 1e9 / rate);
            if (intended > now_ns) {
                struct itimerspec its = {
                    .it_value = {intended / 1000000000, intended % 1000000000}};
                timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
                return;
            }
        } else {
            if (ntopics == 1 && sent + 1 >= win_low + window) {
                if (!win_blocked_since)
                    win_blocked_since = now_ns;
                else if (now_ns - win_blocked_since > 1000000000LL) {
                    win_stalls++; /* a reader lost a message: do not wait for it forever */
                    recv_cnt[win_low & 4095] = 0;
                    win_low++;
                    win_blocked_since = 0;
                    continue;
                }
                return;
            }
            intended = now_ns;
        }
        lg_conn_t *p = NULL;
        for (uint32_t i = 0; i < npub; i++) {
            lg_conn_t *q = &pubs[(pub_rr + i) % npub];
            if (q->outstanding < max_out) {
                p = q;
                pub_rr = (pub_rr + i + 1) % npub;
                break;
            }
        }
        if (!p)
            return;
        uint32_t topic = (uint32_t)(sent % ntopics);
        uint64_t seq = ++pub_seq[topic];
        sent++;
        if (ntopics == 1 && rate == 0)
            recv_cnt[seq & 4095] = 0;
        if (pub_send(p, topic, seq, intended) != 0) {
            fprintf(stderr, "loadgen: publisher connection failed\n");
            exit(1);
        }
    }
}

static void pub_each(int status, const char *body, size_t n, void *u)
{
    (void)u;
    if (status < 200 || status > 299) {
        pub_errors++;
        if (!first_error[0])
            snprintf(first_error, sizeof(first_error), "publish: HTTP %d %.*s", status,
                     (int)(n < 160 ? n : 160), body);
    }
}

static void pub_readable(lg_conn_t *p)
{
    char buf[65536];
    ssize_t r = recv(p->fd, buf, sizeof(buf), 0);
    if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        fprintf(stderr, "loadgen: publisher connection closed by the server\n");
        exit(1);
    }
    now_ns = mono_ns();
    int acks = 0;
    switch (proto) {
    case P_RTGW:
    case P_NODE:
        lg_buf_append(&p->in, buf, (size_t)r);
        acks = http_responses(&p->in, pub_each, NULL);
        break;
    case P_FLOOR:
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] == '\n')
                acks++;
        break;
    case P_NATS:
        acks = nats_pub_acks(p, buf, (size_t)r);
        break;
    case P_MQTT:
        acks = mqtt_pub_acks(p, buf, (size_t)r);
        break;
    }
    if (acks < 0) {
        fprintf(stderr, "loadgen: publisher protocol error\n");
        exit(1);
    }
    if (acks > 0) {
        acked += (uint64_t)acks;
        p->outstanding = p->outstanding > (uint32_t)acks ? p->outstanding - (uint32_t)acks : 0;
    }
    pub_pump();
}

/* ---- main loop ---- */
static void dispatch(struct epoll_event *ev)
{
    lg_conn_t *c = ev->data.ptr;
    switch (c->kind) {
    case K_TIMER: {
        uint64_t x;
        ssize_t r = read(timer_fd, &x, sizeof(x));
        (void)r;
        now_ns = mono_ns();
        pub_pump();
        return;
    }
    case K_PUB:
        pub_readable(c);
        return;
    case K_MINT:
        mint_readable(c);
        return;
    default:
        break;
    }
    if (c->fd < 0)
        return;
    if (c->state == S_CONNECTING) {
        if (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            sub_writable(c);
        return;
    }
    if (c->stuck && c->state == S_SUBSCRIBED) {
        if (ev->events & (EPOLLHUP | EPOLLERR))
            sub_close(c, false);
        return;
    }
    if (ev->events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        sub_readable(c);
}

static void loop_for(int64_t until_ns, bool (*done)(void))
{
    struct epoll_event evs[512];
    for (;;) {
        now_ns = mono_ns();
        if (until_ns && now_ns >= until_ns)
            return;
        if (done && done())
            return;
        int64_t wait_ms = 50;
        if (until_ns && (until_ns - now_ns) / 1000000 < wait_ms)
            wait_ms = (until_ns - now_ns) / 1000000 + 1;
        int n = epoll_wait(epfd, evs, 512, (int)wait_ms);
        for (int i = 0; i < n; i++)
            dispatch(&evs[i]);
        now_ns = mono_ns();
        if (publishing && rate == 0)
            pub_pump();
        launch();
    }
}

static bool connect_done(void)
{
    return inflight == 0 && (stop_launching || next_sub >= nsubs);
}

static uint64_t expected_total;
static int64_t last_progress_ns;
static uint64_t last_progress_count;
static bool drain_done(void)
{
    if (deliveries_total != last_progress_count) {
        last_progress_count = deliveries_total;
        last_progress_ns = now_ns;
    }
    if (acked < sent && now_ns - last_progress_ns < 2000000000LL)
        return false;
    uint64_t got = 0;
    for (uint32_t i = 0; i < nsubs; i++)
        if (!subs[i].stuck && subs[i].state == S_SUBSCRIBED)
            got += subs[i].last_seq;
    return got >= expected_total || now_ns - last_progress_ns > 1000000000LL;
}

/* "A,B,C" → out[] (at most 16); returns how many. */
static uint32_t parse_list(const char *arg, int out[16])
{
    uint32_t n = 0;
    for (const char *p = arg; *p && n < 16;) {
        out[n++] = atoi(p);
        p = strchr(p, ',');
        if (!p)
            break;
        p++;
    }
    return n;
}

static int parse_proto(const char *s)
{
    for (int i = 0; i < 5; i++)
        if (strcmp(s, proto_names[i]) == 0)
            return i;
    fprintf(stderr, "loadgen: unknown --proto %s\n", s);
    exit(2);
}

static void usage(void)
{
    fprintf(
        stderr,
        "usage: loadgen --proto rtgw|node|floor|nats|mqtt --ws-port P --pub-port P [options]\n"
        "  --subs N --topics T --rate R (0 = as fast as acks and --window allow)\n"
        "  --duration S --idle S --window W --pub-conns P --payload B --concurrency C\n"
        "  --stuck-pct X --capacity --mint-http --key KEY --server-pid PID --src-ips N\n"
        "  (--ws-port and --server-pid take comma-separated lists: subscribers round-robin over\n"
        "  the ports, CPU and RSS summed over the pids; --topic-base B: rtgw channels "
        "bench-<B+t>)\n"
        "  --label NAME --connect-limit S --mint-conns N --pipeline K (requests in flight per "
        "publisher)\n"
        "  publishes on one connection stay ordered; more --pub-conns break per-topic order\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static struct option lo[] = {{"proto", 1, 0, 'P'},
                                 {"host", 1, 0, 'h'},
                                 {"ws-port", 1, 0, 'w'},
                                 {"pub-port", 1, 0, 'p'},
                                 {"subs", 1, 0, 'n'},
                                 {"topics", 1, 0, 't'},
                                 {"rate", 1, 0, 'r'},
                                 {"duration", 1, 0, 'd'},
                                 {"idle", 1, 0, 'i'},
                                 {"window", 1, 0, 'W'},
                                 {"pub-conns", 1, 0, 'c'},
                                 {"payload", 1, 0, 'b'},
                                 {"concurrency", 1, 0, 'C'},
                                 {"stuck-pct", 1, 0, 's'},
                                 {"capacity", 0, 0, 'X'},
                                 {"mint-http", 0, 0, 'M'},
                                 {"key", 1, 0, 'k'},
                                 {"server-pid", 1, 0, 'S'},
                                 {"src-ips", 1, 0, 'a'},
                                 {"label", 1, 0, 'l'},
                                 {"connect-limit", 1, 0, 'L'},
                                 {"mint-conns", 1, 0, 'm'},
                                 {"pipeline", 1, 0, 'O'},
                                 {"topic-base", 1, 0, 'B'},
                                 {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (o) {
        case 'P':
            proto = parse_proto(optarg);
            break;
        case 'h':
            host = optarg;
            break;
        case 'w':
            nws_ports = parse_list(optarg, ws_ports);
            ws_port = ws_ports[0];
            break;
        case 'p':
            pub_port = atoi(optarg);
            break;
        case 'n':
            nsubs = (uint32_t)atol(optarg);
            break;
        case 't':
            ntopics = (uint32_t)atol(optarg);
            break;
        case 'r':
            rate = atof(optarg);
            break;
        case 'd':
            duration = atof(optarg);
            break;
        case 'i':
            idle_secs = atof(optarg);
            break;
        case 'W':
            window = (uint32_t)atol(optarg);
            break;
        case 'c':
            npub = (uint32_t)atol(optarg);
            break;
        case 'b':
            payload_bytes = (uint32_t)atol(optarg);
            break;
        case 'C':
            concurrency = (uint32_t)atol(optarg);
            break;
        case 's':
            stuck_pct = atof(optarg);
            break;
        case 'X':
            capacity_mode = true;
            break;
        case 'M':
            mint_http = true;
            break;
        case 'k':
            signing_key = optarg;
            break;
        case 'S':
            nserver_pids = parse_list(optarg, server_pids);
            server_pid = server_pids[0];
            break;
        case 'a':
            nsrc = (uint32_t)atol(optarg);
            break;
        case 'l':
            label = optarg;
            break;
        case 'L':
            connect_limit_s = atof(optarg);
            break;
        case 'm':
            mint_conns = (uint32_t)atol(optarg);
            break;
        case 'O':
            max_out = (uint32_t)atol(optarg);
            break;
        case 'B':
            topic_base = (uint32_t)atol(optarg);
            break;
        default:
            usage();
        }
    }
    if (ntopics == 0 || nsubs == 0 || nsrc == 0 || nsrc > 250 || window == 0 || window > 2000)
        usage();
    if (proto == P_RTGW && !signing_key) {
        fprintf(stderr, "loadgen: --key is required for rtgw\n");
        return 2;
    }
    if (!npub)
        npub = 1;
    if (!max_out)
        max_out = rate > 0 ? 64 : 1;
    if (payload_bytes < 64)
        payload_bytes = 64;
    if (payload_bytes > 65000)
        payload_bytes = 65000;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (proto == P_RTGW) {
        if (rt_tokens_init() != 0)
            return 1;
        ring = rt_keyring_new();
        if (!ring || rt_keyring_set_signing_key(ring, RT_KEY_CURRENT, rt_slice_cstr(signing_key),
                                                RT_ALG_HS256) != 0) {
            fprintf(stderr, "loadgen: bad --key\n");
            return 2;
        }
        rt_token_opts_default(&topts);
    }
    rbuf = malloc(rbuf_cap);
    subs = calloc(nsubs, sizeof(*subs));
    pub_seq = calloc(ntopics, sizeof(*pub_seq));
    recv_cnt = calloc(4096, sizeof(*recv_cnt));
    if (!rbuf || !subs || !pub_seq || !recv_cnt)
        return 1;
    uint32_t stride = stuck_pct > 0 ? (uint32_t)(100.0 / stuck_pct + 0.5) : 0;
    for (uint32_t i = 0; i < nsubs; i++) {
        subs[i].fd = -1;
        subs[i].kind = K_SUB;
        subs[i].idx = i;
        subs[i].topic = i % ntopics;
        subs[i].stuck = stride && i % stride == stride / 2;
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    timer_conn.fd = timer_fd;
    ep_set(&timer_conn, EPOLLIN, EPOLL_CTL_ADD);

    if (mint_http) {
        mints = calloc(mint_conns, sizeof(*mints));
        for (uint32_t i = 0; i < mint_conns; i++) {
            mints[i].kind = K_MINT;
            mints[i].fd = tcp_connect_blocking(pub_port);
            ep_set(&mints[i], EPOLLIN, EPOLL_CTL_ADD);
        }
    }

    long rss_before = proc_rss_kib(server_pid);
    double cpu_before_connect = proc_cpu_s(server_pid);

    /* ---- connect ---- */
    connect_t0 = mono_ns();
    launch();
    loop_for(connect_t0 + (int64_t)(connect_limit_s * 1e9), connect_done);
    connect_t1 = mono_ns();
    double connect_s = (double)(connect_t1 - connect_t0) / 1e9;
    double cpu_connect = proc_cpu_s(server_pid) - cpu_before_connect;
    uint32_t connected = nsubscribed;
    double connect_rate = connect_s > 0 ? connected / connect_s : 0;

    /* ---- publishers ---- */
    if (duration > 0 || capacity_mode) {
        pubs = calloc(npub, sizeof(*pubs));
        for (uint32_t i = 0; i < npub; i++) {
            pubs[i].kind = K_PUB;
            pubs[i].fd = tcp_connect_blocking(pub_port);
            ep_set(&pubs[i], EPOLLIN, EPOLL_CTL_ADD);
            if (proto == P_NATS)
                nats_pub_open(&pubs[i]);
            else if (proto == P_MQTT)
                mqtt_pub_open(&pubs[i]);
        }
    }

    /* ---- idle hold (S3, S7) ---- */
    long rss_idle = 0;
    if (idle_secs > 0) {
        loop_for(mono_ns() + (int64_t)(idle_secs * 1e9), NULL);
        rss_idle = proc_rss_kib(server_pid);
    }

    /* ---- publish ---- */
    double cpu_measure = 0, measure_s = 0;
    uint64_t sent_measure = 0;
    if (duration > 0 || capacity_mode) {
        if (capacity_mode)
            count_limit = 1;
        now_ns = mono_ns();
        pub_t0 = now_ns;
        double warm = capacity_mode ? 0 : (duration / 5 < 2 ? duration / 5 : 2);
        measure_t0 = pub_t0 + (int64_t)(warm * 1e9);
        if (capacity_mode)
            measure_t0 = pub_t0;
        publishing = true;
        pub_pump();
        loop_for(measure_t0, NULL);
        double cpu0 = proc_cpu_s(server_pid);
        uint64_t sent0 = sent;
        int64_t end =
            capacity_mode ? measure_t0 + 3000000000LL : pub_t0 + (int64_t)(duration * 1e9);
        loop_for(end, NULL);
        measure_t1 = mono_ns();
        cpu_measure = proc_cpu_s(server_pid) - cpu0;
        measure_s = (double)(measure_t1 - measure_t0) / 1e9;
        sent_measure = sent - sent0;
        publishing = false;
        /* drain: every reader should reach its topic's last seq */
        expected_total = 0;
        for (uint32_t i = 0; i < nsubs; i++)
            if (!subs[i].stuck && subs[i].state == S_SUBSCRIBED)
                expected_total += pub_seq[subs[i].topic];
        last_progress_ns = mono_ns();
        last_progress_count = deliveries_total;
        loop_for(mono_ns() + 5000000000LL, drain_done);
    }
    long rss_end = proc_rss_kib(server_pid);

    /* ---- tally ---- */
    uint64_t missing = 0, dup = 0, ooo = 0, readers = 0, held = 0, incomplete_subs = 0;
    for (uint32_t i = 0; i < nsubs; i++) {
        lg_conn_t *c = &subs[i];
        if (c->stuck || !c->ever_subscribed)
            continue;
        readers++;
        uint64_t final = pub_seq[c->topic];
        uint64_t m = c->missing + (final > c->last_seq ? final - c->last_seq : 0);
        missing += m;
        if (m)
            incomplete_subs++;
        dup += c->dup;
        ooo += c->ooo;
        if (c->state == S_SUBSCRIBED && (!capacity_mode || c->got_probe))
            held++;
    }
    double dps = measure_s > 0 ? deliveries_measured / measure_s : 0;
    printf(
        "RESULT label=%s proto=%s subs=%u topics=%u connected=%u failed=%u connect_s=%.3f "
        "connect_rate=%.0f connect_cpu_s=%.2f published=%llu acked=%llu pub_rate=%.1f "
        "deliveries=%llu measure_s=%.2f deliv_per_s=%.0f cpu_s=%.2f deliv_per_cpu_s=%.0f "
        "p50_us=%.0f p90_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f samples=%llu "
        "missing=%llu incomplete_subs=%llu dup=%llu ooo=%llu dropped=%u stuck=%u stuck_closed=%u "
        "held=%llu rss_before_kib=%ld rss_idle_kib=%ld rss_end_kib=%ld pub_errors=%llu "
        "win_stalls=%llu unparsed=%llu loadgen_cpu_s=%.2f\n",
        label, proto_names[proto], nsubs, ntopics, connected, nfailed, connect_s, connect_rate,
        cpu_connect, (unsigned long long)sent, (unsigned long long)acked,
        measure_s > 0 ? sent_measure / measure_s : 0, (unsigned long long)deliveries_measured,
        measure_s, dps, cpu_measure, cpu_measure > 0 ? deliveries_measured / cpu_measure : 0,
        hist_pct(50), hist_pct(90), hist_pct(99), hist_pct(99.9), (double)hist_max / 1000.0,
        (unsigned long long)hist_n, (unsigned long long)missing,
        (unsigned long long)incomplete_subs, (unsigned long long)dup, (unsigned long long)ooo,
        nclosed_readers, nstuck, stuck_closed, (unsigned long long)held, rss_before, rss_idle,
        rss_end, (unsigned long long)pub_errors, (unsigned long long)win_stalls,
        (unsigned long long)unparsed, self_cpu_s());
    if (first_error[0])
        fprintf(stderr, "loadgen: first error: %s\n", first_error);
    (void)readers;
    return 0;
}
