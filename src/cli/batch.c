/*
 * batch.c: the pipeline behind `cutout p`; see cmd_p.c for the design.
 *
 * Ownership: an item is owned by exactly one stage at a time; it moves
 * through the queues and ends in finish_item(), which records the result
 * and frees it.  The memory reserved for an item is returned there too.
 */
#include "batch_priv.h"
#include "cli.h" /* issue #7: cli_model_prepare */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct item {
  char *in, *out;
  uint8_t *data;
  size_t len;
  cutout_image *img, *res;
  void *enc;
  size_t enc_len;
  size_t reserved;
  cutout_stage_times times;
};

/* ------------------------------------------------------------ signals --- */

static struct batch *active; /* the run a signal stops */

static void on_signal(int sig)
{
  (void)sig;
  struct batch *b = active;
  if (b && !atomic_exchange(&b->stop, 1)) {
    char c = 1;
    ssize_t w = write(b->wake_pipe[1], &c, 1);
    (void)w;
    return;
  }
  /* Second signal: abort at once, but leave no partial file behind. */
  cli_tmp_cleanup_now();
  _exit(130);
}

int batch_stopping(const struct batch *b) { return atomic_load(&b->stop); }

/* ------------------------------------------------------------ helpers --- */

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int cli_mkdirs(const char *path, char *err, size_t errlen)
{
  char p[PATH_MAX];
  if ((size_t)snprintf(p, sizeof p, "%s", path) >= sizeof p) {
    snprintf(err, errlen, "path too long");
    return -1;
  }
  for (char *s = p + 1;; s++) {
    if (*s == '/' || !*s) {
      char c = *s;
      *s = 0;
      if (mkdir(p, 0777) && errno != EEXIST) {
        snprintf(err, errlen, "cannot create folder %s: %s", p, strerror(errno));
        return -1;
      }
      *s = c;
      if (!c) break;
    }
  }
  struct stat st;
  if (stat(path, &st) || !S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "not a folder");
    return -1;
  }
  return 0;
}

int batch_is_output_dir(const struct batch *b, const char *path)
{
  char r[PATH_MAX];
  return realpath(path, r) && strcmp(r, b->out_real) == 0;
}

static void add_failure(struct batch *b, const char *path, const char *why)
{
  /* caller holds b->lock */
  b->failed++;
  if (b->n_failures == b->cap_failures) {
    size_t nc = b->cap_failures ? b->cap_failures * 2 : 16;
    char **nf = realloc(b->failures, nc * sizeof *nf);
    if (!nf) return;
    b->failures = nf;
    b->cap_failures = nc;
  }
  size_t n = strlen(path) + strlen(why) + 3;
  char *s = malloc(n);
  if (!s) return;
  snprintf(s, n, "%s: %s", path, why);
  b->failures[b->n_failures++] = s;
}

void batch_report_error(struct batch *b, const char *path, const char *why)
{
  pthread_mutex_lock(&b->lock);
  add_failure(b, path, why);
  pthread_cond_broadcast(&b->changed);
  pthread_mutex_unlock(&b->lock);
}

static void draw_progress(struct batch *b, int final)
{
  /* caller holds b->lock */
  if (!b->tty) return;
  double t = now(), el = t - b->t_start;
  if (!final && t - b->last_draw < 0.1) return;
  b->last_draw = t;
  unsigned long done = b->processed + b->failed;
  unsigned long total = b->initial_done ? b->total : b->submitted;
  double rate = el > 0 ? (double)b->processed / el : 0;
  char eta[32] = "--";
  if (b->initial_done && rate > 0 && total >= done)
    snprintf(eta, sizeof eta, "%.0fs", (double)(total - done) / rate);
  int width = 30, fill = total ? (int)((double)done / (double)total * width) : 0;
  char bar[64];
  for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
  bar[width] = 0;
  fprintf(stderr, "\r[%s] %lu/%lu  %.2f img/s  ETA %s  %s", bar, done, total,
          rate, eta, b->failed ? "(failures)" : "");
  if (final) fputc('\n', stderr);
  fflush(stderr);
}

static void free_item(struct item *it)
{
  if (!it) return;
  free(it->in);
  free(it->out);
  free(it->data);
  cutout_image_free(it->img);
  cutout_image_free(it->res);
  cutout_free(it->enc);
  free(it);
}

