/*
 * stats.c: the --stats report every command prints at its end: per stage
 * wall and CPU time, then the CPU utilisation and peak RSS of the whole
 * process, and the ORT pool threads alive, for humans or as one JSON
 * object (--stats=json).
 *
 * Stage CPU is the whole process's CPU during the stage (all threads), as
 * the library measures it; with several workers the stages overlap, so
 * their CPU times overlap too.  The totals come from getrusage and are
 * exact.
 */
#include "stats.h"

#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

/* Threads named by cutout's ORT thread callback (cutout-intra-N ...). */
static int pool_threads(void)
{
  DIR *d = opendir("/proc/self/task");
  struct dirent *de;
  int n = 0;
  while (d && (de = readdir(d))) {
    char path[300], comm[32] = "";
    if (de->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", de->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    if (fgets(comm, sizeof comm, f) && strncmp(comm, "cutout-", 7) == 0) n++;
    fclose(f);
  }
  if (d) closedir(d);
  return n;
}

void cli_stats_print(FILE *f, const cutout_stage_times *sum, int nimages,
                     double wall_total, int json)
{
  struct rusage ru;
  cpu_set_t set;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
               (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
  double rss_mb = (double)ru.ru_maxrss / 1024.0; /* Linux: kilobytes */
  int cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  double busy = wall_total > 0 ? cpu / wall_total : 0;
  int n = nimages > 0 ? nimages : 1;

  if (json) {
    fprintf(f, "{\"images\": %d, \"wall_s\": %.6f, \"images_per_s\": %.4f, "
               "\"stages\": {", nimages, wall_total,
            wall_total > 0 ? nimages / wall_total : 0.0);
    for (int s = 0; s < CUTOUT_STAGE_COUNT; s++)
      fprintf(f, "%s\"%s\": {\"wall_s\": %.6f, \"cpu_s\": %.6f}", s ? ", " : "",
              cutout_stage_name((cutout_stage)s), sum->wall[s], sum->cpu[s]);
    fprintf(f, "}, \"cpu_s\": %.6f, \"cpu_utilisation\": %.4f, "
               "\"allowed_cpus\": %d, \"peak_rss_mb\": %.1f, "
               "\"ort_pool_threads\": %d}\n",
            cpu, busy, cpus, rss_mb, pool_threads());
    return;
  }
  fprintf(f, "stats: %d image%s in %.3f s (%.3f images/s)\n", nimages,
          nimages == 1 ? "" : "s", wall_total,
          wall_total > 0 ? nimages / wall_total : 0.0);
  fprintf(f, "stats: %-12s %9s %11s %9s %8s\n", "stage", "wall s", "per image",
          "CPU s", "CPU/wall");
  for (int s = 0; s < CUTOUT_STAGE_COUNT; s++)
    fprintf(f, "stats: %-12s %9.3f %11.3f %9.3f %8.2f\n",
            cutout_stage_name((cutout_stage)s), sum->wall[s],
            sum->wall[s] / n, sum->cpu[s],
            sum->wall[s] > 0 ? sum->cpu[s] / sum->wall[s] : 0.0);
  fprintf(f, "stats: CPU %.3f s in %.3f s = %.2f cores busy (%.0f%% of %d "
             "allowed CPU%s)\n", cpu, wall_total, busy,
          cpus ? 100.0 * busy / cpus : 0.0, cpus, cpus == 1 ? "" : "s");
  fprintf(f, "stats: peak RSS %.1f MB; ORT pool threads alive: %d\n", rss_mb,
          pool_threads());
}
