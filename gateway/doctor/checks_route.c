/*
 * checks_route.c — does /v1/realtime/ reach rtgw (route)? See checks.h.
 *
 * Three plain GETs, each tagged with the run's probe id: /v1/realtime/connect
 * (rtgw answers 426 without an upgrade), /v1/realtime/token (405 to a GET)
 * and /v1/realtime/sse (401 without a token). Each answer is fingerprinted
 * (who.c): rtgw marks its own with X-Rtgw. The verdicts, each citing what it
 * saw:
 *   all rtgw                        ok;
 *   rtgw, but 404 for these paths   the proxy rewrote the path (the probe
 *                                   record shows the path that arrived);
 *   502/503/504 from the proxy      the proxy is up, rtgw behind it is down;
 *   some rtgw, some not             a more specific rule (an nginx regex
 *                                   location, an earlier HAProxy ACL) takes
 *                                   some of them;
 *   none rtgw                       the request never reached rtgw: who
 *                                   answered instead, whether rtgw answers
 *                                   under a path prefix, and the routing fix
 *                                   for that proxy.
 */
#include "checks.h"
#include "describe.h"
#include "http_client.h"
#include "record.h"

#include <stdio.h>
#include <string.h>

#define NPATHS 3
static const char *const PATHS[NPATHS] = {"/v1/realtime/connect", "/v1/realtime/token",
                                          "/v1/realtime/sse"};

typedef struct {
    bool answered;
    int status;
    rt__who_t who;
    rt__who_kind_t proxy;
} answer_t;

static void probe_one(rt__doctor_t *d, const char *base, answer_t *a)
{
    char path[300], why[512];
    rt__probe_path(d, base, path, sizeof(path));
    rt__http_resp_t r;
    memset(a, 0, sizeof(*a));
    if (rt__http_do(&d->net, "GET", path, NULL, NULL, &r, why, sizeof(why)) == 0) {
        a->answered = true;
        a->status = r.status;
        rt__who(&r, &a->who);
        a->proxy = rt__who_proxy(&r);
    }
    rt__http_resp_free(&r);
}

/* The proxy in front, from what answered (first one named wins). */
static void note_proxy(rt__doctor_t *d, const answer_t *a)
{
    if (d->proxy != RT__WHO_OTHER || !a->answered)
        return;
    if (a->who.kind == RT__WHO_HAPROXY)
        d->proxy = RT__WHO_HAPROXY;
    else if (a->proxy != RT__WHO_OTHER)
        d->proxy = a->proxy;
}

static bool proxy_down(const answer_t *a)
{
    return a->answered && a->who.kind != RT__WHO_RTGW &&
           (a->status == 502 || a->status == 504 ||
            (a->status == 503 && (a->who.kind == RT__WHO_HAPROXY || a->who.kind == RT__WHO_CADDY ||
                                  a->who.kind == RT__WHO_NGINX || a->proxy != RT__WHO_OTHER)));
}

static int route_down(rt__doctor_t *d, const answer_t *a)
{
    char found[1200];
    snprintf(found, sizeof(found),
             "GET %s: %s: the proxy is up but has no live rtgw behind it (rtgw is down, or the "
             "proxy's upstream address or health check is wrong); this is not a routing problem",
             PATHS[0], a->who.what);
    char fix[1200];
    snprintf(fix, sizeof(fix), "%s%s", rt__fix_backend_down,
             a->who.kind == RT__WHO_HAPROXY
                 ? "\nHAProxy: the server line (server rtgw 127.0.0.1:8288 check) must match "
                   "RTGW_LISTEN; echo 'show servers state' | socat stdio <admin socket> shows why "
                   "it is down"
             : a->who.kind == RT__WHO_CADDY
                 ? "\nCaddy: reverse_proxy's upstream must match RTGW_LISTEN; Caddy's log names "
                   "the dial error"
                 : "");
    rt__report(&d->rep, RT_CHECK_FAIL, "route", found, fix);
    return -1;
}

