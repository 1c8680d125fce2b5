/*
 * metrics.c: the server's counters and latency histograms, rendered in
 * Prometheus' text format for GET /metrics.  One mutex: every update is a
 * few additions, far cheaper than the request it counts.
 */
#include "server.h"

#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const double buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                 0.5,   1,     2.5,  5,     10,  30,  60};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

struct hist {
  uint64_t counts[NBUCKETS + 1]; /* the last: +Inf */
  double sum;
  uint64_t n;
};

struct srv_metrics {
  pthread_mutex_t lock;
  uint64_t by_status[600];
  struct hist series[SRV_SERIES_COUNT];
  uint64_t canceled[SRV_CANCEL_COUNT];
  uint64_t rejected;
  double busy_seconds;
  double t0;
};

struct srv_metrics *metrics_new(void)
{
  struct srv_metrics *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  pthread_mutex_init(&m->lock, NULL);
  m->t0 = srv_now();
  return m;
}

void metrics_free(struct srv_metrics *m)
{
  if (!m) return;
  pthread_mutex_destroy(&m->lock);
  free(m);
}

void metrics_request(struct srv_metrics *m, unsigned status)
{
  if (status >= 600) status = 0;
  pthread_mutex_lock(&m->lock);
  m->by_status[status]++;
  pthread_mutex_unlock(&m->lock);
}

void metrics_observe(struct srv_metrics *m, int series, double s)
{
  if (series < 0 || series >= SRV_SERIES_COUNT) return;
  pthread_mutex_lock(&m->lock);
  struct hist *h = &m->series[series];
  size_t b = 0;
  while (b < NBUCKETS && s > buckets[b]) b++;
  h->counts[b]++;
  h->sum += s;
  h->n++;
  pthread_mutex_unlock(&m->lock);
}

void metrics_cancel(struct srv_metrics *m, enum srv_cancel why)
{
  pthread_mutex_lock(&m->lock);
  m->canceled[why]++;
  pthread_mutex_unlock(&m->lock);
}

void metrics_rejected(struct srv_metrics *m)
{
  pthread_mutex_lock(&m->lock);
  m->rejected++;
  pthread_mutex_unlock(&m->lock);
}

void metrics_busy(struct srv_metrics *m, double s)
{
  pthread_mutex_lock(&m->lock);
  m->busy_seconds += s;
  pthread_mutex_unlock(&m->lock);
}

/* A growable text buffer; a failed allocation makes the whole render
 * fail (NULL), never a truncated page. */
struct buf {
  char *p;
  size_t len, cap;
  int bad;
};

static void add(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add(struct buf *b, const char *fmt, ...)
{
  if (b->bad) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) { b->bad = 1; return; }
    if ((size_t)n < b->cap - b->len) { b->len += (size_t)n; return; }
    size_t cap = b->cap * 2 + (size_t)n;
    char *q = realloc(b->p, cap);
    if (!q) { b->bad = 1; return; }
    b->p = q;
    b->cap = cap;
  }
}

static long rss_bytes(void)
{
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE);
}

static int task_count(void)
{
  DIR *d = opendir("/proc/self/task");
  int n = 0;
  struct dirent *de;
  while (d && (de = readdir(d)))
    if (de->d_name[0] != '.') n++;
  if (d) closedir(d);
  return n;
}

static const char *series_name(int s)
{
  switch (s) {
  case SRV_SERIES_QUEUE: return "queue_wait";
  case SRV_SERIES_FETCH: return "url_fetch";
  case SRV_SERIES_MODEL_LOAD: return "model_load";
  case SRV_SERIES_REQUEST: return "request";
  default: return cutout_stage_name((cutout_stage)s);
  }
}

static const char *cancel_name(int c)
{
  switch (c) {
  case SRV_CANCEL_GONE_QUEUED: return "client_gone_queued";
  case SRV_CANCEL_GONE_RUNNING: return "client_gone_running";
  case SRV_CANCEL_TIMEOUT: return "timeout";
  case SRV_CANCEL_SHUTDOWN: return "shutdown";
  default: return "none";
  }
}

