/*
 * composite.c: the three ways rembg turns an image and its mask into the
 * output, with Pillow's integer arithmetic (Paste.c, AlphaComposite.c).
 *
 *   naive cutout      Image.composite(img, Image.new("RGBA", size, 0), mask)
 *                     pastes img.convert("RGBA") through the L mask onto
 *                     transparent black: every channel, alpha included,
 *                     becomes DIV255(v * m).  The colour is thus
 *                     premultiplied while the PNG says straight alpha: the
 *                     dark fringe rembg is known for, kept on purpose.
 *   putalpha          img.putalpha(mask): colour kept, alpha = mask.
 *   background        Image.alpha_composite(Image.new("RGBA", size, colour),
 *                     img) with AlphaComposite.c's 7-bit-precision formula.
 */
#include "imaging.h"

#include <string.h>

#define MIN_ROWS_PER_THREAD 16

/* Pillow's DIV255 / SHIFTFORDIV255: (a + 128) / 255 rounded, for a in
 * 0..255*255. */
static inline uint8_t div255(uint32_t a)
{
  a += 128;
  return (uint8_t)(((a >> 8) + a) >> 8);
}

static cutout_status check_pair(const cutout_image *img,
                                const cutout_image *mask, const char *fn,
                                char *err)
{
  cutout_status st = cutout__image_check(img, fn, "image", err);
  if (st) return st;
  st = cutout__image_check(mask, fn, "mask", err);
  if (st) return st;
  if (mask->channels != 1)
    return cutout__err(err, CUTOUT_EINVAL, "%s: mask has %u channels, not 1",
                       fn, (unsigned)mask->channels);
  if (mask->width != img->width || mask->height != img->height)
    return cutout__err(err, CUTOUT_EINVAL,
                       "%s: mask is %ux%u but the image is %ux%u", fn,
                       (unsigned)mask->width, (unsigned)mask->height,
                       (unsigned)img->width, (unsigned)img->height);
  return CUTOUT_OK;
}

/* Pixels per block of the vectorisable loops. */
#define PBLOCK 16

/*
 * Row kernels, one per input channel count, each a fixed-size block loop
 * plus a tail: gcc -O2 only vectorises loops of known length (it does so
 * for 2 and 4 channels; RGB's 3-to-4 interleave stays scalar).  PX is the
 * per-pixel body.
 */
#define DEFINE_ROW(name, PX, ...)                                          \
  static void name(__VA_ARGS__, size_t w)                                 \
  {                                                                       \
    size_t p = 0;                                                         \
    for (; p + PBLOCK <= w; p += PBLOCK)                                  \
      for (size_t q = p; q < p + PBLOCK; q++) PX(q);                      \
    for (; p < w; p++) PX(p);                                             \
  }

/* ----------------------------------------------------------- naive cutout */

/* img.convert("RGBA") then paste_mask_L onto zeros:
 * BLEND(m, 0, v) = DIV255(0 * (255 - m) + v * m) for all four channels. */
#define CUT1(q)                                                            \
  do {                                                                    \
    const uint8_t v = div255((uint32_t)s[q] * m[q]);                      \
    d[4 * (q)] = d[4 * (q) + 1] = d[4 * (q) + 2] = v;                     \
    d[4 * (q) + 3] = div255(255u * m[q]);                                 \
  } while (0)
#define CUT2(q)                                                            \
  do {                                                                    \
    const uint8_t v = div255((uint32_t)s[2 * (q)] * m[q]);                \
    d[4 * (q)] = d[4 * (q) + 1] = d[4 * (q) + 2] = v;                     \
    d[4 * (q) + 3] = div255((uint32_t)s[2 * (q) + 1] * m[q]);             \
  } while (0)
#define CUT3(q)                                                            \
  do {                                                                    \
    d[4 * (q)] = div255((uint32_t)s[3 * (q)] * m[q]);                     \
    d[4 * (q) + 1] = div255((uint32_t)s[3 * (q) + 1] * m[q]);             \
    d[4 * (q) + 2] = div255((uint32_t)s[3 * (q) + 2] * m[q]);             \
    d[4 * (q) + 3] = div255(255u * m[q]);                                 \
  } while (0)
