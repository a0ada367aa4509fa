/* ss-kafkactl — a small raw-librdkafka tool for scripts and tests.
 *
 *   ss-kafkactl wait            [--timeout S]
 *   ss-kafkactl create-topics   --prefix P [--partitions N] [--replication R] [--min-insync M]
 *                               [--topics a,b,..]
 *   ss-kafkactl produce  -t T   < lines "key<TAB>value"
 *   ss-kafkactl consume  -t T   [-n COUNT] [--timeout S] [-g GROUP] [--headers] [--until-end]
 *   ss-kafkactl offsets  -t T   [-g GROUP] [--sum]
 *   ss-kafkactl topics
 *
 * Bootstrap servers come from -b or KAFKA_BOOTSTRAP_SERVERS (default
 * localhost:9092); -X name=value sets any librdkafka property. Exit status 0
 * on success, 1 on failure, 2 on bad usage. */
#include <errno.h>
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

#include "common/log.h"
#include "kafka/kafka.h"
#include "dlq.h"

#define KCTL_MAX_X 32

static const char *const kctl_topics_default[] = {
    "shipments", "trackers", "addresses", "batches", "events", "dlq",
};

typedef struct {
    const char *bootstrap;
    const char *topic;
    const char *prefix;
    const char *topics_csv;
    const char *group;
    long count;
    double timeout_s;
    int partitions;
    int replication;
    int min_insync; /* 0: 2 when replication >= 3, else the broker's default */
    bool headers;
    bool until_end;
    bool sum;
    bool verbose;
    int nx;
    const char *x[KCTL_MAX_X];
} kctl_opts_t;

static volatile sig_atomic_t kctl_stop = 0;

static void kctl_on_signal(int sig) {
    (void)sig;
    kctl_stop = 1;
}

static double kctl_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void kctl_usage(FILE *out) {
    fputs(
        "usage: ss-kafkactl [-b BOOTSTRAP] [-X name=value]... COMMAND [options]\n"
        "\n"
        "commands:\n"
        "  wait [--timeout S]            until a broker answers a metadata request (default 30 s)\n"
        "  create-topics --prefix P [--partitions N] [--replication R] [--topics a,b,...]\n"
        "                                create P+shipments trackers addresses batches events dlq\n"
        "                                (default 12 partitions, replication 1); existing topics\n"
        "                                are fine; waits until every topic has leaders\n"
        "                                --min-insync M: min.insync.replicas of created topics\n"
        "                                (default 2 with replication >= 3, else the broker's)\n"
        "  produce -t TOPIC              stdin lines \"key<TAB>value\" (no TAB: no key), "
        "idempotent\n"
        "                                producer; exit 1 if any delivery failed\n"
        "  consume -t TOPIC [-n COUNT] [--timeout S] [-g GROUP] [--headers] [--until-end]\n"
        "                                print \"partition<TAB>offset<TAB>key<TAB>value\" (plus\n"
        "                                \"<TAB>name=value,...\" with --headers) from the "
        "beginning;\n"
        "                                without -g reads all partitions directly (no group);\n"
        "                                exit 1 if COUNT was not reached before the timeout\n"
        "                                (default 30 s); --until-end stops at the end of all "
        "partitions\n"
        "  offsets -t TOPIC [--sum]      print \"partition<TAB>high watermark\" (--sum: their "
        "total)\n"
        "          [-g GROUP]            also GROUP's committed offset (-1: none) and its lag:\n"
        "                                \"partition<TAB>high<TAB>committed<TAB>lag\" (--sum: "
        "the total lag)\n"
        "  topics                        list topics and their partition counts\n"
        "  dlq list|show|redrive ...     the dead-letter topic (ss-kafkactl dlq help)\n"
        "\n"
        "options:\n"
        "  -b, --bootstrap LIST          bootstrap servers (default $KAFKA_BOOTSTRAP_SERVERS or\n"
        "                                localhost:9092)\n"
        "  -X name=value                 any librdkafka property\n"
        "  -v, --verbose                 show librdkafka logs\n"
        "  -h, --help                    this text\n"
        "      --version                 print the version\n",
        out);
}

