/*
 * model.c: finding, verifying and loading a model into an ORT session.
 *
 * Models live where rembg keeps them: $U2NET_HOME, else
 * $XDG_DATA_HOME/.u2net, else ~/.u2net, as <name>.onnx, so a rembg user's
 * downloads just work.  Hashes are checked as rembg (pooch) checks them; a
 * successful check is remembered in a hidden stamp beside the file, keyed
 * by size, mtime and inode, so a second load does not hash 100+ MB again.
 */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

cutout_model_params cutout_model_default_params(void)
{
  cutout_model_params p;
  memset(&p, 0, sizeof p);
  p.verify_checksum = 1;
  return p;
}

cutout_status cutout_model_dir(char *buf, size_t size)
{
  const char *u2 = getenv("U2NET_HOME");
  const char *xdg = getenv("XDG_DATA_HOME");
  const char *home = getenv("HOME");
  int n;
  if (!buf || !size) return CUTOUT_EINVAL;
  if (u2 && *u2) {
    if (u2[0] == '~' && (u2[1] == '/' || !u2[1]) && home)
      n = snprintf(buf, size, "%s%s", home, u2 + 1);
    else
      n = snprintf(buf, size, "%s", u2);
  } else if (xdg && *xdg) {
    n = snprintf(buf, size, "%s/.u2net", xdg);
  } else {
    n = snprintf(buf, size, "%s/.u2net", home ? home : ".");
  }
  return (n < 0 || (size_t)n >= size) ? CUTOUT_ELIMIT : CUTOUT_OK;
}

static int looks_like_path(const char *s)
{
  size_t n = strlen(s);
  return strchr(s, '/') || (n > 5 && strcmp(s + n - 5, ".onnx") == 0);
}

/* "md5:<hex>" / "sha256:<hex>" of a buffer. */
static void hex_digest(const EVP_MD *md, const void *data, size_t len,
                       char *out, size_t cap)
{
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int dn = 0;
  out[0] = 0;
  if (!EVP_Digest(data, len, d, &dn, md, NULL)) return;
  size_t p = (size_t)snprintf(out, cap, "%s:", md == EVP_md5() ? "md5" : "sha256");
  for (unsigned i = 0; i < dn && p + 3 <= cap; i++, p += 2)
    snprintf(out + p, cap - p, "%02x", d[i]);
}

static const EVP_MD *md_of(const char *hash)
{
  if (strncmp(hash, "md5:", 4) == 0) return EVP_md5();
  if (strncmp(hash, "sha256:", 7) == 0) return EVP_sha256();
  return NULL;
}

static void stamp_path(const char *path, char *out, size_t cap)
{
  const char *slash = strrchr(path, '/');
  if (slash)
    snprintf(out, cap, "%.*s/.%s.cutout-verified", (int)(slash - path), path,
             slash + 1);
  else
    snprintf(out, cap, ".%s.cutout-verified", path);
}

