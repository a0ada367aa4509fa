/* The /db keyset cursor (see cursor.h). */
#include "cursor.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"

static int valid_id(const char *id, size_t n) {
    if (n == 0 || n > GW_CURSOR_MAX_ID)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int gw_cursor_encode(int64_t usec, const char *id, char *out, size_t outsize) {
    char raw[32 + GW_CURSOR_MAX_ID];
    size_t idlen = strlen(id);
    if (!valid_id(id, idlen) || usec < GW_CURSOR_MIN_USEC || usec > GW_CURSOR_MAX_USEC)
        return -1;
    int len = snprintf(raw, sizeof raw, "%lld:%s", (long long)usec, id);
    if (len < 0 || (size_t)len >= sizeof raw || (size_t)len * 2 + 1 > outsize)
        return -1;
    ss_hex_encode((const unsigned char *)raw, (size_t)len, out);
    return 0;
}

int gw_cursor_decode(const char *hex, int64_t *usec, char *id, size_t idsize) {
    char raw[32 + GW_CURSOR_MAX_ID];
    size_t n = strlen(hex);
    if (n == 0 || n % 2 || n / 2 >= sizeof raw)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = ss_hex_value(hex[2 * i]), lo = ss_hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        raw[i] = (char)(hi << 4 | lo);
    }
    size_t len = n / 2;
    const char *colon = memchr(raw, ':', len);
    if (!colon)
        return -1;
    /* The time: an optional '-' and 1..18 digits (no overflow possible). */
    const char *p = raw;
    int neg = *p == '-';
    p += neg;
    size_t digits = (size_t)(colon - p);
    if (digits == 0 || digits > 18)
        return -1;
    int64_t v = 0;
    for (; p < colon; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    v = neg ? -v : v;
    if (v < GW_CURSOR_MIN_USEC || v > GW_CURSOR_MAX_USEC)
        return -1;
    size_t idlen = len - (size_t)(colon + 1 - raw);
    if (!valid_id(colon + 1, idlen) || idlen >= idsize)
        return -1;
    memcpy(id, colon + 1, idlen);
    id[idlen] = '\0';
    *usec = v;
    return 0;
}
