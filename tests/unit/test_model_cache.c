/*
 * test_model_cache.c: what cutout hands to ONNX Runtime (onnx_rewrite.c)
 * and the cache of ORT-optimised models (compiled.c).
 *
 * On real files and real sessions: the fp16 tiny model is rewritten into
 * fp32 with exact weights and one output, ORT loads the result and
 * computes the same mask; the cache is built once, then mapped; a damaged
 * cache file is rebuilt, an unusable folder only costs the cache, and a
 * changed model gets a new entry.  Malformed protobuf never reads outside
 * its buffer (ASan watches) and is refused.
 */
#include "onnx_rewrite.h"
#include "testutil.h"

#include "cutout.h"

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char model16[1200], model32[1200];

static int setup(void **state)
{
  (void)state;
  snprintf(model16, sizeof model16, "%s/tiny-isnet-fp16.onnx",
           tu_env("CUTOUT_TEST_MODELS"));
  snprintf(model32, sizeof model32, "%s/tiny-isnet.onnx",
           tu_env("CUTOUT_TEST_MODELS"));
  return 0;
}

/* Every half-precision bit pattern widens exactly (the compiler's own
 * conversion is the reference where it has one). */
static void test_half_to_float(void **state)
{
  (void)state;
  assert_true(cutout__half_to_float(0x3c00) == 1.0f);
  assert_true(cutout__half_to_float(0xc000) == -2.0f);
  assert_true(cutout__half_to_float(0x0001) == 0x1p-24f); /* subnormal */
  assert_true(cutout__half_to_float(0x7bff) == 65504.0f);
  assert_true(cutout__half_to_float(0x7c00) > 3e38f);     /* +inf */
  float nan = cutout__half_to_float(0x7e00);
  assert_true(nan != nan);
#if defined(__FLT16_MAX__)
  for (uint32_t h = 0; h < 65536; h++) {
    _Float16 x;
    uint16_t b = (uint16_t)h;
    memcpy(&x, &b, 2);
    float want = (float)x, got = cutout__half_to_float(b);
    assert_memory_equal(&got, &want, sizeof got);
  }
#endif
}

static uint8_t *rewrite_file(const char *path, unsigned flags, int *r,
                             size_t *out_len, struct cutout__rewrite_stats *rs)
{
  size_t len = 0;
  uint8_t *in = tu_read_file(path, &len), *out = NULL;
  char why[256];
  assert_non_null(in);
  *r = cutout__onnx_rewrite(in, len, flags, &out, out_len, rs, why,
                            sizeof why);
  free(in);
  return out;
}

