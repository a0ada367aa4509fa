/* Idempotent producer with a background poll thread and per-message
 * delivery handles. */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <common/log.h>
#include <common/metrics.h>
#include <common/sstime.h>

#define QUEUE_FULL_RETRY_MS  1000
/* The broker-connection check behind /ready runs on a thread of its own
 * (never on a caller's, never on the delivery-report thread): every
 * CONNECTED_EVERY_MS a metadata request with CONNECTED_TIMEOUT_MS; the
 * answer flips to "down" only after CONNECTED_FAILS_DOWN checks in a row
 * failed, so one slow broker answer does not take every replica out of
 * its Service at once. */
#define CONNECTED_EVERY_MS   1000
#define CONNECTED_TIMEOUT_MS 500
#define CONNECTED_FAILS_DOWN 3
#define PURGE_WAIT_MS        5000

/* Shared by the waiter and the delivery-report callback; the last of the
 * two to let go frees it, so a waiter that gave up early is safe. */
struct ss_kafka_delivery {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    int done;
    rd_kafka_resp_err_t err;
};

struct ss_kafka_producer {
    rd_kafka_t *rk;
    pthread_t thread;
    int thread_started;
    atomic_int stop;
    atomic_long inflight;        /* produced, delivery report not yet served */
    atomic_llong inflight_bytes; /* their keys and values */
    int queue_full_wait_ms;      /* < 0: do not wait */
    ss_kafka_report_fn on_report;
    void *report_ud;
    pthread_mutex_t conn_mu; /* with conn_cv: the check thread's sleep */
    pthread_cond_t conn_cv;
    pthread_t conn_thread;
    int conn_thread_started;
    atomic_int conn_ok;
    ss_histogram_t *latency;
    size_t max_payload; /* message.max.bytes - SS_KAFKA_MESSAGE_HEADROOM */
};

static void delivery_free(ss_kafka_delivery_t *d) {
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

static void delivery_unref(ss_kafka_delivery_t *d) {
    pthread_mutex_lock(&d->mu);
    int left = --d->refs;
    pthread_mutex_unlock(&d->mu);
    if (left == 0)
        delivery_free(d);
}

static ss_kafka_delivery_t *delivery_new(void) {
    ss_kafka_delivery_t *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, &attr);
    pthread_condattr_destroy(&attr);
    d->refs = 2; /* the waiter and the delivery report */
    return d;
}

static void topic_labels(const char *topic, char *buf, size_t size) {
    snprintf(buf, size, "topic=\"%s\"", topic);
}

/* The reason label of a failed message: see ss_kafka_report_t. */
static const char *report_reason(rd_kafka_resp_err_t err, char *buf, size_t size) {
    switch (err) {
    case RD_KAFKA_RESP_ERR__QUEUE_FULL: return "queue_full";
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT: return "timeout";
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT: return "shutdown";
    default: break;
    }
    const char *name = rd_kafka_err2name(err);
    while (*name == '_')
        name++;
    size_t n = 0;
    for (; name[n] && n + 1 < size; n++)
        buf[n] = (char)tolower((unsigned char)name[n]);
    buf[n] = '\0';
    return n ? buf : "unknown";
}

