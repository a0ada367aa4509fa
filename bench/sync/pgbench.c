/* ss-sync-pgbench: the PostgreSQL-alone rate of the sync write path.
 *
 *   ss-sync-pgbench [--baseline] [--full] DATABASE_URL FILE.tsv [BATCH]
 *
 * Reads "key<TAB>envelope" lines, parses and maps them all first (not
 * timed), then times only PostgreSQL taking the same rows with the same
 * set-based statements, BATCH messages per transaction (default 1000).
 * Prints "events_per_s <rate>" on stdout.
 *
 * --baseline: today's write path before migration 0005, kept as the
 *   baseline (bench/sync/baseline_sql.h, frozen): the same cells plus the
 *   raw copies of rates, parcels, tracking details and embedded addresses
 *   that the old statements wrote.  The database must be at migration 0004.
 * --full: every shipment gets two more rates (three in "rates"; the baseline stores
 *   all three, today's path the selected one, migration 0009) and a
 *   tracker with 6 tracking details (a second event, after all the shipments):
 *   the "synced shipment" of the bytes-per-shipment measure.
 * --copy: today's statements fed by COPY (binary) into temporary staging tables instead of
 *   array parameters (ss_sync_db_t.copy; issue 15: keep whichever measures faster). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <common/sstime.h>
#include <db/db.h>
#include <envelope/envelope.h>
#include <sync/apply.h>
#include <sync/map.h>

#include "baseline_sql.h"

#define TEXTOID 25

static const char SQL_PROCESSED[] =
    "INSERT INTO processed_events (event_id) SELECT unnest($1::text[])"
    " ON CONFLICT DO NOTHING RETURNING event_id";
static const char SQL_OFFSETS[] =
    "INSERT INTO kafka_offsets AS k (consumer_group, topic, partition, next_offset, updated_at)"
    " SELECT $1, t, p::integer, o::bigint, now()"
    " FROM unnest($2::text[], $3::text[], $4::text[]) AS u(t, p, o)"
    " ON CONFLICT (consumer_group, topic, partition) DO UPDATE"
    " SET next_offset = excluded.next_offset, updated_at = now()"
    " WHERE k.next_offset < excluded.next_offset";

/* The baseline's statements, in the old worker's order; extra: the table had a raw
 * column the new one has not (sent as one more parameter, the object's JSON text). */
static const struct {
    ss_sync_table_id_t t;
    const char *sql;
    int extra;
    int ncols; /* columns the baseline binds (the first ones); 0: all of today's */
} base[] = {
    {SS_SYNC_T_ADDRESSES, BASELINE_SQL_ADDRESSES, 0, 0},
    {SS_SYNC_T_PARCELS, BASELINE_SQL_PARCELS, 1, 0},
    /* migration 0006 appended batch_status, batch_message, batch_updated_at,
     * refund_updated_at after raw */
    {SS_SYNC_T_SHIPMENTS, BASELINE_SQL_SHIPMENTS, 0, SH_RAW + 1},
    {SS_SYNC_T_RATES, BASELINE_SQL_RATES, 1, 0},
    {SS_SYNC_T_TRACKERS, BASELINE_SQL_TRACKERS, 0, 0},
    {SS_SYNC_T_TRACKING_EVENTS, BASELINE_SQL_TRACKING_EVENTS, 1, 0},
    {SS_SYNC_T_SHIPMENT_TRACK, BASELINE_SQL_SHIPMENT_TRACK, 0, 0},
};
#define NBASE (sizeof(base) / sizeof(base[0]))

/* CPU time (user + system) of process pid in microseconds, from /proc; -1 when unknown.
 * The server's backend runs on this machine (bench, tests): its CPU time per event is
 * what a loaded, shared machine cannot inflate the way it inflates wall time. */
