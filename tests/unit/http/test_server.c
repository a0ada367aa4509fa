/* The scaffold over real HTTP on loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/metrics.h"
#include "http/server.h"

static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(s, (struct sockaddr *)&a, sizeof a);
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    return ntohs(a.sin_port);
}

static int g_ready = 1;
static int ready(void *ud, char *why, size_t n) {
    (void)ud;
    if (g_ready)
        return 0;
    snprintf(why, n, "postgresql: connection refused");
    return -1;
}

static int echo(struct mg_connection *c, void *ud) {
    (void)ud;
    char *body;
    size_t len;
    int r = ss_http_read_body(c, 1024, &body, &len);
    if (r == -2)
        return ss_http_send_error(c, 413, "payload_too_large", "body over 1024 bytes");
    if (r != 0)
        return ss_http_send_error(c, 400, "bad_body", "could not read body");
    int st = ss_http_send_json(c, 200, body, len, NULL);
    free(body);
    return st;
}

static const char *const keys[] = {"k1", "secret-two"};
static int authed(struct mg_connection *c, void *ud) {
    (void)ud;
    if (!ss_http_bearer_ok(c, keys, 2))
        return ss_http_send_error(c, 401, "unauthorized", "missing or wrong API key");
    char v[32];
    int n = ss_http_query_param(c, "days", v, sizeof v);
    char out[64];
    snprintf(out, sizeof out, "{\"days\":\"%s\"}", n >= 0 ? v : "none");
    return ss_http_send_json(c, 200, out, strlen(out), NULL);
}

typedef struct {
    char data[65536];
    size_t len;
} resp_t;

static size_t on_data(char *p, size_t s, size_t n, void *ud) {
    resp_t *r = ud;
    size_t k = s * n;
    if (r->len + k >= sizeof r->data)
        k = sizeof r->data - 1 - r->len;
    memcpy(r->data + r->len, p, k);
    r->len += k;
    r->data[r->len] = 0;
    return s * n;
}

static char base[64];

static long request(const char *method, const char *path, const char *body, size_t blen,
                    const char *auth, resp_t *out) {
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "%s%s", base, path);
    memset(out, 0, sizeof *out);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    struct curl_slist *h = NULL;
    if (auth)
        h = curl_slist_append(h, auth);
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)blen);
    }
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

static ss_http_t *srv;

static int setup(void **state) {
    (void)state;
    char listen[32], err[256];
    int port = free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    ss_http_opts_t o = {.service = "test", .listen = listen, .num_threads = 4, .ready = ready};
    srv = ss_http_start(&o, err, sizeof err);
    if (!srv)
        fail_msg("start: %s", err);
    ss_http_route(srv, "/echo$", "/echo", echo, NULL);
    ss_http_route(srv, "/auth$", "/auth", authed, NULL);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    ss_http_stop(srv);
    return 0;
}

static void test_health_ready_metrics(void **state) {
    (void)state;
    resp_t r;
    assert_int_equal(request("GET", "/health", NULL, 0, NULL, &r), 200);
    assert_string_equal(r.data, "{\"status\":\"ok\"}");
    g_ready = 1;
    assert_int_equal(request("GET", "/ready", NULL, 0, NULL, &r), 200);
    g_ready = 0;
    assert_int_equal(request("GET", "/ready", NULL, 0, NULL, &r), 503);
    assert_non_null(strstr(r.data, "postgresql: connection refused"));
    g_ready = 1;
    assert_int_equal(request("GET", "/metrics", NULL, 0, NULL, &r), 200);
    assert_non_null(strstr(r.data, "http_requests_total{route=\"/ready\",status=\"503\"} 1"));
    assert_non_null(strstr(r.data, "# TYPE http_request_duration_seconds histogram"));
}

static void test_unknown_path_json_404(void **state) {
    (void)state;
    resp_t r;
    assert_int_equal(request("GET", "/nope", NULL, 0, NULL, &r), 404);
    assert_non_null(strstr(r.data, "{\"error\":{\"code\":\"not_found\""));
}

static void test_body_limit(void **state) {
    (void)state;
    resp_t r;
    assert_int_equal(request("POST", "/echo", "{\"a\":1}", 7, NULL, &r), 200);
    assert_string_equal(r.data, "{\"a\":1}");
    char *big = malloc(4096);
    memset(big, 'x', 4096);
    assert_int_equal(request("POST", "/echo", big, 4096, NULL, &r), 413);
    assert_non_null(strstr(r.data, "payload_too_large"));
    assert_int_equal(request("POST", "/echo", big, 1024, NULL, &r), 200);
    assert_int_equal(r.len, 1024);
    free(big);
}

static void test_bearer_and_query(void **state) {
    (void)state;
    resp_t r;
    assert_int_equal(request("GET", "/auth", NULL, 0, NULL, &r), 401);
    assert_int_equal(request("GET", "/auth", NULL, 0, "Authorization: Bearer wrong", &r), 401);
    assert_int_equal(request("GET", "/auth", NULL, 0, "Authorization: Bearer secret-tw", &r), 401);
    assert_int_equal(request("GET", "/auth", NULL, 0, "Authorization: Basic secret-two", &r), 401);
    assert_int_equal(
        request("GET", "/auth?days=30", NULL, 0, "Authorization: Bearer secret-two", &r), 200);
    assert_string_equal(r.data, "{\"days\":\"30\"}");
    assert_int_equal(request("GET", "/auth", NULL, 0, "authorization: bearer k1", &r), 200);
    assert_string_equal(r.data, "{\"days\":\"none\"}");
}

static void test_split_keys(void **state) {
    (void)state;
    size_t n;
    char **k = ss_http_split_keys(" a, b ,,c ", &n);
    assert_int_equal(n, 3);
    assert_string_equal(k[0], "a");
    assert_string_equal(k[1], "b");
    assert_string_equal(k[2], "c");
    assert_null(k[3]);
    free(k);
    k = ss_http_split_keys("", &n);
    assert_int_equal(n, 0);
    free(k);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_ready_metrics), cmocka_unit_test(test_unknown_path_json_404),
        cmocka_unit_test(test_body_limit),           cmocka_unit_test(test_bearer_and_query),
        cmocka_unit_test(test_split_keys),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    ss_metrics_reset();
    return rc;
}
