/*
 * server.c — civetweb glue. The only file that includes civetweb.h.
 *
 * Threads:
 * - civetweb workers: HTTP requests and WebSocket/SSE handshakes. After the
 *   handshake a plain-TCP session leaves its worker (session_detach) and lives
 *   in a writer's epoll, so an open subscriber costs no thread; TLS sessions
 *   keep their worker (their TLS state lives in civetweb), and then
 *   num_threads = RTGW_MAX_CONNECTIONS + RTGW_HTTP_THREADS.
 * - writers (RTGW_WRITER_THREADS): drain subscriber queues into sockets, and
 *   read detached sessions' client frames. The
 *   hub only enqueues; a writer writes a connection only while its socket has
 *   room (SIOCOUTQ against a fixed SO_SNDBUF), so one client that stops
 *   reading never stalls the writer for the others: its socket is parked in
 *   epoll until writable, its queue grows, and the hub disconnects it at its
 *   bound (slow consumer).
 * - heartbeat: pings, idle (no pong) detection, token expiry, hub sweep.
 *
 * civetweb does not expose a connection's socket, and its writes block for up
 * to request_timeout_ms when the peer's buffer is full. To check for room we
 * need the fd: accept() is wrapped (the executable's definition wins over
 * libc's for civetweb's call) to record peer address → fd, and a session looks
 * itself up by its remote address and server port.
 *
 * Server-to-client WebSocket frames are unmasked, so the hub builds each frame
 * (header + JSON) once and a writer sends the same bytes to every subscriber
 * with one send() (detached) or one mg_write under mg_lock_connection (TLS),
 * which serialises with civetweb's own pong/close writes.
 */
#define _GNU_SOURCE
#include "server.h"
#include "api.h"
#include "bus.h"
#include "extmsg.h"
#include "hub.h"
#include "log.h"
#include "map.h"
#include "metrics.h"
#include "reason.h"
#include "rt_tokens.h"
#include "tls.h"
#include "ratelimit.h"

#include <civetweb.h>
#include <dlfcn.h>
#include <errno.h>
#include <jansson.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "demo_page.h"

/* ------------------------------------------------------------------------ */
/* accept() wrapper: peer address → fd                                        */

typedef struct ws_guard_s ws_guard_t;
static ws_guard_t *guards; /* client frame guard, indexed by fd (see below) */
static size_t nguards;
static void guard_reset(int fd);

static pthread_mutex_t peers_lock = PTHREAD_MUTEX_INITIALIZER;
static rt_map_t peers;   /* "addr|port|localport" → (void*)(fd + 1) */
static char **peer_keys; /* fd → its key, to drop a stale entry on reuse */
static size_t peer_keys_cap;

static int peer_key(const struct sockaddr *sa, int local_port, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        port = ntohs(s4->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        port = ntohs(s6->sin6_port);
    } else {
        return -1;
    }
    return snprintf(out, cap, "%s|%d|%d", ip, port, local_port);
}

static void peers_record(int fd)
{
    struct sockaddr_storage peer, local;
    socklen_t pl = sizeof(peer), ll = sizeof(local);
    if (getpeername(fd, (struct sockaddr *)&peer, &pl) != 0 ||
        getsockname(fd, (struct sockaddr *)&local, &ll) != 0)
        return;
    int lport = local.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&local)->sin_port)
                                           : ntohs(((struct sockaddr_in6 *)&local)->sin6_port);
    char key[96];
    if (peer_key((struct sockaddr *)&peer, lport, key, sizeof(key)) < 0)
        return;
    pthread_mutex_lock(&peers_lock);
    if ((size_t)fd >= peer_keys_cap) {
        size_t nc = peer_keys_cap ? peer_keys_cap : 1024;
        while (nc <= (size_t)fd)
            nc *= 2;
        char **nk = realloc(peer_keys, nc * sizeof(*nk));
        if (!nk)
            goto out;
        memset(nk + peer_keys_cap, 0, (nc - peer_keys_cap) * sizeof(*nk));
        peer_keys = nk;
        peer_keys_cap = nc;
    }
    if (peer_keys[fd]) {
        void *v = rt_map_get(&peers, peer_keys[fd], strlen(peer_keys[fd]));
        if (v == (void *)(intptr_t)(fd + 1))
            rt_map_del(&peers, peer_keys[fd], strlen(peer_keys[fd]));
        free(peer_keys[fd]);
        peer_keys[fd] = NULL;
    }
    if (rt_map_put(&peers, key, strlen(key), (void *)(intptr_t)(fd + 1)) == 0)
        peer_keys[fd] = strdup(key);
out:
    pthread_mutex_unlock(&peers_lock);
}

static int peers_lookup(const struct mg_request_info *ri)
{
    char ip6[INET6_ADDRSTRLEN + 2];
    char key[128];
    /* civetweb prints IPv6 remote addresses without brackets, like inet_ntop. */
    snprintf(ip6, sizeof(ip6), "%s", ri->remote_addr);
    snprintf(key, sizeof(key), "%s|%d|%d", ip6, ri->remote_port, ri->server_port);
    pthread_mutex_lock(&peers_lock);
    void *v = rt_map_get(&peers, key, strlen(key));
    pthread_mutex_unlock(&peers_lock);
    return v ? (int)(intptr_t)v - 1 : -1;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    static int (*real_accept)(int, struct sockaddr *, socklen_t *);
    if (!real_accept)
        real_accept = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
    int c = real_accept(fd, addr, len);
    if (c >= 0) {
        peers_record(c);
        guard_reset(c); /* a new connection on a reused fd: not guarded yet */
    }
    return c;
}

/* ------------------------------------------------------------------------ */
/* client frame guard                                                          */
/*
 * civetweb reads a whole client frame into memory (up to ~2 GiB) before the
 * data handler can look at its size, so RTGW_MAX_CLIENT_FRAME_BYTES checked
 * there would come too late. rtgw also wraps recv() (and, for TLS, SSL_read
 * through the libssl shim) and follows the client's frame headers in the
 * byte stream of each WebSocket session: a header announcing more than the
 * limit, or an unmasked client frame, ends the session before civetweb
 * allocates anything for it, with close code 1009 (or 1002).
 *
 * The guard starts before the 101 is sent. A client that sends frames before
 * the handshake completes is refused, so the guard always starts at a frame
 * boundary.
 */
typedef struct rt_conn_s rt_conn_t;
struct ws_guard_s {
    _Atomic(rt_conn_t *) conn; /* non-NULL while the session is guarded */
    uint64_t limit;
    uint64_t remaining; /* payload bytes left in the current frame */
    uint8_t hdr[14];
    uint8_t hlen;
    uint8_t crlf;            /* HTTP phase: how much of "\r\n\r\n" the last bytes matched */
    bool first_headers_done; /* the connection's first request headers arrived */
    int64_t accepted_ms;     /* monotonic time of accept() */
    bool tripped;
};

static void guard_tripped(rt_conn_t *c, int code);

/* Follow frame headers in bytes a guarded session received. Returns 0, or the
 * close code to end the session with. Called only on the session's thread. */
static int guard_feed(ws_guard_t *g, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (g->remaining) {
            uint64_t take = g->remaining < n ? g->remaining : n;
            g->remaining -= take;
            p += take;
            n -= (size_t)take;
            continue;
        }
        g->hdr[g->hlen++] = *p++;
        n--;
        if (g->hlen < 2)
            continue;
        size_t ext = (g->hdr[1] & 127) == 126 ? 2 : (g->hdr[1] & 127) == 127 ? 8 : 0;
        size_t need = 2 + ext + ((g->hdr[1] & 0x80) ? 4 : 0);
        if (g->hlen < need)
            continue;
        if (!(g->hdr[1] & 0x80))
            return 1002; /* RFC 6455 §5.1: client frames are masked */
        uint64_t len = g->hdr[1] & 127;
        if (ext == 2)
            len = (uint64_t)g->hdr[2] << 8 | g->hdr[3];
        else if (ext == 8)
            for (int i = 0; i < 8; i++)
                len = len << 8 | g->hdr[2 + i];
        if (len > g->limit)
            return 1009;
        g->remaining = len;
        g->hlen = 0;
    }
    return 0;
}

/* After the close frame: half-close and discard what the client still sends
 * for up to 2 s, so that closing the socket does not reset the connection
 * (a reset makes the client's kernel drop the close frame it has not read
 * yet, and the client would see 1006 instead of 1009). */
static void guard_linger(int fd)
{
    static ssize_t (*real_recv)(int, void *, size_t, int);
    if (!real_recv)
        real_recv = (ssize_t(*)(int, void *, size_t, int))dlsym(RTLD_NEXT, "recv");
    shutdown(fd, SHUT_WR);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char scratch[16384];
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = 2000 - ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0)
            return;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            return;
        ssize_t n = real_recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return;
    }
}

/* After a read of n bytes on fd: 0 to pass it on, -1 to fail the read. */
static int guard_after_read(int fd, const void *buf, ssize_t n)
{
    if (n <= 0 || fd < 0 || (size_t)fd >= nguards)
        return 0;
    ws_guard_t *g = &guards[fd];
    rt_conn_t *c = atomic_load(&g->conn);
    if (!c || g->tripped)
        return g->tripped && c ? -1 : 0;
    int code = guard_feed(g, buf, (size_t)n);
    if (!code)
        return 0;
    g->tripped = true;
    guard_tripped(c, code);
    guard_linger(fd);
    return -1;
}

static int64_t header_deadline_ms; /* RTGW_REQUEST_TIMEOUT_MS; 0 until the server starts */

static int64_t guard_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint8_t crlf_step(uint8_t st, char ch)
{
    if (ch == '\r')
        return st == 2 ? 3 : 1;
    if (ch == '\n')
        return st == 1 ? 2 : st == 3 ? 4 : 0;
    return 0;
}

/*
 * Before a connection becomes a guarded WebSocket session (the HTTP phase),
 * recv never hands civetweb bytes past the end of a request's headers: it
 * peeks, and reads only up to the first "\r\n\r\n". So when a WebSocket
 * request is admitted, civetweb holds exactly the request, and anything the
 * client sent early is still in the kernel, where ws_connect sees it (and the
 * guard, which starts there, is never fooled by a frame civetweb already
 * buffered). Bodies are read in more, smaller pieces; nothing else changes.
 */
ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    static ssize_t (*real_recv)(int, void *, size_t, int);
    if (!real_recv)
        real_recv = (ssize_t(*)(int, void *, size_t, int))dlsym(RTLD_NEXT, "recv");
    if ((flags & MSG_PEEK) || fd < 0 || (size_t)fd >= nguards || len == 0)
        return real_recv(fd, buf, len, flags);
    ws_guard_t *g = &guards[fd];
    if (!atomic_load(&g->conn)) {
        /* Slowloris: civetweb's timeout applies to each read, so a client
         * dribbling a byte at a time could hold a thread forever. The first
         * request's headers must arrive within RTGW_REQUEST_TIMEOUT_MS. */
        if (!g->first_headers_done && header_deadline_ms > 0 &&
            guard_now_ms() - g->accepted_ms > header_deadline_ms) {
            errno = ETIMEDOUT;
            return -1;
        }
        ssize_t n = real_recv(fd, buf, len, flags | MSG_PEEK);
        if (n <= 0)
            return n;
        uint8_t st = g->crlf;
        size_t cut = (size_t)n;
        for (size_t i = 0; i < (size_t)n; i++) {
            st = crlf_step(st, ((const char *)buf)[i]);
            if (st == 4) {
                cut = i + 1;
                break;
            }
        }
        n = real_recv(fd, buf, cut, flags);
        if (n > 0) {
            st = g->crlf;
            for (size_t i = 0; i < (size_t)n; i++) {
                st = crlf_step(st, ((const char *)buf)[i]);
                if (st == 4) {
                    st = 0;
                    g->first_headers_done = true;
                }
            }
            g->crlf = st;
        }
        return n;
    }
    ssize_t n = real_recv(fd, buf, len, flags);
    if (n > 0 && guard_after_read(fd, buf, n) != 0) {
        errno = EMSGSIZE;
        return -1;
    }
    return n;
}

