/*
 * sockhook.c — every hook rtgw puts under civetweb 1.15, and its contract.
 *
 * civetweb owns the sockets and does the reads; rtgw needs things civetweb
 * does not offer, so it intercepts the socket calls civetweb makes:
 *
 * accept()    Two jobs.
 *             The hand-over. rtgw owns the front door (frontdoor.c): it
 *             listens on the public address itself and keeps each new
 *             connection, at no thread's cost, until its first request head
 *             has arrived, because civetweb 1.15 gives a worker thread to a
 *             connection the moment it is accepted and that worker waits up to
 *             RTGW_REQUEST_TIMEOUT_MS for a byte: idle sockets would starve
 *             everyone. civetweb listens on a private loopback port instead.
 *             When a connection is ready, the front door queues it here
 *             (rt__sockhook_handover) and connects a throwaway socket to the
 *             private port, which makes civetweb's listener readable. accept()
 *             on the private listener then accepts that throwaway, closes it,
 *             and returns the queued client socket instead, with the client's
 *             real address in addr/len: civetweb's remote_addr, the
 *             X-Forwarded-For trust, per-IP limits and logs see the client.
 *             Its local address (civetweb's server_port) is the public one,
 *             since it is read from the client socket. Anything else that
 *             connects to the private port is closed the same way, so nothing
 *             reaches civetweb around the front door. An accept that finds the
 *             queue empty (a stray connection, or one that took a queued
 *             socket before its throwaway arrived) closes what it accepted and
 *             fails with EAGAIN, which civetweb ignores.
 *             Peer → fd. civetweb never exposes a connection's socket, but the
 *             writers need it (SIOCOUTQ for room, epoll to park, and to detach
 *             a session from its thread). accept records peer address → fd,
 *             and a session finds its socket by its remote address and server
 *             port (rt__sockhook_fd_of); both halves of the key come from the
 *             client socket itself (getpeername, getsockname), as civetweb's
 *             do. It also resets the fd's guard: a reused fd is a new
 *             connection, not guarded yet, whose header deadline started when
 *             the front door accepted it.
 * recv()      Before a connection is a guarded WebSocket session (the HTTP
 *             phase), recv never hands civetweb bytes past the end of a
 *             request's headers: it peeks, and reads only up to the first
 *             "\r\n\r\n". So when a WebSocket request is admitted, civetweb
 *             holds exactly the request, and anything the client sent early
 *             is still in the kernel, where ws_connect sees it (and the guard,
 *             which starts there, is never fooled by a frame civetweb already
 *             buffered). Bodies are read in more, smaller pieces; nothing else
 *             changes.
 *             Slowloris: civetweb's timeout applies to each read, so a client
 *             dribbling a byte at a time could hold a thread forever. The
 *             first request's headers must arrive within
 *             RTGW_REQUEST_TIMEOUT_MS of accept(), or the read fails
 *             (ETIMEDOUT). The front door already closes a connection whose
 *             head is not complete by then; this deadline still covers the
 *             ones it hands over early (a head too large or malformed, which
 *             civetweb refuses).
 *             A body has the same problem (civetweb's mg_read keeps reading
 *             while each byte comes within the timeout): rt__read_body sets a
 *             read deadline on the fd (rt__sockhook_read_deadline), after
 *             which recv fails (ETIMEDOUT).
 *             On a guarded session, every byte read goes through the client
 *             frame guard (below).
 *             On a TLS connection (one the front door handed over with an
 *             rt_tls_t: rtgw terminates TLS, tlsconn.h) recv returns
 *             decrypted bytes, under the same rules: the head's end is found
 *             in the decrypted buffer instead of by a peek at the kernel.
 * MSG_PEEK reads pass through untouched.
 * send()      On a TLS connection, encrypts (rt__tls_write: TLS's retry
 *             rule, the same bytes again after "again", is civetweb's own:
 *             it polls for room and sends the same buffer).
 * poll()      On a TLS connection, "readable" means decrypted bytes are
 *             ready: civetweb takes a recv that finds nothing after poll said
 *             readable for the end of the connection, and a socket can be
 *             readable with half a record in it. Other descriptors, and every
 *             poll while no TLS connection exists, go straight to libc.
 * shutdown()  On a TLS connection, a close_notify first (civetweb's graceful
 *             close shuts the write side).
 * close()     Frees a TLS connection's state with its socket.
 *
 * The client frame guard. civetweb reads a whole client frame into memory (up
 * to ~2 GiB) before the data handler can look at its size, so
 * RTGW_MAX_CLIENT_FRAME_BYTES checked there would come too late. The guard
 * follows the client's frame headers (wsframe.h) in the byte stream of each
 * WebSocket session: a header announcing more than the limit, or an unmasked
 * client frame, is refused from its header, before civetweb buffers anything
 * for it; so is a header that breaks RFC 6455's stream rules (RSV bits,
 * reserved opcodes, fragmented or large control frames, continuation out of
 * order, fragments summing past the limit: rt_ws_rx_header). The read fails (EMSGSIZE),
 * rt__conn_refuse_frame sends the close frame (1009 message_too_big, or 1002 protocol_error) and
 * the socket lingers half-closed so the client receives it. The guard starts before the 101 is
 * sent; a client that sends frames before the handshake completes is refused
 * (ws_connect), so the guard always starts at a frame boundary. Detached
 * sessions are read by their writer instead (detached.c), with the same rules.
 *
 * Why the state here is file-static: a libc override cannot receive a
 * context. The fd tables (peers: peer → fd; guards: fd → guard) and the
 * header deadline are this file's alone, sized and set once by
 * rt__sockhook_init before civetweb starts, and indexed by fd. The hand-over
 * queue is too: filled by the front door (rt__sockhook_handover), emptied by
 * accept, its private port set by rt__sockhook_handover_begin once civetweb
 * listens and cleared by rt__sockhook_handover_end after civetweb stops.
 *
 * The hooks live in the executable (the rt_server object library), so they
 * win over libc for civetweb's calls; each calls libc's own (dlsym
 * RTLD_NEXT). A connection's TLS state is in its guard entry (fd → guard),
 * set by accept from the hand-over, taken by a session that detaches
 * (rt__sockhook_tls_take), freed by close. rtgw's own reads and writes of
 * TLS sockets go through read() and write(), which are not hooked.
 *
 * Threads and locks: accept runs on civetweb's master thread; recv, send,
 * poll, shutdown and close of a connection on its worker thread, one at a
 * time per fd;
 * rt__sockhook_handover on the front door's thread. The peers table is under
 * peers_lock, the hand-over queue under handover_lock (never both at once).
 * A guard is read and written by its connection's thread, except its conn
 * pointer (atomic), which ws_connect sets and session_detach/session_end
 * clear from other threads.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/types.h>

#include "sockhook.h"
#include "linger.h"
#include "clock.h"
#include "tlsconn.h"
#include "conn.h"
#include "err.h"
#include "map.h"
#include "wsframe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    _Atomic(rt_conn_t *) conn; /* non-NULL while the session is guarded */
    uint64_t limit;
    uint64_t remaining; /* payload bytes left in the current frame */
    uint8_t hdr[RT_WS_HDR_MAX];
    uint8_t hlen;
    uint8_t crlf;            /* HTTP phase: how much of "\r\n\r\n" the last bytes matched */
    bool first_headers_done; /* the connection's first request headers arrived */
    uint8_t head_big;        /* rt_head_big_t from the front door */
    int64_t accepted_ms;     /* monotonic time of accept() */
    int64_t read_until;      /* HTTP phase: reads after it fail (a body's deadline); 0: none */
    bool tripped;
    rt_ws_rx_t rx; /* RFC 6455 stream rules over the headers (wsframe.h) */
    rt_tls_t *tls; /* the connection's TLS, while civetweb reads it; NULL: plain */
    bool between;  /* a request is done (end_request); civetweb may wait for the next */
} guard_t;

