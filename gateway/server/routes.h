/*
 * routes.h — the gateway's URLs and their handlers.
 */
#ifndef RT_ROUTES_H
#define RT_ROUTES_H

#include "srv.h"

/* Register every route (HTTP, SSE, WebSocket) on srv->ctx, with srv as
 * each handler's callback data. Main thread, once, after civetweb started. */
void rt__routes_register(rt_server_t *srv);

#endif
