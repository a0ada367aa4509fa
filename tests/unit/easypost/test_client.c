/* Unit tests for the EasyPost client: every recorded response in the
 * fixtures, both error formats, money exactness, malformed/truncated/
 * oversized answers, and the retry policy against a tiny civetweb server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <civetweb.h>

#include "ss_fixture.h"

#include <easypost/client.h>

/* A recorded API answer (fixtures/api/NAME). */
static char *slurp(const char *name, size_t *len) {
    char path[256];
    snprintf(path, sizeof path, "api/%s", name);
    return ss_test_fixture(path, len);
}

static void parse_fixture(const char *name, long status, ss_ep_result_t *r) {
    size_t len = 0;
    char *body = slurp(name, &len);
    assert_non_null(body);
    ss_ep_result_parse(status, body, len, r);
    free(body);
}

/* ---- fixtures --------------------------------------------------------------- */

static void test_fixture_success_objects(void **state) {
    (void)state;
    static const struct {
        const char *file;
        long status;
        const char *object;
    } cases[] = {
        {"shipment-create.response.json", 201, "Shipment"},
        {"shipment-buy.response.json", 200, "Shipment"},
        {"tracker-create.response.json", 200, "Tracker"},
        {"tracker-retrieve.response.json", 200, "Tracker"},
        {"address-create-and-verify.response.json", 200, NULL},
        {"batch-create.response.json", 200, "Batch"},
        {"events-list.response.json", 200, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ss_ep_result_t r;
        parse_fixture(cases[i].file, cases[i].status, &r);
        assert_int_equal(r.status, SS_EP_OK);
        assert_int_equal(r.http_status, cases[i].status);
        assert_non_null(r.json);
        assert_non_null(r.body);
        assert_null(r.error_code);
        if (cases[i].object)
            assert_string_equal(ss_ep_json_str(r.json, "object"), cases[i].object);
        ss_ep_result_free(&r);
        ss_ep_result_free(&r); /* idempotent */
    }
}

static void test_fixture_buy_money_exact(void **state) {
    (void)state;
    ss_ep_result_t r;
    parse_fixture("shipment-buy.response.json", 200, &r);
    assert_int_equal(r.status, SS_EP_OK);
    json_object *sel = NULL, *fees = NULL, *rates = NULL;
    assert_true(json_object_object_get_ex(r.json, "selected_rate", &sel));
    char buf[32];
    assert_int_equal(ss_ep_money_get(sel, "rate", buf, sizeof buf), 1);
    assert_string_equal(buf, "6.07");
    assert_int_equal(ss_ep_money_get(sel, "retail_rate", buf, sizeof buf), 1);
    assert_string_equal(buf, "8.85");
    assert_true(json_object_object_get_ex(r.json, "fees", &fees));
    assert_int_equal(ss_ep_money_get(json_object_array_get_idx(fees, 1), "amount", buf, sizeof buf),
                     1);
    assert_string_equal(buf, "6.07000");
    assert_true(json_object_object_get_ex(r.json, "rates", &rates));
    assert_int_equal(json_object_array_length(rates), 3);
    assert_int_equal(ss_ep_money_get(json_object_array_get_idx(rates, 0), "rate", buf, sizeof buf),
                     1);
    assert_string_equal(buf, "34.15");
    assert_string_equal(ss_ep_json_str(r.json, "tracking_code"), "9400100208303109505657");
    /* absent and null money */
    assert_int_equal(ss_ep_money_get(sel, "no_such_field", buf, sizeof buf), 0);
    assert_int_equal(ss_ep_money_get(r.json, "insurance", buf, sizeof buf), 0);
    ss_ep_result_free(&r);
}

static void test_fixture_error_422_objects(void **state) {
    (void)state;
    ss_ep_result_t r;
    parse_fixture("error-422.response.json", 422, &r);
    assert_int_equal(r.status, SS_EP_HTTP_ERROR);
    assert_int_equal(r.http_status, 422);
    assert_string_equal(r.error_code, "PARAMETER.REQUIRED");
    assert_string_equal(r.error_message, "Missing required parameter.");
    assert_int_equal(r.n_field_errors, 1);
    assert_string_equal(r.field_errors[0].field, "shipment");
    assert_string_equal(r.field_errors[0].message, "cannot be blank");
    assert_null(r.field_errors[0].suggestion);
    assert_non_null(r.body); /* kept for pass-through */
    assert_non_null(strstr(r.body, "PARAMETER.REQUIRED"));
    ss_ep_result_free(&r);
}

static void test_fixture_error_404_strings(void **state) {
    (void)state;
    ss_ep_result_t r;
    parse_fixture("error-404-alternative-format.response.json", 404, &r);
    assert_int_equal(r.status, SS_EP_HTTP_ERROR);
    assert_string_equal(r.error_code, "NOT_FOUND");
    assert_int_equal(r.n_field_errors, 1);
    assert_null(r.field_errors[0].field);
    assert_string_equal(r.field_errors[0].message,
                        "No eligible insurance found with provided tracking code.");
    ss_ep_result_free(&r);
}

static void test_every_fixture_file_parses(void **state) {
    (void)state;
    /* Every *.response.json must parse as an object without crashing, with
     * the status its name implies; truncations of each must never crash and
     * never be OK. */
    static const char *const files[] = {"address-create-and-verify.response.json",
                                        "batch-create.response.json",
                                        "error-404-alternative-format.response.json",
                                        "error-422.response.json",
                                        "events-list.response.json",
                                        "shipment-buy.response.json",
                                        "shipment-create.response.json",
                                        "tracker-create.response.json",
                                        "tracker-retrieve.response.json"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        size_t len = 0;
        char *body = slurp(files[i], &len);
        assert_non_null(body);
        while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == ' '))
            len--; /* a cut at or past the last '}' is the whole document */
        for (size_t cut = 0; cut < len; cut += (len / 37) + 1) {
            ss_ep_result_t r;
            int rc = ss_ep_result_parse(200, body, cut, &r);
            assert_int_equal(rc, -1);
            assert_int_equal(r.status, SS_EP_ERR_BAD_RESPONSE);
            assert_int_equal(r.http_status, 200);
            ss_ep_result_free(&r);
        }
        free(body);
    }
}

