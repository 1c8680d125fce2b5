/*
 * format.c: image formats by magic bytes and by name.  Input formats are
 * only ever found from the bytes (a PNG named .jpg is a PNG, as with
 * rembg's conformance photo plants-1.jpg); names choose output formats.
 */
#include "internal.h"

#include <string.h>
#include <strings.h>

cutout_format cutout_detect_format(const void *data, size_t len)
{
  const uint8_t *p = data;
  if (!p) return CUTOUT_FORMAT_UNKNOWN;
  if (len >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
    return CUTOUT_FORMAT_JPEG;
  if (len >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8))
    return CUTOUT_FORMAT_PNG;
  if (len >= 12 && !memcmp(p, "RIFF", 4) && !memcmp(p + 8, "WEBP", 4))
    return CUTOUT_FORMAT_WEBP;
  if (len >= 2 && p[0] == 'B' && p[1] == 'M') return CUTOUT_FORMAT_BMP;
  return CUTOUT_FORMAT_UNKNOWN;
}

cutout_format cutout_format_from_name(const char *name)
{
  if (!name) return CUTOUT_FORMAT_UNKNOWN;
  const char *dot = strrchr(name, '.');
  /* A dot inside a directory name is not an extension. */
  if (!dot || strchr(dot, '/')) return CUTOUT_FORMAT_UNKNOWN;
  dot++;
  if (!strcasecmp(dot, "png")) return CUTOUT_FORMAT_PNG;
  if (!strcasecmp(dot, "jpg") || !strcasecmp(dot, "jpeg"))
    return CUTOUT_FORMAT_JPEG;
  if (!strcasecmp(dot, "webp")) return CUTOUT_FORMAT_WEBP;
  /* BMP is read but never written. */
  return CUTOUT_FORMAT_UNKNOWN;
}

const char *cutout_format_name(cutout_format f)
{
  switch (f) {
  case CUTOUT_FORMAT_PNG: return "png";
  case CUTOUT_FORMAT_JPEG: return "jpeg";
  case CUTOUT_FORMAT_WEBP: return "webp";
  case CUTOUT_FORMAT_BMP: return "bmp";
  case CUTOUT_FORMAT_UNKNOWN: break;
  }
  return "unknown";
}

cutout_format cutout_format_parse(const char *name)
{
  if (!name) return CUTOUT_FORMAT_UNKNOWN;
  if (!strcasecmp(name, "png")) return CUTOUT_FORMAT_PNG;
  if (!strcasecmp(name, "jpg") || !strcasecmp(name, "jpeg"))
    return CUTOUT_FORMAT_JPEG;
  if (!strcasecmp(name, "webp")) return CUTOUT_FORMAT_WEBP;
  return CUTOUT_FORMAT_UNKNOWN;
}

cutout_encode_params cutout_encode_default_params(void)
{
  cutout_encode_params p = {CUTOUT_FORMAT_PNG, 6, 90, 0};
  return p;
}
