/*
 * test_threads.c: thread management observed on real threads (issue #3).
 *
 * No mocks: the threads ORT creates through cutout's callbacks are found
 * by name in /proc/self/task/TID/comm, their CPU masks are read with
 * sched_getaffinity(TID), and spinning is measured as the process CPU time
 * burnt while the test sleeps.  Counts and masks are asserted exactly;
 * timings only against generous thresholds (a noisy 2-core VM).
 */
#include "engine.h"
#include "testutil.h"
#include "threadplan.h"
#include "topology.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* ------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */

static char model_dir[1024];

static const char *model(const char *name)
{
  static char path[4][1200];
  static int k;
  k = (k + 1) % 4;
  snprintf(path[k], sizeof path[k], "%s/%s", model_dir, name);
  return path[k];
}

/* Threads whose name starts with prefix; their TIDs in tids (max n). */
static int threads_named(const char *prefix, pid_t *tids, int n)
{
  DIR *d = opendir("/proc/self/task");
  struct dirent *de;
  int k = 0;
  assert_non_null(d);
  while ((de = readdir(d))) {
    char path[300], comm[32] = "";
    if (de->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", de->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    if (!fgets(comm, sizeof comm, f)) comm[0] = 0;
    fclose(f);
    if (strncmp(comm, prefix, strlen(prefix)) != 0) continue;
    if (tids && k < n) tids[k] = (pid_t)atoi(de->d_name);
    k++;
  }
  closedir(d);
  return k;
}

static int all_threads(void) { return threads_named("", NULL, 0); }

/* A joined thread can stay listed in /proc for a moment (the kernel wakes
 * pthread_join before it reaps the task): wait up to 2 s for the count. */
static int named_settles(const char *prefix, int want)
{
  int n = threads_named(prefix, NULL, 0);
  for (int i = 0; i < 400 && n != want; i++) {
    usleep(5000);
    n = threads_named(prefix, NULL, 0);
  }
  return n;
}

static pid_t tid_of(const char *name)
{
  pid_t t[4];
  char full[32];
  snprintf(full, sizeof full, "%s\n", name); /* comm ends with a newline */
  return threads_named(full, t, 4) == 1 ? t[0] : -1;
}

static void mask_of(pid_t tid, cpu_set_t *s)
{
  CPU_ZERO(s);
  assert_int_equal(sched_getaffinity(tid, sizeof *s, s), 0);
}

static cpu_set_t cpus(int a, int b)
{
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(a, &s);
  if (b >= 0) CPU_SET(b, &s);
  return s;
}

/* Two CPUs this process may use, or skip the test. */
static void two_cpus(int *a, int *b)
{
  cpu_set_t s;
  sched_getaffinity(0, sizeof s, &s);
  *a = *b = -1;
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &s)) {
      if (*a < 0) *a = c;
      else if (*b < 0) *b = c;
    }
  if (*b < 0) skip();
}

/* What a failed test left behind, released by teardown(): a failed
 * assertion jumps out of the test, and the next one needs the engine
 * singleton free and the full affinity mask back. */
static cutout_engine *live_engine;
static cutout_model *live_models[4];
static cpu_set_t start_mask;

static cutout_engine *engine(const cutout_engine_params *p)
{
  cutout_engine *e = NULL;
  char err[CUTOUT_ERRBUF_SIZE] = "";
  cutout_status st = cutout_engine_new(p, &e, err, sizeof err);
  if (st) fail_msg("cutout_engine_new: %s", err);
  live_engine = e;
  return e;
}

static void engine_free(cutout_engine *e)
{
  cutout_engine_free(e);
  live_engine = NULL;
}

static cutout_model *load(cutout_engine *e, const char *name)
{
  cutout_model *m = NULL;
  char err[CUTOUT_ERRBUF_SIZE] = "";
  if (cutout_model_load(e, model(name), NULL, &m, err, sizeof err))
    fail_msg("cutout_model_load %s: %s", name, err);
  for (int i = 0; i < 4; i++)
    if (!live_models[i]) {
      live_models[i] = m;
      break;
    }
  return m;
}

static void model_free(cutout_model *m)
{
  for (int i = 0; i < 4; i++)
    if (live_models[i] == m) live_models[i] = NULL;
  cutout_model_free(m);
}

static int teardown(void **state)
{
  (void)state;
  for (int i = 0; i < 4; i++) model_free(live_models[i]);
  engine_free(live_engine);
  sched_setaffinity(0, sizeof start_mask, &start_mask);
  unsetenv("CUTOUT_SYSFS_ROOT");
  unsetenv("CUTOUT_CGROUP_ROOT");
  return 0;
}

