/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_metrics: the metrics registry and its exposition. Counts from several
 * threads add up exactly; the text passes a strict Prometheus 0.0.4 checker
 * (below) and matches golden text; label escaping; cumulative buckets; the
 * series bound; the file is replaced atomically under a reader; the HTTP
 * endpoint over real loopback sockets, with a slow client; the ticker.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "metrics.h"
#include "log.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- a strict checker for Prometheus text format 0.0.4 ---- */

/*
 * Stricter than the format: what this writer never emits (comments other
 * than HELP/TYPE, blank lines, timestamps, untyped samples, a family split
 * in two, series out of order in a histogram) is an error too.
 */
struct chk_hist {
	char key[1200]; /* labels without le */
	double last_le;
	double last_cum;
	double inf;
	bool has_inf, has_sum, has_count;
};

struct chk {
	char fam[160];
	char type[16];
	bool fam_help, fam_type, fam_samples;
	char seen_fams[512][160];
	size_t nseen;
	char (*series)[1400];
	size_t nseries;
	struct chk_hist hist[256];
	size_t nhist;
	char err[256];
};

static bool chk_fail(struct chk *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool chk_fail(struct chk *c, int line, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(c->err, sizeof(c->err), "line %d: ", line);

	va_start(ap, fmt);
	vsnprintf(c->err + n, sizeof(c->err) - (size_t)n, fmt, ap);
	va_end(ap);
	return false;
}

static size_t chk_name(const char *s, bool colon)
{
	size_t i = 0;

	while ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_' ||
	       (colon && s[i] == ':') || (i > 0 && s[i] >= '0' && s[i] <= '9'))
		i++;
	return i;
}

static bool chk_utf8(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t k = c < 0x80         ? 1
		           : (c >> 5) == 6  ? 2
		           : (c >> 4) == 14 ? 3
		           : (c >> 3) == 30 ? 4
		                            : 0;
		uint32_t cp = k == 1 ? c : k == 2 ? (c & 0x1f) : k == 3 ? (c & 0x0f) : (c & 0x07);

		if (k == 0 || i + k > n)
			return false;
		for (size_t j = 1; j < k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k;
	}
	return true;
}

static bool chk_number(const char *s, double *v)
{
	char *end;

	if (!strcmp(s, "+Inf")) {
		*v = INFINITY;
		return true;
	}
	if (!strcmp(s, "-Inf")) {
		*v = -INFINITY;
		return true;
	}
	if (!strcmp(s, "NaN")) {
		*v = NAN;
		return true;
	}
	if (!*s || strchr(s, ' ') || !strpbrk(s, "0123456789") || strpbrk(s, "xXpP") ||
	    !strncasecmp(s, "inf", 3) || !strncasecmp(s, "nan", 3))
		return false;
	errno = 0;
	*v = strtod(s, &end);
	return *end == '\0' && errno == 0;
}

