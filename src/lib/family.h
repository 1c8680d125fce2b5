/*
 * family.h: per-family model processing (rembg's session classes) shared
 * by remove.c, family_cloth.c and family_sam.c.  remove.c runs the common
 * path (resize, normalise, first output, min-max); the families whose
 * predict() differs (u2net_cloth_seg, sam) live in their own files.  The
 * pure steps are exposed so unit tests can check them one by one.
 */
#ifndef CUTOUT_FAMILY_H
#define CUTOUT_FAMILY_H

#include "engine.h"

/* ---- remove.c: the common machinery ---------------------------------- */

/* "canceled" (ECANCELED) when cutout_ctx_cancel() was called. */
cutout_status cutout__check_canceled(cutout_ctx *c);

/* rembg's BaseSession.normalize(): img converted to RGB, LANCZOS to the
 * model's input size, divided by the image maximum, (x - mean) / std, as
 * float32 NCHW into dst (3 * in_h * in_w floats). */
cutout_status cutout__model_input(cutout_ctx *c, const cutout_model *m,
                                  const cutout_image *img, float *dst);

/* Run session s on the ctx's run options (cancellation), with the calling
 * thread pinned as the threading plan says; *out is the first requested
 * output (release with ReleaseValue).  what names the model in errors. */
cutout_status cutout__run(cutout_ctx *c, OrtSession *s,
                          const char *const *in_names,
                          const OrtValue *const *in, size_t nin,
                          const char *out_name, OrtValue **out,
                          const char *what);

/* The float data and dimensions of an output tensor (nd <= 8). */
cutout_status cutout__tensor_dims(cutout_ctx *c, OrtValue *v, float **data,
                                  int64_t *dims, size_t *nd, const char *what);

/* ---- family_cloth.c: u2net_cloth_seg --------------------------------- */

/* np.argmax over the class axis of scores [classes, plane] (the first
 * maximum wins; a NaN counts as the maximum, as numpy's). */
void cutout__cloth_argmax(const float *scores, size_t classes, size_t plane,
                          uint8_t *out);
/* One category's mask from the resized class map: Pillow's putpalette with
 * only index k white, then convert("RGB").convert("L"): 255 where the
 * class is k, 0 for the other palette entries 0..3, and the index itself
 * above 3 (Pillow's default palette is a grey ramp). */
void cutout__cloth_category_mask(const uint8_t *classes, size_t n, int k,
                                 uint8_t *out);
/* rembg's Unet2ClothSession.predict(): 1 mask for a category, else 3
 * (upper, lower, full). */
cutout_status cutout__cloth_masks(cutout_ctx *c, const cutout_model *m,
                                  const cutout_image *img, int category,
                                  cutout_image **masks, size_t *n);

/* ---- family_sam.c: sam ------------------------------------------------ */

/* scale = min(canvas_w / W, canvas_h / H): the image is scaled by it and
 * put top-left on the canvas (rembg's transform matrix diag(s, s, 1)). */
double cutout__sam_scale(uint32_t w, uint32_t h, int64_t canvas_h,
                         int64_t canvas_w);
/* The encoder's input: rgb warped onto the canvas (bilinear, zero outside,
 * as scipy.ndimage.map_coordinates order=1, mode "constant"), rounded to
 * uint8 as that function does for a uint8 image, then float32 HWC in
 * 0..255 (the encoder normalises by itself).  dst: canvas_h*canvas_w*3. */
cutout_status cutout__sam_encoder_input(const cutout_image *rgb,
                                        int64_t canvas_h, int64_t canvas_w,
                                        double scale, int threads,
                                        float *dst);
/* The decoder's point_coords ([n,2]) and point_labels ([n]) for a prompt:
 * points, rectangles as two points labelled 2 and 3, then the padding
 * point (0,0) labelled -1; a NULL prompt is rembg's default, one point
 * labelled 1 at (W//2, H//2).  (transfer full: free both) */
cutout_status cutout__sam_points(const cutout_prompt *pr, size_t npr,
                                 uint32_t w, uint32_t h, int64_t canvas_h,
                                 int64_t canvas_w, double scale,
                                 float **coords, float **labels, size_t *n,
                                 char *err);
/* The decoder's masks [nmasks, canvas_h, canvas_w] warped back to W x H
 * (the inverse transform, bilinear as above, in float32): 255 where any
 * mask is above 0, else 0. */
cutout_status cutout__sam_unwarp(const float *masks, size_t nmasks,
                                 int64_t canvas_h, int64_t canvas_w,
                                 double scale, uint32_t w, uint32_t h,
                                 int threads, uint8_t *out);
/* rembg's SamSession.predict(): encoder, decoder, one mask. */
cutout_status cutout__sam_mask(cutout_ctx *c, const cutout_model *m,
                               const cutout_image *img,
                               const cutout_prompt *pr, size_t npr,
                               cutout_image **mask);

#endif
