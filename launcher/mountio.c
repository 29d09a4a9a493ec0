/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mountio: parse the mount's Prometheus text metrics and turn two readings
 * into a job's I/O. See mountio.h. The exposition format: lines of
 * `name{label="value",...} value [timestamp]`, `# HELP`/`# TYPE` comments,
 * blank lines; values are floats (also +Inf, NaN), label values escape
 * \\, \" and \n.
 */
#include "mountio.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util.h"

static const char *const names[4] = {MOUNTIO_BYTES_WRITTEN, MOUNTIO_BYTES_READ,
                                     MOUNTIO_FILES_CREATED, MOUNTIO_ERRORS};

static bool is_name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

/*
 * The labels of one sample, from just after '{': the value of label "errno"
 * (unescaped, truncated to @len) into @errno_out. Returns the position after
 * '}', or NULL if the label set is malformed.
 */
static const char *parse_labels(const char *p, const char *end, char *errno_out, size_t len)
{
	errno_out[0] = 0;
	for (;;) {
		const char *n0;
		size_t nlen, k = 0;
		bool is_errno;

		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p < end && *p == '}')
			return p + 1;
		n0 = p;
		while (p < end && is_name_char(*p, p == n0))
			p++;
		nlen = (size_t)(p - n0);
		if (!nlen)
			return NULL;
		is_errno = nlen == 5 && !strncmp(n0, "errno", 5);
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p >= end || *p++ != '=')
			return NULL;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p >= end || *p++ != '"')
			return NULL;
		while (p < end && *p != '"') {
			char c = *p++;
			if (c == '\\' && p < end) {
				c = *p++;
				if (c == 'n')
					c = '\n';
			}
			if (is_errno && k + 1 < len)
				errno_out[k++] = c;
		}
		if (p >= end)
			return NULL;
		p++; /* closing quote */
		if (is_errno)
			errno_out[k] = 0;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p < end && *p == ',')
			p++;
	}
}

static void add_errno(struct mountio_sample *s, const char *name, double v)
{
	for (size_t i = 0; i < s->n_errnos; i++) {
		if (!strcmp(s->errnos[i].name, name)) {
			s->errnos[i].count += v;
			return;
		}
	}
	if (s->n_errnos < MOUNTIO_MAX_ERRNOS) {
		snprintf(s->errnos[s->n_errnos].name, sizeof(s->errnos[0].name), "%s", name);
		s->errnos[s->n_errnos++].count = v;
	}
}

int mountio_parse(const char *text, size_t len, struct mountio_sample *out)
{
	const char *p = text, *end = text + len;
	int found = 0;

	memset(out, 0, sizeof(*out));
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *n0, *q;
		char num[64], errno_name[32] = "";
		size_t nlen, vlen;
		double v;
		char *vend;
		int which = -1;

		if (!eol)
			eol = end;
		q = p;
		p = eol < end ? eol + 1 : end;
		while (q < eol && (*q == ' ' || *q == '\t'))
			q++;
		if (q >= eol || *q == '#')
			continue;
		n0 = q;
		while (q < eol && is_name_char(*q, q == n0))
			q++;
		nlen = (size_t)(q - n0);
		for (int i = 0; i < 4; i++)
			if (nlen == strlen(names[i]) && !strncmp(n0, names[i], nlen))
				which = i;
		if (which < 0)
			continue; /* another metric, or not a sample line */
		if (q < eol && *q == '{') {
			q = parse_labels(q + 1, eol, errno_name, sizeof(errno_name));
			if (!q)
				continue;
		}
		while (q < eol && (*q == ' ' || *q == '\t'))
			q++;
		vlen = 0;
		while (q + vlen < eol && q[vlen] != ' ' && q[vlen] != '\t' && q[vlen] != '\r')
			vlen++;
		if (!vlen || vlen >= sizeof(num))
			continue;
		memcpy(num, q, vlen);
		num[vlen] = 0;
		errno = 0;
		v = strtod(num, &vend); /* also "+Inf", "NaN" */
		if (errno || *vend || !isfinite(v) || v < 0)
			continue; /* a counter is finite and never negative */
		found++;
		out->found[which] = true;
		switch (which) {
		case 0:
			out->bytes_written += v;
			break;
		case 1:
			out->bytes_read += v;
			break;
		case 2:
			out->files_created += v;
			break;
		case 3:
			out->errors += v;
			add_errno(out, errno_name, v);
			break;
		}
	}
	return found;
}

int mountio_read(const char *path, struct mountio_sample *out)
{
	struct stat st;
	char *text;
	int n;

	memset(out, 0, sizeof(*out));
	if (stat(path, &st) != 0)
		return -1;
	text = util_read_file(path, MOUNTIO_MAX_FILE);
	if (!text)
		return -1;
	n = mountio_parse(text, strlen(text), out);
	out->mtime = (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9;
	free(text);
	if (n == 0) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}

bool mountio_wait_newer(const char *path, double since, double max_s)
{
	struct timespec t0, now, nap = {0, 100 * 1000 * 1000};
	struct stat st;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (stat(path, &st) == 0 &&
		    (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9 >= since)
			return true;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9 >=
		    max_s)
			return false;
		nanosleep(&nap, NULL);
	}
}

static double delta(double before, double after, bool *reset)
{
	if (after < before) {
		*reset = true;
		return after; /* the counter restarted from zero */
	}
	return after - before;
}

static double errno_count(const struct mountio_sample *s, const char *name)
{
	for (size_t i = 0; i < s->n_errnos; i++)
		if (!strcmp(s->errnos[i].name, name))
			return s->errnos[i].count;
	return 0;
}

json_t *mountio_delta_json(const struct mountio_sample *before, const struct mountio_sample *after,
                           bool exact, const char *path, const char *note)
{
	json_t *o = json_object(), *by = json_object();
	bool reset = false;
	double w, r, c, e;

	if (!o || !by) {
		json_decref(o);
		json_decref(by);
		return NULL;
	}
	w = delta(before->bytes_written, after->bytes_written, &reset);
	r = delta(before->bytes_read, after->bytes_read, &reset);
	c = delta(before->files_created, after->files_created, &reset);
	e = delta(before->errors, after->errors, &reset);
	for (size_t i = 0; i < after->n_errnos; i++) {
		bool rs = false;
		double d =
		    delta(errno_count(before, after->errnos[i].name), after->errnos[i].count, &rs);
		reset |= rs;
		if (d > 0)
			json_object_set_new(by,
			                    after->errnos[i].name[0] ? after->errnos[i].name : "?",
			                    json_integer((json_int_t)d));
	}
	json_object_set_new(o, "bytes_written", json_integer((json_int_t)w));
	json_object_set_new(o, "bytes_read", json_integer((json_int_t)r));
	json_object_set_new(o, "files_created", json_integer((json_int_t)c));
	json_object_set_new(o, "errors", json_integer((json_int_t)e));
	json_object_set_new(o, "errors_by_errno", by);
	json_object_set_new(o, "exact", json_boolean(exact && !reset));
	json_object_set_new(o, "metrics_file", json_string(path));
	if (reset || note) {
		char buf[1024];
		snprintf(buf, sizeof(buf), "%s%s%s", note ? note : "", note && reset ? "; " : "",
		         reset ? "a counter went down: the mount restarted during the job" : "");
		json_object_set_new(o, "note", json_string(buf));
	}
	return o;
}
