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
  p.precond = CUTOUT_PRECOND_ICT;
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
  /* ICT: the factor by columns (CSC); column j is entries [cbeg[j],
   * cend[j]) of its unit's buffer, the diagonal first.  Strips have a
   * buffer each, the separators share the last one. */
  struct colbuf *cb;
  size_t *cbeg, *cend;
  size_t sep0;      /* first separator row (n when there are none) */
  size_t *spos;     /* left-looking: next unconsumed entry of each column */
  int32_t *head, *next; /* columns waiting for each row (linked lists) */
  double *dg;       /* running diagonal */
  double *dsep;     /* nb x nsep: strips' diagonal decrements on separator
                       rows, and in the solves their scattered updates */
  struct pending *pend; /* nb: strip columns whose next row is a separator */
  double thr;       /* drop threshold in force */
  int ict_cap;      /* the factor in force had to give up on fill */
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
      for (size_t f = klo; f < kd; f++) sum -= (double)lk[f - klo] * ws[a->col[f]];
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

/* ------------------------------------------ thresholded IC (ICT) */

/*
 * Left-looking incomplete Cholesky with a drop threshold, the preconditioner
 * pymatting uses (its ichol): column j gathers A's column j, subtracts
 * L_jk times the rest of every earlier column k with L_jk != 0 (found
 * through per-row lists of waiting columns), divides by the pivot, and
 * keeps the entries with |L_ij| > thr.  The diagonal is updated with every
 * computed entry, kept or dropped (pymatting's diag_keep_discarded).  A
 * non-positive pivot restarts with the next diagonal shift, too much fill
 * with the next threshold (each strip may hold FILL_CAP times its share of
 * A).  Strips factor in parallel; what they would write to separator rows
 * (list links and diagonal updates) is kept per strip and merged, in strip
 * order, before thread 0 factors the separators.
 */
#define FILL_CAP 2
static const double THRESHOLDS[] = {1e-4, 1e-3, 1e-2};
#define NTHRESHOLDS (sizeof THRESHOLDS / sizeof THRESHOLDS[0])

struct colbuf {
  size_t nnz, cap, limit;
  uint32_t *row;
  float *val;
};

struct pending {
  size_t n, cap;
  uint32_t *col;
};

/* Per-thread scratch of the factorisation. */
struct ict_work {
  double *a;      /* dense accumulator, n */
  size_t *mark;   /* mark[m] == j + 1: a[m] is live for column j */
  uint32_t *pat;  /* live rows of the column */
};

static int colbuf_push(struct colbuf *b, size_t row, float v)
{
  if (b->nnz == b->cap) {
    if (b->limit && b->cap >= b->limit) return -2; /* too much fill */
    size_t nc = b->cap ? b->cap * 2 : 1024;
    if (b->limit && nc > b->limit) nc = b->limit;
    uint32_t *r = realloc(b->row, nc * sizeof *r);
    if (!r) return -3;
    b->row = r;
    float *w = realloc(b->val, nc * sizeof *w);
    if (!w) return -3;
    b->val = w;
    b->cap = nc;
  }
  b->row[b->nnz] = (uint32_t)row;
  b->val[b->nnz++] = v;
  return 0;
}

static int pending_push(struct pending *p, size_t col)
{
  if (p->n == p->cap) {
    size_t nc = p->cap ? p->cap * 2 : 256;
    uint32_t *c = realloc(p->col, nc * sizeof *c);
    if (!c) return -3;
    p->col = c;
    p->cap = nc;
  }
  p->col[p->n++] = (uint32_t)col;
  return 0;
}

/* The buffer that holds column k. */
static struct colbuf *colbuf_of(const struct solver *s, size_t k)
{
  if (k >= s->sep0) return &s->cb[s->nb];
  size_t lo = 0, hi = s->nb; /* ustart[lo] <= k < ustart[hi] */
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    if (s->ustart[mid] <= k)
      lo = mid;
    else
      hi = mid;
  }
  return &s->cb[lo];
}

/* Column k now waits for row `row`; strip is the strip being factored
 * (SIZE_MAX in the separator phase). */
static int ict_link(struct solver *s, size_t k, size_t row, size_t strip)
{
  if (strip != SIZE_MAX && row >= s->sep0)
    return pending_push(&s->pend[strip], k);
  s->next[k] = s->head[row];
  s->head[row] = (int32_t)k;
  return 0;
}

