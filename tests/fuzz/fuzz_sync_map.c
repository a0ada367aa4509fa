/* Fuzzes the sync mapping of objects: arbitrary JSON objects (seeded with
 * EasyPost's Shipments, Trackers, Addresses, Batches, Events) go through THE
 * envelope writer as a gateway object or as a webhook Event's result, are
 * parsed back (what the writer writes, the parser must accept) and mapped by
 * ss_sync_map.  Asserts: no crash, leak or undefined behaviour (money sums,
 * timestamps, nested members of any type); every cell bounded by the size of
 * the message; and every cell valid UTF-8 whenever PostgreSQL would take the
 * message at all (valid UTF-8 bytes, no \u0000, no lone surrogate escape:
 * jsonb refuses those, so such a message is poison whatever its cells).
 *
 * Input: byte 0 chooses the source (bit 0: webhook), the rest is the object. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "envelope/envelope.h"
#include "sync/map.h"

static long u_escape(const char *p, size_t n, size_t i) {
    if (i + 6 > n || p[i] != '\\' || p[i + 1] != 'u')
        return -1;
    long v = 0;
    for (size_t k = 2; k < 6; k++) {
        int h = ss_hex_value(p[i + k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* 1 when the \u escapes of a checked JSON text are ones jsonb accepts. */
static int escapes_pg_accepts(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\\')
            continue;
        if (i + 1 < n && p[i + 1] != 'u') {
            i++; /* \" \\ \/ \n ... */
            continue;
        }
        long v = u_escape(p, n, i);
        if (v == 0 || (v >= 0xDC00 && v <= 0xDFFF))
            return 0;
        if (v >= 0xD800 && v <= 0xDBFF) {
            long lo = u_escape(p, n, i + 6);
            if (lo < 0xDC00 || lo > 0xDFFF)
                return 0;
            i += 6;
        }
        i += 5;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2 || size > 256 * 1024)
        return 0;
    int webhook = data[0] & 1;
    const char *obj = (const char *)data + 1;
    size_t objlen = size - 1;

    char *event = NULL;
    ss_envelope_in_t in = {.source = webhook ? SS_SOURCE_WEBHOOK : SS_SOURCE_GATEWAY,
                           .type = webhook ? "tracker.updated" : "shipment.retrieved",
                           .object = {obj, objlen}};
    if (webhook) {
        static const char head[] = "{\"id\":\"evt_fuzz\",\"object\":\"Event\","
                                   "\"description\":\"tracker.updated\",\"result\":";
        event = malloc(sizeof head + objlen + 1);
        if (!event)
            return 0;
        memcpy(event, head, sizeof head - 1);
        memcpy(event + sizeof head - 1, obj, objlen);
        event[sizeof head - 1 + objlen] = '}';
        in.event_id = "evt_fuzz";
        in.event = (ss_json_span_t){event, sizeof head + objlen};
        /* The receiver hands the writer the Event's result span. */
        ss_json_span_t mem[1];
        static const char *const names[] = {"result", NULL};
        const char *why;
        if (ss_json_check(event, sizeof head + objlen, SS_ENVELOPE_SPAN_MAX_DEPTH, &why) != 0) {
            free(event);
            return 0;
        }
        ss_json_pick(in.event, names, mem);
        if (!mem[0].p || mem[0].p[0] != '{') {
            free(event);
            return 0;
        }
        in.object = mem[0];
        in.checked = 1;
    }

    ss_envelope_msg_t m;
    char err[256];
    if (ss_envelope_write(&m, &in, err, sizeof err) != SS_ENVELOPE_OK) {
        free(event);
        return 0;
    }
    ss_envelope_t e;
    if (ss_envelope_parse(&e, m.value, m.value_len, err, sizeof err) != SS_ENVELOPE_OK)
        abort(); /* the writer wrote what the parser refuses */

    ss_sync_rows_t r;
    ss_sync_rows_init(&r);
    int rc = ss_sync_map(&r, &e, m.value, m.value_len, 0, err, sizeof err);
    if (rc == 0) {
        int check_utf8 =
            ss_utf8_valid(m.value, m.value_len) && escapes_pg_accepts(m.value, m.value_len);
        size_t bound = 6 * m.value_len + 64; /* json-c re-encodes nested members */
        for (int t = 0; t < SS_SYNC_T__COUNT; t++) {
            const ss_sync_table_t *tb = &r.t[t];
            for (size_t i = 0; i < tb->nrows * (size_t)tb->ncols; i++) {
                const char *c = tb->cells[i];
                if (!c)
                    continue;
                size_t n = strnlen(c, bound + 1);
                if (n > bound)
                    abort();
                if (check_utf8 && !ss_utf8_valid(c, n))
                    abort();
            }
        }
    } else if (rc != -1 && rc != -2) {
        abort();
    }
    ss_sync_rows_free(&r);
    ss_envelope_msg_clear(&m);
    free(event);
    return 0;
}
