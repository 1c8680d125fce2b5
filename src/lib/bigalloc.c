/*
 * bigalloc.c: large buffers on transparent huge pages, with a small cache
 * of freed blocks (see bigalloc.h for why).
 *
 * Every block starts with a 64-byte header, so the caller's pointer stays
 * 64-byte aligned (what ORT and AVX-512 loads want) and free() needs no
 * size.  Big blocks are mappings aligned to 2 MiB, so the kernel can back
 * all of them with huge pages.  Freed big blocks go to a cache; a later
 * request takes the smallest cached block that fits without wasting more
 * than a quarter.  A run that allocates the same sizes as the last (ORT's
 * memory pattern does exactly that per input shape) therefore faults no
 * page at all.  On a miss, the cache is first trimmed so that it and the
 * new block stay within CACHE_KEEP, so RSS stays near what is in use.
 *
 * Under AddressSanitizer every block comes from malloc, so ASan still sees
 * overflows and leaks.
 */
#include "bigalloc.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define CUTOUT_BIG_USE_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CUTOUT_BIG_USE_MALLOC 1
#endif
#endif

#define HUGE_PAGE ((size_t)2 << 20)
#define HDR 64
#define MAGIC_SMALL ((uint64_t)0x637574736d616c6cULL) /* "cutsmall" */
#define MAGIC_BIG ((uint64_t)0x6375746269676262ULL)   /* "cutbigbb" */
#define CACHE_SLOTS 64
#define CACHE_KEEP ((size_t)256 << 20)  /* kept across a miss */
#define CACHE_MAX ((size_t)2048 << 20)  /* never more than this cached */

struct hdr {
  uint64_t magic;
  size_t cap; /* bytes usable after the header (big: mapping - HDR) */
};

