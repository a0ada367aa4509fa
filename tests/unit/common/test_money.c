/* Exact fixed-point money parsing and formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/money.h"

static int64_t parse_ok(const char *s, int scale) {
    int64_t v = 0;
    char err[128];
    if (ss_money_parse(s, scale, &v, err, sizeof(err)) != 0)
        fail_msg("\"%s\" refused: %s", s, err);
    return v;
}

static void parse_refused(const char *s, int scale, const char *why) {
    int64_t v = 12345;
    char err[128] = "";
    assert_int_equal(ss_money_parse(s, scale, &v, err, sizeof(err)), -1);
    assert_int_equal(v, 12345); /* untouched */
    if (!strstr(err, why))
        fail_msg("\"%s\": error \"%s\" does not say \"%s\"", s, err, why);
}

static void test_parse(void **state) {
    (void)state;
    assert_int_equal(parse_ok("8.20000", 9), 8200000000LL);
    assert_int_equal(parse_ok("-0.00001", 9), -10000LL);
    assert_int_equal(parse_ok("12", 9), 12000000000LL);
    assert_int_equal(parse_ok("0", 9), 0);
    assert_int_equal(parse_ok("-0", 9), 0);
    assert_int_equal(parse_ok("6.07", 2), 607);
    assert_int_equal(parse_ok("007.5", 2), 750);
    assert_int_equal(parse_ok("0.123456789", 9), 123456789);
    /* the largest amounts that fit, at both ends of the scale range */
    assert_int_equal(parse_ok("9223372036.854775807", 9), INT64_MAX);
    assert_int_equal(parse_ok("-9223372036.854775807", 9), -INT64_MAX);
    assert_int_equal(parse_ok("9223372036854775807", 0), INT64_MAX);
    assert_int_equal(parse_ok("9.223372036854775807", 18), INT64_MAX);
}

static void test_parse_refuses(void **state) {
    (void)state;
    parse_refused(NULL, 9, "no amount");
    parse_refused("", 9, "not a decimal");
    parse_refused("-", 9, "not a decimal");
    parse_refused("1.", 9, "not a decimal");
    parse_refused(".5", 9, "not a decimal");
    parse_refused("1e3", 9, "not a decimal");
    parse_refused("+1", 9, "not a decimal");
    parse_refused(" 1", 9, "not a decimal");
    parse_refused("1 ", 9, "not a decimal");
    parse_refused("1.2.3", 9, "not a decimal");
    parse_refused("0.1234567891", 9, "more than 9 digits");
    parse_refused("6.075", 2, "more than 2 digits");
    /* used to wrap negative (signed overflow) instead of being refused */
    parse_refused("9223372039", 9, "out of range");
    parse_refused("9223372036.854775808", 9, "out of range");
    parse_refused("9223372037", 9, "out of range");
    parse_refused("99999999999999999999", 9, "out of range");
    parse_refused("99999999999999999999", 0, "out of range");
    parse_refused("9223372036854775808", 0, "out of range");
    parse_refused("1", 19, "scale");
}

static void test_add(void **state) {
    (void)state;
    int64_t sum = INT64_MAX - 1;
    assert_int_equal(ss_money_add(&sum, 1), 0);
    assert_int_equal(sum, INT64_MAX);
    assert_int_equal(ss_money_add(&sum, 1), -1);
    assert_int_equal(sum, INT64_MAX);
    sum = INT64_MIN + 1;
    assert_int_equal(ss_money_add(&sum, -1), 0);
    assert_int_equal(ss_money_add(&sum, -1), -1);
    assert_int_equal(sum, INT64_MIN);
}

static void test_format(void **state) {
    (void)state;
    char buf[48];
    ss_money_format(8200000000LL, 9, buf, sizeof(buf));
    assert_string_equal(buf, "8.2");
    ss_money_format(-10000, 9, buf, sizeof(buf));
    assert_string_equal(buf, "-0.00001");
    ss_money_format(12000000000LL, 9, buf, sizeof(buf));
    assert_string_equal(buf, "12");
    ss_money_format(607, 2, buf, sizeof(buf));
    assert_string_equal(buf, "6.07");
    ss_money_format(5, 0, buf, sizeof(buf));
    assert_string_equal(buf, "5");
    ss_money_format(INT64_MIN, 9, buf, sizeof(buf));
    assert_string_equal(buf, "-9223372036.854775808");
    assert_int_equal(ss_money_format(INT64_MAX, 18, buf, sizeof(buf)), 20);
    assert_string_equal(buf, "9.223372036854775807");
    /* what format writes, parse reads back */
    const int64_t samples[] = {0, 1, -1, 999999999, 1000000000, 123456789012345LL, -INT64_MAX};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        ss_money_format(samples[i], 9, buf, sizeof(buf));
        assert_int_equal(parse_ok(buf, 9), samples[i]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
