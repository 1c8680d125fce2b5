/*
 * test_families.c: the per-family steps of issue #7 against rembg's
 * pipeline restated in numpy / Pillow / SciPy (tests/py/rembg_ref.py).
 *
 * The C side runs the library's own steps on generated images and writes
 * the results raw into the test's temp folder with a manifest; one Python
 * run per test recomputes each from the inputs alone and must agree
 * exactly: the model input tensor of every family (float32 bits), cloth-
 * seg's argmax and palette masks, SAM's encoder canvas, prompt tensors and
 * the warp of the decoder's masks back onto the photo.  The models are the
 * tiny stand-ins of tests/models/gen_family_models.py under rembg's names.
 * The rest checks the API: shapes read from the models, dynamic batches,
 * several masks, SAM loading, and execution providers that fail loudly.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "family.h"
#include "imaging.h"
#include "testutil.h"

static cutout_engine *engine;
static cutout_ctx *ctx;
static char home[600];

/* ------------------------------------------------------------ the oracle */

static const char *ORACLE =
    "import json, os, sys\n"
    "import numpy as np\n"
    "from PIL import Image\n"
    "sys.path.insert(0, os.path.join(os.environ['CUTOUT_TEST_DATA'], '..', 'py'))\n"
    "import rembg_ref as R\n"
    "MODES = {1: 'L', 2: 'LA', 3: 'RGB', 4: 'RGBA'}\n"
    "def img(path, w, h, c):\n"
    "    return Image.frombytes(MODES[int(c)], (int(w), int(h)), open(path, 'rb').read())\n"
    "def got(path, dtype, shape):\n"
    "    return np.fromfile(path, dtype=dtype).reshape(shape)\n"
    "bad = 0\n"
    "def check(what, a, b):\n"
    "    global bad\n"
    "    if a.shape != b.shape:\n"
    "        print('FAIL %s: shape %s, reference %s' % (what, a.shape, b.shape)); bad += 1; return\n"
    "    eq = (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == 'f' else a == b\n"
    "    if not eq.all():\n"
    "        i = np.argwhere(~eq)[0]\n"
    "        print('FAIL %s: %d values differ, first at %s: %r vs reference %r' %\n"
    "              (what, (~eq).sum(), tuple(i), a[tuple(i)], b[tuple(i)])); bad += 1\n"
    "d = sys.argv[1]\n"
    "for line in open(os.path.join(d, 'list.txt')):\n"
    "    f = line.split('\\t'); k = f[0]\n"
    "    p = lambda n: os.path.join(d, n)\n"
    "    if k == 'input':\n"
    "        name, w, h, c, src, dst = f[1:7]\n"
    "        size, (mean, std), _ = R.FAMILIES[name]\n"
    "        ref = R.normalize(img(p(src), w, h, c), mean, std, (size, size))\n"
    "        check('%s %sx%s/%s input' % (name, w, h, c), got(p(dst.strip()), np.float32, ref.shape), ref)\n"
    "    elif k == 'argmax':\n"
    "        classes, n, src, dst = int(f[1]), int(f[2]), f[3], f[4].strip()\n"
    "        s = got(p(src), np.float32, (1, classes, 1, n))\n"
    "        ref = np.argmax(s, axis=1, keepdims=True).astype(np.uint8).reshape(n)\n"
    "        check('argmax', got(p(dst), np.uint8, (n,)), ref)\n"
    "    elif k == 'palette':\n"
    "        cat, src, dst = f[1], f[2], f[3].strip()\n"
    "        m = Image.frombytes('L', (256, 1), open(p(src), 'rb').read())\n"
    "        ref = np.array(R.cloth_category(m, cat)).reshape(256)\n"
    "        check('palette ' + cat, got(p(dst), np.uint8, (256,)), ref)\n"
    "    elif k == 'samenc':\n"
    "        w, h, c, src, dst = f[1:6]\n"
    "        im = img(p(src), w, h, c)\n"
    "        ref = R.sam_warp(np.array(im.convert('RGB')), R.sam_matrix(im.size), R.SAM_CANVAS).astype(np.float32)\n"
    "        check('sam canvas %sx%s' % (w, h), got(p(dst.strip()), np.float32, ref.shape), ref)\n"
    "    elif k == 'sampts':\n"
    "        w, h, prompt, cdst, ldst = int(f[1]), int(f[2]), json.loads(f[3]), f[4], f[5].strip()\n"
    "        coord, label = R.sam_prompt_tensors((w, h), prompt, R.sam_matrix((w, h)))\n"
    "        check('sam coords %dx%d %s' % (w, h, f[3]), got(p(cdst), np.float32, coord.shape), coord)\n"
    "        check('sam labels %dx%d %s' % (w, h, f[3]), got(p(ldst), np.float32, label.shape), label)\n"
    "    elif k == 'samunwarp':\n"
    "        w, h, m, src, dst = int(f[1]), int(f[2]), int(f[3]), f[4], f[5].strip()\n"
    "        masks = got(p(src), np.float32, (1, m, 684, 1024))\n"
    "        ref = np.array(R.sam_mask(R.sam_unwarp(masks, (w, h), R.sam_matrix((w, h)))))\n"
    "        check('sam unwarp %dx%d' % (w, h), got(p(dst), np.uint8, (h, w)), ref)\n"
    "    else:\n"
    "        print('bad manifest line', line); bad += 1\n"
    "sys.exit(1 if bad else 0)\n";

