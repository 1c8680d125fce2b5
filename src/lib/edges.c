/*
 * edges.c: what cutout does with colour under soft alpha, besides rembg's
 * premultiplied default (composite.c), and the --crop rectangle.
 *
 *   decontaminate  upstream rembg's decontaminate_cutout (#843): the
 *                  foreground colour estimated from the model's soft alpha
 *                  (estimate_foreground_ml, foreground.c), alpha = mask
 *   crop           the bounding box of alpha > 0, grown by a margin
 *
 * It also holds cutout_remove()'s per-mask step for these options, so
 * remove.c only calls in here.
 */
#include "engine.h"
#include "imaging.h"
#include "matting.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dc_job {
  const cutout_image *mask;
  float *af;
  cutout_image *out;
};

static void dc_alpha_rows(void *arg, size_t begin, size_t end)
{
  struct dc_job *j = arg;
  const uint32_t w = j->mask->width;
  float lut[256];
  for (int v = 0; v < 256; v++) lut[v] = (float)(v / 255.0);
  for (size_t y = begin; y < end; y++) {
    const uint8_t *m = j->mask->pixels + y * j->mask->stride;
    uint8_t *o = j->out->pixels + y * j->out->stride;
    for (uint32_t x = 0; x < w; x++) {
      j->af[y * w + x] = lut[m[x]];
      /* trunc(m / 255.0 * 255) == m for every byte */
      o[4 * x + 3] = m[x];
    }
  }
}

cutout_status cutout__decontaminate(const cutout_image *img,
                                    const cutout_image *mask, int nthreads,
                                    atomic_int *cancel, cutout_image **out,
                                    char *err)
{
  cutout_status st = cutout__image_check(img, "decontaminate", "image", err);
  if (st) return st;
  if ((st = cutout__image_check(mask, "decontaminate", "mask", err)))
    return st;
  if (!out || mask->channels != 1 || mask->width != img->width ||
      mask->height != img->height)
    return cutout__err(err, CUTOUT_EINVAL,
                       "decontaminate: the mask must be L, image-sized");
  cutout_image *rgb = NULL, *res = NULL;
  float *af = NULL;
  const cutout_image *src = img;
  if (img->channels < 3) {
    if ((st = cutout__to_rgb(img, &rgb, err))) return st;
    src = rgb;
  }
  size_t npx = (size_t)img->width * img->height;
  af = malloc(npx * sizeof *af);
  if (!af || cutout_image_new(img->width, img->height, 4, &res)) {
    st = cutout__err(err, CUTOUT_ENOMEM, "decontaminate: out of memory");
    goto done;
  }
  struct dc_job j = {mask, af, res};
  cutout__parallel_for(nthreads, img->height, 32, dc_alpha_rows, &j);
  if ((st = cutout__foreground_ml(src, af, nthreads, cancel, res, err)))
    goto done;
  *out = res;
  res = NULL;
done:
  cutout_image_free(rgb);
  cutout_image_free(res);
  free(af);
  return st;
}

int cutout__alpha_bbox(const cutout_image *img, uint32_t margin,
                       uint32_t *x0, uint32_t *y0, uint32_t *w, uint32_t *h)
{
  const uint32_t ch = img->channels;
  /* the alpha channel: the last of LA / RGBA, the value of L */
  const uint32_t ai = ch == 2 || ch == 4 ? ch - 1 : 0;
  if (ch == 3) { /* RGB has no transparency: everything is subject */
    *x0 = *y0 = 0;
    *w = img->width;
    *h = img->height;
    return 0;
  }
  uint32_t xmin = UINT32_MAX, xmax = 0, ymin = UINT32_MAX, ymax = 0;
  for (uint32_t y = 0; y < img->height; y++) {
    const uint8_t *row = img->pixels + (size_t)y * img->stride + ai;
    uint32_t first = UINT32_MAX, last = 0;
    for (uint32_t x = 0; x < img->width; x++)
      if (row[(size_t)x * ch]) {
        if (first == UINT32_MAX) first = x;
        last = x;
      }
    if (first == UINT32_MAX) continue;
    if (ymin == UINT32_MAX) ymin = y;
    ymax = y;
    if (first < xmin) xmin = first;
    if (last > xmax) xmax = last;
  }
  if (ymin == UINT32_MAX) return -1;
  uint64_t m = margin;
  *x0 = xmin > m ? (uint32_t)(xmin - m) : 0;
  *y0 = ymin > m ? (uint32_t)(ymin - m) : 0;
  uint64_t x1 = xmax + m + 1, y1 = ymax + m + 1; /* exclusive */
  if (x1 > img->width) x1 = img->width;
  if (y1 > img->height) y1 = img->height;
  *w = (uint32_t)(x1 - *x0);
  *h = (uint32_t)(y1 - *y0);
  return 0;
}

