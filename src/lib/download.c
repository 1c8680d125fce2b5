/*
 * download.c: fetching rembg's models with libcurl, as rembg's sessions do
 * with pooch.retrieve() before they load a model.
 *
 * DESIGN
 * A file is fetched into "<dir>/.<file>.part" and reaches its real name
 * only by rename(2) after its checksum (md5 or sha256, the registry's, as
 * rembg checks it) matched, so a reader never sees half a model.  The part
 * file is also the lock: the process that holds flock() on it downloads,
 * any other waits and then finds the finished file.  A transfer that
 * breaks after making progress is resumed with an HTTP Range request (a
 * server that ignores Range gets the file from the start again); a part
 * left by a killed process is resumed the same way when the file has a
 * checksum to catch a stale prefix.  Every failure (HTTP error, stall,
 * checksum mismatch, disk error) removes the part file: nothing is left
 * behind.  Proxies are libcurl's usual variables, plus the upper-case
 * HTTP_PROXY that Python's requests (pooch) honours and libcurl ignores.
 */
#include "registry.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_STALL 60
#define DEFAULT_RETRIES 4

cutout_download_params cutout_download_default_params(void)
{
  cutout_download_params p;
  memset(&p, 0, sizeof p);
  p.retries = -1;
  return p;
}

/* curl_global_init is not thread-safe in every libcurl: run it once. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void)
{
  curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ------------------------------------------------------------------------
 * Checksums
 * ---------------------------------------------------------------------- */

static const EVP_MD *md_of(const char *hash)
{
  if (!hash) return NULL;
  if (strncmp(hash, "md5:", 4) == 0) return EVP_md5();
  if (strncmp(hash, "sha256:", 7) == 0) return EVP_sha256();
  return NULL;
}

/* "md5:<hex>" of the whole file at fd (read from offset 0). */
static cutout_status hash_fd(int fd, const EVP_MD *md, char *out, size_t cap,
                             char *err, const char *what)
{
  EVP_MD_CTX *x = EVP_MD_CTX_new();
  unsigned char buf[1 << 16], d[EVP_MAX_MD_SIZE];
  unsigned int dn = 0;
  off_t pos = 0;
  cutout_status st = CUTOUT_OK;
  if (!x || !EVP_DigestInit_ex(x, md, NULL)) {
    EVP_MD_CTX_free(x);
    return cutout__err(err, CUTOUT_ENOMEM, "out of memory");
  }
  for (;;) {
    ssize_t n = pread(fd, buf, sizeof buf, pos);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      st = cutout__err(err, CUTOUT_EIO, "%s: %s", what, strerror(errno));
      break;
    }
    if (n == 0) break;
    EVP_DigestUpdate(x, buf, (size_t)n);
    pos += n;
  }
  if (!st && EVP_DigestFinal_ex(x, d, &dn)) {
    size_t p = (size_t)snprintf(out, cap, "%s:", md == EVP_md5() ? "md5"
                                                                 : "sha256");
    for (unsigned i = 0; i < dn && p + 3 <= cap; i++, p += 2)
      snprintf(out + p, cap - p, "%02x", d[i]);
  }
  EVP_MD_CTX_free(x);
  return st;
}

/* Which of the file's accepted hashes fd matches: 0 none (got = its
 * digest in the first hash's algorithm), 1 the hash, 2 the alternative. */
static cutout_status match_hash(int fd, const struct cutout__model_file *f,
                                int *which, char *got, size_t cap, char *err,
                                const char *what)
{
  const char *want[2] = {f->hash, f->alt_hash};
  char first[160] = "";
  *which = 0;
  for (int i = 0; i < 2; i++) {
    char d[160] = "";
    if (!md_of(want[i])) continue;
    cutout_status st = hash_fd(fd, md_of(want[i]), d, sizeof d, err, what);
    if (st) return st;
    if (strcmp(d, want[i]) == 0) {
      *which = i + 1;
      return CUTOUT_OK;
    }
    if (!first[0]) snprintf(first, sizeof first, "%s", d);
  }
  snprintf(got, cap, "%s", first);
  return CUTOUT_OK;
}

/* ------------------------------------------------------------------------
 * One HTTP transfer into a file descriptor, resumed after breaks
 * ---------------------------------------------------------------------- */

