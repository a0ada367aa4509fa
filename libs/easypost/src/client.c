/* EasyPost client: see easypost/client.h for the contract. */
#include <easypost/client.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include <common/backoff.h>
#include <common/sstime.h>
#include <envelope/json_scan.h>

#ifndef SS_VERSION
#define SS_VERSION "0"
#endif

struct ss_ep_client {
    char *base;    /* without trailing '/' */
    char *root;    /* base without its last path segment (ss_ep_forward) */
    char *userpwd; /* "key:" — curl's Basic form; wiped on free */
    char *user_agent;
    long connect_timeout_ms;
    long timeout_ms;
    int max_retries;
    int backoff_base_ms;
    int backoff_max_ms;
    int retry_after_max_ms;
    int retry_after_strict; /* retry_after_max_ms was configured: never retry sooner than asked */
    size_t max_body;
};

/* ---- the CURL handle pool --------------------------------------------------
 *
 * A bounded pool shared by every thread and client of the process, not one
 * handle per thread: a service may run far more threads than it should hold
 * connections to EasyPost (the gateway runs one per open client connection,
 * idle ones included).  A handle keeps its connections alive between calls,
 * so the pool is also the bound on connections to EasyPost.  A call waits
 * for a free handle; each call ends within its own timeouts, so the wait is
 * bounded by them. */

#define EP_POOL_MAX 1024

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_init_ok;
static pthread_mutex_t g_pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_pool_cv = PTHREAD_COND_INITIALIZER;
static CURL *g_pool[EP_POOL_MAX]; /* idle handles */
static int g_pool_idle, g_pool_made, g_pool_size = SS_EP_DEFAULT_CONNECTIONS;

static void global_init(void) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return;
    g_init_ok = 1;
}

static CURL *borrow_handle(void) {
    pthread_mutex_lock(&g_pool_mu);
    while (g_pool_idle == 0 && g_pool_made >= g_pool_size)
        pthread_cond_wait(&g_pool_cv, &g_pool_mu);
    CURL *h = NULL;
    if (g_pool_idle > 0) {
        h = g_pool[--g_pool_idle];
    } else {
        g_pool_made++;
        pthread_mutex_unlock(&g_pool_mu);
        h = curl_easy_init();
        if (h)
            return h;
        pthread_mutex_lock(&g_pool_mu);
        g_pool_made--;
        pthread_cond_signal(&g_pool_cv);
    }
    pthread_mutex_unlock(&g_pool_mu);
    return h;
}

static void return_handle(CURL *h) {
    pthread_mutex_lock(&g_pool_mu);
    if (g_pool_made > g_pool_size) { /* the pool was made smaller meanwhile */
        g_pool_made--;
        pthread_mutex_unlock(&g_pool_mu);
        curl_easy_cleanup(h);
        return;
    }
    g_pool[g_pool_idle++] = h;
    pthread_cond_signal(&g_pool_cv);
    pthread_mutex_unlock(&g_pool_mu);
}

void ss_ep_thread_cleanup(void) {}

/* ---- small helpers --------------------------------------------------------- */

static double mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int id_valid(const char *id) {
    if (!id || !*id)
        return 0;
    size_t n = 0;
    for (const char *p = id; *p; p++, n++) {
        if (n >= 128)
            return 0;
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
            return 0;
    }
    return 1;
}

const char *ss_ep_status_name(ss_ep_status_t s) {
    switch (s) {
    case SS_EP_OK: return "ok";
    case SS_EP_HTTP_ERROR: return "http_error";
    case SS_EP_ERR_CONNECT: return "connect";
    case SS_EP_ERR_TIMEOUT: return "timeout";
    case SS_EP_ERR_TRANSPORT: return "transport";
    case SS_EP_ERR_TOO_LARGE: return "too_large";
    case SS_EP_ERR_BAD_RESPONSE: return "bad_response";
    case SS_EP_ERR_INVALID: return "invalid";
    case SS_EP_ERR_INTERNAL: return "internal";
    }
    return "unknown";
}

/* ---- client ---------------------------------------------------------------- */

int ss_ep_url_check(const char *url, char *errstr, size_t errstr_size) {
    CURLU *u = curl_url();
    char *scheme = NULL;
    int rc = -1;
    if (!u) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK) {
        snprintf(errstr, errstr_size, "%s", curl_url_strerror(uc));
        goto done;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        snprintf(errstr, errstr_size, "expected an http:// or https:// URL");
        goto done;
    }
    rc = 0;
done:
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}

