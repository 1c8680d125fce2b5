/*
 * compiled.c: cutout's cache of ONNX Runtime-optimised models.
 *
 * WHY
 * Creating an ISNet session from its .onnx costs 0.2-0.5 s of graph
 * rewriting (constant folding, fusions, the NCHWc layout), and copies the
 * weights into fresh memory that a virtual machine pays ~10 us per page
 * to fault in.  ORT can save the optimised graph in its own format and,
 * given the file's bytes, run on the weights in place.  So the first load
 * of a model optimises it once and saves the result; every later load maps
 * that file and creates the session in about 10 ms, with the weights
 * shared with the page cache.
 *
 * DESIGN
 * The file is <cache>/<model>-<key>.ort, where key hashes everything the
 * optimised graph depends on: the model file (path, device, inode, size,
 * mtime), the ONNX Runtime version, the CPU's feature flags (the NCHWc
 * layout is sized for the vector width), the optimisation level and the
 * fp16 choice.  A changed model, a new ORT or another CPU gives a new key.
 * Files are written to a temporary name and renamed, so a reader sees a
 * whole file or none; a file that fails to load is removed and rebuilt.
 * A model that ORT cannot save leaves a <key>.failed note, so later loads
 * do not try again.  Only CPU-only sessions use the cache: another
 * provider compiles its own way.
 *
 * Before ORT sees a model, cached or not, onnx_rewrite.c drops the
 * outputs cutout never reads and, when the engine's fp16 is "promote",
 * turns an fp16 model into fp32.
 */
#include "compiled.h"

#include "engine.h"
#include "onnx_rewrite.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define FORMAT_VERSION "cutout-compiled-1"
#define KEEP_PER_MODEL 3 /* cache files kept per model name */

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

/* mkdir -p, 0755. */
static int make_dirs(const char *dir)
{
  char tmp[PATH_MAX];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s", dir) >= sizeof tmp) {
    errno = ENAMETOOLONG;
    return -1;
  }
  for (char *s = tmp + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
    *s = '/';
  }
  return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
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

/* Hex sha256 of the key text, first 16 digits. */
static void make_key(cutout_engine *e, const char *path, const struct stat *sb,
                     unsigned rw, char *out)
{
  char real[PATH_MAX], cpu[4096], text[PATH_MAX + 4096 + 256];
  if (!realpath(path, real)) snprintf(real, sizeof real, "%s", path);
  cpu_flags(cpu, sizeof cpu);
  int n = snprintf(text, sizeof text,
                   "%s\n%s\n%llu %llu %lld %lld.%09ld\nort %s\n%s"
                   "opt %d rewrite %u\n",
                   FORMAT_VERSION, real, (unsigned long long)sb->st_dev,
                   (unsigned long long)sb->st_ino, (long long)sb->st_size,
                   (long long)sb->st_mtim.tv_sec, sb->st_mtim.tv_nsec,
                   cutout_ort_version(), cpu, e->eff.graph_opt, rw);
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned dn = 0;
  if (n < 0 || (size_t)n >= sizeof text) n = (int)strlen(text);
  if (!EVP_Digest(text, (size_t)n, d, &dn, EVP_sha256(), NULL)) dn = 0;
  for (unsigned i = 0; i < 8; i++)
    snprintf(out + 2 * i, 3, "%02x", i < dn ? d[i] : 0);
}

/* A file-name-safe copy of the model name. */
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