struct xfer {
  CURL *curl;
  int fd;
  uint64_t offset;   /* bytes the file had when this attempt started */
  uint64_t got;      /* bytes written by this attempt */
  int checked;       /* the response status was looked at */
  int bad_status;    /* an HTTP error: the body is not the file */
  int bad_range;     /* a 206 for another range than asked */
  int write_errno;
  int stalled;       /* no byte for `stall` seconds */
  int stall;
  double last_byte;  /* monotonic time of the last byte (or the start) */
  uint64_t last_now;
  long range_start;  /* from Content-Range, -1 if none */
  const cutout_download_params *dp;
  const char *label;
};

static size_t on_header(char *buf, size_t size, size_t n, void *arg)
{
  struct xfer *x = arg;
  size_t len = size * n;
  /* a new response (redirect hop, or 100-continue) resets what we know */
  if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) x->range_start = -1;
  if (len > 14 && strncasecmp(buf, "Content-Range:", 14) == 0) {
    const char *p = buf + 14;
    while (p < buf + len && (*p == ' ' || *p == '\t')) p++;
    if (p + 6 <= buf + len && strncasecmp(p, "bytes ", 6) == 0)
      x->range_start = strtol(p + 6, NULL, 10);
  }
  return len;
}

static size_t on_data(char *buf, size_t size, size_t n, void *arg)
{
  struct xfer *x = arg;
  size_t len = size * n;
  if (!x->checked) {
    long code = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
    x->checked = 1;
    if (code == 206) {
      if (x->range_start != (long)x->offset) {
        x->bad_range = 1;
        return 0;
      }
    } else if (code == 200) {
      if (x->offset > 0) {
        /* the server ignored Range: take the whole file again */
        if (ftruncate(x->fd, 0) != 0 || lseek(x->fd, 0, SEEK_SET) != 0) {
          x->write_errno = errno;
          return 0;
        }
        x->offset = 0;
      }
    } else {
      x->bad_status = 1;
      return 0; /* an error page is not the model: stop reading it */
    }
  }
  for (size_t done = 0; done < len;) {
    ssize_t w = write(x->fd, buf + done, len - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      x->write_errno = w < 0 ? errno : ENOSPC;
      return 0;
    }
    done += (size_t)w;
  }
  x->got += len;
  return len;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow)
{
  struct xfer *x = arg;
  (void)ultotal;
  (void)ulnow;
  /* libcurl calls this about once a second even when nothing arrives:
   * a stall is a stretch without a single byte (libcurl's own low-speed
   * check averages over a window and fires seconds late) */
  double now = cutout__now();
  if ((uint64_t)dlnow > x->last_now) {
    x->last_now = (uint64_t)dlnow;
    x->last_byte = now;
  } else if (now - x->last_byte >= (double)x->stall) {
    x->stalled = 1;
    return 1;
  }
  if (x->dp->progress && x->checked && !x->bad_status)
    x->dp->progress(x->dp->progress_user, x->label,
                    x->offset + (uint64_t)dlnow,
                    dltotal > 0 ? x->offset + (uint64_t)dltotal : 0);
  return 0;
}

/* pooch (requests) also honours upper-case HTTP_PROXY; libcurl only reads
 * the lower-case http_proxy for http:// URLs (the httpoxy rule). */
static const char *http_proxy_for(const char *url)
{
  if (strncmp(url, "http://", 7) != 0) return NULL;
  const char *lc = getenv("http_proxy");
  if (lc && *lc) return NULL; /* libcurl uses it already */
  const char *uc = getenv("HTTP_PROXY");
  return uc && *uc ? uc : NULL;
}

static int stall_seconds(const cutout_download_params *dp)
{
  if (dp->stall_timeout > 0) return dp->stall_timeout;
  const char *e = getenv("CUTOUT_DOWNLOAD_TIMEOUT");
  if (e && *e) {
    char *end;
    long v = strtol(e, &end, 10);
    if (!*end && v > 0 && v < 86400) return (int)v;
  }
  return DEFAULT_STALL;
}

