/* ss-sync-gen: writes sync-worker test streams and the final state a simple
 * model of them expects.
 *
 *   ss-sync-gen OUTDIR [--shipments N] [--seed S] [--dup PCT] [--ooo PCT]
 *                      [--poison] [--bench] [--tag T]
 *
 * OUTDIR/<topic>.tsv    "key<TAB>envelope" lines for ss-kafkactl produce
 * OUTDIR/expect_shipments.tsv   id|status|updated_at|total_cost|carrier|tracking_code|delivered_at|from_address_id
 * OUTDIR/expect_tracking.tsv    tracker_id|tracking event count
 * OUTDIR/expect_addresses.tsv   id|city|updated_at
 * OUTDIR/expect_counts.txt      unique_events duplicates_delivered ooo poison
 *
 * Every entity has versions with increasing updated_at.  The stream holds
 * each version once, plus --dup % re-deliveries (same event id, later in the
 * same key's order) and --ooo % older versions moved after a newer one.  The
 * model: the newest version of each object wins; duplicates and stale
 * versions change nothing; the shipment's status is its tracker's newest;
 * tracking events are the union of details.  --bench: N shipments, one
 * version each, nothing else. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <envelope/envelope.h>

typedef struct {
    char key[64];
    char *json; /* envelope */
} ev_t;

typedef struct {
    ev_t *ev;
    size_t n, cap;
} seq_t;

static unsigned long long rng = 88172645463325252ULL;
static unsigned rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng >> 11);
}

static void seq_push(seq_t *s, const char *key, char *json) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->ev = realloc(s->ev, s->cap * sizeof(*s->ev));
    }
    snprintf(s->ev[s->n].key, sizeof(s->ev[s->n].key), "%s", key);
    s->ev[s->n++].json = json;
}

static const int64_t BASE = 1735689600; /* 2025-01-01T00:00:00Z */

static void ts(int64_t t, char *buf, size_t n) {
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%S.000000Z", &tm);
}

/* EasyPost's own forms, varied on purpose. */
static void ts_ep(int64_t t, int form, char *buf, size_t n) {
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, n,
             form == 0   ? "%Y-%m-%dT%H:%M:%SZ"
             : form == 1 ? "%Y-%m-%dT%H:%M:%S+00:00"
                         : "%Y-%m-%dT%H:%M:%S.000Z",
             &tm);
}

static long long g_evt;
static char g_tag[32] = "t";

/* An envelope around object, through the production writer (libs/envelope):
 * event id evt_<tag>_<n>, received a second after upd. */
static char *envelope(const char *type, int64_t upd, const char *object) {
    char event_id[64];
    snprintf(event_id, sizeof(event_id), "evt_%s_%lld", g_tag, ++g_evt);
    ss_envelope_in_t in = {
        .source = SS_SOURCE_BACKFILL,
        .type = type,
        .event_id = event_id,
        .received_at_usec = (upd + 1) * 1000000,
        .object = {object, strlen(object)},
    };
    ss_envelope_msg_t m;
    char err[256];
    if (ss_envelope_write(&m, &in, err, sizeof(err)) != SS_ENVELOPE_OK) {
        fprintf(stderr, "ss-sync-gen: envelope writer: %s\n", err);
        exit(1);
    }
    char *s = malloc(m.value_len + 1);
    if (!s) {
        fprintf(stderr, "ss-sync-gen: out of memory\n");
        exit(1);
    }
    memcpy(s, m.value, m.value_len);
    s[m.value_len] = '\0';
    ss_envelope_msg_clear(&m);
    return s;
}

static const char *carriers[] = {"USPS", "UPS", "FedEx", "DHL"};
static const char *services[] = {"Ground", "Priority", "Express"};
static const char *cities[] = {"SPRINGFIELD", "PORTLAND", "AUSTIN", "DENVER", "SALEM"};
static const char *states[] = {"IL", "OR", "TX", "CO", "MA"};
static const char *tstatus[] = {"pre_transit", "in_transit", "out_for_delivery", "delivered"};

