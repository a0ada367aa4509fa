/* libFuzzer: webhook body -> strict parse, Event validation, envelope,
 * routing, key, serialisation (what the receiver runs after verification).
 * Invariants checked on every accepted input: the topic is one a webhook
 * may go to, the key is non-empty, and the serialised envelope parses back
 * with the same event id, type and routing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <webhook/event.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ss_webhook_event_t ev;
    char err[256];
    if (ss_webhook_event_parse(&ev, (const char *)data, size, "req_fuzz", err, sizeof(err)) != 0) {
        if (err[0] == '\0')
            abort(); /* every refusal says why */
        return 0;
    }
    if (ev.topic != SS_TOPIC_TRACKERS && ev.topic != SS_TOPIC_BATCHES &&
        ev.topic != SS_TOPIC_EVENTS)
        abort();
    if (ev.keylen == 0 || ev.keylen != strlen(ev.key) || ev.value == NULL || ev.value_len == 0)
        abort();
    if (ev.topic != ss_webhook_event_route(ev.env.type, ev.env.object_type))
        abort();

    ss_envelope_t back;
    if (ss_envelope_parse(&back, ev.value, ev.value_len, err, sizeof(err)) != 0)
        abort(); /* we produced something our own consumers would reject */
    if (strcmp(back.event_id, ev.env.event_id) != 0 || strcmp(back.type, ev.env.type) != 0 ||
        strcmp(back.object_type, ev.env.object_type) != 0 ||
        strcmp(back.object_id, ev.env.object_id) != 0)
        abort();
    ss_envelope_clear(&back);
    ss_webhook_event_clear(&ev);
    return 0;
}
