/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the shared block cache (--cache-xz, fs/cache_bucket.c
 * behind fs/cache.c) without a server: "nodes" are filesystems set up as
 * the daemon sets them up (fs_harness.c) over one in-memory source bucket
 * and one in-memory cache bucket (fake_store.c). What a second node reads
 * from the cache bucket, that a changed object never gets old blocks, that
 * every kind of bad block object is a miss and never served, that a
 * failing cache bucket never fails a read, the disk tier in front of the
 * bucket, the bound on puts in flight, and the layout of block keys.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "budget.h"
#include "cache.h"
#include "cache_bucket.h"
#include "file_read.h"
#include "fs_harness.h"
#include "prefetch.h"
#include "util.h"

#define MIB       (1024 * 1024)
#define PART      (2 * MIB)    /* --read-part-size of these tests */
#define READ_SIZE (128 * 1024) /* what the kernel's readahead asks for at a time */
#define SIZE      (10 * MIB + 12345)
#define N_BLOCKS  11 /* of SIZE in 1 MiB blocks, the last one short */

struct stores {
	struct fake_store *src;   /* the mounted bucket "src-bucket" */
	struct fake_store *cache; /* the cache bucket */
};

static int setup(void **state)
{
	struct stores *s = calloc(1, sizeof(*s));

	s->src = fake_store_new();
	s->cache = fake_store_new();
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	struct stores *s = *state;

	fake_store_free(s->src);
	fake_store_free(s->cache);
	free(s);
	return 0;
}

/* A node: a filesystem over the two buckets, with the disk tier in @dir if not NULL. */
static struct fs_harness *node(struct stores *s, const char *dir)
{
	struct fs_harness *h = harness_new_on(s->src, s->cache);

	assert_non_null(h);
	h->fs.opt.read_part_size = PART;
	h->fs.opt.memory_limit = 64 * MIB;
	if (dir)
		h->fs.opt.cache_dir = strdup(dir);
	assert_int_equal(harness_start(h), 0);
	return h;
}

/* Unmount @h: the puts drained, every buffer given back to the budget. */
static void node_free(struct fs_harness *h)
{
	assert_int_equal(harness_free(h), 0);
}

/* Read @key whole as cat does on @h and assert it is @want (@size bytes). */
static void assert_reads_as(struct fs_harness *h, const char *key, const char *want, size_t size)
{
	long long ino = harness_lookup(h, key);
	char *got = malloc(size + READ_SIZE);
	struct fs_handle *fh = NULL;
	struct fr_open_flags of;
	uint64_t off = 0;

	assert_true(ino > 0);
	assert_int_equal(fr_open(&h->fs, (fuse_ino_t)ino, O_RDONLY, false, &fh, &of), 0);
	for (;;) {
		struct prefetch_reply r;
		size_t n = 0;

		assert_int_equal(fr_read(&h->fs, fh, READ_SIZE, off, &r), 0);
		for (int i = 0; i < r.n_iov; i++) {
			memcpy(got + off + n, r.iov[i].iov_base, r.iov[i].iov_len);
			n += r.iov[i].iov_len;
		}
		prefetch_reply_done(&r);
		if (!n)
			break;
		off += n;
	}
	assert_int_equal(off, size);
	assert_memory_equal(got, want, size);
	fr_release(&h->fs, fh);
	free(got);
}

/* The cache bucket's key of block @idx of @key as it is in the source now. */
static void block_key(struct stores *s, const char *key, uint64_t idx, char *out)
{
	char etag[80];

	assert_true(fake_etag(s->src, key, etag));
	assert_int_equal(
	    cache_bucket_key("src-bucket", key, etag, MIB, idx, out, CACHE_BUCKET_KEY_MAX), 0);
}

/* Node A reads @key (@data): the cache bucket then holds every block of it. */
static void first_node_reads(struct stores *s, const char *key, const char *data)
{
	struct fs_harness *a = node(s, NULL);
	size_t before = fake_count_prefix(s->cache, CACHE_BUCKET_PREFIX);

	assert_reads_as(a, key, data, SIZE);
	node_free(a);
	assert_int_equal(fake_count_prefix(s->cache, CACHE_BUCKET_PREFIX) - before, N_BLOCKS);
}

/* ---- a second node ---- */

