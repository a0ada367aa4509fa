/* One reconciliation pass (`once`, and each round of `serve`).
 *
 * Lists the shipments and trackers EasyPost created in the last window
 * (start_datetime = now - window), looks each page's ids up in PostgreSQL
 * in one read-only query, and produces the objects PostgreSQL lacks
 * (missing) or holds in an older version (stale: updated_at older than
 * EasyPost's; for a shipment the newer of updated_at and
 * tracker_updated_at, since tracker updates move both).  Then the trackers
 * PostgreSQL still shows in a non-final state but created before the window
 * are fetched one by one (at most RECONCILE_MAX_OPEN_TRACKERS per pass,
 * newest first): a tracker bought long ago can still change.
 *
 * Only one replica works at a time: the pass holds a session advisory lock
 * (pg_try_advisory_lock) on its own connection; a replica that does not get
 * it skips the pass.  The session is read-only (default_transaction_read_only):
 * nothing is written to PostgreSQL. */
#include "reconcile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <db/db.h>

#include <common/log.h>
#include <common/metrics.h>
#include <common/shutdown.h>
#include <common/sstime.h>
#include <common/backoff.h>
#include <common/util.h>

/* 'ssrc' '0001': the reconcile lock, one per database. */
#define RC_LOCK_KEY "7378726300000001"

static PGconn *g_db;

void rc_pass_close(void) {
    if (g_db)
        PQfinish(g_db);
    g_db = NULL;
}

static int db_ensure(char *errstr, size_t n) {
    if (g_db && PQstatus(g_db) == CONNECTION_OK)
        return 0;
    rc_pass_close();
    g_db = ss_db_connect(g_rc.db_url, RC_PROG, 5, errstr, n);
    if (!g_db)
        return -1;
    if (ss_db_exec(g_db, "SET default_transaction_read_only = on", errstr, n) != 0 ||
        ss_db_exec(g_db, "SET statement_timeout = '60s'", errstr, n) != 0) {
        rc_pass_close();
        return -1;
    }
    return 0;
}

int rc_pass_db_ready(char *why, size_t why_size) {
    /* The pass's own session is busy during a pass: check with a short one. */
    char err[256];
    PGconn *c = ss_db_connect(g_rc.db_url, RC_PROG "-ready", 2, err, sizeof err);
    if (!c) {
        snprintf(why, why_size, "postgresql: %s", err);
        return -1;
    }
    PQfinish(c);
    return 0;
}

/* What one page queued, counted in the pass's stats only once Kafka has
 * acknowledged all of it. */
typedef struct {
    size_t queued; /* messages on the producer's pending list */
    uint64_t checked, missing, stale, errors;
    int trackers;
    char before[128]; /* the cursor the page was asked with: where to go back to */
} held_t;

typedef struct {
    rc_producer_t *prod;
    rc_pass_stats_t *st;
    int trackers;
    char request_id[64];
    held_t held; /* the page queued last, not yet acknowledged (queued == 0 and
                    checked == 0: none) */
    int holding;
} pass_ctx_t;

