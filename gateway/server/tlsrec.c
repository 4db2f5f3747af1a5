/*
 * tlsrec.c — rtgw's TLS 1.3 record layer after the handshake (see tlsrec.h).
 *
 * Why. An OpenSSL 3.0 connection keeps ~14 KiB after its handshake, most of
 * it the SSL object itself, whatever SSL_MODE_RELEASE_BUFFERS frees: an idle
 * wss subscriber cost ~21 KiB against ~3.5 KiB for a ws one (bench/
 * idle_tls.mjs). Once a TLS 1.3 handshake is done, what the connection needs
 * is small: per direction a traffic secret, a key, an IV and a sequence
 * number (RFC 8446 §5.3, §7). OpenSSL still does the whole handshake, the
 * certificate and the key exchange; tlsconn.c hands this file the two
 * application traffic secrets (OpenSSL's key log callback) and frees the SSL
 * object, and this file protects records with OpenSSL's own AEAD ciphers.
 * TLS 1.2 connections keep their SSL object (tlsconn.c).
 *
 * What it accepts after the handshake, as RFC 8446 says:
 * - application_data records (outer type 23, legacy version 3.x, at most
 *   2^14 + 256 bytes), each decrypted with nonce = IV xor sequence number and
 *   the record header as additional data; the inner type follows the
 *   plaintext, after optional zero padding;
 * - inner alerts: close_notify is the end of the stream, any other alert an
 *   error;
 * - inner handshake messages: KeyUpdate only (§4.6.3): the client's secret
 *   moves on, and when it asks, ours does too, after one KeyUpdate of our own
 *   goes out before our next record.
 * Anything else (a record that does not decrypt, a plaintext alert, a
 * ChangeCipherSpec, a handshake message other than KeyUpdate, an oversized
 * record or plaintext) is an error: the caller closes the connection.
 *
 * Buffers. A record being received is kept in `in` (allocated while one is in
 * flight, freed when none is); its plaintext is decrypted in place and handed
 * out from there. A record the socket took only part of stays in `out` until
 * it is sent. An idle connection holds neither.
 *
 * Keys are wiped (OPENSSL_cleanse) when they change and when r is freed.
 * Threads: one at a time per r. The cipher contexts are per thread
 * (pthread key), reused across connections, initialised per record.
 */
#include "tlsrec.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    HDR = 5,
    TAG = 16,
    IV = 12,
    MAX_PLAIN = 16384,                   /* 2^14 (§5.1) */
    MAX_CIPHER = MAX_PLAIN + 256,        /* §5.2 */
    IN_CAP = HDR + MAX_CIPHER,           /* one whole record */
    OUT_CAP = HDR + MAX_PLAIN + 1 + TAG, /* one record we send */
    SECRET_MAX = 48,                     /* SHA-384 */
    KEY_MAX = 32,
    MAX_EMPTY = 32, /* records in a row that carry no data (KeyUpdates, empty
                     * application data), as OpenSSL allows; then an error */
};

/* Our own KeyUpdate after this many records under one key: AES-GCM's
 * confidentiality limit is ~2^24.5 full records (RFC 8446 §5.5). */
#define REKEY_AFTER (UINT64_C(1) << 23)

enum { T_ALERT = 21, T_HANDSHAKE = 22, T_APPDATA = 23, HS_KEY_UPDATE = 24 };

/* The fatal alerts a protocol error is answered with (RFC 8446 §6.2). */
enum {
    A_UNEXPECTED_MESSAGE = 10,
    A_BAD_RECORD_MAC = 20,
    A_RECORD_OVERFLOW = 22,
    A_DECODE_ERROR = 50,
};

typedef struct {
    const char *cipher; /* OpenSSL's name */
    const char *md;     /* the suite's hash, for HKDF */
    size_t keylen, hashlen;
} suite_t;

static const suite_t suites[] = {
    [1] = {"AES-128-GCM", "SHA256", 16, 32},
    [2] = {"AES-256-GCM", "SHA384", 32, 48},
    [3] = {"ChaCha20-Poly1305", "SHA256", 32, 32},
};

typedef struct {
    uint8_t secret[SECRET_MAX];
    uint8_t key[KEY_MAX];
    uint8_t iv[IV];
    uint64_t seq;
} dir_t;

