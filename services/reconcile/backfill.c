/* `shipstream-reconcile backfill`: every shipment and tracker EasyPost
 * created in [since, until], newest first, produced to Kafka (source
 * "backfill").
 *
 * Resuming.  The cursor (which list, and the before_id to continue from) is
 * kept in a small JSON state file, replaced atomically (write, fsync,
 * rename, fsync of the folder) after each page, and only once Kafka has
 * acknowledged every object of that page (acks=all).  A run stopped by
 * SIGINT/SIGTERM, a crash or a power cut therefore resumes at the first page
 * not known to be on Kafka; at most two pages per slice are produced twice
 * (the one in flight and the one queued behind it, see bf_settle), which the
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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include <common/backoff.h>
#include <common/log.h>
#include <common/metrics.h>
#include <common/shutdown.h>
#include <common/sstime.h>
#include <common/util.h>

#define MAX_KINDS  2
#define MAX_SLICES 64

/* A part of the period for one list, walked newest first by one thread. */
typedef struct {
    ss_ep_list_kind_t kind;
    char start[40], end[40];
    int64_t start_usec, end_usec;
    char before_id[128];
    int done, taken;
    uint64_t produced;
    int64_t last_created_usec;
} slice_t;

typedef struct {
    /* arguments */
    char since[40], until[40];
    int64_t since_usec, until_usec;
    ss_ep_list_kind_t kinds[MAX_KINDS];
    int nkinds;
    char objects_csv[64];
    char state_path[512];
    ss_ep_client_t *ep;
    /* cursor: the slices (saved) */
    slice_t slices[MAX_SLICES];
    int nslices;
    uint64_t pages, skipped_unknown, skipped_invalid, transient_errors, bad_pages;
    /* run */
    pthread_mutex_t mu; /* slices, counters, state file, progress */
    volatile int stop;  /* a thread failed: the others end their walk */
    int failed, interrupted;
    char err[1024];
    char request_id[64];
    int64_t t0_mono;
    uint64_t produced_this_run;
    int64_t last_progress;
    int tty;
    rc_producer_t *prod; /* one Kafka producer; each thread has a share */
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
            "  The period is cut into RECONCILE_BACKFILL_PARALLEL slices per list, walked at\n"
            "  once.  Stopped (SIGINT, SIGTERM, crash), the same command resumes where it\n"
            "  stopped: the cursors are in FILE (default $RECONCILE_STATE_DIR/\n"
            "  backfill-state.json), written after each page Kafka acknowledged.  --restart\n"
            "  discards a state file left by another backfill.\n"
            "  Exit: 0 complete, 1 failed, 2 usage, 3 interrupted.\n",
            RC_PROG);
}

static uint64_t total_produced(const bf_t *b) {
    uint64_t t = 0;
    for (int i = 0; i < b->nslices; i++)
        t += b->slices[i].produced;
    return t;
}

/* ---- state file (caller holds mu, or runs alone) --------------------------------- */

static int state_save(const bf_t *b, char *errstr, size_t n) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "version", json_object_new_int(2));
    json_object_object_add(o, "since", json_object_new_string(b->since));
    json_object_object_add(o, "until", json_object_new_string(b->until));
    json_object_object_add(o, "objects", json_object_new_string(b->objects_csv));
    json_object *arr = json_object_new_array();
    for (int i = 0; i < b->nslices; i++) {
        const slice_t *sl = &b->slices[i];
        json_object *so = json_object_new_object();
        json_object_object_add(so, "list", json_object_new_string(ss_ep_list_name(sl->kind)));
        json_object_object_add(so, "start", json_object_new_string(sl->start));
        json_object_object_add(so, "end", json_object_new_string(sl->end));
        json_object_object_add(so, "before_id", json_object_new_string(sl->before_id));
        json_object_object_add(so, "done", json_object_new_boolean(sl->done));
        json_object_object_add(so, "produced", json_object_new_int64((int64_t)sl->produced));
        json_object_array_add(arr, so);
    }
    json_object_object_add(o, "slices", arr);
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

