/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plan: the CreateStack request and the sbatch submissions of a run, built
 * as data from the launch spec. See plan.h.
 */
#include "plan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launch.h"
#include "runrec.h"
#include "util.h"

const char *const plan_default_caps[2] = {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"};

/* The ClientRequestToken for a run: stable, so a retried `up` never makes a second stack. */
static void request_token(const char *run_id, char *buf, size_t len)
{
	size_t k = (size_t)snprintf(buf, len, "hpcops-%s", run_id);

	for (size_t i = 0; i < k && i < len; i++)
		if (!(buf[i] == '-' || (buf[i] >= 'a' && buf[i] <= 'z') ||
		      (buf[i] >= 'A' && buf[i] <= 'Z') || (buf[i] >= '0' && buf[i] <= '9')))
			buf[i] = '-';
}

int plan_stack_make(const struct launch_opts *o, struct plan_stack *ps, char *errbuf, size_t errlen)
{
	const struct launch_spec *s = &o->spec;
	struct cfn_create_params *p = &ps->p;

	memset(ps, 0, sizeof(*ps));
	if (s->template_path) {
		ps->body = util_read_file(s->template_path, 1u << 20);
		if (!ps->body) {
			snprintf(errbuf, errlen, "cannot read template %s: %s%s", s->template_path,
			         strerror(errno), errno == EFBIG ? " (larger than 1 MiB)" : "");
			return -1;
		}
		ps->body_len = strlen(ps->body);
		ps->by_url = ps->body_len > CFN_MAX_TEMPLATE_BODY;
	}
	ps->params = calloc(s->n_parameters + 2, sizeof(*ps->params));
	ps->tags = calloc(s->n_tags + 1, sizeof(*ps->tags));
	if (!ps->params || !ps->tags) {
		snprintf(errbuf, errlen, "out of memory");
		plan_stack_free(ps);
		return -1;
	}
	for (size_t i = 0; i < s->n_parameters; i++)
		ps->params[ps->n_params++] =
		    (struct cfn_kv){s->parameters[i].key, s->parameters[i].value};
	/* The cluster template takes the run id and the bucket; fill them in unless given. */
	if (!spec_get_kv(s->parameters, s->n_parameters, "RunId") &&
	    (!ps->body || strstr(ps->body, "RunId"))) {
		ps->params[ps->n_params++] = (struct cfn_kv){"RunId", s->run_id};
		ps->filled_run_id = true;
	}
	if (!spec_get_kv(s->parameters, s->n_parameters, "ArtifactBucketName") &&
	    (!ps->body || strstr(ps->body, "ArtifactBucketName"))) {
		ps->params[ps->n_params++] = (struct cfn_kv){"ArtifactBucketName", s->bucket};
		ps->filled_bucket = true;
	}
	for (size_t i = 0; i < s->n_tags; i++)
		ps->tags[ps->n_tags++] = (struct cfn_kv){s->tags[i].key, s->tags[i].value};
	ps->tags[ps->n_tags++] = (struct cfn_kv){"hpcops:run-id", s->run_id};
	request_token(s->run_id, ps->token, sizeof(ps->token));
	p->stack_name = s->stack_name;
	p->template_body = ps->by_url ? NULL : ps->body;
	p->template_url = ps->body ? NULL : s->template_url;
	p->parameters = ps->params;
	p->n_parameters = ps->n_params;
	p->capabilities =
	    s->n_capabilities ? (const char *const *)s->capabilities : plan_default_caps;
	p->n_capabilities = s->n_capabilities ? s->n_capabilities : 2;
	p->tags = ps->tags;
	p->n_tags = ps->n_tags;
	p->client_request_token = ps->token;
	p->role_arn = s->role_arn;
	/*
	 * A failed creation deletes itself (CloudFormation does it even if we
	 * are gone); --keep-on-failure keeps the failed resources to look at,
	 * and the budget still deletes them.
	 */
	p->on_failure = s->keep_on_failure ? "DO_NOTHING" : "DELETE";
	return 0;
}

void plan_stack_free(struct plan_stack *ps)
{
	free(ps->params);
	free(ps->tags);
	free(ps->body);
	memset(ps, 0, sizeof(*ps));
}

/* ---------------------------------------------------------------- sbatch */

/* 'single-quoted' for /bin/sh. */
static void sh_quote(struct util_buf *b, const char *s)
{
	util_buf_puts(b, "'");
	for (; *s; s++) {
		if (*s == '\'')
			util_buf_puts(b, "'\\''");
		else
			util_buf_append(b, s, 1);
	}
	util_buf_puts(b, "'");
}

static void sh_arg(struct util_buf *b, const char *flag, const char *v)
{
	if (!v)
		return;
	util_buf_printf(b, " %s ", flag);
	sh_quote(b, v);
}

/* Flags every head-node subcommand passes on to the next. */
static void common_args(struct util_buf *b, const struct launch_opts *o)
{
	const struct launch_spec *s = &o->spec;

	sh_arg(b, "--run-id", s->run_id);
	sh_arg(b, "--bucket", s->bucket);
	sh_arg(b, "--region", s->region);
	sh_arg(b, "--s3-endpoint-url", o->s3_endpoint);
	sh_arg(b, "--cloudformation-endpoint-url", o->cfn_endpoint);
	sh_arg(b, "--sts-endpoint-url", o->sts_endpoint);
	sh_arg(b, "--profile", o->profile);
	sh_arg(b, "--ca-bundle", o->ca_bundle);
	if (o->force_path_style)
		util_buf_puts(b, " --force-path-style");
	sh_arg(b, "--stack-name", s->stack_name);
}

int plan_jobs_init(const struct launch_opts *o, const char *mount_dir, struct plan_jobs *pj,
                   char *errbuf, size_t errlen)
{
	const struct launch_spec *s = &o->spec;
	ssize_t n;

	memset(pj, 0, sizeof(*pj));
	n = readlink("/proc/self/exe", pj->self, sizeof(pj->self) - 1);
	if (n <= 0) {
		snprintf(errbuf, errlen, "cannot find my own executable: %s", strerror(errno));
		return -1;
	}
	pj->self[n] = 0;
	if (!mount_dir)
		mount_dir = s->mount_dir;
	if (o->log_dir)
		snprintf(pj->logdir, sizeof(pj->logdir), "%s", o->log_dir);
	else if (mount_dir)
		snprintf(pj->logdir, sizeof(pj->logdir), "%s/" RUNREC_PREFIX "%s/logs", mount_dir,
		         s->run_id);
	return 0;
}

static int add_job(struct plan_jobs *pj, const char *name, const char *const *args, size_t n,
                   struct util_buf *script)
{
	struct plan_job *nv = realloc(pj->v, (pj->n + 1) * sizeof(*nv)), *j;

	if (!nv)
		return -1;
	pj->v = nv;
	j = &nv[pj->n];
	memset(j, 0, sizeof(*j));
	j->name = strdup(name);
	j->args = calloc(n + 1, sizeof(*j->args));
	j->script = util_buf_steal(script);
	if (!j->name || !j->args || !j->script)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		j->args[i] = strdup(args[i]);
		if (!j->args[i])
			goto fail;
		j->n_args++;
	}
	pj->n++;
	return 0;
fail:
	pj->n++; /* so that plan_jobs_free() frees it */
	return -1;
}