struct rt_tlsrec_s {
    const suite_t *suite;
    EVP_CIPHER *cipher; /* fetched once per suite: see cipher_of */
    dir_t rd, wr;
    uint8_t *in; /* the record being received: in[0..in_len) */
    size_t in_len;
    size_t plain_off, plain_len; /* decrypted application data in `in`, not handed out */
    size_t rec_len;              /* the decrypted record's whole length in `in` */
    uint8_t *out;                /* a record the socket took part of: out[out_off..out_len) */
    size_t out_off, out_len;
    size_t out_plain;     /* the caller's bytes that record carries */
    bool key_update_owed; /* the client asked for our KeyUpdate, or REKEY_AFTER */
    bool eof;
    int empty_run; /* records in a row without data */
    uint8_t alert; /* the fatal alert a protocol error owes the client; 0: none */
    bool fatal;    /* a fatal alert went out (or was received): nothing more is sent */
};

/* ---- the ciphers and keys ---- */

static EVP_CIPHER *fetched[4];
static EVP_KDF *hkdf;
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;
static pthread_key_t ctx_key;

static void free_ctx(void *p)
{
    EVP_CIPHER_CTX_free(p);
}

static void fetch_all(void)
{
    for (size_t i = 1; i < 4; i++)
        fetched[i] = EVP_CIPHER_fetch(NULL, suites[i].cipher, NULL);
    hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    pthread_key_create(&ctx_key, free_ctx);
}

/* This thread's cipher context. NULL when out of memory. */
static EVP_CIPHER_CTX *thread_ctx(void)
{
    EVP_CIPHER_CTX *c = pthread_getspecific(ctx_key);
    if (!c && (c = EVP_CIPHER_CTX_new()) != NULL)
        pthread_setspecific(ctx_key, c);
    return c;
}

/* HKDF-Expand-Label(secret, label, "", olen) (§7.1). 0 or -1. */
static int expand_label(const suite_t *s, const uint8_t *secret, const char *label, uint8_t *out,
                        size_t olen)
{
    uint8_t info[2 + 1 + 255 + 1];
    size_t ll = 6 + strlen(label);
    info[0] = (uint8_t)(olen >> 8);
    info[1] = (uint8_t)olen;
    info[2] = (uint8_t)ll;
    memcpy(info + 3, "tls13 ", 6);
    memcpy(info + 9, label, ll - 6);
    info[3 + ll] = 0; /* an empty context */
    EVP_KDF_CTX *k = hkdf ? EVP_KDF_CTX_new(hkdf) : NULL;
    if (!k)
        return -1;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)s->md, 0),
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, s->hashlen),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, 4 + ll),
        OSSL_PARAM_construct_end()};
    int rc = EVP_KDF_derive(k, out, olen, p) == 1 ? 0 : -1;
    EVP_KDF_CTX_free(k);
    return rc;
}

/* A direction's key and IV from its secret, sequence number 0 (§7.3). */
static int dir_keys(const suite_t *s, dir_t *d)
{
    d->seq = 0;
    return expand_label(s, d->secret, "key", d->key, s->keylen) == 0 &&
                   expand_label(s, d->secret, "iv", d->iv, IV) == 0
               ? 0
               : -1;
}

/* The next traffic secret of a direction (§7.2), and its keys. */
static int dir_update(const suite_t *s, dir_t *d)
{
    uint8_t next[SECRET_MAX];
    if (expand_label(s, d->secret, "traffic upd", next, s->hashlen) != 0)
        return -1;
    memcpy(d->secret, next, s->hashlen);
    OPENSSL_cleanse(next, sizeof(next));
    return dir_keys(s, d);
}

static void nonce_of(const dir_t *d, uint8_t nonce[IV])
{
    memcpy(nonce, d->iv, IV);
    for (int i = 0; i < 8; i++)
        nonce[IV - 1 - i] ^= (uint8_t)(d->seq >> (8 * i));
}

rt_tlsrec_t *rt__tlsrec_new(uint16_t suite, const uint8_t *client_secret,
                            const uint8_t *server_secret, size_t len)
{
    if (suite < 0x1301 || suite > 0x1303)
        return NULL;
    pthread_once(&fetch_once, fetch_all);
    const suite_t *s = &suites[suite - 0x1300];
    if (len != s->hashlen || !fetched[suite - 0x1300] || !hkdf)
        return NULL;
    rt_tlsrec_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->suite = s;
    r->cipher = fetched[suite - 0x1300];
    memcpy(r->rd.secret, client_secret, len);
    memcpy(r->wr.secret, server_secret, len);
    if (dir_keys(s, &r->rd) != 0 || dir_keys(s, &r->wr) != 0) {
        rt__tlsrec_free(r);
        return NULL;
    }
    return r;
}

