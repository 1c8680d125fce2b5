/*
 * matting.h: rembg's alpha_matting_cutout() (pymatting's closed-form
 * matting plus multi-level foreground estimation) and the colour
 * decontamination of upstream rembg #843, in C.
 *
 * The pieces, in pipeline order (docs/matting.md has the details):
 *   trimap      scipy binary_erosion of mask > fg and mask < bg, as rembg
 *   band        the unknown pixels, in raster order (the solver's rows)
 *   system      Levin's matting Laplacian restricted to the band:
 *               L_U x = -R * is_fg_K, assembled exactly as pymatting's
 *               cf_laplacian sums it, but only for windows that touch the
 *               band (memory is proportional to the band, not the image)
 *   chol        the solve: nested dissection of the band, multifrontal
 *               Cholesky, CG with pymatting's stopping rule (||r|| < rtol
 *               ||b||); multithreaded, the same bytes for any thread count
 *   pcg         IC(0)-preconditioned CG on a strip order: the fallback
 *               when the direct factor would be too large
 *   foreground  estimate_foreground_ml with numba's float32/float64 mix
 *
 * Everything here is library-internal; unit tests call it directly.
 */
#ifndef CUTOUT_MATTING_H
#define CUTOUT_MATTING_H

#include "internal.h"

#include <stdatomic.h>

struct cutout__pcg_layout;

/* Trimap values, as rembg writes them. */
#define CUTOUT_TRI_BG 0
#define CUTOUT_TRI_UNKNOWN 128
#define CUTOUT_TRI_FG 255

/*
 * rembg's trimap: is_fg = mask > fg_thr, is_bg = mask < bg_thr (strict),
 * each eroded once by scipy.ndimage.binary_erosion with ones((e, e)) (e =
 * erode > 0; for even e scipy's window is [-e/2, e/2 - 1]) or, for
 * erode == 0, scipy's default 3x3 cross; border_value 0 for the foreground
 * and 1 for the background.  tri (width*height bytes, tightly packed) gets
 * 128 everywhere, 255 on is_fg, then 0 on is_bg.  mask is L.
 */
cutout_status cutout__trimap(const cutout_image *mask, int fg_thr, int bg_thr,
                             int erode, int nthreads, uint8_t *tri,
                             char *err);

/* The unknown pixels of a trimap in raster order: pixel k of the band is
 * (x[k], y) for row_ptr[y] <= k < row_ptr[y + 1]. */
struct cutout__band {
  uint32_t width, height;
  size_t n;        /* number of unknown pixels */
  size_t *row_ptr; /* height + 1 entries */
  uint32_t *x;     /* n entries */
};
cutout_status cutout__band_build(const uint8_t *tri, uint32_t width,
                                 uint32_t height, struct cutout__band *band,
                                 char *err);
void cutout__band_free(struct cutout__band *band);
/* Band index of pixel (x, y), or -1 when it is not unknown. */
int64_t cutout__band_find(const struct cutout__band *band, uint32_t x,
                          uint32_t y);

/* A symmetric sparse matrix, every row stored in full, columns sorted. */
struct cutout__csr {
  size_t n;
  size_t *ptr;  /* n + 1 */
  uint32_t *col;
  double *val;
};
void cutout__csr_free(struct cutout__csr *a);

/*
 * The solver's order of the band: nstrips strips of image rows, cut by
 * separators two image rows tall (so no strip touches another through the
 * 5x5 stencil), balanced by unknown count.  perm[k] (band->n entries) gets
 * the solver index of band pixel k.  Fewer strips are made when the band
 * is small or short; nstrips <= 1 gives the raster order.
 */
cutout_status cutout__matting_order(const struct cutout__band *band,
                                    size_t nstrips, uint32_t *perm,
                                    struct cutout__pcg_layout *layout,
                                    char *err);

/*
 * The linear system pymatting's estimate_alpha_cf solves: A = L_U (rows and
 * columns of the band) and b = -R * is_fg_K, with L = cf_laplacian(image /
 * 255, epsilon, radius 1).  Every entry is the same float64 sum, in the
 * same order, as pymatting's; windows are the 3x3 ones centred at interior
 * pixels.  rgb is RGB or RGBA (alpha ignored).  b has band->n entries.
 * perm (may be NULL: raster order) maps band pixels to matrix rows.
 */
cutout_status cutout__matting_system(const cutout_image *rgb,
                                     const uint8_t *tri,
                                     const struct cutout__band *band,
                                     const uint32_t *perm, double epsilon,
                                     int nthreads, struct cutout__csr *a,
                                     double *b, char *err);

/*
 * Run fn(arg, tid, nthreads) on a team of up to nthreads threads (the
 * caller is tid 0), all started before any runs, so fn may wait for its
 * peers.  If some threads cannot be created the team is smaller; fn learns
 * the real size from its argument.
 */
void cutout__team_run(int nthreads, void (*fn)(void *arg, int tid, int n),
                      void *arg);