/* ---- malformed ------------------------------------------------------------------ */

static void test_malformed_bodies(void **state) {
    (void)state;
    ss_ep_result_t r;
    /* not JSON on a 2xx */
    assert_int_equal(ss_ep_result_parse(200, "<html>oops</html>", 17, &r), -1);
    assert_int_equal(r.status, SS_EP_ERR_BAD_RESPONSE);
    assert_null(r.json);
    assert_string_equal(r.body, "<html>oops</html>");
    ss_ep_result_free(&r);
    /* JSON but not an object */
    assert_int_equal(ss_ep_result_parse(200, "[1,2]", 5, &r), -1);
    assert_int_equal(r.status, SS_EP_ERR_BAD_RESPONSE);
    ss_ep_result_free(&r);
    /* trailing garbage */
    assert_int_equal(ss_ep_result_parse(200, "{\"a\":1} x", 9, &r), -1);
    ss_ep_result_free(&r);
    /* trailing whitespace is fine */
    assert_int_equal(ss_ep_result_parse(200, "{\"a\":1}\n", 8, &r), 0);
    ss_ep_result_free(&r);
    /* empty body */
    assert_int_equal(ss_ep_result_parse(201, "", 0, &r), -1);
    assert_int_equal(r.status, SS_EP_ERR_BAD_RESPONSE);
    ss_ep_result_free(&r);
    /* HTML error page from a proxy: status kept, no parsed error */
    assert_int_equal(ss_ep_result_parse(502, "<html>Bad Gateway</html>", 24, &r), -1);
    assert_int_equal(r.status, SS_EP_HTTP_ERROR);
    assert_int_equal(r.http_status, 502);
    assert_null(r.error_code);
    assert_int_equal(r.n_field_errors, 0);
    ss_ep_result_free(&r);
    /* error with odd member types: no crash, odd entries skipped */
    const char *odd =
        "{\"error\":{\"code\":5,\"message\":null,\"errors\":[1,null,{\"field\":3},\"s\",[]]}}";
    assert_int_equal(ss_ep_result_parse(422, odd, strlen(odd), &r), -1);
    assert_null(r.error_code);
    assert_null(r.error_message);
    assert_int_equal(r.n_field_errors, 2);
    assert_null(r.field_errors[0].field);
    assert_string_equal(r.field_errors[1].message, "s");
    ss_ep_result_free(&r);
    /* error that is not an object */
    assert_int_equal(ss_ep_result_parse(500, "{\"error\":\"boom\"}", 16, &r), -1);
    assert_null(r.error_code);
    ss_ep_result_free(&r);
    /* embedded NUL */
    assert_int_equal(ss_ep_result_parse(200, "{\"a\":\0}", 7, &r), -1);
    ss_ep_result_free(&r);
}

