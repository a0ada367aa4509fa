/* ss-kafkactl dlq: read and redrive the dead-letter topic.
 *
 *   ss-kafkactl dlq list    [--reason R] [--since T] [--all]
 *   ss-kafkactl dlq show    PARTITION:OFFSET
 *   ss-kafkactl dlq redrive [--reason R] [--since T] [--dry-run] [--offset PARTITION:OFFSET]
 *
 * The DLQ topic is $KAFKA_TOPIC_PREFIX + "dlq" (prefix default "shipstream."),
 * or --prefix P, or -t TOPIC.  Its records are written by the sync worker:
 * key and value are the original message's, headers reason, original_topic,
 * original_partition, original_offset, failed_at.
 *
 * Redrive produces the original key and value to original_topic (partitioned
 * by key, like every shipstream producer, so the redriven copy lands beside
 * the key's other events) with headers redriven_from_dlq_topic,
 * redriven_from_dlq_partition, redriven_from_dlq_offset, redriven_at and
 * dlq_reason; once the broker has acknowledged it, it appends a marker to the
 * DLQ partition of the record: a message with the record's key, headers
 * redrive_of_offset (the record's offset), redriven_to_topic,
 * redriven_to_partition, redriven_to_offset, redriven_at, and a JSON value
 * saying the same.  list shows a record with a marker as redriven; redrive
 * skips it, so running it twice redrives nothing the second time.
 *
 * Why markers in the DLQ itself rather than a consumer group's committed
 * offset: --reason and --since redrive a subset, and a committed offset is
 * a watermark, not a set (it would skip what a filter left behind); and
 * rather than searching the original topics for redrive headers: those are
 * the big topics and their retention may have dropped the copy.  A marker
 * lives exactly as long as the record it marks.  The one gap (a crash after
 * the redriven copy was acknowledged and before its marker was) redrives
 * that record again on the next run: the sync worker applies it at most once
 * in effect (processed_events by event id, then the updated_at guard). */
#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "common/sstime.h"
#include "kafka/kafka.h"
#include "dlq.h"

#include "common/log.h"

#define DLQ_MAX_X          32
#define DLQ_HDR_VALUE_MAX  1024
#define DLQ_ACK_TIMEOUT_MS 30000

typedef struct {
    const char *bootstrap;
    const char *topic; /* the DLQ topic */
    const char *reason;
    int64_t since_usec; /* 0: no filter */
    bool dry_run;
    bool all; /* list: markers too */
    bool verbose;
    int32_t only_partition; /* -1: any */
    int64_t only_offset;
    double timeout_s;
    int nx;
    const char *x[DLQ_MAX_X];
} dlq_opts_t;

/* One DLQ message (a record, or a marker of a redriven record). */
typedef struct {
    int32_t partition;
    int64_t offset;
    char *key;
    size_t keylen;
    char *value;
    size_t valuelen;
    int has_key;
    int has_value;
    char reason[DLQ_HDR_VALUE_MAX];
    char original_topic[256];
    char original_partition[16];
    char original_offset[24];
    char failed_at[40];
    /* a marker: */
    int is_marker;
    int64_t redrive_of;
    /* a record that was redriven (from its marker), or a marker's own: */
    char redriven_at[40];
    char redriven_to[320]; /* topic/partition/offset */
    int redriven;
} dlq_msg_t;

typedef struct {
    dlq_msg_t *v;
    size_t n, cap;
} dlq_list_t;

static volatile sig_atomic_t kctl_stop = 0;

static void dlq_on_signal(int sig) {
    (void)sig;
    kctl_stop = 1;
}

static double dlq_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dlq_ms_left(double deadline) {
    double left = deadline - dlq_now();
    return left <= 0 ? 0 : (int)(left * 1000.0) + 1;
}

