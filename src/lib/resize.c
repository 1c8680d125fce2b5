/*
 * resize.c: Pillow's Image.resize(size, Image.LANCZOS), bit for bit.
 *
 * rembg resizes every image to the model's S x S input and the S x S mask
 * back to the image size with Pillow's Lanczos-3, so any difference here
 * shows up in every output.  What has to match (Pillow 9.4,
 * libImaging/Resample.c and PIL/Image.py):
 *   - the weights: support 3 * max(in/out, 1), window bounds rounded with
 *     +0.5 and clamped, sinc(x) * sinc(x/3) evaluated in double with the
 *     same operation order, normalised by their sum, then turned into
 *     22-bit fixed point rounding half away from zero;
 *   - the sums: int32 accumulators starting at 1 << 21, >> 22, clamped;
 *   - two passes, horizontal first into an 8-bit intermediate that holds
 *     only the source rows the vertical pass reads; a pass is skipped when
 *     its dimension does not change, and an unchanged size is a copy;
 *   - LA and RGBA are resized premultiplied (Image.resize converts to
 *     "La"/"RGBa" first and back afterwards, with Convert.c's integer
 *     formulas).
 * Because the sums are integers, their order is free: the loops below are
 * shaped for the vectoriser rather than copied from Pillow (see the
 * kernels section).
 */
#include "imaging.h"

#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS 22
#define ROUND_HALF (1 << (PRECISION_BITS - 1))
#define PI_D 3.14159265358979323846

/* Rows per thread below which splitting costs more than it saves. */
#define MIN_ROWS_PER_THREAD 8

/* ---------------------------------------------------------------- weights */

/* Pillow's sinc and truncated Lanczos-3, same operation order. */
static double sinc(double x)
{
  if (x == 0.0) return 1.0;
  x = x * PI_D;
  return sin(x) / x;
}

static double lanczos3(double x)
{
  if (-3.0 <= x && x < 3.0) return sinc(x) * sinc(x / 3);
  return 0.0;
}

/* One axis: output i reads source [first[i], first[i] + count[i]) with the
 * fixed-point weights k[i * ksize ...]. */
struct axis {
  uint32_t out_size;
  uint32_t ksize;
  uint32_t *first;
  uint32_t *count;
  int32_t *k;
};

static void axis_free(struct axis *a)
{
  free(a->first);
  free(a->count);
  free(a->k);
  memset(a, 0, sizeof *a);
}

static cutout_status axis_init(struct axis *a, uint32_t in_size,
                               uint32_t out_size, char *err)
{
  memset(a, 0, sizeof *a);
  /* Pillow computes in1 - in0 in float (the box), then divides in double. */
  const double scale = (double)((float)in_size - 0.0f) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = 3.0 * filterscale;
  const double ss = 1.0 / filterscale;
  const double ksize_d = ceil(support) * 2 + 1;
  if (ksize_d > (double)INT_MAX)
    return cutout__err(err, CUTOUT_EINVAL, "resize: filter too large");
  const uint32_t ksize = (uint32_t)ksize_d;

  size_t nk, nb_first, nb_k;
  double *w = NULL;
  if (cutout__mul_size(out_size, ksize, &nk) ||
      cutout__mul_size(nk, sizeof(int32_t), &nb_k) ||
      cutout__mul_size(out_size, sizeof(uint32_t), &nb_first))
    return cutout__err(err, CUTOUT_ENOMEM, "resize: filter table too large");
  a->first = malloc(nb_first);
  a->count = malloc(nb_first);
  a->k = calloc(1, nb_k);
  w = malloc((size_t)ksize * sizeof *w);
  if (!a->first || !a->count || !a->k || !w) {
    free(w);
    axis_free(a);
    return cutout__err(err, CUTOUT_ENOMEM, "resize: out of memory");
  }
  a->out_size = out_size;
  a->ksize = ksize;

  for (uint32_t xx = 0; xx < out_size; xx++) {
    const double center = 0.0 + (xx + 0.5) * scale;
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > (int)in_size) xmax = (int)in_size;
    xmax -= xmin;
    if (xmax > (int)ksize) xmax = (int)ksize; /* cannot happen; be safe */
    double ww = 0.0;
    for (int x = 0; x < xmax; x++) {
      double v = lanczos3((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    int32_t *k = a->k + (size_t)xx * ksize;
    for (int x = 0; x < xmax; x++) {
      double v = ww != 0.0 ? w[x] / ww : w[x];
      /* normalize_coeffs_8bpc: round half away from zero */
      k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS))
                   : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
    }
    a->first[xx] = (uint32_t)xmin;
    a->count[xx] = (uint32_t)(xmax < 0 ? 0 : xmax);
  }
  free(w);
  return CUTOUT_OK;
}

