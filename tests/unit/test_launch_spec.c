/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_launch_spec: hpcops-launch's launch spec parser and checks, its
 * round trip through JSON (what the head node reads back), and the parser
 * of `scontrol -o show job` lines. No network, no Slurm.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "slurm.h"
#include "spec.h"

static const char full[] =
    "{\"provider\": \"cloudformation\", \"stack_name\": \"hpc-ci-1\", \"region\": \"eu-west-1\","
    " \"template\": \"scripts/cluster-template.yaml\","
    " \"parameters\": {\"SubnetId\": \"subnet-1\", \"MaxComputeNodes\": 8, \"Spot\": true},"
    " \"capabilities\": [\"CAPABILITY_NAMED_IAM\"], \"tags\": {\"team\": \"cfd\"},"
    " \"termination_role\": \"arn:aws:iam::1:role/term\", \"bucket\": \"artifacts\","
    " \"mount_dir\": \"/ArtifactBucket\", \"max_minutes\": 0.5, \"poll_seconds\": 2,"
    " \"workloads\": ["
    "   {\"name\": \"mesh\", \"command\": \"./mesh.sh --fine > mesh.log\", \"time_limit\": "
    "\"10:00\"},"
    "   {\"name\": \"solve\", \"command\": [\"/opt/solver\", \"-n\", \"4\"], \"nodes\": 2,"
    "    \"sbatch_args\": [\"--exclusive\"], \"env\": {\"OMP_NUM_THREADS\": 4}}]}";

static void load_ok(struct launch_spec *s, const char *text)
{
	char eb[512] = "";

	spec_init(s);
	if (spec_load_string(s, text, "spec.json", eb, sizeof(eb)) != 0)
		fail_msg("spec did not load: %s", eb);
}

static void expect_error(const char *text, const char *want)
{
	struct launch_spec s;
	char eb[512] = "";

	spec_init(&s);
	assert_int_equal(spec_load_string(&s, text, "spec.json", eb, sizeof(eb)), -1);
	if (!strstr(eb, want))
		fail_msg("error \"%s\" does not say \"%s\"", eb, want);
	spec_free(&s);
}

static void test_full_spec(void **state)
{
	struct launch_spec s;
	char eb[512];

	load_ok(&s, full);
	assert_int_equal(s.provider, SPEC_PROVIDER_CLOUDFORMATION);
	assert_string_equal(s.stack_name, "hpc-ci-1");
	assert_string_equal(s.region, "eu-west-1");
	assert_string_equal(spec_get_kv(s.parameters, s.n_parameters, "MaxComputeNodes"), "8");
	assert_string_equal(spec_get_kv(s.parameters, s.n_parameters, "Spot"), "true");
	assert_string_equal(spec_get_kv(s.tags, s.n_tags, "team"), "cfd");
	assert_int_equal(s.n_capabilities, 1);
	assert_true(s.max_minutes == 0.5);
	assert_true(s.poll_seconds == 2.0);
	assert_int_equal(s.n_workloads, 2);
	/* a string command runs through the shell, an array as it is */
	assert_int_equal(s.workloads[0].argc, 3);
	assert_string_equal(s.workloads[0].argv[0], "/bin/sh");
	assert_string_equal(s.workloads[0].argv[1], "-c");
	assert_string_equal(s.workloads[0].argv[2], "./mesh.sh --fine > mesh.log");
	assert_null(s.workloads[0].argv[3]);
	assert_string_equal(s.workloads[0].time_limit, "10:00");
	assert_int_equal(s.workloads[1].argc, 3);
	assert_string_equal(s.workloads[1].argv[0], "/opt/solver");
	assert_int_equal(s.workloads[1].nodes, 2);
	assert_string_equal(s.workloads[1].sbatch_args[0], "--exclusive");
	assert_string_equal(
	    spec_get_kv(s.workloads[1].env, s.workloads[1].n_env, "OMP_NUM_THREADS"), "4");
	assert_int_equal(spec_validate(&s, true, true, eb, sizeof(eb)), 0);
	spec_free(&s);
	spec_free(&s);
}

