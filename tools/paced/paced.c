/* ss-bench-paced: an open-loop HTTP/1.1 load generator for the benchmarks.
 *
 * Request i is scheduled at t0 + i / rate, whatever happened to the earlier
 * ones (open loop).  It is sent on an idle keep-alive connection as soon as
 * its time has come; when all connections are busy it waits, and its latency
 * still counts from its scheduled time to the last byte of the answer
 * (corrected for coordinated omission, like wrk2).  One thread, epoll, a
 * timerfd on CLOCK_MONOTONIC with absolute deadlines, non-blocking sockets.
 *
 * The backlog is not stored: the schedule is a function of the index, so the
 * "queue" is the range of indices whose time has come but that are not sent.
 *
 * Output: one line on stdout in the format of bench/webhook/post.lua, plus
 * target_rps and achieved_rps; details and errors on stderr (ss_log, text). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/log.h"
#include "common/stats.h"

#define PACED_MAX_CONNS        10000
#define PACED_MAX_HEADERS      64
#define PACED_MAX_BODY         (64u << 20)
#define PACED_RBUF             32768 /* holds a whole response head or chunk-size line */
#define PACED_CONNECT_RETRY_NS 10000000ull
#define PACED_SCAN_NS          5000000ull /* timeouts and reconnects are checked this often */
#define PACED_TIMER_TAG        UINT32_MAX

/* ------------------------------------------------------------------ clock */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------ histogram
 * HdrHistogram's layout in microseconds: values below 2048 exactly, above it
 * 1024 steps per power of two (relative error < 0.1 %).  Values above the
 * top (2^32 us, 71 minutes) are clamped. */

#define HIST_SUB     1024u
#define HIST_TOP_BIT 32u
#define HIST_LEN     (2 * HIST_SUB + (HIST_TOP_BIT - 11) * HIST_SUB)

typedef struct {
    uint64_t counts[HIST_LEN];
    uint64_t n;
    uint64_t max;
} hist_t;

static size_t hist_index(uint64_t v) {
    if (v < 2 * HIST_SUB)
        return (size_t)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - 10u;
    return 2 * HIST_SUB + (size_t)(shift - 1u) * HIST_SUB + (size_t)((v >> shift) - HIST_SUB);
}

/* Highest value that lands in the same slot as index i. */
static uint64_t hist_value(size_t i) {
    if (i < 2 * HIST_SUB)
        return i;
    size_t k = i - 2 * HIST_SUB;
    unsigned shift = (unsigned)(k / HIST_SUB) + 1u;
    uint64_t lo = ((uint64_t)(k % HIST_SUB) + HIST_SUB) << shift;
    return lo + (1ull << shift) - 1u;
}

static void hist_record(hist_t *h, uint64_t us) {
    uint64_t top = (1ull << HIST_TOP_BIT) - 1u;
    if (us > top)
        us = top;
    h->counts[hist_index(us)]++;
    h->n++;
    if (us > h->max)
        h->max = us;
}

/* The smallest recorded value v such that at least p % of the values are <= v
 * (nearest rank, ss_stats_rank: the definition every bench tool shares;
 * within the slot's precision), never above the maximum. */
static uint64_t hist_percentile(const hist_t *h, double p) {
    if (h->n == 0)
        return 0;
    uint64_t rank = ss_stats_rank(h->n, p);
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_LEN; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = hist_value(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}

/* ------------------------------------------------------------------ options */

typedef struct {
    const char *url;
    double rate;
    double duration_s;
    double warmup_s;
    bool timeline;
    int connections;
    const char *method;
    const char *body_file;
    const char *headers[PACED_MAX_HEADERS];
    int n_headers;
    long timeout_ms;
    long max_idle_ms;
    /* from the URL */
    char host[256];
    char port[8];
    char path[2048]; /* path and query */
} opts_t;

static void usage(FILE *f) {
    fputs(
        "usage: ss-bench-paced --url http://HOST:PORT/PATH --rate R --duration S --connections C\n"
        "                      [--method M] [--body FILE] [--header 'Name: value']...\n"
        "                      [--timeout-ms MS] [--max-idle-ms MS] [--warmup S] [--timeline]\n"
        "\n"
        "Open-loop HTTP/1.1 load generator: request i is scheduled at t0 + i/R and sent\n"
        "on an idle keep-alive connection as soon as its time has come; when all C\n"
        "connections are busy it waits, and its latency is still measured from its\n"
        "scheduled time to the last byte of the answer (coordinated-omission corrected,\n"
        "like wrk2).  One thread, epoll, CLOCK_MONOTONIC.\n"
        "\n"
        "  --url URL          http:// only (no TLS); host name or IPv4/[IPv6] address\n"
        "  --rate R           requests per second (> 0, fractional allowed)\n"
        "  --duration S       measured seconds (fractional allowed)\n"
        "  --connections C    keep-alive connections opened before the start (1..10000)\n"
        "  --method M         default GET, or POST when --body is given\n"
        "  --body FILE        request body (sent with Content-Length)\n"
        "  --header 'N: v'    extra request header, repeatable (up to 64)\n"
        "  --timeout-ms MS    default 10000: a request not answered MS after it was sent,\n"
        "                     or still waiting for a connection MS after its scheduled\n"
        "                     time, counts as a socket error (timeout)\n"
        "  --max-idle-ms MS   default 2000: a keep-alive connection idle that long is\n"
        "                     closed and reopened before it is used again, as HTTP\n"
        "                     clients do, so that a server closing idle connections\n"
        "                     (keep_alive_timeout) never races a request; 0: never\n"
        "  --warmup S         default 0: run at the same rate for S seconds first, not\n"
        "                     measured (the schedule simply continues into the measured part)\n"
        "  --timeline         also print on stderr, per measured second (by scheduled time),\n"
        "                     the requests answered and their highest latency\n"
        "\n"
        "Measured are the requests scheduled in the S seconds after the warm-up.  After\n"
        "the last one is sent the tool waits for their answers (at most the timeout).\n"
        "Output, one line on stdout:\n"
        "  WRK requests=N duration_us=D socket_errors=E non2xx=X p50_us=.. p90_us=..\n"
        "      p99_us=.. p999_us=.. max_us=.. target_rps=R achieved_rps=A\n"
        "  requests   measured requests answered (any status; non2xx of them not 2xx)\n"
        "  duration_us  from the first measured scheduled time to the end of the\n"
        "             measured window, or to the last measured answer when later\n"
        "  achieved_rps requests * 1e6 / duration_us\n"
        "  socket_errors connect, read, write, timeout and protocol errors (detail on stderr)\n"
        "Responses with Content-Length, chunked, or delimited by the close are read\n"
        "completely; a connection closed by the server is reopened.\n"
        "Exit status: 0 when measured requests were answered, 1 when none were or no\n"
        "connection could be opened at the start, 2 on bad arguments.\n",
        f);
}

static int bad_arg(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("ss-bench-paced: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see --help)\n", stderr);
    va_end(ap);
    return -1;
}

static int parse_double(const char *name, const char *s, double min, double max, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v) || v < min || v > max)
        return bad_arg("%s: bad value '%s' (expected a number from %g to %g)", name, s, min, max);
    *out = v;
    return 0;
}

