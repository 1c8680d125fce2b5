/*
 * cmd_s.c: `cutout s [OPTIONS]`, rembg's HTTP server: its flags (-p, -h
 * for the host, -l, -t, --no-ui), cutout's limits, start-up and the
 * graceful shutdown on SIGTERM / SIGINT (stop accepting, finish what is in
 * flight up to a deadline, exit 0).
 */
#include "../cli/cli.h"
#include "server.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int srv_log_level = 1;

void srv_log(int level, const char *fmt, ...)
{
  static const char *const names[] = {"DEBUG", "INFO", "WARNING", "ERROR",
                                      "CRITICAL"};
  if (level < srv_log_level) return;
  char line[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s: %s\n", names[level < 0 ? 0 : level > 4 ? 4 : level],
          line);
}

static void help(void)
{
  printf(
      "Usage: cutout s [OPTIONS]\n\n"
      "rembg's HTTP server: POST /api/remove (multipart \"file\"), GET\n"
      "/api/remove?url=, GET /api (OpenAPI), /healthz, /readyz, /metrics, and\n"
      "a web page at /.\n\n"
      "Server (rembg's flags):\n"
      "  -p, --port N                port (default 7000; 0 = any free port)\n"
      "  -h, --host HOST             address to listen on (default 0.0.0.0)\n"
      "  -l, --log_level LEVEL       debug|info|warning|error|critical\n"
      "                              (default info: one access line per\n"
      "                              request on stderr)\n"
      "  -t, --threads N             concurrent inference jobs (= --workers)\n"
      "      --no-ui                 no web page at /\n"
      "Limits:\n"
      "      --max-body BYTES        request body / fetched file (default\n"
      "                              52428800 = 50 MiB, as rembg); K/M/G ok\n"
      "      --max-pixels N          refuse larger images, from the header\n"
      "                              (default 100000000)\n"
      "      --queue N               jobs waiting for a worker; when full: 503\n"
      "                              (default 16)\n"
      "      --request-timeout S     queue wait + run (default 120)\n"
      "      --conn-timeout S        idle / slow connections are closed\n"
      "                              (default 15)\n"
      "      --max-connections N     (default 256)\n"
      "      --conn-memory BYTES     per connection, bounds the headers\n"
      "                              (default 65536)\n"
      "      --shutdown-timeout S    on SIGTERM, wait this long for requests\n"
      "                              in flight (default 30)\n"
      "URL fetch (GET /api/remove?url=):\n"
      "      --no-url-fetch          turn it off\n"
      "      --allow-host HOST       only these hosts (repeatable; *.example.com)\n"
      "      --allow-cidr CIDR       allow this otherwise blocked range\n"
      "                              (repeatable; e.g. 10.0.0.0/8)\n"
      "      --fetch-timeout S       whole fetch (default 30)\n"
      "      --allow-model-path      let clients name model files with extras\n"
      "                              {\"model_path\": ...} (rembg does; off)\n"
      "Models and threads: -m sets the default model (loaded at start;\n"
      "/readyz says when), -x its extras; --offline, --providers and every\n"
      "threading flag of `cutout i` apply.  Per-image options come with each\n"
      "request.\n\n%s"
      "      --help                  this help\n",
      cli_options_help);
}

static int parse_num(const char *v, double lo, double hi, double *out)
{
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  double mult = 1;
  if (end != v && *end && !end[1]) {
    switch (*end) {
    case 'k': case 'K': mult = 1024; end++; break;
    case 'm': case 'M': mult = 1024 * 1024; end++; break;
    case 'g': case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
    default: break;
    }
  }
  x *= mult;
  if (errno || end == v || *end || x < lo || x > hi) return -1;
  *out = x;
  return 0;
}

static int log_level_of(const char *v)
{
  static const char *const names[] = {"debug", "info", "warning", "error",
                                      "critical"};
  if (strcasecmp(v, "trace") == 0) return 0;
  for (int i = 0; i < 5; i++)
    if (strcasecmp(v, names[i]) == 0) return i;
  return -1;
}

static int push(const char ***arr, size_t *n, const char *v)
{
  const char **a = realloc(*arr, (*n + 1) * sizeof *a);
  if (!a) return -1;
  a[(*n)++] = v;
  *arr = a;
  return 0;
}

struct loader {
  struct srv *s;
  pthread_t t;
};

