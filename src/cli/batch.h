/*
 * batch.h: the folder pipeline behind `cutout p` (readers -> inference
 * workers -> writers, bounded queues, a memory budget), its watcher and its
 * progress/summary reporting.
 */
#ifndef CUTOUT_CLI_BATCH_H
#define CUTOUT_CLI_BATCH_H

#include "options.h"

#include <stddef.h>

struct batch_opts {
  const char *in_dir, *out_dir;
  int watch, delete_input, flat, overwrite;
  size_t memory_budget; /* bytes for decoded images in flight */
};

struct batch;

int batch_new(const struct cli_opts *o, const struct batch_opts *bo,
              struct batch **out, char *err, size_t errlen);
/* Claim path (once per run) and queue it, or count it as skipped. */
void batch_submit(struct batch *b, const char *path);
/* The total of the initial walk is known (for the progress bar's ETA). */
void batch_initial_pass_done(struct batch *b);
/* 1 after SIGINT/SIGTERM (or stop.txt in watch mode). */
int batch_stopping(const struct batch *b);
/* 1 when path is the output folder (not walked as input). */
int batch_is_output_dir(const struct batch *b, const char *path);
/* A folder that could not be read: counted as a failure. */
void batch_report_error(struct batch *b, const char *path, const char *why);

/* Watch mode (batch_watch.c): inotify on every folder under in_dir. */
int batch_watch_start(struct batch *b, char *err, size_t errlen);
/* Blocks until stop.txt, SIGINT or SIGTERM. */
void batch_watch_run(struct batch *b);

/* Drain the pipeline, print the summary; returns the exit status:
 * 0 all good, 1 something failed, 130 interrupted. */
int batch_finish(struct batch *b);
void batch_free(struct batch *b);

/* mkdir -p. */
int cli_mkdirs(const char *path, char *err, size_t errlen);

#endif
