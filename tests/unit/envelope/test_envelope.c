/* Envelope: the one writer on real EasyPost fixtures (bytes copied
 * verbatim, read back by the parser), the routing rule for every object
 * type, the writer's and the parser's refusals with their error codes. */
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

#include "envelope_test.h"

static int64_t ts(const char *s) {
    int64_t u;
    assert_int_equal(ss_time_parse(s, &u), 0);
    return u;
}

static ss_json_span_t span_of(const char *s) {
    return (ss_json_span_t){s, strlen(s)};
}

/* Parses m's value back and checks every field survived. */
static void assert_reads_back(const ss_envelope_msg_t *m) {
    ss_envelope_t back;
    char err[256] = "";
    ss_envelope_err_t rc = ss_envelope_parse(&back, m->value, m->value_len, err, sizeof(err));
    if (rc != SS_ENVELOPE_OK)
        fail_msg("parse of own output failed: %s", err);
    const ss_envelope_t *e = &m->env;
    assert_int_equal(back.schema_version, SS_ENVELOPE_SCHEMA_VERSION);
    assert_string_equal(back.event_id, e->event_id);
    assert_string_equal(back.type, e->type);
    assert_int_equal(back.source, e->source);
    assert_string_equal(back.object_type, e->object_type);
    assert_string_equal(back.object_id, e->object_id);
    assert_true(back.updated_at_usec == e->updated_at_usec);
    assert_true(back.received_at_usec == e->received_at_usec);
    assert_string_equal(back.request_id, e->request_id);
    /* the spans the writer reports are where the parser finds them */
    assert_ptr_equal(back.object.p, e->object.p);
    assert_int_equal(back.object.len, e->object.len);
    assert_ptr_equal(back.event.p, e->event.p);
    assert_int_equal(back.event.len, e->event.len);
    assert_int_equal(ss_envelope_topic(&back), m->topic);
    char key[SS_ENVELOPE_KEY_MAX];
    ss_topic_t t;
    assert_int_equal(
        ss_envelope_route(back.object_type, back.object_id, back.object, &t, key, sizeof(key)),
        (int)m->keylen);
    assert_string_equal(key, m->key);
}

static void write_ok(ss_envelope_msg_t *m, const ss_envelope_in_t *in) {
    char err[256] = "";
    ss_envelope_err_t rc = ss_envelope_write(m, in, err, sizeof(err));
    if (rc != SS_ENVELOPE_OK)
        fail_msg("writer refused (%s): %s", ss_envelope_err_name(rc), err);
    assert_reads_back(m);
}

/* A gateway envelope of an API fixture: EasyPost's bytes verbatim. */
static void test_gateway_fixtures(void **state) {
    (void)state;
    static const struct {
        const char *file, *type, *otype, *oid, *key, *updated;
        ss_topic_t topic;
    } cases[] = {
        {"api/shipment-buy.response.json", "shipment.purchased", "Shipment",
         "shp_16578f588f9546ec914afd2474e24ff5", "shp_16578f588f9546ec914afd2474e24ff5",
         "2025-03-07T16:46:20Z", SS_TOPIC_SHIPMENTS},
        {"api/shipment-create.response.json", "shipment.created", "Shipment", NULL, NULL, NULL,
         SS_TOPIC_SHIPMENTS},
        {"api/tracker-create.response.json", "tracker.created", "Tracker", NULL, "EZ1000000001",
         NULL, SS_TOPIC_TRACKERS},
        {"api/tracker-retrieve.response.json", "tracker.updated", "Tracker", NULL, NULL, NULL,
         SS_TOPIC_TRACKERS},
        {"api/batch-create.response.json", "batch.created", "Batch", NULL, NULL, NULL,
         SS_TOPIC_BATCHES},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len;
        char *body = ss_test_fixture(cases[i].file, &len);
        ss_envelope_in_t in = {.source = SS_SOURCE_GATEWAY,
                               .type = cases[i].type,
                               .request_id = "req_abc",
                               .object = {body, len}};
        ss_envelope_msg_t m;
        write_ok(&m, &in);
        assert_string_equal(m.env.type, cases[i].type);
        assert_string_equal(m.env.object_type, cases[i].otype);
        assert_int_equal(m.topic, cases[i].topic);
        assert_int_equal(m.env.source, SS_SOURCE_GATEWAY);
        assert_string_equal(m.env.request_id, "req_abc");
        assert_int_equal(strncmp(m.env.event_id, "gwe_", 4), 0);
        assert_int_equal(strlen(m.env.event_id), 36);
        if (cases[i].oid)
            assert_string_equal(m.env.object_id, cases[i].oid);
        if (cases[i].key)
            assert_string_equal(m.key, cases[i].key);
        if (cases[i].updated)
            assert_true(m.env.updated_at_usec == ts(cases[i].updated));
        /* the object is the fixture's bytes, whitespace and all */
        ss_json_span_t root = ss_json_root(body, len);
        assert_int_equal(m.env.object.len, root.len);
        assert_memory_equal(m.env.object.p, root.p, root.len);
        assert_null(m.env.event.p);
        assert_null(memmem(m.value, m.value_len, ",\"event\":", 9));
        ss_envelope_msg_clear(&m);
        assert_null(m.value);
        free(body);
    }
}

