/* Fuzz-driver helper: what the consumers do with an envelope's object and
 * event spans (libs/sync parses them with json-c, strict, at
 * SS_ENVELOPE_MAX_DEPTH).  Aborts unless json-c reads s as exactly one JSON
 * object: what the producers write and the parser accepts must never be
 * refused downstream. */
#ifndef SS_FUZZ_CONSUMER_H
#define SS_FUZZ_CONSUMER_H

#include <stdlib.h>

#include <json-c/json.h>

#include <envelope/envelope.h>

static inline void ss_fuzz_consumer_reads(ss_json_span_t s) {
    json_tokener *tok = json_tokener_new_ex(SS_ENVELOPE_MAX_DEPTH);
    if (!tok)
        abort();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, s.p, (int)s.len);
    if (json_tokener_get_error(tok) != json_tokener_success || !o ||
        !json_object_is_type(o, json_type_object) || json_tokener_get_parse_end(tok) != s.len)
        abort();
    json_object_put(o);
    json_tokener_free(tok);
}

#endif
