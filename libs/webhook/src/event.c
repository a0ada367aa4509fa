/* Verified webhook body -> envelope message (see webhook/event.h). */
#include <webhook/event.h>

#include <stdio.h>
#include <string.h>

#include <envelope/json_scan.h>

int ss_webhook_event_parse(ss_envelope_msg_t *m, const char *body, size_t len,
                           const char *request_id, char *errstr, size_t errstr_size) {
    memset(m, 0, sizeof(*m));
    const char *why = NULL;
    if (ss_json_check(body, len, SS_ENVELOPE_SPAN_MAX_DEPTH, &why) != 0) {
        snprintf(errstr, errstr_size, "body is not JSON: %s", why);
        return -1;
    }
    ss_json_span_t root = ss_json_root(body, len);
    if (root.p[0] != '{') {
        snprintf(errstr, errstr_size, "not an EasyPost Event: not a JSON object");
        return -1;
    }
    enum { EV_OBJECT, EV_ID, EV_DESCRIPTION, EV_RESULT, EV__COUNT };
    static const char *const names[EV__COUNT + 1] = {"object", "id", "description", "result", NULL};
    ss_json_span_t em[EV__COUNT];
    ss_json_pick(root, names, em);
    ss_json_span_t object = em[EV_OBJECT], id = em[EV_ID], desc = em[EV_DESCRIPTION],
                   result = em[EV_RESULT];

    char otype[8], event_id[sizeof(m->env.event_id)], type[sizeof(m->env.type)];
    if (!object.p || ss_json_string(object, otype, sizeof(otype)) < 0 ||
        strcmp(otype, "Event") != 0) {
        snprintf(errstr, errstr_size, "not an EasyPost Event: \"object\" is not \"Event\"");
        return -1;
    }
    int n = id.p ? ss_json_string(id, event_id, sizeof(event_id)) : -1;
    if (n <= 0) {
        snprintf(errstr, errstr_size, "not an EasyPost Event: %s \"id\"",
                 n == -2 ? "too long an" : "missing");
        return -1;
    }
    n = desc.p ? ss_json_string(desc, type, sizeof(type)) : -1;
    if (n <= 0) {
        snprintf(errstr, errstr_size, "not an EasyPost Event: %s \"description\"",
                 n == -2 ? "too long a" : "missing");
        return -1;
    }
    if (result.p == NULL || result.p[0] != '{') {
        snprintf(errstr, errstr_size, "not an EasyPost Event: \"result\" is not an object");
        return -1;
    }
    ss_envelope_in_t in = {
        .source = SS_SOURCE_WEBHOOK,
        .type = type,
        .event_id = event_id,
        .request_id = request_id,
        .object = result,
        .event = root,
        .checked = 1, /* the whole body, at SS_ENVELOPE_SPAN_MAX_DEPTH */
    };
    char err[200];
    if (ss_envelope_write(m, &in, err, sizeof(err)) != SS_ENVELOPE_OK) {
        snprintf(errstr, errstr_size, "not an EasyPost Event: %s", err);
        return -1;
    }
    return 0;
}
