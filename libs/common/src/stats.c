#include "common/stats.h"

#include <math.h>
#include <stdlib.h>

size_t ss_stats_rank(size_t n, double p) {
    if (n == 0)
        return 0;
    if (!(p > 0))
        return 1;
    if (p >= 100)
        return n;
    double r = ceil(p / 100.0 * (double)n);
    return r < 1 ? 1 : r > (double)n ? n : (size_t)r;
}

double ss_stats_percentile_sorted(const double *v, size_t n, double p) {
    return n ? v[ss_stats_rank(n, p) - 1] : 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double ss_stats_percentile(double *v, size_t n, double p) {
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return ss_stats_percentile_sorted(v, n, p);
}
