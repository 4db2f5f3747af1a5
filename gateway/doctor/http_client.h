/*
 * http_client.h — the doctor's small HTTP/1.1 client: one request per
 * connection (Connection: close), a response head read byte-exact (a proxy's
 * own answers are what the checks judge), bodies by Content-Length, chunked
 * or up to end of stream, and an incremental chunked decoder for streams.
 *
 * Private to rt_doctor. Blocking up to the target's timeout, single-threaded.
 * Results are 0 or a negative RT_E_* value (err.h) unless stated otherwise.
 * A response owns its buffers: release it with rt__http_resp_free.
 */
#ifndef RT_DOCTOR_HTTP_CLIENT_H
#define RT_DOCTOR_HTTP_CLIENT_H

#include "net.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer, always NUL-terminated once non-empty. Owns p. */
typedef struct {
    char *p;
    size_t len, cap;
} rt__buf_t;

/* Append n bytes: 0 or RT_E_NOMEM. */
int rt__buf_add(rt__buf_t *b, const void *p, size_t n);
void rt__buf_free(rt__buf_t *b);

typedef struct {
    int status;
    char head[16384]; /* status line and headers, NUL-terminated */
    rt__buf_t body;
    rt__buf_t extra; /* bytes after the head when the body is not read (101, streams) */
} rt__http_resp_t;

void rt__http_resp_free(rt__http_resp_t *r);

/* Case-insensitive header lookup in a head; copies the trimmed value into
 * out (cap may be 0 to test presence). True if the header is there. */
bool rt__http_header(const char *head, const char *name, char *out, size_t cap);

/* Read the head into r->head and the bytes after it into r->extra. r starts
 * zeroed; after RT_E_TIMEOUT a later call goes on where this one stopped.
 * 0, RT_E_CLOSED before a full head, RT_E_TIMEOUT, or RT_E_PROTOCOL (not
 * HTTP, or a head too large). */
int rt__http_read_head(rt__net_conn_t *c, rt__http_resp_t *r, int64_t deadline);

/* Read the body the head announces (Content-Length, chunked or up to end of
 * stream; at most about 1 MiB) into r->body, starting with r->extra.
 * 0, RT_E_CLOSED before it was complete, RT_E_TIMEOUT, or RT_E_PROTOCOL (bad
 * chunking). r->body is non-NULL afterwards. */
int rt__http_read_body(rt__net_conn_t *c, rt__http_resp_t *r, int64_t deadline);

/* The sentence for a read_head/read_body error, for the report. */
const char *rt__http_strerror(int rc);

/* One request on its own connection to t: method, path, extra header lines
 * (each ending in \r\n, may be NULL) and a body (may be NULL). r is
 * overwritten; free it with rt__http_resp_free whatever the result.
 * 0 when a response was read, else a negative RT_E_* with why filled. */
int rt__http_do(rt__target_t *t, const char *method, const char *path, const char *headers,
                const char *body, rt__http_resp_t *r, char *why, size_t cap);

/* Chunked transfer decoding, fed incrementally. Start zeroed. */
typedef struct {
    int state; /* 0 size line, 1 data, 2 CRLF after data, 3 trailers/done */
    size_t left;
    char line[40];
    size_t ll;
} rt__chunked_t;

/* Feed n bytes; decoded bytes are appended to out. 1 the last chunk was seen,
 * 0 more to come, RT_E_PROTOCOL on a size line too long. */
int rt__chunked_feed(rt__chunked_t *ch, const char *p, size_t n, rt__buf_t *out);

#endif
