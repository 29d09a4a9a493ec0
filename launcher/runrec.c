/* SPDX-License-Identifier: Apache-2.0 */
/*
 * runrec: job and run records as JSON objects in the artifact bucket, read
 * and written through the S3 client. See runrec.h.
 */
#include "runrec.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "s3.h"
#include "util.h"

const char *runrec_key(char *buf, size_t len, const char *run_id, const char *leaf)
{
	snprintf(buf, len, RUNREC_PREFIX "%s/%s", run_id, leaf);
	return buf;
}

void runrec_new_run_id(char *buf, size_t len)
{
	unsigned char r[3] = {0};
	char hex[7], ts[17];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (read(fd, r, sizeof(r)) != (ssize_t)sizeof(r))
			r[0] = (unsigned char)getpid();
		close(fd);
	}
	util_hex(r, sizeof(r), hex);
	util_amz_date(time(NULL), ts);
	snprintf(buf, len, "%s-%s", ts, hex);
}

const char *runrec_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (!t || !gmtime_r(&t, &tm)) {
		snprintf(buf, len, "%s", "");
		return buf;
	}
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

static void set_str(json_t *o, const char *k, const char *v)
{
	json_object_set_new(o, k, v ? json_string(v) : json_null());
}

static void set_time(json_t *o, const char *k, time_t t)
{
	char b[32];

	json_object_set_new(o, k, t ? json_string(runrec_time(t, b, sizeof(b))) : json_null());
}

json_t *runrec_job_json(const struct run_job *j)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	set_str(o, "run_id", j->run_id);
	set_str(o, "job_id", j->job_id);
	set_str(o, "name", j->name);
	set_str(o, "node", j->node);
	set_str(o, "state", j->state);
	json_object_set_new(o, "exit_code",
	                    j->exit_code >= 0 ? json_integer(j->exit_code) : json_null());
	set_time(o, "start", j->start);
	set_time(o, "end", j->end);
	if (j->mount_io)
		json_object_set(o, "mount_io", j->mount_io);
	return o;
}

