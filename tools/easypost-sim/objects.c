/* The in-memory EasyPost: shipments with rates, purchases, trackers,
 * addresses, events.  Shapes follow the recorded responses in
 * ../shared/fixtures/easypost/api/ field by field. */
#include "sim.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <time.h>

#include <common/log.h>
#include <common/sstime.h>

#define MAX_EVENTS_KEPT 100

/* A snapshot of the preloaded history's parameters. */
typedef struct {
    uint64_t seed;
    size_t n;
    int64_t end, span;
    const char *mode; /* of every preloaded object */
    uint64_t gen;     /* sim_t.preload_gen */
} preload_t;

/* ---- time ---------------------------------------------------------------- */

static void fmt_tm(int64_t usec, char *buf, size_t n, const char *suffix, int ms) {
    time_t secs = (time_t)(usec / 1000000);
    if (usec < 0 && usec % 1000000)
        secs--;
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    if (ms)
        snprintf(buf, n, "%s.%03dZ", base, (int)((usec / 1000) % 1000 + 1000) % 1000);
    else
        snprintf(buf, n, "%s%s", base, suffix);
}

void sim_fmt_z(int64_t usec, char *buf, size_t n) {
    fmt_tm(usec, buf, n, "Z", 0);
}
void sim_fmt_offset(int64_t usec, char *buf, size_t n) {
    fmt_tm(usec, buf, n, "+00:00", 0);
}
void sim_fmt_ms(int64_t usec, char *buf, size_t n) {
    fmt_tm(usec, buf, n, "Z", 1);
}

/* ---- mode ------------------------------------------------------------------- */

static __thread const char *t_mode;

void sim_set_request_mode(const char *mode) {
    t_mode = mode;
}

static const char *cur_mode(void) {
    return t_mode ? t_mode : "test";
}

const char *sim_mode_for_key(const char *key, size_t len) {
    if ((len >= 4 && strncmp(key, "EZTK", 4) == 0) || (len >= 4 && strncmp(key, "test", 4) == 0))
        return "test";
    return "production";
}

/* ---- ids and randomness ---------------------------------------------------- */

uint64_t sim_hash(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

void sim_new_id_locked(sim_t *s, const char *prefix, char *buf, size_t n) {
    uint64_t c = ++s->counter;
    uint64_t a = sim_hash(s->seed ^ (c * 0x2545f4914f6cdd1dULL));
    uint64_t b = sim_hash(a ^ c);
    snprintf(buf, n, "%s%016llx%016llx", prefix, (unsigned long long)a, (unsigned long long)b);
}

static uint64_t next_rand_locked(sim_t *s) {
    return sim_hash(s->seed ^ (++s->counter * 0x632be59bd9b4e019ULL));
}

/* ---- json helpers ---------------------------------------------------------- */

static json_object *jstr(const char *v) {
    return v ? json_object_new_string(v) : NULL;
}

/* A double that prints like EasyPost's ("10.0", "15.4"), never through %.17g noise. */
static json_object *jdouble(double d) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.15g", d);
    if (!strpbrk(buf, ".eEn"))
        strncat(buf, ".0", sizeof buf - strlen(buf) - 1);
    return json_object_new_double_s(d, buf);
}

static json_object *get(json_object *o, const char *k) {
    json_object *v = NULL;
    if (o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, k, &v))
        return v;
    return NULL;
}

static const char *gstr(json_object *o, const char *k) {
    json_object *v = get(o, k);
    return (v && json_object_is_type(v, json_type_string)) ? json_object_get_string(v) : NULL;
}

