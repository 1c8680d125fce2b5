/*
 * matting.c: rembg's alpha_matting_cutout() up to the alpha matte: the
 * trimap, the band of unknown pixels, the closed-form matting Laplacian
 * restricted to that band, the solve (matting_pcg.c), then the foreground
 * (foreground.c).
 *
 * DESIGN
 * pymatting builds the Laplacian of the whole image (25 float64 values and
 * 25 int64 indices per pixel, 400 bytes a pixel: gigabytes for a photo)
 * and then slices out the unknown rows.  Only windows that contain an
 * unknown pixel contribute to those rows, so cutout visits nothing else:
 * each unknown pixel gathers its 25-entry stencil from the (at most nine)
 * 3x3 windows around it, in the order pymatting's scatter adds them, so the
 * float64 sums are the same bit for bit.  Window statistics are cached per
 * thread in a three-row ring.  Memory is proportional to the band: the CSR
 * matrix, the solver vectors, and one byte per image pixel for the trimap.
 */
#include "matting.h"
#include "bigalloc.h"
#include "imaging.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MIN_ROWS_PER_THREAD 32
#define MIN_BAND_PER_THREAD 2048
/* Default cap on the band: ~0.4 KB of solver state per unknown pixel, so
 * 8 M unknown pixels is ~3.5 GB.  Above it cutout falls back, as rembg
 * would after running out of memory. */
#define DEFAULT_MAX_UNKNOWN ((size_t)8 << 20)
/* Above this the direct solver declines and IC(0)-PCG solves (a photo's
 * band needs a few hundred MB at 4000x3000; a huge unknown region grows
 * its factor as n log n and its work as n^1.5). */
#define DEFAULT_MAX_DIRECT_BYTES ((size_t)1 << 30)

/* ---------------------------------------------------------------- trimap */

/* Pass 1 of the erosion: each row, bit 0 = mask > fg and bit 1 = mask < bg
 * eroded horizontally.  Pass 2 erodes the columns of that and writes the
 * trimap.  A box of ones is separable, and so is its border: a row outside
 * the image is all border_value after the horizontal pass. */
struct trimap_job {
  const cutout_image *mask;
  int fg, bg, e; /* e: box size, 0 = cross */
  uint8_t *tmp, *tri;
  uint32_t w, h;
  int failed;
};

static void trimap_rows(void *arg, size_t begin, size_t end)
{
  struct trimap_job *j = arg;
  const uint32_t w = j->w;
  const long e = j->e, c = j->e / 2;
  uint32_t *zf = NULL, *zb = NULL;
  if (e > 1) {
    zf = malloc((size_t)(w + 1) * 2 * sizeof *zf);
    if (!zf) {
      j->failed = 1;
      return;
    }
    zb = zf + w + 1;
  }
  for (size_t y = begin; y < end; y++) {
    const uint8_t *m = j->mask->pixels + y * j->mask->stride;
    uint8_t *t = j->tmp + y * w;
    if (e == 0) {
      /* The cross: the horizontal arm here, the vertical one in pass 2,
       * which also needs the unshifted value: keep both (bits 0-1 eroded
       * arm, bits 2-3 the pixel itself). */
      for (uint32_t x = 0; x < w; x++) {
        int f = m[x] > j->fg, b = m[x] < j->bg;
        int fl = x > 0 ? m[x - 1] > j->fg : 0;
        int fr = x + 1 < w ? m[x + 1] > j->fg : 0;
        int bl = x > 0 ? m[x - 1] < j->bg : 1;
        int br = x + 1 < w ? m[x + 1] < j->bg : 1;
        t[x] = (uint8_t)((f && fl && fr) | (b && bl && br) << 1 | f << 2 |
                         b << 3);
      }
      continue;
    }
    if (e == 1) {
      for (uint32_t x = 0; x < w; x++)
        t[x] = (uint8_t)((m[x] > j->fg) | (m[x] < j->bg) << 1);
      continue;
    }
    /* Prefix counts of the pixels that are not fg / not bg. */
    zf[0] = zb[0] = 0;
    for (uint32_t x = 0; x < w; x++) {
      zf[x + 1] = zf[x] + (m[x] <= j->fg);
      zb[x + 1] = zb[x] + (m[x] >= j->bg);
    }
    for (uint32_t x = 0; x < w; x++) {
      /* scipy's window for size e, origin 0: [x - e/2, x + e - 1 - e/2] */
      long lo = (long)x - c, hi = (long)x + e - 1 - c;
      int f = lo >= 0 && hi < (long)w && zf[hi + 1] == zf[lo];
      long clo = lo < 0 ? 0 : lo, chi = hi >= (long)w ? (long)w - 1 : hi;
      int b = zb[chi + 1] == zb[clo];
      t[x] = (uint8_t)(f | b << 1);
    }
  }
  free(zf);
}

/* Pass 2 over a block of columns: slide a count of "not eroded" rows down
 * each column. */