/* sslshim.c calls this after every SSL_read (TLS sessions). */
void rt_sslshim_set_read_hook(int (*hook)(int fd, const void *buf, ssize_t n));

static void guard_reset(int fd)
{
    if (fd >= 0 && (size_t)fd < nguards) {
        atomic_store(&guards[fd].conn, NULL);
        guards[fd].crlf = 0;
        guards[fd].first_headers_done = false;
        guards[fd].accepted_ms = guard_now_ms();
    }
}

static void guard_start(rt_conn_t *c, int fd, uint64_t limit)
{
    if (fd < 0 || (size_t)fd >= nguards)
        return;
    ws_guard_t *g = &guards[fd];
    g->limit = limit;
    g->remaining = 0;
    g->hlen = 0;
    g->tripped = false;
    atomic_store(&g->conn, c);
}

static void guard_stop(rt_conn_t *c, int fd)
{
    if (fd < 0 || (size_t)fd >= nguards)
        return;
    rt_conn_t *expect = c;
    atomic_compare_exchange_strong(&guards[fd].conn, &expect, NULL);
}

/* ------------------------------------------------------------------------ */
/* server state                                                                */

typedef struct {
    pthread_t thread;
    int epfd;
    int evfd;
    pthread_mutex_t lock;
    rt_conn_t *ready_head, *ready_tail;
} writer_t;

typedef struct {
    rt_config_t *cfg;
    struct mg_context *ctx;
    rt_keyring_t *ring;
    rt_token_opts_t topts;
    rt_hub_t *hub;
    rt_bus_t *bus; /* memory, or redis with RTGW_REDIS_URL */
    rt_metrics_t metrics;
    rt_api_t api;
    writer_t *writers;
    int nwriters;
    atomic_int next_writer;
    pthread_mutex_t conns_lock;
    rt_conn_t *conns; /* every open session, for the heartbeat and shutdown */
    atomic_long nconns;
    atomic_bool draining;
    atomic_bool stop;
    int64_t started_ms;
    rt_frame_t *ping_frame, *sse_ping_frame;
    rt_limiter_t *publish_limit, *mint_limit; /* per client IP */
    rt_conncount_t *ip_conns;
    pthread_t heartbeat;
} rt_server_t;

enum { STATE_OPEN = 0, STATE_CLOSING = 1, STATE_GONE = 2 };

struct rt_conn_s {
    atomic_uint refs;
    rt_server_t *srv;
    struct mg_connection *mg; /* NULL once civetweb closed it (guarded by wlock) */
    pthread_mutex_t wlock;    /* held by the writer during a write; by close to clear mg */
    int fd;
    bool sse;
    bool ext;
    rt_sub_t *sub;
    _Atomic(writer_t *) writer; /* NULL until the subscription ack is queued */
    atomic_int state;
    atomic_int close_reason; /* rt_reason_t */
    atomic_llong last_rx_ms;
    int64_t last_ping_ms;
    int64_t closing_since_ms;
    int64_t token_exp;
    int64_t credit;          /* bytes we may write before checking the socket again */
    rt_frame_t *pending[64]; /* popped from the queue, not yet written */
    size_t npending, pend_idx;
    bool in_ready;      /* on the writer's ready list (writer lock) */
    atomic_bool parked; /* waiting in epoll for EPOLLOUT (set/cleared by the writer) */
    bool close_sent;
    bool refused; /* an ext refusal: close right after the upgrade */
    rt_reason_t refuse_reason;
    char refuse_detail[96];
    rt_claims_t claims;
    rt_pos_t since[16]; /* resume candidates: one per channel (matched by epoch) */
    size_t nsince;
    rt_pos_t connect_pos[16]; /* channel positions before the handshake (no since given) */
    size_t nconnect_pos;
    rt_conn_t *next_ready;
    rt_conn_t *prev, *next; /* srv->conns */
    char peer[64];
    char ip[64];    /* client address (X-Forwarded-For from a trusted proxy) */
    bool ip_held;   /* counted in srv->ip_conns */
    bool slot_held; /* counted in srv->nconns (admitted, or listed in srv->conns) */
    int64_t frame_window_ms;
    double frame_tokens; /* client frame budget (RTGW_RATE_LIMIT_CLIENT_FRAMES) */
    /* Detached sessions (see session_detach): the socket belongs to a writer
     * thread's epoll, which also reads the client's frames. Writer thread only. */
    bool detached;
    bool detached_done;
    uint8_t *rbuf; /* client bytes not yet parsed into frames */
    size_t rlen, rcap;
    char *wpend; /* bytes a short send() left over */
    size_t wpend_len, wpend_off;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static rt_conn_t *conn_ref(rt_conn_t *c)
{
    atomic_fetch_add(&c->refs, 1);
    return c;
}

static void conn_unref(rt_conn_t *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    for (size_t i = c->pend_idx; i < c->npending; i++)
        rt_frame_unref(c->pending[i]);
    if (c->ip_held)
        rt_conncount_release(c->srv->ip_conns, c->ip);
    if (c->slot_held) /* admitted, but the session never started */
        atomic_fetch_sub(&c->srv->nconns, 1);
    free(c->rbuf);
    free(c->wpend);
    rt_sub_unref(c->sub);
    rt_claims_clear(&c->claims);
    pthread_mutex_destroy(&c->wlock);
    free(c);
}

/* ------------------------------------------------------------------------ */
/* writers                                                                     */

static void writer_schedule(rt_conn_t *c)
{
    writer_t *w = atomic_load(&c->writer);
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    bool signal = false;
    if (!c->in_ready) {
        c->in_ready = true;
        conn_ref(c);
        c->next_ready = NULL;
        if (w->ready_tail)
            w->ready_tail->next_ready = c;
        else
            w->ready_head = c;
        w->ready_tail = c;
        signal = w->ready_head == c;
    }
    pthread_mutex_unlock(&w->lock);
    if (signal) {
        uint64_t one = 1;
        ssize_t r = write(w->evfd, &one, sizeof(one));
        (void)r;
    }
}

/* Sink: the hub says this subscriber has work. Only schedules. */
static void sink_wake(void *owner, rt_sub_t *sub)
{
    (void)sub;
    writer_schedule(owner);
}

static void conn_close_async(rt_conn_t *c, rt_reason_t reason)
{
    int expect = STATE_OPEN;
    if (!atomic_compare_exchange_strong(&c->state, &expect, STATE_CLOSING))
        return;
    atomic_store(&c->close_reason, (int)reason);
    c->closing_since_ms = mono_ms();
    writer_schedule(c);
}

/* Sink: the subscriber is over its queue bound. Close asynchronously. */
static void sink_kick(void *owner, rt_sub_t *sub, rt_reason_t reason)
{
    (void)sub;
    rt_conn_t *c = owner;
    rt_log_warn("disconnecting subscriber", "peer=%s reason=%s", c->peer, rt_reason_name(reason));
    conn_close_async(c, reason);
}

static const rt_sink_ops_t sink_ops = {sink_wake, sink_kick};

/* Room in the socket's send buffer, by SIOCOUTQ against the SO_SNDBUF we set. */
static int64_t socket_room(rt_conn_t *c)
{
    int queued = 0;
    if (c->fd < 0 || ioctl(c->fd, SIOCOUTQ, &queued) != 0)
        return INT32_MAX; /* unknown: let civetweb's bounded write decide */
    int64_t room = c->srv->cfg->sndbuf_bytes - queued;
    return room > 0 ? room : 0;
}

static void writer_park(rt_conn_t *c)
{
    writer_t *w = atomic_load(&c->writer);
    if (c->fd < 0 || c->parked || !w)
        return;
    if (c->detached) {
        /* Registered for good (EPOLLIN); add EPOLLOUT until it fires. */
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLOUT, .data.ptr = c};
        if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
            c->parked = true;
        return;
    }
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLONESHOT, .data.ptr = c};
    c->parked = true;
    conn_ref(c);
    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0 &&
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        c->parked = false;
        conn_unref(c);
    }
}

/* Write bytes to the connection. Returns 0, or -1 if it is gone. */
static int conn_write(rt_conn_t *c, const char *buf, size_t len)
{
    int rc = -1;
    pthread_mutex_lock(&c->wlock);
    if (c->detached && c->fd >= 0) {
        /* Non-blocking: writer_drain checked the room, so a short write is
         * rare; keep the rest and send it before anything else. */
        ssize_t n = c->wpend_len ? 0 : send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            n = 0;
        if (n >= 0) {
            rc = 0;
            if ((size_t)n < len) {
                char *nb = realloc(c->wpend, c->wpend_len + (len - (size_t)n));
                if (nb) {
                    memcpy(nb + c->wpend_len, buf + n, len - (size_t)n);
                    c->wpend = nb;
                    c->wpend_len += len - (size_t)n;
                } else {
                    rc = -1;
                }
            }
        }
    } else if (c->mg) {
        if (!c->sse)
            mg_lock_connection(c->mg);
        int n = mg_write(c->mg, buf, len);
        if (!c->sse)
            mg_unlock_connection(c->mg);
        rc = n == (int)len ? 0 : -1;
    }
    pthread_mutex_unlock(&c->wlock);
    if (rc == 0) {
        atomic_fetch_add_explicit(&c->srv->metrics.bytes_written, len, memory_order_relaxed);
        c->credit -= (int64_t)len + 64; /* TLS record overhead, generously */
    }
    return rc;
}

/* The guard refused a client frame: say why with a close frame now, on the
 * session's own thread (civetweb ends the session right after the failed
 * read), and keep the writer from sending a second one. */
static void guard_tripped(rt_conn_t *c, int code)
{
    rt_reason_t r = code == 1009 ? RT_REASON_MESSAGE_TOO_BIG : RT_REASON_PROTOCOL_ERROR;
    rt_log_info("client frame refused before reading it", "peer=%s reason=%s", c->peer,
                rt_reason_name(r));
    int expect = STATE_OPEN;
    if (atomic_compare_exchange_strong(&c->state, &expect, STATE_CLOSING)) {
        atomic_store(&c->close_reason, (int)r);
        c->closing_since_ms = mono_ms();
    }
    if (c->sub)
        rt_sub_close(c->sub);
    pthread_mutex_lock(&c->wlock);
    bool send_it = !c->close_sent && (c->mg || c->detached);
    c->close_sent = true;
    pthread_mutex_unlock(&c->wlock);
    if (send_it) {
        rt_frame_t *f = rt_ws_close_frame_new(code, rt_reason_name(r));
        if (f) {
            conn_write(c, f->data, f->len);
            rt_frame_unref(f);
        }
    }
}

static void conn_shutdown_socket_how(rt_conn_t *c, int how)
{
    pthread_mutex_lock(&c->wlock);
    if ((c->mg || c->detached) && c->fd >= 0)
        shutdown(c->fd, how);
    pthread_mutex_unlock(&c->wlock);
}

static void conn_shutdown_socket(rt_conn_t *c)
{
    conn_shutdown_socket_how(c, SHUT_RDWR);
}

static void conn_finish_close(rt_conn_t *c)
{
    if (c->close_sent)
        return;
    rt_reason_t r = (rt_reason_t)atomic_load(&c->close_reason);
    rt_sub_close(c->sub);
    for (size_t i = c->pend_idx; i < c->npending; i++)
        rt_frame_unref(c->pending[i]);
    c->npending = c->pend_idx = 0;
    bool writable = c->fd < 0 ? socket_room(c) > 256 : false;
    if (!c->sse && c->fd >= 0) {
        /* A slow consumer's socket is full: wait for room for the close frame
         * (bounded; the heartbeat shuts the socket after 2 s in CLOSING), so
         * the client learns the reason instead of seeing 1006. */
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        bool ready = poll(&p, 1, 0) == 1;
        if (!ready && mono_ms() - c->closing_since_ms < 1500) {
            writer_park(c);
            return;
        }
        writable = ready && (p.revents & POLLOUT) && !(p.revents & (POLLERR | POLLHUP));
    }
    c->close_sent = true;
    bool sent = false;
    if (!c->sse && writable) {
        rt_frame_t *f = rt_ws_close_frame_new(rt_reason_ws_code(r), rt_reason_name(r));
        if (f) {
            sent = conn_write(c, f->data, f->len) == 0;
            rt_frame_unref(f);
        }
    }
    /* After a close frame, only half-close: shutting the read side while the
     * client's frames sit unread makes the kernel send a reset, and the client
     * may lose the close frame and see 1006. Its close reply (or EOF) ends the
     * session; the heartbeat shuts the socket fully after 2 s otherwise.
     * Without a close frame, shut both sides now: that wakes civetweb's
     * reader, which runs the close handler. */
    conn_shutdown_socket_how(c, sent ? SHUT_WR : SHUT_RDWR);
}

