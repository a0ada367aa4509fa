/* ss_webhook signatures against EasyPost's real bodies and signatures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ss_fixture.h"

#include <webhook/signature.h>

#define SECRET_NFC \
    "s\xc3\xa9"    \
    "cret" /* sécret, é precomposed */
#define SECRET_NFD \
    "se\xcc\x81"   \
    "cret" /* sécret, e + combining acute */
#define SIG_TRACKER \
    "hmac-sha256-hex=38f3f53c103713df81616a0a186d77141957323ec21d5fe9363db93840f527db"
#define SIG_BATCH "hmac-sha256-hex=e93977c8ccb20363d51a62b3fe1fc402b7829be1152da9e88cf9e8d07115a46b"
#define SIG_TRACKER_NO_NFKD \
    "hmac-sha256-hex=7f1669d6699d0b937cc1e69402423bdd2be0a8bcf571d34a8116765f1741219b"

static ss_webhook_key_t *key(const char *secret) {
    char err[256] = "";
    ss_webhook_key_t *k = ss_webhook_key_new(secret, err, sizeof(err));
    if (k == NULL)
        fail_msg("key: %s", err);
    return k;
}

static void check_fixture(const char *file, const char *sig) {
    size_t len;
    char *body = ss_test_fixture(file, &len);
    ss_webhook_key_t *k = key(SECRET_NFC);
    char out[SS_WEBHOOK_SIG_BUFSIZE];
    ss_webhook_sign(k, body, len, out);
    assert_string_equal(out, sig);
    const ss_webhook_key_t *keys[] = {k};
    assert_int_equal(ss_webhook_verify(keys, 1, sig, body, len), SS_WEBHOOK_SIG_OK);
    ss_webhook_key_free(k);
    free(body);
}

static void test_fixture_tracker(void **state) {
    (void)state;
    check_fixture("event-tracker-updated.json", SIG_TRACKER);
}

static void test_fixture_batch(void **state) {
    (void)state;
    check_fixture("event-batch-created.json", SIG_BATCH);
}

/* The secret already in NFD gives the same key as the NFC form. */
static void test_nfd_secret_same_key(void **state) {
    (void)state;
    size_t len;
    char *body = ss_test_fixture("event-tracker-updated.json", &len);
    ss_webhook_key_t *k = key(SECRET_NFD);
    const ss_webhook_key_t *keys[] = {k};
    assert_int_equal(ss_webhook_verify(keys, 1, SIG_TRACKER, body, len), SS_WEBHOOK_SIG_OK);
    ss_webhook_key_free(k);
    free(body);
}

/* NFKD, not just NFD: compatibility characters are decomposed too
 * (U+FB01 "ﬁ" ligature -> "fi", U+2460 "①" -> "1"). */
static void test_nfkd_compat(void **state) {
    (void)state;
    const char body[] = "{}";
    ss_webhook_key_t *a = key("\xef\xac\x81x\xe2\x91\xa0");
    ss_webhook_key_t *b = key("fix1");
    char sa[SS_WEBHOOK_SIG_BUFSIZE], sb[SS_WEBHOOK_SIG_BUFSIZE];
    ss_webhook_sign(a, body, 2, sa);
    ss_webhook_sign(b, body, 2, sb);
    assert_string_equal(sa, sb);
    ss_webhook_key_free(a);
    ss_webhook_key_free(b);
}

/* The signature a client computes with the NFC bytes must be rejected. */
static void test_nfc_signature_rejected(void **state) {
    (void)state;
    size_t len;
    char *body = ss_test_fixture("event-tracker-updated.json", &len);
    ss_webhook_key_t *k = key(SECRET_NFC);
    const ss_webhook_key_t *keys[] = {k};
    assert_int_equal(ss_webhook_verify(keys, 1, SIG_TRACKER_NO_NFKD, body, len),
                     SS_WEBHOOK_SIG_MISMATCH);
    ss_webhook_key_free(k);
    free(body);
}

static void test_changed_byte(void **state) {
    (void)state;
    size_t len;
    char *body = ss_test_fixture("event-tracker-updated.json", &len);
    ss_webhook_key_t *k = key(SECRET_NFC);
    const ss_webhook_key_t *keys[] = {k};
    body[len / 2] ^= 1;
    assert_int_equal(ss_webhook_verify(keys, 1, SIG_TRACKER, body, len), SS_WEBHOOK_SIG_MISMATCH);
    body[len / 2] ^= 1;
    assert_int_equal(ss_webhook_verify(keys, 1, SIG_TRACKER, body, len - 1),
                     SS_WEBHOOK_SIG_MISMATCH);
    ss_webhook_key_free(k);
    free(body);
}

