#include "http/server.h"
#include "http/query.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/sstime.h"
#include "common/util.h"

#include <sys/socket.h>
#include <unistd.h>

#define SS_HTTP_MAX_ROUTES 64

typedef struct {
    ss_http_t *h;
    ss_http_handler_fn fn;
    void *ud;
    char label[64];
    ss_histogram_t *latency;
} route_t;

struct ss_http {
    struct mg_context *ctx;
    struct mg_context *admin; /* NULL without admin_listen */
    ss_http_opts_t opts;
    char service[64];
    route_t routes[SS_HTTP_MAX_ROUTES];
    size_t nroutes;
    atomic_int serving; /* 0 while the routes are being registered (hold_until_serve) */
};

/* Per request (civetweb runs one request at a time on a worker thread). */
static __thread int t_close;          /* close the connection after the answer */
static __thread int t_in_close;       /* inside close_connection_after_answer() */
static __thread int64_t t_body_until; /* monotonic µs by which the body must be in; 0 = none */
static __thread int t_held; /* the request began before ss_http_serve() (hold_until_serve) */

static void count_request(const char *label, int status, double seconds, ss_histogram_t *lat) {
    char labels[160];
    snprintf(labels, sizeof labels, "route=\"%s\",status=\"%d\"", label, status);
    ss_counter_inc(ss_counter("http_requests_total", "HTTP requests by route and status", labels));
    if (lat)
        ss_histogram_observe(lat, seconds);
}

static int dispatch(struct mg_connection *conn, void *cbdata) {
    route_t *r = cbdata;
    char rid[96];
    ss_http_request_id(conn, rid, sizeof rid);
    ss_log_set_request_id(rid);
    int64_t t0 = ss_time_mono_usec();
    t_close = 0;
    t_body_until = t0 + (int64_t)r->h->opts.body_timeout_ms * 1000;
    int status = r->fn(conn, r->ud);
    t_close = 0;
    t_body_until = 0;
    count_request(r->label, status, (double)(ss_time_mono_usec() - t0) / 1e6, r->latency);
    ss_log_set_request_id(NULL);
    return status > 0 ? status : 500;
}

static int handle_health(struct mg_connection *conn, void *ud) {
    (void)ud;
    static const char body[] = "{\"status\":\"ok\"}";
    return ss_http_send_json(conn, 200, body, sizeof body - 1, NULL);
}

static int handle_ready(struct mg_connection *conn, void *ud) {
    ss_http_t *h = ud;
    char why[512] = "";
    if (h->opts.ready && h->opts.ready(h->opts.ready_ud, why, sizeof why) != 0) {
        ss_buf_t b = {0};
        ss_buf_appendf(
            &b, "%s", "{\"status\":\"unavailable\",\"error\":{\"code\":\"not_ready\",\"message\":");
        ss_buf_append_json_str(&b, why[0] ? why : "a dependency is unavailable");
        ss_buf_append(&b, "}}", 2);
        int st = ss_http_send_json(conn, 503, b.data, b.len, NULL);
        ss_buf_free(&b);
        return st;
    }
    static const char body[] = "{\"status\":\"ready\"}";
    return ss_http_send_json(conn, 200, body, sizeof body - 1, NULL);
}

static int handle_metrics(struct mg_connection *conn, void *ud) {
    (void)ud;
    size_t len = 0;
    char *text = ss_metrics_render(&len);
    if (!text)
        return ss_http_send_error(conn, 500, "internal", "out of memory");
    mg_printf(conn,
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
              "Content-Length: %zu\r\nCache-Control: no-store\r\n\r\n",
              len);
    mg_write(conn, text, len);
    free(text);
    return 200;
}

/* civetweb's own errors (no handler: 404; bad request; ...) get our JSON body. */
static int on_http_error(struct mg_connection *conn, int status, const char *msg) {
    if (t_in_close)
        return 1; /* see close_connection_after_answer() */
    if (status == 404 && t_held) {
        ss_http_send_error_h(conn, 503, "starting", "the service is starting: retry",
                             "Retry-After: 1\r\n");
        return 0;
    }
    const char *code = status == 404   ? "not_found"
                       : status == 405 ? "method_not_allowed"
                       : status == 413 ? "payload_too_large"
                       : status >= 500 ? "internal"
                                       : "bad_request";
    ss_http_send_error(conn, status, code,
                       status == 404 ? "no such endpoint" : (msg ? msg : "error"));
    return 0;
}

