/* msgtext: the generator's messages, as text. Pure functions, no state.
 *
 * A published message is `<sender> <seq> <send_time_ns> ` padded with 'x' to
 * a fixed length: ASCII that JSON never escapes, so a receiver finds it
 * verbatim after `"message":"` without a JSON parser. */
#ifndef BENCH_MSGTEXT_H
#define BENCH_MSGTEXT_H

#include <stddef.h>
#include <stdint.h>

enum mt_type { MT_OTHER, MT_NEW_MESSAGE, MT_JOINED, MT_ERROR };

/* The type of a JSON event frame, from its "type" key within its first 64
 * bytes (confab and the baseline both put it first). */
enum mt_type mt_type(const uint8_t *p, size_t n);

/* Finds `"message":"` in the frame and parses the head of its text. Returns
 * 0, or -1 when absent or malformed. */
int mt_parse(const uint8_t *p, size_t n, uint32_t *sender, uint32_t *seq, uint64_t *t_ns);

/* The JSON of a send event in room "bench-<room>" whose message text is the
 * head above padded to text_len bytes (or just the head when longer), into
 * out. Returns its length, or 0 when out (cap bytes) is too small. */
size_t mt_build_send(char *out, size_t cap, uint32_t room, uint32_t sender, uint32_t seq,
                     uint64_t t_ns, uint32_t text_len);

/* The JSON of a join of room "bench-<room>" into out (>= 64 bytes); returns
 * its length. */
size_t mt_build_join(char *out, uint32_t room);

#endif
