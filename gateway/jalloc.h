/* jalloc: where jansson allocates while it parses a client frame.
 *
 * A client's frame is parsed into a json_t tree, read, and freed before the
 * next frame: about 26 malloc() and free() calls a frame, 90 % of the
 * gateway's allocations and ~6 % of its CPU in the small-rooms benchmark
 * (docs/benchmarks.md). Between jalloc_begin() and jalloc_end() jansson's
 * allocations come from one static arena instead (common/arena.h), and
 * its frees of them cost nothing; the arena starts over once every block it
 * handed out has been freed. A tree still alive at the next parse (nothing
 * keeps one today) is safe: the arena is not reused while any of its blocks
 * lives, and new allocations go to malloc() once it is full, as do those of
 * a frame larger than it. Outside begin/end jansson uses malloc() as usual.
 * Under AddressSanitizer the arena poisons what nobody holds (arena.h).
 *
 * Installed once per process with jalloc_install() (json_set_alloc_funcs:
 * global). Not thread-safe: the gateway parses on its one loop thread. */
#ifndef GW_JALLOC_H
#define GW_JALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"

#define JALLOC_ARENA_BYTES 32768

/* Points jansson at this module's allocator; once, at the start of main().
 * jansson frees every block with the allocator current at the time, and
 * this one hands whatever is not in the arena to free(). */
void jalloc_install(void);

/* jansson's allocations go to the arena until jalloc_end(). Not nested. */
void jalloc_begin(void);
void jalloc_end(void);

/* The arena's figures: its fallbacks are the blocks that went to malloc()
 * between begin and end because the arena was full. */
struct cf_arena_stats jalloc_stats(void);

#endif
