/* Buys that never buy twice: POST /v2/shipments/{id}/buy, /v2/batches/{id}/buy
 * and /v2/pickups/{id}/buy (/v1 too), with or without Idempotency-Key.
 *
 * Without a client key the buy takes an implicit one, "buy <collection>/<id>"
 * (the space keeps it out of reach of client keys), whose request hash is the
 * object alone: every keyless buy of one object is the same buy, so
 * concurrent and retried ones make one purchase.  A definite refusal (4xx) is
 * recorded 'failed' instead of 'completed' for it: the corrected request (an
 * other rate) goes on, after checking that nothing was bought.
 *
 * The key lives in PostgreSQL (idempotency_keys) so that every gateway
 * replica agrees.  A request claims its key with one INSERT … ON CONFLICT and
 * holds it under a lease (lease_until = now + EASYPOST_TIMEOUT_MS +
 * GATEWAY_BUY_LEASE_MARGIN_MS): longer than the longest EasyPost call the
 * claiming request can still be making.
 *   - a new key is inserted (status in_progress): this request buys;
 *   - the buy's outcome decides what the row says: 'completed' (EasyPost gave
 *     a definite answer, replayed byte for byte), 'failed' (EasyPost certainly
 *     did not buy: 429, or the request was never sent) or 'unknown' (timeout,
 *     connection cut mid-answer, 5xx: it may have bought);
 *   - a 'failed' key, an expired one (24 h), or an in_progress / unknown one
 *     whose lease ran out is taken over: the new owner first retrieves the
 *     shipment — bought already: that is the answer; not bought: it buys; the
 *     retrieve itself failed: 503 and nothing is bought (unknown is not "not
 *     bought");
 *   - otherwise the row belongs to someone else: a different request body
 *     for the same key is refused (422), a completed one is replayed, and one
 *     in progress or unknown within its lease is waited for, then 409.
 * Without PostgreSQL no buy happens, key or not (503): buying without the record
 * could buy twice. */
#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/shutdown.h"
#include "common/sstime.h"
#include "common/util.h"
#include "envelope/json_scan.h"
#include "gateway.h"
#include "http/server.h"

#define GW_MAX_KEY_LEN 255

/* $4: the lease in milliseconds.  Rows from before migration 0004 have no
 * lease_until: their claim lasted 120 s from updated_at. */
static const char claim_sql[] =
    "INSERT INTO idempotency_keys AS k (key, request_hash, shipment_id, lease_until) "
    "VALUES ($1, $2, $3, now() + $4::bigint * interval '1 millisecond') "
    "ON CONFLICT (key) DO UPDATE SET request_hash = EXCLUDED.request_hash, status = 'in_progress', "
    "  shipment_id = EXCLUDED.shipment_id, response_status = NULL, response_body = NULL, "
    "  updated_at = now(), lease_until = EXCLUDED.lease_until, "
    "  expires_at = CASE WHEN k.expires_at < now() THEN now() + interval '24 hours' ELSE "
    "k.expires_at END "
    "WHERE k.expires_at < now() "
    "   OR (k.request_hash = EXCLUDED.request_hash AND (k.status = 'failed' OR "
    "       (k.status IN ('in_progress', 'unknown') AND "
    "        coalesce(k.lease_until, k.updated_at + interval '120 seconds') < now()))) "
    "RETURNING (xmax = 0) AS inserted, lease_until::text";

/* Renews the lease just before the buy, only while this request still holds
 * it: lease_until is the fencing token (the value this request set).  The
 * check before a takeover may take longer than the margin; a request whose
 * lease was taken over in the meantime finds no row and does not buy. */
static const char renew_sql[] =
    "UPDATE idempotency_keys SET lease_until = now() + $3::bigint * interval '1 millisecond', "
    "updated_at = now() WHERE key = $1 AND status = 'in_progress' AND lease_until = "
    "$2::timestamptz RETURNING lease_until::text";

