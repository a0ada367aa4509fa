#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/stats.h"

static void test_rank(void **state) {
    (void)state;
    assert_int_equal(ss_stats_rank(0, 50), 0);
    assert_int_equal(ss_stats_rank(1, 0), 1);
    assert_int_equal(ss_stats_rank(1, 99.9), 1);
    assert_int_equal(ss_stats_rank(100, 50), 50);
    assert_int_equal(ss_stats_rank(100, 99), 99);
    assert_int_equal(ss_stats_rank(100, 99.9), 100);
    assert_int_equal(ss_stats_rank(100, 100), 100);
    assert_int_equal(ss_stats_rank(100, 150), 100);
    assert_int_equal(ss_stats_rank(100, -1), 1);
    assert_int_equal(ss_stats_rank(10, 95), 10); /* ceil(9.5) */
    assert_int_equal(ss_stats_rank(3, 50), 2);
}

static void test_percentile(void **state) {
    (void)state;
    double v[10] = {10, 1, 9, 2, 8, 3, 7, 4, 6, 5};
    assert_true(ss_stats_percentile(v, 10, 50) == 5);
    assert_true(v[0] == 1 && v[9] == 10); /* sorted in place */
    assert_true(ss_stats_percentile_sorted(v, 10, 90) == 9);
    assert_true(ss_stats_percentile_sorted(v, 10, 99) == 10);
    assert_true(ss_stats_percentile_sorted(v, 10, 0) == 1);
    assert_true(ss_stats_percentile(v, 0, 50) == 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rank),
        cmocka_unit_test(test_percentile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
