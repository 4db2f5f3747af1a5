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

void rt_metrics_publish_latency(rt_metrics_t *m, uint64_t us)
{
    int b = 0;
    while (b < RT_METRICS_LAT_BUCKETS && us > lat_bounds_us[b])
        b++;
    atomic_fetch_add_explicit(&m->publish_lat_us[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->publish_lat_sum_us, us, memory_order_relaxed);
}

void rt_metrics_bus_latency(rt_metrics_t *m, uint64_t us)
{
    int b = 0;
    while (b < RT_METRICS_LAT_BUCKETS && us > lat_bounds_us[b])
        b++;
    atomic_fetch_add_explicit(&m->bus_lat_us[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->bus_lat_sum_us, us, memory_order_relaxed);
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

char *rt_metrics_render(rt_metrics_t *m, rt_hub_t *hub, int64_t uptime_s)
{
    sb_t sb = {malloc(4096), 0, 4096, 0};
    if (!sb.buf)
        return NULL;
    rt_hub_stats_t hs;
    rt_hub_stats(hub, &hs);
    sb_printf(&sb,
              "# HELP rtgw_uptime_seconds Seconds since start.\n# TYPE rtgw_uptime_seconds "
              "gauge\nrtgw_uptime_seconds %lld\n",
              (long long)uptime_s);
    sb_printf(&sb,
              "# HELP rtgw_connections Open WebSocket and SSE connections.\n# TYPE "
              "rtgw_connections gauge\nrtgw_connections %lld\n",
              (long long)atomic_load(&m->connections_open));
    sb_printf(&sb,
              "# HELP rtgw_connections_total Connections accepted since start.\n# TYPE "
              "rtgw_connections_total counter\nrtgw_connections_total %llu\n",
              LOAD(m->connections_total));
    sb_printf(&sb,
              "# HELP rtgw_channels Channels with subscribers or history.\n# TYPE rtgw_channels "
              "gauge\nrtgw_channels %llu\n",
              (unsigned long long)hs.channels);
    sb_printf(&sb,
              "# HELP rtgw_subscriptions Subscriber (channel, topic) pairs.\n# TYPE "
              "rtgw_subscriptions gauge\nrtgw_subscriptions %llu\n",
              (unsigned long long)hs.subscriptions);
    sb_printf(&sb,
              "# HELP rtgw_history_events Events held in history.\n# TYPE rtgw_history_events "
              "gauge\nrtgw_history_events %llu\n",
              (unsigned long long)hs.history_events);
    sb_printf(&sb,
              "# HELP rtgw_publishes_total Events published.\n# TYPE rtgw_publishes_total "
              "counter\nrtgw_publishes_total %llu\n",
              (unsigned long long)hs.publishes);
    sb_printf(&sb,
              "# HELP rtgw_deliveries_total Events enqueued to subscribers.\n# TYPE "
              "rtgw_deliveries_total counter\nrtgw_deliveries_total %llu\n",
              (unsigned long long)hs.deliveries);
    sb_printf(&sb,
              "# HELP rtgw_replayed_total Events replayed from history on resume.\n# TYPE "
              "rtgw_replayed_total counter\nrtgw_replayed_total %llu\n",
              (unsigned long long)hs.replayed);
    sb_printf(&sb,
              "# HELP rtgw_frames_written_total Frames written to sockets.\n# TYPE "
              "rtgw_frames_written_total counter\nrtgw_frames_written_total %llu\n",
              LOAD(m->frames_written));
    sb_printf(&sb,
              "# HELP rtgw_bytes_written_total Bytes written to subscriber sockets.\n# TYPE "
              "rtgw_bytes_written_total counter\nrtgw_bytes_written_total %llu\n",
              LOAD(m->bytes_written));
    sb_printf(&sb,
              "# HELP rtgw_tokens_minted_total Tokens minted by POST /v1/realtime/token.\n# TYPE "
              "rtgw_tokens_minted_total counter\nrtgw_tokens_minted_total %llu\n",
              LOAD(m->tokens_minted));
    sb_printf(&sb,
              "# HELP rtgw_publish_requests_total Publish requests.\n# TYPE "
              "rtgw_publish_requests_total counter\nrtgw_publish_requests_total %llu\n",
              LOAD(m->publish_requests));
    sb_printf(&sb,
              "# HELP rtgw_publish_errors_total Publish requests refused.\n# TYPE "
              "rtgw_publish_errors_total counter\nrtgw_publish_errors_total %llu\n",
              LOAD(m->publish_errors));
    sb_printf(&sb,
              "# HELP rtgw_auth_failures_total Signing-key checks that failed (401).\n# TYPE "
              "rtgw_auth_failures_total counter\nrtgw_auth_failures_total %llu\n",
              LOAD(m->auth_failures));
    sb_printf(
        &sb,
        "# HELP rtgw_origin_refused_total WebSocket/SSE requests refused by the origin "
        "allowlist.\n# TYPE rtgw_origin_refused_total counter\nrtgw_origin_refused_total %llu\n",
        LOAD(m->origin_refused));
    sb_printf(&sb, "# HELP rtgw_disconnects_total Connections ended, by reason.\n# TYPE "
                   "rtgw_disconnects_total counter\n");
    for (int r = 0; r < RT_REASON__COUNT; r++)
        sb_printf(&sb, "rtgw_disconnects_total{reason=\"%s\"} %llu\n",
                  rt_reason_name((rt_reason_t)r), LOAD(m->disconnects[r]));
    sb_printf(&sb, "# HELP rtgw_refusals_total Connections refused before streaming, by reason.\n# "
                   "TYPE rtgw_refusals_total counter\n");
    for (int r = 0; r < RT_REASON__COUNT; r++)
        if (LOAD(m->refusals[r]))
            sb_printf(&sb, "rtgw_refusals_total{reason=\"%s\"} %llu\n",
                      rt_reason_name((rt_reason_t)r), LOAD(m->refusals[r]));
    sb_printf(&sb,
              "# HELP rtgw_slow_consumer_kicks_total Subscribers disconnected for not reading.\n# "
              "TYPE rtgw_slow_consumer_kicks_total counter\nrtgw_slow_consumer_kicks_total %llu\n",
              (unsigned long long)hs.slow_kicks);
    sb_printf(&sb, "# HELP rtgw_token_refusals_total Tokens refused, by reason.\n# TYPE "
                   "rtgw_token_refusals_total counter\n");
    for (int i = 1; i < RT_METRICS_TOKERR_MAX; i++)
        if (LOAD(m->token_refusals[i]))
            sb_printf(&sb, "rtgw_token_refusals_total{reason=\"%s\"} %llu\n", rt_tok_errname(-i),
                      LOAD(m->token_refusals[i]));
    sb_printf(
        &sb, "# HELP rtgw_publish_enqueue_seconds Time from a publish request's parsed body to "
             "every subscriber queue holding it.\n# TYPE rtgw_publish_enqueue_seconds histogram\n");
    unsigned long long cum = 0;
    for (int b = 0; b < RT_METRICS_LAT_BUCKETS; b++) {
        cum += LOAD(m->publish_lat_us[b]);
        sb_printf(&sb, "rtgw_publish_enqueue_seconds_bucket{le=\"%g\"} %llu\n",
                  lat_bounds_us[b] / 1e6, cum);
    }
    cum += LOAD(m->publish_lat_us[RT_METRICS_LAT_BUCKETS]);
    sb_printf(&sb, "rtgw_publish_enqueue_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
    sb_printf(&sb, "rtgw_publish_enqueue_seconds_sum %g\n", LOAD(m->publish_lat_sum_us) / 1e6);
    sb_printf(&sb, "rtgw_publish_enqueue_seconds_count %llu\n", cum);
    const char *bus = m->bus_name ? m->bus_name : "memory";
    sb_printf(&sb,
              "# HELP rtgw_bus_up Whether the bus can publish (1) or not (0).\n# TYPE rtgw_bus_up "
              "gauge\nrtgw_bus_up{bus=\"%s\"} %d\n",
              bus, atomic_load(&m->bus_up));
    sb_printf(&sb,
              "# HELP rtgw_bus_channels Channels this node is subscribed to on the bus (Redis "
              "pub/sub).\n# TYPE rtgw_bus_channels gauge\nrtgw_bus_channels %lld\n",
              (long long)atomic_load(&m->bus_channels));
    sb_printf(&sb,
              "# HELP rtgw_bus_errors_total Failed bus (Redis) round trips and dropped "
              "connections.\n# TYPE rtgw_bus_errors_total counter\nrtgw_bus_errors_total %llu\n",
              LOAD(m->bus_errors));
    sb_printf(
        &sb,
        "# HELP rtgw_bus_reconnects_total Reconnections of the bus subscriber connection after an "
        "outage.\n# TYPE rtgw_bus_reconnects_total counter\nrtgw_bus_reconnects_total %llu\n",
        LOAD(m->bus_reconnects));
    sb_printf(&sb, "# HELP rtgw_bus_publish_seconds Round trip of one publish to the bus (Redis "
                   "script).\n# TYPE rtgw_bus_publish_seconds histogram\n");
    cum = 0;
    for (int b = 0; b < RT_METRICS_LAT_BUCKETS; b++) {
        cum += LOAD(m->bus_lat_us[b]);
        sb_printf(&sb, "rtgw_bus_publish_seconds_bucket{le=\"%g\"} %llu\n", lat_bounds_us[b] / 1e6,
                  cum);
    }
    cum += LOAD(m->bus_lat_us[RT_METRICS_LAT_BUCKETS]);
    sb_printf(&sb, "rtgw_bus_publish_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
    sb_printf(&sb, "rtgw_bus_publish_seconds_sum %g\n", LOAD(m->bus_lat_sum_us) / 1e6);
    sb_printf(&sb, "rtgw_bus_publish_seconds_count %llu\n", cum);
    if (sb.oom) {
        free(sb.buf);
        return NULL;
    }
    return sb.buf;
}