/* Called for every request before civetweb looks its handler up: whether the
 * routes were all registered is decided here, not when the 404 is sent (the
 * main thread may finish registering in between). */
static int on_begin_request(struct mg_connection *conn) {
    const ss_http_t *h = mg_get_user_data(mg_get_context(conn));
    t_held = h && !atomic_load(&h->serving);
    return 0; /* civetweb goes on with the request */
}

static void *on_init_thread(const struct mg_context *ctx, int thread_type) {
    ss_http_t *h = mg_get_user_data(ctx);
    if (thread_type == 1 && h && h->opts.thread_init) /* 1: worker thread */
        h->opts.thread_init();
    return NULL;
}

static void on_exit_thread(const struct mg_context *ctx, int thread_type, void *p) {
    (void)p;
    ss_http_t *h = mg_get_user_data(ctx);
    if (thread_type == 1 && h && h->opts.thread_exit)
        h->opts.thread_exit();
}

static int on_log_message(const struct mg_connection *conn, const char *message) {
    (void)conn;
    ss_log(SS_LOG_WARN, "http: %s", message);
    return 1;
}

static route_t *add_route(ss_http_t *h, const char *route_label, ss_http_handler_fn fn, void *ud) {
    if (h->nroutes == SS_HTTP_MAX_ROUTES)
        return NULL;
    route_t *r = &h->routes[h->nroutes++];
    r->h = h;
    r->fn = fn;
    r->ud = ud;
    snprintf(r->label, sizeof r->label, "%s", route_label);
    char labels[96];
    snprintf(labels, sizeof labels, "route=\"%s\"", r->label);
    r->latency = ss_histogram("http_request_duration_seconds", "HTTP request latency by route",
                              labels, NULL, 0);
    return r;
}

/* The admin listener: /health, /ready and /metrics on threads of their own. */
static int start_admin(ss_http_t *h, char *errstr, size_t errstr_size) {
    char threads[16];
    snprintf(threads, sizeof threads, "%d", h->opts.admin_threads > 0 ? h->opts.admin_threads : 4);
    const char *options[] = {
        "listening_ports",
        h->opts.admin_listen,
        "num_threads",
        threads,
        "request_timeout_ms",
        "5000",
        "enable_keep_alive",
        "yes",
        "keep_alive_timeout_ms",
        "5000",
        "max_request_size",
        "8192",
        NULL,
        NULL,
    };
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.http_error = on_http_error;
    cb.log_message = on_log_message;
    struct mg_init_data init = {
        .callbacks = &cb, .user_data = NULL, .configuration_options = options};
    struct mg_error_data err = {0};
    char ebuf[256] = "";
    err.text = ebuf;
    err.text_buffer_size = sizeof ebuf;
    h->admin = mg_start2(&init, &err);
    if (!h->admin) {
        snprintf(errstr, errstr_size, "cannot listen on %s (admin): %s", h->opts.admin_listen,
                 ebuf[0] ? ebuf : "unknown error");
        return -1;
    }
    static const struct {
        const char *uri, *label;
        ss_http_handler_fn fn;
    } admin_routes[] = {{"/health$", "/health", handle_health},
                        {"/ready$", "/ready", handle_ready},
                        {"/metrics$", "/metrics", handle_metrics}};
    for (size_t i = 0; i < sizeof admin_routes / sizeof admin_routes[0]; i++) {
        route_t *r = add_route(h, admin_routes[i].label, admin_routes[i].fn, h);
        if (r)
            mg_set_request_handler(h->admin, admin_routes[i].uri, dispatch, r);
    }
    return 0;
}

