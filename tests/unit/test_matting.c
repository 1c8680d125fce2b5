/*
 * test_matting.c: alpha matting, decontamination and crop (matting.h).
 *
 * Oracles: tests/py/matting_ref.py restates the pymatting pieces rembg
 * calls (scipy's binary_erosion for the trimap; pymatting's Laplacian loop
 * in Python floats; estimate_foreground_ml with numba's float32/float64
 * typing); a dense Cholesky solve in C checks the PCG.  Cases are written
 * as raw files plus a manifest, and one Python run answers them all.
 *
 * The last test runs a 4000x3000 photo-sized image with a thin unknown
 * band in a child process and bounds its peak RSS (see memory_bound()).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "matting.h"
#include "testutil.h"

/* ------------------------------------------------------------ the oracle */

static const char *ORACLE =
    "import os, sys\n"
    "import numpy as np\n"
    "sys.path.insert(0, sys.argv[2])\n"
    "import matting_ref as mr\n"
    "def rd(p, dt, shape):\n"
    "    return np.fromfile(p, dtype=dt).reshape(shape)\n"
    "for line in open(sys.argv[1]):\n"
    "    f = line.split()\n"
    "    op = f[0]\n"
    "    w, h = int(f[1]), int(f[2])\n"
    "    if op == 'trimap':\n"
    "        fg, bg, e = int(f[3]), int(f[4]), int(f[5])\n"
    "        m = rd(f[6], np.uint8, (h, w))\n"
    "        mr.trimap(m, fg, bg, e).tofile(f[7])\n"
    "    elif op == 'system':\n"
    "        img = rd(f[3], np.uint8, (h, w, 3))\n"
    "        tri = rd(f[4], np.uint8, (h, w))\n"
    "        A, b, unk = mr.dense_system(img, tri)\n"
    "        A.astype(np.float64).tofile(f[5])\n"
    "        b.astype(np.float64).tofile(f[6])\n"
    "    elif op == 'fg':\n"
    "        img = rd(f[3], np.uint8, (h, w, 3))\n"
    "        al = rd(f[4], np.float32, (h, w))\n"
    "        mr.to_rgba(mr.foreground_ml(img, al), al.astype(np.float64))"
    "[:, :, :3].tofile(f[5])\n"
    "    elif op == 'dc':\n"
    "        img = rd(f[3], np.uint8, (h, w, 3))\n"
    "        m = rd(f[4], np.uint8, (h, w))\n"
    "        mr.decontaminate_cutout(img, m).tofile(f[5])\n"
    "    else:\n"
    "        sys.exit('bad op ' + op)\n";

static char tmp[512];
static FILE *manifest;

static void path_of(char *buf, size_t n, const char *name)
{
  snprintf(buf, n, "%s/%s", tmp, name);
}

static void put(const char *name, const void *data, size_t len)
{
  char p[600];
  path_of(p, sizeof p, name);
  assert_int_equal(tu_write_file(p, data, len), 0);
}

static void *get(const char *name, size_t len)
{
  char p[600];
  path_of(p, sizeof p, name);
  size_t got = 0;
  void *d = tu_read_file(p, &got);
  assert_non_null(d);
  assert_int_equal(got, len);
  return d;
}

static void oracle_begin(void)
{
  snprintf(tmp, sizeof tmp, "%s", tu_tmpdir());
  char p[600];
  path_of(p, sizeof p, "manifest");
  manifest = fopen(p, "w");
  assert_non_null(manifest);
}

static void oracle_run(void)
{
  char p[600], py[600];
  fclose(manifest);
  manifest = NULL;
  path_of(p, sizeof p, "manifest");
  snprintf(py, sizeof py, "%s/../py", tu_env("CUTOUT_TEST_DATA"));
  const char *args[] = {p, py, NULL};
  assert_int_equal(tu_python(ORACLE, args), 0);
}

/* ----------------------------------------------------------- test images */

static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
  rng_state = rng_state * 1664525u + 1013904223u;
  return rng_state >> 8;
}

/* A smooth colour field with noise, like a photo at small scale. */
static cutout_image *photo(uint32_t w, uint32_t h, int noise)
{
  cutout_image *im;
  assert_int_equal(cutout_image_new(w, h, 3, &im), CUTOUT_OK);
  for (uint32_t y = 0; y < h; y++)
    for (uint32_t x = 0; x < w; x++) {
      uint8_t *p = im->pixels + (size_t)y * im->stride + 3 * (size_t)x;
      int v[3] = {(int)(x * 255 / (w > 1 ? w - 1 : 1)),
                  (int)(y * 255 / (h > 1 ? h - 1 : 1)),
                  (int)((x * 3 + y * 5) % 256)};
      for (int c = 0; c < 3; c++) {
        int n = noise ? (int)(rnd() % (unsigned)(2 * noise + 1)) - noise : 0;
        int t = v[c] + n;
        p[c] = (uint8_t)(t < 0 ? 0 : t > 255 ? 255 : t);
      }
    }
  return im;
}

/* A soft disc: 255 inside radius r, 0 outside r + soft, a ramp between. */
static cutout_image *disc_mask(uint32_t w, uint32_t h, double cx, double cy,
                               double r, double soft)
{
  cutout_image *m;
  assert_int_equal(cutout_image_new(w, h, 1, &m), CUTOUT_OK);
  for (uint32_t y = 0; y < h; y++)
    for (uint32_t x = 0; x < w; x++) {
      double d = hypot(x - cx, y - cy);
      double a = d <= r ? 1.0 : d >= r + soft ? 0.0 : 1.0 - (d - r) / soft;
      m->pixels[(size_t)y * w + x] = (uint8_t)lround(a * 255);
    }
  return m;
}

