/* ai-gateway: loads the configuration, starts the workers and the front
 * doors, and shuts down gracefully on SIGTERM/SIGINT. */
#include <event2/thread.h>
#include <grpc/grpc.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config/config.h"
#include "config/reload.h"
#include "core/alloc.h"
#include "core/log.h"
#include "engine/curl_loop.h"
#include "engine/http_client.h"
#include "engine/supervisor.h"
#include "engine/worker.h"
#include "grpc/absl_tune.h"
#include "grpc/front.h"
#include "pipeline/pipeline.h"
#include "pipeline/route.h"
#include "proto/descriptors.h"
#include "transcoder/front.h"
#include "transcoder/grpc.h"
#include "transcoder/http/server.h"
#include "transcoder/routes.h"

#ifndef GW_VERSION
#define GW_VERSION "0.1.0"
#endif

/* Runs |fn(arg)| on |w|'s loop thread and waits until it has run. */
typedef struct on_worker {
  gw_tag tag;
  void (*fn)(gw_http_front *);
  gw_http_front *front;
  _Atomic int done;
} on_worker;

static void on_worker_cb(gw_tag *tag, bool ok) {
  on_worker *o = GW_CONTAINER_OF(tag, on_worker, tag);
  (void)ok;
  o->fn(o->front);
  o->done = 1;
}

static void run_on_workers(gw_http_front *fronts, int n, void (*fn)(gw_http_front *)) {
  on_worker *ops = gw_calloc((size_t)n, sizeof(*ops));
  if (!ops)
    return;
  for (int i = 0; i < n; i++) {
    ops[i].fn = fn;
    ops[i].front = &fronts[i];
    ops[i].tag.cb = on_worker_cb;
    gw_worker_run(fronts[i].worker, &ops[i].tag);
  }
  for (int i = 0; i < n; i++)
    while (!ops[i].done)
      usleep(1000);
  gw_free(ops);
}

static void http_stop_accepting(gw_http_front *f) {
  if (f->server)
    gw_http_server_stop_accepting(f->server);
  gw_grpc_h2_stop(f); /* health watches end, checks say NOT_SERVING */
}

static void http_free(gw_http_front *f) {
  gw_http_server_free(f->server); /* cancels the calls still open */
  f->server = NULL;
}

static void http_reload_tls(gw_http_front *f) {
  if (f->server && gw_http_server_reload_tls(f->server, NULL, NULL) != GW_OK)
    GW_LOGE("main", NULL, "TLS reload failed on worker %d: keeping the old certificate",
            f->worker->id);
}

static long http_in_flight(gw_http_front *fronts, int n) {
  long total = 0;
  for (int i = 0; i < n; i++)
    total += fronts[i].in_flight;
  return total;
}

/* Reloads the routes (backends, models, routing) from the environment and
 * CONFIG_FILE; an invalid file is logged and the running config kept.
 * Listener settings (ports, TLS, workers) need a restart. */
static void reload_routes(gw_router *router, const char *why) {
  gw_config *nc = NULL;
  gw_buf e;
  gw_buf_init(&e, 4096);
  if (gw_config_reload(&nc, &e) != GW_OK) {
    GW_LOGE("main", NULL, "%s: config reload rejected, keeping the running config: %s", why,
            e.data ? e.data : "out of memory");
  } else {
    size_t nb = nc->n_backends, nm = nc->n_models;
    if (gw_router_reload(router, nc, &e) != GW_OK) /* takes |nc| */
      GW_LOGE("main", NULL, "%s: config reload failed, keeping the running config: %s", why,
              e.data ? e.data : "out of memory");
    else
      GW_LOGI("main", NULL, "%s: config reloaded: %zu backends, %zu models", why, nb, nm);
  }
  gw_buf_release(&e);
}

/* Every client connection, upstream connection and stream needs a file
 * descriptor: raise the soft limit to the hard one (10,000 open SSE streams
 * take 20,000 descriptors). */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static void usage(FILE *out) {
  fprintf(out, "usage: ai-gateway [--check-config] [--version] [--help]\n"
               "Configuration comes from the environment (and .env), see .env.example,\n"
               "and from CONFIG_FILE (JSON or YAML), see docs/config.md.\n");
}

