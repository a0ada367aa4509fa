/* shipstream-gateway: shared state of the handlers. */
#ifndef SS_GATEWAY_H
#define SS_GATEWAY_H

#include <stddef.h>
#include <civetweb.h>
#include <json-c/json.h>
#include <libpq-fe.h>

#include "common/util.h"
#include "easypost/client.h"
#include "envelope/envelope.h"
#include "kafka/kafka.h"

/* Debian's libjs-chart.js (UMD build), served as /dashboard/chart.js. */
#define GW_CHARTJS_DEFAULT_PATH "/usr/share/javascript/chart.js/chart.min.js"

typedef struct {
    char *database_url;
    char *kafka_bootstrap;
    char *topic_prefix;
    char *listen;
    char *easypost_api_key;
    char *easypost_api_base;
    char *api_keys_csv;
    int auth_on;  /* GATEWAY_AUTH */
    int auth_off; /* derived: !auth_on */
    long long threads;
    long long max_body;
    long long statement_timeout_ms;
    long long db_connect_timeout_s;
    long long idempotency_wait_ms;
    long long easypost_timeout_ms;
    long long buy_lease_margin_ms;
    long long request_timeout_ms;
    long long db_pool;              /* GATEWAY_DB_POOL */
    long long easypost_connections; /* GATEWAY_EASYPOST_CONNECTIONS */
    long long db_pool_wait_ms;      /* GATEWAY_DB_POOL_WAIT_MS */
    char *admin_listen;
    long long linger_ms;
    long long message_timeout_ms; /* GATEWAY_KAFKA_MESSAGE_TIMEOUT_MS, 0 = never */
    long long queue_max_messages; /* GATEWAY_KAFKA_QUEUE_MAX_MESSAGES */
    long long queue_max_kbytes;   /* GATEWAY_KAFKA_QUEUE_MAX_KBYTES */
    long long shutdown_flush_ms;  /* GATEWAY_SHUTDOWN_FLUSH_MS */
    char *chartjs_path;           /* GATEWAY_CHARTJS_PATH */
    int mcp_allow_purchase;       /* GATEWAY_MCP_ALLOW_PURCHASE */
    char *mcp_allowed_origins;    /* GATEWAY_MCP_ALLOWED_ORIGINS */
} gw_config_t;

typedef struct {
    gw_config_t cfg;
    char **api_keys;
    size_t napi_keys;
    ss_ep_client_t *ep;            /* NULL when EASYPOST_API_KEY is unset */
    ss_kafka_producer_t *producer; /* NULL when it could not be created */
    char topics[SS_TOPIC__COUNT][256];
} gw_t;

extern gw_t g_gw;

/* Authorization check for /v1 and /db; sends 401 and returns 0 when refused. */
int gw_authorized(struct mg_connection *c, int *status);

/* The prelude of every /db handler: an API key (401) and GET (405).  Returns 1
 * to go on, or 0 with the answer sent and its status in *status. */
int gw_db_begin(struct mg_connection *c, int *status);

/* Buys protected against a second purchase (idempotency.c). */
typedef enum { GW_BUY_NONE = 0, GW_BUY_SHIPMENT, GW_BUY_BATCH, GW_BUY_PICKUP } gw_buy_kind_t;

/* One operation served: "METHOD PATH" (OpenAPI form, {id} for an id).  For
 * EasyPost's operations also the name counted in
 * gateway_easypost_calls_total{op}, the verb of the type its answer's
 * objects are captured with ("created": "shipment.created"; NULL: by the
 * method, GET "retrieved") and the buy it is. */
typedef struct {
    const char *method;
    const char *path;
    const char *op;
    const char *verb;
    gw_buy_kind_t buy;
} gw_op_t;

/* EasyPost's operations known by name (shipping.c), {NULL} terminated. */
extern const gw_op_t gw_ep_ops[];

/* The operation of method and path ("/v2/shipments/shp_1/buy"), NULL when
 * none; its {id} segment copied to id. */
const gw_op_t *gw_ep_op_find(const char *method, const char *path, char *id, size_t idsize);

/* /v2, /beta and /v1 (an alias of /v2): EasyPost's API, forwarded
 * (shipping.c). */
int gw_handle_easypost(struct mg_connection *c, void *ud);