static int gnum(json_object *o, const char *k, double *out) {
    json_object *v = get(o, k);
    if (!v || !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
        return 0;
    *out = json_object_get_double(v);
    return isfinite(*out);
}

static void add(json_object *o, const char *k, json_object *v) {
    json_object_object_add(o, k, v);
}

static char *dup_json(json_object *o) {
    return strdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* {"<key>": o} serialised (malloc'd). */
static char *wrap_dup(const char *key, json_object *o) {
    json_object *w = json_object_new_object();
    add(w, key, json_object_get(o));
    char *r = dup_json(w);
    json_object_put(w);
    return r;
}

char *sim_error_json(const char *code, const char *message, const char *field,
                     const char *field_message) {
    json_object *root = json_object_new_object(), *err = json_object_new_object();
    json_object *errors = json_object_new_array();
    add(err, "code", jstr(code));
    add(err, "message", jstr(message));
    if (field || field_message) {
        json_object *fe = json_object_new_object();
        if (field)
            add(fe, "field", jstr(field));
        add(fe, "message", jstr(field_message));
        json_object_array_add(errors, fe);
    }
    add(err, "errors", errors);
    add(root, "error", err);
    char *out = dup_json(root);
    json_object_put(root);
    return out;
}

static int err422(char **out, const char *field) {
    *out = sim_error_json("PARAMETER.REQUIRED", "Missing required parameter.", field,
                          "cannot be blank");
    return 422;
}

static int err402(char **out) {
    *out = sim_error_json("PAYMENT.INSUFFICIENT_FUNDS",
                          "Insufficient funds: your balance does not cover this purchase. Add "
                          "funds and try again.",
                          NULL, NULL);
    return 402;
}

/* "8.20000" -> 820: cents of a non-negative money string (past the second
 * decimal ignored); 0 for NULL or garbage. */
static int64_t money_cents(const char *v) {
    int64_t c = 0;
    if (!v)
        return 0;
    for (; isdigit((unsigned char)*v) && c < INT64_MAX / 1000; v++)
        c = c * 10 + (*v - '0');
    c *= 100;
    if (*v == '.' && isdigit((unsigned char)v[1])) {
        c += (v[1] - '0') * 10;
        if (isdigit((unsigned char)v[2]))
            c += v[2] - '0';
    }
    return c;
}

/* 0 and the balance lowered by cents, or -1 (balance unchanged) when it does not cover it. */
static int funds_take_locked(sim_t *s, int64_t cents) {
    if (!s->funds_limited)
        return 0;
    if (s->funds_cents < cents)
        return -1;
    s->funds_cents -= cents;
    return 0;
}

static void funds_credit_locked(sim_t *s, int64_t cents) {
    if (s->funds_limited)
        s->funds_cents += cents;
}

void sim_funds_set(sim_t *s, int64_t cents) {
    pthread_mutex_lock(&s->mu);
    s->funds_limited = cents >= 0;
    s->funds_cents = cents >= 0 ? cents : 0;
    pthread_mutex_unlock(&s->mu);
}

char *sim_funds_json(sim_t *s) {
    char buf[96];
    pthread_mutex_lock(&s->mu);
    if (s->funds_limited)
        snprintf(buf, sizeof buf, "{\"balance\":\"%lld.%02lld000\",\"unlimited\":false}",
                 (long long)(s->funds_cents / 100), (long long)(s->funds_cents % 100));
    else
        snprintf(buf, sizeof buf, "{\"balance\":null,\"unlimited\":true}");
    pthread_mutex_unlock(&s->mu);
    return strdup(buf);
}

static void batch_refresh_locked(sim_t *s, json_object *b);
static char *event_locked(sim_t *s, const char *description, json_object *result,
                          const char *prev_status, int64_t t);

static int err404(char **out) {
    *out = sim_error_json("NOT_FOUND", "The requested resource could not be found.", NULL, NULL);
    return 404;
}

/* Its updated_at becomes now, as on every change of an EasyPost object (readers keep the
 * newest version by it). */
static void touch_locked(json_object *o, int64_t now) {
    char ts[40];
    sim_fmt_z(now, ts, sizeof ts);
    add(o, "updated_at", jstr(ts));
}

/* How a handler that has changed objects under s->mu ends (finish_locked). */
typedef struct {
    json_object *answer;     /* serialised into *out */
    const char *wrap;        /* answer as {"<wrap>": answer}; NULL: bare */
    const char *event;       /* Event recorded about subject (event_locked); NULL: none */
    json_object *subject;    /* NULL: answer */
    const char *prev_status; /* the Event's previous_attributes.status; NULL: none */
    json_object *release;    /* a reference the caller gives up, dropped under the lock */
    int status;
} sim_finish_t;

/* The tail every mutation handler shares: records f->event (stamped now), writes the answer
 * to *out, drops f->release, releases s->mu and only then queues the Event's webhook (so the
 * answer is built before any receiver can see the change).  Returns f->status. */
static int finish_locked(sim_t *s, const sim_finish_t *f, int64_t now, char **out) {
    char *ev = f->event ? event_locked(s, f->event, f->subject ? f->subject : f->answer,
                                       f->prev_status, now)
                        : NULL;
    if (s->scratch)
        *out = NULL; /* preload_build reads the objects, not the answer */
    else
        *out = f->wrap ? wrap_dup(f->wrap, f->answer) : dup_json(f->answer);
    if (f->release)
        json_object_put(f->release);
    pthread_mutex_unlock(&s->mu);
    if (ev)
        sim_schedule_delivery(s, ev);
    return f->status;
}

/* ---- store ------------------------------------------------------------------ */

/* One entry of the preloaded objects' cache (preload_json). */
/* At most ~15 KB a slot (shipment + tracker), filled only as objects are listed: at least
 * 8,192 slots (~125 MB), and as many as the preload has up to 32,768 (~500 MB), so that a
 * second walk (a benchmark's warm-up, then its timed backfill) costs the sim no JSON work. */
#define SIM_PCACHE_MIN 8192
#define SIM_PCACHE_MAX 32768
struct sim_pcache_slot {
    uint64_t gen; /* 0: empty (preload_gen starts at 1) */
    size_t i;
    char *json[2]; /* SIM_KIND_SHIPMENT, SIM_KIND_TRACKER */
};

static void pcache_free(sim_t *s) {
    if (!s->pcache)
        return;
    for (size_t k = 0; k < s->pcache_slots; k++) {
        free(s->pcache[k].json[0]);
        free(s->pcache[k].json[1]);
    }
    free(s->pcache);
    s->pcache = NULL;
    s->pcache_slots = 0;
}

int sim_init(sim_t *s, uint64_t seed, size_t max_objects) {
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->pcmu, NULL);
    s->pcache = NULL;
    s->pcache_slots = 0;
    s->scratch = 0;
    s->objects = json_object_new_object();
    s->events = json_object_new_array();
    s->ring_cap = max_objects < 16 ? 16 : max_objects;
    s->ring = calloc(s->ring_cap, sizeof(char *));
    s->seed = seed;
    for (int k = 0; k < SIM_NKINDS; k++) {
        s->index[k].pos = json_object_new_object();
        if (!s->index[k].pos)
            return -1;
    }
    if (!s->objects || !s->events || !s->ring)
        return -1;
    uint64_t u = sim_hash(seed ^ 0x75736572ULL);
    snprintf(s->user_id, sizeof s->user_id, "user_%016llx%016llx", (unsigned long long)u,
             (unsigned long long)sim_hash(u));
    return 0;
}

void sim_destroy(sim_t *s) {
    if (s->ring) {
        for (size_t i = 0; i < s->ring_len; i++)
            free(s->ring[(s->ring_head + i) % s->ring_cap]);
        free(s->ring);
    }
    if (s->objects)
        json_object_put(s->objects);
    if (s->events)
        json_object_put(s->events);
    for (int k = 0; k < SIM_NKINDS; k++) {
        free(s->index[k].v);
        if (s->index[k].pos)
            json_object_put(s->index[k].pos);
    }
    pcache_free(s);
    pthread_mutex_destroy(&s->pcmu);
    pthread_mutex_destroy(&s->mu);
}

/* Stores obj under id (takes the caller's reference); evicts the oldest
 * entry when full. */
static void store_put_locked(sim_t *s, const char *id, json_object *obj) {
    if (s->ring_len == s->ring_cap) {
        char *old = s->ring[s->ring_head];
        json_object_object_del(s->objects, old);
        free(old);
        s->ring_head = (s->ring_head + 1) % s->ring_cap;
        s->ring_len--;
    }
    json_object_object_add(s->objects, id, obj);
    s->ring[(s->ring_head + s->ring_len) % s->ring_cap] = strdup(id);
    s->ring_len++;
}

static json_object *store_get_locked(sim_t *s, const char *id) {
    json_object *v = NULL;
    return json_object_object_get_ex(s->objects, id, &v) ? v : NULL;
}

/* Appends a live object to its kind's creation order. */
static void index_add_locked(sim_t *s, int kind, const char *id, int64_t created) {
    sim_index_t *ix = &s->index[kind];
    if (ix->len == ix->cap) {
        /* Full: drop the evicted entries first, and grow only when more than
         * half are live.  The index then stays within twice the number of
         * live objects (bounded by SIM_MAX_OBJECTS) at O(1) amortised cost. */
        size_t w = 0;
        for (size_t r = 0; r < ix->len; r++)
            if (store_get_locked(s, ix->v[r].id))
                ix->v[w++] = ix->v[r];
        if (w < ix->len) {
            json_object_put(ix->pos);
            ix->pos = json_object_new_object();
            for (size_t r = 0; r < w; r++)
                json_object_object_add(ix->pos, ix->v[r].id, json_object_new_int64((int64_t)r));
            ix->len = w;
        }
        if (ix->cap == 0 || ix->len * 2 > ix->cap) {
            size_t nc = ix->cap ? ix->cap * 2 : 1024;
            sim_ix_ent_t *nv = realloc(ix->v, nc * sizeof *nv);
            if (!nv)
                return; /* not listed; still retrievable */
            ix->v = nv;
            ix->cap = nc;
        }
    }
    sim_ix_ent_t *e = &ix->v[ix->len];
    e->created_usec = created;
    snprintf(e->id, sizeof e->id, "%s", id);
    json_object_object_add(ix->pos, id, json_object_new_int64((int64_t)ix->len));
    ix->len++;
}

/* ---- addresses ------------------------------------------------------------ */

static json_object *address_new_locked(sim_t *s, json_object *a, int64_t now) {
    char id[48], ts[40];
    sim_new_id_locked(s, "adr_", id, sizeof id);
    sim_fmt_offset(now, ts, sizeof ts);
    json_object *o = json_object_new_object();
    add(o, "id", jstr(id));
    add(o, "object", jstr("Address"));
    add(o, "created_at", jstr(ts));
    add(o, "updated_at", jstr(ts));
    static const char *const fields[] = {"name",  "company", "street1", "street2", "city",
                                         "state", "zip",     "country", "phone",   "email"};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        const char *v = gstr(a, fields[i]);
        if (!v && strcmp(fields[i], "country") == 0)
            v = "US";
        add(o, fields[i], jstr(v));
    }
    add(o, "mode", jstr(cur_mode()));
    add(o, "carrier_facility", jstr(gstr(a, "carrier_facility")));
    json_object *res = get(a, "residential");
    add(o, "residential",
        res && json_object_is_type(res, json_type_boolean) ? json_object_get(res) : NULL);
    add(o, "federal_tax_id", jstr(gstr(a, "federal_tax_id")));
    add(o, "state_tax_id", jstr(gstr(a, "state_tax_id")));
    add(o, "verifications", json_object_new_object());
    return o;
}

static int zip5(const char *zip) {
    if (!zip)
        return -1;
    for (int i = 0; i < 5; i++)
        if (!isdigit((unsigned char)zip[i]))
            return -1;
    return atoi((char[6]){zip[0], zip[1], zip[2], zip[3], zip[4], 0});
}

static void upcase_field(json_object *o, const char *k) {
    const char *v = gstr(o, k);
    if (!v)
        return;
    char *u = strdup(v);
    for (char *p = u; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    add(o, k, json_object_new_string(u));
    free(u);
}

static const char *time_zone_for(int z) {
    int d = z / 10000;
    return d <= 4   ? "America/New_York"
           : d <= 7 ? "America/Chicago"
           : d == 8 ? "America/Denver"
                    : "America/Los_Angeles";
}

/* Verifies the Address object in place (EasyPost style: upper case, street2
 * folded into street1, ZIP+4, verifications).  Returns 0, or -1 when the
 * address cannot be verified (no street1, no 5-digit zip, or "UNDELIVERABLE"
 * in street1). */
static int address_verify_locked(json_object *o, int64_t now) {
    const char *street1 = gstr(o, "street1");
    int z = zip5(gstr(o, "zip"));
    if (!street1 || !*street1 || z < 0 || strcasestr(street1, "undeliverable"))
        return -1;
    const char *street2 = gstr(o, "street2");
    if (street2 && *street2) {
        char joined[512];
        snprintf(joined, sizeof joined, "%s %s", street1, street2);
        add(o, "street1", json_object_new_string(joined));
    }
    add(o, "street2", json_object_new_string(""));
    upcase_field(o, "name");
    upcase_field(o, "street1");
    upcase_field(o, "city");
    uint64_t h = sim_hash(hash_str(json_object_get_string(get(o, "street1"))) ^ (uint64_t)z);
    char zip[16], ts[40];
    snprintf(zip, sizeof zip, "%05d-%04d", z, (int)(h % 10000));
    add(o, "zip", json_object_new_string(zip));
    add(o, "residential", json_object_new_boolean((h >> 20) & 1));
    sim_fmt_offset(now, ts, sizeof ts);
    add(o, "updated_at", json_object_new_string(ts));

    json_object *ver = json_object_new_object();
    json_object *zip4 = json_object_new_object();
    add(zip4, "success", json_object_new_boolean(1));
    add(zip4, "errors", json_object_new_array());
    add(zip4, "details", NULL);
    json_object *del = json_object_new_object();
    add(del, "success", json_object_new_boolean(1));
    add(del, "errors", json_object_new_array());
    json_object *det = json_object_new_object();
    /* Rough but stable: ZIPs grow east to west. */
    double lat = 26.0 + (double)((h >> 8) % 2200) / 100.0;
    double lon = -70.5 - (double)z / 99999.0 * 52.0;
    add(det, "latitude", jdouble(round(lat * 100000) / 100000));
    add(det, "longitude", jdouble(round(lon * 100000) / 100000));
    add(det, "time_zone", jstr(time_zone_for(z)));
    add(del, "details", det);
    add(ver, "zip4", zip4);
    add(ver, "delivery", del);
    add(o, "verifications", ver);
    return 0;
}

/* 422 ADDRESS.VERIFY.FAILURE with EasyPost's error details (code, field,
 * message, suggestion), as in test_address_verify_invalid_address: the
 * house number one only when street1 does not start with a number. */
static int verify_fail(char **out, const char *street1) {
    json_object *root = json_object_new_object(), *err = json_object_new_object();
    json_object *errors = json_object_new_array();
    static const char *const det[][3] = {
        {"E.ADDRESS.NOT_FOUND", "address", "Address not found"},
        {"E.HOUSE_NUMBER.MISSING", "street1", "House number is missing"}};
    int n = street1 && isdigit((unsigned char)*street1) ? 1 : 2;
    for (int i = 0; i < n; i++) {
        json_object *e = json_object_new_object();
        add(e, "code", jstr(det[i][0]));
        add(e, "field", jstr(det[i][1]));
        add(e, "message", jstr(det[i][2]));
        add(e, "suggestion", NULL);
        json_object_array_add(errors, e);
    }
    add(err, "code", jstr("ADDRESS.VERIFY.FAILURE"));
    add(err, "message", jstr("Unable to verify address."));
    add(err, "errors", errors);
    add(root, "error", err);
    *out = dup_json(root);
    json_object_put(root);
    return 422;
}

int sim_address_create(sim_t *s, json_object *req, int verify, char **out) {
    json_object *a = get(req, "address");
    if (!a || !json_object_is_type(a, json_type_object) || json_object_object_length(a) == 0)
        return err422(out, "address");
    json_object *v = get(req, "verify");
    json_object *vs = get(req, "verify_strict");
    int want_verify =
        verify || (v && json_object_get_boolean(v)) || (vs && json_object_get_boolean(vs));
    int strict = verify || (vs && json_object_get_boolean(vs));
    int64_t now = ss_time_now_usec();
    pthread_mutex_lock(&s->mu);
    json_object *o = address_new_locked(s, a, now);
    if (want_verify && address_verify_locked(o, now) != 0) {
        if (strict) {
            pthread_mutex_unlock(&s->mu);
            char *why = NULL;
            int st = verify_fail(&why, gstr(o, "street1"));
            json_object_put(o);
            *out = why;
            return st;
        }
        json_object *ver = json_object_new_object(), *d = json_object_new_object();
        add(d, "success", json_object_new_boolean(0));
        json_object *errs = json_object_new_array();
        json_object *e = json_object_new_object();
        add(e, "code", jstr("E.ADDRESS.NOT_FOUND"));
        add(e, "field", jstr("address"));
        add(e, "message", jstr("Address not found"));
        add(e, "suggestion", NULL);
        json_object_array_add(errs, e);
        add(d, "errors", errs);
        add(d, "details", NULL);
        add(ver, "delivery", d);
        add(o, "verifications", ver);
    }
    const char *id = gstr(o, "id");
    store_put_locked(s, id, json_object_get(o));
    index_add_locked(s, SIM_KIND_ADDRESS, id, now);
    /* create_and_verify answers {"address":{...}} */
    return finish_locked(s,
                         &(sim_finish_t){.answer = o,
                                         .wrap = verify ? "address" : NULL,
                                         .release = o,
                                         .status = verify ? 200 : 201},
                         now, out);
}

/* ---- rates ------------------------------------------------------------------ */

typedef struct {
    const char *carrier, *service;
    int base_cents, per_lb_cents, per_zone_cents;
    int days_base, zones_per_day; /* est days = days_base + zone / zones_per_day (0 = fixed) */
} service_t;

static const service_t SERVICES[] = {
    {"USPS", "GroundAdvantage", 450, 55, 40, 2, 3},
    {"USPS", "Priority", 780, 80, 65, 1, 4},
    {"USPS", "Express", 2650, 150, 180, 1, 0},
    {"UPS", "Ground", 980, 70, 55, 1, 2},
    {"UPS", "3DaySelect", 1650, 120, 110, 3, 0},
    {"UPS", "2ndDayAir", 2100, 160, 150, 2, 0},
    {"UPS", "NextDayAir", 4200, 260, 300, 1, 0},
    {"FedEx", "FEDEX_GROUND", 950, 68, 58, 1, 2},
    {"FedEx", "FEDEX_2_DAY", 2050, 155, 145, 2, 0},
    {"FedEx", "STANDARD_OVERNIGHT", 3900, 250, 290, 1, 0},
};

static void money(long long cents, char *buf, size_t n) {
    snprintf(buf, n, "%lld.%02lld000", cents / 100, cents % 100);
}

static void carrier_account(sim_t *s, const char *carrier, char *buf, size_t n) {
    uint64_t h = sim_hash(s->seed ^ hash_str(carrier));
    snprintf(buf, n, "ca_%016llx%016llx", (unsigned long long)h, (unsigned long long)sim_hash(h));
}

static int usps_zone(json_object *from, json_object *to) {
    int a = zip5(gstr(from, "zip")), b = zip5(gstr(to, "zip"));
    if (a < 0 || b < 0)
        return 5;
    int miles = abs(a / 100 - b / 100) * 3 + 20;
    int zone = 1 + miles / 250;
    return zone > 8 ? 8 : zone;
}

static json_object *rate_new_locked(sim_t *s, const service_t *sv, int zone, double weight_oz,
                                    const char *shp_id, const char *ts) {
    char id[48], buf[32], ca[48];
    sim_new_id_locked(s, "rate_", id, sizeof id);
    long long lbs = (long long)ceil(weight_oz / 16.0);
    if (lbs < 1)
        lbs = 1;
    long long cents =
        sv->base_cents + sv->per_lb_cents * (lbs - 1) + sv->per_zone_cents * (zone - 1);
    int days = sv->days_base + (sv->zones_per_day ? zone / sv->zones_per_day : 0);
    json_object *r = json_object_new_object();
    add(r, "id", jstr(id));
    add(r, "object", jstr("Rate"));
    add(r, "created_at", jstr(ts));
    add(r, "updated_at", jstr(ts));
    add(r, "mode", jstr(cur_mode()));
    add(r, "service", jstr(sv->service));
    add(r, "carrier", jstr(sv->carrier));
    money(cents, buf, sizeof buf);
    add(r, "rate", jstr(buf));
    add(r, "currency", jstr("USD"));
    money(cents * 118 / 100, buf, sizeof buf);
    add(r, "retail_rate", jstr(buf));
    add(r, "retail_currency", jstr("USD"));
    money(cents * 108 / 100, buf, sizeof buf);
    add(r, "list_rate", jstr(buf));
    add(r, "list_currency", jstr("USD"));
    add(r, "billing_type", jstr("easypost"));
    add(r, "delivery_days", json_object_new_int(days));
    add(r, "delivery_date", NULL);
    add(r, "delivery_date_guaranteed", json_object_new_boolean(0));
    add(r, "est_delivery_days", json_object_new_int(days));
    add(r, "shipment_id", jstr(shp_id));
    carrier_account(s, sv->carrier, ca, sizeof ca);
    add(r, "carrier_account_id", jstr(ca));
    return r;
}

/* ---- shipments ---------------------------------------------------------------- */

/* Resolves {"id":"adr_..."} to a stored address, or builds a new one. */
static json_object *address_ref_locked(sim_t *s, json_object *a, int64_t now) {
    const char *id = gstr(a, "id");
    if (id) {
        json_object *o = store_get_locked(s, id);
        if (!o || strcmp(gstr(o, "object") ? gstr(o, "object") : "", "Address") != 0)
            return NULL;
        return json_object_get(o);
    }
    json_object *o = address_new_locked(s, a, now);
    store_put_locked(s, gstr(o, "id"), json_object_get(o));
    index_add_locked(s, SIM_KIND_ADDRESS, gstr(o, "id"), now);
    return o;
}

static int address_ok(json_object *a) {
    return a && json_object_is_type(a, json_type_object) && json_object_object_length(a) > 0;
}

static json_object *customs_new_locked(sim_t *s, json_object *c, const char *ts) {
    char id[48];
    sim_new_id_locked(s, "cstinfo_", id, sizeof id);
    json_object *o = json_object_new_object();
    add(o, "id", jstr(id));
    add(o, "object", jstr("CustomsInfo"));
    add(o, "created_at", jstr(ts));
    add(o, "updated_at", jstr(ts));
    add(o, "contents_explanation", jstr(gstr(c, "contents_explanation")));
    add(o, "contents_type", jstr(gstr(c, "contents_type")));
    json_object *cc = get(c, "customs_certify");
    add(o, "customs_certify", json_object_new_boolean(cc ? json_object_get_boolean(cc) : 0));
    add(o, "customs_signer", jstr(gstr(c, "customs_signer")));
    add(o, "eel_pfc", jstr(gstr(c, "eel_pfc")));
    add(o, "non_delivery_option",
        jstr(gstr(c, "non_delivery_option") ? gstr(c, "non_delivery_option") : "return"));
    add(o, "restriction_comments", jstr(gstr(c, "restriction_comments")));
    add(o, "restriction_type",
        jstr(gstr(c, "restriction_type") ? gstr(c, "restriction_type") : "none"));
    add(o, "mode", jstr(cur_mode()));
    add(o, "declaration", jstr(gstr(c, "declaration")));
    json_object *items = json_object_new_array();
    json_object *in = get(c, "customs_items");
    size_t n = in && json_object_is_type(in, json_type_array) ? json_object_array_length(in) : 0;
    for (size_t i = 0; i < n && i < 100; i++) {
        json_object *it = json_object_array_get_idx(in, i), *ci = json_object_new_object();
        char iid[48];
        sim_new_id_locked(s, "cstitem_", iid, sizeof iid);
        add(ci, "id", jstr(iid));
        add(ci, "object", jstr("CustomsItem"));
        add(ci, "created_at", jstr(ts));
        add(ci, "updated_at", jstr(ts));
        add(ci, "description", jstr(gstr(it, "description")));
        add(ci, "hs_tariff_number", jstr(gstr(it, "hs_tariff_number")));
        add(ci, "origin_country", jstr(gstr(it, "origin_country")));
        double q = 0, w = 0;
        add(ci, "quantity", json_object_new_int(gnum(it, "quantity", &q) ? (int)q : 1));
        /* value is money: keep the exact text the caller sent, as a string */
        json_object *val = get(it, "value");
        const char *vt = NULL;
        if (val &&
            (json_object_is_type(val, json_type_string) ||
             json_object_is_type(val, json_type_int) || json_object_is_type(val, json_type_double)))
            vt = json_object_is_type(val, json_type_string) ? json_object_get_string(val)
                                                            : json_object_to_json_string(val);
        add(ci, "value", jstr(vt ? vt : "0.00"));
        add(ci, "weight", jdouble(gnum(it, "weight", &w) ? w : 0.0));
        add(ci, "code", jstr(gstr(it, "code")));
        add(ci, "mode", jstr(cur_mode()));
        add(ci, "manufacturer", jstr(gstr(it, "manufacturer")));
        add(ci, "currency", jstr(gstr(it, "currency")));
        add(ci, "eccn", jstr(gstr(it, "eccn")));
        add(ci, "printed_commodity_identifier", jstr(gstr(it, "printed_commodity_identifier")));
        json_object_array_add(items, ci);
    }
    add(o, "customs_items", items);
    return o;
}

static int shipment_create_at(sim_t *s, json_object *req, int64_t now, char **out) {
    json_object *sh = get(req, "shipment");
    if (!sh || !json_object_is_type(sh, json_type_object) || json_object_object_length(sh) == 0)
        return err422(out, "shipment");
    json_object *from = get(sh, "from_address"), *to = get(sh, "to_address"),
                *parcel = get(sh, "parcel");
    if (!address_ok(to))
        return err422(out, "shipment.to_address");
    if (!address_ok(from))
        return err422(out, "shipment.from_address");
    double weight = 0;
    if (!parcel || !json_object_is_type(parcel, json_type_object))
        return err422(out, "shipment.parcel");
    if (!gnum(parcel, "weight", &weight) || weight <= 0 || weight > 2400) {
        *out = sim_error_json("PARAMETER.INVALID", "Invalid parameter.", "shipment.parcel.weight",
                              "must be a number greater than 0 and at most 2400 (ounces)");
        return 422;
    }

    char ts[40], id[48], pid[48];
    sim_fmt_z(now, ts, sizeof ts);
    pthread_mutex_lock(&s->mu);
    json_object *fa = address_ref_locked(s, from, now);
    json_object *ta = address_ref_locked(s, to, now);
    if (!fa || !ta) {
        pthread_mutex_unlock(&s->mu);
        if (fa)
            json_object_put(fa);
        if (ta)
            json_object_put(ta);
        *out =
            sim_error_json("ADDRESS.NOT_FOUND", "The requested address could not be found.",
                           fa ? "shipment.to_address.id" : "shipment.from_address.id", "not found");
        return 422;
    }
    sim_new_id_locked(s, "shp_", id, sizeof id);
    json_object *o = json_object_new_object();
    add(o, "id", jstr(id));
    add(o, "created_at", jstr(ts));
    json_object *isret = get(sh, "is_return");
    add(o, "is_return", json_object_new_boolean(isret ? json_object_get_boolean(isret) : 0));
    add(o, "messages", json_object_new_array());
    add(o, "mode", jstr(cur_mode()));
    json_object *opts = json_object_new_object();
    json_object *ropts = get(sh, "options");
    if (ropts && json_object_is_type(ropts, json_type_object)) {
        json_object_object_foreach(ropts, k, v) {
            json_object *copy = NULL;
            if (json_object_deep_copy(v, &copy, NULL) == 0)
                add(opts, k, copy);
        }
    }
    if (!get(opts, "currency"))
        add(opts, "currency", jstr("USD"));
    if (!get(opts, "payment")) {
        json_object *p = json_object_new_object();
        add(p, "type", jstr("SENDER"));
        add(opts, "payment", p);
    }
    if (!get(opts, "date_advance"))
        add(opts, "date_advance", json_object_new_int(0));
    add(o, "options", opts);
    add(o, "reference", jstr(gstr(sh, "reference")));
    add(o, "status", jstr("unknown"));
    add(o, "tracking_code", NULL);
    add(o, "updated_at", jstr(ts));
    add(o, "batch_id", NULL);
    add(o, "batch_status", NULL);
    add(o, "batch_message", NULL);
    json_object *cust = get(sh, "customs_info");
    add(o, "customs_info",
        cust && json_object_is_type(cust, json_type_object) ? customs_new_locked(s, cust, ts)
                                                            : NULL);
    add(o, "from_address", fa);
    add(o, "insurance", NULL);
    add(o, "order_id", NULL);

    json_object *p = json_object_new_object();
    sim_new_id_locked(s, "prcl_", pid, sizeof pid);
    add(p, "id", jstr(pid));
    add(p, "object", jstr("Parcel"));
    add(p, "created_at", jstr(ts));
    add(p, "updated_at", jstr(ts));
    static const char *const dims[] = {"length", "width", "height"};
    for (int i = 0; i < 3; i++) {
        double d;
        add(p, dims[i], gnum(parcel, dims[i], &d) ? jdouble(d) : NULL);
    }
    add(p, "predefined_package", jstr(gstr(parcel, "predefined_package")));
    add(p, "weight", jdouble(weight));
    add(p, "mode", jstr(cur_mode()));
    add(o, "parcel", p);
    add(o, "postage_label", NULL);

    int zone = usps_zone(fa, ta);
    json_object *rates = json_object_new_array();
    for (size_t i = 0; i < sizeof SERVICES / sizeof *SERVICES; i++)
        json_object_array_add(rates, rate_new_locked(s, &SERVICES[i], zone, weight, id, ts));
    add(o, "rates", rates);
    add(o, "refund_status", NULL);
    add(o, "scan_form", NULL);
    add(o, "selected_rate", NULL);
    add(o, "tracker", NULL);
    add(o, "to_address", ta);
    add(o, "usps_zone", json_object_new_int(zone));
    add(o, "return_address", json_object_get(fa));
    add(o, "buyer_address", json_object_get(ta));
    add(o, "forms", json_object_new_array());
    add(o, "fees", json_object_new_array());
    add(o, "object", jstr("Shipment"));

    store_put_locked(s, id, json_object_get(o));
    index_add_locked(s, SIM_KIND_SHIPMENT, id, now);
    return finish_locked(s, &(sim_finish_t){.answer = o, .release = o, .status = 201}, now, out);
}

int sim_shipment_create(sim_t *s, json_object *req, char **out) {
    return shipment_create_at(s, req, ss_time_now_usec(), out);
}

/* ---- trackers ------------------------------------------------------------------- */

static json_object *location(const char *city, const char *state, const char *zip) {
    json_object *l = json_object_new_object();
    add(l, "object", jstr("TrackingLocation"));
    add(l, "city", jstr(city));
    add(l, "state", jstr(state));
    add(l, "country", jstr(city ? "US" : NULL));
    add(l, "zip", jstr(zip));
    return l;
}

static json_object *tracker_new_locked(sim_t *s, const char *code, const char *carrier,
                                       const char *shp_id, const char *ts) {
    char id[48], enc[160], url[200], v1[64];
    sim_new_id_locked(s, "trk_", id, sizeof id);
    snprintf(v1, sizeof v1, "v1:%s", id);
    /* EasyPost's public tracking URLs carry base64 of "v1:<tracker id>" (OpenSSL's
     * encoder: 4 characters per 3 bytes, padded; enc holds 160). */
    EVP_EncodeBlock((unsigned char *)enc, (const unsigned char *)v1, (int)strlen(v1));
    snprintf(url, sizeof url, "https://track.easypost.com/%s", enc);
    json_object *t = json_object_new_object();
    add(t, "id", jstr(id));
    add(t, "object", jstr("Tracker"));
    add(t, "mode", jstr(cur_mode()));
    add(t, "tracking_code", jstr(code));
    add(t, "status", jstr("unknown"));
    add(t, "status_detail", jstr("unknown"));
    add(t, "created_at", jstr(ts));
    add(t, "updated_at", jstr(ts));
    add(t, "signed_by", NULL);
    add(t, "weight", NULL);
    add(t, "est_delivery_date", NULL);
    add(t, "shipment_id", jstr(shp_id));
    add(t, "carrier", jstr(carrier));
    add(t, "tracking_details", json_object_new_array());
    add(t, "fees", json_object_new_array());
    add(t, "carrier_detail", NULL);
    add(t, "finalized", json_object_new_boolean(0));
    add(t, "is_return", json_object_new_boolean(0));
    add(t, "public_url", jstr(url));
    return t;
}

static void tracking_code_locked(sim_t *s, const char *carrier, char *buf, size_t n) {
    uint64_t h = next_rand_locked(s);
    if (strcmp(carrier, "UPS") == 0)
        snprintf(buf, n, "1Z%06llX%010llu", (unsigned long long)(h >> 40),
                 (unsigned long long)(h % 10000000000ULL));
    else if (strcmp(carrier, "FedEx") == 0)
        snprintf(buf, n, "%012llu", (unsigned long long)(h % 1000000000000ULL));
    else
        snprintf(buf, n, "9400%018llu", (unsigned long long)(h % 1000000000000000000ULL));
}

/* Builds the plan for a tracker: the path from pre_transit to a terminal
 * status, deterministic in (seed, tracking code).  About 15% late against
 * the estimate, 3% failure, 3% return_to_sender. */
static sim_plan_t *plan_new(sim_t *s, const char *trk_id, const char *code, int est_days,
                            int64_t t0, int skip_pre_transit) {
    sim_plan_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    snprintf(p->tracker_id, sizeof p->tracker_id, "%s", trk_id);
    p->t0_usec = t0;
    p->t0_mono_usec = ss_time_mono_usec();
    uint64_t r = sim_hash(s->seed ^ hash_str(code)) % 100;
    double actual = est_days < 1 ? 1 : est_days;
    if (r >= 6 && r < 21)
        actual += 1 + (double)(r % 2); /* late by one or two days */
    int n = 0;
    if (!skip_pre_transit)
        p->steps[n++] =
            (sim_step_t){0.02, "pre_transit", "label_created", "Shipping Label Created", "OC", 0};
    p->steps[n++] = (sim_step_t){0.25, "in_transit", "arrived_at_facility", "Picked up", "PU", 0};
    p->steps[n++] =
        (sim_step_t){0.45, "in_transit", "departed_facility", "Departed facility", "DP", 0};
    if (actual - 0.5 > 0.5)
        p->steps[n++] = (sim_step_t){actual - 0.5,
                                     "in_transit",
                                     "arrived_at_facility",
                                     "Arrived at destination facility",
                                     "AR",
                                     1};
    if (r < 3) {
        p->steps[n++] = (sim_step_t){
            actual - 0.1, "failure", "delivery_exception", "Delivery exception: package damaged",
            "DE",         1};
    } else if (r < 6) {
        p->steps[n++] = (sim_step_t){
            actual - 0.25, "out_for_delivery", "out_for_delivery", "Out for delivery", "OD", 1};
        p->steps[n++] = (sim_step_t){actual,   "return_to_sender",
                                     "return", "Refused by recipient; returning to sender",
                                     "RS",     1};
    } else {
        p->steps[n++] = (sim_step_t){
            actual - 0.25, "out_for_delivery", "out_for_delivery", "Out for delivery", "OD", 1};
        p->steps[n++] =
            (sim_step_t){actual, "delivered", "arrived_at_destination", "Delivered", "DL", 1};
    }
    p->nsteps = n;
    return p;
}

/* A new tracker goes public: its tracker.created webhook is queued, then its
 * timeline (plan, owned; NULL: none) is scheduled.  Caller does not hold s->mu. */
static void tracker_announce(sim_t *s, const char *trk_id, sim_plan_t *plan) {
    char *ev = sim_tracker_created_event(s, trk_id);
    if (ev)
        sim_schedule_delivery(s, ev);
    if (plan)
        sim_schedule_plan(s, plan);
}

/* plan_out NULL: schedules the tracker's timeline and webhooks; else hands
 * the plan over (preload) and sends nothing. */
static int shipment_buy_at(sim_t *s, const char *shp_id, json_object *req, int64_t now, char **out,
                           sim_plan_t **plan_out) {
    json_object *rate = get(req, "rate");
    const char *rate_id = gstr(rate, "id");
    char ts[40], code[40], pl_id[48];
    sim_fmt_z(now, ts, sizeof ts);

    pthread_mutex_lock(&s->mu);
    json_object *o = store_get_locked(s, shp_id);
    if (!o || !gstr(o, "object") || strcmp(gstr(o, "object"), "Shipment") != 0) {
        pthread_mutex_unlock(&s->mu);
        return err404(out);
    }
    if (!rate_id) {
        pthread_mutex_unlock(&s->mu);
        return err422(out, "rate");
    }
    json_object *sel = get(o, "selected_rate");
    if (sel && json_object_is_type(sel, json_type_object)) {
        pthread_mutex_unlock(&s->mu);
        *out = sim_error_json("SHIPMENT.POSTAGE.EXISTS",
                              "Postage already exists for this shipment.", NULL, NULL);
        return 422;
    }
    json_object *rates = get(o, "rates"), *chosen = NULL;
    for (size_t i = 0; rates && i < json_object_array_length(rates); i++) {
        json_object *r = json_object_array_get_idx(rates, i);
        if (gstr(r, "id") && strcmp(gstr(r, "id"), rate_id) == 0)
            chosen = r;
    }
    if (!chosen) {
        pthread_mutex_unlock(&s->mu);
        *out = sim_error_json("SHIPMENT.RATE.NOT_FOUND",
                              "The rate does not belong to this shipment.", "rate.id", "not found");
        return 422;
    }
    int64_t cost = money_cents(gstr(chosen, "rate"));
    if (!plan_out && funds_take_locked(s, cost) != 0) {
        pthread_mutex_unlock(&s->mu);
        return err402(out);
    }
    const char *carrier = gstr(chosen, "carrier");
    tracking_code_locked(s, carrier, code, sizeof code);
    json_object *selected = NULL;
    json_object_deep_copy(chosen, &selected, NULL);
    add(o, "selected_rate", selected);
    add(o, "tracking_code", jstr(code));
    add(o, "updated_at", jstr(ts));

    json_object *pl = json_object_new_object();
    sim_new_id_locked(s, "pl_", pl_id, sizeof pl_id);
    char url[256], day[16];
    snprintf(day, sizeof day, "%.4s%.2s%.2s", ts, ts + 5, ts + 8);
    snprintf(url, sizeof url,
             "https://easypost-files.s3.us-west-2.amazonaws.com/files/postage_label/%s/%s.png", day,
             pl_id + 3);
    add(pl, "object", jstr("PostageLabel"));
    add(pl, "id", jstr(pl_id));
    add(pl, "created_at", jstr(ts));
    add(pl, "updated_at", jstr(ts));
    add(pl, "date_advance", json_object_new_int(0));
    add(pl, "integrated_form", jstr("none"));
    add(pl, "label_date", jstr(ts));
    add(pl, "label_resolution", json_object_new_int(300));
    add(pl, "label_size", jstr("4x6"));
    add(pl, "label_type", jstr("default"));
    add(pl, "label_file_type", jstr("image/png"));
    add(pl, "label_url", jstr(url));
    add(pl, "label_pdf_url", NULL);
    add(pl, "label_zpl_url", NULL);
    add(pl, "label_epl2_url", NULL);
    add(pl, "label_file", NULL);
    add(o, "postage_label", pl);

    json_object *trk = tracker_new_locked(s, code, carrier, shp_id, ts);
    char trk_id[48];
    snprintf(trk_id, sizeof trk_id, "%s", gstr(trk, "id"));
    add(trk, "is_return", json_object_get(get(o, "is_return")));
    add(o, "tracker", json_object_get(trk));
    store_put_locked(s, trk_id, trk); /* shared with the shipment: updates show in both */
    index_add_locked(s, SIM_KIND_TRACKER, trk_id, now);
    char tc_key[64];
    snprintf(tc_key, sizeof tc_key, "tc:%s", code);
    store_put_locked(s, tc_key, jstr(trk_id));

    json_object *to = get(o, "to_address");
    if (to)
        address_verify_locked(to, now); /* EasyPost verifies the destination on purchase */

    json_object *fees = json_object_new_array();
    static const char *const fee_types[] = {"LabelFee", "PostageFee"};
    for (int i = 0; i < 2; i++) {
        json_object *f = json_object_new_object();
        add(f, "object", jstr("Fee"));
        add(f, "type", jstr(fee_types[i]));
        add(f, "amount", jstr(i == 0 ? "0.00000" : gstr(chosen, "rate")));
        add(f, "charged", json_object_new_boolean(1));
        add(f, "refunded", json_object_new_boolean(0));
        json_object_array_add(fees, f);
    }
    add(o, "fees", fees);

    json_object *edays = get(chosen, "est_delivery_days");
    int est = edays ? json_object_get_int(edays) : 3;
    int st = finish_locked(s, &(sim_finish_t){.answer = o, .status = 200}, now, out);

    sim_plan_t *plan = plan_new(s, trk_id, code, est, now, 0);
    if (plan_out)
        *plan_out = plan;
    else
        tracker_announce(s, trk_id, plan);
    return st;
}

int sim_shipment_buy(sim_t *s, const char *shp_id, json_object *req, char **out) {
    return shipment_buy_at(s, shp_id, req, ss_time_now_usec(), out, NULL);
}

int sim_tracker_create(sim_t *s, json_object *req, char **out) {
    json_object *t = get(req, "tracker");
    const char *code = gstr(t, "tracking_code");
    if (!code || !*code)
        return err422(out, "tracker.tracking_code");
    if (strlen(code) > 64) {
        *out = sim_error_json("PARAMETER.INVALID", "Invalid parameter.", "tracker.tracking_code",
                              "is too long");
        return 422;
    }
    const char *carrier = gstr(t, "carrier");
    if (!carrier)
        carrier = "USPS";
    int64_t now = ss_time_now_usec();
    char ts[40], key[80];
    sim_fmt_z(now, ts, sizeof ts);
    snprintf(key, sizeof key, "tc:%s", code);
    pthread_mutex_lock(&s->mu);
    /* EasyPost returns the existing tracker for a known tracking code. */
    json_object *ref = store_get_locked(s, key);
    json_object *existing = ref ? store_get_locked(s, json_object_get_string(ref)) : NULL;
    if (existing)
        return finish_locked(s, &(sim_finish_t){.answer = existing, .status = 200}, now, out);
    json_object *trk = tracker_new_locked(s, code, carrier, NULL, ts);
    char trk_id[48];
    snprintf(trk_id, sizeof trk_id, "%s", gstr(trk, "id"));
    /* like EasyPost's test trackers: pre_transit with the first details */
    add(trk, "status", jstr("pre_transit"));
    add(trk, "status_detail", jstr("status_update"));
    char est[40];
    sim_fmt_z(now + 3LL * 86400 * 1000000, est, sizeof est);
    add(trk, "est_delivery_date", jstr(est));
    json_object *details = get(trk, "tracking_details");
    json_object *d = json_object_new_object();
    char msg[96];
    snprintf(msg, sizeof msg, "Pre-Shipment Info Sent to %s", carrier);
    add(d, "object", jstr("TrackingDetail"));
    add(d, "message", jstr(msg));
    add(d, "description", jstr(""));
    add(d, "status", jstr("pre_transit"));
    add(d, "status_detail", jstr("status_update"));
    add(d, "datetime", jstr(ts));
    add(d, "source", jstr(carrier));
    add(d, "carrier_code", jstr(""));
    add(d, "tracking_location", location(NULL, NULL, NULL));
    json_object_array_add(details, d);
    json_object *cd = json_object_new_object();
    add(cd, "object", jstr("CarrierDetail"));
    add(cd, "service", jstr("First-Class Package Service"));
    add(cd, "container_type", NULL);
    add(cd, "est_delivery_date_local", NULL);
    add(cd, "est_delivery_time_local", NULL);
    add(cd, "origin_location", jstr("HOUSTON TX, 77001"));
    add(cd, "origin_tracking_location", location("HOUSTON", "TX", "77063"));
    add(cd, "destination_location", jstr("CHARLESTON SC, 29401"));
    add(cd, "destination_tracking_location", NULL);
    add(cd, "guaranteed_delivery_date", NULL);
    add(cd, "alternate_identifier", NULL);
    add(cd, "initial_delivery_attempt", NULL);
    add(trk, "carrier_detail", cd);
    store_put_locked(s, trk_id, trk);
    index_add_locked(s, SIM_KIND_TRACKER, trk_id, now);
    store_put_locked(s, key, jstr(trk_id));
    int st = finish_locked(s, &(sim_finish_t){.answer = trk, .status = 200}, now, out);
    tracker_announce(s, trk_id, plan_new(s, trk_id, code, 3, now, 1));
    return st;
}

static char *preload_json(sim_t *s, const preload_t *p, int kind, size_t i);
static int preload_decode(const preload_t *p, int kind, const char *id, size_t *i);
static void preload_snapshot_locked(const sim_t *s, preload_t *p);

int sim_object_get(sim_t *s, const char *id, const char *want_object, char **out) {
    pthread_mutex_lock(&s->mu);
    json_object *o = store_get_locked(s, id);
    const char *obj = gstr(o, "object");
    if (!o || !obj || strcmp(obj, want_object) != 0) {
        preload_t p;
        preload_snapshot_locked(s, &p);
        pthread_mutex_unlock(&s->mu);
        int kind = strcmp(want_object, "Tracker") == 0 ? SIM_KIND_TRACKER : SIM_KIND_SHIPMENT;
        size_t i;
        if (strcmp(want_object, "Address") != 0 && preload_decode(&p, kind, id, &i)) {
            char *v = preload_json(s, &p, kind, i);
            if (v) {
                *out = v;
                return 200;
            }
        }
        return err404(out);
    }
    *out = dup_json(o);
    pthread_mutex_unlock(&s->mu);
    return 200;
}

/* The fields GET /v2/events lists (as events-list.response.json). */
static json_object *event_summary(json_object *e) {
    static const char *const keys[] = {"description", "id",   "user_id", "status",
                                       "created_at",  "mode", "object"};
    json_object *o = json_object_new_object();
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        add(o, keys[i], json_object_get(get(e, keys[i])));
    return o;
}

int sim_event_get(sim_t *s, const char *id, char **out) {
    pthread_mutex_lock(&s->mu);
    size_t n = json_object_array_length(s->events);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(s->events, i);
        if (gstr(e, "id") && strcmp(gstr(e, "id"), id) == 0) {
            *out = dup_json(e);
            pthread_mutex_unlock(&s->mu);
            return 200;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return err404(out);
}

int sim_events_list(sim_t *s, int page_size, const char *before_id, char **out) {
    if (page_size < 1)
        page_size = 20;
    if (page_size > 100)
        page_size = 100;
    json_object *root = json_object_new_object(), *arr = json_object_new_array();
    pthread_mutex_lock(&s->mu);
    size_t n = json_object_array_length(s->events);
    size_t top = n; /* newest first from index top-1 down */
    if (before_id && *before_id) {
        top = 0;
        for (size_t i = 0; i < n; i++) {
            const char *id = gstr(json_object_array_get_idx(s->events, i), "id");
            if (id && strcmp(id, before_id) == 0) {
                top = i;
                break;
            }
        }
    }
    size_t k = 0;
    for (; k < top && k < (size_t)page_size; k++)
        json_object_array_add(arr,
                              event_summary(json_object_array_get_idx(s->events, top - 1 - k)));
    add(root, "events", arr);
    add(root, "has_more", json_object_new_boolean(top > k));
    *out = dup_json(root);
    json_object_put(root);
    pthread_mutex_unlock(&s->mu);
    return 200;
}

/* ---- preloaded history and the list endpoints ------------------------------------ */

#define PRELOAD_MASK           0x5a17c0de5eed1e55ULL
#define PRELOAD_BUY_DELAY_USEC (60LL * 1000000)

void sim_preload_set(sim_t *s, size_t n, int64_t end_usec, int64_t span_usec) {
    pthread_mutex_lock(&s->mu);
    s->preload_n = n;
    s->preload_end_usec = end_usec;
    s->preload_span_usec = span_usec > 0 ? span_usec : 1;
    s->preload_gen++; /* what preload_json cached is another history now */
    pthread_mutex_unlock(&s->mu);
}

static uint64_t preload_tag(uint64_t seed, int kind, size_t i) {
    return sim_hash(seed ^ 0x70726c64ULL ^
                    (((uint64_t)i << 1 | (uint64_t)kind) * 0x9e3779b97f4a7c15ULL));
}

/* shp_/trk_ + 16 hex of a keyed hash + 16 hex of the index (masked): the id
 * says which preloaded object it is, so nothing needs to be kept. */
static void preload_id(uint64_t seed, int kind, size_t i, char *buf, size_t n) {
    snprintf(buf, n, "%s%016llx%016llx", kind == SIM_KIND_TRACKER ? "trk_" : "shp_",
             (unsigned long long)preload_tag(seed, kind, i),
             (unsigned long long)((uint64_t)i ^ PRELOAD_MASK));
}

/* 1 with *i when id is preloaded object i of this kind. */
static int preload_decode(const preload_t *p, int kind, const char *id, size_t *i) {
    const char *pre = kind == SIM_KIND_TRACKER ? "trk_" : "shp_";
    if (!id || strncmp(id, pre, 4) != 0 || strlen(id) != 36)
        return 0;
    char a[17], b[17];
    memcpy(a, id + 4, 16);
    a[16] = '\0';
    memcpy(b, id + 20, 16);
    b[16] = '\0';
    char *end = NULL;
    unsigned long long tag = strtoull(a, &end, 16);
    if (*end)
        return 0;
    unsigned long long x = strtoull(b, &end, 16);
    if (*end)
        return 0;
    uint64_t idx = (uint64_t)x ^ PRELOAD_MASK;
    if (idx >= p->n || preload_tag(p->seed, kind, (size_t)idx) != tag)
        return 0;
    *i = (size_t)idx;
    return 1;
}

static int64_t preload_created(const preload_t *p, int kind, size_t i) {
    int64_t step = p->span / (int64_t)(p->n + 1);
    int64_t c = p->end - p->span + step * (int64_t)(i + 1);
    return kind == SIM_KIND_TRACKER ? c + PRELOAD_BUY_DELAY_USEC : c;
}

static const struct {
    const char *name, *street1, *city, *state, *zip;
} PLACES[] = {
    {"Jack Sparrow", "388 Townsend St", "San Francisco", "CA", "94107"},
    {"Elizabeth Swan", "179 N Harbor Dr", "Redondo Beach", "CA", "90277"},
    {"Hector Barbossa", "1 E Main St", "Mesa", "AZ", "85201"},
    {"Joshamee Gibbs", "500 Boylston St", "Boston", "MA", "02116"},
    {"Tia Dalma", "600 Decatur St", "New Orleans", "LA", "70130"},
    {"James Norrington", "233 S Wacker Dr", "Chicago", "IL", "60606"},
    {"Davy Jones", "1600 Pennsylvania Ave NW", "Washington", "DC", "20500"},
    {"Will Turner", "400 Broad St", "Seattle", "WA", "98109"},
    {"Anamaria Cruz", "1 Ocean Dr", "Miami Beach", "FL", "33139"},
    {"Cutler Beckett", "350 5th Ave", "New York", "NY", "10118"},
};
#define NPLACES (sizeof PLACES / sizeof *PLACES)

static json_object *place_json(size_t k) {
    json_object *a = json_object_new_object();
    add(a, "name", jstr(PLACES[k].name));
    add(a, "street1", jstr(PLACES[k].street1));
    add(a, "city", jstr(PLACES[k].city));
    add(a, "state", jstr(PLACES[k].state));
    add(a, "zip", jstr(PLACES[k].zip));
    add(a, "country", jstr("US"));
    return a;
}

/* Rebuilds preloaded shipment i and its tracker through the same code as
 * live ones, in a scratch sim seeded by (seed, i), at the historical times,
 * with the tracker's steps applied up to preload end, and serialises both
 * into json[SIM_KIND_SHIPMENT] and json[SIM_KIND_TRACKER] (malloc'd).
 * Returns 0, or -1 on out of memory. */
static int preload_build(const preload_t *p, size_t i, char *json[2]) {
    const char *req_mode = t_mode;
    t_mode = p->mode; /* the history's mode, whoever asks */
    sim_t sc;
    memset(&sc, 0, sizeof sc);
    json_object *req = NULL;
    char *out = NULL;
    sim_plan_t *plan = NULL;
    int rc = -1;
    if (sim_init(&sc, sim_hash(p->seed ^ ((uint64_t)(i + 1) * 0xd6e8feb86659fd93ULL)), 64) != 0)
        goto done;
    sc.scratch = 1;
    uint64_t h = sim_hash(sc.seed);
    size_t from = h % NPLACES, to = (h / NPLACES) % NPLACES;
    if (to == from)
        to = (to + 1) % NPLACES;
    req = json_object_new_object();
    json_object *sh = json_object_new_object(), *parcel = json_object_new_object();
    add(sh, "from_address", place_json(from));
    add(sh, "to_address", place_json(to));
    add(parcel, "length", jdouble(10));
    add(parcel, "width", jdouble(8));
    add(parcel, "height", jdouble(4));
    add(parcel, "weight", jdouble((double)(1 + (h >> 20) % 640) / 10.0));
    add(sh, "parcel", parcel);
    char ref[48];
    snprintf(ref, sizeof ref, "hist-%zu", i);
    add(sh, "reference", jstr(ref));
    add(req, "shipment", sh);
    int64_t created = preload_created(p, SIM_KIND_SHIPMENT, i);
    if (shipment_create_at(&sc, req, created, &out) != 201 || sc.index[0].len != 1)
        goto done;
    free(out);
    out = NULL;
    json_object_put(req);
    req = NULL;
    char shp_id[48];
    snprintf(shp_id, sizeof shp_id, "%s", sc.index[0].v[0].id);
    json_object *shp = store_get_locked(&sc, shp_id);
    json_object *rates = get(shp, "rates");
    size_t nr = rates ? json_object_array_length(rates) : 0;
    if (nr == 0)
        goto done;
    const char *rate_id = gstr(json_object_array_get_idx(rates, (h >> 40) % nr), "id");
    req = json_object_new_object();
    json_object *r = json_object_new_object();
    add(r, "id", jstr(rate_id));
    add(req, "rate", r);
    if (shipment_buy_at(&sc, shp_id, req, created + PRELOAD_BUY_DELAY_USEC, &out, &plan) != 200 ||
        !plan)
        goto done;
    while (plan->next < plan->nsteps &&
           plan->t0_usec + (int64_t)(plan->steps[plan->next].day * 86400.0 * 1e6) <= p->end) {
        char *ev = sim_tracker_apply_step(&sc, plan);
        free(ev);
    }
    json_object *trk = get(shp, "tracker");
    if (!trk)
        goto done;
    char sid[48], tid[48];
    preload_id(p->seed, SIM_KIND_SHIPMENT, i, sid, sizeof sid);
    preload_id(p->seed, SIM_KIND_TRACKER, i, tid, sizeof tid);
    add(shp, "id", jstr(sid));
    add(trk, "id", jstr(tid));
    add(trk, "shipment_id", jstr(sid));
    for (size_t k = 0; k < nr; k++)
        add(json_object_array_get_idx(rates, k), "shipment_id", jstr(sid));
    json_object *sel = get(shp, "selected_rate");
    if (sel)
        add(sel, "shipment_id", jstr(sid));
    json[SIM_KIND_SHIPMENT] = dup_json(shp);
    json[SIM_KIND_TRACKER] = dup_json(trk);
    if (json[SIM_KIND_SHIPMENT] && json[SIM_KIND_TRACKER])
        rc = 0;
    else {
        free(json[SIM_KIND_SHIPMENT]);
        free(json[SIM_KIND_TRACKER]);
    }
done:
    free(out);
    free(plan);
    if (req)
        json_object_put(req);
    sim_destroy(&sc);
    t_mode = req_mode;
    return rc;
}

/* Preloaded object i of kind (SHIPMENT or TRACKER) serialised (malloc'd), or NULL on out of
 * memory: from the cache, or built (with its twin) and cached.  Called without s->mu. */
static char *preload_json(sim_t *s, const preload_t *p, int kind, size_t i) {
    char *r = NULL;
    int hit = 0;
    struct sim_pcache_slot *e = NULL;
    pthread_mutex_lock(&s->pcmu);
    if (p->gen && !s->pcache) {
        size_t n = p->n < SIM_PCACHE_MIN   ? SIM_PCACHE_MIN
                   : p->n > SIM_PCACHE_MAX ? SIM_PCACHE_MAX
                                           : p->n;
        s->pcache = calloc(n, sizeof *s->pcache);
        s->pcache_slots = s->pcache ? n : 0;
    }
    if (p->gen && s->pcache) {
        e = &s->pcache[i % s->pcache_slots];
        if (e->gen == p->gen && e->i == i) {
            hit = 1;
            r = strdup(e->json[kind]);
        }
    }
    pthread_mutex_unlock(&s->pcmu);
    if (hit)
        return r; /* NULL: out of memory */
    char *json[2] = {NULL, NULL};
    if (preload_build(p, i, json) != 0)
        return NULL;
    r = strdup(json[kind]);
    pthread_mutex_lock(&s->pcmu);
    if (e) { /* the table lives until sim_destroy */
        free(e->json[0]);
        free(e->json[1]);
        e->gen = p->gen;
        e->i = i;
        e->json[0] = json[0];
        e->json[1] = json[1];
        json[0] = json[1] = NULL;
    }
    pthread_mutex_unlock(&s->pcmu);
    free(json[0]);
    free(json[1]);
    return r;
}

static void preload_snapshot_locked(const sim_t *s, preload_t *p) {
    p->seed = s->seed;
    p->n = s->preload_n;
    p->end = s->preload_end_usec;
    p->span = s->preload_span_usec;
    p->mode = s->default_mode;
    p->gen = s->preload_gen;
}

/* Rank of an id in creation order: preloaded i -> i, live position k -> n + k.
 * -1 when unknown. */
static int64_t rank_of_locked(sim_t *s, const preload_t *p, int kind, const char *id) {
    size_t i;
    if (preload_decode(p, kind, id, &i))
        return (int64_t)i;
    json_object *v = NULL;
    if (json_object_object_get_ex(s->index[kind].pos, id, &v))
        return (int64_t)p->n + json_object_get_int64(v);
    return -1;
}

int sim_list(sim_t *s, int kind, const sim_list_query_t *q, sim_list_fault_t fault, char **out) {
    static const char *const keys[SIM_NKINDS] = {"shipments", "trackers",  "addresses",
                                                 "batches",   "pickups",   "scan_forms",
                                                 "refunds",   "insurances"};
    const char *key = keys[kind];
    int page = q->page_size < 1 ? 20 : (q->page_size > 100 ? 100 : q->page_size);
    int64_t ranks[100];
    char *items[101] = {0};
    int got = 0, more = 0;
    preload_t p;

    pthread_mutex_lock(&s->mu);
    preload_snapshot_locked(s, &p);
    if (kind != SIM_KIND_SHIPMENT && kind != SIM_KIND_TRACKER)
        p.n = 0; /* only shipments and trackers have a preloaded history */
    sim_index_t *ix = &s->index[kind];
    int64_t hi = (int64_t)(p.n + ix->len), lo = -1;
    if (q->before_id && *q->before_id && fault != SIM_LIST_REPEAT) {
        hi = rank_of_locked(s, &p, kind, q->before_id);
        if (hi < 0) {
            pthread_mutex_unlock(&s->mu);
            *out =
                sim_error_json("PARAMETER.INVALID", "Invalid parameter.", "before_id", "not found");
            return 422;
        }
    }
    if (q->after_id && *q->after_id) {
        lo = rank_of_locked(s, &p, kind, q->after_id);
        if (lo < 0) {
            pthread_mutex_unlock(&s->mu);
            *out =
                sim_error_json("PARAMETER.INVALID", "Invalid parameter.", "after_id", "not found");
            return 422;
        }
    }
    for (int64_t r = hi - 1; r > lo; r--) {
        int64_t c;
        if (r < (int64_t)p.n) {
            c = preload_created(&p, kind, (size_t)r);
        } else {
            const sim_ix_ent_t *e = &ix->v[r - (int64_t)p.n];
            if (!store_get_locked(s, e->id))
                continue; /* evicted */
            c = e->created_usec;
        }
        if (c > q->end_usec)
            continue;
        if (c < q->start_usec)
            break; /* creation order: everything further is older */
        if (got == page) {
            more = 1;
            break;
        }
        ranks[got++] = r;
    }
    for (int k = 0; k < got; k++)
        if (ranks[k] >= (int64_t)p.n) {
            json_object *o = store_get_locked(s, ix->v[ranks[k] - (int64_t)p.n].id);
            if (kind == SIM_KIND_BATCH)
                batch_refresh_locked(s, o);
            items[k] = dup_json(o);
        }
    pthread_mutex_unlock(&s->mu);

    for (int k = 0; k < got; k++) {
        if (ranks[k] >= (int64_t)p.n)
            continue;
        items[k] = preload_json(s, &p, kind, (size_t)ranks[k]);
    }
    int nitems = got;
    if (fault == SIM_LIST_UNKNOWN_TYPE) {
        char ts[40], buf[256];
        sim_fmt_z(ss_time_now_usec(), ts, sizeof ts);
        snprintf(buf, sizeof buf,
                 "{\"id\":\"gzm_%016llx\",\"object\":\"Gizmo\",\"created_at\":\"%s\","
                 "\"updated_at\":\"%s\",\"mode\":\"test\"}",
                 (unsigned long long)sim_hash((uint64_t)ss_time_mono_usec()), ts, ts);
        items[nitems++] = strdup(buf);
    }
    if (fault == SIM_LIST_REPEAT)
        more = 1;

    size_t total = 64;
    for (int k = 0; k < nitems; k++) {
        if (!items[k]) {
            for (int j = 0; j < nitems; j++)
                free(items[j]);
            *out = sim_error_json("INTERNAL_SERVER_ERROR", "out of memory", NULL, NULL);
            return 500;
        }
        total += strlen(items[k]) + 1;
    }
    char *body = malloc(total);
    if (!body) {
        for (int j = 0; j < nitems; j++)
            free(items[j]);
        *out = sim_error_json("INTERNAL_SERVER_ERROR", "out of memory", NULL, NULL);
        return 500;
    }
    size_t len = (size_t)sprintf(body, "{\"%s\":[", key);
    for (int k = 0; k < nitems; k++) {
        size_t l = strlen(items[k]);
        if (k)
            body[len++] = ',';
        memcpy(body + len, items[k], l);
        len += l;
        free(items[k]);
    }
    len += (size_t)sprintf(body + len, "],\"has_more\":%s}", more ? "true" : "false");
    if (fault == SIM_LIST_MALFORMED)
        body[len / 2] = '\0'; /* cut half-way: a 200 that is not JSON */
    *out = body;
    return 200;
}

/* ---- events ------------------------------------------------------------------------ */

/* Records an Event (kept: the last MAX_EVENTS_KEPT, for GET /v2/events and
 * /v2/events/{id}) with a copy of result, and returns its body for delivery
 * (malloc'd), or NULL when no SIM_WEBHOOK_URL is set. */
static char *event_locked(sim_t *s, const char *description, json_object *result,
                          const char *prev_status, int64_t t) {
    char id[48], ts[40];
    sim_new_id_locked(s, "evt_", id, sizeof id);
    if (s->scratch)
        return NULL; /* preload_build: the id drawn, nothing kept */
    sim_fmt_ms(t, ts, sizeof ts);
    const char *mode = gstr(result, "mode") ? gstr(result, "mode") : cur_mode();
    json_object *e = json_object_new_object();
    add(e, "description", jstr(description));
    add(e, "mode", jstr(mode));
    json_object *prev = json_object_new_object();
    if (prev_status)
        add(prev, "status", jstr(prev_status));
    add(e, "previous_attributes", prev);
    add(e, "created_at", jstr(ts));
    json_object *pending = json_object_new_array();
    if (s->webhook_url)
        json_object_array_add(pending, jstr(s->webhook_url));
    add(e, "pending_urls", pending);
    add(e, "completed_urls", json_object_new_array());
    add(e, "updated_at", jstr(ts));
    add(e, "id", jstr(id));
    add(e, "user_id", jstr(s->user_id));
    add(e, "status", jstr(s->webhook_url ? "pending" : "completed"));
    add(e, "object", jstr("Event"));
    json_object *copy = NULL;
    if (json_object_deep_copy(result, &copy, NULL) != 0)
        copy = NULL;
    add(e, "result", copy);
    char *body = s->webhook_url ? dup_json(e) : NULL;
    json_object_array_add(s->events, e);
    if (json_object_array_length(s->events) > MAX_EVENTS_KEPT)
        json_object_array_del_idx(s->events, 0, 1);
    return body;
}

char *sim_tracker_created_event(sim_t *s, const char *tracker_id) {
    pthread_mutex_lock(&s->mu);
    json_object *t = store_get_locked(s, tracker_id);
    char *body = t ? event_locked(s, "tracker.created", t, NULL, ss_time_now_usec()) : NULL;
    pthread_mutex_unlock(&s->mu);
    return body;
}

char *sim_tracker_apply_step(sim_t *s, sim_plan_t *plan) {
    if (plan->next >= plan->nsteps)
        return NULL;
    const sim_step_t *st = &plan->steps[plan->next++];
    int64_t t = plan->t0_usec + (int64_t)(st->day * 86400.0 * 1e6);
    char ts[40];
    sim_fmt_z(t, ts, sizeof ts);
    pthread_mutex_lock(&s->mu);
    json_object *trk = store_get_locked(s, plan->tracker_id);
    if (!trk) {
        pthread_mutex_unlock(&s->mu);
        plan->next = plan->nsteps; /* evicted: nothing more to tell */
        return NULL;
    }
    char prev[40];
    snprintf(prev, sizeof prev, "%s", gstr(trk, "status") ? gstr(trk, "status") : "unknown");
    const char *carrier = gstr(trk, "carrier");
    const char *shp_id = gstr(trk, "shipment_id");
    json_object *shp = shp_id ? store_get_locked(s, shp_id) : NULL;
    json_object *from = get(shp, "from_address"), *to = get(shp, "to_address");
    json_object *loc_addr = st->at_dest ? to : from;
    const char *city = gstr(loc_addr, "city"), *state = gstr(loc_addr, "state");
    char zip[8] = "";
    if (gstr(loc_addr, "zip"))
        snprintf(zip, sizeof zip, "%.5s", gstr(loc_addr, "zip"));
    char ucity[64] = "";
    if (city) {
        snprintf(ucity, sizeof ucity, "%s", city);
        for (char *p = ucity; *p; p++)
            *p = (char)toupper((unsigned char)*p);
    }

    json_object *d = json_object_new_object();
    add(d, "object", jstr("TrackingDetail"));
    add(d, "message", jstr(st->message));
    add(d, "description", jstr(st->message));
    add(d, "status", jstr(st->status));
    add(d, "status_detail", jstr(st->status_detail));
    add(d, "datetime", jstr(ts));
    add(d, "source", jstr(carrier));
    add(d, "carrier_code", jstr(st->carrier_code));
    add(d, "tracking_location", location(city ? ucity : NULL, state, zip[0] ? zip : NULL));
    json_object_array_add(get(trk, "tracking_details"), d);
    add(trk, "status", jstr(st->status));
    add(trk, "status_detail", jstr(st->status_detail));
    touch_locked(trk, t);
    if (shp && !json_object_is_type(get(trk, "est_delivery_date"), json_type_string)) {
        json_object *sel = get(shp, "selected_rate");
        json_object *ed = get(sel, "est_delivery_days");
        int est = ed ? json_object_get_int(ed) : 3;
        char es[40];
        sim_fmt_z(plan->t0_usec + (int64_t)est * 86400 * 1000000, es, sizeof es);
        add(trk, "est_delivery_date", jstr(es));
        json_object *cd = json_object_new_object();
        char ol[128], dl[128];
        snprintf(ol, sizeof ol, "%s %s %s", gstr(from, "city") ? gstr(from, "city") : "",
                 gstr(from, "state") ? gstr(from, "state") : "", "US");
        snprintf(dl, sizeof dl, "%s %s %s", gstr(to, "city") ? gstr(to, "city") : "",
                 gstr(to, "state") ? gstr(to, "state") : "", "US");
        add(cd, "object", jstr("CarrierDetail"));
        add(cd, "service", jstr(gstr(sel, "service")));
        add(cd, "container_type", NULL);
        char edl[16];
        snprintf(edl, sizeof edl, "%.10s", es);
        add(cd, "est_delivery_date_local", jstr(edl));
        add(cd, "est_delivery_time_local", NULL);
        add(cd, "origin_location", jstr(ol));
        add(cd, "origin_tracking_location",
            location(gstr(from, "city"), gstr(from, "state"), NULL));
        add(cd, "destination_location", jstr(dl));
        add(cd, "destination_tracking_location", NULL);
        add(cd, "guaranteed_delivery_date", NULL);
        add(cd, "alternate_identifier", NULL);
        add(cd, "initial_delivery_attempt", NULL);
        add(trk, "carrier_detail", cd);
    }
    int terminal = plan->next >= plan->nsteps;
    if (terminal)
        add(trk, "finalized", json_object_new_boolean(1));
    if (strcmp(st->status, "delivered") == 0)
        add(trk, "signed_by", jstr("SIGNATURE ON FILE"));
    if (shp) {
        add(shp, "status", jstr(st->status));
        touch_locked(shp, t);
    }
    char *body = event_locked(s, "tracker.updated", trk, prev, t);
    pthread_mutex_unlock(&s->mu);
    return body;
}

/* ---- the rest of /v2: address verify, rerate, label, insure, refunds, batches,
 * pickups, scan forms, insurances.  Shapes follow easypost-python's recorded
 * responses (tests/cassettes: test_address_verify, test_shipment_regenerate_rates,
 * test_shipment_convert_label, test_shipment_insure, test_shipment_refund,
 * test_refund_create, test_batch_*, test_pickup_*, test_scanform_create,
 * test_insurance_create). ---------------------------------------------------- */

#define MAX_BATCH_SHIPMENTS 1000
#define MAX_REFUND_CODES    100

static json_object *find_locked(sim_t *s, const char *id, const char *object) {
    json_object *o = id ? store_get_locked(s, id) : NULL;
    const char *t = gstr(o, "object");
    return o && t && strcmp(t, object) == 0 ? o : NULL;
}

/* Takes s->mu and finds id's object of that type.  On a miss it releases s->mu again, writes
 * the 404 to *out and returns NULL; otherwise the caller holds s->mu. */
static json_object *lock_find(sim_t *s, const char *id, const char *object, char **out) {
    pthread_mutex_lock(&s->mu);
    json_object *o = find_locked(s, id, object);
    if (!o) {
        pthread_mutex_unlock(&s->mu);
        err404(out);
    }
    return o;
}

static int err422c(char **out, const char *code, const char *message) {
    *out = sim_error_json(code, message, NULL, NULL);
    return 422;
}

static int bought(json_object *shp) {
    return json_object_is_type(get(shp, "selected_rate"), json_type_object);
}

/* The id of {"id":"..."} or of a plain string element. */
static const char *elem_id(json_object *e) {
    if (json_object_is_type(e, json_type_string))
        return json_object_get_string(e);
    return gstr(e, "id");
}

/* A file URL like EasyPost's: .../files/<kind>/<YYYYMMDD>/<32 hex>.<ext>. */
static void file_url_locked(sim_t *s, const char *kind, const char *ext, int64_t now, char *buf,
                            size_t n) {
    char ts[40], hex[48];
    sim_fmt_z(now, ts, sizeof ts);
    sim_new_id_locked(s, "", hex, sizeof hex);
    snprintf(buf, n,
             "https://easypost-files.s3.us-west-2.amazonaws.com/files/%s/%.4s%.2s%.2s/%s.%s", kind,
             ts, ts + 5, ts + 8, hex, ext);
}

static json_object *fee(const char *type, int64_t cents) {
    char buf[32];
    json_object *f = json_object_new_object();
    add(f, "object", jstr("Fee"));
    add(f, "type", jstr(type));
    money(cents, buf, sizeof buf);
    add(f, "amount", jstr(buf));
    add(f, "charged", json_object_new_boolean(1));
    add(f, "refunded", json_object_new_boolean(0));
    return f;
}

/* Money given as "100", "100.50" or a JSON number: cents, or -1. */
static int64_t amount_cents(json_object *v) {
    if (!v)
        return -1;
    const char *t =
        json_object_is_type(v, json_type_string) ? json_object_get_string(v)
        : json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)
            ? json_object_to_json_string(v)
            : NULL;
    if (!t || !isdigit((unsigned char)*t))
        return -1;
    return money_cents(t);
}

int sim_address_verify(sim_t *s, const char *id, char **out) {
    int64_t now = ss_time_now_usec();
    json_object *a = lock_find(s, id, "Address", out);
    if (!a)
        return 404;
    /* EasyPost answers a verified copy under a new id. */
    json_object *v = address_new_locked(s, a, now);
    if (address_verify_locked(v, now) != 0) {
        pthread_mutex_unlock(&s->mu);
        int st = verify_fail(out, gstr(v, "street1"));
        json_object_put(v);
        return st;
    }
    store_put_locked(s, gstr(v, "id"), json_object_get(v));
    index_add_locked(s, SIM_KIND_ADDRESS, gstr(v, "id"), now);
    return finish_locked(
        s, &(sim_finish_t){.answer = v, .wrap = "address", .release = v, .status = 200}, now, out);
}

int sim_shipment_rerate(sim_t *s, const char *id, char **out) {
    int64_t now = ss_time_now_usec();
    char ts[40];
    sim_fmt_z(now, ts, sizeof ts);
    json_object *o = lock_find(s, id, "Shipment", out);
    if (!o)
        return 404;
    double weight = 0;
    gnum(get(o, "parcel"), "weight", &weight);
    int zone = usps_zone(get(o, "from_address"), get(o, "to_address"));
    json_object *rates = json_object_new_array();
    for (size_t i = 0; i < sizeof SERVICES / sizeof *SERVICES; i++)
        json_object_array_add(rates, rate_new_locked(s, &SERVICES[i], zone, weight, id, ts));
    add(o, "rates", json_object_get(rates)); /* the new rates replace the old ones */
    return finish_locked(
        s, &(sim_finish_t){.answer = rates, .wrap = "rates", .release = rates, .status = 200}, now,
        out);
}

int sim_shipment_label(sim_t *s, const char *id, const char *file_format, char **out) {
    static const struct {
        const char *fmt, *key, *ext;
    } F[] = {{"PNG", "label_url", "png"},
             {"PDF", "label_pdf_url", "pdf"},
             {"ZPL", "label_zpl_url", "zpl"},
             {"EPL2", "label_epl2_url", "epl2"}};
    int k = -1;
    for (int i = 0; file_format && i < 4; i++)
        if (strcasecmp(file_format, F[i].fmt) == 0)
            k = i;
    int64_t now = ss_time_now_usec();
    json_object *o = lock_find(s, id, "Shipment", out);
    if (!o)
        return 404;
    if (k < 0) {
        pthread_mutex_unlock(&s->mu);
        *out = sim_error_json("PARAMETER.INVALID", "Invalid parameter.", "file_format",
                              "must be one of PNG, PDF, ZPL, EPL2");
        return 422;
    }
    json_object *pl = get(o, "postage_label");
    if (!json_object_is_type(pl, json_type_object)) {
        pthread_mutex_unlock(&s->mu);
        return err422c(out, "SHIPMENT.POSTAGE.REQUIRED",
                       "The shipment must be purchased before its label can be converted.");
    }
    if (!gstr(pl, F[k].key)) {
        char url[256];
        file_url_locked(s, "postage_label", F[k].ext, now, url, sizeof url);
        add(pl, F[k].key, jstr(url));
        touch_locked(pl, now);
    }
    return finish_locked(s, &(sim_finish_t){.answer = o, .status = 200}, now, out);
}

/* An Insurance object (shipment NULL: standalone, POST /v2/insurances). */
static json_object *insurance_new_locked(sim_t *s, json_object *shp, json_object *from,
                                         json_object *to, json_object *tracker,
                                         const char *tracking_code, const char *reference,
                                         int64_t cents, int64_t fee_cents, const char *status,
                                         int64_t now) {
    char id[48], ts[40], buf[32];
    sim_new_id_locked(s, "ins_", id, sizeof id);
    sim_fmt_z(now, ts, sizeof ts);
    json_object *o = json_object_new_object();
    add(o, "id", jstr(id));
    add(o, "object", jstr("Insurance"));
    add(o, "mode", jstr(cur_mode()));
    add(o, "reference", jstr(reference));
    add(o, "status", jstr(status));
    money(cents, buf, sizeof buf);
    add(o, "amount", jstr(buf));
    add(o, "provider", jstr("easypost"));
    add(o, "provider_id", NULL);
    add(o, "to_address", json_object_get(to));
    add(o, "from_address", json_object_get(from));
    add(o, "shipment_id", jstr(gstr(shp, "id")));
    add(o, "tracker", json_object_get(tracker));
    add(o, "tracking_code", jstr(tracking_code));
    add(o, "fee", fee("InsuranceFee", fee_cents));
    add(o, "messages", json_object_new_array());
    add(o, "created_at", jstr(ts));
    add(o, "updated_at", jstr(ts));
    store_put_locked(s, id, json_object_get(o));
    index_add_locked(s, SIM_KIND_INSURANCE, id, now);
    return o;
}

/* EasyPost's insurance fee: 1% of the amount, at least $1. */
static int64_t insurance_fee(int64_t cents) {
    return cents / 100 > 100 ? cents / 100 : 100;
}

int sim_shipment_insure(sim_t *s, const char *id, json_object *req, char **out) {
    int64_t cents = amount_cents(get(req, "amount"));
    int64_t now = ss_time_now_usec();
    json_object *o = lock_find(s, id, "Shipment", out);
    if (!o)
        return 404;
    if (cents <= 0) {
        pthread_mutex_unlock(&s->mu);
        return err422(out, "amount");
    }
    if (!bought(o)) {
        pthread_mutex_unlock(&s->mu);
        return err422c(out, "SHIPMENT.INSURANCE.FAILURE",
                       "The shipment must be purchased before it can be insured.");
    }
    if (gstr(o, "insurance")) {
        pthread_mutex_unlock(&s->mu);
        return err422c(out, "SHIPMENT.INSURANCE.FAILURE", "The shipment is already insured.");
    }
    int64_t fc = insurance_fee(cents);
    if (funds_take_locked(s, fc) != 0) {
        pthread_mutex_unlock(&s->mu);
        return err402(out);
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%lld.%02lld", (long long)(cents / 100), (long long)(cents % 100));
    add(o, "insurance", jstr(buf));
    json_object_array_add(get(o, "fees"), fee("InsuranceFee", fc));
    touch_locked(o, now);
    json_object *ins = insurance_new_locked(s, o, get(o, "from_address"), get(o, "to_address"),
                                            get(o, "tracker"), gstr(o, "tracking_code"),
                                            gstr(o, "reference"), cents, fc, "purchased", now);
    return finish_locked(s,
                         &(sim_finish_t){.answer = o,
                                         .event = "insurance.purchased",
                                         .subject = ins,
                                         .release = ins,
                                         .status = 200},
                         now, out);
}

static json_object *refund_obj_locked(sim_t *s, const char *code, const char *carrier,
                                      const char *status, const char *shp_id, int64_t now) {
    char id[48], ts[40];
    sim_new_id_locked(s, "rfnd_", id, sizeof id);
    sim_fmt_z(now, ts, sizeof ts);
    json_object *r = json_object_new_object();
    add(r, "id", jstr(id));
    add(r, "object", jstr("Refund"));
    add(r, "created_at", jstr(ts));
    add(r, "updated_at", jstr(ts));
    add(r, "tracking_code", jstr(code));
    add(r, "confirmation_number", NULL);
    add(r, "status", jstr(status));
    add(r, "carrier", jstr(carrier));
    add(r, "shipment_id", jstr(shp_id));
    add(r, "mode", jstr(cur_mode()));
    store_put_locked(s, id, json_object_get(r));
    index_add_locked(s, SIM_KIND_REFUND, id, now);
    return r;
}

/* Marks a bought, not yet refunded shipment refund_status "submitted" and
 * makes its Refund; *plan gets the completion one simulated day later. */
static json_object *refund_submit_locked(sim_t *s, json_object *shp, int64_t now,
                                         sim_plan_t **plan) {
    add(shp, "refund_status", jstr("submitted"));
    touch_locked(shp, now);
    json_object *r =
        refund_obj_locked(s, gstr(shp, "tracking_code"), gstr(get(shp, "selected_rate"), "carrier"),
                          "submitted", gstr(shp, "id"), now);
    *plan = calloc(1, sizeof **plan);
    if (*plan) {
        sim_plan_t *p = *plan;
        p->refund = 1;
        snprintf(p->tracker_id, sizeof p->tracker_id, "%s", gstr(shp, "id"));
        snprintf(p->refund_id, sizeof p->refund_id, "%s", gstr(r, "id"));
        p->t0_usec = now;
        p->t0_mono_usec = ss_time_mono_usec();
        p->nsteps = 1;
        p->steps[0] = (sim_step_t){1.0, "refunded", "refunded", "Refunded", "RF", 0};
    }
    return r;
}

char *sim_refund_apply(sim_t *s, sim_plan_t *plan) {
    plan->next = plan->nsteps;
    int64_t now = ss_time_now_usec();
    pthread_mutex_lock(&s->mu);
    json_object *shp = find_locked(s, plan->tracker_id, "Shipment");
    json_object *r = find_locked(s, plan->refund_id, "Refund");
    const char *rs = gstr(shp, "refund_status");
    if (shp && rs && strcmp(rs, "submitted") == 0) {
        add(shp, "refund_status", jstr("refunded"));
        touch_locked(shp, now);
        json_object *fees = get(shp, "fees");
        for (size_t i = 0; fees && i < json_object_array_length(fees); i++) {
            json_object *f = json_object_array_get_idx(fees, i);
            if (gstr(f, "type") && strcmp(gstr(f, "type"), "PostageFee") == 0) {
                add(f, "refunded", json_object_new_boolean(1));
                funds_credit_locked(s, money_cents(gstr(f, "amount")));
            }
        }
    }
    char *body = NULL;
    if (r) {
        add(r, "status", jstr("refunded"));
        touch_locked(r, now);
        body = event_locked(s, "refund.successful", r, "submitted", now);
    }
    pthread_mutex_unlock(&s->mu);
    return body;
}

int sim_shipment_refund(sim_t *s, const char *id, char **out) {
    int64_t now = ss_time_now_usec();
    json_object *o = lock_find(s, id, "Shipment", out);
    if (!o)
        return 404;
    if (!bought(o)) {
        pthread_mutex_unlock(&s->mu);
        return err422c(out, "SHIPMENT.REFUND.FAILURE", "The shipment has no postage to refund.");
    }
    if (gstr(o, "refund_status")) {
        pthread_mutex_unlock(&s->mu);
        return err422c(out, "SHIPMENT.REFUND.FAILURE",
                       "A refund has already been requested for this shipment.");
    }
    sim_plan_t *plan = NULL;
    json_object_put(refund_submit_locked(s, o, now, &plan));
    finish_locked(s, &(sim_finish_t){.answer = o, .status = 200}, now, out);
    if (plan)
        sim_schedule_plan(s, plan);
    return 200;
}

int sim_refund_create(sim_t *s, json_object *req, char **out) {
    json_object *r = get(req, "refund");
    const char *carrier = gstr(r, "carrier");
    json_object *codes = get(r, "tracking_codes");
    if (!carrier || !*carrier)
        return err422(out, "refund.carrier");
    if (!json_object_is_type(codes, json_type_array) || json_object_array_length(codes) == 0)
        return err422(out, "refund.tracking_codes");
    size_t n = json_object_array_length(codes);
    if (n > MAX_REFUND_CODES) {
        *out = sim_error_json("PARAMETER.INVALID", "Invalid parameter.", "refund.tracking_codes",
                              "at most 100 tracking codes");
        return 422;
    }
    int64_t now = ss_time_now_usec();
    sim_plan_t *plans[MAX_REFUND_CODES];
    size_t np = 0;
    json_object *arr = json_object_new_array();
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        const char *code = json_object_get_string(json_object_array_get_idx(codes, i));
        char key[96];
        snprintf(key, sizeof key, "tc:%s", code ? code : "");
        json_object *ref = store_get_locked(s, key);
        json_object *trk = ref ? find_locked(s, json_object_get_string(ref), "Tracker") : NULL;
        json_object *shp = trk ? find_locked(s, gstr(trk, "shipment_id"), "Shipment") : NULL;
        json_object *rf;
        if (shp && bought(shp) && !gstr(shp, "refund_status")) {
            sim_plan_t *p = NULL;
            rf = refund_submit_locked(s, shp, now, &p);
            if (p)
                plans[np++] = p;
        } else {
            rf = refund_obj_locked(s, code, carrier, shp ? "rejected" : "not_applicable",
                                   shp ? gstr(shp, "id") : NULL, now);
        }
        json_object_array_add(arr, rf);
    }
    /* EasyPost answers a bare list of Refunds */
    finish_locked(s, &(sim_finish_t){.answer = arr, .release = arr, .status = 201}, now, out);
    for (size_t i = 0; i < np; i++)
        sim_schedule_plan(s, plans[i]);
    return 201;
}

int sim_insurance_create(sim_t *s, json_object *req, char **out) {
    json_object *in = get(req, "insurance");
    const char *code = gstr(in, "tracking_code");
    const char *carrier = gstr(in, "carrier") ? gstr(in, "carrier") : "USPS";
    int64_t cents = amount_cents(get(in, "amount"));
    if (!json_object_is_type(in, json_type_object))
        return err422(out, "insurance");
    if (!code || !*code)
        return err422(out, "insurance.tracking_code");
    if (cents <= 0)
        return err422(out, "insurance.amount");
    if (!address_ok(get(in, "to_address")))
        return err422(out, "insurance.to_address");
    if (!address_ok(get(in, "from_address")))
        return err422(out, "insurance.from_address");
    int64_t fc = insurance_fee(cents);
    pthread_mutex_lock(&s->mu);
    int poor = funds_take_locked(s, fc);
    pthread_mutex_unlock(&s->mu);
    if (poor != 0)
        return err402(out);
    /* The insured package gets a tracker, as on EasyPost. */
    json_object *treq = json_object_new_object(), *t = json_object_new_object();
    add(t, "tracking_code", jstr(code));
    add(t, "carrier", jstr(carrier));
    add(treq, "tracker", t);
    char *tout = NULL;
    int tst = sim_tracker_create(s, treq, &tout);
    json_object_put(treq);
    free(tout);
    if (tst != 200) {
        pthread_mutex_lock(&s->mu);
        funds_credit_locked(s, fc);
        pthread_mutex_unlock(&s->mu);
        *out = sim_error_json("PARAMETER.INVALID", "Invalid parameter.", "insurance.tracking_code",
                              "is not a valid tracking code");
        return 422;
    }
    int64_t now = ss_time_now_usec();
    char key[96];
    snprintf(key, sizeof key, "tc:%s", code);
    pthread_mutex_lock(&s->mu);
    json_object *ref = store_get_locked(s, key);
    json_object *trk = ref ? find_locked(s, json_object_get_string(ref), "Tracker") : NULL;
    json_object *addr[2];
    const char *which[2] = {"from_address", "to_address"};
    for (int i = 0; i < 2; i++) {
        addr[i] = address_ref_locked(s, get(in, which[i]), now);
        if (addr[i] && !gstr(get(in, which[i]), "id"))
            address_verify_locked(addr[i], now); /* EasyPost verifies them (uppercase, ZIP+4) */
    }
    if (!addr[0] || !addr[1]) {
        pthread_mutex_unlock(&s->mu);
        for (int i = 0; i < 2; i++)
            if (addr[i])
                json_object_put(addr[i]);
        *out = sim_error_json("ADDRESS.NOT_FOUND", "The requested address could not be found.",
                              NULL, NULL);
        return 422;
    }
    json_object *ins = insurance_new_locked(s, NULL, addr[0], addr[1], trk, code,
                                            gstr(in, "reference"), cents, fc, "pending", now);
    json_object_put(addr[0]);
    json_object_put(addr[1]);
    return finish_locked(s, &(sim_finish_t){.answer = ins, .release = ins, .status = 201}, now,
                         out);
}

/* ---- batches ---- */

static json_object *batch_entry(json_object *shp) {
    json_object *e = json_object_new_object();
    add(e, "batch_status", json_object_get(get(shp, "batch_status")));
    add(e, "batch_message", json_object_get(get(shp, "batch_message")));
    add(e, "reference", json_object_get(get(shp, "reference")));
    add(e, "tracking_code", json_object_get(get(shp, "tracking_code")));
    add(e, "id", jstr(gstr(shp, "id")));
    return e;
}

/* Brings a batch's shipment entries, counts and num_shipments up to date
 * with the shipments (an evicted one keeps its last entry). */
static void batch_refresh_locked(sim_t *s, json_object *b) {
    json_object *list = get(b, "shipments");
    if (!b || !list)
        return;
    static const char *const st[] = {"created", "queued_for_purchase", "creation_failed",
                                     "postage_purchased", "postage_purchase_failed"};
    int counts[5] = {0};
    size_t n = json_object_array_length(list);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(list, i);
        json_object *shp = find_locked(s, gstr(e, "id"), "Shipment");
        if (shp) {
            json_object_array_put_idx(list, i, batch_entry(shp));
            e = json_object_array_get_idx(list, i);
        }
        const char *bs = gstr(e, "batch_status");
        for (int k = 0; bs && k < 5; k++)
            if (strcmp(bs, st[k]) == 0)
                counts[k]++;
    }
    json_object *status = json_object_new_object();
    for (int k = 0; k < 5; k++)
        add(status, st[k], json_object_new_int(counts[k]));
    add(b, "status", status);
    add(b, "num_shipments", json_object_new_int((int)n));
}

/* A shipment joins (or, below, leaves) a batch: its batch_id changes, and so its updated_at,
 * as every change of an EasyPost object (readers keep the newest version by it). */
static void batch_join_locked(json_object *b, json_object *shp, int64_t now) {
    add(shp, "batch_id", jstr(gstr(b, "id")));
    add(shp, "batch_status", jstr(bought(shp) ? "postage_purchased" : "created"));
    add(shp, "batch_message", NULL);
    touch_locked(shp, now);
    json_object_array_add(get(b, "shipments"), batch_entry(shp));
}

static json_object *batch_new_locked(sim_t *s, const char *reference, const char *state,
                                     int64_t now) {
    char id[48], ts[40];
    sim_new_id_locked(s, "batch_", id, sizeof id);
    sim_fmt_z(now, ts, sizeof ts);
    json_object *b = json_object_new_object();
    add(b, "id", jstr(id));
    add(b, "object", jstr("Batch"));
    add(b, "mode", jstr(cur_mode()));
    add(b, "state", jstr(state));
    add(b, "num_shipments", json_object_new_int(0));
    add(b, "reference", jstr(reference));
    add(b, "created_at", jstr(ts));
    add(b, "updated_at", jstr(ts));
    add(b, "scan_form", NULL);
    add(b, "shipments", json_object_new_array());
    add(b, "status", NULL);
    add(b, "pickup", NULL);
    add(b, "label_url", NULL);
    store_put_locked(s, id, json_object_get(b));
    index_add_locked(s, SIM_KIND_BATCH, id, now);
    return b;
}

/* Checks that every element of list names a stored shipment: 0, or 404 in *out. */
static int shipments_exist_locked(sim_t *s, json_object *list, char **out) {
    for (size_t i = 0; i < json_object_array_length(list); i++)
        if (!find_locked(s, elem_id(json_object_array_get_idx(list, i)), "Shipment"))
            return err404(out);
    return 0;
}

int sim_batch_create(sim_t *s, json_object *req, char **out) {
    json_object *bq = get(req, "batch");
    json_object *list = get(bq, "shipments");
    if (bq && !json_object_is_type(bq, json_type_object))
        return err422(out, "batch");
    if (list && !json_object_is_type(list, json_type_array)) {
        *out = sim_error_json("PARAMETER.INVALID", "Invalid parameter.", "batch.shipments",
                              "must be a list");
        return 422;
    }
    size_t n = list ? json_object_array_length(list) : 0;
    if (n > MAX_BATCH_SHIPMENTS) {
        *out = sim_error_json("PARAMETER.INVALID", "Invalid parameter.", "batch.shipments",
                              "at most 1000 shipments");
        return 422;
    }
    /* Shipments given in full are created first (each answer checked). */
    json_object *ids = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(list, i);
        const char *id = elem_id(e);
        if (id) {
            json_object_array_add(ids, jstr(id));
            continue;
        }
        json_object *sreq = json_object_new_object();
        add(sreq, "shipment", json_object_get(e));
        char *sout = NULL;
        int st = shipment_create_at(s, sreq, ss_time_now_usec(), &sout);
        json_object_put(sreq);
        if (st != 201) {
            json_object_put(ids);
            *out = sout;
            return st;
        }
        json_object *created = json_tokener_parse(sout);
        free(sout);
        json_object_array_add(ids, jstr(gstr(created, "id")));
        if (created)
            json_object_put(created);
    }
    int64_t now = ss_time_now_usec();
    pthread_mutex_lock(&s->mu);
    int st = shipments_exist_locked(s, ids, out);
    if (st) {
        pthread_mutex_unlock(&s->mu);
        json_object_put(ids);
        return st;
    }
    json_object *b = batch_new_locked(s, gstr(bq, "reference"), "created", now);
    for (size_t i = 0; i < json_object_array_length(ids); i++)
        batch_join_locked(b, find_locked(s, elem_id(json_object_array_get_idx(ids, i)), "Shipment"),
                          now);
    batch_refresh_locked(s, b);
    json_object_put(ids);
    return finish_locked(
        s, &(sim_finish_t){.answer = b, .event = "batch.created", .release = b, .status = 200}, now,
        out);
}