static void stamp_key(const struct stat *st, const char *hash, char *out,
                      size_t cap)
{
  snprintf(out, cap, "%lld %lld.%09ld %llu %s\n", (long long)st->st_size,
           (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
           (unsigned long long)st->st_ino, hash);
}

int cutout__stamp_ok(const char *path, const struct stat *st, const char *hash)
{
  char sp[PATH_MAX + 32], want[256], got[256] = "";
  stamp_path(path, sp, sizeof sp);
  stamp_key(st, hash, want, sizeof want);
  FILE *f = fopen(sp, "r");
  if (!f) return 0;
  size_t n = fread(got, 1, sizeof got - 1, f);
  fclose(f);
  got[n] = 0;
  return strcmp(got, want) == 0;
}

void cutout__stamp_write(const char *path, const struct stat *st,
                        const char *hash)
{
  char sp[PATH_MAX + 32], key[256], tmp[PATH_MAX + 48];
  stamp_path(path, sp, sizeof sp);
  stamp_key(st, hash, key, sizeof key);
  snprintf(tmp, sizeof tmp, "%s.%ld", sp, (long)getpid());
  FILE *f = fopen(tmp, "w");
  if (!f) return; /* a read-only folder only costs a re-hash next time */
  int ok = fputs(key, f) >= 0;
  if (fclose(f) != 0) ok = 0;
  if (!ok || rename(tmp, sp) != 0) unlink(tmp);
}

/* Check data against the row's hash (or its alternative artifact). */
static cutout_status verify(const struct cutout__model_row *row,
                            const char *path, const struct stat *st,
                            const void *data, size_t len, char *err)
{
  const char *want[2] = {row->info.hash, row->alt_hash};
  for (int i = 0; i < 2; i++)
    if (want[i] && cutout__stamp_ok(path, st, want[i])) return CUTOUT_OK;
  char got[2][160] = {"", ""};
  for (int i = 0; i < 2; i++) {
    if (!want[i] || !md_of(want[i])) continue;
    hex_digest(md_of(want[i]), data, len, got[i], sizeof got[i]);
    if (strcmp(got[i], want[i]) == 0) {
      cutout__stamp_write(path, st, want[i]);
      return CUTOUT_OK;
    }
  }
  return cutout__err(err, CUTOUT_EMODEL,
                     "%s: checksum mismatch: %s, expected %s%s%s (the file is "
                     "damaged or not the %s model; delete it and fetch it "
                     "again, or set MODEL_CHECKSUM_DISABLED=1)",
                     path, got[0], want[0], want[1] ? " or " : "",
                     want[1] ? want[1] : "", row->info.name);
}

static cutout_status read_io_info(cutout_model *m, char *err)
{
  const OrtApi *api = m->engine->api;
  OrtAllocator *al = NULL;
  OrtTypeInfo *ti = NULL;
  cutout_status st;
  size_t nin = 0, nout = 0;
  char *name = NULL;

  st = cutout__ort_check(api->GetAllocatorWithDefaultOptions(&al),
                         CUTOUT_ERUNTIME, err, "allocator");
  if (st) return st;
  st = cutout__ort_check(api->SessionGetInputCount(m->session, &nin),
                         CUTOUT_EMODEL, err, m->path);
  if (!st) st = cutout__ort_check(api->SessionGetOutputCount(m->session, &nout),
                                  CUTOUT_EMODEL, err, m->path);
  if (st) return st;
  if (nin < 1 || nout < 1)
    return cutout__err(err, CUTOUT_EMODEL, "%s: the model has no %s", m->path,
                       nin < 1 ? "input" : "output");
  if ((st = cutout__ort_check(api->SessionGetInputName(m->session, 0, al, &name),
                              CUTOUT_EMODEL, err, m->path)))
    return st;
  m->input_name = strdup(name);
  al->Free(al, name);
  if ((st = cutout__ort_check(api->SessionGetOutputName(m->session, 0, al, &name),
                              CUTOUT_EMODEL, err, m->path)))
    return st;
  m->output_name = strdup(name);
  al->Free(al, name);
  if (!m->input_name || !m->output_name)
    return cutout__err(err, CUTOUT_ENOMEM, "out of memory");

  /* Input shape: [N, 3, H, W]; dynamic sizes fall back to the registry. */
  m->in_h = m->in_w = m->row->info.input_size;
  st = cutout__ort_check(api->SessionGetInputTypeInfo(m->session, 0, &ti),
                         CUTOUT_EMODEL, err, m->path);
  if (st) return st;
  const OrtTensorTypeAndShapeInfo *tsi = NULL;
  size_t nd = 0;
  int64_t dims[8];
  if (!api->CastTypeInfoToTensorInfo(ti, &tsi) && tsi &&
      !api->GetDimensionsCount(tsi, &nd) && nd == 4 &&
      !api->GetDimensions(tsi, dims, 4)) {
    if (dims[1] > 0 && dims[1] != 3)
      st = cutout__err(err, CUTOUT_EMODEL,
                       "%s: input has %lld channels, expected 3 (RGB)",
                       m->path, (long long)dims[1]);
    if (dims[2] > 0) m->in_h = dims[2];
    if (dims[3] > 0) m->in_w = dims[3];
    /* --- model families (issue #7): symbolic dimensions are < 0 --- */
    m->dynamic_batch = dims[0] <= 0;
    m->dynamic_size = dims[2] <= 0 || dims[3] <= 0;
  } else {
    st = cutout__err(err, CUTOUT_EMODEL,
                     "%s: input must be a 4-D float tensor [1,3,H,W]",
                     m->path);
  }
  api->ReleaseTypeInfo(ti);
  return st;
}

void cutout_model_free(cutout_model *m)
{
  if (!m) return;
  if (m->session) m->engine->api->ReleaseSession(m->session);
  if (m->decoder) m->engine->api->ReleaseSession(m->decoder);
  cutout__compiled_release(&m->compiled); /* after the session it feeds */
  free(m->decoder_path);
  free(m->decoder_output);
  free(m->name);
  free(m->path);
  free(m->input_name);
  free(m->output_name);
  free(m);
}

/* Resolve name_or_path into a registry row and a file path. */
static cutout_status resolve(const char *name_or_path,
                             const cutout_model_params *p,
                             const struct cutout__model_row **row_out,
                             char *path, size_t cap, char *err)
{
  char dir[PATH_MAX];
  if (p->model_dir) {
    if ((size_t)snprintf(dir, sizeof dir, "%s", p->model_dir) >= sizeof dir)
      return cutout__err(err, CUTOUT_EINVAL, "model folder name too long");
  } else if (cutout_model_dir(dir, sizeof dir)) {
    return cutout__err(err, CUTOUT_EINVAL, "model folder name too long");
  }

  if (looks_like_path(name_or_path)) {
    const char *base = strrchr(name_or_path, '/');
    base = base ? base + 1 : name_or_path;
    const struct cutout__model_row *r = cutout__registry_by_file(base);
    /* An unknown file gets ISNet processing, as rembg's dis_custom. */
    *row_out = r ? r : cutout__registry_find("dis_custom");
    if ((size_t)snprintf(path, cap, "%s", name_or_path) >= cap)
      return cutout__err(err, CUTOUT_EINVAL, "model path too long");
    return CUTOUT_OK;
  }

  const struct cutout__model_row *r = cutout__registry_find(name_or_path);
  if (!r) {
    char known[1024] = "";
    size_t k = 0;
    for (size_t i = 0; i < cutout__registry_count() && k < sizeof known; i++)
      k += (size_t)snprintf(known + k, sizeof known - k, "%s%s", i ? ", " : "",
                            cutout__registry_at(i)->info.name);
    return cutout__err(err, CUTOUT_ENOMODEL, "unknown model '%s' (known: %s)",
                       name_or_path, known);
  }
  *row_out = r;
  if (r->custom) {
    /* rembg's path-traversal fix: model_path must resolve inside the
     * model folder. */
    if (!p->model_path || !*p->model_path)
      return cutout__err(err, CUTOUT_EINVAL,
                         "model %s needs model_path (-x '{\"model_path\": "
                         "\"...\"}') naming a file inside %s",
                         r->info.name, dir);
    char rdir[PATH_MAX], rfile[PATH_MAX];
    if (!realpath(dir, rdir))
      return cutout__err(err, CUTOUT_EMODEL, "model folder %s: %s", dir,
                         strerror(errno));
    if (!realpath(p->model_path, rfile))
      return cutout__err(err, CUTOUT_EMODEL, "model_path %s: %s",
                         p->model_path, strerror(errno));
    size_t dl = strlen(rdir);
    if (strncmp(rfile, rdir, dl) != 0 || rfile[dl] != '/')
      return cutout__err(err, CUTOUT_EINVAL,
                         "model_path %s is outside the model folder %s",
                         p->model_path, rdir);
    if ((size_t)snprintf(path, cap, "%s", rfile) >= cap)
      return cutout__err(err, CUTOUT_EINVAL, "model path too long");
    return CUTOUT_OK;
  }
  if ((size_t)snprintf(path, cap, "%s/%s", dir, r->info.file) >= cap)
    return cutout__err(err, CUTOUT_EINVAL, "model path too long");
  return CUTOUT_OK;
}

static const char *how_to_get(const struct cutout__model_row *r)
{
  if (strcmp(r->info.name, "isnet-general-use") == 0 ||
      strcmp(r->info.name, "isnet-quint8") == 0)
    return "run scripts/bootstrap.sh, or copy rembg's file there";
  if (r->info.url || r->post == CUTOUT_POST_SAM)
    return "download it with `cutout d NAME`, let cutout fetch it (no "
           "--offline), or copy it there";
  return "copy the model file there";
}

/* --- model families (issue #7) ---------------------------------------- */

/* Execution providers by cutout's short name and ORT's name. */
static const struct {
  const char *name, *ort;
} providers[] = {
    {"cpu", "CPUExecutionProvider"},
    {"cuda", "CUDAExecutionProvider"},
    {"tensorrt", "TensorrtExecutionProvider"},
    {"rocm", "ROCMExecutionProvider"},
    {"migraphx", "MIGraphXExecutionProvider"},
    {"openvino", "OpenVINOExecutionProvider"},
    {"dnnl", "DnnlExecutionProvider"},
    {"cann", "CANNExecutionProvider"},
    {"coreml", "CoreMLExecutionProvider"},
    {"xnnpack", "XnnpackExecutionProvider"},
    {"qnn", "QNNExecutionProvider"},
    {"webgpu", "WebGpuExecutionProvider"},
    {"vitisai", "VitisAIExecutionProvider"},
    {"azure", "AzureExecutionProvider"},
};
#define NPROVIDERS (sizeof providers / sizeof providers[0])

/* Index of a provider named by either spelling (any case), or -1. */
static int provider_index(const char *s, size_t n)
{
  for (size_t i = 0; i < NPROVIDERS; i++)
    if ((strlen(providers[i].name) == n &&
         strncasecmp(providers[i].name, s, n) == 0) ||
        (strlen(providers[i].ort) == n &&
         strncasecmp(providers[i].ort, s, n) == 0))
      return (int)i;
  return -1;
}

static int in_list(const char *list, const char *name)
{
  size_t n = strlen(name);
  for (const char *p = list; p && *p;) {
    const char *c = strchr(p, ',');
    size_t k = c ? (size_t)(c - p) : strlen(p);
    if (k == n && strncmp(p, name, n) == 0) return 1;
    p = c ? c + 1 : NULL;
  }
  return 0;
}

/* Append one provider; ORT's error (a missing CUDA library, ...) is the
 * reason given. */
static cutout_status append_one(cutout_engine *e, OrtSessionOptions *so,
                                int i, char *err)
{
  const OrtApi *api = e->api;
  const char *name = providers[i].name;
  OrtStatus *os = NULL;
  char what[160];
  snprintf(what, sizeof what, "execution provider %s could not be loaded "
           "(cutout does not fall back to CPU silently)", providers[i].ort);
  if (strcmp(name, "cuda") == 0) {
    OrtCUDAProviderOptionsV2 *o = NULL;
    os = api->CreateCUDAProviderOptions(&o);
    if (!os) os = api->SessionOptionsAppendExecutionProvider_CUDA_V2(so, o);
    if (o) api->ReleaseCUDAProviderOptions(o);
  } else if (strcmp(name, "tensorrt") == 0) {
    OrtTensorRTProviderOptionsV2 *o = NULL;
    os = api->CreateTensorRTProviderOptions(&o);
    if (!os) os = api->SessionOptionsAppendExecutionProvider_TensorRT_V2(so, o);
    if (o) api->ReleaseTensorRTProviderOptions(o);
  } else if (strcmp(name, "rocm") == 0) {
    OrtROCMProviderOptions *o = NULL;
    os = api->CreateROCMProviderOptions(&o);
    if (!os) os = api->SessionOptionsAppendExecutionProvider_ROCM(so, o);
    if (o) api->ReleaseROCMProviderOptions(o);
  } else if (strcmp(name, "dnnl") == 0) {
    OrtDnnlProviderOptions *o = NULL;
    os = api->CreateDnnlProviderOptions(&o);
    if (!os) os = api->SessionOptionsAppendExecutionProvider_Dnnl(so, o);
    if (o) api->ReleaseDnnlProviderOptions(o);
  } else if (strcmp(name, "cann") == 0) {
    OrtCANNProviderOptions *o = NULL;
    os = api->CreateCANNProviderOptions(&o);
    if (!os) os = api->SessionOptionsAppendExecutionProvider_CANN(so, o);
    if (o) api->ReleaseCANNProviderOptions(o);
  } else if (strcmp(name, "migraphx") == 0) {
    OrtMIGraphXProviderOptions o;
    memset(&o, 0, sizeof o);
    os = api->SessionOptionsAppendExecutionProvider_MIGraphX(so, &o);
  } else if (strcmp(name, "openvino") == 0) {
    os = api->SessionOptionsAppendExecutionProvider_OpenVINO_V2(so, NULL, NULL,
                                                                0);
  } else {
    /* the providers ORT appends by name */
    static const char *const generic[][2] = {
        {"coreml", "CoreML"}, {"xnnpack", "XNNPACK"}, {"qnn", "QNN"},
        {"webgpu", "WebGPU"}, {"vitisai", "VitisAI"}, {"azure", "AZURE"}};
    for (size_t k = 0; k < sizeof generic / sizeof generic[0]; k++)
      if (strcmp(name, generic[k][0]) == 0)
        os = api->SessionOptionsAppendExecutionProvider(so, generic[k][1],
                                                        NULL, NULL, 0);
  }
  return cutout__ort_check(os, CUTOUT_ERUNTIME, err, what);
}

/* rembg's `providers` list: each one asked for is appended in order, and
 * one this ONNX Runtime lacks, or that fails to load, is an error with the
 * reason (rembg #841: never a silent CPU fallback).  CPU is ORT's implicit
 * last provider, so "cpu" may only come last. */
static cutout_status append_providers(cutout_engine *e, OrtSessionOptions *so,
                                      const char *list, char *err)
{
  int seen_cpu = 0;
  for (const char *p = list; p && *p;) {
    while (*p == ' ' || *p == ',') p++;
    if (!*p) break;
    size_t n = strcspn(p, ", ");
    int i = provider_index(p, n);
    if (i < 0) {
      char known[512] = "";
      size_t k = 0;
      for (size_t j = 0; j < NPROVIDERS && k < sizeof known; j++)
        k += (size_t)snprintf(known + k, sizeof known - k, "%s%s",
                              j ? ", " : "", providers[j].name);
      return cutout__err(err, CUTOUT_EINVAL,
                         "unknown execution provider '%.*s' (known: %s, or "
                         "ONNX Runtime's names such as CUDAExecutionProvider)",
                         (int)n, p, known);
    }
    if (seen_cpu)
      return cutout__err(err, CUTOUT_EINVAL,
                         "execution providers: cpu must come last (ONNX "
                         "Runtime always runs the CPU provider last)");
    if (!in_list(e->providers, providers[i].ort))
      return cutout__err(err, CUTOUT_EUNSUPPORTED,
                         "execution provider %s was asked for, but this ONNX "
                         "Runtime (%s) does not have it (available: %s); "
                         "cutout does not fall back to CPU silently",
                         providers[i].ort, cutout_ort_version(),
                         *e->providers ? e->providers : "none reported");
    if (i == 0) {
      seen_cpu = 1; /* always there, always last */
    } else {
      cutout_status st = append_one(e, so, i, err);
      if (st) return st;
    }
    p += n;
  }
  return CUTOUT_OK;
}

cutout_status cutout__model_options(cutout_engine *e, const char *list,
                                    OrtSessionOptions **out, char *err)
{
  cutout_status st = cutout__session_options(e, out, err);
  if (!st && (st = append_providers(e, *out, list, err))) {
    e->api->ReleaseSessionOptions(*out);
    *out = NULL;
  }
  return st;
}

/* No provider but the CPU's: the compiled cache and the fp32 rewrite
 * are for it alone. */
static int cpu_only(const char *list)
{
  for (const char *p = list; p && *p;) {
    while (*p == ' ' || *p == ',') p++;
    if (!*p) break;
    size_t n = strcspn(p, ", ");
    if (provider_index(p, n) != 0) return 0;
    p += n;
  }
  return 1;
}

/* SAM's decoder sits beside the encoder: from the registry names (sam_model,
 * sam_quant), or, for a path to an encoder, the same name with "decoder". */
static cutout_status sam_paths(const char *name_or_path,
                               const cutout_model_params *p, char *enc,
                               size_t enc_cap, char *dec, size_t dec_cap,
                               char *err)
{
  if (looks_like_path(name_or_path)) {
    const char *base = strrchr(enc, '/');
    base = base ? base + 1 : enc;
    const char *k = strstr(base, ".encoder");
    if (!k)
      return cutout__err(err, CUTOUT_EINVAL,
                         "%s: a SAM encoder file name contains \".encoder\"",
                         enc);
    if ((size_t)snprintf(dec, dec_cap, "%.*s.decoder%s", (int)(k - enc), enc,
                         k + 8) >= dec_cap)
      return cutout__err(err, CUTOUT_EINVAL, "model path too long");
    return CUTOUT_OK;
  }
  struct cutout__model_file f[CUTOUT__MAX_FILES];
  if (cutout__model_files(cutout__registry_find("sam"), p->sam_model,
                          p->sam_quant, f, err) < 2)
    return CUTOUT_EINVAL;
  const char *slash = strrchr(enc, '/');
  int dl = slash ? (int)(slash - enc) : 0;
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%.*s", dl, enc);
  if ((size_t)snprintf(enc, enc_cap, "%s/%s", dir, f[0].file) >= enc_cap ||
      (size_t)snprintf(dec, dec_cap, "%s/%s", dir, f[1].file) >= dec_cap)
    return cutout__err(err, CUTOUT_EINVAL, "model path too long");
  return CUTOUT_OK;
}

static cutout_status io_name(const OrtApi *api, OrtSession *s, int input,
                             size_t i, char **out, char *err, const char *what)
{
  OrtAllocator *al = NULL;
  char *name = NULL;
  cutout_status st = cutout__ort_check(api->GetAllocatorWithDefaultOptions(&al),
                                       CUTOUT_ERUNTIME, err, "allocator");
  if (!st)
    st = cutout__ort_check(input ? api->SessionGetInputName(s, i, al, &name)
                                 : api->SessionGetOutputName(s, i, al, &name),
                           CUTOUT_EMODEL, err, what);
  if (st) return st;
  *out = strdup(name);
  al->Free(al, name);
  return *out ? CUTOUT_OK : cutout__err(err, CUTOUT_ENOMEM, "out of memory");
}

/* SAM's signatures, as rembg feeds them: the encoder takes the HWC image
 * canvas ([H,W,3], or [1,H,W,3]); the decoder takes six named inputs. */
static cutout_status sam_io_info(cutout_model *m, char *err)
{
  const OrtApi *api = m->engine->api;
  OrtTypeInfo *ti = NULL;
  cutout_status st;
  if ((st = io_name(api, m->session, 1, 0, &m->input_name, err, m->path)) ||
      (st = io_name(api, m->session, 0, 0, &m->output_name, err, m->path)) ||
      (st = io_name(api, m->decoder, 0, 0, &m->decoder_output, err,
                    m->decoder_path)))
    return st;
  /* the canvas: 684 x 1024 in rembg, read from the model when fixed */
  m->in_h = 684;
  m->in_w = 1024;
  st = cutout__ort_check(api->SessionGetInputTypeInfo(m->session, 0, &ti),
                         CUTOUT_EMODEL, err, m->path);
  if (st) return st;
  const OrtTensorTypeAndShapeInfo *tsi = NULL;
  size_t nd = 0;
  int64_t d[4];
  if (!api->CastTypeInfoToTensorInfo(ti, &tsi) && tsi &&
      !api->GetDimensionsCount(tsi, &nd) && (nd == 3 || nd == 4) &&
      !api->GetDimensions(tsi, d, nd) && (d[nd - 1] == 3 || d[nd - 1] < 0)) {
    m->in_rank = (int)nd;
    if (d[nd - 3] > 0) m->in_h = d[nd - 3];
    if (d[nd - 2] > 0) m->in_w = d[nd - 2];
    m->dynamic_size = d[nd - 3] <= 0 || d[nd - 2] <= 0;
    m->dynamic_batch = nd == 4 && d[0] <= 0;
  } else {
    st = cutout__err(err, CUTOUT_EMODEL,
                     "%s: a SAM encoder takes a float image [H,W,3]", m->path);
  }
  api->ReleaseTypeInfo(ti);
  if (st) return st;
  static const char *const need[] = {"image_embeddings", "point_coords",
                                     "point_labels",     "mask_input",
                                     "has_mask_input",   "orig_im_size"};
  size_t nin = 0;
  st = cutout__ort_check(api->SessionGetInputCount(m->decoder, &nin),
                         CUTOUT_EMODEL, err, m->decoder_path);
  for (size_t k = 0; !st && k < sizeof need / sizeof need[0]; k++) {
    int found = 0;
    for (size_t i = 0; !st && i < nin && !found; i++) {
      char *n = NULL;
      st = io_name(api, m->decoder, 1, i, &n, err, m->decoder_path);
      found = n && strcmp(n, need[k]) == 0;
      free(n);
    }
    if (!st && !found)
      st = cutout__err(err, CUTOUT_EMODEL,
                       "%s: not a SAM decoder: it has no input %s",
                       m->decoder_path, need[k]);
  }
  return st;
}

/* SAM: two sessions, created from their paths (vit_h keeps its weights in
 * an external data file beside the encoder, which ORT finds that way). */
static cutout_status load_sam(cutout_engine *e, const cutout_model_params *p,
                              const struct cutout__model_row *row,
                              const char *enc, const char *dec,
                              cutout_model **out, char *err)
{
  cutout_status st = CUTOUT_OK;
  OrtSessionOptions *so = NULL;
  struct stat sb;
  if (stat(dec, &sb) != 0)
    return cutout__err(err, CUTOUT_EMODEL,
                       "model %s: file %s not found (%s)", row->info.name, dec,
                       how_to_get(row));
  cutout_model *m = calloc(1, sizeof *m);
  if (!m) return cutout__err(err, CUTOUT_ENOMEM, "out of memory");
  m->engine = e;
  m->row = row;
  m->name = strdup(row->info.name);
  m->path = strdup(enc);
  m->decoder_path = strdup(dec);
  if (!m->name || !m->path || !m->decoder_path) {
    st = cutout__err(err, CUTOUT_ENOMEM, "out of memory");
    goto done;
  }
  double t0 = cutout__now();
  if ((st = cutout__session_options(e, &so, err)) ||
      (st = append_providers(e, so, p->providers, err)))
    goto done;
  char what[PATH_MAX + 64];
  snprintf(what, sizeof what, "model file %s is not a valid ONNX model", enc);
  st = cutout__ort_check(e->api->CreateSession(e->env, enc, so, &m->session),
                         CUTOUT_EMODEL, err, what);
  if (st) goto done;
  snprintf(what, sizeof what, "model file %s is not a valid ONNX model", dec);
  st = cutout__ort_check(e->api->CreateSession(e->env, dec, so, &m->decoder),
                         CUTOUT_EMODEL, err, what);
  if (st) goto done;
  m->t_session = cutout__now() - t0;
  st = sam_io_info(m, err);

done:
  if (so) e->api->ReleaseSessionOptions(so);
  if (st) {
    cutout_model_free(m);
    return st;
  }
  *out = m;
  return CUTOUT_OK;
}

cutout_model_shape cutout_model_input_shape(const cutout_model *m)
{
  cutout_model_shape s;
  memset(&s, 0, sizeof s);
  if (!m) return s;
  s.width = (uint32_t)m->in_w;
  s.height = (uint32_t)m->in_h;
  s.dynamic_size = m->dynamic_size;
  s.dynamic_batch = m->dynamic_batch;
  return s;
}
/* --- end model families --------------------------------------------- */


cutout_status cutout_model_load(cutout_engine *e, const char *name_or_path,
                                const cutout_model_params *p,
                                cutout_model **out, char *errbuf,
                                size_t errbuf_size)
{
  char err[CUTOUT_ERRMSG_MAX] = "";
  cutout_status st = CUTOUT_OK;
  cutout_model *m = NULL;
  const struct cutout__model_row *row = NULL;
  char path[PATH_MAX];
  cutout_model_params def = cutout_model_default_params();
  void *map = MAP_FAILED;
  size_t len = 0;
  int fd = -1;

  if (!e || !name_or_path || !*name_or_path || !out) {
    st = cutout__err(err, CUTOUT_EINVAL, "bad arguments to cutout_model_load");
    goto done;
  }
  if (!p) p = &def;
  if ((st = resolve(name_or_path, p, &row, path, sizeof path, err))) goto done;
  /* --- model families (issue #7): SAM's two files follow sam_model and
   * sam_quant --- */
  char dec_path[PATH_MAX] = "";
  if (row->post == CUTOUT_POST_SAM &&
      (st = sam_paths(name_or_path, p, path, sizeof path, dec_path,
                      sizeof dec_path, err)))
    goto done;
  /* --- end model families --- */

  fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) != 0) {
    int e0 = errno;
    if (e0 == ENOENT)
      st = cutout__err(err, CUTOUT_EMODEL,
                       "model %s: file %s not found (%s; with the name %s)",
                       row->info.name, path, how_to_get(row),
                       row->custom ? "you chose"
                       : strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
    else
      st = cutout__err(err, CUTOUT_EMODEL, "model file %s: %s", path,
                       strerror(e0));
    goto done;
  }
  if (!S_ISREG(sb.st_mode) || sb.st_size == 0) {
    st = cutout__err(err, CUTOUT_EMODEL, "model file %s: %s", path,
                     S_ISREG(sb.st_mode) ? "empty file" : "not a regular file");
    goto done;
  }
  /* --- model families (issue #7) --- */
  if (row->post == CUTOUT_POST_SAM) {
    st = load_sam(e, p, row, path, dec_path, &m, err);
    goto done;
  }
  /* --- end model families --- */
  len = (size_t)sb.st_size;
  double t0 = cutout__now();
  map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) {
    st = cutout__err(err, CUTOUT_EMODEL, "model file %s: %s", path,
                     strerror(errno));
    goto done;
  }
  double t1 = cutout__now();
  const char *nocheck = getenv("MODEL_CHECKSUM_DISABLED");
  if (p->verify_checksum && !nocheck && row->info.hash &&
      !looks_like_path(name_or_path) &&
      (st = verify(row, path, &sb, map, len, err)))
    goto done;

  double t2 = cutout__now();
  m = calloc(1, sizeof *m);
  if (!m) {
    st = cutout__err(err, CUTOUT_ENOMEM, "out of memory");
    goto done;
  }
  m->t_read = t1 - t0;
  m->t_verify = t2 - t1;
  m->engine = e;
  m->row = row;
  const char *base = strrchr(path, '/');
  m->name = strdup(looks_like_path(name_or_path) ? (base ? base + 1 : path)
                                                 : row->info.name);
  m->path = strdup(path);
  if (!m->name || !m->path) {
    st = cutout__err(err, CUTOUT_ENOMEM, "out of memory");
    goto done;
  }
  char what[PATH_MAX + 64];
  snprintf(what, sizeof what, "model file %s is not a valid ONNX model", path);
  st = cutout__compiled_session(e, p, m->name, path, &sb, map, len,
                                p->providers, cpu_only(p->providers), what,
                                &m->session, &m->compiled, err);
  if (st) goto done;
  m->t_session = cutout__now() - t2;
  st = read_io_info(m, err);

