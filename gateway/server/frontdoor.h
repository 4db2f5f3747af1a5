/*
 * frontdoor.h — rtgw's front door: the public listening socket, and every
 * connection from its accept until its first request head has arrived, at no
 * thread's cost. Ready connections are handed to civetweb, which listens on a
 * private loopback port (the hand-over: sockhook.c). Why, the caps and the
 * deadline: the top of frontdoor.c.
 *
 * One rt_frontdoor_t per server (srv->frontdoor), built, started and freed by
 * server.c on the main thread; it runs one thread of its own.
 */
#ifndef RT_FRONTDOOR_H
#define RT_FRONTDOOR_H

#include "config.h"

#include <stddef.h>

/* The largest request head civetweb reads (its max_request_size): a longer
 * one is handed over unfinished, and civetweb refuses it. */
#define RT__MAX_REQUEST_HEAD 32768

typedef struct rt_frontdoor_s rt_frontdoor_t;

/* Bind and listen on cfg's address (RTGW_LISTEN: SO_REUSEADDR, IPv6 only for
 * an IPv6 address, backlog 1024). NULL when it cannot, with why in err (as
 * civetweb words it: "cannot bind to host:port: 98 (Address already in use)").
 * cfg is borrowed for the front door's life. Main thread; accepts nothing
 * until rt__frontdoor_start. */
rt_frontdoor_t *rt__frontdoor_new(const rt_config_t *cfg, char *err, size_t cap);

typedef struct rt_server_s rt_server_t;
/* Start the front door's thread, handing ready connections to civetweb's
 * listener at 127.0.0.1:private_port (rt__sockhook_handover_begin first),
 * except the upgrades and mints it answers itself for srv (fastpath.h; NULL:
 * none). 0, or a negative RT_E_* value. Main thread. */
int rt__frontdoor_start(rt_frontdoor_t *d, int private_port, rt_server_t *srv);

typedef struct rt_tls_s rt_tls_t;
/* Take back socket fd (with its TLS, or NULL), a kept-alive connection
 * civetweb has finished a request on and that has sent nothing since: the
 * front door holds it, at no thread's cost, until its next request head has
 * arrived, then hands it to civetweb again; or closes it
 * RTGW_REQUEST_TIMEOUT_MS from now. Any thread (a civetweb worker's poll,
 * sockhook.c). 0, or RT_E_NOMEM (fd and tls still the caller's). */
int rt__frontdoor_adopt(rt_frontdoor_t *d, int fd, rt_tls_t *tls);
/* Take socket fd (with its TLS, or NULL), answered and half-closed, to read
 * and drop what its client still sends until it closes, max bytes, or ms
 * from now (linger.h). Any thread (rt__sockhook_linger). 0, or RT_E_NOMEM
 * (fd and tls still the caller's). */
int rt__frontdoor_linger(rt_frontdoor_t *d, int fd, rt_tls_t *tls, int64_t ms, size_t max);

/* Stop accepting, close every connection not yet handed over, join the
 * thread and free d. Before civetweb stops. Main thread; NULL is a no-op. */
void rt__frontdoor_free(rt_frontdoor_t *d);

#endif