char *metrics_render(struct srv_metrics *m, const struct srv_gauges *g,
                     size_t *len)
{
  struct buf b = {malloc(16384), 0, 16384, 0};
  if (!b.p) return NULL;
  pthread_mutex_lock(&m->lock);
  add(&b, "# HELP cutout_http_requests_total HTTP requests answered, by "
          "status.\n# TYPE cutout_http_requests_total counter\n");
  for (unsigned s = 0; s < 600; s++)
    if (m->by_status[s])
      add(&b, "cutout_http_requests_total{code=\"%u\"} %llu\n", s,
          (unsigned long long)m->by_status[s]);
  add(&b, "# HELP cutout_stage_seconds Time per stage of a request "
          "(library stages from cutout_ctx_times; queue_wait, url_fetch, "
          "model_load and the whole request from the server).\n"
          "# TYPE cutout_stage_seconds histogram\n");
  for (int s = 0; s < SRV_SERIES_COUNT; s++) {
    const struct hist *h = &m->series[s];
    uint64_t cum = 0;
    for (size_t k = 0; k < NBUCKETS; k++) {
      cum += h->counts[k];
      add(&b, "cutout_stage_seconds_bucket{stage=\"%s\",le=\"%g\"} %llu\n",
          series_name(s), buckets[k], (unsigned long long)cum);
    }
    cum += h->counts[NBUCKETS];
    add(&b, "cutout_stage_seconds_bucket{stage=\"%s\",le=\"+Inf\"} %llu\n"
            "cutout_stage_seconds_sum{stage=\"%s\"} %.6f\n"
            "cutout_stage_seconds_count{stage=\"%s\"} %llu\n",
        series_name(s), (unsigned long long)cum, series_name(s), h->sum,
        series_name(s), (unsigned long long)h->n);
  }
  add(&b, "# HELP cutout_canceled_total Requests dropped or cancelled, by "
          "reason.\n# TYPE cutout_canceled_total counter\n");
  for (int c = 1; c < SRV_CANCEL_COUNT; c++)
    add(&b, "cutout_canceled_total{reason=\"%s\"} %llu\n", cancel_name(c),
        (unsigned long long)m->canceled[c]);
  add(&b, "# HELP cutout_rejected_total Requests refused with 503 because "
          "the queue was full.\n# TYPE cutout_rejected_total counter\n"
          "cutout_rejected_total %llu\n", (unsigned long long)m->rejected);
  double up = srv_now() - m->t0;
  add(&b, "# HELP cutout_worker_busy_seconds_total Time inference workers "
          "spent on jobs.\n# TYPE cutout_worker_busy_seconds_total counter\n"
          "cutout_worker_busy_seconds_total %.6f\n", m->busy_seconds);
  add(&b, "# HELP cutout_worker_utilisation Busy time over uptime times "
          "workers, since start.\n# TYPE cutout_worker_utilisation gauge\n"
          "cutout_worker_utilisation %.6f\n",
      up > 0 && g->workers > 0 ? m->busy_seconds / (up * g->workers) : 0.0);
  pthread_mutex_unlock(&m->lock);
  add(&b, "# TYPE cutout_queue_depth gauge\ncutout_queue_depth %d\n"
          "# TYPE cutout_queue_capacity gauge\ncutout_queue_capacity %d\n"
          "# HELP cutout_in_flight Requests queued, fetching or running.\n"
          "# TYPE cutout_in_flight gauge\ncutout_in_flight %d\n"
          "# TYPE cutout_workers_busy gauge\ncutout_workers_busy %d\n"
          "# TYPE cutout_workers gauge\ncutout_workers %d\n"
          "# TYPE cutout_url_fetches gauge\ncutout_url_fetches %d\n"
          "# TYPE cutout_models_loaded gauge\ncutout_models_loaded %d\n"
          "# TYPE cutout_ready gauge\ncutout_ready %d\n",
      g->queue_depth, g->queue_cap, g->in_flight, g->busy_workers,
      g->workers, g->fetches, g->models_loaded, g->ready);
  add(&b, "# HELP cutout_ort_pool_threads ONNX Runtime pool threads alive "
          "(cutout_engine_thread_count).\n# TYPE cutout_ort_pool_threads "
          "gauge\ncutout_ort_pool_threads %d\n"
          "# HELP cutout_process_threads Threads of the process "
          "(/proc/self/task).\n# TYPE cutout_process_threads gauge\n"
          "cutout_process_threads %d\n"
          "# TYPE cutout_resident_memory_bytes gauge\n"
          "cutout_resident_memory_bytes %ld\n"
          "# TYPE cutout_uptime_seconds gauge\ncutout_uptime_seconds %.3f\n",
      g->ort_threads, task_count(), rss_bytes(), up);
  if (b.bad) {
    free(b.p);
    return NULL;
  }
  *len = b.len;
  return b.p;
}
