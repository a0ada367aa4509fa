/* EasyPost's API (/v2, /beta, /v1): EasyPost's own request and response
 * bodies, passed through. */
#include <ctype.h>
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

/* Reads a body up to GATEWAY_MAX_BODY_BYTES; on failure sends the error
 * (413, 408, 400) and returns -1 with *status set. */
static int read_json_body_raw(struct mg_connection *c, char **body, size_t *len, int *status) {
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

/* ---- EasyPost's surface: /v2, /beta, and /v1 (an alias of /v2) ----
 *
 * The operations known by name (GW_EP_OPS) get their metrics name, the type
 * the objects of their answer are captured with, and for buys the
 * idempotency of idempotency.c; every other path under /v2 or /beta is
 * forwarded as it came.  Either way EasyPost's status, body, Content-Type,
 * x-ep-request-uuid and Retry-After come back unchanged. */

const gw_op_t gw_ep_ops[] = {
    {"POST", "/v2/addresses", "address_create", "created", GW_BUY_NONE},
    {"GET", "/v2/addresses", "address_list", NULL, GW_BUY_NONE},
    {"POST", "/v2/addresses/create_and_verify", "address_create_and_verify", "created",
     GW_BUY_NONE},
    {"GET", "/v2/addresses/{id}", "address_retrieve", NULL, GW_BUY_NONE},
    {"GET", "/v2/addresses/{id}/verify", "address_verify", "verified", GW_BUY_NONE},
    {"POST", "/v2/shipments", "shipment_create", "created", GW_BUY_NONE},
    {"GET", "/v2/shipments", "shipment_list", NULL, GW_BUY_NONE},
    {"GET", "/v2/shipments/{id}", "shipment_retrieve", NULL, GW_BUY_NONE},
    {"POST", "/v2/shipments/{id}/buy", "buy", "purchased", GW_BUY_SHIPMENT},
    {"POST", "/v2/shipments/{id}/rerate", "shipment_rerate", "created", GW_BUY_NONE},
    {"GET", "/v2/shipments/{id}/label", "shipment_label", "updated", GW_BUY_NONE},
    {"POST", "/v2/shipments/{id}/insure", "shipment_insure", "updated", GW_BUY_NONE},
    {"POST", "/v2/shipments/{id}/refund", "shipment_refund", "refund_requested", GW_BUY_NONE},
    {"POST", "/v2/trackers", "tracker_create", "created", GW_BUY_NONE},
    {"GET", "/v2/trackers", "tracker_list", NULL, GW_BUY_NONE},
    {"GET", "/v2/trackers/{id}", "tracker_retrieve", NULL, GW_BUY_NONE},
    {"POST", "/v2/batches", "batch_create", "created", GW_BUY_NONE},
    {"GET", "/v2/batches", "batch_list", NULL, GW_BUY_NONE},
    {"GET", "/v2/batches/{id}", "batch_retrieve", NULL, GW_BUY_NONE},
    {"POST", "/v2/batches/{id}/add_shipments", "batch_add_shipments", "updated", GW_BUY_NONE},
    {"POST", "/v2/batches/{id}/remove_shipments", "batch_remove_shipments", "updated", GW_BUY_NONE},
    {"POST", "/v2/batches/{id}/buy", "batch_buy", "purchased", GW_BUY_BATCH},
    {"POST", "/v2/batches/{id}/label", "batch_label", "updated", GW_BUY_NONE},
    {"POST", "/v2/batches/{id}/scan_form", "batch_scan_form", "updated", GW_BUY_NONE},
    {"POST", "/v2/pickups", "pickup_create", "created", GW_BUY_NONE},
    {"GET", "/v2/pickups", "pickup_list", NULL, GW_BUY_NONE},
    {"GET", "/v2/pickups/{id}", "pickup_retrieve", NULL, GW_BUY_NONE},
    {"POST", "/v2/pickups/{id}/buy", "pickup_buy", "purchased", GW_BUY_PICKUP},
    {"POST", "/v2/pickups/{id}/cancel", "pickup_cancel", "cancelled", GW_BUY_NONE},
    {"POST", "/v2/scan_forms", "scan_form_create", "created", GW_BUY_NONE},
    {"GET", "/v2/scan_forms", "scan_form_list", NULL, GW_BUY_NONE},
    {"GET", "/v2/scan_forms/{id}", "scan_form_retrieve", NULL, GW_BUY_NONE},
    {"POST", "/v2/refunds", "refund_create", "created", GW_BUY_NONE},
    {"GET", "/v2/refunds", "refund_list", NULL, GW_BUY_NONE},
    {"GET", "/v2/refunds/{id}", "refund_retrieve", NULL, GW_BUY_NONE},
    {"POST", "/v2/insurances", "insurance_create", "created", GW_BUY_NONE},
    {"GET", "/v2/insurances", "insurance_list", NULL, GW_BUY_NONE},
    {"GET", "/v2/insurances/{id}", "insurance_retrieve", NULL, GW_BUY_NONE},
    {"GET", "/v2/events", "event_list", NULL, GW_BUY_NONE},
    {"GET", "/v2/events/{id}", "event_retrieve", NULL, GW_BUY_NONE},
    {NULL, NULL, NULL, NULL, GW_BUY_NONE},
};

/* An id segment: EasyPost's ids ([A-Za-z0-9_-], at most 128 bytes). */
static int id_segment(const char *p, size_t n) {
    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)p[i]) && p[i] != '_' && p[i] != '-')
            return 0;
    return 1;
}

