/* Refresh loop.
 *
 * Two connections:
 *   - the listen connection: LISTEN shipstream_analytics_dirty, drained with
 *     PQconsumeInput/PQnotifies whenever poll() says its socket is readable;
 *   - the refresh connection: holds the session advisory lock RS_LOCK_KEY
 *     while this replica is the active refresher, and runs the REFRESHes,
 *     the analytics_refresh_log inserts and housekeeping, each statement in
 *     autocommit (its own short transaction).
 *
 * Scheduling: each view has a `due` flag and a `not_before` time (retry
 * backoff after a failure).  Notifications, the periodic timer, taking the
 * lock and reconnecting mark every view due; a cycle refreshes the due views
 * once the minimum interval since the end of the previous cycle has passed.
 * Notifications arriving during a cycle mark the views due again, so a burst
 * costs at most two cycles per minimum interval.  POST /refresh forces a
 * cycle over every view at once.
 *
 * If this process dies, its backend notices within
 * client_connection_check_interval even in the middle of a REFRESH, ends the
 * session and so releases the lock; a standby takes it at its next try. */
#include "scheduler.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "common/backoff.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/shutdown.h"
#include "common/sstime.h"
#include "common/util.h"
#include "db/db.h"

const char *const rs_view_names[RS_NVIEWS] = {
    "mv_daily_shipment_analytics",
    "mv_carrier_performance",
    "mv_top_routes",
};

const char *const rs_part_tables[RS_NPART] = {"tracking_events", "easypost_events"};

rs_state_t rs_state = {.wake_fd = {-1, -1}};

#define USEC    1000000LL
#define CHANNEL "shipstream_analytics_dirty"

typedef struct {
    const char *name;
    int due;
    int64_t not_before; /* monotonic usec; 0 = now */
    ss_backoff_t bo;
    ss_histogram_t *duration;
    ss_gauge_t *last_success;
    ss_counter_t *failures;
    ss_counter_t *runs_ok;
    ss_counter_t *runs_failed;
} view_t;

typedef struct {
    const rs_config_t *cfg;
    view_t views[RS_NVIEWS];
    ss_db_conn_t *l; /* LISTEN */
    ss_db_conn_t *r; /* lock + refreshes */
    int64_t lock_next_try;
    int leader;
    int64_t last_cycle_end; /* 0 = never */
    int64_t next_periodic;
    int64_t next_housekeeping;
    ss_gauge_t *g_leader;
    ss_counter_t *c_notify;
    ss_counter_t *c_hk[3];
    ss_counter_t *c_part_created[RS_NPART];
    ss_counter_t *c_part_retired[RS_NPART];
    ss_counter_t *c_part_failed[RS_NPART];
    ss_counter_t *c_part_pruned[RS_NPART];
} sched_t;

static const char *const hk_tables[3] = {"processed_events", "idempotency_keys",
                                         "analytics_refresh_log"};
/* Batched deletes: `ctid = ANY(ARRAY(...))` is a TID scan over at most $2 rows,
 * each statement its own short transaction. */
static const char *const hk_sql[3] = {
    "DELETE FROM processed_events WHERE ctid = ANY (ARRAY("
    " SELECT ctid FROM processed_events"
    " WHERE processed_at < now() - make_interval(days => $1::int) LIMIT $2::int))",
    "DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY("
    " SELECT ctid FROM idempotency_keys"
    " WHERE expires_at < now() OR created_at < now() - make_interval(hours => $1::int)"
    " LIMIT $2::int))",
    "DELETE FROM analytics_refresh_log WHERE ctid = ANY (ARRAY("
    " SELECT ctid FROM analytics_refresh_log"
    " WHERE started_at < now() - make_interval(days => $1::int) LIMIT $2::int))",
};

int rs_state_init(void) {
    if (pipe2(rs_state.wake_fd, O_CLOEXEC | O_NONBLOCK) != 0)
        return -1;
    return 0;
}

void rs_request_refresh(void) {
    atomic_store(&rs_state.force, 1);
    if (rs_state.wake_fd[1] >= 0) {
        ssize_t w = write(rs_state.wake_fd[1], "r", 1);
        (void)w; /* a full pipe already wakes the loop */
    }
}

static int64_t now_mono(void) {
    return ss_time_mono_usec();
}

