/* The event envelope: the one writer, the parser, the routing rule (see
 * envelope/envelope.h).  Works on spans checked by the strict scanner
 * (json_scan.c); no json-c. */
#include <envelope/envelope.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <common/sstime.h>
#include <common/util.h>

_Static_assert(SS_ENVELOPE_MAX_DEPTH <= SS_JSON_MAX_DEPTH,
               "the scanner must read as deep as the envelope may nest");

static const char *const topic_suffixes[SS_TOPIC__COUNT] = {
    "shipments", "trackers", "addresses", "batches", "events", "dlq",
};

const char *ss_topic_suffix(ss_topic_t t) {
    if ((int)t < 0 || t >= SS_TOPIC__COUNT)
        return NULL;
    return topic_suffixes[t];
}

int ss_topic_name(const char *prefix, ss_topic_t t, char *buf, size_t bufsize) {
    const char *suffix = ss_topic_suffix(t);
    if (!suffix || !buf || bufsize == 0)
        return -1;
    if (!prefix)
        prefix = SS_TOPIC_DEFAULT_PREFIX;
    int n = snprintf(buf, bufsize, "%s%s", prefix, suffix);
    if (n < 0 || (size_t)n >= bufsize) {
        buf[0] = '\0';
        return -1;
    }
    return 0;
}

static const char *const source_names[SS_SOURCE__COUNT] = {
    "gateway",
    "webhook",
    "backfill",
    "reconcile",
};

const char *ss_source_name(ss_source_t s) {
    if ((int)s < 0 || s >= SS_SOURCE__COUNT)
        return NULL;
    return source_names[s];
}

const char *ss_envelope_err_name(ss_envelope_err_t err) {
    switch (err) {
    case SS_ENVELOPE_OK: return "ok";
    case SS_ENVELOPE_ERR_JSON: return "json";
    case SS_ENVELOPE_ERR_SCHEMA: return "schema";
    case SS_ENVELOPE_ERR_VERSION: return "version";
    case SS_ENVELOPE_ERR_OBJECT: return "object";
    case SS_ENVELOPE_ERR_ARG: return "arg";
    case SS_ENVELOPE_ERR_NOMEM: return "nomem";
    }
    return "unknown";
}

void ss_envelope_clear(ss_envelope_t *e) {
    if (e)
        memset(e, 0, sizeof(*e));
}

void ss_envelope_msg_clear(ss_envelope_msg_t *m) {
    if (!m)
        return;
    free(m->value);
    memset(m, 0, sizeof(*m));
}

/* A string member decoded into dst: its length, -1 when absent, not a
 * string or holding \u0000, -2 when longer than dst. */
static int field(ss_json_span_t v, char *dst, size_t dstsize) {
    dst[0] = '\0';
    if (v.p == NULL)
        return -1;
    return ss_json_string(v, dst, dstsize);
}

static int is_null(ss_json_span_t v) {
    return v.p == NULL || (v.len == 4 && memcmp(v.p, "null", 4) == 0);
}

/* ---- routing ---- */

int ss_envelope_route(const char *object_type, const char *object_id, ss_json_span_t object,
                      ss_topic_t *topic, char *key, size_t keysize) {
    int own_id = 1; /* Shipment, Address, Batch: keyed by their own id */
    if (strcmp(object_type, "Shipment") == 0) {
        *topic = SS_TOPIC_SHIPMENTS;
    } else if (strcmp(object_type, "Tracker") == 0) {
        *topic = SS_TOPIC_TRACKERS;
        own_id = 0;
    } else if (strcmp(object_type, "Address") == 0) {
        *topic = SS_TOPIC_ADDRESSES;
    } else if (strcmp(object_type, "Batch") == 0) {
        *topic = SS_TOPIC_BATCHES;
    } else {
        *topic = SS_TOPIC_EVENTS;
        own_id = 0;
    }
    if (!key || keysize == 0)
        return -1;
    int n;
    if (!own_id) {
        enum { K_SHIPMENT_ID, K_TRACKING_CODE, K__COUNT };
        static const char *const names[K__COUNT + 1] = {"shipment_id", "tracking_code", NULL};
        ss_json_span_t km[K__COUNT];
        ss_json_pick(object, names, km);
        if ((n = field(km[K_SHIPMENT_ID], key, keysize)) > 0)
            return n;
        if ((n = field(km[K_TRACKING_CODE], key, keysize)) > 0)
            return n;
    }
    size_t len = strlen(object_id);
    if (len == 0 || len >= keysize) {
        key[0] = '\0';
        return -1;
    }
    memcpy(key, object_id, len + 1);
    return (int)len;
}

