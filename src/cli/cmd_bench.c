/*
 * cmd_bench.c: `cutout bench`, the thread-configuration experiment done
 * properly: the same model and images for every configuration, run in
 * interleaved rounds (A B C ... A B C ...), each with a warm-up.
 *
 * DESIGN
 * ORT's env is a process singleton whose threading options are fixed when
 * it is created, so every configuration runs in a child process: the
 * parent re-executes /proc/self/exe as `cutout bench --child ...` with
 * that configuration's flags and a cleaned environment (no CUTOUT_* or
 * OMP_NUM_THREADS unless the configuration sets them).  A fresh process
 * also gives clean per-configuration numbers: wait4() returns its peak
 * RSS, and nothing warm is inherited from the previous configuration.
 *
 * The parent never creates an engine, so fork() happens in a
 * single-threaded process and the child only calls async-signal-safe
 * functions (write to cgroup.procs, dup2, execve) before exec.
 *
 * --cpus LIST runs everything under that affinity mask (what taskset
 * does); --quota N puts the children in a cgroup with N CPUs of quota
 * (v2 cpu.max, else v1 cfs_quota_us), or says why it cannot.
 *
 * The child reports on stdout, one "key values..." line each: the plan
 * it ran, per-image latencies, wall and CPU time of the timed block, the
 * CPU burnt while idle for 300 ms after it, and whether any thread's mask
 * left the allowed CPUs (ORT's default pinning does that under taskset).
 */
#include "cli.h"
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_CONFIGS 16
#define MAX_RUNS 1000
#define IDLE_MS 300

/* ------------------------------------------------------------------------
 * Small helpers: CPU lists, clocks
 * ---------------------------------------------------------------------- */

static double cpu_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* taskset-style "0-3,8" -> set; -1 on bad syntax. */
static int cpulist_parse(const char *s, cpu_set_t *set)
{
  CPU_ZERO(set);
  if (!*s) return -1;
  while (*s) {
    char *end;
    long lo = strtol(s, &end, 10), hi = lo;
    if (end == s || lo < 0 || lo >= CPU_SETSIZE) return -1;
    s = end;
    if (*s == '-') {
      hi = strtol(s + 1, &end, 10);
      if (end == s + 1 || hi < lo || hi >= CPU_SETSIZE) return -1;
      s = end;
    }
    for (long c = lo; c <= hi; c++) CPU_SET((int)c, set);
    if (*s == ',' && s[1]) s++;
    else if (*s) return -1;
  }
  return 0;
}

static char *cpulist_format(const cpu_set_t *set, char *out, size_t cap)
{
  size_t p = 0;
  out[0] = 0;
  for (int c = 0; c < CPU_SETSIZE && p < cap; c++) {
    if (!CPU_ISSET(c, set)) continue;
    int e = c;
    while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, set)) e++;
    p += (size_t)(e > c ? snprintf(out + p, cap - p, "%s%d-%d", p ? "," : "", c, e)
                        : snprintf(out + p, cap - p, "%s%d", p ? "," : "", c));
    c = e;
  }
  return out;
}

/* Set by SIGINT/SIGTERM: stop at once, remove the cgroup, exit. */
static volatile sig_atomic_t interrupted;
static void on_signal(int sig) { interrupted = sig; }

/* CPU seconds the allowed CPUs spent busy since boot (/proc/stat, one
 * line per CPU), to tell how much of a measurement other processes
 * disturbed: under --cpus only the CPUs the bench runs on matter. */
static double machine_busy_s(void)
{
  cpu_set_t mask;
  char line[512];
  unsigned long long sum = 0;
  if (sched_getaffinity(0, sizeof mask, &mask)) return 0;
  FILE *f = fopen("/proc/stat", "r");
  while (f && fgets(line, sizeof line, f)) {
    unsigned long long v[8] = {0};
    int cpu;
    if (sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu,
               &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 9 ||
        cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &mask))
      continue;
    /* user nice system [idle iowait] irq softirq steal */
    sum += v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  }
  if (f) fclose(f);
  return (double)sum / (double)sysconf(_SC_CLK_TCK);
}

/* Wait (at most max_s) until other processes use less than a fifth of a
 * CPU, so a configuration is not measured against someone's compile. */
static double wait_quiet(double max_s)
{
  double t0 = cli_now(), load = 0;
  while (cli_now() - t0 < max_s && !interrupted) {
    double b0 = machine_busy_s(), w0 = cli_now();
    struct timespec ts = {0, 250 * 1000000L};
    nanosleep(&ts, NULL);
    load = (machine_busy_s() - b0) / (cli_now() - w0);
    if (load < 0.2) break;
  }
  return load;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
  if (n <= 0) return 0;
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ------------------------------------------------------------------------
 * The child: one configuration, one round
 * ---------------------------------------------------------------------- */

struct job {
  cutout_engine *eng;
  const cutout_model *model;
  cutout_image **imgs;
  int nimg;
  atomic_int next;
  int limit;
  double *lat; /* per run, or NULL (warm-up) */
  double *t_beg, *t_end; /* per run: start and end (cli_now), or NULL */
  atomic_int failed;
  char err[512];
};

static void *job_worker(void *arg)
{
  struct job *j = arg;
  cutout_ctx *c = NULL;
  cutout_remove_params rp = cutout_remove_default_params();
  if (cutout_ctx_new(j->eng, NULL, &c)) {
    if (!atomic_exchange(&j->failed, 1))
      snprintf(j->err, sizeof j->err, "cannot create a context");
    return NULL;
  }
  for (;;) {
    int i = atomic_fetch_add(&j->next, 1);
    if (i >= j->limit || atomic_load(&j->failed)) break;
    cutout_image *out = NULL;
    double t0 = cli_now();
    cutout_status st = cutout_remove(c, j->model, j->imgs[i % j->nimg], &rp,
                                     &out);
    double t1 = cli_now();
    cutout_image_free(out);
    if (st) {
      if (!atomic_exchange(&j->failed, 1))
        snprintf(j->err, sizeof j->err, "%s", cutout_ctx_errmsg(c));
      break;
    }
    if (j->lat) j->lat[i] = t1 - t0;
    if (j->t_beg) {
      j->t_beg[i] = t0;
      j->t_end[i] = t1;
    }
  }
  cutout_ctx_free(c);
  return NULL;
}

/* Run limit images on `callers` concurrent threads (inline for one). */
static int run_block(struct job *j, int callers, int limit, double *lat)
{
  pthread_t tids[64];
  int started = 0;
  atomic_store(&j->next, 0);
  j->limit = limit;
  j->lat = lat;
  if (callers <= 1) {
    job_worker(j);
  } else {
    for (int i = 0; i < callers && i < 64; i++)
      if (pthread_create(&tids[started], NULL, job_worker, j) == 0) started++;
    for (int i = 0; i < started; i++) pthread_join(tids[i], NULL);
    if (!started) job_worker(j);
  }
  return atomic_load(&j->failed) ? -1 : 0;
}

/* A deterministic test card when no image files are given. */
static cutout_image *synthetic_image(void)
{
  cutout_image *img = NULL;
  if (cutout_image_new(1280, 960, 3, &img)) return NULL;
  uint32_t x = 12345;
  for (uint32_t r = 0; r < img->height; r++)
    for (uint32_t c = 0; c < img->width; c++) {
      uint8_t *p = img->pixels + r * img->stride + c * 3;
      x = x * 1103515245u + 12345u;
      int in = (c - 640) * (c - 640) + (r - 480) * (r - 480) < 300 * 300;
      p[0] = (uint8_t)(in ? 200 : (c * 255 / img->width));
      p[1] = (uint8_t)(in ? 60 + (x >> 28) : (r * 255 / img->height));
      p[2] = (uint8_t)(in ? 40 : 128 + (x >> 27));
    }
  return img;
}

/* The union of every thread's allowed CPUs, from /proc/self/task. */
static void threads_mask(cpu_set_t *all, int *nthreads, int *npool)
{
  DIR *d = opendir("/proc/self/task");
  struct dirent *de;
  CPU_ZERO(all);
  *nthreads = *npool = 0;
  while (d && (de = readdir(d))) {
    char path[300], line[512];
    if (de->d_name[0] == '.') continue;
    (*nthreads)++;
    snprintf(path, sizeof path, "/proc/self/task/%s/status", de->d_name);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
      if (strncmp(line, "Name:\tcutout-", 13) == 0) (*npool)++;
      if (strncmp(line, "Cpus_allowed_list:", 18) == 0) {
        cpu_set_t s;
        char *v = line + 18;
        while (*v == ' ' || *v == '\t') v++;
        v[strcspn(v, "\n")] = 0;
        if (cpulist_parse(v, &s) == 0) CPU_OR(all, all, &s);
      }
    }
    if (f) fclose(f);
  }
  if (d) closedir(d);
}

