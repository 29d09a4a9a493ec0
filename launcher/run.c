/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run: the pipeline side of a run: `up` (create the stack), `wait` (follow
 * the stack and the records, cost guard), `down`, `status`, and `run`, which
 * chains them and reports. Whatever happens, the stack is deleted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws.h"
#include "cfn.h"
#include "endpoint.h"
#include "launch.h"
#include "log.h"
#include "logs.h"
#include "plan.h"
#include "runrec.h"
#include "s3.h"
#include "slurm.h"
#include "stack.h"
#include "submit.h"
#include "util.h"

/* Bound on the outputs listed in a report. */
#define RUN_MAX_OUTPUTS 1000
/* How long the cleanup waits for a stack deletion before giving up. */
#define RUN_DELETE_WAIT_S (45 * 60)
/* After cancelling jobs, how long to wait for their wrappers' final records. */
#define RUN_CANCEL_GRACE_S 15
/* Consecutive failed polls of S3/CloudFormation before giving up. */
#define RUN_MAX_POLL_ERRORS 20

enum follow_end {
	FOLLOW_DONE,       /* the run record is there */
	FOLLOW_BUDGET,     /* --max-minutes passed */
	FOLLOW_SIGNAL,     /* SIGINT / SIGTERM */
	FOLLOW_STACK_GONE, /* the stack ended (deleted or failed) without a run record */
	FOLLOW_LOST,       /* the teardown job ended without writing the run record */
	FOLLOW_API,        /* S3 / CloudFormation kept failing */
};

struct follow {
	struct launch_opts *o;
	struct aws *a;
	const char *stack; /* id or name; NULL with --provider slurm */
	double start;
	double deadline;
	struct submitted sub;
	bool have_sub;
	struct run_job *shown; /* states already printed */
	size_t n_shown;
	json_t *run; /* the run record once read */
	char stack_status[64];
	char note[1024];       /* why it ended, for the report */
	char stack_note[4096]; /* what happened to the stack */
	bool stack_deleted;
	struct stack_retained retained; /* resources the stack's deletion left behind */
};

static void run_key(const struct follow *f, char *buf, size_t len, const char *leaf)
{
	runrec_key(buf, len, f->o->spec.run_id, leaf);
}

/* Print job state changes since the last poll. */
static int show_job_progress(struct follow *f, char *errbuf, size_t errlen)
{
	struct run_job *jobs = NULL;
	size_t n = 0;

	if (runrec_list_jobs(f->a->s3, f->o->spec.run_id, &jobs, &n, errbuf, errlen) != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct run_job *j = &jobs[i];
		bool same = false;
		for (size_t k = 0; k < f->n_shown; k++) {
			if (!strcmp(f->shown[k].job_id, j->job_id)) {
				same = !strcmp(f->shown[k].state, j->state);
				break;
			}
		}
		if (same || f->o->json)
			continue;
		if (j->exit_code >= 0 && strcmp(j->state, "RUNNING"))
			launch_say("job %s (%s): %s, exit code %d", j->name ? j->name : "?",
			           j->job_id, j->state, j->exit_code);
		else
			launch_say("job %s (%s): %s on %s", j->name ? j->name : "?", j->job_id,
			           j->state, j->node ? j->node : "?");
	}
	runrec_jobs_free(f->shown, f->n_shown);
	f->shown = jobs;
	f->n_shown = n;
	return 0;
}

static bool read_run_record(struct follow *f, char *errbuf, size_t errlen, bool *err)
{
	char key[512];
	bool missing;

	*err = false;
	run_key(f, key, sizeof(key), "run.json");
	f->run = runrec_get(f->a->s3, key, &missing, NULL, errbuf, errlen);
	if (!f->run && !missing)
		*err = true;
	return f->run != NULL;
}

static enum follow_end follow(struct follow *f)
{
	struct launch_opts *o = f->o;
	char eb[1024], status[64];
	int errors = 0, lost_checks = 0;

	for (;;) {
		bool bad = false, rec_err;

		if (show_job_progress(f, eb, sizeof(eb)) != 0) {
			log_warn("%s", eb);
			bad = true;
		}
		if (read_run_record(f, eb, sizeof(eb), &rec_err)) {
			snprintf(f->note, sizeof(f->note), "the teardown job wrote the run record");
			show_job_progress(f, eb, sizeof(eb));
			return FOLLOW_DONE;
		}
		if (rec_err) {
			log_warn("%s", eb);
			bad = true;
		}
		if (f->stack) {
			if (stack_status(f->a->cfn, f->stack, status, sizeof(status), eb,
			                 sizeof(eb)) != 0) {
				log_warn("%s", eb);
				bad = true;
			} else {
				if (strcmp(status, f->stack_status) && !o->json)
					launch_say("stack %s: %s", o->spec.stack_name, status);
				snprintf(f->stack_status, sizeof(f->stack_status), "%s", status);
				if (!strcmp(status, "DELETE_COMPLETE") ||
				    cfn_status_is_failed(status)) {
					/* The teardown writes the record before it deletes: look
					 * once more. */
					if (read_run_record(f, eb, sizeof(eb), &rec_err)) {
						show_job_progress(f, eb, sizeof(eb));
						return FOLLOW_DONE;
					}
					snprintf(
					    f->note, sizeof(f->note),
					    "stack %s went %s before any run record was written",
					    o->spec.stack_name, status);
					return FOLLOW_STACK_GONE;
				}
			}
		} else {
			if (!f->have_sub) {
				int r = submit_read(f->a, o->spec.run_id, &f->sub, eb, sizeof(eb));
				if (r == 0)
					f->have_sub = true;
				else if (r < 0)
					log_warn("%s", eb);
			}
			if (f->have_sub && f->sub.teardown_id[0]) {
				struct slurm_job sj;
				int r = slurm_show_job(f->sub.teardown_id, &sj, eb, sizeof(eb));
				if (r < 0)
					log_warn("%s", eb);
				else if (r == 1 || slurm_state_is_final(sj.state))
					lost_checks++;
				/* Give the record a couple of polls to land after the job ends. */
				if (lost_checks > 3) {
					snprintf(f->note, sizeof(f->note),
					         "teardown job %s ended (%s) without writing the "
					         "run record",
					         f->sub.teardown_id,
					         r == 1 ? "unknown to Slurm" : sj.state);
					return FOLLOW_LOST;
				}
			}
		}
		errors = bad ? errors + 1 : 0;
		if (errors >= RUN_MAX_POLL_ERRORS) {
			snprintf(f->note, sizeof(f->note), "%d polls in a row failed; last: %.900s",
			         errors, eb);
			return FOLLOW_API;
		}
		if (launch_now_s() > f->deadline) {
			snprintf(f->note, sizeof(f->note), "budget of %g minutes exceeded",
			         o->spec.max_minutes);
			return FOLLOW_BUDGET;
		}
		if (!launch_sleep(o->spec.poll_seconds)) {
			snprintf(f->note, sizeof(f->note), "interrupted by signal %d",
			         (int)launch_signal);
			return FOLLOW_SIGNAL;
		}
	}
}

