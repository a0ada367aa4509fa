/* libFuzzer: X-Hmac-Signature parsing and verification.  Input: the header
 * value up to the first newline, the body after it.  A signature made by
 * ss_webhook_sign must always verify; anything else must not crash and must
 * only verify when it decodes to the same MAC. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <webhook/signature.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ss_webhook_key_t *keys[2];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[128];
    if (keys[0] == NULL) {
        keys[0] = ss_webhook_key_new("s\xc3\xa9"
                                     "cret",
                                     err, sizeof(err));
        keys[1] = ss_webhook_key_new("previous", err, sizeof(err));
        if (keys[0] == NULL || keys[1] == NULL)
            abort();
    }
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl ? (size_t)(nl - data) : size;
    const uint8_t *body = nl ? nl + 1 : data + size;
    size_t blen = nl ? size - hlen - 1 : 0;

    char *header = malloc(hlen + 1);
    if (header == NULL)
        return 0;
    memcpy(header, data, hlen);
    header[hlen] = '\0';
    const ss_webhook_key_t *const *k = (const ss_webhook_key_t *const *)keys;
    ss_webhook_sig_result_t r = ss_webhook_verify(k, 2, header, body, blen);
    if (r != SS_WEBHOOK_SIG_OK && r != SS_WEBHOOK_SIG_MISSING && r != SS_WEBHOOK_SIG_MALFORMED &&
        r != SS_WEBHOOK_SIG_MISMATCH)
        abort();
    free(header);

    char good[SS_WEBHOOK_SIG_BUFSIZE];
    ss_webhook_sign(keys[1], body, blen, good);
    if (ss_webhook_verify(k, 2, good, body, blen) != SS_WEBHOOK_SIG_OK)
        abort();
    /* The secret (a key from the fuzzer's bytes) never crashes either. */
    if (hlen > 0 && hlen < 256) {
        char secret[256];
        memcpy(secret, data, hlen);
        secret[hlen] = '\0';
        ss_webhook_key_t *fk = ss_webhook_key_new(secret, err, sizeof(err));
        if (fk != NULL) {
            ss_webhook_sign(fk, body, blen, good);
            const ss_webhook_key_t *one[] = {fk};
            if (ss_webhook_verify(one, 1, good, body, blen) != SS_WEBHOOK_SIG_OK)
                abort();
            ss_webhook_key_free(fk);
        }
    }
    return 0;
}
