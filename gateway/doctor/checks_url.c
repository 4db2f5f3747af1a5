/*
 * checks_url.c — the way to the server: the URL the browser is given (url),
 * its name (dns), a TCP connection (tcp) and, for https/wss, the TLS
 * handshake and certificate a browser would judge (tls). See checks.h.
 *
 * They fill d->net, which every later connection uses: host, port and Host
 * header from the URL, the address that answered, the TLS context.
 */
#include "checks.h"
#include "clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static bool is_local_name(const char *h)
{
    return strcasecmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0 || strcmp(h, "::1") == 0;
}

/* The scheme: sets d->net.tls and the default port, and copies the
 * scheme's name ("https", "ws", ...) into scheme. Returns what follows
 * "://", or NULL when the scheme is not a gateway's. */
static const char *url_scheme(rt__doctor_t *d, const char *u, char *scheme, size_t cap)
{
    static const struct {
        const char *s;
        bool tls;
        const char *port;
    } schemes[] = {{"https://", true, "443"},
                   {"wss://", true, "443"},
                   {"http://", false, "80"},
                   {"ws://", false, "80"}};
    const char *rest = NULL;
    for (size_t i = 0; i < 4; i++)
        if (strncasecmp(u, schemes[i].s, strlen(schemes[i].s)) == 0) {
            rest = u + strlen(schemes[i].s);
            d->net.tls = schemes[i].tls;
            snprintf(d->net.port, sizeof(d->net.port), "%s", schemes[i].port);
            snprintf(scheme, cap, "%.*s", (int)strlen(schemes[i].s) - 3, schemes[i].s);
        }
    return rest;
}

static int url_bad_scheme(rt__doctor_t *d, const char *u)
{
    char found[1200];
    const char *c = strstr(u, "://");
    snprintf(found, sizeof(found), "'%.*s' is not a gateway URL scheme", c ? (int)(c - u) : 0,
             c ? u : "");
    if (!c)
        snprintf(found, sizeof(found), "'%s' has no scheme", u);
    rt__report(&d->rep, RT_CHECK_FAIL, "url", found,
               "give the origin the browser uses: https://rt.example.com or wss://rt.example.com "
               "(http:// or ws:// only for a local gateway)");
    return -1;
}

/* host[:port] (or [v6][:port]) of the authority auth into d->net.host and
 * d->net.port. 0, or -1 after reporting the failure. */
static int url_host_port(rt__doctor_t *d, const char *auth, size_t alen)
{
    const char *portp = NULL;
    if (auth[0] == '[') {
        const char *rb = strchr(auth, ']');
        if (!rb) {
            rt__report(&d->rep, RT_CHECK_FAIL, "url", "unterminated [IPv6] host",
                       "e.g. http://[::1]:8288");
            return -1;
        }
        snprintf(d->net.host, sizeof(d->net.host), "%.*s", (int)(rb - auth - 1), auth + 1);
        if (rb[1] == ':')
            portp = rb + 2;
    } else {
        const char *colon = strchr(auth, ':');
        snprintf(d->net.host, sizeof(d->net.host), "%.*s", colon ? (int)(colon - auth) : (int)alen,
                 auth);
        if (colon)
            portp = colon + 1;
    }
    if (portp) {
        char *end, found[1200];
        long p = strtol(portp, &end, 10);
        if (*end || end == portp || p <= 0 || p > 65535) {
            snprintf(found, sizeof(found), "port '%s' is not a number in 1-65535", portp);
            rt__report(&d->rep, RT_CHECK_FAIL, "url", found, NULL);
            return -1;
        }
        snprintf(d->net.port, sizeof(d->net.port), "%ld", p);
    }
    return 0;
}

/* The authority between "://" and the path: host and port into d->net.
 * Sets *path to what follows it. 0, or -1 after reporting the failure. */
