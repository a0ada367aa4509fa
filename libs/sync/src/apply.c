/* One transaction per batch (see sync/apply.h). */
#include <sync/apply.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <common/sstime.h>
#include <envelope/envelope.h>

#define TEXTOID        25
#define TIMESTAMPTZOID 1184
/* PostgreSQL's timestamps count microseconds from 2000-01-01 00:00:00 UTC. */
#define PG_EPOCH_USEC  946684800000000LL

static const char SQL_PROCESSED[] =
    "INSERT INTO processed_events (event_id) SELECT unnest($1::text[])"
    " ON CONFLICT DO NOTHING RETURNING event_id";

/* Offsets never move backwards: a worker that lost its partitions without
 * knowing it cannot undo its successor's progress. */
static const char SQL_OFFSETS[] =
    "INSERT INTO kafka_offsets AS k (consumer_group, topic, partition, next_offset, updated_at)"
    " SELECT $1, t, p::integer, o::bigint, now()"
    " FROM unnest($2::text[], $3::text[], $4::text[]) AS u(t, p, o)"
    " ON CONFLICT (consumer_group, topic, partition) DO UPDATE"
    " SET next_offset = excluded.next_offset, updated_at = now()"
    " WHERE k.next_offset < excluded.next_offset";

static const char SQL_LOAD_OFFSETS[] =
    "SELECT u.i, k.next_offset FROM unnest($2::text[], $3::integer[]) WITH ORDINALITY"
    " AS u(t, p, i) JOIN kafka_offsets k ON k.consumer_group = $1 AND k.topic = u.t"
    " AND k.partition = u.p";

/* Statement order inside the transaction: parents before children.  The
 * statements themselves are built from the tables' columns (sync/columns.h). */
static const ss_sync_table_id_t tables[] = {
    SS_SYNC_T_ADDRESSES,      SS_SYNC_T_PARCELS,         SS_SYNC_T_SHIPMENTS,
    SS_SYNC_T_RATES,          SS_SYNC_T_TRACKERS,        SS_SYNC_T_TRACKING_EVENTS,
    SS_SYNC_T_SHIPMENT_TRACK, SS_SYNC_T_BATCHES,         SS_SYNC_T_SHIPMENT_BATCH,
    SS_SYNC_T_REFUNDS,        SS_SYNC_T_SHIPMENT_REFUND, SS_SYNC_T_PICKUPS,
    SS_SYNC_T_SCAN_FORMS,     SS_SYNC_T_INSURANCES,      SS_SYNC_T_OBJECTS,
    SS_SYNC_T_EVENTS,
};
#define NTABLES (sizeof(tables) / sizeof(tables[0]))

static pthread_once_t sql_once = PTHREAD_ONCE_INIT;
static ss_buf_t sql[SS_SYNC_T__COUNT]; /* built once, kept for the process' life */
static int sql_ok;

static void sql_build_all(void) {
    sql_ok = 1;
    for (int t = 0; t < SS_SYNC_T__COUNT; t++)
        if (ss_sync_sql_build(ss_sync_table_desc((ss_sync_table_id_t)t), &sql[t]) < 0)
            sql_ok = 0;
}

const char *ss_sync_table_sql(ss_sync_table_id_t t) {
    if ((int)t < 0 || t >= SS_SYNC_T__COUNT)
        return NULL;
    pthread_once(&sql_once, sql_build_all);
    return sql_ok ? sql[t].data : NULL;
}

void ss_sync_db_init(ss_sync_db_t *db) {
    memset(db, 0, sizeof(*db));
}

/* The statements besides the tables' upserts. */
static const struct {
    const char *name, *sql;
} extra[] = {{"ss_sync_processed", SQL_PROCESSED}, {"ss_sync_offsets", SQL_OFFSETS}};

