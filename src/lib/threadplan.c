/*
 * threadplan.c: the one threading configuration of the process.
 *
 * DESIGN
 * Every field of cutout_engine_params is described once, in `fields`:
 * its name, CLI flag, environment variable and how its text is parsed.
 * Flags (cutout_engine_param_set), the environment
 * (cutout_engine_params_from_env) and the describe output all use that one
 * table, so a value means the same thing wherever it comes from.
 *
 * Precedence, highest first: the caller / command-line flag, a CUTOUT_*
 * variable, rembg's OMP_NUM_THREADS (intra = inter = N), the automatic
 * plan.  Each field keeps its source in params.source_[] and the plan adds
 * a reason, so `cutout config` can say why every value is what it is.
 *
 * A value ORT would silently ignore or misread is an error here (ORT
 * treats a negative count as "default", drops spin_duration_us when
 * spinning is off, ignores per-session keys with global pools, falls back
 * to sequential with one inter-op thread: ort-threading.md §12).
 */
#include "threadplan.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum kind { K_INT, K_BOOL, K_ENUM, K_STR };

struct word {
  const char *w;
  int v;
};

static const struct word w_bool[] = {
    {"on", 1}, {"off", 0}, {"1", 1}, {"0", 0}, {"true", 1},
    {"false", 0}, {"yes", 1}, {"no", 0}, {NULL, 0}};
static const struct word w_workload[] = {
    {"latency", CUTOUT_WORKLOAD_LATENCY},
    {"throughput", CUTOUT_WORKLOAD_THROUGHPUT},
    {"server", CUTOUT_WORKLOAD_SERVER}, {NULL, 0}};
static const struct word w_exec[] = {
    {"sequential", CUTOUT_EXEC_SEQUENTIAL},
    {"parallel", CUTOUT_EXEC_PARALLEL}, {NULL, 0}};
static const struct word w_graph[] = {
    {"disable", CUTOUT_GRAPH_OPT_DISABLE}, {"basic", CUTOUT_GRAPH_OPT_BASIC},
    {"extended", CUTOUT_GRAPH_OPT_EXTENDED},
    {"layout", CUTOUT_GRAPH_OPT_LAYOUT}, {"all", CUTOUT_GRAPH_OPT_ALL},
    {NULL, 0}};
static const struct word w_fp16[] = {
    {"promote", CUTOUT_FP16_PROMOTE}, {"keep", CUTOUT_FP16_KEEP}, {NULL, 0}};
static const struct word w_pool[] = {
    {"shared", CUTOUT_POOL_SHARED}, {"per-session", CUTOUT_POOL_PER_SESSION},
    {NULL, 0}};

struct field_def {
  const char *name, *flag, *env;
  enum kind kind;
  size_t off;
  long lo, hi;
  const struct word *words;
};

#define OFF(m) offsetof(cutout_engine_params, m)
static const struct field_def fields[CUTOUT_F_COUNT] = {
    [CUTOUT_F_WORKLOAD] = {"workload", "--workload", NULL, K_ENUM,
                           OFF(workload), 0, 0, w_workload},
    [CUTOUT_F_INTRA] = {"intra_threads", "--intra-threads",
                        "CUTOUT_INTRA_THREADS", K_INT, OFF(intra_threads), 0,
                        4096, NULL},
    [CUTOUT_F_INTER] = {"inter_threads", "--inter-threads",
                        "CUTOUT_INTER_THREADS", K_INT, OFF(inter_threads), 0,
                        4096, NULL},
    [CUTOUT_F_EXEC_MODE] = {"exec_mode", "--execution-mode",
                            "CUTOUT_EXECUTION_MODE", K_ENUM, OFF(exec_mode), 0,
                            0, w_exec},
    [CUTOUT_F_GRAPH_OPT] = {"graph_opt", "--graph-opt", "CUTOUT_GRAPH_OPT",
                            K_ENUM, OFF(graph_opt), 0, 0, w_graph},
    [CUTOUT_F_SPIN] = {"spin", "--spin", "CUTOUT_SPIN", K_BOOL, OFF(spin), 0,
                       1, w_bool},
    [CUTOUT_F_SPIN_US] = {"spin_us", "--spin-us", "CUTOUT_SPIN_US", K_INT,
                          OFF(spin_us), 0, 100000000, NULL},
    [CUTOUT_F_SPIN_STOP] = {"spin_stop", "--spin-stop", "CUTOUT_SPIN_STOP",
                            K_BOOL, OFF(spin_stop), 0, 1, w_bool},
    [CUTOUT_F_CPU_BINDING] = {"cpu_binding", "--cpu-binding",
                              "CUTOUT_CPU_BINDING", K_STR, OFF(cpu_binding), 0,
                              0, NULL},
    [CUTOUT_F_THREAD_POOL] = {"thread_pool", "--thread-pool",
                              "CUTOUT_THREAD_POOL", K_ENUM, OFF(thread_pool), 0,
                              0, w_pool},
    [CUTOUT_F_DENORMALS] = {"denormals_zero", "--denormals-zero",
                            "CUTOUT_DENORMALS_ZERO", K_BOOL,
                            OFF(denormals_zero), 0, 1, w_bool},
    [CUTOUT_F_DYN_BLOCK] = {"dynamic_block_base", "--dynamic-block-base",
                            "CUTOUT_DYNAMIC_BLOCK_BASE", K_INT,
                            OFF(dynamic_block_base), 0, 1024, NULL},
    [CUTOUT_F_MEM_ARENA] = {"mem_arena", "--mem-arena", "CUTOUT_MEM_ARENA",
                            K_BOOL, OFF(mem_arena), 0, 1, w_bool},
    [CUTOUT_F_MEM_PATTERN] = {"mem_pattern", "--mem-pattern",
                              "CUTOUT_MEM_PATTERN", K_BOOL, OFF(mem_pattern),
                              0, 1, w_bool},
    [CUTOUT_F_HUGE_PAGES] = {"huge_pages", "--huge-pages", "CUTOUT_HUGE_PAGES",
                             K_BOOL, OFF(huge_pages), 0, 1, w_bool},
    [CUTOUT_F_MODEL_CACHE] = {"model_cache", "--model-cache",
                              "CUTOUT_MODEL_CACHE", K_BOOL, OFF(model_cache),
                              0, 1, w_bool},
    [CUTOUT_F_FP16] = {"fp16", "--fp16", "CUTOUT_FP16", K_ENUM, OFF(fp16), 0,
                       0, w_fp16},
    [CUTOUT_F_ORT_PROFILE] = {"ort_profile", "--ort-profile",
                              "CUTOUT_ORT_PROFILE", K_STR, OFF(ort_profile), 0,
                              0, NULL},
    [CUTOUT_F_WORKERS] = {"workers", "--workers", "CUTOUT_WORKERS", K_INT,
                          OFF(workers), 1, 4096, NULL},
    [CUTOUT_F_IO_THREADS] = {"io_threads", "--io-threads", "CUTOUT_IO_THREADS",
                             K_INT, OFF(io_threads), 1, 4096, NULL},
    [CUTOUT_F_LOG_LEVEL] = {"log_level", NULL, NULL, K_INT, OFF(log_level), 0,
                            4, NULL},
};
#undef OFF

