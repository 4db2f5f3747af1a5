/*
 * session.c — admission and the life of a session (see session.h).
 *
 * Capacity: srv->nconns counts sessions from admission (c->slot_held) to
 * their end; the slot is taken atomically at the end of admission, so
 * concurrent handshakes cannot all pass the limit. srv->ip_conns counts them
 * per client IP (c->ip_held). rt__conn_unref gives back what a session that
 * never started still holds.
 *
 * Detaching (rt__session_detach): civetweb serves each connection with a
 * thread of its own for as long as it is open, which costs a thread stack per
 * subscriber and caps subscribers at the process's thread limit. After the
 * handshake rtgw takes the socket over: it keeps a duplicate of the
 * descriptor, and points civetweb's descriptor number at one end of a closed
 * socketpair, so civetweb's read loop sees end-of-stream at once, runs the
 * close handler and frees the thread (its graceful close shuts the
 * socketpair, not the client's socket). From then on the session's writer
 * thread reads the client's frames from its epoll too (detached.c). A TLS
 * session's TLS state (tlsconn.h: rtgw terminates TLS, not civetweb) goes
 * with it: its writer encrypts and decrypts from then on.
 *
 * Locks: srv->conns_lock for the list of sessions; c->wlock while the socket
 * changes hands. The bus and hub lock themselves.
 */
#include "session.h"
#include "clock.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "sockhook.h"
#include "tlsconn.h"
#include "writer.h"

#include <civetweb.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- admission ---- */

/* Draining, and capacity: the total (a fast path; the slot is taken by
 * take_slot) and per client IP. */
static bool admit_capacity(rt_server_t *srv, const rt__req_t *req, rt_conn_t *c, rt__refusal_t *why)
{
    if (atomic_load(&srv->draining)) {
        why->reason = RT_REASON_SHUTTING_DOWN;
        return false;
    }
    if (atomic_load(&srv->nconns) >= srv->cfg->max_connections) {
        why->reason = RT_REASON_OVER_CAPACITY;
        snprintf(why->detail, sizeof(why->detail), "limit %lld (RTGW_MAX_CONNECTIONS)",
                 (long long)srv->cfg->max_connections);
        return false;
    }
    rt__req_client_ip(srv, req, c->ip, sizeof(c->ip));
    if (!c->ip_held) {
        if (!rt_conncount_acquire(srv->ip_conns, c->ip)) {
            why->reason = RT_REASON_OVER_CAPACITY;
            snprintf(why->detail, sizeof(why->detail),
                     "per-IP limit %lld (RTGW_MAX_CONNECTIONS_PER_IP)",
                     (long long)srv->cfg->max_connections_per_ip);
            return false;
        }
        c->ip_held = true;
    }
    return true;
}

static bool admit_origin(rt_server_t *srv, const rt__req_t *req, rt__refusal_t *why)
{
    if (rt_livecell_origin_allowed(srv->live, rt__req_header(req, "Origin")))
        return true;
    why->reason = RT_REASON_ORIGIN_NOT_ALLOWED;
    return false;
}

/* The token, from ?token= or Authorization: Bearer, verified into c->claims. */
static bool admit_token(rt_server_t *srv, const rt__req_t *req, rt_conn_t *c, rt__refusal_t *why)
{
    /* On the heap, sized by the token limit: this runs on a connection thread
     * whose small stack also has to carry token verification below it. One
     * byte over the limit lets verification name the refusal (too large). */
    size_t tcap = srv->topts.max_token_bytes + 2;
    char *tok = malloc(tcap);
    if (!tok) {
        why->reason = RT_REASON_INTERNAL;
        return false;
    }
    int tl = rt_query_param(req->query, "token", 0, tok, tcap);
    rt_slice_t cred;
    if (tl >= 0) {
        cred = (rt_slice_t){tok, (size_t)tl};
    } else if (tl != RT_E_ABSENT) { /* too long, or a bad %-escape */
        free(tok);
        why->reason = RT_REASON_TOKEN_INVALID;
        why->tok_err = RT_TOK_ETOO_LARGE;
        snprintf(why->detail, sizeof(why->detail), "%s", rt_tok_errname(RT_TOK_ETOO_LARGE));
        return false;
    } else {
        cred = rt_api_bearer(rt__req_header(req, "Authorization"));
    }
    if (cred.len == 0) {
        free(tok);
        why->reason = RT_REASON_TOKEN_MISSING;
        return false;
    }
    rt_live_t *keys = rt_livecell_get(srv->live);
    int rc = rt_token_verify(rt_live_ring(keys), &srv->topts, cred, rt_clock_wall_ms() / 1000,
                             &c->claims);
    rt_live_unref(keys);
    sodium_memzero(tok, tl > 0 ? (size_t)tl : 0);
    free(tok);
    if (rc) {
        why->tok_err = rc;
        why->reason = rc == RT_TOK_EEXPIRED ? RT_REASON_TOKEN_EXPIRED : RT_REASON_TOKEN_INVALID;
        snprintf(why->detail, sizeof(why->detail), "%s", rt_tok_errname(rc));
        return false;
    }
    c->token_exp = c->claims.exp;
    return true;
}