ss_db_err_t ss_sync_db_set_conn(ss_sync_db_t *db, ss_db_conn_t *dbc, char *errstr,
                                size_t errstr_size) {
    db->dbc = dbc;
    db->conn = NULL;
    for (size_t i = 0; i < NTABLES + sizeof(extra) / sizeof(extra[0]); i++) {
        const char *name =
            i < NTABLES ? ss_sync_table_desc(tables[i])->stmt : extra[i - NTABLES].name;
        const char *sql = i < NTABLES ? ss_sync_table_sql(tables[i]) : extra[i - NTABLES].sql;
        if (!sql) {
            snprintf(errstr, errstr_size, "out of memory");
            return SS_DB_ERR_NOMEM;
        }
        ss_db_err_t e = ss_db_conn_add_stmt(dbc, name, sql, 0, errstr, errstr_size);
        if (e != SS_DB_ERR_NONE)
            return e;
    }
    return SS_DB_ERR_NONE;
}

void ss_sync_db_free(ss_sync_db_t *db) {
    for (size_t i = 0; i < db->nbufs; i++)
        ss_buf_free(&db->bufs[i]);
    free(db->bufs);
    free(db->keep);
    memset(db, 0, sizeof(*db));
}

static int need_bufs(ss_sync_db_t *db, size_t n) {
    if (db->nbufs >= n)
        return 0;
    ss_buf_t *b = realloc(db->bufs, n * sizeof(*b));
    if (!b)
        return -1;
    memset(b + db->nbufs, 0, (n - db->nbufs) * sizeof(*b));
    db->bufs = b;
    db->nbufs = n;
    return 0;
}

static int put32(ss_buf_t *b, int32_t v) {
    uint32_t n = htonl((uint32_t)v);
    return ss_buf_append(b, &n, 4);
}

/* array_send header for a one-dimensional array of n elements of type oid. */
static int array_header_of(ss_buf_t *b, size_t n, int has_null, int32_t oid) {
    ss_buf_reset(b);
    return put32(b, 1) | put32(b, has_null) | put32(b, oid) | put32(b, (int32_t)n) | put32(b, 1);
}

static int array_header(ss_buf_t *b, size_t n, int has_null) {
    return array_header_of(b, n, has_null, TEXTOID);
}

static int array_elem(ss_buf_t *b, const char *s) {
    if (!s)
        return put32(b, -1);
    size_t len = strlen(s);
    return put32(b, (int32_t)len) | ss_buf_append(b, s, len);
}

int ss_sync_encode_column(ss_buf_t *b, const ss_sync_rows_t *rows, ss_sync_table_id_t t,
                          const size_t *idx, size_t n, int col) {
    int has_null = 0;
    for (size_t i = 0; i < n && !has_null; i++)
        has_null = ss_sync_cell(rows, t, idx[i], col) == NULL;
    const ss_sync_table_desc_t *d = ss_sync_table_desc(t);
    if (d && col >= 0 && col < d->ncols && ss_sync_col_binary_ts(&d->cols[col])) {
        /* timestamptz_send: int64 microseconds since 2000-01-01 UTC, big endian */
        int rc = array_header_of(b, n, has_null, TIMESTAMPTZOID);
        for (size_t i = 0; i < n; i++) {
            const char *s = ss_sync_cell(rows, t, idx[i], col);
            int64_t usec;
            if (!s) {
                rc |= put32(b, -1);
                continue;
            }
            if (ss_time_parse(s, &usec) < 0)
                return -2; /* the mapper only stores valid timestamps */
            uint64_t v = (uint64_t)(usec - PG_EPOCH_USEC);
            rc |= put32(b, 8) | put32(b, (int32_t)(uint32_t)(v >> 32)) |
                  put32(b, (int32_t)(uint32_t)v);
        }
        return rc ? -1 : 0;
    }
    int rc = array_header(b, n, has_null);
    for (size_t i = 0; i < n; i++)
        rc |= array_elem(b, ss_sync_cell(rows, t, idx[i], col));
    return rc ? -1 : 0;
}

/* Runs a prepared statement with the first n bufs as binary parameters. */
static PGresult *exec_bufs(ss_sync_db_t *db, const char *name, size_t n) {
    const char *values[SS_SYNC_MAX_COLS];
    int lengths[SS_SYNC_MAX_COLS], formats[SS_SYNC_MAX_COLS];
    for (size_t i = 0; i < n; i++) {
        values[i] = db->bufs[i].data;
        lengths[i] = (int)db->bufs[i].len;
        formats[i] = 1;
    }
    return PQexecPrepared(db->conn, name, (int)n, values, lengths, formats, 0);
}