/* ---- sending ---- */

/* Protect `len` bytes of inner type `type` as one record into rec (OUT_CAP
 * bytes). Its length, or 0 when the cipher fails. */
static size_t seal(rt_tlsrec_t *r, uint8_t type, const uint8_t *plain, size_t len, uint8_t *rec)
{
    size_t clen = len + 1 + TAG;
    rec[0] = T_APPDATA;
    rec[1] = 3;
    rec[2] = 3;
    rec[3] = (uint8_t)(clen >> 8);
    rec[4] = (uint8_t)clen;
    uint8_t nonce[IV];
    nonce_of(&r->wr, nonce);
    EVP_CIPHER_CTX *c = thread_ctx();
    int n1 = 0, n2 = 0, n3 = 0, nh = 0;
    if (!c || EVP_EncryptInit_ex2(c, r->cipher, r->wr.key, nonce, NULL) != 1 ||
        EVP_EncryptUpdate(c, NULL, &nh, rec, HDR) != 1 ||
        EVP_EncryptUpdate(c, rec + HDR, &n1, plain, (int)len) != 1 ||
        EVP_EncryptUpdate(c, rec + HDR + n1, &n2, &type, 1) != 1 ||
        EVP_EncryptFinal_ex(c, rec + HDR + n1 + n2, &n3) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, TAG, rec + HDR + len + 1) != 1)
        return 0;
    r->wr.seq++;
    return HDR + clen;
}

/* Send a sealed record of `plain` caller bytes; what the socket does not take
 * now waits in r->out. 0 (all sent), or -1 with errno EAGAIN or EPIPE. */
static int send_record(rt_tlsrec_t *r, int fd, const uint8_t *rec, size_t len, size_t plain)
{
    ssize_t n = write(fd, rec, len);
    if (n == (ssize_t)len)
        return 0;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        errno = EPIPE;
        return -1;
    }
    size_t sent = n > 0 ? (size_t)n : 0;
    r->out = malloc(len - sent);
    if (!r->out) {
        errno = EPIPE;
        return -1;
    }
    memcpy(r->out, rec + sent, len - sent);
    r->out_off = 0;
    r->out_len = len - sent;
    r->out_plain = plain;
    errno = EAGAIN;
    return -1;
}

/* Finish sending the record in r->out: the caller bytes it carried (0 for
 * none, or for our own KeyUpdate), or -1 with errno EAGAIN or EPIPE. */
static ssize_t flush(rt_tlsrec_t *r, int fd)
{
    if (!r->out)
        return 0;
    while (r->out_off < r->out_len) {
        ssize_t n = write(fd, r->out + r->out_off, r->out_len - r->out_off);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                errno = EPIPE;
            else
                errno = EAGAIN;
            return -1;
        }
        r->out_off += (size_t)n;
    }
    size_t plain = r->out_plain;
    free(r->out);
    r->out = NULL;
    r->out_off = r->out_len = r->out_plain = 0;
    return (ssize_t)plain;
}

static __thread uint8_t scratch[OUT_CAP];

/* Our KeyUpdate (update_not_requested), then the new write keys (§4.6.3). */
static int send_key_update(rt_tlsrec_t *r, int fd)
{
    static const uint8_t ku[] = {HS_KEY_UPDATE, 0, 0, 1, 0};
    size_t n = seal(r, T_HANDSHAKE, ku, sizeof(ku), scratch);
    r->key_update_owed = false;
    if (n == 0 || dir_update(r->suite, &r->wr) != 0) {
        errno = EPIPE;
        return -1;
    }
    return send_record(r, fd, scratch, n, 0);
}

ssize_t rt__tlsrec_write(rt_tlsrec_t *r, int fd, const void *buf, size_t len)
{
    ssize_t done = flush(r, fd);
    if (done != 0) /* the record of the previous call (retried), or an error */
        return done;
    if (r->wr.seq >= REKEY_AFTER)
        r->key_update_owed = true;
    if (r->key_update_owed && send_key_update(r, fd) != 0)
        return -1;
    size_t take = len < MAX_PLAIN ? len : MAX_PLAIN;
    if (take == 0)
        return 0;
    size_t n = seal(r, T_APPDATA, buf, take, scratch);
    if (n == 0) {
        errno = EPIPE;
        return -1;
    }
    return send_record(r, fd, scratch, n, take) == 0 ? (ssize_t)take : -1;
}

