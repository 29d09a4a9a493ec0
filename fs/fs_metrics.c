/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fs_metrics: the mount's metrics, their exposition, the status line and
 * the signals (see fs_metrics.h). The modules keep their own counters
 * (prefetcher_stats, uploader_stats, cache_stats, the budget); a ticker
 * turns them into series once a second, so nothing on the data path waits
 * on the registry.
 */
#include "fs_metrics.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "cache.h"
#include "fs.h"
#include "log.h"
#include "metrics.h"
#include "prefetch.h"
#include "upload.h"

/* Signals seen, for the ticker (set by the handlers, read and cleared by it). */
static volatile sig_atomic_t want_status, want_verbosity;

struct fs_metrics {
	struct hpcops_fs *fs;
	struct metrics *reg;
	struct metrics_ticker *ticker;
	struct metrics_server *server;
	int ticks;
	int base_level; /* the level SIGUSR2 returns to */
	/* the request path's series */
	struct metric *bytes_read, *bytes_written, *reads, *writes, *created;
	/* snapshots of the modules, as counters and gauges */
	struct metric *fetched, *from_cache, *delivered, *shared, *gets;
	struct metric *cache_hits, *cache_misses;
	struct metric *shared_hits, *shared_misses, *shared_damaged;
	struct metric *shared_puts, *shared_put_failures, *shared_puts_skipped;
	struct metric *uploads_open, *uploads_completed, *uploads_failed, *parts, *budget_waits;
	struct metric *aborts_owed, *budget_used, *budget_limit;
	struct prefetch_stats last_pf;
	struct uploader_stats last_up;
	struct cache_stats last_cache;
};

static void on_usr1(int sig)
{
	want_status = 1;
}

static void on_usr2(int sig)
{
	want_verbosity = 1;
}

void fs_metrics_install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
}

struct metrics *fs_metrics_registry_new(void)
{
	return metrics_new("hpcops");
}

void fs_metrics_read(struct fs_metrics *m, uint64_t bytes)
{
	if (!m)
		return;
	metric_add(m->reads, 1);
	metric_add(m->bytes_read, bytes);
}

void fs_metrics_write(struct fs_metrics *m, uint64_t bytes)
{
	if (!m)
		return;
	metric_add(m->writes, 1);
	metric_add(m->bytes_written, bytes);
}

void fs_metrics_created(struct fs_metrics *m)
{
	if (m)
		metric_add(m->created, 1);
}

void fs_metrics_error(struct fs_metrics *m, const char *op, int err)
{
	char labels[128];
	const char *name;

	if (!m || err <= 0)
		return;
	name = strerrorname_np(err);
	snprintf(labels, sizeof(labels), "errno=\"%s\",op=\"%s\"", name ? name : "unknown", op);
	metric_add(metrics_counter(m->reg, "fs_errors_total",
	                           "file operations that failed, by errno and operation", labels),
	           1);
}

/* One line of what the mount is doing now (SIGUSR1). */
static void log_status(struct fs_metrics *m)
{
	struct hpcops_fs *fs = m->fs;
	struct prefetch_stats pf;
	struct uploader_stats up;
	int handles = 0;

	prefetcher_stats(fs->reads, &pf);
	uploader_stats(fs->writes, &up);
	pthread_mutex_lock(&fs->handles_lock);
	for (struct fs_handle *h = fs->handles; h; h = h->next)
		handles++;
	pthread_mutex_unlock(&fs->handles_lock);
	log_notice("status: s3://%s/%s on %s: %d open handles, %llu uploads open (%llu "
	           "completed, %llu failed, %llu aborts owed), %llu MiB read and %llu MiB "
	           "written, %llu MiB fetched, memory %llu of %llu MiB",
	           fs->opt.bucket, fs->opt.prefix, fs->opt.mountpoint, handles,
	           (unsigned long long)up.open, (unsigned long long)up.completed,
	           (unsigned long long)up.failed, (unsigned long long)up.pending_aborts,
	           (unsigned long long)(metric_counter_value(m->bytes_read) >> 20),
	           (unsigned long long)(metric_counter_value(m->bytes_written) >> 20),
	           (unsigned long long)(pf.bytes_fetched >> 20),
	           (unsigned long long)(budget_used(fs->budget) >> 20),
	           (unsigned long long)(budget_limit(fs->budget) >> 20));
}

