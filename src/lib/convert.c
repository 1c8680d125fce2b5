/*
 * convert.c: Pillow's convert("RGB") for the modes cutout_image can hold,
 * and the argument check shared by the pixel operations of imaging.h.
 *
 * rembg feeds img.convert("RGB") to every model.  For our modes Pillow's
 * converters are plain byte moves: L and LA replicate the grey value, RGBA
 * drops alpha without compositing (so whatever colour hides under
 * transparent pixels is what the model sees).
 */
#include "imaging.h"

#include <string.h>

cutout_status cutout__image_check(const cutout_image *img, const char *fn,
                                  const char *what, char *err)
{
  if (!img)
    return cutout__err(err, CUTOUT_EINVAL, "%s: %s is NULL", fn, what);
  if (!img->pixels)
    return cutout__err(err, CUTOUT_EINVAL, "%s: %s has no pixels", fn, what);
  if (img->width == 0 || img->height == 0)
    return cutout__err(err, CUTOUT_EINVAL, "%s: %s is empty (%ux%u)", fn,
                       what, (unsigned)img->width, (unsigned)img->height);
  if (img->channels < 1 || img->channels > 4)
    return cutout__err(err, CUTOUT_EINVAL, "%s: %s has %u channels (1..4)",
                       fn, what, (unsigned)img->channels);
  size_t row;
  if (cutout__mul_size(img->width, img->channels, &row) || img->stride < row)
    return cutout__err(err, CUTOUT_EINVAL,
                       "%s: %s stride %zu is less than width * channels", fn,
                       what, img->stride);
  return CUTOUT_OK;
}

/* Row converters; restrict lets gcc keep pixels in registers. */
static void rgba_row(const uint8_t *restrict s, uint8_t *restrict d, size_t w)
{
  for (size_t x = 0; x < w; x++) {
    d[3 * x + 0] = s[4 * x + 0];
    d[3 * x + 1] = s[4 * x + 1];
    d[3 * x + 2] = s[4 * x + 2];
  }
}

/* L (c = 1) or LA (c = 2): grey replicated, alpha dropped. */
static void grey_row(const uint8_t *restrict s, uint8_t *restrict d,
                     size_t w, size_t c)
{
  for (size_t x = 0; x < w; x++) {
    const uint8_t v = s[x * c];
    d[3 * x + 0] = v;
    d[3 * x + 1] = v;
    d[3 * x + 2] = v;
  }
}

cutout_status cutout__to_rgb(const cutout_image *in, cutout_image **out,
                             char *err)
{
  cutout_status st = cutout__image_check(in, "to_rgb", "input", err);
  if (st) return st;
  if (!out) return cutout__err(err, CUTOUT_EINVAL, "to_rgb: out is NULL");

  cutout_image *o;
  st = cutout_image_new(in->width, in->height, 3, &o);
  if (st) return cutout__err(err, st, "to_rgb: cannot allocate %ux%u RGB",
                             (unsigned)in->width, (unsigned)in->height);

  const uint32_t w = in->width, c = in->channels;
  for (uint32_t y = 0; y < in->height; y++) {
    const uint8_t *s = in->pixels + (size_t)y * in->stride;
    uint8_t *d = o->pixels + (size_t)y * o->stride;
    if (c == 3)
      memcpy(d, s, (size_t)w * 3);
    else if (c == 4)
      rgba_row(s, d, w);
    else
      grey_row(s, d, w, c);
  }
  *out = o;
  return CUTOUT_OK;
}
