/*
 * reload.h — SIGHUP: re-read the env file and swap in its signing keys
 * (current + fallback) and allowed origins, without touching a connection.
 */
#ifndef RT_RELOAD_H
#define RT_RELOAD_H

#include "srv.h"

/* Load srv->cfg->env_file again (./.env when none was given) exactly as
 * `rtgw serve` would; if it is valid, make its keys and origins current
 * (srv->live) and log one line naming what changed (never a value), plus the
 * variables that changed but take a restart. If it is not, keep the running
 * snapshot and log why, one line per problem. Ignored in --dev. Main thread
 * (rt_server_run's loop); blocks only on reading the file. */
void rt__reload(rt_server_t *srv);

#endif
