/*
 * probe.c: an image's format and size from its first bytes, so the batch
 * pipeline can budget memory before it decodes anything.
 */
#include "internal.h"

#include <string.h>
#include <webp/decode.h>

static uint32_t be32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le32(const uint8_t *p)
{
  return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Walk the JPEG markers up to the first SOFn. */
static int jpeg_size(const uint8_t *d, size_t n, uint32_t *w, uint32_t *h)
{
  size_t i = 2;
  while (i + 4 <= n) {
    if (d[i] != 0xFF) return -1;
    uint8_t m = d[i + 1];
    if (m == 0xFF) { i++; continue; }                 /* fill byte */
    if (m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) { i += 2; continue; }
    size_t len = (size_t)d[i + 2] << 8 | d[i + 3];
    if (len < 2) return -1;
    int sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (sof) {
      if (i + 9 > n) return -1;
      *h = (uint32_t)d[i + 5] << 8 | d[i + 6];
      *w = (uint32_t)d[i + 7] << 8 | d[i + 8];
      return 0;
    }
    i += 2 + len;
  }
  return -1;
}

cutout_status cutout_probe(const void *data, size_t len, cutout_format *format,
                           uint32_t *width, uint32_t *height)
{
  const uint8_t *d = data;
  uint32_t w = 0, h = 0;
  cutout_format f = data ? cutout_detect_format(data, len) : CUTOUT_FORMAT_UNKNOWN;
  int ok = -1;
  switch (f) {
  case CUTOUT_FORMAT_PNG:
    if (len >= 24 && memcmp(d + 12, "IHDR", 4) == 0) {
      w = be32(d + 16);
      h = be32(d + 20);
      ok = 0;
    }
    break;
  case CUTOUT_FORMAT_JPEG:
    ok = jpeg_size(d, len, &w, &h);
    break;
  case CUTOUT_FORMAT_WEBP: {
    int iw = 0, ih = 0;
    if (WebPGetInfo(d, len, &iw, &ih)) {
      w = (uint32_t)iw;
      h = (uint32_t)ih;
      ok = 0;
    }
    break;
  }
  case CUTOUT_FORMAT_BMP:
    if (len >= 26) {
      uint32_t hs = le32(d + 14);
      if (hs == 12 && len >= 22) {
        w = (uint32_t)d[18] | (uint32_t)d[19] << 8;
        h = (uint32_t)d[20] | (uint32_t)d[21] << 8;
      } else {
        int32_t sh = (int32_t)le32(d + 22);
        w = le32(d + 18);
        h = sh < 0 ? (uint32_t)(-(int64_t)sh) : (uint32_t)sh;
      }
      ok = 0;
    }
    break;
  default:
    break;
  }
  if (ok) return CUTOUT_EFORMAT;
  if (format) *format = f;
  if (width) *width = w;
  if (height) *height = h;
  return CUTOUT_OK;
}
