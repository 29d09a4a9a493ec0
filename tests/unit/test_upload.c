/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the upload machine (fs/upload.c) without a server, over the
 * in-memory store of fake_store.c: the ETag arithmetic, what an upload
 * refuses or charges to the budget, and the failure paths a real server
 * shows only now and then: a Complete or Create whose reply was lost, a
 * part that fails for good, an abort that fails, a wrong ETag.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "budget.h"
#include "fake_store.h"
#include "upload.h"

#define MIB (1024 * 1024)

/* Vectors computed with Python's hashlib: md5(b"part one"), md5(b"part two"). */
static void test_etag_of_parts(void **state)
{
	const char *two[] = {"3303e12af474ca11d85ed2966a932992",
	                     "\"3ea4e15b91a17dc76052c56cfcdf67a2\""};
	char out[80];

	assert_int_equal(upload_etag_of_parts(two, 2, out), 0);
	assert_string_equal(out, "0732917abc3288784e318ac0aab1757a-2");
	assert_int_equal(upload_etag_of_parts(two, 1, out), 0);
	assert_string_equal(out, "a675974b8fb9bfea1d5007ce26896811-1");
}

static void test_etag_of_parts_rejects_non_md5(void **state)
{
	const char *bad[] = {"3303e12af474ca11d85ed2966a93299"}; /* 31 digits */
	const char *bad2[] = {"3303e12af474ca11d85ed2966a93299g"};
	char out[80];

	assert_int_equal(upload_etag_of_parts(bad, 1, out), -EINVAL);
	assert_int_equal(upload_etag_of_parts(bad2, 1, out), -EINVAL);
}

struct fixture {
	struct fake_store *store;
	struct fs_backend be;
	struct budget *budget;
	struct uploader *up;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct uploader_config c = {0};

	f->store = fake_store_new();
	f->be = fake_backend(f->store, 3000);
	f->budget = budget_new(64 * MIB);
	c.be = &f->be;
	c.budget = f->budget;
	c.part_size = 5 * MIB;
	c.max_inflight = 4;
	c.submit_threads = 1;
	f->up = uploader_new(&c);
	assert_non_null(f->up);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	uploader_free(f->up);
	assert_int_equal(budget_used(f->budget), 0); /* everything given back */
	/* a clean exit leaves no multipart upload open */
	assert_int_equal(fake_open_uploads(f->store), 0);
	budget_free(f->budget);
	fake_store_free(f->store);
	free(f);
	return 0;
}

/* @n bytes of a pattern that differs in every part. */
static char *pattern(size_t n)
{
	char *d = malloc(n);

	for (size_t i = 0; i < n; i++)
		d[i] = (char)(i * 7 + (i >> 13));
	return d;
}

/* Write @d (@n bytes) in 1 MiB writes. */
static ssize_t write_all(struct upload *u, const char *d, size_t n)
{
	for (size_t off = 0; off < n;) {
		size_t k = n - off < MIB ? n - off : MIB;
		ssize_t r = upload_write(u, d + off, k, off);

		if (r < 0)
			return r;
		off += k;
	}
	return (ssize_t)n;
}

static void assert_object(struct fixture *f, const char *key, const char *d, size_t n)
{
	size_t len = 0;
	char *got = fake_get(f->store, key, &len);

	assert_non_null(got);
	assert_int_equal(len, n);
	assert_memory_equal(got, d, n);
	free(got);
}

static void test_sequential_only(void **state)
{
	struct fixture *f = *state;
	struct upload *u = upload_new(f->up, "k");
	char buf[100] = {0};

	assert_non_null(u);
	assert_int_equal(upload_write(u, buf, 10, 0), 10);
	assert_int_equal(upload_write(u, buf, 10, 10), 10);
	assert_int_equal(upload_write(u, buf, 10, 30), -EINVAL); /* ahead */
	assert_int_equal(upload_write(u, buf, 10, 5), -EINVAL);  /* back */
	assert_int_equal(upload_size(u), 20);
	assert_int_equal(upload_written(u), 20);
	upload_free(u);
	/* freed without completion: nothing was published */
	assert_int_equal(fake_calls(f->store, FAKE_PUT), 0);
}

