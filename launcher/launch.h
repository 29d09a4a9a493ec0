/* SPDX-License-Identifier: Apache-2.0 */
/*
 * launch: what the launcher's commands share: exit codes, the signal flag
 * that makes every wait stop and delete the stack, progress output, and the
 * command entry points (one per subcommand).
 */
#ifndef HPCOPS_LAUNCH_H
#define HPCOPS_LAUNCH_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "spec.h"

/** Exit codes, documented in --help. */
enum launch_exit {
	LAUNCH_EXIT_OK = 0,         /* every job completed with exit code 0 */
	LAUNCH_EXIT_JOB_FAILED = 1, /* a job failed, was cancelled or timed out */
	LAUNCH_EXIT_USAGE = 2,      /* bad flag or launch spec */
	LAUNCH_EXIT_INFRA = 3,  /* stack creation failed, an API or Slurm error, records missing */
	LAUNCH_EXIT_BUDGET = 4, /* --max-minutes passed: stack deleted, jobs cancelled */
	LAUNCH_EXIT_INTERRUPTED = 5, /* SIGINT/SIGTERM: stack deleted before exiting */
	LAUNCH_EXIT_STACK_LEFT = 6,  /* the stack could not be deleted: it may still bill */
};

/** Set by the SIGINT/SIGTERM handler to the signal number; 0 otherwise. */
extern volatile sig_atomic_t launch_signal;

/** Options common to every subcommand, after parsing. */
struct launch_opts {
	struct launch_spec spec;
	bool json;                /* --json: one JSON document on stdout */
	int verbose;              /* -v: more log lines */
	const char *cfn_endpoint; /* --cloudformation-endpoint-url */
	const char *s3_endpoint;  /* --s3-endpoint-url */
	const char *sts_endpoint; /* --sts-endpoint-url */
	const char *profile;      /* --profile */
	const char *ca_bundle;    /* --ca-bundle */
	bool force_path_style;    /* --force-path-style (implied by a custom S3 endpoint) */
	/* submit / job / teardown (the head node side) */
	const char *job_name; /* job: --name */
	const char *jobs_arg; /* teardown: --jobs NAME=ID,... */
	const char *log_dir;  /* submit: --log-dir for Slurm's output files */
	char **argv_rest;     /* job: the command after "--" */
	int argc_rest;
};

/** launch_say() - one progress line on stderr ("hpcops-launch: ..."), for humans. */
void launch_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * launch_sleep() - sleep @seconds unless a signal arrives.
 * Returns false when launch_signal is set (the caller stops and cleans up).
 */
bool launch_sleep(double seconds);

/** launch_now_s() - wall-clock seconds (with fractions). */
double launch_now_s(void);

/* Subcommands: each returns an enum launch_exit. */
int launch_cmd_up(struct launch_opts *o);
int launch_cmd_wait(struct launch_opts *o);
int launch_cmd_down(struct launch_opts *o);
int launch_cmd_run(struct launch_opts *o);
int launch_cmd_status(struct launch_opts *o);
int launch_cmd_submit(struct launch_opts *o);
int launch_cmd_job(struct launch_opts *o);
int launch_cmd_teardown(struct launch_opts *o);

#endif