/* since=<id> may repeat (one per channel; a comma list works too). */
static bool admit_since(const rt__req_t *req, rt_conn_t *c, rt__refusal_t *why)
{
    const char *query = req->query;
    c->nsince = 0;
    for (int i = 0; i < 16; i++) {
        char sv[16 * RT_POS_MAX];
        int sl = rt_query_param(query, "since", i, sv, sizeof(sv));
        if (sl == RT_E_ABSENT)
            break;
        bool bad = sl < 0; /* too long or malformed */
        char *save = NULL;
        for (char *p = bad ? NULL : strtok_r(sv, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
            if (c->nsince == 16 || rt_pos_parse(rt_slice_cstr(p), &c->since[c->nsince]) != 0) {
                bad = true;
                break;
            }
            c->nsince++;
        }
        if (bad) {
            why->reason = RT_REASON_BAD_REQUEST;
            snprintf(why->detail, sizeof(why->detail),
                     "since must be event ids (at most 16) as received in the id field");
            return false;
        }
    }
    return true;
}

/* Take the slot atomically: the check in admit_capacity is only a fast path,
 * and concurrent handshakes could all pass it before any of them is counted. */
static bool take_slot(rt_server_t *srv, rt_conn_t *c, rt__refusal_t *why)
{
    if (atomic_fetch_add(&srv->nconns, 1) >= srv->cfg->max_connections) {
        atomic_fetch_sub(&srv->nconns, 1);
        why->reason = RT_REASON_OVER_CAPACITY;
        snprintf(why->detail, sizeof(why->detail), "limit %lld (RTGW_MAX_CONNECTIONS)",
                 (long long)srv->cfg->max_connections);
        return false;
    }
    c->slot_held = true;
    return true;
}

bool rt__session_admit(rt_server_t *srv, const rt__req_t *req, rt_conn_t *c, rt__refusal_t *why)
{
    why->tok_err = 0;
    why->detail[0] = 0;
    return admit_capacity(srv, req, c, why) && admit_origin(srv, req, why) &&
           admit_token(srv, req, c, why) && admit_since(req, c, why) && take_slot(srv, c, why);
}

void rt__session_refused(rt_server_t *srv, const rt__req_t *req, const rt__refusal_t *why)
{
    atomic_fetch_add(&srv->metrics.refusals[why->reason], 1);
    if (why->tok_err)
        rt_metrics_token_refusal(&srv->metrics, why->tok_err);
    if (why->reason == RT_REASON_ORIGIN_NOT_ALLOWED) {
        atomic_fetch_add(&srv->metrics.origin_refused, 1);
        char q[200];
        rt_log_quote(rt__req_header(req, "Origin"), q, sizeof(q));
        rt_log_warn("origin refused", "origin=%s peer=%s", q, req->remote_addr);
    }
}

void rt__session_refusal_resp(const rt__refusal_t *why, rt_resp_t *r)
{
    int st = rt_reason_http_status(why->reason);
    rt_resp_error(r, st ? st : 400,
                  why->tok_err ? rt_tok_errname(why->tok_err) : rt_reason_name(why->reason),
                  "%s%s%s", rt_reason_text(why->reason), why->detail[0] ? ": " : "", why->detail);
}

rt_frame_t *rt__session_refusal_close(rt_reason_t reason, const char *detail)
{
    char text[123]; /* a close frame's reason: at most 123 bytes */
    snprintf(text, sizeof(text), "%s%s%s", rt_reason_name(reason), detail[0] ? ": " : "", detail);
    return rt_ws_close_frame_new(rt_reason_ws_code(reason), text);
}

int rt__session_refuse_http(struct mg_connection *conn, const rt__refusal_t *why)
{
    rt_resp_t r = {0};
    rt__session_refusal_resp(why, &r);
    int st = r.status;
    rt__send_resp(conn, &r);
    return st;
}

bool rt__session_first_of_channel(const rt_claims_t *cl, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(cl->topics[j].channel, cl->topics[i].channel) == 0)
            return false;
    return true;
}

