/*
 * checks_http.c — what answers over HTTP: rtgw's GET /health (http), the
 * gateway's clock against this machine's (clock), and a token for the probe
 * topic, minted with --signing-key or given with --token (token). See
 * checks.h.
 */
#define _GNU_SOURCE /* timegm */
#include "checks.h"
#include "clock.h"
#include "describe.h"
#include "http_client.h"
#include "probe.h"
#include "record.h"
#include "who.h"
#include "reason.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* No HTTP answer on /health: a plain URL for a TLS port, or nothing that
 * speaks HTTP. Reports the failure; returns -1. */
static int http_no_answer(rt__doctor_t *d, const char *why)
{
    char found[1200];
    /* rtgw answers plain HTTP on its TLS port with plain_http_on_tls_port;
     * other TLS servers with an alert or a closed connection. */
    if (!d->net.tls && (strstr(why, "plain_http_on_tls_port") || rt__net_speaks_tls(&d->net))) {
        snprintf(found, sizeof(found),
                 "GET /health: %s; this port speaks TLS (a plain http:// URL for a TLS port)", why);
        char fix[700];
        snprintf(fix, sizeof(fix), "use https://%s or wss://%s", d->net.hosthdr, d->net.hosthdr);
        rt__report(&d->rep, RT_CHECK_FAIL, "http", found, fix);
        return -1;
    }
    snprintf(found, sizeof(found), "GET /health: %s", why);
    rt__report(&d->rep, RT_CHECK_FAIL, "http", found,
               d->net.tls ? "check that the TLS terminator forwards HTTP to rtgw"
                          : "if this port speaks TLS, use https:// or wss://; otherwise check that "
                            "rtgw (or the proxy) answers HTTP here");
    return -1;
}

/* rtgw's health JSON j (status 200) answered in ms: ok, or a warning for
 * --dev. */
static int http_rtgw(rt__doctor_t *d, json_t *j, int64_t ms, const char *via)
{
    char found[1200];
    const char *status = json_string_value(json_object_get(j, "status"));
    const char *ver = json_string_value(json_object_get(j, "version"));
    long long conns = json_integer_value(json_object_get(j, "connections"));
    bool dev = json_is_true(json_object_get(j, "dev"));
    snprintf(found, sizeof(found),
             "rtgw %s answers GET /health in %lld ms (status %s, %lld "
             "connection%s%s)",
             ver ? ver : "?", (long long)ms, status, conns, conns == 1 ? "" : "s", via);
    if (dev) {
        size_t l = strlen(found);
        snprintf(found + l, sizeof(found) - l, "; it runs with --dev");
        rt__report(&d->rep, RT_CHECK_WARN, "http", found,
                   "--dev uses a throwaway key, allows every origin and serves a demo page: run "
                   "rtgw serve with RTGW_SIGNING_KEY in production");
    } else {
        rt__report(&d->rep, RT_CHECK_OK, "http", found, NULL);
    }
    return 0;
}

/* The origin (scheme://host[:port]) of an absolute http(s) URL into out;
 * the scheme, host and port into t. False when loc is not such a URL. */
static bool redirect_target(const char *loc, rt__target_t *t, char *out, size_t cap)
{
    bool tls = strncmp(loc, "https://", 8) == 0;
    if (!tls && strncmp(loc, "http://", 7) != 0)
        return false;
    const char *auth = loc + (tls ? 8 : 7);
    size_t alen = strcspn(auth, "/?#");
    if (alen == 0 || alen >= sizeof(t->hosthdr) || auth[0] == '[')
        return false;
    snprintf(out, cap, "%.*s", (int)(auth + alen - loc), loc);
    snprintf(t->hosthdr, sizeof(t->hosthdr), "%.*s", (int)alen, auth);
    const char *colon = memchr(auth, ':', alen);
    snprintf(t->host, sizeof(t->host), "%.*s", colon ? (int)(colon - auth) : (int)alen, auth);
    snprintf(t->port, sizeof(t->port), "%.*s", colon ? (int)(auth + alen - colon - 1) : 3,
             colon ? colon + 1 : (tls ? "443" : "80"));
    t->tls = tls;
    return true;
}