/* ---------------------------------------------------------------- trimap */

static void test_trimap(void **state)
{
  (void)state;
  static const uint32_t sizes[][2] = {{1, 1}, {3, 2}, {7, 5}, {33, 17},
                                      {64, 48}};
  static const int thr[][2] = {{240, 10}, {128, 128}, {0, 255}, {200, 60}};
  static const int erode[] = {0, 1, 2, 3, 4, 5, 10, 25};
  char name[64], line[256];
  int ncase = 0;
  oracle_begin();
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
    for (size_t t = 0; t < sizeof thr / sizeof thr[0]; t++)
      for (size_t e = 0; e < sizeof erode / sizeof erode[0]; e++) {
        uint32_t w = sizes[s][0], h = sizes[s][1];
        uint8_t *m = malloc((size_t)w * h);
        /* blobs of saturated values with soft and noisy parts */
        for (uint32_t i = 0; i < w * h; i++) {
          uint32_t x = i % w, y = i / w;
          int v = ((x / 6 + y / 5) % 3 == 0) ? 255 : ((x / 4 + y / 7) % 2) ? 0
                                                      : (int)(rnd() % 256);
          m[i] = (uint8_t)v;
        }
        snprintf(name, sizeof name, "tm%d", ncase);
        put(name, m, (size_t)w * h);
        snprintf(line, sizeof line, "trimap %u %u %d %d %d %s/tm%d %s/tr%d\n",
                 w, h, thr[t][0], thr[t][1], erode[e], tmp, ncase, tmp,
                 ncase);
        fputs(line, manifest);
        free(m);
        ncase++;
      }
  oracle_run();
  ncase = 0;
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
    for (size_t t = 0; t < sizeof thr / sizeof thr[0]; t++)
      for (size_t e = 0; e < sizeof erode / sizeof erode[0]; e++) {
        uint32_t w = sizes[s][0], h = sizes[s][1];
        snprintf(name, sizeof name, "tm%d", ncase);
        uint8_t *m = get(name, (size_t)w * h);
        snprintf(name, sizeof name, "tr%d", ncase);
        uint8_t *want = get(name, (size_t)w * h);
        cutout_image mask = {w, h, 1, w, m};
        uint8_t *got = malloc((size_t)w * h);
        char err[CUTOUT_ERRMSG_MAX];
        for (int nt = 1; nt <= 2; nt++) {
          assert_int_equal(cutout__trimap(&mask, thr[t][0], thr[t][1],
                                          erode[e], nt, got, err),
                           CUTOUT_OK);
          if (memcmp(got, want, (size_t)w * h) != 0)
            fail_msg("trimap %ux%u fg %d bg %d erode %d differs from scipy",
                     w, h, thr[t][0], thr[t][1], erode[e]);
        }
        free(m);
        free(want);
        free(got);
        ncase++;
      }
}

/* ------------------------------------------------------------- Laplacian */

struct sys {
  uint8_t *tri;
  struct cutout__band band;
  struct cutout__csr a;
  double *b;
};

static void build(const cutout_image *img, const cutout_image *mask, int fg,
                  int bg, int erode, const uint32_t *perm, struct sys *s)
{
  char err[CUTOUT_ERRMSG_MAX];
  size_t n = (size_t)img->width * img->height;
  s->tri = malloc(n);
  assert_int_equal(cutout__trimap(mask, fg, bg, erode, 1, s->tri, err),
                   CUTOUT_OK);
  assert_int_equal(cutout__band_build(s->tri, img->width, img->height,
                                      &s->band, err),
                   CUTOUT_OK);
  s->b = malloc((s->band.n ? s->band.n : 1) * sizeof *s->b);
  assert_int_equal(cutout__matting_system(img, s->tri, &s->band, perm, 1e-7,
                                          2, &s->a, s->b, err),
                   CUTOUT_OK);
}

static void sys_free(struct sys *s)
{
  free(s->tri);
  free(s->b);
  cutout__band_free(&s->band);
  cutout__csr_free(&s->a);
}

static double *densify(const struct cutout__csr *a)
{
  double *d = calloc(a->n * a->n, sizeof *d);
  for (size_t i = 0; i < a->n; i++)
    for (size_t e = a->ptr[i]; e < a->ptr[i + 1]; e++) {
      if (e > a->ptr[i]) assert_true(a->col[e] > a->col[e - 1]);
      d[i * a->n + a->col[e]] = a->val[e];
    }
  return d;
}

