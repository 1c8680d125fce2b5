/*
 * decode_png.c: PNG through libspng, reduced to 8-bit exactly as Pillow
 * 9.4's PngImagePlugin + convert("RGB") / convert("RGBA") reduce it:
 *
 *   grey 1/2/4 bit  -> L, scaled (x255, x85, x17: Pillow's "1", "L;2",
 *                      "L;4" unpackers)
 *   grey 8          -> L
 *   grey 16         -> Pillow mode "I"; its convert() CLIPS: min(v, 255)
 *   RGB 8 / 16      -> RGB (16-bit: the high byte, rawmode "RGB;16B")
 *   palette         -> RGB through PLTE; an index past the palette reads
 *                      Pillow's default grey ramp (i, i, i)
 *   grey+alpha 8    -> LA
 *   grey+alpha 16   -> RGBA (Pillow opens it as RGBA, rawmode "LA;16B")
 *   RGBA 8 / 16     -> RGBA (high bytes)
 *
 * tRNS: convert("RGBA") turns it into alpha, so an image with tRNS comes
 * out with an alpha channel (L -> LA, RGB -> RGBA, palette -> RGBA).
 * Pillow compares the colour key's LOW byte with the 8-bit sample it
 * already reduced (Convert.c, rgbT2rgba masks with 0xff), so a 16-bit key
 * of 0x0201 makes pixels whose reduced value is 1 transparent, and a
 * 1-bit key of 1 never matches white (255).  We reproduce that.
 *
 * Gamma, ICC, sBIT are ignored, as Pillow ignores them.  Pillow reads
 * EXIF orientation from eXIf, from a tEXt "exif" chunk, from ImageMagick's
 * "Raw profile type exif" text and, without an Orientation tag, from the
 * XMP packet (iTXt "XML:com.adobe.xmp"); we walk the chunks ourselves for
 * those (and for tRNS, whose raw value Pillow uses unvalidated), so a
 * malformed ancillary chunk never fails the decode.
 *
 * Straight 8-bit images without tRNS decode directly into the result;
 * the rest decode row by row (or, when interlaced, into one temporary
 * buffer) and are converted.
 */
#include "codec_int.h"

#include <spng.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Pillow's limit for a decompressed zTXt/iTXt value (ImageFile.SAFEBLOCK). */
#define MAX_TEXT_CHUNK (1u << 20)

static uint32_t be32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

struct chunk {
  const uint8_t *data; /* NULL: absent */
  uint32_t len;
  char type[5];
};

/* The metadata Pillow's info dict would hold, before and after IDAT. */
struct meta {
  struct chunk exif, raw, xmp;
};

struct png_info {
  uint32_t width, height;
  uint8_t depth, ctype, interlace;
  struct chunk trns; /* last tRNS before IDAT */
  struct meta pre, post;
};

static int chunk_crc_ok(const uint8_t *p, uint32_t n)
{
  /* p points at the type; the CRC follows the data. */
  uLong c = crc32(0L, p, 4 + n);
  return (uint32_t)c == be32(p + 4 + n);
}

/* Remember a text chunk if its keyword is one Pillow's getexif() uses. */
static void note_text(struct meta *m, const char *type, const uint8_t *d,
                      uint32_t n, struct chunk c)
{
  const uint8_t *nul = memchr(d, 0, n);
  size_t klen = nul ? (size_t)(nul - d) : n;
  if (klen == 4 && !memcmp(d, "exif", 4)) {
    /* tEXt "exif" keeps raw bytes; zTXt/iTXt would be str, which makes
     * Pillow's Exif.load() raise, so those are not EXIF for us. */
    if (!strcmp(type, "tEXt")) m->exif = c;
  } else if (klen == 21 && !memcmp(d, "Raw profile type exif", 21)) {
    m->raw = c;
  } else if (klen == 17 && !memcmp(d, "XML:com.adobe.xmp", 17)) {
    m->xmp = c;
  }
}

/*
 * Walk the chunks: IHDR, the last tRNS before IDAT, and the metadata.
 * Stops quietly at a chunk that runs past the end (libspng reports the
 * truncation if it matters).
 */