static bool chk_line(struct chk *c, int ln, char *line)
{
	char name[160], labels[1200] = "", nole[1200] = "", lenames[32][64], *p = line;
	size_t nl = 0, nlab = 0;
	double value, le = NAN;
	bool has_le = false;

	if (!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7)) {
		bool help = line[2] == 'H';
		size_t n = chk_name(line + 7, true);

		if (n == 0 || n >= sizeof(name) || line[7 + n] != ' ')
			return chk_fail(c, ln, "bad metric name in %.6s", line);
		memcpy(name, line + 7, n);
		name[n] = '\0';
		if (strcmp(name, c->fam)) {
			for (size_t i = 0; i < c->nseen; i++)
				if (!strcmp(c->seen_fams[i], name))
					return chk_fail(c, ln, "%s appears in two places", name);
			snprintf(c->fam, sizeof(c->fam), "%s", name);
			snprintf(c->seen_fams[c->nseen++], sizeof(c->seen_fams[0]), "%s", name);
			c->fam_help = c->fam_type = c->fam_samples = false;
			c->type[0] = '\0';
		}
		if (c->fam_samples)
			return chk_fail(c, ln, "HELP/TYPE after samples of %s", name);
		p = line + 7 + n + 1;
		if (help) {
			if (c->fam_help)
				return chk_fail(c, ln, "second HELP for %s", name);
			c->fam_help = true;
			for (; *p; p++)
				if (*p == '\\' && p[1] != '\\' && p[1] != 'n')
					return chk_fail(c, ln, "bad escape in HELP");
				else if (*p == '\\')
					p++;
			return chk_utf8((unsigned char *)line, strlen(line)) ||
			       chk_fail(c, ln, "HELP is not UTF-8");
		}
		if (c->fam_type)
			return chk_fail(c, ln, "second TYPE for %s", name);
		if (strcmp(p, "counter") && strcmp(p, "gauge") && strcmp(p, "histogram") &&
		    strcmp(p, "summary") && strcmp(p, "untyped"))
			return chk_fail(c, ln, "unknown type \"%s\"", p);
		c->fam_type = true;
		snprintf(c->type, sizeof(c->type), "%s", p);
		return true;
	}
	if (line[0] == '#' || line[0] == '\0')
		return chk_fail(c, ln, "comment or blank line (never written)");

	/* a sample: name[{labels}] value */
	nl = chk_name(line, true);
	if (nl == 0 || nl >= sizeof(name))
		return chk_fail(c, ln, "bad sample name");
	memcpy(name, line, nl);
	name[nl] = '\0';
	p = line + nl;
	if (*p == '{') {
		char *start = ++p;

		while (*p != '}') {
			size_t n = chk_name(p, false);
			char *v;

			if (n == 0 || n >= sizeof(lenames[0]))
				return chk_fail(c, ln, "bad label name");
			if (n >= 2 && p[0] == '_' && p[1] == '_')
				return chk_fail(c, ln, "reserved label name");
			if (nlab == 32)
				return chk_fail(c, ln, "too many labels");
			memcpy(lenames[nlab], p, n);
			lenames[nlab][n] = '\0';
			for (size_t i = 0; i < nlab; i++)
				if (!strcmp(lenames[i], lenames[nlab]))
					return chk_fail(c, ln, "label %s twice", lenames[nlab]);
			nlab++;
			p += n;
			if (p[0] != '=' || p[1] != '"')
				return chk_fail(c, ln, "label without =\"");
			v = p += 2;
			while (*p && *p != '"') {
				if (*p == '\\') {
					if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
						return chk_fail(c, ln, "bad escape in label value");
					p++;
				}
				p++;
			}
			if (*p != '"')
				return chk_fail(c, ln, "unterminated label value");
			if (!chk_utf8((unsigned char *)v, (size_t)(p - v)))
				return chk_fail(c, ln, "label value is not UTF-8");
			if (!strcmp(lenames[nlab - 1], "le")) {
				char lev[64];

				snprintf(lev, sizeof(lev), "%.*s", (int)(p - v), v);
				if (!chk_number(lev, &le))
					return chk_fail(c, ln, "le=\"%s\" is not a number", lev);
				has_le = true;
			} else {
				size_t o = strlen(nole);

				snprintf(nole + o, sizeof(nole) - o, "%s%.*s", o ? "," : "",
				         (int)(p + 1 - (v - n - 2)), v - n - 2);
			}
			p++;
			if (*p == ',')
				p++;
			else if (*p != '}')
				return chk_fail(c, ln, "labels not separated by a comma");
		}
		snprintf(labels, sizeof(labels), "%.*s", (int)(p - start), start);
		p++;
	}
	if (*p != ' ')
		return chk_fail(c, ln, "no space before the value");
	p++;
	if (strchr(p, ' '))
		return chk_fail(c, ln, "a timestamp (never written) or trailing space");
	if (!chk_number(p, &value))
		return chk_fail(c, ln, "value \"%s\" is not a number", p);

	/* the sample belongs to the family whose TYPE came just before */
	if (!c->fam_type)
		return chk_fail(c, ln, "sample %s without a TYPE line", name);
	if (!strcmp(c->type, "histogram")) {
		size_t fl = strlen(c->fam);
		const char *suffix = name + fl;
		struct chk_hist *h = NULL;

		if (strncmp(name, c->fam, fl) ||
		    (strcmp(suffix, "_bucket") && strcmp(suffix, "_sum") &&
		     strcmp(suffix, "_count")))
			return chk_fail(c, ln, "%s is not a sample of histogram %s", name, c->fam);
		if (!strcmp(suffix, "_bucket") != has_le)
			return chk_fail(c, ln, "le on a non-bucket or a bucket without le");
		for (size_t i = 0; i < c->nhist; i++)
			if (!strcmp(c->hist[i].key, c->fam) &&
			    !strcmp(c->hist[i].key + strlen(c->fam) + 1, nole))
				h = &c->hist[i];
		if (!h) {
			if (c->nhist == 256 || strcmp(suffix, "_bucket"))
				return chk_fail(c, ln, "%s before its buckets", name);
			h = &c->hist[c->nhist++];
			memset(h, 0, sizeof(*h));
			memcpy(h->key, c->fam, fl + 1);
			snprintf(h->key + fl + 1, sizeof(h->key) - fl - 1, "%s", nole);
			h->last_le = -INFINITY;
		}
		if (!strcmp(suffix, "_bucket")) {
			if (h->has_inf || h->has_sum || h->has_count)
				return chk_fail(c, ln, "bucket after +Inf, _sum or _count");
			if (!(le > h->last_le))
				return chk_fail(c, ln, "le not increasing");
			if (value < h->last_cum || value != floor(value))
				return chk_fail(c, ln, "bucket counts not cumulative integers");
			h->last_le = le;
			h->last_cum = value;
			if (isinf(le)) {
				h->has_inf = true;
				h->inf = value;
			}
		} else if (!strcmp(suffix, "_sum")) {
			if (!h->has_inf || h->has_sum)
				return chk_fail(c, ln, "_sum before +Inf or twice");
			h->has_sum = true;
		} else {
			if (!h->has_sum || h->has_count)
				return chk_fail(c, ln, "_count before _sum or twice");
			if (value != h->inf)
				return chk_fail(c, ln, "_count %g != +Inf bucket %g", value,
				                h->inf);
			h->has_count = true;
		}
	} else {
		if (strcmp(name, c->fam))
			return chk_fail(c, ln, "%s is not a sample of %s", name, c->fam);
		if (!strcmp(c->type, "counter") && !(value >= 0))
			return chk_fail(c, ln, "negative counter");
	}
	c->fam_samples = true;

	/* no series twice (labels in the order written: this writer sorts them) */
	{
		char key[1400];

		snprintf(key, sizeof(key), "%s{%s}", name, labels);
		for (size_t i = 0; i < c->nseries; i++)
			if (!strcmp(c->series[i], key))
				return chk_fail(c, ln, "series %s twice", key);
		c->series = realloc(c->series, (c->nseries + 1) * sizeof(*c->series));
		assert_non_null(c->series);
		memcpy(c->series[c->nseries++], key, sizeof(key));
	}
	return true;
}

/* NULL if @text is valid, else the first error ("line N: ..."), in a static buffer. */
static const char *prom_check(const char *text)
{
	static char err[256];
	struct chk *c = calloc(1, sizeof(*c));
	char *copy = strdup(text), *line, *end;
	size_t len = strlen(text);
	bool ok = true;
	int ln = 0;

	assert_non_null(c);
	assert_non_null(copy);
	if (len > 0 && text[len - 1] != '\n') {
		snprintf(c->err, sizeof(c->err), "no newline at the end");
		ok = false;
	}
	for (line = copy; ok && *line; line = end + 1) {
		end = strchr(line, '\n');
		if (!end)
			break; /* the unterminated last line was reported above */
		*end = '\0';
		ok = chk_line(c, ++ln, line);
	}
	for (size_t i = 0; ok && i < c->nhist; i++)
		if (!c->hist[i].has_count) {
			snprintf(c->err, sizeof(c->err), "histogram %.100s{%.100s} without _count",
			         c->hist[i].key, c->hist[i].key + strlen(c->hist[i].key) + 1);
			ok = false;
		}
	snprintf(err, sizeof(err), "%s", c->err);
	free(c->series);
	free(c);
	free(copy);
	return ok ? NULL : err;
}

/* The value of the sample line "@series VALUE" in @text, NAN if there is none. */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, series, n) && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return NAN;
}

static char *format(struct metrics *m)
{
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(metrics_format_prometheus(m, &text, &len), 0);
	assert_non_null(text);
	assert_int_equal(len, strlen(text));
	return text;
}

/* The checker must catch what it is for, or its passes mean nothing. */
static void test_checker_rejects(void **state)
{
	static const char *bad[] = {
	    "a 1\n",                                                     /* no TYPE */
	    "# TYPE a counter\na 1",                                     /* no final newline */
	    "# TYPE a counter\na{b=\"c} 1\n",                            /* unterminated */
	    "# TYPE a counter\na{b=\"\\q\"} 1\n",                        /* bad escape */
	    "# TYPE a counter\na{b=\"\xff\"} 1\n",                       /* not UTF-8 */
	    "# TYPE a counter\na{b=\"1\",b=\"2\"} 1\n",                  /* label twice */
	    "# TYPE a counter\na 1\na 2\n",                              /* series twice */
	    "# TYPE a counter\na one\n",                                 /* value */
	    "# TYPE a counter\na 1 123\n",                               /* timestamp */
	    "# TYPE a counter\na -1\n",                                  /* negative counter */
	    "# TYPE a counter\n# TYPE b gauge\nb 1\n# TYPE a counter\n", /* split */
	    "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\n"
	    "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",                  /* not cumulative */
	    "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", /* no +Inf */
	    "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n", /* count */
	    "# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n"
	    "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", /* le order */
	    "# TYPE a counter\n\na 1\n",                     /* blank line */
	};
	static const char *good = "# HELP a x\\ny \\\\\n# TYPE a counter\na{b=\"\\\"\\n\\\\\"} 1\n"
	                          "# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\n"
	                          "h_bucket{le=\"+Inf\"} 2\nh_sum 3.5\nh_count 2\n";

	assert_null(prom_check(good));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (!prom_check(bad[i]))
			fail_msg("the checker accepted bad text %zu:\n%s", i, bad[i]);
	}
}

