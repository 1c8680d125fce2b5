/*
 * options.c: rembg's command-line options, with rembg's spellings (the
 * multi-letter short flags -om, -ppm, -bgc, -af, -ab, -ae are real), both
 * "--opt value" and "--opt=value", anywhere among the positional arguments.
 * Every value is validated: rembg ignores a bad -x silently, cutout says so.
 */
#include "options.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double cli_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

const char cli_options_help[] =
  "Model and output:\n"
  "  -m, --model NAME            model name (default: u2net, as rembg) or a\n"
  "                              path to an .onnx file; see `cutout models`\n"
  "  -om, --only-mask            output the mask only (greyscale PNG)\n"
  "  -ppm, --post-process-mask   smooth and binarise the mask (rembg's\n"
  "                              opening + Gaussian + threshold)\n"
  "  -bgc, --bgcolor R G B A     composite over this colour (0-255 each);\n"
  "                              default 0 0 0 0 as rembg's CLI\n"
  "  -x, --extras JSON           rembg's extras: {\"putalpha\": true},\n"
  "                              {\"model_path\": \"...\"} for *_custom models\n"
  /* --- edges and alpha matting (issue #6) --- */
  "  -a, --alpha-matting         alpha matting on the model's mask (rembg's\n"
  "                              closed-form matting + foreground colour);\n"
  "                              falls back to the plain cutout, with a\n"
  "                              warning, when the trimap is empty\n"
  "  -af, --alpha-matting-foreground-threshold N   trimap: mask > N is\n"
  "                              foreground (0-255, default 240)\n"
  "  -ab, --alpha-matting-background-threshold N   trimap: mask < N is\n"
  "                              background (0-255, default 10)\n"
  "  -ae, --alpha-matting-erode-size N   erode both by an NxN square\n"
  "                              (default 10; 0 = 3x3 cross)\n"
  "  -dc, --decontaminate        estimate the true foreground colour under\n"
  "                              soft edges (= --edge decontaminate)\n"
  "      --edge MODE             RGB under soft alpha: premultiplied (rembg's\n"
  "                              default, darkens edges), straight (original\n"
  "                              colour, = -x '{\"putalpha\": true}') or\n"
  "                              decontaminate\n"
  "      --crop [MARGIN]         crop to the subject (alpha > 0) plus MARGIN\n"
  "                              pixels (default 0); also --crop=MARGIN\n"
  /* --- end edges and alpha matting --- */
  "      --format png|webp|jpg   output format (default: from the output\n"
  "                              name's extension, else png)\n"
  "      --quality N             JPEG/WebP quality 1-100 (default 90)\n"
  "      --max-pixels N          refuse larger images (default 100000000)\n"
  /* --- model families (issue #7) --- */
  "      --providers LIST        ONNX Runtime execution providers in order,\n"
  "                              e.g. cuda,cpu (rembg's \"providers\" extra);\n"
  "                              one that cannot load is an error, never a\n"
  "                              silent CPU fallback (see `cutout config`)\n"
  "      --offline               never download: a missing model is an\n"
  "                              error (default: fetch it on first use)\n"
  "  -x also takes rembg's model extras: {\"cc\": \"upper\"|\"lower\"|\"full\"}\n"
  "      for u2net_cloth_seg, {\"sam_prompt\": [{\"type\": \"point\",\n"
  "      \"label\": 1, \"data\": [x, y]}, {\"type\": \"rectangle\", \"data\":\n"
  "      [x1, y1, x2, y2]}], \"sam_model\": NAME, \"sam_quant\": true} for sam,\n"
  "      {\"providers\": [\"CUDAExecutionProvider\"]}\n"
  /* --- end model families --- */
  "      --stats[=json]          per-stage wall and CPU time, CPU use and\n"
  "                              peak memory on stderr (text or JSON)\n"
  /* --- thread management (issue #3) --- */
  "Threads (flag > CUTOUT_* env > OMP_NUM_THREADS > auto; see `cutout\n"
  "config` for the values in force and why):\n"
  "      --intra-threads N       ONNX Runtime intra-op threads per image,\n"
  "                              the calling thread included (default: the\n"
  "                              usable cores; 0 = ORT's own default)\n"
  "      --inter-threads N       inter-op threads (parallel mode only, >= 2)\n"
  "      --execution-mode sequential|parallel   ORT executor (default\n"
  "                              sequential)\n"
  "      --graph-opt disable|basic|extended|layout|all   (default all)\n"
  "      --spin on|off           let idle ORT workers spin (default off)\n"
  "      --spin-us N             spin window in microseconds (spin on,\n"
  "                              per-session pools)\n"
  "      --spin-stop on|off      stop spinning when a run ends (per-session)\n"
  "      --cpu-binding LIST      CPUs per intra-op thread, taskset ids, one\n"
  "                              group per thread, caller first: \"0;1\",\n"
  "                              \"0-3;4-7\"\n"
  "      --thread-pool shared|per-session   one global ORT pool for every\n"
  "                              model (default), or one per model\n"
  "      --denormals-zero on|off flush denormal floats (ORT and callers)\n"
  "      --dynamic-block-base N  ORT dynamic block base (per-session)\n"
  "      --huge-pages on|off     ORT's memory from cutout's allocator: 2 MiB\n"
  "                              pages, freed tensors reused (default on\n"
  "                              where the kernel has transparent huge pages)\n"
  "      --mem-arena on|off      ORT's own CPU arena instead (default off)\n"
  "      --mem-pattern on|off    ORT memory pattern (default off with\n"
  "                              huge pages: only the live set is touched)\n"
  "Models:\n"
  "      --model-cache on|off    keep each model's optimised form in\n"
  "                              $CUTOUT_CACHE_DIR (~/.cache/cutout) and map\n"
  "                              it at load (default on, CPU provider)\n"
  "      --fp16 promote|keep     run fp16 models in fp32 (default promote:\n"
  "                              ORT's CPU kernels are fp32 anyway)\n"
  "      --workers N             concurrent inference workers\n"
  "      --io-threads N          threads for decode/resize/encode\n"
  "      --workload latency|throughput|server   what the plan optimises\n"
  "      --ort-profile PREFIX    write ORT's profile to PREFIX_<date>.json\n";
  /* --- end thread management --- */

