/* The synced columns are declared once (sync/columns.h): a new column is one
 * line, and the statements match the tables the migrations create. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <common/util.h>
#include <sync/apply.h>
#include <sync/map.h>

/* ---- a fixture table: adding a synced column is one line ---- */

#define FIXTURE_HEAD(X)                                  \
    X(FX_ID, "id", NULL, TEXT, "id", NULL, SS_SYNC_KEEP) \
    X(FX_WEIGHT, "weight", "numeric", TEXT, "weight", NULL, NULL)
#define FIXTURE_TAIL(X)                                                           \
    X(FX_UPDATED_AT, "updated_at", "timestamptz", TIME, "updated_at", NULL, NULL) \
    X(FX_RAW, "raw", "jsonb", OBJECT, NULL, NULL, NULL)

/* The table before... */
#define FIXTURE_V1_COLUMNS(X) FIXTURE_HEAD(X) FIXTURE_TAIL(X)
/* ...and after adding the column "color", taken from the object's
 * label.color: the X(...) line in the middle is the whole change. */
#define FIXTURE_V2_COLUMNS(X)                                   \
    FIXTURE_HEAD(X)                                             \
    X(FX_COLOR, "color", NULL, TEXT, "label.color", NULL, NULL) \
    FIXTURE_TAIL(X)

enum { FIXTURE_V2_COLUMNS(SS_SYNC_COL_ENUM) FX__N };

static const ss_sync_col_t v1_cols[] = {FIXTURE_V1_COLUMNS(SS_SYNC_COL_DESC)};
static const ss_sync_col_t v2_cols[] = {FIXTURE_V2_COLUMNS(SS_SYNC_COL_DESC)};
#define NV1 ((int)(sizeof(v1_cols) / sizeof(v1_cols[0])))

static const ss_sync_table_desc_t v1 = {"fixture", "fx", v1_cols, NV1, 2, "(id)", NULL, 1};
static const ss_sync_table_desc_t v2 = {"fixture",     "fx",   v2_cols, FX__N,
                                        FX_UPDATED_AT, "(id)", NULL,    1};

static const char V1_SQL[] =
    "INSERT INTO fixture AS t (id, weight, updated_at, raw, synced_at)"
    " SELECT id, weight::numeric, updated_at, raw::jsonb, now()"
    " FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[])"
    " AS u(id, weight, updated_at, raw)"
    " ON CONFLICT (id) DO UPDATE SET weight = excluded.weight,"
    " updated_at = excluded.updated_at, raw = excluded.raw, synced_at = now()"
    " WHERE t.updated_at IS NULL OR t.updated_at <= excluded.updated_at";

/* color is in the column list, the SELECT, unnest (as $3, the parameters
 * after it renumbered), the alias list and the update list. */
static const char V2_SQL[] =
    "INSERT INTO fixture AS t (id, weight, color, updated_at, raw, synced_at)"
    " SELECT id, weight::numeric, color, updated_at, raw::jsonb, now()"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[])"
    " AS u(id, weight, color, updated_at, raw)"
    " ON CONFLICT (id) DO UPDATE SET weight = excluded.weight, color = excluded.color,"
    " updated_at = excluded.updated_at, raw = excluded.raw, synced_at = now()"
    " WHERE t.updated_at IS NULL OR t.updated_at <= excluded.updated_at";

static const char OBJ[] = "{\"id\":\"fx_1\",\"weight\":15.4,\"label\":{\"color\":\"red\"},"
                          "\"updated_at\":\"2024-08-15T20:44:40.5-07:00\"}";

static void test_fixture_one_line_sql(void **state) {
    (void)state;
    ss_buf_t b = {0};
    assert_int_equal(ss_sync_sql_build(&v1, &b), 0);
    assert_string_equal(b.data, V1_SQL);
    assert_int_equal(ss_sync_sql_build(&v2, &b), 0);
    assert_string_equal(b.data, V2_SQL);
    /* the column numbers follow the list */
    assert_int_equal(FX_COLOR, 2);
    assert_int_equal(FX_UPDATED_AT, 3);
    assert_int_equal(FX__N, NV1 + 1);
    ss_buf_free(&b);
}