/* Fetch url into fd, starting from (resuming at) fd's current size. */
static cutout_status fetch(const char *url, int fd,
                           const cutout_download_params *dp, const char *label,
                           char *err)
{
  CURL *c = curl_easy_init();
  if (!c) return cutout__err(err, CUTOUT_ENOMEM, "cannot start libcurl");
  char cerr[CURL_ERROR_SIZE];
  int stall = stall_seconds(dp);
  int retries = dp->retries >= 0 ? dp->retries : DEFAULT_RETRIES;
  const char *proxy = http_proxy_for(url);
  cutout_status st = CUTOUT_OK;
  struct xfer x;

  for (int attempt = 0;; attempt++) {
    struct stat sb;
    if (fstat(fd, &sb) != 0 || lseek(fd, 0, SEEK_END) < 0) {
      st = cutout__err(err, CUTOUT_EIO, "%s: %s", label, strerror(errno));
      break;
    }
    memset(&x, 0, sizeof x);
    x.curl = c;
    x.fd = fd;
    x.offset = (uint64_t)sb.st_size;
    x.range_start = -1;
    x.stall = stall;
    x.last_byte = cutout__now();
    x.dp = dp;
    x.label = label;
    char range[48];
    snprintf(range, sizeof range, "%llu-", (unsigned long long)x.offset);

    curl_easy_reset(c);
    cerr[0] = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L); /* GitHub -> its CDN */
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85: the string forms */
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS,
                     (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS,
                     (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_USERAGENT, "cutout/" CUTOUT_VERSION_STRING);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* threads may call us */
    /* a stall, not a slow line, is what fails (see on_progress) */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)stall);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    if (x.offset > 0) curl_easy_setopt(c, CURLOPT_RANGE, range);
    if (proxy) curl_easy_setopt(c, CURLOPT_PROXY, proxy);

    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (rc == CURLE_OK && !x.bad_status && (code == 200 || code == 206))
      break; /* complete: libcurl checked Content-Length */
    if (x.write_errno) {
      st = cutout__err(err, CUTOUT_EIO, "%s: writing: %s", label,
                       strerror(x.write_errno));
      break;
    }
    if (code == 416 && x.offset > 0 && attempt < retries) {
      /* the leftover part is not a prefix this server knows: restart */
      if (ftruncate(fd, 0) != 0) {
        st = cutout__err(err, CUTOUT_EIO, "%s: %s", label, strerror(errno));
        break;
      }
      continue;
    }
    if (x.bad_range) {
      st = cutout__err(err, CUTOUT_EIO,
                       "%s: %s answered another byte range than asked "
                       "(%ld, wanted %llu)", label, url, x.range_start,
                       (unsigned long long)x.offset);
      break;
    }
    if (x.bad_status || (rc == CURLE_OK && code >= 300)) {
      const char *why = code == 404   ? " (Not Found)"
                        : code == 403 ? " (Forbidden)"
                        : code == 401 ? " (Unauthorized)"
                        : code >= 500 ? " (server error)" : "";
      st = cutout__err(err, CUTOUT_EIO, "%s: HTTP %ld%s from %s", label, code,
                       why, url);
      break;
    }
    /* a broken or stalled transfer: resume while it makes progress */
    if (x.got > 0 && attempt < retries) continue;
    if (x.stalled || rc == CURLE_OPERATION_TIMEDOUT)
      st = cutout__err(err, CUTOUT_EIO,
                       "%s: %s: no data for %d s, gave up after %d "
                       "attempt%s (set CUTOUT_DOWNLOAD_TIMEOUT to wait longer)",
                       label, url, stall, attempt + 1, attempt ? "s" : "");
    else
      st = cutout__err(err, CUTOUT_EIO, "%s: %s: %s%s%s", label, url,
                       curl_easy_strerror(rc), cerr[0] ? ": " : "", cerr);
    break;
  }
  curl_easy_cleanup(c);
  return st;
}

/* ------------------------------------------------------------------------
 * Files in the model folder
 * ---------------------------------------------------------------------- */

static cutout_status model_dir_of(const cutout_model_params *mp, char *dir,
                                  size_t cap, char *err)
{
  if (mp && mp->model_dir && *mp->model_dir) {
    if ((size_t)snprintf(dir, cap, "%s", mp->model_dir) >= cap)
      return cutout__err(err, CUTOUT_EINVAL, "model folder name too long");
    return CUTOUT_OK;
  }
  if (cutout_model_dir(dir, cap))
    return cutout__err(err, CUTOUT_EINVAL, "model folder name too long");
  return CUTOUT_OK;
}

