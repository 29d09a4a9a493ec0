/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpcops-launch: creates the cluster stack, runs workloads through Slurm,
 * always deletes the stack. This file: command line, help texts, signals,
 * progress output; the commands live in run.c (up, wait, down, run,
 * status) and submit.c (submit and the head node's hidden job/teardown).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "launch.h"
#include "log.h"
#include "spec.h"

volatile sig_atomic_t launch_signal;

static void on_signal(int sig)
{
	launch_signal = sig;
}

void launch_say(const char *fmt, ...)
{
	va_list ap;
	char ts[16];
	time_t t = time(NULL);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
	fprintf(stderr, "hpcops-launch %s: ", ts);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

double launch_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool launch_sleep(double seconds)
{
	double until = launch_now_s() + seconds;

	while (!launch_signal) {
		double left = until - launch_now_s();
		struct timespec ts;
		if (left <= 0)
			return true;
		if (left > 0.2)
			left = 0.2; /* a signal during the sleep is seen within 0.2 s */
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL);
	}
	return false;
}

int launch_error(const struct launch_opts *o, int exit_code, const char *code, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "hpcops-launch%s%s: %s\n", o && o->cmd ? " " : "",
	        o && o->cmd ? o->cmd : "", msg);
	if (o && o->json) {
		json_t *doc = json_object(), *e = json_object();
		json_object_set_new(e, "code", json_string(code));
		json_object_set_new(e, "message", json_string(msg));
		json_object_set_new(doc, "error", e);
		json_object_set_new(doc, "exit_code", json_integer(exit_code));
		launch_print_json(doc);
	}
	return exit_code;
}

int launch_usage(const struct launch_opts *o, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	launch_error(o, LAUNCH_EXIT_USAGE, "usage_error", "%s", msg);
	fprintf(stderr, "(see hpcops-launch %s --help)\n", o && o->cmd ? o->cmd : "");
	return LAUNCH_EXIT_USAGE;
}

