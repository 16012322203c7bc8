/* v1c: see v1c.h. */
#include "v1c.h"

#include <msgpack.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "httpc.h"

struct v1c {
    struct wsc *ws;
    enum v1_enc enc;
    bool ended; /* a close frame or EOF was seen: nothing more will arrive */
    int bad;    /* frames that became V1_BAD_FRAME events */
    json_t **kept;
    size_t nkept, capkept;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *v1_subprotocol(enum v1_enc enc)
{
    return enc == V1_MSGPACK ? "confab.msgpack.v1" : "confab.v1";
}

struct v1c *v1_open_token(int port, const char *token, enum v1_enc enc, const char *headers,
                          int *http_status)
{
    char path[4200], hdrs[4096];
    snprintf(path, sizeof path, "/ws?token=%s", token);
    snprintf(hdrs, sizeof hdrs, "Sec-WebSocket-Protocol: %s\r\n%s", v1_subprotocol(enc),
             headers ? headers : "");
    struct wsc *ws = wsc_connect(port, path, hdrs, 0, http_status);
    if (!ws)
        return NULL;
    if (strcmp(wsc_protocol(ws), v1_subprotocol(enc)) != 0) {
        printf("v1c: offered %s, the server selected \"%s\"\n", v1_subprotocol(enc),
               wsc_protocol(ws));
        wsc_abort(ws);
        return NULL;
    }
    struct v1c *c = calloc(1, sizeof *c);
    if (!c) {
        wsc_abort(ws);
        return NULL;
    }
    c->ws = ws;
    c->enc = enc;
    return c;
}

struct v1c *v1_open(int port, const char *user, enum v1_enc enc)
{
    char *token = h_login(port, user);
    if (!token) {
        printf("v1c: login of %s on port %d failed\n", user, port);
        return NULL;
    }
    int status = 0;
    struct v1c *c = v1_open_token(port, token, enc, NULL, &status);
    free(token);
    if (!c)
        printf("v1c: upgrade for %s answered %d\n", user, status);
    return c;
}

struct wsc *v1_wsc(struct v1c *c)
{
    return c->ws;
}

enum v1_enc v1_encoding(const struct v1c *c)
{
    return c->enc;
}

/* ---- MessagePack <-> JSON --------------------------------------------- */

static json_t *from_object(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX)
            return NULL;
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return json_stringn(o->via.str.ptr, o->via.str.size); /* NULL unless UTF-8 */
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            json_t *v = from_object(&o->via.array.ptr[i]);
            if (!v || json_array_append_new(a, v) < 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size >= 256)
                goto bad_map;
            char key[256];
            memcpy(key, kv->key.via.str.ptr, kv->key.via.str.size);
            key[kv->key.via.str.size] = '\0';
            if (strlen(key) != kv->key.via.str.size || json_object_get(m, key))
                goto bad_map; /* embedded NUL or duplicate key */
            json_t *v = from_object(&kv->val);
            if (!v || json_object_set_new(m, key, v) < 0)
                goto bad_map;
        }
        return m;
    bad_map:
        json_decref(m);
        return NULL;
    }
    default:
        return NULL; /* bin, ext */
    }
}

json_t *v1_from_msgpack(const void *data, size_t len)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    json_t *j = NULL;
    if (msgpack_unpack_next(&u, data, len, &off) == MSGPACK_UNPACK_SUCCESS && off == len)
        j = from_object(&u.data);
    msgpack_unpacked_destroy(&u);
    return j;
}

static int pack(msgpack_packer *pk, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        if (msgpack_pack_map(pk, json_object_size(v)) < 0)
            return -1;
        json_object_foreach((json_t *)v, k, x)
        {
            size_t n = strlen(k);
            if (msgpack_pack_str(pk, n) < 0 || msgpack_pack_str_body(pk, k, n) < 0 ||
                pack(pk, x) < 0)
                return -1;
        }
        return 0;
    }
    case JSON_ARRAY: {
        if (msgpack_pack_array(pk, json_array_size(v)) < 0)
            return -1;
        for (size_t i = 0; i < json_array_size(v); i++)
            if (pack(pk, json_array_get(v, i)) < 0)
                return -1;
        return 0;
    }
    case JSON_STRING: {
        size_t n = json_string_length(v);
        return msgpack_pack_str(pk, n) < 0 || msgpack_pack_str_body(pk, json_string_value(v), n) < 0
                   ? -1
                   : 0;
    }
    case JSON_INTEGER: {
        json_int_t i = json_integer_value(v);
        return i >= 0 ? msgpack_pack_uint64(pk, (uint64_t)i) : msgpack_pack_int64(pk, i);
    }
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(v));
    case JSON_TRUE:
        return msgpack_pack_true(pk);
    case JSON_FALSE:
        return msgpack_pack_false(pk);
    case JSON_NULL:
        return msgpack_pack_nil(pk);
    }
    return -1;
}

