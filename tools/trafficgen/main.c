/* shipstream-trafficgen: drives the gateway's /v1 API as a client would.
 * Creates shipments between ~30 US cities and buys the cheapest rate, at a
 * fixed rate for a fixed time, then reports counts, latencies and errors. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include <common/config.h>
#include <common/log.h>
#include <common/shutdown.h>
#include <easypost/client.h>
#include <common/stats.h>
#include <common/util.h>

static const char SUMMARY[] =
    "shipstream-trafficgen: realistic client traffic for the gateway's /v1 API.\n"
    "\n"
    "Each iteration creates a shipment (POST /v1/shipments) between two of 30 US cities with a\n"
    "random parcel, picks the cheapest rate (compared exactly, as decimal strings) and buys it\n"
    "(POST /v1/shipments/{id}/buy with an Idempotency-Key). Iterations start at TRAFFIC_RATE per\n"
    "second for TRAFFIC_DURATION seconds on TRAFFIC_CONCURRENCY connections; when the gateway is\n"
    "slower than the rate, starts are late and the report says so. At the end (or on Ctrl-C) it\n"
    "prints counts by status, latency percentiles and the achieved rate, then one JSON line.\n"
    "Exit status 0 when every request succeeded, 1 otherwise.\n"
    "\n"
    "Example (after `make up`):\n"
    "  . .run/stack.env && TRAFFIC_RATE=20 TRAFFIC_DURATION=30 shipstream-trafficgen";

static struct {
    char *url;
    char *key;
    long long rate;
    long long duration;
    long long concurrency;
    long long buy;
    long long seed;
    long long timeout_ms;
    char *log_level;
    char *log_format;
} cfg;

static const ss_conf_opt_t OPTS[] = {
    {"GATEWAY_URL", SS_CONF_STRING, &cfg.url, "http://localhost:8000", 0, 0, "gateway base URL", 0},
    {"GATEWAY_API_KEY", SS_CONF_STRING, &cfg.key, NULL, 0, 0,
     "bearer token for the gateway (unset: no Authorization header)", 1},
    {"TRAFFIC_RATE", SS_CONF_INT, &cfg.rate, "5", 1, 100000, "iterations started per second", 0},
    {"TRAFFIC_DURATION", SS_CONF_INT, &cfg.duration, "30", 1, 86400, "seconds to run", 0},
    {"TRAFFIC_CONCURRENCY", SS_CONF_INT, &cfg.concurrency, "4", 1, 1024,
     "parallel client threads (each with its own keep-alive connection)", 0},
    {"TRAFFIC_BUY", SS_CONF_BOOL, &cfg.buy, "1", 0, 0, "also buy the cheapest rate", 0},
    {"TRAFFIC_SEED", SS_CONF_INT, &cfg.seed, "1", 0, 0x7fffffffffffffffLL,
     "seed for routes and parcels (same seed = same traffic)", 0},
    {"TRAFFIC_TIMEOUT_MS", SS_CONF_INT, &cfg.timeout_ms, "30000", 100, 600000,
     "per-request timeout", 0},
    {"LOG_LEVEL", SS_CONF_STRING, &cfg.log_level, "info", 0, 0, "debug|info|warn|error", 0},
    {"LOG_FORMAT", SS_CONF_STRING, &cfg.log_format, "text", 0, 0, "json|text", 0},
};
#define NOPTS (sizeof OPTS / sizeof *OPTS)

typedef struct {
    const char *city, *state, *zip, *street;
} city_t;

static const city_t CITIES[] = {
    {"New York", "NY", "10001", "350 5th Ave"},
    {"Los Angeles", "CA", "90012", "200 N Spring St"},
    {"Chicago", "IL", "60602", "121 N LaSalle St"},
    {"Houston", "TX", "77002", "901 Bagby St"},
    {"Phoenix", "AZ", "85003", "200 W Washington St"},
    {"Philadelphia", "PA", "19107", "1400 John F Kennedy Blvd"},
    {"San Antonio", "TX", "78205", "100 Military Plz"},
    {"San Diego", "CA", "92101", "202 C St"},
    {"Dallas", "TX", "75201", "1500 Marilla St"},
    {"San Jose", "CA", "95113", "200 E Santa Clara St"},
    {"Austin", "TX", "78701", "301 W 2nd St"},
    {"Jacksonville", "FL", "32202", "117 W Duval St"},
    {"Columbus", "OH", "43215", "90 W Broad St"},
    {"Charlotte", "NC", "28202", "600 E 4th St"},
    {"Indianapolis", "IN", "46204", "200 E Washington St"},
    {"San Francisco", "CA", "94107", "388 Townsend St"},
    {"Seattle", "WA", "98104", "600 4th Ave"},
    {"Denver", "CO", "80202", "1437 Bannock St"},
    {"Nashville", "TN", "37201", "1 Public Sq"},
    {"Boston", "MA", "02201", "1 City Hall Sq"},
    {"Portland", "OR", "97204", "1221 SW 4th Ave"},
    {"Las Vegas", "NV", "89101", "495 S Main St"},
    {"Detroit", "MI", "48226", "2 Woodward Ave"},
    {"Memphis", "TN", "38103", "125 N Main St"},
    {"Atlanta", "GA", "30303", "55 Trinity Ave SW"},
    {"Miami", "FL", "33130", "3500 Pan American Dr"},
    {"Minneapolis", "MN", "55415", "350 S 5th St"},
    {"Kansas City", "MO", "64106", "414 E 12th St"},
    {"Salt Lake City", "UT", "84111", "451 S State St"},
    {"Redondo Beach", "CA", "90277", "179 N Harbor Dr"},
};
#define NCITIES (sizeof CITIES / sizeof *CITIES)

static const char *const NAMES[] = {"Jack Sparrow",     "Elizabeth Swan", "Will Turner",
                                    "Hector Barbossa",  "Joshamee Gibbs", "Tia Dalma",
                                    "James Norrington", "Anamaria"};

/* ---- stats -------------------------------------------------------------------- */

