/*
 * encode_png.c: the PNG writer, rembg's default output.
 *
 * GOALS: a valid 8-bit PNG (colour type 0/4/2/6 for L/LA/RGB/RGBA, chunks
 * IHDR, IDAT..., IEND as Pillow writes them), never larger than Pillow's
 * Image.save(f, "PNG"), and fast on 24-megapixel cutouts with all cores.
 *
 * DESIGN
 * Filtering is Pillow's (ZipEncode.c): per row, the filter among None,
 * Up, Sub, Paeth (in that order, ties to the earlier) with the smallest
 * sum of |signed byte|.  Pillow then deflates everything as ONE zlib
 * stream, level 6, strategy Z_FILTERED, which on this machine runs at
 * about 20-40 MB/s: 4-5 s for a 6000x4000 RGBA cutout.
 *
 * We cut the filtered rows into segments of about 512 KiB and compress
 * each one independently, the pigz way: a raw deflate stream primed with
 * the previous 32 KiB (re-filtered from the image), ending in a sync
 * flush so the pieces concatenate into one valid zlib stream; the Adler-32
 * trailer is combined from per-segment checksums.  Each segment tries
 * several compressors and keeps the smallest output:
 *
 *   rle  zlib Z_RLE: very fast, and the best on noisy photo texture and
 *        on masks;
 *   ld   libdeflate (level 7 for Pillow's 6): 3-4x faster than zlib with
 *        better matches on smooth content.  It cannot prime a dictionary
 *        or stop without a final block, so a segment it wins is scanned
 *        once with zlib's inflate(Z_BLOCK) to find and clear the BFINAL
 *        bit, then closed with an empty stored block like a sync flush;
 *   zf   zlib level 6 Z_FILTERED: Pillow's own settings, the best on flat
 *        colours (anime, logos), and slow;
 *   zf2  the same a level up: on smooth content (an upscaled photo) about
 *        2% smaller than Pillow and cheaper than all the others together.
 *
 * Images up to 2 MiB of filtered data run rle, ld and zf on every segment.
 * Larger ones first run those three on every 4th/8th/16th segment, the
 * probes, then keep for the rest the cheapest set of compressors that
 * beat zf alone (Pillow) by 0.5% on the probes and stay within 0.3% of
 * all of them together: on noisy photos that is rle alone, on smooth ones
 * ld alone.  When the set needs zf, zf2 is tried on the probes too and
 * replaces the set when it qualifies alone for less: a 24 MP smooth
 * cutout then encodes in 0.8 s instead of 1.1 s on 2 cores, 2% smaller.
 * Costs are fixed weights, so the choice depends on the pixels only.
 *
 * Small images (up to 2 MiB filtered) also compress the whole image as
 * one stream with Pillow's exact settings, and keep it when the segments
 * do not beat it: those can never come out larger than Pillow's.  Larger
 * ones win by mixing the best compressor per segment (0.1-9% smaller
 * than Pillow on the cutouts we measured).  The output depends only on
 * the pixels and the level, never on the thread count.
 */
#include "codec_int.h"

#include <libdeflate.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SEG_TARGET ((size_t)512 << 10) /* filtered bytes per segment */
#define DICT_MAX ((size_t)32768)
#define IDAT_MAX ((size_t)1 << 20)      /* payload bytes per IDAT chunk */
#define ZF_ALWAYS_BELOW ((size_t)2 << 20)
/* Probe every 4th segment, every 8th from 16 segments, every 16th from
 * 64 on. */
#define PROBE_STEP(nseg) ((nseg) >= 64 ? 16u : (nseg) >= 16 ? 8u : 4u)

/* ---------------------------------------------------------------- filter */

static inline unsigned absb(uint8_t v) { return v < 128 ? v : 256u - v; }

static inline uint8_t paeth(int a, int b, int c)
{
  int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
  return (uint8_t)((pa <= pb && pa <= pc) ? a : (pb <= pc) ? b : c);
}

#ifdef __SSE2__
#include <emmintrin.h>

/* |signed byte| per lane: min(x, -x) as unsigned bytes (128 stays 128). */
static inline __m128i absb16(__m128i x)
{
  return _mm_min_epu8(x, _mm_sub_epi8(_mm_setzero_si128(), x));
}

static inline __m128i abs16(__m128i x)
{
  return _mm_max_epi16(x, _mm_sub_epi16(_mm_setzero_si128(), x));
}

