/*
 * detached.h — the client side of detached sessions: sessions that left
 * civetweb's threads after the handshake (rt__session_detach) and whose
 * socket now lives in their writer's epoll.
 */
#ifndef RT_DETACHED_H
#define RT_DETACHED_H

#include "conn.h"

#include <stdint.h>

/* An epoll event on a detached session's socket: read and handle the
 * client's frames (EPOLLIN), resume writing (EPOLLOUT while parked), and end
 * the session when the client goes. Its writer thread only. */
void rt__detached_event(rt_conn_t *c, uint32_t events);

#endif