#define MAX_SAMPLES 2000000

typedef struct {
    pthread_mutex_t mu;
    double *lat; /* seconds */
    size_t n, cap;
    long by_status[600];
    long transport_errors;
} op_stats_t;

static op_stats_t g_create, g_buy;
static atomic_long g_started, g_late, g_ok_iterations, g_failed_iterations;

static void stats_add(op_stats_t *s, long status, double secs) {
    pthread_mutex_lock(&s->mu);
    if (status <= 0 || status >= 600)
        s->transport_errors++;
    else
        s->by_status[status]++;
    if (s->n == s->cap && s->cap < MAX_SAMPLES) {
        size_t nc = s->cap ? s->cap * 2 : 1024;
        double *nl = realloc(s->lat, nc * sizeof *nl);
        if (nl) {
            s->lat = nl;
            s->cap = nc;
        }
    }
    if (s->n < s->cap)
        s->lat[s->n++] = secs;
    pthread_mutex_unlock(&s->mu);
}

static void stats_report(const char *name, op_stats_t *s, ss_buf_t *json) {
    /* sorts s->lat: the maximum is then the last value */
    double p50 = ss_stats_percentile(s->lat, s->n, 50) * 1e3;
    double p90 = ss_stats_percentile_sorted(s->lat, s->n, 90) * 1e3;
    double p99 = ss_stats_percentile_sorted(s->lat, s->n, 99) * 1e3;
    long ok = 0, err = s->transport_errors;
    for (int i = 0; i < 600; i++) {
        if (i >= 200 && i < 300)
            ok += s->by_status[i];
        else
            err += s->by_status[i];
    }
    printf("%-7s requests %zu  ok %ld  errors %ld  latency ms p50 %.2f  p90 %.2f  p99 %.2f  max "
           "%.2f\n",
           name, s->n, ok, err, p50, p90, p99, s->n ? s->lat[s->n - 1] * 1e3 : 0.0);
    ss_buf_appendf(
        json,
        "\"%s\":{\"requests\":%zu,\"ok\":%ld,\"errors\":%ld,\"transport_errors\":%ld,"
        "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"by_status\":{",
        name, s->n, ok, err, s->transport_errors, p50, p90, p99,
        s->n ? s->lat[s->n - 1] * 1e3 : 0.0);
    int first = 1;
    for (int i = 0; i < 600; i++) {
        if (!s->by_status[i])
            continue;
        printf("        status %d: %ld\n", i, s->by_status[i]);
        ss_buf_appendf(json, "%s\"%d\":%ld", first ? "" : ",", i, s->by_status[i]);
        first = 0;
    }
    if (s->transport_errors)
        printf("        transport errors: %ld\n", s->transport_errors);
    ss_buf_appendf(json, "}}");
}

/* ---- HTTP ------------------------------------------------------------------------ */

static size_t sink(char *p, size_t size, size_t n, void *ud) {
    ss_buf_t *b = ud;
    if (b->len + size * n > 8u * 1024 * 1024)
        return 0;
    return ss_buf_append(b, p, size * n) == 0 ? size * n : 0;
}

