/* The event envelope that crosses Kafka: its one writer, its parser, and the
 * one routing rule (topic and key).
 *
 * Wire form (JSON, schema_version 1):
 *   {"schema_version":1,
 *    "event_id":"evt_…" (EasyPost's Event id for webhooks) | "gwe_<32 hex>" (fresh, other sources),
 *    "type":"tracker.updated" | "shipment.created" | "shipment.purchased" | …,
 *    "source":"gateway" | "webhook" | "backfill" | "reconcile",
 *    "object_type":"Shipment" | "Tracker" | "Address" | "Batch" | … | "Unknown",
 *    "object_id":"shp_…",
 *    "updated_at":"<the object's updated_at token as EasyPost sent it>" | null,
 *    "received_at":"2024-…Z",
 *    "request_id":"…" | null,
 *    "object":{ …the EasyPost object, its bytes as received… },
 *    "event":{ …the webhook Event's members other than "result"… }}  (webhooks only)
 * Members appear in this order, without whitespace between them; "object"
 * and the values inside "event" are the producer's bytes, copied verbatim
 * (whitespace and escapes included).  For webhooks "object" is the Event's
 * "result" and object_type/object_id fall back to "Unknown"/the event id
 * when the result lacks them.  Readers must accept what older writers put
 * in Kafka: members in any order, "event" null or absent, and source
 * "webhook" without "event" (the test generator did that).
 *
 * Nothing here uses json-c: the writer and the parser work on byte spans
 * checked by the strict RFC 8259 scanner (envelope/json_scan.h).  Consumers
 * that want a tree parse ss_envelope_t.object/.event themselves with
 * json_tokener_new_ex(SS_ENVELOPE_MAX_DEPTH) in strict mode. */
#ifndef SS_ENVELOPE_ENVELOPE_H
#define SS_ENVELOPE_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include <envelope/json_scan.h>

#define SS_ENVELOPE_SCHEMA_VERSION 1

/* Deepest nesting ss_envelope_parse reads (json-c's default is 32), counted
 * from the envelope's own braces. */
#define SS_ENVELOPE_MAX_DEPTH      64
/* Deepest object or Event a producer may hand to the writer: one level under
 * SS_ENVELOPE_MAX_DEPTH, because the Event's members move one level down,
 * into "event" ("result" stays as deep, as "object").  The webhook receiver
 * refuses deeper bodies, so that what it accepts is never refused by the
 * consumers. */
#define SS_ENVELOPE_SPAN_MAX_DEPTH (SS_ENVELOPE_MAX_DEPTH - 1)

/* Longest message key + NUL. */
#define SS_ENVELOPE_KEY_MAX 256

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

/* Who produced the envelope.  backfill and reconcile are written by the
 * tools that copy EasyPost's state into Kafka (never with an "event"). */
typedef enum {
    SS_SOURCE_GATEWAY = 0,
    SS_SOURCE_WEBHOOK,
    SS_SOURCE_BACKFILL,
    SS_SOURCE_RECONCILE,
    SS_SOURCE__COUNT
} ss_source_t;

/* "gateway", "webhook", "backfill", "reconcile"; NULL when out of range. */
const char *ss_source_name(ss_source_t s);

/* What went wrong, beside the text in errstr (which is for people: never
 * compare it).  Negative, so that "rc < 0" and "rc != 0" both test failure. */
typedef enum {
    SS_ENVELOPE_OK = 0,
    SS_ENVELOPE_ERR_JSON = -1,    /* not one strict RFC 8259 JSON text (empty, truncated,
                                     trailing data, nested deeper than allowed…) */
    SS_ENVELOPE_ERR_SCHEMA = -2,  /* JSON, but not an envelope: a member missing, null,
                                     mistyped, empty, too long, or not a timestamp */
    SS_ENVELOPE_ERR_VERSION = -3, /* an integer schema_version other than 1 */
    SS_ENVELOPE_ERR_OBJECT = -4,  /* writer: the object is not an EasyPost object ("object"
                                     or "id" missing, updated_at not a timestamp) */
    SS_ENVELOPE_ERR_ARG = -5,     /* writer: bad arguments (no type, unknown source, a
                                     header field too long, webhook without its Event) */
    SS_ENVELOPE_ERR_NOMEM = -6,
} ss_envelope_err_t;

/* "ok", "json", "schema", "version", "object", "arg", "nomem" (for metrics
 * labels and logs). */
const char *ss_envelope_err_name(ss_envelope_err_t err);

/* An envelope's header, decoded, and its payload as spans.  Owns nothing:
 * object and event point into the buffer it was parsed from (or into the
 * value it was written to), which must outlive it. */
