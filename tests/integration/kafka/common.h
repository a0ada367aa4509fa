/* Helpers shared by the Kafka integration test and benchmark. */
#ifndef SS_IT_KAFKA_COMMON_H
#define SS_IT_KAFKA_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

/* Creates topic with n partitions (replication 1) through the Admin API and
 * waits until every partition has a leader.  Returns 0 or -1 (message on stderr). */
int it_create_topic(const char *bootstrap, const char *topic, int partitions, int timeout_ms);

/* Low/high watermarks of one partition. */
int it_watermarks(const char *bootstrap, const char *topic, int32_t partition, int64_t *lo,
                  int64_t *hi);

/* A loopback TCP port with nothing listening. */
int it_free_port(void);

/* A unique lowercase name fragment. */
void it_unique(const char *prefix, char *buf, size_t size);

#endif