static int parse_long(const char *name, const char *s, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < min || v > max)
        return bad_arg("%s: bad value '%s' (expected an integer from %ld to %ld)", name, s, min,
                       max);
    *out = v;
    return 0;
}

/* --url through libcurl's URL API: http only (no TLS here); host (an IPv6
 * address without its brackets), port (80 by default), path and query. */
static int parse_url(opts_t *o) {
    CURLU *cu = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    int rc = -1;
    if (cu == NULL)
        return bad_arg("--url: out of memory");
    CURLUcode uc = curl_url_set(cu, CURLUPART_URL, o->url, 0);
    if (uc != CURLUE_OK) {
        rc = bad_arg("--url: '%s': %s (expected http://HOST[:PORT][/PATH])", o->url,
                     curl_url_strerror(uc));
        goto done;
    }
    if (curl_url_get(cu, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        strcmp(scheme, "http") != 0) {
        rc = scheme && strcmp(scheme, "https") == 0
                 ? bad_arg("--url: https is not supported ('%s')", o->url)
                 : bad_arg("--url: expected http://HOST[:PORT][/PATH], got '%s'", o->url);
        goto done;
    }
    if (curl_url_get(cu, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(cu, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        curl_url_get(cu, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
        rc = bad_arg("--url: no host, port or path in '%s'", o->url);
        goto done;
    }
    (void)curl_url_get(cu, CURLUPART_QUERY, &query, 0); /* CURLUE_NO_QUERY: none */
    const char *h = host;
    size_t hl = strlen(h);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof(o->host) || strlen(port) >= sizeof(o->port)) {
        rc = bad_arg("--url: bad host or port in '%s'", o->url);
        goto done;
    }
    memcpy(o->host, h, hl);
    o->host[hl] = '\0';
    strcpy(o->port, port);
    int pl =
        snprintf(o->path, sizeof(o->path), "%s%s%s", path, query ? "?" : "", query ? query : "");
    if (pl < 0 || (size_t)pl >= sizeof(o->path)) {
        rc = bad_arg("--url: the path is longer than %zu bytes", sizeof(o->path) - 1);
        goto done;
    }
    rc = 0;
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(cu);
    return rc;
}

/* 0 ok, 1 --help, -1 bad arguments (already reported) */
static int parse_args(int argc, char **argv, opts_t *o) {
    memset(o, 0, sizeof(*o));
    o->timeout_ms = 10000;
    o->max_idle_ms = 2000;
    o->connections = 0;
    o->rate = -1;
    o->duration_s = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return 1;
        if (strcmp(a, "--timeline") == 0) {
            o->timeline = true;
            continue;
        }
        /* "--name value" or "--name=value" */
        char name[32];
        const char *v;
        const char *eq = strchr(a, '=');
        if (strncmp(a, "--", 2) == 0 && eq != NULL && (size_t)(eq - a) < sizeof(name)) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = '\0';
            a = name;
            v = eq + 1;
        } else {
            v = i + 1 < argc ? argv[++i] : NULL;
        }
        bool takes = strcmp(a, "--url") == 0 || strcmp(a, "--rate") == 0 ||
                     strcmp(a, "--duration") == 0 || strcmp(a, "--connections") == 0 ||
                     strcmp(a, "--method") == 0 || strcmp(a, "--body") == 0 ||
                     strcmp(a, "--header") == 0 || strcmp(a, "--timeout-ms") == 0 ||
                     strcmp(a, "--max-idle-ms") == 0 || strcmp(a, "--warmup") == 0;
        if (!takes)
            return bad_arg("unknown argument '%s'", a);
        if (v == NULL)
            return bad_arg("%s needs a value", a);
        long l;
        if (strcmp(a, "--url") == 0) {
            o->url = v;
        } else if (strcmp(a, "--rate") == 0) {
            if (parse_double(a, v, 0.001, 10000000.0, &o->rate) < 0)
                return -1;
        } else if (strcmp(a, "--duration") == 0) {
            if (parse_double(a, v, 0.001, 86400.0, &o->duration_s) < 0)
                return -1;
        } else if (strcmp(a, "--warmup") == 0) {
            if (parse_double(a, v, 0.0, 86400.0, &o->warmup_s) < 0)
                return -1;
        } else if (strcmp(a, "--connections") == 0) {
            if (parse_long(a, v, 1, PACED_MAX_CONNS, &l) < 0)
                return -1;
            o->connections = (int)l;
        } else if (strcmp(a, "--timeout-ms") == 0) {
            if (parse_long(a, v, 1, 3600000, &l) < 0)
                return -1;
            o->timeout_ms = l;
        } else if (strcmp(a, "--max-idle-ms") == 0) {
            if (parse_long(a, v, 0, 3600000, &l) < 0)
                return -1;
            o->max_idle_ms = l;
        } else if (strcmp(a, "--method") == 0) {
            if (*v == '\0' || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(v))
                return bad_arg(
                    "--method: expected an upper-case token such as GET or POST, got '%s'", v);
            o->method = v;
        } else if (strcmp(a, "--body") == 0) {
            o->body_file = v;
        } else { /* --header */
            const char *colon = strchr(v, ':');
            if (colon == NULL || colon == v || strpbrk(v, "\r\n") != NULL ||
                strcspn(v, " \t") < (size_t)(colon - v))
                return bad_arg("--header: expected 'Name: value', got '%s'", v);
            if (o->n_headers == PACED_MAX_HEADERS)
                return bad_arg("--header: at most %d headers", PACED_MAX_HEADERS);
            o->headers[o->n_headers++] = v;
        }
    }
    if (o->url == NULL)
        return bad_arg("--url is required");
    if (o->rate < 0)
        return bad_arg("--rate is required");
    if (o->duration_s < 0)
        return bad_arg("--duration is required");
    if (o->connections == 0)
        return bad_arg("--connections is required");
    if (o->method == NULL)
        o->method = o->body_file != NULL ? "POST" : "GET";
    return parse_url(o);
}

static bool header_given(const opts_t *o, const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < o->n_headers; i++)
        if (strncasecmp(o->headers[i], name, n) == 0 && o->headers[i][n] == ':')
            return true;
    return false;
}