static void test_money(void **state) {
    (void)state;
    assert_true(ss_ep_money_valid("8.20000"));
    assert_true(ss_ep_money_valid("0"));
    assert_true(ss_ep_money_valid("-1.5"));
    assert_true(ss_ep_money_valid("123456789012345678.0123456789"));
    assert_false(ss_ep_money_valid(""));
    assert_false(ss_ep_money_valid("1."));
    assert_false(ss_ep_money_valid(".5"));
    assert_false(ss_ep_money_valid("1e3"));
    assert_false(ss_ep_money_valid(" 1"));
    assert_false(ss_ep_money_valid("NaN"));
    assert_false(ss_ep_money_valid("1,00"));
    assert_false(ss_ep_money_valid("+1"));
    assert_false(ss_ep_money_valid(NULL));

    /* numbers keep their exact text, never through a double */
    json_object *o = json_tokener_parse("{\"a\":8.20000,\"b\":0.1,\"c\":12345678901234567.89,\"d\":"
                                        "\"x\",\"e\":true,\"f\":null,\"g\":7,\"h\":1e2}");
    char buf[64];
    assert_int_equal(ss_ep_money_get(o, "a", buf, sizeof buf), 1);
    assert_string_equal(buf, "8.20000");
    assert_int_equal(ss_ep_money_get(o, "b", buf, sizeof buf), 1);
    assert_string_equal(buf, "0.1");
    assert_int_equal(ss_ep_money_get(o, "c", buf, sizeof buf), 1);
    assert_string_equal(buf, "12345678901234567.89");
    assert_int_equal(ss_ep_money_get(o, "d", buf, sizeof buf), -1);
    assert_string_equal(buf, "");
    assert_int_equal(ss_ep_money_get(o, "e", buf, sizeof buf), -1);
    assert_int_equal(ss_ep_money_get(o, "f", buf, sizeof buf), 0);
    assert_int_equal(ss_ep_money_get(o, "g", buf, sizeof buf), 1);
    assert_string_equal(buf, "7");
    assert_int_equal(ss_ep_money_get(o, "h", buf, sizeof buf), -1);
    assert_int_equal(ss_ep_money_get(o, "a", buf, 4), -1); /* does not fit */
    json_object_put(o);
}

/* ---- a tiny server ------------------------------------------------------------- */

static volatile int g_hits;
static char g_last_auth[256];
static char g_last_ctype[128];
static char g_last_method[16], g_last_uri[256], g_last_query[256], g_last_idem[128];

static int send_body(struct mg_connection *c, int status, const char *body) {
    /* mg_write only: mg_printf crashed in this test's worker threads */
    char head[160];
    int n =
        snprintf(head, sizeof head,
                 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                 status, strlen(body));
    mg_write(c, head, (size_t)n);
    mg_write(c, body, strlen(body));
    return status;
}

