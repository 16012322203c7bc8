/* wsproto: the client side of RFC 6455 that the generator needs, as pure
 * functions over byte buffers (no sockets, no allocation): parsing a server
 * frame header in place, writing a masked client frame, the upgrade request
 * and the check of the server's 101 answer. */
#ifndef BENCH_WSPROTO_H
#define BENCH_WSPROTO_H

#include <stddef.h>
#include <stdint.h>

enum { WS_CONT = 0x0, WS_TEXT = 0x1, WS_BIN = 0x2, WS_CLOSE = 0x8, WS_PING = 0x9, WS_PONG = 0xA };

typedef struct ws_frame {
    int fin;
    int opcode;
    size_t hdr;   /* header bytes (2, 4 or 10: servers do not mask) */
    uint64_t len; /* payload bytes */
} ws_frame;

#define WS_NEED_MORE 0
#define WS_COMPLETE 1
#define WS_ERROR (-1)

/* Parses the frame header at p (n bytes available). WS_COMPLETE: the whole
 * frame (f->hdr + f->len bytes) is in p. WS_NEED_MORE: not yet; when the
 * header itself was complete f->hdr and f->len are set (so the caller knows
 * the frame's size), else f->hdr is 0. WS_ERROR: not a frame a server may
 * send (RSV bits, a masked frame, an unknown opcode, a control frame that is
 * fragmented or over 125 bytes, a payload over max_len). */
int ws_parse(const uint8_t *p, size_t n, uint64_t max_len, ws_frame *f);

/* Header bytes of a masked client frame carrying n payload bytes. */
size_t ws_client_hdr_len(size_t n);

/* Writes a final, masked client frame of the given opcode carrying payload
 * (n bytes) into out, which must hold ws_client_hdr_len(n) + n bytes.
 * Returns the bytes written. */
size_t ws_write_frame(uint8_t *out, int opcode, const uint8_t *payload, size_t n, uint32_t mask);

/* XORs n bytes in place with the 4-byte mask starting at mask byte `phase`. */
void ws_mask(uint8_t *p, size_t n, uint32_t mask, size_t phase);

/* The upgrade request for path (with its query) on host, offering the
 * subprotocol when it is not NULL, with the base64 key. Returns its length,
 * or -1 when out is too small. */
int ws_request(char *out, size_t cap, const char *host, const char *path, const char *key,
               const char *subprotocol);

/* The Sec-WebSocket-Accept value for a key (28 characters + NUL into out). */
void ws_accept_for(const char *key, char out[29]);

/* Checks the server's answer (p, n bytes so far). Returns the length of the
 * header block (through the blank line) when it is a 101 with
 * "Upgrade: websocket" and Sec-WebSocket-Accept equal to accept; 0 while the
 * header block is incomplete; -1 when it is complete and something else
 * (*status, when not NULL, gets the HTTP status, or 0 when unreadable). */
int ws_check_response(const char *p, size_t n, const char *accept, int *status);

#endif
