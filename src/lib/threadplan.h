/*
 * threadplan.h: from engine parameters (flag > env > OMP_NUM_THREADS >
 * auto) and the topology to the effective threading plan, with a source
 * and a reason for every field, and the exact list of ONNX Runtime calls
 * that carry it out.  Pure: no ORT object is created here.
 */
#ifndef CUTOUT_THREADPLAN_H
#define CUTOUT_THREADPLAN_H

#include "topology.h"

/* One slot of cutout_engine_params.source_[] per field. */
enum cutout__field {
  CUTOUT_F_WORKLOAD,
  CUTOUT_F_INTRA,
  CUTOUT_F_INTER,
  CUTOUT_F_EXEC_MODE,
  CUTOUT_F_GRAPH_OPT,
  CUTOUT_F_SPIN,
  CUTOUT_F_SPIN_US,
  CUTOUT_F_SPIN_STOP,
  CUTOUT_F_CPU_BINDING,
  CUTOUT_F_THREAD_POOL,
  CUTOUT_F_DENORMALS,
  CUTOUT_F_DYN_BLOCK,
  CUTOUT_F_MEM_ARENA,
  CUTOUT_F_MEM_PATTERN,
  CUTOUT_F_HUGE_PAGES,
  CUTOUT_F_MODEL_CACHE,
  CUTOUT_F_FP16,
  CUTOUT_F_ORT_PROFILE,
  CUTOUT_F_WORKERS,
  CUTOUT_F_IO_THREADS,
  CUTOUT_F_LOG_LEVEL,
  CUTOUT_F_COUNT
};

/* Name of field f as in the struct ("intra_threads"), its CLI flag and its
 * environment variable (NULL if none). */
const char *cutout__field_name(int f);
const char *cutout__field_flag(int f);
const char *cutout__field_env(int f);
/* The effective value of field f as text ("2", "sequential", "on"). */
void cutout__field_value(const cutout_engine_params *p, int f, char *out,
                         size_t cap);
/* 'i' integer, 'b' on/off, 'e' one of some words, 's' string. */
char cutout__field_kind(int f);
/* Field index by name, or -1. */
int cutout__field_find(const char *name);

/* The calls made on ONNX Runtime, in order. */
enum cutout__op_kind {
  CUTOUT_OP_ENV,            /* CreateEnv */
  CUTOUT_OP_ENV_GLOBAL,     /* CreateEnvWithGlobalThreadPools */
  CUTOUT_OP_G_INTRA,        /* SetGlobalIntraOpNumThreads(i) */
  CUTOUT_OP_G_INTER,        /* SetGlobalInterOpNumThreads(i) */
  CUTOUT_OP_G_SPIN,         /* SetGlobalSpinControl(i) */
  CUTOUT_OP_G_AFFINITY,     /* SetGlobalIntraOpThreadAffinity(s) */
  CUTOUT_OP_G_DENORMAL,     /* SetGlobalDenormalAsZero() */
  CUTOUT_OP_G_THREADS,      /* SetGlobalCustom{Create,Join}ThreadFn + opts */
  CUTOUT_OP_ENV_ALLOCATOR,  /* RegisterAllocator(cutout's huge-page one) */
  CUTOUT_OP_S_NO_PER_SESSION, /* DisablePerSessionThreads() */
  CUTOUT_OP_S_INTRA,        /* SetIntraOpNumThreads(i) */
  CUTOUT_OP_S_INTER,        /* SetInterOpNumThreads(i) */
  CUTOUT_OP_S_EXEC_MODE,    /* SetSessionExecutionMode(i) */
  CUTOUT_OP_S_GRAPH_OPT,    /* SetSessionGraphOptimizationLevel(i) */
  CUTOUT_OP_S_CONFIG,       /* AddSessionConfigEntry(key, s) */
  CUTOUT_OP_S_ARENA,        /* Enable/DisableCpuMemArena (i) */
  CUTOUT_OP_S_MEM_PATTERN,  /* Enable/DisableMemPattern (i) */
  CUTOUT_OP_S_PROFILING,    /* EnableProfiling(s) */
  CUTOUT_OP_S_THREADS       /* SessionOptionsSetCustom{Create,Join}... */
};

struct cutout__op {
  enum cutout__op_kind kind;
  int i;
  const char *key; /* config key (string literal) */
  const char *s;   /* value, owned by the plan */
};

#define CUTOUT_MAX_OPS 32
#define CUTOUT_MAX_NOTES 8

struct cutout__plan {
  cutout_engine_params eff;            /* no -1 left except spin_us */
  unsigned char src[CUTOUT_F_COUNT];   /* cutout_source per field */
  char reason[CUTOUT_F_COUNT][240];    /* why (auto) or from where */
  struct cutout__topology topo;
  /* cpu_binding parsed: group 0 pins the calling threads, group k the
   * k-th intra-op worker.  NULL/0 without a binding. */
  cpu_set_t *groups;
  int ngroups;
  char *binding;                       /* owned copy of eff.cpu_binding */
  char *profile;                       /* owned copy of eff.ort_profile */
  char *ort_affinity;                  /* ORT's 1-based string, or NULL */
  char num[8][16];                     /* storage for numeric config values */
  int intra_workers;                   /* pool threads ORT will create */
  int inter_workers;
  struct cutout__op env_ops[CUTOUT_MAX_OPS];
  int n_env_ops;
  struct cutout__op sess_ops[CUTOUT_MAX_OPS];
  int n_sess_ops;
  char notes[CUTOUT_MAX_NOTES][240];   /* warnings: valid but costly */
  int n_notes;
};

/* Set field f of p from text, as a flag or an environment variable would
 * (the value of string fields is kept by pointer).  src is recorded.
 * CUTOUT_EINVAL with the reason in err (CUTOUT_ERRMSG_MAX) on a bad
 * value. */
cutout_status cutout__param_parse(cutout_engine_params *p, int f,
                                  const char *text, cutout_source src,
                                  char *err);

/* Plan: topology, precedence, auto choices, validation, ORT calls.  The
 * plan owns its strings: cutout__plan_free.  On error the plan is freed. */
cutout_status cutout__plan_make(const cutout_engine_params *in,
                                struct cutout__plan *pl, char *err);
/* The same, with a given topology (unit tests). */
cutout_status cutout__plan_make_topo(const cutout_engine_params *in,
                                     const struct cutout__topology *topo,
                                     struct cutout__plan *pl, char *err);
void cutout__plan_free(struct cutout__plan *pl);

/* A call as text: "SetIntraOpNumThreads(2)". */
void cutout__op_format(const struct cutout__op *op, char *out, size_t cap);

#endif