ss_ep_client_t *ss_ep_client_new(const ss_ep_config_t *cfg, char *errstr, size_t errstr_size) {
    if (!cfg || !cfg->api_key || !*cfg->api_key) {
        snprintf(errstr, errstr_size, "EasyPost API key is not set");
        return NULL;
    }
    const char *base = (cfg->api_base && *cfg->api_base) ? cfg->api_base : SS_EP_DEFAULT_API_BASE;
    char why[128];
    if (ss_ep_url_check(base, why, sizeof why) != 0) {
        snprintf(errstr, errstr_size, "EasyPost API base '%.100s': %s", base, why);
        return NULL;
    }
    pthread_once(&g_once, global_init);
    if (!g_init_ok) {
        snprintf(errstr, errstr_size, "libcurl initialisation failed");
        return NULL;
    }
    if (cfg->max_connections > 0) {
        pthread_mutex_lock(&g_pool_mu);
        g_pool_size = cfg->max_connections < EP_POOL_MAX ? cfg->max_connections : EP_POOL_MAX;
        pthread_cond_broadcast(&g_pool_cv);
        pthread_mutex_unlock(&g_pool_mu);
    }
    ss_ep_client_t *c = calloc(1, sizeof(*c));
    if (!c)
        goto oom;
    c->base = strdup(base);
    if (!c->base)
        goto oom;
    size_t bl = strlen(c->base);
    while (bl > 0 && c->base[bl - 1] == '/')
        c->base[--bl] = '\0';
    /* "https://host/v2" -> "https://host"; a base without a path is its own root. */
    c->root = strdup(c->base);
    if (!c->root)
        goto oom;
    {
        char *scheme_end = strstr(c->root, "://");
        char *first = scheme_end ? strchr(scheme_end + 3, '/') : NULL;
        char *last = strrchr(c->root, '/');
        if (first && last >= first)
            *last = '\0';
    }
    size_t kl = strlen(cfg->api_key);
    c->userpwd = malloc(kl + 2);
    if (!c->userpwd)
        goto oom;
    memcpy(c->userpwd, cfg->api_key, kl);
    c->userpwd[kl] = ':';
    c->userpwd[kl + 1] = '\0';
    c->user_agent = strdup(cfg->user_agent ? cfg->user_agent : "shipstream/" SS_VERSION);
    if (!c->user_agent)
        goto oom;
    c->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
    c->max_retries = cfg->max_retries == 0 ? 2 : (cfg->max_retries < 0 ? 0 : cfg->max_retries);
    c->backoff_base_ms = cfg->backoff_base_ms > 0 ? cfg->backoff_base_ms : 100;
    c->backoff_max_ms = cfg->backoff_max_ms > 0 ? cfg->backoff_max_ms : 2000;
    c->max_body = cfg->max_body > 0 ? cfg->max_body : SS_EP_DEFAULT_MAX_BODY;
    c->retry_after_max_ms =
        cfg->retry_after_max_ms > 0 ? cfg->retry_after_max_ms : c->backoff_max_ms;
    c->retry_after_strict = cfg->retry_after_max_ms > 0;
    return c;
oom:
    ss_ep_client_free(c);
    snprintf(errstr, errstr_size, "out of memory");
    return NULL;
}

void ss_ep_client_free(ss_ep_client_t *c) {
    if (!c)
        return;
    if (c->userpwd) {
        volatile char *p = c->userpwd;
        while (*p)
            *p++ = 0;
        free(c->userpwd);
    }
    free(c->base);
    free(c->root);
    free(c->user_agent);
    free(c);
}

/* ---- results ----------------------------------------------------------------- */

void ss_ep_result_free(ss_ep_result_t *r) {
    if (!r)
        return;
    free(r->body);
    if (r->json)
        json_object_put(r->json);
    free(r->error_code);
    free(r->error_message);
    for (size_t i = 0; i < r->n_field_errors; i++) {
        free(r->field_errors[i].field);
        free(r->field_errors[i].message);
        free(r->field_errors[i].suggestion);
    }
    free(r->field_errors);
    r->body = NULL;
    r->json = NULL;
    r->error_code = r->error_message = NULL;
    r->field_errors = NULL;
    r->n_field_errors = 0;
    r->body_len = 0;
}

const char *ss_ep_json_str(json_object *obj, const char *key) {
    json_object *v;
    if (!obj || !json_object_is_type(obj, json_type_object))
        return NULL;
    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* Strict parse of the whole body; NULL when not JSON. */
static json_object *parse_json(const char *body, size_t len) {
    if (!body || len == 0 || len > INT32_MAX)
        return NULL;
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return NULL;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error err = json_tokener_get_error(tok);
    if (err != json_tokener_success) {
        if (o)
            json_object_put(o);
        o = NULL;
    } else if (json_tokener_get_parse_end(tok) < len) {
        /* trailing bytes: allow only whitespace */
        for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
            if (!isspace((unsigned char)body[i])) {
                json_object_put(o);
                o = NULL;
                break;
            }
        }
    }
    json_tokener_free(tok);
    return o;
}

/* Fills error_* from {"error":{"code","message","errors":[...]}}.  Missing
 * pieces stay NULL; a body without "error" leaves everything NULL. */
