/* memtrim: gives freed heap memory back to the system once a burst of work
 * is over.
 *
 * glibc keeps what is freed. A connect storm leaves its short-lived buffers
 * (lws' handshake state, header tables) as holes between long-lived sessions;
 * those pages stay resident although nothing uses them, and an idle server
 * would look several hundred bytes per connection bigger than it is.
 * malloc_trim returns every whole free page, holes included. It walks the
 * heap, so it runs only once activity has stopped for a second, or every
 * 30 s while it goes on. */
#ifndef CF_MEMTRIM_H
#define CF_MEMTRIM_H

#include <stdbool.h>
#include <stdint.h>

struct cf_memtrim {
    uint64_t last_activity;
    int64_t last_change_ms, last_trim_ms;
    bool dirty;
};

/* Call about once a second with a counter that grows with the work that
 * allocates (connections opened + closed, frames received...). Returns
 * true when it trimmed. */
bool cf_memtrim_tick(struct cf_memtrim *t, uint64_t activity, int64_t now_ms);

#endif