static void test_laplacian_dense(void **state)
{
  (void)state;
  /* Three tiny images: unknowns at the border, in corners, next to
   * flat and noisy colour; the last has a flat region (near-singular
   * windows: eps = 1e-7 is what keeps them invertible). */
  static const uint32_t dims[][2] = {{12, 9}, {9, 14}, {16, 11}};
  cutout_image *img[3], *mask[3];
  oracle_begin();
  for (int k = 0; k < 3; k++) {
    uint32_t w = dims[k][0], h = dims[k][1];
    img[k] = photo(w, h, k == 2 ? 0 : 30);
    if (k == 2)
      for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w / 2; x++)
          memset(img[k]->pixels + (size_t)y * img[k]->stride + 3 * x, 77, 3);
    mask[k] = disc_mask(w, h, w * 0.4, h * 0.5, w * 0.25, w * 0.3);
    struct sys s;
    build(img[k], mask[k], 240, 10, 1, NULL, &s);
    char name[32], line[512];
    snprintf(name, sizeof name, "li%d", k);
    put(name, img[k]->pixels, (size_t)w * h * 3);
    snprintf(name, sizeof name, "lt%d", k);
    put(name, s.tri, (size_t)w * h);
    snprintf(line, sizeof line,
             "system %u %u %s/li%d %s/lt%d %s/la%d %s/lb%d\n", w, h, tmp, k,
             tmp, k, tmp, k, tmp, k);
    fputs(line, manifest);
    sys_free(&s);
  }
  oracle_run();
  for (int k = 0; k < 3; k++) {
    struct sys s;
    build(img[k], mask[k], 240, 10, 1, NULL, &s);
    size_t n = s.band.n;
    assert_true(n > 10);
    char name[32];
    snprintf(name, sizeof name, "la%d", k);
    double *want = get(name, n * n * sizeof(double));
    snprintf(name, sizeof name, "lb%d", k);
    double *wantb = get(name, n * sizeof(double));
    double *got = densify(&s.a);
    /* the same float64 sums in the same order: equal to the bit */
    for (size_t i = 0; i < n * n; i++)
      if (got[i] != want[i])
        fail_msg("image %d: L_U[%zu][%zu] = %.17g, pymatting %.17g", k,
                 i / n, i % n, got[i], want[i]);
    for (size_t i = 0; i < n; i++)
      if (s.b[i] != wantb[i])
        fail_msg("image %d: b[%zu] = %.17g, pymatting %.17g", k, i, s.b[i],
                 wantb[i]);
    free(want);
    free(wantb);
    free(got);
    sys_free(&s);
  }
  for (int k = 0; k < 3; k++) {
    cutout_image_free(img[k]);
    cutout_image_free(mask[k]);
  }
}

/* The solver's order is a symmetric permutation of the raster system, and
 * its strips / separators are decoupled as the solver assumes. */
static void test_order(void **state)
{
  (void)state;
  cutout_image *img = photo(40, 61, 20);
  cutout_image *mask = disc_mask(40, 61, 20, 30, 12, 10);
  struct sys s0, s1;
  build(img, mask, 240, 10, 3, NULL, &s0);
  size_t n = s0.band.n;
  uint32_t *perm = malloc(n * sizeof *perm);
  struct cutout__pcg_layout l;
  char err[CUTOUT_ERRMSG_MAX];
  assert_int_equal(cutout__matting_order(&s0.band, 4, perm, &l, err),
                   CUTOUT_OK);
  assert_int_equal(l.nblocks, 4);
  assert_int_equal(l.nseps, 3);
  assert_int_equal(l.sstart[l.nseps], n);
  build(img, mask, 240, 10, 3, perm, &s1);
  double *d0 = densify(&s0.a), *d1 = densify(&s1.a);
  for (size_t i = 0; i < n; i++) {
    assert_true(s1.b[perm[i]] == s0.b[i]);
    for (size_t j = 0; j < n; j++)
      assert_true(d1[(size_t)perm[i] * n + perm[j]] == d0[i * n + j]);
  }
  /* unit of each row */
  size_t nu = l.nblocks + l.nseps;
  size_t *unit = malloc(n * sizeof *unit);
  for (size_t u = 0; u < nu; u++) {
    size_t r0 = u < l.nblocks ? l.bstart[u] : l.sstart[u - l.nblocks];
    size_t r1 = u < l.nblocks ? l.bstart[u + 1] : l.sstart[u - l.nblocks + 1];
    for (size_t i = r0; i < r1; i++) unit[i] = u;
  }
  for (size_t i = 0; i < n; i++)
    for (size_t e = s1.a.ptr[i]; e < s1.a.ptr[i + 1]; e++) {
      size_t ui = unit[i], uj = unit[s1.a.col[e]];
      if (ui == uj) continue;
      /* strips never meet strips, separators never meet separators */
      assert_false(ui < l.nblocks && uj < l.nblocks);
      assert_false(ui >= l.nblocks && uj >= l.nblocks);
    }
  free(unit);
  free(d0);
  free(d1);
  free(perm);
  cutout__pcg_layout_free(&l);
  sys_free(&s0);
  sys_free(&s1);
  cutout_image_free(img);
  cutout_image_free(mask);
}

/* ------------------------------------------------------------------- PCG */

/* Dense Cholesky solve of the SPD system (the direct reference). */
static double *direct_solve(const struct cutout__csr *a, const double *b)
{
  size_t n = a->n;
  double *m = densify(a), *x = malloc(n * sizeof *x);
  for (size_t j = 0; j < n; j++) {
    double d = m[j * n + j];
    for (size_t k = 0; k < j; k++) d -= m[j * n + k] * m[j * n + k];
    assert_true(d > 0);
    m[j * n + j] = sqrt(d);
    for (size_t i = j + 1; i < n; i++) {
      double v = m[i * n + j];
      for (size_t k = 0; k < j; k++) v -= m[i * n + k] * m[j * n + k];
      m[i * n + j] = v / m[j * n + j];
    }
  }
  for (size_t i = 0; i < n; i++) {
    double v = b[i];
    for (size_t k = 0; k < i; k++) v -= m[i * n + k] * x[k];
    x[i] = v / m[i * n + i];
  }
  for (size_t i = n; i-- > 0;) {
    double v = x[i];
    for (size_t k = i + 1; k < n; k++) v -= m[k * n + i] * x[k];
    x[i] = v / m[i * n + i];
  }
  free(m);
  return x;
}