/* Drain one connection as far as its socket allows. Writer thread only. */
static void writer_drain(rt_conn_t *c)
{
    char coalesce[65536];
    int state = atomic_load(&c->state);
    if (state == STATE_GONE)
        return;
    if (state == STATE_CLOSING && atomic_load(&c->close_reason) != RT_REASON_SHUTTING_DOWN &&
        atomic_load(&c->close_reason) != RT_REASON_TOKEN_EXPIRED) {
        conn_finish_close(c);
        return;
    }
    int64_t sndbuf = c->srv->cfg->sndbuf_bytes;
    if (c->wpend_len > c->wpend_off) {
        ssize_t n = send(c->fd, c->wpend + c->wpend_off, c->wpend_len - c->wpend_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            goto gone;
        if (n > 0)
            c->wpend_off += (size_t)n;
        if (c->wpend_off < c->wpend_len) {
            writer_park(c);
            return;
        }
        c->wpend_len = c->wpend_off = 0;
    }
    for (;;) {
        if (c->pend_idx == c->npending) {
            c->pend_idx = 0;
            c->npending = rt_sub_pop(c->sub, c->pending, 64);
            if (c->npending == 0) {
                if (atomic_load(&c->state) == STATE_CLOSING)
                    conn_finish_close(c);
                return;
            }
        }
        rt_frame_t *first = c->pending[c->pend_idx];
        int64_t need = first->len < sndbuf / 2 ? first->len : sndbuf / 2;
        if (c->credit < need) {
            c->credit = socket_room(c);
            if (c->credit < need) {
                writer_park(c);
                return;
            }
        }
        /* Coalesce whole frames that fit both the credit and the buffer. */
        size_t len = 0, k = c->pend_idx;
        /* A frame bigger than the credit (but within `need`) goes alone, like a
         * big one: the coalescing loop below would take nothing and spin. */
        if (first->len > sizeof(coalesce) || k + 1 == c->npending ||
            (int64_t)first->len > c->credit) {
            if (conn_write(c, first->data, first->len) != 0)
                goto gone;
            k++;
        } else {
            while (k < c->npending && len + c->pending[k]->len <= sizeof(coalesce) &&
                   (int64_t)(len + c->pending[k]->len) <= c->credit) {
                memcpy(coalesce + len, c->pending[k]->data, c->pending[k]->len);
                len += c->pending[k]->len;
                k++;
            }
            if (len && conn_write(c, coalesce, len) != 0)
                goto gone;
        }
        atomic_fetch_add_explicit(&c->srv->metrics.frames_written, k - c->pend_idx,
                                  memory_order_relaxed);
        for (size_t i = c->pend_idx; i < k; i++)
            rt_frame_unref(c->pending[i]);
        c->pend_idx = k;
    }
gone:
    rt_sub_close(c->sub);
    atomic_store(&c->state, STATE_CLOSING);
    conn_shutdown_socket(c);
}

static void detached_event(rt_conn_t *c, uint32_t events);

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    struct epoll_event evs[64];
    extern rt_server_t *rt__server;
    while (!atomic_load(&rt__server->stop)) {
        int n = epoll_wait(w->epfd, evs, 64, 500);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                uint64_t v;
                ssize_t r = read(w->evfd, &v, sizeof(v));
                (void)r;
                continue;
            }
            rt_conn_t *c = evs[i].data.ptr;
            if (c->detached) {
                detached_event(c, evs[i].events);
                continue;
            }
            c->parked = false;
            c->credit = 0;
            writer_drain(c);
            conn_unref(c);
        }
        for (;;) {
            pthread_mutex_lock(&w->lock);
            rt_conn_t *c = w->ready_head;
            if (c) {
                w->ready_head = c->next_ready;
                if (!w->ready_head)
                    w->ready_tail = NULL;
                c->in_ready = false;
            }
            pthread_mutex_unlock(&w->lock);
            if (!c)
                break;
            if (!c->parked)
                writer_drain(c);
            conn_unref(c);
        }
    }
    return NULL;
}

rt_server_t *rt__server;

/* ------------------------------------------------------------------------ */
/* HTTP helpers                                                                */

static const char *cors_origin(rt_server_t *srv, struct mg_connection *conn)
{
    const char *o = mg_get_header(conn, "Origin");
    if (!o || !rt_config_origin_allowed(srv->cfg, o))
        return NULL;
    return o;
}

static void send_json(struct mg_connection *conn, int status, const char *body, size_t len,
                      const char *extra_headers)
{
    rt_server_t *srv = rt__server;
    const char *origin = cors_origin(srv, conn);
    /* Date lets clients (and rtgw doctor) measure clock skew against rtgw. */
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
              "Cache-Control: no-store\r\nDate: %s\r\n%s%s%s%s\r\n",
              status, mg_get_response_code_text(conn, status), len, date,
              origin ? "Access-Control-Allow-Origin: " : "", origin ? origin : "",
              origin ? "\r\nVary: Origin\r\n" : "", extra_headers ? extra_headers : "");
    mg_write(conn, body, len);
}

static void send_resp(struct mg_connection *conn, rt_resp_t *r)
{
    send_json(conn, r->status, r->body ? r->body : "{}", r->body ? r->len : 2, NULL);
    rt_resp_clear(r);
}

static void send_error(struct mg_connection *conn, int status, const char *name, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));
static void send_error(struct mg_connection *conn, int status, const char *name, const char *fmt,
                       ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:s,s:s}", "error", name, "message", msg);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    send_json(conn, status, s ? s : "{}", s ? strlen(s) : 2, NULL);
    free(s);
}

static void log_request(struct mg_connection *conn, int status)
{
    if (!rt_log_enabled(RT_LOG_DEBUG))
        return;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    char url[512];
    rt_log_redact_url(ri->local_uri_raw, ri->query_string, url, sizeof(url));
    char q[600];
    rt_log_quote(url, q, sizeof(q));
    rt_log_debug("request", "method=%s url=%s status=%d peer=%s", ri->request_method, q, status,
                 ri->remote_addr);
}

static void client_ip(rt_server_t *srv, struct mg_connection *conn, char *out, size_t cap)
{
    rt_client_ip(mg_get_request_info(conn)->remote_addr, mg_get_header(conn, "X-Forwarded-For"),
                 srv->cfg->trusted_proxies, out, cap);
}

/* Per-IP rate limit: 0 if allowed, else sends 429 with Retry-After and returns -1. */
static int rate_limit(rt_server_t *srv, struct mg_connection *conn, rt_limiter_t *l, double cost,
                      const char *what, const char *var)
{
    char ip[64];
    client_ip(srv, conn, ip, sizeof(ip));
    int64_t wait = rt_limiter_take(l, ip, cost, mono_ms());
    if (wait == 0)
        return 0;
    atomic_fetch_add(&srv->metrics.refusals[RT_REASON_RATE_LIMITED], 1);
    long secs = (long)((wait + 999) / 1000);
    char hdr[48], msg[200], body[320];
    snprintf(hdr, sizeof(hdr), "Retry-After: %ld\r\n", secs);
    snprintf(msg, sizeof(msg), "too many %s from %s; retry after %ld s (%s)", what, ip, secs, var);
    json_t *o = json_pack("{s:s,s:s,s:I}", "error", "rate_limited", "message", msg, "retry_after",
                          (json_int_t)secs);
    char *js = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    snprintf(body, sizeof(body), "%s", js ? js : "{}");
    free(js);
    send_json(conn, 429, body, strlen(body), hdr);
    rt_log_info("rate limited", "what=%s ip=%s retry_after=%ld", what, ip, secs);
    return -1;
}

/* civetweb answers "Expect: 100-continue" only for its own file handlers; a
 * client such as curl otherwise waits a second before sending the body.
 * Returns 0, or -1 after a 417 for an expectation we cannot meet. */
static int expect_continue(struct mg_connection *conn)
{
    const char *e = mg_get_header(conn, "Expect");
    if (!e)
        return 0;
    if (strcasecmp(e, "100-continue") != 0) {
        send_error(conn, 417, "expectation_failed", "only Expect: 100-continue is supported");
        return -1;
    }
    mg_printf(conn, "HTTP/1.1 100 Continue\r\n\r\n");
    return 0;
}

/* Answer 413 and end the connection cleanly. The client may still be sending
 * the body: closing with it unread would reset the connection, and a client or
 * a proxy in front would then report the reset instead of the 413. So the rest
 * is read and dropped (at most 8 MiB, for at most 2 s) before civetweb closes
 * the connection. A client that sent Expect: 100-continue has sent no body. */
static void refuse_too_large(struct mg_connection *conn, size_t max, long long announced)
{
    char msg[200];
    if (announced >= 0)
        snprintf(msg, sizeof(msg),
                 "request body is %lld bytes; the limit is %zu (RTGW_MAX_BODY_BYTES)", announced,
                 max);
    else
        snprintf(msg, sizeof(msg),
                 "request body exceeds the limit of %zu bytes (RTGW_MAX_BODY_BYTES)", max);
    json_t *o = json_pack("{s:s,s:s}", "error", "body_too_large", "message", msg);
    char *js = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    mg_disable_connection_keep_alive(conn);
    send_json(conn, 413, js ? js : "{}", js ? strlen(js) : 2, "Connection: close\r\n");
    free(js);
    if (mg_get_header(conn, "Expect"))
        return;
    char scratch[16384];
    size_t dropped = 0;
    int64_t until = mono_ms() + 2000;
    while (dropped < (8u << 20) && mono_ms() < until) {
        int n = mg_read(conn, scratch, sizeof(scratch));
        if (n <= 0)
            break;
        dropped += (size_t)n;
    }
}

/* Read the whole body into a malloc'd buffer, bounded by max. Returns 0, or
 * sends 413/400 and returns -1. */
static int read_body(struct mg_connection *conn, size_t max, char **out, size_t *out_len)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (ri->content_length > (long long)max) {
        refuse_too_large(conn, max, ri->content_length);
        return -1;
    }
    if (expect_continue(conn) != 0)
        return -1;
    size_t cap = ri->content_length >= 0 ? (size_t)ri->content_length + 1 : 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        send_error(conn, 500, "internal_error", "out of memory");
        return -1;
    }
    for (;;) {
        if (len == cap - 1) {
            if (cap - 1 > max) {
                free(buf);
                refuse_too_large(conn, max, -1);
                return -1;
            }
            size_t nc = cap * 2;
            char *nb = realloc(buf, nc);
            if (!nb) {
                free(buf);
                send_error(conn, 500, "internal_error", "out of memory");
                return -1;
            }
            buf = nb;
            cap = nc;
        }
        int n = mg_read(conn, buf + len, cap - 1 - len);
        if (n < 0) {
            free(buf);
            send_error(conn, 400, "bad_request", "could not read the request body");
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            free(buf);
            refuse_too_large(conn, max, -1);
            return -1;
        }
    }
    buf[len] = 0;
    *out = buf;
    *out_len = len;
    return 0;
}

static bool method_is(struct mg_connection *conn, const char *m)
{
    return strcmp(mg_get_request_info(conn)->request_method, m) == 0;
}

