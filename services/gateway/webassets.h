/* The dashboard's static files (services/gateway/web/), compiled in by
 * web/embed.cmake. */
#ifndef SS_GATEWAY_WEBASSETS_H
#define SS_GATEWAY_WEBASSETS_H

#include <stddef.h>

typedef struct {
    const char *name; /* file name, e.g. "dashboard.js" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
    const char *etag; /* quoted, e.g. "\"0123456789abcdef\"" */
} gw_web_asset_t;

extern const gw_web_asset_t gw_web_assets[];
extern const size_t gw_web_nassets;

/* services/gateway/openapi.json alone (openapi.c serves it). */
extern const gw_web_asset_t gw_openapi_assets[];
extern const size_t gw_openapi_nassets;

#endif
