#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics.h"

static int reset(void **state) {
    (void)state;
    ss_metrics_reset();
    return 0;
}

static void test_counter_and_gauge_render(void **state) {
    (void)state;
    ss_counter_t *a =
        ss_counter("webhook_requests_total", "Requests by outcome", "outcome=\"accepted\"");
    ss_counter_t *b =
        ss_counter("webhook_requests_total", "Requests by outcome", "outcome=\"bad_signature\"");
    assert_ptr_equal(a, ss_counter("webhook_requests_total", "x", "outcome=\"accepted\""));
    ss_counter_add(a, 3);
    ss_counter_inc(b);
    ss_gauge_t *g = ss_gauge("consumer_lag", "Lag", NULL);
    ss_gauge_set(g, 2.5);
    ss_gauge_add(g, -1);
    char *text = ss_metrics_render(NULL);
    assert_non_null(text);
    const char *expect = "# HELP webhook_requests_total Requests by outcome\n"
                         "# TYPE webhook_requests_total counter\n"
                         "webhook_requests_total{outcome=\"accepted\"} 3\n"
                         "webhook_requests_total{outcome=\"bad_signature\"} 1\n"
                         "# HELP consumer_lag Lag\n"
                         "# TYPE consumer_lag gauge\n"
                         "consumer_lag 1.5\n";
    assert_string_equal(text, expect);
    free(text);
}

static void test_histogram_render(void **state) {
    (void)state;
    const double buckets[] = {0.1, 1};
    ss_histogram_t *h = ss_histogram("lat_seconds", "Latency", "route=\"/x\"", buckets, 2);
    ss_histogram_observe(h, 0.05);
    ss_histogram_observe(h, 0.1); /* le is inclusive */
    ss_histogram_observe(h, 0.5);
    ss_histogram_observe(h, 7);
    assert_int_equal(ss_histogram_count(h), 4);
    char *text = ss_metrics_render(NULL);
    const char *expect = "# HELP lat_seconds Latency\n"
                         "# TYPE lat_seconds histogram\n"
                         "lat_seconds_bucket{route=\"/x\",le=\"0.10000000000000001\"} 2\n"
                         "lat_seconds_bucket{route=\"/x\",le=\"1\"} 3\n"
                         "lat_seconds_bucket{route=\"/x\",le=\"+Inf\"} 4\n"
                         "lat_seconds_sum{route=\"/x\"} 7.6500000000000004\n"
                         "lat_seconds_count{route=\"/x\"} 4\n";
    assert_string_equal(text, expect);
    free(text);
}

static void test_type_clash_is_harmless(void **state) {
    (void)state;
    ss_counter_t *c = ss_counter("m", "help", NULL);
    ss_gauge_t *g = ss_gauge("m", "help", NULL); /* wrong type: goes to a sink */
    ss_gauge_set(g, 5);
    ss_counter_inc(c);
    char *text = ss_metrics_render(NULL);
    assert_non_null(strstr(text, "# TYPE m counter\nm 1\n"));
    free(text);
}

static ss_counter_t *shared;
static ss_histogram_t *shared_h;
static void *worker(void *p) {
    (void)p;
    for (int i = 0; i < 100000; i++) {
        ss_counter_inc(shared);
        ss_histogram_observe(shared_h, 1.0);
    }
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    shared = ss_counter("c_total", "c", NULL);
    shared_h = ss_histogram("h", "h", NULL, NULL, 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(ss_counter_value(shared), 400000);
    assert_int_equal(ss_histogram_count(shared_h), 400000);
    char *text = ss_metrics_render(NULL);
    assert_non_null(strstr(text, "h_sum 400000\n"));
    free(text);
}

static void test_help_escaping(void **state) {
    (void)state;
    ss_counter("esc_total", "line1\nback\\slash", NULL);
    char *text = ss_metrics_render(NULL);
    assert_non_null(strstr(text, "# HELP esc_total line1\\nback\\\\slash\n"));
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_counter_and_gauge_render, reset),
        cmocka_unit_test_setup(test_histogram_render, reset),
        cmocka_unit_test_setup(test_type_clash_is_harmless, reset),
        cmocka_unit_test_setup(test_threads, reset),
        cmocka_unit_test_setup(test_help_escaping, reset),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ss_metrics_reset();
    return rc;
}