static void test_round_trip(void **state)
{
	struct launch_spec a, b;
	char eb[512];
	json_t *j1, *j2;
	char *t1, *t2;

	load_ok(&a, full);
	a.run_id = strdup("20261126T000000Z-abcdef");
	j1 = spec_to_json(&a);
	t1 = json_dumps(j1, JSON_SORT_KEYS);
	spec_init(&b);
	assert_int_equal(spec_load_json(&b, j1, "stored", eb, sizeof(eb)), 0);
	j2 = spec_to_json(&b);
	t2 = json_dumps(j2, JSON_SORT_KEYS);
	assert_string_equal(t1, t2);
	assert_string_equal(b.run_id, "20261126T000000Z-abcdef");
	assert_string_equal(b.workloads[0].argv[2], "./mesh.sh --fine > mesh.log");
	free(t1);
	free(t2);
	json_decref(j1);
	json_decref(j2);
	spec_free(&a);
	spec_free(&b);
}

static void test_bad_specs(void **state)
{
	expect_error("{\"bucket\": \"b\", \"workload\": []}",
	             "workload: unknown field \"workload\"");
	expect_error("{\"bucket\": \"b\", \"bucket\": \"c\"}", "duplicate");
	expect_error("[1, 2]", "must be a JSON object");
	expect_error("{\"max_minutes\": \"60\"}", "spec.json: max_minutes: must be a number");
	expect_error("{\"parameters\": [\"a\"]}", "parameters: must be an object");
	expect_error("{\"parameters\": {\"A\": [1]}}",
	             "parameters.A: must be a string or a number");
	expect_error("{\"capabilities\": \"CAPABILITY_IAM\"}", "capabilities: must be an array");
	expect_error("{\"workloads\": {}}", "workloads: must be an array");
	expect_error("{\"workloads\": [{\"name\": \"a\"}]}", "workloads[0].command: required");
	/* a null name is no name (the fuzzer's round trip found it stored without one) */
	expect_error("{\"workloads\": [{\"name\": null, \"command\": \"true\"}]}",
	             "workloads[0].name: required");
	expect_error("{\"workloads\": [{\"name\": \"a\", \"command\": \"\"}]}",
	             "workloads[0].command: is empty");
	expect_error("{\"workloads\": [{\"name\": \"a\", \"command\": []}]}",
	             "workloads[0].command: is an empty array");
	expect_error("{\"workloads\": [{\"name\": \"a\", \"command\": [1]}]}",
	             "workloads[0].command[0]: must be a string");
	expect_error("{\"workloads\": [{\"name\": \"a\", \"command\": \"x\", \"nodes\": -1}]}",
	             "workloads[0].nodes: must be a positive integer");
	expect_error("{\"workloads\": [{\"name\": \"a\", \"command\": \"x\", \"gpus\": 1}]}",
	             "workloads[0].gpus: unknown field");
	expect_error("{\"provider\": \"aws-batch\"}",
	             "provider: \"aws-batch\": use \"cloudformation\" or \"slurm\"");
	expect_error("{\"bucket\": ", "line 1");
}

