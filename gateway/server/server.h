/*
 * server.h — `rtgw serve`: the civetweb glue (HTTP routes, WebSocket and SSE
 * sessions, the socket writers and the heartbeat). gateway/server/ is the only
 * folder whose files include civetweb.h; srv.h lists its files.
 */
#ifndef RT_SERVER_H
#define RT_SERVER_H

#include "config.h"

/* Run the gateway until SIGTERM/SIGINT. `dev_key` is the throwaway key in dev
 * mode (or NULL). Returns a process exit code: 0 after a clean drain, 1 when
 * it could not start (the reason is logged as one line). */
int rt_server_run(rt_config_t *cfg);

#endif
