#include "common/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind_t;

struct ss_counter {
    _Atomic uint64_t v;
};
struct ss_gauge {
    _Atomic uint64_t bits; /* a double */
};
struct ss_histogram {
    double *bounds;
    size_t nbounds;
    _Atomic uint64_t *buckets; /* nbounds + 1 (the last is +Inf), not cumulative */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_bits;
};

/* Families and series form append-only lists: lookups of existing metrics
 * read them without the lock (acquire loads of the links, published with
 * release stores once the new node is fully built); only creation locks.
 * This keeps per-request lookups (e.g. by route and status) off a global
 * mutex, which showed up as futex contention on the webhook receiver. */
typedef struct series {
    struct series *_Atomic next;
    char *labels; /* "" when none */
    union {
        struct ss_counter c;
        struct ss_gauge g;
        struct ss_histogram h;
    } u;
} series_t;

typedef struct family {
    struct family *_Atomic next;
    char *name;
    char *help;
    kind_t kind;
    series_t *_Atomic series;
    series_t *_Atomic *series_tail;
} family_t;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static family_t *_Atomic g_families;
static family_t *_Atomic *g_tail = &g_families;

static const double default_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};

static uint64_t d2u(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}
static double u2d(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static family_t *find_family(const char *name) {
    for (family_t *f = atomic_load_explicit(&g_families, memory_order_acquire); f;
         f = atomic_load_explicit(&f->next, memory_order_acquire))
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static series_t *find_series(family_t *f, const char *labels) {
    for (series_t *s = atomic_load_explicit(&f->series, memory_order_acquire); s;
         s = atomic_load_explicit(&s->next, memory_order_acquire))
        if (strcmp(s->labels, labels) == 0)
            return s;
    return NULL;
}

/* Returns the series, creating family and series as needed.  Lock-free when
 * both exist.  init (may be NULL) completes a new series before it is
 * published; it returns -1 when it cannot. */
static series_t *lookup(const char *name, const char *help, const char *labels, kind_t kind,
                        int (*init)(series_t *, const double *, size_t), const double *b,
                        size_t nb) {
    if (!labels)
        labels = "";
    family_t *f = find_family(name);
    if (f) {
        if (f->kind != kind)
            return NULL; /* same name registered as another type: a programming error */
        series_t *s = find_series(f, labels);
        if (s)
            return s;
    }
    pthread_mutex_lock(&g_lock);
    series_t *s = NULL;
    f = find_family(name);
    if (!f) {
        f = calloc(1, sizeof *f);
        if (!f)
            goto out;
        f->name = strdup(name);
        f->help = strdup(help ? help : name);
        f->kind = kind;
        f->series_tail = &f->series;
        if (!f->name || !f->help) {
            free(f->name);
            free(f->help);
            free(f);
            f = NULL;
            goto out;
        }
        atomic_store_explicit(g_tail, f, memory_order_release);
        g_tail = &f->next;
    }
    if (f->kind != kind)
        goto out;
    s = find_series(f, labels);
    if (s)
        goto out;
    s = calloc(1, sizeof *s);
    if (!s)
        goto out;
    s->labels = strdup(labels);
    if (!s->labels || (init && init(s, b, nb) != 0)) {
        free(s->labels);
        free(s);
        s = NULL;
        goto out;
    }
    atomic_store_explicit(f->series_tail, s, memory_order_release);
    f->series_tail = &s->next;
out:
    pthread_mutex_unlock(&g_lock);
    return s;
}

/* Used when a registration fails (out of memory, type clash): updates go nowhere. */
static struct ss_counter sink_counter;
static struct ss_gauge sink_gauge;
static _Atomic uint64_t sink_bucket[1];
static struct ss_histogram sink_histogram = {.bounds = NULL, .nbounds = 0, .buckets = sink_bucket};

ss_counter_t *ss_counter(const char *name, const char *help, const char *labels) {
    series_t *s = lookup(name, help, labels, KIND_COUNTER, NULL, NULL, 0);
    return s ? &s->u.c : &sink_counter;
}

void ss_counter_add(ss_counter_t *c, uint64_t n) {
    atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

uint64_t ss_counter_value(const ss_counter_t *c) {
    return atomic_load_explicit(&((ss_counter_t *)c)->v, memory_order_relaxed);
}

ss_gauge_t *ss_gauge(const char *name, const char *help, const char *labels) {
    series_t *s = lookup(name, help, labels, KIND_GAUGE, NULL, NULL, 0);
    return s ? &s->u.g : &sink_gauge;
}

void ss_gauge_set(ss_gauge_t *g, double v) {
    atomic_store_explicit(&g->bits, d2u(v), memory_order_relaxed);
}

void ss_gauge_add(ss_gauge_t *g, double delta) {
    uint64_t old = atomic_load_explicit(&g->bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&g->bits, &old, d2u(u2d(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

double ss_gauge_value(const ss_gauge_t *g) {
    return u2d(atomic_load_explicit(&((ss_gauge_t *)g)->bits, memory_order_relaxed));
}

static int histogram_init(series_t *s, const double *buckets, size_t nbuckets) {
    s->u.h.bounds = malloc(nbuckets * sizeof(double));
    s->u.h.buckets = calloc(nbuckets + 1, sizeof(_Atomic uint64_t));
    if (!s->u.h.bounds || !s->u.h.buckets) {
        free(s->u.h.bounds);
        free((void *)s->u.h.buckets);
        return -1;
    }
    memcpy(s->u.h.bounds, buckets, nbuckets * sizeof(double));
    s->u.h.nbounds = nbuckets;
    return 0;
}

ss_histogram_t *ss_histogram(const char *name, const char *help, const char *labels,
                             const double *buckets, size_t nbuckets) {
    if (!buckets) {
        buckets = default_buckets;
        nbuckets = sizeof default_buckets / sizeof default_buckets[0];
    }
    series_t *s = lookup(name, help, labels, KIND_HISTOGRAM, histogram_init, buckets, nbuckets);
    return s ? &s->u.h : &sink_histogram;
}

void ss_histogram_observe(ss_histogram_t *h, double v) {
    size_t i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&h->sum_bits, &old, d2u(u2d(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

uint64_t ss_histogram_count(const ss_histogram_t *h) {
    return atomic_load_explicit(&((ss_histogram_t *)h)->count, memory_order_relaxed);
}

/* Prometheus wants +Inf/-Inf/NaN spelled that way and otherwise any float. */
static void append_double(ss_buf_t *b, double v) {
    if (v != v)
        ss_buf_append(b, "NaN", 3);
    else if (v > 1e308 * 10)
        ss_buf_append(b, "+Inf", 4);
    else if (v < -1e308 * 10)
        ss_buf_append(b, "-Inf", 4);
    else
        ss_buf_appendf(b, "%.17g", v);
}

static void append_help(ss_buf_t *b, const char *help) {
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            ss_buf_append(b, "\\\\", 2);
        else if (*p == '\n')
            ss_buf_append(b, "\\n", 2);
        else
            ss_buf_append(b, p, 1);
    }
}

static void append_series_name(ss_buf_t *b, const char *name, const char *suffix,
                               const char *labels, const char *extra) {
    ss_buf_appendf(b, "%s%s", name, suffix);
    int has = labels && *labels;
    if (has || extra) {
        ss_buf_append(b, "{", 1);
        if (has)
            ss_buf_appendf(b, "%s", labels);
        if (extra)
            ss_buf_appendf(b, "%s%s", has ? "," : "", extra);
        ss_buf_append(b, "}", 1);
    }
    ss_buf_append(b, " ", 1);
}

char *ss_metrics_render(size_t *len) {
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    ss_buf_t b = {0};
    ss_buf_append(&b, "", 0);
    pthread_mutex_lock(&g_lock);
    for (family_t *f = atomic_load(&g_families); f; f = atomic_load(&f->next)) {
        ss_buf_appendf(&b, "# HELP %s ", f->name);
        append_help(&b, f->help);
        ss_buf_appendf(&b, "\n# TYPE %s %s\n", f->name, type_names[f->kind]);
        for (series_t *s = atomic_load(&f->series); s; s = atomic_load(&s->next)) {
            switch (f->kind) {
            case KIND_COUNTER:
                append_series_name(&b, f->name, "", s->labels, NULL);
                ss_buf_appendf(&b, "%llu\n", (unsigned long long)ss_counter_value(&s->u.c));
                break;
            case KIND_GAUGE:
                append_series_name(&b, f->name, "", s->labels, NULL);
                append_double(&b, ss_gauge_value(&s->u.g));
                ss_buf_append(&b, "\n", 1);
                break;
            case KIND_HISTOGRAM: {
                struct ss_histogram *h = &s->u.h;
                uint64_t cum = 0;
                char le[64];
                for (size_t i = 0; i <= h->nbounds; i++) {
                    cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
                    if (i < h->nbounds)
                        snprintf(le, sizeof le, "le=\"%.17g\"", h->bounds[i]);
                    else
                        snprintf(le, sizeof le, "le=\"+Inf\"");
                    append_series_name(&b, f->name, "_bucket", s->labels, le);
                    ss_buf_appendf(&b, "%llu\n", (unsigned long long)cum);
                }
                append_series_name(&b, f->name, "_sum", s->labels, NULL);
                append_double(&b, u2d(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)));
                ss_buf_append(&b, "\n", 1);
                /* _count equals the +Inf bucket by construction: use cum so a
                 * scrape never shows them disagreeing mid-update. */
                append_series_name(&b, f->name, "_count", s->labels, NULL);
                ss_buf_appendf(&b, "%llu\n", (unsigned long long)cum);
                break;
            }
            }
        }
    }
    pthread_mutex_unlock(&g_lock);
    if (len)
        *len = b.len;
    return b.data;
}

void ss_metrics_reset(void) {
    pthread_mutex_lock(&g_lock);
    family_t *f = atomic_load(&g_families);
    while (f) {
        family_t *fn = atomic_load(&f->next);
        series_t *s = atomic_load(&f->series);
        while (s) {
            series_t *sn = atomic_load(&s->next);
            if (f->kind == KIND_HISTOGRAM) {
                free(s->u.h.bounds);
                free((void *)s->u.h.buckets);
            }
            free(s->labels);
            free(s);
            s = sn;
        }
        free(f->name);
        free(f->help);
        free(f);
        f = fn;
    }
    atomic_store(&g_families, NULL);
    g_tail = &g_families;
    pthread_mutex_unlock(&g_lock);
}
