/*
 * fixes.c — the fix texts several checks give (see checks.h): how to make a
 * proxy pass the WebSocket upgrade, reach a backend that is down, stop
 * buffering SSE, and keep idle connections; the routing advice for each
 * proxy (rt__fix_route, rt__fix_rewrite). Read-only data.
 */
#include "checks.h"

#include <stdio.h>

const char rt__fix_upgrade[] =
    "the proxy must pass the WebSocket upgrade to rtgw; nginx, in the location for /v1/realtime/ "
    "(before any catch-all location /):\n"
    "  location ^~ /v1/realtime/ {\n"
    "      proxy_pass http://127.0.0.1:8288;\n"
    "      proxy_http_version 1.1;\n"
    "      proxy_set_header Upgrade $http_upgrade;\n"
    "      proxy_set_header Connection \"upgrade\";\n"
    "      proxy_set_header Host $host;\n"
    "      proxy_read_timeout 3600s;\n"
    "  }\n"
    "Kong: the route needs protocols: [http, https, ws, wss] (without ws/wss Kong answers the "
    "upgrade itself: \"bad response from the server\")\n"
    "a complete, tested nginx configuration: examples/nginx/rtgw.conf\n"
    "then reload the proxy (nginx -t && systemctl reload nginx) and run doctor again";

const char rt__fix_backend_down[] =
    "start rtgw (systemctl start rtgw, or rtgw serve) on the upstream host\n"
    "check that the proxy's upstream (proxy_pass) matches RTGW_LISTEN (default "
    "127.0.0.1:8288): curl http://127.0.0.1:8288/health on that host must answer";

const char rt__fix_sse[] =
    "the proxy must not buffer the SSE stream; nginx:\n"
    "  location /v1/realtime/sse {\n"
    "      proxy_pass http://127.0.0.1:8288;\n"
    "      proxy_http_version 1.1;\n"
    "      proxy_buffering off;\n"
    "      proxy_cache off;\n"
    "      proxy_read_timeout 3600s;\n"
    "  }\n"
    "rtgw sends X-Accel-Buffering: no, which nginx obeys unless proxy_ignore_headers lists it; "
    "Caddy: flush_interval -1; a CDN must pass text/event-stream through unbuffered";

void rt__fix_idle_for(rt__who_kind_t proxy, double timeout_s, char *out, size_t cap)
{
    /* The heartbeat must beat strictly below the shortest idle timeout on
     * the path: half of it leaves room for a late ping, and rtgw's default of
     * 15 s is kept when it is already well below. */
    long t_ms = (long)(timeout_s * 1000.0);
    long hb = t_ms / 2;
    if (hb > 15000)
        hb = 15000;
    hb -= hb % 500;
    if (hb < 500)
        hb = 500;
    const char *setting = proxy == RT__WHO_NGINX     ? "nginx: proxy_read_timeout 3600s; "
                                                       "proxy_send_timeout 3600s; in the location for "
                                                       "/v1/realtime/"
                          : proxy == RT__WHO_HAPROXY ? "HAProxy: timeout tunnel 1h (and timeout "
                                                       "client/server above the heartbeat)"
                          : proxy == RT__WHO_CADDY
                              ? "Caddy: stream_timeout / transport read_timeout in reverse_proxy, "
                                "if set"
                          : proxy == RT__WHO_KONG
                              ? "Kong: read_timeout and write_timeout (ms) on the rtgw service"
                              : "the proxy's idle or read timeout (nginx proxy_read_timeout, "
                                "HAProxy timeout tunnel, Kong read_timeout, a cloud load "
                                "balancer's idle timeout)";
    snprintf(out, cap,
             "a hop on the path closes a WebSocket that is idle for about %.0f s; raise that "
             "timeout: %s\n"
             "and keep rtgw's heartbeat strictly below the shortest timeout on the path: "
             "RTGW_PING_INTERVAL_MS=%ld (%.1f s, below the %.0f s seen here)",
             timeout_s, setting, hb, (double)hb / 1000.0, timeout_s);
}

