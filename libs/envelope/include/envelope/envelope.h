/* The event envelope that crosses Kafka, and the topic/key rules.
 *
 * Wire form (JSON, schema_version 1):
 *   {"schema_version":1,
 *    "event_id":"evt_…" (EasyPost's for webhooks) | "gwe_<32 hex>" (gateway),
 *    "type":"tracker.updated" | "shipment.created" | "shipment.purchased" | …,
 *    "source":"gateway" | "webhook",
 *    "object_type":"Shipment" | "Tracker" | "Address" | "Batch" | … ,
 *    "object_id":"shp_…",
 *    "updated_at":"<the object's updated_at as sent by EasyPost, or null>",
 *    "received_at":"2024-…Z",
 *    "request_id":"…" | null,
 *    "object":{ …the EasyPost object as received… }}
 * For webhooks "object" is the Event's "result"; the rest of the Event
 * (id, description, created_at…) is kept in "event" without its result. */
#ifndef SS_ENVELOPE_ENVELOPE_H
#define SS_ENVELOPE_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#define SS_ENVELOPE_SCHEMA_VERSION 1

/* Deepest nesting ss_envelope_parse reads (json-c's default is 32).  The
 * webhook receiver refuses deeper bodies, so that what it accepts is never
 * refused by the consumers. */
#define SS_ENVELOPE_MAX_DEPTH 64

typedef enum {
    SS_TOPIC_SHIPMENTS = 0,
    SS_TOPIC_TRACKERS,
    SS_TOPIC_ADDRESSES,
    SS_TOPIC_BATCHES,
    SS_TOPIC_EVENTS,
    SS_TOPIC_DLQ,
    SS_TOPIC__COUNT
} ss_topic_t;

#define SS_TOPIC_DEFAULT_PREFIX     "shipstream."
#define SS_TOPIC_DEFAULT_PARTITIONS 12

/* "shipments", "trackers", "addresses", "batches", "events", "dlq". */
const char *ss_topic_suffix(ss_topic_t t);

/* prefix + suffix into buf.  Returns 0, or -1 when it does not fit. */
int ss_topic_name(const char *prefix, ss_topic_t t, char *buf, size_t bufsize);

typedef enum { SS_SOURCE_GATEWAY = 0, SS_SOURCE_WEBHOOK } ss_source_t;

typedef struct {
    int schema_version;
    char event_id[96];
    char type[64];
    ss_source_t source;
    char object_type[32];
    char object_id[96];
    int64_t updated_at_usec; /* 0 when the object has none */
    int64_t received_at_usec;
    char request_id[96]; /* "" when none */
    json_object *object; /* owned by the envelope */
    json_object *event;  /* webhook Event without result, or NULL; owned */
} ss_envelope_t;

/* Releases object/event and zeroes e. */
void ss_envelope_clear(ss_envelope_t *e);

/* Builds an envelope around an EasyPost object produced by the gateway:
 * fresh event id, source gateway, received_at now, object_type/id and
 * updated_at read from the object.  Takes a reference on object (the caller
 * keeps its own).  Returns 0, or -1 with errstr when object is not an
 * EasyPost object (no "object"/"id" string). */
int ss_envelope_from_object(ss_envelope_t *e, const char *type, json_object *object,
                            const char *request_id, char *errstr, size_t errstr_size);

/* Builds an envelope from a verified EasyPost Event (object "Event", id,
 * description, result object).  Takes references; the caller keeps event.
 * Returns 0, or -1 with errstr naming what is missing. */
int ss_envelope_from_event(ss_envelope_t *e, json_object *event, const char *request_id,
                           char *errstr, size_t errstr_size);

/* Serialises to JSON.  Returns a malloc'd NUL-terminated string (caller
 * frees) with its length, or NULL on out of memory. */
char *ss_envelope_serialize(const ss_envelope_t *e, size_t *len);

/* Parses and validates (strict JSON, schema_version 1, every required field
 * with the right type, timestamps parseable, object a JSON object).  On
 * success fills e (call ss_envelope_clear later) and returns 0; on failure
 * returns -1 with the reason in errstr and leaves e cleared. */
int ss_envelope_parse(ss_envelope_t *e, const char *buf, size_t len, char *errstr,
                      size_t errstr_size);

/* The topic for an envelope, by the object it carries: Shipment ->
 * shipments, Tracker -> trackers, Address -> addresses, Batch -> batches,
 * anything else (Refund, ScanForm, Insurance, Payment, Report…) -> events.
 * Nothing is dropped. */
ss_topic_t ss_envelope_topic(const ss_envelope_t *e);

/* The message key, so that one shipment's events stay in one partition:
 * the object's shipment id when it has one ("shipment_id", or its own id
 * for a Shipment), else its tracking code, else its id.  Addresses and
 * batches: their id.  Returns the length, or -1 when nothing fits. */
int ss_envelope_key(const ss_envelope_t *e, char *buf, size_t bufsize);

#endif
