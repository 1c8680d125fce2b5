/* fileio.h: whole-file reads and crash-safe writes for the CLI. */
#ifndef CUTOUT_CLI_FILEIO_H
#define CUTOUT_CLI_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* Temporary files are named "<dir>/.cutout-tmp.<name>.XXXXXX", so a later
 * run can recognise and remove what a killed run left behind. */
#define CLI_TMP_PREFIX ".cutout-tmp."

/* Read all of path ("-" = stdin) into *data (free() it).  Returns 0, or -1
 * with a reason in err (errlen bytes). */
int cli_read_all(const char *path, uint8_t **data, size_t *len, char *err,
                 size_t errlen);

/* Write data to path atomically: a temporary file beside it, fsync, rename.
 * On any failure nothing is left behind.  "-" writes to stdout. */
int cli_write_atomic(const char *path, const void *data, size_t len,
                     char *err, size_t errlen);

/* Remove every temporary file that a cli_write_atomic() call in progress
 * has open.  Async-signal-safe: for the second Ctrl-C, which exits at once. */
void cli_tmp_cleanup_now(void);

#endif
