/*
 * report.c — the doctor's report and its redaction (see report.h).
 *
 * Why redact at print time rather than trust each check: found texts quote
 * what servers and users gave back (an error body, a pasted URL), and any of
 * them may echo a token; so every line and the final JSON pass through
 * rt__redact, whatever produced them.
 */
#include "report.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

#define REDACTED "[redacted]"
#define REDACTED_LEN 10

/* Replace (*s)[pre, pre+cut) with "[redacted]" in a new malloc'd string.
 * 0, or RT_E_NOMEM with *s unchanged. */
static int splice_redacted(char **s, size_t pre, size_t cut)
{
    size_t rest = strlen(*s + pre + cut);
    char *n = malloc(pre + REDACTED_LEN + rest + 1);
    if (!n)
        return RT_E_NOMEM;
    memcpy(n, *s, pre);
    memcpy(n + pre, REDACTED, REDACTED_LEN);
    memcpy(n + pre + REDACTED_LEN, *s + pre + cut, rest + 1);
    free(*s);
    *s = n;
    return 0;
}

/* Replace every occurrence of `secret` in *s (malloc'd) with "[redacted]". */
static void redact_one(char **s, const char *secret)
{
    if (!secret || strlen(secret) < 8)
        return;
    size_t sl = strlen(secret);
    char *hit;
    while ((hit = strstr(*s, secret)))
        if (splice_redacted(s, (size_t)(hit - *s), sl) != 0)
            return;
}

/* Any token=VALUE that reached a message (e.g. a pasted connect URL). */
static void redact_token_params(char **s)
{
    for (char *p = strstr(*s, "token="); p; p = strstr(p + 6, "token=")) {
        char *v = p + 6, *e = v + strcspn(v, "& \t\n\"'");
        if (e > v && strncmp(v, REDACTED, REDACTED_LEN) != 0) {
            size_t at = (size_t)(p - *s);
            if (splice_redacted(s, (size_t)(v - *s), (size_t)(e - v)) != 0)
                break;
            p = *s + at;
        }
    }
}

void rt__report_init(rt__report_t *r, FILE *out, bool json, const char *key, const char *token)
{
    memset(r, 0, sizeof(*r));
    r->out = out;
    r->json = json;
    r->checks = json_array();
    rt__report_add_secret(r, key);
    rt__report_add_secret(r, token);
}

void rt__report_add_secret(rt__report_t *r, const char *s)
{
    if (s && r->nsecret < RT__REPORT_SECRETS)
        r->secret[r->nsecret++] = s;
}

void rt__report_free(rt__report_t *r)
{
    json_decref(r->checks);
    r->checks = NULL;
}

char *rt__redact(const rt__report_t *r, const char *text)
{
    char *s = strdup(text ? text : "");
    if (!s)
        return NULL;
    for (int i = 0; i < r->nsecret; i++)
        redact_one(&s, r->secret[i]);
    redact_token_params(&s);
    return s;
}

static void print_lines(rt__report_t *r, const char *sym, const char *name, const char *found,
                        const char *fix)
{
    fprintf(r->out, "%s %-9s  %s\n", sym, name, found ? found : "");
    for (const char *line = fix; line && *line;) {
        const char *nl = strchr(line, '\n');
        fprintf(r->out, "    fix: %.*s\n", nl ? (int)(nl - line) : (int)strlen(line), line);
        line = nl ? nl + 1 : NULL;
    }
    fflush(r->out);
}

void rt__report(rt__report_t *r, rt__check_status_t st, const char *name, const char *found,
                const char *fix)
{
    static const char *sym[] = {"\xe2\x9c\x93", "!", "\xe2\x9c\x97", "-"};
    static const char *word[] = {"ok", "warn", "fail", "skip"};
    char *f = rt__redact(r, found);
    char *x = fix && *fix ? rt__redact(r, fix) : NULL;
    if (st == RT_CHECK_FAIL)
        r->failed = true;
    else if (st == RT_CHECK_OK)
        r->nok++;
    else if (st == RT_CHECK_WARN)
        r->nwarn++;
    if (r->json) {
        json_t *c =
            json_pack("{s:s,s:s,s:s}", "name", name, "status", word[st], "found", f ? f : "");
        if (c && x)
            json_object_set_new(c, "fix", json_string(x));
        if (c)
            json_array_append_new(r->checks, c);
    } else {
        print_lines(r, sym[st], name, f, x);
    }
    free(f);
    free(x);
}

void rt__report_finish(rt__report_t *r, const char *stopped_at)
{
    if (r->json) {
        json_t *root = json_pack("{s:b,s:O}", "ok", !r->failed, "checks", r->checks);
        char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
        if (s) {
            char *x = rt__redact(r, s);
            fprintf(r->out, "%s\n", x ? x : "");
            free(x);
        }
        free(s);
        json_decref(root);
    } else if (r->failed) {
        fprintf(r->out, "\nrtgw doctor: stopped at %s; fix it and run doctor again.\n",
                stopped_at ? stopped_at : "the first failed check");
    } else {
        fprintf(r->out, "\nrtgw doctor: %d check%s passed, %d warning%s.\n", r->nok,
                r->nok == 1 ? "" : "s", r->nwarn, r->nwarn == 1 ? "" : "s");
    }
    fflush(r->out);
}
