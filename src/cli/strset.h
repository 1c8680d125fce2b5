/* strset.h: a set of strings (open addressing, FNV-1a), for "claimed
 * once" bookkeeping in the batch pipeline.  Not thread-safe: callers
 * lock. */
#ifndef CUTOUT_CLI_STRSET_H
#define CUTOUT_CLI_STRSET_H

#include <stddef.h>

struct strset {
  char **slots;
  size_t cap, count;
};

void strset_init(struct strset *s);
void strset_free(struct strset *s);
/* 1 if added, 0 if it was there, -1 out of memory. */
int strset_add(struct strset *s, const char *key);
int strset_has(const struct strset *s, const char *key);

#endif
