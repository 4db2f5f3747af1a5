/*
 * tlsconn.c — rtgw's own TLS (see tlsconn.h).
 *
 * Why rtgw terminates TLS itself. civetweb 1.15 keeps a connection's TLS state
 * inside its own connection record, so a wss session could never leave its
 * civetweb thread after the handshake: every wss subscriber cost a thread and
 * ~84 KiB, against ~3 KiB and no thread over ws. Now the front door does the
 * handshake (non-blocking, on its epoll, under the request deadline, so a slow
 * handshake holds no thread either) and reads the first request head;
 * civetweb listens for plain HTTP only, and sockhook.c's recv, send and poll
 * hooks encrypt and decrypt for it on the connections that carry an rt_tls_t.
 * A detached session then reads and writes through this file from its writer
 * thread, exactly as a plain one does with read and send.
 *
 * The buffer. rt__tls_fill decrypts ahead into t->buf, for the two readers
 * that must look before they take: the front door, which reads until the end
 * of the first request head, and the HTTP phase of recv, which never hands
 * civetweb bytes past the end of a request's headers. It is allocated on
 * demand and freed as soon as it is empty, so an idle connection holds none.
 *
 * TLS 1.3 after the handshake. OpenSSL's SSL object keeps ~14 KiB for the
 * connection's life. Once a TLS 1.3 handshake is done, the two application
 * traffic secrets (which OpenSSL hands its key log callback) are all the
 * connection needs: tlsrec.c takes over the records and the SSL object is
 * freed, so an idle wss connection costs ~0.3 KiB more than a ws one. This
 * needs OpenSSL to have sent and read nothing under those secrets yet: no
 * session tickets (there is no resumption), and no bytes read past the
 * client's Finished (no read-ahead; checked with SSL_has_pending). TLS 1.2
 * connections keep the SSL object, with SSL_MODE_RELEASE_BUFFERS and
 * SSL_free_buffers between records.
 */
#include "tlsconn.h"
#include "err.h"
#include "tlsrec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rt_tls_s {
    pthread_mutex_t lock; /* around every use of ssl / rec (see tlsconn.h) */
    SSL *ssl;             /* during the handshake, and for good on TLS 1.2 */
    rt_tlsrec_t *rec;     /* TLS 1.3 after the handshake (ssl freed) */
    int fd;
    uint8_t *buf; /* decrypted, not consumed: buf[off..len) */
    size_t off, len, cap;
    /* The application traffic secrets, from the key log callback, until the
     * handshake ends (then wiped). */
    uint8_t csecret[48], ssecret[48];
    uint8_t secretlen, have; /* have: 1 client, 2 server */
};

/* ---- the context ---- */

/* ALPN: http/1.1 when the client offers it; otherwise no protocol is agreed,
 * and the client decides whether to go on (a client that offers only h2 gets
 * a plain HTTP/1.1 server, which is what it is). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char ours[] = "\x08http/1.1";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* A key log line "LABEL <client random> <secret>": the application traffic
 * secrets go to the connection (never to a log). */
static void keylog(const SSL *ssl, const char *line)
{
    rt_tls_t *t = SSL_get_app_data(ssl);
    bool client = strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0;
    if (!t || (!client && strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) != 0))
        return;
    const char *hex = strrchr(line, ' ');
    size_t n = hex ? strlen(++hex) / 2 : 0;
    if (n == 0 || n > sizeof(t->csecret))
        return;
    uint8_t *out = client ? t->csecret : t->ssecret;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return;
        out[i] = (uint8_t)v;
    }
    t->secretlen = (uint8_t)n;
    t->have |= client ? 1 : 2;
}

static SSL_CTX *ctx_fail(SSL_CTX *ctx, char *err, size_t cap, const char *what, const char *path)
{
    unsigned long e = ERR_get_error();
    char detail[200] = "";
    if (e)
        ERR_error_string_n(e, detail, sizeof(detail));
    snprintf(err, cap, "%s %s%s%s", what, path, detail[0] ? ": " : "", detail);
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *rt__tls_ctx_new(const rt_config_t *cfg, char *err, size_t cap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return ctx_fail(ctx, err, cap, "cannot create a TLS context", "");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* No tickets in TLS 1.2 either (no resumption, no long-lived ticket
     * key); TLS 1.2 with forward-secret AEAD suites only. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 SSL_OP_NO_TICKET);
    if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1)
        return ctx_fail(ctx, err, cap, "cannot set the TLS 1.2 ciphers", "");
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_num_tickets(ctx, 0); /* see the top of this file */
    SSL_CTX_set_keylog_callback(ctx, keylog);
    /* No session cache: without tickets a TLS 1.3 session cannot be resumed,
     * and a cached one (~0.8 KiB) outlived its connection in the front door's
     * malloc arena, pinning the pages its handshake had used (measured: 5
     * KiB per idle wss connection, bench/idle_tls.mjs). */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1)
        return ctx_fail(ctx, err, cap, "RTGW_TLS_CERT: cannot load", cfg->tls_cert);
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1)
        return ctx_fail(ctx, err, cap, "RTGW_TLS_KEY: cannot load", cfg->tls_key);
    if (SSL_CTX_check_private_key(ctx) != 1)
        return ctx_fail(ctx, err, cap, "RTGW_TLS_KEY: does not match the certificate in",
                        cfg->tls_cert);
    return ctx;
}