/* Keep the KEEP_PER_MODEL newest <prefix><16 hex>.ort files of a model,
 * always including keep (the one just written), and drop temporaries of
 * the model older than an hour (a crashed build). */
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
  char full[PATH_MAX];
  while ((de = readdir(d))) {
    const char *nm = de->d_name;
    size_t n = strlen(nm);
    struct stat st;
    if ((size_t)snprintf(full, sizeof full, "%s/%s", dir, nm) >= sizeof full ||
        stat(full, &st) != 0)
      continue;
    if (nm[0] == '.' && strncmp(nm + 1, prefix, pl) == 0 &&
        strstr(nm, ".tmp.") && time(NULL) - st.st_mtime > 3600) {
      unlink(full);
      continue;
    }
    if (strncmp(nm, prefix, pl) != 0 || n != pl + 16 + 4 ||
        strcmp(nm + n - 4, ".ort") != 0 ||
        strspn(nm + pl, "0123456789abcdef") != 16 || strcmp(nm, kb) == 0)
      continue;
    /* the KEEP_PER_MODEL - 1 newest others stay, by insertion, newest
     * first; whatever falls off the end goes */
    struct ent cur;
    snprintf(cur.name, sizeof cur.name, "%s", nm);
    cur.mtime = st.st_mtim;
    int at = nk;
    while (at > 0 && (newest[at - 1].mtime.tv_sec < cur.mtime.tv_sec ||
                      (newest[at - 1].mtime.tv_sec == cur.mtime.tv_sec &&
                       newest[at - 1].mtime.tv_nsec < cur.mtime.tv_nsec)))
      at--;
    if (at >= KEEP_PER_MODEL - 1) {
      unlink(full);
      continue;
    }
    if (nk == KEEP_PER_MODEL - 1) {
      snprintf(full, sizeof full, "%s/%s", dir, newest[nk - 1].name);
      unlink(full);
      nk--;
    }
    memmove(&newest[at + 1], &newest[at], (size_t)(nk - at) * sizeof newest[0]);
    newest[at] = cur;
    nk++;
  }
  closedir(d);
}

static int read_note(const char *path, char *out, size_t cap)
{
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

/* Session options for a cached file: the engine's, plus ORT reading the
 * graph and the weights straight from the mapped bytes, and no second
 * round of optimisation. */
static cutout_status cached_options(cutout_engine *e, OrtSessionOptions **so,
                                    char *err)
{
  const OrtApi *api = e->api;
  cutout_status st = cutout__session_options(e, so, err);
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

/* Map the cache file and create the session on it.  0, or -1 with the
 * reason in why (the file is then not usable). */
static int load_cached(cutout_engine *e, struct cutout__compiled *c,
                       OrtSession **out, char *why, size_t whylen)
{
  char err[CUTOUT_ERRMSG_MAX] = "";
  int fd = open(c->path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0) {
    snprintf(why, whylen, "%s: %s", c->path, strerror(errno));
    return -1;
  }
  if (fstat(fd, &st) != 0 || st.st_size <= 0) {
    snprintf(why, whylen, "%s: empty", c->path);
    close(fd);
    return -1;
  }
  void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) {
    snprintf(why, whylen, "%s: %s", c->path, strerror(errno));
    return -1;
  }
  OrtSessionOptions *so = NULL;
  OrtSession *s = NULL;
  cutout_status rc = cached_options(e, &so, err);
  if (!rc)
    rc = cutout__ort_check(e->api->CreateSessionFromArray(
                               e->env, map, (size_t)st.st_size, so, &s),
                           CUTOUT_EMODEL, err, c->path);
  if (so) e->api->ReleaseSessionOptions(so);
  if (rc) {
    munmap(map, (size_t)st.st_size);
    snprintf(why, whylen, "%s", err);
    return -1;
  }
  c->map = map;
  c->map_len = (size_t)st.st_size;
  *out = s;
  return 0;
}

/* Optimise bytes with the engine's options and save the result as
 * c->path (via a temporary file).  0; or, with the reason in why, 1 when
 * ORT cannot save this model, 2 when the file system failed. */
static int build(cutout_engine *e, const void *bytes, size_t len,
                 struct cutout__compiled *c, const char *dir,
                 const char *prefix, char *why, size_t whylen)
{
  const OrtApi *api = e->api;
  char err[CUTOUT_ERRMSG_MAX] = "", tmp[PATH_MAX];
  static unsigned long seq;
  if ((size_t)snprintf(tmp, sizeof tmp, "%s/.%s.tmp.%ld.%lu.ort", dir, prefix,
                       (long)getpid(),
                       __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED)) >=
      sizeof tmp) {
    snprintf(why, whylen, "cache path too long");
    return 2;
  }
  /* The folder must take the file (ORT's own failure then means ORT cannot
   * save this model, for good): writable, and room for twice the model,
   * as the fp32 form of an fp16 one is. */
  struct statvfs vfs;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    snprintf(why, whylen, "cannot write in %s: %s", dir, strerror(errno));
    return 2;
  }
  close(fd);
  if (statvfs(dir, &vfs) == 0 &&
      (unsigned long long)vfs.f_bavail * vfs.f_frsize <
          2ull * len + (64ull << 20)) {
    unlink(tmp);
    snprintf(why, whylen, "not enough free space in %s", dir);
    return 2;
  }
  OrtSessionOptions *so = NULL;
  OrtSession *s = NULL;
  cutout_status rc = cutout__session_options(e, &so, err);
  if (!rc)
    rc = cutout__ort_check(api->SetOptimizedModelFilePath(so, tmp),
                           CUTOUT_ERUNTIME, err, "session options");
  if (!rc)
    rc = cutout__ort_check(
        api->AddSessionConfigEntry(so, "session.save_model_format", "ORT"),
        CUTOUT_ERUNTIME, err, "session options");
  if (!rc)
    rc = cutout__ort_check(api->CreateSessionFromArray(e->env, bytes, len, so,
                                                       &s),
                           CUTOUT_EMODEL, err, "optimising");
  if (so) api->ReleaseSessionOptions(so);
  if (s) api->ReleaseSession(s);
  if (rc) {
    unlink(tmp);
    snprintf(why, whylen, "%s", err);
    return 1;
  }
  /* durable before it becomes visible */
  fd = open(tmp, O_RDONLY | O_CLOEXEC);
  int ok = fd >= 0 && fsync(fd) == 0;
  if (fd >= 0) close(fd);
  if (!ok || rename(tmp, c->path) != 0) {
    snprintf(why, whylen, "cannot save %s: %s", c->path, strerror(errno));
    unlink(tmp);
    return 2;
  }
  prune(dir, prefix, c->path);
  return 0;
}

