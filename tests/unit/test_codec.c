/*
 * test_codec.c: the image codecs against Pillow 9.4.
 *
 * Decoding: tests/data/codec/gen_cases.py (run once, with /usr/bin/python3
 * and Pillow) writes every input and the pixels Pillow gives for it after
 * Image.open + ImageOps.exif_transpose, in the 8-bit mode we decode to;
 * each case is its own test and must match byte for byte.  Bad inputs are
 * built here, one test each.  Encoding: round trips, Pillow reading our
 * PNGs back, our PNG size against Pillow's on real cutouts, JPEG's refusal
 * of transparency, WebP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "codec_int.h"
#include "testutil.h"

static char g_cases[600]; /* generated inputs and references */
static const cutout_decode_limits g_lim = {100000000ull};

/* ------------------------------------------------------------ helpers */

static uint8_t *read_case(const char *name, const char *ext, size_t *len)
{
  char path[800];
  snprintf(path, sizeof path, "%s/%s.%s", g_cases, name, ext);
  uint8_t *d = tu_read_file(path, len);
  if (!d) fail_msg("cannot read %s", path);
  return d;
}

static int run_py(const char *script, const char *const *args)
{
  return tu_python(script, args);
}

static cutout_image *make_image(uint32_t w, uint32_t h, uint32_t c,
                                unsigned seed)
{
  cutout_image *img = NULL;
  assert_int_equal(cutout_image_new(w, h, c, &img), CUTOUT_OK);
  /* Smooth ramps, flat patches and some noise: every filter gets used. */
  for (uint32_t y = 0; y < h; y++)
    for (uint32_t x = 0; x < w; x++)
      for (uint32_t k = 0; k < c; k++) {
        uint8_t *p = img->pixels + (size_t)y * img->stride + (size_t)x * c + k;
        seed = seed * 1103515245u + 12345u;
        unsigned v = (x * (k + 1) * 3 + y * 2) & 255;
        if ((x / 8 + y / 8) % 3 == 0) v = 40 * k;
        if (x % 5 == 0) v ^= (seed >> 16) & 31;
        *p = (uint8_t)v;
      }
  return img;
}

static int same_image(const cutout_image *a, const cutout_image *b)
{
  return a->width == b->width && a->height == b->height &&
         a->channels == b->channels &&
         memcmp(a->pixels, b->pixels, a->stride * a->height) == 0;
}

/* ------------------------------------------------------ decode vs Pillow */

static void check_case(const char *name)
{
  /* manifest line: NAME W H C */
  size_t mlen = 0;
  char path[800];
  snprintf(path, sizeof path, "%s/manifest.txt", g_cases);
  char *m = (char *)tu_read_file(path, &mlen);
  assert_non_null(m);
  m = realloc(m, mlen + 1);
  m[mlen] = 0;
  unsigned w = 0, h = 0, c = 0;
  int found = 0;
  for (char *line = strtok(m, "\n"); line; line = strtok(NULL, "\n")) {
    char nm[128];
    if (sscanf(line, "%127s %u %u %u", nm, &w, &h, &c) == 4 &&
        !strcmp(nm, name)) {
      found = 1;
      break;
    }
  }
  free(m);
  if (!found) fail_msg("case %s is not in the manifest", name);

  size_t len = 0, rlen = 0;
  uint8_t *in = read_case(name, "in", &len);
  uint8_t *ref = read_case(name, "ref", &rlen);
  cutout_image *img = NULL;
  char err[CUTOUT_ERRMSG_MAX] = "";
  cutout_status st = cutout__decode(in, len, &g_lim, &img, err);
  if (st != CUTOUT_OK) fail_msg("%s: decode failed (%d): %s", name, st, err);
  if (img->width != w || img->height != h || img->channels != c)
    fail_msg("%s: got %ux%u/%u, Pillow %ux%u/%u", name, img->width,
             img->height, img->channels, w, h, c);
  assert_int_equal(rlen, img->stride * img->height);
  if (memcmp(img->pixels, ref, rlen) != 0) {
    size_t i = 0;
    while (img->pixels[i] == ref[i]) i++;
    fail_msg("%s: pixels differ from Pillow at byte %zu (pixel %zu,%zu "
             "channel %zu): %u vs %u",
             name, i, (i / c) % w, i / c / w, i % c, img->pixels[i], ref[i]);
  }
  cutout_image_free(img);
  free(in);
  free(ref);
}

static void t_case(void **state) { check_case((const char *)*state); }

static const char *const k_cases[] = {
    "jpeg_rgb", "jpeg_rgb444", "jpeg_grey", "jpeg_prog", "jpeg_cmyk",
    "jpeg_orient1", "jpeg_orient2", "jpeg_orient3", "jpeg_orient4",
    "jpeg_orient5", "jpeg_orient6", "jpeg_orient7", "jpeg_orient8",
    "png_g1", "png_g2", "png_g4", "png_g8", "png_g16", "png_g8_trns",
    "png_g8_trns_hikey", "png_g16_trns", "png_g1_trns1", "png_g2_trns0",
    "png_rgb8", "png_rgb8_trns", "png_rgb16", "png_rgb16_trns", "png_pal8",
    "png_pal8_trns", "png_pal8_trns_simple", "png_pal4", "png_pal1",
    "png_pal_pillow", "png_la8", "png_la16", "png_rgba8", "png_rgba16",
    "png_adam7_rgb", "png_adam7_g16_trns", "png_adam7_g2", "png_exif6",
    "png_xmp8", "png_rawprofile3", "png_badexif", "png_exif_after_idat",
    "webp_lossless_rgba", "webp_lossless_rgb", "webp_lossy_rgb",
    "webp_lossy_rgba", "webp_exif6", "webp_anim", "bmp_rgb24", "bmp_l8",
    "bmp_p8", "bmp_1", "bmp_rgba32_birgb", "bmp_555", "bmp_565",
    "bmp_555_bitfields", "bmp_bgra_v4", "bmp_rgba_v5", "bmp_xbgr",
    "bmp_topdown", "bmp_pal_short", "bmp_p4", "bmp_os2", "bmp_offset_quirk",
    "bmp_rle8", "bmp_rle4",
};
#define NCASES (sizeof k_cases / sizeof k_cases[0])