static void trimap_cols(void *arg, size_t begin, size_t end)
{
  struct trimap_job *j = arg;
  const uint32_t w = j->w, h = j->h;
  const size_t nc = end - begin;
  if (j->e == 0) {
    for (uint32_t y = 0; y < h; y++) {
      const uint8_t *t = j->tmp + (size_t)y * w;
      const uint8_t *up = y > 0 ? t - w : NULL, *dn = y + 1 < h ? t + w : NULL;
      uint8_t *o = j->tri + (size_t)y * w;
      for (size_t x = begin; x < end; x++) {
        int f = (t[x] & 1) && up && (up[x] & 4) && dn && (dn[x] & 4);
        int b = (t[x] & 2) && (!up || (up[x] & 8)) && (!dn || (dn[x] & 8));
        o[x] = b ? CUTOUT_TRI_BG : f ? CUTOUT_TRI_FG : CUTOUT_TRI_UNKNOWN;
      }
    }
    return;
  }
  uint32_t *cf = calloc(nc * 2, sizeof *cf);
  if (!cf) {
    j->failed = 1;
    return;
  }
  uint32_t *cb = cf + nc;
  const long e = j->e, c = j->e / 2;
  /* Window of output row y: rows [y - c, y + e - 1 - c].  Start with the
   * rows of the window of y = 0 that are inside the image. */
  for (long r = 0; r <= e - 1 - c && r < (long)h; r++) {
    const uint8_t *t = j->tmp + (size_t)r * w;
    for (size_t x = 0; x < nc; x++) {
      cf[x] += !(t[begin + x] & 1);
      cb[x] += !(t[begin + x] & 2);
    }
  }
  for (long y = 0; y < (long)h; y++) {
    if (y > 0) {
      long add = y + e - 1 - c, del = y - c - 1;
      if (add < (long)h) {
        const uint8_t *t = j->tmp + (size_t)add * w;
        for (size_t x = 0; x < nc; x++) {
          cf[x] += !(t[begin + x] & 1);
          cb[x] += !(t[begin + x] & 2);
        }
      }
      if (del >= 0) {
        const uint8_t *t = j->tmp + (size_t)del * w;
        for (size_t x = 0; x < nc; x++) {
          cf[x] -= !(t[begin + x] & 1);
          cb[x] -= !(t[begin + x] & 2);
        }
      }
    }
    /* border_value 0 for the foreground: a window reaching outside fails */
    int inside = y - c >= 0 && y + e - 1 - c < (long)h;
    uint8_t *o = j->tri + (size_t)y * w + begin;
    for (size_t x = 0; x < nc; x++) {
      int f = inside && cf[x] == 0, b = cb[x] == 0;
      o[x] = b ? CUTOUT_TRI_BG : f ? CUTOUT_TRI_FG : CUTOUT_TRI_UNKNOWN;
    }
  }
  free(cf);
}

cutout_status cutout__trimap(const cutout_image *mask, int fg_thr, int bg_thr,
                             int erode, int nthreads, uint8_t *tri, char *err)
{
  cutout_status st = cutout__image_check(mask, "trimap", "mask", err);
  if (st) return st;
  if (mask->channels != 1 || !tri || erode < 0)
    return cutout__err(err, CUTOUT_EINVAL, "trimap: bad arguments");
  struct trimap_job j = {mask, fg_thr, bg_thr, erode, NULL, tri,
                         mask->width, mask->height, 0};
  j.tmp = malloc((size_t)mask->width * mask->height);
  if (!j.tmp) return cutout__err(err, CUTOUT_ENOMEM, "trimap: out of memory");
  cutout__parallel_for(nthreads, mask->height, MIN_ROWS_PER_THREAD,
                       trimap_rows, &j);
  /* Column blocks of >= 256 bytes keep the row reads cache-friendly. */
  if (!j.failed)
    cutout__parallel_for(nthreads, mask->width, 256, trimap_cols, &j);
  free(j.tmp);
  if (j.failed) return cutout__err(err, CUTOUT_ENOMEM, "trimap: out of memory");
  return CUTOUT_OK;
}

/* ------------------------------------------------------------------ band */

struct band_job {
  const uint8_t *tri;
  struct cutout__band *band;
};

static void band_count(void *arg, size_t begin, size_t end)
{
  struct band_job *j = arg;
  const uint32_t w = j->band->width;
  for (size_t y = begin; y < end; y++) {
    const uint8_t *t = j->tri + y * w;
    size_t n = 0;
    for (uint32_t x = 0; x < w; x++) n += t[x] == CUTOUT_TRI_UNKNOWN;
    j->band->row_ptr[y + 1] = n;
  }
}

static void band_fill(void *arg, size_t begin, size_t end)
{
  struct band_job *j = arg;
  const uint32_t w = j->band->width;
  for (size_t y = begin; y < end; y++) {
    const uint8_t *t = j->tri + y * w;
    uint32_t *o = j->band->x + j->band->row_ptr[y];
    for (uint32_t x = 0; x < w; x++)
      if (t[x] == CUTOUT_TRI_UNKNOWN) *o++ = x;
  }
}

