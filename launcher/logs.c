/* SPDX-License-Identifier: Apache-2.0 */
/*
 * logs: `hpcops-launch logs RUN [JOB]` and the failed jobs' log tails of the
 * report. Log files are read from the bucket (ranged GETs, so --follow reads
 * only what was added) or from a local directory. See logs.h.
 */
#include "logs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws.h"
#include "launch.h"
#include "log.h"
#include "runrec.h"
#include "s3.h"
#include "util.h"

/* Bound on the log files of one run, and on the text of one in a JSON document. */
#define LOGS_MAX_FILES 4096
#define LOGS_JSON_MAX  (1u << 20)
/* What is read from the end of a file to find its last lines. */
#define LOGS_TAIL_CHUNK (64u << 10)
#define LOGS_TAIL_MAX   (16u << 20)

/* Where a run's log files are: the bucket (s3 set) or a local directory. */
struct log_src {
	struct s3_client *s3;
	const char *bucket;
	char prefix[512]; /* "_hpcops/runs/RUN/logs/" */
	char dir[4096];   /* when local */
};

struct log_file {
	char leaf[256]; /* "NAME-JOBID.out" */
	char name[128]; /* the workload, or "teardown" */
	char job_id[32];
	char stream[4]; /* "out" or "err" */
	unsigned long long size;
	unsigned long long printed; /* --follow: bytes shown */
	bool seen;
};

struct log_list {
	struct log_file *v;
	size_t n;
};

static void location(const struct log_src *src, const char *leaf, char *buf, size_t len)
{
	if (src->s3)
		snprintf(buf, len, "s3://%s/%s%s", src->bucket, src->prefix, leaf);
	else
		snprintf(buf, len, "%s/%s", src->dir, leaf);
}

/* "NAME-JOBID.out" into its parts; false for any other name. */
static bool parse_leaf(const char *leaf, struct log_file *f)
{
	size_t n = strlen(leaf);
	const char *dash;
	char base[256];

	memset(f, 0, sizeof(*f));
	if (n < 6 || n >= sizeof(base) ||
	    (strcmp(leaf + n - 4, ".out") && strcmp(leaf + n - 4, ".err")))
		return false;
	snprintf(f->leaf, sizeof(f->leaf), "%s", leaf);
	snprintf(f->stream, sizeof(f->stream), "%s", leaf + n - 3);
	snprintf(base, sizeof(base), "%.*s", (int)(n - 4), leaf);
	dash = strrchr(base, '-');
	if (!dash || dash == base || !dash[1] || strlen(dash + 1) >= sizeof(f->job_id))
		return false;
	for (const char *p = dash + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	snprintf(f->job_id, sizeof(f->job_id), "%s", dash + 1);
	snprintf(f->name, sizeof(f->name), "%.*s", (int)(dash - base), base);
	return true;
}

static int cmp_file(const void *a, const void *b)
{
	const struct log_file *x = a, *y = b;
	long long ix = atoll(x->job_id), iy = atoll(y->job_id);

	if (ix != iy)
		return ix < iy ? -1 : 1;
	return -strcmp(x->stream, y->stream); /* .out before .err */
}

static struct log_file *find_file(struct log_list *l, const char *leaf)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].leaf, leaf))
			return &l->v[i];
	return NULL;
}

/*
 * Refresh @l from the source: new files are added (sorted), sizes updated.
 * Returns 0 or -1 with a message.
 */