void rt__session_pin_positions(rt_server_t *srv, rt_conn_t *c)
{
    if (c->nsince)
        return;
    /* Each position may wait a bus timeout (Redis): the first that finds the
     * bus down ends the loop, and so does a drain. */
    for (size_t i = 0; i < c->claims.ntopics && c->nconnect_pos < 16; i++) {
        if (!rt__session_first_of_channel(&c->claims, i))
            continue;
        if (atomic_load(&srv->draining))
            break;
        int rc = rt_bus_position(srv->bus, rt_slice_cstr(c->claims.topics[i].channel),
                                 &c->connect_pos[c->nconnect_pos]);
        if (rc == RT_E_UNAVAILABLE)
            break;
        if (rc == 0)
            c->nconnect_pos++;
    }
}

/* ---- the list of sessions ---- */

void rt__session_tell_closing(rt_server_t *srv, rt_conn_t *c)
{
    if (c->sub) /* the frames are the server's, shared by every session */
        rt_sub_push(c->sub, c->sse ? srv->sse_closing_frame : srv->closing_frame);
    rt__conn_close_async(c, RT_REASON_SHUTTING_DOWN);
}

static void conns_add(rt_server_t *srv, rt_conn_t *c)
{
    pthread_mutex_lock(&srv->conns_lock);
    c->prev = NULL;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    /* drain() sets the flag under this lock and tells every listed session:
     * one listed after its walk is told here. */
    bool late = atomic_load(&srv->draining);
    pthread_mutex_unlock(&srv->conns_lock);
    if (late)
        rt__session_tell_closing(srv, c);
    bool refusal = !c->slot_held;
    if (refusal) { /* an extended-protocol refusal, listed until it closes */
        atomic_fetch_add(&srv->nconns, 1);
        c->slot_held = true;
    }
    atomic_fetch_add(&srv->metrics.connections_open, 1);
    /* Sessions admitted; a refusal counts in rtgw_refusals_total, whichever
     * thread wrote it (the front door writes an extended client's refusal
     * without listing it). */
    if (!refusal)
        atomic_fetch_add(&srv->metrics.connections_total, 1);
}

static void conns_del(rt_server_t *srv, rt_conn_t *c)
{
    pthread_mutex_lock(&srv->conns_lock);
    if (c->prev)
        c->prev->next = c->next;
    else if (srv->conns == c)
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    pthread_mutex_unlock(&srv->conns_lock);
    if (c->slot_held) {
        c->slot_held = false;
        atomic_fetch_sub(&srv->nconns, 1);
    }
    atomic_fetch_sub(&srv->metrics.connections_open, 1);
}

/* ---- subscribing ---- */

/* The ack's entry for one channel: {"id":"<latest>","recovered":b?,"replayed":n?},
 * and its topics appended to ack.topics. */
static void ack_channel(json_t *ack, json_t *channels, const char *ch, const rt_slice_t *names,
                        size_t n, const rt_resume_t *res)
{
    char ps[RT_POS_MAX];
    rt_pos_format(res->current, ps, sizeof(ps));
    json_t *cj = json_pack("{s:s}", "id", ps);
    if (res->had_since) {
        json_object_set_new(cj, "recovered", json_boolean(res->recovered));
        json_object_set_new(cj, "replayed", json_integer((json_int_t)res->replayed));
    }
    json_object_set_new(channels, ch, cj);
    for (size_t j = 0; j < n; j++)
        json_array_append_new(
            json_object_get(ack, "topics"),
            json_pack("{s:s,s:s%}", "channel", ch, "name", names[j].base, names[j].len));
}

/* Attach the session to the topics of channel ch (the first of which is
 * topic i of its claims), resuming from its `since` candidates, or from the
 * positions pinned before the handshake. 0, or RT_E_NOMEM. */