static void test_validate(void **state)
{
	struct launch_spec s;
	char eb[512];

	load_ok(&s, "{\"bucket\": \"b\", \"provider\": \"slurm\"}");
	assert_int_equal(spec_validate(&s, true, false, eb, sizeof(eb)), 0);
	assert_int_equal(spec_validate(&s, true, true, eb, sizeof(eb)), -1);
	assert_non_null(strstr(eb, "workloads: none: add --workload"));
	assert_int_equal(spec_add_workload_arg(&s, "a=echo hi", eb, sizeof(eb)), 0);
	assert_int_equal(spec_validate(&s, true, true, eb, sizeof(eb)), 0);
	assert_int_equal(spec_add_workload_arg(&s, "a=echo again", eb, sizeof(eb)), 0);
	assert_int_equal(spec_validate(&s, true, true, eb, sizeof(eb)), -1);
	assert_non_null(strstr(eb, "workloads[1].name: two workloads are named \"a\""));
	assert_int_equal(spec_add_workload_arg(&s, "noequals", eb, sizeof(eb)), -1);
	assert_non_null(strstr(eb, "expected NAME=COMMAND"));
	assert_int_equal(spec_add_workload_arg(&s, "=cmd", eb, sizeof(eb)), -1);
	/* a name a spec file could not hold is refused here, not stored */
	assert_int_equal(spec_add_workload_arg(&s, "my job=./run", eb, sizeof(eb)), -1);
	assert_non_null(strstr(eb, "workloads[2].name: \"my job\" must be 1-64 letters"));
	assert_int_equal(s.n_workloads, 2);
	spec_free(&s);

	load_ok(&s, "{\"bucket\": \"b\", \"stack_name\": \"9lives\", \"template\": \"t\"}");
	assert_int_equal(spec_validate(&s, true, false, eb, sizeof(eb)), -1);
	assert_non_null(strstr(eb, "stack_name: \"9lives\": CloudFormation wants a letter first"));
	free(s.stack_name);
	s.stack_name = strdup("hpc_ci");
	assert_int_equal(spec_validate(&s, true, false, eb, sizeof(eb)), -1);
	free(s.stack_name);
	s.stack_name = strdup("hpc-ci");
	assert_int_equal(spec_validate(&s, true, false, eb, sizeof(eb)), 0);
	s.template_url = strdup("https://x/t.yaml");
	assert_int_equal(spec_validate(&s, true, false, eb, sizeof(eb)), -1);
	assert_non_null(strstr(eb, "template: give exactly one of --template"));
	s.max_minutes = 0;
	assert_int_equal(spec_validate(&s, false, false, eb, sizeof(eb)), -1);
	assert_non_null(strstr(eb, "max_minutes: 0 is not a budget"));
	s.max_minutes = 1;
	s.run_id = strdup("a/b");
	assert_int_equal(spec_validate(&s, false, false, eb, sizeof(eb)), -1);
	assert_non_null(strstr(eb, "run_id: \"a/b\" may only hold"));
	spec_free(&s);

	load_ok(&s, "{}");
	assert_int_equal(spec_validate(&s, false, false, eb, sizeof(eb)), -1);
	assert_non_null(strstr(eb, "bucket: missing: give --bucket"));
	spec_free(&s);
}

/* validate's view: every problem of a file at once, each with its field path */
static void test_all_problems(void **state)
{
	struct launch_spec s;
	struct spec_problems p = {0};
	char line[1400];
	const char *want[] = {
	    "bukcet: unknown field \"bukcet\"",
	    "max_minutes: must be a number",
	    "parameters.Size: must be a string or a number",
	    "workloads[0].name: required",
	    "workloads[1].command: required",
	    "workloads[1].nodes: must be a positive integer",
	    "workloads[2].sbatch_args[1]: must be a string",
	    "stack_name: \"9-lives_x\": CloudFormation wants a letter first",
	};
	const char *text =
	    "{\"bukcet\": \"b\", \"bucket\": \"b\", \"max_minutes\": \"ten\","
	    " \"stack_name\": \"9-lives_x\", \"template\": \"t.yaml\","
	    " \"parameters\": {\"Size\": [1], \"Ok\": \"x\"},"
	    " \"workloads\": [{\"command\": \"true\"},"
	    "  {\"name\": \"b\", \"nodes\": 0},"
	    "  {\"name\": \"c\", \"command\": \"true\", \"sbatch_args\": [\"-p\", 2]}]}";

	spec_init(&s);
	assert_int_equal(spec_load_string_all(&s, text, &p), -1);
	assert_int_equal(spec_check(&s, true, true, &p), -1);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		bool found = false;
		for (size_t k = 0; k < p.n && !found; k++)
			found = strstr(spec_problem_format(&p.v[k], line, sizeof(line)), want[i]) ==
			        line;
		if (!found)
			fail_msg("no problem \"%s\" among %zu", want[i], p.n);
	}
	/* a field that did not parse is not reported a second time as missing */
	for (size_t k = 0; k < p.n; k++) {
		spec_problem_format(&p.v[k], line, sizeof(line));
		if (strstr(line, "workloads: none") || strstr(line, "max_minutes: 60"))
			fail_msg("reported again: %s", line);
	}
	assert_string_equal(spec_get_kv(s.parameters, s.n_parameters, "Ok") ? "set" : "unset",
	                    "unset"); /* an object with a bad member is not taken */
	assert_int_equal(s.n_workloads, 0);
	spec_problems_free(&p);
	spec_problems_free(&p);
	spec_free(&s);
}

