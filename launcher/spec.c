// SPDX-License-Identifier: Apache-2.0
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
	char *s = strdup(v);

	if (!s)
		return -1;
	free(*dst);
	*dst = s;
	return 0;
}

/* A JSON string field into *dst; wrong type is an error naming the field. */
static int get_str(json_t *obj, const char *key, char **dst, const char *what, char *errbuf,
                   size_t errlen)
{
	json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		errf(errbuf, errlen, "%s: \"%s\" must be a string", what, key);
		return -1;
	}
	if (set_str(dst, json_string_value(v)) != 0) {
		errf(errbuf, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static int get_kv_object(json_t *obj, const char *key, struct spec_kv **kv, size_t *n,
                         const char *what, char *errbuf, size_t errlen)
{
	json_t *v = json_object_get(obj, key), *val;
	const char *k;
	char num[64];

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v)) {
		errf(errbuf, errlen, "%s: \"%s\" must be an object of \"name\": \"value\" pairs",
		     what, key);
		return -1;
	}
	json_object_foreach(v, k, val)
	{
		const char *s;
		if (json_is_string(val)) {
			s = json_string_value(val);
		} else if (json_is_integer(val)) {
			snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
			         json_integer_value(val));
			s = num;
		} else if (json_is_boolean(val)) {
			s = json_is_true(val) ? "true" : "false";
		} else {
			errf(errbuf, errlen, "%s: \"%s\".\"%s\" must be a string or a number", what,
			     key, k);
			return -1;
		}
		if (spec_set_kv(kv, n, k, s) != 0) {
			errf(errbuf, errlen, "out of memory");
			return -1;
		}
	}
	return 0;
}

static int get_strv(json_t *v, char ***out, size_t *n, const char *what, const char *key,
                    char *errbuf, size_t errlen)
{
	size_t i;
	json_t *e;
	char **a;

	if (!json_is_array(v)) {
		errf(errbuf, errlen, "%s: \"%s\" must be an array of strings", what, key);
		return -1;
	}
	a = calloc(json_array_size(v) + 1, sizeof(*a));
	if (!a) {
		errf(errbuf, errlen, "out of memory");
		return -1;
	}
	json_array_foreach(v, i, e)
	{
		if (!json_is_string(e) || !(a[i] = strdup(json_string_value(e)))) {
			errf(errbuf, errlen, "%s: \"%s\"[%zu] must be a string", what, key, i);
			free_strv(a, i);
			return -1;
		}
	}
	free_strv(*out, *n);
	*out = a;
	*n = json_array_size(v);
	return 0;
}

static int check_keys(json_t *obj, const char *const *known, const char *what, char *errbuf,
                      size_t errlen)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v)
	{
		bool ok = false;
		for (size_t i = 0; known[i]; i++)
			ok |= !strcmp(known[i], k);
		if (!ok) {
			char list[512] = "";
			for (size_t i = 0; known[i]; i++) {
				strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
				strncat(list, known[i], sizeof(list) - strlen(list) - 1);
			}
			errf(errbuf, errlen, "%s: unknown field \"%s\" (known fields: %s)", what, k,
			     list);
			return -1;
		}
	}
	return 0;
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

static int parse_workload(json_t *o, struct spec_workload *w, const char *what, char *errbuf,
                          size_t errlen)
{
	static const char *const known[] = {"name",        "command", "time_limit", "nodes",
	                                    "sbatch_args", "env",     NULL};
	json_t *cmd, *nodes, *args;

	if (!json_is_object(o)) {
		errf(errbuf, errlen, "%s must be an object with \"name\" and \"command\"", what);
		return -1;
	}
	if (check_keys(o, known, what, errbuf, errlen) != 0)
		return -1;
	if (get_str(o, "name", &w->name, what, errbuf, errlen) != 0 ||
	    get_str(o, "time_limit", &w->time_limit, what, errbuf, errlen) != 0)
		return -1;
	cmd = json_object_get(o, "command");
	if (json_is_string(cmd)) {
		if (!json_string_value(cmd)[0]) {
			errf(errbuf, errlen, "%s: \"command\" is empty", what);
			return -1;
		}
		if (set_command_string(w, json_string_value(cmd)) != 0) {
			errf(errbuf, errlen, "out of memory");
			return -1;
		}
	} else if (json_is_array(cmd)) {
		if (json_array_size(cmd) == 0) {
			errf(errbuf, errlen, "%s: \"command\" is an empty array", what);
			return -1;
		}
		if (get_strv(cmd, &w->argv, &w->argc, what, "command", errbuf, errlen) != 0)
			return -1;
	} else {
		errf(errbuf, errlen,
		     "%s: \"command\" is required: a shell command string or an "
		     "array of arguments",
		     what);
		return -1;
	}
	nodes = json_object_get(o, "nodes");
	if (nodes) {
		if (!json_is_integer(nodes) || json_integer_value(nodes) < 1 ||
		    json_integer_value(nodes) > 100000) {
			errf(errbuf, errlen, "%s: \"nodes\" must be a positive integer", what);
			return -1;
		}
		w->nodes = (int)json_integer_value(nodes);
	}
	args = json_object_get(o, "sbatch_args");
	if (args && get_strv(args, &w->sbatch_args, &w->n_sbatch_args, what, "sbatch_args", errbuf,
	                     errlen) != 0)
		return -1;
	return get_kv_object(o, "env", &w->env, &w->n_env, what, errbuf, errlen);
}