/* mkdir -p, as pooch creates the cache folder. */
static cutout_status make_dirs(const char *dir, char *err)
{
  char p[PATH_MAX];
  if ((size_t)snprintf(p, sizeof p, "%s", dir) >= sizeof p)
    return cutout__err(err, CUTOUT_EINVAL, "model folder name too long");
  for (char *s = p + 1;; s++) {
    if (*s != '/' && *s) continue;
    char c = *s;
    *s = 0;
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
      return cutout__err(err, CUTOUT_EIO, "cannot create the model folder "
                         "%s: %s", p, strerror(errno));
    *s = c;
    if (!c) break;
  }
  return CUTOUT_OK;
}

static int checksums_on(const cutout_model_params *mp)
{
  return (!mp || mp->verify_checksum) && !getenv("MODEL_CHECKSUM_DISABLED");
}

/* Is the file at path usable as f?  1 yes, 0 missing, -1 present but its
 * checksum does not match (got = its digest). */
static int usable(const char *path, const struct cutout__model_file *f,
                  int check, char *got, size_t cap, cutout_status *st,
                  char *err)
{
  struct stat sb;
  *st = CUTOUT_OK;
  if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return 0;
  if (!check || !md_of(f->hash)) return 1;
  if (cutout__stamp_ok(path, &sb, f->hash) ||
      (f->alt_hash && cutout__stamp_ok(path, &sb, f->alt_hash)))
    return 1;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *st = cutout__err(err, CUTOUT_EIO, "%s: %s", path, strerror(errno));
    return -1;
  }
  int which = 0;
  *st = match_hash(fd, f, &which, got, cap, err, path);
  close(fd);
  if (*st) return -1;
  if (which) {
    cutout__stamp_write(path, &sb, which == 1 ? f->hash : f->alt_hash);
    return 1;
  }
  return -1;
}

/* Open path and take its exclusive lock; the lock holder may unlink the
 * file while we wait, so check that the name still leads to our inode. */
static int open_locked(const char *path)
{
  for (;;) {
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    if (flock(fd, LOCK_EX) != 0) {
      int e = errno;
      close(fd);
      errno = e;
      return -1;
    }
    struct stat a, b;
    if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
        a.st_dev == b.st_dev)
      return fd;
    close(fd);
  }
}

static void url_of(const cutout_download_params *dp, const char *asset,
                   char *out, size_t cap)
{
  const char *base = dp->base_url;
  if (!base || !*base) base = getenv("CUTOUT_MODEL_BASE_URL");
  if (!base || !*base) base = CUTOUT__RELEASE_URL;
  size_t n = strlen(base);
  while (n > 0 && base[n - 1] == '/') n--;
  snprintf(out, cap, "%.*s/%s", (int)n, base, asset);
}

/* vit_h's external data: three release parts, concatenated (rembg). */
static cutout_status fetch_parts(const char *dir,
                                 const struct cutout__model_file *f, int out,
                                 const cutout_download_params *dp, char *err)
{
  cutout_status st = CUTOUT_OK;
  for (int i = 1; i <= f->parts && !st; i++) {
    char asset[200], url[1024], tmp[PATH_MAX], label[200];
    snprintf(asset, sizeof asset, "%s.%d.bin", f->asset, i);
    url_of(dp, asset, url, sizeof url);
    snprintf(label, sizeof label, "%s", asset);
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/.%s.part", dir, asset) >=
        sizeof tmp)
      return cutout__err(err, CUTOUT_EINVAL, "model path too long");
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
      return cutout__err(err, CUTOUT_EIO, "cannot write in %s: %s", dir,
                         strerror(errno));
    st = fetch(url, fd, dp, label, err);
    char buf[1 << 16];
    off_t pos = 0;
    while (!st) {
      ssize_t n = pread(fd, buf, sizeof buf, pos);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (n < 0) st = cutout__err(err, CUTOUT_EIO, "%s: %s", tmp,
                                    strerror(errno));
        break;
      }
      if (write(out, buf, (size_t)n) != n) {
        st = cutout__err(err, CUTOUT_EIO, "%s: writing: %s", f->file,
                         strerror(errno ? errno : ENOSPC));
        break;
      }
      pos += n;
    }
    close(fd);
    unlink(tmp);
  }
  return st;
}