void launch_print_json(json_t *doc)
{
	if (!doc) {
		fputs("{\"error\": {\"code\": \"infrastructure_failure\", \"message\": \"out of "
		      "memory\"}}\n",
		      stdout);
	} else {
		json_dumpf(doc, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	}
	fflush(stdout);
	json_decref(doc);
}

static const char exit_codes[] =
    "Exit status:\n"
    "  0  every job completed with exit code 0 (up/down/status: the command worked)\n"
    "  1  a job failed, was cancelled or timed out\n"
    "  2  usage error: a bad flag or launch spec (the message says what to fix)\n"
    "  3  infrastructure failure: the stack could not be created (reason printed),\n"
    "     an AWS/Slurm call failed, or the run ended without its records\n"
    "  4  budget (--max-minutes) exceeded: the stack was deleted / jobs cancelled\n"
    "  5  interrupted by SIGINT/SIGTERM: the stack was deleted before exiting\n"
    "  6  the stack, or resources CloudFormation retained when it was deleted, are\n"
    "     still there and may bill: the message names them (run `down` for a stack)\n";

static const char spec_opts[] =
    "Launch spec (JSON; every field also a flag, flags win):\n"
    "  --spec FILE               the launch spec: {\"stack_name\", \"region\", \"template\",\n"
    "                            \"parameters\": {..}, \"bucket\", \"max_minutes\",\n"
    "                            \"workloads\": [{\"name\", \"command\", \"time_limit\", "
    "\"nodes\",\n"
    "                            \"sbatch_args\", \"env\"}], ...}\n"
    "                            (an example: launcher/example-spec.json)\n"
    "  --provider P              cloudformation (default) or slurm (an existing Slurm\n"
    "                            cluster: no stack)\n"
    "  --stack-name NAME         the cluster stack\n"
    "  --region REGION           AWS region (else AWS_REGION, profile, IMDS, us-east-1)\n"
    "  --template FILE           CloudFormation template (over 51,200 bytes it goes by URL\n"
    "                            through the bucket); e.g. scripts/cluster-template.yaml\n"
    "  --template-url URL        or a template CloudFormation fetches itself\n"
    "  --parameter KEY=VALUE     stack parameter (repeat); RunId and ArtifactBucketName\n"
    "                            are filled in when the template uses them\n"
    "  --capability CAP          (repeat; default CAPABILITY_IAM and CAPABILITY_NAMED_IAM)\n"
    "  --tag KEY=VALUE           stack tag (repeat); hpcops:run-id is always added\n"
    "  --role-arn ARN            service role CloudFormation uses for the stack\n"
    "  --termination-role ARN    role the teardown job assumes to delete the stack\n"
    "  --bucket BUCKET           artifact bucket: records under _hpcops/runs/RUN-ID/\n"
    "  --mount-dir DIR           where the bucket is mounted for the workloads\n"
    "                            (HPCOPS_OUTPUT_DIR in their environment)\n"
    "  --outputs-prefix P        output objects reported (default \"output-\")\n"
    "  --workload NAME=COMMAND   a workload run by /bin/sh -c as one Slurm job (repeat)\n"
    "  --run-id ID               the run (default: generated)\n"
    "  --max-minutes N           budget: past it the stack is deleted anyway (default 60;\n"
    "                            fractions allowed, 0.5 = 30 s)\n"
    "  --poll-seconds N          time between polls (default 5)\n"
    "  --keep-on-failure         a stack whose creation failed is kept for debugging\n"
    "                            (OnFailure=DO_NOTHING) until the budget, then deleted\n"
    "  --mount-metrics FILE      the mount's Prometheus metrics file on the nodes (else\n"
    "                            HPCOPS_MOUNT_METRICS): job records get the job's I/O\n";

static const char common_opts[] =
    "Connection and output:\n"
    "  --cloudformation-endpoint-url URL   else AWS_ENDPOINT_URL_CLOUDFORMATION,\n"
    "                                      AWS_ENDPOINT_URL, then the regional endpoint\n"
    "  --s3-endpoint-url URL               else AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL\n"
    "  --sts-endpoint-url URL              else AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL\n"
    "  --force-path-style        path-style S3 URLs (implied by a custom S3 endpoint)\n"
    "  --profile NAME            AWS profile (else AWS_PROFILE)\n"
    "  --ca-bundle FILE          PEM CAs for a private endpoint\n"
    "  --json                    one JSON document on stdout (progress stays on stderr);\n"
    "                            errors too: {\"error\": {\"code\", \"message\"}}\n"
    "  -v, --verbose             more log lines (twice: debug)\n"
    "  -h, --help                this help\n";

struct command {
	const char *name;
	int (*fn)(struct launch_opts *);
	const char *summary;
	const char *usage;
	bool hidden;
};

static const struct command commands[] = {
    {"run", launch_cmd_run,
     "up, wait, report, down: exit 0 only when every job completed with exit 0",
     "usage: hpcops-launch run [--spec FILE] [--dry-run] [options]\n\n"
     "Creates the stack (or, with --provider slurm, submits to the local Slurm), waits\n"
     "for every workload and the teardown job, reports each job's state and exit code\n"
     "(and the last lines of each failed job's log) and the output objects, and deletes\n"
     "the stack. Ctrl-C or SIGTERM at any point deletes the stack (or cancels the jobs)\n"
     "before exiting.\n"
     "  --dry-run        show the stack, parameters, capabilities, tags and the sbatch\n"
     "                   lines it would submit; create nothing, call nothing\n\n"
     "  hpcops-launch run --provider slurm --bucket B --mount-dir /mnt/b \\\n"
     "      --workload demo=scripts/example-workload.sh\n",
     false},
    {"validate", launch_cmd_validate,
     "check the spec and template, every problem at once; then ValidateTemplate",
     "usage: hpcops-launch validate --spec FILE [options]\n\n"
     "Checks the launch spec (and flags) and the template locally and lists every\n"
     "problem with its field path (workloads[2].command: ...), then asks\n"
     "CloudFormation's ValidateTemplate and checks the parameters and capabilities\n"
     "against its answer. Creates nothing. Exit 0 when valid, 2 when not.\n"
     "  --local          local checks only (no ValidateTemplate)\n",
     false},
    {"logs", launch_cmd_logs, "the Slurm output of a run's jobs (--follow while it runs)",
     "usage: hpcops-launch logs RUN [JOB] --bucket B [--follow] [--lines N] [options]\n\n"
     "Prints the Slurm output files of run RUN's jobs (JOB: a workload name or a Slurm\n"
     "job id; default every job and the teardown) from\n"
     "s3://BUCKET/_hpcops/runs/RUN/logs/, or from --log-dir DIR for files on a shared\n"
     "filesystem.\n"
     "  --follow         keep printing what is added until the run record is written\n"
     "  --lines N        only the last N lines of each file\n"
     "  --log-dir DIR    read the files from DIR instead of the bucket\n",
     false},
    {"list", launch_cmd_list, "the runs recorded in the bucket, newest first",
     "usage: hpcops-launch list --bucket B [--limit N] [options]\n\n"
     "One line per run under s3://BUCKET/_hpcops/runs/: id, state, start, end, jobs\n"
     "(and how many failed), stack. Newest first.\n"
     "  --limit N        only the N newest runs\n",
     false},
    {"up", launch_cmd_up, "create the stack and wait for CREATE_COMPLETE",
     "usage: hpcops-launch up --stack-name NAME --template FILE --bucket B [--dry-run]\n"
     "                        [options]\n\n"
     "CreateStack (idempotent: the ClientRequestToken comes from the run id), stack\n"
     "events streamed as progress, then CREATE_COMPLETE. On CREATE_FAILED/ROLLBACK the\n"
     "first failed resource and its reason are printed (nested stacks followed) and\n"
     "the stack is deleted (OnFailure=DELETE; --keep-on-failure keeps it until the\n"
     "budget). The launch spec is stored for the head node under\n"
     "s3://BUCKET/_hpcops/runs/RUN-ID/spec.json.\n"
     "  --dry-run        show the CreateStack it would make; create nothing\n",
     false},
    {"wait", launch_cmd_wait, "follow the stack and the run's records; cost guard",
     "usage: hpcops-launch wait --run-id RUN --bucket B [--stack-name NAME] [options]\n\n"
     "Follows the stack and the job records until the teardown job writes the run\n"
     "record, then makes sure the stack is deleted and reports. Past --max-minutes\n"
     "(counted from when wait starts) it deletes the stack anyway and says so.\n",
     false},
    {"down", launch_cmd_down, "delete the stack and wait for DELETE_COMPLETE",
     "usage: hpcops-launch down --stack-name NAME [--role-arn ARN] [options]\n\n"
     "DeleteStack, then waits for DELETE_COMPLETE; a stack that does not exist counts\n"
     "as deleted. A deletion refused while the stack rolls back is retried when the\n"
     "rollback ends. DELETE_FAILED is retried with DeletionMode=FORCE_DELETE_STACK;\n"
     "the resources CloudFormation retained are named and the exit status is 6.\n",
     false},
    {"status", launch_cmd_status, "the stack's state and the run's records",
     "usage: hpcops-launch status [--stack-name NAME] [--run-id RUN --bucket B] [options]\n",
     false},
    {"submit", launch_cmd_submit, "(head node) sbatch the workloads and the teardown job",
     "usage: hpcops-launch submit --run-id RUN --bucket B [--stack-name NAME]\n"
     "                            [--termination-role ARN] [--mount-dir DIR] [options]\n\n"
     "Run by the cluster template's OnNodeConfigured action on the head node. Reads\n"
     "the launch spec stored by `up` (or takes --workload flags), sbatches each\n"
     "workload (--parsable, output files under the mount) wrapped so it writes a job\n"
     "record to s3://BUCKET/_hpcops/runs/RUN/jobs/, then one teardown job\n"
     "(--dependency=afterany, --kill-on-invalid-dep=yes) that writes the run record\n"
     "and deletes the stack with the termination role (STS AssumeRole).\n"
     "  --log-dir DIR    Slurm output files (default MOUNT/_hpcops/runs/RUN/logs)\n",
     false},
    {"job", launch_cmd_job, "(inside a Slurm job) run a workload and record it",
     "usage: hpcops-launch job --run-id RUN --bucket B --name NAME -- COMMAND...\n", true},
    {"teardown", launch_cmd_teardown, "(inside a Slurm job) write the run record, delete the stack",
     "usage: hpcops-launch teardown --run-id RUN --bucket B --jobs NAME=ID,... "
     "[--stack-name NAME] [--termination-role ARN]\n",
     true},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: hpcops-launch COMMAND [options]\n\n"
	           "Run HPC workloads on an ephemeral cluster and always delete it.\n\n"
	           "Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!commands[i].hidden)
			fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
	        "\n`hpcops-launch COMMAND --help` for a command's options.\n"
	        "  -V, --version    show the version and exit\n\n%s",
	        exit_codes);
}

