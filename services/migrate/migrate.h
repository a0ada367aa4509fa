/* shipstream-migrate internals: the migration files on disk and the runner. */
#ifndef SS_MIGRATE_MIGRATE_H
#define SS_MIGRATE_MIGRATE_H

#include <stddef.h>
#include <libpq-fe.h>

#define SS_MIGRATE_MAX_FILE (16u * 1024u * 1024u) /* refuse larger migration files */

typedef struct {
    long version;
    char *name;      /* "core" of 0001_core.up.sql */
    char *up_path;   /* NULL when only a down file exists */
    char *down_path; /* NULL when absent */
    char up_sha[65]; /* SHA-256 hex of the up file ("" without one) */
} ss_mig_file_t;

typedef struct {
    ss_mig_file_t *items; /* sorted by version */
    size_t n;
} ss_mig_set_t;

/* Reads every NNNN_name.up.sql / NNNN_name.down.sql of dir and checksums the up files.
 * Other files are ignored.  Returns 0, or -1 with errstr (unreadable dir or file, two names
 * for one version, a file over SS_MIGRATE_MAX_FILE).  Free with ss_mig_set_free. */
int ss_mig_set_load(const char *dir, ss_mig_set_t *set, char *errstr, size_t errstr_size);
void ss_mig_set_free(ss_mig_set_t *set);

/* Reads a whole file (NUL-terminated, at most SS_MIGRATE_MAX_FILE bytes).  Returns a malloc'd
 * buffer owned by the caller, or NULL with errstr. */
char *ss_mig_read_file(const char *path, size_t *len, char *errstr, size_t errstr_size);

/* SHA-256 of buf as 64 lower-case hex characters + NUL. */
void ss_mig_sha256_hex(const void *buf, size_t len, char out[65]);

typedef enum { SS_MIG_UP, SS_MIG_DOWN, SS_MIG_STATUS } ss_mig_cmd_t;

typedef struct {
    ss_mig_cmd_t cmd;
    long count; /* up: how many (0 = all); down: how many (0 = all) */
    const char *dir;
    long lock_timeout_s; /* waiting for another runner's lock; 0 = forever */
} ss_mig_opts_t;

/* Runs the command on conn; progress and the status table go to stdout.  Returns the
 * process exit code: 0 done, 1 failed. */
int ss_mig_run(PGconn *conn, const ss_mig_opts_t *opts);

#endif
