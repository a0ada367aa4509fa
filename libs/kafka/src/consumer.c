/* Group consumer with manual offsets and assignment hooks (eager protocol). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <common/log.h>
#include <common/sstime.h>

#define ASSIGN_RETRY_USEC 1000000

struct ss_kafka_consumer {
    rd_kafka_t *rk;
    ss_kafka_assign_fn on_assign;
    ss_kafka_revoke_fn on_revoke;
    void *ud;
    int cooperative;
    int paused;                               /* pause_all in force */
    rd_kafka_topic_partition_list_t *pending; /* assigned, on_assign still failing */
    int64_t pending_retry_usec;               /* monotonic */
};

static int is_cooperative(rd_kafka_t *rk) {
    const char *proto = rd_kafka_rebalance_protocol(rk);
    return proto && strcmp(proto, "COOPERATIVE") == 0;
}

static void do_assign(ss_kafka_consumer_t *c, rd_kafka_topic_partition_list_t *parts) {
    rd_kafka_resp_err_t err;
    if (c->cooperative) {
        rd_kafka_error_t *e = rd_kafka_incremental_assign(c->rk, parts);
        err = e ? rd_kafka_error_code(e) : RD_KAFKA_RESP_ERR_NO_ERROR;
        if (e)
            rd_kafka_error_destroy(e);
    } else {
        err = rd_kafka_assign(c->rk, parts);
    }
    if (err)
        ss_log(SS_LOG_ERROR, "kafka assign failed: %s", rd_kafka_err2str(err));
}

/* Calls on_assign on a copy; on success assigns with its offsets. */
static int try_assign(ss_kafka_consumer_t *c, const rd_kafka_topic_partition_list_t *parts,
                      int already_assigned) {
    rd_kafka_topic_partition_list_t *work = rd_kafka_topic_partition_list_copy(parts);
    for (int i = 0; i < work->cnt; i++)
        work->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
    int rc = c->on_assign ? c->on_assign(c->ud, work) : 0;
    if (rc == 0) {
        if (already_assigned && !c->cooperative) {
            rd_kafka_assign(c->rk, NULL);
        } else if (already_assigned) {
            rd_kafka_error_t *e = rd_kafka_incremental_unassign(c->rk, work);
            if (e)
                rd_kafka_error_destroy(e);
        }
        do_assign(c, work);
        /* librdkafka keeps a partition's pause flag across revoke and
         * re-assign: a partition paused before a rebalance comes back
         * paused and is never read again.  Set the state explicitly. */
        if (c->paused)
            rd_kafka_pause_partitions(c->rk, work);
        else
            rd_kafka_resume_partitions(c->rk, work);
        ss_log(SS_LOG_INFO, "kafka partitions assigned: %d", work->cnt);
    } else if (!already_assigned) {
        /* Take the partitions (the group thinks we have them) but read
         * nothing until on_assign succeeds. */
        do_assign(c, work);
        rd_kafka_pause_partitions(c->rk, work);
        ss_log(SS_LOG_WARN, "kafka on_assign failed for %d partition(s); paused, will retry",
               work->cnt);
    }
    rd_kafka_topic_partition_list_destroy(work);
    return rc;
}

