/* Envelope -> row mapping on the real EasyPost fixtures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ss_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <envelope/envelope.h>
#include <common/sstime.h>
#include <sync/apply.h>
#include <sync/map.h>
#include <webhook/event.h>

/* Wraps a fixture through the production writers (the webhook receiver's
 * ss_webhook_event_parse for an Event, ss_envelope_write as the gateway
 * does otherwise) and parses the wire bytes back like the worker.  member:
 * take that member of the file (address-create-and-verify wraps its
 * Address in "address"). */
typedef struct {
    ss_envelope_t env;
    char *wire;
    size_t len;
} wire_t;

static void make_wire(wire_t *w, const char *file, const char *member, int is_event) {
    size_t len;
    char *text = ss_test_fixture(file, &len);
    ss_envelope_msg_t m;
    char err[256] = "";
    if (is_event) {
        if (ss_webhook_event_parse(&m, text, len, "req_1", err, sizeof(err)) != 0)
            fail_msg("%s: %s", file, err);
    } else {
        ss_json_span_t obj = {text, len};
        if (member) {
            const char *names[] = {member, NULL};
            assert_int_equal(ss_json_check(text, len, SS_ENVELOPE_SPAN_MAX_DEPTH, NULL), 0);
            ss_json_pick(ss_json_root(text, len), names, &obj);
            assert_non_null(obj.p);
        }
        ss_envelope_in_t in = {.source = SS_SOURCE_GATEWAY, .type = "x.updated", .object = obj};
        if (ss_envelope_write(&m, &in, err, sizeof(err)) != SS_ENVELOPE_OK)
            fail_msg("%s: %s", file, err);
    }
    w->wire = m.value; /* now owned by w */
    w->len = m.value_len;
    free(text);
    assert_int_equal(ss_envelope_parse(&w->env, w->wire, w->len, err, sizeof(err)), 0);
}

static void free_wire(wire_t *w) {
    free(w->wire);
}

static void map_ok(ss_sync_rows_t *r, wire_t *w, uint32_t msg) {
    char err[256];
    int rc = ss_sync_map(r, &w->env, w->wire, w->len, msg, err, sizeof(err));
    if (rc != 0)
        fail_msg("map failed: %s", err);
}

#define CELL(t, row, col) ss_sync_cell(&r, (t), (row), (col))

/* A gateway envelope of the object text (type: the envelope's type). */
static void make_wire_text(wire_t *w, const char *text, const char *type) {
    ss_envelope_msg_t m;
    char err[256] = "";
    ss_envelope_in_t in = {
        .source = SS_SOURCE_GATEWAY, .type = type, .object = {text, strlen(text)}};
    if (ss_envelope_write(&m, &in, err, sizeof(err)) != SS_ENVELOPE_OK)
        fail_msg("%s: %s", text, err);
    w->wire = m.value;
    w->len = m.value_len;
    assert_int_equal(ss_envelope_parse(&w->env, w->wire, w->len, err, sizeof(err)), 0);
}

/* Migration 0006: every type lands in a table; refunds and batches set their shipments'
 * columns (with their own versions). */
