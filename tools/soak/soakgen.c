/* ss-soak-gen: the traffic of the soak (tests/soak/soak.sh, `make soak`) and the
 * model of what was answered 2xx.
 *
 * Two open-loop schedules on one thread (libcurl multi):
 *  - signed EasyPost webhooks (tracker.updated) at --rate per second.  Every
 *    tracker goes through --versions versions (increasing updated_at, one more
 *    tracking detail each).  --dup % of the sends repeat an event already
 *    answered 2xx (same id, same bytes); --ooo % of the new versions are sent
 *    one ahead, and the older one is sent only after the newer was answered 2xx
 *    (an older version after a newer one).
 *  - gateway buys at --buy-rate per second: POST /v1/shipments, then
 *    POST /v1/shipments/{id}/buy with the cheapest rate and an Idempotency-Key.
 * Webhooks (at most --max-inflight at once) and gateway calls (at most 32)
 * wait in queues of their own, so a webhook backlog never delays the buys.
 * Every request not answered 2xx (an error status, a refused connection, a
 * timeout) is sent again after --retry-ms, as EasyPost does with webhooks and
 * a careful client with a keyed buy (same key).  A create that fails is sent
 * again too (a new shipment: the sim may hold the first one).
 *
 * After --duration seconds nothing new is scheduled; retries go on until every
 * request was answered 2xx or --drain seconds have passed.  Then the model is
 * written to --out:
 *   trackers.tsv   id  status  updated_at  tracking-detail-count   (the newest
 *                  version answered 2xx of each tracker)
 *   events.txt     the id of every webhook Event answered 2xx
 *   shipments.tsv  id  selected_rate_id  tracking_code   (every buy answered 2xx)
 *   created.txt    the id of every shipment whose create was answered 2xx
 *   pending.txt    what was still unanswered at the end (kind, id)
 *   uncertain.tsv  tracker id, version: sent, never answered 2xx, newer than
 *                  the model's (Kafka may hold it: PostgreSQL may show it)
 * and one line on stdout:
 *   SOAKGEN sent=N ok=N retried=N unresolved=N webhooks_sent=N webhooks_ok=N
 *     webhooks_retried=N dup_sent=N ooo_sent=N trackers=N events_ok=N
 *     creates_sent=N creates_ok=N buys_sent=N buys_ok=N gw_retried=N
 *     transport_errors=N max_queued=N elapsed_s=N status_<code>=N...
 * Secrets come from the environment (EASYPOST_WEBHOOK_SECRET, GATEWAY_API_KEY),
 * never argv.  Exit status 0 when nothing is unresolved, 1 otherwise, 2 on bad
 * arguments. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include <common/log.h>
#include <common/util.h>
#include <webhook/signature.h>

#define SOAK_MAX_STATUS 600
#define SOAK_RING       4096 /* recent 2xx events a duplicate is drawn from */
#define SOAK_ACTIVE     1000 /* trackers receiving versions at the same time */
#define SOAK_RESP_MAX   (4u << 20)

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 11);
}
static int chance(int pct) {
    return (int)(rnd() % 100u) < pct;
}

/* ------------------------------------------------------------------ options */

static struct {
    const char *webhook_url, *gateway_url, *out, *tag;
    double rate, buy_rate;
    int duration_s, drain_s, dup, ooo, versions, max_inflight, retry_ms;
    const char *secret, *gw_key;
    time_t t_base; /* created_at of every tracker (an hour before the start) */
} o;

static void usage(FILE *f) {
    fputs("usage: ss-soak-gen --webhook-url URL --gateway-url URL --out DIR --tag T\n"
          "                   [--rate 500] [--buy-rate 20] [--duration 600] [--drain 180]\n"
          "                   [--dup 5] [--ooo 5] [--versions 6] [--max-inflight 256]\n"
          "                   [--retry-ms 1000] [--seed N]\n"
          "Environment: EASYPOST_WEBHOOK_SECRET (signs), GATEWAY_API_KEY (Bearer).\n"
          "--rate 0 or --buy-rate 0 turns that traffic off.  See the head of\n"
          "tools/soak/soakgen.c for the model files and the summary line.\n",
          f);
}