static guard_t *guards; /* indexed by fd */
static size_t nguards;
static int64_t header_deadline_ms; /* RTGW_REQUEST_TIMEOUT_MS; 0 until the server starts */
static atomic_bool tls_in_use;     /* some connection may carry an rt_tls_t */

enum { TLS_FILL = 16384 + 512 }; /* the plaintext of one full TLS record, and some */

static pthread_mutex_t peers_lock = PTHREAD_MUTEX_INITIALIZER;
static rt_map_t peers;   /* "addr|port|localport" → (void*)(fd + 1) */
static char **peer_keys; /* fd → its key, to drop a stale entry on reuse */
static size_t peer_keys_cap;

static ssize_t libc_recv(int fd, void *buf, size_t len, int flags)
{
    static ssize_t (*real_recv)(int, void *, size_t, int);
    if (!real_recv)
        real_recv = (ssize_t(*)(int, void *, size_t, int))dlsym(RTLD_NEXT, "recv");
    return real_recv(fd, buf, len, flags);
}

static int libc_poll(struct pollfd *fds, nfds_t n, int timeout)
{
    static int (*real_poll)(struct pollfd *, nfds_t, int);
    if (!real_poll)
        real_poll = (int (*)(struct pollfd *, nfds_t, int))dlsym(RTLD_NEXT, "poll");
    return real_poll(fds, n, timeout);
}

