/*
 * http.c: the libmicrohttpd side of `cutout s`: routing, the multipart
 * upload, the cheap checks made before a job is queued, CORS, the JSON
 * errors and the access log.
 *
 * Everything here runs on MHD's one event thread, so it must never block:
 * the heavy work goes to the pool (jobs.c) and the connection is suspended
 * until the job is done.
 */
#include "server.h"
#include "web_assets.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FIELDS 24
#define MAX_FIELD_BYTES (64 * 1024)

enum route { R_OTHER = 0, R_REMOVE_POST, R_REMOVE_GET };

struct field {
  char *key, *val;
  size_t len;
};

struct req {
  struct srv *s;
  enum route route;
  struct MHD_PostProcessor *pp;
  unsigned char *file; /* the upload's `file` part */
  size_t len, cap;
  int have_file;
  size_t raw;          /* body bytes seen, file or not */
  struct field f[MAX_FIELDS];
  int nf;
  unsigned err;        /* an error found during the upload */
  char detail[512];
  struct job *job;
  double t0;
  unsigned status;     /* what was answered, for the log */
  size_t bytes;
  char method[12], path[160];
};

static _Atomic int open_requests; /* first call .. completed callback */

static void req_free(struct req *r)
{
  if (!r) return;
  if (r->pp) MHD_destroy_post_processor(r->pp);
  free(r->file);
  for (int i = 0; i < r->nf; i++) {
    free(r->f[i].key);
    free(r->f[i].val);
  }
  job_free(r->job);
  free(r);
}

/* ---- responses ---------------------------------------------------------- */

static enum MHD_Result send_buf(struct MHD_Connection *c, struct req *r,
                                unsigned status, const char *ctype, void *buf,
                                size_t len, void (*free_fn)(void *))
{
  struct MHD_Response *resp =
      free_fn ? MHD_create_response_from_buffer_with_free_callback(len, buf,
                                                                   free_fn)
              : MHD_create_response_from_buffer(len, buf,
                                                MHD_RESPMEM_PERSISTENT);
  if (!resp) {
    if (free_fn) free_fn(buf);
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  /* CORS as rembg: any origin, no credentials */
  MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
  if (status == 503) MHD_add_response_header(resp, "Retry-After", "1");
  if (r->s->closing) MHD_add_response_header(resp, "Connection", "close");
  enum MHD_Result ok = MHD_queue_response(c, status, resp);
  MHD_destroy_response(resp);
  r->status = status;
  r->bytes = len;
  metrics_request(r->s->metrics, status);
  return ok;
}

/* {"detail": "..."}, as FastAPI answers errors. */
static enum MHD_Result send_error(struct MHD_Connection *c, struct req *r,
                                  unsigned status, const char *detail)
{
  cJSON *o = cJSON_CreateObject();
  char *s = NULL;
  if (o && cJSON_AddStringToObject(o, "detail", detail))
    s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!s) return MHD_NO;
  return send_buf(c, r, status, "application/json", s, strlen(s), free);
}

static enum MHD_Result send_text(struct MHD_Connection *c, struct req *r,
                                 unsigned status, const char *ctype,
                                 const char *text)
{
  return send_buf(c, r, status, ctype, (void *)text, strlen(text), NULL);
}

static enum MHD_Result preflight(struct MHD_Connection *c, struct req *r)
{
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(2, (void *)"OK", MHD_RESPMEM_PERSISTENT);
  if (!resp) return MHD_NO;
  /* Starlette's CORSMiddleware with allow_methods/headers ["*"]: the
   * requested headers are echoed */
  const char *hdrs = MHD_lookup_connection_value(
      c, MHD_HEADER_KIND, "Access-Control-Request-Headers");
  MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
  MHD_add_response_header(resp, "Access-Control-Allow-Methods",
                          "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT");
  if (hdrs) MHD_add_response_header(resp, "Access-Control-Allow-Headers", hdrs);
  MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
  enum MHD_Result ok = MHD_queue_response(c, 200, resp);
  MHD_destroy_response(resp);
  r->status = 200;
  r->bytes = 2;
  metrics_request(r->s->metrics, 200);
  return ok;
}

/* ---- the upload --------------------------------------------------------- */

static int grow(unsigned char **p, size_t *cap, size_t need)
{
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 64 * 1024;
  while (c < need) c *= 2;
  unsigned char *q = realloc(*p, c);
  if (!q) return -1;
  *p = q;
  *cap = c;
  return 0;
}

