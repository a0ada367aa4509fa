/* Exact fixed-point money: EasyPost sends amounts as decimal strings ("6.07",
 * "0.00001"); they are never turned into a double.  An amount is an integer
 * count of units of 10^-scale (scale 9: nano units). */
#ifndef SS_COMMON_MONEY_H
#define SS_COMMON_MONEY_H

#include <stddef.h>
#include <stdint.h>

/* Largest scale accepted (10^18 still fits an int64_t). */
#define SS_MONEY_MAX_SCALE 18

/* Parses "[-]d+[.d+]" (no sign '+', no exponent, no spaces) into *units of
 * 10^-scale.  Returns 0, or -1 with errstr (and *units untouched) when s is
 * NULL or not such a decimal, has more than scale digits after the point
 * (the amount would not be exact), or its magnitude does not fit an int64_t
 * ("9223372039" at scale 9 is refused, it does not wrap). */
int ss_money_parse(const char *s, int scale, int64_t *units, char *errstr, size_t errstr_size);

/* *sum += v; returns -1 and leaves *sum unchanged when it would overflow. */
int ss_money_add(int64_t *sum, int64_t v);

/* Writes units as a decimal with the fraction's trailing zeros trimmed
 * ("6.07", "12", "-0.5"; no point when the fraction is zero).  Returns the
 * length (snprintf's convention: bufsize too small truncates). */
int ss_money_format(int64_t units, int scale, char *buf, size_t bufsize);

#endif