static void address_json(char *buf, size_t n, const char *id, const char *city, const char *state,
                         int64_t upd, const char *name) {
    char u[40], c[40];
    ts_ep(upd, 1, u, sizeof(u));
    ts_ep(upd - 3600, 1, c, sizeof(c));
    snprintf(buf, n,
             "{\"id\":\"%s\",\"object\":\"Address\",\"created_at\":\"%s\",\"updated_at\":\"%s\","
             "\"name\":\"%s\",\"company\":null,\"street1\":\"388 Townsend St\",\"street2\":\"\","
             "\"city\":\"%s\",\"state\":\"%s\",\"zip\":\"94107\",\"country\":\"US\","
             "\"phone\":null,\"email\":null,\"mode\":\"test\",\"carrier_facility\":null,"
             "\"residential\":true,\"federal_tax_id\":null,\"state_tax_id\":null,"
             "\"verifications\":{\"delivery\":{\"success\":true,\"errors\":[]}}}",
             id, c, u, name, city, state);
}

/* Moves an older version after a newer one; re-delivers events. */
static void disorder(seq_t *s, int ooo_pct, int dup_pct, long *nooo, long *ndup) {
    if (s->n >= 2 && (int)(rnd() % 100) < ooo_pct * 2) {
        size_t k = rnd() % (s->n - 1);
        ev_t t = s->ev[k];
        s->ev[k] = s->ev[k + 1];
        s->ev[k + 1] = t;
        (*nooo)++;
    }
    size_t orig = s->n;
    for (size_t i = 0; i < orig; i++) {
        if ((int)(rnd() % 100) >= dup_pct)
            continue;
        size_t at = i + 1 + rnd() % (s->n - i);
        seq_push(s, "", NULL); /* grow */
        memmove(&s->ev[at + 1], &s->ev[at], (s->n - 1 - at) * sizeof(ev_t));
        s->ev[at] = s->ev[i];
        s->ev[at].json = strdup(s->ev[i].json);
        (*ndup)++;
    }
}

