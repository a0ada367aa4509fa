/* The /db keyset cursor: an opaque token (hex of "<µs since the epoch>:<id>")
 * that names the last row of a page.  Pure functions, fuzzed on their own
 * (tests/fuzz/fuzz_cursor.c): whatever a client sends, decoding either fails
 * (the caller answers 400) or yields values PostgreSQL accepts. */
#ifndef SS_GATEWAY_CURSOR_H
#define SS_GATEWAY_CURSOR_H

#include <stddef.h>
#include <stdint.h>

/* Longest id in a cursor (EasyPost ids are short: "shp_" + 32 hex). */
#define GW_CURSOR_MAX_ID   128
/* Timestamps a cursor may carry: years 0001 to 9999 (PostgreSQL's
 * timestamptz goes further; nothing EasyPost stores does). */
#define GW_CURSOR_MIN_USEC (-62135596800000000LL)
#define GW_CURSOR_MAX_USEC 253402300799999999LL

/* Writes the cursor of (usec, id) into out.  Returns 0, or -1 when id is not
 * a cursor id or out is too small (the page then has no next cursor). */
int gw_cursor_encode(int64_t usec, const char *id, char *out, size_t outsize);

/* Reads a cursor.  Returns 0 with *usec and id ([A-Za-z0-9_-]{1,128}), or -1
 * for anything else: odd length, non-hex, no colon, a time that is not a
 * decimal integer within the range above, an id with other characters. */
int gw_cursor_decode(const char *hex, int64_t *usec, char *id, size_t idsize);

#endif
