/*
 * remove.c: rembg's session.predict() and remove() on a decoded image.
 *
 * Every numeric step follows rembg 2.0.77 with numpy's types:
 *   RGB -> LANCZOS to the model size -> / max(image max, 1e-6) (float64)
 *   -> (x - mean) / std (float64) -> float32 NCHW -> Run (first output only)
 *   -> [sigmoid] -> min-max in float32 -> [clip] -> *255 -> truncating uint8
 *   -> LANCZOS back to the image size.
 * Families whose predict() differs live in family_cloth.c (u2net_cloth_seg:
 * several masks, which remove() finishes one by one and stacks) and
 * family_sam.c (sam: encoder, prompt, decoder); predict_masks() dispatches.
 */
#include "engine.h"
#include "family.h" /* issue #7 */
#include "imaging.h"
#include "matting.h" /* issue #6 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

cutout_remove_params cutout_remove_default_params(void)
{
  cutout_remove_params p;
  memset(&p, 0, sizeof p);
  /* --- edges and alpha matting (issue #6): rembg's -af -ab -ae --- */
  p.am_fg = 240;
  p.am_bg = 10;
  p.am_erode = 10;
  /* --- end edges and alpha matting --- */
  return p;
}

/* --- model families (issue #7): predict() and the machinery the family
 * files share (family.h) ------------------------------------------- */

cutout_status cutout__check_canceled(cutout_ctx *c)
{
  if (!atomic_exchange(&c->canceled, 0)) return CUTOUT_OK;
  OrtStatus *st = c->engine->api->RunOptionsUnsetTerminate(c->run_opts);
  if (st) c->engine->api->ReleaseStatus(st);
  return cutout__err(c->errmsg, CUTOUT_ECANCELED, "canceled");
}

/* Fill the [1,3,H,W] float32 input from an RGB image of size W x H. */
static void normalize(const cutout_image *rgb, const double mean[3],
                      const double std[3], float *dst)
{
  size_t plane = (size_t)rgb->width * rgb->height;
  size_t n = plane * 3;
  uint8_t mx = 0;
  for (size_t i = 0; i < n; i++)
    if (rgb->pixels[i] > mx) mx = rgb->pixels[i];
  double div = mx > 0 ? (double)mx : 1e-6;
  for (int ch = 0; ch < 3; ch++) {
    /* 256-entry table: the same float64 expression per byte value. */
    float lut[256];
    for (int v = 0; v < 256; v++)
      lut[v] = (float)((((double)v / div) - mean[ch]) / std[ch]);
    const uint8_t *s = rgb->pixels + ch;
    float *d = dst + (size_t)ch * plane;
    for (size_t i = 0; i < plane; i++) d[i] = lut[s[i * 3]];
  }
}

/* The float32 prediction plane -> uint8 mask, exactly as numpy does it. */
static void quantize(const float *pred, size_t n, enum cutout__post post,
                     uint8_t *out)
{
  float *tmp = NULL;
  if (post == CUTOUT_POST_SIGMOID_MINMAX) {
    tmp = malloc(n * sizeof *tmp);
    if (tmp) {
      for (size_t i = 0; i < n; i++) tmp[i] = 1.0f / (1.0f + expf(-pred[i]));
      pred = tmp;
    }
  }
  float mi = pred[0], ma = pred[0];
  for (size_t i = 1; i < n; i++) {
    if (pred[i] < mi) mi = pred[i];
    if (pred[i] > ma) ma = pred[i];
  }
  float range = ma - mi;
  for (size_t i = 0; i < n; i++) {
    float v = (pred[i] - mi) / range;
    if (post == CUTOUT_POST_MINMAX_CLIP) v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
    v = v * 255.0f;
    /* numpy's astype(uint8) truncates; NaN (a constant prediction) and
     * out-of-range values are undefined there: pin them to 0 / 255. */
    out[i] = (v != v) ? 0 : v <= 0.0f ? 0 : v >= 255.0f ? 255 : (uint8_t)v;
  }
  free(tmp);
}