static double rel_err(const double *x, const double *y, size_t n)
{
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    num += (x[i] - y[i]) * (x[i] - y[i]);
    den += y[i] * y[i];
  }
  return sqrt(num / den);
}

static double rel_residual(const struct cutout__csr *a, const double *b,
                           const double *x)
{
  double num = 0, den = 0;
  for (size_t i = 0; i < a->n; i++) {
    double v = b[i];
    for (size_t e = a->ptr[i]; e < a->ptr[i + 1]; e++)
      v -= a->val[e] * x[a->col[e]];
    num += v * v;
    den += b[i] * b[i];
  }
  return sqrt(num / den);
}

static void test_pcg_direct(void **state)
{
  (void)state;
  cutout_image *img = photo(48, 64, 25);
  cutout_image *mask = disc_mask(48, 64, 24, 30, 12, 14);
  uint32_t *perm;
  struct cutout__pcg_layout l;
  char err[CUTOUT_ERRMSG_MAX];
  struct sys s0;
  build(img, mask, 240, 10, 2, NULL, &s0);
  size_t n = s0.band.n;
  assert_true(n > 300 && n < 3000);
  perm = malloc(n * sizeof *perm);
  assert_int_equal(cutout__matting_order(&s0.band, 4, perm, &l, err),
                   CUTOUT_OK);
  struct sys s;
  build(img, mask, 240, 10, 2, perm, &s);
  double *xd = direct_solve(&s.a, s.b);

  static const int pcs[] = {CUTOUT_PRECOND_IC0, CUTOUT_PRECOND_JACOBI,
                            CUTOUT_PRECOND_NONE};
  double *x1 = malloc(n * sizeof *x1), *x2 = malloc(n * sizeof *x2);
  for (size_t k = 0; k < 3; k++) {
    struct cutout__pcg_params p = cutout__pcg_default_params();
    struct cutout__pcg_result r;
    p.precond = pcs[k];
    p.layout = &l;
    p.min_team_rows = 1;
    /* the default rtol: pymatting's stopping rule holds */
    p.nthreads = 1;
    assert_int_equal(cutout__pcg(&s.a, s.b, x1, &p, &r, err), CUTOUT_OK);
    assert_true(r.converged);
    assert_true(rel_residual(&s.a, s.b, x1) < 1.01e-7);
    print_message("precond %d: %d iterations (rtol 1e-7), shift %g\n",
                  pcs[k], r.iterations, r.shift);
    /* the same iterates whatever the number of threads */
    for (int nt = 2; nt <= 4; nt++) {
      p.nthreads = nt;
      assert_int_equal(cutout__pcg(&s.a, s.b, x2, &p, &r, err), CUTOUT_OK);
      assert_memory_equal(x1, x2, n * sizeof *x1);
    }
    /* tight tolerance: the direct solution */
    p.rtol = 1e-13;
    p.nthreads = 2;
    assert_int_equal(cutout__pcg(&s.a, s.b, x2, &p, &r, err), CUTOUT_OK);
    assert_true(r.converged);
    double e = rel_err(x2, xd, n);
    print_message("precond %d: |x - x_direct| / |x_direct| = %.2e\n", pcs[k],
                  e);
    assert_true(e < 1e-7);
  }
  /* The raster order without layout solves the same system. */
  {
    struct cutout__pcg_params p = cutout__pcg_default_params();
    struct cutout__pcg_result r;
    p.rtol = 1e-13;
    assert_int_equal(cutout__pcg(&s0.a, s0.b, x1, &p, &r, err), CUTOUT_OK);
    for (size_t i = 0; i < n; i++) x2[i] = x1[i] - xd[perm[i]];
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
      num += x2[i] * x2[i];
      den += xd[i] * xd[i];
    }
    assert_true(sqrt(num / den) < 1e-7);
  }
  /* b = 0: pymatting's cg() never meets ||r|| < rtol * 0, so it raises;
   * so does this (not converged). */
  {
    struct cutout__pcg_params p = cutout__pcg_default_params();
    struct cutout__pcg_result r;
    double *z = calloc(n, sizeof *z);
    p.layout = &l;
    assert_int_equal(cutout__pcg(&s.a, z, x1, &p, &r, err), CUTOUT_OK);
    assert_false(r.converged);
    /* and maxiter is honoured */
    p.maxiter = 3;
    assert_int_equal(cutout__pcg(&s.a, s.b, x1, &p, &r, err), CUTOUT_OK);
    assert_false(r.converged);
    assert_int_equal(r.iterations, 3);
    free(z);
  }
  /* cancellation */
  {
    struct cutout__pcg_params p = cutout__pcg_default_params();
    struct cutout__pcg_result r;
    atomic_int c;
    atomic_init(&c, 1);
    p.cancel = &c;
    assert_int_equal(cutout__pcg(&s.a, s.b, x1, &p, &r, err),
                     CUTOUT_ECANCELED);
  }
  free(x1);
  free(x2);
  free(xd);
  free(perm);
  cutout__pcg_layout_free(&l);
  sys_free(&s);
  sys_free(&s0);
  cutout_image_free(img);
  cutout_image_free(mask);
}