static inline uint8_t clip8(int32_t v)
{
  if (v < 0) return 0;
  v >>= PRECISION_BITS;
  return (uint8_t)(v > 255 ? 255 : v);
}

/* ------------------------------------------------------------- kernels */

/*
 * Both passes run one kernel: n independent byte lanes, each the weighted
 * sum of `count` bytes found `stride` apart, starting at top.  The vertical
 * pass uses it on image rows (lanes = a row, taps = rows); the horizontal
 * pass on a transposed strip of rows, where every source column holds the
 * strip's pixels side by side, so it also reads contiguous memory.  The
 * fixed 32-lane blocks keep the accumulators in registers and let gcc -O2
 * vectorise; the AVX2 clone matters here because SSE2 has no 32-bit
 * multiply.
 */

#define VBLOCK 32

CUTOUT_KERNEL_CLONES
static void resample_lanes(const uint8_t *top, size_t stride, uint32_t count,
                           const int32_t *k, uint8_t *dst, size_t n)
{
  size_t x = 0;
  for (; x + VBLOCK <= n; x += VBLOCK) {
    int32_t acc[VBLOCK];
    for (int i = 0; i < VBLOCK; i++) acc[i] = ROUND_HALF;
    const uint8_t *r = top + x;
    for (uint32_t t = 0; t < count; t++, r += stride) {
      const int32_t c = k[t];
      for (int i = 0; i < VBLOCK; i++) acc[i] += (int32_t)r[i] * c;
    }
    for (int i = 0; i < VBLOCK; i++) dst[x + i] = clip8(acc[i]);
  }
  for (; x < n; x++) {
    int32_t acc = ROUND_HALF;
    const uint8_t *r = top + x;
    for (uint32_t t = 0; t < count; t++, r += stride)
      acc += (int32_t)*r * k[t];
    dst[x] = clip8(acc);
  }
}

/* ------------------------------------------------------- horizontal pass */

/* Rows transposed at a time: 32 * channels lanes per column. */
#define STRIP_ROWS 32
/* Columns per transposition block, to keep its writes in L1. */
#define TBLOCK 128

/*
 * Strip transposition, specialised per channel count so that each pixel is
 * one small fixed-size copy.  Four rows go together: in the column layout
 * their pixels are adjacent, which halves the number of stores.
 *   cols[x * pitch + r * C + ch] = row r [x * C + ch]
 */