static void test_second_node_reads_from_the_cache_bucket(void **state)
{
	struct stores *s = *state;
	char *data = harness_pattern(SIZE, 1);
	struct fs_harness *b;
	struct cache_stats cs;
	struct prefetch_stats ps;
	size_t src_before;

	fake_put(s->src, "in/data.bin", data, SIZE);
	first_node_reads(s, "in/data.bin", data);
	src_before = fake_bytes_got(s->src);
	b = node(s, NULL);
	assert_reads_as(b, "in/data.bin", data, SIZE);
	cache_stats(b->fs.cache, &cs);
	prefetcher_stats(b->fs.reads, &ps);
	/* not one byte from the source: every block from the cache bucket */
	assert_int_equal(fake_bytes_got(s->src) - src_before, 0);
	assert_int_equal(ps.bytes_fetched, 0);
	assert_int_equal(ps.bytes_from_cache, SIZE);
	assert_int_equal(cs.shared_hits, N_BLOCKS);
	assert_int_equal(cs.shared_damaged, 0);
	/* and nothing stored again: the blocks came from there */
	node_free(b);
	assert_int_equal(cs.shared_puts, 0);
	assert_int_equal(fake_count_prefix(s->cache, CACHE_BUCKET_PREFIX), N_BLOCKS);
	free(data);
}

static void test_changed_object_never_gets_old_blocks(void **state)
{
	struct stores *s = *state;
	char *v1 = harness_pattern(SIZE, 2), *v2 = harness_pattern(SIZE, 3);
	struct fs_harness *c;
	struct cache_stats cs;
	size_t src_before;

	fake_put(s->src, "in/changes.bin", v1, SIZE);
	first_node_reads(s, "in/changes.bin", v1);
	/* overwritten behind the cluster's back: same key and size, new ETag */
	fake_put(s->src, "in/changes.bin", v2, SIZE);
	src_before = fake_bytes_got(s->src);
	c = node(s, NULL);
	assert_reads_as(c, "in/changes.bin", v2, SIZE);
	cache_stats(c->fs.cache, &cs);
	assert_int_equal(cs.shared_hits, 0);
	assert_int_equal(fake_bytes_got(s->src) - src_before, SIZE);
	node_free(c);
	/* the new version's blocks are stored beside the old ones */
	assert_int_equal(fake_count_prefix(s->cache, CACHE_BUCKET_PREFIX), 2 * N_BLOCKS);
	free(v1);
	free(v2);
}

/* ---- bad block objects ---- */

static void test_damaged_or_foreign_blocks_are_misses(void **state)
{
	struct stores *s = *state;
	char *data = harness_pattern(SIZE, 4), *other = harness_pattern(SIZE, 5);
	char k[CACHE_BUCKET_KEY_MAX], k2[CACHE_BUCKET_KEY_MAX];
	char *junk = harness_pattern(MIB + 200, 6), *obj;
	struct fs_harness *b;
	struct cache_stats cs;
	size_t len, src_before;

	fake_put(s->src, "in/d.bin", data, SIZE);
	fake_put(s->src, "in/other.bin", other, SIZE);
	first_node_reads(s, "in/d.bin", data);
	first_node_reads(s, "in/other.bin", other);
	/* block 1: junk of a block object's length (no header at all) */
	block_key(s, "in/d.bin", 1, k);
	obj = fake_get(s->cache, k, &len);
	fake_put(s->cache, k, junk, len);
	free(obj);
	/* block 3: block 2's object, whole and valid, under the wrong index */
	block_key(s, "in/d.bin", 2, k2);
	obj = fake_get(s->cache, k2, &len);
	block_key(s, "in/d.bin", 3, k);
	fake_put(s->cache, k, obj, len);
	free(obj);
	/* block 2 (after its copy above): longer than a block can be */
	block_key(s, "in/d.bin", 2, k);
	obj = fake_get(s->cache, k, &len);
	obj = realloc(obj, len + 4096);
	memset(obj + len, 'x', 4096);
	fake_put(s->cache, k, obj, len + 4096);
	free(obj);
	/* block 5: cut short */
	block_key(s, "in/d.bin", 5, k);
	obj = fake_get(s->cache, k, &len);
	fake_put(s->cache, k, obj, len / 2);
	free(obj);
	/* block 7: a valid block of another object under this one's key */
	block_key(s, "in/other.bin", 7, k2);
	obj = fake_get(s->cache, k2, &len);
	block_key(s, "in/d.bin", 7, k);
	fake_put(s->cache, k, obj, len);
	free(obj);
	/* block 9: one data byte flipped (the CRC32C must catch it), alone in its part */
	block_key(s, "in/d.bin", 9, k);
	obj = fake_get(s->cache, k, &len);
	obj[len - 1000] ^= 0x20;
	fake_put(s->cache, k, obj, len);
	free(obj);
	src_before = fake_bytes_got(s->src);
	b = node(s, NULL);
	assert_reads_as(b, "in/d.bin", data, SIZE); /* the right bytes, from the source */
	cache_stats(b->fs.cache, &cs);
	/* each block is checked on its own: all six caught */
	assert_int_equal(cs.shared_damaged, 6);
	/* the first part (block 0) was good: not fetched from the source */
	assert_true(fake_bytes_got(s->src) - src_before <= SIZE - MIB);
	assert_true(fake_bytes_got(s->src) - src_before > 0);
	node_free(b);
	/* the node that read them from the source stored good blocks over the bad */
	src_before = fake_bytes_got(s->src);
	b = node(s, NULL);
	assert_reads_as(b, "in/d.bin", data, SIZE);
	cache_stats(b->fs.cache, &cs);
	assert_int_equal(cs.shared_damaged, 0);
	assert_int_equal(fake_bytes_got(s->src) - src_before, 0);
	node_free(b);
	free(data);
	free(other);
	free(junk);
}

