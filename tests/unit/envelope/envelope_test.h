/* Helpers of the envelope unit tests.  Include after <cmocka.h>. */
#ifndef SS_TEST_ENVELOPE_H
#define SS_TEST_ENVELOPE_H

#include <json-c/json.h>

#include <envelope/envelope.h>

/* A span read the way the consumers read it (json-c, strict,
 * SS_ENVELOPE_MAX_DEPTH); fails the test unless it parses.  Caller puts. */
static inline json_object *ss_test_json_span(ss_json_span_t s) {
    json_tokener *tok = json_tokener_new_ex(SS_ENVELOPE_MAX_DEPTH);
    assert_non_null(tok);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, s.p, (int)s.len);
    assert_int_equal(json_tokener_get_error(tok), json_tokener_success);
    json_tokener_free(tok);
    assert_non_null(o);
    return o;
}

#endif
