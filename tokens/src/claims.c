/*
 * claims.c — channel/topic name rules and the claim checks of an authenticated
 * token payload.
 *
 * rt__claims_decode only ever sees a payload whose signature has verified, but
 * it still treats every field as hostile: each claim's presence and JSON type
 * is checked before it is read, integers are compared without overflow, and
 * the topic array is bounded before it is walked.
 */
#include "rt_tokens_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rt_token_opts_default(rt_token_opts_t *opts)
{
    if (!opts)
        return;
    opts->issuer = "rtgw";
    opts->ttl = 60;
    opts->max_ttl = 3600;
    opts->leeway = 30;
    opts->max_token_bytes = 8192;
    opts->max_topics = 64;
    opts->max_name_bytes = 256;
}

int rt_topic_kind_validate(rt_slice_t kind)
{
    static const char *const kinds[] = {"run", "event"};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kind.base && kind.len == strlen(kinds[i]) && memcmp(kind.base, kinds[i], kind.len) == 0)
            return 0;
    return RT_TOK_ETOPIC_KIND;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
 * U+10FFFF. Control characters are C0, DEL and C1 (U+0080..U+009F). */
int rt_name_validate(rt_slice_t name, size_t max_bytes)
{
    const unsigned char *s = (const unsigned char *)name.base;
    size_t i = 0;

    if (!s || name.len == 0)
        return RT_TOK_ENAME_EMPTY;
    if (name.len > max_bytes)
        return RT_TOK_ENAME_LONG;
    while (i < name.len) {
        unsigned char c = s[i];
        uint32_t cp;
        size_t n;
        unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */

        if (c < 0x80) {
            cp = c;
            n = 1;
        } else if (c >= 0xc2 && c <= 0xdf) {
            cp = c & 0x1f;
            n = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            cp = c & 0x0f;
            n = 3;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            else if (c == 0xed)
                hi = 0x9f; /* UTF-16 surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            cp = c & 0x07;
            n = 4;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            else if (c == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        } else {
            return RT_TOK_ENAME_CHARS; /* stray continuation, C0/C1 lead, F5..FF */
        }
        if (n > name.len - i)
            return RT_TOK_ENAME_CHARS;
        for (size_t k = 1; k < n; k++) {
            unsigned char cc = s[i + k];
            if (k == 1 ? (cc < lo || cc > hi) : (cc < 0x80 || cc > 0xbf))
                return RT_TOK_ENAME_CHARS;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
            return RT_TOK_ENAME_CHARS;
        i += n;
    }
    return 0;
}

void rt_claims_clear(rt_claims_t *claims)
{
    if (!claims)
        return;
    free(claims->iss);
    free(claims->sub);
    free(claims->jti);
    free(claims->env);
    for (size_t i = 0; i < claims->ntopics; i++) {
        free(claims->topics[i].channel);
        free(claims->topics[i].name);
        free(claims->topics[i].kind);
    }
    free(claims->topics);
    memset(claims, 0, sizeof *claims);
}

bool rt_claims_grants(const rt_claims_t *claims, rt_slice_t channel, rt_slice_t topic)
{
    if (!claims || !channel.base || !topic.base)
        return false;
    for (size_t i = 0; i < claims->ntopics; i++) {
        const rt_topic_t *t = &claims->topics[i];
        size_t clen = strlen(t->channel), nlen = strlen(t->name);

        if (clen != channel.len || memcmp(t->channel, channel.base, clen) != 0)
            continue;
        if (nlen == 1 && t->name[0] == '*')
            return true;
        if (nlen == topic.len && memcmp(t->name, topic.base, nlen) == 0)
            return true;
    }
    return false;
}

/* A string claim: RT_TOK_ECLAIM_MISSING / _TYPE or 0. */
static int get_string(json_t *obj, const char *key, json_t **out)
{
    *out = json_object_get(obj, key);
    if (!*out)
        return RT_TOK_ECLAIM_MISSING;
    return json_is_string(*out) ? 0 : RT_TOK_ECLAIM_TYPE;
}

static int get_integer(json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return RT_TOK_ECLAIM_MISSING;
    if (!json_is_integer(v))
        return RT_TOK_ECLAIM_TYPE;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

static bool json_string_equals(json_t *s, const char *want)
{
    size_t n = strlen(want);
    return json_string_length(s) == n && memcmp(json_string_value(s), want, n) == 0;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* Copy a JSON string (jansson guarantees UTF-8 without NUL unless
 * JSON_ALLOW_NUL, which is never passed). NULL on out-of-memory. */
static char *dup_string(json_t *s)
{
    size_t n = json_string_length(s);
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, json_string_value(s), n);
        p[n] = '\0';
    }
    return p;
}

static int check_name(json_t *s, size_t max)
{
    rt_slice_t sl = {json_string_value(s), json_string_length(s)};
    return rt_name_validate(sl, max);
}

int rt__claims_decode(json_t *payload, const rt_token_opts_t *opts, const rt__verkey_t *key,
                      int64_t now, rt_claims_t *out)
{
    json_t *iss, *sub, *jti, *env, *topics, *publish, *nbf_v;
    int64_t iat = 0, exp = 0, nbf = 0;
    size_t ntopics;
    int rc;

    memset(out, 0, sizeof *out);
    /* 1. presence and type of every claim, before any of them is believed */
    if ((rc = get_string(payload, "iss", &iss)) || (rc = get_string(payload, "sub", &sub)) ||
        (rc = get_integer(payload, "iat", &iat)) || (rc = get_integer(payload, "exp", &exp)) ||
        (rc = get_string(payload, "jti", &jti)) || (rc = get_string(payload, "env", &env)))
        return rc;
    topics = json_object_get(payload, "topics");
    if (!topics)
        return RT_TOK_ECLAIM_MISSING;
    if (!json_is_array(topics))
        return RT_TOK_ECLAIM_TYPE;
    publish = json_object_get(payload, "publish");
    if (!publish)
        return RT_TOK_ECLAIM_MISSING;
    if (!json_is_boolean(publish))
        return RT_TOK_ECLAIM_TYPE;
    nbf_v = json_object_get(payload, "nbf");
    if (nbf_v && (rc = get_integer(payload, "nbf", &nbf)))
        return rc;
    ntopics = json_array_size(topics);
    if (ntopics == 0)
        return RT_TOK_ETOPICS_EMPTY;
    if (ntopics > opts->max_topics)
        return RT_TOK_ETOPICS_MANY;
    for (size_t i = 0; i < ntopics; i++) {
        json_t *t = json_array_get(topics, i), *f;
        if (!json_is_object(t))
            return RT_TOK_ECLAIM_TYPE;
        if ((rc = get_string(t, "channel", &f)) || (rc = get_string(t, "name", &f)) ||
            (rc = get_string(t, "kind", &f)))
            return rc;
    }

    /* 2. meaning */
    if (!json_string_equals(iss, opts->issuer))
        return RT_TOK_EISSUER;
    if (exp <= sat_add(now, -opts->leeway))
        return RT_TOK_EEXPIRED;
    if (nbf_v && nbf > sat_add(now, opts->leeway))
        return RT_TOK_ENOT_YET_VALID;
    if (iat > sat_add(now, opts->leeway))
        return RT_TOK_EIAT_FUTURE;
    /* A validly signed token that claims a lifetime beyond what this gateway
     * would mint (e.g. minted offline with a huge exp) is refused too. */
    if (sat_add(iat, sat_add(opts->max_ttl, opts->leeway)) < exp)
        return RT_TOK_ELIFETIME;
    /* Verify-only public keys carry no environment; their holder vouches for it. */
    if (key->env && !json_string_equals(env, key->env))
        return RT_TOK_EENV;
    for (size_t i = 0; i < ntopics; i++) {
        json_t *t = json_array_get(topics, i);
        if ((rc = check_name(json_object_get(t, "channel"), opts->max_name_bytes)) ||
            (rc = check_name(json_object_get(t, "name"), opts->max_name_bytes)) ||
            (rc = check_name(json_object_get(t, "kind"), opts->max_name_bytes)) ||
            (rc = rt_topic_kind_validate(
                 rt_slice_cstr(json_string_value(json_object_get(t, "kind"))))))
            return rc;
    }

    /* 3. copy out */
    out->iat = iat;
    out->exp = exp;
    out->nbf = nbf_v ? nbf : 0;
    out->publish = json_is_true(publish);
    snprintf(out->kid, sizeof out->kid, "%s", key->kid);
    out->iss = dup_string(iss);
    out->sub = dup_string(sub);
    out->jti = dup_string(jti);
    out->env = dup_string(env);
    if (!out->iss || !out->sub || !out->jti || !out->env)
        goto oom;
    if (ntopics) {
        out->topics = calloc(ntopics, sizeof *out->topics);
        if (!out->topics)
            goto oom;
    }
    for (size_t i = 0; i < ntopics; i++) {
        json_t *t = json_array_get(topics, i);
        rt_topic_t *o = &out->topics[i];
        out->ntopics = i + 1; /* so rt_claims_clear frees what was copied so far */
        o->channel = dup_string(json_object_get(t, "channel"));
        o->name = dup_string(json_object_get(t, "name"));
        o->kind = dup_string(json_object_get(t, "kind"));
        if (!o->channel || !o->name || !o->kind)
            goto oom;
    }
    return 0;
oom:
    rt_claims_clear(out);
    return RT_TOK_ENOMEM;
}