static int *ifield(cutout_engine_params *p, int f)
{
  return (int *)(void *)((char *)p + fields[f].off);
}
static const int *cifield(const cutout_engine_params *p, int f)
{
  return (const int *)(const void *)((const char *)p + fields[f].off);
}
static const char **sfield(cutout_engine_params *p, int f)
{
  return (const char **)(void *)((char *)p + fields[f].off);
}
static const char *csfield(const cutout_engine_params *p, int f)
{
  return *(const char *const *)(const void *)((const char *)p + fields[f].off);
}

static int is_set(const cutout_engine_params *p, int f)
{
  return fields[f].kind == K_STR ? csfield(p, f) != NULL : *cifield(p, f) != -1;
}

const char *cutout__field_name(int f) { return fields[f].name; }
const char *cutout__field_flag(int f) { return fields[f].flag; }
const char *cutout__field_env(int f) { return fields[f].env; }

int cutout__field_find(const char *name)
{
  for (int f = 0; f < CUTOUT_F_COUNT; f++)
    if (strcmp(fields[f].name, name) == 0) return f;
  return -1;
}

static const char *word_of(const struct word *w, int v)
{
  for (; w->w; w++)
    if (w->v == v) return w->w;
  return NULL;
}

void cutout__field_value(const cutout_engine_params *p, int f, char *out,
                         size_t cap)
{
  const struct field_def *d = &fields[f];
  if (d->kind == K_STR) {
    const char *s = csfield(p, f);
    snprintf(out, cap, "%s", s ? s : "");
    return;
  }
  int v = *cifield(p, f);
  const char *w = d->words ? word_of(d->words, v) : NULL;
  if (v == -1)
    snprintf(out, cap, "unset");
  else if (w)
    snprintf(out, cap, "%s", w);
  else
    snprintf(out, cap, "%d", v);
}

char cutout__field_kind(int f)
{
  static const char k[] = {[K_INT] = 'i', [K_BOOL] = 'b', [K_ENUM] = 'e',
                           [K_STR] = 's'};
  return k[fields[f].kind];
}

/* "expected on or off", "expected one of: a, b, c". */
static void expected(const struct field_def *d, char *out, size_t cap)
{
  if (d->kind == K_INT) {
    snprintf(out, cap, "expected an integer from %ld to %ld", d->lo, d->hi);
  } else if (d->kind == K_BOOL) {
    snprintf(out, cap, "expected on or off");
  } else if (d->kind == K_ENUM) {
    size_t p = (size_t)snprintf(out, cap, "expected one of:");
    for (const struct word *w = d->words; w->w && p < cap; w++)
      p += (size_t)snprintf(out + p, cap - p, "%s %s", w == d->words ? "" : ",",
                            w->w);
  } else {
    snprintf(out, cap, "expected a non-empty value");
  }
}

/* How a value of field f from src is named in messages. */
static void who(int f, cutout_source src, const char *text, char *out,
                size_t cap)
{
  const struct field_def *d = &fields[f];
  if (src == CUTOUT_SOURCE_ENV && d->env)
    snprintf(out, cap, "%s='%s'", d->env, text);
  else if (src == CUTOUT_SOURCE_OMP)
    snprintf(out, cap, "OMP_NUM_THREADS='%s'", text);
  else if (d->flag)
    snprintf(out, cap, "%s '%s'", d->flag, text);
  else
    snprintf(out, cap, "%s = %s", d->name, text);
}

cutout_status cutout__param_parse(cutout_engine_params *p, int f,
                                  const char *text, cutout_source src,
                                  char *err)
{
  const struct field_def *d = &fields[f];
  char w[160], ex[160];
  who(f, src, text, w, sizeof w);
  if (d->kind == K_STR) {
    if (!*text)
      return cutout__err(err, CUTOUT_EINVAL, "%s: expected a non-empty value",
                         w);
    *sfield(p, f) = text;
  } else if (d->kind == K_INT) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < d->lo || v > d->hi) {
      expected(d, ex, sizeof ex);
      return cutout__err(err, CUTOUT_EINVAL, "%s: %s", w, ex);
    }
    *ifield(p, f) = (int)v;
  } else {
    const struct word *m = d->words;
    while (m->w && strcasecmp(m->w, text) != 0) m++;
    if (!m->w) {
      expected(d, ex, sizeof ex);
      return cutout__err(err, CUTOUT_EINVAL, "%s: %s", w, ex);
    }
    *ifield(p, f) = m->v;
  }
  p->source_[f] = (unsigned char)src;
  return CUTOUT_OK;
}

/* ------------------------------------------------------------------------
 * Public: defaults, one field from text, the environment
 * ---------------------------------------------------------------------- */

cutout_engine_params cutout_engine_default_params(void)
{
  cutout_engine_params p;
  memset(&p, 0, sizeof p);
  for (int f = 0; f < CUTOUT_F_COUNT; f++)
    if (fields[f].kind != K_STR) *ifield(&p, f) = -1;
  return p;
}

cutout_status cutout_engine_param_set(cutout_engine_params *p,
                                      const char *field, const char *value,
                                      char *errbuf, size_t errbuf_size)
{
  char err[CUTOUT_ERRMSG_MAX] = "";
  cutout_status st = CUTOUT_OK;
  int f = field ? cutout__field_find(field) : -1;
  if (!p || !value || f < 0)
    st = cutout__err(err, CUTOUT_EINVAL, "unknown engine parameter '%s'",
                     field ? field : "(null)");
  else
    st = cutout__param_parse(p, f, value, CUTOUT_SOURCE_FLAG, err);
  if (st && errbuf && errbuf_size) snprintf(errbuf, errbuf_size, "%s", err);
  return st;
}