static void test_kv(void **state)
{
	struct spec_kv *kv = NULL;
	size_t n = 0;
	char *k, *v;

	assert_int_equal(spec_parse_kv("A=b=c", &k, &v), 0);
	assert_string_equal(k, "A");
	assert_string_equal(v, "b=c");
	assert_int_equal(spec_set_kv(&kv, &n, k, v), 0);
	assert_int_equal(spec_set_kv(&kv, &n, "A", "d"), 0);
	assert_int_equal(n, 1);
	assert_string_equal(spec_get_kv(kv, n, "A"), "d");
	free(k);
	free(v);
	assert_int_equal(spec_parse_kv("A=", &k, &v), 0);
	assert_string_equal(v, "");
	free(k);
	free(v);
	assert_int_equal(spec_parse_kv("novalue", &k, &v), -1);
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

static void test_scontrol_line(void **state)
{
	const char *line =
	    "JobId=27 JobName=mesh UserId=root(0) GroupId=root(0) MCS_label=N/A "
	    "JobState=CANCELLED Reason=None Dependency=(null) ExitCode=0:15 RunTime=00:00:03 "
	    "SubmitTime=2026-11-26T23:49:56 StartTime=2026-11-26T23:49:56 "
	    "EndTime=2026-11-26T23:49:59 "
	    "ReqNodeList=(null) ExcNodeList=(null) NodeList=node-7 BatchHost=node-7 "
	    "Comment=hpcops-stack=- hpcops-run=r StdOut=/x\n";
	struct slurm_job j;

	assert_int_equal(slurm_parse_show_job(line, &j), 0);
	assert_string_equal(j.job_id, "27");
	assert_string_equal(j.name, "mesh");
	assert_string_equal(j.state, "CANCELLED");
	assert_string_equal(j.node, "node-7");
	assert_int_equal(j.exit_code, 0);
	assert_int_equal(j.exit_signal, 15);
	assert_true(j.end - j.start == 3);
	assert_true(slurm_state_is_final(j.state));

	assert_int_equal(slurm_parse_show_job("JobId=3 JobState=PENDING NodeList=(null) "
	                                      "StartTime=Unknown EndTime=Unknown",
	                                      &j),
	                 0);
	assert_string_equal(j.node, "");
	assert_int_equal(j.start, 0);
	assert_false(slurm_state_is_final(j.state));
	assert_int_equal(slurm_parse_show_job("slurm_load_jobs error: Invalid job id", &j), -1);
	assert_true(slurm_state_is_final("TIMEOUT"));
	assert_true(slurm_state_is_final("OUT_OF_MEMORY"));
	assert_false(slurm_state_is_final("COMPLETING"));
	assert_false(slurm_state_is_final(""));
}

/* The example spec shipped in launcher/ loads and passes the checks. */
static void test_example_file(void **state)
{
	struct launch_spec s;
	char eb[512] = "";

	spec_init(&s);
	if (spec_load_file(&s, HPCOPS_TEST_SOURCE_ROOT "/launcher/example-spec.json", eb,
	                   sizeof(eb)) != 0)
		fail_msg("%s", eb);
	assert_int_equal(spec_validate(&s, true, true, eb, sizeof(eb)), 0);
	assert_int_equal(s.n_workloads, 2);
	assert_string_equal(s.workloads[1].argv[0], "/opt/solver/bin/solve");
	spec_free(&s);
	spec_init(&s);
	assert_int_equal(
	    spec_load_file(&s, HPCOPS_TEST_SOURCE_ROOT "/launcher/nope.json", eb, sizeof(eb)), -1);
	assert_non_null(strstr(eb, "cannot read launch spec"));
	spec_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_spec),     cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_bad_specs),     cmocka_unit_test(test_validate),
	    cmocka_unit_test(test_all_problems),  cmocka_unit_test(test_kv),
	    cmocka_unit_test(test_scontrol_line), cmocka_unit_test(test_example_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