void cli_error(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fputs("cutout: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

void cli_opts_init(struct cli_opts *o)
{
  memset(o, 0, sizeof *o);
  o->model = "u2net";
  o->remove = cutout_remove_default_params(); /* -af 240 -ab 10 -ae 10 */
  /* rembg's CLI default -bgc is (0,0,0,0), and it is always applied. */
  o->remove.bgcolor_set = 1;
  o->quality = -1;
  o->max_pixels = cutout_ctx_default_params().max_pixels;
  o->engine = cutout_engine_default_params();
}

void cli_opts_free(struct cli_opts *o)
{
  free(o->model_path);
  /* --- model families (issue #7) --- */
  free(o->providers);
  free(o->sam_model);
  free(o->prompt);
  /* --- end model families --- */
}

/* --- model families (issue #7) --- */
void cli_model_params(const struct cli_opts *o, cutout_model_params *mp)
{
  mp->model_path = o->model_path;
  mp->sam_model = o->sam_model;
  mp->sam_quant = o->sam_quant;
  mp->providers = o->providers;
}

/* rembg's sam_prompt: a list of {type, label, data}, as its jsonschema
 * validates it, plus what its code needs (a point's label, two numbers
 * for a point and four for a rectangle). */
static int parse_prompt(const cJSON *v, struct cli_opts *o, char *err,
                        size_t errlen)
{
  if (!cJSON_IsArray(v)) {
    snprintf(err, errlen, "-x: sam_prompt must be a list of {\"type\", "
             "\"label\", \"data\"} objects");
    return -1;
  }
  int n = cJSON_GetArraySize(v);
  cutout_prompt *pr = calloc(n > 0 ? (size_t)n : 1, sizeof *pr);
  if (!pr) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  int k = 0;
  for (const cJSON *it = v->child; it; it = it->next, k++) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(it, "type");
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(it, "label");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(it, "data");
    const char *why = NULL;
    int want = 0;
    if (!cJSON_IsObject(it))
      why = "is not an object";
    else if (!cJSON_IsString(t))
      why = "needs \"type\": \"point\" or \"rectangle\"";
    else if (strcmp(t->valuestring, "point") == 0)
      want = 2, pr[k].type = CUTOUT_PROMPT_POINT;
    else if (strcmp(t->valuestring, "rectangle") == 0)
      want = 4, pr[k].type = CUTOUT_PROMPT_RECTANGLE;
    else
      why = "has a type other than \"point\" and \"rectangle\"";
    if (!why && l && (!cJSON_IsNumber(l) || l->valuedouble != (int)l->valuedouble))
      why = "has a \"label\" that is not an integer";
    else if (!why && !l && want == 2)
      why = "is a point without a \"label\" (1 foreground, 0 background)";
    if (!why && (!cJSON_IsArray(d) || cJSON_GetArraySize(d) != want))
      why = want == 2 ? "needs \"data\": [x, y]"
                      : "needs \"data\": [x1, y1, x2, y2]";
    int q = 0;
    for (const cJSON *x = why ? NULL : d->child; x; x = x->next, q++) {
      if (!cJSON_IsNumber(x)) {
        why = "has \"data\" that are not numbers";
        break;
      }
      pr[k].data[q] = x->valuedouble;
    }
    if (why) {
      snprintf(err, errlen, "-x: sam_prompt item %d %s", k, why);
      free(pr);
      return -1;
    }
    pr[k].label = l ? (int)l->valuedouble : 0;
  }
  free(o->prompt);
  o->prompt = pr;
  o->remove.sam_prompt = pr;
  o->remove.sam_prompt_count = (size_t)n;
  return 0;
}

/* Python's truth value of a JSON value. */
static int truthy(const cJSON *v)
{
  if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v)) return 0;
  if (cJSON_IsNumber(v)) return v->valuedouble != 0;
  if (cJSON_IsString(v)) return v->valuestring[0] != 0;
  if (cJSON_IsArray(v) || cJSON_IsObject(v)) return v->child != NULL;
  return 1;
}

