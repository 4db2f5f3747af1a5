/*
 * checks_ws.c — the WebSocket a browser opens: the upgrade through every
 * proxy on the way (upgrade), rtgw's acknowledgement of the probe topic
 * (subscribe, judged on the first frame), a published probe arriving on it
 * (delivery), and the connection surviving an idle period (idle). See
 * checks.h.
 *
 * The upgrade leaves d->ws open (d->ws_open) for the later checks when it
 * and subscribe pass; a check that sees it close clears d->ws_open; the run
 * closes what is left open.
 */
#include "checks.h"
#include "clock.h"
#include "close_advice.h"
#include "describe.h"
#include "err.h"
#include "http_client.h"
#include "probe.h"
#include "record.h"
#include "wsframe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Open the connection and send the upgrade request for the probe topic
 * (with the token, when there is one) and key. *deadline: the deadline for
 * the answer. 0, or -1 (reported unless out of memory). */
static int upgrade_request(rt__doctor_t *d, const char *key, int64_t *deadline)
{
    char why[512];
    if (rt__net_open(&d->net, &d->ws.c, why, sizeof(why)) != 0) {
        rt__report(&d->rep, RT_CHECK_FAIL, "upgrade", why, NULL);
        return -1;
    }
    size_t qcap = (d->jwt ? strlen(d->jwt) : 0) + 2048;
    char *req = malloc(qcap);
    if (!req)
        return -1;
    char originhdr[600] = "", probe[48];
    rt__probe_upgrade_id(d, probe, sizeof(probe));
    if (d->o->origin)
        snprintf(originhdr, sizeof(originhdr), "Origin: %s\r\n", d->o->origin);
    int n = snprintf(req, qcap,
                     "GET /v1/realtime/connect?%s%s%srtgw=1&rtgw_probe=%s HTTP/1.1\r\nHost: %s\r\n"
                     "User-Agent: rtgw-doctor/%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "X-Rtgw-Probe: %s\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                     d->jwt ? "token=" : "", d->jwt ? d->jwt : "", d->jwt ? "&" : "", probe,
                     d->net.hosthdr, RT_VERSION, probe, key, originhdr);
    *deadline = rt_clock_mono_ms() + d->net.timeout_ms;
    int rc = rt__net_write(&d->ws.c, req, (size_t)n, *deadline);
    free(req);
    if (rc != 0) {
        rt__report(&d->rep, RT_CHECK_FAIL, "upgrade",
                   "the connection closed while sending the upgrade request", NULL);
        return -1;
    }
    return 0;
}

/* The fix for an upgrade that an rtgw error refused (401, 403, 503). */
static const char *refusal_fix(const char *ename)
{
    return strstr(ename, "origin")     ? "add the page origin to RTGW_ALLOWED_ORIGINS"
           : strstr(ename, "expired")  ? "mint a fresh token; check clocks (NTP)"
           : strstr(ename, "capacity") ? "raise RTGW_MAX_CONNECTIONS"
                                       : "mint a fresh token with the gateway's signing key";
}