static const char read_sql[] = "SELECT request_hash, status, response_status, response_body FROM "
                               "idempotency_keys WHERE key = $1";

static const char finish_sql[] =
    "UPDATE idempotency_keys SET status = $2, response_status = $3::int, response_body = $4, "
    "updated_at = now() WHERE key = $1";

/* A takeover whose check failed sent no buy: the key goes back to unknown
 * with its lease ended, so that the next attempt may check again at once. */
static const char release_sql[] =
    "UPDATE idempotency_keys SET status = 'unknown', lease_until = now(), updated_at = now() "
    "WHERE key = $1 AND status = 'in_progress' AND lease_until = $2::timestamptz";

/* What differs between the buys: the collection, the metrics names, and
 * what says that an object was bought. */
typedef struct {
    const char *collection; /* "shipments" */
    const char *op, *retrieve_op;
} buy_kind_t;

static const buy_kind_t kinds[] = {
    [GW_BUY_SHIPMENT] = {"shipments", "buy", "shipment_retrieve"},
    [GW_BUY_BATCH] = {"batches", "batch_buy", "batch_retrieve"},
    [GW_BUY_PICKUP] = {"pickups", "pickup_buy", "pickup_retrieve"},
};

/* A client's key hashes its request (method, path, body): the same key with
 * another request is refused.  An implicit key (no Idempotency-Key) stands
 * for the object alone: any buy of it is the same buy. */
static void request_hash(const buy_kind_t *k, const char *id, const char *body, size_t len,
                         int implicit, char out[65]) {
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    if (implicit)
        EVP_DigestUpdate(ctx, "implicit ", 9);
    /* "/v1/": the text keys stored before /v2 were hashed with. */
    EVP_DigestUpdate(ctx, "POST /v1/", 9);
    EVP_DigestUpdate(ctx, k->collection, strlen(k->collection));
    EVP_DigestUpdate(ctx, "/", 1);
    EVP_DigestUpdate(ctx, id, strlen(id));
    EVP_DigestUpdate(ctx, "/buy\n", 5);
    if (!implicit)
        EVP_DigestUpdate(ctx, body, len);
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    ss_hex_encode(md, 32, out);
}

