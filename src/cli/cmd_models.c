/*
 * cmd_models.c: `cutout models [--json] [-x JSON]`: every model cutout
 * knows (rembg's, in rembg's order, plus cutout's own), with its family,
 * input size, whether its files are in the model folder, their size and
 * place, and its note (bria-rmbg's non-commercial licence).  Nothing is
 * hashed here: "verified" means an earlier load or download checked the
 * file and it has not changed since.
 */
#include "cli.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
  printf("Usage: cutout models [--json] [-x JSON]\n\n"
         "List the models: name (for -m), family, input size, status in the\n"
         "model folder, size on disk, file and note.  Status: verified\n"
         "(checksum checked earlier, file unchanged), present (there, not\n"
         "checked yet or nothing to check against), missing (cutout d NAME\n"
         "fetches it), custom (runs your own file: -x '{\"model_path\": ...}').\n\n"
         "      --json                  machine-readable output\n"
         "  -x, --extras JSON           {\"sam_model\": NAME, \"sam_quant\": true,\n"
         "                              \"model_path\": PATH}\n"
         "  -h, --help                  this help\n");
}

static const char *input_text(const cutout_model_info *in, char *buf,
                              size_t cap)
{
  if (strcmp(in->family, "sam") == 0)
    snprintf(buf, cap, "1024x684"); /* the encoder's canvas, W x H */
  else
    snprintf(buf, cap, "%ux%u", in->input_size, in->input_size);
  return buf;
}

static const char *status_of(const cutout_model_info *in, int present,
                             int verified)
{
  if (!in->file) return present ? "present" : "custom";
  return verified ? "verified" : present ? "present" : "missing";
}

int cmd_models(int argc, char **argv)
{
  int json = 0, rc = 1;
  struct cli_opts o;
  char err[1024], dir[4096];

  cli_opts_init(&o);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      help();
      cli_opts_free(&o);
      return 0;
    }
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else if ((strcmp(argv[i], "-x") == 0 ||
                strcmp(argv[i], "--extras") == 0) && i + 1 < argc) {
      o.extras = argv[++i];
    } else if (strncmp(argv[i], "--extras=", 9) == 0) {
      o.extras = argv[i] + 9;
    } else {
      cli_error("unknown argument %s (see cutout models --help)", argv[i]);
      cli_opts_free(&o);
      return 2;
    }
  }
  if (cli_apply_extras(&o, err, sizeof err)) {
    cli_error("%s", err);
    cli_opts_free(&o);
    return 2;
  }
  cutout_model_params mp = cutout_model_default_params();
  cli_model_params(&o, &mp);
  if (cutout_model_dir(dir, sizeof dir)) {
    cli_error("model folder name too long");
    goto done;
  }

  cJSON *root = json ? cJSON_CreateObject() : NULL, *arr = NULL;
  if (json) {
    cJSON_AddStringToObject(root, "model_dir", dir);
    arr = cJSON_AddArrayToObject(root, "models");
  } else {
    printf("Model folder: %s\n\n", dir);
    printf("%-22s %-16s %-10s %-9s %9s  %s\n", "NAME", "FAMILY", "INPUT",
           "STATUS", "ON DISK", "FILE / NOTE");
  }
  for (size_t i = 0; i < cutout_model_count(); i++) {
    const cutout_model_info *in = cutout_model_info_at(i);
    char path[4096] = "", inp[32], size[32] = "-";
    uint64_t bytes = 0;
    int present = 0, verified = 0;
    cutout_model_locate(in->name, &mp, path, sizeof path, &bytes, &present,
                        &verified);
    if (present) {
      double b = (double)bytes;
      if (b >= 1e9)
        snprintf(size, sizeof size, "%.2f GB", b / 1e9);
      else
        snprintf(size, sizeof size, "%.1f MB", b / 1e6);
    }
    const char *status = status_of(in, present, verified);
    int downloadable = in->url || strcmp(in->family, "sam") == 0;
    if (json) {
      cJSON *m = cJSON_CreateObject();
      cJSON_AddStringToObject(m, "name", in->name);
      cJSON_AddStringToObject(m, "family", in->family);
      cJSON_AddStringToObject(m, "input", input_text(in, inp, sizeof inp));
      cJSON_AddStringToObject(m, "status", status);
      cJSON_AddBoolToObject(m, "present", present);
      cJSON_AddBoolToObject(m, "verified", verified);
      cJSON_AddNumberToObject(m, "bytes", (double)bytes);
      if (*path)
        cJSON_AddStringToObject(m, "path", path);
      else
        cJSON_AddNullToObject(m, "path");
      cJSON_AddBoolToObject(m, "downloadable", downloadable);
      if (in->url)
        cJSON_AddStringToObject(m, "url", in->url);
      else
        cJSON_AddNullToObject(m, "url");
      if (in->hash)
        cJSON_AddStringToObject(m, "hash", in->hash);
      else
        cJSON_AddNullToObject(m, "hash");
      cJSON_AddStringToObject(m, "output", in->output);
      if (in->note)
        cJSON_AddStringToObject(m, "note", in->note);
      else
        cJSON_AddNullToObject(m, "note");
      cJSON_AddItemToArray(arr, m);
    } else {
      const char *file = *path ? strrchr(path, '/') : NULL;
      file = file ? file + 1 : *path ? path : "-";
      printf("%-22s %-16s %-10s %-9s %9s  %s%s%s\n", in->name, in->family,
             input_text(in, inp, sizeof inp), status, size, file,
             in->note ? "; " : "", in->note ? in->note : "");
    }
  }
  if (json) {
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) {
      cli_error("out of memory");
      goto done;
    }
    puts(text);
    free(text);
  }
  rc = fflush(stdout) == 0 ? 0 : 1;
done:
  cli_opts_free(&o);
  return rc;
}
