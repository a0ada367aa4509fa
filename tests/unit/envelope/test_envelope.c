/* Envelope: round trips on real EasyPost fixtures, strict rejection of
 * malformed envelopes, topic and key rules for every object type. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ss_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <common/sstime.h>
#include <envelope/envelope.h>

static json_object *load_fixture(const char *name) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", SS_FIXTURES_DIR, name);
    json_object *o = json_object_from_file(path);
    if (!o)
        fail_msg("cannot load fixture %s", path);
    return o;
}

static int64_t ts(const char *s) {
    int64_t u;
    assert_int_equal(ss_time_parse(s, &u), 0);
    return u;
}

/* Serialises, parses back, and checks every field survived. */
static void assert_round_trip(const ss_envelope_t *e) {
    size_t len = 0;
    char *wire = ss_envelope_serialize(e, &len);
    assert_non_null(wire);
    assert_int_equal(strlen(wire), len);

    ss_envelope_t back;
    char err[256] = "";
    int rc = ss_envelope_parse(&back, wire, len, err, sizeof(err));
    if (rc != 0)
        fail_msg("parse of own output failed: %s", err);
    assert_int_equal(back.schema_version, SS_ENVELOPE_SCHEMA_VERSION);
    assert_string_equal(back.event_id, e->event_id);
    assert_string_equal(back.type, e->type);
    assert_int_equal(back.source, e->source);
    assert_string_equal(back.object_type, e->object_type);
    assert_string_equal(back.object_id, e->object_id);
    assert_true(back.updated_at_usec == e->updated_at_usec);
    assert_true(back.received_at_usec == e->received_at_usec);
    assert_string_equal(back.request_id, e->request_id);
    assert_true(json_object_equal(back.object, e->object));
    if (e->event)
        assert_true(json_object_equal(back.event, e->event));
    else
        assert_null(back.event);
    assert_int_equal(ss_envelope_topic(&back), ss_envelope_topic(e));
    char k1[128], k2[128];
    assert_int_equal(ss_envelope_key(&back, k1, sizeof(k1)), ss_envelope_key(e, k2, sizeof(k2)));
    assert_string_equal(k1, k2);
    ss_envelope_clear(&back);
    free(wire);
}

static void test_gateway_shipment_round_trip(void **state) {
    (void)state;
    json_object *shp = load_fixture("api/shipment-buy.response.json");
    ss_envelope_t e;
    char err[256];
    assert_int_equal(
        ss_envelope_from_object(&e, "shipment.purchased", shp, "req_abc", err, sizeof(err)), 0);
    json_object_put(shp); /* the envelope holds its own reference */

    assert_int_equal(e.source, SS_SOURCE_GATEWAY);
    assert_int_equal(strncmp(e.event_id, "gwe_", 4), 0);
    assert_int_equal(strlen(e.event_id), 4 + 32);
    assert_string_equal(e.type, "shipment.purchased");
    assert_string_equal(e.object_type, "Shipment");
    assert_string_equal(e.object_id, "shp_16578f588f9546ec914afd2474e24ff5");
    assert_true(e.updated_at_usec == ts("2025-03-07T16:46:20Z"));
    assert_true(e.received_at_usec > ts("2024-01-01T00:00:00Z"));
    assert_string_equal(e.request_id, "req_abc");
    assert_null(e.event);
    assert_int_equal(ss_envelope_topic(&e), SS_TOPIC_SHIPMENTS);
    char key[128];
    assert_int_equal(ss_envelope_key(&e, key, sizeof(key)), (int)strlen(e.object_id));
    assert_string_equal(key, "shp_16578f588f9546ec914afd2474e24ff5");

    /* updated_at goes out exactly as EasyPost sent it. */
    char *wire = ss_envelope_serialize(&e, NULL);
    assert_non_null(strstr(wire, "\"updated_at\":\"2025-03-07T16:46:20Z\""));
    assert_non_null(strstr(wire, "\"source\":\"gateway\""));
    free(wire);
    assert_round_trip(&e);

    /* Two envelopes never share an event id. */
    ss_envelope_t e2;
    assert_int_equal(
        ss_envelope_from_object(&e2, "shipment.purchased", e.object, NULL, err, sizeof(err)), 0);
    assert_string_not_equal(e.event_id, e2.event_id);
    assert_string_equal(e2.request_id, "");
    assert_round_trip(&e2);
    ss_envelope_clear(&e2);
    ss_envelope_clear(&e);
    ss_envelope_clear(&e); /* idempotent */
}

