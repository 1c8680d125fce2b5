/*
 * registry.h: the table of rembg's models (rembg 2.0.77 sessions), with
 * what cutout needs to find, verify, feed and read each one.
 */
#ifndef CUTOUT_REGISTRY_H
#define CUTOUT_REGISTRY_H

#include "internal.h"

/* How the first output becomes a mask (rembg's predict()). */
enum cutout__post {
  CUTOUT_POST_MINMAX,         /* out[0][:,0] -> min-max -> *255 -> uint8 */
  CUTOUT_POST_MINMAX_CLIP,    /* u2net: min-max, clip(0,1), ... */
  CUTOUT_POST_SIGMOID_MINMAX, /* BiRefNet: sigmoid first */
  CUTOUT_POST_CLOTH,          /* u2net_cloth_seg: argmax over classes */
  CUTOUT_POST_SAM             /* SAM encoder/decoder */
};

struct cutout__model_row {
  cutout_model_info info;
  const char *alt_hash; /* a second accepted artifact ("sha256:..."), or NULL */
  enum cutout__post post;
  int custom;           /* 1: *_custom, the file comes from model_path */
};

size_t cutout__registry_count(void);
const struct cutout__model_row *cutout__registry_at(size_t i);
const struct cutout__model_row *cutout__registry_find(const char *name);
/* The row whose file name equals base (e.g. "u2net.onnx"), or NULL. */
const struct cutout__model_row *cutout__registry_by_file(const char *base);

/* --- model files and downloads (issue #7) --- */

/* rembg's release folder: every model's URL starts with it. */
#define CUTOUT__RELEASE_URL \
  "https://github.com/danielgatis/rembg/releases/download/v0.0.0/"
/* SAM's default model (rembg's sam_model kwarg). */
#define CUTOUT__SAM_DEFAULT "sam_vit_b_01ec64"
#define CUTOUT__MAX_FILES 3

/* One file a model needs in the model folder. */
struct cutout__model_file {
  char file[160];       /* its name in the model folder */
  char asset[160];      /* the release asset it comes from */
  const char *hash;     /* "md5:..." / "sha256:...", or NULL: no check */
  const char *alt_hash; /* a second accepted artifact, or NULL */
  int parts;            /* > 0: asset.1.bin .. asset.N.bin, concatenated
                           (the external data of sam_vit_h_4b8939) */
};

/* The files r needs, in load order (SAM: encoder, decoder, then vit_h's
 * external data).  Returns the count: 0 for the *_custom models (the
 * user's own file), -1 for a bad sam_model (err says why). */
int cutout__model_files(const struct cutout__model_row *r,
                        const char *sam_model, int sam_quant,
                        struct cutout__model_file *out, char *err);

/* The verification stamp beside a model file (model.c): 1 when path's
 * size, mtime and inode still match a successful check against hash. */
struct stat;
int cutout__stamp_ok(const char *path, const struct stat *st,
                     const char *hash);
void cutout__stamp_write(const char *path, const struct stat *st,
                         const char *hash);
/* --- end model files --- */

#endif
