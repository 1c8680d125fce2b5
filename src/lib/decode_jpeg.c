/*
 * decode_jpeg.c: JPEG through libjpeg-turbo, set up as Pillow 9.4's
 * JpegDecode.c sets it up, so the pixels match Pillow byte for byte (same
 * library): islow DCT, fancy upsampling and block smoothing on (the
 * library defaults; Pillow only changes them in draft mode).
 *
 *  - 1 component -> L (JCS_GRAYSCALE); 3 -> RGB (JCS_RGB, whatever the
 *    file's colour space, as Pillow asks for rawmode "RGB").
 *  - 4 components -> Pillow opens these as CMYK with rawmode "CMYK;I":
 *    libjpeg returns CMYK (YCCK converted), Pillow inverts all four
 *    samples (it assumes Adobe's inverted convention for every CMYK
 *    JPEG), and convert("RGB") applies Convert.c's cmyk2rgb:
 *    out = nk - nk*c/255 with nk = 255-k and Pillow's MULDIV255 rounding.
 *    We store that RGB result.
 *
 * Truncation: Pillow feeds libjpeg through a suspending source and raises
 * "image file is truncated" when libjpeg asks for bytes past the end
 * before the last row is out.  libjpeg-turbo's memory source instead warns
 * (JWRN_JPEG_EOF) and pads the image with grey; we turn exactly that
 * warning into an error, and other warnings are ignored as Pillow ignores
 * them.  We never call jpeg_finish_decompress(): Pillow accepts a file
 * whose rows are all there even if the EOI marker is missing.
 *
 * Errors longjmp out of libjpeg into one cleanup path; everything that
 * path frees is volatile.
 */
#include "codec_int.h"

#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

struct jerr {
  struct jpeg_error_mgr pub;
  jmp_buf jb;
  int truncated;
  char msg[JMSG_LENGTH_MAX];
};

static void on_error(j_common_ptr ci)
{
  struct jerr *e = (struct jerr *)ci->err;
  (*ci->err->format_message)(ci, e->msg);
  longjmp(e->jb, 1);
}

static void on_message(j_common_ptr ci, int level)
{
  struct jerr *e = (struct jerr *)ci->err;
  if (level < 0 && ci->err->msg_code == JWRN_JPEG_EOF) {
    e->truncated = 1;
    longjmp(e->jb, 1);
  }
  /* Other warnings (corrupt data, extraneous bytes): ignored, as Pillow
   * ignores them; libjpeg repairs what it can. */
  if (level < 0) ci->err->num_warnings++;
}

static void on_output(j_common_ptr ci) { (void)ci; }