/* The extras of issue #7 (it is a member of the object all): 1 consumed,
 * 0 not one of them, -1 bad value. */
static int family_extra(const cJSON *all, const cJSON *it, struct cli_opts *o,
                        char *err, size_t errlen)
{
  const char *key = it->string;
  if (strcmp(key, "sam_prompt") == 0) return parse_prompt(it, o, err, errlen)
                                               ? -1 : 1;
  if (strcmp(key, "sam_model") == 0) {
    if (!cJSON_IsString(it)) {
      snprintf(err, errlen, "-x: sam_model must be a string");
      return -1;
    }
    free(o->sam_model);
    o->sam_model = strdup(it->valuestring);
    return 1;
  }
  if (strcmp(key, "sam_quant") == 0) {
    if (!cJSON_IsBool(it)) {
      snprintf(err, errlen, "-x: sam_quant must be true or false");
      return -1;
    }
    o->sam_quant = cJSON_IsTrue(it);
    return 1;
  }
  if (strcmp(key, "cc") == 0 || strcmp(key, "cloth_category") == 0) {
    /* rembg: kwargs.get("cc") or kwargs.get("cloth_category"); anything
     * but upper / lower / full gives all three masks */
    int is_cc = strcmp(key, "cc") == 0;
    const cJSON *cc = cJSON_GetObjectItemCaseSensitive(all, "cc");
    if (!is_cc && truthy(cc)) return 1; /* cc wins when truthy */
    if (is_cc && !truthy(cc)) return 1; /* falls to cloth_category */
    const char *v = cJSON_IsString(it) ? it->valuestring : NULL;
    o->remove.cloth_category = !v                       ? CUTOUT_CLOTH_ALL
                               : strcmp(v, "upper") == 0 ? CUTOUT_CLOTH_UPPER
                               : strcmp(v, "lower") == 0 ? CUTOUT_CLOTH_LOWER
                               : strcmp(v, "full") == 0  ? CUTOUT_CLOTH_FULL
                                                         : CUTOUT_CLOTH_ALL;
    if (truthy(it) && !o->remove.cloth_category)
      fprintf(stderr, "cutout: warning: -x %s is not \"upper\", \"lower\" "
              "or \"full\": all three masks, as rembg\n", key);
    return 1;
  }
  if (strcmp(key, "providers") == 0) {
    /* rembg takes a list of ORT names; a comma-separated string is
     * accepted too */
    char buf[1024] = "";
    size_t n = 0;
    if (cJSON_IsString(it)) {
      snprintf(buf, sizeof buf, "%s", it->valuestring);
    } else if (cJSON_IsArray(it)) {
      for (const cJSON *x = it->child; x; x = x->next) {
        if (!cJSON_IsString(x)) {
          snprintf(err, errlen, "-x: providers must be a list of names");
          return -1;
        }
        n += (size_t)snprintf(buf + n, n < sizeof buf ? sizeof buf - n : 0,
                              "%s%s", n ? "," : "", x->valuestring);
      }
    } else {
      snprintf(err, errlen, "-x: providers must be a list of names");
      return -1;
    }
    if (o->providers_flag) return 1; /* --providers wins */
    free(o->providers);
    o->providers = strdup(buf);
    return 1;
  }
  return 0;
}
/* --- end model families --- */

