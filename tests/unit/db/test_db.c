/* libs/db without a server: the SQLSTATE classification (which decides
 * retry versus dead-letter), URLs, and the connection's error codes and
 * backoff gate against a port nobody listens on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/sstime.h"
#include "db/db.h"

static void test_classify_sqlstate_table(void **state) {
    (void)state;
    static const struct {
        const char *sqlstate;
        ss_db_class_t cls;
    } table[] = {
        /* retry: the server or the network, a lost race, a timeout */
        {NULL, SS_DB_RETRY},
        {"", SS_DB_RETRY},
        {"08000", SS_DB_RETRY}, /* connection_exception */
        {"08006", SS_DB_RETRY}, /* connection_failure */
        {"08P01", SS_DB_RETRY}, /* protocol_violation */
        {"40001", SS_DB_RETRY}, /* serialization_failure */
        {"40P01", SS_DB_RETRY}, /* deadlock_detected */
        {"40000", SS_DB_RETRY},
        {"40003", SS_DB_RETRY},
        {"53100", SS_DB_RETRY}, /* disk_full */
        {"53300", SS_DB_RETRY}, /* too_many_connections */
        {"55P03", SS_DB_RETRY}, /* lock_not_available */
        {"57014", SS_DB_RETRY}, /* query_canceled (statement_timeout) */
        {"57P01", SS_DB_RETRY}, /* admin_shutdown */
        {"57P02", SS_DB_RETRY}, /* crash_shutdown */
        {"57P03", SS_DB_RETRY}, /* cannot_connect_now */
        {"57P05", SS_DB_RETRY}, /* idle_session_timeout */
        /* data: the message's fault, dead-lettered */
        {"22P02", SS_DB_DATA}, /* invalid_text_representation (bad money string) */
        {"22003", SS_DB_DATA}, /* numeric_value_out_of_range */
        {"22007", SS_DB_DATA}, /* invalid_datetime_format */
        {"22008", SS_DB_DATA}, /* datetime_field_overflow */
        {"22001", SS_DB_DATA}, /* string_data_right_truncation */
        {"22021", SS_DB_DATA}, /* character_not_in_repertoire (NUL byte) */
        {"23502", SS_DB_DATA}, /* not_null_violation */
        {"23505", SS_DB_DATA}, /* unique_violation */
        {"23503", SS_DB_DATA}, /* foreign_key_violation */
        {"23514", SS_DB_DATA}, /* check_violation */
        {"40002", SS_DB_DATA}, /* transaction_integrity_constraint_violation */
        {"54000", SS_DB_DATA}, /* program_limit_exceeded (index row too large) */
        /* fatal: bugs, schema, configuration: never dead-letter a message for these */
        {"42P01", SS_DB_FATAL}, /* undefined_table (migration missing) */
        {"42703", SS_DB_FATAL}, /* undefined_column */
        {"42601", SS_DB_FATAL}, /* syntax_error */
        {"42501", SS_DB_FATAL}, /* insufficient_privilege */
        {"0A000", SS_DB_FATAL}, /* feature_not_supported */
        {"25P02", SS_DB_FATAL}, /* in_failed_sql_transaction */
        {"26000", SS_DB_FATAL}, /* invalid_sql_statement_name (not prepared) */
        {"28P01", SS_DB_FATAL}, /* invalid_password */
        {"3D000", SS_DB_FATAL}, /* invalid_catalog_name */
        {"54001", SS_DB_FATAL}, /* statement_too_complex */
        {"55000", SS_DB_FATAL}, /* object_not_in_prerequisite_state */
        {"57000", SS_DB_FATAL}, /* operator_intervention */
        {"57P04", SS_DB_FATAL}, /* database_dropped */
        {"58030", SS_DB_FATAL}, /* io_error */
        {"XX000", SS_DB_FATAL}, /* internal_error */
        {"P0001", SS_DB_FATAL}, /* raise_exception */
        {"2200", SS_DB_FATAL},  /* not a SQLSTATE */
        {"220000", SS_DB_FATAL},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        ss_db_class_t got = ss_db_classify_sqlstate(table[i].sqlstate);
        if (got != table[i].cls)
            fail_msg("%s: got %s, want %s", table[i].sqlstate ? table[i].sqlstate : "NULL",
                     ss_db_class_name(got), ss_db_class_name(table[i].cls));
    }
}

