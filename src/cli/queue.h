/* queue.h: a bounded, blocking multi-producer multi-consumer queue of
 * pointers, for the stages of the batch pipeline. */
#ifndef CUTOUT_CLI_QUEUE_H
#define CUTOUT_CLI_QUEUE_H

#include <pthread.h>
#include <stddef.h>

struct cli_queue {
  pthread_mutex_t lock;
  pthread_cond_t not_empty, not_full;
  void **items;
  size_t cap, head, count;
  int closed;
};

int cli_queue_init(struct cli_queue *q, size_t cap);
void cli_queue_destroy(struct cli_queue *q);
/* Blocks while full.  Returns -1 (item not taken) once the queue is
 * closed. */
int cli_queue_push(struct cli_queue *q, void *item);
/* Blocks while empty.  Returns NULL when closed and drained. */
void *cli_queue_pop(struct cli_queue *q);
/* No more pushes; poppers drain what is left, then get NULL. */
void cli_queue_close(struct cli_queue *q);

#endif