static int parse_error(ss_ep_result_t *r) {
    json_object *err, *errors;
    if (!r->json || !json_object_is_type(r->json, json_type_object))
        return 0;
    if (!json_object_object_get_ex(r->json, "error", &err) ||
        !json_object_is_type(err, json_type_object))
        return 0;
    const char *code = ss_ep_json_str(err, "code");
    const char *msg = ss_ep_json_str(err, "message");
    if ((code && !(r->error_code = strdup(code))) || (msg && !(r->error_message = strdup(msg))))
        return -1;
    if (!json_object_object_get_ex(err, "errors", &errors) ||
        !json_object_is_type(errors, json_type_array))
        return 0;
    size_t n = json_object_array_length(errors);
    if (n == 0)
        return 0;
    r->field_errors = calloc(n, sizeof(*r->field_errors));
    if (!r->field_errors)
        return -1;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(errors, i);
        ss_ep_field_error_t *fe = &r->field_errors[r->n_field_errors];
        if (json_object_is_type(e, json_type_string)) {
            if (!(fe->message = strdup(json_object_get_string(e))))
                return -1;
        } else if (json_object_is_type(e, json_type_object)) {
            const char *f = ss_ep_json_str(e, "field");
            const char *m = ss_ep_json_str(e, "message");
            const char *s = ss_ep_json_str(e, "suggestion");
            if ((f && !(fe->field = strdup(f))) || (m && !(fe->message = strdup(m))) ||
                (s && !(fe->suggestion = strdup(s))))
                return -1;
        } else {
            continue; /* neither recorded format: skipped */
        }
        r->n_field_errors++;
    }
    return 0;
}

/* Classifies an HTTP answer whose body is already in r->body.  raw: a 2xx
 * is OK whatever its body, and is not parsed (ss_ep_forward). */
static int classify_answer(ss_ep_result_t *r, int raw) {
    if (raw && r->http_status >= 200 && r->http_status < 300) {
        r->status = SS_EP_OK;
        r->errstr[0] = '\0';
        return 0;
    }
    r->json = parse_json(r->body, r->body_len);
    if (r->http_status >= 200 && r->http_status < 300) {
        if (!r->json || !json_object_is_type(r->json, json_type_object)) {
            r->status = SS_EP_ERR_BAD_RESPONSE;
            snprintf(r->errstr, sizeof(r->errstr),
                     "EasyPost answered HTTP %ld with a body that is not a JSON object (%zu bytes)",
                     r->http_status, r->body_len);
            return -1;
        }
        r->status = SS_EP_OK;
        r->errstr[0] = '\0';
        return 0;
    }
    r->status = SS_EP_HTTP_ERROR;
    if (parse_error(r) != 0) {
        r->status = SS_EP_ERR_INTERNAL;
        snprintf(r->errstr, sizeof(r->errstr), "out of memory parsing the error");
        return -1;
    }
    snprintf(r->errstr, sizeof(r->errstr), "EasyPost answered HTTP %ld%s%.80s%s%.120s",
             r->http_status, r->error_code ? " " : "", r->error_code ? r->error_code : "",
             r->error_message ? ": " : "", r->error_message ? r->error_message : "");
    return -1;
}

int ss_ep_result_parse(long http_status, const char *body, size_t len, ss_ep_result_t *out) {
    memset(out, 0, sizeof(*out));
    out->http_status = http_status;
    if (body) {
        out->body = malloc(len + 1);
        if (!out->body) {
            out->status = SS_EP_ERR_INTERNAL;
            snprintf(out->errstr, sizeof(out->errstr), "out of memory");
            return -1;
        }
        memcpy(out->body, body, len);
        out->body[len] = '\0';
        out->body_len = len;
    }
    return classify_answer(out, 0);
}

/* ---- money ----------------------------------------------------------------- */

int ss_ep_money_valid(const char *s) {
    if (!s)
        return 0;
    const char *p = s;
    if (*p == '-')
        p++;
    int nd = 0;
    while (*p >= '0' && *p <= '9') {
        p++;
        nd++;
    }
    if (nd < 1 || nd > 18)
        return 0;
    if (*p == '.') {
        p++;
        int nf = 0;
        while (*p >= '0' && *p <= '9') {
            p++;
            nf++;
        }
        if (nf < 1 || nf > 10)
            return 0;
    }
    return *p == '\0';
}

int ss_ep_money_get(json_object *obj, const char *key, char *buf, size_t bufsize) {
    json_object *v;
    if (bufsize)
        buf[0] = '\0';
    if (!obj || !json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, key, &v) || v == NULL)
        return 0;
    const char *s;
    switch (json_object_get_type(v)) {
    case json_type_string: s = json_object_get_string(v); break;
    case json_type_int:
    case json_type_double:
        /* json-c serialises a parsed number with the exact text it read */
        s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
        break;
    default: return -1;
    }
    if (!s || !ss_ep_money_valid(s) || strlen(s) + 1 > bufsize)
        return -1;
    memcpy(buf, s, strlen(s) + 1);
    return 1;
}