/* Cuts [since, until] into parallel slices per list. */
static void slices_new(bf_t *b, int parallel) {
    b->nslices = 0;
    int64_t span = b->until_usec - b->since_usec;
    if (parallel < 1)
        parallel = 1;
    if (parallel * b->nkinds > MAX_SLICES)
        parallel = MAX_SLICES / b->nkinds;
    /* whole seconds: EasyPost's datetimes; the bounds are inclusive, so
     * an object on a boundary is produced twice at worst (harmless) */
    for (int k = 0; k < b->nkinds; k++) {
        for (int j = 0; j < parallel; j++) {
            slice_t *sl = &b->slices[b->nslices++];
            memset(sl, 0, sizeof *sl);
            sl->kind = b->kinds[k];
            /* newest first: slice 0 is the most recent part */
            sl->end_usec = b->until_usec - span / parallel * j;
            sl->start_usec =
                j == parallel - 1 ? b->since_usec : b->until_usec - span / parallel * (j + 1);
            fmt_rfc3339(sl->start_usec, sl->start, sizeof sl->start);
            fmt_rfc3339(sl->end_usec, sl->end, sizeof sl->end);
        }
    }
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
    static char buf[65536];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    json_object *o = json_tokener_parse(buf), *arr = NULL;
    const char *since = o ? jstr(o, "since") : NULL, *until = o ? jstr(o, "until") : NULL;
    const char *objects = o ? jstr(o, "objects") : NULL;
    if (!o || jint(o, "version") != 2 || !since || !until || !objects ||
        !json_object_object_get_ex(o, "slices", &arr) ||
        !json_object_is_type(arr, json_type_array) || json_object_array_length(arr) == 0 ||
        json_object_array_length(arr) > MAX_SLICES) {
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
    if (!same || restart) {
        if (!restart)
            snprintf(errstr, n,
                     "state file %.400s holds another backfill (--since %s --until %s --objects "
                     "%s): finish it with those arguments, or pass --restart to discard it",
                     b->state_path, since, until, objects);
        json_object_put(o);
        return restart ? 0 : -1;
    }
    snprintf(b->until, sizeof b->until, "%s", until);
    ss_time_parse(b->until, &b->until_usec);
    b->nslices = 0;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *so = json_object_array_get_idx(arr, i), *d = NULL;
        const char *list = jstr(so, "list"), *st = jstr(so, "start"), *en = jstr(so, "end"),
                   *bid = jstr(so, "before_id");
        slice_t *sl = &b->slices[b->nslices];
        memset(sl, 0, sizeof *sl);
        if (!list || !st || !en || !bid || ss_time_parse(st, &sl->start_usec) != 0 ||
            ss_time_parse(en, &sl->end_usec) != 0) {
            snprintf(errstr, n, "state file %.400s: slice %zu is damaged: pass --restart",
                     b->state_path, i);
            json_object_put(o);
            return -1;
        }
        sl->kind = strcmp(list, "trackers") == 0 ? SS_EP_LIST_TRACKERS : SS_EP_LIST_SHIPMENTS;
        snprintf(sl->start, sizeof sl->start, "%s", st);
        snprintf(sl->end, sizeof sl->end, "%s", en);
        snprintf(sl->before_id, sizeof sl->before_id, "%s", bid);
        sl->done = json_object_object_get_ex(so, "done", &d) && json_object_get_boolean(d);
        sl->produced = (uint64_t)jint(so, "produced");
        b->nslices++;
    }
    b->pages = (uint64_t)jint(o, "pages");
    b->skipped_unknown = (uint64_t)jint(o, "skipped_unknown");
    b->skipped_invalid = (uint64_t)jint(o, "skipped_invalid");
    json_object_put(o);
    return 1;
}

/* ---- progress (caller holds mu) -------------------------------------------------- */