#define CUT4(q)                                                            \
  do {                                                                    \
    d[4 * (q)] = div255((uint32_t)s[4 * (q)] * m[q]);                     \
    d[4 * (q) + 1] = div255((uint32_t)s[4 * (q) + 1] * m[q]);             \
    d[4 * (q) + 2] = div255((uint32_t)s[4 * (q) + 2] * m[q]);             \
    d[4 * (q) + 3] = div255((uint32_t)s[4 * (q) + 3] * m[q]);             \
  } while (0)

#define CUT_ARGS                                                           \
  const uint8_t *restrict s, const uint8_t *restrict m, uint8_t *restrict d
DEFINE_ROW(cut_row_1, CUT1, CUT_ARGS)
DEFINE_ROW(cut_row_2, CUT2, CUT_ARGS)
DEFINE_ROW(cut_row_3, CUT3, CUT_ARGS)
DEFINE_ROW(cut_row_4, CUT4, CUT_ARGS)

struct cut_job {
  const cutout_image *img, *mask;
  cutout_image *out;
};

static void cut_range(void *arg, size_t begin, size_t end)
{
  const struct cut_job *j = arg;
  const size_t w = j->img->width;
  for (size_t y = begin; y < end; y++) {
    const uint8_t *s = j->img->pixels + y * j->img->stride;
    const uint8_t *m = j->mask->pixels + y * j->mask->stride;
    uint8_t *d = j->out->pixels + y * j->out->stride;
    switch (j->img->channels) {
    case 1: cut_row_1(s, m, d, w); break;
    case 2: cut_row_2(s, m, d, w); break;
    case 3: cut_row_3(s, m, d, w); break;
    default: cut_row_4(s, m, d, w); break;
    }
  }
}

cutout_status cutout__naive_cutout(const cutout_image *img,
                                   const cutout_image *mask, int nthreads,
                                   cutout_image **out, char *err)
{
  cutout_status st = check_pair(img, mask, "naive_cutout", err);
  if (st) return st;
  if (!out)
    return cutout__err(err, CUTOUT_EINVAL, "naive_cutout: out is NULL");
  cutout_image *o;
  st = cutout_image_new(img->width, img->height, 4, &o);
  if (st) return cutout__err(err, st, "naive_cutout: cannot allocate output");
  struct cut_job j = {img, mask, o};
  cutout__parallel_for(nthreads, img->height, MIN_ROWS_PER_THREAD, cut_range,
                       &j);
  *out = o;
  return CUTOUT_OK;
}

/* --------------------------------------------------------------- putalpha */

cutout_status cutout__putalpha(const cutout_image *img,
                               const cutout_image *mask, cutout_image **out,
                               char *err)
{
  cutout_status st = check_pair(img, mask, "putalpha", err);
  if (st) return st;
  if (!out) return cutout__err(err, CUTOUT_EINVAL, "putalpha: out is NULL");
  /* L and LA become LA; RGB and RGBA become RGBA. */
  const uint32_t c = img->channels, oc = c <= 2 ? 2 : 4, colours = oc - 1;
  cutout_image *o;
  st = cutout_image_new(img->width, img->height, oc, &o);
  if (st) return cutout__err(err, st, "putalpha: cannot allocate output");
  for (uint32_t y = 0; y < img->height; y++) {
    const uint8_t *s = img->pixels + (size_t)y * img->stride;
    const uint8_t *m = mask->pixels + (size_t)y * mask->stride;
    uint8_t *d = o->pixels + (size_t)y * o->stride;
    for (uint32_t x = 0; x < img->width; x++, s += c, d += oc) {
      for (uint32_t i = 0; i < colours; i++) d[i] = s[i];
      d[colours] = m[x];
    }
  }
  *out = o;
  return CUTOUT_OK;
}

/* ------------------------------------------------------- background colour */

#define AC_PRECISION_BITS 7

/*
 * ImagingAlphaComposite with dst = the flat colour.  Everything but the
 * source colour depends on the source alpha alone, so the per-alpha terms
 * (including Pillow's integer division) are tabulated once.
 */
struct bg_tab {
  uint32_t coef1[256];
  uint8_t alpha[256];
  uint32_t dst_term[256][3]; /* dst colour * coef2 + rounding */
  uint8_t color[4];
};