static void test_efbig_at_10000_parts(void **state)
{
	struct fixture *f = *state;
	struct upload *u = upload_new(f->up, "k");
	uint64_t limit = 10000ULL * 5 * MIB;
	char buf[2] = {0};

	assert_int_equal(upload_max_size(5 * MIB), limit);
	assert_int_equal(upload_write(u, buf, 1, 0), 1);
	/* ends past the limit: EFBIG even though it is also out of order */
	assert_int_equal(upload_write(u, buf, 2, limit - 1), -EFBIG);
	assert_int_equal(upload_extend(u, limit + 1), -EFBIG);
	assert_int_equal(upload_extend(u, 100), 0); /* zeros, within one part */
	assert_int_equal(upload_size(u), 100);
	assert_int_equal(upload_extend(u, 50), -EINVAL); /* no shrinking */
	upload_free(u);
}

/* A small file costs the budget what it holds, in 1 MiB steps. */
static void test_budget_charged_as_filled(void **state)
{
	struct fixture *f = *state;
	struct upload *u = upload_new(f->up, "k");
	static char mb[MIB + MIB / 2];

	assert_int_equal(budget_used(f->budget), 0);
	assert_int_equal(upload_write(u, mb, 10, 0), 10);
	assert_int_equal(budget_used(f->budget), 1 * MIB);
	assert_int_equal(upload_write(u, mb, sizeof(mb), 10), (ssize_t)sizeof(mb));
	assert_int_equal(budget_used(f->budget), 2 * MIB);
	/* discarding (no multipart started: nothing sent) gives it back */
	assert_int_equal(upload_discard(u), 0);
	assert_int_equal(budget_used(f->budget), 0);
	assert_int_equal(upload_get_state(u), UPLOAD_DISCARDED);
	upload_free(u);
}

static void test_append_nothing_written(void **state)
{
	struct fixture *f = *state;
	struct upload *u = upload_new(f->up, "k");
	char etag[80];

	upload_set_append(u, 1234, "0123456789abcdef0123456789abcdef");
	assert_int_equal(upload_size(u), 1234);
	assert_int_equal(upload_written(u), 0);
	assert_int_equal(upload_write(u, "x", 1, 0), -EINVAL); /* must go at the end */
	/* completing an append that wrote nothing leaves the object alone */
	assert_int_equal(upload_complete(u, etag), 0);
	assert_string_equal(etag, "0123456789abcdef0123456789abcdef");
	assert_int_equal(upload_get_state(u), UPLOAD_DONE);
	assert_int_equal(upload_write(u, "x", 1, 1234), -EINVAL); /* after completion */
	upload_free(u);
}

static void test_small_file_one_put(void **state)
{
	struct fixture *f = *state;
	struct upload *u = upload_new(f->up, "small");
	char etag[80], want[80];

	assert_int_equal(upload_write(u, "hello", 5, 0), 5);
	assert_int_equal(upload_complete(u, etag), 0);
	assert_true(fake_etag(f->store, "small", want));
	assert_string_equal(etag, want);
	assert_object(f, "small", "hello", 5);
	assert_int_equal(fake_calls(f->store, FAKE_CREATE), 0);
	/* an empty file is an object too */
	upload_free(u);
	u = upload_new(f->up, "empty");
	assert_int_equal(upload_complete(u, etag), 0);
	assert_object(f, "empty", "", 0);
	upload_free(u);
}

static void test_multipart_round_trip(void **state)
{
	struct fixture *f = *state;
	size_t n = 12 * MIB + 123;
	char *d = pattern(n), etag[80], want[80];
	struct upload *u = upload_new(f->up, "big");

	assert_int_equal(write_all(u, d, n), (ssize_t)n);
	assert_int_equal(upload_get_state(u), UPLOAD_STREAMING);
	assert_int_equal(upload_complete(u, etag), 0);
	assert_int_equal(upload_get_state(u), UPLOAD_DONE);
	assert_object(f, "big", d, n);
	assert_true(fake_etag(f->store, "big", want));
	assert_string_equal(etag, want);
	assert_non_null(strstr(etag, "-3")); /* three parts: 5 + 5 + 2 MiB */
	/* complete is idempotent: the first result again */
	assert_int_equal(upload_complete(u, etag), 0);
	assert_int_equal(fake_calls(f->store, FAKE_COMPLETE), 1);
	upload_free(u);
	free(d);
}

