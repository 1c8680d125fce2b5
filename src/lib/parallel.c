/*
 * parallel.c: a minimal fork-join loop over row ranges.  Pixel stages run
 * between inference calls, when ORT's pool is idle, so they may use every
 * core; threads are created per call (tens of microseconds, negligible
 * against the megapixel loops they run).
 */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

double cutout__now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double cutout__cpu_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cutout__stage_begin(struct cutout__stage_clock *k)
{
  k->wall0 = cutout__now();
  k->cpu0 = cutout__cpu_now();
}

void cutout__stage_end(const struct cutout__stage_clock *k,
                       cutout_stage_times *t, cutout_stage s)
{
  t->wall[s] = cutout__now() - k->wall0;
  t->cpu[s] = cutout__cpu_now() - k->cpu0;
}

void cutout__stage_add(const struct cutout__stage_clock *k,
                       cutout_stage_times *t, cutout_stage s)
{
  t->wall[s] += cutout__now() - k->wall0;
  t->cpu[s] += cutout__cpu_now() - k->cpu0;
}

cutout_status cutout__err(char *err, cutout_status s, const char *fmt, ...)
{
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, CUTOUT_ERRMSG_MAX, fmt, ap);
    va_end(ap);
  }
  return s;
}

struct range_job {
  cutout__range_fn fn;
  void *arg;
  size_t begin, end;
};

static void *range_main(void *p)
{
  struct range_job *j = p;
  j->fn(j->arg, j->begin, j->end);
  return NULL;
}

#define MAX_THREADS 256

void cutout__parallel_for(int nthreads, size_t n, size_t min_per_thread,
                          cutout__range_fn fn, void *arg)
{
  if (min_per_thread < 1) min_per_thread = 1;
  size_t t = nthreads > 1 ? (size_t)nthreads : 1;
  if (t > MAX_THREADS) t = MAX_THREADS;
  if (t > n / min_per_thread) t = n / min_per_thread;
  if (t <= 1) {
    if (n) fn(arg, 0, n);
    return;
  }
  struct range_job jobs[MAX_THREADS];
  pthread_t tids[MAX_THREADS];
  int started[MAX_THREADS] = {0};
  for (size_t i = 0; i < t; i++) {
    jobs[i].fn = fn;
    jobs[i].arg = arg;
    jobs[i].begin = n * i / t;
    jobs[i].end = n * (i + 1) / t;
  }
  for (size_t i = 1; i < t; i++)
    started[i] = pthread_create(&tids[i], NULL, range_main, &jobs[i]) == 0;
  fn(arg, jobs[0].begin, jobs[0].end);
  for (size_t i = 1; i < t; i++) {
    if (started[i])
      pthread_join(tids[i], NULL);
    else /* could not start a thread: do its share here */
      fn(arg, jobs[i].begin, jobs[i].end);
  }
}