static void test_objects_of_every_type(void **state) {
    (void)state;
    static const struct {
        const char *text, *type;
    } in[] = {
        {"{\"id\":\"rfnd_1\",\"object\":\"Refund\",\"shipment_id\":\"shp_1\",\"status\":"
         "\"submitted\",\"mode\":\"test\",\"updated_at\":\"2026-11-20T10:00:00Z\"}",
         "refund.created"},
        {"{\"id\":\"rfnd_2\",\"object\":\"Refund\",\"shipment_id\":\"shp_2\","
         "\"updated_at\":\"2026-11-20T10:00:00Z\"}",
         "refund.retrieved"},
        {"{\"id\":\"batch_1\",\"object\":\"Batch\",\"updated_at\":\"2026-11-20T12:00:00Z\","
         "\"shipments\":[{\"id\":\"shp_1\",\"batch_status\":\"postage_purchased\","
         "\"batch_message\":null,\"tracking_code\":\"9400\"},{\"batch_status\":\"x\"},7]}",
         "batch.updated"},
        {"{\"id\":\"sf_1\",\"object\":\"ScanForm\",\"tracking_codes\":[\"a\",\"b\"],"
         "\"updated_at\":\"2026-11-20T12:00:00Z\"}",
         "scan_form.created"},
        {"{\"id\":\"pickup_1\",\"object\":\"Pickup\",\"address\":{\"id\":\"adr_p\"},"
         "\"is_account_address\":true,\"updated_at\":\"2026-11-20T12:00:00Z\"}",
         "pickup.created"},
        {"{\"id\":\"ins_1\",\"object\":\"Insurance\",\"amount\":\"100.00000\",\"fee\":{"
         "\"amount\":\"1.00000\"},\"tracker\":{\"id\":\"trk_1\"},\"updated_at\":null}",
         "insurance.created"},
        {"{\"id\":\"ca_1\",\"object\":\"CarrierAccount\",\"updated_at\":\"2026-11-20T12:00:00Z\"}",
         "carrier_account.retrieved"},
        {"{\"id\":\"evt_9\",\"object\":\"Event\",\"description\":\"tracker.updated\",\"mode\":"
         "\"test\",\"result\":{\"id\":\"trk_9\",\"object\":\"Tracker\"}}",
         "event.retrieved"},
        {"{\"id\":\"shp_3\",\"object\":\"Shipment\",\"refund_status\":\"refunded\","
         "\"batch_id\":\"batch_1\",\"batch_status\":\"created\",\"updated_at\":"
         "\"2026-11-20T09:00:00Z\"}",
         "shipment.retrieved"},
    };
    ss_sync_rows_t r;
    ss_sync_rows_init(&r);
    wire_t w[sizeof(in) / sizeof(in[0])];
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        make_wire_text(&w[i], in[i].text, in[i].type);
        map_ok(&r, &w[i], (uint32_t)i);
    }
    /* refunds: both stored; only the one with a status marks its shipment */
    assert_int_equal(r.t[SS_SYNC_T_REFUNDS].nrows, 2);
    assert_null(CELL(SS_SYNC_T_REFUNDS, 1, RF_STATUS));
    assert_int_equal(r.t[SS_SYNC_T_SHIPMENT_REFUND].nrows, 1);
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENT_REFUND, 0, SR_ID), "shp_1");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENT_REFUND, 0, SR_REFUND_STATUS), "submitted");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENT_REFUND, 0, SR_REFUND_UPDATED_AT),
                        "2026-11-20T10:00:00.000000Z");
    /* the batch's shipments with an id (the others are not rows) */
    assert_int_equal(r.t[SS_SYNC_T_SHIPMENT_BATCH].nrows, 1);
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENT_BATCH, 0, SB_ID), "shp_1");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENT_BATCH, 0, SB_BATCH_ID), "batch_1");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENT_BATCH, 0, SB_BATCH_STATUS), "postage_purchased");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENT_BATCH, 0, SB_BATCH_UPDATED_AT),
                        "2026-11-20T12:00:00.000000Z");
    assert_true(r.t[SS_SYNC_T_SHIPMENT_BATCH].order[0] == r.t[SS_SYNC_T_BATCHES].order[0]);
    assert_string_equal(CELL(SS_SYNC_T_SCAN_FORMS, 0, SF_TRACKING_CODES), "[\"a\",\"b\"]");
    assert_string_equal(CELL(SS_SYNC_T_PICKUPS, 0, PU_ADDRESS_ID), "adr_p");
    assert_string_equal(CELL(SS_SYNC_T_PICKUPS, 0, PU_IS_ACCOUNT_ADDRESS), "t");
    assert_string_equal(CELL(SS_SYNC_T_INSURANCES, 0, IN_FEE_AMOUNT), "1.00000");
    assert_string_equal(CELL(SS_SYNC_T_INSURANCES, 0, IN_TRACKER_ID), "trk_1");
    assert_null(CELL(SS_SYNC_T_INSURANCES, 0, IN_UPDATED_AT));
    assert_int_equal(r.t[SS_SYNC_T_OBJECTS].nrows, 1);
    assert_string_equal(CELL(SS_SYNC_T_OBJECTS, 0, OB_ID), "ca_1");
    assert_string_equal(CELL(SS_SYNC_T_OBJECTS, 0, OB_OBJECT_TYPE), "CarrierAccount");
    /* the API Event under its own id (objects without an id come only in webhook Events:
     * the writer refuses them; the v1 fixture webhook-unknown-result is one) */
    assert_int_equal(r.t[SS_SYNC_T_EVENTS].nrows, 1);
    assert_string_equal(CELL(SS_SYNC_T_EVENTS, 0, EV_ID), "evt_9");
    assert_string_equal(CELL(SS_SYNC_T_EVENTS, 0, EV_DESCRIPTION), "tracker.updated");
    assert_string_equal(CELL(SS_SYNC_T_EVENTS, 0, EV_OBJECT_TYPE), "Tracker");
    assert_string_equal(CELL(SS_SYNC_T_EVENTS, 0, EV_OBJECT_ID), "trk_9");
    /* a shipment's own gates: its updated_at for the columns it carries */
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_REFUND_UPDATED_AT),
                        "2026-11-20T09:00:00.000000Z");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_BATCH_UPDATED_AT),
                        "2026-11-20T09:00:00.000000Z");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_BATCH_STATUS), "created");
    ss_sync_rows_free(&r);
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
        free_wire(&w[i]);
}

