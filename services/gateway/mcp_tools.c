/* The MCP tools: EasyPost through libs/easypost (answers handed to Kafka
 * like /v1's), history through the read API's queries (readapi.c, the same
 * SQL as /db).
 *
 * Each tool has an inputSchema (JSON Schema 2020-12, checked here by a small
 * validator for the keywords the schemas use, so that the schema a client
 * sees is the rule the server applies), an outputSchema its
 * structuredContent follows, a short text rendering and annotations.  A
 * failure a person can act on (EasyPost refused, PostgreSQL down, bad
 * arguments) is a result with isError and a sentence, never a JSON-RPC error.
 *
 * Limits: structuredContent at most GW_MCP_MAX_RESULT_BYTES (else isError
 * asking for a narrower request), the text at most GW_MCP_MAX_TEXT_BYTES,
 * search pages at most 50 rows; EasyPost calls are bounded by
 * EASYPOST_TIMEOUT_MS and queries by GATEWAY_STATEMENT_TIMEOUT_MS. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/money.h"
#include "common/sstime.h"
#include "common/util.h"
#include "cursor.h"
#include "gateway.h"
#include "mcp.h"

#define SEARCH_MAX_LIMIT     50
#define SEARCH_DEFAULT_LIMIT 10
#define MAX_RATES            50
#define MAX_EVENTS           50

typedef struct {
    ss_buf_t sc;   /* structuredContent (JSON text) */
    ss_buf_t text; /* the short rendering, or the error's sentence */
    int is_error;
} tool_out_t;