#define DEFINE_TRANSPOSE(C)                                                \
  static void strip_in_##C(const uint8_t *src, size_t sstride,            \
                           size_t rows, size_t x0, size_t x1,             \
                           uint8_t *cols, size_t pitch)                   \
  {                                                                       \
    size_t r = 0;                                                         \
    for (; r + 4 <= rows; r += 4) {                                       \
      const uint8_t *s0 = src + r * sstride, *s1 = s0 + sstride;          \
      const uint8_t *s2 = s1 + sstride, *s3 = s2 + sstride;               \
      uint8_t *d = cols + x0 * pitch + r * (C);                           \
      for (size_t x = x0 * (C); x < x1 * (C); x += (C), d += pitch) {     \
        memcpy(d, s0 + x, (C));                                           \
        memcpy(d + (C), s1 + x, (C));                                     \
        memcpy(d + 2 * (C), s2 + x, (C));                                 \
        memcpy(d + 3 * (C), s3 + x, (C));                                 \
      }                                                                   \
    }                                                                     \
    for (; r < rows; r++) {                                               \
      const uint8_t *s0 = src + r * sstride;                              \
      uint8_t *d = cols + x0 * pitch + r * (C);                           \
      for (size_t x = x0 * (C); x < x1 * (C); x += (C), d += pitch)       \
        memcpy(d, s0 + x, (C));                                           \
    }                                                                     \
  }                                                                       \
  static void strip_out_##C(const uint8_t *cols, size_t pitch,            \
                            size_t rows, size_t x0, size_t x1,            \
                            uint8_t *dst, size_t dstride)                 \
  {                                                                       \
    size_t r = 0;                                                         \
    for (; r + 4 <= rows; r += 4) {                                       \
      uint8_t *d0 = dst + r * dstride, *d1 = d0 + dstride;                \
      uint8_t *d2 = d1 + dstride, *d3 = d2 + dstride;                     \
      const uint8_t *s = cols + x0 * pitch + r * (C);                     \
      for (size_t x = x0 * (C); x < x1 * (C); x += (C), s += pitch) {     \
        memcpy(d0 + x, s, (C));                                           \
        memcpy(d1 + x, s + (C), (C));                                     \
        memcpy(d2 + x, s + 2 * (C), (C));                                 \
        memcpy(d3 + x, s + 3 * (C), (C));                                 \
      }                                                                   \
    }                                                                     \
    for (; r < rows; r++) {                                               \
      uint8_t *d0 = dst + r * dstride;                                    \
      const uint8_t *s = cols + x0 * pitch + r * (C);                     \
      for (size_t x = x0 * (C); x < x1 * (C); x += (C), s += pitch)       \
        memcpy(d0 + x, s, (C));                                           \
    }                                                                     \
  }

DEFINE_TRANSPOSE(1)
DEFINE_TRANSPOSE(2)
DEFINE_TRANSPOSE(3)
DEFINE_TRANSPOSE(4)

typedef void (*strip_in_fn)(const uint8_t *, size_t, size_t, size_t, size_t,
                            uint8_t *, size_t);
typedef void (*strip_out_fn)(const uint8_t *, size_t, size_t, size_t, size_t,
                             uint8_t *, size_t);
static const strip_in_fn STRIP_IN[4] = {strip_in_1, strip_in_2, strip_in_3,
                                        strip_in_4};
static const strip_out_fn STRIP_OUT[4] = {strip_out_1, strip_out_2,
                                          strip_out_3, strip_out_4};

struct hjob {
  const uint8_t *src; /* row 0 = first source row needed */
  size_t src_stride;
  uint8_t *dst;
  size_t dst_stride;
  uint32_t in_w, out_w, channels;
  const struct axis *a;
  atomic_int failed;
};

static void h_range(void *arg, size_t begin, size_t end)
{
  struct hjob *j = arg;
  const size_t c = j->channels, lanes_max = STRIP_ROWS * c;
  const size_t in_w = j->in_w, out_w = j->out_w;
  const struct axis *a = j->a;
  uint8_t *cols = malloc(in_w * lanes_max);  /* source strip, transposed */
  uint8_t *res = malloc(out_w * lanes_max);  /* result strip, transposed */
  if (!cols || !res) {
    atomic_store(&j->failed, 1);
    goto done;
  }
  for (size_t y0 = begin; y0 < end; y0 += STRIP_ROWS) {
    const size_t rows = end - y0 < STRIP_ROWS ? end - y0 : STRIP_ROWS;
    const size_t L = lanes_max, lanes = rows * c;
    const uint8_t *src = j->src + y0 * j->src_stride;
    for (size_t x0 = 0; x0 < in_w; x0 += TBLOCK) {
      const size_t x1 = x0 + TBLOCK < in_w ? x0 + TBLOCK : in_w;
      STRIP_IN[c - 1](src, j->src_stride, rows, x0, x1, cols, L);
    }
    for (size_t xx = 0; xx < out_w; xx++)
      resample_lanes(cols + (size_t)a->first[xx] * L, L, a->count[xx],
                     a->k + xx * (size_t)a->ksize, res + xx * L, lanes);
    uint8_t *dst = j->dst + y0 * j->dst_stride;
    for (size_t x0 = 0; x0 < out_w; x0 += TBLOCK) {
      const size_t x1 = x0 + TBLOCK < out_w ? x0 + TBLOCK : out_w;
      STRIP_OUT[c - 1](res, L, rows, x0, x1, dst, j->dst_stride);
    }
  }
done:
  free(cols);
  free(res);
}

/* --------------------------------------------------------- vertical pass */