/* Any answer but 101: which link dropped the upgrade. Reports a failure. */
static void upgrade_refused(rt__doctor_t *d, rt__http_resp_t *r, const char *via)
{
    char found[1500], fix[1500], desc[300];
    rt__http_read_body(&d->ws.c, r, rt_clock_mono_ms() + RT__ERROR_BODY_MS);
    char *ename = rt__json_error_text(&r->body, false);
    const char *sp = ename ? " " : "", *en = ename ? ename : "";
    rt__describe_body(r, desc, sizeof(desc));
    /* rtgw answers a GET on /v1/realtime/connect that carries no upgrade with
     * 426 upgrade_required (older builds: 404 not_found): the headers were
     * dropped on the way. A 400/426 from anything else means the server saw
     * Upgrade without Connection: upgrade. */
    bool rtgw_plain = ename && (strncmp(ename, "upgrade_required", 16) == 0 ||
                                strncmp(ename, "not_found", 9) == 0);
    if (!rt__is_rtgw(r)) {
        rt__hop_not_rtgw(d, r, via);
    } else if (rtgw_plain) {
        rt__hop_upgrade_plain(d, r->status, ename, via);
    } else if (r->status == 401 && d->jwt && strstr(ename ? ename : "", "token_missing")) {
        rt__hop_token_missing(d, "answered HTTP 401 token_missing");
    } else if (r->status == 200 || r->status == 404) {
        snprintf(found, sizeof(found),
                 "HTTP %d%s%s%s instead of 101 Switching Protocols: the proxy does not pass the "
                 "Upgrade header (the request reached %s as a plain GET); a browser reports 1006",
                 r->status, sp, en, via, rtgw_plain ? "rtgw" : "the backend");
        rt__report(&d->rep, RT_CHECK_FAIL, "upgrade", found, rt__fix_upgrade);
    } else if (r->status == 400 || r->status == 426) {
        snprintf(found, sizeof(found),
                 "HTTP %d%s%s%s instead of 101: Connection: upgrade is stripped on the way (the "
                 "server saw Upgrade without Connection: upgrade)",
                 r->status, sp, en, via);
        snprintf(fix, sizeof(fix),
                 "nginx sends Connection: close to the upstream unless told otherwise; add\n"
                 "  proxy_set_header Connection \"upgrade\";\n%s",
                 rt__fix_upgrade);
        rt__report(&d->rep, RT_CHECK_FAIL, "upgrade", found, fix);
    } else if (r->status == 502 || r->status == 504) {
        snprintf(found, sizeof(found),
                 "HTTP %d on the upgrade%s: the proxy answers but the backend is down", r->status,
                 via);
        rt__report(&d->rep, RT_CHECK_FAIL, "upgrade", found, rt__fix_backend_down);
    } else if ((r->status == 401 || r->status == 403 || r->status == 503) && ename) {
        snprintf(found, sizeof(found), "HTTP %d %s refused the upgrade%s", r->status, ename, via);
        snprintf(fix, sizeof(fix), "%s", refusal_fix(ename));
        rt__report(&d->rep, RT_CHECK_FAIL, "upgrade", found, fix);
    } else {
        snprintf(found, sizeof(found), "HTTP %d instead of 101 on the upgrade (%s)%s", r->status,
                 ename ? ename : desc, via);
        rt__report(&d->rep, RT_CHECK_FAIL, "upgrade", found,
                   "check what answers /v1/realtime/connect: it must reach rtgw with the Upgrade "
                   "and Connection headers intact");
    }
    free(ename);
}

/* A 101 must carry the accept value for our key: 0, or -1 after reporting. */
static int upgrade_accept(rt__doctor_t *d, const rt__http_resp_t *r, const char *expect)
{
    char accept[80] = "", found[1500];
    rt__http_header(r->head, "Sec-WebSocket-Accept", accept, sizeof(accept));
    if (strcmp(accept, expect) == 0)
        return 0;
    snprintf(found, sizeof(found),
             "101, but Sec-WebSocket-Accept is '%s', not '%s': a proxy rewrote the handshake "
             "or something else answers; browsers abort such a connection (1006)",
             accept, expect);
    rt__report(&d->rep, RT_CHECK_FAIL, "upgrade", found,
               "make the proxy pass the handshake through unchanged (no header rewriting on "
               "/v1/realtime/connect), or point it at rtgw");
    return -1;
}

/* The first frame is a close frame (payload p, freed here). Without a token
 * 4401 token_missing is the expected answer: the upgrade reached rtgw. */
