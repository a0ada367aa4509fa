/* A verified EasyPost webhook body turned into what goes to Kafka: strict
 * scan, Event validation, then the envelope writer (which also decides
 * topic and key).  Pure (no I/O), so the fuzz driver calls exactly what the
 * receiver runs.  Target ss_webhook_event (needs ss_envelope). */
#ifndef SS_WEBHOOK_EVENT_H
#define SS_WEBHOOK_EVENT_H

#include <stddef.h>
#include <envelope/envelope.h>

/* Checks body (len bytes, need not be NUL-terminated) strictly: one JSON
 * value at most SS_ENVELOPE_SPAN_MAX_DEPTH deep, nothing but whitespace
 * after it, an object with "object":"Event", a non-empty string "id", a
 * non-empty string "description" and an object "result" (the last member
 * wins on duplicates).  Then writes the envelope with ss_envelope_write
 * (source webhook, the Event's id and description, request_id may be NULL):
 * m->value, m->topic and m->key are what goes to Kafka.
 * Returns 0 with m filled (call ss_envelope_msg_clear), or -1 with the
 * reason in errstr (safe to show a client: it never quotes the body) and m
 * zeroed. */
int ss_webhook_event_parse(ss_envelope_msg_t *m, const char *body, size_t len,
                           const char *request_id, char *errstr, size_t errstr_size);

#endif