static void publish_state(sched_t *s) {
    atomic_store(&rs_state.db_ok, ss_db_conn_pg(s->l) != NULL && ss_db_conn_pg(s->r) != NULL);
    atomic_store(&rs_state.leader, s->leader);
    ss_gauge_set(s->g_leader, s->leader ? 1.0 : 0.0);
}

static void mark_all_due(sched_t *s) {
    for (int i = 0; i < RS_NVIEWS; i++)
        s->views[i].due = 1;
}

/* ------------------------------------------------------------ connections */

static void drop_lconn(sched_t *s, const char *why) {
    if (!ss_db_conn_pg(s->l))
        return;
    ss_log_kv(SS_LOG_WARN, "listen connection lost", "error", why, NULL);
    ss_db_conn_lost(s->l); /* reconnected (with backoff) by the loop */
    publish_state(s);
}

/* After a failure on the refresh connection: closes it unless still up. */
static void drop_rconn(sched_t *s, const char *why) {
    ss_log_kv(SS_LOG_WARN, "refresh connection lost", "error", why, "was_leader",
              s->leader ? "true" : "false", NULL);
    ss_db_conn_lost(s->r); /* the session ends: the lock, if held, is released */
    s->leader = 0;
    publish_state(s);
}

static void log_connect_failure(ss_db_conn_t *c, const char *msg, const char *err) {
    int64_t at = ss_db_conn_retry_at(c), now = now_mono();
    char ds[24];
    snprintf(ds, sizeof ds, "%lld", (long long)(at > now ? (at - now) / 1000 : 0));
    ss_log_kv(SS_LOG_WARN, msg, "error", err, "retry_ms", ds, NULL);
}

/* Connects the listen connection (libs/db LISTENs on every new connection). */
static void connect_lconn(sched_t *s) {
    char err[512];
    if (ss_db_conn_ensure(s->l, err, sizeof err) != SS_DB_ERR_NONE) {
        log_connect_failure(s->l, "cannot connect (listen)", err);
        return;
    }
    ss_log_kv(SS_LOG_INFO, "listening", "channel", CHANNEL, NULL);
    /* Changes may have been signalled while we were not listening: catch up. */
    mark_all_due(s);
    publish_state(s);
}

static void connect_rconn(sched_t *s) {
    char err[512];
    if (ss_db_conn_ensure(s->r, err, sizeof err) != SS_DB_ERR_NONE) {
        log_connect_failure(s->r, "cannot connect (refresh)", err);
        return;
    }
    s->lock_next_try = 0;
    publish_state(s);
}

/* Sends one statement and waits for its result while watching for a stop:
 * after a stop request the statement gets shutdown_grace_ms to finish, then
 * it is cancelled (PQcancel).  Returns the last result (caller PQclears), or
 * NULL when nothing could be sent. */
static PGresult *exec_wait(sched_t *s, PGconn *c, const char *sql, int nparams,
                           const char *const *vals) {
    if (!PQsendQueryParams(c, sql, nparams, NULL, vals, NULL, NULL, 0))
        return NULL;
    int64_t stop_at = 0;
    int cancelled = 0;
    for (;;) {
        if (!PQconsumeInput(c))
            break;
        if (!PQisBusy(c))
            break;
        struct pollfd p[2] = {{.fd = PQsocket(c), .events = POLLIN},
                              {.fd = ss_shutdown_fd(), .events = POLLIN}};
        int nfds = 2, timeout = -1;
        if (ss_shutdown_requested()) {
            nfds = 1; /* the stop pipe stays readable */
            int64_t t = now_mono();
            if (!stop_at)
                stop_at = t;
            int64_t left = stop_at + s->cfg->shutdown_grace_ms * 1000 - t;
            if (left <= 0 && !cancelled) {
                char eb[256] = "";
                PGcancel *pc = PQgetCancel(c);
                if (pc) {
                    if (!PQcancel(pc, eb, sizeof eb))
                        ss_log_kv(SS_LOG_WARN, "cancel failed", "error", eb, NULL);
                    PQfreeCancel(pc);
                }
                ss_log(SS_LOG_WARN, "stopping: statement in flight cancelled after %lld ms grace",
                       s->cfg->shutdown_grace_ms);
                cancelled = 1;
            }
            timeout = cancelled ? 1000 : (int)(left / 1000) + 1;
        }
        if (poll(p, (nfds_t)nfds, timeout) < 0 && errno != EINTR)
            break;
    }
    PGresult *last = NULL, *r;
    while ((r = PQgetResult(c)) != NULL) {
        PQclear(last);
        last = r;
        if (PQstatus(c) == CONNECTION_BAD)
            break;
    }
    return last;
}