static void progress(bf_t *b, int force) {
    int64_t now = ss_time_mono_usec();
    int64_t every = b->tty ? 500000 : 10000000;
    if (!force && now - b->last_progress < every)
        return;
    b->last_progress = now;
    double el = (double)(now - b->t0_mono) / 1e6;
    double rate = el > 0 ? (double)b->produced_this_run / el : 0;
    /* How far through its part of the period each slice is (newest first). */
    double f = 0;
    for (int i = 0; i < b->nslices; i++) {
        const slice_t *sl = &b->slices[i];
        double span = (double)(sl->end_usec - sl->start_usec), fk = 0;
        if (sl->done)
            fk = 1;
        else if (sl->last_created_usec && span > 0)
            fk = (double)(sl->end_usec - sl->last_created_usec) / span;
        f += fk < 0 ? 0 : (fk > 1 ? 1 : fk);
    }
    f /= b->nslices ? b->nslices : 1;
    char eta[32] = "?";
    if (f > 0.001 && el > 1) {
        long s = (long)(el / f * (1 - f));
        snprintf(eta, sizeof eta, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    }
    if (b->tty) {
        fprintf(stderr, "\r\033[Kbackfill: %llu objects, %.0f/s, %.0f%% of the period, ETA %s",
                (unsigned long long)total_produced(b), rate, f * 100, eta);
        fflush(stderr);
    } else {
        char objs[32], r[32], pct[16];
        snprintf(objs, sizeof objs, "%llu", (unsigned long long)total_produced(b));
        snprintf(r, sizeof r, "%.0f", rate);
        snprintf(pct, sizeof pct, "%.0f", f * 100);
        ss_log_kv(SS_LOG_INFO, "backfill progress", "objects", objs, "per_second", r, "percent",
                  pct, "eta", eta, NULL);
    }
}

/* ---- the walks ------------------------------------------------------------------- */

/* Pages are pipelined: a page's objects are queued, then the previous page's
 * acknowledgements are awaited and its cursor saved while this one travels
 * (Kafka's round trip overlaps the next list call instead of adding to it).
 * The cursor thus lags one page behind what was queued: a run that stops
 * resumes at most two pages early, and the sync worker's version guard makes
 * the copies harmless. */
typedef struct {
    bf_t *b;
    slice_t *sl;
    rc_producer_t *prod;
    /* the page queued on Kafka, not yet acknowledged */
    size_t held_n;
    char held_before[128];
    int64_t held_created;
} bf_ctx_t;

/* Waits for the held page's acknowledgements and moves the slice's saved
 * cursor past it.  0 done (or nothing held), -1 not acknowledged (the saved
 * cursor stays before it: errstr), -2 the run cannot go on (errstr): Kafka
 * refused an object for good (the cursor stays before it too), or the state
 * file cannot be written. */
static int bf_settle(bf_ctx_t *c, rc_walk_t *w, char *errstr, size_t errstr_size) {
    bf_t *b = c->b;
    size_t n = c->held_n;
    if (!n)
        return 0;
    c->held_n = 0;
    int ack = rc_producer_wait_first(c->prod, n, errstr, errstr_size);
    if (ack == RC_ACK_REFUSED) {
        char why[256];
        snprintf(why, sizeof why, "%s", errstr);
        snprintf(errstr, errstr_size,
                 "Kafka refused objects of %s for good (%.160s); waiting will not fix it",
                 ss_ep_list_name(c->sl->kind), why);
        return -2;
    }
    if (ack != RC_ACK_OK)
        return -1;
    /* On Kafka: the cursor may move past this page. */
    pthread_mutex_lock(&b->mu);
    c->sl->produced += n;
    snprintf(c->sl->before_id, sizeof c->sl->before_id, "%s", c->held_before);
    if (c->held_created)
        c->sl->last_created_usec = c->held_created;
    b->produced_this_run += n;
    b->pages++;
    b->skipped_unknown += w->skipped_unknown;
    b->skipped_invalid += w->skipped_invalid;
    w->skipped_unknown = w->skipped_invalid = 0; /* counted */
    int src = state_save(b, errstr, errstr_size);
    progress(b, 0);
    pthread_mutex_unlock(&b->mu);
    ss_counter_add(ss_counter("reconcile_backfill_objects_total",
                              "Objects the backfill produced and Kafka acknowledged", NULL),
                   n);
    return src == 0 ? 0 : -2; /* cannot keep the promise to resume: stop */
}

/* The held page was not acknowledged: the walk goes back to the saved cursor. */
static void bf_rewind(bf_ctx_t *c, rc_walk_t *w) {
    pthread_mutex_lock(&c->b->mu);
    snprintf(w->before_id, sizeof w->before_id, "%s", c->sl->before_id);
    pthread_mutex_unlock(&c->b->mu);
    w->rewound = 1;
}

static int bf_page(void *ud, rc_walk_t *w, const ss_ep_list_item_t *items, size_t n, char *errstr,
                   size_t errstr_size) {
    bf_ctx_t *c = ud;
    bf_t *b = c->b;
    for (size_t i = 0; i < n; i++) {
        if (rc_produce(c->prod, items[i].raw, items[i].raw_len, 1, items[i].object_type,
                       RC_SOURCE_BACKFILL, b->request_id, errstr, errstr_size) != 0) {
            char e2[256];
            int src = bf_settle(c, w, e2, sizeof e2);
            if (src == -2) {
                snprintf(errstr, errstr_size, "%s", e2);
                return -2;
            }
            rc_producer_wait(c->prod, e2, sizeof e2); /* this page's part: asked again */
            if (src == -1)
                bf_rewind(c, w);
            return -1; /* the page again, after a backoff */
        }
    }
    int src = bf_settle(c, w, errstr, errstr_size);
    if (src == -2)
        return -2;
    if (src == -1) {
        char e2[256];
        rc_producer_wait(c->prod, e2, sizeof e2);
        bf_rewind(c, w);
        return -1;
    }
    c->held_n = n;
    snprintf(c->held_before, sizeof c->held_before, "%s", items[n - 1].id);
    c->held_created = items[n - 1].created_at_usec;
    return 0;
}

static void *bf_thread(void *arg) {
    bf_t *b = arg;
    char err[1024];
    rc_producer_t *prod = rc_producer_share(b->prod, err, sizeof err);
    pthread_mutex_lock(&b->mu);
    if (!prod) {
        snprintf(b->err, sizeof b->err, "Kafka (KAFKA_*): %.900s", err);
        b->failed = 1;
        b->stop = 1;
    }
    while (prod && !b->stop) {
        slice_t *sl = NULL;
        for (int i = 0; i < b->nslices && !sl; i++)
            if (!b->slices[i].done && !b->slices[i].taken)
                sl = &b->slices[i];
        if (!sl)
            break;
        sl->taken = 1;
        rc_walk_t w;
        memset(&w, 0, sizeof w);
        w.ep = b->ep;
        w.kind = sl->kind;
        w.page_size = (int)g_rc.page_size;
        w.stop = &b->stop;
        snprintf(w.start, sizeof w.start, "%s", sl->start);
        snprintf(w.end, sizeof w.end, "%s", sl->end);
        snprintf(w.before_id, sizeof w.before_id, "%s", sl->before_id);
        pthread_mutex_unlock(&b->mu);

        bf_ctx_t c = {.b = b, .sl = sl, .prod = prod};
        ss_backoff_t bo = {.base_ms = 500, .max_ms = (int)g_rc.backoff_max_ms};
        int wrc;
        for (;;) {
            wrc = rc_walk_run(&w, bf_page, &c, err, sizeof err);
            /* the last page queued: complete once it is acknowledged */
            char e2[256];
            int src = bf_settle(&c, &w, e2, sizeof e2);
            if (src == -2 && wrc >= 0) {
                snprintf(err, sizeof err, "%s", e2);
                wrc = -1;
            }
            if (src != -1 || wrc != 0)
                break;
            ss_log(SS_LOG_WARN, "last page of %s not taken (%s); again from the cursor",
                   ss_ep_list_name(sl->kind), e2);
            bf_rewind(&c, &w);
            w.transient_errors++;
            if (rc_sleep(ss_backoff_next(&bo))) {
                wrc = 1;
                break;
            }
        }

        pthread_mutex_lock(&b->mu);
        b->transient_errors += w.transient_errors;
        b->bad_pages += w.bad_pages;
        b->skipped_unknown += w.skipped_unknown;
        b->skipped_invalid += w.skipped_invalid;
        if (wrc == 0) {
            sl->done = 1;
            if (state_save(b, err, sizeof err) != 0)
                wrc = -1;
        }
        if (wrc == 1)
            b->interrupted = 1;
        if (wrc < 0 && !b->failed) {
            snprintf(b->err, sizeof b->err, "%s", err);
            b->failed = 1;
            b->stop = 1;
        }
        if (wrc != 0)
            break;
    }
    pthread_mutex_unlock(&b->mu);
    rc_producer_free(prod);
    ss_ep_thread_cleanup();
    return NULL;
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
    pthread_mutex_init(&b->mu, NULL);
    b->ep = ep;
    int loaded = state_load(b, restart, until != NULL, err, sizeof err);
    if (loaded < 0) {
        fprintf(stderr, "%s backfill: %s\n", RC_PROG, err);
        goto out;
    }
    if (loaded == 0) {
        slices_new(b, (int)g_rc.backfill_parallel);
        if (state_save(b, err, sizeof err) != 0) {
            fprintf(stderr,
                    "%s backfill: cannot keep a cursor (RECONCILE_STATE_DIR / --state): %s\n",
                    RC_PROG, err);
            goto out;
        }
    } else {
        int left = 0;
        for (int i = 0; i < b->nslices; i++)
            left += !b->slices[i].done;
        char sl[16], ob[32];
        snprintf(sl, sizeof sl, "%d", left);
        snprintf(ob, sizeof ob, "%llu", (unsigned long long)total_produced(b));
        ss_log_kv(SS_LOG_INFO, "backfill resumes", "state", b->state_path, "slices_left", sl,
                  "objects_before", ob, NULL);
    }
    ss_random_id("backfill-", b->request_id, sizeof b->request_id);
    b->tty = isatty(STDERR_FILENO);
    b->t0_mono = ss_time_mono_usec();
    ss_log_kv(SS_LOG_INFO, "backfill starts", "since", b->since, "until", b->until, "objects",
              b->objects_csv, "state", b->state_path, NULL);

    b->prod = rc_producer_new((int)g_rc.backfill_linger_ms, err, sizeof err);
    if (!b->prod) {
        fprintf(stderr, "%s backfill: Kafka (KAFKA_*): %s\n", RC_PROG, err);
        goto out;
    }
    int nthreads = (int)g_rc.backfill_parallel;
    if (nthreads > b->nslices)
        nthreads = b->nslices;
    pthread_t th[32];
    int started = 0;
    for (int i = 0; i < nthreads && i < 32; i++)
        if (pthread_create(&th[i], NULL, bf_thread, b) == 0)
            started++;
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    rc_producer_free(b->prod); /* every message was waited for by its thread */
    b->prod = NULL;
    int complete = started > 0;
    for (int i = 0; i < b->nslices; i++)
        complete &= b->slices[i].done;
    int wrc = complete ? 0 : b->failed || started == 0 ? -1 : 1;
    if (started == 0)
        snprintf(b->err, sizeof b->err, "could not start a thread");
    pthread_mutex_lock(&b->mu);
    progress(b, 1);
    pthread_mutex_unlock(&b->mu);
    if (b->tty)
        fputc('\n', stderr);

    double el = (double)(ss_time_mono_usec() - b->t0_mono) / 1e6;
    char counts[256] = "";
    for (int k = 0; k < b->nkinds; k++) {
        uint64_t t = 0;
        for (int i = 0; i < b->nslices; i++)
            if (b->slices[i].kind == b->kinds[k])
                t += b->slices[i].produced;
        size_t l = strlen(counts);
        snprintf(counts + l, sizeof counts - l, "%s%s %llu", k ? ", " : "",
                 ss_ep_list_name(b->kinds[k]), (unsigned long long)t);
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
                RC_PROG, b->err, b->state_path);
        rc = RC_EXIT_FAILED;
    }
out:
    free(b);
    return rc;
}