/*
 * The run record says what became of the stack: deleted or not, and each
 * resource CloudFormation retained (they may still cost money).
 */
static void record_stack_outcome(struct follow *f)
{
	char key[512], eb[512];

	json_object_set_new(f->run, "stack_deleted", json_boolean(f->stack_deleted));
	if (f->stack_note[0])
		json_object_set_new(f->run, "stack_note", json_string(f->stack_note));
	if (f->retained.n)
		json_object_set_new(f->run, "retained_resources",
		                    stack_retained_json(&f->retained));
	run_key(f, key, sizeof(key), "run.json");
	if (runrec_put(f->a->s3, key, f->run, eb, sizeof(eb)) != 0)
		log_err("%s", eb);
}

/* "  RETAINED Logical (Type) physical-id: reason" lines. */
static void print_retained(const struct stack_retained *r)
{
	for (size_t i = 0; i < r->n; i++)
		printf("  RETAINED %s (%s) %s: %s\n", r->v[i].logical_id, r->v[i].type,
		       r->v[i].physical_id[0] ? r->v[i].physical_id : "(no physical id)",
		       r->v[i].reason);
}

static const char *end_state(enum follow_end end)
{
	switch (end) {
	case FOLLOW_BUDGET:
		return "BUDGET_EXCEEDED";
	case FOLLOW_SIGNAL:
		return "INTERRUPTED";
	default:
		return "FAILED";
	}
}

/* Cancel the run's jobs on a Slurm we can reach, and let the wrappers record it. */
static void cancel_slurm_jobs(struct follow *f)
{
	const char *ids[SPEC_MAX_WORKLOADS + 1];
	size_t n = 0;
	char eb[512];

	if (!f->have_sub && submit_read(f->a, f->o->spec.run_id, &f->sub, eb, sizeof(eb)) == 0)
		f->have_sub = true;
	if (!f->have_sub)
		return;
	for (size_t i = 0; i < f->sub.n && n < SPEC_MAX_WORKLOADS; i++)
		ids[n++] = f->sub.job_ids[i];
	if (f->sub.teardown_id[0])
		ids[n++] = f->sub.teardown_id;
	if (!f->o->json)
		launch_say("cancelling %zu Slurm job(s) of run %s", n, f->o->spec.run_id);
	if (slurm_cancel(ids, n, eb, sizeof(eb)) != 0)
		log_err("%s", eb);
}

