/* SPDX-License-Identifier: Apache-2.0 */
/*
 * validate: `hpcops-launch validate`. Checks the launch spec (every problem
 * at once, each with its field path) and the template locally, then asks
 * CloudFormation's ValidateTemplate and checks the spec's parameters and
 * capabilities against what it says the template declares and needs.
 * Creates nothing (a template over 51,200 bytes is put in the bucket for the
 * call and removed after it).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws.h"
#include "cfn.h"
#include "launch.h"
#include "plan.h"
#include "runrec.h"
#include "s3.h"
#include "spec.h"
#include "util.h"

static const char *const template_sections[] = {"AWSTemplateFormatVersion",
                                                "Description",
                                                "Metadata",
                                                "Parameters",
                                                "Rules",
                                                "Mappings",
                                                "Conditions",
                                                "Transform",
                                                "Resources",
                                                "Outputs",
                                                NULL};

static bool known_section(const char *k, size_t n)
{
	for (size_t i = 0; template_sections[i]; i++)
		if (strlen(template_sections[i]) == n && !strncmp(template_sections[i], k, n))
			return true;
	return false;
}

static void tproblem(struct spec_problems *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void tproblem(struct spec_problems *p, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	spec_problems_add(p, "template", "template", "%s", msg);
}

/* A JSON template: parses, only known sections, a Resources object with members. */
static void check_json_template(const char *body, const char *file, struct spec_problems *p)
{
	json_error_t je;
	json_t *doc = json_loads(body, JSON_REJECT_DUPLICATES, &je), *res;
	const char *k;
	json_t *v;

	if (!doc) {
		tproblem(p, "%s: line %d, column %d: %s", file, je.line, je.column, je.text);
		return;
	}
	if (!json_is_object(doc)) {
		tproblem(p, "%s: a template is a JSON object", file);
		json_decref(doc);
		return;
	}
	json_object_foreach(doc, k, v)
	{
		if (!known_section(k, strlen(k)))
			tproblem(
			    p, "%s: unknown top-level section \"%s\" (CloudFormation knows %s)",
			    file, k,
			    "AWSTemplateFormatVersion, Description, Metadata, Parameters, Rules, "
			    "Mappings, Conditions, Transform, Resources, Outputs");
	}
	res = json_object_get(doc, "Resources");
	if (!json_is_object(res) || !json_object_size(res))
		tproblem(p, "%s: no Resources: a template must declare at least one resource",
		         file);
	json_decref(doc);
}

/*
 * A YAML template, without a YAML parser: the top-level keys (lines that
 * start in column 1) must be known sections and Resources must be one;
 * indentation must not use tabs (YAML forbids them).
 */
static void check_yaml_template(const char *body, const char *file, struct spec_problems *p)
{
	bool resources = false;
	int line = 0, tabs = 0;

	for (const char *l = body; *l;) {
		const char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) : strlen(l);

		line++;
		if (n && l[0] == '\t' && tabs++ < 3)
			tproblem(p,
			         "%s: line %d: a tab in the indentation (YAML allows spaces only)",
			         file, line);
		if (n && (isalpha((unsigned char)l[0]) || l[0] == '"')) {
			const char *k = l + (l[0] == '"'), *e = k;
			while (e < l + n && (isalnum((unsigned char)*e) || *e == '_'))
				e++;
			if (e < l + n && *e == '"')
				e++;
			if (e < l + n && *e == ':') {
				size_t kl = (size_t)(e - k) - (e > k && e[-1] == '"');
				if (!known_section(k, kl))
					tproblem(
					    p,
					    "%s: line %d: unknown top-level section \"%.*s\" "
					    "(CloudFormation knows AWSTemplateFormatVersion, "
					    "Description, Metadata, Parameters, Rules, Mappings, "
					    "Conditions, Transform, Resources, Outputs)",
					    file, line, (int)kl, k);
				resources |= kl == 9 && !strncmp(k, "Resources", 9);
			} else if (l[0] != '-' && strncmp(l, "---", 3) && strncmp(l, "...", 3)) {
				tproblem(p,
				         "%s: line %d: expected \"Section:\" at the top level, got "
				         "\"%.*s\"",
				         file, line, (int)(n > 60 ? 60 : n), l);
			}
		}
		l += n + (nl ? 1 : 0);
	}
	if (!resources)
		tproblem(p,
		         "%s: no Resources section: a template must declare at least one resource",
		         file);
}

