/* easypost-sim: a local stand-in for the EasyPost API (see --help). */
#include "sim.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include <common/config.h>
#include <common/log.h>
#include <common/metrics.h>
#include <common/shutdown.h>
#include <common/sstime.h>
#include <common/util.h>
#include <easypost/client.h>
#include <http/server.h>

#define MAX_BODY (1024 * 1024)

static const char SUMMARY[] =
    "easypost-sim: a local EasyPost API for demos, tests and benchmarks.\n"
    "\n"
    "Answers EasyPost's endpoints under /v2 with EasyPost's shapes (ids shp_/rate_/adr_/prcl_/\n"
    "trk_/pl_/evt_/batch_/pickup_/sf_/rfnd_/ins_, money as strings like \"8.20000\", mode from the "
    "key),\nkeeps everything in memory "
    "(oldest objects evicted past SIM_MAX_OBJECTS) and plays tracker webhooks after a purchase.\n"
    "\n"
    "Endpoints (HTTP Basic auth, API key as user name, empty password; Bearer also accepted):\n"
    "  POST /v2/shipments                    "
    "{\"shipment\":{from_address,to_address,parcel,options}} -> 201\n"
    "  POST /v2/shipments/{id}/buy           {\"rate\":{\"id\":\"rate_...\"}} -> 200 (422 if "
    "already bought)\n"
    "  GET  /v2/shipments/{id}\n"
    "  POST /v2/trackers                     "
    "{\"tracker\":{\"tracking_code\":\"...\",\"carrier\":\"USPS\"}}\n"
    "  GET  /v2/trackers/{id}\n"
    "  POST /v2/addresses                    {\"address\":{...}} (add \"verify\":true to verify) "
    "-> 201\n"
    "  POST /v2/addresses/create_and_verify  {\"address\":{...}} -> 200 {\"address\":{...}} or "
    "422\n"
    "  GET  /v2/shipments | /v2/trackers     lists, newest first, EasyPost's pagination: "
    "page_size\n"
    "                                        (1..100, default 20), before_id, after_id,\n"
    "                                        start_datetime, end_datetime (RFC 3339, on "
    "created_at)\n"
    "                                        -> {\"shipments\":[...],\"has_more\":bool}\n"
    "  GET  /v2/addresses/{id}/verify        200 {\"address\":{verified copy, new id}} or 422\n"
    "  POST /v2/shipments/{id}/rerate        {} -> {\"rates\":[...]} (new rates replace the old)\n"
    "  GET  /v2/shipments/{id}/label?file_format=PDF|ZPL|EPL2|PNG   bought shipment, label_*_url "
    "set\n"
    "  POST /v2/shipments/{id}/insure        {\"amount\":\"100\"} -> shipment, insurance "
    "\"100.00\", an\n"
    "                                        InsuranceFee (1%, min $1) and an Insurance object\n"
    "  POST /v2/shipments/{id}/refund        {} -> refund_status \"submitted\", a Refund; one "
    "simulated\n"
    "                                        day later \"refunded\" (PostageFee refunded, funds "
    "back,\n"
    "                                        refund.successful event)\n"
    "  POST /v2/refunds                      {\"refund\":{carrier,tracking_codes:[...]}} -> 201 "
    "[Refund...]\n"
    "  POST /v2/insurances                   {\"insurance\":{from_address,to_address,tracking_code,"
    "carrier,\n"
    "                                        amount,reference}} -> 201 (status pending, with a "
    "tracker)\n"
    "  POST /v2/batches                      {\"batch\":{\"shipments\":[{\"id\"}|{shipment}...]}} "
    "-> state created\n"
    "  POST /v2/batches/{id}/add_shipments | remove_shipments   {\"shipments\":[{\"id\"}...]}\n"
    "  POST /v2/batches/{id}/buy             each shipment bought at its lowest rate -> "
    "purchased\n"
    "  POST /v2/batches/{id}/label           {\"file_format\":\"PDF\"} -> label_generated, "
    "label_url\n"
    "  POST /v2/batches/{id}/scan_form       -> the batch with its ScanForm\n"
    "  POST /v2/pickups                      {\"pickup\":{address,min_datetime,max_datetime,...}}"
    " -> unknown,\n"
    "                                        pickup_rates USPS NextDay 0.00, UPS Future-day "
    "Pickup 6.50\n"
    "  POST /v2/pickups/{id}/buy             {\"carrier\",\"service\"} -> scheduled, "
    "confirmation\n"
    "  POST /v2/pickups/{id}/cancel          scheduled -> canceled\n"
    "  POST /v2/scan_forms                   {\"scan_form\":{\"shipments\":[{\"id\"}...]}} -> "
    "ScanForm\n"
    "                                        (bought, unrefunded shipments not on another form)\n"
    "  GET  /v2/{addresses,batches,pickups,scan_forms,refunds,insurances}[/{id}]  lists "
    "paginated\n"
    "                                        like /v2/shipments, and retrieve\n"
    "  GET  /v2/events?page_size=N&before_id=evt_...   recent events (last 100); "
    "/v2/events/{id}\n"
    "  GET|POST /sim/funds                   balance: {\"balance\":\"25.00\"} or "
    "{\"unlimited\":true};\n"
    "                                        a purchase (buy, batch buy, insure, pickup buy) it "
    "does\n"
    "                                        not cover is 402 PAYMENT.INSUFFICIENT_FUNDS\n"
    "  POST /sim/preload                     {\"shipments\":N,\"days\":D}: N purchased "
    "shipments\n"
    "                                        with trackers spread over the D days before "
    "start\n"
    "  POST /sim/faults                      "
    "{\"queue\":[\"429\",\"500\",\"drop\",\"latency=200\"]} faults for\n"
    "                                        the next /v2 requests, one each; {\"clear\":true} "
    "empties it;\n"
    "                                        rates in percent: \"rate_429\", \"rate_500\", "
    "\"rate_drop\",\n"
    "                                        \"webhook_drop\"; \"retry_after\": seconds sent "
    "with 429;\n"
    "                                        \"latency_ms\": every /v2 answer delayed so long;\n"
    "                                        \"list\": \"unknown_type\"|\"malformed\"|\"repeat\"|"
    "\"none\"\n"
    "                                        with \"list_count\" (default 1, -1 = every list "
    "call)\n"
    "  GET  /health  /ready  /metrics\n"
    "Mode: objects created with a key starting EZTK or test are mode \"test\", with any other "
    "key\n"
    "\"production\" (as on EasyPost; without a key, the mode of EASYPOST_API_KEY, else test).\n"
    "Memory: at most SIM_MAX_OBJECTS objects (each address, shipment, tracker, batch, pickup,\n"
    "scan form, refund, insurance counts one; the oldest are evicted), 100 events.\n"
    "POST bodies may be empty (taken as {}). Answers to a 422 (already bought, refunded,\n"
    "not purchased...) leave the state unchanged.\n"
    "Errors are EasyPost's: {\"error\":{\"code\",\"message\",\"errors\":[...]}} - wrong key 401,\n"
    "missing fields 422 (PARAMETER.REQUIRED), unknown id 404 (NOT_FOUND). Rates: USPS\n"
    "(GroundAdvantage, Priority, Express), UPS (Ground, 3DaySelect, 2ndDayAir, NextDayAir), FedEx\n"
    "(FEDEX_GROUND, FEDEX_2_DAY, STANDARD_OVERNIGHT), priced from parcel weight (ounces) and the\n"
    "distance between the ZIP codes. Address verification fails (422 ADDRESS.VERIFY.FAILURE) "
    "without\n"
    "street1 or a 5-digit zip, or when street1 contains \"UNDELIVERABLE\".\n"
    "\n"
    "Faults, for tests: per request with the header  X-Sim-Fault: 429 | 500 | 502 | 503 | 504 | "
    "drop |\n"
    "latency=MS  (comma-separated to combine, e.g. \"latency=200,500\"), through POST /sim/faults, "
    "or\n"
    "at random with SIM_FAULT_RATE_* (percent). 429/5xx are answered before anything is done; "
    "\"drop\"\n"
    "does the work (a buy is applied) and then breaks the answer half-way (invalid chunked "
    "framing:\n"
    "clients see a receive error, as when a connection is cut mid-answer).\n"
    "\n"
    "Webhooks: after a purchase (and POST /v2/trackers) the tracker moves pre_transit -> "
    "in_transit ->\n"
    "out_for_delivery -> delivered (about 15% late against est_delivery_date, 3% failure, 3%\n"
    "return_to_sender), one simulated day every SIM_TIME_SCALE seconds. Each step is a "
    "tracker.updated\n"
    "Event POSTed to SIM_WEBHOOK_URL, signed like EasyPost (X-Hmac-Signature: hmac-sha256-hex=... "
    "with\n"
    "EASYPOST_WEBHOOK_SECRET), retried with backoff until answered 2xx. Timestamps in events are\n"
    "simulated time (purchase time + simulated days). Same SIM_SEED + same requests = same ids,\n"
    "prices, tracking codes and outcomes.\n"
    "\n"
    "Try it:\n"
    "  LISTEN=8080 EASYPOST_API_KEY=EZTK_test easypost-sim &\n"
    "  curl -s -u EZTK_test: localhost:8080/v2/shipments -H 'Content-Type: application/json' -d "
    "'{\n"
    "    \"shipment\":{\"from_address\":{\"name\":\"Jack Sparrow\",\"street1\":\"388 Townsend "
    "St\",\n"
    "      \"city\":\"San Francisco\",\"state\":\"CA\",\"zip\":\"94107\",\"country\":\"US\"},\n"
    "     \"to_address\":{\"name\":\"Elizabeth Swan\",\"street1\":\"179 N Harbor Dr\",\n"
    "      \"city\":\"Redondo Beach\",\"state\":\"CA\",\"zip\":\"90277\",\"country\":\"US\"},\n"
    "     \"parcel\":{\"length\":10,\"width\":8,\"height\":4,\"weight\":15.4}}}' | jq '{id, rates: "
    "[.rates[] | {id, carrier, service, rate}]}'\n"
    "  curl -s -u EZTK_test: localhost:8080/v2/shipments/shp_.../buy -H 'Content-Type: "
    "application/json' \\\n"
    "       -d '{\"rate\":{\"id\":\"rate_...\"}}' | jq '{tracking_code, selected_rate, tracker: "
    ".tracker.id}'\n"
    "  curl -s -u EZTK_test: localhost:8080/v2/trackers/trk_... | jq '{status, tracking_details}'\n"
    "  curl -s -u EZTK_test: localhost:8080/v2/addresses/create_and_verify -d '{\"address\":{\n"
    "       \"street1\":\"388 Townsend St\",\"city\":\"San "
    "Francisco\",\"state\":\"CA\",\"zip\":\"94107\"}}'\n"
    "  curl -s -u wrong: localhost:8080/v2/shipments/shp_x                 # 401\n"
    "  curl -s -u EZTK_test: localhost:8080/v2/shipments/shp_nope           # 404\n"
    "  curl -s -u EZTK_test: -H 'X-Sim-Fault: 429' localhost:8080/v2/shipments/shp_x   # 429\n"
    "  # webhooks to a receiver, one simulated day per second:\n"
    "  SIM_WEBHOOK_URL=http://localhost:8001/webhooks/easypost EASYPOST_WEBHOOK_SECRET=sécret \\\n"
    "       SIM_TIME_SCALE=1 easypost-sim";

