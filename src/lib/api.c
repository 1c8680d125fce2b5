/*
 * api.c: status strings, versions, the per-thread ctx, and the ctx-level
 * wrappers around the codecs (error text and stage timings live on the ctx).
 */
#include "codec.h"
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cutout_strerror(cutout_status s)
{
  switch (s) {
  case CUTOUT_OK: return "success";
  case CUTOUT_EINVAL: return "invalid argument";
  case CUTOUT_ENOMEM: return "out of memory";
  case CUTOUT_EIO: return "input/output error";
  case CUTOUT_EFORMAT: return "not an image, or a corrupt one";
  case CUTOUT_ELIMIT: return "limit exceeded";
  case CUTOUT_ENOMODEL: return "unknown model";
  case CUTOUT_EMODEL: return "model file missing or invalid";
  case CUTOUT_ERUNTIME: return "ONNX Runtime error";
  case CUTOUT_ECANCELED: return "canceled";
  case CUTOUT_EUNSUPPORTED: return "not supported";
  }
  return "unknown status";
}

const char *cutout_version(void) { return CUTOUT_VERSION_STRING; }

void cutout_free(void *p) { free(p); }

cutout_ctx_params cutout_ctx_default_params(void)
{
  cutout_ctx_params p = {100000000ull, -1};
  return p;
}

cutout_status cutout_ctx_new(cutout_engine *e, const cutout_ctx_params *p,
                             cutout_ctx **out)
{
  if (!e || !out) return CUTOUT_EINVAL;
  cutout_ctx *c = calloc(1, sizeof *c);
  if (!c) return CUTOUT_ENOMEM;
  c->engine = e;
  c->params = p ? *p : cutout_ctx_default_params();
  c->io_threads = c->params.io_threads > 0 ? c->params.io_threads
                                           : e->eff.io_threads;
  if (e->api->CreateRunOptions(&c->run_opts)) {
    free(c);
    return CUTOUT_ENOMEM;
  }
  atomic_init(&c->canceled, 0);
  *out = c;
  return CUTOUT_OK;
}

void cutout_ctx_free(cutout_ctx *c)
{
  if (!c) return;
  c->engine->api->ReleaseRunOptions(c->run_opts);
  free(c);
}

const char *cutout_ctx_errmsg(const cutout_ctx *c) { return c ? c->errmsg : ""; }

void cutout_ctx_cancel(cutout_ctx *c)
{
  if (!c) return;
  atomic_store(&c->canceled, 1);
  OrtStatus *st = c->engine->api->RunOptionsSetTerminate(c->run_opts);
  if (st) c->engine->api->ReleaseStatus(st);
}

cutout_stage_times cutout_ctx_times(const cutout_ctx *c)
{
  cutout_stage_times z;
  memset(&z, 0, sizeof z);
  return c ? c->times : z;
}

const char *cutout_stage_name(cutout_stage s)
{
  static const char *const names[CUTOUT_STAGE_COUNT] = {
      "decode", "preprocess", "inference", "postprocess", "encode",
      "matting" /* issue #6 */};
  return (unsigned)s < CUTOUT_STAGE_COUNT ? names[s] : "unknown";
}

cutout_status cutout_decode(cutout_ctx *c, const void *data, size_t len,
                            cutout_image **out)
{
  if (!c) return CUTOUT_EINVAL;
  c->errmsg[0] = 0;
  if (!data || !out)
    return cutout__err(c->errmsg, CUTOUT_EINVAL, "no input buffer");
  struct cutout__stage_clock k;
  cutout__stage_begin(&k);
  cutout_decode_limits lim = {c->params.max_pixels};
  cutout_status st = cutout__decode(data, len, &lim, out, c->errmsg);
  cutout__stage_end(&k, &c->times, CUTOUT_STAGE_DECODE);
  return st;
}

cutout_status cutout_encode(cutout_ctx *c, const cutout_image *img,
                            const cutout_encode_params *p, void **out,
                            size_t *out_len)
{
  if (!c) return CUTOUT_EINVAL;
  c->errmsg[0] = 0;
  if (!img || !out || !out_len)
    return cutout__err(c->errmsg, CUTOUT_EINVAL, "bad arguments to encode");
  cutout_encode_params def = cutout_encode_default_params();
  struct cutout__stage_clock k;
  cutout__stage_begin(&k);
  uint8_t *buf = NULL;
  size_t n = 0;
  cutout_status st = cutout__encode(img, p ? p : &def, c->io_threads, &buf, &n,
                                    c->errmsg);
  cutout__stage_end(&k, &c->times, CUTOUT_STAGE_ENCODE);
  if (st) return st;
  *out = buf;
  *out_len = n;
  return CUTOUT_OK;
}