static void run(cutout_engine *e, cutout_model *m)
{
  cutout_ctx *c = NULL;
  cutout_image *img = NULL, *mask = NULL;
  assert_int_equal(cutout_ctx_new(e, NULL, &c), CUTOUT_OK);
  assert_int_equal(cutout_image_new(96, 80, 3, &img), CUTOUT_OK);
  for (size_t i = 0; i < (size_t)96 * 80 * 3; i++)
    img->pixels[i] = (uint8_t)(i * 7 + i / 300);
  cutout_status st = cutout_predict_mask(c, m, img, &mask);
  if (st) fail_msg("predict: %s", cutout_ctx_errmsg(c));
  cutout_image_free(mask);
  cutout_image_free(img);
  cutout_ctx_free(c);
}

static cutout_engine_params params(void) { return cutout_engine_default_params(); }

static void set(cutout_engine_params *p, const char *field, const char *v)
{
  char err[CUTOUT_ERRBUF_SIZE] = "";
  if (cutout_engine_param_set(p, field, v, err, sizeof err))
    fail_msg("param_set %s=%s: %s", field, v, err);
}

/* engine_new must fail with EINVAL and a message containing want. */
static void expect_bad(const cutout_engine_params *p, const char *want)
{
  cutout_engine *e = NULL;
  char err[CUTOUT_ERRBUF_SIZE] = "";
  cutout_status st = cutout_engine_new(p, &e, err, sizeof err);
  if (st != CUTOUT_EINVAL || !strstr(err, want)) {
    engine_free(e);
    fail_msg("expected EINVAL with '%s', got %d: '%s'", want, st, err);
  }
}

static double cpu_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU burnt by the whole process in a 300 ms sleep right after a run. */
static double idle_burn_ms(cutout_engine *e, cutout_model *m)
{
  double worst = 0;
  for (int k = 0; k < 3; k++) {
    run(e, m);
    double c0 = cpu_now();
    struct timespec ts = {0, 300 * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    double ms = (cpu_now() - c0) * 1000.0;
    if (ms > worst) worst = ms;
  }
  return worst;
}

/* ------------------------------------------------------------------------
 * Shared and per-session pools
 * ---------------------------------------------------------------------- */

static void test_shared_pool_adds_no_thread(void **state)
{
  (void)state;
  cutout_engine_params p = params();
  set(&p, "intra_threads", "2");
  cutout_engine *e = engine(&p);
  /* The global pool exists as soon as the env does: intra 2 = 1 worker. */
  assert_int_equal(threads_named("cutout-intra-", NULL, 0), 1);
  assert_int_equal(threads_named("cutout-inter-", NULL, 0), 0);
  assert_true(tid_of("cutout-intra-1") > 0);
  assert_int_equal(cutout_engine_thread_count(e), 1);
  int before = all_threads();
  cutout_model *a = load(e, "tiny-heavy.onnx");
  assert_int_equal(all_threads(), before);
  cutout_model *b = load(e, "tiny-isnet.onnx");
  assert_int_equal(all_threads(), before); /* the second model: no thread */
  run(e, a);
  run(e, b);
  assert_int_equal(threads_named("cutout-", NULL, 0), 1);
  assert_int_equal(cutout_engine_thread_count(e), 1);
  model_free(a);
  model_free(b);
  assert_int_equal(threads_named("cutout-", NULL, 0), 1); /* env-owned */
  engine_free(e);
  assert_int_equal(named_settles("cutout-", 0), 0); /* joined */
}

static void test_per_session_pools(void **state)
{
  (void)state;
  cutout_engine_params p = params();
  set(&p, "intra_threads", "2");
  set(&p, "thread_pool", "per-session");
  cutout_engine *e = engine(&p);
  assert_int_equal(threads_named("cutout-", NULL, 0), 0);
  cutout_model *a = load(e, "tiny-heavy.onnx");
  assert_int_equal(threads_named("cutout-intra-", NULL, 0), 1);
  cutout_model *b = load(e, "tiny-isnet.onnx");
  assert_int_equal(threads_named("cutout-intra-", NULL, 0), 2);
  assert_int_equal(cutout_engine_thread_count(e), 2);
  run(e, a);
  model_free(a);
  assert_int_equal(named_settles("cutout-intra-", 1), 1);
  model_free(b);
  assert_int_equal(named_settles("cutout-", 0), 0);
  assert_int_equal(cutout_engine_thread_count(e), 0);
  engine_free(e);
}

/* Parallel mode: ORT builds the intra pool before the inter pool, which is
 * how the callback tells them apart; the binding proves it, because ORT
 * pins only intra-op workers. */
static void check_parallel(const char *pool)
{
  int c0, c1;
  two_cpus(&c0, &c1);
  char bind[32];
  snprintf(bind, sizeof bind, "%d;%d", c0, c1);
  cutout_engine_params p = params();
  set(&p, "thread_pool", pool);
  set(&p, "exec_mode", "parallel");
  set(&p, "intra_threads", "2");
  set(&p, "inter_threads", "3");
  set(&p, "cpu_binding", bind);
  cutout_engine *e = engine(&p);
  cutout_model *m = load(e, "tiny-heavy.onnx");
  run(e, m);
  assert_int_equal(threads_named("cutout-intra-", NULL, 0), 1);
  assert_int_equal(threads_named("cutout-inter-", NULL, 0), 2);
  cpu_set_t got, want = cpus(c1, -1), all;
  sched_getaffinity(0, sizeof all, &all);
  mask_of(tid_of("cutout-intra-1"), &got);
  assert_true(CPU_EQUAL(&got, &want));
  mask_of(tid_of("cutout-inter-1"), &got);
  assert_true(CPU_EQUAL(&got, &all)); /* inter-op threads are not bound */
  model_free(m);
  engine_free(e);
}

static void test_parallel_names_per_session(void **state)
{
  (void)state;
  check_parallel("per-session");
}

static void test_parallel_names_shared(void **state)
{
  (void)state;
  check_parallel("shared");
}

/* ------------------------------------------------------------------------
 * CPU binding
 * ---------------------------------------------------------------------- */

struct caller_probe {
  cutout_engine *e;
  cutout_model *m;
  volatile pid_t tid;
  volatile int done;
};

static void *caller_main(void *arg)
{
  struct caller_probe *c = arg;
  c->tid = (pid_t)syscall(SYS_gettid);
  for (int i = 0; i < 8; i++) run(c->e, c->m);
  c->done = 1;
  return NULL;
}

static void check_binding(const char *pool)
{
  int c0, c1;
  two_cpus(&c0, &c1);
  char bind[32];
  /* Caller on the second CPU, the worker on the first. */
  snprintf(bind, sizeof bind, "%d;%d", c1, c0);
  cutout_engine_params p = params();
  set(&p, "thread_pool", pool);
  set(&p, "cpu_binding", bind);
  cutout_engine *e = engine(&p);
  assert_int_equal(cutout_engine_effective(e).intra_threads, 2);
  cutout_model *m = load(e, "tiny-heavy.onnx");
  cpu_set_t before, after, got, want = cpus(c0, -1), caller = cpus(c1, -1);
  sched_getaffinity(0, sizeof before, &before);
  run(e, m);
  sched_getaffinity(0, sizeof after, &after);
  assert_true(CPU_EQUAL(&before, &after)); /* the caller's mask is restored */
  pid_t w = tid_of("cutout-intra-1");
  assert_true(w > 0);
  mask_of(w, &got);
  assert_true(CPU_EQUAL(&got, &want));

  /* During Run the calling thread is on group 0. */
  struct caller_probe probe = {e, m, 0, 0};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, caller_main, &probe), 0);
  int seen = 0;
  while (!probe.done && !seen) {
    if (probe.tid > 0) {
      cpu_set_t s;
      if (sched_getaffinity(probe.tid, sizeof s, &s) == 0 &&
          CPU_EQUAL(&s, &caller))
        seen = 1;
    }
    usleep(200);
  }
  pthread_join(t, NULL);
  assert_true(seen);
  model_free(m);
  engine_free(e);
}

