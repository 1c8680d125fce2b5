/*
 * matting_pcg.c: the preconditioned conjugate gradient solver of the alpha
 * matte, multithreaded, with pymatting's cg() semantics (x0 = 0, stop when
 * ||r|| < rtol ||b||, give up after maxiter, never "converge" when b = 0).
 *
 * DESIGN
 * Preconditioner: incomplete Cholesky with zero fill, IC(0), with
 * pymatting's ladder of diagonal shifts when a pivot is not positive (the
 * matting Laplacian is not an M-matrix; on real photos shift 0.1 is typical
 * and is also about the best one).  Measured on the conformance photos it
 * needs 4-6x fewer iterations than Jacobi; docs/matting.md has the table.
 *
 * Parallelism without dropping couplings: matting.c orders the unknowns as
 * strips of the band followed by thin separators (one-level domain
 * decomposition).  Strips couple only to themselves and to separators,
 * separators only to themselves and their two strips.  So the exact IC(0)
 * factor of that ordering is built strip by strip in parallel, then
 * separator by separator in parallel, and the triangular solves go:
 * forward strips | forward + backward separators | backward strips.
 * The factor is float32 (it only steers the iteration; residuals are
 * float64) and stored compactly, sharing the matrix's column indices.
 *
 * The threads form a team for the whole solve (SPMD): each owns a fixed
 * share of strips and separators and they meet at five barriers per
 * iteration.  Global sums are added per strip / separator in layout order,
 * so the iterates, and the result, are the same for any number of threads.
 */
#include "matting.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 64
/* Below this many unknowns one thread is faster than a team. */
#define MIN_ROWS_FOR_TEAM 8192

struct cutout__pcg_params cutout__pcg_default_params(void)
{
  struct cutout__pcg_params p;
  memset(&p, 0, sizeof p);
  p.precond = CUTOUT_PRECOND_IC0;
  p.rtol = 1e-7;
  p.maxiter = 10000;
  p.nthreads = 1;
  return p;
}

void cutout__pcg_layout_free(struct cutout__pcg_layout *l)
{
  if (!l) return;
  free(l->bstart);
  free(l->sstart);
  memset(l, 0, sizeof *l);
}

/* ------------------------------------------------------------------ team */

