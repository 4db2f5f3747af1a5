/*
 * rtgw_client.h — a small C client for rtgw: mint tokens (offline or through the
 * gateway), publish events (whole bodies or chunked streams) and subscribe over
 * WebSocket with reconnect and lossless resume.
 *
 * Built over tokens/ (rt_tokens, for offline minting) and civetweb's client API
 * (mg_connect_client, mg_connect_websocket_client). Link the CMake target
 * `rtgw_client`.
 *
 * Base URLs are "http://host[:port][/prefix]" or "https://…" (port defaults to
 * 80 / 443; https uses civetweb's client TLS, i.e. OpenSSL when the civetweb
 * build loads it; untested here). Paths /v1/realtime/… are appended to the
 * prefix.
 *
 * Errors: every function returns 0 or a negative RTC_E* code from one table
 * (RTC_ERRNO_MAP); rtc_strerror names the code for people, rtc_errname for
 * machines. Functions that talk to the gateway also fill an optional
 * rtc_error_t with the HTTP status and the gateway's own error name, e.g.
 * 401 "unauthorized" — that name is what to log or show.
 *
 * Secrets: a signing key passed as a credential is sent in its hashed form
 * (docs/protocol.md §1), never as is; keys and tokens never appear in error
 * texts.
 *
 * Threads: functions without a handle are reentrant. Blocking calls say so;
 * their network waits are bounded by `timeout_ms` where given (connects to an
 * unroutable host are bounded only by the OS).
 *
 * Call rtc_init() once before anything else (safe to call more than once).
 */
#ifndef RTGW_CLIENT_H
#define RTGW_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ------------------------------------------------------------------
 * XX(NAME, code, "name", "text"). Codes are stable: append, never renumber. */
#define RTC_ERRNO_MAP(XX)                                                                          \
    XX(ENOMEM, -1, "out_of_memory", "out of memory")                                               \
    XX(EINVAL, -2, "invalid_argument", "invalid argument")                                         \
    XX(EURL, -3, "bad_url", "base URL is not http://host[:port] or https://host[:port]")           \
    XX(EKEY, -4, "bad_signing_key", "the signing key is not of the form signkey-<env>-<hex>")      \
    XX(ETOKEN, -5, "mint_failed", "the token could not be minted (see the detail)")                \
    XX(ECONNECT, -6, "unreachable", "cannot connect to the gateway")                               \
    XX(EIO, -7, "io_error", "the connection failed while sending or receiving")                    \
    XX(ETIMEOUT, -8, "timeout", "the gateway did not answer in time")                              \
    XX(EPROTO, -9, "bad_response", "the gateway's reply could not be understood")                  \
    XX(EUNAUTHORIZED, -10, "unauthorized", "the gateway refused the credential (401)")             \
    XX(EFORBIDDEN, -11, "forbidden", "the credential does not allow this (403)")                   \
    XX(EHTTP, -12, "http_error", "the gateway refused the request")                                \
    XX(EREFUSED, -13, "refused", "the gateway closed the subscription for good (see the reason)")  \
    XX(ETLS, -14, "tls_unavailable", "https:// needs civetweb client TLS, which is not available") \
    XX(ECALLBACK, -15, "callback_abort", "a callback asked to abort")

typedef enum {
#define RTC_XX(name, code, id, text) RTC_##name = code,
    RTC_ERRNO_MAP(RTC_XX)
#undef RTC_XX
        RTC_OK = 0
} rtc_err_t;

/* Readable sentence for a code; never NULL, static storage. */
const char *rtc_strerror(int code);
/* Stable snake_case name for a code ("unreachable"); never NULL, static storage. */
const char *rtc_errname(int code);

/* What went wrong, in detail. Plain data, caller-owned (usually on the stack);
 * every function taking one clears it first. */
typedef struct {
    int code;          /* the RTC_E* code returned */
    int status;        /* HTTP status of the gateway's reply; 0 if there was none */
    char name[64];     /* the gateway's error name ("unauthorized", "topic_not_allowed"), a
                          token error name ("token_lifetime_too_long"), or rtc_errname(code) */
    char message[256]; /* readable detail: the gateway's message, or the local cause */
} rtc_error_t;

/* Initialise civetweb's client side (and libsodium). Returns 0 or RTC_ENOMEM.
 * Thread-safe; does not block on I/O. */
int rtc_init(void);

/* ---- tokens -------------------------------------------------------------------- */

/* Offline mint options. Plain data; NULL pointers mean the gateway's defaults. */
typedef struct {
    const char *alg;    /* "HS256" (default) or "EdDSA": must match the gateway's RTGW_TOKEN_ALG */
    const char *issuer; /* default "rtgw": must match RTGW_TOKEN_ISSUER */
    const char *sub;    /* default: the channel */
    long long max_ttl;  /* refuse ttl above this; default 3600 (RTGW_TOKEN_MAX_TTL) */
} rtc_mint_opts_t;

