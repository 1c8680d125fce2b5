/*
 * cutout.h: the public API of libcutout, a background-removal engine that
 * reproduces rembg's results on ONNX Runtime.
 *
 * This is the only installed header.  The cutout CLI, server and bench use
 * nothing else from the library.
 *
 * OBJECTS
 *   cutout_engine  One per process: the ONNX Runtime environment and the
 *                  threading plan.  Create it first, free it last.
 *   cutout_model   A loaded model (weights + ORT session).  Read-only after
 *                  load: any number of threads may run it at once.
 *   cutout_ctx     Per-thread working state: scratch, limits, the last error
 *                  text, stage timings and a cancellation flag.  Use one ctx
 *                  from one thread at a time (cutout_ctx_cancel excepted).
 *   cutout_image   Plain pixels (public struct), owned by whoever received it.
 *
 * ERRORS
 *   Every fallible call returns a cutout_status.  The detailed, human text is
 *   kept on the handle the call was made on (cutout_ctx_errmsg), or, for the
 *   constructors that have no handle yet, written into the caller's buffer.
 *   There is no global error state.  On failure, output parameters are left
 *   untouched.
 *
 * OWNERSHIP
 *   Objects returned through an out-pointer are owned by the caller and are
 *   released with the matching *_free(); every *_free(NULL) is a no-op.
 *   Strings returned as `const char *` are owned by the library and stay
 *   valid while their handle lives.
 */
#ifndef CUTOUT_H
#define CUTOUT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CUTOUT_BUILDING_LIBRARY) && defined(__GNUC__)
#define CUTOUT_API __attribute__((visibility("default")))
#else
#define CUTOUT_API
#endif

#define CUTOUT_VERSION_MAJOR 0
#define CUTOUT_VERSION_MINOR 1
#define CUTOUT_VERSION_PATCH 0
#define CUTOUT_VERSION_STRING "0.1.0"

/* Size of the caller buffers that constructors fill with error text. */
#define CUTOUT_ERRBUF_SIZE 512

typedef enum cutout_status {
  CUTOUT_OK = 0,
  CUTOUT_EINVAL,      /* a bad argument or parameter value */
  CUTOUT_ENOMEM,      /* out of memory */
  CUTOUT_EIO,         /* a file could not be read or written */
  CUTOUT_EFORMAT,     /* not an image, or a corrupt / truncated one */
  CUTOUT_ELIMIT,      /* a configured limit was exceeded (pixels, bytes) */
  CUTOUT_ENOMODEL,    /* no model of that name */
  CUTOUT_EMODEL,      /* model file missing, corrupt, or wrong checksum */
  CUTOUT_ERUNTIME,    /* ONNX Runtime reported an error */
  CUTOUT_ECANCELED,   /* cutout_ctx_cancel() stopped the call */
  CUTOUT_EUNSUPPORTED /* valid, but not supported (format, feature) */
} cutout_status;

/* Short generic text for a status ("invalid argument").  Never NULL. */
CUTOUT_API const char *cutout_strerror(cutout_status s);

/* "cutout 0.1.0 (ONNX Runtime 1.29.0)"-style strings. */
CUTOUT_API const char *cutout_version(void);
/* The version string of the ONNX Runtime library actually loaded. */
CUTOUT_API const char *cutout_ort_version(void);

/* Release memory the library returned as a raw buffer (encoded bytes). */
CUTOUT_API void cutout_free(void *p);

/* ------------------------------------------------------------------------
 * Images
 * ---------------------------------------------------------------------- */

/* Channels: 1 = L (grey), 2 = LA, 3 = RGB, 4 = RGBA; 8 bits each,
 * rows top to bottom, tightly packed: stride == width * channels. */
typedef struct cutout_image {
  uint32_t width;
  uint32_t height;
  uint32_t channels;
  size_t stride;
  uint8_t *pixels;
} cutout_image;

/* Allocate an image (pixels zeroed).  (transfer full) */
CUTOUT_API cutout_status cutout_image_new(uint32_t width, uint32_t height,
                                          uint32_t channels,
                                          cutout_image **out);
