/*
 * orient.c: EXIF orientation, applied exactly as Pillow's
 * ImageOps.exif_transpose() maps it:
 *
 *   2 FLIP_LEFT_RIGHT   3 ROTATE_180   4 FLIP_TOP_BOTTOM   5 TRANSPOSE
 *   6 ROTATE_270        7 TRANSVERSE   8 ROTATE_90
 *
 * (Pillow's ROTATE_n turns counter-clockwise, so 6 is a quarter turn
 * clockwise.)  The four transposing cases walk the output in square tiles
 * so both images stay in cache on 24-megapixel photos.
 */
#include "codec.h"

#include <string.h>

#define TILE 64

/* Reverse the pixel order of one row of n pixels of c bytes. */
static void mirror_row(uint8_t *dst, const uint8_t *src, size_t n, size_t c)
{
  const uint8_t *s = src + (n - 1) * c;
  for (size_t x = 0; x < n; x++, dst += c, s -= c) memcpy(dst, s, c);
}

/*
 * out(x, y) = in(ix, iy) with ix = fx ? w-1-y : y and iy = fy ? h-1-x : x,
 * for the outputs of size h x w.  (fx, fy): 5 = (0,0), 6 = (0,1),
 * 7 = (1,1), 8 = (1,0).
 */
static void transpose_tiles(const cutout_image *in, cutout_image *o, int fx,
                            int fy)
{
  const size_t c = in->channels, w = in->width, h = in->height;
  const size_t ow = h, oh = w;
  const ptrdiff_t istep = fy ? -(ptrdiff_t)in->stride : (ptrdiff_t)in->stride;
  for (size_t ty = 0; ty < oh; ty += TILE) {
    size_t ye = ty + TILE < oh ? ty + TILE : oh;
    for (size_t tx = 0; tx < ow; tx += TILE) {
      size_t xe = tx + TILE < ow ? tx + TILE : ow;
      for (size_t y = ty; y < ye; y++) {
        size_t ix = fx ? w - 1 - y : y;
        size_t iy = fy ? h - 1 - tx : tx;
        const uint8_t *s = in->pixels + iy * in->stride + ix * c;
        uint8_t *d = o->pixels + y * o->stride + tx * c;
        switch (c) {
        case 1:
          for (size_t x = tx; x < xe; x++, s += istep) *d++ = *s;
          break;
        case 2:
          for (size_t x = tx; x < xe; x++, s += istep, d += 2) memcpy(d, s, 2);
          break;
        case 3:
          for (size_t x = tx; x < xe; x++, s += istep, d += 3) memcpy(d, s, 3);
          break;
        default:
          for (size_t x = tx; x < xe; x++, s += istep, d += 4) memcpy(d, s, 4);
          break;
        }
      }
    }
  }
}

cutout_status cutout__orient(const cutout_image *in, int orientation,
                             cutout_image **out, char *err)
{
  if (!in || !out || !in->pixels || in->channels < 1 || in->channels > 4 ||
      in->stride != (size_t)in->width * in->channels)
    return cutout__err(err, CUTOUT_EINVAL, "orient: bad image");
  if (orientation < 1 || orientation > 8)
    return cutout__err(err, CUTOUT_EINVAL, "orient: orientation %d is not 1..8",
                       orientation);
  int swap = orientation >= 5;
  cutout_image *o = NULL;
  cutout_status st =
      cutout_image_new(swap ? in->height : in->width,
                       swap ? in->width : in->height, in->channels, &o);
  if (st != CUTOUT_OK)
    return cutout__err(err, st, "orient: cannot allocate %ux%u image",
                       in->width, in->height);
  const size_t w = in->width, h = in->height, c = in->channels;
  switch (orientation) {
  case 1:
    memcpy(o->pixels, in->pixels, in->stride * h);
    break;
  case 2:
    for (size_t y = 0; y < h; y++)
      mirror_row(o->pixels + y * o->stride, in->pixels + y * in->stride, w, c);
    break;
  case 3:
    for (size_t y = 0; y < h; y++)
      mirror_row(o->pixels + y * o->stride,
                 in->pixels + (h - 1 - y) * in->stride, w, c);
    break;
  case 4:
    for (size_t y = 0; y < h; y++)
      memcpy(o->pixels + y * o->stride, in->pixels + (h - 1 - y) * in->stride,
             in->stride);
    break;
  case 5: transpose_tiles(in, o, 0, 0); break;
  case 6: transpose_tiles(in, o, 0, 1); break;
  case 7: transpose_tiles(in, o, 1, 1); break;
  default: transpose_tiles(in, o, 1, 0); break;
  }
  *out = o;
  return CUTOUT_OK;
}
