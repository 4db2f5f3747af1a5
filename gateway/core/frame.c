#include "frame.h"

#include <stdlib.h>
#include <string.h>

rt_frame_t *rt_frame_new(size_t cap)
{
    if (cap > UINT32_MAX)
        return NULL;
    rt_frame_t *f = malloc(sizeof(*f) + cap);
    if (!f)
        return NULL;
    atomic_init(&f->refs, 1);
    f->len = 0;
    f->cap = (uint32_t)cap;
    return f;
}

void rt_frame_unref(rt_frame_t *f)
{
    if (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        free(f);
}

rt_frame_t *rt_ws_frame_new(int opcode, const void *payload, size_t len)
{
    size_t hl = rt_ws_hdr_len(len);
    rt_frame_t *f = rt_frame_new(hl + len);
    if (!f)
        return NULL;
    unsigned char *p = (unsigned char *)f->data;
    rt_ws_hdr_write(p, opcode, len, NULL);
    if (len)
        memcpy(p + hl, payload, len);
    f->len = (uint32_t)(hl + len);
    return f;
}

rt_frame_t *rt_ws_close_frame_new(int code, const char *reason)
{
    unsigned char payload[125];
    size_t rlen = reason ? strlen(reason) : 0;
    if (rlen > sizeof(payload) - 2)
        rlen = sizeof(payload) - 2;
    /* Do not cut a UTF-8 sequence in half. */
    while (rlen > 0 && rlen < (reason ? strlen(reason) : 0) &&
           ((unsigned char)reason[rlen] & 0xC0) == 0x80)
        rlen--;
    payload[0] = (unsigned char)(code >> 8);
    payload[1] = (unsigned char)code;
    if (rlen)
        memcpy(payload + 2, reason, rlen);
    return rt_ws_frame_new(RT_WS_CLOSE, payload, 2 + rlen);
}