static int upgrade_closed(rt__doctor_t *d, char *p, size_t plen, const char *via)
{
    int code;
    char reason[200], found[1500], fix[1500];
    rt__ws_close_parse(p, plen, &code, reason, sizeof(reason));
    free(p);
    if (d->jwt && rt__close_is(code, RT_REASON_TOKEN_MISSING)) {
        char answer[200];
        snprintf(answer, sizeof(answer), "accepted the upgrade, then closed with %d %s", code,
                 rt_reason_name(RT_REASON_TOKEN_MISSING));
        return rt__hop_token_missing(d, answer);
    }
    if (!d->jwt && rt__close_is(code, RT_REASON_TOKEN_MISSING)) {
        snprintf(found, sizeof(found),
                 "101 with a correct Sec-WebSocket-Accept, then %d %s as expected "
                 "without a token: the upgrade reaches rtgw%s",
                 code, rt_reason_name(RT_REASON_TOKEN_MISSING), via);
        rt__report(&d->rep, RT_CHECK_OK, "upgrade", found, NULL);
        rt__report(&d->rep, RT_CHECK_SKIP, "subscribe", "needs --signing-key or --token", NULL);
        return 0;
    }
    rt__close_advice(code, reason, d->o->origin, found, sizeof(found), fix, sizeof(fix));
    rt__report(&d->rep, RT_CHECK_FAIL, "upgrade", found, fix[0] ? fix : NULL);
    return -1;
}

/* Whether the upgrade reached rtgw, from its probe record: 1 it did, 0 it did
 * not (another server answered it), -1 unknown (no key, record unreadable). */
static int upgrade_arrival(rt__doctor_t *d)
{
    rt__record_t rec;
    rt__record_read_upgrade(d, &rec);
    if (rec.status != 0)
        return -1;
    return rt__record_find(&rec, "GET", "/v1/realtime/connect") != NULL;
}

/* The subscribe check, on the first frame after the upgrade (k: what
 * rt__ws_next returned; op, p: the frame). t0: when the wait began. */
static int subscribe_verdict(rt__doctor_t *d, int k, int op, const char *p, int64_t t0)
{
    char found[1500];
    if (k == RT_E_TIMEOUT) {
        int arrived = upgrade_arrival(d);
        snprintf(found, sizeof(found),
                 "no frame within the timeout after the upgrade (expected rtgw.subscribed); %s",
                 arrived == 1   ? "rtgw's probe record shows the upgrade arrived"
                 : arrived == 0 ? "rtgw's probe record holds no upgrade request: the 101 came "
                                  "from another server"
                                : "--signing-key lets doctor check whether the upgrade reached "
                                  "rtgw");
        rt__report(&d->rep, RT_CHECK_FAIL, "subscribe", found,
                   arrived == 1 ? "a proxy holds WebSocket frames back (buffering on the upgraded "
                                  "location); see the gateway's log for this connection"
                   : arrived == 0
                       ? "route /v1/realtime/connect to rtgw, not to a WebSocket server of the app"
                       : "a proxy may hold WebSocket frames back, or another server answered the "
                         "upgrade; run with --signing-key to tell which");
        return -1;
    }
    if (op == RT_WS_TEXT && strstr(p, "\"rtgw.subscribed\"")) {
        snprintf(found, sizeof(found),
                 "rtgw.subscribed to " RT__PROBE_CHANNEL "/" RT__PROBE_TOPIC " in %lld ms",
                 (long long)(rt_clock_mono_ms() - t0));
        rt__report(&d->rep, RT_CHECK_OK, "subscribe", found, NULL);
        return 0;
    }
    bool other = upgrade_arrival(d) == 0;
    snprintf(found, sizeof(found), "the first frame is not rtgw.subscribed: '%.100s'%s",
             op == RT_WS_TEXT ? p : "(binary)",
             other ? "; rtgw's probe record holds no upgrade request: another WebSocket server "
                     "answered"
                   : "");
    rt__report(&d->rep, RT_CHECK_FAIL, "subscribe", found,
               other ? "route /v1/realtime/connect to rtgw, not to a WebSocket server of the app"
                     : "the gateway did not acknowledge the extended protocol (&rtgw=1): does the "
                       "proxy keep the query string?");
    return -1;
}

