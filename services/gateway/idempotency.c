/* POST /v1/shipments/{id}/buy with Idempotency-Key.
 *
 * The key lives in PostgreSQL (idempotency_keys) so that every gateway
 * replica agrees.  A request claims its key with one INSERT … ON CONFLICT:
 *   - a new key is inserted (status in_progress): this request buys;
 *   - an expired key (24 h), or one whose earlier attempt failed or was
 *     abandoned (in_progress for over GW_STALE_CLAIM_S), is taken over: this
 *     request first retrieves the shipment — when it is already bought, that
 *     is the answer — and buys only if it is not;
 *   - otherwise the row belongs to someone else: a different request body
 *     for the same key is refused (422), a completed one is replayed byte for
 *     byte, and one still in progress is waited for.
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

#define GW_STALE_CLAIM_S "120"
#define GW_MAX_KEY_LEN   255

static const char claim_sql[] =
    "INSERT INTO idempotency_keys AS k (key, request_hash, shipment_id) VALUES ($1, $2, $3) "
    "ON CONFLICT (key) DO UPDATE SET request_hash = EXCLUDED.request_hash, status = 'in_progress', "
    "  shipment_id = EXCLUDED.shipment_id, response_status = NULL, response_body = NULL, "
    "  updated_at = now(), "
    "  expires_at = CASE WHEN k.expires_at < now() THEN now() + interval '24 hours' ELSE "
    "k.expires_at END "
    "WHERE k.expires_at < now() "
    "   OR (k.request_hash = EXCLUDED.request_hash AND (k.status = 'failed' OR "
    "       (k.status = 'in_progress' AND k.updated_at < now() - interval '" GW_STALE_CLAIM_S
    " seconds'))) "
    "RETURNING (xmax = 0) AS inserted";

static const char read_sql[] = "SELECT request_hash, status, response_status, response_body FROM "
                               "idempotency_keys WHERE key = $1";

static const char finish_sql[] =
    "UPDATE idempotency_keys SET status = $2, response_status = $3::int, response_body = $4, "
    "updated_at = now() WHERE key = $1";

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

/* This request owns the key: (re)check, buy, record, answer. */
static int buy_as_owner(struct mg_connection *c, const char *key, const char *shipment_id,
                        const char *body, size_t len, int check_first) {
    ss_ep_result_t r;
    if (check_first) {
        ss_ep_shipment_retrieve(g_gw.ep, shipment_id, &r);
        if (r.status == SS_EP_OK && is_bought(r.json)) {
            /* An earlier attempt bought it but its answer was lost. */
            finish(key, "completed", r.http_status, r.body);
            int st = gw_send_ep_result(c, &r);
            gw_publish("shipment.purchased", &r);
            ss_ep_result_free(&r);
            count("recovered");
            return st;
        }
        ss_ep_result_free(&r);
    }
    ss_ep_shipment_buy(g_gw.ep, shipment_id, body, len, &r);
    /* A definite answer from EasyPost (2xx, 4xx but 429) is final: replayed
     * for the same key.  5xx, 429 and transport failures are not: the next
     * request with this key checks EasyPost and tries again. */
    int final = (r.status == SS_EP_OK) || (r.status == SS_EP_HTTP_ERROR && r.http_status < 500 &&
                                           r.http_status != 429 && r.body);
    finish(key, final ? "completed" : "failed", final ? r.http_status : 0, final ? r.body : NULL);
    int st = gw_send_ep_result(c, &r);
    if (r.status == SS_EP_OK && r.json)
        gw_publish("shipment.purchased", &r);
    count(final ? "bought" : "failed");
    ss_ep_result_free(&r);
    return st;
}

static int plain_buy(struct mg_connection *c, const char *shipment_id, const char *body,
                     size_t len) {
    ss_ep_result_t r;
    ss_ep_shipment_buy(g_gw.ep, shipment_id, body, len, &r);
    int st = gw_send_ep_result(c, &r);
    if (r.status == SS_EP_OK && r.json)
        gw_publish("shipment.purchased", &r);
    ss_ep_result_free(&r);
    return st;
}

int gw_buy(struct mg_connection *c, const char *shipment_id, const char *body, size_t len) {
    const char *key = mg_get_header(c, "Idempotency-Key");
    if (!key)
        return plain_buy(c, shipment_id, body, len);
    if (!valid_key(key))
        return ss_http_send_error(c, 400, "invalid_idempotency_key",
                                  "Idempotency-Key must be 1 to 255 visible ASCII characters");
    char hash[65], err[256];
    request_hash(shipment_id, body, len, hash);
    int64_t deadline = ss_time_mono_usec() + g_gw.cfg.idempotency_wait_ms * 1000;
    int delay_ms = 20;
    for (;;) {
        int unavailable;
        const char *cp[] = {key, hash, shipment_id};
        PGresult *r = gw_db_query_prepared(GW_STMT_IDEM_CLAIM, claim_sql, 3, cp, &unavailable, err,
                                           sizeof err);
        if (!r) {
            ss_log_kv(SS_LOG_WARN, "idempotency store unavailable", "error", err, NULL);
            return ss_http_send_error_h(c, 503, "idempotency_unavailable",
                                        "the idempotency store (PostgreSQL) is unavailable; "
                                        "nothing was bought, retry later",
                                        "Retry-After: 5\r\n");
        }
        if (PQntuples(r) == 1) {
            int inserted = PQgetvalue(r, 0, 0)[0] == 't';
            PQclear(r);
            return buy_as_owner(c, key, shipment_id, body, len, !inserted);
        }
        PQclear(r);

        const char *rp[] = {key};
        r = gw_db_query_prepared(GW_STMT_IDEM_READ, read_sql, 1, rp, &unavailable, err, sizeof err);
        if (!r)
            return ss_http_send_error_h(
                c, 503, "idempotency_unavailable",
                "the idempotency store (PostgreSQL) is unavailable; retry later",
                "Retry-After: 5\r\n");
        if (PQntuples(r) == 0) { /* deleted between the two statements: claim again */
            PQclear(r);
            continue;
        }
        const char *stored_hash = PQgetvalue(r, 0, 0);
        const char *state = PQgetvalue(r, 0, 1);
        if (!ss_secure_equal(stored_hash, strlen(stored_hash), hash, strlen(hash))) {
            PQclear(r);
            count("mismatch");
            return ss_http_send_error(c, 422, "idempotency_key_reused",
                                      "this Idempotency-Key was used with a different request");
        }
        if (strcmp(state, "completed") == 0) {
            int status = atoi(PQgetvalue(r, 0, 2));
            const char *stored = PQgetvalue(r, 0, 3);
            int st = ss_http_send_json(c, status > 0 ? status : 200, stored, strlen(stored),
                                       "Idempotent-Replayed: true\r\n");
            PQclear(r);
            count("replayed");
            return st;
        }
        PQclear(r);
        /* in_progress elsewhere (or failed, which the next claim takes over). */
        if (ss_time_mono_usec() >= deadline || ss_shutdown_requested()) {
            count("in_progress");
            return ss_http_send_error_h(c, 409, "idempotency_in_progress",
                                        "a request with this Idempotency-Key is still in progress",
                                        "Retry-After: 1\r\n");
        }
        ss_shutdown_wait(delay_ms);
        if (delay_ms < 250)
            delay_ms *= 2;
    }
}