struct manifest {
  char dir[600];
  FILE *list;
  int n;
};

static void man_open(struct manifest *m, const char *name)
{
  snprintf(m->dir, sizeof m->dir, "%s/%s", tu_tmpdir(), name);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", m->dir);
  assert_int_equal(system(cmd), 0);
  char path[700];
  snprintf(path, sizeof path, "%s/list.txt", m->dir);
  m->list = fopen(path, "w");
  assert_non_null(m->list);
  m->n = 0;
}

/* Write data as file NAME-<n>.<ext> in the manifest folder; its name goes
 * to out. */
static void man_file(struct manifest *m, const char *ext, const void *data,
                     size_t len, char *out, size_t cap)
{
  snprintf(out, cap, "f%d.%s", m->n++, ext);
  char path[800];
  snprintf(path, sizeof path, "%s/%s", m->dir, out);
  assert_int_equal(tu_write_file(path, data, len), 0);
}

static void man_line(struct manifest *m, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vfprintf(m->list, fmt, ap);
  va_end(ap);
  fputc('\n', m->list);
}

/* Run the oracle; the folder (tens of MB of tensors) is removed when it
 * agrees, kept for a look when it does not. */
static void man_check(struct manifest *m)
{
  fclose(m->list);
  const char *args[] = {m->dir, NULL};
  assert_int_equal(tu_python(ORACLE, args), 0);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", m->dir);
  assert_int_equal(system(cmd), 0);
}

/* ------------------------------------------------------------ helpers */

/* A photo-like test image: gradients, a pattern and noise. */
static cutout_image *photo(uint32_t w, uint32_t h, uint32_t c, uint32_t seed)
{
  cutout_image *img = NULL;
  assert_int_equal(cutout_image_new(w, h, c, &img), CUTOUT_OK);
  uint32_t s = seed * 2654435761u + 1;
  for (uint32_t y = 0; y < h; y++)
    for (uint32_t x = 0; x < w; x++)
      for (uint32_t k = 0; k < c; k++) {
        s = s * 1103515245u + 12345u;
        unsigned v = k == 0   ? x * 255 / (w > 1 ? w - 1 : 1)
                     : k == 1 ? y * 255 / (h > 1 ? h - 1 : 1)
                     : k == 2 ? ((x + y) * 7) % 256
                              : (x * 3 + y) % 256;
        v += (s >> 16) % 40;
        img->pixels[(size_t)y * img->stride + (size_t)x * c + k] =
            (uint8_t)(v > 255 ? 255 : v);
      }
  return img;
}

static cutout_model *load(const char *name, const char *model_path)
{
  cutout_model_params mp = cutout_model_default_params();
  mp.model_path = model_path;
  cutout_model *m = NULL;
  char err[CUTOUT_ERRBUF_SIZE] = "";
  cutout_status st = cutout_model_load(engine, name, &mp, &m, err, sizeof err);
  if (st) fail_msg("loading %s: %s", name, err);
  return m;
}

/* ------------------------------------------------------------ the tests */

/* The model input of every family (rembg's BaseSession.normalize with the
 * session's size, mean and std) and the shape read from each model. */