static int get_number(json_t *obj, const char *key, double *out, const char *what, char *errbuf,
                      size_t errlen)
{
	json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_number(v)) {
		errf(errbuf, errlen, "%s: \"%s\" must be a number", what, key);
		return -1;
	}
	*out = json_number_value(v);
	return 0;
}

int spec_load_json(struct launch_spec *s, json_t *doc, const char *what, char *errbuf,
                   size_t errlen)
{
	static const char *const known[] = {"provider",         "stack_name",   "region",
	                                    "template",         "template_url", "parameters",
	                                    "capabilities",     "tags",         "role_arn",
	                                    "termination_role", "bucket",       "mount_dir",
	                                    "outputs_prefix",   "run_id",       "max_minutes",
	                                    "poll_seconds",     "workloads",    NULL};
	json_t *v;
	char *prov = NULL;

	if (!json_is_object(doc)) {
		errf(errbuf, errlen, "%s: the launch spec must be a JSON object", what);
		return -1;
	}
	if (check_keys(doc, known, what, errbuf, errlen) != 0)
		return -1;
	if (get_str(doc, "provider", &prov, what, errbuf, errlen) != 0)
		return -1;
	if (prov && spec_parse_provider(prov, &s->provider) != 0) {
		errf(errbuf, errlen,
		     "%s: \"provider\" is \"%s\": use \"cloudformation\" or \"slurm\"", what, prov);
		free(prov);
		return -1;
	}
	free(prov);
	if (get_str(doc, "stack_name", &s->stack_name, what, errbuf, errlen) ||
	    get_str(doc, "region", &s->region, what, errbuf, errlen) ||
	    get_str(doc, "template", &s->template_path, what, errbuf, errlen) ||
	    get_str(doc, "template_url", &s->template_url, what, errbuf, errlen) ||
	    get_str(doc, "role_arn", &s->role_arn, what, errbuf, errlen) ||
	    get_str(doc, "termination_role", &s->termination_role, what, errbuf, errlen) ||
	    get_str(doc, "bucket", &s->bucket, what, errbuf, errlen) ||
	    get_str(doc, "mount_dir", &s->mount_dir, what, errbuf, errlen) ||
	    get_str(doc, "outputs_prefix", &s->outputs_prefix, what, errbuf, errlen) ||
	    get_str(doc, "run_id", &s->run_id, what, errbuf, errlen) ||
	    get_kv_object(doc, "parameters", &s->parameters, &s->n_parameters, what, errbuf,
	                  errlen) ||
	    get_kv_object(doc, "tags", &s->tags, &s->n_tags, what, errbuf, errlen) ||
	    get_number(doc, "max_minutes", &s->max_minutes, what, errbuf, errlen) ||
	    get_number(doc, "poll_seconds", &s->poll_seconds, what, errbuf, errlen))
		return -1;
	v = json_object_get(doc, "capabilities");
	if (v && get_strv(v, &s->capabilities, &s->n_capabilities, what, "capabilities", errbuf,
	                  errlen) != 0)
		return -1;
	v = json_object_get(doc, "workloads");
	if (v) {
		size_t i;
		json_t *e;
		struct spec_workload *ws;

		if (!json_is_array(v)) {
			errf(errbuf, errlen, "%s: \"workloads\" must be an array of objects", what);
			return -1;
		}
		if (json_array_size(v) > SPEC_MAX_WORKLOADS) {
			errf(errbuf, errlen,
			     "%s: %zu workloads, more than the %d allowed in one run", what,
			     json_array_size(v), SPEC_MAX_WORKLOADS);
			return -1;
		}
		ws = calloc(json_array_size(v) + 1, sizeof(*ws));
		if (!ws) {
			errf(errbuf, errlen, "out of memory");
			return -1;
		}
		json_array_foreach(v, i, e)
		{
			char w_what[256];
			snprintf(w_what, sizeof(w_what), "%s: workloads[%zu]", what, i);
			if (parse_workload(e, &ws[i], w_what, errbuf, errlen) != 0) {
				for (size_t j = 0; j <= i; j++)
					workload_free(&ws[j]);
				free(ws);
				return -1;
			}
		}
		for (size_t j = 0; j < s->n_workloads; j++)
			workload_free(&s->workloads[j]);
		free(s->workloads);
		s->workloads = ws;
		s->n_workloads = json_array_size(v);
	}
	return 0;
}

