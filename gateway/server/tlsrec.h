/*
 * tlsrec.h — rtgw's TLS 1.3 record layer for a connection whose handshake
 * OpenSSL has finished (RFC 8446 §5: application data, alerts and KeyUpdate
 * after the handshake), so the connection's SSL object (~14 KiB) can be freed
 * and an idle wss subscriber costs about what a ws one does. Why, and what
 * it does and refuses: the top of tlsrec.c.
 *
 * One thread at a time per rt_tlsrec_t, like rt_tls_t (tlsconn.h), which is
 * its only user.
 */
#ifndef RT_TLSREC_H
#define RT_TLSREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct rt_tlsrec_s rt_tlsrec_t;

/* The record layer for TLS 1.3 cipher suite `suite` (0x1301, 0x1302 or
 * 0x1303) with the client's and the server's application traffic secrets
 * (each `len` bytes, the suite's hash length), both directions at sequence
 * number 0. NULL for another suite, a bad length or no memory. */
rt_tlsrec_t *rt__tlsrec_new(uint16_t suite, const uint8_t *client_secret,
                            const uint8_t *server_secret, size_t len);

/* Decrypted application data from socket fd into out (up to cap bytes): n >
 * 0; 0 at the client's close_notify or end of stream; -1 with errno EAGAIN
 * (no whole record yet), EPROTO (a record that does not decrypt, or that TLS
 * 1.3 does not allow here) or the socket's error. */
ssize_t rt__tlsrec_read(rt_tlsrec_t *r, int fd, void *out, size_t cap);
/* Whether decrypted bytes are waiting (a record not returned whole yet). */
bool rt__tlsrec_pending(const rt_tlsrec_t *r);

/* Encrypt and send up to one record of buf (16 KiB at most): the bytes taken,
 * or -1 with errno EAGAIN (the socket took part of the record: call again
 * with the same bytes, at least as many, once it has room) or EPIPE. */
ssize_t rt__tlsrec_write(rt_tlsrec_t *r, int fd, const void *buf, size_t len);

/* Whether a record the socket took only part of waits in r. */
bool rt__tlsrec_unsent(const rt_tlsrec_t *r);
/* Send a close_notify alert if the socket takes it now (never blocks). */
void rt__tlsrec_close_notify(rt_tlsrec_t *r, int fd);
/* A copy of r in memory of the calling thread's malloc arena; r is freed.
 * NULL when out of memory (r is then still the caller's). */
rt_tlsrec_t *rt__tlsrec_move(rt_tlsrec_t *r);
/* Free r, wiping its keys. NULL is a no-op. */
void rt__tlsrec_free(rt_tlsrec_t *r);

#endif