int sim_batch_get(sim_t *s, const char *id, char **out) {
    json_object *b = lock_find(s, id, "Batch", out);
    if (!b)
        return 404;
    batch_refresh_locked(s, b);
    return finish_locked(s, &(sim_finish_t){.answer = b, .status = 200}, 0, out);
}

/* A ScanForm for the (bought, unrefunded, not yet scanned) shipments in ids,
 * attached to each of them.  NULL with the 422 in *out when one does not qualify. */
static json_object *scan_form_build_locked(sim_t *s, json_object *ids, const char *batch_id,
                                           int64_t now, char **out) {
    size_t n = json_object_array_length(ids);
    if (n == 0) {
        err422c(out, "SCAN_FORM.VALIDATION.ERROR", "A scan form needs at least one shipment.");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *shp = find_locked(s, elem_id(json_object_array_get_idx(ids, i)), "Shipment");
        if (!bought(shp) || gstr(shp, "refund_status") ||
            json_object_is_type(get(shp, "scan_form"), json_type_object)) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "Shipment %s is not purchased, is refunded or is already on a scan form.",
                     gstr(shp, "id") ? gstr(shp, "id") : "?");
            err422c(out, "SCAN_FORM.VALIDATION.ERROR", msg);
            return NULL;
        }
    }
    char id[48], ts[40], url[256];
    sim_new_id_locked(s, "sf_", id, sizeof id);
    sim_fmt_z(now, ts, sizeof ts);
    file_url_locked(s, "scan_form", "pdf", now, url, sizeof url);
    json_object *f = json_object_new_object(), *codes = json_object_new_array();
    add(f, "id", jstr(id));
    add(f, "object", jstr("ScanForm"));
    add(f, "created_at", jstr(ts));
    add(f, "updated_at", jstr(ts));
    for (size_t i = 0; i < n; i++) {
        json_object *shp = find_locked(s, elem_id(json_object_array_get_idx(ids, i)), "Shipment");
        json_object_array_add(codes, json_object_get(get(shp, "tracking_code")));
    }
    add(f, "tracking_codes", codes);
    json_object *first = find_locked(s, elem_id(json_object_array_get_idx(ids, 0)), "Shipment");
    add(f, "address", json_object_get(get(first, "from_address")));
    add(f, "status", jstr("created"));
    add(f, "message", NULL);
    add(f, "form_url", jstr(url));
    add(f, "form_file_type", NULL);
    add(f, "batch_id", jstr(batch_id));
    add(f, "confirmation", NULL);
    add(f, "mode", jstr(cur_mode()));
    for (size_t i = 0; i < n; i++) {
        json_object *shp = find_locked(s, elem_id(json_object_array_get_idx(ids, i)), "Shipment");
        json_object *copy = NULL;
        json_object_deep_copy(f, &copy, NULL);
        add(shp, "scan_form", copy);
    }
    store_put_locked(s, id, json_object_get(f));
    index_add_locked(s, SIM_KIND_SCAN_FORM, id, now);
    return f;
}