static int url_authority(rt__doctor_t *d, const char *rest, const char **path)
{
    size_t alen = strcspn(rest, "/?#");
    *path = rest + alen;
    char auth[300];
    if (alen == 0 || alen >= sizeof(auth)) {
        rt__report(&d->rep, RT_CHECK_FAIL, "url", "the URL has no host",
                   "e.g. https://rt.example.com");
        return -1;
    }
    memcpy(auth, rest, alen);
    auth[alen] = 0;
    if (strchr(auth, '@')) {
        rt__report(
            &d->rep, RT_CHECK_FAIL, "url", "the URL holds user:password@; rtgw does not use it",
            "drop the credentials: authentication is the token (or the signing key as Bearer)");
        return -1;
    }
    return url_host_port(d, auth, alen);
}

/* The Host header and the origin as shown in the report. */
static void url_names(rt__doctor_t *d, const char *scheme)
{
    bool default_port = strcmp(d->net.port, d->net.tls ? "443" : "80") == 0;
    bool v6 = strchr(d->net.host, ':') != NULL;
    snprintf(d->net.hosthdr, sizeof(d->net.hosthdr), "%s%s%s%s%s", v6 ? "[" : "", d->net.host,
             v6 ? "]" : "", default_port ? "" : ":", default_port ? "" : d->net.port);
    snprintf(d->shown, sizeof(d->shown), "%s://%s", scheme, d->net.hosthdr);
}

/* An https page cannot open a plain gateway URL: -1 after reporting it. */
static int url_mixed_content(rt__doctor_t *d, const char *scheme)
{
    const char *origin = d->o->origin;
    if (!(origin && strncasecmp(origin, "https://", 8) == 0 && !d->net.tls))
        return 0;
    char found[1200], fix[1200];
    snprintf(found, sizeof(found),
             "mixed content: a page on %s cannot open %s://%s (the browser blocks it before "
             "any packet is sent)",
             origin, strcasecmp(scheme, "http") == 0 ? "ws" : scheme, d->net.hosthdr);
    snprintf(fix, sizeof(fix),
             "serve the gateway over TLS and give the browser wss://%s (or https://%s): "
             "RTGW_TLS_CERT/RTGW_TLS_KEY in rtgw, or TLS in the proxy in front\n"
             "set the URL the frontend uses with https:// (e.g. NEXT_PUBLIC_APP_URL, "
             "INNGEST_BASE_URL, RTGW_PUBLIC_URL), no trailing slash",
             d->net.host, d->net.host);
    rt__report(&d->rep, RT_CHECK_FAIL, "url", found, fix);
    return -1;
}

/* The url check's result: warnings about the path prefix, a trailing slash,
 * a query, plain ws to a remote host; else ok. */
static int url_verdict(rt__doctor_t *d, const char *scheme, const char *path)
{
    char found[1200];
    char warn[900] = "";
    char wfix[900] = "";
    size_t plen = strcspn(path, "?#");
    size_t keep = plen > 1 && path[plen - 1] == '/' ? plen - 1 : plen;
    snprintf(d->url_path, sizeof(d->url_path), "%.*s", keep > 1 ? (int)keep : 0, path);
    if (plen > 1) {
        snprintf(warn, sizeof(warn),
                 "the path %.*s is dropped: the official clients resolve /v1/realtime/... at the "
                 "root of the origin, so doctor checks %s/v1/realtime/... as they will",
                 (int)plen, path, d->shown);
        snprintf(wfix, sizeof(wfix),
                 "give the clients the bare origin %s (INNGEST_BASE_URL, RTGW_PUBLIC_URL), and map "
                 "/v1/realtime/ at the root in the proxy",
                 d->shown);
    } else if (plen == 1) {
        snprintf(warn, sizeof(warn),
                 "trailing slash: some clients then request //v1/realtime/...; use %s", d->shown);
        snprintf(wfix, sizeof(wfix), "drop the trailing slash wherever this URL is configured: %s",
                 d->shown);
    }
    if (path[plen] == '?' || path[plen] == '#') {
        size_t wl = strlen(warn);
        snprintf(warn + wl, sizeof(warn) - wl, "%sthe query string or fragment is ignored",
                 wl ? "; " : "");
    }
    if (!d->net.tls && !is_local_name(d->net.host) && !d->o->origin) {
        size_t wl = strlen(warn), fl = strlen(wfix);
        snprintf(warn + wl, sizeof(warn) - wl,
                 "%splain %s:// to a non-local host: an https page cannot use it (mixed content) "
                 "and tokens travel in clear",
                 wl ? "; " : "", scheme);
        snprintf(wfix + fl, sizeof(wfix) - fl, "%suse wss:// (TLS in rtgw or in the proxy)",
                 fl ? "\n" : "");
    }
    if (warn[0]) {
        rt__report(&d->rep, RT_CHECK_WARN, "url", warn, wfix[0] ? wfix : NULL);
    } else {
        snprintf(found, sizeof(found), "%s — %s", d->shown,
                 d->net.tls ? "TLS (wss:// for the WebSocket, https:// for HTTP)"
                            : "plain (ws:// and http://, fine for a local gateway)");
        rt__report(&d->rep, RT_CHECK_OK, "url", found, NULL);
    }
    return 0;
}

