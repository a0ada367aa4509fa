/* `shipstream-reconcile backfill`: every shipment and tracker EasyPost
 * created in [since, until], newest first, produced to Kafka (source
 * "backfill").
 *
 * Resuming.  The cursor (which list, and the before_id to continue from) is
 * kept in a small JSON state file, replaced atomically (write, fsync,
 * rename, fsync of the folder) after each page, and only once Kafka has
 * acknowledged every object of that page (acks=all).  A run stopped by
 * SIGINT/SIGTERM, a crash or a power cut therefore resumes at the first page
 * not known to be on Kafka; at most one page is produced twice, which the
 * sync worker's version guard makes harmless.  Why a file and not
 * PostgreSQL or a compacted topic: this binary must not write PostgreSQL,
 * and a topic would need its own retention settings and a consumer to read
 * one value back; a file next to the run is what an operator can read,
 * delete to start over, or copy.  `serve` keeps no cursor at all (each pass
 * looks at a window), so a single backfill run per state file is the only
 * writer. */
#include "reconcile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include <common/log.h>
#include <common/metrics.h>
#include <common/shutdown.h>
#include <common/sstime.h>
#include <common/util.h>

#define MAX_KINDS 2

typedef struct {
    /* arguments */
    char since[40], until[40];
    int64_t since_usec, until_usec;
    ss_ep_list_kind_t kinds[MAX_KINDS];
    int nkinds;
    char objects_csv[64];
    char state_path[512];
    /* cursor */
    int kind_index;
    char before_id[128];
    uint64_t produced[MAX_KINDS];
    uint64_t pages, skipped_unknown, skipped_invalid, transient_errors, bad_pages;
    /* run */
    rc_producer_t *prod;
    char request_id[64];
    int64_t t0_mono;
    uint64_t produced_this_run;
    int64_t last_progress;
    int tty;
} bf_t;

static void fmt_rfc3339(int64_t usec, char *buf, size_t n) {
    time_t s = (time_t)(usec / 1000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void usage(FILE *out) {
    fprintf(out,
            "Usage: %s backfill --since RFC3339 [--until RFC3339] [--objects shipments,trackers]\n"
            "                    [--state FILE] [--restart]\n"
            "  Produces every shipment and tracker EasyPost created in [since, until] (until:\n"
            "  now) to Kafka, newest first; progress on a terminal, one summary line at the end.\n"
            "  Stopped (SIGINT, SIGTERM, crash), the same command resumes where it stopped: the\n"
            "  cursor is in FILE (default $RECONCILE_STATE_DIR/backfill-state.json), written\n"
            "  after each page Kafka acknowledged.  --restart discards a state file left by\n"
            "  another backfill.  Exit: 0 complete, 1 failed, 2 usage, 3 interrupted.\n",
            RC_PROG);
}

/* ---- state file ------------------------------------------------------------------- */

static int state_save(const bf_t *b, char *errstr, size_t n) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "version", json_object_new_int(1));
    json_object_object_add(o, "since", json_object_new_string(b->since));
    json_object_object_add(o, "until", json_object_new_string(b->until));
    json_object_object_add(o, "objects", json_object_new_string(b->objects_csv));
    json_object_object_add(o, "kind_index", json_object_new_int(b->kind_index));
    json_object_object_add(o, "before_id", json_object_new_string(b->before_id));
    json_object *pr = json_object_new_object();
    for (int k = 0; k < b->nkinds; k++)
        json_object_object_add(pr, ss_ep_list_name(b->kinds[k]),
                               json_object_new_int64((int64_t)b->produced[k]));
    json_object_object_add(o, "produced", pr);
    json_object_object_add(o, "pages", json_object_new_int64((int64_t)b->pages));
    json_object_object_add(o, "skipped_unknown",
                           json_object_new_int64((int64_t)b->skipped_unknown));
    json_object_object_add(o, "skipped_invalid",
                           json_object_new_int64((int64_t)b->skipped_invalid));
    const char *txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", b->state_path);
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(errstr, n, "state file %.400s: %s", tmp, strerror(errno));
        goto out;
    }
    size_t len = strlen(txt), off = 0;
    while (off < len) {
        ssize_t w = write(fd, txt + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(errstr, n, "state file %.400s: %s", tmp, strerror(errno));
            close(fd);
            goto out;
        }
        off += (size_t)w;
    }
    if (write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
        snprintf(errstr, n, "state file %.400s: %s", tmp, strerror(errno));
        close(fd);
        goto out;
    }
    close(fd);
    if (rename(tmp, b->state_path) != 0) {
        snprintf(errstr, n, "state file %.400s: %s", b->state_path, strerror(errno));
        goto out;
    }
    char dir[600];
    snprintf(dir, sizeof dir, "%s", b->state_path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    rc = 0;
out:
    json_object_put(o);
    return rc;
}