static int h_any(struct mg_connection *c, void *ud) {
    (void)ud;
    const struct mg_request_info *ri = mg_get_request_info(c);
    const char *u = ri->local_uri;
    __atomic_add_fetch(&g_hits, 1, __ATOMIC_SEQ_CST);
    const char *a = mg_get_header(c, "Authorization");
    snprintf(g_last_auth, sizeof g_last_auth, "%s", a ? a : "");
    const char *ct = mg_get_header(c, "Content-Type");
    snprintf(g_last_ctype, sizeof g_last_ctype, "%s", ct ? ct : "");
    const char *ik = mg_get_header(c, "Idempotency-Key");
    snprintf(g_last_idem, sizeof g_last_idem, "%s", ik ? ik : "");
    snprintf(g_last_method, sizeof g_last_method, "%s", ri->request_method);
    snprintf(g_last_uri, sizeof g_last_uri, "%s", u);
    snprintf(g_last_query, sizeof g_last_query, "%s", ri->query_string ? ri->query_string : "");
    char drain[4096];
    while (mg_read(c, drain, sizeof drain) > 0) {
    }
    if (strstr(u, "/ok"))
        return send_body(c, 200, "{\"id\":\"shp_1\",\"object\":\"Shipment\"}");
    if (strstr(u, "/s429/"))
        return send_body(
            c, 429,
            "{\"error\":{\"code\":\"RATE_LIMITED\",\"message\":\"slow down\",\"errors\":[]}}");
    if (strstr(u, "/s503/"))
        return send_body(c, 503, "{\"error\":{\"code\":\"UNAVAILABLE\",\"message\":\"x\"}}");
    if (strstr(u, "/s502/"))
        return send_body(c, 502, "<html>bad gateway</html>");
    if (strstr(u, "/s500/"))
        return send_body(c, 500,
                         "{\"error\":{\"code\":\"INTERNAL_SERVER_ERROR\",\"message\":\"x\"}}");
    if (strstr(u, "/flaky/")) {
        /* 429 on odd hits, 200 on even */
        if (g_hits % 2 == 1)
            return send_body(c, 429, "{\"error\":{\"code\":\"RATE_LIMITED\",\"message\":\"x\"}}");
        return send_body(c, 200, "{\"ok\":true}");
    }
    if (strstr(u, "/big")) {
        size_t n = 5u * 1024 * 1024;
        static const char head[] =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5242880\r\n\r\n";
        mg_write(c, head, sizeof head - 1);
        char chunk[65536];
        memset(chunk, ' ', sizeof chunk);
        for (size_t sent = 0; sent < n; sent += sizeof chunk)
            if (mg_write(c, chunk, sizeof chunk) <= 0)
                break;
        return 200;
    }
    if (strstr(u, "/trunc")) {
        static const char part[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                   "Content-Length: 500\r\nConnection: close\r\n\r\n{\"id\":\"shp_";
        mg_write(c, part, sizeof part - 1);
        return 401; /* civetweb closes the connection after a 401 */
    }
    if (strstr(u, "/slow")) {
        usleep(600 * 1000);
        return send_body(c, 200, "{}");
    }
    return send_body(c, 404,
                     "{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"nope\",\"errors\":[]}}");
}

static struct mg_context *g_ctx;
static int g_port;

static int setup_server(void **state) {
    (void)state;
    const char *opts[] = {"listening_ports",   "127.0.0.1:0", "num_threads", "4",
                          "enable_keep_alive", "yes",         NULL};
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    g_ctx = mg_start(&cb, NULL, opts);
    if (!g_ctx)
        return -1;
    mg_set_request_handler(g_ctx, "/", h_any, NULL);
    struct mg_server_port ports[4];
    int n = mg_get_server_ports(g_ctx, 4, ports);
    if (n < 1)
        return -1;
    g_port = ports[0].port;
    return 0;
}

static int teardown_server(void **state) {
    (void)state;
    mg_stop(g_ctx);
    ss_ep_thread_cleanup();
    return 0;
}

static ss_ep_client_t *client_for(const char *prefix, size_t max_body, long timeout_ms) {
    char base[128], err[256];
    snprintf(base, sizeof base, "http://127.0.0.1:%d%s/", g_port, prefix);
    ss_ep_config_t cfg = {.api_base = base,
                          .api_key = "EZTK_secret",
                          .max_retries = 3,
                          .backoff_base_ms = 5,
                          .backoff_max_ms = 20,
                          .max_body = max_body,
                          .timeout_ms = timeout_ms};
    ss_ep_client_t *c = ss_ep_client_new(&cfg, err, sizeof err);
    assert_non_null(c);
    return c;
}

static void test_http_ok_and_auth(void **state) {
    (void)state;
    ss_ep_client_t *c = client_for("/ok", 0, 0);
    ss_ep_result_t r;
    assert_int_equal(ss_ep_shipment_create(c, "{\"shipment\":{}}", 0, &r), 0);
    assert_int_equal(r.status, SS_EP_OK);
    assert_int_equal(r.http_status, 200);
    assert_string_equal(ss_ep_json_str(r.json, "id"), "shp_1");
    assert_int_equal(r.attempts, 1);
    /* Basic base64("EZTK_secret:") */
    assert_string_equal(g_last_auth, "Basic RVpUS19zZWNyZXQ6");
    assert_string_equal(g_last_ctype, "application/json");
    ss_ep_result_free(&r);
    /* keep-alive: a second call on the same thread works (reused handle) */
    assert_int_equal(ss_ep_shipment_retrieve(c, "shp_1", &r), 0);
    ss_ep_result_free(&r);
    ss_ep_client_free(c);
}

static void test_http_errors_passed_through(void **state) {
    (void)state;
    ss_ep_client_t *c = client_for("", 0, 0);
    ss_ep_result_t r;
    assert_int_equal(ss_ep_shipment_retrieve(c, "shp_missing", &r), -1);
    assert_int_equal(r.status, SS_EP_HTTP_ERROR);
    assert_int_equal(r.http_status, 404);
    assert_string_equal(r.error_code, "NOT_FOUND");
    assert_int_equal(r.attempts, 1);
    ss_ep_result_free(&r);
    ss_ep_client_free(c);

    c = client_for("/s500", 0, 0);
    assert_int_equal(ss_ep_shipment_retrieve(c, "shp_1", &r), -1);
    assert_int_equal(r.http_status, 500);
    assert_int_equal(r.attempts, 1); /* 500 is not retried */
    assert_string_equal(r.error_code, "INTERNAL_SERVER_ERROR");
    ss_ep_result_free(&r);
    ss_ep_client_free(c);
}

static void test_retry_policy(void **state) {
    (void)state;
    ss_ep_result_t r;
    ss_ep_client_t *c = client_for("/s429", 0, 0);
    /* GET: 429 retried up to max_retries */
    assert_int_equal(ss_ep_tracker_retrieve(c, "trk_1", &r), -1);
    assert_int_equal(r.http_status, 429);
    assert_int_equal(r.attempts, 4);
    ss_ep_result_free(&r);
    /* create: 429 retried (EasyPost rejected it before doing anything) */
    assert_int_equal(ss_ep_tracker_create(c, "{\"tracker\":{}}", 0, &r), -1);
    assert_int_equal(r.attempts, 4);
    assert_int_equal(r.outcome_unknown, 0);
    ss_ep_result_free(&r);
    /* buy: never repeated once sent */
    assert_int_equal(ss_ep_shipment_buy_rate(c, "shp_1", "rate_1", &r), -1);
    assert_int_equal(r.attempts, 1);
    ss_ep_result_free(&r);
    ss_ep_client_free(c);

    c = client_for("/s503", 0, 0);
    assert_int_equal(ss_ep_shipment_retrieve(c, "shp_1", &r), -1);
    assert_int_equal(r.attempts, 4);
    ss_ep_result_free(&r);
    assert_int_equal(ss_ep_address_create(c, "{\"address\":{}}", 0, &r), -1);
    assert_int_equal(r.attempts, 1); /* a create that may have happened is not repeated */
    ss_ep_result_free(&r);
    ss_ep_client_free(c);

    c = client_for("/s502", 0, 0);
    assert_int_equal(ss_ep_shipment_buy_rate(c, "shp_1", "rate_1", &r), -1);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.outcome_unknown, 1);
    assert_int_equal(r.http_status, 502);
    assert_null(r.error_code); /* HTML body: kept raw */
    assert_string_equal(r.body, "<html>bad gateway</html>");
    ss_ep_result_free(&r);
    ss_ep_client_free(c);

    /* 429 then 200: retried to success */
    c = client_for("/flaky", 0, 0);
    g_hits = 0;
    assert_int_equal(ss_ep_shipment_retrieve(c, "shp_1", &r), 0);
    assert_int_equal(r.attempts, 2);
    ss_ep_result_free(&r);
    ss_ep_client_free(c);
}

