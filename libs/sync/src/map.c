/* Envelope -> row mapping (see sync/map.h). */
#include <sync/map.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <common/money.h>
#include <common/sstime.h>

/* ---- arena: cells that are not inside a json-c tree ----
 *
 * A list of chunks, the first one (r->arena) the head that knows the chunk being
 * filled (cur).  Reset empties them and keeps them for the next batch: a batch's
 * raw copies are megabytes, and freeing them each batch made glibc consolidate its
 * fast bins (the json-c trees' small blocks) again and again, 17 % of the worker's
 * CPU (perf, issue 15).  Only chunks bigger than the standard size (one message
 * larger than it) are freed by reset. */

struct ss_sync_arena_chunk {
    ss_sync_arena_chunk_t *next;
    ss_sync_arena_chunk_t *cur; /* head only: the chunk being filled */
    size_t used, cap;
    char data[];
};

#define ARENA_CHUNK 65536

static ss_sync_arena_chunk_t *chunk_new(size_t cap) {
    ss_sync_arena_chunk_t *c = malloc(sizeof(*c) + cap);
    if (c) {
        c->next = NULL;
        c->cur = c;
        c->used = 0;
        c->cap = cap;
    }
    return c;
}

static char *arena_alloc(ss_sync_rows_t *r, size_t n) {
    size_t need = (n + 7) & ~(size_t)7;
    if (!r->arena && !(r->arena = chunk_new(ARENA_CHUNK)))
        return NULL;
    ss_sync_arena_chunk_t *head = r->arena, *c;
    if (need > ARENA_CHUNK) {
        /* its own chunk, after the head (freed by reset) */
        if (!(c = chunk_new(need)))
            return NULL;
        c->next = head->next;
        head->next = c;
        c->used = need;
        return c->data;
    }
    c = head->cur;
    while (c->cap - c->used < need) {
        /* the chunks after cur are empty (reset), or full oversized ones */
        if (!c->next) {
            ss_sync_arena_chunk_t *nc = chunk_new(ARENA_CHUNK);
            if (!nc)
                return NULL;
            c->next = nc;
        }
        c = head->cur = c->next;
    }
    char *p = c->data + c->used;
    c->used += need;
    return p;
}