static void dlq_usage(FILE *out) {
    fputs("usage: ss-kafkactl [-b BOOTSTRAP] [-X name=value]... dlq COMMAND [options]\n"
          "\n"
          "  list     [--reason R] [--since T] [--all]\n"
          "           one line per dead-lettered message: partition offset key reason\n"
          "           original_topic original_partition original_offset failed_at redriven_at\n"
          "           redriven_to (\"-\" while not redriven); --all also prints the markers\n"
          "  show     PARTITION:OFFSET\n"
          "           one message: its headers, then its value\n"
          "  redrive  [--reason R] [--since T] [--dry-run] [--offset PARTITION:OFFSET]\n"
          "           puts each matching message not yet redriven back on its original\n"
          "           topic (headers redriven_from_dlq_*, redriven_at, dlq_reason), then\n"
          "           marks it redriven in the DLQ; prints each one and a count; running\n"
          "           it twice redrives nothing the second time\n"
          "\n"
          "  --reason R   the reason's first word (sqlstate_23514, invalid_envelope, ...) or\n"
          "               a prefix of the whole reason\n"
          "  --since T    failed at or after T: RFC 3339 (2025-01-31T12:00:00Z) or an age\n"
          "               (90m, 24h, 7d)\n"
          "  --prefix P   topic prefix (default $KAFKA_TOPIC_PREFIX or \"shipstream.\");\n"
          "  -t TOPIC     or the DLQ topic itself\n"
          "  --timeout S  for reading the DLQ and each acknowledgement (default 30)\n",
          out);
}

static void dlq_quiet_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

static void dlq_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    ss_log(level <= 3   ? SS_LOG_ERROR
           : level <= 4 ? SS_LOG_WARN
                        : SS_LOG_DEBUG,
           "rdkafka %s: %s", fac, buf);
}

static rd_kafka_conf_t *dlq_conf(const dlq_opts_t *o) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, o->verbose ? dlq_log_cb : dlq_quiet_log_cb);
    if (rd_kafka_conf_set(conf, "bootstrap.servers", o->bootstrap, err, sizeof err) ||
        rd_kafka_conf_set(conf, "client.id", "ss-kafkactl-dlq", err, sizeof err))
        goto fail;
    /* A redriven copy is as large as the original plus its headers. */
    char mmb[24];
    snprintf(mmb, sizeof mmb, "%d", SS_KAFKA_MAX_MESSAGE_BYTES);
    if (rd_kafka_conf_set(conf, "message.max.bytes", mmb, err, sizeof err))
        goto fail;
    for (int i = 0; i < o->nx; i++) {
        char name[256];
        const char *eq = strchr(o->x[i], '=');
        if (!eq || (size_t)(eq - o->x[i]) >= sizeof name) {
            snprintf(err, sizeof err, "-X expects name=value, got '%s'", o->x[i]);
            goto fail;
        }
        memcpy(name, o->x[i], (size_t)(eq - o->x[i]));
        name[eq - o->x[i]] = '\0';
        if (rd_kafka_conf_set(conf, name, eq + 1, err, sizeof err))
            goto fail;
    }
    return conf;