cutout_status cutout__band_build(const uint8_t *tri, uint32_t width,
                                 uint32_t height, struct cutout__band *band,
                                 char *err)
{
  memset(band, 0, sizeof *band);
  band->width = width;
  band->height = height;
  band->row_ptr = calloc((size_t)height + 1, sizeof *band->row_ptr);
  if (!band->row_ptr) goto oom;
  struct band_job j = {tri, band};
  band_count(&j, 0, height);
  for (uint32_t y = 0; y < height; y++)
    band->row_ptr[y + 1] += band->row_ptr[y];
  band->n = band->row_ptr[height];
  band->x = malloc((band->n ? band->n : 1) * sizeof *band->x);
  if (!band->x) goto oom;
  band_fill(&j, 0, height);
  return CUTOUT_OK;
oom:
  cutout__band_free(band);
  return cutout__err(err, CUTOUT_ENOMEM, "matting: out of memory (band)");
}

void cutout__band_free(struct cutout__band *band)
{
  if (!band) return;
  free(band->row_ptr);
  free(band->x);
  memset(band, 0, sizeof *band);
}

/* First index k in [lo, hi) with x[k] >= v. */
static size_t lower_bound(const uint32_t *x, size_t lo, size_t hi, uint32_t v)
{
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (x[mid] < v)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

int64_t cutout__band_find(const struct cutout__band *band, uint32_t x,
                          uint32_t y)
{
  if (x >= band->width || y >= band->height) return -1;
  size_t lo = band->row_ptr[y], hi = band->row_ptr[y + 1];
  size_t k = lower_bound(band->x, lo, hi, x);
  return k < hi && band->x[k] == x ? (int64_t)k : -1;
}

void cutout__csr_free(struct cutout__csr *a)
{
  if (!a) return;
  free(a->ptr);
  cutout__big_free(a->col);
  cutout__big_free(a->val);
  memset(a, 0, sizeof *a);
}

/* ----------------------------------------------------------------- order */

/* Strips must be tall enough that separators (two rows) never touch each
 * other through the 5x5 stencil and that a strip's top and bottom rows,
 * which two different separators update, are distinct. */
#define MIN_STRIP_STEP 6
/* Below this many unknowns the raster order (one strip) is used. */
#define MIN_UNKNOWN_FOR_STRIPS 8192
#define DEFAULT_STRIPS 8

cutout_status cutout__matting_order(const struct cutout__band *band,
                                    size_t nstrips, uint32_t *perm,
                                    struct cutout__pcg_layout *layout,
                                    char *err)
{
  memset(layout, 0, sizeof *layout);
  const uint32_t h = band->height;
  const size_t n = band->n;
  if (nstrips < 1) nstrips = 1;
  if (nstrips > 4096) nstrips = 4096;
  uint32_t *cuts = malloc(nstrips * sizeof *cuts);
  size_t *cnt = NULL, *next = NULL;
  if (!cuts) goto oom;
  /* Cut rows: separator k is rows cuts[k] and cuts[k] + 1; balanced by
   * the number of unknowns above the cut. */
  size_t nc = 0;
  for (size_t k = 1; k < nstrips; k++) {
    size_t target = n / nstrips * k, lo = 0, hi = h;
    while (lo < hi) { /* first row y with row_ptr[y] >= target */
      size_t mid = lo + (hi - lo) / 2;
      if (band->row_ptr[mid] < target)
        lo = mid + 1;
      else
        hi = mid;
    }
    uint64_t y = lo < 2 ? 2 : lo;
    if (nc && y < (uint64_t)cuts[nc - 1] + MIN_STRIP_STEP)
      y = (uint64_t)cuts[nc - 1] + MIN_STRIP_STEP;
    if (y + 3 > h) break; /* the last strip needs a row below */
    cuts[nc++] = (uint32_t)y;
  }
  const size_t nb = nc + 1, ns = nc, nu = nb + ns;
  layout->nblocks = nb;
  layout->nseps = ns;
  layout->bstart = malloc((nb + 1) * sizeof *layout->bstart);
  layout->sstart = malloc((ns + 1) * sizeof *layout->sstart);
  cnt = calloc(nu, sizeof *cnt);
  next = malloc(nu * sizeof *next);
  if (!layout->bstart || !layout->sstart || !cnt || !next) goto oom;
  /* unit of each row: strip k, or separator k (unit nb + k) */
#define ROW_UNITS(body)                                                    \
  do {                                                                     \
    size_t c_ = 0;                                                         \
    for (uint32_t y = 0; y < h; y++) {                                     \
      while (c_ < nc && y > cuts[c_] + 1) c_++;                            \
      size_t u = c_ < nc && y >= cuts[c_] ? nb + c_ : c_;                  \
      body;                                                                \
    }                                                                      \
  } while (0)
  ROW_UNITS(cnt[u] += band->row_ptr[y + 1] - band->row_ptr[y]);
  size_t o = 0;
  for (size_t u = 0; u < nu; u++) {
    if (u < nb)
      layout->bstart[u] = o;
    else
      layout->sstart[u - nb] = o;
    if (u == nb - 1) layout->bstart[nb] = o + cnt[u];
    next[u] = o;
    o += cnt[u];
  }
  layout->sstart[ns] = o;
  ROW_UNITS(for (size_t k = band->row_ptr[y]; k < band->row_ptr[y + 1]; k++)
                perm[k] = (uint32_t)next[u]++);
#undef ROW_UNITS
  free(cuts);
  free(cnt);
  free(next);
  return CUTOUT_OK;
oom:
  free(cuts);
  free(cnt);
  free(next);
  cutout__pcg_layout_free(layout);
  return cutout__err(err, CUTOUT_ENOMEM, "matting: out of memory (order)");
}

/* ---------------------------------------------------------------- system */

/* One 3x3 window's statistics, as pymatting's _cf_laplacian computes them:
 * the mean colour s / 9 and the inverse of the regularised covariance. */
struct window {
  double mean[3];
  double m00, m01, m02, m11, m12, m22;
  double d[3][9]; /* pixel - mean by channel, pixels in raster order */
};

struct system_job {
  const cutout_image *rgb;
  const uint8_t *tri;
  const struct cutout__band *band;
  const uint32_t *perm;
  double eps;
  struct cutout__csr *a;
  double *b;
  atomic_int failed;
};

/* Row y of the band holds the pixel with band index k (k < n). */
static uint32_t band_row_of(const struct cutout__band *band, size_t k)
{
  size_t lo = 0, hi = band->height; /* row_ptr[lo] <= k < row_ptr[hi] */
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (band->row_ptr[mid] <= k)
      lo = mid;
    else
      hi = mid;
  }
  return (uint32_t)lo;
}

