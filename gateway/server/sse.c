/*
 * sse.c — SSE sessions (see sse.h). SSE is rtgw's own transport, so every
 * client of it speaks the extended protocol (the subscription ack comes as
 * an rtgw.subscribed event). A reconnecting EventSource resumes from its
 * Last-Event-ID header, like `since` does for WebSocket clients.
 *
 * Runs on the request's civetweb thread; the events themselves are written by
 * the session's writer thread.
 */
#define _GNU_SOURCE /* POLLRDHUP */
#include "sse.h"
#include "http.h"
#include "session.h"

#include <civetweb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

/* A session that could not detach: this thread only watches
 * for the client going away, then lets the writer flush a closing frame
 * (graceful shutdown) for a moment and ends the session. */
static void watch_until_gone(rt_server_t *srv, rt_conn_t *c)
{
    while (atomic_load(&c->state) == RT_CONN_OPEN && !atomic_load(&srv->stop)) {
        if (c->fd < 0) {
            usleep(200000);
            continue;
        }
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN | POLLRDHUP};
        int n = poll(&pfd, 1, 500);
        if (n > 0) {
            /* Read and drop what the client sends (through the recv hook:
             * decrypted, for TLS); a peek would see the same bytes forever. */
            char b[512];
            if ((pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) ||
                recv(c->fd, b, sizeof(b), MSG_DONTWAIT) == 0)
                break;
        }
    }
    for (int i = 0; i < 20 && atomic_load(&c->state) == RT_CONN_CLOSING && !c->close_sent; i++)
        usleep(50000);
    rt__session_end(srv, c);
}

int rt__sse_handler(struct mg_connection *conn, void *cb)
{
    rt_server_t *srv = cb;
    if (rt__method_is(conn, "OPTIONS"))
        return rt__handle_options(conn);
    if (!rt__method_is(conn, "GET")) {
        rt__send_error(conn, 405, "method_not_allowed", "use GET /v1/realtime/sse?token=…");
        return 405;
    }
    const struct mg_request_info *cri = mg_get_request_info(conn);
    rt_conn_t *c = rt__conn_new(srv, conn, cri->remote_addr, cri->remote_port, true);
    if (!c) {
        rt__send_error(conn, 503, "internal_error", "out of memory");
        return 503;
    }
    c->ext = true; /* SSE is rtgw's own transport: every client of it opted in */
    rt__refusal_t why;
    rt__req_t req;
    rt__req_of(conn, &req);
    if (!rt__session_admit(srv, &req, c, &why)) {
        rt__session_refused(srv, &req, &why);
        int st = rt__session_refuse_http(conn, &why);
        rt__conn_unref(c);
        return st;
    }
    const char *lei = mg_get_header(conn, "Last-Event-ID");
    if (lei && c->nsince < 16 && rt_pos_parse(rt_slice_cstr(lei), &c->since[c->nsince]) == 0)
        c->nsince++;
    rt__session_pin_positions(srv, c);
    const char *origin = rt__cors_origin(srv, conn);
    mg_printf(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache, "
        "no-transform\r\n"
        "X-Accel-Buffering: no\r\nConnection: close\r\n" RT__MARK_HEADER "%s%s%s\r\n: rtgw\n\n",
        origin ? "Access-Control-Allow-Origin: " : "", origin ? origin : "", origin ? "\r\n" : "");
    rt__session_start(srv, c, mg_get_request_info(conn));
    if (rt__session_detach(c, conn) == 0) {
        /* The writer thread owns it now (writes, and sees the client go). */
        rt__session_go(srv, c);
        rt__conn_unref(c);
        return 200;
    }
    rt__session_go(srv, c);
    watch_until_gone(srv, c);
    rt__conn_unref(c);
    return 200;
}
