/* Walking one EasyPost list newest first, the way EasyPost pages: ask with
 * before_id = the last id of the previous page until has_more is false.
 *
 * Transient failures (no connection, timeouts, 429, 5xx, and the caller's
 * own Kafka or PostgreSQL trouble) are waited out with capped exponential
 * backoff, or Retry-After when EasyPost sends it: the walk never ends early
 * because of them.  What waiting cannot fix ends it with a message: EasyPost
 * refusing the key or the query, an answer that is not a list page three
 * times in a row, and a page that would make the walk go round in circles
 * (an id seen on the previous page or equal to the cursor, or has_more with
 * nothing in the page).  Entries of another object type are skipped and
 * counted. */
#include "reconcile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <common/log.h>
#include <common/metrics.h>
#include <common/shutdown.h>
#include <common/backoff.h>
#include <common/util.h>

#define RC_BAD_PAGE_LIMIT 3

int rc_sleep(long ms) {
    while (ms > 0) {
        int step = ms > 1000 ? 1000 : (int)ms;
        if (ss_shutdown_wait(step))
            return 1;
        ms -= step;
    }
    return ss_shutdown_requested();
}

static int transient(const ss_ep_result_t *r) {
    switch (r->status) {
    case SS_EP_ERR_CONNECT:
    case SS_EP_ERR_TIMEOUT:
    case SS_EP_ERR_TRANSPORT:
    case SS_EP_ERR_INTERNAL: return 1;
    case SS_EP_HTTP_ERROR:
        return r->http_status == 429 || r->http_status == 408 || r->http_status >= 500;
    default: return 0;
    }
}

static void count_error(const char *kind, const char *what) {
    char labels[96];
    snprintf(labels, sizeof labels, "object=\"%s\",kind=\"%s\"", kind, what);
    ss_counter_inc(ss_counter("reconcile_list_errors_total",
                              "EasyPost list calls that failed, by kind", labels));
}

/* ids of the previous page, to catch a page that repeats them */
typedef struct {
    char ids[RC_PAGE_MAX + 1][128];
    size_t n;
} seen_t;

static int seen_has(const seen_t *s, const char *id) {
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->ids[i], id) == 0)
            return 1;
    return 0;
}

/* More objects of the list's type than a page may hold (the callbacks size
 * their buffers by RC_PAGE_MAX): taken as a page that is not a list page. */
static int too_many(ss_ep_page_t *page, const char *want, const char *name, ss_ep_result_t *r) {
    size_t n = 0;
    for (size_t i = 0; i < page->n; i++)
        n += page->items[i].object_type && strcmp(page->items[i].object_type, want) == 0;
    if (n <= RC_PAGE_MAX)
        return 0;
    r->status = SS_EP_ERR_BAD_RESPONSE;
    snprintf(r->errstr, sizeof r->errstr, "EasyPost GET /%s: a page of %zu objects (at most %d)",
             name, n, RC_PAGE_MAX);
    ss_ep_page_free(page);
    return 1;
}