/* The end of every item: count it, return its memory, free it. */
static void finish_item(struct batch *b, struct item *it, const char *why)
{
  pthread_mutex_lock(&b->lock);
  b->budget_used -= it->reserved;
  if (why) {
    add_failure(b, it->in, why);
  } else {
    b->processed++;
    for (int s = 0; s < CUTOUT_STAGE_COUNT; s++) {
      b->stage_sum.wall[s] += it->times.wall[s];
      b->stage_sum.cpu[s] += it->times.cpu[s];
    }
  }
  if (!b->tty)
    fprintf(stderr, "%s: %s -> %s%s%s\n", why ? "failed" : "processed",
            it->in, it->out, why ? ": " : "", why ? why : "");
  draw_progress(b, 0);
  pthread_cond_broadcast(&b->changed);
  pthread_mutex_unlock(&b->lock);
  free_item(it);
}

/* Where an input's output goes: mirrored sub-folders, or rembg's flat
 * layout; the extension follows the format (rembg: always .png). */
static int output_path(const struct batch *b, const char *in, char *out,
                       size_t cap)
{
  size_t il = strlen(b->bo.in_dir);
  const char *rel = in + il;
  while (*rel == '/') rel++;
  const char *base = strrchr(in, '/');
  base = base ? base + 1 : in;
  const char *dot = strrchr(base, '.');
  size_t stem = dot && dot != base ? (size_t)(dot - base) : strlen(base);
  size_t dirlen = b->bo.flat ? 0 : (size_t)(base - rel);
  const char *ext = cutout_format_name(b->enc.format);
  if (b->enc.format == CUTOUT_FORMAT_JPEG) ext = "jpg";
  int n = snprintf(out, cap, "%s/%.*s%.*s.%s", b->bo.out_dir, (int)dirlen, rel,
                   (int)stem, base, ext);
  return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

static int file_exists(const char *p)
{
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int looks_like_image(const char *path)
{
  uint8_t head[32];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, head, sizeof head);
  close(fd);
  return n > 0 && cutout_detect_format(head, (size_t)n) != CUTOUT_FORMAT_UNKNOWN;
}

static void delete_input(struct batch *b, const char *in)
{
  if (b->bo.delete_input && unlink(in) && errno != ENOENT)
    fprintf(stderr, "cutout: warning: %s: cannot delete: %s\n", in,
            strerror(errno));
}

void batch_submit(struct batch *b, const char *path)
{
  if (batch_stopping(b)) return;
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (strncmp(base, CLI_TMP_PREFIX, strlen(CLI_TMP_PREFIX)) == 0) return;
  struct stat st;
  if (stat(path, &st) || !S_ISREG(st.st_mode)) return;
  /* Never take our own outputs as inputs (OUTPUT_DIR inside INPUT_DIR). */
  char real[PATH_MAX];
  size_t ol = strlen(b->out_real);
  if (realpath(path, real) && strncmp(real, b->out_real, ol) == 0 &&
      real[ol] == '/')
    return;

  pthread_mutex_lock(&b->lock);
  int fresh = strset_add(&b->claimed, path) == 1;
  pthread_mutex_unlock(&b->lock);
  if (!fresh) return; /* already taken by the walk or the watcher */

  if (!looks_like_image(path)) {
    pthread_mutex_lock(&b->lock);
    b->skipped_notimage++;
    pthread_mutex_unlock(&b->lock);
    return;
  }
  char out[PATH_MAX];
  if (output_path(b, path, out, sizeof out)) {
    batch_report_error(b, path, "output path too long");
    return;
  }
  pthread_mutex_lock(&b->lock);
  int collide = b->bo.flat && strset_add(&b->outputs, out) == 0;
  int exists = !collide && !b->bo.overwrite && file_exists(out);
  if (collide) b->skipped_collision++;
  if (exists) b->skipped_exists++;
  if (!collide && !exists) {
    b->submitted++;
    if (!b->initial_done) b->total++;
  }
  pthread_mutex_unlock(&b->lock);
  if (collide) {
    fprintf(stderr, "cutout: skipped %s: its flat output name %s is taken by "
            "another input\n", path, out);
    return;
  }
  if (exists) {
    delete_input(b, path); /* rembg deletes it too: the output is there */
    return;
  }
  struct item *it = calloc(1, sizeof *it);
  if (it) {
    it->in = strdup(path);
    it->out = strdup(out);
  }
  if (!it || !it->in || !it->out) {
    free_item(it);
    batch_report_error(b, path, "out of memory");
    return;
  }
  if (cli_queue_push(&b->q_read, it)) free_item(it);
}

void batch_initial_pass_done(struct batch *b)
{
  pthread_mutex_lock(&b->lock);
  b->initial_done = 1;
  pthread_mutex_unlock(&b->lock);
}

/* ------------------------------------------------------------- stages --- */

struct thread_arg {
  struct batch *b;
  cutout_ctx *ctx;
};

/* Bytes an image of w x h costs in flight: decoded pixels (<= 4 B/px),
 * the mask and the model-sized resize (~1), the RGBA result (4), the
 * encoder's filtered rows and output (~5). */
static size_t image_cost(uint32_t w, uint32_t h, size_t file_len)
{
  return (size_t)w * h * 14 + file_len;
}

static void reserve(struct batch *b, size_t bytes)
{
  pthread_mutex_lock(&b->lock);
  /* Wait while others are in flight and this one would not fit; alone,
   * an image may use more than the budget (it is refused only by
   * --max-pixels). */
  while (b->budget_used > 0 && b->budget_used + bytes > b->bo.memory_budget &&
         !batch_stopping(b))
    pthread_cond_wait(&b->changed, &b->lock);
  b->budget_used += bytes;
  pthread_mutex_unlock(&b->lock);
}

static void *reader_main(void *p)
{
  struct thread_arg *a = p;
  struct batch *b = a->b;
  struct item *it;
  char err[1024];
  while ((it = cli_queue_pop(&b->q_read))) {
    if (batch_stopping(b)) {
      finish_item(b, it, "interrupted before it started");
      continue;
    }
    if (cli_read_all(it->in, &it->data, &it->len, err, sizeof err)) {
      finish_item(b, it, err);
      continue;
    }
    uint32_t w = 0, h = 0;
    if (cutout_probe(it->data, it->len, NULL, &w, &h) == CUTOUT_OK) {
      it->reserved = image_cost(w, h, it->len);
      reserve(b, it->reserved);
    }
    if (cutout_decode(a->ctx, it->data, it->len, &it->img)) {
      finish_item(b, it, cutout_ctx_errmsg(a->ctx));
      continue;
    }
    it->times = cutout_ctx_times(a->ctx);
    free(it->data);
    it->data = NULL;
    if (cli_queue_push(&b->q_infer, it)) finish_item(b, it, "interrupted");
  }
  return NULL;
}

static void *worker_main(void *p)
{
  struct thread_arg *a = p;
  struct batch *b = a->b;
  struct item *it;
  while ((it = cli_queue_pop(&b->q_infer))) {
    if (batch_stopping(b)) {
      finish_item(b, it, "interrupted before inference");
      continue;
    }
    if (cutout_remove(a->ctx, b->model, it->img, &b->o->remove, &it->res)) {
      finish_item(b, it, cutout_ctx_errmsg(a->ctx));
      continue;
    }
    /* issue #6: a warning (alpha matting fell back) is not a failure */
    if (*cutout_ctx_warning(a->ctx))
      fprintf(stderr, "cutout: warning: %s: %s\n", it->in,
              cutout_ctx_warning(a->ctx));
    cutout_stage_times t = cutout_ctx_times(a->ctx);
    it->times.wall[CUTOUT_STAGE_MATTING] = t.wall[CUTOUT_STAGE_MATTING];
    it->times.cpu[CUTOUT_STAGE_MATTING] = t.cpu[CUTOUT_STAGE_MATTING];
    for (int s = CUTOUT_STAGE_PREPROCESS; s <= CUTOUT_STAGE_POSTPROCESS; s++) {
      it->times.wall[s] = t.wall[s];
      it->times.cpu[s] = t.cpu[s];
    }
    cutout_image_free(it->img);
    it->img = NULL;
    if (cli_queue_push(&b->q_write, it)) finish_item(b, it, "interrupted");
  }
  return NULL;
}

static void *writer_main(void *p)
{
  struct thread_arg *a = p;
  struct batch *b = a->b;
  struct item *it;
  char err[1024], dir[PATH_MAX];
  while ((it = cli_queue_pop(&b->q_write))) {
    if (cutout_encode(a->ctx, it->res, &b->enc, &it->enc, &it->enc_len)) {
      finish_item(b, it, cutout_ctx_errmsg(a->ctx));
      continue;
    }
    cutout_stage_times t = cutout_ctx_times(a->ctx);
    it->times.wall[CUTOUT_STAGE_ENCODE] = t.wall[CUTOUT_STAGE_ENCODE];
    it->times.cpu[CUTOUT_STAGE_ENCODE] = t.cpu[CUTOUT_STAGE_ENCODE];
    const char *slash = strrchr(it->out, '/');
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - it->out), it->out);
    if (cli_mkdirs(dir, err, sizeof err) ||
        cli_write_atomic(it->out, it->enc, it->enc_len, err, sizeof err)) {
      finish_item(b, it, err);
      continue;
    }
    /* The output is fsynced and renamed into place: now the input may go. */
    delete_input(b, it->in);
    finish_item(b, it, NULL);
  }
  return NULL;
}

