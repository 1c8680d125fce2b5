/*
 * cmd_d.c: `cutout d [OPTIONS] [MODEL...]`, rembg's download command, and
 * the download-on-first-use step that i, p and b take before they load a
 * model (as rembg's sessions call pooch.retrieve), unless --offline.
 *
 * Without MODEL, every model rembg publishes is fetched, as `rembg d` does;
 * the *_custom models (which run the user's own file) are skipped with a
 * note instead of failing.  A failure is reported and the next model is
 * tried; the exit status is 1 when any failed.  On a terminal, a progress
 * bar is drawn on stderr; otherwise only the outcome of each model.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(void)
{
  printf("Usage: cutout d [OPTIONS] [MODEL...]\n\n"
         "Download models into the model folder ($U2NET_HOME, else\n"
         "$XDG_DATA_HOME/.u2net, else ~/.u2net), checked against rembg's\n"
         "checksums.  Without MODEL: every model rembg publishes.  A model\n"
         "already there with the right checksum is not fetched again.\n\n"
         "  -x, --extras JSON           {\"sam_model\": NAME, \"sam_quant\": true}\n"
         "                              pick SAM's files (default\n"
         "                              sam_vit_b_01ec64)\n"
         "      --base-url URL          fetch from this mirror instead of\n"
         "                              rembg's releases (or set\n"
         "                              CUTOUT_MODEL_BASE_URL)\n"
         "      --timeout SECONDS       give up after this long without data\n"
         "                              (default 60, or CUTOUT_DOWNLOAD_TIMEOUT)\n"
         "  -h, --help                  this help\n\n"
         "Proxies: http_proxy, https_proxy, HTTP_PROXY, HTTPS_PROXY, ALL_PROXY,\n"
         "NO_PROXY.  MODEL_CHECKSUM_DISABLED skips the checksums, as in rembg.\n"
         "See `cutout models` for the list.\n");
}

/* ---- the progress bar ------------------------------------------------- */

struct bar {
  int tty;       /* draw at all */
  int drawn;     /* a bar line is on screen (needs a newline) */
  int fetched;   /* something was downloaded */
  int full;      /* the 100% bar is drawn */
  double t0, last;
  char file[160];
};

static void bar_end(struct bar *b)
{
  if (b->drawn) fputc('\n', stderr);
  b->drawn = 0;
}

static void human(double v, char *out, size_t cap)
{
  if (v >= 1e9)
    snprintf(out, cap, "%.2f GB", v / 1e9);
  else if (v >= 1e6)
    snprintf(out, cap, "%.1f MB", v / 1e6);
  else
    snprintf(out, cap, "%.0f kB", v / 1e3);
}

static void on_progress(void *user, const char *file, uint64_t done,
                        uint64_t total)
{
  struct bar *b = user;
  double now = cli_now();
  b->fetched = 1;
  if (strcmp(file, b->file) != 0) {
    bar_end(b);
    snprintf(b->file, sizeof b->file, "%s", file);
    b->t0 = now;
    b->last = 0;
    b->full = 0;
  }
  if (!b->tty) return;
  int finished = total && done >= total;
  if (finished ? b->full : now - b->last < 0.1) return; /* 10 a second */
  b->full = finished;
  b->last = now;
  char d[32], t[32] = "?", r[32];
  human((double)done, d, sizeof d);
  if (total) human((double)total, t, sizeof t);
  double el = now - b->t0;
  human(el > 0 ? (double)done / el : 0, r, sizeof r);
  char hashes[21];
  int fill = total ? (int)(20.0 * (double)done / (double)total) : 0;
  for (int i = 0; i < 20; i++) hashes[i] = i < fill ? '#' : '.';
  hashes[20] = 0;
  if (total)
    fprintf(stderr, "\r%-32.32s [%s] %3d%% %s/%s %s/s\033[K", file, hashes,
            (int)(100.0 * (double)done / (double)total), d, t, r);
  else
    fprintf(stderr, "\r%-32.32s %s %s/s\033[K", file, d, r);
  b->drawn = 1;
}

/* ---- first use: i, p, b ------------------------------------------------ */

int cli_model_prepare(const struct cli_opts *o, cutout_model_params *mp,
                      char *err, size_t errlen)
{
  cli_model_params(o, mp);
  if (o->offline) return 0;
  const cutout_model_info *info = cutout_model_info_find(o->model);
  /* a path, a custom model, or a model rembg does not publish: nothing to
   * fetch, and cutout_model_load says what is missing */
  if (!info || (!info->url && strcmp(info->family, "sam") != 0)) return 0;
  struct bar b = {isatty(2), 0, 0, 0, 0, 0, ""};
  cutout_download_params dp = cutout_download_default_params();
  dp.progress = on_progress;
  dp.progress_user = &b;
  char path[4096] = "", why[1024];
  int present = 0;
  cutout_model_locate(o->model, mp, path, sizeof path, NULL, &present, NULL);
  cutout_status st = cutout_model_download(o->model, mp, &dp, why,
                                           sizeof why);
  bar_end(&b);
  if (!st) return 0;
  if (!present)
    snprintf(err, errlen, "model %s: %s not found, and downloading it "
             "failed: %s (`cutout d %s` retries; --offline never "
             "downloads)", o->model, path, why, o->model);
  else
    snprintf(err, errlen, "model %s: %s", o->model, why);
  return -1;
}