/* After a good 101: the first frame decides. A close frame is a refusal; a
 * connection that just ends is a proxy without WebSocket support; anything
 * else means the upgrade passed, and subscribe judges the frame. */
static int upgrade_first_frame(rt__doctor_t *d, const char *via)
{
    int op = 0;
    char *p = NULL, found[1500];
    size_t plen = 0;
    int64_t t0 = rt_clock_mono_ms();
    int k = rt__ws_next(&d->ws, rt_clock_mono_ms() + d->net.timeout_ms, &op, &p, &plen);
    if (k != 0 && k != RT_E_TIMEOUT) {
        snprintf(found, sizeof(found),
                 "101, then the connection closed without a close frame (a browser reports 1006)%s",
                 via);
        rt__report(&d->rep, RT_CHECK_FAIL, "upgrade", found,
                   "something between closes upgraded connections at once: a proxy without "
                   "WebSocket support, or a load balancer in HTTP-only mode; see its log");
        return -1;
    }
    if (k == 0 && op == RT_WS_CLOSE)
        return upgrade_closed(d, p, plen, via);
    snprintf(found, sizeof(found),
             "101 Switching Protocols with a correct Sec-WebSocket-Accept%s%s",
             d->o->origin ? ", Origin accepted" : "", via);
    rt__report(&d->rep, RT_CHECK_OK, "upgrade", found, NULL);
    d->ws_open = true;
    int rc = subscribe_verdict(d, k, op, p, t0);
    free(p);
    return rc;
}

/* The handshake on d->ws, up to the first frame. */
static int upgrade(rt__doctor_t *d, rt__http_resp_t *r)
{
    char key[32], expect[40], found[1500], via[160];
    rt__ws_handshake_key(key, expect);
    int64_t deadline;
    if (upgrade_request(d, key, &deadline) != 0)
        return -1;
    int h = rt__http_read_head(&d->ws.c, r, deadline);
    if (h != 0) {
        snprintf(found, sizeof(found), "GET /v1/realtime/connect (upgrade): %s",
                 rt__http_strerror(h));
        rt__report(&d->rep, RT_CHECK_FAIL, "upgrade", found,
                   "a proxy on the path drops upgrade requests; see the proxy's error log");
        return -1;
    }
    rt__via_server(r, via, sizeof(via));
    if (r->status != 101) {
        upgrade_refused(d, r, via);
        return -1;
    }
    if (upgrade_accept(d, r, expect) != 0)
        return -1;
    /* Frames that arrived with the 101 go to the frame reader. */
    rt__ws_adopt(&d->ws, r->extra.p, r->extra.len);
    return upgrade_first_frame(d, via);
}

int rt__check_upgrade(rt__doctor_t *d)
{
    memset(&d->ws, 0, sizeof(d->ws));
    d->ws.c.fd = -1;
    rt__http_resp_t *r = calloc(1, sizeof(*r));
    int rc = -1;
    if (!r)
        rt__report(&d->rep, RT_CHECK_FAIL, "upgrade",
                   "the connection closed while sending the upgrade request", NULL);
    else
        rc = upgrade(d, r);
    if (rc != 0 || !d->ws_open) {
        if (rc != 0)
            d->ws_open = false;
        rt__ws_close(&d->ws);
    }
    if (r)
        rt__http_resp_free(r);
    free(r);
    return rc;
}

/* Wait on the open WebSocket for the probe with nonce: 0 seen, RT_E_TIMEOUT,
 * or another negative value when it closed (code and reason filled when a
 * close frame came, else code 0). */
static int ws_wait_probe(rt__doctor_t *d, const char *nonce, int64_t deadline, int *code,
                         char *reason, size_t cap)
{
    *code = 0;
    reason[0] = 0;
    for (;;) {
        int op;
        char *p;
        size_t n;
        int k = rt__ws_next(&d->ws, deadline, &op, &p, &n);
        if (k != 0)
            return k;
        if (op == RT_WS_CLOSE) {
            rt__ws_close_parse(p, n, code, reason, cap);
            free(p);
            return RT_E_CLOSED;
        }
        bool hit = op == RT_WS_TEXT && strstr(p, nonce) != NULL;
        free(p);
        if (hit)
            return 0;
    }
}

