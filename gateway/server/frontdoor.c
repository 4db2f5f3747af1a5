/*
 * frontdoor.c — the front door: rtgw listens on the public address itself,
 * and holds each new connection until it is worth a civetweb thread.
 *
 * Why. civetweb 1.15 hands every accepted connection to a worker thread before
 * a byte of the request has arrived, and the worker waits up to
 * RTGW_REQUEST_TIMEOUT_MS for one. A few hundred connections that connect and
 * send nothing took every worker, and civetweb drained them one worker at a
 * time: any client could make GET /health wait for minutes.
 *
 * What. A few threads, the lanes (RTGW_ACCEPT_THREADS; one per CPU, at most
 * 4, by default), each run an epoll over the public listening socket, shared
 * (EPOLLEXCLUSIVE: a new connection wakes one waiting lane), and the
 * connections that lane accepted but that are not ready yet (pending,
 * non-blocking, watched edge-triggered). A pending connection costs a socket
 * and ~250 bytes, no thread. It is ready when
 * - plain HTTP: its first request head is in the kernel (a MSG_PEEK finds the
 *   blank line that ends it, "\r\n\r\n" or "\n\n", as civetweb reads it), or
 *   it holds a byte civetweb refuses in a head, or RT__MAX_REQUEST_HEAD bytes
 *   without the end: civetweb then answers as it always did (for the latter,
 *   rt__http_error names the refusal from which line ran past the limit:
 *   a token in the query or in Authorization is token_too_large);
 * - TLS: the front door runs the handshake, then decrypts until the same is
 *   true of the plaintext (tls_head_state); a first byte that is not a TLS
 *   handshake record is refused (plain HTTP gets a 400 saying so).
 * A ready connection whose request the front door answers itself (plain or TLS),
 * a WebSocket upgrade rtgw admits or a token mint (fastpath.h), is answered
 * on the lane's thread: an upgraded one becomes a session in a writer's
 * epoll, a minted one waits here for its next request. A head that is in by
 * the time of the accept is answered at once, without a round through the
 * epoll. Any other ready connection is queued for civetweb
 * (rt__sockhook_handover), and a
 * throwaway connection to civetweb's private loopback listener wakes
 * civetweb's master thread, whose accept() returns the queued socket
 * (sockhook.c). A throwaway is closed when civetweb's accept has closed the
 * other end; if its connect failed, another one is made (every RETRY_MS).
 *
 * The deadline. A connection not ready RTGW_REQUEST_TIMEOUT_MS after its accept
 * is closed here. Pending connections are kept in accept order, which is
 * deadline order, so epoll_wait sleeps until the oldest one's deadline and a
 * sweep closes every one that has expired: O(expired), all at their deadline,
 * none ever holding a worker. A peer that closes or resets while pending is
 * closed.
 *
 * The caps.
 * - Global: max(RTGW_MAX_CONNECTIONS + RTGW_HTTP_THREADS, 1024) pending, and
 *   at most half of RLIMIT_NOFILE, over every lane. At the cap the oldest
 *   pending connection is closed to make room: a flood of idle sockets cannot
 *   lock new clients out, since a real client is pending for one round trip.
 *   A lane closes its own oldest; another lane's, when older (each lane
 *   publishes its oldest's accept time), is closed by that lane on the
 *   wake-up this one sends it (make_room).
 * - Per client address, with RTGW_MAX_CONNECTIONS_PER_IP set: max(that, 16)
 *   pending per peer address; one more is closed at accept. The floor: that
 *   variable bounds sessions and is often 1 or 2, while a browser opens up to
 *   6 connections at once. Peers in RTGW_TRUSTED_PROXIES are not counted (the
 *   clients behind a proxy share its address).
 * - The hand-over queue: while QUEUE_MAX ready connections wait for civetweb,
 *   or the process is out of descriptors, the listener is paused and new
 *   connections wait in the kernel's backlog, as they did before.
 *
 * Threads and locks: rt__frontdoor_new, _start and _free run on the main
 * thread; rt__frontdoor_adopt on any (it picks a lane in turn); everything
 * else on a lane's thread, which owns its lane's pending and throwaway
 * sockets and fields while it runs. Lanes share the listener, the per-IP
 * counter (its own lock), the global pending count and each other's
 * oldest_ms and evict_owed (atomics). A lane takes the hand-over lock
 * (rt__sockhook_handover), the per-IP counter's lock, and what answering a
 * request takes (fastpath.h), one at a time.
 */
#define _GNU_SOURCE
#include "frontdoor.h"
#include "fastpath.h"
#include "http.h"
#include "httphead.h"
#include "linger.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "ratelimit.h"
#include "sockhook.h"
#include "tlsconn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
    PENDING_MIN = 1024, /* the global cap's floor */
    PER_IP_MIN = 16,    /* the per-IP cap's floor */
    QUEUE_MAX = 512,    /* ready connections civetweb has not accepted yet */
    LISTEN_BACKLOG = 1024,
    ACCEPT_BATCH = 256, /* accepts per wake-up, so pending sockets are not starved */
    EVENTS = 256,
    LINGER_MIN = 64,                /* lingering connections a lane may hold, at least */
    TLS_RECORD_PLAIN = 16384 + 512, /* a TLS record's plaintext, and some */
    TRIM_AFTER = 64,                /* trim_after_handshakes */
    TRIM_PENDING_MAX = 16,
    TRIM_EVERY_MS = 1000,
    RETRY_MS = 20,  /* a throwaway that failed; a full hand-over queue */
    PAUSE_MS = 100, /* out of descriptors */
};

