// SPDX-License-Identifier: Apache-2.0
/*
 * creds: the AWS credential chain and region resolution, with a thread-safe
 * cache that renews temporary credentials ahead of expiry. Profile files are
 * read in creds_files.c, IMDS and container endpoints in creds_metadata.c.
 */
#include "creds.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "creds_private.h"
#include "log.h"
#include "sts.h"
#include "util.h"
#include "xfer.h"

const char *creds_strerror(enum creds_err err)
{
	switch (err) {
	case CREDS_OK:
		return "success";
	case CREDS_ERR_NOT_FOUND:
		return "no AWS credentials found";
	case CREDS_ERR_CONFIG:
		return "bad AWS credentials configuration";
	case CREDS_ERR_NETWORK:
		return "credentials endpoint unreachable";
	case CREDS_ERR_REMOTE:
		return "credentials service refused";
	case CREDS_ERR_PROTOCOL:
		return "unparsable credentials response";
	case CREDS_ERR_NOMEM:
		return "out of memory";
	}
	return "unknown credentials error";
}

void creds_set_err(struct creds_error *err, enum creds_err code, const char *fmt, ...)
{
	va_list ap;

	err->err = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

/* ---- struct creds ---- */

void creds_clear(struct creds *c)
{
	if (!c)
		return;
	free(c->access_key_id);
	util_free_secret(c->secret_access_key);
	util_free_secret(c->session_token);
	memset(c, 0, sizeof(*c));
}

int creds_copy(struct creds *dst, const struct creds *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->access_key_id = src->access_key_id ? strdup(src->access_key_id) : NULL;
	dst->secret_access_key = src->secret_access_key ? strdup(src->secret_access_key) : NULL;
	dst->session_token = src->session_token ? strdup(src->session_token) : NULL;
	dst->expiration = src->expiration;
	memcpy(dst->source, src->source, sizeof(dst->source));
	if ((src->access_key_id && !dst->access_key_id) ||
	    (src->secret_access_key && !dst->secret_access_key) ||
	    (src->session_token && !dst->session_token)) {
		creds_clear(dst);
		return -1;
	}
	return 0;
}

int creds_set(struct creds *c, const char *akid, const char *secret, const char *token, time_t exp,
              const char *source)
{
	memset(c, 0, sizeof(*c));
	c->access_key_id = strdup(akid);
	c->secret_access_key = strdup(secret);
	c->session_token = token && *token ? strdup(token) : NULL;
	c->expiration = exp;
	snprintf(c->source, sizeof(c->source), "%s", source);
	if (!c->access_key_id || !c->secret_access_key || (token && *token && !c->session_token)) {
		creds_clear(c);
		return -1;
	}
	return 0;
}

/* ---- provider ---- */

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

struct creds_provider *creds_provider_new(const struct creds_options *opt)
{
	struct creds_provider *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	p->refresh_ahead_s = CREDS_REFRESH_AHEAD_S;
	p->timeout_ms = 5000;
	if (opt) {
		p->profile_opt = dup_or_null(opt->profile);
		p->region_opt = dup_or_null(opt->region);
		p->ca_bundle = dup_or_null(opt->ca_bundle);
		if (opt->refresh_ahead_s > 0)
			p->refresh_ahead_s = opt->refresh_ahead_s;
		if (opt->timeout_ms > 0)
			p->timeout_ms = opt->timeout_ms;
		if ((opt->profile && *opt->profile && !p->profile_opt) ||
		    (opt->region && *opt->region && !p->region_opt) ||
		    (opt->ca_bundle && *opt->ca_bundle && !p->ca_bundle)) {
			creds_provider_free(p);
			return NULL;
		}
	}
	return p;
}

struct creds_provider *creds_provider_new_static(const char *access_key_id,
                                                 const char *secret_access_key,
                                                 const char *session_token)
{
	struct creds_provider *p;

	if (!access_key_id || !secret_access_key)
		return NULL;
	p = creds_provider_new(NULL);
	if (!p)
		return NULL;
	p->is_static = true;
	if (creds_set(&p->cached, access_key_id, secret_access_key, session_token, 0, "static")) {
		creds_provider_free(p);
		return NULL;
	}
	p->have = true;
	return p;
}

void creds_provider_free(struct creds_provider *p)
{
	if (!p)
		return;
	xfer_engine_free(p->xfer_own);
	creds_clear(&p->cached);
	util_free_secret(p->imds_token);
	free(p->profile_opt);
	free(p->region_opt);
	free(p->ca_bundle);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* ---- sources: each returns 1 found, 0 not configured, -1 error ---- */

static int from_env(struct creds *out, struct creds_error *err)
{
	const char *akid = getenv("AWS_ACCESS_KEY_ID");
	const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
	const char *token = getenv("AWS_SESSION_TOKEN");

	if (!(akid && *akid) && !(secret && *secret))
		return 0;
	if (!(akid && *akid) || !(secret && *secret)) {
		creds_set_err(err, CREDS_ERR_CONFIG,
		              "%s is set but %s is not: set both, or unset both to use a profile",
		              akid && *akid ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
		              akid && *akid ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return -1;
	}
	if (creds_set(out, akid, secret, token, 0, "env")) {
		creds_set_err(err, CREDS_ERR_NOMEM, "out of memory");
		return -1;
	}
	return 1;
}

/* ---- region ---- */

static const char *effective_profile(const struct creds_provider *p, bool *explicit_)
{
	const char *env = getenv("AWS_PROFILE");

	*explicit_ = true;
	if (p->profile_opt)
		return p->profile_opt;
	if (env && *env)
		return env;
	*explicit_ = false;
	return "default";
}

static void region_locked(struct creds_provider *p)
{
	const char *r, *from;
	char *prof = NULL, *imds = NULL;
	struct creds_error err;
	bool expl;

	if (p->have_region)
		return;
	if ((r = p->region_opt))
		from = "--region";
	else if ((r = getenv("AWS_REGION")) && *r)
		from = "AWS_REGION";
	else if ((r = getenv("AWS_DEFAULT_REGION")) && *r)
		from = "AWS_DEFAULT_REGION";
	else
		r = NULL;
	if (!r) {
		prof = creds_profile_get(effective_profile(p, &expl), "region");
		r = prof;
		from = "profile";
	}
	if (!r && !creds_imds_disabled() && !p->is_static) {
		if (creds_imds_get_locked(p, "/latest/meta-data/placement/region", &imds, &err) ==
		    0) {
			r = creds_trim(imds);
			from = "IMDS";
		} else {
			log_debug("credentials: no region from IMDS: %s", err.message);
		}
	}
	if (!r || !*r) {
		r = "us-east-1";
		from = "default";
	}
	snprintf(p->region, sizeof(p->region), "%s", r);
	p->have_region = true;
	log_debug("credentials: region %s (from %s)", p->region, from);
	free(prof);
	free(imds);
}

int creds_region(struct creds_provider *p, char *out, size_t len)
{
	pthread_mutex_lock(&p->lock);
	region_locked(p);
	snprintf(out, len, "%s", p->region);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/* ---- roles through STS ---- */

static int sts_to_creds_err(const struct sts_error *se, const char *what, struct creds_error *err)
{
	char buf[480];
	enum creds_err e = se->err == STS_ERR_NETWORK    ? CREDS_ERR_NETWORK
	                   : se->err == STS_ERR_REMOTE   ? CREDS_ERR_REMOTE
	                   : se->err == STS_ERR_PROTOCOL ? CREDS_ERR_PROTOCOL
	                   : se->err == STS_ERR_NOMEM    ? CREDS_ERR_NOMEM
	                                                 : CREDS_ERR_CONFIG;

	creds_set_err(err, e, "%s: %s", what, sts_error_format(se, buf, sizeof(buf)));
	return -1;
}

static int sts_config_locked(struct creds_provider *p, struct sts_config *cfg,
                             struct creds_error *err)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->xfer = creds_engine_locked(p, err);
	if (!cfg->xfer)
		return -1;
	region_locked(p);
	cfg->region = p->region;
	cfg->timeout_ms = p->timeout_ms;
	return 0;
}

static int web_identity_locked(struct creds_provider *p, const char *token_file,
                               const char *role_arn, const char *session, const char *from,
                               struct creds *out, struct creds_error *err)
{
	struct sts_assume_params ap = {.role_arn = role_arn, .session_name = session};
	struct sts_config cfg;
	struct sts_error se;
	char *path = creds_expand_home(token_file), *token = NULL;
	int rc = -1;

	if (!path) {
		creds_set_err(err, CREDS_ERR_NOMEM, "out of memory");
		return -1;
	}
	/* re-read on every renewal: the token file is rotated by the platform */
	token = util_read_file(path, CREDS_MAX_FILE);
	if (!token) {
		creds_set_err(err, CREDS_ERR_CONFIG,
		              "cannot read the web identity token file %s (%s): %s", path, from,
		              strerror(errno));
		goto out;
	}
	ap.web_identity_token = creds_trim(token);
	if (sts_config_locked(p, &cfg, err))
		goto out;
	if (sts_assume_role_with_web_identity(&cfg, &ap, out, &se)) {
		sts_to_creds_err(&se, "AssumeRoleWithWebIdentity failed", err);
		goto out;
	}
	snprintf(out->source, sizeof(out->source), "web-identity");
	rc = 1;
out:
	util_free_secret(token);
	free(path);
	return rc;
}

static int from_web_identity_env_locked(struct creds_provider *p, struct creds *out,
                                        struct creds_error *err)
{
	const char *file = getenv("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *role = getenv("AWS_ROLE_ARN");

	if (!(file && *file) && !(role && *role))
		return 0;
	if (!(file && *file) || !(role && *role)) {
		/* one without the other: the SDKs ignore it, but say why nothing happened */
		log_warn("credentials: %s is set without %s: web identity skipped",
		         file && *file ? "AWS_WEB_IDENTITY_TOKEN_FILE" : "AWS_ROLE_ARN",
		         file && *file ? "AWS_ROLE_ARN" : "AWS_WEB_IDENTITY_TOKEN_FILE");
		return 0;
	}
	return web_identity_locked(p, file, role, getenv("AWS_ROLE_SESSION_NAME"),
	                           "AWS_WEB_IDENTITY_TOKEN_FILE", out, err);
}

static int resolve_profile_role_locked(struct creds_provider *p, const char *profile, int depth,
                                       struct creds *out, struct creds_error *err);

/* The credentials a role profile starts from (source_profile / credential_source). */
static int role_base_creds_locked(struct creds_provider *p, const char *profile, int depth,
                                  struct creds *base, struct creds_error *err)
{
	char *src = creds_profile_get(profile, "source_profile");
	char *cs = creds_profile_get(profile, "credential_source");
	char *src_role = NULL;
	int rc = -1;

	if (src && cs) {
		creds_set_err(
		    err, CREDS_ERR_CONFIG,
		    "profile '%s' has both source_profile and credential_source: keep one",
		    profile);
		goto out;
	}
	if (src) {
		if (strcmp(src, profile) && !creds_profile_exists(src)) {
			creds_set_err(
			    err, CREDS_ERR_CONFIG,
			    "profile '%s' names source_profile '%s', which does not exist", profile,
			    src);
			goto out;
		}
		src_role = strcmp(src, profile) ? creds_profile_get(src, "role_arn") : NULL;
		if (src_role) {
			if (depth + 1 >= CREDS_MAX_ROLE_CHAIN) {
				creds_set_err(
				    err, CREDS_ERR_CONFIG,
				    "role chain from profile '%s' is longer than %d or circular",
				    profile, CREDS_MAX_ROLE_CHAIN);
				goto out;
			}
			rc = resolve_profile_role_locked(p, src, depth + 1, base, err);
		} else {
			rc = creds_from_profile_keys(src, base, err);
			if (rc == 0)
				creds_set_err(err, CREDS_ERR_CONFIG,
				              "source_profile '%s' of profile '%s' has no "
				              "aws_access_key_id/aws_secret_access_key",
				              src, profile);
		}
	} else if (cs) {
		if (!strcmp(cs, "Environment"))
			rc = from_env(base, err);
		else if (!strcmp(cs, "Ec2InstanceMetadata"))
			rc = creds_from_imds_locked(p, base, err);
		else if (!strcmp(cs, "EcsContainer"))
			rc = creds_from_container_locked(p, base, err);
		else {
			creds_set_err(
			    err, CREDS_ERR_CONFIG,
			    "profile '%s': credential_source '%s' is not one of Environment, "
			    "Ec2InstanceMetadata, EcsContainer",
			    profile, cs);
			goto out;
		}
		if (rc == 0)
			creds_set_err(err, CREDS_ERR_CONFIG,
			              "profile '%s': credential_source %s found no credentials",
			              profile, cs);
	} else {
		creds_set_err(err, CREDS_ERR_CONFIG,
		              "profile '%s' has role_arn but neither source_profile nor "
		              "credential_source nor web_identity_token_file: add one",
		              profile);
	}
out:
	free(src);
	free(cs);
	free(src_role);
	return rc == 1 ? 1 : -1;
}

static int resolve_profile_role_locked(struct creds_provider *p, const char *profile, int depth,
                                       struct creds *out, struct creds_error *err)
{
	char *role = creds_profile_get(profile, "role_arn");
	char *session = creds_profile_get(profile, "role_session_name");
	char *ext = creds_profile_get(profile, "external_id");
	char *dur = creds_profile_get(profile, "duration_seconds");
	char *wif = creds_profile_get(profile, "web_identity_token_file");
	struct creds base = {0};
	struct sts_config cfg;
	struct sts_error se;
	struct sts_assume_params ap = {
	    .role_arn = role, .session_name = session, .external_id = ext};
	char what[160];
	int rc = -1;

	if (!role) {
		rc = 0;
		goto out;
	}
	if (wif) {
		rc =
		    web_identity_locked(p, wif, role, session, "web_identity_token_file", out, err);
		goto out;
	}
	if (dur) {
		char *end;
		long d = strtol(dur, &end, 10);
		if (*end || d < 900 || d > 43200) {
			creds_set_err(err, CREDS_ERR_CONFIG,
			              "profile '%s': duration_seconds '%s' must be 900..43200",
			              profile, dur);
			goto out;
		}
		ap.duration_s = (int)d;
	}
	if (role_base_creds_locked(p, profile, depth, &base, err) != 1)
		goto out;
	if (sts_config_locked(p, &cfg, err))
		goto out;
	log_debug("credentials: profile %s assumes %s with key %s (%s)", profile, role,
	          base.access_key_id, base.source);
	snprintf(what, sizeof(what), "AssumeRole %s for profile '%s' failed", role, profile);
	if (sts_assume_role(&cfg, &base, &ap, out, &se)) {
		sts_to_creds_err(&se, what, err);
		goto out;
	}
	snprintf(out->source, sizeof(out->source), "assume-role");
	rc = 1;
out:
	creds_clear(&base);
	free(role);
	free(session);
	free(ext);
	free(dur);
	free(wif);
	return rc;
}

/* ---- the chain ---- */

static int resolve_locked(struct creds_provider *p, struct creds *out, struct creds_error *err)
{
	bool expl;
	const char *profile = effective_profile(p, &expl);
	char *cpath = NULL, *kpath = NULL;
	struct creds_error imds_err = {0};
	int rc;

	/* an explicit --profile wins over the environment's keys, as in the AWS CLI */
	if (!p->profile_opt && (rc = from_env(out, err)))
		return rc;
	if (expl && !creds_profile_exists(profile)) {
		cpath = creds_config_path(true);
		kpath = creds_config_path(false);
		creds_set_err(
		    err, CREDS_ERR_CONFIG,
		    "profile '%s' (from %s) is in neither %s nor %s: check the name or the "
		    "files",
		    profile, p->profile_opt ? "--profile" : "AWS_PROFILE", cpath ? cpath : "?",
		    kpath ? kpath : "?");
		free(cpath);
		free(kpath);
		return -1;
	}
	if ((rc = resolve_profile_role_locked(p, profile, 0, out, err)))
		return rc;
	if ((rc = from_web_identity_env_locked(p, out, err)))
		return rc;
	if ((rc = creds_from_profile_keys(profile, out, err)))
		return rc;
	if ((rc = creds_from_container_locked(p, out, err)))
		return rc;
	rc = creds_from_imds_locked(p, out, &imds_err);
	if (rc == 1)
		return 1;
	if (rc < 0 && imds_err.err == CREDS_ERR_NOMEM) {
		*err = imds_err;
		return -1;
	}
	creds_set_err(
	    err, CREDS_ERR_NOT_FOUND,
	    "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
	    "a profile (AWS_PROFILE / --profile) in ~/.aws/credentials or ~/.aws/config, or "
	    "run with a role (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, container "
	    "credentials, EC2 instance profile). EC2 metadata: %.200s",
	    rc < 0 ? imds_err.message : "disabled by AWS_EC2_METADATA_DISABLED");
	return -1;
}

static bool fresh_locked(const struct creds_provider *p, time_t now)
{
	if (!p->have)
		return false;
	if (p->cached.expiration == 0 || now + p->refresh_ahead_s < p->cached.expiration)
		return true;
	/* inside the renewal window, but a renewal just failed: keep what is valid */
	return now < p->renew_retry_at && now < p->cached.expiration;
}

int creds_get(struct creds_provider *p, struct creds *out, struct creds_error *err)
{
	struct creds found = {0};
	struct creds_error e = {0};
	time_t now = time(NULL);
	int rc = -1;

	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	pthread_mutex_lock(&p->lock);
	if (p->is_static || fresh_locked(p, now))
		goto copy;
	if (resolve_locked(p, &found, &e) == 1) {
		creds_clear(&p->cached);
		p->cached = found;
		p->have = true;
		p->renew_retry_at = 0;
		if (found.expiration)
			log_info("credentials: key %s from %s, expires in %llds",
			         found.access_key_id, found.source,
			         (long long)(found.expiration - now));
		else
			log_info("credentials: key %s from %s", found.access_key_id, found.source);
		goto copy;
	}
	if (p->have && p->cached.expiration > now) {
		p->renew_retry_at = now + CREDS_RENEW_RETRY_S;
		log_warn("credentials: renewal failed (%s); key %s stays valid for %llds, next "
		         "try in %ds",
		         e.message, p->cached.access_key_id,
		         (long long)(p->cached.expiration - now), CREDS_RENEW_RETRY_S);
		goto copy;
	}
	*err = e;
	goto out;
copy:
	if (creds_copy(out, &p->cached)) {
		creds_set_err(err, CREDS_ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void creds_invalidate(struct creds_provider *p)
{
	pthread_mutex_lock(&p->lock);
	if (!p->is_static) {
		creds_clear(&p->cached);
		p->have = false;
		p->renew_retry_at = 0;
	}
	pthread_mutex_unlock(&p->lock);
}
