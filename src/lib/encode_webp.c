/*
 * encode_webp.c: WebP output through libwebp, lossy at the given quality
 * or lossless, with Pillow's other defaults (method 4, exact off: RGB
 * under fully transparent pixels may be changed to compress better).
 * Alpha is kept; L and LA are expanded to RGB and RGBA first, since WebP
 * has no grey mode.
 */
#include "codec_int.h"

#include <stdlib.h>
#include <string.h>
#include <webp/encode.h>

cutout_status cutout__encode_webp(const cutout_image *img, int quality,
                                  int lossless, uint8_t **out,
                                  size_t *out_len, char *err)
{
  if (quality < 1 || quality > 100)
    return cutout__err(err, CUTOUT_EINVAL, "WebP quality %d is not 1..100",
                       quality);
  if (img->width > WEBP_MAX_DIMENSION || img->height > WEBP_MAX_DIMENSION)
    return cutout__err(err, CUTOUT_EUNSUPPORTED,
                       "image too large for WebP (%ux%u; at most %d a side)",
                       img->width, img->height, WEBP_MAX_DIMENSION);
  WebPConfig cfg;
  WebPPicture pic;
  if (!WebPConfigInit(&cfg) || !WebPPictureInit(&pic))
    return cutout__err(err, CUTOUT_EUNSUPPORTED, "libwebp version mismatch");
  cfg.lossless = lossless ? 1 : 0;
  cfg.quality = (float)quality;
  cfg.method = 4;
  if (!WebPValidateConfig(&cfg))
    return cutout__err(err, CUTOUT_EINVAL, "invalid WebP settings");

  const uint32_t ch = img->channels;
  const uint8_t *src = img->pixels;
  size_t stride = img->stride;
  uint8_t *expanded = NULL;
  if (ch <= 2) {
    /* Grey to RGB(A): WebP stores colour only. */
    size_t oc = ch == 1 ? 3 : 4, n = (size_t)img->width * img->height;
    expanded = malloc(n * oc);
    if (!expanded) return cutout__err(err, CUTOUT_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
      uint8_t *d = expanded + i * oc;
      d[0] = d[1] = d[2] = img->pixels[i * ch];
      if (ch == 2) d[3] = img->pixels[i * 2 + 1];
    }
    src = expanded;
    stride = (size_t)img->width * oc;
  }
  pic.width = (int)img->width;
  pic.height = (int)img->height;
  pic.use_argb = cfg.lossless;
  int ok = (ch == 1 || ch == 3)
               ? WebPPictureImportRGB(&pic, src, (int)stride)
               : WebPPictureImportRGBA(&pic, src, (int)stride);
  free(expanded);
  if (!ok) {
    WebPPictureFree(&pic);
    return cutout__err(err, CUTOUT_ENOMEM, "out of memory");
  }
  WebPMemoryWriter wr;
  WebPMemoryWriterInit(&wr);
  pic.writer = WebPMemoryWrite;
  pic.custom_ptr = &wr;
  ok = WebPEncode(&cfg, &pic);
  int code = pic.error_code;
  WebPPictureFree(&pic);
  if (!ok) {
    WebPMemoryWriterClear(&wr);
    if (code == VP8_ENC_ERROR_OUT_OF_MEMORY)
      return cutout__err(err, CUTOUT_ENOMEM, "out of memory");
    return cutout__err(err, CUTOUT_EFORMAT, "WebP encoder error %d", code);
  }
  /* Hand back a malloc() block, as every encoder does. */
  uint8_t *buf = malloc(wr.size ? wr.size : 1);
  if (!buf) {
    WebPMemoryWriterClear(&wr);
    return cutout__err(err, CUTOUT_ENOMEM, "out of memory");
  }
  memcpy(buf, wr.mem, wr.size);
  *out = buf;
  *out_len = wr.size;
  WebPMemoryWriterClear(&wr);
  return CUTOUT_OK;
}
