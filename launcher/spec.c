/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spec: parse and check the launch spec (JSON via jansson), merge flags into
 * it, and write it back as JSON for the head node. See spec.h.
 */
#include "spec.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static void errf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static void free_kv(struct spec_kv *kv, size_t n)
{
	for (size_t i = 0; kv && i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

static void workload_free(struct spec_workload *w)
{
	free(w->name);
	free_strv(w->argv, w->argc);
	free(w->time_limit);
	free_strv(w->sbatch_args, w->n_sbatch_args);
	free_kv(w->env, w->n_env);
	memset(w, 0, sizeof(*w));
}

void spec_init(struct launch_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->provider = SPEC_PROVIDER_CLOUDFORMATION;
	s->max_minutes = SPEC_DEFAULT_MAX_MINUTES;
	s->poll_seconds = SPEC_DEFAULT_POLL_SECONDS;
}

void spec_free(struct launch_spec *s)
{
	free(s->stack_name);
	free(s->region);
	free(s->template_path);
	free(s->template_url);
	free_kv(s->parameters, s->n_parameters);
	free_strv(s->capabilities, s->n_capabilities);
	free_kv(s->tags, s->n_tags);
	free(s->role_arn);
	free(s->termination_role);
	free(s->bucket);
	free(s->mount_dir);
	free(s->outputs_prefix);
	free(s->run_id);
	free(s->mount_metrics);
	for (size_t i = 0; i < s->n_workloads; i++)
		workload_free(&s->workloads[i]);
	free(s->workloads);
	spec_init(s);
}

const char *spec_provider_name(enum spec_provider p)
{
	return p == SPEC_PROVIDER_SLURM ? "slurm" : "cloudformation";
}

int spec_parse_provider(const char *name, enum spec_provider *out)
{
	if (!strcmp(name, "cloudformation"))
		*out = SPEC_PROVIDER_CLOUDFORMATION;
	else if (!strcmp(name, "slurm"))
		*out = SPEC_PROVIDER_SLURM;
	else
		return -1;
	return 0;
}

bool spec_valid_name(const char *name, size_t max)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && c != '-' && c != '_' && c != '.')
			return false;
	}
	return true;
}

int spec_set_kv(struct spec_kv **kv, size_t *n, const char *key, const char *value)
{
	struct spec_kv *nkv;
	char *k, *v;

	for (size_t i = 0; i < *n; i++) {
		if (!strcmp((*kv)[i].key, key)) {
			v = strdup(value);
			if (!v)
				return -1;
			free((*kv)[i].value);
			(*kv)[i].value = v;
			return 0;
		}
	}
	k = strdup(key);
	v = strdup(value);
	nkv = realloc(*kv, (*n + 1) * sizeof(**kv));
	if (!k || !v || !nkv) {
		free(k);
		free(v);
		if (nkv)
			*kv = nkv;
		return -1;
	}
	*kv = nkv;
	nkv[*n].key = k;
	nkv[*n].value = v;
	(*n)++;
	return 0;
}

const char *spec_get_kv(const struct spec_kv *kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(kv[i].key, key))
			return kv[i].value;
	return NULL;
}

int spec_parse_kv(const char *arg, char **key, char **value)
{
	const char *eq = strchr(arg, '=');

	*key = *value = NULL;
	if (!eq || eq == arg)
		return -1;
	*key = strndup(arg, (size_t)(eq - arg));
	*value = strdup(eq + 1);
	if (!*key || !*value) {
		free(*key);
		free(*value);
		*key = *value = NULL;
		return -1;
	}
	return 0;
}

static int set_str(char **dst, const char *v)
{
	char *n = strdup(v);

	if (!n)
		return -1;
	free(*dst);
	*dst = n;
	return 0;
}

/* ---------------------------------------------------------------- problems */

void spec_problems_free(struct spec_problems *p)
{
	for (size_t i = 0; p && i < p->n; i++) {
		free(p->v[i].path);
		free(p->v[i].message);
	}
	if (p) {
		free(p->v);
		memset(p, 0, sizeof(*p));
	}
}