static void test_failing_cache_bucket_never_fails_a_read(void **state)
{
	struct stores *s = *state;
	char *data = harness_pattern(SIZE, 7);
	struct fs_harness *b;
	struct cache_stats cs;

	fake_put(s->src, "in/f.bin", data, SIZE);
	fake_fail_op(s->cache, FAKE_GET, 0, -1, S3_ERR_ACCESS_DENIED, 403);
	fake_fail_op(s->cache, FAKE_PUT, 0, -1, S3_ERR_ACCESS_DENIED, 403);
	b = node(s, NULL);
	assert_reads_as(b, "in/f.bin", data, SIZE);
	/* and again: a second handle, new parts, the same refusals */
	assert_reads_as(b, "in/f.bin", data, SIZE);
	fs_shutdown(&b->fs); /* the puts drained */
	cache_stats(b->fs.cache, &cs);
	node_free(b);
	assert_int_equal(cs.shared_hits, 0);
	assert_true(cs.shared_misses >= N_BLOCKS);
	assert_true(cs.shared_put_failures >= N_BLOCKS);
	assert_int_equal(cs.shared_put_failures, (uint64_t)fake_calls(s->cache, FAKE_PUT));
	assert_int_equal(fake_count_prefix(s->cache, CACHE_BUCKET_PREFIX), 0);
	free(data);
}

/* ---- both tiers ---- */

