#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/backoff.h"
#include "common/log.h"
#include "common/sstime.h"

/* ---- SQLSTATE classification ---- */

ss_db_class_t ss_db_classify_sqlstate(const char *s) {
    if (!s || !*s)
        return SS_DB_RETRY; /* no answer from the server */
    if (strlen(s) != 5)
        return SS_DB_FATAL;
    static const char *const retry_exact[] = {"40000", "40001", "40003", "40P01", "55P03",
                                              "57014", "57P01", "57P02", "57P03", "57P05"};
    static const char *const data_exact[] = {"40002", "54000"};
    for (size_t i = 0; i < sizeof retry_exact / sizeof retry_exact[0]; i++)
        if (strcmp(s, retry_exact[i]) == 0)
            return SS_DB_RETRY;
    for (size_t i = 0; i < sizeof data_exact / sizeof data_exact[0]; i++)
        if (strcmp(s, data_exact[i]) == 0)
            return SS_DB_DATA;
    if (strncmp(s, "08", 2) == 0 || strncmp(s, "53", 2) == 0)
        return SS_DB_RETRY;
    if (strncmp(s, "22", 2) == 0 || strncmp(s, "23", 2) == 0)
        return SS_DB_DATA;
    return SS_DB_FATAL;
}

static int result_ok(const PGresult *res) {
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_SINGLE_TUPLE ||
           st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_EMPTY_QUERY
#ifdef LIBPQ_HAS_PIPELINING
           || st == PGRES_PIPELINE_SYNC
#endif
        ;
}

ss_db_class_t ss_db_classify(PGconn *conn, const PGresult *res) {
    if (!res)
        return SS_DB_RETRY;
    if (result_ok(res))
        return SS_DB_OK;
    if (conn && PQstatus(conn) == CONNECTION_BAD)
        return SS_DB_RETRY;
    return ss_db_classify_sqlstate(PQresultErrorField(res, PG_DIAG_SQLSTATE));
}

const char *ss_db_class_name(ss_db_class_t cls) {
    switch (cls) {
    case SS_DB_OK: return "ok";
    case SS_DB_RETRY: return "retry";
    case SS_DB_DATA: return "data";
    case SS_DB_FATAL: break;
    }
    return "fatal";
}

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

/* ---- the connection ---- */

typedef struct {
    char *name, *sql;
    int nparams;
    uint64_t prepared_gen; /* generation it was prepared on; 0 = never */
} stmt_t;

struct ss_db_conn {
    char *url, *appname, *session_sql, *optional_sql, *listen_sql;
    int connect_timeout_s;
    long long statement_timeout_ms;
    int nonblocking;
    int gated;
    ss_backoff_t backoff;
    _Atomic int64_t own_gate;
    _Atomic int64_t *gate; /* &own_gate or the shared one */
    PGconn *pg;
    uint64_t generation;
    stmt_t *stmts;
    size_t nstmts, stmts_cap;
    ss_db_class_t last_cls;
    char last_sqlstate[6];
};

static void set_err(char *errstr, size_t errstr_size, const char *msg) {
    if (errstr && errstr_size)
        snprintf(errstr, errstr_size, "%s", msg);
}

static char *dup_opt(const char *s, int *oom) {
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

ss_db_conn_t *ss_db_conn_new(const ss_db_conn_opts_t *o, char *errstr, size_t errstr_size) {
    char norm[2048];
    if (ss_db_url_normalize(o->url, norm, sizeof norm, errstr, errstr_size) != 0)
        return NULL;
    ss_db_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        set_err(errstr, errstr_size, "out of memory");
        return NULL;
    }
    int oom = 0;
    c->url = dup_opt(norm, &oom);
    c->appname = dup_opt(o->application_name ? o->application_name : "shipstream", &oom);
    c->session_sql = dup_opt(o->session_sql, &oom);
    c->optional_sql = dup_opt(o->optional_sql, &oom);
    if (o->listen_channel) {
        /* a quoted identifier: LISTEN "name" */
        size_t n = strlen(o->listen_channel);
        c->listen_sql = malloc(n * 2 + 16);
        if (c->listen_sql) {
            char *p = c->listen_sql + sprintf(c->listen_sql, "LISTEN \"");
            for (const char *q = o->listen_channel; *q; q++) {
                if (*q == '"')
                    *p++ = '"';
                *p++ = *q;
            }
            strcpy(p, "\"");
        } else {
            oom = 1;
        }
    }
    if (oom) {
        ss_db_conn_free(c);
        set_err(errstr, errstr_size, "out of memory");
        return NULL;
    }
    c->connect_timeout_s = o->connect_timeout_s > 0 ? o->connect_timeout_s : 5;
    c->statement_timeout_ms = o->statement_timeout_ms;
    c->nonblocking = o->nonblocking;
    c->gated = o->backoff_base_ms > 0;
    c->backoff.base_ms = o->backoff_base_ms;
    c->backoff.max_ms = o->backoff_max_ms;
    atomic_init(&c->own_gate, 0);
    c->gate = o->shared_gate ? o->shared_gate : &c->own_gate;
    return c;
}