/* Counters of the modules into the series (differences since the last tick). */
static void snapshot(struct fs_metrics *m)
{
	struct hpcops_fs *fs = m->fs;
	struct prefetch_stats pf;
	struct uploader_stats up;
	struct cache_stats cs;

	prefetcher_stats(fs->reads, &pf);
	metric_add(m->fetched, pf.bytes_fetched - m->last_pf.bytes_fetched);
	metric_add(m->from_cache, pf.bytes_from_cache - m->last_pf.bytes_from_cache);
	metric_add(m->delivered, pf.bytes_delivered - m->last_pf.bytes_delivered);
	metric_add(m->shared, pf.parts_shared - m->last_pf.parts_shared);
	metric_add(m->gets, pf.gets - m->last_pf.gets);
	m->last_pf = pf;
	uploader_stats(fs->writes, &up);
	metric_gauge_set(m->uploads_open, (int64_t)up.open);
	metric_add(m->uploads_completed, up.completed - m->last_up.completed);
	metric_add(m->uploads_failed, up.failed - m->last_up.failed);
	metric_add(m->parts, up.parts - m->last_up.parts);
	metric_add(m->budget_waits, up.budget_waits - m->last_up.budget_waits);
	metric_gauge_set(m->aborts_owed, (int64_t)up.pending_aborts);
	m->last_up = up;
	cache_stats(fs->cache, &cs);
	metric_add(m->cache_hits, cs.hits - m->last_cache.hits);
	metric_add(m->cache_misses, cs.misses - m->last_cache.misses);
	metric_add(m->shared_hits, cs.shared_hits - m->last_cache.shared_hits);
	metric_add(m->shared_misses, cs.shared_misses - m->last_cache.shared_misses);
	metric_add(m->shared_damaged, cs.shared_damaged - m->last_cache.shared_damaged);
	metric_add(m->shared_puts, cs.shared_puts - m->last_cache.shared_puts);
	metric_add(m->shared_put_failures,
	           cs.shared_put_failures - m->last_cache.shared_put_failures);
	metric_add(m->shared_puts_skipped,
	           cs.shared_puts_skipped - m->last_cache.shared_puts_skipped);
	m->last_cache = cs;
	metric_gauge_set(m->budget_used, (int64_t)budget_used(fs->budget));
}

static void tick(void *user)
{
	struct fs_metrics *m = user;
	struct hpcops_fs *fs = m->fs;

	snapshot(m);
	if (want_status) {
		want_status = 0;
		log_status(m);
	}
	if (want_verbosity) {
		want_verbosity = 0;
		log_set_level(log_level() >= LOG_DEBUG ? m->base_level : LOG_DEBUG);
		log_notice("log level now %s (SIGUSR2 switches it)",
		           log_level() >= LOG_DEBUG ? "debug" : "as started");
	}
	if (++m->ticks % FS_METRICS_INTERVAL_S)
		return;
	if (fs->opt.metrics_file) {
		int r = metrics_write_file(m->reg, fs->opt.metrics_file);

		if (r < 0 && m->ticks == FS_METRICS_INTERVAL_S)
			log_err("--metrics-file %s: cannot write it: %s", fs->opt.metrics_file,
			        strerror(-r));
	}
	if (fs->opt.log_metrics) {
		char line[3072];

		metrics_format_log(m->reg, line, sizeof(line));
		log_notice("metrics: %s", line);
	}
}

static struct metric *counter(struct fs_metrics *m, const char *name, const char *help)
{
	return metrics_counter(m->reg, name, help, NULL);
}

static struct metric *gauge(struct fs_metrics *m, const char *name, const char *help)
{
	return metrics_gauge(m->reg, name, help, NULL);
}

