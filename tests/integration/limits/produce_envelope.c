/* ss-limits-produce: writes one gateway envelope around an EasyPost object
 * (read from a file) with THE envelope writer and produces it with the
 * shipstream producer (libs/kafka: its message.max.bytes), waiting for the
 * broker's acknowledgement.  What the gateway does with an EasyPost answer,
 * without an EasyPost that answers megabytes.
 *
 *   ss-limits-produce <bootstrap> <topic prefix> <object.json> <type>
 *
 * Prints "<topic>\t<key>\t<envelope bytes>" and exits 0 when acknowledged;
 * 1 when the writer or Kafka refused it (the reason on stderr); 2 on usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <envelope/envelope.h>
#include <kafka/kafka.h>

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap) {
            char *nb = cap < ((size_t)64 << 20) ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s <bootstrap> <topic prefix> <object.json> <type>\n", argv[0]);
        return 2;
    }
    size_t len = 0;
    char *obj = read_file(argv[3], &len);
    if (!obj) {
        fprintf(stderr, "%s: cannot read %s\n", argv[0], argv[3]);
        return 2;
    }
    int rc = 1;
    char err[512];
    ss_kafka_producer_t *p = NULL;
    ss_envelope_msg_t m;
    memset(&m, 0, sizeof m);
    ss_envelope_in_t in = {.source = SS_SOURCE_GATEWAY, .type = argv[4], .object = {obj, len}};
    if (ss_envelope_write(&m, &in, err, sizeof err) != SS_ENVELOPE_OK) {
        fprintf(stderr, "writer: %s\n", err);
        goto out;
    }
    char topic[256];
    if (ss_topic_name(argv[2], m.topic, topic, sizeof topic) != 0) {
        fprintf(stderr, "topic name too long\n");
        goto out;
    }
    ss_kafka_producer_opts_t po = {.bootstrap = argv[1], .client_id = "ss-limits-produce"};
    if (!(p = ss_kafka_producer_new(&po, err, sizeof err))) {
        fprintf(stderr, "producer: %s\n", err);
        goto out;
    }
    ss_kafka_delivery_t *d = NULL;
    if (ss_kafka_producer_send(p, topic, m.key, m.keylen, m.value, m.value_len, NULL, 0, &d, err,
                               sizeof err) != 0 ||
        ss_kafka_delivery_wait(d, 30000, err, sizeof err) != 0) {
        fprintf(stderr, "kafka: %s\n", err);
        goto out;
    }
    printf("%s\t%s\t%zu\n", topic, m.key, m.value_len);
    rc = 0;
out:
    ss_kafka_producer_close(p, 5000);
    ss_envelope_msg_clear(&m);
    free(obj);
    return rc;
}