/* The request, identical for every send.  Caller frees. */
static char *build_request(const opts_t *o, size_t *len_out) {
    char *body = NULL;
    size_t body_len = 0;
    if (o->body_file != NULL) {
        FILE *f = fopen(o->body_file, "rb");
        if (f == NULL) {
            ss_log_kv(SS_LOG_ERROR, "--body: cannot open", "file", o->body_file, "error",
                      strerror(errno), NULL);
            return NULL;
        }
        struct stat st;
        if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
            (uint64_t)st.st_size > PACED_MAX_BODY) {
            ss_log_kv(SS_LOG_ERROR, "--body: not a regular file of at most max_bytes", "file",
                      o->body_file, SS_KV_INT("max_bytes", PACED_MAX_BODY), NULL);
            fclose(f);
            return NULL;
        }
        body_len = (size_t)st.st_size;
        body = malloc(body_len + 1);
        if (body == NULL || fread(body, 1, body_len, f) != body_len) {
            ss_log_kv(SS_LOG_ERROR, "--body: cannot read it", "file", o->body_file, NULL);
            free(body);
            fclose(f);
            return NULL;
        }
        fclose(f);
    }
    bool v6 = strchr(o->host, ':') != NULL;
    size_t cap = 512 + strlen(o->path) + strlen(o->host) + body_len;
    for (int i = 0; i < o->n_headers; i++)
        cap += strlen(o->headers[i]) + 2;
    char *req = malloc(cap);
    if (req == NULL) {
        free(body);
        return NULL;
    }
    size_t n = (size_t)snprintf(req, cap, "%s %s HTTP/1.1\r\n", o->method, o->path);
    if (!header_given(o, "Host"))
        n += (size_t)snprintf(req + n, cap - n, "Host: %s%s%s%s%s\r\n", v6 ? "[" : "", o->host,
                              v6 ? "]" : "", strcmp(o->port, "80") != 0 ? ":" : "",
                              strcmp(o->port, "80") != 0 ? o->port : "");
    if (!header_given(o, "User-Agent"))
        n += (size_t)snprintf(req + n, cap - n, "User-Agent: ss-bench-paced\r\n");
    for (int i = 0; i < o->n_headers; i++)
        n += (size_t)snprintf(req + n, cap - n, "%s\r\n", o->headers[i]);
    if (body != NULL || strcmp(o->method, "POST") == 0 || strcmp(o->method, "PUT") == 0 ||
        strcmp(o->method, "PATCH") == 0)
        n += (size_t)snprintf(req + n, cap - n, "Content-Length: %zu\r\n", body_len);
    n += (size_t)snprintf(req + n, cap - n, "\r\n");
    if (body_len > 0)
        memcpy(req + n, body, body_len);
    n += body_len;
    free(body);
    *len_out = n;
    return req;
}

/* ------------------------------------------------------------------ connections */

typedef enum { C_DOWN, C_CONNECTING, C_IDLE, C_BUSY } cstate_t;
typedef enum {
    R_HEAD,
    R_BODY,
    R_CHUNK_SIZE,
    R_CHUNK_DATA,
    R_CHUNK_CRLF,
    R_TRAILER,
    R_UNTIL_CLOSE
} rstate_t;

