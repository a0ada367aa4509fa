/* The sync worker's loop (see worker.h).
 *
 *   fill a batch (SYNC_BATCH_SIZE messages or SYNC_BATCH_MAX_MS)
 *   -> parse + map every message; the unparseable/unmappable are poison
 *   -> DLQ the poison (wait for the broker's ack)
 *   -> apply in one transaction (rows, processed_events, kafka_offsets)
 *        data error (22/23): bisect until the bad message stands alone, DLQ it
 *        retryable/other: pause, back off, reconnect, retry the same batch
 *   -> commit the offsets to Kafka too (async, for the usual lag tools and
 *      KEDA), at most every SYNC_KAFKA_COMMIT_MS and not within that long of
 *      a rebalance: librdkafka treats a commit the broker refuses with
 *      ILLEGAL_GENERATION (one sent while the group moves on) as a lost
 *      assignment and revokes every partition, a cooperative one too.
 *
 * Pipelined: a complete batch goes to an apply thread (one ss_sync_apply, one
 * transaction) while the next one is polled and mapped; a batch is handed over
 * only after the previous one committed, its poison is dead-lettered first, and a
 * failed batch is retried on the synchronous path above before anything after it.
 * The session keeps synchronous_commit as configured (the benchmark's cluster
 * already runs with it off; nothing here depends on it). */
#include "worker.h"

#include <pthread.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <common/backoff.h>
#include <common/log.h>
#include <common/metrics.h>
#include <common/shutdown.h>
#include <common/sstime.h>
#include <common/util.h>
#include <db/db.h>
#include <envelope/envelope.h>
#include <kafka/kafka.h>
#include <sync/apply.h>
#include <sync/map.h>

#define NTOPICS        5
#define REASON_SIZE    512
#define LAG_EVERY_USEC 1000000
#define IDLE_PING_USEC 1000000

static atomic_int g_db_up;
static atomic_int g_consumer_up;

int sw_ready(void *ud, char *why, size_t why_size) {
    (void)ud;
    if (!atomic_load(&g_db_up)) {
        snprintf(why, why_size, "postgresql: unreachable");
        return -1;
    }
    if (!atomic_load(&g_consumer_up)) {
        snprintf(why, why_size, "kafka: consumer not running");
        return -1;
    }
    return 0;
}

typedef struct {
    char topic[256];
    int32_t partition;
    int64_t next; /* next offset applied, -1 unknown */
    int64_t sent; /* next offset last committed to Kafka (or known there) */
} part_state_t;

/* One batch: the messages, their envelopes and mapped rows. */
typedef struct {
    size_t n;
    rd_kafka_message_t **kmsgs;
    ss_envelope_t *envs;
    ss_sync_msg_t *msgs;
    char (*reason)[REASON_SIZE]; /* poison: why */
    unsigned char *dlq_done;     /* poison already acknowledged by the DLQ */
    ss_sync_rows_t rows;
    size_t committed; /* msgs[0, committed) are in PostgreSQL */
} batch_t;

typedef struct {
    const sw_config_t *cfg;
    char topics[NTOPICS][256];
    char dlq_topic[256];
    ss_db_conn_t *dbc; /* libs/db: reconnects, prepares the apply statements */
    ss_sync_db_t db;
    ss_kafka_consumer_t *consumer;
    ss_kafka_producer_t *dlq;
    ss_backoff_t backoff;
    int fatal; /* out of memory: stop without applying the current batch */

    size_t cap;  /* messages per batch */
    batch_t b;   /* the batch being filled (or retried synchronously) */
    int revoked; /* set by on_revoke: drop the batch */

    /* Pipelining: while PostgreSQL applies batch `fl` on the apply thread (one
     * ss_sync_apply, the same single transaction as the synchronous path), the main
     * thread polls and maps the next batch into `b`.  Only the apply thread touches
     * conn/db while inflight; the main thread joins it before any other use of the
     * connection (next batch, rebalance callbacks, idle check, shutdown).  Batches are
     * applied strictly one after the other, in consumption order. */
    batch_t fl;
    int inflight;       /* apply thread started, not joined */
    int fl_pending;     /* fl joined (or running): its outcome not handled yet */
    int fl_lost;        /* a batch before b was abandoned: b must not be applied */
    atomic_int fl_done; /* the apply thread has finished */
    pthread_t fl_thread;
    ss_db_class_t fl_cls;
    ss_sync_stats_t fl_st;
    char fl_err[1024];
    int64_t fl_t0;

    /* messages polled while paused (should not happen; never dropped) */
    rd_kafka_message_t **carry;
    size_t ncarry, carry_cap;

    part_state_t *parts;
    size_t nparts, parts_cap;
    int64_t last_lag_usec, last_db_usec;
    int64_t last_commit_usec; /* Kafka commit or rebalance callback, monotonic */

    ss_counter_t *consumed, *duplicates, *stale, *applied[NTOPICS];
    ss_histogram_t *batch_size, *batch_duration;
    ss_gauge_t *newest_age, *db_up;
} worker_t;

/* ---- PostgreSQL connection ---- */

static void db_set_up(worker_t *w, int up) {
    atomic_store(&g_db_up, up);
    ss_gauge_set(w->db_up, up);
}

/* Connects when needed (libs/db prepares the apply statements on every new
 * connection).  Returns 0 when connected: a statement that could not be
 * prepared is reported by the apply with its class. */
