/*
 * fileio.c: reading inputs whole and writing outputs so that a crash, a
 * full disk or a kill never leaves a half-written file under the final
 * name: write to ".NAME.XXXXXX" in the same folder, fsync, rename, fsync
 * the folder.
 */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int read_fd(int fd, uint8_t **data, size_t *len)
{
  size_t cap = 1 << 20, n = 0;
  uint8_t *buf = malloc(cap);
  if (!buf) return ENOMEM;
  for (;;) {
    if (n == cap) {
      uint8_t *nb = realloc(buf, cap * 2);
      if (!nb) {
        free(buf);
        return ENOMEM;
      }
      buf = nb;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      free(buf);
      return e;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  *data = buf;
  *len = n;
  return 0;
}

int cli_read_all(const char *path, uint8_t **data, size_t *len, char *err,
                 size_t errlen)
{
  if (strcmp(path, "-") == 0) {
    int e = read_fd(0, data, len);
    if (e) snprintf(err, errlen, "cannot read standard input: %s", strerror(e));
    return e ? -1 : 0;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "%s", errno == ENOENT ? "no such file" : strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    close(fd);
    snprintf(err, errlen, "is a directory, not an image file");
    return -1;
  }
  int e = read_fd(fd, data, len);
  close(fd);
  if (e) snprintf(err, errlen, "cannot read: %s", strerror(e));
  return e ? -1 : 0;
}

/* Paths of the temporary files being written right now, for a signal
 * handler to unlink.  A slot is claimed with a compare-and-swap. */
#define TMP_SLOTS 64
static char tmp_paths[TMP_SLOTS][PATH_MAX];
static atomic_int tmp_used[TMP_SLOTS];

static int tmp_register(const char *path)
{
  for (int i = 0; i < TMP_SLOTS; i++) {
    int zero = 0;
    if (atomic_compare_exchange_strong(&tmp_used[i], &zero, 2)) {
      snprintf(tmp_paths[i], PATH_MAX, "%s", path);
      atomic_store(&tmp_used[i], 1); /* 1: the path is complete */
      return i;
    }
  }
  return -1; /* more writers than slots: that file is just not tracked */
}

static void tmp_unregister(int slot)
{
  if (slot >= 0) atomic_store(&tmp_used[slot], 0);
}

void cli_tmp_cleanup_now(void)
{
  for (int i = 0; i < TMP_SLOTS; i++)
    if (atomic_load(&tmp_used[i]) == 1) unlink(tmp_paths[i]);
}

static int write_full(int fd, const uint8_t *p, size_t n)
{
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int cli_write_atomic(const char *path, const void *data, size_t len,
                     char *err, size_t errlen)
{
  if (strcmp(path, "-") == 0) {
    if (write_full(1, data, len)) {
      snprintf(err, errlen, "cannot write standard output: %s", strerror(errno));
      return -1;
    }
    return 0;
  }
  char dir[PATH_MAX], tmp[PATH_MAX];
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  if (slash)
    snprintf(dir, sizeof dir, "%.*s", (int)(slash == path ? 1 : slash - path), path);
  else
    snprintf(dir, sizeof dir, ".");
  if ((size_t)snprintf(tmp, sizeof tmp, "%s/" CLI_TMP_PREFIX "%s.XXXXXX", dir,
                       base) >= sizeof tmp) {
    snprintf(err, errlen, "output path too long");
    return -1;
  }
  int fd = mkstemp(tmp);
  if (fd < 0) {
    snprintf(err, errlen, "cannot write in %s: %s", dir, strerror(errno));
    return -1;
  }
  int slot = tmp_register(tmp);
  /* mkstemp makes 0600; outputs get the usual umask-based mode. */
  mode_t um = umask(0);
  umask(um);
  (void)fchmod(fd, 0666 & ~um);
  if (write_full(fd, data, len) || fsync(fd)) {
    snprintf(err, errlen, "cannot write: %s", strerror(errno));
    close(fd);
    unlink(tmp);
    tmp_unregister(slot);
    return -1;
  }
  if (close(fd) || rename(tmp, path)) {
    snprintf(err, errlen, "cannot write: %s", strerror(errno));
    unlink(tmp);
    tmp_unregister(slot);
    return -1;
  }
  tmp_unregister(slot);
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
  return 0;
}