static int id_ok(const char *id) {
    size_t n = 0;
    for (const char *p = id; *p; p++, n++)
        if (n > 120 || !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                         (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return 0;
    return n > 0;
}

/* PostgreSQL's version of each id: -1 absent, 0 present without updated_at. */
static int pg_versions(int trackers, const ss_ep_list_item_t *items, size_t n, int64_t *ver,
                       char *errstr, size_t errstr_size) {
    ss_buf_t arr = {0};
    ss_buf_append(&arr, "{", 1);
    for (size_t i = 0; i < n; i++) {
        ver[i] = -1;
        if (id_ok(items[i].id))
            ss_buf_appendf(&arr, "%s\"%s\"", arr.len > 1 ? "," : "", items[i].id);
    }
    if (ss_buf_append(&arr, "}", 1) != 0) {
        ss_buf_free(&arr);
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    static const char *const sql[2] = {
        /* updated_at NULL: a placeholder a tracker made, the Shipment itself is missing */
        "SELECT id, CASE WHEN updated_at IS NULL THEN -1 ELSE (extract(epoch FROM"
        " greatest(updated_at, tracker_updated_at)) * 1000000)::int8 END"
        " FROM shipments WHERE id = ANY($1::text[])",
        "SELECT id, coalesce((extract(epoch FROM updated_at) * 1000000)::int8, 0)"
        " FROM trackers WHERE id = ANY($1::text[])"};
    const char *params[1] = {arr.data};
    PGresult *r = PQexecParams(g_db, sql[trackers], 1, NULL, params, NULL, NULL, 0);
    ss_buf_free(&arr);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        ss_db_error(g_db, r, errstr, errstr_size);
        PQclear(r);
        if (PQstatus(g_db) != CONNECTION_OK)
            rc_pass_close();
        return -1;
    }
    for (int row = 0; row < PQntuples(r); row++) {
        const char *id = PQgetvalue(r, row, 0);
        for (size_t i = 0; i < n; i++)
            if (strcmp(items[i].id, id) == 0)
                ver[i] = strtoll(PQgetvalue(r, row, 1), NULL, 10);
    }
    PQclear(r);
    return 0;
}

static void count(const char *name, const char *help, const char *object, uint64_t n) {
    char labels[48];
    snprintf(labels, sizeof labels, "object=\"%s\"", object);
    /* Created even at 0: alerts and boards see every series from the first pass. */
    ss_counter_t *ctr = ss_counter(name, help, labels);
    if (n)
        ss_counter_add(ctr, n);
}

/* Compares and queues the fresher copies; what was queued is counted into
 * h, for held_settle once Kafka has acknowledged it. */
static void compare_queue(pass_ctx_t *c, const ss_ep_list_item_t *items, size_t n,
                          const int64_t *ver, int checked, held_t *h) {
    memset(h, 0, sizeof *h);
    h->trackers = c->trackers;
    h->checked = n;
    for (size_t i = 0; i < n; i++) {
        int is_missing = ver[i] < 0;
        int is_stale = !is_missing && items[i].updated_at_usec > 0 &&
                       (ver[i] == 0 || ver[i] < items[i].updated_at_usec);
        if (!is_missing && !is_stale)
            continue;
        char err[256];
        if (rc_produce(c->prod, items[i].raw, items[i].raw_len, checked, items[i].object_type,
                       RC_SOURCE_RECONCILE, c->request_id, err, sizeof err) != 0) {
            h->errors++;
            ss_log_kv(SS_LOG_WARN, "reconcile: not produced", "id", items[i].id, "error", err,
                      NULL);
            continue;
        }
        h->queued++;
        h->missing += (uint64_t)is_missing;
        h->stale += (uint64_t)is_stale;
        SS_DEBUG("reconcile: %s %s", items[i].id, is_missing ? "missing" : "stale");
    }
}

/* Waits for the acknowledgements of what h queued (the oldest messages
 * pending) and only then counts it.  Returns RC_ACK_OK, or RC_ACK_FAILED /
 * RC_ACK_REFUSED with errstr when Kafka did not take all of it (nothing of h
 * is counted then). */
static int held_settle(pass_ctx_t *c, const held_t *h, char *errstr, size_t errstr_size) {
    int ack = rc_producer_wait_first(c->prod, h->queued, errstr, errstr_size);
    if (ack != RC_ACK_OK)
        return ack;
    const char *obj = h->trackers ? "trackers" : "shipments";
    c->st->checked += h->checked;
    c->st->missing += h->missing;
    c->st->stale += h->stale;
    c->st->repaired += h->queued;
    c->st->errors += h->errors;
    count("reconcile_checked_total", "Objects compared with PostgreSQL", obj, h->checked);
    count("reconcile_missing_total", "Objects PostgreSQL did not have", obj, h->missing);
    count("reconcile_stale_total", "Objects PostgreSQL had in an older version", obj, h->stale);
    count("reconcile_repaired_total", "Fresher copies produced and acknowledged by Kafka", obj,
          h->queued);
    count("reconcile_errors_total", "Objects that could not be checked or produced", obj,
          h->errors);
    return 0;
}

/* Settles the held page.  Not acknowledged: everything queued since is
 * dropped from the pending list (the sync worker's version guard makes the
 * copies that did arrive harmless) and the walk goes back to the held
 * page's cursor, to ask it again.  Refused for good by Kafka: the held
 * page's copies are counted as errors and the pass stops.  Returns 0, -1
 * (asked again) or -2 (refused) with errstr. */
static int pass_settle(pass_ctx_t *c, rc_walk_t *w, char *errstr, size_t errstr_size) {
    if (!c->holding)
        return 0;
    c->holding = 0;
    int ack = held_settle(c, &c->held, errstr, errstr_size);
    if (ack == RC_ACK_OK)
        return 0;
    char e2[256];
    rc_producer_wait(c->prod, e2, sizeof e2);
    if (ack == RC_ACK_REFUSED) {
        const char *obj = c->held.trackers ? "trackers" : "shipments";
        uint64_t lost = c->held.queued + c->held.errors;
        c->st->errors += lost;
        count("reconcile_errors_total", "Objects that could not be checked or produced", obj, lost);
        snprintf(e2, sizeof e2, "%s", errstr);
        snprintf(errstr, errstr_size,
                 "Kafka refused copies of %s for good (%.160s); waiting will not fix it", obj, e2);
        return -2;
    }
    if (w) {
        snprintf(w->before_id, sizeof w->before_id, "%s", c->held.before);
        w->rewound = 1;
    }
    return -1;
}

/* Pages are pipelined as the backfill's are: a page's copies are queued,
 * then the previous page's acknowledgements are awaited while these travel,
 * so Kafka's round trip overlaps the next list call and PostgreSQL lookup
 * instead of adding to each page.  A page is counted once acknowledged; one
 * that is not is asked again (the walk goes back to its cursor), so the
 * pass still never ends with a copy unsent. */
static int pass_page(void *ud, rc_walk_t *w, const ss_ep_list_item_t *items, size_t n, char *errstr,
                     size_t errstr_size) {
    pass_ctx_t *c = ud;
    int64_t ver[RC_PAGE_MAX];
    if (db_ensure(errstr, errstr_size) != 0 ||
        pg_versions(c->trackers, items, n, ver, errstr, errstr_size) != 0)
        return -1; /* PostgreSQL trouble: wait and ask the page again (the held one stays) */
    held_t h;
    compare_queue(c, items, n, ver, 1, &h);
    snprintf(h.before, sizeof h.before, "%s", w->before_id);
    int src = pass_settle(c, w, errstr, errstr_size);
    if (src == -2)
        return -2; /* refused: the pass stops */
    if (src != 0)
        return -1; /* this page was dropped with the held one: both again */
    c->held = h;
    c->holding = 1;
    return 0;
}

/* The open trackers queued since the last settle: counted when acknowledged,
 * as errors when not (a tracker is not fetched again in this pass). */
static int open_settle(pass_ctx_t *c, held_t *batch) {
    char err[256];
    held_t b = *batch;
    memset(batch, 0, sizeof *batch);
    batch->trackers = 1;
    b.trackers = 1;
    if (held_settle(c, &b, err, sizeof err) == 0)
        return 0;
    uint64_t lost = b.queued + b.errors;
    c->st->errors += lost;
    count("reconcile_errors_total", "Objects that could not be checked or produced", "trackers",
          lost);
    ss_log_kv(SS_LOG_WARN, "reconcile: open trackers not acknowledged by Kafka", "error", err,
              NULL);
    return -1;
}

/* Trackers not final in PostgreSQL, created before the window: one GET each. */
static int open_trackers(pass_ctx_t *c, ss_ep_client_t *ep, const char *before, char *errstr,
                         size_t errstr_size) {
    if (g_rc.max_open_trackers <= 0)
        return 0;
    if (db_ensure(errstr, errstr_size) != 0)
        return -1;
    char lim[24];
    snprintf(lim, sizeof lim, "%lld", g_rc.max_open_trackers);
    const char *params[2] = {before, lim};
    PGresult *r = PQexecParams(
        g_db,
        "SELECT id, coalesce((extract(epoch FROM updated_at) * 1000000)::int8, 0) FROM trackers"
        " WHERE coalesce(status, '') NOT IN ('delivered', 'return_to_sender', 'failure',"
        " 'cancelled', 'error') AND created_at < $1::timestamptz"
        " ORDER BY created_at DESC LIMIT $2::int",
        2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        ss_db_error(g_db, r, errstr, errstr_size);
        PQclear(r);
        rc_pass_close();
        return -1;
    }
    int rows = PQntuples(r);
    held_t batch = {.trackers = 1};
    for (int row = 0; row < rows && !ss_shutdown_requested(); row++) {
        const char *id = PQgetvalue(r, row, 0);
        int64_t ver = strtoll(PQgetvalue(r, row, 1), NULL, 10);
        ss_ep_result_t res;
        int ok = -1;
        ss_backoff_t bo = {.base_ms = 500, .max_ms = (int)g_rc.backoff_max_ms};
        for (int attempt = 0; attempt < 5; attempt++) {
            ok = ss_ep_tracker_retrieve(ep, id, &res);
            if (ok == 0 || !(res.http_status == 429 || res.http_status >= 500 ||
                             res.status == SS_EP_ERR_CONNECT || res.status == SS_EP_ERR_TIMEOUT ||
                             res.status == SS_EP_ERR_TRANSPORT))
                break;
            long wait = ss_backoff_next(&bo);
            if (res.retry_after_ms > wait)
                wait = res.retry_after_ms;
            ss_ep_result_free(&res);
            if (rc_sleep(wait))
                break;
        }
        if (ok != 0) {
            c->st->errors++;
            count("reconcile_errors_total", "Objects that could not be checked or produced",
                  "trackers", 1);
            ss_log_kv(SS_LOG_WARN, "reconcile: tracker not fetched", "id", id, "error", res.errstr,
                      NULL);
            ss_ep_result_free(&res);
            continue;
        }
        ss_ep_list_item_t it = {.raw = res.body,
                                .raw_len = res.body_len,
                                .id = id,
                                .object_type = "Tracker",
                                .status = ss_ep_json_str(res.json, "status")};
        const char *u = ss_ep_json_str(res.json, "updated_at");
        int64_t uu = 0;
        if (u && ss_time_parse(u, &uu) == 0)
            it.updated_at_usec = uu;
        /* the body as EasyPost sent it, checked by rc_produce; acknowledged in
         * batches (one round trip per tracker would add up over 1,000) */
        held_t h;
        compare_queue(c, &it, 1, &ver, 0, &h);
        ss_ep_result_free(&res);
        batch.queued += h.queued;
        batch.checked += h.checked;
        batch.missing += h.missing;
        batch.stale += h.stale;
        batch.errors += h.errors;
        if (batch.queued >= 100 && open_settle(c, &batch) != 0)
            continue;
    }
    open_settle(c, &batch);
    PQclear(r);
    return 0;
}

int rc_pass_run(ss_ep_client_t *ep, rc_producer_t *prod, long long window_hours,
                rc_pass_stats_t *st, char *errstr, size_t errstr_size) {
    memset(st, 0, sizeof *st);
    int64_t t0 = ss_time_mono_usec();
    if (db_ensure(errstr, errstr_size) != 0) {
        st->errors++;
        st->failed = 1;
        return -1;
    }
    PGresult *r = PQexec(g_db, "SELECT pg_try_advisory_lock(" RC_LOCK_KEY ")");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        ss_db_error(g_db, r, errstr, errstr_size);
        PQclear(r);
        rc_pass_close();
        st->errors++;
        st->failed = 1;
        return -1;
    }
    int locked = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    ss_gauge_set(ss_gauge("reconcile_lock_held", "1 while this replica runs a pass", NULL), locked);
    for (int t = 0; t < 2; t++) { /* every counter exported from the first pass on, at 0 */
        const char *obj = t ? "trackers" : "shipments";
        count("reconcile_checked_total", "Objects compared with PostgreSQL", obj, 0);
        count("reconcile_missing_total", "Objects PostgreSQL did not have", obj, 0);
        count("reconcile_stale_total", "Objects PostgreSQL had in an older version", obj, 0);
        count("reconcile_repaired_total", "Fresher copies produced and acknowledged by Kafka", obj,
              0);
        count("reconcile_errors_total", "Objects that could not be checked or produced", obj, 0);
    }
    if (!locked) {
        st->skipped_locked = 1;
        return 0;
    }

    pass_ctx_t c = {.prod = prod, .st = st};
    ss_random_id("reconcile-", c.request_id, sizeof c.request_id);
    int64_t since = ss_time_now_usec() - window_hours * 3600LL * 1000000;
    char start[SS_TIME_BUFSIZE];
    ss_time_format(since, start, sizeof start);
    int rc = 0;
    static const ss_ep_list_kind_t kinds[2] = {SS_EP_LIST_SHIPMENTS, SS_EP_LIST_TRACKERS};
    for (int k = 0; k < 2 && rc == 0; k++) {
        rc_walk_t w;
        memset(&w, 0, sizeof w);
        w.ep = ep;
        w.kind = kinds[k];
        w.page_size = (int)g_rc.page_size;
        snprintf(w.start, sizeof w.start, "%s", start);
        c.trackers = k == 1;
        ss_backoff_t bo = {.base_ms = 500, .max_ms = (int)g_rc.backoff_max_ms};
        for (;;) {
            rc = rc_walk_run(&w, pass_page, &c, errstr, errstr_size);
            /* the last page queued: taken once it is acknowledged */
            char e2[512];
            int src = pass_settle(&c, &w, e2, sizeof e2);
            if (src == -2 && rc >= 0) {
                snprintf(errstr, errstr_size, "%s", e2);
                rc = -1;
            }
            if (src != -1 || rc != 0)
                break;
            ss_log(SS_LOG_WARN, "last page of %s not taken (%s); again from its cursor",
                   ss_ep_list_name(w.kind), e2);
            if (rc_sleep(ss_backoff_next(&bo))) {
                rc = 1;
                break;
            }
        }
        st->errors += w.skipped_unknown + w.skipped_invalid + w.bad_pages;
    }
    if (rc == 0) {
        c.trackers = 1;
        if (open_trackers(&c, ep, start, errstr, errstr_size) != 0) {
            st->errors++;
            rc = -1;
        }
    }
    if (g_db) {
        r = PQexec(g_db, "SELECT pg_advisory_unlock(" RC_LOCK_KEY ")");
        PQclear(r);
    }
    ss_gauge_set(ss_gauge("reconcile_lock_held", "1 while this replica runs a pass", NULL), 0);
    st->seconds = (double)(ss_time_mono_usec() - t0) / 1e6;
    st->failed = rc < 0;
    return rc;
}