static void test_model_inputs(void **state)
{
  (void)state;
  static const struct {
    const char *name;
    uint32_t size;
  } fam[] = {{"u2net", 320},           {"u2netp", 320},
             {"u2net_human_seg", 320}, {"silueta", 320},
             {"isnet-anime", 1024},    {"birefnet-general", 1024},
             {"birefnet-massive", 1024}, {"bria-rmbg", 1024},
             {"u2net_cloth_seg", 768}, {"u2net_custom", 320}};
  struct manifest man;
  man_open(&man, "inputs");
  char custom[700];
  snprintf(custom, sizeof custom, "%s/my-custom-u2net.onnx", home);
  for (size_t i = 0; i < sizeof fam / sizeof fam[0]; i++) {
    int is_custom = strcmp(fam[i].name, "u2net_custom") == 0;
    cutout_model *m = load(fam[i].name, is_custom ? custom : NULL);
    cutout_model_shape sh = cutout_model_input_shape(m);
    assert_int_equal(sh.width, fam[i].size);
    assert_int_equal(sh.height, fam[i].size);
    assert_int_equal(sh.dynamic_batch, 0);
    assert_int_equal(sh.dynamic_size, 0);
    /* an RGB photo for all; a second mode for some */
    cutout_image *imgs[2] = {photo(97, 61, 3, (uint32_t)i + 1), NULL};
    if (i % 3 == 0) imgs[1] = photo(150, 211, 4, (uint32_t)i + 7);
    if (i % 3 == 1) imgs[1] = photo(40, 33, 1, (uint32_t)i + 9);
    for (int k = 0; k < 2 && imgs[k]; k++) {
      size_t n = (size_t)3 * sh.width * sh.height;
      float *t = malloc(n * sizeof *t);
      assert_non_null(t);
      assert_int_equal(cutout__model_input(ctx, m, imgs[k], t), CUTOUT_OK);
      char src[64], dst[64];
      man_file(&man, "img", imgs[k]->pixels,
               (size_t)imgs[k]->stride * imgs[k]->height, src, sizeof src);
      man_file(&man, "f32", t, n * sizeof *t, dst, sizeof dst);
      man_line(&man, "input\t%s\t%u\t%u\t%u\t%s\t%s", fam[i].name,
               imgs[k]->width, imgs[k]->height, imgs[k]->channels, src, dst);
      free(t);
      cutout_image_free(imgs[k]);
    }
    cutout_model_free(m);
  }
  man_check(&man);
}

/* cloth-seg: numpy's argmax (first maximum, NaN wins) and Pillow's
 * palette path, over every class value 0..255. */
static void test_cloth_steps(void **state)
{
  (void)state;
  struct manifest man;
  man_open(&man, "cloth");
  enum { C = 4, N = 5000 };
  static float s[C * N];
  static uint8_t out[N];
  uint32_t r = 7;
  for (size_t i = 0; i < (size_t)C * N; i++) {
    r = r * 1103515245u + 12345u;
    s[i] = (float)((r >> 16) % 9) * 0.5f - 2.0f; /* many exact ties */
  }
  s[3 * N + 17] = NAN;
  s[1 * N + 18] = NAN;
  s[2 * N + 18] = NAN;
  cutout__cloth_argmax(s, C, N, out);
  assert_int_equal(out[17], 3);
  assert_int_equal(out[18], 1);
  char a[64], b[64];
  man_file(&man, "f32", s, sizeof s, a, sizeof a);
  man_file(&man, "u8", out, sizeof out, b, sizeof b);
  man_line(&man, "argmax\t%d\t%d\t%s\t%s", C, N, a, b);

  uint8_t ramp[256], mask[256];
  for (int i = 0; i < 256; i++) ramp[i] = (uint8_t)i;
  static const char *cats[] = {"upper", "lower", "full"};
  for (int k = 1; k <= 3; k++) {
    cutout__cloth_category_mask(ramp, 256, k, mask);
    man_file(&man, "u8", ramp, 256, a, sizeof a);
    man_file(&man, "u8", mask, 256, b, sizeof b);
    man_line(&man, "palette\t%s\t%s\t%s", cats[k - 1], a, b);
  }
  man_check(&man);
}

/* SAM: the encoder canvas, the prompt tensors and the masks' way back, for
 * photos smaller and larger than the canvas, wide and tall, and a height
 * that divides 684 (sampling exactly on the last row). */
