/* Migration files and the runner behind `shipstream-migrate up|down|status`. */
#include "migrate.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>

#include <common/log.h>
#include <common/util.h>
#include <db/db.h>

/* pg_advisory_lock key shared by every runner: "shipstrm" as a big-endian int64. */
#define SS_MIGRATE_LOCK_KEY "8316012643633885805"

/* ---------------------------------------------------------------- files */

void ss_mig_sha256_hex(const void *buf, size_t len, char out[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        out[0] = '\0';
        return;
    }
    ss_hex_encode(md, 32, out);
}

char *ss_mig_read_file(const char *path, size_t *len, char *errstr, size_t errstr_size) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f) {
        snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (cap - n < 4096) {
            size_t ncap = cap ? cap * 2 : 65536;
            if (ncap > SS_MIGRATE_MAX_FILE + 1)
                ncap = SS_MIGRATE_MAX_FILE + 1;
            if (ncap <= cap) {
                snprintf(errstr, errstr_size, "%s: larger than %u bytes", path,
                         SS_MIGRATE_MAX_FILE);
                goto fail;
            }
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                snprintf(errstr, errstr_size, "%s: out of memory", path);
                goto fail;
            }
            buf = nb;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                snprintf(errstr, errstr_size, "%s: read error", path);
                goto fail;
            }
            break;
        }
    }
    if (n > SS_MIGRATE_MAX_FILE) {
        snprintf(errstr, errstr_size, "%s: larger than %u bytes", path, SS_MIGRATE_MAX_FILE);
        goto fail;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
fail:
    fclose(f);
    free(buf);
    return NULL;
}

/* Parses "NNNN_name.up.sql" / "NNNN_name.down.sql".  Returns 1 (fills version, name, is_up)
 * or 0 when the file name is not a migration. */
static int parse_name(const char *fn, long *version, char *name, size_t namesize, int *is_up) {
    const char *p = fn;
    if (!isdigit((unsigned char)*p))
        return 0;
    long v = 0;
    while (isdigit((unsigned char)*p)) {
        if (v > 100000000L)
            return 0;
        v = v * 10 + (*p - '0');
        p++;
    }
    if (*p != '_')
        return 0;
    p++;
    const char *ns = p;
    while (isalnum((unsigned char)*p) || *p == '_' || *p == '-')
        p++;
    size_t nl = (size_t)(p - ns);
    if (nl == 0 || nl >= namesize)
        return 0;
    if (strcmp(p, ".up.sql") == 0)
        *is_up = 1;
    else if (strcmp(p, ".down.sql") == 0)
        *is_up = 0;
    else
        return 0;
    memcpy(name, ns, nl);
    name[nl] = '\0';
    *version = v;
    return 1;
}

static int cmp_version(const void *a, const void *b) {
    const ss_mig_file_t *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

void ss_mig_set_free(ss_mig_set_t *set) {
    for (size_t i = 0; i < set->n; i++) {
        free(set->items[i].name);
        free(set->items[i].up_path);
        free(set->items[i].down_path);
    }
    free(set->items);
    set->items = NULL;
    set->n = 0;
}

int ss_mig_set_load(const char *dir, ss_mig_set_t *set, char *errstr, size_t errstr_size) {
    DIR *d = opendir(dir);
    size_t cap = 0;
    set->items = NULL;
    set->n = 0;
    if (!d) {
        snprintf(errstr, errstr_size, "MIGRATIONS_DIR=%s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long version;
        char name[256];
        int is_up;
        if (!parse_name(de->d_name, &version, name, sizeof name, &is_up))
            continue;
        ss_mig_file_t *m = NULL;
        for (size_t i = 0; i < set->n; i++)
            if (set->items[i].version == version)
                m = &set->items[i];
        if (m && strcmp(m->name, name) != 0) {
            snprintf(errstr, errstr_size, "%s: two migrations numbered %04ld (%s and %s)", dir,
                     version, m->name, name);
            goto fail;
        }
        if (!m) {
            if (set->n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                ss_mig_file_t *ni = realloc(set->items, ncap * sizeof *ni);
                if (!ni) {
                    snprintf(errstr, errstr_size, "out of memory");
                    goto fail;
                }
                set->items = ni;
                cap = ncap;
            }
            m = &set->items[set->n++];
            memset(m, 0, sizeof *m);
            m->version = version;
            m->name = strdup(name);
            if (!m->name) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
            }
        }
        char *path = NULL;
        if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
            snprintf(errstr, errstr_size, "out of memory");
            goto fail;
        }
        if (is_up) {
            free(m->up_path);
            m->up_path = path;
        } else {
            free(m->down_path);
            m->down_path = path;
        }
    }
    closedir(d);
    d = NULL;
    qsort(set->items, set->n, sizeof *set->items, cmp_version);
    for (size_t i = 0; i < set->n; i++) {
        ss_mig_file_t *m = &set->items[i];
        if (!m->up_path)
            continue;
        size_t len;
        char *buf = ss_mig_read_file(m->up_path, &len, errstr, errstr_size);
        if (!buf)
            goto fail;
        ss_mig_sha256_hex(buf, len, m->up_sha);
        free(buf);
    }
    return 0;
fail:
    if (d)
        closedir(d);
    ss_mig_set_free(set);
    return -1;
}

