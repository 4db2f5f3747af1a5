/*
 * ws_client.c — the WebSocket client (see ws_client.h).
 *
 * It behaves as a browser does where a proxy can tell: every frame is masked,
 * pings get pongs, and the handshake carries a random key whose accept value
 * is checked (a proxy that rewrites the handshake is a finding).
 */
#include "ws_client.h"
#include "clock.h"
#include "err.h"
#include "wsframe.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_MAX_PAYLOAD (16u << 20) /* a larger frame ends the connection */
#define WS_SEND_MS 5000            /* deadline for writing one frame */
#define WS_READ_MIN 4096           /* grow the buffer below this much room */
#define WS_BUF_INIT 16384

void rt__ws_handshake_key(char key[32], char expect[40])
{
    unsigned char keyraw[16];
    RAND_bytes(keyraw, sizeof(keyraw));
    EVP_EncodeBlock((unsigned char *)key, keyraw, sizeof(keyraw));
    char cat[80];
    snprintf(cat, sizeof(cat), "%s%s", key, WS_GUID);
    unsigned char sha[EVP_MAX_MD_SIZE];
    unsigned int shalen = 0;
    EVP_Digest(cat, strlen(cat), sha, &shalen, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)expect, sha, (int)shalen);
}

void rt__ws_adopt(rt__ws_t *w, const char *p, size_t n)
{
    if (!n)
        return;
    w->buf = malloc(n + WS_BUF_INIT);
    if (w->buf) {
        memcpy(w->buf, p, n);
        w->len = n;
        w->cap = n + WS_BUF_INIT;
    }
}

int rt__ws_send(rt__ws_t *w, int opcode, const void *p, size_t n)
{
    uint8_t *f = malloc(n + RT_WS_HDR_MAX);
    if (!f)
        return RT_E_NOMEM;
    uint8_t mask[4];
    RAND_bytes(mask, 4);
    size_t h = rt_ws_hdr_write(f, opcode, n, mask);
    memcpy(f + h, p, n);
    rt_ws_unmask(f + h, n, mask, 0);
    int rc = rt__net_write(&w->c, f, h + n, rt_clock_mono_ms() + WS_SEND_MS);
    free(f);
    return rc;
}

/* Take the complete frame h at the start of the buffer: its payload,
 * unmasked and NUL-terminated, into *payload (malloc'd). */
static int take_frame(rt__ws_t *w, const rt_ws_hdr_t *h, char **payload)
{
    size_t len = (size_t)h->len, total = h->hlen + len;
    char *p = malloc(len + 1);
    if (!p)
        return RT_E_NOMEM;
    memcpy(p, w->buf + h->hlen, len);
    if (h->masked)
        rt_ws_unmask((uint8_t *)p, len, h->mask, 0);
    p[len] = 0;
    memmove(w->buf, w->buf + total, w->len - total);
    w->len -= total;
    *payload = p;
    return 0;
}

/* Read more bytes into the buffer: > 0, 0 at end of stream, or an RT_E_*. */
static ssize_t fill(rt__ws_t *w, int64_t deadline)
{
    if (w->cap - w->len < WS_READ_MIN) {
        size_t cap = w->cap ? w->cap * 2 : WS_BUF_INIT;
        unsigned char *nb = realloc(w->buf, cap);
        if (!nb)
            return RT_E_NOMEM;
        w->buf = nb;
        w->cap = cap;
    }
    return rt__net_read(&w->c, w->buf + w->len, w->cap - w->len, deadline);
}

int rt__ws_next(rt__ws_t *w, int64_t deadline, int *op, char **payload, size_t *plen)
{
    for (;;) {
        rt_ws_hdr_t h;
        int hl = rt_ws_hdr_parse(w->buf, w->len, &h);
        if (hl < 0 || (hl > 0 && h.len > WS_MAX_PAYLOAD))
            return RT_E_PROTOCOL;
        if (hl > 0 && w->len >= h.hlen + h.len) {
            char *p;
            int rc = take_frame(w, &h, &p);
            if (rc != 0)
                return rc;
            if (h.opcode == RT_WS_PING) {
                w->pings++;
                rt__ws_send(w, RT_WS_PONG, p, (size_t)h.len);
                free(p);
                continue;
            }
            if (h.opcode == RT_WS_PONG) {
                free(p);
                continue;
            }
            *op = h.opcode;
            *payload = p;
            *plen = (size_t)h.len;
            return 0;
        }
        ssize_t n = fill(w, deadline);
        if (n == RT_E_TIMEOUT)
            return RT_E_TIMEOUT;
        if (n < 0)
            return (int)n;
        if (n == 0)
            return RT_E_CLOSED;
        w->len += (size_t)n;
    }
}

void rt__ws_close(rt__ws_t *w)
{
    rt__net_close(&w->c);
    free(w->buf);
    memset(w, 0, sizeof(*w));
    w->c.fd = -1;
}

void rt__ws_close_parse(const char *p, size_t n, int *code, char *reason, size_t cap)
{
    *code = n >= 2 ? ((unsigned char)p[0] << 8) | (unsigned char)p[1] : RT__WS_CLOSE_NO_STATUS;
    snprintf(reason, cap, "%.*s", n > 2 ? (int)(n - 2) : 0, n > 2 ? p + 2 : "");
}