static void test_binding_shared(void **state)
{
  (void)state;
  check_binding("shared");
}

static void test_binding_per_session(void **state)
{
  (void)state;
  check_binding("per-session");
}

static void test_binding_to_ort_string(void **state)
{
  (void)state;
  struct cutout__topology t;
  struct cutout__plan pl;
  char err[CUTOUT_ERRMSG_MAX] = "";
  memset(&t, 0, sizeof t);
  for (int c = 0; c < 8; c++) CPU_SET(c, &t.allowed);
  t.allowed_count = t.online = t.cores = t.host_cores = t.usable = 8;
  t.nodes = 1;
  t.node_cpus[0] = t.allowed;
  t.node_cores[0] = 8;
  cutout_engine_params p = params();
  set(&p, "cpu_binding", "0;1-3;4,6;7");
  assert_int_equal(cutout__plan_make_topo(&p, &t, &pl, err), CUTOUT_OK);
  assert_int_equal(pl.eff.intra_threads, 4);
  /* 1-based, groups 1..3 only; ranges stay ranges, lists stay lists. */
  assert_string_equal(pl.ort_affinity, "2-4;5,7;8");
  cutout__plan_free(&pl);
}

/* ------------------------------------------------------------------------
 * A restricted affinity mask (what taskset does)
 * ---------------------------------------------------------------------- */

/* Threads that existed before the mask was restricted keep their old
 * mask (ORT keeps one helper thread for the life of the process); every
 * thread created since, and the caller, must stay inside. */
static pid_t old_tids[256];
static int n_old;

static int all_masks_within(const cpu_set_t *allowed)
{
  pid_t tids[256];
  int n = threads_named("", tids, 256);
  for (int i = 0; i < n && i < 256; i++) {
    cpu_set_t s, out;
    int old = 0;
    for (int k = 0; k < n_old; k++) old |= old_tids[k] == tids[i];
    if (old && tids[i] != getpid()) continue;
    if (sched_getaffinity(tids[i], sizeof s, &s)) continue; /* exited */
    CPU_XOR(&out, &s, allowed);
    CPU_AND(&out, &out, &s);
    if (CPU_COUNT(&out)) return 0;
  }
  return 1;
}

