/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fs_harness: a filesystem over the in-memory store for unit tests (see
 * fs_harness.h).
 */
#include "fs_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "namespace.h"
#include "options.h"
#include "prefetch.h"

struct fs_harness *harness_new(void)
{
	struct fs_harness *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	fs_options_init(&h->fs.opt);
	h->fs.opt.prefix = strdup("");
	h->store = fake_store_new();
	if (!h->fs.opt.prefix || !h->store) {
		free(h->fs.opt.prefix);
		if (h->store)
			fake_store_free(h->store);
		free(h);
		return NULL;
	}
	return h;
}

struct fs_harness *harness_new_on(struct fake_store *store, struct fake_store *cache_store)
{
	struct fs_harness *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	fs_options_init(&h->fs.opt);
	h->fs.opt.prefix = strdup("");
	h->store = store;
	h->cache_store = cache_store;
	h->borrowed = true;
	if (cache_store) {
		h->fs.opt.bucket = strdup("src-bucket");
		h->fs.opt.cache_xz = strdup("cache-bucket");
	}
	return h;
}

int harness_start(struct fs_harness *h)
{
	/* the logic's own retry loops: short, no test waits on them */
	h->fs.be = fake_backend(h->store, 2000);
	if (h->cache_store)
		h->fs.cache_be = fake_backend(h->cache_store, 2000);
	return fs_setup(&h->fs);
}

uint64_t harness_free(struct fs_harness *h)
{
	uint64_t held = 0;

	if (!h)
		return 0;
	fs_shutdown(&h->fs);
	/*
	 * GETs of released handles still complete into their parts; a miss in
	 * the cache bucket sends its GET to the mounted bucket, so that first.
	 */
	if (h->cache_store)
		fake_drain(h->cache_store);
	fake_drain(h->store);
	if (h->fs.reads)
		prefetcher_trim(h->fs.reads);
	if (h->fs.budget)
		held = budget_used(h->fs.budget);
	fs_teardown(&h->fs);
	fs_options_free(&h->fs.opt);
	if (!h->borrowed)
		fake_store_free(h->store);
	free(h);
	return held;
}

long long harness_lookup(struct fs_harness *h, const char *path)
{
	fuse_ino_t ino = FUSE_ROOT_ID;
	char *copy = strdup(path), *save = NULL;
	long long r = FUSE_ROOT_ID;

	if (!copy)
		return -ENOMEM;
	for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		struct fuse_entry_param e;
		int rc = ns_lookup(&h->fs, ino, c, &e);

		if (rc < 0 || e.ino == 0) {
			r = rc < 0 ? rc : 0;
			break;
		}
		ino = e.ino;
		r = (long long)ino;
	}
	free(copy);
	return r;
}

char *harness_pattern(size_t n, unsigned seed)
{
	char *d = malloc(n ? n : 1);

	/* a hash of the position: a byte from anywhere else (another offset,
	 * another part, another seed) is almost never the same byte */
	for (size_t i = 0; d && i < n; i++) {
		uint32_t x = (uint32_t)i * 2654435761u ^ (seed + 1) * 0x9e3779b9u;

		x ^= x >> 15;
		x *= 0x85ebca6bu;
		x ^= x >> 13;
		d[i] = (char)x;
	}
	return d;
}
