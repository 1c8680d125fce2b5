/*
 * engine.c: the process-wide ONNX Runtime environment and the thread pools
 * every session of the process uses.
 *
 * DESIGN
 * threadplan.c decides everything (counts, spinning, binding, pools) and
 * lists the ORT calls; this file only makes those calls, so what
 * `cutout config` prints is exactly what ORT receives.
 *
 * Shared pools (the default) are ORT's global pools: the env is created
 * with CreateEnvWithGlobalThreadPools and every session with
 * DisablePerSessionThreads, so a second model adds no thread.  ORT's env
 * is a process singleton whose options are fixed by its first creator,
 * hence one engine per process at a time.
 *
 * Every pool thread is created by cutout's callback: it names the thread
 * (cutout-intra-N, cutout-inter-N, visible in /proc/PID/task/TID/comm and
 * in top/perf), starts it already bound to its cpu_binding group, and
 * counts it until ORT joins it.
 */
#include "engine.h"

#include "bigalloc.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define CUTOUT_HAVE_MXCSR 1
#endif

static pthread_mutex_t engine_lock = PTHREAD_MUTEX_INITIALIZER;
static int engine_alive; /* ORT's env is a process singleton */

/* ------------------------------------------------------------------------
 * ORT thread callbacks
 * ---------------------------------------------------------------------- */

struct cutout__thread {
  pthread_t tid;
  OrtThreadWorkerFn fn;
  void *param;
  cutout_engine *engine;
  int intra;
};

static void *thread_main(void *arg)
{
  struct cutout__thread *t = arg;
  t->fn(t->param); /* ORT's worker loop: returns when the pool shuts down */
  return NULL;
}

static OrtCustomThreadHandle thread_create(void *opts, OrtThreadWorkerFn fn,
                                           void *param)
{
  struct cutout__pool *pool = opts;
  cutout_engine *e = pool->engine;
  const struct cutout__plan *pl = e->plan;
  int k = atomic_fetch_add(&pool->created, 1);
  int intra = k < pl->intra_workers;
  int idx = intra ? k + 1 : k - pl->intra_workers + 1;
  struct cutout__thread *t = calloc(1, sizeof *t);
  if (!t) return NULL; /* ORT fails the pool creation */
  t->fn = fn;
  t->param = param;
  t->engine = e;
  t->intra = intra;

  pthread_attr_t attr;
  pthread_attr_init(&attr);
  /* Born on its CPUs: ORT applies the same affinity string again inside
   * the loop, but the thread never runs elsewhere before that. */
  if (intra && pl->groups && idx < pl->ngroups)
    pthread_attr_setaffinity_np(&attr, sizeof(cpu_set_t), &pl->groups[idx]);
  int rc = pthread_create(&t->tid, &attr, thread_main, t);
  pthread_attr_destroy(&attr);
  if (rc) {
    free(t);
    return NULL;
  }
  char name[16];
  snprintf(name, sizeof name, "cutout-%s-%d", intra ? "intra" : "inter", idx);
  pthread_setname_np(t->tid, name);
  atomic_fetch_add(intra ? &e->live_intra : &e->live_inter, 1);
  return (OrtCustomThreadHandle)(void *)t;
}

static void thread_join(OrtCustomThreadHandle h)
{
  struct cutout__thread *t = (struct cutout__thread *)(void *)h;
  if (!t) return;
  pthread_join(t->tid, NULL);
  atomic_fetch_sub(t->intra ? &t->engine->live_intra : &t->engine->live_inter,
                   1);
  free(t);
}

static struct cutout__pool *pool_new(cutout_engine *e)
{
  struct cutout__pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->engine = e;
  atomic_init(&p->created, 0);
  pthread_mutex_lock(&e->lock);
  p->next = e->pools;
  e->pools = p;
  pthread_mutex_unlock(&e->lock);
  return p;
}

/* ------------------------------------------------------------------------
 * ORT's CPU allocator: cutout's huge-page blocks (bigalloc.c)
 * ---------------------------------------------------------------------- */

static cutout_engine *engine_of(const OrtAllocator *a)
{
  return (cutout_engine *)(void *)((char *)a -
                                   offsetof(cutout_engine, big_alloc));
}
static void *ORT_API_CALL big_ort_alloc(OrtAllocator *a, size_t n)
{
  (void)a;
  return cutout__big_alloc(n);
}
static void ORT_API_CALL big_ort_free(OrtAllocator *a, void *p)
{
  (void)a;
  cutout__big_free(p);
}
static const OrtMemoryInfo *ORT_API_CALL big_ort_info(const OrtAllocator *a)
{
  return engine_of(a)->big_mem;
}

