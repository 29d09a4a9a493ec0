/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics: a thread-safe registry of counters, gauges and histograms, and the
 * ways operators collect them: Prometheus text format 0.0.4 (a string, a file
 * rewritten atomically for node_exporter's textfile collector, a loopback
 * HTTP endpoint) and one "name{labels}=value ..." line for the log.
 *
 * Ownership: the registry owns every handle it returns; a handle is valid
 * until metrics_free(). Handles may be used from any thread. Every metric_*
 * update accepts NULL (a no-op), so a caller without a registry or with a
 * failed registration needs no checks on its hot path.
 *
 * Cost: metric_add() and metric_gauge_*() are one relaxed atomic operation;
 * metric_observe() is a bucket search plus two relaxed atomics (lock-free).
 * Registration and lookup (metrics_counter() ...) take the registry lock:
 * look a handle up once and keep it where a series is hot.
 */
#ifndef HPCOPS_METRICS_H
#define HPCOPS_METRICS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Series bound: a registry keeps at most this many series (name + label set)
 * by default (metrics_new_limited() sets another). Past it, a new label set
 * of an existing family is counted in that family's overflow series,
 * labelled METRICS_OVERFLOW_LABELS, and a warning is logged once per family,
 * so a label with unbounded values cannot grow memory.
 */
#define METRICS_MAX_SERIES_DEFAULT 2000
#define METRICS_OVERFLOW_LABELS    "overflow=\"true\""
/* Distinct metric names (families) per registry; past it registration fails (NULL). */
#define METRICS_MAX_FAMILIES 256
/* Longest metric name (with the prefix) and label set accepted, in bytes. */
#define METRICS_MAX_NAME   128
#define METRICS_MAX_LABELS 1024
/* Most upper bounds a histogram may have (+Inf is implicit and not counted). */
#define METRICS_MAX_BUCKETS 64

/*
 * Default histogram bounds for latencies in seconds (time to first byte,
 * per-part upload latency): 1-2-5 steps from 1 ms to 30 s. A loopback
 * radosgw answers in 1-40 ms, AWS S3 in 10-200 ms, an 8 MiB part in
 * 0.1-5 s; past 30 s a request is stuck and the retry budget shows it.
 */
#define METRICS_LATENCY_NBOUNDS 15
extern const double metrics_latency_bounds[METRICS_LATENCY_NBOUNDS];

struct metrics; /* a registry */
struct metric;  /* one series: a counter, a gauge or a histogram */

/**
 * metrics_new() - an empty registry holding at most METRICS_MAX_SERIES_DEFAULT series.
 * @prefix: prepended with "_" to every metric name ("hpcops_fs" makes
 *          "hpcops_fs_reads_total"), or NULL/"" for none.
 * Returns the registry (free with metrics_free()), or NULL if out of memory or
 * @prefix is not a valid metric name.
 */
struct metrics *metrics_new(const char *prefix);

/** metrics_new_limited() - metrics_new() with a series bound of @max_series (>= 1). */
struct metrics *metrics_new_limited(const char *prefix, size_t max_series);

/**
 * metrics_free() - free the registry and every handle it returned. Stop the
 * server and tickers that use it first. NULL is a no-op.
 */
void metrics_free(struct metrics *m);

/**
 * metrics_counter() - the counter series @name{@labels}, created at 0 on first use.
 * @name:   metric name without the prefix, [a-zA-Z_:][a-zA-Z0-9_:]*; by
 *          Prometheus convention counters end in "_total".
 * @help:   one-line description for the HELP line (kept from the first
 *          registration of @name), or NULL.
 * @labels: NULL/"" or a label set as it would appear between braces:
 *          "op=\"GetObject\",status=\"200\"". Values escaped as in the
 *          exposition format (metrics_label_escape()); label names may not
 *          start with "__". Order does not matter: the same set in another
 *          order is the same series.
 * Returns the handle (owned by the registry; the same (name, labels) returns
 * the same handle), the family's overflow series past the series bound, or
 * NULL (and a warning) if @name or @labels is invalid or @name is already a
 * metric of another type.
 */
struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
                               const char *labels);

/** metrics_gauge() - as metrics_counter(), for a gauge (a signed value that goes up and down). */
struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
                             const char *labels);

/**
 * metrics_histogram() - as metrics_counter(), for a histogram.
 * @upper_bounds: @n finite, strictly increasing bucket upper bounds (a
 *                trailing +Inf is allowed and ignored: the +Inf bucket is
 *                always there); 1 <= @n <= METRICS_MAX_BUCKETS.
 *                metrics_latency_bounds is a good default for seconds. The
 *                array is copied. Every series of one name shares the bounds
 *                of its first registration; other bounds later are ignored
 *                with a warning. "le" is not allowed in @labels.
 */
struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                 const char *labels, const double *upper_bounds, size_t n);

/** metric_add() - add @n to a counter (relaxed atomic add). NULL or a non-counter: no-op. */
void metric_add(struct metric *c, uint64_t n);

/** metric_gauge_add() - add @delta (may be negative) to a gauge. NULL or a non-gauge: no-op. */
void metric_gauge_add(struct metric *g, int64_t delta);

/** metric_gauge_set() - set a gauge to @v. NULL or a non-gauge: no-op. */
void metric_gauge_set(struct metric *g, int64_t v);

/**
 * metric_observe() - count @v in a histogram: the first bucket whose upper
 * bound is >= @v (bounds are inclusive, as Prometheus defines them), and its
 * sum. Lock-free. NaN is ignored. NULL or a non-histogram: no-op.
 */
void metric_observe(struct metric *h, double v);

/** metric_counter_value() - a counter's value now (0 for NULL or a non-counter). */
uint64_t metric_counter_value(const struct metric *c);

/** metric_gauge_value() - a gauge's value now (0 for NULL or a non-gauge). */
int64_t metric_gauge_value(const struct metric *g);

/**
 * metric_histogram_value() - a histogram's observation count and sum now
 * (0 and 0.0 for NULL or a non-histogram). Either pointer may be NULL.
 * Observations racing with the call may be in the count and not yet in the
 * sum (or the reverse); each is exact once they finish.
 */
void metric_histogram_value(const struct metric *h, uint64_t *count, double *sum);

/**
 * metrics_label_escape() - escape @value for use between the quotes of a
 * label value: backslash -> \\, double quote -> \", newline -> \n. Bytes
 * that are not valid UTF-8 (Prometheus refuses a scrape that has them) are
 * each replaced by U+FFFD.
 * @out, @len: the caller's buffer; always NUL-terminated when @len > 0.
 * Returns the length written (without the NUL), or -1 if @out is too small
 * (it then holds "").
 */
int metrics_label_escape(const char *value, char *out, size_t len);

/**
 * metrics_format_prometheus() - the registry in Prometheus text format 0.0.4:
 * per metric name a "# HELP" (when it has help) and a "# TYPE" line, then
 * its series; a histogram as cumulative NAME_bucket{...,le="B"} lines ending
 * with le="+Inf", NAME_sum and NAME_count (equal to the +Inf bucket).
 * Names in registration order; numbers in the C locale.
 * @out: set to a NUL-terminated malloc'd string; the caller frees it.
 * @len: if not NULL, set to strlen(*out).
 * Returns 0, or -ENOMEM (*out is then NULL).
 */
int metrics_format_prometheus(struct metrics *m, char **out, size_t *len);

/**
 * metrics_write_file() - write metrics_format_prometheus() to @path
 * atomically: a hidden temp file in the same directory (".NAME.XXXXXX", so a
 * textfile collector that reads only *.prom skips it), mode 0644, fsync,
 * then rename over @path. A reader sees the old file or the new one, never
 * part of one. Returns 0, or -errno (the temp file is then removed).
 */