static void vproblem(struct spec_problems *p, const char *source, const char *path, const char *fmt,
                     va_list ap) __attribute__((format(printf, 4, 0)));
static void vproblem(struct spec_problems *p, const char *source, const char *path, const char *fmt,
                     va_list ap)
{
	struct spec_problem *nv;
	char msg[1024];

	if (p->n >= SPEC_MAX_PROBLEMS) {
		p->dropped++;
		return;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	nv = realloc(p->v, (p->n + 1) * sizeof(*nv));
	if (!nv) {
		p->dropped++;
		return;
	}
	p->v = nv;
	nv[p->n].source = source;
	nv[p->n].path = strdup(path ? path : "");
	nv[p->n].message = strdup(msg);
	if (!nv[p->n].path || !nv[p->n].message) {
		free(nv[p->n].path);
		free(nv[p->n].message);
		p->dropped++;
		return;
	}
	p->n++;
}

void spec_problems_add(struct spec_problems *p, const char *source, const char *path,
                       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vproblem(p, source, path, fmt, ap);
	va_end(ap);
}

const char *spec_problem_format(const struct spec_problem *pr, char *buf, size_t len)
{
	if (pr->path[0])
		snprintf(buf, len, "%s: %s", pr->path, pr->message);
	else
		snprintf(buf, len, "%s", pr->message);
	return buf;
}

/* Problems of the spec itself (source "spec"). */
static void problem(struct spec_problems *p, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(struct spec_problems *p, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vproblem(p, "spec", path, fmt, ap);
	va_end(ap);
}

/* "a.b", "a[3]" paths. */
static const char *join(char *buf, size_t len, const char *parent, const char *key)
{
	if (parent && parent[0])
		snprintf(buf, len, "%s.%s", parent, key);
	else
		snprintf(buf, len, "%s", key);
	return buf;
}

/* The first problem as one line, "WHAT: path: message", into @errbuf. */
static void first_problem(const struct spec_problems *p, const char *what, char *errbuf,
                          size_t errlen)
{
	char line[1400];

	if (!p->n) {
		errf(errbuf, errlen, "%s: out of memory", what ? what : "spec");
		return;
	}
	spec_problem_format(&p->v[0], line, sizeof(line));
	if (what)
		errf(errbuf, errlen, "%s: %s", what, line);
	else
		errf(errbuf, errlen, "%s", line);
}

/* ---------------------------------------------------------------- parsing */

/* A JSON string field into *dst; another type is a problem. Returns 0 or -1. */
static int get_str(json_t *obj, const char *parent, const char *key, char **dst,
                   struct spec_problems *p)
{
	json_t *v = json_object_get(obj, key);
	char path[256];

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		problem(p, join(path, sizeof(path), parent, key), "must be a string");
		return -1;
	}
	if (set_str(dst, json_string_value(v)) != 0) {
		problem(p, join(path, sizeof(path), parent, key), "out of memory");
		return -1;
	}
	return 0;
}

static int get_bool(json_t *obj, const char *key, bool *dst, struct spec_problems *p)
{
	json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v)) {
		problem(p, key, "must be true or false");
		return -1;
	}
	*dst = json_is_true(v);
	return 0;
}

static int get_kv_object(json_t *obj, const char *parent, const char *key, struct spec_kv **kv,
                         size_t *n, struct spec_problems *p)
{
	json_t *v = json_object_get(obj, key), *val;
	struct spec_kv *got = NULL;
	size_t ngot = 0;
	const char *k;
	char num[64], path[256], sub[320];
	int rc = 0;

	if (!v || json_is_null(v))
		return 0;
	join(path, sizeof(path), parent, key);
	if (!json_is_object(v)) {
		problem(p, path, "must be an object of \"name\": \"value\" pairs");
		return -1;
	}
	json_object_foreach(v, k, val)
	{
		const char *str;
		if (json_is_string(val)) {
			str = json_string_value(val);
		} else if (json_is_integer(val)) {
			snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
			         json_integer_value(val));
			str = num;
		} else if (json_is_boolean(val)) {
			str = json_is_true(val) ? "true" : "false";
		} else {
			snprintf(sub, sizeof(sub), "%s.%s", path, k);
			problem(p, sub, "must be a string or a number");
			rc = -1;
			continue;
		}
		if (spec_set_kv(&got, &ngot, k, str) != 0) {
			problem(p, path, "out of memory");
			rc = -1;
		}
	}
	if (rc == 0) {
		for (size_t i = 0; i < ngot; i++)
			if (spec_set_kv(kv, n, got[i].key, got[i].value) != 0) {
				problem(p, path, "out of memory");
				rc = -1;
			}
	}
	free_kv(got, ngot);
	return rc;
}