ss_http_t *ss_http_start(const ss_http_opts_t *opts, char *errstr, size_t errstr_size) {
    static int lib_ready;
    if (!lib_ready) {
        mg_init_library(0);
        lib_ready = 1;
    }
    ss_http_t *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    h->opts = *opts;
    atomic_init(&h->serving, !opts->hold_until_serve);
    if (h->opts.request_timeout_ms <= 0)
        h->opts.request_timeout_ms = 30000;
    if (h->opts.body_timeout_ms <= 0)
        h->opts.body_timeout_ms = h->opts.request_timeout_ms;
    snprintf(h->service, sizeof h->service, "%s", opts->service ? opts->service : "shipstream");
    h->opts.service = h->service;

    char threads[16], timeout[16], keepalive[16];
    snprintf(threads, sizeof threads, "%d", opts->num_threads > 0 ? opts->num_threads : 16);
    snprintf(timeout, sizeof timeout, "%d",
             opts->request_timeout_ms > 0 ? opts->request_timeout_ms : 30000);
    snprintf(keepalive, sizeof keepalive, "%d",
             opts->keepalive_timeout_ms > 0 ? opts->keepalive_timeout_ms : 5000);
    const char *options[] = {
        "listening_ports",
        opts->listen,
        "num_threads",
        threads,
        "request_timeout_ms",
        timeout,
        "enable_keep_alive",
        "yes",
        "keep_alive_timeout_ms",
        keepalive,
        "max_request_size",
        "16384", /* request line + headers */
        "listen_backlog",
        "1024",
        "connection_queue",
        "1024",
        "tcp_nodelay",
        "1",
        NULL,
        NULL,
    };
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.http_error = on_http_error;
    cb.begin_request = on_begin_request;
    cb.init_thread = on_init_thread;
    cb.exit_thread = on_exit_thread;
    cb.log_message = on_log_message;

    struct mg_init_data init = {.callbacks = &cb, .user_data = h, .configuration_options = options};
    struct mg_error_data err = {0};
    char ebuf[256] = "";
    err.text = ebuf;
    err.text_buffer_size = sizeof ebuf;
    h->ctx = mg_start2(&init, &err);
    if (!h->ctx) {
        snprintf(errstr, errstr_size, "cannot listen on %s: %s", opts->listen,
                 ebuf[0] ? ebuf : "unknown error");
        free(h);
        return NULL;
    }
    ss_http_route(h, "/health$", "/health", handle_health, NULL);
    ss_http_route(h, "/ready$", "/ready", handle_ready, h);
    ss_http_route(h, "/metrics$", "/metrics", handle_metrics, NULL);
    if (opts->admin_listen && opts->admin_listen[0] && start_admin(h, errstr, errstr_size) != 0) {
        mg_stop(h->ctx);
        free(h);
        return NULL;
    }
    ss_log_kv(SS_LOG_INFO, "http listening", "listen", opts->listen, "threads", threads, "admin",
              h->admin ? opts->admin_listen : "none", NULL);
    return h;
}

void ss_http_route(ss_http_t *h, const char *uri, const char *route_label, ss_http_handler_fn fn,
                   void *ud) {
    route_t *r = add_route(h, route_label ? route_label : uri, fn, ud);
    if (!r) {
        ss_log(SS_LOG_ERROR, "http: too many routes, %s not registered", uri);
        return;
    }
    mg_set_request_handler(h->ctx, uri, dispatch, r);
}

void ss_http_serve(ss_http_t *h) {
    atomic_store(&h->serving, 1);
}

void ss_http_stop(ss_http_t *h) {
    if (!h)
        return;
    if (h->admin)
        mg_stop(h->admin);
    mg_stop(h->ctx);
    free(h);
}

/* ---- the body deadline watchdog
 *
 * civetweb's mg_read() loops inside until it has the bytes asked for, each
 * poll() with its own timeout: a client that sends a byte every few seconds
 * keeps one mg_read() call, and the worker thread, busy for as long as it
 * likes.  No civetweb call takes a deadline or exposes the socket, so the
 * reader arms a slot with its connection's socket and deadline, and a
 * watchdog thread shuts the socket down for reading when the deadline
 * passes: recv() sees end-of-file, mg_read() returns, and the handler still
 * answers (408) on the open write side.
 *
 * A slot goes IDLE -> ARMED (reader) -> FIRING -> DONE (watchdog) or back to
 * IDLE (reader, CAS).  A reader whose CAS fails waits for DONE before it
 * returns, so the socket cannot be closed and its number reused while the
 * watchdog is about to shut it down.  The state word carries a generation
 * that every arming bumps: a watchdog that found an expired arming and was
 * preempted before its CAS cannot fire on the next request the thread armed
 * in the slot meanwhile (it would shut down a legitimate connection). */
enum { SLOT_IDLE = 0, SLOT_ARMED, SLOT_FIRING, SLOT_DONE };
#define WATCH_SLOTS        8192
#define SLOT_STATE(w)      ((int)((w)&3u))
#define SLOT_WORD(gen, st) (((gen) << 2) | (uint64_t)(st))

typedef struct {
    _Atomic uint64_t word; /* generation << 2 | state */
    int fd;
    _Atomic int64_t until;
} watch_slot_t;