/* Whether pixels a and b (one axis) lie in a common window centred in
 * [1, n - 2]: the centre c needs |c - a| <= 1 and |c - b| <= 1. */
static int share_axis(long a, long b, long n)
{
  long lo = (a > b ? a : b) - 1, hi = (a < b ? a : b) + 1;
  if (lo < 1) lo = 1;
  if (hi > n - 2) hi = n - 2;
  return lo <= hi;
}

/* image / 255.0 as pymatting divides it: each quotient folded by the
 * compiler (correctly rounded, as the division at run time), so a lookup
 * replaces a division in the Laplacian's innermost loop. */
#define V(v) ((v) / 255.0)
static const double U8_UNIT[256] = {
    V(0), V(1), V(2), V(3), V(4), V(5), V(6), V(7),
    V(8), V(9), V(10), V(11), V(12), V(13), V(14), V(15),
    V(16), V(17), V(18), V(19), V(20), V(21), V(22), V(23),
    V(24), V(25), V(26), V(27), V(28), V(29), V(30), V(31),
    V(32), V(33), V(34), V(35), V(36), V(37), V(38), V(39),
    V(40), V(41), V(42), V(43), V(44), V(45), V(46), V(47),
    V(48), V(49), V(50), V(51), V(52), V(53), V(54), V(55),
    V(56), V(57), V(58), V(59), V(60), V(61), V(62), V(63),
    V(64), V(65), V(66), V(67), V(68), V(69), V(70), V(71),
    V(72), V(73), V(74), V(75), V(76), V(77), V(78), V(79),
    V(80), V(81), V(82), V(83), V(84), V(85), V(86), V(87),
    V(88), V(89), V(90), V(91), V(92), V(93), V(94), V(95),
    V(96), V(97), V(98), V(99), V(100), V(101), V(102), V(103),
    V(104), V(105), V(106), V(107), V(108), V(109), V(110), V(111),
    V(112), V(113), V(114), V(115), V(116), V(117), V(118), V(119),
    V(120), V(121), V(122), V(123), V(124), V(125), V(126), V(127),
    V(128), V(129), V(130), V(131), V(132), V(133), V(134), V(135),
    V(136), V(137), V(138), V(139), V(140), V(141), V(142), V(143),
    V(144), V(145), V(146), V(147), V(148), V(149), V(150), V(151),
    V(152), V(153), V(154), V(155), V(156), V(157), V(158), V(159),
    V(160), V(161), V(162), V(163), V(164), V(165), V(166), V(167),
    V(168), V(169), V(170), V(171), V(172), V(173), V(174), V(175),
    V(176), V(177), V(178), V(179), V(180), V(181), V(182), V(183),
    V(184), V(185), V(186), V(187), V(188), V(189), V(190), V(191),
    V(192), V(193), V(194), V(195), V(196), V(197), V(198), V(199),
    V(200), V(201), V(202), V(203), V(204), V(205), V(206), V(207),
    V(208), V(209), V(210), V(211), V(212), V(213), V(214), V(215),
    V(216), V(217), V(218), V(219), V(220), V(221), V(222), V(223),
    V(224), V(225), V(226), V(227), V(228), V(229), V(230), V(231),
    V(232), V(233), V(234), V(235), V(236), V(237), V(238), V(239),
    V(240), V(241), V(242), V(243), V(244), V(245), V(246), V(247),
    V(248), V(249), V(250), V(251), V(252), V(253), V(254), V(255),
};
#undef V

static inline double px(const cutout_image *im, long x, long y, int c)
{
  return U8_UNIT[im->pixels[(size_t)y * im->stride +
                            (size_t)x * im->channels + c]];
}