/* Paeth predictor for 8 pixels' bytes widened to 16 bits. */
static inline __m128i paeth8(__m128i a, __m128i b, __m128i c)
{
  __m128i d1 = _mm_sub_epi16(b, c), d2 = _mm_sub_epi16(a, c);
  __m128i pa = abs16(d1), pb = abs16(d2), pc = abs16(_mm_add_epi16(d1, d2));
  __m128i not_a = _mm_or_si128(_mm_cmpgt_epi16(pa, pb), _mm_cmpgt_epi16(pa, pc));
  __m128i not_b = _mm_cmpgt_epi16(pb, pc);
  __m128i bc = _mm_or_si128(_mm_andnot_si128(not_b, b), _mm_and_si128(not_b, c));
  return _mm_or_si128(_mm_andnot_si128(not_a, a), _mm_and_si128(not_a, bc));
}

static inline __m128i paeth16(__m128i a, __m128i b, __m128i c)
{
  const __m128i z = _mm_setzero_si128();
  __m128i lo = paeth8(_mm_unpacklo_epi8(a, z), _mm_unpacklo_epi8(b, z),
                      _mm_unpacklo_epi8(c, z));
  __m128i hi = paeth8(_mm_unpackhi_epi8(a, z), _mm_unpackhi_epi8(b, z),
                      _mm_unpackhi_epi8(c, z));
  return _mm_packus_epi16(lo, hi);
}

#define LD(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#endif

/*
 * The four sums of Pillow's heuristic (None, Up, Sub, Paeth) in one pass.
 * prev == NULL: first row (Up and Paeth are not candidates then).
 */
static void filter_sums(const uint8_t *cur, const uint8_t *prev, size_t rb,
                        size_t bpp, uint64_t sum[4])
{
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i < bpp && i < rb; i++) {
    s0 += absb(cur[i]);
    s2 += absb(cur[i]);
    if (prev) {
      s1 += absb((uint8_t)(cur[i] - prev[i]));
      s3 += absb((uint8_t)(cur[i] - prev[i]));
    }
  }
#ifdef __SSE2__
  {
    const __m128i z = _mm_setzero_si128();
    __m128i a0 = z, a1 = z, a2 = z, a3 = z;
    for (; i + 16 <= rb; i += 16) {
      __m128i x = LD(cur + i), a = LD(cur + i - bpp);
      a0 = _mm_add_epi64(a0, _mm_sad_epu8(absb16(x), z));
      a2 = _mm_add_epi64(a2, _mm_sad_epu8(absb16(_mm_sub_epi8(x, a)), z));
      if (prev) {
        __m128i b = LD(prev + i), c = LD(prev + i - bpp);
        a1 = _mm_add_epi64(a1, _mm_sad_epu8(absb16(_mm_sub_epi8(x, b)), z));
        a3 = _mm_add_epi64(
            a3, _mm_sad_epu8(absb16(_mm_sub_epi8(x, paeth16(a, b, c))), z));
      }
    }
    uint64_t t[2];
    _mm_storeu_si128((__m128i *)(void *)t, a0); s0 += t[0] + t[1];
    _mm_storeu_si128((__m128i *)(void *)t, a1); s1 += t[0] + t[1];
    _mm_storeu_si128((__m128i *)(void *)t, a2); s2 += t[0] + t[1];
    _mm_storeu_si128((__m128i *)(void *)t, a3); s3 += t[0] + t[1];
  }
#endif
  for (; i < rb; i++) {
    s0 += absb(cur[i]);
    s2 += absb((uint8_t)(cur[i] - cur[i - bpp]));
    if (prev) {
      s1 += absb((uint8_t)(cur[i] - prev[i]));
      s3 += absb((uint8_t)(cur[i] -
                           paeth(cur[i - bpp], prev[i], prev[i - bpp])));
    }
  }
  sum[0] = s0;
  sum[1] = s1;
  sum[2] = s2;
  sum[3] = s3;
}

/*
 * One row the way Pillow's ZipEncode.c filters it: the smallest sum of
 * |signed byte| among None, Up, Sub, Paeth, tried in that order, a later
 * one winning only when strictly smaller.  prev == NULL is the row above
 * the first (zeros): there Up equals None and Paeth equals Sub, so Pillow
 * never picks them and skipping them is the same choice.  out gets the
 * filter byte + rb bytes.
 */
