/*
 * session.h — the life of a session, shared by WebSocket (ws.c) and SSE
 * (sse.c): admission, the subscription, handing it to a writer, leaving
 * civetweb's thread, and its end.
 *
 * Order: rt__session_admit → rt__session_pin_positions → (the 101 or the SSE
 * headers go out) → rt__session_start → [rt__session_detach] →
 * rt__session_go → ... → rt__session_end.
 * All but rt__session_end run on the civetweb thread of the handshake;
 * rt__session_end runs on whoever ends the session (civetweb's close
 * handler, the SSE watcher, or the writer for a detached session).
 */
#ifndef RT_SESSION_H
#define RT_SESSION_H

#include "conn.h"
#include "http.h"

#include <stdbool.h>

struct mg_request_info;

/* Why a session was refused. */
typedef struct {
    rt_reason_t reason;
    char detail[96]; /* "" or a detail for the client and the log */
    int tok_err;     /* the token error (rt_tokens.h), or 0 */
} rt__refusal_t;

/* Checks shared by WebSocket and SSE: draining, capacity (total and per IP),
 * origin, token, `since`. On success fills c->claims, c->since, takes a
 * connection slot (c->slot_held) and returns true; otherwise fills *why and
 * returns false, having counted and logged nothing (what c holds, its per-IP
 * place, goes with it): the front door may try a handshake here and leave a
 * refusal to civetweb's thread (fastpath.c). Any thread. */
bool rt__session_admit(rt_server_t *srv, const rt__req_t *req, rt_conn_t *c, rt__refusal_t *why);
/* Count a refusal in the metrics (its reason, its token error, a refused
 * origin, which is also logged). Call once per refused handshake. */
void rt__session_refused(rt_server_t *srv, const rt__req_t *req, const rt__refusal_t *why);
/* The HTTP error a refused handshake is answered with: the status of its
 * reason (400 when the reason has none), the token error's name or the
 * reason's, and its text with the detail. */
void rt__session_refusal_resp(const rt__refusal_t *why, rt_resp_t *r);
/* The close an extended client's refused handshake gets after its 101: the
 * reason's code and "name: detail" (a browser reads those; a failed upgrade
 * is only 1006 to it). NULL when out of memory. */
rt_frame_t *rt__session_refusal_close(rt_reason_t reason, const char *detail);
/* Tell c the server is going away: {"kind":"closing"} (an SSE event for an
 * SSE session), then a close with shutting_down (1001). drain() for every
 * listed session, and the listing for one that comes after it. */
void rt__session_tell_closing(rt_server_t *srv, rt_conn_t *c);
/* Answer a refused handshake with that error. Returns the status sent. */
int rt__session_refuse_http(struct mg_connection *conn, const rt__refusal_t *why);
/* The subscription starts after the 101 (or the SSE headers) went out, but a
 * client may publish, or cause a publish, as soon as it sees them. Pin each
 * channel's position before answering; the session resumes from it. */
void rt__session_pin_positions(rt_server_t *srv, rt_conn_t *c);
/* Whether topic i of the claims is the first of its channel (claims list a
 * channel's topics together, but a channel may repeat). */
bool rt__session_first_of_channel(const rt_claims_t *cl, size_t i);
/* Find the socket, create the subscription, list the session in srv->conns. */
void rt__session_start(rt_server_t *srv, rt_conn_t *c, const struct mg_request_info *ri);
/* Take the socket away from civetweb's thread (plain TCP only). Call before
 * rt__session_go. 0, RT_E_ABSENT (TLS, or the socket is unknown) or RT_E_IO. */
int rt__session_detach(rt_conn_t *c, struct mg_connection *conn);
/* Subscribe, queue the ack (extended clients) ahead of any replay, and hand
 * the session to a writer (and its epoll, when detached). */
void rt__session_go(rt_server_t *srv, rt_conn_t *c);
/* Unsubscribe, mark GONE, unlist. The caller still holds its reference. */
void rt__session_end(rt_server_t *srv, rt_conn_t *c);

#endif
