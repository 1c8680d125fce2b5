/* options.h: the options shared by cutout's commands (rembg's i/p/b flags
 * plus cutout's own), parsed from argv. */
#ifndef CUTOUT_CLI_OPTIONS_H
#define CUTOUT_CLI_OPTIONS_H

#include "cutout.h"
#include "stats.h"

#include <stdint.h>

struct cli_opts {
  const char *model;           /* -m, default "u2net" like rembg */
  cutout_remove_params remove; /* -om -ppm -bgc, putalpha from -x; issue
                                  #6: -a -af -ab -ae -dc --edge --crop */
  const char *extras;          /* -x JSON, as given */
  char *model_path;            /* from -x (owned) */
  cutout_format format;        /* --format, UNKNOWN = from the name */
  int quality;                 /* --quality, -1 default */
  uint64_t max_pixels;         /* --max-pixels */
  int stats;                   /* --stats: 1 text, 2 --stats=json */
  cutout_engine_params engine; /* threading flags */
  /* --- model families (issue #7) --- */
  char *providers;             /* --providers / -x providers (owned) */
  int providers_flag;          /* --providers given: it beats -x */
  char *sam_model;             /* -x sam_model (owned) */
  int sam_quant;               /* -x sam_quant */
  cutout_prompt *prompt;       /* -x sam_prompt (owned); remove points
                                  at it */
  int offline;                 /* --offline: never download a model */
  /* --- end model families --- */
};

void cli_opts_init(struct cli_opts *o);
void cli_opts_free(struct cli_opts *o);

/* Try to parse argv[*i] (and its values) as a shared option.
 * Returns 1 when consumed (*i advanced past it), 0 when argv[*i] is not a
 * shared option, -1 on a bad value (message in err). */
int cli_parse_option(int argc, char **argv, int *i, struct cli_opts *o,
                     char *err, size_t errlen);

/* Parse o->extras (rembg's -x JSON) into o, and fill the engine
 * parameters no flag set from the CUTOUT_* environment and
 * OMP_NUM_THREADS (cutout_engine_params_from_env).  Call it once, after
 * the flags.  -1 with err on bad JSON or a bad variable. */
int cli_apply_extras(struct cli_opts *o, char *err, size_t errlen);
/* The extras part of cli_apply_extras alone (no environment): for the
 * server, which parses each request's extras into a fresh cli_opts. */
int cli_parse_extras(struct cli_opts *o, char *err, size_t errlen);

/* --- model families (issue #7) --- */
/* The model parameters the options give (model_path, sam_model,
 * sam_quant, providers). */
void cli_model_params(const struct cli_opts *o, cutout_model_params *mp);
/* --- end model families --- */

/* The help text of the shared options. */
extern const char cli_options_help[];

/* Monotonic seconds, for --stats. */
double cli_now(void);

/* Print "cutout: msg" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
