/*
 * compiled.h: the session of a model, made through cutout's cache of
 * ONNX Runtime-optimised models (see compiled.c).
 */
#ifndef CUTOUT_COMPILED_H
#define CUTOUT_COMPILED_H

#include "ort.h"

#include <limits.h>
#include <sys/stat.h>

struct cutout__compiled {
  cutout_compiled state;
  char path[PATH_MAX]; /* the cache file, or "" */
  char note[400];      /* fp16 promoted, or why the cache was not used */
  void *map;           /* the mapped cache file: ORT reads the weights from
                          it for as long as the session lives */
  size_t map_len;
};

/*
 * The session of model `name` (a registry name or a file name) whose file
 * `path` (stat sb) is mapped at bytes[0..len), for the execution providers
 * `providers` (cutout_model_params.providers; cpu_only when that is only
 * the CPU).  With the engine's model_cache on and cpu_only, it comes from
 * the cache, or is built, saved there and then loaded; otherwise, or when
 * the cache cannot be used, it is created from the bytes.  Either way ORT
 * gets the model rewritten (onnx_rewrite.c) when that loads.  An invalid
 * model fails with "<what>: <ORT's reason>".  c is filled in every case;
 * release it with cutout__compiled_release after the session.
 */
cutout_status cutout__compiled_session(cutout_engine *e,
                                       const cutout_model_params *p,
                                       const char *name, const char *path,
                                       const struct stat *sb,
                                       const void *bytes, size_t len,
                                       const char *providers, int cpu_only,
                                       const char *what, OrtSession **out,
                                       struct cutout__compiled *c, char *err);
void cutout__compiled_release(struct cutout__compiled *c);

/* The cache folder for p (see cutout_model_params.cache_dir). */
int cutout__compiled_dir(const cutout_model_params *p, char *out, size_t cap);

#endif
