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
 * yet.  To use several cores without changing a single value, rows are
 * dealt round-robin to the threads (a virtual row is (sweep, y)), and a
 * thread starts a chunk of columns only when the previous virtual row has
 * finished one column past that chunk: every read then sees exactly what
 * the sequential sweep would (the row pipeline of wavefront Gauss-Seidel).
 * Within a thread, two consecutive rows are interleaved one column apart,
 * which is also exact and doubles the instruction-level parallelism of
 * this latency-bound loop.
 * Memory: F and B interleaved as float32 (24 bytes a pixel) at the current
 * and the previous level, the float32 alpha, and the input; the input and
 * the full-size alpha are read in place, never copied per level.
 */
#include "matting.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define SMALL_SIZE 32
#define N_SMALL 10
#define N_BIG 2
#define CHUNK 128                 /* columns per pipeline step */
#define MIN_PIXELS_PIPELINE 65536 /* smaller levels run on one thread */

/* One pyramid level. */
struct level {
  uint32_t w, h;
  const float *alpha;     /* w*h, the nearest-resized input alpha */
  const uint32_t *xs, *ys;/* nearest source column / row of the input */
  float *fb;              /* w*h*6: F r,g,b then B r,g,b */
};

struct fg_job {
  const cutout_image *img;
  const float *lut; /* float32(v / 255.0) */
  const struct level *lv;
  int n_iter;
  atomic_llong *prog; /* per thread: virtual row * (w + 1) + columns done */
  atomic_int *cancel;
  atomic_int abort;
};

/* float32 regularization and gradient_weight, as numba receives them */
static const float REG = 1e-5f;
static const float GW = 1.0f;

/* Python's max(0.0, min(1.0, v)): min(a, b) is b if b < a else a, max(a,
 * b) is b if b > a else a.  SSE2's minpd/maxpd compute exactly that (NaN
 * and signed zeros included) without the branches gcc emits for the
 * ternaries, which mispredict wherever colours saturate. */
#if !defined(__SSE2__)
static inline double clamp01(double v)
{
  v = v < 1.0 ? v : 1.0;
  return v > 0.0 ? v : 0.0;
}
#endif

/*
 * The update of pixel x of a row: src its input colour, arow/aup/adn the
 * alpha rows (this, above, below; clamped), frow/fup/fdn the F,B rows, xl
 * and xr the clamped left and right columns.  Every float32 and float64
 * operation is numba's, in its order (see the file comment).
 */
#if defined(__SSE2__)
/* SSE2: the three colour channels in the lanes of one vector (F) and
 * another (B); lanes compute exactly what the scalar code does.  The
 * fourth lane holds a neighbour's value and is never stored.  F,B rows
 * carry padding so the unaligned 4-float loads stay inside the buffer. */
