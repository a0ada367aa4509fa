/* Rolling upgrade: envelopes already in Kafka, written by the writers this
 * version replaced (tests/fixtures/envelopes/v1: the gateway's json-c
 * writer, the receiver's byte splicer, the sync generator's snprintf), are
 * read by the new parser field for field as json-c reads them, route to the
 * same key, and map to exactly the rows the old mapping made
 * (mapped-before.tsv, recorded with the old code; one line per cell: fixture,
 * table, row, column NAME, value).  The deliberate changes since:
 *   - the consumer's rule: a webhook Event is now also recorded in
 *     easypost_events (one row, its event id) when its object has a table of
 *     its own;
 *   - migration 0005 (write each fact once): rates, parcels and tracking
 *     events keep no raw copy of their own (their parent's raw holds them:
 *     the columns are gone), and an address embedded in a shipment is stored
 *     with raw NULL (its shipment's raw holds it; an address from the
 *     addresses topic keeps its raw);
 *   - migration 0006 (issue 16): Refund, ScanForm, Pickup, Insurance objects
 *     get tables of their own and a Refund marks its shipment, so
 *     webhook-refund-successful now also makes a refunds row and a
 *     shipment_refund row (shp_9 refunded: a refund.successful Event's Refund
 *     that names no status is refunded), webhook-scan-form-created a
 *     scan_forms row; the webhook Event itself stays in easypost_events as
 *     before.  The Batch fixtures carry no shipments: no shipment_batch rows.
 *     The columns 0006 added to shipments are not in the old mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ss_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <common/sstime.h>
#include <envelope/envelope.h>
#include <sync/map.h>
#include <webhook/event.h>

#include "envelope_test.h"

static const struct {
    const char *name;
    ss_topic_t topic; /* by the new rule: the object's type */
} fixtures[] = {
    {"gateway-shipment-create", SS_TOPIC_SHIPMENTS},
    {"gateway-shipment-buy", SS_TOPIC_SHIPMENTS},
    {"gateway-tracker-create", SS_TOPIC_TRACKERS},
    {"gateway-tracker-retrieve", SS_TOPIC_TRACKERS},
    {"gateway-address-create-and-verify", SS_TOPIC_ADDRESSES},
    {"gateway-batch-create", SS_TOPIC_BATCHES},
    {"webhook-tracker-updated", SS_TOPIC_TRACKERS},
    {"webhook-batch-created", SS_TOPIC_BATCHES},
    {"webhook-refund-successful", SS_TOPIC_EVENTS},
    {"webhook-scan-form-created", SS_TOPIC_EVENTS},
    {"webhook-shipment-result", SS_TOPIC_SHIPMENTS}, /* went to events before */
    {"webhook-unknown-result", SS_TOPIC_EVENTS},
    {"gen-shipments", SS_TOPIC_SHIPMENTS},
    {"gen-trackers", SS_TOPIC_TRACKERS},
    {"gen-addresses", SS_TOPIC_ADDRESSES},
};
#define NFIXTURES (sizeof(fixtures) / sizeof(fixtures[0]))

static const char *const table_names[SS_SYNC_T__COUNT] = {
    "shipments", "shipment_track", "trackers",   "tracking_events", "addresses",      "parcels",
    "rates",     "batches",        "events",     "shipment_refund", "shipment_batch", "refunds",
    "pickups",   "scan_forms",     "insurances", "objects",
};

/* NAME + ext of the v1 fixtures (SS_FIXTURES_DIR is tests/fixtures/easypost). */
static char *slurp(const char *name, const char *ext, size_t *len) {
    char path[512];
    snprintf(path, sizeof(path), "../envelopes/v1/%s%s", name, ext);
    return ss_test_fixture(path, len);
}

static const char *jstr(json_object *root, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(root, key, &v) || !v)
        return "";
    assert_true(json_object_is_type(v, json_type_string));
    return json_object_get_string(v);
}

static int64_t jtime(json_object *root, const char *key) {
    const char *s = jstr(root, key);
    int64_t u = 0;
    if (*s)
        assert_int_equal(ss_time_parse(s, &u), 0);
    return u;
}