int rt__check_delivery(rt__doctor_t *d)
{
    if (!d->ws_open || !d->o->signing_key) {
        rt__report(&d->rep, RT_CHECK_SKIP, "delivery",
                   d->ws_open ? "needs --signing-key to publish a probe" : "no open WebSocket",
                   NULL);
        return 0;
    }
    char nonce[40], why[512], found[800];
    rt__random_hex(nonce, 12);
    int64_t t0 = rt_clock_mono_ms();
    if (rt__probe_publish(d, nonce, why, sizeof(why)) != 0) {
        rt__report(&d->rep, RT_CHECK_FAIL, "delivery", why,
                   strstr(why, "401") ? "the signing key does not match the gateway's" : NULL);
        return -1;
    }
    int code;
    char reason[200];
    int k = ws_wait_probe(d, nonce, t0 + RT__DELIVERY_MS, &code, reason, sizeof(reason));
    if (k == 0) {
        d->ws_delivery_ms = rt_clock_mono_ms() - t0;
        snprintf(found, sizeof(found),
                 "published a probe and received it over the WebSocket in %lld ms",
                 (long long)d->ws_delivery_ms);
        rt__report(&d->rep, RT_CHECK_OK, "delivery", found, NULL);
        return 0;
    }
    if (k == RT_E_TIMEOUT)
        snprintf(found, sizeof(found),
                 "the publish was accepted but the probe did not arrive over the WebSocket within "
                 "%d s",
                 RT__DELIVERY_MS / 1000);
    else if (code)
        snprintf(found, sizeof(found),
                 "the WebSocket closed with %d %s while waiting for the probe", code, reason);
    else
        snprintf(found, sizeof(found),
                 "the WebSocket closed without a close frame while waiting for the probe");
    rt__report(&d->rep, RT_CHECK_FAIL, "delivery", found,
               "a proxy may buffer WebSocket frames (proxy_buffering on the upgraded location), or "
               "the publish reached another rtgw node than the subscriber: each node has its own "
               "in-memory bus, so put a single node behind this URL");
    return -1;
}

/* Idle on the open WebSocket until end (answering pings in rt__ws_next).
 * 0 when it stayed open; -1 after reporting how it closed. */
static int idle_wait(rt__doctor_t *d, int64_t t0, int64_t end, int pings0)
{
    char found[1200];
    for (;;) {
        int op;
        char *p;
        size_t n;
        int k = rt__ws_next(&d->ws, end, &op, &p, &n);
        if (k == RT_E_TIMEOUT)
            return 0;
        if (k == 0 && op != RT_WS_CLOSE) {
            free(p); /* another doctor's probe, or a stray frame */
            continue;
        }
        double after = (double)(rt_clock_mono_ms() - t0) / 1000.0;
        int code = 0;
        char reason[200] = "", how[300];
        if (k == 0) {
            rt__ws_close_parse(p, n, &code, reason, sizeof(reason));
            free(p);
        }
        if (code)
            snprintf(how, sizeof(how), "with close code %d%s%s", code, reason[0] ? " " : "",
                     reason);
        else
            snprintf(how, sizeof(how), "without a close frame (a browser reports 1006)");
        int pings = d->ws.pings - pings0;
        snprintf(found, sizeof(found),
                 "closed after %.1f s idle %s, %d ping%s seen: a proxy read timeout shorter "
                 "than the idle period",
                 after, how, pings, pings == 1 ? "" : "s");
        if (rt__close_is(code, RT_REASON_IDLE_TIMEOUT))
            snprintf(found, sizeof(found),
                     "closed after %.1f s with %d %s: the gateway saw no pong (a "
                     "proxy swallows the pings or pongs)",
                     after, code, rt_reason_name(RT_REASON_IDLE_TIMEOUT));
        char fix[1200];
        rt__fix_idle_for(d->proxy, after, fix, sizeof(fix));
        rt__report(&d->rep, RT_CHECK_FAIL, "idle", found, fix);
        d->ws_open = false;
        return -1;
    }
}

