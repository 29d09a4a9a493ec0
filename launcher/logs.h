/* SPDX-License-Identifier: Apache-2.0 */
/*
 * logs: the Slurm output files of a run's jobs, NAME-JOBID.out/.err and
 * teardown-JOBID.out/.err, as they land in s3://BUCKET/_hpcops/runs/RUN/logs/
 * through the mount (or in a --log-dir on a shared filesystem): the `logs`
 * command, and the last lines of a failed job's log for the run's report.
 */
#ifndef HPCOPS_LOGS_H
#define HPCOPS_LOGS_H

#include <jansson.h>

struct launch_opts;
struct aws;
struct run_job;

/** Lines of a failed job's log shown in the report. */
#define LOGS_TAIL_LINES 10

/**
 * logs_tail_failed() - for the failed job @j of the run: print (unless
 * --json) the last LOGS_TAIL_LINES lines of each of its log files and the
 * command that shows the rest; add them to @jdoc (its job object, borrowed,
 * may be NULL) as "logs": {"files": [{"stream", "location", "size",
 * "last_lines"}], "command"}.
 */
void logs_tail_failed(const struct launch_opts *o, struct aws *a, const struct run_job *j,
                      json_t *jdoc);

#endif