/* ---- transport --------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len, cap, max;
    int too_large;
} sink_t;

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud) {
    sink_t *s = ud;
    size_t n = size * nmemb;
    if (s->len + n > s->max) {
        s->too_large = 1;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    if (s->len + n + 1 > s->cap) {
        size_t nc = s->cap ? s->cap : 8192;
        while (nc < s->len + n + 1)
            nc *= 2;
        char *nd = realloc(s->data, nc);
        if (!nd)
            return 0;
        s->data = nd;
        s->cap = nc;
    }
    memcpy(s->data + s->len, ptr, n);
    s->len += n;
    s->data[s->len] = '\0';
    return n;
}

typedef struct {
    long retry_after_ms;
    char content_type[128];
    char request_uuid[128];
} hdrs_t;

/* Copies the value of header line buf (n bytes) if it is called name (with
 * the colon, lower case), trimmed; too long or with control bytes: "". */
static void header_value(const char *buf, size_t n, const char *name, char *out, size_t outsize) {
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(buf, name, nl) != 0)
        return;
    const char *v = buf + nl, *end = buf + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vl = (size_t)(end - v);
    out[0] = '\0';
    if (vl >= outsize)
        return;
    for (size_t i = 0; i < vl; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return;
    memcpy(out, v, vl);
    out[vl] = '\0';
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *ud) {
    /* Retry-After on 429/503: seconds, used as the next delay when smaller than the cap. */
    hdrs_t *hd = ud;
    long *retry_after_ms = &hd->retry_after_ms;
    size_t n = size * nitems;
    header_value(buf, n, "content-type:", hd->content_type, sizeof hd->content_type);
    header_value(buf, n, "x-ep-request-uuid:", hd->request_uuid, sizeof hd->request_uuid);
    static const char name[] = "retry-after:";
    if (n > sizeof(name) - 1 && strncasecmp(buf, name, sizeof(name) - 1) == 0) {
        char tmp[32];
        size_t vl = n - (sizeof(name) - 1);
        if (vl >= sizeof(tmp))
            vl = sizeof(tmp) - 1;
        memcpy(tmp, buf + sizeof(name) - 1, vl);
        tmp[vl] = '\0';
        char *end;
        long v = strtol(tmp, &end, 10);
        if (end != tmp && v >= 0 && v <= 86400)
            *retry_after_ms = v * 1000;
    }
    return n;
}

typedef enum { A_ANSWER, A_NEVER_SENT, A_LOST, A_TIMEOUT, A_TOO_LARGE, A_INTERNAL } attempt_t;

static attempt_t attempt_once(ss_ep_client_t *c, CURL *h, const char *method, const char *url,
                              const char *body, size_t len, const char *extra_header, sink_t *sink,
                              long *http_status, hdrs_t *hd, char *errbuf) {
    struct curl_slist *hdrs = NULL;
    attempt_t res;
    curl_easy_reset(h); /* keeps the connection cache: keep-alive survives */
    sink->len = 0;
    sink->too_large = 0;
    if (sink->data)
        sink->data[0] = '\0';
    hd->retry_after_ms = -1;
    hd->content_type[0] = hd->request_uuid[0] = '\0';
    errbuf[0] = '\0';

    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    if (body && hdrs)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (extra_header && hdrs)
        hdrs = curl_slist_append(hdrs, extra_header);
    if (hdrs)
        hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
    if (!hdrs)
        return A_INTERNAL;

    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(h, CURLOPT_USERPWD, c->userpwd);
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, hd);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method); /* PUT, PATCH with a body */
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }

    CURLcode rc = curl_easy_perform(h);
    *http_status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, http_status);
    if (rc == CURLE_OK) {
        res = A_ANSWER;
    } else if (sink->too_large) {
        res = A_TOO_LARGE;
    } else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
               rc == CURLE_COULDNT_RESOLVE_PROXY) {
        res = A_NEVER_SENT;
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        /* Never sent only when no byte of the request left: the connect time
         * is 0 on a kept-alive connection too, where the request did go out
         * (a timed-out buy taken for "never sent" would be bought again). */
        long sent = 0;
        curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent);
        res = (sent == 0 && *http_status == 0) ? A_NEVER_SENT : A_TIMEOUT;
        if (res == A_NEVER_SENT && !errbuf[0])
            snprintf(errbuf, CURL_ERROR_SIZE, "connect timeout");
    } else if (rc == CURLE_OUT_OF_MEMORY) {
        res = A_INTERNAL;
    } else {
        res = A_LOST;
    }
    if (rc != CURLE_OK && !errbuf[0])
        snprintf(errbuf, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    return res;
}

static int retryable_status(long st) {
    return st == 429 || st == 502 || st == 503 || st == 504;
}

static int request_url(ss_ep_client_t *c, const char *method, char *url, const char *body,
                       size_t len, const char *extra_header, ss_ep_retry_t retry, int raw,
                       double t0, ss_ep_result_t *out);

