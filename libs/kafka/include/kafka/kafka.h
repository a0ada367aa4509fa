/* Kafka producer and consumer on librdkafka, configured the shipstream way:
 * KAFKA_BOOTSTRAP_SERVERS, plus every other KAFKA_* variable passed through
 * to librdkafka (KAFKA_LINGER_MS -> linger.ms); KAFKA_TOPIC_PREFIX and
 * KAFKA_GROUP_ID are ours and never passed through, nor are the Kubernetes
 * service link variables of a Service named "kafka" (KAFKA_PORT, ...). */
#ifndef SS_KAFKA_KAFKA_H
#define SS_KAFKA_KAFKA_H

#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#define SS_KAFKA_DEFAULT_BOOTSTRAP "localhost:9092"

/* The message size limits, in one place (docs/architecture.md, "Limits").
 * SS_KAFKA_MAX_MESSAGE_BYTES is every producer's message.max.bytes, every
 * topic's max.message.bytes (ss-kafkactl create-topics), the local broker's
 * message.max.bytes and the consumers' max.partition.fetch.bytes.  A
 * producer of envelopes sends at most SS_KAFKA_MAX_PAYLOAD_BYTES of key and
 * value: the rest is room for the record framing and for the headers the
 * dead-letter topic and a redrive add to a message, so that whatever was
 * accepted once is never refused for its size further down. */
#define SS_KAFKA_MAX_MESSAGE_BYTES 8388608 /* 8 MiB */
#define SS_KAFKA_MESSAGE_HEADROOM  65536   /* 64 KiB */
#define SS_KAFKA_MAX_PAYLOAD_BYTES (SS_KAFKA_MAX_MESSAGE_BYTES - SS_KAFKA_MESSAGE_HEADROOM)

/* Applies every pass-through KAFKA_* variable of the environment to conf.
 * Returns 0, or -1 with errstr naming the variable
 * ("KAFKA_LINGER_MS=abc: Invalid value for configuration property ..."). */
int ss_kafka_conf_from_env(rd_kafka_conf_t *conf, char *errstr, size_t errstr_size);

/* 1 when name[0..len) is one of the variables Kubernetes injects for a
 * Service named "kafka" (KAFKA_SERVICE_HOST, KAFKA_SERVICE_PORT[_<NAME>],
 * KAFKA_PORT, KAFKA_PORT_<n>_<TCP|UDP|SCTP>[_PROTO|_PORT|_ADDR]): the
 * pass-through skips them (logged at debug) instead of refusing them. */
int ss_kafka_is_service_link(const char *name, size_t len);

/* ---- producer ---- */

typedef struct ss_kafka_producer ss_kafka_producer_t;

/* The outcome of one message, for callers that account for every message
 * without waiting for each (the gateway).  Everything is borrowed for the
 * duration of the callback only. */
typedef struct {
    const char *topic;
    const void *key;
    size_t keylen;
    const void *value;
    size_t valuelen;
    /* NULL: acknowledged by the broker.  Otherwise why it never will be:
     * "queue_full" (refused by ss_kafka_producer_send, the local queue
     * stayed full), "timeout" (message.timeout.ms ran out), "shutdown"
     * (still queued when ss_kafka_producer_close gave up), or the error
     * that refused it, as librdkafka names it in lower case without the
     * leading underscores ("msg_size_too_large", "unknown_topic_or_part",
     * "topic_authorization_failed", "fatal"...): a small, fixed set, fit
     * for a metric label. */
    const char *reason;
    const char *error; /* readable text of the failure; NULL when delivered */
} ss_kafka_report_t;

/* Called once per message: from the producer's delivery thread, from
 * ss_kafka_producer_close, or (queue_full and other immediate refusals)
 * from the thread calling ss_kafka_producer_send, before it returns -1.
 * Must be quick and thread-safe; must not call back into the producer. */
typedef void (*ss_kafka_report_fn)(void *ud, const ss_kafka_report_t *r);

typedef struct {
    const char *bootstrap; /* required */
    const char *client_id; /* e.g. "shipstream-gateway" */
    /* key/value pairs applied after the defaults and before the environment,
     * NULL-terminated; may be NULL.  E.g. {"linger.ms", "5", NULL}. */
    const char *const *overrides;
    /* How long ss_kafka_producer_send polls and retries on a full local
     * queue: 0 means the default, 1000 ms; negative means not at all (the
     * gateway: never hold an EasyPost answer back for Kafka). */
    int queue_full_wait_ms;
    ss_kafka_report_fn on_report; /* optional */
    void *report_ud;
} ss_kafka_producer_opts_t;

/* Creates an idempotent producer (enable.idempotence=true, acks=all) with a
 * background thread serving delivery reports.  Counts deliveries in the
 * metrics kafka_produced_total / kafka_delivery_failed_total{topic}. */
ss_kafka_producer_t *ss_kafka_producer_new(const ss_kafka_producer_opts_t *opts, char *errstr,
                                           size_t errstr_size);

typedef struct {
    const char *name;
    const void *value;
    size_t size;
} ss_kafka_header_t;

/* One message's delivery, for callers that wait for it (webhook receiver). */
typedef struct ss_kafka_delivery ss_kafka_delivery_t;

/* Enqueues one message (payload and key are copied).  When wait is non-NULL
 * *wait receives a handle to pass to ss_kafka_delivery_wait (exactly once).
 * On a full local queue it polls and retries for up to 1 s (see
 * queue_full_wait_ms).
 * Returns 0, or -1 with errstr (queue still full, unknown topic...). */