/* Lowest rate of a stored shipment (id copied to buf), or -1. */
static int lowest_rate_locked(json_object *shp, char *buf, size_t n) {
    json_object *rates = get(shp, "rates");
    int64_t best = INT64_MAX;
    for (size_t i = 0; rates && i < json_object_array_length(rates); i++) {
        json_object *r = json_object_array_get_idx(rates, i);
        int64_t c = money_cents(gstr(r, "rate"));
        if (c < best && gstr(r, "id")) {
            best = c;
            snprintf(buf, n, "%s", gstr(r, "id"));
        }
    }
    return best == INT64_MAX ? -1 : 0;
}

static int batch_buy(sim_t *s, const char *id, char **out) {
    json_object *b = lock_find(s, id, "Batch", out);
    if (!b)
        return 404;
    const char *state = gstr(b, "state");
    if (!state || strcmp(state, "created") != 0) {
        pthread_mutex_unlock(&s->mu);
        return err422c(out, "BATCH.STATE.INVALID", "The batch has already been purchased.");
    }
    json_object *list = get(b, "shipments");
    size_t n = json_object_array_length(list);
    if (n == 0) {
        pthread_mutex_unlock(&s->mu);
        return err422c(out, "BATCH.BUY.FAILURE", "The batch has no shipments.");
    }
    /* Lowest rate of each shipment not bought yet; bought outside the lock. */
    json_object *todo = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *shp =
            find_locked(s, gstr(json_object_array_get_idx(list, i), "id"), "Shipment");
        char rid[64];
        if (shp && !bought(shp) && lowest_rate_locked(shp, rid, sizeof rid) == 0) {
            json_object *t = json_object_new_object();
            add(t, "id", jstr(gstr(shp, "id")));
            add(t, "rate", jstr(rid));
            json_object_array_add(todo, t);
        }
    }
    add(b, "state", jstr("purchasing"));
    pthread_mutex_unlock(&s->mu);

    for (size_t i = 0; i < json_object_array_length(todo); i++) {
        json_object *t = json_object_array_get_idx(todo, i);
        json_object *breq = json_object_new_object(), *r = json_object_new_object();
        add(r, "id", jstr(gstr(t, "rate")));
        add(breq, "rate", r);
        char *bout = NULL;
        int st = sim_shipment_buy(s, gstr(t, "id"), breq, &bout);
        json_object_put(breq);
        free(bout);
        pthread_mutex_lock(&s->mu);
        json_object *shp = find_locked(s, gstr(t, "id"), "Shipment");
        if (shp && !bought(shp)) {
            add(shp, "batch_status", jstr("postage_purchase_failed"));
            add(shp, "batch_message",
                jstr(st == 402 ? "Insufficient funds" : "Postage could not be purchased"));
        }
        pthread_mutex_unlock(&s->mu);
    }
    json_object_put(todo);

    int64_t now = ss_time_now_usec();
    b = lock_find(s, id, "Batch", out);
    if (!b)
        return 404;
    list = get(b, "shipments");
    int ok = 0;
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *shp =
            find_locked(s, gstr(json_object_array_get_idx(list, i), "id"), "Shipment");
        if (shp && bought(shp)) {
            add(shp, "batch_status", jstr("postage_purchased"));
            add(shp, "batch_message", NULL);
            ok++;
        }
    }
    add(b, "state", jstr(ok ? "purchased" : "purchase_failed"));
    touch_locked(b, now);
    batch_refresh_locked(s, b);
    return finish_locked(
        s,
        &(sim_finish_t){
            .answer = b, .event = "batch.updated", .prev_status = "purchasing", .status = 200},
        now, out);
}