int plan_add_workload(const struct launch_opts *o, struct plan_jobs *pj, size_t i,
                      const char *mount_dir)
{
	const struct launch_spec *s = &o->spec;
	const struct spec_workload *w = &s->workloads[i];
	struct util_buf script = {0};
	char jn[128], comment[512], outf[4200], errf[4200], tl[96], nd[32];
	const char *args[100];
	size_t k = 0;
	int rc;

	if (!mount_dir)
		mount_dir = s->mount_dir;
	util_buf_printf(&script, "#!/bin/sh\n# hpcops run %s, workload %s\n", s->run_id, w->name);
	for (size_t e = 0; e < w->n_env; e++) {
		util_buf_printf(&script, "export %s=", w->env[e].key);
		sh_quote(&script, w->env[e].value);
		util_buf_puts(&script, "\n");
	}
	util_buf_puts(&script, "exec ");
	sh_quote(&script, pj->self);
	util_buf_puts(&script, " job");
	common_args(&script, o);
	sh_arg(&script, "--name", w->name);
	sh_arg(&script, "--mount-dir", mount_dir);
	sh_arg(&script, "--mount-metrics", s->mount_metrics);
	util_buf_puts(&script, " --");
	for (size_t j = 0; j < w->argc; j++) {
		util_buf_puts(&script, " ");
		sh_quote(&script, w->argv[j]);
	}
	util_buf_puts(&script, "\n");

	snprintf(jn, sizeof(jn), "--job-name=%s", w->name);
	snprintf(comment, sizeof(comment), "--comment=hpcops-stack=%s hpcops-run=%s",
	         s->stack_name ? s->stack_name : "-", s->run_id);
	args[k++] = jn;
	args[k++] = comment;
	if (pj->logdir[0]) {
		/*
		 * Separate files for stdout and stderr: with one file slurmstepd
		 * opens it twice, and a mounted bucket takes one writer per object.
		 */
		snprintf(outf, sizeof(outf), "--output=%s/%s-%%j.out", pj->logdir, w->name);
		snprintf(errf, sizeof(errf), "--error=%s/%s-%%j.err", pj->logdir, w->name);
		args[k++] = outf;
		args[k++] = errf;
	}
	if (w->time_limit) {
		snprintf(tl, sizeof(tl), "--time=%s", w->time_limit);
		args[k++] = tl;
	}
	if (w->nodes) {
		snprintf(nd, sizeof(nd), "--nodes=%d", w->nodes);
		args[k++] = nd;
	}
	for (size_t j = 0; j < w->n_sbatch_args && k < 96; j++)
		args[k++] = w->sbatch_args[j];
	rc = script.data ? add_job(pj, w->name, args, k, &script) : -1;
	util_buf_free(&script);
	return rc;
}