struct vjob {
  const uint8_t *src; /* row 0 = source row `row0` */
  size_t src_stride;
  uint32_t row0;
  uint8_t *dst;
  size_t dst_stride;
  size_t row_bytes;
  const struct axis *a;
};

static void v_range(void *arg, size_t begin, size_t end)
{
  const struct vjob *j = arg;
  for (size_t yy = begin; yy < end; yy++) {
    const uint8_t *top =
        j->src + (size_t)(j->a->first[yy] - j->row0) * j->src_stride;
    resample_lanes(top, j->src_stride, j->a->count[yy],
                   j->a->k + yy * (size_t)j->a->ksize,
                   j->dst + yy * j->dst_stride, j->row_bytes);
  }
}

/* ------------------------------------------------------ premultiplication */

/* Pillow's MULDIV255 and the "RGBa"/"La" converters of Convert.c. */
static inline uint8_t muldiv255(unsigned a, unsigned b)
{
  unsigned t = a * b + 128;
  return (uint8_t)(((t >> 8) + t) >> 8);
}

struct pjob {
  const cutout_image *in;
  cutout_image *out;
};

/* rgbA2rgba / lA2la: colour = MULDIV255(colour, alpha). */
static void premul_range(void *arg, size_t begin, size_t end)
{
  const struct pjob *j = arg;
  const uint32_t c = j->in->channels, w = j->in->width;
  for (size_t y = begin; y < end; y++) {
    const uint8_t *s = j->in->pixels + y * j->in->stride;
    uint8_t *d = j->out->pixels + y * j->out->stride;
    if (c == 4) {
      for (uint32_t x = 0; x < w; x++, s += 4, d += 4) {
        const unsigned a = s[3];
        d[0] = muldiv255(s[0], a);
        d[1] = muldiv255(s[1], a);
        d[2] = muldiv255(s[2], a);
        d[3] = (uint8_t)a;
      }
    } else { /* LA */
      for (uint32_t x = 0; x < w; x++, s += 2, d += 2) {
        d[0] = muldiv255(s[0], s[1]);
        d[1] = s[1];
      }
    }
  }
}

/* rgba2rgbA / la2lA: alpha 0 and 255 untouched, else 255 * v / a
 * truncated and clipped to 255. */
static void unpremul_range(void *arg, size_t begin, size_t end)
{
  const struct pjob *j = arg;
  const uint32_t c = j->out->channels, w = j->out->width;
  for (size_t y = begin; y < end; y++) {
    uint8_t *d = j->out->pixels + y * j->out->stride;
    for (uint32_t x = 0; x < w; x++, d += c) {
      const unsigned a = d[c - 1];
      if (a == 0 || a == 255) continue;
      for (uint32_t i = 0; i + 1 < c; i++) {
        unsigned v = 255u * d[i] / a;
        d[i] = (uint8_t)(v > 255 ? 255 : v);
      }
    }
  }
}

/* ------------------------------------------------------------------ core */

static cutout_status copy_image(const cutout_image *in, cutout_image **out,
                                char *err)
{
  cutout_image *o;
  cutout_status st = cutout_image_new(in->width, in->height, in->channels, &o);
  if (st) return cutout__err(err, st, "resize: cannot allocate the output");
  const size_t row = (size_t)in->width * in->channels;
  for (uint32_t y = 0; y < in->height; y++)
    memcpy(o->pixels + (size_t)y * o->stride,
           in->pixels + (size_t)y * in->stride, row);
  *out = o;
  return CUTOUT_OK;
}

