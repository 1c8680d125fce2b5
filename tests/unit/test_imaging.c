/*
 * test_imaging.c: the pixel operations of imaging.h against the real thing.
 *
 * Every case generates an image in C, writes it raw into the test's temp
 * directory and lists the operation in a manifest; one Python run per test
 * (Debian's Pillow 9.4 / SciPy 1.10 / scikit-image 0.19) applies the same
 * operation and writes raw bytes back, and the results must be identical
 * byte for byte.  Negative tests check argument validation.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "imaging.h"
#include "testutil.h"

/* ------------------------------------------------------------ the oracle */

static const char *ORACLE =
    "import sys\n"
    "import numpy as np\n"
    "from PIL import Image\n"
    "MODES = {1: 'L', 2: 'LA', 3: 'RGB', 4: 'RGBA'}\n"
    "def load(path, w, h, c):\n"
    "    return Image.frombytes(MODES[c], (w, h), open(path, 'rb').read())\n"
    "def opening(m):\n"
    "    try:\n"
    "        from skimage.morphology import opening, disk\n"
    "        return opening(m, disk(1))\n"
    "    except ImportError:\n"
    "        from scipy import ndimage as ndi\n"
    "        fp = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)\n"
    "        return ndi.grey_dilation(ndi.grey_erosion(m, footprint=fp),\n"
    "                                 footprint=fp)\n"
    "for line in open(sys.argv[1]):\n"
    "    f = line.split()\n"
    "    op, out = f[0], f[-1]\n"
    "    w, h, c = int(f[1]), int(f[2]), int(f[3])\n"
    "    im = load(f[4], w, h, c)\n"
    "    if op == 'resize':\n"
    "        r = im.resize((int(f[5]), int(f[6])), Image.LANCZOS)\n"
    "    elif op == 'rgb':\n"
    "        r = im.convert('RGB')\n"
    "    elif op == 'cutout':\n"
    "        m = load(f[5], w, h, 1)\n"
    "        r = Image.composite(im, Image.new('RGBA', im.size, 0), m)\n"
    "    elif op == 'putalpha':\n"
    "        im.putalpha(load(f[5], w, h, 1))\n"
    "        r = im\n"
    "    elif op == 'bg':\n"
    "        col = tuple(int(v) for v in f[5:9])\n"
    "        r = Image.alpha_composite(Image.new('RGBA', im.size, col),\n"
    "                                  im.convert('RGBA'))\n"
    "    elif op == 'pp':\n"
    "        from scipy.ndimage import gaussian_filter\n"
    "        m = opening(np.array(im))\n"
    "        m = gaussian_filter(m.astype(np.float64), sigma=2)\n"
    "        r = Image.fromarray(np.where(m < 127, 0, 255).astype(np.uint8))\n"
    "    else:\n"
    "        sys.exit('unknown op ' + op)\n"
    "    open(out, 'wb').write(r.tobytes())\n";

/* ------------------------------------------------------------ generators */

static uint32_t rng_next(uint32_t *s)
{
  uint32_t x = *s;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *s = x;
}

static cutout_image *new_image(uint32_t w, uint32_t h, uint32_t c)
{
  cutout_image *img = NULL;
  assert_int_equal(cutout_image_new(w, h, c, &img), CUTOUT_OK);
  return img;
}

/* Uniform noise. */
static cutout_image *gen_noise(uint32_t w, uint32_t h, uint32_t c,
                               uint32_t seed)
{
  cutout_image *img = new_image(w, h, c);
  uint32_t s = seed * 2654435761u + 12345u;
  for (size_t i = 0; i < (size_t)w * h * c; i++)
    img->pixels[i] = (uint8_t)(rng_next(&s) >> 24);
  return img;
}

/* Gradients, hard edges and a checkerboard; alpha (if any) has large
 * 0 and 255 areas, a ramp, and tiny values where unpremultiplying clips. */
