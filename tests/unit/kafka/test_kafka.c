/* Kafka wrapper without a real broker: configuration from the environment,
 * a producer failing cleanly against a port with nothing listening, delivery
 * handles outliving their waiter, and librdkafka's mock cluster for delivery,
 * metrics and the consumer's assignment hooks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <common/metrics.h>
#include <common/sstime.h>
#include <kafka/kafka.h>

static void conf_get(rd_kafka_conf_t *conf, const char *key, char *buf, size_t size) {
    size_t n = size;
    buf[0] = '\0';
    /* Unset properties without a default are "unknown" to conf_get. */
    if (rd_kafka_conf_get(conf, key, buf, &n) != RD_KAFKA_CONF_OK)
        buf[0] = '\0';
}

static void test_conf_from_env_maps(void **state) {
    (void)state;
    setenv("KAFKA_LINGER_MS", "7", 1);
    setenv("KAFKA_MESSAGE_MAX_BYTES", "200000", 1);
    setenv("KAFKA_BOOTSTRAP_SERVERS", "must-not-pass:1", 1);
    setenv("KAFKA_TOPIC_PREFIX", "x.", 1);
    setenv("KAFKA_GROUP_ID", "g", 1);
    setenv("KAFKA_CLIENT_ID", "", 1); /* empty counts as unset */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[512] = "";
    int rc = ss_kafka_conf_from_env(conf, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s", err);
    char buf[256];
    conf_get(conf, "linger.ms", buf, sizeof(buf));
    assert_string_equal(buf, "7");
    conf_get(conf, "message.max.bytes", buf, sizeof(buf));
    assert_string_equal(buf, "200000");
    conf_get(conf, "bootstrap.servers", buf, sizeof(buf));
    assert_string_equal(buf, "");
    conf_get(conf, "client.id", buf, sizeof(buf));
    assert_string_equal(buf, "rdkafka");
    conf_get(conf, "group.id", buf, sizeof(buf));
    assert_string_equal(buf, "");
    rd_kafka_conf_destroy(conf);
    unsetenv("KAFKA_LINGER_MS");
    unsetenv("KAFKA_MESSAGE_MAX_BYTES");
    unsetenv("KAFKA_BOOTSTRAP_SERVERS");
    unsetenv("KAFKA_TOPIC_PREFIX");
    unsetenv("KAFKA_GROUP_ID");
    unsetenv("KAFKA_CLIENT_ID");
}

/* What Kubernetes injects for `Service kafka` (ports 9092 "client" and
 * 9093 "controller" over TCP, one UDP port): skipped, the rest applied. */
static const char *const k8s_vars[][2] = {
    {"KAFKA_SERVICE_HOST", "10.96.0.12"},
    {"KAFKA_SERVICE_PORT", "9092"},
    {"KAFKA_SERVICE_PORT_CLIENT", "9092"},
    {"KAFKA_SERVICE_PORT_CONTROLLER_PLANE", "9093"},
    {"KAFKA_PORT", "tcp://10.96.0.12:9092"},
    {"KAFKA_PORT_9092_TCP", "tcp://10.96.0.12:9092"},
    {"KAFKA_PORT_9092_TCP_PROTO", "tcp"},
    {"KAFKA_PORT_9092_TCP_PORT", "9092"},
    {"KAFKA_PORT_9092_TCP_ADDR", "10.96.0.12"},
    {"KAFKA_PORT_9093_TCP_ADDR", "10.96.0.12"},
    {"KAFKA_PORT_5353_UDP", "udp://10.96.0.12:5353"},
    {"KAFKA_PORT_36412_SCTP_PORT", "36412"},
};

/* Unsets them even when an assertion failed half-way (later tests build
 * clients from the same environment). */
static int unset_k8s_vars(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(k8s_vars) / sizeof(k8s_vars[0]); i++)
        unsetenv(k8s_vars[i][0]);
    unsetenv("KAFKA_LINGER_MS");
    return 0;
}

