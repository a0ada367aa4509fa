/* Query-string parsing (see http/query.h). */
#include "http/query.h"

#include <string.h>

#include "common/util.h"

/* Decodes src[0..n) (form encoding) into dst.  Returns the length, or
 * SS_QUERY_TOO_LONG / SS_QUERY_MALFORMED. */
static int decode(const char *src, size_t n, char *dst, size_t dstsize) {
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '+')
            c = ' ';
        else if (c == '%') {
            if (n - i < 3)
                return SS_QUERY_MALFORMED;
            int hi = ss_hex_value(src[i + 1]), lo = ss_hex_value(src[i + 2]);
            if (hi < 0 || lo < 0)
                return SS_QUERY_MALFORMED;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f)
            return SS_QUERY_MALFORMED;
        if (out + 1 >= dstsize)
            return SS_QUERY_TOO_LONG;
        dst[out++] = (char)c;
    }
    dst[out] = '\0';
    if (!ss_utf8_valid(dst, out))
        return SS_QUERY_MALFORMED;
    return (int)out;
}

int ss_query_get(const char *qs, size_t qslen, const char *name, char *buf, size_t bufsize) {
    if (bufsize == 0)
        return SS_QUERY_TOO_LONG;
    buf[0] = '\0';
    size_t nlen = strlen(name);
    const char *p = qs, *end = qs + qslen;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq ? eq : stop;
        if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0) {
            const char *v = eq ? eq + 1 : stop;
            return decode(v, (size_t)(stop - v), buf, bufsize);
        }
        p = amp ? amp + 1 : end;
    }
    return SS_QUERY_ABSENT;
}

int ss_query_all_known(const char *qs, size_t qslen, const char *const *known, char *bad,
                       size_t badsize) {
    const char *p = qs, *end = qs + qslen;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        size_t klen = (size_t)((eq ? eq : stop) - p);
        if (klen > 0) {
            int ok = 0;
            for (size_t i = 0; known[i] && !ok; i++)
                ok = strlen(known[i]) == klen && memcmp(known[i], p, klen) == 0;
            if (!ok) {
                size_t j = 0;
                for (; j < klen && j + 1 < badsize && j < 60; j++) {
                    unsigned char c = (unsigned char)p[j];
                    bad[j] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
                }
                if (badsize > 0)
                    bad[j] = '\0';
                return 0;
            }
        }
        p = amp ? amp + 1 : end;
    }
    return 1;
}
