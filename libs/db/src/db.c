#include "db/db.h"

#include <stdio.h>
#include <string.h>

int ss_db_url_normalize(const char *url, char *out, size_t outsize, char *errstr,
                        size_t errstr_size) {
    if (!url || !*url)
        url = SS_DB_DEFAULT_URL;
    const char *sep = strstr(url, "://");
    if (!sep) {
        snprintf(errstr, errstr_size, "DATABASE_URL: expected postgresql://user@host:port/db");
        return -1;
    }
    size_t slen = (size_t)(sep - url);
    const char *plus = memchr(url, '+', slen);
    size_t base = plus ? (size_t)(plus - url) : slen;
    if (!((base == 10 && strncmp(url, "postgresql", 10) == 0) ||
          (base == 8 && strncmp(url, "postgres", 8) == 0))) {
        snprintf(errstr, errstr_size,
                 "DATABASE_URL: scheme must be postgresql:// (or postgresql+asyncpg://)");
        return -1;
    }
    int n = snprintf(out, outsize, "postgresql%s", sep);
    if (n < 0 || (size_t)n >= outsize) {
        snprintf(errstr, errstr_size, "DATABASE_URL: too long");
        return -1;
    }
    return 0;
}

PGconn *ss_db_connect(const char *url, const char *application_name, int connect_timeout_s,
                      char *errstr, size_t errstr_size) {
    char norm[2048], timeout[16];
    if (ss_db_url_normalize(url, norm, sizeof norm, errstr, errstr_size) != 0)
        return NULL;
    snprintf(timeout, sizeof timeout, "%d", connect_timeout_s > 0 ? connect_timeout_s : 5);
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {norm, application_name ? application_name : "shipstream", timeout, NULL};
    /* expand_dbname=1: the URL in "dbname" is expanded; later keys override it. */
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        /* libpq's message names host and port, never the password. */
        const char *m = PQerrorMessage(c);
        size_t len = strlen(m);
        while (len && (m[len - 1] == '\n' || m[len - 1] == ' '))
            len--;
        snprintf(errstr, errstr_size, "%.*s", (int)len, m);
        PQfinish(c);
        return NULL;
    }
    return c;
}

ss_db_class_t ss_db_classify(PGconn *conn, const PGresult *res) {
    if (!res)
        return SS_DB_RETRY;
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_SINGLE_TUPLE ||
        st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_EMPTY_QUERY
#ifdef LIBPQ_HAS_PIPELINING
        || st == PGRES_PIPELINE_SYNC
#endif
    )
        return SS_DB_OK;
    if (conn && PQstatus(conn) == CONNECTION_BAD)
        return SS_DB_RETRY;
    const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (!s || strlen(s) != 5)
        return SS_DB_RETRY; /* client-side failure (lost connection): no SQLSTATE */
    if (strncmp(s, "08", 2) == 0 || strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0 ||
        strncmp(s, "57P0", 4) == 0 || strncmp(s, "53", 2) == 0 || strcmp(s, "55P03") == 0 ||
        strcmp(s, "57014") == 0 /* query_canceled (statement_timeout) */)
        return SS_DB_RETRY;
    if (strncmp(s, "22", 2) == 0 || strncmp(s, "23", 2) == 0)
        return SS_DB_DATA;
    return SS_DB_FATAL;
}

void ss_db_error(PGconn *conn, const PGresult *res, char *errstr, size_t errstr_size) {
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    if (!msg || !*msg)
        msg = conn ? PQerrorMessage(conn) : "no connection";
    size_t len = strlen(msg);
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        len--;
    snprintf(errstr, errstr_size, "%s%s%.*s", state ? state : "", state ? ": " : "", (int)len, msg);
}

int ss_db_exec(PGconn *conn, const char *sql, char *errstr, size_t errstr_size) {
    PGresult *r = PQexec(conn, sql);
    int ok = r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    if (!ok)
        ss_db_error(conn, r, errstr, errstr_size);
    PQclear(r);
    return ok ? 0 : -1;
}