static void test_conf_from_env_ignores_service_links(void **state) {
    (void)state;
    size_t n = sizeof(k8s_vars) / sizeof(k8s_vars[0]);
    for (size_t i = 0; i < n; i++) {
        setenv(k8s_vars[i][0], k8s_vars[i][1], 1);
        assert_int_equal(ss_kafka_is_service_link(k8s_vars[i][0], strlen(k8s_vars[i][0])), 1);
    }
    setenv("KAFKA_LINGER_MS", "9", 1);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[512] = "";
    if (ss_kafka_conf_from_env(conf, err, sizeof(err)) != 0)
        fail_msg("service link variables refused: %s", err);
    char buf[256];
    conf_get(conf, "linger.ms", buf, sizeof(buf));
    assert_string_equal(buf, "9");
    rd_kafka_conf_destroy(conf);
    /* The producer starts with them (no broker needed to create it). */
    ss_kafka_producer_opts_t po = {.bootstrap = "127.0.0.1:1"};
    ss_kafka_producer_t *p = ss_kafka_producer_new(&po, err, sizeof(err));
    if (!p)
        fail_msg("producer refused service links: %s", err);
    ss_kafka_producer_close(p, 0);
    for (size_t i = 0; i < n; i++)
        unsetenv(k8s_vars[i][0]);
    unsetenv("KAFKA_LINGER_MS");

    /* Near misses are still unknown properties, refused by name. */
    static const char *const misses[] = {
        "KAFKA_SERVICE_HOSTS",
        "KAFKA_SERVICE_PORT_",
        "KAFKA_SERVICE_PORT_client",
        "KAFKA_SERVICE",
        "KAFKA_PORTS",
        "KAFKA_PORT_",
        "KAFKA_PORT_9092",
        "KAFKA_PORT_9092_",
        "KAFKA_PORT_9092_HTTP",
        "KAFKA_PORT_9092_TCP_IP",
        "KAFKA_PORT_X_TCP",
        "KAFKA_PORT_123456_TCP",
        "KAFKA_PORT_9092_TCPX",
        "KAFKA_PORT_9092_TCP_PROTOX",
        "KAFKA_UI_SERVICE_HOST",
        NULL,
    };
    for (size_t i = 0; misses[i]; i++) {
        assert_int_equal(ss_kafka_is_service_link(misses[i], strlen(misses[i])), 0);
        setenv(misses[i], "1", 1);
        conf = rd_kafka_conf_new();
        err[0] = '\0';
        assert_int_equal(ss_kafka_conf_from_env(conf, err, sizeof(err)), -1);
        char want[128];
        snprintf(want, sizeof(want), "%s=1: ", misses[i]);
        if (strncmp(err, want, strlen(want)) != 0)
            fail_msg("%s: error \"%s\" does not name it", misses[i], err);
        rd_kafka_conf_destroy(conf);
        unsetenv(misses[i]);
    }
    /* Length bounds the match, not the terminator. */
    assert_int_equal(ss_kafka_is_service_link("KAFKA_PORTX", 10), 1);
    assert_int_equal(ss_kafka_is_service_link("KAFKA_POR", 9), 0);
}

