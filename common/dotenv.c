/* dotenv: see dotenv.h. */
#include "dotenv.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* The file follows systemd's EnvironmentFile= (systemd.exec(5), as of
 * systemd 252), which is what the daemons see under the units: `confab-*
 * --check-config` reading the same file must show the same values. So:
 * unquoted, a backslash keeps the next character and a "#" is part of the
 * value (no inline comments); in double quotes only \" \\ \` \$ are escapes
 * and any other backslash stays, with what follows it; in single quotes
 * nothing is. What systemd reads in a way this reader does not follow (a
 * value continued on the next line, text after a closing quote, which
 * systemd appends to the value) is refused, never read differently; so is
 * an "export KEY=..." line, which systemd ignores whole.
 *
 * Parses the value part of a line in place: NULL and *out set, or why the
 * line is refused. */
static const char *dotenv_value(char *v, char **out)
{
    v = trim(v);
    char *w = v, *r = v;
    if (*v == '"' || *v == '\'') {
        char q = *r++;
        while (*r && *r != q) {
            if (q == '"' && *r == '\\' && r[1] && strchr("\"\\`$", r[1]))
                r++;
            else if (q == '"' && *r == '\\' && !r[1])
                break; /* a continuation line */
            *w++ = *r++;
        }
        if (*r != q)
            return "value (unterminated quote, or one spanning lines?)";
        if (*trim(r + 1))
            return "value: text after the closing quote (systemd would add it to the value; "
                   "put comments on their own line)";
        *w = '\0';
        *out = v;
        return NULL;
    }
    for (; *r; r++) {
        if (*r == '\\') {
            if (!r[1])
                return "value: a trailing backslash continues it on the next line, which is "
                       "not supported";
            r++;
        }
        *w++ = *r;
    }
    *w = '\0';
    *out = v;
    return NULL;
}

/* Keys this load set, so that a later line can replace them while variables
 * set before (the real environment) still win. */
struct keys {
    char **v;
    size_t n;
};

static bool keys_has(const struct keys *k, const char *key)
{
    for (size_t i = 0; i < k->n; i++)
        if (strcmp(k->v[i], key) == 0)
            return true;
    return false;
}

static int keys_add(struct keys *k, const char *key)
{
    char **v = realloc(k->v, (k->n + 1) * sizeof *v);
    if (!v)
        return -1;
    k->v = v;
    if (!(k->v[k->n] = strdup(key)))
        return -1;
    k->n++;
    return 0;
}

static void keys_free(struct keys *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->v[i]);
    free(k->v);
}

int cf_dotenv_load(const char *path, bool required)
{
    FILE *f = fopen(path, "r");
    struct stat st;
    if (!f) {
        int e = errno;
        /* ./.env: an error only for a file known to be there (a working
         * directory we may not search, as after sudo -u, is no file) */
        if (!required && (e == ENOENT || stat(path, &st) < 0))
            return 0;
        fprintf(stderr, "config: cannot read %s: %s%s\n", path, strerror(e),
                e == EACCES ? " (run as root or as the daemons' user, e.g. sudo -u confab "
                              "env CONFAB_ENV_FILE=... confab-gateway --check-config)"
                            : "");
        return -1;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    struct keys mine = {0};
    for (;;) {
        /* fgets gives no length: filled first, the last NUL in the buffer
         * is the end of what it read, and one before it a NUL in the file,
         * which strlen() would have cut the line short at */
        memset(line, 'x', sizeof line);
        if (!fgets(line, sizeof line, f))
            break;
        lineno++;
        size_t n = strlen(line), end = sizeof line - 1;
        while (end > n && line[end] != '\0')
            end--;
        if (end != n) {
            fprintf(stderr, "config: %s:%d: a NUL byte in the line (is the file text?)\n", path,
                    lineno);
            rc = -1;
            break;
        }
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            fprintf(stderr, "config: %s:%d: line longer than %zu bytes\n", path, lineno,
                    sizeof line - 2);
            rc = -1;
            break;
        }
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        if (strncmp(s, "export", 6) == 0 && isspace((unsigned char)s[6])) {
            fprintf(stderr, "config: %s:%d: \"export\" before a variable: systemd's "
                    "EnvironmentFile= ignores such a line, so the daemons would not see it; "
                    "remove \"export\"\n", path, lineno);
            rc = -1;
            break;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            fprintf(stderr, "config: %s:%d: expected KEY=VALUE\n", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(s);
        bool key_ok = *key && (isalpha((unsigned char)*key) || *key == '_');
        for (char *k = key; *k && key_ok; k++)
            key_ok = isalnum((unsigned char)*k) || *k == '_';
        char *value = NULL, *raw = trim(eq + 1);
        bool quoted = *raw == '"' || *raw == '\'';
        const char *why = key_ok ? dotenv_value(raw, &value) : "variable name";
        if (why) {
            fprintf(stderr, "config: %s:%d: malformed %s\n", path, lineno, why);
            rc = -1;
            break;
        }
        if (!quoted && (strstr(value, " #") || strstr(value, "\t#")))
            fprintf(stderr,
                    "config: %s:%d: note: the \"#\" in %s's value is part of the value, "
                    "not a comment (as under systemd)\n",
                    path, lineno, key);
        /* The last line of the file wins, as under systemd; the real
         * environment wins over the file. */
        bool ours = keys_has(&mine, key);
        if (!ours && getenv(key))
            continue;
        if (setenv(key, value, 1) < 0 || (!ours && keys_add(&mine, key) < 0)) {
            rc = -1;
            break;
        }
    }
    if (!rc && ferror(f)) { /* a directory, an I/O error */
        fprintf(stderr, "config: cannot read %s: %s\n", path, strerror(errno));
        rc = -1;
    }
    keys_free(&mine);
    fclose(f);
    return rc;
}
