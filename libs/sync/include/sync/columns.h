/* The synced columns, declared once per table.
 *
 * Each table is one X-macro list below.  Everything else is derived from it:
 * the column numbers (SH_ID, SH_MODE, ...: the order of a row's cells and of
 * the statement's $1..$n), the cells the mapper takes from the object
 * (map.c), and the statement (ss_sync_sql_build): the INSERT column list,
 * the SELECT casts, unnest($1::text[], ...) AS u(...), the ON CONFLICT
 * update list and the version guard.
 *
 * Adding a synced column is one X(...) line in its table's list, plus the
 * migration that adds the column to the table.
 *
 * X(ID, name, cast, src, path, select, update)
 *   ID      the column number's name (an enum constant)
 *   name    the SQL column (also its unnest alias)
 *   cast    the SQL type PostgreSQL casts the text cell to (a value it
 *           rejects is a data error, class 22); NULL: the cell stays text
 *   src     where the cell comes from (SS_SYNC_SRC_<src>, see below)
 *   path    the member of the object, keys separated by '.'
 *           ("selected_rate.carrier"); NULL for OBJECT, MESSAGE, SET
 *   select  the SELECT expression over the unnest columns; NULL: name[::cast]
 *   update  the value ON CONFLICT DO UPDATE SET gives the column; NULL:
 *           excluded.name; SS_SYNC_KEEP: never updated (the conflict key)
 *
 * Cells are text (NULL = SQL NULL): money stays EasyPost's exact string and
 * PostgreSQL's numeric parses it; timestamps are normalised here.  A
 * timestamptz column without its own select travels as a binary
 * timestamptz[] parameter (ss_sync_col_binary_ts): PostgreSQL does not parse
 * its text (the mapper already validated it). */
#ifndef SS_SYNC_COLUMNS_H
#define SS_SYNC_COLUMNS_H

#include <stddef.h>
#include <string.h>

#include <common/util.h>

typedef enum {
    SS_SYNC_SRC_TEXT,    /* scalar member as sent (numbers as their text, booleans
                            "true"/"false", objects/arrays as JSON text); NULL when
                            absent or null */
    SS_SYNC_SRC_BOOL,    /* boolean member as "t"/"f" (other scalars as sent) */
    SS_SYNC_SRC_TIME,    /* timestamp member (any form ss_time_parse accepts) as
                            "YYYY-MM-DDTHH:MM:SS.ffffffZ"; a value that is not a
                            timestamp makes the message poison */
    SS_SYNC_SRC_JSON,    /* member that is an object, as its JSON text (else NULL) */
    SS_SYNC_SRC_OBJECT,  /* the mapped object itself, as its JSON text */
    SS_SYNC_SRC_MESSAGE, /* the message bytes (the whole envelope) */
    SS_SYNC_SRC_SET      /* set by the table's mapping code in map.c */
} ss_sync_src_t;

/* "Never updated": the update of the conflict key column. */
#define SS_SYNC_KEEP ""

typedef struct {
    const char *name;
    const char *cast;
    ss_sync_src_t src;
    const char *path;
    const char *select;
    const char *update;
} ss_sync_col_t;

typedef struct {
    const char *table; /* SQL table */
    const char *stmt;  /* prepared statement name */
    const ss_sync_col_t *cols;
    int ncols;
    /* The column whose stored value must not be newer for the update to
     * happen (t.v IS NULL OR t.v <= excluded.v); its TIME cell is the row's
     * version when rows of one id are reduced.  -1: ON CONFLICT DO NOTHING
     * and rows are not reduced. */
    int version;
    /* ON CONFLICT target: "(id)", "ON CONSTRAINT ...", or "" (DO NOTHING only: any
     * unique key; easypost_events, whose key is (id) before migration 0008 and
     * (id, created_at) after it, so that one statement works on both) */
    const char *conflict;
    const char *from; /* appended to the FROM clause, or NULL */
    int synced_at;    /* the table has synced_at: set to now() */
} ss_sync_table_desc_t;

/* The column travels as a binary timestamptz[] (its cells, normalised
 * timestamps, are converted when the parameter is encoded). */
static inline int ss_sync_col_binary_ts(const ss_sync_col_t *c) {
    return c->cast && !c->select && strcmp(c->cast, "timestamptz") == 0;
}

