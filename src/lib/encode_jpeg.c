/*
 * encode_jpeg.c: JPEG output through libjpeg-turbo with libjpeg's
 * defaults as Pillow uses them (JFIF header, 4:2:0, islow DCT, no
 * optimised Huffman tables), quality from the parameters.  L becomes a
 * greyscale JPEG, RGB a YCbCr one.  JPEG has no alpha: LA and RGBA are
 * accepted only when every pixel is opaque, and then the alpha is dropped.
 */
#include "codec_int.h"

#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

struct jerr {
  struct jpeg_error_mgr pub;
  jmp_buf jb;
  char msg[JMSG_LENGTH_MAX];
  /* jpeg_mem_dest's buffer: libjpeg reallocates it as it grows and never
   * frees it, so it lives where the error path can reach it. */
  unsigned char *buf;
  unsigned long buf_len;
};

static void on_error(j_common_ptr ci)
{
  struct jerr *e = (struct jerr *)ci->err;
  (*ci->err->format_message)(ci, e->msg);
  longjmp(e->jb, 1);
}

static void on_output(j_common_ptr ci) { (void)ci; }

static int all_opaque(const cutout_image *img)
{
  const size_t c = img->channels, n = (size_t)img->width * img->height;
  const uint8_t *a = img->pixels + c - 1;
  uint8_t acc = 0xFF;
  for (size_t i = 0; i < n; i++, a += c) acc &= *a;
  return acc == 0xFF;
}

cutout_status cutout__encode_jpeg(const cutout_image *img, int quality,
                                  uint8_t **out, size_t *out_len, char *err)
{
  if (quality < 1 || quality > 100)
    return cutout__err(err, CUTOUT_EINVAL, "JPEG quality %d is not 1..100",
                       quality);
  if (img->width > JPEG_MAX_DIMENSION || img->height > JPEG_MAX_DIMENSION)
    return cutout__err(err, CUTOUT_EUNSUPPORTED,
                       "image too large for JPEG (%ux%u; at most %d a side)",
                       img->width, img->height, (int)JPEG_MAX_DIMENSION);
  const uint32_t ch = img->channels;
  if ((ch == 2 || ch == 4) && !all_opaque(img))
    return cutout__err(err, CUTOUT_EINVAL,
                       "JPEG cannot store transparency: give an opaque "
                       "background colour (-bgc R G B 255) or choose "
                       "PNG/WebP");

  struct jpeg_compress_struct ci;
  struct jerr je;
  uint8_t *volatile row = NULL;
  memset(&je, 0, sizeof je);
  ci.err = jpeg_std_error(&je.pub);
  je.pub.error_exit = on_error;
  je.pub.output_message = on_output;
  if (setjmp(je.jb)) {
    jpeg_destroy_compress(&ci);
    free(je.buf);
    free(row);
    return cutout__err(err, CUTOUT_EFORMAT, "JPEG encoder: %s", je.msg);
  }
  jpeg_create_compress(&ci);
  jpeg_mem_dest(&ci, &je.buf, &je.buf_len);
  ci.image_width = img->width;
  ci.image_height = img->height;
  if (ch <= 2) {
    ci.input_components = 1;
    ci.in_color_space = JCS_GRAYSCALE;
  } else if (ch == 3) {
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
  } else {
    /* libjpeg-turbo reads RGBX directly and skips the fourth byte. */
    ci.input_components = 4;
    ci.in_color_space = JCS_EXT_RGBX;
  }
  jpeg_set_defaults(&ci);
  jpeg_set_quality(&ci, quality, TRUE);
  jpeg_start_compress(&ci, TRUE);
  if (ch == 2) {
    row = malloc(img->width);
    if (!row) {
      snprintf(je.msg, sizeof je.msg, "out of memory");
      longjmp(je.jb, 1);
    }
  }
  while (ci.next_scanline < ci.image_height) {
    uint8_t *src = img->pixels + (size_t)ci.next_scanline * img->stride;
    if (ch == 2) {
      for (uint32_t x = 0; x < img->width; x++) row[x] = src[2 * x];
      src = row;
    }
    JSAMPROW r = src;
    jpeg_write_scanlines(&ci, &r, 1);
  }
  jpeg_finish_compress(&ci);
  jpeg_destroy_compress(&ci);
  free(row);
  /* jpeg_mem_dest allocates with malloc(); the caller frees with free(). */
  *out = je.buf;
  *out_len = je.buf_len;
  return CUTOUT_OK;
}