/* Matches path ("/v2/..." without query) against template tpl; the {id}
 * segment is copied to id. */
static int path_match(const char *tpl, const char *path, char *id, size_t idsize) {
    const char *t = tpl, *p = path;
    while (*t && *p) {
        if (strncmp(t, "{id}", 4) == 0) {
            size_t n = strcspn(p, "/");
            if (!id_segment(p, n) || n >= idsize)
                return 0;
            memcpy(id, p, n);
            id[n] = '\0';
            t += 4;
            p += n;
            continue;
        }
        if (*t != *p)
            return 0;
        t++;
        p++;
    }
    return *t == '\0' && *p == '\0';
}

const gw_op_t *gw_ep_op_find(const char *method, const char *path, char *id, size_t idsize) {
    id[0] = '\0';
    for (const gw_op_t *op = gw_ep_ops; op->method; op++)
        if (strcmp(op->method, method) == 0 && path_match(op->path, path, id, idsize))
            return op;
    id[0] = '\0';
    return NULL;
}

/* Sends a forwarded answer: EasyPost's status, body and the headers that
 * matter; transport failures as our errors (502/504). */
static int send_forwarded(struct mg_connection *c, const ss_ep_result_t *r) {
    if (r->status != SS_EP_OK && r->status != SS_EP_HTTP_ERROR) {
        gw_answer_t a = {0};
        gw_answer_from_ep(&a, r);
        if (r->status == SS_EP_ERR_CONNECT) /* name what could not be reached */
            gw_answer_error(&a, 502, "easypost_unreachable",
                            "EasyPost could not be reached (EASYPOST_API_BASE)", NULL);
        int st = gw_answer_send(c, &a);
        gw_answer_free(&a);
        return st;
    }
    char hdrs[400];
    size_t n = 0;
    hdrs[0] = '\0';
    if (r->request_uuid[0])
        n += (size_t)snprintf(hdrs + n, sizeof hdrs - n, "X-Ep-Request-Uuid: %s\r\n",
                              r->request_uuid);
    if (r->retry_after_ms >= 0 && n < sizeof hdrs)
        snprintf(hdrs + n, sizeof hdrs - n, "Retry-After: %ld\r\n",
                 (r->retry_after_ms + 999) / 1000);
    const char *ct = r->content_type[0] ? r->content_type : "application/json";
    return ss_http_send_body(c, (int)r->http_status, ct, r->body ? r->body : "", r->body_len,
                             hdrs[0] ? hdrs : NULL);
}

/* Reads a forwarded request's body: bounded; when not empty it must be one
 * strict JSON object.  *body NULL when empty. */
