/* SPDX-License-Identifier: Apache-2.0 */
/*
 * creds: AWS credentials and region, found in the order the AWS SDKs use
 * (environment, shared config/credentials files and profiles, role
 * assumption through STS, web identity, container credentials, EC2 IMDSv2).
 * A provider caches what it found and refreshes temporary credentials ahead
 * of expiry; it is thread-safe and hands each caller its own copy (a
 * struct creds, creds_value.h).
 * Secrets (secret key, session token) never reach the log: only key ids do.
 */
#ifndef HPCOPS_CREDS_H
#define HPCOPS_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "creds_value.h"

struct xfer_engine;
struct creds_provider;

/** Errors of this layer. */
enum creds_err {
	CREDS_OK = 0,
	CREDS_ERR_NOT_FOUND, /* nothing in the chain had credentials */
	CREDS_ERR_CONFIG,    /* a profile, file or variable is wrong (message says which) */
	CREDS_ERR_NETWORK,   /* IMDS / container endpoint / STS unreachable */
	CREDS_ERR_REMOTE,    /* the service answered with an error (STS ErrorResponse, 4xx) */
	CREDS_ERR_PROTOCOL,  /* an answer we could not parse */
	CREDS_ERR_NOMEM,
};

/** A credentials failure, fixed-size so it can live on the stack. */
struct creds_error {
	enum creds_err err;
	char message[512]; /* what was wrong and what to do; never a secret */
};

/** creds_strerror() - a short English text for @err (static storage). */
const char *creds_strerror(enum creds_err err);

/** Default seconds before expiry at which temporary credentials are renewed. */
#define CREDS_REFRESH_AHEAD_S 300
/* A set is used at least this long before a caller-chosen window renews it. */
#define CREDS_MIN_RENEW_GAP_S 5

struct creds_options {
	/* Explicit profile (--profile); NULL = AWS_PROFILE, else "default". */
	const char *profile;
	/* Explicit region (--region); NULL = AWS_REGION, AWS_DEFAULT_REGION, profile, IMDS,
	 * us-east-1. */
	const char *region;
	/*
	 * Not used (kept so existing callers compile): the provider always runs
	 * its IMDS / container / STS requests on a small private engine that it
	 * starts on first need. Sharing the caller's engine would deadlock a
	 * renewal started from that engine's own sign callback, which is where
	 * the S3 and CloudFormation clients call creds_get().
	 */
	struct xfer_engine *xfer;
	/* CA bundle for HTTPS to STS (NULL = system default). */
	const char *ca_bundle;
	/*
	 * Renew this many seconds before expiry; 0 = CREDS_REFRESH_AHEAD_S,
	 * then at most half a set's life. A value given here is kept up to the
	 * set's life less CREDS_MIN_RENEW_GAP_S.
	 */
	int refresh_ahead_s;
	/* Timeout of one metadata/STS request in ms; 0 = 5000 (IMDS connects time out after 1 s).
	 */
	int timeout_ms;
};

/**
 * creds_provider_new() - a provider walking the default chain.
 * Reads nothing yet: the chain is resolved on the first creds_get().
 * @opt may be NULL (all defaults); its strings are copied.
 * Returns NULL only on allocation failure. Free with creds_provider_free().
 */
struct creds_provider *creds_provider_new(const struct creds_options *opt);

/**
 * creds_provider_new_static() - a provider that always returns these
 * credentials (copied; @session_token may be NULL). For tests and for
 * keys given explicitly. Returns NULL on allocation failure.
 */
struct creds_provider *creds_provider_new_static(const char *access_key_id,
                                                 const char *secret_access_key,
                                                 const char *session_token);

/** creds_provider_free() - free @p (NULL is fine); wipes cached secrets. */
void creds_provider_free(struct creds_provider *p);

/**
 * creds_get() - current credentials. While a valid set is cached this is a
 * copy under a short lock, whatever a renewal is doing: temporary keys are
 * renewed by a background thread ahead of expiry (the refresh window, at
 * most half their life), so signers never wait on IMDS, a container
 * endpoint or STS. Only when nothing valid is cached (the first call,
 * after creds_invalidate(), or keys that ran out because renewal kept
 * failing) does the call resolve the chain itself; concurrent callers then
 * wait for that one resolution.
 * @out: receives a copy the caller owns: creds_clear() it when done.
 * Returns 0, or -1 with @err filled (on failure @out holds nothing).
 */
int creds_get(struct creds_provider *p, struct creds *out, struct creds_error *err);

/**
 * creds_invalidate() - forget the cached credentials so the next
 * creds_get() resolves again (e.g. after ExpiredToken from a server).
 */
void creds_invalidate(struct creds_provider *p);

/**
 * creds_region() - the region: explicit option, AWS_REGION,
 * AWS_DEFAULT_REGION, the profile's "region", IMDS placement (unless
 * AWS_EC2_METADATA_DISABLED=true), else "us-east-1". Cached after the first
 * call. Copies it into @out (NUL-terminated, truncated to @len).
 * Returns 0 (a region is always found).
 */
int creds_region(struct creds_provider *p, char *out, size_t len);

/* ---- shared config/credentials files (exposed for tests and tools) ---- */

/**
 * creds_profile_get() - the value of @key in profile @profile, looking in
 * the credentials file then the config file ("[profile NAME]" there,
 * "[default]" in both). Paths: AWS_SHARED_CREDENTIALS_FILE (default
 * ~/.aws/credentials), AWS_CONFIG_FILE (default ~/.aws/config).
 * Returns a heap string the caller frees, or NULL if not set anywhere.
 */
char *creds_profile_get(const char *profile, const char *key);

/**
 * creds_ini_get() - the value of @key in section @section of the INI-style
 * file @path (AWS rules: '#' and ';' comments, "key = value", keys case-
 * sensitive, nested sub-sections skipped). Returns a heap string the caller
 * frees, or NULL if the file, section or key is missing.
 */
char *creds_ini_get(const char *path, const char *section, const char *key);

#endif
