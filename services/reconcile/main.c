/* shipstream-reconcile: makes the PostgreSQL copy complete and current.
 * It reads EasyPost and (read-only) PostgreSQL, and produces fresher copies
 * of objects to Kafka; the sync worker stays the only writer of PostgreSQL.
 * See reconcile.h for the parts. */
#include "reconcile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <db/db.h>
#include <envelope/envelope.h>
#include <http/server.h>

#include <common/config.h>
#include <common/log.h>
#include <common/metrics.h>
#include <common/shutdown.h>
#include <common/sstime.h>

rc_config_t g_rc;
static char *g_log_level, *g_log_format;

static const ss_conf_opt_t OPTS[] = {
    {"EASYPOST_API_KEY", SS_CONF_STRING, &g_rc.easypost_api_key, NULL, 0, 0,
     "EasyPost API key (required)", 1},
    {"EASYPOST_API_BASE", SS_CONF_STRING, &g_rc.easypost_api_base, SS_EP_DEFAULT_API_BASE, 0, 0,
     "EasyPost API base URL", 0},
    {"EASYPOST_TIMEOUT_MS", SS_CONF_INT, &g_rc.easypost_timeout_ms, "60000", 100, 600000,
     "total timeout of one EasyPost call", 0},
    {"DATABASE_URL", SS_CONF_STRING, &g_rc.database_url, SS_DB_DEFAULT_URL, 0, 0,
     "PostgreSQL, read only (once, serve; postgresql+asyncpg:// accepted)", 1},
    {"KAFKA_BOOTSTRAP_SERVERS", SS_CONF_STRING, &g_rc.kafka_bootstrap, SS_KAFKA_DEFAULT_BOOTSTRAP,
     0, 0, "Kafka brokers (other KAFKA_* pass through to librdkafka)", 0},
    {"KAFKA_TOPIC_PREFIX", SS_CONF_STRING, &g_rc.topic_prefix, SS_TOPIC_DEFAULT_PREFIX, 0, 0,
     "prefix of the topic names", 0},
    {"RECONCILE_WINDOW_HOURS", SS_CONF_INT, &g_rc.window_hours, "72", 1, 24 * 366,
     "once/serve: objects created in the last this many hours are compared", 0},
    {"RECONCILE_INTERVAL_SECONDS", SS_CONF_INT, &g_rc.interval_s, "900", 1, 7 * 86400,
     "serve: time between the start of two passes", 0},
    {"RECONCILE_MAX_OPEN_TRACKERS", SS_CONF_INT, &g_rc.max_open_trackers, "1000", 0, 1000000,
     "once/serve: trackers not final in PostgreSQL, created before the window, fetched\n     "
     "one by one per pass (newest first; 0 = none)",
     0},
    {"RECONCILE_STATE_DIR", SS_CONF_STRING, &g_rc.state_dir, ".", 0, 0,
     "backfill: folder of the resume cursor backfill-state.json (or --state FILE)", 0},
    {"RECONCILE_BACKFILL_PARALLEL", SS_CONF_INT, &g_rc.backfill_parallel, "4", 1, 32,
     "backfill: the period is cut into this many slices per list, walked by as many\n     "
     "threads (a new backfill only: a resumed one keeps its slices)",
     0},
    {"RECONCILE_BACKFILL_LINGER_MS", SS_CONF_INT, &g_rc.backfill_linger_ms, "50", 0, 1000,
     "backfill: the Kafka producer's linger.ms (passes use 5): fewer, fuller requests\n     "
     "for the broker",
     0},
    {"RECONCILE_PAGE_SIZE", SS_CONF_INT, &g_rc.page_size, "100", 1, 100,
     "objects per EasyPost list page", 0},
    {"RECONCILE_BACKOFF_MAX_MS", SS_CONF_INT, &g_rc.backoff_max_ms, "60000", 100, 3600000,
     "cap of the wait between retries of a transient failure (Retry-After wins)", 0},
    {"LISTEN", SS_CONF_LISTEN, &g_rc.listen, "9103", 0, 0,
     "serve: /health, /ready, /metrics (host:port or port)", 0},
    {"LOG_LEVEL", SS_CONF_STRING, &g_log_level, "info", 0, 0, "debug|info|warn|error", 0},
    {"LOG_FORMAT", SS_CONF_STRING, &g_log_format, "json", 0, 0, "json|text", 0},
};
#define NOPTS (sizeof OPTS / sizeof *OPTS)

