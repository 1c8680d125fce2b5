/*
 * topology.c: how many CPUs may this process really use?
 *
 * DESIGN
 * ONNX Runtime sizes its default pool from the host's physical cores and
 * ignores taskset masks and container quotas (ort-threading.md §0), so
 * cutout finds the answer itself, from three sources:
 *   1. sched_getaffinity(): the logical CPUs the thread may run on;
 *   2. sysfs: which of those are SMT siblings of one core (counted once)
 *      and which NUMA node each belongs to;
 *   3. the cgroup CPU quota of the process's own cgroup and its ancestors
 *      (v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us).
 * Files that are missing mean "no information", never an error: a
 * container may hide sysfs, and a bare machine has no quota.  The roots
 * are injectable (CUTOUT_SYSFS_ROOT, CUTOUT_CGROUP_ROOT) so tests can fake
 * an SMT box, a second NUMA node or a container quota.
 */
#include "topology.h"

#include "bigalloc.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cutout__cpulist_parse(const char *str, size_t len, cpu_set_t *s)
{
  CPU_ZERO(s);
  size_t i = 0;
  int any = 0;
  while (i < len) {
    long lo, hi;
    if (!isdigit((unsigned char)str[i])) return -1;
    for (lo = 0; i < len && isdigit((unsigned char)str[i]); i++) {
      lo = lo * 10 + (str[i] - '0');
      if (lo >= CPU_SETSIZE) return -1;
    }
    hi = lo;
    if (i < len && str[i] == '-') {
      i++;
      if (i >= len || !isdigit((unsigned char)str[i])) return -1;
      for (hi = 0; i < len && isdigit((unsigned char)str[i]); i++) {
        hi = hi * 10 + (str[i] - '0');
        if (hi >= CPU_SETSIZE) return -1;
      }
      if (hi < lo) return -1;
    }
    for (long c = lo; c <= hi; c++) CPU_SET((int)c, s);
    any = 1;
    if (i < len) {
      if (str[i] != ',') return -1;
      i++;
      if (i >= len) return -1; /* trailing comma */
    }
  }
  return any ? 0 : -1;
}

char *cutout__cpulist_format(const cpu_set_t *s, char *out, size_t cap)
{
  size_t p = 0;
  out[0] = 0;
  for (int c = 0; c < CPU_SETSIZE; c++) {
    if (!CPU_ISSET(c, s)) continue;
    int e = c;
    while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, s)) e++;
    int n = e > c ? snprintf(out + p, cap - p, "%s%d-%d", p ? "," : "", c, e)
                  : snprintf(out + p, cap - p, "%s%d", p ? "," : "", c);
    if (n < 0 || (size_t)n >= cap - p) break; /* truncated: keep what fits */
    p += (size_t)n;
    c = e;
  }
  return out;
}

/* Read a small file into buf (trailing newline removed); -1 if absent. */
static int read_small(const char *path, char *buf, size_t cap)
{
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = 0;
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = 0;
  return 0;
}

static int read_cpulist(const char *path, cpu_set_t *s)
{
  char buf[4096];
  if (read_small(path, buf, sizeof buf)) return -1;
  return cutout__cpulist_parse(buf, strlen(buf), s);
}

static const char *sysfs_root(void)
{
  const char *r = getenv("CUTOUT_SYSFS_ROOT");
  return r && *r ? r : "/sys";
}

/* The core of a CPU is named by the first CPU of its sibling list. */
static int core_key(const char *root, int cpu)
{
  char path[PATH_MAX];
  cpu_set_t s;
  static const char *const files[] = {"core_cpus_list", "thread_siblings_list"};
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/devices/system/cpu/cpu%d/topology/%s", root,
             cpu, files[i]);
    if (read_cpulist(path, &s) == 0)
      for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &s)) return c;
  }
  return cpu; /* no topology information: every CPU is its own core */
}