static int valid_key(const char *k) {
    size_t n = strlen(k);
    if (n == 0 || n > GW_MAX_KEY_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (k[i] < 0x21 || k[i] > 0x7e)
            return 0;
    return 1;
}

/* Buys with a client's key in gateway_idempotent_buys_total (as before
 * implicit keys), the others in gateway_implicit_key_buys_total. */
static void count(const char *outcome, int implicit) {
    char labels[64];
    snprintf(labels, sizeof labels, "outcome=\"%s\"", outcome);
    ss_counter_inc(implicit ? ss_counter("gateway_implicit_key_buys_total",
                                         "Buys without an Idempotency-Key (protected by the "
                                         "object's implicit key) by outcome",
                                         labels)
                            : ss_counter("gateway_idempotent_buys_total",
                                         "Keyed buy requests by outcome", labels));
}

static void finish(const char *key, const char *state, long http_status, const char *body) {
    char st[16], err[256];
    snprintf(st, sizeof st, "%ld", http_status);
    const char *params[] = {key, state, http_status ? st : NULL, body};
    int unavailable;
    PGresult *r = gw_db_query_prepared(GW_STMT_IDEM_FINISH, finish_sql, 4, params, &unavailable,
                                       err, sizeof err);
    if (!r) /* the claim goes stale and the next retry re-checks EasyPost */
        ss_log_kv(SS_LOG_ERROR, "could not record the buy's outcome", "error", err, NULL);
    PQclear(r);
}

/* Bought (or being bought) by an earlier attempt: a Shipment with a
 * postage_label; a Batch purchasing, purchased or past it; a Pickup
 * scheduled. */
static int is_bought(gw_buy_kind_t kind, json_object *o) {
    json_object *v;
    if (!o)
        return 0;
    if (kind == GW_BUY_SHIPMENT)
        return json_object_object_get_ex(o, "postage_label", &v) &&
               json_object_is_type(v, json_type_object);
    const char *st = ss_ep_json_str(o, kind == GW_BUY_BATCH ? "state" : "status");
    if (!st)
        return 0;
    if (kind == GW_BUY_BATCH)
        return !strcmp(st, "purchasing") || !strcmp(st, "purchased") ||
               !strcmp(st, "label_generating") || !strcmp(st, "label_generated");
    return !strcmp(st, "scheduled");
}

/* What a buy's result says about EasyPost's state: "completed" (a definite
 * answer: 2xx, or 4xx but 429), "failed" (certainly not bought: 429 or never
 * sent), "unknown" (it may have bought: timeout, cut answer, 5xx).  With an
 * implicit key a definite refusal (4xx) is "failed": the key stands for the
 * object, and a corrected request (another rate) must not get the refusal
 * replayed. */
static const char *buy_outcome(const ss_ep_result_t *r, int implicit) {
    if (r->status == SS_EP_OK)
        return "completed";
    if (r->status == SS_EP_HTTP_ERROR && r->http_status == 429)
        return "failed";
    if (r->status == SS_EP_HTTP_ERROR && r->http_status < 500 && r->body)
        return implicit ? "failed" : "completed";
    if (r->outcome_unknown)
        return "unknown";
    if (r->status == SS_EP_ERR_CONNECT || r->status == SS_EP_ERR_INVALID)
        return "failed";
    return "unknown";
}

static void lease_ms(char *buf, size_t n) {
    snprintf(buf, n, "%lld", g_gw.cfg.easypost_timeout_ms + g_gw.cfg.buy_lease_margin_ms);
}

typedef struct {
    gw_buy_kind_t kind;
    const buy_kind_t *k;
    const char *id, *key;
    int implicit;
    char path[192]; /* "/shipments/<id>/buy" */
} buy_t;

/* The API's root segment of EASYPOST_API_BASE ("/v2" of
 * "https://api.easypost.com/v2", "" for a base without a path), as the
 * client's ss_ep_forward joins paths to it; -1 when it cannot be forwarded
 * that way (the buy then goes through ss_ep_request). */
static int base_segment(char *out, size_t size) {
    const char *base = g_gw.cfg.easypost_api_base ? g_gw.cfg.easypost_api_base : "";
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    const char *scheme_end = strstr(base, "://");
    const char *first =
        scheme_end ? memchr(scheme_end + 3, '/', n - (size_t)(scheme_end + 3 - base)) : NULL;
    const char *last = first;
    for (const char *p = first; p && p < base + n; p++)
        if (*p == '/')
            last = p;
    size_t sl = last ? (size_t)(base + n - last) : 0;
    if (sl >= size)
        return -1;
    for (size_t i = 0; i < sl; i++)
        if (!isalnum((unsigned char)last[i]) && !strchr("/-_.~", last[i]))
            return -1;
    memcpy(out, last ? last : "", sl);
    out[sl] = '\0';
    return 0;
}

/* POSTs the buy.  EasyPost's 2xx answer is taken as it came (ss_ep_forward,
 * not parsed into a json-c tree: nothing here reads its fields) and checked
 * with the envelope's scanner to be one JSON object, as ss_ep_request would:
 * otherwise SS_EP_ERR_BAD_RESPONSE, the outcome unknown. */
static void buy_request(const buy_t *b, const char *body, size_t len, ss_ep_result_t *r) {
    char path[256];
    if (base_segment(path, 64) != 0) {
        ss_ep_request(g_gw.ep, "POST", b->path, body, len, SS_EP_RETRY_NEVER_SENT, r);
        return;
    }
    snprintf(path + strlen(path), sizeof path - strlen(path), "%s", b->path);
    ss_ep_forward_t fw = {
        .method = "POST", .path = path, .body = body, .len = len, .retry = SS_EP_RETRY_NEVER_SENT};
    ss_ep_forward(g_gw.ep, &fw, r);
    const char *why = NULL;
    if (r->status == SS_EP_OK &&
        (!r->body || ss_json_check(r->body, r->body_len, SS_ENVELOPE_SPAN_MAX_DEPTH, &why) != 0 ||
         ss_json_root(r->body, r->body_len).p[0] != '{')) {
        r->status = SS_EP_ERR_BAD_RESPONSE;
        snprintf(r->errstr, sizeof r->errstr,
                 "EasyPost answered HTTP %ld with a body that is not a JSON object (%zu bytes)",
                 r->http_status, r->body_len);
    }
}

/* The answer of a checked 2xx buy: EasyPost's status and body. */
static void answer_from_ok(gw_answer_t *a, const ss_ep_result_t *r) {
    a->status = (int)r->http_status;
    a->headers[0] = '\0';
    a->body = malloc(r->body_len + 1);
    if (!a->body) {
        gw_answer_error(a, 500, "internal", "out of memory", NULL);
        return;
    }
    memcpy(a->body, r->body, r->body_len + 1);
    a->body_len = r->body_len;
    if (r->retry_after_ms >= 0)
        snprintf(a->headers, sizeof a->headers, "Retry-After: %ld\r\n",
                 (r->retry_after_ms + 999) / 1000);
}

void gw_buy_after_run(gw_buy_after_t *after) {
    if (!after->pending)
        return;
    after->pending = 0;
    finish(after->key, after->state, after->http_status, after->store_body ? after->r.body : NULL);
    if (after->r.status == SS_EP_OK)
        gw_capture("purchased", after->r.body, after->r.body_len);
    ss_ep_result_free(&after->r);
}

/* This request owns the key under the lease token: (re)check, renew, buy,
 * record, answer. */
static void buy_as_owner(gw_answer_t *out, gw_buy_after_t *after, const buy_t *b, const char *token,
                         const char *body, size_t len, int check_first) {
    ss_ep_result_t r;
    const char *key = b->key;
    if (check_first) {
        char path[192];
        snprintf(path, sizeof path, "/%s/%s", b->k->collection, b->id);
        ss_ep_request(g_gw.ep, "GET", path, NULL, 0, SS_EP_RETRY_SAFE, &r);
        gw_count_ep_call(b->k->retrieve_op, &r);
        if (r.status == SS_EP_OK && is_bought(b->kind, r.json)) {
            /* An earlier attempt bought it but its answer was lost. */
            finish(key, "completed", r.http_status, r.body);
            gw_capture("purchased", r.body, r.body_len);
            gw_answer_from_ep(out, &r);
            ss_ep_result_free(&r);
            count("recovered", b->implicit);
            return;
        }
        if (r.status != SS_EP_OK) {
            /* Not knowing is not "not bought": buying now could buy twice.  The
             * row keeps its state; the next attempt checks again. */
            ss_log_kv(SS_LOG_WARN, "buy takeover: could not check the object, not buying", "id",
                      b->id, "error", r.errstr, NULL);
            ss_ep_result_free(&r);
            char err[256];
            int unavailable;
            const char *rp[] = {key, token};
            PQclear(gw_db_query_prepared(GW_STMT_IDEM_RELEASE, release_sql, 2, rp, &unavailable,
                                         err, sizeof err));
            count("check_failed", b->implicit);
            gw_answer_error(out, 503, "easypost_check_failed",
                            "an earlier attempt of this buy may have bought it and EasyPost "
                            "could not be asked; nothing was bought, retry later",
                            "Retry-After: 5\r\n");
            return;
        }
        ss_ep_result_free(&r);
    }
    /* A fresh claim was made a moment ago with the whole lease: renewing it
     * would cost a round trip for nothing.  A takeover checked EasyPost
     * first, which may have taken long: it renews, and the lease is the
     * fencing token. */
    char lease[32], err[256];
    int unavailable = 0, held = 1;
    if (check_first) {
        lease_ms(lease, sizeof lease);
        const char *np[] = {key, token, lease};
        PGresult *lr = gw_db_query_prepared(GW_STMT_IDEM_RENEW, renew_sql, 3, np, &unavailable, err,
                                            sizeof err);
        held = lr && PQntuples(lr) == 1;
        PQclear(lr);
    }
    if (!held) {
        count(unavailable ? "unavailable" : "lease_lost", b->implicit);
        if (unavailable)
            gw_answer_error(out, 503, "idempotency_unavailable",
                            "the idempotency store (PostgreSQL) is unavailable; "
                            "nothing was bought, retry later",
                            "Retry-After: 5\r\n");
        else
            gw_answer_error(out, 409, "idempotency_in_progress",
                            "another request for this buy took it over", "Retry-After: 1\r\n");
        return;
    }
    buy_request(b, body, len, &r);
    gw_count_ep_call(b->k->op, &r);
    const char *outcome = buy_outcome(&r, b->implicit);
    int final = strcmp(outcome, "completed") == 0;
    count(final ? "bought" : outcome, b->implicit);
    if (r.status == SS_EP_OK)
        answer_from_ok(out, &r);
    else
        gw_answer_from_ep(out, &r);
    /* Recorded after the answer is sent (gw_buy_after_run): the claim made
     * before the buy is what keeps it from being repeated; until the record
     * lands, a retry finds the claim in progress and waits for it. */
    snprintf(after->key, sizeof after->key, "%s", key);
    after->state = outcome;
    after->http_status = final ? r.http_status : 0;
    after->store_body = final;
    after->r = r; /* owned by after now */
    after->pending = 1;
}

int gw_buy(struct mg_connection *c, const char *shipment_id, const char *body, size_t len) {
    gw_answer_t a;
    gw_buy_after_t after;
    gw_buy_kind_start(GW_BUY_SHIPMENT, shipment_id, body, len, mg_get_header(c, "Idempotency-Key"),
                      &a, &after);
    int st = gw_answer_send(c, &a);
    gw_answer_free(&a);
    gw_buy_after_run(&after);
    return st;
}

void gw_buy_do(const char *shipment_id, const char *body, size_t len, const char *key,
               gw_answer_t *out) {
    gw_buy_kind_do(GW_BUY_SHIPMENT, shipment_id, body, len, key, out);
}

static int valid_id(const char *id) {
    size_t n = strlen(id);
    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '_' && id[i] != '-')
            return 0;
    return 1;
}

