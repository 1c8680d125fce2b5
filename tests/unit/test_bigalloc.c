/*
 * test_bigalloc.c: cutout's huge-page block allocator (bigalloc.c) and the
 * engine's use of it for ONNX Runtime (huge_pages).
 *
 * Observed for real: alignment, zeroing, block reuse through the
 * allocator's counters, huge pages in /proc/self/smaps, and ORT taking its
 * CPU memory from the allocator during session creation and runs.  Under
 * AddressSanitizer the allocator hands out malloc blocks on purpose, and
 * the test checks that instead.
 */
#include "bigalloc.h"
#include "testutil.h"

#include "cutout.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#if defined(__SANITIZE_ADDRESS__)
#define ASAN 1
#else
#define ASAN 0
#endif

/* AnonHugePages (kB) of the mapping that holds p, from /proc/self/smaps. */
static long huge_kb_at(const void *p)
{
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  char line[512];
  int inside = 0;
  long kb = -1;
  uintptr_t a = (uintptr_t)p;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') &&
        line[0] != ' ') {
      inside = a >= lo && a < hi;
      continue;
    }
    if (inside && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1) break;
  }
  fclose(f);
  return kb;
}

static void test_alignment_and_zero(void **state)
{
  (void)state;
  size_t sizes[] = {1, 63, 4096, CUTOUT_BIG_MIN - 1, CUTOUT_BIG_MIN,
                    (size_t)5 << 20, ((size_t)7 << 20) + 3};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    unsigned char *p = cutout__big_calloc(sizes[i]);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 64, 0);
    for (size_t k = 0; k < sizes[i]; k += 4093) assert_int_equal(p[k], 0);
    assert_int_equal(p[sizes[i] - 1], 0);
    memset(p, 0xab, sizes[i]); /* the whole block is writable */
    cutout__big_free(p);
  }
  assert_null(cutout__big_alloc(0));
  cutout__big_free(NULL); /* a no-op */
  /* A reused block is zeroed again by calloc. */
  unsigned char *p = cutout__big_alloc((size_t)3 << 20);
  memset(p, 0xcd, (size_t)3 << 20);
  cutout__big_free(p);
  p = cutout__big_calloc((size_t)3 << 20);
  for (size_t k = 0; k < ((size_t)3 << 20); k += 1021) assert_int_equal(p[k], 0);
  cutout__big_free(p);
  cutout__big_trim();
}

static void test_reuse(void **state)
{
  (void)state;
  cutout__big_trim();
  struct cutout__big_stats s0 = cutout__big_stats();
  size_t n = (size_t)9 << 20;
  char *a = cutout__big_alloc(n);
  assert_true(cutout__big_check());
  cutout__big_free(a);
  assert_true(cutout__big_check());
  char *b = cutout__big_alloc(n);     /* the same memory again */
  char *c = cutout__big_alloc(n);     /* beside it: new memory */
  struct cutout__big_stats s1 = cutout__big_stats();
  cutout__big_free(b);
  assert_true(cutout__big_check());
  char *d = cutout__big_alloc(n / 3); /* a smaller block fits in b's place */
  char *e = cutout__big_alloc(n / 3); /* and a second one after it */
  char *f = cutout__big_alloc(n);     /* no room left there: new memory */
  assert_true(cutout__big_check());
  struct cutout__big_stats s2 = cutout__big_stats();
  if (ASAN) {
    assert_int_equal(s2.touched_bytes, s0.touched_bytes);
    assert_int_equal(s2.reused_blocks, s0.reused_blocks);
  } else {
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(c, b);
    assert_ptr_equal(d, b);
    assert_true(e > d && e < c); /* inside b's old block */
    assert_true(f > c);
    /* touched: a (= b), c, then f; d and e touched nothing new */
    assert_true(s1.touched_bytes - s0.touched_bytes >= 2 * n);
    assert_true(s1.touched_bytes - s0.touched_bytes < 2 * n + ((size_t)1 << 20));
    assert_true(s2.touched_bytes - s1.touched_bytes < n + ((size_t)1 << 20));
    assert_int_equal(s2.reused_blocks - s0.reused_blocks, 3); /* b, d, e */
  }
  /* neighbours join: d, e and c freed make one range that takes a block
   * larger than any of them, at d's address */
  cutout__big_free(d);
  assert_true(cutout__big_check());
  cutout__big_free(e);
  assert_true(cutout__big_check());
  cutout__big_free(c);
  assert_true(cutout__big_check());
  char *g = cutout__big_alloc(n + n / 2);
  if (!ASAN) {
    assert_ptr_equal(g, d);
    assert_true(cutout__big_stats().touched_bytes == s2.touched_bytes);
  }
  /* calloc of memory that held data zeroes it */
  memset(g, 0x5a, n + n / 2);
  cutout__big_free(g);
  unsigned char *z = cutout__big_calloc(n + n / 2);
  for (size_t k = 0; k < n + n / 2; k += 1021) assert_int_equal(z[k], 0);
  cutout__big_free(z);
  cutout__big_free(f);
  if (!ASAN) assert_true(cutout__big_stats().free_resident >= 3 * n);
  cutout__big_trim();
  assert_true(cutout__big_check());
  assert_int_equal(cutout__big_stats().free_resident, 0);
  /* after a trim the addresses are reused, and read as zeros */
  unsigned char *y = cutout__big_alloc(n);
  if (!ASAN) assert_ptr_equal(y, (unsigned char *)a);
  cutout__big_free(y);
  cutout__big_trim();
}

