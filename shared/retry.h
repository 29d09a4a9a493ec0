/* SPDX-License-Identifier: Apache-2.0 */
/*
 * retry: the one retry policy of every request hpcops sends, blocking or
 * not (the transfer engine applies it; nothing above it loops on its own).
 * Transient failures (refused or reset connections, timeouts, 5xx,
 * throttling, replies that cannot be trusted) are tried again with capped
 * exponential backoff and full jitter for a time budget that rides out a
 * short outage, optionally bounded in attempts as AWS_MAX_ATTEMPTS says.
 * Pure functions and a small struct: unit-tested without a network.
 */
#ifndef HPCOPS_RETRY_H
#define HPCOPS_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** AWS_RETRY_MODE: what the SDKs call the retry strategies. */
enum retry_mode {
	RETRY_STANDARD = 0, /* backoff with jitter (the default) */
	RETRY_ADAPTIVE,     /* standard, and throttling replies slow new requests down too */
	RETRY_LEGACY,       /* accepted for compatibility; behaves as standard */
};

/** Defaults: a 60 s outage is ridden out with room to spare. */
#define RETRY_DEFAULT_BUDGET_MS  120000L
#define RETRY_DEFAULT_BASE_MS    100L
#define RETRY_DEFAULT_MAX_DELAY  8000L /* cap of one wait: back within 8 s of the server */
#define RETRY_MAX_ATTEMPTS_LIMIT 1000  /* bound of AWS_MAX_ATTEMPTS */

/** How requests are retried. Zero in a field means the default. */
struct retry_policy {
	long budget_ms;    /* from the first attempt's start; past it no new attempt */
	int max_attempts;  /* attempts including the first; 0 = only the budget bounds them */
	long base_ms;      /* the first retry waits random(0, base) */
	long max_delay_ms; /* cap of a single wait */
	enum retry_mode mode;
};

/** retry_policy_defaults() - fill @p with the defaults (120 s, no attempt bound). */
void retry_policy_defaults(struct retry_policy *p);

/**
 * retry_policy_from_env() - apply AWS_MAX_ATTEMPTS and AWS_RETRY_MODE, as
 * the AWS SDKs and mount-s3 read them, to @p. A value that is not valid is
 * reported in @why (@why_len bytes) and -1 returned, @p unchanged for it.
 * Returns 0 otherwise.
 */
int retry_policy_from_env(struct retry_policy *p, char *why, size_t why_len);

/** retry_mode_name() - "standard", "adaptive" or "legacy". */
const char *retry_mode_name(enum retry_mode m);

/**
 * retry_delay_ms() - how long to wait before attempt @attempts + 1, after
 * @attempts attempts made over @elapsed_ms since the first began; @rnd is a
 * uniformly random 64-bit number (full jitter). Returns the wait (>= 0), or
 * -1 when the policy says stop (attempts or budget spent: the next attempt
 * would begin past the budget).
 */
long retry_delay_ms(const struct retry_policy *p, int attempts, long elapsed_ms, uint64_t rnd);

#endif
