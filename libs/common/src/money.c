/* Exact fixed-point money (see common/money.h). */
#include <common/money.h>

#include <stdio.h>

static int64_t pow10_i64(int scale) {
    int64_t p = 1;
    for (int i = 0; i < scale; i++)
        p *= 10;
    return p;
}

int ss_money_parse(const char *s, int scale, int64_t *units, char *errstr, size_t errstr_size) {
    if (!s) {
        snprintf(errstr, errstr_size, "no amount");
        return -1;
    }
    if (scale < 0 || scale > SS_MONEY_MAX_SCALE) {
        snprintf(errstr, errstr_size, "scale %d out of range", scale);
        return -1;
    }
    const char *p = s;
    int neg = *p == '-';
    p += neg;
    int64_t ip = 0, fp = 0;
    int idigits = 0, fdigits = 0;
    for (; *p >= '0' && *p <= '9'; p++, idigits++) {
        int d = *p - '0';
        if (ip > (INT64_MAX - d) / 10)
            goto too_big;
        ip = ip * 10 + d;
    }
    if (*p == '.') {
        p++;
        for (; *p >= '0' && *p <= '9'; p++, fdigits++) {
            if (fdigits >= scale) {
                snprintf(errstr, errstr_size, "more than %d digits after the point", scale);
                return -1;
            }
            fp = fp * 10 + (*p - '0');
        }
        if (fdigits == 0)
            goto not_decimal;
    }
    if (*p != '\0' || idigits == 0)
        goto not_decimal;
    for (int i = fdigits; i < scale; i++)
        fp *= 10;
    int64_t one = pow10_i64(scale);
    if (ip > (INT64_MAX - fp) / one)
        goto too_big;
    int64_t v = ip * one + fp;
    *units = neg ? -v : v;
    return 0;

not_decimal:
    snprintf(errstr, errstr_size, "not a decimal amount");
    return -1;
too_big:
    snprintf(errstr, errstr_size, "amount out of range");
    return -1;
}

int ss_money_add(int64_t *sum, int64_t v) {
    if ((v > 0 && *sum > INT64_MAX - v) || (v < 0 && *sum < INT64_MIN - v))
        return -1;
    *sum += v;
    return 0;
}

int ss_money_format(int64_t units, int scale, char *buf, size_t bufsize) {
    if (scale < 0 || scale > SS_MONEY_MAX_SCALE)
        scale = 0;
    int neg = units < 0;
    uint64_t v = neg ? (uint64_t)0 - (uint64_t)units : (uint64_t)units;
    uint64_t one = (uint64_t)pow10_i64(scale);
    uint64_t ip = v / one, fp = v % one;
    char frac[SS_MONEY_MAX_SCALE + 1];
    int n = scale;
    for (int i = scale - 1; i >= 0; i--) {
        frac[i] = (char)('0' + fp % 10);
        fp /= 10;
    }
    while (n > 0 && frac[n - 1] == '0')
        n--;
    return snprintf(buf, bufsize, "%s%llu%s%.*s", neg ? "-" : "", (unsigned long long)ip,
                    n ? "." : "", n, frac);
}
