/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics_add: what a metric update costs on the mount's hot path, in ns per
 * call: metric_add from 1 and 2 threads (one shared counter, and one counter
 * each), metric_observe, and a handle lookup by name. Not a test; built as
 * build/tests/unit/bench_metrics. Usage: bench_metrics [MILLION_CALLS]
 * (default 20 per thread). Run it on an idle machine; 2 threads on 2 cores.
 */
#include "metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long calls;

struct job {
	struct metric *c;
	int kind;      /* 0 metric_add, 1 metric_observe */
	double cpu_ns; /* the thread's CPU time per call */
};

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double thread_cpu_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *run(void *p)
{
	struct job *j = p;
	double c0 = thread_cpu_s();

	if (j->kind == 0)
		for (long i = 0; i < calls; i++)
			metric_add(j->c, 1);
	else
		for (long i = 0; i < calls; i++)
			metric_observe(j->c, (double)(i & 1023) * 1e-3);
	j->cpu_ns = (thread_cpu_s() - c0) * 1e9 / (double)calls;
	return NULL;
}

/*
 * Runs @nthreads jobs at once and prints ns per call: each thread's CPU time
 * per call (what a FUSE thread pays; robust to a busy machine), and wall
 * time per call per thread (inflated when the threads do not get a core each).
 */
static void timed(const char *what, int nthreads, struct job *jobs)
{
	pthread_t th[2];
	double t0 = now_s(), cpu = 0;

	for (int i = 0; i < nthreads; i++)
		pthread_create(&th[i], NULL, run, &jobs[i]);
	for (int i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		cpu += jobs[i].cpu_ns / nthreads;
	}
	printf("%-46s %7.2f ns CPU  %7.2f ns wall\n", what, cpu,
	       (now_s() - t0) * 1e9 / (double)calls);
}

int main(int argc, char **argv)
{
	struct metrics *m = metrics_new("bench");
	struct metric *shared = metrics_counter(m, "shared_total", NULL, NULL);
	struct metric *a = metrics_counter(m, "a_total", NULL, "op=\"read\"");
	struct metric *b = metrics_counter(m, "b_total", NULL, "op=\"write\"");
	struct metric *h = metrics_histogram(m, "lat_seconds", NULL, NULL, metrics_latency_bounds,
	                                     METRICS_LATENCY_NBOUNDS);
	struct job one[2] = {{shared, 0, 0}, {shared, 0, 0}}, own[2] = {{a, 0, 0}, {b, 0, 0}};
	struct job hist[2] = {{h, 1, 0}, {h, 1, 0}};
	long lookups;
	double t0;

	calls = (argc > 1 ? atol(argv[1]) : 20) * 1000000L;
	if (calls <= 0 || !m)
		return 2;
	timed("metric_add, 1 thread", 1, one);
	timed("metric_add, 2 threads, one shared counter", 2, one);
	timed("metric_add, 2 threads, a counter each", 2, own);
	timed("metric_observe, 1 thread", 1, hist);
	timed("metric_observe, 2 threads, one histogram", 2, hist);
	lookups = calls / 20;
	t0 = now_s();
	for (long i = 0; i < lookups; i++)
		metrics_counter(m, "a_total", NULL, "op=\"read\"");
	printf("%-46s %7.2f ns wall\n", "metrics_counter(), an existing series",
	       (now_s() - t0) * 1e9 / (double)lookups);
	if (metric_counter_value(shared) != (uint64_t)calls * 3) {
		fprintf(stderr, "lost updates: %lu\n", (unsigned long)metric_counter_value(shared));
		return 1;
	}
	metrics_free(m);
	return 0;
}