static const char *arena_strndup(ss_sync_rows_t *r, const char *s, size_t n) {
    char *p = arena_alloc(r, n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void ss_sync_rows_init(ss_sync_rows_t *r) {
    memset(r, 0, sizeof(*r));
    for (int t = 0; t < SS_SYNC_T__COUNT; t++)
        r->t[t].ncols = ss_sync_table_ncols((ss_sync_table_id_t)t);
}

void ss_sync_rows_reset(ss_sync_rows_t *r) {
    for (int t = 0; t < SS_SYNC_T__COUNT; t++)
        r->t[t].nrows = 0;
    /* The trees are freed one by one as the next batch's take their slots (parse_span):
     * freeing a whole batch's here cost the worker's main thread ~12 ms per 1,000
     * shipments between two applies (perf, issue 15).  trees[ntrees, trees_cap): the
     * previous batches' trees not freed yet, or NULL. */
    r->ntrees = 0;
    /* Keep the standard chunks, emptied; free the oversized ones (never the head, which
     * is standard). */
    ss_sync_arena_chunk_t *head = r->arena;
    if (head) {
        head->used = 0;
        head->cur = head;
        for (ss_sync_arena_chunk_t *c = head; c->next;) {
            ss_sync_arena_chunk_t *n = c->next;
            if (n->cap > ARENA_CHUNK) {
                c->next = n->next;
                free(n);
            } else {
                n->used = 0;
                c = n;
            }
        }
    }
}

void ss_sync_rows_free(ss_sync_rows_t *r) {
    ss_sync_rows_reset(r);
    for (size_t i = 0; i < r->trees_cap; i++)
        json_object_put(r->trees[i]);
    free(r->trees);
    if (r->tok)
        json_tokener_free(r->tok);
    free(r->slim);
    for (int t = 0; t < SS_SYNC_T__COUNT; t++) {
        free(r->t[t].cells);
        free(r->t[t].order);
        free(r->t[t].msg);
        free(r->t[t].obj);
    }
    while (r->arena) {
        ss_sync_arena_chunk_t *n = r->arena->next;
        free(r->arena);
        r->arena = n;
    }
    memset(r, 0, sizeof(*r));
}

/* Appends an all-NULL row; returns its cells or NULL on out of memory. */
static const char **row_add(ss_sync_rows_t *r, ss_sync_table_id_t id, uint32_t msg, int64_t order,
                            json_object *obj) {
    ss_sync_table_t *t = &r->t[id];
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        const char **cells = realloc(t->cells, cap * (size_t)t->ncols * sizeof(*cells));
        if (!cells)
            return NULL;
        t->cells = cells;
        int64_t *order_a = realloc(t->order, cap * sizeof(*order_a));
        if (!order_a)
            return NULL;
        t->order = order_a;
        uint32_t *msg_a = realloc(t->msg, cap * sizeof(*msg_a));
        if (!msg_a)
            return NULL;
        t->msg = msg_a;
        json_object **obj_a = realloc(t->obj, cap * sizeof(*obj_a));
        if (!obj_a)
            return NULL;
        t->obj = obj_a;
        t->cap = cap;
    }
    const char **cells = t->cells + t->nrows * (size_t)t->ncols;
    memset(cells, 0, (size_t)t->ncols * sizeof(*cells));
    t->order[t->nrows] = order;
    t->msg[t->nrows] = msg;
    t->obj[t->nrows] = obj;
    t->nrows++;
    return cells;
}

/* ---- field readers ---- */

typedef struct {
    ss_sync_rows_t *r;
    char *errstr;
    size_t errstr_size;
    int oom;
} ctx_t;

static json_object *member(json_object *o, const char *key) {
    json_object *v = NULL;
    if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
        return NULL;
    return v; /* NULL for JSON null too */
}

static json_object *obj_member(json_object *o, const char *key) {
    json_object *v = member(o, key);
    return v && json_object_is_type(v, json_type_object) ? v : NULL;
}

/* The object at the keys of path[0..len) separated by '.'; NULL when a
 * step is absent, null or not an object (or a key is longer than 63 bytes). */
static json_object *path_walk(json_object *o, const char *path, size_t len) {
    while (o && len > 0) {
        const char *dot = memchr(path, '.', len);
        size_t n = dot ? (size_t)(dot - path) : len;
        char key[64];
        if (n >= sizeof(key))
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        o = member(o, key);
        if (!dot)
            break;
        path = dot + 1;
        len -= n + 1;
    }
    return o;
}

/* Text of a scalar (strings as they are, numbers as sent); NULL for NULL.
 * Objects and arrays give their JSON text. */
static const char *txt_of(json_object *v) {
    if (!v)
        return NULL;
    if (json_object_is_type(v, json_type_boolean))
        return json_object_get_boolean(v) ? "true" : "false";
    return json_object_get_string(v);
}

static const char *txt(json_object *o, const char *key) {
    return txt_of(member(o, key));
}

static const char *bool_of(json_object *v) {
    if (!v)
        return NULL;
    if (json_object_is_type(v, json_type_boolean))
        return json_object_get_boolean(v) ? "t" : "f";
    return json_object_get_string(v); /* PostgreSQL decides */
}

/* ss_time_format's output ("YYYY-MM-DDTHH:MM:SS.ffffffZ") without gmtime_r and
 * snprintf, which cost ~4,000 instructions per timestamp (about ten per shipment);
 * civil-from-days after H. Hinnant.  Years outside 0..9999 go to ss_time_format. */
static void put_digits(char *p, unsigned v, int n) {
    while (n-- > 0) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

size_t ss_sync_time_format(int64_t usec, char *buf, size_t bufsize) {
    int64_t secs = usec / 1000000, us = usec % 1000000;
    if (us < 0) {
        us += 1000000;
        secs -= 1;
    }
    int64_t days = secs / 86400, sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        days -= 1;
    }
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    if (y < 0 || y > 9999 || bufsize < 28)
        return ss_time_format(usec, buf, bufsize);
    put_digits(buf, (unsigned)y, 4);
    buf[4] = '-';
    put_digits(buf + 5, (unsigned)m, 2);
    buf[7] = '-';
    put_digits(buf + 8, (unsigned)d, 2);
    buf[10] = 'T';
    put_digits(buf + 11, (unsigned)(sod / 3600), 2);
    buf[13] = ':';
    put_digits(buf + 14, (unsigned)(sod / 60 % 60), 2);
    buf[16] = ':';
    put_digits(buf + 17, (unsigned)(sod % 60), 2);
    buf[19] = '.';
    put_digits(buf + 20, (unsigned)us, 6);
    buf[26] = 'Z';
    buf[27] = '\0';
    return 27;
}

/* Normalised timestamp of a member's value v (named what in the error),
 * NULL when v is; sets *usec (0 when NULL).  Returns -1 (errstr) when it is
 * not a timestamp. */
static int ts_of(ctx_t *c, json_object *v, const char *what, const char **cell, int64_t *usec) {
    int64_t u = 0;
    *cell = NULL;
    if (v) {
        if (!json_object_is_type(v, json_type_string) ||
            ss_time_parse(json_object_get_string(v), &u) < 0) {
            snprintf(c->errstr, c->errstr_size, "\"%s\" is not a timestamp", what);
            return -1;
        }
        char buf[SS_TIME_BUFSIZE];
        size_t n = ss_sync_time_format(u, buf, sizeof(buf));
        if (!(*cell = arena_strndup(c->r, buf, n))) {
            c->oom = 1;
            return -1;
        }
    }
    *usec = u;
    return 0;
}

static const char *serialize(ctx_t *c, json_object *o) {
    if (!o)
        return NULL;
    const char *s =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!s)
        c->oom = 1;
    return s;
}