int rt__check_url(rt__doctor_t *d)
{
    const char *u = d->o->url, *path = NULL;
    char scheme[8] = "";
    const char *rest = url_scheme(d, u, scheme, sizeof(scheme));
    if (!rest)
        return url_bad_scheme(d, u);
    if (url_authority(d, rest, &path) != 0)
        return -1;
    url_names(d, scheme);
    if (url_mixed_content(d, scheme) != 0)
        return -1;
    return url_verdict(d, scheme, path);
}

int rt__check_dns(rt__doctor_t *d)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = getaddrinfo(d->net.host, d->net.port, &hints, &d->ai);
    char found[800];
    if (rc != 0) {
        snprintf(found, sizeof(found), "cannot resolve %s: %s", d->net.host, gai_strerror(rc));
        rt__report(
            &d->rep, RT_CHECK_FAIL, "dns", found,
            "check the host name for typos, and that its DNS record (A/AAAA) exists and has "
            "propagated: dig +short <host>\n"
            "inside containers, the name must resolve from where the browser (or this doctor) "
            "runs, not only inside the cluster");
        return -1;
    }
    size_t l = (size_t)snprintf(found, sizeof(found), "%s →", d->net.host);
    int k = 0;
    for (struct addrinfo *a = d->ai; a && k < 4; a = a->ai_next, k++) {
        char ip[INET6_ADDRSTRLEN] = "?";
        void *src = a->ai_family == AF_INET
                        ? (void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
                        : (void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
        inet_ntop(a->ai_family, src, ip, sizeof(ip));
        if (l < sizeof(found))
            l += (size_t)snprintf(found + l, sizeof(found) - l, "%s %s", k ? "," : "", ip);
    }
    rt__report(&d->rep, RT_CHECK_OK, "dns", found, NULL);
    return 0;
}

/* No address answered: refused (nothing listens), timed out (a firewall
 * drops packets), or another errno (last). Reports; returns -1. */
static int tcp_unreachable(rt__doctor_t *d, bool refused, bool timedout, int last)
{
    char found[600], fix[600];
    if (refused) {
        snprintf(found, sizeof(found),
                 "connection refused: nothing listens on %s:%s: is rtgw (or the proxy) running? is "
                 "the port right?",
                 d->net.host, d->net.port);
        snprintf(
            fix, sizeof(fix),
            "start it: rtgw serve (or systemctl start rtgw / the proxy), then run doctor again\n"
            "compare the port with RTGW_LISTEN (default 127.0.0.1:8288) or the proxy's listen; "
            "on that host: ss -ltnp | grep :%s",
            d->net.port);
    } else if (timedout) {
        snprintf(found, sizeof(found),
                 "no answer from %s:%s within %llds: a firewall or security group drops the "
                 "packets (or the host is down)",
                 d->net.host, d->net.port, (long long)(d->net.timeout_ms / 1000));
        snprintf(fix, sizeof(fix),
                 "allow inbound TCP %s in the firewall (ufw/iptables) and the cloud security "
                 "group / network ACL; check the load balancer's listener and target port",
                 d->net.port);
    } else {
        snprintf(found, sizeof(found), "cannot connect to %s:%s: %s", d->net.host, d->net.port,
                 strerror(last));
        snprintf(fix, sizeof(fix), "check the network route to %s (VPN, proxy, routing)",
                 d->net.host);
    }
    rt__report(&d->rep, RT_CHECK_FAIL, "tcp", found, fix);
    return -1;
}

int rt__check_tcp(rt__doctor_t *d)
{
    int64_t t0 = rt_clock_mono_ms();
    int last = 0;
    bool refused = false, timedout = false;
    for (struct addrinfo *a = d->ai; a; a = a->ai_next) {
        int err = 0;
        int fd = rt__tcp_connect(a->ai_addr, a->ai_addrlen, rt_clock_mono_ms() + d->net.timeout_ms,
                                 &err);
        if (fd >= 0) {
            close(fd);
            memcpy(&d->net.addr, a->ai_addr, a->ai_addrlen);
            d->net.addrlen = a->ai_addrlen;
            char found[400];
            snprintf(found, sizeof(found), "connected to %s:%s in %lld ms", d->net.host,
                     d->net.port, (long long)(rt_clock_mono_ms() - t0));
            rt__report(&d->rep, RT_CHECK_OK, "tcp", found, NULL);
            return 0;
        }
        last = err;
        refused |= err == ECONNREFUSED;
        timedout |= err == ETIMEDOUT;
    }
    return tcp_unreachable(d, refused, timedout, last);
}

static void cert_names(X509 *cert, char *out, size_t cap)
{
    out[0] = 0;
    size_t l = 0;
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && i < 6; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type == GEN_DNS) {
            const unsigned char *s = ASN1_STRING_get0_data(g->d.dNSName);
            l += (size_t)snprintf(out + l, cap > l ? cap - l : 0, "%s%s", l ? ", " : "",
                                  (const char *)s);
        } else if (g->type == GEN_IPADD &&
                   (g->d.iPAddress->length == 4 || g->d.iPAddress->length == 16)) {
            char ip[INET6_ADDRSTRLEN];
            inet_ntop(g->d.iPAddress->length == 4 ? AF_INET : AF_INET6, g->d.iPAddress->data, ip,
                      sizeof(ip));
            l += (size_t)snprintf(out + l, cap > l ? cap - l : 0, "%s%s", l ? ", " : "", ip);
        }
        if (l >= cap)
            break;
    }
    GENERAL_NAMES_free(sans);
    if (!out[0]) {
        char cn[256] = "";
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
        snprintf(out, cap, "CN=%s", cn[0] ? cn : "?");
    }
}

