/*
 * hops.c — which hop changed the WebSocket request: what doctor sent
 * against what rtgw's probe record (record.h) says arrived, or, when nothing
 * arrived, who answered instead. Called by the upgrade check (checks_ws.c)
 * once the answer is not the expected one; each verdict cites its evidence
 * and reports a failure under "upgrade". See checks.h.
 *
 * Without --signing-key the record cannot be read; the verdict then names
 * the causes that remain and how to tell them apart.
 */
#include "checks.h"
#include "record.h"

#include <stdio.h>
#include <string.h>

/* The connect request as rtgw recorded it, or NULL (rec->status says why). */
static const rt__arrived_t *connect_arrived(rt__doctor_t *d, rt__record_t *rec)
{
    rt__record_read_upgrade(d, rec);
    if (rec->status != 0)
        return NULL;
    const rt__arrived_t *a = rt__record_find(rec, "GET", "/v1/realtime/connect");
    return a ? a : rt__record_last(rec);
}

int rt__hop_not_rtgw(rt__doctor_t *d, const rt__http_resp_t *r, const char *via)
{
    rt__who_t w;
    rt__who(r, &w);
    char found[1600], fix[1800];
    if (w.kind == RT__WHO_KONG && (r->status == 426 || r->status == 400)) {
        snprintf(found, sizeof(found),
                 "%s answered the upgrade itself with HTTP %d: the Kong route for /v1/realtime/ "
                 "does not carry the WebSocket protocols, so Kong never proxied it to rtgw (no "
                 "X-Rtgw header; the browser says \"bad response from the server\")",
                 w.what, r->status);
        snprintf(fix, sizeof(fix),
                 "Kong: list the upgrade's protocols on the route, next to http/https:\n"
                 "  protocols: [http, https, ws, wss]\n"
                 "and keep strip_path: false with paths: [/v1/realtime/]; then reload Kong "
                 "(kong reload, or redeploy the declarative config); see examples/kong/kong.yml");
        rt__report(&d->rep, RT_CHECK_FAIL, "upgrade", found, fix);
        return -1;
    }
    if (r->status == 502 || r->status == 504 ||
        (r->status == 503 && (w.kind == RT__WHO_HAPROXY || w.kind == RT__WHO_CADDY))) {
        snprintf(found, sizeof(found),
                 "HTTP %d on the upgrade from %s%s: the proxy is up but rtgw behind it is down",
                 r->status, w.what, via);
        rt__report(&d->rep, RT_CHECK_FAIL, "upgrade", found, rt__fix_backend_down);
        return -1;
    }
    snprintf(found, sizeof(found),
             "the upgrade never reached rtgw: %s answered GET /v1/realtime/connect (no X-Rtgw "
             "header)%s",
             w.what, via);
    rt__fix_route(d->proxy, fix, sizeof(fix));
    rt__report(&d->rep, RT_CHECK_FAIL, "upgrade", found, fix);
    return -1;
}