/* ---- a connection ---- */

rt_tls_t *rt__tls_new(SSL_CTX *ctx, int fd)
{
    rt_tls_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    pthread_mutex_init(&t->lock, NULL);
    t->ssl = SSL_new(ctx);
    if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1) {
        SSL_free(t->ssl);
        pthread_mutex_destroy(&t->lock);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_accept_state(t->ssl);
    SSL_set_app_data(t->ssl, t);
    t->fd = fd;
    return t;
}

void rt__tls_set_fd(rt_tls_t *t, int fd)
{
    t->fd = fd;
    /* A socket BIO buffers nothing (no read-ahead), so nothing is lost. */
    if (t->ssl)
        SSL_set_fd(t->ssl, fd);
}

/* errno for a failed SSL call's result r: EAGAIN, 0 (a clean end of
 * stream), ECONNRESET or EPROTO. */
static int ssl_errno(rt_tls_t *t, int r)
{
    int saved = errno;
    int e = SSL_get_error(t->ssl, r);
    ERR_clear_error();
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        return saved == EAGAIN || saved == EWOULDBLOCK ? EAGAIN : saved ? saved : ECONNRESET;
    default:
        return EPROTO;
    }
}

/* A finished TLS 1.3 handshake: the records go to tlsrec.c, the SSL object
 * is freed (see the top of this file). Otherwise t keeps its SSL object. */
static void shed_ssl(rt_tls_t *t)
{
    /* A negotiated max_fragment_length (RFC 6066) is OpenSSL's to honour:
     * such a connection keeps its SSL object. */
    if (SSL_version(t->ssl) == TLS1_3_VERSION && t->have == 3 && !SSL_has_pending(t->ssl) &&
        SSL_SESSION_get_max_fragment_length(SSL_get0_session(t->ssl)) ==
            TLSEXT_max_fragment_length_DISABLED) {
        uint16_t suite = (uint16_t)(SSL_CIPHER_get_id(SSL_get_current_cipher(t->ssl)) & 0xffff);
        t->rec = rt__tlsrec_new(suite, t->csecret, t->ssecret, t->secretlen);
        if (t->rec) {
            SSL_free(t->ssl);
            t->ssl = NULL;
        }
    }
    OPENSSL_cleanse(t->csecret, sizeof(t->csecret));
    OPENSSL_cleanse(t->ssecret, sizeof(t->ssecret));
    t->have = 0;
}

int rt__tls_handshake(rt_tls_t *t)
{
    if (!t->ssl)
        return 1;
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        shed_ssl(t);
        return 1;
    }
    return ssl_errno(t, r) == EAGAIN ? 0 : RT_E_PROTOCOL;
}