/* rtgw answered 404 for a path it always serves: the path changed on the
 * way. The record (with the key) shows what arrived. */
static int route_rewritten(rt__doctor_t *d)
{
    rt__record_t rec;
    rt__record_read(d, &rec);
    const rt__arrived_t *a = rec.status == 0 ? rt__record_last(&rec) : NULL;
    char found[1200], fix[1200];
    if (a)
        snprintf(found, sizeof(found),
                 "the request reached rtgw at another path: doctor sent GET %s, rtgw saw GET %s "
                 "(rtgw's probe record) and answered 404: the proxy rewrites the path",
                 PATHS[NPATHS - 1], a->path);
    else
        snprintf(found, sizeof(found),
                 "rtgw (X-Rtgw) answered 404 not_found for %s, a path it always serves: the "
                 "proxy rewrites the path on the way (--signing-key lets doctor show the path "
                 "that arrived)",
                 PATHS[0]);
    rt__fix_rewrite(d->proxy, fix, sizeof(fix));
    rt__report(&d->rep, RT_CHECK_FAIL, "route", found, fix);
    return -1;
}

/* Where rtgw may be mounted instead: the URL's own path, then the usual
 * prefixes. The prefix whose /health is rtgw's into out, or false. */
static bool find_mount(rt__doctor_t *d, char *out, size_t cap)
{
    const char *guess[] = {d->url_path, "/ws", "/realtime", "/rtgw", "/socket"};
    for (size_t i = 0; i < sizeof(guess) / sizeof(guess[0]); i++) {
        if (!guess[i][0] || (i > 0 && strcmp(guess[i], d->url_path) == 0))
            continue;
        char base[300];
        snprintf(base, sizeof(base), "%s/health", guess[i]);
        answer_t a;
        probe_one(d, base, &a);
        if (a.answered && a.who.kind == RT__WHO_RTGW && a.status == 200) {
            snprintf(out, cap, "%s", guess[i]);
            return true;
        }
    }
    return false;
}

/* nginx's own 404 for the realtime paths, and its "Welcome to nginx!" page
 * at /: the default site answers, not the one with the realtime location
 * (field report 002: the config was written but not enabled or reloaded).
 * Returns -1 after reporting, or 0 when / is something else. */
static int route_default_site(rt__doctor_t *d, const answer_t *a)
{
    answer_t root;
    probe_one(d, "/", &root);
    if (!(root.answered && root.who.kind == RT__WHO_NGINX && strstr(root.who.what, "Welcome")))
        return 0;
    char found[1600];
    snprintf(found, sizeof(found),
             "GET %s never reached rtgw: %s answered, and / is %s: nginx's default site "
             "answers this host, not a site with a location for /v1/realtime/",
             PATHS[0], a->who.what, root.who.what);
    rt__report(&d->rep, RT_CHECK_FAIL, "route", found,
               "the site with the realtime location is not in force: enable it (ln -s "
               "/etc/nginx/sites-available/<site> /etc/nginx/sites-enabled/), make its "
               "server_name match this host (or mark it default_server), remove the default "
               "site, then nginx -t && systemctl reload nginx (a config written but not "
               "reloaded is not running)");
    return -1;
}

