/*
 * heartbeat.h — the heartbeat thread: pings, idle (no pong) detection, token
 * expiry, the end of closings a peer did not finish, and periodic sweeps of
 * the rate limiters and the hub.
 */
#ifndef RT_HEARTBEAT_H
#define RT_HEARTBEAT_H

#include "srv.h"

/* Thread main; arg is the rt_server_t. Returns once srv->stop is set. */
void *rt__heartbeat_main(void *arg);
/* Set up the heartbeat's sleep (srv's heartbeat_lock and _cond), before its
 * thread starts. */
void rt__heartbeat_init(rt_server_t *srv);
/* Wake the heartbeat's sleep after srv->stop was set, so that joining it
 * does not wait out a tick (up to 1 s). */
void rt__heartbeat_wake(rt_server_t *srv);

#endif