void ss_db_conn_free(ss_db_conn_t *c) {
    if (!c)
        return;
    ss_db_conn_lost(c);
    for (size_t i = 0; i < c->nstmts; i++) {
        free(c->stmts[i].name);
        free(c->stmts[i].sql);
    }
    free(c->stmts);
    free(c->url);
    free(c->appname);
    free(c->session_sql);
    free(c->optional_sql);
    free(c->listen_sql);
    free(c);
}

static stmt_t *stmt_find(ss_db_conn_t *c, const char *name) {
    for (size_t i = 0; i < c->nstmts; i++)
        if (strcmp(c->stmts[i].name, name) == 0)
            return &c->stmts[i];
    return NULL;
}

/* Finds or registers; NULL with errstr and *err set. */
static stmt_t *stmt_add(ss_db_conn_t *c, const char *name, const char *sql, int nparams,
                        ss_db_err_t *err, char *errstr, size_t errstr_size) {
    stmt_t *s = stmt_find(c, name);
    if (s) {
        if (strcmp(s->sql, sql) == 0)
            return s;
        *err = SS_DB_ERR_CONFIG;
        if (errstr && errstr_size)
            snprintf(errstr, errstr_size, "statement %s registered twice with different SQL", name);
        return NULL;
    }
    if (c->nstmts == c->stmts_cap) {
        size_t cap = c->stmts_cap ? c->stmts_cap * 2 : 16;
        stmt_t *n = realloc(c->stmts, cap * sizeof *n);
        if (!n)
            goto oom;
        c->stmts = n;
        c->stmts_cap = cap;
    }
    s = &c->stmts[c->nstmts];
    s->name = strdup(name);
    s->sql = strdup(sql);
    s->nparams = nparams;
    s->prepared_gen = 0;
    if (!s->name || !s->sql) {
        free(s->name);
        free(s->sql);
        goto oom;
    }
    c->nstmts++;
    return s;
oom:
    *err = SS_DB_ERR_NOMEM;
    set_err(errstr, errstr_size, "out of memory");
    return NULL;
}

ss_db_err_t ss_db_conn_add_stmt(ss_db_conn_t *c, const char *name, const char *sql, int nparams,
                                char *errstr, size_t errstr_size) {
    ss_db_err_t err = SS_DB_ERR_NONE;
    return stmt_add(c, name, sql, nparams, &err, errstr, errstr_size) ? SS_DB_ERR_NONE : err;
}

PGconn *ss_db_conn_pg(const ss_db_conn_t *c) {
    return c ? c->pg : NULL;
}

void ss_db_conn_lost(ss_db_conn_t *c) {
    if (c && c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
}

int64_t ss_db_conn_retry_at(const ss_db_conn_t *c) {
    if (!c->gated)
        return 0;
    int64_t at = atomic_load(c->gate);
    return at > ss_time_mono_usec() ? at : 0;
}

uint64_t ss_db_conn_generation(const ss_db_conn_t *c) {
    return c->generation;
}

ss_db_class_t ss_db_conn_class(const ss_db_conn_t *c) {
    return c->last_cls;
}

const char *ss_db_conn_sqlstate(const ss_db_conn_t *c) {
    return c->last_sqlstate;
}

static void note(ss_db_conn_t *c, ss_db_class_t cls, const char *sqlstate) {
    c->last_cls = cls;
    snprintf(c->last_sqlstate, sizeof c->last_sqlstate, "%s", sqlstate ? sqlstate : "");
}

ss_db_err_t ss_db_conn_error(ss_db_conn_t *c, const PGresult *res, char *errstr,
                             size_t errstr_size) {
    ss_db_class_t cls = ss_db_classify(c->pg, res);
    if (cls == SS_DB_OK)
        cls = SS_DB_FATAL; /* called for a result the caller did not expect */
    note(c, cls, res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL);
    if (errstr && errstr_size)
        ss_db_error(c->pg, res, errstr, errstr_size);
    if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
        ss_db_conn_lost(c);
        return SS_DB_ERR_CONNECT;
    }
    return SS_DB_ERR_SQL;
}

/* Runs a session statement; on failure records it and returns the error. */
static ss_db_err_t session_exec(ss_db_conn_t *c, const char *sql, char *errstr,
                                size_t errstr_size) {
    PGresult *r = PQexec(c->pg, sql);
    ss_db_err_t e = SS_DB_ERR_NONE;
    if (!r || !result_ok(r))
        e = ss_db_conn_error(c, r, errstr, errstr_size);
    PQclear(r);
    return e;
}

static ss_db_err_t connect_failed(ss_db_conn_t *c) {
    ss_db_conn_lost(c);
    note(c, SS_DB_RETRY, NULL);
    if (c->gated)
        atomic_store(c->gate, ss_time_mono_usec() + (int64_t)ss_backoff_next(&c->backoff) * 1000);
    return SS_DB_ERR_CONNECT;
}