static void kctl_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    /* syslog levels: 0..3 error, 4 warning, 5..6 notice/info, 7 debug */
    ss_log_level_t l = level <= 3   ? SS_LOG_ERROR
                       : level == 4 ? SS_LOG_WARN
                       : level <= 6 ? SS_LOG_INFO
                                    : SS_LOG_DEBUG;
    ss_log_kv(l, buf, "source", "librdkafka", "facility", fac, NULL);
}

static void kctl_quiet_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

static int kctl_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value) {
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        ss_log(SS_LOG_ERROR, "%s=%s: %s", name, value, errstr);
        return -1;
    }
    return 0;
}

/* A configuration with bootstrap, log callback and every -X applied. */
static rd_kafka_conf_t *kctl_conf_new(const kctl_opts_t *o) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, o->verbose ? kctl_log_cb : kctl_quiet_log_cb);
    if (kctl_conf_set(conf, "bootstrap.servers", o->bootstrap) != 0)
        goto fail;
    if (kctl_conf_set(conf, "client.id", "ss-kafkactl") != 0)
        goto fail;
    /* The shipstream limit (kafka/kafka.h), so that any message a service
     * produced can be produced and redriven again; -X may change it. */
    char mmb[24];
    snprintf(mmb, sizeof(mmb), "%d", SS_KAFKA_MAX_MESSAGE_BYTES);
    if (kctl_conf_set(conf, "message.max.bytes", mmb) != 0)
        goto fail;
    for (int i = 0; i < o->nx; i++) {
        char name[256];
        const char *eq = strchr(o->x[i], '=');
        if (!eq || (size_t)(eq - o->x[i]) >= sizeof(name)) {
            ss_log(SS_LOG_ERROR, "-X expects name=value, got '%s'", o->x[i]);
            goto fail;
        }
        memcpy(name, o->x[i], (size_t)(eq - o->x[i]));
        name[eq - o->x[i]] = '\0';
        if (kctl_conf_set(conf, name, eq + 1) != 0)
            goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static rd_kafka_t *kctl_new(const kctl_opts_t *o, rd_kafka_type_t type, rd_kafka_conf_t *conf) {
    char errstr[512];
    if (!conf)
        conf = kctl_conf_new(o);
    if (!conf)
        return NULL;
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (!rk) {
        ss_log(SS_LOG_ERROR, "rd_kafka_new: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return rk; /* conf now owned by rk */
}

static int kctl_ms_left(double deadline) {
    double left = deadline - kctl_now();
    if (left <= 0)
        return 0;
    return (int)(left * 1000.0) + 1;
}

/* ------------------------------------------------------------------ wait */
static int kctl_wait(const kctl_opts_t *o) {
    rd_kafka_t *rk = kctl_new(o, RD_KAFKA_PRODUCER, NULL);
    if (!rk)
        return 1;
    double deadline = kctl_now() + o->timeout_s;
    int rc = 1;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    while (!kctl_stop) {
        int left = kctl_ms_left(deadline);
        if (left <= 0)
            break;
        const struct rd_kafka_metadata *md = NULL;
        err = rd_kafka_metadata(rk, 0, NULL, &md, left < 1000 ? left : 1000);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            int brokers = md->broker_cnt;
            rd_kafka_metadata_destroy(md);
            if (brokers > 0) {
                rc = 0;
                break;
            }
        }
        usleep(100 * 1000);
    }
    if (rc != 0)
        ss_log(SS_LOG_ERROR, "no broker answered at %s within %.1f s (%s)", o->bootstrap,
               o->timeout_s, rd_kafka_err2str(err));
    rd_kafka_destroy(rk);
    return rc;
}

/* ------------------------------------------------------------------ topics */
static int kctl_topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms,
                                 bool *all_have_leaders) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int n = -1;
    *all_have_leaders = false;
    if (rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            n = md->topics[0].partition_cnt;
            *all_have_leaders = n > 0;
            for (int i = 0; i < n; i++)
                if (md->topics[0].partitions[i].leader < 0 ||
                    md->topics[0].partitions[i].err != RD_KAFKA_RESP_ERR_NO_ERROR)
                    *all_have_leaders = false;
        }
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return n;
}

