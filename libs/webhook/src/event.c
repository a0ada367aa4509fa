/* Verified webhook body -> envelope, topic, key (see webhook/event.h). */
#include <webhook/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <common/sstime.h>
#include <common/util.h>
#include <webhook/json_scan.h>

/* EasyPost objects nest a handful of levels (Event > result > tracking_details
 * > tracking_location); anything much deeper is not EasyPost's.  One level
 * under what the consumers read: the Event's other members move one level
 * down, into the envelope's "event" ("result" stays as deep, as "object"). */
#define EVENT_MAX_DEPTH (SS_ENVELOPE_MAX_DEPTH - 1)

ss_topic_t ss_webhook_event_route(const char *description, const char *object_type) {
    if (description == NULL)
        return SS_TOPIC_EVENTS;
    if (strncmp(description, "tracker.", 8) == 0 && object_type != NULL &&
        strcmp(object_type, "Tracker") == 0)
        return SS_TOPIC_TRACKERS;
    if (strncmp(description, "batch.", 6) == 0 && object_type != NULL &&
        strcmp(object_type, "Batch") == 0)
        return SS_TOPIC_BATCHES;
    return SS_TOPIC_EVENTS;
}

/* A string member decoded into dst: its length, -1 when absent, not a
 * string or holding \u0000, -2 when longer than dst. */
static int field(ss_json_span_t v, char *dst, size_t dstsize) {
    dst[0] = '\0';
    if (v.p == NULL)
        return -1;
    return ss_json_string(v, dst, dstsize);
}

/* The members named in names (NULL-terminated) of an object, into out[i]
 * ({NULL, 0} when absent); the last one wins on duplicates, as with json-c,
 * which the consumers parse the envelope with. */
static void pick_members(ss_json_span_t obj, const char *const *names, ss_json_span_t *out) {
    ss_json_iter_t it;
    ss_json_span_t k, v;
    size_t n = 0;
    while (names[n])
        out[n++] = (ss_json_span_t){NULL, 0};
    if (ss_json_iter_init(&it, obj) != 0)
        return;
    while (ss_json_iter_next(&it, &k, &v))
        for (size_t i = 0; i < n; i++)
            if (ss_json_key_is(k, names[i])) {
                out[i] = v;
                break;
            }
}

enum { EV_OBJECT, EV_ID, EV_DESCRIPTION, EV_RESULT, EV__COUNT };
static const char *const event_names[EV__COUNT + 1] = {"object", "id", "description", "result",
                                                       NULL};
enum { RS_OBJECT, RS_ID, RS_UPDATED_AT, RS_SHIPMENT_ID, RS_TRACKING_CODE, RS__COUNT };
static const char *const result_names[RS__COUNT + 1] = {
    "object", "id", "updated_at", "shipment_id", "tracking_code", NULL};

/* The message key: the shipment id when the result has one (its own id for
 * a Shipment; Addresses and Batches by their id), else its tracking code,
 * else its id — the rule of ss_envelope_key. */
static int pick_key(ss_webhook_event_t *ev, const ss_json_span_t *rm) {
    const char *t = ev->env.object_type;
    int n;
    if (strcmp(t, "Shipment") != 0 && strcmp(t, "Address") != 0 && strcmp(t, "Batch") != 0) {
        if ((n = field(rm[RS_SHIPMENT_ID], ev->key, sizeof(ev->key))) > 0)
            return n;
        if ((n = field(rm[RS_TRACKING_CODE], ev->key, sizeof(ev->key))) > 0)
            return n;
    }
    n = snprintf(ev->key, sizeof(ev->key), "%s", ev->env.object_id);
    return n > 0 && (size_t)n < sizeof(ev->key) ? n : -1;
}

/* The envelope (see envelope/envelope.h) written directly: the identity
 * fields, then the verified bytes of the result as "object" and of the
 * Event's other members as "event".  ss_envelope_parse reads it back. */
