/* queue.c: see queue.h.  A ring buffer under one mutex: the items are
 * whole images, so the lock is never the bottleneck. */
#include "queue.h"

#include <stdlib.h>

int cli_queue_init(struct cli_queue *q, size_t cap)
{
  q->items = calloc(cap ? cap : 1, sizeof *q->items);
  if (!q->items) return -1;
  q->cap = cap ? cap : 1;
  q->head = q->count = 0;
  q->closed = 0;
  pthread_mutex_init(&q->lock, NULL);
  pthread_cond_init(&q->not_empty, NULL);
  pthread_cond_init(&q->not_full, NULL);
  return 0;
}

void cli_queue_destroy(struct cli_queue *q)
{
  pthread_mutex_destroy(&q->lock);
  pthread_cond_destroy(&q->not_empty);
  pthread_cond_destroy(&q->not_full);
  free(q->items);
  q->items = NULL;
}

int cli_queue_push(struct cli_queue *q, void *item)
{
  pthread_mutex_lock(&q->lock);
  while (q->count == q->cap && !q->closed)
    pthread_cond_wait(&q->not_full, &q->lock);
  if (q->closed) {
    pthread_mutex_unlock(&q->lock);
    return -1;
  }
  q->items[(q->head + q->count) % q->cap] = item;
  q->count++;
  pthread_cond_signal(&q->not_empty);
  pthread_mutex_unlock(&q->lock);
  return 0;
}

void *cli_queue_pop(struct cli_queue *q)
{
  pthread_mutex_lock(&q->lock);
  while (q->count == 0 && !q->closed)
    pthread_cond_wait(&q->not_empty, &q->lock);
  void *item = NULL;
  if (q->count) {
    item = q->items[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    pthread_cond_signal(&q->not_full);
  }
  pthread_mutex_unlock(&q->lock);
  return item;
}

void cli_queue_close(struct cli_queue *q)
{
  pthread_mutex_lock(&q->lock);
  q->closed = 1;
  pthread_cond_broadcast(&q->not_empty);
  pthread_cond_broadcast(&q->not_full);
  pthread_mutex_unlock(&q->lock);
}
