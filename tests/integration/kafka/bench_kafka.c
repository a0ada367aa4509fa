/* Kafka benchmark against a real broker (bench/kafka/bench.sh):
 *   produce-and-wait latency p50/p99 through ss_kafka (send + delivery_wait,
 *   one message at a time), baseline: rd_kafka_metadata round trips on the
 *   same connection;
 *   consume throughput through ss_kafka_consumer from a pre-filled topic,
 *   baseline: a raw librdkafka consume loop with the same settings.
 * Usage: ss-bench-kafka BOOTSTRAP [latency_samples] [fill_messages]
 * Prints "RESULT name value unit baseline" lines on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <common/log.h>
#include <common/sstime.h>
#include <common/stats.h>
#include <kafka/kafka.h>

#include "common.h"

static int bench_latency(const char *bootstrap, const char *topic, int n) {
    char err[512];
    static const char *const ov[] = {"linger.ms", "0", NULL};
    ss_kafka_producer_opts_t po = {.bootstrap = bootstrap, .client_id = "bench", .overrides = ov};
    ss_kafka_producer_t *p = ss_kafka_producer_new(&po, err, sizeof(err));
    if (!p) {
        fprintf(stderr, "producer: %s\n", err);
        return -1;
    }
    double *lat = calloc((size_t)n, sizeof(double));
    double *base = calloc((size_t)n, sizeof(double));
    char val[200];
    memset(val, 'x', sizeof(val));
    rd_kafka_t *rk = ss_kafka_producer_handle(p);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int rc = 0;
    for (int i = -50; i < n && rc == 0; i++) { /* 50 warm-up rounds */
        char key[32];
        int kl = snprintf(key, sizeof(key), "k%d", i & 63);
        ss_kafka_delivery_t *d = NULL;
        int64_t t0 = ss_time_mono_usec();
        if (ss_kafka_producer_send(p, topic, key, (size_t)kl, val, sizeof(val), NULL, 0, &d, err,
                                   sizeof(err)) != 0 ||
            ss_kafka_delivery_wait(d, 10000, err, sizeof(err)) != 0) {
            fprintf(stderr, "produce: %s\n", err);
            rc = -1;
            break;
        }
        int64_t t1 = ss_time_mono_usec();
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != 0) {
            fprintf(stderr, "metadata failed\n");
            rc = -1;
            break;
        }
        int64_t t2 = ss_time_mono_usec();
        rd_kafka_metadata_destroy(md);
        if (i >= 0) {
            lat[i] = (double)(t1 - t0) / 1000.0;
            base[i] = (double)(t2 - t1) / 1000.0;
        }
    }
    if (rc == 0) {
        printf("RESULT kafka_produce_wait_p50 %.3f ms %.3f\n",
               ss_stats_percentile(lat, (size_t)n, 50), ss_stats_percentile(base, (size_t)n, 50));
        printf("RESULT kafka_produce_wait_p99 %.3f ms %.3f\n",
               ss_stats_percentile(lat, (size_t)n, 99), ss_stats_percentile(base, (size_t)n, 99));
    }
    rd_kafka_topic_destroy(rkt);
    free(lat);
    free(base);
    ss_kafka_producer_close(p, 5000);
    return rc;
}

static int fill(const char *bootstrap, const char *topic, int n) {
    char err[512];
    static const char *const ov[] = {"linger.ms", "20", "batch.num.messages", "10000", NULL};
    ss_kafka_producer_opts_t po = {
        .bootstrap = bootstrap, .client_id = "bench-fill", .overrides = ov};
    ss_kafka_producer_t *p = ss_kafka_producer_new(&po, err, sizeof(err));
    if (!p) {
        fprintf(stderr, "producer: %s\n", err);
        return -1;
    }
    char val[200];
    memset(val, 'y', sizeof(val));
    for (int i = 0; i < n; i++) {
        char key[32];
        int kl = snprintf(key, sizeof(key), "shp_%d", i % 5000);
        if (ss_kafka_producer_send(p, topic, key, (size_t)kl, val, sizeof(val), NULL, 0, NULL, err,
                                   sizeof(err)) != 0) {
            fprintf(stderr, "fill: %s\n", err);
            ss_kafka_producer_close(p, 10000);
            return -1;
        }
    }
    return ss_kafka_producer_close(p, 60000) == 0 ? 0 : -1;
}

