#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/util.h"

static void test_secure_equal(void **state) {
    (void)state;
    assert_true(ss_secure_equal("abc", 3, "abc", 3));
    assert_false(ss_secure_equal("abc", 3, "abd", 3));
    assert_false(ss_secure_equal("abc", 3, "abcd", 4));
    assert_false(ss_secure_equal("", 0, "a", 1));
    assert_true(ss_secure_equal("", 0, "", 0));
}

static void test_backoff_capped_with_jitter(void **state) {
    (void)state;
    ss_backoff_t b = {.base_ms = 100, .max_ms = 1000};
    int expect_ceil[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (size_t i = 0; i < sizeof expect_ceil / sizeof expect_ceil[0]; i++) {
        int d = ss_backoff_next(&b);
        assert_in_range(d, expect_ceil[i] / 2, expect_ceil[i]);
    }
    ss_backoff_reset(&b);
    assert_in_range(ss_backoff_next(&b), 50, 100);
}

static void test_buf_json(void **state) {
    (void)state;
    ss_buf_t b = {0};
    assert_int_equal(ss_buf_append_json_str(&b, "a\"b\\c\n\x01é"), 0);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001é\"");
    ss_buf_reset(&b);
    assert_int_equal(ss_buf_appendf(&b, "%d-%s", 42, "x"), 0);
    assert_string_equal(b.data, "42-x");
    ss_buf_free(&b);
    assert_null(b.data);
}

static void test_random_id(void **state) {
    (void)state;
    char a[64], c[64];
    ss_random_id("gwe_", a, sizeof a);
    ss_random_id("gwe_", c, sizeof c);
    assert_int_equal(strlen(a), 36);
    assert_memory_equal(a, "gwe_", 4);
    assert_string_not_equal(a, c);
}

static void test_utf8_valid(void **state) {
    (void)state;
    static const struct {
        const char *s;
        int ok;
    } cases[] = {
        {"", 1},
        {"plain ascii", 1},
        {"caf\xc3\xa9", 1},      /* é */
        {"\xe2\x82\xac", 1},     /* € */
        {"\xf0\x9f\x93\xa6", 1}, /* U+1F4E6 */
        {"\xf4\x8f\xbf\xbf", 1}, /* U+10FFFF */
        {"\xff", 0},             /* %FF */
        {"\xc3", 0},             /* truncated */
        {"\xc0\xaf", 0},         /* overlong '/' */
        {"\xe0\x80\xaf", 0},     /* overlong */
        {"\xed\xa0\x80", 0},     /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", 0}, /* above U+10FFFF */
        {"\xf0\x9f\x93", 0},     /* truncated 4-byte */
        {"\x80", 0},             /* lone continuation */
        {"ok\xe2\x28\xa1", 0},   /* bad continuation */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (ss_utf8_valid(cases[i].s, strlen(cases[i].s)) != cases[i].ok)
            fail_msg("case %zu: want %d", i, cases[i].ok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secure_equal), cmocka_unit_test(test_backoff_capped_with_jitter),
        cmocka_unit_test(test_buf_json),     cmocka_unit_test(test_random_id),
        cmocka_unit_test(test_utf8_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