static void filter_row(const uint8_t *cur, const uint8_t *prev, size_t rb,
                       size_t bpp, uint8_t *out)
{
  uint64_t sum[4];
  int f = 0;
  filter_sums(cur, prev, rb, bpp, sum);
  uint64_t best = sum[0];
  if (best > 0 && prev && sum[1] < best) { best = sum[1]; f = 2; }
  if (best > 0 && sum[2] < best) { best = sum[2]; f = 1; }
  if (best > 0 && prev && sum[3] < best) { best = sum[3]; f = 4; }
  out[0] = (uint8_t)f;
  uint8_t *o = out + 1;
  size_t i = 0;
  switch (f) {
  case 0:
    memcpy(o, cur, rb);
    break;
  case 2:
#ifdef __SSE2__
    for (; i + 16 <= rb; i += 16)
      _mm_storeu_si128((__m128i *)(void *)(o + i),
                       _mm_sub_epi8(LD(cur + i), LD(prev + i)));
#endif
    for (; i < rb; i++) o[i] = (uint8_t)(cur[i] - prev[i]);
    break;
  case 1:
    for (; i < bpp && i < rb; i++) o[i] = cur[i];
#ifdef __SSE2__
    for (; i + 16 <= rb; i += 16)
      _mm_storeu_si128((__m128i *)(void *)(o + i),
                       _mm_sub_epi8(LD(cur + i), LD(cur + i - bpp)));
#endif
    for (; i < rb; i++) o[i] = (uint8_t)(cur[i] - cur[i - bpp]);
    break;
  default:
    for (; i < bpp && i < rb; i++) o[i] = (uint8_t)(cur[i] - prev[i]);
#ifdef __SSE2__
    for (; i + 16 <= rb; i += 16)
      _mm_storeu_si128(
          (__m128i *)(void *)(o + i),
          _mm_sub_epi8(LD(cur + i), paeth16(LD(cur + i - bpp), LD(prev + i),
                                            LD(prev + i - bpp))));
#endif
    for (; i < rb; i++)
      o[i] = (uint8_t)(cur[i] - paeth(cur[i - bpp], prev[i], prev[i - bpp]));
    break;
  }
}

/* ---------------------------------------------------------------- jobs */

/* The compressors.  C_ZF is Pillow's own settings; C_ZF2 the same one
 * level up, which on smooth photos is both smaller than Pillow and cheaper
 * than running several compressors. */
enum { C_RLE, C_LD, C_ZF, C_ZF2, NCAND };
#define ALL_CAND ((1u << NCAND) - 1)

struct seg {
  uint8_t *data; /* the chosen compressed bytes */
  size_t len;
  uint32_t adler;
  size_t raw_len;
  size_t cand[NCAND]; /* sizes tried (0: not tried), for the probe rule */
};

/* Rough CPU cost per byte of each compressor, measured on cutouts (24 MP
 * smooth, photo texture, anime; thread CPU time on the probes): fixed, so
 * that the choice, and the file, depend on the pixels alone. */
static const unsigned cand_cost[NCAND] = {1, 3, 6, 9};

struct worker {
  int ready;
  uint8_t *fbuf;          /* dictionary + filtered segment */
  uint8_t *obuf[NCAND];
  uint8_t *scratch;       /* inflate output for the BFINAL scan */
  size_t ocap, fcap;
  z_stream zrle, zzf, zzf2, inf;
  int zrle_ok, zzf_ok, zzf2_ok, inf_ok;
  struct libdeflate_compressor *ld;
};

struct job {
  const cutout_image *img;
  size_t rb, bpp, seg_rows, nseg, dict_rows;
  int level, ld_level, zf_level, zf2_level;
  int probe_again; /* a second probe pass: add to the segments' results */
  unsigned use_mask; /* bit c: run compressor c */
  struct seg *segs;
  const size_t *todo; /* segment indices of this phase */
  size_t ntodo;
  atomic_size_t next;
  atomic_int failed;
  struct worker *workers;
  /* Small images: Pillow's exact stream too (the todo index nseg). */
  uint8_t *whole;
  size_t whole_len;
};

static void worker_free(struct worker *w)
{
  if (!w->ready) return;
  free(w->fbuf);
  for (int i = 0; i < NCAND; i++) free(w->obuf[i]);
  free(w->scratch);
  if (w->zrle_ok) deflateEnd(&w->zrle);
  if (w->zzf_ok) deflateEnd(&w->zzf);
  if (w->zzf2_ok) deflateEnd(&w->zzf2);
  if (w->inf_ok) inflateEnd(&w->inf);
  libdeflate_free_compressor(w->ld);
  memset(w, 0, sizeof *w);
}

