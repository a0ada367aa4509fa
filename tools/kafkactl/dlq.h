/* ss-kafkactl dlq: list, show and redrive the dead-letter topic (dlq.c). */
#ifndef SS_KAFKACTL_DLQ_H
#define SS_KAFKACTL_DLQ_H

/* The index of the "dlq" command word in argv, or -1 when the command is
 * another one. */
int kctl_dlq_find(int argc, char **argv);

/* Runs "ss-kafkactl [global options] dlq COMMAND [options]" with the whole
 * command line.  Returns the exit status: 0, 1 on failure, 2 on bad usage. */
int kctl_dlq_main(int argc, char **argv);

#endif
