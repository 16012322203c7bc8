/* files: maps request paths to files under FRONTEND_DIR, and nothing else.
 *
 * Refused (as "not found", so nothing is revealed): "..", hidden names (any
 * segment starting with "."), backslashes, percent signs left after decoding,
 * and anything whose real path (after following symlinks) is not inside the
 * root. Only regular files are served. */
#ifndef GW_FILES_H
#define GW_FILES_H

#include <stddef.h>
#include <sys/stat.h>

struct files;

/* Returns NULL after logging when root is not a readable directory (errno
 * says why), or with errno ENOMEM. */
struct files *files_new(const char *root);
void files_free(struct files *f); /* NULL is a no-op */

/* 0 and the file's absolute path, MIME type and stat (for its validators,
 * fresh.h), or -ENOENT. */
int files_resolve(const struct files *f, const char *url, char *path, size_t cap, const char **mime,
                  struct stat *st);

const char *files_root(const struct files *f);

#endif
