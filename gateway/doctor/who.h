/*
 * who.h — who answered: rtgw (its X-Rtgw mark) or, by Server/Via headers and
 * body fingerprints, nginx (its default page or its own error page), Caddy,
 * HAProxy (its 503 page), Kong (Via/Server kong, X-Kong-*), Python's
 * http.server, an app's HTML page, or something unknown.
 *
 * Private to rt_doctor. Pure functions over a response already read; any
 * thread. Output goes to the caller's struct.
 */
#ifndef RT_DOCTOR_WHO_H
#define RT_DOCTOR_WHO_H

#include "http_client.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    RT__WHO_RTGW,
    RT__WHO_NGINX,
    RT__WHO_CADDY,
    RT__WHO_HAPROXY,
    RT__WHO_KONG,
    RT__WHO_PYTHON,
    RT__WHO_APP,  /* an HTML page from none of the above */
    RT__WHO_OTHER /* anything else without the mark */
} rt__who_kind_t;

typedef struct {
    rt__who_kind_t kind;
    char version[32]; /* rtgw's X-Rtgw value, "" otherwise */
    char what[560];   /* e.g. "HAProxy's own 503 page (no server is available)" */
} rt__who_t;

/* Fingerprint r into w. */
void rt__who(const rt__http_resp_t *r, rt__who_t *w);

/* True when r carries rtgw's mark (X-Rtgw). */
bool rt__is_rtgw(const rt__http_resp_t *r);

/* The proxy a response passed through, judged by its Server/Via headers even
 * when rtgw answered behind it (nginx and Caddy name themselves, Kong adds
 * Via): RT__WHO_NGINX, _CADDY, _KONG, or RT__WHO_OTHER when none is named. */
rt__who_kind_t rt__who_proxy(const rt__http_resp_t *r);

/* "nginx", "Caddy", "HAProxy", "Kong", "Python http.server", "the app", "rtgw",
 * "an unknown server". */
const char *rt__who_name(rt__who_kind_t k);

#endif