typedef struct {
    int schema_version;
    char event_id[96];
    char type[64];
    ss_source_t source;
    char object_type[32];
    char object_id[96];
    int64_t updated_at_usec; /* 0 when the object has none */
    int64_t received_at_usec;
    char request_id[96];   /* "" when none */
    ss_json_span_t object; /* the "object" member's bytes: a JSON object */
    ss_json_span_t event;  /* the "event" member's bytes, or {NULL, 0} when absent/null */
} ss_envelope_t;

/* Zeroes e (there is nothing to free). */
void ss_envelope_clear(ss_envelope_t *e);

/* ---- writing (every producer: gateway, webhook receiver, backfill/reconcile, tests) ---- */

typedef struct {
    ss_source_t source;
    const char *type;         /* required: "shipment.purchased", the Event's description… */
    const char *event_id;     /* webhook: the Event's id (required); others: NULL for a
                                 fresh "gwe_<32 hex>", or the producer's own stable id */
    const char *request_id;   /* NULL or "": null */
    int64_t received_at_usec; /* 0: now */
    ss_json_span_t object;    /* required: the EasyPost object (a webhook's "result") */
    ss_json_span_t event;     /* webhook: the whole Event, required ("result" is left
                                 out of "event"); others: {NULL, 0} */
    int checked;              /* 1: the caller has checked object and event with ss_json_check at
                    max depth SS_ENVELOPE_SPAN_MAX_DEPTH (the receiver checks the whole
                    body once); 0: the writer checks them */
} ss_envelope_in_t;

/* One message ready for Kafka. */
typedef struct {
    ss_envelope_t env; /* the header written; env.object/env.event point into value */
    ss_topic_t topic;
    char key[SS_ENVELOPE_KEY_MAX]; /* NUL-terminated */
    size_t keylen;
    char *value; /* the serialised envelope (malloc'd, owned; not NUL-terminated) */
    size_t value_len;
} ss_envelope_msg_t;

/* THE envelope writer: the only function that writes an envelope's JSON.
 * Reads object_type, object_id and updated_at from the object ("object",
 * "id", "updated_at" members; the last one wins on duplicates, as with
 * json-c).  A webhook's result may lack them: it is still carried, typed
 * "Unknown", identified by the event id, with updated_at null, so that it
 * lands on the events topic instead of being refused and lost after
 * EasyPost's retries; for the other sources that is SS_ENVELOPE_ERR_OBJECT.
 * Then decides topic and key with ss_envelope_route and writes the value.
 * Returns SS_ENVELOPE_OK with m filled (free with ss_envelope_msg_clear), or
 * an error with errstr (never quoting the object) and m zeroed. */
ss_envelope_err_t ss_envelope_write(ss_envelope_msg_t *m, const ss_envelope_in_t *in, char *errstr,
                                    size_t errstr_size);

/* Frees the value and zeroes m. */
void ss_envelope_msg_clear(ss_envelope_msg_t *m);

/* ---- routing ---- */

/* THE routing rule, decided once at produce time by the writer for every
 * producer, from the type of the object carried (never from a webhook's
 * description):
 *   topic: Shipment -> shipments, Tracker -> trackers, Address -> addresses,
 *          Batch -> batches, anything else (Refund, ScanForm, Insurance,
 *          Payment, Report, Unknown…) -> events.  Nothing is dropped.
 *   key:   so that one shipment's events stay in one partition: the
 *          object's shipment id when it has one (its own id for a Shipment;
 *          Addresses and Batches: their id), else its non-empty
 *          "shipment_id" member, else its non-empty "tracking_code", else
 *          object_id.
 * object is read only for the key; key may be NULL (topic only).  Sets
 * *topic; returns the key's length, or -1 when key is NULL or object_id
 * does not fit either.  The consumer's action is chosen by the same type
 * (see ss_sync_map in libs/sync). */
int ss_envelope_route(const char *object_type, const char *object_id, ss_json_span_t object,
                      ss_topic_t *topic, char *key, size_t keysize);

/* ss_envelope_route's topic for a parsed envelope. */
ss_topic_t ss_envelope_topic(const ss_envelope_t *e);

/* ---- parsing (the sync worker) ---- */

/* Parses and validates buf (len bytes, need not be NUL-terminated): strict
 * JSON at most SS_ENVELOPE_MAX_DEPTH deep, an object, schema_version 1,
 * every required member with the right type, timestamps parseable, object
 * a JSON object, event an object or null.  Duplicate members: the last one
 * wins.  Returns SS_ENVELOPE_OK with e filled (its spans point into buf), or
 * SS_ENVELOPE_ERR_JSON, _SCHEMA or _VERSION with the reason in errstr and e
 * zeroed. */
ss_envelope_err_t ss_envelope_parse(ss_envelope_t *e, const char *buf, size_t len, char *errstr,
                                    size_t errstr_size);

#endif
