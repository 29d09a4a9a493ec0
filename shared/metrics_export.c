/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics_export: the registry as text (Prometheus 0.0.4, the log line), the
 * atomically rewritten file for node_exporter's textfile collector, and the
 * ticker thread that drives them every few seconds.
 *
 * Debian has no C library for the exposition format (prometheus-cpp is C++,
 * with its own registry objects and a civetweb server); the writer here is
 * small and checked against prometheus_client's parser and a strict one.
 */
#include "metrics_private.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- a growing string ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	bool failed;
};

static bool sbuf_reserve(struct sbuf *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->failed)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->failed = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void sbuf_put(struct sbuf *b, const char *s, size_t n)
{
	if (!sbuf_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sbuf_puts(struct sbuf *b, const char *s)
{
	sbuf_put(b, s, strlen(s));
}

static void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!sbuf_reserve(b, 64))
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if ((size_t)n >= b->cap - b->len) {
		if (!sbuf_reserve(b, (size_t)n))
			return;
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

/* ---- exposition ---- */

/*
 * @v as Go's strconv.FormatFloat(v, 'g', -1, 64) writes it, as the Go
 * client and Prometheus do: the fewest digits that read back as the same
 * double, in exponent form only below 1e-4 or from 1e6 (le="10", not
 * "1e+01"; "0.1", not "0.10000000000000001"); +Inf, -Inf and NaN as
 * Prometheus spells them. Call with the C numeric locale in force.
 */
static void format_double(char *out, size_t len, double v)
{
	int p, x;

	if (isnan(v)) {
		snprintf(out, len, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(out, len, "%s", v > 0 ? "+Inf" : "-Inf");
		return;
	}
	for (p = 1; p < 17; p++) {
		snprintf(out, len, "%.*e", p - 1, v);
		if (strtod(out, NULL) == v)
			break;
	}
	snprintf(out, len, "%.*e", p - 1, v);
	x = atoi(strchr(out, 'e') + 1);
	if (x < -4 || x >= 6)
		return;
	snprintf(out, len, "%.*f", p - 1 - x > 0 ? p - 1 - x : 0, v);
}

/* HELP text: backslash and newline escaped (quotes are not, in 0.0.4). */
static void put_help(struct sbuf *b, const char *help)
{
	for (const char *p = help; *p; p++) {
		if (*p == '\\')
			sbuf_puts(b, "\\\\");
		else if (*p == '\n')
			sbuf_puts(b, "\\n");
		else
			sbuf_put(b, p, 1);
	}
}

/* "NAMESUFFIX{labels[,extra]}" or "NAMESUFFIX" when there are no labels at all. */
static void put_series_name(struct sbuf *b, const char *name, const char *suffix,
                            const char *labels, const char *extra)
{
	sbuf_puts(b, name);
	sbuf_puts(b, suffix);
	if (!*labels && !extra)
		return;
	sbuf_puts(b, "{");
	sbuf_puts(b, labels);
	if (extra) {
		if (*labels)
			sbuf_puts(b, ",");
		sbuf_puts(b, extra);
	}
	sbuf_puts(b, "}");
}

static void format_series(struct sbuf *b, const struct metrics_family *f, const struct metric *s)
{
	char num[64], le[80];
	uint64_t cum = 0;

	switch (f->type) {
	case METRIC_COUNTER:
		put_series_name(b, f->name, "", s->labels, NULL);
		sbuf_printf(b, " %" PRIu64 "\n", metric_counter_value(s));
		break;
	case METRIC_GAUGE:
		put_series_name(b, f->name, "", s->labels, NULL);
		sbuf_printf(b, " %" PRId64 "\n", metric_gauge_value(s));
		break;
	case METRIC_HISTOGRAM:
		/* one pass over the buckets, so _count is exactly the +Inf bucket */
		for (size_t i = 0; i <= s->nbounds; i++) {
			cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
			if (i < s->nbounds)
				format_double(num, sizeof(num), s->bounds[i]);
			snprintf(le, sizeof(le), "le=\"%s\"", i < s->nbounds ? num : "+Inf");
			put_series_name(b, f->name, "_bucket", s->labels, le);
			sbuf_printf(b, " %" PRIu64 "\n", cum);
		}
		format_double(
		    num, sizeof(num),
		    metric_bits_double(atomic_load_explicit(&s->v.sum_bits, memory_order_relaxed)));
		put_series_name(b, f->name, "_sum", s->labels, NULL);
		sbuf_printf(b, " %s\n", num);
		put_series_name(b, f->name, "_count", s->labels, NULL);
		sbuf_printf(b, " %" PRIu64 "\n", cum);
		break;
	}
}

int metrics_format_prometheus(struct metrics *m, char **out, size_t *len)
{
	struct sbuf b = {0};
	locale_t saved;
	int ret = -ENOMEM;

	if (out)
		*out = NULL;
	if (len)
		*len = 0;
	if (!m || !out)
		return -EINVAL;
	saved = uselocale(m->c_locale);
	if (sbuf_reserve(&b, 0)) /* "" for an empty registry */
		b.p[0] = '\0';
	pthread_mutex_lock(&m->lock);
	for (const struct metrics_family *f = m->families; f; f = f->next) {
		if (f->help) {
			sbuf_printf(&b, "# HELP %s ", f->name);
			put_help(&b, f->help);
			sbuf_puts(&b, "\n");
		}
		sbuf_printf(&b, "# TYPE %s %s\n", f->name, metric_type_name(f->type));
		for (const struct metric *s = f->first; s; s = s->fam_next)
			format_series(&b, f, s);
		if (f->overflow)
			format_series(&b, f, f->overflow);
	}
	pthread_mutex_unlock(&m->lock);
	uselocale(saved);
	if (b.failed)
		goto out;
	*out = b.p;
	b.p = NULL;
	if (len)
		*len = b.len;
	ret = 0;
out:
	free(b.p);
	return ret;
}

/* ---- the textfile ---- */

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int metrics_write_file(struct metrics *m, const char *path)
{
	char *text = NULL, *tmp = NULL;
	const char *slash, *base;
	size_t len = 0;
	int fd = -1, ret;

	if (!m || !path || !*path)
		return -EINVAL;
	ret = metrics_format_prometheus(m, &text, &len);
	if (ret < 0)
		goto out;
	slash = strrchr(path, '/');
	base = slash ? slash + 1 : path;
	if (!*base) {
		ret = -EISDIR;
		goto out;
	}
	if (asprintf(&tmp, "%.*s.%s.XXXXXX", (int)(base - path), path, base) < 0) {
		tmp = NULL;
		ret = -ENOMEM;
		goto out;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		free(tmp);
		tmp = NULL; /* nothing to remove */
		goto out;
	}
	ret = write_all(fd, text, len);
	/* mkstemp makes 0600; node_exporter often runs as another user */
	if (ret == 0 && fchmod(fd, 0644) < 0)
		ret = -errno;
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	fd = -1;
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret == 0) {
		free(tmp);
		tmp = NULL;
	}
out:
	if (fd >= 0)
		close(fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	free(text);
	return ret;
}

/* ---- the log line ---- */

struct logline {
	char *buf;
	size_t len; /* of buf */
	size_t pos; /* bytes kept in buf */
	size_t total;
	bool full;
};

/* Append the item in @it (one or more space-separated words) if it fits whole. */
static void logline_item(struct logline *l, const struct sbuf *it)
{
	size_t need = it->len + (l->total ? 1 : 0);

	if (!l->full && l->pos + need < l->len) {
		if (l->total)
			l->buf[l->pos++] = ' ';
		memcpy(l->buf + l->pos, it->p, it->len);
		l->pos += it->len;
		l->buf[l->pos] = '\0';
	} else {
		l->full = true; /* later items would break the order */
	}
	l->total += need;
}

/* The log item of @s into @it ("" when it is zero). */
static void log_series(struct sbuf *it, const struct metrics_family *f, const struct metric *s,
                       const char *name)
{
	uint64_t count;
	double sum;
	char num[64];

	it->len = 0;
	if (it->p)
		it->p[0] = '\0';
	if (f->type == METRIC_COUNTER && metric_counter_value(s)) {
		put_series_name(it, name, "", s->labels, NULL);
		sbuf_printf(it, "=%" PRIu64, metric_counter_value(s));
	} else if (f->type == METRIC_GAUGE && metric_gauge_value(s)) {
		put_series_name(it, name, "", s->labels, NULL);
		sbuf_printf(it, "=%" PRId64, metric_gauge_value(s));
	} else if (f->type == METRIC_HISTOGRAM) {
		metric_histogram_value(s, &count, &sum);
		if (!count)
			return;
		format_double(num, sizeof(num), sum);
		put_series_name(it, name, "_count", s->labels, NULL);
		sbuf_printf(it, "=%" PRIu64 " ", count);
		put_series_name(it, name, "_sum", s->labels, NULL);
		sbuf_printf(it, "=%s", num);
	}
}

int metrics_format_log(struct metrics *m, char *buf, size_t len)
{
	struct logline l = {.buf = buf, .len = len};
	struct sbuf it = {0};
	size_t skip;
	locale_t saved;
	int ret = -1;

	if (!m || !buf || len == 0)
		return -1;
	buf[0] = '\0';
	skip = strlen(m->prefix);
	saved = uselocale(m->c_locale);
	pthread_mutex_lock(&m->lock);
	for (const struct metrics_family *f = m->families; f; f = f->next) {
		for (const struct metric *s = f->first; s; s = s->fam_next) {
			log_series(&it, f, s, f->name + skip);
			if (it.len)
				logline_item(&l, &it);
		}
		if (f->overflow) {
			log_series(&it, f, f->overflow, f->name + skip);
			if (it.len)
				logline_item(&l, &it);
		}
	}
	if (!it.failed)
		ret = l.total > (size_t)INT32_MAX ? INT32_MAX : (int)l.total;
	pthread_mutex_unlock(&m->lock);
	uselocale(saved);
	free(it.p);
	return ret;
}

/* ---- the ticker ---- */

struct metrics_ticker {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* on CLOCK_MONOTONIC */
	bool stop;           /* under lock */
	double interval;
	void (*tick)(void *user);
	void *user;
};

static void ts_add(struct timespec *t, double s)
{
	double whole = floor(s);

	t->tv_sec += (time_t)whole;
	t->tv_nsec += (long)((s - whole) * 1e9);
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

static bool ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void *ticker_main(void *arg)
{
	struct metrics_ticker *t = arg;
	struct timespec next, now;

	clock_gettime(CLOCK_MONOTONIC, &next);
	ts_add(&next, t->interval);
	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		if (pthread_cond_timedwait(&t->cond, &t->lock, &next) != ETIMEDOUT)
			continue; /* woken (stop?) or spurious: check the deadline again */
		pthread_mutex_unlock(&t->lock);
		t->tick(t->user);
		clock_gettime(CLOCK_MONOTONIC, &now);
		ts_add(&next, t->interval);
		if (ts_before(&next, &now)) { /* overran: start again from now */
			next = now;
			ts_add(&next, t->interval);
		}
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

struct metrics_ticker *metrics_ticker_start(struct metrics *m, double interval_s,
                                            void (*tick)(void *user), void *user)
{
	struct metrics_ticker *t = NULL, *ret = NULL;
	pthread_condattr_t ca;
	sigset_t all, saved;
	bool cond_ok = false, started;

	if (!tick || !isfinite(interval_s) || interval_s <= 0 || interval_s > 1e9)
		goto out;
	t = calloc(1, sizeof(*t));
	if (!t)
		goto out;
	t->interval = interval_s;
	t->tick = tick;
	t->user = user;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	cond_ok = pthread_cond_init(&t->cond, &ca) == 0;
	pthread_condattr_destroy(&ca);
	/* the thread starts with every signal blocked: the program's signals go to its own threads
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	started = cond_ok && pthread_create(&t->thread, NULL, ticker_main, t) == 0;
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (!started)
		goto out;
	ret = t;
	t = NULL;
out:
	if (t) {
		if (cond_ok)
			pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->lock);
		free(t);
	}
	return ret;
}

void metrics_ticker_stop(struct metrics_ticker *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
