#include "common/shutdown.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;
static int g_pipe[2] = {-1, -1};
static atomic_int g_installed;

static void on_signal(int sig) {
    (void)sig;
    if (g_stop) {
        static const char msg[] = "second signal: exiting now\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
        _exit(1);
    }
    g_stop = 1;
    int saved = errno;
    if (g_pipe[1] >= 0) {
        ssize_t w = write(g_pipe[1], "x", 1);
        (void)w;
    }
    errno = saved;
}

void ss_shutdown_install(void) {
    if (atomic_exchange(&g_installed, 1))
        return;
    if (pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        g_pipe[0] = g_pipe[1] = -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int ss_shutdown_requested(void) {
    return g_stop != 0;
}

void ss_shutdown_request(void) {
    g_stop = 1;
    if (g_pipe[1] >= 0) {
        ssize_t w = write(g_pipe[1], "x", 1);
        (void)w;
    }
}

int ss_shutdown_fd(void) {
    ss_shutdown_install();
    return g_pipe[0];
}

int ss_shutdown_wait(int timeout_ms) {
    if (g_stop)
        return 1;
    int fd = ss_shutdown_fd();
    if (fd < 0) {
        usleep((useconds_t)timeout_ms * 1000);
        return g_stop != 0;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r = poll(&pfd, 1, timeout_ms);
    (void)r; /* the pipe stays readable: every waiter sees the stop */
    return g_stop != 0;
}
