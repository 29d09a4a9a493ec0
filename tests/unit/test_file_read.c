/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of read handles (fs/file_read.c over fs/prefetch.c) without
 * FUSE or a server, over the in-memory store of fake_store.c: the bytes a
 * reader gets, that readers of one object share what is fetched, and what
 * a changed object or a failing GET gives (an errno, never wrong bytes).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "file_read.h"
#include "fs_harness.h"
#include "namespace.h"

#define MIB       (1024 * 1024)
#define PART      (2 * MIB)    /* --read-part-size of these tests */
#define READ_SIZE (128 * 1024) /* what the kernel's readahead asks for at a time */

static int setup(void **state)
{
	struct fs_harness *h = harness_new();

	assert_non_null(h);
	h->fs.opt.read_part_size = PART;
	h->fs.opt.memory_limit = 64 * MIB;
	assert_int_equal(harness_start(h), 0);
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	/* every part given back to the memory budget */
	assert_int_equal(harness_free(*state), 0);
	return 0;
}

static struct fs_handle *open_read(struct fs_harness *h, const char *path, int flags)
{
	long long ino = harness_lookup(h, path);
	struct fs_handle *fh = NULL;
	struct fr_open_flags of;

	assert_true(ino > 0);
	assert_int_equal(fr_open(&h->fs, (fuse_ino_t)ino, flags, false, &fh, &of), 0);
	assert_non_null(fh);
	return fh;
}

/* read(2) of @size bytes at @off into @dst: the bytes got, or -errno. */
static ssize_t read_at(struct fs_harness *h, struct fs_handle *fh, void *dst, size_t size,
                       uint64_t off)
{
	struct prefetch_reply r;
	size_t n = 0;
	int rc = fr_read(&h->fs, fh, size, off, &r);

	if (rc < 0)
		return rc;
	for (int i = 0; i < r.n_iov; i++) {
		assert_true(n + r.iov[i].iov_len <= size);
		memcpy((char *)dst + n, r.iov[i].iov_base, r.iov[i].iov_len);
		n += r.iov[i].iov_len;
	}
	prefetch_reply_done(&r);
	return (ssize_t)n;
}

/* Read the whole file as cat does, to the first empty read; assert it is @want. */
static void assert_reads_as(struct fs_harness *h, struct fs_handle *fh, const char *want,
                            size_t size)
{
	char *got = malloc(size + READ_SIZE);
	uint64_t off = 0;
	ssize_t n;

	for (;;) {
		n = read_at(h, fh, got + off, READ_SIZE, off);
		if (n <= 0)
			break;
		off += (uint64_t)n;
	}
	assert_int_equal(n, 0);
	assert_int_equal(off, size);
	assert_memory_equal(got, want, size);
	free(got);
}

/* ---- bytes ---- */

static void test_read_exact_bytes(void **state)
{
	struct fs_harness *h = *state;
	static const size_t sizes[] = {0, 1, 4096, MIB, MIB + 1, 3 * PART + 12345, 5 * PART};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char key[32], tail[16];
		char *d = harness_pattern(sizes[i], (unsigned)i);
		struct fs_handle *fh;

		snprintf(key, sizeof(key), "obj%zu", i);
		fake_put(h->store, key, d, sizes[i]);
		fh = open_read(h, key, O_RDONLY);
		assert_reads_as(h, fh, d, sizes[i]);
		/* past the end: nothing, not an error */
		assert_int_equal(read_at(h, fh, tail, sizeof(tail), sizes[i] + 10), 0);
		fr_release(&h->fs, fh);
		free(d);
	}
}

/* Reads out of order and across part boundaries get the bytes at their offsets. */
static void test_read_random_offsets(void **state)
{
	struct fs_harness *h = *state;
	size_t size = 4 * PART + 777;
	char *d = harness_pattern(size, 9);
	static const struct {
		uint64_t off;
		size_t len;
	} reads[] = {
	    {3 * PART - 100, 200},  /* across a part boundary, far from the start */
	    {0, 10},                /* back to the start */
	    {MIB - 1, 2},           /* across the first 1 MiB request */
	    {4 * PART + 700, 4096}, /* the tail: shorter than asked */
	    {PART, READ_SIZE},
	    {PART + READ_SIZE, READ_SIZE},
	    {7, 1},
	};
	struct fs_handle *fh;
	char buf[READ_SIZE];

	fake_put(h->store, "rnd", d, size);
	fh = open_read(h, "rnd", O_RDONLY);
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
		size_t want =
		    reads[i].off + reads[i].len > size ? size - reads[i].off : reads[i].len;

		assert_int_equal(read_at(h, fh, buf, reads[i].len, reads[i].off), (ssize_t)want);
		assert_memory_equal(buf, d + reads[i].off, want);
	}
	fr_release(&h->fs, fh);
	free(d);
}