/* Issue 10 row 4: Complete done, its reply lost: found out, reported as success. */
static void test_lost_complete_reply_is_verified(void **state)
{
	struct fixture *f = *state;
	size_t n = 11 * MIB;
	char *d = pattern(n), etag[80], want[80];
	struct upload *u = upload_new(f->up, "lostc");

	fake_faults(f->store)->lose_complete = 1;
	assert_int_equal(write_all(u, d, n), (ssize_t)n);
	assert_int_equal(upload_complete(u, etag), 0);
	assert_object(f, "lostc", d, n);
	assert_true(fake_etag(f->store, "lostc", want));
	assert_string_equal(etag, want);
	/* no second Complete was sent blindly: a HEAD told */
	assert_int_equal(fake_calls(f->store, FAKE_COMPLETE), 1);
	assert_true(fake_calls(f->store, FAKE_HEAD) >= 1);
	upload_free(u);
	free(d);
}

/* Complete lost before it was done: the upload is still there, sent again. */
static void test_unknown_complete_not_done_is_sent_again(void **state)
{
	struct fixture *f = *state;
	size_t n = 6 * MIB;
	char *d = pattern(n);
	struct upload *u = upload_new(f->up, "again");

	fake_faults(f->store)->fail_complete_net = 2;
	fake_faults(f->store)->fail_head = 1; /* and the first check cannot be made */
	assert_int_equal(write_all(u, d, n), (ssize_t)n);
	assert_int_equal(upload_complete(u, NULL), 0);
	assert_object(f, "again", d, n);
	assert_int_equal(fake_calls(f->store, FAKE_COMPLETE), 3);
	assert_true(fake_calls(f->store, FAKE_LIST_PARTS) >= 2);
	upload_free(u);
	free(d);
}

/* Issue 10 row 5: a lost CreateMultipartUpload reply leaves no orphan. */
static void test_lost_create_reply_leaves_no_orphan(void **state)
{
	struct fixture *f = *state;
	size_t n = 7 * MIB;
	char *d = pattern(n);
	struct upload *u = upload_new(f->up, "lostcreate");

	fake_faults(f->store)->lose_create = 1;
	assert_int_equal(write_all(u, d, n), (ssize_t)n);
	/* two creates (the first made an upload whose id we never saw) ... */
	assert_int_equal(fake_calls(f->store, FAKE_CREATE), 2);
	/* ... and the orphan was found and aborted at once */
	assert_int_equal(fake_open_uploads(f->store), 1);
	assert_int_equal(upload_complete(u, NULL), 0);
	assert_int_equal(fake_open_uploads(f->store), 0);
	assert_object(f, "lostcreate", d, n);
	upload_free(u);
	free(d);
}

/* A part that fails for good: loud errors, the upload aborted, no object. */
static void test_failed_part_aborts(void **state)
{
	struct fixture *f = *state;
	size_t n = 16 * MIB;
	char *d = pattern(n);
	struct upload *u = upload_new(f->up, "failpart");
	ssize_t w;

	fake_faults(f->store)->fail_part = 2;
	w = write_all(u, d, n);
	/* the failure shows on a later write or on close, never as success */
	if (w >= 0)
		assert_int_equal(upload_complete(u, NULL), -EIO);
	else
		assert_int_equal(w, -EIO);
	assert_int_equal(upload_complete(u, NULL), -EIO);
	assert_int_equal(upload_get_state(u), UPLOAD_FAILED);
	assert_int_equal(upload_error(u), EIO);
	assert_int_equal(upload_write(u, "x", 1, upload_size(u)), -EIO);
	assert_int_equal(fake_open_uploads(f->store), 0);
	assert_null(fake_get(f->store, "failpart", &(size_t){0}));
	upload_free(u);
	free(d);
}