/* "SQLSTATE message" as refresh_analytics_views() writes it, else the
 * connection's error. */
static void error_text(PGconn *c, const PGresult *r, char *buf, size_t size) {
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (st && msg)
        snprintf(buf, size, "%s %s", st, msg);
    else
        ss_db_error(c, r, buf, size);
}

static int result_ok(const PGresult *r) {
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* ------------------------------------------------------------ leadership */

static void try_lock(sched_t *s) {
    PGresult *r =
        exec_wait(s, ss_db_conn_pg(s->r), "SELECT pg_try_advisory_lock(" RS_LOCK_KEY ")", 0, NULL);
    s->lock_next_try = now_mono() + s->cfg->lock_retry_s * USEC;
    if (!result_ok(r) || PQntuples(r) != 1) {
        char err[512];
        ss_db_error(ss_db_conn_pg(s->r), r, err, sizeof err);
        PQclear(r);
        if (PQstatus(ss_db_conn_pg(s->r)) == CONNECTION_BAD)
            drop_rconn(s, err);
        else
            ss_log_kv(SS_LOG_ERROR, "advisory lock query failed", "error", err, NULL);
        return;
    }
    int got = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!got) {
        if (s->leader)
            s->leader = 0;
        publish_state(s);
        return;
    }
    s->leader = 1;
    ss_log(SS_LOG_INFO, "advisory lock taken: this replica is the active refresher");
    /* Catch up on whatever changed while another replica (or nobody) refreshed. */
    mark_all_due(s);
    s->last_cycle_end = 0;
    int64_t t = now_mono();
    s->next_periodic = t + s->cfg->interval_s * USEC;
    s->next_housekeeping = t + 2 * USEC;
    publish_state(s);
}

/* ------------------------------------------------------------ refresh */

/* Migration 0011: the views are computed from daily rollups that follow the
 * shipments day by day.  Before the first view (mv_daily_shipment_analytics)
 * the dirty days are rolled up, RS_APPLY_DAYS per statement (each its own
 * transaction), while a statement finds a full batch (a backlog: the first
 * cycle after the migration); days marked during the last statement wait for
 * the next cycle.  A database without the function (before 0011) has nothing
 * to apply.  Returns 0 (done), 1 (failed: err set) or -1 (connection lost). */
#define RS_APPLY_DAYS     "31"
#define RS_APPLY_MAX_RUNS 1000
static int apply_rollups(sched_t *s, PGconn *c, char *err, size_t errsize) {
    const char *p[1] = {RS_APPLY_DAYS};
    for (int i = 0; i < RS_APPLY_MAX_RUNS && !ss_shutdown_requested(); i++) {
        PGresult *r = exec_wait(s, c,
                                "SELECT analytics_rollup_apply($1::int) WHERE"
                                " to_regprocedure('analytics_rollup_apply(integer)') IS NOT NULL",
                                1, p);
        if (!result_ok(r)) {
            error_text(c, r, err, errsize);
            PQclear(r);
            if (PQstatus(c) == CONNECTION_BAD) {
                drop_rconn(s, err);
                return -1;
            }
            return 1;
        }
        long n = PQntuples(r) == 1 ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : 0;
        PQclear(r);
        if (n < atol(RS_APPLY_DAYS))
            break;
    }
    return 0;
}

/* Refreshes one view and logs it.  Returns 0 when done (success or a failure
 * of the view, logged and scheduled for retry), -1 when the connection is
 * gone. */