static struct {
    char *listen;
    char *api_key;
    char *webhook_secret;
    char *webhook_url;
    char *time_scale;
    long long seed;
    long long max_objects;
    long long threads;
    long long webhook_threads;
    long long webhook_attempts;
    long long webhook_backoff_ms;
    long long webhook_backoff_max_ms;
    long long fault_latency_ms;
    long long fault_rate_429;
    long long fault_rate_500;
    long long fault_rate_drop;
    long long fault_webhook_drop;
    long long fault_retry_after;
    long long preload_shipments;
    long long preload_days;
    char *funds;
    char *log_level;
    char *log_format;
} cfg;

static const ss_conf_opt_t OPTS[] = {
    {"LISTEN", SS_CONF_LISTEN, &cfg.listen, "8080", 0, 0, "host:port or port to listen on", 0},
    {"EASYPOST_API_KEY", SS_CONF_STRING, &cfg.api_key, NULL, 0, 0,
     "the only API key accepted (unset: any key, or none, is accepted)", 1},
    {"EASYPOST_WEBHOOK_SECRET", SS_CONF_STRING, &cfg.webhook_secret, NULL, 0, 0,
     "secret that signs webhooks (X-Hmac-Signature); unset: webhooks are sent unsigned", 1},
    {"SIM_WEBHOOK_URL", SS_CONF_STRING, &cfg.webhook_url, NULL, 0, 0,
     "where tracker webhooks are POSTed (e.g. http://localhost:8001/webhooks/easypost); unset: "
     "none sent",
     0},
    {"SIM_TIME_SCALE", SS_CONF_STRING, &cfg.time_scale, "10", 0, 0,
     "real seconds per simulated day (decimal, e.g. 0.5); tracker steps follow it", 0},
    {"SIM_SEED", SS_CONF_INT, &cfg.seed, "42", 0, 0x7fffffffffffffffLL,
     "seed: same seed and same requests give the same ids, prices and outcomes", 0},
    {"SIM_FUNDS", SS_CONF_STRING, &cfg.funds, NULL, 0, 0,
     "account balance in dollars (e.g. 25.00): a purchase it does not cover is answered 402;\n"
     "     unset: unlimited (POST /sim/funds changes it at run time)",
     0},
    {"SIM_MAX_OBJECTS", SS_CONF_INT, &cfg.max_objects, "200000", 16, 100000000,
     "objects kept in memory; the oldest are evicted (then 404)", 0},
    {"SIM_THREADS", SS_CONF_INT, &cfg.threads, "64", 1, 512,
     "HTTP worker threads (civetweb holds one per kept-alive connection: keep it above the\n     "
     "gateway's GATEWAY_THREADS, each of which keeps one connection to EasyPost)",
     0},
    {"SIM_WEBHOOK_THREADS", SS_CONF_INT, &cfg.webhook_threads, "4", 1, 64,
     "threads advancing trackers and sending webhooks", 0},
    {"SIM_WEBHOOK_MAX_ATTEMPTS", SS_CONF_INT, &cfg.webhook_attempts, "20", 1, 1000,
     "delivery attempts per webhook before giving up", 0},
    {"SIM_WEBHOOK_BACKOFF_MS", SS_CONF_INT, &cfg.webhook_backoff_ms, "500", 1, 3600000,
     "first retry delay of a webhook not answered 2xx (doubles each time)", 0},
    {"SIM_WEBHOOK_BACKOFF_MAX_MS", SS_CONF_INT, &cfg.webhook_backoff_max_ms, "30000", 1, 86400000,
     "cap on one webhook retry delay", 0},
    {"SIM_FAULT_LATENCY_MS", SS_CONF_INT, &cfg.fault_latency_ms, "0", 0, 600000,
     "added to every /v2 request", 0},
    {"SIM_FAULT_RATE_429", SS_CONF_INT, &cfg.fault_rate_429, "0", 0, 100,
     "percent of /v2 requests answered 429 RATE_LIMITED", 0},
    {"SIM_FAULT_RATE_500", SS_CONF_INT, &cfg.fault_rate_500, "0", 0, 100,
     "percent of /v2 requests answered 500 INTERNAL_SERVER_ERROR", 0},
    {"SIM_FAULT_DROP", SS_CONF_INT, &cfg.fault_rate_drop, "0", 0, 100,
     "percent of /v2 requests whose answer breaks half-way (after doing the work)", 0},
    {"SIM_FAULT_WEBHOOK_DROP", SS_CONF_INT, &cfg.fault_webhook_drop, "0", 0, 100,
     "percent of webhooks never sent (as if EasyPost had given up on them)", 0},
    {"SIM_FAULT_RETRY_AFTER", SS_CONF_INT, &cfg.fault_retry_after, "0", 0, 3600,
     "Retry-After (seconds) sent with an injected 429 (0: no Retry-After header)", 0},
    {"SIM_PRELOAD_SHIPMENTS", SS_CONF_INT, &cfg.preload_shipments, "0", 0, 10000000,
     "historical purchased shipments with trackers, listed and retrievable but not stored\n     "
     "(rebuilt from SIM_SEED on demand; up to 8192 of them kept serialised once served, at most\n  "
     "   "
     "~125 MB); they never send webhooks",
     0},
    {"SIM_PRELOAD_DAYS", SS_CONF_INT, &cfg.preload_days, "180", 1, 3650,
     "the preloaded shipments are spread over this many days before the sim started", 0},
    {"LOG_LEVEL", SS_CONF_STRING, &cfg.log_level, "info", 0, 0, "debug|info|warn|error", 0},
    {"LOG_FORMAT", SS_CONF_STRING, &cfg.log_format, "json", 0, 0, "json|text", 0},
};
#define NOPTS (sizeof OPTS / sizeof *OPTS)