static void test_restricted_mask(void **state)
{
  (void)state;
  int c0, c1;
  two_cpus(&c0, &c1);
  cpu_set_t full, one = cpus(c1, -1);
  sched_getaffinity(0, sizeof full, &full);
  n_old = threads_named("", old_tids, 256);
  assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);

  cutout_engine *e = engine(NULL);
  cutout_engine_params eff = cutout_engine_effective(e);
  assert_int_equal(eff.intra_threads, 1); /* only one usable CPU */
  assert_int_equal(eff.workers, 1);
  assert_int_equal(eff.io_threads, 1);
  cutout_model *m = load(e, "tiny-heavy.onnx");
  run(e, m);
  assert_true(all_masks_within(&one));
  model_free(m);
  engine_free(e);

  cutout_engine_params p = params();
  set(&p, "workload", "throughput");
  e = engine(&p);
  eff = cutout_engine_effective(e);
  assert_int_equal(eff.intra_threads, 1);
  assert_int_equal(eff.workers, 1);
  engine_free(e);

  /* More threads than CPUs, explicitly: they stay inside the mask. */
  p = params();
  set(&p, "intra_threads", "2");
  set(&p, "thread_pool", "per-session");
  e = engine(&p);
  m = load(e, "tiny-heavy.onnx");
  run(e, m);
  assert_int_equal(threads_named("cutout-intra-", NULL, 0), 1);
  assert_true(all_masks_within(&one));
  model_free(m);
  engine_free(e);

  /* A binding outside the mask is refused. */
  char bind[32];
  snprintf(bind, sizeof bind, "%d;%d", c1, c0);
  p = params();
  set(&p, "cpu_binding", bind);
  expect_bad(&p, "outside the CPUs this process may use");

  assert_int_equal(sched_setaffinity(0, sizeof full, &full), 0);
}

/* ------------------------------------------------------------------------
 * Spinning: CPU burnt while idle
 * ---------------------------------------------------------------------- */

static double spin_case(const char *pool, const char *spin, const char *stop)
{
  cutout_engine_params p = params();
  set(&p, "intra_threads", "2");
  set(&p, "thread_pool", pool);
  set(&p, "spin", spin);
  if (stop) set(&p, "spin_stop", stop);
  cutout_engine *e = engine(&p);
  cutout_model *m = load(e, "tiny-heavy.onnx");
  double ms = idle_burn_ms(e, m);
  print_message("idle burn, %s pool, spin %s, stop %s: %.1f ms per 300 ms\n",
                pool, spin, stop ? stop : "-", ms);
  model_free(m);
  engine_free(e);
  return ms;
}

static void test_spinning_idle_cpu(void **state)
{
  (void)state;
  int c0, c1;
  two_cpus(&c0, &c1);
  /* Off: nothing runs while idle (a few ms of noise at most). */
  assert_true(spin_case("per-session", "off", NULL) < 8.0);
  assert_true(spin_case("shared", "off", NULL) < 8.0);
  /* On, no stop: the worker spins ~35-40 ms after every run. */
  assert_true(spin_case("per-session", "on", "off") > 10.0);
  /* The global pool spins too, and ORT offers no stop for it. */
  assert_true(spin_case("shared", "on", NULL) > 10.0);
  /* force_spinning_stop keeps the in-run spin and removes the idle burn. */
  assert_true(spin_case("per-session", "on", "on") < 8.0);
}

/* ------------------------------------------------------------------------
 * Precedence and errors
 * ---------------------------------------------------------------------- */

static void clear_env(void)
{
  const char *vars[] = {"CUTOUT_INTRA_THREADS", "CUTOUT_INTER_THREADS",
                        "CUTOUT_EXECUTION_MODE", "CUTOUT_SPIN",
                        "CUTOUT_CPU_BINDING", "CUTOUT_WORKERS",
                        "OMP_NUM_THREADS", NULL};
  for (int i = 0; vars[i]; i++) unsetenv(vars[i]);
}

static cutout_source source(cutout_engine *e, const char *f, int *value)
{
  const char *why = NULL;
  cutout_source s = cutout_engine_source(e, f, &why);
  assert_non_null(why);
  assert_true(*why); /* every field says why */
  cutout_engine_params eff = cutout_engine_effective(e);
  if (strcmp(f, "intra_threads") == 0) *value = eff.intra_threads;
  else if (strcmp(f, "inter_threads") == 0) *value = eff.inter_threads;
  else if (strcmp(f, "workers") == 0) *value = eff.workers;
  return s;
}