static int arg_num(const char *name, const char *v, double min, double max, double *out) {
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(d) || d < min || d > max) {
        fprintf(stderr, "ss-soak-gen: %s: bad value '%s' (%g..%g)\n", name, v, min, max);
        return -1;
    }
    *out = d;
    return 0;
}

static int parse_args(int argc, char **argv) {
    o.rate = 500;
    o.buy_rate = 20;
    o.duration_s = 600;
    o.drain_s = 180;
    o.dup = 5;
    o.ooo = 5;
    o.versions = 6;
    o.max_inflight = 256;
    o.retry_ms = 1000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "ss-soak-gen: %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        double d;
        if (!strcmp(a, "--webhook-url"))
            o.webhook_url = v;
        else if (!strcmp(a, "--gateway-url"))
            o.gateway_url = v;
        else if (!strcmp(a, "--out"))
            o.out = v;
        else if (!strcmp(a, "--tag")) {
            if (strlen(v) == 0 || strlen(v) > 24 ||
                strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(v)) {
                fprintf(stderr, "ss-soak-gen: --tag: 1..24 of [a-z0-9]\n");
                return -1;
            }
            o.tag = v;
        } else {
            struct {
                const char *name;
                double min, max;
            } num[] = {{"--rate", 0, 100000},      {"--buy-rate", 0, 1000},
                       {"--duration", 1, 86400},   {"--drain", 0, 86400},
                       {"--dup", 0, 50},           {"--ooo", 0, 50},
                       {"--versions", 2, 50},      {"--max-inflight", 1, 4096},
                       {"--retry-ms", 10, 600000}, {"--seed", 1, 1e15}};
            size_t k = 0;
            for (; k < sizeof num / sizeof *num; k++)
                if (!strcmp(a, num[k].name))
                    break;
            if (k == sizeof num / sizeof *num) {
                fprintf(stderr, "ss-soak-gen: unknown argument '%s' (see --help)\n", a);
                return -1;
            }
            if (arg_num(a, v, num[k].min, num[k].max, &d) < 0)
                return -1;
            switch (k) {
            case 0: o.rate = d; break;
            case 1: o.buy_rate = d; break;
            case 2: o.duration_s = (int)d; break;
            case 3: o.drain_s = (int)d; break;
            case 4: o.dup = (int)d; break;
            case 5: o.ooo = (int)d; break;
            case 6: o.versions = (int)d; break;
            case 7: o.max_inflight = (int)d; break;
            case 8: o.retry_ms = (int)d; break;
            default: g_rng = (uint64_t)d * 0x9E3779B97F4A7C15ull | 1u; break;
            }
        }
    }
    if (!o.out || !o.tag || (o.rate > 0 && !o.webhook_url) || (o.buy_rate > 0 && !o.gateway_url)) {
        fprintf(stderr, "ss-soak-gen: --out, --tag and the URL of each traffic are required\n");
        return -1;
    }
    o.secret = getenv("EASYPOST_WEBHOOK_SECRET");
    o.gw_key = getenv("GATEWAY_API_KEY");
    if (o.rate > 0 && (!o.secret || !*o.secret)) {
        fprintf(stderr, "ss-soak-gen: EASYPOST_WEBHOOK_SECRET is not set\n");
        return -1;
    }
    if (o.buy_rate > 0 && (!o.gw_key || !*o.gw_key)) {
        fprintf(stderr, "ss-soak-gen: GATEWAY_API_KEY is not set\n");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ jobs */

enum { J_WEBHOOK, J_CREATE, J_BUY };
enum { W_NEW, W_DUP, W_OOO };

typedef struct {
    uint8_t kind;  /* J_* */
    uint8_t wkind; /* W_*: why this webhook is sent */
    uint8_t version;
    uint32_t tracker;
    uint32_t attempts;
    uint64_t not_before; /* retries */
    char shp[40], rate[40];
} job_t;

/* A growable FIFO of jobs. */
typedef struct {
    job_t *v;
    size_t head, len, cap;
} fifo_t;

static int fifo_push(fifo_t *q, const job_t *j) {
    if (q->len == q->cap) {
        size_t nc = q->cap ? q->cap * 2 : 1024;
        job_t *nv = malloc(nc * sizeof *nv);
        if (!nv)
            return -1;
        for (size_t i = 0; i < q->len; i++)
            nv[i] = q->v[(q->head + i) % q->cap];
        free(q->v);
        q->v = nv;
        q->head = 0;
        q->cap = nc;
    }
    q->v[(q->head + q->len) % q->cap] = *j;
    q->len++;
    return 0;
}
static job_t *fifo_front(fifo_t *q) {
    return q->len ? &q->v[q->head] : NULL;
}
static void fifo_pop(fifo_t *q) {
    q->head = (q->head + 1) % q->cap;
    q->len--;
}

/* Per tracker: the next version to send, the newest answered 2xx, and the
 * older version held back until a newer one was answered (0: none). */
typedef struct {
    uint8_t next_v, max_ok, held_v, held_after;
} tracker_t;

static tracker_t *g_trk;
static uint32_t g_ntrk, g_captrk;
static uint32_t g_active[SOAK_ACTIVE];
static uint32_t g_nactive;

static struct {
    uint32_t tracker;
    uint8_t version;
} g_ring[SOAK_RING];
static size_t g_ring_n;

/* Webhooks and gateway calls wait in queues of their own, with their own
 * limits on requests in flight: a webhook backlog (Kafka down) never delays
 * the buys, and the reverse. */
static fifo_t g_send, g_send_gw, g_retry_q;

/* ------------------------------------------------------------------ counts */

static struct {
    uint64_t sent, ok, retried;
    uint64_t wh_sent, wh_ok, wh_retried, dup_sent, ooo_sent;
    uint64_t creates_sent, creates_ok, buys_sent, buys_ok, gw_retried;
    uint64_t status[SOAK_MAX_STATUS], transport;
    uint64_t max_queued; /* the most requests waiting for a connection slot at once */
} c;

static FILE *g_events, *g_shipments, *g_created;

/* ------------------------------------------------------------------ bodies */

static const char *status_of(int v) {
    if (v == 1)
        return "pre_transit";
    if (v == o.versions)
        return "delivered";
    if (v == o.versions - 1)
        return "out_for_delivery";
    return "in_transit";
}

static void iso(time_t t, char *buf, size_t n) {
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static time_t updated_of(int v) {
    return o.t_base + 60 * v;
}

/* The Event of tracker t at version v: always the same bytes (duplicates). */
static int webhook_body(uint32_t t, int v, ss_buf_t *b) {
    char created[32], upd[32], det[32];
    iso(o.t_base, created, sizeof created);
    iso(updated_of(v), upd, sizeof upd);
    ss_buf_reset(b);
    int rc = ss_buf_appendf(
        b,
        "{\"id\":\"evt_%s_%" PRIu32
        "_%d\",\"object\":\"Event\",\"description\":\"tracker.updated\","
        "\"mode\":\"test\",\"status\":\"pending\",\"user_id\":\"user_soak\",\"created_at\":\"%s\","
        "\"updated_at\":\"%s\",\"previous_attributes\":{\"status\":\"%s\"},\"pending_urls\":[],"
        "\"completed_urls\":[],\"result\":{\"id\":\"trk_%s_%" PRIu32 "\",\"object\":\"Tracker\","
        "\"mode\":\"test\",\"tracking_code\":\"SOAK%sN%" PRIu32 "\",\"status\":\"%s\","
        "\"status_detail\":\"unknown\",\"created_at\":\"%s\",\"updated_at\":\"%s\","
        "\"signed_by\":null,\"weight\":null,\"est_delivery_date\":null,\"shipment_id\":null,"
        "\"carrier\":\"USPS\",\"fees\":[],\"tracking_details\":[",
        o.tag, t, v, upd, upd, status_of(v > 1 ? v - 1 : 1), o.tag, t, o.tag, t, status_of(v),
        created, upd);
    for (int k = 1; k <= v; k++) {
        iso(updated_of(k) - 30, det, sizeof det);
        rc |= ss_buf_appendf(
            b,
            "%s{\"object\":\"TrackingDetail\",\"message\":\"soak step %d\","
            "\"description\":\"\",\"status\":\"%s\",\"status_detail\":\"unknown\","
            "\"datetime\":\"%s\",\"source\":\"USPS\",\"carrier_code\":\"\","
            "\"tracking_location\":{\"object\":\"TrackingLocation\",\"city\":"
            "\"SOAK CITY %d\",\"state\":\"CA\",\"country\":\"US\",\"zip\":\"9%04d\"}}",
            k > 1 ? "," : "", k, status_of(k), det, k, k);
    }
    rc |= ss_buf_appendf(b, "]}}");
    return rc;
}

/* ------------------------------------------------------------------ schedule */

static int new_tracker(void) {
    if (g_ntrk == g_captrk) {
        uint32_t nc = g_captrk ? g_captrk * 2 : 65536;
        tracker_t *nt = realloc(g_trk, nc * sizeof *nt);
        if (!nt)
            return -1;
        g_trk = nt;
        g_captrk = nc;
    }
    memset(&g_trk[g_ntrk], 0, sizeof g_trk[g_ntrk]);
    g_trk[g_ntrk].next_v = 1;
    return (int)g_ntrk++;
}

/* One webhook slot of the schedule. */
static int schedule_webhook(void) {
    job_t j;
    memset(&j, 0, sizeof j);
    j.kind = J_WEBHOOK;
    if (g_ring_n > 0 && chance(o.dup)) {
        size_t k = rnd() % (g_ring_n < SOAK_RING ? g_ring_n : SOAK_RING);
        j.wkind = W_DUP;
        j.tracker = g_ring[k].tracker;
        j.version = g_ring[k].version;
        c.dup_sent++;
        return fifo_push(&g_send, &j);
    }
    while (g_nactive < SOAK_ACTIVE) {
        int t = new_tracker();
        if (t < 0)
            return -1;
        g_active[g_nactive++] = (uint32_t)t;
    }
    uint32_t slot = rnd() % g_nactive;
    uint32_t t = g_active[slot];
    tracker_t *tr = &g_trk[t];
    int v = tr->next_v++;
    if (v + 1 <= o.versions && chance(o.ooo)) {
        /* v+1 now; v once v+1 was answered 2xx */
        tr->held_v = (uint8_t)v;
        tr->held_after = (uint8_t)(v + 1);
        v = tr->next_v++;
    }
    j.wkind = W_NEW;
    j.tracker = t;
    j.version = (uint8_t)v;
    if (tr->next_v > o.versions) /* every version scheduled: a fresh tracker takes the slot */
        g_active[slot] = g_active[--g_nactive];
    return fifo_push(&g_send, &j);
}

static int schedule_buy(void) {
    job_t j;
    memset(&j, 0, sizeof j);
    j.kind = J_CREATE;
    return fifo_push(&g_send_gw, &j);
}

/* ------------------------------------------------------------------ transfers */

typedef struct {
    job_t job;
    CURL *e;
    struct curl_slist *hdrs;
    ss_buf_t body, resp;
} xfer_t;

#define SOAK_GW_INFLIGHT 32
static CURLM *g_m;
static int g_inflight, g_inflight_gw;
static ss_webhook_key_t *g_key;
static const char CREATE_BODY[] =
    "{\"shipment\":{\"from_address\":{\"name\":\"Jack Sparrow\",\"street1\":\"388 Townsend St\","
    "\"city\":\"San Francisco\",\"state\":\"CA\",\"zip\":\"94107\",\"country\":\"US\"},"
    "\"to_address\":{\"name\":\"Elizabeth Swan\",\"street1\":\"179 N Harbor Dr\",\"city\":"
    "\"Redondo Beach\",\"state\":\"CA\",\"zip\":\"90277\",\"country\":\"US\"},"
    "\"parcel\":{\"length\":10,\"width\":8,\"height\":4,\"weight\":15.4},\"reference\":\"soak\"}}";

static size_t on_data(char *p, size_t sz, size_t n, void *ud) {
    xfer_t *x = ud;
    size_t len = sz * n;
    if (x->resp.len + len > SOAK_RESP_MAX || ss_buf_append(&x->resp, p, len) != 0)
        return 0;
    return len;
}

static void xfer_free(xfer_t *x) {
    if (!x)
        return;
    if (x->e)
        curl_easy_cleanup(x->e);
    curl_slist_free_all(x->hdrs);
    ss_buf_free(&x->body);
    ss_buf_free(&x->resp);
    free(x);
}

static int start(const job_t *j) {
    xfer_t *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    x->job = *j;
    x->e = curl_easy_init();
    if (!x->e)
        goto fail;
    char url[512], h[256];
    if (j->kind == J_WEBHOOK) {
        if (webhook_body(j->tracker, j->version, &x->body) != 0)
            goto fail;
        char sig[SS_WEBHOOK_SIG_BUFSIZE];
        ss_webhook_sign(g_key, x->body.data, x->body.len, sig);
        snprintf(h, sizeof h, "X-Hmac-Signature: %s", sig);
        x->hdrs = curl_slist_append(x->hdrs, h);
        snprintf(url, sizeof url, "%s", o.webhook_url);
        curl_easy_setopt(x->e, CURLOPT_TIMEOUT_MS, 15000L);
        c.wh_sent++;
        if (j->wkind == W_OOO && j->attempts == 0)
            c.ooo_sent++;
    } else {
        snprintf(h, sizeof h, "Authorization: Bearer %s", o.gw_key);
        x->hdrs = curl_slist_append(x->hdrs, h);
        if (j->kind == J_CREATE) {
            if (ss_buf_append(&x->body, CREATE_BODY, sizeof CREATE_BODY - 1) != 0)
                goto fail;
            snprintf(url, sizeof url, "%s/v1/shipments", o.gateway_url);
            c.creates_sent++;
        } else {
            if (ss_buf_appendf(&x->body, "{\"rate\":{\"id\":\"%s\"}}", j->rate) != 0)
                goto fail;
            snprintf(url, sizeof url, "%s/v1/shipments/%s/buy", o.gateway_url, j->shp);
            snprintf(h, sizeof h, "Idempotency-Key: soak-%s-%s", o.tag, j->shp);
            x->hdrs = curl_slist_append(x->hdrs, h);
            c.buys_sent++;
        }
        curl_easy_setopt(x->e, CURLOPT_TIMEOUT_MS, 30000L);
    }
    x->hdrs = curl_slist_append(x->hdrs, "Content-Type: application/json");
    x->hdrs = curl_slist_append(x->hdrs, "Expect:");
    curl_easy_setopt(x->e, CURLOPT_URL, url);
    curl_easy_setopt(x->e, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(x->e, CURLOPT_POST, 1L);
    curl_easy_setopt(x->e, CURLOPT_POSTFIELDS, x->body.data);
    curl_easy_setopt(x->e, CURLOPT_POSTFIELDSIZE, (long)x->body.len);
    curl_easy_setopt(x->e, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(x->e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(x->e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->e, CURLOPT_PRIVATE, x);
    if (curl_multi_add_handle(g_m, x->e) != CURLM_OK)
        goto fail;
    c.sent++;
    if (j->attempts > 0) {
        c.retried++;
        if (j->kind == J_WEBHOOK)
            c.wh_retried++;
        else
            c.gw_retried++;
    }
    if (j->kind == J_WEBHOOK)
        g_inflight++;
    else
        g_inflight_gw++;
    return 0;
fail:
    xfer_free(x);
    return -1;
}

static void retry(job_t *j) {
    j->attempts++;
    j->not_before = now_ms() + (uint64_t)o.retry_ms;
    if (fifo_push(&g_retry_q, j) != 0)
        ss_log(SS_LOG_ERROR, "out of memory queueing a retry");
}

static const char *jstr(json_object *o_, const char *k) {
    json_object *v;
    if (!o_ || !json_object_object_get_ex(o_, k, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* The cheapest rate of a created shipment (decimal strings compared as numbers:
 * the sim's rates have two decimals). */
static int on_created(xfer_t *x) {
    json_object *root = json_tokener_parse(x->resp.data ? x->resp.data : "");
    const char *id = jstr(root, "id"), *best = NULL;
    double best_v = 0;
    json_object *rates;
    if (root && json_object_object_get_ex(root, "rates", &rates) &&
        json_object_is_type(rates, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(rates); i++) {
            json_object *r = json_object_array_get_idx(rates, i);
            const char *rid = jstr(r, "id"), *rv = jstr(r, "rate");
            if (!rid || !rv)
                continue;
            double v = strtod(rv, NULL);
            if (!best || v < best_v) {
                best = rid;
                best_v = v;
            }
        }
    }
    int rc = -1;
    if (id && best && strlen(id) < sizeof x->job.shp && strlen(best) < sizeof x->job.rate) {
        job_t j;
        memset(&j, 0, sizeof j);
        j.kind = J_BUY;
        snprintf(j.shp, sizeof j.shp, "%s", id);
        snprintf(j.rate, sizeof j.rate, "%s", best);
        fprintf(g_created, "%s\n", id);
        c.creates_ok++;
        rc = fifo_push(&g_send_gw, &j);
    }
    json_object_put(root);
    return rc;
}

static int on_bought(xfer_t *x) {
    json_object *root = json_tokener_parse(x->resp.data ? x->resp.data : ""), *sel;
    const char *id = jstr(root, "id"), *tc = jstr(root, "tracking_code"), *rid = NULL;
    if (root && json_object_object_get_ex(root, "selected_rate", &sel))
        rid = jstr(sel, "id");
    int rc = -1;
    if (id && tc && rid && !strcmp(id, x->job.shp)) {
        fprintf(g_shipments, "%s\t%s\t%s\n", id, rid, tc);
        c.buys_ok++;
        rc = 0;
    }
    json_object_put(root);
    return rc;
}

static void on_webhook_ok(const job_t *j) {
    tracker_t *tr = &g_trk[j->tracker];
    c.wh_ok++;
    if (j->wkind == W_DUP)
        return; /* its first 2xx was counted */
    fprintf(g_events, "evt_%s_%" PRIu32 "_%d\n", o.tag, j->tracker, j->version);
    if (j->version > tr->max_ok)
        tr->max_ok = j->version;
    size_t k = g_ring_n++ % SOAK_RING;
    g_ring[k].tracker = j->tracker;
    g_ring[k].version = j->version;
    if (tr->held_v && tr->held_after == j->version) {
        job_t old;
        memset(&old, 0, sizeof old);
        old.kind = J_WEBHOOK;
        old.wkind = W_OOO;
        old.tracker = j->tracker;
        old.version = tr->held_v;
        tr->held_v = 0;
        if (fifo_push(&g_send, &old) != 0)
            ss_log(SS_LOG_ERROR, "out of memory queueing an older version");
    }
}

static void finish(CURLMsg *msg) {
    xfer_t *x = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    curl_multi_remove_handle(g_m, msg->easy_handle);
    if (x->job.kind == J_WEBHOOK)
        g_inflight--;
    else
        g_inflight_gw--;
    long code = 0;
    if (msg->data.result == CURLE_OK)
        curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &code);
    if (code > 0 && code < SOAK_MAX_STATUS)
        c.status[code]++;
    else
        c.transport++;
    if (code >= 400 && code < 500) /* rare and never expected: say what and why */
        ss_log_kv(SS_LOG_WARN, "answered 4xx (sent again)", "kind",
                  x->job.kind == J_WEBHOOK  ? "webhook"
                  : x->job.kind == J_CREATE ? "create"
                                            : "buy",
                  SS_KV_INT("status", code), "body", x->resp.data ? x->resp.data : "", NULL);
    int ok = code >= 200 && code < 300;
    if (ok && x->job.kind == J_CREATE && on_created(x) != 0) {
        ss_log_kv(SS_LOG_WARN, "create answered 2xx without an id or rates", NULL);
        ok = 0;
    }
    if (ok && x->job.kind == J_BUY && on_bought(x) != 0) {
        ss_log_kv(SS_LOG_WARN, "buy answered 2xx without selected_rate or tracking_code",
                  "shipment", x->job.shp, NULL);
        ok = 0;
    }
    if (ok) {
        c.ok++;
        if (x->job.kind == J_WEBHOOK)
            on_webhook_ok(&x->job);
    } else {
        retry(&x->job);
    }
    xfer_free(x);
}

/* Starts the request at the head of q; 1 when it could not be started (it
 * is queued for a retry). */
static int start_next(fifo_t *q) {
    job_t j = *fifo_front(q);
    fifo_pop(q);
    if (start(&j) == 0)
        return 0;
    ss_log(SS_LOG_ERROR, "cannot start a transfer");
    retry(&j);
    return 1;
}

/* ------------------------------------------------------------------ main */

static FILE *open_out(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", o.out, name);
    FILE *f = fopen(path, "w");
    if (!f)
        ss_log_kv(SS_LOG_ERROR, "cannot write", "file", path, "error", strerror(errno), NULL);
    return f;
}

static void progress(uint64_t t0) {
    ss_log_kv(SS_LOG_INFO, "progress", SS_KV_INT("s", (now_ms() - t0) / 1000),
              SS_KV_INT("sent", c.sent), SS_KV_INT("ok", c.ok), SS_KV_INT("retried", c.retried),
              SS_KV_INT("inflight", g_inflight), SS_KV_INT("queued", g_send.len),
              SS_KV_INT("gw_inflight", g_inflight_gw), SS_KV_INT("gw_queued", g_send_gw.len),
              SS_KV_INT("retry_queue", g_retry_q.len), SS_KV_INT("transport_errors", c.transport),
              SS_KV_INT("status_503", c.status[503]), SS_KV_INT("buys_ok", c.buys_ok), NULL);
}

int main(int argc, char **argv) {
    if (parse_args(argc, argv) != 0)
        return 2;
    char err[256];
    ss_log_init("ss-soak-gen", "info", "text", err, sizeof err);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (o.rate > 0 && !(g_key = ss_webhook_key_new(o.secret, err, sizeof err))) {
        fprintf(stderr, "ss-soak-gen: EASYPOST_WEBHOOK_SECRET: %s\n", err);
        return 2;
    }
    o.t_base = time(NULL) - 3600;
    g_events = open_out("events.txt");
    g_shipments = open_out("shipments.tsv");
    g_created = open_out("created.txt");
    if (!g_events || !g_shipments || !g_created)
        return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g_m = curl_multi_init();
    curl_multi_setopt(g_m, CURLMOPT_MAXCONNECTS, (long)o.max_inflight + 16);

    uint64_t t0 = now_ms(), end = t0 + (uint64_t)o.duration_s * 1000u;
    uint64_t drain_end = end + (uint64_t)o.drain_s * 1000u, last_progress = t0;
    uint64_t wh_done = 0, buy_done = 0;
    int oom = 0, giving_up = 0;
    while (!g_stop) {
        uint64_t now = now_ms();
        /* Past the drain: nothing more is started, the requests in flight are
         * waited for (their own timeouts end them), so that what is left is
         * known: never answered 2xx, listed in pending.txt / uncertain.tsv. */
        if (now >= drain_end && !giving_up) {
            giving_up = 1;
            ss_log_kv(SS_LOG_WARN, "drain over: waiting for the requests in flight, starting none",
                      SS_KV_INT("inflight", g_inflight + g_inflight_gw), NULL);
        }
        if (giving_up && g_inflight + g_inflight_gw == 0)
            break;
        uint64_t upto = now < end ? now : end;
        uint64_t wh_due = (uint64_t)((double)(upto - t0) * o.rate / 1000.0);
        uint64_t buy_due = (uint64_t)((double)(upto - t0) * o.buy_rate / 1000.0);
        for (; wh_done < wh_due && !oom; wh_done++)
            oom = schedule_webhook() != 0;
        for (; buy_done < buy_due && !oom; buy_done++)
            oom = schedule_buy() != 0;
        if (oom) {
            ss_log(SS_LOG_ERROR, "out of memory");
            break;
        }
        for (job_t *j; (j = fifo_front(&g_retry_q)) && j->not_before <= now;) {
            oom |= fifo_push(j->kind == J_WEBHOOK ? &g_send : &g_send_gw, j) != 0;
            fifo_pop(&g_retry_q);
        }
        int failed = giving_up;
        while (!failed && g_inflight < o.max_inflight && g_send.len > 0)
            failed = start_next(&g_send);
        failed = giving_up;
        while (!failed && g_inflight_gw < SOAK_GW_INFLIGHT && g_send_gw.len > 0)
            failed = start_next(&g_send_gw);
        if (g_send.len + g_send_gw.len > c.max_queued)
            c.max_queued = g_send.len + g_send_gw.len;
        if (now >= end && g_inflight + g_inflight_gw == 0 && g_send.len + g_send_gw.len == 0 &&
            g_retry_q.len == 0)
            break;
        int running;
        curl_multi_perform(g_m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(g_m, &left)))
            if (msg->msg == CURLMSG_DONE)
                finish(msg);
        if (now - last_progress >= 10000) {
            progress(t0);
            last_progress = now;
        }
        curl_multi_poll(g_m, NULL, 0, 2, NULL);
    }
    progress(t0);

    /* What is left unanswered (interrupted or past the drain). */
    FILE *pend = open_out("pending.txt");
    uint64_t unresolved =
        (uint64_t)(g_inflight + g_inflight_gw) + g_send.len + g_send_gw.len + g_retry_q.len;
    fifo_t *qs[3] = {&g_send, &g_send_gw, &g_retry_q};
    for (int qi = 0; qi < 3 && pend; qi++)
        for (size_t i = 0; i < qs[qi]->len; i++) {
            job_t *j = &qs[qi]->v[(qs[qi]->head + i) % qs[qi]->cap];
            if (j->kind == J_WEBHOOK)
                fprintf(pend, "webhook\tevt_%s_%" PRIu32 "_%d\n", o.tag, j->tracker, j->version);
            else
                fprintf(pend, "%s\t%s\n", j->kind == J_CREATE ? "create" : "buy", j->shp);
        }
    if (pend && g_inflight + g_inflight_gw > 0)
        fprintf(pend, "inflight\t%d\n", g_inflight + g_inflight_gw);
    if (pend)
        fclose(pend);
    /* Versions sent but never answered 2xx, newer than the model's: Kafka may
     * hold them (a 503 after a timeout, a cut connection), so PostgreSQL may
     * show them.  The comparison reports those apart (unconfirmed). */
    FILE *uf = open_out("uncertain.tsv");
    for (int qi = 0; qi < 3 && uf; qi++)
        for (size_t i = 0; i < qs[qi]->len; i++) {
            job_t *j = &qs[qi]->v[(qs[qi]->head + i) % qs[qi]->cap];
            if (j->kind == J_WEBHOOK && j->attempts > 0 && j->version > g_trk[j->tracker].max_ok)
                fprintf(uf, "trk_%s_%" PRIu32 "\t%d\n", o.tag, j->tracker, j->version);
        }
    if (uf)
        fclose(uf);

    FILE *tf = open_out("trackers.tsv");
    uint64_t trackers = 0;
    for (uint32_t t = 0; tf && t < g_ntrk; t++) {
        int v = g_trk[t].max_ok;
        if (v == 0)
            continue;
        char upd[32];
        iso(updated_of(v), upd, sizeof upd);
        fprintf(tf, "trk_%s_%" PRIu32 "\t%s\t%s\t%d\n", o.tag, t, status_of(v), upd, v);
        trackers++;
    }
    if (tf)
        fclose(tf);
    fclose(g_events);
    fclose(g_shipments);
    fclose(g_created);

    printf("SOAKGEN sent=%" PRIu64 " ok=%" PRIu64 " retried=%" PRIu64 " unresolved=%" PRIu64
           " webhooks_sent=%" PRIu64 " webhooks_ok=%" PRIu64 " webhooks_retried=%" PRIu64
           " dup_sent=%" PRIu64 " ooo_sent=%" PRIu64 " trackers=%" PRIu64 " creates_sent=%" PRIu64
           " creates_ok=%" PRIu64 " buys_sent=%" PRIu64 " buys_ok=%" PRIu64 " gw_retried=%" PRIu64
           " transport_errors=%" PRIu64 " max_queued=%" PRIu64 " elapsed_s=%" PRIu64,
           c.sent, c.ok, c.retried, unresolved, c.wh_sent, c.wh_ok, c.wh_retried, c.dup_sent,
           c.ooo_sent, trackers, c.creates_sent, c.creates_ok, c.buys_sent, c.buys_ok, c.gw_retried,
           c.transport, c.max_queued, (now_ms() - t0) / 1000);
    for (int s = 0; s < SOAK_MAX_STATUS; s++)
        if (c.status[s])
            printf(" status_%d=%" PRIu64, s, c.status[s]);
    printf("\n");
    fflush(stdout);
    curl_multi_cleanup(g_m);
    ss_webhook_key_free(g_key);
    curl_global_cleanup();
    return unresolved == 0 ? 0 : 1;
}