/* The webhook Event: "object" is the result, "event" the rest, topic and
 * key by the result's type whatever the description says. */
static void test_webhook_event_spans(void **state) {
    (void)state;
    size_t len;
    char *body = ss_test_fixture("event-tracker-updated.json", &len);
    json_object *ev = json_tokener_parse(body), *result;
    assert_true(json_object_object_get_ex(ev, "result", &result));
    const char *rs = json_object_to_json_string_ext(result, JSON_C_TO_STRING_PLAIN);
    ss_envelope_in_t in = {.source = SS_SOURCE_WEBHOOK,
                           .type = "tracker.updated",
                           .event_id = "evt_x",
                           .object = span_of(rs),
                           .event = {body, len},
                           .received_at_usec = ts("2025-03-07T16:46:21.5Z")};
    ss_envelope_msg_t m;
    write_ok(&m, &in);
    assert_int_equal(m.topic, SS_TOPIC_TRACKERS);
    assert_string_equal(m.env.object_type, "Tracker");
    assert_true(m.env.received_at_usec == ts("2025-03-07T16:46:21.5Z"));
    assert_string_equal(m.env.request_id, "");
    json_object *o = ss_test_json_span(m.env.object), *e = ss_test_json_span(m.env.event);
    assert_true(json_object_equal(o, result));
    json_object_object_del(ev, "result");
    assert_true(json_object_equal(e, ev));
    json_object_put(o);
    json_object_put(e);
    json_object_put(ev);
    ss_envelope_msg_clear(&m);
    free(body);

    /* The bug this rule fixes: an Event whose result is a Shipment goes to
     * the shipments topic (it went to events, keyed alike). */
    const char *shp = "{\"object\":\"Shipment\",\"id\":\"shp_1\",\"tracking_code\":\"9400\"}";
    const char *event = "{\"object\":\"Event\",\"id\":\"evt_s\",\"description\":\"x.updated\","
                        "\"result\":{\"object\":\"Shipment\",\"id\":\"shp_1\"}}";
    in = (ss_envelope_in_t){.source = SS_SOURCE_WEBHOOK,
                            .type = "shipment.invoice.updated",
                            .event_id = "evt_s",
                            .object = span_of(shp),
                            .event = span_of(event)};
    write_ok(&m, &in);
    assert_int_equal(m.topic, SS_TOPIC_SHIPMENTS);
    assert_string_equal(m.key, "shp_1");
    ss_envelope_msg_clear(&m);
}

