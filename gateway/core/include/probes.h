/*
 * probes.h — what arrived: a short, bounded record of the requests that
 * carried an `rtgw doctor` probe id (X-Rtgw-Probe header or rtgw_probe query
 * parameter), so that doctor can compare what it sent with what reached the
 * gateway and name the hop that changed it.
 *
 * A record holds the shape of a request, never a secret: the path, whether a
 * query (and a token= in it) arrived, the HTTP version, the Upgrade value, the
 * class of the Connection value, and the presence of Authorization, Origin and
 * the X-Forwarded-* headers. Values of Authorization and of the token are
 * never stored.
 *
 * A ring of RT_PROBES_CAP records, oldest overwritten; at most
 * RT_PROBES_PER_ID records per id (a client that sends one id many times
 * cannot fill the ring with it). Thread-safe: one mutex, held only to copy a
 * record in or out. The ring owns its records; rt_probes_free frees it.
 */
#ifndef RT_PROBES_H
#define RT_PROBES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RT_PROBES_CAP 64
#define RT_PROBES_PER_ID 16
#define RT_PROBE_ID_MAX 64 /* an id: 8-64 characters of [A-Za-z0-9_-] */
#define RT_PROBE_PATH_MAX 200

/* The Connection header as it arrived, by class (its value may be a list). */
typedef enum {
    RT_PROBE_CONN_ABSENT,
    RT_PROBE_CONN_EMPTY,
    RT_PROBE_CONN_UPGRADE, /* the list holds "upgrade" */
    RT_PROBE_CONN_KEEPALIVE,
    RT_PROBE_CONN_CLOSE,
    RT_PROBE_CONN_OTHER
} rt_probe_conn_t;

typedef struct {
    char id[RT_PROBE_ID_MAX + 1];
    int64_t at_ms; /* wall clock */
    char method[12];
    char path[RT_PROBE_PATH_MAX + 1]; /* as it arrived, before %-decoding; cut if longer */
    bool path_cut;
    bool query;       /* a query string arrived */
    bool query_token; /* the query held a token= parameter (its value is not kept) */
    bool id_in_header, id_in_query;
    char http_version[8]; /* "1.1", "1.0" */
    char upgrade[24];     /* the Upgrade value, cut; "" when absent */
    rt_probe_conn_t connection;
    bool authorization, origin, x_forwarded_for, x_forwarded_proto, x_forwarded_host, forwarded;
} rt_probe_rec_t;

typedef struct rt_probes_s rt_probes_t;

/* An empty ring, or NULL when out of memory. */
rt_probes_t *rt_probes_new(void);
void rt_probes_free(rt_probes_t *p);

/* True if id is 8-64 characters of [A-Za-z0-9_-]. */
bool rt_probe_id_valid(const char *id, size_t len);

/* The class of a Connection header value (NULL: absent). */
rt_probe_conn_t rt_probe_conn_class(const char *value);
/* "absent", "empty", "upgrade", "keep-alive", "close", "other". */
const char *rt_probe_conn_name(rt_probe_conn_t c);

/* Copy rec in (its id must be valid). 0, or RT_E_LIMIT when the ring already
 * holds RT_PROBES_PER_ID records of that id (the record is dropped). */
int rt_probes_add(rt_probes_t *p, const rt_probe_rec_t *rec);

/* Copy the records of id, oldest first, into out (at most max). Returns how
 * many. */
size_t rt_probes_get(rt_probes_t *p, const char *id, rt_probe_rec_t *out, size_t max);

#endif