typedef enum { ITEM_LISTENER, ITEM_WAKE, ITEM_PENDING, ITEM_KICK, ITEM_LINGER } item_kind_t;

/* What an epoll event points at: the first member of everything watched. */
typedef struct {
    item_kind_t kind;
} item_t;

typedef struct pending_s {
    item_t item; /* ITEM_PENDING */
    int fd;
    int64_t accepted_ms; /* monotonic */
    rt_head_scan_t head; /* how far its first head has been scanned */
    bool counted;        /* holds a place in per_ip under ip */
    bool handshaken;     /* TLS: the handshake is done */
    bool answered;       /* the front door answered a request of it (fastpath.h) */
    bool watched;        /* in the lane's epoll (not when answered at accept, head_now) */
    rt_tls_t *tls;       /* TLS: the connection's, until handed over */
    char ip[INET6_ADDRSTRLEN];
    struct sockaddr_storage peer;
    socklen_t peerlen;
    struct pending_s *prev, *next; /* accept order: oldest first */
} pending_t;

/* A kept-alive connection civetweb gave back between two requests
 * (rt__frontdoor_adopt), or an answered one to linger (rt__frontdoor_linger),
 * waiting for the front door's thread. */
typedef struct adopted_s {
    int fd;
    rt_tls_t *tls;
    int64_t linger_ms; /* 0: wait for its next request */
    size_t linger_max;
    struct adopted_s *next;
} adopted_t;

/* A throwaway connection to civetweb's private listener. */
typedef struct kick_s {
    item_t item; /* ITEM_KICK */
    int fd;
    struct kick_s *prev, *next;
} kick_t;

/* rt_head_state_t (httphead.h), and one more: the peer went away. */
typedef enum {
    HEAD_WAIT = RT_HEAD_WAIT,
    HEAD_COMPLETE = RT_HEAD_COMPLETE,
    HEAD_EARLY = RT_HEAD_EARLY,
    HEAD_TOO_LARGE = RT_HEAD_TOO_LARGE,
    HEAD_GONE
} head_state_t;

typedef struct rt_frontdoor_s rt_frontdoor_t;

/* One front-door thread: its epoll (the shared listener, its pending
 * connections, its throwaways) and what it alone touches. */
typedef struct lane_s {
    rt_frontdoor_t *d;
    int epfd, wake_fd;
    item_t listener, wake;
    pending_t *oldest, *newest;
    size_t npending;
    atomic_llong oldest_ms;   /* oldest's accepted_ms (INT64_MAX: none), for other lanes */
    atomic_size_t evict_owed; /* oldest connections another lane asked this one to close */
    kick_t *kicks;
    size_t kicks_owed;   /* hand-overs whose throwaway is still to be made */
    int64_t retry_at_ms; /* after a failed throwaway; 0: none */
    bool paused;         /* the listener is out of this epoll's interest */
    int64_t resume_at_ms;
    int64_t emfile_logged_ms;
    size_t handshakes_untrimmed; /* TLS handshakes since the last malloc_trim */
    int64_t trimmed_ms;
    rt_linger_t *linger;        /* answered connections closing gently (linger.h) */
    pthread_mutex_t adopt_lock; /* guards adopted */
    adopted_t *adopted;         /* LIFO; admitted on the next wake-up */
    size_t peeked; /* the bytes in peek: the last plain peek, or a decrypted head's copy */
    pthread_t thread;
    bool started;
    uint8_t peek[RT__MAX_REQUEST_HEAD];
} lane_t;

struct rt_frontdoor_s {
    const rt_config_t *cfg;
    int listen_fd;
    struct sockaddr_in private_addr;
    bool tls;
    SSL_CTX *tls_ctx; /* RTGW_TLS_CERT set: rtgw terminates TLS here */
    int64_t deadline_ms;
    rt_conncount_t *per_ip; /* NULL: no per-IP cap (it locks itself) */
    rt_server_t *srv;       /* the fast path's (fastpath.h); NULL: civetweb answers everything */
    size_t max_pending;     /* the global cap, over every lane */
    atomic_size_t npending; /* pending in every lane */
    atomic_bool stop;
    atomic_uint next_adopt; /* rt__frontdoor_adopt's round robin */
    int nlanes;
    lane_t *lanes;
};

/* ---- the public listener ---- */

/* host's address for a listener, as civetweb resolved it: IPv4 if the name
 * has one, else IPv6. 0 or RT_E_INVAL. */
static int listen_address(const char *host, int port, struct sockaddr_storage *ss, socklen_t *sl)
{
    static const int families[] = {AF_INET, AF_INET6};
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        struct addrinfo hints = {.ai_family = families[i], .ai_socktype = SOCK_STREAM};
        struct addrinfo *res = NULL;
        if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
            continue;
        memcpy(ss, res->ai_addr, res->ai_addrlen);
        *sl = res->ai_addrlen;
        freeaddrinfo(res);
        if (ss->ss_family == AF_INET)
            ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
        else
            ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
        return 0;
    }
    return RT_E_INVAL;
}

