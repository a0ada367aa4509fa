/* EasyPost API client (libcurl, json-c).
 *
 * One ss_ep_client_t holds the configuration (base URL, API key, timeouts,
 * retry policy); it is immutable after ss_ep_client_new() and may be shared
 * by any number of threads.  Calls borrow a CURL handle from one bounded
 * pool per process (max_connections; connections kept alive and reused), so
 * a service with many threads holds few connections to EasyPost; a call
 * waits for a free handle.  ss_ep_thread_cleanup() is kept for callers and
 * does nothing.
 *
 * Requests carry HTTP Basic auth with the API key as user name and an empty
 * password, "Content-Type: application/json" and "Accept: application/json".
 * Request bodies are the caller's JSON, passed through unchanged, in the
 * form EasyPost expects ({"shipment":{...}}, {"rate":{"id":"rate_..."}},
 * {"tracker":{...}}, {"address":{...}}).
 *
 * Retries (capped exponential backoff with full jitter, at most max_retries
 * extra attempts), by what is safe to repeat:
 *   - GET (retrieve): connection errors, timeouts, dropped connections,
 *     HTTP 429, 502, 503, 504.
 *   - POST creates (shipment, tracker, address): only when EasyPost certainly
 *     did not act: the connection could not be established (nothing was
 *     sent), or HTTP 429 (EasyPost's rate limiter rejects before processing).
 *     A create whose answer was lost (timeout, drop, 502/504) is NOT retried:
 *     repeating it would create a second object (harmless but not
 *     idempotent, and a second tracker means duplicate webhooks).
 *   - POST buy: only when the connection could not be established.  A buy
 *     whose outcome is unknown is never repeated; out->outcome_unknown is 1
 *     then, and the caller must retrieve the shipment to learn the truth.
 *
 * Results keep everything the gateway needs to pass an answer through: the
 * HTTP status, the raw body (bounded by max_body), the parsed JSON, and for
 * EasyPost errors the parsed error (code, message, field errors in both
 * recorded formats).
 *
 * Money: EasyPost sends amounts as strings ("8.20000").  Read them with
 * ss_ep_money_get(), which never converts through a double. */
#ifndef SS_EASYPOST_CLIENT_H
#define SS_EASYPOST_CLIENT_H

#include <stddef.h>
#include <json-c/json.h>

#define SS_EP_DEFAULT_API_BASE    "https://api.easypost.com/v2"
#define SS_EP_DEFAULT_MAX_BODY    ((size_t)4 * 1024 * 1024)
#define SS_EP_DEFAULT_CONNECTIONS 32

typedef struct {
    const char *api_base;    /* NULL or "" = SS_EP_DEFAULT_API_BASE; a trailing '/' is ignored */
    const char *api_key;     /* required, non-empty; copied (never logged) */
    long connect_timeout_ms; /* 0 = 5000 */
    long timeout_ms;         /* total per attempt; 0 = 30000 */
    int max_retries;         /* extra attempts; 0 = 2, negative = none */
    int backoff_base_ms;     /* first delay ceiling; 0 = 100 */
    int backoff_max_ms;      /* cap on one delay; 0 = 2000 */
    size_t max_body;         /* response body cap; 0 = SS_EP_DEFAULT_MAX_BODY */
    const char *user_agent;  /* NULL = "shipstream/<version>" */
    /* A 429/503 answer's Retry-After is honoured as the next delay when it is
     * at most this long; longer: the answer is returned at once, with
     * retry_after_ms set, for the caller to wait.  0 = the old rule: honoured
     * up to backoff_max_ms, else the client's own backoff is used. */
    int retry_after_max_ms;
    /* CURL handles (and so kept-alive connections to EasyPost) of the whole
     * process, shared by every thread; 0 = SS_EP_DEFAULT_CONNECTIONS.  The
     * last client created sets it. */
    int max_connections;
} ss_ep_config_t;

typedef struct ss_ep_client ss_ep_client_t;