fail:
    ss_log(SS_LOG_ERROR, "%s", err);
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static void dlq_copy_header(rd_kafka_headers_t *h, const char *name, char *buf, size_t size) {
    const void *v = NULL;
    size_t n = 0;
    buf[0] = '\0';
    if (h && rd_kafka_header_get_last(h, name, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR && v) {
        if (n >= size)
            n = size - 1;
        memcpy(buf, v, n);
        buf[n] = '\0';
    }
}

static void dlq_list_free(dlq_list_t *l) {
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].key);
        free(l->v[i].value);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int dlq_add(dlq_list_t *l, const rd_kafka_message_t *m) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        dlq_msg_t *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    dlq_msg_t *d = &l->v[l->n];
    memset(d, 0, sizeof *d);
    d->partition = m->partition;
    d->offset = m->offset;
    d->has_key = m->key != NULL;
    d->has_value = m->payload != NULL;
    d->key = malloc(m->key_len + 1);
    d->value = malloc(m->len + 1);
    if (!d->key || !d->value) {
        free(d->key);
        free(d->value);
        return -1;
    }
    if (m->key)
        memcpy(d->key, m->key, m->key_len);
    d->key[m->key_len] = '\0';
    d->keylen = m->key_len;
    if (m->payload)
        memcpy(d->value, m->payload, m->len);
    d->value[m->len] = '\0';
    d->valuelen = m->len;

    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
        h = NULL;
    dlq_copy_header(h, "reason", d->reason, sizeof d->reason);
    dlq_copy_header(h, "original_topic", d->original_topic, sizeof d->original_topic);
    dlq_copy_header(h, "original_partition", d->original_partition, sizeof d->original_partition);
    dlq_copy_header(h, "original_offset", d->original_offset, sizeof d->original_offset);
    dlq_copy_header(h, "failed_at", d->failed_at, sizeof d->failed_at);
    char of[24];
    dlq_copy_header(h, "redrive_of_offset", of, sizeof of);
    if (of[0]) {
        char *end = NULL;
        long long v = strtoll(of, &end, 10);
        if (end && !*end && v >= 0) {
            d->is_marker = 1;
            d->redrive_of = v;
            char t[256], p[16], o[24];
            dlq_copy_header(h, "redriven_to_topic", t, sizeof t);
            dlq_copy_header(h, "redriven_to_partition", p, sizeof p);
            dlq_copy_header(h, "redriven_to_offset", o, sizeof o);
            dlq_copy_header(h, "redriven_at", d->redriven_at, sizeof d->redriven_at);
            snprintf(d->redriven_to, sizeof d->redriven_to, "%s/%s/%s", t, p, o);
        }
    }
    l->n++;
    return 0;
}

