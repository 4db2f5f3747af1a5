/*
 * frame.h — refcounted, immutable byte buffers: a published event is encoded
 * once (WebSocket header + JSON, or an SSE record) and every subscriber queue
 * holds a reference to the same bytes.
 *
 * Thread safety: ref/unref are atomic; the bytes must not change after the
 * frame is shared.
 */
#ifndef RT_FRAME_H
#define RT_FRAME_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "wsframe.h"

typedef struct rt_frame_s {
    atomic_uint refs;
    uint32_t len; /* bytes used in data */
    uint32_t cap;
    char data[];
} rt_frame_t;

/* New frame with room for cap bytes, len 0, one reference; NULL on OOM. */
rt_frame_t *rt_frame_new(size_t cap);
/* Take another reference; returns f. */
static inline rt_frame_t *rt_frame_ref(rt_frame_t *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}
/* Drop a reference; frees the frame with the last one. NULL is ignored. */
void rt_frame_unref(rt_frame_t *f);

/* WebSocket (RFC 6455) server-to-client frame: unmasked, FIN set, header
 * from wsframe.h. rt_ws_frame_new builds opcode + payload in one buffer; NULL on OOM. */
rt_frame_t *rt_ws_frame_new(int opcode, const void *payload, size_t len);
/* Close frame with a status code and a UTF-8 reason (truncated to 123 bytes). */
rt_frame_t *rt_ws_close_frame_new(int code, const char *reason);

#endif
