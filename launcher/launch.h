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

#include <jansson.h>

#include "spec.h"

/** Exit codes, documented in --help. */
enum launch_exit {
	LAUNCH_EXIT_OK = 0,         /* every job completed with exit code 0 */
	LAUNCH_EXIT_JOB_FAILED = 1, /* a job failed, was cancelled or timed out */
	LAUNCH_EXIT_USAGE = 2,      /* bad flag or launch spec */
	LAUNCH_EXIT_INFRA = 3,  /* stack creation failed, an API or Slurm error, records missing */
	LAUNCH_EXIT_BUDGET = 4, /* --max-minutes passed: stack deleted, jobs cancelled */
	LAUNCH_EXIT_INTERRUPTED = 5, /* SIGINT/SIGTERM: stack deleted before exiting */
	LAUNCH_EXIT_STACK_LEFT = 6,  /* the stack, or resources it retained, were not deleted */
};

/** Set by the SIGINT/SIGTERM handler to the signal number; 0 otherwise. */
extern volatile sig_atomic_t launch_signal;

/** Options common to every subcommand, after parsing. */
struct launch_opts {
	const char *cmd; /* the command's name, for messages */
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
	char **argv_rest;     /* job: the command after "--"; logs: RUN [JOB] */
	int argc_rest;
	bool dry_run; /* run/up --dry-run: show what would be created, create nothing */
	bool follow;  /* logs --follow */
	long lines;   /* logs --lines N: the last N lines (0 = all) */
	bool local;   /* validate --local: no ValidateTemplate call */
	long limit;   /* list --limit N (0 = all) */
	/* validate: the spec file's own problems, all of them (main.c collects them) */
	const char *spec_path;
	struct spec_problems spec_problems;
};

/**
 * launch_error() - report the error a command ends with and return
 * @exit_code: "hpcops-launch CMD: MESSAGE" on stderr and, under --json,
 * {"error": {"code": @code, "message": MESSAGE}, "exit_code": N} on stdout.
 * @code is one of "usage_error", "invalid_spec", "not_found", "aws_error",
 * "slurm_error", "infrastructure_failure".
 */
int launch_error(const struct launch_opts *o, int exit_code, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** launch_usage() - launch_error() for a usage mistake (exit 2), pointing at --help. */
int launch_usage(const struct launch_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** launch_print_json() - @doc (stolen) as the command's one document on stdout. */
void launch_print_json(json_t *doc);

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
int launch_cmd_validate(struct launch_opts *o);
int launch_cmd_logs(struct launch_opts *o);
int launch_cmd_list(struct launch_opts *o);

#endif
