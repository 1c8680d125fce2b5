/*
 * models.c: the server's model cache.  A model is loaded once and shared
 * by every worker (an ORT session may be run from many threads at once).
 * The key is the model name plus the extras that change the session
 * (model_path, sam_model, sam_quant, providers): unlike rembg's cache,
 * which keeps the first session's extras for good.
 *
 * A load happens outside the lock (ISNet takes a second or more), with the
 * entry marked loading so that others wanting the same key wait for it and
 * others wanting other keys do not.  At most cap entries; when full, the
 * least recently used entry that no request holds is evicted.
 */
#include "server.h"
#include "../cli/cli.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
  char *key;
  cutout_model *model; /* NULL while loading */
  int loading;
  int refs;
  uint64_t used;
};

struct srv_models {
  cutout_engine *engine;
  pthread_mutex_t lock;
  pthread_cond_t loaded;
  struct entry *e;
  int n, cap;
  uint64_t tick;
};

struct srv_models *models_new(cutout_engine *e, int cap)
{
  struct srv_models *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->e = calloc((size_t)cap, sizeof *c->e);
  if (!c->e) {
    free(c);
    return NULL;
  }
  c->engine = e;
  c->cap = cap;
  pthread_mutex_init(&c->lock, NULL);
  pthread_cond_init(&c->loaded, NULL);
  return c;
}

void models_free(struct srv_models *c)
{
  if (!c) return;
  for (int i = 0; i < c->n; i++) {
    cutout_model_free(c->e[i].model);
    free(c->e[i].key);
  }
  free(c->e);
  pthread_mutex_destroy(&c->lock);
  pthread_cond_destroy(&c->loaded);
  free(c);
}

static char *make_key(const struct cli_opts *o)
{
  char buf[8192];
  int n = snprintf(buf, sizeof buf, "%s\x1f%s\x1f%s\x1f%d\x1f%s", o->model,
                   o->model_path ? o->model_path : "",
                   o->sam_model ? o->sam_model : "", o->sam_quant,
                   o->providers ? o->providers : "");
  if (n < 0 || (size_t)n >= sizeof buf) return NULL;
  return strdup(buf);
}

static void drop(struct srv_models *c, int i)
{
  cutout_model_free(c->e[i].model);
  free(c->e[i].key);
  c->e[i] = c->e[--c->n];
}

int models_get(struct srv_models *c, const struct cli_opts *o,
               cutout_model **out, double *load_s, char *err, size_t errlen)
{
  char *key = make_key(o);
  *load_s = 0;
  if (!key) {
    snprintf(err, errlen, "model name or extras too long");
    return -1;
  }
  pthread_mutex_lock(&c->lock);
  for (;;) {
    int i;
    for (i = 0; i < c->n && strcmp(c->e[i].key, key) != 0; i++) {}
    if (i < c->n && c->e[i].loading) {
      pthread_cond_wait(&c->loaded, &c->lock);
      continue; /* the entry may have moved, or failed and gone */
    }
    if (i < c->n) {
      c->e[i].refs++;
      c->e[i].used = ++c->tick;
      *out = c->e[i].model;
      pthread_mutex_unlock(&c->lock);
      free(key);
      return 0;
    }
    break;
  }
  if (c->n == c->cap) { /* evict the least recently used idle entry */
    int victim = -1;
    for (int i = 0; i < c->n; i++)
      if (!c->e[i].loading && !c->e[i].refs &&
          (victim < 0 || c->e[i].used < c->e[victim].used))
        victim = i;
    if (victim < 0) {
      pthread_mutex_unlock(&c->lock);
      snprintf(err, errlen, "every cached model is in use; try again");
      free(key);
      return -1;
    }
    drop(c, victim);
  }
  struct entry *en = &c->e[c->n++];
  memset(en, 0, sizeof *en);
  en->key = key;
  en->loading = 1;
  pthread_mutex_unlock(&c->lock);

  double t0 = srv_now();
  cutout_model *m = NULL;
  cutout_model_params mp = cutout_model_default_params();
  int rc = cli_model_prepare(o, &mp, err, errlen);
  if (!rc && cutout_model_load(c->engine, o->model, &mp, &m, err, errlen))
    rc = -1;
  *load_s = srv_now() - t0;

  pthread_mutex_lock(&c->lock);
  int i;
  for (i = 0; i < c->n && c->e[i].key != key; i++) {}
  if (rc) {
    drop(c, i);
  } else {
    c->e[i].loading = 0;
    c->e[i].model = m;
    c->e[i].refs = 1;
    c->e[i].used = ++c->tick;
    *out = m;
    srv_log(1, "model %s loaded in %.2f s", o->model, *load_s);
  }
  pthread_cond_broadcast(&c->loaded);
  pthread_mutex_unlock(&c->lock);
  return rc;
}

void models_put(struct srv_models *c, cutout_model *m)
{
  if (!m) return;
  pthread_mutex_lock(&c->lock);
  for (int i = 0; i < c->n; i++)
    if (c->e[i].model == m) {
      c->e[i].refs--;
      break;
    }
  pthread_mutex_unlock(&c->lock);
}

int models_count(struct srv_models *c)
{
  pthread_mutex_lock(&c->lock);
  int n = 0;
  for (int i = 0; i < c->n; i++) n += !c->e[i].loading;
  pthread_mutex_unlock(&c->lock);
  return n;
}