static int write_envelope(ss_webhook_event_t *ev, ss_json_span_t root, ss_json_span_t result,
                          ss_json_span_t updated_raw) {
    const ss_envelope_t *e = &ev->env;
    char received[SS_TIME_BUFSIZE];
    if (ss_time_format(e->received_at_usec, received, sizeof(received)) == 0)
        return -1;
    ss_buf_t b = {0};
    /* One allocation: the body, plus the escaped identity fields (at most
     * six bytes each for the ~400 bytes they can hold), plus the names. */
    int rc = ss_buf_reserve(&b, root.len + 3072);
    rc |= ss_buf_append(&b, "{\"schema_version\":1,\"event_id\":", 31);
    rc |= ss_buf_append_json_str(&b, e->event_id);
    rc |= ss_buf_append(&b, ",\"type\":", 8);
    rc |= ss_buf_append_json_str(&b, e->type);
    rc |= ss_buf_append(&b, ",\"source\":\"webhook\",\"object_type\":", 34);
    rc |= ss_buf_append_json_str(&b, e->object_type);
    rc |= ss_buf_append(&b, ",\"object_id\":", 13);
    rc |= ss_buf_append_json_str(&b, e->object_id);
    rc |= ss_buf_append(&b, ",\"updated_at\":", 14);
    if (e->updated_at_usec != 0)
        rc |= ss_buf_append(&b, updated_raw.p, updated_raw.len); /* as EasyPost sent it */
    else
        rc |= ss_buf_append(&b, "null", 4);
    rc |= ss_buf_append(&b, ",\"received_at\":", 15);
    rc |= ss_buf_append_json_str(&b, received);
    rc |= ss_buf_append(&b, ",\"request_id\":", 14);
    if (e->request_id[0])
        rc |= ss_buf_append_json_str(&b, e->request_id);
    else
        rc |= ss_buf_append(&b, "null", 4);
    rc |= ss_buf_append(&b, ",\"object\":", 10);
    rc |= ss_buf_append(&b, result.p, result.len);
    rc |= ss_buf_append(&b, ",\"event\":{", 10);
    ss_json_iter_t it;
    ss_json_span_t k, v;
    int first = 1;
    ss_json_iter_init(&it, root);
    while (ss_json_iter_next(&it, &k, &v)) {
        if (ss_json_key_is(k, "result"))
            continue;
        if (!first)
            rc |= ss_buf_append(&b, ",", 1);
        first = 0;
        rc |= ss_buf_append(&b, k.p, k.len);
        rc |= ss_buf_append(&b, ":", 1);
        rc |= ss_buf_append(&b, v.p, v.len);
    }
    rc |= ss_buf_append(&b, "}}", 2);
    if (rc != 0) {
        ss_buf_free(&b);
        return -1;
    }
    ev->value = b.data;
    ev->value_len = b.len;
    return 0;
}

int ss_webhook_event_parse(ss_webhook_event_t *ev, const char *body, size_t len,
                           const char *request_id, char *errstr, size_t errstr_size) {
    memset(ev, 0, sizeof(*ev));
    ss_envelope_t *e = &ev->env;
    const char *why = NULL;
    if (ss_json_check(body, len, EVENT_MAX_DEPTH, &why) != 0) {
        snprintf(errstr, errstr_size, "body is not JSON: %s", why);
        return -1;
    }
    ss_json_span_t root = ss_json_root(body, len);
    if (root.p[0] != '{') {
        snprintf(errstr, errstr_size, "not an EasyPost Event: not a JSON object");
        return -1;
    }
    ss_json_span_t em[EV__COUNT];
    pick_members(root, event_names, em);

    char otype[8];
    if (field(em[EV_OBJECT], otype, sizeof(otype)) < 0 || strcmp(otype, "Event") != 0) {
        snprintf(errstr, errstr_size, "not an EasyPost Event: \"object\" is not \"Event\"");
        goto fail;
    }
    int n = field(em[EV_ID], e->event_id, sizeof(e->event_id));
    if (n <= 0) {
        snprintf(errstr, errstr_size, "not an EasyPost Event: %s \"id\"",
                 n == -2 ? "too long an" : "missing");
        goto fail;
    }
    n = field(em[EV_DESCRIPTION], e->type, sizeof(e->type));
    if (n <= 0) {
        snprintf(errstr, errstr_size, "not an EasyPost Event: %s \"description\"",
                 n == -2 ? "too long a" : "missing");
        goto fail;
    }
    if (em[EV_RESULT].p == NULL || em[EV_RESULT].p[0] != '{') {
        snprintf(errstr, errstr_size, "not an EasyPost Event: \"result\" is not an object");
        goto fail;
    }
    if (request_id && snprintf(e->request_id, sizeof(e->request_id), "%s", request_id) >=
                          (int)sizeof(e->request_id)) {
        snprintf(errstr, errstr_size, "request id is too long");
        goto fail;
    }

    /* A verified result without "object"/"id", or with an unreadable
     * updated_at, is still carried — typed "Unknown", identified by the
     * event id, without updated_at — so that it lands on the events topic
     * instead of being refused and lost after EasyPost's retries. */
    ss_json_span_t rm[RS__COUNT];
    pick_members(em[EV_RESULT], result_names, rm);
    e->schema_version = SS_ENVELOPE_SCHEMA_VERSION;
    e->source = SS_SOURCE_WEBHOOK;
    if (field(rm[RS_OBJECT], e->object_type, sizeof(e->object_type)) <= 0)
        snprintf(e->object_type, sizeof(e->object_type), "Unknown");
    if (field(rm[RS_ID], e->object_id, sizeof(e->object_id)) <= 0)
        memcpy(e->object_id, e->event_id, sizeof(e->object_id));
    char updated[64];
    if (field(rm[RS_UPDATED_AT], updated, sizeof(updated)) <= 0 ||
        ss_time_parse(updated, &e->updated_at_usec) != 0)
        e->updated_at_usec = 0;
    e->received_at_usec = ss_time_now_usec();

    ev->topic = ss_webhook_event_route(e->type, e->object_type);
    n = pick_key(ev, rm);
    if (n <= 0) {
        snprintf(errstr, errstr_size, "not an EasyPost Event: no usable key");
        goto fail;
    }
    ev->keylen = (size_t)n;
    if (write_envelope(ev, root, em[EV_RESULT], rm[RS_UPDATED_AT]) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    return 0;
fail:
    ss_webhook_event_clear(ev);
    return -1;
}

void ss_webhook_event_clear(ss_webhook_event_t *ev) {
    if (ev == NULL)
        return;
    ss_envelope_clear(&ev->env);
    free(ev->value);
    memset(ev, 0, sizeof(*ev));
}