static void command_help(const struct command *c)
{
	printf("%s\n%s\n%s\n%s", c->usage, spec_opts, common_opts, exit_codes);
}

enum {
	OPT_SPEC = 1000,
	OPT_PROVIDER,
	OPT_STACK,
	OPT_REGION,
	OPT_TEMPLATE,
	OPT_TEMPLATE_URL,
	OPT_PARAM,
	OPT_CAP,
	OPT_TAG,
	OPT_ROLE,
	OPT_TERM_ROLE,
	OPT_BUCKET,
	OPT_MOUNT,
	OPT_OUT_PREFIX,
	OPT_WORKLOAD,
	OPT_RUN_ID,
	OPT_MAX_MIN,
	OPT_POLL,
	OPT_JSON,
	OPT_CFN_EP,
	OPT_S3_EP,
	OPT_STS_EP,
	OPT_PATH_STYLE,
	OPT_PROFILE,
	OPT_CA,
	OPT_NAME,
	OPT_JOBS,
	OPT_LOG_DIR,
	OPT_DRY_RUN,
	OPT_KEEP,
	OPT_METRICS,
	OPT_FOLLOW,
	OPT_LINES,
	OPT_LOCAL,
	OPT_LIMIT,
};

static const struct option long_opts[] = {
    {"spec", required_argument, NULL, OPT_SPEC},
    {"provider", required_argument, NULL, OPT_PROVIDER},
    {"stack-name", required_argument, NULL, OPT_STACK},
    {"region", required_argument, NULL, OPT_REGION},
    {"template", required_argument, NULL, OPT_TEMPLATE},
    {"template-url", required_argument, NULL, OPT_TEMPLATE_URL},
    {"parameter", required_argument, NULL, OPT_PARAM},
    {"capability", required_argument, NULL, OPT_CAP},
    {"tag", required_argument, NULL, OPT_TAG},
    {"role-arn", required_argument, NULL, OPT_ROLE},
    {"termination-role", required_argument, NULL, OPT_TERM_ROLE},
    {"bucket", required_argument, NULL, OPT_BUCKET},
    {"mount-dir", required_argument, NULL, OPT_MOUNT},
    {"outputs-prefix", required_argument, NULL, OPT_OUT_PREFIX},
    {"workload", required_argument, NULL, OPT_WORKLOAD},
    {"run-id", required_argument, NULL, OPT_RUN_ID},
    {"max-minutes", required_argument, NULL, OPT_MAX_MIN},
    {"poll-seconds", required_argument, NULL, OPT_POLL},
    {"json", no_argument, NULL, OPT_JSON},
    {"cloudformation-endpoint-url", required_argument, NULL, OPT_CFN_EP},
    {"s3-endpoint-url", required_argument, NULL, OPT_S3_EP},
    {"sts-endpoint-url", required_argument, NULL, OPT_STS_EP},
    {"force-path-style", no_argument, NULL, OPT_PATH_STYLE},
    {"profile", required_argument, NULL, OPT_PROFILE},
    {"ca-bundle", required_argument, NULL, OPT_CA},
    {"name", required_argument, NULL, OPT_NAME},
    {"jobs", required_argument, NULL, OPT_JOBS},
    {"log-dir", required_argument, NULL, OPT_LOG_DIR},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"keep-on-failure", no_argument, NULL, OPT_KEEP},
    {"mount-metrics", required_argument, NULL, OPT_METRICS},
    {"follow", no_argument, NULL, OPT_FOLLOW},
    {"lines", required_argument, NULL, OPT_LINES},
    {"local", no_argument, NULL, OPT_LOCAL},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int set_string(char **dst, const char *v)
{
	char *s = strdup(v);

	if (!s)
		return -1;
	free(*dst);
	*dst = s;
	return 0;
}

