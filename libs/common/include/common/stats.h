/* Percentiles for the bench tools and load generators: one definition,
 * nearest rank (the smallest recorded value v such that at least p % of the
 * values are <= v), so every tool's p50/p99 means the same thing. */
#ifndef SS_COMMON_STATS_H
#define SS_COMMON_STATS_H

#include <stddef.h>

/* The 1-based nearest rank of percentile p (0..100) among n values:
 * ceil(p/100 * n), clamped to 1..n.  0 when n is 0.  For histograms: walk the
 * buckets until this many values are seen. */
size_t ss_stats_rank(size_t n, double p);

/* Sorts v (n values, in place) and returns its p-th percentile (0..100) by
 * nearest rank; 0 when n is 0. */
double ss_stats_percentile(double *v, size_t n, double p);

/* As ss_stats_percentile on values already sorted ascending (no sort). */
double ss_stats_percentile_sorted(const double *v, size_t n, double p);

#endif
