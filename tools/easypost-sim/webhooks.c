/* Tracker timelines and webhook delivery.
 *
 * One time-ordered queue holds two kinds of jobs: "advance this tracker to
 * its next step" (a plan) and "deliver this signed Event" (a body).  A few
 * worker threads pop due jobs.  Deliveries not answered 2xx are retried with
 * capped exponential backoff, up to webhook_max_attempts. */
#include "sim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include <common/log.h>
#include <common/metrics.h>
#include <common/sstime.h>

typedef struct sim_job {
    int64_t due;      /* monotonic usec */
    sim_plan_t *plan; /* step job, or NULL */
    char *body;       /* delivery job */
    int attempt;
    struct sim_job *next;
} sim_job_t;

static void count(const char *outcome) {
    char labels[64];
    snprintf(labels, sizeof labels, "outcome=\"%s\"", outcome);
    ss_counter_inc(ss_counter("sim_webhooks_total", "Webhook deliveries by outcome", labels));
}

static void enqueue(sim_t *s, sim_job_t *j) {
    pthread_mutex_lock(&s->qmu);
    if (s->stopping || s->queue_len >= s->max_pending) {
        pthread_mutex_unlock(&s->qmu);
        count(s->stopping ? "dropped_stopping" : "dropped_queue_full");
        free(j->plan);
        free(j->body);
        free(j);
        return;
    }
    sim_job_t **pp = &s->queue;
    while (*pp && (*pp)->due <= j->due)
        pp = &(*pp)->next;
    j->next = *pp;
    *pp = j;
    s->queue_len++;
    ss_gauge_set(ss_gauge("sim_webhook_queue", "Jobs waiting (tracker steps and deliveries)", NULL),
                 (double)s->queue_len);
    pthread_cond_signal(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
}

void sim_schedule_plan(sim_t *s, sim_plan_t *plan) {
    if (plan->next >= plan->nsteps) {
        free(plan);
        return;
    }
    sim_job_t *j = calloc(1, sizeof *j);
    if (!j) {
        free(plan);
        return;
    }
    j->plan = plan;
    j->due = plan->t0_mono_usec + (int64_t)(plan->steps[plan->next].day * s->day_seconds * 1e6);
    enqueue(s, j);
}

void sim_schedule_delivery(sim_t *s, char *body) {
    if (!s->webhook_url) {
        free(body);
        return;
    }
    int drop = __atomic_load_n(&s->webhook_drop_pct, __ATOMIC_RELAXED);
    if (drop > 0) {
        uint64_t r = __atomic_add_fetch(&s->webhook_drop_rng, 1, __ATOMIC_RELAXED);
        if ((int)(sim_hash(r ^ s->seed) % 100) < drop) {
            count("dropped_fault"); /* EasyPost gave up on it: never arrives */
            free(body);
            return;
        }
    }
    sim_job_t *j = calloc(1, sizeof *j);
    if (!j) {
        free(body);
        return;
    }
    j->body = body;
    j->due = ss_time_mono_usec();
    enqueue(s, j);
}

static size_t discard(char *p, size_t size, size_t n, void *ud) {
    (void)p;
    (void)ud;
    return size * n;
}

/* POSTs body; returns the HTTP status or 0 on a transport error. */
static long deliver(sim_t *s, CURL *h, const char *body) {
    char sig[SS_WEBHOOK_SIG_BUFSIZE], hdr[SS_WEBHOOK_SIG_BUFSIZE + 32];
    size_t len = strlen(body);
    struct curl_slist *hl = NULL;
    hl = curl_slist_append(hl, "Content-Type: application/json");
    hl = curl_slist_append(hl, "User-Agent: easypost-sim (EasyPost webhook)");
    hl = curl_slist_append(hl, "Expect:");
    if (s->webhook_key) {
        ss_webhook_sign(s->webhook_key, body, len, sig);
        snprintf(hdr, sizeof hdr, "X-Hmac-Signature: %s", sig);
        hl = curl_slist_append(hl, hdr);
    }
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, s->webhook_url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hl);
    return status;
}