static int list_logs(const struct log_src *src, struct log_list *l, char *errbuf, size_t errlen)
{
	for (size_t i = 0; i < l->n; i++)
		l->v[i].seen = false;
	if (src->s3) {
		struct s3_list_params lp = {.prefix = src->prefix};
		struct s3_list_page page = {0};
		struct s3_error e;
		char eb[512], *token = NULL;

		do {
			lp.continuation_token = token;
			if (s3_list_objects(src->s3, &lp, &page, &e) != 0) {
				snprintf(errbuf, errlen, "could not list s3://%s/%s: %s",
				         src->bucket, src->prefix,
				         s3_error_format(&e, eb, sizeof(eb)));
				free(token);
				return -1;
			}
			for (size_t i = 0; i < page.n_entries && l->n < LOGS_MAX_FILES; i++) {
				const char *leaf = page.entries[i].key + strlen(src->prefix);
				struct log_file f, *have = find_file(l, leaf), *nv;
				if (have) {
					have->size = page.entries[i].size;
					have->seen = true;
					continue;
				}
				if (strchr(leaf, '/') || !parse_leaf(leaf, &f))
					continue;
				nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
				if (!nv)
					break;
				l->v = nv;
				f.size = page.entries[i].size;
				f.seen = true;
				l->v[l->n++] = f;
			}
			free(token);
			token = page.truncated && page.next_token ? strdup(page.next_token) : NULL;
			s3_list_page_free(&page);
		} while (token);
	} else {
		DIR *d = opendir(src->dir);
		struct dirent *de;

		if (!d) {
			snprintf(errbuf, errlen, "cannot read the log directory %.900s: %s",
			         src->dir, strerror(errno));
			return -1;
		}
		for (de = readdir(d); de && l->n < LOGS_MAX_FILES; de = readdir(d)) {
			struct log_file f, *have = find_file(l, de->d_name), *nv;
			char path[4400];
			struct stat st;

			snprintf(path, sizeof(path), "%s/%s", src->dir, de->d_name);
			if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
				continue;
			if (have) {
				have->size = (unsigned long long)st.st_size;
				have->seen = true;
				continue;
			}
			if (!parse_leaf(de->d_name, &f))
				continue;
			nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
			if (!nv)
				break;
			l->v = nv;
			f.size = (unsigned long long)st.st_size;
			f.seen = true;
			l->v[l->n++] = f;
		}
		closedir(d);
	}
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), cmp_file);
	return 0;
}

/* Writes what a ranged GET returns: to stdout, or into a buffer. */
struct sink_ctx {
	struct util_buf *buf; /* NULL: stdout */
	size_t written;
};

static int sink_write(void *user, const void *data, size_t len)
{
	struct sink_ctx *c = user;

	c->written += len;
	if (c->buf)
		return util_buf_append(c->buf, data, len) == 0 ? 0 : -1;
	return fwrite(data, 1, len, stdout) == len ? 0 : -1;
}

/*
 * Bytes [@off, @off + @len) of @f into @buf (NULL: straight to stdout).
 * Returns the bytes delivered, or -1 with a message.
 */
static long long read_range(const struct log_src *src, const struct log_file *f,
                            unsigned long long off, unsigned long long len, struct util_buf *buf,
                            char *errbuf, size_t errlen)
{
	struct sink_ctx c = {.buf = buf};
	char where[4800];

	if (!len)
		return 0;
	location(src, f->leaf, where, sizeof(where));
	if (src->s3) {
		struct s3_sink sink = {.write = sink_write, .user = &c};
		struct s3_error e;
		char key[1024], eb[512];

		snprintf(key, sizeof(key), "%s%s", src->prefix, f->leaf);
		if (s3_get_object_stream(src->s3, key, off, len, NULL, &sink, NULL, &e) != 0) {
			snprintf(errbuf, errlen, "could not read %.900s: %s", where,
			         s3_error_format(&e, eb, sizeof(eb)));
			return -1;
		}
	} else {
		char path[4400], b[65536];
		int fd;

		snprintf(path, sizeof(path), "%s/%s", src->dir, f->leaf);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			snprintf(errbuf, errlen, "cannot open %.900s: %s", path, strerror(errno));
			return -1;
		}
		while (c.written < len) {
			size_t want = len - c.written < sizeof(b) ? len - c.written : sizeof(b);
			ssize_t r = pread(fd, b, want, (off_t)(off + c.written));
			if (r <= 0)
				break;
			if (sink_write(&c, b, (size_t)r) != 0)
				break;
		}
		close(fd);
	}
	return (long long)c.written;
}

/*
 * The last @lines lines of @f (0: all of it, but at most @max bytes from the
 * end) into @out. *@cut says whether the beginning was left out.
 */
static int read_tail(const struct log_src *src, const struct log_file *f, long lines, size_t max,
                     struct util_buf *out, bool *cut, char *errbuf, size_t errlen)
{
	unsigned long long chunk = lines ? LOGS_TAIL_CHUNK : max;