/* Load the default model, so that /readyz can say when it is there. */
static void *load_default(void *arg)
{
  struct srv *s = arg;
  cutout_model *m = NULL;
  double load_s = 0;
  char err[512];
  if (models_get(s->models, &s->cfg->base, &m, &load_s, err, sizeof err)) {
    snprintf(s->ready_detail, sizeof s->ready_detail,
             "the default model cannot be loaded: %s", err);
    srv_log(3, "%s", s->ready_detail);
    return NULL;
  }
  metrics_observe(s->metrics, SRV_SERIES_MODEL_LOAD, load_s);
  models_put(s->models, m);
  atomic_store((_Atomic int *)&s->ready, 1);
  return NULL;
}

static int parse_args(int argc, char **argv, struct srv_config *c, char *err,
                      size_t errlen)
{
  int have_workers = 0, have_workload = 0;
  const char *threads = NULL;
  for (int i = 1; i < argc;) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    double x;
#define IS(s, l) (strcmp(a, l) == 0 || (s[0] && strcmp(a, s) == 0))
#define NEED()                                                             \
  do {                                                                     \
    if (!v) {                                                              \
      snprintf(err, errlen, "option %s needs a value", a);                 \
      return -1;                                                           \
    }                                                                      \
    i += 2;                                                                \
  } while (0)
#define NUM(lo, hi)                                                        \
  do {                                                                     \
    NEED();                                                                \
    if (parse_num(v, lo, hi, &x)) {                                        \
      snprintf(err, errlen, "bad value '%s' for %s", v, a);                \
      return -1;                                                           \
    }                                                                      \
  } while (0)
    if (IS("-p", "--port")) {
      NUM(0, 65535);
      c->port = (int)x;
    } else if (IS("-h", "--host")) {
      NEED();
      c->host = v;
    } else if (IS("-l", "--log_level") || strcmp(a, "--log-level") == 0) {
      NEED();
      if ((c->log_level = log_level_of(v)) < 0) {
        snprintf(err, errlen, "bad log level '%s': debug, info, warning, "
                 "error or critical", v);
        return -1;
      }
    } else if (IS("-t", "--threads")) {
      NUM(1, 1024);
      threads = v;
    } else if (IS("", "--no-ui")) {
      c->no_ui = 1;
      i++;
    } else if (IS("", "--max-body")) {
      NUM(1, (double)SIZE_MAX / 4);
      c->max_body = (size_t)x;
    } else if (IS("", "--queue")) {
      NUM(1, 100000);
      c->queue_len = (int)x;
    } else if (IS("", "--request-timeout")) {
      NUM(0.001, 86400);
      c->request_timeout = x;
    } else if (IS("", "--conn-timeout")) {
      NUM(1, 86400);
      c->conn_timeout = (unsigned)x;
    } else if (IS("", "--max-connections")) {
      NUM(1, 100000);
      c->max_conns = (unsigned)x;
    } else if (IS("", "--conn-memory")) {
      NUM(8192, 64.0 * 1024 * 1024);
      c->conn_memory = (size_t)x;
    } else if (IS("", "--shutdown-timeout")) {
      NUM(0, 86400);
      c->shutdown_timeout = x;
    } else if (IS("", "--no-url-fetch")) {
      c->url_fetch = 0;
      i++;
    } else if (IS("", "--allow-host")) {
      NEED();
      if (push(&c->allow_hosts, &c->n_allow_hosts, v)) return -1;
    } else if (IS("", "--allow-cidr")) {
      NEED();
      if (push(&c->allow_cidrs, &c->n_allow_cidrs, v)) return -1;
    } else if (IS("", "--fetch-timeout")) {
      NUM(0.001, 86400);
      c->fetch.timeout_ms = (long)(x * 1000);
    } else if (IS("", "--allow-model-path")) {
      c->allow_model_path = 1;
      i++;
    } else {
      if (strncmp(a, "--workers", 9) == 0) have_workers = 1;
      if (strncmp(a, "--workload", 10) == 0) have_workload = 1;
      int r = cli_parse_option(argc, argv, &i, &c->base, err, errlen);
      if (r < 0) return -1;
      if (r == 0) {
        snprintf(err, errlen, "unknown option %s (see cutout s --help)", a);
        return -1;
      }
    }
#undef IS
#undef NEED
#undef NUM
  }
  if (!have_workload &&
      cutout_engine_param_set(&c->base.engine, "workload", "server", err,
                              errlen))
    return -1;
  if (threads && !have_workers &&
      cutout_engine_param_set(&c->base.engine, "workers", threads, err,
                              errlen))
    return -1;
  return cli_apply_extras(&c->base, err, errlen);
}

