/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache: the two tiers of the block cache behind one interface (see
 * cache.h): the disk first, block by block; what it lacks from the shared
 * bucket in one fetch.
 */
#include "cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_bucket.h"
#include "cache_disk.h"
#include "log.h"

struct cache {
	size_t block_size;
	struct cache_disk *disk;     /* --cache DIR, or NULL */
	struct cache_bucket *bucket; /* --cache-xz BUCKET, or NULL */
	/* blocks found on disk; lookups that missed with no shared tier behind (atomic) */
	uint64_t disk_hits, disk_misses;
};

static void stat_add(uint64_t *c, uint64_t n)
{
	__atomic_add_fetch(c, n, __ATOMIC_RELAXED);
}

struct cache *cache_new(const struct cache_config *cfg, char *why, size_t why_len)
{
	struct cache *c = calloc(1, sizeof(*c));
	char reason[512];

	if (!c) {
		snprintf(why, why_len, "out of memory");
		return NULL;
	}
	c->block_size = cfg->block_size ? cfg->block_size : CACHE_BLOCK_SIZE;
	if (cfg->dir) {
		c->disk =
		    cache_disk_new(cfg->dir, c->block_size, cfg->max_bytes, reason, sizeof(reason));
		if (!c->disk) {
			snprintf(why, why_len, "--cache %s: %s", cfg->dir, reason);
			goto fail;
		}
	}
	if (cfg->bucket) {
		struct cache_bucket_config bc = {
		    .be = cfg->bucket_be,
		    .name = cfg->bucket,
		    .source_bucket = cfg->source_bucket,
		    .block_size = c->block_size,
		    .budget = cfg->budget,
		};

		if (!cfg->bucket_be || !cfg->bucket_be->ops) {
			snprintf(why, why_len, "--cache-xz %s: no client for the cache bucket",
			         cfg->bucket);
			goto fail;
		}
		c->bucket = cache_bucket_new(&bc);
		if (!c->bucket) {
			snprintf(why, why_len, "--cache-xz %s: out of memory", cfg->bucket);
			goto fail;
		}
	}
	return c;
fail:
	cache_free(c);
	return NULL;
}

void cache_drain(struct cache *c, long timeout_ms)
{
	int left;

	if (!c || !c->bucket)
		return;
	left = cache_bucket_drain(c->bucket, timeout_ms);
	if (left)
		log_notice("cache bucket: %d block puts still in flight after %ld ms at unmount: "
		           "cancelled (another node or a later read stores them)",
		           left, timeout_ms);
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	cache_disk_free(c->disk);
	cache_bucket_free(c->bucket);
	free(c);
}

size_t cache_block_size(const struct cache *c)
{
	return c->block_size;
}

enum cache_result cache_fetch(struct cache *c, const char *key, const char *etag, uint64_t off,
                              size_t len, void *buf, void (*done)(void *user, bool hit), void *user)
{
	size_t bs = c->block_size, nb, n_missing = 0;
	struct cache_bucket_block *missing = NULL;
	enum cache_result rc = CACHE_MISS;

	if (!etag[0] || off % bs || !len)
		return CACHE_MISS;
	nb = (len + bs - 1) / bs;
	if (c->bucket) {
		missing = malloc(nb * sizeof(*missing));
		if (!missing)
			return CACHE_MISS;
	}
	for (size_t i = 0; i < nb; i++) {
		size_t want = len - i * bs < bs ? len - i * bs : bs;
		char *dst = (char *)buf + i * bs;
		uint64_t idx = off / bs + i;

		if (c->disk &&
		    cache_disk_get(c->disk, key, etag, idx, dst, want) == (ssize_t)want) {
			stat_add(&c->disk_hits, 1);
			continue;
		}
		if (!c->bucket) {
			/* the source has to be asked anyway: no use reading more blocks */
			stat_add(&c->disk_misses, 1);
			goto out;
		}
		missing[n_missing].idx = idx;
		missing[n_missing].len = want;
		missing[n_missing].dst = dst;
		n_missing++;
	}
	rc = CACHE_HIT;
	if (n_missing) {
		switch (
		    cache_bucket_fetch(c->bucket, key, etag, missing, (int)n_missing, done, user)) {
		case CACHE_BUCKET_HIT:
			rc = CACHE_HIT_SHARED;
			break;
		case CACHE_BUCKET_PENDING:
			rc = CACHE_PENDING;
			break;
		default:
			rc = CACHE_MISS;
			break;
		}
	}
out:
	free(missing);
	return rc;
}

void cache_put(struct cache *c, const char *key, const char *etag, uint64_t idx, const void *data,
               size_t len, enum cache_origin from)
{
	if (c->disk)
		cache_disk_put(c->disk, key, etag, idx, data, len);
	if (c->bucket && from == CACHE_FROM_SOURCE)
		cache_bucket_put(c->bucket, key, etag, idx, data, len);
}

void cache_stats(struct cache *c, struct cache_stats *out)
{
	struct cache_bucket_stats b;

	memset(out, 0, sizeof(*out));
	if (!c)
		return;
	cache_bucket_stats(c->bucket, &b);
	out->shared_hits = b.hits;
	out->shared_misses = b.misses;
	out->shared_damaged = b.damaged;
	out->shared_puts = b.puts;
	out->shared_put_failures = b.put_failures;
	out->shared_puts_skipped = b.puts_skipped;
	out->hits = __atomic_load_n(&c->disk_hits, __ATOMIC_RELAXED) + b.hits;
	out->misses = __atomic_load_n(&c->disk_misses, __ATOMIC_RELAXED) + b.misses;
}
