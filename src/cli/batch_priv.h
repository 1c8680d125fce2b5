/* batch_priv.h: the batch pipeline's state, shared by batch.c and
 * batch_watch.c only. */
#ifndef CUTOUT_CLI_BATCH_PRIV_H
#define CUTOUT_CLI_BATCH_PRIV_H

#include "batch.h"
#include "queue.h"
#include "strset.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

struct batch {
  struct batch_opts bo;
  const struct cli_opts *o;
  char in_real[PATH_MAX], out_real[PATH_MAX];
  cutout_encode_params enc;

  cutout_engine *engine;
  cutout_model *model;
  int n_readers, n_workers, n_writers;
  cutout_ctx **ctx;          /* readers, then workers, then writers */
  pthread_t *threads;
  void *thread_args;         /* one per thread, lives as long as they do */
  int n_threads;

  struct cli_queue q_read, q_infer, q_write;
  struct strset claimed;     /* inputs taken this run */
  struct strset outputs;     /* outputs planned this run (flat layout) */
  pthread_mutex_t lock;      /* claimed, outputs, counters, budget */
  pthread_cond_t changed;    /* a counter or the budget moved */

  size_t budget_used;
  unsigned long total, submitted, processed, failed, skipped_exists,
      skipped_notimage, skipped_collision;
  int initial_done;
  char **failures;           /* "path: reason" */
  size_t n_failures, cap_failures;
  cutout_stage_times stage_sum;
  double t_start;
  int tty;
  double last_draw;

  atomic_int stop;           /* SIGINT/SIGTERM or stop.txt */
  int wake_pipe[2];          /* wakes the watcher on a signal */
  int inotify_fd;
  char **wd_paths;           /* inotify watch descriptor -> folder */
  int n_wd;
  int watch_stop;            /* stop.txt seen: finish normally */
};

#endif