static void test_shipment_buy(void **state) {
    (void)state;
    wire_t w;
    make_wire(&w, "api/shipment-buy.response.json", NULL, 0);
    ss_sync_rows_t r;
    ss_sync_rows_init(&r);
    map_ok(&r, &w, 7);

    assert_int_equal(r.t[SS_SYNC_T_SHIPMENTS].nrows, 1);
    assert_int_equal(r.t[SS_SYNC_T_SHIPMENTS].msg[0], 7);
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_ID),
                        "shp_16578f588f9546ec914afd2474e24ff5");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_STATUS), "unknown");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_TRACKING_CODE), "9400100208303109505657");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_TRACKER_ID),
                        "trk_279431562ef84af89555e5c8a2029b2f");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_CARRIER), "USPS");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_SERVICE), "GroundAdvantage");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_SELECTED_RATE_ID),
                        "rate_4d1f36fa716c4b1292cacbdf19227c2d");
    /* money stays the exact string; the charged fees add up exactly */
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_RATE), "6.07");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_TOTAL_COST), "6.07");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_CURRENCY), "USD");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_DELIVERY_DAYS), "3");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_FROM_ADDRESS_ID),
                        "adr_b21acf8efb7311ef9c71ac1f6bc539ae");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_TO_ADDRESS_ID),
                        "adr_b215ae4ffb7311efbccbac1f6bc53342");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_PARCEL_ID),
                        "prcl_f20a001b1b1b4a40a2c02bdb83dafb9c");
    assert_null(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_BATCH_ID)); /* JSON null */
    assert_null(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_REFUND_STATUS));
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_IS_RETURN), "f");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_USPS_ZONE), "4");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_CREATED_AT), "2025-03-07T16:46:20.000000Z");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_UPDATED_AT), "2025-03-07T16:46:20.000000Z");
    assert_non_null(strstr(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_LABEL_URL), "postage_label"));
    assert_memory_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_RAW), w.wire, w.len);

    /* timestamps go to PostgreSQL as a binary timestamptz[]: microseconds since
     * 2000-01-01 UTC, big endian; text columns as text[] */
    {
        ss_buf_t b = {0};
        size_t idx[1] = {0};
        assert_int_equal(ss_sync_encode_column(&b, &r, SS_SYNC_T_SHIPMENTS, idx, 1, SH_CREATED_AT),
                         0);
        const unsigned char *p = (const unsigned char *)b.data;
        assert_int_equal(b.len, 20 + 4 + 8);
        assert_int_equal((p[8] << 24) | (p[9] << 16) | (p[10] << 8) | p[11], 1184);
        int64_t want = 0, got = 0;
        assert_int_equal(ss_time_parse("2025-03-07T16:46:20Z", &want), 0);
        for (int i = 0; i < 8; i++)
            got = (int64_t)(((uint64_t)got << 8) | p[24 + i]);
        assert_int_equal(got, want - 946684800000000LL);
        assert_int_equal(ss_sync_encode_column(&b, &r, SS_SYNC_T_SHIPMENTS, idx, 1, SH_MODE), 0);
        p = (const unsigned char *)b.data;
        assert_int_equal((p[8] << 24) | (p[9] << 16) | (p[10] << 8) | p[11], 25);
        ss_buf_free(&b);
    }

    /* from/to; return = from and buyer = to are not repeated */
    assert_int_equal(r.t[SS_SYNC_T_ADDRESSES].nrows, 2);
    assert_string_equal(CELL(SS_SYNC_T_ADDRESSES, 0, AD_CITY), "San Francisco");
    assert_null(CELL(SS_SYNC_T_ADDRESSES, 0, AD_RESIDENTIAL));
    assert_null(CELL(SS_SYNC_T_ADDRESSES, 0, AD_VERIFIED)); /* verifications {} */
    /* "+00:00" form */
    assert_string_equal(CELL(SS_SYNC_T_ADDRESSES, 0, AD_CREATED_AT), "2025-03-07T16:46:19.000000Z");
    assert_string_equal(CELL(SS_SYNC_T_ADDRESSES, 1, AD_CITY), "REDONDO BEACH");
    assert_string_equal(CELL(SS_SYNC_T_ADDRESSES, 1, AD_RESIDENTIAL), "f");
    assert_string_equal(CELL(SS_SYNC_T_ADDRESSES, 1, AD_VERIFIED), "t");
    assert_string_equal(CELL(SS_SYNC_T_ADDRESSES, 1, AD_STREET2), "");
    /* embedded: no raw copy (the shipment's raw holds the address) */
    assert_null(CELL(SS_SYNC_T_ADDRESSES, 0, AD_RAW));
    assert_null(CELL(SS_SYNC_T_ADDRESSES, 1, AD_RAW));
    /* each row remembers the object it came from */
    assert_non_null(r.t[SS_SYNC_T_ADDRESSES].obj[1]);
    assert_string_equal(
        json_object_get_string(json_object_object_get(r.t[SS_SYNC_T_ADDRESSES].obj[1], "city")),
        "REDONDO BEACH");

    /* floats keep the text EasyPost sent */
    assert_int_equal(r.t[SS_SYNC_T_PARCELS].nrows, 1);
    assert_string_equal(CELL(SS_SYNC_T_PARCELS, 0, PA_WEIGHT), "15.4");
    assert_string_equal(CELL(SS_SYNC_T_PARCELS, 0, PA_LENGTH), "10.0");
    assert_null(CELL(SS_SYNC_T_PARCELS, 0, PA_PREDEFINED_PACKAGE));

    /* only the selected (purchased) rate of the three is a rates row (0009) */
    assert_int_equal(r.t[SS_SYNC_T_RATES].nrows, 1);
    assert_string_equal(CELL(SS_SYNC_T_RATES, 0, RA_ID), "rate_4d1f36fa716c4b1292cacbdf19227c2d");
    assert_string_equal(CELL(SS_SYNC_T_RATES, 0, RA_RATE), "6.07");
    assert_string_equal(CELL(SS_SYNC_T_RATES, 0, RA_SHIPMENT_ID),
                        "shp_16578f588f9546ec914afd2474e24ff5");
    assert_null(CELL(SS_SYNC_T_RATES, 0, RA_DELIVERY_DATE));
    assert_string_equal(CELL(SS_SYNC_T_RATES, 0, RA_DELIVERY_DATE_GUARANTEED), "f");
    assert_int_equal(r.t[SS_SYNC_T_TRACKERS].nrows, 0);

    ss_sync_rows_free(&r);
    free_wire(&w);
}

