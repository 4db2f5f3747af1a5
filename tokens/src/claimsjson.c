/*
 * claimsjson.c — the JSON of the tokens rtgw mints: written by the mint, and
 * read back by verify when a payload is in exactly the form written here.
 *
 * Every connect verifies a token and every HTTP mint writes one, and jansson's
 * general objects (a hash table and an allocation per value, then a dump) were
 * a fifth of the front door's time (perf in S4, docs/benchmarks.md §3). So:
 *
 *   - the mint writes its header and claims straight into a buffer, byte for
 *     byte what json_dumps(JSON_COMPACT) wrote from the same objects (a unit
 *     test compares the two);
 *   - verify first tries rt__claims_match, which accepts only that exact
 *     shape: the keys in the mint's order, no whitespace, strings of printable
 *     ASCII without escapes, integers of at most 18 digits without leading
 *     zeros, 1..RT__FAST_TOPICS topics. For such a text jansson would produce
 *     the same values, so the claims' checks (claims.c) see the same input.
 *     Anything else — any other order, an escape, a non-ASCII byte, an extra
 *     claim — is not an error here: the caller parses it with jansson, which
 *     stays the one judge of what is valid JSON.
 * The SDKs (sdk/js, sdk/python) write the same shape.
 */
#include "rt_tokens_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing ---- */

static void jw_reserve(rt__jw_t *w, size_t more)
{
    if (w->oom || w->len + more < w->cap)
        return;
    size_t cap = w->cap ? w->cap : 256;
    while (cap <= w->len + more)
        cap *= 2;
    char *p = realloc(w->p, cap);
    if (!p) {
        w->oom = true;
        return;
    }
    w->p = p;
    w->cap = cap;
}

static void jw_raw(rt__jw_t *w, const char *s, size_t n)
{
    jw_reserve(w, n);
    if (w->oom)
        return;
    memcpy(w->p + w->len, s, n);
    w->len += n;
    w->p[w->len] = '\0';
}

#define JW_LIT(w, s) jw_raw((w), (s), sizeof(s) - 1)

/* A JSON string, escaped as jansson's dump escapes it (no JSON_ENSURE_ASCII,
 * no JSON_ESCAPE_SLASH): '"', '\\' and the C0 controls; UTF-8 as is. s must be
 * valid UTF-8 (json_string() refused anything else, this does not check):
 * every field the mint writes is validated first (rt_name_validate for the
 * issuer, sub and names; kind is run or event, env [a-z0-9_], jti base64url). */
static void jw_string(rt__jw_t *w, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    jw_reserve(w, 2 + 6 * n);
    if (w->oom)
        return;
    char *o = w->p + w->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20) {
            *o++ = '\\';
            switch (c) {
            case '\b':
                *o++ = 'b';
                break;
            case '\f':
                *o++ = 'f';
                break;
            case '\n':
                *o++ = 'n';
                break;
            case '\r':
                *o++ = 'r';
                break;
            case '\t':
                *o++ = 't';
                break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = hex[c >> 4];
                *o++ = hex[c & 15];
            }
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    w->len = (size_t)(o - w->p);
    w->p[w->len] = '\0';
}

static void jw_int(rt__jw_t *w, int64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%lld", (long long)v);
    jw_raw(w, b, (size_t)n);
}

/* A member: its key with the punctuation before it ("{\"iss\":", ",\"sub\":"),
 * then its value. */
static void jw_str_member(rt__jw_t *w, const char *key, const char *v)
{
    jw_raw(w, key, strlen(key));
    jw_string(w, v);
}

static void jw_int_member(rt__jw_t *w, const char *key, int64_t v)
{
    jw_raw(w, key, strlen(key));
    jw_int(w, v);
}

void rt__jw_header(rt__jw_t *w, const char *alg, const char *kid)
{
    jw_str_member(w, "{\"alg\":", alg);
    jw_str_member(w, ",\"typ\":", "JWT");
    jw_str_member(w, ",\"kid\":", kid);
    JW_LIT(w, "}");
}