/* Sessions then take every CPU buffer (weights, activations) from it, as
 * "session.use_env_allocators" asks. */
static cutout_status register_allocator(cutout_engine *e, char *err)
{
  const OrtApi *api = e->api;
  cutout_status st = cutout__ort_check(
      api->CreateCpuMemoryInfo(OrtDeviceAllocator, OrtMemTypeDefault,
                               &e->big_mem),
      CUTOUT_ERUNTIME, err, "CreateCpuMemoryInfo");
  if (st) return st;
  memset(&e->big_alloc, 0, sizeof e->big_alloc);
  e->big_alloc.version = ORT_API_VERSION;
  e->big_alloc.Alloc = big_ort_alloc;
  e->big_alloc.Free = big_ort_free;
  e->big_alloc.Info = big_ort_info;
  e->big_alloc.Reserve = big_ort_alloc;
  st = cutout__ort_check(api->RegisterAllocator(e->env, &e->big_alloc),
                         CUTOUT_ERUNTIME, err,
                         "RegisterAllocator(cutout huge pages)");
  if (!st) e->big_registered = 1;
  return st;
}

/* ------------------------------------------------------------------------
 * Engine
 * ---------------------------------------------------------------------- */

#define TRY(call, code, what)                                               \
  do {                                                                      \
    st = cutout__ort_check((call), (code), err, (what));                    \
    if (st) goto fail;                                                      \
  } while (0)

static cutout_status create_env(cutout_engine *e, char *err)
{
  const OrtApi *api = e->api;
  const struct cutout__plan *pl = e->plan;
  OrtThreadingOptions *to = NULL;
  cutout_status st = CUTOUT_OK;
  char what[160];

  for (int i = 0; i < pl->n_env_ops; i++) {
    const struct cutout__op *o = &pl->env_ops[i];
    cutout__op_format(o, what, sizeof what);
    if (!to && o->kind != CUTOUT_OP_ENV)
      TRY(api->CreateThreadingOptions(&to), CUTOUT_ENOMEM, "threading options");
    switch (o->kind) {
    case CUTOUT_OP_ENV:
      TRY(api->CreateEnv((OrtLoggingLevel)o->i, "cutout", &e->env),
          CUTOUT_ERUNTIME, "cannot create the ORT env");
      break;
    case CUTOUT_OP_ENV_GLOBAL:
      TRY(api->CreateEnvWithGlobalThreadPools((OrtLoggingLevel)o->i, "cutout",
                                              to, &e->env),
          CUTOUT_ERUNTIME, "cannot create the ORT env with global pools");
      break;
    case CUTOUT_OP_G_INTRA:
      TRY(api->SetGlobalIntraOpNumThreads(to, o->i), CUTOUT_ERUNTIME, what);
      break;
    case CUTOUT_OP_G_INTER:
      TRY(api->SetGlobalInterOpNumThreads(to, o->i), CUTOUT_ERUNTIME, what);
      break;
    case CUTOUT_OP_G_SPIN:
      TRY(api->SetGlobalSpinControl(to, o->i), CUTOUT_ERUNTIME, what);
      break;
    case CUTOUT_OP_G_AFFINITY:
      TRY(api->SetGlobalIntraOpThreadAffinity(to, o->s), CUTOUT_ERUNTIME, what);
      break;
    case CUTOUT_OP_G_DENORMAL:
      TRY(api->SetGlobalDenormalAsZero(to), CUTOUT_ERUNTIME, what);
      break;
    case CUTOUT_OP_G_THREADS: {
      struct cutout__pool *pool = pool_new(e);
      if (!pool) {
        st = cutout__err(err, CUTOUT_ENOMEM, "out of memory");
        goto fail;
      }
      TRY(api->SetGlobalCustomCreateThreadFn(to, thread_create),
          CUTOUT_ERUNTIME, what);
      TRY(api->SetGlobalCustomThreadCreationOptions(to, pool), CUTOUT_ERUNTIME,
          what);
      TRY(api->SetGlobalCustomJoinThreadFn(to, thread_join), CUTOUT_ERUNTIME,
          what);
      break;
    }
    case CUTOUT_OP_ENV_ALLOCATOR:
      if ((st = register_allocator(e, err))) goto fail;
      break;
    default:
      st = cutout__err(err, CUTOUT_ERUNTIME, "internal: %s is no env call",
                       what);
      goto fail;
    }
  }
fail:
  if (to) api->ReleaseThreadingOptions(to); /* ORT copied it */
  return st;
}

