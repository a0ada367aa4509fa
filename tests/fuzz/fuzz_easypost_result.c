/* Fuzzes ss_ep_result_parse, which reads every EasyPost answer (bodies from
 * the network) into status, JSON and error fields. */
#include <stdint.h>
#include <stdlib.h>

#include "easypost/client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const long statuses[] = {200, 201, 401, 404, 422, 429, 500};
    if (size < 1)
        return 0;
    ss_ep_result_t r;
    ss_ep_result_parse(statuses[data[0] % 7], (const char *)data + 1, size - 1, &r);
    for (size_t i = 0; i < r.n_field_errors; i++)
        (void)r.field_errors[i].message;
    ss_ep_result_free(&r);
    return 0;
}