/* Follow one redirect to its origin's /health: what answers there, in out. */
static void redirect_follow(rt__doctor_t *d, rt__target_t *t, char *out, size_t cap)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    char why[512];
    if (getaddrinfo(t->host, t->port, &hints, &ai) != 0 || !ai) {
        snprintf(out, cap, "its host %s does not resolve", t->host);
        return;
    }
    memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
    t->addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
    t->ctx = NULL;
    if (t->tls) {
        t->ctx = rt__net_tls_ctx_new();
        if (t->ctx && d->o->cacert)
            SSL_CTX_load_verify_locations(t->ctx, d->o->cacert, NULL);
        else if (t->ctx)
            SSL_CTX_set_default_verify_paths(t->ctx);
    }
    rt__http_resp_t r;
    if (rt__http_do(t, "GET", "/health", NULL, NULL, &r, why, sizeof(why)) != 0) {
        snprintf(out, cap, "GET /health there: %.300s", why);
    } else {
        rt__who_t w;
        rt__who(&r, &w);
        snprintf(out, cap, "%s answers GET /health there (HTTP %d)%s", w.what, r.status,
                 t->nverr ? ", with a certificate this machine does not trust" : "");
    }
    rt__http_resp_free(&r);
    if (t->ctx)
        SSL_CTX_free(t->ctx);
    t->ctx = NULL;
}

/* A 3xx with a Location: WebSocket clients do not follow redirects. Follow
 * it once, name it and the URL to use. Returns -1 (reported). */
static int http_redirect(rt__doctor_t *d, const rt__http_resp_t *r)
{
    char loc[600] = "", origin[400], there[700] = "", found[2400], fix[2000];
    rt__http_header(r->head, "Location", loc, sizeof(loc));
    rt__target_t t = d->net;
    if (!redirect_target(loc, &t, origin, sizeof(origin))) {
        snprintf(found, sizeof(found),
                 "GET /health answers %d, a redirect to '%.300s': WebSocket clients do not follow "
                 "redirects (a browser reports 1006)",
                 r->status, loc);
        rt__report(&d->rep, RT_CHECK_FAIL, "http", found,
                   "give the clients the URL the redirect points to, without the redirect");
        return -1;
    }
    redirect_follow(d, &t, there, sizeof(there));
    snprintf(found, sizeof(found),
             "%s redirects (HTTP %d, Location: %.300s): WebSocket clients do not follow "
             "redirects, so the upgrade fails there (a browser reports 1006); followed once: %s",
             d->shown, r->status, loc, there);
    snprintf(fix, sizeof(fix),
             "use %s as the gateway URL (%s%s for WebSocket clients) wherever it is configured "
             "(INNGEST_BASE_URL, RTGW_PUBLIC_URL, NEXT_PUBLIC_APP_URL), and run: rtgw doctor %s",
             origin, t.tls ? "wss://" : "ws://", t.hosthdr, origin);
    rt__report(&d->rep, RT_CHECK_FAIL, "http", found, fix);
    return -1;
}

/* Anything but rtgw's healthy answer: a redirect, a proxy without its
 * backend, a draining gateway, or another server at /health (a warning: the
 * route check then decides whether /v1/realtime/ reaches rtgw). status: the
 * JSON "status" of an rtgw answer, or NULL. */
static int http_not_rtgw(rt__doctor_t *d, const rt__http_resp_t *r, const char *status,
                         const char *via)
{
    char found[1200], desc[300];
    rt__who_t w;
    rt__who(r, &w);
    if (r->status >= 301 && r->status <= 308 && r->status != 304 &&
        rt__http_header(r->head, "Location", NULL, 0))
        return http_redirect(d, r);
    if (w.kind != RT__WHO_RTGW &&
        (r->status == 502 || r->status == 504 ||
         (r->status == 503 && (w.kind == RT__WHO_HAPROXY || w.kind == RT__WHO_CADDY ||
                               w.kind == RT__WHO_NGINX || rt__who_proxy(r) != RT__WHO_OTHER)))) {
        snprintf(found, sizeof(found),
                 "HTTP %d on GET /health from %s: the proxy answers but the backend is down (or "
                 "the proxy's upstream address is wrong); not a routing problem",
                 r->status, w.what);
        rt__report(&d->rep, RT_CHECK_FAIL, "http", found, rt__fix_backend_down);
        return -1;
    }
    if (w.kind != RT__WHO_RTGW) {
        snprintf(found, sizeof(found),
                 "GET /health is answered by %s, not rtgw (no X-Rtgw header)%s; checking "
                 "/v1/realtime/ next",
                 w.what, via);
        rt__report(&d->rep, RT_CHECK_WARN, "http", found,
                   "route /health to rtgw too, so health checks and doctor can see it:\n"
                   "  nginx: location = /health { proxy_pass http://127.0.0.1:8288; }\n"
                   "  Caddy: handle /health { reverse_proxy 127.0.0.1:8288 }\n"
                   "  HAProxy: acl is_rtgw path_beg /v1/realtime/ /health");
        return 0;
    }
    if (r->status == 503 && status && strcmp(status, "draining") == 0) {
        snprintf(found, sizeof(found), "rtgw is draining (shutting down)%s", via);
        rt__report(&d->rep, RT_CHECK_FAIL, "http", found,
                   "wait for the restart to finish; if it stays, the process is stuck in shutdown: "
                   "check RTGW_SHUTDOWN_TIMEOUT_MS and the service manager's stop timeout");
        return -1;
    }
    rt__describe_body(r, desc, sizeof(desc));
    snprintf(found, sizeof(found),
             "rtgw %s answers GET /health with HTTP %d (%s)%s, not its health JSON: the path may "
             "change on the way; checking /v1/realtime/ next",
             w.version, r->status, desc, via);
    rt__report(&d->rep, RT_CHECK_WARN, "http", found,
               "the proxy must pass /health to rtgw unchanged");
    return 0;
}

