/* image.c: allocation of cutout_image, the plain pixel container. */
#include "internal.h"

#include "bigalloc.h"

#include <stdlib.h>

cutout_status cutout_image_new(uint32_t width, uint32_t height,
                               uint32_t channels, cutout_image **out)
{
  if (!out || width == 0 || height == 0 || channels < 1 || channels > 4)
    return CUTOUT_EINVAL;
  size_t stride, bytes;
  if (cutout__mul_size(width, channels, &stride) ||
      cutout__mul_size(stride, height, &bytes))
    return CUTOUT_ELIMIT;
  cutout_image *img = calloc(1, sizeof *img);
  if (!img) return CUTOUT_ENOMEM;
  /* Large images on huge pages: a 24 MP RGBA image is 96 MB, 23 000 page
   * faults in 4 KiB pages (bigalloc.h). */
  img->pixels = cutout__big_calloc(bytes);
  if (!img->pixels) {
    free(img);
    return CUTOUT_ENOMEM;
  }
  img->width = width;
  img->height = height;
  img->channels = channels;
  img->stride = stride;
  *out = img;
  return CUTOUT_OK;
}

void cutout_image_free(cutout_image *img)
{
  if (!img) return;
  cutout__big_free(img->pixels);
  free(img);
}