static void test_conf_from_env_errors_name_variable(void **state) {
    (void)state;
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    setenv("KAFKA_LINGER_MS", "abc", 1);
    assert_int_equal(ss_kafka_conf_from_env(conf, err, sizeof(err)), -1);
    assert_int_equal(strncmp(err, "KAFKA_LINGER_MS=abc: ", 21), 0);
    unsetenv("KAFKA_LINGER_MS");

    setenv("KAFKA_NO_SUCH_PROPERTY", "1", 1);
    assert_int_equal(ss_kafka_conf_from_env(conf, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "KAFKA_NO_SUCH_PROPERTY=1"));
    assert_non_null(strstr(err, "no.such.property"));
    unsetenv("KAFKA_NO_SUCH_PROPERTY");

    /* Secrets are not echoed. */
    setenv("KAFKA_SASL_MECHANISM", "NOPE-SECRET-PASSWORD-VALUE", 1);
    setenv("KAFKA_SASL_PASSWORD", "hunter2", 1);
    int rc = ss_kafka_conf_from_env(conf, err, sizeof(err));
    if (rc != 0)
        assert_null(strstr(err, "hunter2"));
    unsetenv("KAFKA_SASL_MECHANISM");
    unsetenv("KAFKA_SASL_PASSWORD");
    rd_kafka_conf_destroy(conf);

    /* The producer refuses to start and says why. */
    setenv("KAFKA_ACKS", "sometimes", 1);
    ss_kafka_producer_opts_t po = {.bootstrap = "127.0.0.1:1"};
    assert_null(ss_kafka_producer_new(&po, err, sizeof(err)));
    assert_non_null(strstr(err, "KAFKA_ACKS=sometimes"));
    const char *const topics[] = {"t"};
    ss_kafka_consumer_opts_t co = {
        .bootstrap = "127.0.0.1:1", .group_id = "g", .topics = topics, .ntopics = 1};
    assert_null(ss_kafka_consumer_new(&co, err, sizeof(err)));
    assert_non_null(strstr(err, "KAFKA_ACKS=sometimes"));
    unsetenv("KAFKA_ACKS");

    const char *const bad[] = {"linger.ms", "-5", NULL};
    po.overrides = bad;
    assert_null(ss_kafka_producer_new(&po, err, sizeof(err)));
    assert_non_null(strstr(err, "linger.ms=-5"));
    po.bootstrap = NULL;
    assert_null(ss_kafka_producer_new(&po, err, sizeof(err)));
}

/* A loopback port with nothing listening. */
static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    return ntohs(a.sin_port);
}

static ss_kafka_producer_t *unreachable_producer(void) {
    char bootstrap[64], err[512];
    snprintf(bootstrap, sizeof(bootstrap), "127.0.0.1:%d", free_port());
    static const char *const ov[] = {"message.timeout.ms", "1500", "reconnect.backoff.max.ms",
                                     "200", NULL};
    ss_kafka_producer_opts_t po = {.bootstrap = bootstrap, .client_id = "test", .overrides = ov};
    ss_kafka_producer_t *p = ss_kafka_producer_new(&po, err, sizeof(err));
    if (!p)
        fail_msg("%s", err);
    return p;
}

/* The shipstream message limit is every producer's message.max.bytes and
 * every consumer's max.partition.fetch.bytes; the payload limit leaves the
 * headroom for headers. */