static int attach_channel(rt_server_t *srv, rt_conn_t *c, size_t i, rt_slice_t *names, size_t *n,
                          bool bus_down, rt_resume_t *res)
{
    const char *ch = c->claims.topics[i].channel;
    *n = 0;
    for (size_t j = i; j < c->claims.ntopics && *n < 256; j++)
        if (strcmp(c->claims.topics[j].channel, ch) == 0)
            names[(*n)++] = rt_slice_cstr(c->claims.topics[j].name);
    const rt_pos_t *cands = c->nsince ? c->since : c->connect_pos;
    size_t ncands = c->nsince ? c->nsince : c->nconnect_pos;
    /* Once one channel found the bus down (or the server drains), the rest
     * attach without waiting: a token for 16 channels would otherwise wait
     * 16 bus timeouts, twice. */
    int rc =
        bus_down || atomic_load(&srv->draining)
            ? rt_bus_attach_live(srv->bus, c->sub, rt_slice_cstr(ch), names, *n, ncands > 0, res)
            : rt_bus_attach(srv->bus, c->sub, rt_slice_cstr(ch), names, *n, cands, ncands, res);
    if (rc != 0) {
        rt_log_error("subscribe failed", "reason=out_of_memory peer=%s", c->peer);
        return RT_E_NOMEM;
    }
    if (!c->nsince)
        res->had_since = false; /* the connect-time position is ours, not the client's */
    return 0;
}

/* Subscribe a session to every (channel, topic) its token grants, grouped by
 * channel, resuming each channel from the `since` candidate with its epoch.
 * Returns the ack JSON for extended clients (malloc'd), NULL for others:
 *   {"kind":"rtgw.subscribed","topics":[…],"expires_at":s,
 *    "channels":{"<ch>":{"id":"<latest>","recovered":b?,"replayed":n?}},"recovered":b?} */
static char *session_subscribe(rt_server_t *srv, rt_conn_t *c)
{
    json_t *ack = c->ext ? json_pack("{s:s,s:[],s:I}", "kind", "rtgw.subscribed", "topics",
                                     "expires_at", (json_int_t)c->token_exp)
                         : NULL;
    json_t *channels = c->ext ? json_object() : NULL;
    bool all_recovered = true, had_since = false, bus_down = false;
    for (size_t i = 0; i < c->claims.ntopics; i++) {
        if (!rt__session_first_of_channel(&c->claims, i))
            continue;
        rt_slice_t names[256];
        size_t n;
        rt_resume_t res;
        if (attach_channel(srv, c, i, names, &n, bus_down, &res) != 0)
            continue;
        bus_down |= res.bus_down;
        if (res.had_since) {
            had_since = true;
            all_recovered &= res.recovered;
            if (!res.recovered)
                rt_log_info("resume not recovered", "peer=%s", c->peer);
        }
        if (channels)
            ack_channel(ack, channels, c->claims.topics[i].channel, names, n, &res);
    }
    if (!ack)
        return NULL;
    json_object_set_new(ack, "channels", channels);
    if (had_since)
        json_object_set_new(ack, "recovered", json_boolean(all_recovered));
    char *s = json_dumps(ack, JSON_COMPACT);
    json_decref(ack);
    return s;
}

/* ---- start, go, detach, end ---- */

void rt__session_start(rt_server_t *srv, rt_conn_t *c, const struct mg_request_info *ri)
{
    if (c->fd < 0)
        c->fd = rt__sockhook_fd_of(ri->remote_addr, ri->remote_port, ri->server_port);
    if (c->fd >= 0) {
        int one = 1, sb = (int)srv->cfg->sndbuf_bytes;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
    } else {
        rt_log_debug("socket not found for session; writes fall back to civetweb's timeout",
                     "peer=%s", c->peer);
    }
    c->sub = rt_sub_new(srv->hub, c->sse ? RT_FMT_SSE : RT_FMT_WS, &rt__conn_sink_ops, c);
    if (c->sub)
        rt_sub_set_ext(c->sub, c->ext);
    conns_add(srv, c);
}

/* Queue the subscription ack ahead of any replay. */
static void queue_ack(rt_conn_t *c, char *ack)
{
    rt_frame_t *f;
    if (c->sse) {
        size_t al = strlen(ack);
        f = rt_frame_new(al + 40);
        if (f)
            f->len =
                (uint32_t)snprintf(f->data, f->cap, "event: rtgw.subscribed\ndata: %s\n\n", ack);
    } else {
        f = rt_ws_frame_new(RT_WS_TEXT, ack, strlen(ack));
    }
    if (f) {
        rt_sub_push_front(c->sub, f);
        rt_frame_unref(f);
    }
}