static int worker_init(struct job *j, struct worker *w)
{
  memset(w, 0, sizeof *w);
  w->ready = 1;
  size_t seg_bytes = j->seg_rows * (j->rb + 1);
  w->fcap = j->dict_rows * (j->rb + 1) + seg_bytes;
  w->fbuf = malloc(w->fcap);
  w->scratch = malloc(seg_bytes);
  /* Room for any compressor's worst case plus the sync-flush tail. */
  w->ocap = seg_bytes + seg_bytes / 8 + 4096;
  for (int i = 0; i < NCAND; i++) w->obuf[i] = malloc(w->ocap);
  if (!w->fbuf || !w->scratch)
    return -1;
  for (int i = 0; i < NCAND; i++)
    if (!w->obuf[i]) return -1;
  /* Level 0 (stored blocks) has only this one compressor. */
  int lvl = j->level;
  if (deflateInit2(&w->zrle, lvl, Z_DEFLATED, -15, 9,
                   lvl == 0 ? Z_DEFAULT_STRATEGY : Z_RLE) != Z_OK)
    return -1;
  w->zrle_ok = 1;
  if (j->zf_level > 0) {
    if (deflateInit2(&w->zzf, j->zf_level, Z_DEFLATED, -15, 9, Z_FILTERED) !=
        Z_OK)
      return -1;
    w->zzf_ok = 1;
  }
  if (j->zf2_level > 0) {
    if (deflateInit2(&w->zzf2, j->zf2_level, Z_DEFLATED, -15, 9,
                     Z_FILTERED) != Z_OK)
      return -1;
    w->zzf2_ok = 1;
  }
  if (j->ld_level > 0) {
    w->ld = libdeflate_alloc_compressor(j->ld_level);
    if (!w->ld) return -1;
    if (inflateInit2(&w->inf, -15) != Z_OK) return -1;
    w->inf_ok = 1;
  }
  return 0;
}

/* zlib candidate: raw deflate of in[0..n) primed with dict[0..dn). */
static size_t zlib_seg(z_stream *z, const uint8_t *dict, size_t dn,
                       const uint8_t *in, size_t n, int last, uint8_t *out,
                       size_t cap)
{
  if (deflateReset(z) != Z_OK) return 0;
  if (dn && deflateSetDictionary(z, dict, (uInt)dn) != Z_OK) return 0;
  z->next_in = (Bytef *)in;
  z->avail_in = (uInt)n;
  z->next_out = out;
  z->avail_out = (uInt)cap;
  int r = deflate(z, last ? Z_FINISH : Z_SYNC_FLUSH);
  if (last ? r != Z_STREAM_END : (r != Z_OK || z->avail_in != 0)) return 0;
  return cap - z->avail_out;
}

/*
 * Make a complete raw deflate stream (libdeflate's) continuable: find its
 * last block with inflate(Z_BLOCK), clear that block's BFINAL bit, and
 * append an empty stored block to end on a byte boundary, exactly what
 * a sync flush leaves.  Returns the new length, 0 on failure.
 */
static size_t unfinalize(struct worker *w, uint8_t *buf, size_t len,
                         size_t cap, size_t raw_len)
{
  z_stream *z = &w->inf;
  if (inflateReset(z) != Z_OK) return 0;
  z->next_in = buf;
  z->avail_in = (uInt)len;
  size_t hdr_bit = 0, end_bit = 0, out_total = 0;
  for (;;) {
    z->next_out = w->scratch;
    z->avail_out = (uInt)raw_len;
    int r = inflate(z, Z_BLOCK);
    out_total += raw_len - z->avail_out;
    if (r != Z_OK) return 0;
    /* Stopped right after an end-of-block code: this is where the next
     * header starts, or, after the last block, where the data ends (the
     * bits inflate still holds are the unread ones).  Asking for more
     * would skip the padding, hence the stop here. */
    if (z->data_type & 128) {
      size_t pos = (size_t)(z->next_in - buf) * 8 - (size_t)(z->data_type & 7);
      if (z->data_type & 64) {
        end_bit = pos;
        break;
      }
      hdr_bit = pos;
    }
  }
  if (out_total != raw_len || (end_bit + 7) / 8 != len) return 0;
  buf[hdr_bit >> 3] &= (uint8_t) ~(1u << (hdr_bit & 7));
  if (end_bit & 7) buf[len - 1] &= (uint8_t)((1u << (end_bit & 7)) - 1);
  /* A stored block header is 3 zero bits; then LEN=0, NLEN=0xFFFF on the
   * next byte boundary. */
  size_t free_bits = (8 - (end_bit & 7)) & 7;
  size_t n = len;
  if (n + 5 > cap) return 0;
  if (free_bits < 3) buf[n++] = 0;
  buf[n++] = 0;
  buf[n++] = 0;
  buf[n++] = 0xFF;
  buf[n++] = 0xFF;
  return n;
}

