/* A strict JSON scanner that validates in place and hands out byte spans:
 * the envelope's parser and what its writer reads producers' objects with.
 *
 * Why not json-c here: the producers and the envelope parser only need to
 * know that a text is one valid JSON value, read a few short strings out of
 * it, and forward the object as it came.  json-c builds a tree of ~150 heap
 * objects for a 3.5 KB EasyPost Event and the envelope was re-serialised
 * from it: 46 us per webhook on this machine, most of the receiver's CPU,
 * and the mallocs fought over arenas across 128 worker threads.  The
 * scanner makes one pass without allocating (~4 us), and the envelope
 * splices the verified bytes instead of re-encoding them.  Consumers that
 * need a tree (libs/sync) parse the object span with json-c; the fuzz
 * driver checks that the two agree on what is JSON.
 *
 * Grammar: RFC 8259, nothing more (no comments, single quotes, NaN, leading
 * zeros, trailing commas, raw control characters in strings, or trailing
 * data).  Bytes >= 0x80 inside strings are passed through unchecked, as
 * json-c does.  No allocation; the input need not be NUL-terminated. */
#ifndef SS_ENVELOPE_JSON_SCAN_H
#define SS_ENVELOPE_JSON_SCAN_H

#include <stddef.h>

#define SS_JSON_MAX_DEPTH 64

typedef struct {
    const char *p; /* first byte of the token ('"' of a string, '{' of an object…) */
    size_t len;    /* bytes, up to and including the closing quote or bracket */
} ss_json_span_t;

/* 0 when p[0..n) is exactly one JSON value with optional whitespace around
 * it and at most max_depth (<= SS_JSON_MAX_DEPTH) nested objects/arrays;
 * otherwise -1 with *why a static description (never quoting the input). */
int ss_json_check(const char *p, size_t n, int max_depth, const char **why);

/* The value of a checked text, whitespace trimmed. */
ss_json_span_t ss_json_root(const char *p, size_t n);

/* Iterates the members of an object span that ss_json_check accepted
 * (behaviour on unchecked input is bounded by the span but undefined). */
typedef struct {
    const char *p, *end;
} ss_json_iter_t;

/* 0 and it set up when v is an object, -1 otherwise. */
int ss_json_iter_init(ss_json_iter_t *it, ss_json_span_t v);
/* 1 with the next member's key (a string token, quotes included) and value,
 * 0 at the end. */
int ss_json_iter_next(ss_json_iter_t *it, ss_json_span_t *key, ss_json_span_t *value);

/* The same over the elements of an array span: 0 and it set up when v is an
 * array, -1 otherwise; then 1 with the next element, 0 at the end. */
int ss_json_array_init(ss_json_iter_t *it, ss_json_span_t v);
int ss_json_array_next(ss_json_iter_t *it, ss_json_span_t *value);

/* 1 when the key token decodes to name. */
int ss_json_key_is(ss_json_span_t key, const char *name);

/* The members named in names (NULL-terminated) of an object span that
 * ss_json_check accepted, into out[i] ({NULL, 0} when absent); the last one
 * wins on duplicates, as with json-c. */
void ss_json_pick(ss_json_span_t obj, const char *const *names, ss_json_span_t *out);

/* ss_json_array_next and, when the element is an object, ss_json_pick of it,
 * in one pass over the element (the gateway's capture of list pages):
 * out[i] all {NULL, 0} when the element is not an object. */
int ss_json_array_next_pick(ss_json_iter_t *it, const char *const *names, ss_json_span_t *out,
                            ss_json_span_t *value);

/* Decodes a string token into out as NUL-terminated UTF-8.  Returns the
 * length; -1 when v is not a string or holds \u0000 (which a C string
 * cannot carry); -2 when it does not fit in outsize bytes. */
int ss_json_string(ss_json_span_t v, char *out, size_t outsize);

#endif
