/* shipstream-gateway: EasyPost's API in front of EasyPost (/v2, /beta, /v1) and the
 * read API over PostgreSQL (/db).
 *
 * Every EasyPost answer is handed to Kafka without waiting (the producer's
 * queue absorbs broker outages; failures are counted and logged); the queue
 * is flushed on shutdown.  /db reads use one PostgreSQL connection per worker
 * thread and answer 503 quickly while PostgreSQL is down, while /v2 goes on. */
#include <ctype.h>
#include <stdatomic.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/shutdown.h"
#include "common/util.h"
#include "db/db.h"
#include "gateway.h"
#include "http/server.h"

gw_t g_gw;

static char *log_level, *log_format;

static const ss_conf_opt_t options[] = {
    {"LISTEN", SS_CONF_LISTEN, &g_gw.cfg.listen, "8000", 0, 0,
     "HTTP listen address (host:port or port)", 0},
    {"DATABASE_URL", SS_CONF_STRING, &g_gw.cfg.database_url, SS_DB_DEFAULT_URL, 0, 0,
     "PostgreSQL for /db and idempotency keys (postgresql+asyncpg:// accepted)", 1},
    {"KAFKA_BOOTSTRAP_SERVERS", SS_CONF_STRING, &g_gw.cfg.kafka_bootstrap,
     SS_KAFKA_DEFAULT_BOOTSTRAP, 0, 0, "Kafka brokers", 0},
    {"KAFKA_TOPIC_PREFIX", SS_CONF_STRING, &g_gw.cfg.topic_prefix, SS_TOPIC_DEFAULT_PREFIX, 0, 0,
     "prefix of the topic names", 0},
    {"EASYPOST_API_KEY", SS_CONF_STRING, &g_gw.cfg.easypost_api_key, NULL, 0, 0,
     "EasyPost API key; unset: /v2, /beta and /v1 answer 503", 1},
    {"EASYPOST_API_BASE", SS_CONF_STRING, &g_gw.cfg.easypost_api_base, SS_EP_DEFAULT_API_BASE, 0, 0,
     "EasyPost API base URL", 0},
    {"EASYPOST_TIMEOUT_MS", SS_CONF_INT, &g_gw.cfg.easypost_timeout_ms, "30000", 100, 600000,
     "total timeout of one EasyPost call", 0},
    {"GATEWAY_API_KEYS", SS_CONF_STRING, &g_gw.cfg.api_keys_csv, NULL, 0, 0,
     "comma-separated API keys for /v2 and /db (required unless GATEWAY_AUTH=off)", 1},
    {"GATEWAY_AUTH", SS_CONF_BOOL, &g_gw.cfg.auth_on, "on", 0, 0,
     "off: serve /v2 and /db without keys (local experiments only)", 0},
    {"GATEWAY_THREADS", SS_CONF_INT, &g_gw.cfg.threads, "1536", 1, 16384,
     "HTTP worker threads: one per open client connection, idle and slow ones included "
     "(~32 KB each); PostgreSQL and EasyPost connections are pooled apart",
     0},
    {"GATEWAY_EASYPOST_CONNECTIONS", SS_CONF_INT, &g_gw.cfg.easypost_connections, "32", 1, 1024,
     "concurrent EasyPost calls (pooled, kept-alive connections); more wait for a free one", 0},
    {"GATEWAY_DB_POOL", SS_CONF_INT, &g_gw.cfg.db_pool, "16", 1, 1000,
     "PostgreSQL connections shared by every HTTP thread (/db, idempotency keys)", 0},
    {"GATEWAY_DB_POOL_WAIT_MS", SS_CONF_INT, &g_gw.cfg.db_pool_wait_ms, "2000", 0, 60000,
     "how long a request waits for a free pooled connection before 503", 0},
    {"GATEWAY_REQUEST_TIMEOUT_MS", SS_CONF_INT, &g_gw.cfg.request_timeout_ms, "10000", 100, 600000,
     "deadline for the request head, and again for the body (a slow client gets 408)", 0},
    {"ADMIN_LISTEN", SS_CONF_LISTEN, &g_gw.cfg.admin_listen, NULL, 0, 0,
     "also serve /health, /ready and /metrics here, on threads of their own (probes never wait "
     "behind public traffic); unset: only on LISTEN",
     0},
    {"GATEWAY_MAX_BODY_BYTES", SS_CONF_INT, &g_gw.cfg.max_body, "1048576", 1024, 67108864,
     "largest request body accepted", 0},
    {"GATEWAY_STATEMENT_TIMEOUT_MS", SS_CONF_INT, &g_gw.cfg.statement_timeout_ms, "5000", 10,
     600000, "statement_timeout of /db queries", 0},
    {"GATEWAY_DB_CONNECT_TIMEOUT_S", SS_CONF_INT, &g_gw.cfg.db_connect_timeout_s, "2", 1, 60,
     "PostgreSQL connect timeout", 0},
    {"GATEWAY_IDEMPOTENCY_WAIT_MS", SS_CONF_INT, &g_gw.cfg.idempotency_wait_ms, "35000", 0, 600000,
     "how long a request waits for a concurrent buy with the same Idempotency-Key", 0},
    {"GATEWAY_BUY_LEASE_MARGIN_MS", SS_CONF_INT, &g_gw.cfg.buy_lease_margin_ms, "60000", 0, 3600000,
     "a keyed buy holds its key for EASYPOST_TIMEOUT_MS plus this long before another request "
     "may take it over (checking EasyPost first)",
     0},
    {"GATEWAY_KAFKA_LINGER_MS", SS_CONF_INT, &g_gw.cfg.linger_ms, "5", 0, 1000,
     "producer linger.ms (KAFKA_LINGER_MS overrides)", 0},
    {"GATEWAY_KAFKA_MESSAGE_TIMEOUT_MS", SS_CONF_INT, &g_gw.cfg.message_timeout_ms, "0", 0,
     2147483647,
     "how long an object may wait for Kafka before it is dropped (message.timeout.ms); 0 = "
     "never",
     0},
    {"GATEWAY_KAFKA_QUEUE_MAX_MESSAGES", SS_CONF_INT, &g_gw.cfg.queue_max_messages, "100000", 1,
     10000000, "objects waiting for Kafka at most (queue.buffering.max.messages)", 0},
    {"GATEWAY_KAFKA_QUEUE_MAX_KBYTES", SS_CONF_INT, &g_gw.cfg.queue_max_kbytes, "131072", 1,
     2147483647,
     "KiB of objects waiting for Kafka at most (queue.buffering.max.kbytes); size the memory "
     "limit for it",
     0},
    {"GATEWAY_SHUTDOWN_FLUSH_MS", SS_CONF_INT, &g_gw.cfg.shutdown_flush_ms, "20000", 0, 3600000,
     "how long a stopping gateway waits for Kafka to acknowledge what is queued", 0},
    {"GATEWAY_CHARTJS_PATH", SS_CONF_STRING, &g_gw.cfg.chartjs_path, GW_CHARTJS_DEFAULT_PATH, 0, 0,
     "Chart.js served to the dashboard as /dashboard/chart.js (Debian's libjs-chart.js)", 0},
    {"GATEWAY_MCP_ALLOW_PURCHASE", SS_CONF_BOOL, &g_gw.cfg.mcp_allow_purchase, "off", 0, 0,
     "on: /mcp lists the tools that spend money (buy_shipment)", 0},
    {"GATEWAY_MCP_ALLOWED_ORIGINS", SS_CONF_STRING, &g_gw.cfg.mcp_allowed_origins, NULL, 0, 0,
     "comma-separated origins (https://host[:port]) allowed on /mcp besides loopback ones", 0},
    {"LOG_LEVEL", SS_CONF_STRING, &log_level, "info", 0, 0, "debug, info, warn or error", 0},
    {"LOG_FORMAT", SS_CONF_STRING, &log_format, "json", 0, 0, "json or text", 0},
};
#define NOPTIONS (sizeof options / sizeof options[0])