static int do_segment(struct job *j, struct worker *w, size_t si)
{
  const cutout_image *img = j->img;
  const size_t rb = j->rb, fr = rb + 1;
  const size_t y0 = si * j->seg_rows;
  size_t y1 = y0 + j->seg_rows;
  if (y1 > img->height) y1 = img->height;
  const size_t d0 = y0 > j->dict_rows ? y0 - j->dict_rows : 0;
  /* Filter the dictionary rows again, then the segment. */
  for (size_t y = d0; y < y1; y++) {
    const uint8_t *cur = img->pixels + y * img->stride;
    filter_row(cur, y ? cur - img->stride : NULL, rb, j->bpp,
               w->fbuf + (y - d0) * fr);
  }
  const uint8_t *in = w->fbuf + (y0 - d0) * fr;
  const size_t n = (y1 - y0) * fr;
  size_t dn = (y0 - d0) * fr;
  if (dn > DICT_MAX) dn = DICT_MAX;
  const uint8_t *dict = in - dn;
  const int last = si + 1 == j->nseg;
  struct seg *s = &j->segs[si];
  if (j->probe_again) {
    /* zf2 on a probe done once already: one more candidate, kept when it
     * is the smallest (any zlib stream here is continuable as it is) */
    size_t m = zlib_seg(&w->zzf2, dict, dn, in, n, last, w->obuf[C_ZF2],
                        w->ocap);
    s->cand[C_ZF2] = m;
    if (m && m < s->len) {
      uint8_t *d = malloc(m);
      if (!d) return -1;
      memcpy(d, w->obuf[C_ZF2], m);
      free(s->data);
      s->data = d;
      s->len = m;
    }
    return 0;
  }
  s->raw_len = n;
  s->adler = libdeflate_adler32(1, in, n);

  size_t sz[NCAND] = {0, 0, 0, 0};
  const unsigned mask = j->use_mask;
  if (mask & 1u << C_RLE)
    sz[C_RLE] = zlib_seg(&w->zrle, dict, dn, in, n, last, w->obuf[C_RLE],
                         w->ocap);
  if ((mask & 1u << C_LD) && w->ld) {
    size_t m = libdeflate_deflate_compress(w->ld, in, n, w->obuf[C_LD],
                                           w->ocap - 8);
    /* +5 estimates the sync tail until the scan says exactly. */
    sz[C_LD] = m ? m + (last ? 0 : 5) : 0;
  }
  if ((mask & 1u << C_ZF) && w->zzf_ok)
    sz[C_ZF] = zlib_seg(&w->zzf, dict, dn, in, n, last, w->obuf[C_ZF],
                        w->ocap);
  if ((mask & 1u << C_ZF2) && w->zzf2_ok)
    sz[C_ZF2] = zlib_seg(&w->zzf2, dict, dn, in, n, last, w->obuf[C_ZF2],
                         w->ocap);
  memcpy(s->cand, sz, sizeof sz);

  int best;
  for (;;) {
    best = -1;
    for (int c = 0; c < NCAND; c++)
      if (sz[c] && (best < 0 || sz[c] < sz[best])) best = c;
    if (best != C_LD || last) break;
    size_t m = unfinalize(w, w->obuf[C_LD], sz[C_LD] - 5, w->ocap, n);
    s->cand[C_LD] = sz[C_LD] = m;
    if (m) break;
    /* not expected with a sane libdeflate: try the others */
  }
  if (best < 0) {
    /* Every planned compressor failed (not expected): plain RLE. */
    sz[C_RLE] = zlib_seg(&w->zrle, dict, dn, in, n, last, w->obuf[C_RLE],
                         w->ocap);
    if (!sz[C_RLE]) return -1;
    best = C_RLE;
  }
  s->data = malloc(sz[best]);
  if (!s->data) return -1;
  memcpy(s->data, w->obuf[best], sz[best]);
  s->len = sz[best];
  return 0;
}

