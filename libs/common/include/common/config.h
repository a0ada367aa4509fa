/* Table-driven configuration from environment variables.
 *
 * Each option names one variable, its type, where the parsed value goes, a
 * default given as text (parsed by the same code as the environment), and
 * bounds.  An empty variable counts as unset.  Errors name the variable, the
 * bad value and what was expected, in one line. */
#ifndef SS_COMMON_CONFIG_H
#define SS_COMMON_CONFIG_H

#include <stddef.h>
#include <stdio.h>

typedef enum {
    SS_CONF_STRING, /* dest: char ** (malloc'd, freed by ss_conf_free) */
    SS_CONF_INT,    /* dest: long long *, bounded by min/max */
    SS_CONF_BOOL,   /* dest: int *; accepts 1/0 true/false yes/no on/off */
    SS_CONF_LISTEN, /* dest: char **; "host:port" or "port", port 1..65535 */
} ss_conf_type_t;

typedef struct {
    const char *name; /* environment variable */
    ss_conf_type_t type;
    void *dest;
    const char *def;    /* default as text; NULL = unset (strings stay NULL) */
    long long min, max; /* SS_CONF_INT only */
    const char *help;
    int secret; /* value never printed, not even its default */
} ss_conf_opt_t;

/* Parses every option.  Returns 0, or -1 with the first error in errstr
 * ("LISTEN=abc: expected host:port or port"). */
int ss_conf_load(const ss_conf_opt_t *opts, size_t n, char *errstr, size_t errstr_size);

/* Frees the strings ss_conf_load stored and NULLs them. */
void ss_conf_free(const ss_conf_opt_t *opts, size_t n);

/* Prints usage: summary, then every variable with its default and help. */
void ss_conf_help(FILE *out, const char *prog, const char *summary, const ss_conf_opt_t *opts,
                  size_t n);

/* The common start of every main(): handles --help and --version (prints,
 * returns 0), rejects unknown arguments (returns 2), loads the options
 * (returns 2 with one line on stderr on error).  Returns -1 when
 * configuration is loaded and main goes on; otherwise main returns what it
 * gave (no exit() below main):
 *     int rc = ss_conf_main(argc, argv, PROG, SUMMARY, opts, n);
 *     if (rc >= 0)
 *         return rc;
 * Binaries that take subcommands (migrate, reconcile) call ss_conf_load
 * themselves. */
int ss_conf_main(int argc, char **argv, const char *prog, const char *summary,
                 const ss_conf_opt_t *opts, size_t n);

/* Returns the value of an environment variable, or NULL when unset or empty. */
const char *ss_conf_getenv(const char *name);

#endif