/* Strict base64 (RFC 4648, padded) of src into out; the decoded length, or
 * -1 when src is not base64 or does not fit. */
static int b64_decode(const char *src, size_t n, unsigned char *out, size_t outsize) {
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > outsize)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        unsigned v = 0;
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            char ch = src[i + j];
            int d;
            if (ch >= 'A' && ch <= 'Z')
                d = ch - 'A';
            else if (ch >= 'a' && ch <= 'z')
                d = ch - 'a' + 26;
            else if (ch >= '0' && ch <= '9')
                d = ch - '0' + 52;
            else if (ch == '+')
                d = 62;
            else if (ch == '/')
                d = 63;
            else if (ch == '=' && i + 4 == n && j >= 2 && (j == 3 || src[i + 3] == '='))
                d = 0, pad++;
            else
                return -1;
            if (pad && ch != '=')
                return -1;
            v = v << 6 | (unsigned)d;
        }
        out[o++] = (unsigned char)(v >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(v >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)v;
    }
    return (int)o;
}

/* HTTP Basic with the key as user name (what EasyPost's clients may send;
 * the password is ignored), compared with every key in constant time. */
static int basic_ok(struct mg_connection *c) {
    const char *h = mg_get_header(c, "Authorization");
    if (!h || strncasecmp(h, "Basic ", 6) != 0)
        return 0;
    h += 6;
    while (*h == ' ')
        h++;
    size_t n = strlen(h);
    while (n && h[n - 1] == ' ')
        n--;
    unsigned char dec[768];
    int dl = n <= 1024 ? b64_decode(h, n, dec, sizeof dec) : -1;
    if (dl <= 0)
        return 0;
    const unsigned char *colon = memchr(dec, ':', (size_t)dl);
    size_t ul = colon ? (size_t)(colon - dec) : (size_t)dl;
    int ok = 0;
    for (size_t i = 0; i < g_gw.napi_keys; i++)
        ok |= ss_secure_equal(dec, ul, g_gw.api_keys[i], strlen(g_gw.api_keys[i]));
    OPENSSL_cleanse(dec, sizeof dec);
    return ok && ul > 0;
}

