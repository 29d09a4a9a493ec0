/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of hpcops-mount's read-side core, no network, no FUSE mount:
 * the memory budget, the inode table (names, kinds, lookups counts,
 * negative entries), the disk tier of the block cache (round trip, ETag
 * and block-size keys, damage, LRU bound) and the bucket check's messages for every cause,
 * including the wrong region that radosgw cannot produce.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "budget.h"
#include "cache.h"
#include "cache_disk.h"
#include "check.h"
#include "fs_errno.h"
#include "inode.h"

/* ---- the errno table ---- */

static void test_errno_table(void **state)
{
	assert_int_equal(fs_errno(S3_OK), 0);
	assert_int_equal(fs_errno(S3_ERR_NO_SUCH_KEY), ENOENT);
	assert_int_equal(fs_errno(S3_ERR_ACCESS_DENIED), EACCES);
	assert_int_equal(fs_errno(S3_ERR_SIGNATURE), EACCES);
	assert_int_equal(fs_errno(S3_ERR_PRECONDITION), ESTALE);
	assert_int_equal(fs_errno(S3_ERR_NETWORK), EIO);
	assert_int_equal(fs_errno(S3_ERR_SERVER), EIO);
	/* a reply that could not be trusted is an I/O error, never a short read */
	assert_int_equal(fs_errno(S3_ERR_PROTOCOL), EIO);
	assert_int_equal(fs_errno(S3_ERR_NOMEM), ENOMEM);
	assert_int_equal(fs_errno(S3_ERR_ENTITY_TOO_LARGE), EFBIG);
	/* every error maps to a non-zero errno */
	for (int i = S3_ERR_NO_SUCH_KEY; i <= S3_ERR_OTHER; i++)
		assert_true(fs_errno((enum s3_err)i) > 0);
}

/* ---- budget ---- */

static void test_budget_try(void **state)
{
	struct budget *b = budget_new(10);

	assert_non_null(b);
	assert_true(budget_try_reserve(b, 6));
	assert_false(budget_try_reserve(b, 5));
	assert_true(budget_try_reserve(b, 4));
	assert_int_equal(budget_used(b), 10);
	budget_release(b, 6);
	assert_int_equal(budget_used(b), 4);
	assert_true(budget_try_reserve(b, 6));
	budget_release(b, 10);
	assert_int_equal(budget_used(b), 0);
	budget_free(b);
}

struct waiter {
	struct budget *b;
	int done;
};

