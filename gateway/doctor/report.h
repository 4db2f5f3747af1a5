/*
 * report.h — the doctor's report: one result per check, printed as lines
 * ("✓ name  found", "    fix: …") or collected into one JSON object
 * ({"ok":bool,"checks":[{"name","status","found","fix"?}]}), and the
 * redaction every printed byte passes through: no registered secret (the
 * signing key, a token) and no token=VALUE is ever printed.
 *
 * Private to rt_doctor. Single-threaded: the thread that runs the doctor owns
 * the report. Secrets are borrowed; the caller keeps them alive until
 * rt__report_free. Writes to `out` and flushes it after each check.
 */
#ifndef RT_DOCTOR_REPORT_H
#define RT_DOCTOR_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

typedef enum { RT_CHECK_OK, RT_CHECK_WARN, RT_CHECK_FAIL, RT_CHECK_SKIP } rt__check_status_t;

#define RT__REPORT_SECRETS 4

typedef struct {
    FILE *out;      /* borrowed */
    bool json;      /* collect into checks, print one object at the end */
    json_t *checks; /* owned: the JSON array of results */
    bool failed;    /* a check failed */
    int nok, nwarn;
    const char *secret[RT__REPORT_SECRETS]; /* borrowed; redacted in order */
    int nsecret;
} rt__report_t;

/* An empty report on out; secrets (key, token) may be NULL. */
void rt__report_init(rt__report_t *r, FILE *out, bool json, const char *key, const char *token);
/* Also redact s (borrowed, kept alive by the caller), e.g. a token minted
 * during the run. NULL or a full table is ignored. */
void rt__report_add_secret(rt__report_t *r, const char *s);
/* Frees what the report owns (not out, not the secrets). */
void rt__report_free(rt__report_t *r);

/* A malloc'd copy of text with every secret replaced by "[redacted]", or
 * NULL when out of memory. The caller frees it. */
char *rt__redact(const rt__report_t *r, const char *text);

/* One check result. fix may be NULL or hold several lines; each is printed
 * as "    fix: …". A FAIL marks the report failed. */
void rt__report(rt__report_t *r, rt__check_status_t st, const char *name, const char *found,
                const char *fix);

/* The closing line (or the JSON object): "stopped at <stopped_at>" when a
 * check failed (NULL: "the first failed check"), else the counts. */
void rt__report_finish(rt__report_t *r, const char *stopped_at);

#endif
