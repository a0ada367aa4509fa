/* easypost-sim internals: the in-memory EasyPost (objects.c), the tracker
 * timeline and webhook sender (webhooks.c), the HTTP front (main.c). */
#ifndef EASYPOST_SIM_H
#define EASYPOST_SIM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include <webhook/signature.h>

typedef struct sim sim_t;

/* A step in a tracker's future: at `day` simulated days after t0. */
typedef struct {
    double day;
    const char *status;
    const char *status_detail;
    const char *message;
    const char *carrier_code;
    int at_dest; /* 0 origin, 1 destination */
} sim_step_t;

#define SIM_MAX_STEPS 8

typedef struct {
    char tracker_id[48];
    int64_t t0_usec;      /* wall clock of the purchase / tracker creation */
    int64_t t0_mono_usec; /* monotonic twin of t0, for scheduling */
    int nsteps;
    int next;
    sim_step_t steps[SIM_MAX_STEPS];
    int refund;         /* 1: a refund's completion (tracker_id holds the shipment id) */
    char refund_id[48]; /* the Refund object of a refund plan */
} sim_plan_t;

/* Creation order of live objects of one kind (shipments or trackers), for
 * the list endpoints: entries are appended as objects are created, so they
 * are sorted by created_at; evicted objects are skipped when listing. */
typedef struct {
    int64_t created_usec;
    char id[48];
} sim_ix_ent_t;

typedef struct {
    sim_ix_ent_t *v;
    size_t len, cap;
    json_object *pos; /* id -> position in v */
} sim_index_t;

enum {
    SIM_KIND_SHIPMENT = 0,
    SIM_KIND_TRACKER,
    SIM_KIND_ADDRESS,
    SIM_KIND_BATCH,
    SIM_KIND_PICKUP,
    SIM_KIND_SCAN_FORM,
    SIM_KIND_REFUND,
    SIM_KIND_INSURANCE,
    SIM_NKINDS
};

/* Query of the list endpoints (EasyPost's pagination). */
typedef struct {
    int page_size;         /* 1..100 */
    const char *before_id; /* NULL or "" = none */
    const char *after_id;
    int64_t start_usec; /* INT64_MIN = none */
    int64_t end_usec;   /* INT64_MAX = none */
} sim_list_query_t;

/* Bad-input hooks of the list endpoints (POST /sim/faults {"list":...}). */
typedef enum {
    SIM_LIST_OK = 0,
    SIM_LIST_UNKNOWN_TYPE, /* one extra object of an unknown type in the page */
    SIM_LIST_MALFORMED,    /* a 200 whose body is cut short (not JSON) */
    SIM_LIST_REPEAT,       /* before_id ignored: the same page again, has_more true */
} sim_list_fault_t;

struct sim {
    pthread_mutex_t mu;   /* guards everything below up to `events` */
    json_object *objects; /* id -> object (Shipment, Tracker, Address), "tc:<code>" -> trk id */
    char **ring;          /* insertion order, for eviction */
    size_t ring_cap, ring_head, ring_len;
    uint64_t seed;
    uint64_t counter;
    json_object *events; /* recent Event summaries, newest last (GET /v2/events) */
    char user_id[48];
    sim_index_t index[SIM_NKINDS]; /* live objects of each kind, in creation order */
    const char *default_mode;      /* mode when a request carries no key ("test") */

    /* Account balance (SIM_FUNDS, POST /sim/funds): purchases beyond it are
     * answered 402; refunds credit it back.  funds_limited 0 = unlimited. */
    int funds_limited;
    int64_t funds_cents;

    /* Preloaded history (SIM_PRELOAD_SHIPMENTS, POST /sim/preload): n
     * purchased shipments with their trackers, created evenly between
     * preload_end - preload_span and preload_end (all before any live
     * object).  They are not stored: each one is rebuilt on demand from
     * (seed, index), so 100,000 of them cost no memory but the bounded
     * cache of their serialised JSON (pcache). */
    size_t preload_n;
    int64_t preload_end_usec, preload_span_usec;
    uint64_t preload_gen; /* bumped by every sim_preload_set: keys the cache below */

    /* Serialised preloaded objects (objects.c, preload_json): a shipment and its tracker
     * built once, kept in a direct-mapped table by index (allocated on first use).  The
     * preloaded history is immutable (not in `objects`, so no handler can change it), so
     * only sim_preload_set invalidates it (preload_gen). */
    pthread_mutex_t pcmu; /* guards pcache */
    struct sim_pcache_slot *pcache;
    size_t pcache_slots;

    /* 1 in preload_build's scratch sims: answers and Event copies are not built (nothing
     * reads them; ids are still drawn, so the objects are the same). */
    int scratch;

    /* configuration (read-only after start) */
    double day_seconds;      /* real seconds per simulated day */
    const char *webhook_url; /* NULL = no webhooks */
    ss_webhook_key_t *webhook_key;
    int webhook_max_attempts;
    int webhook_backoff_base_ms;
    int webhook_backoff_max_ms;
    size_t max_pending;
    int webhook_drop_pct; /* percent of webhooks never sent (fault); __atomic access */
    uint64_t webhook_drop_rng;

