/*
 * ws.c — WebSocket sessions (see ws.h).
 *
 * civetweb's callbacks, each on the connection's civetweb thread:
 *   ws_connect  the handshake: admission (session.c), the early-data check
 *               and the start of the client frame guard (sockhook.c)
 *   ws_ready    the 101 went out: start the session, detach it from
 *               civetweb's thread, hand it to a writer
 *   ws_data     a client frame civetweb read (a session that could not
 *               detach)
 *   ws_close    civetweb is done with the connection
 * The session record rides in civetweb's user connection data from
 * ws_connect to ws_close, which drops that reference.
 *
 * An extended client (subprotocol rtgw.v1, or ?rtgw=1) gets its refusals as
 * close codes after a completed upgrade (a browser cannot read the status of
 * a failed one), an rtgw.subscribed ack, and may refresh its token in-band
 * (ext_refresh). Every client may send Inngest's sub and unsub (client_sub,
 * client_unsub; extmsg.h): official clients get no answer, as from Inngest,
 * extended ones an ack or an rtgw.error.
 *
 * Client messages are read on the one thread that reads the session's frames
 * (civetweb's, or its writer's when detached), which alone changes c->claims
 * and the subscriber's links; the hub locks itself, and a live sub attaches
 * through the hub without bus I/O, so the reading thread never blocks.
 */
#include "ws.h"
#include "clock.h"
#include "extmsg.h"
#include "http.h"
#include "log.h"
#include "session.h"
#include "sockhook.h"
#include "writer.h"

#include <civetweb.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A refused extended client: complete the upgrade, then close with the
 * documented code (ws_ready). Others get the HTTP error. Returns what
 * ws_connect returns: 0 to upgrade, 1 to refuse. */
static int ws_refuse(rt_server_t *srv, struct mg_connection *conn, const rt__req_t *req,
                     rt_conn_t *c, const rt__refusal_t *why)
{
    rt__session_refused(srv, req, why);
    rt_log_info("websocket refused", "peer=%s reason=%s detail=%s ext=%d", c->peer,
                rt_reason_name(why->reason), why->detail[0] ? why->detail : "-", c->ext);
    if (c->ext) {
        c->refused = true;
        c->refuse_reason = why->reason;
        snprintf(c->refuse_detail, sizeof(c->refuse_detail), "%s", why->detail);
        mg_set_user_connection_data(conn, c);
        return 0;
    }
    rt__session_refuse_http(conn, why);
    rt__conn_unref(c);
    return 1;
}

/* Whether the client is extended: subprotocol rtgw.v1, or ?rtgw=1. */
static bool ws_is_ext(const struct mg_request_info *ri)
{
    char flag[8];
    return (ri->acceptedWebSocketSubprotocol &&
            strcmp(ri->acceptedWebSocketSubprotocol, "rtgw.v1") == 0) ||
           (rt_query_param(ri->query_string, "rtgw", 0, flag, sizeof(flag)) > 0 &&
            strcmp(flag, "1") == 0);
}

static int ws_connect(const struct mg_connection *cconn, void *cb)
{
    rt_server_t *srv = cb;
    struct mg_connection *conn = (struct mg_connection *)cconn;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    /* civetweb 1.15 sets acceptedWebSocketSubprotocol only when the request
     * offers one, and never clears it: a worker's previous rtgw.v1 session would
     * otherwise make this one "extended" and answer a subprotocol the client did
     * not ask for (which clients reject). Clear it when none was offered. */
    if (!mg_get_header(conn, "Sec-WebSocket-Protocol"))
        ((struct mg_request_info *)ri)->acceptedWebSocketSubprotocol = NULL;
    /* A key civetweb cannot answer (64 bytes or more) made it send a 500
     * after this callback had admitted the session, and its close callback
     * never ran: the connection slot was never given back. */
    if (!rt_ws_key_valid(mg_get_header(conn, "Sec-WebSocket-Key"))) {
        atomic_fetch_add(&srv->metrics.refusals[RT_REASON_BAD_REQUEST], 1);
        rt_log_info("websocket refused", "peer=%s reason=bad_request detail=sec_websocket_key",
                    ri->remote_addr);
        rt__send_error(conn, 400, "bad_request",
                       "Sec-WebSocket-Key must be 24 base64 characters, a 16-byte nonce "
                       "(RFC 6455 section 4.1)");
        return 1;
    }
    rt_conn_t *c = rt__conn_new(srv, conn, ri->remote_addr, ri->remote_port, false);
    if (!c) {
        rt__send_error(conn, 503, "internal_error", "out of memory");
        return 1;
    }
    c->ext = ws_is_ext(ri);
    rt__refusal_t why;
    rt__req_t req;
    rt__req_of(conn, &req);
    if (!rt__session_admit(srv, &req, c, &why))
        return ws_refuse(srv, conn, &req, c, &why);
    /* Guard the client's frames from the first byte after the handshake; a
     * client that already sent frames would start the guard mid-stream
     * (sockhook.c's recv kept them in the kernel, where this sees them). */
    c->fd = rt__sockhook_fd_of(ri->remote_addr, ri->remote_port, ri->server_port);
    if (c->fd >= 0 && rt__sockhook_has_early_bytes(c->fd)) {
        atomic_fetch_add(&srv->metrics.refusals[RT_REASON_PROTOCOL_ERROR], 1);
        rt__send_error(conn, 400, "protocol_error",
                       "the client sent data before the WebSocket handshake completed");
        rt__conn_unref(c);
        return 1;
    }
    rt__guard_start(c, c->fd, (uint64_t)srv->cfg->max_client_frame_bytes);
    rt__session_pin_positions(srv, c);
    mg_set_user_connection_data(conn, c);
    return 0;
}