/* Throughput in steady state: several workers end a block unevenly (the
 * last one runs alone while the others idle), a tail that a continuous
 * stream never has.  So the window ends when the first worker finds no
 * more work, i.e. at the earliest "last end" among the workers; images
 * are counted by the fraction of them inside the window.  With one
 * worker the window is the whole block. */
static void steady_window(const double *beg, const double *end, int n,
                          int callers, double t0, double *window,
                          double *work)
{
  /* Once the first worker stops (the queue is empty), each other worker
   * only finishes the run it has in flight: so the first stop is the
   * callers-th latest run end. */
  double *e = malloc((size_t)n * sizeof *e);
  double stop = 0;
  if (!e) return;
  memcpy(e, end, (size_t)n * sizeof *e);
  qsort(e, (size_t)n, sizeof *e, cmp_double);
  int k = callers < n ? callers : n;
  stop = e[n - k];
  free(e);
  double done = 0;
  for (int i = 0; i < n; i++) {
    double a = beg[i] > t0 ? beg[i] : t0, b = end[i] < stop ? end[i] : stop;
    if (b > a && end[i] > beg[i]) done += (b - a) / (end[i] - beg[i]);
  }
  *window = stop - t0;
  *work = done;
}

static void plan_text(const cutout_engine_params *e, int callers, char *out,
                      size_t cap)
{
  char inter[16] = "";
  if (e->exec_mode == CUTOUT_EXEC_PARALLEL)
    snprintf(inter, sizeof inter, "/e%d", e->inter_threads);
  snprintf(out, cap, "%s i%d%s %s spin-%s%s x%d",
           e->thread_pool == CUTOUT_POOL_SHARED ? "shared" : "per-session",
           e->intra_threads, inter,
           e->exec_mode == CUTOUT_EXEC_PARALLEL ? "par" : "seq",
           e->spin ? "on" : "off", e->spin && e->spin_stop ? "+stop" : "",
           callers);
}

static int child_main(int argc, char **argv)
{
  struct cli_opts o;
  char err[1024] = "";
  int callers = 1, runs = 4, warmup = 1, rc = 1, nfiles = 0;
  const char *files[MAX_RUNS];
  cutout_engine *eng = NULL;
  cutout_model *model = NULL;
  cutout_image *imgs[MAX_RUNS];
  double *lat = NULL;
  struct job j;
  memset(&j, 0, sizeof j);
  memset(imgs, 0, sizeof imgs);

  cli_opts_init(&o);
  for (int i = 1; i < argc;) {
    if (strcmp(argv[i], "--child") == 0) {
      i++;
    } else if (i + 1 < argc && strcmp(argv[i], "--callers") == 0) {
      callers = atoi(argv[i + 1]);
      i += 2;
    } else if (i + 1 < argc && strcmp(argv[i], "--runs") == 0) {
      runs = atoi(argv[i + 1]);
      i += 2;
    } else if (i + 1 < argc && strcmp(argv[i], "--warmup") == 0) {
      warmup = atoi(argv[i + 1]);
      i += 2;
    } else {
      int r = cli_parse_option(argc, argv, &i, &o, err, sizeof err);
      if (r < 0) goto fail;
      if (r == 0) {
        if (nfiles < MAX_RUNS) files[nfiles++] = argv[i];
        i++;
      }
    }
  }
  if (runs < 1 || runs > MAX_RUNS) runs = 4;
  if (cli_apply_extras(&o, err, sizeof err)) goto fail;

  cpu_set_t start_mask;
  sched_getaffinity(0, sizeof start_mask, &start_mask);
  double t0 = cli_now();
  if (cutout_engine_new(&o.engine, &eng, err, sizeof err)) goto fail;
  cutout_model_params mp = cutout_model_default_params();
  if (cutout_model_load(eng, o.model, &mp, &model, err, sizeof err)) goto fail;
  double load_s = cli_now() - t0;
  cutout_engine_params eff = cutout_engine_effective(eng);
  if (callers <= 0) callers = eff.workers;
  if (callers > 64) callers = 64;

  /* Decode up front: only inference and its pixel stages are timed. */
  {
    cutout_ctx *c = NULL;
    if (cutout_ctx_new(eng, NULL, &c)) goto fail;
    for (int i = 0; i < nfiles; i++) {
      uint8_t *data = NULL;
      size_t len = 0;
      if (cli_read_all(files[i], &data, &len, err, sizeof err) ||
          cutout_decode(c, data, len, &imgs[i])) {
        if (!err[0]) snprintf(err, sizeof err, "%s", cutout_ctx_errmsg(c));
        char e2[1200];
        snprintf(e2, sizeof e2, "%s: %s", files[i], err);
        snprintf(err, sizeof err, "%s", e2);
        free(data);
        cutout_ctx_free(c);
        goto fail;
      }
      free(data);
    }
    cutout_ctx_free(c);
  }
  int nimg = nfiles;
  if (!nimg) {
    if (!(imgs[0] = synthetic_image())) goto fail;
    nimg = 1;
  }
  lat = calloc((size_t)runs * 3, sizeof *lat);
  if (!lat) goto fail;
  double *t_beg = lat + runs, *t_end = lat + 2 * runs;
  j.eng = eng;
  j.model = model;
  j.imgs = imgs;
  j.nimg = nimg;
  atomic_init(&j.failed, 0);

  /* Warm-up: every caller once per warm-up round (arena, memory plan). */
  if (warmup > 0 && run_block(&j, callers, warmup * callers, NULL)) goto jfail;
  j.t_beg = t_beg;
  j.t_end = t_end;
  double w0 = cli_now(), c0 = cpu_now();
  if (run_block(&j, callers, runs, lat)) goto jfail;
  double wall = cli_now() - w0, cpu = cpu_now() - c0;
  double window = wall, work = runs;
  if (callers > 1)
    steady_window(t_beg, t_end, runs, callers, w0, &window, &work);
  /* What the pool burns while nothing runs (spinning workers). */
  double i0 = cpu_now();
  struct timespec idle = {0, IDLE_MS * 1000000L};
  while (nanosleep(&idle, &idle) != 0 && errno == EINTR) {}
  double idle_cpu = cpu_now() - i0;

  cpu_set_t all, out;
  int nthreads, npool;
  threads_mask(&all, &nthreads, &npool);
  CPU_XOR(&out, &all, &start_mask);
  CPU_AND(&out, &out, &all);
  char plan[160], escaped[256];
  plan_text(&eff, callers, plan, sizeof plan);
  cpulist_format(&out, escaped, sizeof escaped);

  printf("plan %s\n", plan);
  printf("callers %d\nload_s %.6f\nwall %.6f\ncpu %.6f\nidle_ms %.3f\n",
         callers, load_s, wall, cpu, idle_cpu * 1000.0);
  printf("steady %.6f %.6f\n", window, work);
  printf("threads %d %d\nescaped %s\nlat", nthreads, npool,
         *escaped ? escaped : "-");
  for (int i = 0; i < runs; i++) printf(" %.6f", lat[i]);
  printf("\n");
  rc = fflush(stdout) == 0 ? 0 : 1;
  goto done;

jfail:
  snprintf(err, sizeof err, "%s", j.err);
fail:
  cli_error("bench child: %s", err[0] ? err : "failed");
done:
  free(lat);
  for (int i = 0; i < MAX_RUNS; i++) cutout_image_free(imgs[i]);
  cutout_model_free(model);
  cutout_engine_free(eng);
  cli_opts_free(&o);
  return rc;
}