	*cut = false;
	for (;;) {
		unsigned long long want = chunk < f->size ? chunk : f->size;
		unsigned long long off = f->size - want;
		long count = 0;
		char *p;

		out->len = 0;
		if (want && read_range(src, f, off, want, out, errbuf, errlen) < 0)
			return -1;
		if (!out->data || !out->len)
			return 0;
		/* the newlines from the end; a final newline does not start a line */
		for (size_t i = out->len; i > 0; i--) {
			if (out->data[i - 1] == '\n' && i != out->len && lines &&
			    ++count == lines) {
				memmove(out->data, out->data + i, out->len - i);
				out->len -= i;
				*cut = true;
				out->data[out->len] = 0;
				return 0;
			}
		}
		if (off == 0 || (!lines && want >= max) || chunk >= LOGS_TAIL_MAX) {
			p = off > 0 ? memchr(out->data, '\n', out->len) : NULL;
			if (p) {
				/* drop the partial first line */
				size_t skip = (size_t)(p - out->data) + 1;
				memmove(out->data, out->data + skip, out->len - skip);
				out->len -= skip;
				out->data[out->len] = 0;
			}
			*cut = off > 0;
			return 0;
		}
		chunk *= 4;
	}
}

static bool matches(const struct log_file *f, const char *job)
{
	return !job || !strcmp(f->name, job) || !strcmp(f->job_id, job) ||
	       (!strcmp(job, "hpcops-teardown") && !strcmp(f->name, "teardown"));
}

/* Does the run exist at all (any object under its prefix)? 1 yes, 0 no, -1 error. */
static int run_exists(struct aws *a, const char *run_id, char *errbuf, size_t errlen)
{
	struct s3_list_params lp = {.max_keys = 1};
	struct s3_list_page page = {0};
	struct s3_error e;
	char prefix[512], eb[512];
	int rc;

	runrec_key(prefix, sizeof(prefix), run_id, "");
	lp.prefix = prefix;
	if (s3_list_objects(a->s3, &lp, &page, &e) != 0) {
		snprintf(errbuf, errlen, "could not list %s: %s", prefix,
		         s3_error_format(&e, eb, sizeof(eb)));
		return -1;
	}
	rc = page.n_entries > 0;
	s3_list_page_free(&page);
	return rc;
}

static bool run_record_written(struct aws *a, const char *run_id)
{
	struct s3_object_info info;
	struct s3_error e;
	char key[512];

	runrec_key(key, sizeof(key), run_id, "run.json");
	return s3_head_object(a->s3, key, &info, &e) == 0;
}

static void print_header(const struct log_src *src, const struct log_file *f, bool first)
{
	char where[4800];

	location(src, f->leaf, where, sizeof(where));
	printf("%s==> %s (job %s, %s, std%s) <==\n", first ? "" : "\n", where, f->job_id, f->name,
	       f->stream);
}

/* Log text as a JSON string: bytes that are not UTF-8 become '?'. */
static json_t *text_json(const char *p, size_t n)
{
	json_t *j = json_stringn(p, n);
	char *copy;

	if (j || !n)
		return j ? j : json_string("");
	copy = malloc(n);
	if (!copy)
		return NULL;
	for (size_t i = 0; i < n; i++)
		copy[i] = (unsigned char)p[i] < 0x80 ? p[i] : '?';
	j = json_stringn(copy, n);
	free(copy);
	return j;
}

static json_t *file_json(const struct log_src *src, const struct log_file *f)
{
	json_t *o = json_object();
	char where[4800];

	location(src, f->leaf, where, sizeof(where));
	json_object_set_new(o, "job_id", json_string(f->job_id));
	json_object_set_new(o, "name", json_string(f->name));
	json_object_set_new(o, "stream", json_string(f->stream));
	json_object_set_new(o, "location", json_string(where));
	json_object_set_new(o, "size", json_integer((json_int_t)f->size));
	return o;
}