/* ---- cutout d ---------------------------------------------------------- */

static int fetch_one(const char *name, const cutout_model_params *mp,
                     const cutout_download_params *base)
{
  char err[1024], path[4096];
  uint64_t bytes = 0;
  struct bar b = {isatty(2), 0, 0, 0, 0, 0, ""};
  cutout_download_params dp = *base;
  dp.progress = on_progress;
  dp.progress_user = &b;
  cutout_status st = cutout_model_download(name, mp, &dp, err, sizeof err);
  bar_end(&b);
  if (st) {
    cli_error("%s: %s", name, err);
    return -1;
  }
  cutout_model_locate(name, mp, path, sizeof path, &bytes, NULL, NULL);
  char h[32];
  human((double)bytes, h, sizeof h);
  fprintf(stderr, "%s: %s %s (%s)\n", name,
          b.fetched ? "downloaded to" : "already present:", path, h);
  return 0;
}

int cmd_d(int argc, char **argv)
{
  const char *extras = NULL;
  const char *names[256];
  int n = 0, failed = 0;
  struct cli_opts o;
  char err[1024];
  cutout_download_params dp = cutout_download_default_params();

  cli_opts_init(&o);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      help();
      cli_opts_free(&o);
      return 0;
    }
    const char *v = NULL;
    int takes = strcmp(a, "-x") == 0 || strcmp(a, "--extras") == 0 ||
                strcmp(a, "--base-url") == 0 || strcmp(a, "--timeout") == 0;
    const char *eq = strchr(a, '=');
    if (!takes && a[0] == '-' && a[1] == '-' && eq) {
      /* --opt=value */
      size_t k = (size_t)(eq - a);
      if ((k == 8 && strncmp(a, "--extras", k) == 0) ||
          (k == 10 && strncmp(a, "--base-url", k) == 0) ||
          (k == 9 && strncmp(a, "--timeout", k) == 0)) {
        v = eq + 1;
        takes = 2;
      }
    }
    if (takes == 1) {
      if (i + 1 >= argc) {
        cli_error("option %s needs a value", a);
        goto usage;
      }
      v = argv[++i];
    }
    if (takes) {
      if (a[1] == 'x' || strncmp(a, "--extras", 8) == 0) {
        extras = v;
      } else if (strncmp(a, "--base-url", 10) == 0) {
        dp.base_url = v;
      } else {
        char *end;
        long t = strtol(v, &end, 10);
        if (*end || end == v || t < 1 || t > 86400) {
          cli_error("bad --timeout '%s': seconds, 1 to 86400", v);
          goto usage;
        }
        dp.stall_timeout = (int)t;
      }
      continue;
    }
    if (a[0] == '-' && a[1]) {
      cli_error("unknown option %s (see cutout d --help)", a);
      goto usage;
    }
    if (n == (int)(sizeof names / sizeof names[0])) {
      cli_error("too many models");
      goto usage;
    }
    names[n++] = a;
  }
  o.extras = extras;
  if (cli_apply_extras(&o, err, sizeof err)) {
    cli_error("%s", err);
    goto usage;
  }
  /* rembg: "Error: no model found: X", before anything is fetched */
  for (int i = 0; i < n; i++)
    if (!cutout_model_info_find(names[i])) {
      cli_error("no model found: %s (see cutout models)", names[i]);
      cli_opts_free(&o);
      return 1;
    }

  cutout_model_params mp = cutout_model_default_params();
  cli_model_params(&o, &mp);
  if (n == 0) {
    fprintf(stderr, "No models specified, downloading all models\n");
    for (size_t i = 0; i < cutout_model_count(); i++) {
      const cutout_model_info *in = cutout_model_info_at(i);
      if (!in->url && strcmp(in->family, "sam") != 0) {
        fprintf(stderr, "%s: skipped (%s)\n", in->name,
                in->file ? "not published by rembg"
                         : "a custom model: it runs your own file");
        continue;
      }
      failed += fetch_one(in->name, &mp, &dp) != 0;
    }
  } else {
    for (int i = 0; i < n; i++) failed += fetch_one(names[i], &mp, &dp) != 0;
  }
  cli_opts_free(&o);
  return failed ? 1 : 0;

usage:
  cli_opts_free(&o);
  return 2;
}
