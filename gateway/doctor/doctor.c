/*
 * doctor.c — `rtgw doctor`: the path a browser takes to the gateway, one link
 * at a time, stopping at the first broken one.
 *
 * Why a hand-written client: every failure diagnosed here lives in bytes that
 * a proxy changes — the Upgrade/Connection headers, the status of an upgrade
 * it answered itself, a buffered SSE body, a tunnel closed after an idle
 * period — and a WebSocket library hides exactly those. So this file speaks
 * HTTP/1.1 and RFC 6455 itself over non-blocking sockets (poll for every
 * timeout) and OpenSSL, sends what a browser sends (masked frames, pongs,
 * Origin), and never includes civetweb.
 *
 * Each check prints one line ("✓ name  found", "! name  warning",
 * "✗ name  found") and "    fix: …" lines; --json collects them into
 * {"ok":bool,"checks":[{"name","status","found","fix"?}]}. Every line passes
 * through redact(): neither the signing key nor a token is ever printed.
 *
 * The probes use channel "rtgw-doctor", topic "probe"; each carries a random
 * nonce, so concurrent doctors against one gateway do not confuse each other.
 */
#define _GNU_SOURCE /* strcasestr */
#include "doctor.h"
#include "config.h"
#include "log.h"
#include "tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROBE_CHANNEL "rtgw-doctor"
#define PROBE_TOPIC "probe"
#define DELIVERY_MS 2000
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

typedef enum { ST_OK, ST_WARN, ST_FAIL, ST_SKIP } status_t;

/* ------------------------------------------------------------------------ */
/* small helpers                                                              */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

static int buf_add(buf_t *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

static void buf_free(buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static void random_hex(char *out, size_t nbytes)
{
    unsigned char r[32];
    if (nbytes > sizeof(r))
        nbytes = sizeof(r);
    RAND_bytes(r, (int)nbytes);
    for (size_t i = 0; i < nbytes; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/* ------------------------------------------------------------------------ */
/* report                                                                     */

typedef struct {
    int fd;
    SSL *ssl;
} dconn_t;

typedef struct {
    dconn_t c;
    unsigned char *buf;
    size_t len, cap;
    int pings;
} ws_t;

typedef struct {
    const rt_doctor_opts_t *o;
    FILE *out;
    json_t *checks;
    bool failed;
    int nok, nwarn;
    int64_t timeout_ms;
    /* url */
    bool tls;
    char host[256], port[8], hosthdr[300], shown[400];
    /* tcp: the address that answered, reused by every later connection */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    /* tls */
    SSL_CTX *ctx;
    long verr[8];
    int nverr;
    /* http */
    char date[80];
    int64_t date_local_s;
    /* token */
    char *jwt;
    bool minted, mint_tried;
    int mint_status;
    char mint_err[512];
    int64_t tok_iat, tok_exp;
    /* websocket */
    ws_t ws;
    bool ws_open;
    int64_t ws_delivery_ms;
} doctor_t;

/* Replace every occurrence of `secret` in *s (malloc'd) with "[redacted]". */
static void redact_one(char **s, const char *secret)
{
    if (!secret || strlen(secret) < 8)
        return;
    size_t sl = strlen(secret);
    char *hit;
    while ((hit = strstr(*s, secret))) {
        size_t pre = (size_t)(hit - *s), rest = strlen(hit + sl);
        char *n = malloc(pre + 10 + rest + 1);
        if (!n)
            return;
        memcpy(n, *s, pre);
        memcpy(n + pre, "[redacted]", 10);
        memcpy(n + pre + 10, hit + sl, rest + 1);
        free(*s);
        *s = n;
    }
}

static char *redact(const doctor_t *d, const char *text)
{
    char *s = strdup(text ? text : "");
    if (!s)
        return NULL;
    redact_one(&s, d->o ? d->o->signing_key : NULL);
    redact_one(&s, d->o ? d->o->token : NULL);
    redact_one(&s, d->jwt);
    /* any token=VALUE that reached a message (e.g. a pasted connect URL) */
    for (char *p = strstr(s, "token="); p; p = strstr(p + 6, "token=")) {
        char *v = p + 6, *e = v + strcspn(v, "& \t\n\"'");
        if (e > v && strncmp(v, "[redacted]", 10) != 0) {
            size_t pre = (size_t)(v - s), rest = strlen(e);
            char *n = malloc(pre + 10 + rest + 1);
            if (!n)
                break;
            memcpy(n, s, pre);
            memcpy(n + pre, "[redacted]", 10);
            memcpy(n + pre + 10, e, rest + 1);
            p = n + (p - s);
            free(s);
            s = n;
        }
    }
    return s;
}

/* One check result. fix may hold several lines; each is printed as "    fix: …". */
static void report(doctor_t *d, status_t st, const char *name, const char *found, const char *fix)
{
    static const char *sym[] = {"\xe2\x9c\x93", "!", "\xe2\x9c\x97", "-"};
    static const char *word[] = {"ok", "warn", "fail", "skip"};
    char *f = redact(d, found);
    char *x = fix && *fix ? redact(d, fix) : NULL;
    if (st == ST_FAIL)
        d->failed = true;
    else if (st == ST_OK)
        d->nok++;
    else if (st == ST_WARN)
        d->nwarn++;
    if (d->o && d->o->json) {
        json_t *c =
            json_pack("{s:s,s:s,s:s}", "name", name, "status", word[st], "found", f ? f : "");
        if (c && x)
            json_object_set_new(c, "fix", json_string(x));
        if (c)
            json_array_append_new(d->checks, c);
    } else {
        fprintf(d->out, "%s %-9s  %s\n", sym[st], name, f ? f : "");
        for (char *line = x; line && *line;) {
            char *nl = strchr(line, '\n');
            fprintf(d->out, "    fix: %.*s\n", nl ? (int)(nl - line) : (int)strlen(line), line);
            line = nl ? nl + 1 : NULL;
        }
        fflush(d->out);
    }
    free(f);
    free(x);
}

/* ------------------------------------------------------------------------ */
/* connections: TCP (+TLS) with deadlines                                     */

/* 1 ready, 0 timeout, -1 error */
static int wait_fd(int fd, short ev, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = ev};
        int n = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
        if (n > 0)
            return 1;
        if (n == 0)
            continue;
        if (errno != EINTR)
            return -1;
    }
}

/* Non-blocking connect; returns the fd or -1 with *err set (ETIMEDOUT on timeout). */
static int tcp_connect(const struct sockaddr *sa, socklen_t len, int64_t deadline, int *err)
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
        int w = wait_fd(fd, POLLOUT, deadline);
        if (w <= 0) {
            *err = w == 0 ? ETIMEDOUT : errno;
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
    doctor_t *d = ssl ? SSL_get_app_data(ssl) : NULL;
    if (!ok && d && d->nverr < (int)(sizeof(d->verr) / sizeof(d->verr[0])))
        d->verr[d->nverr++] = X509_STORE_CTX_get_error(x);
    return 1; /* finish the handshake; the tls check judges what was recorded */
}

static bool host_is_ip(const char *h)
{
    unsigned char b[16];
    return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

static void dc_close(dconn_t *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Connect to the address the tcp check found, with TLS when the URL asks.
 * Returns 0, or -1 with why filled. */
static int dc_open(doctor_t *d, dconn_t *c, char *why, size_t cap)
{
    c->fd = -1;
    c->ssl = NULL;
    int64_t deadline = mono_ms() + d->timeout_ms;
    int err = 0;
    c->fd = tcp_connect((struct sockaddr *)&d->addr, d->addrlen, deadline, &err);
    if (c->fd < 0) {
        snprintf(why, cap, "cannot connect to %s:%s: %s", d->host, d->port, strerror(err));
        return -1;
    }
    if (!d->tls)
        return 0;
    c->ssl = SSL_new(d->ctx);
    if (!c->ssl) {
        snprintf(why, cap, "out of memory");
        dc_close(c);
        return -1;
    }
    SSL_set_app_data(c->ssl, d);
    SSL_set_fd(c->ssl, c->fd);
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (host_is_ip(d->host)) {
        X509_VERIFY_PARAM_set1_ip_asc(vp, d->host);
    } else {
        SSL_set_tlsext_host_name(c->ssl, d->host);
        X509_VERIFY_PARAM_set1_host(vp, d->host, 0);
    }
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(c->ssl);
        if (r == 1)
            return 0;
        int e = SSL_get_error(c->ssl, r);
        int w = -1;
        if (e == SSL_ERROR_WANT_READ)
            w = wait_fd(c->fd, POLLIN, deadline);
        else if (e == SSL_ERROR_WANT_WRITE)
            w = wait_fd(c->fd, POLLOUT, deadline);
        if (w == 1)
            continue;
        if (w == 0) {
            snprintf(why, cap, "no TLS handshake within %llds", (long long)(d->timeout_ms / 1000));
        } else {
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
        dc_close(c);
        return -1;
    }
}

/* Write all of p; 0 or -1. */
static int dc_write(dconn_t *c, const void *p, size_t n, int64_t deadline)
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
            int e = SSL_get_error(c->ssl, r);
            int w = e == SSL_ERROR_WANT_READ    ? wait_fd(c->fd, POLLIN, deadline)
                    : e == SSL_ERROR_WANT_WRITE ? wait_fd(c->fd, POLLOUT, deadline)
                                                : -1;
            if (w != 1)
                return -1;
        } else {
            ssize_t r = send(c->fd, s, n, MSG_NOSIGNAL);
            if (r > 0) {
                s += r;
                n -= (size_t)r;
            } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                if (wait_fd(c->fd, POLLOUT, deadline) != 1)
                    return -1;
            } else if (r < 0 && errno == EINTR) {
                continue;
            } else {
                return -1;
            }
        }
    }
    return 0;
}

/* >0 bytes read, 0 end of stream (or reset), -2 timeout, -1 error */
static ssize_t dc_read(dconn_t *c, void *p, size_t n, int64_t deadline)
{
    for (;;) {
        if (c->ssl) {
            ERR_clear_error();
            int r = SSL_read(c->ssl, p, (int)n);
            if (r > 0)
                return r;
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0))
                return 0;
            int w = e == SSL_ERROR_WANT_READ    ? wait_fd(c->fd, POLLIN, deadline)
                    : e == SSL_ERROR_WANT_WRITE ? wait_fd(c->fd, POLLOUT, deadline)
                                                : -1;
            if (w == 0)
                return -2;
            if (w < 0)
                return 0; /* a TLS error mid-stream: the peer went away */
        } else {
            ssize_t r = recv(c->fd, p, n, 0);
            if (r >= 0)
                return r;
            if (errno == EINTR)
                continue;
            if (errno == ECONNRESET || errno == EPIPE)
                return 0;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -1;
            int w = wait_fd(c->fd, POLLIN, deadline);
            if (w == 0)
                return -2;
            if (w < 0)
                return -1;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* HTTP/1.1                                                                   */

typedef struct {
    int status;
    char head[16384]; /* status line and headers, NUL-terminated */
    buf_t body;
    buf_t extra; /* bytes after the head when the body is not read (101, streams) */
} resp_t;

/* Case-insensitive header lookup in a head; copies the trimmed value. */
static bool header_get(const char *head, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l; l = strstr(l, "\r\n")) {
        l += 2;
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t vl = strcspn(v, "\r\n");
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (cap) {
                size_t k = vl < cap - 1 ? vl : cap - 1;
                memcpy(out, v, k);
                out[k] = 0;
            }
            return true;
        }
    }
    return false;
}

/* Read the head into r->head and the bytes after it into r->extra; after a
 * timeout (-2) a later call goes on where this one stopped.
 * 0 ok, -1 closed before a full head, -2 timeout, -3 not HTTP / too large. */
