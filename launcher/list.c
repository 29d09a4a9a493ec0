/* SPDX-License-Identifier: Apache-2.0 */
/*
 * list: `hpcops-launch list`, the runs recorded in the bucket, newest first.
 * One LIST of _hpcops/runs/ finds the runs; per run, one LIST of its records
 * (when it began: its first object; how many job records) and a GET of its
 * run record (state, end, jobs, stack) or, while it has none, of its spec
 * (the stack).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws.h"
#include "launch.h"
#include "runrec.h"
#include "s3.h"
#include "util.h"

/* Bounds: runs examined, and objects listed per run. */
#define LIST_MAX_RUNS    1000
#define LIST_MAX_OBJECTS 10000

struct run_row {
	char id[160];
	char state[32];
	time_t start; /* its first object */
	time_t end;   /* the run record's end, 0 = none */
	long jobs;
	long failed; /* -1 = not known yet */
	char stack[160];
	int stack_deleted; /* -1 unknown, 0 no, 1 yes */
	long retained;
	char written_by[32];
};

static int cmp_row(const void *a, const void *b)
{
	const struct run_row *x = a, *y = b;

	if (x->start != y->start)
		return x->start > y->start ? -1 : 1; /* newest first */
	return -strcmp(x->id, y->id);
}

/* The run ids: the common prefixes under _hpcops/runs/. */
static int list_runs(struct s3_client *s3, struct run_row **rows, size_t *n, char *errbuf,
                     size_t errlen)
{
	struct s3_list_params lp = {.prefix = RUNREC_PREFIX, .delimiter = "/"};
	struct s3_list_page page = {0};
	struct s3_error e;
	char eb[512], *token = NULL;

	do {
		lp.continuation_token = token;
		if (s3_list_objects(s3, &lp, &page, &e) != 0) {
			snprintf(errbuf, errlen, "could not list %s: %s", RUNREC_PREFIX,
			         s3_error_format(&e, eb, sizeof(eb)));
			free(token);
			return -1;
		}
		for (size_t i = 0; i < page.n_prefixes && *n < LIST_MAX_RUNS; i++) {
			const char *id = page.prefixes[i] + strlen(RUNREC_PREFIX);
			size_t len = strlen(id);
			struct run_row *nv;

			if (len < 2 || len - 1 >= sizeof(nv->id))
				continue;
			nv = realloc(*rows, (*n + 1) * sizeof(*nv));
			if (!nv)
				break;
			*rows = nv;
			memset(&nv[*n], 0, sizeof(nv[*n]));
			snprintf(nv[*n].id, sizeof(nv[*n].id), "%.*s", (int)(len - 1), id);
			nv[*n].failed = -1;
			nv[*n].stack_deleted = -1;
			(*n)++;
		}
		free(token);
		token = page.truncated && page.next_token && *n < LIST_MAX_RUNS
		            ? strdup(page.next_token)
		            : NULL;
		s3_list_page_free(&page);
	} while (token);
	return 0;
}

static void fill_row(struct s3_client *s3, struct run_row *r)
{
	struct s3_list_params lp = {0};
	struct s3_list_page page = {0};
	struct s3_error e;
	char prefix[256], key[512], eb[512], *token = NULL;
	bool have_run = false, have_spec = false, missing;
	size_t seen = 0;
	json_t *doc;

	runrec_key(prefix, sizeof(prefix), r->id, "");
	lp.prefix = prefix;
	do {
		lp.continuation_token = token;
		if (s3_list_objects(s3, &lp, &page, &e) != 0)
			break;
		for (size_t i = 0; i < page.n_entries; i++) {
			const char *leaf = page.entries[i].key + strlen(prefix);
			if (!r->start || page.entries[i].mtime < r->start)
				r->start = page.entries[i].mtime;
			have_run |= !strcmp(leaf, "run.json");
			have_spec |= !strcmp(leaf, "spec.json");
			r->jobs += !strncmp(leaf, "jobs/", 5);
		}
		seen += page.n_entries;
		free(token);
		token = page.truncated && page.next_token && seen < LIST_MAX_OBJECTS
		            ? strdup(page.next_token)
		            : NULL;
		s3_list_page_free(&page);
	} while (token);

	snprintf(r->state, sizeof(r->state), "IN_PROGRESS");
	doc = have_run ? runrec_get(s3, runrec_key(key, sizeof(key), r->id, "run.json"), &missing,
	                            NULL, eb, sizeof(eb))
	               : NULL;
	if (doc) {
		json_t *jobs = json_object_get(doc, "jobs"), *j, *v;
		size_t i;
		time_t t;

		if (json_is_string(json_object_get(doc, "state")))
			snprintf(r->state, sizeof(r->state), "%s",
			         json_string_value(json_object_get(doc, "state")));
		if (json_is_string(json_object_get(doc, "written_by")))
			snprintf(r->written_by, sizeof(r->written_by), "%s",
			         json_string_value(json_object_get(doc, "written_by")));
		v = json_object_get(doc, "end");
		if (json_is_string(v) && util_parse_iso8601(json_string_value(v), &t) == 0)
			r->end = t;
		if (json_is_array(jobs)) {
			r->jobs = (long)json_array_size(jobs);
			r->failed = 0;
			json_array_foreach(jobs, i, j)
			{
				struct run_job rj;
				if (runrec_job_from_json(j, &rj) == 0) {
					r->failed += !runrec_job_ok(&rj);
					runrec_job_clear(&rj);
				} else {
					r->failed++;
				}
			}
		}
		v = json_object_get(doc, "stack_deleted");
		if (json_is_boolean(v))
			r->stack_deleted = json_is_true(v);
		r->retained = (long)json_array_size(json_object_get(doc, "retained_resources"));
	} else if (have_spec) {
		/* no run record yet: the stack it is for, from its spec */
		doc = runrec_get(s3, runrec_key(key, sizeof(key), r->id, "spec.json"), &missing,
		                 NULL, eb, sizeof(eb));
	}
	if (doc && json_is_string(json_object_get(doc, "stack_name")))
		snprintf(r->stack, sizeof(r->stack), "%s",
		         json_string_value(json_object_get(doc, "stack_name")));
	json_decref(doc);
}

