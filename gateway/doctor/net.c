/*
 * net.c — TCP and TLS for the doctor (see net.h).
 *
 * Sockets are non-blocking from the start, so that no step can hang past its
 * deadline: connect, the TLS handshake, every read and write wait in
 * rt__net_wait. The certificate is verified, but the handshake is completed
 * even when verification fails (verify_cb records the errors): the tls check
 * then names what is wrong instead of a bare "handshake failed".
 */
#include "net.h"
#include "clock.h"
#include "err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int rt__net_wait(int fd, short ev, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - rt_clock_mono_ms();
        if (left <= 0)
            return RT_E_TIMEOUT;
        struct pollfd p = {.fd = fd, .events = ev};
        int n = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
        if (n > 0)
            return 0;
        if (n == 0)
            continue;
        if (errno != EINTR)
            return RT_E_IO;
    }
}

int rt__tcp_connect(const struct sockaddr *sa, socklen_t len, int64_t deadline, int *err)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, sa, len) != 0) {
        if (errno != EINPROGRESS) {
            *err = errno;
            close(fd);
            return -1;
        }
        int w = rt__net_wait(fd, POLLOUT, deadline);
        if (w != 0) {
            *err = w == RT_E_TIMEOUT ? ETIMEDOUT : errno;
            close(fd);
            return -1;
        }
        int so = 0;
        socklen_t sl = sizeof(so);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl);
        if (so) {
            *err = so;
            close(fd);
            return -1;
        }
    }
    return fd;
}

static int verify_cb(int ok, X509_STORE_CTX *x)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    rt__target_t *t = ssl ? SSL_get_app_data(ssl) : NULL;
    if (!ok && t && t->nverr < (int)(sizeof(t->verr) / sizeof(t->verr[0])))
        t->verr[t->nverr++] = X509_STORE_CTX_get_error(x);
    return 1; /* finish the handshake; the tls check judges what was recorded */
}

SSL_CTX *rt__net_tls_ctx_new(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
    /* A browser opens a WebSocket over HTTP/1.1 and offers only that in
     * ALPN; so does the doctor, so that an HTTP/2-only front end shows. */
    SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x08http/1.1", 9);
    return ctx;
}

static bool host_is_ip(const char *h)
{
    unsigned char b[16];
    return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

void rt__net_close(rt__net_conn_t *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* The wait an OpenSSL call asks for after returning r: 0 ready again,
 * RT_E_TIMEOUT, or RT_E_IO when it asks for neither read nor write. */
static int ssl_wait(rt__net_conn_t *c, int r, int64_t deadline)
{
    int e = SSL_get_error(c->ssl, r);
    return e == SSL_ERROR_WANT_READ    ? rt__net_wait(c->fd, POLLIN, deadline)
           : e == SSL_ERROR_WANT_WRITE ? rt__net_wait(c->fd, POLLOUT, deadline)
                                       : RT_E_IO;
}

/* Why the handshake failed, from OpenSSL's error queue. */
static void handshake_why(char *why, size_t cap)
{
    unsigned long le = ERR_peek_error();
    char es[256] = "";
    if (le)
        ERR_error_string_n(le, es, sizeof(es));
    const char *reason = le ? ERR_reason_error_string(le) : NULL;
    if (reason && strstr(reason, "wrong version number"))
        snprintf(why, cap,
                 "TLS handshake failed: the server does not speak TLS on this port "
                 "(a plain http:// port?)");
    else if (le)
        snprintf(why, cap, "TLS handshake failed: %s", reason ? reason : es);
    else
        snprintf(why, cap, "TLS handshake failed: the server closed the connection");
}

/* The TLS client handshake on c->fd, verifying t->host. */
static int tls_handshake(rt__target_t *t, rt__net_conn_t *c, int64_t deadline, char *why,
                         size_t cap)
{
    c->ssl = SSL_new(t->ctx);
    if (!c->ssl) {
        snprintf(why, cap, "out of memory");
        return RT_E_NOMEM;
    }
    SSL_set_app_data(c->ssl, t);
    SSL_set_fd(c->ssl, c->fd);
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (host_is_ip(t->host)) {
        X509_VERIFY_PARAM_set1_ip_asc(vp, t->host);
    } else {
        SSL_set_tlsext_host_name(c->ssl, t->host);
        X509_VERIFY_PARAM_set1_host(vp, t->host, 0);
    }
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(c->ssl);
        if (r == 1)
            return 0;
        int w = ssl_wait(c, r, deadline);
        if (w == 0)
            continue;
        if (w == RT_E_TIMEOUT) {
            snprintf(why, cap, "no TLS handshake within %llds", (long long)(t->timeout_ms / 1000));
            return RT_E_TIMEOUT;
        }
        handshake_why(why, cap);
        return RT_E_PROTOCOL;
    }
}

int rt__net_open(rt__target_t *t, rt__net_conn_t *c, char *why, size_t cap)
{
    c->fd = -1;
    c->ssl = NULL;
    int64_t deadline = rt_clock_mono_ms() + t->timeout_ms;
    int err = 0;
    c->fd = rt__tcp_connect((struct sockaddr *)&t->addr, t->addrlen, deadline, &err);
    if (c->fd < 0) {
        snprintf(why, cap, "cannot connect to %s:%s: %s", t->host, t->port, strerror(err));
        return err == ETIMEDOUT ? RT_E_TIMEOUT : RT_E_IO;
    }
    if (!t->tls)
        return 0;
    int rc = tls_handshake(t, c, deadline, why, cap);
    if (rc != 0)
        rt__net_close(c);
    return rc;
}

int rt__net_write(rt__net_conn_t *c, const void *p, size_t n, int64_t deadline)
{
    const char *s = p;
    while (n > 0) {
        if (c->ssl) {
            ERR_clear_error();
            int r = SSL_write(c->ssl, s, (int)n);
            if (r > 0) {
                s += r;
                n -= (size_t)r;
                continue;
            }
            int w = ssl_wait(c, r, deadline);
            if (w != 0)
                return w;
        } else {
            ssize_t r = send(c->fd, s, n, MSG_NOSIGNAL);
            if (r > 0) {
                s += r;
                n -= (size_t)r;
            } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                int w = rt__net_wait(c->fd, POLLOUT, deadline);
                if (w != 0)
                    return w;
            } else if (r < 0 && errno == EINTR) {
                continue;
            } else {
                return RT_E_IO;
            }
        }
    }
    return 0;
}