static void test_message_limits(void **state) {
    (void)state;
    ss_kafka_producer_t *p = unreachable_producer();
    char buf[64];
    size_t n = sizeof(buf);
    assert_int_equal(
        rd_kafka_conf_get(rd_kafka_conf(ss_kafka_producer_handle(p)), "message.max.bytes", buf, &n),
        RD_KAFKA_CONF_OK);
    assert_int_equal(atoll(buf), SS_KAFKA_MAX_MESSAGE_BYTES);
    assert_int_equal(ss_kafka_producer_max_payload(p), SS_KAFKA_MAX_PAYLOAD_BYTES);
    /* A 4 MiB body or EasyPost answer plus its envelope header fits. */
    assert_true(SS_KAFKA_MAX_PAYLOAD_BYTES >= 4194304 + 4096);
    ss_kafka_producer_close(p, 100);

    setenv("KAFKA_MESSAGE_MAX_BYTES", "2097152", 1); /* the operator's word wins */
    p = unreachable_producer();
    unsetenv("KAFKA_MESSAGE_MAX_BYTES");
    assert_int_equal(ss_kafka_producer_max_payload(p), 2097152 - SS_KAFKA_MESSAGE_HEADROOM);
    ss_kafka_producer_close(p, 100);

    char bootstrap[64], err[512];
    snprintf(bootstrap, sizeof(bootstrap), "127.0.0.1:%d", free_port());
    const char *const topics[] = {"t"};
    ss_kafka_consumer_opts_t co = {
        .bootstrap = bootstrap, .group_id = "g", .topics = topics, .ntopics = 1};
    ss_kafka_consumer_t *c = ss_kafka_consumer_new(&co, err, sizeof(err));
    if (!c)
        fail_msg("%s", err);
    n = sizeof(buf);
    assert_int_equal(rd_kafka_conf_get(rd_kafka_conf(ss_kafka_consumer_handle(c)),
                                       "max.partition.fetch.bytes", buf, &n),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(atoll(buf), SS_KAFKA_MAX_MESSAGE_BYTES);
    n = sizeof(buf);
    rd_kafka_conf_get(rd_kafka_conf(ss_kafka_consumer_handle(c)), "fetch.max.bytes", buf, &n);
    assert_true(atoll(buf) >= SS_KAFKA_MAX_MESSAGE_BYTES);
    ss_kafka_consumer_close(c);
}

static void test_unreachable_broker_fails_cleanly(void **state) {
    (void)state;
    ss_kafka_producer_t *p = unreachable_producer();
    char err[512];
    ss_kafka_delivery_t *d = NULL;
    int64_t t0 = ss_time_mono_usec();
    assert_int_equal(
        ss_kafka_producer_send(p, "nowhere", "k", 1, "v", 1, NULL, 0, &d, err, sizeof(err)), 0);
    assert_non_null(d);
    assert_int_equal(ss_kafka_producer_outq_len(p), 1);
    int rc = ss_kafka_delivery_wait(d, 15000, err, sizeof(err));
    double secs = (double)(ss_time_mono_usec() - t0) / 1e6;
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "timed out"));
    assert_true(secs < 8.0);
    /* The waiter wakes inside the delivery callback; librdkafka drops the
     * message from its queue count just after: allow it a moment. */
    int64_t deadline = ss_time_mono_usec() + 2000000;
    while (ss_kafka_producer_outq_len(p) != 0 && ss_time_mono_usec() < deadline)
        usleep(1000);
    assert_int_equal(ss_kafka_producer_outq_len(p), 0);
    assert_int_equal(ss_kafka_producer_connected(p), 0);
    assert_int_equal(ss_kafka_producer_close(p, 1000), 0);
}

/* The waiter gives up first; the report arrives (purged) at close: no leak,
 * no use after free (ASan build). */
/* Refusals (sending again does not help) against what waiting fixes. */
static void test_err_is_refusal(void **state) {
    (void)state;
    assert_true(ss_kafka_err_is_refusal(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE));
    assert_true(ss_kafka_err_is_refusal(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED));
    assert_true(ss_kafka_err_is_refusal(RD_KAFKA_RESP_ERR_POLICY_VIOLATION));
    assert_true(ss_kafka_err_is_refusal(RD_KAFKA_RESP_ERR__FATAL));
    assert_false(ss_kafka_err_is_refusal(RD_KAFKA_RESP_ERR_NO_ERROR));
    assert_false(ss_kafka_err_is_refusal(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT));
    assert_false(ss_kafka_err_is_refusal(RD_KAFKA_RESP_ERR__TRANSPORT));
    assert_false(ss_kafka_err_is_refusal(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS));
    assert_false(ss_kafka_err_is_refusal(RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION));
}

static void test_waiter_timeout_then_close(void **state) {
    (void)state;
    ss_kafka_producer_t *p = unreachable_producer();
    char err[512];
    ss_kafka_delivery_t *d1 = NULL, *d2 = NULL;
    ss_kafka_header_t h = {"why", "test", 4};
    assert_int_equal(
        ss_kafka_producer_send(p, "nowhere", "k", 1, "v", 1, &h, 1, &d1, err, sizeof(err)), 0);
    assert_int_equal(
        ss_kafka_producer_send(p, "nowhere", NULL, 0, NULL, 0, NULL, 0, &d2, err, sizeof(err)), 0);
    assert_int_equal(
        ss_kafka_producer_send(p, "nowhere", "k", 1, "v", 1, NULL, 0, NULL, err, sizeof(err)), 0);
    rd_kafka_resp_err_t code = RD_KAFKA_RESP_ERR_NO_ERROR;
    assert_int_equal(ss_kafka_delivery_wait_err(d1, 10, &code, err, sizeof(err)), -2);
    assert_non_null(strstr(err, "10 ms"));
    assert_int_equal(code, RD_KAFKA_RESP_ERR__TIMED_OUT);
    assert_false(ss_kafka_err_is_refusal(code));
    int64_t t0 = ss_time_mono_usec();
    assert_int_equal(ss_kafka_producer_close(p, 100), 3);
    assert_true(ss_time_mono_usec() - t0 < 3000000);
    /* d2 still valid after close: the purge reported it. */
    assert_int_equal(ss_kafka_delivery_wait_err(d2, 1000, &code, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "urge"));
    assert_int_equal(code, RD_KAFKA_RESP_ERR__PURGE_QUEUE);
    assert_false(ss_kafka_err_is_refusal(code)); /* purged on close: not the cluster's refusal */
    assert_int_equal(ss_kafka_producer_close(NULL, 0), 0);
}