static void test_shipment_create_unbought(void **state) {
    (void)state;
    wire_t w;
    make_wire(&w, "api/shipment-create.response.json", NULL, 0);
    ss_sync_rows_t r;
    ss_sync_rows_init(&r);
    map_ok(&r, &w, 0);
    assert_int_equal(r.t[SS_SYNC_T_SHIPMENTS].nrows, 1);
    assert_null(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_CARRIER));
    assert_null(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_RATE));
    assert_null(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_TOTAL_COST));
    /* nothing purchased: no rates row (every rate stays in the shipment's raw) */
    assert_int_equal(r.t[SS_SYNC_T_RATES].nrows, 0);
    ss_sync_rows_free(&r);
    free_wire(&w);
}

static void test_tracker_retrieve(void **state) {
    (void)state;
    wire_t w;
    make_wire(&w, "api/tracker-retrieve.response.json", NULL, 0);
    ss_sync_rows_t r;
    ss_sync_rows_init(&r);
    map_ok(&r, &w, 3);
    assert_int_equal(r.t[SS_SYNC_T_TRACKERS].nrows, 1);
    assert_string_equal(CELL(SS_SYNC_T_TRACKERS, 0, TR_ID), "trk_e7e8f143f3eb40d38be9562e3767c36a");
    assert_string_equal(CELL(SS_SYNC_T_TRACKERS, 0, TR_STATUS), "pre_transit");
    assert_null(CELL(SS_SYNC_T_TRACKERS, 0, TR_SHIPMENT_ID));
    assert_null(CELL(SS_SYNC_T_TRACKERS, 0, TR_WEIGHT));
    assert_string_equal(CELL(SS_SYNC_T_TRACKERS, 0, TR_EST_DELIVERY_DATE),
                        "2025-03-06T19:48:26.000000Z");
    assert_int_equal(r.t[SS_SYNC_T_TRACKING_EVENTS].nrows, 2);
    assert_string_equal(CELL(SS_SYNC_T_TRACKING_EVENTS, 1, TE_MESSAGE), "Shipping Label Created");
    assert_string_equal(CELL(SS_SYNC_T_TRACKING_EVENTS, 1, TE_CITY), "HOUSTON");
    assert_null(CELL(SS_SYNC_T_TRACKING_EVENTS, 1, TE_COUNTRY));
    assert_string_equal(CELL(SS_SYNC_T_TRACKING_EVENTS, 1, TE_OCCURRED_AT),
                        "2025-02-07T08:25:26.000000Z");
    /* no shipment id: no shipment row */
    assert_int_equal(r.t[SS_SYNC_T_SHIPMENT_TRACK].nrows, 0);
    ss_sync_rows_free(&r);
    free_wire(&w);
}

static void test_tracker_create(void **state) {
    (void)state;
    wire_t w;
    make_wire(&w, "api/tracker-create.response.json", NULL, 0);
    ss_sync_rows_t r;
    ss_sync_rows_init(&r);
    map_ok(&r, &w, 0);
    assert_int_equal(r.t[SS_SYNC_T_TRACKERS].nrows, 1);
    ss_sync_rows_free(&r);
    free_wire(&w);
}

/* Webhook Event: milliseconds timestamps, float weight, shipment placeholder. */
static void test_event_tracker_updated(void **state) {
    (void)state;
    wire_t w;
    make_wire(&w, "event-tracker-updated.json", NULL, 1);
    assert_string_equal(w.env.event_id, "evt_1");
    ss_sync_rows_t r;
    ss_sync_rows_init(&r);
    map_ok(&r, &w, 0);
    assert_int_equal(r.t[SS_SYNC_T_TRACKERS].nrows, 1);
    assert_string_equal(CELL(SS_SYNC_T_TRACKERS, 0, TR_WEIGHT), "614.4");
    assert_string_equal(CELL(SS_SYNC_T_TRACKERS, 0, TR_UPDATED_AT), "2024-08-02T19:26:51.000000Z");
    assert_true(r.t[SS_SYNC_T_TRACKING_EVENTS].nrows >= 3);
    assert_string_equal(CELL(SS_SYNC_T_TRACKING_EVENTS, 0, TE_CARRIER_CODE), "OC");
    assert_string_equal(CELL(SS_SYNC_T_TRACKING_EVENTS, 0, TE_ZIP), "32837");
    /* every webhook Event is recorded in easypost_events, whatever its topic */
    assert_int_equal(r.t[SS_SYNC_T_EVENTS].nrows, 1);
    assert_string_equal(CELL(SS_SYNC_T_EVENTS, 0, EV_ID), "evt_1");
    assert_string_equal(CELL(SS_SYNC_T_EVENTS, 0, EV_OBJECT_TYPE), "Tracker");
    ss_sync_rows_free(&r);
    free_wire(&w);
}

