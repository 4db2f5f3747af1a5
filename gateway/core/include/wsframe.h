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

#include "reason.h"

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

/* ---- what a server must refuse in a client's frame stream (RFC 6455 §5) ----
 *
 * One rt_ws_rx_t per connection, zeroed at the start. The reader feeds it each
 * frame's header as soon as the header is complete (before buffering the
 * payload), and each frame's unmasked payload in order. Masking is the
 * caller's rule (a server requires it); everything else is here. */
typedef struct {
    uint8_t frag_opcode; /* header side: TEXT/BINARY while a fragmented message is open */
    uint64_t frag_len;   /* header side: that message's bytes so far */
    bool text_open;      /* payload side: a fragmented text message is open */
    uint32_t utf8;       /* payload side: the UTF-8 decoder's state across fragments */
} rt_ws_rx_t;

/* Judge a frame header. Returns RT_REASON_NORMAL when it is acceptable, else
 * the reason to close with: RT_REASON_PROTOCOL_ERROR (1002: RSV bits with no
 * extension, an unknown opcode, a fragmented control frame or one over 125
 * bytes, a continuation with no message open, a new message inside a
 * fragmented one) or RT_REASON_MESSAGE_TOO_BIG (1009: a message, all its
 * fragments together, over limit bytes). */
rt_reason_t rt_ws_rx_header(rt_ws_rx_t *rx, const rt_ws_hdr_t *h, uint64_t limit);

/* Judge a frame's unmasked payload (fin and opcode from its header): a text
 * message must be valid UTF-8 across its fragments, failing at the first bad
 * byte; a close frame's payload is empty, or a valid code (rt_ws_close_code_ok)
 * and a UTF-8 reason. Returns RT_REASON_NORMAL, RT_REASON_INVALID_PAYLOAD
 * (1007) or RT_REASON_PROTOCOL_ERROR (1002). */
rt_reason_t rt_ws_rx_payload(rt_ws_rx_t *rx, bool fin, int opcode, const uint8_t *p, size_t n);

/* Whether a peer may send this close code (RFC 6455 §7.4, and the IANA
 * registry): 1000-1003, 1007-1014 and 3000-4999. */
bool rt_ws_close_code_ok(int code);

/* Whether a Sec-WebSocket-Key is what RFC 6455 §4.1 requires: a 16-byte
 * nonce in base64, 24 characters ending in "==" (and no more: civetweb 1.15
 * answers 500 after the handshake callback for a key of 64 bytes or more). */
bool rt_ws_key_valid(const char *key);

/* Whether p[0..n) is complete, valid UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF). */
bool rt_utf8_valid(const uint8_t *p, size_t n);

#endif