/* One alert record, best effort. write(2): sockhook hooks send(2). */
static void write_alert(rt_tlsrec_t *r, int fd, uint8_t level, uint8_t description)
{
    const uint8_t alert[] = {level, description};
    size_t n = seal(r, T_ALERT, alert, sizeof(alert), scratch);
    if (n)
        (void)!write(fd, scratch, n);
}

void rt__tlsrec_close_notify(rt_tlsrec_t *r, int fd)
{
    if (!r || fd < 0 || r->out || r->fatal)
        return;               /* a record half sent: an alert now would corrupt the stream */
    write_alert(r, fd, 1, 0); /* warning, close_notify */
}

/* The fatal alert a protocol error owes (r->alert), once, best effort: the
 * connection closes next whatever the socket takes. errno is kept. */
static void send_alert(rt_tlsrec_t *r, int fd)
{
    if (!r->alert || r->fatal || r->out || fd < 0)
        return; /* a record half sent: an alert now would corrupt the stream */
    int e = errno;
    r->fatal = true;
    write_alert(r, fd, 2, r->alert); /* fatal, its description */
    errno = e;
}

/* ---- receiving ---- */

/* Decrypt the whole record at r->in (its body `body` bytes) in place; the
 * inner type, with the plaintext's length in *plen, or -1. */
static int open_record(rt_tlsrec_t *r, size_t body, size_t *plen)
{
    uint8_t *ct = r->in + HDR;
    size_t clen = body - TAG;
    uint8_t nonce[IV];
    nonce_of(&r->rd, nonce);
    EVP_CIPHER_CTX *c = thread_ctx();
    int n1 = 0, n2 = 0, nh = 0;
    if (!c || EVP_DecryptInit_ex2(c, r->cipher, r->rd.key, nonce, NULL) != 1 ||
        EVP_DecryptUpdate(c, NULL, &nh, r->in, HDR) != 1 ||
        EVP_DecryptUpdate(c, ct, &n1, ct, (int)clen) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, TAG, ct + clen) != 1 ||
        EVP_DecryptFinal_ex(c, ct + n1, &n2) != 1) {
        r->alert = A_BAD_RECORD_MAC;
        return -1;
    }
    r->rd.seq++;
    if (clen > MAX_PLAIN + 1) { /* the inner plaintext is at most 2^14 + 1 (§5.4) */
        r->alert = A_RECORD_OVERFLOW;
        return -1;
    }
    size_t n = clen;
    while (n > 0 && ct[n - 1] == 0) /* padding */
        n--;
    if (n == 0 || n - 1 > MAX_PLAIN) { /* no content type (§5.4), or too long */
        r->alert = n == 0 ? A_UNEXPECTED_MESSAGE : A_RECORD_OVERFLOW;
        return -1;
    }
    *plen = n - 1;
    return ct[n - 1];
}

/* A KeyUpdate from the client, at p (len bytes of handshake messages). */
static int on_handshake(rt_tlsrec_t *r, const uint8_t *p, size_t len)
{
    if (len < 1 || p[0] != HS_KEY_UPDATE) { /* no other post-handshake message is ours */
        r->alert = A_UNEXPECTED_MESSAGE;
        return -1;
    }
    if (len != 5 || p[1] || p[2] || p[3] != 1 || p[4] > 1) {
        r->alert = A_DECODE_ERROR;
        return -1;
    }
    if (dir_update(r->suite, &r->rd) != 0)
        return -1;
    if (p[4] == 1)
        r->key_update_owed = true;
    return 0;
}

/* Drop the record at the front of r->in; free `in` when nothing follows.
 * Its decrypted bytes (a token refresh carries a token) are wiped: what the
 * move did not overwrite is in the tail it left. */
static void consume_record(rt_tlsrec_t *r)
{
    size_t was = r->in_len;
    memmove(r->in, r->in + r->rec_len, r->in_len - r->rec_len);
    r->in_len -= r->rec_len;
    OPENSSL_cleanse(r->in + r->in_len, was - r->in_len);
    r->rec_len = r->plain_off = r->plain_len = 0;
    if (r->in_len == 0) {
        free(r->in);
        r->in = NULL;
    }
}

/* Open the record at the front of r->in if it is whole: 1 with application
 * data ready (r->plain_*), 0 when more bytes are needed (or the record held
 * nothing for the caller), -1 on an error (errno EPROTO) or at close_notify
 * (errno 0). */