static cutout_image *gen_struct(uint32_t w, uint32_t h, uint32_t c,
                                uint32_t seed)
{
  cutout_image *img = new_image(w, h, c);
  uint32_t s = seed * 2246822519u + 1u;
  for (uint32_t y = 0; y < h; y++)
    for (uint32_t x = 0; x < w; x++) {
      uint8_t *p = img->pixels + ((size_t)y * w + x) * c;
      const uint32_t r = rng_next(&s);
      uint8_t v[4];
      v[0] = (uint8_t)(x * 255 / (w > 1 ? w - 1 : 1));
      v[1] = ((x / 3 + y / 3) & 1) ? 250 : 5;
      v[2] = (uint8_t)(x < w / 2 ? 255 - y * 255 / (h > 1 ? h - 1 : 1)
                                 : (r >> 24));
      if (x % 7 == 0) v[0] = 255; /* isolated bright columns ring */
      const uint32_t band = (x + 2 * y) % 40;
      v[3] = band < 12 ? 0 : band < 24 ? 255
                                       : band < 28 ? (uint8_t)(1 + (r & 3))
                                                   : (uint8_t)(band * 6);
      if (c == 1) p[0] = v[0] ^ v[1];
      else if (c == 2) { p[0] = v[0] ^ v[1]; p[1] = v[3]; }
      else for (uint32_t i = 0; i < c; i++) p[i] = v[i];
    }
  return img;
}

/* A soft-edged mask: blobs ramping through the 127 threshold, speckle
 * noise for the opening to remove, and flat 126/127/128 patches where
 * the Gaussian result sits on the threshold to within rounding. */
static cutout_image *gen_mask(uint32_t w, uint32_t h, uint32_t seed)
{
  cutout_image *m = new_image(w, h, 1);
  uint32_t s = seed * 747796405u + 7u;
  const double cx = w * 0.4, cy = h * 0.55, rad = (w < h ? w : h) * 0.3;
  for (uint32_t y = 0; y < h; y++)
    for (uint32_t x = 0; x < w; x++) {
      const double dx = x - cx, dy = y - cy;
      double d = (dx * dx + dy * dy) / (rad * rad + 1);
      int v = (int)(255.0 * (1.2 - d));
      if (v < 0) v = 0;
      if (v > 255) v = 255;
      const uint32_t r = rng_next(&s);
      if ((r & 63) == 0) v = 255 - v; /* speckle */
      if (x >= w * 3 / 4 && y < h / 3) v = 126 + (int)((x / 5 + y / 5) % 3);
      if (x < w / 5 && y > h * 3 / 4) v = 127;
      m->pixels[(size_t)y * w + x] = (uint8_t)v;
    }
  return m;
}

/* Tiles of planes 127 + a*dx + b*dy around each tile's centre.  The
 * opening keeps a plane, and the Gaussian of a plane is 127 at the centre
 * in exact arithmetic, so the threshold there depends on SciPy's exact
 * float64 summation order (these slopes were picked because a different
 * pair order or a plain left-to-right sum flips some pixels). */
static cutout_image *gen_planes(void)
{
  static const int SLOPES[8][2] = {{-4, 4},  {1, -1}, {-8, -1}, {-12, 3},
                                   {-7, 7},  {5, -5}, {0, -5},  {-4, -1}};
  enum { T = 40 };
  cutout_image *m = new_image(4 * T, 2 * T, 1);
  for (uint32_t y = 0; y < 2 * T; y++)
    for (uint32_t x = 0; x < 4 * T; x++) {
      const int *ab = SLOPES[(y / T) * 4 + x / T];
      const int dx = (int)(x % T) - T / 2, dy = (int)(y % T) - T / 2;
      int v = 127 + ab[0] * dx + ab[1] * dy;
      if (v < 0) v = 0;
      if (v > 255) v = 255;
      m->pixels[(size_t)y * 4 * T + x] = (uint8_t)v;
    }
  return m;
}

/* ------------------------------------------------------------- batching */

#define MAX_CASES 96

struct batch {
  const char *name;
  FILE *manifest;
  char manifest_path[512];
  int n, inputs;
  cutout_image *ours[MAX_CASES];
  char expect[MAX_CASES][512];
  char label[MAX_CASES][128];
};

static void batch_begin(struct batch *b, const char *name)
{
  memset(b, 0, sizeof *b);
  b->name = name;
  snprintf(b->manifest_path, sizeof b->manifest_path, "%s/%s.txt",
           tu_tmpdir(), name);
  b->manifest = fopen(b->manifest_path, "w");
  assert_non_null(b->manifest);
}