static inline __attribute__((always_inline)) void
update_pixel(const float *restrict lut, const uint8_t *restrict src,
             const float *arow, const float *aup, const float *adn,
             float *frow, const float *fup, const float *fdn, size_t x,
             size_t xl, size_t xr)
{
  const float a0 = arow[x];
  const double a1 = 1.0 - (double)a0;
  float a00 = a0 * a0;
  const double a01 = (double)a0 * a1;
  double a11 = a1 * a1;
  const __m128 im = _mm_setr_ps(lut[src[0]], lut[src[1]], lut[src[2]], 0.0f);
  __m128 f = _mm_mul_ps(_mm_set1_ps(a0), im);
  const __m128d va1 = _mm_set1_pd(a1);
  __m128 g = _mm_movelh_ps(
      _mm_cvtpd_ps(_mm_mul_pd(va1, _mm_cvtps_pd(im))),
      _mm_cvtpd_ps(_mm_mul_pd(va1, _mm_cvtps_pd(_mm_movehl_ps(im, im)))));
#define NEIGHBOUR(A, N)                                                    \
  do {                                                                     \
    const float gradient_ = fabsf(a0 - (A));                               \
    const float da_ = REG + GW * gradient_;                                \
    const float *n_ = (N);                                                 \
    a00 += da_;                                                            \
    a11 += (double)da_;                                                    \
    const __m128 vda_ = _mm_set1_ps(da_);                                  \
    f = _mm_add_ps(f, _mm_mul_ps(vda_, _mm_loadu_ps(n_)));                 \
    g = _mm_add_ps(g, _mm_mul_ps(vda_, _mm_loadu_ps(n_ + 3)));             \
  } while (0)
  NEIGHBOUR(arow[xl], frow + 6 * xl); /* left, right, up, down */
  NEIGHBOUR(arow[xr], frow + 6 * xr);
  NEIGHBOUR(aup[x], fup + 6 * x);
  NEIGHBOUR(adn[x], fdn + 6 * x);
#undef NEIGHBOUR
  const double det = (double)a00 * a11 - a01 * a01;
  const double inv_det = 1.0 / det;
  const __m128d b00 = _mm_set1_pd(inv_det * a11);
  const __m128d b01 = _mm_set1_pd(inv_det * -a01);
  const __m128d b11 = _mm_set1_pd(inv_det * (double)a00);
  const __m128d one = _mm_set1_pd(1.0), zero = _mm_setzero_pd();
  const __m128d flo = _mm_cvtps_pd(f), fhi = _mm_cvtps_pd(_mm_movehl_ps(f, f));
  const __m128d glo = _mm_cvtps_pd(g), ghi = _mm_cvtps_pd(_mm_movehl_ps(g, g));
#define CLAMP01(v) _mm_max_pd(_mm_min_pd((v), one), zero)
  const __m128d Flo =
      CLAMP01(_mm_add_pd(_mm_mul_pd(b00, flo), _mm_mul_pd(b01, glo)));
  const __m128d Fhi =
      CLAMP01(_mm_add_pd(_mm_mul_pd(b00, fhi), _mm_mul_pd(b01, ghi)));
  const __m128d Blo =
      CLAMP01(_mm_add_pd(_mm_mul_pd(b01, flo), _mm_mul_pd(b11, glo)));
  const __m128d Bhi =
      CLAMP01(_mm_add_pd(_mm_mul_pd(b01, fhi), _mm_mul_pd(b11, ghi)));
#undef CLAMP01
  const __m128 F = _mm_movelh_ps(_mm_cvtpd_ps(Flo), _mm_cvtpd_ps(Fhi));
  const __m128 B = _mm_movelh_ps(_mm_cvtpd_ps(Blo), _mm_cvtpd_ps(Bhi));
  float *o = frow + 6 * x;
  /* o[3] briefly holds F's spare lane: nobody reads this pixel now */
  _mm_storeu_ps(o, F);
  _mm_store_ss(o + 3, B);
  _mm_storel_pi((__m64 *)(void *)(o + 4),
                _mm_shuffle_ps(B, B, _MM_SHUFFLE(3, 3, 2, 1)));
}
#else
/* One neighbour's terms, in pymatting's order of operations. */
#define NEIGHBOUR(A, N)                                                    \
  do {                                                                     \
    const float gradient_ = fabsf(a0 - (A));                               \
    const float da_ = REG + GW * gradient_;                                \
    const float *n_ = (N);                                                 \
    a00 += da_;                                                            \
    a11 += (double)da_;                                                    \
    f0 += da_ * n_[0];                                                     \
    f1 += da_ * n_[1];                                                     \
    f2 += da_ * n_[2];                                                     \
    g0 += da_ * n_[3];                                                     \
    g1 += da_ * n_[4];                                                     \
    g2 += da_ * n_[5];                                                     \
  } while (0)

static inline void update_pixel(const float *restrict lut,
                                const uint8_t *restrict src,
                                const float *arow, const float *aup,
                                const float *adn, float *frow,
                                const float *fup, const float *fdn, size_t x,
                                size_t xl, size_t xr)
{
  const float a0 = arow[x];
  const double a1 = 1.0 - (double)a0;
  float a00 = a0 * a0;
  const double a01 = (double)a0 * a1;
  double a11 = a1 * a1;
  const float i0 = lut[src[0]], i1 = lut[src[1]], i2 = lut[src[2]];
  float f0 = a0 * i0, f1 = a0 * i1, f2 = a0 * i2;
  float g0 = (float)(a1 * (double)i0), g1 = (float)(a1 * (double)i1),
        g2 = (float)(a1 * (double)i2);
  NEIGHBOUR(arow[xl], frow + 6 * xl); /* left, right, up, down */
  NEIGHBOUR(arow[xr], frow + 6 * xr);
  NEIGHBOUR(aup[x], fup + 6 * x);
  NEIGHBOUR(adn[x], fdn + 6 * x);
  const double det = (double)a00 * a11 - a01 * a01;
  const double inv_det = 1.0 / det;
  const double b00 = inv_det * a11;
  const double b01 = inv_det * -a01;
  const double b11 = inv_det * (double)a00;
  float *o = frow + 6 * x;
  o[0] = (float)clamp01(b00 * (double)f0 + b01 * (double)g0);
  o[1] = (float)clamp01(b00 * (double)f1 + b01 * (double)g1);
  o[2] = (float)clamp01(b00 * (double)f2 + b01 * (double)g2);
  o[3] = (float)clamp01(b01 * (double)f0 + b11 * (double)g0);
  o[4] = (float)clamp01(b01 * (double)f1 + b11 * (double)g1);
  o[5] = (float)clamp01(b01 * (double)f2 + b11 * (double)g2);
}
#undef NEIGHBOUR
#endif