int sim_batch_action(sim_t *s, const char *id, const char *action, json_object *req, char **out) {
    if (strcmp(action, "buy") == 0)
        return batch_buy(s, id, out);
    int add_ = strcmp(action, "add_shipments") == 0, rm = strcmp(action, "remove_shipments") == 0;
    int label = strcmp(action, "label") == 0, scan = strcmp(action, "scan_form") == 0;
    if (!add_ && !rm && !label && !scan)
        return err404(out);
    json_object *list = get(req, "shipments");
    if ((add_ || rm) &&
        (!json_object_is_type(list, json_type_array) || json_object_array_length(list) == 0))
        return err422(out, "shipments");
    const char *ff = gstr(req, "file_format");
    static const char *const exts[][2] = {
        {"PDF", "pdf"}, {"ZPL", "zpl"}, {"EPL2", "epl2"}, {"PNG", "png"}};
    const char *ext = NULL;
    for (int i = 0; ff && i < 4; i++)
        if (strcasecmp(ff, exts[i][0]) == 0)
            ext = exts[i][1];
    if (label && !ext) {
        *out = sim_error_json("PARAMETER.INVALID", "Invalid parameter.", "file_format",
                              "must be one of PDF, ZPL, EPL2, PNG");
        return 422;
    }
    int64_t now = ss_time_now_usec();
    pthread_mutex_lock(&s->mu);
    json_object *b = find_locked(s, id, "Batch");
    int st = 0;
    if (!b) {
        st = err404(out);
        goto done;
    }
    batch_refresh_locked(s, b);
    /* a copy: the label branch replaces "state", which frees the string gstr() lent */
    char state[32];
    snprintf(state, sizeof state, "%s", gstr(b, "state") ? gstr(b, "state") : "");
    json_object *cur = get(b, "shipments");
    if (add_ || rm) {
        if ((st = shipments_exist_locked(s, list, out)) != 0)
            goto done;
        if (add_ &&
            json_object_array_length(cur) + json_object_array_length(list) > MAX_BATCH_SHIPMENTS) {
            st = err422c(out, "BATCH.SHIPMENTS.INVALID", "A batch holds at most 1000 shipments.");
            goto done;
        }
        for (size_t i = 0; i < json_object_array_length(list); i++) {
            const char *sid = elem_id(json_object_array_get_idx(list, i));
            json_object *shp = find_locked(s, sid, "Shipment");
            size_t at = SIZE_MAX;
            for (size_t k = 0; k < json_object_array_length(cur); k++)
                if (strcmp(gstr(json_object_array_get_idx(cur, k), "id"), sid) == 0)
                    at = k;
            if (add_ && at == SIZE_MAX) {
                batch_join_locked(b, shp, now);
            } else if (rm && at != SIZE_MAX) {
                json_object_array_del_idx(cur, at, 1);
                add(shp, "batch_id", NULL);
                add(shp, "batch_status", NULL);
                add(shp, "batch_message", NULL);
                touch_locked(shp, now);
            }
        }
    } else if (label) {
        if (strcmp(state, "purchased") != 0 && strcmp(state, "label_generated") != 0) {
            st = err422c(out, "BATCH.LABEL.FAILURE",
                         "The batch must be purchased before its label can be generated.");
            goto done;
        }
        char url[256];
        file_url_locked(s, "batch_label", ext, now, url, sizeof url);
        add(b, "label_url", jstr(url));
        add(b, "state", jstr("label_generated"));
    } else {
        if (strcmp(state, "purchased") != 0 && strcmp(state, "label_generated") != 0) {
            st = err422c(out, "BATCH.SCAN_FORM.FAILURE",
                         "The batch must be purchased before a scan form can be created.");
            goto done;
        }
        if (json_object_is_type(get(b, "scan_form"), json_type_object)) {
            st = err422c(out, "BATCH.SCAN_FORM.FAILURE", "The batch already has a scan form.");
            goto done;
        }
        json_object *ids = json_object_new_array();
        for (size_t k = 0; k < json_object_array_length(cur); k++) {
            json_object *e = json_object_array_get_idx(cur, k);
            const char *bs = gstr(e, "batch_status");
            if (bs && strcmp(bs, "postage_purchased") == 0)
                json_object_array_add(ids, jstr(gstr(e, "id")));
        }
        json_object *f = scan_form_build_locked(s, ids, id, now, out);
        json_object_put(ids);
        if (!f) {
            st = 422;
            goto done;
        }
        add(b, "scan_form", json_object_get(f));
        char *fev = event_locked(s, "scan_form.created", f, NULL, now);
        if (fev)
            sim_schedule_delivery(s, fev);
        json_object_put(f);
    }
    touch_locked(b, now);
    batch_refresh_locked(s, b);
    return finish_locked(
        s,
        &(sim_finish_t){.answer = b, .event = "batch.updated", .prev_status = state, .status = 200},
        now, out);
done:
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* ---- scan forms ---- */

int sim_scan_form_create(sim_t *s, json_object *req, char **out) {
    json_object *sf = get(req, "scan_form");
    json_object *list = get(sf, "shipments");
    if (!list)
        list = get(sf, "shipment"); /* easypost-python's own test sends "shipment" */
    if (!json_object_is_type(list, json_type_array) || json_object_array_length(list) == 0)
        return err422(out, "scan_form.shipments");
    if (json_object_array_length(list) > MAX_BATCH_SHIPMENTS) {
        *out = sim_error_json("PARAMETER.INVALID", "Invalid parameter.", "scan_form.shipments",
                              "at most 1000 shipments");
        return 422;
    }
    int64_t now = ss_time_now_usec();
    pthread_mutex_lock(&s->mu);
    int st = shipments_exist_locked(s, list, out);
    if (st) {
        pthread_mutex_unlock(&s->mu);
        return st;
    }
    /* EasyPost files the shipments in a batch of their own. */
    json_object *b = batch_new_locked(s, NULL, "purchased", now);
    json_object *f = scan_form_build_locked(s, list, gstr(b, "id"), now, out);
    if (!f) {
        /* the empty batch stays, as a failed request leaves it on EasyPost */
        add(b, "state", jstr("created"));
        pthread_mutex_unlock(&s->mu);
        json_object_put(b);
        return 422;
    }
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *shp = find_locked(s, elem_id(json_object_array_get_idx(list, i)), "Shipment");
        if (!gstr(shp, "batch_id"))
            batch_join_locked(b, shp, now);
    }
    add(b, "scan_form", json_object_get(f));
    batch_refresh_locked(s, b);
    json_object_put(b);
    return finish_locked(
        s, &(sim_finish_t){.answer = f, .event = "scan_form.created", .release = f, .status = 200},
        now, out);
}

