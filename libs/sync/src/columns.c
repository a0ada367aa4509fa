/* The synced tables' descriptors and their statements (see sync/columns.h). */
#include <sync/map.h>

#include <string.h>

#define COLS(list)             \
    (const ss_sync_col_t[]) {  \
        list(SS_SYNC_COL_DESC) \
    }

static const ss_sync_table_desc_t tables[SS_SYNC_T__COUNT] = {
    [SS_SYNC_T_SHIPMENTS] = {"shipments", "ss_sync_shipments", COLS(SS_SYNC_SHIPMENTS_COLUMNS),
                             SH__N, SH_UPDATED_AT, "(id)", NULL, 1},
    [SS_SYNC_T_SHIPMENT_TRACK] = {"shipments", "ss_sync_shipment_track",
                                  COLS(SS_SYNC_SHIPMENT_TRACK_COLUMNS), ST__N,
                                  ST_TRACKER_UPDATED_AT, "(id)", NULL, 1},
    [SS_SYNC_T_TRACKERS] = {"trackers", "ss_sync_trackers", COLS(SS_SYNC_TRACKERS_COLUMNS), TR__N,
                            TR_UPDATED_AT, "(id)", NULL, 1},
    [SS_SYNC_T_TRACKING_EVENTS] = {"tracking_events", "ss_sync_tracking_events",
                                   COLS(SS_SYNC_TRACKING_EVENTS_COLUMNS), TE__N, -1,
                                   "ON CONSTRAINT tracking_events_detail_key", NULL, 0},
    [SS_SYNC_T_ADDRESSES] = {"addresses", "ss_sync_addresses", COLS(SS_SYNC_ADDRESSES_COLUMNS),
                             AD__N, AD_UPDATED_AT, "(id)", NULL, 1},
    [SS_SYNC_T_PARCELS] = {"parcels", "ss_sync_parcels", COLS(SS_SYNC_PARCELS_COLUMNS), PA__N,
                           PA_UPDATED_AT, "(id)", NULL, 1},
    [SS_SYNC_T_RATES] = {"rates", "ss_sync_rates", COLS(SS_SYNC_RATES_COLUMNS), RA__N,
                         RA_UPDATED_AT, "(id)", NULL, 1},
    [SS_SYNC_T_BATCHES] = {"batches", "ss_sync_batches", COLS(SS_SYNC_BATCHES_COLUMNS), BA__N,
                           BA_UPDATED_AT, "(id)", NULL, 1},
    [SS_SYNC_T_EVENTS] = {"easypost_events", "ss_sync_events", COLS(SS_SYNC_EVENTS_COLUMNS), EV__N,
                          -1, "", "CROSS JOIN LATERAL (SELECT u.payload::jsonb AS j) j", 0},
    [SS_SYNC_T_SHIPMENT_REFUND] = {"shipments", "ss_sync_shipment_refund",
                                   COLS(SS_SYNC_SHIPMENT_REFUND_COLUMNS), SR__N,
                                   SR_REFUND_UPDATED_AT, "(id)", NULL, 1},
    [SS_SYNC_T_SHIPMENT_BATCH] = {"shipments", "ss_sync_shipment_batch",
                                  COLS(SS_SYNC_SHIPMENT_BATCH_COLUMNS), SB__N, SB_BATCH_UPDATED_AT,
                                  "(id)", NULL, 1},
    [SS_SYNC_T_REFUNDS] = {"refunds", "ss_sync_refunds", COLS(SS_SYNC_REFUNDS_COLUMNS), RF__N,
                           RF_UPDATED_AT, "(id)", NULL, 1},
    [SS_SYNC_T_PICKUPS] = {"pickups", "ss_sync_pickups", COLS(SS_SYNC_PICKUPS_COLUMNS), PU__N,
                           PU_UPDATED_AT, "(id)", NULL, 1},
    [SS_SYNC_T_SCAN_FORMS] = {"scan_forms", "ss_sync_scan_forms", COLS(SS_SYNC_SCAN_FORMS_COLUMNS),
                              SF__N, SF_UPDATED_AT, "(id)", NULL, 1},
    [SS_SYNC_T_INSURANCES] = {"insurances", "ss_sync_insurances", COLS(SS_SYNC_INSURANCES_COLUMNS),
                              IN__N, IN_UPDATED_AT, "(id)", NULL, 1},
    [SS_SYNC_T_OBJECTS] = {"easypost_objects", "ss_sync_objects", COLS(SS_SYNC_OBJECTS_COLUMNS),
                           OB__N, OB_UPDATED_AT, "(id)", NULL, 1},
};

_Static_assert(SH__N <= SS_SYNC_MAX_COLS && ST__N <= SS_SYNC_MAX_COLS &&
                   TR__N <= SS_SYNC_MAX_COLS && TE__N <= SS_SYNC_MAX_COLS &&
                   AD__N <= SS_SYNC_MAX_COLS && PA__N <= SS_SYNC_MAX_COLS &&
                   RA__N <= SS_SYNC_MAX_COLS && BA__N <= SS_SYNC_MAX_COLS &&
                   EV__N <= SS_SYNC_MAX_COLS && SR__N <= SS_SYNC_MAX_COLS &&
                   SB__N <= SS_SYNC_MAX_COLS && RF__N <= SS_SYNC_MAX_COLS &&
                   PU__N <= SS_SYNC_MAX_COLS && SF__N <= SS_SYNC_MAX_COLS &&
                   IN__N <= SS_SYNC_MAX_COLS && OB__N <= SS_SYNC_MAX_COLS,
               "a table has more columns than SS_SYNC_MAX_COLS: raise it");