static void test_precedence(void **state)
{
  (void)state;
  int v;
  clear_env();
  cutout_engine_params p;
  char err[CUTOUT_ERRBUF_SIZE];

  /* auto */
  p = params();
  assert_int_equal(cutout_engine_params_from_env(&p, err, sizeof err), 0);
  cutout_engine *e = engine(&p);
  assert_int_equal(source(e, "intra_threads", &v), CUTOUT_SOURCE_AUTO);
  engine_free(e);

  /* OMP_NUM_THREADS beats auto: intra = inter = N (rembg) */
  setenv("OMP_NUM_THREADS", "3", 1);
  p = params();
  assert_int_equal(cutout_engine_params_from_env(&p, err, sizeof err), 0);
  e = engine(&p);
  assert_int_equal(source(e, "intra_threads", &v), CUTOUT_SOURCE_OMP);
  assert_int_equal(v, 3);
  assert_int_equal(source(e, "inter_threads", &v), CUTOUT_SOURCE_OMP);
  assert_int_equal(v, 3);
  engine_free(e);

  /* CUTOUT_* beats OMP */
  setenv("CUTOUT_INTRA_THREADS", "1", 1);
  setenv("CUTOUT_WORKERS", "2", 1);
  p = params();
  assert_int_equal(cutout_engine_params_from_env(&p, err, sizeof err), 0);
  e = engine(&p);
  assert_int_equal(source(e, "intra_threads", &v), CUTOUT_SOURCE_ENV);
  assert_int_equal(v, 1);
  assert_int_equal(source(e, "inter_threads", &v), CUTOUT_SOURCE_OMP);
  assert_int_equal(source(e, "workers", &v), CUTOUT_SOURCE_ENV);
  assert_int_equal(v, 2);
  engine_free(e);

  /* the flag beats everything (flags are parsed before the environment) */
  p = params();
  set(&p, "intra_threads", "2");
  assert_int_equal(cutout_engine_params_from_env(&p, err, sizeof err), 0);
  e = engine(&p);
  assert_int_equal(source(e, "intra_threads", &v), CUTOUT_SOURCE_FLAG);
  assert_int_equal(v, 2);
  engine_free(e);

  /* a bad variable is an error, naming it */
  setenv("CUTOUT_INTRA_THREADS", "two", 1);
  p = params();
  assert_int_equal(cutout_engine_params_from_env(&p, err, sizeof err),
                   CUTOUT_EINVAL);
  assert_non_null(strstr(err, "CUTOUT_INTRA_THREADS='two'"));
  setenv("CUTOUT_INTRA_THREADS", "", 1); /* empty = unset */
  setenv("OMP_NUM_THREADS", "-4", 1);
  p = params();
  assert_int_equal(cutout_engine_params_from_env(&p, err, sizeof err),
                   CUTOUT_EINVAL);
  assert_non_null(strstr(err, "OMP_NUM_THREADS='-4'"));
  clear_env();
}

