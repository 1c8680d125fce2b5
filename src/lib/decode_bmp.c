/*
 * decode_bmp.c: Windows / OS/2 bitmaps, read the way Pillow 9.4's
 * BmpImagePlugin reads them, with every offset and size checked against
 * the buffer.
 *
 * What Pillow accepts, and so what we accept:
 *  - DIB headers of 12 (OS/2 v1, 16-bit sizes, BGR palette), 40, 64, 108
 *    and 124 bytes; a height whose top byte is 0xFF means top-down rows.
 *  - 1/4/8-bit palette images, uncompressed or RLE8/RLE4.  A palette of
 *    exact greys (0,255 for two colours; i,i,i for entry i otherwise) makes
 *    Pillow open the file as L, anything else is P (we expand it to RGB;
 *    indices past the palette read Pillow's default grey ramp).
 *  - 16-bit: BI_RGB is 5-5-5; BI_BITFIELDS 5-6-5 or 5-5-5, scaled as
 *    v*255/31 (v*255/63 for 6-bit green).
 *  - 24-bit BGR; 32-bit BI_RGB is BGRX: the fourth byte is IGNORED (RGB).
 *    32-bit BI_BITFIELDS with one of Pillow's five mask sets gives BGRX /
 *    XBGR (RGB) or ABGR / RGBA / BGRA (RGBA; all-zero masks mean BGRA).
 *  - If the pixel offset points right after the header, Pillow assumes a
 *    palette of 4*colours bytes sits there and skips it.
 * RLE follows Pillow's BmpRleDecoder step by step, quirks included: its
 * row clipping, its 16-bit re-alignment by file position, the delta
 * escape that reads its offsets from the two bytes AFTER the ones the
 * format defines, and RLE4 absolute runs of odd length that lose their
 * last pixel.  RLE data that ends before the image is full is an error
 * there and here.
 */
#include "codec_int.h"

#include <stdlib.h>
#include <string.h>

enum { RAW = 0, RLE8 = 1, RLE4 = 2, BITFIELDS = 3 };

enum pix {
  PX_INDEX,  /* 1/4/8-bit palette index */
  PX_BGR15,
  PX_BGR16,
  PX_BGR,
  PX_BGRX,
  PX_XBGR,
  PX_ABGR,
  PX_RGBA,
  PX_BGRA
};

static uint32_t le32(const uint8_t *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}
static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

struct bmp {
  uint32_t width, height, bits, compression, colors;
  int top_down;
  enum pix px;
  int grey;           /* palette of exact greys: Pillow mode L / "1" */
  uint8_t pal[256][3];
  size_t offset;      /* pixel data */
};

static cutout_status bad(char *err, const char *why)
{
  return cutout__err(err, CUTOUT_EFORMAT, "corrupt or unsupported BMP: %s",
                     why);
}