cutout_status cutout_engine_params_from_env(cutout_engine_params *p,
                                            char *errbuf, size_t errbuf_size)
{
  char err[CUTOUT_ERRMSG_MAX] = "";
  cutout_status st = CUTOUT_OK;
  if (!p) return CUTOUT_EINVAL;
  for (int f = 0; f < CUTOUT_F_COUNT && !st; f++) {
    const char *v = fields[f].env ? getenv(fields[f].env) : NULL;
    if (!v || !*v || is_set(p, f)) continue;
    st = cutout__param_parse(p, f, v, CUTOUT_SOURCE_ENV, err);
  }
  /* rembg: sess_opts.inter_op_num_threads = intra_op_num_threads =
   * int(os.environ["OMP_NUM_THREADS"]). */
  const char *omp = getenv("OMP_NUM_THREADS");
  if (!st && omp && *omp) {
    if (!is_set(p, CUTOUT_F_INTRA))
      st = cutout__param_parse(p, CUTOUT_F_INTRA, omp, CUTOUT_SOURCE_OMP, err);
    if (!st && !is_set(p, CUTOUT_F_INTER))
      st = cutout__param_parse(p, CUTOUT_F_INTER, omp, CUTOUT_SOURCE_OMP, err);
  }
  if (st && errbuf && errbuf_size) snprintf(errbuf, errbuf_size, "%s", err);
  return st;
}

/* ------------------------------------------------------------------------
 * The plan
 * ---------------------------------------------------------------------- */

#define REASON(f, ...) snprintf(pl->reason[f], sizeof pl->reason[f], __VA_ARGS__)

static void note(struct cutout__plan *pl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note(struct cutout__plan *pl, const char *fmt, ...)
{
  if (pl->n_notes >= CUTOUT_MAX_NOTES) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(pl->notes[pl->n_notes++], sizeof pl->notes[0], fmt, ap);
  va_end(ap);
}

/* The name of field f's effective value and origin for error messages. */
static const char *origin(const struct cutout__plan *pl, int f, char *buf,
                          size_t cap)
{
  char v[128];
  cutout__field_value(&pl->eff, f, v, sizeof v);
  if (pl->src[f] == CUTOUT_SOURCE_AUTO)
    snprintf(buf, cap, "%s %s (auto)", fields[f].name, v);
  else
    who(f, (cutout_source)pl->src[f], v, buf, cap);
  return buf;
}

static int explicit_(const struct cutout__plan *pl, int f)
{
  return pl->src[f] != CUTOUT_SOURCE_AUTO;
}

/* Range checks of values a library caller may have set to anything. */
static cutout_status check_ranges(struct cutout__plan *pl, char *err)
{
  char o[160], ex[160];
  for (int f = 0; f < CUTOUT_F_COUNT; f++) {
    const struct field_def *d = &fields[f];
    if (!is_set(&pl->eff, f)) continue;
    if (d->kind == K_STR) {
      if (!*csfield(&pl->eff, f))
        return cutout__err(err, CUTOUT_EINVAL, "%s: expected a non-empty value",
                           origin(pl, f, o, sizeof o));
      continue;
    }
    int v = *cifield(&pl->eff, f);
    int ok = d->words ? word_of(d->words, v) != NULL
                      : (v >= d->lo && v <= d->hi);
    if (!ok) {
      expected(d, ex, sizeof ex);
      if (d->kind == K_BOOL) snprintf(ex, sizeof ex, "expected 0 or 1");
      return cutout__err(err, CUTOUT_EINVAL, "%s: %s",
                         origin(pl, f, o, sizeof o), ex);
    }
  }
  return CUTOUT_OK;
}

/* Parse "0;1" / "0-3;4-7" / "0,2;1,3" into groups inside the allowed set. */
static cutout_status parse_binding(struct cutout__plan *pl, char *err)
{
  const char *s = pl->binding;
  char o[200], mask[256];
  int n = 1;
  for (const char *c = s; *c; c++) {
    if (*c == ';') n++;
    else if (!isdigit((unsigned char)*c) && *c != ',' && *c != '-')
      return cutout__err(err, CUTOUT_EINVAL,
                         "%s: only CPU ids, ',', '-' and ';' are allowed "
                         "(e.g. \"0;1\" or \"0-3;4-7\": one group per "
                         "intra-op thread, the calling thread's first)",
                         origin(pl, CUTOUT_F_CPU_BINDING, o, sizeof o));
  }
  pl->groups = calloc((size_t)n, sizeof *pl->groups);
  if (!pl->groups) return cutout__err(err, CUTOUT_ENOMEM, "out of memory");
  pl->ngroups = n;
  cutout__cpulist_format(&pl->topo.allowed, mask, sizeof mask);
  const char *g = s;
  for (int i = 0; i < n; i++) {
    const char *e = strchr(g, ';');
    size_t len = e ? (size_t)(e - g) : strlen(g);
    if (cutout__cpulist_parse(g, len, &pl->groups[i]))
      return cutout__err(err, CUTOUT_EINVAL,
                         "%s: group %d '%.*s' is not a CPU list like 0-3,8 "
                         "(0-based ids as for taskset)",
                         origin(pl, CUTOUT_F_CPU_BINDING, o, sizeof o), i,
                         (int)len, g);
    for (int c = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, &pl->groups[i]) && !CPU_ISSET(c, &pl->topo.allowed))
        return cutout__err(err, CUTOUT_EINVAL,
                           "%s: CPU %d (group %d) is outside the CPUs this "
                           "process may use (%s)",
                           origin(pl, CUTOUT_F_CPU_BINDING, o, sizeof o), c, i,
                           mask);
    g = e ? e + 1 : g + len;
  }
  return CUTOUT_OK;
}

/* ORT's format: 1-based ids, one group per worker (groups 1..n-1), each
 * group either one range "a-b" or a comma list (ORT rejects a mix). */
