/* Child-process supervision and autoscaling for locally served backends. */
#include "engine/supervisor.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/status.h"
#include "engine/autoscale.h"
#include "engine/pool.h"
#include "pipeline/call.h"

enum {
  TICK_MS = 100,   /* the watch loop's period */
  SAMPLE_MS = 250, /* load samples for the autoscaler */
  PROBE_STARTING_MS = 250,
  PROBE_READY_MS = 1000,
  PROBE_TIMEOUT_MS = 500,
  STOP_KILL_MS = 15000, /* a draining member gets this long after SIGTERM */
  MAX_BACKOFF_MS = 30000,
};

struct gw_supervisor {
  gw_pool **pools;
  size_t n;
  pthread_t thread;
  bool thread_started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool stopping;
  grpc_completion_queue *cq; /* health probes */
  char python_dir[PATH_MAX];
  char stubs_dir[PATH_MAX];
};

/* The directory holding the running executable. */
static void exe_dir(char *out, size_t n) {
  ssize_t len = readlink("/proc/self/exe", out, n - 1);
  if (len <= 0) {
    snprintf(out, n, ".");
    return;
  }
  out[len] = '\0';
  char *slash = strrchr(out, '/');
  if (slash)
    *slash = '\0';
}

static bool is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void set_state(gw_pool *p, gw_pool_member *m, gw_member_state to) {
  gw_member_state from = (gw_member_state)atomic_exchange(&m->state, (int)to);
  if (from != to)
    GW_LOGD("supervisor", NULL, "backend %s member %d (port %d): %s -> %s", p->name, m->index,
            m->port, gw_member_state_to_str(from), gw_member_state_to_str(to));
}

