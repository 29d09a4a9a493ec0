/* SPDX-License-Identifier: Apache-2.0 */
/*
 * budget: a counter of reserved bytes under one mutex, with a condition
 * variable for the blocking reserve of the write side. See budget.h.
 */
#include "budget.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "util.h"

struct budget {
	pthread_mutex_t lock;
	pthread_cond_t freed;
	/* under lock */
	uint64_t limit;
	uint64_t used;
};

struct budget *budget_new(uint64_t limit)
{
	struct budget *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	pthread_mutex_init(&b->lock, NULL);
	{
		/* waits are on the monotonic clock (util_mono_in): a clock step is no timeout */
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&b->freed, &ca);
		pthread_condattr_destroy(&ca);
	}
	b->limit = limit;
	return b;
}

void budget_free(struct budget *b)
{
	if (!b)
		return;
	pthread_cond_destroy(&b->freed);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

bool budget_try_reserve(struct budget *b, size_t n)
{
	bool ok = false;

	pthread_mutex_lock(&b->lock);
	if (b->used + n <= b->limit) {
		b->used += n;
		ok = true;
	}
	pthread_mutex_unlock(&b->lock);
	return ok;
}

int budget_reserve(struct budget *b, size_t n)
{
	pthread_mutex_lock(&b->lock);
	/* A request above the whole limit waits for an empty budget, then goes. */
	while (b->used > 0 && b->used + n > b->limit)
		pthread_cond_wait(&b->freed, &b->lock);
	b->used += n;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

bool budget_reserve_wait(struct budget *b, size_t n, long timeout_ms)
{
	struct timespec until = util_mono_in(timeout_ms);
	bool ok = false;

	pthread_mutex_lock(&b->lock);
	for (;;) {
		if (b->used + n <= b->limit) {
			b->used += n;
			ok = true;
			break;
		}
		if (pthread_cond_timedwait(&b->freed, &b->lock, &until) != 0)
			break;
	}
	pthread_mutex_unlock(&b->lock);
	return ok;
}

void budget_release(struct budget *b, size_t n)
{
	pthread_mutex_lock(&b->lock);
	b->used = n > b->used ? 0 : b->used - n;
	pthread_cond_broadcast(&b->freed);
	pthread_mutex_unlock(&b->lock);
}

uint64_t budget_used(struct budget *b)
{
	uint64_t u;

	pthread_mutex_lock(&b->lock);
	u = b->used;
	pthread_mutex_unlock(&b->lock);
	return u;
}

uint64_t budget_limit(struct budget *b)
{
	return b->limit;
}