static void t_manifest_complete(void **state)
{
  (void)state;
  size_t mlen = 0;
  char path[800];
  snprintf(path, sizeof path, "%s/manifest.txt", g_cases);
  char *m = (char *)tu_read_file(path, &mlen);
  assert_non_null(m);
  size_t lines = 0;
  for (size_t i = 0; i < mlen; i++) lines += m[i] == '\n';
  free(m);
  assert_int_equal(lines, NCASES);
}

/* ------------------------------------------------------------ bad inputs */

static cutout_status decode_bytes(const uint8_t *d, size_t n,
                                  const cutout_decode_limits *lim, char *err)
{
  cutout_image *img = (cutout_image *)(uintptr_t)0x1; /* must stay */
  cutout_status st = cutout__decode(d, n, lim, &img, err);
  if (st == CUTOUT_OK) {
    cutout_image_free(img);
  } else {
    assert_ptr_equal(img, (cutout_image *)(uintptr_t)0x1);
    assert_true(err[0] != 0);
  }
  return st;
}

static void expect_fail(const uint8_t *d, size_t n, cutout_status want,
                        const char *needle)
{
  char err[CUTOUT_ERRMSG_MAX] = "";
  cutout_status st = decode_bytes(d, n, &g_lim, err);
  if (st != want) fail_msg("status %d, wanted %d (%s)", st, want, err);
  if (needle && !strstr(err, needle))
    fail_msg("message '%s' does not say '%s'", err, needle);
}

static void t_empty(void **state)
{
  (void)state;
  uint8_t b = 0;
  expect_fail(&b, 0, CUTOUT_EFORMAT, "empty file");
}

static void t_not_an_image(void **state)
{
  (void)state;
  static const char text[] = "hello, this is a text file, not a picture\n";
  expect_fail((const uint8_t *)text, sizeof text - 1, CUTOUT_EFORMAT,
              "not an image (unrecognised format)");
}

static void t_truncated_jpeg(void **state)
{
  (void)state;
  size_t n;
  uint8_t *d = read_case("jpeg_rgb", "in", &n);
  expect_fail(d, n / 2, CUTOUT_EFORMAT, "truncated");
  /* Pillow refuses a JPEG that only lacks its EOI marker, too. */
  expect_fail(d, n - 2, CUTOUT_EFORMAT, "truncated");
  expect_fail(d, 100, CUTOUT_EFORMAT, NULL);
  free(d);
}

static void t_truncated_progressive_jpeg(void **state)
{
  (void)state;
  size_t n;
  uint8_t *d = read_case("jpeg_prog", "in", &n);
  expect_fail(d, n - 10, CUTOUT_EFORMAT, "truncated");
  free(d);
}

static void t_truncated_png(void **state)
{
  (void)state;
  size_t n;
  uint8_t *d = read_case("png_rgb8", "in", &n);
  expect_fail(d, n * 6 / 10, CUTOUT_EFORMAT, NULL);
  expect_fail(d, 20, CUTOUT_EFORMAT, NULL);
  free(d);
}

static void t_truncated_webp(void **state)
{
  (void)state;
  size_t n;
  uint8_t *d = read_case("webp_lossy_rgb", "in", &n);
  expect_fail(d, n * 2 / 3, CUTOUT_EFORMAT, "truncated");
  expect_fail(d, 16, CUTOUT_EFORMAT, NULL);
  free(d);
}

static void t_png_ihdr_crc(void **state)
{
  (void)state;
  size_t n;
  uint8_t *d = read_case("png_rgb8", "in", &n);
  d[29] ^= 0x55; /* a byte of the IHDR CRC */
  expect_fail(d, n, CUTOUT_EFORMAT, NULL);
  free(d);
}

static uint8_t *find_marker(uint8_t *d, size_t n, uint8_t m)
{
  for (size_t i = 2; i + 1 < n; i++)
    if (d[i] == 0xFF && d[i + 1] == m) return d + i;
  return NULL;
}

static void t_jpeg_sof_garbage(void **state)
{
  (void)state;
  size_t n;
  uint8_t *d = read_case("jpeg_rgb", "in", &n);
  uint8_t *sof = find_marker(d, n, 0xC0);
  assert_non_null(sof);
  sof[4] = 3; /* precision 3 bits */
  expect_fail(d, n, CUTOUT_EFORMAT, "corrupt JPEG");
  sof[4] = 8;
  sof[9] = 2; /* two components */
  expect_fail(d, n, CUTOUT_EFORMAT, NULL);
  sof[9] = 3;
  sof[5] = sof[6] = 0; /* height 0 */
  expect_fail(d, n, CUTOUT_EFORMAT, NULL);
  free(d);
}