static int next_record(rt_tlsrec_t *r)
{
    if (r->in_len < HDR)
        return 0;
    size_t body = (size_t)r->in[3] << 8 | r->in[4];
    if (r->in[0] != T_APPDATA || r->in[1] != 3 || body > MAX_CIPHER || body < 1 + TAG) {
        r->alert = r->in[0] != T_APPDATA || r->in[1] != 3 ? A_UNEXPECTED_MESSAGE
                   : body > MAX_CIPHER                    ? A_RECORD_OVERFLOW
                                                          : A_BAD_RECORD_MAC;
        errno = EPROTO;
        return -1;
    }
    if (r->in_len < HDR + body)
        return 0;
    size_t plen;
    int type = open_record(r, body, &plen);
    r->rec_len = HDR + body;
    const uint8_t *p = r->in + HDR;
    if (type == T_APPDATA && plen > 0) {
        r->empty_run = 0;
        r->plain_off = HDR;
        r->plain_len = plen;
        return 1;
    }
    if (++r->empty_run > MAX_EMPTY) { /* a flood of records that carry nothing */
        r->alert = A_UNEXPECTED_MESSAGE;
        errno = EPROTO;
        return -1;
    }
    if (type == T_APPDATA) {
        consume_record(r);
        return 0;
    }
    if (type == T_ALERT && plen == 2 && p[1] == 0) { /* close_notify */
        r->eof = true;
        errno = 0;
        return -1;
    }
    if (type == T_ALERT) { /* any other alert ends the connection, unanswered (§6) */
        r->fatal = true;
        errno = EPROTO;
        return -1;
    }
    if (type != T_HANDSHAKE && type >= 0)
        r->alert = A_UNEXPECTED_MESSAGE;
    if (type != T_HANDSHAKE || on_handshake(r, p, plen) != 0) {
        errno = EPROTO;
        return -1;
    }
    consume_record(r);
    return 0;
}

bool rt__tlsrec_pending(const rt_tlsrec_t *r)
{
    return r->plain_len > 0;
}

bool rt__tlsrec_unsent(const rt_tlsrec_t *r)
{
    return r->out != NULL;
}

ssize_t rt__tlsrec_read(rt_tlsrec_t *r, int fd, void *out, size_t cap)
{
    if (r->eof)
        return 0;
    for (;;) {
        if (r->plain_len > 0) {
            size_t n = r->plain_len < cap ? r->plain_len : cap;
            memcpy(out, r->in + r->plain_off, n);
            r->plain_off += n;
            r->plain_len -= n;
            if (r->plain_len == 0)
                consume_record(r);
            return (ssize_t)n;
        }
        int got = next_record(r);
        if (got < 0 && errno != 0)
            send_alert(r, fd);
        if (got < 0)
            return errno == 0 ? 0 : -1;
        if (got > 0)
            continue;
        if (!r->in && !(r->in = malloc(IN_CAP))) {
            errno = ENOMEM;
            return -1;
        }
        /* Exactly the rest of one record: a whole record never waits in
         * `in` unseen while the kernel's socket looks empty (poll), and
         * nothing is moved between records. */
        size_t want = r->in_len < HDR ? HDR - r->in_len
                                      : HDR + ((size_t)r->in[3] << 8 | r->in[4]) - r->in_len;
        ssize_t n = read(fd, r->in + r->in_len, want);
        if (n > 0) {
            r->in_len += (size_t)n;
            continue;
        }
        if (r->in_len == 0) { /* idle: hold no buffer */
            free(r->in);
            r->in = NULL;
        }
        if (n == 0) {
            r->eof = true;
            return 0;
        }
        if (errno == EWOULDBLOCK)
            errno = EAGAIN;
        return -1;
    }
}

rt_tlsrec_t *rt__tlsrec_move(rt_tlsrec_t *r)
{
    rt_tlsrec_t *n = malloc(sizeof(*n));
    if (!n)
        return NULL;
    memcpy(n, r, sizeof(*n));
    OPENSSL_cleanse(r, sizeof(*r));
    free(r);
    return n;
}

void rt__tlsrec_free(rt_tlsrec_t *r)
{
    if (!r)
        return;
    if (r->in)
        OPENSSL_cleanse(r->in, r->in_len); /* a record in reading, maybe decrypted */
    free(r->in);
    free(r->out);
    OPENSSL_cleanse(r, sizeof(*r));
    free(r);
}