/* ---- registry ---- */

/*
 * Lost updates only show when threads run at once. On a shared 2-core
 * machine a fixed count can finish within one time slice, so each phase runs
 * for a fixed time on every thread (the same deadline for all) and the
 * threads count what they did themselves.
 */
#define NTHREADS 4
#define PHASE_S  0.15

struct thread_arg {
	struct metrics *m;
	struct metric *c, *g, *h, *labelled;
	double deadline[3];
	uint64_t adds, observes, mixed; /* what this thread did */
	atomic_bool *stop;
};

static void *adder(void *p)
{
	struct thread_arg *a = p;
	struct metric *mine;

	/* every thread registers the same series: one handle for all */
	a->labelled =
	    metrics_counter(a->m, "requests_total", "requests", "status=\"200\",op=\"GetObject\"");
	mine = a->labelled;
	while (now_s() < a->deadline[0]) /* the hot path alone */
		for (int i = 0; i < 1024; i++, a->adds++)
			metric_add(a->c, 1);
	while (now_s() < a->deadline[1])
		for (int i = 0; i < 1024; i++, a->observes++)
			metric_observe(a->h, 0.25);
	while (now_s() < a->deadline[2])
		for (int i = 0; i < 1024; i++, a->mixed++) {
			metric_add(mine, 3);
			metric_gauge_add(a->g, 1);
			metric_gauge_add(a->g, -1);
		}
	return NULL;
}

static void *formatter(void *p)
{
	struct thread_arg *a = p;

	while (!atomic_load(a->stop)) {
		char *text = format(a->m);

		free(text);
	}
	return NULL;
}

static void test_threads_add_exactly(void **state)
{
	struct metrics *m = metrics_new("hpcops_fs");
	struct thread_arg a[NTHREADS], fa;
	pthread_t th[NTHREADS], ft;
	atomic_bool stop = false;
	uint64_t count, adds = 0, observes = 0, mixed = 0;
	double sum, t0 = now_s();
	char *text;

	assert_non_null(m);
	for (int i = 0; i < NTHREADS; i++) {
		a[i] = (struct thread_arg){.m = m, .stop = &stop};
		for (int k = 0; k < 3; k++)
			a[i].deadline[k] = t0 + PHASE_S * (k + 1);
		a[i].c = metrics_counter(m, "reads_total", "FUSE reads", NULL);
		a[i].g = metrics_gauge(m, "in_flight", "requests in flight", NULL);
		a[i].h = metrics_histogram(m, "ttfb_seconds", "time to first byte", NULL,
		                           metrics_latency_bounds, METRICS_LATENCY_NBOUNDS);
	}
	fa = a[0];
	assert_int_equal(pthread_create(&ft, NULL, formatter, &fa), 0);
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, adder, &a[i]), 0);
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		adds += a[i].adds;
		observes += a[i].observes;
		mixed += a[i].mixed;
	}
	atomic_store(&stop, true);
	pthread_join(ft, NULL);
	print_message("    %" PRIu64 " adds, %" PRIu64 " observations, %" PRIu64
	              " mixed rounds from %d threads\n",
	              adds, observes, mixed, NTHREADS);

	for (int i = 1; i < NTHREADS; i++)
		assert_ptr_equal(a[i].labelled, a[0].labelled);
	assert_int_equal(metric_counter_value(a[0].c), adds);
	assert_int_equal(metric_counter_value(a[0].labelled), mixed * 3);
	assert_int_equal(metric_gauge_value(a[0].g), 0);
	metric_histogram_value(a[0].h, &count, &sum);
	assert_int_equal(count, observes);
	assert_true(sum == 0.25 * (double)observes); /* every partial sum is exact in binary */

	text = format(m);
	assert_null(prom_check(text));
	assert_true(sample(text, "hpcops_fs_reads_total") == (double)adds);
	assert_true(sample(text, "hpcops_fs_requests_total{op=\"GetObject\",status=\"200\"}") ==
	            (double)mixed * 3);
	assert_true(sample(text, "hpcops_fs_ttfb_seconds_count") == (double)observes);
	assert_true(sample(text, "hpcops_fs_ttfb_seconds_bucket{le=\"0.2\"}") == 0);
	assert_true(sample(text, "hpcops_fs_ttfb_seconds_bucket{le=\"0.5\"}") == (double)observes);
	free(text);
	metrics_free(m);
}

