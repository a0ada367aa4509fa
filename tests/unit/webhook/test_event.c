/* ss_webhook_event: strict parse of webhook bodies, written by the envelope
 * writer (topic and key by the result's type), duplicate keys, pretty bodies,
 * and the depth contract with the consumers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ss_fixture.h"

#include <json-c/json.h>
#include <webhook/event.h>

static void test_tracker_fixture(void **state) {
    (void)state;
    size_t len;
    char *body = ss_test_fixture("event-tracker-updated.json", &len);
    ss_envelope_msg_t ev;
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
    ss_envelope_msg_clear(&ev);
    free(body);
}

static void test_batch_fixture(void **state) {
    (void)state;
    size_t len;
    char *body = ss_test_fixture("event-batch-created.json", &len);
    ss_envelope_msg_t ev;
    char err[256] = "";
    assert_int_equal(ss_webhook_event_parse(&ev, body, len, NULL, err, sizeof(err)), 0);
    assert_int_equal(ev.topic, SS_TOPIC_BATCHES);
    assert_string_equal(ev.key, ev.env.object_id);
    assert_true(strncmp(ev.key, "batch_", 6) == 0);
    ss_envelope_msg_clear(&ev);
    free(body);
}

/* Topic by the result's type, never by the description (ss_envelope_route). */
static void test_route_by_result_type(void **state) {
    (void)state;
    static const struct {
        const char *desc, *result;
        ss_topic_t topic;
        const char *key;
    } cases[] = {
        {"tracker.updated", "{\"object\":\"Tracker\",\"id\":\"trk_1\"}", SS_TOPIC_TRACKERS,
         "trk_1"},
        {"batch.updated", "{\"object\":\"Batch\",\"id\":\"batch_1\"}", SS_TOPIC_BATCHES, "batch_1"},
        {"shipment.invoice.updated", "{\"object\":\"Shipment\",\"id\":\"shp_1\"}",
         SS_TOPIC_SHIPMENTS, "shp_1"},
        {"address.updated", "{\"object\":\"Address\",\"id\":\"adr_1\"}", SS_TOPIC_ADDRESSES,
         "adr_1"},
        {"scan_form.created", "{\"object\":\"ScanForm\",\"id\":\"sf_1\"}", SS_TOPIC_EVENTS, "sf_1"},
        /* description and object disagree: the object decides */
        {"tracker.updated", "{\"object\":\"Refund\",\"id\":\"r_1\"}", SS_TOPIC_EVENTS, "r_1"},
        {"batch.created", "{\"object\":\"Tracker\",\"id\":\"trk_2\",\"tracking_code\":\"T\"}",
         SS_TOPIC_TRACKERS, "T"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"object\":\"Event\",\"id\":\"evt_%zu\",\"description\":\"%s\",\"result\":%s}",
                 i, cases[i].desc, cases[i].result);
        ss_envelope_msg_t ev;
        char err[256] = "";
        assert_int_equal(ss_webhook_event_parse(&ev, body, strlen(body), NULL, err, sizeof(err)),
                         0);
        if (ev.topic != cases[i].topic || strcmp(ev.key, cases[i].key) != 0)
            fail_msg("%s: topic %s key %s", body, ss_topic_suffix(ev.topic), ev.key);
        ss_envelope_msg_clear(&ev);
    }
}

static void test_unknown_event_kept(void **state) {
    (void)state;
    const char *body =
        "{\"object\":\"Event\",\"id\":\"evt_r1\",\"description\":\"refund.successful\","
        "\"result\":{\"object\":\"Refund\",\"id\":\"rfnd_1\",\"shipment_id\":\"shp_9\","
        "\"tracking_code\":\"9400\"}}";
    ss_envelope_msg_t ev;
    char err[256] = "";
    assert_int_equal(ss_webhook_event_parse(&ev, body, strlen(body), NULL, err, sizeof(err)), 0);
    assert_int_equal(ev.topic, SS_TOPIC_EVENTS);
    assert_string_equal(ev.key, "shp_9");
    ss_envelope_msg_clear(&ev);
}

static void expect_bad(const char *body, size_t len, const char *needle) {
    ss_envelope_msg_t ev;
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
    ss_envelope_msg_t ev;
    char err[256] = "";
    assert_int_equal(ss_webhook_event_parse(&ev, body, strlen(body), NULL, err, sizeof(err)), 0);
    assert_int_equal(ev.topic, SS_TOPIC_BATCHES);
    assert_string_equal(ev.key, "batch_1");
    ss_envelope_msg_clear(&ev);
}

/* n bytes of s in a buffer of exactly n bytes (caller frees). */
static char *exact(const char *s, size_t n) {
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, s, n);
    return p;
}

/* ---- ss_webhook_event_parse ---- */

static json_object *jparse(const char *s, size_t n) {
    json_tokener *tok = json_tokener_new_ex(SS_ENVELOPE_MAX_DEPTH);
    assert_non_null(tok);
    json_object *o = json_tokener_parse_ex(tok, s, (int)n);
    assert_int_equal(json_tokener_get_error(tok), json_tokener_success);
    json_tokener_free(tok);
    assert_non_null(o);
    return o;
}