static sim_t g_sim;

/* ---- faults --------------------------------------------------------------- */

typedef struct {
    int status; /* 429, 500... or 0 */
    int drop;
    long latency_ms;
} fault_t;

#define FAULT_QUEUE_MAX 1024
static pthread_mutex_t g_fmu = PTHREAD_MUTEX_INITIALIZER;
static char *g_fqueue[FAULT_QUEUE_MAX];
static size_t g_fhead, g_flen;
static uint64_t g_fault_rng;
static sim_list_fault_t g_list_fault;
static long long g_list_fault_left; /* -1: every list call */
static int64_t g_started_usec;

static sim_list_fault_t list_fault_take(void) {
    pthread_mutex_lock(&g_fmu);
    sim_list_fault_t f = g_list_fault;
    if (f != SIM_LIST_OK && g_list_fault_left > 0 && --g_list_fault_left == 0)
        g_list_fault = SIM_LIST_OK;
    pthread_mutex_unlock(&g_fmu);
    return f;
}

static int fault_parse(const char *spec, fault_t *f) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (strcmp(tok, "drop") == 0)
            f->drop = 1;
        else if (strncmp(tok, "latency=", 8) == 0)
            f->latency_ms = strtol(tok + 8, NULL, 10);
        else if (!strcmp(tok, "429") || !strcmp(tok, "500") || !strcmp(tok, "502") ||
                 !strcmp(tok, "503") || !strcmp(tok, "504"))
            f->status = atoi(tok);
        else
            return -1;
    }
    if (f->latency_ms < 0 || f->latency_ms > 600000)
        return -1;
    return 0;
}

