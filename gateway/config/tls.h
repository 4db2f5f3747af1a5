/*
 * tls.h — checks of the certificate and key rtgw terminates TLS with, before
 * the server starts, so a bad pair is one clear line instead of a failed
 * handshake in production. OpenSSL only; no civetweb.
 */
#ifndef RT_TLS_H
#define RT_TLS_H

#include <stddef.h>
#include <stdint.h>

/* Check that cert_path holds a PEM certificate (chain) and key_path the
 * matching private key, that the certificate is valid at now_s, and, when
 * host is non-NULL, that it covers host. Writes one line to err and returns
 * a negative value on a fatal problem; returns 0 otherwise, with a warning
 * line in warn (possibly empty), e.g. "expires in 5 days". */
int rt_tls_check(const char *cert_path, const char *key_path, const char *host, int64_t now_s,
                 char *err, size_t errcap, char *warn, size_t warncap);

#endif
