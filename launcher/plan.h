/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plan: what a run does, as data before it is done: the CreateStack request
 * (template, parameters with RunId/ArtifactBucketName filled in, the
 * capabilities, tags, idempotency token, OnFailure) and each sbatch
 * submission (arguments and the batch script that wraps the workload).
 * `up`/`run` and `submit` carry the plans out; `run --dry-run` prints them.
 * Every plan owns what it holds: free it with its *_free() function.
 */
#ifndef HPCOPS_PLAN_H
#define HPCOPS_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "cfn.h"

struct launch_opts;

/** The CreateStack request of a run. */
struct plan_stack {
	struct cfn_create_params p; /* points into this plan and the spec it was made from */
	struct cfn_kv *params;
	size_t n_params;
	struct cfn_kv *tags;
	size_t n_tags;
	char token[160]; /* ClientRequestToken, from the run id */
	char *body;      /* the template read from template_path, or NULL */
	size_t body_len;
	bool by_url;        /* body over CFN_MAX_TEMPLATE_BODY: it must go by URL */
	bool filled_run_id; /* RunId / ArtifactBucketName added by hpcops */
	bool filled_bucket;
};

/**
 * plan_stack_make() - the CreateStack request for @o's spec (run id set).
 * Reads the template file. The caller sets p.template_url when by_url.
 * OnFailure is DELETE, DO_NOTHING with keep_on_failure. Returns 0, or -1
 * with the reason in @errbuf (the template could not be read).
 */
int plan_stack_make(const struct launch_opts *o, struct plan_stack *ps, char *errbuf,
                    size_t errlen);

/** plan_stack_free() - free what @ps holds and zero it; safe twice. */
void plan_stack_free(struct plan_stack *ps);

/** Default capabilities: the cluster template creates IAM resources. */
extern const char *const plan_default_caps[2];

/** One sbatch submission. */
struct plan_job {
	char *name;  /* the workload's name, or "hpcops-teardown" */
	char **args; /* sbatch arguments after --parsable, NULL-terminated */
	size_t n_args;
	char *script; /* the batch script sbatch reads on stdin */
};

/** Every submission of a run, the teardown job last. */
struct plan_jobs {
	struct plan_job *v;
	size_t n;
	char logdir[4096]; /* where Slurm's output files go, "" = sbatch's default */
	char self[4096];   /* the hpcops-launch the wrappers run */
};

/**
 * plan_jobs_init() - find the log directory (--log-dir, else
 * MOUNT/_hpcops/runs/RUN/logs) and the executable path for @o. @mount_dir
 * may override the spec's (dry-run of a cloudformation run). 0 or -1.
 */
int plan_jobs_init(const struct launch_opts *o, const char *mount_dir, struct plan_jobs *pj,
                   char *errbuf, size_t errlen);

/** plan_add_workload() - the submission of workload @i. 0, or -1 (ENOMEM). */
int plan_add_workload(const struct launch_opts *o, struct plan_jobs *pj, size_t i,
                      const char *mount_dir);

/**
 * plan_add_teardown() - the teardown job, after the jobs @ids (one per
 * workload, in spec order; placeholders in a dry run). 0, or -1 (ENOMEM).
 */
int plan_add_teardown(const struct launch_opts *o, struct plan_jobs *pj, const char *const *ids,
                      size_t n);

/** plan_jobs_free() - free what @pj holds and zero it; safe twice. */
void plan_jobs_free(struct plan_jobs *pj);

/** plan_shell_line() - "sbatch --parsable ARGS..." quoted for a shell, malloc'd (or NULL). */
char *plan_shell_line(const struct plan_job *j);

#endif
