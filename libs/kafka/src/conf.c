/* Configuration from the environment and librdkafka logging. */
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <common/log.h>

extern char **environ;

/* Ours, never passed through. */
static const char *const own_vars[] = {
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_TOPIC_PREFIX",
    "KAFKA_GROUP_ID",
    NULL,
};

static int is_own(const char *name, size_t len) {
    for (size_t i = 0; own_vars[i]; i++)
        if (strlen(own_vars[i]) == len && memcmp(own_vars[i], name, len) == 0)
            return 1;
    return 0;
}

/* The variables Kubernetes injects into every pod of a namespace holding a
 * Service named "kafka" (service links, unless enableServiceLinks: false):
 *   KAFKA_SERVICE_HOST, KAFKA_SERVICE_PORT, KAFKA_SERVICE_PORT_<PORT NAME>,
 *   KAFKA_PORT, KAFKA_PORT_<n>_<PROTO>, KAFKA_PORT_<n>_<PROTO>_{PROTO,PORT,ADDR}
 * with <PROTO> one of TCP, UDP, SCTP.  None is a librdkafka property. */
static int span_eq(const char *s, size_t len, const char *lit) {
    return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

static size_t span_digits(const char *s, size_t len) {
    size_t n = 0;
    while (n < len && s[n] >= '0' && s[n] <= '9')
        n++;
    return n;
}

int ss_kafka_is_service_link(const char *name, size_t len) {
    static const char svc[] = "KAFKA_SERVICE_";
    static const char port[] = "KAFKA_PORT";
    if (len >= sizeof(svc) - 1 && memcmp(name, svc, sizeof(svc) - 1) == 0) {
        const char *r = name + sizeof(svc) - 1;
        size_t rl = len - (sizeof(svc) - 1);
        if (span_eq(r, rl, "HOST") || span_eq(r, rl, "PORT"))
            return 1;
        /* KAFKA_SERVICE_PORT_<NAME>: a port name, upper-cased, '-' as '_'. */
        if (rl > 5 && memcmp(r, "PORT_", 5) == 0) {
            for (size_t i = 5; i < rl; i++)
                if (!((r[i] >= 'A' && r[i] <= 'Z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '_'))
                    return 0;
            return 1;
        }
        return 0;
    }
    if (len < sizeof(port) - 1 || memcmp(name, port, sizeof(port) - 1) != 0)
        return 0;
    const char *r = name + sizeof(port) - 1;
    size_t rl = len - (sizeof(port) - 1);
    if (rl == 0)
        return 1; /* KAFKA_PORT */
    if (r[0] != '_')
        return 0;
    r++, rl--;
    size_t d = span_digits(r, rl);
    if (d == 0 || d > 5 || d == rl || r[d] != '_')
        return 0;
    r += d + 1, rl -= d + 1;
    static const char *const protos[] = {"TCP", "UDP", "SCTP", NULL};
    for (size_t i = 0; protos[i]; i++) {
        size_t pl = strlen(protos[i]);
        if (rl < pl || memcmp(r, protos[i], pl) != 0)
            continue;
        const char *t = r + pl;
        size_t tl = rl - pl;
        if (tl == 0 || span_eq(t, tl, "_PROTO") || span_eq(t, tl, "_PORT") ||
            span_eq(t, tl, "_ADDR"))
            return 1;
    }
    return 0;
}

/* Values of these properties never appear in error messages. */
static int is_secret(const char *name) {
    static const char *const words[] = {"PASSWORD", "SECRET", "TOKEN", "KEY", NULL};
    for (size_t i = 0; words[i]; i++)
        if (strstr(name, words[i]))
            return 1;
    return 0;
}

int ss_kafka_conf_from_env(rd_kafka_conf_t *conf, char *errstr, size_t errstr_size) {
    for (char **env = environ; env && *env; env++) {
        const char *entry = *env;
        if (strncmp(entry, "KAFKA_", 6) != 0)
            continue;
        const char *eq = strchr(entry, '=');
        if (!eq)
            continue;
        size_t namelen = (size_t)(eq - entry);
        const char *value = eq + 1;
        if (is_own(entry, namelen) || *value == '\0' || namelen == 6)
            continue;

        char name[256], key[256], err[512];
        if (namelen >= sizeof(name)) {
            snprintf(errstr, errstr_size, "%.64s...: variable name too long", entry);
            return -1;
        }
        memcpy(name, entry, namelen);
        name[namelen] = '\0';
        if (ss_kafka_is_service_link(name, namelen)) {
            ss_log_kv(SS_LOG_DEBUG,
                      "ignored a Kubernetes service link variable (not passed to librdkafka)",
                      "variable", name, NULL);
            continue;
        }
        size_t k = 0;
        for (const char *p = name + 6; *p; p++)
            key[k++] = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
        key[k] = '\0';

        if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
            snprintf(errstr, errstr_size, "%s=%s: %s", name, is_secret(name) ? "<hidden>" : value,
                     err);
            return -1;
        }
    }
    return 0;
}

int ss_kafka_conf_set1(rd_kafka_conf_t *conf, const char *key, const char *value, char *errstr,
                       size_t errstr_size) {
    char err[512];
    if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errstr_size, "%s=%s: %s", key, value, err);
        return -1;
    }
    return 0;
}

int ss_kafka_conf_apply(rd_kafka_conf_t *conf, const char *const *kv, char *errstr,
                        size_t errstr_size) {
    for (size_t i = 0; kv && kv[i]; i += 2) {
        if (!kv[i + 1]) {
            snprintf(errstr, errstr_size, "%s: override without a value", kv[i]);
            return -1;
        }
        if (ss_kafka_conf_set1(conf, kv[i], kv[i + 1], errstr, errstr_size) < 0)
            return -1;
    }
    return 0;
}

/* syslog levels: 0-3 error, 4 warning, 5-6 notice/info, 7 debug. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    /* Broker connection failures ("FAIL") are retried by librdkafka and
     * also reported through error_cb: a warning, not an error. */
    if (level <= 3 && strcmp(fac, "FAIL") == 0)
        level = 4;
    ss_log_level_t l = level <= 3   ? SS_LOG_ERROR
                       : level == 4 ? SS_LOG_WARN
                       : level <= 6 ? SS_LOG_INFO
                                    : SS_LOG_DEBUG;
    if (!ss_log_enabled(l))
        return;
    ss_log_kv(l, buf, "component", "librdkafka", "client", rd_kafka_name(rk), "facility", fac,
              NULL);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    (void)opaque;
    /* Transient connection errors are retried by librdkafka: warn; fatal errors: error. */
    ss_log_level_t l = err == RD_KAFKA_RESP_ERR__FATAL ? SS_LOG_ERROR : SS_LOG_WARN;
    ss_log_kv(l, "kafka error", "component", "librdkafka", "client", rd_kafka_name(rk), "error",
              rd_kafka_err2name((rd_kafka_resp_err_t)err), "reason", reason, NULL);
}

void ss_kafka_conf_logging(rd_kafka_conf_t *conf) {
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
}