static const char *jstr(json_object *o, const char *k) {
    json_object *v;
    return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

static int64_t jint(json_object *o, const char *k) {
    json_object *v;
    return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_int)
               ? json_object_get_int64(v)
               : 0;
}

/* 1 resumed, 0 no state, -1 error (message in errstr; exit 1). */
static int state_load(bf_t *b, int restart, int until_given, char *errstr, size_t n) {
    FILE *f = fopen(b->state_path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(errstr, n, "state file %.400s: %s", b->state_path, strerror(errno));
        return -1;
    }
    char buf[8192];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    json_object *o = json_tokener_parse(buf);
    const char *since = o ? jstr(o, "since") : NULL, *until = o ? jstr(o, "until") : NULL;
    const char *objects = o ? jstr(o, "objects") : NULL, *before = o ? jstr(o, "before_id") : NULL;
    if (!o || jint(o, "version") != 1 || !since || !until || !objects || !before) {
        if (o)
            json_object_put(o);
        if (restart)
            return 0;
        snprintf(errstr, n,
                 "state file %.400s is not a backfill state: delete it or pass --restart",
                 b->state_path);
        return -1;
    }
    int same = strcmp(since, b->since) == 0 && strcmp(objects, b->objects_csv) == 0 &&
               (!until_given || strcmp(until, b->until) == 0);
    if (!same) {
        if (restart) {
            json_object_put(o);
            return 0;
        }
        snprintf(errstr, n,
                 "state file %.400s holds another backfill (--since %s --until %s --objects %s): "
                 "finish it with those arguments, or pass --restart to discard it",
                 b->state_path, since, until, objects);
        json_object_put(o);
        return -1;
    }
    if (restart) {
        json_object_put(o);
        return 0;
    }
    snprintf(b->until, sizeof b->until, "%s", until);
    ss_time_parse(b->until, &b->until_usec);
    b->kind_index = (int)jint(o, "kind_index");
    if (b->kind_index < 0 || b->kind_index > b->nkinds)
        b->kind_index = 0;
    snprintf(b->before_id, sizeof b->before_id, "%s", before);
    json_object *pr;
    if (json_object_object_get_ex(o, "produced", &pr))
        for (int k = 0; k < b->nkinds; k++)
            b->produced[k] = (uint64_t)jint(pr, ss_ep_list_name(b->kinds[k]));
    b->pages = (uint64_t)jint(o, "pages");
    b->skipped_unknown = (uint64_t)jint(o, "skipped_unknown");
    b->skipped_invalid = (uint64_t)jint(o, "skipped_invalid");
    json_object_put(o);
    return 1;
}

/* ---- progress ------------------------------------------------------------------------ */

static uint64_t total_produced(const bf_t *b) {
    uint64_t t = 0;
    for (int k = 0; k < b->nkinds; k++)
        t += b->produced[k];
    return t;
}