/* The plain session: from the fp32 rewrite when there is one, else (or
 * when the rewrite does not load) from the model's own bytes. */
static cutout_status plain_session(cutout_engine *e, const void *bytes,
                                   size_t len, uint8_t *wide, size_t wide_len,
                                   OrtSessionOptions *so, OrtSession **out,
                                   struct cutout__compiled *c,
                                   const char *what, char *err)
{
  const OrtApi *api = e->api;
  if (wide) {
    char why[CUTOUT_ERRMSG_MAX] = "";
    cutout_status st = cutout__ort_check(
        api->CreateSessionFromArray(e->env, wide, wide_len, so, out),
        CUTOUT_EMODEL, why, "ONNX Runtime");
    if (!st) return CUTOUT_OK;
    snprintf(c->note, sizeof c->note,
             "model as it is: the rewrite did not load (%s)", why);
  }
  return cutout__ort_check(api->CreateSessionFromArray(e->env, bytes, len, so,
                                                       out),
                           CUTOUT_EMODEL, err, what);
}

/* The rewritten model, once: fp16 as fp32 and only the first output (a
 * model the rewrite cannot read is left to ORT to judge). */
static void rewrite(unsigned flags, const void *bytes, size_t len,
                    uint8_t **wide, size_t *wide_len,
                    struct cutout__compiled *c)
{
  char why[CUTOUT_ERRMSG_MAX] = "", note[200] = "";
  struct cutout__rewrite_stats rs;
  if (!flags || *wide) return;
  int r = cutout__onnx_rewrite(bytes, len, flags, wide, wide_len, &rs, why,
                               sizeof why);
  if (r == 1 && rs.tensors + rs.types && rs.outputs)
    snprintf(note, sizeof note, "fp16 promoted to fp32 (%zu tensors, %zu "
             "types), %zu unused outputs dropped", rs.tensors, rs.types,
             rs.outputs);
  else if (r == 1 && rs.tensors + rs.types)
    snprintf(note, sizeof note, "fp16 promoted to fp32 (%zu tensors, %zu "
             "types)", rs.tensors, rs.types);
  else if (r == 1)
    snprintf(note, sizeof note, "%zu unused outputs dropped", rs.outputs);
  else if (r < 0)
    snprintf(note, sizeof note, "model not rewritten: %.150s", why);
  if (*note) {
    char rest[sizeof c->note];
    snprintf(rest, sizeof rest, "%s", c->note);
    snprintf(c->note, sizeof c->note, "%s%s%s", note, *rest ? "; " : "",
             rest);
  }
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

cutout_status cutout__compiled_session(cutout_engine *e,
                                       const cutout_model_params *p,
                                       const char *name, const char *path,
                                       const struct stat *sb,
                                       const void *bytes, size_t len,
                                       int cpu_only, OrtSessionOptions *so,
                                       const char *what, OrtSession **out,
                                       struct cutout__compiled *c, char *err)
{
  char why[CUTOUT_ERRMSG_MAX] = "", dir[PATH_MAX], prefix[200], key[17];
  char failed[PATH_MAX + 16];
  uint8_t *wide = NULL;
  size_t wide_len = 0;
  cutout_status st;
  memset(c, 0, sizeof *c);
  c->state = CUTOUT_COMPILED_OFF;