/* Reads every partition of the DLQ from the beginning to its end. */
static int dlq_read_all(const dlq_opts_t *o, dlq_list_t *out) {
    rd_kafka_conf_t *conf = dlq_conf(o);
    if (!conf)
        return -1;
    char err[512], group[96];
    snprintf(group, sizeof group, "ss-kafkactl-dlq-%ld", (long)getpid());
    if (rd_kafka_conf_set(conf, "group.id", group, err, sizeof err) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err)) {
        ss_log(SS_LOG_ERROR, "%s", err);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        ss_log(SS_LOG_ERROR, "%s", err);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    int rc = -1;
    double deadline = dlq_now() + o->timeout_s;
    int nparts = -1;
    rd_kafka_topic_partition_list_t *tl = NULL;
    /* Partitions and their high watermarks: an empty partition never says EOF
     * before its first fetch, so compare with the watermark instead. */
    int64_t *high = NULL;
    while (nparts < 0 && !kctl_stop && dlq_ms_left(deadline) > 0) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
        if (rd_kafka_metadata(rk, 0, rkt, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                md->topics[0].partition_cnt > 0)
                nparts = md->topics[0].partition_cnt;
            rd_kafka_metadata_destroy(md);
        }
        rd_kafka_topic_destroy(rkt);
        if (nparts < 0)
            usleep(100 * 1000);
    }
    if (nparts < 0) {
        ss_log(SS_LOG_ERROR, "topic %s not found at %s", o->topic, o->bootstrap);
        goto done;
    }
    high = calloc((size_t)nparts, sizeof *high);
    tl = rd_kafka_topic_partition_list_new(nparts);
    if (!high || !tl)
        goto done;
    int remaining = 0;
    for (int p = 0; p < nparts; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_query_watermark_offsets(rk, o->topic, p, &lo, &hi, 5000)) &&
               dlq_ms_left(deadline) > 0 && !kctl_stop)
            usleep(100 * 1000);
        if (e) {
            ss_log(SS_LOG_ERROR, "%s [%d]: %s", o->topic, p, rd_kafka_err2str(e));
            goto done;
        }
        high[p] = hi;
        if (hi > lo) {
            rd_kafka_topic_partition_list_add(tl, o->topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
            remaining++;
        }
    }
    if (remaining == 0) {
        rc = 0;
        goto done;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, tl);
    if (e) {
        ss_log(SS_LOG_ERROR, "assign: %s", rd_kafka_err2str(e));
        goto done;
    }
    while (remaining > 0 && !kctl_stop) {
        int left = dlq_ms_left(deadline);
        if (left <= 0) {
            ss_log(SS_LOG_ERROR, "%s not read to its end within %.0f s", o->topic, o->timeout_s);
            goto done;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, left < 200 ? left : 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err) {
            ss_log(SS_LOG_ERROR, "%s: %s", o->topic, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        int p = m->partition;
        int64_t off = m->offset;
        int added = dlq_add(out, m);
        rd_kafka_message_destroy(m);
        if (added < 0) {
            ss_log(SS_LOG_ERROR, "out of memory");
            goto done;
        }
        if (p >= 0 && p < nparts && high[p] >= 0 && off + 1 >= high[p]) {
            high[p] = -1; /* read to the end */
            remaining--;
        }
    }
    if (!kctl_stop)
        rc = 0;

    /* Markers tell which records were redriven. */
    for (size_t i = 0; i < out->n; i++) {
        dlq_msg_t *mk = &out->v[i];
        if (!mk->is_marker)
            continue;
        for (size_t j = 0; j < out->n; j++) {
            dlq_msg_t *r = &out->v[j];
            if (!r->is_marker && r->partition == mk->partition && r->offset == mk->redrive_of) {
                r->redriven = 1;
                snprintf(r->redriven_at, sizeof r->redriven_at, "%s", mk->redriven_at);
                snprintf(r->redriven_to, sizeof r->redriven_to, "%s", mk->redriven_to);
            }
        }
    }
done:
    if (tl)
        rd_kafka_topic_partition_list_destroy(tl);
    free(high);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

/* The reason's first word: "sqlstate_22001: ..." -> "sqlstate_22001". */
static int dlq_reason_matches(const char *reason, const char *want) {
    if (!want)
        return 1;
    size_t n = strcspn(reason, ":");
    size_t wl = strlen(want);
    if (n == wl && strncmp(reason, want, n) == 0)
        return 1;
    return strncmp(reason, want, wl) == 0;
}

static int dlq_matches(const dlq_opts_t *o, const dlq_msg_t *d) {
    if (d->is_marker)
        return 0;
    if (o->only_partition >= 0 &&
        (d->partition != o->only_partition || d->offset != o->only_offset))
        return 0;
    if (!dlq_reason_matches(d->reason, o->reason))
        return 0;
    if (o->since_usec) {
        int64_t t = 0;
        if (ss_time_parse(d->failed_at, &t) != 0 || t < o->since_usec)
            return 0;
    }
    return 1;
}

/* Prints s with tabs and line breaks as spaces (one record per line). */
static void dlq_print_field(const char *s, size_t n) {
    if (n == 0) {
        fputs("-", stdout);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        putchar(c == '\t' || c == '\n' || c == '\r' ? ' ' : c);
    }
}

static int dlq_cmd_list(const dlq_opts_t *o) {
    dlq_list_t l = {0};
    if (dlq_read_all(o, &l) != 0) {
        dlq_list_free(&l);
        return 1;
    }
    printf("partition\toffset\tkey\treason\toriginal_topic\toriginal_partition\toriginal_"
           "offset\tfailed_at\tredriven_at\tredriven_to\n");
    size_t shown = 0, redriven = 0;
    for (size_t i = 0; i < l.n; i++) {
        const dlq_msg_t *d = &l.v[i];
        if (d->is_marker) {
            if (o->all)
                printf("%" PRId32 "\t%" PRId64 "\t%s\tmarker: redrive of offset %" PRId64
                       "\t-\t-\t-\t-\t%s\t%s\n",
                       d->partition, d->offset, d->key, d->redrive_of, d->redriven_at,
                       d->redriven_to);
            continue;
        }
        if (!dlq_matches(o, d))
            continue;
        printf("%" PRId32 "\t%" PRId64 "\t", d->partition, d->offset);
        dlq_print_field(d->key, d->keylen);
        putchar('\t');
        dlq_print_field(d->reason, strlen(d->reason));
        printf("\t%s\t%s\t%s\t%s\t%s\t%s\n", d->original_topic[0] ? d->original_topic : "-",
               d->original_partition[0] ? d->original_partition : "-",
               d->original_offset[0] ? d->original_offset : "-",
               d->failed_at[0] ? d->failed_at : "-", d->redriven ? d->redriven_at : "-",
               d->redriven ? d->redriven_to : "-");
        shown++;
        redriven += d->redriven;
    }
    fflush(stdout);
    fprintf(stderr, "%zu dead-lettered message(s) listed (%zu redriven, %zu not)\n", shown,
            redriven, shown - redriven);
    dlq_list_free(&l);
    return 0;
}

static int dlq_cmd_show(const dlq_opts_t *o) {
    dlq_list_t l = {0};
    if (dlq_read_all(o, &l) != 0) {
        dlq_list_free(&l);
        return 1;
    }
    int rc = 1;
    for (size_t i = 0; i < l.n; i++) {
        const dlq_msg_t *d = &l.v[i];
        if (d->partition != o->only_partition || d->offset != o->only_offset)
            continue;
        printf("topic: %s\npartition: %" PRId32 "\noffset: %" PRId64 "\nkey: ", o->topic,
               d->partition, d->offset);
        dlq_print_field(d->key, d->keylen);
        if (d->is_marker) {
            printf("\nmarker of offset: %" PRId64 "\nredriven_at: %s\nredriven_to: %s\n",
                   d->redrive_of, d->redriven_at, d->redriven_to);
        } else {
            printf("\nreason: %s\noriginal_topic: %s\noriginal_partition: %s\n"
                   "original_offset: %s\nfailed_at: %s\nredriven_at: %s\nredriven_to: %s\n",
                   d->reason, d->original_topic, d->original_partition, d->original_offset,
                   d->failed_at, d->redriven ? d->redriven_at : "-",
                   d->redriven ? d->redriven_to : "-");
        }
        printf("value (%zu bytes):\n", d->valuelen);
        fwrite(d->value, 1, d->valuelen, stdout);
        putchar('\n');
        rc = 0;
        break;
    }
    if (rc != 0)
        ss_log(SS_LOG_ERROR, "no message at %s %" PRId32 ":%" PRId64, o->topic, o->only_partition,
               o->only_offset);
    dlq_list_free(&l);
    return rc;
}

/* ---- redrive ---- */

typedef struct {
    int done;
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
} dlq_ack_t;

static void dlq_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    dlq_ack_t *a = m->_private;
    if (!a)
        return;
    a->done = 1;
    a->err = m->err;
    a->partition = m->partition;
    a->offset = m->offset;
}

/* Produces one message and waits for its acknowledgement.  partition may be
 * RD_KAFKA_PARTITION_UA (by key).  Returns 0 with *ack filled, or -1. */
static int dlq_produce_sync(rd_kafka_t *rk, const char *topic, int32_t partition,
                            const dlq_msg_t *d, const void *value, size_t valuelen,
                            rd_kafka_headers_t *hdrs, double timeout_s, dlq_ack_t *ack) {
    memset(ack, 0, sizeof *ack);
    rd_kafka_resp_err_t e =
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_KEY(d->has_key ? d->key : NULL, d->has_key ? d->keylen : 0),
                          RD_KAFKA_V_VALUE((void *)value, valuelen), RD_KAFKA_V_HEADERS(hdrs),
                          RD_KAFKA_V_OPAQUE(ack), RD_KAFKA_V_END);
    if (e) {
        rd_kafka_headers_destroy(hdrs);
        ss_log(SS_LOG_ERROR, "produce to %s: %s", topic, rd_kafka_err2str(e));
        return -1;
    }
    double deadline = dlq_now() + timeout_s;
    while (!ack->done && dlq_ms_left(deadline) > 0)
        rd_kafka_poll(rk, 100);
    if (!ack->done) {
        ss_log(SS_LOG_ERROR, "%s: no acknowledgement within %.0f s", topic, timeout_s);
        return -1;
    }
    if (ack->err) {
        ss_log(SS_LOG_ERROR, "%s: %s", topic, rd_kafka_err2str(ack->err));
        return -1;
    }
    return 0;
}