void rt__fix_route(rt__who_kind_t proxy, char *out, size_t cap)
{
    switch (proxy) {
    case RT__WHO_NGINX:
        snprintf(out, cap,
                 "nginx: give /v1/realtime/ its own location, with ^~ so that no regex location "
                 "(location ~ …) can take it first, and a proxy_pass without a URI part:\n"
                 "  location ^~ /v1/realtime/ {\n"
                 "      proxy_pass http://127.0.0.1:8288;\n"
                 "      proxy_http_version 1.1;\n"
                 "      proxy_set_header Upgrade $http_upgrade;\n"
                 "      proxy_set_header Connection \"upgrade\";\n"
                 "      proxy_read_timeout 3600s;\n"
                 "  }\n"
                 "  location = /health { proxy_pass http://127.0.0.1:8288; }\n"
                 "precedence: an exact match (=) first, then the longest prefix marked ^~, then "
                 "the first matching regex in file order, then the longest plain prefix; the "
                 "catch-all location / only gets what nothing else matched\n"
                 "a complete, tested configuration: examples/nginx/rtgw.conf");
        break;
    case RT__WHO_CADDY:
        snprintf(out, cap,
                 "Caddy: route /v1/realtime/* to rtgw before the catch-all, with handle (not "
                 "handle_path, which strips the prefix):\n"
                 "  handle /v1/realtime/* {\n"
                 "      reverse_proxy 127.0.0.1:8288\n"
                 "  }\n"
                 "  handle /health { reverse_proxy 127.0.0.1:8288 }\n"
                 "a complete, tested configuration: examples/caddy/Caddyfile");
        break;
    case RT__WHO_HAPROXY:
        snprintf(out, cap,
                 "HAProxy: the first use_backend whose ACL matches wins; put rtgw's before any "
                 "rule that also matches /v1/realtime/ (default_backend stays the app):\n"
                 "  acl is_rtgw path_beg /v1/realtime/ /health\n"
                 "  use_backend rtgw if is_rtgw\n"
                 "a complete, tested configuration: examples/haproxy/haproxy.cfg");
        break;
    case RT__WHO_KONG:
        snprintf(out, cap,
                 "Kong: a route on the rtgw service with paths: [/v1/realtime/], strip_path: "
                 "false, and protocols that include the upgrade (ws, wss where your Kong has "
                 "them); see examples/kong/kong.yml");
        break;
    default:
        snprintf(out, cap,
                 "point the URL at rtgw (RTGW_LISTEN, default 127.0.0.1:8288) or at the proxy in "
                 "front of it, and route /v1/realtime/ and /health there:\n"
                 "  nginx: location ^~ /v1/realtime/ { proxy_pass http://127.0.0.1:8288; … } "
                 "(examples/nginx/rtgw.conf)\n"
                 "  Caddy: handle /v1/realtime/* { reverse_proxy 127.0.0.1:8288 } "
                 "(examples/caddy/Caddyfile)\n"
                 "  HAProxy: use_backend rtgw if { path_beg /v1/realtime/ } before other rules "
                 "(examples/haproxy/haproxy.cfg)");
    }
}

void rt__fix_rewrite(rt__who_kind_t proxy, char *out, size_t cap)
{
    switch (proxy) {
    case RT__WHO_NGINX:
        snprintf(out, cap,
                 "nginx: write proxy_pass without a URI part: proxy_pass http://127.0.0.1:8288; "
                 "(a trailing / or a path after the port replaces the matched location prefix, "
                 "so /v1/realtime/connect arrives as /connect)");
        break;
    case RT__WHO_CADDY:
        snprintf(out, cap,
                 "Caddy: use handle /v1/realtime/* instead of handle_path (handle_path strips the "
                 "matched prefix), and drop any uri strip_prefix for these paths");
        break;
    case RT__WHO_KONG:
        snprintf(out, cap,
                 "Kong: set strip_path: false on the route (true strips /v1/realtime/ before "
                 "proxying), and give the service a URL without a path");
        break;
    default:
        snprintf(out, cap,
                 "the proxy must pass the path unchanged: nginx proxy_pass http://127.0.0.1:8288; "
                 "(no URI part); Caddy handle, not handle_path; HAProxy no set-path/replace-path "
                 "on /v1/realtime/; Kong strip_path: false");
    }
}
