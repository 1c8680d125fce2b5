/*
 * imaging.h: the pixel operations of rembg's pipeline, each reproducing the
 * exact integer arithmetic of the Pillow / SciPy / scikit-image code rembg
 * calls (Pillow 9.4, SciPy 1.10, scikit-image 0.19 in the references).
 * All functions are pure: they read their inputs and write new images.
 */
#ifndef CUTOUT_IMAGING_H
#define CUTOUT_IMAGING_H

#include "internal.h"

/*
 * Hot loops are written in fixed-size blocks that gcc -O2 vectorises; the
 * ones that gain from wider vectors or SSE4/AVX2 instructions (32-bit
 * multiplies) also get an AVX2 clone, picked at load time on x86-64 Linux.
 * Clones compute exactly what the default code does: same operations in
 * the same order per pixel (target "avx2" does not enable FMA contraction).
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    defined(__linux__)
#define CUTOUT_KERNEL_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CUTOUT_KERNEL_CLONES
#endif

/*
 * Check that img is a usable image: non-NULL, pixels set, width and height
 * > 0, 1..4 channels, stride >= width * channels.  fn and what name the
 * caller and the argument in the message ("resize: input").  Returns
 * CUTOUT_OK or CUTOUT_EINVAL with the reason in err.
 */
cutout_status cutout__image_check(const cutout_image *img, const char *fn,
                                  const char *what, char *err);

/*
 * Pillow's Image.resize(size, LANCZOS) for 8-bit images of 1..4 channels:
 * 22-bit fixed-point coefficients, horizontal pass first then vertical, an
 * 8-bit intermediate, only the rows the vertical pass needs.  An image that
 * already has the requested size is copied.  nthreads splits rows.
 */
cutout_status cutout__resize_lanczos(const cutout_image *in, uint32_t out_w,
                                     uint32_t out_h, int nthreads,
                                     cutout_image **out, char *err);

/* Pillow's convert("RGB") from L, LA, RGB, RGBA (alpha dropped). */
cutout_status cutout__to_rgb(const cutout_image *in, cutout_image **out,
                             char *err);

/*
 * rembg's post_process(): skimage opening with disk(1), SciPy
 * gaussian_filter(float64, sigma=2, mode="reflect", truncate=4), then
 * 255 where >= 127 else 0.  mask is L; the result is a new L image.
 */
cutout_status cutout__post_process_mask(const cutout_image *mask,
                                        int nthreads, cutout_image **out,
                                        char *err);

/*
 * rembg's naive_cutout(): Image.composite(img, transparent RGBA, mask),
 * i.e. img converted to RGBA, every channel scaled by mask with Pillow's
 * DIV255 rounding.  img is L/LA/RGB/RGBA, mask L of the same size.
 */
cutout_status cutout__naive_cutout(const cutout_image *img,
                                   const cutout_image *mask, int nthreads,
                                   cutout_image **out, char *err);

/*
 * rembg's putalpha_cutout(): img.putalpha(mask).  L and LA give LA;
 * RGB and RGBA give RGBA.
 */
cutout_status cutout__putalpha(const cutout_image *img,
                               const cutout_image *mask, cutout_image **out,
                               char *err);

/*
 * rembg's apply_background_color(): Image.alpha_composite(
 * Image.new("RGBA", size, color), img) with Pillow's integer arithmetic.
 * img is converted to RGBA first (LA is expanded); the result is RGBA.
 */
cutout_status cutout__apply_background(const cutout_image *img,
                                       const uint8_t color[4], int nthreads,
                                       cutout_image **out, char *err);

#endif