static void fault_pick(struct mg_connection *conn, fault_t *f) {
    memset(f, 0, sizeof *f);
    pthread_mutex_lock(&g_fmu);
    f->latency_ms = cfg.fault_latency_ms; /* SIM_FAULT_LATENCY_MS, or "latency_ms" */
    pthread_mutex_unlock(&g_fmu);
    const char *h = mg_get_header(conn, "X-Sim-Fault");
    if (h)
        fault_parse(h, f);
    pthread_mutex_lock(&g_fmu);
    if (g_flen > 0) {
        char *spec = g_fqueue[g_fhead];
        g_fhead = (g_fhead + 1) % FAULT_QUEUE_MAX;
        g_flen--;
        fault_parse(spec, f);
        free(spec);
    }
    if (cfg.fault_rate_429 || cfg.fault_rate_500 || cfg.fault_rate_drop) {
        g_fault_rng = sim_hash(g_fault_rng + (uint64_t)cfg.seed);
        int r = (int)(g_fault_rng % 100);
        if (r < cfg.fault_rate_429)
            f->status = 429;
        else if (r < cfg.fault_rate_429 + cfg.fault_rate_500)
            f->status = 500;
        else if (r < cfg.fault_rate_429 + cfg.fault_rate_500 + cfg.fault_rate_drop)
            f->drop = 1;
    }
    pthread_mutex_unlock(&g_fmu);
}

static int send_ep_error(struct mg_connection *conn, int status, const char *code,
                         const char *msg) {
    char *b = sim_error_json(code, msg, NULL, NULL);
    int st = ss_http_send_json(conn, status, b, strlen(b), NULL);
    free(b);
    return st;
}

static int send_fault_status(struct mg_connection *conn, int status) {
    switch (status) {
    case 429: {
        char *b = sim_error_json(
            "RATE_LIMITED",
            "You have exceeded the rate limit for this endpoint. Please try again later.", NULL,
            NULL);
        char hdr[64] = "";
        pthread_mutex_lock(&g_fmu);
        if (cfg.fault_retry_after > 0)
            snprintf(hdr, sizeof hdr, "Retry-After: %lld\r\n", cfg.fault_retry_after);
        pthread_mutex_unlock(&g_fmu);
        int st = ss_http_send_json(conn, 429, b, strlen(b), hdr[0] ? hdr : NULL);
        free(b);
        return st;
    }
    case 500:
        return send_ep_error(
            conn, 500, "INTERNAL_SERVER_ERROR",
            "We're sorry, something went wrong. If the problem persists please contact support.");
    case 502: return send_ep_error(conn, 502, "BAD_GATEWAY", "Bad gateway.");
    case 503:
        return send_ep_error(conn, 503, "SERVICE_UNAVAILABLE", "Service temporarily unavailable.");
    default: return send_ep_error(conn, 504, "GATEWAY_TIMEOUT", "Gateway timeout.");
    }
}

/* Sends the start of the answer, then breaks the framing: a chunked body
 * whose second chunk header is not hex.  Clients fail at once with a
 * receive error, exactly as when a connection is cut mid-answer (civetweb
 * offers no way to reset a server connection from a handler). */
static int send_dropped(struct mg_connection *conn, int status, const char *body) {
    size_t half = strlen(body) / 2;
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d Dropped\r\nContent-Type: application/json\r\n"
                      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n%zx\r\n",
                      status, half);
    mg_write(conn, head, (size_t)hl);
    mg_write(conn, body, half);
    mg_write(conn, "\r\nZZ-connection-dropped\r\n", 25);
    ss_counter_inc(ss_counter("sim_faults_total", "Injected faults", "kind=\"drop\""));
    return status;
}

/* ---- auth ------------------------------------------------------------------- */

/* 1 when the request carries the configured key (Basic user name or Bearer).
 * *mode: the mode of the objects the request creates, from the key it
 * carries (as on EasyPost: EZTK.../test... keys are test mode, others
 * production; no key: the sim's default). */
static int auth_ok(struct mg_connection *conn, int *missing, const char **mode) {
    const char *h = mg_get_header(conn, "Authorization");
    *missing = !h || !*h;
    *mode = NULL;
    char user[512];
    size_t ulen = 0;
    int parsed = 0;
    if (*missing) {
        parsed = 0;
    } else if (strncasecmp(h, "Basic ", 6) == 0) {
        const char *b = h + 6;
        while (*b == ' ')
            b++;
        size_t bl = strlen(b);
        unsigned char dec[512];
        int n = (bl == 0 || bl > 600 || bl % 4 != 0)
                    ? -1
                    : EVP_DecodeBlock(dec, (const unsigned char *)b, (int)bl);
        if (n >= 0) {
            while (n > 0 && bl > 0 && b[bl - 1] == '=') { /* EVP_DecodeBlock counts padding */
                n--;
                bl--;
            }
            unsigned char *colon = memchr(dec, ':', (size_t)n);
            ulen = colon ? (size_t)(colon - dec) : (size_t)n;
            memcpy(user, dec, ulen);
            parsed = 1;
        }
    } else if (strncasecmp(h, "Bearer ", 7) == 0) {
        const char *t = h + 7;
        while (*t == ' ')
            t++;
        ulen = strlen(t);
        if (ulen < sizeof user) {
            memcpy(user, t, ulen);
            parsed = 1;
        }
    }
    if (parsed && ulen > 0)
        *mode = sim_mode_for_key(user, ulen);
    if (!cfg.api_key)
        return 1;
    if (!parsed)
        return 0;
    return ss_secure_equal(user, ulen, cfg.api_key, strlen(cfg.api_key));
}

