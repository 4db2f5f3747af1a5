/*
 * errors.c — names and texts for the RTC_ERRNO_MAP codes, the WebSocket close
 * codes of the extended protocol, and subscription states.
 */
#include "rtgw_client.h"

#include <stddef.h>

const char *rtc_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define RTC_XX(name, c, id, text)                                                                  \
    case c:                                                                                        \
        return text;
        RTC_ERRNO_MAP(RTC_XX)
#undef RTC_XX
    default:
        return "unknown error";
    }
}

const char *rtc_errname(int code)
{
    switch (code) {
    case 0:
        return "ok";
#define RTC_XX(name, c, id, text)                                                                  \
    case c:                                                                                        \
        return id;
        RTC_ERRNO_MAP(RTC_XX)
#undef RTC_XX
    default:
        return "unknown";
    }
}

/* XX(code, name, retry) — docs/protocol.md §5, plus the codes RFC 6455 reserves
 * for "no status" and "abnormal closure" (what a lost connection looks like). */
#define RTC_CLOSE_MAP(XX)                                                                          \
    XX(1000, "normal", false)                                                                      \
    XX(1001, "shutting_down", true)                                                                \
    XX(1002, "protocol_error", false)                                                              \
    XX(1005, "no_status", true)                                                                    \
    XX(1006, "connection_lost", true)                                                              \
    XX(1009, "message_too_big", false)                                                             \
    XX(1011, "internal_error", true)                                                               \
    XX(4400, "bad_request", false)                                                                 \
    XX(4401, "token_missing", false)                                                               \
    XX(4402, "token_invalid", false)                                                               \
    XX(4403, "topic_not_allowed", false)                                                           \
    XX(4405, "origin_not_allowed", false)                                                          \
    XX(4408, "idle_timeout", true)                                                                 \
    XX(4409, "token_expired", true)                                                                \
    XX(4429, "slow_consumer", true)                                                                \
    XX(4503, "over_capacity", true)

const char *rtc_close_name(int code)
{
    switch (code) {
#define RTC_CXX(c, name, retry)                                                                    \
    case c:                                                                                        \
        return name;
        RTC_CLOSE_MAP(RTC_CXX)
#undef RTC_CXX
    default:
        return "unknown";
    }
}

bool rtc_close_retryable(int code)
{
    switch (code) {
#define RTC_CXX(c, name, retry)                                                                    \
    case c:                                                                                        \
        return retry;
        RTC_CLOSE_MAP(RTC_CXX)
#undef RTC_CXX
    default:
        /* Unknown 4xxx codes are application refusals; anything else, retry. */
        return code < 4000 || code > 4999;
    }
}

const char *rtc_status_name(rtc_status_t s)
{
    static const char *const names[] = {"connecting",   "connected",    "not_recovered",
                                        "disconnected", "reconnecting", "refused",
                                        "gave_up",      "closing"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}