static void window_stats(const cutout_image *im, long cx, long cy, double eps,
                         struct window *wd)
{
  double cc[9][3];
  for (int ch = 0; ch < 3; ch++) {
    double s = 0.0;
    for (int dy = 0; dy < 3; dy++)
      for (int dx = 0; dx < 3; dx++) s += px(im, cx + dx - 1, cy + dy - 1, ch);
    wd->mean[ch] = s / 9;
    for (int k = 0; k < 9; k++)
      cc[k][ch] = px(im, cx + k % 3 - 1, cy + k / 3 - 1, ch) - wd->mean[ch];
  }
  for (int k = 0; k < 9; k++)
    for (int ch = 0; ch < 3; ch++) wd->d[ch][k] = cc[k][ch];
  double a00 = eps, a01 = 0.0, a02 = 0.0, a11 = eps, a12 = 0.0, a22 = eps;
  for (int k = 0; k < 9; k++) {
    a00 += cc[k][0] * cc[k][0];
    a01 += cc[k][0] * cc[k][1];
    a02 += cc[k][0] * cc[k][2];
    a11 += cc[k][1] * cc[k][1];
    a12 += cc[k][1] * cc[k][2];
    a22 += cc[k][2] * cc[k][2];
  }
  a00 /= 9;
  a01 /= 9;
  a02 /= 9;
  a11 /= 9;
  a12 /= 9;
  a22 /= 9;
  /* pymatting's expression: minus the determinant, so the m below are the
   * inverse's entries with both signs flipped back. */
  double det = a00 * a12 * a12 + a01 * a01 * a22 + a02 * a02 * a11 -
               a00 * a11 * a22 - 2 * a01 * a02 * a12;
  double inv_det = 1.0 / det;
  wd->m00 = (a12 * a12 - a11 * a22) * inv_det;
  wd->m01 = (a01 * a22 - a02 * a12) * inv_det;
  wd->m02 = (a02 * a11 - a01 * a12) * inv_det;
  wd->m11 = (a02 * a02 - a00 * a22) * inv_det;
  wd->m12 = (a00 * a12 - a01 * a02) * inv_det;
  wd->m22 = (a01 * a01 - a00 * a11) * inv_det;
}

/* Per-thread cache of window statistics for three rows of centres. */
struct wcache {
  uint32_t w;
  struct window *win; /* 3 * w */
  int64_t *stamp;     /* the centre row each slot holds, -1 none */
};

static int wcache_init(struct wcache *c, uint32_t w)
{
  c->w = w;
  c->win = malloc((size_t)3 * w * sizeof *c->win);
  c->stamp = malloc((size_t)3 * w * sizeof *c->stamp);
  if (!c->win || !c->stamp) return -1;
  for (size_t i = 0; i < (size_t)3 * w; i++) c->stamp[i] = -1;
  return 0;
}

static void wcache_free(struct wcache *c)
{
  free(c->win);
  free(c->stamp);
}

static const struct window *wcache_get(struct wcache *c, const cutout_image *im,
                                       long cx, long cy, double eps)
{
  size_t slot = (size_t)(cy % 3) * c->w + (size_t)cx;
  if (c->stamp[slot] != cy) {
    window_stats(im, cx, cy, eps, &c->win[slot]);
    c->stamp[slot] = cy;
  }
  return &c->win[slot];
}

/* Cursors into the band rows yi-2 .. yi+2: the first unknown pixel of each
 * row with x >= xi - 2. */
struct cursors {
  long y;
  size_t k[5], end[5];
};

static void cursors_at(const struct cutout__band *band, struct cursors *cu,
                       long xi, long yi)
{
  if (cu->y != yi) {
    cu->y = yi;
    for (int r = 0; r < 5; r++) {
      long yr = yi + r - 2;
      if (yr < 0 || yr >= (long)band->height) {
        cu->k[r] = cu->end[r] = 0;
        continue;
      }
      size_t lo = band->row_ptr[yr], hi = band->row_ptr[yr + 1];
      cu->k[r] = lower_bound(band->x, lo, hi, (uint32_t)(xi < 2 ? 0 : xi - 2));
      cu->end[r] = hi;
    }
    return;
  }
  for (int r = 0; r < 5; r++)
    while (cu->k[r] < cu->end[r] && (long)band->x[cu->k[r]] < xi - 2)
      cu->k[r]++;
}

/* Pass 1: the number of stored entries of each row (unknown neighbours that
 * share a window), into ptr[k + 1]. */
static void system_count(void *arg, size_t begin, size_t end)
{
  struct system_job *j = arg;
  const struct cutout__band *band = j->band;
  const long w = band->width, h = band->height;
  struct cursors cu = {-1, {0}, {0}};
  long yi = band_row_of(band, begin);
  for (size_t i = begin; i < end; i++) {
    while (i >= band->row_ptr[yi + 1]) yi++;
    long xi = band->x[i];
    cursors_at(band, &cu, xi, yi);
    size_t cnt = 0;
    for (int r = 0; r < 5; r++) {
      long yj = yi + r - 2;
      if (yj < 0 || yj >= h || !share_axis(yi, yj, h)) continue;
      for (size_t k = cu.k[r]; k < cu.end[r] && band->x[k] <= xi + 2; k++)
        cnt += share_axis(xi, band->x[k], w);
    }
    j->a->ptr[(j->perm ? j->perm[i] : i) + 1] = cnt;
  }
}