cutout_status cutout__crop(const cutout_image *img, uint32_t x0, uint32_t y0,
                           uint32_t w, uint32_t h, cutout_image **out,
                           char *err)
{
  cutout_status st = cutout__image_check(img, "crop", "image", err);
  if (st) return st;
  if (!out || !w || !h || x0 > img->width || w > img->width - x0 ||
      y0 > img->height || h > img->height - y0)
    return cutout__err(err, CUTOUT_EINVAL, "crop: rectangle outside image");
  cutout_image *o;
  if ((st = cutout_image_new(w, h, img->channels, &o)))
    return cutout__err(err, st, "crop: cannot allocate output");
  const size_t bpp = img->channels;
  for (uint32_t y = 0; y < h; y++)
    memcpy(o->pixels + (size_t)y * o->stride,
           img->pixels + (size_t)(y0 + y) * img->stride + (size_t)x0 * bpp,
           (size_t)w * bpp);
  *out = o;
  return CUTOUT_OK;
}

/* ------------------------------------------------ cutout_remove() hooks */

#define MAX_ERODE 10000

cutout_status cutout__edge_check(const cutout_remove_params *p, char *err)
{
  if (p->am_fg < 0 || p->am_fg > 255 || p->am_bg < 0 || p->am_bg > 255)
    return cutout__err(err, CUTOUT_EINVAL, "alpha matting thresholds must "
                       "be 0-255 (got foreground %d, background %d)",
                       p->am_fg, p->am_bg);
  if (p->am_erode < 0 || p->am_erode > MAX_ERODE)
    return cutout__err(err, CUTOUT_EINVAL, "alpha matting erode size must "
                       "be 0-%d (got %d)", MAX_ERODE, p->am_erode);
  if (p->edge < CUTOUT_EDGE_PREMULTIPLIED ||
      p->edge > CUTOUT_EDGE_DECONTAMINATE)
    return cutout__err(err, CUTOUT_EINVAL, "unknown edge mode %d", p->edge);
  return CUTOUT_OK;
}

/* After a cancellation inside the pixel code: clear the flag as
 * remove.c's check does, so the next call on the ctx is not canceled. */
static void clear_cancel(cutout_ctx *c)
{
  if (!atomic_exchange(&c->canceled, 0)) return;
  OrtStatus *st = c->engine->api->RunOptionsUnsetTerminate(c->run_opts);
  if (st) c->engine->api->ReleaseStatus(st);
}

cutout_status cutout__edge_cutout(cutout_ctx *c, const cutout_image *img,
                                  const cutout_image *mask,
                                  const cutout_remove_params *p,
                                  cutout_image **out)
{
  cutout_status st;
  int edge = p->decontaminate || p->edge == CUTOUT_EDGE_DECONTAMINATE
                 ? CUTOUT_EDGE_DECONTAMINATE
             : p->putalpha || p->edge == CUTOUT_EDGE_STRAIGHT
                 ? CUTOUT_EDGE_STRAIGHT
                 : CUTOUT_EDGE_PREMULTIPLIED;
  struct cutout__stage_clock k;
  cutout__stage_begin(&k);
  if (p->alpha_matting) {
    struct cutout__matting_params mp = cutout__matting_default_params();
    mp.fg_thr = p->am_fg;
    mp.bg_thr = p->am_bg;
    mp.erode = p->am_erode;
    mp.nthreads = c->io_threads;
    mp.cancel = &c->canceled;
    char warn[CUTOUT_ERRMSG_MAX];
    st = cutout__alpha_matting(img, mask, &mp, out, NULL, warn, c->errmsg);
    if (!st && !*out && !c->warnmsg[0]) /* the first part's reason wins */
      snprintf(c->warnmsg, sizeof c->warnmsg, "%s", warn);
    if (st || *out) goto done;
    /* rembg's except ValueError: the plain cutout (2.0.77: putalpha or
     * naive; upstream: decontaminate), chosen by the edge mode */
  }
  if (edge == CUTOUT_EDGE_DECONTAMINATE) {
    st = cutout__decontaminate(img, mask, c->io_threads, &c->canceled, out,
                               c->errmsg);
    goto done;
  }
  cutout__stage_add(&k, &c->times, CUTOUT_STAGE_MATTING);
  return edge == CUTOUT_EDGE_STRAIGHT
             ? cutout__putalpha(img, mask, out, c->errmsg)
             : cutout__naive_cutout(img, mask, c->io_threads, out, c->errmsg);
done:
  cutout__stage_add(&k, &c->times, CUTOUT_STAGE_MATTING);
  if (st == CUTOUT_ECANCELED) clear_cancel(c);
  return st;
}

void cutout__crop_plan(cutout_ctx *c, const cutout_image *img,
                       const cutout_remove_params *p, struct cutout__rect *r)
{
  memset(r, 0, sizeof *r);
  if (!p->crop) return;
  if (cutout__alpha_bbox(img, p->crop_margin, &r->x, &r->y, &r->w, &r->h)) {
    if (!c->warnmsg[0])
      snprintf(c->warnmsg, sizeof c->warnmsg, "--crop: the cutout is fully "
               "transparent, so the image was not cropped");
    return;
  }
  r->set = r->x || r->y || r->w != img->width || r->h != img->height;
}

cutout_status cutout__crop_apply(cutout_ctx *c, const struct cutout__rect *r,
                                 cutout_image **img)
{
  if (!r->set) return CUTOUT_OK;
  cutout_image *o;
  cutout_status st = cutout__crop(*img, r->x, r->y, r->w, r->h, &o, c->errmsg);
  if (st) return st;
  cutout_image_free(*img);
  *img = o;
  return CUTOUT_OK;
}
