/* GET /openapi.json: the gateway's API description (OpenAPI 3.1), kept by
 * hand in services/gateway/openapi.json and compiled in (web/embed.cmake,
 * see webassets.h).  No key: it describes the API and holds no data.
 * tests/integration/openapi keeps it true (a validator, the routes the
 * gateway registers, the /db answers against its schemas). */
#include <string.h>

#include "gateway.h"
#include "http/server.h"
#include "webassets.h"

int gw_handle_openapi(struct mg_connection *c, void *ud) {
    (void)ud;
    const struct mg_request_info *ri = mg_get_request_info(c);
    int head = strcmp(ri->request_method, "HEAD") == 0;
    if (strcmp(ri->request_method, "GET") != 0 && !head)
        return ss_http_send_error_h(c, 405, "method_not_allowed", "GET only",
                                    "Allow: GET, HEAD\r\n");
    if (strcmp(ri->local_uri, "/openapi.json") != 0 || gw_openapi_nassets != 1)
        return ss_http_send_error(c, 404, "not_found", "no such endpoint");
    const gw_web_asset_t *a = &gw_openapi_assets[0];
    const char *inm = mg_get_header(c, "If-None-Match");
    if (inm && strstr(inm, a->etag)) {
        mg_printf(c,
                  "HTTP/1.1 304 Not Modified\r\nETag: %s\r\nCache-Control: no-cache\r\n"
                  "X-Content-Type-Options: nosniff\r\n\r\n",
                  a->etag);
        return 304;
    }
    mg_printf(c,
              "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\nETag: %s\r\n"
              "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n\r\n",
              a->type, a->len, a->etag);
    if (!head)
        mg_write(c, a->data, a->len);
    return 200;
}
