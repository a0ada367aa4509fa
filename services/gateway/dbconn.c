/* The gateway's PostgreSQL connections: a bounded pool shared by every
 * civetweb worker thread (libs/db's ss_db_conn_t each: statement_timeout,
 * statements prepared per connection, reconnect after a restart).
 *
 * A pool, not one connection per thread: the gateway runs many threads (one
 * per open connection, idle and slow clients included — see GATEWAY_THREADS),
 * far more than PostgreSQL's max_connections could serve.  A query borrows a
 * connection for one statement; when all are busy it waits up to
 * GATEWAY_DB_POOL_WAIT_MS and then answers 503 like an unreachable
 * PostgreSQL (nothing queues without bound). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "db/db.h"
#include "gateway.h"

/* Shared by every connection: after a failed connect nobody retries for
 * about a second, so while PostgreSQL is down /db answers 503 at once
 * instead of waiting out a connect timeout on every request. */
static _Atomic int64_t g_gate;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ss_db_conn_t **conns; /* size n; NULL until first used */
    unsigned char *busy;
    int n;
} g_pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

int gw_db_pool_init(int size) {
    g_pool.conns = calloc((size_t)size, sizeof *g_pool.conns);
    g_pool.busy = calloc((size_t)size, 1);
    if (!g_pool.conns || !g_pool.busy)
        return -1;
    g_pool.n = size;
    return 0;
}

static ss_db_conn_t *new_conn(char *errstr, size_t errstr_size) {
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
    return ss_db_conn_new(&o, errstr, errstr_size);
}

/* Borrows a connection: its slot, or -1 with errstr when none was free in
 * time (or none could be made). */
static int borrow(ss_db_conn_t **out, char *errstr, size_t errstr_size) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long ms = g_gw.cfg.db_pool_wait_ms;
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g_pool.mu);
    for (;;) {
        for (int i = 0; i < g_pool.n; i++)
            if (!g_pool.busy[i]) {
                g_pool.busy[i] = 1;
                pthread_mutex_unlock(&g_pool.mu);
                if (!g_pool.conns[i])
                    g_pool.conns[i] = new_conn(errstr, errstr_size);
                if (!g_pool.conns[i]) {
                    pthread_mutex_lock(&g_pool.mu);
                    g_pool.busy[i] = 0;
                    pthread_cond_signal(&g_pool.cv);
                    pthread_mutex_unlock(&g_pool.mu);
                    return -1;
                }
                *out = g_pool.conns[i];
                return i;
            }
        if (pthread_cond_timedwait(&g_pool.cv, &g_pool.mu, &until) == ETIMEDOUT) {
            pthread_mutex_unlock(&g_pool.mu);
            snprintf(errstr, errstr_size, "every pooled PostgreSQL connection is busy");
            return -1;
        }
    }
}

static void give_back(int slot) {
    pthread_mutex_lock(&g_pool.mu);
    g_pool.busy[slot] = 0;
    pthread_cond_signal(&g_pool.cv);
    pthread_mutex_unlock(&g_pool.mu);
}

/* At exit, after the HTTP threads stopped. */
void gw_db_reset(void) {
    for (int i = 0; i < g_pool.n; i++) {
        ss_db_conn_free(g_pool.conns[i]);
        g_pool.conns[i] = NULL;
    }
}

void gw_db_thread_exit(void) {}

static PGresult *query(int stmt, const char *sql, int nparams, const char *const *params,
                       int *unavailable, int is_ping, char *errstr, size_t errstr_size) {
    *unavailable = 0;
    ss_db_conn_t *db;
    int slot = borrow(&db, errstr, errstr_size);
    if (slot < 0) {
        *unavailable = 1;
        return NULL;
    }
    char name[16];
    if (stmt >= 0)
        snprintf(name, sizeof name, "gw_%d", stmt);
    PGresult *r = NULL;
    ss_db_err_t e = ss_db_conn_query(db, stmt >= 0 ? name : NULL, sql, nparams, params, &r, errstr,
                                     errstr_size);
    ss_db_class_t cls = e == SS_DB_ERR_SQL ? ss_db_conn_class(db) : SS_DB_OK;
    if (e == SS_DB_ERR_NONE) {
        give_back(slot);
        return r;
    }
    if (is_ping) /* /ready: drop the connection, the next one starts afresh */
        ss_db_conn_lost(db);
    give_back(slot);
    if (e == SS_DB_ERR_CONNECT) /* at most about once a second: the gate is shared */
        ss_log_kv(SS_LOG_WARN, "postgresql unavailable", "error", errstr, NULL);
    /* Unreachable, or a statement timeout / serialization failure: 503.
     * Anything else (a bug, the schema): the caller's 500. */
    *unavailable = e == SS_DB_ERR_BACKOFF || e == SS_DB_ERR_CONNECT ||
                   (e == SS_DB_ERR_SQL && cls == SS_DB_RETRY);
    return NULL;
}

int gw_db_ping(char *errstr, size_t errstr_size) {
    int unavailable;
    PGresult *r = query(-1, "SELECT 1", 0, NULL, &unavailable, 1, errstr, errstr_size);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

PGresult *gw_db_query(const char *sql, int nparams, const char *const *params, int *unavailable,
                      char *errstr, size_t errstr_size) {
    return query(-1, sql, nparams, params, unavailable, 0, errstr, errstr_size);
}

PGresult *gw_db_query_prepared(int stmt, const char *sql, int nparams, const char *const *params,
                               int *unavailable, char *errstr, size_t errstr_size) {
    return query(stmt, sql, nparams, params, unavailable, 0, errstr, errstr_size);
}
