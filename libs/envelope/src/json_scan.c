/* Strict JSON scanner (see envelope/json_scan.h). */
#include <envelope/json_scan.h>

#include <stdint.h>
#include <string.h>

#include <common/util.h>

static int is_ws(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Bytes that end a run of plain string content: the quote, the backslash
 * and the control characters. */
static const unsigned char string_stop[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1,
    [0x07] = 1, [0x08] = 1, [0x09] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1,
    [0x0e] = 1, [0x0f] = 1, [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1,
    [0x15] = 1, [0x16] = 1, [0x17] = 1, [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1,
    [0x1c] = 1, [0x1d] = 1, [0x1e] = 1, [0x1f] = 1, ['"'] = 1,  ['\\'] = 1,
};

/* p[*i] is the opening quote.  Leaves *i after the closing quote. */
static int scan_string(const char *p, size_t n, size_t *i, const char **why) {
    size_t k = *i + 1;
    for (;;) {
        while (k < n && !string_stop[(unsigned char)p[k]])
            k++;
        if (k >= n) {
            *why = "unterminated string";
            return -1;
        }
        unsigned char c = (unsigned char)p[k];
        if (c == '"')
            break;
        if (c < 0x20) {
            *why = c == 0 ? "NUL byte in a string" : "control character in a string";
            return -1;
        }
        /* a backslash */
        if (k + 1 >= n) {
            *why = "unterminated string";
            return -1;
        }
        switch (p[k + 1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't': k += 2; break;
        case 'u':
            if (k + 5 >= n || ss_hex_value((unsigned char)p[k + 2]) < 0 ||
                ss_hex_value((unsigned char)p[k + 3]) < 0 ||
                ss_hex_value((unsigned char)p[k + 4]) < 0 ||
                ss_hex_value((unsigned char)p[k + 5]) < 0) {
                *why = "invalid \\u escape";
                return -1;
            }
            k += 6;
            break;
        default: *why = "invalid escape in a string"; return -1;
        }
    }
    *i = k + 1;
    return 0;
}

static size_t digits(const char *p, size_t n, size_t k) {
    while (k < n && p[k] >= '0' && p[k] <= '9')
        k++;
    return k;
}

/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static int scan_number(const char *p, size_t n, size_t *i, const char **why) {
    size_t k = *i, d;
    if (p[k] == '-')
        k++;
    if (k < n && p[k] == '0') {
        k++;
    } else if (k < n && p[k] >= '1' && p[k] <= '9') {
        k = digits(p, n, k + 1);
    } else {
        *why = "invalid number";
        return -1;
    }
    if (k < n && p[k] == '.') {
        d = digits(p, n, k + 1);
        if (d == k + 1) {
            *why = "invalid number";
            return -1;
        }
        k = d;
    }
    if (k < n && (p[k] == 'e' || p[k] == 'E')) {
        k++;
        if (k < n && (p[k] == '+' || p[k] == '-'))
            k++;
        d = digits(p, n, k);
        if (d == k) {
            *why = "invalid number";
            return -1;
        }
        k = d;
    }
    /* "01" and "1x" end here and fail on what follows. */
    *i = k;
    return 0;
}

static int scan_literal(const char *p, size_t n, size_t *i, const char **why) {
    static const char *const words[] = {"true", "false", "null"};
    for (size_t w = 0; w < 3; w++) {
        size_t len = strlen(words[w]);
        if (n - *i >= len && memcmp(p + *i, words[w], len) == 0) {
            *i += len;
            return 0;
        }
    }
    *why = "invalid literal";
    return -1;
}

int ss_json_check(const char *p, size_t n, int max_depth, const char **why) {
    enum { VALUE, VALUE_OR_CLOSE, KEY, KEY_OR_CLOSE, AFTER_VALUE } state = VALUE;
    char stack[SS_JSON_MAX_DEPTH];
    int depth = 0;
    size_t i = 0;
    const char *dummy;
    if (why == NULL)
        why = &dummy;
    if (max_depth > SS_JSON_MAX_DEPTH)
        max_depth = SS_JSON_MAX_DEPTH;

    for (;;) {
        while (i < n && is_ws((unsigned char)p[i]))
            i++;
        if (i >= n)
            break;
        char c = p[i];
        if (c == '\0') {
            *why = "NUL byte";
            return -1;
        }
        switch (state) {
        case VALUE_OR_CLOSE:
            if (c == ']') {
                depth--;
                i++;
                state = AFTER_VALUE;
                break;
            }
            /* fall through */
        case VALUE:
            if (c == '{' || c == '[') {
                if (depth >= max_depth) {
                    *why = "nested too deeply";
                    return -1;
                }
                stack[depth++] = c;
                i++;
                state = c == '{' ? KEY_OR_CLOSE : VALUE_OR_CLOSE;
                break;
            }
            if (c == '"') {
                if (scan_string(p, n, &i, why) < 0)
                    return -1;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                if (scan_number(p, n, &i, why) < 0)
                    return -1;
            } else if (c == 't' || c == 'f' || c == 'n') {
                if (scan_literal(p, n, &i, why) < 0)
                    return -1;
            } else {
                *why = "unexpected character where a value belongs";
                return -1;
            }
            state = AFTER_VALUE;
            break;
        case KEY_OR_CLOSE:
            if (c == '}') {
                depth--;
                i++;
                state = AFTER_VALUE;
                break;
            }
            /* fall through */
        case KEY:
            if (c != '"') {
                *why = "object key is not a string";
                return -1;
            }
            if (scan_string(p, n, &i, why) < 0)
                return -1;
            while (i < n && is_ws((unsigned char)p[i]))
                i++;
            if (i >= n || p[i] != ':') {
                *why = "missing ':' after an object key";
                return -1;
            }
            i++;
            state = VALUE;
            break;
        case AFTER_VALUE:
            if (depth == 0) {
                *why = "trailing data after the value";
                return -1;
            }
            if (c == ',') {
                state = stack[depth - 1] == '{' ? KEY : VALUE;
                i++;
            } else if ((c == '}' && stack[depth - 1] == '{') ||
                       (c == ']' && stack[depth - 1] == '[')) {
                depth--;
                i++;
            } else {
                *why = "expected ',' or a closing bracket";
                return -1;
            }
            break;
        }
    }
    if (state != AFTER_VALUE || depth != 0) {
        *why = i == 0 && state == VALUE ? "empty body" : "unexpected end of input";
        return -1;
    }
    return 0;
}

ss_json_span_t ss_json_root(const char *p, size_t n) {
    size_t a = 0, b = n;
    while (a < b && is_ws((unsigned char)p[a]))
        a++;
    while (b > a && is_ws((unsigned char)p[b - 1]))
        b--;
    return (ss_json_span_t){p + a, b - a};
}

/* After the closing quote of the (checked) string starting at p. */
static const char *skip_string(const char *p, const char *end) {
    for (p++; p < end;) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (q == NULL)
            return end;
        /* Escaped when an odd number of backslashes stands before it. */
        const char *b = q;
        while (b > p && b[-1] == '\\')
            b--;
        if (((q - b) & 1) == 0)
            return q + 1;
        p = q + 1;
    }
    return end;
}

/* Bytes that matter while skipping a container. */
static const unsigned char container_stop[256] = {
    ['"'] = 1, ['{'] = 1, ['['] = 1, ['}'] = 1, [']'] = 1,
};

/* End of the (checked) value starting at p. */
static const char *skip_value(const char *p, const char *end) {
    if (p >= end)
        return end;
    if (*p == '"')
        return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            while (p < end && !container_stop[(unsigned char)*p])
                p++;
            if (p >= end)
                break;
            if (*p == '"') {
                p = skip_string(p, end);
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if (--depth == 0)
                return p + 1;
            p++;
        }
        return end;
    }
    /* number or literal */
    while (p < end && *p != ',' && *p != '}' && *p != ']' && !is_ws((unsigned char)*p))
        p++;
    return p;
}

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && is_ws((unsigned char)*p))
        p++;
    return p;
}

