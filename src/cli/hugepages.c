/*
 * hugepages.c: let glibc's malloc use transparent huge pages for the whole
 * process, by re-executing once with GLIBC_TUNABLES=glibc.malloc.hugetlb=1.
 *
 * WHY
 * ONNX Runtime's session creation (graph rewrites, fp16 -> fp32 weights)
 * allocates through malloc, not through the allocator cutout registers.
 * With 4 KiB pages that is ~150 000 page faults for ISNet, and a fault
 * costs ~10 us on a virtual machine: measured here, session creation
 * 1.7-2.2 s, against 0.4-0.5 s with huge pages.  glibc reads the tunable
 * only at start-up, so the only way in is a fresh exec of ourselves
 * (same PID, same argv, a few milliseconds).
 *
 * It is skipped when the kernel does not do madvise'd huge pages (with
 * "always", glibc already gets them), when GLIBC_TUNABLES already says
 * something about hugetlb, under a sanitizer (its malloc is not glibc's),
 * and when CUTOUT_MALLOC_HUGETLB=0.
 */
#include "hugepages.h"

#include <gnu/libc-version.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CLI_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define CLI_SANITIZED 1
#endif
#endif

#ifndef CLI_SANITIZED
static int thp_is_madvise(void)
{
  char buf[128] = "";
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (!f) return 0;
  if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
  fclose(f);
  return strstr(buf, "[madvise]") != NULL;
}

/* glibc.malloc.hugetlb exists from glibc 2.35. */
static int glibc_has_hugetlb(void)
{
  int major = 0, minor = 0;
  if (sscanf(gnu_get_libc_version(), "%d.%d", &major, &minor) != 2) return 0;
  return major > 2 || (major == 2 && minor >= 35);
}
#endif

void cli_malloc_hugepages(char **argv)
{
#ifdef CLI_SANITIZED
  (void)argv;
#else
  const char *opt = getenv("CUTOUT_MALLOC_HUGETLB");
  if (opt && strcmp(opt, "0") == 0) return;
  const char *cur = getenv("GLIBC_TUNABLES");
  if (cur && strstr(cur, "glibc.malloc.hugetlb")) return;
  if (!glibc_has_hugetlb() || !thp_is_madvise()) return;

  char val[1024];
  int n = snprintf(val, sizeof val, "%s%sglibc.malloc.hugetlb=1",
                   cur && *cur ? cur : "", cur && *cur ? ":" : "");
  if (n < 0 || (size_t)n >= sizeof val) return;
  if (setenv("GLIBC_TUNABLES", val, 1)) return;
  execv("/proc/self/exe", argv);
  /* exec failed (no /proc?): carry on with 4 KiB pages, and do not let a
   * child of ours believe the tunable is in force. */
  if (cur) setenv("GLIBC_TUNABLES", cur, 1);
  else unsetenv("GLIBC_TUNABLES");
#endif
}