/* The parser's fields against json-c's reading of the same bytes. */
static void check_fields(const char *name, const ss_envelope_t *e, const char *buf, size_t len) {
    json_object *root = json_tokener_parse(buf);
    assert_non_null(root);
    (void)len;
    assert_int_equal(e->schema_version, 1);
    assert_string_equal(e->event_id, jstr(root, "event_id"));
    assert_string_equal(e->type, jstr(root, "type"));
    assert_string_equal(ss_source_name(e->source), jstr(root, "source"));
    assert_string_equal(e->object_type, jstr(root, "object_type"));
    assert_string_equal(e->object_id, jstr(root, "object_id"));
    assert_string_equal(e->request_id, jstr(root, "request_id"));
    assert_true(e->updated_at_usec == jtime(root, "updated_at"));
    assert_true(e->received_at_usec == jtime(root, "received_at"));
    assert_true(e->received_at_usec != 0);
    json_object *obj, *ev = NULL;
    assert_true(json_object_object_get_ex(root, "object", &obj));
    json_object *o = ss_test_json_span(e->object);
    if (!json_object_equal(o, obj))
        fail_msg("%s: object differs from json-c's", name);
    json_object_put(o);
    json_object_object_get_ex(root, "event", &ev);
    if (ev) {
        json_object *x = ss_test_json_span(e->event);
        if (!json_object_equal(x, ev))
            fail_msg("%s: event differs from json-c's", name);
        json_object_put(x);
    } else {
        assert_null(e->event.p);
    }
    json_object_put(root);
}

/* Decodes a cell of mapped-before.tsv in place ("\N" -> NULL). */
static const char *unescape(char *s) {
    if (strcmp(s, "\\N") == 0)
        return NULL;
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            *o++ = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return s;
}

static int table_id(const char *name) {
    for (int t = 0; t < SS_SYNC_T__COUNT; t++)
        if (strcmp(name, table_names[t]) == 0)
            return t;
    fail_msg("unknown table %s", name);
    return -1;
}

/* Columns migration 0005 dropped (their values live in the parent's raw). */
static int dropped_by_0005(int t, const char *col) {
    return strcmp(col, "raw") == 0 &&
           (t == SS_SYNC_T_RATES || t == SS_SYNC_T_PARCELS || t == SS_SYNC_T_TRACKING_EVENTS);
}

static int column_index(int t, const char *col) {
    const ss_sync_table_desc_t *d = ss_sync_table_desc((ss_sync_table_id_t)t);
    for (int i = 0; i < d->ncols; i++)
        if (strcmp(d->cols[i].name, col) == 0)
            return i;
    return -1;
}

/* Rows the tables of migration 0006 get from the v1 fixtures (all others 0). */
static const struct {
    const char *name;
    ss_sync_table_id_t t;
    size_t rows;
} rows_0006[] = {
    {"webhook-refund-successful", SS_SYNC_T_REFUNDS, 1},
    {"webhook-refund-successful", SS_SYNC_T_SHIPMENT_REFUND, 1},
    {"webhook-scan-form-created", SS_SYNC_T_SCAN_FORMS, 1},
};

static size_t expected_0006(const char *name, int t) {
    for (size_t i = 0; i < sizeof(rows_0006) / sizeof(rows_0006[0]); i++)
        if (rows_0006[i].t == (ss_sync_table_id_t)t && strcmp(rows_0006[i].name, name) == 0)
            return rows_0006[i].rows;
    return 0;
}

/* Every cell the old mapping made for name, the same in rows (but the
 * changes listed at the top); the row count of every table the same, but
 * the webhook Event's own row. */
