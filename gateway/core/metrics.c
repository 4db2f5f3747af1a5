#include "metrics.h"
#include "rt_tokens.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint64_t lat_bounds_us[RT_METRICS_LAT_BUCKETS] = {
    10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000, 250000};

void rt_metrics_init(rt_metrics_t *m)
{
    memset(m, 0, sizeof(*m));
    m->bus_name = "memory";
    atomic_store(&m->bus_up, 1);
}

void rt_metrics_token_refusal(rt_metrics_t *m, int tok_err)
{
    int i = -tok_err;
    if (i > 0 && i < RT_METRICS_TOKERR_MAX)
        atomic_fetch_add_explicit(&m->token_refusals[i], 1, memory_order_relaxed);
}

/* Count one observation of us microseconds in a latency histogram. */
static void observe(atomic_ullong *buckets, atomic_ullong *sum_us, uint64_t us)
{
    int b = 0;
    while (b < RT_METRICS_LAT_BUCKETS && us > lat_bounds_us[b])
        b++;
    atomic_fetch_add_explicit(&buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(sum_us, us, memory_order_relaxed);
}

void rt_metrics_publish_latency(rt_metrics_t *m, uint64_t us)
{
    observe(m->publish_lat_us, &m->publish_lat_sum_us, us);
}

void rt_metrics_bus_latency(rt_metrics_t *m, uint64_t us)
{
    observe(m->bus_lat_us, &m->bus_lat_sum_us, us);
}

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} sb_t;

static void sb_printf(sb_t *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb_t *sb, const char *fmt, ...)
{
    if (sb->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            sb->oom = 1;
            return;
        }
        if ((size_t)n < sb->cap - sb->len) {
            sb->len += (size_t)n;
            return;
        }
        size_t nc = sb->cap * 2 + (size_t)n;
        char *nb = realloc(sb->buf, nc);
        if (!nb) {
            sb->oom = 1;
            return;
        }
        sb->buf = nb;
        sb->cap = nc;
    }
}

#define LOAD(x) ((unsigned long long)atomic_load_explicit(&(x), memory_order_relaxed))

/* One sample with its HELP and TYPE lines: "# HELP name help", "# TYPE name
 * type", "name value". */
static void metric(sb_t *sb, const char *name, const char *type, const char *help,
                   unsigned long long value)
{
    sb_printf(sb, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name, value);
}

/* The same for a gauge that may be negative. */
static void gauge_signed(sb_t *sb, const char *name, const char *help, long long value)
{
    sb_printf(sb, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name, value);
}

/* A latency histogram in seconds from buckets in microseconds (the last
 * bucket counts what is above every bound) and their sum. */
