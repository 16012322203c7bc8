/* prom: see prom.h. Small fixed bounds: a test's scrape has a few hundred
 * lines at most. */
#include "prom.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 16
#define MAX_FAMILIES 256
#define MAX_SERIES 1024
#define MAX_HIST 128

struct label {
    char name[64];
    char value[256];
};

struct sample {
    char name[128];
    struct label l[MAX_LABELS];
    int nl;
    double v;
};

static char g_err[768];

static bool name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

/* A metric name at *p into out; advances *p. */
static const char *parse_name(const char **p, char *out, size_t cap)
{
    const char *s = *p;
    size_t n = 0;
    if (!name_start(*s))
        return "a metric name must start with [a-zA-Z_:]";
    while (name_char(s[n])) {
        if (n + 1 >= cap)
            return "metric name too long";
        out[n] = s[n];
        n++;
    }
    out[n] = '\0';
    *p = s + n;
    return NULL;
}

/* `{name="value",...}` at *p (the brace included); advances *p. */
static const char *parse_labels(const char **p, struct sample *s)
{
    const char *c = *p;
    if (*c != '{')
        return NULL;
    c++;
    while (*c != '}') {
        if (s->nl == MAX_LABELS)
            return "too many labels";
        struct label *l = &s->l[s->nl];
        size_t n = 0;
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '_'))
            return "a label name must start with [a-zA-Z_]";
        while ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '_' ||
               (*c >= '0' && *c <= '9')) {
            if (n + 1 >= sizeof l->name)
                return "label name too long";
            l->name[n++] = *c++;
        }
        l->name[n] = '\0';
        if (!strncmp(l->name, "__", 2))
            return "label names starting with __ are reserved";
        if (c[0] != '=' || c[1] != '"')
            return "expected =\" after a label name";
        c += 2;
        n = 0;
        for (;;) {
            char ch = *c++;
            if (ch == '\0' || ch == '\n')
                return "unterminated label value";
            if (ch == '"')
                break;
            if (ch == '\\') {
                ch = *c++;
                if (ch == 'n')
                    ch = '\n';
                else if (ch != '\\' && ch != '"')
                    return "bad escape in a label value (only \\\\, \\\" and \\n)";
            }
            if (n + 1 >= sizeof l->value)
                return "label value too long";
            l->value[n++] = ch;
        }
        l->value[n] = '\0';
        for (int i = 0; i < s->nl; i++)
            if (!strcmp(s->l[i].name, l->name))
                return "a label appears twice in one sample";
        s->nl++;
        if (*c == ',')
            c++;
        else if (*c != '}')
            return "expected , or } after a label value";
    }
    *p = c + 1;
    return NULL;
}

static const char *parse_value(const char *c, double *v)
{
    char buf[64];
    size_t n = 0;
    while (c[n] && c[n] != ' ' && c[n] != '\t' && c[n] != '\n' && n < sizeof buf - 1) {
        buf[n] = c[n];
        n++;
    }
    buf[n] = '\0';
    if (!strcmp(buf, "+Inf") || !strcmp(buf, "Inf"))
        *v = INFINITY;
    else if (!strcmp(buf, "-Inf"))
        *v = -INFINITY;
    else if (!strcmp(buf, "NaN"))
        *v = NAN;
    else {
        char *end;
        if (!n || buf[0] == 'i' || buf[0] == 'n' || buf[0] == 'I' || buf[0] == 'N')
            return "the value is not a number";
        *v = strtod(buf, &end);
        if (*end)
            return "the value is not a number";
    }
    c += n;
    if (*c == ' ' || *c == '\t') { /* an optional timestamp in ms */
        while (*c == ' ' || *c == '\t')
            c++;
        if (*c == '-')
            c++;
        if (!(*c >= '0' && *c <= '9'))
            return "junk after the value";
        while (*c >= '0' && *c <= '9')
            c++;
    }
    return *c && *c != '\n' ? "junk after the value" : NULL;
}

/* One sample line (without its newline). */
static const char *parse_sample(const char *line, struct sample *s)
{
    memset(s, 0, sizeof *s);
    const char *c = line, *e;
    if ((e = parse_name(&c, s->name, sizeof s->name)) || (e = parse_labels(&c, s)))
        return e;
    if (*c != ' ' && *c != '\t')
        return "expected whitespace before the value";
    while (*c == ' ' || *c == '\t')
        c++;
    return parse_value(c, &s->v);
}

static const char *label(const struct sample *s, const char *name)
{
    for (int i = 0; i < s->nl; i++)
        if (!strcmp(s->l[i].name, name))
            return s->l[i].value;
    return NULL;
}