typedef struct {
    int fd;
    cstate_t state;
    unsigned gen;      /* bumped when the socket is replaced */
    bool want_out;     /* EPOLLOUT registered */
    uint64_t retry_at; /* C_DOWN: when to reconnect */
    uint64_t idle_ns;  /* C_IDLE: since when */
    /* the request in flight */
    uint64_t req_index;
    uint64_t sched_ns;
    uint64_t sent_ns; /* when its first byte went out */
    size_t wr_off;
    /* the answer */
    rstate_t rstate;
    int status;
    bool close_after;
    uint64_t remaining; /* body or chunk bytes still to read */
    size_t rlen;
    char rbuf[PACED_RBUF];
} conn_t;

typedef struct {
    uint64_t connect, read, write, timeout, protocol;
} errs_t;

typedef struct {
    opts_t o;
    char *req;
    size_t req_len;
    bool head_method;
    struct addrinfo *ai;
    int ep;
    int tfd;
    uint64_t timer_armed; /* absolute ns the timerfd is set to, 0 = disarmed */
    conn_t *conns;
    int *idle; /* stack of idle connection indices */
    int n_idle;
    int n_busy;
    /* schedule */
    uint64_t t0;
    double interval_ns;
    uint64_t total; /* warm-up + measured requests */
    uint64_t first_measured;
    uint64_t next; /* next index to send */
    uint64_t window_start, window_end;
    /* results of measured requests */
    hist_t lat;
    hist_t lag; /* send time minus scheduled time, all measured sends */
    uint64_t completed, non2xx, last_done_ns;
    errs_t err;
    uint64_t max_backlog;
    struct {
        uint64_t answered, max_us;
    } * secs; /* --timeline, per measured second */
    size_t n_secs;
    bool warned_protocol;
} paced_t;

static uint64_t sched_of(const paced_t *p, uint64_t i) {
    return p->t0 + (uint64_t)llround((double)i * p->interval_ns);
}

static bool measured(const paced_t *p, uint64_t i) {
    return i >= p->first_measured;
}

static void protocol_note(paced_t *p, const char *what) {
    if (!p->warned_protocol) {
        ss_log_kv(SS_LOG_WARN, "bad response (further ones only counted)", "host", p->o.host,
                  "port", p->o.port, "error", what, NULL);
        p->warned_protocol = true;
    }
}

static void set_out(paced_t *p, int ci, bool want) {
    conn_t *c = &p->conns[ci];
    if (c->want_out == want)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.u32 = (uint32_t)ci};
    epoll_ctl(p->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want;
}

static void idle_push(paced_t *p, int ci) {
    p->conns[ci].state = C_IDLE;
    p->conns[ci].idle_ns = now_ns();
    p->idle[p->n_idle++] = ci;
}

static void idle_remove(paced_t *p, int ci) {
    for (int k = 0; k < p->n_idle; k++)
        if (p->idle[k] == ci) {
            p->idle[k] = p->idle[--p->n_idle];
            return;
        }
}

/* Starts a non-blocking connect; 0 when under way or done, -1 on immediate failure. */
static int conn_open(paced_t *p, int ci) {
    conn_t *c = &p->conns[ci];
    int fd = socket(p->ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ss_log_kv(SS_LOG_ERROR, "socket() failed", "error", strerror(errno), NULL);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, p->ai->ai_addr, p->ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    c->fd = fd;
    c->state = C_CONNECTING;
    c->sent_ns = now_ns(); /* for the connect timeout */
    c->want_out = true;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)ci};
    if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int e = errno;
        close(fd);
        c->fd = -1;
        c->state = C_DOWN;
        errno = e;
        return -1;
    }
    return 0;
}

static void conn_reset_parser(conn_t *c) {
    c->rstate = R_HEAD;
    c->status = 0;
    c->close_after = false;
    c->remaining = 0;
    c->rlen = 0;
}

/* Closes the connection (the request in flight, if any, is the caller's
 * business) and reopens it right away, or later if that fails. */