int spec_load_string(struct launch_spec *s, const char *text, const char *what, char *errbuf,
                     size_t errlen)
{
	json_error_t je;
	json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	int rc;

	if (!doc) {
		errf(errbuf, errlen, "%s: line %d, column %d: %s", what, je.line, je.column,
		     je.text);
		return -1;
	}
	rc = spec_load_json(s, doc, what, errbuf, errlen);
	json_decref(doc);
	return rc;
}

int spec_load_file(struct launch_spec *s, const char *path, char *errbuf, size_t errlen)
{
	char *text = util_read_file(path, SPEC_MAX_FILE);
	int rc;

	if (!text) {
		errf(errbuf, errlen, "cannot read launch spec %s: %s%s", path, strerror(errno),
		     errno == EFBIG ? " (larger than 1 MiB)" : "");
		return -1;
	}
	rc = spec_load_string(s, text, path, errbuf, errlen);
	free(text);
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

int spec_validate(const struct launch_spec *s, bool need_stack, bool need_workloads, char *errbuf,
                  size_t errlen)
{
	if (!(s->max_minutes > 0) || !isfinite(s->max_minutes) || s->max_minutes > 525600) {
		errf(errbuf, errlen,
		     "max_minutes is %g: give a budget in minutes above 0 (fractions "
		     "allowed, e.g. --max-minutes 0.5 for 30 s)",
		     s->max_minutes);
		return -1;
	}
	if (!(s->poll_seconds >= 0.05) || s->poll_seconds > 3600) {
		errf(errbuf, errlen, "poll_seconds is %g: give 0.05 to 3600", s->poll_seconds);
		return -1;
	}
	if (!s->bucket || !s->bucket[0]) {
		errf(errbuf, errlen,
		     "no bucket: give --bucket BUCKET or \"bucket\" in the spec "
		     "(job and run records are kept there)");
		return -1;
	}
	if (s->run_id && !spec_valid_name(s->run_id, 128)) {
		errf(errbuf, errlen,
		     "run id \"%s\" may only hold letters, digits, '-', '_' and '.'", s->run_id);
		return -1;
	}
	if (need_stack && s->provider == SPEC_PROVIDER_CLOUDFORMATION) {
		const char *n = s->stack_name;
		if (!n || !n[0]) {
			errf(errbuf, errlen,
			     "no stack name: give --stack-name NAME or \"stack_name\" "
			     "in the spec (or --provider slurm to use an existing Slurm cluster)");
			return -1;
		}
		if (!isalpha((unsigned char)n[0]) || strlen(n) > 128 || strchr(n, '_') ||
		    strchr(n, '.') || !spec_valid_name(n, 128)) {
			errf(errbuf, errlen,
			     "stack name \"%s\": CloudFormation wants a letter first, "
			     "then letters, digits and '-' (at most 128)",
			     n);
			return -1;
		}
		if (!s->template_path == !s->template_url) {
			errf(errbuf, errlen,
			     "give exactly one of --template FILE or --template-url URL "
			     "(e.g. --template scripts/cluster-template.yaml)");
			return -1;
		}
	}
	if (need_workloads && s->n_workloads == 0) {
		errf(errbuf, errlen,
		     "no workloads: add --workload NAME=COMMAND or a \"workloads\" "
		     "array to the spec");
		return -1;
	}
	for (size_t i = 0; i < s->n_workloads; i++) {
		const struct spec_workload *w = &s->workloads[i];
		if (!spec_valid_name(w->name, 64)) {
			errf(errbuf, errlen,
			     "workload %zu: name \"%s\" must be 1-64 letters, digits, "
			     "'-', '_' or '.'",
			     i + 1, w->name ? w->name : "");
			return -1;
		}
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(s->workloads[j].name, w->name)) {
				errf(errbuf, errlen,
				     "two workloads are named \"%s\": names must differ", w->name);
				return -1;
			}
		}
	}
	return 0;
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