/* ---- pickups ---- */

/* "2025-03-08" or an RFC 3339 time -> "2025-03-08T00:00:00Z"; -1 when unreadable. */
static int pickup_time(const char *v, char *buf, size_t n) {
    int64_t t;
    char tmp[64];
    if (!v || strlen(v) >= 40)
        return -1;
    if (strlen(v) == 10) {
        snprintf(tmp, sizeof tmp, "%sT00:00:00Z", v);
        v = tmp;
    }
    if (ss_time_parse(v, &t) != 0)
        return -1;
    sim_fmt_z(t, buf, n);
    return 0;
}

static const struct {
    const char *carrier, *service, *rate;
} PICKUP_RATES[] = {{"USPS", "NextDay", "0.00"}, {"UPS", "Future-day Pickup", "6.50"}};

int sim_pickup_create(sim_t *s, json_object *req, char **out) {
    json_object *pq = get(req, "pickup");
    char minb[40], maxb[40];
    if (!json_object_is_type(pq, json_type_object))
        return err422(out, "pickup");
    if (!address_ok(get(pq, "address")))
        return err422(out, "pickup.address");
    if (!gstr(pq, "min_datetime"))
        return err422(out, "pickup.min_datetime");
    if (!gstr(pq, "max_datetime"))
        return err422(out, "pickup.max_datetime");
    if (pickup_time(gstr(pq, "min_datetime"), minb, sizeof minb) != 0 ||
        pickup_time(gstr(pq, "max_datetime"), maxb, sizeof maxb) != 0 || strcmp(minb, maxb) > 0) {
        *out = sim_error_json("PARAMETER.INVALID", "Invalid parameter.", "pickup.min_datetime",
                              "min_datetime and max_datetime must be dates or date-times, min <= "
                              "max");
        return 422;
    }
    int64_t now = ss_time_now_usec();
    char id[48], ts[40];
    pthread_mutex_lock(&s->mu);
    json_object *shp = get(pq, "shipment");
    if (shp && !find_locked(s, elem_id(shp), "Shipment")) {
        pthread_mutex_unlock(&s->mu);
        return err404(out);
    }
    json_object *addr = address_ref_locked(s, get(pq, "address"), now);
    if (!addr) {
        pthread_mutex_unlock(&s->mu);
        *out = sim_error_json("ADDRESS.NOT_FOUND", "The requested address could not be found.",
                              "pickup.address.id", "not found");
        return 422;
    }
    sim_new_id_locked(s, "pickup_", id, sizeof id);
    sim_fmt_z(now, ts, sizeof ts);
    json_object *o = json_object_new_object();
    add(o, "id", jstr(id));
    add(o, "object", jstr("Pickup"));
    add(o, "created_at", jstr(ts));
    add(o, "updated_at", jstr(ts));
    add(o, "mode", jstr(cur_mode()));
    add(o, "status", jstr("unknown"));
    add(o, "reference", jstr(gstr(pq, "reference")));
    add(o, "min_datetime", jstr(minb));
    add(o, "max_datetime", jstr(maxb));
    json_object *iaa = get(pq, "is_account_address");
    add(o, "is_account_address", json_object_new_boolean(iaa && json_object_get_boolean(iaa)));
    add(o, "instructions", jstr(gstr(pq, "instructions")));
    add(o, "messages", json_object_new_array());
    add(o, "confirmation", NULL);
    add(o, "address", addr);
    add(o, "carrier_accounts", json_object_new_array());
    json_object *rates = json_object_new_array();
    for (size_t i = 0; i < sizeof PICKUP_RATES / sizeof *PICKUP_RATES; i++) {
        char rid[48];
        sim_new_id_locked(s, "pickuprate_", rid, sizeof rid);
        json_object *r = json_object_new_object();
        add(r, "mode", jstr(cur_mode()));
        add(r, "service", jstr(PICKUP_RATES[i].service));
        add(r, "rate", jstr(PICKUP_RATES[i].rate));
        add(r, "currency", jstr("USD"));
        add(r, "created_at", jstr(ts));
        add(r, "updated_at", jstr(ts));
        add(r, "carrier", jstr(PICKUP_RATES[i].carrier));
        add(r, "pickup_id", jstr(id));
        add(r, "id", jstr(rid));
        add(r, "object", jstr("PickupRate"));
        json_object_array_add(rates, r);
    }
    add(o, "pickup_rates", rates);
    store_put_locked(s, id, json_object_get(o));
    index_add_locked(s, SIM_KIND_PICKUP, id, now);
    return finish_locked(s, &(sim_finish_t){.answer = o, .release = o, .status = 200}, now, out);
}

