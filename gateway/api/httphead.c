/*
 * httphead.c — where a request head ends, and whether its framing is
 * ambiguous (see httphead.h).
 */
#include "httphead.h"

#include <ctype.h>
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