static void put_be32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* A PNG signature + IHDR (valid CRC) + a tiny IDAT + IEND. */
static size_t png_header(uint8_t *b, uint32_t w, uint32_t h)
{
  memcpy(b, "\x89PNG\r\n\x1a\n", 8);
  put_be32(b + 8, 13);
  memcpy(b + 12, "IHDR", 4);
  put_be32(b + 16, w);
  put_be32(b + 20, h);
  b[24] = 8;
  b[25] = 6;
  b[26] = b[27] = b[28] = 0;
  put_be32(b + 29, (uint32_t)crc32(0, b + 12, 17));
  static const uint8_t tail[] = {0, 0, 0, 0, 'I', 'E', 'N', 'D',
                                 0xAE, 0x42, 0x60, 0x82};
  memcpy(b + 33, tail, sizeof tail);
  return 33 + sizeof tail;
}

static void t_png_zero_size(void **state)
{
  (void)state;
  uint8_t b[64];
  size_t n = png_header(b, 0, 0);
  expect_fail(b, n, CUTOUT_EFORMAT, "empty image");
  n = png_header(b, 10, 0);
  expect_fail(b, n, CUTOUT_EFORMAT, "empty image");
}

static void t_png_over_limit_fast(void **state)
{
  (void)state;
  uint8_t b[64];
  size_t n = png_header(b, 100000, 100000);
  double t0 = cutout__now();
  expect_fail(b, n, CUTOUT_ELIMIT, "100000x100000");
  double dt = cutout__now() - t0;
  /* Refused from the header: nothing of 40 GB was allocated or touched. */
  assert_true(dt < 0.05);
}

static void t_limit_each_format(void **state)
{
  (void)state;
  static const char *const names[] = {"jpeg_rgb", "png_rgb8", "webp_lossy_rgb",
                                      "bmp_rgb24"};
  const cutout_decode_limits tiny = {100};
  for (size_t i = 0; i < 4; i++) {
    size_t n;
    uint8_t *d = read_case(names[i], "in", &n);
    char err[CUTOUT_ERRMSG_MAX] = "";
    cutout_status st = decode_bytes(d, n, &tiny, err);
    if (st != CUTOUT_ELIMIT) fail_msg("%s: status %d (%s)", names[i], st, err);
    assert_non_null(strstr(err, "limit of 100 pixels"));
    free(d);
  }
}

/* A 40-byte-header BMP with the given fields and nothing else checked. */
static size_t bmp_header(uint8_t *b, int32_t w, int32_t h, uint16_t bits,
                         uint32_t offset, uint32_t compression,
                         uint32_t colors)
{
  memset(b, 0, 54);
  b[0] = 'B';
  b[1] = 'M';
  uint32_t v[] = {offset, 40};
  memcpy(b + 10, &v[0], 4);
  memcpy(b + 14, &v[1], 4);
  memcpy(b + 18, &w, 4);
  memcpy(b + 22, &h, 4);
  b[26] = 1;
  memcpy(b + 28, &bits, 2);
  memcpy(b + 30, &compression, 4);
  memcpy(b + 46, &colors, 4);
  return 54;
}

static void t_bmp_absurd(void **state)
{
  (void)state;
  uint8_t b[4096];
  memset(b, 0x5A, sizeof b);
  /* 2^31-1 square: refused by the limit before any allocation */
  size_t n = bmp_header(b, 0x7fffffff, 0x7fffffff, 24, 54, 0, 0);
  expect_fail(b, sizeof b, CUTOUT_ELIMIT, NULL);
  /* pixel data offset far past the end */
  n = bmp_header(b, 4, 4, 24, 0xFFFFFFF0u, 0, 0);
  expect_fail(b, n + 64, CUTOUT_EFORMAT, NULL);
  /* pixel data cut short */
  n = bmp_header(b, 64, 64, 24, 54, 0, 0);
  expect_fail(b, n + 100, CUTOUT_EFORMAT, "truncated");
  /* zero size */
  n = bmp_header(b, 0, 5, 24, 54, 0, 0);
  expect_fail(b, n + 64, CUTOUT_EFORMAT, "empty image");
  /* unsupported depth, header size, compression, palette size */
  n = bmp_header(b, 4, 4, 7, 54, 0, 0);
  expect_fail(b, n + 64, CUTOUT_EFORMAT, "depth");
  n = bmp_header(b, 4, 4, 24, 54, 0, 0);
  b[14] = 41;
  expect_fail(b, n + 64, CUTOUT_EFORMAT, "header");
  n = bmp_header(b, 4, 4, 24, 54, 4, 0);
  expect_fail(b, n + 64, CUTOUT_EFORMAT, "compression");
  n = bmp_header(b, 4, 4, 8, 54, 0, 100000);
  expect_fail(b, n + 64, CUTOUT_EFORMAT, "palette");
  /* a palette running past the end of the file */
  n = bmp_header(b, 4, 4, 8, 54, 0, 256);
  expect_fail(b, n + 64, CUTOUT_EFORMAT, "palette");
  /* RLE8 that stops early */
  n = bmp_header(b, 8, 8, 8, 54 + 8, 1, 2);
  memset(b + 54, 0, 8);
  b[62] = 4;
  b[63] = 7;
  b[64] = 0;
  b[65] = 1; /* end of bitmap after 4 pixels */
  expect_fail(b, 66, CUTOUT_EFORMAT, "RLE");
  /* just the magic */
  expect_fail((const uint8_t *)"BM", 2, CUTOUT_EFORMAT, NULL);
}

