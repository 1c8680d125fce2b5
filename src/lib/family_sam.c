/*
 * family_sam.c: Segment Anything, rembg's SamSession.predict().
 *
 * The encoder sees the photo scaled by s = min(1024 / W, 684 / H) and put
 * top-left on a 684 x 1024 canvas, zero elsewhere, as raw 0..255 floats in
 * HWC order (the exported encoder normalises by itself).  rembg 2.0.77
 * warps with scipy.ndimage.map_coordinates (order 1, mode "constant", one
 * call per channel) through the inverse of diag(s, s, 1); the decoder's
 * masks come back through the inverse of that inverse the same way.  The
 * prompt's points are scaled by s (after rembg's apply_coords, an identity
 * for 684 x 1024) and followed by a padding point labelled -1; rectangles
 * are two points labelled 2 and 3.  A pixel is in the mask when any of the
 * decoder's masks is above 0 there.
 *
 * The bilinear sampling below restates SciPy's order-1 spline exactly:
 * samples outside [0, n-1] on either axis are the constant 0; inside, the
 * weights are w0 = 1 - t and w1 = 1 - w0 (t the fractional part), the four
 * taps are summed as ((v * wy) * wx) in C order in double precision, and a
 * uint8 result is rounded half up and clamped.  The transform is diagonal,
 * so the taps and weights of each output row and column are computed once.
 */
#include "family.h"
#include "imaging.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The taps and weights of one output coordinate on one axis. */
struct tap {
  int64_t i0, i1;
  double w0, w1;
  int inside;
};

/* Output index o samples the input at o * step. */
static void taps(size_t n_out, double step, int64_t n_in, struct tap *t)
{
  for (size_t o = 0; o < n_out; o++) {
    double cc = step * (double)o;
    t[o].inside = cc >= 0.0 && cc <= (double)(n_in - 1);
    if (!t[o].inside) continue;
    double f = floor(cc);
    t[o].i0 = (int64_t)f;
    /* past the last sample the weight is 0: any valid index will do */
    t[o].i1 = t[o].i0 + 1 < n_in ? t[o].i0 + 1 : t[o].i0;
    t[o].w0 = 1.0 - (cc - f);
    t[o].w1 = 1.0 - t[o].w0;
  }
}

double cutout__sam_scale(uint32_t w, uint32_t h, int64_t canvas_h,
                         int64_t canvas_w)
{
  double sx = (double)canvas_w / (double)w, sy = (double)canvas_h / (double)h;
  return sx < sy ? sx : sy;
}

/* ---- the encoder's canvas --------------------------------------------- */

struct enc_job {
  const cutout_image *rgb;
  const struct tap *ty, *tx;
  int64_t cw;
  float *dst;
};

static void enc_rows(void *arg, size_t y0, size_t y1)
{
  const struct enc_job *j = arg;
  const uint8_t *px = j->rgb->pixels;
  size_t stride = j->rgb->stride;
  for (size_t y = y0; y < y1; y++) {
    float *d = j->dst + y * (size_t)j->cw * 3;
    const struct tap *ty = &j->ty[y];
    for (int64_t x = 0; x < j->cw; x++, d += 3) {
      const struct tap *tx = &j->tx[x];
      if (!ty->inside || !tx->inside) {
        d[0] = d[1] = d[2] = 0.0f;
        continue;
      }
      const uint8_t *r0 = px + (size_t)ty->i0 * stride;
      const uint8_t *r1 = px + (size_t)ty->i1 * stride;
      size_t a = (size_t)tx->i0 * 3, b = (size_t)tx->i1 * 3;
      for (int ch = 0; ch < 3; ch++) {
        double t = 0.0;
        t += (double)r0[a + ch] * ty->w0 * tx->w0;
        t += (double)r0[b + ch] * ty->w0 * tx->w1;
        t += (double)r1[a + ch] * ty->w1 * tx->w0;
        t += (double)r1[b + ch] * ty->w1 * tx->w1;
        /* SciPy's cast to the uint8 output: round half up, clamp */
        t = t > 0.0 ? t + 0.5 : 0.0;
        d[ch] = (float)(uint8_t)(t > 255.0 ? 255.0 : t);
      }
    }
  }
}