int metrics_write_file(struct metrics *m, const char *path);

/**
 * metrics_format_log() - one log line of what is non-zero: counters and
 * gauges as "name{labels}=value" and histograms with observations as
 * "name_count{labels}=N name_sum{labels}=S", space-separated, names without
 * the registry prefix, in registration order. No trailing newline.
 * @buf, @len: the caller's buffer; always NUL-terminated when @len > 0. When
 *             the line does not fit, @buf holds as many whole items as fit.
 * Returns the length of the whole line (as snprintf: >= @len means it was
 * cut), or -1 for bad arguments.
 */
int metrics_format_log(struct metrics *m, char *buf, size_t len);

/* HTTP endpoint defaults (struct metrics_server_limits) */
#define METRICS_SERVER_TIMEOUT_S       5     /* an idle connection is closed after this */
#define METRICS_SERVER_MAX_CONNECTIONS 16    /* more are refused until one closes */
#define METRICS_SERVER_MAX_REQUEST     16384 /* request line + headers, bytes */

struct metrics_server_limits {
	unsigned timeout_s;       /* 0: METRICS_SERVER_TIMEOUT_S */
	unsigned max_connections; /* 0: METRICS_SERVER_MAX_CONNECTIONS */
	size_t max_request;       /* 0: METRICS_SERVER_MAX_REQUEST */
};

struct metrics_server;

/**
 * metrics_server_start() - serve @m over HTTP/1.1 on @addr:@port from one
 * background thread (libmicrohttpd, event-driven: no thread per connection,
 * so a slow client holds only its own connection, and only until the
 * timeout). GET or HEAD /metrics answers 200 with the text of
 * metrics_format_prometheus() and "Content-Type: text/plain; version=0.0.4;
 * charset=utf-8"; another path answers 404, another method 405.
 * @addr:     a numeric IPv4 or IPv6 address, e.g. "127.0.0.1" (loopback is
 *            what the mount uses; the caller chooses).
 * @port:     the TCP port, or 0 to let the kernel pick one.
 * @port_out: if not NULL, set to the port bound.
 * @why:      if not NULL, set to a one-line reason on failure.
 * The thread starts with every signal blocked, so it never takes the
 * program's signals (SIGUSR1, SIGTERM, ...).
 * Returns the server (stop with metrics_server_stop()), or NULL.
 */
struct metrics_server *metrics_server_start(struct metrics *m, const char *addr, int port,
                                            int *port_out, char *why, size_t why_len);

/** metrics_server_start_limits() - metrics_server_start() with other limits (NULL: defaults). */
struct metrics_server *metrics_server_start_limits(struct metrics *m, const char *addr, int port,
                                                   const struct metrics_server_limits *limits,
                                                   int *port_out, char *why, size_t why_len);

/** metrics_server_stop() - close every connection, join the thread, free @s. NULL is a no-op. */
void metrics_server_stop(struct metrics_server *s);

struct metrics_ticker;

/**
 * metrics_ticker_start() - a background thread calling @tick(@user) every
 * @interval_s seconds (first call one interval after the start; on a
 * monotonic clock; a tick that overruns delays the next, never doubles it).
 * @m is not used by the ticker itself; it names the registry @tick works on.
 * @tick runs with every signal blocked (the thread never takes the
 * program's signals).
 * Returns the ticker (stop with metrics_ticker_stop()), or NULL if
 * @interval_s is not a positive finite number or the thread could not start.
 */
struct metrics_ticker *metrics_ticker_start(struct metrics *m, double interval_s,
                                            void (*tick)(void *user), void *user);

/**
 * metrics_ticker_stop() - wake the thread, wait for a tick in progress to
 * return, join it and free @t. Must not be called from @tick. NULL is a no-op.
 */
void metrics_ticker_stop(struct metrics_ticker *t);

#endif