static void test_sam_steps(void **state)
{
  (void)state;
  struct manifest man;
  man_open(&man, "sam");
  static const uint32_t sizes[][3] = {{400, 300, 3}, {2000, 500, 3},
                                      {300, 228, 4}, {1024, 684, 3},
                                      {17, 9, 1},    {1500, 1400, 2},
                                      {1, 1, 3}};
  char a[64], b[64];
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    uint32_t w = sizes[i][0], h = sizes[i][1], c = sizes[i][2];
    cutout_image *img = photo(w, h, c, (uint32_t)i + 3), *rgb = img;
    if (c != 3) assert_int_equal(cutout__to_rgb(img, &rgb, NULL), CUTOUT_OK);
    double scale = cutout__sam_scale(w, h, 684, 1024);
    float *canvas = malloc((size_t)684 * 1024 * 3 * sizeof *canvas);
    assert_non_null(canvas);
    assert_int_equal(cutout__sam_encoder_input(rgb, 684, 1024, scale,
                                               (int)(i % 3) + 1, canvas),
                     CUTOUT_OK);
    man_file(&man, "img", img->pixels, (size_t)img->stride * h, a, sizeof a);
    man_file(&man, "f32", canvas, (size_t)684 * 1024 * 3 * sizeof *canvas, b,
             sizeof b);
    man_line(&man, "samenc\t%u\t%u\t%u\t%s\t%s", w, h, c, a, b);
    free(canvas);

    /* the decoder's masks: smooth fields crossing 0, three of them */
    size_t plane = (size_t)684 * 1024;
    float *masks = malloc(3 * plane * sizeof *masks);
    uint8_t *out = malloc((size_t)w * h);
    assert_non_null(masks);
    assert_non_null(out);
    for (size_t mm = 0; mm < 3; mm++)
      for (size_t y = 0; y < 684; y++)
        for (size_t x = 0; x < 1024; x++)
          masks[mm * plane + y * 1024 + x] =
              (float)(sin((double)x / (37.0 + (double)mm * 11)) +
                      cos((double)y / (23.0 + (double)mm * 5)) - 1.2);
    assert_int_equal(cutout__sam_unwarp(masks, 3, 684, 1024, scale, w, h,
                                        (int)(i % 2) + 1, out),
                     CUTOUT_OK);
    man_file(&man, "f32", masks, 3 * plane * sizeof *masks, a, sizeof a);
    man_file(&man, "u8", out, (size_t)w * h, b, sizeof b);
    man_line(&man, "samunwarp\t%u\t%u\t3\t%s\t%s", w, h, a, b);
    free(masks);
    free(out);
    if (rgb != img) cutout_image_free(rgb);
    cutout_image_free(img);
  }

  /* prompts: rembg's default, points and rectangles, fractional and
   * outside coordinates */
  static const struct {
    uint32_t w, h;
    size_t n;
    cutout_prompt p[3];
    const char *json;
  } prompts[] = {
      {400, 300, 0, {{0, 0, {0}}}, "null"},
      {401, 299, 0, {{0, 0, {0}}}, "null"},
      {2000, 500, 2,
       {{CUTOUT_PROMPT_POINT, 1, {400, 165, 0, 0}},
        {CUTOUT_PROMPT_POINT, 0, {1999.5, 3.25, 0, 0}}},
       "[{\"type\": \"point\", \"label\": 1, \"data\": [400, 165]}, "
       "{\"type\": \"point\", \"label\": 0, \"data\": [1999.5, 3.25]}]"},
      {300, 228, 3,
       {{CUTOUT_PROMPT_RECTANGLE, 0, {10, 20, 250.75, 200}},
        {CUTOUT_PROMPT_POINT, 1, {-5, 400, 0, 0}},
        {CUTOUT_PROMPT_RECTANGLE, 9, {0.1, 0.2, 0.3, 0.4}}},
       "[{\"type\": \"rectangle\", \"data\": [10, 20, 250.75, 200]}, "
       "{\"type\": \"point\", \"label\": 1, \"data\": [-5, 400]}, "
       "{\"type\": \"rectangle\", \"label\": 9, \"data\": [0.1, 0.2, 0.3, "
       "0.4]}]"},
  };
  for (size_t i = 0; i < sizeof prompts / sizeof prompts[0]; i++) {
    float *coords = NULL, *labels = NULL;
    size_t n = 0;
    double scale = cutout__sam_scale(prompts[i].w, prompts[i].h, 684, 1024);
    assert_int_equal(cutout__sam_points(prompts[i].n ? prompts[i].p : NULL,
                                        prompts[i].n, prompts[i].w,
                                        prompts[i].h, 684, 1024, scale,
                                        &coords, &labels, &n, NULL),
                     CUTOUT_OK);
    assert_float_equal(labels[n - 1], -1.0f, 0); /* the padding point */
    man_file(&man, "f32", coords, n * 2 * sizeof *coords, a, sizeof a);
    man_file(&man, "f32", labels, n * sizeof *labels, b, sizeof b);
    man_line(&man, "sampts\t%u\t%u\t%s\t%s\t%s", prompts[i].w, prompts[i].h,
             prompts[i].json, a, b);
    free(coords);
    free(labels);
  }
  man_check(&man);

  /* a prompt with nothing to point at, and an unknown mark */
  cutout_prompt bad = {7, 1, {0, 0, 0, 0}};
  float *co = NULL, *la = NULL;
  size_t n = 0;
  char err[CUTOUT_ERRMSG_MAX];
  assert_int_equal(cutout__sam_points(&bad, 1, 10, 10, 684, 1024, 1, &co,
                                      &la, &n, err),
                   CUTOUT_EINVAL);
  assert_int_equal(cutout__sam_points(&bad, 0, 10, 10, 684, 1024, 1, &co,
                                      &la, &n, err),
                   CUTOUT_EINVAL);
  assert_non_null(strstr(err, "no point"));
}