static cutout_status ort_affinity(struct cutout__plan *pl, char *err)
{
  size_t cap = (size_t)pl->ngroups * 16 + 64, p = 0;
  for (int i = 1; i < pl->ngroups; i++)
    cap += (size_t)CPU_COUNT(&pl->groups[i]) * 6;
  pl->ort_affinity = malloc(cap);
  if (!pl->ort_affinity) return cutout__err(err, CUTOUT_ENOMEM, "out of memory");
  pl->ort_affinity[0] = 0;
  for (int i = 1; i < pl->ngroups; i++) {
    const cpu_set_t *s = &pl->groups[i];
    int lo = -1, hi = -1, n = CPU_COUNT(s);
    for (int c = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, s)) {
        if (lo < 0) lo = c;
        hi = c;
      }
    if (i > 1) pl->ort_affinity[p++] = ';';
    if (n > 1 && hi - lo + 1 == n) {
      p += (size_t)snprintf(pl->ort_affinity + p, cap - p, "%d-%d", lo + 1,
                            hi + 1);
    } else {
      int first = 1;
      for (int c = lo; c <= hi; c++)
        if (CPU_ISSET(c, s)) {
          p += (size_t)snprintf(pl->ort_affinity + p, cap - p, "%s%d",
                                first ? "" : ",", c + 1);
          first = 0;
        }
    }
  }
  return CUTOUT_OK;
}

static void source_reasons(struct cutout__plan *pl)
{
  for (int f = 0; f < CUTOUT_F_COUNT; f++) {
    char v[160];
    cutout__field_value(&pl->eff, f, v, sizeof v);
    switch (pl->src[f]) {
    case CUTOUT_SOURCE_FLAG:
      if (fields[f].flag)
        REASON(f, "set by %s (or by the program)", fields[f].flag);
      else
        REASON(f, "set by the program");
      break;
    case CUTOUT_SOURCE_ENV: REASON(f, "from %s=%s", fields[f].env, v); break;
    case CUTOUT_SOURCE_OMP:
      REASON(f, "from OMP_NUM_THREADS=%s with rembg's meaning (intra = inter "
                "= N)%s", v,
             f == CUTOUT_F_INTER ? "; ORT uses it only in parallel mode" : "");
      break;
    default: break;
    }
  }
}

/* The automatic choices, each with its reason.  Measurements quoted are
 * from ort-threading.md §10 (ISNet on this project's 2-core machine) and
 * docs/threading.md (cutout bench). */
