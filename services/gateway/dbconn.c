/* One PostgreSQL connection per civetweb worker thread (libs/db's
 * ss_db_conn_t: statement_timeout, statements prepared per connection,
 * reconnect after a restart). */
#include <stdatomic.h>
#include <stdio.h>

#include "common/log.h"
#include "db/db.h"
#include "gateway.h"

static _Thread_local ss_db_conn_t *t_db;
/* Shared by every thread's connection: after a failed connect nobody retries
 * for about a second, so while PostgreSQL is down /db answers 503 at once
 * instead of waiting out a connect timeout on every request. */
static _Atomic int64_t g_gate;

static ss_db_conn_t *thread_db(char *errstr, size_t errstr_size) {
    if (t_db)
        return t_db;
    ss_db_conn_opts_t o = {
        .url = g_gw.cfg.database_url,
        .application_name = "shipstream-gateway",
        .connect_timeout_s = (int)g_gw.cfg.db_connect_timeout_s,
        .statement_timeout_ms = g_gw.cfg.statement_timeout_ms,
        .session_sql = "SET TimeZone = 'UTC'",
        .backoff_base_ms = 1000,
        .backoff_max_ms = 1000,
        .shared_gate = &g_gate,
    };
    t_db = ss_db_conn_new(&o, errstr, errstr_size);
    return t_db;
}

void gw_db_reset(void) {
    ss_db_conn_free(t_db);
    t_db = NULL;
}

void gw_db_thread_exit(void) {
    gw_db_reset();
}

static PGresult *query(int stmt, const char *sql, int nparams, const char *const *params,
                       int *unavailable, char *errstr, size_t errstr_size) {
    *unavailable = 0;
    ss_db_conn_t *db = thread_db(errstr, errstr_size);
    if (!db)
        return NULL;
    char name[16];
    if (stmt >= 0)
        snprintf(name, sizeof name, "gw_%d", stmt);
    PGresult *r = NULL;
    ss_db_err_t e = ss_db_conn_query(db, stmt >= 0 ? name : NULL, sql, nparams, params, &r, errstr,
                                     errstr_size);
    if (e == SS_DB_ERR_NONE)
        return r;
    if (e == SS_DB_ERR_CONNECT) /* at most about once a second: the gate is shared */
        ss_log_kv(SS_LOG_WARN, "postgresql unavailable", "error", errstr, NULL);
    /* Unreachable, or a statement timeout / serialization failure: 503.
     * Anything else (a bug, the schema): the caller's 500. */
    *unavailable = e == SS_DB_ERR_BACKOFF || e == SS_DB_ERR_CONNECT ||
                   (e == SS_DB_ERR_SQL && ss_db_conn_class(db) == SS_DB_RETRY);
    return NULL;
}

int gw_db_ping(char *errstr, size_t errstr_size) {
    int unavailable;
    PGresult *r = query(-1, "SELECT 1", 0, NULL, &unavailable, errstr, errstr_size);
    if (!r) {
        if (t_db)
            ss_db_conn_lost(t_db);
        return -1;
    }
    PQclear(r);
    return 0;
}

PGresult *gw_db_query(const char *sql, int nparams, const char *const *params, int *unavailable,
                      char *errstr, size_t errstr_size) {
    return query(-1, sql, nparams, params, unavailable, errstr, errstr_size);
}

PGresult *gw_db_query_prepared(int stmt, const char *sql, int nparams, const char *const *params,
                               int *unavailable, char *errstr, size_t errstr_size) {
    return query(stmt, sql, nparams, params, unavailable, errstr, errstr_size);
}