/*
 * The whole image as ONE zlib Z_FILTERED stream at the PNG level over
 * Pillow's filter choices: byte for byte the IDAT data Pillow writes.  Small
 * images keep it when the segments do not beat it, which makes their
 * output never larger than Pillow's.
 */
static int do_whole(struct job *j)
{
  const cutout_image *img = j->img;
  const size_t fr = j->rb + 1, n = fr * img->height;
  uint8_t *f = malloc(n);
  z_stream z;
  memset(&z, 0, sizeof z);
  if (!f) return -1;
  for (size_t y = 0; y < img->height; y++) {
    const uint8_t *cur = img->pixels + y * img->stride;
    filter_row(cur, y ? cur - img->stride : NULL, j->rb, j->bpp, f + y * fr);
  }
  int ok = deflateInit2(&z, j->zf_level, Z_DEFLATED, -15, 9, Z_FILTERED) == Z_OK;
  size_t cap = ok ? deflateBound(&z, (uLong)n) : 0;
  uint8_t *out = ok ? malloc(cap) : NULL;
  if (out) {
    z.next_in = f;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) == Z_STREAM_END) {
      j->whole = out;
      j->whole_len = cap - z.avail_out;
      out = NULL;
    }
  }
  if (ok) deflateEnd(&z);
  free(out);
  free(f);
  return ok && j->whole ? 0 : -1;
}

static void run_workers(void *arg, size_t begin, size_t end)
{
  struct job *j = arg;
  for (size_t wi = begin; wi < end; wi++) {
    struct worker *w = &j->workers[wi];
    if (!w->ready && worker_init(j, w) != 0) {
      atomic_store(&j->failed, 1);
      return;
    }
    for (;;) {
      if (atomic_load(&j->failed)) return;
      size_t k = atomic_fetch_add(&j->next, 1);
      if (k >= j->ntodo) break;
      if (j->todo[k] == j->nseg ? do_whole(j) != 0
                                : do_segment(j, w, j->todo[k]) != 0) {
        atomic_store(&j->failed, 1);
        return;
      }
    }
  }
}

static void run_phase(struct job *j, const size_t *todo, size_t ntodo,
                      int nthreads)
{
  j->todo = todo;
  j->ntodo = ntodo;
  atomic_store(&j->next, 0);
  size_t nw = (size_t)nthreads;
  if (nw > ntodo) nw = ntodo ? ntodo : 1;
  cutout__parallel_for((int)nw, nw, 1, run_workers, j);
}

/* ---------------------------------------------------------------- output */

static void put32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* Writes a zlib stream into IDAT chunks of at most IDAT_MAX bytes. */
struct idat_writer {
  uint8_t *p;     /* next free byte */
  uint8_t *chunk; /* start of the open chunk (its length field) */
  size_t used;    /* payload bytes in the open chunk */
};

static void idat_close(struct idat_writer *w)
{
  if (!w->chunk) return;
  put32(w->chunk, (uint32_t)w->used);
  put32(w->p, (uint32_t)crc32(0L, w->chunk + 4, (uInt)(4 + w->used)));
  w->p += 4;
  w->chunk = NULL;
}

static void idat_put(struct idat_writer *w, const uint8_t *src, size_t n)
{
  while (n) {
    if (!w->chunk) {
      w->chunk = w->p;
      memcpy(w->p + 4, "IDAT", 4);
      w->p += 8;
      w->used = 0;
    }
    size_t room = IDAT_MAX - w->used, k = n < room ? n : room;
    memcpy(w->p, src, k);
    w->p += k;
    w->used += k;
    src += k;
    n -= k;
    if (w->used == IDAT_MAX) idat_close(w);
  }
}

static void put_chunk(uint8_t **pp, const char *type, const uint8_t *data,
                      uint32_t n)
{
  uint8_t *p = *pp;
  put32(p, n);
  memcpy(p + 4, type, 4);
  if (n) memcpy(p + 8, data, n);
  put32(p + 8 + n, (uint32_t)crc32(0L, p + 4, 4 + n));
  *pp = p + 12 + n;
}