void gw_buy_kind_do(gw_buy_kind_t kind, const char *id, const char *body, size_t len,
                    const char *client_key, gw_answer_t *out) {
    gw_buy_after_t after;
    gw_buy_kind_start(kind, id, body, len, client_key, out, &after);
    gw_buy_after_run(&after);
}

void gw_buy_kind_start(gw_buy_kind_t kind, const char *id, const char *body, size_t len,
                       const char *client_key, gw_answer_t *out, gw_buy_after_t *after) {
    memset(out, 0, sizeof *out);
    memset(after, 0, sizeof *after);
    if (!g_gw.ep) {
        gw_answer_error(out, 503, "easypost_not_configured",
                        "EASYPOST_API_KEY is not set on this gateway", NULL);
        return;
    }
    if (kind != GW_BUY_SHIPMENT && kind != GW_BUY_BATCH && kind != GW_BUY_PICKUP) {
        gw_answer_error(out, 500, "internal", "unknown kind of buy", NULL);
        return;
    }
    if (!id || !valid_id(id)) {
        gw_answer_error(out, 404, "not_found", "no such object", NULL);
        return;
    }
    if (client_key && !valid_key(client_key)) {
        gw_answer_error(out, 400, "invalid_idempotency_key",
                        "Idempotency-Key must be 1 to 255 visible ASCII characters", NULL);
        return;
    }
    buy_t b = {.kind = kind, .k = &kinds[kind], .id = id, .implicit = client_key == NULL};
    snprintf(b.path, sizeof b.path, "/%s/%s/buy", b.k->collection, id);
    /* The implicit key holds a space: no client key can name it. */
    char implicit_key[200];
    snprintf(implicit_key, sizeof implicit_key, "buy %s/%s", b.k->collection, id);
    b.key = client_key ? client_key : implicit_key;
    const char *key = b.key;
    char hash[65], err[256];
    request_hash(b.k, id, body, len, b.implicit, hash);
    int64_t deadline = ss_time_mono_usec() + g_gw.cfg.idempotency_wait_ms * 1000;
    int delay_ms = 20;
    for (;;) {
        int unavailable;
        char lease[32];
        lease_ms(lease, sizeof lease);
        const char *cp[] = {key, hash, id, lease};
        PGresult *r = gw_db_query_prepared(GW_STMT_IDEM_CLAIM, claim_sql, 4, cp, &unavailable, err,
                                           sizeof err);
        if (!r) {
            ss_log_kv(SS_LOG_WARN, "idempotency store unavailable", "error", err, NULL);
            gw_answer_error(out, 503, "idempotency_unavailable",
                            "the idempotency store (PostgreSQL) is unavailable; "
                            "nothing was bought, retry later",
                            "Retry-After: 5\r\n");
            return;
        }
        if (PQntuples(r) == 1) {
            int inserted = PQgetvalue(r, 0, 0)[0] == 't';
            char token[64];
            snprintf(token, sizeof token, "%s", PQgetvalue(r, 0, 1));
            PQclear(r);
            buy_as_owner(out, after, &b, token, body, len, !inserted);
            return;
        }
        PQclear(r);

        const char *rp[] = {key};
        r = gw_db_query_prepared(GW_STMT_IDEM_READ, read_sql, 1, rp, &unavailable, err, sizeof err);
        if (!r) {
            gw_answer_error(out, 503, "idempotency_unavailable",
                            "the idempotency store (PostgreSQL) is unavailable; retry later",
                            "Retry-After: 5\r\n");
            return;
        }
        if (PQntuples(r) == 0) { /* deleted between the two statements: claim again */
            PQclear(r);
            continue;
        }
        const char *stored_hash = PQgetvalue(r, 0, 0);
        const char *state = PQgetvalue(r, 0, 1);
        if (!ss_secure_equal(stored_hash, strlen(stored_hash), hash, strlen(hash))) {
            PQclear(r);
            count("mismatch", b.implicit);
            gw_answer_error(out, 422, "idempotency_key_reused",
                            "this Idempotency-Key was used with a different request", NULL);
            return;
        }
        if (strcmp(state, "completed") == 0) {
            int status = atoi(PQgetvalue(r, 0, 2));
            const char *stored = PQgetvalue(r, 0, 3);
            out->status = status > 0 ? status : 200;
            out->body_len = strlen(stored);
            out->body = malloc(out->body_len + 1);
            if (out->body) {
                memcpy(out->body, stored, out->body_len + 1);
                snprintf(out->headers, sizeof out->headers, "Idempotent-Replayed: true\r\n");
            } else {
                gw_answer_error(out, 500, "internal", "out of memory", NULL);
            }
            PQclear(r);
            count("replayed", b.implicit);
            return;
        }
        PQclear(r);
        /* in_progress or unknown within its lease (or failed, which the next
         * claim takes over). */
        if (ss_time_mono_usec() >= deadline || ss_shutdown_requested()) {
            count("in_progress", b.implicit);
            gw_answer_error(out, 409, "idempotency_in_progress",
                            b.implicit ? "a buy of this object is still in progress"
                                       : "a request with this Idempotency-Key is still in progress",
                            "Retry-After: 1\r\n");
            return;
        }
        ss_shutdown_wait(delay_ms);
        if (delay_ms < 250)
            delay_ms *= 2;
    }
}