cutout_status cutout__sam_encoder_input(const cutout_image *rgb,
                                        int64_t canvas_h, int64_t canvas_w,
                                        double scale, int threads,
                                        float *dst)
{
  struct tap *ty = malloc((size_t)canvas_h * sizeof *ty);
  struct tap *tx = malloc((size_t)canvas_w * sizeof *tx);
  if (!ty || !tx) {
    free(ty);
    free(tx);
    return CUTOUT_ENOMEM;
  }
  /* np.linalg.inv(diag(s, s, 1)) is diag(1/s, 1/s, 1) */
  double inv = 1.0 / scale;
  taps((size_t)canvas_h, inv, rgb->height, ty);
  taps((size_t)canvas_w, inv, rgb->width, tx);
  struct enc_job j = {rgb, ty, tx, canvas_w, dst};
  cutout__parallel_for(threads, (size_t)canvas_h, 32, enc_rows, &j);
  free(ty);
  free(tx);
  return CUTOUT_OK;
}

/* ---- the prompt -------------------------------------------------------- */

cutout_status cutout__sam_points(const cutout_prompt *pr, size_t npr,
                                 uint32_t w, uint32_t h, int64_t canvas_h,
                                 int64_t canvas_w, double scale,
                                 float **coords, float **labels, size_t *n,
                                 char *err)
{
  cutout_prompt def;
  if (!pr) {
    /* rembg's default: one foreground point at int(W / 2), int(H / 2) */
    memset(&def, 0, sizeof def);
    def.type = CUTOUT_PROMPT_POINT;
    def.label = 1;
    def.data[0] = (double)(w / 2);
    def.data[1] = (double)(h / 2);
    pr = &def;
    npr = 1;
  }
  size_t cnt = 0;
  for (size_t i = 0; i < npr; i++) {
    if (pr[i].type == CUTOUT_PROMPT_POINT)
      cnt += 1;
    else if (pr[i].type == CUTOUT_PROMPT_RECTANGLE)
      cnt += 2;
    else
      return cutout__err(err, CUTOUT_EINVAL,
                         "sam_prompt item %zu: unknown type %d", i,
                         pr[i].type);
  }
  if (cnt == 0)
    return cutout__err(err, CUTOUT_EINVAL,
                       "sam_prompt has no point and no rectangle");
  float *c = malloc((cnt + 1) * 2 * sizeof *c);
  float *l = malloc((cnt + 1) * sizeof *l);
  if (!c || !l) {
    free(c);
    free(l);
    return cutout__err(err, CUTOUT_ENOMEM, "out of memory");
  }
  /* apply_coords(coords, (684, 1024), 1024): rescale to the long side
   * 1024, int(x + 0.5) rounding; an identity for rembg's canvas */
  double ls = 1024.0 / (double)(canvas_h > canvas_w ? canvas_h : canvas_w);
  int64_t new_h = (int64_t)((double)canvas_h * ls + 0.5);
  int64_t new_w = (int64_t)((double)canvas_w * ls + 0.5);
  double fx = (double)new_w / (double)canvas_w;
  double fy = (double)new_h / (double)canvas_h;
  size_t k = 0;
  for (size_t i = 0; i <= npr; i++) {
    double pts[2][2];
    float lab[2];
    int m;
    if (i == npr) { /* the padding point */
      pts[0][0] = pts[0][1] = 0.0;
      lab[0] = -1.0f;
      m = 1;
    } else if (pr[i].type == CUTOUT_PROMPT_POINT) {
      pts[0][0] = pr[i].data[0];
      pts[0][1] = pr[i].data[1];
      lab[0] = (float)pr[i].label;
      m = 1;
    } else {
      pts[0][0] = pr[i].data[0];
      pts[0][1] = pr[i].data[1];
      pts[1][0] = pr[i].data[2];
      pts[1][1] = pr[i].data[3];
      lab[0] = 2.0f;
      lab[1] = 3.0f;
      m = 2;
    }
    for (int q = 0; q < m; q++, k++) {
      /* float32 after apply_coords, then the float64 matmul with the
       * transform, then float32 again.  volatile: GCC 12's vectoriser
       * otherwise drops the first rounding to float32 (seen at -O2). */
      volatile float ax = (float)(pts[q][0] * fx);
      volatile float ay = (float)(pts[q][1] * fy);
      c[k * 2] = (float)((double)ax * scale);
      c[k * 2 + 1] = (float)((double)ay * scale);
      l[k] = lab[q];
    }
  }
  *coords = c;
  *labels = l;
  *n = cnt + 1;
  return CUTOUT_OK;
}