static void check_mapping(const char *name, const ss_envelope_t *e, const ss_sync_rows_t *r,
                          char *golden) {
    size_t before[SS_SYNC_T__COUNT] = {0};
    size_t cells = 0;
    char *save = NULL;
    for (char *line = strtok_r(golden, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[5];
        char *p = line;
        for (int i = 0; i < 5; i++) {
            f[i] = p;
            p = i < 4 ? strchr(p, '\t') : NULL;
            if (i < 4) {
                assert_non_null(p);
                *p++ = '\0';
            }
        }
        if (strcmp(f[0], name) != 0)
            continue;
        int t = table_id(f[1]);
        size_t row = (size_t)atol(f[2]);
        if (row + 1 > before[t])
            before[t] = row + 1;
        if (row >= r->t[t].nrows)
            fail_msg("%s: %s has no row %zu", name, f[1], row);
        int col = column_index(t, f[3]);
        if (col < 0) {
            if (!dropped_by_0005(t, f[3]))
                fail_msg("%s: %s has no column %s", name, f[1], f[3]);
            continue;
        }
        const char *want = unescape(f[4]), *got = ss_sync_cell(r, (ss_sync_table_id_t)t, row, col);
        if (t == SS_SYNC_T_ADDRESSES && strcmp(f[3], "raw") == 0 &&
            ss_envelope_topic(e) != SS_TOPIC_ADDRESSES) {
            if (got != NULL) /* 0005: an embedded address keeps no raw of its own */
                fail_msg("%s: embedded address row %zu still carries a raw copy", name, row);
            continue;
        }
        if ((want == NULL) != (got == NULL) || (want && strcmp(want, got) != 0))
            fail_msg("%s: %s row %zu column %s: was %s, now %s", name, f[1], row, f[3],
                     want ? want : "NULL", got ? got : "NULL");
        cells++;
    }
    assert_true(cells > 0);
    int webhook_event = e->source == SS_SOURCE_WEBHOOK && e->event.p != NULL;
    for (int t = 0; t < SS_SYNC_T__COUNT; t++) {
        size_t want = before[t];
        if (t == SS_SYNC_T_EVENTS && webhook_event)
            want = 1; /* recorded before only for types without a table */
        if (t > SS_SYNC_T_EVENTS)
            want = expected_0006(name, t); /* tables of 0006 */
        if (r->t[t].nrows != want)
            fail_msg("%s: %s has %zu rows, expected %zu", name, table_names[t], r->t[t].nrows,
                     want);
    }
    if (webhook_event)
        assert_string_equal(ss_sync_cell(r, SS_SYNC_T_EVENTS, 0, EV_ID), e->event_id);
    if (strcmp(name, "webhook-refund-successful") == 0) {
        assert_string_equal(ss_sync_cell(r, SS_SYNC_T_REFUNDS, 0, RF_ID), "rfnd_1");
        assert_string_equal(ss_sync_cell(r, SS_SYNC_T_REFUNDS, 0, RF_SHIPMENT_ID), "shp_9");
        assert_null(ss_sync_cell(r, SS_SYNC_T_REFUNDS, 0, RF_STATUS)); /* as sent */
        assert_string_equal(ss_sync_cell(r, SS_SYNC_T_SHIPMENT_REFUND, 0, SR_ID), "shp_9");
        assert_string_equal(ss_sync_cell(r, SS_SYNC_T_SHIPMENT_REFUND, 0, SR_REFUND_STATUS),
                            "refunded");
        assert_string_equal(ss_sync_cell(r, SS_SYNC_T_SHIPMENT_REFUND, 0, SR_REFUND_UPDATED_AT),
                            "2024-08-15T20:44:40.000000Z");
    }
    if (strcmp(name, "webhook-scan-form-created") == 0)
        assert_string_equal(ss_sync_cell(r, SS_SYNC_T_SCAN_FORMS, 0, SF_ID), "sf_1");
}

static void test_v1_envelopes(void **state) {
    (void)state;
    for (size_t i = 0; i < NFIXTURES; i++) {
        const char *name = fixtures[i].name;
        size_t len;
        char *buf = slurp(name, ".json", &len);
        char *key = slurp(name, ".key", NULL);
        ss_envelope_t e;
        char err[256] = "";
        ss_envelope_err_t rc = ss_envelope_parse(&e, buf, len, err, sizeof(err));
        if (rc != SS_ENVELOPE_OK)
            fail_msg("%s: refused (%s): %s", name, ss_envelope_err_name(rc), err);
        check_fields(name, &e, buf, len);

        ss_topic_t topic;
        char k[SS_ENVELOPE_KEY_MAX];
        int n = ss_envelope_route(e.object_type, e.object_id, e.object, &topic, k, sizeof(k));
        assert_true(n > 0);
        if (strcmp(k, key) != 0)
            fail_msg("%s: key %s, was %s", name, k, key);
        if (topic != fixtures[i].topic)
            fail_msg("%s: topic %s", name, ss_topic_suffix(topic));

        ss_sync_rows_t r;
        ss_sync_rows_init(&r);
        if (ss_sync_map(&r, &e, buf, len, 0, err, sizeof(err)) != 0)
            fail_msg("%s: not mapped: %s", name, err);
        char *golden = slurp("mapped-before", ".tsv", NULL);
        check_mapping(name, &e, &r, golden);
        free(golden);
        ss_sync_rows_free(&r);
        free(key);
        free(buf);
    }
}

/* The value without its received_at string (the one thing that differs
 * between two writes of the same input). */
static void split_received(const char *v, size_t n, size_t *a, size_t *b) {
    const char *at = memmem(v, n, "\"received_at\":\"", 15);
    assert_non_null(at);
    *a = (size_t)(at - v) + 15;
    const char *end = memchr(v + *a, '"', n - *a);
    assert_non_null(end);
    *b = (size_t)(end - v);
}

/* Today's writers, given what the old ones were given, write the same:
 * the receiver byte for byte (but received_at), the gateway the same
 * members and values (its object is now EasyPost's bytes, not json-c's). */
static void test_new_writers_match_old(void **state) {
    (void)state;
    static const struct {
        const char *name, *input;
    } webhooks[] = {
        {"webhook-tracker-updated", "event-tracker-updated.json"},
        {"webhook-batch-created", "event-batch-created.json"},
        {"webhook-refund-successful",
         SS_SOURCE_ROOT "/tests/fuzz/corpus/webhook_event/refund.json"},
        {"webhook-scan-form-created",
         SS_SOURCE_ROOT "/tests/fuzz/corpus/webhook_event/scanform.json"},
        {"webhook-shipment-result", "../envelopes/v1/inputs/webhook-shipment-result.json"},
        {"webhook-unknown-result", "../envelopes/v1/inputs/webhook-unknown-result.json"},
    };
    char err[256] = "";
    for (size_t i = 0; i < sizeof(webhooks) / sizeof(webhooks[0]); i++) {
        size_t blen, olen;
        char path[512];
        if (webhooks[i].input[0] == '/')
            snprintf(path, sizeof(path), "%s", webhooks[i].input);
        else
            snprintf(path, sizeof(path), "%s/%s", SS_FIXTURES_DIR, webhooks[i].input);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        char body[16384];
        blen = fread(body, 1, sizeof(body), f);
        fclose(f);
        char *old = slurp(webhooks[i].name, ".json", &olen);
        char *key = slurp(webhooks[i].name, ".key", NULL);
        ss_envelope_msg_t m;
        if (ss_webhook_event_parse(&m, body, blen, NULL, err, sizeof(err)) != 0)
            fail_msg("%s: %s", webhooks[i].name, err);
        size_t oa, ob, na, nb;
        split_received(old, olen, &oa, &ob);
        split_received(m.value, m.value_len, &na, &nb);
        if (oa != na || olen - ob != m.value_len - nb || memcmp(old, m.value, oa) != 0 ||
            memcmp(old + ob, m.value + nb, olen - ob) != 0)
            fail_msg("%s: the receiver's envelope changed:\nwas %.*s\nnow %.*s", webhooks[i].name,
                     (int)olen, old, (int)m.value_len, m.value);
        assert_string_equal(m.key, key);
        ss_envelope_msg_clear(&m);
        free(key);
        free(old);
    }

    static const struct {
        const char *name, *input, *member, *type;
    } gateway[] = {
        {"gateway-shipment-create", "api/shipment-create.response.json", NULL, "shipment.created"},
        {"gateway-shipment-buy", "api/shipment-buy.response.json", NULL, "shipment.purchased"},
        {"gateway-tracker-create", "api/tracker-create.response.json", NULL, "tracker.created"},
        {"gateway-tracker-retrieve", "api/tracker-retrieve.response.json", NULL, "tracker.updated"},
        {"gateway-address-create-and-verify", "api/address-create-and-verify.response.json",
         "address", "address.created"},
        {"gateway-batch-create", "api/batch-create.response.json", NULL, "batch.created"},
    };
    for (size_t i = 0; i < sizeof(gateway) / sizeof(gateway[0]); i++) {
        size_t len;
        char *body = ss_test_fixture(gateway[i].input, &len);
        ss_json_span_t obj = {body, len};
        if (gateway[i].member) {
            const char *names[] = {gateway[i].member, NULL};
            assert_int_equal(ss_json_check(body, len, SS_ENVELOPE_SPAN_MAX_DEPTH, NULL), 0);
            ss_json_pick(ss_json_root(body, len), names, &obj);
        }
        ss_envelope_in_t in = {.source = SS_SOURCE_GATEWAY,
                               .type = gateway[i].type,
                               .request_id = "req_v1fixture",
                               .object = obj};
        ss_envelope_msg_t m;
        assert_int_equal(ss_envelope_write(&m, &in, err, sizeof(err)), SS_ENVELOPE_OK);
        char *old = slurp(gateway[i].name, ".json", NULL);
        char *key = slurp(gateway[i].name, ".key", NULL);
        json_object *was = json_tokener_parse(old);
        json_object *now = ss_test_json_span((ss_json_span_t){m.value, m.value_len});
        assert_non_null(was);
        /* fresh per write: a new gwe_ id and the time of writing */
        json_object_object_del(was, "event_id");
        json_object_object_del(was, "received_at");
        json_object_object_del(now, "event_id");
        json_object_object_del(now, "received_at");
        if (!json_object_equal(was, now))
            fail_msg("%s: the gateway's envelope changed", gateway[i].name);
        assert_string_equal(m.key, key);
        json_object_put(was);
        json_object_put(now);
        ss_envelope_msg_clear(&m);
        free(key);
        free(old);
        free(body);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_envelopes),
        cmocka_unit_test(test_new_writers_match_old),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
