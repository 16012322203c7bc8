/* fuzz: what every harness shares. A harness includes this once, defines
 * LLVMFuzzerTestOneInput, and calls fuzz_init() from it (cheap after the first
 * call). Harnesses check properties with FUZZ_CHECK, which aborts (libFuzzer
 * then saves the input as a crash) instead of asserting, so they hold in
 * release builds too. */
#ifndef CONFAB_FUZZ_H
#define CONFAB_FUZZ_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jalloc.h"
#include "log.h"
#include "mpjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* For the harnesses of client frames: they are parsed in jalloc's arena, as
 * in the gateway; call before fuzz_init(). */
static inline void fuzz_use_jalloc(void)
{
    static bool done;
    if (!done) {
        jalloc_install();
        done = true;
    }
}

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Only errors are logged: the decoders log nothing on bad input, and a
 * harness run prints libFuzzer's own lines alone. */
static inline void fuzz_init(void)
{
    static bool done;
    if (!done) {
        cf_log_set_process("fuzz");
        cf_log_set_level(CF_LOG_ERROR);
        done = true;
    }
}

/* The object a JSON text frame holds, or NULL when b is not one. "\u0000"
 * is valid JSON (a browser's JSON.parse takes it), so it is allowed here. */
static inline json_t *fuzz_json_of(struct cf_buf *b)
{
    json_error_t err;
    return json_loadb((const char *)cf_buf_payload(b), b->len,
                      JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
}

/* The object a msgpack frame holds, or NULL. */
static inline json_t *fuzz_mp_of(struct cf_buf *b)
{
    const char *why;
    return mpjson_decode(cf_buf_payload(b), b->len, &why);
}

/* A server event frame as the client reads it: an object whose "type" is
 * `type`. Releases b. */
static inline void fuzz_check_event(struct cf_buf *b, bool msgpack, const char *type)
{
    if (!b)
        return;
    json_t *v = msgpack ? fuzz_mp_of(b) : fuzz_json_of(b);
    if (!v) {
        fprintf(stderr, "a %s %s event the client cannot read (%u bytes):\n", type,
                msgpack ? "msgpack" : "JSON", b->len);
        fwrite(cf_buf_payload(b), 1, b->len < 512 ? b->len : 512, stderr);
        fputc('\n', stderr);
    }
    FUZZ_CHECK(v != NULL);
    const char *t = json_string_value(json_object_get(v, "type"));
    FUZZ_CHECK(t && strcmp(t, type) == 0);
    FUZZ_CHECK(json_is_object(json_object_get(v, "payload")));
    json_decref(v);
    cf_buf_unref(b);
}

#endif