static void plan_auto(struct cutout__plan *pl)
{
  cutout_engine_params *e = &pl->eff;
  const struct cutout__topology *t = &pl->topo;
  int U = t->usable;

  if (e->workload < 0) {
    e->workload = CUTOUT_WORKLOAD_LATENCY;
    REASON(CUTOUT_F_WORKLOAD, "default: one image at a time (commands that "
                              "process many images ask for throughput)");
  }
  int throughput = e->workload != CUTOUT_WORKLOAD_LATENCY;
  const char *wl = word_of(w_workload, e->workload);

  if (e->thread_pool < 0) {
    int f = explicit_(pl, CUTOUT_F_SPIN_US) ? CUTOUT_F_SPIN_US
            : (explicit_(pl, CUTOUT_F_SPIN_STOP) && e->spin_stop == 1)
                ? CUTOUT_F_SPIN_STOP
            : (explicit_(pl, CUTOUT_F_DYN_BLOCK) && e->dynamic_block_base > 0)
                ? CUTOUT_F_DYN_BLOCK : -1;
    if (f >= 0) {
      e->thread_pool = CUTOUT_POOL_PER_SESSION;
      REASON(CUTOUT_F_THREAD_POOL, "per-session pools: %s is a per-session "
                                   "ORT option (global pools ignore it)",
             fields[f].name);
    } else {
      e->thread_pool = CUTOUT_POOL_SHARED;
      REASON(CUTOUT_F_THREAD_POOL, "one global ORT pool shared by every "
                                   "model: loading another model adds no "
                                   "thread");
    }
  }

  if (e->exec_mode < 0) {
    e->exec_mode = CUTOUT_EXEC_SEQUENTIAL;
    REASON(CUTOUT_F_EXEC_MODE, "the parallel executor only helps graphs with "
                               "independent branches; on ISNet it measured "
                               "1.5-1.8x slower for 2x the CPU");
  }
  int parallel = e->exec_mode == CUTOUT_EXEC_PARALLEL;

  /* A NUMA box, one image at a time: keep the threads on one node (ORT's
   * threading guide reports ~20% from not spreading across nodes). */
  int numa_node = -1;
  if (!throughput && t->nodes > 1 && e->intra_threads < 0 && !pl->binding &&
      e->workers < 0) {
    numa_node = 0;
    for (int i = 1; i < t->nodes; i++)
      if (t->node_cores[i] > t->node_cores[numa_node]) numa_node = i;
  }

  /* Inter-op threads: parallel mode needs >= 2, else it silently falls
   * back to sequential. */
  if (e->inter_threads < 0) {
    if (parallel) {
      e->inter_threads = 2;
      REASON(CUTOUT_F_INTER, "parallel mode: 2 inter-op threads (1 would "
                             "silently fall back to sequential)");
    } else {
      e->inter_threads = 1;
      REASON(CUTOUT_F_INTER, "sequential mode has no inter-op pool");
    }
  }
  int per_run = parallel ? e->inter_threads : 1; /* threads one Run wants */
  if (per_run < 1) per_run = 1;

  if (pl->binding && e->intra_threads < 0) {
    e->intra_threads = pl->ngroups;
    REASON(CUTOUT_F_INTRA, "one intra-op thread per cpu_binding group");
  }

  if (!throughput) {
    if (e->workers < 0) {
      e->workers = 1;
      REASON(CUTOUT_F_WORKERS, "latency: one image at a time");
    }
    if (e->intra_threads < 0 && numa_node >= 0) {
      int n = t->node_cores[numa_node];
      e->intra_threads = n < U ? n : U; /* a quota still caps it */
      REASON(CUTOUT_F_INTRA, "latency on a %d-node NUMA machine: the %d "
                             "physical cores of node %d (threads stay on one "
                             "node)", t->nodes, e->intra_threads,
             t->node_id[numa_node]);
    } else if (e->intra_threads < 0) {
      int n = U / (e->workers * per_run);
      e->intra_threads = n < 1 ? 1 : n;
      if (e->workers > 1 || parallel)
        REASON(CUTOUT_F_INTRA, "latency: %d usable CPUs / (%d worker%s x %d "
                               "inter-op) (%s)", U, e->workers,
               e->workers == 1 ? "" : "s", per_run, t->usable_why);
      else
        REASON(CUTOUT_F_INTRA, "latency: all %d usable CPUs for one image (%s)",
               U, t->usable_why);
    }
  } else {
    if (e->intra_threads < 0 && e->workers < 0) {
      /* Measured on a 2-core AVX2 EPYC with ISNet (cutout bench): 1 worker
       * x intra 2 gave 0.34 img/s, 2 workers x intra 1 gave 0.27 img/s and
       * twice the peak RSS (3.2 GB: every concurrent Run holds its own
       * activations).  A 1024x1024 run keeps ~2 cores busy, so one worker
       * per 4 usable CPUs. */
      int w = U / (4 * per_run);
      e->workers = w < 1 ? 1 : w;
      int n = U / (e->workers * per_run);
      e->intra_threads = n < 1 ? 1 : n;
      REASON(CUTOUT_F_INTRA, "%s: %d usable CPUs / %d worker%s (one image "
                             "keeps ~2-4 cores busy; measured 1 x intra 2 "
                             "+25%% img/s over 2 x intra 1, at half the RSS)",
             wl, U, e->workers, e->workers == 1 ? "" : "s");
      REASON(CUTOUT_F_WORKERS, "%s: one worker per 4 usable CPUs (%s)", wl,
             t->usable_why);
    } else if (e->intra_threads < 0) {
      int n = U / (e->workers * per_run);
      e->intra_threads = n < 1 ? 1 : n;
      REASON(CUTOUT_F_INTRA, "%s: %d usable CPUs shared by %d workers", wl, U,
             e->workers);
    } else if (e->workers < 0) {
      int intra = e->intra_threads > 0 ? e->intra_threads : t->host_cores;
      int w = U / (intra * per_run);
      e->workers = w < 1 ? 1 : w;
      REASON(CUTOUT_F_WORKERS, "%s: workers x intra-op threads <= %d usable "
                               "CPUs", wl, U);
    }
  }

  if (numa_node >= 0) {
    /* Every thread may use the node's CPUs; the caller's group is the
     * same set. */
    char list[256];
    cutout__cpulist_format(&t->node_cpus[numa_node], list, sizeof list);
    size_t cap = ((size_t)e->intra_threads) * (strlen(list) + 1) + 1;
    pl->binding = malloc(cap);
    if (pl->binding) {
      size_t p = 0;
      for (int i = 0; i < e->intra_threads; i++)
        p += (size_t)snprintf(pl->binding + p, cap - p, "%s%s", i ? ";" : "",
                              list);
      e->cpu_binding = pl->binding;
      REASON(CUTOUT_F_CPU_BINDING, "latency on NUMA: every thread on node "
                                   "%d's CPUs %s", t->node_id[numa_node],
             list);
    }
  }
  if (!e->cpu_binding)
    REASON(CUTOUT_F_CPU_BINDING, "none: threads float on the allowed CPUs "
                                 "(they inherit the process mask, so they "
                                 "never leave it)");

  int pool_threads = e->intra_threads != 1 || parallel;
  if (e->spin < 0) {
    /* Spinning: measured on ISNet with cutout bench (docs/threading.md):
     * it bought no latency, and a spinning worker burns ~40 ms of CPU
     * after every run. */
    e->spin = 0;
    if (!pool_threads)
      REASON(CUTOUT_F_SPIN, "off: intra 1 has no pool threads to spin");
    else if (e->workload == CUTOUT_WORKLOAD_SERVER)
      REASON(CUTOUT_F_SPIN, "off: a server has idle gaps, and each spinning "
                            "worker burns ~40 ms of CPU after every run");
    else
      REASON(CUTOUT_F_SPIN, "off: measured no latency gain on ISNet (within "
                            "noise), and each spinning worker burns ~40 ms "
                            "of CPU after every run");
  }
  if (e->spin_us < 0)
    REASON(CUTOUT_F_SPIN_US, e->spin ? "not passed: ORT's built-in spin window"
                                     : "not passed: spinning is off");
  if (e->spin_stop < 0) {
    if (e->spin && e->thread_pool == CUTOUT_POOL_PER_SESSION) {
      e->spin_stop = 1;
      REASON(CUTOUT_F_SPIN_STOP, "on: spin inside a run only; stops the idle "
                                 "burn after it (measured 41.8 -> 0.3 ms per "
                                 "gap)");
    } else {
      e->spin_stop = 0;
      REASON(CUTOUT_F_SPIN_STOP, e->spin ? "off: ORT's global pools cannot "
                                           "stop spinning between runs"
                                         : "off: spinning is off");
    }
  }
  if (e->denormals_zero < 0) {
    e->denormals_zero = 0;
    REASON(CUTOUT_F_DENORMALS, "off: rembg keeps denormals (results stay "
                               "identical); ISNet measured no gain");
  }
  if (e->dynamic_block_base < 0) {
    e->dynamic_block_base = 0;
    REASON(CUTOUT_F_DYN_BLOCK, "off: measured neutral on ISNet");
  }
  if (e->huge_pages < 0) {
    char why[160];
    if (e->mem_arena == 1) {
      e->huge_pages = 0;
      REASON(CUTOUT_F_HUGE_PAGES, "off: mem_arena on asks for ORT's own arena");
    } else if (!pl->topo.thp_ok) {
      e->huge_pages = 0;
      snprintf(why, sizeof why, "%s", pl->topo.thp_why);
      REASON(CUTOUT_F_HUGE_PAGES, "off: %s", why);
    } else {
      e->huge_pages = 1;
      REASON(CUTOUT_F_HUGE_PAGES, "on: 2 MiB pages, and freed memory reused "
                                  "by the next block that fits, so a run "
                                  "touches its live set once (ISNet: 527 MB "
                                  "touched for 419 MB live)");
    }
  }
  if (e->mem_arena < 0) {
    e->mem_arena = e->huge_pages ? 0 : 1;
    if (e->huge_pages)
      REASON(CUTOUT_F_MEM_ARENA, "off: cutout's huge-page allocator replaces "
                                 "ORT's arena (which grows in powers of two)");
    else
      REASON(CUTOUT_F_MEM_ARENA, "on: turning the arena off cost +20%% "
                                 "latency on ISNet");
  }
  if (e->mem_pattern < 0) {
    e->mem_pattern = parallel || e->huge_pages ? 0 : 1;
    REASON(CUTOUT_F_MEM_PATTERN,
           parallel ? "off: ORT plans memory patterns in sequential mode only"
           : e->huge_pages
               ? "off: cutout's allocator reuses each freed tensor, so a "
                 "run touches only its live set; ISNet: 1.24 -> 0.78 GB "
                 "peak, and 0.1 s of page faults instead of 0.8-1.4 s"
               : "on: ORT's default; one plan per input shape");
  }
  if (e->graph_opt < 0) {
    e->graph_opt = CUTOUT_GRAPH_OPT_ALL;
    REASON(CUTOUT_F_GRAPH_OPT, "all: ORT's default (levels measured equal on "
                               "ISNet; other models gain from fusions)");
  }
  if (!e->ort_profile) REASON(CUTOUT_F_ORT_PROFILE, "off");
  if (e->model_cache < 0) {
    e->model_cache = 1;
    REASON(CUTOUT_F_MODEL_CACHE, "on: ISNet's session in 0.01 s instead of "
                                 "0.2-0.5 s, its weights mapped from the page "
                                 "cache instead of copied (CPU provider)");
  }
  if (e->fp16 < 0) {
    e->fp16 = CUTOUT_FP16_PROMOTE;
    REASON(CUTOUT_F_FP16, "promote: ORT's CPU kernels compute fp16 models in "
                          "fp32 anyway, with a Cast pass around every node; "
                          "the npm ISNet as fp32: 2.2 -> 1.8 s, -270 MB");
  }
  if (e->io_threads < 0) {
    int n = U / e->workers;
    e->io_threads = n < 1 ? 1 : n;
    REASON(CUTOUT_F_IO_THREADS, "usable CPUs / workers: pixel stages run "
                                "between inferences");
  }
  if (e->log_level < 0) {
    e->log_level = 3; /* ORT_LOGGING_LEVEL_ERROR */
    REASON(CUTOUT_F_LOG_LEVEL, "ORT errors only");
  }
}

