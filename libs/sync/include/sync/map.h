/* Envelope -> row mapping for the sync worker.
 *
 * Every synced table is built column by column as text cells (NULL = SQL
 * NULL) that PostgreSQL casts (numeric, integer, boolean, timestamptz,
 * jsonb) in one set-based statement per table.  Money is never turned into a
 * double: EasyPost's strings go through as text and PostgreSQL's numeric
 * parses them (a money string that is not a number is a data error, SQLSTATE
 * 22P02, and the message is dead-lettered); charged fees are summed here in
 * exact fixed point.  Timestamps in any form ss_time_parse accepts are
 * normalised to "YYYY-MM-DDTHH:MM:SS.ffffffZ".
 *
 * The envelope carries its object (and a webhook's Event) as JSON spans:
 * ss_sync_map parses them with json-c (strict, SS_ENVELOPE_MAX_DEPTH) into
 * trees the rows own.  Cells point into those trees or into the rows' own
 * arena, so neither the envelope nor the message bytes need outlive the
 * rows (valid until ss_sync_rows_reset). */
#ifndef SS_SYNC_MAP_H
#define SS_SYNC_MAP_H

#include <stddef.h>
#include <stdint.h>

#include <envelope/envelope.h>

typedef enum {
    SS_SYNC_T_SHIPMENTS = 0,  /* shipment objects */
    SS_SYNC_T_SHIPMENT_TRACK, /* a tracker's view of its shipment (status, placeholder) */
    SS_SYNC_T_TRACKERS,
    SS_SYNC_T_TRACKING_EVENTS,
    SS_SYNC_T_ADDRESSES, /* addresses topic + addresses embedded in shipments */
    SS_SYNC_T_PARCELS,
    SS_SYNC_T_RATES,
    SS_SYNC_T_BATCHES,
    SS_SYNC_T_EVENTS, /* easypost_events: every webhook Event, objects without a table */
    SS_SYNC_T__COUNT
} ss_sync_table_id_t;

/* Column numbers of each table (the order of the cells in a row). */
enum {
    SH_ID,
    SH_MODE,
    SH_STATUS,
    SH_TRACKING_CODE,
    SH_TRACKER_ID,
    SH_CARRIER,
    SH_SERVICE,
    SH_SELECTED_RATE_ID,
    SH_RATE,
    SH_TOTAL_COST,
    SH_CURRENCY,
    SH_DELIVERY_DAYS,
    SH_EST_DELIVERY_DAYS,
    SH_FROM_ADDRESS_ID,
    SH_TO_ADDRESS_ID,
    SH_RETURN_ADDRESS_ID,
    SH_BUYER_ADDRESS_ID,
    SH_PARCEL_ID,
    SH_BATCH_ID,
    SH_IS_RETURN,
    SH_REFERENCE,
    SH_REFUND_STATUS,
    SH_LABEL_URL,
    SH_USPS_ZONE,
    SH_CREATED_AT,
    SH_UPDATED_AT,
    SH_RAW,
    SH__N
};
enum {
    ST_ID,
    ST_TRACKING_CODE,
    ST_TRACKER_ID,
    ST_STATUS,
    ST_EST_DELIVERY_DATE,
    ST_DELIVERED_AT,
    ST_TRACKER_UPDATED_AT,
    ST__N
};
enum {
    TR_ID,
    TR_MODE,
    TR_TRACKING_CODE,
    TR_STATUS,
    TR_STATUS_DETAIL,
    TR_CARRIER,
    TR_SHIPMENT_ID,
    TR_EST_DELIVERY_DATE,
    TR_SIGNED_BY,
    TR_WEIGHT,
    TR_PUBLIC_URL,
    TR_CREATED_AT,
    TR_UPDATED_AT,
    TR_RAW,
    TR__N
};
enum {
    TE_TRACKER_ID,
    TE_SHIPMENT_ID,
    TE_OCCURRED_AT,
    TE_STATUS,
    TE_STATUS_DETAIL,
    TE_MESSAGE,
    TE_DESCRIPTION,
    TE_SOURCE,
    TE_CARRIER_CODE,
    TE_CITY,
    TE_STATE,
    TE_COUNTRY,
    TE_ZIP,
    TE_RAW,
    TE__N
};
enum {
    AD_ID,
    AD_MODE,
    AD_NAME,
    AD_COMPANY,
    AD_STREET1,
    AD_STREET2,
    AD_CITY,
    AD_STATE,
    AD_ZIP,
    AD_COUNTRY,
    AD_PHONE,
    AD_EMAIL,
    AD_RESIDENTIAL,
    AD_CARRIER_FACILITY,
    AD_FEDERAL_TAX_ID,
    AD_STATE_TAX_ID,
    AD_VERIFIED,
    AD_CREATED_AT,
    AD_UPDATED_AT,
    AD_RAW,
    AD__N
};
enum {
    PA_ID,
    PA_MODE,
    PA_LENGTH,
    PA_WIDTH,
    PA_HEIGHT,
    PA_WEIGHT,
    PA_PREDEFINED_PACKAGE,
    PA_CREATED_AT,
    PA_UPDATED_AT,
    PA_RAW,
    PA__N
};
enum {
    RA_ID,
    RA_SHIPMENT_ID,
    RA_MODE,
    RA_CARRIER,
    RA_SERVICE,
    RA_RATE,
    RA_CURRENCY,
    RA_RETAIL_RATE,
    RA_RETAIL_CURRENCY,
    RA_LIST_RATE,
    RA_LIST_CURRENCY,
    RA_BILLING_TYPE,
    RA_DELIVERY_DAYS,
    RA_DELIVERY_DATE,
    RA_DELIVERY_DATE_GUARANTEED,
    RA_EST_DELIVERY_DAYS,
    RA_CARRIER_ACCOUNT_ID,
    RA_CREATED_AT,
    RA_UPDATED_AT,
    RA_RAW,
    RA__N
};
enum {
    BA_ID,
    BA_MODE,
    BA_STATE,
    BA_NUM_SHIPMENTS,
    BA_REFERENCE,
    BA_LABEL_URL,
    BA_SCAN_FORM_ID,
    BA_STATUS,
    BA_CREATED_AT,
    BA_UPDATED_AT,
    BA_RAW,
    BA__N
};
enum {
    EV_ID,
    EV_DESCRIPTION,
    EV_OBJECT_TYPE,
    EV_OBJECT_ID,
    EV_MODE,
    EV_STATUS,
    EV_USER_ID,
    EV_CREATED_AT,
    EV_UPDATED_AT,
    EV_PAYLOAD,
    EV__N
};

