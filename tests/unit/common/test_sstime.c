#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/sstime.h"

/* 2024-08-15T20:44:40Z */
#define T0 INT64_C(1723754680000000)

static void test_easypost_forms(void **state) {
    (void)state;
    int64_t t;
    assert_int_equal(ss_time_parse("2024-08-15T20:44:40Z", &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(ss_time_parse("2024-08-15T20:44:40+00:00", &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(ss_time_parse("2024-08-15T20:44:40.123Z", &t), 0);
    assert_int_equal(t, T0 + 123000);
    assert_int_equal(ss_time_parse("2024-08-15T20:44:40.123456+00:00", &t), 0);
    assert_int_equal(t, T0 + 123456);
    assert_int_equal(ss_time_parse("2024-08-15T13:44:40-07:00", &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(ss_time_parse("2024-08-15T22:44:40+0200", &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(ss_time_parse("2024-08-15", &t), 0);
    assert_int_equal(t, T0 - (20 * 3600 + 44 * 60 + 40) * INT64_C(1000000));
    /* nanoseconds are truncated to microseconds */
    assert_int_equal(ss_time_parse("2024-08-15T20:44:40.123456789Z", &t), 0);
    assert_int_equal(t, T0 + 123456);
    assert_int_equal(ss_time_parse("1970-01-01T00:00:00Z", &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(ss_time_parse("2024-02-29T00:00:00Z", &t), 0);
}

static void test_garbage(void **state) {
    (void)state;
    int64_t t = 42;
    const char *bad[] = {"",
                         "garbage",
                         "2024-08-15T20:44:40", /* no zone */
                         "2024-08-15T20:44:40ZZ",
                         "2024-13-01T00:00:00Z",
                         "2023-02-29T00:00:00Z",
                         "2024-08-32T00:00:00Z",
                         "2024-08-15T24:00:00Z",
                         "2024-08-15T20:44Z",
                         "2024-08-15T20:44:40.Z",
                         "2024-08-15T20:44:40+25:00",
                         "2024-8-15T20:44:40Z",
                         "2024-08-15T20:44:40Z trailing",
                         NULL};
    for (int i = 0; bad[i]; i++) {
        if (ss_time_parse(bad[i], &t) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    assert_int_equal(ss_time_parse(NULL, &t), -1);
    assert_int_equal(t, 42);
}

static void test_format_round_trip(void **state) {
    (void)state;
    char buf[SS_TIME_BUFSIZE];
    assert_int_equal(ss_time_format(T0 + 5, buf, sizeof buf), 27);
    assert_string_equal(buf, "2024-08-15T20:44:40.000005Z");
    int64_t t;
    assert_int_equal(ss_time_parse(buf, &t), 0);
    assert_int_equal(t, T0 + 5);
    assert_int_equal(ss_time_format(T0, buf, 10), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_easypost_forms),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_format_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
