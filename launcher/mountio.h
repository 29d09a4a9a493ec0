/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mountio: what one job did through the bucket mount on its node, from the
 * mount's own counters. hpcops-mount --metrics-file PATH rewrites PATH
 * (atomically, every few seconds) in the Prometheus text format; the job
 * wrapper reads it before and after the workload and records the
 * difference. The parser is tolerant: it reads the four counters below,
 * summing their label sets, and skips any line it does not understand.
 * Nothing here allocates what the caller must free unless a comment says so.
 */
#ifndef HPCOPS_MOUNTIO_H
#define HPCOPS_MOUNTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

/** The metric names (counters) this module reads. */
#define MOUNTIO_BYTES_WRITTEN "hpcops_fs_bytes_written_total"
#define MOUNTIO_BYTES_READ    "hpcops_fs_bytes_read_total"
#define MOUNTIO_FILES_CREATED "hpcops_fs_files_created_total"
#define MOUNTIO_ERRORS        "hpcops_fs_errors_total" /* label errno="EIO" */

/** Bound on the errno labels kept. */
#define MOUNTIO_MAX_ERRNOS 32
/** Bound on the metrics file's size. */
#define MOUNTIO_MAX_FILE (4u << 20)

struct mountio_errno {
	char name[32]; /* "EIO", or "" for errors without an errno label */
	double count;
};

/** One reading of the counters. */
struct mountio_sample {
	bool found[4]; /* which of the four metrics the file had */
	double bytes_written;
	double bytes_read;
	double files_created;
	double errors;
	struct mountio_errno errnos[MOUNTIO_MAX_ERRNOS];
	size_t n_errnos;
	double mtime; /* of the file, seconds since the epoch */
};

/**
 * mountio_parse() - read the counters from Prometheus text @text (@len
 * bytes, need not be NUL-terminated) into @out (zeroed first). Returns the
 * number of samples of the four metrics found (0: none of them).
 */
int mountio_parse(const char *text, size_t len, struct mountio_sample *out);

/**
 * mountio_read() - mountio_parse() of the file @path. Returns 0, or -1
 * with errno set (ENOENT: no such file; EPROTO: none of the metrics in it).
 */
int mountio_read(const char *path, struct mountio_sample *out);

/**
 * mountio_wait_newer() - wait until @path was rewritten at or after @since
 * (its mtime, seconds since the epoch), at most @max_s seconds. Returns true
 * if it was.
 */
bool mountio_wait_newer(const char *path, double since, double max_s);

/**
 * mountio_delta_json() - the job record's "mount_io" object for @after
 * minus @before: bytes_written, bytes_read, files_created, errors,
 * errors_by_errno, exact, metrics_file, and note when @note is not NULL. A
 * counter that went down (the mount restarted) counts from zero and makes
 * the result inexact. New reference, NULL on ENOMEM.
 */
json_t *mountio_delta_json(const struct mountio_sample *before, const struct mountio_sample *after,
                           bool exact, const char *path, const char *note);

#endif