static void progress(bf_t *b, const rc_walk_t *w, int force) {
    int64_t now = ss_time_mono_usec();
    int64_t every = b->tty ? 500000 : 10000000;
    if (!force && now - b->last_progress < every)
        return;
    b->last_progress = now;
    double el = (double)(now - b->t0_mono) / 1e6;
    double rate = el > 0 ? (double)b->produced_this_run / el : 0;
    /* How far through the period the current list is (newest first). */
    double span = (double)(b->until_usec - b->since_usec), fk = 0;
    if (w && w->last_created_usec && span > 0)
        fk = (double)(b->until_usec - w->last_created_usec) / span;
    fk = fk < 0 ? 0 : (fk > 1 ? 1 : fk);
    double f = ((double)b->kind_index + fk) / (double)b->nkinds;
    char eta[32] = "?";
    if (f > 0.001 && el > 1) {
        long s = (long)(el / f * (1 - f));
        snprintf(eta, sizeof eta, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    }
    const char *kind =
        b->kind_index < b->nkinds ? ss_ep_list_name(b->kinds[b->kind_index]) : "done";
    if (b->tty) {
        fprintf(stderr, "\r\033[Kbackfill %s: %llu objects, %.0f/s, %.0f%% of the period, ETA %s",
                kind, (unsigned long long)total_produced(b), rate, f * 100, eta);
        fflush(stderr);
    } else {
        char objs[32], r[32], pct[16];
        snprintf(objs, sizeof objs, "%llu", (unsigned long long)total_produced(b));
        snprintf(r, sizeof r, "%.0f", rate);
        snprintf(pct, sizeof pct, "%.0f", f * 100);
        ss_log_kv(SS_LOG_INFO, "backfill progress", "list", kind, "objects", objs, "per_second", r,
                  "percent", pct, "eta", eta, NULL);
    }
}

/* ---- the walk ------------------------------------------------------------------------ */

static int bf_page(void *ud, rc_walk_t *w, const ss_ep_list_item_t *items, size_t n, char *errstr,
                   size_t errstr_size) {
    bf_t *b = ud;
    for (size_t i = 0; i < n; i++) {
        if (rc_produce(b->prod, items[i].object, items[i].object_type, RC_SOURCE_BACKFILL,
                       b->request_id, errstr, errstr_size) != 0) {
            char e2[256];
            rc_producer_wait(b->prod, e2, sizeof e2);
            return -1; /* the page again, after a backoff */
        }
    }
    if (rc_producer_wait(b->prod, errstr, errstr_size) != 0)
        return -1;
    /* On Kafka: the cursor may move past this page. */
    b->produced[b->kind_index] += n;
    b->produced_this_run += n;
    b->pages = b->pages + 1;
    snprintf(b->before_id, sizeof b->before_id, "%s", items[n - 1].id);
    b->skipped_unknown = w->skipped_unknown;
    b->skipped_invalid = w->skipped_invalid;
    ss_counter_add(ss_counter("reconcile_backfill_objects_total",
                              "Objects the backfill produced and Kafka acknowledged", NULL),
                   n);
    if (state_save(b, errstr, errstr_size) != 0)
        return -2; /* cannot keep the promise to resume: stop */
    progress(b, w, 0);
    return 0;
}

static int parse_objects(bf_t *b, const char *csv) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", csv);
    b->nkinds = 0;
    b->objects_csv[0] = '\0';
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        ss_ep_list_kind_t k;
        if (strcmp(t, "shipments") == 0)
            k = SS_EP_LIST_SHIPMENTS;
        else if (strcmp(t, "trackers") == 0)
            k = SS_EP_LIST_TRACKERS;
        else
            return -1;
        for (int i = 0; i < b->nkinds; i++)
            if (b->kinds[i] == k)
                return -1;
        if (b->nkinds == MAX_KINDS)
            return -1;
        b->kinds[b->nkinds++] = k;
        size_t l = strlen(b->objects_csv);
        snprintf(b->objects_csv + l, sizeof b->objects_csv - l, "%s%s", l ? "," : "", t);
    }
    return b->nkinds ? 0 : -1;
}