/* Mint a subscription token offline with the signing key, exactly as the
 * gateway would (rt_token_mint): topics[0..n) of `channel`, ttl seconds (0 → 60),
 * publish → the token may also publish. On success *jwt is a new malloc'd
 * string the caller frees. Does not block. Returns 0, RTC_EKEY, RTC_ETOKEN
 * (err->name is the token error, e.g. "name_too_long"), RTC_EINVAL or RTC_ENOMEM. */
int rtc_mint_local(const char *signing_key, const char *channel, const char *const topics[],
                   size_t n, long long ttl, bool publish, char **jwt);
/* rtc_mint_local with options (opts may be NULL) and an optional error detail. */
int rtc_mint_local_opts(const char *signing_key, const char *channel, const char *const topics[],
                        size_t n, long long ttl, bool publish, const rtc_mint_opts_t *opts,
                        char **jwt, rtc_error_t *err);

/* Ask the gateway for a token: POST /v1/realtime/token with the signing key as
 * Bearer (hashed). On success *jwt is a new malloc'd string the caller frees.
 * Blocks for one HTTP round trip (10 s bound). err may be NULL. */
int rtc_get_token(const char *base_url, const char *signing_key, const char *channel,
                  const char *const topics[], size_t n, char **jwt, rtc_error_t *err);

/* ---- publish --------------------------------------------------------------------- */

/* Plain data; every field may be NULL / 0. */
typedef struct {
    const char *run_id;          /* sent as run_id= */
    const char *fn_id;           /* sent as fn_id= */
    const char *idempotency_key; /* sent as Idempotency-Key: a retry with it publishes nothing */
    int timeout_ms;              /* bound on each wait for the gateway; 0 → 10000 */
} rtc_publish_opts_t;

/* The gateway's answer to a publish. Caller-owned; release with
 * rtc_publish_result_clear (ids_json is malloc'd). */
typedef struct {
    int status;              /* HTTP status; 0 if the gateway was not reached */
    char *ids_json;          /* the "ids" array as compact JSON text (["<id>",…]), or NULL */
    bool duplicate;          /* the Idempotency-Key was seen before: nothing was published */
    long long delivered;     /* subscriber deliveries */
    char stream_id[80];      /* streams: the stream id; "" otherwise */
    long long chunks, bytes; /* streams: what the gateway received */
    rtc_error_t error;       /* filled when the call fails */
} rtc_publish_result_t;

/* Frees ids_json and zeroes the result. NULL is ignored. */
void rtc_publish_result_clear(rtc_publish_result_t *r);

/* Publish one event: POST /v1/realtime/publish?channel=&topic=. `credential` is
 * the signing key (sent hashed) or a token minted with publish. The body is
 * embedded as JSON if it parses, else as a string. Blocks for one HTTP round
 * trip. result may be NULL; if not, the caller clears it. Returns 0 on a 2xx,
 * RTC_EUNAUTHORIZED / RTC_EFORBIDDEN / RTC_EHTTP (result->error.name is the
 * gateway's error name), RTC_ECONNECT, RTC_EIO, RTC_ETIMEOUT or RTC_EPROTO. */
int rtc_publish(const char *base_url, const char *credential, const char *channel,
                const char *topic, const void *body, size_t len, const rtc_publish_opts_t *opts,
                rtc_publish_result_t *result);

/* Produces the next chunk of a stream: write up to `cap` bytes into buf and
 * return how many (> 0), 0 at the end, or < 0 to abort the publish
 * (rtc_publish_stream then returns RTC_ECALLBACK). May block (e.g. on a model). */
typedef long (*rtc_chunk_fn)(char *buf, size_t cap, void *user);

/* Publish a stream: Transfer-Encoding: chunked, Content-Type: text/stream. The
 * gateway turns it into datastream-start, chunk…, datastream-end frames (only
 * rtgw.v1 subscribers see them). `next` is called on the caller's thread until
 * it returns 0. Blocks until the gateway answers. Results and codes as rtc_publish;
 * result->stream_id / chunks / bytes are filled on success. */
int rtc_publish_stream(const char *base_url, const char *credential, const char *channel,
                       const char *topic, rtc_chunk_fn next, void *user,
                       const rtc_publish_opts_t *opts, rtc_publish_result_t *result);

/* ---- subscribe -------------------------------------------------------------------- */

/* Close codes of the extended protocol (docs/protocol.md §5), plus 1005/1006
 * (no code / connection lost). Returns the name ("token_invalid") or "unknown";
 * static storage. */
const char *rtc_close_name(int code);
/* True if a connection closed with `code` should be retried (resume from the last id). */
bool rtc_close_retryable(int code);

