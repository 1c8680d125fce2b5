/* engine.h: the private layout of the engine, model and ctx handles. */
#ifndef CUTOUT_ENGINE_H
#define CUTOUT_ENGINE_H

#include "compiled.h"
#include "ort.h"
#include "registry.h"
#include "threadplan.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

/* One ORT thread pool (the global pair, or one session's pools): ORT's
 * thread-creation callback receives it and numbers the threads it
 * creates.  ORT builds the intra-op pool before the inter-op pool, so the
 * first intra_workers threads are intra-op workers 1.., the rest inter-op
 * workers 1... */
struct cutout__pool {
  cutout_engine *engine;
  atomic_int created;
  struct cutout__pool *next;
};

struct cutout_engine {
  const OrtApi *api;
  OrtEnv *env;
  OrtMemoryInfo *cpu_mem;
  OrtMemoryInfo *big_mem;      /* the huge-page allocator's CPU info */
  OrtAllocator big_alloc;      /* registered with the env (huge_pages) */
  int big_registered;
  cutout_engine_params eff;    /* effective values (plan->eff) */
  struct cutout__plan *plan;   /* sources, reasons, topology, ORT calls */
  pthread_mutex_t lock;        /* guards pools */
  struct cutout__pool *pools;  /* every pool record, freed with the engine */
  atomic_int live_intra;       /* ORT pool threads running now */
  atomic_int live_inter;
  char providers[512];         /* GetAvailableProviders, comma-separated */
};

struct cutout_model {
  cutout_engine *engine;
  const struct cutout__model_row *row; /* processing rules */
  char *name;                          /* rembg name or file name */
  char *path;                          /* file loaded */
  OrtSession *session;
  char *input_name;
  char *output_name;
  int64_t in_h, in_w;                  /* model input size */
  /* --- model families (issue #7) --- */
  int dynamic_batch;                   /* input dimension 0 is symbolic */
  int dynamic_size;                    /* input H, W are symbolic */
  int in_rank;                         /* SAM encoder: 3 (HWC) or 4 */
  OrtSession *decoder;                 /* SAM: the prompt decoder */
  char *decoder_path;
  char *decoder_output;                /* its first output: the masks */
  /* --- end model families --- */
  double t_read, t_verify, t_session;  /* load timings, seconds */
  struct cutout__compiled compiled;    /* how the session was made */
};

struct cutout_ctx {
  cutout_engine *engine;
  cutout_ctx_params params;
  int io_threads;
  OrtRunOptions *run_opts;             /* per ctx: carries the cancel flag */
  atomic_int canceled;
  cutout_stage_times times;
  char errmsg[CUTOUT_ERRMSG_MAX];
  char warnmsg[CUTOUT_ERRMSG_MAX];     /* issue #6: cutout_ctx_warning */
};

/* Session options from the engine's effective parameters: exactly the
 * plan's session calls (DisablePerSessionThreads with the shared pool). */
cutout_status cutout__session_options(cutout_engine *e, OrtSessionOptions **out,
                                      char *err);
/* The same, plus the execution providers of a model
 * (cutout_model_params.providers; model.c). */
cutout_status cutout__model_options(cutout_engine *e, const char *providers,
                                    OrtSessionOptions **out, char *err);

/* Around every Run, in the thread that calls it: pin the thread to the
 * binding's group 0 and set FTZ/DAZ when denormals_zero is on (ORT only
 * sets them in its own pool threads), then restore both afterwards so the
 * caller's own pixel code keeps its mask and exact float semantics. */
struct cutout__caller {
  int pinned;
  cpu_set_t saved;
  int mxcsr_saved;
  unsigned mxcsr;
};
void cutout__caller_enter(const cutout_engine *e, struct cutout__caller *c);
void cutout__caller_leave(const cutout_engine *e, struct cutout__caller *c);

#endif
