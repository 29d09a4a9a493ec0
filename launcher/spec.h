/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spec: the launch spec, one JSON file (jansson) holding the stack, its
 * template and parameters, the bucket, the workloads and the budget. Every
 * field can be given as a command-line flag too; flags win. The spec owns
 * every string it holds: free it with spec_free().
 */
#ifndef HPCOPS_SPEC_H
#define HPCOPS_SPEC_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

enum spec_provider {
	SPEC_PROVIDER_CLOUDFORMATION = 0,
	SPEC_PROVIDER_SLURM,
};

/** An owned key/value pair (parameters, tags, environment). */
struct spec_kv {
	char *key;
	char *value;
};

/** One workload: a command run as one Slurm batch job. */
struct spec_workload {
	char *name;  /* job name: [A-Za-z0-9._-]{1,64} */
	char **argv; /* the command, NULL-terminated; a string command is {"/bin/sh","-c",cmd} */
	size_t argc;
	char *time_limit;   /* sbatch --time, or NULL */
	int nodes;          /* sbatch --nodes; 0 = Slurm's default */
	char **sbatch_args; /* extra sbatch arguments, NULL-terminated (may be NULL) */
	size_t n_sbatch_args;
	struct spec_kv *env; /* extra environment for the job */
	size_t n_env;
};

/** Default budget: a cluster never lives longer than this unless told. */
#define SPEC_DEFAULT_MAX_MINUTES 60.0
/** Default time between polls of the stack and the records. */
#define SPEC_DEFAULT_POLL_SECONDS 5.0
/** Bound on the spec file's size. */
#define SPEC_MAX_FILE (1u << 20)
/** Bound on the number of workloads in one run. */
#define SPEC_MAX_WORKLOADS 256

struct launch_spec {
	enum spec_provider provider;
	char *stack_name;
	char *region;
	char *template_path; /* local file; uploaded to the bucket when over 51,200 bytes */
	char *template_url;  /* or an https/s3 URL CloudFormation fetches itself */
	struct spec_kv *parameters;
	size_t n_parameters;
	char **capabilities;
	size_t n_capabilities;
	struct spec_kv *tags;
	size_t n_tags;
	char *role_arn;         /* CloudFormation service role, or NULL */
	char *termination_role; /* role the teardown job assumes to delete the stack, or NULL */
	char *bucket;           /* artifact bucket: records, outputs */
	char *mount_dir;        /* where the bucket is mounted for the workloads */
	char *outputs_prefix;   /* output objects reported: keys starting with this ("output-") */
	char *run_id;           /* NULL until generated or given */
	double max_minutes;     /* budget (cost guard); fractions allowed */
	double poll_seconds;
	struct spec_workload *workloads;
	size_t n_workloads;
	bool keep_on_failure; /* a stack whose creation failed stays until the budget */
	char *mount_metrics;  /* the mount's Prometheus metrics file on the nodes, or NULL */
};

/** Bound on the problems one check collects. */
#define SPEC_MAX_PROBLEMS 100

/**
 * One problem found in a launch spec (or its template): where, as a field
 * path ("workloads[2].command", "parameters.SubnetId", "" for the whole
 * file), and what is wrong and what to do.
 */
struct spec_problem {
	const char *source; /* static: "spec", "template" or "cloudformation" */
	char *path;
	char *message;
};

/** Every problem found, in order; owned, free with spec_problems_free(). */
struct spec_problems {
	struct spec_problem *v;
	size_t n;
	size_t dropped; /* past SPEC_MAX_PROBLEMS, or lost to ENOMEM */
};

/** spec_problems_free() - free @p's contents and zero it; safe twice. */
void spec_problems_free(struct spec_problems *p);

