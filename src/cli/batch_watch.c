/*
 * batch_watch.c: `cutout p --watch`.  inotify on every folder under the
 * input, recursively (rembg's watchdog observer is not recursive).
 *
 * A file is taken when it is complete: IN_CLOSE_WRITE (the writer closed
 * it) or IN_MOVED_TO (renamed in, already whole).  Never on IN_CREATE or
 * IN_MODIFY, so a file written slowly is not read half-written.  A new
 * folder gets a watch and a walk (files may land in it before the watch).
 * rembg's convention: a file whose name ends in "stop.txt" is deleted and
 * ends the watch; SIGINT/SIGTERM end it too.
 */
#include "batch_priv.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>


static int ends_with(const char *s, const char *suffix)
{
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Watch dir and every folder below it; submit files found there when
 * submit_files (a folder that appeared after the start). */
static void watch_tree(struct batch *b, const char *dir, int submit_files,
                       int depth)
{
  if (depth > 64 || batch_is_output_dir(b, dir)) return;
  int wd = inotify_add_watch(b->inotify_fd, dir,
                             IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE);
  if (wd < 0) {
    fprintf(stderr, "cutout: warning: cannot watch %s: %s\n", dir,
            strerror(errno));
    return;
  }
  if (wd >= b->n_wd) {
    int n = wd + 64;
    char **np = realloc(b->wd_paths, (size_t)n * sizeof *np);
    if (!np) return;
    memset(np + b->n_wd, 0, (size_t)(n - b->n_wd) * sizeof *np);
    b->wd_paths = np;
    b->n_wd = n;
  }
  free(b->wd_paths[wd]);
  b->wd_paths[wd] = strdup(dir);
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char p[PATH_MAX];
    if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= sizeof p)
      continue;
    struct stat st;
    if (lstat(p, &st)) continue;
    if (S_ISDIR(st.st_mode))
      watch_tree(b, p, submit_files, depth + 1);
    else if (submit_files && !ends_with(e->d_name, "stop.txt"))
      batch_submit(b, p);
  }
  closedir(d);
}

int batch_watch_start(struct batch *b, char *err, size_t errlen)
{
  b->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (b->inotify_fd < 0) {
    snprintf(err, errlen, "cannot watch: inotify: %s", strerror(errno));
    return -1;
  }
  watch_tree(b, b->bo.in_dir, 0, 0);
  return 0;
}

static void handle(struct batch *b, const struct inotify_event *ev)
{
  if (ev->wd < 0 || ev->wd >= b->n_wd || !b->wd_paths[ev->wd] || !ev->len)
    return;
  char p[PATH_MAX];
  if ((size_t)snprintf(p, sizeof p, "%s/%s", b->wd_paths[ev->wd], ev->name) >=
      sizeof p)
    return;
  if (ev->mask & IN_ISDIR) {
    if (ev->mask & (IN_CREATE | IN_MOVED_TO)) watch_tree(b, p, 1, 0);
    return;
  }
  if (!(ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))) return;
  if (ends_with(ev->name, "stop.txt")) {
    unlink(p);
    b->watch_stop = 1;
    return;
  }
  batch_submit(b, p);
}

void batch_watch_run(struct batch *b)
{
  char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
  fprintf(stderr, "cutout p: watching %s (create a file named stop.txt, or "
          "press Ctrl-C, to stop)\n", b->bo.in_dir);
  while (!b->watch_stop && !batch_stopping(b)) {
    struct pollfd fds[2] = {{b->inotify_fd, POLLIN, 0},
                            {b->wake_pipe[0], POLLIN, 0}};
    if (poll(fds, 2, 1000) < 0 && errno != EINTR) break;
    if (!(fds[0].revents & POLLIN)) continue;
    for (;;) {
      ssize_t n = read(b->inotify_fd, buf, sizeof buf);
      if (n <= 0) break;
      for (char *q = buf; q < buf + n;) {
        const struct inotify_event *ev = (const struct inotify_event *)q;
        handle(b, ev);
        q += sizeof *ev + ev->len;
      }
    }
  }
}
