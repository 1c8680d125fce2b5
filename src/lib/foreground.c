/*
 * foreground.c: pymatting's estimate_foreground_ml (Germer et al., "Fast
 * multi-level foreground estimation"), the colour half of rembg's alpha
 * matting and all of upstream rembg's decontamination (#843).
 *
 * For every pixel it solves the 2x2 system for (F, B) that explains the
 * image as alpha F + (1 - alpha) B while keeping F and B close to their 4
 * neighbours (weighted by the alpha gradient), from a 1x1 image up to full
 * size: nearest-neighbour pyramids, 10 sweeps per level up to 32x32, then
 * 2.  Results are reproduced to the bit: each expression has the type
 * numba gives it (float32 arrays and parameters, float64 where a Python
 * float literal enters), in the same order.
 *
 * DESIGN
 * The sweeps are Gauss-Seidel in raster order: each pixel reads its left
 * and upper neighbours already updated and its right and lower ones not
 * yet.  That order is kept exactly, and vectorised as a wavefront: rows
 * go in bands of LANES, and at step s lane k updates column s - 1 - k of
 * row k of its band, so every read sees what the sequential sweep would
 * (left: this lane's previous step; up: the lane above, previous step;
 * right and down: not updated yet).  F and B of a level are stored
 * skewed to match: plane c of band b holds pixel (x, 8b + k) at step
 * x + k + 1, lane k, so each step's loads and stores are whole vectors
 * (a vector of the lane below, one step on, is "down"; the lane above
 * comes from the previous result by a lane shift).  The arithmetic is
 * numba's, lane for lane (float32 and float64 vectors, no FMA), so the
 * output is identical to pymatting's.  The kernel is compiled for
 * AVX-512, AVX2 and baseline x86-64 and picked at run time.
 *
 * Bands are dealt round-robin to the threads (a virtual band is (sweep,
 * band)); band v runs step s once band v - 1 has finished step s + 7, when
 * the row above is updated there and the row below will not be touched
 * before band v - 1 has read it: the row pipeline of wavefront
 * Gauss-Seidel, again exact, so any number of threads gives the same
 * bytes.
 * Memory: F and B as float32 (24 bytes a pixel) at the current and the
 * previous level, the float32 alpha of the level, per-thread band inputs
 * (alpha rows and colours, skewed), and the input: the input and the
 * full-size alpha are read in place, never copied per level.
 */
#include "matting.h"
#include "bigalloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SMALL_SIZE 32
#define N_SMALL 10
#define N_BIG 2
#define LANES 8
#define CHUNK 64                  /* steps per pipeline check */
#define MIN_PIXELS_PIPELINE 65536 /* smaller levels run on one thread */
#define MAX_TEAM 64