static void test_bad_values(void **state)
{
  (void)state;
  clear_env();
  char err[CUTOUT_ERRBUF_SIZE];
  cutout_engine_params p = params();
  static const char *const bad[][2] = {
      {"intra_threads", "-1"},     {"intra_threads", "abc"},
      {"intra_threads", "2x"},     {"inter_threads", "-2"},
      {"exec_mode", "fast"},       {"graph_opt", "max"},
      {"spin", "2"},               {"spin", "maybe"},
      {"spin_us", "-5"},           {"thread_pool", "global"},
      {"workers", "0"},            {"denormals_zero", "yes please"},
      {"workload", "batch"},       {"cpu_binding", ""},
      {"no_such_field", "1"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = 0;
    if (cutout_engine_param_set(&p, bad[i][0], bad[i][1], err, sizeof err) !=
        CUTOUT_EINVAL || !err[0])
      fail_msg("%s=%s was accepted", bad[i][0], bad[i][1]);
  }

  int c0, c1;
  two_cpus(&c0, &c1);
  char two[32], far[32];
  snprintf(two, sizeof two, "%d;%d", c0, c1);
  snprintf(far, sizeof far, "%d;%d", c0, CPU_SETSIZE - 1);

  p = params();
  set(&p, "intra_threads", "1");
  set(&p, "cpu_binding", two);
  expect_bad(&p, "has 2 groups");
  p = params();
  set(&p, "cpu_binding", far);
  expect_bad(&p, "outside the CPUs this process may use");
  p = params();
  set(&p, "cpu_binding", "0;x");
  expect_bad(&p, "only CPU ids");
  p = params();
  set(&p, "cpu_binding", "0;3-1");
  expect_bad(&p, "is not a CPU list");
  p = params();
  set(&p, "intra_threads", "0");
  set(&p, "cpu_binding", two);
  expect_bad(&p, "needs an explicit intra-op thread count");
  p = params();
  set(&p, "spin", "off");
  set(&p, "spin_us", "100");
  set(&p, "thread_pool", "per-session");
  expect_bad(&p, "drops the spin window");
  p = params();
  set(&p, "inter_threads", "2");
  expect_bad(&p, "only applies to --execution-mode parallel");
  p = params();
  set(&p, "exec_mode", "parallel");
  set(&p, "inter_threads", "1");
  expect_bad(&p, "falls back to sequential");
  p = params();
  set(&p, "thread_pool", "shared");
  set(&p, "spin", "on");
  set(&p, "spin_us", "1000");
  expect_bad(&p, "only works with per-session pools");
  p = params();
  set(&p, "thread_pool", "shared");
  set(&p, "spin", "on");
  set(&p, "spin_stop", "on");
  expect_bad(&p, "only works with per-session pools");
  p = params();
  set(&p, "spin_stop", "on");
  set(&p, "spin", "off");
  expect_bad(&p, "no spinning to stop");
  p = params();
  set(&p, "exec_mode", "parallel");
  set(&p, "inter_threads", "2");
  set(&p, "mem_pattern", "on");
  expect_bad(&p, "sequential mode only");
  p = params();
  set(&p, "ort_profile", "/nonexistent-dir/prof");
  expect_bad(&p, "cannot write profiles");
  /* values a library caller may put straight into the struct */
  p = params();
  p.intra_threads = -3;
  expect_bad(&p, "expected an integer");
  p = params();
  p.exec_mode = 7;
  expect_bad(&p, "expected one of");
  p = params();
  p.spin = 5;
  expect_bad(&p, "expected 0 or 1");

  /* a per-session-only option without a pool choice picks per-session */
  p = params();
  set(&p, "spin", "on");
  set(&p, "spin_us", "1000");
  cutout_engine *e = engine(&p);
  assert_int_equal(cutout_engine_effective(e).thread_pool,
                   CUTOUT_POOL_PER_SESSION);
  /* one engine per process */
  cutout_engine *e2 = NULL;
  assert_int_equal(cutout_engine_new(NULL, &e2, err, sizeof err),
                   CUTOUT_EINVAL);
  assert_non_null(strstr(err, "already exists"));
  engine_free(e);
}

/* ------------------------------------------------------------------------
 * The automatic plan
 * ---------------------------------------------------------------------- */

static void fake_topo(struct cutout__topology *t, int cores, int nodes)
{
  memset(t, 0, sizeof *t);
  for (int c = 0; c < cores; c++) CPU_SET(c, &t->allowed);
  t->allowed_count = t->online = t->cores = t->host_cores = t->usable = cores;
  t->nodes = nodes;
  for (int n = 0; n < nodes; n++) {
    CPU_ZERO(&t->node_cpus[n]);
    for (int c = n * cores / nodes; c < (n + 1) * cores / nodes; c++)
      CPU_SET(c, &t->node_cpus[n]);
    t->node_id[n] = n;
    t->node_cores[n] = cores / nodes;
  }
  snprintf(t->usable_why, sizeof t->usable_why, "fake");
}

static struct cutout__plan plan_for(const cutout_engine_params *p,
                                    const struct cutout__topology *t)
{
  struct cutout__plan pl;
  char err[CUTOUT_ERRMSG_MAX] = "";
  if (cutout__plan_make_topo(p, t, &pl, err)) fail_msg("plan: %s", err);
  return pl;
}

static void test_auto_plan(void **state)
{
  (void)state;
  struct cutout__topology t;
  struct cutout__plan pl;
  cutout_engine_params p = params();

  fake_topo(&t, 8, 1);
  pl = plan_for(&p, &t); /* latency */
  assert_int_equal(pl.eff.intra_threads, 8);
  assert_int_equal(pl.eff.workers, 1);
  assert_int_equal(pl.eff.exec_mode, CUTOUT_EXEC_SEQUENTIAL);
  assert_int_equal(pl.eff.thread_pool, CUTOUT_POOL_SHARED);
  assert_int_equal(pl.intra_workers, 7);
  assert_int_equal(pl.inter_workers, 0);
  assert_null(pl.ort_affinity);
  for (int f = 0; f < CUTOUT_F_COUNT; f++)
    assert_true(pl.reason[f][0]); /* every choice is explained */
  cutout__plan_free(&pl);

  p.workload = CUTOUT_WORKLOAD_THROUGHPUT;
  pl = plan_for(&p, &t);
  assert_int_equal(pl.eff.intra_threads, 4); /* one worker per 4 CPUs */
  assert_int_equal(pl.eff.workers, 2);
  assert_int_equal(pl.eff.spin, 0);
  assert_int_equal(pl.eff.io_threads, 4);
  cutout__plan_free(&pl);

  p.workload = CUTOUT_WORKLOAD_SERVER;
  p.workers = 2;
  pl = plan_for(&p, &t);
  assert_int_equal(pl.eff.intra_threads, 4); /* W x intra <= usable */
  assert_int_equal(pl.eff.spin, 0);
  cutout__plan_free(&pl);

  p = params();
  p.exec_mode = CUTOUT_EXEC_PARALLEL;
  pl = plan_for(&p, &t);
  assert_int_equal(pl.eff.inter_threads, 2);
  assert_int_equal(pl.eff.intra_threads, 4); /* inter x intra <= usable */
  assert_int_equal(pl.eff.mem_pattern, 0);
  cutout__plan_free(&pl);

  /* A container quota of 2.5 CPUs on 8 cores. */
  fake_topo(&t, 8, 1);
  t.quota = 2.5;
  t.usable = 3; /* topology rounds the quota */
  p = params();
  pl = plan_for(&p, &t);
  assert_int_equal(pl.eff.intra_threads, 3);
  cutout__plan_free(&pl);

  /* Two NUMA nodes, one image at a time: one node's cores, bound there. */
  fake_topo(&t, 8, 2);
  p = params();
  pl = plan_for(&p, &t);
  assert_int_equal(pl.eff.intra_threads, 4);
  assert_string_equal(pl.eff.cpu_binding, "0-3;0-3;0-3;0-3");
  assert_string_equal(pl.ort_affinity, "1-4;1-4;1-4");
  cutout__plan_free(&pl);

  /* Never ORT's 0 unless asked. */
  fake_topo(&t, 1, 1);
  p = params();
  pl = plan_for(&p, &t);
  assert_int_equal(pl.eff.intra_threads, 1);
  assert_int_equal(pl.intra_workers, 0);
  cutout__plan_free(&pl);
}

/* Fake sysfs and cgroup trees: SMT siblings count once, a quota caps. */
static void mkfile(const char *dir, const char *rel, const char *text)
{
  char path[1024], tmp[1024];
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  snprintf(tmp, sizeof tmp, "%s", path);
  mkdir(dir, 0755);
  for (char *s = tmp + strlen(dir) + 1; (s = strchr(s, '/')); s++) {
    *s = 0;
    mkdir(tmp, 0755);
    *s = '/';
  }
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
}

static void test_topology_fake_roots(void **state)
{
  (void)state;
  int c0, c1;
  two_cpus(&c0, &c1);
  char sys[512], cg[512], text[64], rel[128];
  snprintf(sys, sizeof sys, "%s/sysfs", tu_tmpdir());
  snprintf(cg, sizeof cg, "%s/cgroup", tu_tmpdir());
  snprintf(text, sizeof text, "%d,%d", c0, c1);
  mkfile(sys, "devices/system/cpu/online", text);
  for (int i = 0; i < 2; i++) { /* c0 and c1: SMT siblings of one core */
    snprintf(rel, sizeof rel, "devices/system/cpu/cpu%d/topology/"
             "thread_siblings_list", i ? c1 : c0);
    mkfile(sys, rel, text);
  }
  mkfile(sys, "devices/system/node/node0/cpulist", text);
  mkfile(cg, "cpu.max", "max 100000\n");
  setenv("CUTOUT_SYSFS_ROOT", sys, 1);
  setenv("CUTOUT_CGROUP_ROOT", cg, 1);

  struct cutout__topology t;
  cutout__topology_read(&t);
  assert_int_equal(t.allowed_count, 2);
  assert_int_equal(t.cores, 1);
  assert_int_equal(t.smt, 1);
  assert_int_equal(t.usable, 1);
  assert_true(t.quota == 0);

  /* separate cores, a v2 quota of 0.5 CPU */
  for (int i = 0; i < 2; i++) {
    snprintf(rel, sizeof rel, "devices/system/cpu/cpu%d/topology/"
             "thread_siblings_list", i ? c1 : c0);
    snprintf(text, sizeof text, "%d", i ? c1 : c0);
    mkfile(sys, rel, text);
  }
  mkfile(cg, "cpu.max", "50000 100000\n");
  cutout__topology_read(&t);
  assert_int_equal(t.cores, 2);
  assert_int_equal(t.smt, 0);
  assert_true(t.quota > 0.49 && t.quota < 0.51);
  assert_int_equal(t.usable, 1);
  assert_non_null(strstr(t.quota_src, "cpu.max"));

  /* v1 quota, and two NUMA nodes */
  mkfile(cg, "cpu.max", "max 100000\n");
  mkfile(cg, "cpu/cpu.cfs_quota_us", "100000\n");
  mkfile(cg, "cpu/cpu.cfs_period_us", "100000\n");
  snprintf(text, sizeof text, "%d", c0);
  mkfile(sys, "devices/system/node/node0/cpulist", text);
  snprintf(text, sizeof text, "%d", c1);
  mkfile(sys, "devices/system/node/node1/cpulist", text);
  cutout__topology_read(&t);
  assert_true(t.quota > 0.99 && t.quota < 1.01);
  assert_non_null(strstr(t.quota_src, "cfs_quota_us"));
  assert_int_equal(t.nodes, 2);
  assert_int_equal(t.usable, 1);

  /* the engine sees the same: one usable CPU */
  cutout_engine *e = engine(NULL);
  assert_int_equal(cutout_engine_effective(e).intra_threads, 1);
  engine_free(e);
  unsetenv("CUTOUT_SYSFS_ROOT");
  unsetenv("CUTOUT_CGROUP_ROOT");
}

/* ------------------------------------------------------------------------
 * Denormals, profiling, describe
 * ---------------------------------------------------------------------- */

static void test_denormals_caller(void **state)
{
#if defined(__x86_64__)
  (void)state;
  cutout_engine_params p = params();
  set(&p, "denormals_zero", "on");
  cutout_engine *e = engine(&p);
  struct cutout__caller c;
  unsigned before = __builtin_ia32_stmxcsr();
  cutout__caller_enter(e, &c);
  unsigned during = __builtin_ia32_stmxcsr();
  cutout__caller_leave(e, &c);
  assert_int_equal(during & 0x8040u, 0x8040u); /* FTZ and DAZ */
  assert_int_equal(__builtin_ia32_stmxcsr(), before);
  cutout_model *m = load(e, "tiny-heavy.onnx");
  run(e, m);
  model_free(m);
  engine_free(e);
#else
  (void)state;
  skip();
#endif
}

static void test_profile_written(void **state)
{
  (void)state;
  char prefix[600];
  snprintf(prefix, sizeof prefix, "%s/prof", tu_tmpdir());
  cutout_engine_params p = params();
  set(&p, "ort_profile", prefix);
  cutout_engine *e = engine(&p);
  cutout_model *m = load(e, "tiny-64.onnx");
  run(e, m);
  model_free(m); /* ORT writes the file when the session ends */
  engine_free(e);
  DIR *d = opendir(tu_tmpdir());
  struct dirent *de;
  int found = 0;
  while (d && (de = readdir(d)))
    if (strncmp(de->d_name, "prof", 4) == 0 && strstr(de->d_name, ".json"))
      found = 1;
  if (d) closedir(d);
  assert_true(found);
}

static void test_describe(void **state)
{
  (void)state;
  cutout_engine_params p = params();
  set(&p, "intra_threads", "2");
  cutout_engine *e = engine(&p);
  char *text = NULL, *json = NULL;
  assert_int_equal(cutout_engine_describe(e, 0, &text), CUTOUT_OK);
  assert_non_null(strstr(text, "SetGlobalIntraOpNumThreads(2)"));
  assert_non_null(strstr(text, "DisablePerSessionThreads()"));
  assert_non_null(strstr(text, "CPUExecutionProvider"));
  assert_non_null(strstr(text, "cutout-intra-1"));
  assert_int_equal(cutout_engine_describe(e, 1, &json), CUTOUT_OK);
  const char *args[] = {json, NULL};
  assert_int_equal(
      tu_python("import json, sys\n"
                "d = json.loads(sys.argv[1])\n"
                "s = d['settings']\n"
                "assert s['intra_threads'] == {'value': 2, 'source': 'flag',"
                " 'reason': s['intra_threads']['reason']}\n"
                "assert s['spin']['value'] in (True, False)\n"
                "assert d['threads']['live'] == 1\n"
                "assert d['topology']['usable'] >= 1\n"
                "assert 'CPUExecutionProvider' in d['providers']\n",
                args),
      0);
  cutout_free(text);
  cutout_free(json);
  engine_free(e);
}

int main(void)
{
  const char *dir = getenv("CUTOUT_TEST_MODELS");
  if (!dir) {
    fprintf(stderr, "CUTOUT_TEST_MODELS is not set (run through ctest)\n");
    return 1;
  }
  snprintf(model_dir, sizeof model_dir, "%s", dir);
  sched_getaffinity(0, sizeof start_mask, &start_mask);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_shared_pool_adds_no_thread, teardown),
      cmocka_unit_test_teardown(test_per_session_pools, teardown),
      cmocka_unit_test_teardown(test_parallel_names_per_session, teardown),
      cmocka_unit_test_teardown(test_parallel_names_shared, teardown),
      cmocka_unit_test_teardown(test_binding_shared, teardown),
      cmocka_unit_test_teardown(test_binding_per_session, teardown),
      cmocka_unit_test_teardown(test_binding_to_ort_string, teardown),
      cmocka_unit_test_teardown(test_restricted_mask, teardown),
      cmocka_unit_test_teardown(test_spinning_idle_cpu, teardown),
      cmocka_unit_test_teardown(test_precedence, teardown),
      cmocka_unit_test_teardown(test_bad_values, teardown),
      cmocka_unit_test_teardown(test_auto_plan, teardown),
      cmocka_unit_test_teardown(test_topology_fake_roots, teardown),
      cmocka_unit_test_teardown(test_denormals_caller, teardown),
      cmocka_unit_test_teardown(test_profile_written, teardown),
      cmocka_unit_test_teardown(test_describe, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