/* A listening socket on cfg's address, or -1 with why in err. */
static int listen_public(const rt_config_t *cfg, char *err, size_t cap)
{
    char where[300];
    bool v6 = strchr(cfg->host, ':') != NULL;
    snprintf(where, sizeof(where), v6 ? "[%s]:%d" : "%s:%d", cfg->host, cfg->port);
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    if (listen_address(cfg->host, cfg->port, &ss, &sl) != 0) {
        snprintf(err, cap, "cannot resolve %s", where);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        (ss.ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) != 0) ||
        bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        int e = errno;
        snprintf(err, cap, "cannot bind to %s%s: %d (%s)", ss.ss_family == AF_INET6 ? "IPv6 " : "",
                 where, e, strerror(e));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* The global cap (see the top of this file). */
static size_t pending_cap(const rt_config_t *cfg)
{
    size_t cap = (size_t)(cfg->max_connections + cfg->http_threads);
    if (cap < PENDING_MIN)
        cap = PENDING_MIN;
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
        cap > nofile.rlim_cur / 2)
        cap = nofile.rlim_cur / 2;
    return cap > 0 ? cap : 1;
}

/* How many front-door threads: RTGW_ACCEPT_THREADS, or with 0 one per CPU
 * this process may run on (its affinity mask: a container's cpuset, taskset),
 * at most 4 (each holds a 32 KiB peek buffer and an epoll; more than the
 * CPUs only adds switching). */
static int lane_count(const rt_config_t *cfg)
{
    if (cfg->accept_threads > 0)
        return (int)cfg->accept_threads;
    cpu_set_t set;
    long n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
                                                          : sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 4 ? 4 : (int)n;
}

static int lane_init(rt_frontdoor_t *d, lane_t *l)
{
    l->d = d;
    l->listener.kind = ITEM_LISTENER;
    l->wake.kind = ITEM_WAKE;
    atomic_init(&l->oldest_ms, INT64_MAX);
    pthread_mutex_init(&l->adopt_lock, NULL);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    /* Lingering connections, bounded like pending ones: each holds a socket. */
    size_t cap = d->max_pending / (size_t)d->nlanes;
    l->linger = rt__linger_new(l->epfd, ITEM_LINGER, cap > LINGER_MIN ? cap : LINGER_MIN);
    return l->epfd < 0 || l->wake_fd < 0 || !l->linger ? RT_E_IO : 0;
}