static void test_webhook_tracker_event(void **state) {
    (void)state;
    size_t rawlen;
    char *raw = ss_test_fixture("event-tracker-updated.json", &rawlen);
    json_object *ev = json_tokener_parse(raw);
    assert_non_null(ev);
    ss_envelope_t e;
    char err[256];
    assert_int_equal(ss_envelope_from_event(&e, ev, "req_1", err, sizeof(err)), 0);
    json_object_put(ev);

    assert_int_equal(e.source, SS_SOURCE_WEBHOOK);
    assert_string_equal(e.event_id, "evt_1");
    assert_string_equal(e.type, "tracker.updated");
    assert_string_equal(e.object_type, "Tracker");
    assert_string_equal(e.object_id, "trk_1");
    assert_true(e.updated_at_usec == ts("2024-08-02T19:26:51Z"));
    assert_non_null(e.event);
    json_object *v;
    assert_false(json_object_object_get_ex(e.event, "result", &v));
    assert_true(json_object_object_get_ex(e.event, "previous_attributes", &v));
    assert_true(json_object_object_get_ex(e.event, "created_at", &v));
    assert_string_equal(json_object_get_string(v), "2024-08-02T19:26:52.000Z");

    /* shipment_id is null: the key is the tracking code. */
    assert_int_equal(ss_envelope_topic(&e), SS_TOPIC_TRACKERS);
    char key[64];
    assert_int_equal(ss_envelope_key(&e, key, sizeof(key)), 1);
    assert_string_equal(key, "1");

    /* Numbers keep their original text (614.4, not 614.39999...). */
    char *wire = ss_envelope_serialize(&e, NULL);
    assert_non_null(strstr(wire, "\"weight\":614.4"));
    assert_non_null(strstr(wire, "\"source\":\"webhook\""));
    free(wire);
    assert_round_trip(&e);
    ss_envelope_clear(&e);
    free(raw);
}

static void test_webhook_batch_event(void **state) {
    (void)state;
    json_object *ev = load_fixture("event-batch-created.json");
    ss_envelope_t e;
    char err[256];
    assert_int_equal(ss_envelope_from_event(&e, ev, NULL, err, sizeof(err)), 0);
    assert_string_equal(e.event_id, "evt_123...");
    assert_string_equal(e.type, "batch.created");
    assert_string_equal(e.object_type, "Batch");
    assert_int_equal(ss_envelope_topic(&e), SS_TOPIC_BATCHES);
    char key[64];
    assert_true(ss_envelope_key(&e, key, sizeof(key)) > 0);
    assert_string_equal(key, "batch_123...");
    assert_round_trip(&e);
    ss_envelope_clear(&e);
    json_object_put(ev);
}

static void test_address_plus_offset_timestamp(void **state) {
    (void)state;
    json_object *resp = load_fixture("api/address-create-and-verify.response.json");
    json_object *adr;
    assert_true(json_object_object_get_ex(resp, "address", &adr));
    ss_envelope_t e;
    char err[256];
    assert_int_equal(ss_envelope_from_object(&e, "address.created", adr, NULL, err, sizeof(err)),
                     0);
    assert_string_equal(e.object_type, "Address");
    assert_true(e.updated_at_usec == ts("2025-03-06T19:47:20Z"));
    assert_int_equal(ss_envelope_topic(&e), SS_TOPIC_ADDRESSES);
    char key[128];
    assert_true(ss_envelope_key(&e, key, sizeof(key)) > 0);
    assert_string_equal(key, e.object_id);
    assert_int_equal(strncmp(key, "adr_", 4), 0);
    char *wire = ss_envelope_serialize(&e, NULL);
    assert_non_null(strstr(wire, "\"updated_at\":\"2025-03-06T19:47:20+00:00\""));
    free(wire);
    assert_round_trip(&e);
    ss_envelope_clear(&e);
    json_object_put(resp);
}