static void test_fixture_one_line_cells(void **state) {
    (void)state;
    json_object *o = json_tokener_parse(OBJ);
    assert_non_null(o);
    ss_sync_rows_t r;
    ss_sync_rows_init(&r);
    char err[128];
    const char *c1[NV1], *c2[FX__N];
    int64_t ver1, ver2;
    assert_int_equal(ss_sync_cells_fill(&r, &v1, o, NULL, c1, &ver1, err, sizeof(err)), 0);
    assert_int_equal(ss_sync_cells_fill(&r, &v2, o, NULL, c2, &ver2, err, sizeof(err)), 0);
    /* the new cell is mapped, at its column number; the others moved with it */
    assert_string_equal(c2[FX_COLOR], "red");
    assert_string_equal(c2[FX_ID], "fx_1");
    assert_string_equal(c2[FX_WEIGHT], "15.4");
    assert_string_equal(c2[FX_UPDATED_AT], "2024-08-16T03:44:40.500000Z");
    assert_non_null(strstr(c2[FX_RAW], "\"color\":\"red\""));
    for (int i = 0; i < 2; i++)
        assert_string_equal(c1[i], c2[i]);
    for (int i = 2; i < NV1; i++)
        assert_string_equal(c1[i], c2[i + 1]);
    assert_int_equal(ver1, 1723779880500000LL);
    assert_int_equal(ver2, ver1);

    /* absent: SQL NULL; a timestamp that is not one names its path */
    json_object *bad = json_tokener_parse("{\"id\":\"fx_2\",\"updated_at\":\"soon\"}");
    assert_int_equal(ss_sync_cells_fill(&r, &v2, bad, NULL, c2, &ver2, err, sizeof(err)), -1);
    assert_string_equal(err, "\"updated_at\" is not a timestamp");
    json_object_put(bad);
    bad = json_tokener_parse("{\"id\":\"fx_3\",\"label\":\"red\"}");
    assert_int_equal(ss_sync_cells_fill(&r, &v2, bad, NULL, c2, &ver2, err, sizeof(err)), 0);
    assert_null(c2[FX_COLOR]); /* label is not an object */
    assert_null(c2[FX_UPDATED_AT]);
    assert_int_equal(ver2, 0);
    json_object_put(bad);

    ss_sync_rows_free(&r);
    json_object_put(o);
}

/* Insert-once tables: DO NOTHING, no version guard, no synced_at. */
static void test_fixture_do_nothing(void **state) {
    (void)state;
    static const ss_sync_col_t cols[] = {
        {"a", NULL, SS_SYNC_SRC_SET, NULL, NULL, NULL},
        {"b", "jsonb", SS_SYNC_SRC_MESSAGE, NULL, "j.j->'x'", NULL},
    };
    static const ss_sync_table_desc_t d = {
        "log", "lg", cols, 2, -1, "ON CONSTRAINT log_key", "CROSS JOIN LATERAL (SELECT 1) j", 0};
    ss_buf_t b = {0};
    assert_int_equal(ss_sync_sql_build(&d, &b), 0);
    assert_string_equal(b.data, "INSERT INTO log AS t (a, b) SELECT a, j.j->'x'"
                                " FROM unnest($1::text[], $2::text[]) AS u(a, b)"
                                " CROSS JOIN LATERAL (SELECT 1) j"
                                " ON CONFLICT ON CONSTRAINT log_key DO NOTHING");
    ss_buf_free(&b);
}

