/*
 * internal.h — private helpers of rtgw_client shared by its sources: base URL
 * parsing, percent-encoding, error filling, credentials and one HTTP exchange
 * over civetweb's client API. Names are rtc__ (internal, non-static).
 */
#ifndef RTC_INTERNAL_H
#define RTC_INTERNAL_H

#include "rtgw_client.h"

#include <stddef.h>

struct mg_connection;

/* A parsed base URL. */
typedef struct {
    char host[256]; /* without brackets for IPv6 */
    int port;
    int tls;          /* https:// */
    char prefix[512]; /* path before /v1/…, no trailing slash ("" for none) */
} rtc__url_t;

/* Parse "http[s]://host[:port][/prefix]". Returns 0 or RTC_EURL. */
int rtc__url_parse(const char *base, rtc__url_t *u);

/* Append the percent-encoding of s (RFC 3986 unreserved kept) to a malloc'd,
 * growing buffer. Returns 0 or RTC_ENOMEM. */
typedef struct {
    char *p;
    size_t len, cap;
} rtc__buf_t;
int rtc__buf_add(rtc__buf_t *b, const char *s, size_t n);
int rtc__buf_adds(rtc__buf_t *b, const char *s);
int rtc__buf_addenc(rtc__buf_t *b, const char *s);
void rtc__buf_free(rtc__buf_t *b);

/* Clear err (may be NULL) and set code, status, name (NULL → rtc_errname(code))
 * and a printf-style message. Returns code, so callers can `return rtc__fail(…)`. */
int rtc__fail(rtc_error_t *err, int code, int status, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The Bearer value for a credential: a signing key is hashed
 * (signkey-<env>-<sha256 hex>), anything else (a token) is used as is.
 * Returns a malloc'd string, or NULL (out of memory). */
char *rtc__bearer(const char *credential);

/* Initialise civetweb's client side once (with TLS if `tls` and available).
 * Returns 0, or RTC_ETLS if tls was asked for and cannot be had. */
int rtc__lib_init(int tls);

/* One HTTP exchange. `target` is the path+query (prefix already applied).
 * Either body/len, or a chunk producer for Transfer-Encoding: chunked.
 * On a reply (any status) returns 0 with *status and the body in *resp
 * (malloc'd, NUL-terminated, ≤ 1 MiB); otherwise RTC_ECONNECT / RTC_EIO /
 * RTC_ETIMEOUT / RTC_ECALLBACK / RTC_ENOMEM with err filled. Blocks. */
typedef struct {
    const char *method;
    const char *target;
    const char *bearer;       /* may be NULL */
    const char *content_type; /* may be NULL */
    const char *extra_header; /* one "Name: value" line without CRLF, or NULL */
    const void *body;
    size_t len;
    rtc_chunk_fn next; /* non-NULL → chunked body from next() */
    void *next_user;
    int timeout_ms;
} rtc__req_t;
int rtc__http(const rtc__url_t *u, const rtc__req_t *req, int *status, char **resp,
              size_t *resp_len, rtc_error_t *err);

/* Fill err from a non-2xx reply ({"error":name,"message":text} when JSON) and
 * return the matching code (401 → RTC_EUNAUTHORIZED, 403 → RTC_EFORBIDDEN,
 * else RTC_EHTTP). */
int rtc__http_refusal(int status, const char *body, size_t len, rtc_error_t *err);

#endif
