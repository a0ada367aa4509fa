/* EasyPost webhook signatures: X-Hmac-Signature: hmac-sha256-hex=<hex>, the
 * HMAC-SHA256 of the raw body keyed by the secret in Unicode NFKD as UTF-8.
 * Used by the webhook receiver to verify and by easypost-sim to sign, so the
 * two can never disagree. */
#ifndef SS_WEBHOOK_SIGNATURE_H
#define SS_WEBHOOK_SIGNATURE_H

#include <stddef.h>

#define SS_WEBHOOK_SIG_PREFIX  "hmac-sha256-hex="
/* prefix (16) + 64 hex + NUL */
#define SS_WEBHOOK_SIG_BUFSIZE 81

/* A secret turned into its HMAC key (NFKD, UTF-8).  Opaque; holds no copy
 * of the secret in any other form. */
typedef struct ss_webhook_key ss_webhook_key_t;

/* Normalises secret (UTF-8) to NFKD.  Returns the key (free with
 * ss_webhook_key_free, which wipes it), or NULL with errstr when the secret
 * is not valid UTF-8 or is empty. */
ss_webhook_key_t *ss_webhook_key_new(const char *secret, char *errstr, size_t errstr_size);
void ss_webhook_key_free(ss_webhook_key_t *k);

/* Writes "hmac-sha256-hex=<64 hex>" for body into out (SS_WEBHOOK_SIG_BUFSIZE). */
void ss_webhook_sign(const ss_webhook_key_t *k, const void *body, size_t len, char *out);

typedef enum {
    SS_WEBHOOK_SIG_OK = 0,
    SS_WEBHOOK_SIG_MISSING,   /* no header value */
    SS_WEBHOOK_SIG_MALFORMED, /* not "hmac-sha256-hex=" + 64 hex */
    SS_WEBHOOK_SIG_MISMATCH,  /* well-formed, matches no key */
} ss_webhook_sig_result_t;

/* Verifies header (may be NULL) against body with each key in turn (current
 * secret first, then the previous one during rotation); every comparison is
 * constant time. */
ss_webhook_sig_result_t ss_webhook_verify(const ss_webhook_key_t *const *keys, size_t nkeys,
                                          const char *header, const void *body, size_t len);

#endif