static int get_strv(json_t *v, char ***out, size_t *n, const char *path, struct spec_problems *p)
{
	size_t i;
	json_t *e;
	char **a;
	char sub[320];
	int rc = 0;

	if (!json_is_array(v)) {
		problem(p, path, "must be an array of strings");
		return -1;
	}
	a = calloc(json_array_size(v) + 1, sizeof(*a));
	if (!a) {
		problem(p, path, "out of memory");
		return -1;
	}
	json_array_foreach(v, i, e)
	{
		if (!json_is_string(e)) {
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			problem(p, sub, "must be a string");
			rc = -1;
			continue;
		}
		a[i] = strdup(json_string_value(e));
		if (!a[i]) {
			problem(p, path, "out of memory");
			rc = -1;
		}
	}
	if (rc) {
		free_strv(a, json_array_size(v));
		return -1;
	}
	free_strv(*out, *n);
	*out = a;
	*n = json_array_size(v);
	return 0;
}

static int check_keys(json_t *obj, const char *const *known, const char *parent,
                      struct spec_problems *p)
{
	const char *k;
	json_t *v;
	int rc = 0;

	json_object_foreach(obj, k, v)
	{
		bool ok = false;
		char list[512] = "", path[256];
		for (size_t i = 0; known[i]; i++)
			ok |= !strcmp(known[i], k);
		if (ok)
			continue;
		for (size_t i = 0; known[i]; i++) {
			strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
			strncat(list, known[i], sizeof(list) - strlen(list) - 1);
		}
		problem(p, join(path, sizeof(path), parent, k),
		        "unknown field \"%s\" (known fields: %s)", k, list);
		rc = -1;
	}
	return rc;
}

static int set_command_string(struct spec_workload *w, const char *cmd)
{
	free_strv(w->argv, w->argc);
	w->argv = calloc(4, sizeof(char *));
	w->argc = 3;
	if (!w->argv)
		return -1;
	w->argv[0] = strdup("/bin/sh");
	w->argv[1] = strdup("-c");
	w->argv[2] = strdup(cmd);
	return w->argv[0] && w->argv[1] && w->argv[2] ? 0 : -1;
}

/* One workload at @path ("workloads[2]"): 0, or -1 with every problem added. */
static int parse_workload(json_t *o, struct spec_workload *w, const char *path,
                          struct spec_problems *p)
{
	static const char *const known[] = {"name",        "command", "time_limit", "nodes",
	                                    "sbatch_args", "env",     NULL};
	json_t *cmd, *nodes, *args;
	char sub[320];
	int rc = 0;

