/* Envelope -> row mapping for the sync worker.
 *
 * Every synced table is built column by column (its columns are declared
 * once, in sync/columns.h) as text cells (NULL = SQL NULL) that PostgreSQL casts (numeric, integer, boolean, timestamptz,
 * jsonb) in one set-based statement per table.  Money is never turned into a
 * double: EasyPost's strings go through as text and PostgreSQL's numeric
 * parses them (a money string that is not a number is a data error, SQLSTATE
 * 22P02, and the message is dead-lettered); charged fees are summed here in
 * exact fixed point (common/money.h).  Timestamps in any form ss_time_parse accepts are
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

#include <json-c/json.h>

#include <envelope/envelope.h>
#include <sync/columns.h>

/* Charged fees are summed in units of 10^-9 (common/money.h). */
#define SS_SYNC_MONEY_SCALE 9

typedef enum {
    SS_SYNC_T_SHIPMENTS = 0,  /* shipment objects */
    SS_SYNC_T_SHIPMENT_TRACK, /* a tracker's view of its shipment (status, placeholder) */
    SS_SYNC_T_TRACKERS,
    SS_SYNC_T_TRACKING_EVENTS,
    SS_SYNC_T_ADDRESSES, /* addresses topic + addresses embedded in shipments */
    SS_SYNC_T_PARCELS,
    SS_SYNC_T_RATES,
    SS_SYNC_T_BATCHES,
    SS_SYNC_T_EVENTS, /* easypost_events: every webhook Event, Event objects, objects without id */
    SS_SYNC_T_SHIPMENT_REFUND, /* a Refund's view of its shipment (refund_status) */
    SS_SYNC_T_SHIPMENT_BATCH,  /* a Batch's view of its shipments (batch columns) */
    SS_SYNC_T_REFUNDS,
    SS_SYNC_T_PICKUPS,
    SS_SYNC_T_SCAN_FORMS,
    SS_SYNC_T_INSURANCES,
    SS_SYNC_T_OBJECTS, /* easypost_objects: the raw archive of every other type */
    SS_SYNC_T__COUNT
} ss_sync_table_id_t;

typedef struct {
    int ncols;
    size_t nrows, cap;
    const char **cells; /* nrows * ncols */
    int64_t *order;     /* per row: the version (updated_at usec) that wins on dedupe */
    uint32_t *msg;      /* per row: index of the message it came from */
    json_object **obj;  /* per row: the object it was mapped from (borrowed, like the cells) */
} ss_sync_table_t;

typedef struct ss_sync_arena_chunk ss_sync_arena_chunk_t;

typedef struct {
    ss_sync_table_t t[SS_SYNC_T__COUNT];
    ss_sync_arena_chunk_t *arena;
    struct json_object **trees; /* parsed object/event spans the cells point into */
    size_t ntrees, trees_cap;
    struct json_tokener *tok; /* reused for every span */
    char *slim;               /* a Shipment without rates, tracker cut to its id (ss_sync_map) */
    size_t slim_cap;
    /* Non-zero: a shipment's every offered rate is a rates row, as before migration 0009
     * (only bench/sync's frozen baseline sets it; the worker stores the selected rate). */
    int every_rate;
} ss_sync_rows_t;

/* Number of columns of a table. */
int ss_sync_table_ncols(ss_sync_table_id_t t);

/* The columns and statement shape of a table (sync/columns.h); NULL for an
 * unknown table.  Static. */
const ss_sync_table_desc_t *ss_sync_table_desc(ss_sync_table_id_t t);

/* Fills the cells of d's columns that come from the object (every source
 * but SS_SYNC_SRC_SET, whose cells are left as they are) from object o:
 * raw is the MESSAGE cell.  cells has d->ncols entries; the strings point
 * into o or into r's arena.  *version (may be NULL) gets the version
 * column's TIME value in microseconds (0 when it is NULL or not TIME).
 * Returns 0, -1 with errstr when a TIME member is not a timestamp, -2 on out
 * of memory. */
int ss_sync_cells_fill(ss_sync_rows_t *r, const ss_sync_table_desc_t *d, json_object *o,
                       const char *raw, const char **cells, int64_t *version, char *errstr,
                       size_t errstr_size);

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
 * object_type (Shipment, Tracker, Address, Batch, Refund, Pickup, ScanForm,
 * Insurance to their tables; an Event to easypost_events under its own id;
 * any other type with an id to the easypost_objects archive; without an id,
 * when it came without an Event, to easypost_events under the envelope's
 * event id).  Returns 0, or
 * -1 with errstr (and no row added) when the object cannot be mapped: a
 * timestamp that is not one, a fee amount that is not a decimal, a missing
 * id.  Such a message is poison.  -2 on out of memory. */
int ss_sync_map(ss_sync_rows_t *r, const ss_envelope_t *e, const char *raw, size_t rawlen,
                uint32_t msg, char *errstr, size_t errstr_size);

/* Row indices of table t whose message keep[msg] is non-zero, reduced so
 * each id (column 0) appears once, keeping the highest order and, on a tie,
 * the last added.  Tables without a version column (tracking_events,
 * easypost_events) are not reduced (their statements insert once each with
 * ON CONFLICT DO NOTHING).  Returns
 * the count written to *out (malloc'd, caller frees; NULL when 0), or -1 on
 * out of memory.  *superseded counts the rows dropped for an older version. */
long ss_sync_reduce(const ss_sync_rows_t *r, ss_sync_table_id_t t, const unsigned char *keep,
                    size_t **out, size_t *superseded);

/* ss_time_format's exact output, faster (exposed for tests). */
size_t ss_sync_time_format(int64_t usec, char *buf, size_t bufsize);

#endif