/* Upgrade done for a refused extended client: close at once with the reason.
 * The session is listed so the heartbeat ends it if the client never answers
 * the close. */
static void ws_close_refused(rt_server_t *srv, struct mg_connection *conn, rt_conn_t *c)
{
    rt__session_start(srv, c, mg_get_request_info(conn));
    atomic_store(&c->close_reason, (int)c->refuse_reason);
    atomic_store(&c->state, RT_CONN_CLOSING);
    c->closing_since_ms = rt_clock_mono_ms();
    c->close_sent = true;
    rt_frame_t *f = rt__session_refusal_close(c->refuse_reason, c->refuse_detail);
    if (f) {
        rt__conn_write(c, f->data, f->len);
        rt_frame_unref(f);
    }
}

static void ws_ready(struct mg_connection *conn, void *cb)
{
    rt_server_t *srv = cb;
    rt_conn_t *c = mg_get_user_connection_data(conn);
    if (!c)
        return;
    if (c->refused) {
        ws_close_refused(srv, conn, c);
        return;
    }
    rt__session_start(srv, c, mg_get_request_info(conn));
    if (rt__session_detach(c, conn) != 0)
        rt_log_debug("session stays on its civetweb thread", "peer=%s", c->peer);
    rt__session_go(srv, c);
}

static void ext_reply(rt_conn_t *c, json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        return;
    rt_frame_t *f = rt_ws_frame_new(RT_WS_TEXT, s, strlen(s));
    free(s);
    if (f) {
        rt_sub_push(c->sub, f);
        rt_frame_unref(f);
    }
}

/* A refused client message: an rtgw.error for extended clients; official
 * clients get nothing (Inngest answers nothing either). */
static void client_refused(rt_server_t *srv, rt_conn_t *c, const char *what,
                           const rt_extmsg_refusal_t *why)
{
    if (why->tok_err)
        rt_metrics_token_refusal(&srv->metrics, why->tok_err);
    rt_log_info("client message refused", "peer=%s message=%s reason=%s ext=%d", c->peer, what,
                why->error, c->ext);
    if (c->ext)
        ext_reply(c, json_pack("{s:s,s:s,s:s}", "kind", "rtgw.error", "error", why->error,
                               "message", why->message));
}

/* An acknowledgement: sent to extended clients only (official clients get
 * none, as from Inngest). Takes o. */
static void ext_ack(rt_conn_t *c, json_t *o)
{
    if (c->ext)
        ext_reply(c, o);
    else
        json_decref(o);
}

/* For each channel of `channels` (first occurrence), switch the subscriber to
 * the topics `grant` holds there, none if it holds none; atomic with respect
 * to publishes on that channel. The hub keeps a channel's "*" in place of its
 * named topics, so dropping "*" re-attaches those. */
static void sync_channels(rt_server_t *srv, rt_conn_t *c, const rt_claims_t *channels,
                          const rt_claims_t *grant)
{
    for (size_t i = 0; i < channels->ntopics; i++) {
        if (!rt__session_first_of_channel(channels, i))
            continue;
        const char *ch = channels->topics[i].channel;
        rt_slice_t *names = calloc(grant->ntopics + 1, sizeof(*names));
        size_t n = names ? rt_extmsg_channel_topics(grant, ch, names, grant->ntopics) : 0;
        if (!names || rt_hub_set_topics(srv->hub, c->sub, rt_slice_cstr(ch), names, n) != 0)
            rt_log_error("subscription change failed", "reason=out_of_memory peer=%s", c->peer);
        free(names);
    }
}

/* [{"channel","name"}…] of cl's topics. */
static json_t *topics_json(const rt_claims_t *cl)
{
    json_t *a = json_array();
    for (size_t i = 0; i < cl->ntopics; i++)
        json_array_append_new(a, json_pack("{s:s,s:s}", "channel", cl->topics[i].channel, "name",
                                           cl->topics[i].name));
    return a;
}