static bool has_verr(const rt__doctor_t *d, long e)
{
    for (int i = 0; i < d->net.nverr; i++)
        if (d->net.verr[i] == e)
            return true;
    return false;
}

/* What the tls check learned from the server's certificate. */
typedef struct {
    const char *ver; /* static: "TLSv1.3" */
    char names[400], issuer[256];
    int days; /* until notAfter; negative once expired */
} cert_info_t;

/* The verifying client context, with --cacert or the system CAs, into
 * d->net.ctx. 0, or -1 after reporting the failure. */
static int tls_context(rt__doctor_t *d)
{
    d->net.ctx = rt__net_tls_ctx_new();
    if (!d->net.ctx) {
        rt__report(&d->rep, RT_CHECK_FAIL, "tls", "cannot create a TLS context", NULL);
        return -1;
    }
    if (!d->o->cacert) {
        SSL_CTX_set_default_verify_paths(d->net.ctx);
        return 0;
    }
    if (SSL_CTX_load_verify_locations(d->net.ctx, d->o->cacert, NULL) != 1) {
        char found[1200];
        snprintf(found, sizeof(found), "cannot load --cacert %s (not a PEM certificate file?)",
                 d->o->cacert);
        rt__report(&d->rep, RT_CHECK_FAIL, "tls", found, NULL);
        return -1;
    }
    return 0;
}

