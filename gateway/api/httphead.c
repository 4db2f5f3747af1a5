/*
 * httphead.c — where a request head ends, whether its framing is
 * ambiguous, and the strict parse of the plainest heads (see httphead.h).
 */
#define _GNU_SOURCE /* memmem */
#include "httphead.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

rt_head_state_t rt_head_scan(rt_head_scan_t *s, const uint8_t *buf, size_t n, size_t max)
{
    size_t upto = n < max ? n : max; /* a head longer than max never completes */
    for (size_t i = s->scanned; i < upto; i++) {
        uint8_t c = buf[i];
        if (c < 128 && c != '\r' && c != '\n' && !isprint(c))
            return RT_HEAD_EARLY; /* civetweb refuses such a head at once */
        s->tail = s->tail << 8 | c;
        if ((s->tail & 0xffff) == 0x0a0a || s->tail == 0x0d0a0d0a)
            return RT_HEAD_COMPLETE;
    }
    s->scanned = (uint32_t)upto;
    return n >= max ? RT_HEAD_TOO_LARGE : RT_HEAD_WAIT;
}

const char *rt_http_framing_problem(const rt_http_header_t *h, int n)
{
    const char *cl = NULL;
    int nte = 0;
    for (int i = 0; i < n; i++) {
        const char *name = h[i].name, *v = h[i].value;
        for (const char *p = name; *p; p++)
            if ((unsigned char)*p <= ' ' || *p == 127)
                return "a header name holds white space or a control character";
        if (strcasecmp(name, "Content-Length") == 0) {
            if (!*v || strspn(v, "0123456789") != strlen(v))
                return "Content-Length is not a decimal number";
            if (cl && strcmp(cl, v) != 0)
                return "two different Content-Length values";
            cl = v;
        } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
            if (nte++)
                return "Transfer-Encoding appears more than once";
            if (strcasecmp(v, "chunked") != 0)
                return "a Transfer-Encoding other than chunked";
        }
    }
    if (cl && nte)
        return "both Content-Length and Transfer-Encoding";
    return NULL;
}

/* ---- the strict parse ---- */

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The end of the line at p (its CR), or NULL when it does not end in CRLF
 * before end, or holds a bare CR or LF. */
static char *line_end(char *p, char *end)
{
    for (char *q = p; q + 1 < end; q++) {
        if (*q == '\r')
            return q[1] == '\n' ? q : NULL;
        if (*q == '\n')
            return NULL;
    }
    return NULL;
}

/* "METHOD SP /target SP HTTP/1.x", NUL-terminated in place. */
static bool parse_request_line(char *p, char *eol, rt_http_strict_t *out)
{
    *eol = 0;
    char *sp1 = strchr(p, ' ');
    if (!sp1 || sp1 == p)
        return false;
    for (char *m = p; m < sp1; m++)
        if (*m < 'A' || *m > 'Z')
            return false;
    char *target = sp1 + 1, *sp2 = strchr(target, ' ');
    if (!sp2 || *target != '/')
        return false;
    for (char *t = target; t < sp2; t++)
        if ((unsigned char)*t <= ' ' || (unsigned char)*t >= 127 || *t == '#' || *t == '%')
            return false; /* civetweb decodes %-escapes in the path: those are its */
    const char *v = sp2 + 1;
    if (strcmp(v, "HTTP/1.1") == 0)
        out->http_version = "1.1";
    else if (strcmp(v, "HTTP/1.0") == 0)
        out->http_version = "1.0";
    else
        return false;
    *sp1 = *sp2 = 0;
    out->method = p;
    out->uri_raw = target;
    char *qm = strchr(target, '?');
    if (qm)
        *qm = 0;
    out->query = qm ? qm + 1 : NULL;
    return true;
}

/* "Name: value" (spaces before the value skipped, none after it), in place. */
static bool parse_header(char *p, char *eol, rt_http_header_t *h)
{
    *eol = 0;
    char *colon = p;
    while (is_tchar((unsigned char)*colon))
        colon++;
    if (colon == p || *colon != ':')
        return false; /* folding, white space before the colon, a bad name */
    *colon = 0;
    char *v = colon + 1;
    while (*v == ' ')
        v++;
    if (eol > v && eol[-1] == ' ')
        return false; /* civetweb keeps trailing spaces in a value: "13 " is not 13 */
    for (const char *c = v; *c; c++)
        if ((unsigned char)*c < ' ' || *c == 127)
            return false; /* HT too: rt_head_scan calls a head with one early */
    h->name = p;
    h->value = v;
    return true;
}

int rt_http_parse_strict(char *buf, size_t n, rt_http_strict_t *out)
{
    char *hend = memmem(buf, n, "\r\n\r\n", 4);
    if (!hend)
        return -1;
    /* No NUL before the end: the parts below are C strings. */
    if (memchr(buf, 0, (size_t)(hend - buf)))
        return -1;
    out->head_len = (size_t)(hend - buf) + 4;
    char *end = hend + 2; /* the last line's CRLF included */
    char *eol = line_end(buf, end);
    if (!eol || !parse_request_line(buf, eol, out))
        return -1;
    int nh = 0;
    for (char *p = eol + 2; p < end; p = eol + 2) {
        eol = line_end(p, end);
        if (!eol || nh == RT_HTTP_STRICT_MAX_HEADERS || !parse_header(p, eol, &out->headers[nh]))
            return -1;
        nh++;
    }
    out->nheaders = nh;
    return 0;
}
