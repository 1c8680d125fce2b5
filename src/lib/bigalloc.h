/*
 * bigalloc.h: large buffers backed by transparent huge pages, kept for
 * reuse.
 *
 * WHY
 * ISNet's activations and weights are about 1 GB that ORT touches once
 * per run.  In 4 KiB pages that is ~390 000 page faults per image, and on
 * a virtual machine a fault costs ~10 us: measured here, 4 s of system
 * time for a 1.2 s inference.  2 MiB pages cut the faults 512-fold, and
 * handing freed memory to the next request stops them from coming back;
 * fresh memory also costs the host's own fault on first touch, so what
 * matters most is touching as little as possible: the live set, once.
 */
#ifndef CUTOUT_BIGALLOC_H
#define CUTOUT_BIGALLOC_H

#include <stddef.h>

/* Blocks from this size up come from cutout's regions (2 MiB pages,
 * reused after free); smaller ones come from malloc. */
#define CUTOUT_BIG_MIN ((size_t)1 << 20)

/* 64-byte aligned, uninitialised (zeroed when freshly mapped, but a reused
 * block holds old data).  NULL on failure or n == 0.  Thread-safe. */
void *cutout__big_alloc(size_t n);
/* The same, zeroed. */
void *cutout__big_calloc(size_t n);
/* Free a block from cutout__big_alloc (NULL is a no-op). */
void cutout__big_free(void *p);
/* Give every free page back to the kernel (the engine calls it when it
 * goes). */
void cutout__big_trim(void);

/* 1 when the kernel can back madvise'd memory with huge pages
 * (/sys/kernel/mm/transparent_hugepage/enabled is "always" or
 * "madvise"); why in text. */
int cutout__thp_available(char *why, size_t whylen);

/* Counters for tests and --stats: bytes ever touched (the high-water
 * marks), blocks served from memory touched before, and free bytes kept
 * resident for reuse now. */
struct cutout__big_stats {
  size_t touched_bytes, reused_blocks, free_resident;
};
struct cutout__big_stats cutout__big_stats(void);

/* 1 when the allocator's bookkeeping is consistent (tests). */
int cutout__big_check(void);

#endif