int rc_walk_run(rc_walk_t *w, rc_page_fn fn, void *ud, char *errstr, size_t errstr_size) {
    const char *name = ss_ep_list_name(w->kind);
    const char *want = ss_ep_list_object(w->kind);
    ss_backoff_t bo = {.base_ms = 500, .max_ms = (int)g_rc.backoff_max_ms};
    seen_t *prev = calloc(1, sizeof *prev);
    ss_ep_list_item_t *keep = calloc(RC_PAGE_MAX, sizeof *keep);
    int consecutive_bad = 0, rc = -1;
    if (!prev || !keep) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }
    char labels[64];
    snprintf(labels, sizeof labels, "object=\"%s\"", name);
    ss_counter_t *c_pages =
        ss_counter("reconcile_list_pages_total", "EasyPost list pages taken", labels);

    for (;;) {
        if (ss_shutdown_requested() || (w->stop && *w->stop)) {
            rc = 1;
            goto done;
        }
        if (w->rewound) {
            prev->n = 0;
            w->rewound = 0;
        }
        ss_ep_list_params_t lp = {.page_size = w->page_size,
                                  .before_id = w->before_id,
                                  .start_datetime = w->start[0] ? w->start : NULL,
                                  .end_datetime = w->end[0] ? w->end : NULL};
        ss_ep_page_t page;
        ss_ep_result_t r;
        if (ss_ep_list(w->ep, w->kind, &lp, &page, &r) != 0 || too_many(&page, want, name, &r)) {
            if (r.status == SS_EP_ERR_BAD_RESPONSE) {
                w->bad_pages++;
                count_error(name, "bad_page");
                if (++consecutive_bad >= RC_BAD_PAGE_LIMIT) {
                    snprintf(errstr, errstr_size,
                             "EasyPost GET /%s (before_id=%s) answered %d times with something "
                             "that is not a list page: %s",
                             name, w->before_id[0] ? w->before_id : "none", consecutive_bad,
                             r.errstr);
                    ss_ep_result_free(&r);
                    goto done;
                }
                ss_log_kv(SS_LOG_WARN, "not a list page; asking again", "object", name, "error",
                          r.errstr, NULL);
                ss_ep_result_free(&r);
                if (rc_sleep(ss_backoff_next(&bo))) {
                    rc = 1;
                    goto done;
                }
                continue;
            }
            if (!transient(&r)) {
                snprintf(errstr, errstr_size, "EasyPost GET /%s (before_id=%s): %s", name,
                         w->before_id[0] ? w->before_id : "none", r.errstr);
                count_error(name, "fatal");
                ss_ep_result_free(&r);
                goto done;
            }
            w->transient_errors++;
            count_error(name, r.http_status == 429 ? "rate_limited" : "transient");
            long wait = ss_backoff_next(&bo);
            if (r.retry_after_ms > wait)
                wait = r.retry_after_ms;
            ss_log(SS_LOG_INFO, "EasyPost GET /%s: %s; again in %ld ms", name, r.errstr, wait);
            ss_ep_result_free(&r);
            if (rc_sleep(wait)) {
                rc = 1;
                goto done;
            }
            continue;
        }
        consecutive_bad = 0;

        /* Guards against a list that would never end. */
        const char *loop_id = NULL;
        for (size_t i = 0; i < page.n && !loop_id; i++)
            if ((w->before_id[0] && strcmp(page.items[i].id, w->before_id) == 0) ||
                seen_has(prev, page.items[i].id))
                loop_id = page.items[i].id;
        if (loop_id || (page.has_more && page.n == 0)) {
            if (loop_id)
                snprintf(errstr, errstr_size,
                         "EasyPost GET /%s (before_id=%s) repeated %s from the previous page: "
                         "the list does not move on (has_more=%s); stopped instead of looping",
                         name, w->before_id[0] ? w->before_id : "none", loop_id,
                         page.has_more ? "true" : "false");
            else
                snprintf(errstr, errstr_size,
                         "EasyPost GET /%s (before_id=%s) answered an empty page with "
                         "has_more=true; stopped instead of looping",
                         name, w->before_id[0] ? w->before_id : "none");
            count_error(name, "loop");
            w->bad_pages++;
            ss_ep_page_free(&page);
            ss_ep_result_free(&r);
            goto done;
        }

        size_t nkeep = 0;
        for (size_t i = 0; i < page.n; i++) {
            const ss_ep_list_item_t *it = &page.items[i];
            if (!it->object_type || strcmp(it->object_type, want) != 0) {
                w->skipped_unknown++;
                ss_counter_inc(ss_counter("reconcile_skipped_total",
                                          "List entries skipped, by reason",
                                          "reason=\"unknown_type\""));
                ss_log_kv(SS_LOG_WARN, "skipped a list entry of another type", "list", name, "id",
                          it->id, "object", it->object_type ? it->object_type : "(none)", NULL);
                continue;
            }
            keep[nkeep++] = *it;
        }
        if (page.n_invalid) {
            w->skipped_invalid += page.n_invalid;
            ss_counter_add(ss_counter("reconcile_skipped_total", "List entries skipped, by reason",
                                      "reason=\"no_id\""),
                           page.n_invalid);
        }

        int frc = nkeep ? fn(ud, w, keep, nkeep, errstr, errstr_size) : 0;
        if (frc == -2) {
            ss_ep_page_free(&page);
            ss_ep_result_free(&r);
            goto done;
        }
        if (frc == -1) {
            w->transient_errors++;
            long wait = ss_backoff_next(&bo);
            ss_log(SS_LOG_WARN, "page of %s not taken (%s); again in %ld ms", name, errstr, wait);
            ss_ep_page_free(&page);
            ss_ep_result_free(&r);
            if (rc_sleep(wait)) {
                rc = 1;
                goto done;
            }
            continue;
        }
        ss_backoff_reset(&bo);

        /* Advance: the cursor is the oldest entry of the page. */
        prev->n = 0;
        for (size_t i = 0; i < page.n && prev->n < RC_PAGE_MAX + 1; i++)
            snprintf(prev->ids[prev->n++], sizeof prev->ids[0], "%s", page.items[i].id);
        if (page.n > 0) {
            const ss_ep_list_item_t *last = nkeep ? &keep[nkeep - 1] : &page.items[page.n - 1];
            snprintf(w->before_id, sizeof w->before_id, "%s", last->id);
            if (last->created_at_usec)
                w->last_created_usec = last->created_at_usec;
        }
        w->pages++;
        w->objects += nkeep;
        ss_counter_inc(c_pages);
        int more = page.has_more;
        ss_ep_page_free(&page);
        ss_ep_result_free(&r);
        if (!more) {
            rc = 0;
            goto done;
        }
    }
done:
    free(prev);
    free(keep);
    return rc;
}