/* The rows a pixel update reads and writes. */
struct rowset {
  const float *arow, *aup, *adn;
  float *frow;
  const float *fup, *fdn;
  const uint8_t *srow;
};

static inline void rowset_at(const struct fg_job *j, uint32_t y,
                             struct rowset *r)
{
  const struct level *lv = j->lv;
  const size_t w = lv->w, h = lv->h;
  const size_t yu = y > 0 ? y - 1 : 0, yd = y + 1 < h ? y + 1 : h - 1;
  r->arow = lv->alpha + y * w;
  r->aup = lv->alpha + yu * w;
  r->adn = lv->alpha + yd * w;
  r->frow = lv->fb + y * w * 6;
  r->fup = lv->fb + yu * w * 6;
  r->fdn = lv->fb + yd * w * 6;
  r->srow = j->img->pixels + (size_t)lv->ys[y] * j->img->stride;
}

static inline __attribute__((always_inline)) void
update_at(const struct fg_job *j, const struct rowset *r, size_t x)
{
  const size_t w = j->lv->w;
  const size_t xl = x > 0 ? x - 1 : 0, xr = x + 1 < w ? x + 1 : w - 1;
  update_pixel(j->lut, r->srow + (size_t)j->lv->xs[x] * j->img->channels,
               r->arow, r->aup, r->adn, r->frow, r->fup, r->fdn, x, xl, xr);
}

/*
 * Steps [k0, k1) of a group of one or two consecutive virtual rows (ya
 * first, yb second, two < 0: none).  At step k the first row updates
 * column k and the second column k - 1: the second row's pixel then reads
 * the first row's column k - 1, already updated, and the first row reads
 * the second row's column k, not yet updated, exactly as in the sequential
 * sweep.  The two updates of a step are independent, so the CPU overlaps
 * their long dependency chains.  Steps run from 0 to w (w + 1 steps).
 */
static void update_group(const struct fg_job *j, uint32_t ya, long yb,
                         uint32_t k0, uint32_t k1)
{
  const uint32_t w = j->lv->w;
  struct rowset ra, rb;
  rowset_at(j, ya, &ra);
  if (yb < 0) {
    for (uint32_t k = k0; k < k1 && k < w; k++) update_at(j, &ra, k);
    return;
  }
  rowset_at(j, (uint32_t)yb, &rb);
  uint32_t k = k0;
  if (k == 0 && k < k1) update_at(j, &ra, k++);
  const uint32_t both_end = k1 < w ? k1 : w;
  for (; k < both_end; k++) {
    update_at(j, &ra, k);
    update_at(j, &rb, k - 1);
  }
  if (k == w && k < k1) update_at(j, &rb, k - 1);
}

/* Sweeps of one level by one member of the team (see DESIGN): virtual
 * rows v = sweep * h + y, in groups of two; group g goes to member
 * g % nt.  A member starts steps [k0, k1) of a group when the previous
 * group's last row is one column past the columns its first row will
 * touch. */
static void sweep_member(void *arg, int tid, int nt)
{
  struct fg_job *j = arg;
  const struct level *lv = j->lv;
  const uint32_t w = lv->w, h = lv->h;
  const long long rows = (long long)j->n_iter * h;
  const long long groups = (rows + 1) / 2;
  const long long stride = (long long)w + 1;
  for (long long g = tid; g < groups; g += nt) {
    const long long v = 2 * g;
    const uint32_t ya = (uint32_t)(v % h);
    const long yb = v + 1 < rows ? (long)((v + 1) % h) : -1;
    if (j->cancel && atomic_load_explicit(j->cancel, memory_order_relaxed))
      atomic_store(&j->abort, 1);
    if (atomic_load_explicit(&j->abort, memory_order_relaxed)) return;
    if (nt == 1) {
      update_group(j, ya, yb, 0, w + 1);
      continue;
    }
    for (uint32_t k0 = 0; k0 <= w; k0 += CHUNK) {
      const uint32_t k1 = w + 1 - k0 > CHUNK ? k0 + CHUNK : w + 1;
      if (g > 0) {
        const uint32_t cols = k1 < w ? k1 : w; /* first row: [0, cols) */
        const long long need = (g - 1) * stride + (cols < w ? cols + 1 : w);
        const atomic_llong *p = &j->prog[(g - 1) % nt];
        unsigned spins = 0;
        while (atomic_load_explicit(p, memory_order_acquire) < need) {
          if (atomic_load_explicit(&j->abort, memory_order_relaxed)) return;
          cutout__team_pause(&spins);
        }
      }
      update_group(j, ya, yb, k0, k1);
      /* columns done by the group's last row */
      const long long done = yb < 0 ? (k1 < w ? k1 : w) : (long long)k1 - 1;
      atomic_store_explicit(&j->prog[tid], g * stride + done,
                            memory_order_release);
    }
  }
}