/* Write img raw; returns a path that stays valid (static ring). */
static const char *batch_input(struct batch *b, const cutout_image *img)
{
  static char paths[8][512];
  char *p = paths[b->inputs % 8];
  snprintf(p, 512, "%s/%s_in%d.raw", tu_tmpdir(), b->name, b->inputs++);
  assert_int_equal(
      tu_write_file(p, img->pixels, (size_t)img->stride * img->height), 0);
  return p;
}

/* Record our result for the manifest line "op <args> <expected path>". */
static void batch_add(struct batch *b, cutout_image *ours, const char *label,
                      const char *fmt, ...)
{
  assert_true(b->n < MAX_CASES);
  const int i = b->n++;
  b->ours[i] = ours;
  snprintf(b->label[i], sizeof b->label[i], "%s", label);
  snprintf(b->expect[i], sizeof b->expect[i], "%s/%s_out%d.raw", tu_tmpdir(),
           b->name, i);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(b->manifest, fmt, ap);
  va_end(ap);
  fprintf(b->manifest, " %s\n", b->expect[i]);
}

static void batch_check(struct batch *b)
{
  assert_int_equal(fclose(b->manifest), 0);
  const char *args[] = {b->manifest_path, NULL};
  assert_int_equal(tu_python(ORACLE, args), 0);
  int bad = 0;
  for (int i = 0; i < b->n; i++) {
    size_t len = 0;
    uint8_t *want = tu_read_file(b->expect[i], &len);
    assert_non_null(want);
    const cutout_image *o = b->ours[i];
    const size_t have = (size_t)o->stride * o->height;
    if (len != have) {
      print_error("%s: %s: size %zu, Pillow %zu\n", b->name, b->label[i],
                  have, len);
      bad++;
    } else if (memcmp(want, o->pixels, len) != 0) {
      size_t first = 0, count = 0;
      for (size_t k = len; k-- > 0;)
        if (want[k] != o->pixels[k]) first = k, count++;
      print_error("%s: %s: %zu bytes differ, first at %zu (%u vs %u)\n",
                  b->name, b->label[i], count, first,
                  (unsigned)o->pixels[first], (unsigned)want[first]);
      bad++;
    }
    free(want);
    cutout_image_free(b->ours[i]);
  }
  assert_int_equal(bad, 0);
}

/* ---------------------------------------------------------------- resize */

struct rcase {
  uint32_t w, h, ow, oh;
};

static const struct rcase RESIZE_CASES[] = {
    {64, 48, 11, 9},    /* ~6x down */
    {13, 9, 80, 61},    /* ~6x up */
    {97, 61, 16, 16},   /* non-uniform, to a square like rembg */
    {16, 16, 97, 61},   /* and back */
    {33, 17, 33, 40},   /* vertical pass only */
    {33, 17, 70, 17},   /* horizontal pass only */
    {30, 30, 30, 30},   /* same size: copy */
    {1, 20, 7, 3},      /* 1 x N */
    {20, 1, 3, 9},      /* N x 1 */
    {1, 1, 5, 4},       /* single pixel up */
    {5, 5, 1, 1},       /* to a single pixel */
    {3, 200, 200, 3},   /* narrow to wide */
    {255, 7, 2, 31},    /* strong horizontal reduction */
    {100, 100, 99, 101} /* near-identity */
};