static cutout_status walk_chunks(const uint8_t *data, size_t len,
                                 struct png_info *pi, char *err)
{
  memset(pi, 0, sizeof *pi);
  if (len < 8 + 8 + 13 + 4 || be32(data + 8) != 13 ||
      memcmp(data + 12, "IHDR", 4))
    return cutout__err(err, CUTOUT_EFORMAT,
                       "corrupt PNG: no IHDR chunk at the start");
  const uint8_t *h = data + 16;
  pi->width = be32(h);
  pi->height = be32(h + 4);
  pi->depth = h[8];
  pi->ctype = h[9];
  pi->interlace = h[12];
  int seen_idat = 0;
  size_t off = 8;
  while (off + 12 <= len) {
    uint32_t n = be32(data + off);
    if (n > len - off - 12) break;
    const uint8_t *tp = data + off + 4, *d = data + off + 8;
    struct chunk c = {d, n, {0}};
    memcpy(c.type, tp, 4);
    off += 12 + (size_t)n;
    if (!memcmp(tp, "IEND", 4)) break;
    if (!memcmp(tp, "IDAT", 4)) {
      seen_idat = 1;
      continue;
    }
    struct meta *m = seen_idat ? &pi->post : &pi->pre;
    int is_text = !memcmp(tp, "tEXt", 4) || !memcmp(tp, "zTXt", 4) ||
                  !memcmp(tp, "iTXt", 4);
    int is_exif = !memcmp(tp, "eXIf", 4);
    int is_trns = !memcmp(tp, "tRNS", 4) && !seen_idat;
    if (!is_text && !is_exif && !is_trns) continue;
    /* A chunk with a bad CRC is dropped, as libspng drops it. */
    if (!chunk_crc_ok(tp, n)) continue;
    if (is_trns)
      pi->trns = c;
    else if (is_exif)
      m->exif = c;
    else
      note_text(m, c.type, d, n, c);
  }
  return CUTOUT_OK;
}

/* zlib-inflate at most MAX_TEXT_CHUNK bytes; NULL when larger or broken
 * (Pillow raises or drops the value then). */
static char *inflate_text(const uint8_t *src, size_t n, size_t *out_len)
{
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit(&z) != Z_OK) return NULL;
  size_t cap = 4096, got = 0;
  char *buf = malloc(cap);
  z.next_in = (Bytef *)src;
  z.avail_in = (uInt)(n > 0xffffffffu ? 0xffffffffu : n);
  int r = Z_OK;
  while (buf) {
    z.next_out = (Bytef *)buf + got;
    z.avail_out = (uInt)(cap - got);
    r = inflate(&z, Z_NO_FLUSH);
    got = cap - z.avail_out;
    if (r == Z_STREAM_END) break;
    if (r != Z_OK || got > MAX_TEXT_CHUNK) {
      r = Z_DATA_ERROR;
      break;
    }
    if (z.avail_out == 0) {
      char *nb = cap > MAX_TEXT_CHUNK ? NULL : realloc(buf, cap * 2);
      if (!nb) {
        r = Z_DATA_ERROR;
        break;
      }
      buf = nb;
      cap *= 2;
    } else if (z.avail_in == 0) {
      r = Z_DATA_ERROR; /* truncated stream */
      break;
    }
  }
  inflateEnd(&z);
  if (r != Z_STREAM_END || got > MAX_TEXT_CHUNK) {
    free(buf);
    return NULL;
  }
  *out_len = got;
  return buf;
}

/* The value of a tEXt / zTXt / iTXt chunk as Pillow decodes it; NULL
 * when Pillow would not store one.  Returns a malloc'd copy. */