static void fail(tool_out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(tool_out_t *o, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    o->is_error = 1;
    ss_buf_reset(&o->text);
    ss_buf_appendf(&o->text, "%s", msg);
}

/* ---------------------------------------------------------------- schemas */

#define SCHEMA_2020 "\"$schema\":\"https://json-schema.org/draft/2020-12/schema\""
#define STR(n)      "{\"type\":\"string\",\"maxLength\":" #n "}"
#define NSTR        "{\"type\":[\"string\",\"null\"]}"
#define NINT        "{\"type\":[\"integer\",\"null\"]}"
#define NNUM        "{\"type\":[\"number\",\"null\"]}"
#define NBOOL       "{\"type\":[\"boolean\",\"null\"]}"

#define ADDRESS_PROPS                                                                              \
    "\"name\":" STR(200) ",\"company\":" STR(                                                      \
        200) ",\"street1\":{\"type\":\"string\","                                                  \
             "\"minLength\":1,\"maxLength\":200},"                                                 \
             "\"street2\":" STR(200) ",\"city\":" STR(100) ",\"state\":" STR(100) ",\"zip\":" STR( \
                 20) ",\"country\":{\"type\":\"string\","                                          \
                     "\"minLength\":2,\"maxLength\":2,"                                            \
                     "\"description\":\"ISO 3166 "                                                 \
                     "alpha-2, default US\"},"                                                     \
                     "\"phone\":" STR(50) ",\"email\":" STR(200) ",\"residential\":{\"type\":"     \
                                                                 "\"boolean\"}"

static const char verify_in[] =
    "{" SCHEMA_2020 ",\"type\":\"object\",\"properties\":{" ADDRESS_PROPS
    "},\"required\":[\"street1\"],\"additionalProperties\":false}";

#define ADDRESS_OUT                                                                  \
    "{\"type\":[\"object\",\"null\"],\"properties\":{\"id\":" NSTR ",\"name\":" NSTR \
    ",\"company\":" NSTR ",\"street1\":" NSTR ",\"street2\":" NSTR ",\"city\":" NSTR \
    ",\"state\":" NSTR ",\"zip\":" NSTR ",\"country\":" NSTR ",\"residential\":" NBOOL "}}"

static const char verify_out[] =
    "{" SCHEMA_2020 ",\"type\":\"object\",\"properties\":{\"verified\":{\"type\":\"boolean\"},"
    "\"address\":" ADDRESS_OUT ",\"messages\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}"
    "},\"required\":[\"verified\",\"address\",\"messages\"]}";

static const char quote_in[] =
    "{" SCHEMA_2020 ",\"type\":\"object\",\"$defs\":{\"address\":{\"type\":\"object\","
    "\"properties\":{" ADDRESS_PROPS
    "},\"required\":[\"street1\"],\"additionalProperties\":false}},"
    "\"properties\":{\"from_address\":{\"$ref\":\"#/$defs/address\"},"
    "\"to_address\":{\"$ref\":\"#/$defs/address\"},"
    "\"parcel\":{\"type\":\"object\",\"properties\":{"
    "\"weight\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"maximum\":10000,"
    "\"description\":\"ounces\"},"
    "\"length\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"maximum\":1000,\"description\":"
    "\"inches\"},"
    "\"width\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"maximum\":1000},"
    "\"height\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"maximum\":1000},"
    "\"predefined_package\":" STR(64) "},\"required\":[\"weight\"],\"additionalProperties\":false},"
                                      "\"reference\":" STR(
                                          200) "},"
                                               "\"required\":[\"from_address\",\"to_address\","
                                               "\"parcel\"],\"additionalProperties\":false}";

static const char quote_out[] =
    "{" SCHEMA_2020 ",\"type\":\"object\",\"properties\":{\"shipment_id\":{\"type\":\"string\"},"
    "\"mode\":" NSTR ",\"rates\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
    "\"properties\":{\"id\":{\"type\":\"string\"},\"carrier\":" NSTR ",\"service\":" NSTR
    ",\"rate\":" NSTR ",\"currency\":" NSTR ",\"delivery_days\":" NINT ",\"delivery_date\":" NSTR
    ",\"cheapest\":{\"type\":\"boolean\"},\"fastest\":{\"type\":\"boolean\"}},"
    "\"required\":[\"id\",\"rate\",\"cheapest\",\"fastest\"]}},"
    "\"cheapest_rate_id\":" NSTR ",\"fastest_rate_id\":" NSTR
    ",\"messages\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}},"
    "\"required\":[\"shipment_id\",\"rates\",\"cheapest_rate_id\",\"fastest_rate_id\"]}";

static const char track_in[] =
    "{" SCHEMA_2020 ",\"type\":\"object\",\"properties\":{"
    "\"tracking_code\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"
    "\"carrier\":{\"type\":\"string\",\"maxLength\":50,\"description\":\"e.g. USPS, UPS, FedEx; "
    "EasyPost guesses when absent\"}},\"required\":[\"tracking_code\"],"
    "\"additionalProperties\":false}";

static const char track_out[] =
    "{" SCHEMA_2020 ",\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},"
    "\"tracking_code\":" NSTR ",\"carrier\":" NSTR ",\"status\":" NSTR ",\"status_detail\":" NSTR
    ",\"est_delivery_date\":" NSTR ",\"public_url\":" NSTR ",\"shipment_id\":" NSTR
    ",\"events\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "\"datetime\":" NSTR ",\"status\":" NSTR ",\"message\":" NSTR ",\"city\":" NSTR
    ",\"state\":" NSTR ",\"country\":" NSTR "}}}},\"required\":[\"id\",\"status\",\"events\"]}";

static const char get_in[] =
    "{" SCHEMA_2020 ",\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\","
    "\"minLength\":1,\"maxLength\":128,\"description\":\"shipment id, shp_...\"}},"
    "\"required\":[\"id\"],\"additionalProperties\":false}";

#define SHIPMENT_PROPS                                                                            \
    "\"id\":{\"type\":\"string\"},\"mode\":" NSTR ",\"status\":" NSTR ",\"tracking_code\":" NSTR  \
    ",\"tracker_id\":" NSTR ",\"carrier\":" NSTR ",\"service\":" NSTR ",\"rate\":" NSTR           \
    ",\"total_cost\":" NSTR ",\"currency\":" NSTR ",\"delivery_days\":" NINT                      \
    ",\"est_delivery_date\":" NSTR ",\"delivered_at\":" NSTR ",\"from_address_id\":" NSTR         \
    ",\"to_address_id\":" NSTR ",\"parcel_id\":" NSTR ",\"batch_id\":" NSTR                       \
    ",\"is_return\":" NBOOL ",\"reference\":" NSTR ",\"label_url\":" NSTR ",\"created_at\":" NSTR \
    ",\"updated_at\":" NSTR

static const char get_out[] =
    "{" SCHEMA_2020 ",\"type\":\"object\",\"properties\":{" SHIPMENT_PROPS
    ",\"from_address\":{\"type\":[\"object\",\"null\"]},\"to_address\":{\"type\":[\"object\","
    "\"null\"]},\"parcel\":{\"type\":[\"object\",\"null\"]},\"selected_rate\":{\"type\":["
    "\"object\",\"null\"]},\"tracking_events\":{\"type\":\"array\",\"items\":{\"type\":"
    "\"object\",\"properties\":{\"occurred_at\":" NSTR ",\"status\":" NSTR ",\"message\":" NSTR
    "}}}},\"required\":[\"id\",\"status\",\"tracking_events\"]}";

#define MODE_IN                                                                                  \
    "{\"type\":\"string\",\"enum\":[\"production\",\"test\",\"all\"],\"default\":"               \
    "\"production\",\"description\":\"EasyPost mode: production (live keys, the default), test " \
    "(test keys) or all\"}"

static const char search_in[] =
    "{" SCHEMA_2020 ",\"type\":\"object\",\"properties\":{"
    "\"status\":{\"type\":\"string\",\"maxLength\":50,\"description\":\"e.g. unknown, "
    "pre_transit, in_transit, delivered\"},"
    "\"carrier\":" STR(50) ",\"service\":" STR(100) ",\"tracking_code\":" STR(
        100) ",\"created_from\":{\"type\":\"string\",\"maxLength\":40,\"description\":\"ISO 8601 "
             "timestamp or date, inclusive\"},"
             "\"created_to\":{\"type\":\"string\",\"maxLength\":40,\"description\":\"exclusive\"},"
             "\"text\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200,\"description\":\"a "
             "shipment id, tracking code, reference, or words of the sender's or recipient's "
             "address\"},"
             "\"mode\":" MODE_IN ","
             "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":50,\"default\":10},"
             "\"cursor\":{\"type\":\"string\",\"maxLength\":600,\"description\":\"next_cursor of "
             "the "
             "previous page\"}},\"additionalProperties\":false}";

static const char search_out[] =
    "{" SCHEMA_2020 ",\"type\":\"object\",\"properties\":{\"shipments\":{\"type\":\"array\","
    "\"items\":{\"type\":\"object\",\"properties\":{" SHIPMENT_PROPS "},\"required\":[\"id\"]}},"
    "\"next_cursor\":" NSTR ",\"count\":{\"type\":\"integer\"}},"
    "\"required\":[\"shipments\",\"next_cursor\",\"count\"]}";

static const char analytics_in[] =
    "{" SCHEMA_2020 ",\"type\":\"object\",\"properties\":{\"days\":{\"type\":\"integer\","
    "\"minimum\":1,\"maximum\":400,\"default\":30},\"mode\":" MODE_IN
    "},\"additionalProperties\":false}";

static const char analytics_out[] =
    "{" SCHEMA_2020 ",\"type\":\"object\",\"properties\":{\"days\":{\"type\":\"integer\"},"
    "\"summary\":{\"type\":\"object\",\"properties\":{\"shipments\":{\"type\":\"integer\"},"
    "\"total_cost\":" NSTR ",\"avg_cost\":" NSTR ",\"delivered\":{\"type\":\"integer\"},"
    "\"avg_delivery_days\":" NNUM ",\"on_time_count\":{\"type\":\"integer\"},"
    "\"on_time_eligible_count\":{\"type\":\"integer\"},\"on_time_rate\":" NNUM "},"
    "\"required\":[\"shipments\",\"total_cost\"]},"
    "\"daily\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"date\":"
    "{\"type\":\"string\"},\"shipments\":{\"type\":\"integer\"},\"total_cost\":" NSTR
    ",\"delivered\":{\"type\":\"integer\"}}}},"
    "\"carriers\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "\"carrier\":" NSTR ",\"service\":" NSTR ",\"total_shipments\":{\"type\":\"integer\"},"
    "\"total_revenue\":" NSTR ",\"on_time_rate\":" NNUM "}}},"
    "\"top_routes\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}},"
    "\"freshness\":{\"type\":\"object\",\"properties\":{\"last_refreshed_at\":" NSTR
    ",\"age_seconds\":" NNUM "}}},"
    "\"required\":[\"days\",\"summary\",\"daily\",\"carriers\",\"top_routes\",\"freshness\"]}";

static const char buy_in[] =
    "{" SCHEMA_2020 ",\"type\":\"object\",\"properties\":{"
    "\"shipment_id\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":128,"
    "\"description\":\"shp_... from quote_shipment\"},"
    "\"rate_id\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":128,\"description\":"
    "\"rate_... from quote_shipment; or give carrier and service instead\"},"
    "\"carrier\":" STR(50) ",\"service\":" STR(
        100) "},"
             "\"required\":[\"shipment_id\"],\"additionalProperties\":false}";

static const char buy_out[] =
    "{" SCHEMA_2020 ",\"type\":\"object\",\"properties\":{\"shipment_id\":{\"type\":"
    "\"string\"},\"status\":" NSTR ",\"tracking_code\":" NSTR ",\"carrier\":" NSTR
    ",\"service\":" NSTR ",\"rate\":" NSTR ",\"currency\":" NSTR ",\"label_url\":" NSTR
    ",\"tracker_id\":" NSTR ",\"public_url\":" NSTR ",\"replayed\":{\"type\":\"boolean\","
    "\"description\":\"true: bought by an earlier identical call; nothing was charged again\"}},"
    "\"required\":[\"shipment_id\",\"tracking_code\",\"replayed\"]}";

static const char refund_in[] =
    "{" SCHEMA_2020 ",\"type\":\"object\",\"properties\":{\"shipment_id\":{\"type\":"
    "\"string\",\"minLength\":1,\"maxLength\":128,\"description\":\"shp_... of a bought, "
    "unused label\"}},\"required\":[\"shipment_id\"],\"additionalProperties\":false}";

static const char refund_out[] =
    "{" SCHEMA_2020 ",\"type\":\"object\",\"properties\":{\"shipment_id\":{\"type\":"
    "\"string\"},\"refund_status\":" NSTR ",\"tracking_code\":" NSTR
    ",\"already_requested\":{\"type\":\"boolean\",\"description\":\"true: an earlier call "
    "asked for it; nothing was asked again\"}},"
    "\"required\":[\"shipment_id\",\"refund_status\",\"already_requested\"]}";

/* ---------------------------------------------------------------- validator
 * The subset of JSON Schema 2020-12 the input schemas use: $ref (#/$defs/x),
 * type, properties, required, additionalProperties: false, enum (strings),
 * minLength and maxLength (code points), minimum, maximum, exclusiveMinimum. */

static json_object *member(json_object *o, const char *name) {
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, name, &v) ? v : NULL;
}

