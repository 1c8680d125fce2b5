/*
 * compiled.c: cutout's cache of ONNX Runtime-optimised models.
 *
 * WHY
 * Creating an ISNet session from its .onnx costs 0.2-0.5 s of graph
 * rewriting (constant folding, fusions, the NCHWc layout), and copies the
 * weights into fresh memory that a virtual machine pays dearly to fault
 * in.  ORT can save the optimised graph in its own format and, given the
 * file's bytes, run on the weights in place.  So the first load of a model
 * optimises it once and saves the result; every later load maps that file
 * and creates the session in about 10 ms, with the weights shared with the
 * page cache (and with every other process using the model).
 *
 * DESIGN
 * The file is <cache>/<model>-<key>.ort, where key hashes everything the
 * optimised graph depends on: the model file (path, device, inode, size,
 * mtime, ctime), the ONNX Runtime version, the CPU's feature flags (the
 * NCHWc layout is sized for the vector width), the optimisation level,
 * denormals, the rewrite asked for and the rewriter's version.  A changed
 * model, a new ORT or cutout, or another CPU gives a new key.
 *
 * Files are written to a temporary name and renamed, so a reader sees a
 * whole file or none.  A file ORT rejects is removed and built again; an
 * error of the system (no memory, too many files) leaves it alone.  When
 * ORT cannot save or reload a model at all, a <key>.failed note keeps
 * later loads from trying again for a week.  The folder must belong to
 * the user and be closed to others: ORT writes the file by name, and the
 * file is trusted when it is read.  A hit refreshes the file's time; each
 * model keeps its three most recently used files.  Only CPU-only sessions
 * use the cache: another provider compiles its own way.
 *
 * Before ORT sees a model, cached or not, onnx_rewrite.c drops the
 * outputs cutout never reads and, with the engine's fp16 "promote", turns
 * an fp16 model into fp32.  A rewrite ORT refuses falls back to less (the
 * outputs only, then the model as it is), so the rewrite can only help.
 */
#include "compiled.h"

#include "engine.h"
#include "onnx_rewrite.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define FORMAT_VERSION "cutout-compiled-1"
#define KEEP_PER_MODEL 3          /* cache files kept per model name */
#define FAILED_TTL (7 * 24 * 3600) /* seconds a .failed note holds */

/* What a step did with a model (load_cached, build). */
enum { STEP_OK = 0, STEP_SYSTEM = 1, STEP_REFUSED = 2 };

int cutout__compiled_dir(const cutout_model_params *p, char *out, size_t cap)
{
  const char *env = getenv("CUTOUT_CACHE_DIR");
  const char *xdg = getenv("XDG_CACHE_HOME");
  const char *home = getenv("HOME");
  int n;
  if (p && p->cache_dir && *p->cache_dir)
    n = snprintf(out, cap, "%s", p->cache_dir);
  else if (env && *env)
    n = snprintf(out, cap, "%s", env);
  else if (xdg && *xdg)
    n = snprintf(out, cap, "%s/cutout", xdg);
  else if (home && *home)
    n = snprintf(out, cap, "%s/.cache/cutout", home);
  else
    return -1;
  return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* The folder, made (mkdir -p, 0755) when it is missing, and checked to
 * be ours alone to write in. */
static int cache_folder(const char *dir, char *why, size_t whylen)
{
  char tmp[PATH_MAX];
  struct stat st;
  snprintf(tmp, sizeof tmp, "%s", dir);
  if (stat(dir, &st) == 0) goto check; /* every load but the first */
  for (char *s = tmp + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) goto sys;
    *s = '/';
  }
  if (mkdir(tmp, 0755) != 0 && errno != EEXIST) goto sys;
  if (stat(dir, &st) != 0) goto sys;
check:
  if (!S_ISDIR(st.st_mode)) {
    snprintf(why, whylen, "cache folder %s is not a folder", dir);
    return -1;
  }
  if (st.st_uid != geteuid() || (st.st_mode & 022)) {
    snprintf(why, whylen, "cache folder %s is %s", dir,
             st.st_uid != geteuid() ? "another user's"
                                    : "writable by others");
    return -1;
  }
  return 0;
sys:
  snprintf(why, whylen, "cache folder %s: %s", tmp, strerror(errno));
  return -1;
}

