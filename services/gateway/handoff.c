/* The gateway's hand-off to Kafka: what happened to every EasyPost object it
 * queued.  Acknowledged ones are counted; the ones that will never reach
 * Kafka (queue full, refused by the broker, still queued at shutdown) are
 * counted by reason and logged one line each with the object's id, so that
 * the reconciler's window (shipstream-reconcile) repairs them and an
 * operator can see which ones. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "common/log.h"
#include "common/metrics.h"
#include "gateway.h"

/* Envelopes are a few KiB; never parse more than this to find an id. */
#define GW_HANDOFF_PARSE_MAX (8u << 20)

static ss_counter_t *handed_off;
static ss_gauge_t *waiting, *waiting_bytes;

void gw_handoff_init(void) {
    handed_off = ss_counter("gateway_handoff_total",
                            "EasyPost objects acknowledged by Kafka (acks=all)", NULL);
    waiting = ss_gauge("gateway_handoff_waiting",
                       "EasyPost objects queued for Kafka, not yet acknowledged", NULL);
    waiting_bytes = ss_gauge("gateway_handoff_waiting_bytes",
                             "Bytes (keys and values) of the objects waiting for Kafka", NULL);
    static const char *const reasons[] = {"queue_full", "timeout", "shutdown"};
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "reason=\"%s\"", reasons[i]);
        ss_counter("gateway_handoff_dropped_total",
                   "EasyPost objects that will never reach Kafka, by reason (each logged with "
                   "its id; the reconciler repairs them)",
                   labels);
    }
}

void gw_handoff_tick(void) {
    ss_gauge_set(waiting, ss_kafka_producer_outq_len(g_gw.producer));
    ss_gauge_set(waiting_bytes, (double)ss_kafka_producer_outq_bytes(g_gw.producer));
}

/* Copies a string member of the envelope, or "" when absent. */
static void member(json_object *o, const char *name, char *buf, size_t size) {
    json_object *v = NULL;
    buf[0] = '\0';
    if (o && json_object_object_get_ex(o, name, &v) && json_object_is_type(v, json_type_string))
        snprintf(buf, size, "%s", json_object_get_string(v));
}

void gw_handoff_report(void *ud, const ss_kafka_report_t *r) {
    (void)ud;
    if (!r->reason) {
        ss_counter_inc(handed_off);
        return;
    }
    char labels[96];
    snprintf(labels, sizeof labels, "reason=\"%s\"", r->reason);
    ss_counter_inc(ss_counter("gateway_handoff_dropped_total",
                              "EasyPost objects that will never reach Kafka, by reason (each "
                              "logged with its id; the reconciler repairs them)",
                              labels));

    /* The ids, from the envelope itself (the only place that has them). */
    char object_id[128], object_type[64], type[64], event_id[128], key[256];
    json_object *env = NULL;
    if (r->value && r->valuelen > 0 && r->valuelen <= GW_HANDOFF_PARSE_MAX) {
        json_tokener *tok = json_tokener_new();
        if (tok) {
            env = json_tokener_parse_ex(tok, r->value, (int)r->valuelen);
            if (json_tokener_get_error(tok) != json_tokener_success ||
                !json_object_is_type(env, json_type_object)) {
                json_object_put(env);
                env = NULL;
            }
            json_tokener_free(tok);
        }
    }
    member(env, "object_id", object_id, sizeof object_id);
    member(env, "object_type", object_type, sizeof object_type);
    member(env, "type", type, sizeof type);
    member(env, "event_id", event_id, sizeof event_id);
    json_object_put(env);
    size_t kl = r->keylen < sizeof key - 1 ? r->keylen : sizeof key - 1;
    if (r->key)
        memcpy(key, r->key, kl);
    key[r->key ? kl : 0] = '\0';
    ss_log_kv(SS_LOG_WARN, "kafka hand-off dropped: the reconciler's window repairs it", "reason",
              r->reason, "object_id", object_id[0] ? object_id : "unknown", "object_type",
              object_type, "type", type, "event_id", event_id, "topic", r->topic ? r->topic : "",
              "key", key, "error", r->error ? r->error : "", NULL);
}