/* Double frees and foreign pointers are caught, not absorbed. */
static void test_double_free_aborts(void **state)
{
  (void)state;
  if (ASAN) return; /* ASan reports it first, as it should */
  pid_t pid = fork();
  if (pid == 0) {
    void *p = cutout__big_alloc((size_t)4 << 20);
    cutout__big_free(p);
    cutout__big_free(p);
    _exit(0);
  }
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
}

/* Many threads allocating and freeing blocks of mixed sizes: every block
 * stays its own (a pattern written into it survives), and the books
 * balance at the end. */
struct churn {
  unsigned seed;
  int bad;
};

static void *churn_main(void *arg)
{
  struct churn *c = arg;
  enum { SLOTS = 8 };
  unsigned char *held[SLOTS] = {0};
  size_t size[SLOTS] = {0};
  for (int it = 0; it < 400; it++) {
    int k = (int)(rand_r(&c->seed) % SLOTS);
    if (held[k]) {
      for (size_t i = 0; i < size[k]; i += 4093)
        if (held[k][i] != (unsigned char)(k + 1)) c->bad = 1;
      cutout__big_free(held[k]);
    }
    size[k] = ((size_t)1 << 20) + (rand_r(&c->seed) % (6u << 20));
    held[k] = cutout__big_alloc(size[k]);
    if (!held[k]) {
      c->bad = 1;
      break;
    }
    for (size_t i = 0; i < size[k]; i += 4093) held[k][i] = (unsigned char)(k + 1);
  }
  for (int k = 0; k < SLOTS; k++) cutout__big_free(held[k]);
  return NULL;
}