static void *reserve_thread(void *arg)
{
	struct waiter *w = arg;

	budget_reserve(w->b, 8);
	__atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void test_budget_blocking_reserve_waits_for_release(void **state)
{
	struct waiter w = {.b = budget_new(10)};
	pthread_t th;

	assert_true(budget_try_reserve(w.b, 5));
	assert_int_equal(pthread_create(&th, NULL, reserve_thread, &w), 0);
	usleep(100 * 1000);
	assert_int_equal(__atomic_load_n(&w.done, __ATOMIC_SEQ_CST), 0);
	budget_release(w.b, 5);
	pthread_join(th, NULL);
	assert_int_equal(w.done, 1);
	assert_int_equal(budget_used(w.b), 8);
	/* more than the whole limit is granted on an empty budget, never deadlocks */
	budget_release(w.b, 8);
	budget_reserve(w.b, 20);
	assert_int_equal(budget_used(w.b), 20);
	budget_free(w.b);
}

/* ---- inode table ---- */

static void test_inode_names(void **state)
{
	char long_name[300];

	memset(long_name, 'a', sizeof(long_name));
	assert_true(inode_valid_name("a", 1));
	assert_true(inode_valid_name("...", 3));
	assert_false(inode_valid_name("", 0));
	assert_false(inode_valid_name(".", 1));
	assert_false(inode_valid_name("..", 2));
	assert_false(inode_valid_name("a/b", 3));
	assert_true(inode_valid_name(long_name, 255));
	assert_false(inode_valid_name(long_name, 256));
}

static void test_inode_children_and_forget(void **state)
{
	struct inode_table t;
	struct inode *d, *f, *again, *dir2;
	fuse_ino_t fino;

	assert_int_equal(inode_table_init(&t, "pre/"), 0);
	inode_lock(&t);
	d = inode_child_locked(&t, t.root, "dir", INODE_DIR);
	assert_non_null(d);
	assert_string_equal(d->key, "pre/dir/");
	f = inode_child_locked(&t, d, "file", INODE_FILE);
	assert_string_equal(f->key, "pre/dir/file");
	assert_ptr_equal(inode_find_child_locked(&t, d, "file"), f);
	f->nlookup++; /* as if replied to the kernel */
	fino = f->ino;
	inode_put_locked(&t, f);
	again = inode_child_locked(&t, d, "file", INODE_FILE);
	assert_ptr_equal(again, f); /* same name, same kind: same node */
	inode_put_locked(&t, again);
	/* the name becomes a directory: a new node, the old one unreachable */
	dir2 = inode_child_locked(&t, d, "file", INODE_DIR);
	assert_ptr_not_equal(dir2, f);
	assert_true(f->unlinked);
	assert_string_equal(dir2->key, "pre/dir/file/");
	assert_ptr_equal(inode_find_child_locked(&t, d, "file"), dir2);
	inode_put_locked(&t, dir2);
	inode_unlock(&t);
	/* the kernel still knows the old file until it forgets it */
	f = inode_get(&t, fino);
	assert_non_null(f);
	inode_put(&t, f);
	inode_forget(&t, fino, 1);
	assert_null(inode_get(&t, fino));
	inode_lock(&t);
	inode_put_locked(&t, d);
	inode_unlock(&t);
	inode_table_destroy(&t);
}

static void test_inode_negative_entries(void **state)
{
	struct inode_table t;
	struct inode *n;

	assert_int_equal(inode_table_init(&t, ""), 0);
	inode_lock(&t);
	inode_neg_add_locked(&t, t.root, "nope", inode_now() + 60);
	inode_neg_add_locked(&t, t.root, "old", inode_now() - 1);
	assert_true(inode_neg_find_locked(&t, t.root, "nope"));
	assert_false(inode_neg_find_locked(&t, t.root, "old"));
	assert_false(inode_neg_find_locked(&t, t.root, "other"));
	/* creating the name clears its negative entry */
	n = inode_child_locked(&t, t.root, "nope", INODE_FILE);
	assert_false(inode_neg_find_locked(&t, t.root, "nope"));
	inode_set_local_locked(n, true);
	assert_int_equal(t.root->local_children, 1);
	inode_set_local_locked(n, false);
	assert_int_equal(t.root->local_children, 0);
	inode_put_locked(&t, n);
	inode_unlock(&t);
	inode_table_destroy(&t);
}

/* ---- block cache ---- */

static char cache_dir[] = "/tmp/hpcops-cache-test-XXXXXX";

static int cache_setup(void **state)
{
	return mkdtemp(cache_dir) ? 0 : -1;
}

static int cache_teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", cache_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void fill(char *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (char)(seed * 31 + i * 7);
}

static void test_cache_round_trip_and_etag(void **state)
{
	char why[256];
	struct cache_disk *c =
	    cache_disk_new(cache_dir, CACHE_BLOCK_SIZE, 64ULL << 20, why, sizeof(why));
	char *in = malloc(CACHE_BLOCK_SIZE), *out = malloc(CACHE_BLOCK_SIZE);

	assert_non_null(c);
	fill(in, CACHE_BLOCK_SIZE, 1);
	cache_disk_put(c, "k/obj", "etag-1", 3, in, CACHE_BLOCK_SIZE);
	assert_int_equal(cache_disk_get(c, "k/obj", "etag-1", 3, out, CACHE_BLOCK_SIZE),
	                 CACHE_BLOCK_SIZE);
	assert_memory_equal(in, out, CACHE_BLOCK_SIZE);
	/* another ETag (the object changed), key or index: a miss */
	assert_int_equal(cache_disk_get(c, "k/obj", "etag-2", 3, out, CACHE_BLOCK_SIZE), -1);
	assert_int_equal(cache_disk_get(c, "k/obj2", "etag-1", 3, out, CACHE_BLOCK_SIZE), -1);
	assert_int_equal(cache_disk_get(c, "k/obj", "etag-1", 4, out, CACHE_BLOCK_SIZE), -1);
	cache_disk_free(c);
	/* a new instance indexes what is on disk */
	c = cache_disk_new(cache_dir, CACHE_BLOCK_SIZE, 64ULL << 20, why, sizeof(why));
	assert_non_null(c);
	assert_int_equal(cache_disk_get(c, "k/obj", "etag-1", 3, out, CACHE_BLOCK_SIZE),
	                 CACHE_BLOCK_SIZE);
	assert_memory_equal(in, out, CACHE_BLOCK_SIZE);
	cache_disk_free(c);
	free(in);
	free(out);
}