/* ---- sharing ---- */

struct reader {
	struct fs_harness *h;
	struct fs_handle *fh;
	pthread_barrier_t *step;
	char *got;
	size_t size;
	int err;
};

static void *read_in_step(void *arg)
{
	struct reader *r = arg;

	for (uint64_t off = 0;; off += READ_SIZE) {
		ssize_t n;

		pthread_barrier_wait(r->step); /* both readers at the same offset */
		n = off < r->size ? read_at(r->h, r->fh, r->got + off, READ_SIZE, off) : 0;
		if (n < 0)
			r->err = (int)-n;
		if (off >= r->size)
			break;
	}
	return NULL;
}

/* Two readers of one object started together fetch it about once, not twice. */
static void test_two_readers_share_parts(void **state)
{
	struct fs_harness *h = *state;
	size_t size = 8 * PART + 5000;
	char *d = harness_pattern(size, 4);
	pthread_barrier_t step;
	struct reader r[2];
	pthread_t t[2];
	size_t before;

	fake_put(h->store, "shared.bin", d, size);
	pthread_barrier_init(&step, NULL, 2);
	for (int i = 0; i < 2; i++) {
		r[i] = (struct reader){.h = h, .step = &step, .size = size};
		r[i].got = malloc(size + READ_SIZE);
		r[i].fh = open_read(h, "shared.bin", O_RDONLY);
	}
	before = fake_bytes_got(h->store);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, read_in_step, &r[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r[i].err, 0);
		assert_memory_equal(r[i].got, d, size);
		fr_release(&h->fs, r[i].fh);
		free(r[i].got);
	}
	fake_drain(h->store);
	/* every byte came from S3 once (twice would mean nothing was shared) */
	assert_true(fake_bytes_got(h->store) - before >= size);
	assert_true(fake_bytes_got(h->store) - before <= size + size / 8);
	pthread_barrier_destroy(&step);
	free(d);
}

/* ---- a changed object ---- */

/*
 * The object is replaced (new ETag, same size, other bytes) while it is
 * read: every read gives the old version's bytes or ESTALE, never the new
 * ones, and ESTALE sticks. A new open after the TTL reads the new version.
 */
static void test_changed_object_estale(void **state)
{
	struct fs_harness *h = *state;
	size_t size = 6 * PART;
	char *v1 = harness_pattern(size, 1), *v2 = harness_pattern(size, 2);
	char *buf = malloc(READ_SIZE);
	struct fs_handle *fh;
	bool stale = false;
	uint64_t off;

	fake_put(h->store, "moving", v1, size);
	fh = open_read(h, "moving", O_RDONLY);
	assert_int_equal(read_at(h, fh, buf, READ_SIZE, 0), READ_SIZE);
	assert_memory_equal(buf, v1, READ_SIZE);

	fake_put(h->store, "moving", v2, size);
	for (off = READ_SIZE; off < size; off += READ_SIZE) {
		ssize_t n = read_at(h, fh, buf, READ_SIZE, off);

		if (n == -ESTALE) {
			stale = true;
			continue;
		}
		assert_false(stale); /* once stale, always stale */
		assert_int_equal(n, READ_SIZE);
		assert_memory_equal(buf, v1 + off, READ_SIZE);
	}
	/* more of it than the first window covers was read: the change was seen */
	assert_true(stale);
	assert_int_equal(read_at(h, fh, buf, READ_SIZE, 0), -ESTALE);
	fr_release(&h->fs, fh);

	/* after the TTL the name has the new version, and reads give it whole */
	h->fs.opt.metadata_ttl = 0;
	fh = open_read(h, "moving", O_RDONLY);
	assert_reads_as(h, fh, v2, size);
	fr_release(&h->fs, fh);
	free(v1);
	free(v2);
	free(buf);
}