	if (!json_is_object(o)) {
		problem(p, path, "must be an object with \"name\" and \"command\"");
		return -1;
	}
	rc |= check_keys(o, known, path, p);
	rc |= get_str(o, path, "name", &w->name, p);
	rc |= get_str(o, path, "time_limit", &w->time_limit, p);
	/* absent or null: a workload has no default name */
	if (!w->name && !json_is_string(json_object_get(o, "name"))) {
		problem(p, join(sub, sizeof(sub), path, "name"),
		        "required: 1-64 letters, digits, '-', '_' or '.' (the Slurm job name)");
		rc = -1;
	}
	cmd = json_object_get(o, "command");
	join(sub, sizeof(sub), path, "command");
	if (json_is_string(cmd)) {
		if (!json_string_value(cmd)[0]) {
			problem(p, sub, "is empty");
			rc = -1;
		} else if (set_command_string(w, json_string_value(cmd)) != 0) {
			problem(p, sub, "out of memory");
			rc = -1;
		}
	} else if (json_is_array(cmd)) {
		if (json_array_size(cmd) == 0) {
			problem(p, sub, "is an empty array");
			rc = -1;
		} else {
			rc |= get_strv(cmd, &w->argv, &w->argc, sub, p);
		}
	} else {
		problem(p, sub,
		        "required: a shell command string or an array of arguments, e.g. "
		        "\"./run.sh input.dat\"");
		rc = -1;
	}
	nodes = json_object_get(o, "nodes");
	if (nodes) {
		if (!json_is_integer(nodes) || json_integer_value(nodes) < 1 ||
		    json_integer_value(nodes) > 100000) {
			problem(p, join(sub, sizeof(sub), path, "nodes"),
			        "must be a positive integer (sbatch --nodes)");
			rc = -1;
		} else {
			w->nodes = (int)json_integer_value(nodes);
		}
	}
	args = json_object_get(o, "sbatch_args");
	if (args)
		rc |= get_strv(args, &w->sbatch_args, &w->n_sbatch_args,
		               join(sub, sizeof(sub), path, "sbatch_args"), p);
	rc |= get_kv_object(o, path, "env", &w->env, &w->n_env, p);
	return rc ? -1 : 0;
}

static int get_number(json_t *obj, const char *key, double *out, struct spec_problems *p)
{
	json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_number(v)) {
		problem(p, key, "must be a number");
		return -1;
	}
	*out = json_number_value(v);
	return 0;
}

int spec_load_json_all(struct launch_spec *s, json_t *doc, struct spec_problems *p)
{
	static const char *const known[] = {
	    "provider",       "stack_name",       "region",        "template",
	    "template_url",   "parameters",       "capabilities",  "tags",
	    "role_arn",       "termination_role", "bucket",        "mount_dir",
	    "outputs_prefix", "run_id",           "max_minutes",   "poll_seconds",
	    "workloads",      "keep_on_failure",  "mount_metrics", NULL};
	size_t before = p->n + p->dropped;
	json_t *v;
	char *prov = NULL;

	if (!json_is_object(doc)) {
		problem(p, "", "the launch spec must be a JSON object");
		return -1;
	}
	check_keys(doc, known, "", p);
	if (get_str(doc, "", "provider", &prov, p) == 0 && prov &&
	    spec_parse_provider(prov, &s->provider) != 0)
		problem(p, "provider", "\"%s\": use \"cloudformation\" or \"slurm\"", prov);
	free(prov);
	get_str(doc, "", "stack_name", &s->stack_name, p);
	get_str(doc, "", "region", &s->region, p);
	get_str(doc, "", "template", &s->template_path, p);
	get_str(doc, "", "template_url", &s->template_url, p);
	get_str(doc, "", "role_arn", &s->role_arn, p);
	get_str(doc, "", "termination_role", &s->termination_role, p);
	get_str(doc, "", "bucket", &s->bucket, p);
	get_str(doc, "", "mount_dir", &s->mount_dir, p);
	get_str(doc, "", "outputs_prefix", &s->outputs_prefix, p);
	get_str(doc, "", "run_id", &s->run_id, p);
	get_str(doc, "", "mount_metrics", &s->mount_metrics, p);
	get_kv_object(doc, "", "parameters", &s->parameters, &s->n_parameters, p);
	get_kv_object(doc, "", "tags", &s->tags, &s->n_tags, p);
	get_number(doc, "max_minutes", &s->max_minutes, p);
	get_number(doc, "poll_seconds", &s->poll_seconds, p);
	get_bool(doc, "keep_on_failure", &s->keep_on_failure, p);
	v = json_object_get(doc, "capabilities");
	if (v)
		get_strv(v, &s->capabilities, &s->n_capabilities, "capabilities", p);
	v = json_object_get(doc, "workloads");
	if (v && !json_is_array(v)) {
		problem(p, "workloads", "must be an array of objects");
	} else if (v && json_array_size(v) > SPEC_MAX_WORKLOADS) {
		problem(p, "workloads", "%zu workloads, more than the %d allowed in one run",
		        json_array_size(v), SPEC_MAX_WORKLOADS);
	} else if (v) {
		size_t i, n = json_array_size(v);
		json_t *e;
		struct spec_workload *ws = calloc(n + 1, sizeof(*ws));
		int bad = 0;

		if (!ws) {
			problem(p, "workloads", "out of memory");
			return -1;
		}
		json_array_foreach(v, i, e)
		{
			char path[64];
			snprintf(path, sizeof(path), "workloads[%zu]", i);
			bad |= parse_workload(e, &ws[i], path, p);
		}
		/* names too, so that they are reported even when the array is not taken */
		for (i = 0; i < n; i++) {
			char path[64];
			snprintf(path, sizeof(path), "workloads[%zu].name", i);
			if (!ws[i].name)
				continue;
			if (!spec_valid_name(ws[i].name, 64)) {
				problem(p, path,
				        "\"%s\" must be 1-64 letters, digits, '-', '_' or '.'",
				        ws[i].name);
				bad = -1;
				continue;
			}
			for (size_t j = 0; j < i; j++) {
				if (ws[j].name && !strcmp(ws[j].name, ws[i].name)) {
					problem(
					    p, path,
					    "two workloads are named \"%s\" (also workloads[%zu]): "
					    "names must differ",
					    ws[i].name, j);
					bad = -1;
					break;
				}
			}
		}
		if (bad) {
			for (size_t j = 0; j < n; j++)
				workload_free(&ws[j]);
			free(ws);
		} else {
			for (size_t j = 0; j < s->n_workloads; j++)
				workload_free(&s->workloads[j]);
			free(s->workloads);
			s->workloads = ws;
			s->n_workloads = n;
		}
	}
	return p->n + p->dropped > before ? -1 : 0;
}