static int cmp_label(const void *a, const void *b)
{
    return strcmp(((const struct label *)a)->name, ((const struct label *)b)->name);
}

/* name{labels sorted by name}, without `skip` (e.g. "le"), into out. */
static void series_key(const struct sample *s, const char *name, const char *skip, char *out,
                       size_t cap)
{
    struct label l[MAX_LABELS];
    memcpy(l, s->l, sizeof l[0] * (size_t)s->nl);
    qsort(l, (size_t)s->nl, sizeof l[0], cmp_label);
    size_t n = (size_t)snprintf(out, cap, "%s{", name);
    for (int i = 0; i < s->nl && n < cap; i++)
        if (!skip || strcmp(l[i].name, skip))
            n += (size_t)snprintf(out + n, cap - n, "%s=\"%s\",", l[i].name, l[i].value);
    if (n < cap)
        snprintf(out + n, cap - n, "}");
}

struct family {
    char name[128];
    char type[16];
    bool help, typed, sampled, started;
};

struct hist {
    char key[600];
    double last_le, last_count, inf, count;
    bool has_inf, has_sum, has_count;
    int buckets;
};

struct checker {
    struct family fam[MAX_FAMILIES];
    int nfam, current;
    char (*series)[600];
    int nseries;
    struct hist *hist;
    int nhist;
};

static struct family *family(struct checker *k, const char *name, bool create)
{
    for (int i = 0; i < k->nfam; i++)
        if (!strcmp(k->fam[i].name, name))
            return &k->fam[i];
    if (!create || k->nfam == MAX_FAMILIES)
        return NULL;
    struct family *f = &k->fam[k->nfam++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    return f;
}

/* The family a sample belongs to: a histogram's _bucket/_sum/_count and a
 * summary's _sum/_count belong to the base name's family. */
static struct family *family_of_sample(struct checker *k, const char *name, const char **suffix)
{
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    *suffix = "";
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(name), m = strlen(sfx[i]);
        if (n <= m || strcmp(name + n - m, sfx[i]))
            continue;
        char base[128];
        snprintf(base, sizeof base, "%.*s", (int)(n - m), name);
        struct family *f = family(k, base, false);
        if (f && (!strcmp(f->type, "histogram") || (i > 0 && !strcmp(f->type, "summary")))) {
            *suffix = sfx[i];
            return f;
        }
    }
    return family(k, name, true);
}

/* Lines of one family must form one group. */
static const char *enter(struct checker *k, struct family *f)
{
    int idx = (int)(f - k->fam);
    if (idx == k->current)
        return NULL;
    if (f->started)
        return "the lines of this metric family are not one group (interleaved with another "
               "family)";
    f->started = true;
    k->current = idx;
    return NULL;
}

static const char *meta_line(struct checker *k, const char *line)
{
    bool help = !strncmp(line, "# HELP ", 7), type = !strncmp(line, "# TYPE ", 7);
    if (!help && !type)
        return NULL; /* a plain comment */
    const char *c = line + 7, *e;
    char name[128];
    if ((e = parse_name(&c, name, sizeof name)))
        return e;
    struct family *f = family(k, name, true);
    if (!f)
        return "too many families";
    if ((e = enter(k, f)))
        return e;
    if (f->sampled)
        return "HELP/TYPE after the family's samples";
    if (help) {
        if (f->help)
            return "a second HELP line for one family";
        f->help = true;
        return *c == ' ' || *c == '\0' ? NULL : "junk after the name in HELP";
    }
    if (f->typed)
        return "a second TYPE line for one family";
    f->typed = true;
    if (*c != ' ')
        return "TYPE without a type";
    snprintf(f->type, sizeof f->type, "%s", c + 1);
    static const char *const types[] = {"counter", "gauge",   "histogram",
                                        "summary", "untyped", NULL};
    for (int i = 0; types[i]; i++)
        if (!strcmp(f->type, types[i])) {
            if (i == 0 && (strlen(name) < 6 || strcmp(name + strlen(name) - 6, "_total")))
                return "a counter's name should end in _total";
            return NULL;
        }
    return "unknown TYPE";
}

