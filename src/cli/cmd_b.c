/*
 * cmd_b.c: `cutout b [OPTIONS] WIDTH HEIGHT`, rembg's raw-frame command:
 * headerless RGB24 frames on stdin (ffmpeg -f rawvideo -pix_fmt rgb24 -),
 * one cutout per frame, written with -o PATTERN (printf-style, e.g.
 * out-%03u.png, index from 0) or as a stream of PNGs on stdout.
 *
 * DESIGN
 * The main thread reads frames; W workers (the thread plan's throughput
 * workers) cut out and encode them in parallel; one writer emits them
 * strictly in frame order through a reorder ring.  At most `ring` frames
 * are in flight, so memory is bounded whatever the stream length.
 */
#include "cli.h"
#include "batch.h"
#include "fileio.h"
#include "queue.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void help(void)
{
  printf("Usage: cutout b [OPTIONS] WIDTH HEIGHT\n\n"
         "Read raw RGB24 frames of WIDTH x HEIGHT from stdin (for example\n"
         "ffmpeg -i in.mp4 -f rawvideo -pix_fmt rgb24 -), cut out each one,\n"
         "and write PNGs in frame order: to files named by -o, or one after\n"
         "another on stdout.\n\n"
         "  -o, --output_specifier PATTERN  printf-style file name with one\n"
         "                              integer field, e.g. out/%%05d.png\n"
         "%s"
         "  -h, --help                  this help\n",
         cli_options_help);
}

struct frame {
  unsigned long idx;
  cutout_image *img;
  void *png;
  size_t len;
  char err[512];
  int done;
};

struct bstate {
  const struct cli_opts *o;
  cutout_model *model;
  cutout_encode_params enc;
  const char *pattern;
  struct cli_queue q;
  struct frame **ring; /* slot idx % ring_size */
  size_t ring_size;
  unsigned long next_out, read_count;
  int reading_done;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  unsigned long failed;
  int out_error;
  cutout_stage_times sum;
};

/* Check that pattern has exactly one integer conversion (Python's %
 * operator: d i u x X o, or s), and build the C format in fmt. */
static int check_pattern(const char *pat, char *fmt, size_t cap)
{
  int conv = 0;
  size_t o = 0;
  for (const char *p = pat; *p; p++) {
    if (o + 8 >= cap) return -1;
    fmt[o++] = *p;
    if (*p != '%') continue;
    if (p[1] == '%') {
      fmt[o++] = *++p;
      continue;
    }
    p++;
    while (*p && strchr("-+ #0", *p)) fmt[o++] = *p++;
    while (*p >= '0' && *p <= '9') fmt[o++] = *p++;
    if (!*p || !strchr("diuxXos", *p) || conv++) return -1;
    /* the index is an unsigned long; %s prints it in decimal */
    fmt[o++] = 'l';
    fmt[o++] = *p == 's' || *p == 'd' || *p == 'i' ? 'u' : *p;
    if (o >= cap) return -1;
  }
  fmt[o] = 0;
  return conv == 1 ? 0 : -1;
}

static void *worker_main(void *p)
{
  struct bstate *s = ((void **)p)[0];
  cutout_ctx *ctx = ((void **)p)[1];
  struct frame *f;
  while ((f = cli_queue_pop(&s->q))) {
    cutout_image *res = NULL;
    if (cutout_remove(ctx, s->model, f->img, &s->o->remove, &res) ||
        cutout_encode(ctx, res, &s->enc, &f->png, &f->len))
      snprintf(f->err, sizeof f->err, "%s", cutout_ctx_errmsg(ctx));
    else if (*cutout_ctx_warning(ctx)) /* issue #6 */
      cli_error("warning: frame %lu: %s", (unsigned long)f->idx,
                cutout_ctx_warning(ctx));
    cutout_image_free(res);
    cutout_image_free(f->img);
    f->img = NULL;
    cutout_stage_times t = cutout_ctx_times(ctx);
    pthread_mutex_lock(&s->lock);
    for (int k = CUTOUT_STAGE_PREPROCESS; k < CUTOUT_STAGE_COUNT; k++) {
      s->sum.wall[k] += t.wall[k];
      s->sum.cpu[k] += t.cpu[k];
    }
    f->done = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
  }
  return NULL;
}