/* One record's worth into buf. n > 0; 0 at end of stream; -1 with errno. */
static ssize_t read_record_locked(rt_tls_t *t, void *buf, size_t len)
{
    if (t->rec)
        return rt__tlsrec_read(t->rec, t->fd, buf, len);
    ERR_clear_error();
    int r = SSL_read(t->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (r > 0)
        return r;
    int e = ssl_errno(t, r);
    if (e == 0)
        return 0;
    /* The read that found nothing allocated a record buffer (~17 KiB) to read
     * into: give it back while the connection waits (when nothing is half
     * read in it). */
    if (e == EAGAIN)
        (void)SSL_free_buffers(t->ssl);
    errno = e;
    return -1;
}

static ssize_t read_record(rt_tls_t *t, void *buf, size_t len)
{
    pthread_mutex_lock(&t->lock);
    ssize_t n = read_record_locked(t, buf, len);
    int e = errno;
    pthread_mutex_unlock(&t->lock);
    errno = e;
    return n;
}

/* Decrypted bytes (request heads: tokens, a signing key) are wiped before
 * their buffer is freed, and never realloc'd. */
static void wipe_free(uint8_t *buf, size_t len)
{
    if (buf)
        OPENSSL_cleanse(buf, len);
    free(buf);
}

ssize_t rt__tls_fill(rt_tls_t *t, size_t cap)
{
    if (t->off > 0 && t->off == t->len)
        t->off = t->len = 0;
    if (t->cap < cap) { /* not realloc: the old block is wiped before it is freed */
        uint8_t *nb = malloc(cap);
        if (!nb) {
            errno = ENOMEM;
            return -1;
        }
        if (t->buf)
            memcpy(nb, t->buf, t->len);
        wipe_free(t->buf, t->len);
        t->buf = nb;
        t->cap = cap;
    }
    size_t added = 0;
    while (t->len < t->cap) {
        ssize_t n = read_record(t, t->buf + t->len, t->cap - t->len);
        if (n > 0) {
            t->len += (size_t)n;
            added += (size_t)n;
            continue;
        }
        if (added > 0)
            return (ssize_t)added;
        int e = n == 0 ? 0 : errno;
        rt__tls_consume(t, 0); /* nothing buffered: an idle connection holds no buffer */
        errno = e;
        return -1;
    }
    return (ssize_t)added;
}

const uint8_t *rt__tls_peek(const rt_tls_t *t, size_t *len)
{
    *len = t->len - t->off;
    return t->buf ? t->buf + t->off : NULL;
}

void rt__tls_consume(rt_tls_t *t, size_t n)
{
    t->off += n < t->len - t->off ? n : t->len - t->off;
    if (t->off == t->len) { /* empty: an idle connection holds no buffer */
        wipe_free(t->buf, t->len);
        t->buf = NULL;
        t->off = t->len = t->cap = 0;
    }
}

bool rt__tls_more_than(const rt_tls_t *t, size_t n)
{
    if (t->len - t->off > n)
        return true;
    pthread_mutex_t *lock = (pthread_mutex_t *)&t->lock;
    pthread_mutex_lock(lock);
    bool r = t->rec ? rt__tlsrec_pending(t->rec) : SSL_pending(t->ssl) > 0;
    pthread_mutex_unlock(lock);
    return r;
}

bool rt__tls_readable(const rt_tls_t *t)
{
    return rt__tls_more_than(t, 0);
}

void rt__tls_drop_buffered(rt_tls_t *t)
{
    rt__tls_consume(t, t->len - t->off);
}

bool rt__tls_unsent(rt_tls_t *t)
{
    pthread_mutex_lock(&t->lock);
    bool r = t->rec ? rt__tlsrec_unsent(t->rec) : SSL_want_write(t->ssl);
    pthread_mutex_unlock(&t->lock);
    return r;
}

ssize_t rt__tls_read(rt_tls_t *t, void *buf, size_t len)
{
    size_t have = t->len - t->off;
    if (have > 0) {
        size_t n = have < len ? have : len;
        memcpy(buf, t->buf + t->off, n);
        rt__tls_consume(t, n);
        return (ssize_t)n;
    }
    return read_record(t, buf, len);
}

static ssize_t write_locked(rt_tls_t *t, const void *buf, size_t len)
{
    if (t->rec)
        return rt__tlsrec_write(t->rec, t->fd, buf, len);
    ERR_clear_error();
    int r = SSL_write(t->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (r > 0) {
        (void)SSL_free_buffers(t->ssl); /* nothing is pending: the record went out */
        return r;
    }
    int e = ssl_errno(t, r);
    errno = e == EAGAIN ? EAGAIN : EPIPE;
    return -1;
}

ssize_t rt__tls_write(rt_tls_t *t, const void *buf, size_t len)
{
    if (len == 0)
        return 0;
    pthread_mutex_lock(&t->lock);
    ssize_t n = write_locked(t, buf, len);
    int e = errno;
    pthread_mutex_unlock(&t->lock);
    errno = e;
    return n;
}

rt_tls_t *rt__tls_move(rt_tls_t *t)
{
    if (!t || t->ssl || t->buf)
        return t; /* TLS 1.2 (OpenSSL's object stays where it is), or bytes in flight */
    rt_tls_t *n = malloc(sizeof(*n));
    rt_tlsrec_t *rec = n ? rt__tlsrec_move(t->rec) : NULL;
    if (!rec) {
        free(n);
        return t;
    }
    memcpy(n, t, sizeof(*n));
    n->rec = rec;
    pthread_mutex_init(&n->lock, NULL); /* a mutex is not copied */
    pthread_mutex_destroy(&t->lock);
    OPENSSL_cleanse(t, sizeof(*t));
    free(t);
    return n;
}

void rt__tls_close_notify(rt_tls_t *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    if (t->ssl && !SSL_is_init_finished(t->ssl)) {
        pthread_mutex_unlock(&t->lock);
        return;
    }
    int fd = t->fd;
    int fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    if (t->rec) {
        rt__tlsrec_close_notify(t->rec, fd);
    } else {
        ERR_clear_error();
        (void)SSL_shutdown(t->ssl);
        ERR_clear_error();
    }
    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl);
    pthread_mutex_unlock(&t->lock);
}

void rt__tls_free(rt_tls_t *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    rt__tlsrec_free(t->rec);
    wipe_free(t->buf, t->len);
    pthread_mutex_destroy(&t->lock);
    OPENSSL_cleanse(t, sizeof(*t));
    free(t);
}