static void test_rewrite_fp16(void **state)
{
  (void)state;
  struct cutout__rewrite_stats rs;
  size_t n = 0, n2 = 0;
  int r;
  uint8_t *out = rewrite_file(model16, CUTOUT_REWRITE_FP32 |
                              CUTOUT_REWRITE_FIRST_OUTPUT, &r, &n, &rs);
  assert_int_equal(r, 1);
  assert_int_equal(rs.tensors, 2);  /* w and b */
  assert_int_equal(rs.bytes_in, 8); /* 3 + 1 halves */
  assert_int_equal(rs.types, 3);    /* two value_infos and one Cast */
  assert_int_equal(rs.outputs, 2);  /* side0, side1 */

  /* nothing is left to change: the rewrite is idempotent */
  char why[256];
  uint8_t *again = NULL;
  assert_int_equal(cutout__onnx_rewrite(out, n, CUTOUT_REWRITE_FP32 |
                                        CUTOUT_REWRITE_FIRST_OUTPUT,
                                        &again, &n2, &rs, why, sizeof why), 0);
  assert_null(again);

  /* fp32 models have nothing to widen; only the outputs go */
  uint8_t *o32 = rewrite_file(model32, CUTOUT_REWRITE_FP32, &r, &n2, &rs);
  assert_int_equal(r, 0);
  assert_null(o32);
  o32 = rewrite_file(model32, CUTOUT_REWRITE_FIRST_OUTPUT, &r, &n2, &rs);
  assert_int_equal(r, 1);
  assert_int_equal(rs.tensors + rs.types, 0);
  assert_int_equal(rs.outputs, 2);

  /* ORT reads the rewrite: written out and loaded as a plain model, it has
   * one float output and gives the fp16 model's mask */
  char path[1400];
  snprintf(path, sizeof path, "%s/rewritten-fp32.onnx", tu_tmpdir());
  assert_int_equal(tu_write_file(path, out, n), 0);
  free(out);
  free(o32);

  char err[CUTOUT_ERRBUF_SIZE];
  cutout_engine_params ep = cutout_engine_default_params();
  assert_int_equal(cutout_engine_param_set(&ep, "model_cache", "off", err,
                                           sizeof err), 0);
  cutout_engine *e = NULL;
  assert_int_equal(cutout_engine_new(&ep, &e, err, sizeof err), 0);
  cutout_model *a = NULL, *b = NULL;
  assert_int_equal(cutout_model_load(e, path, NULL, &a, err, sizeof err), 0);
  assert_int_equal(cutout_model_load(e, model16, NULL, &b, err, sizeof err), 0);
  const char *note = NULL;
  assert_int_equal(cutout_model_compiled(b, NULL, &note), CUTOUT_COMPILED_OFF);
  assert_non_null(strstr(note, "fp16 promoted to fp32 (2 tensors"));
  cutout_ctx *c = NULL;
  assert_int_equal(cutout_ctx_new(e, NULL, &c), 0);
  cutout_image *img = NULL, *ma = NULL, *mb = NULL;
  assert_int_equal(cutout_image_new(320, 240, 3, &img), 0);
  for (size_t i = 0; i < (size_t)320 * 240 * 3; i++)
    img->pixels[i] = (uint8_t)(i * 13 + i / 977);
  assert_int_equal(cutout_predict_mask(c, a, img, &ma), 0);
  assert_int_equal(cutout_predict_mask(c, b, img, &mb), 0);
  assert_memory_equal(ma->pixels, mb->pixels, (size_t)320 * 240);
  cutout_image_free(ma);
  cutout_image_free(mb);
  cutout_image_free(img);
  cutout_ctx_free(c);
  cutout_model_free(a);
  cutout_model_free(b);
  cutout_engine_free(e);
}

/* Every truncation of a real model and some garbage: refused or
 * rewritten, never a read out of bounds (ASan) or a crash. */
static void test_rewrite_malformed(void **state)
{
  (void)state;
  size_t len = 0, n;
  uint8_t *in = tu_read_file(model16, &len), *out;
  struct cutout__rewrite_stats rs;
  char why[256];
  assert_non_null(in);
  int refused = 0;
  for (size_t cut = 0; cut < len; cut++) {
    uint8_t *copy = malloc(cut ? cut : 1); /* exact size for ASan */
    memcpy(copy, in, cut);
    int r = cutout__onnx_rewrite(copy, cut, CUTOUT_REWRITE_FP32 |
                                 CUTOUT_REWRITE_FIRST_OUTPUT, &out, &n, &rs,
                                 why, sizeof why);
    refused += r < 0;
    if (r == 1) free(out);
    free(copy);
  }
  print_message("%d of %zu truncations refused\n", refused, len);
  assert_true(refused > (int)len / 2);
  uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
  assert_int_equal(cutout__onnx_rewrite(junk, sizeof junk, CUTOUT_REWRITE_FP32,
                                        &out, &n, &rs, why, sizeof why), -1);
  assert_true(why[0] != 0);
  free(in);
}


/* ------------------------------------------------ hand-made protobuf */

struct pb {
  uint8_t b[8192];
  size_t n;
};

