/* Fuzzes query-string parsing: no crash; a decoded value is NUL-terminated,
 * fits, is valid UTF-8 and holds no control characters. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "http/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const names[] = {"q", "status", "limit", "cursor", "", NULL};
    char buf[32], bad[64];
    const char *qs = (const char *)data;
    for (size_t i = 0; names[i]; i++) {
        int r = ss_query_get(qs, size, names[i], buf, sizeof buf);
        if (r >= 0) {
            if ((size_t)r >= sizeof buf || strlen(buf) != (size_t)r ||
                !ss_utf8_valid(buf, (size_t)r))
                abort();
            for (int j = 0; j < r; j++)
                if ((unsigned char)buf[j] < 0x20 || buf[j] == 0x7f)
                    abort();
        } else if (r != SS_QUERY_ABSENT && r != SS_QUERY_TOO_LONG && r != SS_QUERY_MALFORMED) {
            abort();
        }
    }
    if (ss_query_all_known(qs, size, names, bad, sizeof bad) == 0 && strlen(bad) >= sizeof bad)
        abort();
    return 0;
}