static void report(ss_kafka_producer_t *p, const char *topic, const void *key, size_t keylen,
                   const void *value, size_t valuelen, rd_kafka_resp_err_t err) {
    if (!p->on_report)
        return;
    char buf[64];
    ss_kafka_report_t r = {.topic = topic,
                           .key = key,
                           .keylen = key ? keylen : 0,
                           .value = value,
                           .valuelen = value ? valuelen : 0,
                           .reason = err ? report_reason(err, buf, sizeof buf) : NULL,
                           .error = err ? rd_kafka_err2str(err) : NULL};
    p->on_report(p->report_ud, &r);
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque) {
    (void)rk;
    ss_kafka_producer_t *p = opaque;
    const char *topic = msg->rkt ? rd_kafka_topic_name(msg->rkt) : "unknown";
    char labels[300];
    topic_labels(topic, labels, sizeof(labels));

    if (msg->err) {
        ss_counter_inc(ss_counter("kafka_delivery_failed_total",
                                  "Messages the broker did not acknowledge", labels));
        ss_log_kv(SS_LOG_WARN, "kafka delivery failed", "topic", topic, "error",
                  rd_kafka_err2str(msg->err), NULL);
    } else {
        ss_counter_inc(
            ss_counter("kafka_produced_total", "Messages acknowledged by the broker", labels));
        int64_t lat = rd_kafka_message_latency(msg);
        if (lat >= 0 && p->latency)
            ss_histogram_observe(p->latency, (double)lat / 1e6);
    }

    ss_kafka_delivery_t *d = msg->_private;
    if (d) {
        pthread_mutex_lock(&d->mu);
        d->err = msg->err;
        d->done = 1;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
        delivery_unref(d);
    }
    report(p, topic, msg->key, msg->key_len, msg->payload, msg->len, msg->err);
    atomic_fetch_sub(&p->inflight_bytes, (long long)(msg->len + msg->key_len));
    atomic_fetch_sub(&p->inflight, 1);
}

static void *poll_thread(void *arg) {
    ss_kafka_producer_t *p = arg;
    while (!atomic_load(&p->stop))
        rd_kafka_poll(p->rk, 100);
    return NULL;
}

static void *conn_thread(void *arg) {
    ss_kafka_producer_t *p = arg;
    int fails = 0;
    while (!atomic_load(&p->stop)) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(p->rk, 0, NULL, &md, CONNECTED_TIMEOUT_MS);
        int ok = err == RD_KAFKA_RESP_ERR_NO_ERROR && md && md->broker_cnt > 0;
        if (md)
            rd_kafka_metadata_destroy(md);
        fails = ok ? 0 : fails + 1;
        if (ok)
            atomic_store(&p->conn_ok, 1);
        else if (fails >= CONNECTED_FAILS_DOWN)
            atomic_store(&p->conn_ok, 0);
        pthread_mutex_lock(&p->conn_mu);
        if (!atomic_load(&p->stop)) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += CONNECTED_EVERY_MS / 1000;
            pthread_cond_timedwait(&p->conn_cv, &p->conn_mu, &until);
        }
        pthread_mutex_unlock(&p->conn_mu);
    }
    return NULL;
}

