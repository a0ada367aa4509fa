/* The event envelope: build, serialise, parse, validate; topic and key rules. */
#include <envelope/envelope.h>

#include <stdio.h>
#include <string.h>

#include <common/sstime.h>
#include <common/util.h>

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

void ss_envelope_clear(ss_envelope_t *e) {
    if (!e)
        return;
    if (e->object)
        json_object_put(e->object);
    if (e->event)
        json_object_put(e->event);
    memset(e, 0, sizeof(*e));
}

/* Copies src into a fixed field; -1 when it does not fit. */
static int copy_field(char *dst, size_t dstsize, const char *src) {
    size_t n = strlen(src);
    if (n >= dstsize)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

/* A borrowed string member, or NULL when absent or not a string. */
static const char *get_str(json_object *obj, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* Reads an object's updated_at: 0 when absent or null, -1 when unparseable. */
static int object_updated_at(json_object *obj, int64_t *usec) {
    json_object *v;
    *usec = 0;
    if (!json_object_object_get_ex(obj, "updated_at", &v) || v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return -1;
    return ss_time_parse(json_object_get_string(v), usec);
}

/* Fills object_type, object_id and updated_at from an EasyPost object.
 * lenient (a verified webhook's result): a result without "object" or "id",
 * or with an unreadable updated_at, is still carried — typed "Unknown",
 * identified by fallback_id, without updated_at — so that it lands on the
 * events topic instead of being refused and lost after EasyPost's retries. */
static int read_object_identity(ss_envelope_t *e, json_object *object, const char *what,
                                int lenient, const char *fallback_id, char *errstr,
                                size_t errstr_size) {
    if (!object || !json_object_is_type(object, json_type_object)) {
        snprintf(errstr, errstr_size, "%s is not a JSON object", what);
        return -1;
    }
    const char *otype = get_str(object, "object");
    const char *oid = get_str(object, "id");
    if (lenient) {
        if (!otype || !*otype || strlen(otype) >= sizeof(e->object_type))
            otype = "Unknown";
        if (!oid || !*oid || strlen(oid) >= sizeof(e->object_id))
            oid = fallback_id;
    }
    if (!otype || !*otype) {
        snprintf(errstr, errstr_size, "%s has no \"object\" string", what);
        return -1;
    }
    if (!oid || !*oid) {
        snprintf(errstr, errstr_size, "%s has no \"id\" string", what);
        return -1;
    }
    if (copy_field(e->object_type, sizeof(e->object_type), otype) < 0) {
        snprintf(errstr, errstr_size, "%s \"object\" is too long", what);
        return -1;
    }
    if (copy_field(e->object_id, sizeof(e->object_id), oid) < 0) {
        snprintf(errstr, errstr_size, "%s \"id\" is too long", what);
        return -1;
    }
    if (object_updated_at(object, &e->updated_at_usec) < 0) {
        if (lenient) {
            e->updated_at_usec = 0;
            return 0;
        }
        snprintf(errstr, errstr_size, "%s \"updated_at\" is not a timestamp", what);
        return -1;
    }
    return 0;
}

static int set_request_id(ss_envelope_t *e, const char *request_id, char *errstr,
                          size_t errstr_size) {
    if (request_id && copy_field(e->request_id, sizeof(e->request_id), request_id) < 0) {
        snprintf(errstr, errstr_size, "request id is too long");
        return -1;
    }
    return 0;
}

int ss_envelope_from_object(ss_envelope_t *e, const char *type, json_object *object,
                            const char *request_id, char *errstr, size_t errstr_size) {
    memset(e, 0, sizeof(*e));
    e->schema_version = SS_ENVELOPE_SCHEMA_VERSION;
    e->source = SS_SOURCE_GATEWAY;
    if (!type || !*type || copy_field(e->type, sizeof(e->type), type) < 0) {
        snprintf(errstr, errstr_size, "event type is empty or too long");
        goto fail;
    }
    if (read_object_identity(e, object, "object", 0, NULL, errstr, errstr_size) < 0)
        goto fail;
    if (set_request_id(e, request_id, errstr, errstr_size) < 0)
        goto fail;
    ss_random_id("gwe_", e->event_id, sizeof(e->event_id));
    e->received_at_usec = ss_time_now_usec();
    e->object = json_object_get(object);
    return 0;
fail:
    memset(e, 0, sizeof(*e));
    return -1;
}

int ss_envelope_from_event(ss_envelope_t *e, json_object *event, const char *request_id,
                           char *errstr, size_t errstr_size) {
    memset(e, 0, sizeof(*e));
    e->schema_version = SS_ENVELOPE_SCHEMA_VERSION;
    e->source = SS_SOURCE_WEBHOOK;
    if (!event || !json_object_is_type(event, json_type_object)) {
        snprintf(errstr, errstr_size, "event is not a JSON object");
        goto fail;
    }
    const char *otype = get_str(event, "object");
    if (!otype || strcmp(otype, "Event") != 0) {
        snprintf(errstr, errstr_size, "\"object\" is not \"Event\"");
        goto fail;
    }
    const char *id = get_str(event, "id");
    if (!id || !*id) {
        snprintf(errstr, errstr_size, "event has no \"id\" string");
        goto fail;
    }
    if (copy_field(e->event_id, sizeof(e->event_id), id) < 0) {
        snprintf(errstr, errstr_size, "event \"id\" is too long");
        goto fail;
    }
    const char *desc = get_str(event, "description");
    if (!desc || !*desc) {
        snprintf(errstr, errstr_size, "event has no \"description\" string");
        goto fail;
    }
    if (copy_field(e->type, sizeof(e->type), desc) < 0) {
        snprintf(errstr, errstr_size, "event \"description\" is too long");
        goto fail;
    }
    json_object *result;
    if (!json_object_object_get_ex(event, "result", &result) || !result) {
        snprintf(errstr, errstr_size, "event has no \"result\" object");
        goto fail;
    }
    if (read_object_identity(e, result, "event \"result\"", 1, e->event_id, errstr, errstr_size) <
        0)
        goto fail;
    if (set_request_id(e, request_id, errstr, errstr_size) < 0)
        goto fail;

    /* The Event without its result: a new object sharing the members. */
    json_object *meta = json_object_new_object();
    if (!meta) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    json_object_object_foreach(event, key, val) {
        if (strcmp(key, "result") == 0)
            continue;
        /* object_add steals a reference: give it one of its own. */
        if (json_object_object_add(meta, key, json_object_get(val)) != 0) {
            json_object_put(val);
            json_object_put(meta);
            snprintf(errstr, errstr_size, "out of memory");
            goto fail;
        }
    }
    e->event = meta;
    e->object = json_object_get(result);
    e->received_at_usec = ss_time_now_usec();
    return 0;
fail:
    ss_envelope_clear(e);
    return -1;
}

static int add_member(json_object *root, const char *key, json_object *val) {
    /* A NULL val is JSON null; otherwise a failed allocation. */
    return json_object_object_add(root, key, val);
}

static json_object *new_time(int64_t usec) {
    char buf[SS_TIME_BUFSIZE];
    if (ss_time_format(usec, buf, sizeof(buf)) == 0)
        return NULL;
    return json_object_new_string(buf);
}

char *ss_envelope_serialize(const ss_envelope_t *e, size_t *len) {
    char *out = NULL;
    json_object *root = json_object_new_object();
    if (!root)
        return NULL;

    /* updated_at as EasyPost sent it when the object still carries it. */
    json_object *updated = NULL;
    if (e->updated_at_usec != 0) {
        int64_t usec;
        const char *raw = e->object ? get_str(e->object, "updated_at") : NULL;
        if (raw && ss_time_parse(raw, &usec) == 0 && usec == e->updated_at_usec)
            updated = json_object_new_string(raw);
        else
            updated = new_time(e->updated_at_usec);
        if (!updated)
            goto done;
    }
    json_object *received = new_time(e->received_at_usec);
    if (!received) {
        json_object_put(updated);
        goto done;
    }

    int rc = 0;
    rc |= add_member(root, "schema_version", json_object_new_int(e->schema_version));
    rc |= add_member(root, "event_id", json_object_new_string(e->event_id));
    rc |= add_member(root, "type", json_object_new_string(e->type));
    rc |=
        add_member(root, "source",
                   json_object_new_string(e->source == SS_SOURCE_WEBHOOK ? "webhook" : "gateway"));
    rc |= add_member(root, "object_type", json_object_new_string(e->object_type));
    rc |= add_member(root, "object_id", json_object_new_string(e->object_id));
    rc |= add_member(root, "updated_at", updated);
    rc |= add_member(root, "received_at", received);
    rc |= add_member(root, "request_id",
                     e->request_id[0] ? json_object_new_string(e->request_id) : NULL);
    rc |= add_member(root, "object", e->object ? json_object_get(e->object) : NULL);
    if (e->event)
        rc |= add_member(root, "event", json_object_get(e->event));
    if (rc != 0)
        goto done;

    size_t n;
    const char *s = json_object_to_json_string_length(
        root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    if (!s)
        goto done;
    out = strndup(s, n); /* s belongs to root */
    if (out && len)
        *len = n;
done:
    json_object_put(root);
    return out;
}

/* Required string member copied into dst. */
static int parse_str(json_object *root, const char *key, char *dst, size_t dstsize, int allow_empty,
                     char *errstr, size_t errstr_size) {
    json_object *v;
    if (!json_object_object_get_ex(root, key, &v) || !v) {
        snprintf(errstr, errstr_size, "missing \"%s\"", key);
        return -1;
    }
    if (!json_object_is_type(v, json_type_string)) {
        snprintf(errstr, errstr_size, "\"%s\" is not a string", key);
        return -1;
    }
    const char *s = json_object_get_string(v);
    if ((size_t)json_object_get_string_len(v) != strlen(s)) {
        snprintf(errstr, errstr_size, "\"%s\" contains a NUL character", key);
        return -1;
    }
    if (!allow_empty && !*s) {
        snprintf(errstr, errstr_size, "\"%s\" is empty", key);
        return -1;
    }
    if (copy_field(dst, dstsize, s) < 0) {
        snprintf(errstr, errstr_size, "\"%s\" is too long", key);
        return -1;
    }
    return 0;
}

/* Timestamp member: string (parsed) or, when nullable, null/absent (0). */
static int parse_time(json_object *root, const char *key, int nullable, int64_t *usec, char *errstr,
                      size_t errstr_size) {
    json_object *v = NULL;
    int present = json_object_object_get_ex(root, key, &v);
    *usec = 0;
    if (!present && !nullable) {
        snprintf(errstr, errstr_size, "missing \"%s\"", key);
        return -1;
    }
    if (!v) {
        if (nullable)
            return 0;
        snprintf(errstr, errstr_size, "\"%s\" is null", key);
        return -1;
    }
    if (!json_object_is_type(v, json_type_string)) {
        snprintf(errstr, errstr_size, "\"%s\" is not a string", key);
        return -1;
    }
    if (ss_time_parse(json_object_get_string(v), usec) < 0) {
        snprintf(errstr, errstr_size, "\"%s\" is not a valid timestamp", key);
        return -1;
    }
    return 0;
}

/* json-c's strict mode still accepts 'single-quoted' strings: a quote
 * outside a double-quoted string is never JSON. */
static int has_single_quote(const char *buf, size_t len) {
    int in_str = 0, esc = 0;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '\'') {
            return 1;
        }
    }
    return 0;
}

int ss_envelope_parse(ss_envelope_t *e, const char *buf, size_t len, char *errstr,
                      size_t errstr_size) {
    json_object *root = NULL;
    memset(e, 0, sizeof(*e));
    if (!buf || len == 0) {
        snprintf(errstr, errstr_size, "empty envelope");
        return -1;
    }
    if (len > (size_t)INT32_MAX) {
        snprintf(errstr, errstr_size, "envelope too large");
        return -1;
    }

    if (has_single_quote(buf, len)) {
        snprintf(errstr, errstr_size, "invalid JSON: single-quoted string");
        return -1;
    }

    json_tokener *tok = json_tokener_new_ex(SS_ENVELOPE_MAX_DEPTH);
    if (!tok) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    root = json_tokener_parse_ex(tok, buf, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (jerr != json_tokener_success || !root) {
        if (jerr == json_tokener_continue)
            snprintf(errstr, errstr_size, "invalid JSON: unexpected end of input");
        else
            snprintf(errstr, errstr_size, "invalid JSON: %s", json_tokener_error_desc(jerr));
        goto fail;
    }
    for (; end < len; end++) {
        char c = buf[end];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            snprintf(errstr, errstr_size, "invalid JSON: trailing data after the value");
            goto fail;
        }
    }
    if (!json_object_is_type(root, json_type_object)) {
        snprintf(errstr, errstr_size, "envelope is not a JSON object");
        goto fail;
    }

    json_object *v;
    if (!json_object_object_get_ex(root, "schema_version", &v) || !v) {
        snprintf(errstr, errstr_size, "missing \"schema_version\"");
        goto fail;
    }
    if (!json_object_is_type(v, json_type_int)) {
        snprintf(errstr, errstr_size, "\"schema_version\" is not an integer");
        goto fail;
    }
    int64_t ver = json_object_get_int64(v);
    if (ver != SS_ENVELOPE_SCHEMA_VERSION) {
        snprintf(errstr, errstr_size, "unsupported schema_version %lld (expected %d)",
                 (long long)ver, SS_ENVELOPE_SCHEMA_VERSION);
        goto fail;
    }
    e->schema_version = (int)ver;

    if (parse_str(root, "event_id", e->event_id, sizeof(e->event_id), 0, errstr, errstr_size) < 0 ||
        parse_str(root, "type", e->type, sizeof(e->type), 0, errstr, errstr_size) < 0 ||
        parse_str(root, "object_type", e->object_type, sizeof(e->object_type), 0, errstr,
                  errstr_size) < 0 ||
        parse_str(root, "object_id", e->object_id, sizeof(e->object_id), 0, errstr, errstr_size) <
            0)
        goto fail;

    char source[16];
    if (parse_str(root, "source", source, sizeof(source), 0, errstr, errstr_size) < 0)
        goto fail;
    if (strcmp(source, "gateway") == 0) {
        e->source = SS_SOURCE_GATEWAY;
    } else if (strcmp(source, "webhook") == 0) {
        e->source = SS_SOURCE_WEBHOOK;
    } else {
        snprintf(errstr, errstr_size, "\"source\" is neither \"gateway\" nor \"webhook\"");
        goto fail;
    }

    if (parse_time(root, "updated_at", 1, &e->updated_at_usec, errstr, errstr_size) < 0 ||
        parse_time(root, "received_at", 0, &e->received_at_usec, errstr, errstr_size) < 0)
        goto fail;

    if (json_object_object_get_ex(root, "request_id", &v) && v) {
        if (parse_str(root, "request_id", e->request_id, sizeof(e->request_id), 1, errstr,
                      errstr_size) < 0)
            goto fail;
    }

    if (!json_object_object_get_ex(root, "object", &v) || !v) {
        snprintf(errstr, errstr_size, "missing \"object\"");
        goto fail;
    }
    if (!json_object_is_type(v, json_type_object)) {
        snprintf(errstr, errstr_size, "\"object\" is not a JSON object");
        goto fail;
    }
    e->object = json_object_get(v);

    if (json_object_object_get_ex(root, "event", &v) && v) {
        if (!json_object_is_type(v, json_type_object)) {
            snprintf(errstr, errstr_size, "\"event\" is not a JSON object");
            goto fail;
        }
        e->event = json_object_get(v);
    }

    json_object_put(root);
    return 0;
fail:
    if (root)
        json_object_put(root);
    ss_envelope_clear(e);
    return -1;
}

ss_topic_t ss_envelope_topic(const ss_envelope_t *e) {
    if (strcmp(e->object_type, "Shipment") == 0)
        return SS_TOPIC_SHIPMENTS;
    if (strcmp(e->object_type, "Tracker") == 0)
        return SS_TOPIC_TRACKERS;
    if (strcmp(e->object_type, "Address") == 0)
        return SS_TOPIC_ADDRESSES;
    if (strcmp(e->object_type, "Batch") == 0)
        return SS_TOPIC_BATCHES;
    return SS_TOPIC_EVENTS;
}

static int put_key(const char *s, char *buf, size_t bufsize) {
    size_t n = strlen(s);
    if (n == 0 || n >= bufsize)
        return -1;
    memcpy(buf, s, n + 1);
    return (int)n;
}

int ss_envelope_key(const ss_envelope_t *e, char *buf, size_t bufsize) {
    if (!buf || bufsize == 0)
        return -1;
    buf[0] = '\0';
    const char *t = e->object_type;
    if (strcmp(t, "Shipment") == 0 || strcmp(t, "Address") == 0 || strcmp(t, "Batch") == 0)
        return put_key(e->object_id, buf, bufsize);
    if (e->object) {
        const char *s = get_str(e->object, "shipment_id");
        if (s && *s)
            return put_key(s, buf, bufsize);
        s = get_str(e->object, "tracking_code");
        if (s && *s)
            return put_key(s, buf, bufsize);
    }
    return put_key(e->object_id, buf, bufsize);
}
