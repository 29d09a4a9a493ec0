/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache: the local block cache of --cache DIR, for objects many jobs read
 * again. Blocks of CACHE_BLOCK_SIZE bytes are files keyed by a hash of
 * (key, ETag, block index): a changed object has a new ETag, so old blocks
 * are never served for it. Each block file carries a header with the key,
 * ETag, index, length and a CRC32C of the data, checked on every read: a
 * block that does not match is deleted and counts as a miss. Least recently
 * used blocks are evicted to stay under --max-cache-size. A full disk only
 * makes a put fail quietly (after evicting): reads never fail because of it.
 */
#ifndef HPCOPS_CACHE_H
#define HPCOPS_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The default block size (--cache-block-size): blocks are whatever the reader stores. */
#define CACHE_BLOCK_SIZE (1024 * 1024)

struct cache;

/**
 * cache_new() - open (or create) the cache in @dir, bounded by @max_bytes
 * (0 = keep 5% of the file system free). Indexes the blocks already there.
 * Returns NULL with a reason in @why (what was wrong and what to do).
 * Free with cache_free().
 */
struct cache *cache_new(const char *dir, uint64_t max_bytes, char *why, size_t why_len);

/** cache_free() - close the cache (the blocks stay on disk). NULL is fine. */
void cache_free(struct cache *c);

/**
 * cache_get() - block @idx of (@key, @etag) into @buf (@cap bytes).
 * Returns its length, or -1 on a miss (absent, corrupt, or unreadable).
 */
ssize_t cache_get(struct cache *c, const char *key, const char *etag, uint64_t idx, void *buf,
                  size_t cap);

/**
 * cache_put() - store @len bytes (a whole block, or the object's last one)
 * as block @idx of (@key, @etag). Best effort: errors are logged once.
 */
void cache_put(struct cache *c, const char *key, const char *etag, uint64_t idx, const void *data,
               size_t len);

/** cache_stats() - block lookups that hit and missed so far (0, 0 for NULL). */
void cache_stats(struct cache *c, uint64_t *hits, uint64_t *misses);

#endif