/* Pillow's MULDIV255: (a*b + 128) / 255 rounded as Convert.c does. */
static inline int muldiv255(int a, int b)
{
  int t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

/* CMYK as libjpeg returns it (Adobe-inverted), to Pillow's RGB. */
static void cmyk_row_to_rgb(uint8_t *dst, const uint8_t *src, size_t n)
{
  for (size_t x = 0; x < n; x++, src += 4, dst += 3) {
    int nk = src[3]; /* 255 - (255 - k) */
    for (int i = 0; i < 3; i++) {
      int v = nk - muldiv255(255 - src[i], nk);
      dst[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  }
}

/* The orientation from the first "Exif\0" APP1 before the first scan,
 * the one Pillow's JpegImagePlugin keeps. */
static int marker_orientation(j_decompress_ptr ci)
{
  for (jpeg_saved_marker_ptr m = ci->marker_list; m; m = m->next) {
    if (m->marker == JPEG_APP0 + 1 && m->data_length >= 5 &&
        memcmp(m->data, "Exif\0", 5) == 0)
      return cutout__exif_orientation(m->data, m->data_length);
  }
  return 0;
}

cutout_status cutout__decode_jpeg(const uint8_t *data, size_t len,
                                  const cutout_decode_limits *lim,
                                  cutout_image **out, int *orientation,
                                  char *err)
{
  struct jpeg_decompress_struct ci;
  struct jerr je;
  cutout_image *volatile img = NULL;
  uint8_t *volatile tmp = NULL;
  volatile cutout_status st = CUTOUT_EFORMAT;
  volatile int have_msg = 0; /* err already says why */

  memset(&je, 0, sizeof je);
  ci.err = jpeg_std_error(&je.pub);
  je.pub.error_exit = on_error;
  je.pub.emit_message = on_message;
  je.pub.output_message = on_output;
  if (setjmp(je.jb)) {
    if (je.truncated)
      cutout__err(err, CUTOUT_EFORMAT, "JPEG file is truncated");
    else if (!have_msg)
      cutout__err(err, CUTOUT_EFORMAT, "corrupt JPEG: %s", je.msg);
    jpeg_destroy_decompress(&ci);
    cutout_image_free(img);
    free(tmp);
    return st;
  }
  jpeg_create_decompress(&ci);
  jpeg_mem_src(&ci, data, (unsigned long)len);
  jpeg_save_markers(&ci, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&ci, TRUE);

  cutout_status cs = cutout__check_dims(ci.image_width, ci.image_height, lim,
                                        "JPEG", err);
  uint32_t channels = 0;
  switch (ci.num_components) {
  case 1: ci.out_color_space = JCS_GRAYSCALE; channels = 1; break;
  case 3: ci.out_color_space = JCS_RGB; channels = 3; break;
  case 4: ci.out_color_space = JCS_CMYK; channels = 3; break;
  default:
    if (cs == CUTOUT_OK)
      cs = cutout__err(err, CUTOUT_EFORMAT,
                       "JPEG with %d components is not supported",
                       ci.num_components);
    break;
  }
  if (cs == CUTOUT_OK) {
    cutout_image *im = NULL;
    cs = cutout_image_new(ci.image_width, ci.image_height, channels, &im);
    if (cs != CUTOUT_OK)
      cutout__err(err, cs, "cannot allocate a %ux%u image", ci.image_width,
                  ci.image_height);
    img = im;
  }
  if (cs != CUTOUT_OK) {
    jpeg_destroy_decompress(&ci);
    return cs;
  }
  *orientation = marker_orientation(&ci);

  jpeg_start_decompress(&ci);
  if (ci.output_width != img->width || ci.output_height != img->height ||
      (ci.out_color_space != JCS_CMYK &&
       (uint32_t)ci.output_components != channels)) {
    st = cutout__err(err, CUTOUT_EFORMAT, "JPEG decoder output mismatch");
    have_msg = 1;
    longjmp(je.jb, 1);
  }
  if (ci.out_color_space == JCS_CMYK) {
    tmp = malloc((size_t)img->width * 4);
    if (!tmp) {
      st = cutout__err(err, CUTOUT_ENOMEM, "out of memory");
      have_msg = 1;
      longjmp(je.jb, 1);
    }
    while (ci.output_scanline < ci.output_height) {
      JSAMPROW row = tmp;
      size_t y = ci.output_scanline;
      if (jpeg_read_scanlines(&ci, &row, 1) != 1) break;
      cmyk_row_to_rgb(img->pixels + y * img->stride, tmp, img->width);
    }
  } else {
    /* Straight into the image, several rows per call. */
    JSAMPROW rows[16];
    while (ci.output_scanline < ci.output_height) {
      JDIMENSION y = ci.output_scanline, n = ci.output_height - y;
      if (n > 16) n = 16;
      for (JDIMENSION i = 0; i < n; i++)
        rows[i] = img->pixels + (size_t)(y + i) * img->stride;
      if (jpeg_read_scanlines(&ci, rows, n) == 0) break;
    }
  }
  if (ci.output_scanline < ci.output_height) {
    st = cutout__err(err, CUTOUT_EFORMAT, "JPEG file is truncated");
    have_msg = 1;
    longjmp(je.jb, 1);
  }
  jpeg_destroy_decompress(&ci);
  free(tmp);
  *out = img;
  return CUTOUT_OK;
}
