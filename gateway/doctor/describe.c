/*
 * describe.c — words for what answered (see describe.h). The texts are part
 * of the doctor's output that tests compare, so they change only on purpose.
 */
#define _GNU_SOURCE /* strcasestr */
#include "describe.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *rt__json_error_text(const rt__buf_t *b, bool with_message)
{
    if (!b->p)
        return NULL;
    json_t *j = json_loadb(b->p, b->len, 0, NULL);
    const char *e = j ? json_string_value(json_object_get(j, "error")) : NULL;
    const char *m = j && with_message ? json_string_value(json_object_get(j, "message")) : NULL;
    char *s = NULL;
    if (e) {
        size_t l = strlen(e) + (m ? strlen(m) + 3 : 0) + 1;
        s = malloc(l);
        if (s)
            snprintf(s, l, "%s%s%s", e, m ? ": " : "", m ? m : "");
    }
    json_decref(j);
    return s;
}

bool rt__looks_html(const rt__http_resp_t *r)
{
    char ct[128] = "";
    rt__http_header(r->head, "Content-Type", ct, sizeof(ct));
    const char *b = r->body.p ? r->body.p : "";
    while (isspace((unsigned char)*b))
        b++;
    return strcasestr(ct, "html") || *b == '<';
}

void rt__describe_body(const rt__http_resp_t *r, char *out, size_t cap)
{
    char ct[128] = "";
    rt__http_header(r->head, "Content-Type", ct, sizeof(ct));
    const char *b = r->body.p ? r->body.p : "";
    if (rt__looks_html(r)) {
        const char *t = strcasestr(b, "<title>");
        const char *te = t ? strcasestr(t, "</title>") : NULL;
        if (t && te && te - t - 7 < 120)
            snprintf(out, cap, "an HTML page titled \"%.*s\"", (int)(te - t - 7), t + 7);
        else
            snprintf(out, cap, "an HTML page");
    } else {
        char snip[100];
        size_t k = 0;
        for (const char *p = b; *p && k + 1 < sizeof(snip) && k < 80; p++)
            snip[k++] = (*p == '\n' || *p == '\r') ? ' ' : *p;
        snip[k] = 0;
        snprintf(out, cap, "%s%s%s'%s'", ct[0] ? ct : "a body", ct[0] ? " " : "", ct[0] ? "" : " ",
                 snip);
    }
}

void rt__via_server(const rt__http_resp_t *r, char *out, size_t cap)
{
    char s[128];
    if (rt__http_header(r->head, "Server", s, sizeof(s)) && s[0])
        snprintf(out, cap, ", via %s", s);
    else
        out[0] = 0;
}