/* ---- columns ---- */

static int cells_fill(ctx_t *c, const ss_sync_table_desc_t *d, json_object *o, const char *raw,
                      const char **cells, int64_t *version) {
    if (version)
        *version = 0;
    /* the parent of the previous dotted path: consecutive columns of one
     * embedded object ("selected_rate.carrier", "selected_rate.service")
     * look it up once */
    const char *prev = NULL;
    size_t prev_len = 0;
    json_object *parent = NULL;
    for (int i = 0; i < d->ncols; i++) {
        const ss_sync_col_t *col = &d->cols[i];
        json_object *v = NULL;
        const char *last = col->path ? strrchr(col->path, '.') : NULL;
        if (last) {
            size_t len = (size_t)(last - col->path);
            if (!prev || prev_len != len || memcmp(prev, col->path, len) != 0) {
                parent = path_walk(o, col->path, len);
                prev = col->path;
                prev_len = len;
            }
            v = member(parent, last + 1);
        } else if (col->path) {
            v = member(o, col->path);
        }
        int64_t usec;
        switch (col->src) {
        case SS_SYNC_SRC_TEXT: cells[i] = txt_of(v); break;
        case SS_SYNC_SRC_BOOL: cells[i] = bool_of(v); break;
        case SS_SYNC_SRC_TIME:
            if (ts_of(c, v, col->path, &cells[i], &usec) < 0)
                return -1;
            if (i == d->version && version)
                *version = usec;
            break;
        case SS_SYNC_SRC_JSON:
            cells[i] = v && json_object_is_type(v, json_type_object) ? serialize(c, v) : NULL;
            break;
        case SS_SYNC_SRC_OBJECT: cells[i] = serialize(c, o); break;
        case SS_SYNC_SRC_MESSAGE: cells[i] = raw; break;
        case SS_SYNC_SRC_SET: break;
        }
        if (c->oom)
            return -1;
    }
    return 0;
}

int ss_sync_cells_fill(ss_sync_rows_t *r, const ss_sync_table_desc_t *d, json_object *o,
                       const char *raw, const char **cells, int64_t *version, char *errstr,
                       size_t errstr_size) {
    ctx_t c = {r, errstr, errstr_size, 0};
    if (errstr_size)
        errstr[0] = '\0';
    if (cells_fill(&c, d, o, raw, cells, version) == 0)
        return 0;
    if (c.oom) {
        snprintf(errstr, errstr_size, "out of memory");
        return -2;
    }
    return -1;
}

/* Adds a row of table id with the cells that come from object o (the SET
 * ones NULL, for the caller to set).  Its order is its version's time when
 * that comes from o, else order.  NULL on error (errstr, or c->oom). */
static const char **row_map(ctx_t *c, ss_sync_table_id_t id, json_object *o, const char *raw,
                            uint32_t msg, int64_t order) {
    const ss_sync_table_desc_t *d = ss_sync_table_desc(id);
    const char **row = row_add(c->r, id, msg, order, o);
    if (!row) {
        c->oom = 1;
        return NULL;
    }
    int64_t version;
    if (cells_fill(c, d, o, raw, row, &version) < 0)
        return NULL;
    if (d->version >= 0 && d->cols[d->version].src == SS_SYNC_SRC_TIME)
        c->r->t[id].order[c->r->t[id].nrows - 1] = version;
    return row;
}

/* The order (version) of the last row of table id. */
static int64_t last_order(ctx_t *c, ss_sync_table_id_t id) {
    return c->r->t[id].order[c->r->t[id].nrows - 1];
}

/* ---- objects ---- */

/* topic: the address came on the addresses topic (its only raw copy); else it
 * is embedded in a shipment, whose raw holds it. */
static int map_address(ctx_t *c, json_object *a, uint32_t msg, int topic) {
    const char *id = txt(a, "id");
    if (!id || !*id)
        return 0; /* an embedded address without id is not a row */
    const char **row = row_map(c, SS_SYNC_T_ADDRESSES, a, NULL, msg, 0);
    if (!row)
        return -1;
    if (topic && !(row[AD_RAW] = serialize(c, a)))
        return -1;
    return 0;
}

static int map_parcel(ctx_t *c, json_object *p, uint32_t msg) {
    const char *id = txt(p, "id");
    if (!id || !*id)
        return 0;
    return row_map(c, SS_SYNC_T_PARCELS, p, NULL, msg, 0) ? 0 : -1;
}