/* One handshake: the protocol version and the certificate's names, issuer
 * and remaining days into ci; verification errors land in d->net.verr.
 * 0, or -1 after reporting the failure. */
static int tls_handshake_info(rt__doctor_t *d, cert_info_t *ci)
{
    char found[1200];
    rt__net_conn_t c;
    d->net.nverr = 0;
    if (rt__net_open(&d->net, &c, found, sizeof(found)) != 0) {
        if (rt__net_h2_only(&d->net)) {
            size_t l = strlen(found);
            snprintf(found + l, sizeof(found) - l,
                     "; the TLS front end offers only HTTP/2 (ALPN h2): it refuses a handshake "
                     "that offers http/1.1, and WebSockets (RFC 6455) need HTTP/1.1");
            rt__report(&d->rep, RT_CHECK_FAIL, "tls", found,
                       "offer http/1.1 in ALPN next to h2 on the TLS front end:\n"
                       "  a Node http2 server: allowHTTP1: true\n"
                       "  Envoy: codec_type AUTO on the listener's HTTP connection manager\n"
                       "  HAProxy: bind … ssl crt … alpn h2,http/1.1\n"
                       "  or put a front end there that offers both (nginx and Caddy always do)\n"
                       "  a cloud load balancer: an HTTP/1.1-capable listener or target group");
            return -1;
        }
        rt__report(&d->rep, RT_CHECK_FAIL, "tls", found,
                   strstr(found, "plain")
                       ? "use http:// or ws:// for a plain port, or terminate TLS there "
                         "(RTGW_TLS_CERT/RTGW_TLS_KEY, or ssl_certificate in the proxy)"
                       : "check that this port terminates TLS (listen 443 ssl in nginx, or "
                         "RTGW_TLS_CERT in rtgw) with TLS 1.2 or later");
        return -1;
    }
    X509 *cert = SSL_get1_peer_certificate(c.ssl);
    ci->ver = SSL_get_version(c.ssl);
    snprintf(ci->names, sizeof(ci->names), "?");
    snprintf(ci->issuer, sizeof(ci->issuer), "?");
    ci->days = 0;
    int secs = 0;
    if (cert) {
        cert_names(cert, ci->names, sizeof(ci->names));
        X509_NAME_get_text_by_NID(X509_get_issuer_name(cert), NID_commonName, ci->issuer,
                                  sizeof(ci->issuer));
        ASN1_TIME_diff(&ci->days, &secs, NULL, X509_get0_notAfter(cert));
    }
    X509_free(cert);
    rt__net_close(&c);
    return 0;
}

static const char TRUST_FIX[] =
    "use a certificate from a public CA (e.g. Let's Encrypt: certbot certonly -d <host>) and "
    "serve the full chain (fullchain.pem) as RTGW_TLS_CERT or ssl_certificate\n"
    "for a private CA: install it on every client, and pass --cacert ca.pem to doctor";

