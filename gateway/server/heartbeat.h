/*
 * heartbeat.h — the heartbeat thread: pings, idle (no pong) detection, token
 * expiry, the end of closings a peer did not finish, and periodic sweeps of
 * the rate limiters and the hub.
 */
#ifndef RT_HEARTBEAT_H
#define RT_HEARTBEAT_H

/* Thread main; arg is the rt_server_t. Returns once srv->stop is set. */
void *rt__heartbeat_main(void *arg);

#endif