int rt__check_http(rt__doctor_t *d)
{
    rt__http_resp_t r;
    char why[512], via[160];
    int64_t t0 = rt_clock_mono_ms();
    char path[128];
    rt__probe_path(d, "/health", path, sizeof(path));
    if (rt__http_do(&d->net, "GET", path, NULL, NULL, &r, why, sizeof(why)) != 0) {
        rt__http_resp_free(&r);
        return http_no_answer(d, why);
    }
    int64_t ms = rt_clock_mono_ms() - t0;
    if (rt__http_header(r.head, "Date", d->date, sizeof(d->date)))
        d->date_local_s = rt_clock_wall_ms() / 1000;
    rt__via_server(&r, via, sizeof(via));
    json_t *j = r.body.p && !rt__looks_html(&r) ? json_loadb(r.body.p, r.body.len, 0, NULL) : NULL;
    const char *status = j ? json_string_value(json_object_get(j, "status")) : NULL;
    bool rtgw = rt__is_rtgw(&r) && status &&
                (json_object_get(j, "version") || json_object_get(j, "uptime_s"));
    const char *err = j ? json_string_value(json_object_get(j, "error")) : NULL;
    int rc = r.status == 200 && rtgw ? http_rtgw(d, j, ms, via)
             : err && strcmp(err, "plain_http_on_tls_port") == 0 && rt__is_rtgw(&r)
                 ? http_no_answer(d, "HTTP 400 plain_http_on_tls_port")
                 : http_not_rtgw(d, &r, status, via);
    json_decref(j);
    rt__http_resp_free(&r);
    return rc;
}

static int64_t parse_http_date(const char *s)
{
    static const char *mons = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char mon[4] = "";
    int day, year, h, m, sec;
    if (sscanf(s, "%*3s, %d %3s %d %d:%d:%d", &day, mon, &year, &h, &m, &sec) != 6)
        return -1;
    const char *p = strstr(mons, mon);
    if (!p || strlen(mon) != 3)
        return -1;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = (int)(p - mons) / 3,
                    .tm_mday = day,
                    .tm_hour = h,
                    .tm_min = m,
                    .tm_sec = sec};
    return (int64_t)timegm(&tm);
}

/* Where the gateway's time comes from. */
typedef struct {
    int64_t remote, local; /* the gateway's and this machine's time, in s */
    const char *src, *who; /* src: NULL when there is nothing to compare */
} clock_pair_t;

/* A minted token's iat is the gateway's own clock; a Date header may come
 * from a proxy in front of it, so it is only the fallback. */
static clock_pair_t clock_pair(rt__doctor_t *d)
{
    clock_pair_t c = {
        .remote = -1, .local = rt_clock_wall_ms() / 1000, .who = "the gateway's clock"};
    if (d->o->signing_key) {
        rt__probe_mint(d);
        if (d->minted && d->tok_iat > 0) {
            c.remote = d->tok_iat;
            c.local = rt_clock_wall_ms() / 1000;
            c.src = "the iat of a token the gateway just minted";
        }
    }
    if (!c.src && d->date[0] && (c.remote = parse_http_date(d->date)) >= 0) {
        c.src = "the Date header of /health";
        c.who = "the server's clock";
        c.local = d->date_local_s;
    }
    return c;
}