/* Cut and damage every case: any status is fine, a crash or leak is not. */
static void t_robust_damaged_inputs(void **state)
{
  (void)state;
  unsigned seed = 99;
  for (size_t i = 0; i < NCASES; i++) {
    size_t n;
    uint8_t *d = read_case(k_cases[i], "in", &n);
    uint8_t *copy = malloc(n);
    for (int k = 0; k < 12; k++) {
      memcpy(copy, d, n);
      size_t len = n;
      if (k < 6) {
        len = n * (size_t)(k + 1) / 7;
      } else {
        for (int f = 0; f < 4; f++) {
          seed = seed * 1103515245u + 12345u;
          copy[(seed >> 8) % n] ^= (uint8_t)(1u << (seed % 8));
        }
      }
      char err[CUTOUT_ERRMSG_MAX] = "";
      cutout_status st = decode_bytes(copy, len, &g_lim, err);
      assert_true(st == CUTOUT_OK || st == CUTOUT_EFORMAT ||
                  st == CUTOUT_ELIMIT);
    }
    free(copy);
    free(d);
  }
}

/* ------------------------------------------------------------ orientation */

static void t_orient_all(void **state)
{
  (void)state;
  /* 3x2 image, pixel value = 10*y + x:
   *   0 1 2
   *  10 11 12                                                           */
  static const uint8_t want[9][6] = {
      {0},
      {0, 1, 2, 10, 11, 12},  /* 1 */
      {2, 1, 0, 12, 11, 10},  /* 2 mirror */
      {12, 11, 10, 2, 1, 0},  /* 3 rotate 180 */
      {10, 11, 12, 0, 1, 2},  /* 4 flip */
      {0, 10, 1, 11, 2, 12},  /* 5 transpose (2 wide, 3 high) */
      {10, 0, 11, 1, 12, 2},  /* 6 rotate 90 clockwise */
      {12, 2, 11, 1, 10, 0},  /* 7 transverse */
      {2, 12, 1, 11, 0, 10},  /* 8 rotate 90 counter-clockwise */
  };
  cutout_image *img = NULL;
  assert_int_equal(cutout_image_new(3, 2, 1, &img), CUTOUT_OK);
  for (int y = 0; y < 2; y++)
    for (int x = 0; x < 3; x++) img->pixels[y * 3 + x] = (uint8_t)(10 * y + x);
  for (int o = 1; o <= 8; o++) {
    cutout_image *r = NULL;
    char err[CUTOUT_ERRMSG_MAX] = "";
    assert_int_equal(cutout__orient(img, o, &r, err), CUTOUT_OK);
    assert_int_equal(r->width, o >= 5 ? 2 : 3);
    assert_int_equal(r->height, o >= 5 ? 3 : 2);
    assert_memory_equal(r->pixels, want[o], 6);
    cutout_image_free(r);
  }
  cutout_image *r = NULL;
  char err[CUTOUT_ERRMSG_MAX] = "";
  assert_int_equal(cutout__orient(img, 9, &r, err), CUTOUT_EINVAL);
  assert_null(r);
  cutout_image_free(img);
}

static void t_orient_big_tiles(void **state)
{
  (void)state;
  /* Larger than a tile in both directions, every channel count: the
   * tiled transpose against the plain definition. */
  for (uint32_t c = 1; c <= 4; c++) {
    cutout_image *img = make_image(150, 70, c, c);
    for (int o = 5; o <= 8; o++) {
      cutout_image *r = NULL;
      char err[CUTOUT_ERRMSG_MAX] = "";
      assert_int_equal(cutout__orient(img, o, &r, err), CUTOUT_OK);
      for (uint32_t y = 0; y < r->height; y++)
        for (uint32_t x = 0; x < r->width; x++) {
          uint32_t ix = (o == 7 || o == 8) ? img->width - 1 - y : y;
          uint32_t iy = (o == 6 || o == 7) ? img->height - 1 - x : x;
          assert_memory_equal(r->pixels + (size_t)y * r->stride + x * c,
                              img->pixels + (size_t)iy * img->stride + ix * c,
                              c);
        }
      cutout_image_free(r);
    }
    cutout_image_free(img);
  }
}

static void t_exif_parsers(void **state)
{
  (void)state;
  /* Big-endian TIFF, one IFD0 entry: Orientation SHORT 6. */
  static const uint8_t tiff[] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1,
                                 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0,
                                 0, 0, 0, 0, 0, 0};
  assert_int_equal(cutout__exif_orientation(tiff, sizeof tiff), 6);
  uint8_t app1[6 + sizeof tiff];
  memcpy(app1, "Exif\0\0", 6);
  memcpy(app1 + 6, tiff, sizeof tiff);
  assert_int_equal(cutout__exif_orientation(app1, sizeof app1), 6);
  /* LONG works too (Pillow looks the value up in a dict) */
  uint8_t t2[sizeof tiff];
  memcpy(t2, tiff, sizeof tiff);
  t2[13] = 4;
  t2[18] = 0;
  t2[19] = 0;
  t2[20] = 0;
  t2[21] = 3;
  assert_int_equal(cutout__exif_orientation(t2, sizeof t2), 3);
  /* garbage never fails */
  assert_int_equal(cutout__exif_orientation((const uint8_t *)"Exif\0\0MM", 8), 0);
  assert_int_equal(cutout__exif_orientation((const uint8_t *)"xyz", 3), 0);
  assert_int_equal(cutout__exif_orientation(NULL, 0), 0);
  static const char xmp[] = "<a tiff:Orientation=\"7\"/>";
  assert_int_equal(cutout__xmp_orientation(xmp, sizeof xmp - 1), 7);
  static const char xmp2[] = "<tiff:Orientation>3</tiff:Orientation>";
  assert_int_equal(cutout__xmp_orientation(xmp2, sizeof xmp2 - 1), 3);
  assert_int_equal(cutout__xmp_orientation("tiff:Orientation", 16), 0);
  static const char raw[] = "\nexif\n      28\n4d4d002a0000000800010112000300000001000600000000\n0000";
  assert_int_equal(cutout__raw_profile_orientation(raw, sizeof raw - 1), 6);
  assert_int_equal(cutout__raw_profile_orientation("\nexif\n 2\nzz", 11), 0);
}