/* Tracker fixtures from the API, and the batch fixture. */
static void test_api_fixtures_route(void **state) {
    (void)state;
    static const struct {
        const char *file;
        ss_topic_t topic;
    } cases[] = {
        {"api/tracker-create.response.json", SS_TOPIC_TRACKERS},
        {"api/tracker-retrieve.response.json", SS_TOPIC_TRACKERS},
        {"api/batch-create.response.json", SS_TOPIC_BATCHES},
        {"api/shipment-create.response.json", SS_TOPIC_SHIPMENTS},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_object *o = load_fixture(cases[i].file);
        ss_envelope_t e;
        char err[256];
        if (ss_envelope_from_object(&e, "x.created", o, NULL, err, sizeof(err)) != 0)
            fail_msg("%s: %s", cases[i].file, err);
        assert_int_equal(ss_envelope_topic(&e), cases[i].topic);
        char key[128];
        assert_true(ss_envelope_key(&e, key, sizeof(key)) > 0);
        json_object *v;
        const char *expect = e.object_id;
        if (cases[i].topic == SS_TOPIC_TRACKERS) {
            if (json_object_object_get_ex(o, "shipment_id", &v) && v)
                expect = json_object_get_string(v);
            else if (json_object_object_get_ex(o, "tracking_code", &v) && v)
                expect = json_object_get_string(v);
        }
        assert_string_equal(key, expect);
        assert_round_trip(&e);
        ss_envelope_clear(&e);
        json_object_put(o);
    }
}

static void route_case(const char *json, ss_topic_t topic, const char *key) {
    json_object *o = json_tokener_parse(json);
    assert_non_null(o);
    ss_envelope_t e;
    char err[256];
    if (ss_envelope_from_object(&e, "t.updated", o, NULL, err, sizeof(err)) != 0)
        fail_msg("%s: %s", json, err);
    assert_int_equal(ss_envelope_topic(&e), topic);
    char buf[128];
    int n = ss_envelope_key(&e, buf, sizeof(buf));
    assert_int_equal(n, (int)strlen(key));
    assert_string_equal(buf, key);
    /* A buffer too small for the key. */
    assert_int_equal(ss_envelope_key(&e, buf, strlen(key)), -1);
    ss_envelope_clear(&e);
    json_object_put(o);
}

static void test_routing_every_type(void **state) {
    (void)state;
    route_case("{\"object\":\"Shipment\",\"id\":\"shp_1\",\"tracking_code\":\"T\"}",
               SS_TOPIC_SHIPMENTS, "shp_1");
    route_case("{\"object\":\"Tracker\",\"id\":\"trk_1\",\"shipment_id\":\"shp_9\",\"tracking_"
               "code\":\"T1\"}",
               SS_TOPIC_TRACKERS, "shp_9");
    route_case(
        "{\"object\":\"Tracker\",\"id\":\"trk_1\",\"shipment_id\":null,\"tracking_code\":\"T1\"}",
        SS_TOPIC_TRACKERS, "T1");
    route_case(
        "{\"object\":\"Tracker\",\"id\":\"trk_1\",\"shipment_id\":\"\",\"tracking_code\":null}",
        SS_TOPIC_TRACKERS, "trk_1");
    route_case("{\"object\":\"Address\",\"id\":\"adr_1\",\"shipment_id\":\"shp_x\"}",
               SS_TOPIC_ADDRESSES, "adr_1");
    route_case("{\"object\":\"Batch\",\"id\":\"batch_1\",\"shipment_id\":\"shp_x\"}",
               SS_TOPIC_BATCHES, "batch_1");
    route_case("{\"object\":\"Refund\",\"id\":\"rfnd_1\",\"shipment_id\":\"shp_5\",\"tracking_"
               "code\":\"T5\"}",
               SS_TOPIC_EVENTS, "shp_5");
    route_case(
        "{\"object\":\"Insurance\",\"id\":\"ins_1\",\"shipment_id\":null,\"tracking_code\":\"T6\"}",
        SS_TOPIC_EVENTS, "T6");
    route_case("{\"object\":\"ScanForm\",\"id\":\"sf_1\"}", SS_TOPIC_EVENTS, "sf_1");
    route_case("{\"object\":\"Payment\",\"id\":\"pl_1\"}", SS_TOPIC_EVENTS, "pl_1");
    route_case("{\"object\":\"Report\",\"id\":\"shprep_1\"}", SS_TOPIC_EVENTS, "shprep_1");
}