/* The direct solver (nested dissection + multifrontal Cholesky, then
 * CG): the dense direct solution, to rounding; the same bytes for any
 * number of threads; pymatting's semantics at the edges. */
static void chol_case(const cutout_image *img, const cutout_image *mask,
                      int erode)
{
  char err[CUTOUT_ERRMSG_MAX];
  struct sys s;
  build(img, mask, 240, 10, erode, NULL, &s);
  const size_t n = s.band.n;
  assert_true(n > 300 && n < 4000);
  double *xd = direct_solve(&s.a, s.b);
  double *x1 = malloc(n * sizeof *x1), *x2 = malloc(n * sizeof *x2);
  struct cutout__pcg_params p = cutout__pcg_default_params();
  struct cutout__pcg_result r;
  p.precond = CUTOUT_PRECOND_CHOL;
  p.nthreads = 1;
  assert_int_equal(cutout__chol_pcg(&s.band, &s.a, s.b, x1, &p,
                                    (size_t)1 << 30, &r, err),
                   CUTOUT_OK);
  assert_int_equal(r.precond, CUTOUT_PRECOND_CHOL);
  assert_true(r.converged);
  assert_true(r.factor_nnz > 0);
  assert_true(rel_residual(&s.a, s.b, x1) < 1.01e-7);
  double e = rel_err(x1, xd, n);
  print_message("chol %zu unknowns: %d iteration(s), shift %g, factor %zu "
                "entries, |x - x_direct| / |x_direct| = %.2e\n",
                n, r.iterations, r.shift, r.factor_nnz, e);
  /* the factor is exact (no drop): the first step is the solution */
  assert_true(e < 1e-9);
  assert_true(r.iterations <= 3);
  for (int nt = 2; nt <= 4; nt++) {
    p.nthreads = nt;
    assert_int_equal(cutout__chol_pcg(&s.band, &s.a, s.b, x2, &p,
                                      (size_t)1 << 30, &r, err),
                     CUTOUT_OK);
    assert_memory_equal(x1, x2, n * sizeof *x1);
  }
  /* too large for the cap: declined, IC(0) is the caller's fallback */
  assert_int_equal(cutout__chol_pcg(&s.band, &s.a, s.b, x2, &p, 1, &r, err),
                   CUTOUT_OK);
  assert_int_equal(r.precond, CUTOUT_PRECOND_NONE);
  assert_false(r.converged);
  /* b = 0: never converges, as pymatting's cg() */
  double *z = calloc(n, sizeof *z);
  assert_int_equal(cutout__chol_pcg(&s.band, &s.a, z, x2, &p,
                                    (size_t)1 << 30, &r, err),
                   CUTOUT_OK);
  assert_false(r.converged);
  assert_int_equal(r.precond, CUTOUT_PRECOND_CHOL);
  /* cancellation */
  atomic_int c;
  atomic_init(&c, 1);
  p.cancel = &c;
  assert_int_equal(cutout__chol_pcg(&s.band, &s.a, s.b, x2, &p,
                                    (size_t)1 << 30, &r, err),
                   CUTOUT_ECANCELED);
  free(z);
  free(x1);
  free(x2);
  free(xd);
  sys_free(&s);
}

static void test_chol_direct(void **state)
{
  (void)state;
  /* a ring-shaped band, as around a subject */
  cutout_image *img = photo(48, 64, 25);
  cutout_image *mask = disc_mask(48, 64, 24, 30, 12, 14);
  chol_case(img, mask, 2);
  cutout_image_free(img);
  cutout_image_free(mask);
  /* several blobs, cut by the image border, one with a flat colour (near-
   * singular windows) and one-pixel gaps between parts of the band */
  img = photo(90, 70, 15);
  for (uint32_t y = 0; y < 30; y++)
    memset(img->pixels + (size_t)y * img->stride, 90, 3 * 40);
  cutout_image *m1 = disc_mask(90, 70, 5, 8, 10, 9);
  cutout_image *m2 = disc_mask(90, 70, 70, 50, 8, 7);
  for (size_t i = 0; i < (size_t)90 * 70; i++) {
    if (m2->pixels[i] > m1->pixels[i]) m1->pixels[i] = m2->pixels[i];
    if (i % 90 == 45) m1->pixels[i] = 0; /* a cut through the middle */
  }
  chol_case(img, m1, 1);
  cutout_image_free(img);
  cutout_image_free(m1);
  cutout_image_free(m2);
}

/* The whole alpha_matting_cutout gives the same bytes on any number of
 * threads (the solve's factor and sums, the foreground's pipeline). */
