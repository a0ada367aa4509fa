/* Small helpers every service needs. */
#ifndef SS_COMMON_UTIL_H
#define SS_COMMON_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Constant-time comparison of two byte strings (length mismatch is still
 * compared over the longer input's time).  Returns 1 when equal. */
int ss_secure_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Fills buf with n random bytes from the OS.  Returns 0 or -1. */
int ss_random_bytes(void *buf, size_t n);

/* Writes prefix + 32 lower-case hex characters of randomness + NUL
 * (e.g. "req_…").  buf needs strlen(prefix) + 33 bytes. */
void ss_random_id(const char *prefix, char *buf, size_t bufsize);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void ss_hex_encode(const unsigned char *in, size_t n, char *out);
/* The value of one hex digit (either case), or -1. */
int ss_hex_value(int c);

/* Capped exponential backoff with full jitter. */
typedef struct {
    int base_ms; /* first delay ceiling */
    int max_ms;  /* cap */
    int attempt; /* failures so far; reset with ss_backoff_reset */
} ss_backoff_t;

/* Returns the next delay in ms (random in [ceil/2, ceil]) and counts the attempt. */
int ss_backoff_next(ss_backoff_t *b);
void ss_backoff_reset(ss_backoff_t *b);

/* A growable byte buffer, always NUL-terminated. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} ss_buf_t;

/* Makes room for extra more bytes (and the NUL) in one allocation. */
int ss_buf_reserve(ss_buf_t *b, size_t extra);
int ss_buf_append(ss_buf_t *b, const void *p, size_t n);
int ss_buf_appendf(ss_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included. */
int ss_buf_append_json_str(ss_buf_t *b, const char *s);
void ss_buf_reset(ss_buf_t *b); /* len = 0, keeps memory */
void ss_buf_free(ss_buf_t *b);

/* 1 when s[0..n) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), else 0. */
int ss_utf8_valid(const char *s, size_t n);

#endif