static int count_cores(const cpu_set_t *cpus, const int *key, int *smt)
{
  static _Thread_local unsigned char seen[CPU_SETSIZE];
  int n = 0;
  memset(seen, 0, sizeof seen);
  for (int c = 0; c < CPU_SETSIZE; c++) {
    if (!CPU_ISSET(c, cpus)) continue;
    if (seen[key[c]]++ == 0) n++;
    else if (smt) *smt = 1;
  }
  return n;
}

static void read_nodes(struct cutout__topology *t, const char *root,
                       const int *key)
{
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/devices/system/node", root);
  DIR *d = opendir(path);
  t->nodes = 0;
  if (d) {
    struct dirent *de;
    while ((de = readdir(d)) && t->nodes < CUTOUT_MAX_NODES) {
      int id;
      char tail;
      if (sscanf(de->d_name, "node%d%c", &id, &tail) != 1) continue;
      cpu_set_t s, both;
      snprintf(path, sizeof path, "%s/devices/system/node/node%d/cpulist",
               root, id);
      if (read_cpulist(path, &s)) continue;
      CPU_AND(&both, &s, &t->allowed);
      if (!CPU_COUNT(&both)) continue;
      /* keep the nodes sorted by id: readdir order is arbitrary */
      int k = t->nodes++;
      while (k > 0 && t->node_id[k - 1] > id) {
        t->node_id[k] = t->node_id[k - 1];
        t->node_cpus[k] = t->node_cpus[k - 1];
        k--;
      }
      t->node_id[k] = id;
      t->node_cpus[k] = both;
    }
    closedir(d);
  }
  if (t->nodes == 0) { /* no NUMA information: one node */
    t->nodes = 1;
    t->node_id[0] = 0;
    t->node_cpus[0] = t->allowed;
  }
  for (int i = 0; i < t->nodes; i++)
    t->node_cores[i] = count_cores(&t->node_cpus[i], key, NULL);
}

/* ------------------------------------------------------------------------
 * cgroup quota
 * ---------------------------------------------------------------------- */

struct cg_mounts {
  char v2[PATH_MAX];         /* cgroup2 mount point, "" if none */
  char v2_root[PATH_MAX];    /* the cgroup the mount shows as its root */
  char v1[2][PATH_MAX];      /* candidate cpu controller mounts */
  char v1_root[PATH_MAX];
};

/* Has the comma-separated list opts the token tok? */
static int has_token(const char *opts, const char *tok)
{
  size_t n = strlen(tok);
  for (const char *p = opts; p && *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && strncmp(p, tok, n) == 0) return 1;
    p = e ? e + 1 : NULL;
  }
  return 0;
}

static void find_mounts(struct cg_mounts *m)
{
  memset(m, 0, sizeof *m);
  const char *root = getenv("CUTOUT_CGROUP_ROOT");
  if (root && *root) {
    snprintf(m->v2, sizeof m->v2, "%s", root);
    snprintf(m->v1[0], sizeof m->v1[0], "%s/cpu,cpuacct", root);
    snprintf(m->v1[1], sizeof m->v1[1], "%s/cpu", root);
    return;
  }
  FILE *f = fopen("/proc/self/mountinfo", "r");
  char line[4096];
  while (f && fgets(line, sizeof line, f)) {
    /* id parent maj:min root mountpoint opts... - fstype source superopts */
    char mroot[PATH_MAX], mpoint[PATH_MAX], fstype[64], superopts[1024];
    const char *dash = strstr(line, " - ");
    if (!dash) continue;
    if (sscanf(line, "%*s %*s %*s %4095s %4095s", mroot, mpoint) != 2) continue;
    if (sscanf(dash + 3, "%63s %*s %1023s", fstype, superopts) != 2) continue;
    if (strcmp(fstype, "cgroup2") == 0 && !m->v2[0]) {
      snprintf(m->v2, sizeof m->v2, "%s", mpoint);
      snprintf(m->v2_root, sizeof m->v2_root, "%s", mroot);
    } else if (strcmp(fstype, "cgroup") == 0 && has_token(superopts, "cpu") &&
               !m->v1[0][0]) {
      snprintf(m->v1[0], sizeof m->v1[0], "%s", mpoint);
      snprintf(m->v1_root, sizeof m->v1_root, "%s", mroot);
    }
  }
  if (f) fclose(f);
  if (!m->v1[0][0]) snprintf(m->v1[0], sizeof m->v1[0], "/sys/fs/cgroup/cpu,cpuacct");
  snprintf(m->v1[1], sizeof m->v1[1], "/sys/fs/cgroup/cpu");
  if (!m->v2[0]) snprintf(m->v2, sizeof m->v2, "/sys/fs/cgroup");
}