/* ---- accept: peer address → fd ---- */

/* "addr|port|localport" for a peer. Its length, or RT_E_INVAL for a socket
 * that is not IPv4 or IPv6. */
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
        return RT_E_INVAL;
    }
    return snprintf(out, cap, "%s|%d|%d", ip, port, local_port);
}

/* Room in peer_keys for fd. peers_lock held. */
static bool peer_keys_reserve(int fd)
{
    if ((size_t)fd < peer_keys_cap)
        return true;
    size_t nc = peer_keys_cap ? peer_keys_cap : 1024;
    while (nc <= (size_t)fd)
        nc *= 2;
    char **nk = realloc(peer_keys, nc * sizeof(*nk));
    if (!nk)
        return false;
    memset(nk + peer_keys_cap, 0, (nc - peer_keys_cap) * sizeof(*nk));
    peer_keys = nk;
    peer_keys_cap = nc;
    return true;
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
    if (peer_keys_reserve(fd)) {
        if (peer_keys[fd]) { /* the fd's previous connection */
            void *v = rt_map_get(&peers, peer_keys[fd], strlen(peer_keys[fd]));
            if (v == (void *)(intptr_t)(fd + 1))
                rt_map_del(&peers, peer_keys[fd], strlen(peer_keys[fd]));
            free(peer_keys[fd]);
            peer_keys[fd] = NULL;
        }
        if (rt_map_put(&peers, key, strlen(key), (void *)(intptr_t)(fd + 1)) == 0)
            peer_keys[fd] = strdup(key);
    }
    pthread_mutex_unlock(&peers_lock);
}

int rt__sockhook_fd_of(const char *remote_addr, int remote_port, int server_port)
{
    char ip6[INET6_ADDRSTRLEN + 2];
    char key[128];
    /* civetweb prints IPv6 remote addresses without brackets, like inet_ntop. */
    snprintf(ip6, sizeof(ip6), "%s", remote_addr);
    snprintf(key, sizeof(key), "%s|%d|%d", ip6, remote_port, server_port);
    pthread_mutex_lock(&peers_lock);
    void *v = rt_map_get(&peers, key, strlen(key));
    pthread_mutex_unlock(&peers_lock);
    return v ? (int)(intptr_t)v - 1 : -1;
}

/* A new connection on fd (perhaps a reused one): not guarded, in its HTTP
 * phase, its header deadline counted from accepted_ms (monotonic), when the
 * front door accepted it; head_complete: its first request head is already in
 * the kernel, so the deadline is met. */
static void guard_reset(int fd, int64_t accepted_ms, bool head_complete, rt_head_big_t big,
                        rt_tls_t *tls)
{
    if (fd >= 0 && (size_t)fd < nguards) {
        rt__tls_free(guards[fd].tls); /* a close that bypassed close() */
        guards[fd].tls = tls;
        atomic_store(&guards[fd].conn, NULL);
        guards[fd].crlf = 0;
        guards[fd].first_headers_done = head_complete;
        guards[fd].head_big = (uint8_t)big;
        guards[fd].accepted_ms = accepted_ms;
        guards[fd].read_until = 0;
        guards[fd].between = false;
    }
}

rt_head_big_t rt__sockhook_head_big(int fd)
{
    return fd >= 0 && (size_t)fd < nguards ? (rt_head_big_t)guards[fd].head_big : RT_HEAD_FITS;
}

/* ---- accept: the hand-over ---- */

typedef struct handover_s {
    int fd;
    struct sockaddr_storage peer;
    socklen_t peerlen;
    int64_t accepted_ms;
    bool head_complete;
    rt_head_big_t big;
    rt_tls_t *tls;
    struct handover_s *next;
} handover_t;