/* None of the paths reached rtgw. */
static int route_never(rt__doctor_t *d, const answer_t *a)
{
    char found[1600], fix[1600], mount[300];
    if (a->who.kind == RT__WHO_NGINX && a->status == 404 && route_default_site(d, a) != 0)
        return -1;
    size_t l = (size_t)snprintf(found, sizeof(found),
                                "GET %s never reached rtgw: %s answered (no X-Rtgw header)",
                                PATHS[0], a->who.what);
    if (find_mount(d, mount, sizeof(mount)))
        l += (size_t)snprintf(found + l, l < sizeof(found) ? sizeof(found) - l : 0,
                              "; rtgw answers under %s/ instead (GET %s/health is rtgw's), but "
                              "clients ask for /v1/realtime/… at the root of the origin",
                              mount, mount);
    else if (d->proxy == RT__WHO_NGINX)
        snprintf(found + l, l < sizeof(found) ? sizeof(found) - l : 0,
                 "; two causes remain: no location for /v1/realtime/ (the catch-all location / "
                 "takes it), or a regex location (location ~ …) that matches first; nginx -T | "
                 "grep -n location tells them apart, and location ^~ /v1/realtime/ fixes both");
    else if (d->proxy == RT__WHO_OTHER && a->who.kind != RT__WHO_HAPROXY)
        snprintf(found + l, l < sizeof(found) ? sizeof(found) - l : 0,
                 "; no proxy names itself, so two causes remain: this URL points at another "
                 "server than rtgw or its proxy, or a proxy routes /v1/realtime/ elsewhere; "
                 "curl -sI on this URL's /v1/realtime/connect shows what answers, and curl "
                 "http://127.0.0.1:8288/health on the rtgw host shows where rtgw listens");
    rt__fix_route(a->who.kind == RT__WHO_PYTHON ? RT__WHO_OTHER : d->proxy, fix, sizeof(fix));
    rt__report(&d->rep, RT_CHECK_FAIL, "route", found, fix);
    return -1;
}

/* Some paths reach rtgw, others do not: a more specific rule takes those. */
static int route_mixed(rt__doctor_t *d, const answer_t *ans)
{
    char found[1600], fix[1600], good[200] = "", bad[200] = "";
    const answer_t *other = NULL;
    for (int i = 0; i < NPATHS; i++) {
        char *s = ans[i].who.kind == RT__WHO_RTGW ? good : bad;
        size_t l = strlen(s);
        snprintf(s + l, 200 - l, "%s%s", l ? ", " : "", PATHS[i]);
        if (ans[i].who.kind != RT__WHO_RTGW && !other)
            other = &ans[i];
    }
    snprintf(found, sizeof(found),
             "%s reach rtgw, but %s does not: %s answers it (no X-Rtgw header); a more specific "
             "rule takes it first (nginx: a regex location, location ~ …, wins over a plain "
             "prefix location; HAProxy: an earlier use_backend)",
             good, bad, other ? other->who.what : "something else");
    rt__fix_route(d->proxy, fix, sizeof(fix));
    rt__report(&d->rep, RT_CHECK_FAIL, "route", found, fix);
    return -1;
}

int rt__check_route(rt__doctor_t *d)
{
    answer_t ans[NPATHS];
    int nrtgw = 0, n404 = 0, nanswered = 0;
    for (int i = 0; i < NPATHS; i++) {
        probe_one(d, PATHS[i], &ans[i]);
        note_proxy(d, &ans[i]);
        if (!ans[i].answered)
            continue;
        nanswered++;
        if (ans[i].who.kind == RT__WHO_RTGW)
            ans[i].status == 404 ? n404++ : nrtgw++;
    }
    if (nanswered == 0) {
        rt__report(&d->rep, RT_CHECK_FAIL, "route",
                   "no answer to GET /v1/realtime/connect, /token or /sse",
                   "see the proxy's error log for these paths");
        return -1;
    }
    if (proxy_down(&ans[0]))
        return route_down(d, &ans[0]);
    if (n404 > 0)
        return route_rewritten(d);
    if (nrtgw == 0)
        return route_never(d, &ans[0]);
    if (nrtgw < NPATHS)
        return route_mixed(d, ans);
    d->route_rtgw = true;
    char found[600];
    snprintf(found, sizeof(found),
             "GET /v1/realtime/connect, /token and /sse reach rtgw %s (X-Rtgw on each answer)%s%s",
             ans[0].who.version, d->proxy != RT__WHO_OTHER ? ", through " : "",
             d->proxy != RT__WHO_OTHER ? rt__who_name(d->proxy) : "");
    rt__report(&d->rep, RT_CHECK_OK, "route", found, NULL);
    return 0;
}