/* {"kind":"sub","data":"<jwt>"}: subscribe to what the token grants beyond
 * the current grant, live (no replay). Extended clients get
 * {"kind":"rtgw.sub_ack","topics":[added],"channels":{ch:{"id":latest}}}. */
static void client_sub(rt_server_t *srv, rt_conn_t *c, const char *data, size_t len)
{
    rt_claims_t add;
    rt_extmsg_refusal_t why;
    rt_live_t *keys = rt_livecell_get(srv->live); /* the keys of now: a SIGHUP may rotate them */
    int rc = rt_extmsg_sub(rt_live_ring(keys), &srv->topts, &c->claims, data, len,
                           rt_clock_wall_ms() / 1000, srv->topts.max_topics, &add, &why);
    rt_live_unref(keys);
    if (rc != 0) {
        client_refused(srv, c, "sub", &why);
        return;
    }
    json_t *channels = json_object();
    for (size_t i = 0; i < add.ntopics; i++) {
        if (!rt__session_first_of_channel(&add, i))
            continue;
        const char *ch = add.topics[i].channel;
        rt_slice_t *names = calloc(add.ntopics, sizeof(*names));
        size_t n = names ? rt_extmsg_channel_topics(&add, ch, names, add.ntopics) : 0;
        rt_resume_t res = {0};
        if (!names ||
            rt_hub_subscribe(srv->hub, c->sub, rt_slice_cstr(ch), names, n, NULL, &res) != 0)
            rt_log_error("live sub failed", "reason=out_of_memory peer=%s", c->peer);
        free(names);
        char ps[RT_POS_MAX];
        rt_pos_format(res.current, ps, sizeof(ps));
        json_object_set_new(channels, ch, json_pack("{s:s}", "id", ps));
    }
    json_t *ack = json_pack("{s:s,s:o,s:o}", "kind", "rtgw.sub_ack", "topics", topics_json(&add),
                            "channels", channels);
    if (rt_extmsg_claims_merge(&c->claims, &add) != 0)
        rt_log_error("live sub not recorded", "reason=out_of_memory peer=%s", c->peer);
    rt_claims_clear(&add);
    ext_ack(c, ack);
}

/* {"kind":"unsub","data":[topics]}: stop the named topics now. Extended
 * clients get {"kind":"rtgw.unsub_ack","topics":[removed]}. */
static void client_unsub(rt_server_t *srv, rt_conn_t *c, const char *data, size_t len)
{
    rt_claims_t removed;
    rt_extmsg_refusal_t why;
    if (rt_extmsg_unsub(&c->claims, data, len, srv->topts.max_topics, &removed, &why) != 0) {
        client_refused(srv, c, "unsub", &why);
        return;
    }
    sync_channels(srv, c, &removed, &c->claims); /* the channels touched: what is left */
    json_t *ack = json_pack("{s:s,s:o}", "kind", "rtgw.unsub_ack", "topics", topics_json(&removed));
    rt_claims_clear(&removed);
    ext_ack(c, ack);
}

/* {"kind":"rtgw.refresh","token":…} from an extended client, validated by
 * rt_extmsg_refresh (extmsg.h). The new token must grant the same topics or
 * fewer; dropped topics are unsubscribed at once. Refused: an rtgw.error
 * frame, and the old token stays. */
static void ext_refresh(rt_server_t *srv, rt_conn_t *c, const char *data, size_t len)
{
    rt_claims_t next;
    rt_extmsg_refusal_t why;
    rt_live_t *keys = rt_livecell_get(srv->live);
    int rc = rt_extmsg_refresh(rt_live_ring(keys), &srv->topts, &c->claims, data, len,
                               rt_clock_wall_ms() / 1000, &next, &why);
    rt_live_unref(keys);
    if (rc != 0) {
        client_refused(srv, c, "rtgw.refresh", &why);
        return;
    }
    /* Narrowing: per channel of the old grant, the new token's topics there
     * (none when it drops the channel). */
    sync_channels(srv, c, &c->claims, &next);
    rt_claims_t old = c->claims;
    c->claims = next;
    c->token_exp = next.exp;
    rt_claims_clear(&old);
    ext_reply(c,
              json_pack("{s:s,s:I}", "kind", "rtgw.refreshed", "expires_at", (json_int_t)next.exp));
}

/* A client text message: dispatched by kind. */
static void client_message(rt_server_t *srv, rt_conn_t *c, const char *data, size_t len)
{
    rt_extmsg_refusal_t why;
    switch (rt_extmsg_kind(data, len, &why)) {
    case RT_CMSG_SUB:
        client_sub(srv, c, data, len);
        return;
    case RT_CMSG_UNSUB:
        client_unsub(srv, c, data, len);
        return;
    case RT_CMSG_REFRESH:
        if (c->ext) {
            ext_refresh(srv, c, data, len);
            return;
        }
        why = (rt_extmsg_refusal_t){"bad_request", "unknown message kind", 0};
        break;
    default:
        break;
    }
    client_refused(srv, c, "unknown", &why);
}

