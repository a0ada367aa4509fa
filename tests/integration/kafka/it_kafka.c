/* Integration test of libs/kafka against the real broker of
 * tests/integration/harness.sh (SS_TEST_KAFKA_BOOTSTRAP):
 *   1. 10,000 keyed messages through our producer and back through a
 *      consumer group with our consumer: nothing lost, every key in order
 *      within one partition;
 *   2. one message's delivery report waited for;
 *   3. a producer against a port with nothing listening fails within a
 *      bounded time with a clear error;
 *   4. the consumer's on_assign offsets are honoured;
 *   5. a consumer paused before a rebalance, resumed while it held no
 *      partition (as the sync worker does when PostgreSQL comes back during
 *      a rebalance), reads its new partitions: librdkafka keeps a partition's
 *      pause flag across revoke and re-assign, libs/kafka must clear it.
 * Exit status 0 when everything passed. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <common/log.h>
#include <common/metrics.h>
#include <common/sstime.h>
#include <kafka/kafka.h>

#include "common.h"

#define NMSG  10000
#define NKEYS 200
#define NPART 12

static int failures;

#define CHECK(cond, ...)                                         \
    do {                                                         \
        if (!(cond)) {                                           \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                        \
            fprintf(stderr, "\n");                               \
            failures++;                                          \
        }                                                        \
    } while (0)

static const char *bootstrap;

static double since(int64_t t0) {
    return (double)(ss_time_mono_usec() - t0) / 1e6;
}

/* ---- 1 + 2: round trip ---- */