static void conn_restart(paced_t *p, int ci, uint64_t now) {
    conn_t *c = &p->conns[ci];
    if (c->state == C_IDLE)
        idle_remove(p, ci);
    if (c->state == C_BUSY)
        p->n_busy--;
    if (c->fd >= 0) {
        epoll_ctl(p->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->gen++;
    c->state = C_DOWN;
    conn_reset_parser(c);
    if (conn_open(p, ci) != 0) {
        if (now >= p->window_start)
            p->err.connect++;
        c->retry_at = now + PACED_CONNECT_RETRY_NS;
    }
}

/* The request on c failed: count it (when measured) and reopen the connection. */
static void conn_fail(paced_t *p, int ci, uint64_t *counter, uint64_t now) {
    conn_t *c = &p->conns[ci];
    if (c->state == C_BUSY && measured(p, c->req_index))
        (*counter)++;
    conn_restart(p, ci, now);
}

static void conn_send(paced_t *p, int ci, uint64_t now) {
    conn_t *c = &p->conns[ci];
    while (c->wr_off < p->req_len) {
        ssize_t w = send(c->fd, p->req + c->wr_off, p->req_len - c->wr_off, MSG_NOSIGNAL);
        if (w > 0) {
            c->wr_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_out(p, ci, true);
            return;
        }
        conn_fail(p, ci, &p->err.write, now);
        return;
    }
    set_out(p, ci, false);
}

static void dispatch(paced_t *p, int ci, uint64_t i, uint64_t sched, uint64_t now) {
    conn_t *c = &p->conns[ci];
    c->state = C_BUSY;
    p->n_busy++;
    c->req_index = i;
    c->sched_ns = sched;
    c->sent_ns = now;
    c->wr_off = 0;
    conn_reset_parser(c);
    if (measured(p, i))
        hist_record(&p->lag, (now - sched) / 1000u);
    conn_send(p, ci, now);
}

static void request_done(paced_t *p, int ci, uint64_t now) {
    conn_t *c = &p->conns[ci];
    if (measured(p, c->req_index)) {
        uint64_t ns = now - c->sched_ns;
        hist_record(&p->lat, (ns + 500u) / 1000u);
        if (p->secs != NULL) {
            size_t k = (size_t)((c->sched_ns - p->window_start) / 1000000000ull);
            if (k < p->n_secs) {
                p->secs[k].answered++;
                if ((ns + 500u) / 1000u > p->secs[k].max_us)
                    p->secs[k].max_us = (ns + 500u) / 1000u;
            }
        }
        p->completed++;
        if (c->status < 200 || c->status > 299)
            p->non2xx++;
        if (now > p->last_done_ns)
            p->last_done_ns = now;
    }
    bool reopen = c->close_after || c->wr_off < p->req_len || c->rlen > 0;
    if (c->rlen > 0)
        protocol_note(p, "bytes after the end of a response");
    if (reopen) {
        conn_restart(p, ci, now);
        return;
    }
    p->n_busy--;
    conn_reset_parser(c);
    idle_push(p, ci);
}

static bool token_has(const char *v, size_t n, const char *word) {
    size_t wl = strlen(word);
    for (size_t i = 0; i + wl <= n; i++)
        if (strncasecmp(v + i, word, wl) == 0)
            return true;
    return false;
}

/* Parses a complete head in c->rbuf[0..head_len).  0 ok, -1 malformed (what set). */
static int parse_head(paced_t *p, conn_t *c, size_t head_len, const char **what) {
    char *s = c->rbuf;
    char *end = s + head_len;
    char *eol = memchr(s, '\n', head_len);
    if (eol == NULL || eol - s < 12 || strncmp(s, "HTTP/1.", 7) != 0 ||
        (s[7] != '0' && s[7] != '1') || s[8] != ' ' || s[9] < '1' || s[9] > '5' || s[10] < '0' ||
        s[10] > '9' || s[11] < '0' || s[11] > '9' || (s[12] != ' ' && s[12] != '\r')) {
        *what = "bad status line";
        return -1;
    }
    bool http10 = s[7] == '0';
    c->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    bool has_cl = false, chunked = false, conn_close = false, conn_keep = false;
    uint64_t cl = 0;
    for (char *line = eol + 1; line < end;) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        if (nl == NULL)
            break;
        size_t len = (size_t)(nl - line);
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (len == 0)
            break;
        char *colon = memchr(line, ':', len);
        if (colon == NULL) {
            *what = "header line without ':'";
            return -1;
        }
        size_t nlen = (size_t)(colon - line);
        char *v = colon + 1;
        char *vend = line + len;
        while (v < vend && (*v == ' ' || *v == '\t'))
            v++;
        while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;
        size_t vlen = (size_t)(vend - v);
        if (nlen == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
            uint64_t x = 0;
            if (vlen == 0 || vlen > 18 || strspn(v, "0123456789") < vlen) {
                *what = "bad Content-Length";
                return -1;
            }
            for (size_t k = 0; k < vlen; k++)
                x = x * 10 + (uint64_t)(v[k] - '0');
            if (has_cl && x != cl) {
                *what = "conflicting Content-Length headers";
                return -1;
            }
            has_cl = true;
            cl = x;
        } else if (nlen == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
            if (token_has(v, vlen, "chunked"))
                chunked = true;
            else if (!(vlen == 8 && strncasecmp(v, "identity", 8) == 0)) {
                *what = "unsupported Transfer-Encoding (only chunked)";
                return -1;
            }
        } else if (nlen == 10 && strncasecmp(line, "Connection", 10) == 0) {
            if (token_has(v, vlen, "close"))
                conn_close = true;
            if (token_has(v, vlen, "keep-alive"))
                conn_keep = true;
        }
        line = nl + 1;
    }
    c->close_after = http10 ? !conn_keep : conn_close;
    if (c->status == 101) {
        *what = "101 Switching Protocols";
        return -1;
    }
    if (c->status < 200) { /* interim answer (100 Continue...): the real one follows */
        c->rstate = R_HEAD;
        return 0;
    }
    if (p->head_method || c->status == 204 || c->status == 304) {
        c->rstate = R_BODY;
        c->remaining = 0;
    } else if (chunked) {
        c->rstate = R_CHUNK_SIZE;
    } else if (has_cl) {
        c->rstate = R_BODY;
        c->remaining = cl;
    } else {
        c->rstate = R_UNTIL_CLOSE;
        c->close_after = true;
    }
    return 0;
}

/* Consumes what is in c->rbuf.  Returns 1 when the response is complete
 * (left-over bytes stay in rbuf), 0 when more is needed, -1 on a protocol error. */
static int parse_some(paced_t *p, conn_t *c) {
    size_t pos = 0;
    int rc = 0;
    const char *what = NULL;
    for (;;) {
        char *b = c->rbuf + pos;
        size_t avail = c->rlen - pos;
        if (c->rstate == R_HEAD) {
            char *e = avail >= 4 ? memmem(b, avail, "\r\n\r\n", 4) : NULL;
            if (e == NULL) {
                if (c->rlen == PACED_RBUF) {
                    what = "response head larger than 32 KiB";
                    rc = -1;
                }
                break;
            }
            size_t hl = (size_t)(e - b) + 4;
            /* parse_head wants the head at the start of rbuf */
            if (pos > 0) {
                memmove(c->rbuf, b, avail);
                c->rlen = avail;
                pos = 0;
                b = c->rbuf;
            }
            if (parse_head(p, c, hl, &what) < 0) {
                rc = -1;
                break;
            }
            pos += hl;
            continue;
        }
        if (c->rstate == R_BODY || c->rstate == R_CHUNK_DATA) {
            uint64_t take = avail < c->remaining ? avail : c->remaining;
            pos += (size_t)take;
            c->remaining -= take;
            if (c->remaining > 0)
                break;
            if (c->rstate == R_BODY) {
                rc = 1;
                break;
            }
            c->rstate = R_CHUNK_CRLF;
            continue;
        }
        if (c->rstate == R_CHUNK_CRLF) {
            if (avail < 2)
                break;
            if (b[0] != '\r' || b[1] != '\n') {
                what = "chunk not followed by CRLF";
                rc = -1;
                break;
            }
            pos += 2;
            c->rstate = R_CHUNK_SIZE;
            continue;
        }
        if (c->rstate == R_CHUNK_SIZE || c->rstate == R_TRAILER) {
            char *nl = memchr(b, '\n', avail);
            if (nl == NULL) {
                if (avail >= 4096) {
                    what = "chunk-size or trailer line too long";
                    rc = -1;
                }
                break;
            }
            size_t ll = (size_t)(nl - b);
            pos += ll + 1;
            if (ll > 0 && b[ll - 1] == '\r')
                ll--;
            if (c->rstate == R_TRAILER) {
                if (ll == 0) {
                    rc = 1;
                    break;
                }
                continue;
            }
            uint64_t size = 0;
            size_t k = 0;
            for (; k < ll && k < 15; k++) {
                char ch = b[k];
                int d = ch >= '0' && ch <= '9'   ? ch - '0'
                        : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                        : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                                 : -1;
                if (d < 0)
                    break;
                size = size * 16 + (uint64_t)d;
            }
            if (k == 0 || (k < ll && b[k] != ';' && b[k] != ' ' && b[k] != '\t')) {
                what = "bad chunk size";
                rc = -1;
                break;
            }
            if (size == 0) {
                c->rstate = R_TRAILER;
            } else {
                c->rstate = R_CHUNK_DATA;
                c->remaining = size;
            }
            continue;
        }
        /* R_UNTIL_CLOSE: everything up to the close is body */
        pos += avail;
        break;
    }
    if (rc < 0)
        protocol_note(p, what);
    /* keep only what is not consumed */
    if (pos > 0) {
        memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
        c->rlen -= pos;
    }
    return rc;
}

static void conn_readable(paced_t *p, int ci, uint64_t now) {
    conn_t *c = &p->conns[ci];
    ssize_t r = recv(c->fd, c->rbuf + c->rlen, PACED_RBUF - c->rlen, 0);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (c->state != C_BUSY) {
        /* idle: the server closed the connection (or said something unasked) */
        if (r > 0)
            protocol_note(p, "data on an idle connection");
        conn_restart(p, ci, now);
        return;
    }
    if (r == 0) {
        if (c->rstate == R_UNTIL_CLOSE) {
            c->close_after = true;
            request_done(p, ci, now);
        } else {
            conn_fail(p, ci, &p->err.read, now);
        }
        return;
    }
    if (r < 0) {
        conn_fail(p, ci, &p->err.read, now);
        return;
    }
    c->rlen += (size_t)r;
    int rc = parse_some(p, c);
    if (rc < 0)
        conn_fail(p, ci, &p->err.protocol, now);
    else if (rc > 0)
        request_done(p, ci, now);
}

static void conn_writable(paced_t *p, int ci, uint64_t now) {
    conn_t *c = &p->conns[ci];
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err != 0) {
            if (now >= p->window_start)
                p->err.connect++;
            epoll_ctl(p->ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
            c->state = C_DOWN;
            c->retry_at = now + PACED_CONNECT_RETRY_NS;
            errno = err;
            return;
        }
        set_out(p, ci, false);
        idle_push(p, ci);
        return;
    }
    if (c->state == C_BUSY)
        conn_send(p, ci, now);
    else
        set_out(p, ci, false);
}