static int parse_number(const char *flag, const char *v, double *out, char *eb, size_t elen)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end) {
		snprintf(eb, elen, "%s \"%s\" is not a number", flag, v);
		return -1;
	}
	*out = d;
	return 0;
}

static int parse_count(const char *flag, const char *v, long *out, char *eb, size_t elen)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < 0) {
		snprintf(eb, elen, "%s \"%s\": give a whole number, 0 or more", flag, v);
		return -1;
	}
	*out = n;
	return 0;
}

/* Apply one flag to @o. Returns 0, or -1 with what is wrong in @eb. */
static int apply_opt(struct launch_opts *o, int c, const char *arg, char *eb, size_t elen)
{
	struct launch_spec *s = &o->spec;
	char *k = NULL, *v = NULL;
	int rc = 0;

	switch (c) {
	case OPT_SPEC:
		return 0; /* loaded before the other flags */
	case OPT_PROVIDER:
		if (spec_parse_provider(arg, &s->provider) != 0) {
			snprintf(eb, elen, "--provider \"%s\": use cloudformation or slurm", arg);
			return -1;
		}
		return 0;
	case OPT_STACK:
		return set_string(&s->stack_name, arg);
	case OPT_REGION:
		return set_string(&s->region, arg);
	case OPT_TEMPLATE:
		return set_string(&s->template_path, arg);
	case OPT_TEMPLATE_URL:
		return set_string(&s->template_url, arg);
	case OPT_ROLE:
		return set_string(&s->role_arn, arg);
	case OPT_TERM_ROLE:
		return set_string(&s->termination_role, arg);
	case OPT_BUCKET:
		return set_string(&s->bucket, arg);
	case OPT_MOUNT:
		return set_string(&s->mount_dir, arg);
	case OPT_OUT_PREFIX:
		return set_string(&s->outputs_prefix, arg);
	case OPT_RUN_ID:
		return set_string(&s->run_id, arg);
	case OPT_MAX_MIN:
		return parse_number("--max-minutes", arg, &s->max_minutes, eb, elen);
	case OPT_POLL:
		return parse_number("--poll-seconds", arg, &s->poll_seconds, eb, elen);
	case OPT_METRICS:
		return set_string(&s->mount_metrics, arg);
	case OPT_KEEP:
		s->keep_on_failure = true;
		return 0;
	case OPT_DRY_RUN:
		o->dry_run = true;
		return 0;
	case OPT_FOLLOW:
		o->follow = true;
		return 0;
	case OPT_LOCAL:
		o->local = true;
		return 0;
	case OPT_LINES:
		return parse_count("--lines", arg, &o->lines, eb, elen);
	case OPT_LIMIT:
		return parse_count("--limit", arg, &o->limit, eb, elen);
	case OPT_PARAM:
	case OPT_TAG:
		if (spec_parse_kv(arg, &k, &v) != 0) {
			snprintf(eb, elen, "%s \"%s\": expected KEY=VALUE",
			         c == OPT_PARAM ? "--parameter" : "--tag", arg);
			return -1;
		}
		rc = c == OPT_PARAM ? spec_set_kv(&s->parameters, &s->n_parameters, k, v)
		                    : spec_set_kv(&s->tags, &s->n_tags, k, v);
		free(k);
		free(v);
		return rc;
	case OPT_CAP: {
		char **n = realloc(s->capabilities, (s->n_capabilities + 1) * sizeof(*n));
		if (!n)
			return -1;
		s->capabilities = n;
		n[s->n_capabilities] = strdup(arg);
		if (!n[s->n_capabilities])
			return -1;
		s->n_capabilities++;
		return 0;
	}
	case OPT_WORKLOAD:
		if (spec_add_workload_arg(s, arg, eb, elen) != 0)
			return -1;
		return 0;
	case OPT_JSON:
		o->json = true;
		return 0;
	case OPT_CFN_EP:
		o->cfn_endpoint = arg;
		return 0;
	case OPT_S3_EP:
		o->s3_endpoint = arg;
		return 0;
	case OPT_STS_EP:
		o->sts_endpoint = arg;
		return 0;
	case OPT_PATH_STYLE:
		o->force_path_style = true;
		return 0;
	case OPT_PROFILE:
		o->profile = arg;
		return 0;
	case OPT_CA:
		o->ca_bundle = arg;
		return 0;
	case OPT_NAME:
		o->job_name = arg;
		return 0;
	case OPT_JOBS:
		o->jobs_arg = arg;
		return 0;
	case OPT_LOG_DIR:
		o->log_dir = arg;
		return 0;
	case 'v':
		o->verbose++;
		return 0;
	}
	snprintf(eb, elen, "unexpected option");
	return -1;
}