int gw_authorized(struct mg_connection *c, int *status) {
    if (g_gw.cfg.auth_off)
        return 1;
    if (ss_http_bearer_ok(c, (const char *const *)g_gw.api_keys, g_gw.napi_keys) || basic_ok(c))
        return 1;
    ss_counter_inc(ss_counter("gateway_auth_failures_total",
                              "Requests refused for a missing or wrong API key", NULL));
    *status = ss_http_send_error_h(c, 401, "unauthorized",
                                   "missing or invalid API key (Authorization: Bearer <key>, or "
                                   "HTTP Basic with the key as user name)",
                                   "WWW-Authenticate: Bearer, Basic realm=\"shipstream\"\r\n");
    return 0;
}

static ss_counter_t *publish_failures(void) {
    return ss_counter("gateway_publish_failures_total",
                      "EasyPost objects that could not be queued for Kafka", NULL);
}

/* Queues one checked object span as an envelope of type. */
static void publish_span(const char *type, ss_json_span_t object) {
    ss_envelope_in_t in = {
        .source = SS_SOURCE_GATEWAY,
        .type = type,
        .request_id = ss_log_request_id(),
        .object = object,
        .checked = 1,
    };
    ss_envelope_msg_t m;
    char err[256];
    if (ss_envelope_write(&m, &in, err, sizeof err) != SS_ENVELOPE_OK) {
        ss_counter_inc(publish_failures());
        SS_WARN("not published (%s): %s", type, err);
        return;
    }
    if (ss_kafka_producer_send(g_gw.producer, g_gw.topics[m.topic], m.key, m.keylen, m.value,
                               m.value_len, NULL, 0, NULL, err, sizeof err) != 0) {
        ss_counter_inc(publish_failures());
        ss_log_kv(SS_LOG_WARN, "kafka enqueue failed", "type", type, "object_id", m.env.object_id,
                  "error", err, NULL);
    } else {
        char labels[96];
        snprintf(labels, sizeof labels, "type=\"%s\"", type);
        ss_counter_inc(ss_counter("gateway_events_published_total",
                                  "EasyPost objects queued for Kafka", labels));
    }
    ss_envelope_msg_clear(&m);
}

/* Checks an answer's bytes once (the writer copies spans verbatim). */
static int answer_checked(const char *what, const char *body, size_t len) {
    if (!g_gw.producer) {
        ss_counter_inc(publish_failures());
        return 0;
    }
    const char *why = "no body";
    if (!body || ss_json_check(body, len, SS_ENVELOPE_SPAN_MAX_DEPTH, &why) != 0) {
        ss_counter_inc(publish_failures());
        SS_WARN("not published (%s): EasyPost's answer is not strict JSON: %s", what, why);
        return 0;
    }
    return 1;
}

