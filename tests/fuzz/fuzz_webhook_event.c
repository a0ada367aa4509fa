/* libFuzzer: webhook body -> strict scan, Event validation, the envelope
 * writer, routing, key (what the receiver runs after verification).
 * Invariants checked on every accepted input: the topic is a data topic and
 * the key non-empty; the value parses back with ss_envelope_parse, with the
 * same header, topic and key (ss_envelope_route on what the consumer reads);
 * its "object" is the Event's "result" byte for byte; and json-c, as the
 * consumers use it (strict, SS_ENVELOPE_MAX_DEPTH), reads its object and
 * event: what the receiver acknowledges is never refused downstream. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <envelope/json_scan.h>
#include <webhook/event.h>

#include "ss_fuzz_consumer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ss_envelope_msg_t ev;
    char err[256];
    const char *body = (const char *)data;
    if (ss_webhook_event_parse(&ev, body, size, "req_fuzz", err, sizeof(err)) != 0) {
        if (err[0] == '\0' || ev.value != NULL)
            abort(); /* every refusal says why, and leaves nothing behind */
        return 0;
    }
    if (ev.topic < SS_TOPIC_SHIPMENTS || ev.topic > SS_TOPIC_EVENTS)
        abort();
    if (ev.keylen == 0 || ev.keylen != strlen(ev.key) || ev.value == NULL || ev.value_len == 0)
        abort();

    ss_envelope_t back;
    if (ss_envelope_parse(&back, ev.value, ev.value_len, err, sizeof(err)) != SS_ENVELOPE_OK)
        abort(); /* we produced something our own consumers would reject */
    if (strcmp(back.event_id, ev.env.event_id) != 0 || strcmp(back.type, ev.env.type) != 0 ||
        strcmp(back.object_type, ev.env.object_type) != 0 ||
        strcmp(back.object_id, ev.env.object_id) != 0 || back.source != SS_SOURCE_WEBHOOK ||
        back.updated_at_usec != ev.env.updated_at_usec ||
        strcmp(back.request_id, "req_fuzz") != 0 || back.event.p == NULL)
        abort();
    ss_topic_t t;
    char key[SS_ENVELOPE_KEY_MAX];
    int n = ss_envelope_route(back.object_type, back.object_id, back.object, &t, key, sizeof(key));
    if (t != ev.topic || n != (int)ev.keylen || strcmp(key, ev.key) != 0)
        abort();

    /* "object" is the last "result" of the body, verbatim */
    static const char *const names[] = {"result", NULL};
    ss_json_span_t result;
    ss_json_pick(ss_json_root(body, size), names, &result);
    if (result.p == NULL || result.len != back.object.len ||
        memcmp(result.p, back.object.p, result.len) != 0)
        abort();
    ss_fuzz_consumer_reads(back.object);
    ss_fuzz_consumer_reads(back.event);
    ss_envelope_msg_clear(&ev);
    return 0;
}
