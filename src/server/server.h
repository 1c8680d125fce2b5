/*
 * server.h: the parts of `cutout s` (rembg's HTTP server) and how they
 * meet.  Private to src/server/.
 *
 * DESIGN
 *   One libmicrohttpd event thread parses requests, checks what is cheap
 *   (body size, content type, parameters, the image header's pixel count)
 *   and answers at once when it can.  An image to cut out becomes a job on
 *   a bounded queue (full: 503 at once) and the connection is suspended.
 *   A fixed set of workers, each with its own cutout_ctx, run the jobs on
 *   models shared through a small cache, then resume the connection, whose
 *   handler sends the result.  A reaper thread watches the sockets of
 *   queued and running jobs: a client that has gone is dropped from the
 *   queue, or its run is cancelled (cutout_ctx_cancel); the same for a
 *   job past its deadline.  GET ?url= fetches run on their own small set
 *   of threads (a slow remote never holds an inference worker).
 */
#ifndef CUTOUT_SERVER_H
#define CUTOUT_SERVER_H

#include "../cli/options.h"
#include "cutout.h"
#include "url_fetch.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct MHD_Connection;

/* ---- configuration (cmd_s.c) ---- */
struct srv_config {
  const char *host; /* -h, default 0.0.0.0 */
  int port;         /* -p, default 7000; 0 = any free port */
  int log_level;    /* 0 debug, 1 info, 2 warning, 3 error, 4 critical */
  int no_ui;
  size_t max_body;          /* --max-body bytes (50 MiB) */
  int queue_len;            /* --queue */
  double request_timeout;   /* --request-timeout s: queue wait + run */
  unsigned conn_timeout;    /* --conn-timeout s: idle / read (slowloris) */
  unsigned max_conns;       /* --max-connections */
  size_t conn_memory;       /* --conn-memory: per connection, bounds headers */
  double shutdown_timeout;  /* --shutdown-timeout s */
  int url_fetch;            /* 0 with --no-url-fetch */
  int fetch_threads;        /* concurrent url fetches */
  int allow_model_path;     /* --allow-model-path: clients may name files */
  url_fetch_opts fetch;
  const char **allow_hosts, **allow_cidrs; /* owned arrays */
  size_t n_allow_hosts, n_allow_cidrs;
  struct cli_opts base;     /* -m default model, threading flags, ... */
};

/* ---- metrics (metrics.c) ---- */
enum srv_cancel {
  SRV_CANCEL_NONE = 0,
  SRV_CANCEL_GONE_QUEUED,  /* client left while queued: dropped */
  SRV_CANCEL_GONE_RUNNING, /* client left while running: cancelled */
  SRV_CANCEL_TIMEOUT,      /* past the request deadline */
  SRV_CANCEL_SHUTDOWN,     /* shutdown deadline passed */
  SRV_CANCEL_COUNT
};
/* Extra timing series besides the library's stages. */
enum { SRV_SERIES_QUEUE = CUTOUT_STAGE_COUNT, SRV_SERIES_FETCH,
       SRV_SERIES_MODEL_LOAD, SRV_SERIES_REQUEST, SRV_SERIES_COUNT };

struct srv_metrics;
struct srv_metrics *metrics_new(void);
void metrics_free(struct srv_metrics *m);
void metrics_request(struct srv_metrics *m, unsigned status);
void metrics_observe(struct srv_metrics *m, int series, double seconds);
void metrics_cancel(struct srv_metrics *m, enum srv_cancel why);
void metrics_rejected(struct srv_metrics *m); /* 503 queue full */
void metrics_busy(struct srv_metrics *m, double seconds);
/* Gauges the caller reads at render time. */
struct srv_gauges {
  int queue_depth, queue_cap, in_flight, busy_workers, workers;
  int fetches, ort_threads, models_loaded, ready;
};
/* Prometheus text format.  (transfer full: free) */
char *metrics_render(struct srv_metrics *m, const struct srv_gauges *g,
                     size_t *len);