/* A webhook result without identity is still carried (events topic). */
static void test_webhook_lenient_result(void **state) {
    (void)state;
    const char *res = "{\"note\":1,\"updated_at\":\"not a time\",\"object\":42}";
    const char *event = "{\"object\":\"Event\",\"id\":\"evt_u\",\"description\":\"report.x\"}";
    ss_envelope_in_t in = {.source = SS_SOURCE_WEBHOOK,
                           .type = "report.x",
                           .event_id = "evt_u",
                           .object = span_of(res),
                           .event = span_of(event)};
    ss_envelope_msg_t m;
    write_ok(&m, &in);
    assert_string_equal(m.env.object_type, "Unknown");
    assert_string_equal(m.env.object_id, "evt_u");
    assert_true(m.env.updated_at_usec == 0);
    assert_int_equal(m.topic, SS_TOPIC_EVENTS);
    assert_string_equal(m.key, "evt_u");
    assert_non_null(memmem(m.value, m.value_len, "\"updated_at\":null", 17));
    ss_envelope_msg_clear(&m);

    /* the same object from the gateway is refused */
    char err[256];
    in = (ss_envelope_in_t){.source = SS_SOURCE_GATEWAY, .type = "x", .object = span_of(res)};
    assert_int_equal(ss_envelope_write(&m, &in, err, sizeof(err)), SS_ENVELOPE_ERR_OBJECT);
    assert_null(m.value);
}

/* updated_at is written as EasyPost sent it; backfill/reconcile sources and
 * caller-chosen event ids. */
static void test_updated_at_and_sources(void **state) {
    (void)state;
    const char *obj = "{\"object\":\"Address\",\"id\":\"adr_1\",\"updated_at\":\"2024-08-02T"
                      "19:46:51+00:00\",\"street1\":\"a\\/b \\u00e9\"}";
    for (int s = SS_SOURCE_GATEWAY; s < SS_SOURCE__COUNT; s++) {
        if (s == SS_SOURCE_WEBHOOK)
            continue;
        ss_envelope_in_t in = {.source = (ss_source_t)s,
                               .type = "address.updated",
                               .event_id = s == SS_SOURCE_RECONCILE ? "rec_adr_1_1" : NULL,
                               .object = span_of(obj)};
        ss_envelope_msg_t m;
        write_ok(&m, &in);
        assert_int_equal(m.topic, SS_TOPIC_ADDRESSES);
        assert_string_equal(m.key, "adr_1");
        assert_true(m.env.updated_at_usec == ts("2024-08-02T19:46:51Z"));
        assert_non_null(
            memmem(m.value, m.value_len, "\"updated_at\":\"2024-08-02T19:46:51+00:00\"", 39));
        char src[64];
        snprintf(src, sizeof(src), "\"source\":\"%s\"", ss_source_name((ss_source_t)s));
        assert_non_null(memmem(m.value, m.value_len, src, strlen(src)));
        if (s == SS_SOURCE_RECONCILE)
            assert_string_equal(m.env.event_id, "rec_adr_1_1");
        ss_envelope_msg_clear(&m);
    }
    assert_null(ss_source_name(SS_SOURCE__COUNT));
    assert_string_equal(ss_envelope_err_name(SS_ENVELOPE_ERR_JSON), "json");
    assert_string_equal(ss_envelope_err_name(SS_ENVELOPE_ERR_VERSION), "version");
}