/* ---- routing ------------------------------------------------------------------ */

static int id_ok(const char *s, size_t n) {
    if (n == 0 || n > 100)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return 0;
    return 1;
}

static int read_json(struct mg_connection *conn, json_object **out, char **err_body,
                     int *err_status) {
    char *body = NULL;
    size_t len = 0;
    int rc = ss_http_read_body(conn, MAX_BODY, &body, &len);
    *out = NULL;
    if (rc == -2) {
        *err_status = 413;
        *err_body =
            sim_error_json("PAYLOAD.TOO_LARGE", "The request body is too large.", NULL, NULL);
        return -1;
    }
    if (rc != 0) {
        *err_status = 400;
        *err_body =
            sim_error_json("BAD_REQUEST", "The request body could not be read.", NULL, NULL);
        return -1;
    }
    if (len == 0) { /* no parameters: as {} (EasyPost's clients send {} or nothing) */
        free(body);
        *out = json_object_new_object();
        return *out ? 0 : -1;
    }
    json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = len ? json_tokener_parse_ex(tok, body, (int)len) : NULL;
    int ok = o && json_tokener_get_error(tok) == json_tokener_success &&
             json_object_is_type(o, json_type_object);
    json_tokener_free(tok);
    free(body);
    if (!ok) {
        if (o)
            json_object_put(o);
        *err_status = 422;
        *err_body = sim_error_json("PARAMETER.INVALID_JSON",
                                   "The request body must be a JSON object.", NULL, NULL);
        return -1;
    }
    *out = o;
    return 0;
}

/* GET /v2/shipments | /v2/trackers: parses EasyPost's list parameters. */
static int list_objects(struct mg_connection *conn, sim_t *s, int kind, char **out) {
    char ps[16], before[128] = "", after[128] = "", sd[64], ed[64];
    sim_list_query_t q = {20, NULL, NULL, INT64_MIN, INT64_MAX};
    ss_counter_inc(
        ss_counter("sim_list_calls_total", "List calls by object",
                   kind == SIM_KIND_TRACKER ? "object=\"trackers\"" : "object=\"shipments\""));
    if (ss_http_query_param(conn, "page_size", ps, sizeof ps) > 0) {
        char *end = NULL;
        long v = strtol(ps, &end, 10);
        if (!end || *end || v < 1 || v > 100) {
            *out = sim_error_json("PARAMETER.INVALID", "Invalid parameter.", "page_size",
                                  "must be an integer from 1 to 100");
            return 422;
        }
        q.page_size = (int)v;
    }
    if (ss_http_query_param(conn, "before_id", before, sizeof before) >= 0)
        q.before_id = before;
    if (ss_http_query_param(conn, "after_id", after, sizeof after) >= 0)
        q.after_id = after;
    if (ss_http_query_param(conn, "start_datetime", sd, sizeof sd) > 0 &&
        ss_time_parse(sd, &q.start_usec) != 0) {
        *out = sim_error_json("PARAMETER.INVALID", "Invalid parameter.", "start_datetime",
                              "must be an ISO 8601 date-time");
        return 422;
    }
    if (ss_http_query_param(conn, "end_datetime", ed, sizeof ed) > 0 &&
        ss_time_parse(ed, &q.end_usec) != 0) {
        *out = sim_error_json("PARAMETER.INVALID", "Invalid parameter.", "end_datetime",
                              "must be an ISO 8601 date-time");
        return 422;
    }
    sim_list_fault_t f = list_fault_take();
    if (f != SIM_LIST_OK)
        ss_counter_inc(ss_counter("sim_faults_total", "Injected faults", "kind=\"list\""));
    return sim_list(s, kind, &q, f, out);
}

/* Splits "/coll[/id[/action]]" (no more segments); 0 or -1. */
static int split_path(const char *p, char *coll, char *id, char *action) {
    coll[0] = id[0] = action[0] = '\0';
    if (*p != '/')
        return -1;
    char *parts[3] = {coll, id, action};
    int k = 0;
    p++;
    while (*p) {
        if (k == 3)
            return -1;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (!id_ok(p, n))
            return -1;
        memcpy(parts[k++], p, n);
        parts[k - 1][n] = '\0';
        p += n;
        if (*p == '/')
            p++;
        if (e && !*p)
            return -1; /* trailing slash */
    }
    return k ? 0 : -1;
}

static const struct {
    const char *coll, *object;
    int kind;
} COLLS[] = {{"shipments", "Shipment", SIM_KIND_SHIPMENT},
             {"trackers", "Tracker", SIM_KIND_TRACKER},
             {"addresses", "Address", SIM_KIND_ADDRESS},
             {"batches", "Batch", SIM_KIND_BATCH},
             {"pickups", "Pickup", SIM_KIND_PICKUP},
             {"scan_forms", "ScanForm", SIM_KIND_SCAN_FORM},
             {"refunds", "Refund", SIM_KIND_REFUND},
             {"insurances", "Insurance", SIM_KIND_INSURANCE},
             {"events", "Event", -1}};

/* Dispatches one /v2 request: the status and *out (malloc'd body), or
 * -(status) when the answer was sent already. */
