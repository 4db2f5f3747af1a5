/*
 * sse.h — GET /v1/realtime/sse: a session over Server-Sent Events.
 */
#ifndef RT_SSE_H
#define RT_SSE_H

struct mg_connection;

/* civetweb request handler (callback data: the server). Admits the session
 * like a WebSocket one, sends the event-stream headers, and hands the session
 * to a writer. A detached session returns at once; otherwise the request
 * thread stays to watch for the client going away. Returns the HTTP status. */
int rt__sse_handler(struct mg_connection *conn, void *cb);

#endif