static watch_slot_t g_watch[WATCH_SLOTS];
static _Atomic int g_watch_next;
static pthread_once_t g_watch_once = PTHREAD_ONCE_INIT;
static __thread int t_slot = -1;
static __thread int t_fd = -1; /* the socket of this thread's current connection, cached */

static void *watchdog(void *arg) {
    (void)arg;
    for (;;) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        int64_t now = ss_time_mono_usec();
        int n = atomic_load(&g_watch_next);
        for (int i = 0; i < n && i < WATCH_SLOTS; i++) {
            watch_slot_t *w = &g_watch[i];
            uint64_t word = atomic_load(&w->word);
            if (SLOT_STATE(word) != SLOT_ARMED || now <= atomic_load(&w->until))
                continue;
            uint64_t gen = word >> 2;
            if (atomic_compare_exchange_strong(&w->word, &word, SLOT_WORD(gen, SLOT_FIRING))) {
                shutdown(w->fd, SHUT_RD);
                atomic_store(&w->word, SLOT_WORD(gen, SLOT_DONE));
            }
        }
    }
    return NULL;
}

static void watch_start(void) {
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 64 * 1024);
    if (pthread_create(&t, &a, watchdog, NULL) != 0)
        ss_log(SS_LOG_ERROR, "http: cannot start the body deadline watchdog");
    pthread_attr_destroy(&a);
}

/* 1 when fd is the connection of this request (same peer and local port). */
static int fd_is_conn(int fd, const struct mg_request_info *ri) {
    struct sockaddr_storage peer, local;
    socklen_t pl = sizeof peer, ll = sizeof local;
    if (getpeername(fd, (struct sockaddr *)&peer, &pl) != 0 ||
        getsockname(fd, (struct sockaddr *)&local, &ll) != 0)
        return 0;
    char addr[INET6_ADDRSTRLEN] = "";
    int pport, lport;
    if (peer.ss_family == AF_INET) {
        const struct sockaddr_in *p = (const struct sockaddr_in *)&peer;
        inet_ntop(AF_INET, &p->sin_addr, addr, sizeof addr);
        pport = ntohs(p->sin_port);
        lport = ntohs(((const struct sockaddr_in *)&local)->sin_port);
    } else if (peer.ss_family == AF_INET6) {
        const struct sockaddr_in6 *p = (const struct sockaddr_in6 *)&peer;
        inet_ntop(AF_INET6, &p->sin6_addr, addr, sizeof addr);
        pport = ntohs(p->sin6_port);
        lport = ntohs(((const struct sockaddr_in6 *)&local)->sin6_port);
    } else {
        return 0;
    }
    return pport == ri->remote_port && lport == ri->server_port &&
           strcmp(addr, ri->remote_addr) == 0;
}

/* The socket of this request's connection: the thread's cached one when it
 * still is, else found among the process's open descriptors (once per
 * connection).  -1 when not found. */
static int conn_fd(const struct mg_request_info *ri) {
    if (t_fd >= 0 && fd_is_conn(t_fd, ri))
        return t_fd;
    t_fd = -1;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        int fd = atoi(e->d_name);
        if (fd != dirfd(d) && fd_is_conn(fd, ri)) {
            t_fd = fd;
            break;
        }
    }
    closedir(d);
    return t_fd;
}

static void watch_arm(const struct mg_request_info *ri, int64_t until) {
    pthread_once(&g_watch_once, watch_start);
    if (t_slot < 0) {
        int i = atomic_fetch_add(&g_watch_next, 1);
        if (i >= WATCH_SLOTS)
            return; /* more reader threads than slots: no watchdog for this one */
        t_slot = i;
    }
    int fd = conn_fd(ri);
    if (fd < 0)
        return;
    watch_slot_t *w = &g_watch[t_slot];
    uint64_t gen = (atomic_load(&w->word) >> 2) + 1; /* only this thread arms the slot */
    w->fd = fd;
    atomic_store(&w->until, until);
    atomic_store(&w->word, SLOT_WORD(gen, SLOT_ARMED));
}

static void watch_disarm(void) {
    if (t_slot < 0)
        return;
    watch_slot_t *w = &g_watch[t_slot];
    uint64_t word = atomic_load(&w->word);
    if (SLOT_STATE(word) == SLOT_IDLE)
        return;
    uint64_t gen = word >> 2;
    uint64_t expected = SLOT_WORD(gen, SLOT_ARMED);
    if (atomic_compare_exchange_strong(&w->word, &expected, SLOT_WORD(gen, SLOT_IDLE)))
        return;
    while (SLOT_STATE(atomic_load(&w->word)) != SLOT_DONE) /* the watchdog is shutting it down */
        sched_yield();
    atomic_store(&w->word, SLOT_WORD(gen, SLOT_IDLE));
}

