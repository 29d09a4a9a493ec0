/* SPDX-License-Identifier: Apache-2.0 */
/*
 * options_env: the environment side of options.c (private to fs/options*.c).
 * Strings returned as char * are heap strings the caller frees; const char *
 * ones are static or point into the environment.
 */
#ifndef HPCOPS_FS_OPTIONS_ENV_H
#define HPCOPS_FS_OPTIONS_ENV_H

#include <stdbool.h>

#include "options.h"

/* exit statuses of fs_options_parse() */
#define FS_EXIT_USAGE   2 /* what mount-s3's parser (clap) refuses */
#define FS_EXIT_REFUSED 1 /* what mount-s3 refuses once parsed, before mounting */

/** fs_env_say() - "PROG: message" on stderr. */
void fs_env_say(const struct fs_options *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** fs_env_get() - getenv(), with "" as unset. */
const char *fs_env_get(const char *name);

/** fs_env_truthy() - "true" in any case. */
bool fs_env_truthy(const char *v);

/** fs_env_profile() - --profile, AWS_PROFILE or "default"; @source says which. */
const char *fs_env_profile(const struct fs_options *o, const char **source);

/**
 * fs_env_setting() - variable @var, else key @key of the profile (as the
 * SDKs read e.g. AWS_MAX_ATTEMPTS / max_attempts). Heap string or NULL;
 * @source: @var, "profile" or "default".
 */
char *fs_env_setting(const struct fs_options *o, const char *var, const char *key,
                     const char **source);

/**
 * fs_env_read() - fill what the environment adds to @o: AWS_CA_BUNDLE,
 * AWS_USE_DUALSTACK_ENDPOINT, AWS_MAX_ATTEMPTS, AWS_RETRY_MODE, and the log
 * level from --debug, --no-log and MOUNTPOINT_LOG. Returns 0 or an exit status.
 */
int fs_env_read(struct fs_options *o);

/**
 * fs_env_region() - the region without the network: --region, AWS_REGION,
 * AWS_DEFAULT_REGION, the profile, else us-east-1 (serve() also asks IMDS).
 * Heap string; @source says where it came from.
 */
char *fs_env_region(const struct fs_options *o, const char **source);

#endif
