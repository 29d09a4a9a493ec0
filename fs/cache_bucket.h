/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache_bucket: the shared tier of the block cache (cache.h), --cache-xz
 * BUCKET: blocks that every node of a cluster reads and writes, kept as
 * objects of a second bucket on any S3-compatible store. Block @idx of
 * (source bucket, key, ETag) in blocks of --cache-block-size is the object
 *
 *     hpcops-cache-v1/<hex SHA-256 of bucket \0 key \0 ETag \0 block size>/<idx>
 *
 * (the hash keeps keys short and valid whatever the source key holds). The
 * object is a header (CACHE_BUCKET_MAGIC, then the source bucket, key,
 * ETag, block size, index, data length and CRC32C of the data), then the
 * data. Every field is checked on a get: a block of another object,
 * version or size, a short, long or damaged one is a miss, never served
 * and never an error for the reader. A changed source object has a new
 * ETag, hence new keys: its old blocks are never found.
 *
 * Gets and puts go through a backend table (backend.h) over the cache
 * bucket and complete on another thread. Puts are best effort: a failure is
 * logged once and counted, never seen by a reader. The buffers of gets and
 * puts are reserved in the memory budget; at most max_puts puts are in
 * flight, and a put that finds no slot within put_wait_ms is skipped.
 *
 * Threads: any. The tier's own lock is a leaf; completions take it and the
 * budget's lock, one at a time, and call @done with neither held.
 */
#ifndef HPCOPS_CACHE_BUCKET_H
#define HPCOPS_CACHE_BUCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

struct budget;
struct cache_bucket;

/* The first bytes of every block object (a new layout gets a new one). */
#define CACHE_BUCKET_MAGIC "HPCXZ001"
/* Where the blocks live in the cache bucket (the mount check lists it). */
#define CACHE_BUCKET_PREFIX "hpcops-cache-v1/"
/* Puts in flight at once by default: 8 blocks of 1 MiB hide a PUT's latency. */
#define CACHE_BUCKET_MAX_PUTS 8
/* Room for a block's object key with its NUL (the key is 102 bytes at most). */
#define CACHE_BUCKET_KEY_MAX 128

/** The shared tier's settings. Borrowed, except the names (copied). */
struct cache_bucket_config {
	const struct fs_backend *be; /* the cache bucket's calls */
	const char *name;            /* the cache bucket, for the log (copied) */
	const char *source_bucket;   /* the mounted bucket, named in every block (copied) */
	size_t block_size;           /* --cache-block-size */
	struct budget *budget;       /* buffers of gets and puts come out of it */
	int max_puts;                /* puts in flight at most (0: CACHE_BUCKET_MAX_PUTS) */
	long put_wait_ms; /* a put waits this long for a slot (0: 1000), then is skipped */
};

/** Counters of the shared tier, in blocks. */
struct cache_bucket_stats {
	uint64_t hits;         /* blocks served from the cache bucket */
	uint64_t misses;       /* blocks asked for and not served (absent, damaged, not tried) */
	uint64_t damaged;      /* of the misses: a block object that failed a check */
	uint64_t puts;         /* blocks stored */
	uint64_t put_failures; /* puts the cache bucket refused or that failed */
	uint64_t puts_skipped; /* puts not sent: no slot in time, or the budget short */
};

/** One block a fetch asks for: index @idx, @len bytes (the whole block, or the object's last). */
struct cache_bucket_block {
	uint64_t idx;
	size_t len;
	void *dst; /* where its bytes go (the caller's, valid until the fetch ends) */
};

/** cache_bucket_new() - the shared tier over @cfg. NULL on allocation failure. */
struct cache_bucket *cache_bucket_new(const struct cache_bucket_config *cfg);

/**
 * cache_bucket_free() - free @b (NULL is fine). No get or put of @b may
 * still be in flight: stop the transfer engine first (its completions run).
 */
void cache_bucket_free(struct cache_bucket *b);

/** How cache_bucket_fetch() went. */
enum cache_bucket_result {
	CACHE_BUCKET_MISS = 0, /* not every block is there: nothing written that counts */
	CACHE_BUCKET_HIT,      /* every block is in place, checked, now */
	CACHE_BUCKET_PENDING,  /* gets in flight: @done tells, on another thread */
};

/**
 * cache_bucket_fetch() - the @n blocks of (@key, @etag) in @blocks (copied)
 * into their dst. Returns HIT or MISS when it is known at once (then @done
 * is not called), or PENDING: @done(@user, hit) runs exactly once on
 * another thread, never inside this call, after every get ended. Until
 * then the dst buffers may be written. A miss means some block was not
 * served: the caller fetches them all from the source.
 */
enum cache_bucket_result cache_bucket_fetch(struct cache_bucket *b, const char *key,
                                            const char *etag,
                                            const struct cache_bucket_block *blocks, int n,
                                            void (*done)(void *user, bool hit), void *user);

/**
 * cache_bucket_put() - store @len bytes as block @idx of (@key, @etag):
 * copied, sent asynchronously, best effort (see the top of this file). May
 * wait up to put_wait_ms for a slot: call it with no lock held.
 */
void cache_bucket_put(struct cache_bucket *b, const char *key, const char *etag, uint64_t idx,
                      const void *data, size_t len);

/**
 * cache_bucket_drain() - wait up to @timeout_ms for the puts in flight to
 * end (at unmount, while the engine still runs). Returns the puts still in
 * flight (0 when all ended).
 */
int cache_bucket_drain(struct cache_bucket *b, long timeout_ms);

/** cache_bucket_stats() - a snapshot of the counters (zeros for NULL). */
void cache_bucket_stats(struct cache_bucket *b, struct cache_bucket_stats *out);

/**
 * cache_bucket_key() - the object key of block @idx of (@bucket, @key,
 * @etag) in blocks of @block_size, into @out (@len bytes; CACHE_BUCKET_KEY_MAX suffice).
 * Returns 0, or -1 when it does not fit or memory is short.
 */
int cache_bucket_key(const char *bucket, const char *key, const char *etag, size_t block_size,
                     uint64_t idx, char *out, size_t len);

#endif