/* Pass 2: the values.  Each unknown pixel i sums, over the windows that
 * contain it (centres in raster order, as pymatting's loop adds them), the
 * contribution delta_ij - (1 + c_i' M c_j) / 9 to its 5x5 stencil. */
static void system_fill(void *arg, size_t begin, size_t end)
{
  struct system_job *j = arg;
  const struct cutout__band *band = j->band;
  const cutout_image *im = j->rgb;
  const long w = band->width, h = band->height;
  struct wcache wc;
  if (wcache_init(&wc, band->width)) {
    atomic_store(&j->failed, 1);
    wcache_free(&wc);
    return;
  }
  struct cursors cu = {-1, {0}, {0}};
  long yi = band_row_of(band, begin);
  for (size_t i = begin; i < end; i++) {
    while (i >= band->row_ptr[yi + 1]) yi++;
    long xi = band->x[i];
    double sl[25] = {0};
    uint32_t touched = 0;
    for (long cy = yi - 1; cy <= yi + 1; cy++) {
      if (cy < 1 || cy > h - 2) continue;
      for (long cx = xi - 1; cx <= xi + 1; cx++) {
        if (cx < 1 || cx > w - 2) continue;
        const struct window *wd = wcache_get(&wc, im, cx, cy, j->eps);
        const int ki = (int)((yi - cy + 1) * 3 + (xi - cx + 1));
        const double i0 = wd->d[0][ki], i1 = wd->d[1][ki], i2 = wd->d[2][ki];
        const double c0 = wd->m00 * i0 + wd->m01 * i1 + wd->m02 * i2;
        const double c1 = wd->m01 * i0 + wd->m11 * i1 + wd->m12 * i2;
        const double c2 = wd->m02 * i0 + wd->m12 * i1 + wd->m22 * i2;
        /* the window's 3x3 pixels in the 5x5 stencil, from (s0 % 5,
         * s0 / 5) */
        const int s0 = (int)((cy - yi + 1) * 5 + (cx - xi + 1));
        for (int k = 0; k < 9; k++) {
          double t = c0 * wd->d[0][k] + c1 * wd->d[1][k] + c2 * wd->d[2][k];
          sl[s0 + k / 3 * 5 + k % 3] += (k == ki ? 1.0 : 0.0) - (1 + t) / 9;
        }
        touched |= 0x1CE7u << s0; /* bits 0-2, 5-7, 10-12 */
      }
    }
    /* Emit the row in column order; known foreground neighbours go to the
     * right-hand side, summed in the same (column) order as R.dot(is_fg). */
    cursors_at(band, &cu, xi, yi);
    const size_t row = j->perm ? j->perm[i] : i;
    const size_t o0 = j->a->ptr[row];
    size_t o = o0;
    double fg = 0.0;
    for (int r = 0; r < 5; r++) {
      long yj = yi + r - 2;
      if (yj < 0 || yj >= h) continue;
      const uint8_t *trow = j->tri + (size_t)yj * (size_t)w;
      size_t k = cu.k[r];
      for (int dx = -2; dx <= 2; dx++) {
        long xj = xi + dx;
        if (xj < 0 || xj >= w) continue;
        int s = r * 5 + dx + 2;
        uint8_t t = trow[xj];
        if (t == CUTOUT_TRI_UNKNOWN) {
          while (band->x[k] < (uint32_t)xj) k++;
          if (touched >> s & 1) {
            j->a->col[o] = j->perm ? j->perm[k] : (uint32_t)k;
            j->a->val[o] = sl[s];
            o++;
          }
        } else if (t == CUTOUT_TRI_FG && (touched >> s & 1)) {
          fg += sl[s];
        }
      }
    }
    j->b[row] = -fg;
    if (j->perm) { /* the solver's order: sort the row by column */
      uint32_t *c = j->a->col + o0;
      double *v = j->a->val + o0;
      for (size_t e = 1; e < o - o0; e++)
        for (size_t f = e; f > 0 && c[f - 1] > c[f]; f--) {
          uint32_t tc = c[f];
          c[f] = c[f - 1];
          c[f - 1] = tc;
          double tv = v[f];
          v[f] = v[f - 1];
          v[f - 1] = tv;
        }
    }
  }
  wcache_free(&wc);
}

cutout_status cutout__matting_system(const cutout_image *rgb,
                                     const uint8_t *tri,
                                     const struct cutout__band *band,
                                     const uint32_t *perm, double epsilon,
                                     int nthreads, struct cutout__csr *a,
                                     double *b, char *err)
{
  memset(a, 0, sizeof *a);
  if (!rgb || rgb->channels < 3 || rgb->width != band->width ||
      rgb->height != band->height)
    return cutout__err(err, CUTOUT_EINVAL, "matting: bad system arguments");
  const size_t n = band->n;
  a->n = n;
  a->ptr = calloc(n + 1, sizeof *a->ptr);
  if (!a->ptr) goto oom;
  struct system_job j;
  j.rgb = rgb;
  j.tri = tri;
  j.band = band;
  j.perm = perm;
  j.eps = epsilon;
  j.a = a;
  j.b = b;
  atomic_init(&j.failed, 0);
  cutout__parallel_for(nthreads, n, MIN_BAND_PER_THREAD, system_count, &j);
  for (size_t i = 0; i < n; i++) a->ptr[i + 1] += a->ptr[i];
  size_t nnz = a->ptr[n];
  /* huge pages: 12 bytes x 25 entries a row is most of the solver's
   * fresh memory, and 4 KiB faults cost more than filling it */
  a->col = cutout__big_alloc((nnz ? nnz : 1) * sizeof *a->col);
  a->val = cutout__big_alloc((nnz ? nnz : 1) * sizeof *a->val);
  if (!a->col || !a->val) goto oom;
  cutout__parallel_for(nthreads, n, MIN_BAND_PER_THREAD, system_fill, &j);
  if (atomic_load(&j.failed)) goto oom;
  return CUTOUT_OK;
oom:
  cutout__csr_free(a);
  return cutout__err(err, CUTOUT_ENOMEM, "matting: out of memory (Laplacian)");
}