static void test_connection_refused(void **state) {
    (void)state;
    /* a port nobody listens on: bind, read the port, close */
    struct mg_context *tmp;
    const char *opts[] = {"listening_ports", "127.0.0.1:0", "num_threads", "1", NULL};
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    tmp = mg_start(&cb, NULL, opts);
    assert_non_null(tmp);
    struct mg_server_port ports[2];
    assert_true(mg_get_server_ports(tmp, 2, ports) >= 1);
    int dead = ports[0].port;
    mg_stop(tmp);
    char base[64], err[128];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/v2", dead);
    ss_ep_config_t cfg = {.api_base = base,
                          .api_key = "k",
                          .max_retries = 2,
                          .backoff_base_ms = 1,
                          .backoff_max_ms = 2};
    ss_ep_client_t *c = ss_ep_client_new(&cfg, err, sizeof err);
    ss_ep_result_t r;
    /* nothing sent: retried even for a buy */
    assert_int_equal(ss_ep_shipment_buy_rate(c, "shp_1", "rate_1", &r), -1);
    assert_int_equal(r.status, SS_EP_ERR_CONNECT);
    assert_int_equal(r.attempts, 3);
    assert_int_equal(r.outcome_unknown, 0);
    assert_int_equal(r.http_status, 0);
    ss_ep_result_free(&r);
    ss_ep_client_free(c);
}

