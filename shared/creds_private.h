/* SPDX-License-Identifier: Apache-2.0 */
/*
 * creds_private: what creds.c, creds_files.c and creds_metadata.c share.
 * Not for use outside the creds module.
 */
#ifndef HPCOPS_CREDS_PRIVATE_H
#define HPCOPS_CREDS_PRIVATE_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "creds.h"

#define CREDS_MAX_FILE           (1u << 20)  /* config/credentials/token files */
#define CREDS_MAX_RESPONSE       (64u << 10) /* IMDS / container answers */
#define CREDS_MAX_ROLE_CHAIN     5           /* source_profile hops */
#define CREDS_RENEW_RETRY_S      30          /* after a failed renewal, wait this long */
#define IMDS_DEFAULT_ENDPOINT    "http://169.254.169.254"
#define IMDS_DEFAULT_ENDPOINT_V6 "http://[fd00:ec2::254]"
#define IMDS_TOKEN_TTL           "21600"
#define IMDS_CONNECT_TIMEOUT_MS  1000
#define CONTAINER_DEFAULT_HOST   "169.254.170.2"
/* Tests only: where AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is resolved instead of 169.254.170.2. */
#define CONTAINER_TEST_HOST_ENV "HPCOPS_TEST_CONTAINER_CREDENTIALS_HOST"

struct creds_provider;

/**
 * A source of credentials behind the provider's cache: the SDK-order
 * chain, or fixed keys. @resolve returns 1 (found: @out filled, caller
 * owns it), 0 (nothing there) or -1 (@err filled); it is called with the
 * provider's resolve lock held and may do HTTP.
 */
struct creds_source {
	const char *name;
	int (*resolve)(struct creds_provider *p, struct creds *out, struct creds_error *err);
};

struct creds_provider {
	/* Set at creation, read-only afterwards: no lock needed. */
	char *profile_opt; /* explicit profile, or NULL */
	char *region_opt;
	char *ca_bundle;
	int refresh_ahead_s;
	bool refresh_ahead_set; /* given by the caller: honoured up to a short gap */
	long timeout_ms;
	bool is_static;
	const struct creds_source *source;

	/*
	 * lock (the resolve lock): one resolution at a time, and what
	 * resolutions use. Held across HTTP (IMDS, container, STS): never
	 * taken by creds_get() while a valid set is cached.
	 */
	pthread_mutex_t lock;
	struct xfer_engine *xfer_own; /* made on first HTTP need */
	char region[64];
	bool have_region;
	char *imds_token; /* IMDSv2 session token (a secret), reused until imds_token_exp */
	time_t imds_token_exp;

	/* cache_lock: the cached set and the renewer. Never held across HTTP. */
	pthread_mutex_t cache_lock;
	pthread_cond_t cache_cond; /* a resolution ended; the renewer has something to do */
	struct creds cached;
	bool have;
	time_t installed;             /* when the cached set was obtained */
	time_t renew_retry_at;        /* after a failed background renewal: next try */
	bool resolving;               /* a resolution runs (sync or background) */
	time_t sync_fail_at;          /* the last synchronous resolution failed then ... */
	struct creds_error sync_fail; /* ... with this: told to callers for a second */
	bool renewer_started;
	bool stopping;
	pthread_t renewer;
};

/**
 * creds_provider_new_source() - a provider over @src (borrowed, static
 * storage) with the options of @opt: the test hook for sources that are
 * slow or fail on purpose. Returns NULL on allocation failure.
 */
struct creds_provider *creds_provider_new_source(const struct creds_options *opt,
                                                 const struct creds_source *src);

/* Fill @err (message: what was wrong and what to do; never a secret). */
void creds_set_err(struct creds_error *err, enum creds_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fill @c with copies of the strings. Returns 0 or -1 (ENOMEM, @c empty). */
int creds_set(struct creds *c, const char *akid, const char *secret, const char *token, time_t exp,
              const char *source);

/* Trim white space in place; returns the first non-space character. */
char *creds_trim(char *s);

/* "~/x" -> "$HOME/x" (heap; caller frees). */
char *creds_expand_home(const char *path);

/* The credentials (@credentials) or config file path (heap; caller frees). */
char *creds_config_path(bool credentials);

/* Whether [@profile] / [profile @profile] exists in either file. */
bool creds_profile_exists(const char *profile);

/*
 * Sources: each returns 1 (found, @out filled, caller owns it), 0 (not
 * configured: try the next) or -1 (@err filled: stop the chain).
 */
int creds_from_profile_keys(const char *profile, struct creds *out, struct creds_error *err);
int creds_from_container_locked(struct creds_provider *p, struct creds *out,
                                struct creds_error *err);
int creds_from_imds_locked(struct creds_provider *p, struct creds *out, struct creds_error *err);

/* True when AWS_EC2_METADATA_DISABLED=true. */
bool creds_imds_disabled(void);

/* IMDSv2 GET of @path (session token handled); body (heap) in *@out. Lock held. */
int creds_imds_get_locked(struct creds_provider *p, const char *path, char **out,
                          struct creds_error *err);

/* The provider's private transfer engine, started on first use. Lock held. */
struct xfer_engine *creds_engine_locked(struct creds_provider *p, struct creds_error *err);

#endif