static int64_t proc_cpu_usec(int pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    /* fields after the command: state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    return (int64_t)((ut + st) * 1000000ULL / (unsigned long long)(hz > 0 ? hz : 100));
}

static void die(const char *what, const char *err) {
    fprintf(stderr, "ss-sync-pgbench: %s: %s\n", what, err);
    exit(1);
}

static void put32(ss_buf_t *b, int32_t v) {
    uint32_t n = htonl((uint32_t)v);
    if (ss_buf_append(b, &n, 4) < 0)
        die("encode", "out of memory");
}

/* A binary text[] of the strings s[idx[i]] (idx NULL: s[i]). */
static void text_array(ss_buf_t *b, const char *const *s, const size_t *idx, size_t n) {
    ss_buf_reset(b);
    int has_null = 0;
    for (size_t i = 0; i < n; i++)
        has_null |= s[idx ? idx[i] : i] == NULL;
    put32(b, 1);
    put32(b, has_null);
    put32(b, TEXTOID);
    put32(b, (int32_t)n);
    put32(b, 1);
    for (size_t i = 0; i < n; i++) {
        const char *v = s[idx ? idx[i] : i];
        if (!v) {
            put32(b, -1);
            continue;
        }
        put32(b, (int32_t)strlen(v));
        if (ss_buf_append(b, v, strlen(v)) < 0)
            die("encode", "out of memory");
    }
}

static PGresult *exec_bufs(PGconn *conn, const char *name, ss_buf_t *bufs, int n, int first_text) {
    const char *values[SS_SYNC_MAX_COLS + 1];
    int lengths[SS_SYNC_MAX_COLS + 1], formats[SS_SYNC_MAX_COLS + 1];
    for (int i = 0; i < n; i++) {
        values[i] = bufs[i].data;
        lengths[i] = (int)bufs[i].len;
        formats[i] = !(first_text && i == 0);
    }
    return PQexecPrepared(conn, name, n, values, lengths, formats, 0);
}

static void ok(PGconn *conn, PGresult *res, ExecStatusType want, const char *what) {
    if (PQresultStatus(res) != want) {
        char err[1024];
        ss_db_error(conn, res, err, sizeof(err));
        die(what, err);
    }
    PQclear(res);
}

static void baseline_prepare(PGconn *conn) {
    char name[32];
    for (size_t i = 0; i < NBASE; i++) {
        snprintf(name, sizeof(name), "b%zu", i);
        ok(conn, PQprepare(conn, name, base[i].sql, 0, NULL), PGRES_COMMAND_OK, "prepare");
    }
    ok(conn, PQprepare(conn, "b_processed", SQL_PROCESSED, 0, NULL), PGRES_COMMAND_OK, "prepare");
    ok(conn, PQprepare(conn, "b_offsets", SQL_OFFSETS, 0, NULL), PGRES_COMMAND_OK, "prepare");
}

/* The old worker's transaction (sync/apply.c before 0005) for msgs[0, n). raws[t][row]:
 * the object's JSON text of row of table t. */
static void baseline_apply(PGconn *conn, ss_buf_t *bufs, const ss_sync_rows_t *rows,
                           const ss_sync_msg_t *msgs, size_t n, char **const *raws,
                           unsigned char *keep) {
    ok(conn, PQexec(conn, "BEGIN"), PGRES_COMMAND_OK, "begin");
    const char **ids = malloc(n * sizeof(*ids));
    for (size_t i = 0; i < n; i++)
        ids[i] = msgs[i].event_id;
    text_array(&bufs[0], ids, NULL, n);
    free(ids);
    PGresult *res = exec_bufs(conn, "b_processed", bufs, 1, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || (size_t)PQntuples(res) != n)
        die("processed_events", "event ids not all new (use a fresh database)");
    PQclear(res);
    memset(keep, 1, n);
    int dirty = 0;
    for (size_t b = 0; b < NBASE; b++) {
        ss_sync_table_id_t t = base[b].t;
        size_t *idx = NULL;
        long m = ss_sync_reduce(rows, t, keep, &idx, NULL);
        if (m < 0)
            die("reduce", "out of memory");
        if (m == 0)
            continue;
        int ncols = base[b].ncols ? base[b].ncols : ss_sync_table_ncols(t);
        /* every cell as text, as the old statements take them */
        const char **v = malloc((size_t)m * sizeof(*v));
        for (int c = 0; c < ncols; c++) {
            for (long i = 0; i < m; i++)
                v[i] = ss_sync_cell(rows, t, idx[i], c);
            text_array(&bufs[c], v, NULL, (size_t)m);
        }
        free(v);
        if (t == SS_SYNC_T_ADDRESSES) /* the old worker kept every address' raw */
            text_array(&bufs[AD_RAW], (const char *const *)raws[t], idx, (size_t)m);
        if (base[b].extra)
            text_array(&bufs[ncols], (const char *const *)raws[t], idx, (size_t)m);
        free(idx);
        char name[32];
        snprintf(name, sizeof(name), "b%zu", b);
        res = exec_bufs(conn, name, bufs, ncols + base[b].extra, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            ok(conn, res, PGRES_COMMAND_OK, name);
        dirty |=
            atol(PQcmdTuples(res)) > 0 &&
            (t == SS_SYNC_T_SHIPMENTS || t == SS_SYNC_T_SHIPMENT_TRACK || t == SS_SYNC_T_ADDRESSES);
        PQclear(res);
    }
    char o[24];
    snprintf(o, sizeof(o), "%lld", (long long)msgs[n - 1].offset + 1);
    const char *topic[] = {"bench"}, *part[] = {"0"}, *off[] = {o};
    ss_buf_reset(&bufs[0]);
    if (ss_buf_append(&bufs[0], "bench", 5) < 0)
        die("encode", "out of memory");
    text_array(&bufs[1], topic, NULL, 1);
    text_array(&bufs[2], part, NULL, 1);
    text_array(&bufs[3], off, NULL, 1);
    ok(conn, exec_bufs(conn, "b_offsets", bufs, 4, 1), PGRES_COMMAND_OK, "offsets");
    if (dirty)
        ok(conn, PQexec(conn, "NOTIFY shipstream_analytics_dirty"), PGRES_COMMAND_OK, "notify");
    ok(conn, PQexec(conn, "COMMIT"), PGRES_COMMAND_OK, "commit");
}

/* --full: two more rates in "rates" (with the selected one) and a tracker envelope with 6
 * details for the shipment envelope line; returns the tracker line (malloc'd). */
static char *full_shipment(char **line, long seq) {
    json_object *root = json_tokener_parse(*line), *o = NULL, *sel = NULL;
    if (!root || !json_object_object_get_ex(root, "object", &o) ||
        !json_object_object_get_ex(o, "selected_rate", &sel) || !sel)
        die("--full", "a shipment envelope with a selected_rate expected");
    json_object *rates = json_object_new_array();
    static const char *const carrier[] = {"USPS", "UPS", "FedEx"};
    for (int i = 0; i < 3; i++) {
        json_object *r = NULL;
        if (json_object_deep_copy(sel, &r, NULL) < 0)
            die("--full", "out of memory");
        if (i > 0) {
            char id[128];
            snprintf(id, sizeof(id), "%s_%c",
                     json_object_get_string(json_object_object_get(sel, "id")), 'a' + i);
            json_object_object_add(r, "id", json_object_new_string(id));
            json_object_object_add(r, "carrier", json_object_new_string(carrier[i]));
        }
        json_object_array_add(rates, r);
    }
    json_object_object_add(o, "rates", rates);
    const char *sid = json_object_get_string(json_object_object_get(o, "id"));
    const char *code = json_object_get_string(json_object_object_get(o, "tracking_code"));
    const char *created = json_object_get_string(json_object_object_get(o, "created_at"));
    int64_t t0 = 0;
    if (!sid || !code || !created || ss_time_parse(created, &t0) < 0)
        die("--full", "shipment without id, tracking_code or created_at");
    static const char *const st[] = {"pre_transit", "in_transit",       "in_transit",
                                     "in_transit",  "out_for_delivery", "delivered"};
    static const char *const city[] = {"SPRINGFIELD", "PORTLAND", "AUSTIN",
                                       "DENVER",      "SALEM",    "BOSTON"};
    size_t cap = 8192, len = 0;
    char *det = malloc(cap), when[SS_TIME_BUFSIZE], upd[SS_TIME_BUFSIZE], est[SS_TIME_BUFSIZE];
    for (int d = 0; d < 6; d++) {
        ss_time_format(t0 + (int64_t)(d + 1) * 6 * 3600 * 1000000, when, sizeof(when));
        len += (size_t)snprintf(
            det + len, cap - len,
            "%s{\"object\":\"TrackingDetail\",\"message\":\"Shipment step %d\",\"description\":"
            "\"\",\"status\":\"%s\",\"status_detail\":\"status_update\",\"datetime\":\"%s\","
            "\"source\":\"USPS\",\"carrier_code\":\"\",\"tracking_location\":{\"object\":"
            "\"TrackingLocation\",\"city\":\"%s\",\"state\":\"CA\",\"country\":\"US\",\"zip\":"
            "\"9410%d\"}}",
            d ? "," : "", d, st[d], when, city[d], d);
    }
    ss_time_format(t0 + (int64_t)37 * 3600 * 1000000, upd, sizeof(upd));
    ss_time_format(t0 + (int64_t)72 * 3600 * 1000000, est, sizeof(est));
    size_t n = len + 2048;
    char *trk = malloc(n);
    snprintf(trk, n,
             "{\"schema_version\":1,\"event_id\":\"evt_full_trk_%ld\",\"type\":\"tracker.updated\","
             "\"source\":\"webhook\",\"object_type\":\"Tracker\",\"object_id\":\"trk_full_%ld\","
             "\"updated_at\":\"%s\",\"received_at\":\"%s\",\"request_id\":null,\"object\":"
             "{\"id\":\"trk_full_%ld\",\"object\":\"Tracker\",\"mode\":\"test\",\"tracking_code\":"
             "\"%s\",\"status\":\"delivered\",\"status_detail\":\"arrived_at_destination\","
             "\"created_at\":\"%s\",\"updated_at\":\"%s\",\"signed_by\":\"J. DOE\",\"weight\":null,"
             "\"est_delivery_date\":\"%s\",\"shipment_id\":\"%s\",\"carrier\":\"USPS\","
             "\"tracking_details\":[%s],\"fees\":[],\"public_url\":"
             "\"https://track.easypost.com/djE6%ld\"}}",
             seq, seq, upd, upd, seq, code, created, upd, est, sid, det, seq);
    free(det);
    free(*line);
    *line = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
    json_object_put(root);
    return trk;
}

int main(int argc, char **argv) {
    int baseline = 0, full = 0, copy = 0, a = 1;
    for (; a < argc && argv[a][0] == '-'; a++) {
        if (strcmp(argv[a], "--baseline") == 0)
            baseline = 1;
        else if (strcmp(argv[a], "--full") == 0)
            full = 1;
        else if (strcmp(argv[a], "--copy") == 0)
            copy = 1;
        else
            break;
    }
    if (argc - a < 2) {
        fprintf(stderr, "usage: %s [--baseline] [--full] [--copy] DATABASE_URL FILE.tsv [BATCH]\n",
                argv[0]);
        return 2;
    }
    const char *url = argv[a], *file = argv[a + 1];
    size_t batch = argc > a + 2 ? (size_t)atol(argv[a + 2]) : 1000;
    if (batch == 0)
        batch = 1000;
    FILE *f = fopen(file, "r");
    if (!f) {
        perror(file);
        return 1;
    }
    size_t cap = 1024, n = 0;
    char **lines = malloc(cap * sizeof(*lines));
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        char *tab = strchr(line, '\t');
        if (n == cap)
            lines = realloc(lines, (cap *= 2) * sizeof(*lines));
        lines[n++] = strdup(tab ? tab + 1 : line);
    }
    free(line);
    fclose(f);
    if (full) {
        size_t ns = n;
        lines = realloc(lines, 2 * ns * sizeof(*lines));
        for (size_t i = 0; i < ns; i++)
            lines[n++] = full_shipment(&lines[i], (long)i);
    }

    char err[1024];
    ss_db_conn_opts_t dbo = {.url = url, .application_name = "ss-sync-pgbench"};
    ss_db_conn_t *dbc = ss_db_conn_new(&dbo, err, sizeof(err));
    ss_sync_db_t db;
    ss_sync_db_init(&db);
    db.copy = copy;
    /* the baseline runs on a database of its time: today's statements (tables and
     * columns of later migrations) are not prepared there */
    if (!dbc || (!baseline && ss_sync_db_set_conn(&db, dbc, err, sizeof(err)) != SS_DB_ERR_NONE) ||
        ss_db_conn_ensure(dbc, err, sizeof(err)) != SS_DB_ERR_NONE)
        die("connect", err);
    PGconn *conn = ss_db_conn_pg(dbc); /* the baseline's own statements run on it too */
    size_t nbatches = (n + batch - 1) / batch, nb = 0;
    ss_sync_rows_t *rows = calloc(nbatches, sizeof(*rows));
    ss_envelope_t **all = calloc(nbatches, sizeof(*all));
    ss_sync_msg_t **allm = calloc(nbatches, sizeof(*allm));
    char ***raws = calloc(nbatches * SS_SYNC_T__COUNT, sizeof(*raws));
    for (size_t lo = 0; lo < n; lo += batch, nb++) {
        size_t hi = lo + batch < n ? lo + batch : n;
        all[nb] = calloc(batch, sizeof(ss_envelope_t));
        allm[nb] = calloc(batch, sizeof(ss_sync_msg_t));
        ss_sync_rows_init(&rows[nb]);
        rows[nb].every_rate = baseline; /* the old path stored every offered rate */
        for (size_t i = lo; i < hi; i++) {
            ss_envelope_t *e = &all[nb][i - lo];
            ss_sync_msg_t *m = &allm[nb][i - lo];
            m->topic = "bench";
            m->partition = 0;
            m->offset = (int64_t)i;
            if (ss_envelope_parse(e, lines[i], strlen(lines[i]), err, sizeof(err)) < 0 ||
                ss_sync_map(&rows[nb], e, lines[i], strlen(lines[i]), (uint32_t)(i - lo), err,
                            sizeof(err)) < 0) {
                fprintf(stderr, "line %zu: %s\n", i + 1, err);
                return 1;
            }
            m->event_id = e->event_id;
            m->kind = (int)ss_envelope_topic(e);
        }
        if (!baseline)
            continue;
        /* the raw copies the old statements wrote, serialized before timing */
        static const ss_sync_table_id_t rt[] = {SS_SYNC_T_ADDRESSES, SS_SYNC_T_PARCELS,
                                                SS_SYNC_T_RATES, SS_SYNC_T_TRACKING_EVENTS};
        for (size_t k = 0; k < sizeof(rt) / sizeof(rt[0]); k++) {
            const ss_sync_table_t *t = &rows[nb].t[rt[k]];
            char **r = calloc(t->nrows + 1, sizeof(*r));
            for (size_t j = 0; j < t->nrows; j++)
                r[j] = strdup(json_object_to_json_string_ext(
                    t->obj[j], JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
            raws[nb * SS_SYNC_T__COUNT + rt[k]] = r;
        }
    }
    ss_buf_t bufs[SS_SYNC_MAX_COLS + 1];
    memset(bufs, 0, sizeof(bufs));
    unsigned char *keep = malloc(batch);
    if (baseline)
        baseline_prepare(conn);
    ss_sync_stats_t st;
    memset(&st, 0, sizeof(st));
    int backend = PQbackendPID(conn);
    int64_t cpu0 = proc_cpu_usec(backend);
    int64_t t0 = ss_time_mono_usec();
    for (size_t b = 0; b < nb; b++) {
        size_t cnt = (b + 1) * batch <= n ? batch : n - b * batch;
        if (baseline) {
            baseline_apply(conn, bufs, &rows[b], allm[b], cnt, raws + b * SS_SYNC_T__COUNT, keep);
            continue;
        }
        ss_db_class_t cls =
            ss_sync_apply(&db, "bench", &rows[b], allm[b], 0, cnt, &st, err, sizeof(err));
        if (cls != SS_DB_OK)
            die("apply", err);
    }
    double secs = (double)(ss_time_mono_usec() - t0) / 1e6;
    int64_t cpu1 = proc_cpu_usec(backend);
    printf("events_per_s %.0f\n", (double)n / secs);
    if (cpu0 >= 0 && cpu1 > cpu0)
        printf("backend_cpu_us_per_event %.1f\nevents_per_cpu_s %.0f\n",
               (double)(cpu1 - cpu0) / (double)n, (double)n * 1e6 / (double)(cpu1 - cpu0));
    fprintf(stderr, "%zu events in %.2f s (PostgreSQL only, %s write path, %zu per transaction)\n",
            n, secs,
            baseline ? "baseline (0004)"
            : copy   ? "current, COPY + merge"
                     : "current",
            batch);
    ss_db_conn_free(dbc);
    return 0;
}