/** spec_problems_add() - add a problem (@source static, @path copied). */
void spec_problems_add(struct spec_problems *p, const char *source, const char *path,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/** spec_problem_format() - "path: message" (or the message alone) into @buf; returns @buf. */
const char *spec_problem_format(const struct spec_problem *pr, char *buf, size_t len);

/** spec_init() - an empty spec with the defaults. */
void spec_init(struct launch_spec *s);

/** spec_free() - free everything @s holds and re-init it; safe twice. */
void spec_free(struct launch_spec *s);

/**
 * spec_load_file() - merge the JSON file @path into @s (fields present in
 * the file replace those in @s). On error writes a message naming the file,
 * the field and what is expected into @errbuf and returns -1.
 */
int spec_load_file(struct launch_spec *s, const char *path, char *errbuf, size_t errlen);

/** spec_load_json() - as spec_load_file() from a parsed document; @what names it in errors. */
int spec_load_json(struct launch_spec *s, json_t *doc, const char *what, char *errbuf,
                   size_t errlen);

/**
 * spec_load_string() - as spec_load_file() from JSON text. Returns 0 or -1.
 */
int spec_load_string(struct launch_spec *s, const char *text, const char *what, char *errbuf,
                     size_t errlen);

/**
 * spec_load_file_all(), spec_load_string_all(), spec_load_json_all() - as
 * above, but every problem of the file is added to @p (with its field
 * path) instead of stopping at the first. A field with a problem is left as
 * it was in @s (a "workloads" array with any problem is not taken at all).
 * Returns 0, or -1 when problems were added.
 */
int spec_load_file_all(struct launch_spec *s, const char *path, struct spec_problems *p);
int spec_load_string_all(struct launch_spec *s, const char *text, struct spec_problems *p);
int spec_load_json_all(struct launch_spec *s, json_t *doc, struct spec_problems *p);

/**
 * spec_to_json() - the spec as a JSON object (new reference, caller
 * json_decref()s): what `up` stores in the bucket for the head node.
 * NULL on allocation failure.
 */
json_t *spec_to_json(const struct launch_spec *s);

/**
 * spec_set_kv() - add or replace @key in a key/value array (parameters,
 * tags, env). "K=V" parsing is spec_parse_kv(). Returns 0 or -1 (ENOMEM).
 */
int spec_set_kv(struct spec_kv **kv, size_t *n, const char *key, const char *value);

/** spec_get_kv() - the value of @key (borrowed) or NULL. */
const char *spec_get_kv(const struct spec_kv *kv, size_t n, const char *key);

/**
 * spec_parse_kv() - split "KEY=VALUE" into malloc'd @key and @value.
 * Returns 0, or -1 if there is no '=' or the key is empty.
 */
int spec_parse_kv(const char *arg, char **key, char **value);

/**
 * spec_add_workload_arg() - add a workload from a --workload flag:
 * "NAME=COMMAND" (COMMAND run by /bin/sh -c). Returns 0 or -1 with a message.
 */
int spec_add_workload_arg(struct launch_spec *s, const char *arg, char *errbuf, size_t errlen);

/**
 * spec_validate() - check that what a command needs is there and sane:
 * names, the budget, the provider's required fields. @need_stack: the stack
 * name and template are required (cloudformation up/run). @need_workloads:
 * at least one workload. Returns 0 or -1 with the first problem ("path:
 * message", saying what to add) in @errbuf.
 */
int spec_validate(const struct launch_spec *s, bool need_stack, bool need_workloads, char *errbuf,
                  size_t errlen);

/**
 * spec_check() - as spec_validate(), adding every problem to @p. A field
 * that already has a problem in @p (it did not parse) is not reported again
 * as missing. Returns 0, or -1 when problems were added.
 */
int spec_check(const struct launch_spec *s, bool need_stack, bool need_workloads,
               struct spec_problems *p);

/** spec_valid_name() - true for a workload / stack name hpcops accepts. */
bool spec_valid_name(const char *name, size_t max);

/** spec_provider_name() - "cloudformation" or "slurm". */
const char *spec_provider_name(enum spec_provider p);

/** spec_parse_provider() - 0 with @out set, or -1 for an unknown name. */
int spec_parse_provider(const char *name, enum spec_provider *out);

#endif