int ss_ep_request(ss_ep_client_t *c, const char *method, const char *path, const char *body,
                  size_t len, ss_ep_retry_t retry, ss_ep_result_t *out) {
    memset(out, 0, sizeof(*out));
    out->retry_after_ms = -1;
    double t0 = mono_ms();
    if (!c || !method || !path || path[0] != '/') {
        out->status = SS_EP_ERR_INVALID;
        snprintf(out->errstr, sizeof(out->errstr), "invalid request arguments");
        return -1;
    }
    if (body && len == 0)
        len = strlen(body);
    int is_get = strcmp(method, "GET") == 0;
    if (!is_get && !body) {
        out->status = SS_EP_ERR_INVALID;
        snprintf(out->errstr, sizeof(out->errstr), "%s %s needs a JSON body", method, path);
        return -1;
    }
    char *url = NULL;
    if (asprintf(&url, "%s%s", c->base, path) < 0) {
        out->status = SS_EP_ERR_INTERNAL;
        snprintf(out->errstr, sizeof(out->errstr), "could not initialise the HTTP client");
        return -1;
    }
    return request_url(c, method, url, body, len, NULL, retry, 0, t0, out);
}

static int path_ok(const char *p) {
    size_t n = strlen(p);
    if (n == 0 || n > 1024 || p[0] != '/')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (!isalnum(ch) && ch != '/' && ch != '-' && ch != '_' && ch != '.' && ch != '~')
            return 0;
        if (ch == '/' && p[i + 1] == '.' &&
            (p[i + 2] == '/' || p[i + 2] == '\0' ||
             (p[i + 2] == '.' && (p[i + 3] == '/' || p[i + 3] == '\0'))))
            return 0;
    }
    return 1;
}

static int query_ok(const char *q) {
    size_t n = strlen(q);
    if (n > 4096)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (q[i] < 0x21 || q[i] > 0x7e || q[i] == '#')
            return 0;
    return 1;
}

int ss_ep_forward(ss_ep_client_t *c, const ss_ep_forward_t *req, ss_ep_result_t *out) {
    memset(out, 0, sizeof(*out));
    out->retry_after_ms = -1;
    double t0 = mono_ms();
    const char *m = req ? req->method : NULL;
    if (!c || !m ||
        (strcmp(m, "GET") != 0 && strcmp(m, "POST") != 0 && strcmp(m, "PUT") != 0 &&
         strcmp(m, "PATCH") != 0 && strcmp(m, "DELETE") != 0)) {
        out->status = SS_EP_ERR_INVALID;
        snprintf(out->errstr, sizeof(out->errstr), "method not allowed");
        return -1;
    }
    if (!req->path || !path_ok(req->path)) {
        out->status = SS_EP_ERR_INVALID;
        snprintf(out->errstr, sizeof(out->errstr), "invalid path");
        return -1;
    }
    int has_query = req->query && *req->query;
    if (has_query && !query_ok(req->query)) {
        out->status = SS_EP_ERR_INVALID;
        snprintf(out->errstr, sizeof(out->errstr), "invalid query string");
        return -1;
    }
    char idem[320], *extra = NULL;
    if (req->idempotency_key) {
        size_t kl = strlen(req->idempotency_key);
        int ok = kl > 0 && kl <= 255;
        for (size_t i = 0; ok && i < kl; i++)
            ok = req->idempotency_key[i] >= 0x21 && req->idempotency_key[i] <= 0x7e;
        if (!ok) {
            out->status = SS_EP_ERR_INVALID;
            snprintf(out->errstr, sizeof(out->errstr), "invalid Idempotency-Key");
            return -1;
        }
        snprintf(idem, sizeof idem, "Idempotency-Key: %s", req->idempotency_key);
        extra = idem;
    }
    const char *body = req->body;
    if (!body && strcmp(m, "GET") != 0 && strcmp(m, "DELETE") != 0)
        body = ""; /* an empty body, with its Content-Length: 0 */
    char *url = NULL;
    if (asprintf(&url, "%s%s%s%s", c->root, req->path, has_query ? "?" : "",
                 has_query ? req->query : "") < 0) {
        out->status = SS_EP_ERR_INTERNAL;
        snprintf(out->errstr, sizeof(out->errstr), "out of memory");
        return -1;
    }
    return request_url(c, m, url, body, body ? req->len : 0, extra, req->retry, 1, t0, out);
}