/* Wait a little for every job record to be final (wrappers write on SIGTERM). */
static void settle_records(struct follow *f)
{
	double until = launch_now_s() + RUN_CANCEL_GRACE_S;
	char eb[512];

	while (launch_now_s() < until) {
		bool live = false;
		if (show_job_progress(f, eb, sizeof(eb)) != 0)
			break;
		for (size_t i = 0; i < f->n_shown; i++)
			live |= !strcmp(f->shown[i].state, "RUNNING");
		if (!live)
			break;
		struct timespec ts = {0, 500 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* No teardown wrote a run record: write one saying how the run ended. */
static void write_own_run_record(struct follow *f, enum follow_end end)
{
	char key[512], eb[512], ts[32];
	json_t *r = json_object(), *jobs = json_array();

	if (!r || !jobs) {
		json_decref(r);
		json_decref(jobs);
		return;
	}
	for (size_t i = 0; i < f->n_shown; i++)
		json_array_append_new(jobs, runrec_job_json(&f->shown[i]));
	json_object_set_new(r, "run_id", json_string(f->o->spec.run_id));
	json_object_set_new(r, "stack_name",
	                    f->o->spec.stack_name ? json_string(f->o->spec.stack_name)
	                                          : json_null());
	json_object_set_new(r, "state", json_string(end_state(end)));
	json_object_set_new(r, "reason", json_string(f->note));
	json_object_set_new(r, "jobs", jobs);
	json_object_set_new(r, "end", json_string(runrec_time(time(NULL), ts, sizeof(ts))));
	json_object_set_new(r, "written_by", json_string("wait"));
	run_key(f, key, sizeof(key), "run.json");
	if (runrec_put(f->a->s3, key, r, eb, sizeof(eb)) != 0)
		log_err("%s", eb);
	json_decref(f->run);
	f->run = r;
}

/* Under --json a document of a command that failed carries {"error": {"code", "message"}}. */
static void set_error(json_t *doc, const char *code, const char *message)
{
	json_t *e = json_object();

	json_object_set_new(e, "code", json_string(code));
	json_object_set_new(e, "message", json_string(message ? message : ""));
	json_object_set_new(doc, "error", e);
}

/* One line per job that has counts from the mount on its node. */
static void report_mount_io(const struct run_job *v, size_t n)
{
	bool header = false;

	for (size_t k = 0; k < n; k++) {
		json_t *m = v[k].mount_io;
		if (!json_is_object(m))
			continue;
		if (!header)
			printf("  I/O through the mount on each job's node:\n");
		header = true;
		if (json_object_get(m, "error")) {
			printf("    %-20s %s\n", v[k].name ? v[k].name : v[k].job_id,
			       json_string_value(json_object_get(m, "error")));
			continue;
		}
		printf("    %-20s %" JSON_INTEGER_FORMAT " bytes written, %" JSON_INTEGER_FORMAT
		       " read, %" JSON_INTEGER_FORMAT " files created, %" JSON_INTEGER_FORMAT
		       " errors (%s)\n",
		       v[k].name ? v[k].name : v[k].job_id,
		       json_integer_value(json_object_get(m, "bytes_written")),
		       json_integer_value(json_object_get(m, "bytes_read")),
		       json_integer_value(json_object_get(m, "files_created")),
		       json_integer_value(json_object_get(m, "errors")),
		       json_is_true(json_object_get(m, "exact"))
		           ? "exact: the node was the job's alone"
		           : "not exact: see the job record");
	}
}

/* Jobs of the report: the run record's list when there is one, else the records. */
static void report_jobs(struct follow *f, json_t *out_jobs, bool *all_ok, size_t *n_jobs)
{
	json_t *rj = f->run ? json_object_get(f->run, "jobs") : NULL;
	struct run_job *v = f->shown;
	size_t n = f->n_shown;
	struct run_job *tmp = NULL;
	size_t i;
	json_t *e;

	if (json_is_array(rj) && json_array_size(rj) > 0) {
		tmp = calloc(json_array_size(rj), sizeof(*tmp));
		n = 0;
		json_array_foreach(rj, i, e)
		{
			if (tmp && runrec_job_from_json(e, &tmp[n]) == 0)
				n++;
		}
		v = tmp;
	}
	*all_ok = n > 0;
	*n_jobs = n;
	if (!f->o->json && n) {
		printf("  %-10s %-20s %-14s %5s  %-16s %-20s %s\n", "JOB", "NAME", "STATE", "EXIT",
		       "NODE", "START", "END");
	}
	for (size_t k = 0; k < n; k++) {
		char s1[32], s2[32], ec[16];
		if (!runrec_job_ok(&v[k]))
			*all_ok = false;
		json_array_append_new(out_jobs, runrec_job_json(&v[k]));
		if (f->o->json)
			continue;
		snprintf(ec, sizeof(ec), "%d", v[k].exit_code);
		printf("  %-10s %-20s %-14s %5s  %-16s %-20s %s\n", v[k].job_id,
		       v[k].name ? v[k].name : "?", v[k].state, v[k].exit_code >= 0 ? ec : "-",
		       v[k].node ? v[k].node : "-", runrec_time(v[k].start, s1, sizeof(s1)),
		       runrec_time(v[k].end, s2, sizeof(s2)));
	}
	if (!f->o->json)
		report_mount_io(v, n);
	/* What a failed job said, and where the rest of it is. */
	for (size_t k = 0; k < n; k++)
		if (!runrec_job_ok(&v[k]))
			logs_tail_failed(f->o, f->a, &v[k], json_array_get(out_jobs, k));
	if (tmp)
		runrec_jobs_free(tmp, n);
}

static time_t first_start(const struct follow *f)
{
	time_t t = 0;

	for (size_t i = 0; i < f->n_shown; i++)
		if (f->shown[i].start && (!t || f->shown[i].start < t))
			t = f->shown[i].start;
	return t;
}

/* "not every job completed with exit 0: solve (FAILED, exit 3), ..." into @buf. */
static void failed_jobs_note(json_t *jobs, char *buf, size_t len)
{
	size_t off, i;
	json_t *j;

	off = (size_t)snprintf(buf, len, "not every job completed with exit 0:");
	json_array_foreach(jobs, i, j)
	{
		const char *st = json_string_value(json_object_get(j, "state"));
		json_t *ec = json_object_get(j, "exit_code");
		if (st && !strcmp(st, "COMPLETED") && json_integer_value(ec) == 0)
			continue;
		char code[32] = "unknown";
		if (json_is_integer(ec))
			snprintf(code, sizeof(code), "%" JSON_INTEGER_FORMAT,
			         json_integer_value(ec));
		if (off < len)
			off +=
			    (size_t)snprintf(buf + off, len - off, " %s (%s, exit %s)",
			                     json_string_value(json_object_get(j, "name")) ?: "?",
			                     st ? st : "?", code);
	}
}

/* Delete the stack / cancel the jobs as needed, report, and pick the exit code. */
static int finish(struct follow *f, enum follow_end end, time_t outputs_since)
{
	struct launch_opts *o = f->o;
	struct launch_spec *s = &o->spec;
	json_t *doc = json_object(), *jobs = json_array(), *outs = json_array();
	struct run_output *ov = NULL;
	size_t nout = 0, n_jobs = 0;
	bool all_ok = false;
	const char *result;
	char eb[1024];
	int rc;

	if (end == FOLLOW_BUDGET && !o->json)
		launch_say("budget of %g minutes exceeded: %s", s->max_minutes,
		           f->stack ? "deleting the stack anyway (cost guard)"
		                    : "cancelling the jobs (cost guard)");
	if (end == FOLLOW_SIGNAL && !o->json)
		launch_say("interrupted (signal %d): %s", (int)launch_signal,
		           f->stack ? "deleting the stack before exiting"
		                    : "cancelling the jobs before exiting");
	if (f->stack) {
		enum stack_result sr =
		    stack_delete(f->a->cfn, f->stack, s->role_arn, s->poll_seconds,
		                 launch_now_s() + RUN_DELETE_WAIT_S, o->json, &f->retained,
		                 f->stack_note, sizeof(f->stack_note));
		f->stack_deleted = sr == STACK_OK;
		if (!f->stack_deleted && !o->json)
			launch_say("stack %s could NOT be deleted: %s. It may still be running and "
			           "billing: "
			           "run `hpcops-launch down --stack-name %s`",
			           s->stack_name, f->stack_note, s->stack_name);
	} else if (end != FOLLOW_DONE) {
		cancel_slurm_jobs(f);
	}
	if (end != FOLLOW_DONE) {
		settle_records(f);
		if (!f->run) {
			bool err;
			if (!read_run_record(f, eb, sizeof(eb), &err))
				write_own_run_record(f, end);
		}
	}
	if (f->stack && f->run)
		record_stack_outcome(f);

	if (!o->json)
		printf("Run %s (%s%s%s)\n", s->run_id, spec_provider_name(s->provider),
		       s->stack_name && f->stack ? ", stack " : "",
		       s->stack_name && f->stack ? s->stack_name : "");
	report_jobs(f, jobs, &all_ok, &n_jobs);
	if (!outputs_since)
		outputs_since = first_start(f);
	if (runrec_list_outputs(f->a->s3, s->outputs_prefix ? s->outputs_prefix : "output-",
	                        outputs_since ? outputs_since - 5 : 0, RUN_MAX_OUTPUTS, &ov, &nout,
	                        eb, sizeof(eb)) != 0)
		log_warn("%s", eb);
	if (!o->json)
		printf("Outputs in s3://%s (prefix \"%s\"): %zu\n", s->bucket,
		       s->outputs_prefix ? s->outputs_prefix : "output-", nout);
	for (size_t i = 0; i < nout; i++) {
		json_t *e = json_object();
		json_object_set_new(e, "key", json_string(ov[i].key));
		json_object_set_new(e, "size", json_integer((json_int_t)ov[i].size));
		json_array_append_new(outs, e);
		if (!o->json)
			printf("  s3://%s/%s (%llu bytes)\n", s->bucket, ov[i].key, ov[i].size);
	}
	runrec_outputs_free(ov, nout);

	switch (end) {
	case FOLLOW_DONE: {
		const char *st = json_string_value(json_object_get(f->run, "state"));
		if (n_jobs == 0 && st && strcmp(st, "COMPLETED")) {
			const char *why = json_string_value(json_object_get(f->run, "error"));
			snprintf(f->note, sizeof(f->note), "the run failed before any job ran: %s",
			         why ? why : st);
			rc = LAUNCH_EXIT_INFRA;
			result = "infrastructure_failure";
		} else if (all_ok) {
			rc = LAUNCH_EXIT_OK;
			result = "succeeded";
		} else {
			rc = LAUNCH_EXIT_JOB_FAILED;
			result = "job_failed";
			failed_jobs_note(jobs, f->note, sizeof(f->note));
		}
		break;
	}
	case FOLLOW_BUDGET:
		rc = LAUNCH_EXIT_BUDGET;
		result = "budget_exceeded";
		break;
	case FOLLOW_SIGNAL:
		rc = LAUNCH_EXIT_INTERRUPTED;
		result = "interrupted";
		break;
	default:
		rc = LAUNCH_EXIT_INFRA;
		result = "infrastructure_failure";
		break;
	}
	if (f->stack && (!f->stack_deleted || f->retained.n))
		rc = LAUNCH_EXIT_STACK_LEFT;

	if (o->json) {
		json_object_set_new(doc, "run_id", json_string(s->run_id));
		json_object_set_new(doc, "provider", json_string(spec_provider_name(s->provider)));
		json_object_set_new(doc, "stack_name",
		                    f->stack && s->stack_name ? json_string(s->stack_name)
		                                              : json_null());
		json_object_set_new(doc, "stack_deleted",
		                    f->stack ? json_boolean(f->stack_deleted) : json_null());
		if (f->stack_note[0])
			json_object_set_new(doc, "stack_note", json_string(f->stack_note));
		if (f->stack)
			json_object_set_new(doc, "retained_resources",
			                    stack_retained_json(&f->retained));
		json_object_set_new(doc, "result", json_string(result));
		json_object_set_new(doc, "reason", json_string(f->note));
		json_object_set_new(doc, "exit_code", json_integer(rc));
		if (rc == LAUNCH_EXIT_STACK_LEFT)
			set_error(doc, "stack_left",
			          f->stack_deleted
			              ? "CloudFormation retained resources of the stack "
			                "(retained_resources): they may still cost money"
			              : f->stack_note);
		else if (rc != LAUNCH_EXIT_OK)
			set_error(doc, result, f->note);
		json_object_set_new(doc, "bucket", json_string(s->bucket));
		json_object_set_new(doc, "jobs", jobs);
		json_object_set_new(doc, "outputs", outs);
		jobs = outs = NULL;
		json_dumpf(doc, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else {
		if (f->stack && f->retained.n) {
			printf("Stack %s: deleted with FORCE_DELETE_STACK, but CloudFormation "
			       "RETAINED "
			       "%zu resource(s) it could not delete (they may still cost money):\n",
			       s->stack_name, f->retained.n);
			print_retained(&f->retained);
		} else if (f->stack) {
			printf("Stack %s: %s%s%s\n", s->stack_name,
			       f->stack_deleted ? "deleted" : "NOT DELETED",
			       f->stack_note[0] ? " - " : "", f->stack_note);
		}
		printf("Result: %s", result);
		if (rc == LAUNCH_EXIT_OK)
			printf(" - all %zu job(s) completed with exit code 0", n_jobs);
		else if (rc == LAUNCH_EXIT_STACK_LEFT && f->stack_deleted)
			printf(" - %s; but CloudFormation RETAINED %zu resource(s) of the stack "
			       "(above): they may still cost money, delete them",
			       f->note, f->retained.n);
		else if (rc == LAUNCH_EXIT_STACK_LEFT)
			printf(" - %s; but the stack is still there and may bill: run "
			       "`hpcops-launch down --stack-name %s`",
			       f->note, s->stack_name);
		else if (f->note[0])
			printf(" - %s", f->note);
		printf(" (exit %d)\n", rc);
	}
	fflush(stdout);
	json_decref(doc);
	json_decref(jobs);
	json_decref(outs);
	return rc;
}

static void follow_free(struct follow *f)
{
	runrec_jobs_free(f->shown, f->n_shown);
	submitted_free(&f->sub);
	json_decref(f->run);
	stack_retained_free(&f->retained);
	memset(f, 0, sizeof(*f));
}

/* ---------------------------------------------------------------- up */

static int store_spec(struct launch_opts *o, struct aws *a, char *errbuf, size_t errlen)
{
	char key[512];
	json_t *doc = spec_to_json(&o->spec);
	int rc;

	if (!doc) {
		snprintf(errbuf, errlen, "out of memory");
		return -1;
	}
	rc = runrec_put(a->s3, runrec_key(key, sizeof(key), o->spec.run_id, "spec.json"), doc,
	                errbuf, errlen);
	json_decref(doc);
	return rc;
}

/* The run record of a run whose stack never came up (so that `list` shows how it ended). */
static void record_failed_up(struct launch_opts *o, struct aws *a, const char *state,
                             const char *reason, bool deleted, const struct stack_retained *kept,
                             const char *note)
{
	char key[512], eb[512], ts[32];
	json_t *r = json_object();

	if (!r)
		return;
	json_object_set_new(r, "run_id", json_string(o->spec.run_id));
	json_object_set_new(r, "stack_name", json_string(o->spec.stack_name));
	json_object_set_new(r, "state", json_string(state));
	json_object_set_new(r, "reason", json_string(reason));
	json_object_set_new(r, "jobs", json_array());
	json_object_set_new(r, "end", json_string(runrec_time(time(NULL), ts, sizeof(ts))));
	json_object_set_new(r, "written_by", json_string("up"));
	json_object_set_new(r, "stack_deleted", json_boolean(deleted));
	if (note && note[0])
		json_object_set_new(r, "stack_note", json_string(note));
	if (kept && kept->n)
		json_object_set_new(r, "retained_resources", stack_retained_json(kept));
	if (runrec_put(a->s3, runrec_key(key, sizeof(key), o->spec.run_id, "run.json"), r, eb,
	               sizeof(eb)) != 0)
		log_err("%s", eb);
	json_decref(r);
}

/* Create the stack; on any failure delete it. Returns an exit code. */
static int do_up(struct launch_opts *o, struct aws *a, char **stack_id, double deadline)
{
	struct launch_spec *s = &o->spec;
	struct plan_stack ps;
	struct stack_retained kept = {0};
	char *url = NULL, reason[4096], eb[1024], note[4096] = "", kept_until[32] = "";
	enum stack_result sr;
	bool deleted = true;
	int rc = LAUNCH_EXIT_INFRA;

	*stack_id = NULL;
	if (plan_stack_make(o, &ps, eb, sizeof(eb)) != 0)
		return launch_error(o, LAUNCH_EXIT_USAGE, "usage_error", "%s", eb);
	if (store_spec(o, a, eb, sizeof(eb)) != 0) {
		rc = launch_error(o, LAUNCH_EXIT_INFRA, "aws_error",
		                  "cannot store the launch spec for the head node: %s", eb);
		goto out;
	}
	if (ps.by_url) {
		/* Too big for TemplateBody: CloudFormation fetches it from the bucket. */
		char key[512];
		struct s3_error se;

		runrec_key(key, sizeof(key), s->run_id, "template");
		if (s3_put_object(a->s3, key, ps.body, ps.body_len, NULL, &se) != 0) {
			rc = launch_error(o, LAUNCH_EXIT_INFRA, "aws_error",
			                  "template %s is over %d bytes and could not be put in "
			                  "s3://%s/%s: %s",
			                  s->template_path, CFN_MAX_TEMPLATE_BODY, s->bucket, key,
			                  s3_error_format(&se, eb, sizeof(eb)));
			goto out;
		}
		if (!o->json)
			launch_say("template is over %d bytes: passing it by URL from s3://%s/%s",
			           CFN_MAX_TEMPLATE_BODY, s->bucket, key);
		url = aws_object_url(a, s->bucket, key);
		ps.p.template_url = url;
	}
	if (!o->json)
		launch_say("run %s: creating stack %s in %s (OnFailure=%s)", s->run_id,
		           s->stack_name, a->region, ps.p.on_failure);
	sr = stack_create(a->cfn, &ps.p, s->poll_seconds, deadline, o->json, stack_id, reason,
	                  sizeof(reason));
	switch (sr) {
	case STACK_OK:
		if (!o->json)
			launch_say("stack %s: CREATE_COMPLETE", s->stack_name);
		rc = LAUNCH_EXIT_OK;
		goto out;
	case STACK_FAILED:
		fprintf(stderr, "hpcops-launch: stack %s failed to create:\n  %s\n", s->stack_name,
		        reason);
		rc = LAUNCH_EXIT_INFRA;
		if (s->keep_on_failure && *stack_id && deadline > launch_now_s()) {
			/* Kept to look at, but the budget still deletes it (cost guard). */
			runrec_time((time_t)deadline, kept_until, sizeof(kept_until));
			if (!o->json)
				launch_say(
				    "keeping the failed stack %s for debugging (--keep-on-failure) "
				    "until the budget ends at %s (%.0f s from now); Ctrl-C "
				    "deletes it now",
				    s->stack_name, kept_until, deadline - launch_now_s());
			if (launch_sleep(deadline - launch_now_s())) {
				if (!o->json)
					launch_say(
					    "budget of %g minutes over: deleting the failed stack "
					    "%s (cost guard)",
					    s->max_minutes, s->stack_name);
			} else {
				launch_say(
				    "interrupted (signal %d): deleting the failed stack %s now",
				    (int)launch_signal, s->stack_name);
			}
		}
		break;
	case STACK_INTERRUPTED:
		launch_say("%s: deleting the stack before exiting", reason);
		rc = LAUNCH_EXIT_INTERRUPTED;
		break;
	case STACK_TIMED_OUT:
		launch_say(
		    "budget of %g minutes exceeded while creating: deleting the stack (cost guard)",
		    s->max_minutes);
		rc = LAUNCH_EXIT_BUDGET;
		break;
	case STACK_API_ERROR:
		fprintf(stderr, "hpcops-launch: %s\n", reason);
		rc = LAUNCH_EXIT_INFRA;
		break;
	}
	if (*stack_id) {
		if (stack_delete(a->cfn, *stack_id, s->role_arn, s->poll_seconds,
		                 launch_now_s() + RUN_DELETE_WAIT_S, o->json, &kept, note,
		                 sizeof(note)) != STACK_OK) {
			fprintf(stderr, "hpcops-launch: stack %s could NOT be deleted: %s\n",
			        s->stack_name, note);
			deleted = false;
			rc = LAUNCH_EXIT_STACK_LEFT;
		} else if (kept.n) {
			char list[3000];
			fprintf(stderr,
			        "hpcops-launch: stack %s: CloudFormation RETAINED %zu "
			        "resource(s), which may still cost money: %s\n",
			        s->stack_name, kept.n,
			        stack_retained_text(&kept, list, sizeof(list)));
			rc = LAUNCH_EXIT_STACK_LEFT;
		}
	}
	record_failed_up(o, a,
	                 sr == STACK_INTERRUPTED ? "INTERRUPTED"
	                 : sr == STACK_TIMED_OUT ? "BUDGET_EXCEEDED"
	                                         : "FAILED",
	                 reason, deleted, &kept, note);
	if (o->json) {
		json_t *d = json_object();
		json_object_set_new(d, "run_id", json_string(s->run_id));
		json_object_set_new(d, "stack_name", json_string(s->stack_name));
		json_object_set_new(d, "stack_id",
		                    *stack_id ? json_string(*stack_id) : json_null());
		json_object_set_new(d, "result",
		                    json_string(sr == STACK_FAILED        ? "create_failed"
		                                : sr == STACK_INTERRUPTED ? "interrupted"
		                                : sr == STACK_TIMED_OUT
		                                    ? "budget_exceeded"
		                                    : "infrastructure_failure"));
		json_object_set_new(d, "reason", json_string(reason));
		json_object_set_new(d, "stack_deleted", json_boolean(deleted));
		if (note[0])
			json_object_set_new(d, "stack_note", json_string(note));
		json_object_set_new(d, "retained_resources", stack_retained_json(&kept));
		if (kept_until[0])
			json_object_set_new(d, "kept_until", json_string(kept_until));
		json_object_set_new(d, "exit_code", json_integer(rc));
		if (rc == LAUNCH_EXIT_STACK_LEFT)
			set_error(d, "stack_left", note);
		else
			set_error(d, json_string_value(json_object_get(d, "result")), reason);
		launch_print_json(d);
	} else {
		if (kept.n) {
			printf("Stack %s: deleted with FORCE_DELETE_STACK, but CloudFormation "
			       "RETAINED "
			       "%zu resource(s) it could not delete (they may still cost money):\n",
			       s->stack_name, kept.n);
			print_retained(&kept);
		}
	}
out:
	stack_retained_free(&kept);
	plan_stack_free(&ps);
	free(url);
	return rc;
}

static void ensure_run_id(struct launch_spec *s)
{
	char id[64];

	if (s->run_id)
		return;
	runrec_new_run_id(id, sizeof(id));
	s->run_id = strdup(id);
}

/* ---------------------------------------------------------------- --dry-run */

static json_t *kv_array_json(const struct cfn_kv *kv, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < n; i++)
		json_object_set_new(o, kv[i].key, json_string(kv[i].value ? kv[i].value : ""));
	return o;
}

/*
 * What `run`/`up` would do, shown and not done: no AWS call, no Slurm call,
 * nothing written. @with_jobs: also the sbatch submissions.
 */
static int dry_run(struct launch_opts *o, bool with_jobs)
{
	struct launch_spec *s = &o->spec;
	struct plan_stack ps;
	struct plan_jobs pj;
	bool cfn = s->provider == SPEC_PROVIDER_CLOUDFORMATION;
	const char *region = s->region                      ? s->region
	                     : getenv("AWS_REGION")         ? getenv("AWS_REGION")
	                     : getenv("AWS_DEFAULT_REGION") ? getenv("AWS_DEFAULT_REGION")
	                                                    : NULL;
	const char *mount = NULL;
	char eb[1024], key[512], *endpoint = NULL, mount_ph[] = "<MountDir>";
	json_t *doc = json_object(), *jobs = json_array(), *st = NULL;
	const char **ids = NULL;
	int rc = LAUNCH_EXIT_INFRA;

	bool generated = !s->run_id;

	memset(&ps, 0, sizeof(ps));
	memset(&pj, 0, sizeof(pj));
	ensure_run_id(s);
	if (!doc || !jobs || !s->run_id)
		goto out;
	runrec_key(key, sizeof(key), s->run_id, "spec.json");
	if (cfn) {
		if (plan_stack_make(o, &ps, eb, sizeof(eb)) != 0) {
			rc = launch_error(o, LAUNCH_EXIT_USAGE, "usage_error", "%s", eb);
			goto out;
		}
		if (endpoint_resolve("cloudformation", o->cfn_endpoint,
		                     region ? region : "us-east-1", &endpoint, eb,
		                     sizeof(eb)) != 0) {
			rc = launch_usage(o, "CloudFormation endpoint: %s", eb);
			goto out;
		}
		/* The head node gets its mount dir from the template's MountDir. */
		mount = spec_get_kv(s->parameters, s->n_parameters, "MountDir");
		if (!mount)
			mount = s->mount_dir ? s->mount_dir : mount_ph;
	}
	if (with_jobs) {
		if (plan_jobs_init(o, mount, &pj, eb, sizeof(eb)) != 0) {
			rc = launch_error(o, LAUNCH_EXIT_INFRA, "infrastructure_failure", "%s", eb);
			goto out;
		}
		if (cfn) /* the bootstrap's install on the head node */
			snprintf(pj.self, sizeof(pj.self), "/opt/hpcops/bin/hpcops-launch");
		ids = calloc(s->n_workloads + 1, sizeof(*ids));
		if (!ids)
			goto out;
		for (size_t i = 0; i < s->n_workloads; i++) {
			char ph[96];
			snprintf(ph, sizeof(ph), "<JOBID-%s>", s->workloads[i].name);
			ids[i] = strdup(ph);
			if (!ids[i] || plan_add_workload(o, &pj, i, mount) != 0)
				goto out;
		}
		if (plan_add_teardown(o, &pj, ids, s->n_workloads) != 0)
			goto out;
	}

	if (cfn) {
		json_t *caps = json_array();
		st = json_object();
		for (size_t i = 0; i < ps.p.n_capabilities; i++)
			json_array_append_new(caps, json_string(ps.p.capabilities[i]));
		json_object_set_new(st, "stack_name", json_string(s->stack_name));
		json_object_set_new(st, "region", region ? json_string(region) : json_null());
		json_object_set_new(st, "endpoint", json_string(endpoint));
		json_object_set_new(
		    st, "template",
		    json_string(s->template_path ? s->template_path : s->template_url));
		json_object_set_new(st, "template_bytes",
		                    s->template_path ? json_integer((json_int_t)ps.body_len)
		                                     : json_null());
		json_object_set_new(
		    st, "template_passed_as",
		    json_string(ps.by_url || !ps.body ? "TemplateURL" : "TemplateBody"));
		json_object_set_new(st, "on_failure", json_string(ps.p.on_failure));
		json_object_set_new(st, "client_request_token", json_string(ps.token));
		json_object_set_new(st, "role_arn",
		                    s->role_arn ? json_string(s->role_arn) : json_null());
		json_object_set_new(st, "parameters", kv_array_json(ps.params, ps.n_params));
		json_object_set_new(st, "capabilities", caps);
		json_object_set_new(st, "tags", kv_array_json(ps.tags, ps.n_tags));
	}
	for (size_t i = 0; i < pj.n; i++) {
		json_t *j = json_object(), *args = json_array();
		char *line = plan_shell_line(&pj.v[i]);
		for (size_t k = 0; k < pj.v[i].n_args; k++)
			json_array_append_new(args, json_string(pj.v[i].args[k]));
		json_object_set_new(j, "name", json_string(pj.v[i].name));
		json_object_set_new(j, "args", args);
		json_object_set_new(j, "command", line ? json_string(line) : json_null());
		json_object_set_new(j, "script", json_string(pj.v[i].script));
		json_array_append_new(jobs, j);
		free(line);
	}

	if (o->json) {
		json_object_set_new(doc, "dry_run", json_true());
		json_object_set_new(doc, "run_id", json_string(s->run_id));
		json_object_set_new(doc, "provider", json_string(spec_provider_name(s->provider)));
		json_object_set_new(doc, "bucket", json_string(s->bucket));
		json_object_set_new(doc, "spec_key", json_string(key));
		json_object_set_new(doc, "max_minutes", json_real(s->max_minutes));
		json_object_set_new(doc, "stack", st ? st : json_null());
		st = NULL;
		json_object_set_new(doc, "sbatch", jobs);
		jobs = NULL;
		launch_print_json(doc);
		doc = NULL;
		rc = LAUNCH_EXIT_OK;
		goto out;
	}
	printf("Dry run: nothing is created and nothing is called.\n");
	printf("Run %s%s (%s), budget %g minutes; the launch spec would be stored at "
	       "s3://%s/%s\n",
	       s->run_id, generated ? " (generated for this dry run; give --run-id to fix it)" : "",
	       spec_provider_name(s->provider), s->max_minutes, s->bucket, key);
	if (cfn) {
		printf("CreateStack %s in %s (%s)\n", s->stack_name,
		       region ? region : "the profile's or instance's region, else us-east-1",
		       endpoint);
		if (s->template_path)
			printf("  template: %s, %zu bytes, %s\n", s->template_path, ps.body_len,
			       ps.by_url
			           ? "over 51,200: by TemplateURL from the bucket (.../template)"
			           : "as TemplateBody");
		else
			printf("  template: TemplateURL %s\n", s->template_url);
		printf("  OnFailure: %s%s\n", ps.p.on_failure,
		       s->keep_on_failure ? " (--keep-on-failure: a failed stack is kept until the "
		                            "budget, then deleted)"
		                          : " (a failed creation deletes itself)");
		printf("  ClientRequestToken: %s\n", ps.token);
		if (s->role_arn)
			printf("  RoleARN: %s\n", s->role_arn);
		printf("  parameters:\n");
		for (size_t i = 0; i < ps.n_params; i++)
			printf("    %s=%s%s\n", ps.params[i].key, ps.params[i].value,
			       (!strcmp(ps.params[i].key, "RunId") && ps.filled_run_id) ||
			               (!strcmp(ps.params[i].key, "ArtifactBucketName") &&
			                ps.filled_bucket)
			           ? "   (filled in by hpcops)"
			           : "");
		printf("  capabilities:");
		for (size_t i = 0; i < ps.p.n_capabilities; i++)
			printf(" %s", ps.p.capabilities[i]);
		printf("\n  tags:");
		for (size_t i = 0; i < ps.n_tags; i++)
			printf(" %s=%s", ps.tags[i].key, ps.tags[i].value);
		printf("\n");
	}
	if (pj.n) {
		printf("Slurm submissions%s:\n",
		       cfn ? " (by `hpcops-launch submit` on the head node, once it is configured)"
		           : "");
		for (size_t i = 0; i < pj.n; i++) {
			char *line = plan_shell_line(&pj.v[i]);
			printf("  %s <<'EOF'\n", line ? line : "sbatch");
			for (const char *p = pj.v[i].script; *p;) {
				const char *nl = strchr(p, '\n');
				size_t l = nl ? (size_t)(nl - p) : strlen(p);
				printf("    %.*s\n", (int)l, p);
				p += l + (nl ? 1 : 0);
			}
			printf("  EOF\n");
			free(line);
		}
	}
	fflush(stdout);
	rc = LAUNCH_EXIT_OK;
out:
	if (ids)
		for (size_t i = 0; i < s->n_workloads; i++)
			free((char *)ids[i]);
	free(ids);
	free(endpoint);
	json_decref(st);
	json_decref(jobs);
	json_decref(doc);
	plan_stack_free(&ps);
	plan_jobs_free(&pj);
	return rc;
}

/* Every problem of the spec for this command, the first as the error. */
static int spec_usage(struct launch_opts *o, bool need_stack, bool need_workloads)
{
	char eb[1024];

	if (spec_validate(&o->spec, need_stack, need_workloads, eb, sizeof(eb)) == 0)
		return 0;
	return launch_usage(o, "%s", eb);
}

int launch_cmd_up(struct launch_opts *o)
{
	struct launch_spec *s = &o->spec;
	struct aws a;
	char eb[1024], *stack_id = NULL;
	int rc;

	if (s->provider != SPEC_PROVIDER_CLOUDFORMATION)
		return launch_usage(o, "`up` creates a CloudFormation stack: it has nothing to do "
		                       "with --provider slurm (use `run` or `submit`)");
	rc = spec_usage(o, true, false);
	if (rc != 0)
		return rc;
	if (o->dry_run)
		return dry_run(o, s->n_workloads > 0);
	ensure_run_id(s);
	if (!s->run_id)
		return launch_error(o, LAUNCH_EXIT_INFRA, "infrastructure_failure",
		                    "out of memory");
	if (aws_open(&a, o, true, true, eb, sizeof(eb)) != 0)
		return launch_error(o, LAUNCH_EXIT_INFRA, "infrastructure_failure", "%s", eb);
	rc = do_up(o, &a, &stack_id, launch_now_s() + s->max_minutes * 60);
	if (rc == LAUNCH_EXIT_OK) {
		if (o->json) {
			json_t *d = json_object();
			json_object_set_new(d, "run_id", json_string(s->run_id));
			json_object_set_new(d, "stack_name", json_string(s->stack_name));
			json_object_set_new(d, "stack_id", json_string(stack_id));
			json_object_set_new(d, "result", json_string("created"));
			launch_print_json(d);
		} else {
			printf(
			    "Stack %s created: %s\nRun id: %s\nFollow it with: hpcops-launch wait "
			    "--stack-name %s --run-id %s --bucket %s\n",
			    s->stack_name, stack_id, s->run_id, s->stack_name, s->run_id,
			    s->bucket);
		}
	}
	free(stack_id);
	aws_close(&a);
	return rc;
}

int launch_cmd_wait(struct launch_opts *o)
{
	struct launch_spec *s = &o->spec;
	struct follow f = {0};
	struct aws a;
	char eb[1024];
	enum follow_end end;
	int rc;

	rc = spec_usage(o, false, false);
	if (rc != 0)
		return rc;
	if (!s->run_id)
		return launch_usage(o, "which run? give --run-id RUN (printed by `up`)");
	if (s->provider == SPEC_PROVIDER_CLOUDFORMATION && !s->stack_name)
		return launch_usage(o, "give --stack-name NAME (or --provider slurm)");
	if (aws_open(&a, o, true, s->provider == SPEC_PROVIDER_CLOUDFORMATION, eb, sizeof(eb)) != 0)
		return launch_error(o, LAUNCH_EXIT_INFRA, "infrastructure_failure", "%s", eb);
	f.o = o;
	f.a = &a;
	f.stack = s->provider == SPEC_PROVIDER_CLOUDFORMATION ? s->stack_name : NULL;
	f.start = launch_now_s();
	f.deadline = f.start + s->max_minutes * 60;
	end = follow(&f);
	rc = finish(&f, end, 0);
	follow_free(&f);
	aws_close(&a);
	return rc;
}

int launch_cmd_down(struct launch_opts *o)
{
	struct launch_spec *s = &o->spec;
	struct stack_retained kept = {0};
	struct aws a;
	char eb[1024], note[4096];
	enum stack_result sr;
	int rc;

	if (s->provider != SPEC_PROVIDER_CLOUDFORMATION)
		return launch_usage(o, "`down` deletes a CloudFormation stack; with --provider "
		                       "slurm there is none (scancel the jobs instead)");
	if (!s->stack_name)
		return launch_usage(o, "which stack? give --stack-name NAME");
	if (aws_open(&a, o, false, true, eb, sizeof(eb)) != 0)
		return launch_error(o, LAUNCH_EXIT_INFRA, "infrastructure_failure", "%s", eb);
	sr = stack_delete(a.cfn, s->stack_name, s->role_arn, s->poll_seconds,
	                  launch_now_s() + RUN_DELETE_WAIT_S, o->json, &kept, note, sizeof(note));
	rc = sr == STACK_OK && !kept.n ? LAUNCH_EXIT_OK : LAUNCH_EXIT_STACK_LEFT;
	if (o->json) {
		json_t *d = json_object();
		json_object_set_new(d, "stack_name", json_string(s->stack_name));
		json_object_set_new(d, "stack_deleted", json_boolean(sr == STACK_OK));
		json_object_set_new(d, "note", json_string(note));
		json_object_set_new(d, "retained_resources", stack_retained_json(&kept));
		json_object_set_new(d, "exit_code", json_integer(rc));
		if (rc != LAUNCH_EXIT_OK)
			set_error(d, "stack_left", note);
		launch_print_json(d);
	} else if (sr == STACK_OK && kept.n) {
		printf("Stack %s: deleted with FORCE_DELETE_STACK, but CloudFormation RETAINED %zu "
		       "resource(s) it could not delete (they may still cost money):\n",
		       s->stack_name, kept.n);
		print_retained(&kept);
	} else if (sr == STACK_OK) {
		printf("Stack %s: deleted%s%s\n", s->stack_name, note[0] ? " - " : "", note);
	}
	if (sr != STACK_OK)
		fprintf(stderr, "hpcops-launch down: stack %s could NOT be deleted: %s\n",
		        s->stack_name, note);
	else if (kept.n && o->json)
		fprintf(stderr, "hpcops-launch down: stack %s: %s\n", s->stack_name, note);
	stack_retained_free(&kept);
	aws_close(&a);
	return rc;
}

int launch_cmd_status(struct launch_opts *o)
{
	struct launch_spec *s = &o->spec;
	struct aws a;
	char eb[1024], status[64] = "", key[512];
	struct run_job *jobs = NULL;
	size_t n = 0;
	json_t *run = NULL, *d = NULL, *ja = NULL;
	bool want_stack = s->provider == SPEC_PROVIDER_CLOUDFORMATION && s->stack_name;
	bool missing = true;
	int rc = LAUNCH_EXIT_INFRA;

	if (!want_stack && !s->run_id)
		return launch_usage(o, "give --stack-name NAME and/or --run-id RUN with --bucket");
	if (s->run_id && !s->bucket)
		return launch_usage(o, "give --bucket BUCKET to read the run's records");
	if (aws_open(&a, o, s->run_id != NULL, want_stack, eb, sizeof(eb)) != 0)
		return launch_error(o, LAUNCH_EXIT_INFRA, "infrastructure_failure", "%s", eb);
	if (want_stack &&
	    stack_status(a.cfn, s->stack_name, status, sizeof(status), eb, sizeof(eb)) != 0) {
		rc = launch_error(o, LAUNCH_EXIT_INFRA, "aws_error", "%s", eb);
		goto out;
	}
	if (s->run_id) {
		if (runrec_list_jobs(a.s3, s->run_id, &jobs, &n, eb, sizeof(eb)) != 0) {
			rc = launch_error(o, LAUNCH_EXIT_INFRA, "aws_error", "%s", eb);
			goto out;
		}
		run = runrec_get(a.s3, runrec_key(key, sizeof(key), s->run_id, "run.json"),
		                 &missing, NULL, eb, sizeof(eb));
		if (!run && !missing) {
			rc = launch_error(o, LAUNCH_EXIT_INFRA, "aws_error", "%s", eb);
			goto out;
		}
	}
	if (o->json) {
		d = json_object();
		ja = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(ja, runrec_job_json(&jobs[i]));
		json_object_set_new(d, "stack_name",
		                    want_stack ? json_string(s->stack_name) : json_null());
		json_object_set_new(d, "stack_status",
		                    want_stack ? json_string(status) : json_null());
		json_object_set_new(d, "run_id", s->run_id ? json_string(s->run_id) : json_null());
		json_object_set_new(d, "jobs", ja);
		json_object_set_new(d, "run", run ? json_incref(run) : json_null());
		launch_print_json(d);
		d = NULL;
	} else {
		if (want_stack)
			printf("Stack %s: %s\n", s->stack_name,
			       !strcmp(status, "DELETE_COMPLETE")
			           ? "DELETE_COMPLETE (does not exist)"
			           : status);
		if (s->run_id) {
			const char *st =
			    run ? json_string_value(json_object_get(run, "state")) : NULL;
			printf("Run %s: %s\n", s->run_id, st ? st : "no run record yet");
			for (size_t i = 0; i < n; i++)
				printf("  job %-10s %-20s %-12s exit %d on %s\n", jobs[i].job_id,
				       jobs[i].name ? jobs[i].name : "?", jobs[i].state,
				       jobs[i].exit_code, jobs[i].node ? jobs[i].node : "?");
		}
	}
	rc = LAUNCH_EXIT_OK;
out:
	json_decref(d);
	json_decref(run);
	runrec_jobs_free(jobs, n);
	aws_close(&a);
	return rc;
}

int launch_cmd_run(struct launch_opts *o)
{
	struct launch_spec *s = &o->spec;
	struct follow f = {0};
	struct aws a;
	char eb[1024], *stack_id = NULL;
	double start = launch_now_s();
	time_t started = time(NULL);
	enum follow_end end;
	int rc;

	rc = spec_usage(o, true, true);
	if (rc != 0)
		return rc;
	if (o->dry_run)
		return dry_run(o, true);
	ensure_run_id(s);
	if (!s->run_id)
		return launch_error(o, LAUNCH_EXIT_INFRA, "infrastructure_failure",
		                    "out of memory");
	if (aws_open(&a, o, true, s->provider == SPEC_PROVIDER_CLOUDFORMATION, eb, sizeof(eb)) != 0)
		return launch_error(o, LAUNCH_EXIT_INFRA, "infrastructure_failure", "%s", eb);
	f.o = o;
	f.a = &a;
	f.start = start;
	f.deadline = start + s->max_minutes * 60;
	if (s->provider == SPEC_PROVIDER_CLOUDFORMATION) {
		rc = do_up(o, &a, &stack_id, f.deadline);
		if (rc != LAUNCH_EXIT_OK)
			goto out;
		f.stack = stack_id;
		if (!o->json)
			launch_say(
			    "run %s: waiting for the head node to submit the workloads (budget %g "
			    "min)",
			    s->run_id, s->max_minutes);
	} else {
		if (!o->json)
			launch_say("run %s: submitting %zu workload(s) to Slurm", s->run_id,
			           s->n_workloads);
		if (store_spec(o, &a, eb, sizeof(eb)) != 0)
			log_warn("could not store the launch spec: %s", eb);
		if (submit_run(o, &a, &f.sub, eb, sizeof(eb)) != 0) {
			rc = launch_error(o, LAUNCH_EXIT_INFRA, "slurm_error", "%s", eb);
			goto out;
		}
		f.have_sub = true;
	}
	end = follow(&f);
	rc = finish(&f, end, started);
out:
	follow_free(&f);
	free(stack_id);
	aws_close(&a);
	return rc;
}