static int read_head(dconn_t *c, resp_t *r, int64_t deadline)
{
    size_t len = strlen(r->head); /* resumable after a timeout: r starts zeroed */
    for (;;) {
        if (len + 1 >= sizeof(r->head))
            return -3;
        ssize_t n = dc_read(c, r->head + len, sizeof(r->head) - 1 - len, deadline);
        if (n == -2)
            return -2;
        if (n <= 0)
            return -1;
        len += (size_t)n;
        r->head[len] = 0;
        if (len >= 5 && strncmp(r->head, "HTTP/", 5) != 0)
            return -3;
        char *end = strstr(r->head, "\r\n\r\n");
        if (end) {
            size_t hl = (size_t)(end - r->head) + 4;
            buf_add(&r->extra, r->head + hl, len - hl);
            r->head[hl] = 0;
            int st = 0;
            if (sscanf(r->head, "HTTP/%*d.%*d %d", &st) != 1)
                return -3;
            r->status = st;
            return 0;
        }
    }
}

/* Chunked transfer decoding, fed incrementally. */
typedef struct {
    int state; /* 0 size line, 1 data, 2 CRLF after data, 3 trailers/done */
    size_t left;
    char line[40];
    size_t ll;
} chunked_t;

/* Feed n bytes; decoded bytes are appended to out. 1 last chunk seen, 0 more, -1 bad. */
static int chunked_feed(chunked_t *ch, const char *p, size_t n, buf_t *out)
{
    for (size_t i = 0; i < n;) {
        if (ch->state == 0) {
            char ch1 = p[i++];
            if (ch1 == '\n') {
                ch->line[ch->ll] = 0;
                ch->left = strtoul(ch->line, NULL, 16);
                ch->ll = 0;
                if (ch->left == 0) {
                    ch->state = 3;
                    return 1;
                }
                ch->state = 1;
            } else if (ch->ll + 1 < sizeof(ch->line)) {
                ch->line[ch->ll++] = ch1;
            } else {
                return -1;
            }
        } else if (ch->state == 1) {
            size_t k = n - i < ch->left ? n - i : ch->left;
            buf_add(out, p + i, k);
            i += k;
            ch->left -= k;
            if (ch->left == 0)
                ch->state = 2;
        } else if (ch->state == 2) {
            if (p[i++] == '\n')
                ch->state = 0;
        } else {
            return 1;
        }
    }
    return ch->state == 3;
}

/* Read the body the head announces (Content-Length, chunked or up to EOF). */
static int read_body(dconn_t *c, resp_t *r, int64_t deadline)
{
    char v[64];
    bool chunked =
        header_get(r->head, "Transfer-Encoding", v, sizeof(v)) && strcasestr(v, "chunked");
    long long want = -1;
    if (!chunked && header_get(r->head, "Content-Length", v, sizeof(v)))
        want = strtoll(v, NULL, 10);
    if (r->status == 204 || r->status == 304 || (r->status >= 100 && r->status < 200))
        want = 0;
    chunked_t ch = {0};
    buf_t raw = r->extra;
    r->extra = (buf_t){0};
    char tmp[8192];
    int rc = 0;
    const char *p = raw.p;
    size_t n = raw.len;
    for (;;) {
        if (n) {
            if (chunked) {
                int k = chunked_feed(&ch, p, n, &r->body);
                if (k != 0) {
                    rc = k < 0 ? -3 : 0;
                    break;
                }
            } else {
                buf_add(&r->body, p, n);
            }
        }
        if (!chunked && want >= 0 && (long long)r->body.len >= want)
            break;
        if (r->body.len > (1u << 20))
            break;
        ssize_t k = dc_read(c, tmp, sizeof(tmp), deadline);
        if (k == -2) {
            rc = -2;
            break;
        }
        if (k <= 0) {
            rc = (!chunked && want < 0) ? 0 : -1;
            break;
        }
        p = tmp;
        n = (size_t)k;
    }
    buf_free(&raw);
    if (!r->body.p)
        buf_add(&r->body, "", 0);
    return rc;
}

static void resp_free(resp_t *r)
{
    buf_free(&r->body);
    buf_free(&r->extra);
}

static const char *transport_text(int rc)
{
    switch (rc) {
    case -2:
        return "no response within the timeout";
    case -3:
        return "the answer is not HTTP";
    default:
        return "the server closed the connection without an HTTP response";
    }
}

/* One request on its own connection (Connection: close). Returns 0 when a
 * response was read, else -1 with why filled. */
static int http_do(doctor_t *d, const char *method, const char *path, const char *headers,
                   const char *body, resp_t *r, char *why, size_t cap)
{
    memset(r, 0, sizeof(*r));
    dconn_t c;
    if (dc_open(d, &c, why, cap) != 0)
        return -1;
    char req[8192 + 2048];
    int n =
        snprintf(req, sizeof(req),
                 "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: rtgw-doctor/%s\r\n"
                 "Accept: application/json\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
                 method, path, d->hosthdr, RT_VERSION, headers ? headers : "",
                 body ? strlen(body) : (size_t)0);
    int64_t deadline = mono_ms() + d->timeout_ms;
    int rc = -1;
    if (n < 0 || (size_t)n >= sizeof(req)) {
        snprintf(why, cap, "request too large");
    } else if (dc_write(&c, req, (size_t)n, deadline) != 0 ||
               (body && dc_write(&c, body, strlen(body), deadline) != 0)) {
        snprintf(why, cap, "the connection was closed while sending the request");
    } else {
        int h = read_head(&c, r, deadline);
        if (h != 0)
            snprintf(why, cap, "%s", transport_text(h));
        else if (read_body(&c, r, deadline) == -2)
            snprintf(why, cap, "HTTP %d, but the body did not arrive within the timeout",
                     r->status);
        else
            rc = 0;
    }
    dc_close(&c);
    return rc;
}

/* "name: message" of an rtgw error body (malloc'd), or NULL. */
static char *json_error_text(const buf_t *b, bool with_message)
{
    if (!b->p)
        return NULL;
    json_t *j = json_loadb(b->p, b->len, 0, NULL);
    const char *e = j ? json_string_value(json_object_get(j, "error")) : NULL;
    const char *m = j && with_message ? json_string_value(json_object_get(j, "message")) : NULL;
    char *s = NULL;
    if (e) {
        size_t l = strlen(e) + (m ? strlen(m) + 3 : 0) + 1;
        s = malloc(l);
        if (s)
            snprintf(s, l, "%s%s%s", e, m ? ": " : "", m ? m : "");
    }
    json_decref(j);
    return s;
}

static bool looks_html(const resp_t *r)
{
    char ct[128] = "";
    header_get(r->head, "Content-Type", ct, sizeof(ct));
    const char *b = r->body.p ? r->body.p : "";
    while (isspace((unsigned char)*b))
        b++;
    return strcasestr(ct, "html") || *b == '<';
}

/* "an HTML page titled '…'" / "JSON …" / "text/plain …", for "something else answers". */
static void describe_body(const resp_t *r, char *out, size_t cap)
{
    char ct[128] = "";
    header_get(r->head, "Content-Type", ct, sizeof(ct));
    const char *b = r->body.p ? r->body.p : "";
    if (looks_html(r)) {
        const char *t = strcasestr(b, "<title>");
        const char *te = t ? strcasestr(t, "</title>") : NULL;
        if (t && te && te - t - 7 < 120)
            snprintf(out, cap, "an HTML page titled \"%.*s\"", (int)(te - t - 7), t + 7);
        else
            snprintf(out, cap, "an HTML page");
    } else {
        char snip[100];
        size_t k = 0;
        for (const char *p = b; *p && k + 1 < sizeof(snip) && k < 80; p++)
            snip[k++] = (*p == '\n' || *p == '\r') ? ' ' : *p;
        snip[k] = 0;
        snprintf(out, cap, "%s%s%s'%s'", ct[0] ? ct : "a body", ct[0] ? " " : "", ct[0] ? "" : " ",
                 snip);
    }
}

static void via_server(const resp_t *r, char *out, size_t cap)
{
    char s[128];
    if (header_get(r->head, "Server", s, sizeof(s)) && s[0])
        snprintf(out, cap, ", via %s", s);
    else
        out[0] = 0;
}

/* ------------------------------------------------------------------------ */
/* fixes shared by several checks                                             */

static const char *FIX_UPGRADE =
    "the proxy must pass the WebSocket upgrade to rtgw; nginx, in the location for /v1/realtime/ "
    "(before any catch-all location /):\n"
    "  location /v1/realtime/ {\n"
    "      proxy_pass http://127.0.0.1:8288;\n"
    "      proxy_http_version 1.1;\n"
    "      proxy_set_header Upgrade $http_upgrade;\n"
    "      proxy_set_header Connection \"upgrade\";\n"
    "      proxy_set_header Host $host;\n"
    "      proxy_read_timeout 3600s;\n"
    "  }\n"
    "Kong: the route needs protocols: [http, https, ws, wss] (without ws/wss Kong answers the "
    "upgrade itself: \"bad response from the server\")\n"
    "a complete, tested nginx configuration: examples/nginx/rtgw.conf\n"
    "then reload the proxy (nginx -t && systemctl reload nginx) and run doctor again";

static const char *FIX_BACKEND_DOWN =
    "start rtgw (systemctl start rtgw, or rtgw serve) on the upstream host\n"
    "check that the proxy's upstream (proxy_pass) matches RTGW_LISTEN (default "
    "127.0.0.1:8288): curl http://127.0.0.1:8288/health on that host must answer";

static const char *FIX_SSE =
    "the proxy must not buffer the SSE stream; nginx:\n"
    "  location /v1/realtime/sse {\n"
    "      proxy_pass http://127.0.0.1:8288;\n"
    "      proxy_http_version 1.1;\n"
    "      proxy_buffering off;\n"
    "      proxy_cache off;\n"
    "      proxy_read_timeout 3600s;\n"
    "  }\n"
    "rtgw sends X-Accel-Buffering: no, which nginx obeys unless proxy_ignore_headers lists it; "
    "Caddy: flush_interval -1; a CDN must pass text/event-stream through unbuffered";

static const char *FIX_IDLE =
    "raise the proxy's idle timeout above the heartbeat, in the location for /v1/realtime/:\n"
    "  proxy_read_timeout 3600s;\n"
    "  proxy_send_timeout 3600s;\n"
    "HAProxy: timeout tunnel 1h; a cloud load balancer: its idle timeout above "
    "RTGW_PING_INTERVAL_MS\n"
    "and keep rtgw's heartbeat below the shortest timeout on the path: RTGW_PING_INTERVAL_MS=15000 "
    "(the default)";

/* ------------------------------------------------------------------------ */
/* checks                                                                     */

static bool is_local_name(const char *h)
{
    return strcasecmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0 || strcmp(h, "::1") == 0;
}

