/* Child-process supervision for locally served backends. */
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
#include "pipeline/call.h"

typedef struct child {
  const gw_backend_conf *backend;
  pid_t pid;           /* 0 when not running */
  int64_t started_ms;  /* when it was last started */
  int64_t restart_at;  /* when to start it again, 0 = not scheduled */
  int backoff_ms;
  int restarts;
  char **argv; /* NULL-terminated copy of the command, built before any fork */
} child;

struct gw_supervisor {
  child *children;
  size_t n;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool stopping;
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

static pid_t spawn(gw_supervisor *s, child *c) {
  const gw_backend_conf *b = c->backend;
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
    execvp(c->argv[0], c->argv);
    fprintf(stderr, "ai-gateway: cannot run %s: %s\n", b->command[0], strerror(errno));
    _exit(127);
  }
  return pid;
}

static void start_child(gw_supervisor *s, child *c) {
  pid_t pid = spawn(s, c);
  if (pid < 0) {
    GW_LOGE("supervisor", NULL, "backend %s: fork failed: %s", c->backend->name, strerror(errno));
    c->restart_at = gw_now_ms() + c->backoff_ms;
    return;
  }
  c->pid = pid;
  c->started_ms = gw_now_ms();
  c->restart_at = 0;
  GW_LOGI("supervisor", NULL, "backend %s: started %s (pid %d)", c->backend->name,
          c->backend->command[0], (int)pid);
}

static void *watch(void *arg) {
  gw_supervisor *s = arg;
  pthread_mutex_lock(&s->mu);
  while (!s->stopping) {
    for (size_t i = 0; i < s->n; i++) {
      child *c = &s->children[i];
      int status;
      if (c->pid > 0 && waitpid(c->pid, &status, WNOHANG) == c->pid) {
        int64_t ran = gw_now_ms() - c->started_ms;
        /* A child that ran a while earns its back-off back. */
        c->backoff_ms = ran > 30000 ? 500 : (c->backoff_ms * 2 > 30000 ? 30000 : c->backoff_ms * 2);
        c->pid = 0;
        c->restarts++;
        c->restart_at = gw_now_ms() + c->backoff_ms;
        if (WIFEXITED(status))
          GW_LOGW("supervisor", NULL, "backend %s: exited with status %d; restart in %d ms",
                  c->backend->name, WEXITSTATUS(status), c->backoff_ms);
        else
          GW_LOGW("supervisor", NULL, "backend %s: killed by signal %d; restart in %d ms",
                  c->backend->name, WTERMSIG(status), c->backoff_ms);
      }
      if (c->pid == 0 && c->restart_at && gw_now_ms() >= c->restart_at)
        start_child(s, c);
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 200 * 1000000L;
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
  s->children = gw_calloc(n, sizeof(child));
  if (!s->children) {
    gw_free(s);
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
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  for (size_t i = 0; i < cfg->n_backends; i++) {
    if (!cfg->backends[i].command || cfg->backends[i].n_command == 0)
      continue;
    child *c = &s->children[s->n++];
    c->backend = &cfg->backends[i];
    c->argv = gw_calloc(c->backend->n_command + 1, sizeof(char *));
    if (!c->argv) {
      gw_supervisor_stop(s);
      return GW_ERR_NOMEM;
    }
    for (size_t k = 0; k < c->backend->n_command; k++)
      c->argv[k] = c->backend->command[k];
    c->backoff_ms = 500;
    start_child(s, c);
  }
  if (pthread_create(&s->thread, NULL, watch, s) != 0) {
    gw_supervisor_stop(s); /* stops the children started above */
    return GW_ERR_IO;
  }
  *out = s;
  return GW_OK;
}

void gw_supervisor_stop(gw_supervisor *s) {
  if (!s)
    return;
  pthread_mutex_lock(&s->mu);
  s->stopping = true;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  if (s->thread)
    pthread_join(s->thread, NULL);
  for (size_t i = 0; i < s->n; i++)
    if (s->children[i].pid > 0)
      kill(s->children[i].pid, SIGTERM);
  /* Up to 5 s for a graceful exit, then SIGKILL. */
  int64_t until = gw_now_ms() + 5000;
  for (;;) {
    bool alive = false;
    for (size_t i = 0; i < s->n; i++) {
      child *c = &s->children[i];
      if (c->pid > 0) {
        if (waitpid(c->pid, NULL, WNOHANG) == c->pid)
          c->pid = 0;
        else
          alive = true;
      }
    }
    if (!alive)
      break;
    if (gw_now_ms() >= until) {
      for (size_t i = 0; i < s->n; i++)
        if (s->children[i].pid > 0) {
          GW_LOGW("supervisor", NULL, "backend %s: still running after 5 s, killing",
                  s->children[i].backend->name);
          kill(s->children[i].pid, SIGKILL);
          waitpid(s->children[i].pid, NULL, 0);
          s->children[i].pid = 0;
        }
      break;
    }
    usleep(20000);
  }
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  for (size_t i = 0; i < s->n; i++)
    gw_free(s->children[i].argv);
  gw_free(s->children);
  gw_free(s);
}
