/* Structured logging to stderr: one line per record, JSON (default) or text.
 * Thread-safe.  Each thread may carry a request id that is added to its
 * records.  Never pass secrets or whole request bodies. */
#ifndef SS_COMMON_LOG_H
#define SS_COMMON_LOG_H

#include <stdarg.h>
#include <stddef.h>

typedef enum { SS_LOG_DEBUG = 0, SS_LOG_INFO, SS_LOG_WARN, SS_LOG_ERROR } ss_log_level_t;

/* level: debug|info|warn|error (NULL = info); format: json|text (NULL = json).
 * Returns 0, or -1 with errstr naming LOG_LEVEL / LOG_FORMAT. */
int ss_log_init(const char *service, const char *level, const char *format, char *errstr,
                size_t errstr_size);

/* Sets (or clears with NULL) the request id of the calling thread; copied. */
void ss_log_set_request_id(const char *request_id);
const char *ss_log_request_id(void);

int ss_log_enabled(ss_log_level_t level);

/* Logs msg (printf format) with optional extra fields: after the format
 * arguments nothing more; use ss_log_kv for key/value fields. */
void ss_log(ss_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ss_logv(ss_log_level_t level, const char *fmt, va_list ap);

/* Logs msg with key/value pairs, terminated by NULL.  A plain key takes a
 * string value (NULL prints as empty); SS_KV_INT / SS_KV_DBL mark a typed
 * value (written as a JSON number, not a string):
 *   ss_log_kv(SS_LOG_INFO, "listening", "addr", "0.0.0.0:8000", NULL);
 *   ss_log_kv(SS_LOG_INFO, "applied", "name", name, SS_KV_INT("version", v),
 *             SS_KV_DBL("ms", ms), NULL);
 * Keys must be string literals for the typed forms. */
void ss_log_kv(ss_log_level_t level, const char *msg, ...);

/* Typed key/value pairs for ss_log_kv: each expands to two arguments, a
 * marked key and the value converted to the type ss_log_kv reads. */
#define SS_KV_INT(key, value) "\001" key, (long long)(value)
#define SS_KV_DBL(key, value) "\002" key, (double)(value)

#define SS_DEBUG(...)                          \
    do {                                       \
        if (ss_log_enabled(SS_LOG_DEBUG))      \
            ss_log(SS_LOG_DEBUG, __VA_ARGS__); \
    } while (0)
#define SS_INFO(...)  ss_log(SS_LOG_INFO, __VA_ARGS__)
#define SS_WARN(...)  ss_log(SS_LOG_WARN, __VA_ARGS__)
#define SS_ERROR(...) ss_log(SS_LOG_ERROR, __VA_ARGS__)

#endif
