/*
 * request.c — what every API call shares: the rt_resp_t response (a status
 * and a JSON body the caller frees), the Bearer credential, the signing-key
 * check and the publisher's authorisation, and query-string decoding. Pure
 * functions of their arguments plus the metrics counters (atomics); any
 * request thread; no locks. No error text ever quotes a key or a token.
 */
#include "api_internal.h"
#include "log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- responses ---- */

void rt_resp_clear(rt_resp_t *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

void rt__api_resp_json(rt_resp_t *r, int status, json_t *obj)
{
    r->status = status;
    r->body = json_dumps(obj, JSON_COMPACT);
    r->len = r->body ? strlen(r->body) : 0;
    json_decref(obj);
}

void rt_resp_error(rt_resp_t *r, int status, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rt_resp_errorv(r, status, name, fmt, ap);
    va_end(ap);
}

void rt_resp_errorv(rt_resp_t *r, int status, const char *name, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    json_t *o = json_pack("{s:s,s:s}", "error", name, "message", msg);
    if (!o) {
        /* The message quotes input that is not UTF-8 (e.g. jansson's error
         * text for a bad \u escape, or a cut multi-byte character): keep the
         * ASCII so the refusal still has its JSON body. */
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        o = json_pack("{s:s,s:s}", "error", name, "message", msg);
    }
    rt__api_resp_json(r, status, o);
}

/* ---- credentials ---- */

rt_slice_t rt_api_bearer(const char *h)
{
    rt_slice_t s = {"", 0};
    if (!h)
        return s;
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "Bearer", 6) != 0)
        return s;
    h += 6;
    if (*h && *h != ' ')
        return s;
    while (*h == ' ')
        h++;
    size_t n = strlen(h);
    while (n && h[n - 1] == ' ')
        n--;
    s.base = h;
    s.len = n;
    return s;
}

bool rt__api_json_too_deep(rt_api_t *api, const char *body, size_t len, int extra, rt_resp_t *r)
{
    size_t max = (size_t)api->cfg->max_json_depth + (size_t)extra;
    if (rt_json_depth(body, len, max) <= max)
        return false;
    rt_resp_error(r, 400, "json_too_deep",
                  "the body nests arrays or objects more than %lld levels deep "
                  "(RTGW_MAX_JSON_DEPTH); nothing was done",
                  (long long)api->cfg->max_json_depth);
    return true;
}

/* The <env> of a "signkey-<env>-…" credential into out, or "?": it names a
 * foreign key in the log without its secret. Only a short env of [a-z0-9_]
 * is written (a secret is 64+ hex digits, so a malformed key whose secret
 * sits where the env should be is never logged). */
static void key_env(rt_slice_t cred, char out[33])
{
    size_t i = 8, n = 0;
    while (i < cred.len && n < 32 &&
           (islower((unsigned char)cred.base[i]) || isdigit((unsigned char)cred.base[i]) ||
            cred.base[i] == '_'))
        out[n++] = cred.base[i++];
    if (n == 0 || i >= cred.len || cred.base[i] != '-')
        n = (size_t)snprintf(out, 33, "?");
    out[n] = 0;
}

