/* GET /db/pipeline: the pipeline's health for the dashboard.
 *
 *   consumer_lag  per consumer group: messages not yet applied = the
 *                 partitions' end offsets (asked of Kafka, one batched
 *                 ListOffsets) minus the next offsets the sync worker
 *                 committed in kafka_offsets; null when Kafka does not answer.
 *   dead_letters  messages held in the dlq topic (end minus start offsets).
 *   sync          when the sync worker last committed a batch (kafka_offsets).
 *   refresh_runs  the last analytics_refresh_log rows, newest first.
 *
 * PostgreSQL builds the JSON of what it stores; the Kafka numbers are
 * appended here.  Kafka is asked with a deadline (GW_PIPELINE_KAFKA_MS):
 * while it is down the endpoint still answers, with nulls and the reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "gateway.h"
#include "http/query.h"
#include "http/server.h"

#define GW_PIPELINE_KAFKA_MS 800
#define GW_PIPELINE_MAX_ROWS 4096

#define APPEND_LIT(b, lit) ss_buf_append((b), (lit), sizeof(lit) - 1)

static const char offsets_sql[] =
    "SELECT consumer_group, topic, partition, next_offset FROM kafka_offsets "
    "ORDER BY consumer_group, topic, partition LIMIT 4097";

static const char pipeline_sql[] =
    "SELECT json_build_object("
    " 'sync', (SELECT json_build_object('last_commit_at', max(updated_at),"
    "     'age_seconds', round(extract(epoch FROM now() - max(updated_at))::numeric, 3),"
    "     'partitions', count(*)) FROM kafka_offsets),"
    " 'refresh_runs', coalesce((SELECT json_agg(r ORDER BY r.id DESC) FROM ("
    "     SELECT id, view_name, started_at, finished_at, duration_ms, rows, concurrent,"
    "            outcome, error FROM analytics_refresh_log ORDER BY id DESC LIMIT 12) r),"
    "     '[]'::json),"
    " 'refresh_failures_24h', (SELECT count(*) FROM analytics_refresh_log"
    "     WHERE outcome = 'failed' AND started_at > now() - interval '24 hours'))::text";

/* Fills each element's .offset with the partition's end (latest = -1) or
 * start (earliest = -2) offset.  Returns 0, or -1 with errstr. */
static int kafka_offsets_at(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts, int64_t which,
                            char *errstr, size_t errstr_size) {
    for (int i = 0; i < parts->cnt; i++)
        parts->elems[i].offset = which; /* ListOffsets: -1 latest, -2 earliest */
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, parts, GW_PIPELINE_KAFKA_MS);
    if (err) {
        snprintf(errstr, errstr_size, "%s", rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

/* The dlq topic's partitions, from the cluster's metadata (all topics: asking
 * for one topic by name could make the broker create it). */
static int dlq_partitions(rd_kafka_t *rk, const char *topic, rd_kafka_topic_partition_list_t *out,
                          char *errstr, size_t errstr_size) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, GW_PIPELINE_KAFKA_MS);
    if (err) {
        snprintf(errstr, errstr_size, "%s", rd_kafka_err2str(err));
        return -1;
    }
    for (int t = 0; t < md->topic_cnt; t++) {
        if (strcmp(md->topics[t].topic, topic) != 0)
            continue;
        for (int p = 0; p < md->topics[t].partition_cnt; p++)
            rd_kafka_topic_partition_list_add(out, topic, md->topics[t].partitions[p].id);
    }
    rd_kafka_metadata_destroy(md);
    return 0;
}