static void test_event_batch_created(void **state) {
    (void)state;
    wire_t w;
    make_wire(&w, "event-batch-created.json", NULL, 1);
    ss_sync_rows_t r;
    ss_sync_rows_init(&r);
    map_ok(&r, &w, 0);
    assert_int_equal(r.t[SS_SYNC_T_BATCHES].nrows, 1);
    assert_string_equal(CELL(SS_SYNC_T_BATCHES, 0, BA_STATE), "created");
    assert_string_equal(CELL(SS_SYNC_T_BATCHES, 0, BA_NUM_SHIPMENTS), "0");
    assert_null(CELL(SS_SYNC_T_BATCHES, 0, BA_SCAN_FORM_ID));
    assert_non_null(strstr(CELL(SS_SYNC_T_BATCHES, 0, BA_STATUS), "\"postage_purchased\":0"));
    assert_int_equal(r.t[SS_SYNC_T_EVENTS].nrows, 1);
    assert_string_equal(CELL(SS_SYNC_T_EVENTS, 0, EV_DESCRIPTION), "batch.created");
    ss_sync_rows_free(&r);
    free_wire(&w);
}

static void test_batch_and_address(void **state) {
    (void)state;
    wire_t b, a;
    make_wire(&b, "api/batch-create.response.json", NULL, 0);
    make_wire(&a, "api/address-create-and-verify.response.json", "address", 0);
    ss_sync_rows_t r;
    ss_sync_rows_init(&r);
    map_ok(&r, &b, 0);
    map_ok(&r, &a, 1);
    assert_string_equal(CELL(SS_SYNC_T_BATCHES, 0, BA_STATE), "creating");
    assert_null(CELL(SS_SYNC_T_BATCHES, 0, BA_REFERENCE));
    assert_int_equal(r.t[SS_SYNC_T_ADDRESSES].nrows, 1);
    assert_string_equal(CELL(SS_SYNC_T_ADDRESSES, 0, AD_ZIP), "94107-1670");
    assert_string_equal(CELL(SS_SYNC_T_ADDRESSES, 0, AD_RESIDENTIAL), "t");
    assert_string_equal(CELL(SS_SYNC_T_ADDRESSES, 0, AD_VERIFIED), "t");
    assert_null(CELL(SS_SYNC_T_ADDRESSES, 0, AD_COMPANY));
    /* from the addresses topic: its only raw copy */
    assert_non_null(CELL(SS_SYNC_T_ADDRESSES, 0, AD_RAW));
    assert_non_null(strstr(CELL(SS_SYNC_T_ADDRESSES, 0, AD_RAW), "\"zip\":\"94107-1670\""));
    ss_sync_rows_free(&r);
    free_wire(&b);
    free_wire(&a);
}

/* Wire bytes mapped by map_text (the rows own what they point into; the
 * bytes are kept only to show that they need not be). */
static char *kept_wire[16];
static int nkept;

static void free_kept(void) {
    for (int i = 0; i < nkept; i++)
        free(kept_wire[i]);
    nkept = 0;
}

/* Builds an envelope from JSON text of an object with the writer. */
static int map_text(ss_sync_rows_t *r, const char *objtext, uint32_t msg, char *err,
                    size_t errsize) {
    ss_envelope_in_t in = {
        .source = SS_SOURCE_GATEWAY, .type = "t", .object = {objtext, strlen(objtext)}};
    ss_envelope_msg_t m;
    assert_int_equal(ss_envelope_write(&m, &in, err, errsize), SS_ENVELOPE_OK);
    assert_true(nkept < 16);
    kept_wire[nkept++] = m.value;
    ss_envelope_t e;
    assert_int_equal(ss_envelope_parse(&e, m.value, m.value_len, err, errsize), 0);
    return ss_sync_map(r, &e, m.value, m.value_len, msg, err, errsize);
}

