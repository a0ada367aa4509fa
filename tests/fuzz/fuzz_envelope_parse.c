/* Fuzzes ss_envelope_parse (what the sync worker reads from Kafka) and, for
 * every accepted envelope: the routing rule on it; json-c as the sync
 * mapping uses it (strict, SS_ENVELOPE_MAX_DEPTH) reads its object and
 * event spans; and, when the writer takes its parts back (the object is an
 * EasyPost object, a webhook carries its Event), the written envelope
 * parses with the same header and the object's bytes unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope/envelope.h"

#include "ss_fuzz_consumer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ss_envelope_t e;
    char err[256], key[SS_ENVELOPE_KEY_MAX];
    ss_envelope_err_t rc = ss_envelope_parse(&e, (const char *)data, size, err, sizeof err);
    if (rc != SS_ENVELOPE_OK) {
        if (rc != SS_ENVELOPE_ERR_JSON && rc != SS_ENVELOPE_ERR_SCHEMA &&
            rc != SS_ENVELOPE_ERR_VERSION)
            abort();
        if (err[0] == '\0' || e.object.p != NULL)
            abort();
        return 0;
    }
    if (e.object.p < (const char *)data || e.object.p + e.object.len > (const char *)data + size)
        abort();
    ss_topic_t t;
    (void)ss_envelope_route(e.object_type, e.object_id, e.object, &t, key, sizeof key);
    if (t != ss_envelope_topic(&e) || t == SS_TOPIC_DLQ)
        abort();
    ss_fuzz_consumer_reads(e.object);
    if (e.event.p)
        ss_fuzz_consumer_reads(e.event);

    ss_envelope_in_t in = {
        .source = e.source,
        .type = e.type,
        .event_id = e.event_id,
        .request_id = e.request_id,
        .received_at_usec = e.received_at_usec,
        .object = e.object,
        .event = e.source == SS_SOURCE_WEBHOOK ? e.event : (ss_json_span_t){NULL, 0},
    };
    ss_envelope_msg_t m;
    if (ss_envelope_write(&m, &in, err, sizeof err) != SS_ENVELOPE_OK) {
        if (m.value != NULL)
            abort();
        return 0;
    }
    ss_envelope_t back;
    if (ss_envelope_parse(&back, m.value, m.value_len, err, sizeof err) != SS_ENVELOPE_OK)
        abort(); /* what we write we must read */
    if (strcmp(back.event_id, e.event_id) != 0 || strcmp(back.type, e.type) != 0 ||
        back.source != e.source || strcmp(back.request_id, e.request_id) != 0 ||
        back.received_at_usec != e.received_at_usec || back.object.len != e.object.len ||
        memcmp(back.object.p, e.object.p, e.object.len) != 0 ||
        (e.source == SS_SOURCE_WEBHOOK) != (back.event.p != NULL))
        abort();
    ss_envelope_msg_clear(&m);
    return 0;
}
