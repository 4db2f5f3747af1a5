/*
 * fuzz_http_head.c — libFuzzer target for the rules rtgw applies to an HTTP
 * request head before civetweb acts on it (httphead.h): rt_head_scan, which
 * the front door runs as a head's bytes arrive, and rt_http_framing_problem,
 * which refuses ambiguous framing (request smuggling).
 *
 * Input: byte 0 picks where the bytes are cut into arrivals, byte 1 the
 * largest head allowed; the rest is a request head as a client sends it.
 * Invariants checked:
 *   - the scan's answer does not depend on how the bytes arrive: in pieces it
 *     is the one of a single scan;
 *   - it is the one of a plain restatement of the rule: complete at the first
 *     "\n\n" or "\r\n\r\n" (civetweb's rule) if that is within the size limit, early at a
 *     control byte before it, too large at the limit, waiting otherwise;
 *   - the head's header lines, split as civetweb splits them, pass the framing
 *     check only if no name holds white space or a control character, every
 *     Content-Length is the same decimal number, Transfer-Encoding is at most
 *     one "chunked", and not both are present (checked against a restatement
 *     of RFC 9112 §6.3, not the function's own code);
 *   - rt_http_parse_strict (the heads the front door answers itself) never
 *     reads a head differently from civetweb: when it takes one, the head
 *     ends exactly where rt_head_scan says, every line ends in CRLF, and its
 *     headers are the names and values civetweb's split finds, in order; its
 *     parts are well formed and lie inside the head.
 */
#include "httphead.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_HEADERS = 64, MAX_HEAD = 4096 };

/* The rule, restated: the first end, the first refused byte. */
static rt_head_state_t oracle(const uint8_t *b, size_t n, size_t max)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = b[i];
        if (i >= max)
            return RT_HEAD_TOO_LARGE; /* no end within max bytes */
        if (c < 128 && c != '\r' && c != '\n' && !isprint(c))
            return RT_HEAD_EARLY;
        if (c == '\n' && ((i >= 1 && b[i - 1] == '\n') ||
                          (i >= 3 && b[i - 1] == '\r' && b[i - 2] == '\n' && b[i - 3] == '\r')))
            return RT_HEAD_COMPLETE;
    }
    return n >= max ? RT_HEAD_TOO_LARGE : RT_HEAD_WAIT;
}

/* Scan in arrivals cut by the bits of `cuts`. */
static rt_head_state_t scan_in_pieces(const uint8_t *b, size_t n, size_t max, uint8_t cuts)
{
    rt_head_scan_t s = {0, 0};
    rt_head_state_t st = RT_HEAD_WAIT;
    size_t have = 0;
    while (have < n) {
        size_t step = 1 + (cuts & 7) * 3 + have % 5;
        cuts = (uint8_t)(cuts >> 1 | cuts << 7);
        have = have + step < n ? have + step : n;
        st = rt_head_scan(&s, b, have, max);
        if (st != RT_HEAD_WAIT)
            return st;
    }
    return st;
}

/* Header lines as civetweb 1.15 splits them: after the request line, up to
 * the first empty line; the name up to ':', the value without the blanks
 * before it (trailing ones are kept). Lines without ':' are skipped. Writes
 * NUL-terminated copies into buf. */
static int split_headers(const char *head, char *buf, rt_http_header_t *h)
{
    strcpy(buf, head);
    char *line = strchr(buf, '\n');
    int n = 0;
    while (line && n < MAX_HEADERS) {
        line++;
        char *end = strchr(line, '\n');
        if (end)
            *end = 0;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r')
            line[--len] = 0;
        if (len == 0)
            break;
        char *colon = strchr(line, ':');
        if (colon) {
            *colon = 0;
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            h[n].name = line;
            h[n].value = v;
            n++;
        }
        line = end;
    }
    return n;
}

/* RFC 9112 §6.3, restated. */
static bool framing_ok(const rt_http_header_t *h, int n)
{
    const char *cl = NULL;
    int te = 0;
    for (int i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)h[i].name; *p; p++)
            if (isspace(*p) || iscntrl(*p) || *p == ' ')
                return false;
        if (strcasecmp(h[i].name, "content-length") == 0) {
            if (!h[i].value[0])
                return false;
            for (const char *p = h[i].value; *p; p++)
                if (*p < '0' || *p > '9')
                    return false;
            if (cl && strcmp(cl, h[i].value))
                return false;
            cl = h[i].value;
        }
        if (strcasecmp(h[i].name, "transfer-encoding") == 0 &&
            (te++ || strcasecmp(h[i].value, "chunked")))
            return false;
    }
    return !(cl && te);
}

