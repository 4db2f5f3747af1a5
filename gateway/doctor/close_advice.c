/*
 * close_advice.c — explanations of the gateway's close codes (see
 * close_advice.h). Each found text starts "closed with <code> <name>", both
 * read from the reason table; the sentences after them and the fixes are the
 * doctor's own: they name the setting or the proxy line to change.
 */
#include "close_advice.h"

#include <stdio.h>
#include <string.h>

bool rt__close_is(int code, rt_reason_t r)
{
    return code == rt_reason_ws_code(r);
}

/* "closed with 4402 token_invalid" for reason r, into out[0..cap) (cap > 0).
 * Returns where the rest of the sentence goes: the length written. */
static size_t closed_with(char *out, size_t cap, rt_reason_t r)
{
    int n = snprintf(out, cap, "closed with %d %s", rt_reason_ws_code(r), rt_reason_name(r));
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* Which setting to fix, from the detail after "token_invalid: " in the
 * close reason (the token library's refusal name). */
static void token_invalid_fix(const char *detail, char *fix, size_t xcap)
{
    if (strstr(detail, "bad_signature") || strstr(detail, "unknown_kid") ||
        strstr(detail, "wrong_env"))
        snprintf(fix, xcap,
                 "the token was signed with another key than the gateway's: mint it with the "
                 "gateway's RTGW_SIGNING_KEY (INNGEST_SIGNING_KEY on the backend)\n"
                 "during a rotation, set RTGW_SIGNING_KEY_FALLBACK to the old key on the gateway");
    else if (strstr(detail, "issued_in_future") || strstr(detail, "not_yet_valid"))
        snprintf(fix, xcap,
                 "the minting machine's clock is ahead of the gateway's: run NTP on both "
                 "(compare date -u), or raise RTGW_CLOCK_LEEWAY");
    else if (strstr(detail, "wrong_issuer"))
        snprintf(fix, xcap,
                 "set the same RTGW_TOKEN_ISSUER where tokens are minted and on the gateway");
    else
        snprintf(fix, xcap,
                 "mint a fresh token with POST /v1/realtime/token (or rtgw token) and pass it "
                 "unchanged as ?token=");
}

/* The refusals a token or a request earns: token_invalid, token_expired,
 * token_missing, bad_request. */
static void token_advice(rt_reason_t r, const char *reason, char *found, size_t fcap, char *fix,
                         size_t xcap)
{
    const char *detail = strstr(reason, ": ");
    detail = detail ? detail + 2 : "";
    size_t at = closed_with(found, fcap, r);
    char *rest = found + at;
    size_t rcap = fcap - at;
    switch (r) {
    case RT_REASON_TOKEN_INVALID:
        snprintf(rest, rcap, " (%s): the gateway refused the token", reason);
        token_invalid_fix(detail, fix, xcap);
        break;
    case RT_REASON_TOKEN_EXPIRED:
        snprintf(rest, rcap, " (%s): the token had expired when it reached the gateway", reason);
        snprintf(fix, xcap,
                 "mint the token right before connecting (its lifetime is RTGW_TOKEN_TTL, default "
                 "60 s), and refresh it on reconnect\n"
                 "check clocks: compare date -u on the minting backend and the gateway (NTP); a "
                 "skew beyond RTGW_CLOCK_LEEWAY (30 s) makes fresh tokens look expired");
        break;
    case RT_REASON_TOKEN_MISSING:
        snprintf(rest, rcap, ": the token did not reach the gateway");
        snprintf(fix, xcap,
                 "a proxy may drop the query string: proxy_pass http://127.0.0.1:8288; (no URI "
                 "part) keeps /v1/realtime/connect?token=... intact");
        break;
    default: /* RT_REASON_BAD_REQUEST */
        snprintf(rest, rcap, " (%s)", reason);
        snprintf(fix, xcap, "a proxy may rewrite the URL or its query; pass it unchanged");
    }
}

/* The refusals of the gateway itself: origin, capacity, shutdown, error. */
static void gateway_advice(rt_reason_t r, const char *reason, const char *origin, char *found,
                           size_t fcap, char *fix, size_t xcap)
{
    size_t at = closed_with(found, fcap, r);
    char *rest = found + at;
    size_t rcap = fcap - at;
    switch (r) {
    case RT_REASON_ORIGIN_NOT_ALLOWED:
        snprintf(rest, rcap, ": the page origin %s is not in RTGW_ALLOWED_ORIGINS",
                 origin ? origin : "(none sent)");
        snprintf(fix, xcap,
                 "add the origin to RTGW_ALLOWED_ORIGINS on the gateway (comma-separated, "
                 "scheme://host[:port], no path, no trailing slash) and restart it:\n"
                 "  RTGW_ALLOWED_ORIGINS=https://app.example.com,%s",
                 origin ? origin : "https://your-page.example.com");
        break;
    case RT_REASON_OVER_CAPACITY:
        snprintf(rest, rcap, ": the gateway is at RTGW_MAX_CONNECTIONS");
        snprintf(fix, xcap,
                 "raise RTGW_MAX_CONNECTIONS (with LimitNOFILE >= 2 x connections + 1024), or add "
                 "nodes; clients retry with backoff");
        break;
    case RT_REASON_SHUTTING_DOWN:
        snprintf(rest, rcap, ": the gateway is draining");
        snprintf(fix, xcap, "wait for the restart to finish, then run doctor again");
        break;
    default: /* RT_REASON_INTERNAL */
        snprintf(rest, rcap, " (%s)", reason);
        snprintf(fix, xcap, "see the gateway's log at this time (level=error)");
    }
}

void rt__close_advice(int code, const char *reason, const char *origin, char *found, size_t fcap,
                      char *fix, size_t xcap)
{
    fix[0] = 0;
    rt_reason_t r = rt_reason_from_ws_code(code);
    switch (r) {
    case RT_REASON_TOKEN_INVALID:
    case RT_REASON_TOKEN_EXPIRED:
    case RT_REASON_TOKEN_MISSING:
    case RT_REASON_BAD_REQUEST:
        token_advice(r, reason, found, fcap, fix, xcap);
        break;
    case RT_REASON_ORIGIN_NOT_ALLOWED:
    case RT_REASON_OVER_CAPACITY:
    case RT_REASON_SHUTTING_DOWN:
    case RT_REASON_INTERNAL:
        gateway_advice(r, reason, origin, found, fcap, fix, xcap);
        break;
    default:
        snprintf(found, fcap,
                 "closed with %d%s%s right after the upgrade (not an rtgw refusal code: something "
                 "else answers the WebSocket?)",
                 code, reason[0] ? " " : "", reason);
        snprintf(fix, xcap,
                 "check that /v1/realtime/connect reaches rtgw (docs/protocol.md lists its close "
                 "codes)");
    }
}