static void clear_pending(ss_kafka_consumer_t *c) {
    if (c->pending) {
        rd_kafka_topic_partition_list_destroy(c->pending);
        c->pending = NULL;
    }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    (void)rk;
    ss_kafka_consumer_t *c = opaque;
    c->cooperative = is_cooperative(c->rk);
    switch (err) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        if (try_assign(c, parts, 0) != 0) {
            if (c->pending && c->cooperative) {
                rd_kafka_topic_partition_list_t *merged =
                    rd_kafka_topic_partition_list_copy(c->pending);
                for (int i = 0; i < parts->cnt; i++)
                    rd_kafka_topic_partition_list_add(merged, parts->elems[i].topic,
                                                      parts->elems[i].partition);
                clear_pending(c);
                c->pending = merged;
            } else {
                clear_pending(c);
                c->pending = rd_kafka_topic_partition_list_copy(parts);
            }
            c->pending_retry_usec = ss_time_mono_usec() + ASSIGN_RETRY_USEC;
        }
        break;
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        /* Lost: the group moved on without us (session timeout, or a commit
         * refused with ILLEGAL_GENERATION); the partitions may be read by
         * another member already. */
        if (rd_kafka_assignment_lost(c->rk))
            ss_log(SS_LOG_WARN, "kafka assignment lost: the group rebalanced without this member");
        if (c->on_revoke)
            c->on_revoke(c->ud, parts);
        if (c->cooperative) {
            rd_kafka_error_t *e = rd_kafka_incremental_unassign(c->rk, parts);
            if (e)
                rd_kafka_error_destroy(e);
        } else {
            rd_kafka_assign(c->rk, NULL);
        }
        clear_pending(
            c); /* eager: everything goes; cooperative: kept simple, retried on reassign */
        ss_log(SS_LOG_INFO, "kafka partitions revoked: %d", parts->cnt);
        break;
    default:
        ss_log(SS_LOG_ERROR, "kafka rebalance error: %s", rd_kafka_err2str(err));
        rd_kafka_assign(c->rk, NULL);
        clear_pending(c);
        break;
    }
}

