#include "common/log.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/sstime.h"
#include "common/util.h"

static ss_log_level_t g_level = SS_LOG_INFO;
static int g_json = 1;
static char g_service[64] = "shipstream";
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local char t_request_id[96];

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int ss_log_init(const char *service, const char *level, const char *format, char *errstr,
                size_t errstr_size) {
    if (service)
        snprintf(g_service, sizeof g_service, "%s", service);
    if (level && *level) {
        int found = 0;
        for (int i = 0; i < 4; i++) {
            if (strcasecmp(level, level_names[i]) == 0) {
                g_level = (ss_log_level_t)i;
                found = 1;
            }
        }
        if (!found && strcasecmp(level, "warning") == 0) {
            g_level = SS_LOG_WARN;
            found = 1;
        }
        if (!found) {
            snprintf(errstr, errstr_size, "LOG_LEVEL=%s: expected debug, info, warn or error",
                     level);
            return -1;
        }
    }
    if (format && *format) {
        if (strcasecmp(format, "json") == 0)
            g_json = 1;
        else if (strcasecmp(format, "text") == 0)
            g_json = 0;
        else {
            snprintf(errstr, errstr_size, "LOG_FORMAT=%s: expected json or text", format);
            return -1;
        }
    }
    return 0;
}

void ss_log_set_request_id(const char *request_id) {
    if (request_id)
        snprintf(t_request_id, sizeof t_request_id, "%s", request_id);
    else
        t_request_id[0] = '\0';
}

const char *ss_log_request_id(void) {
    return t_request_id[0] ? t_request_id : NULL;
}

int ss_log_enabled(ss_log_level_t level) {
    return level >= g_level;
}

enum { KV_STR, KV_INT, KV_DBL };

/* The type a key's marker byte announces (SS_KV_INT / SS_KV_DBL); skips it. */
static int kv_type(const char **key) {
    if (**key == '\001') {
        (*key)++;
        return KV_INT;
    }
    if (**key == '\002') {
        (*key)++;
        return KV_DBL;
    }
    return KV_STR;
}

/* Reads the next value of the given type; numbers are formatted into num.
 * A non-finite double is written as null (JSON has no NaN). */
static const char *kv_value(int type, va_list *kv, char *num, size_t num_size) {
    if (type == KV_INT) {
        snprintf(num, num_size, "%lld", va_arg(*kv, long long));
        return num;
    }
    if (type == KV_DBL) {
        double d = va_arg(*kv, double);
        if (!isfinite(d))
            return "null";
        snprintf(num, num_size, "%.15g", d);
        return num;
    }
    const char *v = va_arg(*kv, const char *);
    return v ? v : "";
}

static void emit(ss_log_level_t level, const char *msg, va_list *kv) {
    char ts[SS_TIME_BUFSIZE];
    ss_time_format(ss_time_now_usec(), ts, sizeof ts);
    ss_buf_t b = {0};
    if (g_json) {
        ss_buf_appendf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"service\":", ts, level_names[level]);
        ss_buf_append_json_str(&b, g_service);
        ss_buf_append(&b, ",\"msg\":", 7);
        ss_buf_append_json_str(&b, msg);
        if (t_request_id[0]) {
            ss_buf_append(&b, ",\"request_id\":", 14);
            ss_buf_append_json_str(&b, t_request_id);
        }
        if (kv) {
            const char *k;
            while ((k = va_arg(*kv, const char *)) != NULL) {
                char num[64];
                int type = kv_type(&k);
                const char *v = kv_value(type, kv, num, sizeof num);
                ss_buf_append(&b, ",", 1);
                ss_buf_append_json_str(&b, k);
                ss_buf_append(&b, ":", 1);
                if (type == KV_STR)
                    ss_buf_append_json_str(&b, v);
                else
                    ss_buf_append(&b, v, strlen(v));
            }
        }
        ss_buf_append(&b, "}\n", 2);
    } else {
        ss_buf_appendf(&b, "%s %-5s %s: %s", ts, level_names[level], g_service, msg);
        if (t_request_id[0])
            ss_buf_appendf(&b, " request_id=%s", t_request_id);
        if (kv) {
            const char *k;
            while ((k = va_arg(*kv, const char *)) != NULL) {
                char num[64];
                int type = kv_type(&k);
                ss_buf_appendf(&b, " %s=%s", k, kv_value(type, kv, num, sizeof num));
            }
        }
        ss_buf_append(&b, "\n", 1);
    }
    if (b.data) {
        pthread_mutex_lock(&g_lock);
        fwrite(b.data, 1, b.len, stderr);
        fflush(stderr);
        pthread_mutex_unlock(&g_lock);
    }
    ss_buf_free(&b);
}

void ss_logv(ss_log_level_t level, const char *fmt, va_list ap) {
    if (!ss_log_enabled(level))
        return;
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    emit(level, msg, NULL);
}

void ss_log(ss_log_level_t level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ss_logv(level, fmt, ap);
    va_end(ap);
}

void ss_log_kv(ss_log_level_t level, const char *msg, ...) {
    if (!ss_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, msg);
    emit(level, msg, &ap);
    va_end(ap);
}
