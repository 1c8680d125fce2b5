/*
 * cmd_i.c: `cutout i [OPTIONS] [INPUT] [OUTPUT]`, rembg's single-image
 * command.  INPUT defaults to stdin when stdin is not a terminal; without
 * OUTPUT, a named input with a terminal on stdout gives NAME.out.png beside
 * it (rembg's rule), otherwise the image goes to stdout.
 */
#include "cli.h"
#include "fileio.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void help(void)
{
  printf("Usage: cutout i [OPTIONS] [INPUT] [OUTPUT]\n\n"
         "Remove the background of one image.  INPUT and OUTPUT may be '-'\n"
         "(stdin/stdout).  Without OUTPUT: INPUT.out.png next to the input\n"
         "when stdout is a terminal, else stdout.\n\n%s"
         "      --mask FILE             use this mask (greyscale, the image's\n"
         "                              size) instead of running a model; the\n"
         "                              other options apply to it as usual\n"
         "  -h, --help                  this help\n",
         cli_options_help);
}

/* The mask image as L: grey as it is, LA's grey, RGB(A) by Pillow's
 * convert("L") weights (ITU-R 601-2, fixed point). */
static cutout_status mask_to_l(cutout_image *m, cutout_image **out)
{
  if (m->channels == 1) {
    *out = m;
    return CUTOUT_OK;
  }
  cutout_image *l = NULL;
  cutout_status st = cutout_image_new(m->width, m->height, 1, &l);
  if (st) return st;
  for (uint32_t y = 0; y < m->height; y++) {
    const uint8_t *s = m->pixels + (size_t)y * m->stride;
    uint8_t *d = l->pixels + (size_t)y * l->stride;
    for (uint32_t x = 0; x < m->width; x++, s += m->channels)
      d[x] = m->channels < 3
                 ? s[0]
                 : (uint8_t)((s[0] * 19595u + s[1] * 38470u + s[2] * 7471u +
                              0x8000u) >> 16);
  }
  cutout_image_free(m);
  *out = l;
  return CUTOUT_OK;
}