static cutout_status parse_header(const uint8_t *d, size_t len, struct bmp *b,
                                  char *err)
{
  memset(b, 0, sizeof *b);
  if (len < 18) return bad(err, "file too short for its header");
  size_t offset = le32(d + 10);
  uint32_t hsize = le32(d + 14);
  if (hsize != 12 && hsize != 40 && hsize != 64 && hsize != 108 &&
      hsize != 124)
    return bad(err, "unknown DIB header size");
  if (len < 14 + (size_t)hsize) return bad(err, "truncated header");
  const uint8_t *h = d + 18; /* the header after its size field */
  size_t pos = 14 + (size_t)hsize; /* Pillow's file position */
  uint32_t masks[4] = {0, 0, 0, 0};
  int palette_padding;
  if (hsize == 12) {
    b->width = le16(h);
    b->height = le16(h + 2);
    b->bits = le16(h + 6);
    b->compression = RAW;
    palette_padding = 3;
  } else {
    b->top_down = h[7] == 0xFF;
    b->width = le32(h);
    b->height = b->top_down ? (uint32_t)(0u - le32(h + 4)) : le32(h + 4);
    b->bits = le16(h + 10);
    b->compression = le32(h + 12);
    b->colors = le32(h + 28);
    palette_padding = 4;
    if (b->compression == BITFIELDS) {
      if (hsize - 4 >= 52) {
        for (int i = 0; i < 4; i++) masks[i] = le32(h + 36 + 4 * i);
      } else {
        /* A 40-byte header keeps three masks after it; the fourth
         * RGBQUAD byte is reserved, not alpha. */
        if (len < pos + 12) return bad(err, "truncated bitfield masks");
        for (int i = 0; i < 3; i++) masks[i] = le32(d + pos + 4 * i);
        pos += 12;
      }
    }
  }
  uint64_t colors = b->colors;
  if (!colors && b->bits <= 8) colors = 1ull << b->bits;
  if (offset == 14 + (size_t)hsize && b->bits <= 8) offset += 4 * colors;
  b->offset = offset;

  switch (b->bits) {
  case 1: case 4: case 8: b->px = PX_INDEX; break;
  case 16: b->px = PX_BGR15; break;
  case 24: b->px = PX_BGR; break;
  case 32: b->px = PX_BGRX; break;
  default: return bad(err, "unsupported pixel depth");
  }

  if (b->compression == BITFIELDS) {
    static const struct { uint32_t bits, m[4]; enum pix px; } known[] = {
        {32, {0xFF0000, 0xFF00, 0xFF, 0}, PX_BGRX},
        {32, {0xFF000000, 0xFF0000, 0xFF00, 0}, PX_XBGR},
        {32, {0xFF000000, 0xFF0000, 0xFF00, 0xFF}, PX_ABGR},
        {32, {0xFF, 0xFF00, 0xFF0000, 0xFF000000}, PX_RGBA},
        {32, {0xFF0000, 0xFF00, 0xFF, 0xFF000000}, PX_BGRA},
        {32, {0, 0, 0, 0}, PX_BGRA},
        {24, {0xFF0000, 0xFF00, 0xFF, 0}, PX_BGR},
        {16, {0xF800, 0x7E0, 0x1F, 0}, PX_BGR16},
        {16, {0x7C00, 0x3E0, 0x1F, 0}, PX_BGR15},
    };
    int found = 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0] && !found; i++) {
      if (known[i].bits != b->bits) continue;
      /* 32-bit layouts compare all four masks, 16/24-bit only RGB. */
      int n = b->bits == 32 ? 4 : 3;
      if (!memcmp(known[i].m, masks, sizeof(uint32_t) * (size_t)n)) {
        b->px = known[i].px;
        found = 1;
      }
    }
    if (!found) return bad(err, "unsupported bitfields layout");
  } else if (b->compression == RLE8 || b->compression == RLE4) {
    if (b->bits != (b->compression == RLE8 ? 8u : 4u))
      return bad(err, "RLE compression with the wrong bit depth");
  } else if (b->compression != RAW) {
    return bad(err, "unsupported compression");
  }

  if (b->px == PX_INDEX) {
    /* Pillow's palette: a grey ramp, the file's entries over its head. */
    for (int i = 0; i < 256; i++) b->pal[i][0] = b->pal[i][1] = b->pal[i][2] = (uint8_t)i;
    if (colors == 0 || colors > 256)
      return bad(err, "palette size out of range");
    if (len < pos || (len - pos) / (size_t)palette_padding < colors)
      return bad(err, "truncated palette");
    b->grey = 1;
    for (uint32_t i = 0; i < colors; i++) {
      const uint8_t *e = d + pos + (size_t)i * (size_t)palette_padding;
      b->pal[i][0] = e[2];
      b->pal[i][1] = e[1];
      b->pal[i][2] = e[0];
      uint8_t want = colors == 2 ? (i ? 255 : 0) : (uint8_t)i;
      if (e[0] != want || e[1] != want || e[2] != want) b->grey = 0;
    }
  }
  return CUTOUT_OK;
}

/* Pillow's BmpRleDecoder: fill idx (w*h palette indices, data rows in
 * file order) and report whether it got a whole image. */
static int rle_decode(const uint8_t *d, size_t len, size_t pos, int rle4,
                      uint32_t w, uint32_t h, uint8_t *idx)
{
  const size_t total = (size_t)w * h;
  size_t n = 0, x = 0;
#define EMIT(v)                      \
  do {                               \
    if (n < total) idx[n] = (v);     \
    n++;                             \
  } while (0)
  while (n < total) {
    if (pos + 2 > len) break;
    size_t count = d[pos];
    uint8_t byte = d[pos + 1];
    pos += 2;
    if (count) {
      /* encoded run, clipped at the end of the row */
      if (x + count > w) count = x < w ? w - x : 0;
      for (size_t i = 0; i < count; i++)
        EMIT(rle4 ? (i % 2 == 0 ? byte >> 4 : byte & 0x0F) : byte);
      x += count;
    } else if (byte == 0) { /* end of line: pad to a row boundary */
      if (n % w) n += w - n % w;
      x = 0;
    } else if (byte == 1) { /* end of bitmap */
      break;
    } else if (byte == 2) {
      /* delta: skipped pixels are index 0.  Pillow 9.4 reads two bytes,
       * drops them and takes right/up from the NEXT two (and raises if
       * those are missing); we do the same. */
      if (pos + 2 > len) break;
      pos += 2;
      if (pos + 2 > len) return 0;
      size_t right = d[pos], up = d[pos + 1];
      pos += 2;
      n += right + up * w;
      x = n % w;
    } else { /* absolute run */
      size_t want = rle4 ? byte / 2u : byte;
      size_t got = len - pos < want ? len - pos : want;
      for (size_t i = 0; i < got; i++) {
        if (rle4) {
          EMIT(d[pos + i] >> 4);
          EMIT(d[pos + i] & 0x0F);
        } else {
          EMIT(d[pos + i]);
        }
      }
      pos += got;
      if (got < want) break;
      x += byte;
      if (pos % 2) pos++; /* 16-bit alignment, by file position */
    }
  }
#undef EMIT
  return n >= total;
}

static void put_index(const struct bmp *b, uint8_t *dst, unsigned i)
{
  if (b->grey)
    dst[0] = b->pal[i][0];
  else
    memcpy(dst, b->pal[i], 3);
}