struct fs_metrics *fs_metrics_start(struct hpcops_fs *fs, struct metrics *reg)
{
	struct fs_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->fs = fs;
	m->reg = reg;
	m->base_level = log_level() >= LOG_DEBUG ? LOG_INFO : log_level();
	m->bytes_read = counter(m, "fs_bytes_read_total", "bytes read through the mount");
	m->bytes_written = counter(m, "fs_bytes_written_total", "bytes written through the mount");
	m->reads = counter(m, "fs_reads_total", "read requests answered");
	m->writes = counter(m, "fs_writes_total", "write requests accepted");
	m->created = counter(m, "fs_files_created_total", "files created");
	m->fetched =
	    counter(m, "fs_prefetch_bytes_fetched_total", "bytes fetched from S3 by reads");
	m->from_cache = counter(m, "fs_prefetch_bytes_from_cache_total",
	                        "bytes read from the block cache (--cache, --cache-xz)");
	m->delivered = counter(m, "fs_prefetch_bytes_delivered_total",
	                       "bytes handed to readers from fetched parts");
	m->shared = counter(m, "fs_prefetch_parts_shared_total",
	                    "parts a reader took from another reader's fetch of the same object");
	m->gets = counter(m, "fs_prefetch_gets_total", "ranged GETs sent for reads");
	m->cache_hits = counter(m, "fs_cache_hits_total", "block cache lookups that hit");
	m->cache_misses = counter(m, "fs_cache_misses_total", "block cache lookups that missed");
	m->shared_hits = counter(m, "fs_cache_shared_hits_total",
	                         "blocks read from the shared cache bucket (--cache-xz)");
	m->shared_misses = counter(m, "fs_cache_shared_misses_total",
	                           "blocks asked of the shared cache bucket and not served");
	m->shared_damaged = counter(m, "fs_cache_shared_damaged_total",
	                            "shared cache blocks that failed a check (not served)");
	m->shared_puts =
	    counter(m, "fs_cache_shared_puts_total", "blocks stored in the shared cache bucket");
	m->shared_put_failures = counter(m, "fs_cache_shared_put_failures_total",
	                                 "blocks the shared cache bucket did not store");
	m->shared_puts_skipped =
	    counter(m, "fs_cache_shared_puts_skipped_total",
	            "blocks not sent to the shared cache bucket (puts in flight, memory)");
	m->uploads_open = gauge(m, "fs_uploads_open", "files being written now");
	m->uploads_completed = counter(m, "fs_uploads_completed_total", "objects written");
	m->uploads_failed = counter(m, "fs_uploads_failed_total", "uploads that failed (aborted)");
	m->parts = counter(m, "fs_upload_parts_total", "multipart upload parts sent");
	m->budget_waits = counter(m, "fs_budget_waits_total",
	                          "times a writer waited on the memory budget (--memory-limit)");
	m->aborts_owed =
	    gauge(m, "fs_aborts_owed", "multipart uploads whose abort failed and is being retried");
	m->budget_used = gauge(m, "fs_memory_bytes", "bytes of the memory budget in use");
	m->budget_limit = gauge(m, "fs_memory_limit_bytes", "the memory budget (--memory-limit)");
	metric_gauge_set(m->budget_limit, (int64_t)budget_limit(fs->budget));
	if (fs->opt.prometheus_port > 0) {
		char why[256];
		int port = 0;

		m->server = metrics_server_start(reg, "127.0.0.1", fs->opt.prometheus_port, &port,
		                                 why, sizeof(why));
		if (!m->server) {
			fprintf(stderr, "hpcops-mount: --prometheus-port %d: %s\n",
			        fs->opt.prometheus_port, why);
			fs_metrics_stop(m);
			return NULL;
		}
		log_info("metrics on http://127.0.0.1:%d/metrics", port);
	}
	m->ticker = metrics_ticker_start(reg, 1.0, tick, m);
	if (!m->ticker) {
		fprintf(stderr, "hpcops-mount: cannot start the metrics thread\n");
		fs_metrics_stop(m);
		return NULL;
	}
	return m;
}

void fs_metrics_stop(struct fs_metrics *m)
{
	if (!m)
		return;
	metrics_ticker_stop(m->ticker);
	metrics_server_stop(m->server);
	if (m->fs->opt.metrics_file && m->fs->reads) {
		snapshot(m);
		metrics_write_file(m->reg, m->fs->opt.metrics_file);
	}
	free(m); /* not the registry: the engine counts in it until it stops */
}
