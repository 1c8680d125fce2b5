/*
 * codec.h: image decoding and encoding.  Formats are found by magic bytes,
 * never by file name.  Limits are checked from the header before any large
 * allocation.  Decoded images follow what Pillow's Image.open() +
 * ImageOps.exif_transpose() would give, reduced to 8-bit L/LA/RGB/RGBA in
 * a way that keeps rembg's later convert("RGB") / convert("RGBA") results
 * identical (palette expanded, CMYK converted, 16-bit reduced as Pillow
 * reduces it, tRNS applied).
 */
#ifndef CUTOUT_CODEC_H
#define CUTOUT_CODEC_H

#include "internal.h"

typedef struct cutout_decode_limits {
  uint64_t max_pixels; /* 0: no limit */
} cutout_decode_limits;

cutout_status cutout__decode(const uint8_t *data, size_t len,
                             const cutout_decode_limits *lim,
                             cutout_image **out, char *err);

/* Apply EXIF orientation 1..8 (as ImageOps.exif_transpose); 1 copies. */
cutout_status cutout__orient(const cutout_image *in, int orientation,
                             cutout_image **out, char *err);

cutout_status cutout__encode(const cutout_image *img,
                             const cutout_encode_params *p, int nthreads,
                             uint8_t **out, size_t *out_len, char *err);

#endif
