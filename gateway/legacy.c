/* legacy: see legacy.h. JSON is read and written with jansson. */
#include "legacy.h"

#include <jansson.h>
#include <string.h>

#include "jalloc.h"
#include "jevent.h"
#include "validate.h"

#define FAIL(msg)                                                                                  \
    do {                                                                                           \
        *why = (msg);                                                                              \
        json_decref(root);                                                                         \
        return -1;                                                                                 \
    } while (0)

int legacy_parse(const char *in, size_t len, struct legacy_event *ev, const char **why)
{
    memset(ev, 0, sizeof *ev);
    json_error_t err;
    jalloc_begin(); /* the tree lives until legacy_event_free */
    json_t *root = json_loadb(in, len, JSON_REJECT_DUPLICATES, &err);
    jalloc_end();
    if (!root) {
        *why = "malformed JSON";
        return -1;
    }
    if (!json_is_object(root))
        FAIL("event is not a JSON object");
    json_t *type = json_object_get(root, "type"), *payload = json_object_get(root, "payload");
    if (!json_is_string(type))
        FAIL("missing or non-string \"type\"");
    if (!json_is_object(payload))
        FAIL("missing or non-object \"payload\"");
    const char *t = json_string_value(type);
    if (strcmp(t, "send_message") == 0) {
        json_t *msg = json_object_get(payload, "message");
        if (!json_is_string(msg))
            FAIL("send_message without a string \"message\"");
        const char *s = json_string_value(msg);
        size_t n = json_string_length(msg);
        if (!cf_text_has_content(s, n))
            FAIL("send_message with an empty message");
        if (!cf_text_controls_ok(s, n))
            FAIL("send_message with a control character (of those, only tab, line feed and "
                 "carriage return are allowed)");
        ev->type = LEGACY_SEND_MESSAGE;
        ev->text = (struct cf_str){s, (uint32_t)n};
    } else if (strcmp(t, "change_room") == 0) {
        json_t *name = json_object_get(payload, "name");
        if (!json_is_string(name))
            FAIL("change_room without a string \"name\"");
        const char *s = json_string_value(name);
        size_t n = json_string_length(name);
        if (!cf_room_valid(s, n))
            FAIL("change_room with an invalid room name");
        ev->type = LEGACY_CHANGE_ROOM;
        ev->room = (struct cf_str){s, (uint32_t)n};
    } else {
        FAIL("unknown event type");
    }
    ev->doc = root;
    return 0;
}

void legacy_event_free(struct legacy_event *ev)
{
    json_decref(ev->doc);
    ev->doc = NULL;
}

struct cf_buf *legacy_encode_message(const struct cf_wire_msg *m, size_t headroom)
{
    return jev_legacy_message(m, headroom);
}