/* SAM as a model: two files, the canvas read from the encoder, sam_model
 * checked, and a prompt error reported through the ctx. */
static void test_sam_model(void **state)
{
  (void)state;
  cutout_model *m = load("sam", NULL);
  cutout_model_shape sh = cutout_model_input_shape(m);
  assert_int_equal(sh.width, 1024);
  assert_int_equal(sh.height, 684);
  assert_non_null(strstr(cutout_model_file(m), "sam_vit_b_01ec64.encoder.onnx"));

  cutout_image *img = photo(120, 90, 3, 5), *masks[CUTOUT_MAX_MASKS] = {0};
  size_t n = 0;
  cutout_remove_params p = cutout_remove_default_params();
  assert_int_equal(cutout_predict_masks(ctx, m, img, &p, masks, &n),
                   CUTOUT_OK);
  assert_int_equal(n, 1);
  assert_int_equal(masks[0]->width, 120);
  assert_int_equal(masks[0]->channels, 1);
  cutout_image_free(masks[0]);
  cutout_prompt none[1];
  p.sam_prompt = none;
  p.sam_prompt_count = 0;
  assert_int_equal(cutout_predict_masks(ctx, m, img, &p, masks, &n),
                   CUTOUT_EINVAL);
  assert_non_null(strstr(cutout_ctx_errmsg(ctx), "sam_prompt"));
  cutout_image_free(img);
  cutout_model_free(m);

  cutout_model_params mp = cutout_model_default_params();
  char err[CUTOUT_ERRBUF_SIZE];
  mp.sam_model = "../../etc/passwd";
  assert_int_equal(cutout_model_load(engine, "sam", &mp, &m, err, sizeof err),
                   CUTOUT_EINVAL);
  assert_non_null(strstr(err, "bad sam_model"));
  mp.sam_model = "sam_vit_l_0b3195";
  assert_int_equal(cutout_model_load(engine, "sam", &mp, &m, err, sizeof err),
                   CUTOUT_EMODEL);
  assert_non_null(strstr(err, "sam_vit_l_0b3195.encoder.onnx"));
  mp.sam_model = NULL;
  mp.sam_quant = 1;
  assert_int_equal(cutout_model_load(engine, "sam", &mp, &m, err, sizeof err),
                   CUTOUT_EMODEL);
  assert_non_null(strstr(err, "sam_vit_b_01ec64.encoder.quant.onnx"));
}

/* rembg's remove() with several masks: cloth-seg without a category stacks
 * three cutouts; with one, it is a single mask; the stacked L masks of
 * cutout_predict_mask are the three masks. */
