/*
 * wsframe.c — RFC 6455 frame headers (see wsframe.h). Every frame header rtgw
 * reads or writes goes through here, so the length rules live in one place.
 */
#include "wsframe.h"

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