/* Download f into dir (see DESIGN). */
static cutout_status download_file(const char *dir,
                                   const struct cutout__model_file *f,
                                   int check, const cutout_download_params *dp,
                                   char *err)
{
  char path[PATH_MAX], part[PATH_MAX], url[1024], got[160] = "";
  cutout_status st = CUTOUT_OK;
  if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, f->file) >=
          sizeof path ||
      (size_t)snprintf(part, sizeof part, "%s/.%s.part", dir, f->file) >=
          sizeof part)
    return cutout__err(err, CUTOUT_EINVAL, "model path too long");
  url_of(dp, f->asset, url, sizeof url);

  int fd = open_locked(part);
  if (fd < 0)
    return cutout__err(err, CUTOUT_EIO, "cannot write in %s: %s", dir,
                       strerror(errno));
  /* another process may have finished it while we waited for the lock */
  int u = usable(path, f, check, got, sizeof got, &st, err);
  if (u == 1) {
    unlink(part);
    close(fd);
    return CUTOUT_OK;
  }
  st = CUTOUT_OK;
  /* a leftover part is only worth resuming when a checksum will judge
   * the result */
  int hashed = check && md_of(f->hash);
  if ((!hashed || f->parts) && ftruncate(fd, 0) != 0) {
    st = cutout__err(err, CUTOUT_EIO, "%s: %s", part, strerror(errno));
    goto fail;
  }
  if (dp->progress) dp->progress(dp->progress_user, f->file, 0, 0);
  st = f->parts ? fetch_parts(dir, f, fd, dp, err)
                : fetch(url, fd, dp, f->file, err);
  if (st) goto fail;
  if (fsync(fd) != 0) {
    st = cutout__err(err, CUTOUT_EIO, "%s: %s", part, strerror(errno));
    goto fail;
  }
  const char *matched = NULL;
  if (hashed) {
    int which = 0;
    if ((st = match_hash(fd, f, &which, got, sizeof got, err, part)))
      goto fail;
    if (!which) {
      st = cutout__err(err, CUTOUT_EMODEL,
                       "%s: checksum mismatch after download from %s: %s, "
                       "expected %s (the server did not send rembg's file; "
                       "nothing was kept)", f->file, url, got, f->hash);
      goto fail;
    }
    matched = which == 1 ? f->hash : f->alt_hash;
  }
  if (rename(part, path) != 0) {
    st = cutout__err(err, CUTOUT_EIO, "%s: %s", path, strerror(errno));
    goto fail;
  }
  /* make the rename durable before anyone relies on it */
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  struct stat sb;
  if (matched && stat(path, &sb) == 0) cutout__stamp_write(path, &sb, matched);
  close(fd);
  return CUTOUT_OK;

fail:
  unlink(part);
  close(fd);
  return st;
}

/* ------------------------------------------------------------------------
 * Public entry points
 * ---------------------------------------------------------------------- */

static int looks_like_path(const char *s)
{
  size_t n = strlen(s);
  return strchr(s, '/') || (n > 5 && strcmp(s + n - 5, ".onnx") == 0);
}

