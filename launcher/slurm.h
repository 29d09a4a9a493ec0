/* SPDX-License-Identifier: Apache-2.0 */
/*
 * slurm: the launcher's use of Slurm through its commands: sbatch --parsable
 * (the batch script on stdin), scontrol -o show job, scancel, squeue. No
 * shell is involved; arguments go to execvp as they are. Nothing here
 * allocates what the caller must free unless a comment says so.
 */
#ifndef HPCOPS_SLURM_H
#define HPCOPS_SLURM_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/** A job as scontrol shows it. */
struct slurm_job {
	char job_id[32];
	char name[128];
	char state[32]; /* JobState: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ... */
	char reason[128]; /* Reason */
	char node[128];   /* NodeList, or "" */
	int exit_code;    /* from ExitCode=N:S */
	int exit_signal;  /* the S of ExitCode=N:S */
	time_t start;     /* 0 if unknown */
	time_t end;       /* 0 if unknown */
};

/**
 * slurm_sbatch() - submit @script (the batch script's text, fed on stdin)
 * with `sbatch --parsable ARGS...`. @args is NULL-terminated.
 * @job_id receives the job id (without ";cluster"). On failure @errbuf gets
 * sbatch's message. Returns 0 or -1.
 */
int slurm_sbatch(const char *const *args, const char *script, char *job_id, size_t id_len,
                 char *errbuf, size_t errlen);

/**
 * slurm_show_job() - `scontrol -o show job ID` into @out.
 * Returns 0, 1 if Slurm does not know the job (any more), -1 on another
 * failure (message in @errbuf).
 */
int slurm_show_job(const char *job_id, struct slurm_job *out, char *errbuf, size_t errlen);

/**
 * slurm_parse_show_job() - parse one line of `scontrol -o show job` output.
 * Returns 0, or -1 if it holds no JobId.
 */
int slurm_parse_show_job(const char *line, struct slurm_job *out);

/**
 * slurm_cancel() - `scancel ID...` for @n job ids (at most 256). Jobs that
 * already ended are not an error. Returns 0 or -1 (message in @errbuf).
 */
int slurm_cancel(const char *const *job_ids, size_t n, char *errbuf, size_t errlen);

/**
 * slurm_node_cpus() - `scontrol -o show node NODE`: the CPUs allocated to
 * jobs on it (CPUAlloc) into @alloc. Returns 0 or -1 (message in @errbuf).
 */
int slurm_node_cpus(const char *node, int *alloc, char *errbuf, size_t errlen);

/** slurm_state_is_final() - true when the job will not run any more. */
bool slurm_state_is_final(const char *state);

/**
 * slurm_run() - run @argv (NULL-terminated) with @input on stdin (may be
 * NULL), collecting up to @outlen-1 bytes of stdout into @out and of stderr
 * into @err (both NUL-terminated, may be NULL). Returns the exit status
 * (0..255), 128+N if killed by signal N, or -1 if it could not be started.
 */
int slurm_run(const char *const *argv, const char *input, char *out, size_t outlen, char *err,
              size_t errlen);

#endif