static int map_rate(ctx_t *c, json_object *rt, const char *shipment_id, uint32_t msg) {
    const char *id = txt(rt, "id");
    if (!id || !*id)
        return 0;
    const char **row = row_map(c, SS_SYNC_T_RATES, rt, NULL, msg, 0);
    if (!row)
        return -1;
    row[RA_SHIPMENT_ID] = shipment_id; /* the rate belongs to the shipment carrying it */
    return 0;
}

/* Sum of the charged fees, exact; NULL when no fee was charged. */
static int fees_total(ctx_t *c, json_object *o, const char **cell) {
    *cell = NULL;
    json_object *fees = member(o, "fees");
    if (!fees || !json_object_is_type(fees, json_type_array))
        return 0;
    int64_t sum = 0;
    int any = 0;
    size_t n = json_object_array_length(fees);
    for (size_t i = 0; i < n; i++) {
        json_object *f = json_object_array_get_idx(fees, i);
        json_object *charged = member(f, "charged");
        if (!charged || !json_object_get_boolean(charged))
            continue;
        const char *amount = txt(f, "amount");
        int64_t v;
        char why[64];
        if (!amount)
            continue;
        if (ss_money_parse(amount, SS_SYNC_MONEY_SCALE, &v, why, sizeof(why)) < 0 ||
            ss_money_add(&sum, v) < 0) {
            snprintf(c->errstr, c->errstr_size, "fees[%zu].amount is not a decimal amount", i);
            return -1;
        }
        any = 1;
    }
    if (any) {
        char buf[48];
        ss_money_format(sum, SS_SYNC_MONEY_SCALE, buf, sizeof(buf));
        if (!(*cell = arena_strndup(c->r, buf, strlen(buf))))
            return c->oom = 1, -1;
    }
    return 0;
}

static int map_shipment(ctx_t *c, json_object *o, const char *oid, const char *raw, uint32_t msg) {
    const char *total;
    if (fees_total(c, o, &total) < 0)
        return -1;
    const char *id = arena_strndup(c->r, oid, strlen(oid));
    if (!id)
        return c->oom = 1, -1;
    const char **row = row_map(c, SS_SYNC_T_SHIPMENTS, o, raw, msg, 0);
    if (!row)
        return -1;
    row[SH_ID] = id;
    row[SH_TOTAL_COST] = total;
    /* this version's gates of the columns other objects set too (sync/columns.h) */
    row[SH_BATCH_UPDATED_AT] = row[SH_UPDATED_AT];
    row[SH_REFUND_UPDATED_AT] = row[SH_REFUND_STATUS] ? row[SH_UPDATED_AT] : NULL;

    /* Embedded objects other topics may never carry: the addresses (routes
     * need their cities), the parcel and the selected rate. */
    json_object *sel = obj_member(o, "selected_rate");
    json_object *addrs[4] = {obj_member(o, "from_address"), obj_member(o, "to_address"),
                             obj_member(o, "return_address"), obj_member(o, "buyer_address")};
    for (int i = 0; i < 4; i++) {
        if (!addrs[i])
            continue;
        const char *aid = txt(addrs[i], "id");
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) /* return/buyer often repeat from/to */
            seen = addrs[j] && aid && txt(addrs[j], "id") && strcmp(txt(addrs[j], "id"), aid) == 0;
        if (!seen && map_address(c, addrs[i], msg, 0) < 0)
            return -1;
    }
    json_object *parcel = obj_member(o, "parcel");
    if (parcel && map_parcel(c, parcel, msg) < 0)
        return -1;
    /* Only the purchased rate goes to "rates" (migration 0009): the read API reads a
     * shipment's selected rate and nothing reads the others; every rate stays in the
     * shipment's raw. */
    json_object *rates = c->r->every_rate ? member(o, "rates") : NULL;
    int sel_in_rates = 0;
    if (rates && json_object_is_type(rates, json_type_array)) {
        const char *sel_id = txt(sel, "id");
        size_t n = json_object_array_length(rates);
        for (size_t i = 0; i < n; i++) {
            json_object *rt = json_object_array_get_idx(rates, i);
            if (!rt || !json_object_is_type(rt, json_type_object))
                continue;
            const char *rid = txt(rt, "id");
            sel_in_rates |= sel_id && rid && strcmp(sel_id, rid) == 0;
            if (map_rate(c, rt, id, msg) < 0)
                return -1;
        }
    }
    if (sel && !sel_in_rates && map_rate(c, sel, id, msg) < 0)
        return -1;
    return 0;
}