static int cmp_u32(const void *x, const void *y)
{
  uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
  return a < b ? -1 : a > b;
}

/* Column j of the factor into buf.  0, -1 non-positive pivot, -2 too much
 * fill, -3 out of memory. */
static int ict_column(struct solver *s, struct ict_work *w, size_t j,
                      struct colbuf *buf, size_t strip)
{
  const struct cutout__csr *a = s->a;
  const size_t nsep = a->n - s->sep0;
  size_t np = 0;
  /* A's column j below the diagonal: row j right of it (A is symmetric) */
  for (size_t e = s->diag[j] + 1; e < a->ptr[j + 1]; e++) {
    size_t m = a->col[e];
    w->a[m] = a->val[e];
    w->mark[m] = j + 1;
    w->pat[np++] = (uint32_t)m;
  }
  for (int32_t k = s->head[j]; k >= 0;) {
    const int32_t kn = s->next[k];
    const struct colbuf *kb = colbuf_of(s, (size_t)k);
    size_t pos = s->spos[k];
    const double ljk = kb->val[pos];
    const size_t end = s->cend[k];
    for (size_t q = pos + 1; q < end; q++) {
      const size_t m = kb->row[q];
      if (w->mark[m] != j + 1) {
        w->mark[m] = j + 1;
        w->a[m] = 0.0;
        w->pat[np++] = (uint32_t)m;
      }
      w->a[m] -= (double)kb->val[q] * ljk;
    }
    s->spos[k] = ++pos;
    if (pos < end && ict_link(s, (size_t)k, kb->row[pos], strip)) return -3;
    k = kn;
  }
  s->head[j] = -1;
  const double d = s->dg[j];
  if (!(d > 0.0) || !isfinite(d)) return -1;
  const double ljj = sqrt(d);
  s->cbeg[j] = buf->nnz;
  int rc = colbuf_push(buf, j, (float)ljj);
  if (rc) return rc;
  if (np > 1) qsort(w->pat, np, sizeof *w->pat, cmp_u32);
  double *dsep = strip != SIZE_MAX ? s->dsep + strip * nsep : NULL;
  for (size_t t = 0; t < np; t++) {
    const size_t m = w->pat[t];
    const double v = w->a[m] / ljj;
    if (dsep && m >= s->sep0)
      dsep[m - s->sep0] += v * v;
    else
      s->dg[m] -= v * v;
    if (fabs(v) > s->thr && (rc = colbuf_push(buf, m, (float)v))) return rc;
  }
  s->cend[j] = buf->nnz;
  s->spos[j] = s->cbeg[j] + 1;
  if (s->spos[j] < s->cend[j] &&
      ict_link(s, j, buf->row[s->spos[j]], strip))
    return -3;
  return 0;
}

/* Prepare the rows of one unit (strip k, or every separator with
 * strip == SIZE_MAX) for a factorisation with this shift. */
static void ict_reset(struct solver *s, size_t r0, size_t r1, double shift,
                      struct colbuf *buf, size_t strip)
{
  for (size_t i = r0; i < r1; i++) {
    s->dg[i] = s->a->val[s->diag[i]] + shift;
    s->head[i] = -1;
  }
  buf->nnz = 0;
  buf->limit = FILL_CAP * (s->a->ptr[r1] - s->a->ptr[r0]) + (r1 - r0);
  if (s->thr >= THRESHOLDS[NTHRESHOLDS - 1]) buf->limit = 0; /* last try */
  if (strip != SIZE_MAX) {
    s->pend[strip].n = 0;
    memset(s->dsep + strip * (s->a->n - s->sep0), 0,
           (s->a->n - s->sep0) * sizeof *s->dsep);
  }
}

static int ict_strip(struct solver *s, struct ict_work *w, size_t k)
{
  const size_t r0 = s->ustart[k], r1 = s->ustart[k + 1];
  for (size_t j = r0; j < r1; j++) {
    int rc = ict_column(s, w, j, &s->cb[k], k);
    if (rc) return rc;
  }
  return 0;
}

/* Thread 0, after every strip: merge what the strips left for the
 * separator rows, then factor the separators. */