/* The value parses back with ss_envelope_parse; its "object" is json-c's
 * "result" of body and its "event" json-c's body without "result". */
static void expect_envelope_matches(const ss_envelope_msg_t *ev, const char *body, size_t len) {
    ss_envelope_t back;
    char err[256] = "";
    if (ss_envelope_parse(&back, ev->value, ev->value_len, err, sizeof(err)) != SS_ENVELOPE_OK)
        fail_msg("ss_envelope_parse: %s", err);
    assert_string_equal(back.event_id, ev->env.event_id);
    assert_string_equal(back.type, ev->env.type);
    assert_string_equal(back.object_type, ev->env.object_type);
    assert_string_equal(back.object_id, ev->env.object_id);
    assert_int_equal(back.updated_at_usec, ev->env.updated_at_usec);
    assert_int_equal(back.source, SS_SOURCE_WEBHOOK);

    json_object *event = jparse(body, len);
    json_object *result = NULL;
    assert_true(json_object_object_get_ex(event, "result", &result));
    assert_non_null(back.object.p);
    json_object *o = jparse(back.object.p, back.object.len);
    if (!json_object_equal(o, result))
        fail_msg("envelope object != the Event's result");
    json_object_object_del(event, "result");
    assert_non_null(back.event.p);
    json_object *e = jparse(back.event.p, back.event.len);
    if (!json_object_equal(e, event))
        fail_msg("envelope event != the Event without result");
    json_object_put(o);
    json_object_put(e);
    json_object_put(event);
}

static void parse_ok(ss_envelope_msg_t *ev, const char *body, size_t len) {
    char err[256] = "";
    char *p = exact(body, len);
    int rc = ss_webhook_event_parse(ev, p, len, "req_scan", err, sizeof(err));
    free(p);
    if (rc != 0)
        fail_msg("ss_webhook_event_parse: %s", err);
}

static void test_event_duplicate_keys_last_wins(void **state) {
    (void)state;
    const char *body =
        "{\"object\":\"Refund\",\"id\":\"evt_first\",\"description\":\"refund.successful\","
        "\"result\":{\"object\":\"Refund\",\"id\":\"rfnd_1\"},"
        "\"id\":\"evt_last\",\"object\":\"Event\","
        "\"result\":{\"object\":\"Shipment\",\"id\":\"trk_x\",\"object\":\"Tracker\","
        "\"id\":\"trk_2\",\"tracking_code\":\"TC1\",\"tracking_code\":\"TC2\"},"
        "\"description\":\"tracker.updated\"}";
    ss_envelope_msg_t ev;
    parse_ok(&ev, body, strlen(body));
    assert_string_equal(ev.env.event_id, "evt_last");
    assert_string_equal(ev.env.type, "tracker.updated");
    assert_string_equal(ev.env.object_type, "Tracker");
    assert_string_equal(ev.env.object_id, "trk_2");
    assert_string_equal(ev.key, "TC2");
    assert_int_equal(ev.topic, SS_TOPIC_TRACKERS);
    expect_envelope_matches(&ev, body, strlen(body));
    ss_envelope_msg_clear(&ev);

    /* "object":"Event" overridden by a later member: not an Event (json-c
     * would see the last one too) */
    const char *notev = "{\"object\":\"Event\",\"id\":\"evt_1\",\"description\":\"x.y\","
                        "\"result\":{},\"object\":\"Refund\"}";
    char err[256] = "";
    assert_int_equal(ss_webhook_event_parse(&ev, notev, strlen(notev), NULL, err, sizeof(err)), -1);
    /* a result that is later replaced by a non-object */
    const char *res = "{\"object\":\"Event\",\"id\":\"evt_1\",\"description\":\"x.y\","
                      "\"result\":{\"object\":\"Refund\",\"id\":\"r\"},\"result\":[]}";
    assert_int_equal(ss_webhook_event_parse(&ev, res, strlen(res), NULL, err, sizeof(err)), -1);

    /* an escaped "result" key is the result, and is left out of "event" */
    const char *esc =
        "{\"object\":\"Event\",\"id\":\"evt_e\",\"description\":\"refund.successful\","
        "\"\\u0072esult\":{\"object\":\"Refund\",\"id\":\"rfnd_e\"},\"n\":[1,\"}\"]}";
    parse_ok(&ev, esc, strlen(esc));
    assert_string_equal(ev.env.object_id, "rfnd_e");
    assert_int_equal(ev.topic, SS_TOPIC_EVENTS);
    expect_envelope_matches(&ev, esc, strlen(esc));
    ss_envelope_msg_clear(&ev);
}

/* The fixture re-indented token by token (the tokens' bytes unchanged):
 * newlines (\r\n or \n), tabs and spaces between every token. */
