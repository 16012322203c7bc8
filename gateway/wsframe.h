/* wsframe: RFC 6455 frames as the gateway sees them: client frames parsed
 * incrementally from whatever a read returned, and the headers of server
 * frames. No I/O.
 *
 * The parser enforces what the gateway's WebSockets promise: client frames
 * are masked; no RSV bit is set (no extension is ever negotiated); control
 * frames are final and carry at most 125 bytes; continuation frames only
 * continue a message; a close frame's code is one a peer may send and its
 * reason, like every text message, is valid UTF-8 (checked across fragments);
 * a message never exceeds the configured size, refused as soon as a header
 * announces more. A violation ends the connection with a close code.
 *
 * Payload is unmasked in place, in the caller's buffer, and handed over in
 * pieces as it arrives: a frame complete in one read is one piece (no copy).
 * Control frames split over reads are gathered in a 125-byte buffer that
 * exists only while that happens. */
#ifndef GW_WSFRAME_H
#define GW_WSFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum wsf_op { WSF_CONT = 0, WSF_TEXT = 1, WSF_BINARY = 2, WSF_CLOSE = 8, WSF_PING = 9, WSF_PONG = 10 };

/* Parser state of one connection, embedded by its owner: zero it to start. */
struct wsf_rx {
    uint32_t left;    /* payload bytes of the current frame still to come */
    uint32_t msglen;  /* bytes of the current data message so far, announced included */
    uint32_t utf8;    /* validator state of the current text message or close reason */
    uint8_t hdr[14];  /* header bytes gathered so far */
    uint8_t hlen;
    uint8_t mask[4];
    uint8_t moff;     /* position in the mask of the next payload byte */
    uint8_t op;       /* opcode of the current frame */
    uint8_t msg_op;   /* WSF_TEXT or WSF_BINARY inside a message, else 0 */
    bool fin;
    bool in_payload;
    uint8_t ctllen;
    uint8_t *ctl;     /* a control frame split over reads (heap, 125 bytes) */
};

/* Where the parser hands what it found; `ud` is the caller's. A callback
 * returning non-zero stops the parse (wsf_feed returns -1). */
struct wsf_sink {
    /* A piece of a data message: `first` piece of the message, `final` piece
     * of it, and `remaining` bytes the current frame still announces. */
    int (*data)(void *ud, bool binary, const uint8_t *p, size_t n, bool first, bool final,
                uint64_t remaining);
    /* A whole control frame: WSF_PING, WSF_PONG, or WSF_CLOSE with its code
     * (1005 when it carried none) and reason. */
    int (*ping)(void *ud, const uint8_t *p, size_t n);
    int (*pong)(void *ud);
    int (*close)(void *ud, int code, const uint8_t *reason, size_t n);
};

/* Parses buf[0..len) (modified: unmasked in place). Returns 0 when every
 * byte was taken, -1 when a callback stopped it, or the close code the
 * connection must end with (1002 protocol error, 1007 invalid UTF-8, 1009
 * message over max_msg bytes; a control frame never is) with *why a static
 * description. */
int wsf_feed(struct wsf_rx *st, uint8_t *buf, size_t len, uint32_t max_msg,
             const struct wsf_sink *sink, void *ud, const char **why);

/* Frees what the parser holds (a split control frame). */
void wsf_rx_reset(struct wsf_rx *st);

/* Writes the header of an unmasked, final server frame of `len` payload
 * bytes into h (room for WSF_MAX_HEADER); returns its length. */
#define WSF_MAX_HEADER 10
size_t wsf_header(uint8_t *h, enum wsf_op op, size_t len);
static inline size_t wsf_header_len(size_t len)
{
    return len < 126 ? 2 : len <= 0xffff ? 4 : 10;
}

/* Validates UTF-8 incrementally: *state starts at 0; returns false at the
 * first invalid byte. A message is whole only when the state is back at 0. */
bool wsf_utf8(uint32_t *state, const uint8_t *p, size_t n);

/* Whether a peer may send this close code (RFC 6455 7.4). */
bool wsf_close_code_ok(int code);

#endif