void gw_publish(const char *type, const ss_ep_result_t *r) {
    if (!answer_checked(type, r->body, r->body_len))
        return;
    ss_json_span_t object = ss_json_root(r->body, r->body_len);
    enum { M_ID, M_ADDRESS, M__COUNT };
    static const char *const names[M__COUNT + 1] = {"id", "address", NULL};
    ss_json_span_t mem[M__COUNT];
    ss_json_pick(object, names, mem);
    if (!mem[M_ID].p && mem[M_ADDRESS].p && mem[M_ADDRESS].p[0] == '{')
        object = mem[M_ADDRESS]; /* create_and_verify: {"address":{...}} */
    publish_span(type, object);
}

/* The members capture reads of an object: "object" and "id", and the members
 * that may nest an object with a table of its own (a Shipment's or an
 * Insurance's "tracker", a Shipment's or a Batch's "scan_form"), read in the
 * same pass. */
enum { CM_OBJECT, CM_ID, CM_TRACKER, CM_SCAN_FORM, CM__COUNT };
static const char *const capture_names[CM__COUNT + 1] = {"object", "id", "tracker", "scan_form",
                                                         NULL};
static int capture_one(const char *verb, ss_json_span_t o);

/* Publishes o, whose "object" and "id" members are mem, when it is an
 * object with string "object" and "id" members; returns 1 then.  The type:
 * the object's name in snake case, '.', verb. */
static int capture_picked(const char *verb, ss_json_span_t o, const ss_json_span_t *mem) {
    if (o.len < 2 || o.p[0] != '{')
        return 0;
    char object[48], id[8];
    if (!mem[CM_OBJECT].p || !mem[CM_ID].p ||
        ss_json_string(mem[CM_OBJECT], object, sizeof object) <= 0)
        return 0;
    int idl = ss_json_string(mem[CM_ID], id, sizeof id);
    if (idl == -1 || idl == 0)
        return 0; /* not a string, or empty (-2: longer than id: fine) */
    char type[64];
    size_t n = 0;
    for (const char *p = object; *p && n + 2 < sizeof type; p++) {
        if (isupper((unsigned char)*p)) {
            if (n > 0)
                type[n++] = '_';
            type[n++] = (char)tolower((unsigned char)*p);
        } else {
            type[n++] = *p;
        }
    }
    type[n] = '\0';
    snprintf(type + n, sizeof type - n, ".%s", verb);
    publish_span(type, o);
    /* Nested objects the parent's mapping keeps only in its raw JSON are
     * published on their own, as seen inside their parent ("retrieved"): the
     * tracker a buy creates reaches `trackers` without waiting for its webhook. */
    for (int i = CM_TRACKER; i < CM__COUNT; i++)
        if (mem[i].p && mem[i].len > 1 && mem[i].p[0] == '{')
            capture_one("retrieved", mem[i]);
    return 1;
}

static int capture_one(const char *verb, ss_json_span_t o) {
    ss_json_span_t mem[CM__COUNT];
    ss_json_pick(o, capture_names, mem);
    return capture_picked(verb, o, mem);
}

/* Each element of a list: one pass over each (iteration and pick together). */
static void capture_array(const char *verb, ss_json_iter_t *at) {
    ss_json_span_t e, mem[CM__COUNT];
    while (ss_json_array_next_pick(at, capture_names, mem, &e))
        capture_picked(verb, e, mem);
}

/* A top-level member: a list of objects, or one. */
static void capture_member(const char *verb, ss_json_span_t v) {
    ss_json_iter_t at;
    if (ss_json_array_init(&at, v) == 0)
        capture_array(verb, &at);
    else
        capture_one(verb, v);
}

/* A page's members remembered from the one pass over it (a page has two). */
#define GW_CAPTURE_MEMBERS 32