/* ---- on_report: every message accounted for ---- */

struct reports {
    pthread_mutex_t mu;
    int n;
    char reason[8][32]; /* "" = delivered */
    char key[8][16];
    size_t valuelen[8];
};

static void collect(void *ud, const ss_kafka_report_t *r) {
    struct reports *rs = ud;
    pthread_mutex_lock(&rs->mu);
    if (rs->n < 8) {
        snprintf(rs->reason[rs->n], sizeof rs->reason[0], "%s", r->reason ? r->reason : "");
        snprintf(rs->key[rs->n], sizeof rs->key[0], "%.*s", (int)r->keylen,
                 r->key ? (const char *)r->key : "");
        rs->valuelen[rs->n] = r->valuelen;
        if (r->reason)
            assert_non_null(r->error);
    }
    rs->n++;
    pthread_mutex_unlock(&rs->mu);
}

static int reports_n(struct reports *rs) {
    pthread_mutex_lock(&rs->mu);
    int n = rs->n;
    pthread_mutex_unlock(&rs->mu);
    return n;
}

/* The gateway's set-up: no expiry, a small bound, no waiting on a full
 * queue.  Overflow is refused at once and reported; what waits is reported
 * "shutdown" at close; nothing expires meanwhile. */
static void test_report_queue_full_and_shutdown(void **state) {
    (void)state;
    char bootstrap[64], err[512];
    snprintf(bootstrap, sizeof(bootstrap), "127.0.0.1:%d", free_port());
    static const char *const ov[] = {"message.timeout.ms", "0", "queue.buffering.max.messages", "2",
                                     NULL};
    struct reports rs = {.mu = PTHREAD_MUTEX_INITIALIZER};
    ss_kafka_producer_opts_t po = {.bootstrap = bootstrap,
                                   .client_id = "test",
                                   .overrides = ov,
                                   .queue_full_wait_ms = -1,
                                   .on_report = collect,
                                   .report_ud = &rs};
    ss_kafka_producer_t *p = ss_kafka_producer_new(&po, err, sizeof(err));
    if (!p)
        fail_msg("%s", err);
    assert_int_equal(
        ss_kafka_producer_send(p, "t", "k1", 2, "vv", 2, NULL, 0, NULL, err, sizeof err), 0);
    assert_int_equal(
        ss_kafka_producer_send(p, "t", "k2", 2, "vvv", 3, NULL, 0, NULL, err, sizeof err), 0);
    assert_int_equal(ss_kafka_producer_outq_bytes(p), 2 + 2 + 2 + 3);
    int64_t t0 = ss_time_mono_usec();
    assert_int_equal(
        ss_kafka_producer_send(p, "t", "k3", 2, "vvvv", 4, NULL, 0, NULL, err, sizeof err), -1);
    assert_true(ss_time_mono_usec() - t0 < 200000); /* refused at once, no 1 s wait */
    assert_int_equal(reports_n(&rs), 1);
    assert_string_equal(rs.reason[0], "queue_full");
    assert_string_equal(rs.key[0], "k3");
    assert_int_equal(rs.valuelen[0], 4);
    assert_int_equal(ss_kafka_producer_outq_len(p), 2);
    assert_int_equal(ss_kafka_producer_outq_bytes(p), 9);

    /* No expiry: still waiting after 2 s of an unreachable broker. */
    usleep(2000 * 1000);
    assert_int_equal(reports_n(&rs), 1);
    assert_int_equal(ss_kafka_producer_outq_len(p), 2);

    assert_int_equal(ss_kafka_producer_close(p, 100), 2);
    assert_int_equal(rs.n, 3);
    assert_string_equal(rs.reason[1], "shutdown");
    assert_string_equal(rs.reason[2], "shutdown");
    assert_true((strcmp(rs.key[1], "k1") == 0 && strcmp(rs.key[2], "k2") == 0) ||
                (strcmp(rs.key[1], "k2") == 0 && strcmp(rs.key[2], "k1") == 0));
}

