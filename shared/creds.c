/* SPDX-License-Identifier: Apache-2.0 */
/*
 * creds: the credentials provider: a cache in front of a source (the
 * SDK-order chain resolved here, or fixed keys), a background renewer that
 * replaces temporary keys ahead of their expiry, and region resolution.
 * Signing takes a copy of the cached set and never waits on the network
 * while valid keys exist. The chain's sources live in creds_files.c
 * (profiles), creds_metadata.c (IMDS, container endpoint) and sts.c
 * (roles); none of them calls back into this file.
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

/* ---- provider ---- */

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

static int resolve_chain_locked(struct creds_provider *p, struct creds *out,
                                struct creds_error *err);

/* The SDK-order chain (see resolve_chain_locked()). */
static const struct creds_source chain_source = {"chain", resolve_chain_locked};

struct creds_provider *creds_provider_new_source(const struct creds_options *opt,
                                                 const struct creds_source *src)
{
	struct creds_provider *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->cache_lock, NULL);
	pthread_cond_init(&p->cache_cond, NULL);
	p->source = src;
	p->refresh_ahead_s = CREDS_REFRESH_AHEAD_S;
	p->timeout_ms = 5000;
	if (opt) {
		p->profile_opt = dup_or_null(opt->profile);
		p->region_opt = dup_or_null(opt->region);
		p->ca_bundle = dup_or_null(opt->ca_bundle);
		if (opt->refresh_ahead_s > 0) {
			p->refresh_ahead_s = opt->refresh_ahead_s;
			p->refresh_ahead_set = true;
		}
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

struct creds_provider *creds_provider_new(const struct creds_options *opt)
{
	return creds_provider_new_source(opt, &chain_source);
}

struct creds_provider *creds_provider_new_static(const char *access_key_id,
                                                 const char *secret_access_key,
                                                 const char *session_token)
{
	struct creds_provider *p;

	if (!access_key_id || !secret_access_key)
		return NULL;
	p = creds_provider_new_source(NULL, NULL);
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
	pthread_mutex_lock(&p->cache_lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->cache_cond);
	pthread_mutex_unlock(&p->cache_lock);
	if (p->renewer_started)
		pthread_join(p->renewer, NULL);
	xfer_engine_free(p->xfer_own);
	creds_clear(&p->cached);
	util_free_secret(p->imds_token);
	free(p->profile_opt);
	free(p->region_opt);
	free(p->ca_bundle);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->cache_lock);
	pthread_cond_destroy(&p->cache_cond);
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
	const char *r = NULL, *from = NULL;
	const char *env = getenv("AWS_REGION"), *env_default = getenv("AWS_DEFAULT_REGION");
	char *prof = NULL, *imds = NULL;
	struct creds_error err;
	bool expl;

	if (p->have_region)
		return;
	if (p->region_opt) {
		r = p->region_opt;
		from = "--region";
	} else if (env && *env) {
		r = env;
		from = "AWS_REGION";
	} else if (env_default && *env_default) {
		r = env_default;
		from = "AWS_DEFAULT_REGION";
	}
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
	size_t token_len = 0;
	int rc = -1;

	if (!path) {
		creds_set_err(err, CREDS_ERR_NOMEM, "out of memory");
		return -1;
	}
	/* re-read on every renewal: the token file is rotated by the platform */
	token = util_read_secret_file(path, CREDS_MAX_FILE, &token_len);
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
	util_free_secret_len(token, token_len);
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

static int resolve_chain_locked(struct creds_provider *p, struct creds *out,
                                struct creds_error *err)
{
	bool expl;
	const char *profile = effective_profile(p, &expl);
	char *cpath = NULL, *kpath = NULL;
	struct creds_error imds_err = {0};
	int rc;

	/* an explicit --profile wins over the environment's keys, as in the AWS CLI */
	if (!p->profile_opt) {
		rc = from_env(out, err);
		if (rc)
			return rc;
	}
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
	rc = resolve_profile_role_locked(p, profile, 0, out, err);
	if (rc)
		return rc;
	rc = from_web_identity_env_locked(p, out, err);
	if (rc)
		return rc;
	rc = creds_from_profile_keys(profile, out, err);
	if (rc)
		return rc;
	rc = creds_from_container_locked(p, out, err);
	if (rc)
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

/* ---- the cache and its renewal ---- */

/*
 * How long before expiry a set is renewed: the refresh window, but at most
 * half of the set's life (the default window) or all of it but a few
 * seconds (a window the caller chose), so short-lived sets are not renewed
 * in a loop.
 */
static time_t renew_at_locked(const struct creds_provider *p)
{
	time_t exp = p->cached.expiration, life = exp - p->installed;
	time_t ahead = p->refresh_ahead_s;
	time_t most = p->refresh_ahead_set ? life - CREDS_MIN_RENEW_GAP_S : life / 2;

	if (life > 0 && ahead > most)
		ahead = most > 0 ? most : 0;
	if (p->renew_retry_at && p->renew_retry_at > exp - ahead)
		return p->renew_retry_at;
	return exp - ahead;
}

/*
 * Whether the cached set may still sign: not expired, with a margin (a
 * tenth of its life, at most 10 s) so a request does not reach the server
 * with keys that run out on the way.
 */
static bool usable_locked(const struct creds_provider *p, time_t now)
{
	time_t life, margin;

	if (!p->have)
		return false;
	if (p->cached.expiration == 0)
		return true;
	life = p->cached.expiration - p->installed;
	margin = life > 0 && life / 10 < 10 ? life / 10 : 10;
	return now < p->cached.expiration - margin;
}

/* One resolution through the source, under the resolve lock (may do HTTP). */
static int resolve_now(struct creds_provider *p, struct creds *out, struct creds_error *err)
{
	int rc;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&p->lock);
	rc = p->source->resolve(p, out, err);
	pthread_mutex_unlock(&p->lock);
	if (rc == 0) {
		creds_set_err(err, CREDS_ERR_NOT_FOUND, "%s found no credentials", p->source->name);
		rc = -1;
	}
	return rc == 1 ? 0 : -1;
}

static void *renewer_main(void *arg);

/* Install @found (taken over) as the cached set; start the renewer for expiring sets. */
static void install_locked(struct creds_provider *p, struct creds *found, time_t now)
{
	creds_clear(&p->cached);
	p->cached = *found;
	memset(found, 0, sizeof(*found));
	p->have = true;
	p->installed = now;
	p->renew_retry_at = 0;
	if (p->cached.expiration)
		log_info("credentials: key %s from %s, expires in %llds", p->cached.access_key_id,
		         p->cached.source, (long long)(p->cached.expiration - now));
	else
		log_info("credentials: key %s from %s", p->cached.access_key_id, p->cached.source);
	if (p->cached.expiration && !p->renewer_started && !p->stopping) {
		if (pthread_create(&p->renewer, NULL, renewer_main, p) == 0)
			p->renewer_started = true;
		else
			log_warn(
			    "credentials: cannot start the renewal thread; temporary keys will "
			    "be renewed when they run out");
	}
	pthread_cond_broadcast(&p->cache_cond);
}

/*
 * The renewer: renews an expiring set ahead of its expiry, off every
 * request's path, so signing never waits on IMDS, a container endpoint or
 * STS while valid keys exist. A failed renewal keeps the valid set and is
 * tried again (every CREDS_RENEW_RETRY_S, more often near the end).
 */
static void *renewer_main(void *arg)
{
	struct creds_provider *p = arg;

	pthread_mutex_lock(&p->cache_lock);
	while (!p->stopping) {
		time_t now = time(NULL), at;
		struct creds found;
		struct creds_error e;
		int rc;

		if (!p->have || !p->cached.expiration || p->resolving) {
			pthread_cond_wait(&p->cache_cond, &p->cache_lock);
			continue;
		}
		at = renew_at_locked(p);
		if (now < at) {
			struct timespec ts = {.tv_sec = at, .tv_nsec = 0};

			pthread_cond_timedwait(&p->cache_cond, &p->cache_lock, &ts);
			continue;
		}
		p->resolving = true;
		pthread_mutex_unlock(&p->cache_lock);
		memset(&e, 0, sizeof(e));
		rc = resolve_now(p, &found, &e);
		pthread_mutex_lock(&p->cache_lock);
		p->resolving = false;
		now = time(NULL);
		if (rc == 0) {
			install_locked(p, &found, now);
			continue;
		}
		if (p->have && p->cached.expiration > now) {
			time_t left = p->cached.expiration - now;
			time_t wait =
			    left / 4 < CREDS_RENEW_RETRY_S ? left / 4 : CREDS_RENEW_RETRY_S;

			p->renew_retry_at = now + (wait > 1 ? wait : 1);
			log_warn(
			    "credentials: renewal failed (%s); key %s stays valid for %llds, next "
			    "try in %llds",
			    e.message, p->cached.access_key_id, (long long)left,
			    (long long)(p->renew_retry_at - now));
		} else {
			p->renew_retry_at = now + 1;
			log_err("credentials: renewal failed and the keys have expired: %s",
			        e.message);
		}
		pthread_cond_broadcast(&p->cache_cond);
	}
	pthread_mutex_unlock(&p->cache_lock);
	return NULL;
}

int creds_get(struct creds_provider *p, struct creds *out, struct creds_error *err)
{
	struct creds found = {0};
	struct creds_error e = {0};
	time_t now;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	pthread_mutex_lock(&p->cache_lock);
	for (;;) {
		now = time(NULL);
		/* the path of every signature: a copy of a valid set, never a wait */
		if (p->is_static || usable_locked(p, now))
			goto copy;
		if (!p->resolving)
			break;
		pthread_cond_wait(&p->cache_cond, &p->cache_lock);
	}
	/* Nothing valid: resolve now. A failure a moment ago is told as it was. */
	if (p->sync_fail_at && now - p->sync_fail_at < 1) {
		*err = p->sync_fail;
		goto out;
	}
	p->resolving = true;
	pthread_mutex_unlock(&p->cache_lock);
	rc = resolve_now(p, &found, &e);
	pthread_mutex_lock(&p->cache_lock);
	p->resolving = false;
	now = time(NULL);
	if (rc == 0) {
		p->sync_fail_at = 0;
		install_locked(p, &found, now);
		goto copy;
	}
	p->sync_fail_at = now;
	p->sync_fail = e;
	pthread_cond_broadcast(&p->cache_cond);
	*err = e;
	rc = -1;
	goto out;
copy:
	rc = 0;
	if (creds_copy(out, &p->cached)) {
		creds_set_err(err, CREDS_ERR_NOMEM, "out of memory");
		rc = -1;
	}
out:
	pthread_mutex_unlock(&p->cache_lock);
	return rc;
}

void creds_invalidate(struct creds_provider *p)
{
	pthread_mutex_lock(&p->cache_lock);
	if (!p->is_static) {
		creds_clear(&p->cached);
		p->have = false;
		p->renew_retry_at = 0;
		p->sync_fail_at = 0;
	}
	pthread_mutex_unlock(&p->cache_lock);
}