/* ---- model cache (models.c) ---- */
struct srv_models;
struct srv_models *models_new(cutout_engine *e, int cap);
void models_free(struct srv_models *c);
/* The model the options name (o->model plus the session extras:
 * model_path, sam_model, sam_quant, providers), loaded once and shared;
 * downloaded first unless o->offline.  Release with models_put.
 * -1 with the reason in err. */
int models_get(struct srv_models *c, const struct cli_opts *o,
               cutout_model **out, double *load_s, char *err, size_t errlen);
void models_put(struct srv_models *c, cutout_model *m);
int models_count(struct srv_models *c);

/* ---- jobs: queue, workers, reaper (jobs.c) ---- */
enum job_state { JOB_NEW = 0, JOB_FETCHING, JOB_QUEUED, JOB_RUNNING,
                 JOB_DONE };

struct job {
  struct MHD_Connection *conn;
  int fd;                  /* the client socket, watched for hang-ups */
  struct cli_opts opts;    /* the request's options (owned) */
  char *extras;            /* opts.extras points here */
  cutout_encode_params ep;
  unsigned char *in;       /* the encoded image (owned) */
  size_t in_len;
  char *url;               /* GET ?url= (owned) */
  double t_start, deadline;
  /* under the pool lock */
  enum job_state state;
  enum srv_cancel cancel;
  cutout_ctx *ctx;         /* while running */
  struct job *prev, *next; /* the active list */
  /* the result */
  unsigned status;
  const char *ctype;
  void *out;               /* cutout_free, or free when out_malloc */
  int out_malloc;
  size_t out_len;
  char detail[512];
};

struct srv_pool;
struct srv_pool *pool_new(cutout_engine *e, struct srv_models *models,
                          struct srv_metrics *metrics,
                          const struct srv_config *cfg, char *err,
                          size_t errlen);
/* Stops and joins every thread: call once nothing is in flight. */
void pool_free(struct srv_pool *p);
/* Take a job whose connection is (or is about to be) suspended.  A job
 * with a url is fetched first.  0 taken (the connection is resumed when
 * the job is done), -1 refused: queue or fetch slots full (503), or
 * shutting down; the job is left untouched. */
int pool_submit(struct srv_pool *p, struct job *j);
/* No more submissions; cancel (SRV_CANCEL_SHUTDOWN) what is still in
 * flight when cancel_all. */
void pool_close(struct srv_pool *p, int cancel_all);
void pool_gauges(struct srv_pool *p, struct srv_gauges *g);
int pool_in_flight(struct srv_pool *p);
void job_free(struct job *j);

/* ---- the HTTP side (http.c) ---- */
struct srv {
  struct srv_config *cfg;
  cutout_engine *engine;
  struct srv_models *models;
  struct srv_metrics *metrics;
  struct srv_pool *pool;
  struct MHD_Daemon *daemon;
  int ready;              /* the default model is loaded (atomic) */
  char ready_detail[512]; /* why not, when loading failed */
  int closing;            /* shutting down: new requests get 503 */
};
int http_start(struct srv *s, char *err, size_t errlen);
/* Stop accepting (close the listening socket); connections stay. */
void http_quiesce(struct srv *s);
void http_stop(struct srv *s);
/* The port actually bound (for -p 0). */
int http_port(struct srv *s);
/* Requests begun and not yet completed (answer sent or dropped). */
int http_open_requests(void);

/* ---- request parameters (params.c) ---- */
/* A lookup of a request parameter by name: form field or query argument,
 * NULL when absent. */
typedef const char *(*param_fn)(void *cls, const char *name);
/* Fill o (already cli_opts_init'ed, from base) and ep from rembg's
 * parameters.  0, or the HTTP status (422) with detail. */
unsigned params_parse(const struct srv_config *cfg, param_fn get, void *cls,
                      struct job *j, char *detail, size_t n);

/* ---- the OpenAPI document (openapi.c) ---- */
/* (transfer full: free) */
char *openapi_json(const struct srv_config *cfg, size_t *len);

/* ---- logging (cmd_s.c) ---- */
void srv_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
extern int srv_log_level;
double srv_now(void);

#endif
