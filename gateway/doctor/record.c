/*
 * record.c — reading rtgw's record of the run's probe requests (record.h).
 * GET /v1/realtime/doctor/probes/<id> with the signing key; the request
 * itself carries no probe id (it would record itself).
 */
#include "record.h"
#include "describe.h"
#include "http_client.h"
#include "who.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rt__probe_path(const rt__doctor_t *d, const char *base, char *out, size_t cap)
{
    snprintf(out, cap, "%s%crtgw_probe=%s", base, strchr(base, '?') ? '&' : '?', d->net.probe);
}

static void copy_str(json_t *o, const char *k, char *out, size_t cap)
{
    const char *s = json_string_value(json_object_get(o, k));
    snprintf(out, cap, "%s", s ? s : "");
}

static void parse_one(json_t *o, rt__arrived_t *a)
{
    memset(a, 0, sizeof(*a));
    copy_str(o, "method", a->method, sizeof(a->method));
    copy_str(o, "path", a->path, sizeof(a->path));
    copy_str(o, "http_version", a->http_version, sizeof(a->http_version));
    copy_str(o, "upgrade", a->upgrade, sizeof(a->upgrade));
    copy_str(o, "connection", a->connection, sizeof(a->connection));
    a->query = json_is_true(json_object_get(o, "query"));
    a->query_token = json_is_true(json_object_get(o, "query_token"));
    a->authorization = json_is_true(json_object_get(o, "authorization"));
    a->origin = json_is_true(json_object_get(o, "origin"));
    a->xff = json_is_true(json_object_get(json_object_get(o, "forwarded"), "x_forwarded_for"));
    json_t *in = json_object_get(o, "id_in");
    a->id_in_header = json_is_true(json_object_get(in, "header"));
    a->id_in_query = json_is_true(json_object_get(in, "query"));
}

/* A 200 from rtgw: its requests into rec. */
static void parse_record(const rt__http_resp_t *r, rt__record_t *rec)
{
    json_t *j = json_loadb(r->body.p, r->body.len, 0, NULL);
    json_t *arr = json_object_get(j, "requests");
    if (!json_is_array(arr)) {
        rec->status = RT__REC_UNREAD;
        snprintf(rec->why, sizeof(rec->why), "rtgw's record is not the expected JSON");
    }
    for (size_t i = 0; json_is_array(arr) && i < json_array_size(arr) && rec->n < RT__RECORD_MAX;
         i++)
        parse_one(json_array_get(arr, i), &rec->req[rec->n++]);
    json_decref(j);
}

void rt__probe_upgrade_id(const rt__doctor_t *d, char *out, size_t cap)
{
    snprintf(out, cap, "%s-ws", d->net.probe);
}

static void record_read_id(rt__doctor_t *d, const char *id, rt__record_t *rec);

void rt__record_read(rt__doctor_t *d, rt__record_t *rec)
{
    record_read_id(d, d->net.probe, rec);
}

void rt__record_read_upgrade(rt__doctor_t *d, rt__record_t *rec)
{
    char id[48];
    rt__probe_upgrade_id(d, id, sizeof(id));
    record_read_id(d, id, rec);
}

static void record_read_id(rt__doctor_t *d, const char *id, rt__record_t *rec)
{
    memset(rec, 0, sizeof(*rec));
    if (!d->o->signing_key) {
        rec->status = RT__REC_NO_KEY;
        return;
    }
    rt__target_t t = d->net; /* a copy without the probe id */
    t.probe[0] = 0;
    char hdr[1024], path[128], why[512];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", d->o->signing_key);
    snprintf(path, sizeof(path), "/v1/realtime/doctor/probes/%s", id);
    rt__http_resp_t r;
    int rc = rt__http_do(&t, "GET", path, hdr, NULL, &r, why, sizeof(why));
    sodium_memzero(hdr, sizeof(hdr));
    rt__who_t w;
    if (rc != 0) {
        rec->status = RT__REC_UNREAD;
        snprintf(rec->why, sizeof(rec->why), "GET %s: %.400s", path, why);
    } else if (r.status == 200 && rt__is_rtgw(&r)) {
        parse_record(&r, rec);
    } else if (r.status == 401 && rt__is_rtgw(&r) && r.body.p &&
               strstr(r.body.p, "missing Authorization")) {
        rec->status = RT__REC_AUTH_GONE;
        snprintf(rec->why, sizeof(rec->why),
                 "rtgw answered the record request 401 \"missing Authorization\" though doctor "
                 "sent it");
    } else {
        rt__who(&r, &w);
        rec->status = RT__REC_UNREAD;
        snprintf(rec->why, sizeof(rec->why), "GET /v1/realtime/doctor/probes/…: HTTP %d from %s",
                 r.status, w.what);
    }
    rt__http_resp_free(&r);
}

const rt__arrived_t *rt__record_last(const rt__record_t *rec)
{
    return rec->n > 0 ? &rec->req[rec->n - 1] : NULL;
}

const rt__arrived_t *rt__record_find(const rt__record_t *rec, const char *method,
                                     const char *sent_prefix)
{
    for (int i = rec->n - 1; i >= 0; i--)
        if (strncmp(rec->req[i].path, sent_prefix, strlen(sent_prefix)) == 0 &&
            strcmp(rec->req[i].method, method) == 0)
            return &rec->req[i];
    return NULL;
}
