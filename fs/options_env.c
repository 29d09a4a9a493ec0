/* SPDX-License-Identifier: Apache-2.0 */
/*
 * options_env: what hpcops-mount takes from the environment, as mount-s3
 * and the AWS SDKs do (AWS_* variables, then the profile's keys), and the
 * S3 endpoint and region resolved from options and environment without
 * the network, for --print-config and for serve().
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "creds.h"
#include "endpoint.h"
#include "options_env.h"

void fs_env_say(const struct fs_options *o, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", o->prog ? o->prog : "hpcops-mount");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

const char *fs_env_get(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* The profile the SDKs use: --profile, AWS_PROFILE, "default". */
const char *fs_env_profile(const struct fs_options *o, const char **source)
{
	if (o->profile) {
		*source = "--profile";
		return o->profile;
	}
	if (fs_env_get("AWS_PROFILE")) {
		*source = "AWS_PROFILE";
		return fs_env_get("AWS_PROFILE");
	}
	*source = "default";
	return "default";
}

/*
 * A setting the SDKs take from a variable, else from the profile's key.
 * Returns a heap string (or NULL) and where it came from.
 */
char *fs_env_setting(const struct fs_options *o, const char *var, const char *key,
                     const char **source)
{
	const char *psrc, *prof = fs_env_profile(o, &psrc);
	char *v;

	if (fs_env_get(var)) {
		*source = var;
		return strdup(fs_env_get(var));
	}
	v = creds_profile_get(prof, key);
	*source = v ? "profile" : "default";
	return v;
}

bool fs_env_truthy(const char *v)
{
	return v && !strcasecmp(v, "true");
}

/*
 * MOUNTPOINT_LOG: tracing-subscriber directives ("debug", "warn,awscrt=debug",
 * "mountpoint_s3=trace"). The most verbose level of the bare directives and
 * of mountpoint_s3* targets becomes ours; awscrt=debug|trace means --debug-crt.
 * Returns 0, or -1 if no level in it is one we know.
 */
static int apply_log_filter(struct fs_options *o, const char *filter)
{
	char *copy = strdup(filter), *save = NULL, *dir;
	int level = -2;

	if (!copy)
		return -1;
	for (dir = strtok_r(copy, ",", &save); dir; dir = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(dir, '=');
		const char *target = eq ? dir : "", *lvl = eq ? eq + 1 : dir;
		int l;

		if (eq)
			*eq = '\0';
		while (*lvl == ' ')
			lvl++;
		if (!strcasecmp(lvl, "off"))
			l = -1;
		else if (!strcasecmp(lvl, "error"))
			l = LOG_ERR;
		else if (!strcasecmp(lvl, "warn"))
			l = LOG_WARNING;
		else if (!strcasecmp(lvl, "info"))
			l = LOG_INFO;
		else if (!strcasecmp(lvl, "debug") || !strcasecmp(lvl, "trace"))
			l = LOG_DEBUG;
		else
			continue;
		if (!strncmp(target, "awscrt", 6)) {
			if (l == LOG_DEBUG)
				o->debug_crt = true;
			continue;
		}
		if (*target && strncmp(target, "mountpoint_s3", 13))
			continue;
		if (l > level)
			level = l;
	}
	free(copy);
	if (level == -2)
		return -1;
	o->log_level = level;
	return 0;
}

/* Read what the environment adds. Returns 0 or an exit status. */
int fs_env_read(struct fs_options *o)
{
	const char *src;
	char *v;

	if (!o->ca_bundle) {
		o->ca_bundle = fs_env_setting(o, "AWS_CA_BUNDLE", "ca_bundle", &src);
	}
	v = fs_env_setting(o, "AWS_USE_DUALSTACK_ENDPOINT", "use_dualstack_endpoint", &src);
	if (fs_env_truthy(v))
		o->dual_stack = true;
	free(v);
	v = fs_env_setting(o, "AWS_MAX_ATTEMPTS", "max_attempts", &src);
	if (v) {
		char *end;
		long n;

		errno = 0;
		n = strtol(v, &end, 10);
		if (errno || end == v || *end || n < 1 || n > 100) {
			fs_env_say(
			    o,
			    "%s '%s' is not a number of attempts from 1 to 100 (the first attempt "
			    "included)",
			    strcmp(src, "profile") ? "AWS_MAX_ATTEMPTS"
			                           : "the profile's max_attempts",
			    v);
			free(v);
			return FS_EXIT_USAGE;
		}
		o->max_attempts = (int)n;
		free(v);
	}
	v = fs_env_setting(o, "AWS_RETRY_MODE", "retry_mode", &src);
	if (v) {
		if (!strcmp(v, "standard"))
			o->retry_mode = FS_RETRY_STANDARD;
		else if (!strcmp(v, "adaptive"))
			o->retry_mode = FS_RETRY_ADAPTIVE;
		else if (!strcmp(v, "legacy"))
			o->retry_mode = FS_RETRY_LEGACY;
		else {
			fs_env_say(o, "retry mode '%s' (%s) is not standard, adaptive or legacy", v,
			           src);
			free(v);
			return FS_EXIT_USAGE;
		}
		free(v);
	}
	if (o->no_log)
		o->log_level = -1;
	else if (o->debug || o->debug_crt)
		o->log_level =
		    LOG_DEBUG; /* --debug-crt: the transfer engine's lines are debug ones */
	if (fs_env_get("MOUNTPOINT_LOG")) {
		o->log_filter = strdup(fs_env_get("MOUNTPOINT_LOG"));
		if (!o->log_filter)
			return FS_EXIT_REFUSED;
		if (apply_log_filter(o, o->log_filter) < 0) {
			fs_env_say(
			    o,
			    "MOUNTPOINT_LOG='%s': no level in it (off, error, warn, info, debug or "
			    "trace, optionally as mountpoint_s3=LEVEL)",
			    o->log_filter);
			return FS_EXIT_USAGE;
		}
	}
	return 0;
}