static int map_tracker(ctx_t *c, json_object *o, const char *oid, const char *raw, uint32_t msg) {
    const char *id = arena_strndup(c->r, oid, strlen(oid));
    if (!id)
        return c->oom = 1, -1;
    const char *shipment_id = txt(o, "shipment_id");
    if (shipment_id && !*shipment_id)
        shipment_id = NULL;

    const char **row = row_map(c, SS_SYNC_T_TRACKERS, o, raw, msg, 0);
    if (!row)
        return -1;
    row[TR_ID] = id;
    row[TR_SHIPMENT_ID] = shipment_id;
    const char *est = row[TR_EST_DELIVERY_DATE], *updated = row[TR_UPDATED_AT];
    int64_t order = last_order(c, SS_SYNC_T_TRACKERS);

    const char *delivered_at = NULL;
    json_object *details = member(o, "tracking_details");
    if (details && json_object_is_type(details, json_type_array)) {
        size_t n = json_object_array_length(details);
        for (size_t i = 0; i < n; i++) {
            json_object *d = json_object_array_get_idx(details, i);
            if (!d || !json_object_is_type(d, json_type_object))
                continue;
            const char **te = row_map(c, SS_SYNC_T_TRACKING_EVENTS, d, NULL, msg, order);
            if (!te) {
                size_t l = strlen(c->errstr);
                if (!c->oom)
                    snprintf(c->errstr + l, c->errstr_size - l, " (tracking_details[%zu])", i);
                return -1;
            }
            te[TE_TRACKER_ID] = id;
            te[TE_SHIPMENT_ID] = shipment_id;
            /* The first detail that says delivered dates the delivery. */
            if (!delivered_at && te[TE_STATUS] && strcmp(te[TE_STATUS], "delivered") == 0)
                delivered_at = te[TE_OCCURRED_AT];
        }
    }

    if (shipment_id) {
        const char **st = row_map(c, SS_SYNC_T_SHIPMENT_TRACK, o, raw, msg, order);
        if (!st)
            return -1;
        st[ST_ID] = shipment_id;
        st[ST_TRACKER_ID] = id;
        st[ST_EST_DELIVERY_DATE] = est;
        st[ST_DELIVERED_AT] = delivered_at;
        st[ST_TRACKER_UPDATED_AT] = updated;
    }
    return 0;
}

static int map_batch(ctx_t *c, json_object *o, const char *oid, const char *raw, uint32_t msg) {
    const char *id = arena_strndup(c->r, oid, strlen(oid));
    if (!id)
        return c->oom = 1, -1;
    const char **row = row_map(c, SS_SYNC_T_BATCHES, o, raw, msg, 0);
    if (!row)
        return -1;
    row[BA_ID] = id;
    json_object *sf = member(o, "scan_form");
    row[BA_SCAN_FORM_ID] = sf && json_object_is_type(sf, json_type_object)   ? txt(sf, "id")
                           : sf && json_object_is_type(sf, json_type_string) ? txt(o, "scan_form")
                                                                             : NULL;
    /* The shipments it carries: their batch columns, behind the batch gate. */
    const char *updated = row[BA_UPDATED_AT];
    int64_t order = last_order(c, SS_SYNC_T_BATCHES);
    json_object *ships = member(o, "shipments");
    if (ships && json_object_is_type(ships, json_type_array)) {
        size_t n = json_object_array_length(ships);
        for (size_t i = 0; i < n; i++) {
            json_object *s = json_object_array_get_idx(ships, i);
            const char *sid = txt(s, "id");
            if (!s || !json_object_is_type(s, json_type_object) || !sid || !*sid)
                continue;
            const char **sb = row_map(c, SS_SYNC_T_SHIPMENT_BATCH, s, NULL, msg, order);
            if (!sb)
                return -1;
            sb[SB_BATCH_ID] = id;
            sb[SB_BATCH_UPDATED_AT] = updated;
        }
    }
    return 0;
}

/* A Refund: its row, and its shipment marked (refund_status behind the refund
 * gate).  A refund.successful Event's Refund that says no status is refunded. */
static int map_refund(ctx_t *c, const ss_envelope_t *e, json_object *o, const char *oid,
                      const char *raw, uint32_t msg) {
    const char *id = arena_strndup(c->r, oid, strlen(oid));
    if (!id)
        return c->oom = 1, -1;
    const char **row = row_map(c, SS_SYNC_T_REFUNDS, o, raw, msg, 0);
    if (!row)
        return -1;
    row[RF_ID] = id;
    const char *status = row[RF_STATUS];
    if (!status && strcmp(e->type, "refund.successful") == 0)
        status = "refunded";
    const char *shipment_id = row[RF_SHIPMENT_ID];
    if (!status || !shipment_id || !*shipment_id)
        return 0;
    const char **sr = row_map(c, SS_SYNC_T_SHIPMENT_REFUND, o, NULL, msg, 0);
    if (!sr)
        return -1;
    sr[SR_ID] = shipment_id;
    sr[SR_REFUND_STATUS] = status;
    return 0;
}

