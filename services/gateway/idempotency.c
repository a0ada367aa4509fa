/* POST /v1/shipments/{id}/buy with Idempotency-Key: never buy twice.
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
 * Without PostgreSQL no keyed buy happens (503): buying without the record
 * could buy twice. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/shutdown.h"
#include "common/sstime.h"
#include "common/util.h"
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

static void request_hash(const char *shipment_id, const char *body, size_t len, char out[65]) {
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, "POST /v1/shipments/", 19);
    EVP_DigestUpdate(ctx, shipment_id, strlen(shipment_id));
    EVP_DigestUpdate(ctx, "/buy\n", 5);
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

static void count(const char *outcome) {
    char labels[64];
    snprintf(labels, sizeof labels, "outcome=\"%s\"", outcome);
    ss_counter_inc(
        ss_counter("gateway_idempotent_buys_total", "Keyed buy requests by outcome", labels));
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

static int is_bought(json_object *shipment) {
    json_object *label;
    return shipment && json_object_object_get_ex(shipment, "postage_label", &label) &&
           json_object_is_type(label, json_type_object);
}

/* What a buy's result says about EasyPost's state: "completed" (a definite
 * answer: 2xx, or 4xx but 429), "failed" (certainly not bought: 429 or never
 * sent), "unknown" (it may have bought: timeout, cut answer, 5xx). */
static const char *buy_outcome(const ss_ep_result_t *r) {
    if (r->status == SS_EP_OK)
        return "completed";
    if (r->status == SS_EP_HTTP_ERROR && r->http_status == 429)
        return "failed";
    if (r->status == SS_EP_HTTP_ERROR && r->http_status < 500 && r->body)
        return "completed";
    if (r->outcome_unknown)
        return "unknown";
    if (r->status == SS_EP_ERR_CONNECT || r->status == SS_EP_ERR_INVALID)
        return "failed";
    return "unknown";
}

static void lease_ms(char *buf, size_t n) {
    snprintf(buf, n, "%lld", g_gw.cfg.easypost_timeout_ms + g_gw.cfg.buy_lease_margin_ms);
}

/* This request owns the key under the lease token: (re)check, renew, buy,
 * record, answer. */
static void buy_as_owner(gw_answer_t *out, const char *key, const char *token,
                         const char *shipment_id, const char *body, size_t len, int check_first) {
    ss_ep_result_t r;
    if (check_first) {
        ss_ep_shipment_retrieve(g_gw.ep, shipment_id, &r);
        gw_count_ep_call("shipment_retrieve", &r);
        if (r.status == SS_EP_OK && is_bought(r.json)) {
            /* An earlier attempt bought it but its answer was lost. */
            finish(key, "completed", r.http_status, r.body);
            gw_publish("shipment.purchased", &r);
            gw_answer_from_ep(out, &r);
            ss_ep_result_free(&r);
            count("recovered");
            return;
        }
        if (r.status != SS_EP_OK) {
            /* Not knowing is not "not bought": buying now could buy twice.  The
             * row keeps its state; the next attempt checks again. */
            ss_log_kv(SS_LOG_WARN, "buy takeover: could not check the shipment, not buying",
                      "shipment_id", shipment_id, "error", r.errstr, NULL);
            ss_ep_result_free(&r);
            char err[256];
            int unavailable;
            const char *rp[] = {key, token};
            PQclear(gw_db_query_prepared(GW_STMT_IDEM_RELEASE, release_sql, 2, rp, &unavailable,
                                         err, sizeof err));
            count("check_failed");
            gw_answer_error(out, 503, "easypost_check_failed",
                            "an earlier attempt with this Idempotency-Key may have "
                            "bought the shipment and EasyPost could not be asked; "
                            "nothing was bought, retry later",
                            "Retry-After: 5\r\n");
            return;
        }
        ss_ep_result_free(&r);
    }
    char lease[32], err[256];
    lease_ms(lease, sizeof lease);
    const char *np[] = {key, token, lease};
    int unavailable;
    PGresult *lr =
        gw_db_query_prepared(GW_STMT_IDEM_RENEW, renew_sql, 3, np, &unavailable, err, sizeof err);
    int held = lr && PQntuples(lr) == 1;
    PQclear(lr);
    if (!held) {
        count(unavailable ? "unavailable" : "lease_lost");
        if (unavailable)
            gw_answer_error(out, 503, "idempotency_unavailable",
                            "the idempotency store (PostgreSQL) is unavailable; "
                            "nothing was bought, retry later",
                            "Retry-After: 5\r\n");
        else
            gw_answer_error(out, 409, "idempotency_in_progress",
                            "another request with this Idempotency-Key took it over",
                            "Retry-After: 1\r\n");
        return;
    }
    ss_ep_shipment_buy(g_gw.ep, shipment_id, body, len, &r);
    gw_count_ep_call("buy", &r);
    const char *outcome = buy_outcome(&r);
    int final = strcmp(outcome, "completed") == 0;
    finish(key, outcome, final ? r.http_status : 0, final ? r.body : NULL);
    if (r.status == SS_EP_OK && r.json)
        gw_publish("shipment.purchased", &r);
    count(final ? "bought" : outcome);
    gw_answer_from_ep(out, &r);
    ss_ep_result_free(&r);
}

