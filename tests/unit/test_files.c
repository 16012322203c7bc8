/* gateway/files: which request paths map to which files under the root
 * (and nothing outside it), and the MIME type each is served with. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"

static char root[64], outside[PATH_MAX];

static void touch(const char *name)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", root, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/confab-files-XXXXXX");
    if (!mkdtemp(root))
        return -1;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/sub", root);
    snprintf(outside, sizeof outside, "%s-outside", root);
    return mkdir(p, 0755) || mkdir(outside, 0755) ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX * 2 + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", root, outside);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *mime_of(struct files *f, const char *url)
{
    char path[PATH_MAX];
    const char *mime = NULL;
    struct stat st;
    if (files_resolve(f, url, path, sizeof path, &mime, &st) < 0)
        return NULL;
    return mime;
}

static void test_types(void **state)
{
    (void)state;
    static const struct {
        const char *name, *mime;
    } cases[] = {
        {"index.html", "text/html; charset=utf-8"},
        {"app.js", "text/javascript; charset=utf-8"},
        {"a.CSS", "text/css; charset=utf-8"},
        {"photo.jpeg", "image/jpeg"},
        {"photo.jpg", "image/jpeg"},
        {"anim.gif", "image/gif"},
        {"pic.webp", "image/webp"},
        {"pic.avif", "image/avif"},
        {"font.woff", "font/woff"},
        {"font.woff2", "font/woff2"},
        {"mod.wasm", "application/wasm"},
        {"data.bin", "application/octet-stream"},
        {"noext", "application/octet-stream"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        touch(cases[i].name);
    struct files *f = files_new(root);
    assert_non_null(f);
    char url[128];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(url, sizeof url, "/%s", cases[i].name);
        const char *got = mime_of(f, url);
        if (!got || strcmp(got, cases[i].mime))
            fail_msg("%s: served as %s, want %s", url, got ? got : "(not found)", cases[i].mime);
    }
    assert_string_equal(mime_of(f, "/"), "text/html; charset=utf-8"); /* index.html */
    files_free(f);
}

static void test_nothing_outside_the_root(void **state)
{
    (void)state;
    touch(".hidden");
    touch("sub/in.txt");
    char p[PATH_MAX * 2];
    snprintf(p, sizeof p, "%s/secret.txt", outside);
    FILE *o = fopen(p, "w");
    assert_non_null(o);
    fclose(o);
    char link[PATH_MAX];
    snprintf(link, sizeof link, "%s/escape.txt", root);
    assert_int_equal(symlink(p, link), 0);
    struct files *f = files_new(root);
    assert_non_null(f);
    assert_non_null(mime_of(f, "/sub/in.txt"));
    static const char *const refused[] = {
        "/.hidden",    "/sub/../sub/in.txt", "/../x",     "/sub/",    "/sub",
        "/escape.txt", "/sub\\in.txt",       "/%2e%2e/x", "relative", "/missing.txt",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (mime_of(f, refused[i]))
            fail_msg("%s was served", refused[i]);
    files_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_nothing_outside_the_root),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