static int parse_int(const char *s, long lo, long hi, long *out)
{
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

/* Match argv[*i] against a flag; sets *val for options taking a value. */
static int match(int argc, char **argv, int *i, const char *shortf,
                 const char *longf, int takes_value, const char **val)
{
  const char *a = argv[*i];
  size_t ll = longf ? strlen(longf) : 0;
  int hit = (shortf && strcmp(a, shortf) == 0) || (longf && strcmp(a, longf) == 0);
  if (!hit && takes_value && longf && strncmp(a, longf, ll) == 0 && a[ll] == '=') {
    *val = a + ll + 1;
    (*i)++;
    return 1;
  }
  if (!hit) return 0;
  if (takes_value) {
    if (*i + 1 >= argc) return -1;
    *val = argv[*i + 1];
    *i += 2;
  } else {
    (*i)++;
  }
  return 1;
}

/* --- thread management (issue #3) ---
 * The threading flags map onto engine parameters; the library parses and
 * checks the values, so a flag and its CUTOUT_* variable accept the same
 * text and fail with the same message. */
static const struct {
  const char *flag, *field;
} engine_flags[] = {
    {"--intra-threads", "intra_threads"},
    {"--inter-threads", "inter_threads"},
    {"--execution-mode", "exec_mode"},
    {"--graph-opt", "graph_opt"},
    {"--spin", "spin"},
    {"--spin-us", "spin_us"},
    {"--spin-stop", "spin_stop"},
    {"--cpu-binding", "cpu_binding"},
    {"--thread-pool", "thread_pool"},
    {"--denormals-zero", "denormals_zero"},
    {"--dynamic-block-base", "dynamic_block_base"},
    {"--mem-arena", "mem_arena"},
    {"--mem-pattern", "mem_pattern"},
    {"--huge-pages", "huge_pages"},
    {"--model-cache", "model_cache"},
    {"--fp16", "fp16"},
    {"--workers", "workers"},
    {"--io-threads", "io_threads"},
    {"--workload", "workload"},
    {"--ort-profile", "ort_profile"},
};

/* 1 consumed, 0 not a threading flag, -1 bad value. */
static int engine_flag(int argc, char **argv, int *i, struct cli_opts *o,
                       char *err, size_t errlen)
{
  const char *a = argv[*i], *v;
  for (size_t k = 0; k < sizeof engine_flags / sizeof engine_flags[0]; k++) {
    size_t n = strlen(engine_flags[k].flag);
    if (strncmp(a, engine_flags[k].flag, n) != 0) continue;
    if (a[n] == '=') {
      v = a + n + 1;
      *i += 1;
    } else if (!a[n]) {
      if (*i + 1 >= argc) {
        snprintf(err, errlen, "option %s needs a value", a);
        return -1;
      }
      v = argv[*i + 1];
      *i += 2;
    } else {
      continue;
    }
    return cutout_engine_param_set(&o->engine, engine_flags[k].field, v, err,
                                   errlen) ? -1 : 1;
  }
  return 0;
}
/* --- end thread management --- */

int cli_parse_option(int argc, char **argv, int *i, struct cli_opts *o,
                     char *err, size_t errlen)
{
  const char *v = NULL, *a = argv[*i];
  long n;
  int r;
#define OPT(s, l, val)                                                     \
  ((r = match(argc, argv, i, s, l, val, &v)) < 0                           \
       ? (snprintf(err, errlen, "option %s needs a value", a), 0) : r)
  if (OPT("-m", "--model", 1)) {
    o->model = v;
  } else if (OPT("-om", "--only-mask", 0)) {
    o->remove.only_mask = 1;
  } else if (OPT("-ppm", "--post-process-mask", 0)) {
    o->remove.post_process_mask = 1;
  /* --- edges and alpha matting (issue #6) --- */
  } else if (OPT("-a", "--alpha-matting", 0)) {
    o->remove.alpha_matting = 1;
  } else if (OPT("-af", "--alpha-matting-foreground-threshold", 1)) {
    if (parse_int(v, 0, 255, &n)) goto bad;
    o->remove.am_fg = (int)n;
  } else if (OPT("-ab", "--alpha-matting-background-threshold", 1)) {
    if (parse_int(v, 0, 255, &n)) goto bad;
    o->remove.am_bg = (int)n;
  } else if (OPT("-ae", "--alpha-matting-erode-size", 1)) {
    if (parse_int(v, 0, 10000, &n)) goto bad;
    o->remove.am_erode = (int)n;
  } else if (OPT("-dc", "--decontaminate", 0)) {
    o->remove.decontaminate = 1;
  } else if (OPT(NULL, "--edge", 1)) {
    if (strcmp(v, "premultiplied") == 0)
      o->remove.edge = CUTOUT_EDGE_PREMULTIPLIED;
    else if (strcmp(v, "straight") == 0)
      o->remove.edge = CUTOUT_EDGE_STRAIGHT;
    else if (strcmp(v, "decontaminate") == 0)
      o->remove.edge = CUTOUT_EDGE_DECONTAMINATE;
    else {
      snprintf(err, errlen, "bad --edge '%s': use premultiplied, straight "
               "or decontaminate", v);
      return -1;
    }
  } else if (strcmp(a, "--crop") == 0 || strncmp(a, "--crop=", 7) == 0) {
    /* The margin is optional: "--crop=N", or "--crop N" when the next
     * argument is a plain number (so `--crop in.jpg` keeps its input). */
    const char *m = a[6] == '=' ? a + 7 : NULL;
    int next = !m && *i + 1 < argc && argv[*i + 1][0] >= '0' &&
               argv[*i + 1][0] <= '9' &&
               strspn(argv[*i + 1], "0123456789") == strlen(argv[*i + 1]);
    if (next) m = argv[*i + 1];
    if (m && parse_int(m, 0, 1000000, &n)) {
      snprintf(err, errlen, "bad --crop margin '%s': pixels, 0 or more", m);
      return -1;
    }
    o->remove.crop = 1;
    o->remove.crop_margin = m ? (uint32_t)n : 0;
    *i += next ? 2 : 1;
    return 1;
  /* --- end edges and alpha matting --- */
  } else if (OPT("-x", "--extras", 1)) {
    o->extras = v;
  } else if (strcmp(a, "-bgc") == 0 || strcmp(a, "--bgcolor") == 0) {
    if (*i + 4 >= argc) {
      snprintf(err, errlen, "%s needs four values: R G B A (0-255)", a);
      return -1;
    }
    for (int k = 0; k < 4; k++) {
      if (parse_int(argv[*i + 1 + k], 0, 255, &n)) {
        snprintf(err, errlen, "bad %s value '%s': expected four integers "
                 "0-255 (R G B A)", a, argv[*i + 1 + k]);
        return -1;
      }
      o->remove.bgcolor[k] = (uint8_t)n;
    }
    o->remove.bgcolor_set = 1;
    *i += 5;
    return 1;
  } else if (OPT(NULL, "--format", 1)) {
    o->format = cutout_format_parse(v);
    if (o->format != CUTOUT_FORMAT_PNG && o->format != CUTOUT_FORMAT_JPEG &&
        o->format != CUTOUT_FORMAT_WEBP) {
      snprintf(err, errlen, "bad --format '%s': use png, webp or jpg", v);
      return -1;
    }
  } else if (OPT(NULL, "--quality", 1)) {
    if (parse_int(v, 1, 100, &n)) goto bad;
    o->quality = (int)n;
  } else if (OPT(NULL, "--max-pixels", 1)) {
    if (parse_int(v, 1, LONG_MAX, &n)) goto bad;
    o->max_pixels = (uint64_t)n;
  /* --- model families (issue #7) --- */
  } else if (OPT(NULL, "--providers", 1)) {
    free(o->providers);
    o->providers = strdup(v);
    o->providers_flag = 1;
  } else if (OPT(NULL, "--offline", 0)) {
    o->offline = 1;
  /* --- end model families --- */
  } else if (OPT(NULL, "--stats", 0)) {
    o->stats = 1;
  /* --- thread management (issue #3) --- */
  } else if (strncmp(a, "--stats=", 8) == 0) {
    if (strcmp(a + 8, "json") != 0 && strcmp(a + 8, "text") != 0) {
      snprintf(err, errlen, "bad value '%s' for --stats: use --stats, "
               "--stats=text or --stats=json", a + 8);
      return -1;
    }
    o->stats = strcmp(a + 8, "json") == 0 ? 2 : 1;
    (*i)++;
  } else if ((r = engine_flag(argc, argv, i, o, err, errlen)) != 0) {
    return r;
  /* --- end thread management --- */
  } else {
    return r < 0 ? -1 : 0;
  }
#undef OPT
  return 1;
bad:
  snprintf(err, errlen, "bad value '%s' for %s", v, a);
  return -1;
}

int cli_apply_extras(struct cli_opts *o, char *err, size_t errlen)
{
  /* --- thread management (issue #3): every command passes here after its
   * flags, so the environment fills what no flag set (flag > CUTOUT_* >
   * OMP_NUM_THREADS > auto). --- */
  if (cutout_engine_params_from_env(&o->engine, err, errlen)) return -1;
  /* --- end thread management --- */
  return cli_parse_extras(o, err, errlen);
}

int cli_parse_extras(struct cli_opts *o, char *err, size_t errlen)
{
  if (!o->extras) return 0;
  cJSON *j = cJSON_Parse(o->extras);
  if (!j || !cJSON_IsObject(j)) {
    snprintf(err, errlen, "-x/--extras is not a valid JSON object: %s",
             o->extras);
    cJSON_Delete(j);
    return -1;
  }
  int rc = 0;
  for (cJSON *it = j->child; it; it = it->next) {
    if (strcmp(it->string, "putalpha") == 0) {
      if (!cJSON_IsBool(it)) {
        snprintf(err, errlen, "-x: putalpha must be true or false");
        rc = -1;
        break;
      }
      o->remove.putalpha = cJSON_IsTrue(it);
    } else if (strcmp(it->string, "model_path") == 0) {
      if (!cJSON_IsString(it)) {
        snprintf(err, errlen, "-x: model_path must be a string");
        rc = -1;
        break;
      }
      free(o->model_path);
      o->model_path = strdup(it->valuestring);
    /* --- model families (issue #7) --- */
    } else if ((rc = family_extra(j, it, o, err, errlen)) != 0) {
      if (rc < 0) break;
      rc = 0;
    /* --- end model families --- */
    } else {
      /* rembg forwards unknown keys to the session; none of them changes
       * anything for the models this build runs. */
      fprintf(stderr, "cutout: warning: -x key '%s' is not used\n", it->string);
    }
  }
  cJSON_Delete(j);
  return rc;
}
