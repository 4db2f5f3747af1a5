/*
 * publish_stream.h — a streamed publish: POST /v1/realtime/publish with
 * Content-Type: text/stream. The body is published as it arrives, in chunks,
 * between a datastream-start and a datastream-end event; and publish/tee,
 * whose body goes out as raw events.
 */
#ifndef RT_PUBLISH_STREAM_H
#define RT_PUBLISH_STREAM_H

#include "srv.h"

/* Read the body of conn, publish it to the prepared target t (borrowed, for
 * the length of the call), and answer the request. The request's civetweb
 * thread; blocks until the body ends. */
void rt__publish_stream(rt_server_t *srv, struct mg_connection *conn, const rt_publish_target_t *t);

/* POST /v1/realtime/publish/tee: read the body of conn the same way and
 * publish it, as it arrives, as raw events on t (rt_api_tee_prepare), with no
 * stream start or end; answer 200 {"ok":true,"chunks","bytes"}. Same thread
 * and blocking as rt__publish_stream. */
void rt__publish_tee(rt_server_t *srv, struct mg_connection *conn, const rt_publish_target_t *t);

#endif