static void test_matting_threads(void **state)
{
  (void)state;
  const uint32_t w = 260, h = 190;
  cutout_image *img = photo(w, h, 20);
  cutout_image *m = disc_mask(w, h, 120, 90, 50, 30);
  char err[CUTOUT_ERRMSG_MAX], warn[CUTOUT_ERRMSG_MAX];
  cutout_image *o1 = NULL, *o2 = NULL;
  struct cutout__matting_params p = cutout__matting_default_params();
  struct cutout__matting_info info;
  p.nthreads = 1;
  assert_int_equal(cutout__alpha_matting(img, m, &p, &o1, &info, warn, err),
                   CUTOUT_OK);
  assert_non_null(o1);
  assert_int_equal(info.pcg.precond, CUTOUT_PRECOND_CHOL);
  assert_true(info.unknown > 8192);
  for (int nt = 2; nt <= 3; nt++) {
    p.nthreads = nt;
    assert_int_equal(cutout__alpha_matting(img, m, &p, &o2, &info, warn, err),
                     CUTOUT_OK);
    assert_non_null(o2);
    assert_memory_equal(o1->pixels, o2->pixels, (size_t)w * h * 4);
    cutout_image_free(o2);
  }
  /* IC(0)-PCG (the fallback when the factor would be too large) lands
   * within a unit of the direct solve */
  p.nthreads = 2;
  p.max_direct_bytes = 1;
  assert_int_equal(cutout__alpha_matting(img, m, &p, &o2, &info, warn, err),
                   CUTOUT_OK);
  assert_non_null(o2);
  assert_int_equal(info.pcg.precond, CUTOUT_PRECOND_IC0);
  for (size_t i = 0; i < (size_t)w * h; i++) {
    int d = o1->pixels[4 * i + 3] - o2->pixels[4 * i + 3];
    assert_true(d >= -1 && d <= 1);
  }
  cutout_image_free(o2);
  cutout_image_free(o1);
  cutout_image_free(img);
  cutout_image_free(m);
}

/* ------------------------------------------------------------- fallbacks */

static void expect_fallback(const cutout_image *img, const cutout_image *mask,
                            int erode, const char *why)
{
  struct cutout__matting_params p = cutout__matting_default_params();
  cutout_image *out = (cutout_image *)1;
  char warn[CUTOUT_ERRMSG_MAX], err[CUTOUT_ERRMSG_MAX];
  p.erode = erode;
  assert_int_equal(cutout__alpha_matting(img, mask, &p, &out, NULL, warn, err),
                   CUTOUT_OK);
  assert_null(out);
  if (!strstr(warn, why)) fail_msg("warning '%s' lacks '%s'", warn, why);
}

static void test_fallbacks(void **state)
{
  (void)state;
  const uint32_t w = 40, h = 30;
  cutout_image *img = photo(w, h, 10), *m;
  assert_int_equal(cutout_image_new(w, h, 1, &m), CUTOUT_OK);
  /* rembg #116: all foreground, or all background */
  memset(m->pixels, 255, (size_t)w * h);
  expect_fallback(img, m, 10, "no background");
  memset(m->pixels, 0, (size_t)w * h);
  expect_fallback(img, m, 10, "no foreground");
  /* a soft-free mask and an erosion of 1: no unknown pixel at all */
  for (uint32_t i = 0; i < w * h; i++) m->pixels[i] = i % w < w / 2 ? 255 : 0;
  expect_fallback(img, m, 1, "no unknown");
  /* unknown pixels far from any foreground: b = 0, pymatting's CG never
   * converges */
  memset(m->pixels, 0, (size_t)w * h);
  for (uint32_t y = 0; y < 5; y++) memset(m->pixels + y * w, 255, 5);
  for (uint32_t y = 20; y < 25; y++) memset(m->pixels + y * w + 25, 128, 6);
  expect_fallback(img, m, 1, "did not converge");
  /* a grey image: pymatting cannot take a 2-D array */
  cutout_image *grey;
  assert_int_equal(cutout_image_new(w, h, 1, &grey), CUTOUT_OK);
  cutout_image *soft = disc_mask(w, h, 20, 15, 6, 8);
  expect_fallback(grey, soft, 1, "colour");
  cutout_image_free(grey);
  cutout_image_free(soft);
  cutout_image_free(m);
  cutout_image_free(img);
}

/* ------------------------------------------------------------ foreground */

