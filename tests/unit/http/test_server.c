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
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
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
    if (r == SS_HTTP_BODY_TOO_LARGE)
        return ss_http_send_error(c, 413, "payload_too_large", "body over 1024 bytes");
    if (r == SS_HTTP_BODY_TOO_SLOW)
        return ss_http_send_error(c, 408, "body_too_slow", "body did not arrive in time");
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

/* A request that arrives before the service registered its routes is told to
 * retry (503 starting, Retry-After), not that the endpoint does not exist. */
static void test_unknown_path_503_until_serve(void **state) {
    (void)state;
    char listen[32], err[256], saved[64];
    int port = free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(saved, sizeof saved, "%s", base);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    ss_http_opts_t o = {
        .service = "test", .listen = listen, .num_threads = 2, .hold_until_serve = 1};
    ss_http_t *h = ss_http_start(&o, err, sizeof err);
    if (!h)
        fail_msg("start: %s", err);
    resp_t r;
    assert_int_equal(request("POST", "/echo", "x", 1, NULL, &r), 503);
    assert_non_null(strstr(r.data, "\"code\":\"starting\""));
    assert_int_equal(request("GET", "/health", NULL, 0, NULL, &r), 200);
    ss_http_route(h, "/echo$", "/echo", echo, NULL);
    assert_int_equal(request("POST", "/echo", "x", 1, NULL, &r), 200);
    assert_int_equal(request("GET", "/nope", NULL, 0, NULL, &r), 503);
    ss_http_serve(h);
    assert_int_equal(request("GET", "/nope", NULL, 0, NULL, &r), 404);
    ss_http_stop(h);
    snprintf(base, sizeof base, "%s", saved);
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

/* ---- hostile clients: a second server with 2 threads, short deadlines and
 * an admin listener. */
static ss_http_t *hsrv;
static int hport, hadmin;

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int connect_to(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0)
        fail_msg("connect to %d", port);
    return s;
}

/* Reads what arrives within ms; returns bytes read, and *eof when the peer
 * closed. */
static size_t read_for(int s, char *buf, size_t n, int ms, int *eof) {
    size_t got = 0;
    int64_t until = now_ms() + ms;
    *eof = 0;
    while (got + 1 < n) {
        int left = (int)(until - now_ms());
        if (left <= 0)
            break;
        struct pollfd p = {.fd = s, .events = POLLIN};
        if (poll(&p, 1, left) <= 0)
            break;
        ssize_t r = recv(s, buf + got, n - 1 - got, 0);
        if (r <= 0) {
            *eof = 1;
            break;
        }
        got += (size_t)r;
    }
    buf[got] = '\0';
    return got;
}

static int hostile_setup(void **state) {
    (void)state;
    char listen[32], admin[32], err[256];
    hport = free_port();
    hadmin = free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", hport);
    snprintf(admin, sizeof admin, "127.0.0.1:%d", hadmin);
    ss_http_opts_t o = {.service = "hostile",
                        .listen = listen,
                        .num_threads = 2,
                        .request_timeout_ms = 3000,
                        .body_timeout_ms = 800,
                        .admin_listen = admin,
                        .admin_threads = 2};
    hsrv = ss_http_start(&o, err, sizeof err);
    if (!hsrv)
        fail_msg("start: %s", err);
    ss_http_route(hsrv, "/echo$", "/echo", echo, NULL);
    return 0;
}

static int hostile_teardown(void **state) {
    (void)state;
    ss_http_stop(hsrv);
    return 0;
}

/* A body trickled a byte at a time is cut off by the body deadline (each
 * read alone never times out), answered 408, and the connection closed. */
static void test_trickled_body_cut_off(void **state) {
    (void)state;
    int s = connect_to(hport);
    const char *head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n";
    send(s, head, strlen(head), MSG_NOSIGNAL);
    int64_t t0 = now_ms();
    char buf[2048] = "";
    int eof = 0;
    size_t got = 0;
    while (!eof && now_ms() - t0 < 6000) {
        send(s, "x", 1, MSG_NOSIGNAL);
        got += read_for(s, buf + got, sizeof buf - got, 100, &eof);
    }
    int64_t took = now_ms() - t0;
    close(s);
    assert_non_null(strstr(buf, "HTTP/1.1 408"));
    assert_non_null(strstr(buf, "body_too_slow"));
    assert_true(eof);
    assert_in_range(took, 700, 4000); /* deadline 800 ms + at most one read timeout */
}

/* A body over the limit is refused without reading it, and the connection
 * closed at once (not after civetweb has discarded 100 MB, or waited for it). */
static void test_oversized_body_closes(void **state) {
    (void)state;
    int s = connect_to(hport);
    const char *head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\nxx";
    send(s, head, strlen(head), MSG_NOSIGNAL);
    char buf[2048];
    int eof = 0;
    int64_t t0 = now_ms();
    read_for(s, buf, sizeof buf, 2500, &eof);
    int64_t took = now_ms() - t0;
    close(s);
    assert_non_null(strstr(buf, "HTTP/1.1 413"));
    assert_non_null(strstr(buf, "Connection: close"));
    assert_true(eof);
    assert_in_range(took, 0, 1000);
}

/* With every public thread held by idle connections, the admin listener
 * still answers probes at once. */
static void test_admin_probes_not_starved(void **state) {
    (void)state;
    int idle[2] = {connect_to(hport), connect_to(hport)};
    usleep(200 * 1000); /* let the two workers pick the idle connections up */
    char url[64];
    resp_t r;
    snprintf(base, sizeof base, "http://127.0.0.1:%d", hport);
    CURL *c = curl_easy_init();
    snprintf(url, sizeof url, "http://127.0.0.1:%d/health", hport);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 500L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    CURLcode main_rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", hadmin);
    int64_t t0 = now_ms();
    long admin_status = request("GET", "/health", NULL, 0, NULL, &r);
    int64_t took = now_ms() - t0;
    long ready_status = request("GET", "/ready", NULL, 0, NULL, &r);
    long metrics_status = request("GET", "/metrics", NULL, 0, NULL, &r);
    long other_status = request("POST", "/echo", "{}", 2, NULL, &r);
    close(idle[0]);
    close(idle[1]);
    assert_int_equal(main_rc, CURLE_OPERATION_TIMEDOUT); /* the public side is starved... */
    assert_int_equal(admin_status, 200);                 /* ...the probes are not */
    assert_in_range(took, 0, 300);
    assert_int_equal(ready_status, 200);
    assert_int_equal(metrics_status, 200);
    assert_int_equal(other_status, 404); /* only the probes live on the admin listener */
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_ready_metrics),
        cmocka_unit_test(test_unknown_path_json_404),
        cmocka_unit_test(test_unknown_path_503_until_serve),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_bearer_and_query),
        cmocka_unit_test(test_split_keys),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    const struct CMUnitTest hostile[] = {
        cmocka_unit_test(test_trickled_body_cut_off),
        cmocka_unit_test(test_oversized_body_closes),
        cmocka_unit_test(test_admin_probes_not_starved),
    };
    rc |= cmocka_run_group_tests(hostile, hostile_setup, hostile_teardown);
    curl_global_cleanup();
    ss_metrics_reset();
    return rc;
}