/* Emit frames in order as they complete. */
static void *writer_main(void *p)
{
  struct bstate *s = p;
  char fmt[PATH_MAX], name[PATH_MAX], err[1024], dir[PATH_MAX];
  if (s->pattern && check_pattern(s->pattern, fmt, sizeof fmt)) fmt[0] = 0;
  for (;;) {
    pthread_mutex_lock(&s->lock);
    struct frame *f;
    while (!((f = s->ring[s->next_out % s->ring_size]) && f->done) &&
           !(s->reading_done && s->next_out == s->read_count))
      pthread_cond_wait(&s->cond, &s->lock);
    if (!f || !f->done) {
      pthread_mutex_unlock(&s->lock);
      return NULL;
    }
    pthread_mutex_unlock(&s->lock);

    if (f->err[0]) {
      cli_error("frame %lu: %s", f->idx, f->err);
      s->failed++;
    } else if (s->pattern) {
      /* fmt was checked by check_pattern(): one integer field, %lu-typed */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
      snprintf(name, sizeof name, fmt, f->idx);
#pragma GCC diagnostic pop
      const char *slash = strrchr(name, '/');
      if (slash && slash != name) {
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - name), name);
        if (cli_mkdirs(dir, err, sizeof err)) {
          cli_error("%s: %s", dir, err);
          s->failed++;
        }
      }
      if (cli_write_atomic(name, f->png, f->len, err, sizeof err)) {
        cli_error("%s: %s", name, err);
        s->failed++;
      }
    } else if (!s->out_error &&
               cli_write_atomic("-", f->png, f->len, err, sizeof err)) {
      cli_error("%s", err);
      s->out_error = 1;
      s->failed++;
    }
    cutout_free(f->png);
    pthread_mutex_lock(&s->lock);
    s->ring[s->next_out % s->ring_size] = NULL;
    s->next_out++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    free(f);
  }
}

static size_t read_full(int fd, uint8_t *buf, size_t n)
{
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  return got;
}