static void test_handles_and_validation(void **state)
{
	struct metrics *m = metrics_new("t");
	struct metric *a, *b, *g;
	static const char *bad_labels[] = {
	    "op=GetObject", "op=\"x",         "__x=\"1\"", "a=\"1\",a=\"2\"",  "a=\"\\q\"",
	    "a=\"x\ny\"",   "a=\"\xff\"",     "a=\"1\",",  "a=\"1\" ,b=\"2\"", "1a=\"1\"",
	    "a:b=\"1\"",    "a=\"1\"b=\"2\"", "=\"1\"",    ",a=\"1\"",
	};
	static const double inc[] = {1, 2}, flat[] = {1, 1}, nan_b[] = {NAN};
	char *text;

	assert_non_null(m);
	a = metrics_counter(m, "req_total", "help", "op=\"Get\",status=\"200\"");
	assert_non_null(a);
	assert_ptr_equal(metrics_counter(m, "req_total", NULL, "op=\"Get\",status=\"200\""), a);
	/* the same set in another order is the same series */
	assert_ptr_equal(metrics_counter(m, "req_total", NULL, "status=\"200\",op=\"Get\""), a);
	b = metrics_counter(m, "req_total", NULL, "op=\"Put\",status=\"200\"");
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_ptr_equal(metrics_counter(m, "plain_total", NULL, NULL),
	                 metrics_counter(m, "plain_total", NULL, ""));

	for (size_t i = 0; i < sizeof(bad_labels) / sizeof(bad_labels[0]); i++)
		if (metrics_counter(m, "x_total", NULL, bad_labels[i]))
			fail_msg("label set %zu accepted: %s", i, bad_labels[i]);
	assert_null(metrics_counter(m, "1abc", NULL, NULL));
	assert_null(metrics_counter(m, "a-b", NULL, NULL));
	assert_null(metrics_counter(m, "", NULL, NULL));
	assert_null(metrics_counter(NULL, "a", NULL, NULL));
	assert_null(metrics_counter(m, NULL, NULL, NULL));

	/* one name, one type */
	assert_null(metrics_gauge(m, "req_total", NULL, "op=\"Get\",status=\"200\""));
	assert_null(metrics_gauge(m, "req_total", NULL, "op=\"New\""));
	g = metrics_gauge(m, "level", NULL, NULL);
	assert_non_null(g);
	assert_null(metrics_histogram(m, "level", NULL, "x=\"1\"", inc, 2));

	/* histogram bounds and the reserved le */
	assert_null(metrics_histogram(m, "h1", NULL, NULL, flat, 2));
	assert_null(metrics_histogram(m, "h2", NULL, NULL, nan_b, 1));
	assert_null(metrics_histogram(m, "h3", NULL, NULL, inc, 0));
	assert_null(metrics_histogram(m, "h4", NULL, NULL, NULL, 2));
	assert_null(metrics_histogram(m, "h5", NULL, "le=\"1\"", inc, 2));
	assert_non_null(metrics_histogram(m, "h6", NULL, "le_not=\"1\"", inc, 2));

	/* updates of the wrong kind or on NULL change nothing and do not crash */
	metric_add(NULL, 1);
	metric_gauge_add(NULL, 1);
	metric_gauge_set(NULL, 1);
	metric_observe(NULL, 1);
	metric_add(g, 5);
	metric_observe(g, 5);
	metric_gauge_add(a, 5);
	metric_gauge_set(a, 5);
	assert_int_equal(metric_gauge_value(g), 0);
	assert_int_equal(metric_counter_value(a), 0);
	metric_gauge_set(g, -7);
	metric_gauge_add(g, 2);
	assert_int_equal(metric_gauge_value(g), -5);

	text = format(m);
	assert_null(prom_check(text));
	assert_non_null(strstr(text, "t_req_total{op=\"Get\",status=\"200\"} 0\n"));
	assert_non_null(strstr(text, "t_level -5\n"));
	assert_null(strstr(text, "x_total"));
	free(text);
	metrics_free(m);

	/* the prefix must be a name itself; none is fine */
	assert_null(metrics_new("bad prefix"));
	assert_null(metrics_new_limited("ok", 0));
	m = metrics_new(NULL);
	assert_non_null(m);
	metric_add(metrics_counter(m, "bare_total", NULL, NULL), 2);
	text = format(m);
	assert_string_equal(text, "# TYPE bare_total counter\nbare_total 2\n");
	free(text);
	metrics_free(m);
	metrics_free(NULL);
}