struct slot {
  void *base;
  size_t cap;
  unsigned long age; /* freed at this tick: lower is older */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot cache[CACHE_SLOTS];
static size_t n_cached, cached_bytes;
static unsigned long tick;
static size_t st_mapped, st_reused;

static void *small_alloc(size_t n)
{
  void *base = NULL;
  if (n > SIZE_MAX - HDR || posix_memalign(&base, HDR, n + HDR)) return NULL;
  struct hdr *h = base;
  h->magic = MAGIC_SMALL;
  h->cap = n;
  return (char *)base + HDR;
}

#ifndef CUTOUT_BIG_USE_MALLOC
/* A fresh mapping of at least total bytes, 2 MiB aligned. */
static void *map_aligned(size_t total)
{
  size_t len = total + HUGE_PAGE;
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  uintptr_t a = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
  size_t head = (size_t)(a - (uintptr_t)p), tail = len - head - total;
  if (head) munmap(p, head);
  if (tail) munmap((char *)a + total, tail);
#ifdef MADV_HUGEPAGE
  madvise((void *)a, total, MADV_HUGEPAGE); /* a hint: failure is harmless */
#endif
  return (void *)a;
}
#endif

static void unmap_block(void *base, size_t cap) { munmap(base, cap + HDR); }

/* Drop the oldest cached blocks until at most keep bytes stay.  Locked. */
static void trim_locked(size_t keep, void **drop, size_t *drop_cap,
                        size_t *n_drop)
{
  while (cached_bytes > keep && n_cached) {
    size_t old = 0;
    for (size_t i = 1; i < n_cached; i++)
      if (cache[i].age < cache[old].age) old = i;
    drop[*n_drop] = cache[old].base;
    drop_cap[(*n_drop)++] = cache[old].cap;
    cached_bytes -= cache[old].cap;
    cache[old] = cache[--n_cached];
  }
}

void *cutout__big_alloc(size_t n)
{
  if (n == 0) return NULL;
#ifdef CUTOUT_BIG_USE_MALLOC
  return small_alloc(n);
#else
  if (n < CUTOUT_BIG_MIN) return small_alloc(n);
  if (n > SIZE_MAX - HDR - 2 * HUGE_PAGE) return NULL;
  size_t total = (n + HDR + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
  size_t cap = total - HDR;

  void *drop[CACHE_SLOTS];
  size_t drop_cap[CACHE_SLOTS], n_drop = 0;
  void *base = NULL;
  pthread_mutex_lock(&lock);
  size_t best = SIZE_MAX;
  for (size_t i = 0; i < n_cached; i++) {
    size_t c = cache[i].cap;
    if (c >= cap && c - cap <= cap / 4 && (best == SIZE_MAX ||
                                           c < cache[best].cap))
      best = i;
  }
  if (best != SIZE_MAX) {
    base = cache[best].base;
    cap = cache[best].cap;
    cached_bytes -= cap;
    cache[best] = cache[--n_cached];
    st_reused++;
  } else {
    /* A miss: what is cached did not fit, so let go of it before growing,
     * keeping at most CACHE_KEEP in all, the new block included. */
    trim_locked(cap >= CACHE_KEEP ? 0 : CACHE_KEEP - cap, drop, drop_cap,
                &n_drop);
    st_mapped++;
  }
  pthread_mutex_unlock(&lock);
  for (size_t i = 0; i < n_drop; i++) unmap_block(drop[i], drop_cap[i]);

  if (!base && !(base = map_aligned(total))) return NULL;
  struct hdr *h = base;
  h->magic = MAGIC_BIG;
  h->cap = cap;
  return (char *)base + HDR;
#endif
}

void *cutout__big_calloc(size_t n)
{
  char *p = cutout__big_alloc(n);
  if (p) memset(p, 0, n); /* also faults the pages in, once */
  return p;
}

void cutout__big_free(void *p)
{
  if (!p) return;
  struct hdr *h = (struct hdr *)(void *)((char *)p - HDR);
  if (h->magic == MAGIC_SMALL) {
    free(h);
    return;
  }
  if (h->magic != MAGIC_BIG) abort(); /* not ours: a heap corruption */
  size_t cap = h->cap;
  void *drop[CACHE_SLOTS + 1];
  size_t drop_cap[CACHE_SLOTS + 1], n_drop = 0;
  pthread_mutex_lock(&lock);
  if (cap > CACHE_MAX) {
    drop[n_drop] = h;
    drop_cap[n_drop++] = cap;
  } else {
    trim_locked(CACHE_MAX - cap, drop, drop_cap, &n_drop);
    if (n_cached == CACHE_SLOTS) trim_locked(cached_bytes - 1, drop,
                                             drop_cap, &n_drop);
    cache[n_cached].base = h;
    cache[n_cached].cap = cap;
    cache[n_cached++].age = ++tick;
    cached_bytes += cap;
  }
  pthread_mutex_unlock(&lock);
  for (size_t i = 0; i < n_drop; i++) unmap_block(drop[i], drop_cap[i]);
}

void cutout__big_trim(void)
{
  void *drop[CACHE_SLOTS];
  size_t drop_cap[CACHE_SLOTS], n_drop = 0;
  pthread_mutex_lock(&lock);
  trim_locked(0, drop, drop_cap, &n_drop);
  pthread_mutex_unlock(&lock);
  for (size_t i = 0; i < n_drop; i++) unmap_block(drop[i], drop_cap[i]);
}

struct cutout__big_stats cutout__big_stats(void)
{
  pthread_mutex_lock(&lock);
  struct cutout__big_stats s = {st_mapped, st_reused, cached_bytes};
  pthread_mutex_unlock(&lock);
  return s;
}

int cutout__thp_available(char *why, size_t whylen)
{
  char buf[128] = "";
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (f) {
    if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
    fclose(f);
  }
  buf[strcspn(buf, "\n")] = 0;
  int ok = strstr(buf, "[always]") || strstr(buf, "[madvise]");
  if (why && whylen)
    snprintf(why, whylen, "%s", !buf[0] ? "no /sys/kernel/mm/transparent_hugepage"
                                : ok ? buf : "transparent huge pages are off");
  return ok;
}