cutout_status cutout__decode_bmp(const uint8_t *data, size_t len,
                                 const cutout_decode_limits *lim,
                                 cutout_image **out, int *orientation,
                                 char *err)
{
  struct bmp *b = malloc(sizeof *b);
  if (!b) return cutout__err(err, CUTOUT_ENOMEM, "out of memory");
  cutout_image *img = NULL;
  uint8_t *idx = NULL;
  cutout_status st = parse_header(data, len, b, err);
  if (st) goto done;
  if ((st = cutout__check_dims(b->width, b->height, lim, "BMP", err)))
    goto done;
  uint32_t ch;
  switch (b->px) {
  case PX_INDEX: ch = b->grey ? 1 : 3; break;
  case PX_ABGR: case PX_RGBA: case PX_BGRA: ch = 4; break;
  default: ch = 3; break;
  }
  const uint32_t w = b->width, h = b->height;
  if ((st = cutout_image_new(w, h, ch, &img))) {
    cutout__err(err, st, "cannot allocate a %ux%u image", w, h);
    goto done;
  }
  if (b->offset > len) {
    st = bad(err, "pixel data offset past the end of the file");
    goto done;
  }

  if (b->compression == RLE8 || b->compression == RLE4) {
    idx = calloc((size_t)w * h, 1);
    if (!idx) {
      st = cutout__err(err, CUTOUT_ENOMEM, "out of memory");
      goto done;
    }
    if (!rle_decode(data, len, b->offset, b->compression == RLE4, w, h, idx)) {
      st = bad(err, "RLE data ends before the image is complete");
      goto done;
    }
    for (uint32_t r = 0; r < h; r++) {
      uint32_t y = b->top_down ? r : h - 1 - r;
      uint8_t *dst = img->pixels + (size_t)y * img->stride;
      const uint8_t *src = idx + (size_t)r * w;
      for (uint32_t x = 0; x < w; x++, dst += ch) put_index(b, dst, src[x]);
    }
    goto done;
  }

  /* Uncompressed rows are padded to 4 bytes; the last row needs only its
   * own bytes. */
  const size_t stride = (((size_t)w * b->bits + 31) >> 3) & ~(size_t)3;
  const size_t rowbytes = ((size_t)w * b->bits + 7) / 8;
  if ((len - b->offset) < rowbytes ||
      (len - b->offset - rowbytes) / stride < (size_t)h - 1) {
    st = cutout__err(err, CUTOUT_EFORMAT, "BMP file is truncated");
    goto done;
  }
  for (uint32_t r = 0; r < h; r++) {
    uint32_t y = b->top_down ? r : h - 1 - r;
    const uint8_t *s = data + b->offset + (size_t)r * stride;
    uint8_t *dst = img->pixels + (size_t)y * img->stride;
    switch (b->px) {
    case PX_INDEX:
      for (uint32_t x = 0; x < w; x++, dst += ch) {
        unsigned i;
        if (b->bits == 8) i = s[x];
        else if (b->bits == 4) i = (s[x / 2] >> (x % 2 ? 0 : 4)) & 0x0F;
        else i = (s[x / 8] >> (7 - x % 8)) & 1;
        put_index(b, dst, i);
      }
      break;
    case PX_BGR15:
    case PX_BGR16:
      for (uint32_t x = 0; x < w; x++, dst += 3) {
        unsigned v = le16(s + 2 * (size_t)x);
        if (b->px == PX_BGR15) {
          dst[0] = (uint8_t)(((v >> 10) & 31) * 255 / 31);
          dst[1] = (uint8_t)(((v >> 5) & 31) * 255 / 31);
        } else {
          dst[0] = (uint8_t)(((v >> 11) & 31) * 255 / 31);
          dst[1] = (uint8_t)(((v >> 5) & 63) * 255 / 63);
        }
        dst[2] = (uint8_t)((v & 31) * 255 / 31);
      }
      break;
    case PX_BGR:
      for (uint32_t x = 0; x < w; x++, s += 3, dst += 3) {
        dst[0] = s[2];
        dst[1] = s[1];
        dst[2] = s[0];
      }
      break;
    default: {
      /* 32-bit: byte positions of R, G, B, A within each pixel. */
      static const int order[][4] = {
          [PX_BGRX] = {2, 1, 0, -1}, [PX_XBGR] = {3, 2, 1, -1},
          [PX_ABGR] = {3, 2, 1, 0},  [PX_RGBA] = {0, 1, 2, 3},
          [PX_BGRA] = {2, 1, 0, 3},
      };
      const int *o = order[b->px];
      for (uint32_t x = 0; x < w; x++, s += 4, dst += ch) {
        dst[0] = s[o[0]];
        dst[1] = s[o[1]];
        dst[2] = s[o[2]];
        if (ch == 4) dst[3] = s[o[3]];
      }
      break;
    }
    }
  }

done:
  free(idx);
  free(b);
  if (st != CUTOUT_OK) {
    cutout_image_free(img);
    return st;
  }
  *orientation = 1;
  *out = img;
  return CUTOUT_OK;
}
