/*
 * jsonraw.c — validate JSON and drop the whitespace between its tokens,
 * keeping every token's bytes (see jsonraw.h for why). One pass, a state
 * machine with an explicit stack of open containers; no allocation, no
 * recursion, any thread.
 */
#include "jsonraw.h"

#include "err.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

typedef enum {
    S_VALUE,          /* a value must come */
    S_VALUE_OR_CLOSE, /* just after '[' */
    S_KEY_OR_CLOSE,   /* just after '{' */
    S_KEY,            /* after ',' in an object */
    S_COLON,          /* after a key */
    S_COMMA_OR_CLOSE, /* after a value inside a container */
    S_DONE            /* the top-level value is complete */
} state_t;

typedef struct {
    const unsigned char *in;
    size_t len, i;
    char *out;
    size_t o;
} scan_t;

/* Length of the valid UTF-8 sequence starting at p (at most n bytes), 0 if
 * it is not one (overlong, a surrogate, past U+10FFFF, truncated). */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t need;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (size_t k = 1; k < need; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[k] & 0x3F);
    }
    if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return need;
}

static bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string starting at s->i (the opening quote), copied. */
static bool scan_string(scan_t *s)
{
    size_t start = s->i++;
    while (s->i < s->len) {
        unsigned char c = s->in[s->i];
        if (c == '"') {
            s->i++;
            memcpy(s->out + s->o, s->in + start, s->i - start);
            s->o += s->i - start;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (s->i + 1 >= s->len)
                return false;
            unsigned char e = s->in[s->i + 1];
            if (e == 'u') {
                if (s->i + 6 > s->len)
                    return false;
                for (size_t k = 2; k < 6; k++)
                    if (!is_hex(s->in[s->i + k])) {
                        s->i += k;
                        return false;
                    }
                s->i += 6;
            } else if (strchr("\"\\/bfnrt", e) && e) {
                s->i += 2;
            } else {
                s->i++;
                return false;
            }
            continue;
        }
        size_t n = utf8_seq(s->in + s->i, s->len - s->i);
        if (n == 0)
            return false;
        s->i += n;
    }
    return false;
}

static size_t digits(const unsigned char *p, size_t i, size_t len)
{
    size_t j = i;
    while (j < len && p[j] >= '0' && p[j] <= '9')
        j++;
    return j - i;
}

/* A number starting at s->i, copied: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)? */
static bool scan_number(scan_t *s)
{
    const unsigned char *p = s->in;
    size_t start = s->i, i = s->i;
    if (p[i] == '-')
        i++;
    size_t n = digits(p, i, s->len);
    if (n == 0 || (p[i] == '0' && n > 1)) {
        s->i = i + (n ? 1 : 0);
        return false;
    }
    i += n;
    if (i < s->len && p[i] == '.') {
        n = digits(p, ++i, s->len);
        if (n == 0) {
            s->i = i;
            return false;
        }
        i += n;
    }
    if (i < s->len && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < s->len && (p[i] == '+' || p[i] == '-'))
            i++;
        n = digits(p, i, s->len);
        if (n == 0) {
            s->i = i;
            return false;
        }
        i += n;
    }
    memcpy(s->out + s->o, p + start, i - start);
    s->o += i - start;
    s->i = i;
    return true;
}

static bool scan_literal(scan_t *s)
{
    static const char *const lits[] = {"true", "false", "null"};
    for (size_t k = 0; k < 3; k++) {
        size_t n = strlen(lits[k]);
        if (s->len - s->i >= n && memcmp(s->in + s->i, lits[k], n) == 0) {
            memcpy(s->out + s->o, lits[k], n);
            s->o += n;
            s->i += n;
            return true;
        }
    }
    return false;
}

/* A scalar or the opening of a container at s->i. 1 scalar done, 2 opened,
 * 0 invalid. */
static int scan_value(scan_t *s)
{
    unsigned char c = s->in[s->i];
    if (c == '{' || c == '[') {
        s->out[s->o++] = (char)c;
        s->i++;
        return 2;
    }
    if (c == '"')
        return scan_string(s) ? 1 : 0;
    if (c == '-' || (c >= '0' && c <= '9'))
        return scan_number(s) ? 1 : 0;
    return scan_literal(s) ? 1 : 0;
}

long rt_json_compact(const char *in, size_t len, size_t max_depth, char *out, size_t *err_at)
{
    char stack[RT_JSONRAW_MAX_DEPTH];
    size_t depth = 0;
    if (max_depth > RT_JSONRAW_MAX_DEPTH)
        max_depth = RT_JSONRAW_MAX_DEPTH;
    scan_t s = {(const unsigned char *)in, len, 0, out, 0};
    state_t st = S_VALUE;
    for (;;) {
        while (s.i < len &&
               (s.in[s.i] == ' ' || s.in[s.i] == '\t' || s.in[s.i] == '\n' || s.in[s.i] == '\r'))
            s.i++;
        if (s.i == len)
            break;
        unsigned char c = s.in[s.i];
        if (st == S_DONE)
            goto bad;
        if (st == S_COLON) {
            if (c != ':')
                goto bad;
            s.out[s.o++] = ':';
            s.i++;
            st = S_VALUE;
            continue;
        }
        bool closing = c == '}' || c == ']';
        if (closing && (st == S_COMMA_OR_CLOSE || (st == S_VALUE_OR_CLOSE && c == ']') ||
                        (st == S_KEY_OR_CLOSE && c == '}'))) {
            if (stack[depth - 1] != (c == '}' ? '{' : '['))
                goto bad;
            depth--;
            s.out[s.o++] = (char)c;
            s.i++;
            st = depth ? S_COMMA_OR_CLOSE : S_DONE;
            continue;
        }
        if (st == S_COMMA_OR_CLOSE) {
            if (c != ',')
                goto bad;
            s.out[s.o++] = ',';
            s.i++;
            st = stack[depth - 1] == '{' ? S_KEY : S_VALUE;
            continue;
        }
        if (st == S_KEY || st == S_KEY_OR_CLOSE) {
            if (c != '"' || !scan_string(&s))
                goto bad;
            st = S_COLON;
            continue;
        }
        /* S_VALUE or S_VALUE_OR_CLOSE */
        int v = scan_value(&s);
        if (v == 0)
            goto bad;
        if (v == 2) {
            if (depth == max_depth)
                return RT_E_LIMIT;
            stack[depth++] = (char)c;
            st = c == '{' ? S_KEY_OR_CLOSE : S_VALUE_OR_CLOSE;
        } else {
            st = depth ? S_COMMA_OR_CLOSE : S_DONE;
        }
    }
    if (st == S_DONE)
        return (long)s.o;
bad:
    if (err_at)
        *err_at = s.i;
    return RT_E_INVAL;
}

size_t rt_json_value_end(const char *s, size_t len, size_t at)
{
    size_t depth = 0, i = at;
    bool in_string = false;
    for (; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"') {
                in_string = false;
                if (depth == 0)
                    return i + 1;
            }
            continue;
        }
        if (c == '"')
            in_string = true;
        else if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']') {
            if (depth == 0)
                return i; /* a scalar ended by its container */
            if (--depth == 0)
                return i + 1;
        } else if (c == ',' && depth == 0)
            return i;
    }
    return i;
}