static void test_foreground_exact(void **state)
{
  (void)state;
  static const uint32_t dims[][2] = {{1, 1}, {5, 3}, {29, 23}, {70, 41}};
  char name[32], line[512];
  oracle_begin();
  for (int k = 0; k < 4; k++) {
    uint32_t w = dims[k][0], h = dims[k][1];
    cutout_image *img = photo(w, h, 40);
    cutout_image *m = disc_mask(w, h, w * 0.5, h * 0.5, w * 0.2, w * 0.3);
    float *a = malloc((size_t)w * h * sizeof *a);
    for (size_t i = 0; i < (size_t)w * h; i++)
      a[i] = (float)(m->pixels[i] / 255.0 * 0.999 + (rnd() % 3) * 1e-4);
    snprintf(name, sizeof name, "fi%d", k);
    put(name, img->pixels, (size_t)w * h * 3);
    snprintf(name, sizeof name, "fa%d", k);
    put(name, a, (size_t)w * h * sizeof *a);
    snprintf(name, sizeof name, "dm%d", k);
    put(name, m->pixels, (size_t)w * h);
    snprintf(line, sizeof line, "fg %u %u %s/fi%d %s/fa%d %s/ff%d\n", w, h,
             tmp, k, tmp, k, tmp, k);
    fputs(line, manifest);
    snprintf(line, sizeof line, "dc %u %u %s/fi%d %s/dm%d %s/dc%d\n", w, h,
             tmp, k, tmp, k, tmp, k);
    fputs(line, manifest);
    free(a);
    cutout_image_free(img);
    cutout_image_free(m);
  }
  oracle_run();
  char err[CUTOUT_ERRMSG_MAX];
  for (int k = 0; k < 4; k++) {
    uint32_t w = dims[k][0], h = dims[k][1];
    size_t npx = (size_t)w * h;
    snprintf(name, sizeof name, "fi%d", k);
    uint8_t *px = get(name, npx * 3);
    snprintf(name, sizeof name, "fa%d", k);
    float *a = get(name, npx * sizeof(float));
    snprintf(name, sizeof name, "ff%d", k);
    uint8_t *want = get(name, npx * 3);
    snprintf(name, sizeof name, "dm%d", k);
    uint8_t *mp = get(name, npx);
    snprintf(name, sizeof name, "dc%d", k);
    uint8_t *wantdc = get(name, npx * 4);
    cutout_image img = {w, h, 3, (size_t)w * 3, px};
    cutout_image *out;
    assert_int_equal(cutout_image_new(w, h, 4, &out), CUTOUT_OK);
    assert_int_equal(cutout__foreground_ml(&img, a, 2, NULL, out, err),
                     CUTOUT_OK);
    for (size_t i = 0; i < npx; i++)
      for (int c = 0; c < 3; c++)
        if (out->pixels[4 * i + c] != want[3 * i + c])
          fail_msg("%ux%u: F at pixel %zu channel %d: %d, pymatting %d", w,
                   h, i, c, out->pixels[4 * i + c], want[3 * i + c]);
    cutout_image_free(out);
    /* decontaminate: foreground on mask / 255, alpha = mask */
    cutout_image mask = {w, h, 1, w, mp};
    assert_int_equal(cutout__decontaminate(&img, &mask, 2, NULL, &out, err),
                     CUTOUT_OK);
    assert_memory_equal(out->pixels, wantdc, npx * 4);
    cutout_image_free(out);
    free(px);
    free(a);
    free(want);
    free(mp);
    free(wantdc);
  }
}

/* The row pipeline that spreads the Gauss-Seidel sweeps over threads must
 * not change a single value. */
static void test_foreground_threads(void **state)
{
  (void)state;
  const uint32_t w = 700, h = 530;
  cutout_image *img = photo(w, h, 30);
  cutout_image *m = disc_mask(w, h, 300, 250, 150, 120);
  float *a = malloc((size_t)w * h * sizeof *a);
  for (size_t i = 0; i < (size_t)w * h; i++) a[i] = m->pixels[i] / 255.0f;
  cutout_image *o1, *o2;
  char err[CUTOUT_ERRMSG_MAX];
  assert_int_equal(cutout_image_new(w, h, 4, &o1), CUTOUT_OK);
  assert_int_equal(cutout__foreground_ml(img, a, 1, NULL, o1, err), CUTOUT_OK);
  for (int nt = 2; nt <= 5; nt++) {
    assert_int_equal(cutout_image_new(w, h, 4, &o2), CUTOUT_OK);
    assert_int_equal(cutout__foreground_ml(img, a, nt, NULL, o2, err),
                     CUTOUT_OK);
    assert_memory_equal(o1->pixels, o2->pixels, (size_t)w * h * 4);
    cutout_image_free(o2);
  }
  cutout_image_free(o1);
  free(a);
  cutout_image_free(img);
  cutout_image_free(m);
}

/* ------------------------------------------------------------------ crop */

static void test_crop(void **state)
{
  (void)state;
  cutout_image *im;
  uint32_t x0, y0, w, h;
  char err[CUTOUT_ERRMSG_MAX];
  assert_int_equal(cutout_image_new(20, 10, 4, &im), CUTOUT_OK);
  assert_int_equal(cutout__alpha_bbox(im, 0, &x0, &y0, &w, &h), -1);
  im->pixels[(3 * 20 + 5) * 4 + 3] = 1;
  im->pixels[(6 * 20 + 12) * 4 + 3] = 200;
  im->pixels[(6 * 20 + 13) * 4 + 0] = 99; /* colour without alpha: out */
  assert_int_equal(cutout__alpha_bbox(im, 0, &x0, &y0, &w, &h), 0);
  assert_int_equal(x0, 5);
  assert_int_equal(y0, 3);
  assert_int_equal(w, 8);
  assert_int_equal(h, 4);
  assert_int_equal(cutout__alpha_bbox(im, 2, &x0, &y0, &w, &h), 0);
  assert_int_equal(x0, 3);
  assert_int_equal(y0, 1);
  assert_int_equal(w, 12);
  assert_int_equal(h, 8);
  /* clamped to the image */
  assert_int_equal(cutout__alpha_bbox(im, 1000, &x0, &y0, &w, &h), 0);
  assert_int_equal(x0, 0);
  assert_int_equal(y0, 0);
  assert_int_equal(w, 20);
  assert_int_equal(h, 10);
  cutout_image *c;
  assert_int_equal(cutout__crop(im, 5, 3, 8, 4, &c, err), CUTOUT_OK);
  assert_int_equal(c->width, 8);
  assert_int_equal(c->pixels[3], 1);
  assert_int_equal(c->pixels[(3 * 8 + 7) * 4 + 3], 200);
  cutout_image_free(c);
  assert_int_equal(cutout__crop(im, 15, 0, 8, 4, &c, err), CUTOUT_EINVAL);
  cutout_image_free(im);
  /* an L mask: its value is the alpha */
  assert_int_equal(cutout_image_new(9, 9, 1, &im), CUTOUT_OK);
  im->pixels[4 * 9 + 4] = 3;
  assert_int_equal(cutout__alpha_bbox(im, 1, &x0, &y0, &w, &h), 0);
  assert_int_equal(x0, 3);
  assert_int_equal(w, 3);
  cutout_image_free(im);
}

