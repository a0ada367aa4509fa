/* /db: the synced data and the analytics, read from PostgreSQL.
 *
 * PostgreSQL builds the JSON (json_build_object), so numerics reach the
 * client exactly; money is rendered as strings, as EasyPost does.  Every
 * value from the request travels as a query parameter; only fixed SQL
 * fragments are concatenated. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/sstime.h"
#include "common/util.h"
#include "cursor.h"
#include "gateway.h"
#include "http/query.h"
#include "http/server.h"

#define DB_MAX_LIMIT     200
#define DB_DEFAULT_LIMIT 50

/* ?days= of the dashboard: a year and a month (the rollups keep every day). */
#define GW_DASHBOARD_MAX_DAYS 400

static int db_error(struct mg_connection *c, int unavailable, const char *err) {
    if (unavailable)
        return ss_http_send_error_h(c, 503, "database_unavailable", "PostgreSQL is unavailable",
                                    "Retry-After: 2\r\n");
    ss_log_kv(SS_LOG_ERROR, "read query failed", "error", err, NULL);
    return ss_http_send_error(c, 500, "internal", "the query failed");
}

static int bad_param(struct mg_connection *c, const char *name, const char *expected) {
    char msg[256];
    snprintf(msg, sizeof msg, "invalid parameter '%s': %s", name, expected);
    return ss_http_send_error(c, 400, "invalid_parameter", msg);
}

/* Refuses parameters this endpoint does not know (a typo is not a filter). */
static int check_known_params(struct mg_connection *c, const char *const *known, int *status) {
    const char *qs = mg_get_request_info(c)->query_string;
    char name[64];
    if (!qs || ss_query_all_known(qs, strlen(qs), known, name, sizeof name))
        return 1;
    *status = bad_param(c, name, "unknown parameter");
    return 0;
}

/* Reads an optional parameter into buf.  Returns 1 present, 0 absent, -1
 * after sending 400 (too long, or not UTF-8 text). */
static int param(struct mg_connection *c, const char *name, char *buf, size_t n, int *status) {
    int r = ss_http_query_param(c, name, buf, n);
    if (r == SS_QUERY_ABSENT || r == 0)
        return 0;
    if (r == SS_QUERY_TOO_LONG) {
        *status = bad_param(c, name, "too long");
        return -1;
    }
    if (r < 0) {
        *status = bad_param(c, name, "not valid UTF-8 text (or a bad %-escape)");
        return -1;
    }
    return 1;
}

static int parse_limit(struct mg_connection *c, long *limit, int *status) {
    char v[16];
    *limit = DB_DEFAULT_LIMIT;
    int r = param(c, "limit", v, sizeof v, status);
    if (r < 0)
        return -1;
    if (r == 0)
        return 0;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || end == v || x < 1 || x > DB_MAX_LIMIT) {
        *status = bad_param(c, "limit", "an integer from 1 to 200");
        return -1;
    }
    *limit = x;
    return 0;
}

/* ?mode=production|test|all (default production: EasyPost's live mode; the
 * sim and test keys make mode "test").  Returns 0 with mode set, or -1 after
 * sending 400. */
static int parse_mode(struct mg_connection *c, char *mode, size_t n, int *status) {
    char v[16];
    int r = param(c, "mode", v, sizeof v, status);
    if (r < 0)
        return -1;
    if (r == 0)
        snprintf(v, sizeof v, "production");
    if (strcmp(v, "production") != 0 && strcmp(v, "test") != 0 && strcmp(v, "all") != 0) {
        *status = bad_param(c, "mode", "production, test or all");
        return -1;
    }
    snprintf(mode, n, "%s", v);
    return 0;
}

/* Runs sql (which fetches limit + 1 rows, column 0 each row's JSON) into out:
 * {"<name>":[rows 0..limit-1],"next_cursor":…,"count":n}; cursor_of builds
 * the cursor of a row.  Returns 0, or -1 with *unavailable and err. */