/* The process's cgroup paths from /proc/self/cgroup: v2 ("0::/path") and
 * the v1 hierarchy holding the cpu controller. */
static void own_cgroups(char *v2, char *v1, size_t cap)
{
  snprintf(v2, cap, "/");
  snprintf(v1, cap, "/");
  FILE *f = fopen("/proc/self/cgroup", "r");
  char line[4096];
  while (f && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2) continue;
    *c2 = 0;
    if (strcmp(line, "0:") == 0 && c1[1] == 0)
      snprintf(v2, cap, "%s", c2 + 1);
    else if (has_token(c1 + 1, "cpu"))
      snprintf(v1, cap, "%s", c2 + 1);
  }
  if (f) fclose(f);
}

/* Strip the mount's own root from a cgroup path (bind-mounted subtrees). */
static const char *relative(const char *path, const char *mroot)
{
  size_t n = strlen(mroot);
  if (n > 1 && strncmp(path, mroot, n) == 0 && (path[n] == '/' || !path[n]))
    return path[n] ? path + n : "/";
  return path;
}

/* Walk from mount+path up to mount; fn reads one directory and returns
 * the quota there (CPUs) or 0.  Returns the smallest quota found. */
static double walk_quota(const char *mount, const char *path,
                         double (*fn)(const char *dir, char *src, size_t cap),
                         char *src, size_t cap)
{
  char rel[PATH_MAX], dir[PATH_MAX * 2], here[320];
  double best = 0;
  snprintf(rel, sizeof rel, "%s", path);
  for (;;) {
    snprintf(dir, sizeof dir, "%s%s", mount, strcmp(rel, "/") ? rel : "");
    double q = fn(dir, here, sizeof here);
    if (q > 0 && (best == 0 || q < best)) {
      best = q;
      snprintf(src, cap, "%s", here);
    }
    char *slash = strrchr(rel, '/');
    if (!slash || slash == rel) {
      if (strcmp(rel, "/") == 0 || !slash) break;
      snprintf(rel, sizeof rel, "/"); /* one more step: the mount itself */
      continue;
    }
    *slash = 0;
  }
  return best;
}

static double quota_v2(const char *dir, char *src, size_t cap)
{
  char path[PATH_MAX * 2 + 16], buf[128], q[32] = "";
  long period = 0;
  snprintf(path, sizeof path, "%s/cpu.max", dir);
  if (read_small(path, buf, sizeof buf)) return 0;
  if (sscanf(buf, "%31s %ld", q, &period) != 2 || strcmp(q, "max") == 0 ||
      period <= 0)
    return 0;
  double v = strtod(q, NULL) / (double)period;
  snprintf(src, cap, "cgroup v2 %.200s = %s", path, buf);
  return v > 0 ? v : 0;
}

static double quota_v1(const char *dir, char *src, size_t cap)
{
  char path[PATH_MAX * 2 + 32], buf[64];
  long quota, period;
  snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
  if (read_small(path, buf, sizeof buf) || sscanf(buf, "%ld", &quota) != 1 ||
      quota <= 0)
    return 0;
  snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
  if (read_small(path, buf, sizeof buf) || sscanf(buf, "%ld", &period) != 1 ||
      period <= 0)
    return 0;
  snprintf(src, cap, "cgroup v1 %.200s/cpu.cfs_quota_us = %ld / %ld", dir,
           quota, period);
  return (double)quota / (double)period;
}