/* Paths: nested members, neighbours with other parents, missing steps. */
static void test_paths(void **state) {
    (void)state;
    static const ss_sync_col_t cols[] = {
        {"c1", NULL, SS_SYNC_SRC_TEXT, "a.b.c", NULL, NULL},
        {"c2", NULL, SS_SYNC_SRC_TEXT, "a.b.d", NULL, NULL},
        {"c3", NULL, SS_SYNC_SRC_TEXT, "x.b.c", NULL, NULL},
        {"c4", NULL, SS_SYNC_SRC_TEXT, "a.e", NULL, NULL},
        {"c5", NULL, SS_SYNC_SRC_TEXT, "a.b.c", NULL, NULL},
        {"c6", NULL, SS_SYNC_SRC_TEXT, "a.b", NULL, NULL},
        {"c7", NULL, SS_SYNC_SRC_BOOL, "a.f", NULL, NULL},
        {"c8", NULL, SS_SYNC_SRC_TEXT, "a.e.z", NULL, NULL},
        {"c9", "jsonb", SS_SYNC_SRC_JSON, "x.b", NULL, NULL},
        {"c10", NULL, SS_SYNC_SRC_TEXT, "n.q", NULL, NULL},
    };
    static const ss_sync_table_desc_t d = {"p", "p", cols, 10, -1, "(c1)", NULL, 0};
    json_object *o =
        json_tokener_parse("{\"a\":{\"b\":{\"c\":\"abc\",\"d\":2},\"e\":\"ae\",\"f\":false},"
                           "\"x\":{\"b\":{\"c\":\"xbc\"}},\"n\":null}");
    assert_non_null(o);
    ss_sync_rows_t r;
    ss_sync_rows_init(&r);
    const char *c[10];
    char err[64];
    assert_int_equal(ss_sync_cells_fill(&r, &d, o, NULL, c, NULL, err, sizeof(err)), 0);
    assert_string_equal(c[0], "abc");
    assert_string_equal(c[1], "2");
    assert_string_equal(c[2], "xbc");
    assert_string_equal(c[3], "ae");
    assert_string_equal(c[4], "abc");
    /* TEXT of an object: json-c's default text of it */
    assert_string_equal(c[5], "{ \"c\": \"abc\", \"d\": 2 }");
    assert_string_equal(c[6], "f");
    assert_null(c[7]); /* a.e is not an object */
    assert_string_equal(c[8], "{\"c\":\"xbc\"}");
    assert_null(c[9]); /* n is null */
    ss_sync_rows_free(&r);
    json_object_put(o);
}

/* ---- the real tables ---- */

/* Every descriptor is consistent, and its statement numbers exactly one
 * parameter per column. */