void cutout__team_pause(unsigned *spins)
{
  if (++*spins > 4000) {
    sched_yield();
    return;
  }
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

struct team {
  void (*fn)(void *arg, int tid, int n);
  void *arg;
  atomic_int go; /* the team size once every thread is created, else 0 */
};

struct member {
  struct team *t;
  int tid;
};

static void *member_main(void *p)
{
  struct member *m = p;
  int n;
  unsigned spins = 0;
  while (!(n = atomic_load_explicit(&m->t->go, memory_order_acquire)))
    cutout__team_pause(&spins);
  if (m->tid < n) m->t->fn(m->t->arg, m->tid, n);
  return NULL;
}

void cutout__team_run(int nthreads, void (*fn)(void *arg, int tid, int n),
                      void *arg)
{
  if (nthreads > MAX_THREADS) nthreads = MAX_THREADS;
  if (nthreads <= 1) {
    fn(arg, 0, 1);
    return;
  }
  struct team t;
  t.fn = fn;
  t.arg = arg;
  atomic_init(&t.go, 0);
  pthread_t tids[MAX_THREADS];
  struct member m[MAX_THREADS];
  int started = 1;
  for (int i = 1; i < nthreads; i++) {
    m[i].t = &t;
    m[i].tid = i;
    if (pthread_create(&tids[i], NULL, member_main, &m[i]) != 0) break;
    started++;
  }
  atomic_store_explicit(&t.go, started, memory_order_release);
  fn(arg, 0, started);
  for (int i = 1; i < started; i++) pthread_join(tids[i], NULL);
}

/* A counting barrier for n team members. */
struct barrier {
  atomic_uint arrived;
  atomic_uint gen;
};

static void barrier_wait(struct barrier *b, int n)
{
  if (n <= 1) return;
  unsigned g = atomic_load_explicit(&b->gen, memory_order_acquire);
  if (atomic_fetch_add_explicit(&b->arrived, 1, memory_order_acq_rel) ==
      (unsigned)n - 1) {
    atomic_store_explicit(&b->arrived, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->gen, 1, memory_order_release);
    return;
  }
  unsigned spins = 0;
  while (atomic_load_explicit(&b->gen, memory_order_acquire) == g)
    cutout__team_pause(&spins);
}

/* ---------------------------------------------------------------- solver */

enum { SUM_PQ, SUM_RR, SUM_RZ, SUM_BB, NSUMS };

static const double SHIFTS[] = {0.0, 1e-4, 1e-3, 1e-2, 0.1, 0.5, 1.0,
                                10.0, 100, 1e3, 1e4, 1e5};
#define NSHIFTS (sizeof SHIFTS / sizeof SHIFTS[0])

struct solver {
  const struct cutout__csr *a;
  const double *b;
  double *x, *r, *z, *p, *q;
  const struct cutout__pcg_params *prm;
  int precond;
  /* units: strips 0..nb-1, then separators nb..nb+ns-1; unit u holds the
   * rows [ustart[u], ustart[u + 1]) */
  size_t nb, ns, nu;
  size_t *ustart;
  size_t *diag;     /* position of each row's diagonal in a */
  size_t *lptr;     /* IC(0): row i's factor values start at lval[lptr[i]]:
                       one per entry of a in [ptr[i], diag[i]] */
  float *lval;
  double *inv_diag; /* Jacobi */
  double *part;     /* nu * NSUMS partial sums */
  struct barrier bar;
  atomic_int fact_failed;
  atomic_int oom;
  /* shared decisions, written by thread 0 between barriers */
  int cancel_seen;
  int stop;         /* 1 converged, 2 breakdown / b = 0, 3 canceled, 4 max */
  int iterations;
  double rel, shift, t_setup;
};

/* IC(0) of the rows of one unit, with the given diagonal shift.  Row i's
 * entries L_ik = (a_ik - sum_{m<k} L_im L_km) / L_kk, the sum taken over
 * row k's entries looked up in a dense scatter of row i (ws, n doubles,
 * zero on entry and on exit).  0, or -1 on a non-positive pivot. */
static int ic0_unit(struct solver *s, size_t r0, size_t r1, double shift,
                    double *ws)
{
  const struct cutout__csr *a = s->a;
  for (size_t i = r0; i < r1; i++) {
    const size_t lo = a->ptr[i], d = s->diag[i];
    float *li = s->lval + s->lptr[i];
    double dd = a->val[d] + shift;
    for (size_t e = lo; e < d; e++) {
      const size_t k = a->col[e];
      const size_t klo = a->ptr[k], kd = s->diag[k];
      const float *lk = s->lval + s->lptr[k];
      double sum = a->val[e];
      for (size_t f = klo; f < kd; f++)
        sum -= (double)lk[f - klo] * ws[a->col[f]];
      float lik = (float)(sum / (double)lk[kd - klo]);
      li[e - lo] = lik;
      ws[k] = (double)lik;
      dd -= (double)lik * (double)lik;
    }
    for (size_t e = lo; e < d; e++) ws[a->col[e]] = 0.0;
    if (!(dd > 0.0) || !isfinite(dd)) return -1;
    li[d - lo] = (float)sqrt(dd);
    if (!(li[d - lo] > 0.0f)) return -1;
  }
  return 0;
}

/* Forward substitution L y = r on one unit's rows (y in z). */
static void forward_unit(const struct solver *s, size_t r0, size_t r1)
{
  const struct cutout__csr *a = s->a;
  const double *r = s->r;
  double *z = s->z;
  for (size_t i = r0; i < r1; i++) {
    const size_t lo = a->ptr[i], d = s->diag[i];
    const float *li = s->lval + s->lptr[i];
    double v = r[i];
    for (size_t e = lo; e < d; e++) v -= (double)li[e - lo] * z[a->col[e]];
    z[i] = v / (double)li[d - lo];
  }
}

/* Backward substitution L' z = y on one unit's rows, by columns of L'
 * (rows of L), scattering into the rows below in the order. */
static void backward_unit(const struct solver *s, size_t r0, size_t r1)
{
  const struct cutout__csr *a = s->a;
  double *z = s->z;
  for (size_t i = r1; i-- > r0;) {
    const size_t lo = a->ptr[i], d = s->diag[i];
    const float *li = s->lval + s->lptr[i];
    const double v = z[i] / (double)li[d - lo];
    z[i] = v;
    for (size_t e = lo; e < d; e++) z[a->col[e]] -= (double)li[e - lo] * v;
  }
}

static double total(const struct solver *s, int kind)
{
  double t = 0.0;
  for (size_t u = 0; u < s->nu; u++) t += s->part[u * NSUMS + kind];
  return t;
}

/* The units a member owns: a contiguous share of the strips and one of
 * the separators. */
struct share {
  size_t b0, b1, s0, s1;
};

static struct share share_of(const struct solver *s, int tid, int nt)
{
  struct share sh;
  sh.b0 = s->nb * (size_t)tid / (size_t)nt;
  sh.b1 = s->nb * (size_t)(tid + 1) / (size_t)nt;
  sh.s0 = s->nb + s->ns * (size_t)tid / (size_t)nt;
  sh.s1 = s->nb + s->ns * (size_t)(tid + 1) / (size_t)nt;
  return sh;
}

/* for each unit u of a share: its strips, then its separators */
#define FOR_UNITS(u, sh)                                                   \
  for (int u##_k = 0; u##_k < 2; u##_k++)                                  \
    for (size_t u = u##_k ? (sh).s0 : (sh).b0;                             \
         u < (u##_k ? (sh).s1 : (sh).b1); u++)

static void setup_member(struct solver *s, int tid, int nt,
                         const struct share *sh)
{
  const struct cutout__csr *a = s->a;
  if (s->precond == CUTOUT_PRECOND_JACOBI) {
    FOR_UNITS(u, *sh)
    for (size_t i = s->ustart[u]; i < s->ustart[u + 1]; i++) {
      double d = a->val[s->diag[i]];
      s->inv_diag[i] = d > 0.0 ? 1.0 / d : 1.0;
    }
    return;
  }
  if (s->precond != CUTOUT_PRECOND_IC0) return;
  /* The scatter spans every column a unit can reach (its own rows and, for
   * a separator, its two strips): simplest as one n-sized array. */
  double *ws = calloc(a->n, sizeof *ws);
  if (!ws) atomic_store(&s->oom, 1);
  for (size_t si = 0; si < NSHIFTS; si++) {
    int bad = 0;
    if (ws)
      for (size_t u = sh->b0; u < sh->b1 && !bad; u++)
        bad = ic0_unit(s, s->ustart[u], s->ustart[u + 1], SHIFTS[si], ws);
    if (bad) atomic_store(&s->fact_failed, 1);
    barrier_wait(&s->bar, nt);
    if (ws && !atomic_load(&s->fact_failed))
      for (size_t u = sh->s0; u < sh->s1 && !bad; u++)
        bad = ic0_unit(s, s->ustart[u], s->ustart[u + 1], SHIFTS[si], ws);
    if (bad) atomic_store(&s->fact_failed, 1);
    barrier_wait(&s->bar, nt);
    int failed = atomic_load(&s->fact_failed) || atomic_load(&s->oom);
    barrier_wait(&s->bar, nt); /* all have read the flag */
    if (!failed) {
      if (tid == 0) s->shift = SHIFTS[si];
      break;
    }
    if (atomic_load(&s->oom)) break;
    if (tid == 0) atomic_store(&s->fact_failed, 0);
    barrier_wait(&s->bar, nt);
    if (si + 1 == NSHIFTS && tid == 0) s->shift = -1.0; /* all failed */
  }
  free(ws);
}

/* z = M^-1 r for a member's units, in three phases with a barrier
 * between them: the strips' forward part, the separators, the strips'
 * backward part. */
static void precond_forward(const struct solver *s, const struct share *sh)
{
  for (size_t u = sh->b0; u < sh->b1; u++) {
    const size_t r0 = s->ustart[u], r1 = s->ustart[u + 1];
    switch (s->precond) {
    case CUTOUT_PRECOND_IC0: forward_unit(s, r0, r1); break;
    case CUTOUT_PRECOND_JACOBI:
      for (size_t i = r0; i < r1; i++) s->z[i] = s->r[i] * s->inv_diag[i];
      break;
    default: memcpy(s->z + r0, s->r + r0, (r1 - r0) * sizeof *s->z); break;
    }
  }
}

static void precond_middle(const struct solver *s, const struct share *sh)
{
  for (size_t u = sh->s0; u < sh->s1; u++) {
    const size_t r0 = s->ustart[u], r1 = s->ustart[u + 1];
    if (s->precond == CUTOUT_PRECOND_IC0) {
      forward_unit(s, r0, r1);
      backward_unit(s, r0, r1);
    } else if (s->precond == CUTOUT_PRECOND_JACOBI) {
      for (size_t i = r0; i < r1; i++) s->z[i] = s->r[i] * s->inv_diag[i];
    } else {
      memcpy(s->z + r0, s->r + r0, (r1 - r0) * sizeof *s->z);
    }
  }
}

static void precond_backward(const struct solver *s, const struct share *sh)
{
  for (size_t u = sh->b0; u < sh->b1; u++) {
    if (s->precond == CUTOUT_PRECOND_IC0)
      backward_unit(s, s->ustart[u], s->ustart[u + 1]);
  }
}

static void solve_member(void *arg, int tid, int nt)
{
  struct solver *s = arg;
  const struct cutout__csr *a = s->a;
  const struct share sh = share_of(s, tid, nt);
  double *x = s->x, *r = s->r, *z = s->z, *p = s->p, *q = s->q;

  setup_member(s, tid, nt, &sh);
  barrier_wait(&s->bar, nt);
  if (tid == 0) s->t_setup = cutout__now();
  if (atomic_load(&s->oom) || s->shift < 0.0) {
    /* out of memory, or no shift gave a factor: pymatting's ichol
     * raises ValueError there */
    if (tid == 0) s->stop = 2;
    return;
  }

  /* x = 0, r = b, z = M^-1 r, p = z */
  FOR_UNITS(u, sh) {
    size_t r0 = s->ustart[u], r1 = s->ustart[u + 1];
    double bb = 0.0;
    for (size_t i = r0; i < r1; i++) {
      x[i] = 0.0;
      r[i] = s->b[i];
      bb += r[i] * r[i];
    }
    s->part[u * NSUMS + SUM_BB] = bb;
  }
  precond_forward(s, &sh);
  barrier_wait(&s->bar, nt);
  precond_middle(s, &sh);
  barrier_wait(&s->bar, nt);
  precond_backward(s, &sh);
  FOR_UNITS(u, sh) {
    size_t r0 = s->ustart[u], r1 = s->ustart[u + 1];
    double rz = 0.0;
    for (size_t i = r0; i < r1; i++) {
      rz += r[i] * z[i];
      p[i] = z[i];
    }
    s->part[u * NSUMS + SUM_RZ] = rz;
  }
  barrier_wait(&s->bar, nt);
  const double norm_b = sqrt(total(s, SUM_BB));
  double rz = total(s, SUM_RZ);
  if (!(norm_b > 0.0) || !isfinite(norm_b)) {
    /* b == 0: pymatting's test 0 < rtol * 0 fails and its next step
     * divides 0 by 0, so it raises after maxiter: no convergence. */
    if (tid == 0) s->stop = 2;
    return;
  }
  const double limit = s->prm->rtol * norm_b;

  for (int it = 0;; it++) {
    /* q = A p, p.q */
    FOR_UNITS(u, sh) {
      size_t r0 = s->ustart[u], r1 = s->ustart[u + 1];
      double pq = 0.0;
      for (size_t i = r0; i < r1; i++) {
        double v = 0.0;
        for (size_t e = a->ptr[i]; e < a->ptr[i + 1]; e++)
          v += a->val[e] * p[a->col[e]];
        q[i] = v;
        pq += p[i] * v;
      }
      s->part[u * NSUMS + SUM_PQ] = pq;
    }
    barrier_wait(&s->bar, nt);
    /* Every member reads the same partials, so all decide alike. */
    /* pymatting's cg() has no breakdown test: a non-positive p.Ap (the
     * Laplacian pymatting builds is not exactly positive definite: its
     * closed-form 3x3 inverse loses digits in flat windows) just gives a
     * negative step.  Only non-finite values end the solve (where numpy
     * would go on with NaN until maxiter). */
    const double pq = total(s, SUM_PQ);
    const int breakdown = pq == 0.0 || !isfinite(pq);
    const double alpha = rz / pq;
    if (!breakdown) {
      FOR_UNITS(u, sh) {
        size_t r0 = s->ustart[u], r1 = s->ustart[u + 1];
        double rr = 0.0;
        for (size_t i = r0; i < r1; i++) {
          x[i] += alpha * p[i];
          r[i] -= alpha * q[i];
          rr += r[i] * r[i];
        }
        s->part[u * NSUMS + SUM_RR] = rr;
      }
      precond_forward(s, &sh);
    }
    if (tid == 0)
      s->cancel_seen = s->prm->cancel && atomic_load(s->prm->cancel);
    barrier_wait(&s->bar, nt);
    const double norm_r = breakdown ? NAN : sqrt(total(s, SUM_RR));
    int stop = s->cancel_seen ? 3 : 0;
    if (!stop) {
      if (breakdown || !isfinite(norm_r))
        stop = 2;
      else if (norm_r < limit)
        stop = 1;
      else if (it + 1 >= s->prm->maxiter)
        stop = 4;
    }
    if (stop) {
      if (tid == 0) {
        s->stop = stop;
        s->iterations = it + 1;
        s->rel = norm_r / norm_b;
      }
      return;
    }
    precond_middle(s, &sh);
    barrier_wait(&s->bar, nt);
    precond_backward(s, &sh);
    FOR_UNITS(u, sh) {
      double t = 0.0;
      for (size_t i = s->ustart[u]; i < s->ustart[u + 1]; i++) t += r[i] * z[i];
      s->part[u * NSUMS + SUM_RZ] = t;
    }
    barrier_wait(&s->bar, nt);
    const double rz_new = total(s, SUM_RZ);
    const double beta = rz_new / rz;
    rz = rz_new;
    FOR_UNITS(u, sh)
    for (size_t i = s->ustart[u]; i < s->ustart[u + 1]; i++)
      p[i] = z[i] + beta * p[i];
    barrier_wait(&s->bar, nt);
  }
}

cutout_status cutout__pcg(const struct cutout__csr *a, const double *b,
                          double *x, const struct cutout__pcg_params *prm,
                          struct cutout__pcg_result *res, char *err)
{
  memset(res, 0, sizeof *res);
  const size_t n = a->n;
  if (n == 0) return CUTOUT_OK; /* pymatting never stops: not converged */
  double t0 = cutout__now();
  cutout_status st = CUTOUT_OK;
  struct solver s;
  memset(&s, 0, sizeof s);
  s.a = a;
  s.b = b;
  s.x = x;
  s.prm = prm;
  /* the direct solver is matting_chol.c's: here it means IC(0) */
  s.precond = prm->precond == CUTOUT_PRECOND_CHOL ? CUTOUT_PRECOND_IC0
                                                  : prm->precond;
  const struct cutout__pcg_layout *l = prm->layout;
  s.nb = l && l->nblocks ? l->nblocks : 1;
  s.ns = l && l->nblocks ? l->nseps : 0;
  s.nu = s.nb + s.ns;
  s.ustart = malloc((s.nu + 1) * sizeof *s.ustart);
  s.part = calloc(s.nu * NSUMS, sizeof *s.part);
  s.diag = malloc(n * sizeof *s.diag);
  s.r = malloc(n * sizeof *s.r);
  s.z = malloc(n * sizeof *s.z);
  s.p = malloc(n * sizeof *s.p);
  s.q = malloc(n * sizeof *s.q);
  if (!s.ustart || !s.part || !s.diag || !s.r || !s.z || !s.p || !s.q)
    goto oom;
  if (l && l->nblocks) {
    memcpy(s.ustart, l->bstart, s.nb * sizeof *s.ustart);
    memcpy(s.ustart + s.nb, l->sstart, (s.ns + 1) * sizeof *s.ustart);
    if (s.ustart[s.nu] != n || l->sstart[0] != l->bstart[s.nb]) {
      st = cutout__err(err, CUTOUT_EINVAL, "pcg: layout does not fit");
      goto done;
    }
  } else {
    s.ustart[0] = 0;
    s.ustart[1] = n;
  }
  /* Every row has its diagonal as soon as the image has a window (3x3 or
   * larger).  Without one the matrix is empty and b = 0: pymatting never
   * converges there, and neither does this. */
  size_t nlow = 0;
  for (size_t i = 0; i < n; i++) {
    size_t e = a->ptr[i];
    while (e < a->ptr[i + 1] && a->col[e] < i) e++;
    if (e == a->ptr[i + 1] || a->col[e] != i) goto done;
    s.diag[i] = e;
    nlow += e - a->ptr[i] + 1;
  }
  if (s.precond == CUTOUT_PRECOND_IC0) {
    s.lptr = malloc(n * sizeof *s.lptr);
    s.lval = malloc(nlow * sizeof *s.lval);
    if (!s.lptr || !s.lval) goto oom;
    for (size_t i = 0, o = 0; i < n; i++) {
      s.lptr[i] = o;
      o += s.diag[i] - a->ptr[i] + 1;
    }
  } else if (s.precond == CUTOUT_PRECOND_JACOBI) {
    s.inv_diag = malloc(n * sizeof *s.inv_diag);
    if (!s.inv_diag) goto oom;
  }

  int nt = prm->nthreads > 1 ? prm->nthreads : 1;
  if ((size_t)nt > s.nb) nt = (int)s.nb;
  if (n < (prm->min_team_rows ? prm->min_team_rows : MIN_ROWS_FOR_TEAM))
    nt = 1;
  atomic_init(&s.bar.arrived, 0);
  atomic_init(&s.bar.gen, 0);
  atomic_init(&s.fact_failed, 0);
  atomic_init(&s.oom, 0);
  cutout__team_run(nt, solve_member, &s);

  res->iterations = s.iterations;
  res->rel_residual = s.rel;
  res->converged = s.stop == 1;
  res->shift = s.shift;
  res->precond = s.precond;
  if (s.precond == CUTOUT_PRECOND_IC0) res->factor_nnz = nlow;
  res->t_setup = s.t_setup - t0;
  res->t_solve = cutout__now() - s.t_setup;
  if (atomic_load(&s.oom)) goto oom;
  if (s.stop == 3) st = cutout__err(err, CUTOUT_ECANCELED, "canceled");
  goto done;
oom:
  st = cutout__err(err, CUTOUT_ENOMEM, "matting: out of memory (solver)");
done:
  free(s.ustart);
  free(s.part);
  free(s.diag);
  free(s.r);
  free(s.z);
  free(s.p);
  free(s.q);
  free(s.lptr);
  free(s.lval);
  free(s.inv_diag);
  return st;
}