typedef float v8f __attribute__((vector_size(32)));
typedef double v8d __attribute__((vector_size(64)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef int64_t v8l __attribute__((vector_size(64)));
typedef float v8fu __attribute__((vector_size(32), aligned(4)));

/* float32 regularization and gradient_weight, as numba receives them */
static const float REG = 1e-5f;
static const float GW = 1.0f;

/* One pyramid level.  F and B (channels F r,g,b, B r,g,b) in bands of
 * LANES rows; a band is `steps` steps of 6 vectors (one per channel), so a
 * step's data is three cache lines: pixel (x, y), channel c is at
 * fb[((y / LANES * steps + x + y % LANES + 1) * 6 + c) * LANES + y % LANES]. */
struct level {
  uint32_t w, h, nbands;
  size_t steps;           /* w + LANES + 2 */
  const float *alpha;     /* w*h, row-major, the nearest-resized alpha */
  const uint32_t *xs, *ys;/* nearest source column / row of the input */
  float *fb;
};

#define STEP (6 * LANES) /* floats a step */

static inline size_t fb_at(const struct level *lv, uint32_t x, uint32_t y,
                           int c)
{
  const size_t b = y / LANES, k = y % LANES;
  return ((b * lv->steps + x + k + 1) * 6 + (size_t)c) * LANES + k;
}

static float *fb_band(const struct level *lv, uint32_t b)
{
  return lv->fb + (size_t)b * lv->steps * STEP;
}

/* A band's inputs, skewed like F and B, 6 vectors a step: the alpha of
 * each lane's row and of the rows above and below (clamped), and its
 * colours.  Columns -1 and w of the alpha hold the clamped neighbours, as
 * pymatting's index clamp reads them; the other cells outside the image
 * stay zero. */
enum { IN_A, IN_AU, IN_AD, IN_R, IN_G, IN_B };

struct fg_job {
  const cutout_image *img;
  const float *lut; /* float32(v / 255.0) */
  const struct level *lv;
  int n_iter;
  atomic_llong *prog; /* per thread: virtual band * stride + steps done */
  atomic_int *cancel;
  atomic_int abort;
  int (*kernel)(const struct fg_job *j, uint32_t b, const float *in,
                uint32_t s0, uint32_t s1);
};

static void band_inputs(const struct fg_job *j, uint32_t b, float *in)
{
  const struct level *lv = j->lv;
  const uint32_t w = lv->w, h = lv->h;
  const size_t ch = j->img->channels;
  const float *ar[LANES], *au[LANES], *ad[LANES];
  const uint8_t *src[LANES];
  for (uint32_t k = 0; k < LANES; k++) {
    uint32_t y = b * LANES + k;
    if (y >= h) y = h - 1; /* a lane past the image: any sane values */
    const uint32_t yu = y > 0 ? y - 1 : 0, yd = y + 1 < h ? y + 1 : h - 1;
    ar[k] = lv->alpha + (size_t)y * w;
    au[k] = lv->alpha + (size_t)yu * w;
    ad[k] = lv->alpha + (size_t)yd * w;
    src[k] = j->img->pixels + (size_t)lv->ys[y] * j->img->stride;
    /* column x of lane k is at step x + k + 1; columns -1 and w */
    in[(size_t)k * STEP + IN_A * LANES + k] = ar[k][0];
    in[((size_t)w + k + 1) * STEP + IN_A * LANES + k] = ar[k][w - 1];
  }
  /* in tiles of columns, so the lanes' writes to a step stay in cache */
  for (uint32_t x0 = 0; x0 < w; x0 += 64) {
    const uint32_t x1 = w - x0 > 64 ? x0 + 64 : w;
    for (uint32_t k = 0; k < LANES; k++) {
      float *p = in + ((size_t)x0 + k + 1) * STEP + k;
      for (uint32_t x = x0; x < x1; x++, p += STEP) {
        const uint8_t *px = src[k] + (size_t)lv->xs[x] * ch;
        p[IN_A * LANES] = ar[k][x];
        p[IN_AU * LANES] = au[k][x];
        p[IN_AD * LANES] = ad[k][x];
        p[IN_R * LANES] = j->lut[px[0]];
        p[IN_G * LANES] = j->lut[px[1]];
        p[IN_B * LANES] = j->lut[px[2]];
      }
    }
  }
}

/* What a band's steps share. */
struct band_ctx {
  float *pl;             /* this band */
  const float *up, *dn;  /* the bands above and below (or this one) */
  size_t last_step;      /* steps - 1 */
  v8i up_self, dn_self;  /* lanes whose row is the image's first / last */
  uint32_t w;
};

/*
 * One step s of a band: lane k updates column s - 1 - k of its row.  The
 * arithmetic is pymatting's update lane for lane: float32 where numba has
 * float32, float64 where a Python float enters, multiplications and
 * additions apart (GCC does not contract vector expressions here: none of
 * the targets below enables FMA).  border: the step has a lane at column
 * 0 or w - 1, or the band a row whose neighbour above or below is itself;
 * those lanes read their own old value there, as pymatting's clamped
 * index does.  Inlined with border constant, the inner steps blend
 * nothing.
 */
static inline __attribute__((always_inline)) void
band_step(const struct band_ctx *bc, const float *in, uint32_t s, v8f *prev,
          const int border)
{
  const v8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
  const v8i up_idx = {15, 0, 1, 2, 3, 4, 5, 6}, dn_idx = {1, 2, 3, 4, 5, 6, 7, 8};
  const v8f reg = {REG, REG, REG, REG, REG, REG, REG, REG};
  const v8f gw = {GW, GW, GW, GW, GW, GW, GW, GW};
  const v8d one = {1, 1, 1, 1, 1, 1, 1, 1}, zero = {0};
  const v8i sign = {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX,
                    INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX};
  const size_t o = (size_t)s * STEP;
  const float *io = in + o;
  float *q = bc->pl + o;
  /* the previous band's lane 7 at lane 0's column (updated), the next
   * band's lane 0 at lane 7's column (not yet): whole vectors, the lane
   * picked by the shuffle; clamped steps only serve lanes off the image */
  const long s_up = (long)s - 1 + LANES, s_dn = (long)s - LANES + 1;
  const float *above =
      bc->up == bc->pl ? q
                       : bc->up + (size_t)(s_up < (long)bc->last_step
                                               ? s_up
                                               : (long)bc->last_step) *
                                      STEP;
  const float *below =
      bc->dn == bc->pl ? q : bc->dn + (size_t)(s_dn > 0 ? s_dn : 0) * STEP;
  const v8f a0 = *(const v8f *)(io + IN_A * LANES);
  const v8f an[4] = {*(const v8f *)(io + IN_A * LANES - STEP),
                     *(const v8f *)(io + IN_A * LANES + STEP),
                     *(const v8f *)(io + IN_AU * LANES),
                     *(const v8f *)(io + IN_AD * LANES)};
  v8i left_self = {0}, right_self = {0};
  if (border) {
    const v8i xk = (int32_t)(s - 1) - lane; /* each lane's column */
    left_self = xk == 0;
    right_self = xk == (int32_t)(bc->w - 1);
  }
  v8f nb[4][6];
#pragma GCC unroll 6
  for (int c = 0; c < 6; c++) {
    const v8f own = *(const v8f *)(q + c * LANES);
    const v8f right = *(const v8f *)(q + STEP + c * LANES);
    const v8f av = *(const v8f *)(above + c * LANES);
    const v8f bv = *(const v8f *)(below + c * LANES);
    /* up: the lane above, one step back (prev) shifted down a lane;
     * down: the lane below, one step on (right) shifted up a lane */
    v8f upv = __builtin_shuffle(prev[c], av, up_idx);
    v8f dnv = __builtin_shuffle(right, bv, dn_idx);
    v8f lf = prev[c], rt = right;
    if (border) {
      lf = (v8f)(((v8i)own & left_self) | ((v8i)lf & ~left_self));
      rt = (v8f)(((v8i)own & right_self) | ((v8i)rt & ~right_self));
      upv = (v8f)(((v8i)own & bc->up_self) | ((v8i)upv & ~bc->up_self));
      dnv = (v8f)(((v8i)own & bc->dn_self) | ((v8i)dnv & ~bc->dn_self));
    }
    nb[0][c] = lf;
    nb[1][c] = rt;
    nb[2][c] = upv;
    nb[3][c] = dnv;
  }
  const v8d a0d = __builtin_convertvector(a0, v8d);
  const v8d a1 = one - a0d;
  v8f a00 = a0 * a0;
  const v8d a01 = a0d * a1;
  v8d a11 = a1 * a1;
  v8f f[3], g[3];
#pragma GCC unroll 3
  for (int c = 0; c < 3; c++) {
    const v8f im = *(const v8f *)(io + (IN_R + c) * LANES);
    f[c] = a0 * im;
    g[c] = __builtin_convertvector(a1 * __builtin_convertvector(im, v8d), v8f);
  }
#pragma GCC unroll 4
  for (int n = 0; n < 4; n++) { /* left, right, up, down */
    const v8f gradient = (v8f)((v8i)(a0 - an[n]) & sign);
    const v8f da = reg + gw * gradient;
    a00 += da;
    a11 += __builtin_convertvector(da, v8d);
#pragma GCC unroll 3
    for (int c = 0; c < 3; c++) {
      f[c] += da * nb[n][c];
      g[c] += da * nb[n][3 + c];
    }
  }
  const v8d a00d = __builtin_convertvector(a00, v8d);
  const v8d det = a00d * a11 - a01 * a01;
  const v8d inv_det = one / det;
  const v8d b00 = inv_det * a11, b01 = inv_det * -a01, b11 = inv_det * a00d;
#pragma GCC unroll 3
  for (int c = 0; c < 3; c++) {
    const v8d fd = __builtin_convertvector(f[c], v8d);
    const v8d gd = __builtin_convertvector(g[c], v8d);
    v8d fv = b00 * fd + b01 * gd, bv = b01 * fd + b11 * gd;
    /* Python's max(0.0, min(1.0, v)) */
    v8l m = fv < one;
    fv = (v8d)(((v8l)fv & m) | ((v8l)one & ~m));
    fv = (v8d)((v8l)fv & (fv > zero));
    m = bv < one;
    bv = (v8d)(((v8l)bv & m) | ((v8l)one & ~m));
    bv = (v8d)((v8l)bv & (bv > zero));
    prev[c] = __builtin_convertvector(fv, v8f);
    prev[3 + c] = __builtin_convertvector(bv, v8f);
  }
#pragma GCC unroll 6
  for (int c = 0; c < 6; c++) *(v8f *)(q + c * LANES) = prev[c];
}

/* Steps [s0, s1) of band b (steps run from 1 to w + LANES - 1). */
static inline __attribute__((always_inline)) int
kernel_body(const struct fg_job *j, uint32_t b, const float *in,
            uint32_t s0, uint32_t s1)
{
  const struct level *lv = j->lv;
  const uint32_t w = lv->w, h = lv->h, y0 = b * LANES;
  const v8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
  struct band_ctx bc;
  bc.pl = fb_band(lv, b);
  bc.w = w;
  bc.last_step = lv->steps - 1;
  /* above lane 0: the previous band's lane 7; below lane 7: the next
   * band's lane 0.  The first and last bands have none: they read their
   * own band there, and the border blends put the row's own value in */
  bc.up = b > 0 ? fb_band(lv, b - 1) : bc.pl;
  const int32_t top = b == 0 ? -1 : 0;
  bc.up_self = (lane == 0) & top;
  bc.dn = b + 1 < lv->nbands ? fb_band(lv, b + 1) : bc.pl;
  const int dself = h - 1 - y0 < LANES ? (int)(h - 1 - y0) : -1;
  bc.dn_self = lane == dself;
  const int yborder = b == 0 || dself >= 0;
  v8f prev[6];
#pragma GCC unroll 6
  for (int c = 0; c < 6; c++)
    prev[c] = s0 > 1 ? *(const v8f *)(bc.pl + (size_t)(s0 - 1) * STEP +
                                      c * LANES)
                     : (v8f){0};
  /* columns 0 and w - 1 are on the steps 1 .. LANES and w .. w + LANES - 1 */
  uint32_t s = s0;
  if (!yborder) {
    const uint32_t mid0 = LANES + 1, mid1 = w;
    for (; s < s1 && s < mid0; s++) band_step(&bc, in, s, prev, 1);
    for (; s < s1 && s < mid1; s++) band_step(&bc, in, s, prev, 0);
  }
  for (; s < s1; s++) band_step(&bc, in, s, prev, 1);
  return 0;
}

static int kernel_generic(const struct fg_job *j, uint32_t b,
                          const float *in, uint32_t s0, uint32_t s1)
{
  return kernel_body(j, b, in, s0, s1);
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) static int
kernel_avx2(const struct fg_job *j, uint32_t b, const float *in,
            uint32_t s0, uint32_t s1)
{
  return kernel_body(j, b, in, s0, s1);
}

__attribute__((target("avx512f,avx512vl"))) static int
kernel_avx512(const struct fg_job *j, uint32_t b, const float *in,
              uint32_t s0, uint32_t s1)
{
  return kernel_body(j, b, in, s0, s1);
}
#endif

static int (*pick_kernel(void))(const struct fg_job *, uint32_t,
                                const float *, uint32_t, uint32_t)
{
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"))
    return kernel_avx512;
  if (__builtin_cpu_supports("avx2")) return kernel_avx2;
#endif
  return kernel_generic;
}

/* Sweeps of one level by one member of the team (see DESIGN): virtual
 * bands v = sweep * nbands + b; band v goes to member v % nt. */
static void sweep_member(void *arg, int tid, int nt)
{
  struct fg_job *j = arg;
  const struct level *lv = j->lv;
  const uint32_t w = lv->w;
  const uint32_t last = w + LANES - 1; /* steps 1 .. last */
  const long long bands = (long long)j->n_iter * lv->nbands;
  const long long stride = (long long)last + 1;
  const size_t nin = lv->steps * STEP;
  float *in = aligned_alloc(32, (nin * sizeof *in + 31) / 32 * 32);
  if (!in) {
    atomic_store(&j->abort, 2);
    return;
  }
  memset(in, 0, nin * sizeof *in);
  uint32_t have = UINT32_MAX; /* the band whose inputs are in `in` */
  for (long long v = tid; v < bands; v += nt) {
    const uint32_t b = (uint32_t)(v % lv->nbands);
    if (j->cancel && atomic_load_explicit(j->cancel, memory_order_relaxed))
      atomic_store(&j->abort, 1);
    if (atomic_load_explicit(&j->abort, memory_order_relaxed)) break;
    if (b != have) {
      band_inputs(j, b, in);
      have = b;
    }
    for (uint32_t s0 = 1; s0 <= last; s0 += CHUNK) {
      const uint32_t s1 = last + 1 - s0 > CHUNK ? s0 + CHUNK : last + 1;
      if (v > 0 && nt > 1) {
        /* band v - 1 done with step s1 - 1 + 7 (or finished) */
        const long long upto = (long long)s1 - 1 + LANES - 1;
        const long long need = (v - 1) * stride + (upto < last ? upto : last);
        const atomic_llong *p = &j->prog[(v - 1) % nt];
        unsigned spins = 0;
        while (atomic_load_explicit(p, memory_order_acquire) < need) {
          if (atomic_load_explicit(&j->abort, memory_order_relaxed)) goto out;
          cutout__team_pause(&spins);
        }
      }
      j->kernel(j, b, in, s0, s1);
      atomic_store_explicit(&j->prog[tid], v * stride + (s1 - 1),
                            memory_order_release);
    }
  }
out:
  free(in);
}

/* Nearest-neighbour source indices, pymatting's x_dst * w_src // w_dst. */
static void nearest_map(uint32_t *map, uint32_t n_dst, uint32_t n_src)
{
  for (uint32_t i = 0; i < n_dst; i++) {
    uint64_t s = (uint64_t)i * n_src / n_dst;
    map[i] = (uint32_t)(s < n_src ? s : n_src - 1);
  }
}

/* F and B of the previous level, nearest-resized into the current one. */
struct resize_job {
  const struct level *src, *dst;
  const uint32_t *px; /* source column of each destination column */
};

static void resize_bands(void *arg, size_t begin, size_t end)
{
  const struct resize_job *j = arg;
  const struct level *s = j->src, *d = j->dst;
  for (size_t b = begin; b < end; b++)
    for (uint32_t x0 = 0; x0 < d->w; x0 += 64) {
      const uint32_t x1 = d->w - x0 > 64 ? x0 + 64 : d->w;
      for (uint32_t k = 0; k < LANES && b * LANES + k < d->h; k++) {
        const uint32_t y = (uint32_t)b * LANES + k;
        uint64_t sy = (uint64_t)y * s->h / d->h;
        if (sy >= s->h) sy = s->h - 1;
        const float *srow = s->fb + fb_at(s, 0, (uint32_t)sy, 0);
        float *dp = d->fb + fb_at(d, x0, y, 0);
        for (uint32_t x = x0; x < x1; x++, dp += STEP) {
          const float *sp = srow + (size_t)j->px[x] * STEP;
          for (int c = 0; c < 6; c++) dp[c * LANES] = sp[c * LANES];
        }
      }
    }
}

struct fg_out_job {
  const struct level *lv;
  cutout_image *out;
};

static void output_bands(void *arg, size_t begin, size_t end)
{
  struct fg_out_job *j = arg;
  const struct level *lv = j->lv;
  const uint32_t w = j->out->width;
  for (size_t b = begin; b < end; b++)
    for (uint32_t x0 = 0; x0 < w; x0 += 64) {
      const uint32_t x1 = w - x0 > 64 ? x0 + 64 : w;
      for (uint32_t k = 0; k < LANES && b * LANES + k < lv->h; k++) {
        const uint32_t y = (uint32_t)b * LANES + k;
        uint8_t *o = j->out->pixels + (size_t)y * j->out->stride;
        const float *f = lv->fb + fb_at(lv, x0, y, 0);
        for (uint32_t x = x0; x < x1; x++, f += STEP)
          for (int c = 0; c < 3; c++) {
            /* np.clip(F * 255, 0, 255).astype(np.uint8), F in float64
             * after stacking with the float64 alpha */
            double v = (double)f[c * LANES] * 255;
            v = v < 0 ? 0 : v > 255 ? 255 : v;
            o[4 * x + c] = (uint8_t)v;
          }
      }
    }
}

/* F and B of a w x h level (huge pages: each level is written once).
 * The kernel reads, but never uses, the cells outside the image (the
 * skew's corners, lanes past the last row): they are zeroed, the rest is
 * left to the resize. */
static float *level_alloc(struct level *lv, uint32_t w, uint32_t h)
{
  lv->w = w;
  lv->h = h;
  lv->nbands = (h + LANES - 1) / LANES;
  lv->steps = (size_t)w + LANES + 2;
  const size_t band = lv->steps * STEP;
  lv->fb = cutout__big_alloc((size_t)lv->nbands * band * sizeof(float));
  if (!lv->fb) return NULL;
  for (uint32_t b = 0; b < lv->nbands; b++) {
    float *p = fb_band(lv, b);
    if ((b + 1) * LANES > h) {
      memset(p, 0, band * sizeof *p);
      continue;
    }
    /* column x of lane k is at step x + k + 1: steps 0 .. LANES hold
     * every cell left of the image, steps w + 1 .. on every one right */
    memset(p, 0, (LANES + 1) * STEP * sizeof *p);
    memset(p + ((size_t)w + 1) * STEP, 0,
           (band - ((size_t)w + 1) * STEP) * sizeof *p);
  }
  return lv->fb;
}

cutout_status cutout__foreground_ml(const cutout_image *rgb,
                                    const float *alpha, int nthreads,
                                    atomic_int *cancel, cutout_image *out,
                                    char *err)
{
  if (!rgb || rgb->channels < 3 || !alpha || !out || out->channels != 4 ||
      out->width != rgb->width || out->height != rgb->height)
    return cutout__err(err, CUTOUT_EINVAL, "foreground_ml: bad arguments");
  const uint32_t w0 = rgb->width, h0 = rgb->height;
  cutout_status st = CUTOUT_OK;
  float lut[256];
  for (int v = 0; v < 256; v++) lut[v] = (float)(v / 255.0);

  /* Mean colours of alpha > 0.9 and alpha < 0.1, summed in float32 in
   * raster order, as numba does. */
  float fmean[3] = {0, 0, 0}, bmean[3] = {0, 0, 0};
  size_t fcount = 0, bcount = 0;
  for (uint32_t y = 0; y < h0; y++) {
    const uint8_t *s = rgb->pixels + (size_t)y * rgb->stride;
    const float *a = alpha + (size_t)y * w0;
    for (uint32_t x = 0; x < w0; x++) {
      if ((double)a[x] > 0.9) {
        for (int c = 0; c < 3; c++) fmean[c] += lut[s[x * rgb->channels + c]];
        fcount++;
      }
      if ((double)a[x] < 0.1) {
        for (int c = 0; c < 3; c++) bmean[c] += lut[s[x * rgb->channels + c]];
        bcount++;
      }
    }
  }
  for (int c = 0; c < 3; c++) {
    fmean[c] = (float)((double)fmean[c] / ((double)fcount + 1e-5));
    bmean[c] = (float)((double)bmean[c] / ((double)bcount + 1e-5));
  }

  const uint32_t mx = w0 > h0 ? w0 : h0;
  const int n_levels = mx > 1 ? (int)ceil(log2((double)mx)) : 0;
  struct level prev, cur;
  memset(&prev, 0, sizeof prev);
  memset(&cur, 0, sizeof cur);
  float *alev = NULL;
  uint32_t *xs = NULL, *ys = NULL, *px = NULL;
  atomic_llong *prog = NULL;
  int nt = nthreads > 1 ? nthreads : 1;
  if (nt > MAX_TEAM) nt = MAX_TEAM;
  if (!level_alloc(&prev, 1, 1)) goto oom;
  for (int c = 0; c < 3; c++) {
    prev.fb[fb_at(&prev, 0, 0, c)] = fmean[c];
    prev.fb[fb_at(&prev, 0, 0, 3 + c)] = bmean[c];
  }
  xs = malloc((size_t)w0 * sizeof *xs);
  ys = malloc((size_t)h0 * sizeof *ys);
  px = malloc((size_t)w0 * sizeof *px);
  prog = malloc((size_t)nt * sizeof *prog);
  if (!xs || !ys || !px || !prog) goto oom;

  for (int lvl = 0; lvl <= n_levels; lvl++) {
    uint32_t w = w0, h = h0;
    if (n_levels > 0) {
      /* round(w0 ** (i / n)): Python's round, half to even */
      w = (uint32_t)nearbyint(pow((double)w0, (double)lvl / n_levels));
      h = (uint32_t)nearbyint(pow((double)h0, (double)lvl / n_levels));
    }
    size_t npx = (size_t)w * h;
    nearest_map(xs, w, w0);
    nearest_map(ys, h, h0);
    const float *al = alpha;
    if (w != w0 || h != h0) {
      alev = cutout__big_alloc(npx * sizeof *alev);
      if (!alev) goto oom;
      for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
          alev[(size_t)y * w + x] = alpha[(size_t)ys[y] * w0 + xs[x]];
      al = alev;
    }
    if (!level_alloc(&cur, w, h)) goto oom;
    cur.alpha = al;
    cur.xs = xs;
    cur.ys = ys;
    nearest_map(px, w, prev.w);
    struct resize_job rj = {&prev, &cur, px};
    cutout__parallel_for(nt, cur.nbands, 16, resize_bands, &rj);
    cutout__big_free(prev.fb);
    prev.fb = NULL;

    struct fg_job j;
    j.img = rgb;
    j.lut = lut;
    j.lv = &cur;
    j.n_iter = (w <= SMALL_SIZE && h <= SMALL_SIZE) ? N_SMALL : N_BIG;
    j.prog = prog;
    j.cancel = cancel;
    j.kernel = pick_kernel();
    atomic_init(&j.abort, 0);
    /* The pipeline needs bands that do not touch across the sweep
     * boundary: a few per thread. */
    int team = npx >= MIN_PIXELS_PIPELINE && cur.nbands >= 4 * (uint32_t)nt
                   ? nt
                   : 1;
    for (int t = 0; t < team; t++) atomic_init(&prog[t], -1);
    cutout__team_run(team, sweep_member, &j);
    if (atomic_load(&j.abort) == 2) goto oom;
    if (atomic_load(&j.abort) || (cancel && atomic_load(cancel))) {
      st = cutout__err(err, CUTOUT_ECANCELED, "canceled");
      goto done;
    }
    cutout__big_free(alev);
    alev = NULL;
    prev = cur;
    cur.fb = NULL;
  }

  struct fg_out_job oj = {&prev, out};
  cutout__parallel_for(nthreads, prev.nbands, 4, output_bands, &oj);
  goto done;
oom:
  st = cutout__err(err, CUTOUT_ENOMEM, "foreground_ml: out of memory");
done:
  cutout__big_free(prev.fb);
  cutout__big_free(cur.fb);
  cutout__big_free(alev);
  free(xs);
  free(ys);
  free(px);
  free(prog);
  return st;
}