int v1_to_msgpack(const json_t *value, char **out, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (pack(&pk, value) < 0) {
        msgpack_sbuffer_destroy(&sb);
        return -1;
    }
    *len = sb.size;
    *out = msgpack_sbuffer_release(&sb);
    return 0;
}

/* ---- sending ------------------------------------------------------------ */

int v1_send_value(struct v1c *c, json_t *value)
{
    int rc = -1;
    if (c->enc == V1_JSON) {
        char *s = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
        if (s)
            rc = wsc_send_text(c->ws, s);
        free(s);
    } else {
        char *b;
        size_t n;
        if (v1_to_msgpack(value, &b, &n) == 0) {
            rc = wsc_send_frame(c->ws, WS_BINARY, true, b, n);
            free(b);
        }
    }
    json_decref(value);
    return rc;
}

int v1_send(struct v1c *c, const char *type, json_t *payload)
{
    json_t *ev = json_object();
    json_object_set_new(ev, "type", json_string(type));
    json_object_set_new(ev, "payload", payload ? payload : json_object());
    return v1_send_value(c, ev);
}

/* ---- receiving ---------------------------------------------------------- */

static json_t *bad_frame(int op, const char *data, size_t len, const char *why)
{
    printf("v1c: %s (opcode %d, %zu bytes)\n", why, op, len);
    char raw[200];
    size_t n = len < sizeof raw - 1 ? len : sizeof raw - 1;
    for (size_t i = 0; i < n; i++)
        raw[i] = data[i] >= 0x20 && data[i] < 0x7f ? data[i] : '?';
    raw[n] = '\0';
    return json_pack("{s:s, s:{s:i, s:s, s:s}}", "type", V1_BAD_FRAME, "payload", "opcode", op,
                     "why", why, "raw", raw);
}

static bool is_bad(json_t *ev)
{
    return !strcmp(json_string_value(json_object_get(ev, "type")), V1_BAD_FRAME);
}

/* The next event from the socket (never from the kept ones). */
static json_t *read_event(struct v1c *c, int timeout_ms)
{
    if (c->ended)
        return NULL;
    char *m;
    size_t len;
    int op = wsc_recv(c->ws, timeout_ms, &m, &len);
    if (op == WSC_TIMEOUT)
        return NULL;
    if (op < 0) {
        c->ended = true;
        return NULL;
    }
    json_t *j = NULL;
    if (c->enc == V1_JSON && op != WS_TEXT)
        j = bad_frame(op, m, len, "a non-text frame on confab.v1");
    else if (c->enc == V1_MSGPACK && op != WS_BINARY)
        j = bad_frame(op, m, len, "a non-binary frame on confab.msgpack.v1");
    else {
        j = c->enc == V1_JSON ? json_loadb(m, len, 0, NULL) : v1_from_msgpack(m, len);
        if (!j)
            j = bad_frame(op, m, len, "a frame that does not decode");
        else if (!json_is_object(j) || !json_is_string(json_object_get(j, "type")) ||
                 !json_is_object(json_object_get(j, "payload"))) {
            json_decref(j);
            j = bad_frame(op, m, len, "an event without a string type and an object payload");
        }
    }
    free(m);
    if (j && is_bad(j))
        c->bad++;
    return j;
}

bool v1_ended(const struct v1c *c)
{
    return c->ended;
}

int v1_bad_frames(const struct v1c *c)
{
    return c->bad;
}

static void keep(struct v1c *c, json_t *ev)
{
    if (c->nkept == c->capkept) {
        size_t cap = c->capkept ? c->capkept * 2 : 16;
        json_t **k = realloc(c->kept, cap * sizeof *k);
        if (!k)
            abort();
        c->kept = k;
        c->capkept = cap;
    }
    c->kept[c->nkept++] = ev;
}

static json_t *unkeep(struct v1c *c, size_t i)
{
    json_t *ev = c->kept[i];
    memmove(c->kept + i, c->kept + i + 1, (c->nkept - i - 1) * sizeof *c->kept);
    c->nkept--;
    return ev;
}

json_t *v1_next(struct v1c *c, int timeout_ms)
{
    if (c->nkept)
        return unkeep(c, 0);
    return read_event(c, timeout_ms);
}