/* ------------------------------------------------------------ formats */

static void t_formats(void **state)
{
  (void)state;
  assert_int_equal(cutout_detect_format("\xFF\xD8\xFF\xE0", 4), CUTOUT_FORMAT_JPEG);
  assert_int_equal(cutout_detect_format("\x89PNG\r\n\x1a\n", 8), CUTOUT_FORMAT_PNG);
  assert_int_equal(cutout_detect_format("RIFF\0\0\0\0WEBP", 12), CUTOUT_FORMAT_WEBP);
  assert_int_equal(cutout_detect_format("BM", 2), CUTOUT_FORMAT_BMP);
  assert_int_equal(cutout_detect_format("RIFF\0\0\0\0WAVE", 12), CUTOUT_FORMAT_UNKNOWN);
  assert_int_equal(cutout_detect_format("\x89PNG", 4), CUTOUT_FORMAT_UNKNOWN);
  assert_int_equal(cutout_detect_format(NULL, 0), CUTOUT_FORMAT_UNKNOWN);
  assert_int_equal(cutout_format_from_name("a/b.PNG"), CUTOUT_FORMAT_PNG);
  assert_int_equal(cutout_format_from_name("x.jpg"), CUTOUT_FORMAT_JPEG);
  assert_int_equal(cutout_format_from_name("x.JPEG"), CUTOUT_FORMAT_JPEG);
  assert_int_equal(cutout_format_from_name("x.webp"), CUTOUT_FORMAT_WEBP);
  assert_int_equal(cutout_format_from_name("x.bmp"), CUTOUT_FORMAT_UNKNOWN);
  assert_int_equal(cutout_format_from_name("dir.png/file"), CUTOUT_FORMAT_UNKNOWN);
  assert_int_equal(cutout_format_from_name("noext"), CUTOUT_FORMAT_UNKNOWN);
  assert_int_equal(cutout_format_from_name(NULL), CUTOUT_FORMAT_UNKNOWN);
  assert_string_equal(cutout_format_name(CUTOUT_FORMAT_PNG), "png");
  assert_string_equal(cutout_format_name(CUTOUT_FORMAT_JPEG), "jpeg");
  assert_string_equal(cutout_format_name(CUTOUT_FORMAT_WEBP), "webp");
  assert_string_equal(cutout_format_name(CUTOUT_FORMAT_BMP), "bmp");
  assert_string_equal(cutout_format_name(CUTOUT_FORMAT_UNKNOWN), "unknown");
  assert_int_equal(cutout_format_parse("png"), CUTOUT_FORMAT_PNG);
  assert_int_equal(cutout_format_parse("jpg"), CUTOUT_FORMAT_JPEG);
  assert_int_equal(cutout_format_parse("jpeg"), CUTOUT_FORMAT_JPEG);
  assert_int_equal(cutout_format_parse("webp"), CUTOUT_FORMAT_WEBP);
  assert_int_equal(cutout_format_parse("gif"), CUTOUT_FORMAT_UNKNOWN);
  cutout_encode_params p = cutout_encode_default_params();
  assert_int_equal(p.format, CUTOUT_FORMAT_PNG);
  assert_int_equal(p.png_level, 6);
  assert_int_equal(p.quality, 90);
  assert_int_equal(p.webp_lossless, 0);
}

/* ------------------------------------------------------------ encoding */

static uint8_t *encode(const cutout_image *img, cutout_encode_params p,
                       int threads, size_t *n)
{
  uint8_t *out = NULL;
  char err[CUTOUT_ERRMSG_MAX] = "";
  cutout_status st = cutout__encode(img, &p, threads, &out, n, err);
  if (st != CUTOUT_OK) fail_msg("encode failed (%d): %s", st, err);
  return out;
}

static cutout_image *decode_ok(const uint8_t *d, size_t n)
{
  cutout_image *img = NULL;
  char err[CUTOUT_ERRMSG_MAX] = "";
  cutout_status st = cutout__decode(d, n, &g_lim, &img, err);
  if (st != CUTOUT_OK) fail_msg("decode failed (%d): %s", st, err);
  return img;
}

static void t_png_roundtrip(void **state)
{
  (void)state;
  static const int levels[] = {0, 1, 6, 9};
  for (uint32_t c = 1; c <= 4; c++)
    for (size_t li = 0; li < 4; li++) {
      cutout_image *img = make_image(67, 45, c, 7 * c);
      cutout_encode_params p = cutout_encode_default_params();
      p.png_level = levels[li];
      size_t n = 0;
      uint8_t *png = encode(img, p, 2, &n);
      cutout_image *back = decode_ok(png, n);
      assert_true(same_image(img, back));
      cutout_image_free(back);
      cutout_image_free(img);
      free(png);
    }
}