static void test_descriptors_consistent(void **state) {
    (void)state;
    for (int t = 0; t < SS_SYNC_T__COUNT; t++) {
        const ss_sync_table_desc_t *d = ss_sync_table_desc((ss_sync_table_id_t)t);
        assert_non_null(d);
        assert_int_equal(d->ncols, ss_sync_table_ncols((ss_sync_table_id_t)t));
        assert_true(d->ncols > 0 && d->ncols <= SS_SYNC_MAX_COLS);
        for (int i = 0; i < d->ncols; i++) {
            const ss_sync_col_t *c = &d->cols[i];
            int sourced = c->src == SS_SYNC_SRC_TEXT || c->src == SS_SYNC_SRC_BOOL ||
                          c->src == SS_SYNC_SRC_TIME || c->src == SS_SYNC_SRC_JSON;
            if (sourced != (c->path != NULL))
                fail_msg("%s.%s: a path goes with TEXT, BOOL, TIME, JSON", d->table, c->name);
            if (c->src == SS_SYNC_SRC_TIME && (!c->cast || strcmp(c->cast, "timestamptz") != 0))
                fail_msg("%s.%s: TIME cells are timestamptz", d->table, c->name);
            if (c->src == SS_SYNC_SRC_BOOL && (!c->cast || strcmp(c->cast, "boolean") != 0))
                fail_msg("%s.%s: BOOL cells are boolean", d->table, c->name);
            for (const char *p = c->path; p && *p;) { /* path_member's key limit */
                size_t n = strcspn(p, ".");
                assert_true(n > 0 && n < 64);
                p += n + (p[n] == '.');
            }
            for (int j = 0; j < i; j++)
                if (strcmp(d->cols[j].name, c->name) == 0)
                    fail_msg("%s.%s twice", d->table, c->name);
        }
        if (d->version >= 0) {
            assert_true(d->version < d->ncols);
            assert_string_equal(d->cols[d->version].cast, "timestamptz");
        }
        const char *sql = ss_sync_table_sql((ss_sync_table_id_t)t);
        assert_non_null(sql);
        char last[32], next[32];
        snprintf(last, sizeof(last), "$%d::%s[])", d->ncols,
                 ss_sync_col_binary_ts(&d->cols[d->ncols - 1]) ? "timestamptz" : "text");
        /* timestamptz columns travel binary: no text cast left for them */
        for (int i = 0; i < d->ncols; i++) {
            char cast[96];
            snprintf(cast, sizeof(cast), " %s::timestamptz", d->cols[i].name);
            if (ss_sync_col_binary_ts(&d->cols[i]) && strstr(sql, cast))
                fail_msg("%s.%s: cast from text in %s", d->table, d->cols[i].name, sql);
        }
        snprintf(next, sizeof(next), "$%d", d->ncols + 1);
        assert_non_null(strstr(sql, last));
        assert_null(strstr(sql, next));
    }
    /* the shipment's statement still guards by updated_at and keeps the
     * tracker's status */
    const char *sh = ss_sync_table_sql(SS_SYNC_T_SHIPMENTS);
    assert_non_null(
        strstr(sh, "WHERE t.updated_at IS NULL OR t.updated_at <= excluded.updated_at"));
    assert_non_null(strstr(sh, "status = CASE WHEN t.tracker_updated_at IS NULL"));
    assert_null(strstr(sh, " id = excluded.id"));
}

/* ---- the tables as the migrations leave them ---- */

typedef struct {
    char name[64], type[64];
    int generated;
} mcol_t;

typedef struct {
    char name[64];
    mcol_t cols[64];
    int ncols;
    char constraints[8][64];
    int ncons;
} mtable_t;

static mtable_t mt[32];
static int nmt;

static mtable_t *mtable(const char *name, int create) {
    for (int i = 0; i < nmt; i++)
        if (strcmp(mt[i].name, name) == 0)
            return &mt[i];
    if (!create)
        return NULL;
    assert_true(nmt < 32);
    memset(&mt[nmt], 0, sizeof(mt[nmt]));
    snprintf(mt[nmt].name, sizeof(mt[nmt].name), "%s", name);
    return &mt[nmt++];
}

/* The next word of *p (letters, digits, '_', lower-cased) into w. */
static int word(const char **p, char *w, size_t wsize) {
    while (isspace((unsigned char)**p))
        (*p)++;
    size_t n = 0;
    while (isalnum((unsigned char)**p) || **p == '_') {
        if (n + 1 < wsize)
            w[n++] = (char)tolower((unsigned char)**p);
        (*p)++;
    }
    w[n] = '\0';
    return n > 0;
}

/* Skips "if not exists" / "if exists" / "only". */
static void skip_words(const char **p, const char *const *words) {
    for (;;) {
        const char *q = *p;
        char w[64];
        word(&q, w, sizeof(w));
        int hit = 0;
        for (int i = 0; words[i]; i++)
            hit |= strcmp(w, words[i]) == 0;
        if (!hit)
            return;
        *p = q;
    }
}

static const char *const SKIP[] = {"if", "not", "exists", "only", "column", NULL};

