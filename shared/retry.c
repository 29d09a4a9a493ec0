/* SPDX-License-Identifier: Apache-2.0 */
/*
 * retry: the retry policy (see retry.h): defaults, the AWS environment
 * variables, and the backoff arithmetic.
 */
#include "retry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void retry_policy_defaults(struct retry_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->budget_ms = RETRY_DEFAULT_BUDGET_MS;
	p->base_ms = RETRY_DEFAULT_BASE_MS;
	p->max_delay_ms = RETRY_DEFAULT_MAX_DELAY;
	p->mode = RETRY_STANDARD;
}

const char *retry_mode_name(enum retry_mode m)
{
	switch (m) {
	case RETRY_STANDARD:
		return "standard";
	case RETRY_ADAPTIVE:
		return "adaptive";
	case RETRY_LEGACY:
		return "legacy";
	}
	return "standard";
}

int retry_policy_from_env(struct retry_policy *p, char *why, size_t why_len)
{
	const char *a = getenv("AWS_MAX_ATTEMPTS"), *m = getenv("AWS_RETRY_MODE");
	int rc = 0;

	if (a && *a) {
		char *end;
		long v;

		errno = 0;
		v = strtol(a, &end, 10);
		if (errno || end == a || *end || v < 1 || v > RETRY_MAX_ATTEMPTS_LIMIT) {
			snprintf(why, why_len,
			         "AWS_MAX_ATTEMPTS=%.32s is not a number of attempts (1..%d)", a,
			         RETRY_MAX_ATTEMPTS_LIMIT);
			rc = -1;
		} else {
			p->max_attempts = (int)v;
		}
	}
	if (m && *m) {
		if (!strcasecmp(m, "standard"))
			p->mode = RETRY_STANDARD;
		else if (!strcasecmp(m, "adaptive"))
			p->mode = RETRY_ADAPTIVE;
		else if (!strcasecmp(m, "legacy"))
			p->mode = RETRY_LEGACY;
		else if (rc == 0) {
			snprintf(why, why_len,
			         "AWS_RETRY_MODE=%.32s is not standard, adaptive or legacy", m);
			rc = -1;
		}
	}
	return rc;
}

long retry_delay_ms(const struct retry_policy *p, int attempts, long elapsed_ms, uint64_t rnd)
{
	long budget = p->budget_ms > 0 ? p->budget_ms : RETRY_DEFAULT_BUDGET_MS;
	long base = p->base_ms > 0 ? p->base_ms : RETRY_DEFAULT_BASE_MS;
	long cap = p->max_delay_ms > 0 ? p->max_delay_ms : RETRY_DEFAULT_MAX_DELAY;
	long ceil = base, delay;

	if (attempts < 1)
		attempts = 1;
	if (p->max_attempts > 0 && attempts >= p->max_attempts)
		return -1;
	if (cap < base)
		cap = base;
	for (int i = 1; i < attempts && ceil < cap; i++)
		ceil *= 2;
	if (ceil > cap)
		ceil = cap;
	/* Full jitter: uniform in [0, ceil]; clients that failed together spread out. */
	delay = (long)(rnd % (uint64_t)(ceil + 1));
	if (elapsed_ms < 0)
		elapsed_ms = 0;
	if (elapsed_ms >= budget)
		return -1;
	/* The last wait ends at the budget, so one more attempt still fits in it. */
	if (elapsed_ms + delay > budget)
		delay = budget - elapsed_ms;
	return delay;
}