/* Makes the request (url is consumed: freed here). */
static int request_url(ss_ep_client_t *c, const char *method, char *url, const char *body,
                       size_t len, const char *extra_header, ss_ep_retry_t retry, int raw,
                       double t0, ss_ep_result_t *out) {
    int is_get = strcmp(method, "GET") == 0;
    CURL *h = g_init_ok ? borrow_handle() : NULL;
    if (!h) {
        free(url);
        out->status = SS_EP_ERR_INTERNAL;
        snprintf(out->errstr, sizeof(out->errstr), "could not initialise the HTTP client");
        return -1;
    }

    sink_t sink = {NULL, 0, 0, c->max_body, 0};
    char errbuf[CURL_ERROR_SIZE];
    attempt_t a = A_INTERNAL;
    long st = 0;
    hdrs_t hd;
    ss_backoff_t backoff = {c->backoff_base_ms, c->backoff_max_ms, 0};
    for (int attempt = 0;; attempt++) {
        out->attempts = attempt + 1;
        a = attempt_once(c, h, method, url, body, len, extra_header, &sink, &st, &hd, errbuf);
        long retry_after_ms = hd.retry_after_ms;
        int again = 0;
        switch (a) {
        case A_NEVER_SENT:
            again = 1; /* nothing reached EasyPost: safe for every request */
            break;
        case A_LOST:
        case A_TIMEOUT: again = retry == SS_EP_RETRY_SAFE; break;
        case A_ANSWER:
            if (st == 429)
                again = retry != SS_EP_RETRY_NEVER_SENT;
            else if (retryable_status(st))
                again = retry == SS_EP_RETRY_SAFE;
            break;
        default: break;
        }
        if (!again || attempt >= c->max_retries)
            break;
        if (c->retry_after_strict && retry_after_ms > c->retry_after_max_ms)
            break; /* asked to wait longer than we may sleep here: the caller waits */
        int d = ss_backoff_next(&backoff);
        if (retry_after_ms >= 0 && retry_after_ms <= c->retry_after_max_ms && retry_after_ms > d)
            d = (int)retry_after_ms;
        sleep_ms(d);
    }

    out->http_status = st;
    out->retry_after_ms = a == A_ANSWER ? hd.retry_after_ms : -1;
    if (a == A_ANSWER) {
        memcpy(out->content_type, hd.content_type, sizeof out->content_type);
        memcpy(out->request_uuid, hd.request_uuid, sizeof out->request_uuid);
    }
    int rc = -1;
    switch (a) {
    case A_ANSWER:
        out->body = sink.data ? sink.data : strdup("");
        sink.data = NULL;
        out->body_len = sink.len;
        if (!out->body) {
            out->status = SS_EP_ERR_INTERNAL;
            break;
        }
        rc = classify_answer(out, raw);
        if (!is_get && (st == 502 || st == 504))
            out->outcome_unknown = 1;
        break;
    case A_TOO_LARGE:
        out->status = SS_EP_ERR_TOO_LARGE;
        out->http_status = st;
        snprintf(out->errstr, sizeof(out->errstr),
                 "EasyPost answer exceeds the %zu-byte limit (HTTP %ld)", c->max_body, st);
        out->outcome_unknown = !is_get && !(st >= 200 && st < 300);
        break;
    case A_NEVER_SENT:
        out->status = SS_EP_ERR_CONNECT;
        snprintf(out->errstr, sizeof(out->errstr), "cannot reach EasyPost: %.180s", errbuf);
        break;
    case A_TIMEOUT:
        out->status = SS_EP_ERR_TIMEOUT;
        out->outcome_unknown = !is_get;
        snprintf(out->errstr, sizeof(out->errstr), "EasyPost did not answer in time: %.180s",
                 errbuf);
        break;
    case A_LOST:
        out->status = SS_EP_ERR_TRANSPORT;
        out->outcome_unknown = !is_get;
        snprintf(out->errstr, sizeof(out->errstr), "EasyPost connection failed: %.180s", errbuf);
        break;
    default:
        out->status = SS_EP_ERR_INTERNAL;
        snprintf(out->errstr, sizeof(out->errstr), "internal error: %.180s", errbuf);
        break;
    }
    free(sink.data);
    free(url);
    return_handle(h);
    out->elapsed_ms = mono_ms() - t0;
    return rc;
}

/* ---- endpoints ----------------------------------------------------------------- */

static int bad_arg(ss_ep_result_t *out, const char *what) {
    memset(out, 0, sizeof(*out));
    out->status = SS_EP_ERR_INVALID;
    snprintf(out->errstr, sizeof(out->errstr), "%s", what);
    return -1;
}

static int id_path(char *buf, size_t n, const char *fmt, const char *id) {
    if (!id_valid(id))
        return -1;
    int w = snprintf(buf, n, fmt, id);
    return (w < 0 || (size_t)w >= n) ? -1 : 0;
}

int ss_ep_shipment_create(ss_ep_client_t *c, const char *body, size_t len, ss_ep_result_t *out) {
    if (!body)
        return bad_arg(out, "shipment body is missing");
    return ss_ep_request(c, "POST", "/shipments", body, len, SS_EP_RETRY_CREATE, out);
}

int ss_ep_shipment_buy(ss_ep_client_t *c, const char *shipment_id, const char *body, size_t len,
                       ss_ep_result_t *out) {
    char path[192];
    if (id_path(path, sizeof(path), "/shipments/%s/buy", shipment_id) != 0)
        return bad_arg(out, "invalid shipment id");
    if (!body)
        return bad_arg(out, "buy body is missing");
    return ss_ep_request(c, "POST", path, body, len, SS_EP_RETRY_NEVER_SENT, out);
}