static int ict_separators(struct solver *s, struct ict_work *w)
{
  const size_t n = s->a->n, nsep = n - s->sep0;
  for (size_t k = 0; k < s->nb; k++) {
    const double *d = s->dsep + k * nsep;
    for (size_t i = 0; i < nsep; i++) s->dg[s->sep0 + i] -= d[i];
    const struct colbuf *kb = &s->cb[k];
    for (size_t t = 0; t < s->pend[k].n; t++) {
      const size_t c = s->pend[k].col[t];
      ict_link(s, c, kb->row[s->spos[c]], SIZE_MAX);
    }
  }
  for (size_t j = s->sep0; j < n; j++) {
    int rc = ict_column(s, w, j, &s->cb[s->nb], SIZE_MAX);
    if (rc) return rc;
  }
  return 0;
}

/* Forward substitution L y = r on strip k (y in z), column by column;
 * updates of separator rows go to the strip's own accumulator. */
static void ict_forward_strip(const struct solver *s, size_t k)
{
  const size_t r0 = s->ustart[k], r1 = s->ustart[k + 1];
  const size_t nsep = s->a->n - s->sep0;
  const struct colbuf *b = &s->cb[k];
  double *z = s->z, *acc = s->dsep + k * nsep;
  memcpy(z + r0, s->r + r0, (r1 - r0) * sizeof *z);
  memset(acc, 0, nsep * sizeof *acc);
  for (size_t j = r0; j < r1; j++) {
    const size_t e0 = s->cbeg[j], e1 = s->cend[j];
    const double v = z[j] / (double)b->val[e0];
    z[j] = v;
    for (size_t e = e0 + 1; e < e1; e++) {
      const size_t m = b->row[e];
      if (m < s->sep0)
        z[m] -= (double)b->val[e] * v;
      else
        acc[m - s->sep0] += (double)b->val[e] * v;
    }
  }
}

/* Thread 0: the separators' rows, forward then backward. */
static void ict_separators_solve(const struct solver *s)
{
  const size_t n = s->a->n, nsep = n - s->sep0;
  const struct colbuf *b = &s->cb[s->nb];
  double *z = s->z;
  for (size_t i = 0; i < nsep; i++) {
    double v = s->r[s->sep0 + i];
    for (size_t k = 0; k < s->nb; k++) v -= s->dsep[k * nsep + i];
    z[s->sep0 + i] = v;
  }
  for (size_t j = s->sep0; j < n; j++) {
    const size_t e0 = s->cbeg[j], e1 = s->cend[j];
    const double v = z[j] / (double)b->val[e0];
    z[j] = v;
    for (size_t e = e0 + 1; e < e1; e++) z[b->row[e]] -= (double)b->val[e] * v;
  }
  for (size_t j = n; j-- > s->sep0;) {
    const size_t e0 = s->cbeg[j], e1 = s->cend[j];
    double v = z[j];
    for (size_t e = e0 + 1; e < e1; e++) v -= (double)b->val[e] * z[b->row[e]];
    z[j] = v / (double)b->val[e0];
  }
}

/* Backward substitution L' z = y on strip k, gathering (rows below in the
 * order, separators included, are final). */
