#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

uint8_t *tu_read_file(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  uint8_t *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      uint8_t *nb = realloc(buf, cap * 2);
      if (!nb) { free(buf); buf = NULL; break; }
      buf = nb;
      cap *= 2;
    }
  }
  fclose(f);
  if (buf) *len = n;
  return buf;
}

int tu_write_file(const char *path, const void *data, size_t len)
{
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int ok = fwrite(data, 1, len, f) == len;
  return (fclose(f) == 0 && ok) ? 0 : -1;
}

const char *tu_env(const char *name)
{
  const char *v = getenv(name);
  if (!v || !*v) fail_msg("environment variable %s is not set (run through ctest)", name);
  return v;
}

const char *tu_tmpdir(void)
{
  static char dir[64];
  if (!dir[0]) {
    strcpy(dir, "/tmp/cutout-test-XXXXXX");
    if (!mkdtemp(dir)) fail_msg("mkdtemp failed");
  }
  return dir;
}

int tu_python(const char *script, const char *const *args)
{
  const char *py = getenv("CUTOUT_PYTHON");
  if (!py || !*py) py = "/usr/bin/python3";
  const char *argv[64];
  int n = 0;
  argv[n++] = py;
  argv[n++] = "-c";
  argv[n++] = script;
  for (; args && *args && n < 62; args++) argv[n++] = *args;
  argv[n] = NULL;
  pid_t pid = fork();
  if (pid == 0) {
    execv(py, (char *const *)argv);
    _exit(127);
  }
  int st = 0;
  if (pid < 0 || waitpid(pid, &st, 0) < 0) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