static int refresh_view(sched_t *s, view_t *v) {
    PGconn *c = ss_db_conn_pg(s->r);
    char err[1024] = "";
    const char *p1[1] = {v->name};
    PGresult *r = exec_wait(s, c,
                            "SELECT clock_timestamp()::text, c.relispopulated FROM pg_class c"
                            " WHERE c.oid = $1::regclass",
                            1, p1);
    if (!result_ok(r) || PQntuples(r) != 1) {
        ss_db_error(c, r, err, sizeof err);
        PQclear(r);
        if (PQstatus(c) == CONNECTION_BAD) {
            drop_rconn(s, err);
            return -1;
        }
        ss_log_kv(SS_LOG_ERROR, "view lookup failed", "view", v->name, "error", err, NULL);
        v->due = 1;
        v->not_before = now_mono() + (int64_t)ss_backoff_next(&v->bo) * 1000;
        return 0;
    }
    char started[64];
    snprintf(started, sizeof started, "%s", PQgetvalue(r, 0, 0));
    int concurrent = PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);

    /* The names are our constants; CONCURRENTLY needs a populated view. */
    char sql[160];
    snprintf(sql, sizeof sql, "REFRESH MATERIALIZED VIEW %s%s", concurrent ? "CONCURRENTLY " : "",
             v->name);
    int64_t t0 = now_mono();
    int ok = 1;
    r = NULL;
    if (v == &s->views[0]) {
        int ar = apply_rollups(s, c, err, sizeof err);
        if (ar < 0)
            return -1;
        ok = ar == 0;
    }
    if (ok) {
        r = exec_wait(s, c, sql, 0, NULL);
        ok = result_ok(r);
        if (!ok)
            error_text(c, r, err, sizeof err);
    }
    long long rows = -1;
    if (!ok) {
        PQclear(r);
        if (PQstatus(c) == CONNECTION_BAD) {
            drop_rconn(s, err);
            return -1;
        }
    } else {
        PQclear(r);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", v->name);
        r = exec_wait(s, c, sql, 0, NULL);
        if (result_ok(r) && PQntuples(r) == 1)
            rows = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
    }
    double secs = (double)(now_mono() - t0) / 1e6;

    char dur[32], rows_s[32];
    snprintf(dur, sizeof dur, "%.3f", secs * 1000.0);
    snprintf(rows_s, sizeof rows_s, "%lld", rows);
    const char *vals[7] = {v->name,
                           started,
                           dur,
                           rows >= 0 ? rows_s : NULL,
                           concurrent ? "true" : "false",
                           ok ? "success" : "failed",
                           ok ? NULL : err};
    r = exec_wait(s, c,
                  "INSERT INTO analytics_refresh_log (view_name, started_at, finished_at,"
                  " duration_ms, rows, concurrent, outcome, error)"
                  " VALUES ($1, $2::timestamptz, clock_timestamp(), $3::numeric, $4::bigint,"
                  " $5::boolean, $6, $7)",
                  7, vals);
    if (!result_ok(r)) {
        char lerr[512];
        ss_db_error(c, r, lerr, sizeof lerr);
        PQclear(r);
        if (PQstatus(c) == CONNECTION_BAD) {
            drop_rconn(s, lerr);
            return -1;
        }
        ss_log_kv(SS_LOG_ERROR, "cannot write analytics_refresh_log", "view", v->name, "error",
                  lerr, NULL);
    } else {
        PQclear(r);
    }

    if (ok) {
        ss_histogram_observe(v->duration, secs);
        ss_gauge_set(v->last_success, (double)ss_time_now_usec() / 1e6);
        ss_counter_inc(v->runs_ok);
        ss_backoff_reset(&v->bo);
        v->not_before = 0;
        ss_log_kv(SS_LOG_INFO, "view refreshed", "view", v->name, "duration_ms", dur, "rows",
                  rows_s, "concurrent", concurrent ? "true" : "false", NULL);
    } else {
        ss_counter_inc(v->failures);
        ss_counter_inc(v->runs_failed);
        int d = ss_backoff_next(&v->bo);
        v->due = 1;
        v->not_before = now_mono() + (int64_t)d * 1000;
        char ds[16];
        snprintf(ds, sizeof ds, "%d", d);
        ss_log_kv(SS_LOG_ERROR, "view refresh failed", "view", v->name, "error", err, "retry_ms",
                  ds, NULL);
    }
    return 0;
}

/* Earliest monotonic time a (non-forced) cycle may start, or INT64_MAX when
 * nothing is due. */
static int64_t next_cycle_time(const sched_t *s) {
    int64_t earliest = INT64_MAX;
    for (int i = 0; i < RS_NVIEWS; i++)
        if (s->views[i].due && s->views[i].not_before < earliest)
            earliest = s->views[i].not_before;
    if (earliest == INT64_MAX)
        return earliest;
    int64_t gate = s->last_cycle_end ? s->last_cycle_end + s->cfg->min_interval_s * USEC : 0;
    return earliest > gate ? earliest : gate;
}