/* Free an image the library made (cutout_image_new, cutout_decode,
 * cutout_remove, ...).  Its pixels are not malloc() memory: never free or
 * replace them yourself. */
CUTOUT_API void cutout_image_free(cutout_image *img);

typedef enum cutout_format {
  CUTOUT_FORMAT_UNKNOWN = 0,
  CUTOUT_FORMAT_PNG,
  CUTOUT_FORMAT_JPEG,
  CUTOUT_FORMAT_WEBP,
  CUTOUT_FORMAT_BMP
} cutout_format;

/* Format by magic bytes, or CUTOUT_FORMAT_UNKNOWN. */
CUTOUT_API cutout_format cutout_detect_format(const void *data, size_t len);
/* Format and pixel size from the header alone (no decoding, no large
 * allocation): for budgeting memory before a decode.  EFORMAT when the
 * header cannot be read. */
CUTOUT_API cutout_status cutout_probe(const void *data, size_t len,
                                      cutout_format *format, uint32_t *width,
                                      uint32_t *height);

/* Output format from a file name's extension (.png .jpg .jpeg .webp), or
 * CUTOUT_FORMAT_UNKNOWN. */
CUTOUT_API cutout_format cutout_format_from_name(const char *name);
/* "png", "jpeg", "webp", "bmp", or "unknown"; and the reverse (accepts
 * "jpg"). */
CUTOUT_API const char *cutout_format_name(cutout_format f);
CUTOUT_API cutout_format cutout_format_parse(const char *name);

typedef struct cutout_encode_params {
  cutout_format format; /* PNG (default), JPEG or WEBP */
  int png_level;        /* zlib level 0..9; default 6 as Pillow */
  int quality;          /* JPEG / WebP quality 1..100; default 90 */
  int webp_lossless;    /* 1: lossless WebP */
} cutout_encode_params;
CUTOUT_API cutout_encode_params cutout_encode_default_params(void);

/* ------------------------------------------------------------------------
 * Engine
 * ---------------------------------------------------------------------- */

typedef struct cutout_engine cutout_engine;

typedef enum cutout_exec_mode {
  CUTOUT_EXEC_SEQUENTIAL = 0,
  CUTOUT_EXEC_PARALLEL = 1
} cutout_exec_mode;

typedef enum cutout_graph_opt {
  CUTOUT_GRAPH_OPT_DISABLE = 0,
  CUTOUT_GRAPH_OPT_BASIC = 1,
  CUTOUT_GRAPH_OPT_EXTENDED = 2,
  CUTOUT_GRAPH_OPT_LAYOUT = 3,
  CUTOUT_GRAPH_OPT_ALL = 99
} cutout_graph_opt;

/* What the process will do; the automatic plan is chosen for it. */
typedef enum cutout_workload {
  CUTOUT_WORKLOAD_LATENCY = 0,    /* one image at a time (cutout i) */
  CUTOUT_WORKLOAD_THROUGHPUT = 1, /* many images back to back (p, b) */
  CUTOUT_WORKLOAD_SERVER = 2      /* requests with idle gaps (s, watch) */
} cutout_workload;

typedef enum cutout_thread_pool {
  CUTOUT_POOL_SHARED = 0,     /* one global ORT pool for every model */
  CUTOUT_POOL_PER_SESSION = 1 /* ORT's default: a pool per session */
} cutout_thread_pool;

/* What an fp16 model runs in on the CPU provider.  ORT's x86 kernels have
 * no fp16 convolution and compute fp16 models in fp32 anyway, with a Cast
 * pass around every node; PROMOTE rewrites the model into fp32 first. */
typedef enum cutout_fp16 {
  CUTOUT_FP16_KEEP = 0,   /* run the model as it is */
  CUTOUT_FP16_PROMOTE = 1 /* fp32 weights and activations (exact weights) */
} cutout_fp16;

/* Where an effective setting came from.  Precedence: FLAG > ENV > OMP >
 * AUTO. */
typedef enum cutout_source {
  CUTOUT_SOURCE_AUTO = 0, /* the automatic plan */
  CUTOUT_SOURCE_FLAG,     /* the caller / a command-line flag */
  CUTOUT_SOURCE_ENV,      /* a CUTOUT_* environment variable */
  CUTOUT_SOURCE_OMP       /* rembg's OMP_NUM_THREADS */
} cutout_source;