typedef struct {
    int ncols;
    size_t nrows, cap;
    const char **cells; /* nrows * ncols */
    int64_t *order;     /* per row: the version (updated_at usec) that wins on dedupe */
    uint32_t *msg;      /* per row: index of the message it came from */
} ss_sync_table_t;

typedef struct ss_sync_arena_chunk ss_sync_arena_chunk_t;

typedef struct {
    ss_sync_table_t t[SS_SYNC_T__COUNT];
    ss_sync_arena_chunk_t *arena;
    struct json_object **trees; /* parsed object/event spans the cells point into */
    size_t ntrees, trees_cap;
    struct json_tokener *tok; /* reused for every span */
} ss_sync_rows_t;

/* Number of columns of a table. */
int ss_sync_table_ncols(ss_sync_table_id_t t);

void ss_sync_rows_init(ss_sync_rows_t *r);
/* Forgets every row, keeps memory. */
void ss_sync_rows_reset(ss_sync_rows_t *r);
void ss_sync_rows_free(ss_sync_rows_t *r);

/* A cell: NULL for SQL NULL. */
static inline const char *ss_sync_cell(const ss_sync_rows_t *r, ss_sync_table_id_t t, size_t row,
                                       int col) {
    return r->t[t].cells[row * (size_t)r->t[t].ncols + (size_t)col];
}

/* Maps one envelope into rows tagged with msg.  raw/rawlen are the message
 * bytes (copied): top-level rows keep them and PostgreSQL extracts
 * ->'object'.  The consumer's rule (whatever topic the envelope came from):
 * a webhook Event (source webhook with "event") is recorded in
 * easypost_events under its event id; then the object is applied by its
 * object_type (Shipment, Tracker, Address, Batch; any other type only in
 * easypost_events).  Returns 0, or
 * -1 with errstr (and no row added) when the object cannot be mapped: a
 * timestamp that is not one, a fee amount that is not a decimal, a missing
 * id.  Such a message is poison.  -2 on out of memory. */
int ss_sync_map(ss_sync_rows_t *r, const ss_envelope_t *e, const char *raw, size_t rawlen,
                uint32_t msg, char *errstr, size_t errstr_size);

/* Row indices of table t whose message keep[msg] is non-zero, reduced so
 * each id (column 0) appears once, keeping the highest order and, on a tie,
 * the last added.  tracking_events and easypost_events are not reduced
 * (their statements insert once each with ON CONFLICT DO NOTHING).  Returns
 * the count written to *out (malloc'd, caller frees; NULL when 0), or -1 on
 * out of memory.  *superseded counts the rows dropped for an older version. */
long ss_sync_reduce(const ss_sync_rows_t *r, ss_sync_table_id_t t, const unsigned char *keep,
                    size_t **out, size_t *superseded);

/* Exact decimal helpers (exposed for tests).  Parses "[-]d+[.d{0,9}]" into
 * units of 1e-9; returns 0 or -1. */
int ss_sync_money_parse(const char *s, int64_t *nano);
/* Formats nano units as a decimal with trailing zeros trimmed (at least one
 * digit after the point is not required: "6.07", "12", "-0.5"). */
void ss_sync_money_format(int64_t nano, char *buf, size_t bufsize);

/* ss_time_format's exact output, faster (exposed for tests). */
size_t ss_sync_time_format(int64_t usec, char *buf, size_t bufsize);

#endif