/* ---------------------------------------------------------------- database */

typedef struct {
    long version;
    char *name;
    char *checksum;
    char *applied_at;
} applied_t;

typedef struct {
    applied_t *items; /* sorted by version */
    size_t n;
} applied_set_t;

static void applied_free(applied_set_t *a) {
    for (size_t i = 0; i < a->n; i++) {
        free(a->items[i].name);
        free(a->items[i].checksum);
        free(a->items[i].applied_at);
    }
    free(a->items);
    a->items = NULL;
    a->n = 0;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* "0001_core": how migrations are named to people. */
static void mig_id(char *buf, size_t size, long version, const char *name) {
    snprintf(buf, size, "%04ld_%s", version, name);
}

static int exec_ok(PGconn *conn, const char *sql, const char *what) {
    char err[1024];
    if (ss_db_exec(conn, sql, err, sizeof err) != 0) {
        ss_log_kv(SS_LOG_ERROR, "statement failed", "what", what, "error", err, NULL);
        return -1;
    }
    return 0;
}

/* Loads schema_migrations (empty when the table does not exist yet). */
static int applied_load(PGconn *conn, applied_set_t *a) {
    char err[1024];
    a->items = NULL;
    a->n = 0;
    PGresult *r = PQexec(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        ss_db_error(conn, r, err, sizeof err);
        PQclear(r);
        ss_log_kv(SS_LOG_ERROR, "reading schema_migrations failed", "error", err, NULL);
        return -1;
    }
    int exists = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!exists)
        return 0;
    r = PQexec(conn, "SELECT version, name, checksum, "
                     "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                     "FROM schema_migrations ORDER BY version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        ss_db_error(conn, r, err, sizeof err);
        PQclear(r);
        ss_log_kv(SS_LOG_ERROR, "reading schema_migrations failed", "error", err, NULL);
        return -1;
    }
    int nt = PQntuples(r);
    if (nt > 0) {
        a->items = calloc((size_t)nt, sizeof *a->items);
        if (!a->items) {
            PQclear(r);
            ss_log_kv(SS_LOG_ERROR, "out of memory", "what", "schema_migrations", NULL);
            return -1;
        }
    }
    for (int i = 0; i < nt; i++) {
        applied_t *x = &a->items[a->n++];
        x->version = strtol(PQgetvalue(r, i, 0), NULL, 10);
        x->name = strdup(PQgetvalue(r, i, 1));
        x->checksum = strdup(PQgetvalue(r, i, 2));
        x->applied_at = strdup(PQgetvalue(r, i, 3));
        if (!x->name || !x->checksum || !x->applied_at) {
            PQclear(r);
            applied_free(a);
            ss_log_kv(SS_LOG_ERROR, "out of memory", "what", "schema_migrations", NULL);
            return -1;
        }
    }
    PQclear(r);
    return 0;
}

static const applied_t *applied_find(const applied_set_t *a, long version) {
    for (size_t i = 0; i < a->n; i++)
        if (a->items[i].version == version)
            return &a->items[i];
    return NULL;
}

static const ss_mig_file_t *file_find(const ss_mig_set_t *s, long version) {
    for (size_t i = 0; i < s->n; i++)
        if (s->items[i].version == version)
            return &s->items[i];
    return NULL;
}

/* An applied migration whose up file changed, or whose file disappeared. */
static int is_changed(const applied_t *a, const ss_mig_file_t *f) {
    return f && f->up_path && strcmp(f->up_sha, a->checksum) != 0;
}

/* Refuses (prints why, returns the number of problems) when an applied migration's file
 * changed after it was applied. */
