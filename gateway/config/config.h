/*
 * config.h — rtgw configuration from the environment and a .env file.
 * The environment wins over .env. Every variable is listed in RT_CONFIG_INTS /
 * RT_CONFIG_STRS below, in README.md and in .env.example.
 */
#ifndef RT_CONFIG_H
#define RT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* XX(field, ENV_NAME, default, min, max, help) — integer settings */
#define RT_CONFIG_INTS(XX)                                                                         \
    XX(token_ttl_s, "RTGW_TOKEN_TTL", 60, 1, 86400, "default token lifetime (seconds)")            \
    XX(token_max_ttl_s, "RTGW_TOKEN_MAX_TTL", 3600, 1, 604800,                                     \
       "longest lifetime a mint may ask for")                                                      \
    XX(clock_leeway_s, "RTGW_CLOCK_LEEWAY", 30, 0, 600, "clock skew tolerated on exp/nbf/iat")     \
    XX(max_connections, "RTGW_MAX_CONNECTIONS", 1000, 1, 200000, "open WebSocket/SSE connections") \
    XX(http_threads, "RTGW_HTTP_THREADS", 8, 2, 1024,                                              \
       "threads kept for HTTP beyond the connections")                                             \
    XX(ping_interval_ms, "RTGW_PING_INTERVAL_MS", 15000, 100, 3600000, "WebSocket ping interval")  \
    XX(pong_timeout_ms, "RTGW_PONG_TIMEOUT_MS", 10000, 100, 3600000,                               \
       "close a connection silent this long after a ping")                                         \
    XX(max_body_bytes, "RTGW_MAX_BODY_BYTES", 524288, 1, 67108864, "largest publish/token body")   \
    XX(max_token_bytes, "RTGW_MAX_TOKEN_BYTES", 8192, 256, 65536, "largest token accepted")        \
    XX(max_topics, "RTGW_MAX_TOPICS", 64, 1, 4096, "topics per token")                             \
    XX(max_name_bytes, "RTGW_MAX_NAME_BYTES", 256, 1, 4096, "channel/topic name length")           \
    XX(queue_max_messages, "RTGW_QUEUE_MAX_MESSAGES", 4096, 1, 10000000,                           \
       "per-subscriber queue bound (messages)")                                                    \
    XX(queue_max_bytes, "RTGW_QUEUE_MAX_BYTES", 8388608, 1024, 1073741824,                         \
       "per-subscriber queue bound (bytes)")                                                       \
    XX(history_max, "RTGW_HISTORY_MAX", 1000, 0, 10000000, "events kept per channel for resume")   \
    XX(history_max_age_s, "RTGW_HISTORY_MAX_AGE", 300, 1, 604800,                                  \
       "age bound of history (seconds)")                                                           \
    XX(request_timeout_ms, "RTGW_REQUEST_TIMEOUT_MS", 10000, 100, 600000,                          \
       "HTTP request read/write timeout")                                                          \
    XX(shutdown_timeout_ms, "RTGW_SHUTDOWN_TIMEOUT_MS", 5000, 0, 600000,                           \
       "how long SIGTERM waits for clients to drain")                                              \
    XX(writer_threads, "RTGW_WRITER_THREADS", 1, 1, 64, "threads writing to subscriber sockets")   \
    XX(accept_threads, "RTGW_ACCEPT_THREADS", 0, 0, 64,                                            \
       "threads accepting connections and answering upgrades and mints (0: one per CPU, at most "  \
       "4)")                                                                                       \
    XX(sndbuf_bytes, "RTGW_SOCKET_SNDBUF", 262144, 4096, 67108864,                                 \
       "socket send buffer per connection")                                                        \
    XX(idempotency_window_s, "RTGW_IDEMPOTENCY_WINDOW", 300, 1, 86400,                             \
       "how long an Idempotency-Key is remembered (seconds)")                                      \
    XX(max_client_frame_bytes, "RTGW_MAX_CLIENT_FRAME_BYTES", 65536, 125, 16777216,                \
       "largest WebSocket frame a client may send (1009 beyond)")                                  \
    XX(max_batch, "RTGW_MAX_BATCH", 1000, 1, 100000, "events per batch publish")                   \
    XX(max_json_depth, "RTGW_MAX_JSON_DEPTH", 64, 1, 128,                                          \
       "deepest nesting of arrays/objects in a published event or mint body")                      \
    XX(max_connections_per_ip, "RTGW_MAX_CONNECTIONS_PER_IP", 0, 0, 200000,                        \
       "open connections per client IP (0: no limit)")                                             \
    XX(rate_limit_publish, "RTGW_RATE_LIMIT_PUBLISH", 0, 0, 10000000,                              \
       "events published per second per client IP (0: no limit; bursts of 2x)")                    \
    XX(rate_limit_mint, "RTGW_RATE_LIMIT_MINT", 0, 0, 10000000,                                    \
       "tokens minted per second per client IP (0: no limit; bursts of 2x)")                       \
    XX(rate_limit_client_frames, "RTGW_RATE_LIMIT_CLIENT_FRAMES", 50, 0, 100000,                   \
       "frames per second a client may send on a WebSocket (0: no limit; bursts of 2x)")           \
    XX(redis_timeout_ms, "RTGW_REDIS_TIMEOUT_MS", 1000, 50, 60000,                                 \
       "Redis connect and command timeout (a publish fails with 503 beyond)")                      \
    XX(redis_pool, "RTGW_REDIS_POOL", 4, 1, 256,                                                   \
       "Redis connections for publishes and history reads")                                        \
    XX(close_on_expiry, "RTGW_CLOSE_ON_EXPIRY", 0, 0, 1,                                           \
       "1: close connections whose token expired without refresh (4409); 0: keep them (Inngest)")

