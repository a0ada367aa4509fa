/* ss-sync-pgbench: the PostgreSQL-alone baseline of the sync benchmark.
 *
 *   ss-sync-pgbench DATABASE_URL FILE.tsv [BATCH]
 *
 * Reads "key<TAB>envelope" lines, parses and maps them all first (not
 * timed), then times only PostgreSQL taking the same rows with the same
 * set-based statements, BATCH messages per transaction (default 1000).
 * Prints "events_per_s <rate>" on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <common/sstime.h>
#include <db/db.h>
#include <envelope/envelope.h>
#include <sync/apply.h>
#include <sync/map.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s DATABASE_URL FILE.tsv [BATCH]\n", argv[0]);
        return 2;
    }
    size_t batch = argc > 3 ? (size_t)atol(argv[3]) : 1000;
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        perror(argv[2]);
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

    char err[1024];
    ss_db_conn_opts_t dbo = {.url = argv[1], .application_name = "ss-sync-pgbench"};
    ss_db_conn_t *conn = ss_db_conn_new(&dbo, err, sizeof(err));
    ss_sync_db_t db;
    ss_sync_db_init(&db);
    if (!conn || ss_sync_db_set_conn(&db, conn, err, sizeof(err)) != SS_DB_ERR_NONE ||
        ss_db_conn_ensure(conn, err, sizeof(err)) != SS_DB_ERR_NONE) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    ss_envelope_t *envs = calloc(batch, sizeof(*envs));
    ss_sync_msg_t *msgs = calloc(batch, sizeof(*msgs));
    ss_sync_rows_t *rows = calloc((n + batch - 1) / batch, sizeof(*rows));
    ss_envelope_t **all = calloc((n + batch - 1) / batch, sizeof(*all));
    ss_sync_msg_t **allm = calloc((n + batch - 1) / batch, sizeof(*allm));
    size_t nb = 0;
    for (size_t lo = 0; lo < n; lo += batch, nb++) {
        size_t hi = lo + batch < n ? lo + batch : n;
        all[nb] = calloc(batch, sizeof(ss_envelope_t));
        allm[nb] = calloc(batch, sizeof(ss_sync_msg_t));
        ss_sync_rows_init(&rows[nb]);
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
    }
    free(envs);
    free(msgs);
    ss_sync_stats_t st;
    memset(&st, 0, sizeof(st));
    int64_t t0 = ss_time_mono_usec();
    for (size_t b = 0; b < nb; b++) {
        size_t cnt = (b + 1) * batch <= n ? batch : n - b * batch;
        ss_db_class_t cls =
            ss_sync_apply(&db, "bench", &rows[b], allm[b], 0, cnt, &st, err, sizeof(err));
        if (cls != SS_DB_OK) {
            fprintf(stderr, "apply: %s\n", err);
            return 1;
        }
    }
    double secs = (double)(ss_time_mono_usec() - t0) / 1e6;
    printf("events_per_s %.0f\n", (double)n / secs);
    fprintf(stderr, "%zu events in %.2f s (PostgreSQL only, %zu per transaction)\n", n, secs,
            batch);
    ss_db_conn_free(conn);
    return 0;
}