typedef enum {
    RTC_STATUS_CONNECTING = 0,    /* reason: "<url without token>" */
    RTC_STATUS_CONNECTED = 1,     /* the ack arrived; reason: "channels=<n> resumed|fresh" */
    RTC_STATUS_NOT_RECOVERED = 2, /* resume could not cover the gap of one channel;
                                     reason: the channel — refetch its state */
    RTC_STATUS_DISCONNECTED = 3,  /* reason: "<code> <name>[: detail]" */
    RTC_STATUS_RECONNECTING = 4,  /* reason: "in <ms> ms (<why>)" */
    RTC_STATUS_REFUSED = 5, /* final: reason "<code> <name>[: detail]"; run returns RTC_EREFUSED */
    RTC_STATUS_GAVE_UP = 6, /* final: unreachable for longer than give_up_ms */
    RTC_STATUS_CLOSING = 7  /* the gateway announced a shutdown ({"kind":"closing"}) */
} rtc_status_t;

/* Name of a status ("connected"); static storage. */
const char *rtc_status_name(rtc_status_t s);

/* Called with each event frame (kind data, datastream-start, chunk,
 * datastream-end): `json` is the frame's text, not NUL-terminated, valid only
 * during the call. Return 0 to continue, non-zero to stop the subscription
 * (rtc_sub_run then returns 0). */
typedef int (*rtc_message_fn)(const char *json, size_t len, void *user);
/* Called on every state change; `reason` is valid only during the call. */
typedef void (*rtc_status_fn)(rtc_status_t status, const char *reason, void *user);
/* Returns a fresh token (malloc'd; the library frees it) before each connect,
 * or NULL to give up (run returns RTC_ETOKEN). */
typedef char *(*rtc_token_fn)(void *user);

/* Plain data: rtc_sub_new copies every string, so it may live on the stack. */
typedef struct {
    const char *base_url;
    const char *token;        /* a fixed token, or NULL and token_fn */
    rtc_token_fn token_fn;    /* called before every connect (used when token is NULL) */
    const char *const *since; /* positions to resume from (one per channel), may be NULL */
    size_t nsince;
    rtc_message_fn on_message; /* required */
    rtc_status_fn on_status;   /* optional */
    void *user;                /* passed to every callback */
    const char *origin;        /* Origin header; NULL → none */
    int backoff_initial_ms;    /* first reconnect delay; 0 → 250 */
    int backoff_max_ms;        /* cap of the exponential backoff; 0 → 10000 (±50% jitter) */
    int give_up_ms;            /* stop (RTC_ECONNECT) after this long without an
                                  established subscription; 0 → never */
} rtc_subscribe_opts_t;

/* A subscription: owns a connection at a time, the last id per channel and
 * the reconnect state. Opaque. */
typedef struct rtc_sub_s rtc_sub_t;

/* New subscription (not yet connected); NULL if opts are invalid (no base_url
 * or on_message, no token and no token_fn, bad URL) or out of memory.
 * Free with rtc_sub_free. Does not block. */
rtc_sub_t *rtc_sub_new(const rtc_subscribe_opts_t *opts);

/* Connect and deliver events until stopped: blocks the calling thread. Reconnects
 * after retryable closes and network errors with capped exponential backoff and
 * jitter, resuming every channel from its last id (repeated since=). Callbacks run
 * one at a time, on the caller's thread or on civetweb's client thread.
 * Returns 0 when stopped (rtc_sub_stop, or on_message returned non-zero),
 * RTC_EREFUSED on a final close (err->name is the close name, err->status the close
 * code), RTC_ECONNECT after give_up_ms, RTC_ETOKEN if token_fn failed. err may be NULL.
 * Call it at most once per handle at a time. */
int rtc_sub_run(rtc_sub_t *sub, rtc_error_t *err);

/* Ask a running rtc_sub_run to return (within ~2 s: civetweb's read quantum).
 * Any thread; async-signal-safe (it only sets an atomic flag). */
void rtc_sub_stop(rtc_sub_t *sub);

/* The last id seen on `channel` (an ack position or an event id), or NULL.
 * Borrowed: valid until the next event or rtc_sub_free; call only from a
 * callback or when rtc_sub_run is not running. */
const char *rtc_sub_last_id(const rtc_sub_t *sub, const char *channel);

/* Frees the handle. Must not race with rtc_sub_run. NULL is ignored. */
void rtc_sub_free(rtc_sub_t *sub);

/* One-shot: rtc_sub_new + rtc_sub_run + rtc_sub_free. Blocks until on_message
 * returns non-zero or a final error; returns like rtc_sub_run (RTC_EINVAL for bad opts). */
int rtc_subscribe(const rtc_subscribe_opts_t *opts, rtc_error_t *err);

#ifdef __cplusplus
}
#endif
#endif /* RTGW_CLIENT_H */