static void histogram(sb_t *sb, const char *name, const char *help, const atomic_ullong *us,
                      const atomic_ullong *sum_us)
{
    sb_printf(sb, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    unsigned long long cum = 0;
    for (int b = 0; b < RT_METRICS_LAT_BUCKETS; b++) {
        cum += LOAD(us[b]);
        sb_printf(sb, "%s_bucket{le=\"%g\"} %llu\n", name, lat_bounds_us[b] / 1e6, cum);
    }
    cum += LOAD(us[RT_METRICS_LAT_BUCKETS]);
    sb_printf(sb, "%s_bucket{le=\"+Inf\"} %llu\n", name, cum);
    sb_printf(sb, "%s_sum %g\n", name, LOAD(*sum_us) / 1e6);
    sb_printf(sb, "%s_count %llu\n", name, cum);
}

/* Counters by reason: every reason when all is set, else the non-zero ones. */
static void by_reason(sb_t *sb, const char *name, const char *help, const atomic_ullong *v,
                      bool all)
{
    sb_printf(sb, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (int r = 0; r < RT_REASON__COUNT; r++)
        if (all || LOAD(v[r]))
            sb_printf(sb, "%s{reason=\"%s\"} %llu\n", name, rt_reason_name((rt_reason_t)r),
                      LOAD(v[r]));
}

/* Connections, channels and what the hub counted. */
static void render_hub(sb_t *sb, rt_metrics_t *m, const rt_hub_stats_t *hs, int64_t uptime_s)
{
    gauge_signed(sb, "rtgw_uptime_seconds", "Seconds since start.", (long long)uptime_s);
    gauge_signed(sb, "rtgw_connections", "Open WebSocket and SSE connections.",
                 (long long)atomic_load(&m->connections_open));
    metric(sb, "rtgw_connections_total", "counter",
           "WebSocket and SSE connections admitted since start (refusals: rtgw_refusals_total).",
           LOAD(m->connections_total));
    metric(sb, "rtgw_channels", "gauge", "Channels with subscribers or history.", hs->channels);
    metric(sb, "rtgw_subscriptions", "gauge", "Subscriber (channel, topic) pairs.",
           hs->subscriptions);
    metric(sb, "rtgw_history_events", "gauge", "Events held in history.", hs->history_events);
    metric(sb, "rtgw_publishes_total", "counter", "Events published.", hs->publishes);
    metric(sb, "rtgw_deliveries_total", "counter", "Events enqueued to subscribers.",
           hs->deliveries);
    metric(sb, "rtgw_replayed_total", "counter", "Events replayed from history on resume.",
           hs->replayed);
}

/* What the server and the api counted: writes, mints, publishes, refusals. */
static void render_server(sb_t *sb, rt_metrics_t *m, const rt_hub_stats_t *hs)
{
    metric(sb, "rtgw_frames_written_total", "counter", "Frames written to sockets.",
           LOAD(m->frames_written));
    metric(sb, "rtgw_bytes_written_total", "counter", "Bytes written to subscriber sockets.",
           LOAD(m->bytes_written));
    metric(sb, "rtgw_tokens_minted_total", "counter", "Tokens minted by POST /v1/realtime/token.",
           LOAD(m->tokens_minted));
    metric(sb, "rtgw_publish_requests_total", "counter", "Publish requests.",
           LOAD(m->publish_requests));
    metric(sb, "rtgw_publish_errors_total", "counter", "Publish requests refused.",
           LOAD(m->publish_errors));
    metric(sb, "rtgw_auth_failures_total", "counter", "Signing-key checks that failed (401).",
           LOAD(m->auth_failures));
    metric(sb, "rtgw_origin_refused_total", "counter",
           "WebSocket/SSE requests refused by the origin allowlist.", LOAD(m->origin_refused));
    sb_printf(sb,
              "# HELP rtgw_frontdoor_answered_total Requests the front door answered itself, "
              "without an HTTP worker thread.\n# TYPE rtgw_frontdoor_answered_total counter\n"
              "rtgw_frontdoor_answered_total{request=\"upgrade\"} %llu\n"
              "rtgw_frontdoor_answered_total{request=\"mint\"} %llu\n"
              "rtgw_frontdoor_answered_total{request=\"refusal\"} %llu\n",
              LOAD(m->frontdoor_upgrades), LOAD(m->frontdoor_mints), LOAD(m->frontdoor_refusals));
    gauge_signed(sb, "rtgw_subscribe_queue",
                 "Upgrades waiting for a subscribe thread (Redis bus: their subscription waits on "
                 "Redis).",
                 (long long)atomic_load(&m->subscribe_queued));
    metric(sb, "rtgw_subscribe_queue_full_total", "counter",
           "Upgrades refused 503 over_capacity because the subscribe queue was full.",
           LOAD(m->subscribe_queue_full));
    by_reason(sb, "rtgw_disconnects_total", "Connections ended, by reason.", m->disconnects, true);
    by_reason(sb, "rtgw_refusals_total", "Connections refused before streaming, by reason.",
              m->refusals, false);
    metric(sb, "rtgw_slow_consumer_kicks_total", "counter",
           "Subscribers disconnected for not reading.", hs->slow_kicks);
    sb_printf(sb, "# HELP rtgw_token_refusals_total Tokens refused, by reason.\n# TYPE "
                  "rtgw_token_refusals_total counter\n");
    for (int i = 1; i < RT_METRICS_TOKERR_MAX; i++)
        if (LOAD(m->token_refusals[i]))
            sb_printf(sb, "rtgw_token_refusals_total{reason=\"%s\"} %llu\n", rt_tok_errname(-i),
                      LOAD(m->token_refusals[i]));
    histogram(sb, "rtgw_publish_enqueue_seconds",
              "Time from a publish request's parsed body to every subscriber queue holding it.",
              m->publish_lat_us, &m->publish_lat_sum_us);
}

/* The bus: up, channels, errors, reconnects, publish round trips. */
static void render_bus(sb_t *sb, rt_metrics_t *m)
{
    const char *bus = m->bus_name ? m->bus_name : "memory";
    sb_printf(sb,
              "# HELP rtgw_bus_up Whether the bus can publish (1) or not (0).\n# TYPE rtgw_bus_up "
              "gauge\nrtgw_bus_up{bus=\"%s\"} %d\n",
              bus, atomic_load(&m->bus_up));
    gauge_signed(sb, "rtgw_bus_channels",
                 "Channels this node is subscribed to on the bus (Redis pub/sub).",
                 (long long)atomic_load(&m->bus_channels));
    metric(sb, "rtgw_bus_errors_total", "counter",
           "Failed bus (Redis) round trips and dropped connections.", LOAD(m->bus_errors));
    metric(sb, "rtgw_bus_reconnects_total", "counter",
           "Reconnections of the bus subscriber connection after an outage.",
           LOAD(m->bus_reconnects));
    histogram(sb, "rtgw_bus_publish_seconds",
              "Round trip of one publish to the bus (Redis script).", m->bus_lat_us,
              &m->bus_lat_sum_us);
}

char *rt_metrics_render(rt_metrics_t *m, rt_hub_t *hub, int64_t uptime_s)
{
    sb_t sb = {malloc(4096), 0, 4096, 0};
    if (!sb.buf)
        return NULL;
    rt_hub_stats_t hs;
    rt_hub_stats(hub, &hs);
    render_hub(&sb, m, &hs, uptime_s);
    render_server(&sb, m, &hs);
    render_bus(&sb, m);
    if (sb.oom) {
        free(sb.buf);
        return NULL;
    }
    return sb.buf;
}