static void read_quota(struct cutout__topology *t)
{
  struct cg_mounts m;
  char v2[PATH_MAX], v1[PATH_MAX], src[320] = "";
  find_mounts(&m);
  own_cgroups(v2, v1, sizeof v2);
  double q2 = walk_quota(m.v2, relative(v2, m.v2_root), quota_v2, src,
                         sizeof src);
  double best = q2;
  snprintf(t->quota_src, sizeof t->quota_src, "%s", src);
  for (int i = 0; i < 2; i++) {
    char s1[320] = "";
    double q1 = walk_quota(m.v1[i], relative(v1, m.v1_root), quota_v1, s1,
                           sizeof s1);
    if (q1 > 0 && (best == 0 || q1 < best)) {
      best = q1;
      snprintf(t->quota_src, sizeof t->quota_src, "%s", s1);
    }
  }
  t->quota = best;
  if (best == 0)
    snprintf(t->quota_src, sizeof t->quota_src,
             "none (no cpu.max limit in %.100s%.60s, no cfs_quota_us limit in "
             "%.100s%.60s, nor above)", m.v2, strcmp(v2, "/") ? v2 : "",
             access(m.v1[0], F_OK) == 0 ? m.v1[0] : m.v1[1],
             strcmp(v1, "/") ? v1 : "");
}

void cutout__topology_read(struct cutout__topology *t)
{
  static _Thread_local int key[CPU_SETSIZE];
  const char *root = sysfs_root();
  char path[PATH_MAX];
  cpu_set_t online;

  memset(t, 0, sizeof *t);
  t->thp_ok = cutout__thp_available(t->thp_why, sizeof t->thp_why);
  snprintf(path, sizeof path, "%s/devices/system/cpu/online", root);
  if (read_cpulist(path, &online)) {
    CPU_ZERO(&online);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (long c = 0; c < n && c < CPU_SETSIZE; c++) CPU_SET((int)c, &online);
  }
  t->online = CPU_COUNT(&online);
  if (sched_getaffinity(0, sizeof t->allowed, &t->allowed) != 0)
    t->allowed = online;
  CPU_AND(&t->allowed, &t->allowed, &online);
  if (CPU_COUNT(&t->allowed) == 0) { /* fake sysfs disjoint from the mask */
    sched_getaffinity(0, sizeof t->allowed, &t->allowed);
  }
  t->allowed_count = CPU_COUNT(&t->allowed);

  for (int c = 0; c < CPU_SETSIZE; c++)
    key[c] = (CPU_ISSET(c, &online) || CPU_ISSET(c, &t->allowed))
                 ? core_key(root, c) : c;
  t->host_cores = count_cores(&online, key, NULL);
  t->cores = count_cores(&t->allowed, key, &t->smt);
  if (t->cores < 1) t->cores = 1;
  read_nodes(t, root, key);
  read_quota(t);

  char mask[256];
  cutout__cpulist_format(&t->allowed, mask, sizeof mask);
  t->usable = t->cores;
  int n = snprintf(t->usable_why, sizeof t->usable_why,
                   "%d physical core%s in the affinity mask %s%s", t->cores,
                   t->cores == 1 ? "" : "s", mask,
                   t->smt ? " (SMT siblings counted once)" : "");
  if (t->quota > 0) {
    /* Round to nearest: a thread beyond the quota only pays when it gets
     * at least half a CPU; below that it mostly waits out throttling. */
    int q = (int)floor(t->quota + 0.5);
    if (q < 1) q = 1;
    if (q < t->usable) {
      t->usable = q;
      snprintf(t->usable_why + n, sizeof t->usable_why - (size_t)n,
               ", capped by the cgroup quota of %.2f CPUs", t->quota);
    } else {
      snprintf(t->usable_why + n, sizeof t->usable_why - (size_t)n,
               "; cgroup quota %.2f CPUs does not lower it", t->quota);
    }
  } else {
    snprintf(t->usable_why + n, sizeof t->usable_why - (size_t)n,
             "; no cgroup CPU quota");
  }
}