/* --follow: print what was added to each file since the last pass. */
static int follow_pass(const struct launch_opts *o, const struct log_src *src, struct log_list *l,
                       const char *job, const char **last_leaf, char *errbuf, size_t errlen)
{
	for (size_t i = 0; i < l->n; i++) {
		struct log_file *f = &l->v[i];
		struct util_buf b = {.max = 64u << 20};
		long long got;

		if (!matches(f, job) || !f->seen)
			continue;
		if (f->size < f->printed) {
			/* replaced by a shorter object: show it again */
			f->printed = 0;
			*last_leaf = NULL;
		}
		if (f->size == f->printed)
			continue;
		if (o->json) {
			got = read_range(src, f, f->printed, f->size - f->printed, &b, errbuf,
			                 errlen);
			if (got < 0) {
				util_buf_free(&b);
				return -1;
			}
			json_t *ev = file_json(src, f);
			json_object_set_new(ev, "offset", json_integer((json_int_t)f->printed));
			json_object_set_new(ev, "text", text_json(b.data ? b.data : "", b.len));
			char *line = json_dumps(ev, JSON_COMPACT);
			if (line)
				printf("%s\n", line);
			free(line);
			json_decref(ev);
		} else {
			if (!*last_leaf || strcmp(*last_leaf, f->leaf))
				print_header(src, f, *last_leaf == NULL);
			got = read_range(src, f, f->printed, f->size - f->printed, NULL, errbuf,
			                 errlen);
			if (got < 0)
				return -1;
		}
		util_buf_free(&b);
		f->printed += (unsigned long long)got;
		*last_leaf = f->leaf;
		fflush(stdout);
	}
	return 0;
}

