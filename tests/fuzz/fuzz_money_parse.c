/* Fuzzes ss_money_parse: no crash (no signed overflow under UBSan), and
 * every accepted amount formats and parses back to the same units. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/money.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char s[64];
    if (size < 1 || size >= sizeof s)
        return 0;
    int scale = data[0] % (SS_MONEY_MAX_SCALE + 1);
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    int64_t v, back;
    char err[64], buf[48];
    if (ss_money_parse(s, scale, &v, err, sizeof err) != 0)
        return 0;
    ss_money_format(v, scale, buf, sizeof buf);
    if (ss_money_parse(buf, scale, &back, err, sizeof err) != 0 || back != v)
        abort();
    return 0;
}
