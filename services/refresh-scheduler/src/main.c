/* shipstream-refresh-scheduler: keeps the analytics materialized views fresh.
 *
 * HTTP (LISTEN, default 9102): /health, /ready (200 while PostgreSQL is
 * reachable, with this replica's role: leader or standby), /metrics, and
 * POST /refresh (Authorization: Bearer <one of GATEWAY_API_KEYS>):
 *   202 {"status":"accepted",...}  the leader starts a refresh of every view
 *                                  now (asynchronously; each view's outcome
 *                                  lands in analytics_refresh_log and metrics)
 *   409 standby                    another replica holds the refresh lock
 *   503 database_unavailable       not connected to PostgreSQL
 *   401 unauthorized               missing or wrong key */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"
#include "common/shutdown.h"
#include "common/util.h"
#include "db/db.h"
#include "http/server.h"
#include "scheduler.h"

#define PROG "shipstream-refresh-scheduler"

static char *g_listen, *g_log_level, *g_log_format, *g_api_keys;
static char *g_mode[RS_NPART]; /* RETENTION_<TABLE>_MODE */
static int g_auth = 1;
static char **g_keys;
static size_t g_nkeys;

static int handle_ready(struct mg_connection *conn, void *ud) {
    (void)ud;
    const char *role = atomic_load(&rs_state.leader) ? "leader" : "standby";
    char body[192];
    if (!atomic_load(&rs_state.db_ok)) {
        int n = snprintf(body, sizeof body,
                         "{\"status\":\"unavailable\",\"role\":\"%s\",\"error\":{\"code\":"
                         "\"not_ready\",\"message\":\"postgresql: not connected\"}}",
                         role);
        return ss_http_send_json(conn, 503, body, (size_t)n, NULL);
    }
    int n = snprintf(body, sizeof body, "{\"status\":\"ready\",\"role\":\"%s\"}", role);
    return ss_http_send_json(conn, 200, body, (size_t)n, NULL);
}

static int handle_refresh(struct mg_connection *conn, void *ud) {
    (void)ud;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (strcmp(ri->request_method, "POST") != 0)
        return ss_http_send_error_h(conn, 405, "method_not_allowed", "use POST /refresh",
                                    "Allow: POST\r\n");
    if (g_auth && !ss_http_bearer_ok(conn, (const char *const *)g_keys, g_nkeys))
        return ss_http_send_error_h(conn, 401, "unauthorized", "missing or invalid bearer token",
                                    "WWW-Authenticate: Bearer\r\n");
    if (!atomic_load(&rs_state.db_ok))
        return ss_http_send_error_h(conn, 503, "database_unavailable",
                                    "not connected to PostgreSQL; retry later",
                                    "Retry-After: 5\r\n");
    if (!atomic_load(&rs_state.leader))
        return ss_http_send_error(conn, 409, "standby",
                                  "this replica is on standby: another replica holds the "
                                  "refresh lock and refreshes the views; send the request there "
                                  "or retry");
    rs_request_refresh();
    ss_buf_t b = {0};
    ss_buf_appendf(&b, "{\"status\":\"accepted\",\"role\":\"leader\",\"views\":[");
    for (int i = 0; i < RS_NVIEWS; i++) {
        if (i)
            ss_buf_append(&b, ",", 1);
        ss_buf_append_json_str(&b, rs_view_names[i]);
    }
    ss_buf_appendf(&b, "],\"message\":\"every view is refreshed now, one after the other; "
                       "outcomes go to analytics_refresh_log\"}");
    int st = ss_http_send_json(conn, 202, b.data, b.len, NULL);
    ss_buf_free(&b);
    return st;
}