static void test_missing_and_malformed(void **state) {
    (void)state;
    const char body[] = "{}";
    ss_webhook_key_t *k = key("secret");
    const ss_webhook_key_t *keys[] = {k};
    char good[SS_WEBHOOK_SIG_BUFSIZE];
    ss_webhook_sign(k, body, 2, good);

    assert_int_equal(ss_webhook_verify(keys, 1, NULL, body, 2), SS_WEBHOOK_SIG_MISSING);
    assert_int_equal(ss_webhook_verify(keys, 1, "", body, 2), SS_WEBHOOK_SIG_MISSING);
    assert_int_equal(ss_webhook_verify(keys, 1, "  ", body, 2), SS_WEBHOOK_SIG_MISSING);
    /* no prefix */
    assert_int_equal(ss_webhook_verify(keys, 1, good + 16, body, 2), SS_WEBHOOK_SIG_MALFORMED);
    /* another algorithm */
    char other[256];
    snprintf(other, sizeof(other), "hmac-sha1-hex=%s", good + 16);
    assert_int_equal(ss_webhook_verify(keys, 1, other, body, 2), SS_WEBHOOK_SIG_MALFORMED);
    /* short */
    char shortsig[SS_WEBHOOK_SIG_BUFSIZE];
    memcpy(shortsig, good, sizeof(shortsig));
    shortsig[strlen(shortsig) - 1] = '\0';
    assert_int_equal(ss_webhook_verify(keys, 1, shortsig, body, 2), SS_WEBHOOK_SIG_MALFORMED);
    /* long */
    snprintf(other, sizeof(other), "%s0", good);
    assert_int_equal(ss_webhook_verify(keys, 1, other, body, 2), SS_WEBHOOK_SIG_MALFORMED);
    /* non-hex */
    memcpy(other, good, sizeof(good));
    other[20] = 'g';
    assert_int_equal(ss_webhook_verify(keys, 1, other, body, 2), SS_WEBHOOK_SIG_MALFORMED);
    /* several values, as a proxy might join repeated headers */
    snprintf(other, sizeof(other), "%s, %s", good, good);
    assert_int_equal(ss_webhook_verify(keys, 1, other, body, 2), SS_WEBHOOK_SIG_MALFORMED);
    /* surrounding blanks are HTTP optional whitespace: accepted */
    snprintf(other, sizeof(other), " %s\t", good);
    assert_int_equal(ss_webhook_verify(keys, 1, other, body, 2), SS_WEBHOOK_SIG_OK);
    ss_webhook_key_free(k);
}

/* Decision: hex digits are decoded, so upper case is accepted (EasyPost
 * sends lower case; the prefix stays case-sensitive). */
static void test_upper_case_hex(void **state) {
    (void)state;
    size_t len;
    char *body = ss_test_fixture("event-batch-created.json", &len);
    ss_webhook_key_t *k = key(SECRET_NFC);
    const ss_webhook_key_t *keys[] = {k};
    char up[SS_WEBHOOK_SIG_BUFSIZE];
    memcpy(up, SIG_BATCH, sizeof(up));
    for (char *p = up + 16; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    assert_int_equal(ss_webhook_verify(keys, 1, up, body, len), SS_WEBHOOK_SIG_OK);
    up[0] = 'H';
    assert_int_equal(ss_webhook_verify(keys, 1, up, body, len), SS_WEBHOOK_SIG_MALFORMED);
    ss_webhook_key_free(k);
    free(body);
}

static void test_rotation(void **state) {
    (void)state;
    size_t len;
    char *body = ss_test_fixture("event-batch-created.json", &len);
    ss_webhook_key_t *cur = key("new-secret");
    ss_webhook_key_t *prev = key(SECRET_NFC);
    const ss_webhook_key_t *both[] = {cur, prev};
    const ss_webhook_key_t *only_cur[] = {cur};
    char sig_cur[SS_WEBHOOK_SIG_BUFSIZE];
    ss_webhook_sign(cur, body, len, sig_cur);
    assert_int_equal(ss_webhook_verify(both, 2, SIG_BATCH, body, len), SS_WEBHOOK_SIG_OK);
    assert_int_equal(ss_webhook_verify(both, 2, sig_cur, body, len), SS_WEBHOOK_SIG_OK);
    assert_int_equal(ss_webhook_verify(only_cur, 1, SIG_BATCH, body, len), SS_WEBHOOK_SIG_MISMATCH);
    assert_int_equal(ss_webhook_verify(NULL, 0, SIG_BATCH, body, len), SS_WEBHOOK_SIG_MISMATCH);
    ss_webhook_key_free(cur);
    ss_webhook_key_free(prev);
    free(body);
}

static void test_bad_secrets(void **state) {
    (void)state;
    char err[256] = "";
    assert_null(ss_webhook_key_new("", err, sizeof(err)));
    assert_non_null(strstr(err, "empty"));
    assert_null(ss_webhook_key_new(NULL, err, sizeof(err)));
    assert_null(ss_webhook_key_new("s\xc3(cret", err, sizeof(err)));
    assert_non_null(strstr(err, "UTF-8"));
    /* The error never quotes the secret. */
    assert_null(strstr(err, "\xc3("));
    ss_webhook_key_free(NULL);
}

/* Empty body is signable (HMAC of nothing), and NULL body with len 0 works. */
static void test_empty_body(void **state) {
    (void)state;
    ss_webhook_key_t *k = key("key");
    char a[SS_WEBHOOK_SIG_BUFSIZE], b[SS_WEBHOOK_SIG_BUFSIZE];
    ss_webhook_sign(k, "", 0, a);
    ss_webhook_sign(k, NULL, 0, b);
    assert_string_equal(a, b);
    /* RFC 4231-independent check: HMAC-SHA256("key", "") */
    assert_string_equal(
        a, "hmac-sha256-hex=5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0");
    ss_webhook_key_free(k);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_tracker),
        cmocka_unit_test(test_fixture_batch),
        cmocka_unit_test(test_nfd_secret_same_key),
        cmocka_unit_test(test_nfkd_compat),
        cmocka_unit_test(test_nfc_signature_rejected),
        cmocka_unit_test(test_changed_byte),
        cmocka_unit_test(test_missing_and_malformed),
        cmocka_unit_test(test_upper_case_hex),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_bad_secrets),
        cmocka_unit_test(test_empty_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