/* Positional arguments each command takes (beyond its flags). */
static bool takes_positional(const struct command *c)
{
	return c->fn == launch_cmd_job || c->fn == launch_cmd_logs;
}

int main(int argc, char **argv)
{
	const struct command *cmd = NULL;
	struct launch_opts o;
	struct sigaction sa = {.sa_handler = on_signal};
	char eb[1024];
	int c, rc;

	memset(&o, 0, sizeof(o));
	spec_init(&o.spec);
	/* --json anywhere: even an error about the command line is a JSON document. */
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		o.json |= !strcmp(argv[i], "--json");
	if (argc < 2) {
		if (o.json)
			return launch_error(&o, LAUNCH_EXIT_USAGE, "usage_error",
			                    "no command given");
		usage(stderr);
		return LAUNCH_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("hpcops-launch %s\n", HPCOPS_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			cmd = &commands[i];
	if (!cmd) {
		launch_error(&o, LAUNCH_EXIT_USAGE, "usage_error", "unknown command \"%s\"",
		             argv[1]);
		if (!o.json) {
			fputc('\n', stderr);
			usage(stderr);
		}
		return LAUNCH_EXIT_USAGE;
	}
	o.cmd = cmd->name;
	log_init(LOG_DEST_STDERR, NULL, "hpcops-launch", LOG_WARNING);

	/* The spec file first, so that flags given anywhere override it. */
	for (int i = 2; i < argc && strcmp(argv[i], "--"); i++) {
		const char *path = NULL;
		if (!strcmp(argv[i], "--spec") && i + 1 < argc)
			path = argv[i + 1];
		else if (!strncmp(argv[i], "--spec=", 7))
			path = argv[i] + 7;
		if (!path)
			continue;
		o.spec_path = path;
		if (cmd->fn == launch_cmd_validate) {
			/* validate lists every problem of the file, after the flags */
			spec_load_file_all(&o.spec, path, &o.spec_problems);
		} else if (spec_load_file(&o.spec, path, eb, sizeof(eb)) != 0) {
			rc = launch_error(&o, LAUNCH_EXIT_USAGE, "usage_error", "%s", eb);
			goto out;
		}
	}
	optind = 2;
	opterr = 0; /* our own messages, JSON under --json */
	for (;;) {
		c = getopt_long(argc, argv, "vh", long_opts, NULL);
		if (c == -1)
			break;
		if (c == 'h') {
			command_help(cmd);
			rc = 0;
			goto out;
		}
		if (c == '?' || c == ':') {
			const char *bad = argv[optind - 1];
			if (optopt && optopt != 'v' && optopt != 'h' && strncmp(bad, "--", 2))
				rc = launch_usage(&o, "unknown option \"-%c\"", optopt);
			else if (optopt)
				rc = launch_usage(&o, "option \"%s\" needs a value", bad);
			else
				rc = launch_usage(&o, "unknown option \"%s\"", bad);
			goto out;
		}
		snprintf(eb, sizeof(eb), "out of memory");
		if (apply_opt(&o, c, optarg, eb, sizeof(eb)) != 0) {
			rc = launch_usage(&o, "%s", eb);
			goto out;
		}
	}
	if (optind < argc) {
		if (!takes_positional(cmd)) {
			rc = launch_usage(&o, "unexpected argument \"%s\"", argv[optind]);
			goto out;
		}
		o.argv_rest = argv + optind;
		o.argc_rest = argc - optind;
	}
	if (o.verbose)
		log_set_level(o.verbose > 1 ? LOG_DEBUG : LOG_INFO);

	/* No SA_RESTART: a blocking wait sees the signal and cleans up. */
	if (cmd->fn != launch_cmd_job) {
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		/*
		 * A closed pipe (stdout piped to a pager that quit, a Slurm tool
		 * that exits before reading its stdin, a TLS peer gone; curl
		 * runs with NOSIGNAL) must give EPIPE, not kill us before the
		 * stack is deleted. The job wrapper's workload keeps the default.
		 */
		signal(SIGPIPE, SIG_IGN);
	}
	rc = cmd->fn(&o);
	log_close();
out:
	spec_problems_free(&o.spec_problems);
	spec_free(&o.spec);
	return rc;
}