int spec_load_json(struct launch_spec *s, json_t *doc, const char *what, char *errbuf,
                   size_t errlen)
{
	struct spec_problems p = {0};
	int rc = spec_load_json_all(s, doc, &p);

	if (rc)
		first_problem(&p, what, errbuf, errlen);
	spec_problems_free(&p);
	return rc;
}

int spec_load_string_all(struct launch_spec *s, const char *text, struct spec_problems *p)
{
	json_error_t je;
	json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	int rc;

	if (!doc) {
		problem(p, "", "line %d, column %d: %s", je.line, je.column, je.text);
		return -1;
	}
	rc = spec_load_json_all(s, doc, p);
	json_decref(doc);
	return rc;
}

int spec_load_string(struct launch_spec *s, const char *text, const char *what, char *errbuf,
                     size_t errlen)
{
	struct spec_problems p = {0};
	int rc = spec_load_string_all(s, text, &p);

	if (rc)
		first_problem(&p, what, errbuf, errlen);
	spec_problems_free(&p);
	return rc;
}

int spec_load_file_all(struct launch_spec *s, const char *path, struct spec_problems *p)
{
	char *text = util_read_file(path, SPEC_MAX_FILE);
	int rc;

	if (!text) {
		problem(p, "", "cannot read launch spec %s: %s%s", path, strerror(errno),
		        errno == EFBIG ? " (larger than 1 MiB)" : "");
		return -1;
	}
	rc = spec_load_string_all(s, text, p);
	free(text);
	return rc;
}

int spec_load_file(struct launch_spec *s, const char *path, char *errbuf, size_t errlen)
{
	struct spec_problems p = {0};
	int rc = spec_load_file_all(s, path, &p);

	if (rc) {
		/* "cannot read launch spec F" already names the file */
		bool unreadable =
		    p.n && !p.v[0].path[0] && !strncmp(p.v[0].message, "cannot read", 11);
		first_problem(&p, unreadable ? NULL : path, errbuf, errlen);
	}
	spec_problems_free(&p);
	return rc;
}

