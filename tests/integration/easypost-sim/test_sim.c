/* Integration: the EasyPost client against a running easypost-sim.
 *
 *  - create -> buy -> retrieve, tracker create/retrieve, address verify,
 *    401 / 404 / 422, injected 429 retried, 500 passed through, a dropped
 *    buy reported as outcome unknown;
 *  - structure comparison: the sim's answers against the recorded EasyPost
 *    responses (every recorded key present, same JSON types recursively;
 *    null on either side matches anything, as EasyPost nulls most fields);
 *  - webhooks: a tiny receiver in this test verifies every X-Hmac-Signature
 *    with ss_webhook_verify (the receiver's own code), answers the first
 *    delivery 500 to force a retry, and waits for the tracker's terminal
 *    status with updated_at increasing.
 * Needs SS_BIN_DIR (easypost-sim) and SS_FIXTURES_DIR. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <civetweb.h>
#include <json-c/json.h>

#include <easypost/client.h>
#include <webhook/signature.h>

extern char **environ;

static int failures;
#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            failures++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
        }                                                                   \
    } while (0)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) != 0) {
        close(fd);
        return -1;
    }
    int p = ntohs(a.sin_port);
    close(fd);
    return p;
}

static char *slurp(const char *dir, const char *name, size_t *len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t r = fread(b, 1, (size_t)n, f);
    fclose(f);
    b[r] = '\0';
    if (len)
        *len = r;
    return b;
}

/* ---- structure comparison --------------------------------------------------- */

static const char *type_name(json_object *o) {
    switch (json_object_get_type(o)) {
    case json_type_null: return "null";
    case json_type_boolean: return "boolean";
    case json_type_int:
    case json_type_double: return "number";
    case json_type_string: return "string";
    case json_type_array: return "array";
    case json_type_object: return "object";
    }
    return "?";
}

static int compare(json_object *fix, json_object *sim, const char *path, const char *what) {
    if (!fix || !sim)
        return 0; /* null matches anything */
    const char *tf = type_name(fix), *ts = type_name(sim);
    if (strcmp(tf, ts) != 0) {
        fprintf(stderr, "FAIL structure %s: %s is %s in the recording, %s in the sim\n", what, path,
                tf, ts);
        failures++;
        return -1;
    }
    int rc = 0;
    char sub[512];
    if (json_object_is_type(fix, json_type_object)) {
        json_object_object_foreach(fix, k, v) {
            json_object *sv = NULL;
            snprintf(sub, sizeof sub, "%s.%s", path, k);
            if (!json_object_object_get_ex(sim, k, &sv)) {
                fprintf(stderr, "FAIL structure %s: %s missing in the sim\n", what, sub);
                failures++;
                rc = -1;
                continue;
            }
            if (compare(v, sv, sub, what) != 0)
                rc = -1;
        }
    } else if (json_object_is_type(fix, json_type_array)) {
        if (json_object_array_length(fix) > 0 && json_object_array_length(sim) > 0) {
            snprintf(sub, sizeof sub, "%s[0]", path);
            rc = compare(json_object_array_get_idx(fix, 0), json_object_array_get_idx(sim, 0), sub,
                         what);
        }
    }
    return rc;
}

static void compare_with_fixture(const char *fixture, const char *sim_body) {
    char *fb = slurp(getenv("SS_FIXTURES_DIR"), fixture, NULL);
    CHECK(fb != NULL, "fixture %s", fixture);
    json_object *f = fb ? json_tokener_parse(fb) : NULL;
    json_object *s = sim_body ? json_tokener_parse(sim_body) : NULL;
    CHECK(f && s, "parse %s", fixture);
    if (f && s && compare(f, s, "$", fixture) == 0)
        printf("ok structure %s\n", fixture);
    if (f)
        json_object_put(f);
    if (s)
        json_object_put(s);
    free(fb);
}

/* ---- webhook receiver -------------------------------------------------------- */

typedef struct {
    char status[32];
    char updated_at[40];
    char description[32];
} got_t;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static ss_webhook_key_t *g_key;
static char g_tracker[64];
static got_t g_got[64];
static int g_ngot, g_bad_sigs, g_total, g_failed_first;