/* The CPU's feature flags as the kernel lists them (x86 "flags", Arm
 * "Features"): what MLAS dispatches on and the NCHWc block size. */
static void cpu_flags(char *out, size_t cap)
{
  char line[4096];
  snprintf(out, cap, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "flags", 5) == 0 || strncmp(line, "Features", 8) == 0) {
      snprintf(out, cap, "%s", line);
      break;
    }
  fclose(f);
}

/* Hex sha256 of everything the optimised graph depends on, 16 digits. */
static void make_key(cutout_engine *e, const char *path, const struct stat *sb,
                     unsigned rewrite, char *out)
{
  char real[PATH_MAX], cpu[4096], text[PATH_MAX + 4096 + 400];
  if (!realpath(path, real)) snprintf(real, sizeof real, "%s", path);
  cpu_flags(cpu, sizeof cpu);
  int n = snprintf(
      text, sizeof text,
      "%s\n%s\n%llu %llu %lld %lld.%09ld %lld.%09ld\nort %s\n%s"
      "opt %d denormals %d rewrite %u v%d\n",
      FORMAT_VERSION, real, (unsigned long long)sb->st_dev,
      (unsigned long long)sb->st_ino, (long long)sb->st_size,
      (long long)sb->st_mtim.tv_sec, sb->st_mtim.tv_nsec,
      (long long)sb->st_ctim.tv_sec, sb->st_ctim.tv_nsec, cutout_ort_version(),
      cpu, e->eff.graph_opt, e->eff.denormals_zero, rewrite,
      CUTOUT_REWRITE_VERSION);
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned dn = 0;
  if (n < 0 || (size_t)n >= sizeof text) n = (int)strlen(text);
  if (!EVP_Digest(text, (size_t)n, d, &dn, EVP_sha256(), NULL)) dn = 0;
  for (unsigned i = 0; i < 8; i++)
    snprintf(out + 2 * i, 3, "%02x", i < dn ? d[i] : 0);
}