/* Combinations that cannot work, or that ORT would silently ignore. */
static cutout_status check_combinations(struct cutout__plan *pl, char *err)
{
  const cutout_engine_params *e = &pl->eff;
  char a[200], b[200];
  int shared = e->thread_pool == CUTOUT_POOL_SHARED;
  int parallel = e->exec_mode == CUTOUT_EXEC_PARALLEL;

  if (e->huge_pages == 1 && e->mem_arena == 1)
    return cutout__err(err, CUTOUT_EINVAL,
                       "%s and %s exclude each other: cutout's huge-page "
                       "allocator replaces ORT's arena (turn one off)",
                       origin(pl, CUTOUT_F_HUGE_PAGES, a, sizeof a),
                       origin(pl, CUTOUT_F_MEM_ARENA, b, sizeof b));
  if (pl->binding) {
    if (e->intra_threads == 0)
      return cutout__err(err, CUTOUT_EINVAL,
                         "%s needs an explicit intra-op thread count: with "
                         "%s ORT picks the count itself",
                         origin(pl, CUTOUT_F_CPU_BINDING, a, sizeof a),
                         origin(pl, CUTOUT_F_INTRA, b, sizeof b));
    if (pl->ngroups != e->intra_threads)
      return cutout__err(err, CUTOUT_EINVAL,
                         "%s has %d group%s but %s: give one ';'-separated "
                         "group per intra-op thread, the calling thread's "
                         "first", origin(pl, CUTOUT_F_CPU_BINDING, a, sizeof a),
                         pl->ngroups, pl->ngroups == 1 ? "" : "s",
                         origin(pl, CUTOUT_F_INTRA, b, sizeof b));
  }
  if (!parallel && explicit_(pl, CUTOUT_F_INTER) &&
      pl->src[CUTOUT_F_INTER] != CUTOUT_SOURCE_OMP)
    return cutout__err(err, CUTOUT_EINVAL,
                       "%s only applies to --execution-mode parallel (ORT "
                       "ignores inter-op threads in sequential mode)",
                       origin(pl, CUTOUT_F_INTER, a, sizeof a));
  if (parallel && e->inter_threads == 1)
    return cutout__err(err, CUTOUT_EINVAL,
                       "%s with %s: ORT silently falls back to sequential "
                       "with one inter-op thread; use 2 or more, or "
                       "sequential mode",
                       origin(pl, CUTOUT_F_EXEC_MODE, a, sizeof a),
                       origin(pl, CUTOUT_F_INTER, b, sizeof b));
  if (e->spin_us >= 0 && !e->spin)
    return cutout__err(err, CUTOUT_EINVAL,
                       "%s with %s: ORT drops the spin window when spinning "
                       "is off", origin(pl, CUTOUT_F_SPIN_US, a, sizeof a),
                       origin(pl, CUTOUT_F_SPIN, b, sizeof b));
  if (e->spin_stop == 1 && !e->spin)
    return cutout__err(err, CUTOUT_EINVAL,
                       "%s with %s: there is no spinning to stop",
                       origin(pl, CUTOUT_F_SPIN_STOP, a, sizeof a),
                       origin(pl, CUTOUT_F_SPIN, b, sizeof b));
  if (shared) {
    int f = e->spin_us >= 0 ? CUTOUT_F_SPIN_US
            : e->spin_stop == 1 ? CUTOUT_F_SPIN_STOP
            : e->dynamic_block_base > 0 ? CUTOUT_F_DYN_BLOCK : -1;
    if (f >= 0)
      return cutout__err(err, CUTOUT_EINVAL,
                         "%s only works with per-session pools, but %s: ORT's "
                         "global pools ignore it (use --thread-pool "
                         "per-session)", origin(pl, f, a, sizeof a),
                         origin(pl, CUTOUT_F_THREAD_POOL, b, sizeof b));
  }
  if (parallel && e->mem_pattern == 1 && explicit_(pl, CUTOUT_F_MEM_PATTERN))
    return cutout__err(err, CUTOUT_EINVAL,
                       "%s with %s: ORT plans memory patterns in sequential "
                       "mode only", origin(pl, CUTOUT_F_MEM_PATTERN, a, sizeof a),
                       origin(pl, CUTOUT_F_EXEC_MODE, b, sizeof b));
  if (e->ort_profile) {
    char dir[PATH_MAX];
    const char *slash = strrchr(e->ort_profile, '/');
    if (slash)
      snprintf(dir, sizeof dir, "%.*s",
               (int)(slash == e->ort_profile ? 1 : slash - e->ort_profile),
               e->ort_profile);
    else
      snprintf(dir, sizeof dir, ".");
    if (access(dir, W_OK) != 0)
      return cutout__err(err, CUTOUT_EINVAL,
                         "%s: cannot write profiles in %s: %s",
                         origin(pl, CUTOUT_F_ORT_PROFILE, a, sizeof a), dir,
                         strerror(errno));
  }
  return CUTOUT_OK;
}

