/* PostgreSQL for every service: the connection (connect, reconnect with
 * backoff, session settings, statements prepared per connection) and the
 * classification of errors by SQLSTATE.
 *
 * Errors are codes: functions return an ss_db_err_t beside their errstr, and
 * a failed statement carries its SQLSTATE and class (ss_db_conn_sqlstate,
 * ss_db_conn_class); nobody parses error text.
 *
 * errstr holds libpq's message, which may name the host, port, user and
 * database (never the password): it is for logs only, never for an HTTP body.
 */
#ifndef SS_DB_DB_H
#define SS_DB_DB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

#define SS_DB_DEFAULT_URL "postgresql://localhost:5432/shipstream"

/* What went wrong (0 = nothing). */
typedef enum {
    SS_DB_ERR_NONE = 0,
    SS_DB_ERR_CONFIG,  /* DATABASE_URL or an option is unusable */
    SS_DB_ERR_NOMEM,   /* out of memory */
    SS_DB_ERR_BACKOFF, /* a recent connect failed: not tried again before the backoff ends */
    SS_DB_ERR_CONNECT, /* cannot connect, or the connection was lost */
    SS_DB_ERR_SQL,     /* the server rejected a statement: see its SQLSTATE and class */
} ss_db_err_t;

/* What to do about a failure.
 *
 *   SQLSTATE                                   class        why
 *   (none: no answer, connection lost)         SS_DB_RETRY  the server or network went away
 *   08xxx connection exception                 SS_DB_RETRY
 *   40001 serialization_failure                SS_DB_RETRY  lost a race: run again
 *   40P01 deadlock_detected                    SS_DB_RETRY
 *   40000, 40003 (rollback, completion unknown) SS_DB_RETRY
 *   53xxx insufficient resources               SS_DB_RETRY  disk full, too many connections
 *   55P03 lock_not_available                   SS_DB_RETRY  lock_timeout
 *   57014 query_canceled                       SS_DB_RETRY  statement_timeout, pg_cancel_backend
 *   57P01 admin_shutdown, 57P02 crash_shutdown SS_DB_RETRY  server restarting
 *   57P03 cannot_connect_now, 57P05 idle_session_timeout  SS_DB_RETRY
 *   22xxx data exception                       SS_DB_DATA   the message's values: dead-letter it
 *   23xxx integrity constraint violation       SS_DB_DATA
 *   40002 transaction integrity constraint violation  SS_DB_DATA
 *   54000 program_limit_exceeded               SS_DB_DATA   a value too large (index row size)
 *   everything else (42xxx, 0A000, 25xxx, 26000, 28xxx, 3D000, 57P04, 58xxx, XX000, P0001, ...)
 *                                              SS_DB_FATAL  a bug, the schema, the configuration
 *
 * A caller that retries SS_DB_RETRY should do so after a backoff (and a
 * reconnect when the connection is gone); SS_DB_DATA is the one class a
 * consumer may dead-letter; SS_DB_FATAL is logged as an error (the sync
 * worker still retries it: a missing migration is fixed by deploying it). */
typedef enum {
    SS_DB_OK = 0,
    SS_DB_RETRY,
    SS_DB_DATA,
    SS_DB_FATAL,
} ss_db_class_t;

/* The class of a SQLSTATE (five characters).  NULL or "" means there was no
 * server answer (client-side failure, connection lost): SS_DB_RETRY.  A
 * string that is not five characters is SS_DB_FATAL.  Pure. */
ss_db_class_t ss_db_classify_sqlstate(const char *sqlstate);

/* Classifies a result (never by message text).  A successful result is
 * SS_DB_OK; a NULL result or a connection in CONNECTION_BAD is SS_DB_RETRY;
 * otherwise ss_db_classify_sqlstate of its SQLSTATE. */
ss_db_class_t ss_db_classify(PGconn *conn, const PGresult *res);

/* "retry", "data", "fatal" or "ok" (for logs and metrics labels). */
const char *ss_db_class_name(ss_db_class_t cls);

/* Copies url into out, turning the SQLAlchemy form "postgresql+asyncpg://"
 * (or any "postgresql+driver://") into "postgresql://".  Returns 0, or -1 when
 * out is too small or the scheme is not postgres/postgresql. */
int ss_db_url_normalize(const char *url, char *out, size_t outsize, char *errstr,
                        size_t errstr_size);

/* One connection attempt (connect_timeout seconds, application_name set),
 * for one-shot tools (migrate, benchmarks); services use ss_db_conn_t.
 * Returns a connection in CONNECTION_OK, or NULL with errstr (the failed
 * connection is already PQfinish'ed). */
PGconn *ss_db_connect(const char *url, const char *application_name, int connect_timeout_s,
                      char *errstr, size_t errstr_size);

/* Runs a command without parameters; returns 0 or -1 with errstr
 * ("SQLSTATE: message"). */
int ss_db_exec(PGconn *conn, const char *sql, char *errstr, size_t errstr_size);

/* Writes "SQLSTATE: message" of a failed result (or the connection error). */
void ss_db_error(PGconn *conn, const PGresult *res, char *errstr, size_t errstr_size);

/* ---- the connection ---- */

#define SS_DB_TIMEOUT_NONE (-1LL)