static void test_resize_matches_pillow(void **state)
{
  (void)state;
  struct batch b;
  batch_begin(&b, "resize");
  char label[128], err[CUTOUT_ERRMSG_MAX];
  const size_t ncases = sizeof RESIZE_CASES / sizeof RESIZE_CASES[0];
  for (uint32_t c = 1; c <= 4; c++)
    for (size_t i = 0; i < ncases; i++) {
      const struct rcase *r = &RESIZE_CASES[i];
      cutout_image *img = (i % 2) ? gen_noise(r->w, r->h, c, (uint32_t)i)
                                  : gen_struct(r->w, r->h, c, (uint32_t)i);
      cutout_image *o = NULL;
      err[0] = 0;
      assert_int_equal(
          cutout__resize_lanczos(img, r->ow, r->oh, 1 + (int)(i % 3), &o,
                                 err),
          CUTOUT_OK);
      assert_int_equal(o->width, r->ow);
      assert_int_equal(o->height, r->oh);
      assert_int_equal(o->channels, c);
      snprintf(label, sizeof label, "c%u %ux%u->%ux%u", (unsigned)c,
               (unsigned)r->w, (unsigned)r->h, (unsigned)r->ow,
               (unsigned)r->oh);
      batch_add(&b, o, label, "resize %u %u %u %s %u %u", (unsigned)r->w,
                (unsigned)r->h, (unsigned)c, batch_input(&b, img),
                (unsigned)r->ow, (unsigned)r->oh);
      cutout_image_free(img);
    }
  /* rembg's two real shapes, scaled down to keep the test fast. */
  cutout_image *img = gen_struct(600, 400, 3, 99);
  cutout_image *o = NULL;
  assert_int_equal(cutout__resize_lanczos(img, 102, 102, 2, &o, err),
                   CUTOUT_OK);
  batch_add(&b, o, "RGB 600x400->102x102", "resize 600 400 3 %s 102 102",
            batch_input(&b, img));
  cutout_image_free(img);
  img = gen_mask(102, 102, 5);
  assert_int_equal(cutout__resize_lanczos(img, 600, 400, 2, &o, err),
                   CUTOUT_OK);
  batch_add(&b, o, "L 102x102->600x400", "resize 102 102 1 %s 600 400",
            batch_input(&b, img));
  cutout_image_free(img);
  batch_check(&b);
}

/* The thread count must not change a single byte. */
static void test_resize_threads_agree(void **state)
{
  (void)state;
  cutout_image *img = gen_noise(301, 203, 4, 3);
  cutout_image *a = NULL, *b = NULL;
  assert_int_equal(cutout__resize_lanczos(img, 64, 97, 1, &a, NULL),
                   CUTOUT_OK);
  assert_int_equal(cutout__resize_lanczos(img, 64, 97, 7, &b, NULL),
                   CUTOUT_OK);
  assert_memory_equal(a->pixels, b->pixels, (size_t)a->stride * a->height);
  cutout_image_free(a);
  cutout_image_free(b);
  cutout_image_free(img);
}

/* ------------------------------------------------- convert and composite */

static const uint32_t SIZES[][2] = {{1, 1}, {1, 17}, {23, 1}, {37, 29},
                                    {128, 64}};

static void test_to_rgb_matches_pillow(void **state)
{
  (void)state;
  struct batch b;
  batch_begin(&b, "rgb");
  char label[64];
  for (uint32_t c = 1; c <= 4; c++)
    for (size_t i = 0; i < sizeof SIZES / sizeof SIZES[0]; i++) {
      const uint32_t w = SIZES[i][0], h = SIZES[i][1];
      cutout_image *img = gen_struct(w, h, c, (uint32_t)i);
      cutout_image *o = NULL;
      assert_int_equal(cutout__to_rgb(img, &o, NULL), CUTOUT_OK);
      assert_int_equal(o->channels, 3);
      snprintf(label, sizeof label, "c%u %ux%u", (unsigned)c, (unsigned)w,
               (unsigned)h);
      batch_add(&b, o, label, "rgb %u %u %u %s", (unsigned)w, (unsigned)h,
                (unsigned)c, batch_input(&b, img));
      cutout_image_free(img);
    }
  batch_check(&b);
}

static void test_cutout_and_putalpha_match_pillow(void **state)
{
  (void)state;
  struct batch b;
  batch_begin(&b, "cut");
  char label[64];
  for (uint32_t c = 1; c <= 4; c++)
    for (size_t i = 0; i < sizeof SIZES / sizeof SIZES[0]; i++) {
      const uint32_t w = SIZES[i][0], h = SIZES[i][1];
      cutout_image *img = (i % 2) ? gen_noise(w, h, c, (uint32_t)i + 40)
                                  : gen_struct(w, h, c, (uint32_t)i);
      cutout_image *mask = gen_noise(w, h, 1, (uint32_t)i + 80);
      const char *ip = batch_input(&b, img);
      const char *mp = batch_input(&b, mask);
      cutout_image *o = NULL;
      assert_int_equal(cutout__naive_cutout(img, mask, 2, &o, NULL),
                       CUTOUT_OK);
      assert_int_equal(o->channels, 4);
      snprintf(label, sizeof label, "cutout c%u %ux%u", (unsigned)c,
               (unsigned)w, (unsigned)h);
      batch_add(&b, o, label, "cutout %u %u %u %s %s", (unsigned)w,
                (unsigned)h, (unsigned)c, ip, mp);
      assert_int_equal(cutout__putalpha(img, mask, &o, NULL), CUTOUT_OK);
      assert_int_equal(o->channels, c <= 2 ? 2u : 4u);
      snprintf(label, sizeof label, "putalpha c%u %ux%u", (unsigned)c,
               (unsigned)w, (unsigned)h);
      batch_add(&b, o, label, "putalpha %u %u %u %s %s", (unsigned)w,
                (unsigned)h, (unsigned)c, ip, mp);
      cutout_image_free(img);
      cutout_image_free(mask);
    }
  batch_check(&b);
}

