/* Applying a batch of mapped messages to PostgreSQL in one transaction.
 *
 * One transaction per call: the event ids go into processed_events (those
 * already there are duplicates and change nothing), every table gets one
 * set-based upsert over binary text[] arrays (INSERT ... SELECT FROM
 * unnest(...) ON CONFLICT ... WHERE the stored version is not newer), the
 * next offset of every partition among the messages goes into kafka_offsets,
 * and NOTIFY shipstream_analytics_dirty is sent when analytics inputs
 * changed.  Statements are prepared once per connection. */
#ifndef SS_SYNC_APPLY_H
#define SS_SYNC_APPLY_H

#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

#include <common/util.h>
#include <db/db.h>
#include <sync/map.h>

/* One consumed message as the apply step sees it. */
typedef struct {
    const char *topic; /* full topic name; borrowed */
    int32_t partition;
    int64_t offset;
    const char *event_id;     /* NULL when poison */
    int poison;               /* dead-lettered: only its offset is recorded */
    int64_t received_at_usec; /* envelope received_at */
    int kind;                 /* ss_topic_t of the envelope */
} ss_sync_msg_t;

typedef struct {
    uint64_t applied[8]; /* per ss_topic_t: messages applied (new event ids) */
    uint64_t duplicates; /* event ids already processed (or twice in the batch) */
    uint64_t stale;      /* versions of top-level objects older than stored */
    int analytics_dirty; /* shipments (refunds included) or addresses changed */
    int64_t newest_received_usec;
} ss_sync_stats_t;

typedef struct {
    ss_db_conn_t *dbc; /* not owned; its statements registered by ss_sync_db_set_conn */
    PGconn *conn;      /* dbc's libpq connection while ss_sync_apply runs */
    ss_buf_t *bufs;    /* one per parameter, reused */
    size_t nbufs;
    unsigned char *keep;
    size_t keep_cap;
    /* 1: each table's rows go by COPY (binary) into a temporary staging table
     * and one INSERT ... SELECT FROM it merges them (same statement otherwise),
     * instead of the unnest of array parameters.  Measured against the arrays
     * by bench/sync (ss-sync-pgbench --copy; issue 15); the worker uses the arrays. */
    int copy;
    PGconn *staged; /* the connection (and its backend) whose staging tables exist */
    int staged_pid;
} ss_sync_db_t;

void ss_sync_db_init(ss_sync_db_t *db);
/* Uses dbc from now on: registers the apply statements with it (libs/db
 * prepares them on every connection, again after each reconnect).  Returns
 * SS_DB_ERR_NONE, or an error with errstr (out of memory). */
ss_db_err_t ss_sync_db_set_conn(ss_sync_db_t *db, ss_db_conn_t *dbc, char *errstr,
                                size_t errstr_size);
void ss_sync_db_free(ss_sync_db_t *db);

/* Applies msgs[lo, hi) (rows tagged with those indices) in one transaction
 * and records kafka_offsets for group (connecting and preparing first when
 * needed).  Returns SS_DB_OK and fills st (counters added to), or the class
 * of the failure with errstr ("SQLSTATE: message", for logs); the SQLSTATE
 * itself is ss_db_conn_sqlstate(db->dbc).  The transaction is rolled back and
 * nothing counted. */
ss_db_class_t ss_sync_apply(ss_sync_db_t *db, const char *group, const ss_sync_rows_t *rows,
                            const ss_sync_msg_t *msgs, size_t lo, size_t hi, ss_sync_stats_t *st,
                            char *errstr, size_t errstr_size);

/* Reads kafka_offsets for group: for each (topic, partition) of the list
 * sets *offsets[i] to the next offset, or -1 when none is recorded.
 * Returns 0, or -1 with errstr. */
int ss_sync_load_offsets(PGconn *conn, const char *group, const char *const *topics,
                         const int32_t *partitions, int64_t *offsets, size_t n, char *errstr,
                         size_t errstr_size);

/* The SQL of one table's statement, built once (thread-safe) from its
 * columns (sync/columns.h, ss_sync_sql_build); NULL for an unknown table or
 * when building ran out of memory.  Static: do not free. */
const char *ss_sync_table_sql(ss_sync_table_id_t t);

/* Encodes column col of rows idx[0..n) of table t as a binary text[]
 * array (PostgreSQL's array_send format) into b (reset first), or as a
 * binary timestamptz[] for a column ss_sync_col_binary_ts picks.  Returns 0,
 * -1 on out of memory, -2 when a timestamp cell is not one. */
int ss_sync_encode_column(ss_buf_t *b, const ss_sync_rows_t *rows, ss_sync_table_id_t t,
                          const size_t *idx, size_t n, int col);

#endif