/* ------------------------------------------------------------------ loop */

static void timer_arm(paced_t *p, uint64_t at) {
    if (at == p->timer_armed)
        return;
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    if (at != 0) {
        its.it_value.tv_sec = (time_t)(at / 1000000000ull);
        its.it_value.tv_nsec = (long)(at % 1000000000ull);
    }
    timerfd_settime(p->tfd, TFD_TIMER_ABSTIME, &its, NULL);
    p->timer_armed = at;
}

/* Sends every request whose time has come while there are idle connections;
 * drops the ones that waited longer than the timeout. */
static void pump(paced_t *p, uint64_t now) {
    uint64_t tmo = (uint64_t)p->o.timeout_ms * 1000000ull;
    while (p->next < p->total) {
        uint64_t s = sched_of(p, p->next);
        if (s > now)
            break;
        if (now - s > tmo) {
            if (measured(p, p->next))
                p->err.timeout++;
            p->next++;
            continue;
        }
        if (p->n_idle == 0)
            break;
        int ci = p->idle[--p->n_idle];
        dispatch(p, ci, p->next, s, now);
        p->next++;
    }
    if (p->next < p->total) {
        uint64_t s = sched_of(p, p->next);
        if (s <= now) {
            uint64_t due = (uint64_t)((double)(now - p->t0) / p->interval_ns) + 1;
            uint64_t backlog = due > p->next ? due - p->next : 1;
            if (backlog > p->max_backlog)
                p->max_backlog = backlog;
        }
    }
}

