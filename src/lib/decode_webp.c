/*
 * decode_webp.c: WebP through libwebp, as Pillow 9.4 opens it.
 *
 * Pillow parses every WebP with WebPAnimDecoder (so the file must demux
 * completely), takes the mode from the container's ALPHA flag (RGBA with
 * it, else RGB: "RGBX" with the fourth byte dropped) and shows the first
 * frame composed on a transparent canvas, with libwebp's default decoder
 * options (fancy upsampling, no dithering).  A still image is one key
 * frame covering the canvas, which the animation decoder decodes with
 * WebPDecode(); we decode that frame straight into the result instead of
 * through the decoder's own canvas.  Animations (and odd frame layouts)
 * go through WebPAnimDecoder itself.  The EXIF chunk carries the
 * orientation.
 */
#include "codec_int.h"

#include <string.h>
#include <webp/decode.h>
#include <webp/demux.h>

static cutout_status decode_still(const WebPIterator *it, cutout_image *img,
                                  char *err)
{
  WebPDecoderConfig cfg;
  if (!WebPInitDecoderConfig(&cfg))
    return cutout__err(err, CUTOUT_EFORMAT, "libwebp version mismatch");
  cfg.output.colorspace = img->channels == 4 ? MODE_RGBA : MODE_RGB;
  cfg.output.is_external_memory = 1;
  cfg.output.u.RGBA.rgba = img->pixels;
  cfg.output.u.RGBA.stride = (int)img->stride;
  cfg.output.u.RGBA.size = img->stride * img->height;
  /* Threads only pipeline the filtering; the pixels are the same. */
  cfg.options.use_threads = 1;
  VP8StatusCode vs = WebPDecode(it->fragment.bytes, it->fragment.size, &cfg);
  WebPFreeDecBuffer(&cfg.output);
  if (vs == VP8_STATUS_OK) return CUTOUT_OK;
  if (vs == VP8_STATUS_OUT_OF_MEMORY)
    return cutout__err(err, CUTOUT_ENOMEM, "out of memory");
  if (vs == VP8_STATUS_NOT_ENOUGH_DATA)
    return cutout__err(err, CUTOUT_EFORMAT, "WebP file is truncated");
  return cutout__err(err, CUTOUT_EFORMAT, "corrupt WebP (libwebp status %d)",
                     (int)vs);
}

static cutout_status decode_anim(const WebPData *wd, cutout_image *img,
                                 char *err)
{
  WebPAnimDecoderOptions opt;
  if (!WebPAnimDecoderOptionsInit(&opt))
    return cutout__err(err, CUTOUT_EFORMAT, "libwebp version mismatch");
  opt.color_mode = MODE_RGBA;
  opt.use_threads = 0;
  WebPAnimDecoder *ad = WebPAnimDecoderNew(wd, &opt);
  if (!ad) return cutout__err(err, CUTOUT_EFORMAT, "corrupt animated WebP");
  WebPAnimInfo info;
  uint8_t *canvas = NULL;
  int ts = 0;
  cutout_status st = CUTOUT_OK;
  if (!WebPAnimDecoderGetInfo(ad, &info) || info.canvas_width != img->width ||
      info.canvas_height != img->height ||
      !WebPAnimDecoderGetNext(ad, &canvas, &ts)) {
    st = cutout__err(err, CUTOUT_EFORMAT,
                     "corrupt animated WebP: cannot decode the first frame");
  } else if (img->channels == 4) {
    memcpy(img->pixels, canvas, img->stride * img->height);
  } else {
    size_t n = (size_t)img->width * img->height;
    uint8_t *d = img->pixels;
    for (size_t i = 0; i < n; i++, d += 3, canvas += 4) memcpy(d, canvas, 3);
  }
  WebPAnimDecoderDelete(ad);
  return st;
}

cutout_status cutout__decode_webp(const uint8_t *data, size_t len,
                                  const cutout_decode_limits *lim,
                                  cutout_image **out, int *orientation,
                                  char *err)
{
  WebPData wd = {data, len};
  WebPDemuxState ds = WEBP_DEMUX_PARSE_ERROR;
  WebPDemuxer *dmx = WebPDemuxPartial(&wd, &ds);
  if (!dmx || ds != WEBP_DEMUX_DONE) {
    WebPDemuxDelete(dmx);
    if (ds == WEBP_DEMUX_PARSING_HEADER || ds == WEBP_DEMUX_PARSED_HEADER)
      return cutout__err(err, CUTOUT_EFORMAT, "WebP file is truncated");
    return cutout__err(err, CUTOUT_EFORMAT, "corrupt WebP container");
  }
  uint32_t w = WebPDemuxGetI(dmx, WEBP_FF_CANVAS_WIDTH);
  uint32_t h = WebPDemuxGetI(dmx, WEBP_FF_CANVAS_HEIGHT);
  uint32_t flags = WebPDemuxGetI(dmx, WEBP_FF_FORMAT_FLAGS);
  cutout_status st = cutout__check_dims(w, h, lim, "WebP", err);
  if (st != CUTOUT_OK) {
    WebPDemuxDelete(dmx);
    return st;
  }
  int o = 0;
  WebPChunkIterator ci;
  if (WebPDemuxGetChunk(dmx, "EXIF", 1, &ci)) {
    o = cutout__exif_orientation(ci.chunk.bytes, ci.chunk.size);
    WebPDemuxReleaseChunkIterator(&ci);
  }

  cutout_image *img = NULL;
  if ((st = cutout_image_new(w, h, (flags & ALPHA_FLAG) ? 4 : 3, &img))) {
    WebPDemuxDelete(dmx);
    return cutout__err(err, st, "cannot allocate a %ux%u image", w, h);
  }
  WebPIterator it;
  if (!WebPDemuxGetFrame(dmx, 1, &it)) {
    st = cutout__err(err, CUTOUT_EFORMAT, "WebP file has no frame");
  } else {
    if (!(flags & ANIMATION_FLAG) && it.x_offset == 0 && it.y_offset == 0 &&
        (uint32_t)it.width == w && (uint32_t)it.height == h)
      st = decode_still(&it, img, err);
    else
      st = decode_anim(&wd, img, err);
    WebPDemuxReleaseIterator(&it);
  }
  WebPDemuxDelete(dmx);
  if (st != CUTOUT_OK) {
    cutout_image_free(img);
    return st;
  }
  *orientation = o;
  *out = img;
  return CUTOUT_OK;
}