/* The threading configuration of the process.  Every integer field uses
 * -1 for "not set" (the automatic plan decides); strings use NULL.  Fields
 * set by the caller have source FLAG; cutout_engine_params_from_env() fills
 * the unset ones from the environment; cutout_engine_new() plans the rest.
 * cutout_engine_effective() reads everything back with no -1 left, except
 * spin_us (-1: not passed, ORT's built-in spin window).
 * docs/threading.md explains every field, the precedence and the plan. */
typedef struct cutout_engine_params {
  int workload;           /* cutout_workload; default LATENCY */
  int intra_threads;      /* ORT intra-op threads incl. the calling thread;
                             0 = ORT's own default (sized from the host,
                             blind to taskset and quotas) */
  int inter_threads;      /* ORT inter-op threads, parallel mode only */
  int exec_mode;          /* cutout_exec_mode */
  int graph_opt;          /* cutout_graph_opt */
  int spin;               /* 0/1: ORT worker spinning */
  int spin_us;            /* spin window in microseconds (ORT 1.29 key;
                             per-session pools, spin on) */
  int spin_stop;          /* 0/1: stop spinning when Run returns
                             (session.force_spinning_stop; per-session) */
  const char *cpu_binding;/* taskset-style logical CPU ids, one group per
                             intra thread, groups split by ';', e.g.
                             "0;1" or "0-3;4-7" (0-based, caller first:
                             group 0 pins every thread that calls Run,
                             while it runs; group k pins intra worker k) */
  int thread_pool;        /* cutout_thread_pool */
  int denormals_zero;     /* 0/1: flush denormals (ORT + calling threads) */
  int dynamic_block_base; /* ORT session.dynamic_block_base, 0 = off
                             (per-session pools) */
  int mem_arena;          /* 0/1: ORT CPU memory arena */
  int mem_pattern;        /* 0/1: ORT memory pattern (sequential mode) */
  int huge_pages;         /* 0/1: ORT's CPU memory from cutout's allocator:
                             2 MiB transparent huge pages, freed blocks
                             kept for the next run (replaces ORT's arena;
                             see docs/threading.md) */
  int model_cache;        /* 0/1: keep each model's ONNX Runtime-optimised
                             form (ORT format) in the cache folder and map
                             it at load: sessions in milliseconds, weights
                             shared with the page cache (CPU provider) */
  int fp16;               /* cutout_fp16: what fp16 models run in */
  const char *ort_profile;/* ORT profiling file prefix, NULL = off */
  int workers;            /* concurrent inference workers (p, b, s) */
  int io_threads;         /* threads for decode/resize/encode */
  int log_level;          /* ORT log severity 0..4 (3 = errors) */
  unsigned char source_[32]; /* private: where each field came from */
} cutout_engine_params;
CUTOUT_API cutout_engine_params cutout_engine_default_params(void);

/* Set one field from text, as the command line does: field is the member
 * name ("intra_threads", "exec_mode", "cpu_binding"), value the text
 * ("2", "parallel", "on"/"off", "0;1").  The field's source becomes FLAG.
 * String values are kept by pointer: they must outlive p.  CUTOUT_EINVAL
 * with the reason in errbuf for an unknown field or a bad value. */
CUTOUT_API cutout_status cutout_engine_param_set(cutout_engine_params *p,
                                                 const char *field,
                                                 const char *value,
                                                 char *errbuf,
                                                 size_t errbuf_size);

/* Fill every field that is still unset from CUTOUT_INTRA_THREADS,
 * CUTOUT_INTER_THREADS, CUTOUT_EXECUTION_MODE, CUTOUT_GRAPH_OPT,
 * CUTOUT_SPIN, CUTOUT_SPIN_US, CUTOUT_SPIN_STOP, CUTOUT_CPU_BINDING,
 * CUTOUT_THREAD_POOL, CUTOUT_DENORMALS_ZERO, CUTOUT_DYNAMIC_BLOCK_BASE,
 * CUTOUT_MEM_ARENA, CUTOUT_MEM_PATTERN, CUTOUT_HUGE_PAGES, CUTOUT_WORKERS, CUTOUT_IO_THREADS,
 * CUTOUT_ORT_PROFILE, then from OMP_NUM_THREADS with rembg's meaning
 * (intra = inter = N).  An empty variable counts as unset.  A variable
 * that is set but invalid is an error (CUTOUT_EINVAL, reason in
 * errbuf). */
