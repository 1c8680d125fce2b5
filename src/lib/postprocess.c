/*
 * postprocess.c: rembg's post_process() for -ppm, bit for bit:
 *
 *   mask = skimage.morphology.opening(mask, disk(1))
 *   mask = scipy.ndimage.gaussian_filter(mask.astype(float64), sigma=2)
 *   mask = np.where(mask < 127, 0, 255)
 *
 * disk(1) is the 3x3 cross.  scikit-image 0.19 does the opening with
 * scipy.ndimage.grey_erosion then grey_dilation (mode "reflect": the
 * neighbour past an edge is the edge pixel itself, so it never changes a
 * min or max and is simply left out here).
 *
 * The Gaussian is separable, axis 0 (columns) then axis 1 (rows), each a
 * correlate1d with 17 weights exp(-x^2 / 8) / sum, mode "reflect"
 * (... c b a | a b c ... , repeated for lines shorter than the radius).
 * A result landing near 127 must round the same way SciPy's does, so the
 * float64 arithmetic follows correlate1d's symmetric-kernel loop exactly:
 *   out = v[0] * w[0]; then for d = 8 down to 1: out += (v[-d] + v[d]) * w[d]
 * and the weights are SciPy's own doubles (numpy 1.24), written out below.
 * The loops run over blocks of pixels so that gcc vectorises them; each
 * pixel still sees the same float64 operations in the same order.
 */
#include "imaging.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define RADIUS 8
#define MIN_ROWS_PER_THREAD 16

/* _gaussian_kernel1d(2.0, 0, 8): weight at distance 0..8. */
static const double GW[RADIUS + 1] = {
    0x1.98862a07ae7b4p-3, 0x1.68856f9ab1983p-3, 0x1.ef9093fc46e5ap-4,
    0x1.0941b71ceef37p-4, 0x1.ba4d4125ffd2ap-6, 0x1.1f30504e20207p-7,
    0x1.227362b5fc92dp-9, 0x1.c98b8c5d0dda5p-12, 0x1.18aad19e4159bp-14,
};

/* ndimage "reflect" for any i: period 2n, mirrored halves. */
static size_t reflect(long long i, size_t n)
{
  const long long p = 2 * (long long)n;
  long long m = i % p;
  if (m < 0) m += p;
  return (size_t)(m < (long long)n ? m : p - 1 - m);
}

/* ------------------------------------------------------------- opening */

/* Pixels per block of the vectorised loops. */
#define MBLOCK 32
#define GBLOCK 16

static inline uint8_t min8(uint8_t a, uint8_t b) { return a < b ? a : b; }
static inline uint8_t max8(uint8_t a, uint8_t b) { return a > b ? a : b; }

/* One row of erosion (is_max 0) or dilation (1) with the cross. */
static void morph_row(const uint8_t *restrict u, const uint8_t *restrict c,
                      const uint8_t *restrict d, uint8_t *restrict o,
                      size_t w, int is_max)
{
  if (w == 1) {
    o[0] = is_max ? max8(max8(u[0], d[0]), c[0])
                  : min8(min8(u[0], d[0]), c[0]);
    return;
  }
  /* Edges: the reflected neighbour is the pixel itself. */
  const size_t e = w - 1;
  if (is_max) {
    o[0] = max8(max8(u[0], d[0]), max8(c[0], c[1]));
    o[e] = max8(max8(u[e], d[e]), max8(c[e], c[e - 1]));
  } else {
    o[0] = min8(min8(u[0], d[0]), min8(c[0], c[1]));
    o[e] = min8(min8(u[e], d[e]), min8(c[e], c[e - 1]));
  }
  size_t x = 1;
  if (is_max) {
    for (; x + MBLOCK <= e; x += MBLOCK)
      for (int i = 0; i < MBLOCK; i++)
        o[x + i] = max8(max8(u[x + i], d[x + i]),
                        max8(c[x + i], max8(c[x + i - 1], c[x + i + 1])));
    for (; x < e; x++)
      o[x] = max8(max8(u[x], d[x]), max8(c[x], max8(c[x - 1], c[x + 1])));
  } else {
    for (; x + MBLOCK <= e; x += MBLOCK)
      for (int i = 0; i < MBLOCK; i++)
        o[x + i] = min8(min8(u[x + i], d[x + i]),
                        min8(c[x + i], min8(c[x + i - 1], c[x + i + 1])));
    for (; x < e; x++)
      o[x] = min8(min8(u[x], d[x]), min8(c[x], min8(c[x - 1], c[x + 1])));
  }
}

struct morph_job {
  const uint8_t *src;
  size_t src_stride;
  uint8_t *dst;
  size_t dst_stride;
  uint32_t w, h;
  int is_max;
};

static void morph_range(void *arg, size_t begin, size_t end)
{
  const struct morph_job *j = arg;
  for (size_t y = begin; y < end; y++) {
    const uint8_t *c = j->src + y * j->src_stride;
    const uint8_t *u = y > 0 ? c - j->src_stride : c;
    const uint8_t *d = y + 1 < j->h ? c + j->src_stride : c;
    morph_row(u, c, d, j->dst + y * j->dst_stride, j->w, j->is_max);
  }
}

/* ------------------------------------------------- Gaussian + threshold */

/* Axis 0 for one row: col[x] = c[x] w0 + sum_{d=8..1} (a_d[x] + b_d[x]) w_d
 * where a_d, b_d are the rows y - d and y + d (reflected). */