/* XX(field, ENV_NAME, default, help) — string settings (default NULL = unset) */
#define RT_CONFIG_STRS(XX)                                                                         \
    XX(listen, "RTGW_LISTEN", "127.0.0.1:8288", "host:port to listen on")                          \
    XX(signing_key, "RTGW_SIGNING_KEY", NULL, "signkey-<env>-<hex>; required outside --dev")       \
    XX(signing_key_fallback, "RTGW_SIGNING_KEY_FALLBACK", NULL, "previous key during a rotation")  \
    XX(token_alg, "RTGW_TOKEN_ALG", "HS256", "HS256 or EdDSA")                                     \
    XX(issuer, "RTGW_TOKEN_ISSUER", "rtgw", "token iss claim")                                     \
    XX(allowed_origins, "RTGW_ALLOWED_ORIGINS", NULL, "comma-separated origins, or *")             \
    XX(public_url, "RTGW_PUBLIC_URL", NULL, "the URL browsers use, e.g. https://rt.example.com")   \
    XX(log_level, "RTGW_LOG_LEVEL", "info", "error, warn, info or debug")                          \
    XX(redis_url, "RTGW_REDIS_URL", NULL,                                                          \
       "redis://[:password@]host[:port][/db]: the Redis bus (several nodes); unset: in memory")    \
    XX(trusted_proxies, "RTGW_TRUSTED_PROXIES", NULL,                                              \
       "comma-separated proxy IPs whose X-Forwarded-For names the client")                         \
    XX(tls_cert, "RTGW_TLS_CERT", NULL, "PEM certificate (chain): serve https:// and wss://")      \
    XX(tls_key, "RTGW_TLS_KEY", NULL, "PEM private key matching RTGW_TLS_CERT")

typedef struct {
#define RT_CFG_INT_FIELD(f, env, def, mn, mx, help) int64_t f;
    RT_CONFIG_INTS(RT_CFG_INT_FIELD)
#undef RT_CFG_INT_FIELD
#define RT_CFG_STR_FIELD(f, env, def, help) char *f;
    RT_CONFIG_STRS(RT_CFG_STR_FIELD)
#undef RT_CFG_STR_FIELD
    bool dev;
    char *env_file; /* the --env-file given (NULL: ./.env); SIGHUP re-reads it */
    /* derived */
    char host[256];
    int port;
    char **origins; /* NULL-terminated; NULL means allow all */
    size_t norigins;
} rt_config_t;

/* Look up a variable: the process environment first, then the .env file
 * loaded by rt_config_load. Returns NULL if unset or empty. */
typedef struct rt_envfile_s rt_envfile_t;

/* Load configuration. env_file may be NULL (then ".env" if it exists). Each
 * problem is written to `errs` as one line "RTGW_X: what is wrong (fix)" and
 * counted; returns the number of errors (0 = usable). cfg must be released
 * with rt_config_free even on error. */
int rt_config_load(rt_config_t *cfg, const char *env_file, bool dev, char *errs, size_t errs_cap);
void rt_config_free(rt_config_t *cfg);

/* Parse "host:port" / "[v6]:port" / ":port"; 0 or -1. */
int rt_config_parse_listen(const char *s, char *host, size_t hostcap, int *port);
/* True if cfg listens on a loopback address only (127.0.0.0/8, ::1 or
 * localhost): dev mode accepts any signing key only there. */
bool rt_config_listen_loopback(const rt_config_t *cfg);
/* True if the origin is allowed by cfg (exact match, case-insensitive scheme/host). */
bool rt_config_origin_allowed(const rt_config_t *cfg, const char *origin);
/* The same over a NULL-terminated list (NULL: every origin allowed); an
 * absent or empty origin (not a browser) is allowed. */
bool rt_origins_allowed(char *const *origins, size_t norigins, const char *origin);
/* Print every variable with its default and help (for --help and docs). */
void rt_config_print_help(void);

#endif
