/* The sync worker's main loop: Kafka batches -> one PostgreSQL transaction. */
#ifndef SS_SYNC_WORKER_H
#define SS_SYNC_WORKER_H

#include <stddef.h>

typedef struct {
    char *database_url;
    char *bootstrap;
    char *prefix;
    char *group;
    long long batch_size;
    long long batch_max_ms;
    long long retry_base_ms;
    long long retry_max_ms;
    long long dlq_timeout_ms;
    long long kafka_commit_ms;
} sw_config_t;

/* /ready: 0 when PostgreSQL is reachable and the consumer runs. */
int sw_ready(void *ud, char *why, size_t why_size);

/* Runs until SIGTERM/SIGINT.  Returns the exit status. */
int sw_run(const sw_config_t *cfg);

#endif