static int check_url(doctor_t *d)
{
    const char *u = d->o->url;
    static const struct {
        const char *s;
        bool tls;
        const char *port;
    } schemes[] = {{"https://", true, "443"},
                   {"wss://", true, "443"},
                   {"http://", false, "80"},
                   {"ws://", false, "80"}};
    const char *rest = NULL;
    char scheme[8] = "";
    for (size_t i = 0; i < 4; i++)
        if (strncasecmp(u, schemes[i].s, strlen(schemes[i].s)) == 0) {
            rest = u + strlen(schemes[i].s);
            d->tls = schemes[i].tls;
            snprintf(d->port, sizeof(d->port), "%s", schemes[i].port);
            snprintf(scheme, sizeof(scheme), "%.*s", (int)strlen(schemes[i].s) - 3, schemes[i].s);
        }
    char found[1200], fix[1200];
    if (!rest) {
        const char *c = strstr(u, "://");
        snprintf(found, sizeof(found), "'%.*s' is not a gateway URL scheme", c ? (int)(c - u) : 0,
                 c ? u : "");
        if (!c)
            snprintf(found, sizeof(found), "'%s' has no scheme", u);
        report(d, ST_FAIL, "url", found,
               "give the origin the browser uses: https://rt.example.com or wss://rt.example.com "
               "(http:// or ws:// only for a local gateway)");
        return -1;
    }
    size_t alen = strcspn(rest, "/?#");
    const char *path = rest + alen;
    char auth[300];
    if (alen == 0 || alen >= sizeof(auth)) {
        report(d, ST_FAIL, "url", "the URL has no host", "e.g. https://rt.example.com");
        return -1;
    }
    memcpy(auth, rest, alen);
    auth[alen] = 0;
    if (strchr(auth, '@')) {
        report(d, ST_FAIL, "url", "the URL holds user:password@; rtgw does not use it",
               "drop the credentials: authentication is the token (or the signing key as Bearer)");
        return -1;
    }
    const char *portp = NULL;
    if (auth[0] == '[') {
        char *rb = strchr(auth, ']');
        if (!rb) {
            report(d, ST_FAIL, "url", "unterminated [IPv6] host", "e.g. http://[::1]:8288");
            return -1;
        }
        snprintf(d->host, sizeof(d->host), "%.*s", (int)(rb - auth - 1), auth + 1);
        if (rb[1] == ':')
            portp = rb + 2;
    } else {
        char *colon = strchr(auth, ':');
        snprintf(d->host, sizeof(d->host), "%.*s", colon ? (int)(colon - auth) : (int)alen, auth);
        if (colon)
            portp = colon + 1;
    }
    if (portp) {
        char *end;
        long p = strtol(portp, &end, 10);
        if (*end || end == portp || p <= 0 || p > 65535) {
            snprintf(found, sizeof(found), "port '%s' is not a number in 1-65535", portp);
            report(d, ST_FAIL, "url", found, NULL);
            return -1;
        }
        snprintf(d->port, sizeof(d->port), "%ld", p);
    }
    bool default_port = strcmp(d->port, d->tls ? "443" : "80") == 0;
    bool v6 = strchr(d->host, ':') != NULL;
    snprintf(d->hosthdr, sizeof(d->hosthdr), "%s%s%s%s%s", v6 ? "[" : "", d->host, v6 ? "]" : "",
             default_port ? "" : ":", default_port ? "" : d->port);
    snprintf(d->shown, sizeof(d->shown), "%s://%s", scheme, d->hosthdr);

    const char *origin = d->o->origin;
    if (origin && strncasecmp(origin, "https://", 8) == 0 && !d->tls) {
        snprintf(found, sizeof(found),
                 "mixed content: a page on %s cannot open %s://%s (the browser blocks it before "
                 "any packet is sent)",
                 origin, strcasecmp(scheme, "http") == 0 ? "ws" : scheme, d->hosthdr);
        snprintf(fix, sizeof(fix),
                 "serve the gateway over TLS and give the browser wss://%s (or https://%s): "
                 "RTGW_TLS_CERT/RTGW_TLS_KEY in rtgw, or TLS in the proxy in front\n"
                 "set the URL the frontend uses with https:// (e.g. NEXT_PUBLIC_APP_URL, "
                 "INNGEST_BASE_URL, RTGW_PUBLIC_URL), no trailing slash",
                 d->host, d->host);
        report(d, ST_FAIL, "url", found, fix);
        return -1;
    }

    /* warnings: path prefix, trailing slash, query, plain ws to a remote host */
    char warn[900] = "";
    char wfix[900] = "";
    size_t plen = strcspn(path, "?#");
    if (plen > 1) {
        snprintf(warn, sizeof(warn),
                 "the path %.*s is dropped: the official clients resolve /v1/realtime/... at the "
                 "root of the origin, so doctor checks %s/v1/realtime/... as they will",
                 (int)plen, path, d->shown);
        snprintf(wfix, sizeof(wfix),
                 "give the clients the bare origin %s (INNGEST_BASE_URL, RTGW_PUBLIC_URL), and map "
                 "/v1/realtime/ at the root in the proxy",
                 d->shown);
    } else if (plen == 1) {
        snprintf(warn, sizeof(warn),
                 "trailing slash: some clients then request //v1/realtime/...; use %s", d->shown);
        snprintf(wfix, sizeof(wfix), "drop the trailing slash wherever this URL is configured: %s",
                 d->shown);
    }
    if (path[plen] == '?' || path[plen] == '#') {
        size_t wl = strlen(warn);
        snprintf(warn + wl, sizeof(warn) - wl, "%sthe query string or fragment is ignored",
                 wl ? "; " : "");
    }
    if (!d->tls && !is_local_name(d->host) && !origin) {
        size_t wl = strlen(warn), fl = strlen(wfix);
        snprintf(warn + wl, sizeof(warn) - wl,
                 "%splain %s:// to a non-local host: an https page cannot use it (mixed content) "
                 "and tokens travel in clear",
                 wl ? "; " : "", scheme);
        snprintf(wfix + fl, sizeof(wfix) - fl, "%suse wss:// (TLS in rtgw or in the proxy)",
                 fl ? "\n" : "");
    }
    if (warn[0]) {
        report(d, ST_WARN, "url", warn, wfix[0] ? wfix : NULL);
    } else {
        snprintf(found, sizeof(found), "%s — %s", d->shown,
                 d->tls ? "TLS (wss:// for the WebSocket, https:// for HTTP)"
                        : "plain (ws:// and http://, fine for a local gateway)");
        report(d, ST_OK, "url", found, NULL);
    }
    return 0;
}

static struct addrinfo *g_ai; /* freed by rt_doctor_run */

static int check_dns(doctor_t *d)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = getaddrinfo(d->host, d->port, &hints, &g_ai);
    char found[800];
    if (rc != 0) {
        snprintf(found, sizeof(found), "cannot resolve %s: %s", d->host, gai_strerror(rc));
        report(d, ST_FAIL, "dns", found,
               "check the host name for typos, and that its DNS record (A/AAAA) exists and has "
               "propagated: dig +short <host>\n"
               "inside containers, the name must resolve from where the browser (or this doctor) "
               "runs, not only inside the cluster");
        return -1;
    }
    size_t l = (size_t)snprintf(found, sizeof(found), "%s →", d->host);
    int k = 0;
    for (struct addrinfo *a = g_ai; a && k < 4; a = a->ai_next, k++) {
        char ip[INET6_ADDRSTRLEN] = "?";
        void *src = a->ai_family == AF_INET
                        ? (void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
                        : (void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
        inet_ntop(a->ai_family, src, ip, sizeof(ip));
        if (l < sizeof(found))
            l += (size_t)snprintf(found + l, sizeof(found) - l, "%s %s", k ? "," : "", ip);
    }
    report(d, ST_OK, "dns", found, NULL);
    return 0;
}

static int check_tcp(doctor_t *d)
{
    int64_t t0 = mono_ms();
    int last = 0;
    bool refused = false, timedout = false;
    for (struct addrinfo *a = g_ai; a; a = a->ai_next) {
        int err = 0;
        int fd = tcp_connect(a->ai_addr, a->ai_addrlen, mono_ms() + d->timeout_ms, &err);
        if (fd >= 0) {
            close(fd);
            memcpy(&d->addr, a->ai_addr, a->ai_addrlen);
            d->addrlen = a->ai_addrlen;
            char found[400];
            snprintf(found, sizeof(found), "connected to %s:%s in %lld ms", d->host, d->port,
                     (long long)(mono_ms() - t0));
            report(d, ST_OK, "tcp", found, NULL);
            return 0;
        }
        last = err;
        refused |= err == ECONNREFUSED;
        timedout |= err == ETIMEDOUT;
    }
    char found[600], fix[600];
    if (refused) {
        snprintf(found, sizeof(found),
                 "connection refused: nothing listens on %s:%s: is rtgw (or the proxy) running? is "
                 "the port right?",
                 d->host, d->port);
        snprintf(
            fix, sizeof(fix),
            "start it: rtgw serve (or systemctl start rtgw / the proxy), then run doctor again\n"
            "compare the port with RTGW_LISTEN (default 127.0.0.1:8288) or the proxy's listen; "
            "on that host: ss -ltnp | grep :%s",
            d->port);
    } else if (timedout) {
        snprintf(found, sizeof(found),
                 "no answer from %s:%s within %llds: a firewall or security group drops the "
                 "packets (or the host is down)",
                 d->host, d->port, (long long)(d->timeout_ms / 1000));
        snprintf(fix, sizeof(fix),
                 "allow inbound TCP %s in the firewall (ufw/iptables) and the cloud security "
                 "group / network ACL; check the load balancer's listener and target port",
                 d->port);
    } else {
        snprintf(found, sizeof(found), "cannot connect to %s:%s: %s", d->host, d->port,
                 strerror(last));
        snprintf(fix, sizeof(fix), "check the network route to %s (VPN, proxy, routing)", d->host);
    }
    report(d, ST_FAIL, "tcp", found, fix);
    return -1;
}

static void cert_names(X509 *cert, char *out, size_t cap)
{
    out[0] = 0;
    size_t l = 0;
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && i < 6; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type == GEN_DNS) {
            const unsigned char *s = ASN1_STRING_get0_data(g->d.dNSName);
            l += (size_t)snprintf(out + l, cap > l ? cap - l : 0, "%s%s", l ? ", " : "",
                                  (const char *)s);
        } else if (g->type == GEN_IPADD &&
                   (g->d.iPAddress->length == 4 || g->d.iPAddress->length == 16)) {
            char ip[INET6_ADDRSTRLEN];
            inet_ntop(g->d.iPAddress->length == 4 ? AF_INET : AF_INET6, g->d.iPAddress->data, ip,
                      sizeof(ip));
            l += (size_t)snprintf(out + l, cap > l ? cap - l : 0, "%s%s", l ? ", " : "", ip);
        }
        if (l >= cap)
            break;
    }
    GENERAL_NAMES_free(sans);
    if (!out[0]) {
        char cn[256] = "";
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
        snprintf(out, cap, "CN=%s", cn[0] ? cn : "?");
    }
}

static bool has_verr(const doctor_t *d, long e)
{
    for (int i = 0; i < d->nverr; i++)
        if (d->verr[i] == e)
            return true;
    return false;
}

