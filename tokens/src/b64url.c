/*
 * b64url.c — strict unpadded base64url (RFC 4648 §5) for JWS segments.
 *
 * Decoding accepts exactly one spelling of any byte string: no padding, no
 * '+' or '/', no whitespace, and the unused low bits of the last character
 * must be zero. Without that last rule several different strings decode to
 * the same bytes, and a token could be altered without touching its
 * signature's meaning (signature malleability in caches and replay lists).
 */
#include "rt_tokens_int.h"

#include <limits.h>

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Value of a base64url character, or -1. */
static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

size_t rt_b64url_encoded_len(size_t n)
{
    return (n / 3) * 4 + ((n % 3) ? (n % 3) + 1 : 0);
}

int rt_b64url_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    size_t need, o = 0, i = 0;

    if ((!in && n) || !out || n > (size_t)INT_MAX / 2)
        return RT_TOK_EINVAL;
    need = rt_b64url_encoded_len(n);
    if (cap < need + 1)
        return RT_TOK_EINVAL;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
    return (int)o;
}

int rt_b64url_decode(rt_slice_t in, uint8_t *out, size_t cap)
{
    const unsigned char *s = (const unsigned char *)in.base;
    size_t full, rem, o = 0, i = 0, need;

    if (!s && in.len)
        return RT_TOK_EINVAL;
    if (in.len > (size_t)INT_MAX)
        return RT_TOK_EBASE64;
    rem = in.len % 4;
    if (rem == 1) /* one character carries only 6 bits: never a whole byte */
        return RT_TOK_EBASE64;
    full = in.len - rem;
    need = (full / 4) * 3 + (rem ? rem - 1 : 0);
    if (cap < need || (!out && need))
        return RT_TOK_EINVAL;
    for (; i < full; i += 4) {
        int a = b64url_value(s[i]), b = b64url_value(s[i + 1]);
        int c = b64url_value(s[i + 2]), d = b64url_value(s[i + 3]);
        if ((a | b | c | d) < 0)
            return RT_TOK_EBASE64;
        uint32_t v = ((uint32_t)a << 18) | ((uint32_t)b << 12) | ((uint32_t)c << 6) | (uint32_t)d;
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    if (rem == 2) {
        int a = b64url_value(s[i]), b = b64url_value(s[i + 1]);
        if ((a | b) < 0 || (b & 0x0f) != 0) /* 4 unused bits must be zero */
            return RT_TOK_EBASE64;
        out[o++] = (uint8_t)((a << 2) | (b >> 4));
    } else if (rem == 3) {
        int a = b64url_value(s[i]), b = b64url_value(s[i + 1]), c = b64url_value(s[i + 2]);
        if ((a | b | c) < 0 || (c & 0x03) != 0) /* 2 unused bits must be zero */
            return RT_TOK_EBASE64;
        uint32_t v = ((uint32_t)a << 12) | ((uint32_t)b << 6) | (uint32_t)c;
        out[o++] = (uint8_t)(v >> 10);
        out[o++] = (uint8_t)(v >> 2);
    }
    return (int)o;
}