/*
 * After the probes: the cheapest set of compressors (of those in avail)
 * whose output on the probe segments beats Pillow's own (zf at Pillow's
 * level, a stream of its own per segment) by 0.5% and stays within 0.3%
 * of all of them together.  None qualifies: all.  The margin covers the
 * cost of segments (a sync flush and fresh Huffman tables each, ~0.05% on
 * 24 MP cutouts) and the sampling of the probes.
 */
/* The cost of running the compressors of set m. */
static unsigned set_cost(unsigned m)
{
  unsigned t = 0;
  for (int c = 0; c < NCAND; c++)
    if (m >> c & 1) t += cand_cost[c];
  return t;
}

static unsigned choose_compressors(const struct seg *segs, size_t nseg,
                                   size_t step, unsigned avail)
{
  uint64_t tot[1u << NCAND] = {0};
  for (size_t i = 0; i < nseg; i += step) {
    const struct seg *s = &segs[i];
    for (unsigned m = 1; m <= ALL_CAND; m++) {
      uint64_t best = UINT64_MAX;
      for (int c = 0; c < NCAND; c++)
        if ((m >> c & 1) && s->cand[c] && s->cand[c] < best) best = s->cand[c];
      /* a compressor that failed counts as storing the data */
      tot[m] += best != UINT64_MAX ? best : s->raw_len + s->raw_len / 64 + 64;
    }
  }
  const uint64_t pillow = tot[1u << C_ZF], all = tot[avail];
  unsigned pick = avail, pick_cost = set_cost(avail);
  for (unsigned m = 1; m <= ALL_CAND; m++) {
    if ((m & avail) != m) continue;
    if (tot[m] * 1000 > pillow * 995 || tot[m] * 1000 > all * 1003) continue;
    unsigned cm = set_cost(m);
    if (cm < pick_cost || (cm == pick_cost && tot[m] < tot[pick])) {
      pick = m;
      pick_cost = cm;
    }
  }
  return pick;
}