int main(int argc, char **argv) {
  bool check_only = false;
  /* Request and response bodies of 100 KB and more were mmap'd and unmapped
   * per request (glibc's threshold starts at 128 KiB), and the free top of
   * a worker's heap went back to the kernel at 128 KiB: page faults and
   * madvise on every large request. Keep them in the heaps instead. */
  mallopt(M_MMAP_THRESHOLD, 8 << 20);
  mallopt(M_TRIM_THRESHOLD, 32 << 20);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--version") == 0) {
      printf("ai-gateway %s\n", GW_VERSION);
      return 0;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(argv[i], "--check-config") == 0) {
      check_only = true;
    } else {
      fprintf(stderr, "ai-gateway: unknown argument %s\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }

  gw_config cfg;
  gw_buf err;
  gw_buf_init(&err, 4096);
  if (gw_config_load(&cfg, NULL, NULL, NULL, &err) != GW_OK) {
    fprintf(stderr, "ai-gateway: configuration error: %s\n", err.data ? err.data : "out of memory");
    gw_buf_release(&err);
    return 2;
  }
  gw_log_setup(cfg.log_level, cfg.log_format);
  if (check_only) {
    printf("configuration OK: %zu backends, %zu models\n", cfg.n_backends, cfg.n_models);
    gw_config_release(&cfg);
    gw_buf_release(&err);
    return 0;
  }

  /* Signals are taken synchronously by the main thread (sigwait); every
   * thread started from here on inherits the mask. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  sigaddset(&sigs, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  raise_fd_limit();
  evthread_use_pthreads();
  gw_absl_tune();
  grpc_init();
  int rc = 1;

  gw_descriptors *desc = NULL;
  gw_router *router = NULL;
  gw_pipeline pipeline;
  gw_pipeline_init(&pipeline);
  gw_worker *workers = NULL;
  int n_workers = cfg.workers > 0 ? cfg.workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (n_workers < 1)
    n_workers = 1;
  gw_grpc_front *front = NULL;
  gw_routes *routes = NULL;
  gw_http_front *fronts = NULL; /* the HTTP port's, then the gRPC port's (native) */
  int n_fronts = 0;
  bool http_started = false;
  char *cors_buf = NULL;
  gw_supervisor *sup = NULL;

  if (gw_descriptors_load(gw_descriptor_set, gw_descriptor_set_len, &desc) != GW_OK) {
    GW_LOGE("main", NULL, "cannot load the embedded descriptor set");
    goto out;
  }
  gw_buf_reset(&err);
  if (gw_router_new(&cfg, &err, &router) != GW_OK) {
    GW_LOGE("main", NULL, "cannot set up backends: %s", err.data ? err.data : "out of memory");
    goto out;
  }
  pipeline.router = router;
  if (gw_router_start_catalogs(router) != GW_OK || gw_router_start_probes(router) != GW_OK)
    goto out;
  gw_stage route = gw_router_stage(router);
  if (gw_pipeline_add(&pipeline, &gw_stage_stats) || gw_pipeline_add(&pipeline, &gw_stage_auth) ||
      gw_pipeline_add(&pipeline, &gw_stage_limit) || gw_pipeline_add(&pipeline, &gw_stage_cache) ||
      gw_pipeline_add(&pipeline, &route))
    goto out;

  if (gw_supervisor_start(&cfg, &sup) != GW_OK)
    goto out;

  workers = gw_calloc((size_t)n_workers, sizeof(*workers));
  if (!workers)
    goto out;
  for (int i = 0; i < n_workers; i++)
    if (gw_worker_init(&workers[i], i) != GW_OK)
      goto out;
  if (gw_curl_loops_init(workers, n_workers) != GW_OK)
    goto out;
  /* Plain http:// OpenAI-compatible upstreams go through the native
   * HTTP/1.1 client (engine/http_client.h) unless UPSTREAM_CLIENT=curl;
   * https:// always goes through curl. Read once. */
  const char *upstream_client = getenv("UPSTREAM_CLIENT");
  if (!upstream_client || !*upstream_client)
    upstream_client = "native";
  if (strcmp(upstream_client, "curl") != 0) {
    if (strcmp(upstream_client, "native") != 0) {
      GW_LOGE("main", NULL, "UPSTREAM_CLIENT must be curl or native, not \"%s\"", upstream_client);
      goto out;
    }
    if (gw_http_clients_init(workers, n_workers) != GW_OK)
      goto out;
  }
  /* GRPC_PORT: gRPC core (GRPC_SERVER=core) or the gateway's own HTTP/2
   * server (transcoder/grpc.h), one per worker after the HTTP port's. */
  if (cfg.grpc_server_core) {
    gw_grpc_front_options gopts = {.host = cfg.host, .port = cfg.grpc_port};
    if (gw_grpc_front_start(&gopts, desc, &pipeline, workers, n_workers, &front) != GW_OK)
      goto out;
  }
  if (gw_routes_build(desc, &routes) != GW_OK)
    goto out;
  n_fronts = cfg.grpc_server_core ? n_workers : 2 * n_workers;
  fronts = gw_calloc((size_t)n_fronts, sizeof(*fronts));
  if (!fronts)
    goto out;
  gw_http_options hopts;
  gw_http_options_init(&hopts);
  hopts.host = cfg.host;
  hopts.port = (uint16_t)cfg.port;
  hopts.max_body_bytes = cfg.max_body_bytes;
  hopts.tls_cert_file = cfg.tls_cert_file;
  hopts.tls_key_file = cfg.tls_key_file;
  hopts.hsts_max_age = cfg.tls_cert_file ? 31536000 : 0;
  hopts.header_timeout_ms = (unsigned)cfg.http_header_timeout_ms;
  hopts.body_timeout_ms = (unsigned)cfg.http_body_timeout_ms;
  hopts.max_conns_per_ip = (unsigned)cfg.max_conns_per_ip;
  /* CORS_ORIGINS "a,b" -> {"a", "b"}; the strings live in |cors_buf|. */
  cors_buf = cfg.cors_origins ? gw_strdup(cfg.cors_origins) : NULL;
  const char *cors[32];
  size_t n_cors = 0;
  for (char *save = NULL, *tok = cors_buf ? strtok_r(cors_buf, ", ", &save) : NULL;
       tok && n_cors < 32; tok = strtok_r(NULL, ", ", &save))
    cors[n_cors++] = tok;
  hopts.cors_origins = cors;
  hopts.n_cors_origins = n_cors;
  hopts.cors_allow_headers = "authorization, content-type, x-request-id, openai-organization, "
                             "openai-project, x-stainless-os, x-stainless-lang";
  hopts.cors_allow_methods = "GET, POST, OPTIONS";
  hopts.cors_max_age = 600;
  hopts.dispatch_at_head = gw_grpc_h2_at_head; /* reflection's body, read as it comes */
  /* The gRPC port's servers: gRPC only, no TLS, CORS or gzip; a request
   * message up to gRPC's usual 4 MiB (or MAX_BODY_BYTES when larger). */
  gw_http_options gpopts;
  gw_http_options_init(&gpopts);
  gpopts.host = cfg.host;
  gpopts.port = (uint16_t)cfg.grpc_port;
  gpopts.max_body_bytes = (cfg.max_body_bytes > (4u << 20) ? cfg.max_body_bytes : 4u << 20) + 5;
  gpopts.header_timeout_ms = (unsigned)cfg.http_header_timeout_ms;
  gpopts.body_timeout_ms = (unsigned)cfg.http_body_timeout_ms;
  gpopts.max_conns_per_ip = (unsigned)cfg.max_conns_per_ip;
  gpopts.hsts_max_age = 0;
  gpopts.gzip = 0;
  gpopts.dispatch_at_head = gw_grpc_h2_at_head;
  for (int i = 0; i < n_workers; i++) {
    fronts[i].worker = &workers[i];
    fronts[i].routes = routes;
    fronts[i].desc = desc;
    fronts[i].pipeline = &pipeline;
    hopts.later = workers[i].later;
    if (gw_http_server_new(workers[i].base, &hopts, gw_http_front_handle, &fronts[i],
                           &fronts[i].server) != GW_OK) {
      GW_LOGE("main", NULL, "cannot serve HTTP on %s:%d", cfg.host, cfg.port);
      goto out;
    }
  }
  for (int i = n_workers; i < n_fronts; i++) {
    gw_http_front *g = &fronts[i];
    g->worker = &workers[i - n_workers];
    g->routes = routes;
    g->desc = desc;
    g->pipeline = &pipeline;
    gpopts.later = g->worker->later;
    if (gw_http_server_new(g->worker->base, &gpopts, gw_grpc_port_handle, g, &g->server) != GW_OK) {
      GW_LOGE("grpc", NULL, "cannot serve gRPC on %s:%d", cfg.host, cfg.grpc_port);
      goto out;
    }
  }
  if (n_fronts > n_workers)
    GW_LOGI("grpc", NULL, "gRPC front door listening on %s:%d (the gateway's own HTTP/2 server)",
            cfg.host, cfg.grpc_port);
  GW_LOGI("http", NULL, "HTTP front door listening on %s:%d (%s, %zu routes)", cfg.host, cfg.port,
          cfg.tls_cert_file ? "TLS, ALPN h2/http1.1" : "HTTP/1.1 and h2c", gw_routes_count(routes));
  for (int i = 0; i < n_workers; i++) {
    workers[i].busy_poll_ns = (int64_t)cfg.busy_poll_us * 1000;
    if (gw_worker_start(&workers[i]) != GW_OK)
      goto out;
  }
  http_started = true;
  GW_LOGI("main", NULL, "ai-gateway %s ready: %d workers, %zu backends, %zu models", GW_VERSION,
          n_workers, cfg.n_backends, cfg.n_models);

  /* The signal loop also ticks: it polls the config file for changes and
   * frees routing tables that a reload replaced once no call holds them. */
  gw_file_watch watch = {0};
  bool watching = cfg.config_file && cfg.routing.reload_poll_ms > 0 &&
                  gw_file_watch_init(&watch, cfg.config_file) == GW_OK;
  int64_t next_poll = gw_now_ms() + cfg.routing.reload_poll_ms;
  for (;;) {
    int sig = 0;
    struct timespec tick = {0, 200 * 1000000L};
    sig = sigtimedwait(&sigs, NULL, &tick);
    gw_router_collect(router);
    if (sig < 0) {
      if (watching && gw_now_ms() >= next_poll) {
        next_poll = gw_now_ms() + cfg.routing.reload_poll_ms;
        if (gw_file_watch_changed(&watch))
          reload_routes(router, "config file changed");
      }
      continue;
    }
    if (sig == SIGCHLD)
      continue; /* the supervisor's thread reaps its children */
    if (sig == SIGHUP) {
      if (cfg.tls_cert_file) {
        run_on_workers(fronts, n_workers, http_reload_tls);
        GW_LOGI("main", NULL, "SIGHUP: TLS certificate reloaded for new connections");
      }
      if (watching)
        (void)gw_file_watch_changed(&watch); /* this reload covers the change */
      reload_routes(router, "SIGHUP");
      continue;
    }
    GW_LOGI("main", NULL, "%s: shutting down (grace %d ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
            cfg.shutdown_grace_ms);
    break;
  }
  if (watching)
    gw_file_watch_release(&watch);
  rc = 0;

out:
  if (router)
    router->shutting_down = 1;
  int64_t grace_until = gw_now_ms() + cfg.shutdown_grace_ms;
  if (http_started)
    run_on_workers(fronts, n_fronts, http_stop_accepting);
  if (front)
    gw_grpc_front_shutdown(front, cfg.shutdown_grace_ms);
  if (http_started) {
    while (http_in_flight(fronts, n_fronts) > 0 && gw_now_ms() < grace_until)
      usleep(10000);
    if (http_in_flight(fronts, n_fronts) > 0)
      GW_LOGW("main", NULL, "grace period over: cancelling %ld HTTP and gRPC calls",
              http_in_flight(fronts, n_fronts));
    run_on_workers(fronts, n_fronts, http_free);
  }
  if (workers) {
    for (int i = 0; i < n_workers; i++)
      gw_worker_join(&workers[i]);
    /* Servers that never ran: freed while their workers' bases and queues
     * are still there. */
    if (fronts && !http_started)
      for (int i = 0; i < n_fronts; i++)
        gw_http_server_free(fronts[i].server);
    gw_http_clients_free();
    gw_curl_loops_free();
    gw_grpc_front_free(front);
    for (int i = 0; i < n_workers; i++)
      gw_worker_release(&workers[i]);
    gw_free(workers);
  } else {
    gw_grpc_front_free(front);
  }
  gw_free(fronts);
  gw_free(cors_buf);
  gw_routes_free(routes);
  gw_supervisor_stop(sup);
  gw_router_free(router);
  gw_pipeline_release(&pipeline);
  gw_descriptors_free(desc);
  grpc_shutdown();
  gw_config_release(&cfg);
  gw_buf_release(&err);
  if (rc == 0)
    GW_LOGI("main", NULL, "stopped");
  return rc;
}