/* ---------------------------------------------------------------- memory */

static long maxrss_kb(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* 4000x3000 with a thin band: a soft disc of radius 1200 (a 6-pixel ramp
 * plus the 10-pixel erosion: ~16 pixels, ~120 000 unknowns).  Run in a
 * child so its high-water mark is its own.
 *
 * The bound.  The solve keeps, per image pixel, the trimap and one erosion
 * buffer (2 bytes), and per unknown pixel the matrix (~25 entries x 12
 * bytes), the float32 factor and six float64 vectors (~450 bytes).  The
 * foreground estimate needs F and B as float32 at the full and the
 * previous level (24 + ~6 bytes), the float32 alpha (4) and the RGBA
 * result (4): ~40 bytes a pixel, which is what pymatting allocates for the
 * same step.  So: peak growth <= 48 bytes x pixels + 1 KB x unknowns
 * (~700 MB here), and the solve alone <= 4 bytes x pixels + 1 KB x
 * unknowns (~170 MB).  pymatting's Laplacian alone is 25 float64 values
 * and 25 int64 indices per image pixel: 4.8 GB at this size. */
static void memory_child(int fd)
{
  const uint32_t w = 4000, h = 3000;
  const size_t npx = (size_t)w * h;
  cutout_image *img = photo(w, h, 6), *m = disc_mask(w, h, 2000, 1500, 1200, 6);
  char err[CUTOUT_ERRMSG_MAX], warn[CUTOUT_ERRMSG_MAX];
  long base = maxrss_kb();
  double t0 = cutout__now();
  /* the solve alone */
  struct cutout__matting_params p = cutout__matting_default_params();
  p.nthreads = 2;
  uint8_t *tri = malloc(npx);
  struct cutout__band band;
  if (!tri || cutout__trimap(m, 240, 10, 10, 2, tri, err) ||
      cutout__band_build(tri, w, h, &band, err))
    _exit(3);
  size_t n = band.n;
  double *b = malloc(n * sizeof *b), *x = malloc(n * sizeof *x);
  struct cutout__csr a;
  struct cutout__pcg_result r;
  if (!b || !x ||
      cutout__matting_system(img, tri, &band, NULL, 1e-7, 2, &a, b, err))
    _exit(4);
  struct cutout__pcg_params pp = p.pcg;
  pp.nthreads = 2;
  if (cutout__chol_pcg(&band, &a, b, x, &pp, (size_t)1 << 30, &r, err) ||
      !r.converged || r.precond != CUTOUT_PRECOND_CHOL)
    _exit(5);
  long solve_kb = maxrss_kb() - base;
  double t1 = cutout__now();
  free(tri);
  free(b);
  free(x);
  cutout__band_free(&band);
  cutout__csr_free(&a);
  /* the whole alpha_matting_cutout */
  cutout_image *out = NULL;
  struct cutout__matting_info info;
  if (cutout__alpha_matting(img, m, &p, &out, &info, warn, err) || !out)
    _exit(6);
  double t2 = cutout__now();
  long total_kb = maxrss_kb() - base;
  double rep[8] = {(double)npx, (double)n, (double)solve_kb,
                   (double)total_kb, t1 - t0, t2 - t1,
                   (double)r.iterations, info.t_foreground};
  if (write(fd, rep, sizeof rep) != (ssize_t)sizeof rep) _exit(7);
  _exit(0);
}

static void test_memory_bound(void **state)
{
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    memory_child(fds[1]);
  }
  close(fds[1]);
  double rep[8];
  ssize_t got = read(fds[0], rep, sizeof rep);
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || got != (ssize_t)sizeof rep)
    fail_msg("child failed (status %d)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  double npx = rep[0], n = rep[1];
  double solve_mb = rep[2] / 1024, total_mb = rep[3] / 1024;
  double solve_bound = (4 * npx + 1024 * n) / (1 << 20);
  double total_bound = (48 * npx + 1024 * n) / (1 << 20);
  print_message("4000x3000, %.0f unknown pixels: solve %.2f s (%d "
                "iterations), peak +%.0f MB (bound %.0f); whole matting "
                "%.2f s (foreground %.2f s), peak +%.0f MB (bound %.0f)\n",
                n, rep[4], (int)rep[6], solve_mb, solve_bound, rep[5], rep[7],
                total_mb, total_bound);
#if defined(__SANITIZE_ADDRESS__)
  print_message("AddressSanitizer: shadow memory and quarantine inflate "
                "RSS; bound not checked\n");
#else
  assert_true(solve_mb <= solve_bound);
  assert_true(total_mb <= total_bound);
#endif
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_memory_bound),
      cmocka_unit_test(test_trimap),
      cmocka_unit_test(test_laplacian_dense),
      cmocka_unit_test(test_order),
      cmocka_unit_test(test_pcg_direct),
      cmocka_unit_test(test_chol_direct),
      cmocka_unit_test(test_matting_threads),
      cmocka_unit_test(test_fallbacks),
      cmocka_unit_test(test_foreground_exact),
      cmocka_unit_test(test_foreground_threads),
      cmocka_unit_test(test_crop),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
