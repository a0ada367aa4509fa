/* The web dashboard: GET / redirects to /dashboard, which serves one static
 * page (compiled in from web/, see webassets.h) and its assets under
 * /dashboard/.  Chart.js is not a copy in the repository: it is read from
 * Debian's libjs-chart.js package (GATEWAY_CHARTJS_PATH) and served as
 * /dashboard/chart.js.
 *
 * The page calls /db with the key the user typed (Bearer, from
 * sessionStorage); these routes themselves need no key: they serve no data.
 * Every answer carries a strict Content-Security-Policy (scripts and styles
 * from this origin only: no inline script or style, no eval) and nosniff. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "gateway.h"
#include "http/server.h"
#include "webassets.h"

#define CHARTJS_MAX_BYTES (8u << 20)

static const char security_headers[] =
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "Cross-Origin-Opener-Policy: same-origin\r\n"
    "Cross-Origin-Resource-Policy: same-origin\r\n";

static int is_head(const struct mg_request_info *ri) {
    return strcmp(ri->request_method, "HEAD") == 0;
}

static int etag_matches(struct mg_connection *c, const char *etag) {
    const char *inm = mg_get_header(c, "If-None-Match");
    return inm && etag && strstr(inm, etag) != NULL;
}

/* Sends body (or 304 when the client holds this etag).  Returns the status. */
static int send_static(struct mg_connection *c, const char *type, const void *body, size_t len,
                       const char *etag) {
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (etag_matches(c, etag)) {
        mg_printf(c, "HTTP/1.1 304 Not Modified\r\nETag: %s\r\nCache-Control: no-cache\r\n%s\r\n",
                  etag, security_headers);
        return 304;
    }
    mg_printf(c,
              "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "Cache-Control: no-cache\r\n%s%s%s%s\r\n",
              type, len, etag ? "ETag: " : "", etag ? etag : "", etag ? "\r\n" : "",
              security_headers);
    if (!is_head(ri) && len)
        mg_write(c, body, len);
    return 200;
}

static int send_error(struct mg_connection *c, int status, const char *code, const char *msg) {
    return ss_http_send_error_h(c, status, code, msg, security_headers);
}

static const gw_web_asset_t *find_asset(const char *name) {
    for (size_t i = 0; i < gw_web_nassets; i++)
        if (strcmp(gw_web_assets[i].name, name) == 0)
            return &gw_web_assets[i];
    return NULL;
}

/* Reads the installed Chart.js (bounded) and sends it. */
static int send_chartjs(struct mg_connection *c) {
    const char *path = g_gw.cfg.chartjs_path;
    char msg[1200];
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
        (unsigned long long)st.st_size > CHARTJS_MAX_BYTES) {
        snprintf(msg, sizeof msg,
                 "Chart.js is not available at %s (%s): install Debian's libjs-chart.js package "
                 "or set GATEWAY_CHARTJS_PATH",
                 path, f ? "not a regular file of at most 8 MiB" : strerror(errno));
        if (f)
            fclose(f);
        ss_log_kv(SS_LOG_WARN, "chart.js unavailable", "path", path, NULL);
        return send_error(c, 503, "chartjs_unavailable", msg);
    }
    char etag[64];
    snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtime);
    if (etag_matches(c, etag)) {
        fclose(f);
        return send_static(c, "text/javascript; charset=utf-8", NULL, 0, etag);
    }
    size_t len = (size_t)st.st_size;
    char *buf = malloc(len ? len : 1);
    size_t got = buf ? fread(buf, 1, len, f) : 0;
    fclose(f);
    if (!buf || got != len) {
        free(buf);
        return send_error(c, 503, "chartjs_unavailable", "Chart.js could not be read");
    }
    int status = send_static(c, "text/javascript; charset=utf-8", buf, len, etag);
    free(buf);
    return status;
}

int gw_handle_root(struct mg_connection *c, void *ud) {
    (void)ud;
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (strcmp(ri->local_uri, "/") != 0)
        return send_error(c, 404, "not_found", "no such endpoint");
    if (strcmp(ri->request_method, "GET") != 0 && !is_head(ri))
        return send_error(c, 405, "method_not_allowed", "GET only");
    mg_printf(c,
              "HTTP/1.1 302 Found\r\nLocation: /dashboard\r\nContent-Length: 0\r\n"
              "Cache-Control: no-cache\r\n%s\r\n",
              security_headers);
    return 302;
}

int gw_handle_dashboard(struct mg_connection *c, void *ud) {
    (void)ud;
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (strcmp(ri->request_method, "GET") != 0 && !is_head(ri))
        return send_error(c, 405, "method_not_allowed", "the dashboard is read-only (GET)");
    const char *uri = ri->local_uri;
    if (strncmp(uri, "/dashboard", 10) != 0)
        return send_error(c, 404, "not_found", "no such endpoint");
    const char *rest = uri + 10;
    if (*rest == '\0' || strcmp(rest, "/") == 0)
        rest = "/index.html";
    if (*rest != '/' || strchr(rest + 1, '/') || strlen(rest + 1) > 64)
        return send_error(c, 404, "not_found", "no such file");
    if (strcmp(rest + 1, "chart.js") == 0)
        return send_chartjs(c);
    const gw_web_asset_t *a = find_asset(rest + 1);
    if (!a)
        return send_error(c, 404, "not_found", "no such file");
    return send_static(c, a->type, a->data, a->len, a->etag);
}