/* ---- the decoder's masks, back on the photo ----------------------------- */

struct unwarp_job {
  const float *masks;
  size_t nmasks, plane;
  int64_t cw;
  const struct tap *ty, *tx;
  uint32_t w;
  uint8_t *out;
};

static void unwarp_rows(void *arg, size_t y0, size_t y1)
{
  const struct unwarp_job *j = arg;
  for (size_t y = y0; y < y1; y++) {
    const struct tap *ty = &j->ty[y];
    uint8_t *o = j->out + y * j->w;
    for (uint32_t x = 0; x < j->w; x++) {
      const struct tap *tx = &j->tx[x];
      uint8_t v = 0;
      if (ty->inside && tx->inside) {
        for (size_t m = 0; m < j->nmasks && !v; m++) {
          const float *r0 = j->masks + m * j->plane + (size_t)ty->i0 * j->cw;
          const float *r1 = j->masks + m * j->plane + (size_t)ty->i1 * j->cw;
          double t = 0.0;
          t += (double)r0[tx->i0] * ty->w0 * tx->w0;
          t += (double)r0[tx->i1] * ty->w0 * tx->w1;
          t += (double)r1[tx->i0] * ty->w1 * tx->w0;
          t += (double)r1[tx->i1] * ty->w1 * tx->w1;
          if ((float)t > 0.0f) v = 255; /* float32 output, then m > 0.0 */
        }
      }
      o[x] = v;
    }
  }
}

cutout_status cutout__sam_unwarp(const float *masks, size_t nmasks,
                                 int64_t canvas_h, int64_t canvas_w,
                                 double scale, uint32_t w, uint32_t h,
                                 int threads, uint8_t *out)
{
  struct tap *ty = malloc((size_t)h * sizeof *ty);
  struct tap *tx = malloc((size_t)w * sizeof *tx);
  if (!ty || !tx) {
    free(ty);
    free(tx);
    return CUTOUT_ENOMEM;
  }
  /* the inverse of inv(diag(s, s, 1)), inverted again by the warp */
  double back = 1.0 / (1.0 / scale);
  taps(h, back, canvas_h, ty);
  taps(w, back, canvas_w, tx);
  struct unwarp_job j = {masks, nmasks, (size_t)(canvas_h * canvas_w),
                         canvas_w, ty, tx, w, out};
  cutout__parallel_for(threads, h, 16, unwarp_rows, &j);
  free(ty);
  free(tx);
  return CUTOUT_OK;
}

/* ---- the whole prediction --------------------------------------------- */

static cutout_status tensor(cutout_ctx *c, void *data, size_t bytes,
                            const int64_t *shape, size_t nd, OrtValue **out)
{
  return cutout__ort_check(c->engine->api->CreateTensorWithDataAsOrtValue(
                               c->engine->cpu_mem, data, bytes, shape, nd,
                               ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, out),
                           CUTOUT_ERUNTIME, c->errmsg, "input tensor");
}