static int handle_options(struct mg_connection *conn)
{
    rt_server_t *srv = rt__server;
    const char *origin = cors_origin(srv, conn);
    mg_printf(
        conn,
        "HTTP/1.1 204 No Content\r\n%s%s%sAccess-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
        "Access-Control-Allow-Headers: Authorization, Content-Type, Idempotency-Key, "
        "Last-Event-ID\r\n"
        "Access-Control-Max-Age: 600\r\nContent-Length: 0\r\n\r\n",
        origin ? "Access-Control-Allow-Origin: " : "", origin ? origin : "",
        origin ? "\r\nVary: Origin\r\n" : "");
    return 204;
}

/* ------------------------------------------------------------------------ */
/* HTTP routes                                                                 */

static int h_token(struct mg_connection *conn, void *cb)
{
    rt_server_t *srv = cb;
    if (method_is(conn, "OPTIONS"))
        return handle_options(conn);
    if (!method_is(conn, "POST")) {
        send_error(conn, 405, "method_not_allowed", "use POST /v1/realtime/token");
        return 405;
    }
    if (rate_limit(srv, conn, srv->mint_limit, 1, "token mints", "RTGW_RATE_LIMIT_MINT") != 0)
        return 429;
    char *body;
    size_t len;
    if (read_body(conn, (size_t)srv->cfg->max_body_bytes, &body, &len) != 0)
        return 400;
    rt_resp_t r = {0};
    rt_api_token(&srv->api, mg_get_header(conn, "Authorization"), body, len, now_ms() / 1000, &r);
    free(body);
    int st = r.status;
    send_resp(conn, &r);
    log_request(conn, st);
    return st;
}

/* A streamed publish (Content-Type: text/stream). civetweb's mg_read on a
 * chunked body keeps reading across HTTP chunks until its buffer is full, so
 * reading in blocks would hold a slow producer's tokens back. The request
 * thread therefore reads byte by byte into a small buffer, and a flusher
 * thread publishes whatever has arrived every RT_STREAM_FLUSH_MS (and at
 * 1 KiB), never splitting a UTF-8 sequence. Only the flusher publishes
 * chunks, so their order is the byte order. */
#define RT_STREAM_FLUSH_MS 20
#define RT_STREAM_CHUNK 1024

typedef struct {
    rt_server_t *srv;
    const rt_publish_target_t *t;
    char sid[16];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char buf[4 * RT_STREAM_CHUNK];
    size_t len;
    bool done;
    int chunks;
    int64_t total;
} stream_t;