int rc_backfill_main(int argc, char **argv, ss_ep_client_t *ep) {
    bf_t *b = calloc(1, sizeof *b);
    if (!b)
        return RC_EXIT_FAILED;
    const char *since = NULL, *until = NULL, *objects = "shipments,trackers", *state = NULL;
    int restart = 0, rc = RC_EXIT_USAGE;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = strcmp(a, "--since") == 0     ? &since
                           : strcmp(a, "--until") == 0   ? &until
                           : strcmp(a, "--objects") == 0 ? &objects
                           : strcmp(a, "--state") == 0   ? &state
                                                         : NULL;
        if (dst) {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s backfill: %s needs a value; see --help\n", RC_PROG, a);
                goto out;
            }
            *dst = argv[++i];
        } else if (strcmp(a, "--restart") == 0) {
            restart = 1;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            rc = RC_EXIT_OK;
            goto out;
        } else {
            fprintf(stderr, "%s backfill: unexpected argument '%s'; see --help\n", RC_PROG, a);
            goto out;
        }
    }
    if (!since) {
        fprintf(stderr, "%s backfill: --since RFC3339 is required (e.g. --since 2024-01-01)\n",
                RC_PROG);
        goto out;
    }
    if (ss_time_parse(since, &b->since_usec) != 0) {
        fprintf(stderr, "%s backfill: --since %s: expected an RFC 3339 time or a date\n", RC_PROG,
                since);
        goto out;
    }
    b->until_usec = ss_time_now_usec();
    if (until && ss_time_parse(until, &b->until_usec) != 0) {
        fprintf(stderr, "%s backfill: --until %s: expected an RFC 3339 time or a date\n", RC_PROG,
                until);
        goto out;
    }
    if (b->until_usec <= b->since_usec) {
        fprintf(stderr, "%s backfill: --until must be after --since\n", RC_PROG);
        goto out;
    }
    if (parse_objects(b, objects) != 0) {
        fprintf(stderr,
                "%s backfill: --objects %s: expected a comma-separated list of shipments, "
                "trackers\n",
                RC_PROG, objects);
        goto out;
    }
    fmt_rfc3339(b->since_usec, b->since, sizeof b->since);
    fmt_rfc3339(b->until_usec, b->until, sizeof b->until);
    if (state)
        snprintf(b->state_path, sizeof b->state_path, "%s", state);
    else
        snprintf(b->state_path, sizeof b->state_path, "%s/backfill-state.json", g_rc.state_dir);

    char err[1024];
    rc = RC_EXIT_FAILED;
    int loaded = state_load(b, restart, until != NULL, err, sizeof err);
    if (loaded < 0) {
        fprintf(stderr, "%s backfill: %s\n", RC_PROG, err);
        goto out;
    }
    if (loaded == 0 && state_save(b, err, sizeof err) != 0) {
        fprintf(stderr, "%s backfill: cannot keep a cursor (RECONCILE_STATE_DIR / --state): %s\n",
                RC_PROG, err);
        goto out;
    }
    if (loaded)
        ss_log_kv(SS_LOG_INFO, "backfill resumes", "state", b->state_path, "list",
                  b->kind_index < b->nkinds ? ss_ep_list_name(b->kinds[b->kind_index]) : "done",
                  "before_id", b->before_id[0] ? b->before_id : "(newest)", NULL);
    b->prod = rc_producer_new(err, sizeof err);
    if (!b->prod) {
        fprintf(stderr, "%s backfill: Kafka (KAFKA_*): %s\n", RC_PROG, err);
        rc = RC_EXIT_USAGE;
        goto out;
    }
    ss_random_id("backfill-", b->request_id, sizeof b->request_id);
    b->tty = isatty(STDERR_FILENO);
    b->t0_mono = ss_time_mono_usec();
    ss_log_kv(SS_LOG_INFO, "backfill starts", "since", b->since, "until", b->until, "objects",
              b->objects_csv, "state", b->state_path, NULL);

    int wrc = 0;
    rc_walk_t w;
    while (b->kind_index < b->nkinds) {
        memset(&w, 0, sizeof w);
        w.ep = ep;
        w.kind = b->kinds[b->kind_index];
        w.page_size = (int)g_rc.page_size;
        snprintf(w.start, sizeof w.start, "%s", b->since);
        snprintf(w.end, sizeof w.end, "%s", b->until);
        snprintf(w.before_id, sizeof w.before_id, "%s", b->before_id);
        w.skipped_unknown = b->skipped_unknown;
        w.skipped_invalid = b->skipped_invalid;
        wrc = rc_walk_run(&w, bf_page, b, err, sizeof err);
        b->transient_errors += w.transient_errors;
        b->bad_pages += w.bad_pages;
        b->skipped_unknown = w.skipped_unknown;
        b->skipped_invalid = w.skipped_invalid;
        if (wrc != 0)
            break;
        b->kind_index++;
        b->before_id[0] = '\0';
        if (state_save(b, err, sizeof err) != 0) {
            wrc = -1;
            break;
        }
    }
    progress(b, wrc == 0 ? NULL : &w, 1);
    if (b->tty)
        fputc('\n', stderr);

    double el = (double)(ss_time_mono_usec() - b->t0_mono) / 1e6;
    char counts[256] = "";
    for (int k = 0; k < b->nkinds; k++) {
        size_t l = strlen(counts);
        snprintf(counts + l, sizeof counts - l, "%s%s %llu", k ? ", " : "",
                 ss_ep_list_name(b->kinds[k]), (unsigned long long)b->produced[k]);
    }
    const char *how = wrc == 0 ? "complete" : wrc == 1 ? "interrupted" : "FAILED";
    printf("backfill %s: %llu objects (%s) from %s to %s; this run %llu in %.1f s (%.0f/s); "
           "skipped %llu of unknown type, %llu without id; %llu transient errors, %llu bad "
           "pages\n",
           how, (unsigned long long)total_produced(b), counts, b->since, b->until,
           (unsigned long long)b->produced_this_run, el,
           el > 0 ? (double)b->produced_this_run / el : 0.0, (unsigned long long)b->skipped_unknown,
           (unsigned long long)b->skipped_invalid, (unsigned long long)b->transient_errors,
           (unsigned long long)b->bad_pages);
    fflush(stdout);
    if (wrc == 0) {
        char done[600];
        snprintf(done, sizeof done, "%s.done", b->state_path);
        if (rename(b->state_path, done) != 0)
            SS_WARN("could not rename %s to %s: %s", b->state_path, done, strerror(errno));
        rc = RC_EXIT_OK;
    } else if (wrc == 1) {
        fprintf(stderr,
                "%s backfill: interrupted; run the same command again to resume (cursor in %s)\n",
                RC_PROG, b->state_path);
        rc = RC_EXIT_INTERRUPTED;
    } else {
        fprintf(stderr, "%s backfill: %s\n(the cursor in %s resumes after the cause is fixed)\n",
                RC_PROG, err, b->state_path);
        rc = RC_EXIT_FAILED;
    }
out:
    if (b->prod)
        rc_producer_free(b->prod);
    free(b);
    return rc;
}
