/* The strict JSON scanner (envelope/json_scan.h): grammar edges, depth
 * limit, member iteration and exact value spans, member picking, string
 * decoding.  (What the webhook receiver builds with it is tested in
 * tests/unit/webhook/test_event.c.)  Every text is copied into a buffer of
 * exactly its length (no NUL after it), so that an over-read shows under
 * ASan. */
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
#include <envelope/json_scan.h>

/* n bytes of s in a buffer of exactly n bytes (caller frees). */
static char *exact(const char *s, size_t n) {
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, s, n);
    return p;
}

static int check_n(const char *s, size_t n, int max_depth, const char **why) {
    char *p = exact(s, n);
    int rc = ss_json_check(p, n, max_depth, why);
    free(p);
    return rc;
}

static void expect_ok(const char *s) {
    const char *why = NULL;
    if (check_n(s, strlen(s), SS_JSON_MAX_DEPTH, &why) != 0)
        fail_msg("refused (%s): %s", why, s);
}

static void expect_bad_n(const char *s, size_t n) {
    const char *why = NULL;
    if (check_n(s, n, SS_JSON_MAX_DEPTH, &why) == 0)
        fail_msg("accepted: %.*s", (int)n, s);
    assert_non_null(why);
    assert_true(why[0] != '\0');
}

static void expect_bad(const char *s) {
    expect_bad_n(s, strlen(s));
}

/* ---- grammar ---- */