static int build_page(ss_buf_t *out, const char *sql, int np, const char *const *params,
                      const char *name, long limit,
                      void (*cursor_of)(PGresult *, int, char *, size_t), int *unavailable,
                      char *err, size_t errsize) {
    PGresult *r = gw_db_query(sql, np, params, unavailable, err, errsize);
    if (!r)
        return -1;
    int n = PQntuples(r);
    int shown = n > limit ? (int)limit : n;
    ss_buf_t *b = out;
    ss_buf_appendf(b, "{\"%s\":[", name);
    for (int i = 0; i < shown; i++) {
        if (i)
            ss_buf_append(b, ",", 1);
        ss_buf_append(b, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
    }
    ss_buf_append(b, "],\"next_cursor\":", 16);
    if (n > limit && shown > 0) {
        char cur[600];
        cursor_of(r, shown - 1, cur, sizeof cur);
        if (cur[0])
            ss_buf_append_json_str(b, cur);
        else /* an id no cursor can carry: the page is the last one shown */
            ss_buf_append(b, "null", 4);
    } else {
        ss_buf_append(b, "null", 4);
    }
    ss_buf_appendf(b, ",\"count\":%d}", shown);
    PQclear(r);
    if (!b->data) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    return 0;
}

/* build_page, then sends it.  Returns the status sent. */
static int query_page(struct mg_connection *c, const char *sql, int np, const char *const *params,
                      const char *name, long limit,
                      void (*cursor_of)(PGresult *, int, char *, size_t)) {
    char err[512];
    int unavailable;
    ss_buf_t b = {0};
    int st = build_page(&b, sql, np, params, name, limit, cursor_of, &unavailable, err, sizeof err)
                 ? db_error(c, unavailable, err)
                 : ss_http_send_json(c, 200, b.data, b.len, NULL);
    ss_buf_free(&b);
    return st;
}

/* Reads ?cursor= into its parts.  Returns 1 present, 0 absent, -1 after
 * sending 400. */
static int read_cursor(struct mg_connection *c, char *usec, size_t usize, char *id, size_t isize,
                       int *status) {
    char cur[600];
    int r = param(c, "cursor", cur, sizeof cur, status);
    if (r != 1)
        return r;
    int64_t t;
    if (gw_cursor_decode(cur, &t, id, isize) != 0 ||
        snprintf(usec, usize, "%lld", (long long)t) >= (int)usize) {
        *status = bad_param(c, "cursor", "not a cursor returned by this API");
        return -1;
    }
    return 1;
}

static void shipment_cursor(PGresult *r, int row, char *out, size_t n) {
    if (gw_cursor_encode(strtoll(PQgetvalue(r, row, 1), NULL, 10), PQgetvalue(r, row, 2), out, n))
        out[0] = '\0';
}

static void address_cursor(PGresult *r, int row, char *out, size_t n) {
    if (gw_cursor_encode(0, PQgetvalue(r, row, 1), out, n))
        out[0] = '\0';
}

#define SHIPMENT_JSON_FIELDS                                                               \
    "'id', s.id, 'mode', s.mode, 'status', s.status, 'tracking_code', s.tracking_code, "   \
    "'tracker_id', s.tracker_id, 'carrier', s.carrier, 'service', s.service, "             \
    "'rate', s.rate::text, 'total_cost', s.total_cost::text, 'currency', s.currency, "     \
    "'delivery_days', s.delivery_days, 'est_delivery_date', s.est_delivery_date, "         \
    "'delivered_at', s.delivered_at, 'from_address_id', s.from_address_id, "               \
    "'to_address_id', s.to_address_id, 'parcel_id', s.parcel_id, 'batch_id', s.batch_id, " \
    "'is_return', s.is_return, 'reference', s.reference, 'label_url', s.label_url, "       \
    "'refund_status', s.refund_status, "                                                   \
    "'created_at', s.created_at, 'updated_at', s.updated_at"

#define ADDRESS_JSON(a)                                                                        \
    "json_build_object('id', " a ".id, 'name', " a ".name, 'company', " a ".company, "         \
    "'street1', " a ".street1, 'street2', " a ".street2, 'city', " a ".city, 'state', " a      \
    ".state, "                                                                                 \
    "'zip', " a ".zip, 'country', " a ".country, 'phone', " a ".phone, 'email', " a ".email, " \
    "'residential', " a ".residential, 'verified', " a ".verified, "                           \
    "'created_at', " a ".created_at, 'updated_at', " a ".updated_at)"

int gw_db_shipments_page(const gw_shipments_query_t *q, ss_buf_t *out, int *unavailable, char *err,
                         size_t errsize) {
    const char *params[11];
    int np = 0;
    ss_buf_t sql = {0};
    ss_buf_appendf(&sql, "SELECT json_build_object(" SHIPMENT_JSON_FIELDS ")::text, "
                         "(extract(epoch FROM s.created_at) * 1000000)::bigint, s.id "
                         "FROM shipments s WHERE s.created_at IS NOT NULL");
    struct {
        const char *value, *sql;
    } eq[] = {{q->mode && strcmp(q->mode, "all") != 0 ? q->mode : NULL, "s.mode = $%d"},
              {q->status, "s.status = $%d"},
              {q->carrier, "s.carrier = $%d"},
              {q->service, "s.service = $%d"},
              {q->tracking_code, "s.tracking_code = $%d"},
              {q->created_from, "s.created_at >= $%d::timestamptz"},
              {q->created_to, "s.created_at < $%d::timestamptz"}};
    for (size_t i = 0; i < sizeof eq / sizeof eq[0]; i++)
        if (eq[i].value) {
            params[np++] = eq[i].value;
            ss_buf_append(&sql, " AND ", 5);
            ss_buf_appendf(&sql, eq[i].sql, np);
        }
    if (q->text) { /* MCP: an id, tracking code, reference or words of an address */
        params[np++] = q->text;
        ss_buf_appendf(&sql,
                       " AND (s.id = $%d OR s.tracking_code = $%d OR s.reference = $%d OR "
                       "s.from_address_id IN (SELECT a.id FROM addresses a WHERE a.search @@ "
                       "websearch_to_tsquery('simple', $%d)) OR s.to_address_id IN (SELECT a.id "
                       "FROM addresses a WHERE a.search @@ websearch_to_tsquery('simple', $%d)))",
                       np, np, np, np, np);
    }
    if (q->cursor_usec && q->cursor_id) {
        params[np++] = q->cursor_usec;
        params[np++] = q->cursor_id;
        ss_buf_appendf(&sql,
                       " AND (s.created_at, s.id) < ('epoch'::timestamptz + $%d::bigint * "
                       "interval '1 microsecond', $%d)",
                       np - 1, np);
    }
    ss_buf_appendf(&sql, " ORDER BY s.created_at DESC, s.id DESC LIMIT %ld", q->limit + 1);
    int rc = -1;
    *unavailable = 0;
    if (!sql.data)
        snprintf(err, errsize, "out of memory");
    else
        rc = build_page(out, sql.data, np, params, "shipments", q->limit, shipment_cursor,
                        unavailable, err, errsize);
    ss_buf_free(&sql);
    return rc;
}

static int list_shipments(struct mg_connection *c) {
    static const char *const known[] = {"status",       "carrier",    "service", "tracking_code",
                                        "created_from", "created_to", "limit",   "cursor",
                                        "mode",         NULL};
    int status;
    if (!check_known_params(c, known, &status))
        return status;
    gw_shipments_query_t q = {0};
    const char **eq[] = {&q.status, &q.carrier, &q.service, &q.tracking_code};
    const char *eq_names[] = {"status", "carrier", "service", "tracking_code"};
    char vals[6][256];
    char mode[16];
    if (parse_mode(c, mode, sizeof mode, &status) < 0)
        return status;
    q.mode = mode;
    for (size_t i = 0; i < sizeof eq / sizeof eq[0]; i++) {
        int r = param(c, eq_names[i], vals[i], sizeof vals[i], &status);
        if (r < 0)
            return status;
        if (r == 1)
            *eq[i] = vals[i];
    }
    const char *range[] = {"created_from", "created_to"};
    const char **range_dst[] = {&q.created_from, &q.created_to};
    for (int i = 0; i < 2; i++) {
        char *v = vals[4 + i];
        int r = param(c, range[i], v, sizeof vals[4 + i], &status);
        if (r < 0)
            return status;
        if (r == 1) {
            int64_t t;
            if (ss_time_parse(v, &t) != 0)
                return bad_param(c, range[i],
                                 "an ISO 8601 timestamp such as 2024-08-15T00:00:00Z, or a date");
            *range_dst[i] = v;
        }
    }
    char cur_usec[32], cur_id[256];
    int r = read_cursor(c, cur_usec, sizeof cur_usec, cur_id, sizeof cur_id, &status);
    if (r < 0)
        return status;
    if (r == 1) {
        q.cursor_usec = cur_usec;
        q.cursor_id = cur_id;
    }
    if (parse_limit(c, &q.limit, &status) != 0)
        return status;
    char err[512];
    int unavailable;
    ss_buf_t b = {0};
    status = gw_db_shipments_page(&q, &b, &unavailable, err, sizeof err)
                 ? db_error(c, unavailable, err)
                 : ss_http_send_json(c, 200, b.data, b.len, NULL);
    ss_buf_free(&b);
    return status;
}

static const char shipment_detail_sql[] =
    "SELECT json_build_object(" SHIPMENT_JSON_FIELDS ", "
    "'from_address', (SELECT " ADDRESS_JSON(
        "a") " FROM addresses a WHERE a.id = s.from_address_id), "
             "'to_address', (SELECT " ADDRESS_JSON(
                 "a") " FROM addresses a WHERE a.id = s.to_address_id), "
                      "'parcel', (SELECT json_build_object('id', p.id, 'length', p.length, "
                      "'width', p.width, "
                      "   'height', p.height, 'weight', p.weight, 'predefined_package', "
                      "p.predefined_package) "
                      "   FROM parcels p WHERE p.id = s.parcel_id), "
                      "'selected_rate', coalesce((SELECT json_build_object('id', r.id, 'carrier', "
                      "r.carrier, "
                      "   'service', r.service, 'rate', r.rate::text, 'currency', r.currency, "
                      "   'delivery_days', r.delivery_days, 'delivery_date', r.delivery_date, "
                      "   'retail_rate', r.retail_rate::text, 'list_rate', r.list_rate::text) "
                      "   FROM rates r WHERE r.id = s.selected_rate_id), "
                      "   CASE WHEN s.carrier IS NOT NULL THEN json_build_object('id', "
                      "s.selected_rate_id, "
                      "   'carrier', s.carrier, 'service', s.service, 'rate', s.rate::text, "
                      "'currency', s.currency, "
                      "   'delivery_days', s.delivery_days) END), "
                      "'tracking_events', coalesce((SELECT "
                      "json_agg(json_build_object('occurred_at', e.occurred_at, "
                      "   'status', e.status, 'status_detail', e.status_detail, 'message', "
                      "e.message, "
                      "   'description', e.description, 'source', e.source, 'city', e.city, "
                      "'state', e.state, "
                      "   'country', e.country, 'zip', e.zip) ORDER BY e.occurred_at NULLS LAST, "
                      "e.id) "
                      "   FROM tracking_events e WHERE e.shipment_id = s.id "
                      "      OR (s.tracker_id IS NOT NULL AND e.tracker_id = s.tracker_id)), "
                      "'[]'::json)"
                      ")::text FROM shipments s WHERE s.id = $1";

int gw_db_shipment_get(const char *id, ss_buf_t *out, int *unavailable, char *err, size_t errsize) {
    const char *params[] = {id};
    PGresult *r = gw_db_query_prepared(GW_STMT_SHIPMENT, shipment_detail_sql, 1, params,
                                       unavailable, err, errsize);
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    if (found && ss_buf_append(out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0)) != 0) {
        PQclear(r);
        *unavailable = 0;
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    PQclear(r);
    return found;
}

static int get_shipment(struct mg_connection *c, const char *id) {
    char err[512];
    int unavailable;
    ss_buf_t b = {0};
    int found = gw_db_shipment_get(id, &b, &unavailable, err, sizeof err);
    int st = found < 0    ? db_error(c, unavailable, err)
             : found == 0 ? ss_http_send_error(c, 404, "not_found", "no shipment with this id")
                          : ss_http_send_json(c, 200, b.data, b.len, NULL);
    ss_buf_free(&b);
    return st;
}

int gw_db_begin(struct mg_connection *c, int *status) {
    if (!gw_authorized(c, status))
        return 0;
    if (strcmp(mg_get_request_info(c)->request_method, "GET") != 0) {
        *status =
            ss_http_send_error(c, 405, "method_not_allowed", "the read API is read-only (GET)");
        return 0;
    }
    return 1;
}

int gw_handle_db_shipments(struct mg_connection *c, void *ud) {
    (void)ud;
    int status;
    if (!gw_db_begin(c, &status))
        return status;
    const struct mg_request_info *ri = mg_get_request_info(c);
    const char *rest = ri->local_uri + strlen("/db/shipments");
    if (*rest == '\0' || strcmp(rest, "/") == 0)
        return list_shipments(c);
    if (*rest != '/' || strchr(rest + 1, '/') || strlen(rest + 1) > 128)
        return ss_http_send_error(c, 404, "not_found", "no such endpoint");
    return get_shipment(c, rest + 1);
}

int gw_handle_db_addresses(struct mg_connection *c, void *ud) {
    (void)ud;
    int status;
    if (!gw_db_begin(c, &status))
        return status;
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (strcmp(ri->local_uri, "/db/addresses") != 0 && strcmp(ri->local_uri, "/db/addresses/") != 0)
        return ss_http_send_error(c, 404, "not_found", "no such endpoint");
    static const char *const known[] = {"q", "limit", "cursor", NULL};
    if (!check_known_params(c, known, &status))
        return status;
    char q[512], cur_usec[32], cur_id[256];
    const char *params[2];
    int np = 0;
    ss_buf_t sql = {0};
    ss_buf_appendf(&sql,
                   "SELECT json_build_object('id', a.id, 'name', a.name, 'company', a.company, "
                   "'street1', a.street1, 'street2', a.street2, 'city', a.city, 'state', a.state, "
                   "'zip', a.zip, 'country', a.country, 'verified', a.verified, "
                   "'created_at', a.created_at, 'usage_count', "
                   "(SELECT count(*) FROM shipments s WHERE s.from_address_id = a.id) + "
                   "(SELECT count(*) FROM shipments s WHERE s.to_address_id = a.id))::text, a.id "
                   "FROM addresses a WHERE true");
    int r = param(c, "q", q, sizeof q, &status);
    if (r < 0)
        goto out;
    if (r == 1) {
        params[np++] = q;
        ss_buf_appendf(&sql, " AND a.search @@ websearch_to_tsquery('simple', $%d)", np);
    }
    r = read_cursor(c, cur_usec, sizeof cur_usec, cur_id, sizeof cur_id, &status);
    if (r < 0)
        goto out;
    if (r == 1) {
        params[np++] = cur_id;
        ss_buf_appendf(&sql, " AND a.id > $%d", np);
    }
    long limit;
    if (parse_limit(c, &limit, &status) != 0)
        goto out;
    ss_buf_appendf(&sql, " ORDER BY a.id LIMIT %ld", limit + 1);
    status = query_page(c, sql.data, np, params, "addresses", limit, address_cursor);
out:
    ss_buf_free(&sql);
    return status;
}

/* Summary and daily series follow ?days=N, 1..GW_DASHBOARD_MAX_DAYS (from the
 * daily rollup analytics_days, one row per UTC day and mode: at most 400 x
 * modes rows, never a scan of shipments; migration 0011); carriers and routes
 * are the views' own 90-day window.  $2: the mode (production, test, all).
 * Money is net of refunds (refund_status 'refunded'; 'submitted' is still
 * spent and shown as pending), returns are counted apart (migration 0006). */
static const char dashboard_sql[] =
    "WITH d AS (SELECT day AS date, * FROM analytics_days "
    "           WHERE day >= (now() AT TIME ZONE 'UTC')::date - ($1::int - 1)"
    "             AND ($2::text = 'all' OR mode = $2::text)) "
    "SELECT json_build_object("
    " 'days', $1::int,"
    " 'mode', $2::text,"
    " 'summary', (SELECT json_build_object("
    "     'shipments', coalesce(sum(shipment_count), 0),"
    "     'total_cost', coalesce(sum(total_cost), 0)::text,"
    "     'avg_cost', round(sum(total_cost) / nullif(sum(shipment_count), 0), 5)::text,"
    "     'delivered', coalesce(sum(delivered_count), 0),"
    "     'avg_delivery_days', round((sum(delivery_days_total) / nullif(sum(delivery_days_count),"
    " 0))::numeric, 2),"
    "     'on_time_count', coalesce(sum(on_time_count), 0),"
    "     'on_time_eligible_count', coalesce(sum(on_time_eligible_count), 0),"
    "     'on_time_rate', round(sum(on_time_count)::numeric / nullif(sum(on_time_eligible_count), "
    "0), 4),"
    "     'returns', coalesce(sum(return_count), 0),"
    "     'returns_cost', coalesce(sum(return_cost), 0)::text,"
    "     'refunded', coalesce(sum(refunded_count), 0),"
    "     'refunded_cost', coalesce(sum(refunded_cost), 0)::text,"
    "     'refund_pending', coalesce(sum(refund_pending_count), 0),"
    "     'refund_pending_cost', coalesce(sum(refund_pending_cost), 0)::text)"
    "   FROM d),"
    " 'daily', coalesce((SELECT json_agg(x ORDER BY x.date) FROM ("
    "     SELECT date, sum(shipment_count) AS shipments, sum(total_cost)::text AS total_cost,"
    "            sum(delivered_count) AS delivered, sum(return_count) AS returns"
    "       FROM d GROUP BY date) x), '[]'::json),"
    " 'carriers', coalesce((SELECT json_agg(json_build_object('carrier', carrier, 'service', "
    "service,"
    "     'total_shipments', ts, 'total_revenue', tr::text,"
    "     'delivered_count', dc, 'on_time_count', otc,"
    "     'on_time_rate', round(otc::numeric / nullif(ote, 0), 4),"
    "     'avg_delivery_days', round((ddt / nullif(ddc, 0))::numeric, 2))"
    "     ORDER BY ts DESC, carrier, service) FROM ("
    "       SELECT carrier, service, sum(total_shipments) AS ts, sum(total_revenue) AS tr,"
    "              sum(delivered_count) AS dc, sum(on_time_count) AS otc,"
    "              sum(on_time_eligible_count) AS ote, sum(delivery_days_total) AS ddt,"
    "              sum(delivery_days_count) AS ddc"
    "         FROM mv_carrier_performance WHERE $2::text = 'all' OR mode = $2::text"
    "        GROUP BY carrier, service HAVING sum(total_shipments) > 0) cp), '[]'::json),"
    " 'top_routes', coalesce((SELECT json_agg(r) FROM (SELECT from_city, from_state, from_country,"
    "     to_city, to_state, to_country, shipment_count, total_cost::text AS total_cost,"
    "     avg_cost::text AS avg_cost FROM mv_top_routes WHERE mode = $2::text"
    "     ORDER BY shipment_count DESC, from_city, from_state, from_country, to_city, to_state, "
    "to_country"
    "     LIMIT 10) r), '[]'::json)"
    ")::text";

/* Per request: the generation of the analytics (the newest analytics_refresh_log
 * row: every refresh of a view, and so every apply of the rollups, adds one;
 * and today's UTC date, which moves the windows) and the freshness, which
 * changes with time. */
static const char dashboard_gen_sql[] =
    "SELECT coalesce((SELECT max(id) FROM analytics_refresh_log), 0)::text || ' '"
    "       || ((now() AT TIME ZONE 'UTC')::date)::text,"
    " (SELECT json_build_object("
    "     'last_refreshed_at', min(last_refreshed_at),"
    "     'age_seconds', round(max(age_seconds)::numeric, 3),"
    "     'views', json_agg(json_build_object('view', view_name, 'last_refreshed_at', "
    "last_refreshed_at,"
    "         'age_seconds', round(age_seconds::numeric, 3)) ORDER BY view_name))"
    "   FROM analytics_freshness)::text";

/* The dashboard's answer but its freshness, cached per (days, mode) while the
 * generation holds (at 1,000 requests/s the same few ranges are asked again
 * and again; the answer only changes with a refresh or a new UTC day), and
 * at most DASH_CACHE_TTL_USEC: a backstop should two refreshes commit out of
 * their log ids' order. */
#define DASH_CACHE_N        32
#define DASH_CACHE_TTL_USEC (10 * 1000000LL)
typedef struct {
    long days;
    char mode[16];
    char gen[64];
    int64_t at; /* monotonic usec; 0 = empty */
    char *body; /* without its closing '}' */
    size_t len;
} dash_entry_t;
static dash_entry_t dash_cache[DASH_CACHE_N];
static pthread_mutex_t dash_mu = PTHREAD_MUTEX_INITIALIZER;

/* Appends the cached body of (days, mode, gen) to out: 1 done, 0 not cached,
 * -1 out of memory. */
static int dash_cache_get(long days, const char *mode, const char *gen, ss_buf_t *out) {
    int rc = 0;
    int64_t now = ss_time_mono_usec();
    pthread_mutex_lock(&dash_mu);
    for (int i = 0; i < DASH_CACHE_N; i++) {
        dash_entry_t *e = &dash_cache[i];
        if (e->at && e->days == days && strcmp(e->mode, mode) == 0 && strcmp(e->gen, gen) == 0 &&
            now - e->at < DASH_CACHE_TTL_USEC) {
            rc = ss_buf_append(out, e->body, e->len) == 0 ? 1 : -1;
            break;
        }
    }
    pthread_mutex_unlock(&dash_mu);
    return rc;
}

/* Stores a body (copied) for (days, mode, gen), over the same key or the
 * oldest entry.  Nothing is stored when out of memory. */
static void dash_cache_put(long days, const char *mode, const char *gen, const char *body,
                           size_t len) {
    char *copy = malloc(len ? len : 1);
    if (!copy || strlen(gen) >= sizeof dash_cache[0].gen ||
        strlen(mode) >= sizeof dash_cache[0].mode) {
        free(copy);
        return;
    }
    memcpy(copy, body, len);
    int64_t now = ss_time_mono_usec();
    pthread_mutex_lock(&dash_mu);
    dash_entry_t *slot = &dash_cache[0];
    for (int i = 0; i < DASH_CACHE_N; i++) {
        dash_entry_t *e = &dash_cache[i];
        if (e->at && e->days == days && strcmp(e->mode, mode) == 0) {
            slot = e;
            break;
        }
        if (e->at < slot->at)
            slot = e;
    }
    free(slot->body);
    slot->days = days;
    snprintf(slot->mode, sizeof slot->mode, "%s", mode);
    snprintf(slot->gen, sizeof slot->gen, "%s", gen);
    slot->at = now;
    slot->body = copy;
    slot->len = len;
    pthread_mutex_unlock(&dash_mu);
}

int gw_db_dashboard_get(long days, const char *mode, ss_buf_t *out, int *unavailable, char *err,
                        size_t errsize) {
    PGresult *g = gw_db_query_prepared(GW_STMT_DASHBOARD_GEN, dashboard_gen_sql, 0, NULL,
                                       unavailable, err, errsize);
    if (!g)
        return -1;
    char gen[64];
    snprintf(gen, sizeof gen, "%s", PQgetvalue(g, 0, 0));
    int rc = dash_cache_get(days, mode, gen, out);
    if (rc == 0) {
        char dv[16];
        snprintf(dv, sizeof dv, "%ld", days);
        const char *params[] = {dv, mode};
        PGresult *res = gw_db_query_prepared(GW_STMT_DASHBOARD, dashboard_sql, 2, params,
                                             unavailable, err, errsize);
        if (!res) {
            PQclear(g);
            return -1;
        }
        /* json_build_object's text ends with '}': kept open for the freshness */
        size_t len = (size_t)PQgetlength(res, 0, 0);
        const char *body = PQgetvalue(res, 0, 0);
        while (len && body[len - 1] != '}')
            len--;
        if (len)
            len--;
        dash_cache_put(days, mode, gen, body, len);
        rc = ss_buf_append(out, body, len) == 0 ? 1 : -1;
        PQclear(res);
    }
    if (rc == 1) {
        const char *fresh = PQgetisnull(g, 0, 1) ? "null" : PQgetvalue(g, 0, 1);
        static const char key[] = ",\"freshness\":";
        rc = ss_buf_append(out, key, sizeof key - 1) | ss_buf_append(out, fresh, strlen(fresh)) |
             ss_buf_append(out, "}", 1);
    }
    PQclear(g);
    if (rc != 0) {
        *unavailable = 0;
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    return 0;
}

int gw_handle_db_dashboard(struct mg_connection *c, void *ud) {
    (void)ud;
    int status;
    if (!gw_db_begin(c, &status))
        return status;
    static const char *const known[] = {"days", "mode", NULL};
    if (!check_known_params(c, known, &status))
        return status;
    char v[16] = "30";
    int r = param(c, "days", v, sizeof v, &status);
    if (r < 0)
        return status;
    if (r == 0)
        strcpy(v, "30");
    char *end;
    long days = strtol(v, &end, 10);
    if (*end || end == v || days < 1 || days > GW_DASHBOARD_MAX_DAYS)
        return bad_param(c, "days", "an integer from 1 to 400");
    char mode[16];
    if (parse_mode(c, mode, sizeof mode, &status) < 0)
        return status;
    char err[512];
    int unavailable;
    ss_buf_t b = {0};
    int st = gw_db_dashboard_get(days, mode, &b, &unavailable, err, sizeof err)
                 ? db_error(c, unavailable, err)
                 : ss_http_send_json(c, 200, b.data, b.len, NULL);
    ss_buf_free(&b);
    return st;
}