ss_topic_t ss_envelope_topic(const ss_envelope_t *e) {
    ss_topic_t t;
    ss_envelope_route(e->object_type, e->object_id, e->object, &t, NULL, 0);
    return t;
}

/* ---- writing ---- */

/* Copies a header string into a fixed field: -1 when empty (and required)
 * or too long. */
static int copy_header(char *dst, size_t dstsize, const char *src, int required) {
    size_t n = src ? strlen(src) : 0;
    if ((required && n == 0) || n >= dstsize)
        return -1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

/* Checks a span a producer hands over (unless it says it did) and trims it
 * to its object.  SS_ENVELOPE_OK, or the error with *why. */
static ss_envelope_err_t checked_object(ss_json_span_t *s, int checked, const char **why) {
    if (s->p == NULL || s->len == 0) {
        *why = "missing";
        return SS_ENVELOPE_ERR_ARG;
    }
    if (!checked && ss_json_check(s->p, s->len, SS_ENVELOPE_SPAN_MAX_DEPTH, why) != 0)
        return SS_ENVELOPE_ERR_JSON;
    *s = ss_json_root(s->p, s->len);
    if (s->len == 0 || s->p[0] != '{') {
        *why = "not a JSON object";
        return SS_ENVELOPE_ERR_OBJECT;
    }
    return SS_ENVELOPE_OK;
}

enum { OB_OBJECT, OB_ID, OB_UPDATED_AT, OB__COUNT };
static const char *const object_names[OB__COUNT + 1] = {"object", "id", "updated_at", NULL};

ss_envelope_err_t ss_envelope_write(ss_envelope_msg_t *m, const ss_envelope_in_t *in, char *errstr,
                                    size_t errstr_size) {
    memset(m, 0, sizeof(*m));
    ss_envelope_t *e = &m->env;
    ss_envelope_err_t err = SS_ENVELOPE_ERR_ARG;
    const char *why = "";
    const char *source = ss_source_name(in->source);
    int webhook = in->source == SS_SOURCE_WEBHOOK;
    if (!source) {
        snprintf(errstr, errstr_size, "unknown source %d", (int)in->source);
        goto fail;
    }
    if (copy_header(e->type, sizeof(e->type), in->type, 1) < 0) {
        snprintf(errstr, errstr_size, "event type is empty or too long");
        goto fail;
    }
    if (copy_header(e->request_id, sizeof(e->request_id), in->request_id, 0) < 0) {
        snprintf(errstr, errstr_size, "request id is too long");
        goto fail;
    }
    if (in->event_id || webhook) {
        if (copy_header(e->event_id, sizeof(e->event_id), in->event_id, 1) < 0) {
            snprintf(errstr, errstr_size, "event id is missing, empty or too long");
            goto fail;
        }
    } else {
        ss_random_id("gwe_", e->event_id, sizeof(e->event_id));
    }
    e->schema_version = SS_ENVELOPE_SCHEMA_VERSION;
    e->source = in->source;
    e->received_at_usec = in->received_at_usec ? in->received_at_usec : ss_time_now_usec();

    ss_json_span_t event = {NULL, 0};
    if (webhook || in->event.p) {
        if (!webhook) {
            snprintf(errstr, errstr_size, "only a webhook carries an Event");
            goto fail;
        }
        event = in->event;
        if ((err = checked_object(&event, in->checked, &why)) != SS_ENVELOPE_OK) {
            snprintf(errstr, errstr_size, "the Event: %s", why);
            goto fail;
        }
    }
    ss_json_span_t object = in->object;
    if ((err = checked_object(&object, in->checked, &why)) != SS_ENVELOPE_OK) {
        snprintf(errstr, errstr_size, "object: %s", why);
        goto fail;
    }

    /* Identity of the object; a webhook's result gets the fallbacks. */
    err = SS_ENVELOPE_ERR_OBJECT;
    ss_json_span_t om[OB__COUNT];
    ss_json_pick(object, object_names, om);
    if (field(om[OB_OBJECT], e->object_type, sizeof(e->object_type)) <= 0) {
        if (!webhook) {
            snprintf(errstr, errstr_size, "object has no usable \"object\" string");
            goto fail;
        }
        memcpy(e->object_type, "Unknown", sizeof("Unknown"));
    }
    if (field(om[OB_ID], e->object_id, sizeof(e->object_id)) <= 0) {
        if (!webhook) {
            snprintf(errstr, errstr_size, "object has no usable \"id\" string");
            goto fail;
        }
        memcpy(e->object_id, e->event_id, sizeof(e->object_id));
    }
    ss_json_span_t updated = om[OB_UPDATED_AT];
    if (is_null(updated)) {
        updated = (ss_json_span_t){NULL, 0};
    } else {
        char buf[64];
        if (field(updated, buf, sizeof(buf)) <= 0 || ss_time_parse(buf, &e->updated_at_usec) != 0) {
            e->updated_at_usec = 0;
            updated = (ss_json_span_t){NULL, 0};
            if (!webhook) {
                snprintf(errstr, errstr_size, "object \"updated_at\" is not a timestamp");
                goto fail;
            }
        }
    }

    int n =
        ss_envelope_route(e->object_type, e->object_id, object, &m->topic, m->key, sizeof(m->key));
    if (n <= 0) {
        snprintf(errstr, errstr_size, "no usable message key");
        goto fail;
    }
    m->keylen = (size_t)n;

    char received[SS_TIME_BUFSIZE];
    if (ss_time_format(e->received_at_usec, received, sizeof(received)) == 0) {
        err = SS_ENVELOPE_ERR_ARG;
        snprintf(errstr, errstr_size, "received_at out of range");
        goto fail;
    }

    ss_buf_t b = {0};
    /* One allocation: the spans, plus the escaped header fields (at most six
     * bytes each for the ~480 bytes they can hold), plus the names. */
    int rc = ss_buf_reserve(&b, object.len + event.len + 3200);
    rc |= ss_buf_append(&b, "{\"schema_version\":1,\"event_id\":", 31);
    rc |= ss_buf_append_json_str(&b, e->event_id);
    rc |= ss_buf_append(&b, ",\"type\":", 8);
    rc |= ss_buf_append_json_str(&b, e->type);
    rc |= ss_buf_append(&b, ",\"source\":", 10);
    rc |= ss_buf_append_json_str(&b, source);
    rc |= ss_buf_append(&b, ",\"object_type\":", 15);
    rc |= ss_buf_append_json_str(&b, e->object_type);
    rc |= ss_buf_append(&b, ",\"object_id\":", 13);
    rc |= ss_buf_append_json_str(&b, e->object_id);
    rc |= ss_buf_append(&b, ",\"updated_at\":", 14);
    if (updated.p)
        rc |= ss_buf_append(&b, updated.p, updated.len); /* as EasyPost sent it */
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
    size_t object_at = b.len, event_at = 0;
    rc |= ss_buf_append(&b, object.p, object.len);
    if (event.p) {
        rc |= ss_buf_append(&b, ",\"event\":", 9);
        event_at = b.len;
        rc |= ss_buf_append(&b, "{", 1);
        ss_json_iter_t it;
        ss_json_span_t k, v;
        int first = 1;
        ss_json_iter_init(&it, event);
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
        rc |= ss_buf_append(&b, "}", 1);
    }
    size_t event_end = b.len;
    rc |= ss_buf_append(&b, "}", 1);
    if (rc != 0) {
        ss_buf_free(&b);
        err = SS_ENVELOPE_ERR_NOMEM;
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    m->value = b.data;
    m->value_len = b.len;
    e->object = (ss_json_span_t){m->value + object_at, object.len};
    if (event.p)
        e->event = (ss_json_span_t){m->value + event_at, event_end - event_at};
    return SS_ENVELOPE_OK;
fail:
    memset(m, 0, sizeof(*m));
    return err;
}

/* ---- parsing ---- */

enum {
    EN_SCHEMA_VERSION,
    EN_EVENT_ID,
    EN_TYPE,
    EN_SOURCE,
    EN_OBJECT_TYPE,
    EN_OBJECT_ID,
    EN_UPDATED_AT,
    EN_RECEIVED_AT,
    EN_REQUEST_ID,
    EN_OBJECT,
    EN_EVENT,
    EN__COUNT
};
static const char *const envelope_names[EN__COUNT + 1] = {
    "schema_version", "event_id",    "type",       "source", "object_type", "object_id",
    "updated_at",     "received_at", "request_id", "object", "event",       NULL};

/* A string member into dst.  nullable: absent or null gives "". */
static int parse_str(ss_json_span_t v, const char *key, char *dst, size_t dstsize, int nullable,
                     int allow_empty, char *errstr, size_t errstr_size) {
    dst[0] = '\0';
    if (is_null(v)) {
        if (nullable)
            return 0;
        snprintf(errstr, errstr_size, "missing \"%s\"", key);
        return -1;
    }
    if (v.p[0] != '"') {
        snprintf(errstr, errstr_size, "\"%s\" is not a string", key);
        return -1;
    }
    int n = ss_json_string(v, dst, dstsize);
    if (n == -1) {
        snprintf(errstr, errstr_size, "\"%s\" contains a NUL character", key);
        return -1;
    }
    if (n == -2) {
        dst[0] = '\0';
        snprintf(errstr, errstr_size, "\"%s\" is too long", key);
        return -1;
    }
    if (n == 0 && !allow_empty) {
        snprintf(errstr, errstr_size, "\"%s\" is empty", key);
        return -1;
    }
    return 0;
}

/* A timestamp member: a string ss_time_parse reads, or, when nullable,
 * null/absent (0). */
static int parse_time(ss_json_span_t v, const char *key, int nullable, int64_t *usec, char *errstr,
                      size_t errstr_size) {
    char buf[64];
    *usec = 0;
    if (is_null(v) && nullable)
        return 0;
    if (parse_str(v, key, buf, sizeof(buf), 0, 1, errstr, errstr_size) < 0)
        return -1;
    if (ss_time_parse(buf, usec) < 0) {
        snprintf(errstr, errstr_size, "\"%s\" is not a valid timestamp", key);
        return -1;
    }
    return 0;
}

/* An integer token: -?[0-9]+ (the scanner checked the rest). */
static int is_integer(ss_json_span_t v) {
    size_t i = v.len && v.p[0] == '-' ? 1 : 0;
    if (i >= v.len)
        return 0;
    for (; i < v.len; i++)
        if (v.p[i] < '0' || v.p[i] > '9')
            return 0;
    return 1;
}

ss_envelope_err_t ss_envelope_parse(ss_envelope_t *e, const char *buf, size_t len, char *errstr,
                                    size_t errstr_size) {
    memset(e, 0, sizeof(*e));
    const char *why = NULL;
    if (!buf || len == 0) {
        snprintf(errstr, errstr_size, "invalid JSON: empty envelope");
        return SS_ENVELOPE_ERR_JSON;
    }
    if (ss_json_check(buf, len, SS_ENVELOPE_MAX_DEPTH, &why) != 0) {
        snprintf(errstr, errstr_size, "invalid JSON: %s", why);
        return SS_ENVELOPE_ERR_JSON;
    }
    ss_json_span_t root = ss_json_root(buf, len);
    if (root.p[0] != '{') {
        snprintf(errstr, errstr_size, "envelope is not a JSON object");
        return SS_ENVELOPE_ERR_SCHEMA;
    }
    ss_json_span_t m[EN__COUNT];
    ss_json_pick(root, envelope_names, m);

    ss_json_span_t v = m[EN_SCHEMA_VERSION];
    if (is_null(v)) {
        snprintf(errstr, errstr_size, "missing \"schema_version\"");
        goto schema;
    }
    if (!is_integer(v)) {
        snprintf(errstr, errstr_size, "\"schema_version\" is not an integer");
        goto schema;
    }
    if (v.len != 1 || v.p[0] != '0' + SS_ENVELOPE_SCHEMA_VERSION) {
        snprintf(errstr, errstr_size, "unsupported schema_version %.*s (expected %d)",
                 v.len > 24 ? 24 : (int)v.len, v.p, SS_ENVELOPE_SCHEMA_VERSION);
        memset(e, 0, sizeof(*e));
        return SS_ENVELOPE_ERR_VERSION;
    }
    e->schema_version = SS_ENVELOPE_SCHEMA_VERSION;

    char source[16];
    if (parse_str(m[EN_EVENT_ID], "event_id", e->event_id, sizeof(e->event_id), 0, 0, errstr,
                  errstr_size) < 0 ||
        parse_str(m[EN_TYPE], "type", e->type, sizeof(e->type), 0, 0, errstr, errstr_size) < 0 ||
        parse_str(m[EN_OBJECT_TYPE], "object_type", e->object_type, sizeof(e->object_type), 0, 0,
                  errstr, errstr_size) < 0 ||
        parse_str(m[EN_OBJECT_ID], "object_id", e->object_id, sizeof(e->object_id), 0, 0, errstr,
                  errstr_size) < 0 ||
        parse_str(m[EN_SOURCE], "source", source, sizeof(source), 0, 0, errstr, errstr_size) < 0)
        goto schema;
    int s;
    for (s = 0; s < SS_SOURCE__COUNT; s++)
        if (strcmp(source, source_names[s]) == 0)
            break;
    if (s == SS_SOURCE__COUNT) {
        snprintf(errstr, errstr_size,
                 "\"source\" is none of \"gateway\", \"webhook\", \"backfill\", \"reconcile\"");
        goto schema;
    }
    e->source = (ss_source_t)s;

    if (parse_time(m[EN_UPDATED_AT], "updated_at", 1, &e->updated_at_usec, errstr, errstr_size) <
            0 ||
        parse_time(m[EN_RECEIVED_AT], "received_at", 0, &e->received_at_usec, errstr, errstr_size) <
            0 ||
        parse_str(m[EN_REQUEST_ID], "request_id", e->request_id, sizeof(e->request_id), 1, 1,
                  errstr, errstr_size) < 0)
        goto schema;

    v = m[EN_OBJECT];
    if (is_null(v)) {
        snprintf(errstr, errstr_size, "missing \"object\"");
        goto schema;
    }
    if (v.p[0] != '{') {
        snprintf(errstr, errstr_size, "\"object\" is not a JSON object");
        goto schema;
    }
    e->object = v;
    v = m[EN_EVENT];
    if (!is_null(v)) {
        if (v.p[0] != '{') {
            snprintf(errstr, errstr_size, "\"event\" is not a JSON object");
            goto schema;
        }
        e->event = v;
    }
    return SS_ENVELOPE_OK;
schema:
    memset(e, 0, sizeof(*e));
    return SS_ENVELOPE_ERR_SCHEMA;
}