static void test_label_escape(void **state)
{
	char out[64];

	assert_int_equal(metrics_label_escape("plain", out, sizeof(out)), 5);
	assert_string_equal(out, "plain");
	assert_int_equal(metrics_label_escape("a\\b\"c\nd", out, sizeof(out)), 10);
	assert_string_equal(out, "a\\\\b\\\"c\\nd");
	assert_int_equal(metrics_label_escape("", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	/* UTF-8 passes as it is */
	assert_int_equal(
	    metrics_label_escape("d\xC3\xA9j\xC3\xA0 \xF0\x9D\x84\x9E", out, sizeof(out)), 11);
	assert_string_equal(out, "d\xC3\xA9j\xC3\xA0 \xF0\x9D\x84\x9E");
	/* what is not UTF-8 becomes U+FFFD, byte by byte */
	metrics_label_escape("a\xFF"
	                     "b",
	                     out, sizeof(out));
	assert_string_equal(out, "a\xEF\xBF\xBD"
	                         "b");
	metrics_label_escape("\xC0\xAF", out, sizeof(out)); /* overlong '/' */
	assert_string_equal(out, "\xEF\xBF\xBD\xEF\xBF\xBD");
	metrics_label_escape("x\xE2\x82", out, sizeof(out)); /* cut short */
	assert_string_equal(out, "x\xEF\xBF\xBD\xEF\xBF\xBD");
	metrics_label_escape("\xED\xA0\x80", out, sizeof(out)); /* a surrogate */
	assert_string_equal(out, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
	/* too small: -1 and "" (never half a value) */
	assert_int_equal(metrics_label_escape("abc", out, 4), 3);
	assert_int_equal(metrics_label_escape("abcd", out, 4), -1);
	assert_string_equal(out, "");
	assert_int_equal(metrics_label_escape("a\"", out, 3), -1); /* the escape needs 2 */
	assert_int_equal(metrics_label_escape("x", out, 0), -1);
	assert_int_equal(metrics_label_escape(NULL, out, sizeof(out)), 0);

	/* an escaped value is a valid label value, written as given */
	{
		struct metrics *m = metrics_new("t");
		char labels[128], *text;

		assert_true(metrics_label_escape("say \"hi\"\\\n\xFF", out, sizeof(out)) > 0);
		snprintf(labels, sizeof(labels), "key=\"%s\"", out);
		metric_add(metrics_counter(m, "e_total", NULL, labels), 1);
		text = format(m);
		assert_null(prom_check(text));
		assert_non_null(
		    strstr(text, "t_e_total{key=\"say \\\"hi\\\"\\\\\\n\xEF\xBF\xBD\"} 1\n"));
		free(text);
		metrics_free(m);
	}
}

/* What a mount's registry looks like, byte for byte. */
static void test_format_golden(void **state)
{
	struct metrics *m = metrics_new("hpcops_fs");
	static const double b[] = {0.1, 1, INFINITY}; /* the +Inf given is the implicit one */
	struct metric *h;
	char *text;
	const char *want =
	    "# HELP hpcops_fs_reads_total FUSE reads\n"
	    "# TYPE hpcops_fs_reads_total counter\n"
	    "hpcops_fs_reads_total 3\n"
	    "# TYPE hpcops_fs_requests_total counter\n"
	    "hpcops_fs_requests_total{op=\"GetObject\",status=\"200\"} 2\n"
	    "hpcops_fs_requests_total{op=\"PutObject\",status=\"503\"} 18446744073709551615\n"
	    "# HELP hpcops_fs_in_flight requests in flight\n"
	    "# TYPE hpcops_fs_in_flight gauge\n"
	    "hpcops_fs_in_flight -2\n"
	    "# HELP hpcops_fs_ttfb_seconds time to first byte\\nsecond line \\\\ \"quoted\"\n"
	    "# TYPE hpcops_fs_ttfb_seconds histogram\n"
	    "hpcops_fs_ttfb_seconds_bucket{op=\"GetObject\",le=\"0.1\"} 1\n"
	    "hpcops_fs_ttfb_seconds_bucket{op=\"GetObject\",le=\"1\"} 2\n"
	    "hpcops_fs_ttfb_seconds_bucket{op=\"GetObject\",le=\"+Inf\"} 3\n"
	    "hpcops_fs_ttfb_seconds_sum{op=\"GetObject\"} 2.75\n"
	    "hpcops_fs_ttfb_seconds_count{op=\"GetObject\"} 3\n"
	    "hpcops_fs_ttfb_seconds_bucket{op=\"HeadObject\",le=\"0.1\"} 0\n"
	    "hpcops_fs_ttfb_seconds_bucket{op=\"HeadObject\",le=\"1\"} 0\n"
	    "hpcops_fs_ttfb_seconds_bucket{op=\"HeadObject\",le=\"+Inf\"} 0\n"
	    "hpcops_fs_ttfb_seconds_sum{op=\"HeadObject\"} 0\n"
	    "hpcops_fs_ttfb_seconds_count{op=\"HeadObject\"} 0\n";

	assert_non_null(m);
	metric_add(metrics_counter(m, "reads_total", "FUSE reads", NULL), 3);
	metric_add(metrics_counter(m, "requests_total", NULL, "status=\"200\",op=\"GetObject\""),
	           2);
	metric_add(metrics_counter(m, "requests_total", "ignored: the first help is kept",
	                           "op=\"PutObject\",status=\"503\""),
	           UINT64_MAX);
	metric_gauge_set(metrics_gauge(m, "in_flight", "requests in flight", NULL), -2);
	h = metrics_histogram(m, "ttfb_seconds", "time to first byte\nsecond line \\ \"quoted\"",
	                      "op=\"GetObject\"", b, 3);
	assert_non_null(h);
	metric_observe(h, 0.25);
	metric_observe(h, 0.5 - 0.5); /* 0: the first bucket */
	metric_observe(h, 2.5);
	metric_observe(h, NAN); /* ignored */
	assert_non_null(metrics_histogram(m, "ttfb_seconds", NULL, "op=\"HeadObject\"", b, 2));
	text = format(m);
	assert_null(prom_check(text));
	assert_string_equal(text, want);
	free(text);

	/* an empty registry is an empty, valid text */
	metrics_free(m);
	m = metrics_new("e");
	text = format(m);
	assert_string_equal(text, "");
	free(text);
	metrics_free(m);
}

static void test_histogram_cumulative(void **state)
{
	struct metrics *m = metrics_new("t");
	static const double b[] = {0.1, 1, 10};
	static const double obs[] = {0.05, 0.1, 0.5, 1, 5, 10, 11, 1000, -1, 1e300};
	struct metric *h = metrics_histogram(m, "lat_seconds", NULL, NULL, b, 3);
	double sum = 0, got_sum;
	uint64_t count;
	char *text;

	assert_non_null(h);
	for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++) {
		metric_observe(h, obs[i]);
		sum += obs[i];
	}
	metric_observe(h, NAN);
	text = format(m);
	assert_null(prom_check(text));
	/* bounds are inclusive: 0.1 counts in le="0.1", 10 in le="10" */
	assert_true(sample(text, "t_lat_seconds_bucket{le=\"0.1\"}") == 3);
	assert_true(sample(text, "t_lat_seconds_bucket{le=\"1\"}") == 5);
	assert_true(sample(text, "t_lat_seconds_bucket{le=\"10\"}") == 7);
	assert_true(sample(text, "t_lat_seconds_bucket{le=\"+Inf\"}") == 10);
	assert_true(sample(text, "t_lat_seconds_count") == 10);
	assert_true(sample(text, "t_lat_seconds_sum") ==
	            sum); /* shortest form reads back exactly */
	metric_histogram_value(h, &count, &got_sum);
	assert_int_equal(count, 10);
	assert_true(got_sum == sum);
	free(text);

	/* the default latency bounds: 1 ms .. 30 s, increasing, accepted as they are */
	assert_true(metrics_latency_bounds[0] == 0.001);
	assert_true(metrics_latency_bounds[METRICS_LATENCY_NBOUNDS - 1] == 30);
	for (size_t i = 1; i < METRICS_LATENCY_NBOUNDS; i++)
		assert_true(metrics_latency_bounds[i] > metrics_latency_bounds[i - 1]);
	h = metrics_histogram(m, "part_upload_seconds", NULL, NULL, metrics_latency_bounds,
	                      METRICS_LATENCY_NBOUNDS);
	metric_observe(h, 0.0123);
	text = format(m);
	assert_null(prom_check(text));
	assert_true(sample(text, "t_part_upload_seconds_bucket{le=\"0.01\"}") == 0);
	assert_true(sample(text, "t_part_upload_seconds_bucket{le=\"0.02\"}") == 1);
	assert_true(sample(text, "t_part_upload_seconds_bucket{le=\"30\"}") == 1);
	assert_true(sample(text, "t_part_upload_seconds_sum") == 0.0123);
	free(text);
	metrics_free(m);
}

static size_t count_lines(const char *text, const char *prefix)
{
	size_t n = 0, pl = strlen(prefix);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		n += !strncmp(p, prefix, pl);
	return n;
}

static void test_series_bound(void **state)
{
	struct metrics *m = metrics_new_limited("t", 10);
	struct metric *first[10], *over = NULL;
	char labels[64], *text;
	size_t len1;

	for (int i = 0; i < 50; i++) {
		struct metric *s;

		snprintf(labels, sizeof(labels), "key=\"%d\"", i);
		s = metrics_counter(m, "a_total", NULL, labels);
		assert_non_null(s);
		if (i < 10)
			first[i] = s;
		else if (!over)
			over = s;
		else
			assert_ptr_equal(s, over); /* one overflow series */
		metric_add(s, 1);
	}
	for (int i = 0; i < 10; i++)
		assert_ptr_not_equal(first[i], over);
	/* a series that existed before the bound is still itself */
	assert_ptr_equal(metrics_counter(m, "a_total", NULL, "key=\"3\""), first[3]);
	/* a new name past the bound: its own overflow series, of its own type */
	metric_gauge_set(metrics_gauge(m, "b", NULL, NULL), 4);

	text = format(m);
	assert_null(prom_check(text));
	assert_int_equal(count_lines(text, "t_a_total{"), 11);
	assert_true(sample(text, "t_a_total{key=\"0\"}") == 1);
	assert_true(sample(text, "t_a_total{" METRICS_OVERFLOW_LABELS "}") == 40);
	assert_true(sample(text, "t_b{" METRICS_OVERFLOW_LABELS "}") == 4);
	len1 = strlen(text);
	free(text);

	/* an unbounded label does not grow the registry */
	for (int i = 50; i < 20000; i++) {
		snprintf(labels, sizeof(labels), "key=\"%d\"", i);
		metric_add(metrics_counter(m, "a_total", NULL, labels), 1);
	}
	text = format(m);
	assert_int_equal(count_lines(text, "t_a_total{"), 11);
	assert_true(sample(text, "t_a_total{" METRICS_OVERFLOW_LABELS "}") == 19990);
	assert_true(strlen(text) <= len1 + 3); /* only the digits of the overflow count */
	free(text);
	metrics_free(m);

	/* names are bounded too */
	m = metrics_new_limited("t", 100000);
	for (int i = 0; i < METRICS_MAX_FAMILIES + 20; i++) {
		char name[32];

		snprintf(name, sizeof(name), "n%d_total", i);
		if (i < METRICS_MAX_FAMILIES)
			assert_non_null(metrics_counter(m, name, NULL, NULL));
		else
			assert_null(metrics_counter(m, name, NULL, NULL));
	}
	text = format(m);
	assert_null(prom_check(text));
	assert_int_equal(count_lines(text, "# TYPE"), METRICS_MAX_FAMILIES);
	free(text);
	metrics_free(m);
}

static void test_format_log(void **state)
{
	struct metrics *m = metrics_new("hpcops_fs");
	struct metric *h;
	char buf[512], small[40];
	const char *want;
	int n;

	assert_int_equal(metrics_format_log(m, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	metrics_counter(m, "zero_total", NULL, NULL); /* zero: not in the line */
	metric_add(metrics_counter(m, "reads_total", NULL, NULL), 3);
	metric_add(metrics_counter(m, "requests_total", NULL, "op=\"GetObject\",status=\"200\""),
	           2);
	metric_gauge_set(metrics_gauge(m, "in_flight", NULL, NULL), -2);
	metrics_gauge(m, "idle", NULL, NULL);
	metrics_histogram(m, "ttfb_seconds", NULL, "op=\"HeadObject\"", metrics_latency_bounds,
	                  METRICS_LATENCY_NBOUNDS);
	h = metrics_histogram(m, "ttfb_seconds", NULL, "op=\"GetObject\"", metrics_latency_bounds,
	                      METRICS_LATENCY_NBOUNDS);
	metric_observe(h, 0.5);
	metric_observe(h, 0.25);
	want = "reads_total=3 requests_total{op=\"GetObject\",status=\"200\"}=2 in_flight=-2 "
	       "ttfb_seconds_count{op=\"GetObject\"}=2 ttfb_seconds_sum{op=\"GetObject\"}=0.75";
	n = metrics_format_log(m, buf, sizeof(buf));
	assert_string_equal(buf, want);
	assert_int_equal(n, strlen(want));

	/* cut at a whole item; the return says how long the line is */
	n = metrics_format_log(m, small, sizeof(small));
	assert_int_equal(n, strlen(want));
	assert_string_equal(small, "reads_total=3");
	assert_int_equal(metrics_format_log(m, buf, strlen(want) + 1), strlen(want));
	assert_string_equal(buf, want);
	assert_int_equal(metrics_format_log(m, buf, strlen(want)), strlen(want));
	assert_string_equal(buf, "reads_total=3 requests_total{op=\"GetObject\",status=\"200\"}=2 "
	                         "in_flight=-2");
	assert_int_equal(metrics_format_log(m, buf, 1), strlen(want));
	assert_string_equal(buf, "");
	assert_int_equal(metrics_format_log(m, buf, 0), -1);
	assert_int_equal(metrics_format_log(NULL, buf, sizeof(buf)), -1);
	metrics_free(m);
}

/* ---- the file ---- */

struct reader_arg {
	const char *path;
	atomic_bool stop;
	int reads, generations, max_gen;
	char bad[300];
};

static void *file_reader(void *p)
{
	struct reader_arg *r = p;
	static char buf[1 << 20];
	int last = -1;

	while (!atomic_load(&r->stop)) {
		int fd = open(r->path, O_RDONLY);
		ssize_t n, got = 0;
		const char *err;
		double gen;

		if (fd < 0) {
			if (errno != ENOENT || r->reads > 0)
				snprintf(r->bad, sizeof(r->bad), "open: %s", strerror(errno));
			if (r->bad[0])
				break;
			continue; /* before the first write */
		}
		for (;;) {
			n = read(fd, buf + got, sizeof(buf) - 1 - (size_t)got);
			if (n <= 0)
				break;
			got += n;
		}
		close(fd);
		buf[got] = '\0';
		r->reads++;
		err = prom_check(buf);
		gen = sample(buf, "t_generation");
		/* every file read is a whole one: valid, ends with the marker written last */
		if (got == 0 || err || isnan(gen) || !strstr(buf, "t_zz_last_total 1\n")) {
			snprintf(r->bad, sizeof(r->bad), "partial file (%zd bytes): %s", got,
			         err ? err : "no marker");
			break;
		}
		if ((int)gen != last)
			r->generations++;
		last = (int)gen;
	}
	return NULL;
}

static void test_write_file_atomic(void **state)
{
	char dir[] = "/tmp/test_metrics.XXXXXX", path[128], *text;
	struct reader_arg r = {0};
	struct metrics *m = metrics_new("t");
	struct metric *gen = metrics_gauge(m, "generation", "rewrite number", NULL);
	struct stat st;
	pthread_t th;
	char filler[900];
	DIR *d;
	struct dirent *de;
	int entries = 0, fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/hpcops.prom", dir);
	r.path = path;
	memset(filler, 'x', sizeof(filler) - 1);
	filler[sizeof(filler) - 1] = '\0';
	assert_int_equal(pthread_create(&th, NULL, file_reader, &r), 0);
	for (int i = 0; i < 300 && !r.bad[0]; i++) {
		char name[32];

		metric_gauge_set(gen, i);
		/* the file grows each time: a torn write would show */
		snprintf(name, sizeof(name), "f%d_total", i % 200);
		metric_add(metrics_counter(m, name, filler, NULL), 1);
		if (i == 0)
			metric_add(metrics_counter(m, "zz_last_total", NULL, NULL), 1);
		assert_int_equal(metrics_write_file(m, path), 0);
	}
	atomic_store(&r.stop, true);
	pthread_join(th, NULL);
	if (r.bad[0])
		fail_msg("the reader saw %s after %d reads", r.bad, r.reads);
	print_message("    %d reads saw %d generations\n", r.reads, r.generations);
	assert_true(r.reads > 0);
	assert_true(r.generations > 1);

	/* what node_exporter needs: readable by others, nothing else left in the dir */
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	d = opendir(dir);
	assert_non_null(d);
	for (de = readdir(d); de; de = readdir(d))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			entries++;
	closedir(d);
	assert_int_equal(entries, 1);
	fd = open(path, O_RDONLY);
	text = format(m);
	{
		static char fbuf[1 << 20];
		ssize_t n = read(fd, fbuf, sizeof(fbuf) - 1);

		assert_true(n >= 0);
		fbuf[n] = '\0';
		assert_string_equal(fbuf, text);
	}
	close(fd);
	free(text);

	/* failures say so and leave nothing behind */
	{
		char missing[160];

		snprintf(missing, sizeof(missing), "%s/no/such/dir.prom", dir);
		assert_int_equal(metrics_write_file(m, missing), -ENOENT);
		snprintf(missing, sizeof(missing), "%s/sub", dir);
		assert_int_equal(mkdir(missing, 0755), 0);
		assert_true(metrics_write_file(m, missing) < 0); /* a directory in the way */
		assert_int_equal(metrics_write_file(m, "/tmp/"), -EISDIR);
		entries = 0;
		d = opendir(dir);
		for (de = readdir(d); de; de = readdir(d))
			entries += de->d_name[0] != '.' || strlen(de->d_name) > 2;
		closedir(d);
		assert_int_equal(entries, 2); /* hpcops.prom and sub: no temp file */
		rmdir(missing);
	}
	unlink(path);
	rmdir(dir);
	metrics_free(m);
}

/* ---- HTTP ---- */

static int connect_port(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 10};

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

		if (w <= 0)
			return; /* the server may close on us; the caller checks the answer */
		s += w;
		n -= (size_t)w;
	}
}

/* Everything until the server closes (or 10 s pass); malloc'd. */
static char *recv_all(int fd, size_t *len)
{
	size_t cap = 1 << 16, got = 0;
	char *buf = malloc(cap);
	ssize_t n;

	assert_non_null(buf);
	for (;;) {
		n = recv(fd, buf + got, cap - got - 1, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got + 1 == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
	}
	buf[got] = '\0';
	if (len)
		*len = got;
	return buf;
}

/* One request on a fresh connection (Connection: close); the whole answer. */
static char *http(int port, const char *method, const char *target)
{
	char req[256];
	char *resp;
	int fd = connect_port(port);

	assert_true(fd >= 0);
	snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
	         method, target);
	send_all(fd, req, strlen(req));
	resp = recv_all(fd, NULL);
	close(fd);
	return resp;
}

static const char *body_of(const char *resp)
{
	const char *p = strstr(resp, "\r\n\r\n");

	return p ? p + 4 : NULL;
}

static void test_http_endpoint(void **state)
{
	struct metrics *m = metrics_new("hpcops_fs");
	struct metrics_server *s, *s2;
	char why[256], *resp, *text;
	int port = 0, port2 = 0;

	metric_add(metrics_counter(m, "reads_total", "FUSE reads", NULL), 42);
	metric_observe(metrics_histogram(m, "ttfb_seconds", "time to first byte",
	                                 "op=\"GetObject\"", metrics_latency_bounds,
	                                 METRICS_LATENCY_NBOUNDS),
	               0.03);
	s = metrics_server_start(m, "127.0.0.1", 0, &port, why, sizeof(why));
	if (!s)
		fail_msg("server did not start: %s", why);
	assert_true(port > 0);
	text = format(m);

	resp = http(port, "GET", "/metrics");
	assert_true(!strncmp(resp, "HTTP/1.1 200 ", 13));
	assert_non_null(strcasestr(resp, "\r\nContent-Type: text/plain; version=0.0.4; "
	                                 "charset=utf-8\r\n"));
	assert_non_null(body_of(resp));
	assert_string_equal(body_of(resp), text);
	assert_null(prom_check(body_of(resp)));
	free(resp);

	resp = http(port, "GET", "/metrics?x=1"); /* a query does not change the path */
	assert_true(!strncmp(resp, "HTTP/1.1 200 ", 13));
	free(resp);
	resp = http(port, "HEAD", "/metrics");
	assert_true(!strncmp(resp, "HTTP/1.1 200 ", 13));
	assert_string_equal(body_of(resp), "");
	free(resp);
	resp = http(port, "GET", "/");
	assert_true(!strncmp(resp, "HTTP/1.1 404 ", 13));
	assert_null(strstr(resp, "reads_total"));
	free(resp);
	resp = http(port, "GET", "/metricsx");
	assert_true(!strncmp(resp, "HTTP/1.1 404 ", 13));
	free(resp);
	resp = http(port, "POST", "/metrics");
	assert_true(!strncmp(resp, "HTTP/1.1 405 ", 13));
	assert_non_null(strcasestr(resp, "\r\nAllow: GET, HEAD\r\n"));
	free(resp);

	/* keep-alive, as Prometheus scrapes: two answers on one connection */
	{
		const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
		                  "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
		int fd = connect_port(port);
		const char *second;

		send_all(fd, req, strlen(req));
		resp = recv_all(fd, NULL);
		close(fd);
		second = strstr(resp + 1, "HTTP/1.1 200 ");
		assert_true(!strncmp(resp, "HTTP/1.1 200 ", 13));
		assert_non_null(second);
		assert_string_equal(body_of(second), text);
		free(resp);
	}

	/* the values are read at each scrape */
	metric_add(metrics_counter(m, "reads_total", NULL, NULL), 1);
	resp = http(port, "GET", "/metrics");
	assert_true(sample(body_of(resp), "hpcops_fs_reads_total") == 43);
	free(resp);

	/* the port is taken: a clear reason; a bad address: a clear reason */
	s2 = metrics_server_start(m, "127.0.0.1", port, &port2, why, sizeof(why));
	assert_null(s2);
	assert_non_null(strstr(why, "Address already in use"));
	assert_null(metrics_server_start(m, "localhost-ish", 0, NULL, why, sizeof(why)));
	assert_non_null(strstr(why, "not a numeric IP address"));
	assert_null(metrics_server_start(m, "127.0.0.1", 70000, NULL, why, sizeof(why)));

	metrics_server_stop(s);
	/* stopped means the port is closed */
	assert_int_equal(connect_port(port), -1);
	free(text);
	metrics_free(m);
	metrics_server_stop(NULL);
}

static void test_http_slow_and_big_clients(void **state)
{
	struct metrics *m = metrics_new("t");
	struct metrics_server_limits lim = {.timeout_s = 1, .max_request = 4096};
	struct metrics_server *s;
	char why[256], *resp, *big;
	int port = 0, slow, slow2;
	double t0;
	size_t n;

	metric_add(metrics_counter(m, "x_total", NULL, NULL), 7);
	s = metrics_server_start_limits(m, "127.0.0.1", 0, &lim, &port, why, sizeof(why));
	if (!s)
		fail_msg("server did not start: %s", why);

	/* a client that sends half a request and waits... */
	slow = connect_port(port);
	send_all(slow, "GET /metr", 9);
	/* ...and one that connects and sends nothing */
	slow2 = connect_port(port);
	assert_true(slow >= 0 && slow2 >= 0);
	usleep(100 * 1000);
	/* do not stall a scrape */
	t0 = now_s();
	resp = http(port, "GET", "/metrics");
	assert_true(!strncmp(resp, "HTTP/1.1 200 ", 13));
	assert_true(sample(body_of(resp), "t_x_total") == 7);
	free(resp);
	print_message("    a scrape beside two stalled clients took %.3f s\n", now_s() - t0);
	assert_true(now_s() - t0 < 0.9); /* before the stalled ones even time out */

	/* and are closed after the timeout (1 s here), not kept forever */
	resp = recv_all(slow, &n);
	free(resp);
	print_message("    the stalled client was closed after %.2f s\n", now_s() - t0);
	assert_true(now_s() - t0 < 4.0);
	close(slow);
	close(slow2);

	/* a request bigger than the bound is refused, not buffered */
	big = malloc(64 * 1024);
	assert_non_null(big);
	memset(big, 'a', 64 * 1024);
	memcpy(big, "GET /metrics HTTP/1.1\r\nX-Big: ", 30);
	{
		int fd = connect_port(port);

		send_all(fd, big, 64 * 1024);
		send_all(fd, "\r\n\r\n", 4);
		resp = recv_all(fd, &n);
		close(fd);
	}
	print_message("    64 KiB of headers got: %.40s\n", n ? resp : "(closed)");
	assert_true(n == 0 || !strncmp(resp, "HTTP/1.1 4", 10)); /* 431 or closed */
	assert_null(strstr(resp, "x_total"));
	free(resp);
	free(big);

	/* a body on a GET or a POST does not make it wait for the body */
	{
		const char *req = "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
		                  "\r\nabc";
		int fd = connect_port(port);

		t0 = now_s();
		send_all(fd, req, strlen(req));
		resp = recv_all(fd, &n);
		close(fd);
		assert_true(!strncmp(resp, "HTTP/1.1 405 ", 13));
		assert_true(now_s() - t0 < 0.9);
		free(resp);
	}

	/* nor does a GET with a body (400, at once) */
	{
		const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
		                  "\r\nabc";
		int fd = connect_port(port);

		t0 = now_s();
		send_all(fd, req, strlen(req));
		resp = recv_all(fd, &n);
		close(fd);
		assert_true(!strncmp(resp, "HTTP/1.1 400 ", 13));
		assert_null(strstr(resp, "x_total"));
		assert_true(now_s() - t0 < 0.9);
		free(resp);
	}

	/* still serving */
	resp = http(port, "GET", "/metrics");
	assert_true(!strncmp(resp, "HTTP/1.1 200 ", 13));
	free(resp);

	/* stop does not wait for connected clients */
	slow = connect_port(port);
	send_all(slow, "GET /", 5);
	t0 = now_s();
	metrics_server_stop(s);
	assert_true(now_s() - t0 < 0.5);
	close(slow);
	metrics_free(m);
}

/* ---- the ticker ---- */

static void count_tick(void *user)
{
	atomic_fetch_add((atomic_int *)user, 1);
}

static void test_ticker(void **state)
{
	struct metrics_ticker *t;
	atomic_int ticks = 0;
	int after;
	double t0;

	t = metrics_ticker_start(NULL, 0.02, count_tick, &ticks);
	assert_non_null(t);
	usleep(300 * 1000);
	metrics_ticker_stop(t);
	after = atomic_load(&ticks);
	print_message("    %d ticks of 20 ms in 300 ms\n", after);
	assert_true(after >= 3 && after <= 16);
	usleep(60 * 1000);
	assert_int_equal(atomic_load(&ticks), after); /* stopped means stopped */

	/* a long interval: stop is prompt, not a wait for the next tick */
	atomic_store(&ticks, 0);
	t = metrics_ticker_start(NULL, 3600, count_tick, &ticks);
	assert_non_null(t);
	usleep(20 * 1000);
	t0 = now_s();
	metrics_ticker_stop(t);
	assert_true(now_s() - t0 < 0.5);
	assert_int_equal(atomic_load(&ticks), 0);

	assert_null(metrics_ticker_start(NULL, 0, count_tick, &ticks));
	assert_null(metrics_ticker_start(NULL, -1, count_tick, &ticks));
	assert_null(metrics_ticker_start(NULL, NAN, count_tick, &ticks));
	assert_null(metrics_ticker_start(NULL, 1, NULL, &ticks));
	metrics_ticker_stop(NULL);
}

/* ---- signals ---- */

/* The thread ids of this process, as a sorted-free list; returns how many. */
static int list_tasks(int *tids, int max)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	for (de = readdir(d); de && n < max; de = readdir(d))
		if (de->d_name[0] != '.')
			tids[n++] = atoi(de->d_name);
	closedir(d);
	return n;
}

/* The SigBlk mask of thread @tid. */
static unsigned long long task_sigblk(int tid)
{
	char path[64], line[256];
	unsigned long long mask = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "SigBlk:", 7))
			mask = strtoull(line + 7, NULL, 16);
	fclose(f);
	return mask;
}