/* Spin briefly, then yield: the wait of a team member for a peer. */
void cutout__team_pause(unsigned *spins);

/* Preconditioners of the solver. */
enum cutout__precond {
  CUTOUT_PRECOND_NONE = 0,
  CUTOUT_PRECOND_JACOBI,
  CUTOUT_PRECOND_IC0, /* incomplete Cholesky, zero fill */
  CUTOUT_PRECOND_CHOL /* sparse Cholesky of the whole system (default;
                         falls back to IC0 when too large) */
};

/*
 * How the unknowns are ordered for the solver: nblocks strips of the band
 * (rows [bstart[k], bstart[k + 1]) of the matrix), then nseps separators
 * (rows [sstart[k], sstart[k + 1]), sstart[0] == bstart[nblocks]).  Strips
 * are coupled to no other strip, separators to no other separator, so the
 * IC(0) factor of this ordering can be built and applied strip by strip
 * and separator by separator in parallel, with no coupling dropped.
 */
struct cutout__pcg_layout {
  size_t nblocks, nseps;
  size_t *bstart; /* nblocks + 1 */
  size_t *sstart; /* nseps + 1 */
};
void cutout__pcg_layout_free(struct cutout__pcg_layout *l);

struct cutout__pcg_params {
  int precond;          /* enum cutout__precond */
  double rtol;          /* stop when ||r|| < rtol * ||b|| */
  int maxiter;          /* then give up */
  int nthreads;
  atomic_int *cancel;   /* polled every iteration; may be NULL */
  const struct cutout__pcg_layout *layout; /* NULL: a single strip */
  size_t min_team_rows; /* fewer rows: one thread (0 = default 8192) */
};
struct cutout__pcg_params cutout__pcg_default_params(void);

struct cutout__pcg_result {
  int converged;        /* 0: no convergence within maxiter, b == 0 or a
                           breakdown: pymatting raises ValueError */
  int iterations;
  double rel_residual;  /* ||r|| / ||b|| at the end */
  double shift;         /* diagonal shift the factorisation needed */
  size_t factor_nnz;    /* entries of the factor (IC(0) or direct) */
  int precond;          /* the preconditioner that produced x; for the
                           direct solver NONE means it declined (too
                           large, or no convergence): the caller falls
                           back to IC(0) */
  double factor_flops;  /* direct: flops of the factorisation */
  double t_setup, t_solve; /* seconds */
};

/*
 * Solve a x = b by preconditioned CG from x = 0, with pymatting's cg()
 * stopping rule.  x has a->n entries.  The result does not depend on the
 * number of threads (threads share out the layout's strips and
 * separators; every sum is added up in layout order).  Returns CUTOUT_OK
 * whether or not it converged (see res->converged); ENOMEM or ECANCELED
 * otherwise.
 */
cutout_status cutout__pcg(const struct cutout__csr *a, const double *b,
                          double *x, const struct cutout__pcg_params *p,
                          struct cutout__pcg_result *res, char *err);

/*
 * The direct solver (matting_chol.c): nested dissection of the band from
 * its pixel geometry, multifrontal Cholesky on a team of threads.  a is
 * the band's system in raster order (perm NULL).
 */
struct cutout__chol;
cutout_status cutout__chol_analyze(const struct cutout__band *band,
                                   const struct cutout__csr *a,
                                   struct cutout__chol **out, char *err);
/* Peak bytes the factorisation will need with nthreads threads. */
size_t cutout__chol_bytes(const struct cutout__chol *c, int nthreads);
double cutout__chol_flops(const struct cutout__chol *c);
size_t cutout__chol_nnz(const struct cutout__chol *c);
/* Factor a (the matrix analysed), with the smallest relative diagonal
 * shift of a ladder that gives positive pivots (*shift; -1: none did).
 * The factor does not depend on nthreads. */
cutout_status cutout__chol_factor(struct cutout__chol *c,
                                  const struct cutout__csr *a, int nthreads,
                                  atomic_int *cancel, double *shift,
                                  char *err);
/* z = (L L')^-1 r (band order); w: n doubles, t: n doubles of scratch. */
void cutout__chol_solve(const struct cutout__chol *c, const double *r,
                        double *z, double *w, double *t);
void cutout__chol_free(struct cutout__chol *c); /* NULL-safe */

/*
 * Solve a x = b by CG preconditioned with the direct factor, from x = 0,
 * with pymatting's stopping rule, as cutout__pcg does.  When the factor
 * would need more than max_bytes, or no shift gives one, or CG has not
 * converged after a few hundred steps, res->precond is
 * CUTOUT_PRECOND_NONE and x is not the solution: use cutout__pcg.
 */
cutout_status cutout__chol_pcg(const struct cutout__band *band,
                               const struct cutout__csr *a, const double *b,
                               double *x, const struct cutout__pcg_params *p,
                               size_t max_bytes,
                               struct cutout__pcg_result *res, char *err);

