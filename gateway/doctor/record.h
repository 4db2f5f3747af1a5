/*
 * record.h — the other end's evidence: every doctor request carries the run's
 * probe id (X-Rtgw-Probe and rtgw_probe=), and rtgw keeps what arrived of
 * them (docs/protocol.md, section 12). This reads that record back with the
 * signing key and finds the request for one path, so the checks can compare
 * what was sent with what arrived.
 *
 * Private to rt_doctor. Blocking up to the target's timeout, single-threaded.
 * The signing key goes only into an Authorization header, which is wiped.
 */
#ifndef RT_DOCTOR_RECORD_H
#define RT_DOCTOR_RECORD_H

#include "checks.h"

#include <stdbool.h>
#include <stddef.h>

#define RT__RECORD_MAX 16

/* What arrived of one request. */
typedef struct {
    char method[12], path[208], http_version[8], upgrade[24], connection[16];
    bool query, query_token, authorization, origin, xff, id_in_header, id_in_query;
} rt__arrived_t;

typedef struct {
    int status;     /* 0 read; RT__REC_* otherwise */
    char why[1024]; /* when not read: what answered instead */
    rt__arrived_t req[RT__RECORD_MAX];
    int n;
} rt__record_t;

#define RT__REC_NO_KEY (-1)    /* no --signing-key: the record cannot be read */
#define RT__REC_AUTH_GONE (-2) /* rtgw said "missing Authorization": a proxy strips it */
#define RT__REC_UNREAD (-3)    /* another answer (not rtgw, older rtgw, network error) */

/* Read the record of this run's probe id into rec (overwritten). */
void rt__record_read(rt__doctor_t *d, rt__record_t *rec);
/* The same for the WebSocket upgrade, which carries its own id (the run's id
 * with "-ws"), so that its arrival is not confused with the plain GETs of
 * the same path. */
void rt__record_read_upgrade(rt__doctor_t *d, rt__record_t *rec);

/* The upgrade's probe id into out. */
void rt__probe_upgrade_id(const rt__doctor_t *d, char *out, size_t cap);

/* The last request in rec with this method whose path (as it arrived)
 * starts with prefix, e.g. "/v1/realtime/connect". NULL when none. */
const rt__arrived_t *rt__record_find(const rt__record_t *rec, const char *method,
                                     const char *sent_prefix);

/* The last request in rec (the run's latest that arrived), or NULL. Doctor
 * is single-threaded: read right after a request, it is that request if it
 * arrived at all (whatever its path became on the way). */
const rt__arrived_t *rt__record_last(const rt__record_t *rec);

/* The path the run's requests carry: base plus "?rtgw_probe=<id>" (or
 * "&rtgw_probe=<id>" when base has a query) into out. */
void rt__probe_path(const rt__doctor_t *d, const char *base, char *out, size_t cap);

#endif
