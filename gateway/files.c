/* files: see files.h. */
#include "files.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"

struct files {
    char root[PATH_MAX];
    size_t rootlen;
};

struct files *files_new(const char *root)
{
    struct files *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    struct stat st;
    errno = 0;
    if (!realpath(root, f->root) || stat(f->root, &st) < 0 || !S_ISDIR(st.st_mode)) {
        int e = errno ? errno : ENOTDIR;
        CF_ERROR("files", "FRONTEND_DIR=%s is not a readable directory: %s", root, strerror(e));
        free(f);
        errno = e;
        return NULL;
    }
    f->rootlen = strlen(f->root);
    return f;
}

void files_free(struct files *f)
{
    free(f);
}

const char *files_root(const struct files *f)
{
    return f->root;
}

static const char *mime_of(const char *path)
{
    static const struct {
        const char *ext, *mime;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".webmanifest", "application/manifest+json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".webp", "image/webp"},
        {".avif", "image/avif"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".map", "application/json"},
        {".woff2", "font/woff2"},
        {".woff", "font/woff"},
        /* browsers compile wasm streamed only when it is labelled so */
        {".wasm", "application/wasm"},
    };
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot, types[i].ext) == 0)
                return types[i].mime;
    return "application/octet-stream";
}

static int url_safe(const char *url)
{
    if (url[0] != '/' || strchr(url, '\\') || strchr(url, '%'))
        return 0;
    for (const char *p = url; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return 0;
        if (*p == '/' && p[1] == '.')
            return 0; /* "..", "./" and hidden files */
    }
    return 1;
}

int files_resolve(const struct files *f, const char *url, char *path, size_t cap, const char **mime,
                  struct stat *st)
{
    if (!url_safe(url) || strlen(url) > 1024)
        return -ENOENT;
    char joined[PATH_MAX], real[PATH_MAX];
    size_t ulen = strlen(url);
    int n = snprintf(joined, sizeof joined, "%s%s%s", f->root, url,
                     url[ulen - 1] == '/' ? "index.html" : "");
    if (n < 0 || (size_t)n >= sizeof joined)
        return -ENOENT;
    if (!realpath(joined, real))
        return -ENOENT;
    /* Symlinks may point anywhere: the target must still be under the root. */
    if (strncmp(real, f->root, f->rootlen) != 0 || real[f->rootlen] != '/')
        return -ENOENT;
    if (stat(real, st) < 0 || !S_ISREG(st->st_mode))
        return -ENOENT;
    if (strlen(real) + 1 > cap)
        return -ENOENT;
    memcpy(path, real, strlen(real) + 1);
    *mime = mime_of(real);
    return 0;
}