static void test_background_matches_pillow(void **state)
{
  (void)state;
  static const uint8_t COLORS[][4] = {
      {0, 0, 0, 0}, {255, 255, 255, 255}, {10, 200, 30, 128}, {7, 1, 250, 1}};
  struct batch b;
  batch_begin(&b, "bg");
  char label[64];
  for (uint32_t c = 1; c <= 4; c++)
    for (size_t i = 0; i < sizeof SIZES / sizeof SIZES[0]; i++)
      for (size_t k = 0; k < 4; k++) {
        const uint32_t w = SIZES[i][0], h = SIZES[i][1];
        cutout_image *img =
            (k % 2) ? gen_noise(w, h, c, (uint32_t)(i * 4 + k))
                    : gen_struct(w, h, c, (uint32_t)(i * 4 + k));
        cutout_image *o = NULL;
        const uint8_t *col = COLORS[k];
        assert_int_equal(cutout__apply_background(img, col, 2, &o, NULL),
                         CUTOUT_OK);
        snprintf(label, sizeof label, "c%u %ux%u color %u", (unsigned)c,
                 (unsigned)w, (unsigned)h, (unsigned)k);
        batch_add(&b, o, label, "bg %u %u %u %s %u %u %u %u", (unsigned)w,
                  (unsigned)h, (unsigned)c, batch_input(&b, img),
                  (unsigned)col[0], (unsigned)col[1], (unsigned)col[2],
                  (unsigned)col[3]);
        cutout_image_free(img);
      }
  batch_check(&b);
}

/* ---------------------------------------------------------- post-process */

static void test_post_process_matches_scipy(void **state)
{
  (void)state;
  static const uint32_t PP_SIZES[][2] = {{1, 1},  {1, 9},   {9, 1},
                                         {2, 3},  {5, 17},  {16, 16},
                                         {40, 31}, {300, 211}};
  struct batch b;
  batch_begin(&b, "pp");
  char label[64];
  for (size_t i = 0; i < sizeof PP_SIZES / sizeof PP_SIZES[0]; i++)
    for (int kind = 0; kind < 3; kind++) {
      const uint32_t w = PP_SIZES[i][0], h = PP_SIZES[i][1];
      cutout_image *m = kind == 0   ? gen_mask(w, h, (uint32_t)i)
                        : kind == 1 ? gen_noise(w, h, 1, (uint32_t)i)
                                    : new_image(w, h, 1);
      if (kind == 2) /* flat 127: the Gaussian lands on the threshold */
        memset(m->pixels, 127, (size_t)w * h);
      cutout_image *o = NULL;
      assert_int_equal(cutout__post_process_mask(m, 1 + (int)(i % 2), &o,
                                                 NULL),
                       CUTOUT_OK);
      snprintf(label, sizeof label, "%ux%u kind %d", (unsigned)w,
               (unsigned)h, kind);
      batch_add(&b, o, label, "pp %u %u 1 %s", (unsigned)w, (unsigned)h,
                batch_input(&b, m));
      cutout_image_free(m);
    }
  cutout_image *m = gen_planes(), *o = NULL;
  assert_int_equal(cutout__post_process_mask(m, 2, &o, NULL), CUTOUT_OK);
  batch_add(&b, o, "planes", "pp %u %u 1 %s", (unsigned)m->width,
            (unsigned)m->height, batch_input(&b, m));
  cutout_image_free(m);
  batch_check(&b);
}

/* ----------------------------------------------- real rembg 2.0.77 output */