static void *worker(void *ud) {
    sim_t *s = ud;
    CURL *h = curl_easy_init();
    for (;;) {
        pthread_mutex_lock(&s->qmu);
        sim_job_t *j = NULL;
        while (!s->stopping) {
            int64_t now = ss_time_mono_usec();
            if (s->queue && s->queue->due <= now) {
                j = s->queue;
                s->queue = j->next;
                s->queue_len--;
                ss_gauge_set(ss_gauge("sim_webhook_queue",
                                      "Jobs waiting (tracker steps and deliveries)", NULL),
                             (double)s->queue_len);
                break;
            }
            if (!s->queue) {
                pthread_cond_wait(&s->qcv, &s->qmu);
            } else {
                int64_t wake = s->queue->due;
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                int64_t rt = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 + (wake - now);
                ts.tv_sec = (time_t)(rt / 1000000);
                ts.tv_nsec = (long)(rt % 1000000) * 1000;
                pthread_cond_timedwait(&s->qcv, &s->qmu, &ts);
            }
        }
        pthread_mutex_unlock(&s->qmu);
        if (!j)
            break; /* stopping */

        if (j->plan) {
            char *body =
                j->plan->refund ? sim_refund_apply(s, j->plan) : sim_tracker_apply_step(s, j->plan);
            if (body)
                sim_schedule_delivery(s, body);
            sim_schedule_plan(s, j->plan); /* next step, or frees the plan */
            free(j);
            continue;
        }
        long st = h ? deliver(s, h, j->body) : 0;
        if (st >= 200 && st < 300) {
            count("delivered");
            free(j->body);
            free(j);
            continue;
        }
        j->attempt++;
        if (j->attempt >= s->webhook_max_attempts) {
            count("gave_up");
            ss_log(SS_LOG_WARN, "webhook: giving up after %d attempts (last status %ld)",
                   j->attempt, st);
            free(j->body);
            free(j);
            continue;
        }
        count(st ? "retry_status" : "retry_transport");
        long long delay = (long long)s->webhook_backoff_base_ms
                          << (j->attempt - 1 < 20 ? j->attempt - 1 : 20);
        if (delay > s->webhook_backoff_max_ms)
            delay = s->webhook_backoff_max_ms;
        delay = delay / 2 +
                (long long)(sim_hash((uint64_t)ss_time_mono_usec()) % (uint64_t)(delay / 2 + 1));
        SS_DEBUG("webhook: status %ld, retry %d in %lld ms", st, j->attempt, delay);
        j->due = ss_time_mono_usec() + delay * 1000;
        enqueue(s, j);
    }
    if (h)
        curl_easy_cleanup(h);
    return NULL;
}

int sim_webhooks_start(sim_t *s, int nthreads) {
    pthread_mutex_init(&s->qmu, NULL);
    pthread_cond_init(&s->qcv, NULL);
    s->threads = calloc((size_t)nthreads, sizeof(pthread_t));
    if (!s->threads)
        return -1;
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&s->threads[i], NULL, worker, s) != 0)
            return -1;
        s->nthreads++;
    }
    return 0;
}

void sim_webhooks_stop(sim_t *s) {
    pthread_mutex_lock(&s->qmu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
    for (int i = 0; i < s->nthreads; i++)
        pthread_join(s->threads[i], NULL);
    free(s->threads);
    s->threads = NULL;
    size_t left = 0;
    while (s->queue) {
        sim_job_t *j = s->queue;
        s->queue = j->next;
        free(j->plan);
        free(j->body);
        free(j);
        left++;
    }
    if (left)
        ss_log(SS_LOG_INFO, "webhook: %zu pending jobs dropped at shutdown", left);
    pthread_cond_destroy(&s->qcv);
    pthread_mutex_destroy(&s->qmu);
}
