/*
 * probe.c — minting and publishing for the doctor's probes (see probe.h).
 *
 * The mint asks for a lifetime long enough for the whole run (the idle check
 * included); a gateway that caps token lifetimes refuses it with a 400 that
 * names the lifetime, and the mint then falls back to the plain topics body
 * with the gateway's default lifetime.
 */
#include "probe.h"
#include "describe.h"
#include "err.h"
#include "http_client.h"
#include "record.h"
#include "who.h"

#include <jansson.h>
#include <openssl/rand.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rt__random_hex(char *out, size_t nbytes)
{
    unsigned char r[32];
    if (nbytes > sizeof(r))
        nbytes = sizeof(r);
    RAND_bytes(r, (int)nbytes);
    for (size_t i = 0; i < nbytes; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

bool rt__token_claims(const char *jwt, int64_t *iat, int64_t *exp, char *sub, size_t subcap,
                      int *ntopics)
{
    const char *a = strchr(jwt, '.');
    const char *b = a ? strchr(a + 1, '.') : NULL;
    if (!a || !b || b - a - 1 <= 0 || b - a > 16384)
        return false;
    unsigned char raw[12288];
    size_t rl = 0;
    if (sodium_base642bin(raw, sizeof(raw), a + 1, (size_t)(b - a - 1), NULL, &rl, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return false;
    json_t *j = json_loadb((const char *)raw, rl, 0, NULL);
    if (!j)
        return false;
    *iat = json_integer_value(json_object_get(j, "iat"));
    *exp = json_integer_value(json_object_get(j, "exp"));
    const char *s = json_string_value(json_object_get(j, "sub"));
    snprintf(sub, subcap, "%s", s ? s : "?");
    *ntopics = (int)json_array_size(json_object_get(j, "topics"));
    json_decref(j);
    return true;
}

/* The mint request's body: with a lifetime for the whole run, or (the
 * fallback) the bare topics array that takes the gateway's default. */
static void mint_body(const rt__doctor_t *d, bool with_ttl, char *body, size_t cap)
{
    long long ttl = 120 + d->o->idle_s + 4 * (d->net.timeout_ms / 1000);
    if (ttl > 3600)
        ttl = 3600;
    if (with_ttl)
        snprintf(body, cap,
                 "{\"topics\":[{\"channel\":\"" RT__PROBE_CHANNEL "\",\"name\":\"" RT__PROBE_TOPIC
                 "\",\"kind\":\"run\"}],\"ttl\":%lld,\"sub\":\"rtgw-doctor\"}",
                 ttl);
    else
        snprintf(body, cap,
                 "[{\"channel\":\"" RT__PROBE_CHANNEL "\",\"name\":\"" RT__PROBE_TOPIC
                 "\",\"kind\":\"run\"}]");
}

/* Take the minted token from a reply, or say why there is none. */
static void mint_take(rt__doctor_t *d, const rt__http_resp_t *r)
{
    json_t *j = r->status == 201 ? json_loadb(r->body.p, r->body.len, 0, NULL) : NULL;
    const char *jwt = j ? json_string_value(json_object_get(j, "jwt")) : NULL;
    if (jwt) {
        d->jwt = strdup(jwt);
        d->minted = d->jwt != NULL;
        rt__report_add_secret(&d->rep, d->jwt);
        char sub[64];
        int nt;
        if (d->jwt && !rt__token_claims(d->jwt, &d->tok_iat, &d->tok_exp, sub, sizeof(sub), &nt))
            d->tok_iat = d->tok_exp = 0;
    } else {
        char *e = rt__json_error_text(&r->body, true);
        if (e)
            snprintf(d->mint_err, sizeof(d->mint_err), "%s", e);
        else
            rt__describe_body(r, d->mint_err, sizeof(d->mint_err));
        free(e);
    }
    json_decref(j);
}

void rt__probe_mint(rt__doctor_t *d)
{
    if (d->mint_tried)
        return;
    d->mint_tried = true;
    char hdr[1024], body[256], why[512], path[128];
    rt__probe_path(d, "/v1/realtime/token", path, sizeof(path));
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\nContent-Type: application/json\r\n",
             d->o->signing_key);
    for (int attempt = 0; attempt < 2; attempt++) {
        mint_body(d, attempt == 0, body, sizeof(body));
        rt__http_resp_t r;
        if (rt__http_do(&d->net, "POST", path, hdr, body, &r, why, sizeof(why)) != 0) {
            d->mint_status = -1;
            snprintf(d->mint_err, sizeof(d->mint_err), "%s", why);
            rt__http_resp_free(&r);
            break;
        }
        d->mint_status = r.status;
        rt__who_t w;
        rt__who(&r, &w);
        d->mint_rtgw = w.kind == RT__WHO_RTGW;
        snprintf(d->mint_who, sizeof(d->mint_who), "%s", w.what);
        mint_take(d, &r);
        rt__http_resp_free(&r);
        if (d->minted || !(d->mint_status == 400 && strstr(d->mint_err, "lifetime")))
            break;
    }
    sodium_memzero(hdr, sizeof(hdr));
}

int rt__probe_publish(rt__doctor_t *d, const char *nonce, char *why, size_t cap)
{
    char hdr[1024], body[128], path[128];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\nContent-Type: application/json\r\n",
             d->o->signing_key);
    snprintf(body, sizeof(body), "{\"probe\":\"%s\"}", nonce);
    snprintf(path, sizeof(path),
             "/v1/realtime/publish?channel=" RT__PROBE_CHANNEL "&topic=" RT__PROBE_TOPIC);
    rt__http_resp_t r;
    int rc = rt__http_do(&d->net, "POST", path, hdr, body, &r, why, cap);
    if (rc == 0 && r.status != 200) {
        char *e = rt__json_error_text(&r.body, true);
        snprintf(why, cap, "POST /v1/realtime/publish: HTTP %d%s%s", r.status, e ? " " : "",
                 e ? e : "");
        free(e);
        rc = RT_E_PROTOCOL;
    }
    sodium_memzero(hdr, sizeof(hdr));
    rt__http_resp_free(&r);
    return rc;
}