static void scan(paced_t *p, uint64_t now) {
    uint64_t tmo = (uint64_t)p->o.timeout_ms * 1000000ull;
    for (int ci = 0; ci < p->o.connections; ci++) {
        conn_t *c = &p->conns[ci];
        if (c->state == C_BUSY && now - c->sent_ns > tmo) {
            conn_fail(p, ci, &p->err.timeout, now);
        } else if (c->state == C_DOWN && now >= c->retry_at) {
            if (conn_open(p, ci) != 0) {
                if (now >= p->window_start)
                    p->err.connect++;
                c->retry_at = now + PACED_CONNECT_RETRY_NS;
            }
        } else if (c->state == C_IDLE && p->o.max_idle_ms > 0 && now > c->idle_ns &&
                   now - c->idle_ns > (uint64_t)p->o.max_idle_ms * 1000000ull) {
            conn_restart(p, ci, now); /* retire it before the server's idle close can race us */
        } else if (c->state == C_CONNECTING && now - c->sent_ns > tmo) {
            /* a connect that hangs: start over */
            conn_restart(p, ci, now);
        }
    }
}

/* Opens all connections before the start; returns how many are up. */
static int connect_all(paced_t *p) {
    uint64_t start = now_ns();
    uint64_t deadline = start + (uint64_t)p->o.timeout_ms * 1000000ull;
    int first_err = 0;
    for (int ci = 0; ci < p->o.connections; ci++) {
        if (conn_open(p, ci) != 0) {
            first_err = errno;
            break;
        }
    }
    struct epoll_event evs[256];
    for (;;) {
        int pending = 0;
        for (int ci = 0; ci < p->o.connections; ci++)
            pending += p->conns[ci].state == C_CONNECTING;
        if (pending == 0)
            break;
        uint64_t now = now_ns();
        if (now >= deadline)
            break;
        int n = epoll_wait(p->ep, evs, 256, (int)((deadline - now) / 1000000ull) + 1);
        if (n < 0 && errno != EINTR)
            break;
        for (int k = 0; k < n; k++) {
            uint32_t ci = evs[k].data.u32;
            if (ci == PACED_TIMER_TAG)
                continue;
            conn_t *c = &p->conns[ci];
            if (c->state != C_CONNECTING)
                continue;
            int err = 0;
            socklen_t len = sizeof(err);
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
                if (first_err == 0)
                    first_err = err;
                epoll_ctl(p->ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
                c->state = C_DOWN;
            } else if (evs[k].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
                set_out(p, (int)ci, false);
                idle_push(p, (int)ci);
            }
        }
    }
    int up = p->n_idle;
    if (up < p->o.connections) {
        ss_log_kv(SS_LOG_WARN, "not every connection opened", SS_KV_INT("opened", up),
                  SS_KV_INT("connections", p->o.connections), "host", p->o.host, "port", p->o.port,
                  "error", first_err ? strerror(first_err) : "timeout", NULL);
    }
    for (int ci = 0; ci < p->o.connections; ci++) {
        conn_t *c = &p->conns[ci];
        if (c->state == C_CONNECTING) {
            epoll_ctl(p->ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
            c->state = C_DOWN;
        }
        c->retry_at = 0;
    }
    return up;
}

static void run(paced_t *p) {
    struct epoll_event evs[512];
    uint64_t last_scan = 0;
    for (;;) {
        uint64_t now = now_ns();
        pump(p, now);
        if (now - last_scan >= PACED_SCAN_NS) {
            scan(p, now);
            last_scan = now;
            pump(p, now);
        }
        if (p->next >= p->total && p->n_busy == 0)
            break;
        /* wake for the next scheduled request when a connection can take it */
        uint64_t at = 0;
        if (p->next < p->total && p->n_idle > 0) {
            at = sched_of(p, p->next);
            if (at <= now)
                continue;
        }
        timer_arm(p, at);
        int n = epoll_wait(p->ep, evs, 512, (int)(PACED_SCAN_NS / 1000000ull));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            ss_log_kv(SS_LOG_ERROR, "epoll_wait failed", "error", strerror(errno), NULL);
            break;
        }
        now = now_ns();
        for (int k = 0; k < n; k++) {
            uint32_t ci = evs[k].data.u32;
            if (ci == PACED_TIMER_TAG) {
                uint64_t x;
                if (read(p->tfd, &x, sizeof(x)) < 0) { /* nothing to do: pump runs anyway */
                }
                p->timer_armed = 0;
                continue;
            }
            conn_t *c = &p->conns[ci];
            uint32_t e = evs[k].events;
            if (c->fd < 0)
                continue;
            if (c->state == C_CONNECTING) {
                if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                    conn_writable(p, (int)ci, now);
                continue;
            }
            unsigned gen = c->gen;
            if (e & EPOLLOUT)
                conn_writable(p, (int)ci, now);
            if (c->gen == gen && (e & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                conn_readable(p, (int)ci, now);
        }
    }
}

int main(int argc, char **argv) {
    static paced_t P; /* large (histograms): not on the stack */
    paced_t *p = &P;
    int rc = parse_args(argc, argv, &p->o);
    if (rc == 1) {
        usage(stdout);
        return 0;
    }
    if (rc < 0)
        return 2;
    char lerr[128];
    ss_log_init("ss-bench-paced", "info", "text", lerr, sizeof lerr); /* constants: cannot fail */
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* timers fire within 1 ns, not the default 50 us */

    p->req = build_request(&p->o, &p->req_len);
    if (p->req == NULL)
        return 2;
    p->head_method = strcmp(p->o.method, "HEAD") == 0;

    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(p->o.host, p->o.port, &hints, &p->ai);
    if (gai != 0) {
        ss_log_kv(SS_LOG_ERROR, "cannot resolve the host", "host", p->o.host, "error",
                  gai_strerror(gai), NULL);
        free(p->req);
        return 1;
    }

    int exit_code = 1;
    p->ep = epoll_create1(EPOLL_CLOEXEC);
    p->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    p->conns = calloc((size_t)p->o.connections, sizeof(conn_t));
    p->idle = calloc((size_t)p->o.connections, sizeof(int));
    if (p->ep < 0 || p->tfd < 0 || p->conns == NULL || p->idle == NULL) {
        ss_log_kv(SS_LOG_ERROR, "out of resources", "error", strerror(errno), NULL);
        goto cleanup;
    }
    for (int ci = 0; ci < p->o.connections; ci++) {
        p->conns[ci].fd = -1;
        p->conns[ci].state = C_DOWN;
    }
    struct epoll_event tev = {.events = EPOLLIN, .data.u32 = PACED_TIMER_TAG};
    if (epoll_ctl(p->ep, EPOLL_CTL_ADD, p->tfd, &tev) != 0) {
        ss_log_kv(SS_LOG_ERROR, "epoll_ctl failed", "error", strerror(errno), NULL);
        goto cleanup;
    }

    p->window_start = UINT64_MAX; /* no connect error counts before the start */
    if (connect_all(p) == 0) {
        ss_log(SS_LOG_ERROR, "cannot connect to %s:%s, giving up", p->o.host, p->o.port);
        goto cleanup;
    }

    p->interval_ns = 1e9 / p->o.rate;
    p->first_measured = (uint64_t)llround(p->o.warmup_s * p->o.rate);
    uint64_t n_measured = (uint64_t)llround(p->o.duration_s * p->o.rate);
    if (n_measured == 0)
        n_measured = 1;
    p->total = p->first_measured + n_measured;
    p->t0 = now_ns() + 1000000ull; /* the first request 1 ms from now */
    p->window_start = sched_of(p, p->first_measured);
    p->window_end = p->window_start + (uint64_t)llround(p->o.duration_s * 1e9);
    if (p->o.timeline) {
        p->n_secs = (size_t)ceil(p->o.duration_s);
        p->secs = calloc(p->n_secs, sizeof(*p->secs));
        if (p->secs == NULL)
            p->n_secs = 0;
    }
    run(p);

    uint64_t dur_ns = p->window_end - p->window_start;
    if (p->last_done_ns > p->window_end)
        dur_ns = p->last_done_ns - p->window_start;
    uint64_t dur_us = dur_ns / 1000u;
    uint64_t errors =
        p->err.connect + p->err.read + p->err.write + p->err.timeout + p->err.protocol;
    double achieved = dur_us > 0 ? (double)p->completed * 1e6 / (double)dur_us : 0.0;
    printf("WRK requests=%" PRIu64 " duration_us=%" PRIu64 " socket_errors=%" PRIu64
           " non2xx=%" PRIu64 " p50_us=%" PRIu64 " p90_us=%" PRIu64 " p99_us=%" PRIu64
           " p999_us=%" PRIu64 " max_us=%" PRIu64 " target_rps=%.0f achieved_rps=%.0f\n",
           p->completed, dur_us, errors, p->non2xx, hist_percentile(&p->lat, 50),
           hist_percentile(&p->lat, 90), hist_percentile(&p->lat, 99),
           hist_percentile(&p->lat, 99.9), p->lat.max, p->o.rate, achieved);
    fflush(stdout);
    ss_log_kv(SS_LOG_INFO, "summary", SS_KV_INT("scheduled", n_measured),
              SS_KV_INT("answered", p->completed), SS_KV_INT("errors_connect", p->err.connect),
              SS_KV_INT("errors_read", p->err.read), SS_KV_INT("errors_write", p->err.write),
              SS_KV_INT("errors_timeout", p->err.timeout),
              SS_KV_INT("errors_protocol", p->err.protocol),
              SS_KV_INT("send_lag_p50_us", hist_percentile(&p->lag, 50)),
              SS_KV_INT("send_lag_p99_us", hist_percentile(&p->lag, 99)),
              SS_KV_INT("send_lag_max_us", p->lag.max),
              SS_KV_INT("most_waiting_for_a_connection", p->max_backlog), NULL);
    for (size_t k = 0; k < p->n_secs; k++)
        ss_log_kv(SS_LOG_INFO, "second", SS_KV_INT("second", k),
                  SS_KV_INT("answered", p->secs[k].answered),
                  SS_KV_DBL("highest_latency_ms", (double)p->secs[k].max_us / 1000.0), NULL);
    if (p->completed == 0)
        ss_log(SS_LOG_ERROR, "no measured request was answered");
    else
        exit_code = 0;

cleanup:
    if (p->conns != NULL)
        for (int ci = 0; ci < p->o.connections; ci++)
            if (p->conns[ci].fd >= 0)
                close(p->conns[ci].fd);
    free(p->conns);
    free(p->idle);
    free(p->secs);
    if (p->tfd >= 0)
        close(p->tfd);
    if (p->ep >= 0)
        close(p->ep);
    freeaddrinfo(p->ai);
    free(p->req);
    return exit_code;
}