static int on_webhook(struct mg_connection *c, void *ud) {
    (void)ud;
    char *body = malloc(1 << 20);
    size_t n = 0;
    int r;
    while (n < (1 << 20) - 1 && (r = mg_read(c, body + n, (1 << 20) - 1 - n)) > 0)
        n += (size_t)r;
    body[n] = '\0';
    const char *sig = mg_get_header(c, "X-Hmac-Signature");
    const ss_webhook_key_t *keys[1] = {g_key};
    int ok = ss_webhook_verify(keys, 1, sig, body, n) == SS_WEBHOOK_SIG_OK;
    int status = 200;
    pthread_mutex_lock(&g_mu);
    g_total++;
    if (!ok) {
        g_bad_sigs++;
        status = 401;
    } else if (!g_failed_first) {
        g_failed_first = 1; /* refuse the first one: the sim must retry it */
        status = 500;
    } else {
        json_object *e = json_tokener_parse(body), *res = NULL, *v = NULL;
        if (e && json_object_object_get_ex(e, "result", &res) &&
            json_object_object_get_ex(res, "id", &v) && g_tracker[0] &&
            strcmp(json_object_get_string(v), g_tracker) == 0 && g_ngot < 64) {
            got_t *g = &g_got[g_ngot++];
            json_object *d = NULL, *st = NULL, *up = NULL;
            json_object_object_get_ex(e, "description", &d);
            json_object_object_get_ex(res, "status", &st);
            json_object_object_get_ex(res, "updated_at", &up);
            snprintf(g->description, sizeof g->description, "%s",
                     d ? json_object_get_string(d) : "");
            snprintf(g->status, sizeof g->status, "%s", st ? json_object_get_string(st) : "");
            snprintf(g->updated_at, sizeof g->updated_at, "%s",
                     up ? json_object_get_string(up) : "");
            static int compared;
            if (!compared && !strcmp(g->description, "tracker.updated")) {
                compared = 1;
                /* the first tracker.updated of ours: compare with the recorded webhook body */
                pthread_mutex_unlock(&g_mu);
                char *fx = slurp(getenv("SS_FIXTURES_DIR"), "event-tracker-updated.json", NULL);
                json_object *fo = fx ? json_tokener_parse(fx) : NULL;
                if (fo && compare(fo, e, "$", "event-tracker-updated.json") == 0)
                    printf("ok structure event-tracker-updated.json\n");
                if (fo)
                    json_object_put(fo);
                free(fx);
                pthread_mutex_lock(&g_mu);
            }
        }
        if (e)
            json_object_put(e);
    }
    pthread_mutex_unlock(&g_mu);
    free(body);
    char head[128];
    int hl = snprintf(
        head, sizeof head,
        "HTTP/1.1 %d X\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}", status);
    mg_write(c, head, (size_t)hl);
    return status;
}

/* ---- sim process ---------------------------------------------------------------- */

static pid_t start_sim(int port, int hook_port) {
    char bin[512], listen[32], url[128];
    snprintf(bin, sizeof bin, "%s/easypost-sim", getenv("SS_BIN_DIR"));
    snprintf(listen, sizeof listen, "LISTEN=127.0.0.1:%d", port);
    snprintf(url, sizeof url, "SIM_WEBHOOK_URL=http://127.0.0.1:%d/hook", hook_port);
    char *env[] = {listen,
                   "EASYPOST_API_KEY=EZTK_integration",
                   "EASYPOST_WEBHOOK_SECRET=sécret",
                   url,
                   "SIM_TIME_SCALE=0.3",
                   "SIM_SEED=7",
                   "SIM_WEBHOOK_BACKOFF_MS=50",
                   "SIM_WEBHOOK_BACKOFF_MAX_MS=200",
                   "LOG_LEVEL=warn",
                   NULL};
    char *argv[] = {bin, NULL};
    pid_t pid;
    if (posix_spawn(&pid, bin, NULL, NULL, argv, env) != 0)
        return -1;
    return pid;
}

static ss_ep_client_t *client(int port, const char *key) {
    char base[64], err[128];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/v2", port);
    ss_ep_config_t cfg = {.api_base = base,
                          .api_key = key,
                          .max_retries = 2,
                          .backoff_base_ms = 10,
                          .backoff_max_ms = 50,
                          .timeout_ms = 5000};
    return ss_ep_client_new(&cfg, err, sizeof err);
}

static void post_faults(int port, const char *json) {
    /* the client has no raw POST outside /v2: use a second client on /sim */
    char base[64], err[128];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/sim", port);
    ss_ep_config_t cfg = {.api_base = base, .api_key = "x", .max_retries = -1};
    ss_ep_client_t *c = ss_ep_client_new(&cfg, err, sizeof err);
    ss_ep_result_t r;
    ss_ep_request(c, "POST", "/faults", json, 0, SS_EP_RETRY_NEVER_SENT, &r);
    CHECK(r.http_status == 200, "POST /sim/faults: %ld %s", r.http_status, r.body ? r.body : "");
    ss_ep_result_free(&r);
    ss_ep_client_free(c);
}