/* /db (read API) handlers. */
int gw_handle_db_shipments(struct mg_connection *c, void *ud);
int gw_handle_db_addresses(struct mg_connection *c, void *ud);
int gw_handle_db_dashboard(struct mg_connection *c, void *ud);
/* GET /db/pipeline (pipeline.c); GET / and /dashboard[/file] (dashboard.c). */
int gw_handle_db_pipeline(struct mg_connection *c, void *ud);
int gw_handle_root(struct mg_connection *c, void *ud);
int gw_handle_dashboard(struct mg_connection *c, void *ud);
/* GET /openapi.json (openapi.c): the API description, no key. */
int gw_handle_openapi(struct mg_connection *c, void *ud);

/* POST /mcp: the Model Context Protocol (mcp.c, tools in mcp_tools.c). */
int gw_handle_mcp(struct mg_connection *c, void *ud);

/* The read API's queries as JSON text (readapi.c), shared by /db and the MCP
 * tools: each appends PostgreSQL's JSON to out and returns 0 (get: 1 found,
 * 0 not found), or -1 with err (logs only) and *unavailable set when
 * PostgreSQL is unreachable or busy (503) rather than failing (500). */
typedef struct {
    const char *mode; /* "production", "test", or NULL / "all" = any */
    const char *status, *carrier, *service, *tracking_code; /* NULL = any */
    const char *created_from, *created_to; /* timestamps ss_time_parse accepts, or NULL */
    const char *text;                      /* NULL, or an id, tracking code, reference or
                                              words of an address (MCP search_shipments) */
    const char *cursor_usec, *cursor_id;   /* a decoded cursor, or NULL */
    long limit;                            /* rows per page */
} gw_shipments_query_t;
/* {"shipments":[…],"next_cursor":…,"count":n}, as GET /db/shipments. */
int gw_db_shipments_page(const gw_shipments_query_t *q, ss_buf_t *out, int *unavailable, char *err,
                         size_t errsize);
/* One shipment with its addresses, rate and tracking events (GET /db/shipments/{id}). */
int gw_db_shipment_get(const char *id, ss_buf_t *out, int *unavailable, char *err, size_t errsize);
/* The dashboard's numbers for the last days of mode "production", "test" or
 * "all" (GET /db/analytics/dashboard). */
int gw_db_dashboard_get(long days, const char *mode, ss_buf_t *out, int *unavailable, char *err,
                        size_t errsize);

/* Hands the EasyPost object of an answer (r->body, its bytes as received;
 * the "address" member when EasyPost wrapped it: create_and_verify) to
 * Kafka as an envelope of the given type, without waiting (never blocks the
 * caller on the broker).  Failures are counted and logged. */
void gw_publish(const char *type, const ss_ep_result_t *r);

/* Hands every object of an answer (body, len: EasyPost's bytes) to Kafka:
 * the top-level object when it has "object" and "id", else each top-level
 * member that is such an object ({"address":{...}}) and each such element of
 * a top-level list ({"shipments":[...]}, or an answer that is a list).
 * Nested objects (a Shipment's addresses, parcel, rates) go with their
 * parent.  Types are "<object in snake case>.<verb>" ("scan_form.created").
 * Never blocks; failures counted and logged. */
void gw_capture(const char *verb, const char *body, size_t len);

/* Hand-off accounting (handoff.c): metrics gateway_handoff_total,
 * gateway_handoff_waiting(_bytes), gateway_handoff_dropped_total{reason};
 * every dropped object logged with its id.  gw_handoff_report is the
 * producer's on_report; gw_handoff_tick refreshes the waiting gauges. */
void gw_handoff_init(void);
void gw_handoff_report(void *ud, const ss_kafka_report_t *r);
void gw_handoff_tick(void);

/* PostgreSQL: a bounded pool shared by every thread (dbconn.c); statements
 * prepared per connection; after a failed connect every query fails fast for
 * about a second, so /db answers 503 quickly while PostgreSQL is down.
 * errstr may name the host, user and database: logs only, never a body. */

/* The connection pool (GATEWAY_DB_POOL connections, made on first use).
 * Returns 0, or -1 out of memory. */
int gw_db_pool_init(int size);

/* /ready: runs SELECT 1 on the thread's connection.  Returns 0, or -1 with
 * errstr (the connection is dropped). */
int gw_db_ping(char *errstr, size_t errstr_size);
/* Closes the thread's connection and frees it. */
void gw_db_reset(void);
void gw_db_thread_exit(void);