static ssize_t ssl_read(rt__net_conn_t *c, void *p, size_t n, int64_t deadline)
{
    for (;;) {
        ERR_clear_error();
        int r = SSL_read(c->ssl, p, (int)n);
        if (r > 0)
            return r;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0))
            return 0;
        int w = ssl_wait(c, r, deadline);
        if (w == RT_E_TIMEOUT)
            return RT_E_TIMEOUT;
        if (w != 0)
            return 0; /* a TLS error mid-stream: the peer went away */
    }
}

static ssize_t plain_read(rt__net_conn_t *c, void *p, size_t n, int64_t deadline)
{
    for (;;) {
        ssize_t r = recv(c->fd, p, n, 0);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        if (errno == ECONNRESET || errno == EPIPE)
            return 0;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return RT_E_IO;
        int w = rt__net_wait(c->fd, POLLIN, deadline);
        if (w != 0)
            return w;
    }
}

ssize_t rt__net_read(rt__net_conn_t *c, void *p, size_t n, int64_t deadline)
{
    return c->ssl ? ssl_read(c, p, n, deadline) : plain_read(c, p, n, deadline);
}

/* An unverified handshake with t, offering alpn (NULL: no ALPN): true if it
 * completes; the protocol the server chose into chosen (may be NULL). */
static bool handshake_with(rt__target_t *t, const char *alpn, size_t alen, char *chosen, size_t cap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return false;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (alpn)
        SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)alpn, (unsigned)alen);
    SSL_CTX *saved = t->ctx;
    bool was_tls = t->tls;
    t->ctx = ctx;
    t->tls = true;
    rt__net_conn_t c;
    char why[256];
    bool ok = rt__net_open(t, &c, why, sizeof(why)) == 0;
    if (ok && chosen) {
        const unsigned char *p = NULL;
        unsigned n = 0;
        SSL_get0_alpn_selected(c.ssl, &p, &n);
        snprintf(chosen, cap, "%.*s", (int)n, p ? (const char *)p : "");
    }
    if (ok)
        rt__net_close(&c);
    t->ctx = saved;
    t->tls = was_tls;
    SSL_CTX_free(ctx);
    return ok;
}

bool rt__net_speaks_tls(rt__target_t *t)
{
    return handshake_with(t, NULL, 0, NULL, 0);
}

bool rt__net_h2_only(rt__target_t *t)
{
    char chosen[32] = "";
    if (handshake_with(t, "\x08http/1.1", 9, NULL, 0))
        return false;
    return handshake_with(t, "\x02h2", 3, chosen, sizeof(chosen)) && strcmp(chosen, "h2") == 0;
}
