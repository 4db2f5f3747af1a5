/*
 * publish_stream.h — a streamed publish: POST /v1/realtime/publish with
 * Content-Type: text/stream. The body is published as it arrives, in chunks,
 * between a datastream-start and a datastream-end event.
 */
#ifndef RT_PUBLISH_STREAM_H
#define RT_PUBLISH_STREAM_H

#include "srv.h"

/* Read the body of conn, publish it to the prepared target t (borrowed, for
 * the length of the call), and answer the request. The request's civetweb
 * thread; blocks until the body ends. */
void rt__publish_stream(rt_server_t *srv, struct mg_connection *conn, const rt_publish_target_t *t);

#endif