static int db_ensure(worker_t *w) {
    uint64_t gen = ss_db_conn_generation(w->dbc);
    char err[512];
    ss_db_err_t e = ss_db_conn_ensure(w->dbc, err, sizeof(err));
    if (!ss_db_conn_pg(w->dbc)) {
        db_set_up(w, 0);
        ss_log_kv(SS_LOG_WARN, "postgresql connect failed", "error", err, NULL);
        return -1;
    }
    if (ss_db_conn_generation(w->dbc) != gen)
        ss_log(SS_LOG_INFO, "postgresql connected");
    if (e != SS_DB_ERR_NONE)
        ss_log_kv(SS_LOG_WARN, "postgresql: statements not prepared", "error", err, "class",
                  ss_db_class_name(ss_db_conn_class(w->dbc)), NULL);
    db_set_up(w, 1);
    return 0;
}

/* ---- partitions (lag) ---- */

static part_state_t *part_find(worker_t *w, const char *topic, int32_t partition, int add) {
    for (size_t i = 0; i < w->nparts; i++)
        if (w->parts[i].partition == partition && strcmp(w->parts[i].topic, topic) == 0)
            return &w->parts[i];
    if (!add)
        return NULL;
    if (w->nparts == w->parts_cap) {
        size_t cap = w->parts_cap ? w->parts_cap * 2 : 64;
        part_state_t *p = realloc(w->parts, cap * sizeof(*p));
        if (!p)
            return NULL;
        w->parts = p;
        w->parts_cap = cap;
    }
    part_state_t *p = &w->parts[w->nparts++];
    snprintf(p->topic, sizeof(p->topic), "%s", topic);
    p->partition = partition;
    p->next = -1;
    p->sent = -1;
    return p;
}

static void lag_update(worker_t *w, int force) {
    int64_t now = ss_time_mono_usec();
    if (!force && now - w->last_lag_usec < LAG_EVERY_USEC)
        return;
    w->last_lag_usec = now;
    rd_kafka_t *rk = ss_kafka_consumer_handle(w->consumer);
    rd_kafka_topic_partition_list_t *mine = NULL;
    if (rd_kafka_assignment(rk, &mine) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ss_gauge_set(ss_gauge("sync_partitions_assigned", "Partitions this worker holds now", NULL),
                     mine->cnt);
        rd_kafka_topic_partition_list_destroy(mine);
    }
    for (size_t i = 0; i < w->nparts; i++) {
        part_state_t *p = &w->parts[i];
        int64_t lo, hi;
        if (p->next < 0 ||
            rd_kafka_get_watermark_offsets(rk, p->topic, p->partition, &lo, &hi) != 0 || hi < 0)
            continue;
        char labels[400];
        snprintf(labels, sizeof(labels), "topic=\"%s\",partition=\"%d\"", p->topic,
                 (int)p->partition);
        ss_gauge_set(ss_gauge("sync_consumer_lag", "Messages behind the high watermark", labels),
                     (double)(hi > p->next ? hi - p->next : 0));
    }
}

/* ---- what a rebalance does to each partition, in the log ---- */

#define RANGES_SIZE 4096

/* The topic without KAFKA_TOPIC_PREFIX ("trackers"). */
static const char *short_topic(const worker_t *w, const char *topic) {
    size_t n = strlen(w->cfg->prefix);
    return strncmp(topic, w->cfg->prefix, n) == 0 ? topic + n : topic;
}