static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind,
                               const char *key, const char *filename,
                               const char *ctype, const char *enc,
                               const char *data, uint64_t off, size_t size)
{
  struct req *r = cls;
  (void)kind, (void)ctype, (void)enc, (void)off;
  if (r->err) return MHD_YES; /* keep reading; the answer is decided */
  if (strcmp(key, "file") == 0) {
    (void)filename;
    r->have_file = 1;
    if (r->len + size > r->s->cfg->max_body) {
      r->err = 413;
      snprintf(r->detail, sizeof r->detail, "the file is larger than the "
               "limit of %zu bytes", r->s->cfg->max_body);
      return MHD_YES;
    }
    if (grow(&r->file, &r->cap, r->len + size)) {
      r->err = 503;
      snprintf(r->detail, sizeof r->detail, "out of memory");
      return MHD_YES;
    }
    memcpy(r->file + r->len, data, size);
    r->len += size;
    return MHD_YES;
  }
  int i;
  for (i = 0; i < r->nf && strcmp(r->f[i].key, key) != 0; i++) {}
  if (i == r->nf) {
    if (r->nf == MAX_FIELDS) {
      r->err = 422;
      snprintf(r->detail, sizeof r->detail, "too many form fields");
      return MHD_YES;
    }
    if (!(r->f[i].key = strdup(key))) goto oom;
    r->f[i].val = NULL;
    r->f[i].len = 0;
    r->nf++;
  }
  struct field *f = &r->f[i];
  if (f->len + size > MAX_FIELD_BYTES) {
    r->err = 413;
    snprintf(r->detail, sizeof r->detail, "form field %s is too long", key);
    return MHD_YES;
  }
  char *v = realloc(f->val, f->len + size + 1);
  if (!v) goto oom;
  memcpy(v + f->len, data, size);
  f->len += size;
  v[f->len] = 0;
  f->val = v;
  return MHD_YES;
oom:
  r->err = 503;
  snprintf(r->detail, sizeof r->detail, "out of memory");
  return MHD_YES;
}

struct lookup {
  struct req *r;
  struct MHD_Connection *c;
};

/* A form field wins over the query argument of the same name. */
static const char *get_param(void *cls, const char *name)
{
  struct lookup *l = cls;
  for (int i = 0; i < l->r->nf; i++)
    if (strcmp(l->r->f[i].key, name) == 0)
      return l->r->f[i].val ? l->r->f[i].val : "";
  return MHD_lookup_connection_value(l->c, MHD_GET_ARGUMENT_KIND, name);
}

/* ---- the remove endpoints ----------------------------------------------- */

static int client_fd(struct MHD_Connection *c)
{
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
  return ci ? ci->connect_fd : -1;
}

/* The request is complete: check it, then queue the job. */
static enum MHD_Result start_remove(struct MHD_Connection *c, struct req *r)
{
  struct srv *s = r->s;
  char detail[600];
  if (r->err) return send_error(c, r, r->err, r->detail);
  if (s->closing) return send_error(c, r, 503, "the server is shutting down");
  const char *url = NULL;
  if (r->route == R_REMOVE_GET) {
    url = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "url");
    if (!url || !*url)
      return send_error(c, r, 422, "url: field required");
    if (!s->cfg->url_fetch)
      return send_error(c, r, 400, "fetching URLs is disabled on this "
                                   "server (--no-url-fetch): POST the file");
  } else {
    if (!r->have_file)
      return send_error(c, r, 422, "file: field required (multipart/"
                                   "form-data part named \"file\")");
    if (!r->len) return send_error(c, r, 400, "file: the file is empty");
    /* pixel count from the header, before any decoding */
    cutout_format fmt;
    uint32_t w = 0, h = 0;
    if (cutout_probe(r->file, r->len, &fmt, &w, &h)) {
      if (cutout_detect_format(r->file, r->len) == CUTOUT_FORMAT_UNKNOWN)
        return send_error(c, r, 415, "file: not an image (PNG, JPEG, WebP "
                                     "or BMP expected)");
      return send_error(c, r, 400, "file: the image header cannot be read");
    }
    if ((uint64_t)w * h > s->cfg->base.max_pixels) {
      snprintf(detail, sizeof detail, "file: %ux%u is %llu pixels, over the "
               "limit of %llu", w, h, (unsigned long long)w * h,
               (unsigned long long)s->cfg->base.max_pixels);
      return send_error(c, r, 413, detail);
    }
  }
  struct job *j = calloc(1, sizeof *j);
  if (!j) return send_error(c, r, 503, "out of memory");
  cli_opts_init(&j->opts);
  r->job = j;
  struct lookup l = {r, c};
  unsigned st = params_parse(s->cfg, get_param, &l, j, detail,
                             sizeof detail);
  if (st) return send_error(c, r, st, detail);
  if (url && !(j->url = strdup(url)))
    return send_error(c, r, 503, "out of memory");
  j->in = r->file; /* the job owns the upload now */
  j->in_len = r->len;
  r->file = NULL;
  r->len = r->cap = 0;
  j->conn = c;
  j->fd = client_fd(c);
  j->t_start = r->t0;
  j->deadline = r->t0 + s->cfg->request_timeout;
  /* suspend before the job can finish (and resume) on another thread */
  MHD_suspend_connection(c);
  if (pool_submit(s->pool, j)) {
    j->status = 503;
    snprintf(j->detail, sizeof j->detail, s->closing
             ? "the server is shutting down"
             : "the queue is full; retry later");
    j->state = JOB_DONE;
    MHD_resume_connection(c);
  }
  return MHD_YES;
}

