/*
 * describe.c: cutout_engine_describe(), the report behind `cutout config`:
 * the detected topology, every effective setting with its source and
 * reason, the exact ORT calls and config entries, the execution providers
 * and the live pool threads, as text or JSON.
 *
 * Everything printed is read from the engine's plan, the same data
 * engine.c used to call ORT, so the report cannot drift from what ORT got.
 */
#include "engine.h"
#include "compiled.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growable string; on allocation failure it sets oom and stops. */
struct sb {
  char *s;
  size_t len, cap;
  int oom;
};

static void sb_printf(struct sb *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *b, const char *fmt, ...)
{
  if (b->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = 1;
      return;
    }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = (b->cap + (size_t)n) * 2;
    char *s = realloc(b->s, cap);
    if (!s) {
      b->oom = 1;
      return;
    }
    b->s = s;
    b->cap = cap;
  }
}

/* A JSON string literal. */
static void sb_json(struct sb *b, const char *s)
{
  sb_printf(b, "\"");
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      sb_printf(b, "\\%c", c);
    else if (c < 0x20)
      sb_printf(b, "\\u%04x", c);
    else
      sb_printf(b, "%c", c);
  }
  sb_printf(b, "\"");
}

static const char *source_name(int s)
{
  switch (s) {
  case CUTOUT_SOURCE_FLAG: return "flag";
  case CUTOUT_SOURCE_ENV: return "env";
  case CUTOUT_SOURCE_OMP: return "OMP_NUM_THREADS";
  default: return "auto";
  }
}

/* The value of field f for humans: spin_us -1 reads "ORT default". */
static void value_text(const struct cutout__plan *pl, int f, char *out,
                       size_t cap)
{
  if (f == CUTOUT_F_SPIN_US && pl->eff.spin_us < 0)
    snprintf(out, cap, "ORT default");
  else if (f == CUTOUT_F_ORT_PROFILE && !pl->eff.ort_profile)
    snprintf(out, cap, "off");
  else if (f == CUTOUT_F_CPU_BINDING && !pl->eff.cpu_binding)
    snprintf(out, cap, "none");
  else
    cutout__field_value(&pl->eff, f, out, cap);
}

static void value_json(struct sb *b, const struct cutout__plan *pl, int f)
{
  char v[256];
  cutout__field_value(&pl->eff, f, v, sizeof v);
  switch (cutout__field_kind(f)) {
  case 's':
    if (*v) sb_json(b, v);
    else sb_printf(b, "null");
    break;
  case 'b': sb_printf(b, "%s", strcmp(v, "on") == 0 ? "true" : "false"); break;
  case 'e': sb_json(b, v); break;
  default:
    if (strcmp(v, "unset") == 0) sb_printf(b, "null");
    else sb_printf(b, "%s", v);
  }
}

static void node_list(struct sb *b, const struct cutout__topology *t, int json)
{
  char cpus[256];
  for (int i = 0; i < t->nodes; i++) {
    cutout__cpulist_format(&t->node_cpus[i], cpus, sizeof cpus);
    if (json)
      sb_printf(b, "%s{\"id\": %d, \"cpus\": \"%s\", \"cores\": %d}",
                i ? ", " : "", t->node_id[i], cpus, t->node_cores[i]);
    else
      sb_printf(b, "%snode %d = CPUs %s (%d core%s)", i ? "; " : "",
                t->node_id[i], cpus, t->node_cores[i],
                t->node_cores[i] == 1 ? "" : "s");
  }
}

/* The cutout pool threads alive now, by name, read back from /proc: what
 * the callbacks counted, checked against what the kernel shows. */