/* ----------------------------------------------------------- lifetime --- */

int batch_new(const struct cli_opts *o, const struct batch_opts *bo,
              struct batch **out, char *err, size_t errlen)
{
  struct batch *b = calloc(1, sizeof *b);
  if (!b) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  b->bo = *bo;
  b->o = o;
  b->inotify_fd = -1;
  b->wake_pipe[0] = b->wake_pipe[1] = -1;
  pthread_mutex_init(&b->lock, NULL);
  pthread_cond_init(&b->changed, NULL);
  strset_init(&b->claimed);
  strset_init(&b->outputs);
  atomic_init(&b->stop, 0);
  b->tty = isatty(2);
  b->t_start = now();
  if (!realpath(bo->in_dir, b->in_real) || !realpath(bo->out_dir, b->out_real)) {
    snprintf(err, errlen, "%s: %s", bo->in_dir, strerror(errno));
    goto fail;
  }
  b->enc = cutout_encode_default_params();
  b->enc.format = o->format ? o->format : CUTOUT_FORMAT_PNG;
  if (o->quality > 0) b->enc.quality = o->quality;
  if (b->enc.format == CUTOUT_FORMAT_JPEG && !o->remove.only_mask &&
      (!o->remove.bgcolor_set || o->remove.bgcolor[3] != 255)) {
    snprintf(err, errlen, "JPEG cannot store transparency: give an opaque "
             "background colour (-bgc R G B 255) or choose PNG/WebP");
    goto fail;
  }