/* Appends "consumer_lag" and "dead_letters" (Kafka's side) to b. */
static void append_kafka(ss_buf_t *b, PGresult *offs) {
    rd_kafka_t *rk = g_gw.producer ? ss_kafka_producer_handle(g_gw.producer) : NULL;
    char err[256] = "";
    int n = PQntuples(offs);
    if (n > GW_PIPELINE_MAX_ROWS)
        n = GW_PIPELINE_MAX_ROWS;
    const char *dlq = g_gw.topics[SS_TOPIC_DLQ];
    rd_kafka_topic_partition_list_t *ends = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
    rd_kafka_topic_partition_list_t *dlq_end = rd_kafka_topic_partition_list_new(16);
    rd_kafka_topic_partition_list_t *dlq_start = NULL;
    int kafka_ok = rk != NULL;
    if (!rk)
        snprintf(err, sizeof err, "no Kafka producer");
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(ends, PQgetvalue(offs, i, 1),
                                          (int32_t)atoi(PQgetvalue(offs, i, 2)));
    if (kafka_ok && n > 0 && kafka_offsets_at(rk, ends, -1, err, sizeof err) != 0)
        kafka_ok = 0;
    int dlq_ok = kafka_ok && dlq_partitions(rk, dlq, dlq_end, err, sizeof err) == 0;
    if (dlq_ok && dlq_end->cnt > 0) {
        dlq_start = rd_kafka_topic_partition_list_copy(dlq_end);
        dlq_ok = kafka_offsets_at(rk, dlq_end, -1, err, sizeof err) == 0 &&
                 kafka_offsets_at(rk, dlq_start, -2, err, sizeof err) == 0;
    }
    if (!dlq_ok)
        kafka_ok = 0;

    /* consumer_lag: {"kafka":"ok"|"unavailable","error":…,"total":N,"groups":[…]} */
    ss_buf_appendf(
        b, ",\"consumer_lag\":{\"kafka\":\"%s\",\"error\":", kafka_ok ? "ok" : "unavailable");
    if (kafka_ok)
        APPEND_LIT(b, "null");
    else
        ss_buf_append_json_str(b, err);
    long long total = 0;
    int total_known = kafka_ok;
    ss_buf_t groups = {0};
    for (int i = 0; i < n;) {
        const char *g = PQgetvalue(offs, i, 0);
        long long lag = 0;
        int known = kafka_ok, parts = 0;
        for (; i < n && strcmp(PQgetvalue(offs, i, 0), g) == 0; i++, parts++) {
            const rd_kafka_topic_partition_t *e = &ends->elems[i];
            if (e->err || e->offset < 0) {
                known = 0;
                continue;
            }
            long long next = strtoll(PQgetvalue(offs, i, 3), NULL, 10);
            if (e->offset > next)
                lag += e->offset - next;
        }
        if (groups.len)
            APPEND_LIT(&groups, ",");
        APPEND_LIT(&groups, "{\"group\":");
        ss_buf_append_json_str(&groups, g);
        if (known)
            ss_buf_appendf(&groups, ",\"lag\":%lld,\"partitions\":%d}", lag, parts);
        else
            ss_buf_appendf(&groups, ",\"lag\":null,\"partitions\":%d}", parts);
        total += lag;
        total_known = total_known && known;
    }
    if (total_known)
        ss_buf_appendf(b, ",\"total\":%lld,\"groups\":[", total);
    else
        APPEND_LIT(b, ",\"total\":null,\"groups\":[");
    if (groups.len)
        ss_buf_append(b, groups.data, groups.len);
    ss_buf_free(&groups);

    /* dead_letters: {"topic":…,"count":N|null} */
    APPEND_LIT(b, "]},\"dead_letters\":{\"topic\":");
    ss_buf_append_json_str(b, dlq);
    if (dlq_ok) {
        long long held = 0;
        for (int i = 0; dlq_start && i < dlq_end->cnt; i++) {
            const rd_kafka_topic_partition_t *hi = &dlq_end->elems[i], *lo = &dlq_start->elems[i];
            if (!hi->err && !lo->err && hi->offset > lo->offset && lo->offset >= 0)
                held += hi->offset - lo->offset;
        }
        ss_buf_appendf(b, ",\"count\":%lld,\"partitions\":%d}", held, dlq_end->cnt);
    } else {
        APPEND_LIT(b, ",\"count\":null,\"partitions\":null}");
    }
    rd_kafka_topic_partition_list_destroy(ends);
    rd_kafka_topic_partition_list_destroy(dlq_end);
    if (dlq_start)
        rd_kafka_topic_partition_list_destroy(dlq_start);
}

int gw_handle_db_pipeline(struct mg_connection *c, void *ud) {
    (void)ud;
    int status;
    if (!gw_db_begin(c, &status))
        return status;
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (strcmp(ri->local_uri, "/db/pipeline") != 0)
        return ss_http_send_error(c, 404, "not_found", "no such endpoint");
    static const char *const known[] = {NULL};
    char bad[64];
    if (ri->query_string &&
        !ss_query_all_known(ri->query_string, strlen(ri->query_string), known, bad, sizeof bad)) {
        char msg[128];
        snprintf(msg, sizeof msg, "invalid parameter '%s': unknown parameter", bad);
        return ss_http_send_error(c, 400, "invalid_parameter", msg);
    }
    char err[512];
    int unavailable;
    PGresult *offs = gw_db_query(offsets_sql, 0, NULL, &unavailable, err, sizeof err);
    PGresult *doc = offs ? gw_db_query(pipeline_sql, 0, NULL, &unavailable, err, sizeof err) : NULL;
    if (!doc) {
        PQclear(offs);
        if (unavailable)
            return ss_http_send_error_h(c, 503, "database_unavailable", "PostgreSQL is unavailable",
                                        "Retry-After: 2\r\n");
        ss_log_kv(SS_LOG_ERROR, "pipeline query failed", "error", err, NULL);
        return ss_http_send_error(c, 500, "internal", "the query failed");
    }
    /* PostgreSQL's object without its closing brace, then Kafka's members. */
    ss_buf_t b = {0};
    int len = PQgetlength(doc, 0, 0);
    ss_buf_append(&b, PQgetvalue(doc, 0, 0), len > 0 ? (size_t)len - 1 : 0);
    append_kafka(&b, offs);
    APPEND_LIT(&b, "}");
    int st = b.data ? ss_http_send_json(c, 200, b.data, b.len, NULL)
                    : ss_http_send_error(c, 500, "internal", "out of memory");
    ss_buf_free(&b);
    PQclear(offs);
    PQclear(doc);
    return st;
}