rt_frontdoor_t *rt__frontdoor_new(const rt_config_t *cfg, char *err, size_t cap)
{
    rt_frontdoor_t *d = calloc(1, sizeof(*d));
    int nlanes = lane_count(cfg);
    lane_t *lanes = calloc((size_t)nlanes, sizeof(*lanes));
    if (!d || !lanes) {
        free(d);
        free(lanes);
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    d->cfg = cfg;
    d->tls = cfg->tls_cert != NULL;
    if (d->tls && !(d->tls_ctx = rt__tls_ctx_new(cfg, err, cap))) {
        free(lanes);
        free(d);
        return NULL;
    }
    if (d->tls)
        rt__sockhook_tls_enable();
    d->deadline_ms = cfg->request_timeout_ms;
    d->listen_fd = listen_public(cfg, err, cap);
    if (d->listen_fd < 0) {
        SSL_CTX_free(d->tls_ctx);
        free(lanes);
        free(d);
        return NULL;
    }
    if (cfg->max_connections_per_ip > 0)
        d->per_ip = rt_conncount_new(cfg->max_connections_per_ip > PER_IP_MIN
                                         ? (size_t)cfg->max_connections_per_ip
                                         : PER_IP_MIN);
    d->lanes = lanes;
    d->nlanes = nlanes;
    d->max_pending = pending_cap(cfg);
    int rc = 0;
    for (int i = 0; i < nlanes; i++)
        rc |= lane_init(d, &lanes[i]);
    if (rc != 0 || (cfg->max_connections_per_ip > 0 && !d->per_ip)) {
        snprintf(err, cap, "cannot set up the listener: %s", strerror(errno));
        rt__frontdoor_free(d);
        return NULL;
    }
    return d;
}

/* ---- pending connections ---- */

/* Tell the other lanes when this one's oldest connection arrived. */
static void publish_oldest(lane_t *l)
{
    atomic_store(&l->oldest_ms, l->oldest ? l->oldest->accepted_ms : INT64_MAX);
}

static void pending_close(lane_t *l, pending_t *p);

/* At the global cap: close the oldest pending connection of all lanes. This
 * lane closes its own; another lane's is closed by that lane, asked through
 * its wake-up (evict_owed), a moment later. */
static void make_room(lane_t *l)
{
    rt_frontdoor_t *d = l->d;
    lane_t *victim = NULL;
    long long oldest = INT64_MAX;
    for (int i = 0; i < d->nlanes; i++) {
        long long at = atomic_load(&d->lanes[i].oldest_ms);
        if (at < oldest || (at == oldest && &d->lanes[i] == l)) {
            oldest = at;
            victim = &d->lanes[i];
        }
    }
    if (!victim || oldest == INT64_MAX)
        return; /* none published yet (another lane's is being linked) */
    if (victim == l) {
        if (l->oldest)
            pending_close(l, l->oldest);
        return;
    }
    atomic_fetch_add(&victim->evict_owed, 1);
    uint64_t one = 1;
    (void)!write(victim->wake_fd, &one, sizeof(one));
}

static void pending_unlink(lane_t *l, pending_t *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        l->oldest = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        l->newest = p->prev;
    l->npending--;
    atomic_fetch_sub(&l->d->npending, 1);
    publish_oldest(l);
    if (p->counted)
        rt_conncount_release(l->d->per_ip, p->ip);
}

/* Close a pending connection. What it sent is read first, so the close is a
 * FIN, not a reset that could hide it from the client. */
static void pending_close(lane_t *l, pending_t *p)
{
    pending_unlink(l, p);
    if (p->head.scanned > 0 || p->answered || l->d->tls) {
        /* read(2): sockhook's recv is civetweb's. Wiped: it may hold a key. */
        ssize_t r = read(p->fd, l->peek, sizeof(l->peek));
        if (r > 0)
            explicit_bzero(l->peek, (size_t)r);
    }
    rt__tls_free(p->tls);
    close(p->fd);
    free(p);
}

/* Whether ip is one of RTGW_TRUSTED_PROXIES (whose clients share its address). */
static bool is_trusted_proxy(const rt_config_t *cfg, const char *ip)
{
    return rt_ip_trusted(ip, cfg->trusted_proxies);
}

static bool head_now(lane_t *l, pending_t *p);

/* The peek buffer holds the last head looked at, plain or decrypted, whose
 * Authorization may be the signing key (a mint, a publish): wiped once the
 * event is done with it, the bytes used only. Returns r. */
static bool wiped(lane_t *l, bool r)
{
    if (l->peeked > 0)
        explicit_bzero(l->peek, l->peeked);
    l->peeked = 0;
    return r;
}

/* Into the lane's epoll, edge-triggered, unless it is already in (an answer
 * at accept may have put it there). false: it could not be watched. */
static bool watch(lane_t *l, pending_t *p)
{
    if (p->watched)
        return true;
    /* TLS: EPOLLOUT too, for a handshake flight the socket had no room for. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (l->d->tls ? EPOLLOUT : 0),
                             .data.ptr = p};
    p->watched = epoll_ctl(l->epfd, EPOLL_CTL_ADD, p->fd, &ev) == 0;
    return p->watched;
}

/* Take in a connection just accepted: counted per IP (or closed, over that
 * cap), the oldest pending one closed if the global cap is reached, then
 * watched until ready. */
static void admit(lane_t *l, int fd, const struct sockaddr_storage *ss, socklen_t sl, rt_tls_t *tls)
{
    pending_t *p = calloc(1, sizeof(*p));
    if (!p) {
        rt__tls_free(tls);
        close(fd);
        return;
    }
    p->tls = tls; /* a kept-alive TLS connection: handshaken already */
    p->handshaken = tls != NULL;
    p->item.kind = ITEM_PENDING;
    p->fd = fd;
    p->accepted_ms = rt_clock_mono_ms();
    p->peerlen = sl < sizeof(p->peer) ? sl : sizeof(p->peer);
    memcpy(&p->peer, ss, p->peerlen);
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, p->ip, sizeof(p->ip));
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, p->ip, sizeof(p->ip));
    if (l->d->per_ip && !is_trusted_proxy(l->d->cfg, p->ip)) {
        if (!rt_conncount_acquire(l->d->per_ip, p->ip))
            goto refuse;
        p->counted = true;
    }
    /* Counted before the cap is checked: two lanes admitting at once must
     * not both see room for one (each admission past the cap closes one). */
    if (atomic_fetch_add(&l->d->npending, 1) >= l->d->max_pending)
        make_room(l);
    p->prev = l->newest;
    if (l->newest)
        l->newest->next = p;
    else
        l->oldest = p;
    l->newest = p;
    l->npending++;
    publish_oldest(l);
    /* A client sends its head right after connecting: often it is in by
     * now, and answered without a round through the epoll. */
    if (!tls && l->d->srv && !l->d->tls && wiped(l, head_now(l, p)))
        return;
    if (!watch(l, p))
        pending_close(l, p);
    return;
refuse: /* over the per-IP cap: closed at once */
    if (p->counted)
        rt_conncount_release(l->d->per_ip, p->ip);
    rt__tls_free(tls);
    close(fd);
    free(p);
}

/* HTTP: scan the head's new bytes (see the top of this file). */
static head_state_t http_head_state(pending_t *p, const uint8_t *buf, size_t n)
{
    return (head_state_t)rt_head_scan(&p->head, buf, n, RT__MAX_REQUEST_HEAD);
}

/* Which line of a head that filled buf without ending runs past the limit:
 * the last one. A token there (?token= in the request line, or an
 * Authorization header) gets its own name in the refusal. */
static rt_head_big_t http_head_big(const uint8_t *buf, size_t n)
{
    size_t start = n;
    while (start > 0 && buf[start - 1] != '\n')
        start--;
    const char *line = (const char *)buf + start;
    size_t len = n - start;
    if (start == 0)
        return memmem(line, len, "token=", 6) ? RT_HEAD_BIG_TOKEN_QUERY : RT_HEAD_BIG_OTHER;
    return len >= 14 && strncasecmp(line, "authorization:", 14) == 0 ? RT_HEAD_BIG_TOKEN_AUTH
                                                                     : RT_HEAD_BIG_OTHER;
}

