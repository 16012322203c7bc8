/* stderr_catch: what a call writes to stderr, for the unit tests of messages
 * (a log line, a refused setting). Include after cmocka.h. */
#ifndef TESTS_STDERR_CATCH_H
#define TESTS_STDERR_CATCH_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct stderr_catch {
    int fd, saved;
};

/* From now on stderr goes to a file of its own. */
static inline void stderr_catch_begin(struct stderr_catch *c)
{
    char path[] = "/tmp/confab-stderr-XXXXXX";
    c->fd = mkstemp(path);
    assert_true(c->fd >= 0);
    unlink(path);
    fflush(stderr);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_int_equal(dup2(c->fd, STDERR_FILENO), STDERR_FILENO);
}

/* stderr back where it was; what was written since begin into out (at most
 * cap - 1 bytes, NUL-terminated). Returns its length. */
static inline size_t stderr_catch_end(struct stderr_catch *c, char *out, size_t cap)
{
    fflush(stderr);
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    ssize_t n = pread(c->fd, out, cap - 1, 0);
    close(c->fd);
    out[n > 0 ? n : 0] = '\0';
    return n > 0 ? (size_t)n : 0;
}

#endif