/* Pickup, ScanForm, Insurance: one row of their table, id from the envelope. */
static int map_simple(ctx_t *c, ss_sync_table_id_t t, json_object *o, const char *oid,
                      const char *raw, uint32_t msg) {
    const char *id = arena_strndup(c->r, oid, strlen(oid));
    if (!id)
        return c->oom = 1, -1;
    const char **row = row_map(c, t, o, raw, msg, 0);
    if (!row)
        return -1;
    row[0] = id; /* every one of these tables has its id first */
    if (t == SS_SYNC_T_SCAN_FORMS) {
        json_object *codes = member(o, "tracking_codes");
        if (codes && json_object_is_type(codes, json_type_array) &&
            !(row[SF_TRACKING_CODES] = serialize(c, codes)))
            return -1;
    }
    return 0;
}

/* Any other type that carries an id: the raw archive. */
static int map_object(ctx_t *c, const ss_envelope_t *e, json_object *o, const char *raw,
                      uint32_t msg) {
    const char *oid = txt(o, "id");
    const char *type = arena_strndup(c->r, e->object_type, strlen(e->object_type));
    if (!type)
        return c->oom = 1, -1;
    const char **row = row_map(c, SS_SYNC_T_OBJECTS, o, raw, msg, 0);
    if (!row)
        return -1;
    row[OB_ID] = oid;
    row[OB_OBJECT_TYPE] = type;
    return 0;
}

/* o: the object (the Event's result when it came as a webhook); ev: the
 * Event without its result, or NULL; event_id, description: the row's
 * (the envelope's event id and type, or an Event object's own). */
static int map_event(ctx_t *c, const ss_envelope_t *e, json_object *o, json_object *ev,
                     const char *event_id, const char *description, const char *raw, uint32_t msg) {
    /* The envelope's fixed fields live in the envelope struct: copy them. */
    const char *eid = arena_strndup(c->r, event_id, strlen(event_id));
    const char *type = description ? arena_strndup(c->r, description, strlen(description)) : "";
    const char *otype = arena_strndup(c->r, e->object_type, strlen(e->object_type));
    const char *oid = arena_strndup(c->r, e->object_id, strlen(e->object_id));
    if (!eid || !type || !otype || !oid)
        return c->oom = 1, -1;
    if (!description)
        type = NULL;
    /* The Event's own times when it came as a webhook, else the object's. */
    const char **row = row_map(c, SS_SYNC_T_EVENTS, ev ? ev : o, raw, msg, e->updated_at_usec);
    if (!row)
        return -1;
    row[EV_ID] = eid;
    row[EV_DESCRIPTION] = type;
    row[EV_OBJECT_TYPE] = otype;
    row[EV_OBJECT_ID] = oid;
    row[EV_MODE] = ev && txt(ev, "mode") ? txt(ev, "mode") : txt(o, "mode");
    row[EV_STATUS] = ev ? txt(ev, "status") : txt(o, "status");
    row[EV_USER_ID] = ev ? txt(ev, "user_id") : NULL;
    return 0;
}

/* The events topic's objects (every type but Shipment, Tracker, Address,
 * Batch): typed tables, an Event object under its own id, else the archive;
 * an object without an id is kept in easypost_events under the envelope's
 * event id unless its webhook Event already is. */
static int map_other(ctx_t *c, const ss_envelope_t *e, json_object *o, json_object *ev,
                     int webhook_event, const char *raw, uint32_t msg) {
    const char *t = e->object_type, *oid = e->object_id;
    const char *own = txt(o, "id");
    if (!own || !*own || !json_object_is_type(member(o, "id"), json_type_string))
        return webhook_event ? 0 : map_event(c, e, o, ev, e->event_id, e->type, raw, msg);
    if (strcmp(t, "Refund") == 0)
        return map_refund(c, e, o, oid, raw, msg);
    if (strcmp(t, "Pickup") == 0)
        return map_simple(c, SS_SYNC_T_PICKUPS, o, oid, raw, msg);
    if (strcmp(t, "ScanForm") == 0)
        return map_simple(c, SS_SYNC_T_SCAN_FORMS, o, oid, raw, msg);
    if (strcmp(t, "Insurance") == 0)
        return map_simple(c, SS_SYNC_T_INSURANCES, o, oid, raw, msg);
    if (strcmp(t, "Event") == 0 && !webhook_event) {
        /* an Event read from the API: recorded like a webhook's, by its own id */
        if (map_event(c, e, o, o, own, txt(o, "description"), raw, msg) < 0)
            return -1;
        ss_sync_table_t *ev_t = &c->r->t[SS_SYNC_T_EVENTS];
        const char **row = ev_t->cells + (ev_t->nrows - 1) * (size_t)ev_t->ncols;
        json_object *result = obj_member(o, "result");
        row[EV_OBJECT_TYPE] = txt(result, "object");
        row[EV_OBJECT_ID] = txt(result, "id");
        return 0;
    }
    return map_object(c, e, o, raw, msg);
}