ss_kafka_producer_t *ss_kafka_producer_new(const ss_kafka_producer_opts_t *opts, char *errstr,
                                           size_t errstr_size) {
    if (!opts || !opts->bootstrap || !*opts->bootstrap) {
        snprintf(errstr, errstr_size, "kafka producer: no bootstrap servers");
        return NULL;
    }
    ss_kafka_producer_t *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->conn_mu, NULL);
    pthread_cond_init(&p->conn_cv, NULL);
    p->queue_full_wait_ms = opts->queue_full_wait_ms == 0  ? QUEUE_FULL_RETRY_MS
                            : opts->queue_full_wait_ms < 0 ? -1
                                                           : opts->queue_full_wait_ms;
    p->on_report = opts->on_report;
    p->report_ud = opts->report_ud;
    p->latency = ss_histogram("kafka_produce_latency_seconds",
                              "Time from produce to broker acknowledgement", NULL, NULL, 0);
    /* Exported from the start (at 0), so that alerts and boards see the
     * family before the first failure; real series are per topic. */
    ss_counter("kafka_delivery_failed_total", "Messages the broker did not acknowledge",
               "topic=\"none\"");

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (ss_kafka_conf_set1(conf, "bootstrap.servers", opts->bootstrap, errstr, errstr_size) < 0 ||
        ss_kafka_conf_set1(conf, "client.id", opts->client_id ? opts->client_id : "shipstream",
                           errstr, errstr_size) < 0 ||
        ss_kafka_conf_set1(conf, "enable.idempotence", "true", errstr, errstr_size) < 0 ||
        ss_kafka_conf_set1(conf, "acks", "all", errstr, errstr_size) < 0 ||
        /* Callers wait for acks: Nagle would hold small requests back
         * (measured on the webhook receiver: p99 89 ms -> 37 ms). */
        ss_kafka_conf_set1(conf, "socket.nagle.disable", "true", errstr, errstr_size) < 0 ||
        ss_kafka_conf_set1(conf, "message.max.bytes", SS_KAFKA_STR(SS_KAFKA_MAX_MESSAGE_BYTES),
                           errstr, errstr_size) < 0 ||
        ss_kafka_conf_apply(conf, opts->overrides, errstr, errstr_size) < 0 ||
        ss_kafka_conf_from_env(conf, errstr, errstr_size) < 0)
        goto fail;
    {
        char mmb[32];
        size_t n = sizeof(mmb);
        long long v = 0;
        if (rd_kafka_conf_get(conf, "message.max.bytes", mmb, &n) == RD_KAFKA_CONF_OK)
            v = atoll(mmb);
        p->max_payload = v > 2 * SS_KAFKA_MESSAGE_HEADROOM ? (size_t)(v - SS_KAFKA_MESSAGE_HEADROOM)
                         : v > 0                           ? (size_t)v / 2
                                                           : 0;
    }
    ss_kafka_conf_logging(conf);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_opaque(conf, p);

    char err[512];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!p->rk) {
        snprintf(errstr, errstr_size, "kafka producer: %s", err);
        goto fail;
    }
    conf = NULL; /* now owned by rk */

    if (pthread_create(&p->thread, NULL, poll_thread, p) != 0) {
        snprintf(errstr, errstr_size, "kafka producer: cannot start poll thread");
        goto fail;
    }
    p->thread_started = 1;
    if (pthread_create(&p->conn_thread, NULL, conn_thread, p) != 0) {
        snprintf(errstr, errstr_size, "kafka producer: cannot start connection check thread");
        atomic_store(&p->stop, 1);
        pthread_join(p->thread, NULL);
        goto fail;
    }
    p->conn_thread_started = 1;
    return p;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (p->rk)
        rd_kafka_destroy(p->rk);
    pthread_cond_destroy(&p->conn_cv);
    pthread_mutex_destroy(&p->conn_mu);
    free(p);
    return NULL;
}

int ss_kafka_producer_send(ss_kafka_producer_t *p, const char *topic, const void *key,
                           size_t keylen, const void *value, size_t valuelen,
                           const ss_kafka_header_t *headers, size_t nheaders,
                           ss_kafka_delivery_t **wait, char *errstr, size_t errstr_size) {
    ss_kafka_delivery_t *d = NULL;
    rd_kafka_headers_t *hdrs = NULL;
    if (wait)
        *wait = NULL;
    if (!p || !topic || !*topic) {
        snprintf(errstr, errstr_size, "kafka produce: no producer or topic");
        return -1;
    }
    if (wait && !(d = delivery_new())) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }

    int64_t deadline = ss_time_mono_usec() + (int64_t)p->queue_full_wait_ms * 1000;
    long long bytes = (long long)((key ? keylen : 0) + (value ? valuelen : 0));
    rd_kafka_resp_err_t err;
    for (;;) {
        if (nheaders > 0) {
            hdrs = rd_kafka_headers_new(nheaders);
            for (size_t i = 0; i < nheaders; i++)
                rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value,
                                    (ssize_t)headers[i].size);
        }
        atomic_fetch_add(&p->inflight, 1);
        atomic_fetch_add(&p->inflight_bytes, bytes);
        err =
            rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key ? keylen : 0),
                              RD_KAFKA_V_VALUE((void *)value, value ? valuelen : 0),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(d),
                              RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (!err) {
            hdrs = NULL; /* now owned by the message */
            break;
        }
        atomic_fetch_sub(&p->inflight_bytes, bytes);
        atomic_fetch_sub(&p->inflight, 1);
        if (hdrs) {
            rd_kafka_headers_destroy(hdrs);
            hdrs = NULL;
        }
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || p->queue_full_wait_ms < 0 ||
            ss_time_mono_usec() >= deadline)
            break;
        rd_kafka_poll(p->rk, 50); /* serve delivery reports to make room */
    }

    if (err) {
        snprintf(errstr, errstr_size, "kafka produce to %s: %s", topic, rd_kafka_err2str(err));
        report(p, topic, key, keylen, value, valuelen, err);
        if (d) /* never shared: no report will come */
            delivery_free(d);
        return -1;
    }
    if (wait)
        *wait = d;
    return 0;
}