/* Returns -1 when the refresh connection was lost. */
static int run_cycle(sched_t *s, int forced) {
    int64_t t = now_mono();
    int n = 0;
    for (int i = 0; i < RS_NVIEWS && !ss_shutdown_requested(); i++) {
        view_t *v = &s->views[i];
        if (!forced && (!v->due || v->not_before > t))
            continue;
        v->due = 0;
        n++;
        if (refresh_view(s, v) != 0)
            return -1;
    }
    if (n)
        s->last_cycle_end = now_mono();
    return 0;
}

/* ------------------------------------------------------------ housekeeping */

/* Deletes old rows in batches, each its own statement and transaction.
 * Returns -1 when the connection was lost; stops early (returning 1) when a
 * refresh became due, to be resumed soon. */
static int housekeeping(sched_t *s) {
    long long arg1[3] = {s->cfg->processed_events_days, s->cfg->idempotency_hours,
                         s->cfg->refresh_log_days};
    char a1[32], a2[32];
    snprintf(a2, sizeof a2, "%lld", s->cfg->hk_batch);
    for (int t = 0; t < 3; t++) {
        snprintf(a1, sizeof a1, "%lld", arg1[t]);
        const char *vals[2] = {a1, a2};
        long long total = 0;
        for (;;) {
            if (ss_shutdown_requested())
                return 1;
            PGresult *r = exec_wait(s, ss_db_conn_pg(s->r), hk_sql[t], 2, vals);
            if (!result_ok(r)) {
                char err[512];
                ss_db_error(ss_db_conn_pg(s->r), r, err, sizeof err);
                PQclear(r);
                if (PQstatus(ss_db_conn_pg(s->r)) == CONNECTION_BAD) {
                    drop_rconn(s, err);
                    return -1;
                }
                ss_log_kv(SS_LOG_ERROR, "housekeeping failed", "table", hk_tables[t], "error", err,
                          NULL);
                break;
            }
            long long n = strtoll(PQcmdTuples(r), NULL, 10);
            PQclear(r);
            total += n;
            SS_DEBUG("housekeeping batch: %lld rows deleted from %s", n, hk_tables[t]);
            ss_counter_add(s->c_hk[t], (uint64_t)n);
            if (n < s->cfg->hk_batch)
                break;
            /* Let a due refresh go first; the rest is deleted right after. */
            if (atomic_load(&rs_state.force) || next_cycle_time(s) <= now_mono()) {
                if (total)
                    ss_log(SS_LOG_INFO, "housekeeping: %lld rows deleted from %s (paused)", total,
                           hk_tables[t]);
                return 1;
            }
        }
        if (total)
            ss_log(SS_LOG_INFO, "housekeeping: %lld rows deleted from %s", total, hk_tables[t]);
    }
    return 0;
}

/* ------------------------------------------------------------ partitions */

/* Logs a failed partition statement; returns -1 when the connection is gone. */
static int part_failed(sched_t *s, int t, PGresult *r, const char *what) {
    char err[512];
    error_text(ss_db_conn_pg(s->r), r, err, sizeof err);
    PQclear(r);
    if (PQstatus(ss_db_conn_pg(s->r)) == CONNECTION_BAD) {
        drop_rconn(s, err);
        return -1;
    }
    ss_counter_inc(s->c_part_failed[t]);
    ss_log_kv(SS_LOG_ERROR, what, "table", rs_part_tables[t], "error", err, NULL);
    return 0;
}

/* Per partitioned table (a table not partitioned yet, easypost_events before
 * migration 0008, is skipped): partition_maintain() (this month and the next
 * months_ahead exist; whole months past retention detached, then dropped or
 * kept), then, in drop mode, partition_prune() in batches (rows past retention
 * inside the legacy and default partitions).  Each statement is its own
 * transaction.  Returns -1 when the connection was lost, 1 when it paused for
 * a due refresh (resumed soon), else 0. */
