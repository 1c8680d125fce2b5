/*
 * bigalloc.c: large buffers on transparent huge pages, carved from one
 * reserved address range and reused (see bigalloc.h for why).
 *
 * DESIGN
 * Blocks of CUTOUT_BIG_MIN bytes and more come from regions: large
 * address ranges reserved once with PROT_NONE (no memory, no commit
 * charge), 2 MiB aligned and advised MADV_HUGEPAGE, made readable and
 * writable in steps as their top grows.  A region hands out page-rounded
 * blocks best-fit from a sorted list of free ranges, or from its top when
 * none fits; a freed block joins its neighbours.  Memory touched once is
 * therefore reused by the next request of any size that fits, so a run
 * that allocates and frees many tensors of different sizes (ORT without
 * its memory pattern, then the image buffers of the compositing) faults in
 * only its peak working set, once.  Each region's high-water mark tells
 * what was ever touched: calloc zeroes only that part.
 *
 * Free memory stays resident for reuse up to RETAIN_MAX; past that, and
 * on cutout__big_trim, free ranges go back to the kernel with
 * MADV_DONTNEED (the addresses stay reserved).  The bookkeeping keeps one
 * invariant, checked by cutout__big_check: the resident free bytes are
 * the free ranges' res plus hwm - top of every region.
 *
 * When no region can be had (address-space limits), a block is a mapping
 * of its own, unmapped on free.  Every block starts with a 64-byte
 * header, so the caller's pointer stays 64-byte aligned (what ORT and
 * AVX-512 loads want) and free() needs no size.  Smaller blocks come from
 * malloc.  Under AddressSanitizer every block comes from malloc, so ASan
 * still sees overflows and leaks.
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
#define PAGE ((size_t)4096)
#define HDR 64
#define MAGIC_SMALL ((uint64_t)0x637574736d616c6cULL) /* "cutsmall" */
#define MAGIC_BIG ((uint64_t)0x6375746269676262ULL)   /* "cutbigbb" */
#define MAGIC_SOLO ((uint64_t)0x637574736f6c6f6fULL)  /* "cutsoloo" */
#define REGION_SIZE ((size_t)16 << 30) /* reserved, not committed */
#define REGION_MIN ((size_t)256 << 20) /* when 16 GiB cannot be had */
#define COMMIT_STEP ((size_t)64 << 20) /* made writable at a time */
#define MAX_REGIONS 16
#define MAX_FREE 1024                   /* free ranges per region */
#define RETAIN_MAX ((size_t)2048 << 20) /* free memory kept resident */

struct hdr {
  uint64_t magic;
  size_t len;    /* block bytes, header included (big: a page multiple) */
  int region;
  int pad_;
};

struct range {
  size_t off, len;
  size_t res; /* bytes of it still resident (it was in use once) */
};

