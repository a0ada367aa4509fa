/* Verified webhook body -> envelope, topic, key (see webhook/event.h). */
#include <webhook/event.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

/* EasyPost objects nest a handful of levels (Event > result > tracking_details
 * > tracking_location); anything deeper than this is not EasyPost's. */
#define EVENT_MAX_DEPTH 64

ss_topic_t ss_webhook_event_route(const char *description, const char *object_type)
{
    if (description == NULL)
        return SS_TOPIC_EVENTS;
    if (strncmp(description, "tracker.", 8) == 0 && object_type != NULL &&
        strcmp(object_type, "Tracker") == 0)
        return SS_TOPIC_TRACKERS;
    if (strncmp(description, "batch.", 6) == 0 && object_type != NULL &&
        strcmp(object_type, "Batch") == 0)
        return SS_TOPIC_BATCHES;
    return SS_TOPIC_EVENTS;
}

static const char *get_str(json_object *obj, const char *name)
{
    json_object *v = NULL; /* borrowed */
    if (!json_object_object_get_ex(obj, name, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static int only_blanks(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            return 0;
    return 1;
}

/* json-c's strict mode still lets through 'single-quoted' strings, NaN and
 * Infinity, and raw control characters inside strings.  This lexical pass
 * refuses them; json-c checks the grammar. */
static int lex_ok(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"') {
            for (i++; i < n && p[i] != '"'; i++) {
                if ((unsigned char)p[i] < 0x20)
                    return 0;
                if (p[i] == '\\')
                    i++; /* the escaped character; json-c validates it */
            }
            if (i >= n)
                return 0;
            i++;
        } else if ((c >= '0' && c <= '9') || c == '-') {
            while (i < n && ((p[i] >= '0' && p[i] <= '9') || p[i] == '.' || p[i] == 'e' ||
                             p[i] == 'E' || p[i] == '+' || p[i] == '-'))
                i++;
        } else if (c >= 'a' && c <= 'z') {
            size_t start = i;
            while (i < n && p[i] >= 'a' && p[i] <= 'z')
                i++;
            size_t w = i - start;
            if (!((w == 4 && memcmp(p + start, "true", 4) == 0) ||
                  (w == 5 && memcmp(p + start, "false", 5) == 0) ||
                  (w == 4 && memcmp(p + start, "null", 4) == 0)))
                return 0;
        } else if (c == '{' || c == '}' || c == '[' || c == ']' || c == ':' || c == ',' ||
                   c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            i++;
        } else {
            return 0;
        }
    }
    return 1;
}

static json_object *parse_strict(const char *body, size_t len, char *errstr, size_t errstr_size)
{
    if (len == 0) {
        snprintf(errstr, errstr_size, "empty body");
        return NULL;
    }
    if (len > INT_MAX) {
        snprintf(errstr, errstr_size, "body too large");
        return NULL;
    }
    if (memchr(body, '\0', len) != NULL) {
        snprintf(errstr, errstr_size, "body is not JSON: NUL byte");
        return NULL;
    }
    if (!lex_ok(body, len)) {
        snprintf(errstr, errstr_size, "body is not JSON: invalid token");
        return NULL;
    }
    json_tokener *tok = json_tokener_new_ex(EVENT_MAX_DEPTH);
    if (tok == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *root = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (root == NULL || jerr != json_tokener_success) {
        /* json_tokener_continue: the text ended inside a value. */
        snprintf(errstr, errstr_size, "body is not JSON: %s",
                 jerr == json_tokener_continue ? "unexpected end of input"
                                               : json_tokener_error_desc(jerr));
        json_object_put(root);
        json_tokener_free(tok);
        return NULL;
    }
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (end > len || !only_blanks(body + end, len - end)) {
        snprintf(errstr, errstr_size, "body is not JSON: trailing data after the value");
        json_object_put(root);
        return NULL;
    }
    return root;
}

int ss_webhook_event_parse(ss_webhook_event_t *ev, const char *body, size_t len,
                           const char *request_id, char *errstr, size_t errstr_size)
{
    memset(ev, 0, sizeof(*ev));
    json_object *root = parse_strict(body, len, errstr, errstr_size);
    if (root == NULL)
        return -1;

    int rc = -1;
    const char *s;
    json_object *result = NULL; /* borrowed */
    if (!json_object_is_type(root, json_type_object)) {
        snprintf(errstr, errstr_size, "not an EasyPost Event: not a JSON object");
        goto cleanup;
    }
    s = get_str(root, "object");
    if (s == NULL || strcmp(s, "Event") != 0) {
        snprintf(errstr, errstr_size, "not an EasyPost Event: \"object\" is not \"Event\"");
        goto cleanup;
    }
    s = get_str(root, "id");
    if (s == NULL || s[0] == '\0') {
        snprintf(errstr, errstr_size, "not an EasyPost Event: missing \"id\"");
        goto cleanup;
    }
    s = get_str(root, "description");
    if (s == NULL || s[0] == '\0') {
        snprintf(errstr, errstr_size, "not an EasyPost Event: missing \"description\"");
        goto cleanup;
    }
    if (!json_object_object_get_ex(root, "result", &result) ||
        !json_object_is_type(result, json_type_object)) {
        snprintf(errstr, errstr_size, "not an EasyPost Event: \"result\" is not an object");
        goto cleanup;
    }

    char eerr[256] = "";
    if (ss_envelope_from_event(&ev->env, root, request_id, eerr, sizeof(eerr)) != 0) {
        snprintf(errstr, errstr_size, "not an EasyPost Event: %s", eerr);
        goto cleanup;
    }
    ev->topic = ss_webhook_event_route(get_str(root, "description"), ev->env.object_type);

    int klen = ss_envelope_key(&ev->env, ev->key, sizeof(ev->key));
    if (klen <= 0) {
        /* A verified event is never dropped: fall back to the event id. */
        klen = snprintf(ev->key, sizeof(ev->key), "%s", ev->env.event_id);
        if (klen <= 0 || (size_t)klen >= sizeof(ev->key)) {
            snprintf(errstr, errstr_size, "not an EasyPost Event: no usable key");
            goto cleanup;
        }
    }
    ev->keylen = (size_t)klen;

    ev->value = ss_envelope_serialize(&ev->env, &ev->value_len);
    if (ev->value == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto cleanup;
    }
    rc = 0;

cleanup:
    json_object_put(root); /* the envelope holds its own references */
    if (rc != 0)
        ss_webhook_event_clear(ev);
    return rc;
}

void ss_webhook_event_clear(ss_webhook_event_t *ev)
{
    if (ev == NULL)
        return;
    ss_envelope_clear(&ev->env);
    free(ev->value);
    memset(ev, 0, sizeof(*ev));
}
