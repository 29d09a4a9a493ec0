/* SPDX-License-Identifier: Apache-2.0 */
/*
 * submit: the head node's side of a run. `submit` sbatches each workload
 * wrapped by `hpcops-launch job` (which writes its job record) and one
 * teardown job (afterany, kill-on-invalid-dep) running `hpcops-launch
 * teardown`, which writes the run record and deletes the stack through the
 * termination role.
 */
#ifndef HPCOPS_SUBMIT_H
#define HPCOPS_SUBMIT_H

#include <stddef.h>

struct launch_opts;
struct aws;

/** What submit did, for `run --provider slurm` and for submitted.json. */
struct submitted {
	char (*job_ids)[32]; /* one per workload, in spec order (malloc'd) */
	size_t n;
	char teardown_id[32]; /* "" if the teardown job could not be submitted */
};

void submitted_free(struct submitted *s);

/**
 * submit_run() - sbatch the workloads of @o->spec and the teardown job,
 * write submitted.json. On failure cancels what it submitted, writes a
 * FAILED run record and returns -1 with the reason in @errbuf.
 */
int submit_run(struct launch_opts *o, struct aws *a, struct submitted *out, char *errbuf,
               size_t errlen);

/**
 * submit_read() - read submitted.json of @run_id back. Returns 0, 1 when it
 * is not there (yet), -1 on error.
 */
int submit_read(struct aws *a, const char *run_id, struct submitted *out, char *errbuf,
                size_t errlen);

#endif