int ss_ep_shipment_buy_rate(ss_ep_client_t *c, const char *shipment_id, const char *rate_id,
                            ss_ep_result_t *out) {
    char body[256];
    if (!id_valid(rate_id))
        return bad_arg(out, "invalid rate id");
    snprintf(body, sizeof(body), "{\"rate\":{\"id\":\"%s\"}}", rate_id);
    return ss_ep_shipment_buy(c, shipment_id, body, strlen(body), out);
}

int ss_ep_shipment_retrieve(ss_ep_client_t *c, const char *shipment_id, ss_ep_result_t *out) {
    char path[192];
    if (id_path(path, sizeof(path), "/shipments/%s", shipment_id) != 0)
        return bad_arg(out, "invalid shipment id");
    return ss_ep_request(c, "GET", path, NULL, 0, SS_EP_RETRY_SAFE, out);
}

int ss_ep_tracker_create(ss_ep_client_t *c, const char *body, size_t len, ss_ep_result_t *out) {
    if (!body)
        return bad_arg(out, "tracker body is missing");
    return ss_ep_request(c, "POST", "/trackers", body, len, SS_EP_RETRY_CREATE, out);
}

int ss_ep_tracker_retrieve(ss_ep_client_t *c, const char *tracker_id, ss_ep_result_t *out) {
    char path[192];
    if (id_path(path, sizeof(path), "/trackers/%s", tracker_id) != 0)
        return bad_arg(out, "invalid tracker id");
    return ss_ep_request(c, "GET", path, NULL, 0, SS_EP_RETRY_SAFE, out);
}

int ss_ep_address_create(ss_ep_client_t *c, const char *body, size_t len, ss_ep_result_t *out) {
    if (!body)
        return bad_arg(out, "address body is missing");
    return ss_ep_request(c, "POST", "/addresses", body, len, SS_EP_RETRY_CREATE, out);
}

int ss_ep_address_create_and_verify(ss_ep_client_t *c, const char *body, size_t len,
                                    ss_ep_result_t *out) {
    if (!body)
        return bad_arg(out, "address body is missing");
    return ss_ep_request(c, "POST", "/addresses/create_and_verify", body, len, SS_EP_RETRY_CREATE,
                         out);
}

/* ---- lists ------------------------------------------------------------------------ */

const char *ss_ep_list_name(ss_ep_list_kind_t kind) {
    switch (kind) {
    case SS_EP_LIST_SHIPMENTS: return "shipments";
    case SS_EP_LIST_TRACKERS: return "trackers";
    case SS_EP_LIST_EVENTS: return "events";
    }
    return "unknown";
}

const char *ss_ep_list_object(ss_ep_list_kind_t kind) {
    switch (kind) {
    case SS_EP_LIST_SHIPMENTS: return "Shipment";
    case SS_EP_LIST_TRACKERS: return "Tracker";
    case SS_EP_LIST_EVENTS: return "Event";
    }
    return "unknown";
}

/* Appends &name=<percent-encoded value> (RFC 3986 unreserved kept). */
static int query_add(char *buf, size_t n, size_t *len, const char *name, const char *value) {
    static const char hex[] = "0123456789ABCDEF";
    if (!value || !*value)
        return 0;
    int w = snprintf(buf + *len, n - *len, "%c%s=", *len && strchr(buf, '?') ? '&' : '?', name);
    if (w < 0 || (size_t)w >= n - *len)
        return -1;
    *len += (size_t)w;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*len + 4 > n)
            return -1;
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            buf[(*len)++] = (char)*p;
        } else {
            buf[(*len)++] = '%';
            buf[(*len)++] = hex[*p >> 4];
            buf[(*len)++] = hex[*p & 15];
        }
    }
    buf[*len] = '\0';
    return 0;
}

/* The decoded strings of one entry. */
typedef struct {
    char id[256];
    char type[64];
    char status[64];
} item_strings_t;

/* A timestamp member's value in microseconds; 0 when absent or not one. */
static long long item_time(ss_json_span_t v) {
    char buf[64];
    int64_t t;
    return v.p && ss_json_string(v, buf, sizeof buf) > 0 && ss_time_parse(buf, &t) == 0
               ? (long long)t
               : 0;
}

void ss_ep_page_free(ss_ep_page_t *page) {
    if (!page)
        return;
    free(page->items);
    free(page->strings);
    memset(page, 0, sizeof(*page));
}

/* Reads the page with the strict scanner: one pass over the body, no tree,
 * and each entry handed on as the span of bytes EasyPost sent (the
 * producers used to rebuild every object with json-c: a quarter of the
 * backfill's CPU). */