  unsigned flags = CUTOUT_REWRITE_FIRST_OUTPUT;
  if (cpu_only && e->eff.fp16 == CUTOUT_FP16_PROMOTE)
    flags |= CUTOUT_REWRITE_FP32;
  const void *feed = bytes;
  size_t feed_len = len;

  if (!e->eff.model_cache || !cpu_only) {
    if (e->eff.model_cache) add_note(c, "cache off: ", "not CPU-only");
    goto plain;
  }
  c->state = CUTOUT_COMPILED_FAILED; /* until a session comes from it */
  if (cutout__compiled_dir(p, dir, sizeof dir) != 0) {
    add_note(c, "cache not used: ", "no cache folder (HOME unset)");
    goto plain;
  }
  safe_name(name, prefix, sizeof prefix - 1);
  strcat(prefix, "-");
  make_key(e, path, sb, flags, key);
  if ((size_t)snprintf(c->path, sizeof c->path, "%s/%s%s.ort", dir, prefix,
                       key) >= sizeof c->path) {
    c->path[0] = 0;
    add_note(c, "cache not used: ", "cache path too long");
    goto plain;
  }
  snprintf(failed, sizeof failed, "%s/%s%s.failed", dir, prefix, key);

  if (access(c->path, F_OK) == 0) {
    if (load_cached(e, c, out, why, sizeof why) == 0) {
      c->state = CUTOUT_COMPILED_HIT;
      free(wide);
      return CUTOUT_OK;
    }
    unlink(c->path); /* unusable: build it again */
  } else if (read_note(failed, why, sizeof why) == 0) {
    add_note(c, "cache not used: ", why);
    goto plain;
  }
  if (make_dirs(dir) != 0) {
    snprintf(why, sizeof why, "cache folder %s: %s", dir, strerror(errno));
    add_note(c, "cache not used: ", why);
    goto plain;
  }
  rewrite(flags, bytes, len, &wide, &wide_len, c);
  if (wide) {
    feed = wide;
    feed_len = wide_len;
  }
  int r = build(e, feed, feed_len, c, dir, prefix, why, sizeof why);
  if (r == 0) {
    if (load_cached(e, c, out, why, sizeof why) == 0) {
      c->state = CUTOUT_COMPILED_BUILT;
      free(wide);
      return CUTOUT_OK;
    }
    unlink(c->path);
    r = 1; /* saved but not loadable: ORT's doing, not the disk's */
  }
  add_note(c, "cache not used: ", why);
  st = plain_session(e, bytes, len, wide, wide_len, so, out, c, what, err);
  /* A model that works but that ORT cannot save or reload gets a note,
   * so later loads do not try again; a full disk does not. */
  if (!st && r == 1) write_note(failed, why);
  free(wide);
  return st;

plain:
  rewrite(flags, bytes, len, &wide, &wide_len, c);
  st = plain_session(e, bytes, len, wide, wide_len, so, out, c, what, err);
  free(wide);
  return st;
}

void cutout__compiled_release(struct cutout__compiled *c)
{
  if (c && c->map) {
    munmap(c->map, c->map_len);
    c->map = NULL;
  }
}