/* Pillow reads what we write: same mode, same pixels. */
static void t_png_pillow_reads(void **state)
{
  (void)state;
  static const char *const modes[] = {"", "L", "LA", "RGB", "RGBA"};
  const char *dir = tu_tmpdir();
  for (uint32_t c = 1; c <= 4; c++) {
    /* Tall enough for several segments and the libdeflate path. */
    cutout_image *img = make_image(300, 2000, c, 11 * c);
    size_t n = 0;
    uint8_t *png = encode(img, cutout_encode_default_params(), 3, &n);
    char pp[700], rp[700];
    snprintf(pp, sizeof pp, "%s/enc%u.png", dir, c);
    snprintf(rp, sizeof rp, "%s/enc%u.raw", dir, c);
    assert_int_equal(tu_write_file(pp, png, n), 0);
    assert_int_equal(tu_write_file(rp, img->pixels, img->stride * img->height), 0);
    const char *args[] = {pp, rp, modes[c], NULL};
    int rc = run_py("import sys\n"
                    "from PIL import Image\n"
                    "im = Image.open(sys.argv[1]); im.load()\n"
                    "raw = open(sys.argv[2], 'rb').read()\n"
                    "ok = im.mode == sys.argv[3] and im.tobytes() == raw\n"
                    "chunks = []\n"
                    "d = open(sys.argv[1], 'rb').read(); i = 8\n"
                    "while i < len(d):\n"
                    "    n = int.from_bytes(d[i:i+4], 'big'); chunks.append(d[i+4:i+8]); i += 12 + n\n"
                    "ok = ok and set(chunks) == {b'IHDR', b'IDAT', b'IEND'}\n"
                    "sys.exit(0 if ok else 1)\n",
                    args);
    assert_int_equal(rc, 0);
    cutout_image_free(img);
    free(png);
  }
}

/* Our PNG is no larger than Pillow's save() of the same pixels. */
static void check_size_vs_pillow(const cutout_image *img, const char *tag)
{
  const char *dir = tu_tmpdir();
  static const char *const modes[] = {"", "L", "LA", "RGB", "RGBA"};
  char rp[700], sp[700], wp[700], dims[64];
  snprintf(rp, sizeof rp, "%s/size-%s.raw", dir, tag);
  snprintf(sp, sizeof sp, "%s/size-%s.txt", dir, tag);
  assert_int_equal(tu_write_file(rp, img->pixels, img->stride * img->height), 0);
  snprintf(dims, sizeof dims, "%u %u", img->width, img->height);
  const char *args[] = {rp, modes[img->channels], dims, sp, NULL};
  int rc = run_py("import sys, io\n"
                  "from PIL import Image\n"
                  "w, h = map(int, sys.argv[3].split())\n"
                  "im = Image.frombytes(sys.argv[2], (w, h), open(sys.argv[1], 'rb').read())\n"
                  "b = io.BytesIO(); im.save(b, 'PNG')\n"
                  "open(sys.argv[4], 'w').write(str(len(b.getvalue())))\n",
                  args);
  assert_int_equal(rc, 0);
  size_t tl = 0;
  char *txt = (char *)tu_read_file(sp, &tl);
  assert_non_null(txt);
  txt = realloc(txt, tl + 1);
  txt[tl] = 0;
  size_t pillow = strtoull(txt, NULL, 10);
  free(txt);
  size_t n1 = 0, n2 = 0;
  uint8_t *a = encode(img, cutout_encode_default_params(), 1, &n1);
  uint8_t *b = encode(img, cutout_encode_default_params(), 4, &n2);
  /* same bytes whatever the thread count */
  assert_int_equal(n1, n2);
  assert_memory_equal(a, b, n1);
  cutout_image *back = decode_ok(a, n1);
  assert_true(same_image(img, back));
  cutout_image_free(back);
  snprintf(wp, sizeof wp, "%s/size-%s.png", dir, tag);
  tu_write_file(wp, a, n1);
  print_message("%-28s ours %9zu  Pillow %9zu  (%+.2f%%)\n", tag, n1, pillow,
                100.0 * ((double)n1 - (double)pillow) / (double)pillow);
  if (n1 > pillow) fail_msg("%s: %zu bytes, Pillow %zu", tag, n1, pillow);
  free(a);
  free(b);
}

static void t_png_size_real_cutouts(void **state)
{
  (void)state;
  const char *conf = getenv("CUTOUT_CONFORMANCE");
  static const char *const files[] = {"anime-girl-1.isnet.png",
                                      "car-2.isnet.png", "animal-3.isnet.png",
                                      "anime-girl-1.isnet.om.png"};
  int done = 0;
  for (size_t i = 0; conf && i < 4; i++) {
    char path[800];
    snprintf(path, sizeof path, "%s/rembg-2.0.77/%s", conf, files[i]);
    size_t n = 0;
    uint8_t *d = tu_read_file(path, &n);
    if (!d) continue;
    cutout_image *img = decode_ok(d, n);
    check_size_vs_pillow(img, files[i]);
    cutout_image_free(img);
    free(d);
    done++;
  }
  if (!done) print_message("no conformance cutouts found; skipped\n");
}

/* A cutout large enough for the probing path: a soft-edged subject with
 * texture in the middle, transparent (0,0,0,0) around it. */