/* Publish buf's complete UTF-8 prefix (all of it when final). Lock held. */
static void stream_flush_locked(stream_t *st, bool final)
{
    while (st->len) {
        size_t n = st->len < RT_STREAM_CHUNK ? st->len : RT_STREAM_CHUNK;
        if (!final || n < st->len) {
            /* Hold back an incomplete trailing sequence. */
            size_t i = n;
            while (i > 0 && n - i < 3 && ((unsigned char)st->buf[i - 1] & 0xC0) == 0x80)
                i--;
            if (i > 0) {
                unsigned char lead = (unsigned char)st->buf[i - 1];
                size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
                if (n - (i - 1) < need)
                    n = i - 1;
            }
            if (n == 0)
                return;
        }
        if (rt_api_publish_stream_event(&st->srv->api, st->t, "chunk", st->sid, st->buf, n,
                                        now_ms()) == 0) {
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
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += RT_STREAM_FLUSH_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&st->cond, &st->lock, &ts);
        if (!st->done)
            stream_flush_locked(st, false);
    }
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

static void publish_stream(rt_server_t *srv, struct mg_connection *conn, rt_publish_target_t *t)
{
    if (expect_continue(conn) != 0)
        return;
    stream_t *st = calloc(1, sizeof(*st));
    if (!st) {
        send_error(conn, 500, "internal_error", "out of memory");
        return;
    }
    st->srv = srv;
    st->t = t;
    unsigned char rnd[9];
    randombytes_buf(rnd, sizeof(rnd));
    rt_b64url_encode(rnd, sizeof(rnd), st->sid, sizeof(st->sid));
    pthread_mutex_init(&st->lock, NULL);
    pthread_cond_init(&st->cond, NULL);
    rt_api_publish_stream_event(&srv->api, t, "datastream-start", st->sid, st->sid, strlen(st->sid),
                                now_ms());
    pthread_t flusher;
    bool threaded = pthread_create(&flusher, NULL, stream_flusher, st) == 0;
    int64_t limit = srv->cfg->max_body_bytes * 64, read_total = 0;
    bool too_large = false, failed = false;
    for (;;) {
        char c;
        int n = mg_read(conn, &c, 1);
        if (n <= 0) {
            failed = n < 0;
            break;
        }
        if (++read_total > limit) {
            too_large = true;
            break;
        }
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
    pthread_mutex_lock(&st->lock);
    st->done = true;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
    if (threaded)
        pthread_join(flusher, NULL);
    stream_flush_locked(st, true);
    rt_api_publish_stream_event(&srv->api, t, "datastream-end", st->sid, st->sid, strlen(st->sid),
                                now_ms());
    if (too_large) {
        send_error(
            conn, 413, "body_too_large",
            "a streamed body may carry at most %lld bytes (64 x RTGW_MAX_BODY_BYTES); the stream "
            "was ended after %d chunks",
            (long long)limit, st->chunks);
    } else if (failed) {
        send_error(conn, 400, "bad_request", "the streamed body ended abnormally after %d chunks",
                   st->chunks);
    } else {
        char resp[160];
        int rl = snprintf(resp, sizeof(resp),
                          "{\"ok\":true,\"stream_id\":\"%s\",\"chunks\":%d,\"bytes\":%lld}",
                          st->sid, st->chunks, (long long)st->total);
        send_json(conn, 200, resp, (size_t)rl, NULL);
    }
    pthread_cond_destroy(&st->cond);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

static int h_publish(struct mg_connection *conn, void *cb)
{
    rt_server_t *srv = cb;
    if (method_is(conn, "OPTIONS"))
        return handle_options(conn);
    if (!method_is(conn, "POST")) {
        send_error(conn, 405, "method_not_allowed",
                   "use POST /v1/realtime/publish?channel=…&topic=…");
        return 405;
    }
    if (atomic_load(&srv->draining)) {
        send_error(conn, 503, "shutting_down",
                   "the gateway is shutting down; retry on another node");
        return 503;
    }
    const struct mg_request_info *ri = mg_get_request_info(conn);
    rt_publish_target_t *t = malloc(sizeof(*t));
    if (!t) {
        send_error(conn, 500, "internal_error", "out of memory");
        return 500;
    }
    rt_resp_t r = {0};
    if (rt_api_publish_prepare(&srv->api, mg_get_header(conn, "Authorization"), ri->query_string,
                               now_ms() / 1000, t, &r) != 0) {
        free(t);
        atomic_fetch_add(&srv->metrics.publish_errors, 1);
        int st = r.status;
        send_resp(conn, &r);
        return st;
    }
    if (rate_limit(srv, conn, srv->publish_limit, t->ntopics, "publishes",
                   "RTGW_RATE_LIMIT_PUBLISH") != 0) {
        free(t);
        return 429;
    }
    const char *ik = mg_get_header(conn, "Idempotency-Key");
    if (ik && !t->idem_key[0]) {
        if (rt_name_validate(rt_slice_cstr(ik), 255) != 0) {
            free(t);
            send_error(conn, 400, "bad_request",
                       "Idempotency-Key must be 1-255 bytes of printable UTF-8");
            return 400;
        }
        snprintf(t->idem_key, sizeof(t->idem_key), "%s", ik);
    }
    const char *ct = mg_get_header(conn, "Content-Type");
    if (ct && strncasecmp(ct, "text/stream", 11) == 0) {
        publish_stream(srv, conn, t);
        free(t);
        return 200;
    }
    char *body;
    size_t len;
    if (read_body(conn, (size_t)srv->cfg->max_body_bytes, &body, &len) != 0) {
        free(t);
        atomic_fetch_add(&srv->metrics.publish_errors, 1);
        return 413;
    }
    rt_api_publish_body(&srv->api, t, body, len, now_ms(), &r);
    free(body);
    free(t);
    int st = r.status;
    send_resp(conn, &r);
    log_request(conn, st);
    return st;
}

static int h_publish_batch(struct mg_connection *conn, void *cb)
{
    rt_server_t *srv = cb;
    if (method_is(conn, "OPTIONS"))
        return handle_options(conn);
    if (!method_is(conn, "POST")) {
        send_error(conn, 405, "method_not_allowed", "use POST /v1/realtime/publish/batch");
        return 405;
    }
    if (atomic_load(&srv->draining)) {
        send_error(conn, 503, "shutting_down",
                   "the gateway is shutting down; retry on another node");
        return 503;
    }
    if (rate_limit(srv, conn, srv->publish_limit, 1, "publishes", "RTGW_RATE_LIMIT_PUBLISH") != 0)
        return 429;
    char *body;
    size_t len;
    if (read_body(conn, (size_t)srv->cfg->max_body_bytes, &body, &len) != 0)
        return 413;
    rt_resp_t r = {0};
    rt_api_publish_batch(&srv->api, mg_get_header(conn, "Authorization"), body, len, now_ms(), &r);
    free(body);
    int st = r.status;
    send_resp(conn, &r);
    log_request(conn, st);
    return st;
}

static int h_health(struct mg_connection *conn, void *cb)
{
    rt_server_t *srv = cb;
    rt_hub_stats_t hs;
    rt_hub_stats(srv->hub, &hs);
    char body[512];
    bool draining = atomic_load(&srv->draining);
    int n = snprintf(body, sizeof(body),
                     "{\"status\":\"%s\",\"uptime_s\":%lld,\"connections\":%ld,\"channels\":%llu,"
                     "\"subscriptions\":%llu,\"version\":\"%s\",\"dev\":%s}",
                     draining ? "draining" : "ok", (long long)((now_ms() - srv->started_ms) / 1000),
                     atomic_load(&srv->nconns), (unsigned long long)hs.channels,
                     (unsigned long long)hs.subscriptions, RT_VERSION,
                     srv->cfg->dev ? "true" : "false");
    send_json(conn, draining ? 503 : 200, body, (size_t)n, NULL);
    return 200;
}

static int h_ready(struct mg_connection *conn, void *cb)
{
    rt_server_t *srv = cb;
    bool draining = atomic_load(&srv->draining);
    bool full = atomic_load(&srv->nconns) >= srv->cfg->max_connections;
    bool bus_up = rt_bus_ready(srv->bus);
    bool ready = !draining && bus_up;
    char body[200];
    int n =
        snprintf(body, sizeof(body),
                 "{\"ready\":%s,\"bus\":\"%s\",\"bus_up\":%s,\"draining\":%s,\"at_capacity\":%s}",
                 ready ? "true" : "false", rt_bus_name(srv->bus), bus_up ? "true" : "false",
                 draining ? "true" : "false", full ? "true" : "false");
    send_json(conn, ready ? 200 : 503, body, (size_t)n, NULL);
    return 200;
}

static int h_metrics(struct mg_connection *conn, void *cb)
{
    rt_server_t *srv = cb;
    char *text = rt_metrics_render(&srv->metrics, srv->hub, (now_ms() - srv->started_ms) / 1000);
    if (!text) {
        send_error(conn, 500, "internal_error", "out of memory");
        return 500;
    }
    size_t len = strlen(text);
    mg_printf(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %zu\r\n\r\n",
        len);
    mg_write(conn, text, len);
    free(text);
    return 200;
}

static int h_dev(struct mg_connection *conn, void *cb)
{
    /* The v3 Inngest client probes GET /dev in inferred dev mode and only
     * needs JSON back; this lets it find rtgw on :8288 with no configuration. */
    (void)cb;
    send_json(conn, 200, "{}", 2, NULL);
    return 200;
}

/* A plain GET on the WebSocket endpoint: the Upgrade never reached rtgw. The
 * usual cause is a proxy that does not forward Upgrade/Connection. */
static int h_connect_plain(struct mg_connection *conn, void *cb)
{
    (void)cb;
    send_error(
        conn, 426, "upgrade_required",
        "/v1/realtime/connect needs a WebSocket upgrade (Upgrade: websocket, Connection: "
        "Upgrade); if a proxy sits in front of rtgw it is dropping those headers (nginx: "
        "proxy_http_version 1.1 and proxy_set_header Upgrade/Connection; see docs/operations.md)");
    return 426;
}

static int h_root(struct mg_connection *conn, void *cb)
{
    rt_server_t *srv = cb;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (srv->cfg->dev && strcmp(ri->local_uri, "/") == 0 && method_is(conn, "GET")) {
        size_t len = strlen(rt_demo_page_html);
        mg_printf(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\n\r\n",
            len);
        mg_write(conn, rt_demo_page_html, len);
        return 200;
    }
    if (srv->cfg->dev && strcmp(ri->local_uri, "/dev/key") == 0 && method_is(conn, "GET")) {
        /* Dev only: the demo page mints tokens with this. Only for the demo
         * page itself: a page on another origin that the developer happens to
         * visit must not read the key from localhost (no CORS header, and a
         * cross-origin request is refused outright). */
        const char *origin = mg_get_header(conn, "Origin");
        const char *site = mg_get_header(conn, "Sec-Fetch-Site");
        const char *host = mg_get_header(conn, "Host");
        char self[300];
        snprintf(self, sizeof(self), "http://%s", host ? host : "");
        if ((origin && strcmp(origin, self) != 0) ||
            (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)) {
            mg_printf(
                conn,
                "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
                "Content-Length: 71\r\n\r\n"
                "{\"error\":\"forbidden\",\"message\":\"the dev key is for the demo page only\"}");
            return 403;
        }
        char body[300];
        int n = snprintf(body, sizeof(body), "{\"signing_key\":\"%s\"}", srv->cfg->signing_key);
        mg_printf(conn,
                  "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                  "Cache-Control: no-store\r\n\r\n",
                  n);
        mg_write(conn, body, (size_t)n);
        sodium_memzero(body, sizeof(body));
        return 200;
    }
    send_error(conn, 404, "not_found",
               "no route %s; see /v1/realtime/token, /v1/realtime/publish, /v1/realtime/connect, "
               "/v1/realtime/sse, /health, /ready, /metrics",
               strcmp(ri->local_uri, "/") == 0 ? "/ (the demo page exists only with --dev)"
                                               : "for this path");
    return 404;
}

/* ------------------------------------------------------------------------ */
/* sessions (WebSocket and SSE)                                                */

typedef struct {
    rt_reason_t reason;
    char detail[96];
    int tok_err;
} refusal_t;

/* Checks shared by WebSocket and SSE: capacity, origin, token. Fills c->claims. */
static int session_admit(rt_server_t *srv, struct mg_connection *conn, rt_conn_t *c, refusal_t *why)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    why->tok_err = 0;
    why->detail[0] = 0;
    if (atomic_load(&srv->draining)) {
        why->reason = RT_REASON_SHUTTING_DOWN;
        return -1;
    }
    if (atomic_load(&srv->nconns) >= srv->cfg->max_connections) {
        why->reason = RT_REASON_OVER_CAPACITY;
        snprintf(why->detail, sizeof(why->detail), "limit %lld (RTGW_MAX_CONNECTIONS)",
                 (long long)srv->cfg->max_connections);
        return -1;
    }
    client_ip(srv, conn, c->ip, sizeof(c->ip));
    if (!c->ip_held) {
        if (!rt_conncount_acquire(srv->ip_conns, c->ip)) {
            why->reason = RT_REASON_OVER_CAPACITY;
            snprintf(why->detail, sizeof(why->detail),
                     "per-IP limit %lld (RTGW_MAX_CONNECTIONS_PER_IP)",
                     (long long)srv->cfg->max_connections_per_ip);
            return -1;
        }
        c->ip_held = true;
    }
    const char *origin = mg_get_header(conn, "Origin");
    if (!rt_config_origin_allowed(srv->cfg, origin)) {
        atomic_fetch_add(&srv->metrics.origin_refused, 1);
        char q[200];
        rt_log_quote(origin, q, sizeof(q));
        rt_log_warn("origin refused", "origin=%s peer=%s", q, ri->remote_addr);
        why->reason = RT_REASON_ORIGIN_NOT_ALLOWED;
        return -1;
    }
    /* On the heap, sized by the token limit: this runs on a connection thread
     * whose small stack also has to carry token verification below it. One
     * byte over the limit lets verification name the refusal (too large). */
    size_t tcap = srv->topts.max_token_bytes + 2;
    char *tok = malloc(tcap);
    if (!tok) {
        why->reason = RT_REASON_INTERNAL;
        return -1;
    }
    int tl = rt_query_get(ri->query_string, "token", 0, tok, tcap);
    rt_slice_t cred;
    if (tl >= 0) {
        cred = (rt_slice_t){tok, (size_t)tl};
    } else if (tl == -2) {
        free(tok);
        why->reason = RT_REASON_TOKEN_INVALID;
        why->tok_err = RT_TOK_ETOO_LARGE;
        snprintf(why->detail, sizeof(why->detail), "%s", rt_tok_errname(RT_TOK_ETOO_LARGE));
        return -1;
    } else {
        cred = rt_api_bearer(mg_get_header(conn, "Authorization"));
    }
    if (cred.len == 0) {
        free(tok);
        why->reason = RT_REASON_TOKEN_MISSING;
        return -1;
    }
    int rc = rt_token_verify(srv->ring, &srv->topts, cred, now_ms() / 1000, &c->claims);
    sodium_memzero(tok, tl > 0 ? (size_t)tl : 0);
    free(tok);
    if (rc) {
        rt_metrics_token_refusal(&srv->metrics, rc);
        why->tok_err = rc;
        why->reason = rc == RT_TOK_EEXPIRED ? RT_REASON_TOKEN_EXPIRED : RT_REASON_TOKEN_INVALID;
        snprintf(why->detail, sizeof(why->detail), "%s", rt_tok_errname(rc));
        return -1;
    }
    c->token_exp = c->claims.exp;
    /* since=<id> may repeat (one per channel; a comma list works too). */
    c->nsince = 0;
    for (int i = 0; i < 16; i++) {
        char sv[16 * RT_POS_MAX];
        int sl = rt_query_get(ri->query_string, "since", i, sv, sizeof(sv));
        if (sl == -1)
            break;
        char *save = NULL;
        for (char *p = sl >= 0 ? strtok_r(sv, ",", &save) : NULL; p;
             p = strtok_r(NULL, ",", &save)) {
            if (c->nsince == 16 || rt_pos_parse(rt_slice_cstr(p), &c->since[c->nsince]) != 0) {
                sl = -2;
                break;
            }
            c->nsince++;
        }
        if (sl == -2) {
            why->reason = RT_REASON_BAD_REQUEST;
            snprintf(why->detail, sizeof(why->detail),
                     "since must be event ids (at most 16) as received in the id field");
            return -1;
        }
    }
    /* Take the slot atomically: the check at the top is only a fast path, and
     * concurrent handshakes could all pass it before any of them is counted. */
    if (atomic_fetch_add(&srv->nconns, 1) >= srv->cfg->max_connections) {
        atomic_fetch_sub(&srv->nconns, 1);
        why->reason = RT_REASON_OVER_CAPACITY;
        snprintf(why->detail, sizeof(why->detail), "limit %lld (RTGW_MAX_CONNECTIONS)",
                 (long long)srv->cfg->max_connections);
        return -1;
    }
    c->slot_held = true;
    return 0;
}

static rt_conn_t *conn_new(rt_server_t *srv, struct mg_connection *conn, bool sse)
{
    rt_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    c->srv = srv;
    c->mg = conn;
    c->sse = sse;
    c->fd = -1;
    pthread_mutex_init(&c->wlock, NULL);
    atomic_init(&c->state, STATE_OPEN);
    atomic_init(&c->last_rx_ms, mono_ms());
    c->last_ping_ms = mono_ms();
    snprintf(c->peer, sizeof(c->peer), "%s:%d", mg_get_request_info(conn)->remote_addr,
             mg_get_request_info(conn)->remote_port);
    return c;
}

static void conns_add(rt_server_t *srv, rt_conn_t *c)
{
    pthread_mutex_lock(&srv->conns_lock);
    c->prev = NULL;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    pthread_mutex_unlock(&srv->conns_lock);
    if (!c->slot_held) { /* an extended-protocol refusal, listed until it closes */
        atomic_fetch_add(&srv->nconns, 1);
        c->slot_held = true;
    }
    atomic_fetch_add(&srv->metrics.connections_open, 1);
    atomic_fetch_add(&srv->metrics.connections_total, 1);
}

static void conns_del(rt_server_t *srv, rt_conn_t *c)
{
    pthread_mutex_lock(&srv->conns_lock);
    if (c->prev)
        c->prev->next = c->next;
    else if (srv->conns == c)
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    pthread_mutex_unlock(&srv->conns_lock);
    if (c->slot_held) {
        c->slot_held = false;
        atomic_fetch_sub(&srv->nconns, 1);
    }
    atomic_fetch_sub(&srv->metrics.connections_open, 1);
}

/* Subscribe a session to every (channel, topic) its token grants, grouped by
 * channel, resuming each channel from the `since` candidate with its epoch.
 * Returns the ack JSON for extended clients (malloc'd):
 *   {"kind":"rtgw.subscribed","topics":[…],"expires_at":s,
 *    "channels":{"<ch>":{"id":"<latest>","recovered":b?,"replayed":n?}},"recovered":b?} */
static char *session_subscribe(rt_server_t *srv, rt_conn_t *c)
{
    json_t *ack = c->ext ? json_pack("{s:s,s:[],s:I}", "kind", "rtgw.subscribed", "topics",
                                     "expires_at", (json_int_t)c->token_exp)
                         : NULL;
    json_t *channels = c->ext ? json_object() : NULL;
    bool all_recovered = true, had_since = false;
    for (size_t i = 0; i < c->claims.ntopics; i++) {
        const char *ch = c->claims.topics[i].channel;
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->claims.topics[j].channel, ch) == 0)
                seen = true;
        if (seen)
            continue;
        rt_slice_t names[256];
        size_t n = 0;
        for (size_t j = i; j < c->claims.ntopics && n < 256; j++)
            if (strcmp(c->claims.topics[j].channel, ch) == 0)
                names[n++] = rt_slice_cstr(c->claims.topics[j].name);
        rt_resume_t res;
        const rt_pos_t *cands = c->nsince ? c->since : c->connect_pos;
        size_t ncands = c->nsince ? c->nsince : c->nconnect_pos;
        if (rt_bus_attach(srv->bus, c->sub, rt_slice_cstr(ch), names, n, cands, ncands, &res) !=
            0) {
            rt_log_error("subscribe failed", "reason=out_of_memory peer=%s", c->peer);
            continue;
        }
        if (!c->nsince)
            res.had_since = false; /* the connect-time position is ours, not the client's */
        if (res.had_since) {
            had_since = true;
            all_recovered &= res.recovered;
            if (!res.recovered)
                rt_log_info("resume not recovered", "peer=%s", c->peer);
        }
        if (channels) {
            char ps[RT_POS_MAX];
            rt_pos_format(res.current, ps, sizeof(ps));
            json_t *cj = json_pack("{s:s}", "id", ps);
            if (res.had_since) {
                json_object_set_new(cj, "recovered", json_boolean(res.recovered));
                json_object_set_new(cj, "replayed", json_integer((json_int_t)res.replayed));
            }
            json_object_set_new(channels, ch, cj);
            for (size_t j = 0; j < n; j++)
                json_array_append_new(
                    json_object_get(ack, "topics"),
                    json_pack("{s:s,s:s%}", "channel", ch, "name", names[j].base, names[j].len));
        }
    }
    if (!ack)
        return NULL;
    json_object_set_new(ack, "channels", channels);
    if (had_since)
        json_object_set_new(ack, "recovered", json_boolean(all_recovered));
    char *s = json_dumps(ack, JSON_COMPACT);
    json_decref(ack);
    return s;
}