/* One column definition or table constraint ("name type ...", "CONSTRAINT x ..."). */
static void table_item(mtable_t *t, const char *item, int add) {
    char w[64], ty[64];
    const char *p = item;
    if (!word(&p, w, sizeof(w)))
        return;
    if (strcmp(w, "constraint") == 0) {
        assert_true(t->ncons < 8);
        word(&p, t->constraints[t->ncons++], 64);
        return;
    }
    if (!strcmp(w, "primary") || !strcmp(w, "unique") || !strcmp(w, "check") ||
        !strcmp(w, "foreign") || !strcmp(w, "exclude"))
        return;
    if (!add) { /* ALTER TABLE: ADD [COLUMN] / DROP [COLUMN] / ALTER ... */
        if (strcmp(w, "add") && strcmp(w, "drop"))
            return;
        int drop = strcmp(w, "drop") == 0;
        skip_words(&p, SKIP);
        if (!word(&p, w, sizeof(w)))
            return;
        if (strcmp(w, "constraint") == 0)
            return;
        if (drop) {
            for (int i = 0; i < t->ncols; i++)
                if (strcmp(t->cols[i].name, w) == 0)
                    t->cols[i] = t->cols[--t->ncols];
            return;
        }
    }
    word(&p, ty, sizeof(ty));
    assert_true(t->ncols < 64);
    mcol_t *c = &t->cols[t->ncols++];
    snprintf(c->name, sizeof(c->name), "%s", w);
    snprintf(c->type, sizeof(c->type), "%s", ty);
    char low[512];
    size_t n = strlen(p) < sizeof(low) - 1 ? strlen(p) : sizeof(low) - 1;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)p[i]);
    low[n] = '\0';
    c->generated = strstr(low, "generated") != NULL;
}

/* Items of body separated by commas outside parentheses. */
static void table_items(mtable_t *t, const char *body, size_t len, int add) {
    int depth = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        char ch = i < len ? body[i] : ',';
        depth += ch == '(';
        depth -= ch == ')';
        if (ch == ',' && depth == 0) {
            char item[1024];
            size_t n = i - start < sizeof(item) - 1 ? i - start : sizeof(item) - 1;
            memcpy(item, body + start, n);
            item[n] = '\0';
            table_item(t, item, add);
            start = i + 1;
        }
    }
}

static void statement(const char *s) {
    const char *p = s;
    char w1[64], w2[64], name[64];
    if (!word(&p, w1, sizeof(w1)) || !word(&p, w2, sizeof(w2)) || strcmp(w2, "table") != 0)
        return;
    int create = strcmp(w1, "create") == 0;
    if (!create && strcmp(w1, "alter") != 0)
        return;
    skip_words(&p, SKIP);
    if (!word(&p, name, sizeof(name)))
        return;
    if (create) {
        while (isspace((unsigned char)*p))
            p++;
        if (*p != '(')
            return;
        const char *end = strrchr(p, ')');
        assert_non_null(end);
        table_items(mtable(name, 1), p + 1, (size_t)(end - p - 1), 1);
    } else if (mtable(name, 0)) {
        table_items(mtable(name, 0), p, strlen(p), 0);
    }
}

/* Reads the migrations (*.up.sql) in order: comments dropped, statements split on
 * ';' outside quotes and $tag$ bodies. */
