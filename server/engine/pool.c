/* Pools of local model-server processes: the shared registry, the request
 * path's slot accounting, port substitution and the health probe. */
#include "engine/pool.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/status.h"

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static gw_pool *registry;

const char *gw_member_state_to_str(gw_member_state s) {
  switch (s) {
  case GW_MEMBER_OFF: return "off";
  case GW_MEMBER_STARTING: return "starting";
  case GW_MEMBER_READY: return "serving";
  case GW_MEMBER_UNHEALTHY: return "not_serving";
  case GW_MEMBER_BACKOFF: return "restarting";
  case GW_MEMBER_DRAINING: return "draining";
  case GW_MEMBER_STOPPING: return "stopping";
  }
  return "?";
}

int gw_pool_port_index(char *const *argv, size_t n, bool *joined) {
  *joined = false;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(argv[i], "--") == 0)
      break; /* what follows belongs to someone else */
    if (strcmp(argv[i], "--port") == 0 && i + 1 < n)
      return (int)(i + 1);
    if (strncmp(argv[i], "--port=", 7) == 0) {
      *joined = true;
      return (int)i;
    }
  }
  return -1;
}

int gw_pool_port_arg(bool joined, int port, char *buf, size_t cap) {
  int len = snprintf(buf, cap, "%s%d", joined ? "--port=" : "", port);
  return len < 0 || (size_t)len >= cap ? GW_ERR_TOOBIG : GW_OK;
}

static void pool_free(gw_pool *p) {
  for (int i = 0; p->members && i < p->n; i++) {
    if (p->members[i].channel)
      grpc_channel_destroy(p->members[i].channel);
    gw_free(p->members[i].argv);
  }
  gw_free(p->members);
  for (size_t i = 0; p->command && i < p->n_command; i++)
    gw_free(p->command[i]);
  gw_free(p->command);
  gw_free(p->name);
  gw_free(p);
}

static grpc_channel *member_channel(const char *target) {
  /* Reconnect fast: a member that restarts is back within a second. */
  grpc_arg args[] = {
      {.type = GRPC_ARG_INTEGER,
       .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
       .value.integer = 64 << 20},
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_RETRIES, .value.integer = 0},
      {.type = GRPC_ARG_INTEGER,
       .key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
       .value.integer = 100},
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, .value.integer = 100},
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, .value.integer = 1000},
  };
  grpc_channel_args ch_args = {sizeof(args) / sizeof(args[0]), args};
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  grpc_channel *ch = grpc_channel_create(target, creds, &ch_args);
  grpc_channel_credentials_release(creds);
  return ch;
}

static gw_pool *pool_new(const gw_backend_conf *b) {
  gw_pool *p = gw_calloc(1, sizeof(*p));
  if (!p)
    return NULL;
  p->conf = b->pool;
  if (p->conf.max < 1)
    p->conf.max = 1;
  if (p->conf.min < 1)
    p->conf.min = 1;
  if (p->conf.max_concurrency < 1)
    p->conf.max_concurrency = 8;
  p->n = p->conf.max;
  if (!(p->name = gw_strdup(b->name)))
    goto fail;
  if (!(p->command = gw_calloc(b->n_command + 1, sizeof(char *))))
    goto fail;
  for (size_t i = 0; i < b->n_command; i++) {
    if (!(p->command[i] = gw_strdup(b->command[i])))
      goto fail;
    p->n_command = i + 1;
  }
  p->port_index = gw_pool_port_index(p->command, p->n_command, &p->port_joined);
  /* The target gives the host and the base port. */
  const char *colon = strrchr(b->target, ':');
  int base = colon ? atoi(colon + 1) : 0;
  int host_len = colon ? (int)(colon - b->target) : (int)strlen(b->target);
  if (!(p->members = gw_calloc((size_t)p->n, sizeof(gw_pool_member))))
    goto fail;
  for (int i = 0; i < p->n; i++) {
    gw_pool_member *m = &p->members[i];
    m->index = i;
    m->port = base + i;
    m->backoff_ms = 500;
    snprintf(m->target, sizeof m->target, "%.*s:%d", host_len, b->target, m->port);
    if (!(m->channel = member_channel(m->target)))
      goto fail;
    if (!(m->argv = gw_calloc(p->n_command + 1, sizeof(char *))))
      goto fail;
    for (size_t k = 0; k < p->n_command; k++)
      m->argv[k] = p->command[k];
    if (p->port_index >= 0) {
      if (gw_pool_port_arg(p->port_joined, m->port, m->port_arg, sizeof m->port_arg) != GW_OK)
        goto fail;
      m->argv[p->port_index] = m->port_arg;
    }
  }
  return p;
fail:
  pool_free(p);
  return NULL;
}

gw_pool *gw_pool_acquire(const gw_backend_conf *b) {
  pthread_mutex_lock(&registry_mu);
  gw_pool *p;
  for (p = registry; p; p = p->next)
    if (strcmp(p->name, b->name) == 0)
      break;
  if (!p && (p = pool_new(b)) != NULL) {
    p->next = registry;
    registry = p;
  }
  if (p)
    p->refs++;
  pthread_mutex_unlock(&registry_mu);
  return p;
}