static pthread_mutex_t handover_lock = PTHREAD_MUTEX_INITIALIZER;
static handover_t *handover_head, *handover_tail; /* FIFO, handover_lock */
static atomic_size_t handover_len;
static atomic_int handover_port;    /* civetweb's private port; 0: no hand-over */
static atomic_int handover_fd = -1; /* civetweb's private listener, once seen */

int rt__sockhook_handover(int fd, const struct sockaddr *peer, socklen_t peerlen,
                          int64_t accepted_ms, bool head_complete, rt_head_big_t big, rt_tls_t *tls)
{
    handover_t *h = calloc(1, sizeof(*h));
    if (!h)
        return RT_E_NOMEM;
    h->fd = fd;
    h->peerlen = peerlen < sizeof(h->peer) ? peerlen : sizeof(h->peer);
    memcpy(&h->peer, peer, h->peerlen);
    h->accepted_ms = accepted_ms;
    h->head_complete = head_complete;
    h->big = big;
    h->tls = tls;
    pthread_mutex_lock(&handover_lock);
    if (handover_tail)
        handover_tail->next = h;
    else
        handover_head = h;
    handover_tail = h;
    atomic_fetch_add(&handover_len, 1);
    pthread_mutex_unlock(&handover_lock);
    return 0;
}

size_t rt__sockhook_handover_queued(void)
{
    return atomic_load(&handover_len);
}

static handover_t *handover_pop(void)
{
    pthread_mutex_lock(&handover_lock);
    handover_t *h = handover_head;
    if (h) {
        handover_head = h->next;
        if (!handover_head)
            handover_tail = NULL;
        atomic_fetch_sub(&handover_len, 1);
    }
    pthread_mutex_unlock(&handover_lock);
    return h;
}

void rt__sockhook_handover_begin(int private_port)
{
    atomic_store(&handover_port, private_port);
}

void rt__sockhook_handover_end(void)
{
    atomic_store(&handover_port, 0);
    for (handover_t *h; (h = handover_pop()) != NULL; free(h)) {
        rt__tls_free(h->tls);
        close(h->fd);
    }
}

/* Whether fd is civetweb's private listener (127.0.0.1, the private port).
 * Looked up once, then remembered. */
static bool is_private_listener(int fd)
{
    int port = atomic_load(&handover_port);
    if (port == 0)
        return false;
    int known = atomic_load(&handover_fd);
    if (known >= 0)
        return fd == known;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) != 0 || sa.sin_family != AF_INET ||
        ntohs(sa.sin_port) != port || sa.sin_addr.s_addr != htonl(INADDR_LOOPBACK))
        return false;
    atomic_store(&handover_fd, fd);
    return true;
}

static int (*libc_accept(void))(int, struct sockaddr *, socklen_t *)
{
    static int (*real_accept)(int, struct sockaddr *, socklen_t *);
    if (!real_accept)
        real_accept = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
    return real_accept;
}

/* accept on the private listener: the throwaway connection (or a stray one)
 * is closed, and the oldest queued client socket returned in its place. */
static int accept_handover(int lfd, struct sockaddr *addr, socklen_t *len)
{
    int t = libc_accept()(lfd, NULL, NULL);
    if (t < 0)
        return -1;
    close(t);
    handover_t *h = handover_pop();
    if (!h) {
        errno = EAGAIN;
        return -1;
    }
    if (addr && len) {
        memcpy(addr, &h->peer, *len < h->peerlen ? *len : h->peerlen);
        *len = h->peerlen;
    }
    int c = h->fd;
    if (h->tls && (size_t)c >= nguards) {
        /* No guard entry to carry its TLS: civetweb would speak plain HTTP
         * on a TLS socket. Refuse it instead. */
        rt__tls_free(h->tls);
        close(c);
        free(h);
        errno = EAGAIN;
        return -1;
    }
    peers_record(c);
    guard_reset(c, h->accepted_ms, h->head_complete, h->big, h->tls);
    free(h);
    return c;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    if (is_private_listener(fd))
        return accept_handover(fd, addr, len);
    int c = libc_accept()(fd, addr, len);
    if (c >= 0) {
        peers_record(c);
        guard_reset(c, rt_clock_mono_ms(), false, RT_HEAD_FITS, NULL);
    }
    return c;
}

/* ---- the client frame guard ---- */

/* Follow frame headers in bytes a guarded session received. Returns true
 * while the frames are acceptable; false with *why (the close reason) for a
 * frame to refuse. The session's thread only. */
