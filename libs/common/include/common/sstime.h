/* Timestamps as EasyPost sends them, and clocks. */
#ifndef SS_COMMON_SSTIME_H
#define SS_COMMON_SSTIME_H

#include <stddef.h>
#include <stdint.h>

/* Parses ISO 8601 / RFC 3339 forms: "2024-08-15T20:44:40Z",
 * "2024-08-15T20:44:40.123Z", "2024-08-15T20:44:40+00:00",
 * "2024-08-15T20:44:40.123456-07:00", and a bare date "2024-08-15"
 * (midnight UTC).  Stores microseconds since the Unix epoch (UTC).
 * Returns 0, or -1 on anything else (out-of-range fields included). */
int ss_time_parse(const char *s, int64_t *usec_out);

/* Formats as "YYYY-MM-DDTHH:MM:SS.ffffffZ" (UTC).  buf needs 28 bytes.
 * Returns the length written, or 0 when buf is too small. */
size_t ss_time_format(int64_t usec, char *buf, size_t bufsize);
#define SS_TIME_BUFSIZE 32

int64_t ss_time_now_usec(void);  /* wall clock */
int64_t ss_time_mono_usec(void); /* monotonic */

#endif
