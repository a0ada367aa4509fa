/* Fuzzes the /db cursor: no crash; every accepted cursor carries a time in
 * range and an id of the allowed characters, and encodes back to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char in[700], id[GW_CURSOR_MAX_ID + 1], again[700];
    if (size >= sizeof in)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    int64_t t;
    if (gw_cursor_decode(in, &t, id, sizeof id) != 0)
        return 0;
    if (t < GW_CURSOR_MIN_USEC || t > GW_CURSOR_MAX_USEC || id[0] == '\0')
        abort();
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            abort();
    if (gw_cursor_encode(t, id, again, sizeof again) != 0)
        abort();
    int64_t t2;
    char id2[GW_CURSOR_MAX_ID + 1];
    if (gw_cursor_decode(again, &t2, id2, sizeof id2) != 0 || t2 != t || strcmp(id, id2) != 0)
        abort();
    return 0;
}