static int partitions(sched_t *s) {
    char ahead[32], batch[32];
    snprintf(ahead, sizeof ahead, "%lld", s->cfg->months_ahead);
    snprintf(batch, sizeof batch, "%lld", s->cfg->hk_batch);
    for (int t = 0; t < RS_NPART; t++) {
        char keep[32];
        snprintf(keep, sizeof keep, "%lld", s->cfg->retention_months[t]);
        const char *vals[4] = {rs_part_tables[t], ahead, keep,
                               s->cfg->keep_detached[t] ? "true" : "false"};
        if (ss_shutdown_requested())
            return 1;
        PGresult *r = exec_wait(s, ss_db_conn_pg(s->r),
                                "SELECT partition_maintain($1::regclass, $2::int, $3::int,"
                                " $4::boolean) WHERE EXISTS (SELECT 1 FROM pg_partitioned_table"
                                " WHERE partrelid = $1::regclass)",
                                4, vals);
        if (!result_ok(r)) {
            if (part_failed(s, t, r, "partition maintenance failed") < 0)
                return -1;
            continue;
        }
        for (int i = 0; i < PQntuples(r); i++) {
            const char *line = PQgetvalue(r, i, 0);
            if (strncmp(line, "created ", 8) == 0)
                ss_counter_inc(s->c_part_created[t]);
            else if (strncmp(line, "dropped ", 8) == 0 || strncmp(line, "detached ", 9) == 0)
                ss_counter_inc(s->c_part_retired[t]);
            ss_log_kv(SS_LOG_INFO, "partition maintenance", "table", rs_part_tables[t], "done",
                      line, NULL);
        }
        PQclear(r);
        if (s->cfg->retention_months[t] <= 0 || s->cfg->keep_detached[t])
            continue;
        const char *pv[3] = {rs_part_tables[t], keep, batch};
        long long total = 0;
        for (;;) {
            if (ss_shutdown_requested())
                return 1;
            r = exec_wait(s, ss_db_conn_pg(s->r),
                          "SELECT partition_prune($1::regclass, $2::int, $3::int)", 3, pv);
            if (!result_ok(r) || PQntuples(r) != 1) {
                if (part_failed(s, t, r, "partition prune failed") < 0)
                    return -1;
                break;
            }
            long long n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            PQclear(r);
            total += n;
            ss_counter_add(s->c_part_pruned[t], (uint64_t)n);
            if (n < s->cfg->hk_batch)
                break;
            if (atomic_load(&rs_state.force) || next_cycle_time(s) <= now_mono()) {
                ss_log(SS_LOG_INFO, "retention: %lld rows deleted from %s (paused)", total,
                       rs_part_tables[t]);
                return 1;
            }
        }
        if (total)
            ss_log(SS_LOG_INFO, "retention: %lld rows deleted from %s", total, rs_part_tables[t]);
    }
    return 0;
}

/* ------------------------------------------------------------ loop */

static void drain_notifications(sched_t *s) {
    if (!ss_db_conn_pg(s->l))
        return;
    if (!PQconsumeInput(ss_db_conn_pg(s->l))) {
        drop_lconn(s, PQerrorMessage(ss_db_conn_pg(s->l)));
        return;
    }
    PGnotify *n;
    int count = 0;
    while ((n = PQnotifies(ss_db_conn_pg(s->l))) != NULL) {
        count++;
        PQfreemem(n);
    }
    if (count) {
        ss_counter_add(s->c_notify, (uint64_t)count);
        SS_DEBUG("%d notification(s) on %s", count, CHANNEL);
        mark_all_due(s);
    }
    if (PQstatus(ss_db_conn_pg(s->l)) == CONNECTION_BAD)
        drop_lconn(s, "connection closed");
}

