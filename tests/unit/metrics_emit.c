/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics_emit: a registry with awkward label values (quotes, backslashes,
 * newlines, UTF-8, a byte that is not UTF-8), written the three ways the
 * mount exposes metrics, for test_metrics_parse.py to read with
 * prometheus_client's parser. Usage: metrics_emit FILE
 * Writes FILE (metrics_write_file), starts the HTTP endpoint on 127.0.0.1,
 * prints "PORT\nLOGLINE\n", and serves until stdin is closed.
 */
#include "metrics.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const values[] = {
    "plain",
    "back\\slash",
    "say \"hi\"",
    "two\nlines",
    "d\xC3\xA9j\xC3\xA0 vu \xF0\x9D\x84\x9E",
    "bad\xFF"
    "byte",
    "",
};

int main(int argc, char **argv)
{
	struct metrics *m = metrics_new("hpcops_fs");
	struct metrics_server *s;
	static const double b[] = {0.5, 1, 2.5};
	char why[256], line[4096], esc[256], labels[300];
	int port = 0, ret = 1;

	if (argc != 2 || !m) {
		fprintf(stderr, "usage: metrics_emit FILE\n");
		return 2;
	}
	log_init(LOG_DEST_STDERR, NULL, "metrics_emit", LOG_WARNING);
	metric_add(metrics_counter(m, "read_bytes_total", "Bytes read through the mount", NULL),
	           1048576);
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		if (metrics_label_escape(values[i], esc, sizeof(esc)) < 0)
			goto out;
		snprintf(labels, sizeof(labels), "key=\"%s\",n=\"%zu\"", esc, i);
		metric_add(metrics_counter(m, "errors_total", "Errors by key\\and \"kind\"\nline 2",
		                           labels),
		           i + 1);
	}
	metric_gauge_set(metrics_gauge(m, "uploads_open", "Uploads open", NULL), -3);
	metric_gauge_set(metrics_gauge(m, "budget_bytes", NULL, NULL), 0);
	for (int i = 0; i < 10; i++)
		metric_observe(metrics_histogram(m, "ttfb_seconds", "Time to first byte",
		                                 "op=\"GetObject\"", metrics_latency_bounds,
		                                 METRICS_LATENCY_NBOUNDS),
		               0.003 * i);
	metric_observe(metrics_histogram(m, "part_seconds", NULL, NULL, b, 3), 3);
	metric_observe(metrics_histogram(m, "part_seconds", NULL, NULL, b, 3), 0.5);
	metrics_histogram(m, "idle_seconds", "Never observed", NULL, b, 3);

	if (metrics_write_file(m, argv[1]) < 0)
		goto out;
	s = metrics_server_start(m, "127.0.0.1", 0, &port, why, sizeof(why));
	if (!s) {
		fprintf(stderr, "metrics_emit: %s\n", why);
		goto out;
	}
	metrics_format_log(m, line, sizeof(line));
	printf("%d\n%s\n", port, line);
	fflush(stdout);
	while (read(0, line, sizeof(line)) > 0)
		;
	metrics_server_stop(s);
	ret = 0;
out:
	metrics_free(m);
	return ret;
}