/* ------------------------------------------------------------------------
 * CPU quota through a cgroup
 * ---------------------------------------------------------------------- */

struct quota_cg {
  char dir[PATH_MAX];   /* the cgroup made for the children */
  char procs[PATH_MAX]; /* its cgroup.procs */
  char how[PATH_MAX + 64];
};

static int write_file(const char *path, const char *text)
{
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  int e = errno;
  close(fd);
  errno = e;
  return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int read_line(const char *path, char *buf, size_t cap)
{
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  if (!fgets(buf, (int)cap, f)) buf[0] = 0;
  fclose(f);
  buf[strcspn(buf, "\n")] = 0;
  return 0;
}

/* Mount point of cgroup2 (v2) or of the v1 hierarchy with "cpu", and the
 * process's path in it. */
static int cg_locate(int v2, char *mount, char *path, size_t cap)
{
  char line[4096];
  mount[0] = path[0] = 0;
  FILE *f = fopen("/proc/self/mountinfo", "r");
  while (f && fgets(line, sizeof line, f)) {
    char mroot[PATH_MAX], mpoint[PATH_MAX], fstype[64], opts[1024];
    const char *dash = strstr(line, " - ");
    if (!dash || sscanf(line, "%*s %*s %*s %4095s %4095s", mroot, mpoint) != 2 ||
        sscanf(dash + 3, "%63s %*s %1023s", fstype, opts) != 2)
      continue;
    int cpu = 0;
    for (char *t = strtok(opts, ","); t; t = strtok(NULL, ","))
      if (strcmp(t, "cpu") == 0) cpu = 1;
    if ((v2 && strcmp(fstype, "cgroup2") == 0) ||
        (!v2 && strcmp(fstype, "cgroup") == 0 && cpu)) {
      snprintf(mount, cap, "%s", mpoint);
      break;
    }
  }
  if (f) fclose(f);
  if (!mount[0]) return -1;
  f = fopen("/proc/self/cgroup", "r");
  while (f && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2) continue;
    *c2 = 0;
    int match = 0;
    if (v2) {
      match = strcmp(line, "0:") == 0 && c1[1] == 0;
    } else {
      for (char *t = strtok(c1 + 1, ","); t; t = strtok(NULL, ","))
        if (strcmp(t, "cpu") == 0) match = 1;
    }
    if (match) snprintf(path, cap, "%s", strcmp(c2 + 1, "/") ? c2 + 1 : "");
  }
  if (f) fclose(f);
  return 0;
}

static int quota_v2(double q, struct quota_cg *cg, char *why, size_t cap)
{
  char mount[PATH_MAX], path[PATH_MAX], parent[PATH_MAX * 2], file[PATH_MAX * 3];
  char buf[512];
  if (cg_locate(1, mount, path, sizeof mount))
    return snprintf(why, cap, "cgroup v2: not mounted"), -1;
  snprintf(parent, sizeof parent, "%s%s", mount, path);
  snprintf(file, sizeof file, "%s/cgroup.controllers", parent);
  if (read_line(file, buf, sizeof buf) || !strstr(buf, "cpu"))
    return snprintf(why, cap, "cgroup v2: the cpu controller is not "
                    "available in %s (controllers: %s)", parent,
                    buf[0] ? buf : "none"), -1;
  snprintf(file, sizeof file, "%s/cgroup.subtree_control", parent);
  if (read_line(file, buf, sizeof buf) == 0 && !strstr(buf, "cpu") &&
      write_file(file, "+cpu"))
    return snprintf(why, cap, "cgroup v2: cannot enable cpu in %s: %s",
                    file, strerror(errno)), -1;
  snprintf(cg->dir, sizeof cg->dir, "%s/cutout-bench-%ld", parent,
           (long)getpid());
  if (mkdir(cg->dir, 0755))
    return snprintf(why, cap, "cgroup v2: cannot create %s: %s", cg->dir,
                    strerror(errno)), cg->dir[0] = 0, -1;
  snprintf(file, sizeof file, "%s/cpu.max", cg->dir);
  snprintf(buf, sizeof buf, "%ld 100000", lround(q * 100000.0));
  if (write_file(file, buf)) {
    snprintf(why, cap, "cgroup v2: cannot write %s: %s", file, strerror(errno));
    rmdir(cg->dir);
    cg->dir[0] = 0;
    return -1;
  }
  snprintf(cg->procs, sizeof cg->procs, "%s/cgroup.procs", cg->dir);
  snprintf(cg->how, sizeof cg->how, "cgroup v2 %s, cpu.max = %s", cg->dir, buf);
  return 0;
}