static void test_oversized_truncated_slow(void **state) {
    (void)state;
    ss_ep_result_t r;
    ss_ep_client_t *c = client_for("/big", 0, 0); /* default 4 MiB cap, 5 MiB sent */
    assert_int_equal(ss_ep_shipment_retrieve(c, "shp_1", &r), -1);
    assert_int_equal(r.status, SS_EP_ERR_TOO_LARGE);
    assert_null(r.body);
    assert_non_null(strstr(r.errstr, "limit"));
    ss_ep_result_free(&r);
    ss_ep_client_free(c);

    c = client_for("/trunc", 0, 0);
    assert_int_equal(ss_ep_shipment_buy_rate(c, "shp_1", "rate_1", &r), -1);
    assert_int_equal(r.status, SS_EP_ERR_TRANSPORT);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.outcome_unknown, 1);
    ss_ep_result_free(&r);
    ss_ep_client_free(c);

    c = client_for("/slow", 0, 200);
    assert_int_equal(ss_ep_shipment_buy_rate(c, "shp_1", "rate_1", &r), -1);
    assert_int_equal(r.status, SS_EP_ERR_TIMEOUT);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.outcome_unknown, 1);
    ss_ep_result_free(&r);
    ss_ep_client_free(c);
}

/* ss_ep_forward: method, path from the root (the base without "/v2"),
 * query, body and Idempotency-Key as given; the answer not parsed. */
static void test_forward(void **state) {
    (void)state;
    ss_ep_client_t *c = client_for("/v2", 0, 0);
    ss_ep_result_t r;
    ss_ep_forward_t f = {.method = "GET", .path = "/v2/ok/x", .query = "a=1&b=%20c"};
    assert_int_equal(ss_ep_forward(c, &f, &r), 0);
    assert_int_equal(r.status, SS_EP_OK);
    assert_null(r.json); /* not parsed */
    assert_string_equal(r.body, "{\"id\":\"shp_1\",\"object\":\"Shipment\"}");
    assert_string_equal(r.content_type, "application/json");
    assert_string_equal(g_last_method, "GET");
    assert_string_equal(g_last_uri, "/v2/ok/x");
    assert_string_equal(g_last_query, "a=1&b=%20c");
    assert_string_equal(g_last_auth, "Basic RVpUS19zZWNyZXQ6");
    assert_string_equal(g_last_idem, "");
    ss_ep_result_free(&r);

    f = (ss_ep_forward_t){.method = "PUT",
                          .path = "/beta/ok",
                          .body = "{\"a\":1}",
                          .len = 7,
                          .idempotency_key = "idem-1",
                          .retry = SS_EP_RETRY_NEVER_SENT};
    assert_int_equal(ss_ep_forward(c, &f, &r), 0);
    assert_string_equal(g_last_method, "PUT");
    assert_string_equal(g_last_uri, "/beta/ok");
    assert_string_equal(g_last_query, "");
    assert_string_equal(g_last_ctype, "application/json");
    assert_string_equal(g_last_idem, "idem-1");
    ss_ep_result_free(&r);

    f = (ss_ep_forward_t){.method = "DELETE", .path = "/v2/webhooks/hook_1"};
    assert_int_equal(ss_ep_forward(c, &f, &r), -1);
    assert_int_equal(r.status, SS_EP_HTTP_ERROR);
    assert_int_equal(r.http_status, 404);
    assert_string_equal(r.error_code, "NOT_FOUND");
    assert_string_equal(g_last_method, "DELETE");
    ss_ep_result_free(&r);

    f = (ss_ep_forward_t){.method = "POST", .path = "/v2/ok"}; /* no body: an empty one */
    assert_int_equal(ss_ep_forward(c, &f, &r), 0);
    assert_string_equal(g_last_method, "POST");
    ss_ep_result_free(&r);

    /* refused before any request */
    int hits = g_hits;
    static const char *const bad_paths[] = {"/v2/../admin", "/v2/./x", "v2/x", "/v2/a b",
                                            "/v2/a%2e",     "/v2/..",  NULL};
    for (int i = 0; bad_paths[i]; i++) {
        f = (ss_ep_forward_t){.method = "GET", .path = bad_paths[i]};
        assert_int_equal(ss_ep_forward(c, &f, &r), -1);
        assert_int_equal(r.status, SS_EP_ERR_INVALID);
        ss_ep_result_free(&r);
    }
    f = (ss_ep_forward_t){.method = "TRACE", .path = "/v2/ok"};
    assert_int_equal(ss_ep_forward(c, &f, &r), -1);
    ss_ep_result_free(&r);
    f = (ss_ep_forward_t){.method = "GET", .path = "/v2/ok", .query = "a=b c"};
    assert_int_equal(ss_ep_forward(c, &f, &r), -1);
    ss_ep_result_free(&r);
    f = (ss_ep_forward_t){.method = "GET", .path = "/v2/ok", .idempotency_key = "a\nb"};
    assert_int_equal(ss_ep_forward(c, &f, &r), -1);
    assert_int_equal(r.status, SS_EP_ERR_INVALID);
    ss_ep_result_free(&r);
    assert_int_equal(g_hits, hits);
    ss_ep_client_free(c);
}