int sim_pickup_action(sim_t *s, const char *id, const char *action, json_object *req, char **out) {
    int buy = strcmp(action, "buy") == 0;
    if (!buy && strcmp(action, "cancel") != 0)
        return err404(out);
    const char *carrier = gstr(req, "carrier"), *service = gstr(req, "service");
    int64_t now = ss_time_now_usec();
    pthread_mutex_lock(&s->mu);
    json_object *o = find_locked(s, id, "Pickup");
    int st = 200;
    const char *status = o ? gstr(o, "status") : NULL;
    if (!o) {
        st = err404(out);
    } else if (buy && (!carrier || !service)) {
        st = err422(out, carrier ? "service" : "carrier");
    } else if (buy && strcmp(status ? status : "", "unknown") != 0) {
        st = err422c(out, "PICKUP.BUY.FAILURE",
                     "The pickup has already been purchased or canceled.");
    } else if (!buy && strcmp(status ? status : "", "scheduled") != 0) {
        st = err422c(out, "PICKUP.CANCEL.FAILURE", "Only a scheduled pickup can be canceled.");
    }
    if (st == 200 && buy) {
        json_object *rates = get(o, "pickup_rates");
        json_object *hit = NULL;
        for (size_t i = 0; rates && i < json_object_array_length(rates); i++) {
            json_object *r = json_object_array_get_idx(rates, i);
            if (strcmp(gstr(r, "carrier"), carrier) == 0 &&
                strcmp(gstr(r, "service"), service) == 0)
                hit = r;
        }
        if (!hit) {
            *out = sim_error_json("PICKUP.RATE.NOT_FOUND",
                                  "No pickup rate for this carrier and service.", "service",
                                  "not offered for this pickup");
            st = 422;
        } else if (funds_take_locked(s, money_cents(gstr(hit, "rate"))) != 0) {
            st = err402(out);
        } else {
            char conf[24];
            snprintf(conf, sizeof conf, "WTC%08llu",
                     (unsigned long long)(next_rand_locked(s) % 100000000ULL));
            add(o, "status", jstr("scheduled"));
            add(o, "confirmation", jstr(conf));
        }
    } else if (st == 200) {
        add(o, "status", jstr("canceled"));
    }
    if (st != 200) {
        pthread_mutex_unlock(&s->mu);
        return st;
    }
    touch_locked(o, now);
    return finish_locked(s, &(sim_finish_t){.answer = o, .status = 200}, now, out);
}
