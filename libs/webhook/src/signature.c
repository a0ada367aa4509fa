/* EasyPost webhook signatures (see webhook/signature.h). */
#include <webhook/signature.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <common/util.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistr.h>
#include <uninorm.h>

#define SIG_PREFIX_LEN (sizeof(SS_WEBHOOK_SIG_PREFIX) - 1)
#define SIG_MAC_LEN    32

struct ss_webhook_key {
    uint8_t *bytes; /* NFKD UTF-8, wiped on free */
    size_t len;
};

ss_webhook_key_t *ss_webhook_key_new(const char *secret, char *errstr, size_t errstr_size) {
    if (secret == NULL || secret[0] == '\0') {
        snprintf(errstr, errstr_size, "webhook secret is empty");
        return NULL;
    }
    size_t slen = strlen(secret);
    if (u8_check((const uint8_t *)secret, slen) != NULL) {
        snprintf(errstr, errstr_size, "webhook secret is not valid UTF-8");
        return NULL;
    }
    ss_webhook_key_t *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    size_t outlen = 0;
    /* NULL resultbuf: libunistring mallocs the result; we own it. */
    k->bytes = u8_normalize(UNINORM_NFKD, (const uint8_t *)secret, slen, NULL, &outlen);
    if (k->bytes == NULL || outlen == 0) {
        snprintf(errstr, errstr_size, "cannot normalise webhook secret to NFKD");
        free(k->bytes);
        free(k);
        return NULL;
    }
    k->len = outlen;
    return k;
}

void ss_webhook_key_free(ss_webhook_key_t *k) {
    if (k == NULL)
        return;
    if (k->bytes != NULL) {
        OPENSSL_cleanse(k->bytes, k->len);
        free(k->bytes);
    }
    OPENSSL_cleanse(k, sizeof(*k));
    free(k);
}

static int mac_compute(const ss_webhook_key_t *k, const void *body, size_t len,
                       unsigned char mac[SIG_MAC_LEN]) {
    unsigned int maclen = 0;
    static const unsigned char empty = 0;
    if (body == NULL)
        body = &empty; /* HMAC() wants a non-NULL pointer even for len 0 */
    if (HMAC(EVP_sha256(), k->bytes, (int)k->len, body, len, mac, &maclen) == NULL ||
        maclen != SIG_MAC_LEN)
        return -1;
    return 0;
}

void ss_webhook_sign(const ss_webhook_key_t *k, const void *body, size_t len, char *out) {
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[SIG_MAC_LEN];
    if (mac_compute(k, body, len, mac) != 0) {
        /* Only on an OpenSSL failure: produce something that verifies nothing. */
        memset(mac, 0, sizeof(mac));
    }
    memcpy(out, SS_WEBHOOK_SIG_PREFIX, SIG_PREFIX_LEN);
    char *p = out + SIG_PREFIX_LEN;
    for (size_t i = 0; i < SIG_MAC_LEN; i++) {
        *p++ = hex[mac[i] >> 4];
        *p++ = hex[mac[i] & 0x0f];
    }
    *p = '\0';
    OPENSSL_cleanse(mac, sizeof(mac));
}

/* Parses "hmac-sha256-hex=<64 hex>" with optional surrounding blanks (HTTP
 * optional whitespace).  Hex digits of either case are accepted: EasyPost
 * sends lower case, and decoding to bytes makes the case irrelevant to the
 * comparison.  Timing here depends only on the attacker's own input. */
static int sig_parse(const char *header, unsigned char mac[SIG_MAC_LEN]) {
    while (*header == ' ' || *header == '\t')
        header++;
    if (strncmp(header, SS_WEBHOOK_SIG_PREFIX, SIG_PREFIX_LEN) != 0)
        return -1;
    const char *p = header + SIG_PREFIX_LEN;
    for (size_t i = 0; i < SIG_MAC_LEN; i++) {
        int hi = ss_hex_value((unsigned char)p[2 * i]);
        if (hi < 0)
            return -1;
        int lo = ss_hex_value((unsigned char)p[2 * i + 1]);
        if (lo < 0)
            return -1;
        mac[i] = (unsigned char)(hi << 4 | lo);
    }
    p += 2 * SIG_MAC_LEN;
    while (*p == ' ' || *p == '\t')
        p++;
    return *p == '\0' ? 0 : -1;
}

ss_webhook_sig_result_t ss_webhook_verify(const ss_webhook_key_t *const *keys, size_t nkeys,
                                          const char *header, const void *body, size_t len) {
    if (header == NULL)
        return SS_WEBHOOK_SIG_MISSING;
    const char *h = header;
    while (*h == ' ' || *h == '\t')
        h++;
    if (*h == '\0')
        return SS_WEBHOOK_SIG_MISSING;

    unsigned char given[SIG_MAC_LEN];
    if (sig_parse(header, given) != 0)
        return SS_WEBHOOK_SIG_MALFORMED;

    /* Every key is tried (no early exit), so the time taken does not say
     * which key matched. */
    int matched = 0;
    for (size_t i = 0; i < nkeys; i++) {
        unsigned char want[SIG_MAC_LEN];
        if (keys[i] == NULL)
            continue;
        if (mac_compute(keys[i], body, len, want) == 0)
            matched |= CRYPTO_memcmp(want, given, SIG_MAC_LEN) == 0;
        OPENSSL_cleanse(want, sizeof(want));
    }
    return matched ? SS_WEBHOOK_SIG_OK : SS_WEBHOOK_SIG_MISMATCH;
}