/* What happened to a call. */
typedef enum {
    SS_EP_OK = 0,           /* HTTP 2xx with a JSON object body (out->json) */
    SS_EP_HTTP_ERROR,       /* HTTP answer >= 300 (usually an EasyPost error):
                                http_status, body, and error_* when parseable */
    SS_EP_ERR_CONNECT,      /* could not connect / resolve: nothing was sent (→ 502) */
    SS_EP_ERR_TIMEOUT,      /* connect or total timeout (→ 504) */
    SS_EP_ERR_TRANSPORT,    /* other transport failure, e.g. connection dropped
                                mid-answer, TLS error (→ 502) */
    SS_EP_ERR_TOO_LARGE,    /* the answer exceeded max_body (→ 502) */
    SS_EP_ERR_BAD_RESPONSE, /* 2xx answer that is not a JSON object (→ 502);
                                http_status and body are kept */
    SS_EP_ERR_INVALID,      /* bad arguments (NULL body, id with bad characters) */
    SS_EP_ERR_INTERNAL,     /* out of memory, curl init failure */
} ss_ep_status_t;

/* One entry of error.errors[].  EasyPost sends either objects
 * {"field","message","suggestion"} or plain strings; a plain string becomes
 * {field = NULL, message = the string, suggestion = NULL}. */
typedef struct {
    char *field;      /* may be NULL */
    char *message;    /* may be NULL */
    char *suggestion; /* may be NULL */
} ss_ep_field_error_t;

/* Filled by every call (zeroed first).  Everything is owned by the result:
 * free with ss_ep_result_free() (safe on a zeroed or already-freed result). */
typedef struct {
    ss_ep_status_t status;
    long http_status; /* 0 when no HTTP answer was received */
    char *body;       /* raw answer body, NUL-terminated (NULL if none) */
    size_t body_len;
    json_object *json; /* parsed body when it is JSON (any status), else NULL */
    /* EasyPost error ({"error":{...}}), when http_status >= 300 and parseable */
    char *error_code;    /* e.g. "PARAMETER.REQUIRED"; NULL if absent */
    char *error_message; /* NULL if absent */
    ss_ep_field_error_t *field_errors;
    size_t n_field_errors;
    int attempts;        /* HTTP attempts made (>= 1 unless INVALID) */
    int outcome_unknown; /* 1: a POST may have been applied but no answer arrived */
    double elapsed_ms;   /* total time including retries and backoff */
    long retry_after_ms; /* Retry-After of the last answer in ms, -1 when absent */
    char errstr[256];    /* human-readable description when status != OK */
    /* Headers of the last answer worth passing on ("" when absent or too
     * long to keep): Content-Type and EasyPost's request id. */
    char content_type[128];
    char request_uuid[128]; /* x-ep-request-uuid */
} ss_ep_result_t;

/* Creates a client.  Returns NULL with errstr when api_key is missing or the
 * base URL is not http(s)://.  Initialises libcurl globally on first use
 * (thread-safe). */
ss_ep_client_t *ss_ep_client_new(const ss_ep_config_t *cfg, char *errstr, size_t errstr_size);

/* Frees the client (wipes the key).  No call may be in flight.  NULL is a no-op. */
void ss_ep_client_free(ss_ep_client_t *c);

/* Releases the calling thread's CURL handle (if any). */
void ss_ep_thread_cleanup(void);

/* The one URL check of the project: 0 when url parses with libcurl's URL API
 * as an http:// or https:// URL with a host, else -1 with errstr. */
int ss_ep_url_check(const char *url, char *errstr, size_t errstr_size);

/* Every call below returns 0 when status == SS_EP_OK, -1 otherwise; *out is
 * always filled and must be freed with ss_ep_result_free().  body/len: the
 * caller's JSON (len may be 0 to use strlen(body)).  Ids must match
 * [A-Za-z0-9_-]{1,128}, else SS_EP_ERR_INVALID without any request. */

/* POST /shipments, body {"shipment":{from_address,to_address,parcel,options,...}}. */
int ss_ep_shipment_create(ss_ep_client_t *c, const char *body, size_t len, ss_ep_result_t *out);

/* POST /shipments/{id}/buy, body {"rate":{"id":"rate_..."}} (plus optional
 * "insurance" etc., passed through).  Never repeated once sent. */
int ss_ep_shipment_buy(ss_ep_client_t *c, const char *shipment_id, const char *body, size_t len,
                       ss_ep_result_t *out);

/* Convenience: buys rate_id (builds {"rate":{"id":rate_id}}). */
int ss_ep_shipment_buy_rate(ss_ep_client_t *c, const char *shipment_id, const char *rate_id,
                            ss_ep_result_t *out);