int rt__check_clock(rt__doctor_t *d)
{
    clock_pair_t c = clock_pair(d);
    if (!c.src) {
        rt__report(&d->rep, RT_CHECK_SKIP, "clock",
                   "no Date header from the gateway, and no --signing-key to mint a token: clocks "
                   "not compared",
                   NULL);
        return 0;
    }
    int64_t skew = c.local - c.remote;
    int64_t a = skew < 0 ? -skew : skew;
    char found[600], fix[600];
    if (a <= 1)
        snprintf(found, sizeof(found), "%s matches this machine's (from %s)", c.who, c.src);
    else
        snprintf(found, sizeof(found), "%s is %s this machine's by %lld s (from %s)", c.who,
                 skew > 0 ? "behind" : "ahead of", (long long)a, c.src);
    snprintf(fix, sizeof(fix),
             "run NTP on both machines (timedatectl set-ntp true; chronyc tracking), and compare "
             "date -u on the backend that mints tokens and on the gateway\n"
             "beyond RTGW_CLOCK_LEEWAY (default 30 s) fresh tokens look %s to the gateway "
             "(close %d %s, or token_issued_in_future)",
             skew > 0 ? "issued in the future" : "expired",
             rt_reason_ws_code(RT_REASON_TOKEN_EXPIRED), rt_reason_name(RT_REASON_TOKEN_EXPIRED));
    if (a > 300) {
        rt__report(&d->rep, RT_CHECK_FAIL, "clock", found, fix);
        return -1;
    }
    rt__report(&d->rep, a > 30 ? RT_CHECK_WARN : RT_CHECK_OK, "clock", found, a > 30 ? fix : NULL);
    return 0;
}

/* --token: read its claims (not verified: the upgrade shows what the gateway
 * says) and use it. */
static int token_given(rt__doctor_t *d)
{
    char found[800];
    int64_t iat = 0, exp = 0;
    char sub[128];
    int nt = 0;
    if (!rt__token_claims(d->o->token, &iat, &exp, sub, sizeof(sub), &nt)) {
        rt__report(&d->rep, RT_CHECK_FAIL, "token",
                   "--token is not a JWT (three base64url segments with JSON claims)",
                   "pass the jwt field of POST /v1/realtime/token's reply (not the whole JSON, not "
                   "the signing key)");
        return -1;
    }
    int64_t now = rt_clock_wall_ms() / 1000;
    if (exp && exp < now) {
        snprintf(found, sizeof(found),
                 "the --token (sub %s, %d topic%s) expired %lld s ago by this machine's clock; "
                 "the upgrade will show what the gateway says",
                 sub, nt, nt == 1 ? "" : "s", (long long)(now - exp));
        rt__report(
            &d->rep, RT_CHECK_WARN, "token", found,
            "mint tokens right before connecting; the default lifetime is RTGW_TOKEN_TTL=60 s");
    } else {
        snprintf(found, sizeof(found), "using --token (sub %s, %d topic%s, expires in %lld s)", sub,
                 nt, nt == 1 ? "" : "s", (long long)(exp - now));
        rt__report(&d->rep, RT_CHECK_OK, "token", found, NULL);
    }
    d->jwt = strdup(d->o->token);
    rt__report_add_secret(&d->rep, d->jwt);
    return 0;
}

/* rtgw answered the mint "missing Authorization" though doctor sent it: a
 * proxy strips the header. Returns -1 (reported). */
static int token_auth_stripped(rt__doctor_t *d)
{
    char found[1400], fix[1400];
    rt__record_t rec;
    rt__record_read(d, &rec);
    const rt__arrived_t *a =
        rec.status == 0 ? rt__record_find(&rec, "POST", "/v1/realtime/token") : NULL;
    snprintf(found, sizeof(found),
             "Authorization was sent but did not arrive: the proxy strips it (rtgw answered POST "
             "/v1/realtime/token 401 \"%s\"%s); the signing key itself was never compared",
             d->mint_err,
             a && !a->authorization ? "; rtgw's probe record shows the request without it"
             : rec.status == RT__REC_AUTH_GONE
                 ? "; the record request lost its Authorization the same way"
                 : "");
    snprintf(fix, sizeof(fix),
             "let Authorization through to rtgw on /v1/realtime/ (the publish and mint calls "
             "carry the signing key in it):\n"
             "  nginx: remove proxy_set_header Authorization \"\"; (nginx passes it by default)\n"
             "  Caddy: remove header_up -Authorization\n"
             "  HAProxy: remove http-request del-header Authorization\n"
             "  Kong: an auth plugin with hide_credentials: true removes it; set it to false on "
             "the rtgw route");
    rt__report(&d->rep, RT_CHECK_FAIL, "token", found, fix);
    return -1;
}

