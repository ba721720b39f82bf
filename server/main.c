/* ai-gateway: loads the configuration, starts the workers and the front
 * doors, and shuts down gracefully on SIGTERM/SIGINT. */
#include <event2/thread.h>
#include <grpc/grpc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/alloc.h"
#include "core/log.h"
#include "engine/supervisor.h"
#include "engine/worker.h"
#include "grpc/front.h"
#include "pipeline/pipeline.h"
#include "pipeline/route.h"
#include "proto/descriptors.h"

#ifndef GW_VERSION
#define GW_VERSION "0.1.0"
#endif

static void usage(FILE *out) {
  fprintf(out,
          "usage: ai-gateway [--check-config] [--version] [--help]\n"
          "Configuration comes from the environment (and .env), see .env.example,\n"
          "and from CONFIG_FILE (JSON or YAML), see docs/config.md.\n");
}

int main(int argc, char **argv) {
  bool check_only = false;
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

  evthread_use_pthreads();
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
  gw_grpc_front_options gopts = {.host = cfg.host, .port = cfg.grpc_port};
  if (gw_grpc_front_start(&gopts, desc, &pipeline, workers, n_workers, &front) != GW_OK)
    goto out;
  for (int i = 0; i < n_workers; i++)
    if (gw_worker_start(&workers[i]) != GW_OK)
      goto out;
  GW_LOGI("main", NULL, "ai-gateway %s ready: %d workers, %zu backends, %zu models", GW_VERSION,
          n_workers, cfg.n_backends, cfg.n_models);

  for (;;) {
    int sig = 0;
    if (sigwait(&sigs, &sig) != 0)
      continue;
    if (sig == SIGCHLD)
      continue; /* the supervisor's thread reaps its children */
    if (sig == SIGHUP) {
      GW_LOGI("main", NULL, "SIGHUP: configuration reload is not supported yet; ignoring");
      continue;
    }
    GW_LOGI("main", NULL, "%s: shutting down (grace %d ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
            cfg.shutdown_grace_ms);
    break;
  }
  rc = 0;

out:
  if (router)
    router->shutting_down = 1;
  if (front)
    gw_grpc_front_shutdown(front, cfg.shutdown_grace_ms);
  if (workers) {
    for (int i = 0; i < n_workers; i++)
      gw_worker_join(&workers[i]);
    gw_grpc_front_free(front);
    for (int i = 0; i < n_workers; i++)
      gw_worker_release(&workers[i]);
    gw_free(workers);
  } else {
    gw_grpc_front_free(front);
  }
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