int ss_kafka_delivery_wait(ss_kafka_delivery_t *d, int timeout_ms, char *errstr,
                           size_t errstr_size) {
    return ss_kafka_delivery_wait_err(d, timeout_ms, NULL, errstr, errstr_size);
}

int ss_kafka_err_is_refusal(rd_kafka_resp_err_t err) {
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case RD_KAFKA_RESP_ERR__FATAL: return 1;
    default: return 0;
    }
}

int ss_kafka_delivery_wait_err(ss_kafka_delivery_t *d, int timeout_ms, rd_kafka_resp_err_t *code,
                               char *errstr, size_t errstr_size) {
    if (code)
        *code = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (!d) {
        snprintf(errstr, errstr_size, "no delivery handle");
        return -1;
    }
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (timeout_ms > 0) {
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }

    pthread_mutex_lock(&d->mu);
    while (!d->done) {
        int rc;
        if (timeout_ms < 0) {
            rc = pthread_cond_wait(&d->cv, &d->mu);
        } else {
            rc = pthread_cond_timedwait(&d->cv, &d->mu, &deadline);
        }
        if (rc == ETIMEDOUT)
            break;
    }
    int done = d->done;
    rd_kafka_resp_err_t err = d->err;
    pthread_mutex_unlock(&d->mu);
    delivery_unref(d);

    if (!done) {
        snprintf(errstr, errstr_size, "kafka delivery: no acknowledgement within %d ms",
                 timeout_ms);
        if (code)
            *code = RD_KAFKA_RESP_ERR__TIMED_OUT;
        return -2;
    }
    if (code)
        *code = err;
    if (err) {
        snprintf(errstr, errstr_size, "kafka delivery failed: %s", rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

int ss_kafka_producer_outq_len(ss_kafka_producer_t *p) {
    return p ? (int)atomic_load(&p->inflight) : 0;
}

size_t ss_kafka_producer_max_payload(ss_kafka_producer_t *p) {
    return p ? p->max_payload : 0;
}

int64_t ss_kafka_producer_outq_bytes(ss_kafka_producer_t *p) {
    return p ? (int64_t)atomic_load(&p->inflight_bytes) : 0;
}

int ss_kafka_producer_connected(ss_kafka_producer_t *p) {
    return p && atomic_load(&p->conn_ok);
}

int ss_kafka_producer_close(ss_kafka_producer_t *p, int timeout_ms) {
    if (!p)
        return 0;
    atomic_store(&p->stop, 1);
    if (p->conn_thread_started) {
        pthread_mutex_lock(&p->conn_mu);
        pthread_cond_signal(&p->conn_cv);
        pthread_mutex_unlock(&p->conn_mu);
        pthread_join(p->conn_thread, NULL);
    }
    if (p->thread_started)
        pthread_join(p->thread, NULL);
    rd_kafka_flush(p->rk, timeout_ms < 0 ? 0 : timeout_ms);
    int left = (int)atomic_load(&p->inflight);
    if (left > 0) {
        ss_log(SS_LOG_WARN, "kafka producer closing with %d undelivered message(s)", left);
        /* Fail what is left so that every delivery report (and every
         * waiter's handle) is served before the handle goes away. */
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        int64_t deadline = ss_time_mono_usec() + (int64_t)PURGE_WAIT_MS * 1000;
        while (atomic_load(&p->inflight) > 0 && ss_time_mono_usec() < deadline)
            rd_kafka_poll(p->rk, 50);
    } else {
        ss_log(SS_LOG_INFO, "kafka producer flushed");
    }
    rd_kafka_destroy(p->rk);
    pthread_cond_destroy(&p->conn_cv);
    pthread_mutex_destroy(&p->conn_mu);
    free(p);
    return left;
}

rd_kafka_t *ss_kafka_producer_handle(ss_kafka_producer_t *p) {
    return p ? p->rk : NULL;
}