static void ranges_add(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void ranges_add(char *buf, size_t size, const char *fmt, ...) {
    size_t len = strlen(buf);
    if (len + 4 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size - len)
        snprintf(buf + size - 4, 4, "...");
}

/* "trackers[3]@100-199,shipments[0]@7-7": the offsets of messages m[0, n) per
 * partition (first and last seen, in consumption order). */
static const char *msg_ranges(const worker_t *w, rd_kafka_message_t *const *m, size_t n, char *buf,
                              size_t size) {
    buf[0] = '\0';
    unsigned char *done = calloc(n ? n : 1, 1);
    for (size_t i = 0; i < n; i++) {
        if (done && done[i])
            continue;
        int64_t lo = m[i]->offset, hi = m[i]->offset;
        for (size_t j = i + 1; done && j < n; j++)
            if (!done[j] && m[j]->partition == m[i]->partition && m[j]->rkt == m[i]->rkt) {
                done[j] = 1;
                if (m[j]->offset < lo)
                    lo = m[j]->offset;
                if (m[j]->offset > hi)
                    hi = m[j]->offset;
            }
        ranges_add(buf, size, "%s%s[%d]@%lld-%lld", buf[0] ? "," : "",
                   short_topic(w, rd_kafka_topic_name(m[i]->rkt)), (int)m[i]->partition,
                   (long long)lo, (long long)hi);
    }
    free(done);
    return buf;
}

/* Says which messages are given up (they are read again from kafka_offsets, by
 * this worker or the partition's next owner). */
static void log_dropped(const worker_t *w, const char *what, rd_kafka_message_t *const *m,
                        size_t n) {
    if (n == 0)
        return;
    char buf[RANGES_SIZE];
    ss_log_kv(SS_LOG_INFO, what, SS_KV_INT("messages", (long long)n), "ranges",
              msg_ranges(w, m, n, buf, sizeof(buf)), NULL);
}

/* ---- rebalance hooks ---- */

static void carry_clear(void *wp);
static void fl_join(worker_t *w);
static int fl_settle(worker_t *w, int final);

static int on_assign(void *ud, rd_kafka_topic_partition_list_t *parts) {
    worker_t *w = ud;
    char err[512];
    fl_join(w); /* the apply thread owns the connection until joined */
    if (db_ensure(w) < 0)
        return -1; /* retried by the consumer; we never start at a guessed offset */
    const char **topics = calloc((size_t)parts->cnt + 1, sizeof(*topics));
    int32_t *pn = calloc((size_t)parts->cnt + 1, sizeof(*pn));
    int64_t *offs = calloc((size_t)parts->cnt + 1, sizeof(*offs));
    int rc = -1;
    if (!topics || !pn || !offs)
        goto done;
    for (int i = 0; i < parts->cnt; i++) {
        topics[i] = parts->elems[i].topic;
        pn[i] = parts->elems[i].partition;
    }
    if (ss_sync_load_offsets(ss_db_conn_pg(w->dbc), w->cfg->group, topics, pn, offs,
                             (size_t)parts->cnt, err, sizeof(err)) < 0) {
        ss_log_kv(SS_LOG_WARN, "kafka_offsets read failed; assignment retried", "error", err, NULL);
        if (PQstatus(ss_db_conn_pg(w->dbc)) != CONNECTION_OK)
            db_set_up(w, 0);
        goto done;
    }
    for (int i = 0; i < parts->cnt; i++) {
        parts->elems[i].offset = offs[i] >= 0 ? offs[i] : RD_KAFKA_OFFSET_BEGINNING;
        part_state_t *p = part_find(w, topics[i], pn[i], 1);
        if (p)
            p->next = p->sent = offs[i]; /* taken as known to Kafka: a batch moves past it */
    }
    w->last_commit_usec = ss_time_mono_usec(); /* no commit while the group settles */
    char msg[96], from[RANGES_SIZE] = "";
    for (int i = 0; i < parts->cnt; i++)
        ranges_add(from, sizeof(from), "%s%s[%d]@%lld", i ? "," : "", short_topic(w, topics[i]),
                   (int)pn[i], (long long)offs[i]);
    snprintf(msg, sizeof(msg), "assigned %d partition(s), starting from kafka_offsets", parts->cnt);
    ss_log_kv(SS_LOG_INFO, msg, "offsets", from, NULL); /* -1: the beginning */
    atomic_store(&g_consumer_up, 1);
    rc = 0;
done:
    free(topics);
    free(pn);
    free(offs);
    return rc;
}

static void on_revoke(void *ud, const rd_kafka_topic_partition_list_t *parts) {
    worker_t *w = ud;
    /* The batch in flight finishes (commits or rolls back) before the partitions are
     * given up, as a synchronous apply would have; its outcome is handled later. */
    fl_join(w);
    w->revoked = 1;
    /* Messages carried so far belong to the old assignment; anything polled
     * after this point belongs to the new one and is kept. */
    log_dropped(w, "revoke: messages polled while paused dropped", w->carry, w->ncarry);
    carry_clear(w);
    /* Forget lag gauges of partitions we no longer own. */
    for (int i = 0; i < parts->cnt; i++) {
        part_state_t *p = part_find(w, parts->elems[i].topic, parts->elems[i].partition, 0);
        if (p) {
            char labels[400];
            snprintf(labels, sizeof(labels), "topic=\"%s\",partition=\"%d\"", p->topic,
                     (int)p->partition);
            ss_gauge_set(
                ss_gauge("sync_consumer_lag", "Messages behind the high watermark", labels), 0);
            p->next = p->sent = -1;
        }
    }
    w->last_commit_usec = ss_time_mono_usec(); /* no commit while the group settles */
    ss_log(SS_LOG_INFO, "revoked %d partition(s); uncommitted batch dropped", parts->cnt);
}

/* ---- the batch ---- */

static void batch_reset(batch_t *b) {
    for (size_t i = 0; i < b->n; i++) {
        ss_envelope_clear(&b->envs[i]);
        rd_kafka_message_destroy(b->kmsgs[i]);
    }
    b->n = 0;
    b->committed = 0;
    ss_sync_rows_reset(&b->rows);
}

static void batch_clear(worker_t *w) {
    batch_reset(&w->b);
}

static int batch_alloc(batch_t *b, size_t cap) {
    memset(b, 0, sizeof(*b));
    ss_sync_rows_init(&b->rows);
    b->kmsgs = calloc(cap, sizeof(*b->kmsgs));
    b->envs = calloc(cap, sizeof(*b->envs));
    b->msgs = calloc(cap, sizeof(*b->msgs));
    b->reason = calloc(cap, sizeof(*b->reason));
    b->dlq_done = calloc(cap, 1);
    return b->kmsgs && b->envs && b->msgs && b->reason && b->dlq_done ? 0 : -1;
}

static void batch_free(batch_t *b) {
    batch_reset(b);
    ss_sync_rows_free(&b->rows);
    free(b->kmsgs);
    free(b->envs);
    free(b->msgs);
    free(b->reason);
    free(b->dlq_done);
    memset(b, 0, sizeof(*b));
}

static void batch_swap(worker_t *w) {
    batch_t t = w->b;
    w->b = w->fl;
    w->fl = t;
}

static void carry_clear(void *wp) {
    worker_t *w = wp;
    for (size_t i = 0; i < w->ncarry; i++)
        rd_kafka_message_destroy(w->carry[i]);
    w->ncarry = 0;
}

/* Partitions still assigned after a revoke (the cooperative protocol revokes
 * some and keeps the rest) had messages in the dropped batch: they are read
 * again from what PostgreSQL has applied (kafka_offsets; messages applied
 * meanwhile are skipped as duplicates).  Without PostgreSQL, from the last
 * offset this worker committed, which is never past what was applied.
 * Returns 0, or -1 when a seek failed (the caller retries). */
static int rewind_kept(worker_t *w) {
    rd_kafka_t *rk = ss_kafka_consumer_handle(w->consumer);
    rd_kafka_topic_partition_list_t *kept = NULL;
    if (rd_kafka_assignment(rk, &kept) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    int rc = 0, n = kept->cnt;
    const char **topics = calloc((size_t)n + 1, sizeof(*topics));
    int32_t *pn = calloc((size_t)n + 1, sizeof(*pn));
    int64_t *offs = calloc((size_t)n + 1, sizeof(*offs));
    char err[512];
    if (!topics || !pn || !offs) {
        rc = -1;
        goto done;
    }
    for (int i = 0; i < n; i++) {
        topics[i] = kept->elems[i].topic;
        pn[i] = kept->elems[i].partition;
        part_state_t *p = part_find(w, topics[i], pn[i], 0);
        offs[i] = p ? p->next : -1;
    }
    if (n > 0 && db_ensure(w) == 0 &&
        ss_sync_load_offsets(ss_db_conn_pg(w->dbc), w->cfg->group, topics, pn, offs, (size_t)n, err,
                             sizeof(err)) < 0)
        ss_log_kv(SS_LOG_WARN, "kafka_offsets read failed; rewinding to the last commit", "error",
                  err, NULL);
    char to[RANGES_SIZE] = "";
    for (int i = 0; i < n; i++)
        ranges_add(to, sizeof(to), "%s%s[%d]@%lld", i ? "," : "", short_topic(w, topics[i]),
                   (int)pn[i], (long long)offs[i]);
    if (n > 0)
        ss_log_kv(SS_LOG_INFO, "rewinding the partitions kept after the revoke", "offsets", to,
                  NULL);
    for (int i = 0; i < n; i++) {
        int64_t o = offs[i] >= 0 ? offs[i] : RD_KAFKA_OFFSET_BEGINNING;
        if (ss_kafka_consumer_seek(w->consumer, topics[i], pn[i], o, err, sizeof(err)) < 0) {
            ss_log_kv(SS_LOG_WARN, "rewind after a partial revoke failed", "error", err, NULL);
            rc = -1;
        }
    }
    if (n > 0)
        ss_log(SS_LOG_INFO,
               "kept %d partition(s) after the revoke; re-reading them from kafka_offsets", n);
done:
    free(topics);
    free(pn);
    free(offs);
    rd_kafka_topic_partition_list_destroy(kept);
    return rc;
}

/* After a revoke the batch belongs to the next owner (it resumes from
 * kafka_offsets).  Messages polled after the revoke are from the new
 * assignment: the caller keeps them. */
static int check_revoked(worker_t *w) {
    if (!w->revoked)
        return 0;
    /* The batch in flight finished before the revoke went through (on_revoke joined
     * it): settle it (metrics, no Kafka commit, no retry), then drop the one being
     * filled. */
    fl_settle(w, 0);
    w->revoked = 0;
    w->fl_lost = 0;
    log_dropped(w, "revoke: batch dropped", w->b.kmsgs, w->b.n);
    batch_clear(w);
    /* The dropped batch also held messages of partitions this worker keeps
     * (cooperative protocol): read them again, or they would be skipped. */
    int tries = 0;
    while (rewind_kept(w) != 0 && !ss_shutdown_requested()) {
        if (++tries == 50) {
            /* Never skip: stop, and the next start resumes from kafka_offsets. */
            ss_log(SS_LOG_ERROR, "cannot re-read the partitions kept after a revoke; stopping");
            w->fatal = 1;
            ss_shutdown_request();
            break;
        }
        ss_shutdown_wait(100);
    }
    return 1;
}

static void poison(worker_t *w, size_t i, const char *fmt, const char *detail) {
    w->b.msgs[i].poison = 1;
    w->b.msgs[i].event_id = NULL;
    snprintf(w->b.reason[i], REASON_SIZE, fmt, detail);
}

/* Adds a consumed message to the batch (takes ownership of m). */
static void batch_add(worker_t *w, rd_kafka_message_t *m) {
    size_t i = w->b.n++;
    w->b.kmsgs[i] = m;
    memset(&w->b.envs[i], 0, sizeof(w->b.envs[i]));
    ss_sync_msg_t *s = &w->b.msgs[i];
    memset(s, 0, sizeof(*s));
    s->topic = rd_kafka_topic_name(m->rkt);
    s->partition = m->partition;
    s->offset = m->offset;
    w->b.dlq_done[i] = 0;
    w->b.reason[i][0] = '\0';
    ss_counter_inc(w->consumed);

    char err[400];
    ss_envelope_err_t perr = ss_envelope_parse(&w->b.envs[i], m->payload, m->len, err, sizeof(err));
    if (perr != SS_ENVELOPE_OK) {
        poison(w, i, perr == SS_ENVELOPE_ERR_JSON ? "invalid_json: %s" : "invalid_envelope: %s",
               err);
        return;
    }
    int rc =
        ss_sync_map(&w->b.rows, &w->b.envs[i], m->payload, m->len, (uint32_t)i, err, sizeof(err));
    if (rc == -1) {
        poison(w, i, "unmappable: %s", err);
        ss_envelope_clear(&w->b.envs[i]);
        return;
    }
    if (rc < 0) {
        /* Out of memory: not the message's fault, and it cannot be applied: stop
         * without applying this batch; the next start resumes from kafka_offsets. */
        ss_log(SS_LOG_ERROR, "out of memory mapping a message; stopping");
        w->fatal = 1;
        ss_shutdown_request();
        return;
    }
    s->event_id = w->b.envs[i].event_id;
    s->received_at_usec = w->b.envs[i].received_at_usec;
    s->kind = (int)ss_envelope_topic(&w->b.envs[i]);
}

/* Sleeps ms while serving the consumer (paused: keeps the group membership
 * and runs rebalances).  Returns -1 on shutdown or revoke. */
static int wait_serving(worker_t *w, int ms) {
    int64_t deadline = ss_time_mono_usec() + (int64_t)ms * 1000;
    for (;;) {
        if (ss_shutdown_requested())
            return -1;
        int64_t left = (deadline - ss_time_mono_usec()) / 1000;
        if (left <= 0)
            return 0;
        rd_kafka_message_t *m = ss_kafka_consumer_poll(w->consumer, left > 100 ? 100 : (int)left);
        if (m) {
            if (m->err) {
                rd_kafka_message_destroy(m);
            } else {
                if (w->ncarry == w->carry_cap) {
                    size_t cap = w->carry_cap ? w->carry_cap * 2 : 64;
                    rd_kafka_message_t **c = realloc(w->carry, cap * sizeof(*c));
                    if (!c) {
                        /* stop: nothing after the batch in hand is applied, the
                         * next start resumes from kafka_offsets */
                        ss_log(SS_LOG_ERROR, "out of memory; stopping");
                        rd_kafka_message_destroy(m);
                        w->fatal = 1;
                        ss_shutdown_request();
                        return -1;
                    }
                    w->carry = c;
                    w->carry_cap = cap;
                }
                w->carry[w->ncarry++] = m;
            }
        }
        if (w->revoked)
            return -1;
    }
}

static const char *dlq_label(const char *reason, char *buf, size_t size) {
    /* low-cardinality label: the reason's first word (sqlstate_XXXXX for PostgreSQL) */
    size_t n = strcspn(reason, ":");
    if (n >= size)
        n = size - 1;
    memcpy(buf, reason, n);
    buf[n] = '\0';
    return buf;
}

/* Writes msgs[i] to the DLQ and waits for the broker's ack, retrying until
 * it is acknowledged.  Returns 0, or -1 on shutdown/revoke. */
static int dlq_write(worker_t *w, size_t i) {
    if (w->b.dlq_done[i])
        return 0;
    rd_kafka_message_t *m = w->b.kmsgs[i];
    char part[16], off[24], when[SS_TIME_BUFSIZE];
    snprintf(part, sizeof(part), "%d", (int)m->partition);
    snprintf(off, sizeof(off), "%lld", (long long)m->offset);
    ss_time_format(ss_time_now_usec(), when, sizeof(when));
    const char *topic = w->b.msgs[i].topic;
    ss_kafka_header_t h[] = {
        {"reason", w->b.reason[i], strlen(w->b.reason[i])},
        {"original_topic", topic, strlen(topic)},
        {"original_partition", part, strlen(part)},
        {"original_offset", off, strlen(off)},
        {"failed_at", when, strlen(when)},
    };
    ss_backoff_t b = {(int)w->cfg->retry_base_ms, (int)w->cfg->retry_max_ms, 0};
    for (;;) {
        char err[512];
        ss_kafka_delivery_t *d = NULL;
        int rc = ss_kafka_producer_send(w->dlq, w->dlq_topic, m->key, m->key_len, m->payload,
                                        m->len, h, sizeof(h) / sizeof(h[0]), &d, err, sizeof(err));
        if (rc == 0)
            rc = ss_kafka_delivery_wait(d, (int)w->cfg->dlq_timeout_ms, err, sizeof(err));
        if (rc == 0) {
            w->b.dlq_done[i] = 1;
            char lbuf[64], labels[128];
            snprintf(labels, sizeof(labels), "reason=\"%s\"",
                     dlq_label(w->b.reason[i], lbuf, sizeof(lbuf)));
            ss_counter_inc(
                ss_counter("sync_dlq_total", "Messages sent to the dead-letter topic", labels));
            ss_log_kv(SS_LOG_WARN, "message dead-lettered", "topic", topic, "partition", part,
                      "offset", off, "reason", w->b.reason[i], NULL);
            return 0;
        }
        if (rc == -2)
            snprintf(err, sizeof(err), "no acknowledgement within %lld ms",
                     (long long)w->cfg->dlq_timeout_ms);
        ss_log_kv(SS_LOG_WARN, "dlq write failed; retrying", "error", err, NULL);
        ss_kafka_consumer_pause_all(w->consumer);
        int wr = wait_serving(w, ss_backoff_next(&b));
        ss_kafka_consumer_resume_all(w->consumer);
        if (wr < 0)
            return -1;
    }
}

/* Applies msgs[lo, hi); on a data error splits it until the bad message
 * stands alone, dead-letters it, and applies the rest. */
static ss_db_class_t apply_range(worker_t *w, size_t lo, size_t hi, ss_sync_stats_t *st, char *err,
                                 size_t errsize) {
    ss_db_class_t cls =
        ss_sync_apply(&w->db, w->cfg->group, &w->b.rows, w->b.msgs, lo, hi, st, err, errsize);
    if (cls == SS_DB_OK) {
        w->b.committed = hi;
        return cls;
    }
    if (cls != SS_DB_DATA)
        return cls;
    if (hi - lo == 1) {
        if (w->b.msgs[lo].poison) /* offset-only transaction failed on data: cannot be */
            return SS_DB_FATAL;
        /* "sqlstate_22P02: 22P02: invalid input syntax ..." */
        snprintf(w->b.reason[lo], REASON_SIZE, "sqlstate_%s: %.*s", ss_db_conn_sqlstate(w->dbc),
                 REASON_SIZE - 32, err);
        w->b.msgs[lo].poison = 1;
        if (dlq_write(w, lo) < 0)
            return SS_DB_RETRY; /* shutdown or revoke: nothing more committed */
        return apply_range(w, lo, hi, st, err, errsize);
    }
    size_t mid = lo + (hi - lo) / 2;
    cls = apply_range(w, lo, mid, st, err, errsize);
    if (cls != SS_DB_OK)
        return cls;
    return apply_range(w, mid, hi, st, err, errsize);
}

/* Records how far the batch w->b got (PostgreSQL has it). */
static void batch_advance(worker_t *w) {
    for (size_t i = 0; i < w->b.n; i++) {
        part_state_t *ps = part_find(w, w->b.msgs[i].topic, w->b.msgs[i].partition, 1);
        if (ps && w->b.msgs[i].offset + 1 > ps->next)
            ps->next = w->b.msgs[i].offset + 1;
    }
}

/* Commits to Kafka what PostgreSQL has applied and Kafka does not know yet:
 * at most every SYNC_KAFKA_COMMIT_MS, none within that long of a rebalance
 * callback (see the top of the file), or now when force (shutdown). */
static void commit_kafka(worker_t *w, int force) {
    int64_t now = ss_time_mono_usec();
    if (!force && now - w->last_commit_usec < w->cfg->kafka_commit_ms * 1000)
        return;
    rd_kafka_topic_partition_list_t *l = NULL;
    for (size_t i = 0; i < w->nparts; i++) {
        part_state_t *p = &w->parts[i];
        if (p->next < 0 || p->next <= p->sent)
            continue;
        if (!l)
            l = rd_kafka_topic_partition_list_new(16);
        rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = p->next;
        p->sent = p->next;
    }
    w->last_commit_usec = now;
    if (!l)
        return;
    char err[256];
    if (ss_kafka_consumer_commit(w->consumer, l, 1, err, sizeof(err)) < 0)
        ss_log_kv(SS_LOG_WARN, "kafka offset commit failed (PostgreSQL has them)", "error", err,
                  NULL);
    rd_kafka_topic_partition_list_destroy(l);
}

static void batch_done(worker_t *w, const ss_sync_stats_t *st, int64_t t0, int kafka);

/* Applies the whole batch, retrying until done.  Returns 0, or -1 when it
 * was abandoned (shutdown or revoke: the next owner resumes from
 * kafka_offsets). */
static int batch_process(worker_t *w, int final) {
    if (w->b.n == 0)
        return 0;
    int64_t t0 = ss_time_mono_usec();
    for (size_t i = 0; i < w->b.n; i++)
        if (w->b.msgs[i].poison && dlq_write(w, i) < 0)
            return -1;

    ss_sync_stats_t st;
    memset(&st, 0, sizeof(st));
    int paused = 0;
    for (;;) {
        char err[1024];
        ss_db_class_t cls = SS_DB_RETRY;
        if (db_ensure(w) == 0)
            cls = apply_range(w, w->b.committed, w->b.n, &st, err, sizeof(err));
        else
            snprintf(err, sizeof(err), "not connected");
        if (cls == SS_DB_OK)
            break;
        if (w->revoked)
            break;
        if (PQstatus(ss_db_conn_pg(w->dbc)) != CONNECTION_OK || cls == SS_DB_RETRY)
            db_set_up(w, 0);
        ss_log_kv(cls == SS_DB_FATAL ? SS_LOG_ERROR : SS_LOG_WARN,
                  "batch not applied; pausing and retrying", "error", err, "class",
                  ss_db_class_name(cls), NULL);
        if (final || ss_shutdown_requested())
            break; /* rolled back; resumed from kafka_offsets next time */
        if (!paused) {
            ss_kafka_consumer_pause_all(w->consumer);
            paused = 1;
        }
        if (wait_serving(w, ss_backoff_next(&w->backoff)) < 0)
            break;
    }
    if (w->b.committed < w->b.n) {
        if (paused)
            ss_kafka_consumer_resume_all(w->consumer);
        return -1;
    }
    if (paused) {
        ss_kafka_consumer_resume_all(w->consumer);
        ss_log(SS_LOG_INFO, "postgresql back; resumed");
    }
    batch_done(w, &st, t0, 1);
    return 0;
}

/* After the batch w->b committed in PostgreSQL: how far it got (unless the
 * partitions were revoked meanwhile; the main loop commits that to Kafka), metrics. */
static void batch_done(worker_t *w, const ss_sync_stats_t *stp, int64_t t0, int kafka) {
    ss_sync_stats_t st = *stp;
    ss_backoff_reset(&w->backoff);
    db_set_up(w, 1);
    w->last_db_usec = ss_time_mono_usec();
    if (kafka)
        batch_advance(w); /* the main loop commits it to Kafka (commit_kafka) */

    for (int t = 0; t < NTOPICS; t++)
        if (st.applied[t])
            ss_counter_add(w->applied[t], st.applied[t]);
    if (st.duplicates)
        ss_counter_add(w->duplicates, st.duplicates);
    if (st.stale)
        ss_counter_add(w->stale, st.stale);
    if (st.newest_received_usec > 0)
        ss_gauge_set(w->newest_age, (double)(ss_time_now_usec() - st.newest_received_usec) / 1e6);
    ss_histogram_observe(w->batch_size, (double)w->b.n);
    ss_histogram_observe(w->batch_duration, (double)(ss_time_mono_usec() - t0) / 1e6);
    SS_DEBUG("batch applied: %zu messages, %llu duplicates, %llu stale", w->b.n,
             (unsigned long long)st.duplicates, (unsigned long long)st.stale);
}

/* ---- pipelining (see worker_t) ---- */

static void *apply_thread(void *arg) {
    worker_t *w = arg;
    memset(&w->fl_st, 0, sizeof(w->fl_st));
    w->fl_cls = ss_sync_apply(&w->db, w->cfg->group, &w->fl.rows, w->fl.msgs, 0, w->fl.n, &w->fl_st,
                              w->fl_err, sizeof(w->fl_err));
    if (w->fl_cls == SS_DB_OK)
        w->fl.committed = w->fl.n;
    atomic_store(&w->fl_done, 1);
    return NULL;
}

/* Waits for the apply thread (its outcome stays pending). */
static void fl_join(worker_t *w) {
    if (!w->inflight)
        return;
    pthread_join(w->fl_thread, NULL);
    w->inflight = 0;
}

/* Handles the outcome of the batch in flight: committed -> Kafka commit and
 * metrics; failed -> the synchronous path (split on data errors, DLQ,
 * pause/backoff/reconnect) unless the partitions were revoked meanwhile.
 * Returns 0, or -1 when that batch was abandoned (shutdown or revoke): then
 * the batch being filled must not be applied either (its offsets would pass
 * the abandoned messages) -- w->fl_lost says so until the revoke drops it or
 * the worker stops. */
static int fl_settle(worker_t *w, int final) {
    fl_join(w);
    if (!w->fl_pending)
        return w->fl_lost ? -1 : 0;
    w->fl_pending = 0;
    batch_swap(w);
    int rc = 0;
    if (w->fl_cls == SS_DB_OK) {
        batch_done(w, &w->fl_st, w->fl_t0, !w->revoked);
    } else if (w->revoked) {
        log_dropped(w, "revoke: failed pipelined batch dropped", w->b.kmsgs, w->b.n);
        rc = -1;
    } else {
        if (w->fl_cls != SS_DB_DATA)
            ss_log_kv(SS_LOG_WARN, "pipelined batch not applied; retrying synchronously", "error",
                      w->fl_err, NULL);
        rc = batch_process(w, final);
        if (rc < 0)
            log_dropped(w, "pipelined batch abandoned", w->b.kmsgs + w->b.committed,
                        w->b.n - w->b.committed);
    }
    batch_reset(&w->b);
    batch_swap(w);
    if (rc < 0)
        w->fl_lost = 1;
    return rc;
}

/* The batch w->b is complete: wait for the one in flight, dead-letter this
 * one's poison, then hand it to the apply thread and start a new one. */
static void batch_submit(worker_t *w) {
    if (fl_settle(w, 0) < 0 || w->revoked || ss_shutdown_requested())
        return; /* dropped by check_revoked, or left to the final step */
    for (size_t i = 0; i < w->b.n; i++)
        if (w->b.msgs[i].poison && dlq_write(w, i) < 0)
            return;
    if (db_ensure(w) < 0) {
        /* not connected: the synchronous path pauses, backs off and reconnects */
        if (batch_process(w, 0) == 0 || !w->revoked) {
            log_dropped(w, "batch abandoned", w->b.kmsgs + w->b.committed, w->b.n - w->b.committed);
            batch_clear(w);
        }
        return;
    }
    batch_swap(w);
    w->fl_t0 = ss_time_mono_usec();
    w->fl_pending = 1;
    atomic_store(&w->fl_done, 0);
    if (pthread_create(&w->fl_thread, NULL, apply_thread, w) == 0)
        w->inflight = 1;
    else
        apply_thread(w); /* no thread: apply here */
}

/* While idle, check PostgreSQL now and then so /ready tells the truth. */
static void idle_check(worker_t *w) {
    int64_t now = ss_time_mono_usec();
    if (now - w->last_db_usec < IDLE_PING_USEC)
        return;
    w->last_db_usec = now;
    PGconn *pg = ss_db_conn_pg(w->dbc);
    if (pg && PQstatus(pg) == CONNECTION_OK) {
        PGresult *r = PQexec(pg, "SELECT 1");
        int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
        if (ok) {
            db_set_up(w, 1);
            return;
        }
    }
    db_set_up(w, 0);
    db_ensure(w);
}

static int worker_init(worker_t *w, const sw_config_t *cfg) {
    char err[512];
    memset(w, 0, sizeof(*w));
    w->cfg = cfg;
#ifdef __GLIBC__
    /* No fast bins: mapping a batch makes and frees ~100 small json-c blocks per message,
     * and every larger request (json-c growing a hash table, the arena) made glibc
     * consolidate the fast bins first, a sixth of the worker's CPU (perf, issue 15).
     * The per-thread cache still serves the small sizes. */
    mallopt(M_MXFAST, 0);
#endif
    w->backoff.base_ms = (int)cfg->retry_base_ms;
    w->backoff.max_ms = (int)cfg->retry_max_ms;
    ss_sync_db_init(&w->db);
    /* No connect backoff in libs/db: the batch loop paces its retries
     * (SYNC_RETRY_*), the idle check once a second. */
    ss_db_conn_opts_t dbo = {.url = cfg->database_url,
                             .application_name = "shipstream-sync-worker",
                             .connect_timeout_s = 5};
    w->dbc = ss_db_conn_new(&dbo, err, sizeof(err));
    if (!w->dbc || ss_sync_db_set_conn(&w->db, w->dbc, err, sizeof(err)) != SS_DB_ERR_NONE) {
        ss_log_kv(SS_LOG_ERROR, "cannot set up the database connection", "error", err, NULL);
        return -1;
    }
    w->cap = (size_t)cfg->batch_size;
    if (batch_alloc(&w->b, w->cap) < 0 || batch_alloc(&w->fl, w->cap) < 0) {
        ss_log(SS_LOG_ERROR, "out of memory");
        return -1;
    }
    static const ss_topic_t kinds[NTOPICS] = {SS_TOPIC_SHIPMENTS, SS_TOPIC_TRACKERS,
                                              SS_TOPIC_ADDRESSES, SS_TOPIC_BATCHES,
                                              SS_TOPIC_EVENTS};
    const char *names[NTOPICS];
    for (int i = 0; i < NTOPICS; i++) {
        if (ss_topic_name(cfg->prefix, kinds[i], w->topics[i], sizeof(w->topics[i])) < 0) {
            ss_log_kv(SS_LOG_ERROR, "configuration error", "variable", "KAFKA_TOPIC_PREFIX",
                      "error", "too long", NULL);
            return -2;
        }
        names[i] = w->topics[i];
        char labels[64];
        snprintf(labels, sizeof(labels), "topic=\"%s\"", ss_topic_suffix(kinds[i]));
        w->applied[i] = ss_counter("sync_events_applied_total",
                                   "Events applied (new event ids), by topic", labels);
    }
    ss_topic_name(cfg->prefix, SS_TOPIC_DLQ, w->dlq_topic, sizeof(w->dlq_topic));
    w->consumed = ss_counter("sync_messages_consumed_total", "Messages consumed", NULL);
    w->duplicates = ss_counter("sync_duplicates_skipped_total",
                               "Messages whose event id was already applied", NULL);
    w->stale = ss_counter("sync_stale_skipped_total",
                          "Object versions older than the stored one (changed nothing)", NULL);
    static const double size_buckets[] = {1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
    w->batch_size = ss_histogram("sync_batch_size", "Messages per applied batch", NULL,
                                 size_buckets, sizeof(size_buckets) / sizeof(size_buckets[0]));
    w->batch_duration =
        ss_histogram("sync_batch_duration_seconds",
                     "Time to apply a batch (DLQ writes and retries included)", NULL, NULL, 0);
    w->newest_age = ss_gauge("sync_newest_event_age_seconds",
                             "Age (now - received_at) of the newest applied event", NULL);
    w->db_up = ss_gauge("sync_db_up", "1 while PostgreSQL is reachable", NULL);
    ss_counter(("sync_dlq_total"), "Messages sent to the dead-letter topic", "reason=\"none\"");

    db_ensure(w); /* not fatal: retried */

    ss_kafka_producer_opts_t popts = {.bootstrap = cfg->bootstrap,
                                      .client_id = "shipstream-sync-worker-dlq"};
    w->dlq = ss_kafka_producer_new(&popts, err, sizeof(err));
    if (!w->dlq) {
        ss_log_kv(SS_LOG_ERROR, "configuration error", "error", err, NULL);
        return -2;
    }
    static const char *const overrides[] = {"fetch.wait.max.ms", "100", NULL};
    ss_kafka_consumer_opts_t copts = {
        .bootstrap = cfg->bootstrap,
        .group_id = cfg->group,
        .client_id = "shipstream-sync-worker",
        .topics = names,
        .ntopics = NTOPICS,
        .on_assign = on_assign,
        .on_revoke = on_revoke,
        .ud = w,
        .overrides = overrides,
    };
    w->consumer = ss_kafka_consumer_new(&copts, err, sizeof(err));
    if (!w->consumer) {
        ss_log_kv(SS_LOG_ERROR, "configuration error", "error", err, NULL);
        return -2;
    }
    return 0;
}

int sw_run(const sw_config_t *cfg) {
    static worker_t w;
    int rc = worker_init(&w, cfg);
    if (rc < 0) {
        ss_kafka_producer_close(w.dlq, 1000);
        ss_db_conn_free(w.dbc);
        return rc == -2 ? 2 : 1;
    }
    ss_log_kv(SS_LOG_INFO, "sync worker started", "group", cfg->group, "prefix", cfg->prefix, NULL);

    int64_t batch_deadline = 0;
    while (!ss_shutdown_requested()) {
        rd_kafka_message_t *m = NULL;
        if (w.ncarry > 0) {
            m = w.carry[0];
            memmove(w.carry, w.carry + 1, (w.ncarry - 1) * sizeof(*w.carry));
            w.ncarry--;
        } else {
            int timeout = 100;
            if (w.b.n > 0) {
                int64_t left = (batch_deadline - ss_time_mono_usec()) / 1000;
                timeout = left < 0 ? 0 : left < 100 ? (int)left : 100;
            }
            m = ss_kafka_consumer_poll(w.consumer, timeout);
        }
        check_revoked(&w);
        if (m && m->err) {
            ss_log_kv(SS_LOG_WARN, "kafka consume error", "error", rd_kafka_message_errstr(m),
                      NULL);
            rd_kafka_message_destroy(m);
            m = NULL;
        }
        if (m) {
            if (w.b.n == 0)
                batch_deadline = ss_time_mono_usec() + w.cfg->batch_max_ms * 1000;
            batch_add(&w, m);
        }
        if (w.fl_pending && atomic_load(&w.fl_done))
            fl_settle(&w, 0); /* Kafka commit and metrics as soon as it committed */
        if (w.b.n > 0 && (w.b.n >= w.cap || ss_time_mono_usec() >= batch_deadline)) {
            batch_submit(&w);
        } else if (w.b.n == 0 && !w.fl_pending) {
            idle_check(&w);
        }
        lag_update(&w, 0);
        commit_kafka(&w, 0);
    }

    /* SIGTERM: stop polling, finish the batch in flight (one attempt; rolled
     * back otherwise), leave the group, flush the DLQ producer. */
    ss_log(SS_LOG_INFO, "stopping: %zu message(s) in flight", w.b.n + w.fl.n);
    if (fl_settle(&w, 1) == 0 && w.b.n > 0 && !w.revoked && !w.fatal)
        batch_process(&w, 1);
    batch_clear(&w);
    carry_clear(&w);
    if (!w.revoked)
        commit_kafka(&w, 1); /* close waits for it */
    atomic_store(&g_consumer_up, 0);
    ss_kafka_consumer_close(w.consumer);
    batch_clear(&w);
    int left = ss_kafka_producer_close(w.dlq, 5000);
    ss_db_conn_free(w.dbc);
    ss_sync_db_free(&w.db);
    batch_free(&w.b);
    batch_free(&w.fl);
    free(w.carry);
    free(w.parts);
    ss_log(SS_LOG_INFO, "stopped");
    return left > 0 || w.fatal ? 1 : 0;
}