static int check_tls(doctor_t *d)
{
    if (!d->tls) {
        report(d, ST_SKIP, "tls", "plain connection (no TLS in the URL)", NULL);
        return 0;
    }
    char found[1200], fix[1200];
    d->ctx = SSL_CTX_new(TLS_client_method());
    if (!d->ctx) {
        report(d, ST_FAIL, "tls", "cannot create a TLS context", NULL);
        return -1;
    }
    SSL_CTX_set_min_proto_version(d->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(d->ctx, SSL_VERIFY_PEER, verify_cb);
    if (d->o->cacert) {
        if (SSL_CTX_load_verify_locations(d->ctx, d->o->cacert, NULL) != 1) {
            snprintf(found, sizeof(found), "cannot load --cacert %s (not a PEM certificate file?)",
                     d->o->cacert);
            report(d, ST_FAIL, "tls", found, NULL);
            return -1;
        }
    } else {
        SSL_CTX_set_default_verify_paths(d->ctx);
    }
    dconn_t c;
    d->nverr = 0;
    if (dc_open(d, &c, found, sizeof(found)) != 0) {
        report(d, ST_FAIL, "tls", found,
               strstr(found, "plain")
                   ? "use http:// or ws:// for a plain port, or terminate TLS there "
                     "(RTGW_TLS_CERT/RTGW_TLS_KEY, or ssl_certificate in the proxy)"
                   : "check that this port terminates TLS (listen 443 ssl in nginx, or "
                     "RTGW_TLS_CERT in rtgw) with TLS 1.2 or later");
        return -1;
    }
    X509 *cert = SSL_get1_peer_certificate(c.ssl);
    const char *ver = SSL_get_version(c.ssl);
    char names[400] = "?", issuer[256] = "?";
    int days = 0, secs = 0;
    if (cert) {
        cert_names(cert, names, sizeof(names));
        X509_NAME_get_text_by_NID(X509_get_issuer_name(cert), NID_commonName, issuer,
                                  sizeof(issuer));
        ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(cert));
    }
    X509_free(cert);
    dc_close(&c);
    bool self = has_verr(d, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT) ||
                has_verr(d, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN);
    const char *trust_fix =
        "use a certificate from a public CA (e.g. Let's Encrypt: certbot certonly -d <host>) and "
        "serve the full chain (fullchain.pem) as RTGW_TLS_CERT or ssl_certificate\n"
        "for a private CA: install it on every client, and pass --cacert ca.pem to doctor";
    if (has_verr(d, X509_V_ERR_CERT_HAS_EXPIRED)) {
        snprintf(found, sizeof(found),
                 "the certificate for %s expired %d day%s ago: browsers refuse the connection",
                 names, -days, days == -1 ? "" : "s");
        snprintf(fix, sizeof(fix),
                 "renew it (certbot renew, or your CA), install the new chain, and restart or "
                 "reload what terminates TLS (rtgw reads RTGW_TLS_CERT only at startup)\n"
                 "automate renewal and watch expiry: rtgw doctor warns 14 days ahead");
        report(d, ST_FAIL, "tls", found, fix);
        return -1;
    }
    if (has_verr(d, X509_V_ERR_CERT_NOT_YET_VALID)) {
        snprintf(found, sizeof(found), "the certificate for %s is not valid yet", names);
        report(d, ST_FAIL, "tls", found,
               "check the clock on this machine and on the server (NTP), or wait for the "
               "certificate's start date");
        return -1;
    }
    if (has_verr(d, X509_V_ERR_HOSTNAME_MISMATCH) || has_verr(d, X509_V_ERR_IP_ADDRESS_MISMATCH)) {
        snprintf(found, sizeof(found),
                 "wrong host: the certificate names %s, not %s; browsers refuse it", names,
                 d->host);
        snprintf(fix, sizeof(fix),
                 "issue a certificate that covers %s (subjectAltName DNS:%s), e.g. certbot "
                 "certonly -d %s, and install it where TLS terminates\n"
                 "or give the clients the host name the certificate names",
                 d->host, d->host, d->host);
        report(d, ST_FAIL, "tls", found, fix);
        return -1;
    }
    if (self) {
        snprintf(found, sizeof(found),
                 "self-signed certificate (%s): browsers refuse it, and so do the official clients",
                 names);
        report(d, ST_FAIL, "tls", found, trust_fix);
        return -1;
    }
    if (d->nverr) {
        long e = d->verr[0];
        if (e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
            e == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE ||
            e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT)
            snprintf(found, sizeof(found),
                     "untrusted chain for %s (issuer %s): %s; the server may send the leaf without "
                     "its intermediates, or a private CA signed it",
                     names, issuer, X509_verify_cert_error_string(e));
        else
            snprintf(found, sizeof(found), "certificate for %s refused: %s", names,
                     X509_verify_cert_error_string(e));
        report(d, ST_FAIL, "tls", found, trust_fix);
        return -1;
    }
    if (days < 14) {
        snprintf(found, sizeof(found), "%s, certificate for %s (issuer %s) expires in %d day%s",
                 ver, names, issuer, days, days == 1 ? "" : "s");
        report(
            d, ST_WARN, "tls", found,
            "renew it now (certbot renew, or your CA) and restart or reload what terminates TLS");
        return 0;
    }
    snprintf(found, sizeof(found), "%s, certificate for %s (issuer %s), valid for %d more days",
             ver, names, issuer, days);
    report(d, ST_OK, "tls", found, NULL);
    return 0;
}

/* True if a TLS handshake (unverified) succeeds on the port: tells "http://
 * to a TLS port" apart from a server that just closes. */
static bool speaks_tls(doctor_t *d)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return false;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX *saved = d->ctx;
    bool was_tls = d->tls;
    d->ctx = ctx;
    d->tls = true;
    dconn_t c;
    char why[256];
    bool ok = dc_open(d, &c, why, sizeof(why)) == 0;
    if (ok)
        dc_close(&c);
    d->ctx = saved;
    d->tls = was_tls;
    SSL_CTX_free(ctx);
    return ok;
}

static int check_http(doctor_t *d)
{
    resp_t r;
    char why[512], found[1200], via[160];
    int64_t t0 = mono_ms();
    if (http_do(d, "GET", "/health", NULL, NULL, &r, why, sizeof(why)) != 0) {
        if (!d->tls && speaks_tls(d)) {
            snprintf(found, sizeof(found),
                     "GET /health: %s; this port speaks TLS (a plain http:// URL for a TLS port)",
                     why);
            char fix[700];
            snprintf(fix, sizeof(fix), "use https://%s or wss://%s", d->hosthdr, d->hosthdr);
            report(d, ST_FAIL, "http", found, fix);
            resp_free(&r);
            return -1;
        }
        snprintf(found, sizeof(found), "GET /health: %s", why);
        report(d, ST_FAIL, "http", found,
               d->tls ? "check that the TLS terminator forwards HTTP to rtgw"
                      : "if this port speaks TLS, use https:// or wss://; otherwise check that "
                        "rtgw (or the proxy) answers HTTP here");
        resp_free(&r);
        return -1;
    }
    int64_t ms = mono_ms() - t0;
    if (header_get(r.head, "Date", d->date, sizeof(d->date)))
        d->date_local_s = (int64_t)time(NULL);
    via_server(&r, via, sizeof(via));
    json_t *j = r.body.p && !looks_html(&r) ? json_loadb(r.body.p, r.body.len, 0, NULL) : NULL;
    const char *status = j ? json_string_value(json_object_get(j, "status")) : NULL;
    bool rtgw = status && (json_object_get(j, "version") || json_object_get(j, "uptime_s"));
    int rc = 0;
    if (r.status == 200 && rtgw) {
        const char *ver = json_string_value(json_object_get(j, "version"));
        long long conns = json_integer_value(json_object_get(j, "connections"));
        bool dev = json_is_true(json_object_get(j, "dev"));
        snprintf(found, sizeof(found),
                 "rtgw %s answers GET /health in %lld ms (status %s, %lld "
                 "connection%s%s)",
                 ver ? ver : "?", (long long)ms, status, conns, conns == 1 ? "" : "s", via);
        if (dev) {
            size_t l = strlen(found);
            snprintf(found + l, sizeof(found) - l, "; it runs with --dev");
            report(d, ST_WARN, "http", found,
                   "--dev uses a throwaway key, allows every origin and serves a demo page: run "
                   "rtgw serve with RTGW_SIGNING_KEY in production");
        } else {
            report(d, ST_OK, "http", found, NULL);
        }
    } else if (r.status == 502 || r.status == 504) {
        snprintf(found, sizeof(found),
                 "HTTP %d on GET /health%s: the proxy answers but the backend is down (or the "
                 "proxy's upstream address is wrong)",
                 r.status, via);
        report(d, ST_FAIL, "http", found, FIX_BACKEND_DOWN);
        rc = -1;
    } else if (r.status == 503 && status && strcmp(status, "draining") == 0) {
        snprintf(found, sizeof(found), "rtgw is draining (shutting down)%s", via);
        report(d, ST_FAIL, "http", found,
               "wait for the restart to finish; if it stays, the process is stuck in shutdown: "
               "check RTGW_SHUTDOWN_TIMEOUT_MS and the service manager's stop timeout");
        rc = -1;
    } else if (r.status == 404) {
        char desc[300];
        describe_body(&r, desc, sizeof(desc));
        snprintf(found, sizeof(found),
                 "GET /health answers 404 (%s)%s: the proxy may route only /v1/realtime/ to "
                 "rtgw; continuing",
                 desc, via);
        report(d, ST_WARN, "http", found,
               "route /health to rtgw too, so health checks and doctor can see it:\n"
               "  location = /health { proxy_pass http://127.0.0.1:8288; }");
    } else {
        char desc[300];
        describe_body(&r, desc, sizeof(desc));
        snprintf(found, sizeof(found),
                 "something else answers at this URL: GET /health gave HTTP %d with %s%s, not "
                 "rtgw's health JSON",
                 r.status, desc, via);
        report(d, ST_FAIL, "http", found,
               "point the URL at rtgw (RTGW_LISTEN, default :8288), or route /v1/realtime/ and "
               "/health to rtgw in the proxy, before any catch-all location / that proxies to "
               "the app");
        rc = -1;
    }
    json_decref(j);
    resp_free(&r);
    return rc;
}

static int64_t parse_http_date(const char *s)
{
    static const char *mons = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char mon[4] = "";
    int day, year, h, m, sec;
    if (sscanf(s, "%*3s, %d %3s %d %d:%d:%d", &day, mon, &year, &h, &m, &sec) != 6)
        return -1;
    const char *p = strstr(mons, mon);
    if (!p || strlen(mon) != 3)
        return -1;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = (int)(p - mons) / 3,
                    .tm_mday = day,
                    .tm_hour = h,
                    .tm_min = m,
                    .tm_sec = sec};
    return (int64_t)timegm(&tm);
}

static bool b64url_json_claims(const char *jwt, int64_t *iat, int64_t *exp, char *sub,
                               size_t subcap, int *ntopics)
{
    const char *a = strchr(jwt, '.');
    const char *b = a ? strchr(a + 1, '.') : NULL;
    if (!a || !b || b - a - 1 <= 0 || b - a > 16384)
        return false;
    unsigned char raw[12288];
    size_t rl = 0;
    if (sodium_base642bin(raw, sizeof(raw), a + 1, (size_t)(b - a - 1), NULL, &rl, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return false;
    json_t *j = json_loadb((const char *)raw, rl, 0, NULL);
    if (!j)
        return false;
    *iat = json_integer_value(json_object_get(j, "iat"));
    *exp = json_integer_value(json_object_get(j, "exp"));
    const char *s = json_string_value(json_object_get(j, "sub"));
    snprintf(sub, subcap, "%s", s ? s : "?");
    *ntopics = (int)json_array_size(json_object_get(j, "topics"));
    json_decref(j);
    return true;
}

/* POST /v1/realtime/token for rtgw-doctor/probe; fills d->jwt or d->mint_*. */
static void mint(doctor_t *d)
{
    if (d->mint_tried)
        return;
    d->mint_tried = true;
    long long ttl = 120 + d->o->idle_s + 4 * (d->timeout_ms / 1000);
    if (ttl > 3600)
        ttl = 3600;
    char hdr[1024], body[256], why[512];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\nContent-Type: application/json\r\n",
             d->o->signing_key);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (attempt == 0)
            snprintf(body, sizeof(body),
                     "{\"topics\":[{\"channel\":\"" PROBE_CHANNEL "\",\"name\":\"" PROBE_TOPIC
                     "\",\"kind\":\"run\"}],\"ttl\":%lld,\"sub\":\"rtgw-doctor\"}",
                     ttl);
        else
            snprintf(body, sizeof(body),
                     "[{\"channel\":\"" PROBE_CHANNEL "\",\"name\":\"" PROBE_TOPIC
                     "\",\"kind\":\"run\"}]");
        resp_t r;
        if (http_do(d, "POST", "/v1/realtime/token", hdr, body, &r, why, sizeof(why)) != 0) {
            d->mint_status = -1;
            snprintf(d->mint_err, sizeof(d->mint_err), "%s", why);
            resp_free(&r);
            break;
        }
        d->mint_status = r.status;
        json_t *j = r.status == 201 ? json_loadb(r.body.p, r.body.len, 0, NULL) : NULL;
        const char *jwt = j ? json_string_value(json_object_get(j, "jwt")) : NULL;
        if (jwt) {
            d->jwt = strdup(jwt);
            d->minted = d->jwt != NULL;
            char sub[64];
            int nt;
            if (d->jwt &&
                !b64url_json_claims(d->jwt, &d->tok_iat, &d->tok_exp, sub, sizeof(sub), &nt))
                d->tok_iat = d->tok_exp = 0;
        } else {
            char *e = json_error_text(&r.body, true);
            if (e)
                snprintf(d->mint_err, sizeof(d->mint_err), "%s", e);
            else
                describe_body(&r, d->mint_err, sizeof(d->mint_err));
            free(e);
        }
        json_decref(j);
        resp_free(&r);
        if (d->minted || !(d->mint_status == 400 && strstr(d->mint_err, "lifetime")))
            break;
    }
    if (d->jwt)
        sodium_memzero(hdr, sizeof(hdr));
}