/* Messages per second from the first message to the n-th. */
static double consume_ours(const char *bootstrap, const char *topic, int n) {
    char err[512], group[64];
    it_unique("bench-ours-", group, sizeof(group));
    const char *const topics[] = {topic};
    ss_kafka_consumer_opts_t co = {.bootstrap = bootstrap,
                                   .group_id = group,
                                   .client_id = "bench-ours",
                                   .topics = topics,
                                   .ntopics = 1};
    ss_kafka_consumer_t *c = ss_kafka_consumer_new(&co, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "consumer: %s\n", err);
        return -1;
    }
    int got = 0;
    int64_t t0 = 0, deadline = ss_time_mono_usec() + 120 * 1000000LL;
    size_t bytes = 0;
    while (got < n && ss_time_mono_usec() < deadline) {
        rd_kafka_message_t *m = ss_kafka_consumer_poll(c, 500);
        if (!m)
            continue;
        if (!m->err) {
            if (got++ == 0)
                t0 = ss_time_mono_usec();
            bytes += m->len;
        }
        rd_kafka_message_destroy(m);
    }
    double secs = (double)(ss_time_mono_usec() - t0) / 1e6;
    ss_kafka_consumer_close(c);
    (void)bytes;
    return got == n && secs > 0 ? (got - 1) / secs : -1;
}

static double consume_raw(const char *bootstrap, const char *topic, int n) {
    char err[512], group[64];
    it_unique("bench-raw-", group, sizeof(group));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err));
    rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
    rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", err, sizeof(err));
    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "raw consumer: %s\n", err);
        return -1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    int got = 0;
    int64_t t0 = 0, deadline = ss_time_mono_usec() + 120 * 1000000LL;
    while (got < n && ss_time_mono_usec() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m)
            continue;
        if (!m->err && got++ == 0)
            t0 = ss_time_mono_usec();
        rd_kafka_message_destroy(m);
    }
    double secs = (double)(ss_time_mono_usec() - t0) / 1e6;
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return got == n && secs > 0 ? (got - 1) / secs : -1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: ss-bench-kafka BOOTSTRAP [latency_samples] [fill_messages]\n");
        return 2;
    }
    const char *bootstrap = argv[1];
    int samples = argc > 2 ? atoi(argv[2]) : 2000;
    int nfill = argc > 3 ? atoi(argv[3]) : 200000;
    if (samples < 10 || nfill < 1000) {
        fprintf(stderr, "ss-bench-kafka: too few samples or messages\n");
        return 2;
    }
    char e[128];
    ss_log_init("bench-kafka", "warn", "text", e, sizeof(e));

    char lat_topic[96], fill_topic[96];
    it_unique("bench_lat_", lat_topic, sizeof(lat_topic));
    it_unique("bench_fill_", fill_topic, sizeof(fill_topic));
    if (it_create_topic(bootstrap, lat_topic, 12, 30000) != 0 ||
        it_create_topic(bootstrap, fill_topic, 12, 30000) != 0)
        return 1;
    if (bench_latency(bootstrap, lat_topic, samples) != 0)
        return 1;

    int64_t t0 = ss_time_mono_usec();
    if (fill(bootstrap, fill_topic, nfill) != 0)
        return 1;
    fprintf(stderr, "filled %d messages in %.2f s\n", nfill,
            (double)(ss_time_mono_usec() - t0) / 1e6);

    /* Alternate, best of two each, so that neither side gets a colder cache. */
    double ours = -1, raw = -1;
    for (int round = 0; round < 2; round++) {
        double r = consume_raw(bootstrap, fill_topic, nfill);
        double o = consume_ours(bootstrap, fill_topic, nfill);
        if (r > raw)
            raw = r;
        if (o > ours)
            ours = o;
    }
    if (ours < 0 || raw < 0) {
        fprintf(stderr, "consume did not read every message\n");
        return 1;
    }
    printf("RESULT kafka_consume_throughput %.0f msg/s %.0f\n", ours, raw);
    return 0;
}
