/*
 * decode.c: the decoder front door.  Finds the format by magic bytes,
 * hands the buffer to that format's decoder (which checks the limits from
 * the header before it allocates), then applies the EXIF orientation as
 * Pillow's ImageOps.exif_transpose() does, which is what rembg runs on
 * every input before anything else.
 */
#include "codec_int.h"

#include <inttypes.h>

cutout_status cutout__check_dims(uint64_t width, uint64_t height,
                                 const cutout_decode_limits *lim,
                                 const char *what, char *err)
{
  if (width == 0 || height == 0)
    return cutout__err(err, CUTOUT_EFORMAT,
                       "%s header gives an empty image (%" PRIu64 "x%" PRIu64
                       ")",
                       what, width, height);
  /* Both are below 2^32, so the product fits. */
  uint64_t pixels = width * height;
  if (lim && lim->max_pixels && pixels > lim->max_pixels)
    return cutout__err(err, CUTOUT_ELIMIT,
                       "image is %" PRIu64 "x%" PRIu64 " = %" PRIu64
                       " pixels, over the limit of %" PRIu64 " pixels",
                       width, height, pixels, lim->max_pixels);
  /* The 4-channel buffer must be addressable; this only bites on 32-bit
   * hosts or with no pixel limit. */
  if (width > UINT32_MAX || height > UINT32_MAX ||
      pixels > SIZE_MAX / 4 / 2)
    return cutout__err(err, CUTOUT_ELIMIT,
                       "image is %" PRIu64 "x%" PRIu64
                       ", too large for this machine",
                       width, height);
  return CUTOUT_OK;
}

cutout_status cutout__decode(const uint8_t *data, size_t len,
                             const cutout_decode_limits *lim,
                             cutout_image **out, char *err)
{
  if (!out || (!data && len))
    return cutout__err(err, CUTOUT_EINVAL, "no input buffer");
  if (len == 0) return cutout__err(err, CUTOUT_EFORMAT, "empty file");

  cutout_image *img = NULL;
  int orientation = 1;
  cutout_status st;
  switch (cutout_detect_format(data, len)) {
  case CUTOUT_FORMAT_JPEG:
    st = cutout__decode_jpeg(data, len, lim, &img, &orientation, err);
    break;
  case CUTOUT_FORMAT_PNG:
    st = cutout__decode_png(data, len, lim, &img, &orientation, err);
    break;
  case CUTOUT_FORMAT_WEBP:
    st = cutout__decode_webp(data, len, lim, &img, &orientation, err);
    break;
  case CUTOUT_FORMAT_BMP:
    st = cutout__decode_bmp(data, len, lim, &img, &orientation, err);
    break;
  default:
    return cutout__err(err, CUTOUT_EFORMAT,
                       "not an image (unrecognised format)");
  }
  if (st != CUTOUT_OK) return st;

  /* exif_transpose only acts on 2..8; 1, 0 and anything else keep the
   * image as it is. */
  if (orientation >= 2 && orientation <= 8) {
    cutout_image *rot = NULL;
    st = cutout__orient(img, orientation, &rot, err);
    cutout_image_free(img);
    if (st != CUTOUT_OK) return st;
    img = rot;
  }
  *out = img;
  return CUTOUT_OK;
}