/* Wakes before the writer is set are not lost: the queue stays "scheduled"
 * and rt__writer_schedule below drains it. */
void rt__session_go(rt_server_t *srv, rt_conn_t *c)
{
    if (!c->sub) {
        rt__conn_close_async(c, RT_REASON_INTERNAL);
        return;
    }
    char *ack = session_subscribe(srv, c);
    if (ack) {
        queue_ack(c, ack);
        free(ack);
    }
    int wi = atomic_fetch_add(&srv->next_writer, 1) % srv->nwriters;
    rt_writer_t *w = &srv->writers[wi];
    if (c->detached) {
        /* The writer thread now reads this socket too; the registration holds
         * a reference until detached_finish. */
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        rt__conn_ref(c);
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
            rt_log_error("cannot watch a session socket", "peer=%s errno=%d", c->peer, errno);
            rt__conn_unref(c);
            c->detached_done = true;
            rt__conn_close_async(c, RT_REASON_INTERNAL);
        }
    }
    atomic_store(&c->writer, w);
    /* A wake-up only when there is something to write (an ack, a replay,
     * frames published since the subscription) or a close to send: waking
     * the writer for an empty queue cost a context switch per connect. A
     * frame pushed from here on wakes the writer itself (it is set now). */
    size_t frames = 0;
    rt_sub_queue_size(c->sub, &frames, NULL);
    if (frames > 0 || atomic_load(&c->state) != RT_CONN_OPEN)
        rt__writer_schedule(c);
}

int rt__session_detach(rt_conn_t *c, struct mg_connection *conn)
{
    (void)conn;
    /* Decrypted bytes already buffered would never wake the writer's epoll:
     * such a WebSocket session (it sent frames before the handshake ended, and
     * was refused for it) stays on civetweb's thread. An SSE client's bytes
     * mean nothing: they are dropped below, and the session detaches. */
    if (c->fd < 0 || (!c->sse && rt__sockhook_tls_buffered(c->fd)))
        return RT_E_ABSENT;
    int nfd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
    if (nfd < 0)
        return RT_E_IO;
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
        close(nfd);
        return RT_E_IO;
    }
    pthread_mutex_lock(&c->wlock);
    int old = c->fd;
    rt__guard_stop(c, old);
    int rc = dup2(sp[0], old) < 0 ? RT_E_IO : 0;
    if (rc == 0) {
        c->fd = nfd;
        c->mg = NULL;
        c->detached = true;
        /* The writer does the TLS from now on; its state moves out of the
         * front door's malloc arena (rt__tls_move). */
        c->tls = rt__tls_move(rt__sockhook_tls_take(old));
        if (c->tls)
            rt__tls_set_fd(c->tls, nfd);
        if (c->tls && c->sse)
            rt__tls_drop_buffered(c->tls);
    }
    pthread_mutex_unlock(&c->wlock);
    close(sp[0]);
    close(sp[1]);
    if (rc != 0)
        close(nfd);
    return rc;
}

void rt__session_end(rt_server_t *srv, rt_conn_t *c)
{
    rt__guard_stop(c, c->fd);
    if (c->sub)
        rt_hub_unsubscribe_all(srv->hub, c->sub);
    rt_reason_t r = atomic_load(&c->state) == RT_CONN_OPEN
                        ? RT_REASON_NORMAL
                        : (rt_reason_t)atomic_load(&c->close_reason);
    atomic_store(&c->state, RT_CONN_GONE);
    /* A writer may have this socket parked in epoll; break the socket so the
     * event fires and the writer drops its reference before civetweb closes
     * the fd (closing would silently remove it from epoll). Bounded wait. */
    for (int i = 0; i < 40 && c->parked && !c->detached; i++) {
        if (i == 0 && c->fd >= 0)
            shutdown(c->fd, SHUT_RDWR);
        usleep(5000);
    }
    pthread_mutex_lock(&c->wlock);
    c->mg = NULL;
    pthread_mutex_unlock(&c->wlock);
    if (!c->refused)
        atomic_fetch_add(&srv->metrics.disconnects[r], 1);
    conns_del(srv, c);
    rt_log_debug("session closed", "peer=%s reason=%s", c->peer, rt_reason_name(r));
}