static int check_clock(doctor_t *d)
{
    int64_t now = (int64_t)time(NULL), remote = -1, local = now;
    const char *src = NULL, *who = "the gateway's clock";
    /* A minted token's iat is the gateway's own clock; a Date header may come
     * from a proxy in front of it, so it is only the fallback. */
    if (d->o->signing_key) {
        mint(d);
        if (d->minted && d->tok_iat > 0) {
            remote = d->tok_iat;
            local = (int64_t)time(NULL);
            src = "the iat of a token the gateway just minted";
        }
    }
    if (!src && d->date[0] && (remote = parse_http_date(d->date)) >= 0) {
        src = "the Date header of /health";
        who = "the server's clock";
        local = d->date_local_s;
    }
    if (!src) {
        report(d, ST_SKIP, "clock",
               "no Date header from the gateway, and no --signing-key to mint a token: clocks "
               "not compared",
               NULL);
        return 0;
    }
    int64_t skew = local - remote;
    int64_t a = skew < 0 ? -skew : skew;
    char found[600], fix[600];
    if (a <= 1)
        snprintf(found, sizeof(found), "%s matches this machine's (from %s)", who, src);
    else
        snprintf(found, sizeof(found), "%s is %s this machine's by %lld s (from %s)", who,
                 skew > 0 ? "behind" : "ahead of", (long long)a, src);
    snprintf(fix, sizeof(fix),
             "run NTP on both machines (timedatectl set-ntp true; chronyc tracking), and compare "
             "date -u on the backend that mints tokens and on the gateway\n"
             "beyond RTGW_CLOCK_LEEWAY (default 30 s) fresh tokens look %s to the gateway "
             "(close 4409 token_expired, or token_issued_in_future)",
             skew > 0 ? "issued in the future" : "expired");
    if (a > 300) {
        report(d, ST_FAIL, "clock", found, fix);
        return -1;
    }
    report(d, a > 30 ? ST_WARN : ST_OK, "clock", found, a > 30 ? fix : NULL);
    return 0;
}

static int check_token(doctor_t *d)
{
    char found[800], fix[800];
    if (d->o->token) {
        int64_t iat = 0, exp = 0;
        char sub[128];
        int nt = 0;
        if (!b64url_json_claims(d->o->token, &iat, &exp, sub, sizeof(sub), &nt)) {
            report(d, ST_FAIL, "token",
                   "--token is not a JWT (three base64url segments with JSON claims)",
                   "pass the jwt field of POST /v1/realtime/token's reply (not the whole JSON, not "
                   "the signing key)");
            return -1;
        }
        int64_t now = (int64_t)time(NULL);
        if (exp && exp < now) {
            snprintf(found, sizeof(found),
                     "the --token (sub %s, %d topic%s) expired %lld s ago by this machine's clock; "
                     "the upgrade will show what the gateway says",
                     sub, nt, nt == 1 ? "" : "s", (long long)(now - exp));
            report(
                d, ST_WARN, "token", found,
                "mint tokens right before connecting; the default lifetime is RTGW_TOKEN_TTL=60 s");
        } else {
            snprintf(found, sizeof(found), "using --token (sub %s, %d topic%s, expires in %lld s)",
                     sub, nt, nt == 1 ? "" : "s", (long long)(exp - now));
            report(d, ST_OK, "token", found, NULL);
        }
        d->jwt = strdup(d->o->token);
        return 0;
    }
    if (!d->o->signing_key) {
        report(d, ST_SKIP, "token",
               "no --signing-key or --token: skipping the authenticated checks (subscribe, "
               "delivery, sse, idle); the upgrade is checked without a token",
               NULL);
        return 0;
    }
    mint(d);
    if (d->minted) {
        snprintf(found, sizeof(found),
                 "minted a token for " PROBE_CHANNEL "/" PROBE_TOPIC " with --signing-key (POST "
                 "/v1/realtime/token: 201, expires in %lld s)",
                 d->tok_exp ? (long long)(d->tok_exp - time(NULL)) : 0LL);
        report(d, ST_OK, "token", found, NULL);
        return 0;
    }
    if (d->mint_status == 401) {
        snprintf(found, sizeof(found),
                 "POST /v1/realtime/token: 401 (%s): the signing key does not match the gateway's",
                 d->mint_err);
        report(d, ST_FAIL, "token", found,
               "use the gateway's RTGW_SIGNING_KEY on the backend (INNGEST_SIGNING_KEY for the "
               "official client) — the same key, plain or hashed\n"
               "during a rotation, keep the old key in RTGW_SIGNING_KEY_FALLBACK on the gateway\n"
               "check the backend's base URL points at this gateway (no path, no trailing slash)");
        return -1;
    }
    if (d->mint_status == 502 || d->mint_status == 504) {
        snprintf(found, sizeof(found), "POST /v1/realtime/token: %d: the backend is down",
                 d->mint_status);
        report(d, ST_FAIL, "token", found, FIX_BACKEND_DOWN);
        return -1;
    }
    if (d->mint_status == 404 || d->mint_status == 405) {
        snprintf(found, sizeof(found),
                 "POST /v1/realtime/token: %d (%s): the proxy does not route /v1/realtime/ to rtgw",
                 d->mint_status, d->mint_err);
        report(d, ST_FAIL, "token", found,
               "route every /v1/realtime/ path to rtgw (location /v1/realtime/ { proxy_pass "
               "http://127.0.0.1:8288; … }), before any catch-all location /");
        return -1;
    }
    if (d->mint_status < 0)
        snprintf(found, sizeof(found), "POST /v1/realtime/token: %s", d->mint_err);
    else
        snprintf(found, sizeof(found), "POST /v1/realtime/token: HTTP %d (%s)", d->mint_status,
                 d->mint_err);
    snprintf(fix, sizeof(fix), "see the gateway's log for the mint request");
    report(d, ST_FAIL, "token", found, fix);
    return -1;
}

/* ------------------------------------------------------------------------ */
/* WebSocket client                                                           */