static int route_v2(struct mg_connection *conn, sim_t *s, int is_get, int is_post, const char *p,
                    char **out) {
    char coll[128], id[128], action[128];
    int c = -1;
    if (split_path(p, coll, id, action) == 0)
        for (size_t i = 0; i < sizeof COLLS / sizeof *COLLS; i++)
            if (strcmp(coll, COLLS[i].coll) == 0)
                c = (int)i;
    if (c < 0 || !(is_get || is_post)) {
        *out =
            sim_error_json("NOT_FOUND", "The requested resource could not be found.", NULL, NULL);
        return 404;
    }
    const char *C = COLLS[c].coll;
    if (is_get) {
        if (!id[0]) {
            if (COLLS[c].kind < 0) {
                char ps[16], before[128] = "";
                int page =
                    ss_http_query_param(conn, "page_size", ps, sizeof ps) > 0 ? atoi(ps) : 20;
                ss_http_query_param(conn, "before_id", before, sizeof before);
                ss_counter_inc(ss_counter("sim_list_calls_total", "List calls by object",
                                          "object=\"events\""));
                return sim_events_list(s, page, before, out);
            }
            return list_objects(conn, s, COLLS[c].kind, out);
        }
        if (!action[0]) {
            if (COLLS[c].kind < 0)
                return sim_event_get(s, id, out);
            if (COLLS[c].kind == SIM_KIND_BATCH)
                return sim_batch_get(s, id, out);
            return sim_object_get(s, id, COLLS[c].object, out);
        }
        if (strcmp(C, "addresses") == 0 && strcmp(action, "verify") == 0)
            return sim_address_verify(s, id, out);
        if (strcmp(C, "shipments") == 0 && strcmp(action, "label") == 0) {
            char ff[16] = "";
            ss_http_query_param(conn, "file_format", ff, sizeof ff);
            return sim_shipment_label(s, id, ff[0] ? ff : NULL, out);
        }
        *out =
            sim_error_json("NOT_FOUND", "The requested resource could not be found.", NULL, NULL);
        return 404;
    }
    /* POST: every operation reads a JSON object (the clients send {} when
     * there are no parameters; read_json takes an empty body as {}). */
    json_object *req = NULL;
    char *eb = NULL;
    int es = 0;
    if (read_json(conn, &req, &eb, &es) != 0) {
        if (!eb)
            return -ss_http_send_json(conn, 500, "{}", 2, NULL);
        int r = ss_http_send_json(conn, es, eb, strlen(eb), NULL);
        free(eb);
        return -(r > 0 ? r : es);
    }
    int st;
    if (!id[0]) {
        if (strcmp(C, "shipments") == 0)
            st = sim_shipment_create(s, req, out);
        else if (strcmp(C, "trackers") == 0)
            st = sim_tracker_create(s, req, out);
        else if (strcmp(C, "addresses") == 0)
            st = sim_address_create(s, req, 0, out);
        else if (strcmp(C, "batches") == 0)
            st = sim_batch_create(s, req, out);
        else if (strcmp(C, "pickups") == 0)
            st = sim_pickup_create(s, req, out);
        else if (strcmp(C, "scan_forms") == 0)
            st = sim_scan_form_create(s, req, out);
        else if (strcmp(C, "refunds") == 0)
            st = sim_refund_create(s, req, out);
        else if (strcmp(C, "insurances") == 0)
            st = sim_insurance_create(s, req, out);
        else
            st = 0;
    } else if (strcmp(C, "addresses") == 0 && strcmp(id, "create_and_verify") == 0 && !action[0]) {
        st = sim_address_create(s, req, 1, out);
    } else if (strcmp(C, "shipments") == 0 && strcmp(action, "buy") == 0) {
        st = sim_shipment_buy(s, id, req, out);
    } else if (strcmp(C, "shipments") == 0 && strcmp(action, "rerate") == 0) {
        st = sim_shipment_rerate(s, id, out);
    } else if (strcmp(C, "shipments") == 0 && strcmp(action, "insure") == 0) {
        st = sim_shipment_insure(s, id, req, out);
    } else if (strcmp(C, "shipments") == 0 && strcmp(action, "refund") == 0) {
        st = sim_shipment_refund(s, id, out);
    } else if (strcmp(C, "batches") == 0 && action[0]) {
        st = sim_batch_action(s, id, action, req, out);
    } else if (strcmp(C, "pickups") == 0 && action[0]) {
        st = sim_pickup_action(s, id, action, req, out);
    } else {
        st = 0;
    }
    json_object_put(req);
    if (st == 0) {
        *out =
            sim_error_json("NOT_FOUND", "The requested resource could not be found.", NULL, NULL);
        st = 404;
    }
    return st;
}

