/*
 * fixes.c — the fix texts several checks give (see checks.h): how to make a
 * proxy pass the WebSocket upgrade, reach a backend that is down, stop
 * buffering SSE, and keep idle connections. Read-only data.
 */
#include "checks.h"

const char rt__fix_upgrade[] =
    "the proxy must pass the WebSocket upgrade to rtgw; nginx, in the location for /v1/realtime/ "
    "(before any catch-all location /):\n"
    "  location /v1/realtime/ {\n"
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

const char rt__fix_idle[] =
    "raise the proxy's idle timeout above the heartbeat, in the location for /v1/realtime/:\n"
    "  proxy_read_timeout 3600s;\n"
    "  proxy_send_timeout 3600s;\n"
    "HAProxy: timeout tunnel 1h; a cloud load balancer: its idle timeout above "
    "RTGW_PING_INTERVAL_MS\n"
    "and keep rtgw's heartbeat below the shortest timeout on the path: RTGW_PING_INTERVAL_MS=15000 "
    "(the default)";