static int quota_v1(double q, struct quota_cg *cg, char *why, size_t cap)
{
  char mount[PATH_MAX], path[PATH_MAX], file[PATH_MAX * 2], buf[64];
  if (cg_locate(0, mount, path, sizeof mount))
    return snprintf(why, cap, "cgroup v1: no cpu controller mounted"), -1;
  snprintf(cg->dir, sizeof cg->dir, "%s%s/cutout-bench-%ld", mount, path,
           (long)getpid());
  if (mkdir(cg->dir, 0755))
    return snprintf(why, cap, "cgroup v1: cannot create %s: %s", cg->dir,
                    strerror(errno)), cg->dir[0] = 0, -1;
  snprintf(file, sizeof file, "%s/cpu.cfs_period_us", cg->dir);
  int bad = write_file(file, "100000");
  snprintf(buf, sizeof buf, "%ld", lround(q * 100000.0));
  if (!bad) {
    snprintf(file, sizeof file, "%s/cpu.cfs_quota_us", cg->dir);
    bad = write_file(file, buf);
  }
  if (bad) {
    snprintf(why, cap, "cgroup v1: cannot write %s: %s", file, strerror(errno));
    rmdir(cg->dir);
    cg->dir[0] = 0;
    return -1;
  }
  snprintf(cg->procs, sizeof cg->procs, "%s/cgroup.procs", cg->dir);
  snprintf(cg->how, sizeof cg->how, "cgroup v1 %s, cfs_quota_us = %s / 100000",
           cg->dir, buf);
  return 0;
}

static int quota_setup(double q, struct quota_cg *cg, char *err, size_t cap)
{
  char w2[PATH_MAX + 200], w1[PATH_MAX + 200];
  memset(cg, 0, sizeof *cg);
  if (quota_v2(q, cg, w2, sizeof w2) == 0 || quota_v1(q, cg, w1, sizeof w1) == 0)
    return 0;
  snprintf(err, cap, "--quota %.2f: cannot make a cgroup with a CPU quota "
           "(%s; %s); run as root on a host or container with a writable "
           "cgroup cpu controller, or use docker run --cpus", q, w2, w1);
  return -1;
}

static void quota_cleanup(struct quota_cg *cg)
{
  if (cg->dir[0] && rmdir(cg->dir) != 0)
    cli_error("warning: could not remove %s: %s", cg->dir, strerror(errno));
  cg->dir[0] = 0;
}

/* ------------------------------------------------------------------------
 * The parent
 * ---------------------------------------------------------------------- */

enum { CALLERS_ONE = 1, CALLERS_PLAN = 0, CALLERS_W = -1 };

struct config {
  char name[48];
  char desc[160];
  char *args[24]; /* flags for the child; argv strings or owned */
  int nargs;
  int omp;        /* set OMP_NUM_THREADS=N (rembg) */
  int callers;
  char *owned;    /* backing store of a --config's args */
  /* results */
  double *lat;
  int nlat;
  double wall, cpu, idle[64], other[64], rss_mb, load_s;
  double window, work; /* steady-state time and images done in it */
  int rounds_done, pool_threads, callers_used;
  int disturbed; /* rounds kept although other load exceeded max_other */
  char plan[160], escaped[256];
};

static void add_builtin(struct config *c, int *n, const char *name,
                        const char *desc, int omp, int callers,
                        const char *const *args)
{
  struct config *k = &c[(*n)++];
  memset(k, 0, sizeof *k);
  snprintf(k->name, sizeof k->name, "%s", name);
  snprintf(k->desc, sizeof k->desc, "%s", desc);
  for (; *args && k->nargs < 23; args++) k->args[k->nargs++] = (char *)*args;
  k->omp = omp;
  k->callers = callers;
}

/* --config 'NAME=FLAGS...' adds a configuration of the user's. */
static int add_custom(struct config *c, int *n, const char *spec, char *err,
                      size_t errlen)
{
  const char *eq = strchr(spec, '=');
  if (!eq || eq == spec || *n >= MAX_CONFIGS) {
    snprintf(err, errlen, "--config '%s': expected NAME=FLAGS, e.g. "
             "'spin=--spin on --thread-pool per-session'", spec);
    return -1;
  }
  struct config *k = &c[(*n)++];
  memset(k, 0, sizeof *k);
  snprintf(k->name, sizeof k->name, "%.*s", (int)(eq - spec), spec);
  snprintf(k->desc, sizeof k->desc, "%s", eq + 1);
  k->owned = strdup(eq + 1);
  if (!k->owned) return -1;
  k->callers = CALLERS_PLAN;
  for (char *t = strtok(k->owned, " \t"); t && k->nargs < 23;
       t = strtok(NULL, " \t")) {
    if (strcmp(t, "--callers") == 0) { /* --callers N: fixed concurrency */
      char *v = strtok(NULL, " \t");
      k->callers = v ? atoi(v) : 1;
      continue;
    }
    k->args[k->nargs++] = t;
  }
  return 0;
}

/* The environment of a child: the parent's, minus everything that would
 * change the configuration behind the bench's back. */
static char **child_env(int omp_n, char *ompbuf, size_t cap)
{
  size_t n = 0;
  for (char **e = environ; *e; e++) n++;
  char **env = calloc(n + 2, sizeof *env);
  if (!env) return NULL;
  size_t k = 0;
  for (char **e = environ; *e; e++) {
    if ((strncmp(*e, "CUTOUT_", 7) == 0 &&
         strncmp(*e, "CUTOUT_SYSFS_ROOT=", 18) != 0 &&
         strncmp(*e, "CUTOUT_CGROUP_ROOT=", 19) != 0) ||
        strncmp(*e, "OMP_NUM_THREADS=", 16) == 0 ||
        strncmp(*e, "ORT_INTRA_OP_NUM_THREADS=", 25) == 0 ||
        strncmp(*e, "ORT_INTER_OP_NUM_THREADS=", 25) == 0)
      continue;
    env[k++] = *e;
  }
  if (omp_n > 0) {
    snprintf(ompbuf, cap, "OMP_NUM_THREADS=%d", omp_n);
    env[k++] = ompbuf;
  }
  return env;
}


struct bench {
  const char *model;
  const char **files;
  int nfiles, runs, warmup, rounds, nproc, w_plan;
  double quiet_s;   /* how long to wait for other load to go */
  double max_other; /* redo a run disturbed by more than this (cores) */
  struct quota_cg cg;
};

/* Run one configuration once: fork, exec the child, parse its report.
 * -1 on failure; 1 when other processes disturbed the run (more than
 * max_other cores) and this is not the last try: nothing was recorded. */
