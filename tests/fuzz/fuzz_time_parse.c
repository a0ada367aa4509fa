/* Fuzzes ss_time_parse: no crash, and every accepted time formats and parses
 * back to the same instant. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/sstime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char s[64];
    if (size >= sizeof s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    int64_t t, back;
    if (ss_time_parse(s, &t) != 0)
        return 0;
    char buf[SS_TIME_BUFSIZE];
    if (ss_time_format(t, buf, sizeof buf) == 0)
        return 0; /* outside what gmtime formats */
    if (ss_time_parse(buf, &back) != 0 || back != t)
        abort();
    return 0;
}