const ss_sync_table_desc_t *ss_sync_table_desc(ss_sync_table_id_t t) {
    return (int)t >= 0 && t < SS_SYNC_T__COUNT ? &tables[t] : NULL;
}

int ss_sync_table_ncols(ss_sync_table_id_t t) {
    return (int)t >= 0 && t < SS_SYNC_T__COUNT ? tables[t].ncols : 0;
}

/* ---- the statement ---- */

static int put(ss_buf_t *b, const char *s) {
    return ss_buf_append(b, s, strlen(s));
}

/* "c1, c2, ..." */
static int put_names(ss_buf_t *b, const ss_sync_table_desc_t *d) {
    int rc = 0;
    for (int i = 0; i < d->ncols; i++)
        rc |= ss_buf_appendf(b, "%s%s", i ? ", " : "", d->cols[i].name);
    return rc;
}

static int sql_build(const ss_sync_table_desc_t *d, const char *stage, ss_buf_t *out);

int ss_sync_sql_build(const ss_sync_table_desc_t *d, ss_buf_t *out) {
    return sql_build(d, NULL, out);
}

int ss_sync_sql_build_stage(const ss_sync_table_desc_t *d, const char *stage, ss_buf_t *out) {
    return sql_build(d, stage, out);
}

int ss_sync_stage_create_sql(const ss_sync_table_desc_t *d, const char *stage, ss_buf_t *out) {
    ss_buf_reset(out);
    int rc = ss_buf_appendf(out, "CREATE TEMP TABLE IF NOT EXISTS %s (", stage);
    for (int i = 0; i < d->ncols; i++)
        rc |= ss_buf_appendf(out, "%s%s %s", i ? ", " : "", d->cols[i].name,
                             ss_sync_col_binary_ts(&d->cols[i]) ? "timestamptz" : "text");
    /* rows up to a page stay whole: no compression nor TOAST of what is read once */
    rc |= put(out, ") WITH (toast_tuple_target = 8160) ON COMMIT DELETE ROWS");
    return rc ? -1 : 0;
}

static int sql_build(const ss_sync_table_desc_t *d, const char *stage, ss_buf_t *out) {
    ss_buf_reset(out);
    int rc = ss_buf_appendf(out, "INSERT INTO %s AS t (", d->table);
    rc |= put_names(out, d);
    rc |= put(out, d->synced_at ? ", synced_at) SELECT " : ") SELECT ");
    for (int i = 0; i < d->ncols; i++) {
        const ss_sync_col_t *c = &d->cols[i];
        rc |= put(out, i ? ", " : "");
        if (c->select)
            rc |= put(out, c->select);
        else if (c->cast && !ss_sync_col_binary_ts(c))
            rc |= ss_buf_appendf(out, "%s::%s", c->name, c->cast);
        else
            rc |= put(out, c->name);
    }
    rc |= put(out, d->synced_at ? ", now() FROM " : " FROM ");
    if (stage) {
        rc |= ss_buf_appendf(out, "%s AS u", stage);
    } else {
        /* every other parameter is a binary text[]: casts happen in the SELECT so
         * that a value PostgreSQL rejects is a data error (class 22) of this
         * statement */
        rc |= put(out, "unnest(");
        for (int i = 0; i < d->ncols; i++)
            rc |= ss_buf_appendf(out, "%s$%d::%s[]", i ? ", " : "", i + 1,
                                 ss_sync_col_binary_ts(&d->cols[i]) ? "timestamptz" : "text");
        rc |= put(out, ") AS u(");
        rc |= put_names(out, d);
        rc |= put(out, ")");
    }
    if (d->from)
        rc |= ss_buf_appendf(out, " %s", d->from);
    rc |= put(out, " ON CONFLICT");
    if (*d->conflict)
        rc |= ss_buf_appendf(out, " %s", d->conflict);
    if (d->version < 0) {
        rc |= put(out, " DO NOTHING");
        return rc ? -1 : 0;
    }
    rc |= put(out, " DO UPDATE SET ");
    int n = 0;
    for (int i = 0; i < d->ncols; i++) {
        const ss_sync_col_t *c = &d->cols[i];
        if (c->update && !*c->update)
            continue; /* SS_SYNC_KEEP */
        rc |= ss_buf_appendf(out, "%s%s = ", n++ ? ", " : "", c->name);
        if (c->update)
            rc |= put(out, c->update);
        else
            rc |= ss_buf_appendf(out, "excluded.%s", c->name);
    }
    if (d->synced_at)
        rc |= put(out, n ? ", synced_at = now()" : "synced_at = now()");
    const char *v = d->cols[d->version].name;
    rc |= ss_buf_appendf(out, " WHERE t.%s IS NULL OR t.%s <= excluded.%s", v, v, v);
    return rc ? -1 : 0;
}