CUTOUT_API cutout_status cutout_engine_params_from_env(
    cutout_engine_params *p, char *errbuf, size_t errbuf_size);

/* Create the engine (the process-wide ORT environment).  The plan is
 * validated first: a combination ORT would silently ignore or misread
 * (inter-op threads in sequential mode, a spin window with spinning off,
 * a binding whose group count differs from intra_threads or that names a
 * CPU outside the affinity mask, a per-session option with the shared
 * pool, ...) is CUTOUT_EINVAL.  One engine per process at a time.
 * errbuf (optional, CUTOUT_ERRBUF_SIZE bytes) receives the reason on
 * failure. */
CUTOUT_API cutout_status cutout_engine_new(const cutout_engine_params *p,
                                           cutout_engine **out, char *errbuf,
                                           size_t errbuf_size);
CUTOUT_API void cutout_engine_free(cutout_engine *e);
/* The values in force (see cutout_engine_params).  String members stay
 * valid while e lives. */
CUTOUT_API cutout_engine_params
cutout_engine_effective(const cutout_engine *e);

/* Where the effective value of a field came from, and why: for the
 * automatic plan a short reason ("latency: all 2 usable CPUs for one
 * image"), otherwise where it was set.  field is the member name
 * ("intra_threads"); an unknown name gives AUTO and reason "".  *reason
 * (may be NULL) is valid while e lives. */
CUTOUT_API cutout_source cutout_engine_source(const cutout_engine *e,
                                              const char *field,
                                              const char **reason);

/* ORT pool threads that cutout created (its thread-creation callback
 * names them cutout-intra-N / cutout-inter-N) and that still run, over all
 * pools of the engine. */
CUTOUT_API int cutout_engine_thread_count(const cutout_engine *e);

/* A report of the configuration: every effective setting with its source
 * and reason, the detected topology, the ORT version, the exact ORT calls
 * and config entries passed (the affinity string included), the execution
 * providers available, and the live pool threads.  Text for humans, or
 * JSON.  (transfer full: cutout_free) */
CUTOUT_API cutout_status cutout_engine_describe(const cutout_engine *e,
                                                int json, char **out);

/* ------------------------------------------------------------------------
 * Models
 * ---------------------------------------------------------------------- */

typedef struct cutout_model cutout_model;

typedef struct cutout_model_params {
  const char *model_dir;  /* NULL: $U2NET_HOME, else $XDG_DATA_HOME/.u2net,
                             else ~/.u2net (rembg's rules) */
  const char *model_path; /* for u2net_custom / dis_custom / ben_custom */
  int verify_checksum;    /* 1 (default): check the registry's hash, unless
                             MODEL_CHECKSUM_DISABLED is set */
  /* --- model families (issue #7) --- */
  const char *sam_model;  /* sam: NULL = "sam_vit_b_01ec64" (rembg's
                             default); files {sam_model}.encoder.onnx and
                             {sam_model}.decoder.onnx */
  int sam_quant;          /* sam: 1 = the .quant.onnx files */
  const char *providers;  /* execution providers in order of preference,
                             comma-separated: "cuda,cpu", or ORT's names
                             ("CUDAExecutionProvider"); NULL or "" = CPU.
                             One that cannot be loaded fails the load with
                             ORT's reason: there is no silent fallback */
  /* --- end model families --- */
  const char *cache_dir;  /* where compiled models are kept (the engine's
                             model_cache): NULL = $CUTOUT_CACHE_DIR, else
                             $XDG_CACHE_HOME/cutout, else ~/.cache/cutout */
} cutout_model_params;
CUTOUT_API cutout_model_params cutout_model_default_params(void);