/* Decodes the conformance photos and rembg's outputs to raw bytes:
 * NAME.img (as rembg sees it after exif_transpose), NAME.om (its mask) and
 * the RGBA results, plus a list "NAME w h channels". */
static const char *CONF_PREP =
    "import sys, os\n"
    "from PIL import Image, ImageOps\n"
    "conf, out = sys.argv[1], sys.argv[2]\n"
    "CH = {'L': 1, 'LA': 2, 'RGB': 3, 'RGBA': 4}\n"
    "with open(os.path.join(out, 'list.txt'), 'w') as lst:\n"
    "    for name in sys.argv[3:]:\n"
    "        im = ImageOps.exif_transpose(Image.open(\n"
    "            os.path.join(conf, 'inputs', name + '.jpg')))\n"
    "        img = os.path.join(out, name + '.img')\n"
    "        open(img, 'wb').write(im.tobytes())\n"
    "        ref = os.path.join(conf, 'rembg-2.0.77', name + '.isnet.')\n"
    "        for k in ('om', 'png', 'ppm', 'putalpha', 'bgc-white'):\n"
    "            r = Image.open(ref + ('png' if k == 'png' else k + '.png'))\n"
    "            open(os.path.join(out, name + '.' + k), 'wb').write(\n"
    "                r.tobytes())\n"
    "        lst.write('%s %d %d %d\\n' % (name, im.width, im.height,\n"
    "                                      CH[im.mode]))\n";

static cutout_image *read_raw(const char *dir, const char *name,
                              const char *kind, uint32_t w, uint32_t h,
                              uint32_t c)
{
  char path[512];
  snprintf(path, sizeof path, "%s/%s.%s", dir, name, kind);
  size_t len = 0;
  uint8_t *data = tu_read_file(path, &len);
  assert_non_null(data);
  assert_int_equal(len, (size_t)w * h * c);
  cutout_image *img = new_image(w, h, c);
  memcpy(img->pixels, data, len);
  free(data);
  return img;
}

static void expect_same(const cutout_image *got, const cutout_image *want,
                        const char *what)
{
  assert_int_equal(got->channels, want->channels);
  const size_t n = (size_t)got->stride * got->height;
  size_t diff = 0;
  for (size_t i = 0; i < n; i++) diff += got->pixels[i] != want->pixels[i];
  if (diff) print_error("%s: %zu bytes differ from rembg\n", what, diff);
  assert_int_equal(diff, 0);
}

/* rembg's own outputs from its own masks: -ppm, the default naive cutout,
 * putalpha and -bgc, each followed by the CLI's alpha_composite. */
