/*
 * metrics.h — process counters rendered in Prometheus text format at /metrics.
 * All updates are relaxed atomics; any thread may update or render.
 */
#ifndef RT_METRICS_H
#define RT_METRICS_H

#include "hub.h"
#include "reason.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define RT_METRICS_TOKERR_MAX 64
#define RT_METRICS_LAT_BUCKETS 12

typedef struct {
    atomic_llong connections_open; /* WebSocket + SSE */
    atomic_ullong connections_total;
    atomic_ullong disconnects[RT_REASON__COUNT];
    atomic_ullong refusals[RT_REASON__COUNT];
    atomic_ullong token_refusals[RT_METRICS_TOKERR_MAX]; /* by -rt_tok_err_t */
    atomic_ullong tokens_minted;
    atomic_ullong publish_requests;
    atomic_ullong publish_errors;
    atomic_ullong auth_failures;
    atomic_ullong origin_refused;
    atomic_ullong frontdoor_upgrades; /* answered by the front door itself (fastpath.h) */
    atomic_ullong frontdoor_mints;
    atomic_ullong frontdoor_refusals;   /* upgrades it refused (fastpath.h) */
    atomic_llong subscribe_queued;      /* upgrades waiting for a subscribe thread (Redis bus): set
                                         * from the queue itself when rendered (routes.c) */
    atomic_ullong subscribe_queue_full; /* upgrades refused 503 for a full queue */
    atomic_ullong frames_written;
    atomic_ullong bytes_written;
    atomic_ullong publish_lat_us[RT_METRICS_LAT_BUCKETS + 1]; /* +Inf last */
    atomic_ullong publish_lat_sum_us;
    /* the bus (bus.h): "memory" or "redis" */
    const char *bus_name;
    atomic_int bus_up;
    atomic_llong bus_channels; /* channels this node is subscribed to on the bus */
    atomic_ullong bus_errors;  /* failed bus round trips and dropped connections */
    atomic_ullong bus_reconnects;
    atomic_ullong bus_lat_us[RT_METRICS_LAT_BUCKETS + 1]; /* publish round trip; +Inf last */
    atomic_ullong bus_lat_sum_us;
} rt_metrics_t;

void rt_metrics_init(rt_metrics_t *m);
void rt_metrics_token_refusal(rt_metrics_t *m, int tok_err);
void rt_metrics_publish_latency(rt_metrics_t *m, uint64_t us);
/* One bus publish round trip. */
void rt_metrics_bus_latency(rt_metrics_t *m, uint64_t us);
/* Render into a new malloc'd NUL-terminated string (caller frees); NULL on OOM. */
char *rt_metrics_render(rt_metrics_t *m, rt_hub_t *hub, int64_t uptime_s);

#endif