static void gauss_col(const uint8_t *c, const uint8_t *const *a,
                      const uint8_t *const *b, double *col, size_t w)
{
  size_t x = 0;
  for (; x + GBLOCK <= w; x += GBLOCK) {
    double acc[GBLOCK];
    for (int i = 0; i < GBLOCK; i++) acc[i] = (double)c[x + i] * GW[0];
    for (int d = RADIUS; d >= 1; d--) {
      const uint8_t *ad = a[d] + x, *bd = b[d] + x;
      const double wd = GW[d];
      for (int i = 0; i < GBLOCK; i++)
        acc[i] += (double)(ad[i] + bd[i]) * wd;
    }
    for (int i = 0; i < GBLOCK; i++) col[x + i] = acc[i];
  }
  for (; x < w; x++) {
    double acc = (double)c[x] * GW[0];
    for (int d = RADIUS; d >= 1; d--)
      acc += (double)(a[d][x] + b[d][x]) * GW[d];
    col[x] = acc;
  }
}

/* Axis 1 on a row padded with RADIUS reflected values each side, then the
 * threshold: 0 below 127, else 255. */
static void gauss_row(const double *p, uint8_t *o, size_t w)
{
  size_t x = 0;
  for (; x + GBLOCK <= w; x += GBLOCK) {
    double acc[GBLOCK];
    for (int i = 0; i < GBLOCK; i++) acc[i] = p[x + i] * GW[0];
    for (int d = RADIUS; d >= 1; d--) {
      const double *l = p + x - d, *r = p + x + d, wd = GW[d];
      for (int i = 0; i < GBLOCK; i++) acc[i] += (l[i] + r[i]) * wd;
    }
    for (int i = 0; i < GBLOCK; i++) o[x + i] = acc[i] < 127.0 ? 0 : 255;
  }
  for (; x < w; x++) {
    double acc = p[x] * GW[0];
    for (int d = RADIUS; d >= 1; d--)
      acc += (p[(ptrdiff_t)x - d] + p[x + d]) * GW[d];
    o[x] = acc < 127.0 ? 0 : 255;
  }
}

struct gauss_job {
  const uint8_t *src; /* the opened mask, w bytes per row */
  cutout_image *out;
  uint32_t w, h;
  atomic_int failed;
};

static void gauss_range(void *arg, size_t begin, size_t end)
{
  struct gauss_job *j = arg;
  const size_t w = j->w, h = j->h;
  double *pad = malloc((w + 2 * RADIUS) * sizeof *pad);
  if (!pad) {
    atomic_store(&j->failed, 1);
    goto done;
  }
  for (size_t y = begin; y < end; y++) {
    const uint8_t *a[RADIUS + 1], *b[RADIUS + 1];
    for (int d = 1; d <= RADIUS; d++) {
      a[d] = j->src + reflect((long long)y - d, h) * w;
      b[d] = j->src + reflect((long long)y + d, h) * w;
    }
    a[0] = b[0] = NULL;
    /* The column pass writes straight into the padded row... */
    double *col = pad + RADIUS;
    gauss_col(j->src + y * w, a, b, col, w);
    /* ...whose margins are then reflected in. */
    for (int i = 1; i <= RADIUS; i++) {
      col[-i] = col[reflect(-i, w)];
      col[w - 1 + i] = col[reflect((long long)w - 1 + i, w)];
    }
    gauss_row(col, j->out->pixels + y * j->out->stride, w);
  }
done:
  free(pad);
}

cutout_status cutout__post_process_mask(const cutout_image *mask,
                                        int nthreads, cutout_image **out,
                                        char *err)
{
  cutout_status st = cutout__image_check(mask, "post_process", "mask", err);
  if (st) return st;
  if (mask->channels != 1)
    return cutout__err(err, CUTOUT_EINVAL,
                       "post_process: mask has %u channels, not 1",
                       (unsigned)mask->channels);
  if (!out)
    return cutout__err(err, CUTOUT_EINVAL, "post_process: out is NULL");

  const uint32_t w = mask->width, h = mask->height;
  cutout_image *o;
  st = cutout_image_new(w, h, 1, &o);
  if (st) return cutout__err(err, st, "post_process: cannot allocate output");
  size_t nb;
  uint8_t *opened = NULL;
  if (!cutout__mul_size(w, h, &nb)) opened = malloc(nb);
  if (!opened) {
    cutout_image_free(o);
    return cutout__err(err, CUTOUT_ENOMEM, "post_process: out of memory");
  }

  /* Erosion into the output's pixels (scratch), dilation into `opened`. */
  struct morph_job ero = {mask->pixels, mask->stride, o->pixels, o->stride,
                          w, h, 0};
  cutout__parallel_for(nthreads, h, MIN_ROWS_PER_THREAD, morph_range, &ero);
  struct morph_job dil = {o->pixels, o->stride, opened, w, w, h, 1};
  cutout__parallel_for(nthreads, h, MIN_ROWS_PER_THREAD, morph_range, &dil);

  struct gauss_job g = {opened, o, w, h, 0};
  cutout__parallel_for(nthreads, h, MIN_ROWS_PER_THREAD, gauss_range, &g);
  free(opened);
  if (atomic_load(&g.failed)) {
    cutout_image_free(o);
    return cutout__err(err, CUTOUT_ENOMEM, "post_process: out of memory");
  }
  *out = o;
  return CUTOUT_OK;
}