static void test_timestamps_and_money(void **state) {
    (void)state;
    ss_sync_rows_t r;
    ss_sync_rows_init(&r);
    char err[256];
    const char *obj =
        "{\"object\":\"Shipment\",\"id\":\"shp_t\",\"created_at\":\"2024-08-15T20:44:40.123Z\","
        "\"updated_at\":\"2024-08-15T20:44:40.123456-07:00\",\"selected_rate\":{\"id\":\"rate_1\","
        "\"rate\":\"8.20000\",\"carrier\":\"UPS\",\"service\":\"Ground\",\"delivery_date\":\"2024-"
        "08-20\"},"
        "\"fees\":[{\"amount\":\"0.10000\",\"charged\":true},{\"amount\":\"8.20000\",\"charged\":"
        "true},"
        "{\"amount\":\"99.00000\",\"charged\":false},{\"amount\":\"0.00001\",\"charged\":true}]}";
    assert_int_equal(map_text(&r, obj, 0, err, sizeof(err)), 0);
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_CREATED_AT), "2024-08-15T20:44:40.123000Z");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_UPDATED_AT), "2024-08-16T03:44:40.123456Z");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_RATE), "8.20000");
    assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_TOTAL_COST), "8.30001");
    /* the selected rate not in "rates": still a rates row; bare date form */
    assert_int_equal(r.t[SS_SYNC_T_RATES].nrows, 1);
    assert_string_equal(CELL(SS_SYNC_T_RATES, 0, RA_DELIVERY_DATE), "2024-08-20T00:00:00.000000Z");

    /* a bad timestamp is poison and adds no row */
    size_t before = r.t[SS_SYNC_T_SHIPMENTS].nrows;
    assert_int_equal(
        map_text(&r, "{\"object\":\"Shipment\",\"id\":\"shp_u\",\"created_at\":\"yesterday\"}", 1,
                 err, sizeof(err)),
        -1);
    assert_non_null(strstr(err, "created_at"));
    assert_int_equal(r.t[SS_SYNC_T_SHIPMENTS].nrows, before);
    /* a bad fee amount too, an amount that does not fit (it used to wrap
     * negative) and fees whose sum would overflow */
    static const struct {
        const char *fees, *why;
    } bad_fees[] = {
        {"{\"amount\":\"1.2.3\",\"charged\":true}", "fees[0]"},
        {"{\"amount\":\"9223372039\",\"charged\":true}", "fees[0]"},
        {"{\"amount\":\"9000000000\",\"charged\":true},{\"amount\":\"9000000000\","
         "\"charged\":true}",
         "fees[1]"},
    };
    for (size_t i = 0; i < sizeof(bad_fees) / sizeof(bad_fees[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "{\"object\":\"Shipment\",\"id\":\"shp_v\",\"fees\":[%s]}",
                 bad_fees[i].fees);
        assert_int_equal(map_text(&r, text, 2, err, sizeof(err)), -1);
        assert_non_null(strstr(err, bad_fees[i].why));
    }
    assert_int_equal(r.t[SS_SYNC_T_RATES].nrows, 1);
    assert_int_equal(r.t[SS_SYNC_T_SHIPMENTS].nrows, before);
    /* a money string that is not a number passes through: PostgreSQL rejects it (22P02) */
    assert_int_equal(map_text(&r,
                              "{\"object\":\"Shipment\",\"id\":\"shp_w\",\"selected_rate\":{\"id\":"
                              "\"rate_w\",\"rate\":\"abc\"}}",
                              3, err, sizeof(err)),
                     0);
    ss_sync_rows_free(&r);
    free_kept();
}

/* Reduce keeps the newest version of each id (ties: the last added) and
 * skips messages not kept. */
/* The rows are reused batch after batch (issue 15): arena chunks kept and refilled, the
 * previous batch's trees freed as the next batch's take their slots, a message bigger
 * than a chunk in a chunk of its own.  Every cell stays right (and ASan clean). */
static void test_rows_reused_across_batches(void **state) {
    (void)state;
    wire_t w, big;
    make_wire(&w, "api/shipment-buy.response.json", NULL, 0);
    size_t n = 100000;
    char *text = malloc(n + 200);
    assert_non_null(text);
    int k = snprintf(text, 200, "{\"object\":\"Address\",\"id\":\"adr_big\",\"street1\":\"");
    memset(text + k, 'x', n);
    snprintf(text + k + n, 200, "\",\"updated_at\":\"2026-01-02T03:04:05Z\"}");
    make_wire_text(&big, text, "address.updated");
    ss_sync_rows_t r;
    ss_sync_rows_init(&r);
    for (int batch = 0; batch < 4; batch++) {
        size_t msgs = batch == 1 ? 10 : 120; /* more than one 64 KiB chunk of raw copies */
        for (size_t i = 0; i < msgs; i++) {
            map_ok(&r, &w, (uint32_t)i);
            if (batch >= 2 && i == 5)
                map_ok(&r, &big, (uint32_t)i);
        }
        assert_int_equal(r.t[SS_SYNC_T_SHIPMENTS].nrows, msgs);
        for (size_t i = 0; i < msgs; i++) {
            const char *raw = CELL(SS_SYNC_T_SHIPMENTS, i, SH_RAW);
            assert_non_null(raw);
            assert_int_equal(strlen(raw), w.len);
            assert_memory_equal(raw, w.wire, w.len);
            assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, i, SH_ID), w.env.object_id);
            assert_non_null(CELL(SS_SYNC_T_SHIPMENTS, i, SH_UPDATED_AT));
        }
        if (batch >= 2) {
            size_t a = 0, na = r.t[SS_SYNC_T_ADDRESSES].nrows;
            while (a < na && strcmp(CELL(SS_SYNC_T_ADDRESSES, a, AD_ID), "adr_big") != 0)
                a++;
            assert_true(a < na);
            assert_int_equal(strlen(CELL(SS_SYNC_T_ADDRESSES, a, AD_STREET1)), n);
            assert_non_null(strstr(CELL(SS_SYNC_T_ADDRESSES, a, AD_RAW), "adr_big"));
        }
        ss_sync_rows_reset(&r);
        assert_int_equal(r.t[SS_SYNC_T_SHIPMENTS].nrows, 0);
    }
    ss_sync_rows_free(&r);
    free(text);
    free_wire(&big);
    free_wire(&w);
}