cutout_status cutout__encode_png(const cutout_image *img, int level,
                                 int nthreads, uint8_t **out, size_t *out_len,
                                 char *err)
{
  static const uint8_t ctype[5] = {0, 0, 4, 2, 6};
  /* PNG allows 2^31-1 a side; zlib calls take 32-bit lengths, so a
   * filtered row (one segment at least) must stay under 1 GiB. */
  if (img->width > 0x7fffffffu || img->height > 0x7fffffffu ||
      (size_t)img->width * img->channels >= ((size_t)1 << 30))
    return cutout__err(err, CUTOUT_EUNSUPPORTED,
                       "image too large for PNG (%ux%u)", img->width,
                       img->height);
  if (nthreads < 1) nthreads = 1;
  cutout_status st = CUTOUT_OK;
  struct job j;
  memset(&j, 0, sizeof j);
  j.img = img;
  j.rb = (size_t)img->width * img->channels;
  j.bpp = img->channels;
  j.level = level;
  const size_t fr = j.rb + 1;
  j.seg_rows = SEG_TARGET / fr ? SEG_TARGET / fr : 1;
  j.nseg = (img->height + j.seg_rows - 1) / j.seg_rows;
  j.dict_rows = (DICT_MAX + fr - 1) / fr;
  /* Compressor plan for the level (see the file comment).  Level 0 is
   * stored blocks: its "rle" stream is zlib level 0. */
  if (level > 0) {
    j.ld_level = level + 1 > 9 ? 9 : level + 1;
    j.zf_level = level;
    j.zf2_level = level < 9 ? level + 1 : 0;
    j.use_mask = 1u << C_RLE | 1u << C_LD | 1u << C_ZF;
  } else {
    j.use_mask = 1u << C_RLE;
  }
  size_t total = 0;
  if (cutout__mul_size(fr, img->height, &total))
    return cutout__err(err, CUTOUT_ELIMIT, "image too large");
  const size_t step = PROBE_STEP(j.nseg);
  int probing = level > 0 && total > ZF_ALWAYS_BELOW && j.nseg > step;
  atomic_init(&j.next, 0);
  atomic_init(&j.failed, 0);

  size_t *todo = malloc((j.nseg + 1) * sizeof *todo);
  j.segs = calloc(j.nseg, sizeof *j.segs);
  j.workers = calloc((size_t)nthreads, sizeof *j.workers);
  uint8_t *buf = NULL;
  if (!todo || !j.segs || !j.workers) {
    st = cutout__err(err, CUTOUT_ENOMEM, "out of memory");
    goto done;
  }

  if (probing) {
    /* Phase 1: the probe segments, with every compressor. */
    size_t np = 0;
    for (size_t i = 0; i < j.nseg; i += step) todo[np++] = i;
    unsigned avail = j.use_mask;
    run_phase(&j, todo, np, nthreads);
    if (atomic_load(&j.failed)) goto oom;
    j.use_mask = choose_compressors(j.segs, j.nseg, step, avail);
    /* Pillow's compressor is still needed (smooth or flat content): see
     * whether it one level up does the job alone.  The probes keep what
     * they made so far; zf2 only adds a candidate. */
    if ((j.use_mask & 1u << C_ZF) && j.zf2_level) {
      unsigned keep = j.use_mask;
      avail |= 1u << C_ZF2;
      j.use_mask = 1u << C_ZF2;
      j.probe_again = 1;
      run_phase(&j, todo, np, nthreads);
      j.probe_again = 0;
      if (atomic_load(&j.failed)) goto oom;
      j.use_mask = choose_compressors(j.segs, j.nseg, step, avail);
      if (set_cost(j.use_mask) >= set_cost(keep))
        j.use_mask = keep; /* zf2 did not make it cheaper */
    }
    size_t nr = 0;
    for (size_t i = 0; i < j.nseg; i++)
      if (i % step) todo[nr++] = i;
    run_phase(&j, todo, nr, nthreads);
  } else {
    /* Pillow's exact stream first: it is the longest single task. */
    size_t nt = 0;
    if (level > 0 && j.nseg > 1 && total <= ZF_ALWAYS_BELOW) todo[nt++] = j.nseg;
    for (size_t i = 0; i < j.nseg; i++) todo[nt++] = i;
    run_phase(&j, todo, nt, nthreads);
  }
  if (atomic_load(&j.failed)) goto oom;

  /* Assemble: signature, IHDR, IDAT (zlib header, segments, Adler-32),
   * IEND. */
  size_t zlen = 2 + 4;
  uint32_t adler = 1;
  for (size_t i = 0; i < j.nseg; i++) {
    zlen += j.segs[i].len;
    adler = (uint32_t)adler32_combine(adler, j.segs[i].adler,
                                      (z_off_t)j.segs[i].raw_len);
  }
  int use_whole = j.whole && j.whole_len + 6 < zlen;
  if (use_whole) zlen = j.whole_len + 6;
  size_t nchunks = (zlen + IDAT_MAX - 1) / IDAT_MAX;
  size_t size = 8 + 25 + zlen + 12 * nchunks + 12;
  buf = malloc(size);
  if (!buf) goto oom;
  uint8_t *p = buf;
  memcpy(p, "\x89PNG\r\n\x1a\n", 8);
  p += 8;
  uint8_t ihdr[13];
  put32(ihdr, img->width);
  put32(ihdr + 4, img->height);
  ihdr[8] = 8;
  ihdr[9] = ctype[img->channels];
  ihdr[10] = ihdr[11] = ihdr[12] = 0;
  put_chunk(&p, "IHDR", ihdr, 13);
  /* zlib header as zlib writes it for this level (FLEVEL is advisory). */
  uint8_t zh[2] = {0x78, level < 2 ? 0x01 : level < 6 ? 0x5E
                         : level == 6 ? 0x9C : 0xDA};
  uint8_t trailer[4];
  put32(trailer, adler);
  struct idat_writer w = {p, NULL, 0};
  idat_put(&w, zh, 2);
  if (use_whole)
    idat_put(&w, j.whole, j.whole_len);
  else
    for (size_t i = 0; i < j.nseg; i++)
      idat_put(&w, j.segs[i].data, j.segs[i].len);
  idat_put(&w, trailer, 4);
  idat_close(&w);
  p = w.p;
  put_chunk(&p, "IEND", NULL, 0);
  *out = buf;
  *out_len = (size_t)(p - buf);
  buf = NULL;
  goto done;

oom:
  st = cutout__err(err, CUTOUT_ENOMEM, "out of memory while encoding PNG");
done:
  if (j.workers)
    for (int i = 0; i < nthreads; i++) worker_free(&j.workers[i]);
  if (j.segs)
    for (size_t i = 0; i < j.nseg; i++) free(j.segs[i].data);
  free(j.segs);
  free(j.workers);
  free(j.whole);
  free(todo);
  free(buf);
  return st;
}
