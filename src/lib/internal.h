/*
 * internal.h: helpers shared by the files of libcutout (not installed).
 * Names with the cutout__ prefix are library-internal; unit tests may call
 * them because they link the static library.
 */
#ifndef CUTOUT_INTERNAL_H
#define CUTOUT_INTERNAL_H

#include "cutout.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Error text buffers inside the library are this size. */
#define CUTOUT_ERRMSG_MAX 512

/* Format into err (CUTOUT_ERRMSG_MAX bytes; may be NULL) and return s. */
cutout_status cutout__err(char *err, cutout_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Free-and-NULL in one step. */
#define CUTOUT_FREE(p) do { free(p); (p) = NULL; } while (0)

/* Overflow-checked size arithmetic: 0 on success, -1 on overflow. */
static inline int cutout__mul_size(size_t a, size_t b, size_t *out)
{
  if (a && b > SIZE_MAX / a) return -1;
  *out = a * b;
  return 0;
}

/* Monotonic clock in seconds; process CPU time (all threads) in seconds. */
double cutout__now(void);
double cutout__cpu_now(void);

/* Wall and CPU time of one pipeline stage. */
struct cutout__stage_clock {
  double wall0, cpu0;
};
void cutout__stage_begin(struct cutout__stage_clock *k);
/* Record the stage into t (overwrite), or add to it with _add. */
void cutout__stage_end(const struct cutout__stage_clock *k,
                       cutout_stage_times *t, cutout_stage s);
void cutout__stage_add(const struct cutout__stage_clock *k,
                       cutout_stage_times *t, cutout_stage s);

/*
 * Run fn(arg, begin, end) over [0, n) split into at most nthreads
 * contiguous ranges, one per thread; the calling thread takes the first
 * range.  With nthreads <= 1 or small n it simply calls fn(arg, 0, n).
 * fn must not fail; record errors in arg.
 */
typedef void (*cutout__range_fn)(void *arg, size_t begin, size_t end);
void cutout__parallel_for(int nthreads, size_t n, size_t min_per_thread,
                          cutout__range_fn fn, void *arg);

#endif