/* Topic and key for every object type (one rule for every producer). */
static void test_route_every_type(void **state) {
    (void)state;
    static const struct {
        const char *obj;
        ss_topic_t topic;
        const char *key;
    } cases[] = {
        {"{\"object\":\"Shipment\",\"id\":\"shp_1\",\"shipment_id\":\"shp_x\","
         "\"tracking_code\":\"T\"}",
         SS_TOPIC_SHIPMENTS, "shp_1"},
        {"{\"object\":\"Tracker\",\"id\":\"trk_1\",\"shipment_id\":\"shp_2\","
         "\"tracking_code\":\"T\"}",
         SS_TOPIC_TRACKERS, "shp_2"},
        {"{\"object\":\"Tracker\",\"id\":\"trk_1\",\"shipment_id\":\"\",\"tracking_code\":\"T9\"}",
         SS_TOPIC_TRACKERS, "T9"},
        {"{\"object\":\"Tracker\",\"id\":\"trk_1\",\"shipment_id\":null}", SS_TOPIC_TRACKERS,
         "trk_1"},
        {"{\"object\":\"Address\",\"id\":\"adr_1\",\"shipment_id\":\"shp_3\"}", SS_TOPIC_ADDRESSES,
         "adr_1"},
        {"{\"object\":\"Batch\",\"id\":\"batch_1\",\"tracking_code\":\"T\"}", SS_TOPIC_BATCHES,
         "batch_1"},
        {"{\"object\":\"Refund\",\"id\":\"rfnd_1\",\"shipment_id\":\"shp_4\","
         "\"tracking_code\":\"T\"}",
         SS_TOPIC_EVENTS, "shp_4"},
        {"{\"object\":\"Insurance\",\"id\":\"ins_1\",\"tracking_code\":\"T5\"}", SS_TOPIC_EVENTS,
         "T5"},
        {"{\"object\":\"ScanForm\",\"id\":\"sf_1\"}", SS_TOPIC_EVENTS, "sf_1"},
        {"{\"object\":\"Payment\",\"id\":\"pm_1\",\"tracking_code\":7}", SS_TOPIC_EVENTS, "pm_1"},
        {"{\"object\":\"shipment\",\"id\":\"shp_lc\"}", SS_TOPIC_EVENTS, "shp_lc"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ss_envelope_in_t in = {
            .source = SS_SOURCE_BACKFILL, .type = "t.x", .object = span_of(cases[i].obj)};
        ss_envelope_msg_t m;
        write_ok(&m, &in);
        if (m.topic != cases[i].topic || strcmp(m.key, cases[i].key) != 0)
            fail_msg("%s: topic %s key %s", cases[i].obj, ss_topic_suffix(m.topic), m.key);
        ss_envelope_msg_clear(&m);
    }
    /* key buffer too small for the id: -1, the topic still set */
    ss_topic_t t = SS_TOPIC_DLQ;
    char small[4];
    assert_int_equal(ss_envelope_route("Batch", "batch_1", span_of("{}"), &t, small, sizeof(small)),
                     -1);
    assert_int_equal(t, SS_TOPIC_BATCHES);
    assert_int_equal(ss_envelope_route("Refund", "r", span_of("{}"), &t, NULL, 0), -1);
    assert_int_equal(t, SS_TOPIC_EVENTS);
}

static void test_topic_names(void **state) {
    (void)state;
    char buf[64];
    assert_int_equal(ss_topic_name(NULL, SS_TOPIC_SHIPMENTS, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "shipstream.shipments");
    assert_int_equal(ss_topic_name("x.", SS_TOPIC_DLQ, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "x.dlq");
    assert_int_equal(ss_topic_name("a-long-prefix.", SS_TOPIC_EVENTS, buf, 8), -1);
    assert_null(ss_topic_suffix(SS_TOPIC__COUNT));
}

static void expect_write_error(const ss_envelope_in_t *in, ss_envelope_err_t code,
                               const char *reason_part) {
    ss_envelope_msg_t m;
    memset(&m, 0x5a, sizeof(m));
    char err[256] = "";
    ss_envelope_err_t rc = ss_envelope_write(&m, in, err, sizeof(err));
    if (rc != code)
        fail_msg("expected %s, got %s (%s)", ss_envelope_err_name(code), ss_envelope_err_name(rc),
                 err);
    assert_null(m.value);
    assert_int_equal(m.env.event_id[0], 0);
    if (reason_part && !strstr(err, reason_part))
        fail_msg("reason \"%s\" does not mention \"%s\"", err, reason_part);
}

static void test_writer_rejects(void **state) {
    (void)state;
    const char *ok = "{\"object\":\"Shipment\",\"id\":\"shp_1\"}";
    const char *event = "{\"object\":\"Event\",\"id\":\"evt_1\"}";
    ss_envelope_in_t in = {.source = SS_SOURCE_GATEWAY, .type = "t", .object = span_of(ok)};
    ss_envelope_in_t b;

    b = in, b.type = NULL;
    expect_write_error(&b, SS_ENVELOPE_ERR_ARG, "type");
    b = in, b.type = "";
    expect_write_error(&b, SS_ENVELOPE_ERR_ARG, "type");
    b = in, b.source = SS_SOURCE__COUNT;
    expect_write_error(&b, SS_ENVELOPE_ERR_ARG, "source");
    char longid[200];
    memset(longid, 'r', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    b = in, b.request_id = longid;
    expect_write_error(&b, SS_ENVELOPE_ERR_ARG, "request id");
    b = in, b.event_id = longid;
    expect_write_error(&b, SS_ENVELOPE_ERR_ARG, "event id");
    b = in, b.object = (ss_json_span_t){NULL, 0};
    expect_write_error(&b, SS_ENVELOPE_ERR_ARG, "object");
    /* a webhook needs its Event id and the Event; nobody else carries one */
    b = in, b.source = SS_SOURCE_WEBHOOK, b.event = span_of(event);
    expect_write_error(&b, SS_ENVELOPE_ERR_ARG, "event id");
    b = in, b.source = SS_SOURCE_WEBHOOK, b.event_id = "evt_1";
    expect_write_error(&b, SS_ENVELOPE_ERR_ARG, "Event");
    b = in, b.event = span_of(event);
    expect_write_error(&b, SS_ENVELOPE_ERR_ARG, "Event");
    b = in, b.source = SS_SOURCE_WEBHOOK, b.event_id = "evt_1", b.event = span_of("[1]");
    expect_write_error(&b, SS_ENVELOPE_ERR_OBJECT, "Event");
    b = in, b.source = SS_SOURCE_WEBHOOK, b.event_id = "evt_1", b.event = span_of("{'a':1}");
    expect_write_error(&b, SS_ENVELOPE_ERR_JSON, "Event");

    /* the object: not JSON (unless the caller vouches), not an object,
     * not an EasyPost object */
    b = in, b.object = span_of("{\"object\":\"Shipment\",\"id\":\"shp_1\",}");
    expect_write_error(&b, SS_ENVELOPE_ERR_JSON, "object");
    b = in, b.object = span_of("{\"object\":\"Shipment\",\"id\":\"shp_1\"} x");
    expect_write_error(&b, SS_ENVELOPE_ERR_JSON, "object");
    b = in, b.object = span_of("[{\"object\":\"Shipment\",\"id\":\"shp_1\"}]");
    expect_write_error(&b, SS_ENVELOPE_ERR_OBJECT, "object");
    b = in, b.object = span_of("{\"id\":\"shp_1\"}");
    expect_write_error(&b, SS_ENVELOPE_ERR_OBJECT, "\"object\"");
    b = in, b.object = span_of("{\"object\":\"Shipment\",\"id\":\"\"}");
    expect_write_error(&b, SS_ENVELOPE_ERR_OBJECT, "\"id\"");
    b = in, b.object = span_of("{\"object\":\"Shipment\",\"id\":7}");
    expect_write_error(&b, SS_ENVELOPE_ERR_OBJECT, "\"id\"");
    b = in,
    b.object = span_of("{\"object\":\"Shipment\",\"id\":\"s\",\"updated_at\":\"yesterday\"}");
    expect_write_error(&b, SS_ENVELOPE_ERR_OBJECT, "updated_at");
    b = in, b.object = span_of("{\"object\":\"Shipment\",\"id\":\"s\",\"updated_at\":17}");
    expect_write_error(&b, SS_ENVELOPE_ERR_OBJECT, "updated_at");
    b = in, b.object = span_of("{\"object\":\"Shipment\",\"id\":\"s\",\"updated_at\":null}");
    ss_envelope_msg_t m;
    write_ok(&m, &b);
    assert_true(m.env.updated_at_usec == 0);
    ss_envelope_msg_clear(&m);

    /* nesting: SS_ENVELOPE_SPAN_MAX_DEPTH levels pass, one more does not */
    for (int extra = 0; extra < 2; extra++) {
        char deep[512];
        int d = SS_ENVELOPE_SPAN_MAX_DEPTH - 1 + extra; /* under the object's own braces */
        size_t n = (size_t)sprintf(deep, "{\"object\":\"Refund\",\"id\":\"r\",\"d\":");
        for (int i = 0; i < d; i++)
            deep[n++] = '[';
        for (int i = 0; i < d; i++)
            deep[n++] = ']';
        deep[n++] = '}';
        deep[n] = '\0';
        b = in, b.object = span_of(deep);
        if (extra) {
            expect_write_error(&b, SS_ENVELOPE_ERR_JSON, "deep");
        } else {
            write_ok(&m, &b);
            ss_envelope_msg_clear(&m);
        }
    }
}

/* ---- parser refusals ---- */

/* A valid webhook envelope (batch.created) to mutate. */
static char *valid_wire(size_t *len) {
    size_t blen;
    char *body = ss_test_fixture("event-batch-created.json", &blen);
    json_object *ev = json_tokener_parse(body), *result;
    assert_true(json_object_object_get_ex(ev, "result", &result));
    const char *rs = json_object_to_json_string_ext(result, JSON_C_TO_STRING_PLAIN);
    ss_envelope_in_t in = {.source = SS_SOURCE_WEBHOOK,
                           .type = "batch.created",
                           .event_id = "evt_b",
                           .request_id = "req_9",
                           .object = span_of(rs),
                           .event = {body, blen}};
    ss_envelope_msg_t m;
    write_ok(&m, &in);
    char *wire = malloc(m.value_len + 1);
    memcpy(wire, m.value, m.value_len);
    wire[m.value_len] = '\0';
    *len = m.value_len;
    ss_envelope_msg_clear(&m);
    json_object_put(ev);
    free(body);
    return wire;
}

static void expect_reject_buf(const char *buf, size_t len, ss_envelope_err_t code,
                              const char *reason_part) {
    ss_envelope_t e;
    memset(&e, 0x5a, sizeof(e));
    char err[256] = "";
    /* exactly len bytes, so that an over-read shows under ASan */
    char *p = malloc(len ? len : 1);
    memcpy(p, buf, len);
    ss_envelope_err_t rc = ss_envelope_parse(&e, p, len, err, sizeof(err));
    free(p);
    if (rc != code)
        fail_msg("%.*s: expected %s, got %s (%s)", (int)(len > 200 ? 200 : len), buf,
                 ss_envelope_err_name(code), ss_envelope_err_name(rc), err);
    assert_null(e.object.p);
    assert_null(e.event.p);
    assert_int_equal(e.event_id[0], 0);
    if (reason_part && !strstr(err, reason_part))
        fail_msg("reason \"%s\" does not mention \"%s\"", err, reason_part);
}

static void expect_reject(const char *s, ss_envelope_err_t code, const char *reason_part) {
    expect_reject_buf(s, strlen(s), code, reason_part);
}

/* Sets (or, with del, deletes) one member and expects rejection. */
static void mutate_reject(const char *wire, const char *key, const char *value_json, int del,
                          ss_envelope_err_t code, const char *reason_part) {
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
    expect_reject(s, code, reason_part);
    json_object_put(root);
}

static void parse_ok(ss_envelope_t *e, const char *s) {
    char err[256] = "";
    ss_envelope_err_t rc = ss_envelope_parse(e, s, strlen(s), err, sizeof(err));
    if (rc != SS_ENVELOPE_OK)
        fail_msg("%s rejected: %s", s, err);
}

static void test_parse_rejects(void **state) {
    (void)state;
    size_t wlen;
    char *wire = valid_wire(&wlen);
    ss_envelope_t ok;
    parse_ok(&ok, wire);

    /* Not JSON, truncated, trailing garbage, wrong top-level type. */
    expect_reject("", SS_ENVELOPE_ERR_JSON, "empty");
    expect_reject("not json", SS_ENVELOPE_ERR_JSON, "JSON");
    expect_reject_buf(wire, wlen - 1, SS_ENVELOPE_ERR_JSON, "JSON");
    expect_reject_buf(wire, wlen / 2, SS_ENVELOPE_ERR_JSON, "JSON");
    char *trail = malloc(wlen + 8);
    memcpy(trail, wire, wlen);
    memcpy(trail + wlen, " {}", 4);
    expect_reject(trail, SS_ENVELOPE_ERR_JSON, "trailing");
    memcpy(trail + wlen, "x", 2);
    expect_reject(trail, SS_ENVELOPE_ERR_JSON, NULL);
    memcpy(trail + wlen, "\n", 2);
    parse_ok(&ok, trail);
    free(trail);
    expect_reject("[1,2]", SS_ENVELOPE_ERR_SCHEMA, "not a JSON object");
    expect_reject("\"envelope\"", SS_ENVELOPE_ERR_SCHEMA, "not a JSON object");
    expect_reject("null", SS_ENVELOPE_ERR_SCHEMA, NULL);
    expect_reject("{'schema_version':1}", SS_ENVELOPE_ERR_JSON, "JSON");
    expect_reject("{\"schema_version\":1,}", SS_ENVELOPE_ERR_JSON, "JSON");
    expect_reject_buf("{\"a\":1}\0{}", 10, SS_ENVELOPE_ERR_JSON, NULL);

    /* schema_version: a wrong integer is a version, anything else schema. */
    mutate_reject(wire, "schema_version", "2", 0, SS_ENVELOPE_ERR_VERSION, "schema_version");
    mutate_reject(wire, "schema_version", "0", 0, SS_ENVELOPE_ERR_VERSION, "schema_version");
    mutate_reject(wire, "schema_version", "-1", 0, SS_ENVELOPE_ERR_VERSION, "schema_version");
    mutate_reject(wire, "schema_version", "\"1\"", 0, SS_ENVELOPE_ERR_SCHEMA, "schema_version");
    mutate_reject(wire, "schema_version", "1.0", 0, SS_ENVELOPE_ERR_SCHEMA, "schema_version");
    mutate_reject(wire, "schema_version", NULL, 1, SS_ENVELOPE_ERR_SCHEMA, "schema_version");
    mutate_reject(wire, "schema_version", NULL, 0, SS_ENVELOPE_ERR_SCHEMA, "schema_version");

    /* Required strings: missing, null, mistyped, empty. */
    static const char *const strs[] = {"event_id", "type", "source", "object_type", "object_id"};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        mutate_reject(wire, strs[i], NULL, 1, SS_ENVELOPE_ERR_SCHEMA, strs[i]);
        mutate_reject(wire, strs[i], NULL, 0, SS_ENVELOPE_ERR_SCHEMA, strs[i]);
        mutate_reject(wire, strs[i], "42", 0, SS_ENVELOPE_ERR_SCHEMA, strs[i]);
        mutate_reject(wire, strs[i], "\"\"", 0, SS_ENVELOPE_ERR_SCHEMA, strs[i]);
        mutate_reject(wire, strs[i], "[\"a\"]", 0, SS_ENVELOPE_ERR_SCHEMA, strs[i]);
        mutate_reject(wire, strs[i], "\"a\\u0000b\"", 0, SS_ENVELOPE_ERR_SCHEMA, "NUL");
    }
    mutate_reject(wire, "source", "\"kafka\"", 0, SS_ENVELOPE_ERR_SCHEMA, "source");
    char longid[200];
    memset(longid, 'a', sizeof(longid));
    longid[0] = '"';
    longid[198] = '"';
    longid[199] = '\0';
    mutate_reject(wire, "event_id", longid, 0, SS_ENVELOPE_ERR_SCHEMA, "too long");

    /* Timestamps. */
    mutate_reject(wire, "received_at", NULL, 1, SS_ENVELOPE_ERR_SCHEMA, "received_at");
    mutate_reject(wire, "received_at", NULL, 0, SS_ENVELOPE_ERR_SCHEMA, "received_at");
    mutate_reject(wire, "received_at", "\"yesterday\"", 0, SS_ENVELOPE_ERR_SCHEMA, "received_at");
    mutate_reject(wire, "received_at", "\"2024-13-01T00:00:00Z\"", 0, SS_ENVELOPE_ERR_SCHEMA,
                  "received_at");
    mutate_reject(wire, "received_at", "1722628011", 0, SS_ENVELOPE_ERR_SCHEMA, "received_at");
    mutate_reject(wire, "updated_at", "\"2024-02-30T00:00:00Z\"", 0, SS_ENVELOPE_ERR_SCHEMA,
                  "updated_at");
    mutate_reject(wire, "updated_at", "\"2024-08-02T25:00:00Z\"", 0, SS_ENVELOPE_ERR_SCHEMA,
                  "updated_at");
    mutate_reject(wire, "updated_at", "17", 0, SS_ENVELOPE_ERR_SCHEMA, "updated_at");

    /* request_id mistyped; object and event not objects. */
    mutate_reject(wire, "request_id", "7", 0, SS_ENVELOPE_ERR_SCHEMA, "request_id");
    mutate_reject(wire, "object", NULL, 1, SS_ENVELOPE_ERR_SCHEMA, "object");
    mutate_reject(wire, "object", NULL, 0, SS_ENVELOPE_ERR_SCHEMA, "object");
    mutate_reject(wire, "object", "\"{}\"", 0, SS_ENVELOPE_ERR_SCHEMA, "object");
    mutate_reject(wire, "object", "[{}]", 0, SS_ENVELOPE_ERR_SCHEMA, "object");
    mutate_reject(wire, "event", "[]", 0, SS_ENVELOPE_ERR_SCHEMA, "event");

    /* Nullable fields accept null; members in any order; last one wins. */
    json_object *root = json_tokener_parse(wire);
    json_object_object_add(root, "updated_at", NULL);
    json_object_object_add(root, "request_id", NULL);
    json_object_object_add(root, "event", NULL);
    parse_ok(&ok, json_object_to_json_string(root));
    assert_true(ok.updated_at_usec == 0);
    assert_string_equal(ok.request_id, "");
    assert_null(ok.event.p);
    json_object_put(root);
    parse_ok(&ok, "{\"object\":{\"a\":1},\"received_at\":\"2024-08-15T20:44:40Z\","
                  "\"object_id\":\"x\",\"object_type\":\"Refund\",\"source\":\"gateway\","
                  "\"type\":\"t\",\"event_id\":\"first\",\"event_id\":\"e\\u0031\","
                  "\"schema_version\":1}");
    assert_string_equal(ok.event_id, "e1");
    assert_int_equal(ok.object.len, 7);
    assert_memory_equal(ok.object.p, "{\"a\":1}", 7);

    /* Every EasyPost timestamp form is accepted. */
    static const char *const forms[] = {"\"2024-08-15T20:44:40Z\"", "\"2024-08-15T20:44:40.123Z\"",
                                        "\"2024-08-15T20:44:40+00:00\"",
                                        "\"2024-08-15T20:44:40.123456-07:00\""};
    for (size_t i = 0; i < 4; i++) {
        root = json_tokener_parse(wire);
        json_object_object_add(root, "received_at", json_tokener_parse(forms[i]));
        parse_ok(&ok, json_object_to_json_string(root));
        json_object_put(root);
    }

    /* Depth: SS_ENVELOPE_MAX_DEPTH levels read, one more refused as JSON. */
    for (int extra = 0; extra < 2; extra++) {
        char deep[1024];
        int d = SS_ENVELOPE_MAX_DEPTH - 2 + extra; /* under the envelope's and object's braces */
        size_t n = (size_t)sprintf(deep, "{\"schema_version\":1,\"event_id\":\"e\",\"type\":\"t\","
                                         "\"source\":\"backfill\",\"object_type\":\"Refund\","
                                         "\"object_id\":\"r\",\"received_at\":"
                                         "\"2024-08-15T20:44:40Z\",\"object\":{\"d\":");
        for (int i = 0; i < d; i++)
            deep[n++] = '[';
        for (int i = 0; i < d; i++)
            deep[n++] = ']';
        n += (size_t)sprintf(deep + n, "}}");
        if (extra)
            expect_reject_buf(deep, n, SS_ENVELOPE_ERR_JSON, "deep");
        else
            parse_ok(&ok, deep);
    }
    free(wire);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gateway_fixtures),
        cmocka_unit_test(test_webhook_event_spans),
        cmocka_unit_test(test_webhook_lenient_result),
        cmocka_unit_test(test_updated_at_and_sources),
        cmocka_unit_test(test_route_every_type),
        cmocka_unit_test(test_topic_names),
        cmocka_unit_test(test_writer_rejects),
        cmocka_unit_test(test_parse_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