void gw_capture(const char *verb, const char *body, size_t len) {
    if (!answer_checked(verb, body, len))
        return;
    ss_json_span_t root = ss_json_root(body, len), v, k;
    ss_json_iter_t it, at;
    if (ss_json_array_init(&at, root) == 0) { /* a list answer: [{...}, ...] */
        capture_array(verb, &at);
        return;
    }
    if (ss_json_iter_init(&it, root) != 0)
        return;
    /* One pass over the top level: its "object" and "id" (the last one wins,
     * as with ss_json_pick) and its members' values. */
    ss_json_span_t mem[CM__COUNT] = {{NULL, 0}}, vals[GW_CAPTURE_MEMBERS];
    size_t nv = 0, members = 0;
    while (ss_json_iter_next(&it, &k, &v)) {
        for (size_t i = 0; i < CM__COUNT; i++)
            if (ss_json_key_is(k, capture_names[i])) {
                mem[i] = v;
                break;
            }
        if (nv < GW_CAPTURE_MEMBERS)
            vals[nv++] = v;
        members++;
    }
    if (capture_picked(verb, root, mem))
        return;
    /* A wrapper ({"address":{...}}) or a page ({"shipments":[...],"has_more":…}). */
    if (members <= nv) {
        for (size_t i = 0; i < nv; i++)
            capture_member(verb, vals[i]);
        return;
    }
    ss_json_iter_init(&it, root); /* more members than remembered: walk them again */
    while (ss_json_iter_next(&it, &k, &v))
        capture_member(verb, v);
}

static int ready(void *ud, char *why, size_t n) {
    (void)ud;
    /* The public answer names the dependency, never the libpq message (it
     * names the host, user and database): that goes to the log. */
    static atomic_int pg_was_down;
    char err[256];
    int pg_ok = gw_db_ping(err, sizeof err) == 0;
    if (!pg_ok) {
        ss_log_kv(atomic_exchange(&pg_was_down, 1) ? SS_LOG_DEBUG : SS_LOG_WARN,
                  "readiness: postgresql unavailable", "error", err, NULL);
    } else if (atomic_exchange(&pg_was_down, 0)) {
        ss_log(SS_LOG_INFO, "readiness: postgresql available again");
    }
    int kafka_ok = g_gw.producer && ss_kafka_producer_connected(g_gw.producer);
    ss_gauge_set(ss_gauge("gateway_db_up", "1 when PostgreSQL answers", NULL), pg_ok);
    ss_gauge_set(ss_gauge("gateway_kafka_up", "1 when a Kafka broker is connected", NULL),
                 kafka_ok);
    if (pg_ok && kafka_ok)
        return 0;
    snprintf(why, n, "%s%s%s", pg_ok ? "" : "postgresql: unavailable",
             (!pg_ok && !kafka_ok) ? "; " : "", kafka_ok ? "" : "kafka: no broker connection");
    return -1;
}

static void thread_exit(void) {
    gw_db_thread_exit();
    ss_ep_thread_cleanup();
}

/* Every route the gateway registers, and the operations each serves (what
 * `--routes` prints, OpenAPI paths).  civetweb picks the first registered
 * pattern that matches: specific first. */
static const gw_op_t db_shipments_ops[] = {{"GET", "/db/shipments", NULL, NULL, GW_BUY_NONE},
                                           {"GET", "/db/shipments/{id}", NULL, NULL, GW_BUY_NONE},
                                           {NULL, NULL, NULL, NULL, GW_BUY_NONE}};
static const gw_op_t db_addresses_ops[] = {{"GET", "/db/addresses", NULL, NULL, GW_BUY_NONE},
                                           {NULL, NULL, NULL, NULL, GW_BUY_NONE}};
static const gw_op_t db_dashboard_ops[] = {
    {"GET", "/db/analytics/dashboard", NULL, NULL, GW_BUY_NONE},
    {NULL, NULL, NULL, NULL, GW_BUY_NONE}};
static const gw_op_t db_pipeline_ops[] = {{"GET", "/db/pipeline", NULL, NULL, GW_BUY_NONE},
                                          {NULL, NULL, NULL, NULL, GW_BUY_NONE}};
static const gw_op_t dashboard_ops[] = {{"GET", "/dashboard", NULL, NULL, GW_BUY_NONE},
                                        {"GET", "/dashboard/{file}", NULL, NULL, GW_BUY_NONE},
                                        {NULL, NULL, NULL, NULL, GW_BUY_NONE}};
static const gw_op_t mcp_ops[] = {{"POST", "/mcp", NULL, NULL, GW_BUY_NONE},
                                  {"GET", "/mcp", NULL, NULL, GW_BUY_NONE}, /* 405 */
                                  {NULL, NULL, NULL, NULL, GW_BUY_NONE}};
static const gw_op_t openapi_ops[] = {{"GET", "/openapi.json", NULL, NULL, GW_BUY_NONE},
                                      {NULL, NULL, NULL, NULL, GW_BUY_NONE}};