static bool guard_feed(guard_t *g, const uint8_t *p, size_t n, rt_reason_t *why)
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
        if (g->hlen < 2 || g->hlen < rt_ws_hdr_need(g->hdr[1]))
            continue;
        rt_ws_hdr_t h;
        int r = rt_ws_hdr_parse(g->hdr, g->hlen, &h);
        if (!(g->hdr[1] & 0x80)) {
            *why = RT_REASON_PROTOCOL_ERROR; /* RFC 6455 §5.1: client frames are masked */
            return false;
        }
        if (r < 0 || h.len > g->limit) {
            *why = RT_REASON_MESSAGE_TOO_BIG;
            return false;
        }
        *why = rt_ws_rx_header(&g->rx, &h, g->limit); /* RSV, opcodes, control, fragments */
        if (*why != RT_REASON_NORMAL)
            return false;
        g->remaining = h.len;
        g->hlen = 0;
    }
    return true;
}

static bool give_to_frontdoor(int fd, int64_t linger_ms, size_t linger_max);

void rt__sockhook_linger(int fd, int64_t ms, size_t max)
{
    if (fd < 0)
        return;
    shutdown(fd, SHUT_WR);
    if (give_to_frontdoor(fd, ms, max))
        return;
    int64_t until = rt_clock_mono_ms() + ms;
    char scratch[16384];
    for (size_t dropped = 0; dropped < max;) {
        int64_t left = until - rt_clock_mono_ms();
        if (left <= 0)
            return;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (libc_poll(&p, 1, (int)left) <= 0)
            return;
        ssize_t n = libc_recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);
        if (n > 0) /* as linger.c: a request behind may carry a key */
            explicit_bzero(scratch, (size_t)n);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return;
        dropped += n > 0 ? (size_t)n : 0;
    }
}

/* After the close frame: the client must read it (1009, not 1006). */
static void guard_linger(int fd)
{
    rt__sockhook_linger(fd, RT__LINGER_MS, SIZE_MAX);
}

/* After a read of n bytes on fd (recv: decrypted bytes, for TLS): 0 to
 * pass it on, RT_E_PROTOCOL to fail the read (the frame was refused). */
static int guard_after_read(int fd, const void *buf, ssize_t n)
{
    if (n <= 0 || fd < 0 || (size_t)fd >= nguards)
        return 0;
    guard_t *g = &guards[fd];
    rt_conn_t *c = atomic_load(&g->conn);
    if (!c)
        return g->read_until && rt_clock_mono_ms() >= g->read_until ? RT_E_TIMEOUT : 0;
    if (g->tripped)
        return RT_E_PROTOCOL;
    rt_reason_t why;
    if (guard_feed(g, buf, (size_t)n, &why))
        return 0;
    g->tripped = true;
    rt__conn_refuse_frame(c, why);
    guard_linger(fd);
    return RT_E_PROTOCOL;
}

void rt__sockhook_read_deadline(int fd, int64_t until_ms)
{
    if (fd >= 0 && (size_t)fd < nguards)
        guards[fd].read_until = until_ms;
}

void rt__guard_start(rt_conn_t *c, int fd, uint64_t limit)
{
    if (fd < 0 || (size_t)fd >= nguards)
        return;
    guard_t *g = &guards[fd];
    g->limit = limit;
    g->remaining = 0;
    g->hlen = 0;
    g->tripped = false;
    memset(&g->rx, 0, sizeof(g->rx));
    atomic_store(&g->conn, c);
}

void rt__guard_stop(rt_conn_t *c, int fd)
{
    if (fd < 0 || (size_t)fd >= nguards)
        return;
    rt_conn_t *expect = c;
    atomic_compare_exchange_strong(&guards[fd].conn, &expect, NULL);
}

/* ---- recv ---- */

/* The end of a head as civetweb finds it (get_http_header_len): "\r\n\r\n",
 * or two "\n" in a row. States: 0 in a line, 1 "\r", 2 "\r\n", 3 "\r\n\r",
 * 4 the head ended, 5 a bare "\n". */
static uint8_t crlf_step(uint8_t st, char ch)
{
    if (ch == '\r')
        return st == 2 ? 3 : 1;
    if (ch == '\n')
        return st == 1 ? 2 : st == 2 || st == 3 || st == 5 ? 4 : 5;
    return 0;
}