/* Plain HTTP sent to the TLS port (ws:// or http:// where wss:// or https://
 * was meant): answered in plain HTTP with the reason, instead of a TLS alert
 * the client would show as an opaque failure. */
static void refuse_plain_http(pending_t *p)
{
    static const char body[] =
        "{\"error\":\"plain_http_on_tls_port\",\"message\":\"this port speaks TLS: use https:// "
        "(or wss:// for WebSockets), not http:// or ws://\"}";
    char resp[512];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n" RT__MARK_HEADER "\r\n%s",
                     sizeof(body) - 1, body);
    (void)!write(p->fd, resp, (size_t)n);
    shutdown(p->fd, SHUT_WR);
}

/* TLS: the handshake, then the first request head, decrypted into p->tls's
 * buffer (the hooks hand it to civetweb). */
static head_state_t tls_head_state(lane_t *l, pending_t *p)
{
    if (!p->tls) {
        ssize_t n = recv(p->fd, l->peek, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? HEAD_WAIT
                                                                             : HEAD_GONE;
        if (n == 0)
            return HEAD_GONE;
        if (l->peek[0] != 0x16) { /* not a TLS handshake record */
            if (l->peek[0] >= 'A' && l->peek[0] <= 'Z')
                refuse_plain_http(p);
            return HEAD_GONE;
        }
        if (!(p->tls = rt__tls_new(l->d->tls_ctx, p->fd)))
            return HEAD_GONE;
    }
    if (!p->handshaken) {
        int r = rt__tls_handshake(p->tls);
        if (r < 0) {
            rt_log_debug("TLS handshake failed", "peer=%s", p->ip);
            return HEAD_GONE;
        }
        if (r == 0)
            return HEAD_WAIT;
        p->handshaken = true;
        l->handshakes_untrimmed++;
    }
    /* The buffer grows a record at a time (most heads fit one): many
     * handshakes at once must not each hold the largest head's room. Read
     * until the socket is drained (the socket is watched edge-triggered). */
    for (;;) {
        size_t have;
        rt__tls_peek(p->tls, &have);
        size_t room = have + TLS_RECORD_PLAIN;
        if (room > RT__MAX_REQUEST_HEAD + TLS_RECORD_PLAIN)
            room = RT__MAX_REQUEST_HEAD + TLS_RECORD_PLAIN;
        ssize_t n = rt__tls_fill(p->tls, room);
        if (n < 0 && errno != EAGAIN)
            return HEAD_GONE;
        const uint8_t *plain = rt__tls_peek(p->tls, &have);
        head_state_t st = have ? http_head_state(p, plain, have) : HEAD_WAIT;
        if (st != HEAD_WAIT || n <= 0)
            return st;
    }
}

/* Peek at what p has sent so far (MSG_PEEK: sockhook's recv lets it through). */
static head_state_t head_state(lane_t *l, pending_t *p)
{
    if (l->d->tls)
        return tls_head_state(l, p);
    ssize_t n = recv(p->fd, l->peek, sizeof(l->peek), MSG_PEEK | MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? HEAD_WAIT : HEAD_GONE;
    if (n == 0)
        return HEAD_GONE;
    l->peeked = (size_t)n;
    return http_head_state(p, l->peek, (size_t)n);
}

/* The head's first bytes as scanned: the peek of the kernel's, or for TLS
 * the decrypted buffer. */
static const uint8_t *head_bytes(lane_t *l, pending_t *p)
{
    size_t have;
    return p->tls ? rt__tls_peek(p->tls, &have) : l->peek;
}

/* Out of the lane's epoll, if it is in (a head answered at accept never was:
 * a DEL would fail with ENOENT, one wasted system call per connect). */
static void unwatch(lane_t *l, pending_t *p)
{
    if (p->watched)
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, p->fd, NULL);
    p->watched = false;
}

/* Queue p for civetweb; its throwaway is made after this round of events. */
static void hand_over(lane_t *l, pending_t *p, bool head_complete, rt_head_big_t big)
{
    unwatch(l, p);
    if (rt__sockhook_handover(p->fd, (struct sockaddr *)&p->peer, p->peerlen, p->accepted_ms,
                              head_complete, big, p->tls) != 0) {
        pending_close(l, p);
        return;
    }
    p->tls = NULL; /* the hand-over queue's now */
    pending_unlink(l, p);
    free(p);
    l->kicks_owed++;
}

/* Move p to the newest end of the pending list: its deadline counts from now
 * (a kept-alive connection between two requests). */
static void pending_renew(lane_t *l, pending_t *p)
{
    p->accepted_ms = rt_clock_mono_ms();
    p->head = (rt_head_scan_t){0};
    if (l->newest == p) {
        publish_oldest(l);
        return;
    }
    if (p->prev)
        p->prev->next = p->next;
    else
        l->oldest = p->next;
    p->next->prev = p->prev; /* not the newest: it has a next */
    p->prev = l->newest;
    p->next = NULL;
    l->newest->next = p;
    l->newest = p;
    publish_oldest(l);
}

/* A complete plain-HTTP head the front door may answer itself (fastpath.h).
 * true when p is done with (a session's now, or closed); false when it
 * waits here for its next request (answered) or goes to civetweb (declined,
 * *declined set). */
static bool fast_path(lane_t *l, pending_t *p, bool *declined)
{
    *declined = false;
    int port = p->peer.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&p->peer)->sin6_port)
                                             : ntohs(((struct sockaddr_in *)&p->peer)->sin_port);
    rt_fast_conn_t fc = {.fd = p->fd, .tls = p->tls, .ip = p->ip, .port = port, .buf = l->peek};
    if (p->tls) { /* parsing writes into the head: a copy of the decrypted bytes */
        size_t have;
        const uint8_t *plain = rt__tls_peek(p->tls, &have);
        fc.n = have < sizeof(l->peek) ? have : sizeof(l->peek);
        memcpy(l->peek, plain, fc.n);
        l->peeked = fc.n;
    } else {
        fc.n = l->peeked;
    }
    rt_fast_kind_t kind = rt__fast_kind(&fc);
    if (kind == RT_FAST_NONE) {
        *declined = true;
        return false;
    }
    /* A session's writer may end it and close the socket at once: out of
     * this epoll first. */
    if (kind == RT_FAST_UPGRADE)
        unwatch(l, p);
    rt_fast_result_t r = rt__fast_serve(l->d->srv, &fc, kind);
    p->tls = fc.tls; /* NULL when a session took it */
    p->answered |= r == RT_FAST_ANSWERED || r == RT_FAST_CLOSE;
    switch (r) {
    case RT_FAST_TAKEN:
        pending_unlink(l, p);
        free(p);
        return true;
    case RT_FAST_ANSWERED:
        /* Nothing was past the request (fastpath.h); what comes later is
         * news to the edge-triggered epoll (which the connection is in, or
         * back in if it was answered at accept). */
        if (!watch(l, p)) {
            pending_close(l, p);
            return true;
        }
        pending_renew(l, p);
        return false;
    case RT_FAST_CLOSE:
        unwatch(l, p);
        pending_close(l, p);
        return true;
    case RT_FAST_LINGER: { /* a final answer the client may still be sending behind */
        int fd = p->fd;
        rt_tls_t *tls = p->tls;
        p->tls = NULL;
        unwatch(l, p);
        pending_unlink(l, p);
        free(p);
        if (tls)
            rt__tls_close_notify(tls);
        shutdown(fd, SHUT_WR);
        rt__linger_add(l->linger, fd, tls, rt_clock_mono_ms() + RT__LINGER_MS, RT__LINGER_MAX);
        return true;
    }
    case RT_FAST_DECLINED:
        break;
    }
    *declined = true;
    return false;
}