static long post(CURL *h, const char *path, const char *body, const char *idem, ss_buf_t *out,
                 double *secs) {
    char url[1024], auth[600], idh[128];
    snprintf(url, sizeof url, "%s%s", cfg.url, path);
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
    hl = curl_slist_append(hl, "Expect:");
    if (cfg.key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", cfg.key);
        hl = curl_slist_append(hl, auth);
    }
    if (idem) {
        snprintf(idh, sizeof idh, "Idempotency-Key: %s", idem);
        hl = curl_slist_append(hl, idh);
    }
    ss_buf_reset(out);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)cfg.timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    int64_t t0 = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0 = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    CURLcode rc = curl_easy_perform(h);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    *secs = (double)((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - t0) / 1e9;
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    else
        SS_DEBUG("%s: %s", path, curl_easy_strerror(rc));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hl);
    return status;
}

/* Decimal string to integer micro-units, exactly; -1 when not a decimal. */
static long long micros(const char *s) {
    if (!s || !*s)
        return -1;
    long long whole = 0, frac = 0;
    int nf = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++)
        whole = whole * 10 + (*p - '0');
    if (p == s)
        return -1;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++)
            if (nf < 6) {
                frac = frac * 10 + (*p - '0');
                nf++;
            }
    }
    if (*p)
        return -1;
    while (nf++ < 6)
        frac *= 10;
    return whole * 1000000 + frac;
}

static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void build_body(long i, ss_buf_t *b) {
    uint64_t r = mix((uint64_t)cfg.seed * 1000003ULL + (uint64_t)i);
    size_t a = r % NCITIES, z = (r >> 8) % (NCITIES - 1);
    if (z >= a)
        z++;
    const city_t *from = &CITIES[a], *to = &CITIES[z];
    double weight = 2.0 + (double)((r >> 16) % 1200) / 10.0; /* 2..122 oz */
    int l = 6 + (int)((r >> 28) % 18), w = 4 + (int)((r >> 33) % 12), h = 2 + (int)((r >> 38) % 10);
    ss_buf_reset(b);
    ss_buf_appendf(
        b,
        "{\"shipment\":{\"from_address\":{\"name\":\"%s\",\"street1\":\"%s\",\"city\":\"%s\","
        "\"state\":\"%s\",\"zip\":\"%s\",\"country\":\"US\"},",
        NAMES[(r >> 44) % 8], from->street, from->city, from->state, from->zip);
    ss_buf_appendf(
        b,
        "\"to_address\":{\"name\":\"%s\",\"street1\":\"%s\",\"city\":\"%s\",\"state\":\"%s\","
        "\"zip\":\"%s\",\"country\":\"US\"},",
        NAMES[(r >> 50) % 8], to->street, to->city, to->state, to->zip);
    ss_buf_appendf(b,
                   "\"parcel\":{\"length\":%d,\"width\":%d,\"height\":%d,\"weight\":%.1f},"
                   "\"reference\":\"trafficgen-%ld\"}}",
                   l, w, h, weight, i);
}

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t g_t0;
static atomic_long g_next;
static long g_total;

static void *worker(void *ud) {
    (void)ud;
    CURL *h = curl_easy_init();
    ss_buf_t body = {0}, resp = {0};
    while (h && !ss_shutdown_requested()) {
        long i = atomic_fetch_add(&g_next, 1);
        if (i >= g_total)
            break;
        int64_t due = g_t0 + (int64_t)((double)i * 1e9 / (double)cfg.rate);
        int64_t now = mono_ns();
        if (due > now) {
            if (ss_shutdown_wait((int)((due - now) / 1000000)))
                break;
        } else if (now - due > 100000000) {
            atomic_fetch_add(&g_late, 1); /* started >100 ms late: the gateway is the bottleneck */
        }
        atomic_fetch_add(&g_started, 1);
        build_body(i, &body);
        double secs = 0;
        long st = post(h, "/v1/shipments", body.data, NULL, &resp, &secs);
        stats_add(&g_create, st, secs);
        if (st < 200 || st >= 300) {
            atomic_fetch_add(&g_failed_iterations, 1);
            continue;
        }
        if (!cfg.buy) {
            atomic_fetch_add(&g_ok_iterations, 1);
            continue;
        }
        json_object *o = json_tokener_parse(resp.data), *rates = NULL, *idv = NULL;
        const char *best_id = NULL;
        long long best = -1;
        char shp[128] = "", rate_id[128] = "";
        if (o && json_object_object_get_ex(o, "id", &idv))
            snprintf(shp, sizeof shp, "%s", json_object_get_string(idv));
        if (o && json_object_object_get_ex(o, "rates", &rates) &&
            json_object_is_type(rates, json_type_array)) {
            for (size_t k = 0; k < json_object_array_length(rates); k++) {
                json_object *rt = json_object_array_get_idx(rates, k), *rv = NULL, *ri = NULL;
                if (!json_object_object_get_ex(rt, "rate", &rv) ||
                    !json_object_object_get_ex(rt, "id", &ri))
                    continue;
                long long m = micros(json_object_get_string(rv));
                if (m >= 0 && (best < 0 || m < best)) {
                    best = m;
                    best_id = json_object_get_string(ri);
                }
            }
        }
        if (best_id)
            snprintf(rate_id, sizeof rate_id, "%s", best_id);
        if (o)
            json_object_put(o);
        if (!shp[0] || !rate_id[0]) {
            SS_WARN("shipment without rates or id; not buying");
            atomic_fetch_add(&g_failed_iterations, 1);
            continue;
        }
        char path[256], buy[256], idem[64];
        snprintf(path, sizeof path, "/v1/shipments/%s/buy", shp);
        snprintf(buy, sizeof buy, "{\"rate\":{\"id\":\"%s\"}}", rate_id);
        ss_random_id("tg_", idem, sizeof idem);
        st = post(h, path, buy, idem, &resp, &secs);
        stats_add(&g_buy, st, secs);
        atomic_fetch_add(st >= 200 && st < 300 ? &g_ok_iterations : &g_failed_iterations, 1);
    }
    ss_buf_free(&body);
    ss_buf_free(&resp);
    if (h)
        curl_easy_cleanup(h);
    return NULL;
}

