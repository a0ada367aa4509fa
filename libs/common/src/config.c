#include "common/config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *ss_conf_getenv(const char *name) {
    const char *v = getenv(name);
    return (v && *v) ? v : NULL;
}

static int parse_int(const char *v, long long *out) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end != '\0')
        return -1;
    *out = x;
    return 0;
}

static int parse_bool(const char *v, int *out) {
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* "port" or "host:port" / "[v6]:port" with port 1..65535. */
static int valid_listen(const char *v) {
    const char *port = strrchr(v, ':');
    port = port ? port + 1 : v;
    if (port == v + 1) /* ":8000" */
        return 0;
    long long p;
    if (!*port || parse_int(port, &p) != 0 || p < 1 || p > 65535)
        return 0;
    return 1;
}

static int set_one(const ss_conf_opt_t *o, const char *v, const char *origin, char *errstr,
                   size_t errstr_size) {
    switch (o->type) {
    case SS_CONF_STRING:
    case SS_CONF_LISTEN: {
        if (o->type == SS_CONF_LISTEN && !valid_listen(v)) {
            snprintf(errstr, errstr_size, "%s=%s%s: expected host:port or port (1-65535)", o->name,
                     v, origin);
            return -1;
        }
        char **dest = o->dest;
        free(*dest);
        *dest = strdup(v);
        return *dest ? 0 : -1;
    }
    case SS_CONF_INT: {
        long long x;
        if (parse_int(v, &x) != 0) {
            snprintf(errstr, errstr_size, "%s=%s%s: expected an integer between %lld and %lld",
                     o->name, v, origin, o->min, o->max);
            return -1;
        }
        if (x < o->min || x > o->max) {
            snprintf(errstr, errstr_size, "%s=%s%s: out of range, expected %lld to %lld", o->name,
                     v, origin, o->min, o->max);
            return -1;
        }
        *(long long *)o->dest = x;
        return 0;
    }
    case SS_CONF_BOOL: {
        int b;
        if (parse_bool(v, &b) != 0) {
            snprintf(errstr, errstr_size, "%s=%s%s: expected true/false (1/0, yes/no, on/off)",
                     o->name, v, origin);
            return -1;
        }
        *(int *)o->dest = b;
        return 0;
    }
    }
    snprintf(errstr, errstr_size, "%s: unknown option type", o->name);
    return -1;
}

int ss_conf_load(const ss_conf_opt_t *opts, size_t n, char *errstr, size_t errstr_size) {
    for (size_t i = 0; i < n; i++) {
        const ss_conf_opt_t *o = &opts[i];
        const char *v = ss_conf_getenv(o->name);
        const char *origin = "";
        if (!v) {
            v = o->def;
            origin = " (default)";
        }
        if (!v) {
            if (o->type == SS_CONF_STRING || o->type == SS_CONF_LISTEN) {
                free(*(char **)o->dest);
                *(char **)o->dest = NULL;
            }
            continue;
        }
        if (o->secret && *origin == '\0') {
            /* Never echo a secret's value in an error. */
            if (set_one(o, v, "", errstr, errstr_size) != 0) {
                snprintf(errstr, errstr_size, "%s: invalid value (not shown)", o->name);
                return -1;
            }
            continue;
        }
        if (set_one(o, v, origin, errstr, errstr_size) != 0)
            return -1;
    }
    return 0;
}

void ss_conf_free(const ss_conf_opt_t *opts, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (opts[i].type == SS_CONF_STRING || opts[i].type == SS_CONF_LISTEN) {
            char **dest = opts[i].dest;
            free(*dest);
            *dest = NULL;
        }
    }
}

void ss_conf_help(FILE *out, const char *prog, const char *summary, const ss_conf_opt_t *opts,
                  size_t n) {
    fprintf(out, "Usage: %s [--help] [--version]\n\n%s\n\n", prog, summary);
    fprintf(out, "Configuration (environment variables; an empty variable counts as unset):\n");
    for (size_t i = 0; i < n; i++) {
        const ss_conf_opt_t *o = &opts[i];
        fprintf(out, "  %-34s %s", o->name, o->help ? o->help : "");
        if (o->secret)
            fprintf(out, " [secret%s]", o->def ? ", has a default" : "");
        else if (o->def)
            fprintf(out, " [default: %s]", o->def);
        else
            fprintf(out, " [default: unset]");
        if (o->type == SS_CONF_INT)
            fprintf(out, " (%lld..%lld)", o->min, o->max);
        fputc('\n', out);
    }
    int kafka = 0;
    for (size_t i = 0; i < n; i++)
        kafka |= strncmp(opts[i].name, "KAFKA_", 6) == 0;
    if (kafka)
        fprintf(out, "  %-34s %s\n", "KAFKA_*",
                "any other KAFKA_ variable is passed to librdkafka (KAFKA_LINGER_MS -> linger.ms)");
}

/* main's first step, factored out: the one place in libs/ that prints to stderr, on
 * purpose: an unknown argument is a usage error for the person at the terminal, and a
 * configuration error happens before logging exists (LOG_LEVEL and LOG_FORMAT are among
 * the options loaded here), so there is no ss_log format to follow yet.  It never exits:
 * main returns the status it gives.  Everything after it logs through ss_log. */
int ss_conf_main(int argc, char **argv, const char *prog, const char *summary,
                 const ss_conf_opt_t *opts, size_t n) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            ss_conf_help(stdout, prog, summary, opts, n);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("%s %s\n", prog, SS_VERSION);
            return 0;
        }
        fprintf(stderr,
                "%s: unknown argument '%s' (configuration comes from environment "
                "variables; see --help)\n",
                prog, argv[i]);
        return 2;
    }
    char err[512];
    if (ss_conf_load(opts, n, err, sizeof err) != 0) {
        fprintf(stderr, "%s: configuration error: %s\n", prog, err);
        return 2;
    }
    return -1;
}