/* Answer p's complete head if the front door can. true when p is done with
 * here; *st is the state of its head now (HEAD_WAIT once answered: one
 * request per event, so one connection cannot hold the lane). */
static bool serve_heads(lane_t *l, pending_t *p, head_state_t *st)
{
    if (*st != HEAD_COMPLETE || !l->d->srv)
        return false;
    bool declined = false;
    if (fast_path(l, p, &declined))
        return true;
    if (!declined)
        *st = HEAD_WAIT;
    return false;
}

/* admit's look at a connection just accepted, before it is watched: true
 * when it is done with (answered, or handed to civetweb). */
static bool head_now(lane_t *l, pending_t *p)
{
    head_state_t st = head_state(l, p);
    if (serve_heads(l, p, &st))
        return true;
    if (st != HEAD_COMPLETE)
        return false; /* the epoll reports it when more comes (or already has) */
    hand_over(l, p, true, RT_HEAD_FITS);
    return true;
}

static void pending_event(lane_t *l, pending_t *p, uint32_t events)
{
    head_state_t st = head_state(l, p);
    if (serve_heads(l, p, &st))
        return;
    if (st == HEAD_COMPLETE || st == HEAD_EARLY)
        hand_over(l, p, st == HEAD_COMPLETE, RT_HEAD_FITS);
    else if (st == HEAD_TOO_LARGE)
        hand_over(l, p, false, http_head_big(head_bytes(l, p), RT__MAX_REQUEST_HEAD));
    else if (st == HEAD_GONE || (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        pending_close(l, p);
}

/* Close every pending connection whose deadline has passed, oldest first. */
static void sweep(lane_t *l, int64_t now)
{
    while (l->oldest && now - l->oldest->accepted_ms >= l->d->deadline_ms)
        pending_close(l, l->oldest);
}

/* ---- throwaways: waking civetweb ---- */

static void kick_free(lane_t *l, kick_t *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        l->kicks = k->next;
    if (k->next)
        k->next->prev = k->prev;
    close(k->fd);
    free(k);
}

/* Start one throwaway connection to civetweb's listener. 0, or RT_E_IO. */
static int kick_connect(lane_t *l)
{
    kick_t *k = calloc(1, sizeof(*k));
    if (!k)
        return RT_E_NOMEM;
    k->item.kind = ITEM_KICK;
    k->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = k};
    if (k->fd < 0 ||
        (connect(k->fd, (struct sockaddr *)&l->d->private_addr, sizeof(l->d->private_addr)) != 0 &&
         errno != EINPROGRESS) ||
        epoll_ctl(l->epfd, EPOLL_CTL_ADD, k->fd, &ev) != 0) {
        if (k->fd >= 0)
            close(k->fd);
        free(k);
        return RT_E_IO;
    }
    k->next = l->kicks;
    if (l->kicks)
        l->kicks->prev = k;
    l->kicks = k;
    return 0;
}

/* A throwaway's end: civetweb closed it (done), or its connect failed (the
 * hand-over it was for still needs one). */
static void kick_event(lane_t *l, kick_t *k)
{
    int err = 0;
    socklen_t el = sizeof(err);
    if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0)
        l->kicks_owed++;
    kick_free(l, k);
}

