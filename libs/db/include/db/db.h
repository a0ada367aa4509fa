/* libpq helpers shared by every service that talks to PostgreSQL. */
#ifndef SS_DB_DB_H
#define SS_DB_DB_H

#include <stddef.h>
#include <libpq-fe.h>

#define SS_DB_DEFAULT_URL "postgresql://localhost:5432/shipstream"

/* Copies url into out, turning the SQLAlchemy form "postgresql+asyncpg://"
 * (or any "postgresql+driver://") into "postgresql://".  Returns 0, or -1 when
 * out is too small or the scheme is not postgres/postgresql. */
int ss_db_url_normalize(const char *url, char *out, size_t outsize, char *errstr,
                        size_t errstr_size);

/* Connects (connect_timeout seconds, application_name set).  Returns a
 * connection in CONNECTION_OK, or NULL with errstr (the failed connection is
 * already PQfinish'ed).  The password is never put in errstr. */
PGconn *ss_db_connect(const char *url, const char *application_name, int connect_timeout_s,
                      char *errstr, size_t errstr_size);

typedef enum {
    SS_DB_OK = 0,
    SS_DB_RETRY, /* connection lost, 08xxx, 40001, 40P01, 57P01..57P03, 53xxx: retry with backoff */
    SS_DB_DATA,  /* classes 22 and 23: the data's fault (dead-letter it) */
    SS_DB_FATAL, /* anything else: a bug or a schema problem */
} ss_db_class_t;

/* Classifies a result by SQLSTATE (never by message text).  A NULL result or
 * a connection in CONNECTION_BAD is SS_DB_RETRY. */
ss_db_class_t ss_db_classify(PGconn *conn, const PGresult *res);

/* Runs a command without parameters; returns 0 or -1 with errstr
 * ("SQLSTATE: message"). */
int ss_db_exec(PGconn *conn, const char *sql, char *errstr, size_t errstr_size);

/* Writes "SQLSTATE message" of a failed result (or the connection error). */
void ss_db_error(PGconn *conn, const PGresult *res, char *errstr, size_t errstr_size);

#endif