int cmd_s(int argc, char **argv)
{
  struct srv_config cfg;
  struct srv s;
  char err[1024] = "";
  int rc = 1;
  pthread_t loader;
  int loader_started = 0;

  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--help") == 0) {
      help();
      return 0;
    }
  memset(&cfg, 0, sizeof cfg);
  memset(&s, 0, sizeof s);
  cfg.host = "0.0.0.0";
  cfg.port = 7000;
  cfg.log_level = 1;
  cfg.max_body = 50u * 1024 * 1024;
  cfg.queue_len = 16;
  cfg.request_timeout = 120;
  cfg.conn_timeout = 15;
  cfg.max_conns = 256;
  cfg.conn_memory = 64 * 1024;
  cfg.shutdown_timeout = 30;
  cfg.url_fetch = 1;
  cfg.fetch_threads = 4;
  url_fetch_default_opts(&cfg.fetch);
  cli_opts_init(&cfg.base);
  if (parse_args(argc, argv, &cfg, err, sizeof err)) {
    cli_error("%s", err);
    rc = 2;
    goto done;
  }
  srv_log_level = cfg.log_level;
  cfg.fetch.max_bytes = cfg.max_body;
  cfg.fetch.allow_hosts = cfg.allow_hosts;
  cfg.fetch.n_allow_hosts = cfg.n_allow_hosts;
  cfg.fetch.allow_cidrs = cfg.allow_cidrs;
  cfg.fetch.n_allow_cidrs = cfg.n_allow_cidrs;
  if (url_fetch_opts_check(&cfg.fetch, err, sizeof err)) {
    cli_error("--allow-cidr: %s", err);
    rc = 2;
    goto done;
  }

  /* Every thread inherits this mask: the signals come to sigwait below. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  s.cfg = &cfg;
  if (cutout_engine_new(&cfg.base.engine, &s.engine, err, sizeof err)) {
    cli_error("%s", err);
    goto done;
  }
  s.metrics = metrics_new();
  s.models = models_new(s.engine, 8);
  if (!s.metrics || !s.models) {
    cli_error("out of memory");
    goto done;
  }
  if (!(s.pool = pool_new(s.engine, s.models, s.metrics, &cfg, err,
                          sizeof err))) {
    cli_error("%s", err);
    goto done;
  }
  if (http_start(&s, err, sizeof err)) {
    cli_error("%s", err);
    goto done;
  }
  loader_started = !pthread_create(&loader, NULL, load_default, &s);
  cutout_engine_params ef = cutout_engine_effective(s.engine);
  int port = http_port(&s);
  const char *shown = strcmp(cfg.host, "0.0.0.0") == 0 ? "localhost"
                                                        : cfg.host;
  srv_log(1, "cutout %s listening on http://%s:%d (model %s, %d workers x "
          "%d intra-op threads, queue %d)", cutout_version(), cfg.host, port,
          cfg.base.model, ef.workers, ef.intra_threads, cfg.queue_len);
  srv_log(1, "To access the API documentation, go to http://%s:%d/api",
          shown, port);
  if (!cfg.no_ui)
    srv_log(1, "To access the UI, go to http://%s:%d", shown, port);

  int sig = 0;
  while (sigwait(&sigs, &sig) != 0) {}
  srv_log(1, "signal %d: shutting down (waiting up to %.0f s for %d "
          "request%s in flight)", sig, cfg.shutdown_timeout,
          pool_in_flight(s.pool), pool_in_flight(s.pool) == 1 ? "" : "s");
  s.closing = 1;
  http_quiesce(&s);
  pool_close(s.pool, 0);
  double deadline = srv_now() + cfg.shutdown_timeout;
  struct timespec tick = {0, 20 * 1000000L};
  while (http_open_requests() > 0 && srv_now() < deadline)
    nanosleep(&tick, NULL);
  if (pool_in_flight(s.pool) > 0) {
    srv_log(2, "shutdown deadline: cancelling %d request(s)",
            pool_in_flight(s.pool));
    pool_close(s.pool, 1);
  }
  /* MHD must not be stopped with a connection suspended */
  while (pool_in_flight(s.pool) > 0) nanosleep(&tick, NULL);
  for (int k = 0; k < 50 && http_open_requests() > 0; k++)
    nanosleep(&tick, NULL); /* let the last answers go out */
  rc = 0;
done:
  if (s.daemon) http_stop(&s);
  if (loader_started) pthread_join(loader, NULL);
  pool_free(s.pool);
  models_free(s.models);
  metrics_free(s.metrics);
  cutout_engine_free(s.engine);
  free(cfg.allow_hosts);
  free(cfg.allow_cidrs);
  cli_opts_free(&cfg.base);
  if (rc == 0) srv_log(1, "stopped");
  return rc;
}