int cmd_b(int argc, char **argv)
{
  struct cli_opts o;
  char err[1024] = "", fmt[PATH_MAX];
  const char *pos[2] = {NULL, NULL}, *pattern = NULL;
  int npos = 0, rc = 1;
  cutout_engine *eng = NULL;
  struct bstate s;
  memset(&s, 0, sizeof s);

  cli_opts_init(&o);
  for (int i = 1; i < argc;) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      help();
      cli_opts_free(&o);
      return 0;
    }
    if (!strcmp(a, "-o") || !strcmp(a, "--output_specifier") ||
        !strcmp(a, "--output-specifier")) {
      if (i + 1 >= argc) {
        snprintf(err, sizeof err, "%s needs a file name pattern", a);
        goto usage;
      }
      pattern = argv[i + 1];
      i += 2;
      continue;
    }
    int r = cli_parse_option(argc, argv, &i, &o, err, sizeof err);
    if (r < 0) goto usage;
    if (r > 0) continue;
    if (a[0] == '-' && a[1] && !(a[1] >= '0' && a[1] <= '9')) {
      snprintf(err, sizeof err, "unknown option %s (see cutout b --help)", a);
      goto usage;
    }
    if (npos == 2) {
      snprintf(err, sizeof err, "too many arguments: %s", a);
      goto usage;
    }
    pos[npos++] = argv[i++];
  }
  if (npos != 2) {
    snprintf(err, sizeof err, "need WIDTH and HEIGHT");
    goto usage;
  }
  long w, h;
  char *e1, *e2;
  errno = 0;
  w = strtol(pos[0], &e1, 10);
  h = strtol(pos[1], &e2, 10);
  if (errno || *e1 || *e2 || w <= 0 || h <= 0 || w > 1000000 || h > 1000000) {
    snprintf(err, sizeof err, "bad frame size %s x %s: WIDTH and HEIGHT must "
             "be positive integers", pos[0], pos[1]);
    goto usage;
  }
  if ((uint64_t)w * (uint64_t)h > o.max_pixels) {
    snprintf(err, sizeof err, "frame %ld x %ld is over the limit of %llu "
             "pixels (--max-pixels)", w, h, (unsigned long long)o.max_pixels);
    goto usage;
  }
  if (pattern && check_pattern(pattern, fmt, sizeof fmt)) {
    snprintf(err, sizeof err, "bad -o pattern '%s': it needs exactly one "
             "integer field such as %%d or %%05u", pattern);
    goto usage;
  }
  if (cli_apply_extras(&o, err, sizeof err)) goto usage;
  if (!pattern && isatty(1)) {
    cli_error("refusing to write PNG data to a terminal: use -o PATTERN or "
              "redirect stdout");
    goto done;
  }

  cutout_engine_params ep = o.engine;
  if (ep.workload < 0) ep.workload = CUTOUT_WORKLOAD_THROUGHPUT;
  if (cutout_engine_new(&ep, &eng, err, sizeof err)) {
    cli_error("%s", err);
    goto done;
  }
  cutout_model_params mp = cutout_model_default_params();
  mp.model_path = o.model_path;
  /* issue #7: fetch the model on first use, unless --offline */
  if (cli_model_prepare(&o, &mp, err, sizeof err)) {
    cli_error("%s", err);
    goto done;
  }
  if (cutout_model_load(eng, o.model, &mp, &s.model, err, sizeof err)) {
    cli_error("%s", err);
    goto done;
  }
  cutout_engine_params eff = cutout_engine_effective(eng);
  int nw = eff.workers > 0 ? eff.workers : 1;
  s.o = &o;
  s.pattern = pattern;
  s.enc = cutout_encode_default_params();
  s.enc.format = CUTOUT_FORMAT_PNG; /* rembg writes PNG whatever the name */
  s.ring_size = (size_t)nw * 2 + 2;
  s.ring = calloc(s.ring_size, sizeof *s.ring);
  pthread_mutex_init(&s.lock, NULL);
  pthread_cond_init(&s.cond, NULL);
  cutout_ctx **ctx = calloc((size_t)nw, sizeof *ctx);
  pthread_t *tids = calloc((size_t)nw, sizeof *tids);
  void *(*args)[2] = calloc((size_t)nw, sizeof *args);
  if (!s.ring || !ctx || !tids || !args || cli_queue_init(&s.q, (size_t)nw)) {
    cli_error("out of memory");
    free(ctx);
    free(tids);
    free(args);
    goto done;
  }
  cutout_ctx_params cp = cutout_ctx_default_params();
  cp.io_threads = 1;
  cp.max_pixels = o.max_pixels;
  int started = 0;
  for (int i = 0; i < nw; i++) {
    if (cutout_ctx_new(eng, &cp, &ctx[i])) break;
    args[i][0] = &s;
    args[i][1] = ctx[i];
    if (pthread_create(&tids[i], NULL, worker_main, args[i])) break;
    started++;
  }
  pthread_t writer;
  int writer_ok = started == nw && pthread_create(&writer, NULL, writer_main, &s) == 0;

  size_t frame_bytes = (size_t)w * (size_t)h * 3;
  double t0 = cli_now();
  while (writer_ok) {
    /* Wait for a free slot in the reorder ring (bounds memory). */
    pthread_mutex_lock(&s.lock);
    while (s.read_count - s.next_out >= s.ring_size)
      pthread_cond_wait(&s.cond, &s.lock);
    pthread_mutex_unlock(&s.lock);

    struct frame *f = calloc(1, sizeof *f);
    if (!f || cutout_image_new((uint32_t)w, (uint32_t)h, 3, &f->img)) {
      free(f);
      cli_error("out of memory");
      break;
    }
    size_t got = read_full(0, f->img->pixels, frame_bytes);
    if (got < frame_bytes) {
      if (got > 0)
        fprintf(stderr, "cutout: warning: stdin ended inside frame %lu "
                "(%zu of %zu bytes): the partial frame is dropped\n",
                s.read_count, got, frame_bytes);
      cutout_image_free(f->img);
      free(f);
      break;
    }
    f->idx = s.read_count;
    pthread_mutex_lock(&s.lock);
    s.ring[f->idx % s.ring_size] = f;
    s.read_count++;
    pthread_mutex_unlock(&s.lock);
    if (cli_queue_push(&s.q, f)) break;
  }
  cli_queue_close(&s.q);
  for (int i = 0; i < started; i++) pthread_join(tids[i], NULL);
  pthread_mutex_lock(&s.lock);
  s.reading_done = 1;
  pthread_cond_broadcast(&s.cond);
  pthread_mutex_unlock(&s.lock);
  if (writer_ok) pthread_join(writer, NULL);
  double el = cli_now() - t0;
  if (o.stats)
    cli_stats_print(stderr, &s.sum, (int)s.read_count, el, o.stats == 2);
  for (int i = 0; i < nw; i++) cutout_ctx_free(ctx[i]);
  free(ctx);
  free(tids);
  free(args);
  cli_queue_destroy(&s.q);
  pthread_mutex_destroy(&s.lock);
  pthread_cond_destroy(&s.cond);
  rc = (writer_ok && !s.failed) ? 0 : 1;
  goto done;

usage:
  cli_error("%s", err);
  rc = 2;
done:
  free(s.ring);
  cutout_model_free(s.model);
  cutout_engine_free(eng);
  cli_opts_free(&o);
  return rc;
}