static int ws_send(ws_t *w, int opcode, const void *p, size_t n)
{
    unsigned char *f = malloc(n + 14);
    if (!f)
        return -1;
    size_t h = 0;
    f[h++] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        f[h++] = (unsigned char)(0x80 | n);
    } else if (n < 65536) {
        f[h++] = 0x80 | 126;
        f[h++] = (unsigned char)(n >> 8);
        f[h++] = (unsigned char)n;
    } else {
        f[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            f[h++] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    unsigned char mask[4];
    RAND_bytes(mask, 4);
    memcpy(f + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        f[h + i] = ((const unsigned char *)p)[i] ^ mask[i & 3];
    int rc = dc_write(&w->c, f, h + n, mono_ms() + 5000);
    free(f);
    return rc;
}

/* The next frame: 1 with *payload (malloc'd, NUL-terminated), 0 timeout,
 * -1 the connection ended without a close frame. Pings are answered and
 * counted here. */
static int ws_next(ws_t *w, int64_t deadline, int *op, char **payload, size_t *plen)
{
    for (;;) {
        if (w->len >= 2) {
            size_t need = 2, len = w->buf[1] & 0x7f;
            if (len == 126)
                need = 4;
            else if (len == 127)
                need = 10;
            bool masked = w->buf[1] & 0x80;
            if (w->len >= need) {
                if (len == 126)
                    len = ((size_t)w->buf[2] << 8) | w->buf[3];
                else if (len == 127) {
                    len = 0;
                    for (int i = 2; i < 10; i++)
                        len = (len << 8) | w->buf[i];
                }
                if (len > (16u << 20))
                    return -1;
                size_t total = need + (masked ? 4 : 0) + len;
                if (w->len >= total) {
                    int opcode = w->buf[0] & 0x0f;
                    char *p = malloc(len + 1);
                    if (!p)
                        return -1;
                    const unsigned char *src = w->buf + need + (masked ? 4 : 0);
                    for (size_t i = 0; i < len; i++)
                        p[i] = (char)(masked ? src[i] ^ w->buf[need + (i & 3)] : src[i]);
                    p[len] = 0;
                    memmove(w->buf, w->buf + total, w->len - total);
                    w->len -= total;
                    if (opcode == 0x9) {
                        w->pings++;
                        ws_send(w, 0xA, p, len);
                        free(p);
                        continue;
                    }
                    if (opcode == 0xA) {
                        free(p);
                        continue;
                    }
                    *op = opcode;
                    *payload = p;
                    *plen = len;
                    return 1;
                }
            }
        }
        if (w->cap - w->len < 4096) {
            size_t cap = w->cap ? w->cap * 2 : 16384;
            unsigned char *nb = realloc(w->buf, cap);
            if (!nb)
                return -1;
            w->buf = nb;
            w->cap = cap;
        }
        ssize_t n = dc_read(&w->c, w->buf + w->len, w->cap - w->len, deadline);
        if (n == -2)
            return 0;
        if (n <= 0)
            return -1;
        w->len += (size_t)n;
    }
}

static void ws_close(ws_t *w)
{
    dc_close(&w->c);
    free(w->buf);
    memset(w, 0, sizeof(*w));
    w->c.fd = -1;
}

static void close_parse(const char *p, size_t n, int *code, char *reason, size_t cap)
{
    *code = n >= 2 ? ((unsigned char)p[0] << 8) | (unsigned char)p[1] : 1005;
    snprintf(reason, cap, "%.*s", n > 2 ? (int)(n - 2) : 0, n > 2 ? p + 2 : "");
}

/* Explain a close code from docs/protocol.md's table: found and fix. */
static void explain_close(doctor_t *d, int code, const char *reason, char *found, size_t fcap,
                          char *fix, size_t xcap)
{
    const char *detail = strstr(reason, ": ");
    detail = detail ? detail + 2 : "";
    fix[0] = 0;
    switch (code) {
    case 4402:
        snprintf(found, fcap, "closed with 4402 token_invalid (%s): the gateway refused the token",
                 reason);
        if (strstr(detail, "bad_signature") || strstr(detail, "unknown_kid") ||
            strstr(detail, "wrong_env"))
            snprintf(
                fix, xcap,
                "the token was signed with another key than the gateway's: mint it with the "
                "gateway's RTGW_SIGNING_KEY (INNGEST_SIGNING_KEY on the backend)\n"
                "during a rotation, set RTGW_SIGNING_KEY_FALLBACK to the old key on the gateway");
        else if (strstr(detail, "issued_in_future") || strstr(detail, "not_yet_valid"))
            snprintf(fix, xcap,
                     "the minting machine's clock is ahead of the gateway's: run NTP on both "
                     "(compare date -u), or raise RTGW_CLOCK_LEEWAY");
        else if (strstr(detail, "wrong_issuer"))
            snprintf(fix, xcap,
                     "set the same RTGW_TOKEN_ISSUER where tokens are minted and on the gateway");
        else
            snprintf(fix, xcap,
                     "mint a fresh token with POST /v1/realtime/token (or rtgw token) and pass it "
                     "unchanged as ?token=");
        break;
    case 4405:
        snprintf(found, fcap,
                 "closed with 4405 origin_not_allowed: the page origin %s is not in "
                 "RTGW_ALLOWED_ORIGINS",
                 d->o->origin ? d->o->origin : "(none sent)");
        snprintf(fix, xcap,
                 "add the origin to RTGW_ALLOWED_ORIGINS on the gateway (comma-separated, "
                 "scheme://host[:port], no path, no trailing slash) and restart it:\n"
                 "  RTGW_ALLOWED_ORIGINS=https://app.example.com,%s",
                 d->o->origin ? d->o->origin : "https://your-page.example.com");
        break;
    case 4409:
        snprintf(found, fcap,
                 "closed with 4409 token_expired (%s): the token had expired when it reached the "
                 "gateway",
                 reason);
        snprintf(fix, xcap,
                 "mint the token right before connecting (its lifetime is RTGW_TOKEN_TTL, default "
                 "60 s), and refresh it on reconnect\n"
                 "check clocks: compare date -u on the minting backend and the gateway (NTP); a "
                 "skew beyond RTGW_CLOCK_LEEWAY (30 s) makes fresh tokens look expired");
        break;
    case 4503:
        snprintf(found, fcap,
                 "closed with 4503 over_capacity: the gateway is at RTGW_MAX_CONNECTIONS");
        snprintf(fix, xcap,
                 "raise RTGW_MAX_CONNECTIONS (with LimitNOFILE >= 2 x connections + 1024), or add "
                 "nodes; clients retry with backoff");
        break;
    case 4401:
        snprintf(found, fcap,
                 "closed with 4401 token_missing: the token did not reach the gateway");
        snprintf(fix, xcap,
                 "a proxy may drop the query string: proxy_pass http://127.0.0.1:8288; (no URI "
                 "part) keeps /v1/realtime/connect?token=... intact");
        break;
    case 4400:
        snprintf(found, fcap, "closed with 4400 bad_request (%s)", reason);
        snprintf(fix, xcap, "a proxy may rewrite the URL or its query; pass it unchanged");
        break;
    case 1001:
        snprintf(found, fcap, "closed with 1001 shutting_down: the gateway is draining");
        snprintf(fix, xcap, "wait for the restart to finish, then run doctor again");
        break;
    case 1011:
        snprintf(found, fcap, "closed with 1011 internal_error (%s)", reason);
        snprintf(fix, xcap, "see the gateway's log at this time (level=error)");
        break;
    default:
        snprintf(found, fcap,
                 "closed with %d%s%s right after the upgrade (not an rtgw refusal code: something "
                 "else answers the WebSocket?)",
                 code, reason[0] ? " " : "", reason);
        snprintf(fix, xcap,
                 "check that /v1/realtime/connect reaches rtgw (docs/protocol.md lists its close "
                 "codes)");
    }
}

static int check_upgrade(doctor_t *d)
{
    char found[1500], fix[1500], why[512];
    unsigned char keyraw[16];
    RAND_bytes(keyraw, sizeof(keyraw));
    char key[32], expect[40];
    EVP_EncodeBlock((unsigned char *)key, keyraw, sizeof(keyraw));
    char cat[80];
    snprintf(cat, sizeof(cat), "%s%s", key, WS_GUID);
    unsigned char sha[EVP_MAX_MD_SIZE];
    unsigned int shalen = 0;
    EVP_Digest(cat, strlen(cat), sha, &shalen, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)expect, sha, (int)shalen);

    ws_t *w = &d->ws;
    memset(w, 0, sizeof(*w));
    if (dc_open(d, &w->c, why, sizeof(why)) != 0) {
        report(d, ST_FAIL, "upgrade", why, NULL);
        return -1;
    }
    size_t qcap = (d->jwt ? strlen(d->jwt) : 0) + 2048;
    char *req = malloc(qcap);
    if (!req) {
        ws_close(w);
        return -1;
    }
    char originhdr[600] = "";
    if (d->o->origin)
        snprintf(originhdr, sizeof(originhdr), "Origin: %s\r\n", d->o->origin);
    int n = snprintf(req, qcap,
                     "GET /v1/realtime/connect?%s%s%srtgw=1 HTTP/1.1\r\nHost: %s\r\n"
                     "User-Agent: rtgw-doctor/%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                     d->jwt ? "token=" : "", d->jwt ? d->jwt : "", d->jwt ? "&" : "", d->hosthdr,
                     RT_VERSION, key, originhdr);
    int64_t deadline = mono_ms() + d->timeout_ms;
    resp_t *r = calloc(1, sizeof(*r));
    int rc = -1;
    if (!r || dc_write(&w->c, req, (size_t)n, deadline) != 0) {
        report(d, ST_FAIL, "upgrade", "the connection closed while sending the upgrade request",
               NULL);
        goto out;
    }
    int h = read_head(&w->c, r, deadline);
    if (h != 0) {
        snprintf(found, sizeof(found), "GET /v1/realtime/connect (upgrade): %s", transport_text(h));
        report(d, ST_FAIL, "upgrade", found,
               "a proxy on the path drops upgrade requests; see the proxy's error log");
        goto out;
    }
    char via[160];
    via_server(r, via, sizeof(via));
    if (r->status != 101) {
        read_body(&w->c, r, mono_ms() + 1000);
        char *ename = json_error_text(&r->body, false);
        char desc[300];
        describe_body(r, desc, sizeof(desc));
        /* rtgw answers a GET on /v1/realtime/connect that carries no upgrade with
         * 426 upgrade_required (older builds: 404 not_found): the headers were
         * dropped on the way. A 400/426 from anything else means the server saw
         * Upgrade without Connection: upgrade. */
        bool rtgw_plain = ename && (strncmp(ename, "upgrade_required", 16) == 0 ||
                                    strncmp(ename, "not_found", 9) == 0);
        if (r->status == 200 || r->status == 404 || rtgw_plain) {
            snprintf(
                found, sizeof(found),
                "HTTP %d%s%s%s instead of 101 Switching Protocols: the proxy does not pass the "
                "Upgrade header (the request reached %s as a plain GET); a browser reports 1006",
                r->status, ename ? " " : "", ename ? ename : "", via,
                rtgw_plain ? "rtgw" : "the backend");
            report(d, ST_FAIL, "upgrade", found, FIX_UPGRADE);
        } else if (r->status == 400 || r->status == 426) {
            snprintf(
                found, sizeof(found),
                "HTTP %d%s%s%s instead of 101: Connection: upgrade is stripped on the way (the "
                "server saw Upgrade without Connection: upgrade)",
                r->status, ename ? " " : "", ename ? ename : "", via);
            snprintf(fix, sizeof(fix),
                     "nginx sends Connection: close to the upstream unless told otherwise; add\n"
                     "  proxy_set_header Connection \"upgrade\";\n%s",
                     FIX_UPGRADE);
            report(d, ST_FAIL, "upgrade", found, fix);
        } else if (r->status == 502 || r->status == 504) {
            snprintf(found, sizeof(found),
                     "HTTP %d on the upgrade%s: the proxy answers but the backend is down",
                     r->status, via);
            report(d, ST_FAIL, "upgrade", found, FIX_BACKEND_DOWN);
        } else if ((r->status == 401 || r->status == 403 || r->status == 503) && ename) {
            snprintf(found, sizeof(found), "HTTP %d %s refused the upgrade%s", r->status, ename,
                     via);
            snprintf(fix, sizeof(fix), "%s",
                     strstr(ename, "origin")    ? "add the page origin to RTGW_ALLOWED_ORIGINS"
                     : strstr(ename, "expired") ? "mint a fresh token; check clocks (NTP)"
                     : strstr(ename, "capacity")
                         ? "raise RTGW_MAX_CONNECTIONS"
                         : "mint a fresh token with the gateway's signing key");
            report(d, ST_FAIL, "upgrade", found, fix);
        } else {
            snprintf(found, sizeof(found), "HTTP %d instead of 101 on the upgrade (%s)%s",
                     r->status, ename ? ename : desc, via);
            report(d, ST_FAIL, "upgrade", found,
                   "check what answers /v1/realtime/connect: it must reach rtgw with the Upgrade "
                   "and Connection headers intact");
        }
        free(ename);
        goto out;
    }
    char accept[80] = "";
    header_get(r->head, "Sec-WebSocket-Accept", accept, sizeof(accept));
    if (strcmp(accept, expect) != 0) {
        snprintf(found, sizeof(found),
                 "101, but Sec-WebSocket-Accept is '%s', not '%s': a proxy rewrote the handshake "
                 "or something else answers; browsers abort such a connection (1006)",
                 accept, expect);
        report(d, ST_FAIL, "upgrade", found,
               "make the proxy pass the handshake through unchanged (no header rewriting on "
               "/v1/realtime/connect), or point it at rtgw");
        goto out;
    }
    /* Frames that arrived with the 101 go to the frame reader. */
    if (r->extra.len) {
        w->buf = malloc(r->extra.len + 16384);
        if (w->buf) {
            memcpy(w->buf, r->extra.p, r->extra.len);
            w->len = r->extra.len;
            w->cap = r->extra.len + 16384;
        }
    }
    int op = 0;
    char *p = NULL;
    size_t plen = 0;
    int64_t t0 = mono_ms();
    int k = ws_next(w, mono_ms() + d->timeout_ms, &op, &p, &plen);
    if (k == -1) {
        snprintf(found, sizeof(found),
                 "101, then the connection closed without a close frame (a browser reports 1006)%s",
                 via);
        report(d, ST_FAIL, "upgrade", found,
               "something between closes upgraded connections at once: a proxy without WebSocket "
               "support, or a load balancer in HTTP-only mode; see its log");
        goto out;
    }
    if (k == 1 && op == 0x8) {
        int code;
        char reason[200];
        close_parse(p, plen, &code, reason, sizeof(reason));
        free(p);
        if (!d->jwt && code == 4401) {
            snprintf(found, sizeof(found),
                     "101 with a correct Sec-WebSocket-Accept, then 4401 token_missing as expected "
                     "without a token: the upgrade reaches rtgw%s",
                     via);
            report(d, ST_OK, "upgrade", found, NULL);
            report(d, ST_SKIP, "subscribe", "needs --signing-key or --token", NULL);
            rc = 0;
            goto out;
        }
        explain_close(d, code, reason, found, sizeof(found), fix, sizeof(fix));
        report(d, ST_FAIL, "upgrade", found, fix[0] ? fix : NULL);
        goto out;
    }
    snprintf(found, sizeof(found),
             "101 Switching Protocols with a correct Sec-WebSocket-Accept%s%s",
             d->o->origin ? ", Origin accepted" : "", via);
    report(d, ST_OK, "upgrade", found, NULL);
    d->ws_open = true;
    rc = 0;
    /* the subscribe check judges the first frame */
    if (k == 0) {
        report(d, ST_FAIL, "subscribe",
               "no frame within the timeout after the upgrade (expected rtgw.subscribed)",
               "a proxy may hold frames back, or this is not rtgw; see the gateway's log");
        rc = -1;
    } else if (op == 0x1 && strstr(p, "\"rtgw.subscribed\"")) {
        snprintf(found, sizeof(found),
                 "rtgw.subscribed to " PROBE_CHANNEL "/" PROBE_TOPIC " in %lld ms",
                 (long long)(mono_ms() - t0));
        report(d, ST_OK, "subscribe", found, NULL);
    } else {
        snprintf(found, sizeof(found), "the first frame is not rtgw.subscribed: '%.100s'",
                 op == 1 ? p : "(binary)");
        report(d, ST_FAIL, "subscribe", found,
               "the gateway did not acknowledge the extended protocol (&rtgw=1): is this rtgw, and "
               "does the proxy keep the query string?");
        rc = -1;
    }
    free(p);
out:
    if (rc != 0 || !d->ws_open) {
        if (rc != 0)
            d->ws_open = false;
        ws_close(w);
    }
    free(req);
    if (r)
        resp_free(r);
    free(r);
    return rc;
}

/* POST a probe carrying nonce; 0, or -1 with why. */
static int publish_probe(doctor_t *d, const char *nonce, char *why, size_t cap)
{
    char hdr[1024], body[128], path[128];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\nContent-Type: application/json\r\n",
             d->o->signing_key);
    snprintf(body, sizeof(body), "{\"probe\":\"%s\"}", nonce);
    snprintf(path, sizeof(path),
             "/v1/realtime/publish?channel=" PROBE_CHANNEL "&topic=" PROBE_TOPIC);
    resp_t r;
    int rc = 0;
    if (http_do(d, "POST", path, hdr, body, &r, why, cap) != 0) {
        rc = -1;
    } else if (r.status != 200) {
        char *e = json_error_text(&r.body, true);
        snprintf(why, cap, "POST /v1/realtime/publish: HTTP %d%s%s", r.status, e ? " " : "",
                 e ? e : "");
        free(e);
        rc = -1;
    }
    sodium_memzero(hdr, sizeof(hdr));
    resp_free(&r);
    return rc;
}

/* Wait on the open WebSocket for the probe with nonce. 1 seen, 0 timeout,
 * -1 closed (code/reason filled when a close frame came). */
static int ws_wait_probe(doctor_t *d, const char *nonce, int64_t deadline, int *code, char *reason,
                         size_t cap)
{
    *code = 0;
    reason[0] = 0;
    for (;;) {
        int op;
        char *p;
        size_t n;
        int k = ws_next(&d->ws, deadline, &op, &p, &n);
        if (k <= 0)
            return k;
        if (op == 0x8) {
            close_parse(p, n, code, reason, cap);
            free(p);
            return -1;
        }
        bool hit = op == 0x1 && strstr(p, nonce) != NULL;
        free(p);
        if (hit)
            return 1;
    }
}