static void kicks_pay(lane_t *l, int64_t now)
{
    if (l->retry_at_ms && now < l->retry_at_ms)
        return;
    l->retry_at_ms = 0;
    for (; l->kicks_owed > 0; l->kicks_owed--) {
        if (kick_connect(l) != 0) {
            l->retry_at_ms = now + RETRY_MS;
            return;
        }
    }
}

/* ---- kept-alive connections ---- */

/* Queue fd for a lane, in turn, and wake it. */
static int adopt(rt_frontdoor_t *d, int fd, rt_tls_t *tls, int64_t linger_ms, size_t linger_max)
{
    adopted_t *a = malloc(sizeof(*a));
    if (!a)
        return RT_E_NOMEM;
    *a = (adopted_t){.fd = fd, .tls = tls, .linger_ms = linger_ms, .linger_max = linger_max};
    lane_t *l = &d->lanes[atomic_fetch_add(&d->next_adopt, 1) % (unsigned)d->nlanes];
    pthread_mutex_lock(&l->adopt_lock);
    a->next = l->adopted;
    l->adopted = a;
    pthread_mutex_unlock(&l->adopt_lock);
    uint64_t one = 1;
    (void)!write(l->wake_fd, &one, sizeof(one));
    return 0;
}

int rt__frontdoor_adopt(rt_frontdoor_t *d, int fd, rt_tls_t *tls)
{
    return adopt(d, fd, tls, 0, 0);
}

int rt__frontdoor_linger(rt_frontdoor_t *d, int fd, rt_tls_t *tls, int64_t ms, size_t max)
{
    return adopt(d, fd, tls, ms > 0 ? ms : 1, max);
}

/* Watch the connections civetweb gave back, like new ones: their deadline
 * counts from now. */
static void adopt_all(lane_t *l)
{
    uint64_t v;
    (void)!read(l->wake_fd, &v, sizeof(v));
    for (size_t n = atomic_exchange(&l->evict_owed, 0); n > 0 && l->oldest; n--)
        pending_close(l, l->oldest);
    pthread_mutex_lock(&l->adopt_lock);
    adopted_t *a = l->adopted;
    l->adopted = NULL;
    pthread_mutex_unlock(&l->adopt_lock);
    while (a) {
        adopted_t *next = a->next;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (a->linger_ms > 0) {
            rt__linger_add(l->linger, a->fd, a->tls, rt_clock_mono_ms() + a->linger_ms,
                           a->linger_max);
        } else if (getpeername(a->fd, (struct sockaddr *)&ss, &sl) == 0) {
            admit(l, a->fd, &ss, sl, a->tls);
        } else {
            rt__tls_free(a->tls);
            close(a->fd);
        }
        free(a);
        a = next;
    }
}

/* ---- the listener ---- */

/* The listener is in every lane's epoll with EPOLLEXCLUSIVE (a new
 * connection wakes one waiting lane, not all), which EPOLL_CTL_MOD cannot
 * change: a pause takes it out, a resume puts it back. */
static void listener_watch(lane_t *l, bool on, int64_t resume_at_ms)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &l->listener};
    if (on != !l->paused)
        epoll_ctl(l->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, l->d->listen_fd, &ev);
    l->paused = !on;
    l->resume_at_ms = resume_at_ms;
}

static void accept_batch(lane_t *l, int64_t now)
{
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int c = accept4(l->d->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0) {
            admit(l, c, &ss, sl, NULL);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            if (now - l->emfile_logged_ms >= 10000 || !l->emfile_logged_ms) {
                rt_log_warn("cannot accept connections", "detail=\"%s\" pending=%zu",
                            strerror(errno), l->npending);
                l->emfile_logged_ms = now;
            }
            listener_watch(l, false, now + PAUSE_MS);
        }
        return;
    }
}

/* Pause the listener while civetweb has QUEUE_MAX connections to accept;
 * resume it when a pause is over. */
static void listener_update(lane_t *l, int64_t now)
{
    bool full = rt__sockhook_handover_queued() >= QUEUE_MAX;
    if (!l->paused && full)
        listener_watch(l, false, now + RETRY_MS);
    else if (l->paused && now >= l->resume_at_ms)
        listener_watch(l, !full, now + RETRY_MS);
}

/* After a burst of TLS handshakes, give their memory back. Each handshake
 * allocates ~50 KiB for a moment (OpenSSL's buffers and state), many at
 * once in a reconnect storm; freed, it stays in malloc's arenas, pinned by
 * the small blocks allocated among it that live on, and an idle wss
 * connection cost 8.9 KiB instead of 6.1 (bench/idle_tls.mjs). At most once
 * a second, once 64 handshakes are done and few are under way. */