static void dlq_hdr(rd_kafka_headers_t *h, const char *name, const char *value) {
    rd_kafka_header_add(h, name, -1, value, -1);
}

static int dlq_cmd_redrive(const dlq_opts_t *o) {
    dlq_list_t l = {0};
    if (dlq_read_all(o, &l) != 0) {
        dlq_list_free(&l);
        return 1;
    }
    rd_kafka_t *rk = NULL;
    if (!o->dry_run) {
        rd_kafka_conf_t *conf = dlq_conf(o);
        char err[512];
        if (!conf)
            goto fail;
        if (rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err) ||
            rd_kafka_conf_set(conf, "acks", "all", err, sizeof err)) {
            ss_log(SS_LOG_ERROR, "%s", err);
            rd_kafka_conf_destroy(conf);
            goto fail;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, dlq_dr_cb);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
        if (!rk) {
            ss_log(SS_LOG_ERROR, "%s", err);
            rd_kafka_conf_destroy(conf);
            goto fail;
        }
    }

    size_t done = 0, skipped = 0, unusable = 0, failed = 0;
    for (size_t i = 0; i < l.n && !kctl_stop; i++) {
        dlq_msg_t *d = &l.v[i];
        if (!dlq_matches(o, d))
            continue;
        if (d->redriven) {
            skipped++;
            continue;
        }
        if (!d->original_topic[0]) {
            ss_log(SS_LOG_WARN,
                   "%" PRId32 ":%" PRId64 " has no original_topic header: not redriven",
                   d->partition, d->offset);
            unusable++;
            continue;
        }
        if (o->dry_run) {
            printf("would redrive\t%" PRId32 "\t%" PRId64 "\t", d->partition, d->offset);
            dlq_print_field(d->key, d->keylen);
            printf("\t%s\t", d->original_topic);
            dlq_print_field(d->reason, strlen(d->reason));
            putchar('\n');
            done++;
            continue;
        }
        char now[SS_TIME_BUFSIZE], part[16], off[24];
        ss_time_format(ss_time_now_usec(), now, sizeof now);
        snprintf(part, sizeof part, "%" PRId32, d->partition);
        snprintf(off, sizeof off, "%" PRId64, d->offset);

        rd_kafka_headers_t *h = rd_kafka_headers_new(8);
        dlq_hdr(h, "redriven_from_dlq_topic", o->topic);
        dlq_hdr(h, "redriven_from_dlq_partition", part);
        dlq_hdr(h, "redriven_from_dlq_offset", off);
        dlq_hdr(h, "redriven_at", now);
        dlq_hdr(h, "dlq_reason", d->reason);
        dlq_ack_t ack;
        if (dlq_produce_sync(rk, d->original_topic, RD_KAFKA_PARTITION_UA, d,
                             d->has_value ? d->value : NULL, d->valuelen, h, o->timeout_s,
                             &ack) != 0) {
            failed++;
            continue;
        }
        char to_part[16], to_off[24], value[1024];
        snprintf(to_part, sizeof to_part, "%" PRId32, ack.partition);
        snprintf(to_off, sizeof to_off, "%" PRId64, ack.offset);
        snprintf(value, sizeof value,
                 "{\"redrive_of\":{\"topic\":\"%s\",\"partition\":%s,\"offset\":%s},"
                 "\"redriven_to\":{\"topic\":\"%s\",\"partition\":%s,\"offset\":%s},"
                 "\"redriven_at\":\"%s\"}",
                 o->topic, part, off, d->original_topic, to_part, to_off, now);
        h = rd_kafka_headers_new(6);
        dlq_hdr(h, "redrive_of_offset", off);
        dlq_hdr(h, "redriven_to_topic", d->original_topic);
        dlq_hdr(h, "redriven_to_partition", to_part);
        dlq_hdr(h, "redriven_to_offset", to_off);
        dlq_hdr(h, "redriven_at", now);
        dlq_ack_t mack;
        if (dlq_produce_sync(rk, o->topic, d->partition, d, value, strlen(value), h, o->timeout_s,
                             &mack) != 0) {
            /* The copy is out, the marker is not: the next run redrives it
             * again, which the worker's event-id and updated_at guards make
             * harmless.  Say so. */
            ss_log(SS_LOG_WARN,
                   "%" PRId32 ":%" PRId64 " redriven to %s/%s/%s but not marked: "
                   "a later redrive sends it again (applied once by the worker)",
                   d->partition, d->offset, d->original_topic, to_part, to_off);
            failed++;
            continue;
        }
        printf("redriven\t%" PRId32 "\t%" PRId64 "\t", d->partition, d->offset);
        dlq_print_field(d->key, d->keylen);
        printf("\t%s/%s/%s\t%s\n", d->original_topic, to_part, to_off, now);
        fflush(stdout);
        done++;
    }
    fprintf(stderr, "%s %zu message(s); skipped %zu already redriven%s",
            o->dry_run ? "would redrive" : "redrove", done, skipped, unusable ? ", " : "");
    if (unusable)
        fprintf(stderr, "%zu without original_topic", unusable);
    fprintf(stderr, "; %zu failed\n", failed);
    if (rk)
        rd_kafka_destroy(rk);
    dlq_list_free(&l);
    return failed || unusable || kctl_stop ? 1 : 0;