/* ------------------------------------------------------- the whole thing */

struct cutout__matting_params cutout__matting_default_params(void)
{
  struct cutout__matting_params p;
  memset(&p, 0, sizeof p);
  p.fg_thr = 240;
  p.bg_thr = 10;
  p.erode = 10;
  p.nthreads = 1;
  p.pcg = cutout__pcg_default_params();
  p.pcg.precond = CUTOUT_PRECOND_CHOL;
  return p;
}

static int canceled(atomic_int *c) { return c && atomic_load(c); }

/* Known pixels keep the trimap's 0 / 1; unknown ones get clip(x, 0, 1).
 * rembg's uint8 is trunc(alpha * 255) of the float64 value; the foreground
 * estimator gets alpha.astype(float32). */
struct alpha_job {
  const uint8_t *tri;
  const struct cutout__band *band;
  const uint32_t *perm;
  const double *x;
  float *af;
  cutout_image *out;
};

static void alpha_rows(void *arg, size_t begin, size_t end)
{
  struct alpha_job *j = arg;
  const uint32_t w = j->band->width;
  for (size_t y = begin; y < end; y++) {
    const uint8_t *t = j->tri + y * w;
    float *af = j->af + y * w;
    uint8_t *o = j->out->pixels + y * j->out->stride;
    size_t k = j->band->row_ptr[y];
    for (uint32_t x = 0; x < w; x++) {
      double a;
      if (t[x] == CUTOUT_TRI_UNKNOWN) {
        a = j->x[j->perm[k++]];
        a = a < 0.0 ? 0.0 : a > 1.0 ? 1.0 : a; /* np.clip; NaN never here */
      } else {
        a = t[x] == CUTOUT_TRI_FG ? 1.0 : 0.0;
      }
      af[x] = (float)a;
      o[4 * x + 3] = (uint8_t)(a * 255.0);
    }
  }
}