static int kctl_create_topics(const kctl_opts_t *o) {
    char *names[64];
    size_t n = 0;
    int rc = 1;
    rd_kafka_NewTopic_t *nt[64] = {0};
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    char errstr[512];

    if (!o->prefix) {
        ss_log(SS_LOG_ERROR, "create-topics needs --prefix (may be empty: --prefix '')");
        return 2;
    }
    if (o->min_insync > o->replication) {
        /* Every acks=all produce would fail with NOT_ENOUGH_REPLICAS. */
        ss_log(SS_LOG_ERROR, "--min-insync %d is above --replication %d", o->min_insync,
               o->replication);
        return 2;
    }
    if (o->topics_csv) {
        char *dup = strdup(o->topics_csv), *save = NULL;
        for (char *t = strtok_r(dup, ",", &save); t && n < 64; t = strtok_r(NULL, ",", &save)) {
            if (asprintf(&names[n], "%s%s", o->prefix, t) < 0)
                abort();
            n++;
        }
        free(dup);
    } else {
        for (size_t i = 0; i < sizeof(kctl_topics_default) / sizeof(kctl_topics_default[0]); i++) {
            if (asprintf(&names[n], "%s%s", o->prefix, kctl_topics_default[i]) < 0)
                abort();
            n++;
        }
    }

    rd_kafka_t *rk = kctl_new(o, RD_KAFKA_PRODUCER, NULL);
    if (!rk)
        goto cleanup;
    /* acks=all then needs two copies: one broker may be down, none lost. */
    int min_insync = o->min_insync ? o->min_insync : o->replication >= 3 ? 2 : 0;
    char min_insync_s[16];
    snprintf(min_insync_s, sizeof(min_insync_s), "%d", min_insync);
    char max_message_s[24];
    snprintf(max_message_s, sizeof(max_message_s), "%d", SS_KAFKA_MAX_MESSAGE_BYTES);
    for (size_t i = 0; i < n; i++) {
        nt[i] =
            rd_kafka_NewTopic_new(names[i], o->partitions, o->replication, errstr, sizeof(errstr));
        if (!nt[i]) {
            ss_log(SS_LOG_ERROR, "topic %s: %s", names[i], errstr);
            goto cleanup;
        }
        if (min_insync &&
            rd_kafka_NewTopic_set_config(nt[i], "min.insync.replicas", min_insync_s) != 0) {
            ss_log(SS_LOG_ERROR, "topic %s: min.insync.replicas refused", names[i]);
            goto cleanup;
        }
        /* Every topic takes the largest message a shipstream producer may
         * send, whatever the broker's own message.max.bytes (1 MiB by
         * default). */
        if (rd_kafka_NewTopic_set_config(nt[i], "max.message.bytes", max_message_s) != 0) {
            ss_log(SS_LOG_ERROR, "topic %s: max.message.bytes refused", names[i]);
            goto cleanup;
        }
    }
    double deadline = kctl_now() + o->timeout_s;
    q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(ao, kctl_ms_left(deadline), errstr, sizeof(errstr));
    rd_kafka_AdminOptions_set_operation_timeout(ao, kctl_ms_left(deadline), errstr, sizeof(errstr));
    rd_kafka_CreateTopics(rk, nt, n, ao, q);
    rd_kafka_AdminOptions_destroy(ao);
    ev = rd_kafka_queue_poll(q, kctl_ms_left(deadline) + 1000);
    if (!ev) {
        ss_log(SS_LOG_ERROR, "create-topics: no answer within %.1f s", o->timeout_s);
        goto cleanup;
    }
    if (rd_kafka_event_error(ev)) {
        ss_log(SS_LOG_ERROR, "create-topics: %s", rd_kafka_event_error_string(ev));
        goto cleanup;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t rn = 0;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &rn);
    int failed = 0;
    for (size_t i = 0; i < rn; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR && min_insync)
            ss_log(SS_LOG_INFO, "created %s (min.insync.replicas %d)",
                   rd_kafka_topic_result_name(tr[i]), min_insync);
        else if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            ss_log(SS_LOG_INFO, "created %s", rd_kafka_topic_result_name(tr[i]));
        else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            ss_log(SS_LOG_INFO, "exists %s", rd_kafka_topic_result_name(tr[i]));
        else {
            ss_log(SS_LOG_ERROR, "topic %s: %s", rd_kafka_topic_result_name(tr[i]),
                   rd_kafka_topic_result_error_string(tr[i])
                       ? rd_kafka_topic_result_error_string(tr[i])
                       : rd_kafka_err2str(e));
            failed++;
        }
    }
    if (failed)
        goto cleanup;

    /* Wait until the metadata shows every topic with a leader for every
   * partition: a producer started right after us must not see "unknown". */
    for (size_t i = 0; i < n; i++) {
        bool ok = false;
        while (!kctl_stop) {
            int left = kctl_ms_left(deadline);
            if (left <= 0)
                break;
            int parts = kctl_topic_partitions(rk, names[i], left < 2000 ? left : 2000, &ok);
            if (parts > 0 && ok)
                break;
            usleep(50 * 1000);
        }
        if (!ok) {
            ss_log(SS_LOG_ERROR, "topic %s has no leaders after %.1f s", names[i], o->timeout_s);
            goto cleanup;
        }
    }
    rc = 0;