int spec_add_workload_arg(struct launch_spec *s, const char *arg, char *errbuf, size_t errlen)
{
	char *name = NULL, *cmd = NULL;
	struct spec_workload *ws;

	if (spec_parse_kv(arg, &name, &cmd) != 0 || !cmd[0]) {
		errf(errbuf, errlen,
		     "--workload \"%s\": expected NAME=COMMAND, e.g. "
		     "--workload sim='./run.sh input.dat'",
		     arg);
		goto fail;
	}
	/* as a spec file's workloads[].name: what run stores reads back */
	if (!spec_valid_name(name, 64)) {
		errf(errbuf, errlen,
		     "--workload \"%s\": workloads[%zu].name: \"%s\" must be 1-64 letters, "
		     "digits, '-', '_' or '.'",
		     arg, s->n_workloads, name);
		goto fail;
	}
	if (s->n_workloads >= SPEC_MAX_WORKLOADS) {
		errf(errbuf, errlen, "more than %d workloads in one run", SPEC_MAX_WORKLOADS);
		goto fail;
	}
	ws = realloc(s->workloads, (s->n_workloads + 1) * sizeof(*ws));
	if (!ws) {
		errf(errbuf, errlen, "out of memory");
		goto fail;
	}
	s->workloads = ws;
	memset(&ws[s->n_workloads], 0, sizeof(*ws));
	ws[s->n_workloads].name = name;
	if (set_command_string(&ws[s->n_workloads], cmd) != 0) {
		workload_free(&ws[s->n_workloads]);
		errf(errbuf, errlen, "out of memory");
		free(cmd);
		return -1;
	}
	s->n_workloads++;
	free(cmd);
	return 0;
fail:
	free(name);
	free(cmd);
	return -1;
}

/* True when @p already has a problem at @root or below it ("workloads" covers
 * "workloads[1].name"): a field that did not parse is not also "missing". */
static bool has_problem_under(const struct spec_problems *p, size_t upto, const char *root)
{
	size_t n = strlen(root);

	for (size_t i = 0; i < upto; i++) {
		const char *q = p->v[i].path;
		if (!strncmp(q, root, n) && (q[n] == 0 || q[n] == '.' || q[n] == '['))
			return true;
	}
	return false;
}

int spec_check(const struct launch_spec *s, bool need_stack, bool need_workloads,
               struct spec_problems *p)
{
	size_t before = p->n + p->dropped, parsed = p->n;

#define CHECK(root, ...)                                                                           \
	do {                                                                                       \
		if (!has_problem_under(p, parsed, root))                                           \
			problem(p, root, __VA_ARGS__);                                             \
	} while (0)
	if (!(s->max_minutes > 0) || !isfinite(s->max_minutes) || s->max_minutes > 525600)
		CHECK("max_minutes",
		      "%g is not a budget: give minutes above 0, at most 525600 (fractions "
		      "allowed, e.g. --max-minutes 0.5 for 30 s)",
		      s->max_minutes);
	if (!(s->poll_seconds >= 0.05) || s->poll_seconds > 3600)
		CHECK("poll_seconds", "%g: give 0.05 to 3600", s->poll_seconds);
	if (!s->bucket || !s->bucket[0])
		CHECK("bucket", "missing: give --bucket BUCKET or \"bucket\" in the spec (job and "
		                "run records are kept there)");
	if (s->run_id && !spec_valid_name(s->run_id, 128))
		CHECK("run_id", "\"%s\" may only hold letters, digits, '-', '_' and '.'",
		      s->run_id);
	if (need_stack && s->provider == SPEC_PROVIDER_CLOUDFORMATION) {
		const char *n = s->stack_name;
		if (!n || !n[0])
			CHECK("stack_name",
			      "missing: give --stack-name NAME or \"stack_name\" in the spec (or "
			      "--provider slurm to use an existing Slurm cluster)");
		else if (!isalpha((unsigned char)n[0]) || strlen(n) > 128 || strchr(n, '_') ||
		         strchr(n, '.') || !spec_valid_name(n, 128))
			CHECK("stack_name",
			      "\"%s\": CloudFormation wants a letter first, then letters, digits "
			      "and '-' (at most 128)",
			      n);
		if (!s->template_path == !s->template_url &&
		    !has_problem_under(p, parsed, "template_url"))
			CHECK("template",
			      "give exactly one of --template FILE or --template-url URL (e.g. "
			      "--template scripts/cluster-template.yaml)");
	}
	if (need_workloads && s->n_workloads == 0)
		CHECK("workloads", "none: add --workload NAME=COMMAND or a \"workloads\" array to "
		                   "the spec");
	for (size_t i = 0; i < s->n_workloads; i++) {
		const struct spec_workload *w = &s->workloads[i];
		char path[64];

		snprintf(path, sizeof(path), "workloads[%zu].name", i);
		if (!spec_valid_name(w->name, 64)) {
			CHECK(path, "\"%s\" must be 1-64 letters, digits, '-', '_' or '.'",
			      w->name ? w->name : "");
			continue;
		}
		for (size_t j = 0; j < i; j++) {
			if (s->workloads[j].name && !strcmp(s->workloads[j].name, w->name)) {
				CHECK(path,
				      "two workloads are named \"%s\" (also workloads[%zu]): names "
				      "must differ",
				      w->name, j);
				break;
			}
		}
	}
#undef CHECK
	return p->n + p->dropped > before ? -1 : 0;
}