static void ict_backward_strip(const struct solver *s, size_t k)
{
  const size_t r0 = s->ustart[k], r1 = s->ustart[k + 1];
  const struct colbuf *b = &s->cb[k];
  double *z = s->z;
  for (size_t j = r1; j-- > r0;) {
    const size_t e0 = s->cbeg[j], e1 = s->cend[j];
    double v = z[j];
    for (size_t e = e0 + 1; e < e1; e++) v -= (double)b->val[e] * z[b->row[e]];
    z[j] = v / (double)b->val[e0];
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
  if (s->precond == CUTOUT_PRECOND_ICT) {
    struct ict_work w = {NULL, NULL, NULL};
    w.a = malloc(a->n * sizeof *w.a);
    w.mark = calloc(a->n, sizeof *w.mark);
    w.pat = malloc(a->n * sizeof *w.pat);
    if (!w.a || !w.mark || !w.pat) atomic_store(&s->oom, 1);
    int ok = 0, stop = 0;
    for (size_t ti = 0; ti < NTHRESHOLDS && !stop; ti++) {
      stop = 1; /* unless too much fill sends us to the next threshold */
      for (size_t si = 0; si < NSHIFTS; si++) {
        if (tid == 0) s->thr = THRESHOLDS[ti];
        barrier_wait(&s->bar, nt);
        for (size_t k = sh->b0; k < sh->b1; k++)
          ict_reset(s, s->ustart[k], s->ustart[k + 1], SHIFTS[si], &s->cb[k],
                    k);
        if (tid == 0)
          ict_reset(s, s->sep0, a->n, SHIFTS[si], &s->cb[s->nb], SIZE_MAX);
        barrier_wait(&s->bar, nt);
        int rc = 0;
        if (!atomic_load(&s->oom))
          for (size_t k = sh->b0; k < sh->b1 && !rc; k++)
            rc = ict_strip(s, &w, k);
        if (rc) atomic_store(&s->fact_failed, rc);
        barrier_wait(&s->bar, nt);
        if (tid == 0 && !atomic_load(&s->fact_failed) &&
            !atomic_load(&s->oom) && (rc = ict_separators(s, &w)))
          atomic_store(&s->fact_failed, rc);
        barrier_wait(&s->bar, nt);
        const int failed = atomic_load(&s->fact_failed);
        barrier_wait(&s->bar, nt); /* all have read the flag */
        if (tid == 0) atomic_store(&s->fact_failed, 0);
        if (failed == -3) atomic_store(&s->oom, 1);
        if (failed == -3 || atomic_load(&s->oom)) break;
        if (!failed) {
          ok = 1;
          if (tid == 0) {
            s->shift = SHIFTS[si];
            s->ict_cap = ti > 0;
          }
          break;
        }
        if (failed == -2) {
          stop = 0;
          break;
        }
        /* -1: a non-positive pivot, try the next shift */
      }
    }
    /* every shift failed: pymatting's ichol raises ValueError there */
    if (!ok && tid == 0) s->shift = -1.0;
    free(w.a);
    free(w.mark);
    free(w.pat);
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
    case CUTOUT_PRECOND_ICT: ict_forward_strip(s, u); break;
    case CUTOUT_PRECOND_IC0: forward_unit(s, r0, r1); break;
    case CUTOUT_PRECOND_JACOBI:
      for (size_t i = r0; i < r1; i++) s->z[i] = s->r[i] * s->inv_diag[i];
      break;
    default: memcpy(s->z + r0, s->r + r0, (r1 - r0) * sizeof *s->z); break;
    }
  }
}

static void precond_middle(const struct solver *s, const struct share *sh,
                           int tid)
{
  if (s->precond == CUTOUT_PRECOND_ICT) {
    /* the separators were factored as one block: one thread solves it */
    if (tid == 0 && s->sep0 < s->a->n) ict_separators_solve(s);
    return;
  }
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
    if (s->precond == CUTOUT_PRECOND_ICT)
      ict_backward_strip(s, u);
    else if (s->precond == CUTOUT_PRECOND_IC0)
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
  precond_middle(s, &sh, tid);
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
    precond_middle(s, &sh, tid);
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
  s.precond = prm->precond;
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
  } else if (s.precond == CUTOUT_PRECOND_ICT) {
    s.sep0 = s.ustart[s.nb];
    const size_t nsep = n - s.sep0;
    s.cb = calloc(s.nb + 1, sizeof *s.cb);
    s.pend = calloc(s.nb, sizeof *s.pend);
    s.cbeg = malloc(n * sizeof *s.cbeg);
    s.cend = malloc(n * sizeof *s.cend);
    s.spos = malloc(n * sizeof *s.spos);
    s.head = malloc(n * sizeof *s.head);
    s.next = malloc(n * sizeof *s.next);
    s.dg = malloc(n * sizeof *s.dg);
    s.dsep = calloc(s.nb * nsep + 1, sizeof *s.dsep);
    if (!s.cb || !s.pend || !s.cbeg || !s.cend || !s.spos || !s.head ||
        !s.next || !s.dg || !s.dsep)
      goto oom;
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
  res->threshold = s.precond == CUTOUT_PRECOND_ICT ? s.thr : 0.0;
  if (s.precond == CUTOUT_PRECOND_ICT && s.cb)
    for (size_t k = 0; k <= s.nb; k++) res->factor_nnz += s.cb[k].nnz;
  else if (s.precond == CUTOUT_PRECOND_IC0)
    res->factor_nnz = nlow;
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
  if (s.cb)
    for (size_t k = 0; k <= s.nb; k++) {
      free(s.cb[k].row);
      free(s.cb[k].val);
    }
  if (s.pend)
    for (size_t k = 0; k < s.nb; k++) free(s.pend[k].col);
  free(s.cb);
  free(s.pend);
  free(s.cbeg);
  free(s.cend);
  free(s.spos);
  free(s.head);
  free(s.next);
  free(s.dg);
  free(s.dsep);
  return st;
}