int main(void) {
    if (!getenv("SS_BIN_DIR") || !getenv("SS_FIXTURES_DIR")) {
        fprintf(stderr, "SS_BIN_DIR and SS_FIXTURES_DIR must be set\n");
        return 2;
    }
    char err[128];
    g_key = ss_webhook_key_new("sécret", err, sizeof err);
    if (!g_key) {
        fprintf(stderr, "key: %s\n", err);
        return 2;
    }
    /* webhook receiver */
    const char *opts[] = {"listening_ports", "127.0.0.1:0", "num_threads", "4", NULL};
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    struct mg_context *ctx = mg_start(&cb, NULL, opts);
    mg_set_request_handler(ctx, "/hook$", on_webhook, NULL);
    struct mg_server_port ports[2];
    mg_get_server_ports(ctx, 2, ports);
    int hook_port = ports[0].port;

    int port = free_port();
    pid_t pid = start_sim(port, hook_port);
    CHECK(pid > 0, "spawn easypost-sim");
    ss_ep_client_t *c = client(port, "EZTK_integration");
    ss_ep_result_t r;
    /* wait for it */
    double dl = now_s() + 10;
    int up = 0;
    while (now_s() < dl && !up) {
        ss_ep_shipment_retrieve(c, "shp_none", &r);
        up = r.http_status == 404;
        ss_ep_result_free(&r);
        if (!up)
            usleep(50000);
    }
    CHECK(up, "easypost-sim did not come up on port %d", port);
    if (!up)
        goto done;

    /* create */
    size_t len;
    char *req = slurp(getenv("SS_FIXTURES_DIR"), "api/shipment-create.request.json", &len);
    CHECK(ss_ep_shipment_create(c, req, len, &r) == 0, "create: %s", r.errstr);
    free(req);
    CHECK(r.http_status == 201, "create status %ld", r.http_status);
    compare_with_fixture("api/shipment-create.response.json", r.body);
    char shp_id[64] = "", rate_id[64] = "", cheapest[32] = "";
    snprintf(shp_id, sizeof shp_id, "%s",
             ss_ep_json_str(r.json, "id") ? ss_ep_json_str(r.json, "id") : "");
    CHECK(strncmp(shp_id, "shp_", 4) == 0, "shipment id %s", shp_id);
    json_object *rates = NULL;
    json_object_object_get_ex(r.json, "rates", &rates);
    int carriers_seen = 0;
    long long best = -1;
    for (size_t i = 0; rates && i < json_object_array_length(rates); i++) {
        json_object *rt = json_object_array_get_idx(rates, i);
        char m[32];
        CHECK(ss_ep_money_get(rt, "rate", m, sizeof m) == 1, "rate money");
        CHECK(strlen(m) > 6 && m[strlen(m) - 6] == '.', "5 decimals: %s", m);
        const char *car = ss_ep_json_str(rt, "carrier");
        if (car && (!strcmp(car, "USPS") || !strcmp(car, "UPS") || !strcmp(car, "FedEx")))
            carriers_seen |= !strcmp(car, "USPS") ? 1 : !strcmp(car, "UPS") ? 2 : 4;
        /* compare as integer cents (exact) */
        long long whole = 0, frac = 0;
        sscanf(m, "%lld.%2lld", &whole, &frac);
        long long cents = whole * 100 + frac;
        if (best < 0 || cents < best) {
            best = cents;
            snprintf(rate_id, sizeof rate_id, "%s", ss_ep_json_str(rt, "id"));
            snprintf(cheapest, sizeof cheapest, "%s", m);
        }
    }
    CHECK(carriers_seen == 7, "rates from USPS, UPS and FedEx (mask %d)", carriers_seen);
    ss_ep_result_free(&r);

    /* buy the cheapest */
    CHECK(ss_ep_shipment_buy_rate(c, shp_id, rate_id, &r) == 0, "buy: %s", r.errstr);
    compare_with_fixture("api/shipment-buy.response.json", r.body);
    json_object *sel = NULL, *trk = NULL, *pl = NULL;
    json_object_object_get_ex(r.json, "selected_rate", &sel);
    json_object_object_get_ex(r.json, "tracker", &trk);
    json_object_object_get_ex(r.json, "postage_label", &pl);
    char m[32];
    CHECK(ss_ep_money_get(sel, "rate", m, sizeof m) == 1 && strcmp(m, cheapest) == 0, "selected %s",
          m);
    CHECK(ss_ep_json_str(r.json, "tracking_code") != NULL, "tracking code");
    CHECK(ss_ep_json_str(pl, "label_url") != NULL, "label url");
    pthread_mutex_lock(&g_mu);
    snprintf(g_tracker, sizeof g_tracker, "%s",
             ss_ep_json_str(trk, "id") ? ss_ep_json_str(trk, "id") : "");
    pthread_mutex_unlock(&g_mu);
    CHECK(strncmp(g_tracker, "trk_", 4) == 0, "tracker id");
    ss_ep_result_free(&r);

    /* buying again: EasyPost's 422 */
    CHECK(ss_ep_shipment_buy_rate(c, shp_id, rate_id, &r) != 0 && r.http_status == 422 &&
              r.error_code && !strcmp(r.error_code, "SHIPMENT.POSTAGE.EXISTS"),
          "second buy: %ld", r.http_status);
    ss_ep_result_free(&r);

    /* retrieve */
    CHECK(ss_ep_shipment_retrieve(c, shp_id, &r) == 0, "retrieve: %s", r.errstr);
    CHECK(json_object_object_get_ex(r.json, "selected_rate", &sel) && sel, "retrieved is bought");
    ss_ep_result_free(&r);

    /* tracker create + retrieve */
    req = slurp(getenv("SS_FIXTURES_DIR"), "api/tracker-create.request.json", &len);
    CHECK(ss_ep_tracker_create(c, req, len, &r) == 0, "tracker create: %s", r.errstr);
    free(req);
    compare_with_fixture("api/tracker-create.response.json", r.body);
    char trk2[64];
    snprintf(trk2, sizeof trk2, "%s",
             ss_ep_json_str(r.json, "id") ? ss_ep_json_str(r.json, "id") : "x");
    ss_ep_result_free(&r);
    CHECK(ss_ep_tracker_retrieve(c, trk2, &r) == 0, "tracker retrieve: %s", r.errstr);
    compare_with_fixture("api/tracker-retrieve.response.json", r.body);
    ss_ep_result_free(&r);

    /* addresses */
    req = slurp(getenv("SS_FIXTURES_DIR"), "api/address-create-and-verify.request.json", &len);
    CHECK(ss_ep_address_create_and_verify(c, req, len, &r) == 0, "verify: %s", r.errstr);
    compare_with_fixture("api/address-create-and-verify.response.json", r.body);
    ss_ep_result_free(&r);
    CHECK(ss_ep_address_create(c, req, len, &r) == 0 && r.http_status == 201, "address create");
    ss_ep_result_free(&r);
    free(req);
    const char *bad_addr = "{\"address\":{\"street1\":\"1 UNDELIVERABLE WAY\",\"zip\":\"10001\"}}";
    CHECK(ss_ep_address_create_and_verify(c, bad_addr, 0, &r) != 0 && r.http_status == 422 &&
              r.n_field_errors == 1,
          "unverifiable address: %ld", r.http_status);
    ss_ep_result_free(&r);

    /* errors */
    CHECK(ss_ep_shipment_create(c, "{\"shipment\":{}}", 0, &r) != 0 && r.http_status == 422, "422");
    compare_with_fixture("api/error-422.response.json", r.body);
    CHECK(r.error_code && !strcmp(r.error_code, "PARAMETER.REQUIRED") && r.n_field_errors == 1 &&
              !strcmp(r.field_errors[0].field, "shipment"),
          "422 parsed");
    ss_ep_result_free(&r);
    CHECK(ss_ep_tracker_retrieve(c, "trk_doesnotexist", &r) != 0 && r.http_status == 404 &&
              r.error_code && !strcmp(r.error_code, "NOT_FOUND"),
          "404: %ld", r.http_status);
    ss_ep_result_free(&r);
    ss_ep_client_t *wrong = client(port, "EZTK_wrong");
    CHECK(ss_ep_shipment_retrieve(wrong, shp_id, &r) != 0 && r.http_status == 401 && r.error_code,
          "401: %ld", r.http_status);
    ss_ep_result_free(&r);
    ss_ep_client_free(wrong);

    /* faults: 429 retried to success, 500 passed through, dropped buy */
    post_faults(port, "{\"queue\":[\"429\"]}");
    CHECK(ss_ep_shipment_retrieve(c, shp_id, &r) == 0 && r.attempts == 2,
          "429 retried: attempts %d status %ld", r.attempts, r.http_status);
    ss_ep_result_free(&r);
    post_faults(port, "{\"queue\":[\"500\"]}");
    CHECK(ss_ep_shipment_retrieve(c, shp_id, &r) != 0 && r.http_status == 500 && r.attempts == 1 &&
              r.error_code && !strcmp(r.error_code, "INTERNAL_SERVER_ERROR"),
          "500 passed through: %ld attempts %d", r.http_status, r.attempts);
    ss_ep_result_free(&r);
    req = slurp(getenv("SS_FIXTURES_DIR"), "api/shipment-create.request.json", &len);
    ss_ep_shipment_create(c, req, len, &r);
    free(req);
    char shp2[64], rate2[64];
    json_object_object_get_ex(r.json, "rates", &rates);
    snprintf(shp2, sizeof shp2, "%s", ss_ep_json_str(r.json, "id"));
    snprintf(rate2, sizeof rate2, "%s", ss_ep_json_str(json_object_array_get_idx(rates, 0), "id"));
    ss_ep_result_free(&r);
    post_faults(port, "{\"queue\":[\"drop\"]}");
    CHECK(ss_ep_shipment_buy_rate(c, shp2, rate2, &r) != 0 && r.status == SS_EP_ERR_TRANSPORT &&
              r.outcome_unknown == 1 && r.attempts == 1,
          "dropped buy: %s attempts %d", ss_ep_status_name(r.status), r.attempts);
    ss_ep_result_free(&r);
    CHECK(ss_ep_shipment_retrieve(c, shp2, &r) == 0 && ss_ep_json_str(r.json, "tracking_code"),
          "the dropped buy was applied");
    ss_ep_result_free(&r);

    /* events list */
    CHECK(ss_ep_request(c, "GET", "/events?page_size=5", NULL, 0, SS_EP_RETRY_SAFE, &r) == 0,
          "events");
    compare_with_fixture("api/events-list.response.json", r.body);
    ss_ep_result_free(&r);

    /* webhooks: wait for the purchased tracker to reach a terminal status */
    dl = now_s() + 60;
    int done_ok = 0;
    while (now_s() < dl && !done_ok) {
        pthread_mutex_lock(&g_mu);
        for (int i = 0; i < g_ngot; i++)
            if (!strcmp(g_got[i].status, "delivered") || !strcmp(g_got[i].status, "failure") ||
                !strcmp(g_got[i].status, "return_to_sender"))
                done_ok = 1;
        pthread_mutex_unlock(&g_mu);
        if (!done_ok)
            usleep(100000);
    }
    pthread_mutex_lock(&g_mu);
    CHECK(done_ok, "terminal tracker status by webhook (%d events of ours, %d total)", g_ngot,
          g_total);
    CHECK(g_bad_sigs == 0, "%d webhooks failed ss_webhook_verify", g_bad_sigs);
    CHECK(g_failed_first, "a delivery was refused");
    int updated = 0;
    char last[40] = "";
    for (int i = 0; i < g_ngot; i++) {
        if (strcmp(g_got[i].description, "tracker.updated") != 0)
            continue;
        updated++;
        /* deliveries may overtake each other (several sender threads), but the
         * terminal one carries the latest updated_at */
        if (strcmp(g_got[i].updated_at, last) > 0)
            snprintf(last, sizeof last, "%s", g_got[i].updated_at);
    }
    CHECK(updated >= 3, "tracker.updated events: %d", updated);
    for (int i = 0; i < g_ngot; i++)
        printf("webhook %s %s %s\n", g_got[i].description, g_got[i].status, g_got[i].updated_at);
    pthread_mutex_unlock(&g_mu);

    /* the tracker reflects the final state */
    CHECK(ss_ep_tracker_retrieve(c, g_tracker, &r) == 0, "final tracker");
    json_object *det = NULL;
    json_object_object_get_ex(r.json, "tracking_details", &det);
    CHECK(det && json_object_array_length(det) >= 3, "tracking_details accumulate");
    CHECK(!strcmp(ss_ep_json_str(r.json, "updated_at"), last), "updated_at %s vs last webhook %s",
          ss_ep_json_str(r.json, "updated_at"), last);
    ss_ep_result_free(&r);

done:
    ss_ep_client_free(c);
    if (pid > 0) {
        kill(pid, SIGTERM);
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "easypost-sim exit status %d", st);
    }
    mg_stop(ctx);
    ss_webhook_key_free(g_key);
    ss_ep_thread_cleanup();
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("PASS easypost-sim integration\n");
    return 0;
}
