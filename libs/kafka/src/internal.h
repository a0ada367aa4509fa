/* Shared between the producer and the consumer. */
#ifndef SS_KAFKA_INTERNAL_H
#define SS_KAFKA_INTERNAL_H

#include <kafka/kafka.h>

#define SS_KAFKA_STR_(x) #x
#define SS_KAFKA_STR(x)  SS_KAFKA_STR_(x)

/* Sets one property; errstr gets "key=value: reason". */
int ss_kafka_conf_set1(rd_kafka_conf_t *conf, const char *key, const char *value, char *errstr,
                       size_t errstr_size);

/* Applies NULL-terminated key/value pairs. */
int ss_kafka_conf_apply(rd_kafka_conf_t *conf, const char *const *kv, char *errstr,
                        size_t errstr_size);

/* Routes librdkafka's logs and errors into ss_log. */
void ss_kafka_conf_logging(rd_kafka_conf_t *conf);

#endif
