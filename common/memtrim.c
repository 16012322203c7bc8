/* memtrim: see memtrim.h. */
#include "memtrim.h"

#include <malloc.h>

#define QUIET_MS 1000
#define BUSY_TRIM_MS 30000

bool cf_memtrim_tick(struct cf_memtrim *t, uint64_t activity, int64_t now_ms)
{
    if (activity != t->last_activity) {
        t->last_activity = activity;
        t->last_change_ms = now_ms;
        t->dirty = true;
        if (now_ms - t->last_trim_ms < BUSY_TRIM_MS)
            return false;
    } else if (!t->dirty || now_ms - t->last_change_ms < QUIET_MS) {
        return false;
    }
    t->dirty = false;
    t->last_trim_ms = now_ms;
    malloc_trim(64 * 1024);
    return true;
}