static void read_providers(cutout_engine *e)
{
  char **list = NULL;
  int n = 0;
  size_t p = 0;
  e->providers[0] = 0;
  OrtStatus *s = e->api->GetAvailableProviders(&list, &n);
  if (s) {
    e->api->ReleaseStatus(s);
    return;
  }
  for (int i = 0; i < n && p < sizeof e->providers; i++)
    p += (size_t)snprintf(e->providers + p, sizeof e->providers - p, "%s%s",
                          i ? "," : "", list[i]);
  s = e->api->ReleaseAvailableProviders(list, n);
  if (s) e->api->ReleaseStatus(s);
}

static void engine_destroy(cutout_engine *e)
{
  if (!e) return;
  if (e->cpu_mem) e->api->ReleaseMemoryInfo(e->cpu_mem);
  if (e->big_registered) {
    OrtStatus *s = e->api->UnregisterAllocator(e->env, e->big_mem);
    if (s) e->api->ReleaseStatus(s);
  }
  if (e->env) e->api->ReleaseEnv(e->env); /* joins the global pools */
  if (e->big_mem) e->api->ReleaseMemoryInfo(e->big_mem);
  cutout__big_trim();
  while (e->pools) {
    struct cutout__pool *next = e->pools->next;
    free(e->pools);
    e->pools = next;
  }
  if (e->plan) cutout__plan_free(e->plan);
  free(e->plan);
  pthread_mutex_destroy(&e->lock);
  free(e);
}

cutout_status cutout_engine_new(const cutout_engine_params *p,
                                cutout_engine **out, char *errbuf,
                                size_t errbuf_size)
{
  char err[CUTOUT_ERRMSG_MAX] = "";
  cutout_status st = CUTOUT_OK;
  cutout_engine *e = NULL;
  cutout_engine_params def = cutout_engine_default_params();
  int locked = 0;

  if (!out) {
    st = cutout__err(err, CUTOUT_EINVAL, "out is NULL");
    goto done;
  }
  const OrtApi *api = cutout__ort(err);
  if (!api) {
    st = CUTOUT_ERUNTIME;
    goto done;
  }
  e = calloc(1, sizeof *e);
  if (!e || !(e->plan = calloc(1, sizeof *e->plan))) {
    free(e);
    e = NULL;
    st = cutout__err(err, CUTOUT_ENOMEM, "out of memory");
    goto done;
  }
  e->api = api;
  pthread_mutex_init(&e->lock, NULL);
  atomic_init(&e->live_intra, 0);
  atomic_init(&e->live_inter, 0);
  if ((st = cutout__plan_make(p ? p : &def, e->plan, err))) {
    free(e->plan);
    e->plan = NULL;
    goto done;
  }
  e->eff = e->plan->eff;

  pthread_mutex_lock(&engine_lock);
  locked = 1;
  if (engine_alive) {
    st = cutout__err(err, CUTOUT_EINVAL,
                     "an engine already exists: ONNX Runtime allows one "
                     "environment per process; share it");
    goto done;
  }
  if ((st = create_env(e, err))) goto done;
  st = cutout__ort_check(api->CreateCpuMemoryInfo(OrtArenaAllocator,
                                                  OrtMemTypeDefault,
                                                  &e->cpu_mem),
                         CUTOUT_ERUNTIME, err, "CreateCpuMemoryInfo");
  if (st) goto done;
  read_providers(e);
  engine_alive = 1;

done:
  if (locked) pthread_mutex_unlock(&engine_lock);
  if (st) {
    engine_destroy(e);
    if (errbuf && errbuf_size) snprintf(errbuf, errbuf_size, "%s", err);
    return st;
  }
  *out = e;
  return CUTOUT_OK;
}

void cutout_engine_free(cutout_engine *e)
{
  if (!e) return;
  engine_destroy(e);
  pthread_mutex_lock(&engine_lock);
  engine_alive = 0;
  pthread_mutex_unlock(&engine_lock);
}

cutout_engine_params cutout_engine_effective(const cutout_engine *e)
{
  return e ? e->eff : cutout_engine_default_params();
}

cutout_source cutout_engine_source(const cutout_engine *e, const char *field,
                                   const char **reason)
{
  int f = e && field ? cutout__field_find(field) : -1;
  if (reason) *reason = f < 0 ? "" : e->plan->reason[f];
  return f < 0 ? CUTOUT_SOURCE_AUTO : (cutout_source)e->plan->src[f];
}

int cutout_engine_thread_count(const cutout_engine *e)
{
  return e ? atomic_load(&e->live_intra) + atomic_load(&e->live_inter) : 0;
}