int rt__hop_upgrade_plain(rt__doctor_t *d, int status, const char *ename, const char *via)
{
    rt__record_t rec;
    const rt__arrived_t *a = connect_arrived(d, &rec);
    char found[1600], fix[1800];
    const char *seen = a ? a->connection : "";
    if (a && !a->upgrade[0]) {
        snprintf(found, sizeof(found),
                 "Upgrade: websocket was sent but did not arrive: rtgw's probe record shows GET "
                 "%s with no Upgrade header (Connection: %s, HTTP/%s), and rtgw answered %d %s%s: "
                 "the proxy does not pass the upgrade%s",
                 a->path, seen, a->http_version, status, ename, via,
                 strcmp(a->http_version, "1.1") != 0
                     ? " (and it speaks HTTP/1.0 to rtgw: nginx's default proxy_http_version "
                       "cannot carry an upgrade)"
                     : "");
        snprintf(fix, sizeof(fix), "%s", rt__fix_upgrade);
    } else if (a && strcmp(seen, "upgrade") != 0) {
        char as[64];
        snprintf(as, sizeof(as),
                 strcmp(seen, "absent") == 0  ? "did not arrive at all"
                 : strcmp(seen, "empty") == 0 ? "arrived as \"\""
                                              : "arrived as \"%s\"",
                 seen);
        snprintf(found, sizeof(found),
                 "Connection: Upgrade was sent but %s (Upgrade: %s did arrive; rtgw's probe "
                 "record), so rtgw saw a plain GET and answered %d %s%s: the proxy replaces the "
                 "Connection header",
                 as, a->upgrade, status, ename, via);
        snprintf(fix, sizeof(fix),
                 "nginx sends Connection: close upstream unless told otherwise; in the location "
                 "for /v1/realtime/ add\n"
                 "  proxy_set_header Connection \"upgrade\";\n"
                 "(or $connection_upgrade from a map), next to proxy_http_version 1.1 and "
                 "proxy_set_header Upgrade $http_upgrade\n%s",
                 rt__fix_upgrade);
    } else if (a && strcmp(a->http_version, "1.1") != 0) {
        snprintf(found, sizeof(found),
                 "the upgrade arrived as HTTP/%s (rtgw's probe record): WebSocket needs HTTP/1.1 "
                 "on the hop to rtgw",
                 a->http_version);
        snprintf(fix, sizeof(fix), "nginx: proxy_http_version 1.1; in the location\n%s",
                 rt__fix_upgrade);
    } else {
        snprintf(found, sizeof(found),
                 "rtgw (X-Rtgw) answered %d %s%s: it saw a plain GET, so a proxy dropped the "
                 "upgrade; two causes remain: the Upgrade header is not passed (proxy_set_header "
                 "Upgrade $http_upgrade, proxy_http_version 1.1) or Connection does not say "
                 "upgrade (proxy_set_header Connection \"upgrade\"); %s",
                 status, ename, via,
                 rec.status == RT__REC_NO_KEY
                     ? "run doctor with --signing-key and it reads which of the two arrived"
                     : rec.why);
        snprintf(fix, sizeof(fix), "%s", rt__fix_upgrade);
    }
    rt__report(&d->rep, RT_CHECK_FAIL, "upgrade", found, fix);
    return -1;
}

int rt__hop_token_missing(rt__doctor_t *d, const char *answer)
{
    rt__record_t rec;
    const rt__arrived_t *a = connect_arrived(d, &rec);
    char found[1600], fix[1800];
    if (a && !a->query_token)
        snprintf(
            found, sizeof(found),
            "the query string (with the token) was sent but did not arrive: rtgw's probe record "
            "shows GET %s %s, and rtgw %s: the proxy drops the query, so the token never "
            "arrives (a fresh token would not help)",
            a->path, a->query ? "with a query but no token=" : "without a query", answer);
    else if (a)
        snprintf(found, sizeof(found),
                 "rtgw %s although token= arrived in the query (rtgw's probe record); see the "
                 "gateway's log for this request",
                 answer);
    else
        snprintf(found, sizeof(found),
                 "doctor sent the token in the query, but rtgw %s: the proxy drops or rewrites "
                 "the query string (a fresh token would not help); %s",
                 answer,
                 rec.status == RT__REC_NO_KEY ? "run with --signing-key to read what arrived"
                                              : rec.why);
    snprintf(fix, sizeof(fix),
             "pass the query string through to rtgw on /v1/realtime/:\n"
             "  nginx: proxy_pass http://127.0.0.1:8288; (no $uri: proxy_pass "
             "http://…$uri; and rewrite … break without $args drop the query)\n"
             "  Caddy: rewrite and uri directives must keep {query}\n"
             "  HAProxy: use set-path, not set-uri, when rewriting");
    rt__report(&d->rep, RT_CHECK_FAIL, "upgrade", found, fix);
    return -1;
}