static int check_changed(const applied_set_t *a, const ss_mig_set_t *s) {
    int bad = 0;
    for (size_t i = 0; i < a->n; i++) {
        const ss_mig_file_t *f = file_find(s, a->items[i].version);
        if (is_changed(&a->items[i], f)) {
            char id[128];
            mig_id(id, sizeof id, a->items[i].version, a->items[i].name);
            ss_log_kv(SS_LOG_ERROR,
                      "an applied migration's file has changed since: refusing to continue; "
                      "restore the file as it was applied and put the change in a new migration",
                      "migration", id, "applied_at", a->items[i].applied_at, "file", f->up_path,
                      "checksum_applied", a->items[i].checksum, "checksum_file", f->up_sha, NULL);
            bad++;
        }
    }
    return bad;
}

static int take_lock(PGconn *conn, long lock_timeout_s) {
    char err[1024];
    PGresult *r = PQexec(conn, "SELECT pg_try_advisory_lock(" SS_MIGRATE_LOCK_KEY ")");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        ss_db_error(conn, r, err, sizeof err);
        PQclear(r);
        ss_log_kv(SS_LOG_ERROR, "taking the migration lock failed", "error", err, NULL);
        return -1;
    }
    int got = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (got)
        return 0;
    ss_log_kv(SS_LOG_INFO, "another shipstream-migrate holds the migration lock; waiting", NULL);
    fprintf(stdout, "waiting for another shipstream-migrate to finish...\n");
    fflush(stdout);
    char sql[128];
    snprintf(sql, sizeof sql, "SET lock_timeout = '%lds'", lock_timeout_s);
    if (exec_ok(conn, sql, "SET lock_timeout") != 0)
        return -1;
    r = PQexec(conn, "SELECT pg_advisory_lock(" SS_MIGRATE_LOCK_KEY ")");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        ss_db_error(conn, r, err, sizeof err);
        PQclear(r);
        ss_log_kv(SS_LOG_ERROR, "waiting for the migration lock failed",
                  SS_KV_INT("MIGRATE_LOCK_TIMEOUT_SECONDS", lock_timeout_s), "error", err, NULL);
        return -1;
    }
    PQclear(r);
    return exec_ok(conn, "SET lock_timeout = 0", "SET lock_timeout");
}

static int ensure_table(PGconn *conn) {
    return exec_ok(conn,
                   "SET client_min_messages = warning;"
                   "CREATE TABLE IF NOT EXISTS schema_migrations ("
                   " version bigint PRIMARY KEY,"
                   " name text NOT NULL,"
                   " checksum text NOT NULL,"
                   " applied_at timestamptz NOT NULL DEFAULT now());"
                   "RESET client_min_messages",
                   "creating schema_migrations");
}

/* Runs one migration file and its bookkeeping in one transaction. */
static int apply_one(PGconn *conn, const ss_mig_file_t *f, int up) {
    char err[1024];
    const char *path = up ? f->up_path : f->down_path;
    size_t len;
    char *sql = ss_mig_read_file(path, &len, err, sizeof err);
    if (!sql) {
        ss_log_kv(SS_LOG_ERROR, "reading a migration file failed", "error", err, NULL);
        return -1;
    }
    if (up) {
        /* The file may have changed since the set was loaded: record what runs. */
        char sha[65];
        ss_mig_sha256_hex(sql, len, sha);
        if (strcmp(sha, f->up_sha) != 0) {
            ss_log_kv(SS_LOG_ERROR, "migration file changed while running; try again", "file", path,
                      NULL);
            free(sql);
            return -1;
        }
    }
    char id[128];
    mig_id(id, sizeof id, f->version, f->name);
    double t0 = now_ms();
    if (exec_ok(conn, "BEGIN", "BEGIN") != 0) {
        free(sql);
        return -1;
    }
    PGresult *r = PQexec(conn, sql);
    free(sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        int lost = state && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0 ||
                             strcmp(state, "55P03") == 0);
        ss_db_error(conn, r, err, sizeof err);
        PQclear(r);
        ss_log_kv(lost ? SS_LOG_WARN : SS_LOG_ERROR, "migration failed, rolled back", "direction",
                  up ? "up" : "down", "migration", id, "file", path, "error", err, NULL);
        PQclear(PQexec(conn, "ROLLBACK"));
        return lost ? -2 : -1;
    }
    PQclear(r);
    char vbuf[32];
    snprintf(vbuf, sizeof vbuf, "%ld", f->version);
    if (up) {
        const char *params[3] = {vbuf, f->name, f->up_sha};
        r = PQexecParams(conn,
                         "INSERT INTO schema_migrations (version, name, checksum) "
                         "VALUES ($1::bigint, $2, $3)",
                         3, NULL, params, NULL, NULL, 0);
    } else {
        const char *params[1] = {vbuf};
        r = PQexecParams(conn, "DELETE FROM schema_migrations WHERE version = $1::bigint", 1, NULL,
                         params, NULL, NULL, 0);
    }
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        ss_db_error(conn, r, err, sizeof err);
        PQclear(r);
        ss_log_kv(SS_LOG_ERROR, "recording the migration failed, rolled back", "migration", id,
                  "error", err, NULL);
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }
    PQclear(r);
    r = PQexec(conn, "COMMIT");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        ss_db_error(conn, r, err, sizeof err);
        PQclear(r);
        ss_log_kv(SS_LOG_ERROR, "COMMIT of the migration failed", "migration", id, "error", err,
                  NULL);
        return -1;
    }
    PQclear(r);
    double ms = now_ms() - t0;
    printf("%s %s (%.1f ms)\n", up ? "applied" : "rolled back", id, ms);
    fflush(stdout);
    ss_log_kv(SS_LOG_INFO, up ? "migration applied" : "migration rolled back",
              SS_KV_INT("version", f->version), "name", f->name, SS_KV_DBL("duration_ms", ms),
              NULL);
    return 0;
}

