/*
 * wsframe.c — RFC 6455 frame headers (see wsframe.h). Every frame header rtgw
 * reads or writes goes through here, so the length rules live in one place.
 */
#include "wsframe.h"

#include <string.h>

int rt_ws_hdr_parse(const uint8_t *p, size_t n, rt_ws_hdr_t *h)
{
    if (n < 2)
        return 0;
    size_t need = rt_ws_hdr_need(p[1]);
    if (n < need)
        return 0;
    h->fin = (p[0] & 0x80) != 0;
    h->rsv = (uint8_t)((p[0] >> 4) & 7);
    h->opcode = (uint8_t)(p[0] & 0x0F);
    h->masked = (p[1] & 0x80) != 0;
    uint64_t len = p[1] & 127;
    size_t o = 2;
    if (len == 126) {
        len = (uint64_t)p[2] << 8 | p[3];
        o = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        o = 10;
        if (len >> 63)
            return -1;
    }
    if (h->masked)
        for (int i = 0; i < 4; i++)
            h->mask[i] = p[o + i];
    h->len = len;
    h->hlen = need;
    return (int)need;
}

size_t rt_ws_hdr_write(uint8_t *out, int opcode, uint64_t len, const uint8_t *mask)
{
    size_t o = 0;
    uint8_t m = mask ? 0x80 : 0;
    out[o++] = (uint8_t)(0x80 | (opcode & 0x0F));
    if (len < 126) {
        out[o++] = (uint8_t)(m | len);
    } else if (len <= 0xFFFF) {
        out[o++] = (uint8_t)(m | 126);
        out[o++] = (uint8_t)(len >> 8);
        out[o++] = (uint8_t)len;
    } else {
        out[o++] = (uint8_t)(m | 127);
        for (int i = 0; i < 8; i++)
            out[o++] = (uint8_t)(len >> (56 - 8 * i));
    }
    if (mask)
        for (int i = 0; i < 4; i++)
            out[o++] = mask[i];
    return o;
}

void rt_ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t off)
{
    for (size_t i = 0; i < n; i++)
        p[i] ^= mask[(off + i) & 3];
}

/* ---- receive-side rules ---- */

/* Feed bytes to the UTF-8 decoder whose state is *st: the continuation bytes
 * still needed (low byte) and the range the next one must fall in (bytes 1
 * and 2), which is narrower than 80..BF right after E0, ED, F0 and F4 (the
 * overlong, surrogate and beyond-U+10FFFF forms). false at the first byte
 * that cannot be UTF-8. */
static bool utf8_feed(uint32_t *st, const uint8_t *p, size_t n)
{
    unsigned need = *st & 0xFF, lo = (*st >> 8) & 0xFF, hi = (*st >> 16) & 0xFF;
    for (size_t i = 0; i < n; i++) {
        unsigned b = p[i];
        if (need) {
            if (b < lo || b > hi)
                return false;
            need--;
            lo = 0x80;
            hi = 0xBF;
            continue;
        }
        if (b < 0x80)
            continue;
        lo = 0x80;
        hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) {
            need = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            if (b == 0xE0)
                lo = 0xA0; /* no overlong 3-byte forms */
            else if (b == 0xED)
                hi = 0x9F; /* no UTF-16 surrogates */
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            if (b == 0xF0)
                lo = 0x90; /* no overlong 4-byte forms */
            else if (b == 0xF4)
                hi = 0x8F; /* nothing above U+10FFFF */
        } else {
            return false; /* 80..C1 as a first byte, F5..FF */
        }
    }
    *st = need | lo << 8 | hi << 16;
    return true;
}

bool rt_utf8_valid(const uint8_t *p, size_t n)
{
    uint32_t st = 0;
    return utf8_feed(&st, p, n) && (st & 0xFF) == 0;
}

bool rt_ws_close_code_ok(int code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

rt_reason_t rt_ws_rx_header(rt_ws_rx_t *rx, const rt_ws_hdr_t *h, uint64_t limit)
{
    if (h->rsv)
        return RT_REASON_PROTOCOL_ERROR; /* no extension is negotiated */
    switch (h->opcode) {
    case RT_WS_CLOSE:
    case RT_WS_PING:
    case RT_WS_PONG:
        /* control frames may come between fragments, whole and small */
        return h->fin && h->len <= 125 ? RT_REASON_NORMAL : RT_REASON_PROTOCOL_ERROR;
    case RT_WS_CONTINUATION:
        if (!rx->frag_opcode)
            return RT_REASON_PROTOCOL_ERROR;
        rx->frag_len += h->len;
        if (rx->frag_len > limit)
            return RT_REASON_MESSAGE_TOO_BIG;
        if (h->fin)
            rx->frag_opcode = 0;
        return RT_REASON_NORMAL;
    case RT_WS_TEXT:
    case RT_WS_BINARY:
        if (rx->frag_opcode)
            return RT_REASON_PROTOCOL_ERROR; /* the open message is not finished */
        if (h->len > limit)
            return RT_REASON_MESSAGE_TOO_BIG;
        if (!h->fin) {
            rx->frag_opcode = h->opcode;
            rx->frag_len = h->len;
        }
        return RT_REASON_NORMAL;
    default:
        return RT_REASON_PROTOCOL_ERROR; /* reserved opcodes */
    }
}

rt_reason_t rt_ws_rx_payload(rt_ws_rx_t *rx, bool fin, int opcode, const uint8_t *p, size_t n)
{
    switch (opcode) {
    case RT_WS_CLOSE:
        if (n == 0)
            return RT_REASON_NORMAL;
        if (n == 1 || !rt_ws_close_code_ok(p[0] << 8 | p[1]))
            return RT_REASON_PROTOCOL_ERROR;
        return rt_utf8_valid(p + 2, n - 2) ? RT_REASON_NORMAL : RT_REASON_INVALID_PAYLOAD;
    case RT_WS_TEXT:
        rx->utf8 = 0;
        rx->text_open = true;
        break;
    case RT_WS_BINARY:
        rx->text_open = false;
        return RT_REASON_NORMAL;
    case RT_WS_CONTINUATION:
        if (!rx->text_open)
            return RT_REASON_NORMAL;
        break;
    default:
        return RT_REASON_NORMAL;
    }
    if (!utf8_feed(&rx->utf8, p, n))
        return RT_REASON_INVALID_PAYLOAD;
    if (fin) {
        rx->text_open = false;
        if ((rx->utf8 & 0xFF) != 0)
            return RT_REASON_INVALID_PAYLOAD; /* the message ends inside a character */
    }
    return RT_REASON_NORMAL;
}

bool rt_ws_key_valid(const char *key)
{
    if (!key || strlen(key) != 24 || key[22] != '=' || key[23] != '=')
        return false;
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 22; i++)
        if (!strchr(b64, key[i]))
            return false;
    return true;
}