static void plain_buy(gw_answer_t *out, const char *shipment_id, const char *body, size_t len) {
    ss_ep_result_t r;
    ss_ep_shipment_buy(g_gw.ep, shipment_id, body, len, &r);
    gw_count_ep_call("buy", &r);
    if (r.status == SS_EP_OK && r.json)
        gw_publish("shipment.purchased", &r);
    gw_answer_from_ep(out, &r);
    ss_ep_result_free(&r);
}

int gw_buy(struct mg_connection *c, const char *shipment_id, const char *body, size_t len) {
    gw_answer_t a;
    gw_buy_do(shipment_id, body, len, mg_get_header(c, "Idempotency-Key"), &a);
    int st = gw_answer_send(c, &a);
    gw_answer_free(&a);
    return st;
}

void gw_buy_do(const char *shipment_id, const char *body, size_t len, const char *key,
               gw_answer_t *out) {
    memset(out, 0, sizeof *out);
    if (!g_gw.ep) {
        gw_answer_error(out, 503, "easypost_not_configured",
                        "EASYPOST_API_KEY is not set on this gateway", NULL);
        return;
    }
    if (!key) {
        plain_buy(out, shipment_id, body, len);
        return;
    }
    if (!valid_key(key)) {
        gw_answer_error(out, 400, "invalid_idempotency_key",
                        "Idempotency-Key must be 1 to 255 visible ASCII characters", NULL);
        return;
    }
    char hash[65], err[256];
    request_hash(shipment_id, body, len, hash);
    int64_t deadline = ss_time_mono_usec() + g_gw.cfg.idempotency_wait_ms * 1000;
    int delay_ms = 20;
    for (;;) {
        int unavailable;
        char lease[32];
        lease_ms(lease, sizeof lease);
        const char *cp[] = {key, hash, shipment_id, lease};
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
            buy_as_owner(out, key, token, shipment_id, body, len, !inserted);
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
            count("mismatch");
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
            count("replayed");
            return;
        }
        PQclear(r);
        /* in_progress or unknown within its lease (or failed, which the next
         * claim takes over). */
        if (ss_time_mono_usec() >= deadline || ss_shutdown_requested()) {
            count("in_progress");
            gw_answer_error(out, 409, "idempotency_in_progress",
                            "a request with this Idempotency-Key is still in progress",
                            "Retry-After: 1\r\n");
            return;
        }
        ss_shutdown_wait(delay_ms);
        if (delay_ms < 250)
            delay_ms *= 2;
    }
}