static char *text_value(const struct chunk *c, size_t *vlen)
{
  const uint8_t *d = c->data, *end = d + c->len;
  const uint8_t *nul = memchr(d, 0, c->len);
  if (!nul) return NULL;
  const uint8_t *v = nul + 1;
  if (!strcmp(c->type, "tEXt")) {
    char *s = malloc((size_t)(end - v) + 1);
    if (!s) return NULL;
    memcpy(s, v, (size_t)(end - v));
    *vlen = (size_t)(end - v);
    return s;
  }
  if (!strcmp(c->type, "zTXt")) {
    if (v >= end || v[0] != 0) return NULL;
    return inflate_text(v + 1, (size_t)(end - v - 1), vlen);
  }
  /* iTXt: flag, method, language\0, translated keyword\0, text. */
  if (end - v < 2) return NULL;
  int cflag = v[0], cmethod = v[1];
  const uint8_t *p = v + 2;
  for (int i = 0; i < 2; i++) {
    const uint8_t *z = memchr(p, 0, (size_t)(end - p));
    if (!z) return NULL;
    p = z + 1;
  }
  if (cflag != 0) {
    if (cmethod != 0) return NULL;
    return inflate_text(p, (size_t)(end - p), vlen);
  }
  char *s = malloc((size_t)(end - p) + 1);
  if (!s) return NULL;
  memcpy(s, p, (size_t)(end - p));
  *vlen = (size_t)(end - p);
  return s;
}

/*
 * Pillow's order: exif_transpose() calls getexif(), which loads the image
 * (reading the chunks after IDAT into the same info dict) only when no
 * "exif" was found before IDAT.  Then "exif", else "Raw profile type exif";
 * and the XMP packet only if no Orientation tag turned up.
 */
static int png_orientation(const struct png_info *pi)
{
  struct meta m = pi->pre;
  if (!m.exif.data) {
    if (pi->post.exif.data) m.exif = pi->post.exif;
    if (pi->post.raw.data) m.raw = pi->post.raw;
    if (pi->post.xmp.data) m.xmp = pi->post.xmp;
  }
  int o = 0;
  if (m.exif.data) {
    if (!strcmp(m.exif.type, "eXIf")) {
      o = cutout__exif_orientation(m.exif.data, m.exif.len);
    } else {
      size_t n = 0;
      char *v = text_value(&m.exif, &n);
      if (v) o = cutout__exif_orientation((const uint8_t *)v, n);
      free(v);
    }
  } else if (m.raw.data) {
    size_t n = 0;
    char *v = text_value(&m.raw, &n);
    if (v) o = cutout__raw_profile_orientation(v, n);
    free(v);
  }
  if (o == 0 && m.xmp.data) {
    size_t n = 0;
    char *v = text_value(&m.xmp, &n);
    if (v) o = cutout__xmp_orientation(v, n);
    free(v);
  }
  return o;
}

/* What one decoded (SPNG_FMT_PNG) row becomes. */
struct conv {
  uint32_t width;
  uint8_t depth, ctype;
  int has_trns;
  uint16_t key[3];            /* grey or RGB colour key */
  uint8_t pal[256][4];        /* palette with alpha */
};

static unsigned sample_at(const uint8_t *row, uint32_t x, unsigned depth)
{
  /* Sub-byte samples are packed MSB first. */
  unsigned per = 8 / depth, shift = 8 - depth * (x % per + 1);
  return (row[x / per] >> shift) & ((1u << depth) - 1);
}

/* A host-endian 16-bit sample (libspng's SPNG_FMT_PNG). */
static inline unsigned rd16(const uint8_t *src, size_t i)
{
  uint16_t v;
  memcpy(&v, src + 2 * i, 2);
  return v;
}

