#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/backoff.h"

static void test_backoff_capped_with_jitter(void **state) {
    (void)state;
    ss_backoff_t b = {.base_ms = 100, .max_ms = 1000};
    int expect_ceil[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (size_t i = 0; i < sizeof expect_ceil / sizeof expect_ceil[0]; i++) {
        assert_int_equal(ss_backoff_ceiling(&b), expect_ceil[i]);
        int d = ss_backoff_next(&b);
        assert_in_range(d, expect_ceil[i] / 2, expect_ceil[i]);
    }
    ss_backoff_reset(&b);
    assert_int_equal(b.attempt, 0);
    assert_in_range(ss_backoff_next(&b), 50, 100);
}

static void test_backoff_defaults(void **state) {
    (void)state;
    ss_backoff_t b = {0};
    assert_int_equal(ss_backoff_ceiling(&b), 100);
    for (int i = 0; i < 20; i++)
        ss_backoff_next(&b);
    assert_int_equal(ss_backoff_ceiling(&b), 30000);
}

/* Thousands of failures (a long outage) neither overflow nor pass the cap. */
static void test_backoff_long_outage(void **state) {
    (void)state;
    ss_backoff_t b = {.base_ms = 250, .max_ms = 10000};
    for (int i = 0; i < 5000; i++) {
        int d = ss_backoff_next(&b);
        assert_in_range(d, i < 6 ? 125 : 5000, 10000);
    }
    assert_int_equal(ss_backoff_ceiling(&b), 10000);
}

/* The delay is jittered: replicas that failed together do not retry together. */
static void test_backoff_jitter_spreads(void **state) {
    (void)state;
    int lo = 0, hi = 0;
    for (int i = 0; i < 400; i++) {
        ss_backoff_t b = {.base_ms = 1000, .max_ms = 1000};
        int d = ss_backoff_next(&b);
        assert_in_range(d, 500, 1000);
        lo += d < 750;
        hi += d >= 750;
    }
    assert_true(lo > 100);
    assert_true(hi > 100);
}

static void test_backoff_tiny_base(void **state) {
    (void)state;
    ss_backoff_t b = {.base_ms = 1, .max_ms = 2};
    assert_in_range(ss_backoff_next(&b), 0, 1);
    assert_in_range(ss_backoff_next(&b), 1, 2);
    assert_in_range(ss_backoff_next(&b), 1, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_capped_with_jitter),
        cmocka_unit_test(test_backoff_defaults),
        cmocka_unit_test(test_backoff_long_outage),
        cmocka_unit_test(test_backoff_jitter_spreads),
        cmocka_unit_test(test_backoff_tiny_base),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