static const char SUMMARY[] =
    "Makes the PostgreSQL copy of EasyPost complete and current: reads EasyPost's list\n"
    "endpoints and PostgreSQL (read only) and produces fresher copies to Kafka for the sync\n"
    "worker; nothing is written to PostgreSQL by this binary.\n"
    "\n"
    "Usage:\n"
    "  shipstream-reconcile backfill --since RFC3339 [--until RFC3339]\n"
    "                                [--objects shipments,trackers] [--state FILE] [--restart]\n"
    "      every object EasyPost created in the period, newest first; resumable\n"
    "      (see `backfill --help`).  Exit: 0 complete, 1 failed, 2 usage, 3 interrupted.\n"
    "  shipstream-reconcile once [--window 72h]\n"
    "      one pass: shipments and trackers created in the window (and trackers not final\n"
    "      in PostgreSQL), compared with PostgreSQL; missing or stale ones are produced.\n"
    "      Exit: 0 done (or skipped: another replica holds the lock), 1 failed.\n"
    "  shipstream-reconcile serve\n"
    "      a pass every RECONCILE_INTERVAL_SECONDS, /health /ready /metrics on LISTEN.\n"
    "Only one replica runs a pass at a time (PostgreSQL advisory lock).  Each pass logs one\n"
    "summary line and counts reconcile_checked/missing/stale/repaired/errors_total.";

static void help(FILE *out) {
    ss_conf_help(out, RC_PROG, SUMMARY, OPTS, NOPTS);
}

static int parse_window(const char *s, long long *hours) {
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (!end || end == s || v < 1)
        return -1;
    if (*end == 'h' && end[1] == '\0')
        *hours = v;
    else if (*end == 'd' && end[1] == '\0')
        *hours = v * 24;
    else if (*end == '\0')
        *hours = v;
    else
        return -1;
    return *hours <= 24 * 366 ? 0 : -1;
}

static void pass_log(const rc_pass_stats_t *st, const char *outcome) {
    char c[5][24], secs[24];
    snprintf(c[0], 24, "%llu", (unsigned long long)st->checked);
    snprintf(c[1], 24, "%llu", (unsigned long long)st->missing);
    snprintf(c[2], 24, "%llu", (unsigned long long)st->stale);
    snprintf(c[3], 24, "%llu", (unsigned long long)st->repaired);
    snprintf(c[4], 24, "%llu", (unsigned long long)st->errors);
    snprintf(secs, sizeof secs, "%.3f", st->seconds);
    ss_log_kv(st->failed ? SS_LOG_ERROR : SS_LOG_INFO, "reconcile pass", "outcome", outcome,
              "checked", c[0], "missing", c[1], "stale", c[2], "repaired", c[3], "errors", c[4],
              "seconds", secs, NULL);
    ss_counter_inc(ss_counter("reconcile_passes_total", "Passes by outcome",
                              !strcmp(outcome, "done")      ? "outcome=\"done\""
                              : !strcmp(outcome, "skipped") ? "outcome=\"skipped\""
                                                            : "outcome=\"failed\""));
    if (!strcmp(outcome, "done")) {
        ss_gauge_set(ss_gauge("reconcile_last_pass_timestamp_seconds",
                              "When the last complete pass ended (Unix time)", NULL),
                     (double)ss_time_now_usec() / 1e6);
        ss_gauge_set(
            ss_gauge("reconcile_last_pass_seconds", "Duration of the last complete pass", NULL),
            st->seconds);
        ss_gauge_set(ss_gauge("reconcile_last_pass_repaired",
                              "Objects the last complete pass repaired", NULL),
                     (double)st->repaired);
    }
}