/* Load a model by its rembg name ("isnet-general-use") or by a path to an
 * .onnx file (any string containing '/' or ending in ".onnx").  A path gets
 * isnet-style processing unless it names a known file.  "sam" loads two
 * files, the encoder and the decoder beside it.  The input shape is read
 * from the model (cutout_model_input_shape).  Nothing is downloaded here:
 * see cutout_model_download.
 * (transfer full) */
CUTOUT_API cutout_status cutout_model_load(cutout_engine *e,
                                           const char *name_or_path,
                                           const cutout_model_params *p,
                                           cutout_model **out, char *errbuf,
                                           size_t errbuf_size);
CUTOUT_API void cutout_model_free(cutout_model *m);
/* The rembg name of the model ("isnet-general-use"), or the file name. */
CUTOUT_API const char *cutout_model_name(const cutout_model *m);
/* The file the model was loaded from. */
CUTOUT_API const char *cutout_model_file(const cutout_model *m);
/* Where cutout_model_load spent its time, in seconds: reading (mapping)
 * the file, checking its hash (0 when a stamp vouched for it), and
 * creating the ORT session.  Any pointer may be NULL. */
CUTOUT_API void cutout_model_load_times(const cutout_model *m, double *read,
                                        double *verify, double *session);

/* How the session of a model was made (the engine's model_cache). */
typedef enum cutout_compiled {
  CUTOUT_COMPILED_OFF = 0,  /* from the .onnx: cache off, or not CPU-only */
  CUTOUT_COMPILED_HIT = 1,  /* mapped from the cache */
  CUTOUT_COMPILED_BUILT = 2,/* optimised now, saved, then mapped */
  CUTOUT_COMPILED_FAILED = 3/* from the .onnx: the cache could not be used
                               (note says why: read-only folder, ...) */
} cutout_compiled;
/* The compiled state of m, the cache file (or "") and a note in words
 * (fp16 promoted, why it was off or failed).  path and note are valid
 * while m lives and may be NULL. */
CUTOUT_API cutout_compiled cutout_model_compiled(const cutout_model *m,
                                                 const char **path,
                                                 const char **note);
/* The state in words: "from the .onnx", "mapped from the cache", ...
 * (transfer none) */
CUTOUT_API const char *cutout_compiled_str(cutout_compiled s);

/* The model registry: one row per rembg model name. */
typedef struct cutout_model_info {
  const char *name;       /* rembg name */
  const char *file;       /* file name in the model folder */
  const char *family;     /* "u2net", "isnet", "birefnet", ... */
  const char *hash;       /* "md5:..." / "sha256:..." or NULL */
  const char *url;        /* download URL, or NULL */
  uint32_t input_size;    /* S of the S x S model input */
  double mean[3], std[3];
  const char *output;     /* output handling, in words */
  const char *note;       /* licence or other note, or NULL */
} cutout_model_info;
/* Number of rows, and row i (0 <= i < count). */
CUTOUT_API size_t cutout_model_count(void);
CUTOUT_API const cutout_model_info *cutout_model_info_at(size_t i);
CUTOUT_API const cutout_model_info *cutout_model_info_find(const char *name);
/* The model folder that cutout_model_load would use (see model_dir). */
CUTOUT_API cutout_status cutout_model_dir(char *buf, size_t size);

/* --- model families, downloads, providers (issue #7) --- */

/* The image input of a loaded model, read from the model itself: width
 * and height (the registry's size where the model leaves them dynamic),
 * and whether the batch dimension is dynamic, so that one run can take
 * several images (cutout_predict_mask_batch).  BiRefNet exports are fixed
 * at batch 1 (rembg #821). */
typedef struct cutout_model_shape {
  uint32_t width, height;
  int dynamic_size;  /* 1: H and W are symbolic in the model */
  int dynamic_batch; /* 1: dimension 0 is symbolic */
} cutout_model_shape;
CUTOUT_API cutout_model_shape cutout_model_input_shape(const cutout_model *m);

/* Where model `name`'s files are and whether they are all there, without
 * reading them: path (the main file: SAM's encoder; "" for a custom model
 * without model_path), bytes on disk (all files present), present (1 when
 * every file exists) and verified (1 when each file with a checksum has a
 * still-valid verification stamp from an earlier check; 0 otherwise, which
 * does not mean it is wrong).  Any output may be NULL. */
