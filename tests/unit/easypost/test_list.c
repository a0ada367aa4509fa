/* EasyPost list calls: the query EasyPost's pagination needs, the page
 * parser, Retry-After honoured on 429, and pages that are not pages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <civetweb.h>

#include <easypost/client.h>

static char g_last_query[512];
static volatile int g_hits;

static int send_body(struct mg_connection *c, int status, const char *extra, const char *body) {
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%sContent-Length: "
                     "%zu\r\n\r\n",
                     status, extra ? extra : "", strlen(body));
    mg_write(c, head, (size_t)n);
    mg_write(c, body, strlen(body));
    return status;
}

static const char PAGE[] =
    "{\"shipments\":[{\"id\":\"shp_2\",\"object\":\"Shipment\",\"status\":\"delivered\","
    "\"created_at\":\"2024-05-02T10:00:00Z\",\"updated_at\":\"2024-05-03T10:00:00Z\"},"
    "{\"id\":\"shp_1\",\"object\":\"Shipment\",\"created_at\":\"2024-05-01T10:00:00Z\","
    "\"updated_at\":\"bad\"},{\"object\":\"Shipment\"},7],\"has_more\":true}";

static int h_any(struct mg_connection *c, void *ud) {
    (void)ud;
    const struct mg_request_info *ri = mg_get_request_info(c);
    int hit = __atomic_add_fetch(&g_hits, 1, __ATOMIC_SEQ_CST);
    snprintf(g_last_query, sizeof g_last_query, "%s?%s", ri->local_uri,
             ri->query_string ? ri->query_string : "");
    if (strstr(ri->local_uri, "/ra/") && hit % 2 == 1)
        return send_body(c, 429, "Retry-After: 1\r\n",
                         "{\"error\":{\"code\":\"RATE_LIMITED\",\"message\":\"x\"}}");
    if (strstr(ri->local_uri, "/long/"))
        return send_body(c, 429, "Retry-After: 30\r\n",
                         "{\"error\":{\"code\":\"RATE_LIMITED\",\"message\":\"x\"}}");
    if (strstr(ri->local_uri, "/notpage/"))
        return send_body(c, 200, NULL, "{\"shipments\":{},\"has_more\":false}");
    if (strstr(ri->local_uri, "/nomore/"))
        return send_body(c, 200, NULL, "{\"shipments\":[]}");
    if (strstr(ri->local_uri, "/cut/"))
        return send_body(c, 200, NULL, "{\"shipments\":[{\"id\":\"shp_1\"");
    return send_body(c, 200, NULL, PAGE);
}

static struct mg_context *g_ctx;
static int g_port;

static int setup_server(void **state) {
    (void)state;
    const char *opts[] = {"listening_ports", "127.0.0.1:0", "num_threads", "2", NULL};
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    g_ctx = mg_start(&cb, NULL, opts);
    if (!g_ctx)
        return -1;
    mg_set_request_handler(g_ctx, "/", h_any, NULL);
    struct mg_server_port ports[2];
    if (mg_get_server_ports(g_ctx, 2, ports) < 1)
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

static ss_ep_client_t *client_for(const char *prefix, int retry_after_max_ms) {
    char base[128], err[256];
    snprintf(base, sizeof base, "http://127.0.0.1:%d%s", g_port, prefix);
    ss_ep_config_t cfg = {.api_base = base,
                          .api_key = "EZTK_secret",
                          .max_retries = 3,
                          .backoff_base_ms = 5,
                          .backoff_max_ms = 20,
                          .retry_after_max_ms = retry_after_max_ms};
    ss_ep_client_t *c = ss_ep_client_new(&cfg, err, sizeof err);
    assert_non_null(c);
    return c;
}

static void test_page_parse(void **state) {
    (void)state;
    ss_ep_page_t page;
    char err[128];
    assert_int_equal(
        ss_ep_page_parse(SS_EP_LIST_SHIPMENTS, PAGE, strlen(PAGE), &page, err, sizeof err), 0);
    assert_int_equal(page.n, 2);
    assert_int_equal(page.n_invalid, 2); /* no id; not an object */
    assert_true(page.has_more);
    assert_string_equal(page.items[0].id, "shp_2");
    assert_string_equal(page.items[0].object_type, "Shipment");
    assert_string_equal(page.items[0].status, "delivered");
    assert_int_equal(page.items[0].created_at_usec, 1714644000LL * 1000000);
    assert_int_equal(page.items[0].updated_at_usec, 1714730400LL * 1000000);
    assert_int_equal(page.items[1].updated_at_usec, 0);
    assert_null(page.items[1].status);
    /* the entries are spans of the body: EasyPost's bytes, not a rewrite */
    assert_ptr_equal(page.items[0].raw, strstr(PAGE, "{\"id\":\"shp_2\""));
    assert_int_equal(page.items[0].raw_len, strstr(PAGE, ",{\"id\":\"shp_1\"") - page.items[0].raw);
    ss_ep_page_free(&page);
    /* the wrong list's name is not a page */
    assert_int_equal(
        ss_ep_page_parse(SS_EP_LIST_TRACKERS, PAGE, strlen(PAGE), &page, err, sizeof err), -1);
    assert_non_null(strstr(err, "trackers"));
    assert_null(page.items);
}

/* Whitespace, escapes, numbers and member order stay as sent; a duplicate
 * member's last value wins (as with json-c); escaped ids are decoded. */
