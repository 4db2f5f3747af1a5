/*
 * ws.h — WebSocket sessions on GET /v1/realtime/connect: civetweb's
 * callbacks, and the handling of one client frame, whoever read it.
 */
#ifndef RT_WS_H
#define RT_WS_H

#include "conn.h"

#include <stdbool.h>
#include <stddef.h>

/* Register the WebSocket callbacks for uri on srv->ctx (subprotocol
 * rtgw.v1 offered). Main thread, once. */
void rt__ws_register(rt_server_t *srv, const char *uri);

/* One client frame of a WebSocket session (payload unmasked; fin and opcode
 * from its header), from civetweb's thread or, for a detached session, its
 * writer thread: pings, close, extended-protocol messages, the per-session
 * frame rate and size limits, and the payload rules of RFC 6455 (UTF-8 text
 * across fragments, valid close codes: a violation closes with 1007 or 1002).
 * Returns false when the session should end (the client closed it), true to
 * go on. */
bool rt__ws_session_frame(rt_server_t *srv, rt_conn_t *c, bool fin, int opcode, char *data,
                          size_t len);

#endif