ss_kafka_consumer_t *ss_kafka_consumer_new(const ss_kafka_consumer_opts_t *opts, char *errstr,
                                           size_t errstr_size) {
    if (!opts || !opts->bootstrap || !*opts->bootstrap || !opts->group_id || !*opts->group_id ||
        !opts->topics || opts->ntopics == 0) {
        snprintf(errstr, errstr_size,
                 "kafka consumer: bootstrap, group id and topics are required");
        return NULL;
    }
    ss_kafka_consumer_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    c->on_assign = opts->on_assign;
    c->on_revoke = opts->on_revoke;
    c->ud = opts->ud;

    rd_kafka_topic_partition_list_t *subs = NULL;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (ss_kafka_conf_set1(conf, "bootstrap.servers", opts->bootstrap, errstr, errstr_size) < 0 ||
        ss_kafka_conf_set1(conf, "group.id", opts->group_id, errstr, errstr_size) < 0 ||
        ss_kafka_conf_set1(conf, "client.id", opts->client_id ? opts->client_id : "shipstream",
                           errstr, errstr_size) < 0 ||
        ss_kafka_conf_set1(conf, "enable.auto.commit", "false", errstr, errstr_size) < 0 ||
        ss_kafka_conf_set1(conf, "enable.auto.offset.store", "false", errstr, errstr_size) < 0 ||
        ss_kafka_conf_set1(conf, "auto.offset.reset", "earliest", errstr, errstr_size) < 0 ||
        ss_kafka_conf_set1(conf, "enable.partition.eof", "false", errstr, errstr_size) < 0 ||
        ss_kafka_conf_set1(conf, "partition.assignment.strategy", "range,roundrobin", errstr,
                           errstr_size) < 0 ||
        /* A message as large as a producer may send is fetched whole (and
         * fetch.max.bytes, 50 MiB by default, holds several). */
        ss_kafka_conf_set1(conf, "max.partition.fetch.bytes",
                           SS_KAFKA_STR(SS_KAFKA_MAX_MESSAGE_BYTES), errstr, errstr_size) < 0 ||
        ss_kafka_conf_apply(conf, opts->overrides, errstr, errstr_size) < 0 ||
        ss_kafka_conf_from_env(conf, errstr, errstr_size) < 0)
        goto fail;
    ss_kafka_conf_logging(conf);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, c);

    char err[512];
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!c->rk) {
        snprintf(errstr, errstr_size, "kafka consumer: %s", err);
        goto fail;
    }
    conf = NULL; /* now owned by rk */
    rd_kafka_poll_set_consumer(c->rk);

    subs = rd_kafka_topic_partition_list_new((int)opts->ntopics);
    for (size_t i = 0; i < opts->ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, opts->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rerr = rd_kafka_subscribe(c->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (rerr) {
        snprintf(errstr, errstr_size, "kafka subscribe: %s", rd_kafka_err2str(rerr));
        goto fail;
    }
    return c;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (c->rk)
        rd_kafka_destroy(c->rk);
    free(c);
    return NULL;
}

static void retry_pending(ss_kafka_consumer_t *c) {
    if (!c->pending || ss_time_mono_usec() < c->pending_retry_usec)
        return;
    if (try_assign(c, c->pending, 1) == 0)
        clear_pending(c);
    else
        c->pending_retry_usec = ss_time_mono_usec() + ASSIGN_RETRY_USEC;
}

rd_kafka_message_t *ss_kafka_consumer_poll(ss_kafka_consumer_t *c, int timeout_ms) {
    int64_t deadline = ss_time_mono_usec() + (int64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000;
    for (;;) {
        retry_pending(c);
        int64_t now = ss_time_mono_usec();
        int wait_ms = (int)((deadline - now) / 1000);
        if (wait_ms < 0)
            wait_ms = 0;
        if (c->pending) {
            int until_retry = (int)((c->pending_retry_usec - now) / 1000);
            if (until_retry < wait_ms)
                wait_ms = until_retry < 0 ? 0 : until_retry;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, wait_ms);
        if (m) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                return m;
            rd_kafka_message_destroy(m);
        }
        if (ss_time_mono_usec() >= deadline)
            return NULL;
    }
}

int ss_kafka_consumer_commit(ss_kafka_consumer_t *c, const rd_kafka_topic_partition_list_t *offsets,
                             int async, char *errstr, size_t errstr_size) {
    rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, offsets, async);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        snprintf(errstr, errstr_size, "kafka commit: %s", rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

int ss_kafka_consumer_seek(ss_kafka_consumer_t *c, const char *topic, int32_t partition,
                           int64_t offset, char *errstr, size_t errstr_size) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(c->rk, l, 5000);
    int rc = 0;
    if (e) {
        snprintf(errstr, errstr_size, "kafka seek %s[%d]: %s", topic, (int)partition,
                 rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        rc = -1;
    } else if (l->elems[0].err) {
        snprintf(errstr, errstr_size, "kafka seek %s[%d]: %s", topic, (int)partition,
                 rd_kafka_err2str(l->elems[0].err));
        rc = -1;
    }
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

static int pause_resume(ss_kafka_consumer_t *c, int pause) {
    rd_kafka_topic_partition_list_t *l = NULL;
    rd_kafka_resp_err_t err = rd_kafka_assignment(c->rk, &l);
    if (err)
        return -1;
    c->paused = pause;
    if (l->cnt > 0) {
        if (pause) {
            err = rd_kafka_pause_partitions(c->rk, l);
        } else if (c->pending) {
            /* Partitions still waiting for on_assign stay paused. */
            rd_kafka_topic_partition_list_t *r = rd_kafka_topic_partition_list_new(l->cnt);
            for (int i = 0; i < l->cnt; i++)
                if (!rd_kafka_topic_partition_list_find(c->pending, l->elems[i].topic,
                                                        l->elems[i].partition))
                    rd_kafka_topic_partition_list_add(r, l->elems[i].topic, l->elems[i].partition);
            err = r->cnt ? rd_kafka_resume_partitions(c->rk, r) : 0;
            rd_kafka_topic_partition_list_destroy(r);
        } else {
            err = rd_kafka_resume_partitions(c->rk, l);
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    return err ? -1 : 0;
}

int ss_kafka_consumer_pause_all(ss_kafka_consumer_t *c) {
    return pause_resume(c, 1);
}

int ss_kafka_consumer_resume_all(ss_kafka_consumer_t *c) {
    return pause_resume(c, 0);
}

void ss_kafka_consumer_close(ss_kafka_consumer_t *c) {
    if (!c)
        return;
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(c->rk); /* runs on_revoke */
    if (err)
        ss_log(SS_LOG_WARN, "kafka consumer close: %s", rd_kafka_err2str(err));
    rd_kafka_destroy(c->rk);
    clear_pending(c);
    free(c);
}

rd_kafka_t *ss_kafka_consumer_handle(ss_kafka_consumer_t *c) {
    return c ? c->rk : NULL;
}