int rt__api_check_key_env(rt_api_t *api, const char *authorization, char env[65], rt_resp_t *r)
{
    rt_slice_t cred = rt_api_bearer(authorization);
    rt_key_slot_t slot = RT_KEY_CURRENT;
    /* One snapshot of the keys (a SIGHUP may swap them meanwhile); the env
     * is copied out before it is let go. */
    rt_live_t *keys = rt_livecell_get(api->keys);
    const rt_keyring_t *ring = rt_live_ring(keys);
    const char *cur = rt_keyring_env(ring, RT_KEY_CURRENT);
    snprintf(env, 65, "%s", cur ? cur : "");
    int rc = cred.len > 0 ? rt_keyring_check_bearer(ring, cred, &slot) : RT_E_ABSENT;
    if (rc == 0) {
        const char *kenv = rt_keyring_env(ring, slot);
        snprintf(env, 65, "%s", kenv ? kenv : "");
    }
    rt_live_unref(keys);
    if (rc == 0 || (cred.len == 0 && api->dev))
        return 0;
    if (cred.len == 0) {
        atomic_fetch_add(&api->metrics->auth_failures, 1);
        rt_resp_error(r, 401, "unauthorized",
                      "missing Authorization: Bearer <signing key> (plain or hashed)");
        return RT_E_DENIED;
    }
    if (api->dev_any_key && cred.len > 8 && strncmp(cred.base, "signkey-", 8) == 0) {
        if (!atomic_exchange(&api->dev_foreign_warned, true)) {
            char fenv[33];
            key_env(cred, fenv);
            rt_log_warn("dev mode: accepting a signing key that is not this gateway's (the "
                        "app's INNGEST_SIGNING_KEY?); only on a loopback address",
                        "key_env=%s", fenv);
        }
        return 0;
    }
    atomic_fetch_add(&api->metrics->auth_failures, 1);
    rt_resp_error(r, 401, "unauthorized",
                  "the Bearer credential is not this gateway's signing key (plain or hashed, "
                  "current or fallback)");
    return RT_E_DENIED;
}

int rt_api_check_key(rt_api_t *api, const char *authorization, rt_resp_t *r)
{
    char env[65];
    return rt__api_check_key_env(api, authorization, env, r);
}

int rt__api_auth_publisher(rt_api_t *api, const char *authorization, int64_t now_s,
                           rt_claims_t *claims, bool *by_token, char env[65], rt_resp_t *r)
{
    *by_token = false;
    env[0] = 0;
    rt_slice_t cred = rt_api_bearer(authorization);
    if (cred.len == 0 || strncmp(cred.base, "signkey-", 8) == 0)
        return rt__api_check_key_env(api, authorization, env, r);
    rt_live_t *keys = rt_livecell_get(api->keys);
    int rc = rt_token_verify(rt_live_ring(keys), &api->topts, cred, now_s, claims);
    rt_live_unref(keys);
    if (rc) {
        rt_metrics_token_refusal(api->metrics, rc);
        atomic_fetch_add(&api->metrics->auth_failures, 1);
        rt_resp_error(r, 401, rt_tok_errname(rc), "%s", rt_tok_strerror(rc));
        return RT_E_DENIED;
    }
    *by_token = true;
    snprintf(env, 65, "%s", claims->env ? claims->env : "");
    return 0;
}

/* ---- query strings ---- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decode the value v[0..end) into out. Its length, RT_E_INVAL or RT_E_TOOLONG. */
static int query_decode(const char *v, const char *end, char *out, size_t cap)
{
    size_t o = 0;
    while (v < end) {
        int c = (unsigned char)*v;
        if (c == '%') {
            if (end - v < 3 || hexval(v[1]) < 0 || hexval(v[2]) < 0)
                return RT_E_INVAL;
            c = hexval(v[1]) * 16 + hexval(v[2]);
            v += 3;
        } else {
            if (c == '+')
                c = ' ';
            v++;
        }
        if (o + 1 >= cap)
            return RT_E_TOOLONG;
        out[o++] = (char)c;
    }
    out[o] = 0;
    return (int)o;
}

int rt_query_param(const char *query, const char *name, int idx, char *out, size_t cap)
{
    if (!query)
        return RT_E_ABSENT;
    size_t nl = strlen(name);
    const char *p = query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', plen);
        size_t klen = eq ? (size_t)(eq - p) : plen;
        if (klen == nl && memcmp(p, name, nl) == 0 && idx-- == 0)
            return query_decode(eq ? eq + 1 : p + plen, p + plen, out, cap);
        if (!amp)
            break;
        p = amp + 1;
    }
    return RT_E_ABSENT;
}
