/* The refresh scheduler's loop: leadership (advisory lock), LISTEN, refresh
 * cycles, housekeeping.  Runs on the main thread; the HTTP handlers only read
 * the atomic state below and ask for a refresh through rs_request_refresh(). */
#ifndef SS_REFRESH_SCHEDULER_H
#define SS_REFRESH_SCHEDULER_H

#include <stdatomic.h>

/* Session-level advisory lock key held by the active refresher ("ss_refr1"). */
#define RS_LOCK_KEY "8319097881615561265"

#define RS_NVIEWS 3
extern const char *const rs_view_names[RS_NVIEWS];

/* The monthly-partitioned tables (migration 0007) the scheduler maintains. */
#define RS_NPART 2
extern const char *const rs_part_tables[RS_NPART];

typedef struct {
    char *database_url;
    long long interval_s;     /* REFRESH_INTERVAL_SECONDS */
    long long min_interval_s; /* REFRESH_MIN_INTERVAL_SECONDS */
    long long statement_timeout_ms;
    long long retry_base_ms, retry_max_ms;
    long long lock_retry_s; /* standby: how often to try the lock */
    long long hk_interval_s;
    long long hk_batch;
    long long processed_events_days;
    long long idempotency_hours;
    long long refresh_log_days;
    long long months_ahead;               /* PARTITIONS_MONTHS_AHEAD */
    long long retention_months[RS_NPART]; /* RETENTION_<TABLE>_MONTHS; 0 = keep forever */
    int keep_detached[RS_NPART];          /* RETENTION_<TABLE>_MODE=detach */
    long long shutdown_grace_ms;
} rs_config_t;

/* State visible to the HTTP threads. */
typedef struct {
    atomic_int db_ok;  /* both connections up */
    atomic_int leader; /* this replica holds the lock */
    atomic_int force;  /* POST /refresh asked for a refresh */
    int wake_fd[2];    /* self-pipe: wakes the loop */
} rs_state_t;

extern rs_state_t rs_state;

/* Creates the wake pipe.  Returns 0 or -1. */
int rs_state_init(void);

/* Asks the loop to refresh every view now (ignores the minimum interval). */
void rs_request_refresh(void);

/* Runs until a stop is requested; releases the lock and closes connections.
 * Returns 0, or 1 when it could not start (out of memory, unusable URL). */
int rs_run(const rs_config_t *cfg);

#endif
