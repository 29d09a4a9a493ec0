/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache: the block cache the read side asks before it GETs from the source
 * bucket, in two tiers, each optional: the node's disk (--cache DIR,
 * cache_disk.h) first, then a bucket every node of a cluster shares
 * (--cache-xz BUCKET, cache_bucket.h). A block is keyed by (key, ETag,
 * block size, index): a changed object has a new ETag, so its old blocks are
 * never served. Each tier checks what it holds against the block it was
 * asked for and a CRC32C of the data; a block that fails is a miss, never
 * an error. Bytes that came from the source are stored in both tiers, bytes
 * that came from the shared tier in the local one.
 *
 * Threads: any. cache_fetch() may be called with the caller's own lock
 * held (it reads the disk, never waits on the network); its @done runs on
 * another thread with none of the cache's locks held.
 */
#ifndef HPCOPS_CACHE_H
#define HPCOPS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

struct budget;
struct cache;

/* The default block size (--cache-block-size). */
#define CACHE_BLOCK_SIZE (1024 * 1024)

/** What the cache is made of. Everything is borrowed (strings are copied). */
struct cache_config {
	const char *dir;                    /* --cache DIR; NULL: no local tier */
	uint64_t max_bytes;                 /* --max-cache-size (0: keep 5% of the disk free) */
	const char *bucket;                 /* --cache-xz BUCKET; NULL: no shared tier */
	const struct fs_backend *bucket_be; /* the cache bucket's calls (with @bucket) */
	const char *source_bucket;          /* the mounted bucket, named in shared blocks */
	size_t block_size;                  /* --cache-block-size (0: CACHE_BLOCK_SIZE) */
	struct budget *budget;              /* the shared tier's buffers come out of it */
};

/**
 * cache_new() - the tiers @cfg asks for. Returns NULL with a reason in
 * @why that names the option (what was wrong and what to do). Free with
 * cache_free().
 */
struct cache *cache_new(const struct cache_config *cfg, char *why, size_t why_len);

/**
 * cache_drain() - wait up to @timeout_ms for the shared tier's puts in
 * flight (at unmount, while the transfer engine runs). NULL is fine.
 */
void cache_drain(struct cache *c, long timeout_ms);

/**
 * cache_free() - free the cache (the blocks stay). No fetch or put may be
 * in flight: stop the transfer engine first. NULL is fine.
 */
void cache_free(struct cache *c);

/** How cache_fetch() went. */
enum cache_result {
	CACHE_MISS = 0,   /* fetch the bytes from the source (nothing counts in @buf) */
	CACHE_HIT,        /* @buf holds them, checked, all from the local tier */
	CACHE_HIT_SHARED, /* @buf holds them, checked, some from the shared tier at once */
	CACHE_PENDING,    /* the shared tier is at it: @done tells */
};

/**
 * cache_fetch() - @len bytes of (@key, @etag) from @off, a multiple of the
 * block size, into @buf: whole blocks, the last one short only where the
 * object ends. The local tier is read at once; what it lacks is asked of
 * the shared tier. On CACHE_PENDING, @done(@user, hit) runs exactly once
 * on another thread (never inside this call), and @buf may be written
 * until then. Bytes of a shared hit (CACHE_HIT_SHARED, or @done's) are
 * worth a cache_put(CACHE_FROM_SHARED): the local tier lacks them.
 */
enum cache_result cache_fetch(struct cache *c, const char *key, const char *etag, uint64_t off,
                              size_t len, void *buf, void (*done)(void *user, bool hit),
                              void *user);

/** Where the bytes of a cache_put() came from: the tiers below it get them. */
enum cache_origin {
	CACHE_FROM_SOURCE = 0, /* the source bucket: both tiers */
	CACHE_FROM_SHARED,     /* the shared tier: the local tier only */
};

/**
 * cache_put() - store @len bytes (a whole block, or the object's last
 * one) as block @idx of (@key, @etag) in the tiers that lack them (see
 * enum cache_origin). Best effort: errors are logged once. May wait a
 * little for the shared tier (cache_bucket.h): call it with no lock held.
 */
void cache_put(struct cache *c, const char *key, const char *etag, uint64_t idx, const void *data,
               size_t len, enum cache_origin from);

/** Counters of the cache, in blocks. */
struct cache_stats {
	uint64_t hits, misses;               /* lookups: found in a tier, and in none */
	uint64_t shared_hits, shared_misses; /* of the shared tier alone */
	uint64_t shared_damaged;             /* shared blocks that failed a check (misses) */
	uint64_t shared_puts, shared_put_failures, shared_puts_skipped;
};

/** cache_stats() - a snapshot (zeros for NULL). */
void cache_stats(struct cache *c, struct cache_stats *out);

/** cache_block_size() - the block size of @c. */
size_t cache_block_size(const struct cache *c);

#endif
