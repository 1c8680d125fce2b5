/*
 * jobs.c: the bounded job queue, the inference workers, the url fetchers
 * and the reaper.
 *
 * Every job in flight is on the active list (under the pool lock) from
 * pool_submit until it is done; the reaper walks that list every 50 ms and
 * polls each client socket for a hang-up (POLLRDHUP): a queued job is then
 * dropped, a running one cancelled through its worker's ctx.  The same
 * happens past the request deadline.  A connection is resumed exactly
 * once, by whoever finishes the job, after the job left the active list.
 *
 * cutout_ctx_cancel's flag stays set until the ctx's next call checks it,
 * so a cancel that races with the end of a run could stop the worker's
 * next job: a worker whose run was cancelled gets a fresh ctx.
 */
#include "server.h"

#include <errno.h>
#include <stdarg.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct worker {
  struct srv_pool *pool;
  pthread_t thread;
  cutout_ctx *ctx;
  int cancel_sent; /* under the pool lock */
  int busy;
};

struct srv_pool {
  cutout_engine *engine;
  struct srv_models *models;
  struct srv_metrics *metrics;
  const struct srv_config *cfg;
  pthread_mutex_t lock;
  pthread_cond_t work, fetch_work, reaper_cv;
  struct job **ring; /* the inference queue */
  size_t cap, head, count;
  struct job **fring; /* the url fetch queue */
  size_t fcap, fhead, fcount;
  int fetching;
  struct job *active;
  int in_flight;
  int closed, stop;
  struct worker *w;
  int nw;
  pthread_t *fetchers;
  int nf;
  pthread_t reaper;
  int reaper_started;
};

double srv_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void job_free(struct job *j)
{
  if (!j) return;
  cli_opts_free(&j->opts);
  free(j->extras);
  free(j->in);
  free(j->url);
  if (j->out_malloc)
    free(j->out);
  else
    cutout_free(j->out);
  free(j);
}