static int run_pass(ss_ep_client_t *ep, rc_producer_t *prod, long long window, int print) {
    rc_pass_stats_t st;
    char err[1024];
    int rc = rc_pass_run(ep, prod, window, &st, err, sizeof err);
    const char *outcome = rc < 0              ? "failed"
                          : rc == 1           ? "interrupted"
                          : st.skipped_locked ? "skipped"
                                              : "done";
    if (rc < 0)
        ss_log_kv(SS_LOG_ERROR, "reconcile pass failed", "error", err, NULL);
    if (st.skipped_locked)
        SS_INFO("another replica holds the reconcile lock: pass skipped");
    pass_log(&st, outcome);
    if (print)
        printf("reconcile %s: checked %llu, missing %llu, stale %llu, repaired %llu, errors "
               "%llu in %.1f s%s%s\n",
               outcome, (unsigned long long)st.checked, (unsigned long long)st.missing,
               (unsigned long long)st.stale, (unsigned long long)st.repaired,
               (unsigned long long)st.errors, st.seconds, rc < 0 ? ": " : "", rc < 0 ? err : "");
    return rc;
}

static rc_producer_t *g_prod;

/* serve without an EasyPost key (a manifest whose Secret has none yet): alive,
 * never ready, reconciling nothing — like the gateway, whose EasyPost routes
 * answer 503 until a key is set. */
static int ready_no_key(void *ud, char *why, size_t n) {
    (void)ud;
    snprintf(why, n, "easypost: EASYPOST_API_KEY is not set");
    return -1;
}