static void load_migrations(void) {
    glob_t g;
    assert_int_equal(glob(SS_SOURCE_ROOT "/migrations/*.up.sql", 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 1);
    nmt = 0;
    for (size_t f = 0; f < g.gl_pathc; f++) {
        FILE *fp = fopen(g.gl_pathv[f], "rb");
        assert_non_null(fp);
        ss_buf_t sql = {0}, stmt = {0};
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
            assert_int_equal(ss_buf_append(&sql, chunk, n), 0);
        fclose(fp);
        const char *s = sql.data ? sql.data : "";
        for (size_t i = 0; s[i];) {
            if (s[i] == '-' && s[i + 1] == '-') {
                while (s[i] && s[i] != '\n')
                    i++;
            } else if (s[i] == '\'') {
                size_t j = i + 1;
                while (s[j] && s[j] != '\'')
                    j++;
                assert_int_equal(ss_buf_append(&stmt, s + i, j + 1 - i), 0);
                i = s[j] ? j + 1 : j;
            } else if (s[i] == '$' && (s[i + 1] == '$' || isalpha((unsigned char)s[i + 1]))) {
                size_t j = i + 1;
                while (isalnum((unsigned char)s[j]) || s[j] == '_')
                    j++;
                if (s[j] != '$') {
                    assert_int_equal(ss_buf_append(&stmt, s + i, 1), 0);
                    i++;
                    continue;
                }
                char tag[64];
                size_t tl = j + 1 - i;
                assert_true(tl < sizeof(tag));
                memcpy(tag, s + i, tl);
                tag[tl] = '\0';
                const char *close = strstr(s + j + 1, tag);
                assert_non_null(close);
                i = (size_t)(close - s) + tl; /* a body holds no table */
            } else if (s[i] == ';') {
                statement(stmt.data ? stmt.data : "");
                ss_buf_reset(&stmt);
                i++;
            } else {
                assert_int_equal(ss_buf_append(&stmt, s + i, 1), 0);
                i++;
            }
        }
        ss_buf_free(&sql);
        ss_buf_free(&stmt);
    }
    globfree(&g);
}

static const mcol_t *mcolumn(const mtable_t *t, const char *name) {
    for (int i = 0; i < t->ncols; i++)
        if (strcmp(t->cols[i].name, name) == 0)
            return &t->cols[i];
    return NULL;
}

/* Every column a statement writes exists in the migrated table, is not
 * generated, and has the type the cell is cast to. */
static void test_descriptors_match_migrations(void **state) {
    (void)state;
    load_migrations();
    const mtable_t *sh = mtable("shipments", 0);
    assert_non_null(sh);                           /* the parser sees the schema at all */
    assert_non_null(mcolumn(sh, "analytics_day")); /* ALTER TABLE ... ADD COLUMN too */
    assert_true(mcolumn(sh, "analytics_day")->generated);

    for (int t = 0; t < SS_SYNC_T__COUNT; t++) {
        const ss_sync_table_desc_t *d = ss_sync_table_desc((ss_sync_table_id_t)t);
        const mtable_t *m = mtable(d->table, 0);
        if (!m)
            fail_msg("table %s is in no migration", d->table);
        for (int i = 0; i < d->ncols; i++) {
            const ss_sync_col_t *c = &d->cols[i];
            const mcol_t *mc = mcolumn(m, c->name);
            if (!mc)
                fail_msg("%s.%s is in no migration", d->table, c->name);
            if (mc->generated)
                fail_msg("%s.%s is generated: it cannot be written", d->table, c->name);
            const char *want = c->cast ? c->cast : "text";
            if (strcmp(mc->type, want) != 0)
                fail_msg("%s.%s is %s in the migrations, %s in the descriptor", d->table, c->name,
                         mc->type, want);
        }
        if (d->synced_at && !mcolumn(m, "synced_at"))
            fail_msg("%s has no synced_at", d->table);
        if (strcmp(d->conflict, "(id)") == 0) {
            assert_non_null(mcolumn(m, "id"));
        } else if (!*d->conflict) {
            if (d->version >= 0) /* DO UPDATE needs a target */
                fail_msg("%s: no ON CONFLICT target for DO UPDATE", d->table);
        } else {
            const char *cn = d->conflict + strlen("ON CONSTRAINT ");
            int found = 0;
            for (int i = 0; i < m->ncons; i++)
                found |= strcmp(m->constraints[i], cn) == 0;
            if (!found)
                fail_msg("%s has no constraint %s", d->table, cn);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_one_line_sql),
        cmocka_unit_test(test_fixture_one_line_cells),
        cmocka_unit_test(test_fixture_do_nothing),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_descriptors_consistent),
        cmocka_unit_test(test_descriptors_match_migrations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