static int read_forward_body(struct mg_connection *c, char **body, size_t *len, int *status) {
    if (read_json_body_raw(c, body, len, status) != 0)
        return -1;
    if (*len == 0) {
        free(*body);
        *body = NULL;
        return 0;
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

int gw_handle_easypost(struct mg_connection *c, void *ud) {
    (void)ud;
    int status;
    if (!gw_authorized(c, &status))
        return status;
    if (!g_gw.ep)
        return ss_http_send_error(c, 503, "easypost_not_configured",
                                  "EASYPOST_API_KEY is not set on this gateway");
    const struct mg_request_info *ri = mg_get_request_info(c);
    const char *uri = ri->local_uri ? ri->local_uri : "";
    const char *m = ri->request_method;
    /* /v1 is /v2; /v2 and /beta go as they came. */
    char path[1100];
    const char *rest;
    int w;
    if (strncmp(uri, "/v1", 3) == 0 && (uri[3] == '/' || uri[3] == '\0'))
        w = snprintf(path, sizeof path, "/v2%s", uri + 3);
    else if ((strncmp(uri, "/v2", 3) == 0 && (uri[3] == '/' || uri[3] == '\0')) ||
             (strncmp(uri, "/beta", 5) == 0 && (uri[5] == '/' || uri[5] == '\0')))
        w = snprintf(path, sizeof path, "%s", uri);
    else
        return ss_http_send_error(c, 404, "not_found", "no such endpoint");
    if (w < 0 || (size_t)w >= sizeof path)
        return ss_http_send_error(c, 414, "uri_too_long", "the path is too long");
    rest = path;
    int is_get = strcmp(m, "GET") == 0, is_delete = strcmp(m, "DELETE") == 0;
    if (!is_get && !is_delete && strcmp(m, "POST") != 0 && strcmp(m, "PUT") != 0 &&
        strcmp(m, "PATCH") != 0)
        return ss_http_send_error_h(c, 405, "method_not_allowed",
                                    "EasyPost's API takes GET, POST, PUT, PATCH and DELETE",
                                    "Allow: GET, POST, PUT, PATCH, DELETE\r\n");
    char *body = NULL;
    size_t len = 0;
    if (!is_get && read_forward_body(c, &body, &len, &status) != 0)
        return status;

    char id[160];
    const gw_op_t *op = gw_ep_op_find(m, rest, id, sizeof id);
    if (op && op->buy != GW_BUY_NONE) {
        gw_answer_t a;
        gw_buy_after_t after;
        gw_buy_kind_start(op->buy, id, body ? body : "{}", body ? len : 2,
                          mg_get_header(c, "Idempotency-Key"), &a, &after);
        free(body);
        status = gw_answer_send(c, &a);
        gw_answer_free(&a);
        gw_buy_after_run(&after); /* the record and the capture, after the answer */
        return status;
    }
    ss_ep_forward_t fw = {
        .method = m,
        .path = rest,
        .query = ri->query_string,
        .body = body,
        .len = len,
        .idempotency_key = mg_get_header(c, "Idempotency-Key"),
        /* GETs are repeated on every retryable failure; creates only when
         * EasyPost certainly did not act; anything else only when nothing
         * was sent. */
        .retry = is_get                                             ? SS_EP_RETRY_SAFE
                 : (op && op->verb && !strcmp(op->verb, "created")) ? SS_EP_RETRY_CREATE
                                                                    : SS_EP_RETRY_NEVER_SENT,
    };
    ss_ep_result_t r;
    ss_ep_forward(g_gw.ep, &fw, &r);
    free(body);
    gw_count_ep_call(op ? op->op : "forward", &r);
    if (r.status == SS_EP_ERR_INVALID) {
        ss_ep_result_free(&r);
        return ss_http_send_error(c, 400, "bad_request",
                                  "the path, query string or Idempotency-Key cannot be forwarded");
    }
    status = send_forwarded(c, &r);
    if (r.status == SS_EP_OK && r.body)
        gw_capture(op && op->verb ? op->verb
                   : is_get       ? "retrieved"
                                  : "updated",
                   r.body, r.body_len);
    ss_ep_result_free(&r);
    return status;
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
    ss_http_error_body(&b, code, message);
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