cutout_status cutout__session_options(cutout_engine *e, OrtSessionOptions **out,
                                      char *err)
{
  const OrtApi *api = e->api;
  const struct cutout__plan *pl = e->plan;
  OrtSessionOptions *so = NULL;
  char what[200];
  cutout_status st = cutout__ort_check(api->CreateSessionOptions(&so),
                                       CUTOUT_ENOMEM, err, "session options");
  if (st) return st;
  for (int i = 0; i < pl->n_sess_ops; i++) {
    const struct cutout__op *o = &pl->sess_ops[i];
    cutout__op_format(o, what, sizeof what);
    switch (o->kind) {
    case CUTOUT_OP_S_NO_PER_SESSION:
      TRY(api->DisablePerSessionThreads(so), CUTOUT_ERUNTIME, what);
      break;
    case CUTOUT_OP_S_INTRA:
      TRY(api->SetIntraOpNumThreads(so, o->i), CUTOUT_ERUNTIME, what);
      break;
    case CUTOUT_OP_S_INTER:
      TRY(api->SetInterOpNumThreads(so, o->i), CUTOUT_ERUNTIME, what);
      break;
    case CUTOUT_OP_S_EXEC_MODE:
      TRY(api->SetSessionExecutionMode(so, o->i == CUTOUT_EXEC_PARALLEL
                                               ? ORT_PARALLEL : ORT_SEQUENTIAL),
          CUTOUT_ERUNTIME, what);
      break;
    case CUTOUT_OP_S_GRAPH_OPT:
      TRY(api->SetSessionGraphOptimizationLevel(so,
                                                (GraphOptimizationLevel)o->i),
          CUTOUT_ERUNTIME, what);
      break;
    case CUTOUT_OP_S_CONFIG:
      TRY(api->AddSessionConfigEntry(so, o->key, o->s), CUTOUT_ERUNTIME, what);
      break;
    case CUTOUT_OP_S_ARENA:
      TRY(o->i ? api->EnableCpuMemArena(so) : api->DisableCpuMemArena(so),
          CUTOUT_ERUNTIME, what);
      break;
    case CUTOUT_OP_S_MEM_PATTERN:
      TRY(o->i ? api->EnableMemPattern(so) : api->DisableMemPattern(so),
          CUTOUT_ERUNTIME, what);
      break;
    case CUTOUT_OP_S_PROFILING:
      TRY(api->EnableProfiling(so, o->s), CUTOUT_ERUNTIME, what);
      break;
    case CUTOUT_OP_S_THREADS: {
      /* A record per session: its threads are numbered from 1 again. */
      struct cutout__pool *pool = pool_new(e);
      if (!pool) {
        st = cutout__err(err, CUTOUT_ENOMEM, "out of memory");
        goto fail;
      }
      TRY(api->SessionOptionsSetCustomCreateThreadFn(so, thread_create),
          CUTOUT_ERUNTIME, what);
      TRY(api->SessionOptionsSetCustomThreadCreationOptions(so, pool),
          CUTOUT_ERUNTIME, what);
      TRY(api->SessionOptionsSetCustomJoinThreadFn(so, thread_join),
          CUTOUT_ERUNTIME, what);
      break;
    }
    default:
      st = cutout__err(err, CUTOUT_ERUNTIME, "internal: %s is no session call",
                       what);
      goto fail;
    }
  }
  *out = so;
  return CUTOUT_OK;
fail:
  api->ReleaseSessionOptions(so);
  return st;
}
#undef TRY

/* ------------------------------------------------------------------------
 * The threads that call Run
 * ---------------------------------------------------------------------- */

#define MXCSR_FTZ 0x8000u /* flush results to zero */
#define MXCSR_DAZ 0x0040u /* treat denormal inputs as zero */

void cutout__caller_enter(const cutout_engine *e, struct cutout__caller *c)
{
  const struct cutout__plan *pl = e->plan;
  c->pinned = 0;
  c->mxcsr_saved = 0;
  if (pl->groups &&
      pthread_getaffinity_np(pthread_self(), sizeof c->saved, &c->saved) == 0 &&
      pthread_setaffinity_np(pthread_self(), sizeof(cpu_set_t),
                             &pl->groups[0]) == 0)
    c->pinned = 1;
#ifdef CUTOUT_HAVE_MXCSR
  if (e->eff.denormals_zero) {
    c->mxcsr = _mm_getcsr();
    c->mxcsr_saved = 1;
    _mm_setcsr(c->mxcsr | MXCSR_FTZ | MXCSR_DAZ);
  }
#endif
}

void cutout__caller_leave(const cutout_engine *e, struct cutout__caller *c)
{
  (void)e;
#ifdef CUTOUT_HAVE_MXCSR
  if (c->mxcsr_saved) _mm_setcsr(c->mxcsr);
#endif
  if (c->pinned)
    pthread_setaffinity_np(pthread_self(), sizeof c->saved, &c->saved);
}