static void test_classify_result(void **state) {
    (void)state;
    assert_int_equal(ss_db_classify(NULL, NULL), SS_DB_RETRY);
    PGresult *ok = PQmakeEmptyPGresult(NULL, PGRES_COMMAND_OK);
    assert_int_equal(ss_db_classify(NULL, ok), SS_DB_OK);
    PQclear(ok);
    /* a failed result without a SQLSTATE: nothing came from the server */
    PGresult *bad = PQmakeEmptyPGresult(NULL, PGRES_FATAL_ERROR);
    assert_int_equal(ss_db_classify(NULL, bad), SS_DB_RETRY);
    PQclear(bad);
    assert_string_equal(ss_db_class_name(SS_DB_RETRY), "retry");
    assert_string_equal(ss_db_class_name(SS_DB_DATA), "data");
    assert_string_equal(ss_db_class_name(SS_DB_FATAL), "fatal");
    assert_string_equal(ss_db_class_name(SS_DB_OK), "ok");
}

static void test_url_normalize(void **state) {
    (void)state;
    char out[256], err[128];
    assert_int_equal(
        ss_db_url_normalize("postgresql+asyncpg://u@h:5432/d", out, sizeof out, err, sizeof err),
        0);
    assert_string_equal(out, "postgresql://u@h:5432/d");
    assert_int_equal(ss_db_url_normalize("postgres://h/d", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "postgresql://h/d");
    assert_int_equal(ss_db_url_normalize(NULL, out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, SS_DB_DEFAULT_URL);
    assert_int_equal(ss_db_url_normalize("mysql://h/d", out, sizeof out, err, sizeof err), -1);
    assert_int_equal(ss_db_url_normalize("h:5432", out, sizeof out, err, sizeof err), -1);
    assert_int_equal(ss_db_url_normalize("postgresql://h/d", out, 8, err, sizeof err), -1);
}

/* A local port with nobody listening: connects are refused at once. */
static int closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_conn_new_rejects_bad_url(void **state) {
    (void)state;
    char err[256] = "";
    ss_db_conn_opts_t o = {.url = "mysql://localhost/x"};
    assert_null(ss_db_conn_new(&o, err, sizeof err));
    assert_non_null(strstr(err, "DATABASE_URL"));
    ss_db_conn_free(NULL);
    assert_null(ss_db_conn_pg(NULL));
}

static void test_conn_statement_registry(void **state) {
    (void)state;
    char err[256];
    ss_db_conn_opts_t o = {.url = "postgresql://127.0.0.1:1/x"};
    ss_db_conn_t *c = ss_db_conn_new(&o, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(ss_db_conn_add_stmt(c, "s1", "SELECT 1", 0, err, sizeof err), SS_DB_ERR_NONE);
    assert_int_equal(ss_db_conn_add_stmt(c, "s1", "SELECT 1", 0, err, sizeof err), SS_DB_ERR_NONE);
    assert_int_equal(ss_db_conn_add_stmt(c, "s1", "SELECT 2", 0, err, sizeof err),
                     SS_DB_ERR_CONFIG);
    assert_non_null(strstr(err, "s1"));
    for (int i = 0; i < 40; i++) { /* grows past the first allocation */
        char name[16];
        snprintf(name, sizeof name, "n%d", i);
        assert_int_equal(ss_db_conn_add_stmt(c, name, "SELECT $1::int", 1, err, sizeof err),
                         SS_DB_ERR_NONE);
    }
    assert_null(ss_db_conn_pg(c));
    ss_db_conn_free(c);
}

/* No server: CONNECT, then BACKOFF (no attempt) until the gate opens; the
 * class is retry and there is no SQLSTATE. */
static void test_conn_backoff_gate(void **state) {
    (void)state;
    char url[128], err[512];
    snprintf(url, sizeof url, "postgresql://postgres@127.0.0.1:%d/x", closed_port());
    ss_db_conn_opts_t o = {.url = url,
                           .application_name = "test-db",
                           .connect_timeout_s = 2,
                           .statement_timeout_ms = 1000,
                           .listen_channel = "a\"b",
                           .backoff_base_ms = 200,
                           .backoff_max_ms = 400};
    ss_db_conn_t *c = ss_db_conn_new(&o, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(ss_db_conn_retry_at(c), 0);
    assert_int_equal(ss_db_conn_ensure(c, err, sizeof err), SS_DB_ERR_CONNECT);
    assert_null(ss_db_conn_pg(c));
    assert_int_equal(ss_db_conn_class(c), SS_DB_RETRY);
    assert_string_equal(ss_db_conn_sqlstate(c), "");
    assert_int_equal(ss_db_conn_generation(c), 0);
    int64_t at = ss_db_conn_retry_at(c);
    int64_t now = ss_time_mono_usec();
    assert_true(at > now);
    assert_true(at - now <= 200 * 1000);
    assert_true(at - now >= 50 * 1000);
    /* gated: answered at once, nothing tried */
    assert_int_equal(ss_db_conn_ensure(c, err, sizeof err), SS_DB_ERR_BACKOFF);
    assert_non_null(strstr(err, "unavailable"));
    PGresult *r = (PGresult *)1;
    assert_int_equal(ss_db_conn_query(c, "q", "SELECT 1", 0, NULL, &r, err, sizeof err),
                     SS_DB_ERR_BACKOFF);
    assert_null(r);
    /* once the gate opens, the next attempt fails again and the delay grows */
    while (ss_db_conn_retry_at(c))
        usleep(10000);
    assert_int_equal(ss_db_conn_query(c, NULL, "SELECT 1", 0, NULL, &r, err, sizeof err),
                     SS_DB_ERR_CONNECT);
    at = ss_db_conn_retry_at(c);
    now = ss_time_mono_usec();
    assert_true(at - now <= 400 * 1000);
    assert_true(at - now >= 150 * 1000);
    ss_db_conn_free(c);
}

/* Connections sharing a gate (the gateway's threads): one failure holds
 * back the others. */
static void test_conn_shared_gate(void **state) {
    (void)state;
    char url[128], err[512];
    snprintf(url, sizeof url, "postgresql://127.0.0.1:%d/x", closed_port());
    _Atomic int64_t gate = 0;
    ss_db_conn_opts_t o = {
        .url = url, .backoff_base_ms = 1000, .backoff_max_ms = 1000, .shared_gate = &gate};
    ss_db_conn_t *a = ss_db_conn_new(&o, err, sizeof err);
    ss_db_conn_t *b = ss_db_conn_new(&o, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(ss_db_conn_ensure(a, err, sizeof err), SS_DB_ERR_CONNECT);
    assert_true(ss_db_conn_retry_at(b) > 0);
    assert_int_equal(ss_db_conn_ensure(b, err, sizeof err), SS_DB_ERR_BACKOFF);
    ss_db_conn_free(a);
    ss_db_conn_free(b);
}

/* Without a gate every call tries (the caller paces its retries). */
static void test_conn_ungated(void **state) {
    (void)state;
    char url[128], err[512];
    snprintf(url, sizeof url, "postgresql://127.0.0.1:%d/x", closed_port());
    ss_db_conn_opts_t o = {.url = url};
    ss_db_conn_t *c = ss_db_conn_new(&o, err, sizeof err);
    assert_non_null(c);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ss_db_conn_ensure(c, err, sizeof err), SS_DB_ERR_CONNECT);
        assert_int_equal(ss_db_conn_retry_at(c), 0);
    }
    ss_db_conn_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_sqlstate_table),
        cmocka_unit_test(test_classify_result),
        cmocka_unit_test(test_url_normalize),
        cmocka_unit_test(test_conn_new_rejects_bad_url),
        cmocka_unit_test(test_conn_statement_registry),
        cmocka_unit_test(test_conn_backoff_gate),
        cmocka_unit_test(test_conn_shared_gate),
        cmocka_unit_test(test_conn_ungated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
