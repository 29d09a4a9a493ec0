/* SPDX-License-Identifier: Apache-2.0 */
/*
 * budget: the one memory budget (--memory-limit) for every buffer that grows
 * with the data in hpcops-mount: prefetch buffers (read side) and upload part
 * buffers (write side). A caller reserves bytes before it allocates them and
 * releases them after it frees them; the budget itself never allocates.
 */
#ifndef HPCOPS_BUDGET_H
#define HPCOPS_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct budget;

/**
 * budget_new() - a budget of @limit bytes. Returns NULL on allocation failure.
 * Free with budget_free() once every reservation was released.
 */
struct budget *budget_new(uint64_t limit);

/** budget_free() - free @b (NULL is fine). */
void budget_free(struct budget *b);

/**
 * budget_try_reserve() - take @n bytes if they are free right now.
 * Returns true when reserved (the caller must budget_release() them later),
 * false when the budget is short: the caller shrinks what it asked for
 * (prefetch uses this: a smaller window, never a failure).
 */
bool budget_try_reserve(struct budget *b, size_t n);

/**
 * budget_reserve() - take @n bytes, waiting until other holders release
 * enough (the write side uses this: back-pressure on the writer instead of
 * growing the process). A request larger than the whole limit is clamped to
 * wait for an empty budget and then granted, so it can never deadlock.
 * Returns 0.
 */
int budget_reserve(struct budget *b, size_t n);

/**
 * budget_reserve_wait() - take @n bytes, waiting up to @timeout_ms for other
 * holders to release enough (woken by each release, no polling). Returns
 * true when reserved, false when the time ran out (nothing taken).
 */
bool budget_reserve_wait(struct budget *b, size_t n, long timeout_ms);

/** budget_release() - give back @n bytes taken by one of the reserve calls. */
void budget_release(struct budget *b, size_t n);

/** budget_used() - bytes reserved now (for logs and tests). */
uint64_t budget_used(struct budget *b);

/** budget_limit() - the limit given to budget_new(). */
uint64_t budget_limit(struct budget *b);

#endif
