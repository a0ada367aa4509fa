/* shipstream-migrate: applies, rolls back and reports the migrations in migrations/.
 * Exit codes: 0 done, 1 failed, 2 bad usage or configuration. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <common/config.h>
#include <common/log.h>
#include <db/db.h>

#include "migrate.h"

#define PROG "shipstream-migrate"

#ifndef SS_MIGRATIONS_SOURCE_DIR
#define SS_MIGRATIONS_SOURCE_DIR "/usr/share/shipstream/migrations"
#endif
#define SS_MIGRATIONS_INSTALL_DIR "/usr/share/shipstream/migrations"

static char *g_database_url;
static char *g_migrations_dir;
static char *g_log_level;
static char *g_log_format;
static long long g_lock_timeout = 600;
static long long g_connect_timeout = 10;

static const ss_conf_opt_t g_opts[] = {
    {"DATABASE_URL", SS_CONF_STRING, &g_database_url, SS_DB_DEFAULT_URL, 0, 0,
     "PostgreSQL URL (postgresql+asyncpg:// accepted)", 1},
    {"MIGRATIONS_DIR", SS_CONF_STRING, &g_migrations_dir, NULL, 0, 0,
     "folder of NNNN_name.up.sql / .down.sql", 0},
    {"MIGRATE_LOCK_TIMEOUT_SECONDS", SS_CONF_INT, &g_lock_timeout, "600", 0, 86400,
     "how long to wait for another runner's migration lock (0 = forever)", 0},
    {"DB_CONNECT_TIMEOUT_SECONDS", SS_CONF_INT, &g_connect_timeout, "10", 1, 3600,
     "PostgreSQL connect timeout", 0},
    {"LOG_LEVEL", SS_CONF_STRING, &g_log_level, "info", 0, 0, "debug|info|warn|error", 0},
    {"LOG_FORMAT", SS_CONF_STRING, &g_log_format, "json", 0, 0, "json|text", 0},
};
#define NOPTS (sizeof g_opts / sizeof g_opts[0])

static void usage(FILE *out) {
    fprintf(out,
            "Usage: %s up [N] | down [N|all] | status | --help | --version\n"
            "\n"
            "Applies the numbered migrations NNNN_name.up.sql / NNNN_name.down.sql to the\n"
            "database of DATABASE_URL.\n"
            "  up [N]       apply the pending migrations in order (only the first N if given)\n"
            "  down [N|all] roll back the N most recent applied migrations (default 1)\n"
            "  status       list applied, pending, changed and missing migrations\n"
            "Each migration runs in one transaction and is recorded in schema_migrations\n"
            "(version, name, SHA-256 checksum of the up file, applied_at).  A PostgreSQL\n"
            "advisory lock keeps two runners apart: the second waits, then finds nothing to\n"
            "do.  An applied migration whose file changed is refused, so is a down without\n"
            "its down file.  Migration files must not contain BEGIN/COMMIT themselves.\n"
            "\n"
            "Migrations folder: $MIGRATIONS_DIR, else ./migrations, else %s,\n"
            "else %s.\n"
            "\n"
            "Exit codes: 0 done (status: listed), 1 failed or refused, 2 bad usage.\n"
            "\n"
            "Configuration (environment variables; an empty variable counts as unset):\n",
            PROG, SS_MIGRATIONS_SOURCE_DIR, SS_MIGRATIONS_INSTALL_DIR);
    for (size_t i = 0; i < NOPTS; i++) {
        const ss_conf_opt_t *o = &g_opts[i];
        fprintf(out, "  %-30s %s [default: %s]\n", o->name, o->help,
                strcmp(o->name, "DATABASE_URL") == 0 ? SS_DB_DEFAULT_URL
                : o->def                             ? o->def
                                                     : "see above");
    }
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int parse_count(const char *s, long *out, int allow_all) {
    if (allow_all && strcmp(s, "all") == 0) {
        *out = 0;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !end || *end || end == s || v < 1 || v > 1000000)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    ss_mig_opts_t mo = {.cmd = SS_MIG_STATUS, .count = 0};
    int have_cmd = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("%s %s\n", PROG, SS_VERSION);
            return 0;
        }
    }
    if (argc < 2) {
        fprintf(stderr, "%s: missing command (up, down or status); see --help\n", PROG);
        return 2;
    }
    if (strcmp(argv[1], "up") == 0) {
        mo.cmd = SS_MIG_UP;
        mo.count = 0;
        have_cmd = 1;
        if (argc > 2 && parse_count(argv[2], &mo.count, 1) != 0) {
            fprintf(stderr, "%s: up: N must be a positive integer, got '%s'\n", PROG, argv[2]);
            return 2;
        }
    } else if (strcmp(argv[1], "down") == 0) {
        mo.cmd = SS_MIG_DOWN;
        mo.count = 1;
        have_cmd = 1;
        if (argc > 2 && parse_count(argv[2], &mo.count, 1) != 0) {
            fprintf(stderr, "%s: down: N must be a positive integer or 'all', got '%s'\n", PROG,
                    argv[2]);
            return 2;
        }
    } else if (strcmp(argv[1], "status") == 0) {
        mo.cmd = SS_MIG_STATUS;
        have_cmd = 1;
        if (argc > 2) {
            fprintf(stderr, "%s: status takes no argument, got '%s'\n", PROG, argv[2]);
            return 2;
        }
    }
    if (!have_cmd) {
        fprintf(stderr, "%s: unknown command '%s' (expected up, down or status); see --help\n",
                PROG, argv[1]);
        return 2;
    }
    if (argc > 3) {
        fprintf(stderr, "%s: unexpected argument '%s'; see --help\n", PROG, argv[3]);
        return 2;
    }

    char err[1024];
    if (ss_conf_load(g_opts, NOPTS, err, sizeof err) != 0) {
        fprintf(stderr, "%s: configuration error: %s\n", PROG, err);
        return 2;
    }
    if (ss_log_init(PROG, g_log_level, g_log_format, err, sizeof err) != 0) {
        fprintf(stderr, "%s: configuration error: %s\n", PROG, err);
        ss_conf_free(g_opts, NOPTS);
        return 2;
    }

    int rc = 1;
    PGconn *conn = NULL;
    char url[4096];
    if (g_migrations_dir) {
        if (!is_dir(g_migrations_dir)) {
            ss_log_kv(SS_LOG_ERROR, "configuration error: not a folder", "variable",
                      "MIGRATIONS_DIR", "value", g_migrations_dir, NULL);
            rc = 2;
            goto cleanup;
        }
        mo.dir = g_migrations_dir;
    } else if (is_dir("migrations")) {
        mo.dir = "migrations";
    } else if (is_dir(SS_MIGRATIONS_SOURCE_DIR)) {
        mo.dir = SS_MIGRATIONS_SOURCE_DIR;
    } else if (is_dir(SS_MIGRATIONS_INSTALL_DIR)) {
        mo.dir = SS_MIGRATIONS_INSTALL_DIR;
    } else {
        ss_log_kv(SS_LOG_ERROR,
                  "configuration error: MIGRATIONS_DIR is unset and no default folder exists",
                  "variable", "MIGRATIONS_DIR", "tried", "./migrations", "source_dir",
                  SS_MIGRATIONS_SOURCE_DIR, "install_dir", SS_MIGRATIONS_INSTALL_DIR, NULL);
        rc = 2;
        goto cleanup;
    }
    if (ss_db_url_normalize(g_database_url, url, sizeof url, err, sizeof err) != 0) {
        ss_log_kv(SS_LOG_ERROR, "configuration error", "variable", "DATABASE_URL", "error", err,
                  NULL);
        rc = 2;
        goto cleanup;
    }
    mo.lock_timeout_s = (long)g_lock_timeout;

    conn = ss_db_connect(url, PROG, (int)g_connect_timeout, err, sizeof err);
    if (!conn) {
        ss_log_kv(SS_LOG_ERROR, "cannot connect to PostgreSQL", "variable", "DATABASE_URL", "error",
                  err, NULL);
        rc = 1;
        goto cleanup;
    }
    ss_log_kv(SS_LOG_DEBUG, "migrations folder", "dir", mo.dir, NULL);
    rc = ss_mig_run(conn, &mo);

cleanup:
    if (conn)
        PQfinish(conn);
    ss_conf_free(g_opts, NOPTS);
    return rc;
}
