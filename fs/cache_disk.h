/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache_disk: the local tier of the block cache (cache.h), --cache DIR, for
 * objects many jobs on this node read again. Blocks are files keyed by a
 * hash of (key, ETag, block size, block index): a changed object has a new
 * ETag, so old blocks are never served for it, and a mount with another
 * --cache-block-size never takes a block of another size. Each block file
 * carries a header with the key, ETag, index, length and a CRC32C of the
 * data, checked on every read: a block that does not match is deleted and
 * counts as a miss. Least recently used blocks are evicted to stay under
 * --max-cache-size. A full disk only makes a put fail quietly (after
 * evicting): reads never fail because of it.
 *
 * Threads: any; one mutex (a leaf) guards the index.
 */
#ifndef HPCOPS_CACHE_DISK_H
#define HPCOPS_CACHE_DISK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cache_disk;

/**
 * cache_disk_new() - open (or create) the cache in @dir for blocks of
 * @block_size bytes, bounded by @max_bytes (0 = keep 5% of the file system
 * free). Indexes the blocks already there. Returns NULL with a reason in
 * @why (what was wrong and what to do). Free with cache_disk_free().
 */
struct cache_disk *cache_disk_new(const char *dir, size_t block_size, uint64_t max_bytes, char *why,
                                  size_t why_len);

/** cache_disk_free() - close the cache (the blocks stay on disk). NULL is fine. */
void cache_disk_free(struct cache_disk *c);

/**
 * cache_disk_get() - block @idx of (@key, @etag) into @buf (@cap bytes).
 * Returns its length, or -1 on a miss (absent, corrupt, or unreadable).
 */
ssize_t cache_disk_get(struct cache_disk *c, const char *key, const char *etag, uint64_t idx,
                       void *buf, size_t cap);

/**
 * cache_disk_put() - store @len bytes (a whole block, or the object's last
 * one) as block @idx of (@key, @etag). Best effort: errors are logged once.
 */
void cache_disk_put(struct cache_disk *c, const char *key, const char *etag, uint64_t idx,
                    const void *data, size_t len);

/** cache_disk_stats() - block lookups that hit and missed so far (0, 0 for NULL). */
void cache_disk_stats(struct cache_disk *c, uint64_t *hits, uint64_t *misses);

#endif