CUTOUT_API cutout_status cutout_model_locate(const char *name,
                                             const cutout_model_params *p,
                                             char *path, size_t path_size,
                                             uint64_t *bytes, int *present,
                                             int *verified);

/* Called during a download: file is the name in the model folder, done
 * and total in bytes (total 0 while unknown). */
typedef void (*cutout_progress_fn)(void *user, const char *file,
                                   uint64_t done, uint64_t total);

typedef struct cutout_download_params {
  const char *base_url; /* NULL: $CUTOUT_MODEL_BASE_URL, else rembg's
                           release folder (a mirror holds the same asset
                           names) */
  int stall_timeout;    /* give up on a transfer after this many seconds
                           without a byte; 0: $CUTOUT_DOWNLOAD_TIMEOUT,
                           else 60 */
  int retries;          /* resumed attempts (HTTP Range) after a broken
                           transfer that made progress; -1: 4 */
  cutout_progress_fn progress; /* NULL: silent */
  void *progress_user;
} cutout_download_params;
CUTOUT_API cutout_download_params cutout_download_default_params(void);

/* Make sure model `name`'s files are in the model folder, as rembg's
 * session does before it loads (pooch.retrieve): a missing file, or one
 * whose checksum does not match (checksums on), is downloaded with libcurl
 * into a temporary file beside it, resumed with HTTP Range after a broken
 * transfer, checked (md5 or sha256, as rembg) and moved into place by an
 * atomic rename.  A file that is present and matches, or has no checksum
 * (SAM, MODEL_CHECKSUM_DISABLED), is left alone.  Proxies come from the
 * usual variables (http_proxy, HTTPS_PROXY, NO_PROXY, ...).  On failure
 * nothing is left behind and errbuf says why.  CUTOUT_EUNSUPPORTED for a
 * model with nothing to download (the *_custom models, isnet-quint8);
 * a path (name containing '/' or ending in .onnx) is CUTOUT_OK.  Safe to
 * call from several processes at once: one downloads, the others wait. */
CUTOUT_API cutout_status cutout_model_download(
    const char *name, const cutout_model_params *mp,
    const cutout_download_params *dp, char *errbuf, size_t errbuf_size);
/* --- end model families --- */

/* ------------------------------------------------------------------------
 * Per-thread context
 * ---------------------------------------------------------------------- */

typedef struct cutout_ctx cutout_ctx;

typedef struct cutout_ctx_params {
  uint64_t max_pixels; /* refuse larger images before decoding; default
                          100 000 000 */
  int io_threads;      /* -1: the engine's io_threads */
} cutout_ctx_params;
CUTOUT_API cutout_ctx_params cutout_ctx_default_params(void);

CUTOUT_API cutout_status cutout_ctx_new(cutout_engine *e,
                                        const cutout_ctx_params *p,
                                        cutout_ctx **out);
CUTOUT_API void cutout_ctx_free(cutout_ctx *c);
/* The detailed text of the last failed call on this ctx ("" if none). */
CUTOUT_API const char *cutout_ctx_errmsg(const cutout_ctx *c);
/* --- edges and alpha matting (issue #6) --- */
/* A warning from the last cutout_remove() on this ctx, or "" if none: the
 * call succeeded but did something else than asked, e.g. alpha matting
 * fell back to the plain cutout as rembg does ("the trimap has no
 * foreground pixels ...").  The library never prints; front ends show it.
 * Valid until the next call on the ctx. */
CUTOUT_API const char *cutout_ctx_warning(const cutout_ctx *c);
/* --- end edges and alpha matting --- */
/* Ask a running cutout_remove() on this ctx to stop (any thread). */
CUTOUT_API void cutout_ctx_cancel(cutout_ctx *c);