static void test_disk_tier_in_front_of_the_bucket(void **state)
{
	struct stores *s = *state;
	char *data = harness_pattern(SIZE, 8);
	char dir[] = "/tmp/hpcops-cachexz-test-XXXXXX", cmd[128];
	struct fs_harness *b;
	struct cache_stats cs;
	size_t src_before, cache_gets;

	assert_non_null(mkdtemp(dir));
	fake_put(s->src, "in/t.bin", data, SIZE);
	first_node_reads(s, "in/t.bin", data);
	src_before = fake_bytes_got(s->src);
	/* node B, first time: from the bucket, and onto its disk */
	b = node(s, dir);
	assert_reads_as(b, "in/t.bin", data, SIZE);
	cache_stats(b->fs.cache, &cs);
	assert_int_equal(cs.shared_hits, N_BLOCKS);
	node_free(b);
	/* node B again: every block from its disk, none asked of the bucket */
	cache_gets = (size_t)fake_calls(s->cache, FAKE_GET);
	b = node(s, dir);
	assert_reads_as(b, "in/t.bin", data, SIZE);
	cache_stats(b->fs.cache, &cs);
	assert_int_equal(cs.shared_hits + cs.shared_misses, 0);
	assert_int_equal(cs.hits, N_BLOCKS);
	node_free(b);
	assert_int_equal(fake_calls(s->cache, FAKE_GET), cache_gets);
	assert_int_equal(fake_bytes_got(s->src) - src_before, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(data);
}

/* ---- the tier alone: bounds and keys ---- */

static void test_puts_in_flight_are_bounded(void **state)
{
	struct stores *s = *state;
	struct budget *bud = budget_new(64 * MIB);
	struct fs_backend be = fake_backend(s->cache, 2000);
	struct cache_bucket_config cfg = {
	    .be = &be,
	    .name = "cb",
	    .source_bucket = "src-bucket",
	    .block_size = MIB,
	    .budget = bud,
	    .max_puts = 2,
	    .put_wait_ms = 20,
	};
	struct cache_bucket *b = cache_bucket_new(&cfg);
	struct cache_bucket_stats st;
	char *data = harness_pattern(MIB, 9);

	assert_non_null(b);
	fake_pause(s->cache, true); /* a cache bucket that does not answer yet */
	for (uint64_t i = 0; i < 5; i++)
		cache_bucket_put(b, "k", "etag", i, data, MIB);
	cache_bucket_stats(b, &st);
	assert_int_equal(st.puts_skipped, 3);
	assert_int_equal(fake_queued(s->cache), 2);
	/* two copies of a block with its header, no more */
	assert_true(budget_used(bud) > 2 * MIB && budget_used(bud) < 2 * MIB + 4096);
	assert_int_equal(cache_bucket_drain(b, 20), 2);
	fake_pause(s->cache, false);
	assert_int_equal(cache_bucket_drain(b, 5000), 0);
	cache_bucket_stats(b, &st);
	assert_int_equal(st.puts, 2);
	assert_int_equal(budget_used(bud), 0);
	assert_int_equal(fake_count_prefix(s->cache, CACHE_BUCKET_PREFIX), 2);
	cache_bucket_free(b);
	budget_free(bud);
	free(data);
}

static void done_never(void *user, bool hit)
{
	(void)user;
	(void)hit;
	fail_msg("no fetch may be pending when the budget is short");
}

static void test_short_budget_skips_the_tier(void **state)
{
	struct stores *s = *state;
	struct budget *bud = budget_new(MIB); /* less than a block and its header */
	struct fs_backend be = fake_backend(s->cache, 2000);
	struct cache_bucket_config cfg = {.be = &be,
	                                  .name = "cb",
	                                  .source_bucket = "src-bucket",
	                                  .block_size = MIB,
	                                  .budget = bud};
	struct cache_bucket *b = cache_bucket_new(&cfg);
	struct cache_bucket_stats st;
	char *data = harness_pattern(MIB, 10), *dst = malloc(MIB);
	struct cache_bucket_block blk = {.idx = 0, .len = MIB, .dst = dst};

	cache_bucket_put(b, "k", "etag", 0, data, MIB);
	assert_int_equal(cache_bucket_fetch(b, "k", "etag", &blk, 1, done_never, NULL),
	                 CACHE_BUCKET_MISS);
	fake_drain(s->cache);
	cache_bucket_stats(b, &st);
	assert_int_equal(st.puts_skipped, 1);
	assert_int_equal(st.misses, 1);
	assert_int_equal(fake_calls(s->cache, FAKE_GET) + fake_calls(s->cache, FAKE_PUT), 0);
	assert_int_equal(budget_used(bud), 0);
	cache_bucket_free(b);
	budget_free(bud);
	free(data);
	free(dst);
}

static void test_block_keys(void **state)
{
	char k[CACHE_BUCKET_KEY_MAX], want[CACHE_BUCKET_KEY_MAX], hex[65];
	static const char text[] = "bkt\0dir/a b+c\0etag-1\0"
	                           "1048576";
	char other[6][CACHE_BUCKET_KEY_MAX];

	(void)state;
	/* hpcops-cache-v1/<sha256 of bucket \0 key \0 etag \0 block size>/<index> */
	util_sha256_hex(text, sizeof(text) - 1, hex);
	snprintf(want, sizeof(want), "hpcops-cache-v1/%s/42", hex);
	assert_int_equal(cache_bucket_key("bkt", "dir/a b+c", "etag-1", MIB, 42, k, sizeof(k)), 0);
	assert_string_equal(k, want);
	/* any field changed: another key */
	cache_bucket_key("bkt2", "dir/a b+c", "etag-1", MIB, 42, other[0], sizeof(other[0]));
	cache_bucket_key("bkt", "dir/a b+d", "etag-1", MIB, 42, other[1], sizeof(other[1]));
	cache_bucket_key("bkt", "dir/a b+c", "etag-2", MIB, 42, other[2], sizeof(other[2]));
	cache_bucket_key("bkt", "dir/a b+c", "etag-1", MIB / 2, 42, other[3], sizeof(other[3]));
	cache_bucket_key("bkt", "dir/a b+c", "etag-1", MIB, 43, other[4], sizeof(other[4]));
	/* the separators keep "ab" + "c" apart from "a" + "bc" */
	cache_bucket_key("bk", "tdir/a b+c", "etag-1", MIB, 42, other[5], sizeof(other[5]));
	for (int i = 0; i < 6; i++)
		assert_string_not_equal(k, other[i]);
	/* the longest index fits; a short buffer is refused */
	assert_int_equal(cache_bucket_key("b", "k", "e", MIB, UINT64_MAX, k, sizeof(k)), 0);
	assert_int_equal(cache_bucket_key("b", "k", "e", MIB, 1, k, 40), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_second_node_reads_from_the_cache_bucket, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_changed_object_never_gets_old_blocks, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_damaged_or_foreign_blocks_are_misses, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_failing_cache_bucket_never_fails_a_read, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_disk_tier_in_front_of_the_bucket, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_puts_in_flight_are_bounded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_short_budget_skips_the_tier, setup, teardown),
	    cmocka_unit_test(test_block_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