/* Interleaves the keys' sequences at random, each key's order kept. */
static void write_topic(const char *dir, const char *topic, seq_t *seqs, size_t nseq) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.tsv", dir, topic);
    FILE *f = fopen(path, "w");
    size_t *pos = calloc(nseq ? nseq : 1, sizeof(*pos));
    size_t *live = malloc((nseq ? nseq : 1) * sizeof(*live));
    size_t nlive = 0;
    for (size_t i = 0; i < nseq; i++)
        if (seqs[i].n)
            live[nlive++] = i;
    while (nlive) {
        size_t j = rnd() % nlive, k = live[j];
        ev_t *e = &seqs[k].ev[pos[k]++];
        fprintf(f, "%s\t%s\n", e->key, e->json);
        free(e->json);
        if (pos[k] == seqs[k].n)
            live[j] = live[--nlive];
    }
    fclose(f);
    free(pos);
    free(live);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr,
                "usage: %s OUTDIR [--shipments N] [--seed S] [--dup PCT] [--ooo PCT] "
                "[--poison] [--bench] [--tag T]\n",
                argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    long nship = 2200;
    int dup = 10, ooo = 5, poison = 0, bench = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--shipments") && i + 1 < argc)
            nship = atol(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            rng += strtoull(argv[++i], NULL, 10) * 2654435761ULL;
        else if (!strcmp(argv[i], "--dup") && i + 1 < argc)
            dup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ooo") && i + 1 < argc)
            ooo = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tag") && i + 1 < argc)
            snprintf(g_tag, sizeof(g_tag), "%s", argv[++i]);
        else if (!strcmp(argv[i], "--poison"))
            poison = 1;
        else if (!strcmp(argv[i], "--bench"))
            bench = 1;
        else {
            fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (bench)
        dup = ooo = 0;
    char path[1024];
    snprintf(path, sizeof(path), "%s/expect_shipments.tsv", dir);
    FILE *es = fopen(path, "w");
    snprintf(path, sizeof(path), "%s/expect_tracking.tsv", dir);
    FILE *et = fopen(path, "w");
    snprintf(path, sizeof(path), "%s/expect_addresses.tsv", dir);
    FILE *ea = fopen(path, "w");
    if (!es || !et || !ea) {
        perror(dir);
        return 1;
    }

    seq_t *ships = calloc((size_t)nship + 8, sizeof(seq_t));
    seq_t *trks = calloc((size_t)nship, sizeof(seq_t));
    long naddr = bench ? 0 : 300;
    seq_t *addrs = calloc((size_t)naddr + 1, sizeof(seq_t));
    long nooo = 0, ndup = 0, unique = 0;
    static char obj[16384], from[1024], to[1024];

    /* shared "from" addresses: fixed content, one version */
    int nfrom = 50;
    for (int a = 0; a < nfrom; a++) {
        char u[40];
        ts(BASE + a, u, sizeof(u));
        fprintf(ea, "adr_%s_from%d|%s|%s\n", g_tag, a, cities[a % 5], u);
    }

    for (long i = 0; i < nship; i++) {
        char sid[64], tid[64], code[64];
        snprintf(sid, sizeof(sid), "shp_%s_%06ld", g_tag, i);
        snprintf(tid, sizeof(tid), "trk_%s_%06ld", g_tag, i);
        snprintf(code, sizeof(code), "EZ%s%06ld", g_tag, i);
        int64_t created = BASE + i * 37;
        int nv = bench ? 1 : 1 + (int)(rnd() % 3);
        int fa = (int)(i % nfrom);
        char fid[64], toid[64];
        snprintf(fid, sizeof(fid), "adr_%s_from%d", g_tag, fa);
        snprintf(toid, sizeof(toid), "adr_%s_to%06ld", g_tag, i);
        address_json(from, sizeof(from), fid, cities[fa % 5], states[fa % 5], BASE + fa, "SENDER");
        address_json(to, sizeof(to), toid, cities[(i + 2) % 5], states[(i + 2) % 5], created,
                     "RECIPIENT");
        int ci = (int)(rnd() % 4), si = (int)(rnd() % 3);
        char last_cost[32] = "", last_upd[40] = "";
        for (int v = 0; v < nv; v++) {
            int64_t upd = created + 60 * (v + 1);
            int cents = 500 + (int)(i % 700) + v * 13;
            char rate[32], c[40], u[40];
            snprintf(rate, sizeof(rate), "%d.%02d000", cents / 100, cents % 100);
            ts_ep(created, v % 3, c, sizeof(c));
            ts_ep(upd, v % 3, u, sizeof(u));
            snprintf(
                obj, sizeof(obj),
                "{\"id\":\"%s\",\"object\":\"Shipment\",\"mode\":\"test\",\"created_at\":\"%s\","
                "\"updated_at\":\"%s\",\"is_return\":false,\"status\":\"unknown\","
                "\"tracking_code\":\"%s\",\"reference\":\"ref-%ld\",\"batch_id\":null,"
                "\"refund_status\":null,\"usps_zone\":4,"
                "\"tracker\":{\"id\":\"%s\",\"object\":\"Tracker\"},"
                "\"from_address\":%s,\"to_address\":%s,"
                "\"parcel\":{\"id\":\"prcl_%s_%06ld\",\"object\":\"Parcel\",\"created_at\":\"%s\","
                "\"updated_at\":\"%s\",\"length\":10.0,\"width\":8.0,\"height\":4.0,"
                "\"predefined_package\":null,\"weight\":15.4,\"mode\":\"test\"},"
                "\"selected_rate\":{\"id\":\"rate_%s_%06ld\",\"object\":\"Rate\",\"created_at\":\"%"
                "s\","
                "\"updated_at\":\"%s\",\"mode\":\"test\",\"service\":\"%s\",\"carrier\":\"%s\","
                "\"rate\":\"%s\",\"currency\":\"USD\",\"retail_rate\":null,\"list_rate\":\"%s\","
                "\"delivery_days\":%d,\"delivery_date\":null,\"delivery_date_guaranteed\":false,"
                "\"est_delivery_days\":%d,\"shipment_id\":\"%s\",\"carrier_account_id\":\"ca_1\"},"
                "\"postage_label\":{\"id\":\"pl_%ld\",\"label_url\":\"https://example.com/l/"
                "%ld.png\"},"
                "\"fees\":[{\"object\":\"Fee\",\"type\":\"LabelFee\",\"amount\":\"0.01000\","
                "\"charged\":true,\"refunded\":false},{\"object\":\"Fee\",\"type\":\"PostageFee\","
                "\"amount\":\"%s\",\"charged\":true,\"refunded\":false}]}",
                sid, c, u, code, i, tid, from, to, g_tag, i, c, u, g_tag, i, c, u, services[si],
                carriers[ci], rate, rate, 1 + si, 1 + si, sid, i, i, rate);
            seq_push(&ships[i], sid, envelope("shipment.updated", upd, obj));
            unique++;
            snprintf(last_cost, sizeof(last_cost), "%d.%02d", (cents + 1) / 100, (cents + 1) % 100);
            ts(upd, last_upd, sizeof(last_upd));
        }
        /* trim trailing zeros of the cost like trim_scale() */
        char *dot = strchr(last_cost, '.');
        if (dot) {
            char *end = last_cost + strlen(last_cost) - 1;
            while (end > dot && *end == '0')
                *end-- = '\0';
            if (end == dot)
                *end = '\0';
        }
        char ca[40];
        ts(BASE + fa, ca, sizeof(ca));
        char tocreated[40];
        ts(created, tocreated, sizeof(tocreated));
        fprintf(ea, "%s|%s|%s\n", toid, cities[(i + 2) % 5], tocreated);
        (void)ca;

        const char *status = "unknown";
        char delivered[40] = "";
        if (!bench && rnd() % 100 < 80) {
            int nt = 1 + (int)(rnd() % 4);
            for (int v = 0; v < nt; v++) {
                int64_t upd = created + 3600 * (v + 1);
                char u[40], c[40], est[40], det[4096];
                ts_ep(upd, (v + 1) % 3, u, sizeof(u));
                ts_ep(created, 0, c, sizeof(c));
                ts_ep(created + 3 * 86400, 0, est, sizeof(est));
                size_t dl = 0;
                det[0] = '\0';
                for (int d = 0; d <= v; d++) {
                    char when[40];
                    ts_ep(created + 3600 * (d + 1) - 60, d % 3, when, sizeof(when));
                    dl += (size_t)snprintf(
                        det + dl, sizeof(det) - dl,
                        "%s{\"object\":\"TrackingDetail\",\"message\":\"step "
                        "%d\",\"description\":\"\","
                        "\"status\":\"%s\",\"status_detail\":\"status_update\",\"datetime\":\"%s\","
                        "\"source\":\"%s\",\"carrier_code\":\"\",\"tracking_location\":{\"object\":"
                        "\"TrackingLocation\",\"city\":\"%s\",\"state\":null,\"country\":\"US\","
                        "\"zip\":null}}",
                        d ? "," : "", d, tstatus[d], when, carriers[ci], cities[d % 5]);
                }
                snprintf(
                    obj, sizeof(obj),
                    "{\"id\":\"%s\",\"object\":\"Tracker\",\"mode\":\"test\",\"tracking_code\":\"%"
                    "s\","
                    "\"status\":\"%s\",\"status_detail\":\"status_update\",\"created_at\":\"%s\","
                    "\"updated_at\":\"%s\",\"signed_by\":null,\"weight\":null,"
                    "\"est_delivery_date\":\"%s\",\"shipment_id\":\"%s\",\"carrier\":\"%s\","
                    "\"tracking_details\":[%s],\"fees\":[],\"public_url\":null}",
                    tid, code, tstatus[v], c, u, est, sid, carriers[ci], det);
                seq_push(&trks[i], sid, envelope("tracker.updated", upd, obj));
                unique++;
            }
            status = tstatus[nt - 1];
            if (nt == 4)
                ts(created + 3600 * 4 - 60, delivered, sizeof(delivered));
            fprintf(et, "%s|%d\n", tid, nt);
        }
        fprintf(es, "%s|%s|%s|%s|%s|%s|%s|%s\n", sid, status, last_upd, last_cost, carriers[ci],
                code, delivered, fid);
        disorder(&ships[i], ooo, dup, &nooo, &ndup);
        disorder(&trks[i], ooo, dup, &nooo, &ndup);
    }

    for (long a = 0; a < naddr; a++) {
        char aid[64];
        snprintf(aid, sizeof(aid), "adr_%s_book%04ld", g_tag, a);
        int nv = 1 + (int)(rnd() % 3);
        char last[40] = "", city[64] = "";
        for (int v = 0; v < nv; v++) {
            int64_t upd = BASE + 1000 * a + 100 * v;
            snprintf(city, sizeof(city), "CITY%ld-V%d", a, v);
            address_json(obj, sizeof(obj), aid, city, "CA", upd, "BOOK");
            seq_push(&addrs[a], aid, envelope("address.updated", upd, obj));
            unique++;
            ts(upd, last, sizeof(last));
        }
        fprintf(ea, "%s|%s|%s\n", aid, city, last);
        disorder(&addrs[a], ooo, dup, &nooo, &ndup);
    }

    long npoison = 0;
    if (poison) {
        /* bad JSON, not an envelope, a money string that is not a number
         * (numeric cast: 22P02), an integer out of range (22003), a
         * timestamp that is not one (refused by the mapping). */
        const char *bad_rate = "{\"id\":\"shp_%s_poison1\",\"object\":\"Shipment\",\"updated_at\":"
                               "\"2025-01-01T00:00:00Z\","
                               "\"selected_rate\":{\"id\":\"rate_%s_p1\",\"rate\":\"12,50\","
                               "\"carrier\":\"USPS\",\"service\":\"Ground\"}}";
        const char *bad_zone = "{\"id\":\"shp_%s_poison2\",\"object\":\"Shipment\",\"updated_at\":"
                               "\"2025-01-01T00:00:00Z\",\"usps_zone\":99999999999}";
        const char *bad_time =
            "{\"id\":\"shp_%s_poison3\",\"object\":\"Shipment\",\"created_at\":\"yesterday\"}";
        char id[64];
        snprintf(obj, sizeof(obj), bad_rate, g_tag, g_tag);
        snprintf(id, sizeof(id), "shp_%s_poison1", g_tag);
        seq_push(&ships[nship], id, envelope("shipment.updated", BASE, obj));
        snprintf(obj, sizeof(obj), bad_zone, g_tag);
        snprintf(id, sizeof(id), "shp_%s_poison2", g_tag);
        seq_push(&ships[nship + 1], id, envelope("shipment.updated", BASE, obj));
        snprintf(obj, sizeof(obj), bad_time, g_tag);
        snprintf(id, sizeof(id), "shp_%s_poison3", g_tag);
        char *e = envelope("shipment.updated", BASE, obj);
        /* the envelope itself is fine (updated_at), the object's created_at is not */
        seq_push(&ships[nship + 2], id, e);
        seq_push(&ships[nship + 3], "poison4", strdup("{\"schema_version\":1,\"event_id\":"));
        seq_push(&ships[nship + 4], "poison5", strdup("{\"hello\":\"world\"}"));
        npoison = 5;
    }

    write_topic(dir, "shipments", ships, (size_t)nship + (poison ? 5 : 0));
    write_topic(dir, "trackers", trks, (size_t)nship);
    write_topic(dir, "addresses", addrs, (size_t)naddr);
    fclose(es);
    fclose(et);
    fclose(ea);
    snprintf(path, sizeof(path), "%s/expect_counts.txt", dir);
    FILE *fc = fopen(path, "w");
    fprintf(fc, "%ld %ld %ld %ld\n", unique, ndup, nooo, npoison);
    fclose(fc);
    fprintf(stderr,
            "generated %ld unique events, %ld duplicate deliveries, %ld moved out of order, %ld "
            "poison\n",
            unique, ndup, nooo, npoison);
    for (long i = 0; i < nship + 8; i++)
        free(ships[i].ev);
    for (long i = 0; i < nship; i++)
        free(trks[i].ev);
    for (long i = 0; i < naddr; i++)
        free(addrs[i].ev);
    free(ships);
    free(trks);
    free(addrs);
    return 0;
}