int launch_cmd_logs(struct launch_opts *o)
{
	struct launch_spec *s = &o->spec;
	struct log_src src = {0};
	struct log_list l = {0};
	struct aws a;
	const char *run_id = s->run_id, *job = NULL, *last_leaf = NULL;
	char eb[1024], where[4800];
	json_t *doc = NULL, *files = NULL;
	size_t shown = 0;
	int rc = LAUNCH_EXIT_INFRA;

	if (o->argc_rest >= 1)
		run_id = o->argv_rest[0];
	if (o->argc_rest >= 2)
		job = o->argv_rest[1];
	if (o->argc_rest > 2)
		return launch_usage(o, "unexpected argument \"%s\": give RUN and at most one JOB",
		                    o->argv_rest[2]);
	if (!run_id)
		return launch_usage(o, "which run? give RUN (see `hpcops-launch list --bucket B`)");
	if (!spec_valid_name(run_id, 128))
		return launch_usage(
		    o, "run id \"%s\" may only hold letters, digits, '-', '_' and '.'", run_id);
	if (!s->bucket)
		return launch_usage(o, "give --bucket BUCKET (the run's records are there)");
	if (aws_open(&a, o, true, false, eb, sizeof(eb)) != 0)
		return launch_error(o, LAUNCH_EXIT_INFRA, "infrastructure_failure", "%s", eb);
	src.bucket = s->bucket;
	runrec_key(src.prefix, sizeof(src.prefix), run_id, "logs/");
	if (o->log_dir)
		snprintf(src.dir, sizeof(src.dir), "%s", o->log_dir);
	else
		src.s3 = a.s3;
	location(&src, "", where, sizeof(where));

	if (o->follow) {
		bool last_pass = false;
		int ex = run_exists(&a, run_id, eb, sizeof(eb));

		if (ex <= 0) {
			rc = ex < 0 ? launch_error(o, LAUNCH_EXIT_INFRA, "aws_error", "%s", eb)
			            : launch_error(o, LAUNCH_EXIT_INFRA, "not_found",
			                           "no run %s in s3://%s (see `hpcops-launch list "
			                           "--bucket %s`)",
			                           run_id, s->bucket, s->bucket);
			goto out;
		}
		for (;;) {
			if (list_logs(&src, &l, eb, sizeof(eb)) != 0 ||
			    follow_pass(o, &src, &l, job, &last_leaf, eb, sizeof(eb)) != 0) {
				rc = launch_error(o, LAUNCH_EXIT_INFRA, "aws_error", "%s", eb);
				goto out;
			}
			if (last_pass)
				break;
			/* one more pass once the run record is there: the last logs landed */
			last_pass = run_record_written(&a, run_id);
			if (!last_pass && !launch_sleep(s->poll_seconds))
				break;
		}
		rc = LAUNCH_EXIT_OK;
		goto out;
	}

	if (list_logs(&src, &l, eb, sizeof(eb)) != 0) {
		rc = launch_error(o, LAUNCH_EXIT_INFRA, o->log_dir ? "not_found" : "aws_error",
		                  "%s", eb);
		goto out;
	}
	for (size_t i = 0; i < l.n; i++)
		shown += matches(&l.v[i], job);
	if (!shown) {
		int ex = o->log_dir ? 1 : run_exists(&a, run_id, eb, sizeof(eb));
		char have[1024] = "";
		size_t off = 0;

		for (size_t i = 0; i < l.n && off < sizeof(have); i++)
			if (!i || strcmp(l.v[i].job_id, l.v[i - 1].job_id))
				off +=
				    (size_t)snprintf(have + off, sizeof(have) - off, "%s%s (%s)",
				                     off ? ", " : "", l.v[i].name, l.v[i].job_id);
		if (ex < 0)
			rc = launch_error(o, LAUNCH_EXIT_INFRA, "aws_error", "%s", eb);
		else if (!ex)
			rc = launch_error(
			    o, LAUNCH_EXIT_INFRA, "not_found",
			    "no run %s in s3://%s (see `hpcops-launch list --bucket %s`)", run_id,
			    s->bucket, s->bucket);
		else if (job && l.n)
			rc = launch_error(o, LAUNCH_EXIT_INFRA, "not_found",
			                  "no log of job %s in %s; jobs with logs: %s", job, where,
			                  have);
		else
			rc = launch_error(
			    o, LAUNCH_EXIT_INFRA, "not_found",
			    "run %s has no logs in %s (yet): Slurm writes them there through the "
			    "bucket's mount (a file appears when its job closes it); with "
			    "--log-dir "
			    "they are in that directory",
			    run_id, where);
		goto out;
	}
	if (o->json) {
		doc = json_object();
		files = json_array();
		json_object_set_new(doc, "run_id", json_string(run_id));
		json_object_set_new(doc, "bucket", json_string(s->bucket));
		json_object_set_new(doc, "source", json_string(where));
	}
	for (size_t i = 0, k = 0; i < l.n; i++) {
		struct log_file *f = &l.v[i];
		struct util_buf b = {.max = LOGS_TAIL_MAX + LOGS_TAIL_CHUNK};
		bool cut = false;

		if (!matches(f, job))
			continue;
		if (o->json || o->lines) {
			if (read_tail(&src, f, o->lines, o->json ? LOGS_JSON_MAX : f->size + 1, &b,
			              &cut, eb, sizeof(eb)) != 0) {
				util_buf_free(&b);
				rc = launch_error(o, LAUNCH_EXIT_INFRA, "aws_error", "%s", eb);
				goto out;
			}
		}
		if (o->json) {
			json_t *e = file_json(&src, f);
			json_object_set_new(e, "text", text_json(b.data ? b.data : "", b.len));
			json_object_set_new(e, "truncated", json_boolean(cut));
			json_array_append_new(files, e);
		} else {
			print_header(&src, f, k++ == 0);
			if (o->lines) {
				fwrite(b.data ? b.data : "", 1, b.len, stdout);
			} else if (read_range(&src, f, 0, f->size, NULL, eb, sizeof(eb)) < 0) {
				util_buf_free(&b);
				rc = launch_error(o, LAUNCH_EXIT_INFRA, "aws_error", "%s", eb);
				goto out;
			}
		}
		util_buf_free(&b);
	}
	if (o->json) {
		json_object_set_new(doc, "logs", files);
		files = NULL;
		launch_print_json(doc);
		doc = NULL;
	}
	fflush(stdout);
	rc = LAUNCH_EXIT_OK;
out:
	json_decref(files);
	json_decref(doc);
	free(l.v);
	aws_close(&a);
	return rc;
}

/* ---------------------------------------------------------------- the report */