static void live_names(struct sb *b, int json)
{
  DIR *d = opendir("/proc/self/task");
  struct dirent *de;
  int n = 0;
  while (d && (de = readdir(d))) {
    char path[300], comm[32] = "";
    if (de->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", de->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    if (!fgets(comm, sizeof comm, f)) comm[0] = 0;
    fclose(f);
    comm[strcspn(comm, "\n")] = 0;
    if (strncmp(comm, "cutout-", 7) != 0) continue;
    if (json) {
      sb_printf(b, "%s", n ? ", " : "");
      sb_json(b, comm);
    } else {
      sb_printf(b, "%s%s", n ? ", " : "", comm);
    }
    n++;
  }
  if (d) closedir(d);
  if (!n && !json) sb_printf(b, "none");
}

/* The compiled-model cache folder: files and bytes in it. */
static void cache_summary(char *dir, size_t cap, int *files, double *mb)
{
  *files = 0;
  *mb = 0;
  if (cutout__compiled_dir(NULL, dir, cap) != 0) {
    snprintf(dir, cap, "none (HOME unset)");
    return;
  }
  DIR *d = opendir(dir);
  struct dirent *de;
  char full[PATH_MAX + 300];
  struct stat st;
  while (d && (de = readdir(d))) {
    size_t n = strlen(de->d_name);
    if (n < 5 || strcmp(de->d_name + n - 4, ".ort") != 0) continue;
    snprintf(full, sizeof full, "%s/%s", dir, de->d_name);
    if (stat(full, &st) == 0) {
      (*files)++;
      *mb += (double)st.st_size / 1e6;
    }
  }
  if (d) closedir(d);
}

static void describe_text(struct sb *b, const cutout_engine *e)
{
  const struct cutout__plan *pl = e->plan;
  const struct cutout__topology *t = &pl->topo;
  char mask[512], v[256], op[400];

  cutout__cpulist_format(&t->allowed, mask, sizeof mask);
  sb_printf(b, "cutout %s, ONNX Runtime %s\n\n", cutout_version(),
            cutout_ort_version());
  sb_printf(b, "Topology\n");
  sb_printf(b, "  logical CPUs online   %d\n", t->online);
  sb_printf(b, "  affinity mask         %s (%d CPU%s)\n", mask,
            t->allowed_count, t->allowed_count == 1 ? "" : "s");
  sb_printf(b, "  physical cores        %d in the mask, %d on the host%s\n",
            t->cores, t->host_cores,
            t->smt ? " (SMT siblings counted once)" : "");
  sb_printf(b, "  NUMA nodes            %d: ", t->nodes);
  node_list(b, t, 0);
  sb_printf(b, "\n  cgroup CPU quota      ");
  if (t->quota > 0)
    sb_printf(b, "%.2f CPUs (%s)\n", t->quota, t->quota_src);
  else
    sb_printf(b, "%s\n", t->quota_src);
  sb_printf(b, "  usable CPUs           %d: %s\n", t->usable, t->usable_why);
  sb_printf(b, "  huge pages            %s: %s\n\n", t->thp_ok ? "yes" : "no",
            t->thp_why);

  sb_printf(b, "Settings (precedence: flag > CUTOUT_* env > OMP_NUM_THREADS "
               "> auto)\n");
  sb_printf(b, "  %-19s %-12s %-15s %s\n", "field", "value", "source", "why");
  for (int f = 0; f < CUTOUT_F_COUNT; f++) {
    value_text(pl, f, v, sizeof v);
    sb_printf(b, "  %-19s %-12s %-15s %s\n", cutout__field_name(f), v,
              source_name(pl->src[f]), pl->reason[f]);
  }
  if (pl->n_notes) {
    sb_printf(b, "\nNotes\n");
    for (int i = 0; i < pl->n_notes; i++)
      sb_printf(b, "  - %s\n", pl->notes[i]);
  }

  sb_printf(b, "\nONNX Runtime calls (in this order)\n  env:\n");
  for (int i = 0; i < pl->n_env_ops; i++) {
    cutout__op_format(&pl->env_ops[i], op, sizeof op);
    sb_printf(b, "    %s\n", op);
  }
  sb_printf(b, "  every session:\n");
  for (int i = 0; i < pl->n_sess_ops; i++) {
    cutout__op_format(&pl->sess_ops[i], op, sizeof op);
    sb_printf(b, "    %s\n", op);
  }
  sb_printf(b, "  intra-op affinity string: %s%s%s\n",
            pl->ort_affinity ? "\"" : "",
            pl->ort_affinity ? pl->ort_affinity : "none (threads unpinned)",
            pl->ort_affinity ? "\" (1-based, one group per worker)" : "");
  if (pl->groups) {
    cutout__cpulist_format(&pl->groups[0], mask, sizeof mask);
    sb_printf(b, "  calling threads: pinned by cutout to CPUs %s during Run\n",
              mask);
  }
  sb_printf(b, "\nPool threads\n");
  sb_printf(b, "  planned               %d intra-op + %d inter-op worker%s %s\n",
            pl->intra_workers, pl->inter_workers,
            pl->intra_workers + pl->inter_workers == 1 ? "" : "s",
            e->eff.thread_pool == CUTOUT_POOL_SHARED
                ? "(one global set, created with the env)"
                : "(per session, created with each model)");
  sb_printf(b, "  live now              %d: ", cutout_engine_thread_count(e));
  live_names(b, 0);
  sb_printf(b, "\n\nExecution providers     %s\n",
            *e->providers ? e->providers : "unknown");

  char dir[PATH_MAX];
  int files;
  double mb;
  cache_summary(dir, sizeof dir, &files, &mb);
  sb_printf(b, "\nModels\n");
  sb_printf(b, "  cache folder          %s (%d compiled model%s, %.0f MB)%s\n",
            dir, files, files == 1 ? "" : "s", mb,
            e->eff.model_cache ? "" : ", not used: model_cache off");
  sb_printf(b, "  handed to ORT         the .onnx rewritten: first output "
               "only%s\n", e->eff.fp16 == CUTOUT_FP16_PROMOTE
                               ? ", fp16 as fp32" : "");
  if (e->eff.model_cache) {
    sb_printf(b, "  first load            the session calls above, plus "
                 "SetOptimizedModelFilePath(<cache>/<model>-<key>.ort), "
                 "\"session.save_model_format\" = \"ORT\"\n");
    sb_printf(b, "  every load            the file mapped; the session calls "
                 "above, plus \"session.use_ort_model_bytes_directly\" = "
                 "\"1\", \"session.use_ort_model_bytes_for_initializers\" "
                 "= \"1\", ORT_DISABLE_ALL\n");
  }
}

static void describe_json(struct sb *b, const cutout_engine *e)
{
  const struct cutout__plan *pl = e->plan;
  const struct cutout__topology *t = &pl->topo;
  char mask[512], op[400];

  cutout__cpulist_format(&t->allowed, mask, sizeof mask);
  sb_printf(b, "{\n  \"cutout\": \"%s\",\n  \"onnxruntime\": ",
            cutout_version());
  sb_json(b, cutout_ort_version());
  sb_printf(b, ",\n  \"topology\": {\"online\": %d, \"affinity\": \"%s\", "
               "\"allowed\": %d, \"physical_cores\": %d, \"host_cores\": %d, "
               "\"smt\": %s, \"numa_nodes\": [",
            t->online, mask, t->allowed_count, t->cores, t->host_cores,
            t->smt ? "true" : "false");
  node_list(b, t, 1);
  sb_printf(b, "], \"quota\": ");
  if (t->quota > 0) sb_printf(b, "%.4g", t->quota);
  else sb_printf(b, "null");
  sb_printf(b, ", \"quota_source\": ");
  sb_json(b, t->quota_src);
  sb_printf(b, ", \"usable\": %d, \"usable_why\": ", t->usable);
  sb_json(b, t->usable_why);
  sb_printf(b, ", \"huge_pages\": %s, \"huge_pages_why\": ",
            t->thp_ok ? "true" : "false");
  sb_json(b, t->thp_why);
  sb_printf(b, "},\n  \"settings\": {\n");
  for (int f = 0; f < CUTOUT_F_COUNT; f++) {
    sb_printf(b, "    \"%s\": {\"value\": ", cutout__field_name(f));
    value_json(b, pl, f);
    sb_printf(b, ", \"source\": \"%s\", \"reason\": ", source_name(pl->src[f]));
    sb_json(b, pl->reason[f]);
    sb_printf(b, "}%s\n", f + 1 < CUTOUT_F_COUNT ? "," : "");
  }
  sb_printf(b, "  },\n  \"notes\": [");
  for (int i = 0; i < pl->n_notes; i++) {
    sb_printf(b, "%s", i ? ", " : "");
    sb_json(b, pl->notes[i]);
  }
  sb_printf(b, "],\n  \"ort\": {\n    \"env\": [");
  for (int i = 0; i < pl->n_env_ops; i++) {
    cutout__op_format(&pl->env_ops[i], op, sizeof op);
    sb_printf(b, "%s", i ? ", " : "");
    sb_json(b, op);
  }
  sb_printf(b, "],\n    \"session\": [");
  for (int i = 0; i < pl->n_sess_ops; i++) {
    cutout__op_format(&pl->sess_ops[i], op, sizeof op);
    sb_printf(b, "%s", i ? ", " : "");
    sb_json(b, op);
  }
  sb_printf(b, "],\n    \"config_entries\": {");
  int n = 0;
  for (int i = 0; i < pl->n_sess_ops; i++) {
    const struct cutout__op *o = &pl->sess_ops[i];
    if (o->kind != CUTOUT_OP_S_CONFIG) continue;
    sb_printf(b, "%s", n++ ? ", " : "");
    sb_json(b, o->key);
    sb_printf(b, ": ");
    sb_json(b, o->s);
  }
  sb_printf(b, "},\n    \"intra_op_affinity\": ");
  if (pl->ort_affinity) sb_json(b, pl->ort_affinity);
  else sb_printf(b, "null");
  sb_printf(b, ",\n    \"caller_cpus\": ");
  if (pl->groups) {
    cutout__cpulist_format(&pl->groups[0], mask, sizeof mask);
    sb_json(b, mask);
  } else {
    sb_printf(b, "null");
  }
  sb_printf(b, "\n  },\n  \"threads\": {\"intra_workers\": %d, "
               "\"inter_workers\": %d, \"live\": %d, \"names\": [",
            pl->intra_workers, pl->inter_workers,
            cutout_engine_thread_count(e));
  live_names(b, 1);
  sb_printf(b, "]},\n  \"providers\": [");
  const char *p = e->providers;
  for (int i = 0; *p; i++) {
    size_t len = strcspn(p, ",");
    char one[128];
    snprintf(one, sizeof one, "%.*s", (int)len, p);
    sb_printf(b, "%s", i ? ", " : "");
    sb_json(b, one);
    p += len + (p[len] == ',');
  }
  char dir[PATH_MAX];
  int files;
  double mb;
  cache_summary(dir, sizeof dir, &files, &mb);
  sb_printf(b, "],\n  \"model_cache\": {\"folder\": ");
  sb_json(b, dir);
  sb_printf(b, ", \"files\": %d, \"megabytes\": %.1f}\n}\n", files, mb);
}

cutout_status cutout_engine_describe(const cutout_engine *e, int json,
                                     char **out)
{
  if (!e || !out) return CUTOUT_EINVAL;
  struct sb b = {NULL, 0, 0, 0};
  b.s = malloc(4096);
  if (!b.s) return CUTOUT_ENOMEM;
  b.cap = 4096;
  b.s[0] = 0;
  if (json) describe_json(&b, e);
  else describe_text(&b, e);
  if (b.oom) {
    free(b.s);
    return CUTOUT_ENOMEM;
  }
  *out = b.s;
  return CUTOUT_OK;
}