static const gw_op_t root_ops[] = {{"GET", "/", NULL, NULL, GW_BUY_NONE},
                                   {NULL, NULL, NULL, NULL, GW_BUY_NONE}};

static const struct {
    const char *pattern, *label;
    ss_http_handler_fn fn;
    const gw_op_t *ops; /* NULL: an alias or pass-through (/v1, /beta), not listed */
} routes[] = {
    {"/v2", "/v2", gw_handle_easypost, gw_ep_ops},
    {"/v1", "/v1", gw_handle_easypost, NULL},
    {"/beta", "/beta", gw_handle_easypost, NULL},
    {"/db/shipments", "/db/shipments", gw_handle_db_shipments, db_shipments_ops},
    {"/db/addresses", "/db/addresses", gw_handle_db_addresses, db_addresses_ops},
    {"/db/analytics/dashboard$", "/db/analytics/dashboard", gw_handle_db_dashboard,
     db_dashboard_ops},
    {"/db/pipeline$", "/db/pipeline", gw_handle_db_pipeline, db_pipeline_ops},
    {"/dashboard", "/dashboard", gw_handle_dashboard, dashboard_ops},
    {"/mcp$", "/mcp", gw_handle_mcp, mcp_ops},
    {"/openapi.json$", "/openapi.json", gw_handle_openapi, openapi_ops},
    {"/$", "/", gw_handle_root, root_ops},
};
#define NROUTES (sizeof routes / sizeof routes[0])