/* Where a read of the n bytes at buf must stop so that it ends no later than
 * the end of a request's headers, starting in state st. */
static size_t head_cut(uint8_t st, const uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        st = crlf_step(st, (char)buf[i]);
        if (st == 4)
            return i + 1;
    }
    return n;
}

/* Follow the n bytes civetweb received: the end of a request's headers. */
static void head_advance(guard_t *g, const uint8_t *buf, size_t n)
{
    uint8_t st = g->crlf;
    for (size_t i = 0; i < n; i++) {
        st = crlf_step(st, (char)buf[i]);
        if (st == 4) {
            st = 0;
            g->first_headers_done = true;
        }
    }
    g->crlf = st;
}

/* The decrypted bytes of a TLS connection, as far as its buffer holds them
 * (at least one record's worth): n > 0, 0 at end of stream, -1 with errno. */
static ssize_t tls_peek(rt_tls_t *t, const uint8_t **out)
{
    size_t have;
    *out = rt__tls_peek(t, &have);
    if (have == 0) {
        ssize_t n = rt__tls_fill(t, TLS_FILL);
        if (n < 0)
            return errno == 0 ? 0 : -1;
        *out = rt__tls_peek(t, &have);
    }
    return (ssize_t)have;
}

/* The HTTP phase of recv (see the top of this file): the header deadline,
 * then a read that stops at the end of a request's headers. */
static ssize_t recv_http_phase(guard_t *g, int fd, void *buf, size_t len, int flags)
{
    if ((!g->first_headers_done && header_deadline_ms > 0 &&
         rt_clock_mono_ms() - g->accepted_ms > header_deadline_ms) ||
        (g->read_until && rt_clock_mono_ms() >= g->read_until)) {
        errno = ETIMEDOUT;
        return -1;
    }
    ssize_t n;
    if (g->tls) {
        const uint8_t *plain;
        n = tls_peek(g->tls, &plain);
        if (n <= 0)
            return n;
        n = (ssize_t)head_cut(g->crlf, plain, (size_t)n < len ? (size_t)n : len);
        memcpy(buf, plain, (size_t)n);
        rt__tls_consume(g->tls, (size_t)n);
    } else {
        n = libc_recv(fd, buf, len, flags | MSG_PEEK);
        if (n <= 0)
            return n;
        n = libc_recv(fd, buf, head_cut(g->crlf, buf, (size_t)n), flags);
    }
    if (n > 0)
        head_advance(g, buf, (size_t)n);
    return n;
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    if ((flags & MSG_PEEK) || fd < 0 || (size_t)fd >= nguards || len == 0)
        return libc_recv(fd, buf, len, flags);
    guard_t *g = &guards[fd];
    if (!atomic_load(&g->conn))
        return recv_http_phase(g, fd, buf, len, flags);
    ssize_t n = g->tls ? rt__tls_read(g->tls, buf, len) : libc_recv(fd, buf, len, flags);
    if (n > 0 && guard_after_read(fd, buf, n) != 0) {
        errno = EMSGSIZE;
        return -1;
    }
    return n;
}

/* ---- send, poll, shutdown, close: TLS for civetweb ---- */