void gw_pool_release(gw_pool *p) {
  if (!p)
    return;
  pthread_mutex_lock(&registry_mu);
  bool last = --p->refs == 0;
  if (last)
    for (gw_pool **pp = &registry; *pp; pp = &(*pp)->next)
      if (*pp == p) {
        *pp = p->next;
        break;
      }
  pthread_mutex_unlock(&registry_mu);
  if (last)
    pool_free(p);
}

/* --- the request path (atomics only) ------------------------------------------ */

gw_pool_member *gw_pool_take(gw_pool *p, int64_t wait_ms) {
  const long cap = p->conf.max_concurrency;
  /* A few tries: another worker may take the slot between look and take. */
  for (int attempt = 0; attempt < 4; attempt++) {
    gw_pool_member *best = NULL;
    long best_n = 0;
    for (int i = 0; i < p->n; i++) {
      gw_pool_member *m = &p->members[i];
      if (atomic_load(&m->state) != GW_MEMBER_READY)
        continue;
      long n = atomic_load(&m->inflight);
      if (n < cap && (!best || n < best_n)) {
        best = m;
        best_n = n;
      }
    }
    if (!best)
      return NULL;
    /* Count first, then check again: the supervisor marks a member draining
     * first and then reads its count, so one of the two sees the other. */
    long before = atomic_fetch_add(&best->inflight, 1);
    if (before < cap && atomic_load(&best->state) == GW_MEMBER_READY) {
      atomic_fetch_add(&best->calls, 1);
      atomic_fetch_add(&p->wait_sum_ms, (long)wait_ms);
      atomic_fetch_add(&p->wait_n, 1);
      return best;
    }
    atomic_fetch_sub(&best->inflight, 1);
  }
  return NULL;
}

void gw_pool_done(gw_pool *p, gw_pool_member *m, int64_t latency_ms, bool unreachable) {
  if (unreachable) {
    int expect = GW_MEMBER_READY;
    atomic_compare_exchange_strong(&m->state, &expect, GW_MEMBER_UNHEALTHY);
  }
  atomic_fetch_add(&p->lat_sum_ms, (long)latency_ms);
  atomic_fetch_add(&p->lat_n, 1);
  atomic_fetch_sub(&m->inflight, 1);
}

bool gw_pool_any_ready(const gw_pool *p) {
  for (int i = 0; i < p->n; i++)
    if (atomic_load(&p->members[i].state) == GW_MEMBER_READY)
      return true;
  return false;
}

/* --- health ---------------------------------------------------------------- */

int gw_pool_probe(gw_pool_member *m, grpc_completion_queue *cq, int timeout_ms) {
  gpr_timespec deadline =
      gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
  grpc_call *c = grpc_channel_create_call(
      m->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
      grpc_slice_from_static_string("/grpc.health.v1.Health/Check"), NULL, deadline, NULL);
  if (!c)
    return -1;
  grpc_metadata_array initial_md, trailing_md;
  grpc_metadata_array_init(&initial_md);
  grpc_metadata_array_init(&trailing_md);
  grpc_slice empty = grpc_empty_slice();
  grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&empty, 1); /* HealthCheckRequest{} */
  grpc_byte_buffer *recv = NULL;
  grpc_status_code status = GRPC_STATUS_UNKNOWN;
  grpc_slice details = grpc_empty_slice();
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = send;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &recv;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
  ops[5].data.recv_status_on_client.status = &status;
  ops[5].data.recv_status_on_client.status_details = &details;
  int result = -1;
  void *tag = m;
  if (grpc_call_start_batch(c, ops, 6, tag, NULL) == GRPC_CALL_OK) {
    /* The call's own deadline ends it; the pluck waits a little longer. */
    gpr_timespec wait = gpr_time_add(deadline, gpr_time_from_millis(1000, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_pluck(cq, tag, wait, NULL);
    if (ev.type != GRPC_OP_COMPLETE) {
      grpc_call_cancel(c, NULL);
      grpc_completion_queue_pluck(cq, tag, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    }
    if (status == GRPC_STATUS_OK && recv) {
      /* HealthCheckResponse: field 1 (varint) status; SERVING = 1. */
      grpc_byte_buffer_reader r;
      result = 0;
      if (grpc_byte_buffer_reader_init(&r, recv)) {
        grpc_slice s = grpc_byte_buffer_reader_readall(&r);
        grpc_byte_buffer_reader_destroy(&r);
        const uint8_t *d = GRPC_SLICE_START_PTR(s);
        if (GRPC_SLICE_LENGTH(s) >= 2 && d[0] == 0x08 && d[1] == 1)
          result = 1;
        grpc_slice_unref(s);
      }
    } else if (status != GRPC_STATUS_UNAVAILABLE && status != GRPC_STATUS_DEADLINE_EXCEEDED &&
               status != GRPC_STATUS_UNKNOWN) {
      result = 0; /* it answered, with an error */
    }
  }
  if (recv)
    grpc_byte_buffer_destroy(recv);
  grpc_byte_buffer_destroy(send);
  grpc_slice_unref(details);
  grpc_metadata_array_destroy(&initial_md);
  grpc_metadata_array_destroy(&trailing_md);
  grpc_call_unref(c);
  return result;
}