int plan_add_teardown(const struct launch_opts *o, struct plan_jobs *pj, const char *const *ids,
                      size_t n)
{
	const struct launch_spec *s = &o->spec;
	struct util_buf script = {0}, jobsarg = {0}, dep = {0};
	char comment[512], outf[4200], errf[4200];
	const char *args[12];
	size_t k = 0;
	int rc = -1;

	for (size_t i = 0; i < n; i++) {
		util_buf_printf(&jobsarg, "%s%s=%s", i ? "," : "", s->workloads[i].name, ids[i]);
		util_buf_printf(&dep, "%s%s", i ? ":" : "--dependency=afterany:", ids[i]);
	}
	util_buf_puts(&script,
	              "#!/bin/sh\n# hpcops teardown: run record, then delete the stack\nexec ");
	sh_quote(&script, pj->self);
	util_buf_puts(&script, " teardown");
	common_args(&script, o);
	sh_arg(&script, "--termination-role", s->termination_role);
	sh_arg(&script, "--jobs", jobsarg.data ? jobsarg.data : "");
	util_buf_puts(&script, "\n");
	snprintf(comment, sizeof(comment), "--comment=hpcops-stack=%s hpcops-run=%s",
	         s->stack_name ? s->stack_name : "-", s->run_id);
	args[k++] = "--job-name=hpcops-teardown";
	args[k++] = comment;
	if (!dep.data)
		goto out;
	args[k++] = dep.data;
	args[k++] = "--kill-on-invalid-dep=yes";
	if (pj->logdir[0]) {
		snprintf(outf, sizeof(outf), "--output=%s/teardown-%%j.out", pj->logdir);
		snprintf(errf, sizeof(errf), "--error=%s/teardown-%%j.err", pj->logdir);
		args[k++] = outf;
		args[k++] = errf;
	}
	if (script.data)
		rc = add_job(pj, "hpcops-teardown", args, k, &script);
out:
	util_buf_free(&script);
	util_buf_free(&jobsarg);
	util_buf_free(&dep);
	return rc;
}

void plan_jobs_free(struct plan_jobs *pj)
{
	for (size_t i = 0; pj->v && i < pj->n; i++) {
		struct plan_job *j = &pj->v[i];
		free(j->name);
		for (size_t k = 0; j->args && k < j->n_args; k++)
			free(j->args[k]);
		free(j->args);
		free(j->script);
	}
	free(pj->v);
	memset(pj, 0, sizeof(*pj));
}

char *plan_shell_line(const struct plan_job *j)
{
	struct util_buf b = {0};

	util_buf_puts(&b, "sbatch --parsable");
	for (size_t i = 0; i < j->n_args; i++) {
		util_buf_puts(&b, " ");
		sh_quote(&b, j->args[i]);
	}
	return util_buf_steal(&b);
}