cutout_status cutout__sam_mask(cutout_ctx *c, const cutout_model *m,
                               const cutout_image *img,
                               const cutout_prompt *pr, size_t npr,
                               cutout_image **mask)
{
  const OrtApi *api = c->engine->api;
  int64_t ch = m->in_h, cw = m->in_w;
  size_t canvas = (size_t)(ch * cw);
  cutout_image *rgb = NULL, *res = NULL;
  float *enc_in = NULL, *coords = NULL, *labels = NULL, *mask_in = NULL;
  OrtValue *in[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
  OrtValue *emb = NULL, *masks = NULL;
  size_t npts = 0;
  cutout_status st;
  struct cutout__stage_clock k;

  cutout__stage_begin(&k);
  const cutout_image *src = img;
  if (img->channels != 3) {
    if ((st = cutout__to_rgb(img, &rgb, c->errmsg))) return st;
    src = rgb;
  }
  double scale = cutout__sam_scale(img->width, img->height, ch, cw);
  enc_in = malloc(canvas * 3 * sizeof *enc_in);
  mask_in = calloc(256 * 256, sizeof *mask_in);
  if (!enc_in || !mask_in) {
    st = cutout__err(c->errmsg, CUTOUT_ENOMEM, "out of memory");
    goto done;
  }
  if (cutout__sam_encoder_input(src, ch, cw, scale, c->io_threads, enc_in)) {
    st = cutout__err(c->errmsg, CUTOUT_ENOMEM, "out of memory");
    goto done;
  }
  if ((st = cutout__sam_points(pr, npr, img->width, img->height, ch, cw,
                               scale, &coords, &labels, &npts, c->errmsg)))
    goto done;
  cutout__stage_end(&k, &c->times, CUTOUT_STAGE_PREPROCESS);

  cutout__stage_begin(&k);
  int64_t eshape[4] = {1, ch, cw, 3};
  int rank = m->in_rank == 4 ? 4 : 3;
  if ((st = tensor(c, enc_in, canvas * 3 * sizeof(float),
                   eshape + (4 - rank), (size_t)rank, &in[0])))
    goto done;
  const char *ein = m->input_name;
  st = cutout__run(c, m->session, &ein, (const OrtValue *const *)in, 1,
                   m->output_name, &emb, m->path);
  api->ReleaseValue(in[0]);
  in[0] = NULL;
  if (st) goto done;

  float has_mask = 0.0f, orig[2] = {(float)ch, (float)cw};
  int64_t cshape[3] = {1, (int64_t)npts, 2}, lshape[2] = {1, (int64_t)npts};
  int64_t mshape[4] = {1, 1, 256, 256}, hshape[1] = {1}, oshape[1] = {2};
  if ((st = tensor(c, coords, npts * 2 * sizeof(float), cshape, 3, &in[1])) ||
      (st = tensor(c, labels, npts * sizeof(float), lshape, 2, &in[2])) ||
      (st = tensor(c, mask_in, 256 * 256 * sizeof(float), mshape, 4,
                   &in[3])) ||
      (st = tensor(c, &has_mask, sizeof has_mask, hshape, 1, &in[4])) ||
      (st = tensor(c, orig, sizeof orig, oshape, 1, &in[5])))
    goto done;
  in[0] = emb; /* the encoder's output goes in as it is */
  emb = NULL;
  static const char *const dnames[6] = {"image_embeddings", "point_coords",
                                        "point_labels",     "mask_input",
                                        "has_mask_input",   "orig_im_size"};
  st = cutout__run(c, m->decoder, dnames, (const OrtValue *const *)in, 6,
                   m->decoder_output, &masks, m->decoder_path);
  cutout__stage_end(&k, &c->times, CUTOUT_STAGE_INFERENCE);
  if (st) goto done;

  cutout__stage_begin(&k);
  float *md;
  int64_t d[8];
  size_t nd;
  if ((st = cutout__tensor_dims(c, masks, &md, d, &nd, m->decoder_path)))
    goto done;
  if (nd != 4 || d[0] < 1 || d[1] < 1 || d[2] != ch || d[3] != cw) {
    st = cutout__err(c->errmsg, CUTOUT_EMODEL,
                     "%s: the decoder's masks must be [1,M,%lld,%lld] (the "
                     "canvas)", m->decoder_path, (long long)ch, (long long)cw);
    goto done;
  }
  if ((st = cutout_image_new(img->width, img->height, 1, &res))) {
    cutout__err(c->errmsg, st, "out of memory");
    goto done;
  }
  if (cutout__sam_unwarp(md, (size_t)d[1], ch, cw, scale, img->width,
                         img->height, c->io_threads, res->pixels)) {
    st = cutout__err(c->errmsg, CUTOUT_ENOMEM, "out of memory");
    goto done;
  }
  cutout__stage_end(&k, &c->times, CUTOUT_STAGE_POSTPROCESS);
  *mask = res;
  res = NULL;

done:
  for (int i = 0; i < 6; i++)
    if (in[i]) api->ReleaseValue(in[i]);
  if (emb) api->ReleaseValue(emb);
  if (masks) api->ReleaseValue(masks);
  cutout_image_free(res);
  cutout_image_free(rgb);
  free(enc_in);
  free(mask_in);
  free(coords);
  free(labels);
  return st;
}