/* A span of the envelope parsed by json-c into a tree the rows own. */
static int parse_span(ctx_t *c, ss_json_span_t s, const char *what, json_object **out) {
    ss_sync_rows_t *r = c->r;
    *out = NULL;
    if (!r->tok) {
        if (!(r->tok = json_tokener_new_ex(SS_ENVELOPE_MAX_DEPTH)))
            return c->oom = 1, -1;
        json_tokener_set_flags(r->tok, JSON_TOKENER_STRICT);
    }
    if (r->ntrees == r->trees_cap) {
        size_t cap = r->trees_cap ? r->trees_cap * 2 : 256;
        json_object **t = realloc(r->trees, cap * sizeof(*t));
        if (!t)
            return c->oom = 1, -1;
        memset(t + r->trees_cap, 0, (cap - r->trees_cap) * sizeof(*t));
        r->trees = t;
        r->trees_cap = cap;
    }
    /* the slot's tree of a previous batch (ss_sync_rows_reset): its blocks serve this one */
    json_object_put(r->trees[r->ntrees]);
    r->trees[r->ntrees] = NULL;
    json_object *o = NULL;
    if (s.len <= (size_t)INT32_MAX) {
        json_tokener_reset(r->tok);
        o = json_tokener_parse_ex(r->tok, s.p, (int)s.len);
        if (json_tokener_get_error(r->tok) != json_tokener_success ||
            json_tokener_get_parse_end(r->tok) != s.len) {
            json_object_put(o);
            o = NULL;
        }
    }
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        snprintf(c->errstr, c->errstr_size, "envelope \"%s\" is not a JSON object json-c reads",
                 what);
        return -1;
    }
    r->trees[r->ntrees++] = o;
    *out = o;
    return 0;
}

/* A Shipment's object span for the tree: without its "rates", and with its embedded
 * "tracker" cut to its id.  Every rate EasyPost offered is about half a Shipment's bytes (a
 * sim Shipment: 5.5 KB of 11.7 KB) and the tracker with its details another 2 KB; json-c built
 * a tree of them for every message, and the columns read neither (the purchased rate is
 * "selected_rate", migration 0009; of the tracker, shipments.tracker_id reads its id; the
 * tracker's own messages fill trackers).  shipments.raw keeps everything: it comes from the
 * message bytes, not from the tree.  test_shipment_tree_slim proves every cell equal to the
 * whole tree's.  The envelope parser checked the span, so members are copied as they are.
 * Returns the span itself when there is nothing to leave out, {NULL, 0} on out of memory. */
static int slim_member(ss_json_span_t k, ss_json_span_t v) {
    return ss_json_key_is(k, "rates") || (ss_json_key_is(k, "tracker") && v.len && v.p[0] == '{');
}

static ss_json_span_t shipment_tree_slim(ss_sync_rows_t *r, ss_json_span_t obj) {
    ss_json_iter_t it;
    ss_json_span_t k, v;
    int found = 0;
    if (ss_json_iter_init(&it, obj) != 0)
        return obj; /* not an object: parse_span says so */
    while (!found && ss_json_iter_next(&it, &k, &v) == 1)
        found = slim_member(k, v);
    if (!found)
        return obj;
    if (r->slim_cap < obj.len) {
        char *b = realloc(r->slim, obj.len);
        if (!b)
            return (ss_json_span_t){NULL, 0};
        r->slim = b;
        r->slim_cap = obj.len;
    }
    /* {"k":v,...} from the kept members, the tracker as {"id":...}: never longer than the
     * object */
    static const char *const id_name[] = {"id", NULL};
    size_t n = 0;
    r->slim[n++] = '{';
    ss_json_iter_init(&it, obj);
    while (ss_json_iter_next(&it, &k, &v) == 1) {
        if (ss_json_key_is(k, "rates"))
            continue;
        if (n > 1)
            r->slim[n++] = ',';
        memcpy(r->slim + n, k.p, k.len);
        n += k.len;
        r->slim[n++] = ':';
        if (slim_member(k, v)) { /* the tracker */
            ss_json_span_t id;
            ss_json_pick(v, id_name, &id);
            r->slim[n++] = '{';
            if (id.p) {
                memcpy(r->slim + n, "\"id\":", 5);
                n += 5;
                memcpy(r->slim + n, id.p, id.len);
                n += id.len;
            }
            r->slim[n++] = '}';
            continue;
        }
        memcpy(r->slim + n, v.p, v.len);
        n += v.len;
    }
    r->slim[n++] = '}';
    return (ss_json_span_t){r->slim, n};
}

/* The object span json-c parses: a Shipment's slimmed (shipment_tree_slim) unless its offered
 * rates are rows (every_rate). */
static ss_json_span_t tree_span(ss_sync_rows_t *r, const ss_envelope_t *e) {
    if (r->every_rate || strcmp(e->object_type, "Shipment") != 0)
        return e->object;
    return shipment_tree_slim(r, e->object);
}

