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
 * thread_init/thread_exit (e.g. one PGconn per thread).
 *
 * Hostile and slow clients (civetweb holds one worker thread per connection):
 *   - request line and headers must arrive within request_timeout_ms of the
 *     connection's start (civetweb's own total deadline);
 *   - the body must arrive within body_timeout_ms of the handler's start:
 *     ss_http_read_body() checks a total deadline, not one per read, so a
 *     body trickled a byte at a time is cut off (408);
 *   - an answer sent after a refused or unread body closes the connection
 *     (civetweb would otherwise read and discard the rest of the body on the
 *     worker thread, for as long as the client keeps trickling it);
 *   - with admin_listen set, GET /health, /ready and /metrics are also served
 *     on a second listener with its own few threads, so that probes and
 *     scrapes never wait behind public traffic.
 * So a hostile connection holds a thread for at most request_timeout_ms +
 * body_timeout_ms; size num_threads for the connections you expect,
 * attackers' included (a worker thread idle in poll() costs ~30 KB RSS; see
 * deploy/README.md). */
#ifndef SS_HTTP_SERVER_H
#define SS_HTTP_SERVER_H

#include <stddef.h>
#include <civetweb.h>

#include "common/util.h"

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
    int body_timeout_ms;      /* 0 = request_timeout_ms */
    const char *admin_listen; /* NULL or "" = no admin listener */
    int admin_threads;        /* 0 = 4 */
    ss_http_ready_fn ready;   /* NULL = always ready */
    void *ready_ud;
    void (*thread_init)(void); /* on each worker thread start; may be NULL */
    void (*thread_exit)(void);
    /* 1: until ss_http_serve(), a path without a route (yet) is answered 503
     * "starting" with Retry-After: 1 instead of 404.  civetweb accepts as soon
     * as ss_http_start() returns, before the service has registered its
     * routes: a request in that window is then retried by its client, not
     * refused as if the endpoint did not exist. */
    int hold_until_serve;
} ss_http_opts_t;

/* Starts listening.  Returns NULL with errstr on failure (port taken...). */
ss_http_t *ss_http_start(const ss_http_opts_t *opts, char *errstr, size_t errstr_size);

/* Registers handler for uri (civetweb pattern: "/v1/shipments" matches that
 * path and everything under it; "/webhooks/easypost$" matches exactly).
 * route_label names the route in metrics. */
void ss_http_route(ss_http_t *h, const char *uri, const char *route_label, ss_http_handler_fn fn,
                   void *ud);

/* Every route is registered: from now on a path without a route is 404
 * (see hold_until_serve). */
void ss_http_serve(ss_http_t *h);

/* Stops accepting, waits for handlers in flight, frees. NULL is a no-op. */
void ss_http_stop(ss_http_t *h);

/* Reads the whole request body, up to max bytes, by the body deadline.
 * Returns 0 with *out (malloc'd, NUL-terminated; caller frees) and *len;
 * SS_HTTP_BODY_TOO_LARGE (-2) when the body is larger than max (Content-
 * Length is checked before anything is read); SS_HTTP_BODY_TOO_SLOW (-3) when
 * it did not arrive by the deadline; -1 on a read error (client gone).  On
 * every failure the connection is closed after the answer the handler sends
 * (ss_http_send_error() for 413, 408 or 400 as the caller decides). */
#define SS_HTTP_BODY_TOO_LARGE (-2)
#define SS_HTTP_BODY_TOO_SLOW  (-3)
int ss_http_read_body(struct mg_connection *conn, size_t max, char **out, size_t *len);

/* Marks the current request's connection to be closed after its answer
 * (instead of kept alive, and instead of civetweb reading the rest of an
 * unread body).  Call before sending the answer. */
void ss_http_close_after(struct mg_connection *conn);

/* Sends a JSON body with status.  extra_headers: complete header lines each
 * ending in "\r\n", or NULL.  An extra "Connection: close" header (or an
 * earlier ss_http_close_after / failed ss_http_read_body) closes the
 * connection after the answer.  Returns status. */
int ss_http_send_json(struct mg_connection *conn, int status, const char *json, size_t len,
                      const char *extra_headers);

/* The same with another Content-Type (a body passed through as received). */
int ss_http_send_body(struct mg_connection *conn, int status, const char *content_type,
                      const char *body, size_t len, const char *extra_headers);

/* Appends the error body every service answers, {"error":{"code":...,"message":...}},
 * to b (b->data NULL afterwards means out of memory). */
void ss_http_error_body(ss_buf_t *b, const char *code, const char *message);

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