done:
  if (map != MAP_FAILED) munmap(map, len);
  if (fd >= 0) close(fd);
  if (st) {
    cutout_model_free(m);
    if (errbuf && errbuf_size) snprintf(errbuf, errbuf_size, "%s", err);
    return st;
  }
  *out = m;
  return CUTOUT_OK;
}

void cutout_model_load_times(const cutout_model *m, double *read,
                              double *verify, double *session)
{
  if (read) *read = m ? m->t_read : 0;
  if (verify) *verify = m ? m->t_verify : 0;
  if (session) *session = m ? m->t_session : 0;
}

const char *cutout_model_name(const cutout_model *m) { return m ? m->name : ""; }

cutout_compiled cutout_model_compiled(const cutout_model *m, const char **path,
                                      const char **note)
{
  if (path) *path = m ? m->compiled.path : "";
  if (note) *note = m ? m->compiled.note : "";
  return m ? m->compiled.state : CUTOUT_COMPILED_OFF;
}
const char *cutout_compiled_str(cutout_compiled s)
{
  static const char *const words[] = {
      "from the .onnx", "mapped from the cache", "compiled now, then mapped",
      "from the .onnx (cache not usable)"};
  return (unsigned)s < sizeof words / sizeof words[0] ? words[s] : "unknown";
}

const char *cutout_model_file(const cutout_model *m) { return m ? m->path : ""; }