/* A file-name-safe copy of the model name, without ".onnx". */
static void safe_name(const char *name, char *out, size_t cap)
{
  size_t k = 0;
  const char *dot = strrchr(name, '.');
  size_t n = dot && strcmp(dot, ".onnx") == 0 ? (size_t)(dot - name)
                                              : strlen(name);
  for (size_t i = 0; i < n && k + 1 < cap; i++) {
    char ch = name[i];
    int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
             (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
    out[k++] = ok ? ch : '_';
  }
  out[k] = 0;
  if (!k) snprintf(out, cap, "model");
}

static int newer(const struct timespec *a, const struct timespec *b)
{
  return a->tv_sec > b->tv_sec ||
         (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

/* Keep the KEEP_PER_MODEL most recently used <prefix><16 hex>.ort files of
 * a model, always including keep (the one just written); drop temporaries
 * older than an hour (a crashed build) and expired .failed notes. */
static void prune(const char *dir, const char *prefix, const char *keep)
{
  struct ent {
    char name[256];
    struct timespec mtime;
  } newest[KEEP_PER_MODEL];
  int nk = 0;
  size_t pl = strlen(prefix);
  const char *kb = strrchr(keep, '/');
  kb = kb ? kb + 1 : keep;
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  time_t now = time(NULL);
  while ((de = readdir(d))) {
    const char *nm = de->d_name;
    size_t n = strlen(nm);
    int tmp = nm[0] == '.' && strncmp(nm + 1, prefix, pl) == 0 &&
              strstr(nm, ".tmp.");
    int note = strncmp(nm, prefix, pl) == 0 && n == pl + 16 + 7 &&
               strcmp(nm + n - 7, ".failed") == 0;
    int ort = strncmp(nm, prefix, pl) == 0 && n == pl + 16 + 4 &&
              strcmp(nm + n - 4, ".ort") == 0 &&
              strspn(nm + pl, "0123456789abcdef") == 16 && n < 256;
    struct stat st;
    if ((!tmp && !note && !ort) ||
        fstatat(dirfd(d), nm, &st, AT_SYMLINK_NOFOLLOW) != 0)
      continue;
    if (tmp || note) {
      if (now - st.st_mtime > (tmp ? 3600 : FAILED_TTL))
        unlinkat(dirfd(d), nm, 0);
      continue;
    }
    if (strcmp(nm, kb) == 0) continue;
    /* the KEEP_PER_MODEL - 1 newest others stay, newest first; whatever
     * falls off the end goes */
    struct ent cur;
    snprintf(cur.name, sizeof cur.name, "%s", nm);
    cur.mtime = st.st_mtim;
    int at = nk;
    while (at > 0 && newer(&cur.mtime, &newest[at - 1].mtime)) at--;
    if (at >= KEEP_PER_MODEL - 1) {
      unlinkat(dirfd(d), nm, 0);
      continue;
    }
    if (nk == KEEP_PER_MODEL - 1) {
      unlinkat(dirfd(d), newest[nk - 1].name, 0);
      nk--;
    }
    memmove(&newest[at + 1], &newest[at], (size_t)(nk - at) * sizeof newest[0]);
    newest[at] = cur;
    nk++;
  }
  closedir(d);
}

/* A .failed note younger than FAILED_TTL: 0 with its text, else -1. */
static int read_note(const char *path, char *out, size_t cap)
{
  struct stat st;
  if (stat(path, &st) != 0 || time(NULL) - st.st_mtime > FAILED_TTL)
    return -1;
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(out, 1, cap - 1, f);
  fclose(f);
  out[n] = 0;
  out[strcspn(out, "\n")] = 0;
  return 0;
}

static void write_note(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");
  if (!f) return;
  fprintf(f, "%s\n", text);
  fclose(f);
}

/* Append "label text" to the note. */
static void add_note(struct cutout__compiled *c, const char *label,
                     const char *text)
{
  size_t n = strlen(c->note);
  if (n) n += (size_t)snprintf(c->note + n, sizeof c->note - n, "; ");
  if (n < sizeof c->note)
    snprintf(c->note + n, sizeof c->note - n, "%s%s", label, text);
}

/* The rewrite of a model, as much of it as can be done: fp32 and the
 * first output, or the first output alone when the fp32 part cannot be
 * done (fp16 data in an external file).  *flags says what was done (0:
 * nothing, *out NULL). */
static void rewrite(unsigned *flags, const void *bytes, size_t len,
                    uint8_t **out, size_t *out_len,
                    struct cutout__compiled *c)
{
  char why[CUTOUT_ERRMSG_MAX] = "", note[240] = "";
  struct cutout__rewrite_stats rs;
  *out = NULL;
  *out_len = 0;
  int r = cutout__onnx_rewrite(bytes, len, *flags, out, out_len, &rs, why,
                               sizeof why);
  if (r < 0 && (*flags & CUTOUT_REWRITE_FP32)) {
    snprintf(note, sizeof note, "fp16 kept: %.150s", why);
    add_note(c, "", note);
    *flags &= ~(unsigned)CUTOUT_REWRITE_FP32;
    r = cutout__onnx_rewrite(bytes, len, *flags, out, out_len, &rs, why,
                             sizeof why);
  }
  if (r <= 0) {
    if (r < 0) add_note(c, "model not rewritten: ", why);
    *flags = 0;
    return;
  }
  if (rs.tensors + rs.types && rs.outputs)
    snprintf(note, sizeof note, "fp16 promoted to fp32 (%zu tensors, %zu "
             "types), %zu unused outputs dropped", rs.tensors, rs.types,
             rs.outputs);
  else if (rs.tensors + rs.types)
    snprintf(note, sizeof note, "fp16 promoted to fp32 (%zu tensors, %zu "
             "types)", rs.tensors, rs.types);
  else
    snprintf(note, sizeof note, "%zu unused outputs dropped", rs.outputs);
  add_note(c, "", note);
}

/* Session options for a cached file: the model's, plus ORT reading the
 * graph and the weights straight from the mapped bytes, and no second
 * round of optimisation. */
static cutout_status cached_options(cutout_engine *e, const char *providers,
                                    OrtSessionOptions **so, char *err)
{
  const OrtApi *api = e->api;
  cutout_status st = cutout__model_options(e, providers, so, err);
  if (st) return st;
  st = cutout__ort_check(
      api->AddSessionConfigEntry(*so, "session.use_ort_model_bytes_directly",
                                 "1"),
      CUTOUT_ERUNTIME, err, "session options");
  if (!st)
    st = cutout__ort_check(
        api->AddSessionConfigEntry(
            *so, "session.use_ort_model_bytes_for_initializers", "1"),
        CUTOUT_ERUNTIME, err, "session options");
  if (!st)
    st = cutout__ort_check(
        api->SetSessionGraphOptimizationLevel(*so, ORT_DISABLE_ALL),
        CUTOUT_ERUNTIME, err, "session options");
  if (st) {
    api->ReleaseSessionOptions(*so);
    *so = NULL;
  }
  return st;
}

/* Map the cache file and create the session on it: STEP_OK; STEP_SYSTEM
 * when the system failed us (the file may be fine); STEP_REFUSED when ORT
 * rejected the file.  why says what happened. */
static int load_cached(cutout_engine *e, const char *providers,
                       struct cutout__compiled *c, OrtSession **out,
                       char *why, size_t whylen)
{
  char err[CUTOUT_ERRMSG_MAX] = "";
  int fd = open(c->path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0) {
    snprintf(why, whylen, "%s: %s", c->path, strerror(errno));
    return STEP_SYSTEM;
  }
  if (fstat(fd, &st) != 0) {
    snprintf(why, whylen, "%s: %s", c->path, strerror(errno));
    close(fd);
    return STEP_SYSTEM;
  }
  if (st.st_size <= 0) {
    snprintf(why, whylen, "%s: empty", c->path);
    close(fd);
    return STEP_REFUSED;
  }
  void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) {
    snprintf(why, whylen, "%s: %s", c->path, strerror(errno));
    return STEP_SYSTEM;
  }
  OrtSessionOptions *so = NULL;
  OrtSession *s = NULL;
  if (cached_options(e, providers, &so, err)) {
    munmap(map, (size_t)st.st_size);
    snprintf(why, whylen, "%s", err);
    return STEP_SYSTEM;
  }
  cutout_status rc = cutout__ort_check(
      e->api->CreateSessionFromArray(e->env, map, (size_t)st.st_size, so, &s),
      CUTOUT_EMODEL, err, c->path);
  e->api->ReleaseSessionOptions(so);
  if (rc) {
    munmap(map, (size_t)st.st_size);
    snprintf(why, whylen, "%s", err);
    return STEP_REFUSED;
  }
  c->map = map;
  c->map_len = (size_t)st.st_size;
  *out = s;
  return STEP_OK;
}

/* Optimise bytes with the model's options and save the result as c->path
 * (via a temporary file): STEP_OK; STEP_SYSTEM when the file system or
 * the system failed; STEP_REFUSED when ORT could not make or save the
 * model.  why says what happened. */
static int build(cutout_engine *e, const char *providers, const void *bytes,
                 size_t len, struct cutout__compiled *c, const char *dir,
                 const char *prefix, char *why, size_t whylen)
{
  static atomic_ulong seq;
  const OrtApi *api = e->api;
  char err[CUTOUT_ERRMSG_MAX] = "", tmp[PATH_MAX];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s/.%s.tmp.%ld.%lu.ort", dir, prefix,
                       (long)getpid(), atomic_fetch_add(&seq, 1)) >=
      sizeof tmp) {
    snprintf(why, whylen, "cache path too long");
    return STEP_SYSTEM;
  }
  /* The folder must take the file, so that ORT's own failure means ORT
   * cannot save this model: room for twice the model (the fp32 form of an
   * fp16 one) and the temporary file made here first. */
  struct statvfs vfs;
  if (statvfs(dir, &vfs) == 0 &&
      (unsigned long long)vfs.f_bavail * vfs.f_frsize <
          2ull * len + (64ull << 20)) {
    snprintf(why, whylen, "not enough free space in %s", dir);
    return STEP_SYSTEM;
  }
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    snprintf(why, whylen, "cannot write in %s: %s", dir, strerror(errno));
    return STEP_SYSTEM;
  }
  close(fd);
  OrtSessionOptions *so = NULL;
  OrtSession *s = NULL;
  if (cutout__model_options(e, providers, &so, err)) {
    unlink(tmp);
    snprintf(why, whylen, "%s", err);
    return STEP_SYSTEM;
  }
  cutout_status rc = cutout__ort_check(
      api->SetOptimizedModelFilePath(so, tmp), CUTOUT_ERUNTIME, err,
      "session options");
  if (!rc)
    rc = cutout__ort_check(
        api->AddSessionConfigEntry(so, "session.save_model_format", "ORT"),
        CUTOUT_ERUNTIME, err, "session options");
  if (!rc) /* a profile of this throwaway session would only mislead */
    rc = cutout__ort_check(api->DisableProfiling(so), CUTOUT_ERUNTIME, err,
                           "session options");
  if (rc) {
    api->ReleaseSessionOptions(so);
    unlink(tmp);
    snprintf(why, whylen, "%s", err);
    return STEP_SYSTEM;
  }
  rc = cutout__ort_check(api->CreateSessionFromArray(e->env, bytes, len, so,
                                                     &s),
                         CUTOUT_EMODEL, err, "optimising");
  api->ReleaseSessionOptions(so);
  if (s) api->ReleaseSession(s);
  if (rc) {
    unlink(tmp);
    snprintf(why, whylen, "%s", err);
    return STEP_REFUSED;
  }
  /* durable before it becomes visible */
  fd = open(tmp, O_RDONLY | O_CLOEXEC);
  int ok = fd >= 0 && fsync(fd) == 0;
  if (fd >= 0) close(fd);
  if (!ok || rename(tmp, c->path) != 0) {
    snprintf(why, whylen, "cannot save %s: %s", c->path, strerror(errno));
    unlink(tmp);
    return STEP_SYSTEM;
  }
  prune(dir, prefix, c->path);
  return STEP_OK;
}

