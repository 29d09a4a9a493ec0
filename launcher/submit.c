/* SPDX-License-Identifier: Apache-2.0 */
/*
 * submit: the head node's commands. `submit` sbatches the workloads and the
 * teardown job; `job` (hidden) wraps one workload and writes its job
 * record; `teardown` (hidden) writes the run record and deletes the stack.
 */
#include "submit.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aws.h"
#include "cfn.h"
#include "launch.h"
#include "log.h"
#include "mountio.h"
#include "plan.h"
#include "runrec.h"
#include "s3.h"
#include "slurm.h"
#include "util.h"

void submitted_free(struct submitted *s)
{
	free(s->job_ids);
	memset(s, 0, sizeof(*s));
}

static void write_failed_run(struct launch_opts *o, struct aws *a, const char *why)
{
	char key[512], eb[512], ts[32];
	json_t *r = json_object();

	if (!r)
		return;
	json_object_set_new(r, "run_id", json_string(o->spec.run_id));
	json_object_set_new(r, "state", json_string("FAILED"));
	json_object_set_new(r, "error", json_string(why));
	json_object_set_new(r, "jobs", json_array());
	json_object_set_new(r, "end", json_string(runrec_time(time(NULL), ts, sizeof(ts))));
	json_object_set_new(r, "written_by", json_string("submit"));
	if (runrec_put(a->s3, runrec_key(key, sizeof(key), o->spec.run_id, "run.json"), r, eb,
	               sizeof(eb)) != 0)
		log_err("%s", eb);
	json_decref(r);
}

