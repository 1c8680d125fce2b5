/*
 * params.c: rembg's request parameters (model, a, af, ab, ae, om, ppm,
 * bgc, extras) plus cutout's (format, dc, quality), with rembg's HTTP
 * defaults: no background colour unless bgc is given (the CLI's default
 * is 0,0,0,0; the server's is None).  Booleans are read as pydantic reads
 * them (true/false, 1/0, yes/no, on/off, t/f, y/n); a bad value is 422,
 * as FastAPI's validation answers.
 */
#include "server.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int parse_bool(const char *v, int *out)
{
  static const char *const yes[] = {"true", "1", "yes", "on", "t", "y"};
  static const char *const no[] = {"false", "0", "no", "off", "f", "n"};
  for (size_t i = 0; i < 6; i++) {
    if (strcasecmp(v, yes[i]) == 0) { *out = 1; return 0; }
    if (strcasecmp(v, no[i]) == 0) { *out = 0; return 0; }
  }
  return -1;
}

static int parse_long(const char *v, long lo, long hi, long *out)
{
  char *end;
  errno = 0;
  while (isspace((unsigned char)*v)) v++;
  long x = strtol(v, &end, 10);
  while (isspace((unsigned char)*end)) end++;
  if (errno || end == v || *end || x < lo || x > hi) return -1;
  *out = x;
  return 0;
}

/* The model names clients may ask for: the registry's, and the server's
 * own default (which may be a path given with -m). */
static int model_allowed(const struct srv_config *cfg, const char *name)
{
  if (cutout_model_info_find(name)) return 1;
  if (strcmp(name, cfg->base.model) == 0) return 1;
  return 0;
}

unsigned params_parse(const struct srv_config *cfg, param_fn get, void *cls,
                      struct job *j, char *detail, size_t n)
{
  struct cli_opts *o = &j->opts;
  const char *v;
  long x;
  int b;
  o->model = cfg->base.model;
  o->offline = cfg->base.offline;
  o->max_pixels = cfg->base.max_pixels;
  o->remove.bgcolor_set = 0; /* rembg's HTTP default: bgc None */

  if ((v = get(cls, "model")) && *v) {
    if (!model_allowed(cfg, v)) {
      snprintf(detail, n, "model: unknown model '%s' (GET /api lists them)",
               v);
      return 422;
    }
    o->model = cutout_model_info_find(v) ? cutout_model_info_find(v)->name
                                         : cfg->base.model;
  }
#define BOOL(name, field)                                                  \
  if ((v = get(cls, name))) {                                              \
    if (parse_bool(v, &b)) {                                               \
      snprintf(detail, n, "%s: '%s' is not a boolean", name, v);           \
      return 422;                                                          \
    }                                                                      \
    field = b;                                                             \
  }
#define INT(name, field, lo, hi)                                           \
  if ((v = get(cls, name))) {                                              \
    if (parse_long(v, lo, hi, &x)) {                                       \
      snprintf(detail, n, "%s: '%s' is not an integer in %ld..%ld", name,  \
               v, (long)(lo), (long)(hi));                                 \
      return 422;                                                          \
    }                                                                      \
    field = (int)x;                                                        \
  }
  BOOL("a", o->remove.alpha_matting)
  INT("af", o->remove.am_fg, 0, 255)
  INT("ab", o->remove.am_bg, 0, 255)
  INT("ae", o->remove.am_erode, 0, 10000)
  BOOL("om", o->remove.only_mask)
  BOOL("ppm", o->remove.post_process_mask)
  BOOL("dc", o->remove.decontaminate)
#undef BOOL
#undef INT

  if ((v = get(cls, "bgc")) && *v) {
    /* rembg: tuple(map(int, bgc.split(","))) with four values */
    long c[4];
    const char *s = v;
    int k = 0;
    for (; k < 4; k++) {
      char part[32];
      size_t len = strcspn(s, ",");
      if (len >= sizeof part) break;
      memcpy(part, s, len);
      part[len] = 0;
      if (parse_long(part, 0, 255, &c[k])) break;
      s += len;
      if (k < 3) {
        if (*s != ',') break;
        s++;
      }
    }
    if (k < 4 || *s) {
      snprintf(detail, n, "bgc: '%s' is not R,G,B,A (four integers 0-255)",
               v);
      return 422;
    }
    for (k = 0; k < 4; k++) o->remove.bgcolor[k] = (uint8_t)c[k];
    o->remove.bgcolor_set = 1;
  }

  j->ep = cutout_encode_default_params();
  j->ep.format = CUTOUT_FORMAT_PNG;
  if ((v = get(cls, "format")) && *v) {
    cutout_format f = cutout_format_parse(v);
    if (f != CUTOUT_FORMAT_PNG && f != CUTOUT_FORMAT_JPEG &&
        f != CUTOUT_FORMAT_WEBP) {
      snprintf(detail, n, "format: '%s' is not png, webp or jpg", v);
      return 422;
    }
    j->ep.format = f;
  }
  if ((v = get(cls, "quality")) && *v) {
    if (parse_long(v, 1, 100, &x)) {
      snprintf(detail, n, "quality: '%s' is not an integer in 1..100", v);
      return 422;
    }
    j->ep.quality = (int)x;
  }

  if ((v = get(cls, "extras")) && *v) {
    if (!(j->extras = strdup(v))) {
      snprintf(detail, n, "out of memory");
      return 503;
    }
    o->extras = j->extras;
    char err[512];
    if (cli_parse_extras(o, err, sizeof err)) {
      snprintf(detail, n, "extras: %s", err);
      return 422;
    }
    if (o->model_path && !cfg->allow_model_path) {
      /* rembg lets any client load any file of the server as a model */
      snprintf(detail, n, "extras: model_path is refused (the server was "
               "not started with --allow-model-path)");
      return 422;
    }
  }
  /* the default model keeps the session extras given with -x at start */
  if (strcmp(o->model, cfg->base.model) == 0) {
    if (!o->model_path && cfg->base.model_path &&
        !(o->model_path = strdup(cfg->base.model_path)))
      goto oom;
    if (!o->sam_model && cfg->base.sam_model &&
        !(o->sam_model = strdup(cfg->base.sam_model)))
      goto oom;
    if (!o->providers && cfg->base.providers &&
        !(o->providers = strdup(cfg->base.providers)))
      goto oom;
    if (!o->sam_quant) o->sam_quant = cfg->base.sam_quant;
  }
  return 0;
oom:
  snprintf(detail, n, "out of memory");
  return 503;
}