static enum MHD_Result finish_remove(struct MHD_Connection *c, struct req *r)
{
  struct job *j = r->job;
  metrics_observe(r->s->metrics, SRV_SERIES_REQUEST, srv_now() - r->t0);
  if (j->status == 200) {
    void *out = j->out;
    j->out = NULL;
    return send_buf(c, r, 200, j->ctype, out, j->out_len, cutout_free);
  }
  return send_error(c, r, j->status ? j->status : 503,
                    j->detail[0] ? j->detail : "the request was dropped");
}

/* ---- the small endpoints ------------------------------------------------ */

static enum MHD_Result small_endpoint(struct MHD_Connection *c, struct req *r,
                                      const char *url)
{
  struct srv *s = r->s;
  if (strcmp(url, "/") == 0 && !s->cfg->no_ui)
    return send_buf(c, r, 200, "text/html; charset=utf-8",
                    (void *)cutout_web_index_html, cutout_web_index_html_len,
                    NULL);
  if (strcmp(url, "/api") == 0 || strcmp(url, "/openapi.json") == 0) {
    size_t len = 0;
    char *doc = openapi_json(s->cfg, &len);
    if (!doc) return send_error(c, r, 503, "out of memory");
    return send_buf(c, r, 200, "application/json", doc, len, free);
  }
  if (strcmp(url, "/healthz") == 0)
    return send_text(c, r, 200, "text/plain", "ok\n");
  if (strcmp(url, "/readyz") == 0) {
    if (atomic_load((_Atomic int *)&s->ready) && !s->closing)
      return send_text(c, r, 200, "application/json",
                       "{\"status\":\"ready\"}");
    return send_error(c, r, 503, s->closing ? "shutting down"
                                 : s->ready_detail[0] ? s->ready_detail
                                                      : "loading the model");
  }
  if (strcmp(url, "/metrics") == 0) {
    struct srv_gauges g;
    memset(&g, 0, sizeof g);
    pool_gauges(s->pool, &g);
    g.ort_threads = cutout_engine_thread_count(s->engine);
    g.models_loaded = models_count(s->models);
    g.ready = atomic_load((_Atomic int *)&s->ready);
    size_t len = 0;
    char *text = metrics_render(s->metrics, &g, &len);
    if (!text) return send_error(c, r, 503, "out of memory");
    return send_buf(c, r, 200, "text/plain; version=0.0.4", text, len, free);
  }
  return send_error(c, r, 404, "Not Found");
}

static int is_get_path(const char *url, int no_ui)
{
  return (strcmp(url, "/") == 0 && !no_ui) || strcmp(url, "/api") == 0 ||
         strcmp(url, "/openapi.json") == 0 || strcmp(url, "/healthz") == 0 ||
         strcmp(url, "/readyz") == 0 || strcmp(url, "/metrics") == 0;
}

