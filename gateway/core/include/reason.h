/*
 * reason.h — why a connection was refused or ended: one table shared by the
 * hub (slow consumer), the server (close frames, HTTP errors), metrics labels
 * and docs/protocol.md. Codes are stable; append, never renumber.
 *
 *   XX(ENUM, websocket close code, http status, name, reconnect advice, text)
 */
#ifndef RT_REASON_H
#define RT_REASON_H

#define RT_REASON_MAP(XX)                                                                          \
    XX(NORMAL, 1000, 200, "normal", "no", "closed normally")                                       \
    XX(SHUTTING_DOWN, 1001, 503, "shutting_down", "yes, resume from the last id",                  \
       "the gateway is shutting down")                                                             \
    XX(INTERNAL, 1011, 500, "internal_error", "yes, with backoff", "internal error")               \
    XX(BAD_REQUEST, 4400, 400, "bad_request", "no, fix the request", "bad request")                \
    XX(TOKEN_MISSING, 4401, 401, "token_missing", "no, send a token",                              \
       "no token (use ?token= or Authorization: Bearer)")                                          \
    XX(TOKEN_INVALID, 4402, 401, "token_invalid", "no, mint a new token", "token refused")         \
    XX(TOPIC_NOT_ALLOWED, 4403, 403, "topic_not_allowed", "no",                                    \
       "the token does not grant this channel and topic")                                          \
    XX(ORIGIN_NOT_ALLOWED, 4405, 403, "origin_not_allowed",                                        \
       "no, add the origin to RTGW_ALLOWED_ORIGINS", "origin not allowed")                         \
    XX(IDLE_TIMEOUT, 4408, 0, "idle_timeout", "yes, resume from the last id",                      \
       "no pong within the heartbeat deadline")                                                    \
    XX(TOKEN_EXPIRED, 4409, 401, "token_expired", "yes, with a new token", "the token expired")    \
    XX(SLOW_CONSUMER, 4429, 0, "slow_consumer", "yes, resume from the last id",                    \
       "the client did not read fast enough; its queue limit was reached")                         \
    XX(OVER_CAPACITY, 4503, 503, "over_capacity", "yes, with backoff",                             \
       "the gateway is at its connection limit")                                                   \
    XX(PROTOCOL_ERROR, 1002, 400, "protocol_error", "no", "websocket protocol error")              \
    XX(RATE_LIMITED, 4420, 429, "rate_limited", "yes, after a pause",                              \
       "too many requests or frames from this client")                                             \
    XX(MESSAGE_TOO_BIG, 1009, 413, "message_too_big", "no", "client frame too large")              \
    XX(INVALID_PAYLOAD, 1007, 400, "invalid_payload", "no",                                        \
       "a text message or close reason that is not valid UTF-8")

typedef enum {
#define RT_REASON_XX(e, ws, http, name, advice, text) RT_REASON_##e,
    RT_REASON_MAP(RT_REASON_XX)
#undef RT_REASON_XX
        RT_REASON__COUNT
} rt_reason_t;

int rt_reason_ws_code(rt_reason_t r);
int rt_reason_http_status(rt_reason_t r);
const char *rt_reason_name(rt_reason_t r);
const char *rt_reason_text(rt_reason_t r);
const char *rt_reason_advice(rt_reason_t r);
/* The reason whose WebSocket close code is ws_code, or RT_REASON__COUNT when
 * no reason has that code (e.g. 1005, 1006, or another server's own codes). */
rt_reason_t rt_reason_from_ws_code(int ws_code);

#endif
