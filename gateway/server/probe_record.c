/*
 * probe_record.c — doctor's probe record, server side (probe_record.h).
 *
 * Recording: civetweb's begin_request (http.c) hands every request here
 * first. A request with a valid probe id in X-Rtgw-Probe or in the rtgw_probe
 * query parameter is copied into srv->probes (core/probes.c, its own lock):
 * path, query present, token= present, HTTP version, Upgrade, the class of
 * Connection, and whether Authorization, Origin and X-Forwarded-* arrived.
 * No header value that can hold a secret is kept.
 *
 * Reading: GET /v1/realtime/doctor/probes/<id> (or any path that ends in
 * /doctor/probes/<id>: a proxy that rewrites the path on the way rewrites
 * this request too, and doctor still needs to read the record to show it),
 * authorised like a publish
 * with the signing key (rt_api_check_key: a constant-time comparison),
 * answers {"id":…,"requests":[…]} with at most RT_PROBES_PER_ID records.
 * Runs on civetweb request threads.
 */
#include "probe_record.h"
#include "clock.h"
#include "http.h"
#include "probes.h"

#include <civetweb.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_PREFIX "/v1/realtime/doctor/probes/"
#define PROBE_TAIL "/doctor/probes/"

/* The probe id of the request into id: the header first, else the query. */
static bool probe_id(struct mg_connection *conn, char *id, size_t cap, bool *in_header,
                     bool *in_query)
{
    const char *h = mg_get_header(conn, "X-Rtgw-Probe");
    char q[RT_PROBE_ID_MAX + 2] = "";
    const char *qs = mg_get_request_info(conn)->query_string;
    int ql = qs ? rt_query_param(qs, "rtgw_probe", 0, q, sizeof(q)) : -1;
    *in_header = h && rt_probe_id_valid(h, strlen(h));
    *in_query = ql > 0 && rt_probe_id_valid(q, (size_t)ql);
    if (*in_header)
        snprintf(id, cap, "%s", h);
    else if (*in_query)
        snprintf(id, cap, "%s", q);
    return *in_header || *in_query;
}

void rt__probe_note(rt_server_t *srv, struct mg_connection *conn)
{
    if (!srv->probes)
        return;
    rt_probe_rec_t r;
    memset(&r, 0, sizeof(r));
    if (!probe_id(conn, r.id, sizeof(r.id), &r.id_in_header, &r.id_in_query))
        return;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    r.at_ms = rt_clock_wall_ms();
    snprintf(r.method, sizeof(r.method), "%s", ri->request_method ? ri->request_method : "");
    const char *path = ri->local_uri_raw ? ri->local_uri_raw : "";
    r.path_cut = strlen(path) > RT_PROBE_PATH_MAX;
    snprintf(r.path, sizeof(r.path), "%.*s", RT_PROBE_PATH_MAX, path);
    r.query = ri->query_string && ri->query_string[0];
    char tok[2];
    r.query_token =
        r.query && rt_query_param(ri->query_string, "token", 0, tok, sizeof(tok)) != RT_E_ABSENT;
    snprintf(r.http_version, sizeof(r.http_version), "%s",
             ri->http_version ? ri->http_version : "");
    const char *up = mg_get_header(conn, "Upgrade");
    snprintf(r.upgrade, sizeof(r.upgrade), "%s", up ? up : "");
    r.connection = rt_probe_conn_class(mg_get_header(conn, "Connection"));
    r.authorization = mg_get_header(conn, "Authorization") != NULL;
    r.origin = mg_get_header(conn, "Origin") != NULL;
    r.x_forwarded_for = mg_get_header(conn, "X-Forwarded-For") != NULL;
    r.x_forwarded_proto = mg_get_header(conn, "X-Forwarded-Proto") != NULL;
    r.x_forwarded_host = mg_get_header(conn, "X-Forwarded-Host") != NULL;
    r.forwarded = mg_get_header(conn, "Forwarded") != NULL;
    rt_probes_add(srv->probes, &r); /* an id over its share is dropped */
}

static json_t *rec_json(const rt_probe_rec_t *r)
{
    return json_pack(
        "{s:I,s:s,s:s,s:b,s:b,s:b,s:s,s:s,s:s,s:b,s:b,s:{s:b,s:b,s:b,s:b},s:{s:b,s:b}}", "at_ms",
        (json_int_t)r->at_ms, "method", r->method, "path", r->path, "path_cut", r->path_cut,
        "query", r->query, "query_token", r->query_token, "http_version", r->http_version,
        "upgrade", r->upgrade, "connection", rt_probe_conn_name(r->connection), "authorization",
        r->authorization, "origin", r->origin, "forwarded", "x_forwarded_for", r->x_forwarded_for,
        "x_forwarded_proto", r->x_forwarded_proto, "x_forwarded_host", r->x_forwarded_host,
        "forwarded", r->forwarded, "id_in", "header", r->id_in_header, "query", r->id_in_query);
}

int rt__probes_handler(struct mg_connection *conn, void *cb)
{
    rt_server_t *srv = cb;
    if (!rt__method_is(conn, "GET")) {
        rt__send_error(conn, 405, "method_not_allowed", "use GET " PROBE_PREFIX "<id>");
        return 405;
    }
    rt_resp_t r = {0};
    if (rt_api_check_key(&srv->api, mg_get_header(conn, "Authorization"), &r) != 0) {
        int st = r.status;
        rt__send_resp(conn, &r);
        return st;
    }
    const char *uri = mg_get_request_info(conn)->local_uri;
    const char *at = strstr(uri, PROBE_TAIL);
    const char *id = at ? at + strlen(PROBE_TAIL) : "";
    if (!rt_probe_id_valid(id, strlen(id))) {
        rt__send_error(conn, 400, "bad_request",
                       "a probe id is 8-64 characters of A-Z, a-z, 0-9, - and _");
        return 400;
    }
    rt_probe_rec_t *recs = calloc(RT_PROBES_PER_ID, sizeof(*recs));
    json_t *arr = json_array();
    size_t n = recs ? rt_probes_get(srv->probes, id, recs, RT_PROBES_PER_ID) : 0;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, rec_json(&recs[i]));
    free(recs);
    json_t *o = json_pack("{s:s,s:o}", "id", id, "requests", arr);
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!body) {
        rt__send_error(conn, 500, "internal_error", "out of memory");
        return 500;
    }
    rt__send_json(conn, 200, body, strlen(body), NULL);
    free(body);
    return 200;
}

bool rt__probes_path(const char *uri)
{
    const char *at = uri ? strstr(uri, PROBE_TAIL) : NULL;
    return at && strchr(at + strlen(PROBE_TAIL), '/') == NULL;
}
