/* Query-string parsing, pure functions (no civetweb), so that they can be
 * unit tested and fuzzed on their own.
 *
 * A query string is "name=value&name=value…" with application/x-www-form-
 * urlencoded escapes ('+' is a space, %XX a byte).  Decoded values must be
 * well-formed UTF-8 without control characters (NUL included): PostgreSQL
 * refuses invalid UTF-8, and a value that cannot be stored is the client's
 * mistake (400), never the server's (500). */
#ifndef SS_HTTP_QUERY_H
#define SS_HTTP_QUERY_H

#include <stddef.h>

enum {
    SS_QUERY_ABSENT = -1,    /* no such parameter */
    SS_QUERY_TOO_LONG = -2,  /* decoded value does not fit (with its NUL) */
    SS_QUERY_MALFORMED = -3, /* bad %-escape, invalid UTF-8 or a control character */
};

/* Decodes the first parameter called name from qs[0..qslen) into buf.
 * Returns the decoded length (0 for "name=" or a bare "name"), or one of
 * SS_QUERY_*; buf is always NUL-terminated when bufsize > 0. */
int ss_query_get(const char *qs, size_t qslen, const char *name, char *buf, size_t bufsize);

/* Checks that every parameter name in qs is one of known (NULL-terminated).
 * Returns 1 when all are known, 0 otherwise with the first unknown name
 * (truncated, made printable) in bad. */
int ss_query_all_known(const char *qs, size_t qslen, const char *const *known, char *bad,
                       size_t badsize);

#endif