/* GET /shipments/{id}. */
int ss_ep_shipment_retrieve(ss_ep_client_t *c, const char *shipment_id, ss_ep_result_t *out);

/* POST /trackers, body {"tracker":{"tracking_code":...,"carrier":...}}. */
int ss_ep_tracker_create(ss_ep_client_t *c, const char *body, size_t len, ss_ep_result_t *out);

/* GET /trackers/{id}. */
int ss_ep_tracker_retrieve(ss_ep_client_t *c, const char *tracker_id, ss_ep_result_t *out);

/* POST /addresses, body {"address":{...}} (optionally "verify":[...]). */
int ss_ep_address_create(ss_ep_client_t *c, const char *body, size_t len, ss_ep_result_t *out);

/* POST /addresses/create_and_verify, body {"address":{...}}.  EasyPost
 * answers {"address":{...}} (wrapped) on success, 422 when unverifiable. */
int ss_ep_address_create_and_verify(ss_ep_client_t *c, const char *body, size_t len,
                                    ss_ep_result_t *out);

typedef enum {
    SS_EP_RETRY_SAFE = 0,   /* GET-like: every retryable failure */
    SS_EP_RETRY_CREATE,     /* connect failures and 429 only */
    SS_EP_RETRY_NEVER_SENT, /* connect failures only (buy) */
} ss_ep_retry_t;

/* The general form: method "GET" or "POST", path relative to the base
 * ("/shipments/shp_1"), body NULL for GET. */
int ss_ep_request(ss_ep_client_t *c, const char *method, const char *path, const char *body,
                  size_t len, ss_ep_retry_t retry, ss_ep_result_t *out);

void ss_ep_result_free(ss_ep_result_t *r);

/* ---- pass-through (the gateway's EasyPost surface) ----
 *
 * One request forwarded as the client made it: any method, a path from the
 * API's root (the base URL without its last segment: "/v2/shipments/shp_1",
 * "/beta/referral_customers"), the raw query string, the body as is (sent
 * with Content-Type: application/json).  Credentials are this client's
 * (its api_key), never anything of the caller's request.  The answer is not parsed: out->json stays NULL;
 * status is SS_EP_OK for any 2xx (whatever its body), SS_EP_HTTP_ERROR for
 * any other HTTP answer (error_* filled when it is EasyPost's error), the
 * transport errors as for every call.  Paths: [A-Za-z0-9._~/-], no "." or
 * ".." segment, at most 1024 bytes; queries: visible ASCII but '#', at most
 * 4096 bytes; else SS_EP_ERR_INVALID without any request. */
typedef struct {
    const char *method; /* GET, POST, PUT, PATCH or DELETE */
    const char *path;   /* from the API root, starting with '/' */
    const char *query;  /* without '?'; NULL or "" = none */
    const char *body;   /* NULL = no body (POST/PUT/PATCH send an empty one) */
    size_t len;
    const char *idempotency_key; /* passed on as Idempotency-Key; NULL = none */
    ss_ep_retry_t retry;         /* what may be repeated (GET: SS_EP_RETRY_SAFE) */
} ss_ep_forward_t;

int ss_ep_forward(ss_ep_client_t *c, const ss_ep_forward_t *req, ss_ep_result_t *out);

/* ---- lists (EasyPost's pagination) ----
 *
 * GET /shipments, /trackers, /events answer newest first
 * {"shipments":[...],"has_more":bool}; the next (older) page is asked with
 * before_id = the id of the last object of this page.  start_datetime and
 * end_datetime bound created_at.  A list call is a GET: retried like one
 * (429 with Retry-After, 502/503/504, transport errors); a 500 or a retry
 * budget spent comes back as an error for the caller to retry later. */
typedef enum {
    SS_EP_LIST_SHIPMENTS = 0,
    SS_EP_LIST_TRACKERS,
    SS_EP_LIST_EVENTS,
} ss_ep_list_kind_t;

/* "shipments", "trackers", "events": the path and the page's array key. */
const char *ss_ep_list_name(ss_ep_list_kind_t kind);

/* The object type a list holds: "Shipment", "Tracker", "Event". */
const char *ss_ep_list_object(ss_ep_list_kind_t kind);

