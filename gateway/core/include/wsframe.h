/*
 * wsframe.h — the one RFC 6455 frame-header codec, shared by the server (the
 * guard on civetweb's reads, the detached sessions' reader), the refcounted
 * frames of frame.h and the doctor's WebSocket client.
 *
 * Pure functions on caller-owned bytes: no allocation, no I/O, any thread.
 */
#ifndef RT_WSFRAME_H
#define RT_WSFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Opcodes (RFC 6455 §5.2). */
enum {
    RT_WS_CONTINUATION = 0x0,
    RT_WS_TEXT = 0x1,
    RT_WS_BINARY = 0x2,
    RT_WS_CLOSE = 0x8,
    RT_WS_PING = 0x9,
    RT_WS_PONG = 0xA
};

/* The longest header: 2 bytes, an 8-byte length, a 4-byte mask. */
#define RT_WS_HDR_MAX 14

/* A parsed frame header. */
typedef struct {
    bool fin;
    uint8_t rsv;    /* the three RSV bits, shifted down (0..7) */
    uint8_t opcode; /* 0..15 */
    bool masked;
    uint8_t mask[4]; /* valid when masked */
    uint64_t len;    /* payload length */
    size_t hlen;     /* header length: 2..14 */
} rt_ws_hdr_t;

/* The header length announced by the first two bytes b0, b1 (2..14). */
static inline size_t rt_ws_hdr_need(uint8_t b1)
{
    size_t ext = (b1 & 127) == 126 ? 2 : (b1 & 127) == 127 ? 8 : 0;
    return 2 + ext + ((b1 & 0x80) ? 4 : 0);
}

/* Parse the header at the start of p[0..n). Returns the header length (> 0)
 * with *h filled, 0 when more bytes are needed, or -1 when the 64-bit length
 * has its most significant bit set (RFC 6455 §5.2 forbids it). */
int rt_ws_hdr_parse(const uint8_t *p, size_t n, rt_ws_hdr_t *h);

/* The header length of an unmasked frame whose payload is len bytes. */
static inline size_t rt_ws_hdr_len(uint64_t len)
{
    return len < 126 ? 2 : len <= 0xFFFF ? 4 : 10;
}

/* Write a header with FIN set: opcode, payload length len, and the mask when
 * mask is non-NULL (client frames). out has room for RT_WS_HDR_MAX bytes.
 * Returns the header length. */
size_t rt_ws_hdr_write(uint8_t *out, int opcode, uint64_t len, const uint8_t *mask);

/* XOR p[0..n) with mask, for payload bytes that start at offset off of the
 * frame's payload (so a payload can be unmasked in pieces). */
void rt_ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t off);

#endif
