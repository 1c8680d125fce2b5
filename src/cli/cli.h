/* cli.h: the commands of the cutout tool. */
#ifndef CUTOUT_CLI_H
#define CUTOUT_CLI_H

#include "options.h"

/* Each takes argv with argv[0] = the command name; returns the exit code:
 * 0 success, 1 failure, 2 usage error. */
int cmd_i(int argc, char **argv);
int cmd_p(int argc, char **argv);
int cmd_b(int argc, char **argv);
int cmd_config(int argc, char **argv);
/* --- model families (issue #7) --- */
int cmd_d(int argc, char **argv);
int cmd_models(int argc, char **argv);
/* Fill mp from the options and, unless --offline, fetch the model's files
 * when missing or damaged, as rembg's sessions do on first use (progress
 * bar on a terminal).  -1 with the reason in err. */
int cli_model_prepare(const struct cli_opts *o, cutout_model_params *mp,
                      char *err, size_t errlen);
/* --- end model families --- */
int cmd_bench(int argc, char **argv);
/* issue #5: rembg's HTTP server (src/server/cmd_s.c) */
int cmd_s(int argc, char **argv);

#endif
