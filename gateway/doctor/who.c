/*
 * who.c — who answered (see who.h). The fingerprints are the ones these
 * servers show out of the box: nginx's "Welcome to nginx!" page and the
 * "<center>nginx</center>" of its error pages, HAProxy's "No server is
 * available to handle this request." 503 (it sends no Server header), Caddy's
 * "Server: Caddy" (its 502/503 bodies are empty), Kong's "Via: kong/…" and
 * X-Kong-* headers, Python's "Server: SimpleHTTP/… Python/…".
 */
#define _GNU_SOURCE /* strcasestr */
#include "who.h"
#include "describe.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

bool rt__is_rtgw(const rt__http_resp_t *r)
{
    return rt__http_header(r->head, "X-Rtgw", NULL, 0);
}

const char *rt__who_name(rt__who_kind_t k)
{
    static const char *const names[] = {"rtgw",    "nginx",
                                        "Caddy",   "HAProxy",
                                        "Kong",    "Python http.server",
                                        "the app", "an unknown server"};
    return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "an unknown server";
}

static bool has_kong_header(const char *head)
{
    return strcasestr(head, "\nX-Kong-") != NULL;
}

rt__who_kind_t rt__who_proxy(const rt__http_resp_t *r)
{
    char server[128] = "", via[128] = "";
    rt__http_header(r->head, "Server", server, sizeof(server));
    rt__http_header(r->head, "Via", via, sizeof(via));
    if (strcasestr(server, "kong") || strcasestr(via, "kong") || has_kong_header(r->head))
        return RT__WHO_KONG;
    if (strncasecmp(server, "nginx", 5) == 0 || strncasecmp(server, "openresty", 9) == 0)
        return RT__WHO_NGINX;
    if (strcasestr(server, "caddy") || strcasestr(via, "caddy"))
        return RT__WHO_CADDY;
    return RT__WHO_OTHER;
}

/* Not rtgw: name the server from its headers, then its body. */
static void who_other(const rt__http_resp_t *r, rt__who_t *w)
{
    char server[128] = "", desc[300];
    rt__http_header(r->head, "Server", server, sizeof(server));
    const char *b = r->body.p ? r->body.p : "";
    rt__describe_body(r, desc, sizeof(desc));
    rt__who_kind_t px = rt__who_proxy(r);
    if (px == RT__WHO_KONG) {
        w->kind = RT__WHO_KONG;
        snprintf(w->what, sizeof(w->what), "Kong itself (HTTP %d with %s%s%s)", r->status, desc,
                 server[0] ? ", Server: " : "", server);
    } else if (strstr(b, "No server is available to handle this request")) {
        w->kind = RT__WHO_HAPROXY;
        snprintf(w->what, sizeof(w->what),
                 "HAProxy's own %d page (\"No server is available to handle this request\")",
                 r->status);
    } else if (strcasestr(server, "SimpleHTTP") || strcasestr(server, "BaseHTTP")) {
        w->kind = RT__WHO_PYTHON;
        snprintf(w->what, sizeof(w->what), "Python's http.server (Server: %s, HTTP %d)", server,
                 r->status);
    } else if (px == RT__WHO_CADDY && (r->body.len == 0 || r->status >= 500)) {
        w->kind = RT__WHO_CADDY;
        snprintf(w->what, sizeof(w->what), "Caddy itself (HTTP %d with %s, Server: %s)", r->status,
                 r->body.len ? desc : "an empty body", server);
    } else if (px == RT__WHO_NGINX && strstr(b, "Welcome to nginx!")) {
        w->kind = RT__WHO_NGINX;
        snprintf(w->what, sizeof(w->what), "nginx's default page \"Welcome to nginx!\" (%s)",
                 server);
    } else if (strstr(b, "<center>nginx")) {
        w->kind = RT__WHO_NGINX;
        snprintf(w->what, sizeof(w->what), "nginx's own %d error page (%s)", r->status,
                 server[0] ? server : "nginx");
    } else if (rt__looks_html(r)) {
        w->kind = RT__WHO_APP;
        snprintf(w->what, sizeof(w->what), "the app: HTTP %d with %s%s%s", r->status, desc,
                 server[0] ? ", Server: " : "", server);
    } else {
        w->kind = RT__WHO_OTHER;
        snprintf(w->what, sizeof(w->what), "not rtgw (no X-Rtgw header): HTTP %d with %s%s%s",
                 r->status, r->body.len ? desc : "an empty body", server[0] ? ", Server: " : "",
                 server);
    }
}

void rt__who(const rt__http_resp_t *r, rt__who_t *w)
{
    memset(w, 0, sizeof(*w));
    if (rt__http_header(r->head, "X-Rtgw", w->version, sizeof(w->version))) {
        w->kind = RT__WHO_RTGW;
        snprintf(w->what, sizeof(w->what), "rtgw %s", w->version);
        return;
    }
    who_other(r, w);
}
