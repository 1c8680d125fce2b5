/* testutil.h: small helpers shared by the unit tests. */
#ifndef CUTOUT_TESTUTIL_H
#define CUTOUT_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Read a whole file; NULL if it cannot be read.  free() the result. */
uint8_t *tu_read_file(const char *path, size_t *len);
/* Write a whole file; 0 on success. */
int tu_write_file(const char *path, const void *data, size_t len);
/* getenv() that fails the test (via cmocka) when the variable is unset. */
const char *tu_env(const char *name);
/* A fresh temporary directory (removed by nothing: it is under /tmp). */
const char *tu_tmpdir(void);
/* Run "$CUTOUT_PYTHON script args..." (script is Python source); returns the
 * exit status.  Used to compute reference values with Pillow/SciPy. */
int tu_python(const char *script, const char *const *args);

#endif