int launch_cmd_list(struct launch_opts *o)
{
	struct launch_spec *s = &o->spec;
	struct run_row *rows = NULL;
	size_t n = 0, shown;
	struct aws a;
	char eb[1024];
	int rc = LAUNCH_EXIT_INFRA;

	if (!s->bucket)
		return launch_usage(o, "give --bucket BUCKET (runs are recorded under "
		                       "s3://BUCKET/_hpcops/runs/)");
	if (aws_open(&a, o, true, false, eb, sizeof(eb)) != 0)
		return launch_error(o, LAUNCH_EXIT_INFRA, "infrastructure_failure", "%s", eb);
	if (list_runs(a.s3, &rows, &n, eb, sizeof(eb)) != 0) {
		rc = launch_error(o, LAUNCH_EXIT_INFRA, "aws_error", "%s", eb);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		fill_row(a.s3, &rows[i]);
	if (n > 1)
		qsort(rows, n, sizeof(*rows), cmp_row);
	shown = o->limit && (size_t)o->limit < n ? (size_t)o->limit : n;
	if (o->json) {
		json_t *doc = json_object(), *arr = json_array();
		for (size_t i = 0; i < shown; i++) {
			struct run_row *r = &rows[i];
			json_t *e = json_object();
			char t1[32], t2[32];
			json_object_set_new(e, "run_id", json_string(r->id));
			json_object_set_new(e, "state", json_string(r->state));
			json_object_set_new(e, "start",
			                    r->start
			                        ? json_string(runrec_time(r->start, t1, sizeof(t1)))
			                        : json_null());
			json_object_set_new(e, "end",
			                    r->end
			                        ? json_string(runrec_time(r->end, t2, sizeof(t2)))
			                        : json_null());
			json_object_set_new(e, "jobs", json_integer(r->jobs));
			json_object_set_new(e, "jobs_failed",
			                    r->failed >= 0 ? json_integer(r->failed) : json_null());
			json_object_set_new(e, "stack_name",
			                    r->stack[0] ? json_string(r->stack) : json_null());
			json_object_set_new(e, "stack_deleted",
			                    r->stack_deleted < 0 ? json_null()
			                                         : json_boolean(r->stack_deleted));
			json_object_set_new(e, "retained_resources", json_integer(r->retained));
			json_object_set_new(e, "written_by",
			                    r->written_by[0] ? json_string(r->written_by)
			                                     : json_null());
			json_array_append_new(arr, e);
		}
		json_object_set_new(doc, "bucket", json_string(s->bucket));
		json_object_set_new(doc, "runs", arr);
		json_object_set_new(doc, "total", json_integer((json_int_t)n));
		launch_print_json(doc);
	} else {
		printf("%-32s %-16s %-20s %-20s %-12s %s\n", "RUN", "STATE", "START", "END", "JOBS",
		       "STACK");
		for (size_t i = 0; i < shown; i++) {
			struct run_row *r = &rows[i];
			char t1[32], t2[32], jobs[48], stack[256];
			if (r->failed > 0)
				snprintf(jobs, sizeof(jobs), "%ld (%ld failed)", r->jobs,
				         r->failed);
			else
				snprintf(jobs, sizeof(jobs), "%ld", r->jobs);
			snprintf(stack, sizeof(stack), "%s%s", r->stack[0] ? r->stack : "-",
			         r->retained             ? " (deleted, resources RETAINED)"
			         : r->stack_deleted == 0 ? " (NOT deleted)"
			                                 : "");
			printf("%-32s %-16s %-20s %-20s %-12s %s\n", r->id, r->state,
			       runrec_time(r->start, t1, sizeof(t1)),
			       r->end ? runrec_time(r->end, t2, sizeof(t2)) : "-", jobs, stack);
		}
		if (shown < n)
			printf("(%zu older run(s) not shown: --limit %ld)\n", n - shown, o->limit);
		if (!n)
			printf("(no runs in s3://%s/%s)\n", s->bucket, RUNREC_PREFIX);
	}
	rc = LAUNCH_EXIT_OK;
out:
	free(rows);
	aws_close(&a);
	return rc;
}