int ss_ep_page_parse(ss_ep_list_kind_t kind, const char *body, size_t len, ss_ep_page_t *page,
                     char *errstr, size_t errstr_size) {
    memset(page, 0, sizeof(*page));
    const char *name = ss_ep_list_name(kind);
    const char *why = NULL;
    if (!body || ss_json_check(body, len, SS_JSON_MAX_DEPTH, &why) != 0) {
        snprintf(errstr, errstr_size, "list page is not strict JSON: %s", why ? why : "no body");
        return -1;
    }
    ss_json_span_t root = ss_json_root(body, len), m[2];
    const char *const names[] = {name, "has_more", NULL};
    ss_json_iter_t it;
    if (root.p[0] != '{') {
        snprintf(errstr, errstr_size, "list page has no \"%s\" array", name);
        return -1;
    }
    ss_json_pick(root, names, m);
    if (!m[0].p || ss_json_array_init(&it, m[0]) != 0) {
        snprintf(errstr, errstr_size, "list page has no \"%s\" array", name);
        return -1;
    }
    if (!m[1].p || !((m[1].len == 4 && memcmp(m[1].p, "true", 4) == 0) ||
                     (m[1].len == 5 && memcmp(m[1].p, "false", 5) == 0))) {
        snprintf(errstr, errstr_size, "list page has no boolean \"has_more\"");
        return -1;
    }
    page->has_more = m[1].p[0] == 't';
    size_t n = 0;
    ss_json_span_t v;
    while (ss_json_array_next(&it, &v) == 1)
        n++;
    if (n == 0)
        return 0;
    page->items = calloc(n, sizeof(*page->items));
    item_strings_t *strs = calloc(n, sizeof(*strs));
    page->strings = strs;
    if (!page->items || !strs) {
        ss_ep_page_free(page);
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    static const char *const members[] = {"id",         "object",     "status",
                                          "created_at", "updated_at", NULL};
    ss_json_array_init(&it, m[0]);
    while (ss_json_array_next(&it, &v) == 1) {
        ss_json_span_t f[5];
        item_strings_t *st = &strs[page->n];
        if (v.p[0] != '{') {
            page->n_invalid++;
            continue;
        }
        ss_json_pick(v, members, f);
        if (!f[0].p || ss_json_string(f[0], st->id, sizeof st->id) <= 0) {
            page->n_invalid++;
            continue;
        }
        ss_ep_list_item_t *item = &page->items[page->n++];
        item->raw = v.p;
        item->raw_len = v.len;
        item->id = st->id;
        if (f[1].p && ss_json_string(f[1], st->type, sizeof st->type) >= 0)
            item->object_type = st->type;
        if (f[2].p && ss_json_string(f[2], st->status, sizeof st->status) >= 0)
            item->status = st->status;
        item->created_at_usec = item_time(f[3]);
        item->updated_at_usec = item_time(f[4]);
    }
    return 0;
}

int ss_ep_list(ss_ep_client_t *c, ss_ep_list_kind_t kind, const ss_ep_list_params_t *params,
               ss_ep_page_t *page, ss_ep_result_t *out) {
    memset(page, 0, sizeof(*page));
    char path[768];
    size_t len = 0;
    int ps = params && params->page_size > 0 ? params->page_size : 100;
    if (ps > 100)
        ps = 100;
    int w = snprintf(path, sizeof(path), "/%s?page_size=%d", ss_ep_list_name(kind), ps);
    len = (size_t)w;
    if (params) {
        if ((params->before_id && *params->before_id && !id_valid(params->before_id)) ||
            (params->after_id && *params->after_id && !id_valid(params->after_id)))
            return bad_arg(out, "invalid before_id / after_id");
        if (query_add(path, sizeof(path), &len, "before_id", params->before_id) != 0 ||
            query_add(path, sizeof(path), &len, "after_id", params->after_id) != 0 ||
            query_add(path, sizeof(path), &len, "start_datetime", params->start_datetime) != 0 ||
            query_add(path, sizeof(path), &len, "end_datetime", params->end_datetime) != 0)
            return bad_arg(out, "list parameters too long");
    }
    /* raw: a 2xx is not built into a json-c tree (the page parse scans it);
     * an error answer is parsed as for every call */
    memset(out, 0, sizeof(*out));
    out->retry_after_ms = -1;
    double t0 = mono_ms();
    char *url = NULL;
    if (asprintf(&url, "%s%s", c->base, path) < 0) {
        out->status = SS_EP_ERR_INTERNAL;
        snprintf(out->errstr, sizeof(out->errstr), "out of memory");
        return -1;
    }
    if (request_url(c, "GET", url, NULL, 0, NULL, SS_EP_RETRY_SAFE, 1, t0, out) != 0)
        return -1;
    char err[160];
    if (ss_ep_page_parse(kind, out->body, out->body_len, page, err, sizeof(err)) != 0) {
        out->status = SS_EP_ERR_BAD_RESPONSE;
        snprintf(out->errstr, sizeof(out->errstr), "EasyPost GET /%s: %s (%zu bytes)",
                 ss_ep_list_name(kind), err, out->body_len);
        return -1;
    }

    return 0;
}