/* The session from the rewrite when it loads, else from the model's own
 * bytes. */
static cutout_status plain_session(cutout_engine *e, const char *providers,
                                   const void *bytes, size_t len,
                                   const uint8_t *wide, size_t wide_len,
                                   OrtSession **out,
                                   struct cutout__compiled *c,
                                   const char *what, char *err)
{
  const OrtApi *api = e->api;
  OrtSessionOptions *so = NULL;
  cutout_status st = cutout__model_options(e, providers, &so, err);
  if (st) return st;
  if (wide) {
    char why[CUTOUT_ERRMSG_MAX] = "";
    st = cutout__ort_check(
        api->CreateSessionFromArray(e->env, wide, wide_len, so, out),
        CUTOUT_EMODEL, why, "ONNX Runtime");
    if (!st) {
      api->ReleaseSessionOptions(so);
      return CUTOUT_OK;
    }
    add_note(c, "model as it is: the rewrite did not load: ", why);
  }
  st = cutout__ort_check(api->CreateSessionFromArray(e->env, bytes, len, so,
                                                     out),
                         CUTOUT_EMODEL, err, what);
  api->ReleaseSessionOptions(so);
  return st;
}

cutout_status cutout__compiled_session(cutout_engine *e,
                                       const cutout_model_params *p,
                                       const char *name, const char *path,
                                       const struct stat *sb,
                                       const void *bytes, size_t len,
                                       const char *providers, int cpu_only,
                                       const char *what, OrtSession **out,
                                       struct cutout__compiled *c, char *err)
{
  char why[CUTOUT_ERRMSG_MAX] = "", dir[PATH_MAX], prefix[200], key[17];
  char failed[PATH_MAX + 16];
  uint8_t *wide = NULL;
  size_t wide_len = 0;
  cutout_status st;
  int r, remember = 0, rewritten = 0;
  memset(c, 0, sizeof *c);
  c->state = CUTOUT_COMPILED_OFF;
  unsigned asked = CUTOUT_REWRITE_FIRST_OUTPUT, done;
  if (cpu_only && e->eff.fp16 == CUTOUT_FP16_PROMOTE)
    asked |= CUTOUT_REWRITE_FP32;