void logs_tail_failed(const struct launch_opts *o, struct aws *a, const struct run_job *j,
                      json_t *jdoc)
{
	const struct launch_spec *s = &o->spec;
	static const char *const streams[] = {"err", "out"};
	json_t *logs = json_object(), *files = json_array();
	char cmd[1024], eb[512];
	/* where the cluster writes them: --mount-dir, else the template's MountDir */
	const char *mount =
	    s->mount_dir ? s->mount_dir : spec_get_kv(s->parameters, s->n_parameters, "MountDir");

	if (!j->name || !j->job_id || !logs || !files) {
		json_decref(logs);
		json_decref(files);
		return;
	}
	snprintf(cmd, sizeof(cmd), "hpcops-launch logs %s %s --bucket %s%s%s", s->run_id, j->name,
	         s->bucket, o->log_dir ? " --log-dir " : "", o->log_dir ? o->log_dir : "");
	if (!o->json)
		printf("Log of failed job %s (%s):\n", j->name, j->job_id);
	for (size_t k = 0; k < 2; k++) {
		struct log_src src = {.bucket = s->bucket};
		struct log_file f;
		struct util_buf b = {.max = LOGS_TAIL_MAX + LOGS_TAIL_CHUNK};
		char leaf[256], where[4800], path[4400];
		struct stat st;
		bool cut = false, found = false;
		json_t *e, *lines;

		snprintf(leaf, sizeof(leaf), "%s-%s.%s", j->name, j->job_id, streams[k]);
		if (!parse_leaf(leaf, &f))
			continue;
		/* --log-dir; else the bucket; else the mount dir, if this machine sees it */
		if (o->log_dir) {
			snprintf(src.dir, sizeof(src.dir), "%s", o->log_dir);
		} else {
			struct s3_object_info info;
			struct s3_error se;
			char key[1024];

			src.s3 = a->s3;
			runrec_key(src.prefix, sizeof(src.prefix), s->run_id, "logs/");
			snprintf(key, sizeof(key), "%s%s", src.prefix, leaf);
			if (s3_head_object(a->s3, key, &info, &se) == 0) {
				f.size = info.size;
				found = true;
			} else if (mount) {
				src.s3 = NULL;
				snprintf(src.dir, sizeof(src.dir), "%s/" RUNREC_PREFIX "%s/logs",
				         mount, s->run_id);
			}
		}
		if (!src.s3) {
			snprintf(path, sizeof(path), "%s/%s", src.dir, leaf);
			if (stat(path, &st) == 0) {
				f.size = (unsigned long long)st.st_size;
				found = true;
			}
		}
		if (!found) {
			if (!o->log_dir) {
				src.s3 = a->s3;
				runrec_key(src.prefix, sizeof(src.prefix), s->run_id, "logs/");
			}
			location(&src, leaf, where, sizeof(where));
			if (!o->json)
				printf("  %s: not there (yet)\n", where);
			continue;
		}
		location(&src, leaf, where, sizeof(where));
		if (read_tail(&src, &f, LOGS_TAIL_LINES, 0, &b, &cut, eb, sizeof(eb)) != 0) {
			if (!o->json)
				printf("  %s: %s\n", where, eb);
			util_buf_free(&b);
			continue;
		}
		e = file_json(&src, &f);
		lines = json_array();
		if (!o->json)
			printf("  %s (%llu bytes)%s\n", where, f.size,
			       !f.size ? ": empty"
			       : cut   ? ", its last lines:"
			               : ":");
		for (char *p = b.data; p && p < b.data + b.len;) {
			char *nl = memchr(p, '\n', (size_t)(b.data + b.len - p));
			size_t n = nl ? (size_t)(nl - p) : (size_t)(b.data + b.len - p);
			json_array_append_new(lines, text_json(p, n));
			if (!o->json)
				printf("    | %.*s\n", (int)n, p);
			p += n + 1;
		}
		json_object_set_new(e, "last_lines", lines);
		json_array_append_new(files, e);
		util_buf_free(&b);
	}
	if (!o->json)
		printf("  all of it: %s\n", cmd);
	json_object_set_new(logs, "files", files);
	json_object_set_new(logs, "command", json_string(cmd));
	if (jdoc)
		json_object_set_new(jdoc, "logs", logs);
	else
		json_decref(logs);
}
