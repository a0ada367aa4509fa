/* libFuzzer, differential: the strict JSON scanner (envelope/json_scan.h)
 * against json-c as the webhook receiver used it before the scanner
 * (json_tokener_new_ex(64) + JSON_TOKENER_STRICT + only whitespace after the
 * parse end + the lexical pass that refuses what json-c's strict mode still
 * lets through; copied below from the old libs/webhook/src/event.c).
 *
 * For every input:
 *   - ss_json_check's verdict equals that reference verdict, except for the
 *     documented differences below, where the scanner's verdict is checked
 *     against RFC 8259 instead;
 *   - when accepted: ss_json_root is the trimmed text; the nesting depth D
 *     is accepted with max_depth D and refused with D - 1; and the value
 *     rebuilt from the scanner's spans (objects member by member with
 *     ss_json_iter_next, keys and string values decoded by ss_json_string,
 *     other values parsed by json-c from their exact spans, duplicate keys
 *     last-wins) is json_object_equal to json-c's tree.  That checks member
 *     order/count, the exactness of every value span, and ss_json_string
 *     against json-c's decoding (strings holding \u0000, which
 *     ss_json_string refuses by contract, are checked to really hold one);
 *   - the input's first bytes, as UTF-16 code units written as \uXXXX
 *     escapes, decode as json-c decodes them (surrogate pairs, lone
 *     surrogates), which random bytes alone would seldom reach.
 *
 * Documented differences (json-c is wrong, the scanner follows RFC 8259):
 *   1. json-c's strict mode accepts numbers RFC 8259 refuses when a
 *      delimiter follows them: "[1.]", "[-0.]", "[1.e5]", "[00]", "[-01]".
 *      Such inputs are not compared; the scanner must refuse them.
 *   2. A bare top-level number or literal ("1", "-0.5e3", "true", "null")
 *      is valid JSON text, but json-c's streaming tokener returns
 *      json_tokener_continue because the token could go on ("12", "nulls");
 *      the old code refused it (harmless there: an Event is an object).
 *      For such a root json-c is given the input with one space appended,
 *      which ends the token and changes nothing else.
 *   3. json-c 0.16 turns a surrogate pair into U+FFFD when the code point
 *      it encodes has bits 15..11 equal to 11011 (U+1D800..U+1DFFF,
 *      U+2D800.., e.g. "\ud836\udc00" = U+1D800): it tests the combined
 *      code point with IS_HIGH_SURROGATE/IS_LOW_SURROGATE, which only mask
 *      the low 16 bits (json-c pull request #893).  ss_json_string decodes
 *      those pairs correctly; strings holding one are not compared with
 *      json-c's decoding (the unit test checks them).
 * Nesting depth is counted the same way by both (64 nested arrays/objects
 * accepted, 65 refused), so it needs no exception. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <envelope/json_scan.h>

#define MAX_DEPTH 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

_Noreturn static void die(const char *what, const char *p, size_t n) {
    fprintf(stderr, "fuzz_json_scan: %s\ninput (%zu bytes): ", what, n);
    for (size_t i = 0; i < n && i < 512; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f)
            fputc(c, stderr);
        else
            fprintf(stderr, "\\x%02x", c);
    }
    fputc('\n', stderr);
    abort();
}

static int is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int only_blanks(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!is_ws(p[i]))
            return 0;
    return 1;
}

/* The old code's lexical pass (HEAD~1:libs/webhook/src/event.c), verbatim:
 * json-c's strict mode still lets through 'single-quoted' strings, NaN and
 * Infinity, and raw control characters inside strings. */
static int lex_ok(const char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"') {
            for (i++; i < n && p[i] != '"'; i++) {
                if ((unsigned char)p[i] < 0x20)
                    return 0;
                if (p[i] == '\\')
                    i++; /* the escaped character; json-c validates it */
            }
            if (i >= n)
                return 0;
            i++;
        } else if ((c >= '0' && c <= '9') || c == '-') {
            while (i < n && ((p[i] >= '0' && p[i] <= '9') || p[i] == '.' || p[i] == 'e' ||
                             p[i] == 'E' || p[i] == '+' || p[i] == '-'))
                i++;
        } else if (c >= 'a' && c <= 'z') {
            size_t start = i;
            while (i < n && p[i] >= 'a' && p[i] <= 'z')
                i++;
            size_t w = i - start;
            if (!((w == 4 && memcmp(p + start, "true", 4) == 0) ||
                  (w == 5 && memcmp(p + start, "false", 5) == 0) ||
                  (w == 4 && memcmp(p + start, "null", 4) == 0)))
                return 0;
        } else if (c == '{' || c == '}' || c == '[' || c == ']' || c == ':' || c == ',' ||
                   c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            i++;
        } else {
            return 0;
        }
    }
    return 1;
}

