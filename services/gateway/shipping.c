/* /v1: EasyPost's own request and response bodies, passed through. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "envelope/json_scan.h"
#include "gateway.h"
#include "http/server.h"

/* How deep a request body may nest: json-c's default, what was accepted
 * before the scanner replaced it. */
#define GW_BODY_MAX_DEPTH 32

/* Strict JSON (RFC 8259): one object, nothing after it but whitespace.
 * Validated by the envelope's scanner, in one pass and without allocating:
 * no handler reads a field of a request body (it goes to EasyPost as it
 * came), and a json-c tree of a 1 MiB array of zeros costs ~37 MB, so 16
 * such bodies at once took the gateway over its memory limit. */
static int check_object(const char *body, size_t len, char *err, size_t errsize) {
    const char *why = NULL;
    if (ss_json_check(body, len, GW_BODY_MAX_DEPTH, &why) != 0) {
        snprintf(err, errsize, "request body is not valid JSON: %s", why ? why : "invalid");
        return -1;
    }
    ss_json_span_t root = ss_json_root(body, len);
    if (root.len == 0 || root.p[0] != '{') {
        snprintf(err, errsize, "request body must be one JSON object");
        return -1;
    }
    return 0;
}

/* Reads and validates a JSON object body; on failure sends the error and
 * returns -1 with *status set. */
static int read_json_body(struct mg_connection *c, char **body, size_t *len, int *status) {
    int r = ss_http_read_body(c, (size_t)g_gw.cfg.max_body, body, len);
    if (r == SS_HTTP_BODY_TOO_LARGE) {
        *status = ss_http_send_error(c, 413, "payload_too_large", "request body is over the limit");
        return -1;
    }
    if (r == SS_HTTP_BODY_TOO_SLOW) {
        *status =
            ss_http_send_error(c, 408, "body_too_slow", "the request body did not arrive in time");
        return -1;
    }
    if (r != 0) {
        *status = ss_http_send_error(c, 400, "bad_request", "could not read the request body");
        return -1;
    }
    char err[256];
    if (check_object(*body, *len, err, sizeof err) != 0) {
        free(*body);
        *body = NULL;
        *status = ss_http_send_error(c, 400, "invalid_json", err);
        return -1;
    }
    return 0;
}

void gw_count_ep_call(const char *op, const ss_ep_result_t *r) {
    char labels[128];
    snprintf(labels, sizeof labels, "op=\"%s\",outcome=\"%s\"", op, ss_ep_status_name(r->status));
    ss_counter_inc(ss_counter("gateway_easypost_calls_total",
                              "EasyPost calls by operation and outcome", labels));
    snprintf(labels, sizeof labels, "op=\"%s\"", op);
    ss_histogram_observe(ss_histogram("gateway_easypost_call_duration_seconds",
                                      "EasyPost call latency (retries included)", labels, NULL, 0),
                         r->elapsed_ms / 1000.0);
}

int gw_send_ep_result(struct mg_connection *c, const ss_ep_result_t *r) {
    switch (r->status) {
    case SS_EP_OK:
    case SS_EP_HTTP_ERROR:
        if (r->json && r->body) /* EasyPost's status and body, as EasyPost sent them */
            return ss_http_send_json(c, (int)r->http_status, r->body, r->body_len, NULL);
        {
            char msg[160];
            snprintf(msg, sizeof msg, "EasyPost answered HTTP %ld without a JSON body",
                     r->http_status);
            return ss_http_send_error(c, 502, "easypost_bad_response", msg);
        }
    case SS_EP_ERR_TIMEOUT:
        return ss_http_send_error(c, 504, "easypost_timeout", "EasyPost did not answer in time");
    case SS_EP_ERR_CONNECT:
        return ss_http_send_error(c, 502, "easypost_unreachable", "EasyPost could not be reached");
    case SS_EP_ERR_INVALID:
        return ss_http_send_error(c, 400, "bad_request",
                                  r->errstr[0] ? r->errstr : "invalid request");
    case SS_EP_ERR_INTERNAL: return ss_http_send_error(c, 500, "internal", "internal error");
    default:
        return ss_http_send_error(c, 502, "easypost_bad_response",
                                  r->errstr[0] ? r->errstr : "EasyPost's answer could not be used");
    }
}

static int require_easypost(struct mg_connection *c, int *status) {
    if (g_gw.ep)
        return 1;
    *status = ss_http_send_error(c, 503, "easypost_not_configured",
                                 "EASYPOST_API_KEY is not set on this gateway");
    return 0;
}