/* Replaced after the open and before the first read: the new version, whole. */
static void test_changed_before_first_read(void **state)
{
	struct fs_harness *h = *state;
	size_t size = 3 * PART;
	char *v1 = harness_pattern(size, 1), *v2 = harness_pattern(size, 2);
	struct fs_handle *fh;

	fake_put(h->store, "early", v1, size);
	fh = open_read(h, "early", O_RDONLY);
	fake_put(h->store, "early", v2, size);
	assert_reads_as(h, fh, v2, size);
	fr_release(&h->fs, fh);
	free(v1);
	free(v2);
}

/* ---- failing GETs ---- */

/* GETs that fail for good: EIO (5xx) or EACCES (403), no bytes; a later open reads it. */
static void test_get_fails_persistently(void **state)
{
	struct fs_harness *h = *state;
	size_t size = 3 * PART;
	char *d = harness_pattern(size, 5);
	char *buf = malloc(READ_SIZE);
	struct fs_handle *fh;

	fake_put(h->store, "bad", d, size);
	fake_fail_op(h->store, FAKE_GET, 0, -1, S3_ERR_SERVER, 503);
	fh = open_read(h, "bad", O_RDONLY);
	assert_int_equal(read_at(h, fh, buf, READ_SIZE, 0), -EIO);
	assert_int_equal(read_at(h, fh, buf, READ_SIZE, 0), -EIO);
	assert_int_equal(read_at(h, fh, buf, READ_SIZE, 2 * PART), -EIO); /* a far read */
	fr_release(&h->fs, fh);

	fake_fail_op(h->store, FAKE_GET, 0, -1, S3_ERR_ACCESS_DENIED, 403);
	fh = open_read(h, "bad", O_RDONLY);
	assert_int_equal(read_at(h, fh, buf, READ_SIZE, 0), -EACCES);
	fr_release(&h->fs, fh);

	/* the short-body case of the engine (a reply that could not be trusted) */
	fake_fail_op(h->store, FAKE_GET, 0, 0, S3_OK, 0);
	fake_faults(h->store)->get_short = 1000;
	fh = open_read(h, "bad", O_RDONLY);
	assert_int_equal(read_at(h, fh, buf, READ_SIZE, 0), -EIO);
	fr_release(&h->fs, fh);
	fake_drain(h->store);

	/* S3 answers again: a failure was not kept for other readers */
	fake_faults(h->store)->get_short = 0;
	fh = open_read(h, "bad", O_RDONLY);
	assert_reads_as(h, fh, d, size);
	fr_release(&h->fs, fh);
	free(buf);
	free(d);
}

/*
 * One GET fails (after the engine's own retries), the next ones succeed:
 * the read that needed it fails with EIO, reads before it have the right
 * bytes, and no read ever returns wrong bytes. Retrying the read on the
 * same handle gets the bytes.
 */
static void test_get_fails_once(void **state)
{
	struct fs_harness *h = *state;
	size_t size = 5 * PART;
	char *d = harness_pattern(size, 6);
	char *buf = malloc(READ_SIZE);
	struct fs_handle *fh;
	bool failed = false;

	fake_put(h->store, "flaky", d, size);
	/* the first GET (the open's first 1 MiB) fails */
	fake_fail_op(h->store, FAKE_GET, 0, 1, S3_ERR_SERVER, 503);
	fh = open_read(h, "flaky", O_RDONLY);
	assert_int_equal(read_at(h, fh, buf, READ_SIZE, 0), -EIO);
	assert_int_equal(read_at(h, fh, buf, READ_SIZE, 0), READ_SIZE);
	assert_memory_equal(buf, d, READ_SIZE);
	fr_release(&h->fs, fh);

	/* a GET further on fails: a reader going on sees EIO there, then its bytes */
	fake_fail_op(h->store, FAKE_GET, 3, 1, S3_ERR_SERVER, 503);
	fh = open_read(h, "flaky", O_RDONLY);
	for (uint64_t off = 0; off < size;) {
		ssize_t n = read_at(h, fh, buf, READ_SIZE, off);

		if (n == -EIO && !failed) {
			failed = true;
			continue; /* as an application that retries */
		}
		assert_int_equal(n, READ_SIZE);
		assert_memory_equal(buf, d + off, READ_SIZE);
		off += READ_SIZE;
	}
	assert_true(failed);
	fr_release(&h->fs, fh);
	free(buf);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_read_exact_bytes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_random_offsets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_readers_share_parts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_changed_object_estale, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_changed_before_first_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_get_fails_persistently, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_get_fails_once, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