/* "ss_stage_<table statement>" / "ss_sync_c_<...>": the staging table of t and its merge. */
static void stage_names(ss_sync_table_id_t t, char *stage, char *stmt, size_t size) {
    const char *s = ss_sync_table_desc(t)->stmt + strlen("ss_sync_");
    snprintf(stage, size, "ss_stage_%s", s);
    snprintf(stmt, size, "ss_sync_c_%s", s);
}

/* --copy: the staging tables and their merge statements, once per connection (outside
 * the batch's transaction, so that a rollback keeps them). */
static int stage_prepare(ss_sync_db_t *db, PGresult **failed, char *errstr, size_t errstr_size) {
    *failed = NULL;
    int pid = PQbackendPID(db->conn);
    if (db->staged == db->conn && db->staged_pid == pid)
        return 0;
    ss_buf_t sqlb = {0};
    for (size_t ti = 0; ti < NTABLES; ti++) {
        char stage[64], stmt[64];
        const ss_sync_table_desc_t *d = ss_sync_table_desc(tables[ti]);
        stage_names(tables[ti], stage, stmt, sizeof(stage));
        PGresult *res = NULL;
        if (ss_sync_stage_create_sql(d, stage, &sqlb) < 0)
            goto oom;
        res = PQexec(db->conn, sqlb.data);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            goto failed;
        PQclear(res);
        if (ss_sync_sql_build_stage(d, stage, &sqlb) < 0)
            goto oom;
        res = PQprepare(db->conn, stmt, sqlb.data, 0, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            goto failed;
        PQclear(res);
        continue;
    failed:
        *failed = res;
        ss_buf_free(&sqlb);
        return -1;
    }
    ss_buf_free(&sqlb);
    db->staged = db->conn;
    db->staged_pid = pid;
    return 0;
oom:
    ss_buf_free(&sqlb);
    snprintf(errstr, errstr_size, "out of memory");
    return -1;
}

static int put16(ss_buf_t *b, int16_t v) {
    uint16_t n = htons((uint16_t)v);
    return ss_buf_append(b, &n, 2);
}

/* COPY ... (FORMAT binary) data of rows idx[0..n) of t into b. */
static int copy_encode(ss_buf_t *b, const ss_sync_rows_t *rows, ss_sync_table_id_t t,
                       const size_t *idx, size_t n) {
    const ss_sync_table_desc_t *d = ss_sync_table_desc(t);
    ss_buf_reset(b);
    int rc = ss_buf_append(b, "PGCOPY\n\377\r\n\0", 11) | put32(b, 0) | put32(b, 0);
    for (size_t i = 0; i < n && !rc; i++) {
        rc |= put16(b, (int16_t)d->ncols);
        for (int c = 0; c < d->ncols; c++) {
            const char *s = ss_sync_cell(rows, t, idx[i], c);
            if (!s) {
                rc |= put32(b, -1);
            } else if (ss_sync_col_binary_ts(&d->cols[c])) {
                int64_t usec;
                if (ss_time_parse(s, &usec) < 0)
                    return -2;
                uint64_t v = (uint64_t)(usec - PG_EPOCH_USEC);
                rc |= put32(b, 8) | put32(b, (int32_t)(uint32_t)(v >> 32)) |
                      put32(b, (int32_t)(uint32_t)v);
            } else {
                size_t len = strlen(s);
                rc |= put32(b, (int32_t)len) | ss_buf_append(b, s, len);
            }
        }
    }
    rc |= put16(b, -1);
    return rc ? -1 : 0;
}

/* Sends b as the data of COPY stage FROM STDIN (FORMAT binary); NULL res on success. */
static PGresult *copy_in(ss_sync_db_t *db, const char *stage, const ss_buf_t *b) {
    char sqlc[128];
    snprintf(sqlc, sizeof(sqlc), "COPY %s FROM STDIN (FORMAT binary)", stage);
    PGresult *res = PQexec(db->conn, sqlc);
    if (PQresultStatus(res) != PGRES_COPY_IN)
        return res;
    PQclear(res);
    if (PQputCopyData(db->conn, b->data, (int)b->len) != 1 || PQputCopyEnd(db->conn, NULL) != 1)
        return PQgetResult(db->conn);
    res = PQgetResult(db->conn);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return res;
    PQclear(res);
    for (PGresult *r; (r = PQgetResult(db->conn));)
        PQclear(r);
    return NULL;
}

static ss_db_class_t fail(ss_sync_db_t *db, PGresult *res, char *errstr, size_t errstr_size) {
    /* records the class and SQLSTATE in dbc; closes it when the connection is gone */
    ss_db_conn_error(db->dbc, res, errstr, errstr_size);
    ss_db_class_t cls = ss_db_conn_class(db->dbc);
    PQclear(res);
    db->conn = ss_db_conn_pg(db->dbc);
    if (db->conn && PQstatus(db->conn) == CONNECTION_OK) {
        PGresult *r = PQexec(db->conn, "ROLLBACK");
        PQclear(r);
    }
    return cls;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

ss_db_class_t ss_sync_apply(ss_sync_db_t *db, const char *group, const ss_sync_rows_t *rows,
                            const ss_sync_msg_t *msgs, size_t lo, size_t hi, ss_sync_stats_t *st,
                            char *errstr, size_t errstr_size) {
    PGresult *res = NULL;
    const char **ids = NULL;
    unsigned char *claimed = NULL;
    size_t *idx = NULL;
    ss_sync_stats_t local;
    memset(&local, 0, sizeof(local));
    ss_db_class_t cls = SS_DB_FATAL;

    /* Connected, every statement prepared on this connection. */
    if (ss_db_conn_ensure(db->dbc, errstr, errstr_size) != SS_DB_ERR_NONE)
        return ss_db_conn_class(db->dbc);
    db->conn = ss_db_conn_pg(db->dbc);
    if (need_bufs(db, SS_SYNC_MAX_COLS) < 0) {
        snprintf(errstr, errstr_size, "out of memory");
        return SS_DB_FATAL;
    }
    if (db->keep_cap < hi + 1) {
        unsigned char *k = realloc(db->keep, hi + 1);
        if (!k) {
            snprintf(errstr, errstr_size, "out of memory");
            return SS_DB_FATAL;
        }
        db->keep = k;
        db->keep_cap = hi + 1;
    }
    memset(db->keep, 0, db->keep_cap);

    if (db->copy && stage_prepare(db, &res, errstr, errstr_size) < 0)
        return res ? fail(db, res, errstr, errstr_size) : SS_DB_FATAL;
    res = PQexec(db->conn, "BEGIN");
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return fail(db, res, errstr, errstr_size);
    PQclear(res);

    /* 1. Event ids: which are new. */
    size_t nids = 0;
    for (size_t i = lo; i < hi; i++)
        nids += !msgs[i].poison && msgs[i].event_id;
    int rc = array_header(&db->bufs[0], nids, 0);
    for (size_t i = lo; i < hi; i++)
        if (!msgs[i].poison && msgs[i].event_id)
            rc |= array_elem(&db->bufs[0], msgs[i].event_id);
    if (rc) {
        snprintf(errstr, errstr_size, "out of memory");
        goto oom;
    }
    if (nids > 0) {
        res = exec_bufs(db, "ss_sync_processed", 1);
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            return fail(db, res, errstr, errstr_size);
        size_t nnew = (size_t)PQntuples(res);
        ids = malloc((nnew ? nnew : 1) * sizeof(*ids));
        claimed = calloc(nnew ? nnew : 1, 1);
        if (!ids || !claimed) {
            PQclear(res);
            res = NULL;
            snprintf(errstr, errstr_size, "out of memory");
            goto oom;
        }
        for (size_t i = 0; i < nnew; i++)
            ids[i] = PQgetvalue(res, (int)i, 0);
        qsort(ids, nnew, sizeof(*ids), cmp_str);
        for (size_t i = lo; i < hi; i++) {
            if (msgs[i].poison || !msgs[i].event_id)
                continue;
            const char **hit = bsearch(&msgs[i].event_id, ids, nnew, sizeof(*ids), cmp_str);
            if (hit && !claimed[hit - ids]) {
                claimed[hit - ids] = 1;
                db->keep[i] = 1;
                local.applied[msgs[i].kind & 7]++;
                if (msgs[i].received_at_usec > local.newest_received_usec)
                    local.newest_received_usec = msgs[i].received_at_usec;
            } else {
                local.duplicates++;
            }
        }
        /* res keeps the ids alive until here */
        PQclear(res);
        res = NULL;
        free(ids);
        ids = NULL;
        free(claimed);
        claimed = NULL;
    }

    /* 2. One statement per table. */
    for (size_t ti = 0; ti < NTABLES; ti++) {
        ss_sync_table_id_t t = tables[ti];
        size_t superseded = 0;
        long n = ss_sync_reduce(rows, t, db->keep, &idx, &superseded);
        if (n < 0) {
            snprintf(errstr, errstr_size, "out of memory");
            goto oom;
        }
        int top = t == SS_SYNC_T_SHIPMENTS || t == SS_SYNC_T_TRACKERS || t == SS_SYNC_T_BATCHES ||
                  t == SS_SYNC_T_REFUNDS || t == SS_SYNC_T_PICKUPS || t == SS_SYNC_T_SCAN_FORMS ||
                  t == SS_SYNC_T_INSURANCES || t == SS_SYNC_T_OBJECTS;
        if (top)
            local.stale += superseded;
        if (n == 0) {
            free(idx);
            idx = NULL;
            continue;
        }
        int ncols = ss_sync_table_ncols(t);
        if (db->copy) {
            char stage[64], stmt[64];
            stage_names(t, stage, stmt, sizeof(stage));
            if ((rc = copy_encode(&db->bufs[0], rows, t, idx, (size_t)n)) < 0) {
                snprintf(errstr, errstr_size, "%s",
                         rc == -2 ? "a timestamp cell is not a timestamp" : "out of memory");
                goto oom;
            }
            free(idx);
            idx = NULL;
            if ((res = copy_in(db, stage, &db->bufs[0])) != NULL)
                return fail(db, res, errstr, errstr_size);
            res = PQexecPrepared(db->conn, stmt, 0, NULL, NULL, NULL, 0);
        } else {
            for (int c = 0; c < ncols; c++)
                if ((rc = ss_sync_encode_column(&db->bufs[c], rows, t, idx, (size_t)n, c)) < 0) {
                    snprintf(errstr, errstr_size, "%s",
                             rc == -2 ? "a timestamp cell is not a timestamp" : "out of memory");
                    goto oom;
                }
            free(idx);
            idx = NULL;
            res = exec_bufs(db, ss_sync_table_desc(t)->stmt, (size_t)ncols);
        }
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            return fail(db, res, errstr, errstr_size);
        long affected = atol(PQcmdTuples(res));
        PQclear(res);
        res = NULL;
        if (top && affected < n)
            local.stale += (uint64_t)(n - affected);
        if (affected > 0 && (t == SS_SYNC_T_SHIPMENTS || t == SS_SYNC_T_SHIPMENT_TRACK ||
                             t == SS_SYNC_T_SHIPMENT_REFUND || t == SS_SYNC_T_ADDRESSES))
            local.analytics_dirty = 1;
    }

    /* 3. Next offset of every partition among the messages (they are in
     * consumption order, so the last one of a partition is its highest). */
    {
        struct part {
            const char *topic;
            int32_t partition;
            int64_t next;
        } parts[256];
        size_t nparts = 0;
        for (size_t i = lo; i < hi; i++) {
            size_t j;
            for (j = 0; j < nparts; j++)
                if (parts[j].partition == msgs[i].partition &&
                    (parts[j].topic == msgs[i].topic || strcmp(parts[j].topic, msgs[i].topic) == 0))
                    break;
            if (j == nparts) {
                if (nparts == sizeof(parts) / sizeof(parts[0])) {
                    snprintf(errstr, errstr_size, "too many partitions in one batch");
                    goto oom;
                }
                parts[nparts].topic = msgs[i].topic;
                parts[nparts].partition = msgs[i].partition;
                parts[nparts].next = 0;
                nparts++;
            }
            if (msgs[i].offset + 1 > parts[j].next)
                parts[j].next = msgs[i].offset + 1;
        }
        rc = array_header(&db->bufs[1], nparts, 0) | array_header(&db->bufs[2], nparts, 0) |
             array_header(&db->bufs[3], nparts, 0);
        for (size_t j = 0; j < nparts; j++) {
            char p[16], o[24];
            snprintf(p, sizeof(p), "%d", (int)parts[j].partition);
            snprintf(o, sizeof(o), "%lld", (long long)parts[j].next);
            rc |= array_elem(&db->bufs[1], parts[j].topic) | array_elem(&db->bufs[2], p) |
                  array_elem(&db->bufs[3], o);
        }
        ss_buf_reset(&db->bufs[0]);
        rc |= ss_buf_append(&db->bufs[0], group, strlen(group));
        if (rc) {
            snprintf(errstr, errstr_size, "out of memory");
            goto oom;
        }
        /* $1 is text: send it in text format (binary text is the same bytes). */
        res = exec_bufs(db, "ss_sync_offsets", 4);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            return fail(db, res, errstr, errstr_size);
        PQclear(res);
        res = NULL;
    }

    if (local.analytics_dirty) {
        res = PQexec(db->conn, "NOTIFY shipstream_analytics_dirty");
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            return fail(db, res, errstr, errstr_size);
        PQclear(res);
    }
    res = PQexec(db->conn, "COMMIT");
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return fail(db, res, errstr, errstr_size);
    PQclear(res);

    for (int i = 0; i < 8; i++)
        st->applied[i] += local.applied[i];
    st->duplicates += local.duplicates;
    st->stale += local.stale;
    st->analytics_dirty |= local.analytics_dirty;
    if (local.newest_received_usec > st->newest_received_usec)
        st->newest_received_usec = local.newest_received_usec;
    return SS_DB_OK;

oom:
    free(ids);
    free(claimed);
    free(idx);
    PQclear(res);
    res = PQexec(db->conn, "ROLLBACK");
    PQclear(res);
    cls = SS_DB_FATAL;
    return cls;
}

int ss_sync_load_offsets(PGconn *conn, const char *group, const char *const *topics,
                         const int32_t *partitions, int64_t *offsets, size_t n, char *errstr,
                         size_t errstr_size) {
    ss_buf_t t = {0}, p = {0};
    int rc = -1;
    int e = array_header(&t, n, 0);
    /* integer[] in text form is simplest for the partitions */
    e |= ss_buf_append(&p, "{", 1);
    for (size_t i = 0; i < n; i++) {
        e |= array_elem(&t, topics[i]);
        e |= ss_buf_appendf(&p, "%s%d", i ? "," : "", (int)partitions[i]);
        offsets[i] = -1;
    }
    e |= ss_buf_append(&p, "}", 1);
    if (e) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }
    const char *values[3] = {group, t.data, p.data};
    int lengths[3] = {(int)strlen(group), (int)t.len, (int)p.len};
    int formats[3] = {0, 1, 0};
    PGresult *res = PQexecParams(conn, SQL_LOAD_OFFSETS, 3, NULL, values, lengths, formats, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ss_db_error(conn, res, errstr, errstr_size);
        PQclear(res);
        goto done;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        long long i = atoll(PQgetvalue(res, r, 0));
        if (i >= 1 && (size_t)i <= n)
            offsets[i - 1] = atoll(PQgetvalue(res, r, 1));
    }
    PQclear(res);
    rc = 0;
done:
    ss_buf_free(&t);
    ss_buf_free(&p);
    return rc;
}
