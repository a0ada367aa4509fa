#include "common/backoff.h"

#include <stdint.h>
#include <stdlib.h>

#include "common/util.h"

int ss_backoff_ceiling(const ss_backoff_t *b) {
    long ceil = b->base_ms > 0 ? b->base_ms : 100;
    long max = b->max_ms > 0 ? b->max_ms : 30000;
    for (int i = 0; i < b->attempt && ceil < max; i++)
        ceil *= 2;
    return (int)(ceil > max ? max : ceil);
}

/* Jitter source: a per-thread xorshift seeded once from the OS (retry loops
 * run on many threads; no lock, no system call per delay). */
static _Thread_local uint64_t t_rng;

static uint32_t rng_next(void) {
    if (t_rng == 0) {
        if (ss_random_bytes(&t_rng, sizeof t_rng) != 0 || t_rng == 0)
            t_rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)&t_rng;
    }
    t_rng ^= t_rng << 13;
    t_rng ^= t_rng >> 7;
    t_rng ^= t_rng << 17;
    return (uint32_t)(t_rng >> 16);
}

int ss_backoff_next(ss_backoff_t *b) {
    long ceil = ss_backoff_ceiling(b);
    if (b->attempt < 64)
        b->attempt++;
    long half = ceil / 2;
    return (int)(half + (long)(rng_next() % (uint32_t)(ceil - half + 1)));
}

void ss_backoff_reset(ss_backoff_t *b) {
    b->attempt = 0;
}
