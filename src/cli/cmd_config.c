/*
 * cmd_config.c: `cutout config [OPTIONS] [--json] [--load]`: the threading
 * plan the other commands would use with the same flags and environment:
 * every effective setting with its source and reason, the topology, the
 * ONNX Runtime version, calls and config entries, the execution providers
 * and the pool threads alive.  A bad value fails here exactly as it would
 * in `cutout i`, so `cutout config` doubles as a checker (exit 2).
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static void help(void)
{
  printf("Usage: cutout config [OPTIONS] [--json] [--load]\n\n"
         "Print the threading configuration in force: every setting with\n"
         "its source (flag, CUTOUT_* env, OMP_NUM_THREADS or auto) and why,\n"
         "the CPUs this process may use, and the exact ONNX Runtime calls.\n\n"
         "      --json                  machine-readable output\n"
         "      --load                  also load the model (-m) and show the\n"
         "                              pool threads alive afterwards\n"
         "  -h, --help                  this help\n\n%s",
         cli_options_help);
}

int cmd_config(int argc, char **argv)
{
  struct cli_opts o;
  char err[1024] = "";
  int json = 0, load = 0, rc = 1;
  cutout_engine *eng = NULL;
  cutout_model *model = NULL;
  char *text = NULL;

  cli_opts_init(&o);
  for (int i = 1; i < argc;) {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      help();
      cli_opts_free(&o);
      return 0;
    }
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
      i++;
      continue;
    }
    if (strcmp(argv[i], "--load") == 0) {
      load = 1;
      i++;
      continue;
    }
    int r = cli_parse_option(argc, argv, &i, &o, err, sizeof err);
    if (r < 0) goto usage;
    if (r == 0) {
      snprintf(err, sizeof err, "unknown argument %s (see cutout config "
               "--help)", argv[i]);
      goto usage;
    }
  }
  if (cli_apply_extras(&o, err, sizeof err)) goto usage;

  cutout_status st = cutout_engine_new(&o.engine, &eng, err, sizeof err);
  if (st == CUTOUT_EINVAL) goto usage;
  if (st) {
    cli_error("%s", err);
    goto done;
  }
  if (load) {
    cutout_model_params mp = cutout_model_default_params();
    mp.model_path = o.model_path;
    if (cutout_model_load(eng, o.model, &mp, &model, err, sizeof err)) {
      cli_error("%s", err);
      goto done;
    }
  }
  if (cutout_engine_describe(eng, json, &text)) {
    cli_error("out of memory");
    goto done;
  }
  fputs(text, stdout);
  if (model && !json) {
    const char *path = "", *note = "";
    cutout_compiled cs = cutout_model_compiled(model, &path, &note);
    printf("  model %-15s %s%s%s%s%s\n", cutout_model_name(model),
           cutout_compiled_str(cs),
           *path ? ": " : "", path, *note ? "; " : "", note);
  }
  rc = fflush(stdout) == 0 ? 0 : 1;
  goto done;

usage:
  cli_error("%s", err);
  rc = 2;
done:
  cutout_free(text);
  cutout_model_free(model);
  cutout_engine_free(eng);
  cli_opts_free(&o);
  return rc;
}
