/* One PostgreSQL connection per civetweb worker thread. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/sstime.h"
#include "db/db.h"
#include "gateway.h"

static _Thread_local PGconn *t_conn;
/* Which GW_STMT_* are prepared on t_conn (cleared with the connection). */
static _Thread_local unsigned t_prepared;
/* Monotonic time (us) before which nobody retries connecting: while
 * PostgreSQL is down, /db answers 503 at once instead of waiting out a
 * connect timeout on every request. */
static _Atomic int64_t g_down_until;

PGconn *gw_db(char *errstr, size_t errstr_size) {
    if (t_conn && PQstatus(t_conn) == CONNECTION_OK)
        return t_conn;
    gw_db_reset();
    int64_t now = ss_time_mono_usec();
    if (now < atomic_load(&g_down_until)) {
        snprintf(errstr, errstr_size, "postgresql unavailable (retrying shortly)");
        return NULL;
    }
    t_conn = ss_db_connect(g_gw.cfg.database_url, "shipstream-gateway",
                           (int)g_gw.cfg.db_connect_timeout_s, errstr, errstr_size);
    if (!t_conn) {
        atomic_store(&g_down_until, ss_time_mono_usec() + 1000000);
        return NULL;
    }
    char sql[128];
    snprintf(sql, sizeof sql, "SET statement_timeout = %lld; SET TimeZone = 'UTC'",
             g_gw.cfg.statement_timeout_ms);
    if (ss_db_exec(t_conn, sql, errstr, errstr_size) != 0) {
        gw_db_reset();
        return NULL;
    }
    return t_conn;
}

void gw_db_reset(void) {
    if (t_conn)
        PQfinish(t_conn);
    t_conn = NULL;
    t_prepared = 0;
}

void gw_db_thread_exit(void) {
    gw_db_reset();
}

static PGresult *run(PGconn *db, int stmt, const char *sql, int nparams,
                     const char *const *params) {
    if (stmt < 0)
        return PQexecParams(db, sql, nparams, NULL, params, NULL, NULL, 0);
    char name[16];
    snprintf(name, sizeof name, "gw_%d", stmt);
    if (!(t_prepared & (1u << stmt))) {
        PGresult *p = PQprepare(db, name, sql, nparams, NULL);
        if (PQresultStatus(p) != PGRES_COMMAND_OK)
            return p; /* classified and reported by the caller */
        PQclear(p);
        t_prepared |= 1u << stmt;
    }
    return PQexecPrepared(db, name, nparams, params, NULL, NULL, 0);
}

static PGresult *query(int stmt, const char *sql, int nparams, const char *const *params,
                       int *unavailable, char *errstr, size_t errstr_size) {
    *unavailable = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        PGconn *db = gw_db(errstr, errstr_size);
        if (!db) {
            *unavailable = 1;
            return NULL;
        }
        PGresult *r = run(db, stmt, sql, nparams, params);
        ss_db_class_t cls = ss_db_classify(db, r);
        if (cls == SS_DB_OK)
            return r;
        ss_db_error(db, r, errstr, errstr_size);
        PQclear(r);
        if (cls != SS_DB_RETRY)
            return NULL;
        /* Connection lost (e.g. PostgreSQL restarted): reconnect once. */
        if (PQstatus(db) == CONNECTION_BAD)
            gw_db_reset();
        else
            break; /* timeout, serialization failure: report, don't loop */
    }
    *unavailable = 1;
    return NULL;
}

PGresult *gw_db_query(const char *sql, int nparams, const char *const *params, int *unavailable,
                      char *errstr, size_t errstr_size) {
    return query(-1, sql, nparams, params, unavailable, errstr, errstr_size);
}

PGresult *gw_db_query_prepared(int stmt, const char *sql, int nparams, const char *const *params,
                               int *unavailable, char *errstr, size_t errstr_size) {
    return query(stmt, sql, nparams, params, unavailable, errstr, errstr_size);
}