static void session_start(rt_server_t *srv, rt_conn_t *c, const struct mg_request_info *ri)
{
    if (c->fd < 0)
        c->fd = peers_lookup(ri);
    if (c->fd >= 0) {
        int one = 1, sb = (int)srv->cfg->sndbuf_bytes;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
    } else {
        rt_log_debug("socket not found for session; writes fall back to civetweb's timeout",
                     "peer=%s", c->peer);
    }
    c->sub = rt_sub_new(srv->hub, c->sse ? RT_FMT_SSE : RT_FMT_WS, &sink_ops, c);
    if (c->sub)
        rt_sub_set_ext(c->sub, c->ext);
    conns_add(srv, c);
}

/* Subscribe, queue the ack (extended clients) ahead of any replay, then hand
 * the connection to a writer. Wakes before that are not lost: the queue stays
 * "scheduled" and writer_schedule below drains it. */
static void session_go(rt_server_t *srv, rt_conn_t *c)
{
    if (!c->sub) {
        conn_close_async(c, RT_REASON_INTERNAL);
        return;
    }
    char *ack = session_subscribe(srv, c);
    if (ack) {
        rt_frame_t *f;
        if (c->sse) {
            size_t al = strlen(ack);
            f = rt_frame_new(al + 40);
            if (f)
                f->len = (uint32_t)snprintf(f->data, f->cap, "event: rtgw.subscribed\ndata: %s\n\n",
                                            ack);
        } else {
            f = rt_ws_frame_new(RT_WS_TEXT, ack, strlen(ack));
        }
        free(ack);
        if (f) {
            rt_sub_push_front(c->sub, f);
            rt_frame_unref(f);
        }
    }
    int wi = atomic_fetch_add(&srv->next_writer, 1) % srv->nwriters;
    writer_t *w = &srv->writers[wi];
    if (c->detached) {
        /* The writer thread now reads this socket too; the registration holds
         * a reference until detached_finish. */
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        conn_ref(c);
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
            rt_log_error("cannot watch a session socket", "peer=%s errno=%d", c->peer, errno);
            conn_unref(c);
            c->detached_done = true;
            conn_close_async(c, RT_REASON_INTERNAL);
        }
    }
    atomic_store(&c->writer, w);
    writer_schedule(c);
}

/*
 * Detach a session from its civetweb thread. civetweb serves each connection
 * with a thread of its own for as long as it is open, which costs a thread
 * stack per subscriber and caps subscribers at the process's thread limit.
 * After the handshake rtgw takes the socket over: it keeps a duplicate of the
 * descriptor, and points civetweb's descriptor number at one end of a closed
 * socketpair, so civetweb's read loop sees end-of-stream at once, runs the
 * close handler and frees the thread (its graceful close shuts the socketpair,
 * not the client's socket). From then on the session's writer thread reads
 * the client's frames from its epoll too. TLS sessions stay on civetweb's
 * thread: their TLS state lives inside civetweb.
 * Call before session_go (no writer may touch the socket yet). 0 or -1.
 */
static int session_detach(rt_conn_t *c, struct mg_connection *conn)
{
    if (c->fd < 0 || mg_get_request_info(conn)->is_ssl)
        return -1;
    int nfd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
    if (nfd < 0)
        return -1;
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
        close(nfd);
        return -1;
    }
    pthread_mutex_lock(&c->wlock);
    int old = c->fd;
    guard_stop(c, old);
    int rc = dup2(sp[0], old) < 0 ? -1 : 0;
    if (rc == 0) {
        c->fd = nfd;
        c->mg = NULL;
        c->detached = true;
    }
    pthread_mutex_unlock(&c->wlock);
    close(sp[0]);
    close(sp[1]);
    if (rc != 0)
        close(nfd);
    return rc;
}

static void session_end(rt_server_t *srv, rt_conn_t *c)
{
    guard_stop(c, c->fd);
    if (c->sub)
        rt_hub_unsubscribe_all(srv->hub, c->sub);
    rt_reason_t r = atomic_load(&c->state) == STATE_OPEN
                        ? RT_REASON_NORMAL
                        : (rt_reason_t)atomic_load(&c->close_reason);
    atomic_store(&c->state, STATE_GONE);
    /* A writer may have this socket parked in epoll; break the socket so the
     * event fires and the writer drops its reference before civetweb closes
     * the fd (closing would silently remove it from epoll). Bounded wait. */
    for (int i = 0; i < 40 && c->parked && !c->detached; i++) {
        if (i == 0 && c->fd >= 0)
            shutdown(c->fd, SHUT_RDWR);
        usleep(5000);
    }
    pthread_mutex_lock(&c->wlock);
    c->mg = NULL;
    pthread_mutex_unlock(&c->wlock);
    if (!c->refused)
        atomic_fetch_add(&srv->metrics.disconnects[r], 1);
    conns_del(srv, c);
    rt_log_debug("session closed", "peer=%s reason=%s", c->peer, rt_reason_name(r));
}

/* ---- WebSocket ---- */

/* The subscription starts after the 101 (or the SSE headers) went out, but a
 * client may publish, or cause a publish, as soon as it sees them. Pin each
 * channel's position before answering and resume from it afterwards. */
static void pin_positions(rt_server_t *srv, rt_conn_t *c)
{
    if (c->nsince)
        return;
    for (size_t i = 0; i < c->claims.ntopics && c->nconnect_pos < 16; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(c->claims.topics[j].channel, c->claims.topics[i].channel) == 0;
        if (!seen && rt_bus_position(srv->bus, rt_slice_cstr(c->claims.topics[i].channel),
                                     &c->connect_pos[c->nconnect_pos]) == 0)
            c->nconnect_pos++;
    }
}

static const char *ws_subprotocols[] = {"rtgw.v1"};
static struct mg_websocket_subprotocols ws_protos = {1, ws_subprotocols};