static void test_invalid_arguments(void **state) {
    (void)state;
    char err[128];
    ss_ep_config_t cfg = {.api_key = NULL};
    assert_null(ss_ep_client_new(&cfg, err, sizeof err));
    cfg.api_key = "k";
    cfg.api_base = "ftp://x";
    assert_null(ss_ep_client_new(&cfg, err, sizeof err));
    cfg.api_base = NULL;
    ss_ep_client_t *c = ss_ep_client_new(&cfg, err, sizeof err);
    assert_non_null(c);
    ss_ep_result_t r;
    assert_int_equal(ss_ep_shipment_retrieve(c, "../admin", &r), -1);
    assert_int_equal(r.status, SS_EP_ERR_INVALID);
    assert_int_equal(r.attempts, 0);
    ss_ep_result_free(&r);
    assert_int_equal(ss_ep_shipment_buy(c, "shp_1", NULL, 0, &r), -1);
    assert_int_equal(r.status, SS_EP_ERR_INVALID);
    ss_ep_result_free(&r);
    assert_int_equal(ss_ep_shipment_buy_rate(c, "shp_1", "rate\"}", &r), -1);
    assert_int_equal(r.status, SS_EP_ERR_INVALID);
    ss_ep_result_free(&r);
    assert_string_equal(ss_ep_status_name(SS_EP_ERR_TIMEOUT), "timeout");
    ss_ep_client_free(c);
}

int main(void) {
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_fixture_success_objects),
        cmocka_unit_test(test_fixture_buy_money_exact),
        cmocka_unit_test(test_fixture_error_422_objects),
        cmocka_unit_test(test_fixture_error_404_strings),
        cmocka_unit_test(test_every_fixture_file_parses),
        cmocka_unit_test(test_malformed_bodies),
        cmocka_unit_test(test_money),
        cmocka_unit_test(test_invalid_arguments),
    };
    const struct CMUnitTest net[] = {
        cmocka_unit_test(test_http_ok_and_auth),
        cmocka_unit_test(test_http_errors_passed_through),
        cmocka_unit_test(test_retry_policy),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_oversized_truncated_slow),
        cmocka_unit_test(test_forward),
    };
    int rc = cmocka_run_group_tests_name("easypost_parse", pure, NULL, NULL);
    rc += cmocka_run_group_tests_name("easypost_http", net, setup_server, teardown_server);
    return rc;
}