static void pb_varint(struct pb *m, uint64_t v)
{
  do {
    m->b[m->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
}
static void pb_key(struct pb *m, uint32_t num, int wt)
{
  pb_varint(m, (uint64_t)num << 3 | (uint64_t)wt);
}
static void pb_int(struct pb *m, uint32_t num, uint64_t v)
{
  pb_key(m, num, 0);
  pb_varint(m, v);
}
static void pb_bytes(struct pb *m, uint32_t num, const void *d, size_t n)
{
  pb_key(m, num, 2);
  pb_varint(m, n);
  memcpy(m->b + m->n, d, n);
  m->n += n;
}
static void pb_msg(struct pb *m, uint32_t num, const struct pb *sub)
{
  pb_bytes(m, num, sub->b, sub->n);
}

/* A model whose graph holds the given initializers and two outputs. */
static void model_of(struct pb *model, const struct pb *inits, int ninits)
{
  struct pb g = {.n = 0}, out = {.n = 0};
  for (int i = 0; i < ninits; i++) pb_msg(&g, 5, &inits[i]);
  pb_bytes(&out, 1, "y", 1);
  pb_msg(&g, 12, &out);
  out.n = 0;
  pb_bytes(&out, 1, "z", 1);
  pb_msg(&g, 12, &out);
  model->n = 0;
  pb_int(model, 1, 8);
  pb_msg(model, 7, &g);
}

/* The first field num (length-delimited) of a message, or NULL. */
static const uint8_t *pb_find(const uint8_t *d, size_t n, uint32_t num,
                              size_t *len)
{
  size_t i = 0;
  while (i < n) {
    uint64_t key = 0, v = 0;
    for (int s = 0; i < n; s += 7) {
      key |= (uint64_t)(d[i] & 0x7f) << s;
      if (!(d[i++] & 0x80)) break;
    }
    int wt = (int)(key & 7);
    if (wt == 0) {
      while (i < n && (d[i++] & 0x80)) {}
    } else if (wt == 5) {
      i += 4;
    } else if (wt == 1) {
      i += 8;
    } else {
      for (int s = 0; i < n; s += 7) {
        v |= (uint64_t)(d[i] & 0x7f) << s;
        if (!(d[i++] & 0x80)) break;
      }
      if ((key >> 3) == num) {
        *len = (size_t)v;
        return d + i;
      }
      i += (size_t)v;
    }
  }
  return NULL;
}

static void test_rewrite_crafted(void **state)
{
  (void)state;
  struct pb t[2], model;
  uint8_t *out = NULL;
  size_t n = 0;
  struct cutout__rewrite_stats rs;
  char why[256];
  const unsigned both = CUTOUT_REWRITE_FP32 | CUTOUT_REWRITE_FIRST_OUTPUT;

  /* fp16 values in packed int32_data (numpy's other way to store them):
   * 1.0 and -2.0 come out as raw fp32 */
  struct pb packed = {.n = 0};
  pb_varint(&packed, 0x3c00);
  pb_varint(&packed, 0xc000);
  t[0].n = 0;
  pb_int(&t[0], 1, 2);  /* dims */
  pb_int(&t[0], 2, 10); /* FLOAT16 */
  pb_bytes(&t[0], 8, "w", 1);
  pb_msg(&t[0], 5, &packed);
  /* beside it, a uint8 tensor of odd raw length: not fp16, left alone */
  t[1].n = 0;
  pb_int(&t[1], 2, 2); /* UINT8 */
  pb_bytes(&t[1], 9, "abc", 3);
  model_of(&model, t, 2);
  assert_int_equal(cutout__onnx_rewrite(model.b, model.n, both, &out, &n, &rs,
                                        why, sizeof why), 1);
  assert_int_equal(rs.tensors, 1);
  assert_int_equal(rs.outputs, 1);
  size_t gl, tl, rl;
  const uint8_t *g = pb_find(out, n, 7, &gl);
  assert_non_null(g);
  const uint8_t *tw = pb_find(g, gl, 5, &tl);
  assert_non_null(tw);
  const uint8_t *raw = pb_find(tw, tl, 9, &rl);
  assert_non_null(raw);
  assert_int_equal(rl, 8);
  float f[2];
  memcpy(f, raw, 8);
  assert_true(f[0] == 1.0f && f[1] == -2.0f);
  assert_null(pb_find(tw, tl, 5, &rl)); /* int32_data is gone */
  free(out);

  /* fp16 data under a wire type it cannot have (fixed32): refused, and
   * nothing written past the buffer (ASan) */
  t[0].n = 0;
  pb_int(&t[0], 2, 10);
  for (int k = 0; k < 50; k++) {
    pb_key(&t[0], 5, 5);
    memcpy(t[0].b + t[0].n, "\x00\x3c\x00\x00", 4);
    t[0].n += 4;
  }
  model_of(&model, t, 1);
  assert_int_equal(cutout__onnx_rewrite(model.b, model.n, both, &out, &n, &rs,
                                        why, sizeof why), -1);
  assert_non_null(strstr(why, "wire type"));

  /* fp16 data in an external file: the fp32 part is refused, the output
   * drop alone still works */
  t[0].n = 0;
  pb_int(&t[0], 2, 10);
  pb_int(&t[0], 14, 1); /* EXTERNAL */
  model_of(&model, t, 1);
  assert_int_equal(cutout__onnx_rewrite(model.b, model.n, both, &out, &n, &rs,
                                        why, sizeof why), -1);
  assert_non_null(strstr(why, "external"));
  assert_int_equal(cutout__onnx_rewrite(model.b, model.n,
                                        CUTOUT_REWRITE_FIRST_OUTPUT, &out, &n,
                                        &rs, why, sizeof why), 1);
  assert_int_equal(rs.outputs, 1);
  free(out);

  /* types nested past the depth limit: refused, not a stack overflow;
   * nested a little: rewritten */
  for (int depth = 8; depth <= 80; depth += 72) {
    struct pb ty = {.n = 0}, tt = {.n = 0}, vi = {.n = 0}, gr = {.n = 0};
    pb_int(&tt, 1, 10);
    pb_msg(&ty, 1, &tt); /* TypeProto{tensor_type{elem_type FLOAT16}} */
    for (int k = 0; k < depth; k++) {
      struct pb seq = {.n = 0}, wrap = {.n = 0};
      pb_msg(&seq, 1, &ty);  /* Sequence{elem_type: ty} */
      pb_msg(&wrap, 4, &seq); /* TypeProto{sequence_type} */
      ty = wrap;
    }
    pb_bytes(&vi, 1, "x", 1);
    pb_msg(&vi, 2, &ty);
    pb_msg(&gr, 11, &vi);
    model.n = 0;
    pb_msg(&model, 7, &gr);
    int r = cutout__onnx_rewrite(model.b, model.n, CUTOUT_REWRITE_FP32, &out,
                                 &n, &rs, why, sizeof why);
    if (depth > 64) {
      assert_int_equal(r, -1);
      assert_non_null(strstr(why, "deep"));
    } else {
      assert_int_equal(r, 1);
      assert_int_equal(rs.types, 1);
      free(out);
    }
  }
}

static int count_files(const char *dir, const char *suffix)
{
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *de;
  if (!d) return 0;
  while ((de = readdir(d))) {
    size_t l = strlen(de->d_name), s = strlen(suffix);
    n += l > s && strcmp(de->d_name + l - s, suffix) == 0;
  }
  closedir(d);
  return n;
}

static int count_with(const char *dir, const char *part)
{
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *de;
  if (!d) return 0;
  while ((de = readdir(d))) n += strstr(de->d_name, part) != NULL;
  closedir(d);
  return n;
}

struct run {
  cutout_engine *e;
  cutout_ctx *c;
  cutout_image *img;
};

static void run_open(struct run *r, const char *fp16)
{
  char err[CUTOUT_ERRBUF_SIZE];
  cutout_engine_params ep = cutout_engine_default_params();
  if (fp16)
    assert_int_equal(cutout_engine_param_set(&ep, "fp16", fp16, err,
                                             sizeof err), 0);
  assert_int_equal(cutout_engine_new(&ep, &r->e, err, sizeof err), 0);
  assert_int_equal(cutout_ctx_new(r->e, NULL, &r->c), 0);
  assert_int_equal(cutout_image_new(200, 150, 3, &r->img), 0);
  for (size_t i = 0; i < (size_t)200 * 150 * 3; i++)
    r->img->pixels[i] = (uint8_t)(i * 7 + i / 311);
}

static void run_close(struct run *r)
{
  cutout_image_free(r->img);
  cutout_ctx_free(r->c);
  cutout_engine_free(r->e);
}

/* Load path with cache_dir, predict, and return the state; the mask goes
 * to mask (200x150). */
static cutout_compiled load_predict(struct run *r, const char *path,
                                    const char *dir, uint8_t *mask,
                                    char *file, size_t cap)
{
  char err[CUTOUT_ERRBUF_SIZE];
  cutout_model_params mp = cutout_model_default_params();
  mp.cache_dir = dir;
  cutout_model *m = NULL;
  assert_int_equal(cutout_model_load(r->e, path, &mp, &m, err, sizeof err), 0);
  const char *fp = NULL, *note = NULL;
  cutout_compiled st = cutout_model_compiled(m, &fp, &note);
  print_message("compiled %d: %s (%s)\n", st, fp, note);
  if (file) snprintf(file, cap, "%s", fp);
  cutout_image *out = NULL;
  assert_int_equal(cutout_predict_mask(r->c, m, r->img, &out), 0);
  memcpy(mask, out->pixels, (size_t)200 * 150);
  cutout_image_free(out);
  cutout_model_free(m);
  return st;
}

static void test_cache_built_then_hit(void **state)
{
  (void)state;
  char dir[1200], file[4200], other[4200];
  snprintf(dir, sizeof dir, "%s/cache-a/sub", tu_tmpdir());
  static uint8_t m1[200 * 150], m2[200 * 150], m3[200 * 150], m4[200 * 150];
  struct run r;
  run_open(&r, NULL);
  assert_int_equal(load_predict(&r, model16, dir, m1, file, sizeof file),
                   CUTOUT_COMPILED_BUILT);
  struct stat sb;
  assert_int_equal(stat(file, &sb), 0);
  assert_true(sb.st_size > 0);
  assert_int_equal(count_files(dir, ".ort"), 1);
  assert_int_equal(count_files(dir, ".failed"), 0);
  assert_int_equal(count_with(dir, ".tmp."), 0); /* no temporary left */
  assert_int_equal(load_predict(&r, model16, dir, m2, other, sizeof other),
                   CUTOUT_COMPILED_HIT);
  assert_string_equal(file, other);
  assert_memory_equal(m1, m2, sizeof m1);

  /* a damaged file is rebuilt, not trusted */
  assert_int_equal(truncate(file, sb.st_size / 2), 0);
  assert_int_equal(load_predict(&r, model16, dir, m3, NULL, 0),
                   CUTOUT_COMPILED_BUILT);
  assert_memory_equal(m1, m3, sizeof m1);
  assert_int_equal(stat(file, &sb), 0);
  run_close(&r);

  /* fp16 kept: its own entry, and the same mask within fp16's rounding */
  run_open(&r, "keep");
  assert_int_equal(load_predict(&r, model16, dir, m4, other, sizeof other),
                   CUTOUT_COMPILED_BUILT);
  assert_string_not_equal(file, other);
  for (size_t i = 0; i < sizeof m1; i++) assert_true(abs(m1[i] - m4[i]) <= 1);
  run_close(&r);
}

static void test_cache_new_key_and_prune(void **state)
{
  (void)state;
  char dir[1200], copy[1300];
  snprintf(dir, sizeof dir, "%s/cache-b", tu_tmpdir());
  snprintf(copy, sizeof copy, "%s/tiny-isnet-fp16.onnx", tu_tmpdir());
  size_t len = 0;
  uint8_t *bytes = tu_read_file(model16, &len);
  assert_int_equal(tu_write_file(copy, bytes, len), 0);
  free(bytes);
  static uint8_t m[200 * 150];
  struct run r;
  run_open(&r, NULL);
  /* every change of the file's mtime is a new model: a new entry, and only
   * the three newest stay */
  for (int k = 0; k < 5; k++) {
    struct timespec ts[2] = {{1700000000 + k, 0}, {1700000000 + k, 0}};
    assert_int_equal(utimensat(AT_FDCWD, copy, ts, 0), 0);
    assert_int_equal(load_predict(&r, copy, dir, m, NULL, 0),
                     CUTOUT_COMPILED_BUILT);
    assert_int_equal(count_files(dir, ".ort"), k + 1 < 3 ? k + 1 : 3);
  }
  run_close(&r);
}

static void test_cache_unusable_folder(void **state)
{
  (void)state;
  static uint8_t m1[200 * 150], m2[200 * 150];
  struct run r;
  run_open(&r, NULL);
  /* /proc refuses mkdir even to root: the model still loads, uncached */
  char err[CUTOUT_ERRBUF_SIZE];
  cutout_model_params mp = cutout_model_default_params();
  mp.cache_dir = "/proc/cutout-no-such-cache";
  cutout_model *m = NULL;
  assert_int_equal(cutout_model_load(r.e, model16, &mp, &m, err, sizeof err), 0);
  const char *note = NULL;
  assert_int_equal(cutout_model_compiled(m, NULL, &note),
                   CUTOUT_COMPILED_FAILED);
  assert_non_null(strstr(note, "cache not used"));
  assert_non_null(strstr(note, "/proc/cutout-no-such-cache"));
  cutout_model_free(m);
  /* a folder others may write in is not used: ORT writes the file by
   * name, and a planted file would be trusted */
  char open_dir[1200];
  snprintf(open_dir, sizeof open_dir, "%s/cache-open", tu_tmpdir());
  assert_int_equal(mkdir(open_dir, 0755), 0);
  assert_int_equal(chmod(open_dir, 0777), 0);
  mp.cache_dir = open_dir;
  assert_int_equal(cutout_model_load(r.e, model16, &mp, &m, err, sizeof err), 0);
  assert_int_equal(cutout_model_compiled(m, NULL, &note),
                   CUTOUT_COMPILED_FAILED);
  assert_non_null(strstr(note, "writable by others"));
  cutout_model_free(m);
  assert_int_equal(count_files(open_dir, ".ort"), 0);
  /* and computes what the cached one does */
  char dir[1200];
  snprintf(dir, sizeof dir, "%s/cache-c", tu_tmpdir());
  load_predict(&r, model16, "/proc/cutout-no-such-cache", m1, NULL, 0);
  load_predict(&r, model16, dir, m2, NULL, 0);
  assert_memory_equal(m1, m2, sizeof m1);
  run_close(&r);

  /* a broken model is reported as such, cache or not */
  char bad[1200];
  snprintf(bad, sizeof bad, "%s/not-a-model.onnx", tu_env("CUTOUT_TEST_MODELS"));
  run_open(&r, NULL);
  mp.cache_dir = dir;
  assert_int_equal(cutout_model_load(r.e, bad, &mp, &m, err, sizeof err),
                   CUTOUT_EMODEL);
  assert_non_null(strstr(err, "not a valid ONNX model"));
  run_close(&r);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_half_to_float),
      cmocka_unit_test(test_rewrite_fp16),
      cmocka_unit_test(test_rewrite_malformed),
      cmocka_unit_test(test_rewrite_crafted),
      cmocka_unit_test(test_cache_built_then_hit),
      cmocka_unit_test(test_cache_new_key_and_prune),
      cmocka_unit_test(test_cache_unusable_folder),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
