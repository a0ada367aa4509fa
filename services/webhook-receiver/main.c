/* shipstream-webhook-receiver: verifies EasyPost webhooks and answers 2xx
 * only once Kafka has acknowledged the event (acks=all).
 *
 * POST /webhooks/easypost:
 *   body over WEBHOOK_MAX_BODY_BYTES      -> 413 (Content-Length checked first)
 *   envelope over the Kafka message limit -> 413 (final: never 503)
 *   over WEBHOOK_MAX_INFLIGHT_BYTES at once -> 503 busy + Retry-After
 *   no X-Hmac-Signature                   -> 401 signature_missing
 *   signature wrong or malformed          -> 401 signature_invalid
 *   not JSON / not an EasyPost Event      -> 400 invalid_event
 *   not acknowledged within the timeout   -> 503 kafka_unavailable + Retry-After
 *   acknowledged                          -> 200 {"status":"accepted","event_id":…} */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h> /* mallopt */
#endif

#include <civetweb.h>

#include <common/config.h>
#include <common/log.h>
#include <common/metrics.h>
#include <common/shutdown.h>
#include <common/sstime.h>
#include <common/util.h>
#include <envelope/envelope.h>
#include <http/server.h>
#include <kafka/kafka.h>
#include <webhook/event.h>
#include <webhook/signature.h>

#define PROG  "shipstream-webhook-receiver"
#define ROUTE "/webhooks/easypost"

/* What the envelope adds to a body at most: its header fields are bounded
 * (event_id, type, object_type, object_id, request_id, timestamps) and the
 * Event's bytes are split between "object" and "event", so an envelope is
 * the body plus under 1 KiB.  Used only for the start-up warning: the real
 * check is on each envelope's size. */
#define SS_WEBHOOK_ENVELOPE_SLACK 4096

typedef enum {
    OUT_ACCEPTED = 0,
    OUT_UNSIGNED,
    OUT_BAD_SIGNATURE,
    OUT_TOO_LARGE,
    OUT_BAD_BODY,
    OUT_BROKER_UNAVAILABLE,
    OUT_BUSY,
    OUT__COUNT
} outcome_t;

static const char *const outcome_names[OUT__COUNT] = {
    "accepted", "unsigned", "bad_signature", "too_large", "bad_body", "broker_unavailable", "busy",
};

static struct {
    char *listen;
    char *bootstrap;
    char *topic_prefix;
    char *secret;
    char *secret_previous;
    int allow_unsigned;
    long long max_body;
    long long max_inflight;
    long long produce_timeout_ms;
    long long threads;
    long long request_timeout_ms;
    long long retry_after_s;
    long long linger_ms;
    char *log_level;
    char *log_format;
    char *admin_listen;
} cfg;