typedef enum cutout_stage {
  CUTOUT_STAGE_DECODE = 0,
  CUTOUT_STAGE_PREPROCESS,
  CUTOUT_STAGE_INFERENCE,
  CUTOUT_STAGE_POSTPROCESS,
  CUTOUT_STAGE_ENCODE,
  CUTOUT_STAGE_MATTING,   /* issue #6: alpha matting or decontamination,
                             trimap to final RGBA (not in postprocess) */
  CUTOUT_STAGE_COUNT
} cutout_stage;
/* "decode", "preprocess", ... */
CUTOUT_API const char *cutout_stage_name(cutout_stage s);

/* Timings of the last call of each kind on this ctx, in seconds: wall
 * clock, and CPU time of the whole process (all threads) during the
 * stage. */
typedef struct cutout_stage_times {
  double wall[CUTOUT_STAGE_COUNT];
  double cpu[CUTOUT_STAGE_COUNT];
} cutout_stage_times;
CUTOUT_API cutout_stage_times cutout_ctx_times(const cutout_ctx *c);

/* Decode an encoded image (PNG, JPEG, WebP, BMP; found by magic bytes),
 * apply its EXIF orientation, and convert it as Pillow would: the result is
 * L, LA, RGB or RGBA.  The pixel limit is checked from the header, before
 * any large allocation.  (transfer full) */
CUTOUT_API cutout_status cutout_decode(cutout_ctx *c, const void *data,
                                       size_t len, cutout_image **out);

/* Encode to PNG/JPEG/WebP.  *out is released with cutout_free().
 * JPEG needs an opaque image (alpha 255 everywhere). */
CUTOUT_API cutout_status cutout_encode(cutout_ctx *c, const cutout_image *img,
                                       const cutout_encode_params *p,
                                       void **out, size_t *out_len);

/* ------------------------------------------------------------------------
 * Background removal (rembg's remove())
 * ---------------------------------------------------------------------- */

/* --- model families (issue #7) --- */
/* u2net_cloth_seg's category (rembg's cc / cloth_category extra). */
typedef enum cutout_cloth_category {
  CUTOUT_CLOTH_ALL = 0, /* three masks, stacked vertically: upper, lower,
                           full */
  CUTOUT_CLOTH_UPPER,
  CUTOUT_CLOTH_LOWER,
  CUTOUT_CLOTH_FULL
} cutout_cloth_category;

/* One mark of a SAM prompt (rembg's sam_prompt items). */
typedef enum cutout_prompt_type {
  CUTOUT_PROMPT_POINT = 0,    /* data: x, y */
  CUTOUT_PROMPT_RECTANGLE = 1 /* data: x1, y1, x2, y2 (labels 2 and 3) */
} cutout_prompt_type;
typedef struct cutout_prompt {
  int type;       /* cutout_prompt_type */
  int label;      /* a point's label: 1 foreground, 0 background */
  double data[4]; /* in the image's pixels */
} cutout_prompt;
/* --- end model families --- */

/* --- edges and alpha matting (issue #6) --- */
/* What the cutout's RGB holds where the mask is soft (when alpha matting
 * is off, or falls back).  decontaminate = 1, or putalpha = 1, select
 * DECONTAMINATE, or STRAIGHT, too; DECONTAMINATE wins over STRAIGHT. */
typedef enum cutout_edge {
  CUTOUT_EDGE_PREMULTIPLIED = 0, /* rembg's default: RGB * mask / 255 in a
                                    straight-alpha image (dark fringes) */
  CUTOUT_EDGE_STRAIGHT = 1,      /* the original RGB, alpha = mask (rembg's
                                    putalpha) */
  CUTOUT_EDGE_DECONTAMINATE = 2  /* estimated foreground colour, alpha =
                                    mask (upstream rembg -dc) */
} cutout_edge;
/* --- end edges and alpha matting --- */

