/* Shared includes and small assertions for the integration tests. */
#ifndef TEST_INTEGRATION_COMMON_H
#define TEST_INTEGRATION_COMMON_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// clang-format off
#include <cmocka.h>
// clang-format on
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "httpc.h"
#include "wsc.h"

/* The string field `key` of the payload of a legacy event, or NULL. */
static inline const char *payload_str(json_t *ev, const char *key)
{
    return json_string_value(json_object_get(json_object_get(ev, "payload"), key));
}

/* Receives the next new_message event and checks its text and sender. */
static inline void expect_message(struct wsc *c, const char *text, const char *from)
{
    json_t *ev = wsc_recv_json(c, 5000);
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "type")), "new_message");
    assert_non_null(payload_str(ev, "message"));
    assert_string_equal(payload_str(ev, "message"), text);
    if (from)
        assert_string_equal(payload_str(ev, "from"), from);
    json_decref(ev);
}

#endif