int ss_kafka_producer_send(ss_kafka_producer_t *p, const char *topic, const void *key,
                           size_t keylen, const void *value, size_t valuelen,
                           const ss_kafka_header_t *headers, size_t nheaders,
                           ss_kafka_delivery_t **wait, char *errstr, size_t errstr_size);

/* Waits up to timeout_ms for the broker's acknowledgement and releases d.
 * Returns 0 when delivered, -1 when delivery failed (errstr), -2 on timeout
 * (the message may still be delivered later; d is released anyway). */
int ss_kafka_delivery_wait(ss_kafka_delivery_t *d, int timeout_ms, char *errstr,
                           size_t errstr_size);

/* The same, and *code (when not NULL) receives librdkafka's error:
 * RD_KAFKA_RESP_ERR_NO_ERROR when delivered, RD_KAFKA_RESP_ERR__TIMED_OUT on
 * the wait's own timeout. */
int ss_kafka_delivery_wait_err(ss_kafka_delivery_t *d, int timeout_ms, rd_kafka_resp_err_t *code,
                               char *errstr, size_t errstr_size);

/* 1 when err says the cluster refuses the message itself (too large, invalid,
 * not authorised, policy) or the producer is out of order for good (fatal):
 * sending it again does not help.  Timeouts, broker outages, leader changes
 * and too few in-sync replicas are not refusals: they pass. */
int ss_kafka_err_is_refusal(rd_kafka_resp_err_t err);

/* Messages not yet acknowledged. */
int ss_kafka_producer_outq_len(ss_kafka_producer_t *p);

/* Bytes of the messages not yet acknowledged (keys and values; librdkafka's
 * own bookkeeping comes on top: measure RSS for sizing). */
int64_t ss_kafka_producer_outq_bytes(ss_kafka_producer_t *p);

/* The largest key + value this producer sends: its message.max.bytes (as
 * configured, KAFKA_MESSAGE_MAX_BYTES included) minus
 * SS_KAFKA_MESSAGE_HEADROOM.  Callers refuse bigger messages themselves
 * (the receiver answers 413) instead of learning it from a failed send. */
size_t ss_kafka_producer_max_payload(ss_kafka_producer_t *p);

/* Non-zero when at least one broker answered metadata lately (for /ready).
 * Never blocks: a thread of the producer's checks every second and reports
 * down after three failed checks in a row (about 3-5 s). */
int ss_kafka_producer_connected(ss_kafka_producer_t *p);

/* Flushes for up to timeout_ms, logs how many messages were left, destroys.
 * What is left is purged: each such message is reported to on_report with
 * reason "shutdown" before this returns.
 * Returns the number of messages that were not delivered. NULL is a no-op. */
int ss_kafka_producer_close(ss_kafka_producer_t *p, int timeout_ms);

rd_kafka_t *ss_kafka_producer_handle(ss_kafka_producer_t *p);

/* ---- consumer ---- */

typedef struct ss_kafka_consumer ss_kafka_consumer_t;

/* Called on rebalance with the partitions being assigned.  The callback may
 * set each element's .offset (e.g. from PostgreSQL); RD_KAFKA_OFFSET_INVALID
 * leaves it to the committed offset / auto.offset.reset.  Return 0, or -1 to
 * retry the assignment later (the consumer pauses until it succeeds). */
typedef int (*ss_kafka_assign_fn)(void *ud, rd_kafka_topic_partition_list_t *parts);

/* Called before partitions are taken away: finish or roll back work on them. */
typedef void (*ss_kafka_revoke_fn)(void *ud, const rd_kafka_topic_partition_list_t *parts);

typedef struct {
    const char *bootstrap;
    const char *group_id;
    const char *client_id;
    const char *const *topics; /* full names */
    size_t ntopics;
    ss_kafka_assign_fn on_assign;
    ss_kafka_revoke_fn on_revoke;
    void *ud;
    const char *const *overrides; /* NULL-terminated key/value pairs, or NULL */
} ss_kafka_consumer_opts_t;

/* Creates a group consumer with manual offsets (enable.auto.commit=false,
 * enable.auto.offset.store=false, auto.offset.reset=earliest, eager
 * range/roundrobin assignment) and subscribes. */
ss_kafka_consumer_t *ss_kafka_consumer_new(const ss_kafka_consumer_opts_t *opts, char *errstr,
                                           size_t errstr_size);

/* Returns the next message (caller destroys with rd_kafka_message_destroy),
 * or NULL on timeout.  Messages whose err is set are returned too (caller
 * decides); partition EOF is never returned. */
rd_kafka_message_t *ss_kafka_consumer_poll(ss_kafka_consumer_t *c, int timeout_ms);

/* Commits offsets (next offset to read) to Kafka.  async: fire and forget. */
int ss_kafka_consumer_commit(ss_kafka_consumer_t *c, const rd_kafka_topic_partition_list_t *offsets,
                             int async, char *errstr, size_t errstr_size);

/* Moves a partition to offset (used to re-read after a rolled-back batch). */
int ss_kafka_consumer_seek(ss_kafka_consumer_t *c, const char *topic, int32_t partition,
                           int64_t offset, char *errstr, size_t errstr_size);

/* Pauses / resumes every assigned partition. */
int ss_kafka_consumer_pause_all(ss_kafka_consumer_t *c);
int ss_kafka_consumer_resume_all(ss_kafka_consumer_t *c);

/* Leaves the group cleanly and destroys. NULL is a no-op. */
void ss_kafka_consumer_close(ss_kafka_consumer_t *c);

rd_kafka_t *ss_kafka_consumer_handle(ss_kafka_consumer_t *c);

#endif
