/*
 * httphead.h — the pure rules rtgw applies to an HTTP/1.1 request head before
 * civetweb acts on it, with no HTTP library types, so they are unit-tested and
 * fuzzed (tests/fuzz/fuzz_http_head.c):
 * - where a head ends, found incrementally as its bytes arrive (the front
 *   door holds a connection until then, gateway/server/frontdoor.c);
 * - whether its framing headers make the body's length ambiguous (RFC 9112
 *   §6.3; civetweb's begin_request guard refuses such a request,
 *   gateway/server/http.c);
 * - a strict parse of the plainest heads, the only ones the front door
 *   answers itself (gateway/server/fastpath.c); anything else is civetweb's.
 * Any thread; no state but the caller's.
 */
#ifndef RT_HTTPHEAD_H
#define RT_HTTPHEAD_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    RT_HEAD_WAIT,     /* no end yet: more bytes are needed */
    RT_HEAD_COMPLETE, /* the head ends ("\r\n\r\n" or "\n\n", as civetweb reads it) */
    RT_HEAD_EARLY,    /* a byte civetweb refuses in a head */
    RT_HEAD_TOO_LARGE /* `max` bytes without an end */
} rt_head_state_t;

/* Where a scan stopped: zero it for a new head. */
typedef struct {
    uint32_t tail;    /* the last four bytes scanned */
    uint32_t scanned; /* bytes of the head scanned so far */
} rt_head_scan_t;

/* Scan buf[0..n), the head's bytes from its first (n only grows between
 * calls; the bytes already scanned are not looked at again). A head is
 * complete only if it ends within its first max bytes, however the bytes
 * arrive. */
rt_head_state_t rt_head_scan(rt_head_scan_t *s, const uint8_t *buf, size_t n, size_t max);

typedef struct {
    const char *name, *value; /* the layout of civetweb's struct mg_header */
} rt_http_header_t;

/* Why the framing of a request with these headers is ambiguous, or NULL:
 * a header name with white space or a control character, a Content-Length
 * that is not a decimal number, two different Content-Length values,
 * Transfer-Encoding twice or other than "chunked", or Content-Length and
 * Transfer-Encoding together. */
const char *rt_http_framing_problem(const rt_http_header_t *h, int n);

enum { RT_HTTP_STRICT_MAX_HEADERS = 63 }; /* civetweb keeps 64 and rtgw refuses 64 */

/* A request head parsed by rt_http_parse_strict: pointers into its buffer. */
typedef struct {
    const char *method;       /* upper-case letters */
    const char *uri_raw;      /* the path: '/' then visible ASCII, no '%' or '#' */
    const char *query;        /* after the first '?', or NULL */
    const char *http_version; /* "1.1" or "1.0" */
    size_t head_len;          /* bytes up to and with the blank line */
    int nheaders;
    rt_http_header_t headers[RT_HTTP_STRICT_MAX_HEADERS]; /* leading spaces skipped */
} rt_http_strict_t;

/* Parse the head at the start of buf[0..n) in place (NUL-terminating its
 * parts), if it has the strict shape: "METHOD SP /path[?query] SP
 * HTTP/1.x" then "Name: value" lines, every line ending in CRLF, names of
 * RFC 9110 token characters, no folding, no control byte (HT included) in
 * a value, spaces before it skipped and none after it (civetweb keeps them),
 * at most RT_HTTP_STRICT_MAX_HEADERS headers, and a blank line within n.
 * 0 with *out filled; -1 otherwise (buf may then be changed). Stricter than
 * civetweb, never looser: what it takes, civetweb reads the same way. */
int rt_http_parse_strict(char *buf, size_t n, rt_http_strict_t *out);

#endif