static int run_child(struct bench *b, struct config *k, int last_try,
                     char *err, size_t errlen)
{
  char *argv[96], ompbuf[64], cbuf[16], rbuf[16], wbuf[16];
  int a = 0, callers = k->callers == CALLERS_W ? b->w_plan : k->callers;
  argv[a++] = "cutout";
  argv[a++] = "bench";
  argv[a++] = "--child";
  argv[a++] = "-m";
  argv[a++] = (char *)b->model;
  snprintf(cbuf, sizeof cbuf, "%d", callers);
  snprintf(rbuf, sizeof rbuf, "%d", b->runs);
  snprintf(wbuf, sizeof wbuf, "%d", b->warmup);
  argv[a++] = "--callers";
  argv[a++] = cbuf;
  argv[a++] = "--runs";
  argv[a++] = rbuf;
  argv[a++] = "--warmup";
  argv[a++] = wbuf;
  for (int i = 0; i < k->nargs; i++) argv[a++] = k->args[i];
  for (int i = 0; i < b->nfiles && a < 94; i++) argv[a++] = (char *)b->files[i];
  argv[a] = NULL;
  char **env = child_env(k->omp ? b->nproc : 0, ompbuf, sizeof ompbuf);
  int pfd[2];
  if (!env || pipe(pfd)) {
    free(env);
    snprintf(err, errlen, "cannot start a child: %s", strerror(errno));
    return -1;
  }
  fflush(NULL);
  if (b->quiet_s > 0) wait_quiet(b->quiet_s);
  if (interrupted) {
    free(env);
    close(pfd[0]);
    close(pfd[1]);
    snprintf(err, errlen, "interrupted");
    return -1;
  }
  double busy0 = machine_busy_s(), wall0 = cli_now();
  pid_t pid = fork();
  if (pid == 0) {
    if (b->cg.procs[0]) {
      int fd = open(b->cg.procs, O_WRONLY);
      if (fd < 0 || write(fd, "0", 1) != 1) _exit(125);
      close(fd);
    }
    dup2(pfd[1], 1);
    close(pfd[0]);
    close(pfd[1]);
    execve("/proc/self/exe", argv, env);
    _exit(127);
  }
  free(env);
  close(pfd[1]);
  if (pid < 0) {
    close(pfd[0]);
    snprintf(err, errlen, "fork: %s", strerror(errno));
    return -1;
  }
  char *out = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 4096 > cap) {
      char *n = realloc(out, cap = cap * 2 + 8192);
      if (!n) break;
      out = n;
    }
    ssize_t r = read(pfd[0], out + len, cap - len - 1);
    if (r < 0 && errno == EINTR && !interrupted) continue;
    if (r <= 0) break;
    len += (size_t)r;
  }
  close(pfd[0]);
  if (out) out[len] = 0;
  int status = 0;
  struct rusage ru;
  if (interrupted) kill(pid, SIGTERM);
  while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {}
  double child_cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
                     (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
  double other = (machine_busy_s() - busy0 - child_cpu) / (cli_now() - wall0);
  if (interrupted || !out || !WIFEXITED(status) || WEXITSTATUS(status)) {
    snprintf(err, errlen, "configuration %s failed (%s %d)%s", k->name,
             WIFEXITED(status) ? "exit status" : "signal",
             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
             WIFEXITED(status) && WEXITSTATUS(status) == 125
                 ? ": cannot join the quota cgroup" : "");
    free(out);
    return -1;
  }
  if (other > b->max_other && !last_try) {
    free(out);
    return 1;
  }
  if (other > b->max_other) k->disturbed++;
  /* Parse the report. */
  double wall = 0, cpu = 0, idle = 0, load = 0, window = 0, work = 0;
  for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
    if (strncmp(line, "plan ", 5) == 0) {
      snprintf(k->plan, sizeof k->plan, "%s", line + 5);
    } else if (sscanf(line, "callers %d", &k->callers_used) == 1) {
    } else if (sscanf(line, "load_s %lf", &load) == 1) {
    } else if (sscanf(line, "steady %lf %lf", &window, &work) == 2) {
    } else if (sscanf(line, "wall %lf", &wall) == 1) {
    } else if (sscanf(line, "cpu %lf", &cpu) == 1) {
    } else if (sscanf(line, "idle_ms %lf", &idle) == 1) {
    } else if (sscanf(line, "threads %*d %d", &k->pool_threads) == 1) {
    } else if (strncmp(line, "escaped ", 8) == 0) {
      if (strcmp(line + 8, "-") != 0)
        snprintf(k->escaped, sizeof k->escaped, "%s", line + 8);
    } else if (strncmp(line, "lat", 3) == 0) {
      char *p = line + 3, *end;
      for (;;) {
        double v = strtod(p, &end);
        if (end == p) break;
        double *n = realloc(k->lat, (size_t)(k->nlat + 1) * sizeof *n);
        if (!n) break;
        k->lat = n;
        k->lat[k->nlat++] = v;
        p = end;
      }
    }
  }
  free(out);
  k->wall += wall;
  k->cpu += cpu;
  k->window += window;
  k->work += work;
  k->load_s += load;
  if (k->rounds_done < 64) {
    k->idle[k->rounds_done] = idle;
    k->other[k->rounds_done] = other > 0 ? other : 0;
  }
  k->rounds_done++;
  double rss = (double)ru.ru_maxrss / 1024.0;
  if (rss > k->rss_mb) k->rss_mb = rss;
  if (k->callers == CALLERS_PLAN && k->callers_used > 0 &&
      strcmp(k->name, "auto-throughput") == 0)
    b->w_plan = k->callers_used;
  return 0;
}

static void help(void)
{
  printf("Usage: cutout bench [OPTIONS] [IMAGE...]\n\n"
         "Compare thread configurations on the same model and images, in\n"
         "interleaved rounds, each configuration in its own process with a\n"
         "warm-up:\n"
         "  ort-default       ORT's defaults: per-session pool, intra 0\n"
         "                    (ORT sizes and pins it), spinning on\n"
         "  rembg-omp         rembg with OMP_NUM_THREADS=N (intra = inter = N,\n"
         "                    N = the CPUs allowed, as nproc)\n"
         "  ort-parallel      ORT's parallel executor, default sizes\n"
         "  auto-latency      cutout's automatic plan for one image at a time\n"
         "  auto-throughput   cutout's plan for many images (W workers)\n"
         "  ort-default-xW    ORT's defaults with the same W concurrent callers\n"
         "\nIMAGE defaults to ../shared/conformance/inputs (or\n"
         "$CUTOUT_BENCH_IMAGES), else a synthetic image.\n\n"
         "  -m, --model NAME       model (default isnet-general-use)\n"
         "      --runs N           timed images per configuration and round\n"
         "                         (default 4)\n"
         "      --warmup N         warm-up images per caller (default 1)\n"
         "      --rounds N         interleaved rounds (default 2)\n"
         "      --quick            1 round of 2 runs\n"
         "      --cpus LIST        run under this affinity mask (as taskset)\n"
         "      --quota N          run in a cgroup with N CPUs of quota\n"
         "      --only A,B         run only these configurations\n"
         "      --wait-quiet S     before each run, wait up to S seconds for\n"
         "                         other processes to go quiet (default 10)\n"
         "      --max-other L      redo a run (twice at most) when other\n"
         "                         processes used more than L CPUs meanwhile\n"
         "                         (default 0.25)\n"
         "      --config 'NAME=FLAGS'  add a configuration (repeatable), e.g.\n"
         "                         'spin=--workload latency --spin on'\n"
         "      --json             machine-readable results\n"
         "  -h, --help             this help\n");
}