cleanup:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (q)
        rd_kafka_queue_destroy(q);
    for (size_t i = 0; i < n; i++) {
        if (nt[i])
            rd_kafka_NewTopic_destroy(nt[i]);
        free(names[i]);
    }
    if (rk)
        rd_kafka_destroy(rk);
    return rc;
}

static int kctl_list_topics(const kctl_opts_t *o) {
    rd_kafka_t *rk = kctl_new(o, RD_KAFKA_PRODUCER, NULL);
    if (!rk)
        return 1;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, (int)(o->timeout_s * 1000));
    if (err) {
        ss_log(SS_LOG_ERROR, "metadata: %s", rd_kafka_err2str(err));
        rd_kafka_destroy(rk);
        return 1;
    }
    for (int i = 0; i < md->topic_cnt; i++)
        printf("%s\t%d\n", md->topics[i].topic, md->topics[i].partition_cnt);
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return 0;
}

/* ------------------------------------------------------------------ produce */
typedef struct {
    long delivered;
    long failed;
} kctl_dr_t;

static void kctl_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    kctl_dr_t *dr = opaque;
    if (m->err) {
        if (dr->failed < 5)
            ss_log(SS_LOG_ERROR, "delivery failed: %s", rd_kafka_err2str(m->err));
        dr->failed++;
    } else {
        dr->delivered++;
    }
}

static int kctl_produce(const kctl_opts_t *o) {
    if (!o->topic) {
        ss_log(SS_LOG_ERROR, "produce needs -t TOPIC");
        return 2;
    }
    kctl_dr_t dr = {0, 0};
    rd_kafka_conf_t *conf = kctl_conf_new(o);
    if (!conf)
        return 1;
    if (kctl_conf_set(conf, "enable.idempotence", "true") != 0 ||
        kctl_conf_set(conf, "linger.ms", "5") != 0) {
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, kctl_dr_cb);
    rd_kafka_conf_set_opaque(conf, &dr);
    rd_kafka_t *rk = kctl_new(o, RD_KAFKA_PRODUCER, conf);
    if (!rk)
        return 1;

    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long sent = 0, not_queued = 0;
    while (!kctl_stop && (len = getline(&line, &cap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        char *tab = memchr(line, '\t', (size_t)len);
        const char *key = NULL, *val = line;
        size_t klen = 0, vlen = (size_t)len;
        if (tab) {
            key = line;
            klen = (size_t)(tab - line);
            val = tab + 1;
            vlen = (size_t)len - klen - 1;
        }
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(o->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 100);
                continue;
            }
            if (err) {
                ss_log(SS_LOG_ERROR, "produce: %s", rd_kafka_err2str(err));
                not_queued++;
            } else {
                sent++;
            }
            break;
        }
        rd_kafka_poll(rk, 0);
    }
    free(line);
    double deadline = kctl_now() + o->timeout_s;
    while (rd_kafka_outq_len(rk) > 0 && !kctl_stop) {
        int left = kctl_ms_left(deadline);
        if (left <= 0)
            break;
        rd_kafka_flush(rk, left < 500 ? left : 500);
    }
    int left_in_queue = rd_kafka_outq_len(rk);
    rd_kafka_destroy(rk);
    long failed = dr.failed + not_queued + (sent - dr.delivered - dr.failed);
    ss_log(SS_LOG_INFO, "produced %ld messages to %s (%ld failed%s)", dr.delivered, o->topic,
           failed, left_in_queue > 0 ? ", some never acknowledged before the timeout" : "");
    return (failed > 0 || left_in_queue > 0 || kctl_stop) ? 1 : 0;
}

/* ------------------------------------------------------------------ consume */
static void kctl_print_escaped(const char *p, size_t n) {
    fwrite(p, 1, n, stdout);
}