int ss_sync_map(ss_sync_rows_t *r, const ss_envelope_t *e, const char *raw, size_t rawlen,
                uint32_t msg, char *errstr, size_t errstr_size) {
    ctx_t c = {r, errstr, errstr_size, 0};
    json_object *object = NULL, *event = NULL; /* the spans, parsed (owned by r) */
    ss_json_span_t tree;                       /* the object span json-c parses */
    size_t before[SS_SYNC_T__COUNT];
    for (int t = 0; t < SS_SYNC_T__COUNT; t++)
        before[t] = r->t[t].nrows;
    if (errstr_size)
        errstr[0] = '\0';

    int rc = -1;
    const char *rawc = raw ? arena_strndup(r, raw, rawlen) : NULL;
    if (!e || !e->object.p) {
        snprintf(errstr, errstr_size, "envelope without object");
    } else if (raw && !rawc) {
        c.oom = 1;
    } else if (!(tree = tree_span(r, e)).p) {
        c.oom = 1;
    } else if (parse_span(&c, tree, "object", &object) == 0 &&
               (!e->event.p || parse_span(&c, e->event, "event", &event) == 0)) {
        /* The consumer's rule, one for every topic (the producers route by
         * the object's type, ss_envelope_route):
         *   1. an envelope carrying a webhook Event (source webhook with
         *      "event") is recorded in easypost_events under its event id,
         *      so that every webhook Event is traceable in PostgreSQL;
         *   2. then its object is applied by object_type: Shipment ->
         *      shipments (+ addresses, parcel, rates), Tracker -> trackers
         *      (+ tracking events, the shipment's tracking view), Address ->
         *      addresses, Batch -> batches; any other type has no table of
         *      its own and is recorded in easypost_events (once).
         * Gateway, backfill and reconcile envelopes carry no Event: rule 2
         * only. */
        int webhook_event = e->source == SS_SOURCE_WEBHOOK && event != NULL;
        rc = webhook_event ? map_event(&c, e, object, event, e->event_id, e->type, rawc, msg) : 0;
        if (rc == 0) {
            switch (ss_envelope_topic(e)) {
            case SS_TOPIC_SHIPMENTS: rc = map_shipment(&c, object, e->object_id, rawc, msg); break;
            case SS_TOPIC_TRACKERS: rc = map_tracker(&c, object, e->object_id, rawc, msg); break;
            case SS_TOPIC_ADDRESSES: rc = map_address(&c, object, msg, 1); break;
            case SS_TOPIC_BATCHES: rc = map_batch(&c, object, e->object_id, rawc, msg); break;
            default: rc = map_other(&c, e, object, event, webhook_event, rawc, msg); break;
            }
        }
    }
    if (rc == 0 && !c.oom)
        return 0;
    for (int t = 0; t < SS_SYNC_T__COUNT; t++)
        r->t[t].nrows = before[t];
    if (c.oom) {
        snprintf(errstr, errstr_size, "out of memory");
        return -2;
    }
    return -1;
}

/* ---- reduce ---- */

static int cmp_rows(const void *a, const void *b, void *arg) {
    const ss_sync_table_t *t = arg;
    size_t ra = *(const size_t *)a, rb = *(const size_t *)b;
    const char *ka = t->cells[ra * (size_t)t->ncols], *kb = t->cells[rb * (size_t)t->ncols];
    int c = strcmp(ka ? ka : "", kb ? kb : "");
    if (c)
        return c;
    if (t->order[ra] != t->order[rb])
        return t->order[ra] < t->order[rb] ? -1 : 1;
    return ra < rb ? -1 : ra > rb;
}

long ss_sync_reduce(const ss_sync_rows_t *r, ss_sync_table_id_t id, const unsigned char *keep,
                    size_t **out, size_t *superseded) {
    const ss_sync_table_t *t = &r->t[id];
    *out = NULL;
    if (superseded)
        *superseded = 0;
    if (t->nrows == 0)
        return 0;
    size_t *idx = malloc(t->nrows * sizeof(*idx));
    if (!idx)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < t->nrows; i++)
        if (!keep || keep[t->msg[i]])
            idx[n++] = i;
    if (n == 0) {
        free(idx);
        return 0;
    }
    if (ss_sync_table_desc(id)->version < 0) { /* ON CONFLICT DO NOTHING: every row */
        *out = idx;
        return (long)n;
    }
    qsort_r(idx, n, sizeof(*idx), cmp_rows, (void *)t);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int last_of_key =
            i + 1 == n ||
            strcmp(t->cells[idx[i] * (size_t)t->ncols] ? t->cells[idx[i] * (size_t)t->ncols] : "",
                   t->cells[idx[i + 1] * (size_t)t->ncols] ? t->cells[idx[i + 1] * (size_t)t->ncols]
                                                           : "") != 0;
        if (last_of_key)
            idx[m++] = idx[i];
        else if (superseded)
            (*superseded)++;
    }
    /* Left sorted by id: every worker locks rows in the same order (shared embedded
     * addresses from different partitions cannot deadlock). */
    *out = idx;
    return (long)m;
}