static const char *hist_sample(struct checker *k, const struct family *f, const char *suffix,
                               const struct sample *s)
{
    char key[600];
    series_key(s, f->name, "le", key, sizeof key);
    struct hist *h = NULL;
    for (int i = 0; i < k->nhist; i++)
        if (!strcmp(k->hist[i].key, key))
            h = &k->hist[i];
    if (!h) {
        if (k->nhist == MAX_HIST)
            return "too many histogram series";
        h = &k->hist[k->nhist++];
        memset(h, 0, sizeof *h);
        snprintf(h->key, sizeof h->key, "%s", key);
        h->last_le = -INFINITY;
    }
    if (!strcmp(suffix, "_bucket")) {
        const char *le = label(s, "le");
        double v;
        if (!le || parse_value(le, &v))
            return "a histogram bucket without a numeric le label";
        if (h->has_inf || v <= h->last_le)
            return "histogram buckets are not in ascending le order";
        if (s->v < h->last_count)
            return "histogram bucket counts are not cumulative (a count went down)";
        h->last_le = v;
        h->last_count = s->v;
        h->buckets++;
        if (isinf(v)) {
            h->has_inf = true;
            h->inf = s->v;
        }
    } else if (!strcmp(suffix, "_sum")) {
        h->has_sum = true;
    } else {
        h->has_count = true;
        h->count = s->v;
    }
    return NULL;
}

static const char *sample_line(struct checker *k, const char *line)
{
    struct sample s;
    const char *e = parse_sample(line, &s), *suffix;
    if (e)
        return e;
    struct family *f = family_of_sample(k, s.name, &suffix);
    if (!f)
        return "too many families";
    if ((e = enter(k, f)))
        return e;
    f->sampled = true;
    if (!strcmp(f->type, "histogram") && !*suffix)
        return "a histogram sample without _bucket, _sum or _count";
    char key[600];
    series_key(&s, s.name, NULL, key, sizeof key);
    for (int i = 0; i < k->nseries; i++)
        if (!strcmp(k->series[i], key))
            return "the same series appears twice";
    if (k->nseries == MAX_SERIES)
        return "too many series";
    snprintf(k->series[k->nseries++], sizeof k->series[0], "%s", key);
    if (!strcmp(f->type, "histogram"))
        return hist_sample(k, f, suffix, &s);
    return NULL;
}

static const char *check(struct checker *k, const char *text, int *lineno, const char **bad)
{
    const char *p = text, *e;
    char line[4096];
    *lineno = 0;
    if (!*text || text[strlen(text) - 1] != '\n') {
        *bad = "";
        return "the text does not end with a newline";
    }
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = (size_t)(nl - p);
        ++*lineno;
        snprintf(line, sizeof line, "%.*s", (int)n, p);
        *bad = p;
        p = nl + 1;
        if (n == 0)
            continue; /* blank lines are allowed */
        e = line[0] == '#' ? meta_line(k, line) : sample_line(k, line);
        if (e)
            return e;
    }
    for (int i = 0; i < k->nhist; i++) {
        struct hist *h = &k->hist[i];
        *bad = h->key;
        *lineno = 0;
        if (!h->has_inf)
            return "a histogram without a +Inf bucket";
        if (!h->has_count || h->inf != h->count)
            return "a histogram's +Inf bucket differs from its _count";
        if (!h->has_sum)
            return "a histogram without _sum";
    }
    return NULL;
}

const char *prom_check(const char *text)
{
    struct checker *k = calloc(1, sizeof *k);
    k->series = calloc(MAX_SERIES, sizeof k->series[0]);
    k->hist = calloc(MAX_HIST, sizeof k->hist[0]);
    k->current = -1;
    int lineno;
    const char *bad = "", *e = check(k, text, &lineno, &bad);
    if (e) {
        size_t n = strcspn(bad, "\n");
        snprintf(g_err, sizeof g_err, "%s (line %d: %.*s)", e, lineno, (int)(n > 300 ? 300 : n),
                 bad);
    }
    free(k->series);
    free(k->hist);
    free(k);
    return e ? g_err : NULL;
}

double prom_sum(const char *text, const char *name, const char *match, int *n)
{
    struct sample want = {0};
    if (match && *match) {
        char buf[1024];
        snprintf(buf, sizeof buf, "{%s}", match);
        const char *c = buf;
        if (parse_labels(&c, &want)) {
            fprintf(stderr, "prom_sum: bad match %s\n", match);
            abort();
        }
    }
    double sum = 0;
    int count = 0;
    const char *p = text;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char line[4096];
        snprintf(line, sizeof line, "%.*s", (int)len, p);
        p = nl ? nl + 1 : NULL;
        struct sample s;
        if (line[0] == '#' || parse_sample(line, &s) || strcmp(s.name, name))
            continue;
        bool ok = true;
        for (int i = 0; i < want.nl && ok; i++) {
            const char *v = label(&s, want.l[i].name);
            ok = v && !strcmp(v, want.l[i].value);
        }
        if (ok) {
            sum += s.v;
            count++;
        }
    }
    if (n)
        *n = count;
    return sum;
}