static void test_threads_churn(void **state)
{
  (void)state;
  pthread_t t[4];
  struct churn c[4];
  for (int i = 0; i < 4; i++) {
    c[i].seed = 17u + (unsigned)i;
    c[i].bad = 0;
    assert_int_equal(pthread_create(&t[i], NULL, churn_main, &c[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(c[i].bad, 0);
  }
  assert_true(cutout__big_check());
  cutout__big_trim();
  assert_true(cutout__big_check());
}

/* Under an address-space limit no region can be reserved: blocks are
 * mappings of their own, and still work (run in a child: the limit and
 * the allocator's state stay there). */
static void test_no_region_fallback(void **state)
{
  (void)state;
  if (ASAN) return; /* ASan's shadow memory needs the address space */
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit rl = {(rlim_t)200 << 20, (rlim_t)200 << 20};
    if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(2);
    unsigned char *p = cutout__big_calloc((size_t)8 << 20);
    if (!p) _exit(3);
    for (size_t i = 0; i < ((size_t)8 << 20); i += 4096)
      if (p[i]) _exit(4);
    memset(p, 7, (size_t)8 << 20);
    cutout__big_free(p);
    /* nothing was carved from a region */
    _exit(cutout__big_stats().touched_bytes == 0 ? 0 : 5);
  }
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_huge_pages_back_blocks(void **state)
{
  (void)state;
  char why[128];
  int thp = cutout__thp_available(why, sizeof why);
  size_t n = (size_t)16 << 20;
  unsigned char *p = cutout__big_calloc(n);
  assert_non_null(p);
  memset(p, 1, n); /* fresh memory is left untouched by calloc: touch it */
  long kb = huge_kb_at(p);
  print_message("THP: %s; AnonHugePages of a 16 MiB block: %ld kB\n", why, kb);
  /* The kernel may lack free huge pages at a given moment; it had plenty
   * on every machine this ran on, so require most of the block. */
  if (thp && !ASAN) assert_true(kb >= 8 * 1024);
  cutout__big_free(p);
  cutout__big_trim();
}

/* ORT's weights and activations come from the allocator: a session maps
 * blocks, and a second run of the same shape reuses them. */
static void test_engine_uses_allocator(void **state)
{
  (void)state;
  char err[CUTOUT_ERRBUF_SIZE], path[1200];
  snprintf(path, sizeof path, "%s/tiny-isnet.onnx", tu_env("CUTOUT_TEST_MODELS"));

  cutout_engine_params ep = cutout_engine_default_params();
  assert_int_equal(cutout_engine_param_set(&ep, "huge_pages", "on", err, sizeof err), 0);
  assert_int_equal(cutout_engine_param_set(&ep, "mem_arena", "on", err, sizeof err), 0);
  cutout_engine *e = NULL;
  assert_int_equal(cutout_engine_new(&ep, &e, err, sizeof err), CUTOUT_EINVAL);
  assert_non_null(strstr(err, "exclude each other"));

  ep = cutout_engine_default_params();
  assert_int_equal(cutout_engine_param_set(&ep, "huge_pages", "on", err, sizeof err), 0);
  assert_int_equal(cutout_engine_new(&ep, &e, err, sizeof err), 0);
  cutout_engine_params eff = cutout_engine_effective(e);
  assert_int_equal(eff.huge_pages, 1);
  assert_int_equal(eff.mem_arena, 0);
  char *text = NULL;
  assert_int_equal(cutout_engine_describe(e, 0, &text), 0);
  assert_non_null(strstr(text, "RegisterAllocator("));
  assert_non_null(strstr(text, "session.use_env_allocators"));
  cutout_free(text);

  struct cutout__big_stats s0 = cutout__big_stats();
  cutout_model *m = NULL;
  assert_int_equal(cutout_model_load(e, path, NULL, &m, err, sizeof err), 0);
  cutout_ctx *c = NULL;
  assert_int_equal(cutout_ctx_new(e, NULL, &c), 0);
  cutout_image *img = NULL, *mask = NULL;
  assert_int_equal(cutout_image_new(300, 200, 3, &img), 0);
  for (size_t i = 0; i < 300 * 200 * 3; i++) img->pixels[i] = (uint8_t)(i * 7);
  assert_int_equal(cutout_predict_mask(c, m, img, &mask), 0);
  cutout_image_free(mask);
  struct cutout__big_stats s1 = cutout__big_stats();
  assert_int_equal(cutout_predict_mask(c, m, img, &mask), 0);
  cutout_image_free(mask);
  assert_int_equal(cutout_predict_mask(c, m, img, &mask), 0);
  cutout_image_free(mask);
  struct cutout__big_stats s2 = cutout__big_stats();
  print_message("blocks: mapped %zu, reused %zu\n", s2.touched_bytes - s0.touched_bytes,
                s2.reused_blocks - s0.reused_blocks);
  if (!ASAN) {
    /* the 1x3x1024x1024 input and its activations are >= 1 MiB each */
    assert_true(s1.touched_bytes > s0.touched_bytes);
    /* later runs of the same shape touch nothing new */
    assert_true(s2.reused_blocks > s1.reused_blocks);
    assert_int_equal(s2.touched_bytes, s1.touched_bytes);
  }
  cutout_image_free(img);
  cutout_ctx_free(c);
  cutout_model_free(m);
  cutout_engine_free(e);
  assert_int_equal(cutout__big_stats().free_resident, 0); /* trimmed */
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      /* first: its child must inherit an allocator that has no region */
      cmocka_unit_test(test_no_region_fallback),
      cmocka_unit_test(test_alignment_and_zero),
      cmocka_unit_test(test_reuse),
      cmocka_unit_test(test_double_free_aborts),
      cmocka_unit_test(test_threads_churn),
      cmocka_unit_test(test_huge_pages_back_blocks),
      cmocka_unit_test(test_engine_uses_allocator),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