static void convert_row(const struct conv *cv, const uint8_t *src,
                        uint8_t *dst)
{
  const uint32_t w = cv->width;
  switch (cv->ctype) {
  case 0: { /* grey */
    const uint8_t kg = (uint8_t)cv->key[0];
    for (uint32_t x = 0; x < w; x++) {
      unsigned v;
      switch (cv->depth) {
      case 1: v = sample_at(src, x, 1) ? 255 : 0; break;
      case 2: v = sample_at(src, x, 2) * 85; break;
      case 4: v = sample_at(src, x, 4) * 17; break;
      case 8: v = src[x]; break;
      default: v = rd16(src, x); v = v > 255 ? 255 : v; break;
      }
      if (cv->has_trns) {
        dst[2 * x] = (uint8_t)v;
        dst[2 * x + 1] = v == kg ? 0 : 255;
      } else {
        dst[x] = (uint8_t)v;
      }
    }
    break;
  }
  case 2: { /* RGB */
    const uint8_t kr = (uint8_t)cv->key[0], kg = (uint8_t)cv->key[1],
                  kb = (uint8_t)cv->key[2];
    const size_t oc = cv->has_trns ? 4 : 3;
    for (uint32_t x = 0; x < w; x++, dst += oc) {
      uint8_t r, g, b;
      if (cv->depth == 8) {
        r = src[3 * x];
        g = src[3 * x + 1];
        b = src[3 * x + 2];
      } else {
        r = (uint8_t)(rd16(src, 3 * x) >> 8);
        g = (uint8_t)(rd16(src, 3 * x + 1) >> 8);
        b = (uint8_t)(rd16(src, 3 * x + 2) >> 8);
      }
      dst[0] = r;
      dst[1] = g;
      dst[2] = b;
      if (oc == 4) dst[3] = (r == kr && g == kg && b == kb) ? 0 : 255;
    }
    break;
  }
  case 3: { /* palette */
    const size_t oc = cv->has_trns ? 4 : 3;
    for (uint32_t x = 0; x < w; x++, dst += oc) {
      unsigned i = cv->depth == 8 ? src[x] : sample_at(src, x, cv->depth);
      memcpy(dst, cv->pal[i], oc);
    }
    break;
  }
  case 4: /* grey + alpha, 16-bit only here: Pillow makes it RGBA */
    for (uint32_t x = 0; x < w; x++, dst += 4) {
      uint8_t l = (uint8_t)(rd16(src, 2 * x) >> 8);
      dst[0] = dst[1] = dst[2] = l;
      dst[3] = (uint8_t)(rd16(src, 2 * x + 1) >> 8);
    }
    break;
  default: /* RGBA 16 */
    for (size_t i = 0; i < (size_t)w * 4; i++) dst[i] = (uint8_t)(rd16(src, i) >> 8);
    break;
  }
}

static cutout_status spng_fail(int r, char *err)
{
  if (r == SPNG_EMEM) return cutout__err(err, CUTOUT_ENOMEM, "out of memory");
  return cutout__err(err, CUTOUT_EFORMAT, "corrupt or truncated PNG: %s",
                     spng_strerror(r));
}

