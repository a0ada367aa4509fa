/* Process-wide metrics registry: counters, gauges and histograms, updated
 * lock-free from any thread, rendered in the Prometheus text format.
 *
 * Lookups are by (name, labels): asking twice for the same pair returns the
 * same object, so callers may cache the pointer or look it up on the fly
 * (lookups take a mutex).  Objects live until ss_metrics_reset(). labels is
 * the Prometheus label text without braces, e.g. "route=\"/v1\",code=\"200\"",
 * or NULL. */
#ifndef SS_COMMON_METRICS_H
#define SS_COMMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct ss_counter ss_counter_t;
typedef struct ss_gauge ss_gauge_t;
typedef struct ss_histogram ss_histogram_t;

ss_counter_t *ss_counter(const char *name, const char *help, const char *labels);
void ss_counter_add(ss_counter_t *c, uint64_t n);
#define ss_counter_inc(c) ss_counter_add((c), 1)
uint64_t ss_counter_value(const ss_counter_t *c);

ss_gauge_t *ss_gauge(const char *name, const char *help, const char *labels);
void ss_gauge_set(ss_gauge_t *g, double v);
void ss_gauge_add(ss_gauge_t *g, double delta);
double ss_gauge_value(const ss_gauge_t *g);

/* buckets: ascending upper bounds (+Inf is implicit); NULL = latency buckets
 * in seconds from 0.0005 to 10.  Copied. */
ss_histogram_t *ss_histogram(const char *name, const char *help, const char *labels,
                             const double *buckets, size_t nbuckets);
void ss_histogram_observe(ss_histogram_t *h, double v);
uint64_t ss_histogram_count(const ss_histogram_t *h);

/* Renders every metric.  Returns a malloc'd NUL-terminated string (caller
 * frees) and its length in *len (may be NULL); NULL on out of memory. */
char *ss_metrics_render(size_t *len);

/* Drops every metric (tests only; no other thread may hold a pointer). */
void ss_metrics_reset(void);

#endif