static void test_valid_texts(void **state) {
    (void)state;
    static const char *const ok[] = {
        "{}",
        "[]",
        "\"\"",
        "0",
        "-0",
        "0.5e-3",
        "1E+2",
        "1e5",
        "-0.0e-0",
        "-1.5E-10",
        "123456789012345678901234567890",
        "-123456789012345678901234567890",
        "1e400",
        "true",
        "false",
        "null",
        "[-0,0.0,10,1e-0,2E2]",
        /* nested */
        "[[[{\"a\":[{\"b\":null,\"c\":[true,false,{}]}]}]]]",
        "{\"a\":{\"b\":{\"c\":{\"d\":[1,[2,[3]]]}}}}",
        /* whitespace everywhere, \r\n\t included */
        " \r\n\t{ \"a\" \r\n: \t[ 1 ,\r\n 2 ] , \"b\" : { } ,\t\"c\"\n:\r\"x\" }\r\n\t ",
        "\t[\r\n]\n",
        /* all escapes */
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u00E9\\uD83D\\uDE00\\u0000\"",
        /* lone surrogates are not a grammar error (json-c takes them too) */
        "\"\\ud800\"",
        "\"\\udc00\\ud800\"",
        /* raw UTF-8, and bytes >= 0x80 passed through unchecked, as json-c */
        "\"\xc3\xa9\xf0\x9f\x98\x80\"",
        "\"\xff\xfe\x80\"",
        /* what looks like structure inside strings */
        "{\"}\":\"]\",\"[{\":\",:\"}",
        "\"\\\\\"",
        "[\"\\\\\",\"\\\"\"]",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        expect_ok(ok[i]);
}

static void test_invalid_texts(void **state) {
    (void)state;
    static const char *const bad[] = {
        /* numbers */
        "01",
        "-01",
        "00",
        "[01]",
        "[00]",
        "[-01]",
        "1.",
        "[1.]",
        "-0.",
        "1.e5",
        "[1.e5]",
        "-",
        "[-]",
        "1e",
        "1e+",
        "1E-",
        "[1e]",
        ".5",
        "[.5]",
        "+1",
        "[+1]",
        "--1",
        "1.5.5",
        "1e5e5",
        "[1-2]",
        "0x10",
        "[0x10]",
        "1 2",
        /* trailing commas, separators */
        "[1,]",
        "{\"a\":1,}",
        "[,1]",
        "[1,,2]",
        "{,}",
        "{\"a\":1,,\"b\":2}",
        "[1 2]",
        "{\"a\":1 \"b\":2}",
        ",",
        ":",
        "]",
        "}",
        "[}",
        "{]",
        "{\"a\":[1}",
        "[{]}",
        /* keys */
        "{\"a\" 1}",
        "{\"a\"}",
        "{\"a\":}",
        "{1:2}",
        "{a:1}",
        "{null:1}",
        "{'a':1}",
        "{\"a\"::1}",
        "{:1}",
        /* not JSON tokens */
        "'a'",
        "['a']",
        "NaN",
        "[NaN]",
        "Infinity",
        "-Infinity",
        "[Infinity]",
        "True",
        "tru",
        "nul",
        "nulll",
        "[truefalse]",
        "undefined",
        "\xef\xbb\xbf{}",
        /* raw control characters: in strings, and outside (not whitespace) */
        "\"a\tb\"",
        "\"a\nb\"",
        "\"a\rb\"",
        "\"\x01\"",
        "\"\x1f\"",
        "\"\x1fn\"",
        "\"a\x1f\\\\\"",
        "[1,\x01 2]",
        "\x0c[]",
        "[]\x0b",
        "{\"a\x7f\":1,\x7f}",
        /* escapes */
        "\"\\x\"",
        "\"\\a\"",
        "\"\\'\"",
        "\"\\U0041\"",
        "\"\\u12\"",
        "\"\\u12G4\"",
        "\"\\u\"",
        "\"\\u00\"",
        "\"\\",
        "\"\\\"",
        "\"\\u",
        /* unterminated */
        "\"abc",
        "{",
        "[",
        "{\"a\":1",
        "[1,2",
        "{\"a\"",
        "{\"a\":",
        "[[[]]",
        "{\"a\":{}",
        /* trailing data */
        "{} {}",
        "{}{}",
        "[] x",
        "{}}",
        "[]]",
        "true false",
        "\"a\"\"b\"",
        "0 0",
        /* empty and blank */
        "",
        " ",
        "   ",
        " \r\n\t",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_bad(bad[i]);
    /* NUL bytes, inside strings and outside */
    expect_bad_n("\"a\0b\"", 5);
    expect_bad_n("[1]\0", 4);
    expect_bad_n("\0", 1);
    expect_bad_n("[\0]", 3);
    expect_bad_n("{\"a\":1}\0 ", 9);
    expect_bad_n("\0{}", 3);
}

/* d nested arrays, or objects {"a":{"a":…}} */
static char *nested(int d, int objects, size_t *len) {
    char *p = malloc((size_t)d * 6 + 8);
    size_t n = 0;
    assert_non_null(p);
    for (int i = 0; i < d; i++)
        n += (size_t)sprintf(p + n, "%s", objects ? (i + 1 < d ? "{\"a\":" : "{") : "[");
    for (int i = 0; i < d; i++)
        p[n++] = objects ? '}' : ']';
    *len = n;
    return p;
}

static void test_depth_limit(void **state) {
    (void)state;
    for (int objects = 0; objects < 2; objects++) {
        size_t n;
        const char *why = NULL;
        char *p = nested(SS_JSON_MAX_DEPTH, objects, &n);
        assert_int_equal(check_n(p, n, SS_JSON_MAX_DEPTH, &why), 0);
        /* a max_depth above the scanner's own limit is clamped to it */
        assert_int_equal(check_n(p, n, SS_JSON_MAX_DEPTH + 100, &why), 0);
        assert_int_equal(check_n(p, n, SS_JSON_MAX_DEPTH - 1, &why), -1);
        assert_string_equal(why, "nested too deeply");
        free(p);

        p = nested(SS_JSON_MAX_DEPTH + 1, objects, &n);
        why = NULL;
        assert_int_equal(check_n(p, n, SS_JSON_MAX_DEPTH, &why), -1);
        assert_string_equal(why, "nested too deeply");
        assert_int_equal(check_n(p, n, SS_JSON_MAX_DEPTH + 100, &why), -1);
        free(p);

        for (int d = 1; d <= 5; d++) {
            p = nested(d, objects, &n);
            assert_int_equal(check_n(p, n, d, NULL), 0); /* why may be NULL */
            assert_int_equal(check_n(p, n, d - 1, NULL), -1);
            free(p);
        }
    }
    /* scalars need no depth */
    assert_int_equal(check_n("1", 1, 0, NULL), 0);
    assert_int_equal(check_n("[]", 2, 0, NULL), -1);
    /* depth is nesting, not the number of containers */
    const char *wide = "[[],[],{},[[]],{\"a\":[]}]";
    assert_int_equal(check_n(wide, strlen(wide), 3, NULL), 0);
    assert_int_equal(check_n(wide, strlen(wide), 2, NULL), -1);
}

static void test_root(void **state) {
    (void)state;
    const char *s = " \r\n{\"a\":1}\t \n";
    ss_json_span_t r = ss_json_root(s, strlen(s));
    assert_ptr_equal(r.p, s + 3);
    assert_int_equal(r.len, 7);
    r = ss_json_root("-1", 2);
    assert_int_equal(r.len, 2);
    r = ss_json_root("\"a \"  ", 6);
    assert_int_equal(r.len, 4);
}

/* ---- iteration ---- */

static int span_is(ss_json_span_t s, const char *want) {
    return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

#define assert_span(s, want)                                              \
    do {                                                                  \
        if (!span_is((s), (want)))                                        \
            fail_msg("span [%.*s] != [%s]", (int)(s).len, (s).p, (want)); \
    } while (0)

/* Checks p, iterates it as an object and compares keys and values spans
 * (want: key0, value0, key1, value1, …, NULL). */
static void expect_members(const char *text, const char *const *want) {
    size_t n = strlen(text);
    char *p = exact(text, n);
    assert_int_equal(ss_json_check(p, n, SS_JSON_MAX_DEPTH, NULL), 0);
    ss_json_iter_t it;
    ss_json_span_t k, v;
    assert_int_equal(ss_json_iter_init(&it, ss_json_root(p, n)), 0);
    size_t i = 0;
    while (ss_json_iter_next(&it, &k, &v)) {
        if (want[i] == NULL)
            fail_msg("more members than expected in %s", text);
        assert_span(k, want[i]);
        assert_span(v, want[i + 1]);
        i += 2;
    }
    if (want[i] != NULL)
        fail_msg("member %zu (%s) missing in %s", i / 2, want[i], text);
    /* the end stays the end */
    assert_int_equal(ss_json_iter_next(&it, &k, &v), 0);
    free(p);
}

static void test_iter_members_in_order(void **state) {
    (void)state;
    static const char *const w1[] = {"\"a\"", "1",      "\"b\"", "\"x\"", "\"c\"", "[1,{\"d\":2}]",
                                     "\"e\"", "{}",     "\"f\"", "true",  "\"g\"", "null",
                                     "\"h\"", "-1.5e3", "\"i\"", "false", NULL};
    expect_members("{ \"a\" : 1 , \"b\":\"x\",\"c\":[1,{\"d\":2}] ,\r\n\t\"e\"\n:\t{},"
                   "\"f\":true,\"g\":null,\"h\":-1.5e3 ,\"i\":false}",
                   w1);
    static const char *const w2[] = {"\"n\"", "12", NULL};
    expect_members("{\"n\":12}", w2);
    expect_members("  {\r\n}  ", (const char *const[]){NULL});
    static const char *const w3[] = {"\"a\"", "0", "\"a\"", "1", NULL}; /* duplicates kept */
    expect_members("{\"a\":0,\"a\":1}", w3);
}

static void test_iter_value_spans_exact(void **state) {
    (void)state;
    /* JSON: {"a":"a\\\"}","b":"\\","c":"x\\\\\"y","d":1} */
    static const char *const w1[] = {"\"a\"", "\"a\\\\\\\"}\"",     "\"b\"", "\"\\\\\"",
                                     "\"c\"", "\"x\\\\\\\\\\\"y\"", "\"d\"", "1",
                                     NULL};
    expect_members("{\"a\":\"a\\\\\\\"}\",\"b\":\"\\\\\",\"c\":\"x\\\\\\\\\\\"y\",\"d\":1}", w1);
    /* brackets and quotes inside strings inside nested containers */
    static const char *const w2[] = {
        "\"a\"",      "{\"s\":\"}]{[\",\"t\":[\"]\",\"}\",\"\\\"]\"],\"u\":{\"v\":\"\\\\\"}}",
        "\"b\"",      "2",
        "\"c\"",      "[[\"]]\"],{\"}\":\"{\"}]",
        "\"k\\\"}\"", "\"v\"",
        NULL};
    expect_members("{\"a\":{\"s\":\"}]{[\",\"t\":[\"]\",\"}\",\"\\\"]\"],\"u\":{\"v\":\"\\\\\"}},"
                   "\"b\":2,\"c\":[[\"]]\"],{\"}\":\"{\"}],\"k\\\"}\":\"v\"}",
                   w2);
}

static void test_iter_keys(void **state) {
    (void)state;
    const char *s = "{\"\\u0072esult\":{\"x\":1},\"a\\\"b\":2,\"result\":3,\"\\u00e9t\\u00E9\":4,"
                    "\"res\\u0000ult\":5,\"long\\u0020key_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\":6}";
    size_t n = strlen(s);
    char *p = exact(s, n);
    assert_int_equal(ss_json_check(p, n, SS_JSON_MAX_DEPTH, NULL), 0);
    ss_json_iter_t it;
    ss_json_span_t k, v;
    assert_int_equal(ss_json_iter_init(&it, ss_json_root(p, n)), 0);

    assert_int_equal(ss_json_iter_next(&it, &k, &v), 1);
    assert_true(ss_json_key_is(k, "result"));
    assert_false(ss_json_key_is(k, "resul"));
    assert_false(ss_json_key_is(k, "results"));
    assert_false(ss_json_key_is(k, "\\u0072esult"));
    assert_span(v, "{\"x\":1}");

    assert_int_equal(ss_json_iter_next(&it, &k, &v), 1);
    assert_true(ss_json_key_is(k, "a\"b"));
    assert_false(ss_json_key_is(k, "a\\\"b"));

    assert_int_equal(ss_json_iter_next(&it, &k, &v), 1);
    assert_true(ss_json_key_is(k, "result"));
    assert_false(ss_json_key_is(k, "Result"));
    assert_false(ss_json_key_is(k, ""));

    assert_int_equal(ss_json_iter_next(&it, &k, &v), 1);
    assert_true(ss_json_key_is(k, "\xc3\xa9t\xc3\xa9"));

    assert_int_equal(ss_json_iter_next(&it, &k, &v), 1);
    assert_false(ss_json_key_is(k, "res")); /* \u0000 matches nothing */
    assert_false(ss_json_key_is(k, "result"));

    assert_int_equal(ss_json_iter_next(&it, &k, &v), 1);
    assert_span(v, "6");
    assert_false(ss_json_key_is(k, "long"));

    assert_int_equal(ss_json_iter_next(&it, &k, &v), 0);
    free(p);

    /* not objects */
    ss_json_span_t arr = {"[1]", 3}, str = {"\"{}\"", 4}, num = {"1", 1};
    assert_int_equal(ss_json_iter_init(&it, arr), -1);
    assert_int_equal(ss_json_iter_init(&it, str), -1);
    assert_int_equal(ss_json_iter_init(&it, num), -1);
}

/* ---- string decoding ---- */

static void expect_decoded(const char *token, const char *want, size_t want_len) {
    char out[64];
    size_t n = strlen(token);
    char *p = exact(token, n);
    ss_json_span_t v = {p, n};
    int rc = ss_json_string(v, out, sizeof(out));
    if (rc < 0 || (size_t)rc != want_len || memcmp(out, want, want_len) != 0 ||
        out[want_len] != '\0')
        fail_msg("ss_json_string(%s) = %d", token, rc);
    /* exactly big enough, and one byte short */
    assert_int_equal(ss_json_string(v, out, want_len + 1), (int)want_len);
    if (want_len > 0)
        assert_int_equal(ss_json_string(v, out, want_len), -2);
    free(p);
}

static int decode(const char *token, char *out, size_t outsize) {
    size_t n = strlen(token);
    char *p = exact(token, n);
    int rc = ss_json_string((ss_json_span_t){p, n}, out, outsize);
    free(p);
    return rc;
}

static void test_string_decode(void **state) {
    (void)state;
    char out[64];
    expect_decoded("\"\"", "", 0);
    expect_decoded("\"plain\"", "plain", 5);
    expect_decoded("\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"", "a\"b\\c/d\be\ff\ng\rh\ti", 17);
    expect_decoded("\"\\u0041\\u007f\"", "A\x7f", 2);
    expect_decoded("\"\\u00e9\"", "\xc3\xa9", 2);
    expect_decoded("\"\\u00E9\"", "\xc3\xa9", 2);
    expect_decoded("\"\\u07FF\\u0800\"", "\xdf\xbf\xe0\xa0\x80", 5);
    expect_decoded("\"\\u20ac\"", "\xe2\x82\xac", 3);
    expect_decoded("\"\\uffff\"", "\xef\xbf\xbf", 3);
    /* surrogate pairs -> one 4-byte sequence */
    expect_decoded("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4);
    expect_decoded("\"\\uD83D\\uDE00\"", "\xf0\x9f\x98\x80", 4);
    expect_decoded("\"\\ud800\\udc00\"", "\xf0\x90\x80\x80", 4);
    expect_decoded("\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf", 4);
    /* U+1D800 (SignWriting): json-c 0.16 wrongly gives U+FFFD for pairs
     * whose code point has bits 15..11 = 11011 (its pull request #893) */
    expect_decoded("\"\\ud836\\udc00\"", "\xf0\x9d\xa0\x80", 4);
    expect_decoded("\"\\ud837\\udfff\"", "\xf0\x9d\xbf\xbf", 4);
    /* lone surrogates -> U+FFFD, as json-c */
    expect_decoded("\"\\ud83d\"", "\xef\xbf\xbd", 3);
    expect_decoded("\"\\ude00\"", "\xef\xbf\xbd", 3);
    expect_decoded("\"\\ud83dx\"", "\xef\xbf\xbdx", 4);
    expect_decoded("\"\\ud83d\\n\"", "\xef\xbf\xbd\n", 4);
    expect_decoded("\"\\ude00\\ud83d\"", "\xef\xbf\xbd\xef\xbf\xbd", 6);
    expect_decoded("\"\\ud83d\\ud83d\\ude00\"", "\xef\xbf\xbd\xf0\x9f\x98\x80", 7);
    expect_decoded("\"\\ud83d\\u0041\"",
                   "\xef\xbf\xbd"
                   "A",
                   4);
    /* raw UTF-8 passes through */
    expect_decoded("\"\xc3\xa9\xf0\x9f\x98\x80\"", "\xc3\xa9\xf0\x9f\x98\x80", 6);
    /* \u0000 cannot be a C string */
    assert_int_equal(decode("\"\\u0000\"", out, sizeof(out)), -1);
    assert_int_equal(decode("\"a\\u0000b\"", out, sizeof(out)), -1);
    assert_int_equal(decode("\"\\ud83d\\u0000\"", out, sizeof(out)), -1);
    /* too small */
    assert_int_equal(decode("\"abc\"", out, 3), -2);
    assert_int_equal(decode("\"abc\"", out, 4), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(decode("\"\\u00e9\"", out, 2), -2);
    assert_int_equal(decode("\"\\ud83d\\ude00\"", out, 4), -2);
    assert_int_equal(decode("\"\\ud83d\\ude00\"", out, 5), 4);
    /* not a string */
    assert_int_equal(decode("123", out, sizeof(out)), -1);
    assert_int_equal(decode("{}", out, sizeof(out)), -1);
    assert_int_equal(decode("[\"a\"]", out, sizeof(out)), -1);
    assert_int_equal(decode("\"", out, sizeof(out)), -1);
    assert_int_equal(decode("", out, sizeof(out)), -1);
    assert_int_equal(decode("null", out, sizeof(out)), -1);
}

/* ss_json_pick: named members, last one wins, escaped keys, absent ones. */
static void test_pick(void **state) {
    (void)state;
    const char *s = "{\"a\":1,\"b\":\"x\",\"\\u0061\":[2],\"c\":{\"a\":3}}";
    char *p = exact(s, strlen(s));
    assert_int_equal(ss_json_check(p, strlen(s), SS_JSON_MAX_DEPTH, NULL), 0);
    static const char *const names[] = {"a", "b", "zz", NULL};
    ss_json_span_t out[3];
    ss_json_pick(ss_json_root(p, strlen(s)), names, out);
    assert_int_equal(out[0].len, 3);
    assert_memory_equal(out[0].p, "[2]", 3);
    assert_int_equal(out[1].len, 3);
    assert_memory_equal(out[1].p, "\"x\"", 3);
    assert_null(out[2].p);
    /* not an object: all absent */
    ss_json_pick((ss_json_span_t){p + 5, 1}, names, out);
    assert_null(out[0].p);
    free(p);
}

static void test_array_iter(void **state) {
    (void)state;
    static const char p[] = " [ {\"a\":[1,2]} , \"x]\" ,3, [ ], null ] ";
    size_t n = sizeof p - 1;
    assert_int_equal(ss_json_check(p, n, 8, NULL), 0);
    ss_json_iter_t it;
    ss_json_span_t v;
    assert_int_equal(ss_json_array_init(&it, ss_json_root(p, n)), 0);
    static const char *const want[] = {"{\"a\":[1,2]}", "\"x]\"", "3", "[ ]", "null"};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ss_json_array_next(&it, &v), 1);
        assert_int_equal(v.len, strlen(want[i]));
        assert_memory_equal(v.p, want[i], v.len);
    }
    assert_int_equal(ss_json_array_next(&it, &v), 0);
    static const char e[] = "[]", o[] = "{}";
    assert_int_equal(ss_json_array_init(&it, ss_json_root(e, 2)), 0);
    assert_int_equal(ss_json_array_next(&it, &v), 0);
    assert_int_equal(ss_json_array_init(&it, ss_json_root(o, 2)), -1);
}

/* ss_json_array_next_pick: the same elements as ss_json_array_next and the
 * same members as ss_json_pick of each (last one wins), in one pass. */
static void test_array_next_pick(void **state) {
    (void)state;
    static const char p[] = " [ {\"id\":\"a\",\"x\":[{\"id\":9}],\"id\":\"b\"} , \"}\" ,{ }, 3,"
                            "{\"o\":{\"id\":1},\"\\u0069d\":\"c\"} ] ";
    size_t n = sizeof p - 1;
    assert_int_equal(ss_json_check(p, n, 8, NULL), 0);
    static const char *const names[] = {"id", "o", NULL};
    ss_json_iter_t it, ref;
    ss_json_span_t v, w, out[2], want[2];
    assert_int_equal(ss_json_array_init(&it, ss_json_root(p, n)), 0);
    assert_int_equal(ss_json_array_init(&ref, ss_json_root(p, n)), 0);
    int count = 0;
    while (ss_json_array_next(&ref, &w)) {
        assert_int_equal(ss_json_array_next_pick(&it, names, out, &v), 1);
        assert_ptr_equal(v.p, w.p);
        assert_int_equal(v.len, w.len);
        ss_json_pick(w, names, want);
        for (int i = 0; i < 2; i++) {
            assert_ptr_equal(out[i].p, want[i].p);
            assert_int_equal(out[i].len, want[i].len);
        }
        count++;
    }
    assert_int_equal(count, 5);
    assert_int_equal(ss_json_array_next_pick(&it, names, out, &v), 0);
    assert_int_equal(ss_json_array_init(&it, ss_json_root("[]", 2)), 0);
    assert_int_equal(ss_json_array_next_pick(&it, names, out, &v), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_texts),
        cmocka_unit_test(test_invalid_texts),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_array_iter),
        cmocka_unit_test(test_root),
        cmocka_unit_test(test_iter_members_in_order),
        cmocka_unit_test(test_iter_value_spans_exact),
        cmocka_unit_test(test_iter_keys),
        cmocka_unit_test(test_string_decode),
        cmocka_unit_test(test_pick),
        cmocka_unit_test(test_array_next_pick),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