cutout_status cutout__decode_png(const uint8_t *data, size_t len,
                                 const cutout_decode_limits *lim,
                                 cutout_image **out, int *orientation,
                                 char *err)
{
  struct png_info pi;
  cutout_status st = walk_chunks(data, len, &pi, err);
  if (st != CUTOUT_OK) return st;
  if ((st = cutout__check_dims(pi.width, pi.height, lim, "PNG", err)))
    return st;

  spng_ctx *ctx = spng_ctx_new(SPNG_CTX_IGNORE_ADLER32);
  if (!ctx) return cutout__err(err, CUTOUT_ENOMEM, "out of memory");
  cutout_image *img = NULL;
  uint8_t *tmp = NULL;
  struct conv *cv = NULL;
  int r;
  /* Ancillary chunks may hold at most 64 MiB in total (zTXt bombs). */
  spng_set_chunk_limits(ctx, len > 0x7fffffff ? 0x7fffffff : len,
                        (size_t)64 << 20);
  spng_set_png_buffer(ctx, data, len);
  struct spng_ihdr ih;
  if ((r = spng_get_ihdr(ctx, &ih))) {
    st = spng_fail(r, err);
    goto done;
  }

  const int ct = ih.color_type, bd = ih.bit_depth;
  const struct chunk *t = &pi.trns;
  int trns = 0;
  if (t->data) {
    if (ct == 0 && t->len >= 2) trns = 1;
    if (ct == 2 && t->len >= 6) trns = 1;
    if (ct == 3) trns = 1;
  }
  uint32_t channels;
  switch (ct) {
  case 0: channels = trns ? 2 : 1; break;
  case 2: channels = trns ? 4 : 3; break;
  case 3: channels = trns ? 4 : 3; break;
  case 4: channels = bd == 8 ? 2 : 4; break;
  default: channels = 4; break;
  }
  size_t raw_size = 0;
  if ((r = spng_decoded_image_size(ctx, SPNG_FMT_PNG, &raw_size))) {
    st = spng_fail(r, err);
    goto done;
  }
  if ((st = cutout_image_new(ih.width, ih.height, channels, &img))) {
    cutout__err(err, st, "cannot allocate a %ux%u image", ih.width, ih.height);
    goto done;
  }

  if (bd == 8 && ct != 3 && !trns) {
    /* The common case: libspng writes the final pixels. */
    if (raw_size != img->stride * img->height) {
      st = cutout__err(err, CUTOUT_EFORMAT, "PNG decoder size mismatch");
      goto done;
    }
    if ((r = spng_decode_image(ctx, img->pixels, raw_size, SPNG_FMT_PNG, 0)))
      st = spng_fail(r, err);
    goto done;
  }

  cv = calloc(1, sizeof *cv);
  if (!cv) {
    st = cutout__err(err, CUTOUT_ENOMEM, "out of memory");
    goto done;
  }
  cv->width = ih.width;
  cv->depth = (uint8_t)bd;
  cv->ctype = (uint8_t)ct;
  cv->has_trns = trns;
  if (trns && ct == 0) cv->key[0] = (uint16_t)(t->data[0] << 8 | t->data[1]);
  if (trns && ct == 2)
    for (int i = 0; i < 3; i++)
      cv->key[i] = (uint16_t)(t->data[2 * i] << 8 | t->data[2 * i + 1]);
  if (ct == 3) {
    struct spng_plte plte;
    /* Pillow's palette starts as a grey ramp; PLTE overwrites the head. */
    for (int i = 0; i < 256; i++) {
      cv->pal[i][0] = cv->pal[i][1] = cv->pal[i][2] = (uint8_t)i;
      cv->pal[i][3] = 255;
    }
    if ((r = spng_get_plte(ctx, &plte))) {
      st = spng_fail(r, err);
      goto done;
    }
    for (uint32_t i = 0; i < plte.n_entries && i < 256; i++) {
      cv->pal[i][0] = plte.entries[i].red;
      cv->pal[i][1] = plte.entries[i].green;
      cv->pal[i][2] = plte.entries[i].blue;
    }
    if (trns)
      for (uint32_t i = 0; i < t->len && i < 256; i++)
        cv->pal[i][3] = t->data[i];
  }

  const size_t row_bytes = raw_size / ih.height;
  if (ih.interlace_method) {
    /* Adam7 rows come pass by pass: decode whole, then convert.  Zeroed:
     * libspng ORs sub-byte pixels into place. */
    tmp = calloc(raw_size, 1);
    if (!tmp) {
      st = cutout__err(err, CUTOUT_ENOMEM, "out of memory");
      goto done;
    }
    if ((r = spng_decode_image(ctx, tmp, raw_size, SPNG_FMT_PNG, 0))) {
      st = spng_fail(r, err);
      goto done;
    }
    for (uint32_t y = 0; y < ih.height; y++)
      convert_row(cv, tmp + y * row_bytes, img->pixels + y * img->stride);
  } else {
    tmp = malloc(row_bytes + 8);
    if (!tmp) {
      st = cutout__err(err, CUTOUT_ENOMEM, "out of memory");
      goto done;
    }
    if ((r = spng_decode_image(ctx, NULL, 0, SPNG_FMT_PNG,
                               SPNG_DECODE_PROGRESSIVE))) {
      st = spng_fail(r, err);
      goto done;
    }
    struct spng_row_info ri;
    do {
      if ((r = spng_get_row_info(ctx, &ri))) break;
      r = spng_decode_row(ctx, tmp, row_bytes);
      if (r == 0 || r == SPNG_EOI)
        convert_row(cv, tmp, img->pixels + (size_t)ri.row_num * img->stride);
    } while (r == 0);
    if (r != SPNG_EOI) st = spng_fail(r, err);
  }

done:
  spng_ctx_free(ctx);
  free(tmp);
  free(cv);
  if (st != CUTOUT_OK) {
    cutout_image_free(img);
    return st;
  }
  *orientation = png_orientation(&pi);
  *out = img;
  return CUTOUT_OK;
}