cutout_status cutout__run(cutout_ctx *c, OrtSession *s,
                          const char *const *in_names,
                          const OrtValue *const *in, size_t nin,
                          const char *out_name, OrtValue **out,
                          const char *what)
{
  const OrtApi *api = c->engine->api;
  (void)what;
  /* thread management (issue #3): pin this thread to the binding's first
   * group and set FTZ/DAZ if asked, for the duration of Run only. */
  struct cutout__caller caller;
  cutout__caller_enter(c->engine, &caller);
  OrtStatus *os = api->Run(s, c->run_opts, in_names, in, nin, &out_name, 1,
                           out);
  cutout__caller_leave(c->engine, &caller);
  if (os && atomic_load(&c->canceled)) {
    api->ReleaseStatus(os);
    return cutout__check_canceled(c);
  }
  return cutout__ort_check(os, CUTOUT_ERUNTIME, c->errmsg, "inference failed");
}

cutout_status cutout__tensor_dims(cutout_ctx *c, OrtValue *v, float **data,
                                  int64_t *dims, size_t *nd, const char *what)
{
  const OrtApi *api = c->engine->api;
  OrtTensorTypeAndShapeInfo *info = NULL;
  ONNXTensorElementDataType type;
  cutout_status st = cutout__ort_check(api->GetTensorTypeAndShape(v, &info),
                                       CUTOUT_ERUNTIME, c->errmsg,
                                       "output shape");
  if (st) return st;
  *nd = 0;
  if (api->GetTensorElementType(info, &type) ||
      api->GetDimensionsCount(info, nd) || *nd < 1 || *nd > 8 ||
      api->GetDimensions(info, dims, *nd) ||
      type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
    st = cutout__err(c->errmsg, CUTOUT_EMODEL,
                     "%s: the output must be a float tensor", what);
  api->ReleaseTensorTypeAndShapeInfo(info);
  if (st) return st;
  return cutout__ort_check(api->GetTensorMutableData(v, (void **)data),
                           CUTOUT_ERUNTIME, c->errmsg, "output data");
}

cutout_status cutout__model_input(cutout_ctx *c, const cutout_model *m,
                                  const cutout_image *img, float *dst)
{
  cutout_image *rgb = NULL, *small = NULL;
  cutout_status st;
  if (img->channels == 3) {
    st = cutout__resize_lanczos(img, (uint32_t)m->in_w, (uint32_t)m->in_h,
                                c->io_threads, &small, c->errmsg);
  } else {
    st = cutout__to_rgb(img, &rgb, c->errmsg);
    if (!st)
      st = cutout__resize_lanczos(rgb, (uint32_t)m->in_w, (uint32_t)m->in_h,
                                  c->io_threads, &small, c->errmsg);
  }
  if (!st) normalize(small, m->row->info.mean, m->row->info.std, dst);
  cutout_image_free(rgb);
  cutout_image_free(small);
  return st;
}

/* Run a batch of `batch` normalised inputs and quantize out[b, 0] of each
 * into masks_out[b] (in_h * in_w bytes each). */
static cutout_status run_model(cutout_ctx *c, const cutout_model *m,
                               float *input, int64_t batch,
                               uint8_t *const *masks_out)
{
  const OrtApi *api = c->engine->api;
  int64_t shape[4] = {batch, 3, m->in_h, m->in_w};
  size_t count = (size_t)(batch * 3 * m->in_h * m->in_w);
  OrtValue *in = NULL, *out = NULL;
  cutout_status st;

  st = cutout__ort_check(api->CreateTensorWithDataAsOrtValue(
                             c->engine->cpu_mem, input, count * sizeof(float),
                             shape, 4, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &in),
                         CUTOUT_ERUNTIME, c->errmsg, "input tensor");
  if (st) return st;
  const char *in_name = m->input_name;
  st = cutout__run(c, m->session, &in_name, (const OrtValue *const *)&in, 1,
                   m->output_name, &out, m->path);
  if (st) goto done;

  float *pred = NULL;
  size_t nd = 0;
  int64_t dims[8] = {0};
  if ((st = cutout__tensor_dims(c, out, &pred, dims, &nd, m->path))) goto done;
  if (nd < 2 || (nd == 2 && batch > 1) || (nd > 2 && dims[0] < batch)) {
    st = cutout__err(c->errmsg, CUTOUT_EMODEL,
                     "%s: the first output must be a float tensor "
                     "[N,C,H,W] or [N,H,W]", m->path);
    goto done;
  }
  int64_t oh = dims[nd - 2], ow = dims[nd - 1];
  if (oh != m->in_h || ow != m->in_w) {
    st = cutout__err(c->errmsg, CUTOUT_EMODEL,
                     "%s: output is %lldx%lld, input %lldx%lld: rembg "
                     "expects the same size", m->path, (long long)ow,
                     (long long)oh, (long long)m->in_w, (long long)m->in_h);
    goto done;
  }
  /* out[b, 0, :, :] starts after b whole items of the output */
  size_t item = 1;
  for (size_t i = 1; i < nd; i++) item *= (size_t)dims[i];
  for (int64_t b = 0; b < batch; b++)
    quantize(pred + (size_t)b * item, (size_t)(oh * ow), m->row->post,
             masks_out[b]);

done:
  if (out) api->ReleaseValue(out);
  api->ReleaseValue(in);
  return st;
}

/* The common families: one mask. */
static cutout_status predict(cutout_ctx *c, const cutout_model *m,
                             const cutout_image *img, cutout_image **mask_out)
{
  cutout_status st;
  cutout_image *mask_s = NULL, *mask = NULL;
  float *input = NULL;

  if ((st = cutout__check_canceled(c))) return st;

  struct cutout__stage_clock k;
  cutout__stage_begin(&k);
  size_t plane = (size_t)(m->in_w * m->in_h);
  input = malloc(plane * 3 * sizeof *input);
  if (!input) {
    st = cutout__err(c->errmsg, CUTOUT_ENOMEM, "out of memory");
    goto done;
  }
  if ((st = cutout__model_input(c, m, img, input))) goto done;
  cutout__stage_end(&k, &c->times, CUTOUT_STAGE_PREPROCESS);

  if ((st = cutout_image_new((uint32_t)m->in_w, (uint32_t)m->in_h, 1,
                             &mask_s))) {
    cutout__err(c->errmsg, st, "out of memory");
    goto done;
  }
  cutout__stage_begin(&k);
  st = run_model(c, m, input, 1, &mask_s->pixels);
  cutout__stage_end(&k, &c->times, CUTOUT_STAGE_INFERENCE);
  if (st) goto done;
  if ((st = cutout__check_canceled(c))) goto done;
  cutout__stage_begin(&k);
  st = cutout__resize_lanczos(mask_s, img->width, img->height, c->io_threads,
                              &mask, c->errmsg);
  cutout__stage_end(&k, &c->times, CUTOUT_STAGE_POSTPROCESS);

done:
  cutout_image_free(mask_s);
  free(input);
  if (st) {
    cutout_image_free(mask);
    return st;
  }
  *mask_out = mask;
  return CUTOUT_OK;
}

/* rembg's session.predict(): every mask of the model's family. */
static cutout_status predict_masks(cutout_ctx *c, const cutout_model *m,
                                   const cutout_image *img,
                                   const cutout_remove_params *p,
                                   cutout_image **masks, size_t *n)
{
  cutout_status st;
  if ((st = cutout__check_canceled(c))) return st;
  switch (m->row->post) {
  case CUTOUT_POST_CLOTH:
    return cutout__cloth_masks(c, m, img, p->cloth_category, masks, n);
  case CUTOUT_POST_SAM:
    *n = 1;
    return cutout__sam_mask(c, m, img, p->sam_prompt, p->sam_prompt_count,
                            &masks[0]);
  default:
    *n = 1;
    return predict(c, m, img, &masks[0]);
  }
}

/* rembg's get_concat_v_multi: parts one under another on a new RGBA
 * canvas (L and LA parts become grey RGBA, as Pillow's paste converts
 * them); keep_l stacks L parts into an L image instead. */
static cutout_status stack_v(cutout_ctx *c, cutout_image *const *parts,
                             size_t n, int keep_l, cutout_image **out)
{
  uint32_t w = 0, h = 0;
  int all_l = 1;
  for (size_t i = 0; i < n; i++) {
    if (parts[i]->width > w) w = parts[i]->width;
    if (parts[i]->height > UINT32_MAX - h)
      return cutout__err(c->errmsg, CUTOUT_ELIMIT, "stacked masks too tall");
    h += parts[i]->height;
    all_l &= parts[i]->channels == 1;
  }
  uint32_t oc = keep_l && all_l ? 1 : 4;
  cutout_image *o = NULL;
  if (cutout_image_new(w, h, oc, &o))
    return cutout__err(c->errmsg, CUTOUT_ENOMEM, "out of memory");
  uint32_t y0 = 0;
  for (size_t i = 0; i < n; i++) {
    const cutout_image *s = parts[i];
    for (uint32_t y = 0; y < s->height; y++) {
      const uint8_t *src = s->pixels + (size_t)y * s->stride;
      uint8_t *d = o->pixels + (size_t)(y0 + y) * o->stride;
      for (uint32_t x = 0; x < s->width; x++, d += oc) {
        const uint8_t *q = src + (size_t)x * s->channels;
        if (oc == 1) {
          d[0] = q[0];
        } else if (s->channels <= 2) {
          d[0] = d[1] = d[2] = q[0];
          d[3] = s->channels == 2 ? q[1] : 255;
        } else {
          d[0] = q[0];
          d[1] = q[1];
          d[2] = q[2];
          d[3] = s->channels == 4 ? q[3] : 255;
        }
      }
    }
    y0 += s->height;
  }
  *out = o;
  return CUTOUT_OK;
}

static cutout_status finish(cutout_ctx *c, const cutout_image *img,
                            cutout_image *mask, const cutout_remove_params *p,
                            int part, cutout_image **out);

/* The masks cutout_remove works on.  One mask: *mask.  Several (cloth-seg
 * without a category): rembg's remove() finishes each one the same way
 * and stacks the cutouts, so each mask is finished as a part and the
 * stacked result lands in *out (*mask NULL). */
static cutout_status remove_masks(cutout_ctx *c, const cutout_model *m,
                                  const cutout_image *img,
                                  const cutout_remove_params *p,
                                  cutout_image **mask, cutout_image **out)
{
  cutout_image *masks[CUTOUT_MAX_MASKS] = {NULL, NULL, NULL};
  cutout_image *parts[CUTOUT_MAX_MASKS] = {NULL, NULL, NULL};
  size_t n = 0;
  cutout_status st = predict_masks(c, m, img, p, masks, &n);
  if (st) return st;
  if (n == 1) {
    *mask = masks[0];
    return CUTOUT_OK;
  }
  for (size_t i = 0; i < n && !st; i++) {
    st = finish(c, img, masks[i], p, 1, &parts[i]);
    masks[i] = NULL; /* finish took it */
  }
  if (!st) st = stack_v(c, parts, n, 0, out);
  for (size_t i = 0; i < n; i++) {
    cutout_image_free(masks[i]);
    cutout_image_free(parts[i]);
  }
  *mask = NULL;
  return st;
}
/* --- end model families --------------------------------------------- */

static cutout_status check_args(cutout_ctx *c, const cutout_model *m,
                                const cutout_image *img, const void *out)
{
  if (!c) return CUTOUT_EINVAL;
  c->errmsg[0] = 0;
  if (!m || !img || !out || !img->pixels || !img->width || !img->height ||
      img->channels < 1 || img->channels > 4)
    return cutout__err(c->errmsg, CUTOUT_EINVAL, "bad arguments");
  return CUTOUT_OK;
}

/* --- model families (issue #7) --- */
cutout_status cutout_predict_masks(cutout_ctx *c, const cutout_model *m,
                                   const cutout_image *img,
                                   const cutout_remove_params *p,
                                   cutout_image **masks, size_t *count)
{
  cutout_status st = check_args(c, m, img, masks);
  if (st) return st;
  if (!count) return cutout__err(c->errmsg, CUTOUT_EINVAL, "bad arguments");
  cutout_remove_params def = cutout_remove_default_params();
  return predict_masks(c, m, img, p ? p : &def, masks, count);
}

cutout_status cutout_predict_mask(cutout_ctx *c, const cutout_model *m,
                                  const cutout_image *img, cutout_image **mask)
{
  cutout_image *masks[CUTOUT_MAX_MASKS] = {NULL, NULL, NULL};
  size_t n = 0;
  cutout_status st = cutout_predict_masks(c, m, img, NULL, masks, &n);
  if (st) return st;
  if (n == 1) {
    *mask = masks[0];
    return CUTOUT_OK;
  }
  st = stack_v(c, masks, n, 1, mask);
  for (size_t i = 0; i < n; i++) cutout_image_free(masks[i]);
  return st;
}

/* One ORT run per chunk when the batch dimension is dynamic: the inputs
 * are normalised one by one into one [B,3,H,W] tensor. */
cutout_status cutout_predict_mask_batch(cutout_ctx *c, const cutout_model *m,
                                        const cutout_image *const *imgs,
                                        size_t n, size_t max_batch,
                                        cutout_image **masks)
{
  if (!c) return CUTOUT_EINVAL;
  c->errmsg[0] = 0;
  if (!m || !imgs || !masks || (n && !max_batch))
    return cutout__err(c->errmsg, CUTOUT_EINVAL, "bad arguments");
  for (size_t i = 0; i < n; i++) {
    cutout_status st = check_args(c, m, imgs[i], masks);
    if (st) return st;
  }
  if (m->row->post == CUTOUT_POST_CLOTH || m->row->post == CUTOUT_POST_SAM)
    return cutout__err(c->errmsg, CUTOUT_EUNSUPPORTED,
                       "%s gives its own masks: use cutout_predict_masks",
                       m->name);
  size_t per = m->dynamic_batch ? max_batch : 1;
  size_t plane = (size_t)(m->in_w * m->in_h);
  cutout_image **small = calloc(n ? n : 1, sizeof *small);
  cutout_image **res = calloc(n ? n : 1, sizeof *res);
  uint8_t **outs = calloc(per, sizeof *outs);
  float *input = NULL;
  cutout_status st = CUTOUT_OK;
  if (!small || !res || !outs) {
    st = cutout__err(c->errmsg, CUTOUT_ENOMEM, "out of memory");
    goto done;
  }
  size_t bytes;
  if (cutout__mul_size(plane * 3 * sizeof(float), per, &bytes) ||
      !(input = malloc(bytes))) {
    st = cutout__err(c->errmsg, CUTOUT_ENOMEM, "out of memory");
    goto done;
  }
  for (size_t b0 = 0; b0 < n && !st; b0 += per) {
    size_t nb = n - b0 < per ? n - b0 : per;
    struct cutout__stage_clock k;
    if ((st = cutout__check_canceled(c))) break;
    cutout__stage_begin(&k);
    for (size_t i = 0; i < nb && !st; i++) {
      st = cutout__model_input(c, m, imgs[b0 + i], input + i * plane * 3);
      if (!st && cutout_image_new((uint32_t)m->in_w, (uint32_t)m->in_h, 1,
                                  &small[b0 + i]))
        st = cutout__err(c->errmsg, CUTOUT_ENOMEM, "out of memory");
      if (!st) outs[i] = small[b0 + i]->pixels;
    }
    cutout__stage_end(&k, &c->times, CUTOUT_STAGE_PREPROCESS);
    if (st) break;
    cutout__stage_begin(&k);
    st = run_model(c, m, input, (int64_t)nb, outs);
    cutout__stage_end(&k, &c->times, CUTOUT_STAGE_INFERENCE);
    cutout__stage_begin(&k);
    for (size_t i = 0; i < nb && !st; i++)
      st = cutout__resize_lanczos(small[b0 + i], imgs[b0 + i]->width,
                                  imgs[b0 + i]->height, c->io_threads,
                                  &res[b0 + i], c->errmsg);
    cutout__stage_end(&k, &c->times, CUTOUT_STAGE_POSTPROCESS);
  }
  if (!st)
    for (size_t i = 0; i < n; i++) {
      masks[i] = res[i];
      res[i] = NULL;
    }

done:
  for (size_t i = 0; small && res && i < n; i++) {
    cutout_image_free(small[i]);
    cutout_image_free(res[i]);
  }
  free(small);
  free(res);
  free(outs);
  free(input);
  return st;
}
/* --- end model families --- */

/* A new call of cutout_remove/cutout_apply_mask: no warning yet, and the
 * matting stage counts from zero. */
static void begin_call(cutout_ctx *c)
{
  c->warnmsg[0] = 0;
  c->times.wall[CUTOUT_STAGE_MATTING] = 0;
  c->times.cpu[CUTOUT_STAGE_MATTING] = 0;
}

/* Everything after the mask: -ppm, -om, matting or the edge mode, the
 * background colour, the crop.  Takes mask.  A part (one of several masks
 * of a cloth-seg cutout) is not cropped: the stacked result is. */
static cutout_status finish(cutout_ctx *c, const cutout_image *img,
                            cutout_image *mask, const cutout_remove_params *p,
                            int part, cutout_image **out)
{
  cutout_status st = CUTOUT_OK;
  cutout_image *tmp = NULL, *res = NULL;
  struct cutout__rect crop = {0, 0, 0, 0, 0};
  const double matting_wall0 = c->times.wall[CUTOUT_STAGE_MATTING];
  const double matting_cpu0 = c->times.cpu[CUTOUT_STAGE_MATTING];
  struct cutout__stage_clock k;
  cutout__stage_begin(&k);
  if (p->post_process_mask) {
    st = cutout__post_process_mask(mask, c->io_threads, &tmp, c->errmsg);
    if (st) goto done;
    cutout_image_free(mask);
    mask = tmp;
    tmp = NULL;
  }
  if (p->only_mask) {
    res = mask; /* bgcolor is skipped with only_mask, as in rembg */
    mask = NULL;
    if (!part) cutout__crop_plan(c, res, p, &crop);
    goto done;
  }
  /* matting / decontaminate / putalpha / naive, and the crop box before
   * any background */
  if ((st = cutout__edge_cutout(c, img, mask, p, &res))) goto done;
  if (!part) cutout__crop_plan(c, res, p, &crop);
  if (p->bgcolor_set) {
    /* Pillow refuses alpha_composite on LA (rembg fails on a grey image
     * with putalpha and -bgc); cutout expands LA to RGBA instead. */
    st = cutout__apply_background(res, p->bgcolor, c->io_threads, &tmp,
                                  c->errmsg);
    if (st) goto done;
    cutout_image_free(res);
    res = tmp;
    tmp = NULL;
  }

done:
  if (!st) st = cutout__crop_apply(c, &crop, &res);
  cutout__stage_add(&k, &c->times, CUTOUT_STAGE_POSTPROCESS);
  /* the matting stage is reported on its own */
  c->times.wall[CUTOUT_STAGE_POSTPROCESS] -=
      c->times.wall[CUTOUT_STAGE_MATTING] - matting_wall0;
  c->times.cpu[CUTOUT_STAGE_POSTPROCESS] -=
      c->times.cpu[CUTOUT_STAGE_MATTING] - matting_cpu0;
  cutout_image_free(mask);
  cutout_image_free(tmp);
  if (st) {
    cutout_image_free(res);
    return st;
  }
  *out = res;
  return CUTOUT_OK;
}

cutout_status cutout_remove(cutout_ctx *c, const cutout_model *m,
                            const cutout_image *img,
                            const cutout_remove_params *p, cutout_image **out)
{
  cutout_status st = check_args(c, m, img, out);
  if (st) return st;
  cutout_remove_params def = cutout_remove_default_params();
  if (!p) p = &def;
  if ((st = cutout__edge_check(p, c->errmsg))) return st;
  begin_call(c);
  cutout_image *mask = NULL;
  if ((st = remove_masks(c, m, img, p, &mask, out))) return st;
  if (!mask) {
    /* several masks, finished and stacked: cropped as one */
    struct cutout__rect crop = {0, 0, 0, 0, 0};
    cutout__crop_plan(c, *out, p, &crop);
    if ((st = cutout__crop_apply(c, &crop, out))) {
      cutout_image_free(*out);
      *out = NULL;
    }
    return st;
  }
  return finish(c, img, mask, p, 0, out);
}

cutout_status cutout_apply_mask(cutout_ctx *c, const cutout_image *img,
                                const cutout_image *mask,
                                const cutout_remove_params *p,
                                cutout_image **out)
{
  if (!c) return CUTOUT_EINVAL;
  c->errmsg[0] = 0;
  if (!img || !mask || !out || !img->pixels || !mask->pixels ||
      !img->width || !img->height || img->channels < 1 || img->channels > 4)
    return cutout__err(c->errmsg, CUTOUT_EINVAL, "bad arguments");
  if (mask->channels != 1 || mask->width != img->width ||
      mask->height != img->height)
    return cutout__err(c->errmsg, CUTOUT_EINVAL,
                       "the mask must be greyscale (L) and %ux%u like the "
                       "image; it is %ux%u with %u channel%s",
                       img->width, img->height, mask->width, mask->height,
                       mask->channels, mask->channels == 1 ? "" : "s");
  cutout_remove_params def = cutout_remove_default_params();
  if (!p) p = &def;
  cutout_status st = cutout__edge_check(p, c->errmsg);
  if (st) return st;
  begin_call(c);
  cutout_image *copy = NULL;
  if (cutout_image_new(mask->width, mask->height, 1, &copy))
    return cutout__err(c->errmsg, CUTOUT_ENOMEM, "out of memory");
  for (uint32_t y = 0; y < mask->height; y++)
    memcpy(copy->pixels + (size_t)y * copy->stride,
           mask->pixels + (size_t)y * mask->stride, mask->width);
  return finish(c, img, copy, p, 0, out);
}

/* --- edges and alpha matting (issue #6) --- */
const char *cutout_ctx_warning(const cutout_ctx *c)
{
  return c ? c->warnmsg : "";
}
/* --- end edges and alpha matting --- */
