/* The one retry delay of the tree: capped exponential backoff with jitter.
 *
 * Used by every retry loop (PostgreSQL reconnects in libs/db, the sync
 * worker's batch and DLQ retries, the refresh scheduler's per-view retries,
 * the EasyPost client's request retries). */
#ifndef SS_COMMON_BACKOFF_H
#define SS_COMMON_BACKOFF_H

typedef struct {
    int base_ms; /* first delay ceiling; <= 0 means 100 */
    int max_ms;  /* cap on one delay; <= 0 means 30000 */
    int attempt; /* failures so far; reset with ss_backoff_reset */
} ss_backoff_t;

/* The ceiling of the next delay: base_ms * 2^attempt, capped at max_ms. */
int ss_backoff_ceiling(const ss_backoff_t *b);

/* Returns the next delay in ms, uniformly random in [ceiling/2, ceiling],
 * and counts the attempt.  Thread-safe for distinct b. */
int ss_backoff_next(ss_backoff_t *b);

/* After a success: the next delay starts from base_ms again. */
void ss_backoff_reset(ss_backoff_t *b);

#endif
