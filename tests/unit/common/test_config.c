#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"

static long long port;
static char *listen_addr;
static char *name;
static int flag;
static char *secret;

static const ss_conf_opt_t opts[] = {
    {"T_PORT", SS_CONF_INT, &port, "8000", 1, 65535, "a port", 0},
    {"T_LISTEN", SS_CONF_LISTEN, &listen_addr, "9101", 0, 0, "listen", 0},
    {"T_NAME", SS_CONF_STRING, &name, NULL, 0, 0, "a name", 0},
    {"T_FLAG", SS_CONF_BOOL, &flag, "off", 0, 0, "a flag", 0},
    {"T_SECRET", SS_CONF_STRING, &secret, NULL, 0, 0, "a secret", 1},
};
#define N (sizeof opts / sizeof opts[0])

static int setup(void **state) {
    (void)state;
    unsetenv("T_PORT");
    unsetenv("T_LISTEN");
    unsetenv("T_NAME");
    unsetenv("T_FLAG");
    unsetenv("T_SECRET");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    ss_conf_free(opts, N);
    return 0;
}

static void test_defaults(void **state) {
    (void)state;
    char err[256];
    assert_int_equal(ss_conf_load(opts, N, err, sizeof err), 0);
    assert_int_equal(port, 8000);
    assert_string_equal(listen_addr, "9101");
    assert_null(name);
    assert_int_equal(flag, 0);
}

static void test_good_values(void **state) {
    (void)state;
    char err[256];
    setenv("T_PORT", "65535", 1);
    setenv("T_LISTEN", "127.0.0.1:8001", 1);
    setenv("T_NAME", "gateway", 1);
    setenv("T_FLAG", "yes", 1);
    assert_int_equal(ss_conf_load(opts, N, err, sizeof err), 0);
    assert_int_equal(port, 65535);
    assert_string_equal(listen_addr, "127.0.0.1:8001");
    assert_string_equal(name, "gateway");
    assert_int_equal(flag, 1);
}

static void test_empty_is_unset(void **state) {
    (void)state;
    char err[256];
    setenv("T_PORT", "", 1);
    setenv("T_NAME", "", 1);
    assert_int_equal(ss_conf_load(opts, N, err, sizeof err), 0);
    assert_int_equal(port, 8000);
    assert_null(name);
}

static void test_out_of_range(void **state) {
    (void)state;
    char err[256];
    setenv("T_PORT", "70000", 1);
    assert_int_equal(ss_conf_load(opts, N, err, sizeof err), -1);
    assert_non_null(strstr(err, "T_PORT=70000"));
    assert_non_null(strstr(err, "1 to 65535"));
    setenv("T_PORT", "0", 1);
    assert_int_equal(ss_conf_load(opts, N, err, sizeof err), -1);
}

static void test_not_a_number(void **state) {
    (void)state;
    char err[256];
    const char *bad[] = {"abc", "12x", " ", "1.5", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("T_PORT", bad[i], 1);
        assert_int_equal(ss_conf_load(opts, N, err, sizeof err), -1);
        assert_non_null(strstr(err, "T_PORT="));
        assert_non_null(strstr(err, "expected"));
    }
}

static void test_bad_listen_and_bool(void **state) {
    (void)state;
    char err[256];
    setenv("T_LISTEN", "localhost:http", 1);
    assert_int_equal(ss_conf_load(opts, N, err, sizeof err), -1);
    assert_non_null(strstr(err, "T_LISTEN=localhost:http"));
    setenv("T_LISTEN", "8001", 1);
    setenv("T_FLAG", "maybe", 1);
    assert_int_equal(ss_conf_load(opts, N, err, sizeof err), -1);
    assert_non_null(strstr(err, "T_FLAG=maybe"));
}

static void test_secret_never_echoed(void **state) {
    (void)state;
    char err[256];
    setenv("T_SECRET", "hunter2", 1);
    assert_int_equal(ss_conf_load(opts, N, err, sizeof err), 0);
    assert_string_equal(secret, "hunter2");
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    ss_conf_help(f, "prog", "summary", opts, N);
    fclose(f);
    assert_null(strstr(out, "hunter2"));
    assert_non_null(strstr(out, "T_PORT"));
    assert_non_null(strstr(out, "[default: 8000]"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_good_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_is_unset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_listen_and_bool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_never_echoed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