struct region {
  char *base;
  size_t size;      /* reserved bytes */
  size_t committed; /* [0, committed) is readable and writable */
  size_t top;       /* everything at or above is unused */
  size_t hwm;       /* everything below was touched at some point */
  struct range free_[MAX_FREE]; /* sorted by offset, never adjacent */
  int nfree;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
#ifndef CUTOUT_BIG_USE_MALLOC
static struct region *regions[MAX_REGIONS];
static int nregions;
static int no_region; /* reservations failed: every block is solo */
#endif
static size_t st_touched, st_reused, st_free_resident;

static void *small_alloc(size_t n)
{
  void *base = NULL;
  if (n > SIZE_MAX - HDR || posix_memalign(&base, HDR, n + HDR)) return NULL;
  struct hdr *h = base;
  h->magic = MAGIC_SMALL;
  h->len = n;
  return (char *)base + HDR;
}

#ifndef CUTOUT_BIG_USE_MALLOC
/* A new region of at least need bytes, 2 MiB aligned.  Locked. */
static struct region *region_new(size_t need)
{
  if (nregions == MAX_REGIONS || no_region) return NULL;
  struct region *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  size_t size = need > REGION_SIZE ? need : REGION_SIZE;
  for (;;) {
    char *p = mmap(NULL, size + HUGE_PAGE, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) {
      uintptr_t a = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
      size_t head = (size_t)(a - (uintptr_t)p);
      if (head) munmap(p, head);
      munmap((char *)a + size, HUGE_PAGE - head);
#ifdef MADV_HUGEPAGE
      madvise((void *)a, size, MADV_HUGEPAGE); /* a hint: failure is fine */
#endif
      r->base = (char *)a;
      r->size = size;
      regions[nregions++] = r;
      return r;
    }
    /* a small ulimit -v: ask for less */
    if (size / 2 < need || size / 2 < REGION_MIN) break;
    size /= 2;
  }
  if (!nregions) no_region = 1; /* not even the first: stop asking */
  free(r);
  return NULL;
}

/* Make [0, end) of r writable.  0, or -1 (strict overcommit said no). */
static int commit_to(struct region *r, size_t end)
{
  if (end <= r->committed) return 0;
  size_t want = (end + COMMIT_STEP - 1) / COMMIT_STEP * COMMIT_STEP;
  if (want > r->size) want = r->size;
  if (mprotect(r->base + r->committed, want - r->committed,
               PROT_READ | PROT_WRITE) == 0) {
    r->committed = want;
    return 0;
  }
  /* the round step may be too much for the commit limit: just enough */
  size_t need = (end + PAGE - 1) & ~(PAGE - 1);
  if (mprotect(r->base + r->committed, need - r->committed,
               PROT_READ | PROT_WRITE) != 0)
    return -1;
  r->committed = need;
  return 0;
}

/* Best fit among the free ranges of r: index, or -1. */
static int best_fit(const struct region *r, size_t len)
{
  int best = -1;
  for (int i = 0; i < r->nfree; i++)
    if (r->free_[i].len >= len &&
        (best < 0 || r->free_[i].len < r->free_[best].len))
      best = i;
  return best;
}

/* Put the resident block [off, off+len) back on r's free list, joined
 * with its neighbours; a range that reaches the top lowers the top
 * instead.  Locked. */
static void release_range(struct region *r, size_t off, size_t len)
{
  int i = 0;
  while (i < r->nfree && r->free_[i].off < off) i++;
  int join_prev = i > 0 && r->free_[i - 1].off + r->free_[i - 1].len == off;
  int join_next = i < r->nfree && off + len == r->free_[i].off;
  if (!join_prev && off + len == r->top) {
    /* straight back to the top: resident, now counted by hwm - top */
    r->top = off;
    st_free_resident += len;
    return;
  }
  if (join_prev && join_next) {
    r->free_[i - 1].len += len + r->free_[i].len;
    r->free_[i - 1].res += len + r->free_[i].res;
    memmove(&r->free_[i], &r->free_[i + 1],
            (size_t)(r->nfree - i - 1) * sizeof r->free_[0]);
    r->nfree--;
    i--;
  } else if (join_prev) {
    i--;
    r->free_[i].len += len;
    r->free_[i].res += len;
  } else if (join_next) {
    r->free_[i].off = off;
    r->free_[i].len += len;
    r->free_[i].res += len;
  } else if (r->nfree < MAX_FREE) {
    memmove(&r->free_[i + 1], &r->free_[i],
            (size_t)(r->nfree - i) * sizeof r->free_[0]);
    r->free_[i].off = off;
    r->free_[i].len = len;
    r->free_[i].res = len;
    r->nfree++;
  } else {
    /* no room to remember it: give the memory back; the addresses are
     * lost to reuse, never to correctness (1024 holes do not happen) */
    madvise(r->base + off, len, MADV_DONTNEED);
    return;
  }
  st_free_resident += len;
  /* The last range touching the top becomes part of the top.  All of
   * [top, hwm) counts as resident from then on: an overcount for the part
   * a trim gave back, which only makes the next trim come sooner. */
  if (i == r->nfree - 1 && r->free_[i].off + r->free_[i].len == r->top) {
    st_free_resident += r->free_[i].len - r->free_[i].res;
    r->top = r->free_[i].off;
    r->nfree--;
  }
}

/* Give every free page back to the kernel.  Locked.  A range the kernel
 * refuses to drop (mlock) stays counted as resident. */
static void trim_locked(void)
{
  for (int k = 0; k < nregions; k++) {
    struct region *r = regions[k];
    for (int i = 0; i < r->nfree; i++)
      if (r->free_[i].res &&
          madvise(r->base + r->free_[i].off, r->free_[i].len,
                  MADV_DONTNEED) == 0) {
        st_free_resident -= r->free_[i].res;
        r->free_[i].res = 0;
      }
    if (r->hwm > r->top &&
        madvise(r->base + r->top, r->hwm - r->top, MADV_DONTNEED) == 0) {
      st_free_resident -= r->hwm - r->top;
      r->hwm = r->top;
    }
  }
}

/* A block of its own, for when no region can serve. */
static void *solo_alloc(size_t len)
{
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
  madvise(p, len, MADV_HUGEPAGE);
#endif
  return p;
}
#endif

/* A block of n bytes; *dirty: how many of its first bytes may hold old
 * data (the rest was never touched, so it reads as zeros). */
static void *alloc_block(size_t n, size_t *dirty)
{
  *dirty = n;
  if (n == 0) return NULL;
#ifdef CUTOUT_BIG_USE_MALLOC
  return small_alloc(n);
#else
  if (n < CUTOUT_BIG_MIN) return small_alloc(n);
  if (n > ((size_t)1 << 46)) return NULL;
  size_t len = (n + HDR + PAGE - 1) & ~(PAGE - 1);
  char *p = NULL;
  int ri = -1;

  pthread_mutex_lock(&lock);
  /* best fit over every region's free ranges */
  struct region *br = NULL;
  int bi = -1;
  for (int k = 0; k < nregions; k++) {
    int i = best_fit(regions[k], len);
    if (i >= 0 && (!br || regions[k]->free_[i].len < br->free_[bi].len)) {
      br = regions[k];
      bi = i;
      ri = k;
    }
  }
  if (br) {
    struct range *g = &br->free_[bi];
    size_t res = len < g->res ? len : g->res;
    p = br->base + g->off;
    st_free_resident -= res;
    g->off += len;
    g->len -= len;
    g->res -= res;
    if (!g->len) {
      memmove(g, g + 1, (size_t)(br->nfree - bi - 1) * sizeof *g);
      br->nfree--;
    }
    st_reused++;
  } else {
    for (int k = 0; k < nregions && !p; k++) {
      struct region *r = regions[k];
      if (r->size - r->top >= len && commit_to(r, r->top + len) == 0) {
        p = r->base + r->top;
        ri = k;
      }
    }
    if (!p) {
      struct region *r = region_new(len);
      if (r && commit_to(r, len) == 0) {
        p = r->base;
        ri = nregions - 1;
      }
    }
    if (p) {
      struct region *r = regions[ri];
      size_t off = (size_t)(p - r->base);
      r->top = off + len;
      /* what lies below hwm was touched before: free and resident */
      size_t res = r->hwm > off ? (r->hwm < r->top ? r->hwm : r->top) - off
                                : 0;
      st_free_resident -= res;
      if (res) st_reused++;
      *dirty = r->hwm > off + HDR ? r->hwm - off - HDR : 0;
      if (*dirty > n) *dirty = n;
      if (r->top > r->hwm) {
        st_touched += r->top - r->hwm;
        r->hwm = r->top;
      }
    }
  }
  pthread_mutex_unlock(&lock);
  if (!p) {
    /* no region: a mapping of its own (fresh, so zero) */
    if (!(p = solo_alloc(len))) return NULL;
    struct hdr *h = (struct hdr *)(void *)p;
    h->magic = MAGIC_SOLO;
    h->len = len;
    h->region = -1;
    *dirty = 0;
    return p + HDR;
  }
  struct hdr *h = (struct hdr *)(void *)p;
  h->magic = MAGIC_BIG;
  h->len = len;
  h->region = ri;
  return p + HDR;
#endif
}

void *cutout__big_alloc(size_t n)
{
  size_t dirty;
  return alloc_block(n, &dirty);
}

void *cutout__big_calloc(size_t n)
{
  size_t dirty;
  char *p = alloc_block(n, &dirty);
  if (p) memset(p, 0, dirty); /* fresh pages are zero: leave them be */
  return p;
}

void cutout__big_free(void *p)
{
  if (!p) return;
  struct hdr *h = (struct hdr *)(void *)((char *)p - HDR);
  if (h->magic == MAGIC_SMALL) {
    h->magic = 0; /* a second free of the same block aborts below */
    free(h);
    return;
  }
#ifndef CUTOUT_BIG_USE_MALLOC
  if (h->magic == MAGIC_SOLO) {
    h->magic = 0;
    munmap(h, h->len);
    return;
  }
  if (h->magic != MAGIC_BIG) abort(); /* not ours: a heap corruption */
  h->magic = 0;
  pthread_mutex_lock(&lock);
  struct region *r = h->region >= 0 && h->region < nregions
                         ? regions[h->region] : NULL;
  size_t off = r ? (size_t)((char *)h - r->base) : 0, len = h->len;
  if (!r || (char *)h < r->base || off + len > r->top || len % PAGE)
    abort(); /* a header that does not describe one of our blocks */
  release_range(r, off, len);
  if (st_free_resident > RETAIN_MAX) trim_locked();
  pthread_mutex_unlock(&lock);
#else
  abort(); /* not ours: a heap corruption */
#endif
}

void cutout__big_trim(void)
{
#ifndef CUTOUT_BIG_USE_MALLOC
  pthread_mutex_lock(&lock);
  trim_locked();
  pthread_mutex_unlock(&lock);
#endif
}

struct cutout__big_stats cutout__big_stats(void)
{
  pthread_mutex_lock(&lock);
  struct cutout__big_stats s = {st_touched, st_reused, st_free_resident};
  pthread_mutex_unlock(&lock);
  return s;
}

int cutout__big_check(void)
{
  int ok = 1;
#ifndef CUTOUT_BIG_USE_MALLOC
  pthread_mutex_lock(&lock);
  size_t sum = 0;
  for (int k = 0; k < nregions; k++) {
    const struct region *r = regions[k];
    if (r->top > r->hwm || r->hwm > r->committed || r->committed > r->size)
      ok = 0;
    sum += r->hwm - r->top;
    for (int i = 0; i < r->nfree; i++) {
      const struct range *g = &r->free_[i];
      sum += g->res;
      if (!g->len || g->res > g->len || g->off + g->len >= r->top ||
          (i && r->free_[i - 1].off + r->free_[i - 1].len >= g->off))
        ok = 0; /* empty, past the top, unsorted, overlapping or adjacent */
    }
  }
  if (sum != st_free_resident) ok = 0;
  pthread_mutex_unlock(&lock);
#endif
  return ok;
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