/* A certificate out of its validity period: -1 after reporting it, else 0. */
static int tls_validity(rt__doctor_t *d, const cert_info_t *ci)
{
    char found[1200], fix[1200];
    if (has_verr(d, X509_V_ERR_CERT_HAS_EXPIRED)) {
        snprintf(found, sizeof(found),
                 "the certificate for %s expired %d day%s ago: browsers refuse the connection",
                 ci->names, -ci->days, ci->days == -1 ? "" : "s");
        snprintf(fix, sizeof(fix),
                 "renew it (certbot renew, or your CA), install the new chain, and restart or "
                 "reload what terminates TLS (rtgw reads RTGW_TLS_CERT only at startup)\n"
                 "automate renewal and watch expiry: rtgw doctor warns 14 days ahead");
        rt__report(&d->rep, RT_CHECK_FAIL, "tls", found, fix);
        return -1;
    }
    if (has_verr(d, X509_V_ERR_CERT_NOT_YET_VALID)) {
        snprintf(found, sizeof(found), "the certificate for %s is not valid yet", ci->names);
        rt__report(&d->rep, RT_CHECK_FAIL, "tls", found,
                   "check the clock on this machine and on the server (NTP), or wait for the "
                   "certificate's start date");
        return -1;
    }
    return 0;
}

/* A certificate for another host, or one nobody here trusts: -1 after
 * reporting it, else 0. */
static int tls_trust(rt__doctor_t *d, const cert_info_t *ci)
{
    char found[1200], fix[1200];
    if (has_verr(d, X509_V_ERR_HOSTNAME_MISMATCH) || has_verr(d, X509_V_ERR_IP_ADDRESS_MISMATCH)) {
        snprintf(found, sizeof(found),
                 "wrong host: the certificate names %s, not %s; browsers refuse it", ci->names,
                 d->net.host);
        snprintf(fix, sizeof(fix),
                 "issue a certificate that covers %s (subjectAltName DNS:%s), e.g. certbot "
                 "certonly -d %s, and install it where TLS terminates\n"
                 "or give the clients the host name the certificate names",
                 d->net.host, d->net.host, d->net.host);
        rt__report(&d->rep, RT_CHECK_FAIL, "tls", found, fix);
        return -1;
    }
    if (has_verr(d, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT) ||
        has_verr(d, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN)) {
        snprintf(found, sizeof(found),
                 "self-signed certificate (%s): browsers refuse it, and so do the official clients",
                 ci->names);
        rt__report(&d->rep, RT_CHECK_FAIL, "tls", found, TRUST_FIX);
        return -1;
    }
    if (d->net.nverr) {
        long e = d->net.verr[0];
        if (e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
            e == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE ||
            e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT)
            snprintf(found, sizeof(found),
                     "untrusted chain for %s (issuer %s): %s; the server may send the leaf without "
                     "its intermediates, or a private CA signed it",
                     ci->names, ci->issuer, X509_verify_cert_error_string(e));
        else
            snprintf(found, sizeof(found), "certificate for %s refused: %s", ci->names,
                     X509_verify_cert_error_string(e));
        rt__report(&d->rep, RT_CHECK_FAIL, "tls", found, TRUST_FIX);
        return -1;
    }
    return 0;
}

int rt__check_tls(rt__doctor_t *d)
{
    if (!d->net.tls) {
        rt__report(&d->rep, RT_CHECK_SKIP, "tls", "plain connection (no TLS in the URL)", NULL);
        return 0;
    }
    cert_info_t ci;
    if (tls_context(d) != 0 || tls_handshake_info(d, &ci) != 0 || tls_validity(d, &ci) != 0 ||
        tls_trust(d, &ci) != 0)
        return -1;
    char found[1200];
    if (ci.days < 14) {
        snprintf(found, sizeof(found), "%s, certificate for %s (issuer %s) expires in %d day%s",
                 ci.ver, ci.names, ci.issuer, ci.days, ci.days == 1 ? "" : "s");
        rt__report(
            &d->rep, RT_CHECK_WARN, "tls", found,
            "renew it now (certbot renew, or your CA) and restart or reload what terminates TLS");
        return 0;
    }
    snprintf(found, sizeof(found), "%s, certificate for %s (issuer %s), valid for %d more days",
             ci.ver, ci.names, ci.issuer, ci.days);
    rt__report(&d->rep, RT_CHECK_OK, "tls", found, NULL);
    return 0;
}