  if (!e->eff.model_cache || !cpu_only) {
    if (e->eff.model_cache) add_note(c, "cache off: ", "not CPU-only");
    goto plain;
  }
  c->state = CUTOUT_COMPILED_FAILED; /* until a session comes from it */
  if (cutout__compiled_dir(p, dir, sizeof dir) != 0) {
    add_note(c, "cache not used: ", "no cache folder (HOME unset, or the "
                                    "name is too long)");
    goto plain;
  }
  if (cache_folder(dir, why, sizeof why) != 0) {
    add_note(c, "cache not used: ", why);
    goto plain;
  }
  safe_name(name, prefix, sizeof prefix - 1);
  strcat(prefix, "-");
  make_key(e, path, sb, asked, key);
  if ((size_t)snprintf(c->path, sizeof c->path, "%s/%s%s.ort", dir, prefix,
                       key) >= sizeof c->path ||
      (size_t)snprintf(failed, sizeof failed, "%s/%s%s.failed", dir, prefix,
                       key) >= sizeof failed) {
    c->path[0] = 0;
    add_note(c, "cache not used: ", "cache path too long");
    goto plain;
  }

  if (access(c->path, F_OK) == 0) {
    r = load_cached(e, providers, c, out, why, sizeof why);
    if (r == STEP_OK) {
      c->state = CUTOUT_COMPILED_HIT;
      utimensat(AT_FDCWD, c->path, NULL, 0); /* recently used: kept */
      return CUTOUT_OK;
    }
    if (r == STEP_SYSTEM) {
      add_note(c, "cache not used: ", why);
      goto plain;
    }
    unlink(c->path); /* ORT rejected it: build it again */
  } else if (read_note(failed, why, sizeof why) == 0) {
    add_note(c, "cache not used: ", why);
    goto plain;
  }

