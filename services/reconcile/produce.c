/* The one place shipstream-reconcile puts objects on Kafka: through the
 * envelope writer (ss_envelope_write), which also decides topic and key,
 * with source "backfill" or "reconcile". */
#include "reconcile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <common/log.h>
#include <common/metrics.h>
#include <envelope/envelope.h>

#define RC_MAX_PENDING 4096

struct rc_producer {
    ss_kafka_producer_t *kp;
    int owner; /* 0: a share of another handle's producer (rc_producer_share) */
    ss_kafka_delivery_t *pending[RC_MAX_PENDING];
    size_t npending;
};

rc_producer_t *rc_producer_new(int linger_ms, char *errstr, size_t errstr_size) {
    rc_producer_t *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    /* Pages of 100 objects of ~10 KB: batch them. */
    char linger[16];
    snprintf(linger, sizeof linger, "%d", linger_ms);
    const char *overrides[] = {"linger.ms", linger, "batch.size", "1000000", NULL};
    ss_kafka_producer_opts_t po = {
        .bootstrap = g_rc.kafka_bootstrap, .client_id = RC_PROG, .overrides = overrides};
    p->kp = ss_kafka_producer_new(&po, errstr, errstr_size);
    if (!p->kp) {
        free(p);
        return NULL;
    }
    p->owner = 1;
    return p;
}

rc_producer_t *rc_producer_share(rc_producer_t *owner, char *errstr, size_t errstr_size) {
    rc_producer_t *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    p->kp = owner->kp;
    return p;
}

_Static_assert(SS_EP_ITEM_MAX_DEPTH <= SS_ENVELOPE_SPAN_MAX_DEPTH,
               "a list entry the page parse checked is one the envelope writer takes as checked");

int rc_produce(rc_producer_t *p, const char *raw, size_t raw_len, int checked,
               const char *object_type, rc_source_t source, const char *request_id, char *errstr,
               size_t errstr_size) {
    if (p->npending == RC_MAX_PENDING) {
        snprintf(errstr, errstr_size, "too many unacknowledged messages");
        return -1;
    }
    const char *type = strcmp(object_type, "Tracker") == 0 ? "tracker.updated" : "shipment.updated";
    ss_envelope_in_t in = {
        .source = source == RC_SOURCE_BACKFILL ? SS_SOURCE_BACKFILL : SS_SOURCE_RECONCILE,
        .type = type,
        .request_id = request_id,
        /* EasyPost's bytes as they came: the page parse checked them, or the writer does */
        .object = {raw, raw_len},
        .checked = checked,
    };
    if (checked == 0) {
        const char *why = NULL;
        if (ss_json_check(raw, raw_len, SS_ENVELOPE_SPAN_MAX_DEPTH, &why) != 0) {
            snprintf(errstr, errstr_size, "not JSON: %s", why);
            return -1;
        }
        in.object = ss_json_root(raw, raw_len); /* without the whitespace around it */
        in.checked = 1;
    }
    ss_envelope_msg_t m;
    if (ss_envelope_write(&m, &in, errstr, errstr_size) != SS_ENVELOPE_OK)
        return -1;
    int rc =
        ss_kafka_producer_send(p->kp, g_rc.topics[m.topic], m.key, m.keylen, m.value, m.value_len,
                               NULL, 0, &p->pending[p->npending], errstr, errstr_size);
    if (rc == 0)
        p->npending++;
    ss_envelope_msg_clear(&m);
    return rc;
}

size_t rc_producer_pending(const rc_producer_t *p) {
    return p->npending;
}

/* A delivery error that waiting does not fix (ss_kafka_err_is_refusal), or
 * the producer out of order for good. */
static int refused_for_good(rc_producer_t *p, rd_kafka_resp_err_t code) {
    char fatal[64];
    return ss_kafka_err_is_refusal(code) ||
           rd_kafka_fatal_error(ss_kafka_producer_handle(p->kp), fatal, sizeof fatal) != 0;
}

int rc_producer_wait_first(rc_producer_t *p, size_t k, char *errstr, size_t errstr_size) {
    int failed = 0, refused = 0;
    char err[256];
    if (k > p->npending)
        k = p->npending;
    for (size_t i = 0; i < k; i++) {
        /* -1: until the delivery report, which comes within message.timeout.ms */
        rd_kafka_resp_err_t code;
        if (ss_kafka_delivery_wait_err(p->pending[i], -1, &code, err, sizeof err) != 0) {
            int r = refused_for_good(p, code);
            if (failed++ == 0 || (r && !refused))
                snprintf(errstr, errstr_size, "%s", err);
            refused |= r;
        }
        p->pending[i] = NULL;
    }
    memmove(p->pending, p->pending + k, (p->npending - k) * sizeof p->pending[0]);
    p->npending -= k;
    return refused ? RC_ACK_REFUSED : failed ? RC_ACK_FAILED : RC_ACK_OK;
}

int rc_producer_wait(rc_producer_t *p, char *errstr, size_t errstr_size) {
    return rc_producer_wait_first(p, p->npending, errstr, errstr_size);
}

int rc_producer_connected(rc_producer_t *p) {
    return p && ss_kafka_producer_connected(p->kp);
}

void rc_producer_free(rc_producer_t *p) {
    if (!p)
        return;
    char err[256];
    rc_producer_wait(p, err, sizeof err);
    if (p->owner) {
        int left = ss_kafka_producer_close(p->kp, 10000);
        if (left > 0)
            SS_ERROR("%d message(s) were not delivered to Kafka before exit", left);
    }
    free(p);
}