/* ImagingResampleInner for an 8-bit image whose size changes. */
static cutout_status resample(const cutout_image *in, uint32_t out_w,
                              uint32_t out_h, int nthreads,
                              cutout_image **out, char *err)
{
  const uint32_t c = in->channels;
  const int need_h = out_w != in->width, need_v = out_h != in->height;
  struct axis av, ah;
  cutout_image *o = NULL;
  uint8_t *tmp = NULL;
  memset(&ah, 0, sizeof ah);

  /* Pillow always derives the rows it needs from the vertical weights. */
  cutout_status st = axis_init(&av, in->height, out_h, err);
  if (st) return st;
  const uint32_t row_first = av.first[0];
  const uint32_t row_last = av.first[out_h - 1] + av.count[out_h - 1];
  const uint32_t rows = row_last - row_first;

  st = cutout_image_new(out_w, out_h, c, &o);
  if (st) {
    cutout__err(err, st, "resize: cannot allocate %ux%u output",
                (unsigned)out_w, (unsigned)out_h);
    goto done;
  }

  const uint8_t *vsrc = in->pixels;
  size_t vstride = in->stride;
  uint32_t vrow0 = 0;

  if (need_h) {
    size_t strip_bytes;
    if (cutout__mul_size(in->width > out_w ? in->width : out_w,
                         (size_t)STRIP_ROWS * c, &strip_bytes)) {
      st = cutout__err(err, CUTOUT_ENOMEM, "resize: image too large");
      goto done;
    }
    st = axis_init(&ah, in->width, out_w, err);
    if (st) goto done;
    uint8_t *hdst = o->pixels;
    if (need_v) {
      size_t nb;
      if (cutout__mul_size(o->stride, rows, &nb)) {
        st = cutout__err(err, CUTOUT_ENOMEM, "resize: image too large");
        goto done;
      }
      tmp = malloc(nb);
      if (!tmp) {
        st = cutout__err(err, CUTOUT_ENOMEM, "resize: out of memory");
        goto done;
      }
      hdst = tmp;
    }
    /* Without a vertical pass, rows == height (the identity weights reach
     * every row), so the horizontal pass writes the output directly. */
    struct hjob hj = {in->pixels + (size_t)row_first * in->stride,
                      in->stride, hdst, o->stride, in->width, out_w, c, &ah,
                      0};
    cutout__parallel_for(nthreads, rows, STRIP_ROWS, h_range, &hj);
    if (atomic_load(&hj.failed)) {
      st = cutout__err(err, CUTOUT_ENOMEM, "resize: out of memory");
      goto done;
    }
    vsrc = tmp;
    vstride = o->stride;
    vrow0 = row_first;
  }

  if (need_v) {
    struct vjob vj = {vsrc,     vstride,   vrow0, o->pixels,
                      o->stride, (size_t)out_w * c, &av};
    cutout__parallel_for(nthreads, out_h, MIN_ROWS_PER_THREAD, v_range, &vj);
  }
  *out = o;
  o = NULL;
  st = CUTOUT_OK;

done:
  cutout_image_free(o);
  free(tmp);
  axis_free(&ah);
  axis_free(&av);
  return st;
}

cutout_status cutout__resize_lanczos(const cutout_image *in, uint32_t out_w,
                                     uint32_t out_h, int nthreads,
                                     cutout_image **out, char *err)
{
  cutout_status st = cutout__image_check(in, "resize", "input", err);
  if (st) return st;
  if (!out) return cutout__err(err, CUTOUT_EINVAL, "resize: out is NULL");
  if (out_w == 0 || out_h == 0)
    return cutout__err(err, CUTOUT_EINVAL, "resize: empty target size %ux%u",
                       (unsigned)out_w, (unsigned)out_h);
  /* Pillow's sizes are C ints. */
  if (out_w > INT_MAX || out_h > INT_MAX || in->width > INT_MAX ||
      in->height > INT_MAX)
    return cutout__err(err, CUTOUT_EINVAL, "resize: size out of range");

  if (out_w == in->width && out_h == in->height)
    return copy_image(in, out, err);

  const uint32_t c = in->channels;
  if (c == 1 || c == 3) return resample(in, out_w, out_h, nthreads, out, err);

  /* LA / RGBA: Image.resize works on "La" / "RGBa". */
  cutout_image *pre = NULL, *o = NULL;
  st = cutout_image_new(in->width, in->height, c, &pre);
  if (st) return cutout__err(err, st, "resize: out of memory");
  struct pjob pj = {in, pre};
  cutout__parallel_for(nthreads, in->height, MIN_ROWS_PER_THREAD,
                       premul_range, &pj);
  st = resample(pre, out_w, out_h, nthreads, &o, err);
  cutout_image_free(pre);
  if (st) return st;
  struct pjob uj = {o, o};
  cutout__parallel_for(nthreads, out_h, MIN_ROWS_PER_THREAD, unpremul_range,
                       &uj);
  *out = o;
  return CUTOUT_OK;
}
