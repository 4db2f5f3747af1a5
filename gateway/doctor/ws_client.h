/*
 * ws_client.h — the doctor's WebSocket client (RFC 6455) over a connection
 * of net.h: the handshake key and its expected accept value, masked client
 * frames, a frame reader that answers pings (and counts them) so that an
 * idle connection stays alive as a browser's would, and close frames.
 * Frame headers go through core's wsframe.h, the gateway's one codec.
 *
 * Private to rt_doctor. Blocking up to the given deadline, single-threaded.
 * Results are 0 or a negative RT_E_* value (err.h). A client owns its
 * connection and buffer: release them with rt__ws_close.
 */
#ifndef RT_DOCTOR_WS_CLIENT_H
#define RT_DOCTOR_WS_CLIENT_H

#include "net.h"

#include <stddef.h>
#include <stdint.h>

/* RFC 6455 §7.1.5: a close frame that carries no status code. */
#define RT__WS_CLOSE_NO_STATUS 1005

typedef struct {
    rt__net_conn_t c;
    unsigned char *buf; /* bytes read, not yet taken as frames */
    size_t len, cap;
    int pings; /* pings received (and answered) so far */
} rt__ws_t;

/* A fresh Sec-WebSocket-Key (base64 of 16 random bytes) and the
 * Sec-WebSocket-Accept a server must answer it with. */
void rt__ws_handshake_key(char key[32], char expect[40]);

/* Hand the client the bytes that arrived after the 101 head (frames the
 * server sent at once). Best effort: on no memory they are dropped. */
void rt__ws_adopt(rt__ws_t *w, const char *p, size_t n);

/* Send one masked frame with FIN set: 0, RT_E_NOMEM, RT_E_TIMEOUT, RT_E_IO. */
int rt__ws_send(rt__ws_t *w, int opcode, const void *p, size_t n);

/* The next data or close frame: 0 with *op and *payload (malloc'd,
 * NUL-terminated, the caller frees it) of *plen bytes; RT_E_TIMEOUT when
 * none came by deadline (the client stays usable); any other negative value
 * (RT_E_CLOSED, RT_E_PROTOCOL, RT_E_NOMEM) when the connection ended without
 * a close frame or cannot go on. Pings are answered and counted here. */
int rt__ws_next(rt__ws_t *w, int64_t deadline, int *op, char **payload, size_t *plen);

/* Close the connection, free the buffer, and leave w zeroed with fd -1. */
void rt__ws_close(rt__ws_t *w);

/* The code (RT__WS_CLOSE_NO_STATUS when absent) and reason of a close
 * frame's payload. */
void rt__ws_close_parse(const char *p, size_t n, int *code, char *reason, size_t cap);

#endif