static void init_metrics(sched_t *s) {
    static const double buckets[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                     5,    10,   30,  60,   120, 300, 600};
    for (int i = 0; i < RS_NVIEWS; i++) {
        view_t *v = &s->views[i];
        char l[128], l2[160];
        v->name = rs_view_names[i];
        v->bo.base_ms = (int)s->cfg->retry_base_ms;
        v->bo.max_ms = (int)s->cfg->retry_max_ms;
        snprintf(l, sizeof l, "view=\"%s\"", v->name);
        v->duration = ss_histogram("refresh_duration_seconds", "REFRESH duration per view", l,
                                   buckets, sizeof buckets / sizeof buckets[0]);
        v->last_success = ss_gauge("refresh_last_success_timestamp_seconds",
                                   "Unix time of the last successful refresh per view", l);
        v->failures = ss_counter("refresh_failures_total", "Failed refreshes per view", l);
        snprintf(l2, sizeof l2, "view=\"%s\",outcome=\"success\"", v->name);
        v->runs_ok = ss_counter("refresh_runs_total", "Refreshes per view and outcome", l2);
        snprintf(l2, sizeof l2, "view=\"%s\",outcome=\"failed\"", v->name);
        v->runs_failed = ss_counter("refresh_runs_total", "Refreshes per view and outcome", l2);
    }
    for (int t = 0; t < 3; t++) {
        char l[96];
        snprintf(l, sizeof l, "table=\"%s\"", hk_tables[t]);
        s->c_hk[t] = ss_counter("housekeeping_rows_deleted_total",
                                "Rows deleted by housekeeping per table", l);
    }
    for (int t = 0; t < RS_NPART; t++) {
        char l[96];
        snprintf(l, sizeof l, "table=\"%s\"", rs_part_tables[t]);
        s->c_part_created[t] =
            ss_counter("partitions_created_total", "Monthly partitions created per table", l);
        s->c_part_retired[t] = ss_counter("partitions_retired_total",
                                          "Partitions detached (and dropped) by retention", l);
        s->c_part_failed[t] = ss_counter("partition_maintenance_failures_total",
                                         "Failed partition maintenance statements per table", l);
        s->c_part_pruned[t] = ss_counter("housekeeping_rows_deleted_total",
                                         "Rows deleted by housekeeping per table", l);
    }
    s->g_leader = ss_gauge("refresh_leader", "1 when this replica holds the refresh lock", NULL);
    s->c_notify =
        ss_counter("notifications_received_total", "Notifications received on " CHANNEL, NULL);
}

static int ms_until(int64_t when, int64_t now) {
    if (when <= now)
        return 0;
    int64_t ms = (when - now + 999) / 1000;
    return ms > 60000 ? 60000 : (int)ms;
}

