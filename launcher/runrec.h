/* SPDX-License-Identifier: Apache-2.0 */
/*
 * runrec: the records a run leaves in the artifact bucket, under
 * _hpcops/runs/RUN-ID/:
 *   spec.json        the launch spec, written by `up` for the head node
 *   submitted.json   job ids, written by `submit`
 *   jobs/JOBID.json  one job record per workload, written by its wrapper
 *                    (state RUNNING at start, final state at the end)
 *   run.json         the run record, written by the teardown job
 * Records are JSON objects (jansson); functions returning json_t * give a
 * new reference the caller json_decref()s.
 */
#ifndef HPCOPS_RUNREC_H
#define HPCOPS_RUNREC_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

struct s3_client;

/** Prefix of every run's records in the bucket. */
#define RUNREC_PREFIX "_hpcops/runs/"
/** Bound on one record's size. */
#define RUNREC_MAX_BYTES (1u << 20)

/** One job record. Strings are owned: runrec_job_clear(). */
struct run_job {
	char *run_id;
	char *job_id;
	char *name;
	char *node;
	char *state;      /* RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ... */
	int exit_code;    /* -1 while unknown */
	time_t start;     /* 0 = unknown */
	time_t end;       /* 0 = not ended */
	char etag[80];    /* of the object it was read from, to see changes */
	json_t *mount_io; /* what the job did through the mount (owned reference), or NULL */
};

/** runrec_key() - "_hpcops/runs/RUN/@leaf" into @buf; returns @buf. */
const char *runrec_key(char *buf, size_t len, const char *run_id, const char *leaf);

/** runrec_new_run_id() - a fresh run id ("20261126T231501Z-1a2b3c") into @buf (40 bytes). */
void runrec_new_run_id(char *buf, size_t len);

/** runrec_time() - ISO 8601 UTC of @t into @buf (21 bytes), "" for 0. */
const char *runrec_time(time_t t, char *buf, size_t len);

/** runrec_job_json() - @j as a JSON object. NULL on ENOMEM. */
json_t *runrec_job_json(const struct run_job *j);

/** runrec_job_from_json() - fill @j from a job record. 0, or -1 if it is not one. */
int runrec_job_from_json(json_t *o, struct run_job *j);

/** runrec_job_clear() - free @j's strings and zero it (exit_code -1). */
void runrec_job_clear(struct run_job *j);

/** runrec_job_ok() - true for COMPLETED with exit code 0. */
bool runrec_job_ok(const struct run_job *j);

/**
 * runrec_put() - PutObject of @doc (compact JSON) at @key.
 * Returns 0 or -1 with the S3 error in @errbuf.
 */
int runrec_put(struct s3_client *s3, const char *key, json_t *doc, char *errbuf, size_t errlen);

/**
 * runrec_get() - GetObject @key parsed as JSON. Returns the document, or
 * NULL: *@missing is true when the object does not exist (no error), else
 * @errbuf says what failed. @etag (80 bytes, may be NULL) gets its ETag.
 */
json_t *runrec_get(struct s3_client *s3, const char *key, bool *missing, char *etag, char *errbuf,
                   size_t errlen);

/**
 * runrec_list_jobs() - every job record of @run_id, sorted by job id.
 * @jobs: malloc'd array the caller frees with runrec_jobs_free().
 * Returns 0 or -1 with a message.
 */
int runrec_list_jobs(struct s3_client *s3, const char *run_id, struct run_job **jobs, size_t *n,
                     char *errbuf, size_t errlen);
void runrec_jobs_free(struct run_job *jobs, size_t n);

/** An output object of the run. */
struct run_output {
	char *key;
	unsigned long long size;
	time_t mtime;
};

/**
 * runrec_list_outputs() - objects whose key starts with @prefix and that
 * were written at or after @since (0 = any), at most @max of them.
 * @out: malloc'd, free with runrec_outputs_free(). Returns 0 or -1.
 */
int runrec_list_outputs(struct s3_client *s3, const char *prefix, time_t since, size_t max,
                        struct run_output **out, size_t *n, char *errbuf, size_t errlen);
void runrec_outputs_free(struct run_output *o, size_t n);

#endif
