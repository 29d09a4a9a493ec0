/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fs_metrics: what an operator sees of a mount from outside. One registry
 * (shared/metrics.h, prefix "hpcops") holds the filesystem's series
 * (hpcops_fs_*: bytes read and written, files created, errors by errno,
 * reads and writes, prefetch bytes fetched / delivered / shared, cache
 * hits and misses, memory budget in use, budget waits, uploads open /
 * completed / failed, aborts owed) and the transfer engine's
 * (hpcops_s3_*: requests by operation and status, retries, throttles,
 * requests in flight, request time and time to first byte). They are
 * exposed as --metrics-file (rewritten atomically every few seconds, for
 * node_exporter's textfile collector), --prometheus-port (a loopback HTTP
 * endpoint) and --log-metrics (a line in the log every few seconds, as
 * mount-s3). SIGUSR1 logs a one-line status; SIGUSR2 switches the log
 * between its level and debug.
 */
#ifndef HPCOPS_FS_METRICS_H
#define HPCOPS_FS_METRICS_H

#include <stdint.h>

struct hpcops_fs;
struct metrics;
struct fs_metrics;

/** Seconds between rewrites of --metrics-file and --log-metrics lines. */
#define FS_METRICS_INTERVAL_S 5

/** fs_metrics_registry_new() - the registry the engine and the mount count in. NULL on ENOMEM. */
struct metrics *fs_metrics_registry_new(void);

/**
 * fs_metrics_start() - register the filesystem's series in @reg (the
 * caller's, freed after the transfer engine that counts in it) and start what the options ask: the
 * ticker (1 s: snapshots of the modules' counters, signals, the file, the log line) and the HTTP
 * endpoint. Returns NULL with a message printed (a port in use, say). Stop with fs_metrics_stop().
 */
struct fs_metrics *fs_metrics_start(struct hpcops_fs *fs, struct metrics *reg);

/**
 * fs_metrics_stop() - stop the ticker and the endpoint, write the file a last
 * time, free (not the registry).
 */
void fs_metrics_stop(struct fs_metrics *m);

/* Counted on the request path (the FUSE adapter); each is a relaxed atomic add. */
void fs_metrics_read(struct fs_metrics *m, uint64_t bytes);
void fs_metrics_write(struct fs_metrics *m, uint64_t bytes);
void fs_metrics_created(struct fs_metrics *m);
void fs_metrics_error(struct fs_metrics *m, const char *op, int err);

/** fs_metrics_install_signals() - SIGUSR1 (status line) and SIGUSR2 (debug on/off). */
void fs_metrics_install_signals(void);

#endif