/* RFC 8259: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?, whole token. */
static int rfc_number(const char *p, size_t n) {
    size_t k = 0, d;
    if (k < n && p[k] == '-')
        k++;
    if (k < n && p[k] == '0')
        k++;
    else if (k < n && p[k] >= '1' && p[k] <= '9')
        while (k < n && p[k] >= '0' && p[k] <= '9')
            k++;
    else
        return 0;
    if (k < n && p[k] == '.') {
        for (d = ++k; k < n && p[k] >= '0' && p[k] <= '9'; k++)
            ;
        if (k == d)
            return 0;
    }
    if (k < n && (p[k] == 'e' || p[k] == 'E')) {
        k++;
        if (k < n && (p[k] == '+' || p[k] == '-'))
            k++;
        for (d = k; k < n && p[k] >= '0' && p[k] <= '9'; k++)
            ;
        if (k == d)
            return 0;
    }
    return k == n;
}

/* 1 when a number token outside strings (tokenised as lex_ok does: a run of
 * [0-9.eE+-] starting with a digit or '-') is not an RFC 8259 number.  No
 * valid JSON text holds one: after a number only whitespace , ] } may come. */
static int has_non_rfc_number(const char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        char c = p[i];
        if (c == '"') {
            for (i++; i < n && p[i] != '"'; i++)
                if (p[i] == '\\')
                    i++;
            i++;
        } else if ((c >= '0' && c <= '9') || c == '-') {
            size_t s = i;
            while (i < n && ((p[i] >= '0' && p[i] <= '9') || p[i] == '.' || p[i] == 'e' ||
                             p[i] == 'E' || p[i] == '+' || p[i] == '-'))
                i++;
            if (!rfc_number(p + s, i - s))
                return 1;
        } else if (c >= 'a' && c <= 'z') {
            while (i < n && p[i] >= 'a' && p[i] <= 'z')
                i++;
        } else {
            i++;
        }
    }
    return 0;
}

/* json-c, strict, exactly as the old code (plus difference 2).  Returns 1
 * with the tree in *out (caller puts it; NULL for the literal null), or 0
 * when refused. */
static int jc_parse(const char *p, size_t n, int depth, json_object **out) {
    *out = NULL;
    if (n == 0 || memchr(p, '\0', n) != NULL || !lex_ok(p, n))
        return 0;
    size_t a = 0;
    while (a < n && is_ws(p[a]))
        a++;
    char *copy = malloc(n + 1);
    if (copy == NULL)
        abort();
    memcpy(copy, p, n);
    if (a < n && p[a] != '"' && p[a] != '{' && p[a] != '[')
        copy[n++] = ' '; /* difference 2: let the number or literal end */
    json_tokener *tok = json_tokener_new_ex(depth);
    if (tok == NULL)
        abort();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *root = json_tokener_parse_ex(tok, copy, (int)n);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    int ok = jerr == json_tokener_success && end <= n && only_blanks(copy + end, n - end);
    free(copy);
    if (!ok) {
        json_object_put(root);
        return 0;
    }
    *out = root;
    return 1;
}

/* Nesting depth of an accepted text (brackets outside strings). */
static int nesting(const char *p, size_t n) {
    int d = 0, max = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '"') {
            for (i++; i < n && p[i] != '"'; i++)
                if (p[i] == '\\')
                    i++;
        } else if (p[i] == '{' || p[i] == '[') {
            if (++d > max)
                max = d;
        } else if (p[i] == '}' || p[i] == ']') {
            d--;
        }
    }
    return max;
}

/* Difference 3: the string token holds a surrogate pair that json-c
 * decodes as U+FFFD. */
