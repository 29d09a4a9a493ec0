/* SPDX-License-Identifier: Apache-2.0 */
/*
 * prefetch: the read side. Prefetched parts belong to the object (key +
 * ETag), not to the handle: handles reading the same version of an object
 * share the parts in flight and in memory, so many ranks reading one input
 * fetch each byte once; each handle keeps its own position and adaptive
 * window. A window starts with a small request (1 MiB) so random readers
 * pay little, then parts grow to --read-part-size, several in flight, the
 * window doubling while the reader keeps up, up to a cap and the object's
 * share of --memory-limit. A part is freed when no handle's window holds
 * it. Small seeks are served from what is fetched; a read far from the
 * window is served from parts already there or by one GET of its own
 * bytes, and leaves the window alone. Every GET carries If-Match with the
 * ETag the handle reads, so a changed object gives ESTALE, never a mix of
 * two versions. Replies go out straight from the part buffers.
 *
 * Threads: any; concurrent reads of one handle are fine. Lock order: the
 * prefetcher's table lock, then an object's lock, then the budget's.
 */
#ifndef HPCOPS_PREFETCH_H
#define HPCOPS_PREFETCH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "backend.h"

struct budget;
struct cache;
struct prefetcher;
struct prefetch;

#define PREFETCH_MAX_SEGS 16 /* parts one reply may span */

/** What the read side of a mount shares. Everything is borrowed. */
struct prefetch_config {
	const struct fs_backend *be;
	struct budget *budget;
	struct cache *cache; /* NULL without --cache and --cache-xz */
	size_t part_size;    /* --read-part-size */
	size_t cache_block;  /* --cache-block-size (0: CACHE_BLOCK_SIZE) */
};

/** prefetcher_new() - the read side of a mount (object table, buffer pool). NULL on ENOMEM. */
struct prefetcher *prefetcher_new(const struct prefetch_config *cfg);

/** prefetcher_free() - after every handle is freed and every GET completed. NULL is fine. */
void prefetcher_free(struct prefetcher *pfr);

/** prefetcher_trim() - free idle pooled buffers (returning their budget). */
void prefetcher_trim(struct prefetcher *pfr);

/** Counters of the read side, for logs, metrics and tests. */
struct prefetch_stats {
	uint64_t bytes_fetched;    /* bytes that came from S3 (prefetch and far reads) */
	uint64_t bytes_from_cache; /* from the block cache */
	uint64_t bytes_delivered;  /* bytes replied to readers */
	uint64_t parts_shared;     /* parts a handle took from another's fetch */
	uint64_t gets;             /* GETs sent */
};

/** prefetcher_stats() - a snapshot of the counters. */
void prefetcher_stats(struct prefetcher *pfr, struct prefetch_stats *out);

/**
 * prefetch_new() - read state for @key of @size bytes whose ETag is @etag
 * ("" if unknown: then the first answer's ETag is used, and nothing is
 * shared). @no_cache (O_DIRECT): never the block cache. Copies the
 * strings. Returns NULL on allocation failure. Free with prefetch_free().
 */
struct prefetch *prefetch_new(struct prefetcher *pfr, const char *key, uint64_t size,
                              const char *etag, bool no_cache);

/**
 * A reply in the making: iovecs into part buffers that stay pinned until
 * prefetch_reply_done(). Filled by prefetch_read(); owned by the caller.
 */
struct prefetch_reply {
	struct iovec iov[PREFETCH_MAX_SEGS];
	int n_iov;
	/* private: what to unpin or free afterwards */
	struct prefetch *pf;
	void *pins[PREFETCH_MAX_SEGS];
	int n_pins;
	void *owned; /* a buffer of a direct read, freed afterwards */
};

/**
 * prefetch_read() - the bytes [@off, @off + @size) of the object into @out
 * (fewer at the end of the object, none past it). Returns 0, or -errno
 * (ESTALE when the object changed, EIO when S3 failed for good). On 0 the
 * caller replies from out->iov, then calls prefetch_reply_done().
 */
int prefetch_read(struct prefetch *pf, size_t size, uint64_t off, struct prefetch_reply *out);

/** prefetch_reply_done() - the reply went out: unpin and free what it used. */
void prefetch_reply_done(struct prefetch_reply *r);

/**
 * prefetch_free() - the handle was released: drop its window (GETs still
 * in flight free their parts when they complete). NULL is fine.
 */
void prefetch_free(struct prefetch *pf);

#endif