/* rembg: Path(input).with_suffix(".out.png"). */
static int default_output(const char *in, cutout_format f, char *out,
                          size_t cap)
{
  const char *slash = strrchr(in, '/');
  const char *base = slash ? slash + 1 : in;
  const char *dot = strrchr(base, '.');
  size_t stem = dot && dot != base ? (size_t)(dot - in) : strlen(in);
  const char *ext = f == CUTOUT_FORMAT_JPEG ? "jpg"
                    : f == CUTOUT_FORMAT_WEBP ? "webp" : "png";
  int n = snprintf(out, cap, "%.*s.out.%s", (int)stem, in, ext);
  return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

static int writable_dir_of(const char *path, char *err, size_t errlen)
{
  char dir[PATH_MAX];
  const char *slash = strrchr(path, '/');
  if (slash)
    snprintf(dir, sizeof dir, "%.*s", (int)(slash == path ? 1 : slash - path),
             path);
  else
    snprintf(dir, sizeof dir, ".");
  if (access(dir, W_OK) != 0) {
    snprintf(err, errlen, "cannot write in %s: %s", dir, strerror(errno));
    return -1;
  }
  return 0;
}

/* Seconds from the exec of this process to now (10 ms resolution: the
 * kernel counts process start in clock ticks). */
static double process_age(void)
{
  FILE *f = fopen("/proc/self/stat", "r");
  char buf[1024];
  size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
  if (f) fclose(f);
  buf[n] = 0;
  const char *p = strrchr(buf, ')'); /* comm may contain spaces */
  unsigned long long start = 0;
  /* after ')': state is field 3; starttime is field 22 */
  for (int field = 2; p && *p && field < 22; p++)
    if (*p == ' ') field++;
  if (!p || sscanf(p, "%llu", &start) != 1) return 0;
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  double boot = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
  return boot - (double)start / (double)sysconf(_SC_CLK_TCK);
}

static double t_main_age; /* process_age() when cmd_i started */

static double process_start_seconds(void) { return t_main_age; }

int cmd_i(int argc, char **argv)
{
  t_main_age = process_age();
  struct cli_opts o;
  char err[1024] = "";
  const char *pos[2] = {NULL, NULL};
  int npos = 0, rc = 1;
  char outname[PATH_MAX];
  uint8_t *in = NULL;
  size_t in_len = 0;
  void *enc = NULL;
  size_t enc_len = 0;
  cutout_engine *eng = NULL;
  cutout_model *model = NULL;
  cutout_ctx *ctx = NULL;
  cutout_image *img = NULL, *res = NULL, *mask = NULL;
  const char *mask_file = NULL;

  cli_opts_init(&o);
  for (int i = 1; i < argc;) {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      help();
      cli_opts_free(&o);
      return 0;
    }
    if (strcmp(argv[i], "--mask") == 0) {
      if (i + 1 >= argc) {
        snprintf(err, sizeof err, "option --mask needs a file");
        goto usage;
      }
      mask_file = argv[i + 1];
      i += 2;
      continue;
    }
    int r = cli_parse_option(argc, argv, &i, &o, err, sizeof err);
    if (r < 0) goto usage;
    if (r > 0) continue;
    if (argv[i][0] == '-' && argv[i][1]) {
      snprintf(err, sizeof err, "unknown option %s (see cutout i --help)",
               argv[i]);
      goto usage;
    }
    if (npos == 2) {
      snprintf(err, sizeof err, "too many arguments: %s", argv[i]);
      goto usage;
    }
    pos[npos++] = argv[i++];
  }
  if (cli_apply_extras(&o, err, sizeof err)) goto usage;

  const char *input = pos[0], *output = pos[1];
  if (!input) {
    if (isatty(0)) {
      snprintf(err, sizeof err, "no INPUT given (and stdin is a terminal)");
      goto usage;
    }
    input = "-";
  }
  if (!output) {
    if (strcmp(input, "-") != 0 && isatty(1)) {
      if (default_output(input, o.format, outname, sizeof outname)) {
        snprintf(err, sizeof err, "output name too long");
        goto usage;
      }
      output = outname;
    } else {
      output = "-";
    }
  }
  cutout_encode_params ep = cutout_encode_default_params();
  ep.format = o.format ? o.format : cutout_format_from_name(output);
  if (!ep.format) ep.format = CUTOUT_FORMAT_PNG; /* rembg always writes PNG */
  if (o.quality > 0) ep.quality = o.quality;
  /* Fail before the expensive work on what can be known up front. */
  if (ep.format == CUTOUT_FORMAT_JPEG && !o.remove.only_mask &&
      (!o.remove.bgcolor_set || o.remove.bgcolor[3] != 255)) {
    cli_error("%s: JPEG cannot store transparency: give an opaque background "
              "colour (-bgc R G B 255) or choose PNG/WebP", output);
    goto done;
  }
  if (strcmp(output, "-") != 0 && writable_dir_of(output, err, sizeof err)) {
    cli_error("%s: %s", output, err);
    goto done;
  }
  if (cli_read_all(input, &in, &in_len, err, sizeof err)) {
    cli_error("%s: %s", input, err);
    goto done;
  }

  double t0 = cli_now();
  cutout_status st = cutout_engine_new(&o.engine, &eng, err, sizeof err);
  if (st) {
    cli_error("%s", err);
    goto done;
  }
  cutout_ctx_params cp = cutout_ctx_default_params();
  cp.max_pixels = o.max_pixels;
  if ((st = cutout_ctx_new(eng, &cp, &ctx))) {
    cli_error("%s", cutout_strerror(st));
    goto done;
  }
  /* Decode before loading the model: a bad input fails in milliseconds. */
  if ((st = cutout_decode(ctx, in, in_len, &img))) {
    cli_error("%s: %s", input, cutout_ctx_errmsg(ctx));
    goto done;
  }
  free(in);
  in = NULL;
  double t1 = cli_now();
  if (mask_file) {
    /* a mask of the user's: no model at all */
    if (cli_read_all(mask_file, &in, &in_len, err, sizeof err)) {
      cli_error("%s: %s", mask_file, err);
      goto done;
    }
    if ((st = cutout_decode(ctx, in, in_len, &mask)) ||
        (st = mask_to_l(mask, &mask))) {
      cli_error("%s: %s", mask_file, st == CUTOUT_ENOMEM ? "out of memory"
                                                         : cutout_ctx_errmsg(ctx));
      goto done;
    }
    if ((st = cutout_apply_mask(ctx, img, mask, &o.remove, &res))) {
      cli_error("%s: %s", mask_file, cutout_ctx_errmsg(ctx));
      goto done;
    }
    goto finished;
  }
  cutout_model_params mp = cutout_model_default_params();
  mp.model_path = o.model_path;
  /* issue #7: fetch the model on first use, unless --offline */
  if (cli_model_prepare(&o, &mp, err, sizeof err)) {
    cli_error("%s", err);
    goto done;
  }
  if ((st = cutout_model_load(eng, o.model, &mp, &model, err, sizeof err))) {
    cli_error("%s", err);
    goto done;
  }
  if ((st = cutout_remove(ctx, model, img, &o.remove, &res))) {
    cli_error("%s: %s", input, cutout_ctx_errmsg(ctx));
    goto done;
  }
finished:
  if (*cutout_ctx_warning(ctx)) /* issue #6: e.g. matting fell back */
    cli_error("warning: %s: %s", input, cutout_ctx_warning(ctx));
  if ((st = cutout_encode(ctx, res, &ep, &enc, &enc_len))) {
    cli_error("%s: %s", output, cutout_ctx_errmsg(ctx));
    goto done;
  }
  if (cli_write_atomic(output, enc, enc_len, err, sizeof err)) {
    cli_error("%s: %s", output, err);
    goto done;
  }
  if (o.stats) {
    cutout_stage_times t = cutout_ctx_times(ctx);
    double rd, vf, ss;
    cutout_model_load_times(model, &rd, &vf, &ss);
    const char *note = "";
    cutout_compiled cs = cutout_model_compiled(model, NULL, &note);
    if (o.stats == 1)
      fprintf(stderr, "stats: process start %.3fs  engine %.3fs  model read "
              "%.3fs  checksum %.3fs  session %.3fs (%s%s%s)\n",
              process_start_seconds(), t1 - t0 - t.wall[CUTOUT_STAGE_DECODE],
              rd, vf, ss, cutout_compiled_str(cs), *note ? ": " : "", note);
    cli_stats_print(stderr, &t, 1, cli_now() - t0, o.stats == 2);
  }
  rc = 0;
  goto done;

usage:
  cli_error("%s", err);
  rc = 2;
done:
  cutout_image_free(img);
  cutout_image_free(res);
  cutout_image_free(mask);
  cutout_free(enc);
  free(in);
  cutout_ctx_free(ctx);
  cutout_model_free(model);
  cutout_engine_free(eng);
  cli_opts_free(&o);
  return rc;
}
