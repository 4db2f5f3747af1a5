/*
 * probe_record.h — the server side of doctor's probe record (core/probes.h): note
 * each request that carries a probe id, and answer
 * GET /v1/realtime/doctor/probes/<id> with what arrived.
 */
#ifndef RT_SERVER_PROBE_RECORD_H
#define RT_SERVER_PROBE_RECORD_H

#include "srv.h"

/* Record the request's shape when it carries X-Rtgw-Probe or rtgw_probe=
 * (a valid id); any other request costs one header lookup. Called from
 * civetweb's begin_request on the request's thread. */
void rt__probe_note(rt_server_t *srv, struct mg_connection *conn);

/* True if uri ends in /doctor/probes/<one segment>: the record's route, also
 * under a path a proxy rewrote (the catch-all route hands it over). */
bool rt__probes_path(const char *uri);

/* The route GET /v1/realtime/doctor/probes/<id> (cb: the server). Returns
 * the status sent. */
int rt__probes_handler(struct mg_connection *conn, void *cb);

#endif