static const ss_conf_opt_t options[] = {
    {"LISTEN", SS_CONF_LISTEN, &cfg.listen, "8001", 0, 0,
     "address to listen on (host:port or port)", 0},
    {"KAFKA_BOOTSTRAP_SERVERS", SS_CONF_STRING, &cfg.bootstrap, SS_KAFKA_DEFAULT_BOOTSTRAP, 0, 0,
     "Kafka brokers", 0},
    {"KAFKA_TOPIC_PREFIX", SS_CONF_STRING, &cfg.topic_prefix, SS_TOPIC_DEFAULT_PREFIX, 0, 0,
     "prefix of the topic names (the object's type decides: shipments, trackers, addresses, "
     "batches, events)",
     0},
    {"EASYPOST_WEBHOOK_SECRET", SS_CONF_STRING, &cfg.secret, NULL, 0, 0,
     "webhook secret (UTF-8; normalised to NFKD); required unless WEBHOOK_ALLOW_UNSIGNED=1", 1},
    {"EASYPOST_WEBHOOK_SECRET_PREVIOUS", SS_CONF_STRING, &cfg.secret_previous, NULL, 0, 0,
     "previous webhook secret, also accepted during a rotation", 1},
    {"WEBHOOK_ALLOW_UNSIGNED", SS_CONF_BOOL, &cfg.allow_unsigned, "0", 0, 0,
     "start without a secret and accept unsigned webhooks (development only)", 0},
    {"WEBHOOK_MAX_BODY_BYTES", SS_CONF_INT, &cfg.max_body, "4194304", 1024, 67108864,
     "largest accepted body (EasyPost objects reach 4 MiB); larger is answered 413, and so is "
     "one whose envelope exceeds the Kafka message limit",
     0},
    {"WEBHOOK_MAX_INFLIGHT_BYTES", SS_CONF_INT, &cfg.max_inflight, "67108864", 1024,
     (long long)1 << 40,
     "body bytes (Content-Length; a chunked body counts as WEBHOOK_MAX_BODY_BYTES) of the "
     "requests being served at once; more waits for EasyPost's retry (503 busy). At least "
     "WEBHOOK_MAX_BODY_BYTES; each byte costs about 2-3 bytes of memory (body, envelope, "
     "producer copy)",
     0},
    {"WEBHOOK_PRODUCE_TIMEOUT_MS", SS_CONF_INT, &cfg.produce_timeout_ms, "5000", 100, 120000,
     "how long to wait for Kafka's acknowledgement before answering 503", 0},
    {"WEBHOOK_THREADS", SS_CONF_INT, &cfg.threads, "1536", 1, 16384,
     "HTTP worker threads: one per open connection (idle and slow ones included) and per "
     "request waiting for its ack; ~32 KB each",
     0},
    {"WEBHOOK_REQUEST_TIMEOUT_MS", SS_CONF_INT, &cfg.request_timeout_ms, "10000", 100, 600000,
     "deadline for the request head, and again for the body (a slow client is cut off: 408)", 0},
    {"ADMIN_LISTEN", SS_CONF_LISTEN, &cfg.admin_listen, NULL, 0, 0,
     "also serve /health, /ready and /metrics here, on threads of their own (probes never wait "
     "behind public traffic); unset: only on LISTEN",
     0},
    {"WEBHOOK_RETRY_AFTER_SECONDS", SS_CONF_INT, &cfg.retry_after_s, "5", 1, 3600,
     "Retry-After sent with 503", 0},
    {"KAFKA_LINGER_MS", SS_CONF_INT, &cfg.linger_ms, "3", 0, 1000,
     "producer linger.ms (every request waits for its ack: latency floor vs. CPU, see "
     "main.c); other KAFKA_* variables "
     "pass through to librdkafka",
     0},
    {"LOG_LEVEL", SS_CONF_STRING, &cfg.log_level, "info", 0, 0, "debug, info, warn or error", 0},
    {"LOG_FORMAT", SS_CONF_STRING, &cfg.log_format, "json", 0, 0, "json or text", 0},
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

typedef struct {
    const ss_webhook_key_t *keys[2];
    size_t nkeys;
    int verify; /* 0 only with WEBHOOK_ALLOW_UNSIGNED and no secret */
    char topics[SS_TOPIC__COUNT][256];
    ss_kafka_producer_t *producer;
    ss_counter_t *outcomes[OUT__COUNT];
    ss_histogram_t *request_latency;
    ss_histogram_t *produce_latency;
    size_t max_body;
    size_t max_payload; /* the producer's key + value limit */
    size_t max_inflight;
    atomic_size_t inflight; /* body bytes reserved by the requests being served */
    ss_gauge_t *inflight_gauge;
    int produce_timeout_ms;
    char retry_after[64]; /* "Retry-After: N\r\n" */
} receiver_t;

static int finish(receiver_t *r, outcome_t o, int64_t t0, int status) {
    ss_counter_inc(r->outcomes[o]);
    ss_histogram_observe(r->request_latency, (double)(ss_time_mono_usec() - t0) / 1e6);
    return status;
}

static int inflight_take(receiver_t *r, size_t n) {
    size_t cur = atomic_load(&r->inflight);
    do {
        if (cur + n > r->max_inflight)
            return 0;
    } while (!atomic_compare_exchange_weak(&r->inflight, &cur, cur + n));
    ss_gauge_add(r->inflight_gauge, (double)n);
    return 1;
}

static void inflight_give(receiver_t *r, size_t n) {
    atomic_fetch_sub(&r->inflight, n);
    ss_gauge_add(r->inflight_gauge, -(double)n);
}

static int handle_body(struct mg_connection *conn, receiver_t *r, int64_t t0, const char *sig);

static int handle_webhook(struct mg_connection *conn, void *ud) {
    receiver_t *r = ud;
    int64_t t0 = ss_time_mono_usec();
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (strcmp(ri->request_method, "POST") != 0)
        return ss_http_send_error_h(conn, 405, "method_not_allowed", "use POST", "Allow: POST\r\n");

    /* Refused before reading anything: Content-Length over the limit.  The
     * unread body makes civetweb close the connection after the answer. */
    if (ri->content_length > 0 && (unsigned long long)ri->content_length > r->max_body) {
        SS_INFO("webhook body too large: %lld bytes", ri->content_length);
        return finish(r, OUT_TOO_LARGE, t0,
                      ss_http_send_error_h(conn, 413, "payload_too_large",
                                           "request body is over the limit",
                                           "Connection: close\r\n"));
    }
    /* mg_get_header compares names case-insensitively. */
    const char *sig = mg_get_header(conn, "X-Hmac-Signature");
    if (r->verify && (sig == NULL || sig[strspn(sig, " \t")] == '\0')) {
        SS_INFO("webhook refused: no signature");
        return finish(r, OUT_UNSIGNED, t0,
                      ss_http_send_error_h(conn, 401, "signature_missing",
                                           "X-Hmac-Signature header is missing",
                                           "Connection: close\r\n"));
    }

    /* The memory of the bodies being read and produced is bounded: a
     * request reserves its Content-Length (a chunked one: the limit) for
     * its whole life, and waits in EasyPost's retry queue (503) when that
     * would go over WEBHOOK_MAX_INFLIGHT_BYTES. */
    size_t need = ri->content_length > 0 ? (size_t)ri->content_length : r->max_body;
    if (!inflight_take(r, need)) {
        ss_log_kv(SS_LOG_WARN, "webhook deferred: too many body bytes in flight",
                  SS_KV_INT("bytes", need), SS_KV_INT("limit", r->max_inflight), NULL);
        char hdr[96];
        snprintf(hdr, sizeof hdr, "%sConnection: close\r\n", r->retry_after);
        return finish(r, OUT_BUSY, t0,
                      ss_http_send_error_h(conn, 503, "busy",
                                           "too many large webhooks at once; retry later", hdr));
    }
    int status = handle_body(conn, r, t0, sig);
    inflight_give(r, need);
    return status;
}

/* The signed request after its reservation: read, verify, produce, answer. */
static int handle_body(struct mg_connection *conn, receiver_t *r, int64_t t0, const char *sig) {
    char *body = NULL;
    size_t len = 0;
    int rc = ss_http_read_body(conn, r->max_body, &body, &len);
    if (rc == -2) { /* chunked body that grew over the limit while reading */
        SS_INFO("webhook body too large (chunked)");
        return finish(r, OUT_TOO_LARGE, t0,
                      ss_http_send_error_h(conn, 413, "payload_too_large",
                                           "request body is over the limit",
                                           "Connection: close\r\n"));
    }
    if (rc == SS_HTTP_BODY_TOO_SLOW) {
        SS_INFO("webhook body too slow: cut off at the deadline");
        return finish(r, OUT_BAD_BODY, t0,
                      ss_http_send_error(conn, 408, "body_too_slow",
                                         "the request body did not arrive in time"));
    }
    if (rc != 0) {
        SS_INFO("webhook body unreadable (client gone or timed out)");
        return finish(r, OUT_BAD_BODY, t0,
                      ss_http_send_error_h(conn, 400, "body_unreadable",
                                           "request body could not be read",
                                           "Connection: close\r\n"));
    }

    int status;
    outcome_t outcome;
    ss_envelope_msg_t ev;
    memset(&ev, 0, sizeof(ev));
    char err[256] = "";
    if (r->verify) {
        ss_webhook_sig_result_t v = ss_webhook_verify(r->keys, r->nkeys, sig, body, len);
        if (v != SS_WEBHOOK_SIG_OK) {
            /* Never say what was expected. */
            SS_INFO("webhook refused: %s signature",
                    v == SS_WEBHOOK_SIG_MALFORMED ? "malformed" : "wrong");
            outcome = OUT_BAD_SIGNATURE;
            status = ss_http_send_error(conn, 401, "signature_invalid",
                                        "X-Hmac-Signature does not match the body");
            goto done;
        }
    }

    if (ss_webhook_event_parse(&ev, body, len, ss_log_request_id(), err, sizeof(err)) != 0) {
        SS_INFO("webhook refused: %s", err);
        outcome = OUT_BAD_BODY;
        status = ss_http_send_error(conn, 400, "invalid_event", err);
        goto done;
    }
    free(body); /* the envelope holds what goes to Kafka */
    body = NULL;

    /* Larger than Kafka takes: final (413), never 503, which EasyPost would
     * retry for a day before dropping it.  The envelope is the body plus a
     * bounded header (docs/architecture.md, "Limits"), so with the default
     * limits this only happens when WEBHOOK_MAX_BODY_BYTES was raised. */
    if (ev.keylen + ev.value_len > r->max_payload) {
        ss_log_kv(SS_LOG_WARN, "webhook refused: its envelope is over the Kafka message limit",
                  "event_id", ev.env.event_id, SS_KV_INT("bytes", ev.keylen + ev.value_len),
                  SS_KV_INT("limit", r->max_payload), NULL);
        outcome = OUT_TOO_LARGE;
        status = ss_http_send_error_h(conn, 413, "payload_too_large",
                                      "the event is larger than the message limit",
                                      "Connection: close\r\n");
        goto done;
    }

    int64_t p0 = ss_time_mono_usec();
    ss_kafka_delivery_t *d = NULL;
    const char *topic = r->topics[ev.topic];
    rc = ss_kafka_producer_send(r->producer, topic, ev.key, ev.keylen, ev.value, ev.value_len, NULL,
                                0, &d, err, sizeof(err));
    if (rc == 0)
        rc = ss_kafka_delivery_wait(d, r->produce_timeout_ms, err, sizeof(err));
    ss_histogram_observe(r->produce_latency, (double)(ss_time_mono_usec() - p0) / 1e6);
    if (rc != 0) {
        ss_log_kv(SS_LOG_WARN, "webhook not acknowledged by kafka", "event_id", ev.env.event_id,
                  "topic", topic, "error", err, NULL);
        outcome = OUT_BROKER_UNAVAILABLE;
        status = ss_http_send_error_h(conn, 503, "kafka_unavailable",
                                      "the event could not be stored; retry later", r->retry_after);
        goto done;
    }

    SS_DEBUG("webhook accepted: %s %s -> %s", ev.env.event_id, ev.env.type, topic);
    ss_buf_t out = {0};
    ss_buf_appendf(&out, "{\"status\":\"accepted\",\"event_id\":");
    ss_buf_append_json_str(&out, ev.env.event_id);
    ss_buf_append(&out, "}", 1);
    if (out.data == NULL)
        status = ss_http_send_json(conn, 200, "{\"status\":\"accepted\"}", 21, NULL);
    else
        status = ss_http_send_json(conn, 200, out.data, out.len, NULL);
    ss_buf_free(&out);
    outcome = OUT_ACCEPTED;

done:
    ss_envelope_msg_clear(&ev);
    free(body);
    return finish(r, outcome, t0, status);
}

static int ready(void *ud, char *why, size_t why_size) {
    receiver_t *r = ud;
    if (!ss_kafka_producer_connected(r->producer)) {
        snprintf(why, why_size, "kafka: no broker connection");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int conf_rc =
        ss_conf_main(argc, argv, PROG,
                     "Verifies EasyPost webhooks (X-Hmac-Signature) and produces them to Kafka, "
                     "answering 200 only after the broker's acknowledgement.",
                     options, NOPTIONS);
    if (conf_rc >= 0)
        return conf_rc;
    char err[512];
    if (ss_log_init("webhook-receiver", cfg.log_level, cfg.log_format, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: configuration error: %s\n", PROG, err);
        return 2;
    }

#ifdef __GLIBC__
    /* Bodies and envelopes of up to 4 MiB come and go on many threads:
     * glibc would otherwise raise its mmap threshold after the first free
     * and keep the freed megabytes in per-thread arenas (measured: RSS
     * crept from 56 to 192 MB over six rounds of 64 concurrent 4 MiB
     * bodies; with this it stays at 60 MB). */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
    static receiver_t r;
    ss_webhook_key_t *key_cur = NULL, *key_prev = NULL;
    int exit_code = 1;
    ss_http_t *http = NULL;

    if (cfg.secret == NULL && !cfg.allow_unsigned) {
        ss_log_kv(SS_LOG_ERROR,
                  "configuration error: EASYPOST_WEBHOOK_SECRET is not set "
                  "(set WEBHOOK_ALLOW_UNSIGNED=1 to accept unsigned webhooks)",
                  "variable", "EASYPOST_WEBHOOK_SECRET", NULL);
        exit_code = 2;
        goto cleanup;
    }
    if (cfg.secret == NULL && cfg.secret_previous != NULL) {
        ss_log_kv(SS_LOG_ERROR,
                  "configuration error: EASYPOST_WEBHOOK_SECRET_PREVIOUS is set without "
                  "EASYPOST_WEBHOOK_SECRET",
                  "variable", "EASYPOST_WEBHOOK_SECRET", NULL);
        exit_code = 2;
        goto cleanup;
    }
    if (cfg.secret != NULL) {
        char kerr[128];
        if ((key_cur = ss_webhook_key_new(cfg.secret, kerr, sizeof(kerr))) == NULL) {
            ss_log_kv(SS_LOG_ERROR, "configuration error", "variable", "EASYPOST_WEBHOOK_SECRET",
                      "error", kerr, NULL);
            exit_code = 2;
            goto cleanup;
        }
        r.keys[r.nkeys++] = key_cur;
        if (cfg.secret_previous != NULL) {
            if ((key_prev = ss_webhook_key_new(cfg.secret_previous, kerr, sizeof(kerr))) == NULL) {
                ss_log_kv(SS_LOG_ERROR, "configuration error", "variable",
                          "EASYPOST_WEBHOOK_SECRET_PREVIOUS", "error", kerr, NULL);
                exit_code = 2;
                goto cleanup;
            }
            r.keys[r.nkeys++] = key_prev;
        }
        r.verify = 1;
    } else {
        SS_WARN("EASYPOST_WEBHOOK_SECRET is not set and WEBHOOK_ALLOW_UNSIGNED=1: "
                "webhooks are NOT verified");
    }
    /* The keys hold the secrets now; drop the plain text. */
    if (cfg.secret)
        memset(cfg.secret, 0, strlen(cfg.secret));
    if (cfg.secret_previous)
        memset(cfg.secret_previous, 0, strlen(cfg.secret_previous));

    for (int t = 0; t < SS_TOPIC__COUNT; t++) {
        if (ss_topic_name(cfg.topic_prefix, (ss_topic_t)t, r.topics[t], sizeof(r.topics[t])) != 0) {
            ss_log_kv(SS_LOG_ERROR, "configuration error: too long", "variable",
                      "KAFKA_TOPIC_PREFIX", "value", cfg.topic_prefix, NULL);
            exit_code = 2;
            goto cleanup;
        }
    }
    r.max_body = (size_t)cfg.max_body;
    r.max_inflight = (size_t)cfg.max_inflight;
    r.inflight_gauge = ss_gauge(
        "webhook_inflight_body_bytes",
        "Body bytes reserved by the webhooks being served (WEBHOOK_MAX_INFLIGHT_BYTES)", NULL);
    if (cfg.max_inflight < cfg.max_body) {
        ss_log_kv(SS_LOG_ERROR,
                  "configuration error: WEBHOOK_MAX_INFLIGHT_BYTES is below WEBHOOK_MAX_BODY_BYTES "
                  "(the largest webhook could never be accepted)",
                  "variable", "WEBHOOK_MAX_INFLIGHT_BYTES", NULL);
        exit_code = 2;
        goto cleanup;
    }
    r.produce_timeout_ms = (int)cfg.produce_timeout_ms;
    snprintf(r.retry_after, sizeof(r.retry_after), "Retry-After: %lld\r\n", cfg.retry_after_s);
    for (int o = 0; o < OUT__COUNT; o++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "outcome=\"%s\"", outcome_names[o]);
        r.outcomes[o] = ss_counter("webhook_requests_total", "Webhook requests by outcome", labels);
    }
    r.request_latency = ss_histogram("webhook_request_duration_seconds",
                                     "Webhook request latency, receipt to answer", NULL, NULL, 0);
    r.produce_latency =
        ss_histogram("webhook_produce_duration_seconds",
                     "Time from produce to Kafka acknowledgement (or give-up)", NULL, NULL, 0);

    ss_shutdown_install();

    char linger[32];
    snprintf(linger, sizeof(linger), "%lld", cfg.linger_ms);
    /* linger.ms is the floor of every answer's latency, yet 3 ms, not 0-1:
     * librdkafka 2.0's idempotent producer keeps one ProduceRequest per
     * partition in flight, and while a partition's next batch is ready but
     * waits for that answer its broker thread busy-polls (poll(0) in a
     * loop).  Measured on the tracker.updated bench (64 connections, 12
     * partitions): linger 1 ms, 40 poll()s and 110 us of CPU per webhook;
     * 3 ms, 3.4 poll()s and 65 us, and twice the throughput.  With a
     * linger at least the broker's round trip, a batch is rarely ready
     * before the previous answer.  KAFKA_* from the environment are
     * applied after these. */
    /* Nagle off: a lone small produce request must not wait for the
     * broker's delayed ACK (tens of ms of p99 otherwise). */
    const char *overrides[] = {"linger.ms", linger, "socket.nagle.disable", "true", NULL};
    ss_kafka_producer_opts_t popts = {
        .bootstrap = cfg.bootstrap,
        .client_id = PROG,
        .overrides = overrides,
    };
    r.producer = ss_kafka_producer_new(&popts, err, sizeof(err));
    if (r.producer == NULL) {
        ss_log_kv(SS_LOG_ERROR, "configuration error: Kafka producer", "error", err, NULL);
        exit_code = 2;
        goto cleanup;
    }
    r.max_payload = ss_kafka_producer_max_payload(r.producer);
    if (r.max_body + SS_WEBHOOK_ENVELOPE_SLACK > r.max_payload)
        ss_log_kv(SS_LOG_WARN,
                  "WEBHOOK_MAX_BODY_BYTES is close to or above the Kafka message limit: the "
                  "largest bodies will be answered 413",
                  SS_KV_INT("max_body", r.max_body), SS_KV_INT("max_payload", r.max_payload), NULL);

    ss_http_opts_t hopts = {
        .service = "webhook-receiver",
        .listen = cfg.listen,
        .num_threads = (int)cfg.threads,
        .request_timeout_ms = (int)cfg.request_timeout_ms,
        .body_timeout_ms = (int)cfg.request_timeout_ms,
        .admin_listen = cfg.admin_listen,
        .ready = ready,
        .ready_ud = &r,
        .hold_until_serve = 1,
    };
    http = ss_http_start(&hopts, err, sizeof(err));
    if (http == NULL) {
        ss_log_kv(SS_LOG_ERROR, "cannot start http", "error", err, NULL);
        goto cleanup;
    }
    ss_http_route(http, ROUTE "$", ROUTE, handle_webhook, &r);
    ss_http_serve(http);
    ss_log_kv(SS_LOG_INFO, "webhook receiver started", "listen", cfg.listen, "bootstrap",
              cfg.bootstrap, "topic_prefix", cfg.topic_prefix, "verify",
              r.verify ? (key_prev ? "current+previous" : "current") : "off", NULL);

    while (!ss_shutdown_wait(1000))
        ;
    SS_INFO("stopping: http first, then flushing kafka");
    exit_code = 0;

cleanup:
    /* Order: no new requests, finish those in flight, then flush Kafka. */
    ss_http_stop(http);
    if (r.producer) {
        int left = ss_kafka_producer_close(r.producer, 10000);
        if (left > 0)
            exit_code = 1;
    }
    ss_webhook_key_free(key_cur);
    ss_webhook_key_free(key_prev);
    ss_conf_free(options, NOPTIONS);
    return exit_code;
}