static int cmp_name(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_images(const char *dir, const char ***files, int *n, int max)
{
  DIR *d = opendir(dir);
  if (!d) return -1;
  struct dirent *de;
  char **names = NULL;
  int k = 0;
  while ((de = readdir(d))) {
    const char *dot = strrchr(de->d_name, '.');
    if (de->d_name[0] == '.' || !dot ||
        (strcasecmp(dot, ".jpg") && strcasecmp(dot, ".jpeg") &&
         strcasecmp(dot, ".png") && strcasecmp(dot, ".webp")))
      continue;
    char **nn = realloc(names, (size_t)(k + 1) * sizeof *nn);
    if (!nn) break;
    names = nn;
    size_t len = strlen(dir) + strlen(de->d_name) + 2;
    if (!(names[k] = malloc(len))) break;
    snprintf(names[k], len, "%s/%s", dir, de->d_name);
    k++;
  }
  closedir(d);
  qsort(names, (size_t)k, sizeof *names, cmp_name);
  *files = (const char **)names;
  *n = k < max ? k : max;
  for (int i = *n; i < k; i++) free(names[i]);
  return k ? 0 : -1;
}

static int parse_count(const char *s, int lo, int hi, int *out)
{
  char *end;
  long v = strtol(s, &end, 10);
  if (end == s || *end || v < lo || v > hi) return -1;
  *out = (int)v;
  return 0;
}

/* Latency of a configuration: the median of each image's runs, averaged
 * over the images.  Images of different sizes make the pooled samples
 * multi-modal, and a pooled median would jump between the modes. */
static double image_latency(const struct bench *b, const struct config *k)
{
  int nimg = b->nfiles > 0 ? b->nfiles : 1;
  double *tmp = malloc((size_t)(k->nlat ? k->nlat : 1) * sizeof *tmp);
  double sum = 0;
  int used = 0;
  if (!tmp) return 0;
  for (int img = 0; img < nimg; img++) {
    int m = 0;
    for (int j = 0; j < k->nlat; j++)
      if ((j % b->runs) % nimg == img) tmp[m++] = k->lat[j];
    if (m) {
      sum += median(tmp, m);
      used++;
    }
  }
  free(tmp);
  return used ? sum / used : 0;
}

static void print_results(struct bench *b, struct config *c, int n, int json,
                          const char *cpus, double quota)
{
  int base = -1, best_lat = -1, best_thr = -1;
  double lat[MAX_CONFIGS], thr[MAX_CONFIGS], idle[MAX_CONFIGS];
  double other[MAX_CONFIGS];
  for (int i = 0; i < n; i++) {
    lat[i] = image_latency(b, &c[i]);
    thr[i] = c[i].window > 0 ? c[i].work / c[i].window : 0;
    int nr = c[i].rounds_done < 64 ? c[i].rounds_done : 64;
    idle[i] = median(c[i].idle, nr);
    other[i] = 0;
    for (int r = 0; r < nr; r++)
      if (c[i].other[r] > other[i]) other[i] = c[i].other[r];
    if (strcmp(c[i].name, "ort-default") == 0) base = i;
    if (c[i].escaped[0]) continue; /* broke the mask: not a fair winner */
    if (best_lat < 0 || lat[i] < lat[best_lat]) best_lat = i;
    if (best_thr < 0 || thr[i] > thr[best_thr]) best_thr = i;
  }
  if (json) {
    printf("{\"model\": \"%s\", \"cpus\": \"%s\", \"quota\": ", b->model, cpus);
    if (quota > 0) printf("%.2f", quota);
    else printf("null");
    printf(", \"rounds\": %d, \"runs\": %d, \"warmup\": %d, \"configs\": [\n",
           b->rounds, b->runs, b->warmup);
    for (int i = 0; i < n; i++)
      printf("  {\"name\": \"%s\", \"plan\": \"%s\", \"latency_s\": %.4f, "
             "\"images_per_s\": %.4f, \"cpu_utilisation\": %.3f, "
             "\"cpu_s_per_image\": %.3f, \"idle_cpu_ms\": %.1f, "
             "\"peak_rss_mb\": %.1f, \"pool_threads\": %d, "
             "\"latency_vs_ort\": %.3f, \"throughput_vs_ort\": %.3f, "
             "\"other_load_cores\": %.2f, \"escaped\": %s%s%s}%s\n",
             c[i].name, c[i].plan, lat[i], thr[i],
             c[i].wall > 0 ? c[i].cpu / c[i].wall : 0,
             c[i].nlat ? c[i].cpu / c[i].nlat : 0, idle[i], c[i].rss_mb,
             c[i].pool_threads,
             base >= 0 && lat[i] > 0 ? lat[base] / lat[i] : 0,
             base >= 0 && thr[base] > 0 ? thr[i] / thr[base] : 0, other[i],
             c[i].escaped[0] ? "\"" : "null",
             c[i].escaped[0] ? c[i].escaped : "",
             c[i].escaped[0] ? "\"" : "", i + 1 < n ? "," : "");
    printf("], \"best_latency\": \"%s\", \"best_throughput\": \"%s\"}\n",
           best_lat >= 0 ? c[best_lat].name : "",
           best_thr >= 0 ? c[best_thr].name : "");
    return;
  }
  printf("\n%-16s %-33s %8s %7s %6s %7s %7s %6s %4s %6s %6s %6s\n", "config",
         "plan", "latency", "img/s", "CPU", "CPU s", "idle", "RSS", "ORT",
         "lat", "img/s", "other");
  printf("%-16s %-33s %8s %7s %6s %7s %7s %6s %4s %6s %6s %6s\n", "", "",
         "s/image", "", "cores", "/image", "CPU ms", "MB", "thr", "vs ORT",
         "vs ORT", "load");
  for (int i = 0; i < n; i++) {
    char rl[16] = "     -", rt[16] = "     -";
    if (base >= 0 && lat[i] > 0 && thr[base] > 0) {
      snprintf(rl, sizeof rl, "%5.2fx", lat[base] / lat[i]);
      snprintf(rt, sizeof rt, "%5.2fx", thr[i] / thr[base]);
    }
    printf("%-16s %-33s %8.3f %7.3f %6.2f %7.2f %7.1f %6.0f %4d %6s %6s "
           "%6.2f%s\n",
           c[i].name, c[i].plan, lat[i], thr[i],
           c[i].wall > 0 ? c[i].cpu / c[i].wall : 0,
           c[i].nlat ? c[i].cpu / c[i].nlat : 0, idle[i], c[i].rss_mb,
           c[i].pool_threads, rl, rt, other[i],
           c[i].escaped[0] ? " *" : c[i].disturbed ? " !" : "");
  }
  for (int i = 0; i < n; i++)
    if (c[i].escaped[0])
      printf("* %s: a thread was pinned outside the allowed CPUs (%s), so it "
             "is not ranked\n", c[i].name, c[i].escaped);
  for (int i = 0; i < n; i++)
    if (c[i].disturbed)
      printf("! %s: %d round%s kept after 3 tries with other processes busy "
             "(see other load)\n", c[i].name, c[i].disturbed,
             c[i].disturbed == 1 ? "" : "s");
  printf("\nlatency: s per image (each image's median, averaged); img/s: "
         "images per s while\nevery worker is busy; CPU cores: CPU s / wall "
         "s; idle CPU ms: CPU burnt in the\n%d ms after the last run; RSS: "
         "the process's peak; ORT thr: pool threads;\nother load: CPU cores "
         "other processes used meanwhile (max over rounds).\n", IDLE_MS);
  for (int i = 0; i < n; i++) {
    int want = strcmp(c[i].name, "auto-latency") == 0   ? 1
               : strcmp(c[i].name, "auto-throughput") == 0 ? 2 : 0;
    int best = want == 1 ? best_lat : best_thr;
    if (!want || best < 0) continue;
    double mine = want == 1 ? lat[i] : thr[i];
    double top = want == 1 ? lat[best] : thr[best];
    double gap = want == 1 ? mine / top - 1 : 1 - mine / top;
    printf("%s: %s %s %.3f%s; best %s %.3f (%s): %s\n",
           want == 1 ? "latency" : "throughput", c[i].name,
           want == 1 ? "latency" : "img/s", mine, want == 1 ? " s" : "",
           want == 1 ? "latency" : "img/s", top, c[best].name,
           i == best ? "auto is the best row"
           : gap <= 0.05 ? "auto within 5% of the best" : "auto NOT within 5%");
  }
}

int cmd_bench(int argc, char **argv)
{
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--child") == 0) return child_main(argc, argv);

  struct cli_opts o;
  struct bench b;
  struct config cfg[MAX_CONFIGS];
  char err[1024] = "", cpus_text[256] = "";
  const char *only = NULL, *cpus = NULL;
  double quota = 0;
  int json = 0, rc = 1, n = 0, quick = 0, have_runs = 0, have_rounds = 0;
  const char **dirfiles = NULL;
  int ndirfiles = 0;
  const char *mine[24];
  int nmine = 0;

  memset(&b, 0, sizeof b);
  memset(cfg, 0, sizeof cfg);
  b.runs = 4;
  b.warmup = 1;
  b.rounds = 2;
  b.quiet_s = 10;
  b.max_other = 0.25;
  cli_opts_init(&o);
  o.model = "isnet-general-use";
  const char **files = calloc((size_t)argc, sizeof *files);
  if (!files) return 1;

  /* The fixed configurations; --config adds more. */
  static const char *const a_def[] = {"--thread-pool", "per-session",
                                      "--intra-threads", "0", "--spin", "on",
                                      "--spin-stop", "off", NULL};
  static const char *const a_omp[] = {"--thread-pool", "per-session", "--spin",
                                      "on", "--spin-stop", "off", NULL};
  static const char *const a_par[] = {"--thread-pool", "per-session",
                                      "--execution-mode", "parallel",
                                      "--intra-threads", "0", "--inter-threads",
                                      "0", "--spin", "on", "--spin-stop", "off",
                                      NULL};
  static const char *const a_lat[] = {"--workload", "latency", NULL};
  static const char *const a_thr[] = {"--workload", "throughput", NULL};
  add_builtin(cfg, &n, "ort-default", "ORT defaults", 0, CALLERS_ONE, a_def);
  add_builtin(cfg, &n, "rembg-omp", "OMP_NUM_THREADS=N", 1, CALLERS_ONE, a_omp);
  add_builtin(cfg, &n, "ort-parallel", "parallel executor", 0, CALLERS_ONE,
              a_par);
  add_builtin(cfg, &n, "auto-latency", "cutout auto, latency", 0, CALLERS_ONE,
              a_lat);
  add_builtin(cfg, &n, "auto-throughput", "cutout auto, throughput", 0,
              CALLERS_PLAN, a_thr);
  add_builtin(cfg, &n, "ort-default-xW", "ORT defaults, W callers", 0,
              CALLERS_W, a_def);

  for (int i = 1; i < argc;) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      help();
      rc = 0;
      goto done;
    } else if (strcmp(a, "--json") == 0) {
      json = 1;
      i++;
    } else if (strcmp(a, "--quick") == 0) {
      quick = 1;
      i++;
    } else if (v && strcmp(a, "--runs") == 0) {
      if (parse_count(v, 1, MAX_RUNS, &b.runs)) goto bad;
      have_runs = 1;
      i += 2;
    } else if (v && strcmp(a, "--warmup") == 0) {
      if (parse_count(v, 0, 100, &b.warmup)) goto bad;
      i += 2;
    } else if (v && strcmp(a, "--rounds") == 0) {
      if (parse_count(v, 1, 64, &b.rounds)) goto bad;
      have_rounds = 1;
      i += 2;
    } else if (v && strcmp(a, "--cpus") == 0) {
      cpus = v;
      i += 2;
    } else if (v && strcmp(a, "--quota") == 0) {
      char *end;
      quota = strtod(v, &end);
      if (end == v || *end || !(quota >= 0.01 && quota <= 4096)) goto bad;
      i += 2;
    } else if (v && strcmp(a, "--wait-quiet") == 0) {
      char *end;
      b.quiet_s = strtod(v, &end);
      if (end == v || *end || !(b.quiet_s >= 0 && b.quiet_s <= 3600)) goto bad;
      i += 2;
    } else if (v && strcmp(a, "--max-other") == 0) {
      char *end;
      b.max_other = strtod(v, &end);
      if (end == v || *end || !(b.max_other >= 0)) goto bad;
      i += 2;
    } else if (v && strcmp(a, "--only") == 0) {
      only = v;
      i += 2;
    } else if (v && strcmp(a, "--config") == 0) {
      if (add_custom(cfg, &n, v, err, sizeof err)) goto usage;
      i += 2;
    } else {
      cutout_engine_params before = o.engine;
      int i0 = i;
      int r = cli_parse_option(argc, argv, &i, &o, err, sizeof err);
      if (r < 0) goto usage;
      /* Threading flags given to bench form one more configuration. */
      if (r > 0 && memcmp(&before, &o.engine, sizeof before) != 0)
        for (int k = i0; k < i && nmine < 23; k++) mine[nmine++] = argv[k];
      if (r > 0) continue;
      if (a[0] == '-' && a[1]) {
        snprintf(err, sizeof err, "unknown option %s (see cutout bench "
                 "--help)", a);
        goto usage;
      }
      files[b.nfiles++] = argv[i++];
    }
    continue;
  bad:
    snprintf(err, sizeof err, "bad value '%s' for %s", v, a);
    goto usage;
  }
  if (cli_apply_extras(&o, err, sizeof err)) goto usage;
  if (nmine && n < MAX_CONFIGS) {
    mine[nmine] = NULL;
    add_builtin(cfg, &n, "your-flags", "the threading flags given", 0,
                CALLERS_PLAN, mine);
  }
  if (quick) {
    if (!have_runs) b.runs = 2;
    if (!have_rounds) b.rounds = 1;
  }
  if (only) {
    int m = 0;
    for (int i = 0; i < n; i++) {
      char pat[64];
      snprintf(pat, sizeof pat, ",%s,", cfg[i].name);
      char list[1024];
      snprintf(list, sizeof list, ",%s,", only);
      if (strstr(list, pat)) cfg[m++] = cfg[i];
      else free(cfg[i].owned);
    }
    if (!m) {
      snprintf(err, sizeof err, "--only %s matches no configuration", only);
      goto usage;
    }
    n = m;
  }

  if (cpus) {
    cpu_set_t want, have, outside;
    sched_getaffinity(0, sizeof have, &have);
    if (cpulist_parse(cpus, &want)) {
      snprintf(err, sizeof err, "bad value '%s' for --cpus: expected a CPU "
               "list like 0 or 0-3,8", cpus);
      goto usage;
    }
    CPU_XOR(&outside, &want, &have);
    CPU_AND(&outside, &outside, &want);
    if (CPU_COUNT(&outside)) {
      char o1[256], o2[256];
      snprintf(err, sizeof err, "--cpus %s: CPU %s not available to this "
               "process (allowed: %s)", cpus,
               cpulist_format(&outside, o1, sizeof o1),
               cpulist_format(&have, o2, sizeof o2));
      goto usage;
    }
    if (sched_setaffinity(0, sizeof want, &want)) {
      snprintf(err, sizeof err, "--cpus %s: %s", cpus, strerror(errno));
      goto usage;
    }
  }
  {
    cpu_set_t now;
    sched_getaffinity(0, sizeof now, &now);
    b.nproc = CPU_COUNT(&now);
    cpulist_format(&now, cpus_text, sizeof cpus_text);
  }
  b.model = o.model;
  b.w_plan = b.nproc; /* replaced by auto-throughput's W once it ran */

  if (!b.nfiles) {
    const char *envdir = getenv("CUTOUT_BENCH_IMAGES");
    char exe[PATH_MAX], cand[PATH_MAX + 64];
    ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[el > 0 ? el : 0] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    const char *conf = getenv("CUTOUT_CONFORMANCE");
    char t5[PATH_MAX + 64];
    snprintf(t5, sizeof t5, "%s/inputs", conf ? conf : "");
    const char *tries[6] = {envdir, "../shared/conformance/inputs",
                            "../../shared/conformance/inputs", NULL, NULL,
                            conf ? t5 : NULL};
    char t3[PATH_MAX + 64], t4[PATH_MAX + 64];
    snprintf(t3, sizeof t3, "%s/../../shared/conformance/inputs", exe);
    snprintf(t4, sizeof t4, "%s/../shared/conformance/inputs", exe);
    tries[3] = t3;
    tries[4] = t4;
    for (int i = 0; i < 6 && !ndirfiles; i++) {
      if (!tries[i] || !*tries[i]) continue;
      snprintf(cand, sizeof cand, "%s", tries[i]);
      if (list_images(cand, &dirfiles, &ndirfiles, b.runs) != 0) {
        free(dirfiles);
        dirfiles = NULL;
        ndirfiles = 0;
      }
    }
    /* files was sized for argv: make room for the folder's images */
    const char **more = ndirfiles
        ? realloc(files, (size_t)(b.nfiles + ndirfiles) * sizeof *files)
        : files;
    if (!more) {
      cli_error("out of memory");
      goto done;
    }
    files = more;
    for (int i = 0; i < ndirfiles; i++) files[b.nfiles++] = dirfiles[i];
  }
  if (b.nfiles > b.runs) b.nfiles = b.runs; /* only those are ever used */
  b.files = files;

  if (quota > 0 && quota_setup(quota, &b.cg, err, sizeof err)) {
    cli_error("%s", err);
    goto done;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  if (!json) {
    printf("cutout bench: model %s; %d image%s%s; %d round%s x %d run%s, "
           "warm-up %d per caller; interleaved\n", b.model,
           b.nfiles ? b.nfiles : 1, b.nfiles > 1 ? "s" : "",
           b.nfiles ? "" : " (synthetic, 1280x960)",
           b.rounds, b.rounds == 1 ? "" : "s", b.runs, b.runs == 1 ? "" : "s",
           b.warmup);
    printf("CPUs %s (%d allowed)%s%s; CPU quota: %s; cutout %s, ONNX "
           "Runtime %s\n", cpus_text, b.nproc, cpus ? ", set by --cpus " : "",
           cpus ? cpus : "", b.cg.how[0] ? b.cg.how : "none added",
           cutout_version(), cutout_ort_version());
    fflush(stdout);
  }
  for (int r = 0; r < b.rounds; r++)
    for (int i = 0; i < n; i++) {
      if (!json) {
        fprintf(stderr, "bench: round %d/%d: %s...\n", r + 1, b.rounds,
                cfg[i].name);
      }
      int r2 = 1;
      for (int t = 0; t < 3 && r2 == 1; t++) {
        if (t && !json)
          fprintf(stderr, "bench: other processes used the CPUs, again...\n");
        r2 = run_child(&b, &cfg[i], t == 2, err, sizeof err);
      }
      if (r2 < 0) {
        cli_error("%s", interrupted ? "interrupted" : err);
        goto done;
      }
    }
  print_results(&b, cfg, n, json, cpus_text, quota);
  rc = 0;
  goto done;

usage:
  cli_error("%s", err);
  rc = 2;
done:
  quota_cleanup(&b.cg);
  for (int i = 0; i < n; i++) {
    free(cfg[i].lat);
    free(cfg[i].owned);
  }
  for (int i = 0; i < ndirfiles; i++) free((void *)dirfiles[i]);
  free(dirfiles);
  free(files);
  cli_opts_free(&o);
  return rc;
}