static char *dup_field(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

static time_t time_field(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	time_t t = 0;

	if (json_is_string(v) && util_parse_iso8601(json_string_value(v), &t) == 0)
		return t;
	return 0;
}

int runrec_job_from_json(json_t *o, struct run_job *j)
{
	json_t *ec;

	memset(j, 0, sizeof(*j));
	j->exit_code = -1;
	if (!json_is_object(o))
		return -1;
	j->run_id = dup_field(o, "run_id");
	j->job_id = dup_field(o, "job_id");
	j->name = dup_field(o, "name");
	j->node = dup_field(o, "node");
	j->state = dup_field(o, "state");
	ec = json_object_get(o, "exit_code");
	if (json_is_integer(ec))
		j->exit_code = (int)json_integer_value(ec);
	j->start = time_field(o, "start");
	j->end = time_field(o, "end");
	if (json_is_object(json_object_get(o, "mount_io")))
		j->mount_io = json_incref(json_object_get(o, "mount_io"));
	if (!j->job_id || !j->state) {
		runrec_job_clear(j);
		return -1;
	}
	return 0;
}

void runrec_job_clear(struct run_job *j)
{
	free(j->run_id);
	free(j->job_id);
	free(j->name);
	free(j->node);
	free(j->state);
	json_decref(j->mount_io);
	memset(j, 0, sizeof(*j));
	j->exit_code = -1;
}

bool runrec_job_ok(const struct run_job *j)
{
	return j->state && !strcmp(j->state, "COMPLETED") && j->exit_code == 0;
}

int runrec_put(struct s3_client *s3, const char *key, json_t *doc, char *errbuf, size_t errlen)
{
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	struct s3_error e;
	char eb[512];
	int rc = -1;

	if (!text) {
		snprintf(errbuf, errlen, "out of memory writing %s", key);
		return -1;
	}
	if (s3_put_object(s3, key, text, strlen(text), NULL, &e) != 0) {
		snprintf(errbuf, errlen, "could not write s3 object %s: %s", key,
		         s3_error_format(&e, eb, sizeof(eb)));
		goto out;
	}
	rc = 0;
out:
	free(text);
	return rc;
}

/* Collects a GET body up to RUNREC_MAX_BYTES. */
struct body {
	struct util_buf b;
};

static int body_write(void *user, const void *data, size_t len)
{
	struct body *b = user;

	return util_buf_append(&b->b, data, len) == 0 ? 0 : -1;
}

static void body_reset(void *user)
{
	struct body *b = user;

	b->b.len = 0;
	if (b->b.data)
		b->b.data[0] = 0;
}

json_t *runrec_get(struct s3_client *s3, const char *key, bool *missing, char *etag, char *errbuf,
                   size_t errlen)
{
	struct body body = {.b = {.max = RUNREC_MAX_BYTES}};
	struct s3_sink sink = {.write = body_write, .reset = body_reset, .user = &body};
	struct s3_object_info info = {0};
	struct s3_error e;
	json_error_t je;
	json_t *doc = NULL;
	char eb[512];

	*missing = false;
	if (s3_get_object_stream(s3, key, 0, 0, NULL, &sink, &info, &e) != 0) {
		if (e.err == S3_ERR_NO_SUCH_KEY) {
			*missing = true;
			errbuf[0] = 0;
		} else {
			snprintf(errbuf, errlen, "could not read s3 object %s: %s", key,
			         s3_error_format(&e, eb, sizeof(eb)));
		}
		goto out;
	}
	if (etag)
		snprintf(etag, 80, "%s", info.etag);
	doc = json_loadb(body.b.data ? body.b.data : "", body.b.len, 0, &je);
	if (!doc)
		snprintf(errbuf, errlen, "record %s is not JSON: %s", key, je.text);
out:
	util_buf_free(&body.b);
	return doc;
}

static int cmp_job(const void *a, const void *b)
{
	const struct run_job *x = a, *y = b;
	long long ix = atoll(x->job_id), iy = atoll(y->job_id);

	return ix < iy ? -1 : ix > iy;
}

void runrec_jobs_free(struct run_job *jobs, size_t n)
{
	for (size_t i = 0; jobs && i < n; i++)
		runrec_job_clear(&jobs[i]);
	free(jobs);
}

int runrec_list_jobs(struct s3_client *s3, const char *run_id, struct run_job **jobs, size_t *n,
                     char *errbuf, size_t errlen)
{
	struct s3_list_params lp = {0};
	struct s3_list_page page = {0};
	struct s3_error e;
	char prefix[256], eb[512], *token = NULL;
	struct run_job *v = NULL;
	size_t cnt = 0;
	int rc = -1;

	*jobs = NULL;
	*n = 0;
	runrec_key(prefix, sizeof(prefix), run_id, "jobs/");
	lp.prefix = prefix;
	do {
		lp.continuation_token = token;
		if (s3_list_objects(s3, &lp, &page, &e) != 0) {
			snprintf(errbuf, errlen, "could not list %s: %s", prefix,
			         s3_error_format(&e, eb, sizeof(eb)));
			goto out;
		}
		for (size_t i = 0; i < page.n_entries; i++) {
			bool missing;
			char etag[80] = "";
			json_t *doc;
			struct run_job *nv;

			if (cnt >= 4096)
				break;
			doc = runrec_get(s3, page.entries[i].key, &missing, etag, eb, sizeof(eb));
			if (!doc) {
				if (missing)
					continue;
				snprintf(errbuf, errlen, "%s", eb);
				goto out;
			}
			nv = realloc(v, (cnt + 1) * sizeof(*v));
			if (!nv) {
				json_decref(doc);
				snprintf(errbuf, errlen, "out of memory");
				goto out;
			}
			v = nv;
			if (runrec_job_from_json(doc, &v[cnt]) == 0) {
				snprintf(v[cnt].etag, sizeof(v[cnt].etag), "%s", etag);
				cnt++;
			}
			json_decref(doc);
		}
		free(token);
		token = page.truncated && page.next_token ? strdup(page.next_token) : NULL;
		s3_list_page_free(&page);
	} while (token);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_job);
	*jobs = v;
	*n = cnt;
	v = NULL;
	cnt = 0;
	rc = 0;
out:
	s3_list_page_free(&page);
	free(token);
	runrec_jobs_free(v, cnt);
	return rc;
}

void runrec_outputs_free(struct run_output *o, size_t n)
{
	for (size_t i = 0; o && i < n; i++)
		free(o[i].key);
	free(o);
}

int runrec_list_outputs(struct s3_client *s3, const char *prefix, time_t since, size_t max,
                        struct run_output **out, size_t *n, char *errbuf, size_t errlen)
{
	struct s3_list_params lp = {.prefix = prefix};
	struct s3_list_page page = {0};
	struct s3_error e;
	char eb[512], *token = NULL;
	struct run_output *v = NULL;
	size_t cnt = 0;
	int rc = -1;

	*out = NULL;
	*n = 0;
	do {
		lp.continuation_token = token;
		if (s3_list_objects(s3, &lp, &page, &e) != 0) {
			snprintf(errbuf, errlen, "could not list outputs under \"%s\": %s", prefix,
			         s3_error_format(&e, eb, sizeof(eb)));
			goto out;
		}
		for (size_t i = 0; i < page.n_entries && cnt < max; i++) {
			struct run_output *nv;
			if (since && page.entries[i].mtime < since)
				continue;
			nv = realloc(v, (cnt + 1) * sizeof(*v));
			if (!nv)
				goto nomem;
			v = nv;
			v[cnt].key = strdup(page.entries[i].key);
			if (!v[cnt].key)
				goto nomem;
			v[cnt].size = page.entries[i].size;
			v[cnt].mtime = page.entries[i].mtime;
			cnt++;
		}
		free(token);
		token =
		    page.truncated && page.next_token && cnt < max ? strdup(page.next_token) : NULL;
		s3_list_page_free(&page);
	} while (token);
	*out = v;
	*n = cnt;
	v = NULL;
	cnt = 0;
	rc = 0;
	goto out;
nomem:
	snprintf(errbuf, errlen, "out of memory");
out:
	s3_list_page_free(&page);
	free(token);
	runrec_outputs_free(v, cnt);
	return rc;
}
