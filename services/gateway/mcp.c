/* POST /mcp: the Model Context Protocol over Streamable HTTP, for AI
 * assistants (Claude Desktop, Claude Code, IDE agents).
 *
 * Protocol 2025-11-25, negotiated down to 2025-06-18 or 2025-03-26 when the
 * client asks for one of those.  One JSON-RPC 2.0 message per POST, answered
 * with Content-Type: application/json (never an SSE stream: no tool needs to
 * send anything before its answer); GET and DELETE /mcp answer 405.
 *
 * In order, every request:
 *   - Origin: absent (not a browser), a loopback origin (http(s)://localhost,
 *     127.0.0.1 or [::1], any port) or one of GATEWAY_MCP_ALLOWED_ORIGINS;
 *     anything else 403 (DNS rebinding: a web page must not drive the tools);
 *   - the gateway's API key (Bearer), as /v1 and /db: 401;
 *   - POST, Content-Type application/json, an Accept that takes JSON;
 *   - the body, bounded by GATEWAY_MAX_BODY_BYTES (413) before it is parsed
 *     (json-c, strict, depth 32): -32700 for malformed JSON, -32600 for a
 *     batch array (batching left the protocol in 2025-06-18) or anything
 *     that is not a JSON-RPC 2.0 message;
 *   - MCP-Session-Id (after initialize): missing 400, unknown or expired 404;
 *     MCP-Protocol-Version, when sent, must be the session's version (400).
 *
 * Sessions are stateless: the id is the negotiated version, the time it was
 * issued and a nonce, signed with HMAC-SHA256 under a key derived from
 * GATEWAY_API_KEYS (random when the gateway runs without keys), so every
 * gateway replica with the same keys accepts every other's sessions and
 * nothing is kept per session.  A session lasts GW_MCP_SESSION_TTL_S; the
 * client then gets 404 and initializes again, as the protocol says.  A
 * session id is not a credential: every request carries its API key. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "gateway.h"
#include "http/server.h"
#include "mcp.h"

#define GW_MCP_SESSION_TTL_S (24 * 3600)
#define GW_MCP_MAX_DEPTH     32

/* JSON-RPC and MCP error codes. */
#define RPC_PARSE_ERROR       (-32700)
#define RPC_INVALID_REQUEST   (-32600)
#define RPC_METHOD_NOT_FOUND  (-32601)
#define RPC_INVALID_PARAMS    (-32602)
#define RPC_INTERNAL_ERROR    (-32603)
#define RPC_SESSION_NOT_FOUND (-32001) /* what the reference SDKs send with 404 */

/* Newest first: an unknown version is answered with the first. */
static const char *const versions[] = {"2025-11-25", "2025-06-18", "2025-03-26"};
#define NVERSIONS ((int)(sizeof versions / sizeof versions[0]))

static const char instructions[] =
    "shipstream: EasyPost shipping with a synced PostgreSQL copy of the history. "
    "verify_address, quote_shipment and track call EasyPost (quote_shipment creates a shipment "
    "and returns its rates, the cheapest and the fastest marked). get_shipment, "
    "search_shipments and shipping_analytics read the synced copy: fast, but a shipment "
    "created a moment ago may take a few seconds to appear. Buying is only offered when the "
    "operator enabled it (GATEWAY_MCP_ALLOW_PURCHASE); it costs money: confirm with the user "
    "first. Money amounts are decimal strings.";

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static unsigned char session_key[32];
static char **allowed_origins;
static size_t nallowed_origins;

static void mcp_init(void) {
    const char *csv = g_gw.cfg.api_keys_csv;
    if (csv && *csv) {
        /* Replicas with the same keys derive the same session key. */
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned int n = 0;
        if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
            !EVP_DigestUpdate(ctx, "shipstream mcp session key\n", 27) ||
            !EVP_DigestUpdate(ctx, csv, strlen(csv)) || !EVP_DigestFinal_ex(ctx, session_key, &n))
            ss_random_bytes(session_key, sizeof session_key);
        EVP_MD_CTX_free(ctx);
    } else {
        ss_random_bytes(session_key, sizeof session_key);
    }
    allowed_origins = ss_http_split_keys(g_gw.cfg.mcp_allowed_origins, &nallowed_origins);
    gw_mcp_tools_init();
}

