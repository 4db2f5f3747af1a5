/*
 * peer_ws.h — what the bench peers in C (floor.c, ref.c) share: the WebSocket
 * handshake answer, server frame headers and a loopback listener. No state,
 * no allocation kept; single-threaded callers.
 */
#ifndef PEER_WS_H
#define PEER_WS_H
#include <stddef.h>
#include <stdint.h>

/* Writes a server frame header (FIN, no mask) for `len` payload bytes into h
 * (10 bytes at most); returns its length. */
size_t peer_frame_header(uint8_t *h, uint8_t opcode, size_t len);

/* Parses a complete upgrade request (in[0..n), ending in CRLFCRLF) and writes
 * the "101 Switching Protocols" answer into resp (cap bytes). *path and *plen: the
 * request path without its leading '/'. Returns the answer's length, or -1 for
 * a request without a path or a usable Sec-WebSocket-Key. */
int peer_ws_upgrade(const char *in, size_t n, const char **path, size_t *plen, char *resp,
                    size_t cap);

/* A non-blocking TCP listener on host:port (backlog 4096); exits on failure. */
int peer_listen(const char *host, int port);

/* Raises RLIMIT_NOFILE to its hard limit and ignores SIGPIPE. */
void peer_limits(void);
#endif