static void add_notes(struct cutout__plan *pl)
{
  const cutout_engine_params *e = &pl->eff;
  int U = pl->topo.usable;
  int per_run = e->exec_mode == CUTOUT_EXEC_PARALLEL ? e->inter_threads : 1;
  if (e->intra_threads == 0)
    note(pl, "intra_threads 0 lets ORT size the pool from the host's %d "
             "physical cores: it ignores the affinity mask and CPU quota "
             "(%d usable), and per-session pools pin worker k to core k even "
             "outside the mask", pl->topo.host_cores, U);
  else if ((long)e->workers * e->intra_threads * (per_run ? per_run : 1) > U)
    note(pl, "%d worker%s x %d intra-op thread%s%s > %d usable CPUs: the "
             "threads oversubscribe the CPUs",
         e->workers, e->workers == 1 ? "" : "s", e->intra_threads,
         e->intra_threads == 1 ? "" : "s",
         per_run > 1 ? " x inter-op threads" : "", U);
  const char *ev[] = {"ORT_INTRA_OP_NUM_THREADS", "ORT_INTER_OP_NUM_THREADS"};
  for (int i = 0; i < 2; i++) {
    const char *v = getenv(ev[i]);
    if (v && *v)
      note(pl, "%s=%s is set: ORT only reads it when cutout passes 0 %s",
           ev[i], v, e->intra_threads == 0 ? "(it does now)" : "(it does not)");
  }
}

static void op(struct cutout__op *ops, int *n, enum cutout__op_kind k, int i,
               const char *key, const char *s)
{
  if (*n >= CUTOUT_MAX_OPS) return; /* cannot happen: at most ~20 calls */
  ops[*n].kind = k;
  ops[*n].i = i;
  ops[*n].key = key;
  ops[*n].s = s;
  (*n)++;
}

static void build_ops(struct cutout__plan *pl)
{
  const cutout_engine_params *e = &pl->eff;
  int parallel = e->exec_mode == CUTOUT_EXEC_PARALLEL;
  int host = pl->topo.host_cores;
  struct cutout__op *E = pl->env_ops, *S = pl->sess_ops;
  int *ne = &pl->n_env_ops, *ns = &pl->n_sess_ops;

  pl->intra_workers = (e->intra_threads > 0 ? e->intra_threads : host) - 1;
  if (pl->intra_workers < 0) pl->intra_workers = 0;
  if (e->thread_pool == CUTOUT_POOL_SHARED) {
    /* The global inter-op pool exists even in sequential mode: size 1 keeps
     * it empty. */
    int inter = parallel ? e->inter_threads : 1;
    pl->inter_workers = (inter > 0 ? inter : host) - 1;
    op(E, ne, CUTOUT_OP_G_INTRA, e->intra_threads, NULL, NULL);
    op(E, ne, CUTOUT_OP_G_INTER, inter, NULL, NULL);
    op(E, ne, CUTOUT_OP_G_SPIN, e->spin, NULL, NULL);
    if (pl->ort_affinity && *pl->ort_affinity)
      op(E, ne, CUTOUT_OP_G_AFFINITY, 0, NULL, pl->ort_affinity);
    if (e->denormals_zero) op(E, ne, CUTOUT_OP_G_DENORMAL, 0, NULL, NULL);
    op(E, ne, CUTOUT_OP_G_THREADS, 0, NULL, NULL);
    op(E, ne, CUTOUT_OP_ENV_GLOBAL, e->log_level, NULL, NULL);
    op(S, ns, CUTOUT_OP_S_NO_PER_SESSION, 0, NULL, NULL);
  } else {
    pl->inter_workers =
        parallel ? (e->inter_threads > 0 ? e->inter_threads : host) - 1 : 0;
    op(E, ne, CUTOUT_OP_ENV, e->log_level, NULL, NULL);
    op(S, ns, CUTOUT_OP_S_INTRA, e->intra_threads, NULL, NULL);
    if (parallel) op(S, ns, CUTOUT_OP_S_INTER, e->inter_threads, NULL, NULL);
  }
  if (pl->inter_workers < 0) pl->inter_workers = 0;
  if (e->huge_pages) {
    op(E, ne, CUTOUT_OP_ENV_ALLOCATOR, 0, NULL, NULL);
    op(S, ns, CUTOUT_OP_S_CONFIG, 0, "session.use_env_allocators", "1");
  }
  op(S, ns, CUTOUT_OP_S_EXEC_MODE, e->exec_mode, NULL, NULL);
  op(S, ns, CUTOUT_OP_S_GRAPH_OPT, e->graph_opt, NULL, NULL);
  if (e->thread_pool == CUTOUT_POOL_PER_SESSION) {
    const char *spin = e->spin ? "1" : "0";
    op(S, ns, CUTOUT_OP_S_CONFIG, 0, "session.intra_op.allow_spinning", spin);
    op(S, ns, CUTOUT_OP_S_CONFIG, 0, "session.inter_op.allow_spinning", spin);
    if (e->spin_us >= 0) {
      snprintf(pl->num[0], sizeof pl->num[0], "%d", e->spin_us);
      op(S, ns, CUTOUT_OP_S_CONFIG, 0, "session.intra_op.spin_duration_us",
         pl->num[0]);
      op(S, ns, CUTOUT_OP_S_CONFIG, 0, "session.inter_op.spin_duration_us",
         pl->num[0]);
    }
    if (e->spin_stop == 1)
      op(S, ns, CUTOUT_OP_S_CONFIG, 0, "session.force_spinning_stop", "1");
    if (pl->ort_affinity && *pl->ort_affinity)
      op(S, ns, CUTOUT_OP_S_CONFIG, 0, "session.intra_op_thread_affinities",
         pl->ort_affinity);
    if (e->dynamic_block_base > 0) {
      snprintf(pl->num[1], sizeof pl->num[1], "%d", e->dynamic_block_base);
      op(S, ns, CUTOUT_OP_S_CONFIG, 0, "session.dynamic_block_base",
         pl->num[1]);
    }
  }
  /* The session option covers the first session's creating thread and
   * per-session pool threads; cutout sets FTZ/DAZ in its Run callers. */
  if (e->denormals_zero)
    op(S, ns, CUTOUT_OP_S_CONFIG, 0, "session.set_denormal_as_zero", "1");
  op(S, ns, CUTOUT_OP_S_ARENA, e->mem_arena, NULL, NULL);
  op(S, ns, CUTOUT_OP_S_MEM_PATTERN, e->mem_pattern, NULL, NULL);
  if (e->ort_profile) op(S, ns, CUTOUT_OP_S_PROFILING, 0, NULL, pl->profile);
  if (e->thread_pool == CUTOUT_POOL_PER_SESSION)
    op(S, ns, CUTOUT_OP_S_THREADS, 0, NULL, NULL);
}