/* Splits "/v1/<collection>[/<id>[/<action>]]" after prefix.  Returns the
 * number of segments (0..2) or -1 when there are more or an id is too long. */
static int split_path(const char *uri, const char *prefix, char *id, size_t idsize, char *action,
                      size_t actsize) {
    size_t plen = strlen(prefix);
    if (strncmp(uri, prefix, plen) != 0)
        return -1;
    const char *p = uri + plen;
    id[0] = action[0] = '\0';
    if (*p == '\0' || (p[0] == '/' && p[1] == '\0'))
        return 0;
    if (*p != '/')
        return -1;
    p++;
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (n == 0 || n >= idsize)
        return -1;
    memcpy(id, p, n);
    id[n] = '\0';
    if (!slash || slash[1] == '\0')
        return 1;
    const char *a = slash + 1;
    if (strchr(a, '/') || strlen(a) >= actsize)
        return -1;
    snprintf(action, actsize, "%s", a);
    return 2;
}

typedef int (*ep_create_fn)(ss_ep_client_t *, const char *, size_t, ss_ep_result_t *);

static int do_create(struct mg_connection *c, const char *op, ep_create_fn fn, const char *type) {
    int status;
    char *body;
    size_t len;
    if (read_json_body(c, &body, &len, &status) != 0)
        return status;
    ss_ep_result_t r;
    fn(g_gw.ep, body, len, &r);
    free(body);
    gw_count_ep_call(op, &r);
    status = gw_send_ep_result(c, &r);
    if (r.status == SS_EP_OK && r.json)
        gw_publish(type, &r); /* create_and_verify's {"address":{...}} unwrapped there */
    ss_ep_result_free(&r);
    return status;
}

typedef int (*ep_get_fn)(ss_ep_client_t *, const char *, ss_ep_result_t *);

static int do_retrieve(struct mg_connection *c, const char *op, ep_get_fn fn, const char *id,
                       const char *type) {
    ss_ep_result_t r;
    fn(g_gw.ep, id, &r);
    gw_count_ep_call(op, &r);
    int status = gw_send_ep_result(c, &r);
    if (r.status == SS_EP_OK && r.json)
        gw_publish(type, &r); /* a fresher copy is still news to the database */
    ss_ep_result_free(&r);
    return status;
}

/* What every /v1 handler starts with: auth, EasyPost configured, the path
 * split after its collection prefix. */
typedef struct {
    char id[160], action[32];
    int seg; /* split_path's answer: 0..2 segments, -1 for no such path */
    int post, get;
} v1_req_t;

static int v1_begin(struct mg_connection *c, const char *prefix, v1_req_t *q, int *status) {
    if (!gw_authorized(c, status) || !require_easypost(c, status))
        return -1;
    const struct mg_request_info *ri = mg_get_request_info(c);
    q->seg = split_path(ri->local_uri, prefix, q->id, sizeof q->id, q->action, sizeof q->action);
    q->post = strcmp(ri->request_method, "POST") == 0;
    q->get = strcmp(ri->request_method, "GET") == 0;
    return 0;
}

/* No route matched: 404 when the path is not one of ours, else 405. */
static int v1_unrouted(struct mg_connection *c, int path_known) {
    if (!path_known)
        return ss_http_send_error(c, 404, "not_found", "no such endpoint");
    return ss_http_send_error(c, 405, "method_not_allowed", "method not allowed on this path");
}

int gw_handle_shipments(struct mg_connection *c, void *ud) {
    (void)ud;
    int status;
    v1_req_t q;
    if (v1_begin(c, "/v1/shipments", &q, &status) != 0)
        return status;
    int buy = q.seg == 2 && strcmp(q.action, "buy") == 0;
    if (q.seg == 0 && q.post)
        return do_create(c, "shipment_create", ss_ep_shipment_create, "shipment.created");
    if (q.seg == 1 && q.get)
        return do_retrieve(c, "shipment_retrieve", ss_ep_shipment_retrieve, q.id,
                           "shipment.retrieved");
    if (buy && q.post) {
        char *body;
        size_t len;
        if (read_json_body(c, &body, &len, &status) != 0)
            return status;
        status = gw_buy(c, q.id, body, len);
        free(body);
        return status;
    }
    return v1_unrouted(c, q.seg == 0 || q.seg == 1 || buy);
}