/* Nearest-neighbour source indices, pymatting's x_dst * w_src // w_dst. */
static void nearest_map(uint32_t *map, uint32_t n_dst, uint32_t n_src)
{
  for (uint32_t i = 0; i < n_dst; i++) {
    uint64_t s = (uint64_t)i * n_src / n_dst;
    map[i] = (uint32_t)(s < n_src ? s : n_src - 1);
  }
}

struct fg_out_job {
  const float *fb;
  cutout_image *out;
};

static void output_rows(void *arg, size_t begin, size_t end)
{
  struct fg_out_job *j = arg;
  const uint32_t w = j->out->width;
  for (size_t y = begin; y < end; y++) {
    const float *f = j->fb + y * w * 6;
    uint8_t *o = j->out->pixels + y * j->out->stride;
    for (uint32_t x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) {
        /* np.clip(F * 255, 0, 255).astype(np.uint8), F in float64 after
         * stacking with the float64 alpha */
        double v = (double)f[x * 6 + c] * 255;
        v = v < 0 ? 0 : v > 255 ? 255 : v;
        o[4 * x + c] = (uint8_t)v;
      }
  }
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
  float *prev = malloc(6 * sizeof *prev), *cur = NULL, *alev = NULL;
  uint32_t *xs = NULL, *ys = NULL;
  uint32_t wp = 1, hp = 1;
  atomic_llong *prog = NULL;
  int nt = nthreads > 1 ? nthreads : 1;
  if (!prev) goto oom;
  for (int c = 0; c < 3; c++) {
    prev[c] = fmean[c];
    prev[3 + c] = bmean[c];
  }
  xs = malloc((size_t)w0 * sizeof *xs);
  ys = malloc((size_t)h0 * sizeof *ys);
  prog = malloc((size_t)(nt > 64 ? 64 : nt) * sizeof *prog);
  if (!xs || !ys || !prog) goto oom;

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
      alev = malloc(npx * sizeof *alev);
      if (!alev) goto oom;
      for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
          alev[(size_t)y * w + x] = alpha[(size_t)ys[y] * w0 + xs[x]];
      al = alev;
    }
    /* +4: the SIMD kernel's 4-float loads of a row's last B */
    cur = malloc((npx * 6 + 4) * sizeof *cur);
    if (!cur) goto oom;
    memset(cur + npx * 6, 0, 4 * sizeof *cur);
    {
      /* F and B of the previous level, nearest-resized */
      uint32_t *px = malloc((size_t)w * sizeof *px);
      if (!px) goto oom;
      nearest_map(px, w, wp);
      for (uint32_t y = 0; y < h; y++) {
        uint64_t sy = (uint64_t)y * hp / h;
        const float *srow = prev + (size_t)(sy < hp ? sy : hp - 1) * wp * 6;
        float *drow = cur + (size_t)y * w * 6;
        for (uint32_t x = 0; x < w; x++)
          memcpy(drow + (size_t)x * 6, srow + (size_t)px[x] * 6,
                 6 * sizeof *drow);
      }
      free(px);
    }
    CUTOUT_FREE(prev);

    struct level lv = {w, h, al, xs, ys, cur};
    struct fg_job j;
    j.img = rgb;
    j.lut = lut;
    j.lv = &lv;
    j.n_iter = (w <= SMALL_SIZE && h <= SMALL_SIZE) ? N_SMALL : N_BIG;
    j.prog = prog;
    j.cancel = cancel;
    atomic_init(&j.abort, 0);
    int team = npx >= MIN_PIXELS_PIPELINE && h >= 2 ? nt : 1;
    if (team > 64) team = 64;
    for (int t = 0; t < team; t++) atomic_init(&prog[t], -1);
    cutout__team_run(team, sweep_member, &j);
    if (atomic_load(&j.abort) || (cancel && atomic_load(cancel))) {
      st = cutout__err(err, CUTOUT_ECANCELED, "canceled");
      goto done;
    }
    CUTOUT_FREE(alev);
    prev = cur;
    cur = NULL;
    wp = w;
    hp = h;
  }

  struct fg_out_job oj = {prev, out};
  cutout__parallel_for(nthreads, h0, 32, output_rows, &oj);
  goto done;
oom:
  st = cutout__err(err, CUTOUT_ENOMEM, "foreground_ml: out of memory");
done:
  free(prev);
  free(cur);
  free(alev);
  free(xs);
  free(ys);
  free(prog);
  return st;
}