static void t_png_size_big_cutout(void **state)
{
  (void)state;
  const uint32_t w = 1800, h = 1300;
  cutout_image *img = NULL;
  assert_int_equal(cutout_image_new(w, h, 4, &img), CUTOUT_OK);
  unsigned seed = 5;
  for (uint32_t y = 0; y < h; y++)
    for (uint32_t x = 0; x < w; x++) {
      double dx = ((double)x - w / 2.0) / (w * 0.3),
             dy = ((double)y - h / 2.0) / (h * 0.4);
      double r2 = dx * dx + dy * dy;
      int a = r2 < 0.9 ? 255 : r2 < 1.0 ? (int)((1.0 - r2) * 2550) : 0;
      uint8_t *p = img->pixels + (size_t)y * img->stride + (size_t)x * 4;
      if (!a) continue;
      seed = seed * 1103515245u + 12345u;
      int noise = (int)((seed >> 16) % 9) - 4;
      int v[3] = {(int)(x / 8 + y / 16) + noise, 120 + (int)(y % 97) + noise,
                  200 - (int)(x % 151) + noise};
      for (int k = 0; k < 3; k++) {
        int c = v[k] < 0 ? 0 : v[k] > 255 ? 255 : v[k];
        p[k] = (uint8_t)((c * a + 127) / 255); /* premultiplied, as rembg */
      }
      p[3] = (uint8_t)a;
    }
  check_size_vs_pillow(img, "synthetic-1800x1300");
  cutout_image_free(img);
}

/* A smooth one (an upscaled photo's gradients, no noise): the probes then
 * need zlib, and zlib a level up (zf2) alone is cheaper than every
 * compressor together; still no larger than Pillow, same bytes for any
 * thread count. */
static void t_png_size_smooth_cutout(void **state)
{
  (void)state;
  const uint32_t w = 2400, h = 1600;
  cutout_image *img = NULL;
  assert_int_equal(cutout_image_new(w, h, 4, &img), CUTOUT_OK);
  for (uint32_t y = 0; y < h; y++)
    for (uint32_t x = 0; x < w; x++) {
      double dx = ((double)x - w / 2.0) / (w * 0.35),
             dy = ((double)y - h / 2.0) / (h * 0.45);
      double r2 = dx * dx + dy * dy;
      int a = r2 < 0.9 ? 255 : r2 < 1.0 ? (int)((1.0 - r2) * 2550) : 0;
      uint8_t *p = img->pixels + (size_t)y * img->stride + (size_t)x * 4;
      if (!a) continue;
      double v[3] = {128 + 100 * sin(x / 97.0) * cos(y / 131.0),
                     90 + 0.05 * x + 0.03 * y, 200 - 60 * cos((x + y) / 203.0)};
      for (int k = 0; k < 3; k++) {
        int c = (int)v[k] < 0 ? 0 : (int)v[k] > 255 ? 255 : (int)v[k];
        p[k] = (uint8_t)((c * a + 127) / 255);
      }
      p[3] = (uint8_t)a;
    }
  check_size_vs_pillow(img, "synthetic-smooth-2400x1600");
  cutout_image_free(img);
}

static void t_jpeg_refuses_alpha(void **state)
{
  (void)state;
  static const char msg[] =
      "JPEG cannot store transparency: give an opaque background colour "
      "(-bgc R G B 255) or choose PNG/WebP";
  for (uint32_t c = 2; c <= 4; c += 2) {
    cutout_image *img = make_image(20, 10, c, 1);
    for (size_t i = c - 1; i < img->stride * img->height; i += c)
      img->pixels[i] = 255;
    img->pixels[img->stride * 5 + c - 1] = 254;
    cutout_encode_params p = cutout_encode_default_params();
    p.format = CUTOUT_FORMAT_JPEG;
    uint8_t *out = (uint8_t *)(uintptr_t)0x2;
    size_t n = 77;
    char err[CUTOUT_ERRMSG_MAX] = "";
    assert_int_equal(cutout__encode(img, &p, 1, &out, &n, err), CUTOUT_EINVAL);
    assert_string_equal(err, msg);
    assert_ptr_equal(out, (uint8_t *)(uintptr_t)0x2);
    assert_int_equal(n, 77);
    /* fully opaque: accepted, alpha dropped */
    img->pixels[img->stride * 5 + c - 1] = 255;
    uint8_t *jpg = encode(img, p, 1, &n);
    cutout_image *back = decode_ok(jpg, n);
    assert_int_equal(back->channels, c == 2 ? 1 : 3);
    assert_int_equal(back->width, 20);
    cutout_image_free(back);
    free(jpg);
    cutout_image_free(img);
  }
}

static void t_jpeg_encode(void **state)
{
  (void)state;
  for (uint32_t c = 1; c <= 3; c += 2) {
    cutout_image *img = make_image(64, 48, c, 3);
    cutout_encode_params p = cutout_encode_default_params();
    p.format = CUTOUT_FORMAT_JPEG;
    size_t n = 0;
    uint8_t *jpg = encode(img, p, 1, &n);
    assert_true(n > 100 && jpg[0] == 0xFF && jpg[1] == 0xD8);
    cutout_image *back = decode_ok(jpg, n);
    assert_int_equal(back->channels, c);
    assert_int_equal(back->width, 64);
    assert_int_equal(back->height, 48);
    /* lossy, but close */
    long diff = 0;
    for (size_t i = 0; i < img->stride * img->height; i++)
      diff += abs((int)img->pixels[i] - (int)back->pixels[i]);
    assert_true(diff / (long)(img->stride * img->height) < 12);
    cutout_image_free(back);
    free(jpg);
    p.quality = 0;
    uint8_t *out = NULL;
    char err[CUTOUT_ERRMSG_MAX] = "";
    assert_int_equal(cutout__encode(img, &p, 1, &out, &n, err), CUTOUT_EINVAL);
    cutout_image_free(img);
  }
}