static void test_cloth_masks(void **state)
{
  (void)state;
  cutout_model *m = load("u2net_cloth_seg", NULL);
  cutout_image *img = photo(80, 50, 3, 11), *masks[CUTOUT_MAX_MASKS] = {0};
  cutout_image *stacked = NULL, *res = NULL, *one = NULL;
  size_t n = 0;
  cutout_remove_params p = cutout_remove_default_params();
  assert_int_equal(cutout_predict_masks(ctx, m, img, &p, masks, &n),
                   CUTOUT_OK);
  assert_int_equal(n, 3);
  assert_int_equal(cutout_predict_mask(ctx, m, img, &stacked), CUTOUT_OK);
  assert_int_equal(stacked->width, 80);
  assert_int_equal(stacked->height, 150);
  assert_int_equal(stacked->channels, 1);
  for (size_t k = 0; k < 3; k++)
    assert_memory_equal(stacked->pixels + k * 80 * 50, masks[k]->pixels,
                        80 * 50);

  p.only_mask = 1;
  assert_int_equal(cutout_remove(ctx, m, img, &p, &res), CUTOUT_OK);
  assert_int_equal(res->height, 150);
  assert_int_equal(res->channels, 4); /* L pasted into RGBA, as Pillow */
  for (size_t i = 0; i < (size_t)80 * 150; i++) {
    assert_int_equal(res->pixels[i * 4], stacked->pixels[i]);
    assert_int_equal(res->pixels[i * 4 + 3], 255);
  }
  cutout_image_free(res);

  for (int cat = CUTOUT_CLOTH_UPPER; cat <= CUTOUT_CLOTH_FULL; cat++) {
    p.cloth_category = cat;
    assert_int_equal(cutout_remove(ctx, m, img, &p, &one), CUTOUT_OK);
    assert_int_equal(one->channels, 1);
    assert_int_equal(one->height, 50);
    assert_memory_equal(one->pixels, masks[cat - 1]->pixels, 80 * 50);
    cutout_image_free(one);
  }
  p.cloth_category = 9;
  assert_int_equal(cutout_remove(ctx, m, img, &p, &one), CUTOUT_EINVAL);

  p = cutout_remove_default_params();
  assert_int_equal(cutout_remove(ctx, m, img, &p, &res), CUTOUT_OK);
  assert_int_equal(res->width, 80);
  assert_int_equal(res->height, 150);
  assert_int_equal(res->channels, 4);
  cutout_image_free(res);
  for (size_t k = 0; k < 3; k++) cutout_image_free(masks[k]);
  cutout_image_free(stacked);
  cutout_image_free(img);
  cutout_model_free(m);
}

/* A dynamic batch dimension is detected and used; the masks equal one
 * run per image.  A fixed-batch model takes the one-by-one path. */
static void test_batch(void **state)
{
  (void)state;
  char path[700];
  snprintf(path, sizeof path, "%s/tiny-dynbatch.onnx",
           tu_env("CUTOUT_TEST_MODELS"));
  static const char *names[2] = {NULL, "u2netp"};
  names[0] = path;
  for (int mi = 0; mi < 2; mi++) {
    cutout_model *m = load(names[mi], NULL);
    assert_int_equal(cutout_model_input_shape(m).dynamic_batch, mi == 0);
    cutout_image *imgs[5], *got[5] = {0}, *want = NULL;
    for (int i = 0; i < 5; i++)
      imgs[i] = photo(30 + (uint32_t)i * 17, 40 + (uint32_t)i * 3,
                      i == 2 ? 4 : 3, (uint32_t)i + 20);
    assert_int_equal(cutout_predict_mask_batch(ctx, m,
                                               (const cutout_image *const *)imgs,
                                               5, 2, got),
                     CUTOUT_OK);
    for (int i = 0; i < 5; i++) {
      assert_int_equal(cutout_predict_mask(ctx, m, imgs[i], &want),
                       CUTOUT_OK);
      assert_int_equal(got[i]->width, imgs[i]->width);
      int diff = 0;
      for (size_t k = 0; k < (size_t)want->width * want->height; k++)
        if (abs(got[i]->pixels[k] - want->pixels[k]) > 1) diff++;
      assert_int_equal(diff, 0);
      cutout_image_free(want);
      cutout_image_free(got[i]);
      cutout_image_free(imgs[i]);
    }
    cutout_model_free(m);
  }
  cutout_model *cl = load("u2net_cloth_seg", NULL);
  cutout_image *img = photo(10, 10, 3, 1), *o = NULL;
  const cutout_image *one[1] = {img};
  assert_int_equal(cutout_predict_mask_batch(ctx, cl, one, 1, 4, &o),
                   CUTOUT_EUNSUPPORTED);
  cutout_image_free(img);
  cutout_model_free(cl);
}

/* Execution providers: CPU works; one that this ONNX Runtime lacks, an
 * unknown name, or CPU before another, are errors that say why. */