/* A message timeout is reported as such, and a refusal by name. */
static void test_report_timeout_and_refusal(void **state) {
    (void)state;
    char bootstrap[64], err[512];
    snprintf(bootstrap, sizeof(bootstrap), "127.0.0.1:%d", free_port());
    static const char *const ov[] = {"message.timeout.ms", "300", "message.max.bytes", "1000",
                                     NULL};
    struct reports rs = {.mu = PTHREAD_MUTEX_INITIALIZER};
    ss_kafka_producer_opts_t po = {.bootstrap = bootstrap,
                                   .client_id = "test",
                                   .overrides = ov,
                                   .on_report = collect,
                                   .report_ud = &rs};
    ss_kafka_producer_t *p = ss_kafka_producer_new(&po, err, sizeof(err));
    if (!p)
        fail_msg("%s", err);
    assert_int_equal(ss_kafka_producer_max_payload(p), 500);
    static char big[4000];
    memset(big, 'x', sizeof big);
    assert_int_equal(
        ss_kafka_producer_send(p, "t", "big", 3, big, sizeof big, NULL, 0, NULL, err, sizeof err),
        -1);
    assert_int_equal(reports_n(&rs), 1);
    assert_string_equal(rs.reason[0], "msg_size_too_large");
    assert_int_equal(ss_kafka_producer_send(p, "t", "k", 1, "v", 1, NULL, 0, NULL, err, sizeof err),
                     0);
    int64_t deadline = ss_time_mono_usec() + 10 * 1000000LL;
    while (reports_n(&rs) < 2 && ss_time_mono_usec() < deadline)
        usleep(10 * 1000);
    assert_int_equal(reports_n(&rs), 2);
    assert_string_equal(rs.reason[1], "timeout");
    assert_string_equal(rs.key[1], "k");
    assert_int_equal(ss_kafka_producer_close(p, 100), 0);
}

/* ---- mock cluster ---- */

static uint64_t counter_value(const char *name, const char *topic) {
    char labels[256];
    snprintf(labels, sizeof(labels), "topic=\"%s\"", topic);
    return ss_counter_value(ss_counter(name, "", labels));
}

struct assign_state {
    int calls;
    int fail_first;
    int64_t start_offset;
    int revoked;
};

static int on_assign(void *ud, rd_kafka_topic_partition_list_t *parts) {
    struct assign_state *s = ud;
    s->calls++;
    if (s->fail_first && s->calls == 1)
        return -1;
    for (int i = 0; i < parts->cnt; i++) {
        assert_true(parts->elems[i].offset == RD_KAFKA_OFFSET_INVALID);
        parts->elems[i].offset = s->start_offset;
    }
    return 0;
}

static void on_revoke(void *ud, const rd_kafka_topic_partition_list_t *parts) {
    struct assign_state *s = ud;
    s->revoked += parts->cnt;
}