static void test_cache_damaged_block_is_a_miss(void **state)
{
	char why[256], cmd[512];
	struct cache_disk *c =
	    cache_disk_new(cache_dir, CACHE_BLOCK_SIZE, 64ULL << 20, why, sizeof(why));
	char in[1000], out[1000];
	FILE *p;
	char path[512];

	fill(in, sizeof(in), 2);
	cache_disk_put(c, "dmg", "e", 0, in, sizeof(in));
	assert_int_equal(cache_disk_get(c, "dmg", "e", 0, out, sizeof(out)), (ssize_t)sizeof(in));
	/* flip the last byte of the newest block file */
	snprintf(cmd, sizeof(cmd), "ls -t $(find %s -type f) | head -1", cache_dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(path, sizeof(path), p));
	pclose(p);
	path[strcspn(path, "\n")] = '\0';
	{
		FILE *f = fopen(path, "r+b");

		assert_non_null(f);
		fseek(f, -1, SEEK_END);
		fputc(in[sizeof(in) - 1] ^ 0x55, f);
		fclose(f);
	}
	assert_int_equal(cache_disk_get(c, "dmg", "e", 0, out, sizeof(out)), -1);
	assert_int_equal(access(path, F_OK), -1); /* deleted */
	cache_disk_free(c);
}

static void test_cache_lru_bound(void **state)
{
	char why[256];
	/* room for about 3 blocks */
	struct cache_disk *c = cache_disk_new(cache_dir, CACHE_BLOCK_SIZE,
	                                      3 * CACHE_BLOCK_SIZE + 4096, why, sizeof(why));
	char *b = malloc(CACHE_BLOCK_SIZE), *out = malloc(CACHE_BLOCK_SIZE);

	assert_non_null(c);
	for (unsigned i = 0; i < 3; i++) {
		fill(b, CACHE_BLOCK_SIZE, 10 + i);
		cache_disk_put(c, "lru", "e", i, b, CACHE_BLOCK_SIZE);
	}
	/* touch block 0 so block 1 is the least recently used */
	assert_int_equal(cache_disk_get(c, "lru", "e", 0, out, CACHE_BLOCK_SIZE), CACHE_BLOCK_SIZE);
	fill(b, CACHE_BLOCK_SIZE, 13);
	cache_disk_put(c, "lru", "e", 3, b, CACHE_BLOCK_SIZE);
	assert_int_equal(cache_disk_get(c, "lru", "e", 1, out, CACHE_BLOCK_SIZE), -1);
	assert_int_equal(cache_disk_get(c, "lru", "e", 0, out, CACHE_BLOCK_SIZE), CACHE_BLOCK_SIZE);
	assert_int_equal(cache_disk_get(c, "lru", "e", 3, out, CACHE_BLOCK_SIZE), CACHE_BLOCK_SIZE);
	assert_memory_equal(b, out, CACHE_BLOCK_SIZE);
	cache_disk_free(c);
	free(b);
	free(out);
}

/*
 * A mount with another --cache-block-size on the same directory: block 2
 * of 512 KiB blocks ([1 MiB, 1.5 MiB)) has the length of block 2 of 1 MiB
 * blocks when the object ends at 2.5 MiB, and other bytes: never served.
 */
static void test_cache_block_size_is_part_of_the_key(void **state)
{
	char why[256], in[512 * 1024], out[512 * 1024];
	struct cache_disk *c = cache_disk_new(cache_dir, sizeof(in), 64ULL << 20, why, sizeof(why));

	assert_non_null(c);
	fill(in, sizeof(in), 3);
	cache_disk_put(c, "bs", "e", 2, in, sizeof(in));
	assert_int_equal(cache_disk_get(c, "bs", "e", 2, out, sizeof(out)), (ssize_t)sizeof(in));
	cache_disk_free(c);
	c = cache_disk_new(cache_dir, CACHE_BLOCK_SIZE, 64ULL << 20, why, sizeof(why));
	assert_non_null(c);
	assert_int_equal(cache_disk_get(c, "bs", "e", 2, out, sizeof(out)), -1);
	cache_disk_free(c);
}