static int test_round_trip(const char *topic, const char *group) {
    char err[512];
    static const char *const ov[] = {"linger.ms", "5", NULL};
    ss_kafka_producer_opts_t po = {
        .bootstrap = bootstrap, .client_id = "it-kafka", .overrides = ov};
    ss_kafka_producer_t *p = ss_kafka_producer_new(&po, err, sizeof(err));
    if (!p) {
        CHECK(0, "producer: %s", err);
        return -1;
    }
    char labels[256];
    snprintf(labels, sizeof(labels), "topic=\"%s\"", topic);
    ss_counter_t *produced = ss_counter("kafka_produced_total", "", labels);
    uint64_t before = ss_counter_value(produced);

    int64_t t0 = ss_time_mono_usec();
    ss_kafka_delivery_t *one = NULL;
    for (int i = 0; i < NMSG; i++) {
        char key[32], val[64];
        int k = i % NKEYS, seq = i / NKEYS;
        int kl = snprintf(key, sizeof(key), "key-%03d", k);
        int vl = snprintf(val, sizeof(val), "%d|%d", k, seq);
        ss_kafka_header_t h = {"seq", val, (size_t)vl};
        if (ss_kafka_producer_send(p, topic, key, (size_t)kl, val, (size_t)vl, &h, 1,
                                   i == NMSG / 2 ? &one : NULL, err, sizeof(err)) != 0) {
            CHECK(0, "send %d: %s", i, err);
            ss_kafka_producer_close(p, 1000);
            return -1;
        }
    }
    /* 2: one message's delivery report. */
    int rc = ss_kafka_delivery_wait(one, 30000, err, sizeof(err));
    CHECK(rc == 0, "delivery of message %d: %d %s", NMSG / 2, rc, err);
    CHECK(ss_kafka_producer_connected(p), "producer not connected");
    int left = ss_kafka_producer_close(p, 30000);
    CHECK(left == 0, "%d messages left at close", left);
    uint64_t acked = ss_counter_value(produced) - before;
    CHECK(acked == NMSG, "kafka_produced_total grew by %" PRIu64 ", want %d", acked, NMSG);
    fprintf(stderr, "produced %d messages in %.2f s\n", NMSG, since(t0));

    /* Consume through a group. */
    const char *const topics[] = {topic};
    ss_kafka_consumer_opts_t co = {.bootstrap = bootstrap,
                                   .group_id = group,
                                   .client_id = "it-kafka-consumer",
                                   .topics = topics,
                                   .ntopics = 1};
    ss_kafka_consumer_t *c = ss_kafka_consumer_new(&co, err, sizeof(err));
    if (!c) {
        CHECK(0, "consumer: %s", err);
        return -1;
    }
    int next_seq[NKEYS], key_part[NKEYS];
    int64_t last_off[NPART];
    for (int i = 0; i < NKEYS; i++) {
        next_seq[i] = 0;
        key_part[i] = -1;
    }
    for (int i = 0; i < NPART; i++)
        last_off[i] = -1;
    int got = 0, bad = 0;
    t0 = ss_time_mono_usec();
    int64_t deadline = t0 + 120 * 1000000LL;
    while (got < NMSG && ss_time_mono_usec() < deadline) {
        rd_kafka_message_t *m = ss_kafka_consumer_poll(c, 500);
        if (!m)
            continue;
        if (m->err) {
            fprintf(stderr, "consumer error: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        got++;
        char val[64];
        size_t vl = m->len < sizeof(val) - 1 ? m->len : sizeof(val) - 1;
        memcpy(val, m->payload, vl);
        val[vl] = '\0';
        int k = -1, seq = -1;
        if (sscanf(val, "%d|%d", &k, &seq) != 2 || k < 0 || k >= NKEYS || m->partition < 0 ||
            m->partition >= NPART) {
            if (bad++ < 5)
                CHECK(0, "unexpected message %s on partition %d", val, (int)m->partition);
        } else {
            char key[32];
            snprintf(key, sizeof(key), "key-%03d", k);
            if (m->key_len != strlen(key) || memcmp(m->key, key, m->key_len) != 0)
                if (bad++ < 5)
                    CHECK(0, "key mismatch for %s", val);
            if (seq != next_seq[k] && bad++ < 5)
                CHECK(0, "key %d: seq %d arrived when %d was expected (order broken)", k, seq,
                      next_seq[k]);
            next_seq[k] = seq + 1;
            if (key_part[k] >= 0 && key_part[k] != m->partition && bad++ < 5)
                CHECK(0, "key %d on partitions %d and %d", k, key_part[k], (int)m->partition);
            key_part[k] = m->partition;
            if (m->offset <= last_off[m->partition] && bad++ < 5)
                CHECK(0, "partition %d offset went back", (int)m->partition);
            last_off[m->partition] = m->offset;
        }
        rd_kafka_message_destroy(m);
    }
    CHECK(got == NMSG, "consumed %d of %d messages", got, NMSG);
    int lost = 0;
    for (int k = 0; k < NKEYS; k++)
        if (next_seq[k] != NMSG / NKEYS)
            lost++;
    CHECK(lost == 0, "%d keys did not see all their messages", lost);
    CHECK(bad == 0, "%d ordering/content problems", bad);
    fprintf(stderr, "consumed %d messages in %.2f s\n", got, since(t0));

    /* Commit where we are, and read it back. */
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(NPART);
    for (int i = 0; i < NPART; i++)
        if (last_off[i] >= 0)
            rd_kafka_topic_partition_list_add(offs, topic, i)->offset = last_off[i] + 1;
    rc = ss_kafka_consumer_commit(c, offs, 0, err, sizeof(err));
    CHECK(rc == 0, "commit: %s", err);
    rd_kafka_topic_partition_list_t *check = rd_kafka_topic_partition_list_copy(offs);
    for (int i = 0; i < check->cnt; i++)
        check->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
    rd_kafka_committed(ss_kafka_consumer_handle(c), check, 10000);
    for (int i = 0; i < check->cnt; i++)
        CHECK(check->elems[i].offset == offs->elems[i].offset,
              "committed offset of partition %d is %" PRId64 ", want %" PRId64,
              (int)check->elems[i].partition, check->elems[i].offset, offs->elems[i].offset);
    rd_kafka_topic_partition_list_destroy(check);
    rd_kafka_topic_partition_list_destroy(offs);

    /* Seek back on one partition and re-read its last message. */
    for (int i = 0; i < NPART; i++) {
        if (last_off[i] < 0)
            continue;
        rc = ss_kafka_consumer_seek(c, topic, i, last_off[i], err, sizeof(err));
        CHECK(rc == 0, "seek: %s", err);
        int again = 0;
        deadline = ss_time_mono_usec() + 20 * 1000000LL;
        while (!again && ss_time_mono_usec() < deadline) {
            rd_kafka_message_t *m = ss_kafka_consumer_poll(c, 500);
            if (!m)
                continue;
            if (!m->err && m->partition == i) {
                CHECK(m->offset == last_off[i], "after seek read offset %" PRId64, m->offset);
                again = 1;
            }
            rd_kafka_message_destroy(m);
        }
        CHECK(again, "nothing re-read after seek");
        break;
    }
    ss_kafka_consumer_close(c);
    return 0;
}

/* ---- 3: unreachable broker ---- */

static void test_unreachable(void) {
    char bs[64], err[512];
    snprintf(bs, sizeof(bs), "127.0.0.1:%d", it_free_port());
    static const char *const ov[] = {"message.timeout.ms", "2000", NULL};
    ss_kafka_producer_opts_t po = {.bootstrap = bs, .client_id = "it-unreachable", .overrides = ov};
    ss_kafka_producer_t *p = ss_kafka_producer_new(&po, err, sizeof(err));
    if (!p) {
        CHECK(0, "producer: %s", err);
        return;
    }
    int64_t t0 = ss_time_mono_usec();
    ss_kafka_delivery_t *d = NULL;
    int rc = ss_kafka_producer_send(p, "anything", "k", 1, "v", 1, NULL, 0, &d, err, sizeof(err));
    CHECK(rc == 0, "send: %s", err);
    rc = ss_kafka_delivery_wait(d, 20000, err, sizeof(err));
    double secs = since(t0);
    CHECK(rc == -1, "delivery to %s returned %d, want -1", bs, rc);
    CHECK(strstr(err, "timed out") != NULL, "unclear error: %s", err);
    CHECK(secs < 10.0, "took %.1f s to fail", secs);
    CHECK(!ss_kafka_producer_connected(p), "connected to nothing?");
    fprintf(stderr, "unreachable broker: \"%s\" after %.2f s\n", err, secs);
    CHECK(ss_kafka_producer_close(p, 1000) == 0, "messages left");
}

/* ---- 4: on_assign offsets ---- */

struct start_at {
    int64_t offset;
    int calls;
};

static int start_at_assign(void *ud, rd_kafka_topic_partition_list_t *parts) {
    struct start_at *s = ud;
    s->calls++;
    for (int i = 0; i < parts->cnt; i++)
        parts->elems[i].offset = s->offset;
    return 0;
}

static void test_assign_offsets(const char *topic, const char *group) {
    const int64_t start = 10;
    int64_t expect = 0, hi[NPART];
    for (int i = 0; i < NPART; i++) {
        int64_t lo;
        if (it_watermarks(bootstrap, topic, i, &lo, &hi[i]) != 0) {
            CHECK(0, "watermarks");
            return;
        }
        if (hi[i] > start)
            expect += hi[i] - start;
    }
    char err[512];
    struct start_at sa = {.offset = start};
    const char *const topics[] = {topic};
    ss_kafka_consumer_opts_t co = {.bootstrap = bootstrap,
                                   .group_id = group,
                                   .client_id = "it-kafka-assign",
                                   .topics = topics,
                                   .ntopics = 1,
                                   .on_assign = start_at_assign,
                                   .ud = &sa};
    ss_kafka_consumer_t *c = ss_kafka_consumer_new(&co, err, sizeof(err));
    if (!c) {
        CHECK(0, "consumer: %s", err);
        return;
    }
    int64_t first[NPART];
    for (int i = 0; i < NPART; i++)
        first[i] = -1;
    int64_t got = 0;
    int64_t deadline = ss_time_mono_usec() + 90 * 1000000LL;
    while (got < expect && ss_time_mono_usec() < deadline) {
        rd_kafka_message_t *m = ss_kafka_consumer_poll(c, 500);
        if (!m)
            continue;
        if (!m->err && m->partition >= 0 && m->partition < NPART) {
            if (first[m->partition] < 0)
                first[m->partition] = m->offset;
            got++;
        }
        rd_kafka_message_destroy(m);
    }
    CHECK(got == expect, "read %" PRId64 " messages from offset %" PRId64 ", want %" PRId64, got,
          start, expect);
    CHECK(sa.calls >= 1, "on_assign never called");
    for (int i = 0; i < NPART; i++)
        if (hi[i] > start)
            CHECK(first[i] == start, "partition %d started at %" PRId64 ", want %" PRId64, i,
                  first[i], start);
    ss_kafka_consumer_close(c);
}

/* ---- 5: pause across a rebalance ---- */

struct rebal {
    ss_kafka_consumer_t *c;
    int assigns;
    int resume_on_assign; /* resume_all while unassigned, as the worker may */
};

static int rebal_assign(void *ud, rd_kafka_topic_partition_list_t *parts) {
    struct rebal *r = ud;
    r->assigns++;
    for (int i = 0; i < parts->cnt; i++)
        parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING; /* a topic of its own */
    if (r->resume_on_assign && r->assigns >= 2 && r->c)
        ss_kafka_consumer_resume_all(r->c); /* eager protocol: nothing assigned now */
    return 0;
}

static int assigned_count(ss_kafka_consumer_t *c) {
    rd_kafka_topic_partition_list_t *l = NULL;
    if (rd_kafka_assignment(ss_kafka_consumer_handle(c), &l) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    int n = l->cnt;
    rd_kafka_topic_partition_list_destroy(l);
    return n;
}

static void test_pause_across_rebalance(const char *topic, const char *group) {
    char err[512];
    const char *const topics[] = {topic};
    struct rebal r1 = {.resume_on_assign = 1}, r2 = {0};
    ss_kafka_consumer_opts_t o1 = {.bootstrap = bootstrap,
                                   .group_id = group,
                                   .client_id = "it-kafka-pause-1",
                                   .topics = topics,
                                   .ntopics = 1,
                                   .on_assign = rebal_assign,
                                   .ud = &r1};
    ss_kafka_consumer_t *c1 = ss_kafka_consumer_new(&o1, err, sizeof(err));
    if (!c1) {
        CHECK(0, "consumer 1: %s", err);
        return;
    }
    r1.c = c1;
    int64_t deadline = ss_time_mono_usec() + 60 * 1000000LL;
    while (assigned_count(c1) != NPART && ss_time_mono_usec() < deadline) {
        rd_kafka_message_t *m = ss_kafka_consumer_poll(c1, 200);
        if (m)
            rd_kafka_message_destroy(m);
    }
    CHECK(assigned_count(c1) == NPART, "consumer 1 holds %d partitions, want %d",
          assigned_count(c1), NPART);
    ss_kafka_consumer_pause_all(c1);

    ss_kafka_consumer_opts_t o2 = o1;
    o2.client_id = "it-kafka-pause-2";
    o2.ud = &r2;
    ss_kafka_consumer_t *c2 = ss_kafka_consumer_new(&o2, err, sizeof(err));
    if (!c2) {
        CHECK(0, "consumer 2: %s", err);
        ss_kafka_consumer_close(c1);
        return;
    }
    r2.c = c2;
    /* Both poll until the group settles: each holds half. */
    deadline = ss_time_mono_usec() + 60 * 1000000LL;
    while ((r1.assigns < 2 || r2.assigns < 1 || assigned_count(c1) + assigned_count(c2) != NPART ||
            assigned_count(c2) == 0) &&
           ss_time_mono_usec() < deadline) {
        rd_kafka_message_t *m = ss_kafka_consumer_poll(c1, 100);
        if (m)
            rd_kafka_message_destroy(m);
        m = ss_kafka_consumer_poll(c2, 100);
        if (m)
            rd_kafka_message_destroy(m);
    }
    int n1 = assigned_count(c1), n2 = assigned_count(c2);
    CHECK(r1.assigns >= 2 && n1 > 0 && n2 > 0 && n1 + n2 == NPART,
          "group did not settle: consumer 1 %d partitions (%d assigns), consumer 2 %d", n1,
          r1.assigns, n2);

    /* New messages on every partition: each consumer reads its own. */
    static const char *const ov[] = {"linger.ms", "5", NULL};
    ss_kafka_producer_opts_t po = {
        .bootstrap = bootstrap, .client_id = "it-kafka-pause", .overrides = ov};
    ss_kafka_producer_t *p = ss_kafka_producer_new(&po, err, sizeof(err));
    if (!p) {
        CHECK(0, "producer: %s", err);
        ss_kafka_consumer_close(c2);
        ss_kafka_consumer_close(c1);
        return;
    }
    const int nmsg = 400;
    for (int i = 0; i < nmsg; i++) {
        char key[32];
        int kl = snprintf(key, sizeof(key), "pause-%03d", i);
        if (ss_kafka_producer_send(p, topic, key, (size_t)kl, "after-rebalance", 15, NULL, 0, NULL,
                                   err, sizeof(err)) != 0)
            CHECK(0, "send %d: %s", i, err);
    }
    CHECK(ss_kafka_producer_close(p, 30000) == 0, "messages left at close");

    int got1 = 0, got2 = 0;
    deadline = ss_time_mono_usec() + 60 * 1000000LL;
    while (got1 + got2 < nmsg && ss_time_mono_usec() < deadline) {
        rd_kafka_message_t *m = ss_kafka_consumer_poll(c1, 100);
        if (m) {
            if (!m->err && m->len == 15 && memcmp(m->payload, "after-rebalance", 15) == 0)
                got1++;
            rd_kafka_message_destroy(m);
        }
        m = ss_kafka_consumer_poll(c2, 100);
        if (m) {
            if (!m->err && m->len == 15 && memcmp(m->payload, "after-rebalance", 15) == 0)
                got2++;
            rd_kafka_message_destroy(m);
        }
    }
    CHECK(got1 > 0,
          "consumer 1 read nothing from its %d partitions after the rebalance "
          "(still paused)",
          n1);
    CHECK(got1 + got2 == nmsg, "read %d + %d of %d messages after the rebalance", got1, got2, nmsg);
    fprintf(stderr, "after a paused rebalance: consumer 1 read %d, consumer 2 read %d\n", got1,
            got2);
    ss_kafka_consumer_close(c2);
    ss_kafka_consumer_close(c1);
}

int main(void) {
    bootstrap = getenv("SS_TEST_KAFKA_BOOTSTRAP");
    if (!bootstrap || !*bootstrap) {
        fprintf(stderr,
                "SS_TEST_KAFKA_BOOTSTRAP is not set: run under tests/integration/harness.sh\n");
        return 1;
    }
    char e[128];
    ss_log_init("it-kafka", getenv("LOG_LEVEL") ? getenv("LOG_LEVEL") : "warn", "text", e,
                sizeof(e));

    char topic[128], group[128];
    it_unique("it_kafka_", topic, sizeof(topic));
    strncat(topic, ".roundtrip", sizeof(topic) - strlen(topic) - 1);
    if (it_create_topic(bootstrap, topic, NPART, 30000) != 0)
        return 1;
    fprintf(stderr, "topic %s\n", topic);

    it_unique("it-group-", group, sizeof(group));
    if (test_round_trip(topic, group) == 0) {
        it_unique("it-group-assign-", group, sizeof(group));
        test_assign_offsets(topic, group);
        char ptopic[160];
        snprintf(ptopic, sizeof(ptopic), "%s.pause", topic);
        it_unique("it-group-pause-", group, sizeof(group));
        if (it_create_topic(bootstrap, ptopic, NPART, 30000) == 0)
            test_pause_across_rebalance(ptopic, group);
        else
            CHECK(0, "cannot create %s", ptopic);
    }
    test_unreachable();

    if (failures) {
        fprintf(stderr, "kafka integration: %d check(s) FAILED\n", failures);
        return 1;
    }
    fprintf(stderr, "kafka integration: all checks passed\n");
    return 0;
}
