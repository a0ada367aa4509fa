/* Benchmark baseline: a bare civetweb handler that reads the request body
 * and answers 200, with the same civetweb settings as libs/http (keep-alive,
 * thread count, timeouts).  No verification, no Kafka: what HTTP alone
 * costs on this machine.  Usage: ss-bench-webhook-bare <port> <threads> */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include <civetweb.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static int handler(struct mg_connection *conn, void *ud) {
    (void)ud;
    char buf[16384];
    size_t total = 0;
    int r;
    while ((r = mg_read(conn, buf, sizeof(buf))) > 0)
        total += (size_t)r;
    static const char body[] = "{\"status\":\"accepted\"}";
    mg_printf(conn,
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
              sizeof(body) - 1, body);
    return total > 0 ? 200 : 200;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s <port> <threads>\n", argv[0]);
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%s", argv[1]);
    const char *options[] = {
        "listening_ports",
        listen,
        "num_threads",
        argv[2],
        "request_timeout_ms",
        "10000",
        "enable_keep_alive",
        "yes",
        "keep_alive_timeout_ms",
        "30000",
        "max_request_size",
        "16384",
        "listen_backlog",
        "1024",
        "tcp_nodelay",
        "1",
        NULL,
        NULL,
    };
    mg_init_library(0);
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof(cb));
    struct mg_context *ctx = mg_start(&cb, NULL, options);
    if (ctx == NULL) {
        fprintf(stderr, "cannot listen on %s\n", listen);
        return 1;
    }
    mg_set_request_handler(ctx, "/webhooks/easypost$", handler, NULL);
    mg_set_request_handler(ctx, "/health$", handler, NULL);
    while (!stop)
        usleep(100000);
    mg_stop(ctx);
    return 0;
}