cutout_status cutout_model_download(const char *name,
                                    const cutout_model_params *mp,
                                    const cutout_download_params *dp,
                                    char *errbuf, size_t errbuf_size)
{
  char err[CUTOUT_ERRMSG_MAX] = "", dir[PATH_MAX], got[160];
  cutout_status st = CUTOUT_OK;
  cutout_download_params ddef = cutout_download_default_params();
  struct cutout__model_file files[CUTOUT__MAX_FILES];
  const struct cutout__model_row *r;
  int n;

  if (!dp) dp = &ddef;
  if (!name || !*name) {
    st = cutout__err(err, CUTOUT_EINVAL, "no model name");
    goto out;
  }
  if (looks_like_path(name)) goto out; /* the user's own file */
  if (!(r = cutout__registry_find(name))) {
    st = cutout__err(err, CUTOUT_ENOMODEL, "unknown model '%s'", name);
    goto out;
  }
  n = cutout__model_files(r, mp ? mp->sam_model : NULL, mp && mp->sam_quant,
                          files, err);
  if (n < 0) {
    st = CUTOUT_EINVAL;
    goto out;
  }
  if (n == 0 || (!r->info.url && r->post != CUTOUT_POST_SAM)) {
    st = cutout__err(err, CUTOUT_EUNSUPPORTED,
                     "%s has nothing to download: %s", name,
                     r->custom ? "it runs your own file (-x "
                                 "'{\"model_path\": \"...\"}')"
                               : "it is not published by rembg");
    goto out;
  }
  if ((st = model_dir_of(mp, dir, sizeof dir, err))) goto out;
  int check = checksums_on(mp), made = 0;
  for (int i = 0; i < n && !st; i++) {
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, files[i].file) >=
        sizeof path) {
      st = cutout__err(err, CUTOUT_EINVAL, "model path too long");
      break;
    }
    int u = usable(path, &files[i], check, got, sizeof got, &st, err);
    if (st) break;
    if (u == 1) continue;
    if (!made && (st = make_dirs(dir, err))) break;
    made = 1;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
      st = cutout__err(err, CUTOUT_ERUNTIME, "libcurl: %s",
                       curl_easy_strerror(curl_init_rc));
      break;
    }
    st = download_file(dir, &files[i], check, dp, err);
    if (st && u == -1) {
      /* rembg re-downloads a file whose checksum does not match; say both
       * things when that fails too */
      char why[CUTOUT_ERRMSG_MAX];
      snprintf(why, sizeof why, "%s", err);
      cutout__err(err, st, "%s: checksum mismatch: %s, expected %s; "
                  "downloading it again failed: %s", path, got,
                  files[i].hash, why);
    }
  }

out:
  if (st && errbuf && errbuf_size) snprintf(errbuf, errbuf_size, "%s", err);
  return st;
}

cutout_status cutout_model_locate(const char *name,
                                  const cutout_model_params *p, char *path,
                                  size_t path_size, uint64_t *bytes,
                                  int *present, int *verified)
{
  char dir[PATH_MAX], first[PATH_MAX] = "";
  struct cutout__model_file files[CUTOUT__MAX_FILES];
  uint64_t total = 0;
  int all = 1, ok = 1;
  if (!name) return CUTOUT_EINVAL;
  const struct cutout__model_row *r = cutout__registry_find(name);
  if (!r) return CUTOUT_ENOMODEL;
  int n = cutout__model_files(r, p ? p->sam_model : NULL, p && p->sam_quant,
                              files, NULL);
  if (n < 0) return CUTOUT_EINVAL;
  if (model_dir_of(p, dir, sizeof dir, NULL)) return CUTOUT_EINVAL;
  if (n == 0) {
    /* a custom model: the user's model_path, if given */
    struct stat sb;
    const char *mpth = p ? p->model_path : NULL;
    all = mpth && *mpth && stat(mpth, &sb) == 0 && S_ISREG(sb.st_mode);
    if (all) total = (uint64_t)sb.st_size;
    if (mpth) snprintf(first, sizeof first, "%s", mpth);
    ok = 0;
  }
  for (int i = 0; i < n; i++) {
    char fp[PATH_MAX];
    struct stat sb;
    snprintf(fp, sizeof fp, "%s/%s", dir, files[i].file);
    if (i == 0) snprintf(first, sizeof first, "%s", fp);
    if (stat(fp, &sb) != 0 || !S_ISREG(sb.st_mode)) {
      all = ok = 0;
      continue;
    }
    total += (uint64_t)sb.st_size;
    /* verified: a stamp from an earlier check still matches the file */
    if (!files[i].hash ||
        (!cutout__stamp_ok(fp, &sb, files[i].hash) &&
         !(files[i].alt_hash && cutout__stamp_ok(fp, &sb, files[i].alt_hash))))
      ok = 0;
  }
  if (path && path_size) snprintf(path, path_size, "%s", first);
  if (bytes) *bytes = all ? total : 0;
  if (present) *present = all;
  if (verified) *verified = all && ok;
  return CUTOUT_OK;
}