static const char *param_value(const struct launch_spec *s, const struct plan_stack *ps,
                               const char *key)
{
	for (size_t i = 0; i < ps->n_params; i++)
		if (!strcmp(ps->params[i].key, key))
			return ps->params[i].value;
	return NULL;
}

/* The spec's parameters and capabilities against what ValidateTemplate said. */
static void cross_check(const struct launch_spec *s, const struct plan_stack *ps,
                        const struct cfn_template_info *t, struct spec_problems *p)
{
	char names[1024] = "";
	size_t off = 0;

	for (size_t i = 0; i < t->n_params && off < sizeof(names); i++)
		off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s", i ? ", " : "",
		                        t->params[i].key);
	for (size_t i = 0; i < s->n_parameters; i++) {
		bool declared = false;
		char path[320];
		for (size_t k = 0; k < t->n_params; k++)
			declared |= !strcmp(t->params[k].key, s->parameters[i].key);
		if (declared)
			continue;
		snprintf(path, sizeof(path), "parameters.%s", s->parameters[i].key);
		spec_problems_add(p, "cloudformation", path,
		                  "the template has no parameter %s (its parameters: %s)",
		                  s->parameters[i].key, names[0] ? names : "none");
	}
	for (size_t k = 0; k < t->n_params; k++) {
		char path[320];
		if (t->params[k].default_value || param_value(s, ps, t->params[k].key))
			continue;
		snprintf(path, sizeof(path), "parameters.%s", t->params[k].key);
		spec_problems_add(p, "cloudformation", path,
		                  "the template's parameter %s has no Default: give --parameter "
		                  "%s=VALUE (or \"parameters\": {\"%s\": ...} in the spec)",
		                  t->params[k].key, t->params[k].key, t->params[k].key);
	}
	for (size_t k = 0; k < t->n_capabilities; k++) {
		bool granted = false;
		for (size_t i = 0; i < ps->p.n_capabilities; i++)
			granted |= !strcmp(ps->p.capabilities[i], t->capabilities[k]) ||
			           (!strcmp(t->capabilities[k], "CAPABILITY_IAM") &&
			            !strcmp(ps->p.capabilities[i], "CAPABILITY_NAMED_IAM"));
		if (!granted)
			spec_problems_add(p, "cloudformation", "capabilities",
			                  "the template needs %s (%s): add --capability %s",
			                  t->capabilities[k],
			                  t->capabilities_reason ? t->capabilities_reason
			                                         : "CloudFormation says so",
			                  t->capabilities[k]);
	}
}

static json_t *problems_json(const struct spec_problems *p)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < p->n; i++) {
		json_t *e = json_object();
		json_object_set_new(e, "source", json_string(p->v[i].source));
		json_object_set_new(e, "path", json_string(p->v[i].path));
		json_object_set_new(e, "message", json_string(p->v[i].message));
		json_array_append_new(a, e);
	}
	return a;
}

