/* Unit tests for the migration-file side of shipstream-migrate: names, ordering,
 * checksums, size limit, and the errors for bad folders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate.h"

static char g_dir[256];

static void put(const char *name, const char *content) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/test_migrate.XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_sha256(void **state) {
    (void)state;
    char hex[65];
    ss_mig_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ss_mig_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_load_sorted_and_filtered(void **state) {
    (void)state;
    put("0002_second.up.sql", "SELECT 2;\n");
    put("0002_second.down.sql", "SELECT -2;\n");
    put("0001_core.up.sql", "abc");
    put("0001_core.down.sql", "");
    put("0010_only_down.down.sql", "SELECT 10;\n");
    put("README.md", "not a migration");
    put("0003_x.up.sql.orig", "ignored");
    put("x_0004.up.sql", "ignored");
    put("0005_.up.sql", "ignored: empty name");
    ss_mig_set_t set;
    char err[256] = "";
    assert_int_equal(ss_mig_set_load(g_dir, &set, err, sizeof err), 0);
    assert_int_equal(set.n, 3);
    assert_int_equal(set.items[0].version, 1);
    assert_string_equal(set.items[0].name, "core");
    assert_non_null(set.items[0].up_path);
    assert_non_null(set.items[0].down_path);
    assert_string_equal(set.items[0].up_sha,
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(set.items[1].version, 2);
    assert_string_equal(set.items[1].name, "second");
    assert_int_equal(set.items[2].version, 10);
    assert_null(set.items[2].up_path);
    assert_non_null(set.items[2].down_path);
    assert_string_equal(set.items[2].up_sha, "");
    ss_mig_set_free(&set);
    assert_int_equal(set.n, 0);
}

static void test_duplicate_version(void **state) {
    (void)state;
    put("0001_core.up.sql", "SELECT 1;");
    put("0001_other.up.sql", "SELECT 1;");
    ss_mig_set_t set;
    char err[256] = "";
    assert_int_equal(ss_mig_set_load(g_dir, &set, err, sizeof err), -1);
    assert_non_null(strstr(err, "two migrations numbered 0001"));
    assert_null(set.items);
}

static void test_missing_dir(void **state) {
    (void)state;
    ss_mig_set_t set;
    char err[256] = "";
    assert_int_equal(ss_mig_set_load("/nonexistent/shipstream", &set, err, sizeof err), -1);
    assert_non_null(strstr(err, "MIGRATIONS_DIR=/nonexistent/shipstream"));
}

static void test_read_file_limit(void **state) {
    (void)state;
    char path[512], err[256] = "";
    snprintf(path, sizeof path, "%s/big.sql", g_dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), (off_t)SS_MIGRATE_MAX_FILE + 1), 0);
    fclose(f);
    size_t len = 0;
    assert_null(ss_mig_read_file(path, &len, err, sizeof err));
    assert_non_null(strstr(err, "larger than"));
    /* Exactly at the limit is fine. */
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), (off_t)SS_MIGRATE_MAX_FILE), 0);
    fclose(f);
    char *buf = ss_mig_read_file(path, &len, err, sizeof err);
    assert_non_null(buf);
    assert_int_equal(len, SS_MIGRATE_MAX_FILE);
    assert_int_equal(buf[len], '\0');
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),
        cmocka_unit_test_setup_teardown(test_load_sorted_and_filtered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_version, setup, teardown),
        cmocka_unit_test(test_missing_dir),
        cmocka_unit_test_setup_teardown(test_read_file_limit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
