/*
 * cmd_p.c: `cutout p [OPTIONS] INPUT_DIR OUTPUT_DIR`, rembg's folder
 * command, as a pipeline.
 *
 * DESIGN
 * Three stages joined by bounded queues:
 *   readers  (io threads)  read a file, probe its size, reserve memory from
 *                          the budget, decode;
 *   workers  (W threads)   cutout_remove() on one shared model, each with
 *                          its own ctx (preprocess, inference, postprocess);
 *   writers  (io threads)  encode, write atomically, delete the input (-d).
 * W and the ORT threads per worker come from the engine's thread plan for
 * the throughput workload, so the cores stay busy without oversubscription.
 * The memory budget bounds the images in flight (K), whatever their size.
 *
 * An input is claimed exactly once (a set of paths), whether the initial
 * walk or the watcher (cmd_p_watch.c) finds it.  Outputs that exist are
 * skipped, so a rerun resumes; temporary files a killed run left behind
 * are removed first.
 */
#include "cli.h"
#include "batch.h"
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void help(void)
{
  printf("Usage: cutout p [OPTIONS] INPUT_DIR OUTPUT_DIR\n\n"
         "Remove the background of every image under INPUT_DIR (recursive;\n"
         "images are found by their bytes, not their names).  Outputs mirror\n"
         "the sub-folders; an output that exists is skipped, so a rerun\n"
         "resumes.\n\n"
         "  -w, --watch                 keep watching for new files (inotify);\n"
         "                              a file named *stop.txt or SIGTERM stops\n"
         "  -d, --delete_input          delete each input once its output is\n"
         "                              safely written\n"
         "      --flat                  rembg's flat layout: OUTPUT_DIR/NAME.png\n"
         "      --overwrite             redo outputs that exist\n"
         "      --memory-budget MB      memory for images in flight (default\n"
         "                              1024)\n"
         "%s"
         "  -h, --help                  this help\n",
         cli_options_help);
}

/* Remove ".cutout-tmp.*" files left by a run that was killed. */
static void remove_stale_tmp(const char *dir, int depth)
{
  DIR *d = opendir(dir);
  if (!d || depth > 64) {
    if (d) closedir(d);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char p[PATH_MAX];
    if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= sizeof p)
      continue;
    struct stat st;
    if (lstat(p, &st)) continue;
    if (S_ISDIR(st.st_mode))
      remove_stale_tmp(p, depth + 1);
    else if (S_ISREG(st.st_mode) &&
             strncmp(e->d_name, CLI_TMP_PREFIX, strlen(CLI_TMP_PREFIX)) == 0)
      unlink(p);
  }
  closedir(d);
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Recursive walk, sorted for a stable order; symlinked folders are not
 * followed (no loops); the output folder is skipped when it lies inside
 * the input folder. */
static void walk(struct batch *b, const char *dir, int depth)
{
  if (depth > 64 || batch_stopping(b)) return;
  DIR *d = opendir(dir);
  if (!d) {
    batch_report_error(b, dir, strerror(errno));
    return;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      char **nn = realloc(names, cap * sizeof *nn);
      if (!nn) break;
      names = nn;
    }
    names[n] = strdup(e->d_name);
    if (names[n]) n++;
  }
  closedir(d);
  /* an empty folder leaves names NULL, which qsort may not take (UBSan) */
  if (n > 1) qsort(names, n, sizeof *names, cmp_str);
  for (size_t i = 0; i < n; i++) {
    char p[PATH_MAX];
    if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, names[i]) < sizeof p &&
        !batch_stopping(b)) {
      struct stat st;
      if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (!batch_is_output_dir(b, p)) walk(b, p, depth + 1);
      } else {
        batch_submit(b, p);
      }
    }
    free(names[i]);
  }
  free(names);
}

int cmd_p(int argc, char **argv)
{
  struct cli_opts o;
  struct batch_opts bo;
  char err[1024] = "";
  const char *pos[2] = {NULL, NULL};
  int npos = 0, rc = 1;
  long n;

  cli_opts_init(&o);
  memset(&bo, 0, sizeof bo);
  bo.memory_budget = (size_t)1024 << 20;
  for (int i = 1; i < argc;) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      help();
      cli_opts_free(&o);
      return 0;
    }
    if (!strcmp(a, "-w") || !strcmp(a, "--watch")) {
      bo.watch = 1;
      i++;
      continue;
    }
    if (!strcmp(a, "-d") || !strcmp(a, "--delete_input") ||
        !strcmp(a, "--delete-input")) {
      bo.delete_input = 1;
      i++;
      continue;
    }
    if (!strcmp(a, "--flat")) {
      bo.flat = 1;
      i++;
      continue;
    }
    if (!strcmp(a, "--overwrite")) {
      bo.overwrite = 1;
      i++;
      continue;
    }
    if (!strcmp(a, "--memory-budget")) {
      char *end;
      if (i + 1 >= argc || (n = strtol(argv[i + 1], &end, 10)) < 64 || *end ||
          n > (1L << 20)) {
        snprintf(err, sizeof err, "--memory-budget needs a size in MB "
                 "(64 or more)");
        goto usage;
      }
      bo.memory_budget = (size_t)n << 20;
      i += 2;
      continue;
    }
    int r = cli_parse_option(argc, argv, &i, &o, err, sizeof err);
    if (r < 0) goto usage;
    if (r > 0) continue;
    if (a[0] == '-' && a[1]) {
      snprintf(err, sizeof err, "unknown option %s (see cutout p --help)", a);
      goto usage;
    }
    if (npos == 2) {
      snprintf(err, sizeof err, "too many arguments: %s", a);
      goto usage;
    }
    pos[npos++] = argv[i++];
  }
  if (npos != 2) {
    snprintf(err, sizeof err, "need INPUT_DIR and OUTPUT_DIR");
    goto usage;
  }
  if (cli_apply_extras(&o, err, sizeof err)) goto usage;
  struct stat st;
  if (stat(pos[0], &st) || !S_ISDIR(st.st_mode)) {
    cli_error("%s: %s", pos[0], stat(pos[0], &st) ? "no such folder" :
              "not a folder");
    goto done;
  }
  if (cli_mkdirs(pos[1], err, sizeof err)) {
    cli_error("%s: %s", pos[1], err);
    goto done;
  }
  bo.in_dir = pos[0];
  bo.out_dir = pos[1];
  remove_stale_tmp(pos[1], 0);

  struct batch *b = NULL;
  if (batch_new(&o, &bo, &b, err, sizeof err)) {
    cli_error("%s", err);
    goto done;
  }
  /* The watcher starts before the walk: a file that appears during the
   * initial pass is seen by one of them, and claimed once. */
  if (bo.watch && batch_watch_start(b, err, sizeof err)) {
    cli_error("%s", err);
    batch_free(b);
    goto done;
  }
  walk(b, pos[0], 0);
  batch_initial_pass_done(b);
  if (bo.watch) batch_watch_run(b);
  rc = batch_finish(b);
  batch_free(b);
  goto done;

usage:
  cli_error("%s", err);
  rc = 2;
done:
  cli_opts_free(&o);
  return rc;
}