static void print_routes(FILE *f) {
    for (size_t i = 0; i < NROUTES; i++)
        for (const gw_op_t *op = routes[i].ops; op && op->method; op++)
            fprintf(f, "%s %s\n", op->method, op->path);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--routes") == 0) {
        print_routes(stdout);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    int conf_rc = ss_conf_main(
        argc, argv, "shipstream-gateway",
        "EasyPost's API in front of EasyPost (/v2, /beta, /v1 an alias of /v2: every call\n"
        "forwarded, every object answered captured) and the read API over PostgreSQL (/db).\n"
        "Keys: Authorization: Bearer <key>, or HTTP Basic with the key as user name.\n"
        "--routes prints every route served, one \"METHOD PATH\" a line (OpenAPI form); also\n"
        "every other path under /v2 and /beta (forwarded), GET /health, /ready, /metrics.",
        options, NOPTIONS);
    if (conf_rc >= 0)
        return conf_rc;
    char err[512];
    if (ss_log_init("gateway", log_level, log_format, err, sizeof err) != 0) {
        fprintf(stderr, "shipstream-gateway: configuration error: %s\n", err);
        return 2;
    }
    char dburl[2048];
    if (ss_db_url_normalize(g_gw.cfg.database_url, dburl, sizeof dburl, err, sizeof err) != 0) {
        ss_log_kv(SS_LOG_ERROR, "configuration error", "variable", "DATABASE_URL", "error", err,
                  NULL);
        return 2;
    }
    g_gw.cfg.auth_off = !g_gw.cfg.auth_on;
    g_gw.api_keys = ss_http_split_keys(g_gw.cfg.api_keys_csv, &g_gw.napi_keys);
    if (!g_gw.cfg.auth_off && g_gw.napi_keys == 0) {
        ss_log_kv(SS_LOG_ERROR,
                  "configuration error: GATEWAY_API_KEYS is not set: set it to a comma-separated "
                  "list of bearer keys, or GATEWAY_AUTH=off",
                  "variable", "GATEWAY_API_KEYS", NULL);
        return 2;
    }
    ss_shutdown_install();

    if (g_gw.cfg.easypost_api_key) {
        ss_ep_config_t ec = {.api_base = g_gw.cfg.easypost_api_base,
                             .api_key = g_gw.cfg.easypost_api_key,
                             .timeout_ms = g_gw.cfg.easypost_timeout_ms,
                             .max_connections = (int)g_gw.cfg.easypost_connections};
        g_gw.ep = ss_ep_client_new(&ec, err, sizeof err);
        if (!g_gw.ep) {
            ss_log_kv(SS_LOG_ERROR, "configuration error", "variable", "EASYPOST_API_BASE", "error",
                      err, NULL);
            return 2;
        }
    } else {
        SS_WARN("EASYPOST_API_KEY is not set: /v2, /beta and /v1 answer 503");
    }

    for (int t = 0; t < SS_TOPIC__COUNT; t++)
        ss_topic_name(g_gw.cfg.topic_prefix, (ss_topic_t)t, g_gw.topics[t], sizeof g_gw.topics[t]);
    char linger[24], msg_timeout[24], qmsgs[24], qkbytes[24];
    snprintf(linger, sizeof linger, "%lld", g_gw.cfg.linger_ms);
    snprintf(msg_timeout, sizeof msg_timeout, "%lld", g_gw.cfg.message_timeout_ms);
    snprintf(qmsgs, sizeof qmsgs, "%lld", g_gw.cfg.queue_max_messages);
    snprintf(qkbytes, sizeof qkbytes, "%lld", g_gw.cfg.queue_max_kbytes);
    /* No expiry by default: an object EasyPost answered waits for Kafka as
     * long as the queue bound allows; overflow is counted and logged with
     * its id (handoff.c), never silent. */
    const char *overrides[] = {"linger.ms",
                               linger,
                               "message.timeout.ms",
                               msg_timeout,
                               "queue.buffering.max.messages",
                               qmsgs,
                               "queue.buffering.max.kbytes",
                               qkbytes,
                               NULL};
    gw_handoff_init();
    (void)publish_failures(); /* exported from the start: the alert rules read it */
    if (gw_db_pool_init((int)g_gw.cfg.db_pool) != 0) {
        ss_log(SS_LOG_ERROR, "out of memory");
        return 1;
    }
    ss_kafka_producer_opts_t po = {.bootstrap = g_gw.cfg.kafka_bootstrap,
                                   .client_id = "shipstream-gateway",
                                   .overrides = overrides,
                                   .queue_full_wait_ms = -1,
                                   .on_report = gw_handoff_report};
    g_gw.producer = ss_kafka_producer_new(&po, err, sizeof err);
    if (!g_gw.producer) {
        ss_log_kv(SS_LOG_ERROR, "configuration error: Kafka producer", "error", err, NULL);
        return 2;
    }

    ss_http_opts_t ho = {.service = "gateway",
                         .listen = g_gw.cfg.listen,
                         .num_threads = (int)g_gw.cfg.threads,
                         .request_timeout_ms = (int)g_gw.cfg.request_timeout_ms,
                         .body_timeout_ms = (int)g_gw.cfg.request_timeout_ms,
                         .admin_listen = g_gw.cfg.admin_listen,
                         .ready = ready,
                         .thread_exit = thread_exit,
                         .hold_until_serve = 1};
    ss_http_t *http = ss_http_start(&ho, err, sizeof err);
    if (!http) {
        SS_ERROR("%s", err);
        ss_kafka_producer_close(g_gw.producer, 1000);
        return 1;
    }
    for (size_t i = 0; i < NROUTES; i++)
        ss_http_route(http, routes[i].pattern, routes[i].label, routes[i].fn, NULL);
    ss_http_serve(http);
    ss_log_kv(SS_LOG_INFO, "gateway started", "listen", g_gw.cfg.listen, "easypost",
              g_gw.ep ? g_gw.cfg.easypost_api_base : "not configured", "auth",
              g_gw.cfg.auth_off ? "off" : "bearer", NULL);

    while (!ss_shutdown_wait(1000))
        gw_handoff_tick();
    SS_INFO("stopping: closing HTTP, then flushing the Kafka queue");
    ss_http_stop(http);
    gw_handoff_tick();
    int waiting = ss_kafka_producer_outq_len(g_gw.producer);
    ss_log(SS_LOG_INFO, "flushing %d object(s) to Kafka for up to %lld ms", waiting,
           g_gw.cfg.shutdown_flush_ms);
    int left = ss_kafka_producer_close(g_gw.producer, (int)g_gw.cfg.shutdown_flush_ms);
    g_gw.producer = NULL;
    if (left > 0)
        SS_ERROR("%d object(s) not delivered to Kafka before exit (each logged above with its "
                 "id, reason shutdown; the reconciler's window repairs them)",
                 left);
    ss_ep_client_free(g_gw.ep);
    ss_ep_thread_cleanup();
    gw_db_reset();
    free(g_gw.api_keys);
    ss_conf_free(options, NOPTIONS);
    SS_INFO("stopped");
    return 0;
}