int main(int argc, char **argv) {
    int conf_rc = ss_conf_main(argc, argv, "shipstream-trafficgen", SUMMARY, OPTS, NOPTS);
    if (conf_rc >= 0)
        return conf_rc;
    char err[256];
    if (ss_log_init("shipstream-trafficgen", cfg.log_level, cfg.log_format, err, sizeof err) != 0) {
        fprintf(stderr, "shipstream-trafficgen: %s\n", err);
        return 2;
    }
    if (ss_ep_url_check(cfg.url, err, sizeof err) != 0) {
        ss_log_kv(SS_LOG_ERROR, "configuration error", "variable", "GATEWAY_URL", "value", cfg.url,
                  "error", err, NULL);
        return 2;
    }
    size_t ul = strlen(cfg.url);
    while (ul > 0 && cfg.url[ul - 1] == '/')
        cfg.url[--ul] = '\0';
    curl_global_init(CURL_GLOBAL_DEFAULT);
    ss_shutdown_install();
    pthread_mutex_init(&g_create.mu, NULL);
    pthread_mutex_init(&g_buy.mu, NULL);
    g_total = (long)(cfg.rate * cfg.duration);
    g_t0 = mono_ns();
    ss_log(SS_LOG_INFO, "driving %s: %lld/s for %lld s on %lld connections (%ld iterations)",
           cfg.url, cfg.rate, cfg.duration, cfg.concurrency, g_total);
    pthread_t *th = calloc((size_t)cfg.concurrency, sizeof *th);
    int nth = 0;
    for (long long i = 0; i < cfg.concurrency; i++)
        if (pthread_create(&th[nth], NULL, worker, NULL) == 0)
            nth++;
    for (int i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    free(th);
    double elapsed = (double)(mono_ns() - g_t0) / 1e9;

    ss_buf_t json = {0};
    long ok = atomic_load(&g_ok_iterations), failed = atomic_load(&g_failed_iterations);
    printf("trafficgen: %ld iterations started in %.1f s (%.1f/s, target %lld/s, %ld started >100 "
           "ms late)\n",
           atomic_load(&g_started), elapsed, (double)atomic_load(&g_started) / elapsed, cfg.rate,
           atomic_load(&g_late));
    printf("            %ld succeeded, %ld failed\n", ok, failed);
    ss_buf_appendf(
        &json,
        "{\"started\":%ld,\"succeeded\":%ld,\"failed\":%ld,\"late\":%ld,\"elapsed_s\":%.3f,"
        "\"target_rate\":%lld,\"achieved_rate\":%.3f,",
        atomic_load(&g_started), ok, failed, atomic_load(&g_late), elapsed, cfg.rate,
        (double)atomic_load(&g_started) / elapsed);
    stats_report("create", &g_create, &json);
    ss_buf_appendf(&json, ",");
    stats_report("buy", &g_buy, &json);
    ss_buf_appendf(&json, "}");
    printf("%s\n", json.data);
    ss_buf_free(&json);
    free(g_create.lat);
    free(g_buy.lat);
    ss_conf_free(OPTS, NOPTS);
    curl_global_cleanup();
    return failed == 0 && ok > 0 ? 0 : 1;
}