static void test_page_bytes(void **state) {
    (void)state;
    static const char body[] =
        "{ \"has_more\" : true , \"trackers\" : [ {\"object\":\"Tracker\", \"id\" : "
        "\"trk_\\u0031\",\"weight\":1.50E+1,\"note\":\"caf\\u00e9 \\/ \\\"q\\\"\","
        "\"status\":\"unknown\",\"status\":\"in_transit\"}\n ] , \"has_more\":false }  \n";
    ss_ep_page_t page;
    char err[128];
    assert_int_equal(
        ss_ep_page_parse(SS_EP_LIST_TRACKERS, body, sizeof body - 1, &page, err, sizeof err), 0);
    assert_false(page.has_more);
    assert_int_equal(page.n, 1);
    assert_string_equal(page.items[0].id, "trk_1");
    assert_string_equal(page.items[0].status, "in_transit");
    const char *want = strstr(body, "{\"object\"");
    assert_int_equal(page.items[0].raw_len, strchr(want, '}') + 1 - want);
    assert_memory_equal(page.items[0].raw, want, page.items[0].raw_len);
    ss_ep_page_free(&page);
    /* not strict JSON (single quotes, trailing comma, trailing data): not a page */
    static const char *const bad[] = {
        "{\"trackers\":[{'id':'trk_1'}],\"has_more\":false}",
        "{\"trackers\":[{\"id\":\"trk_1\"},],\"has_more\":false}",
        "{\"trackers\":[],\"has_more\":false} x",
        "{\"trackers\":[],\"has_more\":\"false\"}",
        "[]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(
            ss_ep_page_parse(SS_EP_LIST_TRACKERS, bad[i], strlen(bad[i]), &page, err, sizeof err),
            -1);
}

static void test_query(void **state) {
    (void)state;
    ss_ep_client_t *c = client_for("/v2", 0);
    ss_ep_list_params_t p = {.page_size = 50,
                             .before_id = "shp_abc",
                             .start_datetime = "2024-05-01T00:00:00+02:00",
                             .end_datetime = "2024-06-01T00:00:00Z"};
    ss_ep_page_t page;
    ss_ep_result_t r;
    assert_int_equal(ss_ep_list(c, SS_EP_LIST_SHIPMENTS, &p, &page, &r), 0);
    assert_string_equal(g_last_query,
                        "/v2/shipments?page_size=50&before_id=shp_abc&start_datetime=2024-05-"
                        "01T00%3A00%3A00%2B02%3A00&end_datetime=2024-06-01T00%3A00%3A00Z");
    assert_int_equal(page.n, 2);
    assert_non_null(strstr(r.body, "\"has_more\":true")); /* the raw page is kept */
    ss_ep_page_free(&page);
    ss_ep_result_free(&r);
    /* defaults: 100 per page, nothing else */
    assert_int_equal(ss_ep_list(c, SS_EP_LIST_TRACKERS, NULL, &page, &r), -1); /* PAGE has no
                                                                                  trackers */
    assert_string_equal(g_last_query, "/v2/trackers?page_size=100");
    assert_int_equal(r.status, SS_EP_ERR_BAD_RESPONSE);
    ss_ep_page_free(&page);
    ss_ep_result_free(&r);
    /* a cursor with bad characters is refused before any request */
    p.before_id = "shp_1&x=2";
    assert_int_equal(ss_ep_list(c, SS_EP_LIST_SHIPMENTS, &p, &page, &r), -1);
    assert_int_equal(r.status, SS_EP_ERR_INVALID);
    ss_ep_result_free(&r);
    ss_ep_client_free(c);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void test_retry_after(void **state) {
    (void)state;
    g_hits = 0;
    ss_ep_client_t *c = client_for("/ra", 5000);
    ss_ep_page_t page;
    ss_ep_result_t r;
    double t0 = now_ms();
    assert_int_equal(ss_ep_list(c, SS_EP_LIST_SHIPMENTS, NULL, &page, &r), 0);
    assert_int_equal(r.attempts, 2);
    assert_true(now_ms() - t0 >= 950); /* waited the 1 s asked, not the 20 ms backoff cap */
    ss_ep_page_free(&page);
    ss_ep_result_free(&r);
    ss_ep_client_free(c);

    /* longer than we may sleep: handed back at once with the wait asked */
    c = client_for("/long", 5000);
    t0 = now_ms();
    assert_int_equal(ss_ep_list(c, SS_EP_LIST_SHIPMENTS, NULL, &page, &r), -1);
    assert_true(now_ms() - t0 < 1000);
    assert_int_equal(r.http_status, 429);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.retry_after_ms, 30000);
    ss_ep_result_free(&r);
    ss_ep_client_free(c);
}

static void test_not_pages(void **state) {
    (void)state;
    static const char *const prefixes[] = {"/notpage", "/nomore", "/cut"};
    for (size_t i = 0; i < 3; i++) {
        ss_ep_client_t *c = client_for(prefixes[i], 0);
        ss_ep_page_t page;
        ss_ep_result_t r;
        assert_int_equal(ss_ep_list(c, SS_EP_LIST_SHIPMENTS, NULL, &page, &r), -1);
        assert_int_equal(r.status, SS_EP_ERR_BAD_RESPONSE);
        assert_int_equal(page.n, 0);
        assert_null(page.items);
        ss_ep_result_free(&r);
        ss_ep_client_free(c);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_parse), cmocka_unit_test(test_page_bytes),
        cmocka_unit_test(test_query),      cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_not_pages),
    };
    return cmocka_run_group_tests(tests, setup_server, teardown_server);
}
