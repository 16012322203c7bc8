/* lowfd: see lowfd.h. */
#include "lowfd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"

/* After running out of descriptors: the fillers stay given back this long,
 * so that a process at its limit does not take numbers each second only to
 * give them back at its next accept. */
#define RELEASE_HOLD_MS 60000

/* Numbers left free above the fillers for everything the process opens
 * other than by accept: a broker link's reconnect, sd_notify's socket, a
 * timer, a file served, the listener's reserve. */
#define HEADROOM 64

struct lowfd {
    int cap;
    int src;    /* what the fillers are copies of (/dev/null); -1: gone */
    int *stack; /* the fillers' numbers */
    int n;      /* how many */
    int64_t hold_until;
};

/* Whether the top HEADROOM numbers of the limit are free, i.e. whether
 * the process is far from running out: the kernel hands out the lowest free
 * number, so those are the last taken. */
static bool room_left(const struct lowfd *lf)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return true;
    if (rl.rlim_cur <= (rlim_t)lf->cap + HEADROOM)
        return false;
    int fd = fcntl(lf->src, F_DUPFD_CLOEXEC, (int)(rl.rlim_cur - HEADROOM));
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/* Takes free numbers under the cap until there is none left. */
static void fill(struct lowfd *lf)
{
    while (lf->n < lf->cap) {
        int fd = fcntl(lf->src, F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
            return; /* out of descriptors: nothing to take */
        if (fd >= lf->cap) {
            close(fd);
            return;
        }
        lf->stack[lf->n++] = fd;
    }
}

struct lowfd *lowfd_new(int cap)
{
    if (cap <= 0)
        return NULL;
    struct lowfd *lf = calloc(1, sizeof *lf);
    if (!lf)
        return NULL;
    lf->cap = cap;
    lf->stack = malloc((size_t)cap * sizeof *lf->stack);
    lf->src = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (!lf->stack || lf->src < 0) {
        lowfd_free(lf);
        return NULL;
    }
    /* the source itself under the cap would be a number lws can never use:
     * above it, if there is room */
    if (lf->src < cap) {
        int high = fcntl(lf->src, F_DUPFD_CLOEXEC, cap);
        if (high >= 0) {
            close(lf->src);
            lf->src = high;
        }
    }
    if (room_left(lf))
        fill(lf);
    return lf;
}

void lowfd_free(struct lowfd *lf)
{
    if (!lf)
        return;
    while (lf->n)
        close(lf->stack[--lf->n]);
    if (lf->src >= 0)
        close(lf->src);
    free(lf->stack);
    free(lf);
}

int lowfd_lower(struct lowfd *lf, int fd)
{
    if (!lf || fd < lf->cap)
        return fd;
    if (lf->n) {
        int slot = lf->stack[lf->n - 1];
        /* replaces the filler in one step: the number is never free, so
         * nothing else can take it in between */
        if (dup3(fd, slot, O_CLOEXEC) < 0)
            return -1;
        lf->n--;
        close(fd);
        return slot;
    }
    /* no filler left: a hole, if there is one */
    int low = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (low < 0)
        return -1;
    if (low >= lf->cap) {
        close(low);
        return -1;
    }
    close(fd);
    return low;
}

int lowfd_release(struct lowfd *lf, int n, int64_t now_ms)
{
    if (!lf)
        return 0;
    int k = 0;
    while (k < n && lf->n) {
        close(lf->stack[--lf->n]);
        k++;
    }
    if (k && now_ms >= lf->hold_until) /* once a hold */
        CF_WARN("gateway",
                "running out of file descriptors: gave back %d of the numbers "
                "held under libwebsockets' table (%d left); raise LimitNOFILE or add gateway "
                "processes",
                k, lf->n);
    lf->hold_until = now_ms + RELEASE_HOLD_MS;
    return k;
}

void lowfd_refill(struct lowfd *lf, int64_t now_ms)
{
    if (!lf || now_ms < lf->hold_until)
        return;
    if (room_left(lf))
        fill(lf);
    else
        lowfd_release(lf, HEADROOM, now_ms);
}

int lowfd_fillers(const struct lowfd *lf)
{
    return lf ? lf->n : 0;
}