static void kctl_print_message(const kctl_opts_t *o, const rd_kafka_message_t *m) {
    printf("%" PRId32 "\t%" PRId64 "\t", m->partition, m->offset);
    if (m->key)
        kctl_print_escaped(m->key, m->key_len);
    putchar('\t');
    if (m->payload)
        kctl_print_escaped(m->payload, m->len);
    if (o->headers) {
        rd_kafka_headers_t *hdrs = NULL;
        putchar('\t');
        if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            const char *name;
            const void *val;
            size_t sz;
            for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &sz) == 0; i++) {
                printf("%s%s=", i ? "," : "", name);
                if (val)
                    kctl_print_escaped(val, sz);
            }
        }
    }
    putchar('\n');
}

static int kctl_consume(const kctl_opts_t *o) {
    if (!o->topic) {
        ss_log(SS_LOG_ERROR, "consume needs -t TOPIC");
        return 2;
    }
    rd_kafka_conf_t *conf = kctl_conf_new(o);
    if (!conf)
        return 1;
    char group[128];
    if (o->group)
        snprintf(group, sizeof(group), "%s", o->group);
    else
        snprintf(group, sizeof(group), "ss-kafkactl-%ld", (long)getpid());
    if (kctl_conf_set(conf, "group.id", group) != 0 ||
        kctl_conf_set(conf, "auto.offset.reset", "earliest") != 0 ||
        kctl_conf_set(conf, "enable.partition.eof", "true") != 0 ||
        kctl_conf_set(conf, "enable.auto.commit", o->group ? "true" : "false") != 0 ||
        kctl_conf_set(conf, "enable.auto.offset.store", "true") != 0) {
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_t *rk = kctl_new(o, RD_KAFKA_CONSUMER, conf);
    if (!rk)
        return 1;
    rd_kafka_poll_set_consumer(rk);
    double deadline = kctl_now() + o->timeout_s;
    int rc = 1;
    int nparts = 0;
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;

    if (o->group) {
        rd_kafka_topic_partition_list_add(tl, o->topic, RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(rk, tl);
    } else {
        /* No group: read every partition from the beginning, no rebalance wait. */
        bool leaders;
        while ((nparts = kctl_topic_partitions(rk, o->topic, 1000, &leaders)) <= 0 &&
               kctl_ms_left(deadline) > 0 && !kctl_stop)
            usleep(100 * 1000);
        if (nparts <= 0) {
            ss_log(SS_LOG_ERROR, "topic %s not found", o->topic);
            rd_kafka_topic_partition_list_destroy(tl);
            rd_kafka_consumer_close(rk);
            rd_kafka_destroy(rk);
            return 1;
        }
        for (int p = 0; p < nparts; p++)
            rd_kafka_topic_partition_list_add(tl, o->topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        err = rd_kafka_assign(rk, tl);
    }
    rd_kafka_topic_partition_list_destroy(tl);
    if (err) {
        ss_log(SS_LOG_ERROR, "%s: %s", o->group ? "subscribe" : "assign", rd_kafka_err2str(err));
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return 1;
    }

    long got = 0;
    int at_end = 0;
    bool *eof = calloc((size_t)(nparts > 0 ? nparts : 1024), sizeof(bool));
    int eof_cap = nparts > 0 ? nparts : 1024;
    while (!kctl_stop) {
        if (o->count > 0 && got >= o->count)
            break;
        int left = kctl_ms_left(deadline);
        if (left <= 0)
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, left < 200 ? left : 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < eof_cap && !eof[m->partition]) {
                eof[m->partition] = true;
                at_end++;
            }
            rd_kafka_message_destroy(m);
            if (o->until_end && nparts > 0 && at_end >= nparts)
                break;
            continue;
        }
        if (m->err) {
            ss_log(SS_LOG_ERROR, "consume: %s", rd_kafka_message_errstr(m));
            bool fatal = m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                         m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
            rd_kafka_message_destroy(m);
            if (fatal)
                break;
            continue;
        }
        if (m->partition >= 0 && m->partition < eof_cap && eof[m->partition]) {
            eof[m->partition] = false;
            at_end--;
        }
        kctl_print_message(o, m);
        got++;
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);
    free(eof);
    if (o->count > 0)
        rc = got >= o->count ? 0 : 1;
    else
        rc = 0;
    if (rc != 0)
        ss_log(SS_LOG_ERROR, "consumed %ld of %ld messages from %s before the timeout", got,
               o->count, o->topic);
    if (o->group)
        rd_kafka_commit(rk, NULL, 0);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

/* ------------------------------------------------------------------ offsets */
static int kctl_offsets(const kctl_opts_t *o) {
    if (!o->topic) {
        ss_log(SS_LOG_ERROR, "offsets needs -t TOPIC");
        return 2;
    }
    /* With -g a consumer handle of that group reads its committed offsets;
     * it never subscribes, so it does not join the group. */
    rd_kafka_conf_t *conf = kctl_conf_new(o);
    if (!conf)
        return 1;
    if (o->group && kctl_conf_set(conf, "group.id", o->group) != 0) {
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_t *rk = kctl_new(o, o->group ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER, conf);
    if (!rk)
        return 1;
    int tmo = (int)(o->timeout_s * 1000);
    double deadline = kctl_now() + o->timeout_s;
    bool leaders;
    int n = kctl_topic_partitions(rk, o->topic, tmo, &leaders);
    if (n <= 0) {
        ss_log(SS_LOG_ERROR, "topic %s not found", o->topic);
        rd_kafka_destroy(rk);
        return 1;
    }
    rd_kafka_topic_partition_list_t *committed = NULL;
    if (o->group) {
        committed = rd_kafka_topic_partition_list_new(n);
        for (int p = 0; p < n; p++)
            rd_kafka_topic_partition_list_add(committed, o->topic, p);
        rd_kafka_resp_err_t err = rd_kafka_committed(
            rk, committed, kctl_ms_left(deadline) > 0 ? kctl_ms_left(deadline) : 1);
        if (err) {
            ss_log(SS_LOG_ERROR, "committed offsets of group %s: %s", o->group,
                   rd_kafka_err2str(err));
            rd_kafka_topic_partition_list_destroy(committed);
            rd_kafka_destroy(rk);
            return 1;
        }
    }
    int64_t sum = 0;
    for (int p = 0; p < n; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t err;
        /* Right after topic creation or a broker restart the leader may not be
     * known yet: retry what is retriable until the deadline. */
        while ((err = rd_kafka_query_watermark_offsets(
                    rk, o->topic, p, &lo, &hi,
                    kctl_ms_left(deadline) > 0 ? kctl_ms_left(deadline) : 1)) &&
               (err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
                err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
                err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__TIMED_OUT) &&
               kctl_ms_left(deadline) > 0 && !kctl_stop)
            usleep(100 * 1000);
        if (err) {
            ss_log(SS_LOG_ERROR, "%s [%d]: %s", o->topic, p, rd_kafka_err2str(err));
            if (committed)
                rd_kafka_topic_partition_list_destroy(committed);
            rd_kafka_destroy(rk);
            return 1;
        }
        if (!committed) {
            sum += hi;
            if (!o->sum)
                printf("%d\t%" PRId64 "\n", p, hi);
            continue;
        }
        int64_t c = committed->elems[p].offset; /* < 0: the group committed nothing */
        int64_t lag = hi - (c >= 0 ? c : lo);
        if (lag < 0)
            lag = 0;
        sum += lag;
        if (!o->sum)
            printf("%d\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\n", p, hi, c >= 0 ? c : -1, lag);
    }
    if (o->sum)
        printf("%" PRId64 "\n", sum);
    if (committed)
        rd_kafka_topic_partition_list_destroy(committed);
    rd_kafka_destroy(rk);
    return 0;
}

/* ------------------------------------------------------------------ main */
int main(int argc, char **argv) {
    kctl_opts_t o = {
        .bootstrap = NULL,
        .count = 0,
        .timeout_s = 30.0,
        .partitions = 12,
        .replication = 1,
    };
    enum {
        OPT_TIMEOUT = 256,
        OPT_PREFIX,
        OPT_PARTITIONS,
        OPT_REPLICATION,
        OPT_TOPICS,
        OPT_HEADERS,
        OPT_UNTIL_END,
        OPT_SUM,
        OPT_MIN_INSYNC
    };
    static const struct option longopts[] = {
        {"bootstrap", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"count", required_argument, NULL, 'n'},
        {"group", required_argument, NULL, 'g'},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"prefix", required_argument, NULL, OPT_PREFIX},
        {"partitions", required_argument, NULL, OPT_PARTITIONS},
        {"replication", required_argument, NULL, OPT_REPLICATION},
        {"topics", required_argument, NULL, OPT_TOPICS},
        {"headers", no_argument, NULL, OPT_HEADERS},
        {"until-end", no_argument, NULL, OPT_UNTIL_END},
        {"sum", no_argument, NULL, OPT_SUM},
        {"min-insync", required_argument, NULL, OPT_MIN_INSYNC},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    if (kctl_dlq_find(argc, argv) > 0)
        return kctl_dlq_main(argc, argv); /* dlq.c */
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "b:t:n:g:X:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': o.bootstrap = optarg; break;
        case 't': o.topic = optarg; break;
        case 'g': o.group = optarg; break;
        case 'v': o.verbose = true; break;
        case 'h': kctl_usage(stdout); return 0;
        case 'V':
            printf("ss-kafkactl %s (librdkafka %s)\n", SS_VERSION, rd_kafka_version_str());
            return 0;
        case 'X':
            if (o.nx >= KCTL_MAX_X) {
                fprintf(stderr, "ss-kafkactl: too many -X\n");
                return 2;
            }
            o.x[o.nx++] = optarg;
            break;
        case 'n':
            errno = 0;
            o.count = strtol(optarg, &end, 10);
            if (errno || *end || o.count < 0) {
                fprintf(stderr, "ss-kafkactl: -n expects a count >= 0, got '%s'\n", optarg);
                return 2;
            }
            break;
        case OPT_TIMEOUT:
            errno = 0;
            o.timeout_s = strtod(optarg, &end);
            if (errno || *end || o.timeout_s <= 0) {
                fprintf(stderr, "ss-kafkactl: --timeout expects seconds > 0, got '%s'\n", optarg);
                return 2;
            }
            break;
        case OPT_PREFIX: o.prefix = optarg; break;
        case OPT_PARTITIONS:
        case OPT_REPLICATION:
        case OPT_MIN_INSYNC: {
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || *end || v < 1 || v > 10000) {
                fprintf(stderr, "ss-kafkactl: --%s expects 1..10000, got '%s'\n",
                        c == OPT_PARTITIONS    ? "partitions"
                        : c == OPT_REPLICATION ? "replication"
                                               : "min-insync",
                        optarg);
                return 2;
            }
            if (c == OPT_PARTITIONS)
                o.partitions = (int)v;
            else if (c == OPT_REPLICATION)
                o.replication = (int)v;
            else
                o.min_insync = (int)v;
            break;
        }
        case OPT_TOPICS: o.topics_csv = optarg; break;
        case OPT_HEADERS: o.headers = true; break;
        case OPT_UNTIL_END: o.until_end = true; break;
        case OPT_SUM: o.sum = true; break;
        default: kctl_usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        kctl_usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind];
    if (!o.bootstrap) {
        const char *env = getenv("KAFKA_BOOTSTRAP_SERVERS");
        o.bootstrap = (env && *env) ? env : "localhost:9092";
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kctl_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Logs are text unless LOG_FORMAT=json; -v adds librdkafka's debug lines. */
    const char *log_level = o.verbose ? "debug" : "info", *log_format = getenv("LOG_FORMAT");
    char lerr[128];
    if (!log_format || ss_log_init("ss-kafkactl", log_level, log_format, lerr, sizeof lerr) != 0)
        ss_log_init("ss-kafkactl", log_level, "text", lerr, sizeof lerr);

    if (strcmp(cmd, "wait") == 0)
        return kctl_wait(&o);
    if (strcmp(cmd, "create-topics") == 0)
        return kctl_create_topics(&o);
    if (strcmp(cmd, "produce") == 0)
        return kctl_produce(&o);
    if (strcmp(cmd, "consume") == 0)
        return kctl_consume(&o);
    if (strcmp(cmd, "offsets") == 0)
        return kctl_offsets(&o);
    if (strcmp(cmd, "topics") == 0)
        return kctl_list_topics(&o);
    if (strcmp(cmd, "help") == 0) {
        kctl_usage(stdout);
        return 0;
    }
    fprintf(stderr, "ss-kafkactl: unknown command '%s'\n", cmd);
    kctl_usage(stderr);
    return 2;
}