static int ready(void *ud, char *why, size_t n) {
    (void)ud;
    if (rc_pass_db_ready(why, n) != 0)
        return -1;
    if (!rc_producer_connected(g_prod)) {
        snprintf(why, n, "kafka: no broker connection");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (i == 1 && (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))) {
            help(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("%s %s\n", RC_PROG, SS_VERSION);
            return 0;
        }
    }
    if (argc < 2) {
        fprintf(stderr, "%s: missing command (backfill, once or serve); see --help\n", RC_PROG);
        return RC_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    int is_backfill = !strcmp(cmd, "backfill"), is_once = !strcmp(cmd, "once"),
        is_serve = !strcmp(cmd, "serve");
    if (!is_backfill && !is_once && !is_serve) {
        fprintf(stderr, "%s: unknown command '%s' (expected backfill, once or serve)\n", RC_PROG,
                cmd);
        return RC_EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            if (is_backfill)
                return rc_backfill_main(argc - 2, argv + 2, NULL); /* prints usage only */
            help(stdout);
            return RC_EXIT_OK;
        }
    char err[1024];
    if (ss_conf_load(OPTS, NOPTS, err, sizeof err) != 0) {
        fprintf(stderr, "%s: configuration error: %s\n", RC_PROG, err);
        return RC_EXIT_USAGE;
    }
    long long window = g_rc.window_hours;
    if (is_once) {
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--window") && i + 1 < argc) {
                if (parse_window(argv[++i], &window) != 0) {
                    fprintf(stderr, "%s once: --window %s: expected hours like 72h (or 3d)\n",
                            RC_PROG, argv[i]);
                    return RC_EXIT_USAGE;
                }
            } else {
                fprintf(stderr, "%s once: unexpected argument '%s'; see --help\n", RC_PROG,
                        argv[i]);
                return RC_EXIT_USAGE;
            }
        }
    } else if (is_serve && argc > 2) {
        fprintf(stderr, "%s serve: takes no argument, got '%s'\n", RC_PROG, argv[2]);
        return RC_EXIT_USAGE;
    }
    int rc = RC_EXIT_USAGE;
    ss_ep_client_t *ep = NULL;
    ss_http_t *http = NULL;
    if (ss_log_init("reconcile", g_log_level, g_log_format, err, sizeof err) != 0) {
        fprintf(stderr, "%s: configuration error: %s\n", RC_PROG, err);
        goto out;
    }
    if (!g_rc.easypost_api_key && is_serve) {
        ss_log(SS_LOG_ERROR, "EASYPOST_API_KEY is not set: /ready answers 503 and nothing is "
                             "reconciled until it is");
        ss_shutdown_install();
        ss_http_opts_t nk = {.service = "reconcile", .listen = g_rc.listen, .ready = ready_no_key};
        http = ss_http_start(&nk, err, sizeof err);
        if (!http) {
            ss_log(SS_LOG_ERROR, "LISTEN=%s: %s", g_rc.listen, err);
            goto out;
        }
        while (!ss_shutdown_wait(1000))
            ;
        rc = RC_EXIT_OK;
        goto out;
    }
    if (!g_rc.easypost_api_key) {
        ss_log(SS_LOG_ERROR, "configuration error: EASYPOST_API_KEY is not set");
        goto out;
    }
    if (ss_db_url_normalize(g_rc.database_url, g_rc.db_url, sizeof g_rc.db_url, err, sizeof err) !=
        0) {
        ss_log(SS_LOG_ERROR, "configuration error: DATABASE_URL: %s", err);
        goto out;
    }
    for (int t = 0; t < SS_TOPIC__COUNT && t < 6; t++)
        if (ss_topic_name(g_rc.topic_prefix, (ss_topic_t)t, g_rc.topics[t],
                          sizeof g_rc.topics[t]) != 0) {
            ss_log(SS_LOG_ERROR, "configuration error: KAFKA_TOPIC_PREFIX is too long");
            goto out;
        }
    /* Lists are retried here briefly (Retry-After up to a minute); longer
     * waits are the walk's, which never gives up on a transient error. */
    ss_ep_config_t ec = {.api_base = g_rc.easypost_api_base,
                         .api_key = g_rc.easypost_api_key,
                         .timeout_ms = g_rc.easypost_timeout_ms,
                         .max_retries = 3,
                         .backoff_base_ms = 200,
                         .backoff_max_ms = 5000,
                         .retry_after_max_ms = 60000,
                         .max_body = 64u * 1024 * 1024};
    ep = ss_ep_client_new(&ec, err, sizeof err);
    if (!ep) {
        ss_log(SS_LOG_ERROR, "configuration error: EASYPOST_API_BASE: %s", err);
        goto out;
    }
    ss_shutdown_install();

    if (is_backfill) {
        rc = rc_backfill_main(argc - 2, argv + 2, ep);
        goto out;
    }
    g_prod = rc_producer_new(RC_PASS_LINGER_MS, err, sizeof err);
    if (!g_prod) {
        ss_log(SS_LOG_ERROR, "configuration error: %s", err);
        goto out;
    }
    if (is_once) {
        int prc = run_pass(ep, g_prod, window, 1);
        rc = prc < 0 ? RC_EXIT_FAILED : prc == 1 ? RC_EXIT_INTERRUPTED : RC_EXIT_OK;
        goto out;
    }

    ss_http_opts_t ho = {.service = "reconcile", .listen = g_rc.listen, .ready = ready};
    http = ss_http_start(&ho, err, sizeof err);
    if (!http) {
        ss_log(SS_LOG_ERROR, "LISTEN=%s: %s", g_rc.listen, err);
        goto out;
    }
    char iv[24], wh[24];
    snprintf(iv, sizeof iv, "%lld", g_rc.interval_s);
    snprintf(wh, sizeof wh, "%lld", window);
    ss_log_kv(SS_LOG_INFO, "reconcile serving", "listen", g_rc.listen, "interval_seconds", iv,
              "window_hours", wh, "easypost", g_rc.easypost_api_base, NULL);
    for (;;) {
        int64_t t0 = ss_time_mono_usec();
        run_pass(ep, g_prod, window, 0);
        if (ss_shutdown_requested())
            break;
        int64_t next = t0 + g_rc.interval_s * 1000000LL - ss_time_mono_usec();
        if (next > 0 && rc_sleep((long)(next / 1000)))
            break;
    }
    SS_INFO("stopping");
    rc = RC_EXIT_OK;
out:
    ss_http_stop(http);
    rc_producer_free(g_prod);
    rc_pass_close();
    ss_ep_client_free(ep);
    ss_ep_thread_cleanup();
    ss_conf_free(OPTS, NOPTS);
    return rc;
}
