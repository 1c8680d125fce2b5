/*
 * codec_int.h: what the codec files of libcutout share with each other (and
 * with tests/unit/test_codec.c): one decoder per container format, the
 * header-first limit check, and the EXIF / XMP orientation readers.
 *
 * Every decoder follows the same contract: read the dimensions from the
 * header, call cutout__check_dims() before allocating the pixel buffer,
 * decode straight into a cutout_image of the channel count Pillow's mode
 * maps to (L, LA, RGB, RGBA), and report the EXIF orientation it found
 * (1 when none) without applying it.  On failure nothing is allocated and
 * *out is untouched.
 */
#ifndef CUTOUT_CODEC_INT_H
#define CUTOUT_CODEC_INT_H

#include "codec.h"

/*
 * The header-first size check: EFORMAT for a zero dimension, ELIMIT when
 * width * height exceeds lim->max_pixels (0 = no limit), ENOMEM-proof
 * size arithmetic.  `what` names the format in the message ("PNG").
 */
cutout_status cutout__check_dims(uint64_t width, uint64_t height,
                                 const cutout_decode_limits *lim,
                                 const char *what, char *err);

cutout_status cutout__decode_jpeg(const uint8_t *data, size_t len,
                                  const cutout_decode_limits *lim,
                                  cutout_image **out, int *orientation,
                                  char *err);
cutout_status cutout__decode_png(const uint8_t *data, size_t len,
                                 const cutout_decode_limits *lim,
                                 cutout_image **out, int *orientation,
                                 char *err);
cutout_status cutout__decode_webp(const uint8_t *data, size_t len,
                                  const cutout_decode_limits *lim,
                                  cutout_image **out, int *orientation,
                                  char *err);
cutout_status cutout__decode_bmp(const uint8_t *data, size_t len,
                                 const cutout_decode_limits *lim,
                                 cutout_image **out, int *orientation,
                                 char *err);

/*
 * The value of tag 0x0112 (Orientation) in IFD0 of an EXIF block, as
 * Pillow's Image.getexif() reads it; 0 when the block has no such tag or
 * cannot be parsed (a malformed block never fails a decode).  data may
 * start with "Exif\0\0" or directly with the TIFF header.
 */
int cutout__exif_orientation(const uint8_t *data, size_t len);

/* Pillow's XMP fallback: the digit after `tiff:Orientation="` or
 * `tiff:Orientation>` in an XMP packet, or 0. */
int cutout__xmp_orientation(const char *xmp, size_t len);

/* Orientation from an ImageMagick "Raw profile type exif" text value
 * (hex after three header lines), or 0. */
int cutout__raw_profile_orientation(const char *text, size_t len);

cutout_status cutout__encode_png(const cutout_image *img, int level,
                                 int nthreads, uint8_t **out, size_t *out_len,
                                 char *err);
cutout_status cutout__encode_jpeg(const cutout_image *img, int quality,
                                  uint8_t **out, size_t *out_len, char *err);
cutout_status cutout__encode_webp(const cutout_image *img, int quality,
                                  int lossless, uint8_t **out,
                                  size_t *out_len, char *err);

#endif