static void test_reduce(void **state) {
    (void)state;
    ss_sync_rows_t r;
    ss_sync_rows_init(&r);
    char err[256];
    const char *v[] = {
        "{\"object\":\"Batch\",\"id\":\"batch_a\",\"updated_at\":\"2024-01-02T00:00:00Z\","
        "\"state\":\"v2\"}",
        "{\"object\":\"Batch\",\"id\":\"batch_a\",\"updated_at\":\"2024-01-01T00:00:00Z\","
        "\"state\":\"v1\"}",
        "{\"object\":\"Batch\",\"id\":\"batch_b\",\"updated_at\":\"2024-01-01T00:00:00Z\","
        "\"state\":\"b1\"}",
        "{\"object\":\"Batch\",\"id\":\"batch_b\",\"updated_at\":\"2024-01-01T00:00:00Z\","
        "\"state\":\"b1bis\"}",
        "{\"object\":\"Batch\",\"id\":\"batch_c\",\"updated_at\":\"2024-01-03T00:00:00Z\","
        "\"state\":\"c-dropped\"}",
    };
    for (uint32_t i = 0; i < 5; i++)
        assert_int_equal(map_text(&r, v[i], i, err, sizeof(err)), 0);
    unsigned char keep[5] = {1, 1, 1, 1, 0};
    size_t *idx, sup;
    long n = ss_sync_reduce(&r, SS_SYNC_T_BATCHES, keep, &idx, &sup);
    assert_int_equal(n, 2);
    assert_int_equal(sup, 2);
    assert_string_equal(CELL(SS_SYNC_T_BATCHES, idx[0], BA_STATE), "v2");
    assert_string_equal(CELL(SS_SYNC_T_BATCHES, idx[1], BA_STATE), "b1bis");
    free(idx);
    ss_sync_rows_free(&r);
    free_kept();
}

/* The fast timestamp formatter writes exactly what ss_time_format writes. */
static void test_time_format_matches(void **state) {
    (void)state;
    static const int64_t fixed[] = {0,
                                    -1,
                                    1,
                                    951782400000000LL /* 2000-02-29 */,
                                    -62167219200000000LL /* 0000-01-01 */,
                                    253402300799999999LL /* 9999-12-31T23:59:59.999999 */,
                                    4102444800000000LL,
                                    -2208988800000001LL};
    char a[SS_TIME_BUFSIZE], b[SS_TIME_BUFSIZE];
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        size_t na = ss_sync_time_format(fixed[i], a, sizeof(a));
        size_t nb = ss_time_format(fixed[i], b, sizeof(b));
        assert_int_equal(na, nb);
        assert_string_equal(a, b);
    }
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* 1900 .. 2100 with microseconds */
        int64_t u = -2208988800000000LL + (int64_t)(x % 6311433600000000ULL);
        size_t na = ss_sync_time_format(u, a, sizeof(a));
        size_t nb = ss_time_format(u, b, sizeof(b));
        assert_int_equal(na, nb);
        assert_string_equal(a, b);
    }
}

/* A Shipment's tree is built without its offered rates and with its tracker cut to its id
 * unless every_rate (ss_sync_map): every table but rates gets the same cells as from the whole
 * tree, and rates the selected one. */
static void assert_same_rows(const ss_sync_rows_t *a, const ss_sync_rows_t *b, int t) {
    assert_int_equal(a->t[t].nrows, b->t[t].nrows);
    int nc = a->t[t].ncols;
    for (size_t i = 0; i < a->t[t].nrows * (size_t)nc; i++) {
        const char *x = a->t[t].cells[i], *y = b->t[t].cells[i];
        if (!x || !y) {
            if (x != y)
                fail_msg("table %d row %zu column %zu: %s against %s", t, i / (size_t)nc,
                         i % (size_t)nc, x ? x : "NULL", y ? y : "NULL");
        } else if (strcmp(x, y) != 0) {
            fail_msg("table %d row %zu column %zu: %s against %s", t, i / (size_t)nc,
                     i % (size_t)nc, x, y);
        }
    }
}