fail:
    dlq_list_free(&l);
    return 1;
}

/* "12h", "90m", "7d", "30s" -> microseconds; -1 when not an age. */
static int64_t dlq_parse_age(const char *s) {
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (!end || end == s || v < 0 || end[0] == '\0' || end[1] != '\0')
        return -1;
    int64_t unit;
    switch (end[0]) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    default: return -1;
    }
    return (int64_t)v * unit * 1000000;
}

static int dlq_parse_at(const char *s, int32_t *partition, int64_t *offset) {
    char *end = NULL;
    long p = strtol(s, &end, 10);
    if (!end || *end != ':' || p < 0 || p > INT32_MAX)
        return -1;
    char *end2 = NULL;
    long long off = strtoll(end + 1, &end2, 10);
    if (!end2 || end2 == end + 1 || *end2 || off < 0)
        return -1;
    *partition = (int32_t)p;
    *offset = off;
    return 0;
}

int kctl_dlq_main(int argc, char **argv) {
    dlq_opts_t o = {.only_partition = -1, .timeout_s = 30.0};
    const char *prefix = NULL;
    enum { O_REASON = 256, O_SINCE, O_DRY, O_ALL, O_PREFIX, O_TIMEOUT, O_OFFSET };
    static const struct option longopts[] = {
        {"reason", required_argument, NULL, O_REASON},
        {"since", required_argument, NULL, O_SINCE},
        {"dry-run", no_argument, NULL, O_DRY},
        {"all", no_argument, NULL, O_ALL},
        {"prefix", required_argument, NULL, O_PREFIX},
        {"topic", required_argument, NULL, 't'},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"offset", required_argument, NULL, O_OFFSET},
        {"bootstrap", required_argument, NULL, 'b'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* The whole command line: global options (-b, -X, -v) may come before
     * "dlq" or after it; GNU getopt moves the words to the end. */
    int c;
    while ((c = getopt_long(argc, argv, "b:t:X:vh", longopts, NULL)) != -1) {
        switch (c) {
        case O_REASON: o.reason = optarg; break;
        case O_SINCE: {
            int64_t age = dlq_parse_age(optarg);
            if (age >= 0) {
                o.since_usec = ss_time_now_usec() - age;
            } else if (ss_time_parse(optarg, &o.since_usec) != 0) {
                fprintf(stderr,
                        "ss-kafkactl: --since expects RFC 3339 (2025-01-31T12:00:00Z) or an "
                        "age (90m, 24h, 7d), got '%s'\n",
                        optarg);
                return 2;
            }
            break;
        }
        case O_DRY: o.dry_run = true; break;
        case O_ALL: o.all = true; break;
        case O_PREFIX: prefix = optarg; break;
        case 't': o.topic = optarg; break;
        case 'b': o.bootstrap = optarg; break;
        case 'v': o.verbose = true; break;
        case 'X':
            if (o.nx >= DLQ_MAX_X) {
                fprintf(stderr, "ss-kafkactl: too many -X\n");
                return 2;
            }
            o.x[o.nx++] = optarg;
            break;
        case O_TIMEOUT: {
            char *end = NULL;
            o.timeout_s = strtod(optarg, &end);
            if (!end || *end || o.timeout_s <= 0) {
                fprintf(stderr, "ss-kafkactl: --timeout expects seconds > 0, got '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case O_OFFSET:
            if (dlq_parse_at(optarg, &o.only_partition, &o.only_offset) != 0) {
                fprintf(stderr, "ss-kafkactl: --offset expects PARTITION:OFFSET, got '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'h': dlq_usage(stdout); return 0;
        default: dlq_usage(stderr); return 2;
        }
    }
    /* What is left: "dlq" COMMAND [PARTITION:OFFSET]. */
    if (optind < argc && strcmp(argv[optind], "dlq") == 0)
        optind++;
    if (optind >= argc) {
        dlq_usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind++];
    if (strcmp(cmd, "help") == 0) {
        dlq_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "show") == 0) {
        if (optind >= argc || dlq_parse_at(argv[optind], &o.only_partition, &o.only_offset) != 0) {
            fprintf(stderr, "ss-kafkactl: dlq show expects PARTITION:OFFSET\n");
            return 2;
        }
        optind++;
    }
    if (optind < argc) {
        fprintf(stderr, "ss-kafkactl: dlq %s: unexpected argument '%s'\n", cmd, argv[optind]);
        return 2;
    }
    char topic[512];
    if (!o.topic) {
        if (!prefix) {
            const char *env = getenv("KAFKA_TOPIC_PREFIX");
            prefix = env && *env ? env : "shipstream.";
        }
        snprintf(topic, sizeof topic, "%sdlq", prefix);
        o.topic = topic;
    }
    if (!o.bootstrap) {
        const char *env = getenv("KAFKA_BOOTSTRAP_SERVERS");
        o.bootstrap = env && *env ? env : "localhost:9092";
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = dlq_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(cmd, "list") == 0)
        return dlq_cmd_list(&o);
    if (strcmp(cmd, "show") == 0)
        return dlq_cmd_show(&o);
    if (strcmp(cmd, "redrive") == 0)
        return dlq_cmd_redrive(&o);
    fprintf(stderr, "ss-kafkactl: unknown dlq command '%s'\n", cmd);
    dlq_usage(stderr);
    return 2;
}

int kctl_dlq_find(int argc, char **argv) {
    /* The first word that is not an option or an option's value. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-b") == 0 || strcmp(a, "--bootstrap") == 0 || strcmp(a, "-X") == 0 ||
            strcmp(a, "-t") == 0 || strcmp(a, "--topic") == 0 || strcmp(a, "--prefix") == 0 ||
            strcmp(a, "--timeout") == 0) {
            i++;
            continue;
        }
        if (a[0] == '-')
            continue;
        return strcmp(a, "dlq") == 0 ? i : -1;
    }
    return -1;
}