int gw_handle_trackers(struct mg_connection *c, void *ud) {
    (void)ud;
    int status;
    v1_req_t q;
    if (v1_begin(c, "/v1/trackers", &q, &status) != 0)
        return status;
    if (q.seg == 0 && q.post)
        return do_create(c, "tracker_create", ss_ep_tracker_create, "tracker.created");
    if (q.seg == 1 && q.get)
        return do_retrieve(c, "tracker_retrieve", ss_ep_tracker_retrieve, q.id,
                           "tracker.retrieved");
    return v1_unrouted(c, q.seg == 0 || q.seg == 1);
}

int gw_handle_addresses(struct mg_connection *c, void *ud) {
    (void)ud;
    int status;
    v1_req_t q;
    if (v1_begin(c, "/v1/addresses", &q, &status) != 0)
        return status;
    int verify = q.seg == 1 && strcmp(q.id, "create_and_verify") == 0;
    if (q.seg == 0 && q.post)
        return do_create(c, "address_create", ss_ep_address_create, "address.created");
    if (verify && q.post)
        return do_create(c, "address_create_and_verify", ss_ep_address_create_and_verify,
                         "address.created");
    return v1_unrouted(c, q.seg == 0 || verify);
}

/* ---- answers built without a connection (gw_buy_do, MCP) ---- */

void gw_answer_free(gw_answer_t *a) {
    free(a->body);
    a->body = NULL;
    a->body_len = 0;
}

void gw_answer_error(gw_answer_t *a, int status, const char *code, const char *message,
                     const char *headers) {
    ss_buf_t b = {0};
    ss_buf_appendf(&b, "%s", "{\"error\":{\"code\":");
    ss_buf_append_json_str(&b, code);
    ss_buf_appendf(&b, "%s", ",\"message\":");
    ss_buf_append_json_str(&b, message);
    ss_buf_append(&b, "}}", 2);
    free(a->body);
    a->status = status;
    a->body = b.data; /* NULL on out of memory: sent as {} */
    a->body_len = b.data ? b.len : 0;
    snprintf(a->headers, sizeof a->headers, "%s", headers ? headers : "");
}

void gw_answer_from_ep(gw_answer_t *a, const ss_ep_result_t *r) {
    char msg[160];
    a->headers[0] = '\0';
    switch (r->status) {
    case SS_EP_OK:
    case SS_EP_HTTP_ERROR:
        if (r->json && r->body) { /* EasyPost's status and body, as EasyPost sent them */
            free(a->body);
            a->status = (int)r->http_status;
            a->body = malloc(r->body_len + 1);
            a->body_len = a->body ? r->body_len : 0;
            if (!a->body) {
                gw_answer_error(a, 500, "internal", "out of memory", NULL);
                return;
            }
            memcpy(a->body, r->body, r->body_len + 1);
            if (r->retry_after_ms >= 0)
                snprintf(a->headers, sizeof a->headers, "Retry-After: %ld\r\n",
                         (r->retry_after_ms + 999) / 1000);
            return;
        }
        snprintf(msg, sizeof msg, "EasyPost answered HTTP %ld without a JSON body", r->http_status);
        gw_answer_error(a, 502, "easypost_bad_response", msg, NULL);
        return;
    case SS_EP_ERR_TIMEOUT:
        gw_answer_error(a, 504, "easypost_timeout", "EasyPost did not answer in time", NULL);
        return;
    case SS_EP_ERR_CONNECT:
        gw_answer_error(a, 502, "easypost_unreachable", "EasyPost could not be reached", NULL);
        return;
    case SS_EP_ERR_INVALID:
        gw_answer_error(a, 400, "bad_request", r->errstr[0] ? r->errstr : "invalid request", NULL);
        return;
    case SS_EP_ERR_INTERNAL: gw_answer_error(a, 500, "internal", "internal error", NULL); return;
    default:
        gw_answer_error(a, 502, "easypost_bad_response",
                        r->errstr[0] ? r->errstr : "EasyPost's answer could not be used", NULL);
        return;
    }
}

int gw_answer_send(struct mg_connection *c, const gw_answer_t *a) {
    const char *h = a->headers[0] ? a->headers : NULL;
    if (!a->body)
        return ss_http_send_json(c, a->status, "{}", 2, h);
    return ss_http_send_json(c, a->status, a->body, a->body_len, h);
}