static void test_providers(void **state)
{
  (void)state;
  cutout_model_params mp = cutout_model_default_params();
  cutout_model *m = NULL;
  char err[CUTOUT_ERRBUF_SIZE];
  mp.providers = "cpu";
  assert_int_equal(cutout_model_load(engine, "u2netp", &mp, &m, err,
                                     sizeof err),
                   CUTOUT_OK);
  cutout_model_free(m);
  mp.providers = "CPUExecutionProvider";
  assert_int_equal(cutout_model_load(engine, "u2netp", &mp, &m, err,
                                     sizeof err),
                   CUTOUT_OK);
  cutout_model_free(m);
  mp.providers = "cuda,cpu";
  cutout_status st = cutout_model_load(engine, "u2netp", &mp, &m, err,
                                       sizeof err);
  /* this machine's ONNX Runtime has no CUDA; where it has, the load may
   * still fail loudly for want of the CUDA libraries */
  if (st == CUTOUT_EUNSUPPORTED) {
    assert_non_null(strstr(err, "CUDAExecutionProvider"));
    assert_non_null(strstr(err, "does not fall back"));
  } else if (st == CUTOUT_OK) {
    cutout_model_free(m);
  } else {
    assert_int_equal(st, CUTOUT_ERUNTIME);
    assert_non_null(strstr(err, "CUDAExecutionProvider"));
  }
  mp.providers = "warp-drive";
  assert_int_equal(cutout_model_load(engine, "u2netp", &mp, &m, err,
                                     sizeof err),
                   CUTOUT_EINVAL);
  assert_non_null(strstr(err, "unknown execution provider 'warp-drive'"));
  mp.providers = "cpu,xnnpack";
  assert_int_equal(cutout_model_load(engine, "u2netp", &mp, &m, err,
                                     sizeof err),
                   CUTOUT_EINVAL);
  assert_non_null(strstr(err, "cpu must come last"));
}

/* cutout_model_locate: present, size, verified only with a valid stamp. */
static void test_locate(void **state)
{
  (void)state;
  char path[4096];
  uint64_t bytes = 0;
  int present = -1, verified = -1;
  assert_int_equal(cutout_model_locate("u2netp", NULL, path, sizeof path,
                                       &bytes, &present, &verified),
                   CUTOUT_OK);
  assert_int_equal(present, 1);
  assert_true(bytes > 0);
  assert_non_null(strstr(path, "/home/u2netp.onnx"));
  assert_int_equal(verified, 0); /* checksums are off in this test */
  assert_int_equal(cutout_model_locate("sam", NULL, path, sizeof path,
                                       &bytes, &present, &verified),
                   CUTOUT_OK);
  assert_int_equal(present, 1);
  cutout_model_params mp = cutout_model_default_params();
  mp.sam_model = "sam_vit_h_4b8939";
  assert_int_equal(cutout_model_locate("sam", &mp, path, sizeof path, &bytes,
                                       &present, &verified),
                   CUTOUT_OK);
  assert_int_equal(present, 0);
  assert_int_equal(bytes, 0);
  assert_int_equal(cutout_model_locate("nosuch", NULL, NULL, 0, NULL, NULL,
                                       NULL),
                   CUTOUT_ENOMODEL);
}

static int setup(void **state)
{
  (void)state;
  snprintf(home, sizeof home, "%s/home", tu_env("CUTOUT_TEST_MODELS"));
  setenv("U2NET_HOME", home, 1);
  setenv("MODEL_CHECKSUM_DISABLED", "1", 1);
  char err[CUTOUT_ERRBUF_SIZE];
  cutout_engine_params ep = cutout_engine_default_params();
  if (cutout_engine_new(&ep, &engine, err, sizeof err)) {
    fprintf(stderr, "engine: %s\n", err);
    return -1;
  }
  return cutout_ctx_new(engine, NULL, &ctx) ? -1 : 0;
}

static int teardown(void **state)
{
  (void)state;
  cutout_ctx_free(ctx);
  cutout_engine_free(engine);
  return 0;
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_model_inputs), cmocka_unit_test(test_cloth_steps),
      cmocka_unit_test(test_sam_steps),    cmocka_unit_test(test_sam_model),
      cmocka_unit_test(test_cloth_masks),  cmocka_unit_test(test_batch),
      cmocka_unit_test(test_providers),    cmocka_unit_test(test_locate),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