static void test_matches_rembg_outputs(void **state)
{
  (void)state;
  const char *conf = getenv("CUTOUT_CONFORMANCE");
  char probe[512];
  snprintf(probe, sizeof probe, "%s/rembg-2.0.77/car-1.isnet.om.png",
           conf ? conf : "");
  FILE *f = conf ? fopen(probe, "rb") : NULL;
  if (!f) skip();
  fclose(f);

  char dir[512];
  snprintf(dir, sizeof dir, "%s/conf", tu_tmpdir());
  assert_int_equal(mkdir(dir, 0700) == 0 || errno == EEXIST, 1);
  const char *args[] = {conf, dir, "anime-girl-1", "car-1", "girl-1",
                        "plants-1", NULL};
  assert_int_equal(tu_python(CONF_PREP, args), 0);

  char path[600], name[64];
  snprintf(path, sizeof path, "%s/list.txt", dir);
  FILE *lst = fopen(path, "r");
  assert_non_null(lst);
  static const uint8_t CLEAR[4] = {0, 0, 0, 0}, WHITE[4] = {255, 255, 255,
                                                             255};
  unsigned w, h, c;
  int count = 0;
  while (fscanf(lst, "%63s %u %u %u", name, &w, &h, &c) == 4) {
    cutout_image *img = read_raw(dir, name, "img", w, h, c);
    cutout_image *om = read_raw(dir, name, "om", w, h, 1);
    cutout_image *pp = NULL, *cut = NULL, *out = NULL, *want;
    char what[128];

    /* default: naive cutout, then bgcolor (0, 0, 0, 0) */
    assert_int_equal(cutout__naive_cutout(img, om, 2, &cut, NULL), CUTOUT_OK);
    assert_int_equal(cutout__apply_background(cut, CLEAR, 2, &out, NULL),
                     CUTOUT_OK);
    want = read_raw(dir, name, "png", w, h, 4);
    snprintf(what, sizeof what, "%s default", name);
    expect_same(out, want, what);
    cutout_image_free(want);
    cutout_image_free(out);

    /* -bgc 255 255 255 255 */
    assert_int_equal(cutout__apply_background(cut, WHITE, 2, &out, NULL),
                     CUTOUT_OK);
    want = read_raw(dir, name, "bgc-white", w, h, 4);
    snprintf(what, sizeof what, "%s -bgc white", name);
    expect_same(out, want, what);
    cutout_image_free(want);
    cutout_image_free(out);
    cutout_image_free(cut);

    /* -x '{"putalpha": true}' */
    assert_int_equal(cutout__putalpha(img, om, &cut, NULL), CUTOUT_OK);
    assert_int_equal(cutout__apply_background(cut, CLEAR, 2, &out, NULL),
                     CUTOUT_OK);
    want = read_raw(dir, name, "putalpha", w, h, 4);
    snprintf(what, sizeof what, "%s putalpha", name);
    expect_same(out, want, what);
    cutout_image_free(want);
    cutout_image_free(out);
    cutout_image_free(cut);

    /* -ppm */
    assert_int_equal(cutout__post_process_mask(om, 2, &pp, NULL), CUTOUT_OK);
    assert_int_equal(cutout__naive_cutout(img, pp, 2, &cut, NULL), CUTOUT_OK);
    assert_int_equal(cutout__apply_background(cut, CLEAR, 2, &out, NULL),
                     CUTOUT_OK);
    want = read_raw(dir, name, "ppm", w, h, 4);
    snprintf(what, sizeof what, "%s -ppm", name);
    expect_same(out, want, what);
    cutout_image_free(want);
    cutout_image_free(out);
    cutout_image_free(cut);
    cutout_image_free(pp);

    cutout_image_free(om);
    cutout_image_free(img);
    count++;
  }
  fclose(lst);
  assert_int_equal(count, 4);
}

/* ------------------------------------------------------------- arguments */