/* Runs a parameterised query; on a connection failure it reconnects and
 * retries once.  Returns the result (caller PQclears) or NULL with errstr;
 * *unavailable is set when the cause is PostgreSQL being unreachable. */
PGresult *gw_db_query(const char *sql, int nparams, const char *const *params, int *unavailable,
                      char *errstr, size_t errstr_size);

/* The same, as a statement prepared once per connection (planning the
 * dashboard query costs more than running it).  stmt is a small index
 * (GW_STMT_*) naming sql; the same index must always name the same text. */
enum {
    GW_STMT_DASHBOARD,
    GW_STMT_SHIPMENT,
    GW_STMT_IDEM_CLAIM,
    GW_STMT_IDEM_READ,
    GW_STMT_IDEM_FINISH,
    GW_STMT_IDEM_RENEW,
    GW_STMT_IDEM_RELEASE,
    GW_STMT_DASHBOARD_GEN,
    GW_STMT__COUNT
};
PGresult *gw_db_query_prepared(int stmt, const char *sql, int nparams, const char *const *params,
                               int *unavailable, char *errstr, size_t errstr_size);

/* Counts one EasyPost call in gateway_easypost_calls_total{op,outcome} and
 * its latency. */
void gw_count_ep_call(const char *op, const ss_ep_result_t *r);

/* An answer built without a connection: what a handler sends. */
typedef struct {
    int status; /* HTTP status */
    char *body; /* JSON body, malloc'd (NULL: none; gw_answer_send sends {}) */
    size_t body_len;
    char headers[160]; /* extra header lines, each ending in "\r\n" ("" for none) */
} gw_answer_t;

/* Frees a->body (safe on a zeroed answer). */
void gw_answer_free(gw_answer_t *a);

/* {"error":{"code","message"}} with status and extra headers (NULL: none). */
void gw_answer_error(gw_answer_t *a, int status, const char *code, const char *message,
                     const char *headers);

/* What gw_send_ep_result sends for r (the body copied; EasyPost's
 * Retry-After passed on). */
void gw_answer_from_ep(gw_answer_t *a, const ss_ep_result_t *r);

/* Sends a (status, body, headers); returns the status. */
int gw_answer_send(struct mg_connection *c, const gw_answer_t *a);

/* Idempotent buy of shipment_id with body (EasyPost's {"rate":{...}}; not
 * checked here), without a connection: fills *out (free with
 * gw_answer_free).  idempotency_key NULL: the buy is still protected by an
 * implicit key per shipment (idempotency.c).  The bought shipment is
 * published.  Never buys one shipment twice. */
void gw_buy_do(const char *shipment_id, const char *body, size_t len, const char *idempotency_key,
               gw_answer_t *out);

/* The same for a batch or pickup buy (GW_BUY_BATCH, GW_BUY_PICKUP) or a
 * shipment's (GW_BUY_SHIPMENT: gw_buy_do); id is the object's. */
void gw_buy_kind_do(gw_buy_kind_t kind, const char *id, const char *body, size_t len,
                    const char *idempotency_key, gw_answer_t *out);

/* gw_buy_kind_do in two steps, so that the answer goes out first:
 * gw_buy_kind_start fills *out and *after; gw_buy_after_run (always called,
 * once, after the answer is sent) records the buy's outcome in
 * idempotency_keys and hands the bought object to Kafka.  Until it has run
 * the key stays claimed (in_progress): a concurrent request for it waits. */
typedef struct {
    int pending;
    char key[256];
    const char *state; /* "completed", "failed", "unknown" */
    long http_status;
    int store_body;
    ss_ep_result_t r;
} gw_buy_after_t;
void gw_buy_kind_start(gw_buy_kind_t kind, const char *id, const char *body, size_t len,
                       const char *idempotency_key, gw_answer_t *out, gw_buy_after_t *after);
void gw_buy_after_run(gw_buy_after_t *after);

/* gw_buy_do with the request's Idempotency-Key, answer sent on c. */
int gw_buy(struct mg_connection *c, const char *shipment_id, const char *body, size_t len);

/* Sends an EasyPost result on (status and body passed through; transport
 * failures mapped to 502/504 with our error body). */
int gw_send_ep_result(struct mg_connection *c, const ss_ep_result_t *r);

#endif
