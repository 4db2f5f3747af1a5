/*
 * net.h — the doctor's connections: non-blocking TCP connect and OpenSSL TLS
 * client handshakes, reads and writes, every wait a poll(2) bounded by a
 * deadline on the monotonic clock (clock.h).
 *
 * Private to rt_doctor. Blocking (up to the deadline), single-threaded.
 * Results are 0 or a negative RT_E_* value (err.h) unless stated otherwise.
 * A target is filled by the url/dns/tcp/tls checks and then read by every
 * connection; it owns nothing (the doctor run frees ctx).
 */
#ifndef RT_DOCTOR_NET_H
#define RT_DOCTOR_NET_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Where every connection of one doctor run goes. */
typedef struct {
    char host[256], port[8];      /* from the URL; host without [] */
    char hosthdr[300];            /* the Host header: host, [v6], :port unless default */
    bool tls;                     /* the URL asks for TLS (https://, wss://) */
    SSL_CTX *ctx;                 /* borrowed: set by the tls check, freed by the run */
    struct sockaddr_storage addr; /* the address that answered the tcp check */
    socklen_t addrlen;
    int64_t timeout_ms; /* per network step */
    char probe[40];     /* the run's probe id, sent as X-Rtgw-Probe by rt__http_do; "" none */
    long verr[8];       /* certificate verification errors of the last handshake */
    int nverr;
} rt__target_t;

/* One connection: fd, and ssl when TLS. fd is -1 when closed. */
typedef struct {
    int fd;
    SSL *ssl;
} rt__net_conn_t;

/* Wait for ev on fd until deadline (monotonic ms): 0 ready, RT_E_TIMEOUT, or
 * RT_E_IO (errno set). */
int rt__net_wait(int fd, short ev, int64_t deadline);

/* Non-blocking connect: the fd, or -1 with *err an errno value (ETIMEDOUT
 * when the deadline passed). The caller closes the fd. */
int rt__tcp_connect(const struct sockaddr *sa, socklen_t len, int64_t deadline, int *err);

/* Connect to t->addr, with a TLS handshake when t->tls (verifying t->host;
 * verification errors are recorded in t->verr, the handshake goes on).
 * 0, or RT_E_IO / RT_E_TIMEOUT / RT_E_PROTOCOL / RT_E_NOMEM with why filled
 * (a sentence for the report). Close with rt__net_close. */
int rt__net_open(rt__target_t *t, rt__net_conn_t *c, char *why, size_t cap);
void rt__net_close(rt__net_conn_t *c);

/* Write all of p: 0, RT_E_TIMEOUT or RT_E_IO. */
int rt__net_write(rt__net_conn_t *c, const void *p, size_t n, int64_t deadline);

/* Read what is there: > 0 bytes read, 0 end of stream (or reset, or a TLS
 * error mid-stream), RT_E_TIMEOUT, or RT_E_IO. */
ssize_t rt__net_read(rt__net_conn_t *c, void *p, size_t n, int64_t deadline);

/* A TLS client context (TLS 1.2 or later) that verifies the peer yet
 * completes the handshake, recording verification errors in the target of
 * each connection (t->verr). NULL when out of memory; the caller frees it. */
SSL_CTX *rt__net_tls_ctx_new(void);

/* True if an unverified TLS handshake succeeds at t->addr: tells "http:// to
 * a TLS port" apart from a server that just closes. t is left as it was. */
bool rt__net_speaks_tls(rt__target_t *t);

/* True if the TLS front end at t refuses a handshake that offers only
 * http/1.1 in ALPN (as a browser's WebSocket does) but completes one that
 * offers h2: it speaks only HTTP/2. t is left as it was. */
bool rt__net_h2_only(rt__target_t *t);

#endif
