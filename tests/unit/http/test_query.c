/* Query-string parsing (http/query.h) and the /db cursor (services/gateway/cursor.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cursor.h"
#include "http/query.h"

static int get(const char *qs, const char *name, char *buf, size_t n) {
    return ss_query_get(qs, strlen(qs), name, buf, n);
}

static void test_query_get(void **state) {
    (void)state;
    char b[16];
    assert_int_equal(get("status=delivered&limit=5", "limit", b, sizeof b), 1);
    assert_string_equal(b, "5");
    assert_int_equal(get("status=in+transit", "status", b, sizeof b), 10);
    assert_string_equal(b, "in transit");
    assert_int_equal(get("q=caf%C3%A9", "q", b, sizeof b), 5);
    assert_string_equal(b, "café");
    assert_int_equal(get("a=1&a=2", "a", b, sizeof b), 1); /* the first wins */
    assert_string_equal(b, "1");
    assert_int_equal(get("limit", "limit", b, sizeof b), 0);
    assert_int_equal(get("limit=", "limit", b, sizeof b), 0);
    assert_int_equal(get("limits=3", "limit", b, sizeof b), SS_QUERY_ABSENT);
    assert_int_equal(get("", "limit", b, sizeof b), SS_QUERY_ABSENT);
    assert_int_equal(get("q=0123456789abcdef", "q", b, sizeof b), SS_QUERY_TOO_LONG);
    assert_int_equal(get("q=0123456789abcde", "q", b, sizeof b), 15);
}

static void test_query_malformed(void **state) {
    (void)state;
    char b[64];
    const char *bad[] = {
        "q=%FF",       /* invalid UTF-8: PostgreSQL would refuse it (500 before) */
        "q=%C3",       /* truncated sequence */
        "q=%ED%A0%80", /* surrogate */
        "q=%00",       /* NUL */
        "q=a%0Ab",     /* control character */
        "q=%",         /* truncated escape */
        "q=%4",        /* truncated escape */
        "q=%GG",       /* not hex */
        "q=%C0%AF",    /* overlong */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (get(bad[i], "q", b, sizeof b) != SS_QUERY_MALFORMED)
            fail_msg("%s: not refused as malformed", bad[i]);
}

static void test_query_known(void **state) {
    (void)state;
    static const char *const known[] = {"status", "limit", NULL};
    char bad[64];
    const char *ok = "status=x&limit=3&&status";
    assert_int_equal(ss_query_all_known(ok, strlen(ok), known, bad, sizeof bad), 1);
    const char *typo = "status=x&limt=3";
    assert_int_equal(ss_query_all_known(typo, strlen(typo), known, bad, sizeof bad), 0);
    assert_string_equal(bad, "limt");
    const char *ctl = "st\x01x=1";
    assert_int_equal(ss_query_all_known(ctl, strlen(ctl), known, bad, sizeof bad), 0);
    assert_string_equal(bad, "st?x");
}

static void hex(const char *raw, char *out) {
    for (size_t i = 0; raw[i]; i++)
        sprintf(out + 2 * i, "%02x", (unsigned char)raw[i]);
}

static void test_cursor(void **state) {
    (void)state;
    char c[600], id[GW_CURSOR_MAX_ID + 1];
    int64_t t;
    assert_int_equal(gw_cursor_encode(1732900000123456LL, "shp_abc123", c, sizeof c), 0);
    assert_int_equal(gw_cursor_decode(c, &t, id, sizeof id), 0);
    assert_true(t == 1732900000123456LL);
    assert_string_equal(id, "shp_abc123");
    assert_int_equal(gw_cursor_encode(-5, "adr_1", c, sizeof c), 0);
    assert_int_equal(gw_cursor_decode(c, &t, id, sizeof id), 0);
    assert_true(t == -5);

    const char *bad_raw[] = {
        "1234567890123456789012345678901:shp_1", /* 31 digits: was a 500 */
        "9999999999999999999:shp_1",             /* 19 digits */
        "253402300800000000:shp_1",              /* past year 9999 */
        ":shp_1",
        "-:shp_1",
        "12a:shp_1",
        "12",
        "12:",
        "12:shp 1",
        "12:shp_\xff",
        "12:shp_1:2",
        "--1:shp_1",
        "+1:shp_1",
    };
    for (size_t i = 0; i < sizeof bad_raw / sizeof bad_raw[0]; i++) {
        hex(bad_raw[i], c);
        if (gw_cursor_decode(c, &t, id, sizeof id) == 0)
            fail_msg("cursor '%s' accepted", bad_raw[i]);
    }
    assert_int_equal(gw_cursor_decode("zz", &t, id, sizeof id), -1);
    assert_int_equal(gw_cursor_decode("313", &t, id, sizeof id), -1);
    assert_int_equal(gw_cursor_decode("", &t, id, sizeof id), -1);
    assert_int_equal(gw_cursor_encode(0, "bad id", c, sizeof c), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_get),
        cmocka_unit_test(test_query_malformed),
        cmocka_unit_test(test_query_known),
        cmocka_unit_test(test_cursor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
