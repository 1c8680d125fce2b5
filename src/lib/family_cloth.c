/*
 * family_cloth.c: u2net_cloth_seg, rembg's Unet2ClothSession.predict().
 *
 * The network scores four classes per pixel (0 background, 1 upper body,
 * 2 lower body, 3 full body) on a 768 x 768 ImageNet-normalised input.
 * rembg takes the argmax over the classes, makes the class map an "L"
 * image and resizes it to the photo with LANCZOS, so class indices are
 * interpolated at the boundaries (its quirk, kept).  Each category's mask
 * is that map through a 4-entry palette with only the category white,
 * converted to RGB and then to L.  The cc / cloth_category extra picks one
 * category; otherwise all three masks are returned, which remove() stacks
 * vertically.
 */
#include "family.h"
#include "imaging.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void cutout__cloth_argmax(const float *scores, size_t classes, size_t plane,
                          uint8_t *out)
{
  for (size_t i = 0; i < plane; i++) {
    size_t best = 0;
    float bv = scores[i];
    for (size_t k = 1; k < classes; k++) {
      float v = scores[k * plane + i];
      /* numpy: the first maximum; the first NaN beats everything */
      if (!isnan(bv) && (v > bv || isnan(v))) {
        best = k;
        bv = v;
      }
    }
    out[i] = (uint8_t)(best > 255 ? 255 : best);
  }
}

void cutout__cloth_category_mask(const uint8_t *classes, size_t n, int k,
                                 uint8_t *out)
{
  /* palette1..3 of rembg: index k is (255,255,255), indices 0..3 else
   * black; Pillow's palette beyond the 4 given entries keeps its initial
   * grey ramp (i,i,i), and L of a grey (v,v,v) is v */
  for (size_t i = 0; i < n; i++) {
    uint8_t v = classes[i];
    out[i] = v == k ? 255 : v <= 3 ? 0 : v;
  }
}

cutout_status cutout__cloth_masks(cutout_ctx *c, const cutout_model *m,
                                  const cutout_image *img, int category,
                                  cutout_image **masks, size_t *n)
{
  const OrtApi *api = c->engine->api;
  size_t plane = (size_t)(m->in_w * m->in_h);
  float *input = NULL;
  OrtValue *in = NULL, *out = NULL;
  cutout_image *cls = NULL, *big = NULL, *res[3] = {NULL, NULL, NULL};
  cutout_status st;
  struct cutout__stage_clock k;
  int cats[3] = {1, 2, 3}, ncat = 3;

  if (category >= CUTOUT_CLOTH_UPPER && category <= CUTOUT_CLOTH_FULL) {
    cats[0] = category; /* UPPER = 1, LOWER = 2, FULL = 3: the class */
    ncat = 1;
  } else if (category != CUTOUT_CLOTH_ALL) {
    return cutout__err(c->errmsg, CUTOUT_EINVAL, "bad cloth category %d",
                       category);
  }

  cutout__stage_begin(&k);
  input = malloc(plane * 3 * sizeof *input);
  if (!input) return cutout__err(c->errmsg, CUTOUT_ENOMEM, "out of memory");
  if ((st = cutout__model_input(c, m, img, input))) goto done;
  cutout__stage_end(&k, &c->times, CUTOUT_STAGE_PREPROCESS);

  cutout__stage_begin(&k);
  int64_t shape[4] = {1, 3, m->in_h, m->in_w};
  st = cutout__ort_check(api->CreateTensorWithDataAsOrtValue(
                             c->engine->cpu_mem, input,
                             plane * 3 * sizeof(float), shape, 4,
                             ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &in),
                         CUTOUT_ERUNTIME, c->errmsg, "input tensor");
  if (st) goto done;
  const char *in_name = m->input_name;
  st = cutout__run(c, m->session, &in_name, (const OrtValue *const *)&in, 1,
                   m->output_name, &out, m->path);
  cutout__stage_end(&k, &c->times, CUTOUT_STAGE_INFERENCE);
  if (st) goto done;

  cutout__stage_begin(&k);
  float *scores;
  int64_t d[8];
  size_t nd;
  if ((st = cutout__tensor_dims(c, out, &scores, d, &nd, m->path))) goto done;
  if (nd != 4 || d[0] < 1 || d[1] < 1 || d[1] > 255 || d[2] != m->in_h ||
      d[3] != m->in_w) {
    st = cutout__err(c->errmsg, CUTOUT_EMODEL,
                     "%s: a cloth model's first output is [1,classes,%lld,"
                     "%lld] scores", m->path, (long long)m->in_h,
                     (long long)m->in_w);
    goto done;
  }
  if ((st = cutout_image_new((uint32_t)m->in_w, (uint32_t)m->in_h, 1, &cls)))
    goto oom;
  cutout__cloth_argmax(scores, (size_t)d[1], plane, cls->pixels);
  st = cutout__resize_lanczos(cls, img->width, img->height, c->io_threads,
                              &big, c->errmsg);
  if (st) goto done;
  size_t npx = (size_t)img->width * img->height;
  for (int i = 0; i < ncat; i++) {
    if ((st = cutout_image_new(img->width, img->height, 1, &res[i])))
      goto oom;
    cutout__cloth_category_mask(big->pixels, npx, cats[i], res[i]->pixels);
  }
  cutout__stage_end(&k, &c->times, CUTOUT_STAGE_POSTPROCESS);
  for (int i = 0; i < ncat; i++) {
    masks[i] = res[i];
    res[i] = NULL;
  }
  *n = (size_t)ncat;
  goto done;

oom:
  st = cutout__err(c->errmsg, CUTOUT_ENOMEM, "out of memory");
done:
  for (int i = 0; i < 3; i++) cutout_image_free(res[i]);
  cutout_image_free(cls);
  cutout_image_free(big);
  if (out) api->ReleaseValue(out);
  if (in) api->ReleaseValue(in);
  free(input);
  return st;
}