static size_t utf8_len(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int type_ok(json_object *v, const char *t) {
    enum json_type jt = json_object_get_type(v);
    if (strcmp(t, "object") == 0)
        return jt == json_type_object;
    if (strcmp(t, "string") == 0)
        return jt == json_type_string;
    if (strcmp(t, "integer") == 0)
        return jt == json_type_int;
    if (strcmp(t, "number") == 0)
        return jt == json_type_int || jt == json_type_double;
    if (strcmp(t, "boolean") == 0)
        return jt == json_type_boolean;
    return 0;
}

static int validate(json_object *root, json_object *schema, json_object *v, const char *path,
                    char *err, size_t errsize) {
    json_object *ref = member(schema, "$ref");
    if (ref) { /* "#/$defs/<name>" */
        const char *r = json_object_get_string(ref);
        schema = strncmp(r, "#/$defs/", 8) == 0 ? member(member(root, "$defs"), r + 8) : NULL;
        if (!schema) {
            snprintf(err, errsize, "%s: the schema is broken", path);
            return -1;
        }
    }
    json_object *t = member(schema, "type");
    const char *type = t ? json_object_get_string(t) : NULL;
    if (type && !type_ok(v, type)) {
        snprintf(err, errsize, "%s must be %s %s", path,
                 strcmp(type, "integer") == 0 || strcmp(type, "object") == 0 ? "an" : "a", type);
        return -1;
    }
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        if ((size_t)json_object_get_string_len(v) != strlen(s)) {
            snprintf(err, errsize, "%s must not contain NUL characters", path);
            return -1;
        }
        json_object *en = member(schema, "enum");
        if (en) {
            int hit = 0;
            for (size_t i = 0; i < json_object_array_length(en) && !hit; i++)
                hit = strcmp(s, json_object_get_string(json_object_array_get_idx(en, i))) == 0;
            if (!hit) { /* the shared schema is only read: no json_object_to_json_string */
                size_t k = (size_t)snprintf(err, errsize, "%s must be one of", path);
                for (size_t i = 0; i < json_object_array_length(en) && k < errsize; i++)
                    k += (size_t)snprintf(err + k, errsize - k, "%s \"%s\"", i ? "," : "",
                                          json_object_get_string(json_object_array_get_idx(en, i)));
                return -1;
            }
        }
        size_t n = utf8_len(s);
        json_object *mn = member(schema, "minLength"), *mx = member(schema, "maxLength");
        if (mn && n < (size_t)json_object_get_int64(mn)) {
            snprintf(err, errsize, "%s must have at least %lld characters", path,
                     (long long)json_object_get_int64(mn));
            return -1;
        }
        if (mx && n > (size_t)json_object_get_int64(mx)) {
            snprintf(err, errsize, "%s must have at most %lld characters", path,
                     (long long)json_object_get_int64(mx));
            return -1;
        }
    }
    if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) {
        double x = json_object_get_double(v);
        json_object *mn = member(schema, "minimum"), *mx = member(schema, "maximum"),
                    *ex = member(schema, "exclusiveMinimum");
        if ((mn && x < json_object_get_double(mn)) || (mx && x > json_object_get_double(mx)) ||
            (ex && x <= json_object_get_double(ex))) {
            snprintf(err, errsize, "%s is out of range (%s%g to %g)", path, ex ? "above " : "",
                     ex   ? json_object_get_double(ex)
                     : mn ? json_object_get_double(mn)
                          : 0.0,
                     mx ? json_object_get_double(mx) : 1e300);
            return -1;
        }
    }
    if (json_object_is_type(v, json_type_object)) {
        json_object *props = member(schema, "properties"), *req = member(schema, "required");
        for (size_t i = 0; req && i < json_object_array_length(req); i++) {
            const char *name = json_object_get_string(json_object_array_get_idx(req, i));
            if (!member(v, name)) {
                snprintf(err, errsize, "%s.%s is required", path, name);
                return -1;
            }
        }
        json_object *addl = member(schema, "additionalProperties");
        json_object_object_foreach(v, key, val) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.%.64s", path, key);
            json_object *ps = member(props, key);
            if (!ps) {
                if (addl && !json_object_get_boolean(addl)) {
                    snprintf(err, errsize, "%s is not a known argument", sub);
                    return -1;
                }
                continue;
            }
            if (validate(root, ps, val, sub, err, errsize) != 0)
                return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- helpers */

static const char *arg_str(json_object *args, const char *name) {
    json_object *v = member(args, name);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static const char *jstr(json_object *o, const char *name) {
    return ss_ep_json_str(o, name);
}

static const char *s_or(json_object *o, const char *name, const char *dflt) {
    const char *v = jstr(o, name);
    return v ? v : dflt;
}

static void add_str(json_object *o, const char *name, const char *v) {
    json_object_object_add(o, name, v ? json_object_new_string(v) : NULL);
}

/* Copies member name of from (any type) into to, null when absent. */
static void copy(json_object *to, json_object *from, const char *name) {
    json_object *v = member(from, name);
    json_object_object_add(to, name, v ? json_object_get(v) : NULL);
}

static void sc_set(tool_out_t *o, json_object *sc) {
    ss_buf_appendf(&o->sc, "%s",
                   json_object_to_json_string_ext(sc, JSON_C_TO_STRING_PLAIN |
                                                          JSON_C_TO_STRING_NOSLASHESCAPE));
}

static int need_easypost(tool_out_t *o) {
    if (g_gw.ep)
        return 1;
    fail(o, "EasyPost is not configured on this gateway (EASYPOST_API_KEY is not set): ask the "
            "operator to set it");
    return 0;
}

/* A sentence for an EasyPost call that did not succeed. */
static void ep_fail(tool_out_t *o, const char *what, const ss_ep_result_t *r) {
    char detail[600] = "";
    size_t n = 0;
    for (size_t i = 0; i < r->n_field_errors && n < sizeof detail - 1; i++) {
        const ss_ep_field_error_t *f = &r->field_errors[i];
        n += (size_t)snprintf(detail + n, sizeof detail - n, "; %s%s%s", f->field ? f->field : "",
                              f->field ? ": " : "", f->message ? f->message : "");
        if (n >= sizeof detail)
            n = sizeof detail - 1;
    }
    switch (r->status) {
    case SS_EP_HTTP_ERROR:
        fail(o, "EasyPost refused to %s (HTTP %ld%s%s): %s%s", what, r->http_status,
             r->error_code ? " " : "", r->error_code ? r->error_code : "",
             r->error_message ? r->error_message : "no message", detail);
        break;
    case SS_EP_ERR_TIMEOUT:
        fail(o, "EasyPost did not answer in time while trying to %s; try again in a moment", what);
        break;
    case SS_EP_ERR_CONNECT:
        fail(o, "EasyPost could not be reached to %s; nothing was sent, try again later", what);
        break;
    case SS_EP_ERR_INVALID: fail(o, "could not %s: %s", what, r->errstr); break;
    default: fail(o, "could not %s: EasyPost's answer could not be used (%s)", what, r->errstr);
    }
}

static void db_fail(tool_out_t *o, int unavailable, const char *err) {
    if (unavailable) {
        fail(o, "PostgreSQL (the synced copy) is unavailable right now; try again in a few "
                "seconds");
        return;
    }
    ss_log_kv(SS_LOG_ERROR, "mcp read query failed", "error", err, NULL);
    fail(o, "the query failed on the gateway (logged there); try again or ask the operator");
}

/* ---------------------------------------------------------------- EasyPost tools */

static void address_summary(json_object *to, json_object *a) {
    static const char *const f[] = {"id",   "name",  "company", "street1", "street2",
                                    "city", "state", "zip",     "country", "residential"};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        copy(to, a, f[i]);
}

static void run_verify_address(json_object *args, tool_out_t *o) {
    if (!need_easypost(o))
        return;
    json_object *req = json_object_new_object();
    json_object_object_add(req, "address", json_object_get(args));
    const char *body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
    ss_ep_result_t r;
    ss_ep_address_create_and_verify(g_gw.ep, body, 0, &r);
    json_object_put(req);
    gw_count_ep_call("address_create_and_verify", &r);
    json_object *sc = json_object_new_object(), *msgs = json_object_new_array();
    if (r.status == SS_EP_OK && r.json) {
        gw_publish("address.created", &r);
        json_object *a = member(r.json, "address");
        if (!a || !json_object_is_type(a, json_type_object))
            a = r.json;
        json_object *del = member(member(a, "verifications"), "delivery");
        int ok = json_object_get_boolean(member(del, "success"));
        json_object *errs = member(del, "errors");
        for (size_t i = 0; errs && i < json_object_array_length(errs) && i < 20; i++) {
            const char *m = jstr(json_object_array_get_idx(errs, i), "message");
            if (m)
                json_object_array_add(msgs, json_object_new_string(m));
        }
        json_object *addr = json_object_new_object();
        address_summary(addr, a);
        json_object_object_add(sc, "verified", json_object_new_boolean(ok));
        json_object_object_add(sc, "address", addr);
        ss_buf_appendf(
            &o->text, "%s: %s, %s %s %s %s (%s)", ok ? "Verified" : "Not verified",
            jstr(a, "street1") ? jstr(a, "street1") : "", jstr(a, "city") ? jstr(a, "city") : "",
            jstr(a, "state") ? jstr(a, "state") : "", jstr(a, "zip") ? jstr(a, "zip") : "",
            jstr(a, "country") ? jstr(a, "country") : "", jstr(a, "id") ? jstr(a, "id") : "no id");
    } else if (r.status == SS_EP_HTTP_ERROR && r.http_status == 422 && r.error_code &&
               strncmp(r.error_code, "ADDRESS.VERIFY", 14) == 0) {
        /* Unverifiable is an answer, not a failure. */
        json_object_object_add(sc, "verified", json_object_new_boolean(0));
        json_object_object_add(sc, "address", NULL);
        if (r.error_message)
            json_object_array_add(msgs, json_object_new_string(r.error_message));
        for (size_t i = 0; i < r.n_field_errors && i < 20; i++)
            if (r.field_errors[i].message)
                json_object_array_add(msgs, json_object_new_string(r.field_errors[i].message));
        ss_buf_appendf(&o->text, "Not verified: EasyPost could not verify this address (%s)",
                       r.error_message ? r.error_message : r.error_code);
    } else {
        ep_fail(o, "verify the address", &r);
        json_object_put(msgs);
        json_object_put(sc);
        ss_ep_result_free(&r);
        return;
    }
    json_object_object_add(sc, "messages", msgs);
    sc_set(o, sc);
    json_object_put(sc);
    ss_ep_result_free(&r);
}

/* -1, 0, 1 as a < b for two valid money strings (invalid ones sort last). */
static int money_cmp(const char *a, const char *b) {
    int64_t x, y;
    int xa = a && ss_money_parse(a, 9, &x, NULL, 0) == 0;
    int yb = b && ss_money_parse(b, 9, &y, NULL, 0) == 0;
    if (!xa || !yb)
        return xa ? -1 : yb ? 1 : 0;
    return x < y ? -1 : x > y;
}

static void run_quote_shipment(json_object *args, tool_out_t *o) {
    if (!need_easypost(o))
        return;
    json_object *shp = json_object_new_object(), *req = json_object_new_object();
    copy(shp, args, "from_address");
    copy(shp, args, "to_address");
    copy(shp, args, "parcel");
    if (member(args, "reference"))
        copy(shp, args, "reference");
    json_object_object_add(req, "shipment", shp);
    const char *body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
    ss_ep_result_t r;
    ss_ep_shipment_create(g_gw.ep, body, 0, &r);
    json_object_put(req);
    gw_count_ep_call("shipment_create", &r);
    if (r.status != SS_EP_OK || !r.json) {
        ep_fail(o, "quote the shipment", &r);
        ss_ep_result_free(&r);
        return;
    }
    gw_publish("shipment.created", &r);
    json_object *rates = member(r.json, "rates");
    size_t n =
        rates && json_object_is_type(rates, json_type_array) ? json_object_array_length(rates) : 0;
    if (n > MAX_RATES)
        n = MAX_RATES;
    int cheapest = -1, fastest = -1;
    for (size_t i = 0; i < n; i++) {
        json_object *rt = json_object_array_get_idx(rates, i);
        const char *price = jstr(rt, "rate");
        if (!price || !ss_ep_money_valid(price))
            continue;
        if (cheapest < 0 ||
            money_cmp(price, jstr(json_object_array_get_idx(rates, (size_t)cheapest), "rate")) < 0)
            cheapest = (int)i;
        json_object *dd = member(rt, "delivery_days");
        if (!dd || !json_object_is_type(dd, json_type_int))
            continue;
        json_object *best = fastest >= 0 ? json_object_array_get_idx(rates, (size_t)fastest) : NULL;
        int64_t d = json_object_get_int64(dd);
        int64_t bd = best ? json_object_get_int64(member(best, "delivery_days")) : 0;
        if (!best || d < bd || (d == bd && money_cmp(price, jstr(best, "rate")) < 0))
            fastest = (int)i;
    }
    json_object *sc = json_object_new_object(), *out = json_object_new_array();
    add_str(sc, "shipment_id", jstr(r.json, "id"));
    copy(sc, r.json, "mode");
    for (size_t i = 0; i < n; i++) {
        json_object *rt = json_object_array_get_idx(rates, i), *x = json_object_new_object();
        static const char *const f[] = {"id",       "carrier",       "service",      "rate",
                                        "currency", "delivery_days", "delivery_date"};
        for (size_t k = 0; k < sizeof f / sizeof f[0]; k++)
            copy(x, rt, f[k]);
        json_object_object_add(x, "cheapest", json_object_new_boolean((int)i == cheapest));
        json_object_object_add(x, "fastest", json_object_new_boolean((int)i == fastest));
        json_object_array_add(out, x);
    }
    json_object_object_add(sc, "rates", out);
    json_object *cr = cheapest >= 0 ? json_object_array_get_idx(rates, (size_t)cheapest) : NULL;
    json_object *fr = fastest >= 0 ? json_object_array_get_idx(rates, (size_t)fastest) : NULL;
    add_str(sc, "cheapest_rate_id", cr ? jstr(cr, "id") : NULL);
    add_str(sc, "fastest_rate_id", fr ? jstr(fr, "id") : NULL);
    json_object *msgs = json_object_new_array(), *em = member(r.json, "messages");
    for (size_t i = 0; em && json_object_is_type(em, json_type_array) &&
                       i < json_object_array_length(em) && i < 20;
         i++) {
        json_object *m = json_object_array_get_idx(em, i);
        const char *t = json_object_is_type(m, json_type_string) ? json_object_get_string(m)
                                                                 : jstr(m, "message");
        if (t) {
            char line[300];
            snprintf(line, sizeof line, "%s%s%.250s", jstr(m, "carrier") ? jstr(m, "carrier") : "",
                     jstr(m, "carrier") ? ": " : "", t);
            json_object_array_add(msgs, json_object_new_string(line));
        }
    }
    json_object_object_add(sc, "messages", msgs);
    sc_set(o, sc);
    json_object_put(sc);
    ss_buf_appendf(&o->text, "Shipment %s: %zu rate(s).", jstr(r.json, "id"), n);
    if (cr)
        ss_buf_appendf(&o->text, " Cheapest: %s %s %s %s (%s).", jstr(cr, "carrier"),
                       jstr(cr, "service"), jstr(cr, "rate"),
                       jstr(cr, "currency") ? jstr(cr, "currency") : "", jstr(cr, "id"));
    if (fr)
        ss_buf_appendf(
            &o->text, " Fastest: %s %s, %lld day(s), %s %s (%s).", jstr(fr, "carrier"),
            jstr(fr, "service"), (long long)json_object_get_int64(member(fr, "delivery_days")),
            jstr(fr, "rate"), jstr(fr, "currency") ? jstr(fr, "currency") : "", jstr(fr, "id"));
    if (!cr)
        ss_buf_appendf(&o->text, " No rate was offered: see messages.");
    ss_ep_result_free(&r);
}

static void run_track(json_object *args, tool_out_t *o) {
    if (!need_easypost(o))
        return;
    json_object *t = json_object_new_object(), *req = json_object_new_object();
    copy(t, args, "tracking_code");
    if (member(args, "carrier"))
        copy(t, args, "carrier");
    json_object_object_add(req, "tracker", t);
    const char *body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
    ss_ep_result_t r;
    ss_ep_tracker_create(g_gw.ep, body, 0, &r);
    json_object_put(req);
    gw_count_ep_call("tracker_create", &r);
    if (r.status != SS_EP_OK || !r.json) {
        ep_fail(o, "track the package", &r);
        ss_ep_result_free(&r);
        return;
    }
    gw_publish("tracker.created", &r);
    json_object *sc = json_object_new_object(), *ev = json_object_new_array();
    static const char *const f[] = {"id",         "tracking_code", "carrier",
                                    "status",     "status_detail", "est_delivery_date",
                                    "public_url", "shipment_id"};
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++)
        copy(sc, r.json, f[k]);
    json_object *det = member(r.json, "tracking_details");
    size_t n = det && json_object_is_type(det, json_type_array) ? json_object_array_length(det) : 0;
    for (size_t i = n > MAX_EVENTS ? n - MAX_EVENTS : 0; i < n; i++) { /* the latest ones */
        json_object *d = json_object_array_get_idx(det, i), *x = json_object_new_object();
        json_object *loc = member(d, "tracking_location");
        copy(x, d, "datetime");
        copy(x, d, "status");
        copy(x, d, "message");
        copy(x, loc, "city");
        copy(x, loc, "state");
        copy(x, loc, "country");
        json_object_array_add(ev, x);
    }
    json_object_object_add(sc, "events", ev);
    sc_set(o, sc);
    json_object_put(sc);
    json_object *last = n ? json_object_array_get_idx(det, n - 1) : NULL;
    ss_buf_appendf(&o->text, "%s %s: %s", jstr(r.json, "carrier") ? jstr(r.json, "carrier") : "",
                   jstr(r.json, "tracking_code") ? jstr(r.json, "tracking_code") : "",
                   jstr(r.json, "status") ? jstr(r.json, "status") : "unknown");
    if (jstr(r.json, "est_delivery_date"))
        ss_buf_appendf(&o->text, ", estimated delivery %s", jstr(r.json, "est_delivery_date"));
    if (last && jstr(last, "message"))
        ss_buf_appendf(&o->text, "; latest: %s (%s)", jstr(last, "message"),
                       jstr(last, "datetime") ? jstr(last, "datetime") : "no time");
    ss_buf_appendf(&o->text, "; %zu event(s); tracker %s", n, jstr(r.json, "id"));
    ss_ep_result_free(&r);
}

/* The rate of shipment_id with this carrier and service (case-insensitive)
 * into rid; 0, or -1 after fail(). */
static int find_rate(const char *shp, const char *carrier, const char *service, char *rid, size_t n,
                     tool_out_t *o) {
    ss_ep_result_t r;
    ss_ep_shipment_retrieve(g_gw.ep, shp, &r);
    gw_count_ep_call("shipment_retrieve", &r);
    if (r.status != SS_EP_OK || !r.json) {
        ep_fail(o, "look up the shipment's rates", &r);
        ss_ep_result_free(&r);
        return -1;
    }
    json_object *rates = member(r.json, "rates");
    char have[600] = "";
    size_t hl = 0;
    int found = 0;
    for (size_t i = 0; rates && json_object_is_type(rates, json_type_array) &&
                       i < json_object_array_length(rates) && !found;
         i++) {
        json_object *rt = json_object_array_get_idx(rates, i);
        const char *c = jstr(rt, "carrier"), *sv = jstr(rt, "service"), *id = jstr(rt, "id");
        if (c && sv && id && strcasecmp(c, carrier) == 0 && strcasecmp(sv, service) == 0) {
            snprintf(rid, n, "%s", id);
            found = 1;
        } else if (c && sv && hl < sizeof have - 1) {
            hl += (size_t)snprintf(have + hl, sizeof have - hl, "%s%s %s", hl ? ", " : "", c, sv);
            if (hl >= sizeof have)
                hl = sizeof have - 1;
        }
    }
    ss_ep_result_free(&r);
    if (!found)
        fail(o, "Shipment %s has no %s %s rate; its rates: %s", shp, carrier, service,
             have[0] ? have : "none");
    return found ? 0 : -1;
}

static void run_buy_shipment(json_object *args, tool_out_t *o) {
    if (!need_easypost(o))
        return;
    const char *shp = arg_str(args, "shipment_id"), *rate = arg_str(args, "rate_id");
    const char *carrier = arg_str(args, "carrier"), *service = arg_str(args, "service");
    if (rate ? carrier || service : !(carrier && service)) {
        fail(o, "Invalid arguments: give rate_id, or carrier and service (both from "
                "quote_shipment), not both");
        return;
    }
    char rid[160];
    if (rate)
        snprintf(rid, sizeof rid, "%s", rate);
    else if (find_rate(shp, carrier, service, rid, sizeof rid, o) != 0)
        return;
    ss_buf_t body = {0};
    ss_buf_appendf(&body, "{\"rate\":{\"id\":");
    ss_buf_append_json_str(&body, rid);
    ss_buf_append(&body, "}}", 2);
    gw_answer_t a = {0};
    /* No key of ours: the gateway's implicit key per shipment makes the buy
     * idempotent (a second call replays the first purchase, never buys again). */
    gw_buy_do(shp, body.data ? body.data : "", body.len, NULL, &a);
    ss_buf_free(&body);
    json_object *res = a.body ? json_tokener_parse(a.body) : NULL;
    if (a.status < 200 || a.status >= 300 || !res) {
        json_object *e = member(res, "error");
        fail(o, "The purchase did not go through (HTTP %d%s%s): %s%s", a.status,
             jstr(e, "code") ? " " : "", jstr(e, "code") ? jstr(e, "code") : "",
             jstr(e, "message") ? jstr(e, "message") : "no message",
             a.status == 409 || a.status == 503 || a.status == 504
                 ? ". Nothing is bought twice: call again in a moment to learn the outcome"
                 : "");
        json_object_put(res);
        gw_answer_free(&a);
        return;
    }
    int replayed = strcasestr(a.headers, "Idempotent-Replayed") != NULL;
    json_object *sr = member(res, "selected_rate"), *tr = member(res, "tracker");
    json_object *sc = json_object_new_object();
    add_str(sc, "shipment_id", jstr(res, "id"));
    copy(sc, res, "status");
    copy(sc, res, "tracking_code");
    copy(sc, sr, "carrier");
    copy(sc, sr, "service");
    copy(sc, sr, "rate");
    copy(sc, sr, "currency");
    add_str(sc, "label_url", jstr(member(res, "postage_label"), "label_url"));
    add_str(sc, "tracker_id", jstr(tr, "id"));
    add_str(sc, "public_url", jstr(tr, "public_url"));
    json_object_object_add(sc, "replayed", json_object_new_boolean(replayed));
    sc_set(o, sc);
    json_object_put(sc);
    ss_buf_appendf(&o->text, "Bought %s: %s %s for %s %s; tracking %s; label %s%s",
                   s_or(res, "id", shp), s_or(sr, "carrier", "-"), s_or(sr, "service", "-"),
                   s_or(sr, "rate", "-"), s_or(sr, "currency", ""), s_or(res, "tracking_code", "-"),
                   s_or(member(res, "postage_label"), "label_url", "-"),
                   replayed ? " (bought by an earlier identical call: nothing was charged again)"
                            : "");
    json_object_put(res);
    gw_answer_free(&a);
}

static int plain_id(const char *id) {
    size_t n = strlen(id);
    return n > 0 && n <= 128 &&
           strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789_-") == n;
}

static void refund_result(tool_out_t *o, json_object *shp, int already) {
    json_object *sc = json_object_new_object();
    add_str(sc, "shipment_id", jstr(shp, "id"));
    copy(sc, shp, "refund_status");
    copy(sc, shp, "tracking_code");
    json_object_object_add(sc, "already_requested", json_object_new_boolean(already));
    sc_set(o, sc);
    json_object_put(sc);
    ss_buf_appendf(&o->text, "Refund of %s (tracking %s): %s%s", s_or(shp, "id", "?"),
                   s_or(shp, "tracking_code", "-"), s_or(shp, "refund_status", "unknown"),
                   already ? " (asked for earlier: nothing was asked again)"
                           : "; the carrier confirms it within days (refund_status refunded)");
}

static void run_refund_shipment(json_object *args, tool_out_t *o) {
    if (!need_easypost(o))
        return;
    const char *shp = arg_str(args, "shipment_id");
    if (!plain_id(shp)) {
        fail(o, "Invalid arguments: shipment_id must be an EasyPost id (shp_...)");
        return;
    }
    /* Asked already (by anyone)?  Then that is the answer: never ask twice. */
    ss_ep_result_t r;
    ss_ep_shipment_retrieve(g_gw.ep, shp, &r);
    gw_count_ep_call("shipment_retrieve", &r);
    if (r.status != SS_EP_OK || !r.json) {
        ep_fail(o, "look up the shipment", &r);
        ss_ep_result_free(&r);
        return;
    }
    if (jstr(r.json, "refund_status")) {
        refund_result(o, r.json, 1);
        ss_ep_result_free(&r);
        return;
    }
    if (!json_object_is_type(member(r.json, "postage_label"), json_type_object)) {
        fail(o, "Shipment %s was never bought: there is no label to refund", shp);
        ss_ep_result_free(&r);
        return;
    }
    ss_ep_result_free(&r);
    char path[160];
    snprintf(path, sizeof path, "/shipments/%s/refund", shp);
    ss_ep_request(g_gw.ep, "POST", path, "{}", 2, SS_EP_RETRY_NEVER_SENT, &r);
    gw_count_ep_call("shipment_refund", &r);
    if (r.status == SS_EP_OK && r.json) {
        gw_publish("shipment.refund_requested", &r);
        refund_result(o, r.json, 0);
    } else {
        ep_fail(o, "refund the label", &r);
    }
    ss_ep_result_free(&r);
}

/* ---------------------------------------------------------------- read API tools */

static json_object *parse_text(const ss_buf_t *b) {
    return b->data ? json_tokener_parse(b->data) : NULL;
}

static void run_get_shipment(json_object *args, tool_out_t *o) {
    const char *id = arg_str(args, "id");
    char err[512];
    int unavailable;
    int found = gw_db_shipment_get(id, &o->sc, &unavailable, err, sizeof err);
    if (found < 0) {
        db_fail(o, unavailable, err);
        return;
    }
    if (found == 0) {
        fail(o,
             "No shipment %s in the synced copy. Check the id (shp_...); a shipment created "
             "in the last few seconds may not have synced yet: try again shortly.",
             id);
        return;
    }
    json_object *s = parse_text(&o->sc);
    json_object *ev = member(s, "tracking_events");
    size_t n = ev ? json_object_array_length(ev) : 0;
    json_object *last = n ? json_object_array_get_idx(ev, n - 1) : NULL;
    ss_buf_appendf(&o->text,
                   "%s: %s, %s %s, tracking %s, cost %s %s, created %s; %zu tracking "
                   "event(s)",
                   s_or(s, "id", id), s_or(s, "status", "unknown"), s_or(s, "carrier", "-"),
                   s_or(s, "service", "-"), s_or(s, "tracking_code", "none"),
                   s_or(s, "total_cost", s_or(s, "rate", "-")), s_or(s, "currency", ""),
                   s_or(s, "created_at", "-"), n);
    if (last)
        ss_buf_appendf(&o->text, ", latest: %s %s", s_or(last, "status", ""),
                       s_or(last, "message", ""));
    json_object_put(s);
}

static void run_search_shipments(json_object *args, tool_out_t *o) {
    const char *mode = arg_str(args, "mode");
    gw_shipments_query_t q = {.mode = mode ? mode : "production",
                              .status = arg_str(args, "status"),
                              .carrier = arg_str(args, "carrier"),
                              .service = arg_str(args, "service"),
                              .tracking_code = arg_str(args, "tracking_code"),
                              .created_from = arg_str(args, "created_from"),
                              .created_to = arg_str(args, "created_to"),
                              .text = arg_str(args, "text"),
                              .limit = SEARCH_DEFAULT_LIMIT};
    json_object *lim = member(args, "limit");
    if (lim)
        q.limit = (long)json_object_get_int64(lim);
    const char *range[] = {q.created_from, q.created_to};
    const char *names[] = {"created_from", "created_to"};
    for (int i = 0; i < 2; i++) {
        int64_t t;
        if (range[i] && ss_time_parse(range[i], &t) != 0) {
            fail(o,
                 "Invalid arguments: %s must be an ISO 8601 timestamp such as "
                 "2024-08-15T00:00:00Z, or a date such as 2024-08-15",
                 names[i]);
            return;
        }
    }
    char usec[32], cid[GW_CURSOR_MAX_ID + 1];
    const char *cur = arg_str(args, "cursor");
    if (cur) {
        int64_t t;
        if (gw_cursor_decode(cur, &t, cid, sizeof cid) != 0) {
            fail(o, "Invalid arguments: cursor is not a next_cursor this tool returned; leave it "
                    "out to start from the newest shipment");
            return;
        }
        snprintf(usec, sizeof usec, "%lld", (long long)t);
        q.cursor_usec = usec;
        q.cursor_id = cid;
    }
    char err[512];
    int unavailable;
    if (gw_db_shipments_page(&q, &o->sc, &unavailable, err, sizeof err) != 0) {
        ss_buf_reset(&o->sc);
        db_fail(o, unavailable, err);
        return;
    }
    json_object *p = parse_text(&o->sc), *list = member(p, "shipments");
    size_t n = list ? json_object_array_length(list) : 0;
    ss_buf_appendf(&o->text, "%zu %s shipment(s), newest first", n, q.mode);
    for (size_t i = 0; i < n && o->text.len < GW_MCP_MAX_TEXT_BYTES; i++) {
        json_object *s = json_object_array_get_idx(list, i);
        ss_buf_appendf(&o->text, "\n%s %s %s %s %s %s %s", s_or(s, "id", "?"),
                       s_or(s, "created_at", "-"), s_or(s, "status", "-"), s_or(s, "carrier", "-"),
                       s_or(s, "service", "-"), s_or(s, "total_cost", s_or(s, "rate", "-")),
                       s_or(s, "tracking_code", "-"));
    }
    const char *next = jstr(p, "next_cursor");
    ss_buf_appendf(&o->text, next ? "\nmore: call again with cursor=%s" : "\n(no more pages)%s",
                   next ? next : "");
    json_object_put(p);
}

static void run_shipping_analytics(json_object *args, tool_out_t *o) {
    json_object *d = member(args, "days");
    long days = d ? (long)json_object_get_int64(d) : 30;
    const char *mode = arg_str(args, "mode");
    char err[512];
    int unavailable;
    if (gw_db_dashboard_get(days, mode ? mode : "production", &o->sc, &unavailable, err,
                            sizeof err) != 0) {
        ss_buf_reset(&o->sc);
        db_fail(o, unavailable, err);
        return;
    }
    json_object *a = parse_text(&o->sc), *s = member(a, "summary"), *f = member(a, "freshness");
    json_object *ot = member(s, "on_time_rate"), *add = member(s, "avg_delivery_days");
    ss_buf_appendf(
        &o->text,
        "Last %ld day(s), mode %s: %s shipment(s), spend %s, average %s; delivered %s; on time %s "
        "(%s of %s); average delivery %s day(s).",
        days, mode ? mode : "production", json_object_get_string(member(s, "shipments")),
        s_or(s, "total_cost", "0"), s_or(s, "avg_cost", "-"),
        json_object_get_string(member(s, "delivered")), ot ? json_object_get_string(ot) : "-",
        json_object_get_string(member(s, "on_time_count")),
        json_object_get_string(member(s, "on_time_eligible_count")),
        add ? json_object_get_string(add) : "-");
    json_object *cs = member(a, "carriers");
    if (cs && json_object_array_length(cs) > 0) {
        json_object *c0 = json_object_array_get_idx(cs, 0);
        ss_buf_appendf(&o->text, " Busiest carrier/service (90 days): %s %s, %s shipment(s).",
                       s_or(c0, "carrier", "-"), s_or(c0, "service", "-"),
                       json_object_get_string(member(c0, "total_shipments")));
    }
    ss_buf_appendf(
        &o->text, " Analytics refreshed %s (%s s ago).", s_or(f, "last_refreshed_at", "never"),
        member(f, "age_seconds") ? json_object_get_string(member(f, "age_seconds")) : "-");
    json_object_put(a);
}

/* ---------------------------------------------------------------- the table */

typedef struct {
    const char *name, *title, *description, *input, *output;
    int read_only, destructive, idempotent, open_world, purchase;
    void (*run)(json_object *args, tool_out_t *o);
} tool_t;

static const tool_t tools[] = {
    {"verify_address", "Verify an address",
     "Verifies a postal address with EasyPost (delivery verification) and returns the "
     "corrected address, whether it is deliverable, and EasyPost's messages. Creates an "
     "EasyPost Address object; costs nothing.",
     verify_in, verify_out, 0, 0, 0, 1, 0, run_verify_address},
    {"quote_shipment", "Quote a shipment",
     "Creates an EasyPost shipment (from and to addresses, parcel in inches and ounces) and "
     "returns every carrier rate, the cheapest and the fastest marked. Costs nothing; buying "
     "one of the rates is a separate step.",
     quote_in, quote_out, 0, 0, 0, 1, 0, run_quote_shipment},
    {"track", "Track a package",
     "Tracks a package by tracking code (and carrier) through EasyPost: status, estimated "
     "delivery and the latest tracking events. Creates an EasyPost Tracker (free).",
     track_in, track_out, 0, 0, 1, 1, 0, run_track},
    {"get_shipment", "Get a shipment",
     "One shipment from shipstream's synced PostgreSQL copy: status, carrier, cost, "
     "addresses, parcel, selected rate and its tracking timeline. Read-only, milliseconds.",
     get_in, get_out, 1, 0, 1, 0, 0, run_get_shipment},
    {"search_shipments", "Search shipments",
     "Searches the synced shipment history, newest first: by status, carrier, service, "
     "tracking code, creation dates and free text (id, tracking code, reference, or words of "
     "an address). Pages of up to 50; pass next_cursor as cursor for the next page.",
     search_in, search_out, 1, 0, 1, 0, 0, run_search_shipments},
    {"shipping_analytics", "Shipping analytics",
     "The dashboard's numbers for the last N days (1 to 400, as the dashboard): shipments, spend, "
     "delivered, "
     "on-time rate, average delivery days, daily series, carriers and services, top routes, "
     "and how fresh the analytics are.",
     analytics_in, analytics_out, 1, 0, 1, 0, 0, run_shipping_analytics},
    {"buy_shipment", "Buy a shipment's label (costs money)",
     "COSTS MONEY: buys the postage label of a quoted shipment at the chosen rate (rate_id, or "
     "carrier and service); the price is charged to the EasyPost account. Confirm the shipment, "
     "rate and price with the user before calling. Idempotent: calling again for the same "
     "shipment returns the first purchase (replayed: true) and never buys twice.",
     buy_in, buy_out, 0, 1, 1, 1, 1, run_buy_shipment},
    {"refund_shipment", "Refund an unused label (money back)",
     "Asks EasyPost for a refund of a bought, unused label: the label becomes void and must not be "
     "used; the carrier confirms within days (refund_status submitted, then refunded). Moves "
     "money: confirm with the user first. Idempotent: a shipment whose refund was asked already "
     "returns its refund_status and is not asked again.",
     refund_in, refund_out, 0, 1, 1, 1, 1, run_refund_shipment},
};
#define NTOOLS (sizeof tools / sizeof tools[0])

static pthread_once_t tools_once = PTHREAD_ONCE_INIT;
static const tool_t *listed[NTOOLS];
static char *listed_json[NTOOLS];
static json_object *input_schema[NTOOLS];
static size_t nlisted;

static void build(void) {
    for (size_t i = 0; i < NTOOLS; i++) {
        const tool_t *t = &tools[i];
        if (t->purchase && !g_gw.cfg.mcp_allow_purchase)
            continue;
        input_schema[nlisted] = json_tokener_parse(t->input);
        json_object *out = json_tokener_parse(t->output);
        if (!input_schema[nlisted] || !out)
            SS_ERROR("mcp: the schema of tool %s does not parse", t->name); /* a bug */
        json_object_put(out);
        ss_buf_t b = {0};
        ss_buf_appendf(&b, "{\"name\":\"%s\",\"title\":", t->name);
        ss_buf_append_json_str(&b, t->title);
        ss_buf_append(&b, ",\"description\":", 15);
        ss_buf_append_json_str(&b, t->description);
        ss_buf_appendf(&b, ",\"inputSchema\":%s,\"outputSchema\":%s,\"annotations\":{\"title\":",
                       t->input, t->output);
        ss_buf_append_json_str(&b, t->title);
        ss_buf_appendf(&b,
                       ",\"readOnlyHint\":%s,\"destructiveHint\":%s,\"idempotentHint\":%s,"
                       "\"openWorldHint\":%s}}",
                       t->read_only ? "true" : "false", t->destructive ? "true" : "false",
                       t->idempotent ? "true" : "false", t->open_world ? "true" : "false");
        listed[nlisted] = t;
        listed_json[nlisted++] = b.data; /* kept for the process's life */
    }
}

void gw_mcp_tools_init(void) {
    pthread_once(&tools_once, build);
}

size_t gw_mcp_tools_count(void) {
    gw_mcp_tools_init();
    return nlisted;
}

const char *gw_mcp_tool_json(size_t i) {
    return i < nlisted && listed_json[i] ? listed_json[i] : "{}";
}

/* Cuts text to max bytes at a character boundary, marking the cut. */
static void clip(ss_buf_t *b, size_t max) {
    if (!b->data || b->len <= max)
        return;
    size_t n = max - 3;
    while (n > 0 && ((unsigned char)b->data[n] & 0xC0) == 0x80)
        n--;
    b->len = n;
    b->data[n] = '\0';
    ss_buf_append(b, "\xe2\x80\xa6", 3); /* … */
}

int gw_mcp_tool_call(const char *name, json_object *args, ss_buf_t *out) {
    gw_mcp_tools_init();
    size_t i = 0;
    while (i < nlisted && strcmp(listed[i]->name, name) != 0)
        i++;
    if (i == nlisted)
        return -1;
    const tool_t *t = listed[i];
    json_object *empty = NULL;
    if (!args)
        args = empty = json_object_new_object();
    tool_out_t o = {0};
    char err[400];
    if (validate(input_schema[i], input_schema[i], args, "arguments", err, sizeof err) != 0)
        fail(&o, "Invalid arguments: %s (see the tool's inputSchema)", err);
    else
        t->run(args, &o);
    json_object_put(empty);
    if (!o.is_error && o.sc.len > GW_MCP_MAX_RESULT_BYTES)
        fail(&o,
             "The answer (%zu bytes) is over the %u-byte limit of one tool result: narrow "
             "the request (a smaller limit or a shorter date range)",
             o.sc.len, GW_MCP_MAX_RESULT_BYTES);
    clip(&o.text, GW_MCP_MAX_TEXT_BYTES);
    ss_buf_append(out, "{\"content\":[{\"type\":\"text\",\"text\":", 34);
    ss_buf_append_json_str(out, o.text.data ? o.text.data : "");
    ss_buf_append(out, "}]", 2);
    if (!o.is_error) {
        ss_buf_append(out, ",\"structuredContent\":", 21);
        ss_buf_append(out, o.sc.data ? o.sc.data : "{}", o.sc.data ? o.sc.len : 2);
    }
    ss_buf_appendf(out, ",\"isError\":%s}", o.is_error ? "true" : "false");
    char labels[96];
    snprintf(labels, sizeof labels, "tool=\"%s\",outcome=\"%s\"", t->name,
             o.is_error ? "error" : "ok");
    ss_counter_inc(
        ss_counter("gateway_mcp_tool_calls_total", "MCP tools/call by tool and outcome", labels));
    ss_buf_free(&o.sc);
    ss_buf_free(&o.text);
    return out->data ? 0 : -2;
}