int spec_validate(const struct launch_spec *s, bool need_stack, bool need_workloads, char *errbuf,
                  size_t errlen)
{
	struct spec_problems p = {0};
	int rc = spec_check(s, need_stack, need_workloads, &p);

	if (rc)
		first_problem(&p, NULL, errbuf, errlen);
	spec_problems_free(&p);
	return rc;
}

static json_t *kv_json(const struct spec_kv *kv, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < n; i++)
		json_object_set_new(o, kv[i].key, json_string(kv[i].value));
	return o;
}

static json_t *strv_json(char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static void set_opt_str(json_t *o, const char *k, const char *v)
{
	if (v)
		json_object_set_new(o, k, json_string(v));
}

json_t *spec_to_json(const struct launch_spec *s)
{
	json_t *o = json_object(), *ws = json_array();

	if (!o || !ws) {
		json_decref(o);
		json_decref(ws);
		return NULL;
	}
	json_object_set_new(o, "provider", json_string(spec_provider_name(s->provider)));
	set_opt_str(o, "stack_name", s->stack_name);
	set_opt_str(o, "region", s->region);
	set_opt_str(o, "template", s->template_path);
	set_opt_str(o, "template_url", s->template_url);
	json_object_set_new(o, "parameters", kv_json(s->parameters, s->n_parameters));
	json_object_set_new(o, "capabilities", strv_json(s->capabilities, s->n_capabilities));
	json_object_set_new(o, "tags", kv_json(s->tags, s->n_tags));
	set_opt_str(o, "role_arn", s->role_arn);
	set_opt_str(o, "termination_role", s->termination_role);
	set_opt_str(o, "bucket", s->bucket);
	set_opt_str(o, "mount_dir", s->mount_dir);
	set_opt_str(o, "outputs_prefix", s->outputs_prefix);
	set_opt_str(o, "run_id", s->run_id);
	json_object_set_new(o, "max_minutes", json_real(s->max_minutes));
	json_object_set_new(o, "poll_seconds", json_real(s->poll_seconds));
	if (s->keep_on_failure)
		json_object_set_new(o, "keep_on_failure", json_true());
	set_opt_str(o, "mount_metrics", s->mount_metrics);
	for (size_t i = 0; i < s->n_workloads; i++) {
		const struct spec_workload *w = &s->workloads[i];
		json_t *wo = json_object();
		if (!wo)
			break;
		json_object_set_new(wo, "name", json_string(w->name));
		json_object_set_new(wo, "command", strv_json(w->argv, w->argc));
		set_opt_str(wo, "time_limit", w->time_limit);
		if (w->nodes)
			json_object_set_new(wo, "nodes", json_integer(w->nodes));
		if (w->n_sbatch_args)
			json_object_set_new(wo, "sbatch_args",
			                    strv_json(w->sbatch_args, w->n_sbatch_args));
		if (w->n_env)
			json_object_set_new(wo, "env", kv_json(w->env, w->n_env));
		json_array_append_new(ws, wo);
	}
	json_object_set_new(o, "workloads", ws);
	return o;
}