static void bg_tab_init(struct bg_tab *t, const uint8_t color[4])
{
  const uint32_t da = color[3];
  memcpy(t->color, color, 4);
  for (uint32_t sa = 0; sa < 256; sa++) {
    const uint32_t blend = da * (255 - sa);
    const uint32_t outa255 = sa * 255 + blend;
    /* sa == 0 never uses these: Pillow copies the colour instead (and
     * outa255 may be 0). */
    const uint32_t coef1 =
        sa ? sa * 255 * 255 * (1u << AC_PRECISION_BITS) / outa255 : 0;
    const uint32_t coef2 = 255 * (1u << AC_PRECISION_BITS) - coef1;
    t->coef1[sa] = coef1;
    const uint32_t a = outa255 + 0x80;
    t->alpha[sa] = (uint8_t)(((a >> 8) + a) >> 8);
    for (int i = 0; i < 3; i++)
      t->dst_term[sa][i] = color[i] * coef2 + (0x80u << AC_PRECISION_BITS);
  }
}

static inline uint8_t bg_channel(uint32_t v, uint32_t coef1, uint32_t dterm)
{
  const uint32_t t = v * coef1 + dterm;
  return (uint8_t)((((t >> 8) + t) >> 8) >> AC_PRECISION_BITS);
}

/* One pixel (r, g, b, a) over the colour. */
static inline void bg_px(const struct bg_tab *t, uint32_t r, uint32_t g,
                         uint32_t b, uint32_t a, uint8_t *d)
{
  if (a == 0) { /* Pillow copies dst untouched */
    memcpy(d, t->color, 4);
    return;
  }
  const uint32_t c1 = t->coef1[a];
  d[0] = bg_channel(r, c1, t->dst_term[a][0]);
  d[1] = bg_channel(g, c1, t->dst_term[a][1]);
  d[2] = bg_channel(b, c1, t->dst_term[a][2]);
  d[3] = t->alpha[a];
}

struct bg_job {
  const cutout_image *img;
  struct bg_tab tab;
  cutout_image *out;
};

static void bg_range(void *arg, size_t begin, size_t end)
{
  const struct bg_job *j = arg;
  const struct bg_tab *t = &j->tab;
  const size_t w = j->img->width;
  for (size_t y = begin; y < end; y++) {
    const uint8_t *s = j->img->pixels + y * j->img->stride;
    uint8_t *d = j->out->pixels + y * j->out->stride;
    /* convert("RGBA") on the fly: L/LA replicate grey, L/RGB are opaque */
    switch (j->img->channels) {
    case 1:
      for (size_t x = 0; x < w; x++)
        bg_px(t, s[x], s[x], s[x], 255, d + 4 * x);
      break;
    case 2:
      for (size_t x = 0; x < w; x++)
        bg_px(t, s[2 * x], s[2 * x], s[2 * x], s[2 * x + 1], d + 4 * x);
      break;
    case 3:
      for (size_t x = 0; x < w; x++)
        bg_px(t, s[3 * x], s[3 * x + 1], s[3 * x + 2], 255, d + 4 * x);
      break;
    default:
      for (size_t x = 0; x < w; x++)
        bg_px(t, s[4 * x], s[4 * x + 1], s[4 * x + 2], s[4 * x + 3],
              d + 4 * x);
      break;
    }
  }
}

cutout_status cutout__apply_background(const cutout_image *img,
                                       const uint8_t color[4], int nthreads,
                                       cutout_image **out, char *err)
{
  cutout_status st =
      cutout__image_check(img, "apply_background", "image", err);
  if (st) return st;
  if (!color)
    return cutout__err(err, CUTOUT_EINVAL, "apply_background: color is NULL");
  if (!out)
    return cutout__err(err, CUTOUT_EINVAL, "apply_background: out is NULL");
  cutout_image *o;
  st = cutout_image_new(img->width, img->height, 4, &o);
  if (st)
    return cutout__err(err, st, "apply_background: cannot allocate output");
  struct bg_job j; /* ~5 KB of tables */
  j.img = img;
  j.out = o;
  bg_tab_init(&j.tab, color);
  cutout__parallel_for(nthreads, img->height, MIN_ROWS_PER_THREAD, bg_range,
                       &j);
  *out = o;
  return CUTOUT_OK;
}
