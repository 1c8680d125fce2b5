/*
 * encode.c: the encoder front door.  Checks the image and the parameters
 * once, then hands over to the PNG, JPEG or WebP writer.  Every writer
 * returns a malloc() block (released with cutout_free()) and leaves the
 * outputs untouched on failure.
 */
#include "codec_int.h"

cutout_status cutout__encode(const cutout_image *img,
                             const cutout_encode_params *p, int nthreads,
                             uint8_t **out, size_t *out_len, char *err)
{
  if (!img || !p || !out || !out_len)
    return cutout__err(err, CUTOUT_EINVAL, "encode: missing argument");
  if (!img->pixels || img->width == 0 || img->height == 0 ||
      img->channels < 1 || img->channels > 4 ||
      img->stride != (size_t)img->width * img->channels)
    return cutout__err(err, CUTOUT_EINVAL,
                       "encode: not a valid image (%ux%u, %u channels)",
                       img->width, img->height, img->channels);
  switch (p->format) {
  case CUTOUT_FORMAT_PNG:
    if (p->png_level < 0 || p->png_level > 9)
      return cutout__err(err, CUTOUT_EINVAL, "PNG level %d is not 0..9",
                         p->png_level);
    return cutout__encode_png(img, p->png_level, nthreads, out, out_len, err);
  case CUTOUT_FORMAT_JPEG:
    return cutout__encode_jpeg(img, p->quality, out, out_len, err);
  case CUTOUT_FORMAT_WEBP:
    return cutout__encode_webp(img, p->quality, p->webp_lossless, out,
                               out_len, err);
  case CUTOUT_FORMAT_BMP:
    return cutout__err(err, CUTOUT_EUNSUPPORTED,
                       "BMP is an input format only; write PNG, JPEG or WebP");
  default:
    return cutout__err(err, CUTOUT_EINVAL, "unknown output format %d",
                       (int)p->format);
  }
}
