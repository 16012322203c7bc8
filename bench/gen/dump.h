/* dump: the per-delivery record behind --dump (docs/benchmarks.md, "Reading
 * a tail").
 *
 * Records are kept in memory while the generator runs and written after it:
 * a write() of the file in the middle of a step would stall the loop that
 * timestamps the deliveries it is meant to explain. Memory is bounded by
 * DUMP_MAX_RECORDS (32 bytes each); records past it are counted as dropped,
 * and a dump that dropped any is reported as incomplete. */
#ifndef BENCH_DUMP_H
#define BENCH_DUMP_H

#include <stddef.h>
#include <stdint.h>

#define DUMP_MAX_RECORDS (8u * 1024 * 1024) /* 256 MiB; the steady scenario needs 400 k */

typedef struct gen_dump gen_dump;

/* Creates (truncates) the file at once, so that a path that cannot be
 * written fails before any connection is opened. NULL with errno set. */
gen_dump *dump_open(const char *path);

/* One delivery: receive time and latency in ns, the sender's global index
 * and seq, the receiver's global index. Never fails: a record that does not
 * fit is counted as dropped. */
void dump_add(gen_dump *d, uint64_t now, uint64_t lat, uint32_t sender, uint32_t seq,
              uint32_t receiver);

/* Where the records stand, taken as a step begins; dump_rewind forgets
 * every record since (and the count of those dropped since): a step run
 * once more (--rerun-late-steps) replaces the one before it, and the dump
 * describes the steps the report keeps, the earlier ones included. */
typedef struct dump_mark {
    size_t n;
    uint64_t dropped;
} dump_mark;
dump_mark dump_here(const gen_dump *d);
void dump_rewind(gen_dump *d, dump_mark m);

/* Writes every record as the line "<now> <lat> <sender> <seq> <receiver>",
 * closes the file and frees d. 0, or -1 with a message on stderr when the
 * file could not be written whole or records were dropped. */
int dump_finish(gen_dump *d, const char *path);

#endif
