/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics: the registry (families of series in a hash table under one lock),
 * label-set checks, and the lock-free updates. The text formats, the file
 * and the ticker are metrics_export.c; the HTTP endpoint is metrics_http.c.
 */
#include "metrics_private.h"
#include "log.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

const double metrics_latency_bounds[METRICS_LATENCY_NBOUNDS] = {
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30,
};

/* ---- names, labels, UTF-8 ---- */

/* Length of the valid UTF-8 sequence at @s (NUL-terminated), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return (s[1] & 0xC0) == 0x80 ? 2 : 0;
	if (c >= 0xE0 && c <= 0xEF) {
		if (c == 0xE0)
			lo = 0xA0; /* overlong */
		if (c == 0xED)
			hi = 0x9F; /* surrogates */
		if (s[1] < lo || s[1] > hi)
			return 0;
		return (s[2] & 0xC0) == 0x80 ? 3 : 0;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		if (c == 0xF0)
			lo = 0x90;
		if (c == 0xF4)
			hi = 0x8F; /* past U+10FFFF */
		if (s[1] < lo || s[1] > hi)
			return 0;
		if ((s[2] & 0xC0) != 0x80)
			return 0;
		return (s[3] & 0xC0) == 0x80 ? 4 : 0;
	}
	return 0;
}

int metrics_label_escape(const char *value, char *out, size_t len)
{
	const unsigned char *s = (const unsigned char *)value;
	size_t o = 0;

	if (!out || len == 0)
		return -1;
	out[0] = '\0';
	if (!value)
		return 0;
	while (*s) {
		const char *rep = NULL;
		size_t n = 1;
		char one[5];

		if (*s == '\\') {
			rep = "\\\\";
		} else if (*s == '"') {
			rep = "\\\"";
		} else if (*s == '\n') {
			rep = "\\n";
		} else {
			n = utf8_seq_len(s);
			if (n == 0) {
				rep = "\xEF\xBF\xBD"; /* U+FFFD for one bad byte */
				n = 1;
			}
		}
		if (!rep) {
			memcpy(one, s, n);
			one[n] = '\0';
			rep = one;
		}
		if (o + strlen(rep) >= len) {
			out[0] = '\0';
			return -1;
		}
		memcpy(out + o, rep, strlen(rep));
		o += strlen(rep);
		s += n;
	}
	out[o] = '\0';
	return (int)o;
}

static bool name_char(char c, bool first, bool colon)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
		return true;
	if (c == ':')
		return colon;
	return !first && c >= '0' && c <= '9';
}

static bool valid_metric_name(const char *s)
{
	if (!*s)
		return false;
	for (size_t i = 0; s[i]; i++)
		if (!name_char(s[i], i == 0, true))
			return false;
	return true;
}

struct label_pair {
	const char *name;
	size_t nlen;
	const char *value; /* escaped form, between the quotes */
	size_t vlen;
};

static int pair_cmp(const void *a, const void *b)
{
	const struct label_pair *x = a, *y = b;
	size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
	int c = memcmp(x->name, y->name, n);

	if (c)
		return c;
	return (x->nlen > y->nlen) - (x->nlen < y->nlen);
}

/*
 * Check @in as a label set and write it to @out with the pairs sorted by
 * name, so one set written in two orders is one series. Values keep their
 * escaped form: with only \\, \" and \n allowed and no raw quote, backslash
 * or newline, that form is already canonical.
 * Returns NULL, or a reason for the warning.
 */
