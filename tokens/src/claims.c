/*
 * claims.c — channel/topic name rules and the claim checks of an authenticated
 * token payload.
 *
 * The claims only ever come from a payload whose signature has verified, but
 * every field is still treated as hostile: each claim's presence and JSON type
 * is checked before it is read (raw_from_json, or rt__claims_match for the
 * mint's own form, which has them all), integers are compared without
 * overflow, and the topic array is bounded before it is walked. One set of
 * checks (rt__claims_check) judges the claims however they were read.
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

/* jansson's strings are UTF-8 without NUL (JSON_ALLOW_NUL is never passed). */
static rt_slice_t slice_of(json_t *s)
{
    return (rt_slice_t){json_string_value(s), json_string_length(s)};
}

static bool slice_equals(rt_slice_t s, const char *want)
{
    size_t n = strlen(want);
    return s.len == n && memcmp(s.base, want, n) == 0;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* A NUL-terminated copy. NULL on out-of-memory. */
static char *dup_slice(rt_slice_t s)
{
    char *p = malloc(s.len + 1);
    if (p) {
        memcpy(p, s.base, s.len);
        p[s.len] = '\0';
    }
    return p;
}

static void raw_free(rt__claims_raw_t *raw)
{
    if (raw->topics != raw->inl)
        free(raw->topics);
    raw->topics = NULL;
}

static int topics_count(size_t n, const rt_token_opts_t *opts)
{
    if (n == 0)
        return RT_TOK_ETOPICS_EMPTY;
    return n > opts->max_topics ? RT_TOK_ETOPICS_MANY : 0;
}

/* 1. presence and type of every claim, before any of them is believed. */
static int raw_from_json(json_t *payload, const rt_token_opts_t *opts, rt__claims_raw_t *raw)
{
    json_t *iss, *sub, *jti, *env, *topics, *publish, *nbf_v;
    size_t ntopics;
    int rc;

    memset(raw, 0, sizeof *raw);
    if ((rc = get_string(payload, "iss", &iss)) || (rc = get_string(payload, "sub", &sub)) ||
        (rc = get_integer(payload, "iat", &raw->iat)) ||
        (rc = get_integer(payload, "exp", &raw->exp)) || (rc = get_string(payload, "jti", &jti)) ||
        (rc = get_string(payload, "env", &env)))
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
    if (nbf_v && (rc = get_integer(payload, "nbf", &raw->nbf)))
        return rc;
    ntopics = json_array_size(topics);
    if ((rc = topics_count(ntopics, opts)))
        return rc;
    raw->topics = ntopics <= RT__FAST_TOPICS ? raw->inl : calloc(ntopics, sizeof *raw->topics);
    if (!raw->topics)
        return RT_TOK_ENOMEM;
    for (size_t i = 0; i < ntopics; i++) {
        json_t *t = json_array_get(topics, i), *ch, *name, *kind;
        if (!json_is_object(t))
            rc = RT_TOK_ECLAIM_TYPE;
        else if (!(rc = get_string(t, "channel", &ch)) && !(rc = get_string(t, "name", &name)) &&
                 !(rc = get_string(t, "kind", &kind)))
            raw->topics[i] = (rt__topic_raw_t){slice_of(ch), slice_of(name), slice_of(kind)};
        if (rc) {
            raw_free(raw);
            return rc;
        }
    }
    raw->ntopics = ntopics;
    raw->iss = slice_of(iss);
    raw->sub = slice_of(sub);
    raw->jti = slice_of(jti);
    raw->env = slice_of(env);
    raw->has_nbf = nbf_v != NULL;
    raw->publish = json_is_true(publish);
    return 0;
}

int rt__claims_check(const rt__claims_raw_t *raw, const rt_token_opts_t *opts,
                     const rt__verkey_t *key, int64_t now, rt_claims_t *out)
{
    size_t ntopics = raw->ntopics;
    int rc;

    memset(out, 0, sizeof *out);
    if ((rc = topics_count(ntopics, opts))) /* step 1's, for rt__claims_match's claims */
        return rc;

    /* 2. meaning */
    if (!slice_equals(raw->iss, opts->issuer))
        return RT_TOK_EISSUER;
    if (raw->exp <= sat_add(now, -opts->leeway))
        return RT_TOK_EEXPIRED;
    if (raw->has_nbf && raw->nbf > sat_add(now, opts->leeway))
        return RT_TOK_ENOT_YET_VALID;
    if (raw->iat > sat_add(now, opts->leeway))
        return RT_TOK_EIAT_FUTURE;
    /* A validly signed token that claims a lifetime beyond what this gateway
     * would mint (e.g. minted offline with a huge exp) is refused too. */
    if (sat_add(raw->iat, sat_add(opts->max_ttl, opts->leeway)) < raw->exp)
        return RT_TOK_ELIFETIME;
    /* Verify-only public keys carry no environment; their holder vouches for it. */
    if (key->env && !slice_equals(raw->env, key->env))
        return RT_TOK_EENV;
    for (size_t i = 0; i < ntopics; i++) {
        const rt__topic_raw_t *t = &raw->topics[i];
        if ((rc = rt_name_validate(t->channel, opts->max_name_bytes)) ||
            (rc = rt_name_validate(t->name, opts->max_name_bytes)) ||
            (rc = rt_name_validate(t->kind, opts->max_name_bytes)) ||
            (rc = rt_topic_kind_validate(t->kind)))
            return rc;
    }

    /* 3. copy out */
    out->iat = raw->iat;
    out->exp = raw->exp;
    out->nbf = raw->has_nbf ? raw->nbf : 0;
    out->publish = raw->publish;
    snprintf(out->kid, sizeof out->kid, "%s", key->kid);
    out->iss = dup_slice(raw->iss);
    out->sub = dup_slice(raw->sub);
    out->jti = dup_slice(raw->jti);
    out->env = dup_slice(raw->env);
    if (!out->iss || !out->sub || !out->jti || !out->env)
        goto oom;
    out->topics = calloc(ntopics, sizeof *out->topics);
    if (!out->topics)
        goto oom;
    for (size_t i = 0; i < ntopics; i++) {
        const rt__topic_raw_t *t = &raw->topics[i];
        rt_topic_t *o = &out->topics[i];
        out->ntopics = i + 1; /* so rt_claims_clear frees what was copied so far */
        o->channel = dup_slice(t->channel);
        o->name = dup_slice(t->name);
        o->kind = dup_slice(t->kind);
        if (!o->channel || !o->name || !o->kind)
            goto oom;
    }
    return 0;
oom:
    rt_claims_clear(out);
    return RT_TOK_ENOMEM;
}

int rt__claims_decode(json_t *payload, const rt_token_opts_t *opts, const rt__verkey_t *key,
                      int64_t now, rt_claims_t *out)
{
    rt__claims_raw_t raw;
    memset(out, 0, sizeof *out);
    int rc = raw_from_json(payload, opts, &raw);
    if (rc == 0)
        rc = rt__claims_check(&raw, opts, key, now, out);
    raw_free(&raw);
    return rc;
}
