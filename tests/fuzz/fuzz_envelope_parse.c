/* Fuzzes ss_envelope_parse (what the sync worker reads from Kafka) and, for
 * every accepted envelope, the serialise -> parse round trip, topic and key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ss_envelope_t e;
    char err[256], key[256];
    if (ss_envelope_parse(&e, (const char *)data, size, err, sizeof err) != 0)
        return 0;
    (void)ss_envelope_topic(&e);
    (void)ss_envelope_key(&e, key, sizeof key);
    size_t len;
    char *wire = ss_envelope_serialize(&e, &len);
    if (wire) {
        ss_envelope_t back;
        if (ss_envelope_parse(&back, wire, len, err, sizeof err) != 0)
            abort(); /* what we write we must read */
        if (strcmp(back.event_id, e.event_id) != 0 || back.updated_at_usec != e.updated_at_usec)
            abort();
        ss_envelope_clear(&back);
        free(wire);
    }
    ss_envelope_clear(&e);
    return 0;
}