static const char *labels_canonical(const char *in, bool histogram, char *out, size_t outlen)
{
	struct label_pair p[MAX_LABELS];
	size_t np = 0, o = 0;
	const char *s = in;

	if (strlen(in) > METRICS_MAX_LABELS)
		return "label set too long";
	while (*s) {
		struct label_pair *q;

		if (np == MAX_LABELS)
			return "too many labels";
		q = &p[np++];
		q->name = s;
		while (name_char(*s, s == q->name, false))
			s++;
		q->nlen = (size_t)(s - q->name);
		if (q->nlen == 0)
			return "a label name must match [a-zA-Z_][a-zA-Z0-9_]*";
		if (q->nlen >= 2 && q->name[0] == '_' && q->name[1] == '_')
			return "label names starting with __ are reserved";
		if (histogram && q->nlen == 2 && !memcmp(q->name, "le", 2))
			return "a histogram cannot have a label named le";
		if (s[0] != '=' || s[1] != '"')
			return "a label must be name=\"value\"";
		s += 2;
		q->value = s;
		while (*s && *s != '"') {
			size_t n;

			if (*s == '\\') {
				if (s[1] != '\\' && s[1] != '"' && s[1] != 'n')
					return "a label value may only escape \\\\, \\\" and \\n";
				s += 2;
				continue;
			}
			if (*s == '\n')
				return "a newline in a label value must be escaped as \\n";
			n = utf8_seq_len((const unsigned char *)s);
			if (n == 0)
				return "a label value must be UTF-8";
			s += n;
		}
		if (*s != '"')
			return "unterminated label value";
		q->vlen = (size_t)(s - q->value);
		s++;
		if (*s == ',' && s[1])
			s++;
		else if (*s)
			return "labels must be separated by a comma";
	}
	qsort(p, np, sizeof(p[0]), pair_cmp);
	for (size_t i = 0; i < np; i++) {
		if (i > 0 && pair_cmp(&p[i - 1], &p[i]) == 0)
			return "a label name appears twice";
		if (o + p[i].nlen + p[i].vlen + 4 >= outlen)
			return "label set too long";
		if (i > 0)
			out[o++] = ',';
		memcpy(out + o, p[i].name, p[i].nlen);
		o += p[i].nlen;
		out[o++] = '=';
		out[o++] = '"';
		memcpy(out + o, p[i].value, p[i].vlen);
		o += p[i].vlen;
		out[o++] = '"';
	}
	out[o] = '\0';
	return NULL;
}

/* ---- the registry ---- */

static uint64_t series_hash(const char *name, const char *labels)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL; /* never a byte of a name */
	for (const char *p = labels; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h;
}

struct metrics *metrics_new_limited(const char *prefix, size_t max_series)
{
	struct metrics *m = NULL, *ret = NULL;
	size_t tsize = 64;

	if (max_series == 0)
		goto out;
	if (prefix && *prefix && (!valid_metric_name(prefix) || strlen(prefix) >= METRICS_MAX_NAME))
		goto out;
	m = calloc(1, sizeof(*m));
	if (!m)
		goto out;
	pthread_mutex_init(&m->lock, NULL);
	m->max_series = max_series;
	if (prefix && *prefix) {
		if (asprintf(&m->prefix, "%s_", prefix) < 0)
			m->prefix = NULL;
	} else {
		m->prefix = strdup("");
	}
	while (tsize < max_series && tsize < (1u << 20))
		tsize *= 2;
	m->table = calloc(tsize, sizeof(*m->table));
	m->table_mask = tsize - 1;
	m->c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	if (!m->prefix || !m->table || m->c_locale == (locale_t)0)
		goto out;
	ret = m;
	m = NULL;
out:
	metrics_free(m);
	return ret;
}

struct metrics *metrics_new(const char *prefix)
{
	return metrics_new_limited(prefix, METRICS_MAX_SERIES_DEFAULT);
}

static void series_free(struct metric *s)
{
	if (!s)
		return;
	free(s->buckets);
	free(s->labels);
	free(s);
}

