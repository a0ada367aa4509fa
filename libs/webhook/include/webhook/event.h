/* A verified EasyPost webhook body turned into what goes to Kafka: strict
 * JSON parse, Event validation, envelope, topic and key.  Pure (no I/O), so
 * the fuzz driver calls exactly what the receiver runs.  Target
 * ss_webhook_event (needs ss_envelope). */
#ifndef SS_WEBHOOK_EVENT_H
#define SS_WEBHOOK_EVENT_H

#include <stddef.h>
#include <envelope/envelope.h>

#define SS_WEBHOOK_KEY_MAX 256

typedef struct {
    ss_envelope_t env;            /* identity fields; object and event stay NULL:
                                       the value carries them as received */
    ss_topic_t topic;             /* trackers, batches or events */
    char key[SS_WEBHOOK_KEY_MAX]; /* NUL-terminated message key */
    size_t keylen;
    char *value; /* serialised envelope (malloc'd, owned) */
    size_t value_len;
} ss_webhook_event_t;

/* Routing by the Event's description, checked against the result's object
 * type: "tracker.*" carrying a Tracker -> trackers, "batch.*" carrying a
 * Batch -> batches, everything else -> events (never dropped).
 * object_type may be NULL. */
ss_topic_t ss_webhook_event_route(const char *description, const char *object_type);

/* Parses body (len bytes, need not be NUL-terminated) strictly: one JSON
 * value, nothing but whitespace after it, an object with "object":"Event",
 * a non-empty string "id", a non-empty string "description" and an object
 * "result".  Builds the envelope (request_id may be NULL), the topic, the
 * key (the result's shipment id, else tracking code, else id; the event id
 * if the result has none of them) and the serialised value.
 * Returns 0 with ev filled (call ss_webhook_event_clear), or -1 with the
 * reason in errstr (safe to show a client: it never quotes the body) and ev
 * cleared. */
int ss_webhook_event_parse(ss_webhook_event_t *ev, const char *body, size_t len,
                           const char *request_id, char *errstr, size_t errstr_size);

/* Frees what ss_webhook_event_parse filled and zeroes ev. */
void ss_webhook_event_clear(ss_webhook_event_t *ev);

#endif
