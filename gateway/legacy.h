/* legacy: the JSON protocol of the original Go chat, kept byte-compatible for
 * clients that negotiate no WebSocket subprotocol.
 *
 *   client -> server  {"type":"send_message","payload":{"message":"hi","from":"alice"}}
 *                     {"type":"change_room","payload":{"name":"lobby"}}
 *   server -> client  {"type":"new_message","payload":{"message":"hi","from":"alice",
 *                      "sent":"2026-11-28T10:00:00.123Z","room":"lobby"}}
 *
 * Such clients alert on any other event type, so nothing else is ever sent to
 * them; bad input from them is logged and ignored. */
#ifndef GW_LEGACY_H
#define GW_LEGACY_H

#include <stddef.h>

#include "buf.h"
#include "wire.h"

enum legacy_type { LEGACY_SEND_MESSAGE = 1, LEGACY_CHANGE_ROOM };

struct legacy_event {
    enum legacy_type type;
    struct cf_str text; /* send_message: the message */
    struct cf_str room; /* change_room: the room name (validated) */
    void *doc;          /* owns the strings above */
};

/* Parses one client frame. Returns 0 (free the event with legacy_event_free)
 * or -1 with *why describing the problem for the log. A send_message whose
 * text is empty or only whitespace, an unknown type, a bad room name and
 * anything that is not the expected JSON shape are all refused. The client's
 * "from" is ignored: the sender is always the token's user. */
int legacy_parse(const char *in, size_t len, struct legacy_event *ev, const char **why);
void legacy_event_free(struct legacy_event *ev);

/* Encodes a room message as a new_message event, once for every recipient,
 * into a buffer with `headroom` bytes before the text (for the WebSocket
 * header). Returns a buffer with one reference, or NULL. */
struct cf_buf *legacy_encode_message(const struct cf_wire_msg *m, size_t headroom);

#endif
