#include "common/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

int ss_secure_equal(const void *a, size_t alen, const void *b, size_t blen) {
    const unsigned char *pa = a, *pb = b;
    size_t n = alen > blen ? alen : blen;
    unsigned char diff = (unsigned char)(alen != blen);
    for (size_t i = 0; i < n; i++) {
        /* Read within bounds; a shorter input compares against itself. */
        unsigned char x = i < alen ? pa[i] : 0;
        unsigned char y = i < blen ? pb[i] : 0;
        diff |= (unsigned char)(x ^ y);
    }
    return diff == 0;
}

int ss_random_bytes(void *buf, size_t n) {
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

void ss_hex_encode(const unsigned char *in, size_t n, char *out) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

int ss_hex_value(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void ss_random_id(const char *prefix, char *buf, size_t bufsize) {
    unsigned char raw[16];
    char hex[33];
    if (ss_random_bytes(raw, sizeof raw) != 0) {
        /* getrandom does not fail on Linux >= 3.17 once seeded; be safe. */
        for (size_t i = 0; i < sizeof raw; i++)
            raw[i] = (unsigned char)rand();
    }
    ss_hex_encode(raw, sizeof raw, hex);
    snprintf(buf, bufsize, "%s%s", prefix ? prefix : "", hex);
}

int ss_backoff_next(ss_backoff_t *b) {
    long ceil = b->base_ms > 0 ? b->base_ms : 100;
    int max = b->max_ms > 0 ? b->max_ms : 30000;
    for (int i = 0; i < b->attempt && ceil < max; i++)
        ceil *= 2;
    if (ceil > max)
        ceil = max;
    b->attempt++;
    unsigned int r;
    if (ss_random_bytes(&r, sizeof r) != 0)
        r = (unsigned int)rand();
    long half = ceil / 2;
    return (int)(half + (long)(r % (unsigned long)(ceil - half + 1)));
}

void ss_backoff_reset(ss_backoff_t *b) {
    b->attempt = 0;
}

int ss_buf_reserve(ss_buf_t *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int ss_buf_append(ss_buf_t *b, const void *p, size_t n) {
    if (ss_buf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int ss_buf_appendf(ss_buf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || ss_buf_reserve(b, (size_t)n) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int ss_buf_append_json_str(ss_buf_t *b, const char *s) {
    static const char hex[] = "0123456789abcdef";
    if (ss_buf_append(b, "\"", 1) != 0)
        return -1;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    const unsigned char *run = p;
    for (; *p; p++) {
        char esc[7];
        size_t elen = 0;
        switch (*p) {
        case '"':
            esc[0] = '\\';
            esc[1] = '"';
            elen = 2;
            break;
        case '\\':
            esc[0] = '\\';
            esc[1] = '\\';
            elen = 2;
            break;
        case '\n':
            esc[0] = '\\';
            esc[1] = 'n';
            elen = 2;
            break;
        case '\r':
            esc[0] = '\\';
            esc[1] = 'r';
            elen = 2;
            break;
        case '\t':
            esc[0] = '\\';
            esc[1] = 't';
            elen = 2;
            break;
        default:
            if (*p < 0x20) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[*p >> 4];
                esc[5] = hex[*p & 0xf];
                elen = 6;
            }
        }
        if (elen) {
            if (ss_buf_append(b, run, (size_t)(p - run)) != 0 || ss_buf_append(b, esc, elen) != 0)
                return -1;
            run = p + 1;
        }
    }
    if (ss_buf_append(b, run, (size_t)(p - run)) != 0)
        return -1;
    return ss_buf_append(b, "\"", 1);
}

void ss_buf_reset(ss_buf_t *b) {
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void ss_buf_free(ss_buf_t *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int ss_utf8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t len;
        unsigned lo = 0x80, hi = 0xbf; /* range of the second byte */
        if (c >= 0xc2 && c <= 0xdf)
            len = 2;
        else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            else if (c == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            else if (c == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        } else
            return 0;
        if ((size_t)(end - p) < len || p[1] < lo || p[1] > hi)
            return 0;
        for (size_t i = 2; i < len; i++)
            if ((p[i] & 0xc0) != 0x80)
                return 0;
        p += len;
    }
    return 1;
}