/* ---- the MHD callbacks -------------------------------------------------- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
  struct srv *s = cls;
  struct req *r = *req_cls;
  (void)version;
  if (!r) { /* the headers are in */
    if (!(r = calloc(1, sizeof *r))) return MHD_NO;
    r->s = s;
    r->t0 = srv_now();
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->path, sizeof r->path, "%s", url);
    *req_cls = r;
    atomic_fetch_add(&open_requests, 1);
    int post = strcmp(method, "POST") == 0;
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (strcmp(method, "OPTIONS") == 0) return preflight(c, r);
    if (strcmp(url, "/api/remove") == 0) {
      if (!post && !get) return send_error(c, r, 405, "Method Not Allowed");
      r->route = post ? R_REMOVE_POST : R_REMOVE_GET;
    } else if (!get && is_get_path(url, s->cfg->no_ui)) {
      return send_error(c, r, 405, "Method Not Allowed");
    } else if (!get) {
      return send_error(c, r, 404, "Not Found");
    }
    if (r->route == R_REMOVE_POST) {
      const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                   "Content-Length");
      /* refuse an announced oversize body before reading a byte of it */
      if (cl && strtoull(cl, NULL, 10) > s->cfg->max_body + 64 * 1024) {
        char d[200];
        snprintf(d, sizeof d, "the request body is larger than the limit "
                 "of %zu bytes", s->cfg->max_body);
        return send_error(c, r, 413, d);
      }
      const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                   "Content-Type");
      if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0)
        return send_error(c, r, 415, "POST /api/remove takes "
                          "multipart/form-data with the image in \"file\"");
      r->pp = MHD_create_post_processor(c, 64 * 1024, on_part, r);
      if (!r->pp)
        return send_error(c, r, 400, "malformed multipart/form-data "
                                     "(no boundary?)");
      unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
      if (n && grow(&r->file, &r->cap, (size_t)n))
        return send_error(c, r, 503, "out of memory");
    }
    return MHD_YES;
  }
  if (*upload_size) { /* a piece of the body */
    size_t n = *upload_size;
    r->raw += n;
    *upload_size = 0;
    if (r->route != R_REMOVE_POST || r->err) {
      /* discard; past twice the limit the sender is not listening: drop */
      return r->raw > 2 * s->cfg->max_body + (1 << 20) ? MHD_NO : MHD_YES;
    }
    if (r->raw > s->cfg->max_body + 64 * 1024) {
      r->err = 413;
      snprintf(r->detail, sizeof r->detail, "the request body is larger "
               "than the limit of %zu bytes", s->cfg->max_body);
      return MHD_YES;
    }
    if (MHD_post_process(r->pp, upload, n) != MHD_YES && !r->err) {
      r->err = 400;
      snprintf(r->detail, sizeof r->detail, "malformed multipart/form-data");
    }
    return MHD_YES;
  }
  /* the request is complete (or resumed after its job) */
  if (r->job && r->job->state == JOB_DONE) return finish_remove(c, r);
  if (r->job) return MHD_YES; /* spurious: still running */
  if (r->route == R_OTHER) return small_endpoint(c, r, url);
  return start_remove(c, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
  struct srv *s = cls;
  struct req *r = *req_cls;
  if (!r) return;
  if (srv_log_level <= 1) {
    char host[INET6_ADDRSTRLEN] = "-";
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr)
      getnameinfo(ci->client_addr, ci->client_addr->sa_family == AF_INET6
                  ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
                  host, sizeof host, NULL, 0, NI_NUMERICHOST);
    /* status 0: no answer was sent (the client left, or the connection
     * was dropped) */
    srv_log(1, "%s \"%s %s\" %u %zu %.3fs%s", host, r->method, r->path,
            r->status, r->bytes, srv_now() - r->t0,
            toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
  }
  (void)s;
  req_free(r);
  *req_cls = NULL;
  atomic_fetch_sub(&open_requests, 1);
}

int http_open_requests(void) { return atomic_load(&open_requests); }

int http_start(struct srv *s, char *err, size_t errlen)
{
  struct addrinfo hints, *ai = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  char port[16];
  snprintf(port, sizeof port, "%d", s->cfg->port);
  int rc = getaddrinfo(s->cfg->host, port, &hints, &ai);
  if (rc) {
    snprintf(err, errlen, "host %s: %s", s->cfg->host, gai_strerror(rc));
    return -1;
  }
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                   MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC;
  if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
  s->daemon = MHD_start_daemon(
      flags, (uint16_t)s->cfg->port, NULL, NULL, on_request, s,
      MHD_OPTION_SOCK_ADDR, ai->ai_addr,
      MHD_OPTION_CONNECTION_LIMIT, s->cfg->max_conns,
      MHD_OPTION_CONNECTION_TIMEOUT, s->cfg->conn_timeout,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, s->cfg->conn_memory,
      MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
      MHD_OPTION_END);
  freeaddrinfo(ai);
  if (!s->daemon) {
    snprintf(err, errlen, "cannot listen on %s:%d (in use, or not an "
             "address of this host?)", s->cfg->host, s->cfg->port);
    return -1;
  }
  return 0;
}

int http_port(struct srv *s)
{
  const union MHD_DaemonInfo *di =
      MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
  return di ? di->port : s->cfg->port;
}

void http_quiesce(struct srv *s)
{
  MHD_socket fd = MHD_quiesce_daemon(s->daemon);
  if (fd != MHD_INVALID_SOCKET) close(fd);
}

void http_stop(struct srv *s)
{
  if (s->daemon) MHD_stop_daemon(s->daemon);
  s->daemon = NULL;
}