/* ---- endpoint and region, as the SDKs resolve them (no network) ---- */

static bool virtual_hostable(const char *b)
{
	size_t n = strlen(b);

	if (n < 3 || n > 63 || strchr(b, '.') || strchr(b, '_'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (isupper((unsigned char)b[i]))
			return false;
	return b[0] != '-' && b[n - 1] != '-';
}

int fs_options_endpoint(const struct fs_options *o, const char *region, char **out,
                        const char **source, char *err, size_t errlen)
{
	const char *custom = NULL, *src = NULL, *r = region && *region ? region : "us-east-1";
	const char *suffix = strncmp(r, "cn-", 3) ? "amazonaws.com" : "amazonaws.com.cn";
	const char *ign = getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	int n;

	*out = NULL;
	if (errlen)
		err[0] = '\0';
	if (o->endpoint_url) {
		custom = o->endpoint_url;
		src = "--endpoint-url";
	} else if (!fs_env_truthy(ign) && fs_env_get("AWS_ENDPOINT_URL_S3")) {
		custom = fs_env_get("AWS_ENDPOINT_URL_S3");
		src = "AWS_ENDPOINT_URL_S3";
	} else if (!fs_env_truthy(ign) && fs_env_get("AWS_ENDPOINT_URL")) {
		custom = fs_env_get("AWS_ENDPOINT_URL");
		src = "AWS_ENDPOINT_URL";
	}
	if (custom && o->dual_stack) {
		snprintf(err, errlen,
		         "Cannot set dual-stack in combination with a custom endpoint. "
		         "(--dual-stack or AWS_USE_DUALSTACK_ENDPOINT, with %s)",
		         src);
		return -1;
	}
	if (custom || (!o->dual_stack && !o->transfer_acceleration)) {
		/* the one resolver the S3 client also uses */
		if (endpoint_resolve("s3", custom, r, out, err, errlen) < 0)
			return -1;
		if (source)
			*source = custom ? src : "AWS regional endpoint";
		return 0;
	}
	if (o->transfer_acceleration) {
		if (!strncmp(r, "cn-", 3)) {
			snprintf(err, errlen, "S3 Accelerate cannot be used in this region");
			return -1;
		}
		if (o->force_path_style || !virtual_hostable(o->bucket ? o->bucket : "")) {
			snprintf(err, errlen,
			         "Path-style addressing cannot be used with S3 Accelerate");
			return -1;
		}
		n = asprintf(out, "https://s3-accelerate%s.%s", o->dual_stack ? ".dualstack" : "",
		             suffix);
		if (source)
			*source = "--transfer-acceleration";
	} else {
		n = asprintf(out, "https://s3.dualstack.%s.%s", r, suffix);
		if (source)
			*source = "--dual-stack";
	}
	if (n < 0) {
		*out = NULL;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

bool fs_options_is_directory_bucket(const struct fs_options *o)
{
	size_t n = o->bucket ? strlen(o->bucket) : 0;

	if (o->bucket_type != FS_BUCKET_AUTO)
		return o->bucket_type == FS_BUCKET_DIRECTORY;
	return (n > 6 && !strcmp(o->bucket + n - 6, "--x-s3")) ||
	       (n > 7 && !strcmp(o->bucket + n - 7, "--xa-s3"));
}

/* The region without asking IMDS: what --print-config can tell. */
char *fs_env_region(const struct fs_options *o, const char **source)
{
	const char *psrc, *prof = fs_env_profile(o, &psrc);
	char *v;

	if (o->region) {
		*source = "--region";
		return strdup(o->region);
	}
	if (fs_env_get("AWS_REGION")) {
		*source = "AWS_REGION";
		return strdup(fs_env_get("AWS_REGION"));
	}
	if (fs_env_get("AWS_DEFAULT_REGION")) {
		*source = "AWS_DEFAULT_REGION";
		return strdup(fs_env_get("AWS_DEFAULT_REGION"));
	}
	v = creds_profile_get(prof, "region");
	if (v) {
		*source = "profile";
		return v;
	}
	*source = "default (when mounting, EC2 instance metadata is asked first unless "
	          "AWS_EC2_METADATA_DISABLED=true)";
	return strdup("us-east-1");
}