static rt_tls_t *tls_of(int fd)
{
    return fd >= 0 && (size_t)fd < nguards ? guards[fd].tls : NULL;
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    static ssize_t (*real_send)(int, const void *, size_t, int);
    rt_tls_t *t = tls_of(fd);
    if (t)
        return rt__tls_write(t, buf, len);
    if (!real_send)
        real_send = (ssize_t(*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
    return real_send(fd, buf, len, flags);
}

/* ---- stopping ---- */

/* civetweb's master thread polls its listener for up to 2 s at a time
 * (SOCKET_TIMEOUT_QUANTUM) and checks its stop flag in between, so mg_stop
 * took 2 s however idle the server was (and every test's gateway with it).
 * Long polls are cut into slices; once the server stops, a slice ends the
 * poll as a timeout (what civetweb does at its stop flag anyway). */
enum { POLL_SLICE_MS = 100 };
static atomic_bool stopping;

void rt__sockhook_stopping(void)
{
    atomic_store(&stopping, true);
}

static int poll_sliced(struct pollfd *fds, nfds_t n, int timeout)
{
    if (timeout >= 0 && timeout <= POLL_SLICE_MS)
        return libc_poll(fds, n, timeout);
    int64_t until = timeout < 0 ? INT64_MAX : rt_clock_mono_ms() + timeout;
    for (;;) {
        if (atomic_load_explicit(&stopping, memory_order_relaxed))
            return 0;
        int64_t left = until - rt_clock_mono_ms();
        if (left <= 0)
            return 0;
        int r = libc_poll(fds, n, left < POLL_SLICE_MS ? (int)left : POLL_SLICE_MS);
        if (r != 0)
            return r;
    }
}

static int left_ms(int64_t until)
{
    int64_t left = until - rt_clock_mono_ms();
    return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

/* A TLS connection is readable when plaintext is: decrypted bytes already
 * buffered count at once, and a socket that is readable only counts once a
 * whole record has arrived (civetweb treats a read that finds nothing after
 * poll said "readable" as the end of the connection). The end of stream and
 * errors count as readable, so the read that follows sees them. */
static int poll_tls(struct pollfd *fds, nfds_t n, int timeout)
{
    int64_t until = timeout < 0 ? INT64_MAX : rt_clock_mono_ms() + timeout;
    enum { MAX_FDS = 64 };
    bool buffered[MAX_FDS];
    if (n > MAX_FDS)
        return poll_sliced(fds, n, timeout); /* civetweb polls one or two; no TLS view beyond */
    for (;;) {
        int ready = 0;
        for (nfds_t i = 0; i < n; i++) {
            rt_tls_t *t = (fds[i].events & POLLIN) ? tls_of(fds[i].fd) : NULL;
            buffered[i] = t && rt__tls_readable(t);
            ready += buffered[i];
        }
        /* sliced like any other poll, so a stop ends it within a slice */
        int r =
            ready ? libc_poll(fds, n, 0) : poll_sliced(fds, n, timeout < 0 ? -1 : left_ms(until));
        if (r < 0 || (r == 0 && !ready && atomic_load_explicit(&stopping, memory_order_relaxed)))
            return r;
        if (ready) {
            /* What libc saw, plus the decrypted bytes it cannot see. */
            int count = 0;
            for (nfds_t i = 0; i < n; i++) {
                if (buffered[i])
                    fds[i].revents |= POLLIN;
                count += fds[i].revents != 0;
            }
            return count;
        }
        for (nfds_t i = 0; i < n && r > 0; i++) {
            rt_tls_t *t = (fds[i].revents & POLLIN) ? tls_of(fds[i].fd) : NULL;
            if (t && !(fds[i].revents & (POLLERR | POLLHUP)) && rt__tls_fill(t, TLS_FILL) < 0 &&
                errno == EAGAIN) {
                fds[i].revents &= (short)~POLLIN;
                r -= fds[i].revents == 0;
            }
        }
        if (r > 0 || (timeout >= 0 && rt_clock_mono_ms() >= until))
            return r;
        if (timeout >= 0)
            timeout = (int)(until - rt_clock_mono_ms());
    }
}

/* ---- kept-alive connections go back to the front door ---- */

static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;
static rt__sockhook_park_fn park_fn; /* park_lock */
static void *park_ctx;

void rt__sockhook_park_begin(rt__sockhook_park_fn fn, void *ctx)
{
    pthread_mutex_lock(&park_lock);
    park_fn = fn;
    park_ctx = ctx;
    pthread_mutex_unlock(&park_lock);
}

void rt__sockhook_park_end(void)
{
    pthread_mutex_lock(&park_lock);
    park_fn = NULL;
    pthread_mutex_unlock(&park_lock);
}

void rt__sockhook_request_done(int fd)
{
    if (fd >= 0 && (size_t)fd < nguards && !atomic_load(&guards[fd].conn))
        guards[fd].between = true;
}

/* Give fd's socket (a duplicate, with its TLS) to the front door, to wait
 * for its next request (linger_ms 0) or to linger, and point civetweb's
 * descriptor at a closed socketpair, as a detaching session does, so its
 * reads end at once and the worker is free. true when given. */
static bool give_to_frontdoor(int fd, int64_t linger_ms, size_t linger_max)
{
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0)
        return false;
    bool given = false;
    pthread_mutex_lock(&park_lock);
    int nfd = park_fn ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    /* civetweb's descriptor first: once the front door has the socket, it is
     * never owned twice. */
    if (nfd >= 0 && dup2(sp[0], fd) < 0) {
        close(nfd);
        nfd = -1;
    }
    if (nfd >= 0) {
        guard_t *g = (size_t)fd < nguards ? &guards[fd] : NULL;
        rt_tls_t *t = g ? g->tls : NULL;
        if (g)
            g->tls = NULL;
        if (t)
            rt__tls_set_fd(t, nfd);
        if (park_fn(park_ctx, nfd, t, linger_ms, linger_max) != 0) { /* out of memory */
            rt__tls_free(t);
            close(nfd);
        }
        given = true;
    }
    pthread_mutex_unlock(&park_lock);
    close(sp[0]);
    close(sp[1]);
    return given;
}

/* civetweb waits for a kept-alive connection's next request: if nothing of
 * it has arrived, give the connection back to the front door (a duplicate of
 * the socket, with its TLS), and point civetweb's descriptor at a closed
 * socketpair, as a detaching session does, so its read ends at once and the
 * worker is free. true when parked. The connection's worker thread. */
static bool park_if_idle(int fd)
{
    guard_t *g = &guards[fd];
    g->between = false;
    /* Not while civetweb holds part of a record to send (its write timed out)
     * or decrypted bytes wait. */
    if (atomic_load(&g->conn) || (g->tls && (rt__tls_readable(g->tls) || rt__tls_unsent(g->tls))))
        return false;
    char b;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (libc_recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) >= 0 || errno != EAGAIN ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
        (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
        return false; /* bytes, an end or an error for civetweb; or a detached session's pair */
    return give_to_frontdoor(fd, 0, 0);
}

/* glibc declares poll's array write-only (__attr_access), which it is not
 * for poll's callers: GCC then calls every read of it "uninitialized". */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    /* civetweb waits for one connection at a time */
    if (n == 1 && fds[0].fd >= 0 && (size_t)fds[0].fd < nguards && guards[fds[0].fd].between &&
        (fds[0].events & POLLIN))
        park_if_idle(fds[0].fd);
    if (atomic_load_explicit(&tls_in_use, memory_order_relaxed))
        for (nfds_t i = 0; i < n; i++)
            if (tls_of(fds[i].fd))
                return poll_tls(fds, n, timeout);
    return poll_sliced(fds, n, timeout);
}
#pragma GCC diagnostic pop

int shutdown(int fd, int how)
{
    static int (*real_shutdown)(int, int);
    rt_tls_t *t = tls_of(fd);
    if (t && how != SHUT_RD)
        rt__tls_close_notify(t);
    if (!real_shutdown)
        real_shutdown = (int (*)(int, int))dlsym(RTLD_NEXT, "shutdown");
    return real_shutdown(fd, how);
}

int close(int fd)
{
    static int (*real_close)(int);
    rt_tls_t *t = tls_of(fd);
    if (t) {
        guards[fd].tls = NULL;
        rt__tls_free(t);
    }
    if (fd >= 0 && (size_t)fd < nguards)
        guards[fd].between = false;
    if (!real_close)
        real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
    return real_close(fd);
}

bool rt__sockhook_has_early_bytes(int fd)
{
    rt_tls_t *t = tls_of(fd);
    char b;
    bool in_kernel = libc_recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
    if (!t || rt__tls_readable(t))
        return !t ? in_kernel : true;
    /* Decrypt only when the kernel holds something: a fill allocates a
     * record's room for a moment, which fragments the heap when thousands of
     * connections do it between their long-lived allocations. */
    if (in_kernel)
        (void)rt__tls_fill(t, TLS_FILL);
    return rt__tls_readable(t);
}

bool rt__sockhook_tls_buffered(int fd)
{
    rt_tls_t *t = tls_of(fd);
    return t && rt__tls_readable(t);
}

rt_tls_t *rt__sockhook_tls_take(int fd)
{
    rt_tls_t *t = tls_of(fd);
    if (t)
        guards[fd].tls = NULL;
    return t;
}

void rt__sockhook_tls_enable(void)
{
    atomic_store(&tls_in_use, true);
}

void rt__sockhook_init(int64_t deadline_ms)
{
    rt_map_init(&peers);
    struct rlimit nofile;
    nguards = getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < (1u << 20)
                  ? (size_t)nofile.rlim_cur
                  : (1u << 20);
    guards = calloc(nguards, sizeof(*guards));
    if (!guards)
        nguards = 0; /* no guard: civetweb's own limits only */
    header_deadline_ms = deadline_ms;
}