static void test_mock_cluster_round_trip(void **state) {
    (void)state;
    char err[512];
    static const char *const ov[] = {"test.mock.num.brokers", "1", NULL};
    ss_kafka_producer_opts_t po = {
        .bootstrap = "unused:9092", .client_id = "mock", .overrides = ov};
    ss_kafka_producer_t *p = ss_kafka_producer_new(&po, err, sizeof(err));
    if (!p)
        fail_msg("%s", err);
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(ss_kafka_producer_handle(p));
    assert_non_null(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, "mock.t", 2, 1), 0);
    char bootstrap[256];
    snprintf(bootstrap, sizeof(bootstrap), "%s", rd_kafka_mock_cluster_bootstraps(mc));

    uint64_t before = counter_value("kafka_produced_total", "mock.t");
    ss_kafka_delivery_t *d = NULL;
    for (int i = 0; i < 10; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        assert_int_equal(ss_kafka_producer_send(p, "mock.t", "samekey", 7, v, strlen(v), NULL, 0,
                                                i == 9 ? &d : NULL, err, sizeof(err)),
                         0);
    }
    int rc = ss_kafka_delivery_wait(d, 10000, err, sizeof(err));
    if (rc != 0)
        fail_msg("delivery: %s", err);
    assert_int_equal(counter_value("kafka_produced_total", "mock.t") - before, 10);
    /* The connection check runs on the producer's own thread: poll for it. */
    int connected = 0;
    for (int i = 0; i < 100 && !(connected = ss_kafka_producer_connected(p)); i++)
        usleep(50 * 1000);
    assert_int_equal(connected, 1);
    char *metrics = ss_metrics_render(NULL);
    assert_non_null(strstr(metrics, "kafka_produce_latency_seconds"));
    free(metrics);

    /* Consumer: on_assign fails once (partitions paused, retried), then
     * starts every partition at offset 4. */
    struct assign_state as = {.fail_first = 1, .start_offset = 4};
    const char *const topics[] = {"mock.t"};
    static const char *const cov[] = {"session.timeout.ms", "6000", NULL};
    ss_kafka_consumer_opts_t co = {.bootstrap = bootstrap,
                                   .group_id = "mock-group",
                                   .client_id = "mock-consumer",
                                   .topics = topics,
                                   .ntopics = 1,
                                   .on_assign = on_assign,
                                   .on_revoke = on_revoke,
                                   .ud = &as,
                                   .overrides = cov};
    ss_kafka_consumer_t *c = ss_kafka_consumer_new(&co, err, sizeof(err));
    if (!c)
        fail_msg("%s", err);
    int got = 0;
    int64_t first = -1, last = -1;
    int64_t deadline = ss_time_mono_usec() + 30 * 1000000LL;
    while (got < 6 && ss_time_mono_usec() < deadline) {
        rd_kafka_message_t *m = ss_kafka_consumer_poll(c, 200);
        if (!m)
            continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (first < 0)
            first = m->offset;
        last = m->offset;
        got++;
        rd_kafka_message_destroy(m);
    }
    assert_int_equal(got, 6);
    assert_true(first == 4);
    assert_true(last == 9);
    assert_true(as.calls >= 2);

    /* Commit, pause, resume, seek back. */
    rd_kafka_topic_partition_list_t *assignment = NULL;
    assert_int_equal(rd_kafka_assignment(ss_kafka_consumer_handle(c), &assignment), 0);
    assert_int_equal(assignment->cnt, 2);
    rd_kafka_topic_partition_list_destroy(assignment);
    assert_int_equal(ss_kafka_consumer_pause_all(c), 0);
    assert_int_equal(ss_kafka_consumer_resume_all(c), 0);
    ss_kafka_consumer_close(c);
    assert_true(as.revoked >= 2);
    assert_int_equal(ss_kafka_producer_close(p, 5000), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_from_env_maps),
        cmocka_unit_test(test_conf_from_env_errors_name_variable),
        cmocka_unit_test_teardown(test_conf_from_env_ignores_service_links, unset_k8s_vars),
        cmocka_unit_test(test_message_limits),
        cmocka_unit_test(test_unreachable_broker_fails_cleanly),
        cmocka_unit_test(test_err_is_refusal),
        cmocka_unit_test(test_waiter_timeout_then_close),
        cmocka_unit_test(test_report_queue_full_and_shutdown),
        cmocka_unit_test(test_report_timeout_and_refusal),
        cmocka_unit_test(test_mock_cluster_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