  cutout_engine_params ep = o->engine;
  if (ep.workload < 0) ep.workload = CUTOUT_WORKLOAD_THROUGHPUT;
  if (bo->watch && ep.workload == CUTOUT_WORKLOAD_THROUGHPUT &&
      o->engine.workload < 0)
    ep.workload = CUTOUT_WORKLOAD_SERVER; /* idle gaps: no spinning */
  if (cutout_engine_new(&ep, &b->engine, err, errlen)) goto fail;
  cutout_model_params mp = cutout_model_default_params();
  mp.model_path = o->model_path;
  /* issue #7: fetch the model on first use, unless --offline */
  if (cli_model_prepare(o, &mp, err, errlen)) goto fail;
  if (cutout_model_load(b->engine, o->model, &mp, &b->model, err, errlen))
    goto fail;

  cutout_engine_params eff = cutout_engine_effective(b->engine);
  b->n_workers = eff.workers > 0 ? eff.workers : 1;
  b->n_readers = b->n_writers = eff.io_threads > 1 ? 2 : 1;
  int n = b->n_readers + b->n_workers + b->n_writers;
  b->ctx = calloc((size_t)n, sizeof *b->ctx);
  b->threads = calloc((size_t)n, sizeof *b->threads);
  struct thread_arg *args = calloc((size_t)n, sizeof *args);
  if (!b->ctx || !b->threads || !args ||
      cli_queue_init(&b->q_read, 1024) ||
      cli_queue_init(&b->q_infer, (size_t)b->n_workers) ||
      cli_queue_init(&b->q_write, (size_t)b->n_workers) || pipe(b->wake_pipe)) {
    free(args);
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  /* Parallelism comes from many images at once: one pixel thread each. */
  cutout_ctx_params cp = cutout_ctx_default_params();
  cp.max_pixels = o->max_pixels;
  cp.io_threads = 1;
  for (int i = 0; i < n; i++)
    if (cutout_ctx_new(b->engine, &cp, &b->ctx[i])) {
      free(args);
      snprintf(err, errlen, "out of memory");
      goto fail;
    }

  active = b;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  /* Only the main thread takes the signals. */
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  for (int i = 0; i < n; i++) {
    args[i].b = b;
    args[i].ctx = b->ctx[i];
    void *(*fn)(void *) = i < b->n_readers ? reader_main
                          : i < b->n_readers + b->n_workers ? worker_main
                                                            : writer_main;
    if (pthread_create(&b->threads[i], NULL, fn, &args[i]) == 0)
      b->n_threads = i + 1;
    else
      break;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (b->n_threads != n) {
    snprintf(err, errlen, "cannot start threads");
    cli_queue_close(&b->q_read);
    cli_queue_close(&b->q_infer);
    cli_queue_close(&b->q_write);
    for (int i = 0; i < b->n_threads; i++) pthread_join(b->threads[i], NULL);
    b->n_threads = 0;
    free(args);
    goto fail;
  }
  b->thread_args = args;
  *out = b;
  return 0;
fail:
  batch_free(b);
  return -1;
}

int batch_finish(struct batch *b)
{
  /* Readers drain the paths, then workers, then writers. */
  cli_queue_close(&b->q_read);
  for (int i = 0; i < b->n_readers; i++) pthread_join(b->threads[i], NULL);
  cli_queue_close(&b->q_infer);
  for (int i = b->n_readers; i < b->n_readers + b->n_workers; i++)
    pthread_join(b->threads[i], NULL);
  cli_queue_close(&b->q_write);
  for (int i = b->n_readers + b->n_workers; i < b->n_threads; i++)
    pthread_join(b->threads[i], NULL);
  b->n_threads = 0;

  double el = now() - b->t_start;
  pthread_mutex_lock(&b->lock);
  draw_progress(b, 1);
  unsigned long skipped = b->skipped_exists + b->skipped_notimage +
                          b->skipped_collision;
  fprintf(stderr, "cutout p: %lu processed, %lu skipped, %lu failed in %.1f s "
          "(%.2f images/s)\n", b->processed, skipped, b->failed, el,
          el > 0 ? (double)b->processed / el : 0.0);
  if (skipped)
    fprintf(stderr, "  skipped: %lu output exists, %lu not an image, %lu "
            "flat-name collision\n", b->skipped_exists, b->skipped_notimage,
            b->skipped_collision);
  for (size_t i = 0; i < b->n_failures; i++)
    fprintf(stderr, "  failed: %s\n", b->failures[i]);
  if (b->o->stats)
    cli_stats_print(stderr, &b->stage_sum, (int)b->processed, el,
                    b->o->stats == 2);
  int rc = batch_stopping(b) ? 130 : b->failed ? 1 : 0;
  pthread_mutex_unlock(&b->lock);
  return rc;
}

void batch_free(struct batch *b)
{
  if (!b) return;
  if (b->n_threads) {
    atomic_store(&b->stop, 1);
    batch_finish(b);
  }
  if (active == b) active = NULL;
  int n = b->n_readers + b->n_workers + b->n_writers;
  for (int i = 0; b->ctx && i < n; i++) cutout_ctx_free(b->ctx[i]);
  free(b->ctx);
  free(b->threads);
  free(b->thread_args);
  if (b->q_read.items) cli_queue_destroy(&b->q_read);
  if (b->q_infer.items) cli_queue_destroy(&b->q_infer);
  if (b->q_write.items) cli_queue_destroy(&b->q_write);
  cutout_model_free(b->model);
  cutout_engine_free(b->engine);
  strset_free(&b->claimed);
  strset_free(&b->outputs);
  for (int i = 0; i < b->n_wd; i++) free(b->wd_paths[i]);
  free(b->wd_paths);
  for (size_t i = 0; i < b->n_failures; i++) free(b->failures[i]);
  free(b->failures);
  if (b->wake_pipe[0] >= 0) close(b->wake_pipe[0]);
  if (b->wake_pipe[1] >= 0) close(b->wake_pipe[1]);
  if (b->inotify_fd >= 0) close(b->inotify_fd);
  pthread_mutex_destroy(&b->lock);
  pthread_cond_destroy(&b->changed);
  free(b);
}