/* The session's client frame budget (RTGW_RATE_LIMIT_CLIENT_FRAMES, a token
 * bucket with a burst of twice the rate). false when it is spent. */
static bool frame_budget(rt_server_t *srv, rt_conn_t *c)
{
    if (srv->cfg->rate_limit_client_frames <= 0)
        return true;
    double rate = (double)srv->cfg->rate_limit_client_frames, burst = 2 * rate;
    int64_t now = rt_clock_mono_ms();
    if (c->frame_window_ms == 0)
        c->frame_tokens = burst;
    else
        c->frame_tokens += (double)(now - c->frame_window_ms) / 1000.0 * rate;
    if (c->frame_tokens > burst)
        c->frame_tokens = burst;
    c->frame_window_ms = now;
    if (c->frame_tokens < 1)
        return false;
    c->frame_tokens -= 1;
    return true;
}

bool rt__ws_session_frame(rt_server_t *srv, rt_conn_t *c, bool fin, int opcode, char *data,
                          size_t len)
{
    atomic_store(&c->last_rx_ms, rt_clock_mono_ms());
    if (c->refused)
        return opcode != RT_WS_CLOSE;
    if (!frame_budget(srv, c)) {
        rt_log_info("client frames rate limited", "peer=%s", c->peer);
        rt__conn_close_async(c, RT_REASON_RATE_LIMITED);
        return true;
    }
    if (len > (size_t)srv->cfg->max_client_frame_bytes) {
        rt_log_info("client frame too large", "peer=%s bytes=%zu", c->peer, len);
        rt__conn_close_async(c, RT_REASON_MESSAGE_TOO_BIG);
        return true;
    }
    rt_reason_t why = rt_ws_rx_payload(&c->rx, fin, opcode, (const uint8_t *)data, len);
    if (why != RT_REASON_NORMAL) {
        rt_log_info("client frame refused", "peer=%s reason=%s", c->peer, rt_reason_name(why));
        rt__conn_close_async(c, why);
        return true;
    }
    switch (opcode) {
    case RT_WS_PING: {
        rt_frame_t *f = rt_ws_frame_new(RT_WS_PONG, data, len > 125 ? 125 : len);
        if (f) {
            rt_sub_push(c->sub, f);
            rt_frame_unref(f);
        }
        return true;
    }
    case RT_WS_PONG:
        return true;
    case RT_WS_CLOSE: {
        /* Echo the close (RFC 6455 §5.5.1) unless we started the closing
         * handshake ourselves, then let civetweb end the session. */
        rt_frame_t *f = atomic_load(&c->state) == RT_CONN_OPEN
                            ? rt_ws_close_frame_new(rt_reason_ws_code(RT_REASON_NORMAL), "")
                            : NULL;
        if (f) {
            rt__conn_write(c, f->data, f->len);
            rt_frame_unref(f);
        }
        return false;
    }
    case RT_WS_TEXT:
    case RT_WS_BINARY:
    case RT_WS_CONTINUATION:
        /* Client messages are whole text frames (Inngest's clients and
         * rtgw's send nothing longer); binary ones are ignored, as upstream. */
        if (opcode == RT_WS_TEXT && fin)
            client_message(srv, c, data, len);
        return true;
    default:
        rt__conn_close_async(c, RT_REASON_PROTOCOL_ERROR);
        return true;
    }
}

static int ws_data(struct mg_connection *conn, int bits, char *data, size_t len, void *cb)
{
    rt_conn_t *c = mg_get_user_connection_data(conn);
    return c ? rt__ws_session_frame(cb, c, (bits & 0x80) != 0, bits & 0x0F, data, len) : 0;
}

static void ws_close(const struct mg_connection *cconn, void *cb)
{
    rt_server_t *srv = cb;
    rt_conn_t *c = mg_get_user_connection_data(cconn);
    if (!c)
        return;
    mg_set_user_connection_data((struct mg_connection *)cconn, NULL);
    /* A detached session left civetweb: its writer thread ends it. A refused
     * one never started a subscription. */
    if (c->sub && !c->detached)
        rt__session_end(srv, c);
    rt__conn_unref(c);
}

static const char *ws_subprotocols[] = {"rtgw.v1"};
static struct mg_websocket_subprotocols ws_protos = {1, ws_subprotocols};

void rt__ws_register(rt_server_t *srv, const char *uri)
{
    mg_set_websocket_handler_with_subprotocols(srv->ctx, uri, &ws_protos, ws_connect, ws_ready,
                                               ws_data, ws_close, srv);
}
