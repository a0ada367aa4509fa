#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <common/sstime.h>
#include <common/util.h>

static rd_kafka_t *admin_client(const char *bootstrap) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err)) !=
        RD_KAFKA_CONF_OK) {
        fprintf(stderr, "admin conf: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "admin client: %s\n", err);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

static int leaders_ready(rd_kafka_t *rk, const char *topic, int partitions) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int ok = 0;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1 && md->topics[0].err == 0 && md->topics[0].partition_cnt == partitions) {
        ok = 1;
        for (int i = 0; i < partitions; i++)
            if (md->topics[0].partitions[i].leader < 0 || md->topics[0].partitions[i].err)
                ok = 0;
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return ok;
}

int it_create_topic(const char *bootstrap, const char *topic, int partitions, int timeout_ms) {
    rd_kafka_t *rk = admin_client(bootstrap);
    if (!rk)
        return -1;
    int rc = -1;
    char err[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, err, sizeof(err));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(ao, timeout_ms, err, sizeof(err));
    rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
    if (!ev) {
        fprintf(stderr, "create topic %s: no answer\n", topic);
        goto done;
    }
    if (rd_kafka_event_error(ev)) {
        fprintf(stderr, "create topic %s: %s\n", topic, rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        goto done;
    }
    size_t n = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
        if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            fprintf(stderr, "create topic %s: %s\n", topic,
                    rd_kafka_topic_result_error_string(res[i]));
            rd_kafka_event_destroy(ev);
            goto done;
        }
    }
    rd_kafka_event_destroy(ev);
    int64_t deadline = ss_time_mono_usec() + (int64_t)timeout_ms * 1000;
    for (;;) {
        if (leaders_ready(rk, topic, partitions)) {
            rc = 0;
            break;
        }
        if (ss_time_mono_usec() >= deadline)
            break;
        usleep(100000);
    }
    if (rc != 0)
        fprintf(stderr, "create topic %s: partitions without leaders\n", topic);
done:
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

int it_watermarks(const char *bootstrap, const char *topic, int32_t partition, int64_t *lo,
                  int64_t *hi) {
    rd_kafka_t *rk = admin_client(bootstrap);
    if (!rk)
        return -1;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, partition, lo, hi, 10000);
    rd_kafka_destroy(rk);
    if (e) {
        fprintf(stderr, "watermarks %s[%d]: %s\n", topic, (int)partition, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

int it_free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(s);
        return -1;
    }
    socklen_t len = sizeof(a);
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    return ntohs(a.sin_port);
}

void it_unique(const char *prefix, char *buf, size_t size) {
    char id[64];
    ss_random_id("", id, sizeof(id));
    snprintf(buf, size, "%s%.12s", prefix, id);
}