typedef struct {
    int page_size;              /* 1..100; 0 = 100 */
    const char *before_id;      /* NULL or "" = from the newest */
    const char *after_id;       /* NULL or "" = none */
    const char *start_datetime; /* RFC 3339, NULL = none (bounds created_at) */
    const char *end_datetime;
} ss_ep_list_params_t;

/* Deepest nesting of one list entry: the page is checked as a whole with
 * the strict scanner (envelope/json_scan.h) at SS_JSON_MAX_DEPTH, and an
 * entry sits two levels down (the page object, its array). */
#define SS_EP_ITEM_MAX_DEPTH 62

/* One entry of a page.  Pointers borrow from the answer body the page was
 * parsed from (ss_ep_result_t.body for ss_ep_list) and from the page: valid
 * until both are freed. */
typedef struct {
    /* The entry's bytes exactly as EasyPost sent them (whitespace, escapes,
     * member order and numbers untouched), not NUL-terminated: one JSON
     * object, strict RFC 8259, at most SS_EP_ITEM_MAX_DEPTH deep.  What a
     * producer hands to the envelope writer as is: nothing re-serialises
     * it. */
    const char *raw;
    size_t raw_len;
    const char *id;            /* never NULL; decoded */
    const char *object_type;   /* "Shipment"..., NULL when absent (or longer than 63 bytes) */
    const char *status;        /* NULL when absent (or longer than 63 bytes) */
    long long created_at_usec; /* 0 when absent or not a timestamp */
    long long updated_at_usec; /* 0 when absent or not a timestamp */
} ss_ep_list_item_t;

typedef struct {
    ss_ep_list_item_t *items; /* malloc'd */
    size_t n;
    int has_more;
    size_t n_invalid; /* entries that are not objects with a non-empty "id" string of at
                         most 255 bytes (skipped) */
    void *strings;    /* the items' decoded strings (owned) */
} ss_ep_page_t;

/* One page.  Returns 0 with *page filled (free with ss_ep_page_free) and the
 * raw answer in out->body, which the items point into (out->json stays
 * NULL: a page is read with the strict scanner, never built into a json-c
 * tree); -1 with out->status and errstr otherwise: an HTTP error
 * (out->http_status, out->retry_after_ms), a transport error, or
 * SS_EP_ERR_BAD_RESPONSE for a 2xx that is not a list page (not strict JSON
 * or nested deeper than SS_JSON_MAX_DEPTH, no array under the list's name,
 * has_more not a boolean). */
int ss_ep_list(ss_ep_client_t *c, ss_ep_list_kind_t kind, const ss_ep_list_params_t *params,
               ss_ep_page_t *page, ss_ep_result_t *out);

/* The page in an answer body (len bytes; need not be NUL-terminated; must
 * outlive the page).  Returns 0, or -1 with errstr when body is not a list
 * page of that kind.  Duplicate members: the last one wins, as with json-c. */
int ss_ep_page_parse(ss_ep_list_kind_t kind, const char *body, size_t len, ss_ep_page_t *page,
                     char *errstr, size_t errstr_size);

void ss_ep_page_free(ss_ep_page_t *page);

/* Parses an answer (status + body) into *out exactly as the calls do: JSON,
 * error fields, status classification.  Exposed for tests and for callers
 * with recorded answers.  Copies body.  Returns 0 when OK, else -1. */
int ss_ep_result_parse(long http_status, const char *body, size_t len, ss_ep_result_t *out);

/* Short name of a status ("ok", "http_error", "connect", "timeout", ...). */
const char *ss_ep_status_name(ss_ep_status_t s);

/* Money.  1 when s is a plain decimal: optional '-', 1..18 digits, optional
 * '.' followed by 1..10 digits (e.g. "8.20000", "0", "-1.5"); 0 otherwise
 * (empty, exponent, spaces, "NaN", "1.", ".5"). */
int ss_ep_money_valid(const char *s);

/* Reads obj[key] as money into buf without any floating-point conversion.
 * A JSON string is taken as is; a JSON number is taken as the exact text
 * EasyPost sent (json-c keeps it).  Returns 1 when present and a valid
 * decimal, 0 when absent or null, -1 when present but not a valid decimal
 * or longer than bufsize-1 (buf then holds ""). */
int ss_ep_money_get(json_object *obj, const char *key, char *buf, size_t bufsize);

/* Borrowed string member obj[key], NULL when absent, null or not a string. */
const char *ss_ep_json_str(json_object *obj, const char *key);

#endif