    /* webhook scheduler (webhooks.c) */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    struct sim_job *queue; /* sorted by due time */
    size_t queue_len;
    int stopping;
    pthread_t *threads;
    int nthreads;
};

/* The mode of the objects a request creates ("test" or "production"),
 * from its API key (set by the HTTP front per request; NULL = default). */
void sim_set_request_mode(const char *mode);
/* "test" for keys starting with EZTK or "test", else "production". */
const char *sim_mode_for_key(const char *key, size_t len);

/* objects.c — every function here takes sim->mu itself. */
int sim_init(sim_t *s, uint64_t seed, size_t max_objects);
void sim_destroy(sim_t *s);

/* Every handler returns the HTTP status and sets *out to a malloc'd JSON
 * body (EasyPost's object or error). */
int sim_shipment_create(sim_t *s, json_object *req, char **out);
int sim_shipment_buy(sim_t *s, const char *shp_id, json_object *req, char **out);
int sim_object_get(sim_t *s, const char *id, const char *want_object, char **out);
int sim_tracker_create(sim_t *s, json_object *req, char **out);
int sim_address_create(sim_t *s, json_object *req, int verify, char **out);
int sim_events_list(sim_t *s, int page_size, const char *before_id, char **out);
int sim_event_get(sim_t *s, const char *id, char **out);

/* The rest of EasyPost's /v2 operations (see --help); same conventions. */
int sim_address_verify(sim_t *s, const char *id, char **out);
int sim_shipment_rerate(sim_t *s, const char *id, char **out);
int sim_shipment_label(sim_t *s, const char *id, const char *file_format, char **out);
int sim_shipment_insure(sim_t *s, const char *id, json_object *req, char **out);
int sim_shipment_refund(sim_t *s, const char *id, char **out);
int sim_refund_create(sim_t *s, json_object *req, char **out);
int sim_insurance_create(sim_t *s, json_object *req, char **out);
int sim_batch_create(sim_t *s, json_object *req, char **out);
int sim_batch_get(sim_t *s, const char *id, char **out);
/* action: add_shipments | remove_shipments | buy | label | scan_form */
int sim_batch_action(sim_t *s, const char *id, const char *action, json_object *req, char **out);
int sim_pickup_create(sim_t *s, json_object *req, char **out);
/* action: buy | cancel */
int sim_pickup_action(sim_t *s, const char *id, const char *action, json_object *req, char **out);
int sim_scan_form_create(sim_t *s, json_object *req, char **out);
/* Applies a refund plan (submitted -> refunded); returns the refund.successful
 * Event body to deliver (malloc'd) or NULL. */
char *sim_refund_apply(sim_t *s, sim_plan_t *plan);
/* Balance: SIM_FUNDS / POST /sim/funds (cents < 0 = unlimited). */
void sim_funds_set(sim_t *s, int64_t cents);
/* Writes {"balance":"12.34000"|null,"unlimited":bool} (malloc'd). */
char *sim_funds_json(sim_t *s);

/* GET /v2/<kind's collection>: newest first, {"shipments"|...:[...],"has_more":bool}.
 * 422 on a bad query. */
int sim_list(sim_t *s, int kind, const sim_list_query_t *q, sim_list_fault_t fault, char **out);

/* Sets the preloaded history (replaces any earlier one). */
void sim_preload_set(sim_t *s, size_t n, int64_t end_usec, int64_t span_usec);

/* EasyPost error body {"error":{"code","message","errors":[...]}} (malloc'd). */
char *sim_error_json(const char *code, const char *message, const char *field,
                     const char *field_message);

/* Deterministic ids: prefix + 32 hex. Caller holds s->mu. */
void sim_new_id_locked(sim_t *s, const char *prefix, char *buf, size_t n);
uint64_t sim_hash(uint64_t x);

/* Applies the next step of plan to the tracker (under s->mu) and returns
 * the signed-ready tracker.updated Event body (malloc'd) or NULL when the
 * tracker is gone. */
char *sim_tracker_apply_step(sim_t *s, sim_plan_t *plan);
/* tracker.created Event body for a tracker (malloc'd), or NULL. */
char *sim_tracker_created_event(sim_t *s, const char *tracker_id);

/* webhooks.c */
int sim_webhooks_start(sim_t *s, int nthreads);
void sim_webhooks_stop(sim_t *s);
/* Takes ownership of plan; schedules its steps. */
void sim_schedule_plan(sim_t *s, sim_plan_t *plan);
/* Queues a delivery of body (ownership taken) now. */
void sim_schedule_delivery(sim_t *s, char *body);

/* time formats */
void sim_fmt_z(int64_t usec, char *buf, size_t n);      /* 2025-03-07T16:46:17Z */
void sim_fmt_offset(int64_t usec, char *buf, size_t n); /* 2025-03-07T16:46:17+00:00 */
void sim_fmt_ms(int64_t usec, char *buf, size_t n);     /* 2025-03-07T16:46:17.123Z */

#endif