void metrics_free(struct metrics *m)
{
	struct metrics_family *f, *fnext;

	if (!m)
		return;
	for (f = m->families; f; f = fnext) {
		struct metric *s, *snext;

		fnext = f->next;
		for (s = f->first; s; s = snext) {
			snext = s->fam_next;
			series_free(s);
		}
		series_free(f->overflow);
		free(f->name);
		free(f->help);
		free(f->bounds);
		free(f);
	}
	free(m->table);
	free(m->prefix);
	if (m->c_locale != (locale_t)0)
		freelocale(m->c_locale);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static struct metric *table_find_locked(struct metrics *m, const char *name, const char *labels)
{
	uint64_t h = series_hash(name, labels);

	for (struct metric *s = m->table[h & m->table_mask]; s; s = s->hash_next)
		if (s->hash == h && !strcmp(s->fam->name, name) && !strcmp(s->labels, labels))
			return s;
	return NULL;
}

static struct metrics_family *family_find_locked(struct metrics *m, const char *name)
{
	for (struct metrics_family *f = m->families; f; f = f->next)
		if (!strcmp(f->name, name))
			return f;
	return NULL;
}

static struct metrics_family *family_new_locked(struct metrics *m, const char *name,
                                                const char *help, enum metric_type type,
                                                const double *bounds, size_t nbounds)
{
	struct metrics_family *f = NULL, *ret = NULL;

	if (m->nfamilies >= METRICS_MAX_FAMILIES) {
		if (!m->warned_families)
			log_warn(
			    "metrics: more than %d metric names; %s and later ones are not kept",
			    METRICS_MAX_FAMILIES, name);
		m->warned_families = true;
		goto out;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		goto out;
	f->type = type;
	f->name = strdup(name);
	if (!f->name)
		goto out;
	if (help && *help) {
		f->help = strdup(help);
		if (!f->help)
			goto out;
	}
	if (nbounds) {
		f->bounds = malloc(nbounds * sizeof(*bounds));
		if (!f->bounds)
			goto out;
		memcpy(f->bounds, bounds, nbounds * sizeof(*bounds));
		f->nbounds = nbounds;
	}
	if (m->fam_last)
		m->fam_last->next = f;
	else
		m->families = f;
	m->fam_last = f;
	m->nfamilies++;
	ret = f;
	f = NULL;
out:
	if (f) {
		free(f->name);
		free(f->help);
		free(f->bounds);
		free(f);
	}
	return ret;
}

static struct metric *series_new(struct metrics_family *f, const char *labels)
{
	struct metric *s = NULL, *ret = NULL;
	size_t size = (sizeof(*s) + CACHELINE - 1) / CACHELINE * CACHELINE;

	s = aligned_alloc(CACHELINE, size);
	if (!s)
		goto out;
	memset(s, 0, size);
	s->type = f->type;
	s->fam = f;
	s->labels = strdup(labels);
	if (!s->labels)
		goto out;
	if (f->type == METRIC_HISTOGRAM) {
		s->nbounds = f->nbounds;
		s->bounds = f->bounds;
		s->buckets = calloc(f->nbounds + 1, sizeof(*s->buckets));
		if (!s->buckets)
			goto out;
	}
	ret = s;
	s = NULL;
out:
	series_free(s);
	return ret;
}

static bool bounds_equal(const double *a, size_t na, const double *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

/* The series (name, labels) of @type: found, created, or the overflow series. */
static struct metric *series_get(struct metrics *m, enum metric_type type, const char *name,
                                 const char *help, const char *labels, const double *bounds,
                                 size_t nbounds)
{
	char full[METRICS_MAX_NAME + 1], canon[METRICS_MAX_LABELS + 1];
	struct metrics_family *f;
	struct metric *s, *ret = NULL;
	const char *why;
	int n;

	if (!m || !name)
		return NULL;
	if (!labels)
		labels = "";
	n = snprintf(full, sizeof(full), "%s%s", m->prefix, name);
	if (n < 0 || (size_t)n >= sizeof(full) || !valid_metric_name(name)) {
		log_warn("metrics: \"%s\" is not a valid metric name (at most %d bytes of "
		         "[a-zA-Z_:][a-zA-Z0-9_:]*)",
		         name, METRICS_MAX_NAME);
		return NULL;
	}

	/* Fast path: a label set that is already canonical, as callers write them. */
	pthread_mutex_lock(&m->lock);
	s = table_find_locked(m, full, labels);
	pthread_mutex_unlock(&m->lock);
	if (s) {
		ret = s->type == type ? s : NULL;
		if (!ret)
			log_warn("metrics: %s is a %s, not a %s", full, metric_type_name(s->type),
			         metric_type_name(type));
		return ret;
	}

	why = labels_canonical(labels, type == METRIC_HISTOGRAM, canon, sizeof(canon));
	if (why) {
		log_warn("metrics: %s{%s}: %s", full, labels, why);
		return NULL;
	}
	if (type == METRIC_HISTOGRAM) {
		if (nbounds > 0 && isinf(bounds[nbounds - 1]) && bounds[nbounds - 1] > 0)
			nbounds--;
		why =
		    nbounds == 0 || nbounds > METRICS_MAX_BUCKETS ? "1 to 64 bucket bounds" : NULL;
		for (size_t i = 0; !why && i < nbounds; i++)
			if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
				why = "bucket bounds must be finite and strictly increasing";
		if (why) {
			log_warn("metrics: %s: %s", full, why);
			return NULL;
		}
	}

	pthread_mutex_lock(&m->lock);
	s = table_find_locked(m, full, canon);
	if (s) {
		ret = s->type == type ? s : NULL;
		if (!ret)
			log_warn("metrics: %s is a %s, not a %s", full, metric_type_name(s->type),
			         metric_type_name(type));
		goto out;
	}
	f = family_find_locked(m, full);
	if (f && f->type != type) {
		log_warn("metrics: %s is a %s, not a %s", full, metric_type_name(f->type),
		         metric_type_name(type));
		goto out;
	}
	if (f && type == METRIC_HISTOGRAM && !bounds_equal(f->bounds, f->nbounds, bounds, nbounds))
		log_warn("metrics: %s{%s}: other bucket bounds than its first series; theirs kept",
		         full, canon);
	if (!f) {
		f = family_new_locked(m, full, help, type, bounds, nbounds);
		if (!f)
			goto out;
	}
	if (m->nseries >= m->max_series) {
		if (!f->overflow) {
			log_warn(
			    "metrics: more than %zu series; %s{%s} and later new label sets of "
			    "%s are counted in %s{%s}",
			    m->max_series, full, canon, full, full, METRICS_OVERFLOW_LABELS);
			f->overflow = series_new(f, METRICS_OVERFLOW_LABELS);
		}
		ret = f->overflow;
		goto out;
	}
	s = series_new(f, canon);
	if (!s)
		goto out;
	s->hash = series_hash(full, canon);
	s->hash_next = m->table[s->hash & m->table_mask];
	m->table[s->hash & m->table_mask] = s;
	if (f->last)
		f->last->fam_next = s;
	else
		f->first = s;
	f->last = s;
	m->nseries++;
	ret = s;
out:
	pthread_mutex_unlock(&m->lock);
	return ret;
}

struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
                               const char *labels)
{
	return series_get(m, METRIC_COUNTER, name, help, labels, NULL, 0);
}

struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
                             const char *labels)
{
	return series_get(m, METRIC_GAUGE, name, help, labels, NULL, 0);
}

struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                 const char *labels, const double *upper_bounds, size_t n)
{
	if (!upper_bounds)
		n = 0;
	return series_get(m, METRIC_HISTOGRAM, name, help, labels, upper_bounds, n);
}