/* ---- sessions: hex(version index, issued at, nonce) + hex(HMAC[0..16)) ---- */

#define SESSION_PAYLOAD 17 /* 1 + 8 + 8 */
#define SESSION_MAC     16
#define SESSION_HEX     (2 * (SESSION_PAYLOAD + SESSION_MAC))

static void session_mac(const unsigned char *payload, unsigned char *mac) {
    unsigned char full[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), session_key, (int)sizeof session_key, payload, SESSION_PAYLOAD, full, &len);
    memcpy(mac, full, SESSION_MAC);
}

static void session_new(int version, char *out /* SESSION_HEX + 1 */) {
    unsigned char b[SESSION_PAYLOAD + SESSION_MAC];
    uint64_t now = (uint64_t)time(NULL);
    b[0] = (unsigned char)version;
    for (int i = 0; i < 8; i++)
        b[1 + i] = (unsigned char)(now >> (56 - 8 * i));
    ss_random_bytes(b + 9, 8);
    session_mac(b, b + SESSION_PAYLOAD);
    ss_hex_encode(b, sizeof b, out);
}

/* The session's version index, or -1 when id is not a live session of ours. */
static int session_check(const char *id) {
    if (strlen(id) != SESSION_HEX)
        return -1;
    unsigned char b[SESSION_PAYLOAD + SESSION_MAC], mac[SESSION_MAC];
    for (size_t i = 0; i < sizeof b; i++) {
        int hi = ss_hex_value((unsigned char)id[2 * i]),
            lo = ss_hex_value((unsigned char)id[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        b[i] = (unsigned char)(hi << 4 | lo);
    }
    session_mac(b, mac);
    if (!ss_secure_equal(mac, SESSION_MAC, b + SESSION_PAYLOAD, SESSION_MAC))
        return -1;
    uint64_t issued = 0;
    for (int i = 0; i < 8; i++)
        issued = issued << 8 | b[1 + i];
    uint64_t now = (uint64_t)time(NULL);
    if (b[0] >= NVERSIONS || issued > now + 300 || now - issued > GW_MCP_SESSION_TTL_S)
        return -1;
    return b[0];
}

/* ---- Origin ---- */

static int loopback_host(const char *h, size_t n) {
    return (n == 9 && strncasecmp(h, "localhost", 9) == 0) ||
           (n == 9 && memcmp(h, "127.0.0.1", 9) == 0) || (n == 5 && memcmp(h, "[::1]", 5) == 0);
}

static int origin_allowed(const char *origin) {
    if (!origin)
        return 1; /* not a browser */
    for (size_t i = 0; i < nallowed_origins; i++)
        if (strcasecmp(origin, allowed_origins[i]) == 0)
            return 1;
    const char *h;
    if (strncasecmp(origin, "http://", 7) == 0)
        h = origin + 7;
    else if (strncasecmp(origin, "https://", 8) == 0)
        h = origin + 8;
    else
        return 0; /* "null", other schemes */
    size_t n = h[0] == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":/");
    if (n > strlen(h) || !loopback_host(h, n))
        return 0;
    const char *p = h + n;
    if (*p == ':') { /* a port, and nothing else */
        p++;
        size_t d = strspn(p, "0123456789");
        if (d == 0 || d > 5 || p[d] != '\0')
            return 0;
        return 1;
    }
    return *p == '\0';
}

/* ---- answers ---- */

static void count(const char *outcome) {
    char labels[64];
    snprintf(labels, sizeof labels, "outcome=\"%s\"", outcome);
    ss_counter_inc(
        ss_counter("gateway_mcp_requests_total", "POST /mcp messages by outcome", labels));
}

static int send_body(struct mg_connection *c, int status, ss_buf_t *b, const char *headers) {
    if (!b->data)
        return ss_http_send_error(c, 500, "internal", "out of memory");
    return ss_http_send_json(c, status, b->data, b->len, headers);
}

static void append_id(ss_buf_t *b, json_object *id) {
    if (id)
        ss_buf_appendf(b, "%s", json_object_to_json_string_ext(id, JSON_C_TO_STRING_PLAIN));
    else
        ss_buf_append(b, "null", 4);
}

static int send_rpc_error(struct mg_connection *c, int status, json_object *id, int code,
                          const char *message, const char *outcome) {
    ss_buf_t b = {0};
    ss_buf_appendf(&b, "{\"jsonrpc\":\"2.0\",\"id\":");
    append_id(&b, id);
    ss_buf_appendf(&b, ",\"error\":{\"code\":%d,\"message\":", code);
    ss_buf_append_json_str(&b, message);
    ss_buf_append(&b, "}}", 2);
    count(outcome);
    int st = send_body(c, status, &b, NULL);
    ss_buf_free(&b);
    return st;
}

/* result: one JSON value (text). */
static int send_rpc_result(struct mg_connection *c, json_object *id, const char *result, size_t len,
                           const char *headers) {
    ss_buf_t b = {0};
    ss_buf_reserve(&b, len + 64);
    ss_buf_appendf(&b, "{\"jsonrpc\":\"2.0\",\"id\":");
    append_id(&b, id);
    ss_buf_append(&b, ",\"result\":", 10);
    ss_buf_append(&b, result, len);
    ss_buf_append(&b, "}", 1);
    count("ok");
    int st = send_body(c, 200, &b, headers);
    ss_buf_free(&b);
    return st;
}

/* ---- methods ---- */

static int do_initialize(struct mg_connection *c, json_object *id, json_object *params) {
    json_object *v;
    if (!params || !json_object_is_type(params, json_type_object) ||
        !json_object_object_get_ex(params, "protocolVersion", &v) ||
        !json_object_is_type(v, json_type_string))
        return send_rpc_error(c, 200, id, RPC_INVALID_PARAMS,
                              "initialize needs params.protocolVersion (a string)",
                              "invalid_params");
    int version = 0; /* the client's when we speak it, else our newest */
    for (int i = 0; i < NVERSIONS; i++)
        if (strcmp(json_object_get_string(v), versions[i]) == 0)
            version = i;
    char sid[SESSION_HEX + 1], headers[SESSION_HEX + 32];
    session_new(version, sid);
    snprintf(headers, sizeof headers, "Mcp-Session-Id: %s\r\n", sid);
    ss_buf_t b = {0};
    ss_buf_appendf(
        &b,
        "{\"protocolVersion\":\"%s\",\"capabilities\":{\"tools\":{\"listChanged\":false}},"
        "\"serverInfo\":{\"name\":\"shipstream-gateway\",\"title\":\"shipstream\","
        "\"version\":\"%s\"},\"instructions\":",
        versions[version], SS_VERSION);
    ss_buf_append_json_str(&b, instructions);
    ss_buf_append(&b, "}", 1);
    int st = b.data ? send_rpc_result(c, id, b.data, b.len, headers)
                    : ss_http_send_error(c, 500, "internal", "out of memory");
    ss_buf_free(&b);
    return st;
}

static int do_tools_list(struct mg_connection *c, json_object *id, json_object *params) {
    json_object *cur = NULL;
    if (params && !json_object_is_type(params, json_type_object))
        return send_rpc_error(c, 200, id, RPC_INVALID_PARAMS, "params must be an object",
                              "invalid_params");
    /* Every tool fits one page: the only cursor is none at all. */
    if (params && json_object_object_get_ex(params, "cursor", &cur) && cur &&
        !json_object_is_type(cur, json_type_null))
        return send_rpc_error(c, 200, id, RPC_INVALID_PARAMS,
                              "unknown cursor: tools/list has a single page (no nextCursor)",
                              "invalid_params");
    ss_buf_t b = {0};
    ss_buf_append(&b, "{\"tools\":[", 10);
    for (size_t i = 0; i < gw_mcp_tools_count(); i++) {
        if (i)
            ss_buf_append(&b, ",", 1);
        ss_buf_appendf(&b, "%s", gw_mcp_tool_json(i));
    }
    ss_buf_append(&b, "]}", 2);
    int st = b.data ? send_rpc_result(c, id, b.data, b.len, NULL)
                    : ss_http_send_error(c, 500, "internal", "out of memory");
    ss_buf_free(&b);
    return st;
}

static int do_tools_call(struct mg_connection *c, json_object *id, json_object *params) {
    json_object *name = NULL, *args = NULL;
    if (!params || !json_object_is_type(params, json_type_object) ||
        !json_object_object_get_ex(params, "name", &name) ||
        !json_object_is_type(name, json_type_string))
        return send_rpc_error(c, 200, id, RPC_INVALID_PARAMS,
                              "tools/call needs params.name (a string)", "invalid_params");
    if (json_object_object_get_ex(params, "arguments", &args) && args &&
        !json_object_is_type(args, json_type_object))
        return send_rpc_error(c, 200, id, RPC_INVALID_PARAMS, "params.arguments must be an object",
                              "invalid_params");
    ss_buf_t b = {0};
    int rc = gw_mcp_tool_call(json_object_get_string(name), args, &b);
    int st;
    if (rc == -1) {
        char msg[200];
        snprintf(msg, sizeof msg, "Unknown tool: %.120s (tools/list names the tools)",
                 json_object_get_string(name));
        st = send_rpc_error(c, 200, id, RPC_INVALID_PARAMS, msg, "unknown_tool");
    } else if (rc != 0 || !b.data) {
        st = send_rpc_error(c, 200, id, RPC_INTERNAL_ERROR, "out of memory", "internal");
    } else {
        st = send_rpc_result(c, id, b.data, b.len, NULL);
    }
    ss_buf_free(&b);
    return st;
}

/* ---- the endpoint ---- */

static int header_has(const char *h, const char *what) {
    return h && strcasestr(h, what) != NULL;
}

static int handle(struct mg_connection *c, json_object *msg) {
    if (json_object_is_type(msg, json_type_array))
        return send_rpc_error(c, 400, NULL, RPC_INVALID_REQUEST,
                              "batch requests (JSON arrays) are not supported: MCP removed "
                              "JSON-RPC batching in 2025-06-18; send one message per POST",
                              "batch");
    json_object *jv = NULL, *method = NULL, *id = NULL, *params = NULL;
    if (!json_object_is_type(msg, json_type_object) ||
        !json_object_object_get_ex(msg, "jsonrpc", &jv) ||
        !json_object_is_type(jv, json_type_string) || strcmp(json_object_get_string(jv), "2.0"))
        return send_rpc_error(c, 400, NULL, RPC_INVALID_REQUEST,
                              "not a JSON-RPC 2.0 message (an object with \"jsonrpc\":\"2.0\")",
                              "invalid_request");
    int has_id = json_object_object_get_ex(msg, "id", &id);
    int has_method = json_object_object_get_ex(msg, "method", &method);
    json_object_object_get_ex(msg, "params", &params);
    if (has_id && !json_object_is_type(id, json_type_string) &&
        !json_object_is_type(id, json_type_int))
        return send_rpc_error(c, 400, NULL, RPC_INVALID_REQUEST,
                              "the id must be a string or an integer", "invalid_request");
    if (has_method && !json_object_is_type(method, json_type_string))
        return send_rpc_error(c, 400, has_id ? id : NULL, RPC_INVALID_REQUEST,
                              "the method must be a string", "invalid_request");
    if (!has_method) {
        if (has_id && (json_object_object_get_ex(msg, "result", NULL) ||
                       json_object_object_get_ex(msg, "error", NULL))) {
            count("accepted"); /* a response to a request we never send */
            mg_printf(c, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
            return 202;
        }
        return send_rpc_error(c, 400, has_id ? id : NULL, RPC_INVALID_REQUEST,
                              "a request needs a method", "invalid_request");
    }
    const char *m = json_object_get_string(method);
    int is_init = has_id && strcmp(m, "initialize") == 0;

    int version = -1;
    const char *pv = mg_get_header(c, "MCP-Protocol-Version");
    if (!is_init) {
        const char *sid = mg_get_header(c, "Mcp-Session-Id");
        if (!sid)
            return send_rpc_error(c, 400, has_id ? id : NULL, RPC_INVALID_REQUEST,
                                  "Bad Request: Mcp-Session-Id header is required (call "
                                  "initialize first)",
                                  "no_session");
        version = session_check(sid);
        if (version < 0)
            return send_rpc_error(c, 404, has_id ? id : NULL, RPC_SESSION_NOT_FOUND,
                                  "Session not found (unknown or expired): initialize again",
                                  "unknown_session");
        if (pv && strcmp(pv, versions[version]) != 0) {
            char why[160];
            snprintf(why, sizeof why,
                     "Bad Request: MCP-Protocol-Version %.40s is not this session's version (%s)",
                     pv, versions[version]);
            return send_rpc_error(c, 400, has_id ? id : NULL, RPC_INVALID_REQUEST, why,
                                  "bad_version");
        }
    }
    if (!has_id) { /* notifications/initialized, cancelled, …: nothing to answer */
        count("accepted");
        mg_printf(c, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
        return 202;
    }
    if (is_init)
        return do_initialize(c, id, params);
    if (strcmp(m, "ping") == 0)
        return send_rpc_result(c, id, "{}", 2, NULL);
    if (strcmp(m, "tools/list") == 0)
        return do_tools_list(c, id, params);
    if (strcmp(m, "tools/call") == 0)
        return do_tools_call(c, id, params);
    char why[160];
    snprintf(why, sizeof why, "Method not found: %.80s", m);
    return send_rpc_error(c, 200, id, RPC_METHOD_NOT_FOUND, why, "method_not_found");
}

int gw_handle_mcp(struct mg_connection *c, void *ud) {
    (void)ud;
    pthread_once(&init_once, mcp_init);
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (strcmp(ri->local_uri, "/mcp") != 0)
        return ss_http_send_error(c, 404, "not_found", "no such endpoint");
    if (!origin_allowed(mg_get_header(c, "Origin"))) {
        count("forbidden_origin");
        return ss_http_send_error(c, 403, "forbidden_origin",
                                  "this Origin may not use /mcp (GATEWAY_MCP_ALLOWED_ORIGINS)");
    }
    int status;
    if (!gw_authorized(c, &status))
        return status;
    if (strcmp(ri->request_method, "POST") != 0)
        return ss_http_send_error_h(c, 405, "method_not_allowed",
                                    "POST only: this MCP server answers every request with JSON "
                                    "and opens no SSE stream; sessions end on their own",
                                    "Allow: POST\r\n");
    const char *ct = mg_get_header(c, "Content-Type");
    if (!header_has(ct, "application/json")) {
        ss_http_close_after(c);
        return ss_http_send_error(c, 415, "unsupported_media_type",
                                  "Content-Type must be application/json");
    }
    const char *accept = mg_get_header(c, "Accept");
    if (accept && !header_has(accept, "application/json") && !header_has(accept, "*/*") &&
        !header_has(accept, "application/*")) {
        ss_http_close_after(c);
        return ss_http_send_error(c, 406, "not_acceptable",
                                  "this server answers with application/json: Accept it");
    }
    char *body = NULL;
    size_t len = 0;
    int r = ss_http_read_body(c, (size_t)g_gw.cfg.max_body, &body, &len);
    if (r == SS_HTTP_BODY_TOO_LARGE)
        return ss_http_send_error(c, 413, "payload_too_large",
                                  "request body is over the limit (GATEWAY_MAX_BODY_BYTES)");
    if (r == SS_HTTP_BODY_TOO_SLOW)
        return ss_http_send_error(c, 408, "body_too_slow",
                                  "the request body did not arrive in time");
    if (r != 0)
        return ss_http_send_error(c, 400, "bad_request", "could not read the request body");

    json_tokener *tok = json_tokener_new_ex(GW_MCP_MAX_DEPTH);
    json_object *msg = NULL;
    int st;
    if (!tok) {
        st = ss_http_send_error(c, 500, "internal", "out of memory");
        goto out;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    msg = len ? json_tokener_parse_ex(tok, body, (int)len) : NULL;
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = msg ? json_tokener_get_parse_end(tok) : 0;
    while (end < len &&
           (body[end] == ' ' || body[end] == '\t' || body[end] == '\r' || body[end] == '\n'))
        end++;
    if (!msg || e != json_tokener_success || end != len) {
        char why[160];
        snprintf(why, sizeof why, "Parse error: %s",
                 !msg || e != json_tokener_success
                     ? (len ? json_tokener_error_desc(e) : "empty body")
                     : "text after the JSON value");
        st = send_rpc_error(c, 400, NULL, RPC_PARSE_ERROR, why, "parse_error");
        goto out;
    }
    st = handle(c, msg);
out:
    json_object_put(msg);
    if (tok)
        json_tokener_free(tok);
    free(body);
    return st;
}