static int check_delivery(doctor_t *d)
{
    if (!d->ws_open || !d->o->signing_key) {
        report(d, ST_SKIP, "delivery",
               d->ws_open ? "needs --signing-key to publish a probe" : "no open WebSocket", NULL);
        return 0;
    }
    char nonce[40], why[512], found[800];
    random_hex(nonce, 12);
    int64_t t0 = mono_ms();
    if (publish_probe(d, nonce, why, sizeof(why)) != 0) {
        report(d, ST_FAIL, "delivery", why,
               strstr(why, "401") ? "the signing key does not match the gateway's" : NULL);
        return -1;
    }
    int code;
    char reason[200];
    int k = ws_wait_probe(d, nonce, t0 + DELIVERY_MS, &code, reason, sizeof(reason));
    if (k == 1) {
        d->ws_delivery_ms = mono_ms() - t0;
        snprintf(found, sizeof(found),
                 "published a probe and received it over the WebSocket in %lld ms",
                 (long long)d->ws_delivery_ms);
        report(d, ST_OK, "delivery", found, NULL);
        return 0;
    }
    if (k == 0)
        snprintf(found, sizeof(found),
                 "the publish was accepted but the probe did not arrive over the WebSocket within "
                 "%d s",
                 DELIVERY_MS / 1000);
    else if (code)
        snprintf(found, sizeof(found),
                 "the WebSocket closed with %d %s while waiting for the probe", code, reason);
    else
        snprintf(found, sizeof(found),
                 "the WebSocket closed without a close frame while waiting for the probe");
    report(d, ST_FAIL, "delivery", found,
           "a proxy may buffer WebSocket frames (proxy_buffering on the upgraded location), or "
           "the publish reached another rtgw node than the subscriber: each node has its own "
           "in-memory bus, so put a single node behind this URL");
    return -1;
}

/* Feed what arrived on the SSE connection into body (decoding chunked). */
static void sse_take(chunked_t *ch, bool chunked, const char *p, size_t n, buf_t *body)
{
    if (chunked)
        chunked_feed(ch, p, n, body);
    else
        buf_add(body, p, n);
}

/* A buffering proxy may hold back the response head itself, not only the
 * events, so the probe is published after a short wait whatever has arrived,
 * and the head and the probe then share one DELIVERY_MS window. */
static int check_sse(doctor_t *d)
{
    if (!d->ws_open || !d->o->signing_key || !d->jwt) {
        report(d, ST_SKIP, "sse",
               !d->o->signing_key ? "needs --signing-key to publish a probe" : "no open WebSocket",
               NULL);
        return 0;
    }
    char why[512], found[1200];
    dconn_t c;
    if (dc_open(d, &c, why, sizeof(why)) != 0) {
        report(d, ST_FAIL, "sse", why, NULL);
        return -1;
    }
    size_t cap = strlen(d->jwt) + 1024;
    char *req = malloc(cap);
    char originhdr[600] = "";
    if (d->o->origin)
        snprintf(originhdr, sizeof(originhdr), "Origin: %s\r\n", d->o->origin);
    int n = req ? snprintf(req, cap,
                           "GET /v1/realtime/sse?token=%s HTTP/1.1\r\nHost: %s\r\n"
                           "User-Agent: rtgw-doctor/%s\r\nAccept: text/event-stream\r\n"
                           "Cache-Control: no-cache\r\n%s\r\n",
                           d->jwt, d->hosthdr, RT_VERSION, originhdr)
                : -1;
    resp_t *r = calloc(1, sizeof(*r));
    buf_t body = {0};
    chunked_t ch = {0};
    bool chunked = false, have_head = false, closed = false;
    char via[160] = "", tmp[8192];
    int rc = -1;
    int64_t t0 = mono_ms();
    if (n < 0 || !r || dc_write(&c, req, (size_t)n, t0 + d->timeout_ms) != 0) {
        report(d, ST_FAIL, "sse", "the connection closed while sending GET /v1/realtime/sse", NULL);
        goto out;
    }
    /* Phase 1 (up to 1 s): the head and the rtgw.subscribed acknowledgement, so
     * the probe is not published before the stream subscribed. */
    for (int phase = 1; phase <= 2; phase++) {
        int64_t deadline = mono_ms() + (phase == 1 ? 1000 : DELIVERY_MS);
        const char *want = phase == 1 ? "rtgw.subscribed" : NULL;
        char nonce[40];
        if (phase == 2) {
            random_hex(nonce, 12);
            want = nonce;
            if (publish_probe(d, nonce, why, sizeof(why)) != 0) {
                report(d, ST_FAIL, "sse", why, NULL);
                goto out;
            }
        }
        while (!closed && !(body.p && strstr(body.p, want))) {
            if (!have_head) {
                int h = read_head(&c, r, deadline);
                if (h == -2)
                    break;
                if (h != 0) {
                    snprintf(found, sizeof(found), "GET /v1/realtime/sse: %s", transport_text(h));
                    report(d, ST_FAIL, "sse", found, NULL);
                    goto out;
                }
                have_head = true;
                char ct[128] = "", te[64] = "";
                header_get(r->head, "Content-Type", ct, sizeof(ct));
                via_server(r, via, sizeof(via));
                chunked = header_get(r->head, "Transfer-Encoding", te, sizeof(te)) &&
                          strcasestr(te, "chunked");
                if (r->status != 200 || !strcasestr(ct, "text/event-stream")) {
                    read_body(&c, r, mono_ms() + 1000);
                    char *e = json_error_text(&r->body, false);
                    char desc[300];
                    describe_body(r, desc, sizeof(desc));
                    snprintf(found, sizeof(found),
                             "GET /v1/realtime/sse: HTTP %d (%s)%s, not an event stream", r->status,
                             e ? e : desc, via);
                    free(e);
                    report(d, ST_FAIL, "sse", found,
                           r->status == 502 || r->status == 504
                               ? FIX_BACKEND_DOWN
                               : "route /v1/realtime/sse to rtgw, with the query string intact");
                    goto out;
                }
                sse_take(&ch, chunked, r->extra.p ? r->extra.p : "", r->extra.len, &body);
                continue;
            }
            ssize_t k = dc_read(&c, tmp, sizeof(tmp), deadline);
            if (k == -2)
                break;
            if (k <= 0)
                closed = true;
            else
                sse_take(&ch, chunked, tmp, (size_t)k, &body);
        }
        if (phase == 1)
            continue;
        bool acked = body.p && strstr(body.p, "rtgw.subscribed");
        bool seen = body.p && strstr(body.p, nonce);
        int64_t ms = mono_ms() - (deadline - DELIVERY_MS);
        if (seen && acked && ms < 1000) {
            snprintf(found, sizeof(found),
                     "received the probe over SSE in %lld ms (WebSocket: %lld ms)%s", (long long)ms,
                     (long long)d->ws_delivery_ms, via);
            report(d, ST_OK, "sse", found, NULL);
            rc = 0;
        } else if (seen) {
            snprintf(found, sizeof(found),
                     "the probe arrived over SSE only after %lld ms (WebSocket: %lld ms): a proxy "
                     "buffers the SSE stream%s",
                     (long long)ms, (long long)d->ws_delivery_ms, via);
            report(d, ST_WARN, "sse", found, FIX_SSE);
            rc = 0;
        } else if (closed) {
            snprintf(found, sizeof(found), "the SSE stream closed after %lld ms%s",
                     (long long)(mono_ms() - t0), via);
            report(d, ST_FAIL, "sse", found,
                   "a proxy closes streaming responses; raise its read timeout (proxy_read_timeout "
                   "3600s) and turn buffering off for /v1/realtime/sse");
        } else {
            snprintf(found, sizeof(found),
                     "the probe did not arrive over SSE within %d s while the WebSocket got it in "
                     "%lld ms; %s: a proxy buffers the SSE stream (proxy_buffering)%s",
                     DELIVERY_MS / 1000, (long long)d->ws_delivery_ms,
                     !have_head      ? "not even the response headers arrived"
                     : body.len == 0 ? "the headers came but not one byte of the stream"
                                     : "the stream stalled",
                     via);
            report(d, ST_FAIL, "sse", found, FIX_SSE);
        }
    }
out:
    buf_free(&body);
    if (r)
        resp_free(r);
    free(r);
    free(req);
    dc_close(&c);
    return rc;
}

static int check_idle(doctor_t *d)
{
    int idle = d->o->idle_s;
    if (idle <= 0) {
        report(d, ST_SKIP, "idle",
               "not requested (--idle SECONDS keeps the WebSocket open that long)", NULL);
        return 0;
    }
    if (!d->ws_open) {
        report(d, ST_SKIP, "idle", "needs an open WebSocket (--signing-key or --token)", NULL);
        return 0;
    }
    char found[1200], fix[1500];
    int64_t t0 = mono_ms(), end = t0 + (int64_t)idle * 1000;
    int pings0 = d->ws.pings;
    for (;;) {
        int op;
        char *p;
        size_t n;
        int k = ws_next(&d->ws, end, &op, &p, &n);
        if (k == 0)
            break;
        double after = (double)(mono_ms() - t0) / 1000.0;
        if (k == -1 || op == 0x8) {
            int code = 0;
            char reason[200] = "";
            if (k == 1)
                close_parse(p, n, &code, reason, sizeof(reason));
            if (k == 1)
                free(p);
            char how[300];
            if (code)
                snprintf(how, sizeof(how), "with close code %d%s%s", code, reason[0] ? " " : "",
                         reason);
            else
                snprintf(how, sizeof(how), "without a close frame (a browser reports 1006)");
            snprintf(found, sizeof(found),
                     "closed after %.1f s idle %s, %d ping%s seen: a proxy read timeout shorter "
                     "than the idle period",
                     after, how, d->ws.pings - pings0, d->ws.pings - pings0 == 1 ? "" : "s");
            if (code == 4408)
                snprintf(found, sizeof(found),
                         "closed after %.1f s with 4408 idle_timeout: the gateway saw no pong (a "
                         "proxy swallows the pings or pongs)",
                         after);
            snprintf(fix, sizeof(fix), "%s", FIX_IDLE);
            report(d, ST_FAIL, "idle", found, fix);
            d->ws_open = false;
            return -1;
        }
        free(p); /* another doctor's probe, or a stray frame */
    }
    int pings = d->ws.pings - pings0;
    bool noheart = pings == 0 && idle > 20;
    if (!d->o->signing_key) {
        snprintf(found, sizeof(found),
                 "stayed open %d s idle, %d ping%s answered (delivery after idle "
                 "not checked: needs --signing-key)",
                 idle, pings, pings == 1 ? "" : "s");
        report(d, noheart ? ST_WARN : ST_OK, "idle", found,
               noheart ? "no heartbeat seen: check RTGW_PING_INTERVAL_MS (default 15000)" : NULL);
        return 0;
    }
    char nonce[40], why[512];
    random_hex(nonce, 12);
    int64_t tp = mono_ms();
    if (publish_probe(d, nonce, why, sizeof(why)) != 0) {
        report(d, ST_FAIL, "idle", why, NULL);
        return -1;
    }
    int code;
    char reason[200];
    int k = ws_wait_probe(d, nonce, tp + DELIVERY_MS, &code, reason, sizeof(reason));
    if (k != 1) {
        snprintf(found, sizeof(found),
                 "after %d s idle the WebSocket %s: a proxy or NAT dropped the idle connection",
                 idle,
                 k == 0 ? "looked open but the probe did not arrive within 2 s"
                        : "closed on the publish");
        report(d, ST_FAIL, "idle", found, FIX_IDLE);
        return -1;
    }
    if (noheart) {
        snprintf(found, sizeof(found),
                 "no heartbeat seen in %d s (no ping from the gateway), though the probe still "
                 "arrived after the idle period",
                 idle);
        report(d, ST_WARN, "idle", found,
               "a proxy with a 60 s read timeout will cut idle sockets: keep RTGW_PING_INTERVAL_MS "
               "below it (default 15000)");
        return 0;
    }
    snprintf(found, sizeof(found),
             "stayed open %d s idle, %d ping%s answered, then delivered a probe in %lld ms", idle,
             pings, pings == 1 ? "" : "s", (long long)(mono_ms() - tp));
    report(d, ST_OK, "idle", found, NULL);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* entry points                                                               */

static void finish(doctor_t *d, const char *stopped_at)
{
    if (d->o && d->o->json) {
        json_t *root = json_pack("{s:b,s:O}", "ok", !d->failed, "checks", d->checks);
        char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
        if (s) {
            char *x = redact(d, s);
            fprintf(d->out, "%s\n", x ? x : "");
            free(x);
        }
        free(s);
        json_decref(root);
    } else if (d->failed) {
        fprintf(d->out, "\nrtgw doctor: stopped at %s; fix it and run doctor again.\n",
                stopped_at ? stopped_at : "the first failed check");
    } else {
        fprintf(d->out, "\nrtgw doctor: %d check%s passed, %d warning%s.\n", d->nok,
                d->nok == 1 ? "" : "s", d->nwarn, d->nwarn == 1 ? "" : "s");
    }
    fflush(d->out);
}

int rt_doctor_run(const rt_doctor_opts_t *o, FILE *out)
{
    doctor_t *d = calloc(1, sizeof(*d));
    if (!d)
        return 1;
    d->o = o;
    d->out = out;
    d->checks = json_array();
    d->timeout_ms = (int64_t)(o->timeout_s > 0 ? o->timeout_s : 5) * 1000;
    d->ws.c.fd = -1;
    static const struct {
        const char *name;
        int (*fn)(doctor_t *);
    } steps[] = {{"url", check_url},     {"dns", check_dns},         {"tcp", check_tcp},
                 {"tls", check_tls},     {"http", check_http},       {"clock", check_clock},
                 {"token", check_token}, {"upgrade", check_upgrade}, {"delivery", check_delivery},
                 {"sse", check_sse},     {"idle", check_idle}};
    const char *stopped = NULL;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        if (steps[i].fn(d) != 0 || d->failed) {
            stopped = steps[i].name;
            break;
        }
    }
    finish(d, stopped);
    int rc = d->failed ? 1 : 0;
    if (d->ws_open)
        ws_close(&d->ws);
    if (g_ai)
        freeaddrinfo(g_ai);
    g_ai = NULL;
    if (d->ctx)
        SSL_CTX_free(d->ctx);
    if (d->jwt) {
        sodium_memzero(d->jwt, strlen(d->jwt));
        free(d->jwt);
    }
    json_decref(d->checks);
    free(d);
    return rc;
}