int rs_run(const rs_config_t *cfg) {
    sched_t s;
    memset(&s, 0, sizeof s);
    s.cfg = cfg;
    /* Reconnects back off 250 ms .. 10 s.  jit off on the refresh connection:
     * compiling the views' aggregate plans cost more than it saved
     * (bench/schema: three refreshes 1260 ms with JIT, 918 ms without); work_mem
     * 64MB: the rollups' and views' sorts and hashes stay in memory
     * (PostgreSQL's default is 4MB).
     * client_connection_check_interval (PostgreSQL >= 14, optional): our
     * backend ends (and releases the lock) soon after this process dies, even
     * in the middle of a long REFRESH. */
    ss_db_conn_opts_t lo = {.url = cfg->database_url,
                            .application_name = "shipstream-refresh-scheduler-listen",
                            .listen_channel = CHANNEL,
                            .nonblocking = 1,
                            .backoff_base_ms = 250,
                            .backoff_max_ms = 10000};
    ss_db_conn_opts_t ro = {.url = cfg->database_url,
                            .application_name = "shipstream-refresh-scheduler",
                            .statement_timeout_ms = cfg->statement_timeout_ms > 0
                                                        ? cfg->statement_timeout_ms
                                                        : SS_DB_TIMEOUT_NONE,
                            .session_sql = "SET jit = off; SET work_mem = '64MB'",
                            .optional_sql = "SET client_connection_check_interval = 2000",
                            .backoff_base_ms = 250,
                            .backoff_max_ms = 10000};
    char err[512];
    s.l = ss_db_conn_new(&lo, err, sizeof err);
    s.r = s.l ? ss_db_conn_new(&ro, err, sizeof err) : NULL;
    if (!s.r) {
        ss_log_kv(SS_LOG_ERROR, "cannot start", "error", err, NULL);
        ss_db_conn_free(s.l);
        return 1;
    }
    init_metrics(&s);
    publish_state(&s);

    while (!ss_shutdown_requested()) {
        int64_t t = now_mono();
        if (!ss_db_conn_pg(s.l) && !ss_db_conn_retry_at(s.l))
            connect_lconn(&s);
        if (!ss_db_conn_pg(s.r) && !ss_db_conn_retry_at(s.r))
            connect_rconn(&s);
        if (ss_db_conn_pg(s.r) && !s.leader && t >= s.lock_next_try)
            try_lock(&s);
        drain_notifications(&s);

        if (s.leader && ss_db_conn_pg(s.r)) {
            t = now_mono();
            if (t >= s.next_periodic) {
                mark_all_due(&s);
                s.next_periodic = t + cfg->interval_s * USEC;
            }
            int forced = atomic_exchange(&rs_state.force, 0);
            if (forced || next_cycle_time(&s) <= t) {
                if (forced)
                    ss_log(SS_LOG_INFO, "refresh requested over HTTP");
                if (run_cycle(&s, forced) != 0)
                    continue;
                drain_notifications(&s);
            }
            if (ss_db_conn_pg(s.r) && s.leader && now_mono() >= s.next_housekeeping) {
                int hr = housekeeping(&s);
                if (hr < 0)
                    continue;
                if (hr == 0) {
                    hr = partitions(&s);
                    if (hr < 0)
                        continue;
                }
                s.next_housekeeping = now_mono() + (hr == 1 ? USEC : cfg->hk_interval_s * USEC);
            }
        } else {
            atomic_store(&rs_state.force, 0); /* standby: HTTP answered 409 already */
        }

        /* Sleep until the next thing to do, or until a socket, a stop or a
         * POST /refresh wakes us. */
        t = now_mono();
        int timeout = 60000;
        if (!ss_db_conn_pg(s.l) && ms_until(ss_db_conn_retry_at(s.l), t) < timeout)
            timeout = ms_until(ss_db_conn_retry_at(s.l), t);
        if (!ss_db_conn_pg(s.r) && ms_until(ss_db_conn_retry_at(s.r), t) < timeout)
            timeout = ms_until(ss_db_conn_retry_at(s.r), t);
        if (ss_db_conn_pg(s.r) && !s.leader && ms_until(s.lock_next_try, t) < timeout)
            timeout = ms_until(s.lock_next_try, t);
        if (ss_db_conn_pg(s.r) && s.leader) {
            int64_t nc = next_cycle_time(&s);
            if (nc != INT64_MAX && ms_until(nc, t) < timeout)
                timeout = ms_until(nc, t);
            if (ms_until(s.next_periodic, t) < timeout)
                timeout = ms_until(s.next_periodic, t);
            if (ms_until(s.next_housekeeping, t) < timeout)
                timeout = ms_until(s.next_housekeeping, t);
        }
        struct pollfd p[4];
        int np = 0, il = -1, ir = -1;
        p[np++] = (struct pollfd){.fd = ss_shutdown_fd(), .events = POLLIN};
        p[np++] = (struct pollfd){.fd = rs_state.wake_fd[0], .events = POLLIN};
        if (ss_db_conn_pg(s.l)) {
            il = np;
            p[np++] = (struct pollfd){.fd = PQsocket(ss_db_conn_pg(s.l)), .events = POLLIN};
        }
        if (ss_db_conn_pg(s.r)) {
            ir = np;
            p[np++] = (struct pollfd){.fd = PQsocket(ss_db_conn_pg(s.r)), .events = POLLIN};
        }
        int pr = poll(p, (nfds_t)np, timeout);
        if (pr < 0 && errno != EINTR) {
            ss_log(SS_LOG_ERROR, "poll: %s", strerror(errno));
            ss_shutdown_wait(1000);
            continue;
        }
        if (pr <= 0)
            continue;
        if (p[1].revents) {
            char buf[64];
            while (read(rs_state.wake_fd[0], buf, sizeof buf) > 0) {
            }
        }
        if (il >= 0 && p[il].revents)
            drain_notifications(&s);
        if (ir >= 0 && p[ir].revents && ss_db_conn_pg(s.r)) {
            /* Idle refresh connection readable: a notice, or the server went away. */
            if (!PQconsumeInput(ss_db_conn_pg(s.r)) ||
                PQstatus(ss_db_conn_pg(s.r)) == CONNECTION_BAD)
                drop_rconn(&s, PQerrorMessage(ss_db_conn_pg(s.r)));
        }
    }

    ss_log(SS_LOG_INFO, "stopping: releasing the lock and closing connections");
    if (ss_db_conn_pg(s.r) && s.leader &&
        ss_db_exec(ss_db_conn_pg(s.r), "SELECT pg_advisory_unlock(" RS_LOCK_KEY ")", err,
                   sizeof err) != 0)
        ss_log_kv(SS_LOG_WARN, "unlock failed (the session end releases it)", "error", err, NULL);
    s.leader = 0;
    ss_db_conn_free(s.r);
    ss_db_conn_free(s.l);
    s.r = s.l = NULL;
    publish_state(&s);
    return 0;
}