static char *pretty(const char *s, size_t n, size_t *outlen) {
    char *o = malloc(n * 40 + 64);
    size_t k = 0;
    int depth = 0;
    assert_non_null(o);
#define NEWLINE()                            \
    do {                                     \
        if (depth % 2) {                     \
            o[k++] = '\r';                   \
        }                                    \
        o[k++] = '\n';                       \
        for (int d_ = 0; d_ < depth; d_++) { \
            o[k++] = d_ % 2 ? '\t' : ' ';    \
            o[k++] = ' ';                    \
        }                                    \
    } while (0)
    o[k++] = '\n';
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '"') {
            size_t j = i + 1;
            while (s[j] != '"')
                j += s[j] == '\\' ? 2 : 1;
            memcpy(o + k, s + i, j + 1 - i);
            k += j + 1 - i;
            i = j;
        } else if (c == '{' || c == '[') {
            o[k++] = c;
            depth++;
            NEWLINE();
        } else if (c == '}' || c == ']') {
            depth--;
            NEWLINE();
            o[k++] = c;
        } else if (c == ',') {
            o[k++] = ' ';
            o[k++] = c;
            NEWLINE();
        } else if (c == ':') {
            o[k++] = '\t';
            o[k++] = c;
            o[k++] = ' ';
        } else {
            o[k++] = c;
        }
    }
#undef NEWLINE
    o[k++] = '\r';
    o[k++] = '\n';
    *outlen = k;
    return o;
}

static void test_event_fixture_pretty_and_compact(void **state) {
    (void)state;
    size_t len, plen;
    char *body = ss_test_fixture("event-tracker-updated.json", &len);
    char *pbody = pretty(body, len, &plen);
    assert_true(plen > len + 200);
    assert_non_null(memchr(pbody, '\t', plen));

    ss_envelope_msg_t a, b;
    parse_ok(&a, body, len);
    parse_ok(&b, pbody, plen);
    assert_string_equal(a.env.event_id, b.env.event_id);
    assert_string_equal(a.env.type, b.env.type);
    assert_string_equal(a.env.object_type, b.env.object_type);
    assert_string_equal(a.env.object_id, b.env.object_id);
    assert_string_equal(a.key, b.key);
    assert_int_equal(a.keylen, b.keylen);
    assert_int_equal(a.topic, b.topic);
    assert_int_equal(a.env.updated_at_usec, b.env.updated_at_usec);
    assert_string_equal(a.env.type, "tracker.updated");
    assert_string_equal(a.env.object_type, "Tracker");
    assert_int_equal(a.topic, SS_TOPIC_TRACKERS);
    assert_true(a.env.updated_at_usec != 0);

    expect_envelope_matches(&a, body, len);
    expect_envelope_matches(&b, pbody, plen);
    ss_envelope_msg_clear(&a);
    ss_envelope_msg_clear(&b);
    free(pbody);
    free(body);
}

/* Whatever ss_webhook_event_parse accepts (the receiver then answers 200
 * and EasyPost never resends it), ss_envelope_parse must read back: the
 * consumers have no other copy.  Deep nesting in the result, and in another
 * member of the Event (which gains one level inside "event"). */
static void test_event_deep_envelope_reads_back(void **state) {
    (void)state;
    char body[1024];
    for (int where = 0; where < 2; where++) {
        for (int d = 1; d <= SS_ENVELOPE_MAX_DEPTH + 2; d++) {
            size_t n = (size_t)sprintf(body,
                                       "{\"object\":\"Event\",\"id\":\"evt_deep\","
                                       "\"description\":\"refund.successful\","
                                       "\"result\":{\"object\":\"Refund\",\"id\":\"rfnd_d\"%s"
                                       "\"deep\":",
                                       where ? "}," : ",");
            for (int i = 0; i < d; i++)
                body[n++] = '[';
            for (int i = 0; i < d; i++)
                body[n++] = ']';
            n += (size_t)sprintf(body + n, "%s", where ? "}" : "}}");
            /* total nesting of the Event */
            int total = d + (where ? 1 : 2);
            ss_envelope_msg_t ev;
            char err[256] = "";
            int rc = ss_webhook_event_parse(&ev, body, n, NULL, err, sizeof(err));
            if (total > SS_ENVELOPE_MAX_DEPTH)
                assert_int_equal(rc, -1);
            if (rc != 0)
                continue;
            ss_envelope_t back;
            rc = ss_envelope_parse(&back, ev.value, ev.value_len, err, sizeof(err));
            ss_envelope_msg_clear(&ev);
            if (rc != 0)
                fail_msg("Event nested %d deep (%s) accepted, but its envelope is refused: %s",
                         total, where ? "in another member" : "in the result", err);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tracker_fixture),
        cmocka_unit_test(test_batch_fixture),
        cmocka_unit_test(test_route_by_result_type),
        cmocka_unit_test(test_unknown_event_kept),
        cmocka_unit_test(test_bad_bodies),
        cmocka_unit_test(test_trailing_whitespace_ok),
        cmocka_unit_test(test_event_duplicate_keys_last_wins),
        cmocka_unit_test(test_event_fixture_pretty_and_compact),
        cmocka_unit_test(test_event_deep_envelope_reads_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
