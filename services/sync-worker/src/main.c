/* shipstream-sync-worker: consumes the shipments, trackers, addresses,
 * batches and events topics and keeps PostgreSQL an exact, current copy.
 *
 * HTTP (LISTEN, default 9101): /health, /ready (503 while PostgreSQL is
 * unreachable or the consumer is not running), /metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <common/config.h>
#include <common/log.h>
#include <common/shutdown.h>
#include <db/db.h>
#include <envelope/envelope.h>
#include <http/server.h>
#include <kafka/kafka.h>

#include "worker.h"

#define PROG "shipstream-sync-worker"

int main(int argc, char **argv) {
    sw_config_t cfg;
    char *listen = NULL, *log_level = NULL, *log_format = NULL;
    memset(&cfg, 0, sizeof(cfg));
    const ss_conf_opt_t opts[] = {
        {"DATABASE_URL", SS_CONF_STRING, &cfg.database_url, SS_DB_DEFAULT_URL, 0, 0,
         "PostgreSQL URL (postgresql+asyncpg:// accepted)", 1},
        {"KAFKA_BOOTSTRAP_SERVERS", SS_CONF_STRING, &cfg.bootstrap, SS_KAFKA_DEFAULT_BOOTSTRAP, 0,
         0, "Kafka brokers", 0},
        {"KAFKA_TOPIC_PREFIX", SS_CONF_STRING, &cfg.prefix, SS_TOPIC_DEFAULT_PREFIX, 0, 0,
         "prefix of the topic names", 0},
        {"KAFKA_GROUP_ID", SS_CONF_STRING, &cfg.group, "shipstream-sync-worker", 0, 0,
         "consumer group (also the key of kafka_offsets)", 0},
        {"LISTEN", SS_CONF_LISTEN, &listen, "9101", 0, 0, "HTTP listen address", 0},
        {"LOG_LEVEL", SS_CONF_STRING, &log_level, "info", 0, 0, "debug|info|warn|error", 0},
        {"LOG_FORMAT", SS_CONF_STRING, &log_format, "json", 0, 0, "json|text", 0},
        {"SYNC_BATCH_SIZE", SS_CONF_INT, &cfg.batch_size, "1000", 1, 100000,
         "messages per batch (one transaction)", 0},
        {"SYNC_BATCH_MAX_MS", SS_CONF_INT, &cfg.batch_max_ms, "200", 1, 60000,
         "a batch is applied at the latest this long after its first message", 0},
        {"SYNC_RETRY_BASE_MS", SS_CONF_INT, &cfg.retry_base_ms, "100", 1, 600000,
         "first retry delay when PostgreSQL or the DLQ write fails", 0},
        {"SYNC_RETRY_MAX_MS", SS_CONF_INT, &cfg.retry_max_ms, "10000", 1, 3600000,
         "cap of the retry delay (exponential backoff with jitter)", 0},
        {"SYNC_DLQ_TIMEOUT_MS", SS_CONF_INT, &cfg.dlq_timeout_ms, "10000", 100, 600000,
         "wait this long for the broker to acknowledge a DLQ write before retrying", 0},
        {"SYNC_KAFKA_COMMIT_MS", SS_CONF_INT, &cfg.kafka_commit_ms, "1000", 10, 600000,
         "commit applied offsets to the Kafka group (lag tools, KEDA) at most this often", 0},
    };
    const size_t nopts = sizeof(opts) / sizeof(opts[0]);
    int conf_rc =
        ss_conf_main(argc, argv, PROG,
                     "Consumes the shipstream topics and applies them to PostgreSQL, one "
                     "transaction per batch, exactly once in effect. Other KAFKA_* variables are "
                     "passed to librdkafka (KAFKA_FETCH_MAX_BYTES -> fetch.max.bytes).",
                     opts, nopts);
    if (conf_rc >= 0)
        return conf_rc;

    char err[512];
    if (ss_log_init(PROG, log_level, log_format, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: configuration error: %s\n", PROG, err);
        return 2;
    }
    char url[2048];
    if (ss_db_url_normalize(cfg.database_url, url, sizeof(url), err, sizeof(err)) != 0) {
        ss_log_kv(SS_LOG_ERROR, "configuration error", "variable", "DATABASE_URL", "error", err,
                  NULL);
        return 2;
    }
    free(cfg.database_url);
    cfg.database_url = strdup(url);
    ss_shutdown_install();

    ss_http_opts_t hopts = {
        .service = PROG,
        .listen = listen,
        .num_threads = 4,
        .ready = sw_ready,
        .ready_ud = NULL,
    };
    ss_http_t *http = ss_http_start(&hopts, err, sizeof(err));
    if (!http) {
        ss_log_kv(SS_LOG_ERROR, "cannot listen", "variable", "LISTEN", "value", listen, "error",
                  err, NULL);
        return 2;
    }
    int rc = sw_run(&cfg);
    ss_http_stop(http);
    free(cfg.database_url);
    cfg.database_url = NULL;
    ss_conf_free(opts, nopts);
    return rc;
}