int main(int argc, char **argv) {
    rs_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    const ss_conf_opt_t opts[] = {
        {"DATABASE_URL", SS_CONF_STRING, &cfg.database_url, SS_DB_DEFAULT_URL, 0, 0,
         "PostgreSQL URL (postgresql+asyncpg:// accepted)", 1},
        {"LISTEN", SS_CONF_LISTEN, &g_listen, "9102", 0, 0, "HTTP listen address", 0},
        {"LOG_LEVEL", SS_CONF_STRING, &g_log_level, "info", 0, 0, "debug|info|warn|error", 0},
        {"LOG_FORMAT", SS_CONF_STRING, &g_log_format, "json", 0, 0, "json|text", 0},
        {"GATEWAY_API_KEYS", SS_CONF_STRING, &g_api_keys, NULL, 0, 0,
         "comma-separated bearer keys accepted by POST /refresh", 1},
        {"GATEWAY_AUTH", SS_CONF_BOOL, &g_auth, "on", 0, 0,
         "off: POST /refresh without a key (refuses to start without keys otherwise)", 0},
        {"REFRESH_INTERVAL_SECONDS", SS_CONF_INT, &cfg.interval_s, "3600", 1, 604800,
         "refresh every view at least this often", 0},
        {"REFRESH_MIN_INTERVAL_SECONDS", SS_CONF_INT, &cfg.min_interval_s, "30", 0, 86400,
         "after a change notification, refresh at most once per this many seconds", 0},
        {"REFRESH_STATEMENT_TIMEOUT_MS", SS_CONF_INT, &cfg.statement_timeout_ms, "300000", 0,
         86400000, "statement_timeout of each refresh (0 = none)", 0},
        {"REFRESH_RETRY_BASE_MS", SS_CONF_INT, &cfg.retry_base_ms, "5000", 10, 3600000,
         "first retry delay after a failed view refresh (doubles per failure)", 0},
        {"REFRESH_RETRY_MAX_MS", SS_CONF_INT, &cfg.retry_max_ms, "300000", 10, 86400000,
         "cap of the retry delay", 0},
        {"REFRESH_LOCK_RETRY_SECONDS", SS_CONF_INT, &cfg.lock_retry_s, "5", 1, 3600,
         "standby: how often to try to take the refresh lock", 0},
        {"HOUSEKEEPING_INTERVAL_SECONDS", SS_CONF_INT, &cfg.hk_interval_s, "300", 1, 86400,
         "how often old rows are pruned", 0},
        {"HOUSEKEEPING_BATCH_SIZE", SS_CONF_INT, &cfg.hk_batch, "5000", 1, 1000000,
         "rows per DELETE statement", 0},
        {"PROCESSED_EVENTS_RETENTION_DAYS", SS_CONF_INT, &cfg.processed_events_days, "7", 7, 3650,
         "keep processed_events this long (at least 7 days)", 0},
        {"IDEMPOTENCY_KEYS_RETENTION_HOURS", SS_CONF_INT, &cfg.idempotency_hours, "24", 24, 87600,
         "delete idempotency_keys past expires_at or older than this", 0},
        {"REFRESH_LOG_RETENTION_DAYS", SS_CONF_INT, &cfg.refresh_log_days, "30", 1, 3650,
         "keep analytics_refresh_log rows this long", 0},
        {"PARTITIONS_MONTHS_AHEAD", SS_CONF_INT, &cfg.months_ahead, "3", 0, 24,
         "monthly partitions of tracking_events and easypost_events exist this many months "
         "ahead of the current one",
         0},
        {"RETENTION_TRACKING_EVENTS_MONTHS", SS_CONF_INT, &cfg.retention_months[0], "0", 0, 1200,
         "keep tracking_events this many whole months before the current one (0 = forever)", 0},
        {"RETENTION_TRACKING_EVENTS_MODE", SS_CONF_STRING, &g_mode[0], "drop", 0, 0,
         "drop|detach: months past retention are detached, then dropped or kept as tables", 0},
        {"RETENTION_EASYPOST_EVENTS_MONTHS", SS_CONF_INT, &cfg.retention_months[1], "0", 0, 1200,
         "keep easypost_events this many whole months before the current one (0 = forever)", 0},
        {"RETENTION_EASYPOST_EVENTS_MODE", SS_CONF_STRING, &g_mode[1], "drop", 0, 0,
         "drop|detach (as RETENTION_TRACKING_EVENTS_MODE)", 0},
        {"SHUTDOWN_GRACE_MS", SS_CONF_INT, &cfg.shutdown_grace_ms, "5000", 0, 600000,
         "on SIGTERM, let the statement in flight finish this long, then cancel it", 0},
    };
    const size_t nopts = sizeof opts / sizeof opts[0];
    int conf_rc =
        ss_conf_main(argc, argv, PROG,
                     "Refreshes the analytics materialized views (REFRESH ... CONCURRENTLY) soon "
                     "after data changes and on a schedule; one active replica at a time.",
                     opts, nopts);
    if (conf_rc >= 0)
        return conf_rc;

    char err[512];
    int rc = 0;
    ss_http_t *http = NULL;
    if (ss_log_init(PROG, g_log_level, g_log_format, err, sizeof err) != 0) {
        fprintf(stderr, "%s: configuration error: %s\n", PROG, err);
        rc = 2;
        goto out;
    }
    char url[2048];
    if (ss_db_url_normalize(cfg.database_url, url, sizeof url, err, sizeof err) != 0) {
        ss_log_kv(SS_LOG_ERROR, "configuration error", "variable", "DATABASE_URL", "error", err,
                  NULL);
        rc = 2;
        goto out;
    }
    if (g_auth) {
        g_keys = ss_http_split_keys(g_api_keys, &g_nkeys);
        if (!g_keys) {
            ss_log_kv(SS_LOG_ERROR, "out of memory", "variable", "GATEWAY_API_KEYS", NULL);
            rc = 1;
            goto out;
        }
        if (g_nkeys == 0) {
            ss_log_kv(SS_LOG_ERROR,
                      "configuration error: GATEWAY_API_KEYS is not set: POST /refresh needs at "
                      "least one key (or set GATEWAY_AUTH=off)",
                      "variable", "GATEWAY_API_KEYS", NULL);
            rc = 2;
            goto out;
        }
    } else {
        ss_log(SS_LOG_WARN, "GATEWAY_AUTH=off: POST /refresh accepts requests without a key");
    }
    if (rs_state_init() != 0) {
        ss_log_kv(SS_LOG_ERROR, "cannot create the wake pipe", NULL);
        rc = 1;
        goto out;
    }
    for (int t = 0; t < RS_NPART; t++) {
        if (strcmp(g_mode[t], "drop") != 0 && strcmp(g_mode[t], "detach") != 0) {
            ss_log_kv(SS_LOG_ERROR, "configuration error: expected drop or detach", "variable",
                      t == 0 ? "RETENTION_TRACKING_EVENTS_MODE" : "RETENTION_EASYPOST_EVENTS_MODE",
                      "value", g_mode[t], NULL);
            rc = 2;
            goto out;
        }
        cfg.keep_detached[t] = strcmp(g_mode[t], "detach") == 0;
    }
    if (cfg.retry_max_ms < cfg.retry_base_ms)
        cfg.retry_max_ms = cfg.retry_base_ms;

    ss_shutdown_install();
    ss_http_opts_t ho = {.service = PROG, .listen = g_listen, .num_threads = 4};
    http = ss_http_start(&ho, err, sizeof err);
    if (!http) {
        ss_log_kv(SS_LOG_ERROR, "cannot start HTTP", "error", err, NULL);
        rc = 1;
        goto out;
    }
    /* Replaces the scaffold's /ready: same answer, plus this replica's role. */
    ss_http_route(http, "/ready$", "/ready", handle_ready, NULL);
    ss_http_route(http, "/refresh$", "/refresh", handle_refresh, NULL);

    char iv[32], mi[32];
    snprintf(iv, sizeof iv, "%lld", cfg.interval_s);
    snprintf(mi, sizeof mi, "%lld", cfg.min_interval_s);
    ss_log_kv(SS_LOG_INFO, "started", "interval_s", iv, "min_interval_s", mi, NULL);

    rc = rs_run(&cfg);
    ss_log(SS_LOG_INFO, "stopped");

out:
    ss_http_stop(http);
    free(g_keys);
    ss_conf_free(opts, nopts);
    return rc;
}