/* After the idle period, a probe must still arrive. */
static int idle_probe(rt__doctor_t *d, int idle, int pings, bool noheart)
{
    char nonce[40], why[512], found[1200];
    rt__random_hex(nonce, 12);
    int64_t tp = rt_clock_mono_ms();
    if (rt__probe_publish(d, nonce, why, sizeof(why)) != 0) {
        rt__report(&d->rep, RT_CHECK_FAIL, "idle", why, NULL);
        return -1;
    }
    int code;
    char reason[200];
    int k = ws_wait_probe(d, nonce, tp + RT__DELIVERY_MS, &code, reason, sizeof(reason));
    if (k != 0) {
        snprintf(found, sizeof(found),
                 "after %d s idle the WebSocket %s: a proxy or NAT dropped the idle connection",
                 idle,
                 k == RT_E_TIMEOUT ? "looked open but the probe did not arrive within 2 s"
                                   : "closed on the publish");
        char fix[1200];
        rt__fix_idle_for(d->proxy, (double)idle, fix, sizeof(fix));
        rt__report(&d->rep, RT_CHECK_FAIL, "idle", found, fix);
        return -1;
    }
    if (noheart) {
        snprintf(found, sizeof(found),
                 "no heartbeat seen in %d s (no ping from the gateway), though the probe still "
                 "arrived after the idle period",
                 idle);
        rt__report(&d->rep, RT_CHECK_WARN, "idle", found,
                   "a proxy with a 60 s read timeout will cut idle sockets: keep "
                   "RTGW_PING_INTERVAL_MS below it (default 15000)");
        return 0;
    }
    snprintf(found, sizeof(found),
             "stayed open %d s idle, %d ping%s answered, then delivered a probe in %lld ms", idle,
             pings, pings == 1 ? "" : "s", (long long)(rt_clock_mono_ms() - tp));
    rt__report(&d->rep, RT_CHECK_OK, "idle", found, NULL);
    return 0;
}

int rt__check_idle(rt__doctor_t *d)
{
    int idle = d->o->idle_s;
    if (idle <= 0) {
        rt__report(&d->rep, RT_CHECK_WARN, "idle",
                   "idle timeouts were not checked: a proxy's read timeout (nginx's default is "
                   "60 s) closes a quiet WebSocket, and only a long-lived connection shows it",
                   d->o->signing_key || d->o->token
                       ? "run again with --idle 75 (longer than the usual 60 s proxy timeout)"
                       : "run again with --signing-key (or --token) and --idle 75 (longer than "
                         "the usual 60 s proxy timeout)");
        return 0;
    }
    if (!d->ws_open) {
        rt__report(&d->rep, RT_CHECK_SKIP, "idle",
                   "needs an open WebSocket (--signing-key or --token)", NULL);
        return 0;
    }
    int64_t t0 = rt_clock_mono_ms();
    int pings0 = d->ws.pings;
    if (idle_wait(d, t0, t0 + (int64_t)idle * 1000, pings0) != 0)
        return -1;
    int pings = d->ws.pings - pings0;
    bool noheart = pings == 0 && idle > 20;
    if (d->o->signing_key)
        return idle_probe(d, idle, pings, noheart);
    char found[1200];
    snprintf(found, sizeof(found),
             "stayed open %d s idle, %d ping%s answered (delivery after idle "
             "not checked: needs --signing-key)",
             idle, pings, pings == 1 ? "" : "s");
    rt__report(&d->rep, noheart ? RT_CHECK_WARN : RT_CHECK_OK, "idle", found,
               noheart ? "no heartbeat seen: check RTGW_PING_INTERVAL_MS (default 15000)" : NULL);
    return 0;
}
