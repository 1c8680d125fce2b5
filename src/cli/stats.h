/* stats.h: --stats reporting, shared by every command. */
#ifndef CUTOUT_CLI_STATS_H
#define CUTOUT_CLI_STATS_H

#include "cutout.h"

#include <stdio.h>

/* Print per-stage wall and CPU time summed over nimages, the whole run's
 * wall time, CPU utilisation and peak RSS; as JSON when json != 0. */
void cli_stats_print(FILE *f, const cutout_stage_times *sum, int nimages,
                     double wall_total, int json);

#endif