static bool inside(const char *p, const char *buf, size_t len)
{
    return p >= buf && p < buf + len;
}

static bool all_tchar(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            return false;
    return true;
}

/* rt_http_parse_strict against the scan and civetweb's split. */
static void check_strict(const uint8_t *b, size_t n)
{
    static char buf[MAX_HEAD], head[MAX_HEAD + 1], copy[MAX_HEAD + 1];
    static rt_http_strict_t st;
    static rt_http_header_t h[MAX_HEADERS];
    memcpy(buf, b, n);
    if (rt_http_parse_strict(buf, n, &st) != 0)
        return;
    size_t hl = st.head_len;
    CHECK(hl >= 4 && hl <= n && memcmp(b + hl - 4, "\r\n\r\n", 4) == 0);
    /* It ends where the front door's scan (civetweb's rule) says. */
    CHECK(oracle(b, hl, MAX_HEAD + 1) == RT_HEAD_COMPLETE);
    CHECK(oracle(b, hl - 1, MAX_HEAD + 1) == RT_HEAD_WAIT);
    /* Every line ends in CRLF: no bare CR or LF, and one line per header. */
    size_t crlf = 0;
    for (size_t i = 0; i < hl; i++) {
        if (b[i] == '\r')
            CHECK(i + 1 < hl && b[i + 1] == '\n');
        if (b[i] == '\n')
            CHECK(i > 0 && b[i - 1] == '\r');
        crlf += b[i] == '\n';
    }
    CHECK(crlf == (size_t)st.nheaders + 2);
    CHECK(st.nheaders <= RT_HTTP_STRICT_MAX_HEADERS);
    /* Its parts. */
    CHECK(inside(st.method, buf, hl) && *st.method);
    for (const char *m = st.method; *m; m++)
        CHECK(*m >= 'A' && *m <= 'Z');
    CHECK(inside(st.uri_raw, buf, hl) && st.uri_raw[0] == '/');
    CHECK(!strchr(st.uri_raw, '%') && !strchr(st.uri_raw, '#'));
    CHECK(!st.query || inside(st.query, buf, hl));
    CHECK(strcmp(st.http_version, "1.1") == 0 || strcmp(st.http_version, "1.0") == 0);
    /* The same headers as civetweb's split of the same bytes. */
    memcpy(head, b, hl);
    head[hl] = 0;
    int nh = split_headers(head, copy, h);
    CHECK(nh == st.nheaders);
    for (int i = 0; i < nh; i++) {
        CHECK(inside(st.headers[i].name, buf, hl) && inside(st.headers[i].value, buf, hl + 1));
        CHECK(all_tchar(st.headers[i].name));
        CHECK(strcmp(st.headers[i].name, h[i].name) == 0);
        CHECK(strcmp(st.headers[i].value, h[i].value) == 0);
        for (const char *v = st.headers[i].value; *v; v++)
            CHECK((unsigned char)*v >= ' ' && *v != 127);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t cuts = data[0];
    size_t max = 16 + (size_t)data[1] * 16;
    const uint8_t *b = data + 2;
    size_t n = size - 2 < MAX_HEAD ? size - 2 : MAX_HEAD;

    rt_head_scan_t s = {0, 0};
    rt_head_state_t whole = rt_head_scan(&s, b, n, max);
    CHECK(whole == oracle(b, n, max));
    CHECK(scan_in_pieces(b, n, max, cuts) == whole);

    static char head[MAX_HEAD + 1], copy[MAX_HEAD + 1];
    memcpy(head, b, n);
    head[n] = 0; /* a NUL ends the head early, as a C string */
    static rt_http_header_t h[MAX_HEADERS];
    int nh = split_headers(head, copy, h);
    const char *why = rt_http_framing_problem(h, nh);
    CHECK((why == NULL) == framing_ok(h, nh));
    check_strict(b, n);
    return 0;
}