cutout_status cutout__alpha_matting(const cutout_image *img,
                                    const cutout_image *mask,
                                    const struct cutout__matting_params *p,
                                    cutout_image **out,
                                    struct cutout__matting_info *info,
                                    char *warn, char *err)
{
  struct cutout__matting_info dummy;
  if (!info) info = &dummy;
  memset(info, 0, sizeof *info);
  if (warn) warn[0] = 0;
  *out = NULL;
  cutout_status st = cutout__image_check(img, "alpha_matting", "image", err);
  if (st) return st;
  if ((st = cutout__image_check(mask, "alpha_matting", "mask", err)))
    return st;
  if (mask->channels != 1 || mask->width != img->width ||
      mask->height != img->height)
    return cutout__err(err, CUTOUT_EINVAL,
                       "alpha_matting: the mask must be L, image-sized");
  if (img->channels < 3) {
    /* rembg hands a 2-D grey array to pymatting, which raises ValueError
     * ("not enough values to unpack"), and falls back. */
    cutout__err(warn, CUTOUT_OK, "alpha matting needs a colour image; "
                "made the plain cutout (as rembg does for grey images)");
    return CUTOUT_OK;
  }
  const uint32_t w = img->width, h = img->height;
  const size_t npx = (size_t)w * h;
  size_t max_unknown = p->max_unknown ? p->max_unknown : DEFAULT_MAX_UNKNOWN;
  uint8_t *tri = NULL;
  double *b = NULL, *x = NULL;
  float *af = NULL;
  uint32_t *perm = NULL;
  struct cutout__band band;
  struct cutout__csr a;
  struct cutout__pcg_layout layout;
  cutout_image *res = NULL;
  memset(&band, 0, sizeof band);
  memset(&a, 0, sizeof a);
  memset(&layout, 0, sizeof layout);

  double t0 = cutout__now();
  tri = malloc(npx);
  if (!tri) {
    st = cutout__err(err, CUTOUT_ENOMEM, "matting: out of memory (trimap)");
    goto done;
  }
  if ((st = cutout__trimap(mask, p->fg_thr, p->bg_thr, p->erode, p->nthreads,
                           tri, err)))
    goto done;
  /* pymatting's trimap_split: background checked first. */
  int has_fg = 0, has_bg = 0;
  for (size_t i = 0; i < npx && !(has_fg && has_bg); i++) {
    has_fg |= tri[i] == CUTOUT_TRI_FG;
    has_bg |= tri[i] == CUTOUT_TRI_BG;
  }
  if (!has_bg || !has_fg) {
    cutout__err(warn, CUTOUT_OK,
                "alpha matting: the trimap has no %s pixels (mask %s %d after "
                "erosion %d); made the plain cutout",
                !has_bg ? "background" : "foreground", !has_bg ? "<" : ">",
                !has_bg ? p->bg_thr : p->fg_thr, p->erode);
    goto done;
  }
  if ((st = cutout__band_build(tri, w, h, &band, err))) goto done;
  info->unknown = band.n;
  info->t_trimap = cutout__now() - t0;
  if (band.n == 0) {
    /* pymatting's cg() on an empty system never meets its own stopping
     * rule (0 < 0) and raises after maxiter. */
    cutout__err(warn, CUTOUT_OK, "alpha matting: the trimap has no unknown "
                "pixels, so the solver cannot converge (as in pymatting); "
                "made the plain cutout");
    goto done;
  }
  if (band.n > max_unknown) {
    cutout__err(warn, CUTOUT_OK, "alpha matting: %zu unknown pixels exceed "
                "the limit of %zu (about %zu MB of solver memory); made the "
                "plain cutout", band.n, max_unknown,
                band.n * 400 / 1000000);
    goto done;
  }
  if (canceled(p->cancel)) {
    st = cutout__err(err, CUTOUT_ECANCELED, "canceled");
    goto done;
  }

  t0 = cutout__now();
  b = malloc(band.n * sizeof *b);
  x = calloc(band.n, sizeof *x);
  perm = malloc(band.n * sizeof *perm);
  if (!b || !x || !perm) {
    st = cutout__err(err, CUTOUT_ENOMEM, "matting: out of memory");
    goto done;
  }
  struct cutout__pcg_params pp = p->pcg;
  pp.nthreads = p->nthreads;
  pp.cancel = p->cancel;
  int solved = 0;
  if (pp.precond == CUTOUT_PRECOND_CHOL) {
    /* The direct solver works on the raster order and orders the band
     * itself. */
    if ((st = cutout__matting_system(img, tri, &band, NULL, 1e-7,
                                     p->nthreads, &a, b, err)))
      goto done;
    info->nnz = a.ptr[a.n];
    info->t_system = cutout__now() - t0;
    size_t max_bytes =
        p->max_direct_bytes ? p->max_direct_bytes : DEFAULT_MAX_DIRECT_BYTES;
    if ((st = cutout__chol_pcg(&band, &a, b, x, &pp, max_bytes, &info->pcg,
                               err)))
      goto done;
    if (info->pcg.precond == CUTOUT_PRECOND_CHOL) {
      for (size_t k = 0; k < band.n; k++) perm[k] = (uint32_t)k;
      solved = 1;
    } else {
      /* too large for the direct solver: IC(0)-PCG on the strip order */
      cutout__csr_free(&a);
      pp.precond = CUTOUT_PRECOND_IC0;
      t0 = cutout__now();
    }
  }
  if (!solved) {
    size_t strips = p->strips > 0 ? (size_t)p->strips : DEFAULT_STRIPS;
    if (band.n < MIN_UNKNOWN_FOR_STRIPS) strips = 1; /* one thread anyway */
    if ((st = cutout__matting_order(&band, strips, perm, &layout, err)))
      goto done;
    if ((st = cutout__matting_system(img, tri, &band, perm, 1e-7,
                                     p->nthreads, &a, b, err)))
      goto done;
    info->nnz = a.ptr[a.n];
    info->t_system += cutout__now() - t0;
    pp.layout = &layout;
    if ((st = cutout__pcg(&a, b, x, &pp, &info->pcg, err))) goto done;
  }
  cutout__csr_free(&a);
  CUTOUT_FREE(b);
  if (!info->pcg.converged) {
    cutout__err(warn, CUTOUT_OK, "alpha matting: the solver did not converge "
                "(%d iterations, residual %.3g; pymatting raises here); made "
                "the plain cutout", info->pcg.iterations,
                info->pcg.rel_residual);
    goto done;
  }

  t0 = cutout__now();
  af = malloc(npx * sizeof *af);
  if (!af || (st = cutout_image_new(w, h, 4, &res))) {
    st = cutout__err(err, CUTOUT_ENOMEM, "matting: out of memory");
    goto done;
  }
  struct alpha_job aj = {tri, &band, perm, x, af, res};
  cutout__parallel_for(p->nthreads, h, MIN_ROWS_PER_THREAD, alpha_rows, &aj);
  CUTOUT_FREE(tri);
  CUTOUT_FREE(x);
  CUTOUT_FREE(perm);
  cutout__band_free(&band);
  if ((st = cutout__foreground_ml(img, af, p->nthreads, p->cancel, res, err)))
    goto done;
  info->t_foreground = cutout__now() - t0;
  *out = res;
  res = NULL;

done:
  free(tri);
  free(b);
  free(x);
  free(af);
  free(perm);
  cutout__band_free(&band);
  cutout__csr_free(&a);
  cutout__pcg_layout_free(&layout);
  cutout_image_free(res);
  return st;
}
