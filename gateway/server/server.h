/*
 * server.h — `rtgw serve`: the civetweb glue (HTTP routes, WebSocket and SSE
 * sessions, the socket writers and the heartbeat). gateway/server/ is the only
 * folder whose files include civetweb.h; srv.h lists its files.
 */
#ifndef RT_SERVER_H
#define RT_SERVER_H

#include "config.h"

/* Run the gateway with cfg (borrowed; in dev mode cfg holds the throwaway
 * key) until SIGTERM/SIGINT. Blocks on the calling thread. Returns a process exit code: 0 after a
 * clean drain, 1 when it could not start (the reason is logged as one line). */
int rt_server_run(rt_config_t *cfg);

#endif
