/* The process allocator (server/core/alloc.c) under threads that allocate
 * at once, as the workers do: each of T threads, pinned to its own CPU,
 * makes N malloc+free pairs of 64 bytes through gw_malloc and gw_free.
 * Built twice from the same source (make -C tests/bench alloc_bench): with
 * the unit tests' counting hooks (GW_ALLOC_HOOKS: process-wide atomic
 * counters) and without (the release build).
 *
 *   tests/bench/bin/alloc_bench_hooks [T] [N]
 *   tests/bench/bin/alloc_bench [T] [N]          (T 2, N 20000000)
 *
 * Prints the wall time per pair in each thread. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/alloc.h"

static long n_pairs = 20000000;

static void *run(void *arg) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET((int)(long)arg, &set);
  (void)sched_setaffinity(0, sizeof set, &set); /* one CPU each, when there are enough */
  for (long i = 0; i < n_pairs; i++) {
    void *p = gw_malloc(64);
    __asm__ volatile("" : : "r"(p) : "memory"); /* kept, not folded away */
    gw_free(p);
  }
  return NULL;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2;
  if (argc > 2)
    n_pairs = atol(argv[2]);
  if (threads < 1 || threads > 256 || n_pairs < 1) {
    fprintf(stderr, "usage: alloc_bench [THREADS 1-256] [PAIRS]\n");
    return 2;
  }
  pthread_t *t = calloc((size_t)threads, sizeof *t);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < threads; i++)
    pthread_create(&t[i], NULL, run, (void *)i);
  for (int i = 0; i < threads; i++)
    pthread_join(t[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ns =
      ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)n_pairs;
  printf("%d thread(s): %.1f ns per malloc+free pair\n", threads, ns);
  free(t);
  return 0;
}