/* Connects when needed; nothing is prepared here. */
static ss_db_err_t ensure_connected(ss_db_conn_t *c, char *errstr, size_t errstr_size) {
    if (c->pg && PQstatus(c->pg) == CONNECTION_OK)
        return SS_DB_ERR_NONE;
    ss_db_conn_lost(c);
    int64_t at = ss_db_conn_retry_at(c);
    if (at) {
        note(c, SS_DB_RETRY, NULL);
        if (errstr && errstr_size)
            snprintf(errstr, errstr_size, "postgresql unavailable (next attempt in %lld ms)",
                     (long long)((at - ss_time_mono_usec()) / 1000 + 1));
        return SS_DB_ERR_BACKOFF;
    }
    c->pg = ss_db_connect(c->url, c->appname, c->connect_timeout_s, errstr, errstr_size);
    if (!c->pg)
        return connect_failed(c);
    if (c->statement_timeout_ms != 0) {
        char sql[64];
        snprintf(sql, sizeof sql, "SET statement_timeout = %lld",
                 c->statement_timeout_ms > 0 ? c->statement_timeout_ms : 0);
        if (session_exec(c, sql, errstr, errstr_size) != SS_DB_ERR_NONE)
            return connect_failed(c);
    }
    if (c->session_sql && session_exec(c, c->session_sql, errstr, errstr_size) != SS_DB_ERR_NONE)
        return connect_failed(c);
    if (c->optional_sql) {
        char err[256];
        if (session_exec(c, c->optional_sql, err, sizeof err) != SS_DB_ERR_NONE) {
            if (!c->pg)
                return connect_failed(c);
            SS_DEBUG("optional session setting not applied (%s): %s", c->optional_sql, err);
        }
    }
    if (c->listen_sql && session_exec(c, c->listen_sql, errstr, errstr_size) != SS_DB_ERR_NONE)
        return connect_failed(c);
    if (c->nonblocking && PQsetnonblocking(c->pg, 1) != 0)
        ss_log(SS_LOG_WARN, "postgresql: cannot set the connection non-blocking");
    c->generation++;
    ss_backoff_reset(&c->backoff);
    if (c->gated)
        atomic_store(c->gate, 0);
    note(c, SS_DB_OK, NULL);
    return SS_DB_ERR_NONE;
}

static ss_db_err_t prepare(ss_db_conn_t *c, stmt_t *s, char *errstr, size_t errstr_size) {
    if (s->prepared_gen == c->generation)
        return SS_DB_ERR_NONE;
    PGresult *r = PQprepare(c->pg, s->name, s->sql, s->nparams, NULL);
    ss_db_err_t e = SS_DB_ERR_NONE;
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
        e = ss_db_conn_error(c, r, errstr, errstr_size);
    else
        s->prepared_gen = c->generation;
    PQclear(r);
    return e;
}

ss_db_err_t ss_db_conn_ensure(ss_db_conn_t *c, char *errstr, size_t errstr_size) {
    ss_db_err_t e = ensure_connected(c, errstr, errstr_size);
    if (e != SS_DB_ERR_NONE)
        return e;
    for (size_t i = 0; i < c->nstmts; i++) {
        e = prepare(c, &c->stmts[i], errstr, errstr_size);
        if (e != SS_DB_ERR_NONE)
            return e;
    }
    note(c, SS_DB_OK, NULL);
    return SS_DB_ERR_NONE;
}

ss_db_err_t ss_db_conn_query(ss_db_conn_t *c, const char *name, const char *sql, int nparams,
                             const char *const *params, PGresult **out, char *errstr,
                             size_t errstr_size) {
    *out = NULL;
    ss_db_err_t e = SS_DB_ERR_CONNECT;
    stmt_t *s = NULL;
    if (name && !(s = stmt_add(c, name, sql, nparams, &e, errstr, errstr_size))) {
        note(c, SS_DB_FATAL, NULL);
        return e;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        e = ensure_connected(c, errstr, errstr_size);
        if (e != SS_DB_ERR_NONE)
            return e;
        PGresult *r;
        if (s) {
            e = prepare(c, s, errstr, errstr_size);
            if (e == SS_DB_ERR_CONNECT)
                continue; /* lost: reconnect once */
            if (e != SS_DB_ERR_NONE)
                return e;
            r = PQexecPrepared(c->pg, s->name, nparams, params, NULL, NULL, 0);
        } else {
            r = PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0);
        }
        if (r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)) {
            note(c, SS_DB_OK, NULL);
            *out = r;
            return SS_DB_ERR_NONE;
        }
        e = ss_db_conn_error(c, r, errstr, errstr_size);
        PQclear(r);
        if (e != SS_DB_ERR_CONNECT)
            return e; /* the server answered: timeouts, serialization failures are the caller's */
        /* Connection lost (e.g. PostgreSQL restarted): reconnect once. */
    }
    return e;
}
