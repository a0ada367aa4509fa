/* The HTTP scaffold every service runs on (civetweb).
 *
 * ss_http_start() listens and serves GET /health (always 200 while the
 * process runs), GET /ready (runs the service's readiness check: 200, or 503
 * naming what is down) and GET /metrics (Prometheus text).  Services add
 * their routes with ss_http_route(); each handler returns the HTTP status it
 * sent, which the scaffold counts in http_requests_total{route,status} and
 * http_request_duration_seconds{route}.
 *
 * civetweb calls handlers on many threads at once: per-thread resources go in
 * thread_init/thread_exit (e.g. one PGconn per thread). */
#ifndef SS_HTTP_SERVER_H
#define SS_HTTP_SERVER_H

#include <stddef.h>
#include <civetweb.h>

typedef struct ss_http ss_http_t;

/* Readiness check: return 0 when ready, or -1 and write what is down into
 * why ("postgresql: connection refused"). */
typedef int (*ss_http_ready_fn)(void *ud, char *why, size_t why_size);

/* A route handler.  Must send exactly one response and return its status. */
typedef int (*ss_http_handler_fn)(struct mg_connection *conn, void *ud);

typedef struct {
    const char *service;    /* for logs */
    const char *listen;     /* "host:port" or "port" */
    int num_threads;        /* 0 = 16 */
    int request_timeout_ms; /* 0 = 30000 */
    /* civetweb serves a connection with one worker thread for as long as it
     * is kept alive: an idle keep-alive connection holds a thread.  0 = 5000
     * (clients with more pooled connections than num_threads would otherwise
     * queue for up to this long). */
    int keepalive_timeout_ms;
    ss_http_ready_fn ready; /* NULL = always ready */
    void *ready_ud;
    void (*thread_init)(void); /* on each worker thread start; may be NULL */
    void (*thread_exit)(void);
} ss_http_opts_t;

/* Starts listening.  Returns NULL with errstr on failure (port taken...). */
ss_http_t *ss_http_start(const ss_http_opts_t *opts, char *errstr, size_t errstr_size);

/* Registers handler for uri (civetweb pattern: "/v1/shipments" matches that
 * path and everything under it; "/webhooks/easypost$" matches exactly).
 * route_label names the route in metrics. */
void ss_http_route(ss_http_t *h, const char *uri, const char *route_label, ss_http_handler_fn fn,
                   void *ud);

/* Stops accepting, waits for handlers in flight, frees. NULL is a no-op. */
void ss_http_stop(ss_http_t *h);

/* Reads the whole request body, up to max bytes.
 * Returns 0 with *out (malloc'd, NUL-terminated; caller frees) and *len;
 * -2 when the body is larger than max (Content-Length is checked before
 * anything is read); -1 on a read error or timeout. */
int ss_http_read_body(struct mg_connection *conn, size_t max, char **out, size_t *len);

/* Sends a JSON body with status.  extra_headers: complete header lines each
 * ending in "\r\n", or NULL. Returns status. */
int ss_http_send_json(struct mg_connection *conn, int status, const char *json, size_t len,
                      const char *extra_headers);

/* Sends {"error":{"code":code,"message":message}} with status. Returns status. */
int ss_http_send_error(struct mg_connection *conn, int status, const char *code,
                       const char *message);

/* Same, with one extra header block (e.g. "Retry-After: 5\r\n"). */
int ss_http_send_error_h(struct mg_connection *conn, int status, const char *code,
                         const char *message, const char *extra_headers);

/* Request id: the X-Request-Id header when present and sane, else a fresh
 * one.  Written to buf (64 bytes is enough). The scaffold also sets it as
 * the thread's log request id for the duration of the handler. */
const char *ss_http_request_id(struct mg_connection *conn, char *buf, size_t bufsize);

/* Bearer-token check against a comma-separated key list (constant time per
 * key).  Returns 1 when the Authorization header carries one of the keys. */
int ss_http_bearer_ok(struct mg_connection *conn, const char *const *keys, size_t nkeys);

/* Splits a comma-separated list into a NULL-terminated array of trimmed,
 * non-empty strings (one allocation; free the array with free()). *n gets
 * the count. Returns NULL only on out of memory. */
char **ss_http_split_keys(const char *csv, size_t *n);

/* Value of query parameter name (URL-decoded) into buf: ss_query_get() on
 * the request's query string.  Returns the length, -1 when absent, -2 when
 * it does not fit, -3 when malformed (bad escape, invalid UTF-8, control
 * characters; see http/query.h). */
int ss_http_query_param(struct mg_connection *conn, const char *name, char *buf, size_t bufsize);

#endif