static void noop_tick(void *user)
{
}

/*
 * The server's and the ticker's threads block every signal, whatever the
 * caller's mask: SIGUSR1 (status line), SIGUSR2 (verbosity) and SIGTERM
 * must reach the program's own threads, not a library thread.
 */
static void test_threads_block_signals(void **state)
{
	struct metrics *m = metrics_new("t");
	struct metrics_server *s;
	struct metrics_ticker *t;
	int before[64], after[64], nb, na, fresh = 0, port;
	unsigned long long want = (1ULL << (SIGUSR1 - 1)) | (1ULL << (SIGUSR2 - 1)) |
	                          (1ULL << (SIGTERM - 1)) | (1ULL << (SIGINT - 1)) |
	                          (1ULL << (SIGHUP - 1));
	char why[128];

	nb = list_tasks(before, 64);
	s = metrics_server_start(m, "127.0.0.1", 0, &port, why, sizeof(why));
	t = metrics_ticker_start(m, 3600, noop_tick, NULL);
	assert_non_null(s);
	assert_non_null(t);
	na = list_tasks(after, 64);
	for (int i = 0; i < na; i++) {
		bool old = false;

		for (int j = 0; j < nb; j++)
			old = old || after[i] == before[j];
		if (old)
			continue;
		fresh++;
		if ((task_sigblk(after[i]) & want) != want)
			fail_msg("thread %d has SigBlk %llx", after[i], task_sigblk(after[i]));
	}
	assert_true(fresh >= 2); /* the server's and the ticker's */
	/* and the caller's own mask is as it was */
	assert_int_equal(task_sigblk((int)gettid()) & want, 0);
	metrics_ticker_stop(t);
	metrics_server_stop(s);
	metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_checker_rejects),
	    cmocka_unit_test(test_threads_add_exactly),
	    cmocka_unit_test(test_handles_and_validation),
	    cmocka_unit_test(test_label_escape),
	    cmocka_unit_test(test_format_golden),
	    cmocka_unit_test(test_histogram_cumulative),
	    cmocka_unit_test(test_series_bound),
	    cmocka_unit_test(test_format_log),
	    cmocka_unit_test(test_write_file_atomic),
	    cmocka_unit_test(test_http_endpoint),
	    cmocka_unit_test(test_http_slow_and_big_clients),
	    cmocka_unit_test(test_ticker),
	    cmocka_unit_test(test_threads_block_signals),
	};

	/* the warnings for refused names and labels are expected here */
	log_init(LOG_DEST_STDERR, NULL, "test_metrics", LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
