/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fs_harness: one struct hpcops_fs over the in-memory store (fake_store.h),
 * set up as hpcops-mount sets it up but without FUSE or a server, for unit
 * tests of the namespace and read logic. The harness owns the store and
 * the filesystem; harness_free() frees both.
 */
#ifndef HPCOPS_FS_HARNESS_H
#define HPCOPS_FS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fake_store.h"
#include "fs.h"
#include "fs_setup.h"

struct fs_harness {
	struct hpcops_fs fs;
	struct fake_store *store;       /* the mounted bucket */
	struct fake_store *cache_store; /* the --cache-xz bucket, or NULL */
	bool borrowed;                  /* the stores are the test's (harness_new_on()) */
};

/**
 * harness_new() - a store and fs.opt with hpcops-mount's defaults
 * (fs_options_init()), not set up yet: change fs.opt, then harness_start().
 * Options the logic reads on each call (allow_*, the TTLs) may also be
 * changed later; read_part_size and memory_limit are taken at the start.
 */
struct fs_harness *harness_new(void);

/**
 * harness_new_on() - as harness_new(), over the test's @store (borrowed:
 * freed by the test after every harness on it), so that several
 * filesystems ("nodes") read one bucket. With @cache_store (borrowed too)
 * the filesystem gets --cache-xz cache-bucket over it; the mounted bucket
 * is then named src-bucket.
 */
struct fs_harness *harness_new_on(struct fake_store *store, struct fake_store *cache_store);

/** harness_start() - fs.be (and fs.cache_be) = the stores' tables, then fs_setup(). 0 or -1. */
int harness_start(struct fs_harness *h);

/**
 * harness_free() - what unmount does: free the handles still open, wait
 * for the GETs in flight, then fs_teardown(). Returns the memory-budget
 * bytes still held just before the teardown (0 unless something leaked).
 */
uint64_t harness_free(struct fs_harness *h);

/**
 * harness_lookup() - @path ("a/b/c", no leading '/') from the root, one
 * ns_lookup() a component. Returns the inode number, 0 when a component
 * does not exist (a negative entry), or -errno.
 */
long long harness_lookup(struct fs_harness *h, const char *path);

/** harness_pattern() - @n bytes of content @seed, each a hash of its offset (malloc'd). */
char *harness_pattern(size_t n, unsigned seed);

#endif