struct filter {
    const char *type;
    const char *kv[16];
    int n;
};

static void filter_init(struct filter *f, const char *type, va_list ap)
{
    f->type = type;
    f->n = 0;
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        if (f->n + 2 > 16)
            abort();
        f->kv[f->n++] = k;
        f->kv[f->n++] = v;
    }
}

static bool matches(const struct filter *f, json_t *ev)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!type || !strcmp(type, V1_BAD_FRAME))
        return false;
    if (f->type && strcmp(type, f->type) != 0)
        return false;
    json_t *p = json_object_get(ev, "payload");
    for (int i = 0; i < f->n; i += 2) {
        const char *v = json_string_value(json_object_get(p, f->kv[i]));
        if (!v || !f->kv[i + 1] || strcmp(v, f->kv[i + 1]) != 0)
            return false;
    }
    return true;
}

static json_t *take(struct v1c *c, const struct filter *f)
{
    for (size_t i = 0; i < c->nkept; i++)
        if (matches(f, c->kept[i]))
            return unkeep(c, i);
    return NULL;
}

json_t *v1_take(struct v1c *c, const char *type, ...)
{
    struct filter f;
    va_list ap;
    va_start(ap, type);
    filter_init(&f, type, ap);
    va_end(ap);
    return take(c, &f);
}

json_t *v1_wait(struct v1c *c, int timeout_ms, const char *type, ...)
{
    struct filter f;
    va_list ap;
    va_start(ap, type);
    filter_init(&f, type, ap);
    va_end(ap);
    json_t *ev = take(c, &f);
    int64_t deadline = now_ms() + timeout_ms;
    while (!ev) {
        int64_t left = deadline - now_ms();
        if (left < 0)
            break;
        json_t *x = read_event(c, (int)left);
        if (!x)
            break;
        if (matches(&f, x))
            ev = x;
        else
            keep(c, x);
    }
    return ev;
}

int v1_count(struct v1c *c, int ms, const char *type, ...)
{
    struct filter f;
    va_list ap;
    va_start(ap, type);
    filter_init(&f, type, ap);
    va_end(ap);
    int64_t deadline = now_ms() + ms;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            break;
        json_t *x = read_event(c, (int)left);
        if (!x)
            break;
        keep(c, x);
    }
    /* What a closed connection did not get is no count ("0 more" passed on
     * one): -1 fails every check of a count */
    if (c->ended) {
        printf("v1c: the connection ended (close code %d) while events were counted\n",
               wsc_close_code(c->ws));
        return -1;
    }
    int n = 0;
    for (size_t i = 0; i < c->nkept; i++)
        n += matches(&f, c->kept[i]);
    return n;
}

bool v1_none(struct v1c *c, int ms, const char *type, ...)
{
    struct filter f;
    va_list ap;
    va_start(ap, type);
    filter_init(&f, type, ap);
    va_end(ap);
    for (size_t i = 0; i < c->nkept; i++)
        if (is_bad(c->kept[i]) || matches(&f, c->kept[i]))
            return false;
    /* A closed connection gets nothing either: that must not pass for
     * "nothing was sent" */
    int64_t deadline = now_ms() + ms;
    for (;;) {
        if (c->ended) {
            printf("v1c: the connection ended (close code %d) where no event was to come\n",
                   wsc_close_code(c->ws));
            return false;
        }
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return true;
        json_t *x = read_event(c, (int)left);
        if (!x)
            continue; /* a timeout, or the end, told above */
        bool hit = is_bad(x) || matches(&f, x);
        keep(c, x);
        if (hit)
            return false;
    }
}

void v1_forget(struct v1c *c)
{
    for (size_t i = 0; i < c->nkept; i++)
        json_decref(c->kept[i]);
    c->nkept = 0;
}

void v1_dump(const struct v1c *c, const char *label)
{
    printf("v1c: %zu kept event(s) of %s%s\n", c->nkept, label, c->ended ? " (ended)" : "");
    for (size_t i = 0; i < c->nkept; i++) {
        char *s = json_dumps(c->kept[i], JSON_COMPACT);
        printf("  %.400s\n", s ? s : "?");
        free(s);
    }
    fflush(stdout);
}

static void v1_free(struct v1c *c)
{
    v1_forget(c);
    free(c->kept);
    free(c);
}

void v1_close(struct v1c *c)
{
    if (!c)
        return;
    wsc_close(c->ws);
    v1_free(c);
}

void v1_abort(struct v1c *c)
{
    if (!c)
        return;
    wsc_abort(c->ws);
    v1_free(c);
}
