/*
 * notify.h — systemd's readiness protocol (sd_notify), by hand: one datagram
 * to the AF_UNIX socket named by $NOTIFY_SOCKET, no libsystemd. Without that
 * variable (not started by systemd with Type=notify) it does nothing. Any
 * thread; never blocks (MSG_DONTWAIT).
 */
#ifndef RT_NOTIFY_H
#define RT_NOTIFY_H

/* Send state ("READY=1", "RELOADING=1", "STOPPING=1", ...). 0 when sent or
 * when there is no $NOTIFY_SOCKET; -1 when it could not be sent. */
int rt__notify(const char *state);

#endif