static int jc_pair_bug(ss_json_span_t s) {
    unsigned prev = 0; /* the previous \u escape's unit, 0 after anything else */
    for (size_t i = 1; i + 1 < s.len; i++) {
        if (s.p[i] != '\\') {
            prev = 0;
            continue;
        }
        if (s.p[i + 1] != 'u' || i + 6 > s.len) {
            prev = 0;
            i++;
            continue;
        }
        char hex[5] = {s.p[i + 2], s.p[i + 3], s.p[i + 4], s.p[i + 5], 0};
        unsigned u = (unsigned)strtoul(hex, NULL, 16);
        if (prev >= 0xD800 && prev <= 0xDBFF && u >= 0xDC00 && u <= 0xDFFF) {
            unsigned cp = 0x10000 + ((prev - 0xD800) << 10) + (u - 0xDC00);
            if ((cp & 0xF800) == 0xD800)
                return 1;
            u = 0; /* the pair is used up */
        }
        prev = u;
        i += 5;
    }
    return 0;
}

static const char *g_in;
static size_t g_n;

/* A string token decoded by json-c. */
static json_object *jc_string(ss_json_span_t s) {
    json_object *o;
    if (!jc_parse(s.p, s.len, MAX_DEPTH, &o) || !json_object_is_type(o, json_type_string))
        die("json-c refuses a string token the scanner delimited", g_in, g_n);
    return o;
}

/* The value rebuilt from the scanner's spans (see the top comment). */
static json_object *rebuild(ss_json_span_t v) {
    if (v.len == 0 || v.p < g_in || v.p + v.len > g_in + g_n)
        die("value span empty or outside the input", g_in, g_n);
    if (v.p[0] == '"') {
        char *buf = malloc(v.len);
        if (buf == NULL)
            abort();
        json_object *ref = jc_string(v);
        const char *rs = json_object_get_string(ref);
        size_t rlen = (size_t)json_object_get_string_len(ref);
        int n = ss_json_string(v, buf, v.len);
        json_object *o;
        if (n == -1) {
            /* by contract only for \u0000, which json-c then holds */
            if (strlen(rs) == rlen)
                die("ss_json_string refused a string without \\u0000", g_in, g_n);
            o = json_object_get(ref);
        } else if (n < 0) {
            die("ss_json_string: a buffer of the token's length is too small", g_in, g_n);
        } else if (jc_pair_bug(v)) {
            o = json_object_get(ref); /* difference 3 */
        } else {
            if ((size_t)n != strlen(buf) || (size_t)n != rlen || memcmp(buf, rs, rlen) != 0)
                die("ss_json_string differs from json-c", g_in, g_n);
            /* one byte too small must say so */
            if (n > 0 && ss_json_string(v, buf, (size_t)n) != -2)
                die("ss_json_string with a too small buffer did not return -2", g_in, g_n);
            o = json_object_new_string_len(buf, n);
        }
        json_object_put(ref);
        free(buf);
        return o;
    }
    ss_json_iter_t it;
    if (v.p[0] != '{') {
        if (ss_json_iter_init(&it, v) != -1)
            die("ss_json_iter_init accepted a non-object", g_in, g_n);
        /* arrays, numbers, literals: json-c parses the exact span */
        json_object *o;
        if (!jc_parse(v.p, v.len, MAX_DEPTH, &o)) {
            fprintf(stderr, "span at %zu: %.*s\n", (size_t)(v.p - g_in), (int)v.len, v.p);
            die("json-c refuses a value span the scanner delimited", g_in, g_n);
        }
        return o;
    }
    if (ss_json_iter_init(&it, v) != 0)
        die("ss_json_iter_init refused an object", g_in, g_n);
    json_object *obj = json_object_new_object();
    ss_json_span_t k, val;
    while (ss_json_iter_next(&it, &k, &val)) {
        if (k.len < 2 || k.p[0] != '"' || k.p[k.len - 1] != '"')
            die("key span is not a string token", g_in, g_n);
        char *key = malloc(k.len);
        if (key == NULL)
            abort();
        int n = ss_json_string(k, key, k.len);
        json_object *ref = jc_string(k);
        const char *rs = json_object_get_string(ref);
        size_t rlen = (size_t)json_object_get_string_len(ref);
        if (n == -1) {
            /* \u0000 in a key: json-c keeps the key up to the NUL */
            if (strlen(rs) == rlen)
                die("ss_json_string refused a key without \\u0000", g_in, g_n);
            snprintf(key, k.len, "%s", rs);
        } else if (n < 0) {
            die("ss_json_string: a buffer of the key's length is too small", g_in, g_n);
        } else if (jc_pair_bug(k)) {
            snprintf(key, k.len, "%s", rs); /* difference 3: json-c's key */
        } else {
            if ((size_t)n != rlen || memcmp(key, rs, rlen) != 0)
                die("ss_json_string of a key differs from json-c", g_in, g_n);
            /* ss_json_key_is decodes escaped keys into 64 bytes */
            if ((n < 64 || memchr(k.p, '\\', k.len) == NULL) && !ss_json_key_is(k, key))
                die("ss_json_key_is does not match the decoded key", g_in, g_n);
        }
        json_object_put(ref);
        json_object_object_add(obj, key, rebuild(val)); /* last one wins, as json-c */
        free(key);
    }
    return obj;
}

