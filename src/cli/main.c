/*
 * main.c: the cutout command: dispatch to rembg's commands (i, ...) and
 * cutout's own.  Uses only the public API in cutout.h.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
  fprintf(f,
          "Usage: cutout [--version] [--help] COMMAND [ARGS]...\n"
          "\n"
          "Remove image backgrounds: rembg's commands and results, in C.\n"
          "\n"
          "Commands:\n"
          "  i   one image: cutout i [OPTIONS] [INPUT] [OUTPUT]\n"
          "  p   a folder: cutout p [OPTIONS] INPUT_DIR OUTPUT_DIR\n"
          "  b   raw RGB24 frames on stdin: cutout b [OPTIONS] WIDTH HEIGHT\n"
          "  s   HTTP server (rembg's API): cutout s [OPTIONS]\n"
          "  d   download models: cutout d [MODEL...] (all without MODEL)\n"
          "  models  list the models, their status and files: cutout models\n"
          "  config  the threading plan in force and why: cutout config [--json]\n"
          "  bench   compare thread configurations: cutout bench [OPTIONS]\n"
          "\n"
          "`cutout COMMAND --help` shows a command's options.\n");
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
    printf("cutout %s (ONNX Runtime %s)\n", cutout_version(),
           cutout_ort_version());
    return 0;
  }
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
      strcmp(cmd, "help") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(cmd, "i") == 0) return cmd_i(argc - 1, argv + 1);
  if (strcmp(cmd, "p") == 0) return cmd_p(argc - 1, argv + 1);
  if (strcmp(cmd, "b") == 0) return cmd_b(argc - 1, argv + 1);
  if (strcmp(cmd, "s") == 0) return cmd_s(argc - 1, argv + 1);
  /* --- model families (issue #7) --- */
  if (strcmp(cmd, "d") == 0) return cmd_d(argc - 1, argv + 1);
  if (strcmp(cmd, "models") == 0) return cmd_models(argc - 1, argv + 1);
  /* --- end model families --- */
  if (strcmp(cmd, "config") == 0) return cmd_config(argc - 1, argv + 1);
  if (strcmp(cmd, "bench") == 0) return cmd_bench(argc - 1, argv + 1);
  cli_error("unknown command '%s' (see cutout --help)", cmd);
  return 2;
}