int submit_run(struct launch_opts *o, struct aws *a, struct submitted *out, char *errbuf,
               size_t errlen)
{
	struct launch_spec *s = &o->spec;
	struct plan_jobs pj;
	char logdir[4096], key[512], eb[512];
	const char **ids = NULL;
	json_t *rec = NULL, *jobs;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (plan_jobs_init(o, NULL, &pj, errbuf, errlen) != 0)
		goto fail;
	out->job_ids = calloc(s->n_workloads + 1, sizeof(*out->job_ids));
	ids = calloc(s->n_workloads + 1, sizeof(*ids));
	if (!out->job_ids || !ids) {
		snprintf(errbuf, errlen, "out of memory");
		goto fail;
	}
	snprintf(logdir, sizeof(logdir), "%s", pj.logdir);
	if (logdir[0]) {
		/* mkdir -p: in the mount, directories are local until a file lands in them. */
		for (char *p = logdir + 1; *p; p++) {
			if (*p == '/') {
				*p = 0;
				mkdir(logdir, 0755);
				*p = '/';
			}
		}
		if (mkdir(logdir, 0755) != 0 && errno != EEXIST) {
			snprintf(errbuf, errlen,
			         "cannot make the log directory %s: %s (is the bucket "
			         "mounted at %s?)",
			         logdir, strerror(errno),
			         s->mount_dir ? s->mount_dir : "--mount-dir");
			goto fail;
		}
	}
	if (!o->log_dir && s->mount_dir) {
		/*
		 * The mkdir above is local to this node's mount until a file lands in
		 * it; compute nodes mount the bucket themselves and would not see the
		 * directory, so Slurm could not open --output there. A zero-byte
		 * "logs/" marker object makes it exist for every mount.
		 */
		struct s3_error se;

		runrec_key(key, sizeof(key), s->run_id, "logs/");
		if (s3_put_object(a->s3, key, "", 0, NULL, &se) != 0) {
			snprintf(errbuf, errlen, "cannot create s3://%s/%s for the job logs: %s",
			         s->bucket ? s->bucket : "", key,
			         s3_error_format(&se, eb, sizeof(eb)));
			goto fail;
		}
	}

	for (size_t i = 0; i < s->n_workloads; i++) {
		const struct plan_job *j;

		if (plan_add_workload(o, &pj, i, NULL) != 0) {
			snprintf(errbuf, errlen, "workload %s: out of memory",
			         s->workloads[i].name);
			goto fail;
		}
		j = &pj.v[pj.n - 1];
		if (slurm_sbatch((const char *const *)j->args, j->script, out->job_ids[i],
		                 sizeof(out->job_ids[i]), eb, sizeof(eb)) != 0) {
			snprintf(errbuf, errlen, "workload %s: %s", s->workloads[i].name, eb);
			goto fail;
		}
		ids[i] = out->job_ids[i];
		out->n = i + 1;
		if (!o->json)
			launch_say("submitted workload %s as Slurm job %s", s->workloads[i].name,
			           out->job_ids[i]);
	}

	/* The teardown job runs whatever happened to the workloads. */
	{
		const struct plan_job *j;

		if (plan_add_teardown(o, &pj, ids, out->n) != 0) {
			snprintf(errbuf, errlen, "teardown job: out of memory");
			goto fail;
		}
		j = &pj.v[pj.n - 1];
		if (slurm_sbatch((const char *const *)j->args, j->script, out->teardown_id,
		                 sizeof(out->teardown_id), eb, sizeof(eb)) != 0) {
			snprintf(errbuf, errlen, "teardown job: %s", eb);
			goto fail;
		}
		if (!o->json)
			launch_say(
			    "submitted the teardown job as Slurm job %s (after all workloads)",
			    out->teardown_id);
	}

	rec = json_object();
	jobs = json_array();
	if (!rec || !jobs) {
		json_decref(jobs);
		snprintf(errbuf, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < out->n; i++) {
		json_t *j = json_object();
		json_object_set_new(j, "name", json_string(s->workloads[i].name));
		json_object_set_new(j, "job_id", json_string(out->job_ids[i]));
		json_array_append_new(jobs, j);
	}
	json_object_set_new(rec, "run_id", json_string(s->run_id));
	json_object_set_new(rec, "jobs", jobs);
	json_object_set_new(rec, "teardown_job_id", json_string(out->teardown_id));
	{
		char ts[32], host[256] = "";
		gethostname(host, sizeof(host) - 1);
		json_object_set_new(rec, "submitted",
		                    json_string(runrec_time(time(NULL), ts, sizeof(ts))));
		json_object_set_new(rec, "host", json_string(host));
	}
	if (runrec_put(a->s3, runrec_key(key, sizeof(key), s->run_id, "submitted.json"), rec, eb,
	               sizeof(eb)) != 0)
		log_warn("%s (wait will follow the job records alone)", eb);
	rc = 0;
	goto out;
fail : {
	const char *cids[SPEC_MAX_WORKLOADS + 1];
	size_t n = 0;
	char ceb[256];
	for (size_t i = 0; i < out->n; i++)
		cids[n++] = out->job_ids[i];
	if (out->teardown_id[0])
		cids[n++] = out->teardown_id;
	if (slurm_cancel(cids, n, ceb, sizeof(ceb)) != 0)
		log_err("%s", ceb);
	write_failed_run(o, a, errbuf);
}
out:
	json_decref(rec);
	free(ids);
	plan_jobs_free(&pj);
	return rc;
}

int submit_read(struct aws *a, const char *run_id, struct submitted *out, char *errbuf,
                size_t errlen)
{
	char key[512];
	bool missing;
	json_t *doc, *jobs, *j;
	size_t i;

	memset(out, 0, sizeof(*out));
	doc = runrec_get(a->s3, runrec_key(key, sizeof(key), run_id, "submitted.json"), &missing,
	                 NULL, errbuf, errlen);
	if (!doc)
		return missing ? 1 : -1;
	jobs = json_object_get(doc, "jobs");
	out->job_ids = calloc(json_array_size(jobs) + 1, sizeof(*out->job_ids));
	if (!out->job_ids) {
		json_decref(doc);
		snprintf(errbuf, errlen, "out of memory");
		return -1;
	}
	json_array_foreach(jobs, i, j)
	{
		const char *id = json_string_value(json_object_get(j, "job_id"));
		if (id)
			snprintf(out->job_ids[out->n++], sizeof(out->job_ids[0]), "%s", id);
	}
	if (json_string_value(json_object_get(doc, "teardown_job_id")))
		snprintf(out->teardown_id, sizeof(out->teardown_id), "%s",
		         json_string_value(json_object_get(doc, "teardown_job_id")));
	json_decref(doc);
	return 0;
}

/* Keep the values given as flags while the stored spec is loaded under them. */
static int load_stored_spec(struct launch_opts *o, struct aws *a, char *errbuf, size_t errlen)
{
	struct launch_spec *s = &o->spec, stored;
	char key[512], what[600];
	bool missing;
	json_t *doc;
	int rc;

	doc = runrec_get(a->s3, runrec_key(key, sizeof(key), s->run_id, "spec.json"), &missing,
	                 NULL, errbuf, errlen);
	if (!doc) {
		if (missing)
			snprintf(errbuf, errlen,
			         "no launch spec at s3://%s/%s: `hpcops-launch up` stores "
			         "it there; or give the workloads with --workload / --spec",
			         s->bucket, key);
		return -1;
	}
	spec_init(&stored);
	snprintf(what, sizeof(what), "s3://%s/%s", s->bucket, key);
	rc = spec_load_json(&stored, doc, what, errbuf, errlen);
	json_decref(doc);
	if (rc != 0) {
		spec_free(&stored);
		return -1;
	}
	/* Workloads and what the head node cannot know come from the stored spec. */
	s->workloads = stored.workloads;
	s->n_workloads = stored.n_workloads;
	stored.workloads = NULL;
	stored.n_workloads = 0;
#define TAKE(f)                                                                                    \
	do {                                                                                       \
		if (!s->f) {                                                                       \
			s->f = stored.f;                                                           \
			stored.f = NULL;                                                           \
		}                                                                                  \
	} while (0)
	TAKE(mount_dir);
	TAKE(termination_role);
	TAKE(stack_name);
	TAKE(mount_metrics);
#undef TAKE
	spec_free(&stored);
	return 0;
}

int launch_cmd_submit(struct launch_opts *o)
{
	struct launch_spec *s = &o->spec;
	struct aws a;
	struct submitted sub = {0};
	char eb[1024];
	int rc = LAUNCH_EXIT_INFRA;

	if (!s->run_id || !s->bucket)
		return launch_usage(o, "needs --run-id RUN and --bucket BUCKET");
	if (spec_validate(s, false, false, eb, sizeof(eb)) != 0)
		return launch_usage(o, "%s", eb);
	if (aws_open(&a, o, true, false, eb, sizeof(eb)) != 0)
		return launch_error(o, LAUNCH_EXIT_INFRA, "infrastructure_failure", "%s", eb);
	if (s->n_workloads == 0 && load_stored_spec(o, &a, eb, sizeof(eb)) != 0) {
		launch_error(o, LAUNCH_EXIT_INFRA, "aws_error", "%s", eb);
		write_failed_run(o, &a, eb);
		goto out;
	}
	if (spec_validate(s, false, true, eb, sizeof(eb)) != 0) {
		launch_error(o, LAUNCH_EXIT_INFRA, "invalid_spec", "%s", eb);
		write_failed_run(o, &a, eb);
		goto out;
	}
	if (submit_run(o, &a, &sub, eb, sizeof(eb)) != 0) {
		launch_error(o, LAUNCH_EXIT_INFRA, "slurm_error", "%s", eb);
		goto out;
	}
	if (o->json) {
		json_t *r = json_object(), *ids = json_array();
		for (size_t i = 0; i < sub.n; i++)
			json_array_append_new(ids, json_string(sub.job_ids[i]));
		json_object_set_new(r, "run_id", json_string(s->run_id));
		json_object_set_new(r, "job_ids", ids);
		json_object_set_new(r, "teardown_job_id", json_string(sub.teardown_id));
		json_dumpf(r, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(r);
	}
	rc = LAUNCH_EXIT_OK;
out:
	if (rc != LAUNCH_EXIT_OK && s->stack_name) {
		/* Nothing will run: do not leave the cluster billing. */
		struct cfn_error ce;
		struct aws b;
		if (aws_open(&b, o, false, true, eb, sizeof(eb)) == 0) {
			struct cfn_client *c = b.cfn;
			if (s->termination_role &&
			    aws_assume_termination_role(&b, s->termination_role, "hpcops-submit",
			                                eb, sizeof(eb)) == 0)
				c = b.role_cfn;
			if (cfn_delete_stack(c, s->stack_name, NULL, false, NULL, &ce) == 0)
				launch_say("submit failed: requested deletion of stack %s",
				           s->stack_name);
			aws_close(&b);
		}
	}
	submitted_free(&sub);
	aws_close(&a);
	return rc;
}

/* ---------------------------------------------------------------- job wrapper */

/* Seconds a workload gets between SIGTERM and SIGKILL (below Slurm's KillWait of 30). */
#define JOB_KILL_AFTER_S 20

static volatile sig_atomic_t job_signal;

static void on_job_signal(int sig)
{
	if (sig != SIGALRM)
		job_signal = sig;
}

static int put_job(struct aws *a, const struct run_job *j)
{
	char key[512], leaf[128], eb[512];
	json_t *doc = runrec_job_json(j);
	int rc;

	if (!doc)
		return -1;
	snprintf(leaf, sizeof(leaf), "jobs/%s.json", j->job_id);
	rc = runrec_put(a->s3, runrec_key(key, sizeof(key), j->run_id, leaf), doc, eb, sizeof(eb));
	if (rc)
		fprintf(stderr, "hpcops-launch job: %s\n", eb);
	json_decref(doc);
	return rc;
}

/* Longest wait for the mount to rewrite its metrics file (it does every few seconds). */
#define JOB_METRICS_WAIT_S 15
/* How often the wrapper checks that no other job shares the node. */
#define JOB_SHARE_CHECK_S 30

/*
 * The mount's counters around one job. exact stays true while the job has
 * the node to itself: no other Slurm job holds CPUs there (an --exclusive
 * job always does), checked at start, every JOB_SHARE_CHECK_S and at the end.
 */
struct job_io {
	const char *path; /* the metrics file, or NULL: not recorded */
	struct mountio_sample before;
	bool have_before;
	bool exact;
	char note[512];
	const char *node;
	int my_cpus;
	double last_check;
};

static void job_io_check_alone(struct job_io *io)
{
	char eb[512];
	int alloc = 0;

	io->last_check = launch_now_s();
	if (!io->exact)
		return;
	if (!io->node || io->my_cpus <= 0) {
		io->exact = false;
		snprintf(io->note, sizeof(io->note),
		         "not in a Slurm allocation: cannot tell whether the node was shared");
	} else if (slurm_node_cpus(io->node, &alloc, eb, sizeof(eb)) != 0) {
		io->exact = false;
		snprintf(io->note, sizeof(io->note), "%s", eb);
	} else if (alloc > io->my_cpus) {
		io->exact = false;
		snprintf(io->note, sizeof(io->note),
		         "another job ran on %s at the same time (%d CPUs allocated there, %d of "
		         "them this job's): the counts include its I/O",
		         io->node, alloc, io->my_cpus);
	}
}

static void job_io_start(struct job_io *io, const struct launch_opts *o, const char *node)
{
	const char *nn = getenv("SLURM_JOB_NUM_NODES"), *cpus = getenv("SLURM_CPUS_ON_NODE");
	double t0 = launch_now_s();

	memset(io, 0, sizeof(*io));
	io->path = o->spec.mount_metrics ? o->spec.mount_metrics : getenv("HPCOPS_MOUNT_METRICS");
	if (!io->path || !io->path[0]) {
		io->path = NULL;
		return;
	}
	io->node = node;
	io->my_cpus = cpus ? atoi(cpus) : 0;
	io->exact = true;
	if (nn && atoi(nn) > 1) {
		io->exact = false;
		snprintf(io->note, sizeof(io->note),
		         "the job ran on %d nodes: these are the counters of %s only", atoi(nn),
		         node);
	}
	/* A rewrite from now on, so that I/O of a job that just ended is not counted as ours. */
	if (access(io->path, F_OK) == 0 && !mountio_wait_newer(io->path, t0, JOB_METRICS_WAIT_S) &&
	    io->exact) {
		io->exact = false;
		snprintf(io->note, sizeof(io->note),
		         "%s was not rewritten within %d s of the job's start", io->path,
		         JOB_METRICS_WAIT_S);
	}
	io->have_before = mountio_read(io->path, &io->before) == 0;
	if (!io->have_before)
		fprintf(stderr,
		        "hpcops-launch job: no mount metrics in %s: %s (the job record gets "
		        "no I/O counts)\n",
		        io->path,
		        errno == EPROTO ? "none of the hpcops_fs_* counters" : strerror(errno));
	job_io_check_alone(io);
}

static json_t *job_io_finish(struct job_io *io)
{
	struct mountio_sample after;
	double t_end = launch_now_s();
	json_t *o;

	if (!io->path)
		return NULL;
	job_io_check_alone(io);
	if (!io->have_before) {
		o = json_object();
		json_object_set_new(o, "metrics_file", json_string(io->path));
		json_object_set_new(o, "error",
		                    json_string("no readable hpcops_fs_* counters in the metrics "
		                                "file when the job started"));
		return o;
	}
	/* The mount counts a write when close() returns; its next rewrite has all of ours. */
	if (!mountio_wait_newer(io->path, t_end, JOB_METRICS_WAIT_S) && io->exact) {
		io->exact = false;
		snprintf(io->note, sizeof(io->note),
		         "%s was not rewritten within %d s of the job's end: its last seconds may "
		         "be missing",
		         io->path, JOB_METRICS_WAIT_S);
	}
	if (mountio_read(io->path, &after) != 0) {
		o = json_object();
		json_object_set_new(o, "metrics_file", json_string(io->path));
		json_object_set_new(
		    o, "error", json_string("the metrics file could not be read at the job's end"));
		return o;
	}
	return mountio_delta_json(&io->before, &after, io->exact, io->path,
	                          io->note[0] ? io->note : NULL);
}

int launch_cmd_job(struct launch_opts *o)
{
	struct launch_spec *s = &o->spec;
	struct run_job j = {0};
	struct sigaction sa = {.sa_handler = on_job_signal};
	char host[256] = "", idbuf[32];
	const char *id = getenv("SLURM_JOB_ID"), *node = getenv("SLURMD_NODENAME");
	struct job_io io;
	struct aws a;
	char eb[1024];
	int status = 0, code;
	double killed_at = 0;
	pid_t pid;

	if (!s->run_id || !s->bucket || !o->job_name || o->argc_rest < 1) {
		fprintf(stderr,
		        "hpcops-launch job: needs --run-id, --bucket, --name and -- COMMAND\n");
		return LAUNCH_EXIT_USAGE;
	}
	if (!id) {
		snprintf(idbuf, sizeof(idbuf), "local-%d", (int)getpid());
		id = idbuf;
	}
	gethostname(host, sizeof(host) - 1);
	if (aws_open(&a, o, true, false, eb, sizeof(eb)) != 0) {
		fprintf(stderr, "hpcops-launch job: %s (no job record will be written)\n", eb);
		a.s3 = NULL;
	}
	j.run_id = s->run_id;
	j.job_id = (char *)id;
	j.name = (char *)o->job_name;
	j.node = node ? (char *)node : host;
	j.state = (char *)"RUNNING";
	j.exit_code = -1;
	j.start = time(NULL);
	fprintf(stderr, "hpcops: run %s job %s (%s) starting on %s\n", s->run_id, o->job_name, id,
	        j.node);
	if (a.s3)
		put_job(&a, &j);
	job_io_start(&io, o, node);

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	pid = fork();
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGALRM, SIG_DFL);
		setenv("HPCOPS_RUN_ID", s->run_id, 1);
		setenv("HPCOPS_JOB_NAME", o->job_name, 1);
		if (s->stack_name)
			setenv("HPCOPS_STACK_NAME", s->stack_name, 1);
		if (s->mount_dir)
			setenv("HPCOPS_OUTPUT_DIR", s->mount_dir, 1);
		execvp(o->argv_rest[0], o->argv_rest);
		fprintf(stderr, "hpcops-launch job: cannot run %s: %s\n", o->argv_rest[0],
		        strerror(errno));
		_exit(127);
	}
	if (pid < 0) {
		fprintf(stderr, "hpcops-launch job: fork: %s\n", strerror(errno));
		status = 127 << 8;
	} else {
		for (;;) {
			struct timespec nap = {0, 200 * 1000 * 1000};
			pid_t r = waitpid(pid, &status, WNOHANG);
			if (r == pid)
				break;
			if (r < 0 && errno != EINTR)
				break;
			if (job_signal && !killed_at) {
				/* Slurm cancelled us (scancel, time limit): pass it on. */
				kill(pid, SIGTERM);
				killed_at = launch_now_s();
			} else if (killed_at && launch_now_s() - killed_at >= JOB_KILL_AFTER_S) {
				kill(pid, SIGKILL);
			}
			if (io.path && io.exact &&
			    launch_now_s() - io.last_check >= JOB_SHARE_CHECK_S)
				job_io_check_alone(&io);
			nanosleep(&nap, NULL); /* a signal cuts it short */
		}
	}
	/*
	 * Slurm signals every process of the job, the workload and us, in no
	 * set order: if the workload died of a signal first, give ours a moment
	 * to arrive so a cancellation is recorded as one.
	 */
	for (int i = 0; i < 10 && !job_signal && WIFSIGNALED(status); i++) {
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (WIFEXITED(status))
		code = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		code = 128 + WTERMSIG(status);
	else
		code = 127;
	j.exit_code = code;
	j.end = time(NULL);
	j.state = (char *)(job_signal ? "CANCELLED" : code == 0 ? "COMPLETED" : "FAILED");
	/* A cancelled job has JOB_KILL_AFTER_S to go: no waiting for the mount then. */
	j.mount_io = job_signal ? NULL : job_io_finish(&io);
	fprintf(stderr, "hpcops: run %s job %s (%s) %s, exit code %d\n", s->run_id, o->job_name, id,
	        j.state, code);
	if (a.s3)
		put_job(&a, &j);
	json_decref(j.mount_io);
	aws_close(&a);
	return code;
}

/* ---------------------------------------------------------------- teardown */

/* Slurm's word on a finished job wins over a record its wrapper could not finish. */
static void reconcile(struct run_job *j, const struct slurm_job *sj, bool known)
{
	bool rec_final = j->state && strcmp(j->state, "RUNNING");

	if (!known) {
		if (!j->state)
			j->state = strdup("UNKNOWN");
		return;
	}
	if (slurm_state_is_final(sj->state)) {
		free(j->state);
		j->state = strdup(sj->state);
		if (!rec_final || j->exit_code < 0)
			j->exit_code = sj->exit_signal ? 128 + sj->exit_signal : sj->exit_code;
	} else if (!j->state) {
		j->state = strdup(sj->state);
	}
	if (!j->node && sj->node[0])
		j->node = strdup(sj->node);
	if (!j->start && sj->start)
		j->start = sj->start;
	if (!j->end && sj->end)
		j->end = sj->end;
}

int launch_cmd_teardown(struct launch_opts *o)
{
	struct launch_spec *s = &o->spec;
	struct aws a;
	char eb[1024], key[512], ts[32], host[256] = "";
	char *list = NULL, *save = NULL, *tok;
	json_t *run = NULL, *jobs = NULL;
	bool all_ok = true;
	time_t first = 0;
	int rc = LAUNCH_EXIT_INFRA;

	if (!s->run_id || !s->bucket || !o->jobs_arg) {
		fprintf(
		    stderr,
		    "hpcops-launch teardown: needs --run-id, --bucket and --jobs NAME=ID,...\n");
		return LAUNCH_EXIT_USAGE;
	}
	if (aws_open(&a, o, true, s->stack_name != NULL, eb, sizeof(eb)) != 0) {
		fprintf(stderr, "hpcops-launch teardown: %s\n", eb);
		return LAUNCH_EXIT_INFRA;
	}
	list = strdup(o->jobs_arg);
	run = json_object();
	jobs = json_array();
	if (!list || !run || !jobs)
		goto out;
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '='), leaf[128];
		struct run_job j;
		struct slurm_job sj;
		bool missing, changed;
		json_t *doc;
		int known;

		if (!eq)
			continue;
		*eq = 0;
		snprintf(leaf, sizeof(leaf), "jobs/%s.json", eq + 1);
		doc = runrec_get(a.s3, runrec_key(key, sizeof(key), s->run_id, leaf), &missing,
		                 NULL, eb, sizeof(eb));
		if (!doc || runrec_job_from_json(doc, &j) != 0) {
			memset(&j, 0, sizeof(j));
			j.exit_code = -1;
			j.job_id = strdup(eq + 1);
			j.run_id = strdup(s->run_id);
		}
		if (!j.name)
			j.name = strdup(tok);
		json_decref(doc);
		known = slurm_show_job(eq + 1, &sj, eb, sizeof(eb));
		if (known < 0)
			fprintf(stderr, "hpcops-launch teardown: %s\n", eb);
		{
			char *before = j.state ? strdup(j.state) : NULL;
			int before_code = j.exit_code;
			reconcile(&j, &sj, known == 0);
			changed = !before || strcmp(before, j.state) || before_code != j.exit_code;
			free(before);
		}
		if (changed && j.state) {
			/* Fix the job record too: its wrapper never ran, or was killed. */
			json_t *fixed = runrec_job_json(&j);
			if (fixed) {
				json_object_set_new(fixed, "written_by", json_string("teardown"));
				if (runrec_put(a.s3, key, fixed, eb, sizeof(eb)) != 0)
					fprintf(stderr, "hpcops-launch teardown: %s\n", eb);
				json_decref(fixed);
			}
		}
		if (!runrec_job_ok(&j))
			all_ok = false;
		if (j.start && (!first || j.start < first))
			first = j.start;
		json_array_append_new(jobs, runrec_job_json(&j));
		runrec_job_clear(&j);
	}
	gethostname(host, sizeof(host) - 1);
	json_object_set_new(run, "run_id", json_string(s->run_id));
	json_object_set_new(run, "stack_name",
	                    s->stack_name ? json_string(s->stack_name) : json_null());
	json_object_set_new(run, "state", json_string(all_ok ? "COMPLETED" : "FAILED"));
	json_object_set_new(run, "jobs", jobs);
	jobs = NULL;
	json_object_set_new(run, "start",
	                    first ? json_string(runrec_time(first, ts, sizeof(ts))) : json_null());
	json_object_set_new(run, "end", json_string(runrec_time(time(NULL), ts, sizeof(ts))));
	json_object_set_new(run, "written_by", json_string("teardown"));
	json_object_set_new(run, "teardown_job_id",
	                    getenv("SLURM_JOB_ID") ? json_string(getenv("SLURM_JOB_ID"))
	                                           : json_null());
	json_object_set_new(run, "host", json_string(host));
	if (runrec_put(a.s3, runrec_key(key, sizeof(key), s->run_id, "run.json"), run, eb,
	               sizeof(eb)) != 0)
		fprintf(stderr, "hpcops-launch teardown: %s\n", eb);
	else
		fprintf(stderr, "hpcops: run %s record written: %s\n", s->run_id,
		        all_ok ? "COMPLETED" : "FAILED");
	rc = LAUNCH_EXIT_OK;
	if (s->stack_name) {
		struct cfn_client *c = a.cfn;
		struct cfn_error ce;
		if (s->termination_role) {
			if (aws_assume_termination_role(&a, s->termination_role, "hpcops-teardown",
			                                eb, sizeof(eb)) != 0) {
				fprintf(stderr,
				        "hpcops-launch teardown: %s; trying with my own "
				        "credentials\n",
				        eb);
			} else {
				c = a.role_cfn;
			}
		}
		if (cfn_delete_stack(c, s->stack_name, NULL, false, NULL, &ce) != 0) {
			fprintf(stderr, "hpcops-launch teardown: could not delete stack %s: %s\n",
			        s->stack_name, cfn_error_format(&ce, eb, sizeof(eb)));
			rc = LAUNCH_EXIT_STACK_LEFT;
		} else {
			fprintf(stderr, "hpcops: requested deletion of stack %s%s%s\n",
			        s->stack_name, c == a.role_cfn ? " as " : "",
			        c == a.role_cfn ? s->termination_role : "");
		}
	}
out:
	free(list);
	json_decref(jobs);
	json_decref(run);
	aws_close(&a);
	return rc;
}