static void t_webp_encode(void **state)
{
  (void)state;
  for (uint32_t c = 1; c <= 4; c++) {
    cutout_image *img = make_image(50, 30, c, 9);
    if (c == 2 || c == 4) /* alpha > 0 everywhere: lossless keeps RGB */
      for (size_t i = c - 1; i < img->stride * img->height; i += c)
        img->pixels[i] |= 1;
    cutout_encode_params p = cutout_encode_default_params();
    p.format = CUTOUT_FORMAT_WEBP;
    p.webp_lossless = 1;
    size_t n = 0;
    uint8_t *wp = encode(img, p, 1, &n);
    cutout_image *back = decode_ok(wp, n);
    uint32_t want = c == 1 ? 3 : c == 2 ? 4 : c;
    assert_int_equal(back->channels, want);
    for (size_t i = 0; i < (size_t)img->width * img->height; i++)
      for (uint32_t k = 0; k < want; k++) {
        uint32_t src = c <= 2 ? (k < 3 ? 0 : 1) : k;
        assert_int_equal(back->pixels[i * want + k], img->pixels[i * c + src]);
      }
    cutout_image_free(back);
    free(wp);
    p.webp_lossless = 0;
    wp = encode(img, p, 1, &n);
    back = decode_ok(wp, n);
    assert_int_equal(back->width, 50);
    cutout_image_free(back);
    free(wp);
    cutout_image_free(img);
  }
}

static void t_encode_bad_args(void **state)
{
  (void)state;
  cutout_image *img = make_image(8, 8, 3, 1);
  cutout_encode_params p = cutout_encode_default_params();
  uint8_t *out = NULL;
  size_t n = 0;
  char err[CUTOUT_ERRMSG_MAX] = "";
  assert_int_equal(cutout__encode(NULL, &p, 1, &out, &n, err), CUTOUT_EINVAL);
  p.png_level = 10;
  assert_int_equal(cutout__encode(img, &p, 1, &out, &n, err), CUTOUT_EINVAL);
  p = cutout_encode_default_params();
  p.format = CUTOUT_FORMAT_BMP;
  assert_int_equal(cutout__encode(img, &p, 1, &out, &n, err),
                   CUTOUT_EUNSUPPORTED);
  p.format = CUTOUT_FORMAT_UNKNOWN;
  assert_int_equal(cutout__encode(img, &p, 1, &out, &n, err), CUTOUT_EINVAL);
  p = cutout_encode_default_params();
  img->stride++;
  assert_int_equal(cutout__encode(img, &p, 1, &out, &n, err), CUTOUT_EINVAL);
  img->stride--;
  assert_null(out);
  cutout_image_free(img);
}

/* ------------------------------------------------------------ main */

static int setup(void **state)
{
  (void)state;
  snprintf(g_cases, sizeof g_cases, "%s/codec-cases", tu_tmpdir());
  char script[700];
  snprintf(script, sizeof script, "%s/codec/gen_cases.py",
           tu_env("CUTOUT_TEST_DATA"));
  const char *args[] = {script, g_cases, NULL};
  int rc = run_py("import runpy, sys, warnings\n"
                  "warnings.simplefilter('ignore')\n"
                  "sys.argv = sys.argv[1:]\n"
                  "runpy.run_path(sys.argv[0], run_name='__main__')\n",
                  args);
  if (rc != 0) {
    fprintf(stderr, "gen_cases.py failed (%d)\n", rc);
    return -1;
  }
  return 0;
}

int main(void)
{
  struct CMUnitTest tests[NCASES + 32];
  size_t n = 0;
  for (size_t i = 0; i < NCASES; i++) {
    struct CMUnitTest t = {k_cases[i], t_case, NULL, NULL, (void *)k_cases[i]};
    tests[n++] = t;
  }
  const struct CMUnitTest fixed[] = {
      cmocka_unit_test(t_manifest_complete),
      cmocka_unit_test(t_empty),
      cmocka_unit_test(t_not_an_image),
      cmocka_unit_test(t_truncated_jpeg),
      cmocka_unit_test(t_truncated_progressive_jpeg),
      cmocka_unit_test(t_truncated_png),
      cmocka_unit_test(t_truncated_webp),
      cmocka_unit_test(t_png_ihdr_crc),
      cmocka_unit_test(t_jpeg_sof_garbage),
      cmocka_unit_test(t_png_zero_size),
      cmocka_unit_test(t_png_over_limit_fast),
      cmocka_unit_test(t_limit_each_format),
      cmocka_unit_test(t_bmp_absurd),
      cmocka_unit_test(t_robust_damaged_inputs),
      cmocka_unit_test(t_orient_all),
      cmocka_unit_test(t_orient_big_tiles),
      cmocka_unit_test(t_exif_parsers),
      cmocka_unit_test(t_formats),
      cmocka_unit_test(t_png_roundtrip),
      cmocka_unit_test(t_png_pillow_reads),
      cmocka_unit_test(t_png_size_real_cutouts),
      cmocka_unit_test(t_png_size_big_cutout),
      cmocka_unit_test(t_png_size_smooth_cutout),
      cmocka_unit_test(t_jpeg_refuses_alpha),
      cmocka_unit_test(t_jpeg_encode),
      cmocka_unit_test(t_webp_encode),
      cmocka_unit_test(t_encode_bad_args),
  };
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    tests[n++] = fixed[i];
  return _cmocka_run_group_tests("codec", tests, n, setup, NULL);
}