typedef struct cutout_remove_params {
  int only_mask;         /* -om: return the mask (L) */
  int post_process_mask; /* -ppm: opening, Gaussian sigma 2, threshold */
  int putalpha;          /* keep the original RGB, set alpha = mask */
  int bgcolor_set;       /* apply bgcolor with alpha_composite */
  uint8_t bgcolor[4];    /* R G B A */
  /* --- model families (issue #7) --- */
  int cloth_category;    /* u2net_cloth_seg: cutout_cloth_category */
  const cutout_prompt *sam_prompt; /* sam: the marks (not copied); NULL:
                                      one foreground point at the image
                                      centre, as rembg */
  size_t sam_prompt_count;
  /* --- end model families --- */
  /* --- edges and alpha matting (issue #6) --- */
  int alpha_matting;     /* -a: rembg's alpha_matting_cutout (pymatting's
                            closed-form matte + foreground estimation); on
                            an empty trimap or no convergence, the plain
                            cutout and a cutout_ctx_warning() */
  int am_fg, am_bg;      /* -af / -ab: trimap thresholds 0-255 (strict
                            mask > am_fg, mask < am_bg); default 240, 10 */
  int am_erode;          /* -ae: erosion size >= 0 (0 = 3x3 cross, as
                            scipy); default 10 */
  int decontaminate;     /* -dc: estimate the foreground colour under the
                            model's soft alpha (upstream rembg #843) */
  int edge;              /* cutout_edge: RGB under soft alpha */
  int crop;              /* --crop: crop to the bounding box of alpha > 0
                            (mask > 0 with only_mask), taken before the
                            background colour is applied */
  uint32_t crop_margin;  /* ...grown by this many pixels, clamped */
  /* --- end edges and alpha matting --- */
} cutout_remove_params;
CUTOUT_API cutout_remove_params cutout_remove_default_params(void);

/* The model's mask at the image's size, as rembg's session.predict() makes
 * it (L image).  (transfer full) */
CUTOUT_API cutout_status cutout_predict_mask(cutout_ctx *c,
                                             const cutout_model *m,
                                             const cutout_image *img,
                                             cutout_image **mask);

/* --- model families (issue #7) --- */
/* Every mask the model gives for img under p's cloth_category and
 * sam_prompt (rembg's session.predict(), a list): up to 3, written to
 * masks[0..*count).  cutout_predict_mask is this with default parameters,
 * several masks stacked vertically into one L image.  (transfer full) */
#define CUTOUT_MAX_MASKS 3
CUTOUT_API cutout_status cutout_predict_masks(cutout_ctx *c,
                                              const cutout_model *m,
                                              const cutout_image *img,
                                              const cutout_remove_params *p,
                                              cutout_image **masks,
                                              size_t *count);

/* Masks of n images of a single-mask model (not cloth-seg, not SAM), as n
 * calls of cutout_predict_mask would give them, with one ORT run per
 * chunk of up to max_batch images when the model's batch dimension is
 * dynamic (one run per image otherwise).  masks[i] receives image i's
 * mask; on failure none is returned.  (transfer full) */
CUTOUT_API cutout_status cutout_predict_mask_batch(
    cutout_ctx *c, const cutout_model *m, const cutout_image *const *imgs,
    size_t n, size_t max_batch, cutout_image **masks);
/* --- end model families --- */

/* The whole of rembg's remove() on a decoded image: mask, optional post-
 * processing, then only-mask, alpha matting, or the cutout of the edge
 * mode (naive/premultiplied, putalpha/straight, decontaminate), then the
 * background colour, then the crop.  The result is RGBA; L with only_mask;
 * LA for a grey (L/LA) image with putalpha and no background colour.
 * Issue #7: a model that gives several masks (u2net_cloth_seg without a
 * cloth_category) has each one finished that way and the results stacked
 * vertically into one RGBA image, W x 3H, as rembg's get_concat_v_multi.
 * (transfer full) */
CUTOUT_API cutout_status cutout_remove(cutout_ctx *c, const cutout_model *m,
                                       const cutout_image *img,
                                       const cutout_remove_params *p,
                                       cutout_image **out);

/* cutout_remove without the model, on a mask you already have: mask is L,
 * the size of img (it stays yours); then -ppm, -om, alpha matting or the
 * edge mode, the background colour and the crop, as p asks.  The stages
 * and warnings are reported as for cutout_remove.
 * (transfer full) */
CUTOUT_API cutout_status cutout_apply_mask(cutout_ctx *c,
                                           const cutout_image *img,
                                           const cutout_image *mask,
                                           const cutout_remove_params *p,
                                           cutout_image **out);

#ifdef __cplusplus
}
#endif
#endif /* CUTOUT_H */