  /* Build from the rewrite; when ORT refuses that, from the model as it
   * is, in case the rewrite is to blame (and then without it for good). */
  done = asked;
  rewrite(&done, bytes, len, &wide, &wide_len, c);
  rewritten = 1;
  r = build(e, providers, wide ? (const void *)wide : bytes,
            wide ? wide_len : len, c, dir, prefix, why, sizeof why);
  if (r == STEP_REFUSED && wide) {
    add_note(c, "model as it is: the rewrite did not load: ", why);
    free(wide);
    wide = NULL;
    r = build(e, providers, bytes, len, c, dir, prefix, why, sizeof why);
  }
  if (r == STEP_OK) {
    free(wide); /* the session maps the saved file: no copy stays behind */
    wide = NULL;
    r = load_cached(e, providers, c, out, why, sizeof why);
    if (r == STEP_OK) {
      c->state = CUTOUT_COMPILED_BUILT;
      return CUTOUT_OK;
    }
    if (r == STEP_REFUSED) unlink(c->path);
  }
  add_note(c, "cache not used: ", why);
  /* ORT cannot make, save or reload this model: if the model itself
   * loads, remember that, so later loads skip the attempt */
  remember = r == STEP_REFUSED;

plain:
  if (!rewritten) {
    done = asked;
    rewrite(&done, bytes, len, &wide, &wide_len, c);
  }
  st = plain_session(e, providers, bytes, len, wide, wide_len, out, c, what,
                     err);
  free(wide);
  if (!st && remember) write_note(failed, why);
  return st;
}

void cutout__compiled_release(struct cutout__compiled *c)
{
  if (c && c->map) {
    munmap(c->map, c->map_len);
    c->map = NULL;
  }
}