static void test_shipment_tree_slim(void **state) {
    (void)state;
    static const char *const files[] = {"api/shipment-buy.response.json",
                                        "api/shipment-create.response.json"};
    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        wire_t w;
        make_wire(&w, files[f], NULL, 0);
        ss_sync_rows_t whole, slim;
        ss_sync_rows_init(&whole);
        ss_sync_rows_init(&slim);
        whole.every_rate = 1;
        map_ok(&whole, &w, 1);
        map_ok(&slim, &w, 1);
        assert_non_null(slim.slim); /* the fixture has rates: the slim copy was made */
        for (int t = 0; t < SS_SYNC_T__COUNT; t++)
            if (t != SS_SYNC_T_RATES)
                assert_same_rows(&whole, &slim, t);
        assert_true(whole.t[SS_SYNC_T_RATES].nrows >= 2);
        const char *sel = ss_sync_cell(&slim, SS_SYNC_T_SHIPMENTS, 0, SH_SELECTED_RATE_ID);
        if (sel) { /* bought: its rate is the one rates row */
            assert_int_equal(slim.t[SS_SYNC_T_RATES].nrows, 1);
            int found = 0;
            for (size_t i = 0; i < whole.t[SS_SYNC_T_RATES].nrows; i++) {
                if (strcmp(ss_sync_cell(&whole, SS_SYNC_T_RATES, i, RA_ID), sel) != 0)
                    continue;
                found = 1;
                for (int col = 0; col < whole.t[SS_SYNC_T_RATES].ncols; col++) {
                    const char *x = ss_sync_cell(&whole, SS_SYNC_T_RATES, i, col);
                    const char *y = ss_sync_cell(&slim, SS_SYNC_T_RATES, 0, col);
                    if (x && y)
                        assert_string_equal(x, y);
                    else
                        assert_ptr_equal(x, y);
                }
            }
            assert_true(found);
        } else {
            assert_int_equal(slim.t[SS_SYNC_T_RATES].nrows, 0);
        }
        /* the stored raw is still the whole message, rates and all */
        assert_memory_equal(ss_sync_cell(&slim, SS_SYNC_T_SHIPMENTS, 0, SH_RAW), w.wire, w.len);
        ss_sync_rows_free(&whole);
        ss_sync_rows_free(&slim);
        free_wire(&w);
    }

    /* "rates" and "tracker" first, last, twice: what is left is still one JSON object, and
     * the tracker's id (or its absence) comes through */
    static const char *const texts[] = {
        "{\"rates\":[{\"id\":\"rate_1\"}],\"object\":\"Shipment\",\"id\":\"shp_r1\","
        "\"mode\":\"test\",\"status\":\"unknown\"}",
        "{\"object\":\"Shipment\",\"id\":\"shp_r1\",\"mode\":\"test\",\"rates\":[],"
        "\"status\":\"unknown\",\"rates\":{\"x\":[1,2]}}",
        "{\"object\":\"Shipment\",\"id\":\"shp_r1\",\"mode\":\"test\",\"status\":\"unknown\","
        "\"rates\":[{\"id\":\"rate_1\",\"rate\":\"1.00\"}]}",
        "{\"tracker\":{\"status\":\"x\",\"tracking_details\":[{\"id\":\"no\"}],\"id\":\"trk_9\"},"
        "\"object\":\"Shipment\",\"id\":\"shp_r1\",\"mode\":\"test\",\"status\":\"unknown\"}",
        "{\"object\":\"Shipment\",\"id\":\"shp_r1\",\"mode\":\"test\",\"status\":\"unknown\","
        "\"tracker\":{\"id\":\"trk_1\"},\"rates\":[],\"tracker\":{\"id\":\"trk_9\",\"x\":[]}}",
        "{\"object\":\"Shipment\",\"id\":\"shp_r1\",\"mode\":\"test\",\"status\":\"unknown\","
        "\"tracker\":{\"status\":\"x\"}}",
        "{\"object\":\"Shipment\",\"id\":\"shp_r1\",\"mode\":\"test\",\"status\":\"unknown\","
        "\"tracker\":null}",
    };
    static const char *const tracker_ids[] = {NULL, NULL, NULL, "trk_9", "trk_9", NULL, NULL};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        wire_t w;
        make_wire_text(&w, texts[i], "shipment.updated");
        ss_sync_rows_t r;
        ss_sync_rows_init(&r);
        map_ok(&r, &w, 0);
        assert_int_equal(r.t[SS_SYNC_T_SHIPMENTS].nrows, 1);
        assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_ID), "shp_r1");
        assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_MODE), "test");
        assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_STATUS), "unknown");
        if (tracker_ids[i])
            assert_string_equal(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_TRACKER_ID), tracker_ids[i]);
        else
            assert_null(CELL(SS_SYNC_T_SHIPMENTS, 0, SH_TRACKER_ID));
        assert_int_equal(r.t[SS_SYNC_T_RATES].nrows, 0);
        ss_sync_rows_free(&r);
        free_wire(&w);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipment_buy),
        cmocka_unit_test(test_shipment_create_unbought),
        cmocka_unit_test(test_shipment_tree_slim),
        cmocka_unit_test(test_tracker_retrieve),
        cmocka_unit_test(test_tracker_create),
        cmocka_unit_test(test_event_tracker_updated),
        cmocka_unit_test(test_event_batch_created),
        cmocka_unit_test(test_batch_and_address),
        cmocka_unit_test(test_objects_of_every_type),
        cmocka_unit_test(test_timestamps_and_money),
        cmocka_unit_test(test_rows_reused_across_batches),
        cmocka_unit_test(test_reduce),
        cmocka_unit_test(test_time_format_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
