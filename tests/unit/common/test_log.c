#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

/* Runs one ss_log_kv call with stderr sent to a temporary file; returns the
 * line written (static buffer). */
static const char *captured(void (*fn)(void)) {
    static char line[1024];
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    dup2(fileno(tmp), STDERR_FILENO);
    fn();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    size_t n = fread(line, 1, sizeof line - 1, tmp);
    line[n] = '\0';
    fclose(tmp);
    return line;
}

static void log_typed(void) {
    ss_log_kv(SS_LOG_WARN, "applied", "name", "core", SS_KV_INT("version", 42),
              SS_KV_DBL("ms", 1.5), SS_KV_INT("neg", -7), SS_KV_DBL("nan", NAN), "empty", NULL,
              NULL);
}

static void log_debug(void) {
    ss_log_kv(SS_LOG_DEBUG, "hidden", SS_KV_INT("n", 1), NULL);
}

static void test_json_typed_values(void **state) {
    (void)state;
    char err[128];
    assert_int_equal(ss_log_init("t", "info", "json", err, sizeof err), 0);
    const char *l = captured(log_typed);
    assert_non_null(strstr(l, "\"level\":\"warn\",\"service\":\"t\",\"msg\":\"applied\""));
    assert_non_null(strstr(l,
                           ",\"name\":\"core\",\"version\":42,\"ms\":1.5,\"neg\":-7,\"nan\":null,"
                           "\"empty\":\"\"}\n"));
    assert_string_equal(captured(log_debug), "");
}

static void test_text_typed_values(void **state) {
    (void)state;
    char err[128];
    assert_int_equal(ss_log_init("t", "debug", "text", err, sizeof err), 0);
    const char *l = captured(log_typed);
    assert_non_null(
        strstr(l, "warn  t: applied name=core version=42 ms=1.5 neg=-7 nan=null empty=\n"));
    assert_non_null(strstr(captured(log_debug), "hidden n=1\n"));
}

static void test_init_errors(void **state) {
    (void)state;
    char err[128];
    assert_int_equal(ss_log_init("t", "loud", NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "LOG_LEVEL=loud"));
    assert_int_equal(ss_log_init("t", NULL, "xml", err, sizeof err), -1);
    assert_non_null(strstr(err, "LOG_FORMAT=xml"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_typed_values),
        cmocka_unit_test(test_text_typed_values),
        cmocka_unit_test(test_init_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