int launch_cmd_validate(struct launch_opts *o)
{
	struct launch_spec *s = &o->spec;
	struct spec_problems *p = &o->spec_problems;
	struct cfn_template_info info = {0};
	struct plan_stack ps = {0};
	struct aws a = {0};
	bool cfn = s->provider == SPEC_PROVIDER_CLOUDFORMATION, aws_opened = false;
	bool asked = false, answered = false, rejected = false;
	char eb[1024], remote_err[1024] = "", tmp_key[512] = "", *url = NULL;
	const char *source = s->template_path ? s->template_path : s->template_url;
	size_t local_template_problems;
	int rc = LAUNCH_EXIT_OK;

	if (!s->run_id) {
		/* RunId is filled in at run time; any valid id stands in for it here. */
		s->run_id = strdup("validate");
	}
	spec_check(s, true, true, p);
	local_template_problems = p->n;
	if (cfn && s->template_path) {
		if (plan_stack_make(o, &ps, eb, sizeof(eb)) != 0) {
			tproblem(p, "%s", eb);
		} else {
			const char *b = ps.body;
			while (*b && isspace((unsigned char)*b))
				b++;
			if (!*b)
				tproblem(p, "%s is empty", s->template_path);
			else if (*b == '{')
				check_json_template(ps.body, s->template_path, p);
			else
				check_yaml_template(ps.body, s->template_path, p);
		}
	} else if (cfn && s->template_url) {
		if (strncmp(s->template_url, "https://", 8) &&
		    strncmp(s->template_url, "http://", 7))
			spec_problems_add(
			    p, "spec", "template_url",
			    "\"%s\": CloudFormation takes an https:// URL of an S3 object",
			    s->template_url);
		else if (plan_stack_make(o, &ps, eb, sizeof(eb)) != 0)
			tproblem(p, "%s", eb);
	}
	local_template_problems = p->n - local_template_problems;

	/* CloudFormation's own check of the template, and the spec against its answer. */
	if (cfn && !o->local && (ps.body || (s->template_url && ps.params))) {
		struct cfn_error ce;
		int r;

		if (aws_open(&a, o, ps.by_url && s->bucket != NULL, true, eb, sizeof(eb)) != 0) {
			snprintf(remote_err, sizeof(remote_err), "%s", eb);
			goto report;
		}
		aws_opened = true;
		if (ps.by_url) {
			struct s3_error se;
			char id[64], leaf[96];

			if (!s->bucket) {
				snprintf(
				    remote_err, sizeof(remote_err),
				    "the template is over %d bytes: ValidateTemplate needs it in a "
				    "bucket (give --bucket)",
				    CFN_MAX_TEMPLATE_BODY);
				goto report;
			}
			runrec_new_run_id(id, sizeof(id));
			snprintf(leaf, sizeof(leaf), "%s/template", id);
			snprintf(tmp_key, sizeof(tmp_key), "_hpcops/validate/%s", leaf);
			if (s3_put_object(a.s3, tmp_key, ps.body, ps.body_len, NULL, &se) != 0) {
				snprintf(remote_err, sizeof(remote_err),
				         "could not put the template in s3://%s/%s for "
				         "ValidateTemplate: "
				         "%s",
				         s->bucket, tmp_key, s3_error_format(&se, eb, sizeof(eb)));
				tmp_key[0] = 0;
				goto report;
			}
			url = aws_object_url(&a, s->bucket, tmp_key);
		}
		asked = true;
		r = cfn_validate_template(a.cfn, url ? NULL : ps.body,
		                          url ? url : (ps.body ? NULL : s->template_url), &info,
		                          &ce);
		if (r == 0) {
			answered = true;
			cross_check(s, &ps, &info, p);
		} else if (ce.err == CFN_ERR_VALIDATION) {
			answered = true;
			rejected = true;
			spec_problems_add(p, "cloudformation", "template", "ValidateTemplate: %s",
			                  ce.message);
		} else {
			snprintf(remote_err, sizeof(remote_err), "ValidateTemplate: %s",
			         cfn_error_format(&ce, eb, sizeof(eb)));
		}
	}

report:
	if (tmp_key[0]) {
		struct s3_error se;
		if (s3_delete_object(a.s3, tmp_key, &se) != 0)
			fprintf(stderr, "hpcops-launch validate: could not remove s3://%s/%s\n",
			        s->bucket, tmp_key);
	}
	if (p->n || p->dropped)
		rc = LAUNCH_EXIT_USAGE;
	else if (remote_err[0])
		rc = LAUNCH_EXIT_INFRA;
	if (o->json) {
		json_t *doc = json_object(), *t = json_object(), *params = json_array(),
		       *caps = json_array(), *granted = json_array();

		for (size_t i = 0; i < info.n_params; i++) {
			json_t *e = json_object();
			const char *v = param_value(s, &ps, info.params[i].key);
			json_object_set_new(e, "key", json_string(info.params[i].key));
			json_object_set_new(e, "default",
			                    info.params[i].default_value
			                        ? json_string(info.params[i].default_value)
			                        : json_null());
			json_object_set_new(e, "value", v ? json_string(v) : json_null());
			json_array_append_new(params, e);
		}
		for (size_t i = 0; i < info.n_capabilities; i++)
			json_array_append_new(caps, json_string(info.capabilities[i]));
		for (size_t i = 0; i < ps.p.n_capabilities; i++)
			json_array_append_new(granted, json_string(ps.p.capabilities[i]));
		json_object_set_new(t, "source", source ? json_string(source) : json_null());
		json_object_set_new(t, "bytes",
		                    ps.body ? json_integer((json_int_t)ps.body_len) : json_null());
		json_object_set_new(t, "passed_as",
		                    !source                 ? json_null()
		                    : ps.by_url || !ps.body ? json_string("TemplateURL")
		                                            : json_string("TemplateBody"));
		json_object_set_new(t, "validated_by_cloudformation", json_boolean(answered));
		json_object_set_new(t, "description",
		                    info.description ? json_string(info.description) : json_null());
		json_object_set_new(t, "parameters", params);
		json_object_set_new(t, "capabilities_required", caps);
		json_object_set_new(t, "capabilities_granted", granted);
		json_object_set_new(doc, "valid", json_boolean(rc == LAUNCH_EXIT_OK));
		json_object_set_new(doc, "spec",
		                    o->spec_path ? json_string(o->spec_path) : json_null());
		json_object_set_new(doc, "provider", json_string(spec_provider_name(s->provider)));
		json_object_set_new(doc, "problems", problems_json(p));
		json_object_set_new(doc, "template", cfn ? t : json_null());
		if (!cfn)
			json_decref(t);
		if (rc != LAUNCH_EXIT_OK) {
			json_t *e = json_object();
			char first[1400] = "";
			if (p->n)
				spec_problem_format(&p->v[0], first, sizeof(first));
			json_object_set_new(e, "code",
			                    json_string(p->n ? "invalid_spec" : "aws_error"));
			if (p->n)
				json_object_set_new(
				    e, "message", json_string(p->n == 1 ? first : "see problems"));
			else
				json_object_set_new(e, "message", json_string(remote_err));
			json_object_set_new(doc, "error", e);
		}
		json_object_set_new(doc, "exit_code", json_integer(rc));
		launch_print_json(doc);
	} else {
		printf("Launch spec %s (%s%s%s): ", o->spec_path ? o->spec_path : "(flags only)",
		       spec_provider_name(s->provider), cfn && s->stack_name ? ", stack " : "",
		       cfn && s->stack_name ? s->stack_name : "");
		if (!p->n)
			printf("no problems found\n");
		else
			printf("%zu problem(s)%s\n", p->n + p->dropped,
			       p->dropped ? " (the first ones below)" : "");
		for (size_t i = 0; i < p->n; i++) {
			char line[1400];
			printf("  %s\n", spec_problem_format(&p->v[i], line, sizeof(line)));
		}
		if (cfn && source) {
			printf("Template %s", source);
			if (ps.body)
				printf(": %zu bytes, %s", ps.body_len,
				       ps.by_url ? "goes by URL through the bucket (over 51,200)"
				                 : "goes as TemplateBody");
			printf("\n");
			if (local_template_problems)
				printf("  local checks: %zu problem(s), above\n",
				       local_template_problems);
			if (o->local)
				printf("  ValidateTemplate: not asked (--local)\n");
			else if (remote_err[0])
				printf("  ValidateTemplate: could not ask: %s\n", remote_err);
			else if (asked && rejected)
				printf("  ValidateTemplate: rejected it (above)\n");
			else if (asked && answered) {
				printf("  ValidateTemplate: accepted\n");
				for (size_t i = 0; i < info.n_params; i++) {
					const char *k = info.params[i].key,
					           *v = param_value(s, &ps, k);
					const char *d = info.params[i].default_value;
					if (!strcmp(k, "RunId") && ps.filled_run_id)
						printf("    parameter %s = (the run id, filled in "
						       "by hpcops)\n",
						       k);
					else if (!strcmp(k, "ArtifactBucketName") &&
					         ps.filled_bucket)
						printf("    parameter %s = %s (the bucket, filled "
						       "in by "
						       "hpcops)\n",
						       k, v ? v : "");
					else
						printf("    parameter %s = %s%s\n", k,
						       v   ? v
						       : d ? d
						           : "(MISSING)",
						       v   ? ""
						       : d ? " (default)"
						           : "");
				}
				for (size_t i = 0; i < info.n_capabilities; i++)
					printf("    needs %s\n", info.capabilities[i]);
			}
		}
		printf("Result: %s (exit %d)\n",
		       rc == LAUNCH_EXIT_OK      ? "valid"
		       : rc == LAUNCH_EXIT_USAGE ? "invalid: fix the problems above"
		                                 : "not checked: CloudFormation could not be asked",
		       rc);
		fflush(stdout);
	}
	if (rc == LAUNCH_EXIT_INFRA) {
		fprintf(stderr, "hpcops-launch validate: %s\n", remote_err);
	} else if (rc != LAUNCH_EXIT_OK) {
		char first[1400];
		fprintf(stderr, "hpcops-launch validate: %zu problem(s), the first: %s\n",
		        p->n + p->dropped,
		        p->n ? spec_problem_format(&p->v[0], first, sizeof(first)) : "");
	}
	cfn_template_info_clear(&info);
	plan_stack_free(&ps);
	free(url);
	if (aws_opened)
		aws_close(&a);
	return rc;
}
