/* shipstream-reconcile internals.
 *
 *   walk.c      walks one EasyPost list newest first (before_id paging), with
 *               retries on transient errors and guards against bad pages
 *   produce.c   the one place objects are put on Kafka (envelope + topic + key)
 *   backfill.c  `backfill`: every object of a period, resumable (state file)
 *   pass.c      `once` / `serve`: compare a recent window with PostgreSQL,
 *               produce what is missing or stale, under an advisory lock
 *   main.c      configuration, subcommands, the HTTP scaffold for `serve` */
#ifndef SS_RECONCILE_H
#define SS_RECONCILE_H

#include <stddef.h>
#include <stdint.h>

#include <easypost/client.h>
#include <kafka/kafka.h>

#define RC_PROG "shipstream-reconcile"

/* Exit statuses. */
enum {
    RC_EXIT_OK = 0,
    RC_EXIT_FAILED = 1,      /* gave up: bad answer from EasyPost, bad state file... */
    RC_EXIT_USAGE = 2,       /* bad arguments or configuration */
    RC_EXIT_INTERRUPTED = 3, /* SIGINT/SIGTERM: the next run resumes */
};

typedef struct {
    char *easypost_api_key;
    char *easypost_api_base;
    long long easypost_timeout_ms;
    char *database_url; /* normalised copy in db_url */
    char db_url[2048];
    char *kafka_bootstrap;
    char *topic_prefix;
    char topics[6][256];
    long long window_hours;
    long long interval_s;
    char *listen;
    char *state_dir;
    long long page_size;
    long long backoff_max_ms;
    long long max_open_trackers;
    long long backfill_parallel;
    long long backfill_linger_ms;
} rc_config_t;

extern rc_config_t g_rc;

/* ---- produce.c ---- */
typedef enum { RC_SOURCE_BACKFILL = 0, RC_SOURCE_RECONCILE } rc_source_t;

typedef struct rc_producer rc_producer_t;

/* linger_ms: how long librdkafka holds a partition's batch to fill it.  It
 * sends one ProduceRequest per partition batch (2.0), and on a broker the
 * request count, not the bytes, is what costs: the backfill (throughput, many
 * threads) lingers RECONCILE_BACKFILL_LINGER_MS, a pass (one page at a time,
 * waiting for its acknowledgements) RC_PASS_LINGER_MS. */
#define RC_PASS_LINGER_MS 5
rc_producer_t *rc_producer_new(int linger_ms, char *errstr, size_t errstr_size);
/* Another handle on the same Kafka producer (one client, one connection, shared
 * batches) with a pending list of its own, for another thread.  Free every
 * share before the owner. */
rc_producer_t *rc_producer_share(rc_producer_t *owner, char *errstr, size_t errstr_size);
/* Queues one EasyPost object, its bytes as EasyPost sent them (raw, raw_len:
 * a list entry's span, or a retrieve's body), with the envelope of the given
 * source.  checked: 1 when the bytes are a list entry the page parse
 * checked (ss_ep_list_item_t.raw); 0 and they are checked here.  The
 * acknowledgement is collected by rc_producer_wait.  Returns 0, or -1 with
 * errstr (not JSON, not an EasyPost object, local queue full for too long). */
int rc_produce(rc_producer_t *p, const char *raw, size_t raw_len, int checked,
               const char *object_type, rc_source_t source, const char *request_id, char *errstr,
               size_t errstr_size);
/* Waits for every message queued since the last wait.  Returns RC_ACK_OK
 * (all acknowledged by the brokers: acks=all), RC_ACK_FAILED (some were not,
 * for a reason waiting may fix: a broker down past message.timeout.ms...),
 * or RC_ACK_REFUSED (Kafka refused one for good: too large, not authorised,
 * the producer's fatal error; errstr names it). */
enum { RC_ACK_OK = 0, RC_ACK_FAILED = 1, RC_ACK_REFUSED = 2 };
int rc_producer_wait(rc_producer_t *p, char *errstr, size_t errstr_size);
/* The same for the k oldest messages queued (in order); the rest stay pending. */
int rc_producer_wait_first(rc_producer_t *p, size_t k, char *errstr, size_t errstr_size);
size_t rc_producer_pending(const rc_producer_t *p); /* queued, not yet waited for */
int rc_producer_connected(rc_producer_t *p);
void rc_producer_free(rc_producer_t *p);

/* ---- walk.c ---- */
#define RC_PAGE_MAX 100 /* objects of the list's type a page may hold (EasyPost's page_size cap) */

typedef struct {
    /* set by the caller */
    ss_ep_client_t *ep;
    ss_ep_list_kind_t kind;
    int page_size;
    char start[40]; /* RFC 3339 or "" */
    char end[40];
    char before_id[128]; /* cursor: "" = newest; updated after each page the callback took */
    volatile int *stop;  /* optional: non-zero ends the walk like a stop request */
    int rewound;         /* set by the callback when it moved before_id back (then returns -1):
                  * the walk forgets the previous page's ids, which come again */
    /* counted by the walk (kept across resumes by the caller when it wants) */
    uint64_t pages, objects, skipped_unknown, skipped_invalid, transient_errors, bad_pages;
    int64_t last_created_usec; /* created_at of the oldest object walked so far */
} rc_walk_t;

/* Called with each page's objects of the list's type (unknown types and
 * entries without an id are skipped and counted).  Return 0 to advance the
 * cursor, -1 for a transient failure (the page is asked again after a
 * backoff), -2 to stop the walk with the error in errstr. */
typedef int (*rc_page_fn)(void *ud, rc_walk_t *w, const ss_ep_list_item_t *items, size_t n,
                          char *errstr, size_t errstr_size);

/* Walks until has_more is false.  Returns 0 complete, 1 interrupted by a
 * stop request (the cursor is at the last page taken), -1 with errstr on an
 * error that waiting will not fix (401, an answer that is not a list page
 * three times in a row, a page repeating ids, has_more true on an empty
 * page). */
int rc_walk_run(rc_walk_t *w, rc_page_fn fn, void *ud, char *errstr, size_t errstr_size);

/* Sleeps ms, or less when a stop is requested.  Returns 1 when stopping. */
int rc_sleep(long ms);

/* ---- backfill.c ---- */
int rc_backfill_main(int argc, char **argv, ss_ep_client_t *ep);

/* ---- pass.c ---- */
typedef struct {
    uint64_t checked, missing, stale, repaired, errors;
    double seconds;
    int skipped_locked; /* another replica held the lock */
    int failed;         /* the pass stopped early (errors > 0 too) */
} rc_pass_stats_t;

/* One reconciliation pass over the last window_hours.  Returns 0 when the
 * pass ran to the end (or was skipped: stats->skipped_locked), 1 when
 * interrupted, -1 with errstr when it could not finish. */
int rc_pass_run(ss_ep_client_t *ep, rc_producer_t *prod, long long window_hours,
                rc_pass_stats_t *stats, char *errstr, size_t errstr_size);
void rc_pass_close(void); /* drops the PostgreSQL session (and the lock) */
int rc_pass_db_ready(char *why, size_t why_size);

#endif
