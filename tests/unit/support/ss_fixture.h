/* Unit-test helper: reads a file of the EasyPost fixtures (SS_FIXTURES_DIR,
 * defined by ss_add_unit_test) whole.  Include after <cmocka.h>.  Returns a
 * malloc'd NUL-terminated buffer (caller frees); *len gets its length when
 * len is not NULL.  Fails the test when the file cannot be read. */
#ifndef SS_TEST_FIXTURE_H
#define SS_TEST_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

static inline char *ss_test_fixture(const char *name, size_t *len) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", SS_FIXTURES_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open fixture %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

#endif
