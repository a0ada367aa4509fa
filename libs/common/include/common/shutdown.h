/* Graceful stop on SIGTERM/SIGINT.  The handler only sets a flag and writes
 * one byte to a self-pipe; a second signal exits at once (status 1). */
#ifndef SS_COMMON_SHUTDOWN_H
#define SS_COMMON_SHUTDOWN_H

/* Installs the handlers (idempotent); also ignores SIGPIPE. */
void ss_shutdown_install(void);

/* Non-zero once a stop was requested (signal or ss_shutdown_request). */
int ss_shutdown_requested(void);

/* Requests a stop from inside the process. */
void ss_shutdown_request(void);

/* Sleeps up to timeout_ms or until a stop is requested.  Returns 1 when a
 * stop was requested, 0 on timeout. */
int ss_shutdown_wait(int timeout_ms);

/* A file descriptor that becomes readable when a stop is requested (for
 * poll() loops, e.g. next to PQsocket). */
int ss_shutdown_fd(void);

#endif