void cutout__plan_free(struct cutout__plan *pl)
{
  if (!pl) return;
  free(pl->groups);
  free(pl->binding);
  free(pl->profile);
  free(pl->ort_affinity);
  pl->groups = NULL;
  pl->binding = pl->profile = pl->ort_affinity = NULL;
}

cutout_status cutout__plan_make_topo(const cutout_engine_params *in,
                                     const struct cutout__topology *topo,
                                     struct cutout__plan *pl, char *err)
{
  cutout_status st;
  memset(pl, 0, sizeof *pl);
  pl->topo = *topo;
  pl->eff = *in;
  for (int f = 0; f < CUTOUT_F_COUNT; f++)
    pl->src[f] = !is_set(in, f) ? CUTOUT_SOURCE_AUTO
                 : in->source_[f] ? in->source_[f] : CUTOUT_SOURCE_FLAG;
  memcpy(pl->eff.source_, pl->src, CUTOUT_F_COUNT);
  source_reasons(pl);
  if ((st = check_ranges(pl, err))) goto fail;

  /* Own the strings: the caller's may not outlive the engine. */
  if (in->cpu_binding && !(pl->binding = strdup(in->cpu_binding))) goto nomem;
  if (in->ort_profile && !(pl->profile = strdup(in->ort_profile))) goto nomem;
  pl->eff.cpu_binding = pl->binding;
  pl->eff.ort_profile = pl->profile;
  if (pl->binding && (st = parse_binding(pl, err))) goto fail;

  plan_auto(pl);
  if (pl->binding && !pl->groups && (st = parse_binding(pl, err))) goto fail;
  if ((st = check_combinations(pl, err))) goto fail;
  if (pl->binding && (st = ort_affinity(pl, err))) goto fail;
  add_notes(pl);
  build_ops(pl);
  return CUTOUT_OK;
nomem:
  st = cutout__err(err, CUTOUT_ENOMEM, "out of memory");
fail:
  cutout__plan_free(pl);
  return st;
}

cutout_status cutout__plan_make(const cutout_engine_params *in,
                                struct cutout__plan *pl, char *err)
{
  struct cutout__topology *t = malloc(sizeof *t);
  if (!t) return cutout__err(err, CUTOUT_ENOMEM, "out of memory");
  cutout__topology_read(t);
  cutout_status st = cutout__plan_make_topo(in, t, pl, err);
  free(t);
  return st;
}

static const char *graph_name(int v)
{
  switch (v) {
  case CUTOUT_GRAPH_OPT_DISABLE: return "ORT_DISABLE_ALL";
  case CUTOUT_GRAPH_OPT_BASIC: return "ORT_ENABLE_BASIC";
  case CUTOUT_GRAPH_OPT_EXTENDED: return "ORT_ENABLE_EXTENDED";
  case CUTOUT_GRAPH_OPT_LAYOUT: return "ORT_ENABLE_LAYOUT";
  default: return "ORT_ENABLE_ALL";
  }
}

void cutout__op_format(const struct cutout__op *o, char *out, size_t cap)
{
  switch (o->kind) {
  case CUTOUT_OP_ENV:
    snprintf(out, cap, "CreateEnv(%d, \"cutout\")", o->i);
    break;
  case CUTOUT_OP_ENV_GLOBAL:
    snprintf(out, cap, "CreateEnvWithGlobalThreadPools(%d, \"cutout\", "
                       "threading options)", o->i);
    break;
  case CUTOUT_OP_G_INTRA:
    snprintf(out, cap, "SetGlobalIntraOpNumThreads(%d)", o->i);
    break;
  case CUTOUT_OP_G_INTER:
    snprintf(out, cap, "SetGlobalInterOpNumThreads(%d)", o->i);
    break;
  case CUTOUT_OP_G_SPIN:
    snprintf(out, cap, "SetGlobalSpinControl(%d)", o->i);
    break;
  case CUTOUT_OP_G_AFFINITY:
    snprintf(out, cap, "SetGlobalIntraOpThreadAffinity(\"%s\")", o->s);
    break;
  case CUTOUT_OP_G_DENORMAL:
    snprintf(out, cap, "SetGlobalDenormalAsZero()");
    break;
  case CUTOUT_OP_G_THREADS:
    snprintf(out, cap, "SetGlobalCustomCreateThreadFn/ThreadCreationOptions/"
                       "JoinThreadFn(cutout: name, bind, count)");
    break;
  case CUTOUT_OP_ENV_ALLOCATOR:
    snprintf(out, cap, "RegisterAllocator(cutout: CPU, 2 MiB huge pages, "
                       "freed blocks reused)");
    break;
  case CUTOUT_OP_S_NO_PER_SESSION:
    snprintf(out, cap, "DisablePerSessionThreads()");
    break;
  case CUTOUT_OP_S_INTRA:
    snprintf(out, cap, "SetIntraOpNumThreads(%d)", o->i);
    break;
  case CUTOUT_OP_S_INTER:
    snprintf(out, cap, "SetInterOpNumThreads(%d)", o->i);
    break;
  case CUTOUT_OP_S_EXEC_MODE:
    snprintf(out, cap, "SetSessionExecutionMode(%s)",
             o->i == CUTOUT_EXEC_PARALLEL ? "ORT_PARALLEL" : "ORT_SEQUENTIAL");
    break;
  case CUTOUT_OP_S_GRAPH_OPT:
    snprintf(out, cap, "SetSessionGraphOptimizationLevel(%s)",
             graph_name(o->i));
    break;
  case CUTOUT_OP_S_CONFIG:
    snprintf(out, cap, "AddSessionConfigEntry(\"%s\", \"%s\")", o->key, o->s);
    break;
  case CUTOUT_OP_S_ARENA:
    snprintf(out, cap, "%sCpuMemArena()", o->i ? "Enable" : "Disable");
    break;
  case CUTOUT_OP_S_MEM_PATTERN:
    snprintf(out, cap, "%sMemPattern()", o->i ? "Enable" : "Disable");
    break;
  case CUTOUT_OP_S_PROFILING:
    snprintf(out, cap, "EnableProfiling(\"%s\")", o->s);
    break;
  case CUTOUT_OP_S_THREADS:
    snprintf(out, cap, "SessionOptionsSetCustomCreateThreadFn/"
                       "ThreadCreationOptions/JoinThreadFn(cutout: name, "
                       "bind, count)");
    break;
  }
}