/* The mint failed: say why from its status. Returns -1. */
static int token_mint_failed(rt__doctor_t *d)
{
    char found[800];
    if (d->mint_status == 401 && d->mint_rtgw && strstr(d->mint_err, "missing Authorization"))
        return token_auth_stripped(d);
    if (d->mint_status > 0 && !d->mint_rtgw) {
        char fix[1600];
        snprintf(found, sizeof(found),
                 "POST /v1/realtime/token never reached rtgw: %s answered (HTTP %d, no X-Rtgw "
                 "header)",
                 d->mint_who, d->mint_status);
        rt__fix_route(d->proxy, fix, sizeof(fix));
        rt__report(&d->rep, RT_CHECK_FAIL, "token", found, fix);
        return -1;
    }
    if (d->mint_status == 401) {
        snprintf(found, sizeof(found),
                 "POST /v1/realtime/token: 401 (%s): the signing key does not match the gateway's",
                 d->mint_err);
        rt__report(
            &d->rep, RT_CHECK_FAIL, "token", found,
            "use the gateway's RTGW_SIGNING_KEY on the backend (INNGEST_SIGNING_KEY for the "
            "official client) — the same key, plain or hashed\n"
            "during a rotation, keep the old key in RTGW_SIGNING_KEY_FALLBACK on the gateway\n"
            "check the backend's base URL points at this gateway (no path, no trailing slash)");
        return -1;
    }
    if (d->mint_status == 502 || d->mint_status == 504) {
        snprintf(found, sizeof(found), "POST /v1/realtime/token: %d: the backend is down",
                 d->mint_status);
        rt__report(&d->rep, RT_CHECK_FAIL, "token", found, rt__fix_backend_down);
        return -1;
    }
    if (d->mint_status == 404 || d->mint_status == 405) {
        snprintf(found, sizeof(found),
                 "POST /v1/realtime/token: %d (%s): the proxy does not route /v1/realtime/ to rtgw",
                 d->mint_status, d->mint_err);
        rt__report(&d->rep, RT_CHECK_FAIL, "token", found,
                   "route every /v1/realtime/ path to rtgw (location ^~ /v1/realtime/ { proxy_pass "
                   "http://127.0.0.1:8288; … }), before any catch-all location /");
        return -1;
    }
    if (d->mint_status < 0)
        snprintf(found, sizeof(found), "POST /v1/realtime/token: %s", d->mint_err);
    else
        snprintf(found, sizeof(found), "POST /v1/realtime/token: HTTP %d (%s)", d->mint_status,
                 d->mint_err);
    rt__report(&d->rep, RT_CHECK_FAIL, "token", found,
               d->mint_rtgw ? "the request reached rtgw (X-Rtgw): see the gateway's log for the "
                              "mint request"
                            : "no answer from rtgw: check the proxy's error log for POST "
                              "/v1/realtime/token");
    return -1;
}

int rt__check_token(rt__doctor_t *d)
{
    if (d->o->token)
        return token_given(d);
    if (!d->o->signing_key) {
        rt__report(&d->rep, RT_CHECK_SKIP, "token",
                   "no --signing-key or --token: skipping the authenticated checks (subscribe, "
                   "delivery, sse, idle); the upgrade is checked without a token",
                   NULL);
        return 0;
    }
    rt__probe_mint(d);
    if (!d->minted)
        return token_mint_failed(d);
    char found[800];
    snprintf(found, sizeof(found),
             "minted a token for " RT__PROBE_CHANNEL "/" RT__PROBE_TOPIC
             " with --signing-key (POST "
             "/v1/realtime/token: 201, expires in %lld s)",
             d->tok_exp ? (long long)(d->tok_exp - rt_clock_wall_ms() / 1000) : 0LL);
    rt__report(&d->rep, RT_CHECK_OK, "token", found, NULL);
    return 0;
}