/* apply_one, run again when the migration lost a race to live traffic: a deadlock (40P01)
 * with a sync worker writing the tables it alters (a rolling upgrade), a serialization
 * failure (40001), or a lock_timeout the migration set for itself (55P03).  The migration
 * rolled back whole, so running it again is safe; after MIG_RACE_TRIES attempts (waits of
 * 1, 2, 4, 8 s) it fails as any other error does. */
#define MIG_RACE_TRIES 5
static int apply_retrying(PGconn *conn, const ss_mig_file_t *f, int up) {
    for (int attempt = 1;; attempt++) {
        int rc = apply_one(conn, f, up);
        if (rc != -2)
            return rc;
        if (attempt == MIG_RACE_TRIES) {
            ss_log_kv(SS_LOG_ERROR, "migration lost to concurrent writers every time; giving up",
                      "file", up ? f->up_path : f->down_path, SS_KV_INT("attempts", attempt), NULL);
            return -1;
        }
        int wait_s = 1 << (attempt - 1);
        ss_log_kv(SS_LOG_WARN, "migration lost a race to concurrent writers; running it again",
                  "file", up ? f->up_path : f->down_path, SS_KV_INT("attempt", attempt),
                  SS_KV_INT("wait_seconds", wait_s), NULL);
        struct timespec ts = {wait_s, 0};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
}

static int run_status(PGconn *conn, const ss_mig_set_t *s) {
    applied_set_t a;
    if (applied_load(conn, &a) != 0)
        return 1;
    int napplied = 0, npending = 0, nchanged = 0, nmissing = 0;
    printf("%-8s %-28s %-9s %s\n", "version", "name", "state", "applied_at");
    /* Merge the two sorted lists. */
    size_t i = 0, j = 0;
    while (i < s->n || j < a.n) {
        const ss_mig_file_t *f = i < s->n ? &s->items[i] : NULL;
        const applied_t *x = j < a.n ? &a.items[j] : NULL;
        if (x && (!f || x->version < f->version)) {
            printf("%04ld     %-28s %-9s %s  (no file: cannot be rolled back)\n", x->version,
                   x->name, "MISSING", x->applied_at);
            nmissing++;
            napplied++;
            j++;
        } else if (f && (!x || f->version < x->version)) {
            printf("%04ld     %-28s %-9s %s\n", f->version, f->name,
                   f->up_path ? "pending" : "NO-UP", "-");
            npending++;
            i++;
        } else {
            int changed = is_changed(x, f) || !f->up_path;
            printf("%04ld     %-28s %-9s %s%s\n", x->version, x->name,
                   changed ? "CHANGED" : "applied", x->applied_at,
                   !f->up_path     ? "  (up file missing)"
                   : changed       ? "  (file differs from the applied version)"
                   : !f->down_path ? "  (no down file)"
                                   : "");
            if (changed)
                nchanged++;
            napplied++;
            i++;
            j++;
        }
    }
    printf("%d applied, %d pending, %d changed, %d missing\n", napplied, npending, nchanged,
           nmissing);
    applied_free(&a);
    return 0;
}

static int run_up(PGconn *conn, const ss_mig_set_t *s, long count) {
    applied_set_t a;
    if (applied_load(conn, &a) != 0)
        return 1;
    int rc = 0;
    if (check_changed(&a, s) > 0) {
        rc = 1;
        goto done;
    }
    for (size_t j = 0; j < a.n; j++)
        if (!file_find(s, a.items[j].version))
            ss_log_kv(SS_LOG_WARN, "applied migration has no file", "name", a.items[j].name, NULL);
    long done_n = 0;
    for (size_t i = 0; i < s->n && (count == 0 || done_n < count); i++) {
        const ss_mig_file_t *f = &s->items[i];
        if (applied_find(&a, f->version))
            continue;
        if (!f->up_path) {
            char id[128];
            mig_id(id, sizeof id, f->version, f->name);
            ss_log_kv(SS_LOG_ERROR, "migration has a down file but no up file", "migration", id,
                      NULL);
            rc = 1;
            goto done;
        }
        if (apply_retrying(conn, f, 1) != 0) {
            rc = 1;
            goto done;
        }
        done_n++;
    }
    if (done_n == 0) {
        long top = a.n ? a.items[a.n - 1].version : 0;
        printf("nothing to do: database is up to date (version %04ld)\n", top);
    }
done:
    applied_free(&a);
    return rc;
}

static int run_down(PGconn *conn, const ss_mig_set_t *s, long count) {
    applied_set_t a;
    if (applied_load(conn, &a) != 0)
        return 1;
    int rc = 0;
    if (check_changed(&a, s) > 0) {
        rc = 1;
        goto done;
    }
    size_t n = a.n;
    if (count > 0 && (size_t)count < n)
        n = (size_t)count;
    if (n == 0) {
        printf("nothing to do: no migration is applied\n");
        goto done;
    }
    /* Check every file first: refuse before changing anything. */
    for (size_t k = 0; k < n; k++) {
        const applied_t *x = &a.items[a.n - 1 - k];
        const ss_mig_file_t *f = file_find(s, x->version);
        if (!f || !f->down_path) {
            char id[128], want[160];
            mig_id(id, sizeof id, x->version, x->name);
            snprintf(want, sizeof want, "%s.down.sql", id);
            ss_log_kv(SS_LOG_ERROR,
                      "cannot roll back: its down file is not in the migrations folder; refusing",
                      "migration", id, "missing_file", want, NULL);
            rc = 1;
            goto done;
        }
    }
    for (size_t k = 0; k < n; k++) {
        const ss_mig_file_t *f = file_find(s, a.items[a.n - 1 - k].version);
        if (apply_retrying(conn, f, 0) != 0) {
            rc = 1;
            goto done;
        }
    }
done:
    applied_free(&a);
    return rc;
}

/* Server NOTICEs (DROP ... IF EXISTS and the like) go to the debug log, not raw stderr. */
static void notice_cb(void *arg, const char *message) {
    (void)arg;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", message);
    size_t l = strlen(buf);
    while (l > 0 && (buf[l - 1] == '\n' || buf[l - 1] == '\r'))
        buf[--l] = '\0';
    ss_log_kv(SS_LOG_DEBUG, "server notice", "notice", buf, NULL);
}

int ss_mig_run(PGconn *conn, const ss_mig_opts_t *opts) {
    char err[1024];
    PQsetNoticeProcessor(conn, notice_cb, NULL);
    ss_mig_set_t set;
    if (ss_mig_set_load(opts->dir, &set, err, sizeof err) != 0) {
        ss_log_kv(SS_LOG_ERROR, "reading the migrations folder failed", "error", err, NULL);
        return 1;
    }
    int rc;
    if (opts->cmd == SS_MIG_STATUS) {
        rc = run_status(conn, &set);
        ss_mig_set_free(&set);
        return rc;
    }
    if (take_lock(conn, opts->lock_timeout_s) != 0) {
        ss_mig_set_free(&set);
        return 1;
    }
    if (ensure_table(conn) != 0) {
        rc = 1;
    } else if (opts->cmd == SS_MIG_UP) {
        rc = run_up(conn, &set, opts->count);
    } else {
        rc = run_down(conn, &set, opts->count);
    }
    /* The session lock also ends with the connection; unlock anyway to be explicit. */
    PQclear(PQexec(conn, "SELECT pg_advisory_unlock(" SS_MIGRATE_LOCK_KEY ")"));
    ss_mig_set_free(&set);
    return rc;
}