/* Random inputs seldom spell surrogate pairs: also read the input's first
 * bytes as UTF-16 code units, write them as a string of \uXXXX escapes
 * (mixed with a plain byte when a unit's low bit says so) and compare that
 * string's decoding with json-c's. */
static void check_escapes(const uint8_t *data, size_t size) {
    char tok[2 + 32 * 7 + 1];
    size_t n = 0;
    tok[n++] = '"';
    for (size_t i = 0; i + 1 < size && i < 64; i += 2) {
        unsigned u = (unsigned)data[i] << 8 | data[i + 1];
        /* bias towards the surrogate ranges and \u0000 */
        if ((u & 0xC000) == 0xC000)
            u = 0xD800 | (u & 0x07FF);
        n += (size_t)snprintf(tok + n, sizeof(tok) - n, u & 0x0100 ? "\\u%04X" : "\\u%04x", u);
        if ((u & 0x3) == 0x3)
            tok[n++] = 'x';
    }
    tok[n++] = '"';
    if (ss_json_check(tok, n, 0, NULL) != 0)
        die("refused a string of \\u escapes", tok, n);
    g_in = tok;
    g_n = n;
    json_object *o = rebuild((ss_json_span_t){tok, n});
    json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = (const char *)data;
    const char *why = NULL;
    check_escapes(data, size);
    int scan_ok = ss_json_check(p, size, MAX_DEPTH, &why) == 0;
    json_object *ref;
    int ref_ok = jc_parse(p, size, MAX_DEPTH, &ref);
    if (!scan_ok && (why == NULL || why[0] == '\0'))
        die("refused without a reason", p, size);

    if (has_non_rfc_number(p, size)) {
        /* difference 1: json-c's verdict does not count here */
        if (scan_ok)
            die("scanner accepted a number RFC 8259 refuses", p, size);
        json_object_put(ref);
        return 0;
    }
    if (scan_ok != ref_ok) {
        char msg[160];
        snprintf(msg, sizeof(msg), "verdicts differ: scanner %s (%s), json-c %s",
                 scan_ok ? "accepts" : "refuses", scan_ok ? "" : why,
                 ref_ok ? "accepts" : "refuses");
        die(msg, p, size);
    }
    if (!scan_ok) {
        json_object_put(ref);
        return 0;
    }

    ss_json_span_t root = ss_json_root(p, size);
    size_t a = 0, b = size;
    while (a < b && is_ws(p[a]))
        a++;
    while (b > a && is_ws(p[b - 1]))
        b--;
    if (root.p != p + a || root.len != b - a)
        die("ss_json_root is not the trimmed text", p, size);

    int d = nesting(p, size);
    if (ss_json_check(p, size, d, NULL) != 0)
        die("refused at its own nesting depth", p, size);
    if (d > 0 && ss_json_check(p, size, d - 1, NULL) == 0)
        die("accepted with max_depth one below its nesting depth", p, size);

    g_in = p;
    g_n = size;
    json_object *mine = rebuild(root);
    if (!json_object_equal(mine, ref))
        die("the value rebuilt from the scanner's spans differs from json-c's", p, size);
    json_object_put(mine);
    json_object_put(ref);
    return 0;
}