static int handle_v2(struct mg_connection *conn, void *ud) {
    sim_t *s = ud;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *m = ri->request_method;
    const char *uri = ri->local_uri ? ri->local_uri : "";
    int is_post = strcmp(m, "POST") == 0, is_get = strcmp(m, "GET") == 0;

    int missing = 0;
    const char *mode = NULL;
    int authed = auth_ok(conn, &missing, &mode);
    sim_set_request_mode(mode ? mode : s->default_mode);
    if (!authed)
        return missing ? send_ep_error(conn, 401, "APIKEY.REQUIRED",
                                       "An API key is required: use HTTP Basic auth with your key "
                                       "as the user name.")
                       : send_ep_error(conn, 401, "APIKEY.INACTIVE",
                                       "This api key is no longer active. Please use a different "
                                       "api key or reactivate this key.");

    fault_t f;
    fault_pick(conn, &f);
    if (f.latency_ms > 0) {
        struct timespec ts = {f.latency_ms / 1000, (f.latency_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
    if (f.status) {
        char lab[32];
        snprintf(lab, sizeof lab, "kind=\"%d\"", f.status);
        ss_counter_inc(ss_counter("sim_faults_total", "Injected faults", lab));
        return send_fault_status(conn, f.status);
    }

    const char *p = uri + 3; /* after "/v2" */
    char *out = NULL;
    int st = route_v2(conn, s, is_get, is_post, p, &out);
    if (st < 0)
        return -st; /* answered already (unreadable body) */
    if (!out)
        return send_ep_error(conn, 500, "INTERNAL_SERVER_ERROR", "out of memory");
    if (f.drop)
        st = send_dropped(conn, st, out);
    else
        st = ss_http_send_json(conn, st, out, strlen(out), NULL);
    free(out);
    return st;
}

static int handle_faults(struct mg_connection *conn, void *ud) {
    (void)ud;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (strcmp(ri->request_method, "POST") != 0)
        return ss_http_send_error(conn, 405, "method_not_allowed",
                                  "POST {\"queue\":[...]} or {\"clear\":true}");
    json_object *req = NULL;
    char *eb = NULL;
    int es = 0;
    if (read_json(conn, &req, &eb, &es) != 0) {
        free(eb);
        return ss_http_send_error(conn, 400, "bad_request", "body must be a JSON object");
    }
    json_object *q = NULL, *clear = NULL, *v = NULL;
    int bad = 0;
    pthread_mutex_lock(&g_fmu);
    static const struct {
        const char *key;
        long long *dest;
        long long max;
    } knobs[] = {{"rate_429", &cfg.fault_rate_429, 100},
                 {"rate_500", &cfg.fault_rate_500, 100},
                 {"rate_drop", &cfg.fault_rate_drop, 100},
                 {"retry_after", &cfg.fault_retry_after, 3600},
                 {"webhook_drop", &cfg.fault_webhook_drop, 100},
                 {"latency_ms", &cfg.fault_latency_ms, 600000}};
    for (size_t i = 0; i < sizeof knobs / sizeof *knobs; i++) {
        if (!json_object_object_get_ex(req, knobs[i].key, &v))
            continue;
        long long n = json_object_get_int64(v);
        if (!json_object_is_type(v, json_type_int) || n < 0 || n > knobs[i].max) {
            bad = 1;
            continue;
        }
        *knobs[i].dest = n;
    }
    __atomic_store_n(&g_sim.webhook_drop_pct, (int)cfg.fault_webhook_drop, __ATOMIC_RELAXED);
    if (json_object_object_get_ex(req, "list", &v)) {
        const char *m = json_object_get_string(v);
        json_object *cnt = NULL;
        long long c =
            json_object_object_get_ex(req, "list_count", &cnt) ? json_object_get_int64(cnt) : 1;
        if (m && strcmp(m, "unknown_type") == 0)
            g_list_fault = SIM_LIST_UNKNOWN_TYPE;
        else if (m && strcmp(m, "malformed") == 0)
            g_list_fault = SIM_LIST_MALFORMED;
        else if (m && strcmp(m, "repeat") == 0)
            g_list_fault = SIM_LIST_REPEAT;
        else if (m && strcmp(m, "none") == 0)
            g_list_fault = SIM_LIST_OK;
        else
            bad = 1;
        g_list_fault_left = c == 0 ? 1 : c;
    }
    if (json_object_object_get_ex(req, "clear", &clear) && json_object_get_boolean(clear)) {
        while (g_flen > 0) {
            free(g_fqueue[g_fhead]);
            g_fhead = (g_fhead + 1) % FAULT_QUEUE_MAX;
            g_flen--;
        }
    }
    if (json_object_object_get_ex(req, "queue", &q) && json_object_is_type(q, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(q) && g_flen < FAULT_QUEUE_MAX; i++) {
            json_object *e = json_object_array_get_idx(q, i);
            fault_t f;
            memset(&f, 0, sizeof f);
            if (!json_object_is_type(e, json_type_string) ||
                fault_parse(json_object_get_string(e), &f) != 0) {
                bad = 1;
                continue;
            }
            g_fqueue[(g_fhead + g_flen) % FAULT_QUEUE_MAX] = strdup(json_object_get_string(e));
            g_flen++;
        }
    }
    size_t n = g_flen;
    pthread_mutex_unlock(&g_fmu);
    json_object_put(req);
    if (bad)
        return ss_http_send_error(
            conn, 400, "bad_fault",
            "faults are 429|500|502|503|504|drop|latency=MS, comma-separated; rates 0..100; "
            "list unknown_type|malformed|repeat|none");
    char body[64];
    int len = snprintf(body, sizeof body, "{\"queued\":%zu}", n);
    return ss_http_send_json(conn, 200, body, (size_t)len, NULL);
}

static int handle_preload(struct mg_connection *conn, void *ud) {
    sim_t *s = ud;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (strcmp(ri->request_method, "POST") != 0)
        return ss_http_send_error(conn, 405, "method_not_allowed",
                                  "POST {\"shipments\":N,\"days\":D}");
    json_object *req = NULL, *v = NULL;
    char *eb = NULL;
    int es = 0;
    if (read_json(conn, &req, &eb, &es) != 0) {
        free(eb);
        return ss_http_send_error(conn, 400, "bad_request", "body must be a JSON object");
    }
    long long n = -1, days = cfg.preload_days;
    if (json_object_object_get_ex(req, "shipments", &v) && json_object_is_type(v, json_type_int))
        n = json_object_get_int64(v);
    if (json_object_object_get_ex(req, "days", &v))
        days = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
    json_object_put(req);
    if (n < 0 || n > 10000000 || days < 1 || days > 3650)
        return ss_http_send_error(conn, 400, "bad_preload",
                                  "shipments: 0..10000000, days: 1..3650");
    /* All history ends an hour before the sim started: older than any live object. */
    sim_preload_set(s, (size_t)n, g_started_usec - 3600LL * 1000000, days * 86400LL * 1000000);
    char body[96];
    int len = snprintf(body, sizeof body, "{\"shipments\":%lld,\"days\":%lld}", n, days);
    return ss_http_send_json(conn, 200, body, (size_t)len, NULL);
}

/* "25", "25.5", "25.50" -> cents; -1 when not a non-negative amount. */
static int64_t parse_dollars(const char *v) {
    int64_t c = 0;
    const char *p = v;
    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        if (c > 100000000000LL)
            return -1;
        c = c * 10 + (*p - '0');
    }
    c *= 100;
    if (*p == '.') {
        p++;
        int k = 0;
        for (; isdigit((unsigned char)*p) && k < 2; p++, k++)
            c += (*p - '0') * (k == 0 ? 10 : 1);
        while (*p == '0')
            p++;
    }
    return *p ? -1 : c;
}

/* GET /sim/funds: the balance; POST {"balance":"25.00"} or {"unlimited":true}. */
static int handle_funds(struct mg_connection *conn, void *ud) {
    sim_t *s = ud;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (strcmp(ri->request_method, "POST") == 0) {
        json_object *req = NULL, *v = NULL;
        char *eb = NULL;
        int es = 0;
        if (read_json(conn, &req, &eb, &es) != 0) {
            free(eb);
            return ss_http_send_error(conn, 400, "bad_request", "body must be a JSON object");
        }
        int64_t c = -2;
        if (json_object_object_get_ex(req, "unlimited", &v) && json_object_get_boolean(v))
            c = -1;
        else if (json_object_object_get_ex(req, "balance", &v))
            c = parse_dollars(json_object_is_type(v, json_type_string)
                                  ? json_object_get_string(v)
                                  : json_object_to_json_string(v));
        int bad = c < -1 || (c == -1 && !json_object_is_type(v, json_type_boolean));
        json_object_put(req);
        if (bad)
            return ss_http_send_error(conn, 400, "bad_funds",
                                      "{\"balance\":\"25.00\"} (dollars) or {\"unlimited\":true}");
        sim_funds_set(s, c);
    } else if (strcmp(ri->request_method, "GET") != 0) {
        return ss_http_send_error(conn, 405, "method_not_allowed",
                                  "GET, or POST {\"balance\":\"25.00\"} | {\"unlimited\":true}");
    }
    char *body = sim_funds_json(s);
    if (!body)
        return ss_http_send_error(conn, 500, "internal", "out of memory");
    int st = ss_http_send_json(conn, 200, body, strlen(body), NULL);
    free(body);
    return st;
}

int main(int argc, char **argv) {
    int conf_rc = ss_conf_main(argc, argv, "easypost-sim", SUMMARY, OPTS, NOPTS);
    if (conf_rc >= 0)
        return conf_rc;
    char err[256];
    if (ss_log_init("easypost-sim", cfg.log_level, cfg.log_format, err, sizeof err) != 0) {
        fprintf(stderr, "easypost-sim: %s\n", err);
        return 2;
    }
    char *end = NULL;
    double scale = strtod(cfg.time_scale, &end);
    if (!end || *end || !isfinite(scale) || scale <= 0 || scale > 86400) {
        fprintf(stderr,
                "easypost-sim: SIM_TIME_SCALE=%s: expected real seconds per simulated day, "
                "a number > 0 and <= 86400\n",
                cfg.time_scale);
        return 2;
    }
    char why[128];
    if (cfg.webhook_url && ss_ep_url_check(cfg.webhook_url, why, sizeof why) != 0) {
        ss_log(SS_LOG_ERROR, "SIM_WEBHOOK_URL=%s: %s", cfg.webhook_url, why);
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ss_log(SS_LOG_ERROR, "libcurl initialisation failed");
        return 1;
    }
    ss_shutdown_install();

    sim_t *s = &g_sim;
    if (sim_init(s, (uint64_t)cfg.seed, (size_t)cfg.max_objects) != 0) {
        ss_log(SS_LOG_ERROR, "out of memory");
        return 1;
    }
    s->day_seconds = scale;
    s->default_mode = cfg.api_key ? sim_mode_for_key(cfg.api_key, strlen(cfg.api_key)) : "test";
    if (cfg.funds) {
        int64_t c = parse_dollars(cfg.funds);
        if (c < 0) {
            fprintf(stderr, "easypost-sim: SIM_FUNDS=%s: expected dollars, e.g. 25.00\n",
                    cfg.funds);
            return 2;
        }
        sim_funds_set(s, c);
    }
    s->webhook_url = cfg.webhook_url;
    s->webhook_max_attempts = (int)cfg.webhook_attempts;
    s->webhook_backoff_base_ms = (int)cfg.webhook_backoff_ms;
    s->webhook_backoff_max_ms = (int)cfg.webhook_backoff_max_ms;
    s->max_pending = (size_t)cfg.max_objects * 4;
    s->webhook_drop_pct = (int)cfg.fault_webhook_drop;
    g_started_usec = ss_time_now_usec();
    sim_preload_set(s, (size_t)cfg.preload_shipments, g_started_usec - 3600LL * 1000000,
                    cfg.preload_days * 86400LL * 1000000);
    if (cfg.webhook_secret) {
        s->webhook_key = ss_webhook_key_new(cfg.webhook_secret, err, sizeof err);
        if (!s->webhook_key) {
            ss_log(SS_LOG_ERROR, "EASYPOST_WEBHOOK_SECRET: %s", err);
            return 2;
        }
    } else if (cfg.webhook_url) {
        ss_log(SS_LOG_WARN,
               "SIM_WEBHOOK_URL set without EASYPOST_WEBHOOK_SECRET: webhooks go unsigned");
    }
    if (sim_webhooks_start(s, (int)cfg.webhook_threads) != 0) {
        ss_log(SS_LOG_ERROR, "cannot start webhook threads");
        return 1;
    }

    ss_http_opts_t ho = {
        .service = "easypost-sim", .listen = cfg.listen, .num_threads = (int)cfg.threads};
    ss_http_t *h = ss_http_start(&ho, err, sizeof err);
    if (!h) {
        ss_log(SS_LOG_ERROR, "LISTEN=%s: %s", cfg.listen, err);
        sim_webhooks_stop(s);
        return 2;
    }
    ss_http_route(h, "/v2", "/v2", handle_v2, s);
    ss_http_route(h, "/sim/faults$", "/sim/faults", handle_faults, NULL);
    ss_http_route(h, "/sim/preload$", "/sim/preload", handle_preload, s);
    ss_http_route(h, "/sim/funds$", "/sim/funds", handle_funds, s);
    char scale_s[32];
    snprintf(scale_s, sizeof scale_s, "%g", scale);
    ss_log_kv(SS_LOG_INFO, "easypost-sim ready", "listen", cfg.listen, "day_seconds", scale_s,
              "webhooks", cfg.webhook_url ? cfg.webhook_url : "off", "auth",
              cfg.api_key ? "key" : "any", NULL);

    while (!ss_shutdown_wait(1000)) {
    }
    ss_log(SS_LOG_INFO, "stopping");
    ss_http_stop(h);
    sim_webhooks_stop(s);
    ss_webhook_key_free(s->webhook_key);
    sim_destroy(s);
    ss_conf_free(OPTS, NOPTS);
    curl_global_cleanup();
    return 0;
}
