/* ss_webhook_event: strict parse, routing and keys of webhook bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ss_fixture.h"

#include <webhook/event.h>

static void test_tracker_fixture(void **state) {
    (void)state;
    size_t len;
    char *body = ss_test_fixture("event-tracker-updated.json", &len);
    ss_webhook_event_t ev;
    char err[256] = "";
    assert_int_equal(ss_webhook_event_parse(&ev, body, len, "req_1", err, sizeof(err)), 0);
    assert_int_equal(ev.topic, SS_TOPIC_TRACKERS);
    assert_string_equal(ev.env.type, "tracker.updated");
    assert_string_equal(ev.env.object_type, "Tracker");
    assert_true(strncmp(ev.env.event_id, "evt_", 4) == 0);
    assert_int_equal(ev.keylen, strlen(ev.key));
    assert_true(ev.keylen > 0);
    /* The value is an envelope the envelope library reads back. */
    ss_envelope_t back;
    assert_int_equal(ss_envelope_parse(&back, ev.value, ev.value_len, err, sizeof(err)), 0);
    assert_string_equal(back.event_id, ev.env.event_id);
    assert_int_equal(back.source, SS_SOURCE_WEBHOOK);
    assert_string_equal(back.request_id, "req_1");
    ss_envelope_clear(&back);
    ss_webhook_event_clear(&ev);
    free(body);
}

static void test_batch_fixture(void **state) {
    (void)state;
    size_t len;
    char *body = ss_test_fixture("event-batch-created.json", &len);
    ss_webhook_event_t ev;
    char err[256] = "";
    assert_int_equal(ss_webhook_event_parse(&ev, body, len, NULL, err, sizeof(err)), 0);
    assert_int_equal(ev.topic, SS_TOPIC_BATCHES);
    assert_string_equal(ev.key, ev.env.object_id);
    assert_true(strncmp(ev.key, "batch_", 6) == 0);
    ss_webhook_event_clear(&ev);
    free(body);
}

static void test_route(void **state) {
    (void)state;
    assert_int_equal(ss_webhook_event_route("tracker.updated", "Tracker"), SS_TOPIC_TRACKERS);
    assert_int_equal(ss_webhook_event_route("tracker.created", "Tracker"), SS_TOPIC_TRACKERS);
    assert_int_equal(ss_webhook_event_route("batch.updated", "Batch"), SS_TOPIC_BATCHES);
    assert_int_equal(ss_webhook_event_route("refund.successful", "Refund"), SS_TOPIC_EVENTS);
    assert_int_equal(ss_webhook_event_route("scan_form.created", "ScanForm"), SS_TOPIC_EVENTS);
    assert_int_equal(ss_webhook_event_route("payment.completed", "Payment"), SS_TOPIC_EVENTS);
    /* description and object disagree: kept, in events */
    assert_int_equal(ss_webhook_event_route("tracker.updated", "Refund"), SS_TOPIC_EVENTS);
    assert_int_equal(ss_webhook_event_route("trackers", "Tracker"), SS_TOPIC_EVENTS);
    assert_int_equal(ss_webhook_event_route(NULL, NULL), SS_TOPIC_EVENTS);
    assert_int_equal(ss_webhook_event_route("batch.created", NULL), SS_TOPIC_EVENTS);
}

static void test_unknown_event_kept(void **state) {
    (void)state;
    const char *body =
        "{\"object\":\"Event\",\"id\":\"evt_r1\",\"description\":\"refund.successful\","
        "\"result\":{\"object\":\"Refund\",\"id\":\"rfnd_1\",\"shipment_id\":\"shp_9\","
        "\"tracking_code\":\"9400\"}}";
    ss_webhook_event_t ev;
    char err[256] = "";
    assert_int_equal(ss_webhook_event_parse(&ev, body, strlen(body), NULL, err, sizeof(err)), 0);
    assert_int_equal(ev.topic, SS_TOPIC_EVENTS);
    assert_string_equal(ev.key, "shp_9");
    ss_webhook_event_clear(&ev);
}

static void expect_bad(const char *body, size_t len, const char *needle) {
    ss_webhook_event_t ev;
    char err[256] = "";
    assert_int_equal(ss_webhook_event_parse(&ev, body, len, NULL, err, sizeof(err)), -1);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, needle);
    assert_null(ev.value);
}
#define BAD(s, needle) expect_bad((s), strlen(s), (needle))

static void test_bad_bodies(void **state) {
    (void)state;
    BAD("", "empty");
    BAD("not json", "not JSON");
    BAD("{\"object\":\"Event\"", "not JSON");
    BAD("{\"a\":1} {\"b\":2}", "not JSON");
    BAD("{'object':'Event'}", "not JSON"); /* strict mode */
    BAD("[1,2,3]", "not a JSON object");
    BAD("\"Event\"", "not a JSON object");
    BAD("{}", "\"object\"");
    BAD("{\"object\":\"Tracker\",\"id\":\"trk_1\"}", "\"object\"");
    BAD("{\"object\":\"Event\",\"description\":\"tracker.updated\",\"result\":{}}", "\"id\"");
    BAD("{\"object\":\"Event\",\"id\":\"\",\"description\":\"x\",\"result\":{}}", "\"id\"");
    BAD("{\"object\":\"Event\",\"id\":\"evt_1\",\"result\":{}}", "description");
    BAD("{\"object\":\"Event\",\"id\":\"evt_1\",\"description\":\"x\"}", "result");
    BAD("{\"object\":\"Event\",\"id\":\"evt_1\",\"description\":\"x\",\"result\":[]}", "result");
    BAD("{\"object\":\"Event\",\"id\":\"evt_1\",\"description\":\"x\",\"result\":null}", "result");
    BAD("{\"object\":\"Event\",\"id\":7,\"description\":\"x\",\"result\":{}}", "\"id\"");
    expect_bad("{\"a\":\0}", 7, "NUL");
    /* what json-c's strict mode alone lets through */
    BAD("{'object':\"Event\"}", "not JSON");
    BAD("{\"a\":NaN}", "not JSON");
    BAD("{\"a\":Infinity}", "not JSON");
    BAD("{\"a\":\"x\x01y\"}", "not JSON");
    BAD("{\"a\":nulls}", "not JSON");
    BAD("{\"a\":\"unterminated}", "not JSON");
    /* deeply nested input is refused, not recursed into */
    char deep[400];
    memset(deep, '[', sizeof(deep));
    expect_bad(deep, sizeof(deep), "not JSON");
}

static void test_trailing_whitespace_ok(void **state) {
    (void)state;
    const char *body = "{\"object\":\"Event\",\"id\":\"evt_1\",\"description\":\"batch.created\","
                       "\"result\":{\"object\":\"Batch\",\"id\":\"batch_1\"}}\r\n ";
    ss_webhook_event_t ev;
    char err[256] = "";
    assert_int_equal(ss_webhook_event_parse(&ev, body, strlen(body), NULL, err, sizeof(err)), 0);
    assert_int_equal(ev.topic, SS_TOPIC_BATCHES);
    assert_string_equal(ev.key, "batch_1");
    ss_webhook_event_clear(&ev);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tracker_fixture), cmocka_unit_test(test_batch_fixture),
        cmocka_unit_test(test_route),           cmocka_unit_test(test_unknown_event_kept),
        cmocka_unit_test(test_bad_bodies),      cmocka_unit_test(test_trailing_whitespace_ok),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