static void test_bad_arguments(void **state)
{
  (void)state;
  char err[CUTOUT_ERRMSG_MAX];
  cutout_image *good = gen_noise(8, 6, 3, 1);
  cutout_image *mask = gen_noise(8, 6, 1, 2);
  cutout_image *small = gen_noise(8, 5, 1, 3);
  cutout_image *rgbmask = gen_noise(8, 6, 3, 4);
  cutout_image *const sentinel = (cutout_image *)&err;
  cutout_image *o = sentinel;
  const uint8_t col[4] = {1, 2, 3, 4};

#define EXPECT_EINVAL(call)                                                \
  do {                                                                     \
    err[0] = 0;                                                            \
    o = sentinel;                                                          \
    assert_int_equal((call), CUTOUT_EINVAL);                               \
    assert_ptr_equal(o, sentinel);                                         \
    assert_true(err[0] != 0);                                              \
  } while (0)

  EXPECT_EINVAL(cutout__resize_lanczos(NULL, 4, 4, 1, &o, err));
  EXPECT_EINVAL(cutout__resize_lanczos(good, 0, 4, 1, &o, err));
  EXPECT_EINVAL(cutout__resize_lanczos(good, 4, 0, 1, &o, err));
  EXPECT_EINVAL(cutout__resize_lanczos(good, 4, 4, 1, NULL, err));
  EXPECT_EINVAL(cutout__to_rgb(NULL, &o, err));
  EXPECT_EINVAL(cutout__to_rgb(good, NULL, err));
  EXPECT_EINVAL(cutout__post_process_mask(NULL, 1, &o, err));
  EXPECT_EINVAL(cutout__post_process_mask(good, 1, &o, err)); /* RGB */
  EXPECT_EINVAL(cutout__post_process_mask(mask, 1, NULL, err));
  EXPECT_EINVAL(cutout__naive_cutout(NULL, mask, 1, &o, err));
  EXPECT_EINVAL(cutout__naive_cutout(good, NULL, 1, &o, err));
  EXPECT_EINVAL(cutout__naive_cutout(good, small, 1, &o, err));
  EXPECT_EINVAL(cutout__naive_cutout(good, rgbmask, 1, &o, err));
  EXPECT_EINVAL(cutout__naive_cutout(good, mask, 1, NULL, err));
  EXPECT_EINVAL(cutout__putalpha(NULL, mask, &o, err));
  EXPECT_EINVAL(cutout__putalpha(good, small, &o, err));
  EXPECT_EINVAL(cutout__putalpha(good, rgbmask, &o, err));
  EXPECT_EINVAL(cutout__putalpha(good, mask, NULL, err));
  EXPECT_EINVAL(cutout__apply_background(NULL, col, 1, &o, err));
  EXPECT_EINVAL(cutout__apply_background(good, NULL, 1, &o, err));
  EXPECT_EINVAL(cutout__apply_background(good, col, 1, NULL, err));

  /* Malformed images: each field broken in turn. */
  cutout_image bad = *good;
  bad.channels = 0;
  EXPECT_EINVAL(cutout__resize_lanczos(&bad, 4, 4, 1, &o, err));
  bad.channels = 5;
  EXPECT_EINVAL(cutout__to_rgb(&bad, &o, err));
  bad = *good;
  bad.width = 0;
  EXPECT_EINVAL(cutout__apply_background(&bad, col, 1, &o, err));
  bad = *good;
  bad.height = 0;
  EXPECT_EINVAL(cutout__resize_lanczos(&bad, 4, 4, 1, &o, err));
  bad = *good;
  bad.pixels = NULL;
  EXPECT_EINVAL(cutout__naive_cutout(&bad, mask, 1, &o, err));
  bad = *good;
  bad.stride = 8 * 3 - 1;
  EXPECT_EINVAL(cutout__resize_lanczos(&bad, 4, 4, 1, &o, err));
  cutout_image badmask = *mask;
  badmask.stride = 7;
  EXPECT_EINVAL(cutout__post_process_mask(&badmask, 1, &o, err));
  EXPECT_EINVAL(cutout__putalpha(good, &badmask, &o, err));

  /* A NULL err is allowed. */
  assert_int_equal(cutout__to_rgb(NULL, &o, NULL), CUTOUT_EINVAL);
#undef EXPECT_EINVAL

  cutout_image_free(good);
  cutout_image_free(mask);
  cutout_image_free(small);
  cutout_image_free(rgbmask);
}

/* Rows with padding (stride > width * channels) are read correctly. */
static void test_stride_padding(void **state)
{
  (void)state;
  cutout_image *tight = gen_noise(19, 11, 3, 9);
  cutout_image padded = *tight;
  padded.stride = 19 * 3 + 5;
  padded.pixels = malloc(padded.stride * 11);
  assert_non_null(padded.pixels);
  memset(padded.pixels, 0xAB, padded.stride * 11);
  for (uint32_t y = 0; y < 11; y++)
    memcpy(padded.pixels + y * padded.stride, tight->pixels + y * 19 * 3,
           19 * 3);
  cutout_image *a = NULL, *b = NULL;
  assert_int_equal(cutout__resize_lanczos(tight, 7, 30, 2, &a, NULL),
                   CUTOUT_OK);
  assert_int_equal(cutout__resize_lanczos(&padded, 7, 30, 2, &b, NULL),
                   CUTOUT_OK);
  assert_memory_equal(a->pixels, b->pixels, (size_t)a->stride * a->height);
  cutout_image_free(a);
  cutout_image_free(b);
  assert_int_equal(cutout__to_rgb(tight, &a, NULL), CUTOUT_OK);
  assert_int_equal(cutout__to_rgb(&padded, &b, NULL), CUTOUT_OK);
  assert_memory_equal(a->pixels, b->pixels, (size_t)a->stride * a->height);
  cutout_image_free(a);
  cutout_image_free(b);
  free(padded.pixels);
  cutout_image_free(tight);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_resize_matches_pillow),
      cmocka_unit_test(test_resize_threads_agree),
      cmocka_unit_test(test_to_rgb_matches_pillow),
      cmocka_unit_test(test_cutout_and_putalpha_match_pillow),
      cmocka_unit_test(test_background_matches_pillow),
      cmocka_unit_test(test_post_process_matches_scipy),
      cmocka_unit_test(test_matches_rembg_outputs),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_stride_padding),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