static int ws_connect(const struct mg_connection *cconn, void *cb)
{
    rt_server_t *srv = cb;
    struct mg_connection *conn = (struct mg_connection *)cconn;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    /* civetweb 1.15 sets acceptedWebSocketSubprotocol only when the request
     * offers one, and never clears it: a worker's previous rtgw.v1 session would
     * otherwise make this one "extended" and answer a subprotocol the client did
     * not ask for (which clients reject). Clear it when none was offered. */
    if (!mg_get_header(conn, "Sec-WebSocket-Protocol"))
        ((struct mg_request_info *)ri)->acceptedWebSocketSubprotocol = NULL;
    rt_conn_t *c = conn_new(srv, conn, false);
    if (!c) {
        send_error(conn, 503, "internal_error", "out of memory");
        return 1;
    }
    char flag[8];
    c->ext = (ri->acceptedWebSocketSubprotocol &&
              strcmp(ri->acceptedWebSocketSubprotocol, "rtgw.v1") == 0) ||
             (rt_query_get(ri->query_string, "rtgw", 0, flag, sizeof(flag)) > 0 &&
              strcmp(flag, "1") == 0);
    refusal_t why;
    if (session_admit(srv, conn, c, &why) != 0) {
        atomic_fetch_add(&srv->metrics.refusals[why.reason], 1);
        rt_log_info("websocket refused", "peer=%s reason=%s detail=%s ext=%d", c->peer,
                    rt_reason_name(why.reason), why.detail[0] ? why.detail : "-", c->ext);
        if (c->ext) {
            /* A browser cannot read the status of a failed upgrade (it sees
             * 1006): complete it, then close with the documented code. */
            c->refused = true;
            c->refuse_reason = why.reason;
            snprintf(c->refuse_detail, sizeof(c->refuse_detail), "%s", why.detail);
            mg_set_user_connection_data(conn, c);
            return 0;
        }
        int st = rt_reason_http_status(why.reason);
        send_error(conn, st ? st : 400,
                   why.tok_err ? rt_tok_errname(why.tok_err) : rt_reason_name(why.reason), "%s%s%s",
                   rt_reason_text(why.reason), why.detail[0] ? ": " : "", why.detail);
        conn_unref(c);
        return 1;
    }
    /* Guard the client's frames from the first byte after the handshake; a
     * client that already sent frames would start the guard mid-stream. */
    c->fd = peers_lookup(ri);
    char early;
    if (c->fd >= 0 && !ri->is_ssl && recv(c->fd, &early, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
        atomic_fetch_add(&srv->metrics.refusals[RT_REASON_PROTOCOL_ERROR], 1);
        send_error(conn, 400, "protocol_error",
                   "the client sent data before the WebSocket handshake completed");
        conn_unref(c);
        return 1;
    }
    guard_start(c, c->fd, (uint64_t)srv->cfg->max_client_frame_bytes);
    pin_positions(srv, c);
    mg_set_user_connection_data(conn, c);
    return 0;
}

static void ws_ready(struct mg_connection *conn, void *cb)
{
    rt_server_t *srv = cb;
    rt_conn_t *c = mg_get_user_connection_data(conn);
    if (!c)
        return;
    if (c->refused) {
        /* Upgrade done; close at once with the reason. The session is listed
         * so the heartbeat ends it if the client never answers the close. */
        session_start(srv, c, mg_get_request_info(conn));
        atomic_store(&c->close_reason, (int)c->refuse_reason);
        atomic_store(&c->state, STATE_CLOSING);
        c->closing_since_ms = mono_ms();
        c->close_sent = true;
        char reason[123];
        snprintf(reason, sizeof(reason), "%s%s%s", rt_reason_name(c->refuse_reason),
                 c->refuse_detail[0] ? ": " : "", c->refuse_detail);
        rt_frame_t *f = rt_ws_close_frame_new(rt_reason_ws_code(c->refuse_reason), reason);
        if (f) {
            conn_write(c, f->data, f->len);
            rt_frame_unref(f);
        }
        return;
    }
    session_start(srv, c, mg_get_request_info(conn));
    if (session_detach(c, conn) != 0 && !mg_get_request_info(conn)->is_ssl)
        rt_log_debug("session stays on its civetweb thread", "peer=%s", c->peer);
    session_go(srv, c);
}

static void ext_reply(rt_conn_t *c, json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        return;
    rt_frame_t *f = rt_ws_frame_new(RT_WS_TEXT, s, strlen(s));
    free(s);
    if (f) {
        rt_sub_push(c->sub, f);
        rt_frame_unref(f);
    }
}

/* Extended-protocol client messages (JSON text frames), validated by
 * rt_extmsg_refresh (extmsg.h). The new token must grant the same topics or
 * fewer; dropped topics are unsubscribed at once. Anything else gets an
 * rtgw.error frame and the old token stays. */
static void ext_message(rt_server_t *srv, rt_conn_t *c, const char *data, size_t len)
{
    rt_claims_t next;
    rt_extmsg_refusal_t why;
    if (rt_extmsg_refresh(srv->ring, &srv->topts, &c->claims, data, len, now_ms() / 1000, &next,
                          &why) != 0) {
        if (why.tok_err)
            rt_metrics_token_refusal(&srv->metrics, why.tok_err);
        ext_reply(c, json_pack("{s:s,s:s,s:s}", "kind", "rtgw.error", "error", why.error, "message",
                               why.message));
        return;
    }
    /* Narrowing: per channel of the old grant, switch atomically to the new
     * topics (none when the new token drops the channel). */
    for (size_t i = 0; i < c->claims.ntopics; i++) {
        const char *ch = c->claims.topics[i].channel;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(c->claims.topics[j].channel, ch) == 0;
        if (seen)
            continue;
        rt_slice_t names[256];
        size_t n = rt_extmsg_channel_topics(&next, ch, names, 256);
        rt_hub_set_topics(srv->hub, c->sub, rt_slice_cstr(ch), names, n);
    }
    rt_claims_t old = c->claims;
    c->claims = next;
    c->token_exp = next.exp;
    rt_claims_clear(&old);
    ext_reply(c,
              json_pack("{s:s,s:I}", "kind", "rtgw.refreshed", "expires_at", (json_int_t)next.exp));
}

/* One client frame of a WebSocket session, whoever read it (civetweb's thread,
 * or the writer thread for a detached session). Returns 0 when the session
 * should end (the client closed it), 1 to go on. */
static int session_frame(rt_server_t *srv, rt_conn_t *c, int opcode, char *data, size_t len)
{
    atomic_store(&c->last_rx_ms, mono_ms());
    if (c->refused)
        return opcode == RT_WS_CLOSE ? 0 : 1;
    if (srv->cfg->rate_limit_client_frames > 0) {
        double rate = (double)srv->cfg->rate_limit_client_frames, burst = 2 * rate;
        int64_t now = mono_ms();
        if (c->frame_window_ms == 0)
            c->frame_tokens = burst;
        else
            c->frame_tokens += (double)(now - c->frame_window_ms) / 1000.0 * rate;
        if (c->frame_tokens > burst)
            c->frame_tokens = burst;
        c->frame_window_ms = now;
        if (c->frame_tokens < 1) {
            rt_log_info("client frames rate limited", "peer=%s", c->peer);
            conn_close_async(c, RT_REASON_RATE_LIMITED);
            return 1;
        }
        c->frame_tokens -= 1;
    }
    if (len > (size_t)srv->cfg->max_client_frame_bytes) {
        rt_log_info("client frame too large", "peer=%s bytes=%zu", c->peer, len);
        conn_close_async(c, RT_REASON_MESSAGE_TOO_BIG);
        return 1;
    }
    switch (opcode) {
    case RT_WS_PING: {
        rt_frame_t *f = rt_ws_frame_new(RT_WS_PONG, data, len > 125 ? 125 : len);
        if (f) {
            rt_sub_push(c->sub, f);
            rt_frame_unref(f);
        }
        return 1;
    }
    case RT_WS_PONG:
        return 1;
    case RT_WS_CLOSE: {
        /* Echo the close (RFC 6455 §5.5.1) unless we started the closing
         * handshake ourselves, then let civetweb end the session. */
        int code = len >= 2 ? ((unsigned char)data[0] << 8 | (unsigned char)data[1]) : 1000;
        (void)code;
        rt_frame_t *f =
            atomic_load(&c->state) == STATE_OPEN ? rt_ws_close_frame_new(1000, "") : NULL;
        if (f) {
            conn_write(c, f->data, f->len);
            rt_frame_unref(f);
        }
        return 0;
    }
    case RT_WS_TEXT:
    case RT_WS_BINARY:
    case 0x0: /* continuation */
        /* Official clients send nothing. Extended-protocol messages land here. */
        if (c->ext && opcode == RT_WS_TEXT)
            ext_message(srv, c, data, len);
        return 1;
    default:
        conn_close_async(c, RT_REASON_PROTOCOL_ERROR);
        return 1;
    }
}

static int ws_data(struct mg_connection *conn, int bits, char *data, size_t len, void *cb)
{
    rt_conn_t *c = mg_get_user_connection_data(conn);
    return c ? session_frame(cb, c, bits & 0x0F, data, len) : 0;
}

/* ---- detached sessions (writer thread) ---- */

/* End a detached session: out of epoll, unsubscribed, socket closed. */
static void detached_finish(rt_conn_t *c)
{
    if (c->detached_done)
        return;
    c->detached_done = true;
    writer_t *w = atomic_load(&c->writer);
    if (w && c->fd >= 0)
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->parked = false;
    session_end(c->srv, c);
    pthread_mutex_lock(&c->wlock);
    int fd = c->fd;
    c->fd = -1;
    pthread_mutex_unlock(&c->wlock);
    if (fd >= 0)
        close(fd);
    conn_unref(c); /* the epoll registration's reference */
}

/* Read what the client sent: WebSocket frames, parsed here with the same
 * limits the guard applies on civetweb's threads (size from the header, masked
 * frames only); for SSE, or after a refusal, bytes are only discarded. */
static void detached_read(rt_conn_t *c)
{
    rt_server_t *srv = c->srv;
    size_t limit = (size_t)srv->cfg->max_client_frame_bytes;
    for (;;) {
        if (c->rcap - c->rlen < 2048 && c->rcap < limit + 14) {
            size_t nc = c->rcap ? c->rcap * 2 : 4096;
            if (nc > limit + 14)
                nc = limit + 14;
            uint8_t *nb = realloc(c->rbuf, nc);
            if (!nb) {
                detached_finish(c);
                return;
            }
            c->rbuf = nb;
            c->rcap = nc;
        }
        ssize_t n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n == 0) {
            detached_finish(c);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                detached_finish(c);
            return;
        }
        if (c->sse || atomic_load(&c->state) == STATE_GONE || c->close_sent) {
            c->rlen = 0; /* nothing to parse: the client only has to go away */
            continue;
        }
        c->rlen += (size_t)n;
        size_t off = 0;
        while (c->rlen - off >= 2) {
            uint8_t *h = c->rbuf + off;
            size_t avail = c->rlen - off, hl = 2;
            uint64_t plen = h[1] & 127;
            if (plen == 126) {
                if (avail < 4)
                    break;
                plen = (uint64_t)h[2] << 8 | h[3];
                hl = 4;
            } else if (plen == 127) {
                if (avail < 10)
                    break;
                plen = 0;
                for (int i = 0; i < 8; i++)
                    plen = plen << 8 | h[2 + i];
                hl = 10;
            }
            if (!(h[1] & 0x80) || plen > limit) {
                /* Refused from the header, before buffering the payload. */
                guard_tripped(c, (h[1] & 0x80) ? 1009 : 1002);
                conn_shutdown_socket_how(c, SHUT_WR);
                c->rlen = 0;
                return;
            }
            hl += 4;
            if (avail < hl + plen)
                break;
            uint8_t *mask = h + hl - 4, *data = h + hl;
            for (uint64_t i = 0; i < plen; i++)
                data[i] ^= mask[i & 3];
            int go_on = session_frame(srv, c, h[0] & 0x0F, (char *)data, (size_t)plen);
            off += hl + (size_t)plen;
            if (!go_on) {
                detached_finish(c);
                return;
            }
        }
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
}

static void detached_event(rt_conn_t *c, uint32_t events)
{
    if (c->detached_done)
        return;
    conn_ref(c); /* detached_finish may drop the last other reference */
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        detached_read(c);
        if (c->detached_done) {
            conn_unref(c);
            return;
        }
    }
    if ((events & EPOLLOUT) && c->parked) {
        writer_t *w = atomic_load(&c->writer);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        if (w)
            epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->parked = false;
        c->credit = 0;
        writer_drain(c);
    }
    conn_unref(c);
}

static void ws_close(const struct mg_connection *cconn, void *cb)
{
    rt_server_t *srv = cb;
    rt_conn_t *c = mg_get_user_connection_data(cconn);
    if (!c)
        return;
    mg_set_user_connection_data((struct mg_connection *)cconn, NULL);
    /* A detached session left civetweb: its writer thread ends it. A refused
     * one never started a subscription. */
    if (c->sub && !c->detached)
        session_end(srv, c);
    conn_unref(c);
}

/* ---- SSE ---- */

static int h_sse(struct mg_connection *conn, void *cb)
{
    rt_server_t *srv = cb;
    if (method_is(conn, "OPTIONS"))
        return handle_options(conn);
    if (!method_is(conn, "GET")) {
        send_error(conn, 405, "method_not_allowed", "use GET /v1/realtime/sse?token=…");
        return 405;
    }
    rt_conn_t *c = conn_new(srv, conn, true);
    if (!c) {
        send_error(conn, 503, "internal_error", "out of memory");
        return 503;
    }
    c->ext = true; /* SSE is rtgw's own transport: every client of it opted in */
    refusal_t why;
    if (session_admit(srv, conn, c, &why) != 0) {
        atomic_fetch_add(&srv->metrics.refusals[why.reason], 1);
        int st = rt_reason_http_status(why.reason);
        send_error(conn, st ? st : 400,
                   why.tok_err ? rt_tok_errname(why.tok_err) : rt_reason_name(why.reason), "%s%s%s",
                   rt_reason_text(why.reason), why.detail[0] ? ": " : "", why.detail);
        conn_unref(c);
        return st;
    }
    const char *lei = mg_get_header(conn, "Last-Event-ID");
    if (lei && c->nsince < 16 && rt_pos_parse(rt_slice_cstr(lei), &c->since[c->nsince]) == 0)
        c->nsince++;
    pin_positions(srv, c);
    const char *origin = cors_origin(srv, conn);
    mg_printf(conn,
              "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache, "
              "no-transform\r\n"
              "X-Accel-Buffering: no\r\nConnection: close\r\n%s%s%s\r\n: rtgw\n\n",
              origin ? "Access-Control-Allow-Origin: " : "", origin ? origin : "",
              origin ? "\r\n" : "");
    session_start(srv, c, mg_get_request_info(conn));
    if (session_detach(c, conn) == 0) {
        /* The writer thread owns it now (writes, and sees the client go). */
        session_go(srv, c);
        conn_unref(c);
        return 200;
    }
    session_go(srv, c);
    /* This civetweb thread now only watches for the client going away; the
     * writer thread writes the events. */
    while (atomic_load(&c->state) == STATE_OPEN && !atomic_load(&srv->stop)) {
        if (c->fd < 0) {
            usleep(200000);
            continue;
        }
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN | POLLRDHUP};
        int n = poll(&pfd, 1, 500);
        if (n > 0) {
            char b;
            if ((pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) ||
                recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
                break;
        }
    }
    /* Let the writer flush a closing frame (graceful shutdown) for a moment. */
    for (int i = 0; i < 20 && atomic_load(&c->state) == STATE_CLOSING && !c->close_sent; i++)
        usleep(50000);
    session_end(srv, c);
    conn_unref(c);
    return 200;
}

/* ------------------------------------------------------------------------ */
/* heartbeat                                                                   */