static pid_t spawn(gw_supervisor *s, gw_pool_member *m) {
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    /* The child: die with the gateway, default signal dispositions. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    if (getppid() == 1)
      _exit(1);
    if (s->python_dir[0]) {
      const char *old = getenv("PYTHONPATH");
      char buf[PATH_MAX * 2];
      snprintf(buf, sizeof buf, "%s%s%s", s->python_dir, old && *old ? ":" : "", old ? old : "");
      setenv("PYTHONPATH", buf, 1);
    }
    if (s->stubs_dir[0] && !getenv("AIGW_STUBS"))
      setenv("AIGW_STUBS", s->stubs_dir, 1);
    execvp(m->argv[0], m->argv);
    fprintf(stderr, "ai-gateway: cannot run %s: %s\n", m->argv[0], strerror(errno));
    _exit(127);
  }
  return pid;
}

static void start_member(gw_supervisor *s, gw_pool *p, gw_pool_member *m) {
  pid_t pid = spawn(s, m);
  int64_t now = gw_now_ms();
  if (pid < 0) {
    GW_LOGE("supervisor", NULL, "backend %s member %d: fork failed: %s", p->name, m->index,
            strerror(errno));
    m->restart_at = now + m->backoff_ms;
    set_state(p, m, GW_MEMBER_BACKOFF);
    return;
  }
  m->proc = pid;
  atomic_store(&m->pid, (int)pid);
  m->started_ms = now;
  m->restart_at = 0;
  m->next_probe_ms = now + PROBE_STARTING_MS;
  set_state(p, m, GW_MEMBER_STARTING);
  GW_LOGI("supervisor", NULL, "backend %s: started member %d on port %d: %s (pid %d)", p->name,
          m->index, m->port, m->argv[0], (int)pid);
}

/* Reaps |m|'s process if it ended; schedules a restart unless it was
 * being stopped. */
static void reap(gw_pool *p, gw_pool_member *m, int64_t now) {
  int status;
  if (m->proc <= 0 || waitpid(m->proc, &status, WNOHANG) != m->proc)
    return;
  m->proc = 0;
  atomic_store(&m->pid, 0);
  gw_member_state st = (gw_member_state)atomic_load(&m->state);
  if (st == GW_MEMBER_STOPPING || st == GW_MEMBER_DRAINING) {
    GW_LOGI("supervisor", NULL, "backend %s: member %d (port %d) stopped", p->name, m->index,
            m->port);
    set_state(p, m, GW_MEMBER_OFF);
    return;
  }
  int64_t ran = now - m->started_ms;
  /* A member that ran a while earns its back-off back. */
  m->backoff_ms =
      ran > 30000 ? 500 : (m->backoff_ms * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : m->backoff_ms * 2);
  m->restarts++;
  m->restart_at = now + m->backoff_ms;
  set_state(p, m, GW_MEMBER_BACKOFF);
  if (WIFEXITED(status))
    GW_LOGW("supervisor", NULL,
            "backend %s: member %d (port %d) exited with status %d; restart in %d ms", p->name,
            m->index, m->port, WEXITSTATUS(status), m->backoff_ms);
  else
    GW_LOGW("supervisor", NULL,
            "backend %s: member %d (port %d) killed by signal %d; restart in %d ms", p->name,
            m->index, m->port, WTERMSIG(status), m->backoff_ms);
}

/* One member's chores for this tick. */
static void tend(gw_supervisor *s, gw_pool *p, gw_pool_member *m, int64_t now) {
  reap(p, m, now);
  switch ((gw_member_state)atomic_load(&m->state)) {
  case GW_MEMBER_BACKOFF:
    if (now >= m->restart_at)
      start_member(s, p, m);
    break;
  case GW_MEMBER_STARTING:
  case GW_MEMBER_UNHEALTHY:
  case GW_MEMBER_READY: {
    if (now < m->next_probe_ms)
      break;
    int h = gw_pool_probe(m, s->cq, PROBE_TIMEOUT_MS);
    now = gw_now_ms();
    gw_member_state st = (gw_member_state)atomic_load(&m->state);
    if (h == 1) {
      m->next_probe_ms = now + PROBE_READY_MS;
      if (st == GW_MEMBER_STARTING)
        GW_LOGI("supervisor", NULL, "backend %s: member %d (port %d) serving after %lld ms",
                p->name, m->index, m->port, (long long)(now - m->started_ms));
      else if (st == GW_MEMBER_UNHEALTHY)
        GW_LOGI("supervisor", NULL, "backend %s: member %d (port %d) serving again", p->name,
                m->index, m->port);
      if (st == GW_MEMBER_STARTING || st == GW_MEMBER_UNHEALTHY) {
        int expect = (int)st;
        atomic_compare_exchange_strong(&m->state, &expect, GW_MEMBER_READY);
      }
    } else {
      m->next_probe_ms = now + PROBE_STARTING_MS;
      if (st == GW_MEMBER_READY) {
        GW_LOGW("supervisor", NULL, "backend %s: member %d (port %d) %s; no calls until it serves",
                p->name, m->index, m->port, h == 0 ? "not serving" : "not answering");
        set_state(p, m, GW_MEMBER_UNHEALTHY);
      }
    }
    break;
  }
  case GW_MEMBER_DRAINING:
    if (atomic_load(&m->inflight) == 0) {
      if (m->proc > 0) {
        kill(m->proc, SIGTERM);
        m->stop_sent_ms = now;
        set_state(p, m, GW_MEMBER_STOPPING);
      } else {
        set_state(p, m, GW_MEMBER_OFF);
      }
    }
    break;
  case GW_MEMBER_STOPPING:
    if (m->proc > 0 && now - m->stop_sent_ms > STOP_KILL_MS) {
      GW_LOGW("supervisor", NULL,
              "backend %s: member %d still running %d ms after SIGTERM, killing", p->name, m->index,
              STOP_KILL_MS);
      kill(m->proc, SIGKILL);
      m->stop_sent_ms = now; /* once */
    }
    break;
  case GW_MEMBER_OFF: break;
  }
}

static bool counts_as_active(gw_member_state st) {
  return st == GW_MEMBER_STARTING || st == GW_MEMBER_READY || st == GW_MEMBER_UNHEALTHY ||
         st == GW_MEMBER_BACKOFF;
}

/* Samples the load, asks the autoscaler and acts on its answer. */
static void autoscale(gw_supervisor *s, gw_pool *p, int64_t now) {
  if (now < p->next_sample_ms)
    return;
  int64_t window = SAMPLE_MS;
  p->next_sample_ms = now + window;
  gw_autoscale_sample x = {.now_ms = now};
  for (int i = 0; i < p->n; i++) {
    gw_pool_member *m = &p->members[i];
    if (counts_as_active((gw_member_state)atomic_load(&m->state)))
      x.active++;
    x.inflight += atomic_load(&m->inflight);
  }
  x.queued = atomic_load(&p->queued);
  long wn = atomic_exchange(&p->wait_n, 0), ws = atomic_exchange(&p->wait_sum_ms, 0);
  long ln = atomic_exchange(&p->lat_n, 0), ls = atomic_exchange(&p->lat_sum_ms, 0);
  /* A quiet window pulls the averages towards 0. */
  p->wait_ewma = gw_autoscale_ewma(p->wait_ewma, wn ? (double)ws / (double)wn : 0.0, 0.3);
  if (ln)
    p->lat_ewma = gw_autoscale_ewma(p->lat_ewma, (double)ls / (double)ln, 0.3);
  else if (x.inflight == 0)
    p->lat_ewma = gw_autoscale_ewma(p->lat_ewma, 0.0, 0.3);
  x.wait_ms = p->wait_ewma;
  x.latency_ms = p->lat_ewma;
  atomic_store(&p->active, x.active);

  const char *why = "";
  gw_scale_action a = gw_autoscale_decide(&p->conf, &p->scale, &x, &why);
  if (a == GW_SCALE_HOLD)
    return;
  gw_pool_member *pick = NULL;
  if (a == GW_SCALE_UP) {
    for (int i = 0; i < p->n && !pick; i++)
      if (atomic_load(&p->members[i].state) == GW_MEMBER_OFF)
        pick = &p->members[i];
  } else {
    /* The highest-numbered member, preferring one that does no work. */
    for (int i = p->n - 1; i >= 0 && !pick; i--) {
      gw_member_state st = (gw_member_state)atomic_load(&p->members[i].state);
      if (st == GW_MEMBER_STARTING || st == GW_MEMBER_UNHEALTHY || st == GW_MEMBER_BACKOFF)
        pick = &p->members[i];
    }
    for (int i = p->n - 1; i >= 0 && !pick; i--)
      if (atomic_load(&p->members[i].state) == GW_MEMBER_READY)
        pick = &p->members[i];
  }
  GW_LOGI("supervisor", NULL,
          "backend %s: scale %s %d -> %d (%s; in flight %ld, queued %ld, queue wait %.0f ms, "
          "latency %.0f ms, min %d, max %d)%s",
          p->name, gw_scale_action_to_str(a), x.active, x.active + (a == GW_SCALE_UP ? 1 : -1), why,
          x.inflight, x.queued, x.wait_ms, x.latency_ms, p->conf.min, p->conf.max,
          pick ? "" : "; no member slot free, retrying");
  if (!pick) {
    p->scale.last_change_ms = 0; /* nothing changed: try again next sample */
    return;
  }
  if (a == GW_SCALE_UP) {
    start_member(s, p, pick);
  } else {
    GW_LOGI("supervisor", NULL, "backend %s: draining member %d (port %d, %ld calls in flight)",
            p->name, pick->index, pick->port, atomic_load(&pick->inflight));
    set_state(p, pick, GW_MEMBER_DRAINING);
  }
}

static void *watch(void *arg) {
  gw_supervisor *s = arg;
  pthread_mutex_lock(&s->mu);
  while (!s->stopping) {
    for (size_t k = 0; k < s->n; k++) {
      gw_pool *p = s->pools[k];
      for (int i = 0; i < p->n; i++)
        tend(s, p, &p->members[i], gw_now_ms());
      autoscale(s, p, gw_now_ms());
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += TICK_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&s->cv, &s->mu, &until);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

int gw_supervisor_start(const gw_config *cfg, gw_supervisor **out) {
  *out = NULL;
  size_t n = 0;
  for (size_t i = 0; i < cfg->n_backends; i++)
    if (cfg->backends[i].command && cfg->backends[i].n_command > 0)
      n++;
  if (n == 0)
    return GW_OK;
  gw_supervisor *s = gw_calloc(1, sizeof(*s));
  if (!s)
    return GW_ERR_NOMEM;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  s->pools = gw_calloc(n, sizeof(gw_pool *));
  s->cq = grpc_completion_queue_create_for_pluck(NULL);
  if (!s->pools || !s->cq) {
    gw_supervisor_stop(s);
    return GW_ERR_NOMEM;
  }
  char dir[PATH_MAX - 32];
  exe_dir(dir, sizeof dir);
  snprintf(s->python_dir, sizeof s->python_dir, "%s/python", dir);
  if (!is_dir(s->python_dir))
    s->python_dir[0] = '\0';
  snprintf(s->stubs_dir, sizeof s->stubs_dir, "%s/build/gen/python", dir);
  if (!is_dir(s->stubs_dir))
    s->stubs_dir[0] = '\0';
  for (size_t i = 0; i < cfg->n_backends; i++) {
    const gw_backend_conf *b = &cfg->backends[i];
    if (!b->command || b->n_command == 0)
      continue;
    gw_pool *p = gw_pool_acquire(b);
    if (!p) {
      gw_supervisor_stop(s); /* stops the members started above */
      return GW_ERR_NOMEM;
    }
    s->pools[s->n++] = p;
    if (p->n > 1 && p->port_index < 0)
      GW_LOGW("supervisor", NULL, "backend %s: no --port in its command: one process only",
              p->name);
    GW_LOGI("supervisor", NULL,
            "backend %s: pool of %d-%d processes on ports %d-%d (%d calls each; up at %d per "
            "process or queue wait %d ms for %d ms, cooldown %d ms; down after %d ms quiet, "
            "cooldown %d ms)",
            p->name, p->conf.min, p->conf.max, p->members[0].port, p->members[p->n - 1].port,
            p->conf.max_concurrency, p->conf.scale_up_inflight, p->conf.scale_up_wait_ms,
            p->conf.up_after_ms, p->conf.up_cooldown_ms, p->conf.down_after_ms,
            p->conf.down_cooldown_ms);
    for (int k = 0; k < p->conf.min && k < p->n; k++)
      start_member(s, p, &p->members[k]);
    p->scale.last_change_ms = gw_now_ms(); /* the start counts as a change */
  }
  if (pthread_create(&s->thread, NULL, watch, s) != 0) {
    gw_supervisor_stop(s);
    return GW_ERR_IO;
  }
  s->thread_started = true;
  *out = s;
  return GW_OK;
}

static bool any_alive(gw_supervisor *s) {
  bool alive = false;
  for (size_t k = 0; k < s->n; k++)
    for (int i = 0; i < s->pools[k]->n; i++) {
      gw_pool_member *m = &s->pools[k]->members[i];
      if (m->proc > 0) {
        if (waitpid(m->proc, NULL, WNOHANG) == m->proc) {
          m->proc = 0;
          atomic_store(&m->pid, 0);
        } else {
          alive = true;
        }
      }
    }
  return alive;
}

void gw_supervisor_stop(gw_supervisor *s) {
  if (!s)
    return;
  pthread_mutex_lock(&s->mu);
  s->stopping = true;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  if (s->thread_started)
    pthread_join(s->thread, NULL);
  for (size_t k = 0; k < s->n; k++)
    for (int i = 0; i < s->pools[k]->n; i++) {
      gw_pool_member *m = &s->pools[k]->members[i];
      set_state(s->pools[k], m, GW_MEMBER_STOPPING);
      if (m->proc > 0)
        kill(m->proc, SIGTERM);
    }
  /* Up to 5 s for a graceful exit, then SIGKILL. */
  int64_t until = gw_now_ms() + 5000;
  while (any_alive(s)) {
    if (gw_now_ms() >= until) {
      for (size_t k = 0; k < s->n; k++)
        for (int i = 0; i < s->pools[k]->n; i++) {
          gw_pool_member *m = &s->pools[k]->members[i];
          if (m->proc > 0) {
            GW_LOGW("supervisor", NULL, "backend %s member %d: still running after 5 s, killing",
                    s->pools[k]->name, m->index);
            kill(m->proc, SIGKILL);
            waitpid(m->proc, NULL, 0);
            m->proc = 0;
          }
        }
      break;
    }
    usleep(20000);
  }
  for (size_t k = 0; k < s->n; k++) {
    for (int i = 0; i < s->pools[k]->n; i++)
      set_state(s->pools[k], &s->pools[k]->members[i], GW_MEMBER_OFF);
    gw_pool_release(s->pools[k]);
  }
  if (s->cq) {
    grpc_completion_queue_shutdown(s->cq);
    grpc_completion_queue_destroy(s->cq);
  }
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  gw_free(s->pools);
  gw_free(s);
}