typedef struct {
    const char *url;              /* DATABASE_URL (any form ss_db_url_normalize takes); copied */
    const char *application_name; /* copied; NULL = "shipstream" */
    int connect_timeout_s;        /* <= 0: 5 */
    /* SET statement_timeout on every connection: > 0 that many ms,
     * SS_DB_TIMEOUT_NONE no timeout (even if the server sets one), 0 leaves
     * the server's default. */
    long long statement_timeout_ms;
    /* More session settings, run on every connection after statement_timeout
     * (e.g. "SET TimeZone = 'UTC'"); a failure fails the connect.  Copied. */
    const char *session_sql;
    /* Settings not every server has (e.g. client_connection_check_interval,
     * PostgreSQL >= 14): a failure is logged at debug level and ignored.  Copied. */
    const char *optional_sql;
    const char *listen_channel; /* LISTEN on every connection (NOTIFY consumers); copied */
    int nonblocking;            /* PQsetnonblocking(1) on every connection */
    /* Backoff between failed connect attempts: after a failure,
     * ss_db_conn_ensure answers SS_DB_ERR_BACKOFF at once until the delay has
     * passed.  base_ms 0: no gate (the caller paces its retries). */
    int backoff_base_ms, backoff_max_ms;
    /* Several connections to one server (one per thread) may share one gate:
     * a failed attempt on one holds back the others.  NULL: the connection's
     * own.  Not owned; must outlive the connection. */
    _Atomic int64_t *shared_gate;
} ss_db_conn_opts_t;

typedef struct ss_db_conn ss_db_conn_t;

/* Creates a connection object (not connected yet).  Returns NULL with errstr
 * when the URL is unusable or memory is short. */
ss_db_conn_t *ss_db_conn_new(const ss_db_conn_opts_t *opts, char *errstr, size_t errstr_size);

/* Closes the connection (if any) and frees everything.  NULL is fine. */
void ss_db_conn_free(ss_db_conn_t *c);

/* Registers a statement: prepared (PQprepare, types inferred when nparams is
 * 0) on the current connection at the next ss_db_conn_ensure or first use,
 * and again after every reconnect.  name and sql are copied.  Registering a
 * name again with the same text is a no-op; with another text it is
 * SS_DB_ERR_CONFIG. */
ss_db_err_t ss_db_conn_add_stmt(ss_db_conn_t *c, const char *name, const char *sql, int nparams,
                                char *errstr, size_t errstr_size);

/* Makes the connection usable: connects when there is none or it is not
 * CONNECTION_OK (unless the backoff gate is closed), applies the session
 * settings and LISTEN, then prepares every registered statement not yet
 * prepared on this connection.
 *   SS_DB_ERR_NONE     connected, everything prepared
 *   SS_DB_ERR_BACKOFF  not tried: a recent attempt failed
 *   SS_DB_ERR_CONNECT  the attempt failed (the gate closes for one backoff delay)
 *   SS_DB_ERR_SQL      connected, but a statement could not be prepared (class
 *                      and SQLSTATE recorded; the rest is tried next time)
 *   SS_DB_ERR_CONFIG, SS_DB_ERR_NOMEM
 * Never sleeps; blocks at most connect_timeout_s while connecting. */
ss_db_err_t ss_db_conn_ensure(ss_db_conn_t *c, char *errstr, size_t errstr_size);

/* The libpq connection, or NULL while not connected (or c is NULL).  Valid until the next
 * ss_db_conn_ensure, ss_db_conn_lost or ss_db_conn_free; never PQfinish it. */
PGconn *ss_db_conn_pg(const ss_db_conn_t *c);

/* Closes the connection (the next ensure reconnects at once, without
 * waiting for the gate).  Session state (locks, LISTEN) ends with it. */
void ss_db_conn_lost(ss_db_conn_t *c);

/* Monotonic time (ss_time_mono_usec) before which ensure will not try to
 * connect; 0 when it may try now. */
int64_t ss_db_conn_retry_at(const ss_db_conn_t *c);

/* Connections established so far (the first is 1): per-connection state
 * kept by a caller is stale when this changed. */
uint64_t ss_db_conn_generation(const ss_db_conn_t *c);

/* Records a failed result of a statement run on ss_db_conn_pg(c): its class
 * and SQLSTATE become the connection's last error, errstr gets "SQLSTATE:
 * message".  res is not cleared.  Returns SS_DB_ERR_CONNECT when the
 * connection is gone (then also ss_db_conn_lost), else SS_DB_ERR_SQL. */
ss_db_err_t ss_db_conn_error(ss_db_conn_t *c, const PGresult *res, char *errstr,
                             size_t errstr_size);

/* The last failure of ensure, query or ss_db_conn_error: its class
 * (SS_DB_RETRY for connect failures and the backoff, SS_DB_FATAL for
 * registration errors) and its SQLSTATE ("" when the server did not answer).
 * Both are reset by the next success of ss_db_conn_query/ensure. */
ss_db_class_t ss_db_conn_class(const ss_db_conn_t *c);
const char *ss_db_conn_sqlstate(const ss_db_conn_t *c);

/* Runs one statement with text parameters: a registered statement when name
 * is set (registered now from sql/nparams when it is not, prepared on first
 * use on each connection), else sql unprepared.  Connects when needed; when
 * the connection turns out to be lost (e.g. PostgreSQL restarted), reconnects
 * and runs it once more.  On SS_DB_ERR_NONE *out is the result (caller
 * PQclears; status COMMAND_OK or TUPLES_OK); otherwise *out is NULL, errstr
 * is set and the class/SQLSTATE are recorded. */
ss_db_err_t ss_db_conn_query(ss_db_conn_t *c, const char *name, const char *sql, int nparams,
                             const char *const *params, PGresult **out, char *errstr,
                             size_t errstr_size);

#endif
