/*
 * exif.c: the EXIF Orientation tag, read the way Pillow's Image.getexif()
 * finds it for ImageOps.exif_transpose():
 *
 *  - only IFD0 counts (a thumbnail's IFD1 orientation is ignored), and the
 *    first value is taken whatever the count;
 *  - any numeric TIFF type works, since Pillow looks the value up in a
 *    dict: SHORT 6, LONG 6, RATIONAL 12/2 and FLOAT 6.0 all mean 6;
 *  - a block that cannot be parsed means "no orientation": a malformed
 *    EXIF block never fails a decode.
 *
 * libexif parses the TIFF structure.  Its "follow the specification" mode
 * is switched off, since it would add or rewrite tags on load.
 *
 * For PNG, Pillow also looks at ImageMagick's "Raw profile type exif" text
 * chunk and, when there is no Orientation tag at all, at the XMP packet;
 * those two readers are here as well.
 */
#include "codec_int.h"

#include <libexif/exif-data.h>
#include <libexif/exif-utils.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t exif_header[6] = {'E', 'x', 'i', 'f', 0, 0};

/* A value as Pillow's dict lookup sees it: an exact integer, else 0. */
static int entry_value(const ExifEntry *e, ExifByteOrder bo)
{
  if (!e->data || e->components == 0) return 0;
  size_t unit = exif_format_get_size(e->format);
  if (unit == 0 || e->size < unit) return 0;
  const unsigned char *d = e->data;
  int64_t v;
  switch (e->format) {
  case EXIF_FORMAT_BYTE: v = d[0]; break;
  case EXIF_FORMAT_SBYTE: v = (int8_t)d[0]; break;
  case EXIF_FORMAT_SHORT: v = exif_get_short(d, bo); break;
  case EXIF_FORMAT_SSHORT: v = exif_get_sshort(d, bo); break;
  case EXIF_FORMAT_LONG: v = exif_get_long(d, bo); break;
  case EXIF_FORMAT_SLONG: v = exif_get_slong(d, bo); break;
  case EXIF_FORMAT_RATIONAL:
  case EXIF_FORMAT_SRATIONAL: {
    int64_t num, den;
    if (e->format == EXIF_FORMAT_RATIONAL) {
      ExifRational r = exif_get_rational(d, bo);
      num = r.numerator;
      den = r.denominator;
    } else {
      ExifSRational r = exif_get_srational(d, bo);
      num = r.numerator;
      den = r.denominator;
    }
    if (den == 0 || num % den != 0) return 0;
    v = num / den;
    break;
  }
  case EXIF_FORMAT_FLOAT: {
    uint32_t u = exif_get_long(d, bo);
    float f;
    memcpy(&f, &u, 4);
    if (!(f >= 0 && f <= 16) || floorf(f) != f) return 0;
    v = (int64_t)f;
    break;
  }
  case EXIF_FORMAT_DOUBLE: {
    uint64_t hi = exif_get_long(d + (bo == EXIF_BYTE_ORDER_MOTOROLA ? 0 : 4), bo);
    uint64_t lo = exif_get_long(d + (bo == EXIF_BYTE_ORDER_MOTOROLA ? 4 : 0), bo);
    uint64_t u = hi << 32 | lo;
    double f;
    memcpy(&f, &u, 8);
    if (!(f >= 0 && f <= 16) || floor(f) != f) return 0;
    v = (int64_t)f;
    break;
  }
  default: return 0; /* ASCII, UNDEFINED: never equal to an int */
  }
  return v >= 0 && v <= 16 ? (int)v : 0;
}

int cutout__exif_orientation(const uint8_t *data, size_t len)
{
  if (!data || len == 0) return 0;
  /* libexif wants the APP1 form; PNG eXIf and most WebP EXIF chunks hold
   * the bare TIFF structure. */
  uint8_t *buf = NULL;
  if (len < 6 || memcmp(data, exif_header, 6) != 0) {
    if (len > SIZE_MAX - 6 || len > 0x7fffffff) return 0;
    buf = malloc(len + 6);
    if (!buf) return 0;
    memcpy(buf, exif_header, 6);
    memcpy(buf + 6, data, len);
    data = buf;
    len += 6;
  }
  if (len <= 6 || len > 0xffffffffu) {
    free(buf);
    return 0;
  }
  int orientation = 0;
  ExifData *ed = exif_data_new();
  if (ed) {
    exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
    exif_data_load_data(ed, data, (unsigned int)len);
    ExifEntry *e = exif_content_get_entry(ed->ifd[EXIF_IFD_0],
                                          EXIF_TAG_ORIENTATION);
    if (e) orientation = entry_value(e, exif_data_get_byte_order(ed));
    exif_data_unref(ed);
  }
  free(buf);
  return orientation;
}

int cutout__xmp_orientation(const char *xmp, size_t len)
{
  static const char key[] = "tiff:Orientation";
  const size_t klen = sizeof key - 1;
  if (!xmp) return 0;
  /* re.search(r'tiff:Orientation(="|>)([0-9])'): the first place where
   * the whole pattern matches. */
  for (size_t i = 0; i + klen < len; i++) {
    if (memcmp(xmp + i, key, klen) != 0) continue;
    size_t j = i + klen;
    if (j + 1 < len && xmp[j] == '=' && xmp[j + 1] == '"')
      j += 2;
    else if (xmp[j] == '>')
      j += 1;
    else
      continue;
    if (j < len && xmp[j] >= '0' && xmp[j] <= '9') return xmp[j] - '0';
  }
  return 0;
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int cutout__raw_profile_orientation(const char *text, size_t len)
{
  /* Pillow: bytes.fromhex("".join(value.split("\n")[3:])). */
  size_t i = 0;
  for (int lines = 0; lines < 3; lines++) {
    while (i < len && text[i] != '\n') i++;
    if (i >= len) return 0;
    i++;
  }
  uint8_t *bin = malloc((len - i) / 2 + 1);
  if (!bin) return 0;
  size_t n = 0;
  int hi = -1;
  for (; i < len; i++) {
    char c = text[i];
    if (c == '\n') continue; /* removed by the join */
    if (c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f') {
      if (hi >= 0) goto bad; /* fromhex: whitespace only between pairs */
      continue;
    }
    int v = hexval(c);
    if (v < 0) goto bad;
    if (hi < 0) {
      hi = v;
    } else {
      bin[n++] = (uint8_t)(hi << 4 | v);
      hi = -1;
    }
  }
  if (hi >= 0) goto bad;
  int o = cutout__exif_orientation(bin, n);
  free(bin);
  return o;
bad:
  free(bin);
  return 0;
}