/* Issue 10 row 3: an abort that fails is retried in the background. */
static void test_failed_abort_is_retried(void **state)
{
	struct fixture *f = *state;
	size_t n = 11 * MIB;
	char *d = pattern(n);
	struct upload *u = upload_new(f->up, "failabort");

	fake_faults(f->store)->fail_part = 1;
	fake_faults(f->store)->fail_abort = 2;
	write_all(u, d, n);
	assert_int_equal(upload_complete(u, NULL), -EIO);
	/* the abort failed: the upload is still open, and owed */
	assert_int_equal(fake_open_uploads(f->store), 1);
	assert_int_equal(uploader_pending_aborts(f->up), 1);
	upload_free(u);
	/* the janitor tries again (after 1 s, then 2 s): gone within a few seconds */
	for (int i = 0; i < 80 && fake_open_uploads(f->store); i++)
		usleep(100000);
	assert_int_equal(fake_open_uploads(f->store), 0);
	assert_int_equal(uploader_pending_aborts(f->up), 0);
	assert_true(fake_calls(f->store, FAKE_ABORT) >= 3);
	free(d);
}

/* An abort still owed at the end is tried again by uploader_free (unmount). */
static void test_owed_abort_done_at_unmount(void **state)
{
	struct fixture *f = *state;
	size_t n = 11 * MIB;
	char *d = pattern(n);
	struct upload *u = upload_new(f->up, "owed");

	fake_faults(f->store)->fail_part = 1;
	fake_faults(f->store)->fail_abort = 1;
	write_all(u, d, n);
	assert_int_equal(upload_complete(u, NULL), -EIO);
	upload_free(u);
	assert_int_equal(fake_open_uploads(f->store), 1);
	/* teardown's uploader_free drains it; teardown asserts none is open */
	free(d);
}

/* The completed object must have the ETag its parts make, or it is removed. */
static void test_wrong_etag_deletes_and_fails(void **state)
{
	struct fixture *f = *state;
	size_t n = 6 * MIB;
	char *d = pattern(n);
	struct upload *u = upload_new(f->up, "wrongetag");

	fake_faults(f->store)->wrong_etag = true;
	assert_int_equal(write_all(u, d, n), (ssize_t)n);
	assert_int_equal(upload_complete(u, NULL), -EIO);
	assert_null(fake_get(f->store, "wrongetag", &(size_t){0}));
	assert_int_equal(fake_calls(f->store, FAKE_DELETE), 1);
	upload_free(u);
	free(d);
}

static void test_state_names(void **state)
{
	assert_string_equal(upload_state_name(UPLOAD_OPEN), "OPEN");
	assert_string_equal(upload_state_name(UPLOAD_COMPLETING), "COMPLETING");
	assert_string_equal(upload_state_name(UPLOAD_VERIFYING), "VERIFYING");
	assert_string_equal(upload_state_name(UPLOAD_DISCARDED), "DISCARDED");
}

static void test_content_types(void **state)
{
	assert_string_equal(upload_content_type("a/b/out.txt"), "text/plain");
	assert_string_equal(upload_content_type("x.JSON"), "application/json");
	assert_string_equal(upload_content_type("run.h5"), "application/x-hdf5");
	assert_null(upload_content_type("dir.d/noext"));
	assert_null(upload_content_type("trailing."));
	assert_null(upload_content_type("a.unknownext"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_etag_of_parts),
	    cmocka_unit_test(test_etag_of_parts_rejects_non_md5),
	    cmocka_unit_test(test_state_names),
	    cmocka_unit_test(test_content_types),
	    cmocka_unit_test_setup_teardown(test_sequential_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_efbig_at_10000_parts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_budget_charged_as_filled, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_append_nothing_written, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_small_file_one_put, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_multipart_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lost_complete_reply_is_verified, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_complete_not_done_is_sent_again, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_lost_create_reply_leaves_no_orphan, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_failed_part_aborts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_abort_is_retried, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_owed_abort_done_at_unmount, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_etag_deletes_and_fails, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