static void *heartbeat_main(void *arg)
{
    rt_server_t *srv = arg;
    int64_t last_sweep = mono_ms();
    int64_t interval = srv->cfg->ping_interval_ms;
    int64_t deadline = srv->cfg->ping_interval_ms + srv->cfg->pong_timeout_ms;
    /* The tick walks every connection under conns_lock: a quarter of the
     * shorter of the two timers, between 10 ms and 1 s. */
    int64_t shorter = interval < srv->cfg->pong_timeout_ms ? interval : srv->cfg->pong_timeout_ms;
    int64_t tick = shorter / 4 < 10 ? 10 : shorter / 4 > 1000 ? 1000 : shorter / 4;
    while (!atomic_load(&srv->stop)) {
        usleep((useconds_t)tick * 1000);
        int64_t now = mono_ms();
        int64_t wall = now_ms() / 1000;
        pthread_mutex_lock(&srv->conns_lock);
        for (rt_conn_t *c = srv->conns; c; c = c->next) {
            int st = atomic_load(&c->state);
            if (st == STATE_CLOSING && now - c->closing_since_ms > 2000) {
                /* A graceful close that the peer did not finish. */
                conn_shutdown_socket(c);
                continue;
            }
            if (st != STATE_OPEN)
                continue;
            if (!c->sse && now - atomic_load(&c->last_rx_ms) > deadline) {
                rt_log_info("closing idle connection", "peer=%s reason=idle_timeout", c->peer);
                conn_close_async(c, RT_REASON_IDLE_TIMEOUT);
                continue;
            }
            if (srv->cfg->close_on_expiry && c->token_exp && wall > c->token_exp) {
                rt_log_info("closing connection with an expired token",
                            "peer=%s reason=token_expired", c->peer);
                conn_close_async(c, RT_REASON_TOKEN_EXPIRED);
                continue;
            }
            if (now - c->last_ping_ms >= interval) {
                c->last_ping_ms = now;
                rt_sub_push(c->sub, c->sse ? srv->sse_ping_frame : srv->ping_frame);
            }
            (void)wall;
        }
        pthread_mutex_unlock(&srv->conns_lock);
        if (now - last_sweep > 5000) {
            rt_limiter_sweep(srv->publish_limit, now);
            rt_limiter_sweep(srv->mint_limit, now);
            rt_hub_sweep(srv->hub, now_ms());
            last_sweep = now;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* lifecycle                                                                   */

static volatile sig_atomic_t got_signal;
static void on_signal(int sig)
{
    got_signal = sig;
}

static int cw_log(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    char q[400];
    rt_log_quote(message, q, sizeof(q));
    rt_log_warn("http server", "detail=%s", q);
    return 1;
}

static int keyring_from_config(rt_server_t *srv)
{
    rt_config_t *cfg = srv->cfg;
    srv->ring = rt_keyring_new();
    if (!srv->ring)
        return -1;
    rt_alg_t alg = (rt_alg_t)rt_alg_parse(rt_slice_cstr(cfg->token_alg));
    int rc =
        rt_keyring_set_signing_key(srv->ring, RT_KEY_CURRENT, rt_slice_cstr(cfg->signing_key), alg);
    if (rc == 0 && cfg->signing_key_fallback)
        rc = rt_keyring_set_signing_key(srv->ring, RT_KEY_FALLBACK,
                                        rt_slice_cstr(cfg->signing_key_fallback), alg);
    return rc;
}

int rt_sslshim_present(void); /* sslshim.c: keeps the TLS shim linked */

int rt_server_run(rt_config_t *cfg)
{
    (void)rt_sslshim_present();
    rt_server_t *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return 1;
    rt__server = srv;
    srv->cfg = cfg;
    srv->started_ms = now_ms();
    rt_metrics_init(&srv->metrics);
    pthread_mutex_init(&srv->conns_lock, NULL);
    rt_map_init(&peers);
    if (keyring_from_config(srv) != 0) {
        rt_log_error("cannot load the signing keys", "%s", "");
        return 1;
    }
    struct rlimit nofile;
    nguards = getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < (1u << 20)
                  ? (size_t)nofile.rlim_cur
                  : (1u << 20);
    guards = calloc(nguards, sizeof(*guards));
    if (!guards)
        nguards = 0;
    rt_sslshim_set_read_hook(guard_after_read);
    header_deadline_ms = cfg->request_timeout_ms;
    rt_token_opts_default(&srv->topts);
    srv->topts.issuer = cfg->issuer;
    srv->topts.ttl = cfg->token_ttl_s;
    srv->topts.max_ttl = cfg->token_max_ttl_s;
    srv->topts.leeway = cfg->clock_leeway_s;
    srv->topts.max_token_bytes = (size_t)cfg->max_token_bytes;
    srv->topts.max_topics = (size_t)cfg->max_topics;
    srv->topts.max_name_bytes = (size_t)cfg->max_name_bytes;

    rt_hub_opts_t ho;
    rt_hub_opts_default(&ho);
    ho.queue_max_frames = (size_t)cfg->queue_max_messages;
    ho.queue_max_bytes = (size_t)cfg->queue_max_bytes;
    ho.history_max = (size_t)cfg->history_max;
    ho.history_max_age_ms = cfg->history_max_age_s * 1000;
    ho.idem_window_ms = cfg->idempotency_window_s * 1000;
    uint64_t seed;
    randombytes_buf(&seed, sizeof(seed));
    srv->hub = rt_hub_new(&ho, seed);
    if (cfg->redis_url) {
        rt_bus_redis_opts_t bo = {
            .url = cfg->redis_url,
            .history_max = ho.history_max,
            .history_max_age_ms = ho.history_max_age_ms,
            .idem_window_ms = ho.idem_window_ms,
            .timeout_ms = cfg->redis_timeout_ms,
            .pool = (int)cfg->redis_pool,
            .metrics = &srv->metrics,
        };
        char berr[512] = "";
        srv->bus = rt_bus_redis_new(srv->hub, &bo, berr, sizeof(berr));
        if (!srv->bus) {
            fprintf(stderr, "rtgw: %s\n", berr); /* one line, naming the variable; no password */
            return 1;
        }
    } else {
        srv->bus = rt_bus_memory_new(srv->hub);
        if (!srv->bus)
            return 1;
    }
    srv->api = (rt_api_t){srv->ring, srv->topts, srv->hub, &srv->metrics, cfg, cfg->dev, srv->bus};
    srv->publish_limit = rt_limiter_new((double)cfg->rate_limit_publish,
                                        2.0 * (double)cfg->rate_limit_publish, 100000);
    srv->mint_limit =
        rt_limiter_new((double)cfg->rate_limit_mint, 2.0 * (double)cfg->rate_limit_mint, 100000);
    srv->ip_conns = rt_conncount_new((size_t)cfg->max_connections_per_ip);
    srv->ping_frame = rt_ws_frame_new(RT_WS_PING, NULL, 0);
    srv->sse_ping_frame = rt_frame_new(16);
    memcpy(srv->sse_ping_frame->data, ": ping\n\n", 8);
    srv->sse_ping_frame->len = 8;

    srv->nwriters = (int)cfg->writer_threads;
    srv->writers = calloc((size_t)srv->nwriters, sizeof(writer_t));
    for (int i = 0; i < srv->nwriters; i++) {
        writer_t *w = &srv->writers[i];
        pthread_mutex_init(&w->lock, NULL);
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev);
        pthread_create(&w->thread, NULL, writer_main, w);
    }

    char listen[300], threads[32], reqto[32], wsto[32];
    bool v6 = strchr(cfg->host, ':') != NULL;
    bool tls = cfg->tls_cert != NULL;
    snprintf(listen, sizeof(listen), v6 ? "[%s]:%d%s" : "%s:%d%s", cfg->host, cfg->port,
             tls ? "s" : "");
    char tlserr[300] = "";
    char *pem =
        tls ? rt_tls_pem_combine(cfg->tls_cert, cfg->tls_key, tlserr, sizeof(tlserr)) : NULL;
    if (tls && !pem) {
        rt_log_error("cannot prepare TLS", "detail=\"%s\"", tlserr);
        return 1;
    }
    /* Plain-TCP sessions leave civetweb's threads after the handshake
     * (session_detach), so threads are only needed for HTTP requests and
     * handshakes in flight; TLS sessions keep theirs for their lifetime. */
    long long nthreads = tls ? cfg->max_connections + cfg->http_threads : cfg->http_threads + 32;
    snprintf(threads, sizeof(threads), "%lld", nthreads);
    snprintf(reqto, sizeof(reqto), "%lld", (long long)cfg->request_timeout_ms);
    snprintf(wsto, sizeof(wsto), "%lld", (long long)cfg->ping_interval_ms);
    const char *options[] = {"listening_ports",
                             listen,
                             "num_threads",
                             threads,
                             "request_timeout_ms",
                             reqto,
                             "websocket_timeout_ms",
                             wsto,
                             "enable_websocket_ping_pong",
                             "no",
                             "enable_keep_alive",
                             "yes",
                             "keep_alive_timeout_ms",
                             "5000",
                             "tcp_nodelay",
                             "1",
                             "max_request_size",
                             "32768",
                             "listen_backlog",
                             "1024",
                             "connection_queue",
                             "256",
                             "decode_url",
                             "yes",
                             tls ? "ssl_certificate" : NULL,
                             pem,
                             tls ? "ssl_protocol_version" : NULL,
                             "4", /* TLS 1.2+ */
                             NULL};
    struct mg_callbacks cbs;
    memset(&cbs, 0, sizeof(cbs));
    cbs.log_message = cw_log;
    mg_init_library(MG_FEATURES_WEBSOCKET | (tls ? MG_FEATURES_TLS : 0));
    char errtext[256] = "";
    unsigned errcode = 0;
    struct mg_error_data err = {&errcode, errtext, sizeof(errtext)};
    struct mg_init_data init = {&cbs, srv, options};
    srv->ctx = mg_start2(&init, &err);
    rt_tls_pem_remove(pem); /* civetweb has loaded it; do not leave the key on disk */
    if (!srv->ctx) {
        char q[300];
        rt_log_quote(errtext, q, sizeof(q));
        rt_log_error("cannot start the HTTP server",
                     "listen=%s detail=%s hint=\"is the port in use? set RTGW_LISTEN\"", listen, q);
        atomic_store(&srv->stop, true);
        for (int i = 0; i < srv->nwriters; i++)
            pthread_join(srv->writers[i].thread, NULL);
        return 1;
    }
    mg_set_request_handler(srv->ctx, "/v1/realtime/token$", h_token, srv);
    mg_set_request_handler(srv->ctx, "/v1/realtime/publish$", h_publish, srv);
    mg_set_request_handler(srv->ctx, "/v1/realtime/publish/batch$", h_publish_batch, srv);
    mg_set_request_handler(srv->ctx, "/v1/realtime/sse$", h_sse, srv);
    mg_set_request_handler(srv->ctx, "/health$", h_health, srv);
    mg_set_request_handler(srv->ctx, "/ready$", h_ready, srv);
    mg_set_request_handler(srv->ctx, "/metrics$", h_metrics, srv);
    mg_set_request_handler(srv->ctx, "/dev$", h_dev, srv);
    mg_set_request_handler(srv->ctx, "/v1/realtime/connect$", h_connect_plain, srv);
    mg_set_request_handler(srv->ctx, "/", h_root, srv);
    mg_set_websocket_handler_with_subprotocols(srv->ctx, "/v1/realtime/connect$", &ws_protos,
                                               ws_connect, ws_ready, ws_data, ws_close, srv);
    pthread_create(&srv->heartbeat, NULL, heartbeat_main, srv);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    rt_log_info("listening", "addr=%s dev=%d max_connections=%lld version=%s", listen, cfg->dev,
                (long long)cfg->max_connections, RT_VERSION);
    if (tls)
        listen[strlen(listen) - 1] = 0; /* drop civetweb's "s" suffix for display */
    printf("rtgw %s listening on %s://%s\n", RT_VERSION, tls ? "https" : "http", listen);
    fflush(stdout);
    /* Not pause(): a process-directed SIGTERM may be handled by any thread
     * (civetweb's, the writers'), which leaves this one paused for ever, and
     * one that lands between the test and pause() is lost too. Poll instead. */
    while (!got_signal)
        usleep(50 * 1000);

    /* Drain: refuse new work, tell every client, wait for them, stop. */
    rt_log_info("shutting down", "signal=%d connections=%ld", (int)got_signal,
                atomic_load(&srv->nconns));
    atomic_store(&srv->draining, true);
    rt_frame_t *closing_ws = rt_ws_frame_new(RT_WS_TEXT, "{\"kind\":\"closing\"}", 18);
    rt_frame_t *closing_sse = rt_frame_new(64);
    closing_sse->len = (uint32_t)snprintf(closing_sse->data, 64,
                                          "event: closing\ndata: {\"kind\":\"closing\"}\n\n");
    pthread_mutex_lock(&srv->conns_lock);
    for (rt_conn_t *c = srv->conns; c; c = c->next) {
        rt_sub_push(c->sub, c->sse ? closing_sse : closing_ws);
        conn_close_async(c, RT_REASON_SHUTTING_DOWN);
    }
    pthread_mutex_unlock(&srv->conns_lock);
    rt_frame_unref(closing_ws);
    rt_frame_unref(closing_sse);
    int64_t until = mono_ms() + cfg->shutdown_timeout_ms;
    while (atomic_load(&srv->nconns) > 0 && mono_ms() < until)
        usleep(20000);
    atomic_store(&srv->stop, true);
    mg_stop(srv->ctx);
    pthread_join(srv->heartbeat, NULL);
    for (int i = 0; i < srv->nwriters; i++) {
        pthread_join(srv->writers[i].thread, NULL);
        close(srv->writers[i].epfd);
        close(srv->writers[i].evfd);
    }
    rt_log_info("stopped", "remaining_connections=%ld", atomic_load(&srv->nconns));
    rt_bus_free(srv->bus);
    rt_hub_free(srv->hub);
    rt_keyring_free(srv->ring);
    rt_limiter_free(srv->publish_limit);
    rt_limiter_free(srv->mint_limit);
    rt_conncount_free(srv->ip_conns);
    rt_frame_unref(srv->ping_frame);
    rt_frame_unref(srv->sse_ping_frame);
    free(srv->writers);
    free(srv);
    return 0;
}