int ss_json_iter_init(ss_json_iter_t *it, ss_json_span_t v) {
    if (v.len < 2 || v.p[0] != '{')
        return -1;
    it->p = v.p + 1;
    it->end = v.p + v.len - 1; /* the closing brace */
    return 0;
}

int ss_json_iter_next(ss_json_iter_t *it, ss_json_span_t *key, ss_json_span_t *value) {
    const char *p = skip_ws(it->p, it->end);
    if (p < it->end && *p == ',')
        p = skip_ws(p + 1, it->end);
    if (p >= it->end || *p != '"')
        return 0;
    const char *k = p;
    p = skip_value(p, it->end);
    *key = (ss_json_span_t){k, (size_t)(p - k)};
    p = skip_ws(p, it->end);
    if (p >= it->end || *p != ':')
        return 0;
    p = skip_ws(p + 1, it->end);
    const char *v = p;
    p = skip_value(p, it->end);
    *value = (ss_json_span_t){v, (size_t)(p - v)};
    it->p = p;
    return 1;
}

int ss_json_array_init(ss_json_iter_t *it, ss_json_span_t v) {
    if (v.len < 2 || v.p[0] != '[')
        return -1;
    it->p = v.p + 1;
    it->end = v.p + v.len - 1; /* the closing bracket */
    return 0;
}