static void set_error(struct job *j, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_error(struct job *j, unsigned status, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(j->detail, sizeof j->detail, fmt, ap);
  va_end(ap);
  j->status = status;
}

static void unlink_active(struct srv_pool *p, struct job *j)
{
  if (j->prev) j->prev->next = j->next;
  else p->active = j->next;
  if (j->next) j->next->prev = j->prev;
  j->prev = j->next = NULL;
}

/* Under the lock: the job leaves the pool; its connection is resumed. */
static void finish_locked(struct srv_pool *p, struct job *j)
{
  unlink_active(p, j);
  j->state = JOB_DONE;
  p->in_flight--;
  if (j->cancel == SRV_CANCEL_TIMEOUT && !j->status)
    set_error(j, 503, "the request timed out");
  else if (j->cancel == SRV_CANCEL_SHUTDOWN && !j->status)
    set_error(j, 503, "the server is shutting down");
  else if (j->cancel && !j->status)
    set_error(j, 503, "the client went away");
  if (j->cancel) metrics_cancel(p->metrics, j->cancel);
  pthread_cond_broadcast(&p->reaper_cv); /* shutdown waits on in_flight */
  MHD_resume_connection(j->conn);
}

static int push_locked(struct srv_pool *p, struct job *j)
{
  if (p->count == p->cap) return -1;
  p->ring[(p->head + p->count++) % p->cap] = j;
  j->state = JOB_QUEUED;
  pthread_cond_signal(&p->work);
  return 0;
}

/* Map a library failure to an HTTP answer: bad input is the client's
 * (4xx), never a 500. */
static void library_error(struct job *j, cutout_status st, const char *msg,
                          const void *data, size_t len)
{
  switch (st) {
  case CUTOUT_EFORMAT:
    if (data && cutout_detect_format(data, len) == CUTOUT_FORMAT_UNKNOWN)
      set_error(j, 415, "not an image (PNG, JPEG, WebP or BMP expected): "
                "%s", msg);
    else
      set_error(j, 400, "the image cannot be decoded: %s", msg);
    break;
  case CUTOUT_ELIMIT: set_error(j, 413, "%s", msg); break;
  case CUTOUT_EUNSUPPORTED: set_error(j, 415, "%s", msg); break;
  case CUTOUT_ECANCELED: set_error(j, 503, "canceled"); break;
  case CUTOUT_ENOMEM: set_error(j, 503, "out of memory: %s", msg); break;
  case CUTOUT_EINVAL: set_error(j, 422, "%s", msg); break;
  default: set_error(j, 503, "%s", msg); break; /* EMODEL, ERUNTIME, ... */
  }
}

static void run_job(struct worker *w, struct job *j)
{
  struct srv_pool *p = w->pool;
  cutout_image *img = NULL, *res = NULL;
  cutout_model *model = NULL;
  double load_s = 0;
  char err[1024];
  cutout_status st;

  if ((st = cutout_decode(w->ctx, j->in, j->in_len, &img))) {
    library_error(j, st, cutout_ctx_errmsg(w->ctx), j->in, j->in_len);
    goto out;
  }
  if (models_get(p->models, &j->opts, &model, &load_s, err, sizeof err)) {
    /* an unknown model is caught by params; what is left is the server's
     * set-up (a missing file): the client may retry elsewhere */
    set_error(j, 503, "%s", err);
    goto out;
  }
  if (load_s > 0) metrics_observe(p->metrics, SRV_SERIES_MODEL_LOAD, load_s);
  if ((st = cutout_remove(w->ctx, model, img, &j->opts.remove, &res))) {
    library_error(j, st, cutout_ctx_errmsg(w->ctx), NULL, 0);
    goto out;
  }
  if (*cutout_ctx_warning(w->ctx))
    srv_log(2, "warning: %s", cutout_ctx_warning(w->ctx));
  if (j->ep.format == CUTOUT_FORMAT_JPEG && res->channels != 1 &&
      res->channels != 3) {
    /* JPEG has no alpha: fine only if every pixel is opaque */
    size_t n = (size_t)res->width * res->height;
    for (size_t i = 0; i < n; i++)
      if (res->pixels[i * res->channels + res->channels - 1] != 255) {
        set_error(j, 422, "JPEG cannot store transparency: give an opaque "
                  "bgc (R,G,B,255), om=true, or format=png/webp");
        goto out;
      }
  }
  if ((st = cutout_encode(w->ctx, res, &j->ep, &j->out, &j->out_len))) {
    library_error(j, st, cutout_ctx_errmsg(w->ctx), NULL, 0);
    goto out;
  }
  j->status = 200;
  j->ctype = j->ep.format == CUTOUT_FORMAT_JPEG   ? "image/jpeg"
             : j->ep.format == CUTOUT_FORMAT_WEBP ? "image/webp"
                                                  : "image/png";
  cutout_stage_times t = cutout_ctx_times(w->ctx);
  for (int s = 0; s < CUTOUT_STAGE_COUNT; s++)
    if (t.wall[s] > 0) metrics_observe(p->metrics, s, t.wall[s]);
out:
  models_put(p->models, model);
  cutout_image_free(img);
  cutout_image_free(res);
}

static void *worker_main(void *arg)
{
  struct worker *w = arg;
  struct srv_pool *p = w->pool;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    while (!p->count && !p->stop) pthread_cond_wait(&p->work, &p->lock);
    if (!p->count) break;
    struct job *j = p->ring[p->head];
    p->head = (p->head + 1) % p->cap;
    p->count--;
    if (j->cancel) { /* dropped while queued */
      finish_locked(p, j);
      continue;
    }
    j->state = JOB_RUNNING;
    j->ctx = w->ctx;
    w->busy = 1;
    pthread_mutex_unlock(&p->lock);

    double t0 = srv_now();
    metrics_observe(p->metrics, SRV_SERIES_QUEUE, t0 - j->t_start);
    run_job(w, j);
    double busy = srv_now() - t0;
    metrics_busy(p->metrics, busy);

    pthread_mutex_lock(&p->lock);
    j->ctx = NULL;
    w->busy = 0;
    if (w->cancel_sent) { /* the cancel flag may still be set */
      cutout_ctx *fresh = NULL;
      cutout_ctx_params cp = cutout_ctx_default_params();
      cp.max_pixels = p->cfg->base.max_pixels;
      if (!cutout_ctx_new(p->engine, &cp, &fresh)) {
        cutout_ctx_free(w->ctx);
        w->ctx = fresh;
      }
      w->cancel_sent = 0;
    }
    if (j->cancel && j->status == 200) { /* finished anyway: not wanted */
      j->status = 0;
    }
    finish_locked(p, j);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

static void *fetcher_main(void *arg)
{
  struct srv_pool *p = arg;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    while (!p->fcount && !p->stop) pthread_cond_wait(&p->fetch_work, &p->lock);
    if (!p->fcount) break;
    struct job *j = p->fring[p->fhead];
    p->fhead = (p->fhead + 1) % p->fcap;
    p->fcount--;
    if (j->cancel) {
      finish_locked(p, j);
      continue;
    }
    p->fetching++;
    pthread_mutex_unlock(&p->lock);

    char err[512] = "";
    long remote = 0;
    double t0 = srv_now();
    url_fetch_status fs = url_fetch(j->url, &p->cfg->fetch, &j->in, &j->in_len,
                                    &remote, err, sizeof err);
    metrics_observe(p->metrics, SRV_SERIES_FETCH, srv_now() - t0);
    switch (fs) {
    case URL_FETCH_OK: break;
    case URL_FETCH_ETOOBIG: set_error(j, 413, "%s", err); break;
    case URL_FETCH_ENOMEM: set_error(j, 503, "%s", err); break;
    default: set_error(j, 400, "%s", err); break; /* as rembg: 400 */
    }

    pthread_mutex_lock(&p->lock);
    p->fetching--;
    if (j->status || j->cancel || push_locked(p, j)) {
      if (!j->status && !j->cancel) {
        set_error(j, 503, "the queue is full");
        metrics_rejected(p->metrics);
      }
      finish_locked(p, j);
    }
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

static int client_gone(int fd)
{
  if (fd < 0) return 0;
  struct pollfd pf = {fd, POLLRDHUP, 0};
  return poll(&pf, 1, 0) > 0 && (pf.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Take j out of a ring, keeping the order of the others. */
static int ring_remove(struct job **ring, size_t cap, size_t *head,
                       size_t *count, struct job *j)
{
  size_t k;
  for (k = 0; k < *count && ring[(*head + k) % cap] != j; k++) {}
  if (k == *count) return 0;
  for (; k + 1 < *count; k++)
    ring[(*head + k) % cap] = ring[(*head + k + 1) % cap];
  (*count)--;
  return 1;
}

static void cancel_locked(struct srv_pool *p, struct job *j,
                          enum srv_cancel why)
{
  if (j->cancel) return;
  j->cancel = why;
  if (why == SRV_CANCEL_GONE_QUEUED && j->state == JOB_RUNNING)
    j->cancel = SRV_CANCEL_GONE_RUNNING;
  if (j->state == JOB_RUNNING && j->ctx) {
    for (int i = 0; i < p->nw; i++)
      if (p->w[i].ctx == j->ctx) p->w[i].cancel_sent = 1;
    cutout_ctx_cancel(j->ctx);
  }
  else if (j->state == JOB_QUEUED &&
           ring_remove(p->ring, p->cap, &p->head, &p->count, j))
    finish_locked(p, j); /* dropped: the slot frees at once */
  else if (j->state == JOB_FETCHING &&
           ring_remove(p->fring, p->fcap, &p->fhead, &p->fcount, j))
    finish_locked(p, j);
}

static void *reaper_main(void *arg)
{
  struct srv_pool *p = arg;
  pthread_mutex_lock(&p->lock);
  while (!p->stop) {
    double now = srv_now();
    for (struct job *j = p->active, *next; j; j = next) {
      next = j->next; /* a dropped job leaves the list */
      if (j->cancel) continue;
      if (client_gone(j->fd))
        cancel_locked(p, j, SRV_CANCEL_GONE_QUEUED);
      else if (now > j->deadline)
        cancel_locked(p, j, SRV_CANCEL_TIMEOUT);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&p->reaper_cv, &p->lock, &ts);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

struct srv_pool *pool_new(cutout_engine *e, struct srv_models *models,
                          struct srv_metrics *metrics,
                          const struct srv_config *cfg, char *err,
                          size_t errlen)
{
  struct srv_pool *p = calloc(1, sizeof *p);
  if (!p) goto oom;
  p->engine = e;
  p->models = models;
  p->metrics = metrics;
  p->cfg = cfg;
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_cond_init(&p->fetch_work, NULL);
  pthread_cond_init(&p->reaper_cv, NULL);
  cutout_engine_params ef = cutout_engine_effective(e);
  p->nw = ef.workers > 0 ? ef.workers : 1;
  p->cap = (size_t)cfg->queue_len;
  p->fcap = (size_t)cfg->queue_len;
  p->ring = calloc(p->cap, sizeof *p->ring);
  p->fring = calloc(p->fcap, sizeof *p->fring);
  p->w = calloc((size_t)p->nw, sizeof *p->w);
  p->nf = cfg->url_fetch ? cfg->fetch_threads : 0;
  p->fetchers = calloc((size_t)(p->nf ? p->nf : 1), sizeof *p->fetchers);
  if (!p->ring || !p->fring || !p->w || !p->fetchers) goto oom;
  cutout_ctx_params cp = cutout_ctx_default_params();
  cp.max_pixels = cfg->base.max_pixels;
  for (int i = 0; i < p->nw; i++) {
    p->w[i].pool = p;
    if (cutout_ctx_new(e, &cp, &p->w[i].ctx)) goto oom;
  }
  int started = 0;
  for (int i = 0; i < p->nw; i++, started++)
    if (pthread_create(&p->w[i].thread, NULL, worker_main, &p->w[i])) break;
  int fstarted = 0;
  for (int i = 0; i < p->nf; i++, fstarted++)
    if (pthread_create(&p->fetchers[i], NULL, fetcher_main, p)) break;
  p->reaper_started = !pthread_create(&p->reaper, NULL, reaper_main, p);
  if (started < p->nw || fstarted < p->nf || !p->reaper_started) {
    p->nw = started;
    p->nf = fstarted;
    snprintf(err, errlen, "cannot start the server's threads");
    pool_free(p);
    return NULL;
  }
  return p;
oom:
  snprintf(err, errlen, "out of memory");
  if (p) {
    p->nw = p->nf = 0;
    pool_free(p);
  }
  return NULL;
}

void pool_free(struct srv_pool *p)
{
  if (!p) return;
  pthread_mutex_lock(&p->lock);
  p->stop = 1;
  pthread_cond_broadcast(&p->work);
  pthread_cond_broadcast(&p->fetch_work);
  pthread_cond_broadcast(&p->reaper_cv);
  pthread_mutex_unlock(&p->lock);
  for (int i = 0; i < p->nw; i++) pthread_join(p->w[i].thread, NULL);
  for (int i = 0; i < p->nf; i++) pthread_join(p->fetchers[i], NULL);
  if (p->reaper_started) pthread_join(p->reaper, NULL);
  if (p->w)
    for (int i = 0; i < p->nw; i++) cutout_ctx_free(p->w[i].ctx);
  free(p->w);
  free(p->ring);
  free(p->fring);
  free(p->fetchers);
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->work);
  pthread_cond_destroy(&p->fetch_work);
  pthread_cond_destroy(&p->reaper_cv);
  free(p);
}

int pool_submit(struct srv_pool *p, struct job *j)
{
  pthread_mutex_lock(&p->lock);
  int rc = -1;
  if (p->closed) goto out;
  if (j->url) {
    if (p->fcount == p->fcap) goto out;
    p->fring[(p->fhead + p->fcount++) % p->fcap] = j;
    j->state = JOB_FETCHING;
    pthread_cond_signal(&p->fetch_work);
  } else if (push_locked(p, j)) {
    goto out;
  }
  j->next = p->active;
  if (p->active) p->active->prev = j;
  p->active = j;
  p->in_flight++;
  rc = 0;
out:
  if (rc && !p->closed) metrics_rejected(p->metrics);
  pthread_mutex_unlock(&p->lock);
  return rc;
}

void pool_close(struct srv_pool *p, int cancel_all)
{
  pthread_mutex_lock(&p->lock);
  p->closed = 1;
  if (cancel_all)
    for (struct job *j = p->active, *next; j; j = next) {
      next = j->next;
      cancel_locked(p, j, SRV_CANCEL_SHUTDOWN);
    }
  pthread_mutex_unlock(&p->lock);
}

int pool_in_flight(struct srv_pool *p)
{
  pthread_mutex_lock(&p->lock);
  int n = p->in_flight;
  pthread_mutex_unlock(&p->lock);
  return n;
}

void pool_gauges(struct srv_pool *p, struct srv_gauges *g)
{
  pthread_mutex_lock(&p->lock);
  g->queue_depth = (int)p->count;
  g->queue_cap = (int)p->cap;
  g->in_flight = p->in_flight;
  g->workers = p->nw;
  g->busy_workers = 0;
  for (int i = 0; i < p->nw; i++) g->busy_workers += p->w[i].busy;
  g->fetches = p->fetching;
  pthread_mutex_unlock(&p->lock);
}