void rt__jw_claims(rt__jw_t *w, const rt__claims_out_t *c)
{
    jw_str_member(w, "{\"iss\":", c->iss);
    jw_str_member(w, ",\"sub\":", c->sub);
    jw_int_member(w, ",\"iat\":", c->iat);
    jw_int_member(w, ",\"exp\":", c->exp);
    jw_str_member(w, ",\"jti\":", c->jti);
    jw_str_member(w, ",\"env\":", c->env);
    JW_LIT(w, ",\"topics\":[");
    for (size_t i = 0; i < c->ntopics; i++) {
        const rt_topic_ref_t *t = &c->topics[i];
        jw_str_member(w, i ? ",{\"channel\":" : "{\"channel\":", t->channel);
        jw_str_member(w, ",\"name\":", t->name);
        jw_str_member(w, ",\"kind\":", t->kind ? t->kind : "run");
        JW_LIT(w, "}");
    }
    if (c->publish)
        JW_LIT(w, "],\"publish\":true}");
    else
        JW_LIT(w, "],\"publish\":false}");
}

/* ---- reading back the mint's own form ---- */

typedef struct {
    const char *p, *end;
} scan_t;

static bool lit(scan_t *s, const char *want, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, want, n) != 0)
        return false;
    s->p += n;
    return true;
}

#define LIT(s, w) lit((s), (w), sizeof(w) - 1)

/* "…" of printable ASCII without '"' or '\\': the value is the bytes between. */
static bool str(scan_t *s, rt_slice_t *out)
{
    if (s->p >= s->end || *s->p != '"')
        return false;
    const char *b = ++s->p;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            *out = (rt_slice_t){b, (size_t)(s->p - b)};
            s->p++;
            return true;
        }
        if (c < 0x20 || c > 0x7e || c == '\\')
            return false;
        s->p++;
    }
    return false;
}

/* -?(0|[1-9][0-9]{0,17}): always within int64_t, as jansson reads it. */
static bool integer(scan_t *s, int64_t *out)
{
    bool neg = s->p < s->end && *s->p == '-';
    const char *d = s->p + neg;
    int64_t v = 0;
    size_t n = 0;
    while (d + n < s->end && d[n] >= '0' && d[n] <= '9') {
        if (n == 18)
            return false;
        v = v * 10 + (d[n] - '0');
        n++;
    }
    if (n == 0 || (n > 1 && d[0] == '0'))
        return false;
    *out = neg ? -v : v;
    s->p = d + n;
    return true;
}

bool rt__claims_match(const uint8_t *buf, size_t len, rt__claims_raw_t *raw)
{
    scan_t s = {(const char *)buf, (const char *)buf + len};
    memset(raw, 0, sizeof *raw);
    if (!(LIT(&s, "{\"iss\":") && str(&s, &raw->iss) && LIT(&s, ",\"sub\":") &&
          str(&s, &raw->sub) && LIT(&s, ",\"iat\":") && integer(&s, &raw->iat) &&
          LIT(&s, ",\"exp\":") && integer(&s, &raw->exp) && LIT(&s, ",\"jti\":") &&
          str(&s, &raw->jti) && LIT(&s, ",\"env\":") && str(&s, &raw->env) &&
          LIT(&s, ",\"topics\":[")))
        return false;
    do {
        if (raw->ntopics == RT__FAST_TOPICS)
            return false;
        rt__topic_raw_t *t = &raw->inl[raw->ntopics++];
        if (!(LIT(&s, "{\"channel\":") && str(&s, &t->channel) && LIT(&s, ",\"name\":") &&
              str(&s, &t->name) && LIT(&s, ",\"kind\":") && str(&s, &t->kind) && LIT(&s, "}")))
            return false;
    } while (LIT(&s, ","));
    if (LIT(&s, "],\"publish\":true}"))
        raw->publish = true;
    else if (!LIT(&s, "],\"publish\":false}"))
        return false;
    if (s.p != s.end)
        return false;
    raw->topics = raw->inl;
    return true;
}
