/*
 * topology.h: the CPUs this process may really use, found the way a
 * container-aware program must find them: the affinity mask, physical
 * cores inside it (SMT siblings once), NUMA nodes, and the cgroup CPU quota.
 */
#ifndef CUTOUT_TOPOLOGY_H
#define CUTOUT_TOPOLOGY_H

#include "internal.h"

#include <sched.h>

#define CUTOUT_MAX_NODES 64

struct cutout__topology {
  int online;             /* logical CPUs online on the host */
  int host_cores;         /* physical cores on the host (ORT's default) */
  cpu_set_t allowed;      /* sched_getaffinity() ∩ online */
  int allowed_count;
  int cores;              /* physical cores with an allowed CPU */
  int smt;                /* 1: some core has two allowed siblings */
  int nodes;              /* NUMA nodes with an allowed CPU (>= 1) */
  cpu_set_t node_cpus[CUTOUT_MAX_NODES]; /* allowed CPUs per node */
  int node_id[CUTOUT_MAX_NODES];         /* sysfs node number */
  int node_cores[CUTOUT_MAX_NODES];      /* physical cores per node */
  double quota;           /* cgroup CPU quota in CPUs, 0 = none */
  char quota_src[320];    /* which file said so, or why none */
  int usable;             /* min(cores, quota rounded), >= 1 */
  char usable_why[256];   /* one line: how usable was found */
  int thp_ok;             /* transparent huge pages usable (madvise) */
  char thp_why[128];      /* the sysfs setting, or why not */
};

/*
 * Read the topology of the calling thread.  The roots default to /sys and
 * the cgroup mounts of /proc/self/mountinfo; CUTOUT_SYSFS_ROOT and
 * CUTOUT_CGROUP_ROOT replace them (tests fake an SMT box or a container).
 * Never fails: missing files mean "no information" (one core per CPU, one
 * node, no quota).
 */
void cutout__topology_read(struct cutout__topology *t);

/* "0-3,8,10-11" for a CPU set ("" if empty).  Returns out. */
char *cutout__cpulist_format(const cpu_set_t *s, char *out, size_t cap);

/* Parse the first len bytes of a taskset-style list ("0-3,8") into s;
 * -1 on bad syntax, an empty list, a reversed range or an id beyond
 * CPU_SETSIZE. */
int cutout__cpulist_parse(const char *str, size_t len, cpu_set_t *s);

#endif