int rt_doctor_config(const char *env_file, bool json, FILE *out)
{
    rt_doctor_opts_t o = {.json = json};
    doctor_t d = {.o = &o, .out = out, .checks = json_array()};
    rt_log_level_t lvl = rt_log_get_level();
    rt_log_set_level(RT_LOG_ERROR); /* the TLS expiry warning is reported below instead */
    rt_config_t cfg;
    char errs[8192];
    int nerr = rt_config_load(&cfg, env_file, false, errs, sizeof(errs));
    rt_log_set_level(lvl);
    char found[1200], fix[800];
    const char *src = env_file ? env_file : "./.env (if present)";
    if (nerr == 0) {
        snprintf(found, sizeof(found),
                 "the environment and %s load as rtgw serve would: listen %s:%d, %s, token alg %s, "
                 "%s%s",
                 src, cfg.host, cfg.port,
                 cfg.tls_cert ? "TLS on (https/wss)" : "no TLS (plain http/ws)", cfg.token_alg,
                 cfg.signing_key_fallback ? "a fallback key (rotation), " : "",
                 cfg.origins ? "an origin allowlist" : "no origin allowlist");
        report(&d, ST_OK, "config", found, NULL);
    } else {
        for (char *save = NULL, *line = strtok_r(errs, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            char name[64] = "config";
            const char *text = line;
            const char *colon = strstr(line, ": ");
            if (strncmp(line, "RTGW_", 5) == 0 && colon && colon - line < (long)sizeof(name)) {
                snprintf(name, sizeof(name), "%.*s", (int)(colon - line), line);
                text = colon + 2;
            } else if (strncmp(line, "env file", 8) == 0) {
                snprintf(name, sizeof(name), "env_file");
            }
            report(&d, ST_FAIL, name, text, NULL);
        }
    }
    /* Warnings: settings that load fine but break browsers in production. */
    if (!cfg.allowed_origins)
        report(&d, ST_WARN, "RTGW_ALLOWED_ORIGINS",
               "unset: WebSocket/SSE from every origin is allowed",
               "list the origins of your pages: RTGW_ALLOWED_ORIGINS=https://app.example.com");
    if (!cfg.public_url)
        report(
            &d, ST_WARN, "RTGW_PUBLIC_URL",
            "unset: the startup checks of the URL browsers use (https, no path, no trailing "
            "slash, certificate host) do not run",
            "set it to the origin browsers use: RTGW_PUBLIC_URL=https://rt.example.com, then run "
            "rtgw doctor https://rt.example.com --signing-key …");
    if (cfg.tls_cert && cfg.tls_key) {
        char err[512], warn[300], host[256] = "";
        if (cfg.public_url && strstr(cfg.public_url, "://")) {
            const char *h = strstr(cfg.public_url, "://") + 3;
            size_t hl = strcspn(h, ":/");
            if (hl < sizeof(host))
                snprintf(host, sizeof(host), "%.*s", (int)hl, h);
        }
        if (rt_tls_check(cfg.tls_cert, cfg.tls_key, host[0] ? host : NULL, (int64_t)time(NULL), err,
                         sizeof(err), warn, sizeof(warn)) == 0 &&
            warn[0])
            report(&d, ST_WARN, "RTGW_TLS_CERT", warn,
                   "renew it now (certbot renew, or your CA) and restart rtgw: it reads the pair "
                   "only at startup");
    }
    if (cfg.ping_interval_ms > 55000) {
        snprintf(found, sizeof(found),
                 "%lld ms: a proxy's default 60 s read timeout (nginx proxy_read_timeout) will cut "
                 "idle sockets between pings",
                 (long long)cfg.ping_interval_ms);
        report(&d, ST_WARN, "RTGW_PING_INTERVAL_MS", found,
               "keep it below every idle timeout on the path: RTGW_PING_INTERVAL_MS=15000 (the "
               "default), or raise proxy_read_timeout");
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (uint64_t)cfg.max_connections > (uint64_t)rl.rlim_cur / 2) {
        snprintf(found, sizeof(found),
                 "%lld, but this process may open only %llu files (RLIMIT_NOFILE); each connection "
                 "needs about two",
                 (long long)cfg.max_connections, (unsigned long long)rl.rlim_cur);
        snprintf(fix, sizeof(fix),
                 "raise the limit where rtgw runs: LimitNOFILE=%lld in the systemd unit (or ulimit "
                 "-n), or lower RTGW_MAX_CONNECTIONS",
                 (long long)cfg.max_connections * 2 + 1024);
        report(&d, ST_WARN, "RTGW_MAX_CONNECTIONS", found, fix);
    }
    finish(&d, "the configuration");
    rt_config_free(&cfg);
    json_decref(d.checks);
    return d.failed ? 1 : 0;
}

static void doctor_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: rtgw doctor <url> [--signing-key K | --token T] [--origin O] [--idle SECONDS]\n"
        "                   [--timeout SECONDS] [--cacert FILE] [--json]\n"
        "       rtgw doctor --config [--env-file FILE] [--json]\n\n"
        "Walks the path a browser takes to the gateway and stops at the first broken link,\n"
        "printing what it checked, what it found and the fix:\n"
        "  url, dns, tcp, tls (wss/https), http (GET /health), clock, token,\n"
        "  upgrade (WebSocket handshake, close codes), subscribe, delivery (a probe\n"
        "  published to channel rtgw-doctor, topic probe), sse (proxy buffering), idle.\n\n"
        "  <url>              the origin browsers use, e.g. https://rt.example.com (or wss://)\n"
        "  --signing-key K    mint a token and publish probes (never printed; - reads it\n"
        "                     from stdin, keeping it out of the process list)\n"
        "  --token T          use this token instead (subscribe checks only)\n"
        "  --origin O         the page origin to send, e.g. https://app.example.com\n"
        "  --idle SECONDS     keep the WebSocket open that long, answering pings\n"
        "  --timeout SECONDS  per network step (default 5)\n"
        "  --cacert FILE      trust this PEM CA instead of the system's\n"
        "  --json             {\"ok\":bool,\"checks\":[{\"name\",\"status\",\"found\",\"fix\"}]}\n"
        "  --config           check the configuration rtgw serve would load instead\n\n"
        "Exit codes: 0 nothing failed, 1 a check failed, 2 bad usage.\n");
}

static int parse_secs(const char *opt, const char *v, int min, int *out)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || end == v || x < min || x > 86400) {
        fprintf(stderr, "rtgw doctor: %s must be a whole number of seconds (%d-86400)\n", opt, min);
        return -1;
    }
    *out = (int)x;
    return 0;
}

int rt_doctor_main(int argc, char **argv)
{
    rt_doctor_opts_t o = {.timeout_s = 5};
    bool config = false;
    const char *env_file = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            doctor_usage(stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            o.json = true;
        } else if (strcmp(a, "--config") == 0) {
            config = true;
        } else if (strcmp(a, "--env-file") == 0 && has) {
            env_file = argv[++i];
        } else if (strcmp(a, "--signing-key") == 0 && has) {
            o.signing_key = argv[++i];
        } else if (strcmp(a, "--token") == 0 && has) {
            o.token = argv[++i];
        } else if (strcmp(a, "--origin") == 0 && has) {
            o.origin = argv[++i];
        } else if (strcmp(a, "--cacert") == 0 && has) {
            o.cacert = argv[++i];
        } else if (strcmp(a, "--idle") == 0 && has) {
            if (parse_secs("--idle", argv[++i], 0, &o.idle_s) != 0)
                return 2;
        } else if (strcmp(a, "--timeout") == 0 && has) {
            if (parse_secs("--timeout", argv[++i], 1, &o.timeout_s) != 0)
                return 2;
        } else if (a[0] == '-') {
            fprintf(stderr,
                    "rtgw doctor: unknown option or missing value '%s' (see rtgw doctor --help)\n",
                    a);
            return 2;
        } else if (!o.url) {
            o.url = a;
        } else {
            fprintf(stderr, "rtgw doctor: one URL only ('%s' is extra)\n", a);
            return 2;
        }
    }
    if (config) {
        if (o.url || o.signing_key || o.token || o.origin || o.idle_s || o.cacert) {
            fprintf(stderr, "rtgw doctor: --config takes only --env-file and --json\n");
            return 2;
        }
        return rt_doctor_config(env_file, o.json, stdout);
    }
    if (env_file) {
        fprintf(stderr, "rtgw doctor: --env-file goes with --config\n");
        return 2;
    }
    if (!o.url) {
        fprintf(stderr,
                "rtgw doctor: give the gateway URL, e.g. rtgw doctor https://rt.example.com "
                "(or --config)\n\n");
        doctor_usage(stderr);
        return 2;
    }
    static char key_in[600];
    if (o.signing_key && strcmp(o.signing_key, "-") == 0) {
        /* from stdin, so the key stays out of the process list and shell history */
        if (!fgets(key_in, sizeof(key_in), stdin)) {
            fprintf(stderr, "rtgw doctor: --signing-key -: nothing on stdin\n");
            return 2;
        }
        key_in[strcspn(key_in, "\r\n")] = 0;
        o.signing_key = key_in;
    }
    if (o.signing_key && o.token) {
        fprintf(stderr, "rtgw doctor: --signing-key and --token exclude each other\n");
        return 2;
    }
    if (o.origin && strncmp(o.origin, "http://", 7) != 0 && strncmp(o.origin, "https://", 8) != 0) {
        fprintf(stderr, "rtgw doctor: --origin is a page origin such as https://app.example.com\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    return rt_doctor_run(&o, stdout);
}