void ss_http_close_after(struct mg_connection *conn) {
    (void)conn;
    t_close = 1;
}

int ss_http_read_body(struct mg_connection *conn, size_t max, char **out, size_t *len) {
    const struct mg_request_info *ri = mg_get_request_info(conn);
    *out = NULL;
    *len = 0;
    if (ri->content_length > 0 && (unsigned long long)ri->content_length > max) {
        t_close = 1;
        return SS_HTTP_BODY_TOO_LARGE;
    }
    size_t cap = ri->content_length > 0 ? (size_t)ri->content_length + 1 : 4096;
    if (cap > max + 1)
        cap = max + 1;
    char *buf = malloc(cap);
    if (!buf)
        return -1;
    size_t n = 0;
    int rc = 0;
    if (t_body_until)
        watch_arm(ri, t_body_until);
    for (;;) {
        if (ri->content_length > 0 && n == (size_t)ri->content_length)
            break; /* all of it: no probe read, no growing */
        /* One deadline for the whole body: each mg_read has its own timeout,
         * which a client trickling a byte at a time never reaches. */
        if (t_body_until && ss_time_mono_usec() > t_body_until) {
            rc = SS_HTTP_BODY_TOO_SLOW;
            break;
        }
        if (n + 1 >= cap) {
            if (n >= max) {
                /* Chunked body past the limit: probe for one more byte. */
                char probe;
                int r = mg_read(conn, &probe, 1);
                if (r > 0)
                    rc = SS_HTTP_BODY_TOO_LARGE;
                break;
            }
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                rc = -1;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        int r = mg_read(conn, buf + n, cap - 1 - n);
        if (r < 0) {
            rc = -1;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    watch_disarm();
    if (rc == 0 && ri->content_length > 0 && n != (size_t)ri->content_length)
        rc = t_body_until && ss_time_mono_usec() > t_body_until ? SS_HTTP_BODY_TOO_SLOW
                                                                : -1; /* client went away */
    if (rc != 0) {
        free(buf);
        t_close = 1;
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static const char *reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}

/* Case-insensitive "Connection: close" among header lines. */
static int asks_close(const char *headers) {
    for (const char *p = headers; p && *p;) {
        if (strncasecmp(p, "Connection:", 11) == 0) {
            const char *v = p + 11;
            v += strspn(v, " \t");
            if (strncasecmp(v, "close", 5) == 0)
                return 1;
        }
        const char *nl = strstr(p, "\r\n");
        p = nl ? nl + 2 : NULL;
    }
    return 0;
}

/* civetweb 1.15 has no call that says "close this connection after the
 * handler": after a handler it keeps the connection alive, first reading and
 * discarding whatever of the body is unread (as slowly as the client sends
 * it).  Its error path sets the close flag: an error without a body (304)
 * sent after the answer went out through the response-header API writes
 * nothing (the response is already in state "sent") and on_http_error lets
 * it through.  Checked against civetweb 1.15 (send_http_error_impl,
 * response.inl) and by tests/integration/http (the connection is closed). */
static int send_json_closing(struct mg_connection *conn, int status, const char *ctype,
                             const char *json, size_t len, const char *extra_headers) {
    char cl[32];
    snprintf(cl, sizeof cl, "%zu", len);
    mg_response_header_start(conn, status);
    mg_response_header_add(conn, "Content-Type", ctype, -1);
    mg_response_header_add(conn, "Content-Length", cl, -1);
    mg_response_header_add(conn, "Cache-Control", "no-store", -1);
    const char *rid = ss_log_request_id();
    if (rid)
        mg_response_header_add(conn, "X-Request-Id", rid, -1);
    if (extra_headers && *extra_headers)
        mg_response_header_add_lines(conn, extra_headers);
    if (!asks_close(extra_headers))
        mg_response_header_add(conn, "Connection", "close", -1);
    mg_response_header_send(conn);
    if (len)
        mg_write(conn, json, len);
    t_in_close = 1;
    mg_send_http_error(conn, 304, "%s", "");
    t_in_close = 0;
    t_close = 0;
    return status;
}

int ss_http_send_json(struct mg_connection *conn, int status, const char *json, size_t len,
                      const char *extra_headers) {
    return ss_http_send_body(conn, status, "application/json", json, len, extra_headers);
}

int ss_http_send_body(struct mg_connection *conn, int status, const char *content_type,
                      const char *json, size_t len, const char *extra_headers) {
    if (t_close || asks_close(extra_headers))
        return send_json_closing(conn, status, content_type, json, len, extra_headers);
    const char *rid = ss_log_request_id();
    /* Head and (small) body in one write: one send() per answer. */
    char buf[2048];
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n%s%s%s%s\r\n",
                     status, reason(status), content_type, len, rid ? "X-Request-Id: " : "",
                     rid ? rid : "", rid ? "\r\n" : "", extra_headers ? extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof buf) { /* long extra headers: two writes */
        mg_printf(conn,
                  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                  "Cache-Control: no-store\r\n%s%s%s%s\r\n",
                  status, reason(status), content_type, len, rid ? "X-Request-Id: " : "",
                  rid ? rid : "", rid ? "\r\n" : "", extra_headers ? extra_headers : "");
        if (len)
            mg_write(conn, json, len);
        return status;
    }
    if (len <= sizeof buf - (size_t)n) {
        if (len)
            memcpy(buf + n, json, len);
        mg_write(conn, buf, (size_t)n + len);
    } else {
        mg_write(conn, buf, (size_t)n);
        mg_write(conn, json, len);
    }
    return status;
}

void ss_http_error_body(ss_buf_t *b, const char *code, const char *message) {
    ss_buf_appendf(b, "%s", "{\"error\":{\"code\":");
    ss_buf_append_json_str(b, code);
    ss_buf_appendf(b, "%s", ",\"message\":");
    ss_buf_append_json_str(b, message);
    ss_buf_append(b, "}}", 2);
}

int ss_http_send_error_h(struct mg_connection *conn, int status, const char *code,
                         const char *message, const char *extra_headers) {
    ss_buf_t b = {0};
    ss_http_error_body(&b, code, message);
    if (!b.data)
        return ss_http_send_json(conn, status, "{}", 2, extra_headers);
    int st = ss_http_send_json(conn, status, b.data, b.len, extra_headers);
    ss_buf_free(&b);
    return st;
}

int ss_http_send_error(struct mg_connection *conn, int status, const char *code,
                       const char *message) {
    return ss_http_send_error_h(conn, status, code, message, NULL);
}

const char *ss_http_request_id(struct mg_connection *conn, char *buf, size_t bufsize) {
    const char *h = mg_get_header(conn, "X-Request-Id");
    if (h) {
        size_t n = strlen(h);
        int ok = n > 0 && n <= 64 && n < bufsize;
        for (size_t i = 0; ok && i < n; i++)
            ok = isalnum((unsigned char)h[i]) || h[i] == '-' || h[i] == '_' || h[i] == '.';
        if (ok) {
            memcpy(buf, h, n + 1);
            return buf;
        }
    }
    ss_random_id("req_", buf, bufsize);
    return buf;
}

int ss_http_bearer_ok(struct mg_connection *conn, const char *const *keys, size_t nkeys) {
    const char *h = mg_get_header(conn, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    size_t tlen = strlen(tok);
    while (tlen && tok[tlen - 1] == ' ')
        tlen--;
    int ok = 0;
    /* Compare against every key, always: the time does not depend on which matched. */
    for (size_t i = 0; i < nkeys; i++)
        ok |= ss_secure_equal(tok, tlen, keys[i], strlen(keys[i]));
    return ok && tlen > 0;
}

char **ss_http_split_keys(const char *csv, size_t *n) {
    size_t len = csv ? strlen(csv) : 0, parts = 1;
    for (size_t i = 0; i < len; i++)
        parts += csv[i] == ',';
    char **arr = malloc((parts + 1) * sizeof(char *) + len + 1);
    if (!arr)
        return NULL;
    char *store = (char *)(arr + parts + 1);
    memcpy(store, csv ? csv : "", len + 1);
    size_t k = 0;
    for (char *save = NULL, *tok = strtok_r(store, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (*tok)
            arr[k++] = tok;
    }
    arr[k] = NULL;
    if (n)
        *n = k;
    return arr;
}

int ss_http_query_param(struct mg_connection *conn, const char *name, char *buf, size_t bufsize) {
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (bufsize > 0)
        buf[0] = '\0';
    if (!ri->query_string)
        return SS_QUERY_ABSENT;
    return ss_query_get(ri->query_string, strlen(ri->query_string), name, buf, bufsize);
}