int ss_json_array_next(ss_json_iter_t *it, ss_json_span_t *value) {
    const char *p = skip_ws(it->p, it->end);
    if (p < it->end && *p == ',')
        p = skip_ws(p + 1, it->end);
    if (p >= it->end)
        return 0;
    const char *v = p;
    p = skip_value(p, it->end);
    *value = (ss_json_span_t){v, (size_t)(p - v)};
    it->p = p;
    return 1;
}

static size_t put_utf8(char *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The four hex digits at p, or -1 when one is not (a token that did not
 * come from a checked text). */
static int32_t hex4(const char *p) {
    int32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = ss_hex_value((unsigned char)p[i]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

int ss_json_string(ss_json_span_t v, char *out, size_t outsize) {
    if (v.len < 2 || v.p[0] != '"' || v.p[v.len - 1] != '"')
        return -1;
    if (outsize == 0)
        return -2;
    const char *p = v.p + 1, *end = v.p + v.len - 1;
    size_t o = 0;
    while (p < end) {
        char tmp[4];
        size_t tn;
        if (*p != '\\') {
            tmp[0] = *p++;
            tn = 1;
        } else {
            if (end - p < 2)
                return -1;
            char e = p[1];
            p += 2;
            switch (e) {
            case 'b':
                tmp[0] = '\b';
                tn = 1;
                break;
            case 'f':
                tmp[0] = '\f';
                tn = 1;
                break;
            case 'n':
                tmp[0] = '\n';
                tn = 1;
                break;
            case 'r':
                tmp[0] = '\r';
                tn = 1;
                break;
            case 't':
                tmp[0] = '\t';
                tn = 1;
                break;
            case '"':
            case '\\':
            case '/':
                tmp[0] = e;
                tn = 1;
                break;
            case 'u': {
                if (end - p < 4)
                    return -1;
                int32_t h = hex4(p);
                if (h <= 0)
                    return -1;
                uint32_t cp = (uint32_t)h;
                p += 4;
                /* A high surrogate followed by a low one is one code point;
                 * a lone surrogate becomes U+FFFD (as json-c does). */
                if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                    int32_t lo = hex4(p + 2);
                    if (lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                        p += 6;
                    }
                }
                if (cp >= 0xD800 && cp <= 0xDFFF)
                    cp = 0xFFFD;
                tn = put_utf8(tmp, cp);
                break;
            }
            default: return -1;
            }
        }
        if (o + tn >= outsize)
            return -2;
        memcpy(out + o, tmp, tn);
        o += tn;
    }
    out[o] = '\0';
    return (int)o;
}

int ss_json_key_is(ss_json_span_t key, const char *name) {
    size_t n = strlen(name);
    if (key.len == n + 2 && memchr(key.p, '\\', key.len) == NULL)
        return memcmp(key.p + 1, name, n) == 0;
    if (memchr(key.p, '\\', key.len) == NULL)
        return 0;
    char buf[64];
    int len = ss_json_string(key, buf, sizeof(buf));
    return len >= 0 && (size_t)len == n && memcmp(buf, name, n) == 0;
}

void ss_json_pick(ss_json_span_t obj, const char *const *names, ss_json_span_t *out) {
    ss_json_iter_t it;
    ss_json_span_t k, v;
    size_t n = 0;
    while (names[n])
        out[n++] = (ss_json_span_t){NULL, 0};
    if (ss_json_iter_init(&it, obj) != 0)
        return;
    while (ss_json_iter_next(&it, &k, &v))
        for (size_t i = 0; i < n; i++)
            if (ss_json_key_is(k, names[i])) {
                out[i] = v;
                break;
            }
}

int ss_json_array_next_pick(ss_json_iter_t *it, const char *const *names, ss_json_span_t *out,
                            ss_json_span_t *value) {
    size_t n = 0;
    while (names[n])
        out[n++] = (ss_json_span_t){NULL, 0};
    const char *p = skip_ws(it->p, it->end);
    if (p < it->end && *p == ',')
        p = skip_ws(p + 1, it->end);
    if (p >= it->end)
        return 0;
    if (*p != '{')
        return ss_json_array_next(it, value);
    /* The element's members, up to its closing brace: where the element ends. */
    ss_json_iter_t o = {p + 1, it->end};
    ss_json_span_t k, v;
    while (ss_json_iter_next(&o, &k, &v))
        for (size_t i = 0; i < n; i++)
            if (ss_json_key_is(k, names[i])) {
                out[i] = v;
                break;
            }
    const char *q = skip_ws(o.p, it->end);
    if (q >= it->end || *q != '}') { /* not checked input: as the two calls would */
        if (!ss_json_array_next(it, value))
            return 0;
        ss_json_pick(*value, names, out);
        return 1;
    }
    *value = (ss_json_span_t){p, (size_t)(q + 1 - p)};
    it->p = q + 1;
    return 1;
}
