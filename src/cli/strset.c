/* strset.c: see strset.h. */
#include "strset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a(const char *s)
{
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

void strset_init(struct strset *s) { memset(s, 0, sizeof *s); }

void strset_free(struct strset *s)
{
  for (size_t i = 0; i < s->cap; i++) free(s->slots[i]);
  free(s->slots);
  memset(s, 0, sizeof *s);
}

static size_t find(const struct strset *s, const char *key)
{
  size_t i = (size_t)fnv1a(key) & (s->cap - 1);
  while (s->slots[i] && strcmp(s->slots[i], key) != 0) i = (i + 1) & (s->cap - 1);
  return i;
}

int strset_has(const struct strset *s, const char *key)
{
  return s->cap && s->slots[find(s, key)] != NULL;
}

int strset_add(struct strset *s, const char *key)
{
  if ((s->count + 1) * 2 > s->cap) { /* keep the load under one half */
    size_t ncap = s->cap ? s->cap * 2 : 64;
    char **old = s->slots;
    size_t ocap = s->cap;
    s->slots = calloc(ncap, sizeof *s->slots);
    if (!s->slots) {
      s->slots = old;
      return -1;
    }
    s->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
      if (old[i]) s->slots[find(s, old[i])] = old[i];
    free(old);
  }
  size_t i = find(s, key);
  if (s->slots[i]) return 0;
  s->slots[i] = strdup(key);
  if (!s->slots[i]) return -1;
  s->count++;
  return 1;
}