static void trim_after_handshakes(lane_t *l, int64_t now)
{
    if (l->handshakes_untrimmed < TRIM_AFTER || l->npending > TRIM_PENDING_MAX ||
        now - l->trimmed_ms < TRIM_EVERY_MS)
        return;
    malloc_trim(0);
    l->handshakes_untrimmed = 0;
    l->trimmed_ms = now;
}

/* ---- the thread ---- */

/* How long epoll_wait may sleep: until the oldest deadline, a throwaway to
 * retry, or the end of a pause. */
static int next_timeout(const lane_t *l, int64_t now)
{
    int64_t at = l->oldest ? l->oldest->accepted_ms + l->d->deadline_ms : INT64_MAX;
    if (rt__linger_next(l->linger) < at)
        at = rt__linger_next(l->linger);
    if (l->retry_at_ms && l->retry_at_ms < at)
        at = l->retry_at_ms;
    if (l->paused && l->resume_at_ms < at)
        at = l->resume_at_ms;
    /* Only while a trim could run (trim_after_handshakes): with more pending,
     * a deadline already past would make epoll_wait spin. */
    if (l->handshakes_untrimmed >= TRIM_AFTER && l->npending <= TRIM_PENDING_MAX &&
        l->trimmed_ms + TRIM_EVERY_MS < at)
        at = l->trimmed_ms + TRIM_EVERY_MS;
    if (at == INT64_MAX)
        return -1;
    return at <= now ? 0 : at - now > 60000 ? 60000 : (int)(at - now);
}

static void *frontdoor_main(void *arg)
{
    lane_t *l = arg;
    struct epoll_event ev[EVENTS];
    while (!atomic_load(&l->d->stop)) {
        int n = epoll_wait(l->epfd, ev, EVENTS, next_timeout(l, rt_clock_mono_ms()));
        bool listener_ready = false, woken = false;
        /* Accepts and wake-ups last: admitting a connection may close the
         * oldest pending one (make_room, evict_owed), which a later event of
         * this round could point at. */
        for (int i = 0; i < n; i++) {
            item_t *it = ev[i].data.ptr;
            if (it->kind == ITEM_PENDING) {
                pending_event(l, (pending_t *)it, ev[i].events);
                wiped(l, true);
            } else if (it->kind == ITEM_KICK)
                kick_event(l, (kick_t *)it);
            else if (it->kind == ITEM_LINGER)
                rt__linger_event(l->linger, it);
            else if (it->kind == ITEM_LISTENER)
                listener_ready = true;
            else if (it->kind == ITEM_WAKE)
                woken = true;
        }
        if (woken)
            adopt_all(l);
        int64_t now = rt_clock_mono_ms();
        if (listener_ready && !l->paused)
            accept_batch(l, now);
        sweep(l, now);
        rt__linger_sweep(l->linger, now);
        if (l->d->tls)
            trim_after_handshakes(l, now);
        kicks_pay(l, now);
        listener_update(l, now);
    }
    return NULL;
}

int rt__frontdoor_start(rt_frontdoor_t *d, int private_port, rt_server_t *srv)
{
    d->srv = srv;
    d->private_addr = (struct sockaddr_in){.sin_family = AF_INET,
                                           .sin_port = htons((uint16_t)private_port),
                                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < d->nlanes; i++) {
        lane_t *l = &d->lanes[i];
        struct epoll_event lev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &l->listener};
        struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &l->wake};
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, d->listen_fd, &lev) != 0 ||
            epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_fd, &wev) != 0)
            return RT_E_IO;
        if (pthread_create(&l->thread, NULL, frontdoor_main, l) != 0)
            return RT_E_NOMEM;
        pthread_setname_np(l->thread, "rtgw-frontdoor");
        l->started = true;
    }
    return 0;
}

void rt__frontdoor_free(rt_frontdoor_t *d)
{
    if (!d)
        return;
    atomic_store(&d->stop, true);
    for (int i = 0; i < d->nlanes; i++) {
        lane_t *l = &d->lanes[i];
        if (!l->started)
            continue;
        uint64_t one = 1;
        (void)!write(l->wake_fd, &one, sizeof(one));
        pthread_join(l->thread, NULL);
    }
    d->srv = NULL; /* what is adopted now is closed, never answered (the subscribe
                    * threads and the writers stop after this) */
    for (int i = 0; i < d->nlanes; i++) {
        lane_t *l = &d->lanes[i];
        if (l->wake_fd >= 0)
            adopt_all(l); /* given back after the thread stopped: closed below */
        while (l->oldest)
            pending_close(l, l->oldest);
        while (l->kicks)
            kick_free(l, l->kicks);
        rt__linger_free(l->linger);
        if (l->epfd >= 0)
            close(l->epfd);
        if (l->wake_fd >= 0)
            close(l->wake_fd);
        pthread_mutex_destroy(&l->adopt_lock);
    }
    if (d->listen_fd >= 0)
        close(d->listen_fd);
    rt_conncount_free(d->per_ip);
    SSL_CTX_free(d->tls_ctx);
    free(d->lanes);
    free(d);
}
