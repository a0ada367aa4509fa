/* ss-bench-hostile: the clients that starve a thread-per-connection server.
 *
 * Keeps --idle connections open that send nothing, and --trickle connections
 * that send a request head announcing --content-length bytes and then one
 * body byte every --interval-ms.  A connection the server closes (or
 * answers) is recorded with its lifetime and opened again at once, so the
 * pressure stays constant for --duration seconds.  One thread, epoll.
 *
 * Output, one line on stdout:
 *   HOSTILE idle_open=N idle_closed=N idle_max_ms=M trickle_open=N
 *           trickle_closed=N trickle_answered=N trickle_max_ms=M connect_errors=N
 * *_max_ms: the longest a connection of that kind lived before the server
 * closed it (0 when none was closed); *_open: how many were open at the end. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { IDLE = 0, TRICKLE = 1 };

typedef struct {
    int fd;
    int kind;
    int64_t opened_ms;
    int64_t next_byte_ms;
    long sent_body;
    int answered;
} conn_t;

static struct sockaddr_storage g_addr;
static socklen_t g_addrlen;
static char g_head[1024];
static size_t g_headlen;
static long g_content_length = 100000;
static int g_interval_ms = 1000;
static long g_stats_closed[2], g_stats_answered, g_connect_errors;
static int64_t g_stats_max[2];

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int parse_url(const char *url, char *host, size_t hn, char *port, size_t pn, char *path,
                     size_t pathn) {
    if (strncmp(url, "http://", 7) != 0)
        return -1;
    const char *h = url + 7, *slash = strchr(h, '/');
    const char *hend = slash ? slash : h + strlen(h);
    const char *colon = memchr(h, ':', (size_t)(hend - h));
    if (!colon)
        return -1;
    snprintf(host, hn, "%.*s", (int)(colon - h), h);
    snprintf(port, pn, "%.*s", (int)(hend - colon - 1), colon + 1);
    snprintf(path, pathn, "%s", slash ? slash : "/");
    return 0;
}

static int open_conn(int ep, conn_t *c, int kind) {
    c->fd = socket(g_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&g_addr, g_addrlen) != 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        g_connect_errors++;
        return -1;
    }
    c->kind = kind;
    c->opened_ms = now_ms();
    c->next_byte_ms = c->opened_ms + g_interval_ms;
    c->sent_body = 0;
    c->answered = 0;
    if (kind == TRICKLE) /* the head goes at once (non-blocking connect: queued) */
        c->next_byte_ms = c->opened_ms;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

static void closed(int ep, conn_t *c) {
    int64_t life = now_ms() - c->opened_ms;
    g_stats_closed[c->kind]++;
    if (life > g_stats_max[c->kind])
        g_stats_max[c->kind] = life;
    if (c->answered)
        g_stats_answered++;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
}

static void usage(void) {
    fprintf(stderr, "usage: ss-bench-hostile --url http://HOST:PORT/PATH --duration S\n"
                    "                         [--idle N] [--trickle N] [--interval-ms MS]\n"
                    "                         [--content-length L] [--header 'Name: value']...\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *url = NULL;
    int nidle = 0, ntrickle = 0;
    double duration = 0;
    char extra[512] = "";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(a, "--url"))
            url = v;
        else if (!strcmp(a, "--idle"))
            nidle = atoi(v);
        else if (!strcmp(a, "--trickle"))
            ntrickle = atoi(v);
        else if (!strcmp(a, "--duration"))
            duration = atof(v);
        else if (!strcmp(a, "--interval-ms"))
            g_interval_ms = atoi(v);
        else if (!strcmp(a, "--content-length"))
            g_content_length = atol(v);
        else if (!strcmp(a, "--header")) {
            size_t n = strlen(extra);
            snprintf(extra + n, sizeof extra - n, "%s\r\n", v);
        } else
            usage();
        i++;
    }
    char host[256], port[16], path[512];
    if (!url || duration <= 0 || nidle < 0 || ntrickle < 0 || nidle + ntrickle == 0 ||
        g_interval_ms <= 0 || g_content_length <= 0 ||
        parse_url(url, host, sizeof host, port, sizeof port, path, sizeof path) != 0)
        usage();
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(host, port, &hints, &ai) != 0) {
        fprintf(stderr, "ss-bench-hostile: cannot resolve %s\n", host);
        return 2;
    }
    memcpy(&g_addr, ai->ai_addr, ai->ai_addrlen);
    g_addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
    g_headlen = (size_t)snprintf(g_head, sizeof g_head,
                                 "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: "
                                 "application/json\r\nContent-Length: %ld\r\n%s\r\n",
                                 path, host, port, g_content_length, extra);
    signal(SIGPIPE, SIG_IGN);

    int n = nidle + ntrickle;
    conn_t *cs = calloc((size_t)n, sizeof *cs);
    int ep = epoll_create1(0);
    if (!cs || ep < 0)
        return 1;
    for (int i = 0; i < n; i++)
        open_conn(ep, &cs[i], i < nidle ? IDLE : TRICKLE);

    int64_t end = now_ms() + (int64_t)(duration * 1000);
    struct epoll_event evs[256];
    while (now_ms() < end) {
        int k = epoll_wait(ep, evs, 256, 50);
        for (int i = 0; i < k; i++) {
            conn_t *c = evs[i].data.ptr;
            char buf[4096];
            ssize_t r = recv(c->fd, buf, sizeof buf, 0);
            if (r > 0) {
                c->answered = 1; /* an answer: wait for the close (or reopen on ours) */
                continue;
            }
            if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                int kind = c->kind;
                closed(ep, c);
                open_conn(ep, c, kind);
            }
        }
        int64_t t = now_ms();
        for (int i = 0; i < n; i++) {
            conn_t *c = &cs[i];
            if (c->fd < 0) {
                open_conn(ep, c, i < nidle ? IDLE : TRICKLE);
                continue;
            }
            if (c->kind != TRICKLE || t < c->next_byte_ms)
                continue;
            if (c->sent_body == 0 && c->next_byte_ms == c->opened_ms) {
                if (send(c->fd, g_head, g_headlen, MSG_NOSIGNAL) < 0 && errno != EAGAIN &&
                    errno != ENOTCONN) {
                    closed(ep, c);
                    continue;
                }
                c->next_byte_ms = t + g_interval_ms;
                c->sent_body = -1; /* head sent */
                continue;
            }
            if (send(c->fd, "0", 1, MSG_NOSIGNAL) < 0 && errno != EAGAIN && errno != ENOTCONN) {
                closed(ep, c);
                continue;
            }
            c->next_byte_ms = t + g_interval_ms;
        }
    }
    int open_[2] = {0, 0};
    for (int i = 0; i < n; i++)
        if (cs[i].fd >= 0)
            open_[cs[i].kind]++;
    printf("HOSTILE idle_open=%d idle_closed=%ld idle_max_ms=%lld trickle_open=%d "
           "trickle_closed=%ld trickle_answered=%ld trickle_max_ms=%lld connect_errors=%ld\n",
           open_[IDLE], g_stats_closed[IDLE], (long long)g_stats_max[IDLE], open_[TRICKLE],
           g_stats_closed[TRICKLE], g_stats_answered, (long long)g_stats_max[TRICKLE],
           g_connect_errors);
    return 0;
}