/*
 * pymatting's estimate_foreground_ml(image / 255, alpha) with its defaults
 * (regularization 1e-5, 10 small / 2 big iterations, small_size 32,
 * gradient weight 1), float32, then rembg's clip(F * 255).astype(uint8):
 * writes the truncated foreground into channels 0..2 of the RGBA image out
 * (channel 3 untouched).  rgb is RGB or RGBA (alpha ignored); alpha holds
 * width*height float32 values.  The sweeps are Gauss-Seidel in raster
 * order, parallelised as a row pipeline that keeps their exact order.
 */
cutout_status cutout__foreground_ml(const cutout_image *rgb,
                                    const float *alpha, int nthreads,
                                    atomic_int *cancel, cutout_image *out,
                                    char *err);

/* Parameters of the whole alpha_matting_cutout(). */
struct cutout__matting_params {
  int fg_thr, bg_thr, erode; /* rembg's -af -ab -ae */
  int nthreads;
  atomic_int *cancel;
  struct cutout__pcg_params pcg;
  int strips;                /* solver strips (0 = default 8; 1 = raster
                                order, no separators) */
  size_t max_unknown;        /* refuse (fall back) above this many unknown
                                pixels; 0 = default */
  size_t max_direct_bytes;   /* the direct solver's memory cap (0 =
                                default 1 GiB); above it IC(0)-PCG */
};
struct cutout__matting_params cutout__matting_default_params(void);

/* What happened, for --stats, tests and benchmarks. */
struct cutout__matting_info {
  size_t unknown;
  size_t nnz;
  struct cutout__pcg_result pcg;
  double t_trimap, t_system, t_foreground; /* seconds (pcg: in pcg) */
};

/*
 * rembg's alpha_matting_cutout(img, mask, fg, bg, erode).  img is RGB or
 * RGBA (alpha dropped, as rembg converts RGBA to RGB); mask is L.
 * On success *out is a new RGBA image: the estimated foreground (not
 * premultiplied) and the matted alpha, both truncated to uint8.
 * Where rembg catches a ValueError and falls back (empty trimap, CG not
 * converging, ...), this returns CUTOUT_OK with *out = NULL and the reason
 * in warn (CUTOUT_ERRMSG_MAX bytes); the caller makes the plain cutout.
 */
cutout_status cutout__alpha_matting(const cutout_image *img,
                                    const cutout_image *mask,
                                    const struct cutout__matting_params *p,
                                    cutout_image **out,
                                    struct cutout__matting_info *info,
                                    char *warn, char *err);

/*
 * Upstream rembg's decontaminate_cutout(img, mask): estimate_foreground_ml
 * on the model's soft alpha (mask / 255), stacked with that alpha.  img is
 * L, LA, RGB or RGBA (grey is used as RGB; alpha dropped); mask is L.  The
 * result is RGBA with alpha == mask.
 */
cutout_status cutout__decontaminate(const cutout_image *img,
                                    const cutout_image *mask, int nthreads,
                                    atomic_int *cancel, cutout_image **out,
                                    char *err);

/*
 * --crop: the smallest rectangle holding every pixel whose alpha (the last
 * channel of LA/RGBA, the value of L) is > 0, grown by margin pixels on
 * each side and clamped to the image.  Returns 0 and the rectangle, or -1
 * when no pixel qualifies.
 */
int cutout__alpha_bbox(const cutout_image *img, uint32_t margin,
                       uint32_t *x0, uint32_t *y0, uint32_t *w, uint32_t *h);
/* A new image holding the rectangle (x0, y0, w, h) of img. */
cutout_status cutout__crop(const cutout_image *img, uint32_t x0, uint32_t y0,
                           uint32_t w, uint32_t h, cutout_image **out,
                           char *err);

/* ------------------------------------------------ cutout_remove() hooks */

/* Check the issue-6 fields of p (thresholds, erosion, edge mode). */
cutout_status cutout__edge_check(const cutout_remove_params *p, char *err);

/*
 * The cutout of one mask as p asks: alpha matting (falling back as rembg
 * does, with the reason as the ctx's warning), else the edge mode:
 * decontaminate, straight (putalpha) or premultiplied (naive).  Times the
 * matting stage.
 */
cutout_status cutout__edge_cutout(cutout_ctx *c, const cutout_image *img,
                                  const cutout_image *mask,
                                  const cutout_remove_params *p,
                                  cutout_image **out);

/* --crop: the rectangle, planned on the cutout before its background. */
struct cutout__rect {
  int set; /* 0: nothing to crop */
  uint32_t x, y, w, h;
};
void cutout__crop_plan(cutout_ctx *c, const cutout_image *img,
                       const cutout_remove_params *p, struct cutout__rect *r);
/* Replace *img by its rectangle r (no-op when r is not set). */
cutout_status cutout__crop_apply(cutout_ctx *c, const struct cutout__rect *r,
                                 cutout_image **img);

#endif