/* ---- updates (the hot path) ---- */

void metric_add(struct metric *c, uint64_t n)
{
	if (c && c->type == METRIC_COUNTER)
		atomic_fetch_add_explicit(&c->v.counter, n, memory_order_relaxed);
}

void metric_gauge_add(struct metric *g, int64_t delta)
{
	if (g && g->type == METRIC_GAUGE)
		atomic_fetch_add_explicit(&g->v.gauge, delta, memory_order_relaxed);
}

void metric_gauge_set(struct metric *g, int64_t v)
{
	if (g && g->type == METRIC_GAUGE)
		atomic_store_explicit(&g->v.gauge, v, memory_order_relaxed);
}

static uint64_t double_bits(double d)
{
	uint64_t b;

	memcpy(&b, &d, sizeof(b));
	return b;
}

void metric_observe(struct metric *h, double v)
{
	size_t lo = 0, hi;
	uint64_t old, new;

	if (!h || h->type != METRIC_HISTOGRAM || isnan(v))
		return;
	hi = h->nbounds;
	while (lo < hi) { /* first bound >= v; nbounds (the +Inf bucket) if none */
		size_t mid = lo + (hi - lo) / 2;

		if (v <= h->bounds[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	atomic_fetch_add_explicit(&h->buckets[lo], 1, memory_order_relaxed);
	old = atomic_load_explicit(&h->v.sum_bits, memory_order_relaxed);
	do
		new = double_bits(metric_bits_double(old) + v);
	while (!atomic_compare_exchange_weak_explicit(&h->v.sum_bits, &old, new,
	                                              memory_order_relaxed, memory_order_relaxed));
}

uint64_t metric_counter_value(const struct metric *c)
{
	if (!c || c->type != METRIC_COUNTER)
		return 0;
	return atomic_load_explicit(&c->v.counter, memory_order_relaxed);
}

int64_t metric_gauge_value(const struct metric *g)
{
	if (!g || g->type != METRIC_GAUGE)
		return 0;
	return atomic_load_explicit(&g->v.gauge, memory_order_relaxed);
}

void metric_histogram_value(const struct metric *h, uint64_t *count, double *sum)
{
	uint64_t c = 0;
	double s = 0;

	if (h && h->type == METRIC_HISTOGRAM) {
		for (size_t i = 0; i <= h->nbounds; i++)
			c += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
		s = metric_bits_double(atomic_load_explicit(&h->v.sum_bits, memory_order_relaxed));
	}
	if (count)
		*count = c;
	if (sum)
		*sum = s;
}