static void test_cache_unusable_dir_says_why(void **state)
{
	char why[256] = "", file[600];
	struct cache_disk *c;
	FILE *f;

	/* a directory under a regular file cannot be made, not even by root */
	snprintf(file, sizeof(file), "%s/plain", cache_dir);
	f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	strcat(file, "/cache");
	c = cache_disk_new(file, CACHE_BLOCK_SIZE, 0, why, sizeof(why));
	assert_null(c);
	assert_non_null(strstr(why, "cannot create"));
}

/* ---- the bucket check's messages ---- */

static void explain(enum s3_err err, const char *region, char *out, size_t len)
{
	struct s3_error e;

	memset(&e, 0, sizeof(e));
	e.err = err;
	if (region)
		snprintf(e.region, sizeof(e.region), "%s", region);
	snprintf(e.message, sizeof(e.message), "detail");
	check_explain(&e, "bkt", "pre/", "http://127.0.0.1:9", 7, out, len);
}

static void test_check_messages(void **state)
{
	char m[2048];

	explain(S3_ERR_WRONG_REGION, "eu-west-3", m, sizeof(m));
	assert_non_null(strstr(m, "wrong region"));
	assert_non_null(strstr(m, "--region eu-west-3"));
	explain(S3_ERR_WRONG_REGION, NULL, m, sizeof(m));
	assert_non_null(strstr(m, "wrong region"));
	assert_non_null(strstr(m, "--region"));
	explain(S3_ERR_NO_CREDENTIALS, NULL, m, sizeof(m));
	assert_non_null(strstr(m, "no AWS credentials"));
	explain(S3_ERR_ACCESS_DENIED, NULL, m, sizeof(m));
	assert_non_null(strstr(m, "access denied to bucket bkt prefix pre/"));
	explain(S3_ERR_INVALID_ACCESS_KEY, NULL, m, sizeof(m));
	assert_non_null(strstr(m, "access denied"));
	explain(S3_ERR_SIGNATURE, NULL, m, sizeof(m));
	assert_non_null(strstr(m, "signature mismatch"));
	explain(S3_ERR_NO_SUCH_BUCKET, NULL, m, sizeof(m));
	assert_non_null(strstr(m, "no such bucket: bkt"));
	explain(S3_ERR_NETWORK, NULL, m, sizeof(m));
	assert_non_null(strstr(m, "endpoint unreachable"));
	assert_non_null(strstr(m, "http://127.0.0.1:9"));
	/* connected, and nothing came back: not "could not connect" */
	explain(S3_ERR_TIMEOUT, NULL, m, sizeof(m));
	assert_non_null(strstr(m, "connected to http://127.0.0.1:9"));
	assert_non_null(strstr(m, "no answer"));
	assert_non_null(strstr(m, "within 7 s (--check-timeout)"));
	assert_null(strstr(m, "could not connect"));
	explain(S3_ERR_SERVER, NULL, m, sizeof(m));
	assert_non_null(strstr(m, "cannot list bucket bkt"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_errno_table),
	    cmocka_unit_test(test_budget_try),
	    cmocka_unit_test(test_budget_blocking_reserve_waits_for_release),
	    cmocka_unit_test(test_inode_names),
	    cmocka_unit_test(test_inode_children_and_forget),
	    cmocka_unit_test(test_inode_negative_entries),
	    cmocka_unit_test(test_cache_round_trip_and_etag),
	    cmocka_unit_test(test_cache_damaged_block_is_a_miss),
	    cmocka_unit_test(test_cache_lru_bound),
	    cmocka_unit_test(test_cache_block_size_is_part_of_the_key),
	    cmocka_unit_test(test_cache_unusable_dir_says_why),
	    cmocka_unit_test(test_check_messages),
	};

	return cmocka_run_group_tests(tests, cache_setup, cache_teardown);
}