/* Expansions of a column list. */
#define SS_SYNC_COL_ENUM(id, name, cast, src, path, select, update) id,
#define SS_SYNC_COL_DESC(id, name, cast, src, path, select, update) \
    {name, cast, SS_SYNC_SRC_##src, path, select, update},

/* No table has more columns (a $n parameter each); raise it when one must. */
#define SS_SYNC_MAX_COLS 64

/* ---- the tables ---- */

/* Columns of shipments that two kinds of objects set, each behind its own
 * out-of-order gate (like tracker_updated_at for the tracker's columns):
 *   refund_status     the Shipment's own, or a Refund's (refunds, refund.successful
 *                     webhooks); refund_updated_at = updated_at of the version that
 *                     set it.  The newest wins; NULL never clears a status.
 *   batch_id, batch_status, batch_message
 *                     the Shipment's own, or a Batch's shipments[] entry;
 *                     batch_updated_at = updated_at of the version that set them.
 * On conflict the column takes the new value only when the gate passes. */
#define SS_SYNC_REFUND_GATE                                               \
    "excluded.refund_status IS NOT NULL AND (t.refund_updated_at IS NULL" \
    " OR t.refund_updated_at <= excluded.refund_updated_at)"
#define SS_SYNC_REFUND_SET(col) \
    "CASE WHEN " SS_SYNC_REFUND_GATE " THEN excluded." col " ELSE t." col " END"
#define SS_SYNC_BATCH_GATE \
    "t.batch_updated_at IS NULL OR t.batch_updated_at <= excluded.batch_updated_at"
#define SS_SYNC_BATCH_SET(col) \
    "CASE WHEN " SS_SYNC_BATCH_GATE " THEN excluded." col " ELSE t." col " END"

#define SS_SYNC_SHIPMENTS_COLUMNS(X)                                                           \
    X(SH_ID, "id", NULL, SET, NULL, NULL, SS_SYNC_KEEP) /* the envelope's object_id */         \
    X(SH_MODE, "mode", NULL, TEXT, "mode", NULL, NULL)                                         \
    /* the status follows the tracker once one was seen */                                     \
    X(SH_STATUS, "status", NULL, TEXT, "status", NULL,                                         \
      "CASE WHEN t.tracker_updated_at IS NULL THEN excluded.status ELSE t.status END")         \
    X(SH_TRACKING_CODE, "tracking_code", NULL, TEXT, "tracking_code", NULL,                    \
      "coalesce(excluded.tracking_code, t.tracking_code)")                                     \
    X(SH_TRACKER_ID, "tracker_id", NULL, TEXT, "tracker.id", NULL,                             \
      "coalesce(excluded.tracker_id, t.tracker_id)")                                           \
    X(SH_CARRIER, "carrier", NULL, TEXT, "selected_rate.carrier", NULL, NULL)                  \
    X(SH_SERVICE, "service", NULL, TEXT, "selected_rate.service", NULL, NULL)                  \
    X(SH_SELECTED_RATE_ID, "selected_rate_id", NULL, TEXT, "selected_rate.id", NULL, NULL)     \
    X(SH_RATE, "rate", "numeric", TEXT, "selected_rate.rate", NULL, NULL)                      \
    /* the charged fees' sum (exact), else the rate */                                         \
    X(SH_TOTAL_COST, "total_cost", "numeric", SET, NULL,                                       \
      "coalesce(total_cost::numeric, rate::numeric)", NULL)                                    \
    X(SH_CURRENCY, "currency", NULL, TEXT, "selected_rate.currency", NULL, NULL)               \
    X(SH_DELIVERY_DAYS, "delivery_days", "integer", TEXT, "selected_rate.delivery_days", NULL, \
      NULL)                                                                                    \
    X(SH_EST_DELIVERY_DAYS, "est_delivery_days", "integer", TEXT,                              \
      "selected_rate.est_delivery_days", NULL, NULL)                                           \
    X(SH_FROM_ADDRESS_ID, "from_address_id", NULL, TEXT, "from_address.id", NULL, NULL)        \
    X(SH_TO_ADDRESS_ID, "to_address_id", NULL, TEXT, "to_address.id", NULL, NULL)              \
    X(SH_RETURN_ADDRESS_ID, "return_address_id", NULL, TEXT, "return_address.id", NULL, NULL)  \
    X(SH_BUYER_ADDRESS_ID, "buyer_address_id", NULL, TEXT, "buyer_address.id", NULL, NULL)     \
    X(SH_PARCEL_ID, "parcel_id", NULL, TEXT, "parcel.id", NULL, NULL)                          \
    X(SH_BATCH_ID, "batch_id", NULL, TEXT, "batch_id", NULL, SS_SYNC_BATCH_SET("batch_id"))    \
    X(SH_IS_RETURN, "is_return", "boolean", BOOL, "is_return", NULL, NULL)                     \
    X(SH_REFERENCE, "reference", NULL, TEXT, "reference", NULL, NULL)                          \
    X(SH_REFUND_STATUS, "refund_status", NULL, TEXT, "refund_status", NULL,                    \
      SS_SYNC_REFUND_SET("refund_status"))                                                     \
    X(SH_LABEL_URL, "label_url", NULL, TEXT, "postage_label.label_url", NULL, NULL)            \
    X(SH_USPS_ZONE, "usps_zone", "integer", TEXT, "usps_zone", NULL, NULL)                     \
    X(SH_CREATED_AT, "created_at", "timestamptz", TIME, "created_at", NULL, NULL)              \
    X(SH_UPDATED_AT, "updated_at", "timestamptz", TIME, "updated_at", NULL, NULL)              \
    X(SH_RAW, "raw", "jsonb", MESSAGE, NULL, "(raw::jsonb)->'object'", NULL)                   \
    /* migration 0006, last: the frozen baseline of bench/sync binds the columns before */     \
    X(SH_BATCH_STATUS, "batch_status", NULL, TEXT, "batch_status", NULL,                       \
      SS_SYNC_BATCH_SET("batch_status"))                                                       \
    X(SH_BATCH_MESSAGE, "batch_message", NULL, TEXT, "batch_message", NULL,                    \
      SS_SYNC_BATCH_SET("batch_message"))                                                      \
    /* the shipment's updated_at: its own batch columns are that version's */                  \
    X(SH_BATCH_UPDATED_AT, "batch_updated_at", "timestamptz", SET, NULL, NULL,                 \
      SS_SYNC_BATCH_SET("batch_updated_at"))                                                   \
    /* the shipment's updated_at when it carries a refund_status, else NULL */                 \
    X(SH_REFUND_UPDATED_AT, "refund_updated_at", "timestamptz", SET, NULL, NULL,               \
      SS_SYNC_REFUND_SET("refund_updated_at"))

/* A tracker's view of its shipment (into shipments): creates the placeholder
 * row when the shipment has not arrived, and sets what follows the tracker. */
#define SS_SYNC_SHIPMENT_TRACK_COLUMNS(X)                                               \
    X(ST_ID, "id", NULL, SET, NULL, NULL, SS_SYNC_KEEP) /* the tracker's shipment_id */ \
    X(ST_TRACKING_CODE, "tracking_code", NULL, TEXT, "tracking_code", NULL,             \
      "coalesce(t.tracking_code, excluded.tracking_code)")                              \
    X(ST_TRACKER_ID, "tracker_id", NULL, SET, NULL, NULL, NULL)                         \
    X(ST_STATUS, "status", NULL, TEXT, "status", NULL, NULL)                            \
    X(ST_EST_DELIVERY_DATE, "est_delivery_date", "timestamptz", SET, NULL, NULL, NULL)  \
    X(ST_DELIVERED_AT, "delivered_at", "timestamptz", SET, NULL, NULL, NULL)            \
    X(ST_TRACKER_UPDATED_AT, "tracker_updated_at", "timestamptz", SET, NULL, NULL, NULL)

/* A Refund's view of its shipment (into shipments): marks it (refund_status) behind
 * the refund gate, creating the placeholder row when the shipment has not arrived. */
#define SS_SYNC_SHIPMENT_REFUND_COLUMNS(X)                                             \
    X(SR_ID, "id", NULL, SET, NULL, NULL, SS_SYNC_KEEP) /* the refund's shipment_id */ \
    X(SR_REFUND_STATUS, "refund_status", NULL, SET, NULL, NULL, NULL) /* see map.c */  \
    X(SR_REFUND_UPDATED_AT, "refund_updated_at", "timestamptz", TIME, "updated_at", NULL, NULL)

/* A Batch's view of each shipment it carries (shipments[]: id, batch_status,
 * batch_message, tracking_code), behind the batch gate. */
#define SS_SYNC_SHIPMENT_BATCH_COLUMNS(X)                                         \
    X(SB_ID, "id", NULL, TEXT, "id", NULL, SS_SYNC_KEEP)                          \
    X(SB_BATCH_ID, "batch_id", NULL, SET, NULL, NULL, NULL)                       \
    X(SB_BATCH_STATUS, "batch_status", NULL, TEXT, "batch_status", NULL, NULL)    \
    X(SB_BATCH_MESSAGE, "batch_message", NULL, TEXT, "batch_message", NULL, NULL) \
    X(SB_TRACKING_CODE, "tracking_code", NULL, TEXT, "tracking_code", NULL,       \
      "coalesce(t.tracking_code, excluded.tracking_code)")                        \
    X(SB_BATCH_UPDATED_AT, "batch_updated_at", "timestamptz", SET, NULL, NULL, NULL) /* \
      the batch's updated_at */

#define SS_SYNC_TRACKERS_COLUMNS(X)                                                              \
    X(TR_ID, "id", NULL, SET, NULL, NULL, SS_SYNC_KEEP)                                          \
    X(TR_MODE, "mode", NULL, TEXT, "mode", NULL, NULL)                                           \
    X(TR_TRACKING_CODE, "tracking_code", NULL, TEXT, "tracking_code", NULL, NULL)                \
    X(TR_STATUS, "status", NULL, TEXT, "status", NULL, NULL)                                     \
    X(TR_STATUS_DETAIL, "status_detail", NULL, TEXT, "status_detail", NULL, NULL)                \
    X(TR_CARRIER, "carrier", NULL, TEXT, "carrier", NULL, NULL)                                  \
    X(TR_SHIPMENT_ID, "shipment_id", NULL, SET, NULL, NULL, NULL) /* "" is NULL */               \
    X(TR_EST_DELIVERY_DATE, "est_delivery_date", "timestamptz", TIME, "est_delivery_date", NULL, \
      NULL)                                                                                      \
    X(TR_SIGNED_BY, "signed_by", NULL, TEXT, "signed_by", NULL, NULL)                            \
    X(TR_WEIGHT, "weight", "numeric", TEXT, "weight", NULL, NULL)                                \
    X(TR_PUBLIC_URL, "public_url", NULL, TEXT, "public_url", NULL, NULL)                         \
    X(TR_CREATED_AT, "created_at", "timestamptz", TIME, "created_at", NULL, NULL)                \
    X(TR_UPDATED_AT, "updated_at", "timestamptz", TIME, "updated_at", NULL, NULL)                \
    X(TR_RAW, "raw", "jsonb", MESSAGE, NULL, "(raw::jsonb)->'object'", NULL)

/* One row per tracking_details entry (the object is the detail).  No raw copy: the
 * detail is in its tracker's raw (migration 0005). */
#define SS_SYNC_TRACKING_EVENTS_COLUMNS(X)                                        \
    X(TE_TRACKER_ID, "tracker_id", NULL, SET, NULL, NULL, NULL)                   \
    X(TE_SHIPMENT_ID, "shipment_id", NULL, SET, NULL, NULL, NULL)                 \
    X(TE_OCCURRED_AT, "occurred_at", "timestamptz", TIME, "datetime", NULL, NULL) \
    X(TE_STATUS, "status", NULL, TEXT, "status", NULL, NULL)                      \
    X(TE_STATUS_DETAIL, "status_detail", NULL, TEXT, "status_detail", NULL, NULL) \
    X(TE_MESSAGE, "message", NULL, TEXT, "message", NULL, NULL)                   \
    X(TE_DESCRIPTION, "description", NULL, TEXT, "description", NULL, NULL)       \
    X(TE_SOURCE, "source", NULL, TEXT, "source", NULL, NULL)                      \
    X(TE_CARRIER_CODE, "carrier_code", NULL, TEXT, "carrier_code", NULL, NULL)    \
    X(TE_CITY, "city", NULL, TEXT, "tracking_location.city", NULL, NULL)          \
    X(TE_STATE, "state", NULL, TEXT, "tracking_location.state", NULL, NULL)       \
    X(TE_COUNTRY, "country", NULL, TEXT, "tracking_location.country", NULL, NULL) \
    X(TE_ZIP, "zip", NULL, TEXT, "tracking_location.zip", NULL, NULL)

/* The addresses topic and the addresses embedded in shipments. */
#define SS_SYNC_ADDRESSES_COLUMNS(X)                                                          \
    X(AD_ID, "id", NULL, TEXT, "id", NULL, SS_SYNC_KEEP)                                      \
    X(AD_MODE, "mode", NULL, TEXT, "mode", NULL, NULL)                                        \
    X(AD_NAME, "name", NULL, TEXT, "name", NULL, NULL)                                        \
    X(AD_COMPANY, "company", NULL, TEXT, "company", NULL, NULL)                               \
    X(AD_STREET1, "street1", NULL, TEXT, "street1", NULL, NULL)                               \
    X(AD_STREET2, "street2", NULL, TEXT, "street2", NULL, NULL)                               \
    X(AD_CITY, "city", NULL, TEXT, "city", NULL, NULL)                                        \
    X(AD_STATE, "state", NULL, TEXT, "state", NULL, NULL)                                     \
    X(AD_ZIP, "zip", NULL, TEXT, "zip", NULL, NULL)                                           \
    X(AD_COUNTRY, "country", NULL, TEXT, "country", NULL, NULL)                               \
    X(AD_PHONE, "phone", NULL, TEXT, "phone", NULL, NULL)                                     \
    X(AD_EMAIL, "email", NULL, TEXT, "email", NULL, NULL)                                     \
    X(AD_RESIDENTIAL, "residential", "boolean", BOOL, "residential", NULL, NULL)              \
    X(AD_CARRIER_FACILITY, "carrier_facility", NULL, TEXT, "carrier_facility", NULL, NULL)    \
    X(AD_FEDERAL_TAX_ID, "federal_tax_id", NULL, TEXT, "federal_tax_id", NULL, NULL)          \
    X(AD_STATE_TAX_ID, "state_tax_id", NULL, TEXT, "state_tax_id", NULL, NULL)                \
    X(AD_VERIFIED, "verified", "boolean", BOOL, "verifications.delivery.success", NULL, NULL) \
    X(AD_CREATED_AT, "created_at", "timestamptz", TIME, "created_at", NULL, NULL)             \
    X(AD_UPDATED_AT, "updated_at", "timestamptz", TIME, "updated_at", NULL, NULL)             \
    /* the object from the addresses topic; NULL when it came embedded in a shipment \
     * (shipments.raw holds that copy); the same version embedded keeps the topic's */        \
    X(AD_RAW, "raw", "jsonb", SET, NULL, NULL,                                                \
      "coalesce(excluded.raw, CASE WHEN t.updated_at = excluded.updated_at THEN t.raw END)")

#define SS_SYNC_PARCELS_COLUMNS(X)                                                               \
    X(PA_ID, "id", NULL, TEXT, "id", NULL, SS_SYNC_KEEP)                                         \
    X(PA_MODE, "mode", NULL, TEXT, "mode", NULL, NULL)                                           \
    X(PA_LENGTH, "length", "numeric", TEXT, "length", NULL, NULL)                                \
    X(PA_WIDTH, "width", "numeric", TEXT, "width", NULL, NULL)                                   \
    X(PA_HEIGHT, "height", "numeric", TEXT, "height", NULL, NULL)                                \
    X(PA_WEIGHT, "weight", "numeric", TEXT, "weight", NULL, NULL)                                \
    X(PA_PREDEFINED_PACKAGE, "predefined_package", NULL, TEXT, "predefined_package", NULL, NULL) \
    X(PA_CREATED_AT, "created_at", "timestamptz", TIME, "created_at", NULL, NULL)                \
    X(PA_UPDATED_AT, "updated_at", "timestamptz", TIME, "updated_at", NULL, NULL)

/* The selected (purchased) rate of a shipment, the only one stored (0009).  No raw copy:
 * the rate is in its shipment's raw (migration 0005). */
#define SS_SYNC_RATES_COLUMNS(X)                                                                   \
    X(RA_ID, "id", NULL, TEXT, "id", NULL, SS_SYNC_KEEP)                                           \
    X(RA_SHIPMENT_ID, "shipment_id", NULL, SET, NULL, NULL, NULL) /* the carrying shipment */      \
    X(RA_MODE, "mode", NULL, TEXT, "mode", NULL, NULL)                                             \
    X(RA_CARRIER, "carrier", NULL, TEXT, "carrier", NULL, NULL)                                    \
    X(RA_SERVICE, "service", NULL, TEXT, "service", NULL, NULL)                                    \
    X(RA_RATE, "rate", "numeric", TEXT, "rate", NULL, NULL)                                        \
    X(RA_CURRENCY, "currency", NULL, TEXT, "currency", NULL, NULL)                                 \
    X(RA_RETAIL_RATE, "retail_rate", "numeric", TEXT, "retail_rate", NULL, NULL)                   \
    X(RA_RETAIL_CURRENCY, "retail_currency", NULL, TEXT, "retail_currency", NULL, NULL)            \
    X(RA_LIST_RATE, "list_rate", "numeric", TEXT, "list_rate", NULL, NULL)                         \
    X(RA_LIST_CURRENCY, "list_currency", NULL, TEXT, "list_currency", NULL, NULL)                  \
    X(RA_BILLING_TYPE, "billing_type", NULL, TEXT, "billing_type", NULL, NULL)                     \
    X(RA_DELIVERY_DAYS, "delivery_days", "integer", TEXT, "delivery_days", NULL, NULL)             \
    X(RA_DELIVERY_DATE, "delivery_date", "timestamptz", TIME, "delivery_date", NULL, NULL)         \
    X(RA_DELIVERY_DATE_GUARANTEED, "delivery_date_guaranteed", "boolean", BOOL,                    \
      "delivery_date_guaranteed", NULL, NULL)                                                      \
    X(RA_EST_DELIVERY_DAYS, "est_delivery_days", "integer", TEXT, "est_delivery_days", NULL, NULL) \
    X(RA_CARRIER_ACCOUNT_ID, "carrier_account_id", NULL, TEXT, "carrier_account_id", NULL, NULL)   \
    X(RA_CREATED_AT, "created_at", "timestamptz", TIME, "created_at", NULL, NULL)                  \
    X(RA_UPDATED_AT, "updated_at", "timestamptz", TIME, "updated_at", NULL, NULL)

#define SS_SYNC_BATCHES_COLUMNS(X)                                                              \
    X(BA_ID, "id", NULL, SET, NULL, NULL, SS_SYNC_KEEP)                                         \
    X(BA_MODE, "mode", NULL, TEXT, "mode", NULL, NULL)                                          \
    X(BA_STATE, "state", NULL, TEXT, "state", NULL, NULL)                                       \
    X(BA_NUM_SHIPMENTS, "num_shipments", "integer", TEXT, "num_shipments", NULL, NULL)          \
    X(BA_REFERENCE, "reference", NULL, TEXT, "reference", NULL, NULL)                           \
    X(BA_LABEL_URL, "label_url", NULL, TEXT, "label_url", NULL, NULL)                           \
    X(BA_SCAN_FORM_ID, "scan_form_id", NULL, SET, NULL, NULL, NULL) /* object's id or string */ \
    X(BA_STATUS, "status", "jsonb", JSON, "status", NULL, NULL)                                 \
    X(BA_CREATED_AT, "created_at", "timestamptz", TIME, "created_at", NULL, NULL)               \
    X(BA_UPDATED_AT, "updated_at", "timestamptz", TIME, "updated_at", NULL, NULL)               \
    X(BA_RAW, "raw", "jsonb", MESSAGE, NULL, "(raw::jsonb)->'object'", NULL)

/* Objects of the events topic with tables of their own (migration 0006). */
#define SS_SYNC_REFUNDS_COLUMNS(X)                                                            \
    X(RF_ID, "id", NULL, SET, NULL, NULL, SS_SYNC_KEEP)                                       \
    X(RF_SHIPMENT_ID, "shipment_id", NULL, TEXT, "shipment_id", NULL, NULL)                   \
    X(RF_TRACKING_CODE, "tracking_code", NULL, TEXT, "tracking_code", NULL, NULL)             \
    X(RF_CARRIER, "carrier", NULL, TEXT, "carrier", NULL, NULL)                               \
    X(RF_STATUS, "status", NULL, TEXT, "status", NULL, NULL)                                  \
    X(RF_CONFIRMATION_NUMBER, "confirmation_number", NULL, TEXT, "confirmation_number", NULL, \
      NULL)                                                                                   \
    X(RF_MODE, "mode", NULL, TEXT, "mode", NULL, NULL)                                        \
    X(RF_CREATED_AT, "created_at", "timestamptz", TIME, "created_at", NULL, NULL)             \
    X(RF_UPDATED_AT, "updated_at", "timestamptz", TIME, "updated_at", NULL, NULL)             \
    X(RF_RAW, "raw", "jsonb", MESSAGE, NULL, "(raw::jsonb)->'object'", NULL)

#define SS_SYNC_PICKUPS_COLUMNS(X)                                                              \
    X(PU_ID, "id", NULL, SET, NULL, NULL, SS_SYNC_KEEP)                                         \
    X(PU_MODE, "mode", NULL, TEXT, "mode", NULL, NULL)                                          \
    X(PU_STATUS, "status", NULL, TEXT, "status", NULL, NULL)                                    \
    X(PU_REFERENCE, "reference", NULL, TEXT, "reference", NULL, NULL)                           \
    X(PU_CONFIRMATION, "confirmation", NULL, TEXT, "confirmation", NULL, NULL)                  \
    X(PU_ADDRESS_ID, "address_id", NULL, TEXT, "address.id", NULL, NULL)                        \
    X(PU_SHIPMENT_ID, "shipment_id", NULL, TEXT, "shipment.id", NULL, NULL)                     \
    X(PU_MIN_DATETIME, "min_datetime", "timestamptz", TIME, "min_datetime", NULL, NULL)         \
    X(PU_MAX_DATETIME, "max_datetime", "timestamptz", TIME, "max_datetime", NULL, NULL)         \
    X(PU_IS_ACCOUNT_ADDRESS, "is_account_address", "boolean", BOOL, "is_account_address", NULL, \
      NULL)                                                                                     \
    X(PU_INSTRUCTIONS, "instructions", NULL, TEXT, "instructions", NULL, NULL)                  \
    X(PU_CREATED_AT, "created_at", "timestamptz", TIME, "created_at", NULL, NULL)               \
    X(PU_UPDATED_AT, "updated_at", "timestamptz", TIME, "updated_at", NULL, NULL)               \
    X(PU_RAW, "raw", "jsonb", MESSAGE, NULL, "(raw::jsonb)->'object'", NULL)

#define SS_SYNC_SCAN_FORMS_COLUMNS(X)                                                     \
    X(SF_ID, "id", NULL, SET, NULL, NULL, SS_SYNC_KEEP)                                   \
    X(SF_MODE, "mode", NULL, TEXT, "mode", NULL, NULL)                                    \
    X(SF_STATUS, "status", NULL, TEXT, "status", NULL, NULL)                              \
    X(SF_MESSAGE, "message", NULL, TEXT, "message", NULL, NULL)                           \
    X(SF_BATCH_ID, "batch_id", NULL, TEXT, "batch_id", NULL, NULL)                        \
    X(SF_ADDRESS_ID, "address_id", NULL, TEXT, "address.id", NULL, NULL)                  \
    X(SF_TRACKING_CODES, "tracking_codes", "jsonb", SET, NULL, NULL, NULL) /* an array */ \
    X(SF_FORM_URL, "form_url", NULL, TEXT, "form_url", NULL, NULL)                        \
    X(SF_FORM_FILE_TYPE, "form_file_type", NULL, TEXT, "form_file_type", NULL, NULL)      \
    X(SF_CONFIRMATION, "confirmation", NULL, TEXT, "confirmation", NULL, NULL)            \
    X(SF_CREATED_AT, "created_at", "timestamptz", TIME, "created_at", NULL, NULL)         \
    X(SF_UPDATED_AT, "updated_at", "timestamptz", TIME, "updated_at", NULL, NULL)         \
    X(SF_RAW, "raw", "jsonb", MESSAGE, NULL, "(raw::jsonb)->'object'", NULL)

#define SS_SYNC_INSURANCES_COLUMNS(X)                                                   \
    X(IN_ID, "id", NULL, SET, NULL, NULL, SS_SYNC_KEEP)                                 \
    X(IN_MODE, "mode", NULL, TEXT, "mode", NULL, NULL)                                  \
    X(IN_REFERENCE, "reference", NULL, TEXT, "reference", NULL, NULL)                   \
    X(IN_STATUS, "status", NULL, TEXT, "status", NULL, NULL)                            \
    X(IN_SHIPMENT_ID, "shipment_id", NULL, TEXT, "shipment_id", NULL, NULL)             \
    X(IN_TRACKING_CODE, "tracking_code", NULL, TEXT, "tracking_code", NULL, NULL)       \
    X(IN_TRACKER_ID, "tracker_id", NULL, TEXT, "tracker.id", NULL, NULL)                \
    X(IN_AMOUNT, "amount", "numeric", TEXT, "amount", NULL, NULL)                       \
    X(IN_PROVIDER, "provider", NULL, TEXT, "provider", NULL, NULL)                      \
    X(IN_PROVIDER_ID, "provider_id", NULL, TEXT, "provider_id", NULL, NULL)             \
    X(IN_FEE_AMOUNT, "fee_amount", "numeric", TEXT, "fee.amount", NULL, NULL)           \
    X(IN_FROM_ADDRESS_ID, "from_address_id", NULL, TEXT, "from_address.id", NULL, NULL) \
    X(IN_TO_ADDRESS_ID, "to_address_id", NULL, TEXT, "to_address.id", NULL, NULL)       \
    X(IN_CREATED_AT, "created_at", "timestamptz", TIME, "created_at", NULL, NULL)       \
    X(IN_UPDATED_AT, "updated_at", "timestamptz", TIME, "updated_at", NULL, NULL)       \
    X(IN_RAW, "raw", "jsonb", MESSAGE, NULL, "(raw::jsonb)->'object'", NULL)

/* The raw archive: objects of every other type that carry an id. */
#define SS_SYNC_OBJECTS_COLUMNS(X)                                                \
    X(OB_ID, "id", NULL, SET, NULL, NULL, SS_SYNC_KEEP)                           \
    X(OB_OBJECT_TYPE, "object_type", NULL, SET, NULL, NULL, NULL)                 \
    X(OB_MODE, "mode", NULL, TEXT, "mode", NULL, NULL)                            \
    X(OB_UPDATED_AT, "updated_at", "timestamptz", TIME, "updated_at", NULL, NULL) \
    X(OB_RAW, "raw", "jsonb", MESSAGE, NULL, "(raw::jsonb)->'object'", NULL)

/* easypost_events (every webhook Event, whatever its topic; Event objects from
 * the API (GET /v2/events) under their own id; objects of another type without
 * an id; see ss_sync_map): the Event as EasyPost sent it (envelope "event" plus
 * its "result") when it came from a webhook, the object when it is an Event,
 * else the whole envelope.  The object mapped is the Event when there is one. */
#define SS_SYNC_EVENTS_COLUMNS(X)                                                                  \
    X(EV_ID, "id", NULL, SET, NULL, NULL, SS_SYNC_KEEP)                                            \
    X(EV_DESCRIPTION, "description", NULL, SET, NULL, NULL, NULL)                                  \
    X(EV_OBJECT_TYPE, "object_type", NULL, SET, NULL, NULL, NULL)                                  \
    X(EV_OBJECT_ID, "object_id", NULL, SET, NULL, NULL, NULL)                                      \
    X(EV_MODE, "mode", NULL, SET, NULL, NULL, NULL)                                                \
    X(EV_STATUS, "status", NULL, SET, NULL, NULL, NULL)                                            \
    X(EV_USER_ID, "user_id", NULL, SET, NULL, NULL, NULL)                                          \
    X(EV_CREATED_AT, "created_at", "timestamptz", TIME, "created_at", NULL, NULL)                  \
    X(EV_UPDATED_AT, "updated_at", "timestamptz", TIME, "updated_at", NULL, NULL)                  \
    X(EV_PAYLOAD, "payload", "jsonb", MESSAGE, NULL,                                               \
      "CASE WHEN j.j ? 'event' THEN (j.j->'event') || jsonb_build_object('result', j.j->'object')" \
      " WHEN j.j->>'object_type' = 'Event' THEN j.j->'object' ELSE j.j END",                       \
      NULL)

/* Column numbers of each table (the order of the cells in a row). */
enum { SS_SYNC_SHIPMENTS_COLUMNS(SS_SYNC_COL_ENUM) SH__N };
enum { SS_SYNC_SHIPMENT_TRACK_COLUMNS(SS_SYNC_COL_ENUM) ST__N };
enum { SS_SYNC_TRACKERS_COLUMNS(SS_SYNC_COL_ENUM) TR__N };
enum { SS_SYNC_TRACKING_EVENTS_COLUMNS(SS_SYNC_COL_ENUM) TE__N };
enum { SS_SYNC_ADDRESSES_COLUMNS(SS_SYNC_COL_ENUM) AD__N };
enum { SS_SYNC_PARCELS_COLUMNS(SS_SYNC_COL_ENUM) PA__N };
enum { SS_SYNC_RATES_COLUMNS(SS_SYNC_COL_ENUM) RA__N };
enum { SS_SYNC_BATCHES_COLUMNS(SS_SYNC_COL_ENUM) BA__N };
enum { SS_SYNC_EVENTS_COLUMNS(SS_SYNC_COL_ENUM) EV__N };
enum { SS_SYNC_SHIPMENT_REFUND_COLUMNS(SS_SYNC_COL_ENUM) SR__N };
enum { SS_SYNC_SHIPMENT_BATCH_COLUMNS(SS_SYNC_COL_ENUM) SB__N };
enum { SS_SYNC_REFUNDS_COLUMNS(SS_SYNC_COL_ENUM) RF__N };
enum { SS_SYNC_PICKUPS_COLUMNS(SS_SYNC_COL_ENUM) PU__N };
enum { SS_SYNC_SCAN_FORMS_COLUMNS(SS_SYNC_COL_ENUM) SF__N };
enum { SS_SYNC_INSURANCES_COLUMNS(SS_SYNC_COL_ENUM) IN__N };
enum { SS_SYNC_OBJECTS_COLUMNS(SS_SYNC_COL_ENUM) OB__N };

/* Writes d's statement into out (reset first):
 *   INSERT INTO table AS t (c1, ..., cn[, synced_at])
 *   SELECT e1, ..., en[, now()]
 *   FROM unnest($1::text[], ..., $n::text[]) AS u(c1, ..., cn)[ from]
 * (a binary timestamptz column: $i::timestamptz[] and no cast in the SELECT)
 *   ON CONFLICT [conflict] DO NOTHING
 * or
 *   ON CONFLICT conflict DO UPDATE SET ci = ui, ...[, synced_at = now()]
 *   WHERE t.v IS NULL OR t.v <= excluded.v
 * Returns 0, or -1 on out of memory. */
int ss_sync_sql_build(const ss_sync_table_desc_t *d, ss_buf_t *out);

/* The staging variant (bench/sync --copy, issue 15): the same statement reading
 * FROM stage AS u instead of the unnest of parameters, and the
 *   CREATE TEMP TABLE IF NOT EXISTS stage (c1 text, ..., ts timestamptz, ...)
 *   ON COMMIT DELETE ROWS
 * that COPY fills (a binary timestamptz column as timestamptz, every other one as text).
 * Return 0, or -1 on out of memory. */
int ss_sync_sql_build_stage(const ss_sync_table_desc_t *d, const char *stage, ss_buf_t *out);
int ss_sync_stage_create_sql(const ss_sync_table_desc_t *d, const char *stage, ss_buf_t *out);

#endif