static void test_topic_names(void **state) {
    (void)state;
    char buf[64];
    static const char *const want[] = {"shipments", "trackers", "addresses",
                                       "batches",   "events",   "dlq"};
    for (int t = 0; t < SS_TOPIC__COUNT; t++) {
        assert_string_equal(ss_topic_suffix((ss_topic_t)t), want[t]);
        assert_int_equal(ss_topic_name("shipstream.", (ss_topic_t)t, buf, sizeof(buf)), 0);
        assert_int_equal(strncmp(buf, "shipstream.", 11), 0);
        assert_string_equal(buf + 11, want[t]);
    }
    assert_int_equal(ss_topic_name("", SS_TOPIC_DLQ, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "dlq");
    assert_int_equal(ss_topic_name("shipstream.", SS_TOPIC_SHIPMENTS, buf, 21), 0);
    assert_int_equal(ss_topic_name("shipstream.", SS_TOPIC_SHIPMENTS, buf, 20), -1);
    assert_null(ss_topic_suffix(SS_TOPIC__COUNT));
}

static void test_builder_rejects(void **state) {
    (void)state;
    ss_envelope_t e;
    char err[256];
    json_object *o = json_tokener_parse("{\"id\":\"shp_1\"}");
    assert_int_equal(ss_envelope_from_object(&e, "x", o, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "object"));
    json_object_put(o);
    o = json_tokener_parse("{\"object\":\"Shipment\",\"id\":5}");
    assert_int_equal(ss_envelope_from_object(&e, "x", o, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "id"));
    json_object_put(o);
    o = json_tokener_parse(
        "{\"object\":\"Shipment\",\"id\":\"shp_1\",\"updated_at\":\"yesterday\"}");
    assert_int_equal(ss_envelope_from_object(&e, "x", o, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "updated_at"));
    json_object_put(o);
    o = json_tokener_parse("[1]");
    assert_int_equal(ss_envelope_from_object(&e, "x", o, NULL, err, sizeof(err)), -1);
    json_object_put(o);

    /* Events from the list endpoint carry no result. */
    json_object *list = load_fixture("api/events-list.response.json");
    json_object *events, *ev0;
    assert_true(json_object_object_get_ex(list, "events", &events));
    ev0 = json_object_array_get_idx(events, 0);
    assert_int_equal(ss_envelope_from_event(&e, ev0, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "result"));
    json_object_put(list);

    o = json_tokener_parse("{\"object\":\"Shipment\",\"id\":\"evt_1\",\"description\":\"a.b\","
                           "\"result\":{\"object\":\"Tracker\",\"id\":\"trk\"}}");
    assert_int_equal(ss_envelope_from_event(&e, o, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "Event"));
    json_object_put(o);
    o = json_tokener_parse("{\"object\":\"Event\",\"description\":\"a.b\","
                           "\"result\":{\"object\":\"Tracker\",\"id\":\"trk\"}}");
    assert_int_equal(ss_envelope_from_event(&e, o, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "id"));
    json_object_put(o);
    /* A verified Event whose result has no id (or no object type, or an
     * unreadable updated_at) is still carried, to the events topic, rather
     * than refused: a refusal is retried by EasyPost for a day, then lost. */
    o = json_tokener_parse("{\"object\":\"Event\",\"id\":\"evt_1\",\"description\":\"a.b\","
                           "\"result\":{\"object\":\"Tracker\",\"updated_at\":\"soon\"}}");
    assert_int_equal(ss_envelope_from_event(&e, o, NULL, err, sizeof(err)), 0);
    assert_string_equal(e.object_id, "evt_1");
    assert_int_equal(e.updated_at_usec, 0);
    ss_envelope_clear(&e);
    json_object_put(o);
    o = json_tokener_parse("{\"object\":\"Event\",\"id\":\"evt_2\",\"description\":\"report.new\","
                           "\"result\":{\"id\":\"x_1\"}}");
    assert_int_equal(ss_envelope_from_event(&e, o, NULL, err, sizeof(err)), 0);
    assert_string_equal(e.object_type, "Unknown");
    assert_int_equal(ss_envelope_topic(&e), SS_TOPIC_EVENTS);
    {
        size_t wlen;
        char *wire = ss_envelope_serialize(&e, &wlen);
        ss_envelope_t back;
        assert_int_equal(ss_envelope_parse(&back, wire, wlen, err, sizeof(err)), 0);
        assert_string_equal(back.object_id, "x_1");
        ss_envelope_clear(&back);
        free(wire);
    }
    ss_envelope_clear(&e);
    json_object_put(o);
    o = json_tokener_parse("{\"object\":\"Event\",\"id\":\"evt_1\",\"description\":\"a.b\","
                           "\"result\":\"not an object\"}");
    assert_int_equal(ss_envelope_from_event(&e, o, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "result"));
    json_object_put(o);
    o = json_tokener_parse(
        "{\"object\":\"Event\",\"id\":\"evt_1\",\"result\":{\"object\":\"Tracker\",\"id\":\"t\"}}");
    assert_int_equal(ss_envelope_from_event(&e, o, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "description"));
    json_object_put(o);
}

/* A valid serialised envelope to mutate. */
static char *valid_wire(void) {
    json_object *ev = load_fixture("event-batch-created.json");
    ss_envelope_t e;
    char err[256];
    assert_int_equal(ss_envelope_from_event(&e, ev, "req_9", err, sizeof(err)), 0);
    json_object_put(ev);
    char *wire = ss_envelope_serialize(&e, NULL);
    ss_envelope_clear(&e);
    return wire;
}

static void expect_reject_buf(const char *buf, size_t len, const char *reason_part) {
    ss_envelope_t e;
    memset(&e, 0x5a, sizeof(e));
    char err[256] = "";
    int rc = ss_envelope_parse(&e, buf, len, err, sizeof(err));
    if (rc != -1)
        fail_msg("accepted: %.*s", (int)(len > 200 ? 200 : len), buf);
    assert_null(e.object);
    assert_null(e.event);
    assert_int_equal(e.event_id[0], 0);
    if (reason_part && !strstr(err, reason_part))
        fail_msg("reason \"%s\" does not mention \"%s\"", err, reason_part);
}

static void expect_reject(const char *s, const char *reason_part) {
    expect_reject_buf(s, strlen(s), reason_part);
}

/* Sets (or, with value NULL and del, deletes) one member and expects rejection. */
static void mutate_reject(const char *wire, const char *key, const char *value_json, int del,
                          const char *reason_part) {
    json_object *root = json_tokener_parse(wire);
    assert_non_null(root);
    if (del) {
        json_object_object_del(root, key);
    } else {
        json_object *v = value_json ? json_tokener_parse(value_json) : NULL;
        if (value_json && !v)
            fail_msg("bad test value %s", value_json);
        json_object_object_add(root, key, v);
    }
    const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
    expect_reject(s, reason_part);
    json_object_put(root);
}

static void test_parse_rejects(void **state) {
    (void)state;
    char *wire = valid_wire();
    size_t wlen = strlen(wire);
    ss_envelope_t ok;
    char err[256];
    assert_int_equal(ss_envelope_parse(&ok, wire, wlen, err, sizeof(err)), 0);
    ss_envelope_clear(&ok);

    /* Not JSON, truncated, trailing garbage, wrong top-level type. */
    expect_reject("", "empty");
    expect_reject("not json", "JSON");
    expect_reject_buf(wire, wlen - 1, "JSON");
    expect_reject_buf(wire, wlen / 2, "JSON");
    char *trail = malloc(wlen + 8);
    memcpy(trail, wire, wlen);
    memcpy(trail + wlen, " {}", 4);
    expect_reject(trail, NULL); /* json-c's strict mode or our check: either way rejected */
    memcpy(trail + wlen, "x", 2);
    expect_reject(trail, NULL);
    memcpy(trail + wlen, "\n", 2);
    assert_int_equal(ss_envelope_parse(&ok, trail, wlen + 1, err, sizeof(err)), 0);
    ss_envelope_clear(&ok);
    free(trail);
    expect_reject("[1,2]", "not a JSON object");
    expect_reject("\"envelope\"", "not a JSON object");
    expect_reject("null", NULL);
    expect_reject("{'schema_version':1}", "JSON");
    expect_reject("{\"schema_version\":1,}", "JSON");
    /* An embedded NUL inside the given length. */
    expect_reject_buf("{\"a\":1}\0{}", 10, NULL);

    /* schema_version. */
    mutate_reject(wire, "schema_version", "2", 0, "schema_version");
    mutate_reject(wire, "schema_version", "0", 0, "schema_version");
    mutate_reject(wire, "schema_version", "\"1\"", 0, "schema_version");
    mutate_reject(wire, "schema_version", "1.0", 0, "schema_version");
    mutate_reject(wire, "schema_version", NULL, 1, "schema_version");

    /* Required strings: missing, null, mistyped, empty. */
    static const char *const strs[] = {"event_id", "type", "source", "object_type", "object_id"};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        mutate_reject(wire, strs[i], NULL, 1, strs[i]);
        mutate_reject(wire, strs[i], NULL, 0, strs[i]);
        mutate_reject(wire, strs[i], "42", 0, strs[i]);
        mutate_reject(wire, strs[i], "\"\"", 0, strs[i]);
        mutate_reject(wire, strs[i], "[\"a\"]", 0, strs[i]);
    }
    mutate_reject(wire, "source", "\"kafka\"", 0, "source");
    char longid[200];
    memset(longid, 'a', sizeof(longid));
    longid[0] = '"';
    longid[198] = '"';
    longid[199] = '\0';
    mutate_reject(wire, "event_id", longid, 0, "too long");

    /* Timestamps. */
    mutate_reject(wire, "received_at", NULL, 1, "received_at");
    mutate_reject(wire, "received_at", NULL, 0, "received_at");
    mutate_reject(wire, "received_at", "\"yesterday\"", 0, "received_at");
    mutate_reject(wire, "received_at", "\"2024-13-01T00:00:00Z\"", 0, "received_at");
    mutate_reject(wire, "received_at", "1722628011", 0, "received_at");
    mutate_reject(wire, "updated_at", "\"2024-02-30T00:00:00Z\"", 0, "updated_at");
    mutate_reject(wire, "updated_at", "\"2024-08-02T25:00:00Z\"", 0, "updated_at");
    mutate_reject(wire, "updated_at", "17", 0, "updated_at");

    /* request_id mistyped; object and event not objects. */
    mutate_reject(wire, "request_id", "7", 0, "request_id");
    mutate_reject(wire, "object", NULL, 1, "object");
    mutate_reject(wire, "object", NULL, 0, "object");
    mutate_reject(wire, "object", "\"{}\"", 0, "object");
    mutate_reject(wire, "object", "[{}]", 0, "object");
    mutate_reject(wire, "event", "[]", 0, "event");

    /* Nullable fields accept null. */
    json_object *root = json_tokener_parse(wire);
    json_object_object_add(root, "updated_at", NULL);
    json_object_object_add(root, "request_id", NULL);
    json_object_object_add(root, "event", NULL);
    const char *s = json_object_to_json_string(root);
    assert_int_equal(ss_envelope_parse(&ok, s, strlen(s), err, sizeof(err)), 0);
    assert_true(ok.updated_at_usec == 0);
    assert_string_equal(ok.request_id, "");
    assert_null(ok.event);
    ss_envelope_clear(&ok);
    json_object_put(root);

    /* A single quote inside a string is fine. */
    root = json_tokener_parse(wire);
    json_object_object_add(
        root, "object",
        json_tokener_parse("{\"object\":\"Batch\",\"id\":\"b\",\"note\":\"it's \\\"x'\\\\\"}"));
    s = json_object_to_json_string(root);
    if (ss_envelope_parse(&ok, s, strlen(s), err, sizeof(err)) != 0)
        fail_msg("%s rejected: %s", s, err);
    ss_envelope_clear(&ok);
    json_object_put(root);

    /* Every EasyPost timestamp form is accepted. */
    static const char *const forms[] = {"\"2024-08-15T20:44:40Z\"", "\"2024-08-15T20:44:40.123Z\"",
                                        "\"2024-08-15T20:44:40+00:00\"",
                                        "\"2024-08-15T20:44:40.123456-07:00\""};
    for (size_t i = 0; i < 4; i++) {
        root = json_tokener_parse(wire);
        json_object_object_add(root, "received_at", json_tokener_parse(forms[i]));
        s = json_object_to_json_string(root);
        if (ss_envelope_parse(&ok, s, strlen(s), err, sizeof(err)) != 0)
            fail_msg("%s rejected: %s", forms[i], err);
        ss_envelope_clear(&ok);
        json_object_put(root);
    }
    free(wire);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gateway_shipment_round_trip),
        cmocka_unit_test(test_webhook_tracker_event),
        cmocka_unit_test(test_webhook_batch_event),
        cmocka_unit_test(test_address_plus_offset_timestamp),
        cmocka_unit_test(test_api_fixtures_route),
        cmocka_unit_test(test_routing_every_type),
        cmocka_unit_test(test_topic_names),
        cmocka_unit_test(test_builder_rejects),
        cmocka_unit_test(test_parse_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
