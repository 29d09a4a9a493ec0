/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of fs/upload.c without a server: the multipart ETag the
 * completed object must have, and what an upload refuses or charges to the
 * memory budget before its first part would go out.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "budget.h"
#include "upload.h"

#define MIB (1024 * 1024)

/* Vectors computed with Python's hashlib: md5(b"part one"), md5(b"part two"). */
static void test_etag_of_parts(void **state)
{
	const char *two[] = {"3303e12af474ca11d85ed2966a932992",
	                     "\"3ea4e15b91a17dc76052c56cfcdf67a2\""};
	char out[80];

	(void)state;
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

	(void)state;
	assert_int_equal(upload_etag_of_parts(bad, 1, out), -EINVAL);
	assert_int_equal(upload_etag_of_parts(bad2, 1, out), -EINVAL);
}

struct fixture {
	struct budget *budget;
	struct upload_params p;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->budget = budget_new(64 * MIB);
	f->p.s3 = NULL; /* nothing here may reach S3: all within one part */
	f->p.budget = f->budget;
	f->p.part_size = 5 * MIB;
	f->p.max_inflight = 4;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(budget_used(f->budget), 0); /* everything given back */
	budget_free(f->budget);
	free(f);
	return 0;
}

static void test_sequential_only(void **state)
{
	struct fixture *f = *state;
	struct upload *u = upload_new(&f->p, "k");
	char buf[100] = {0};

	assert_non_null(u);
	assert_int_equal(upload_write(u, buf, 10, 0), 10);
	assert_int_equal(upload_write(u, buf, 10, 10), 10);
	assert_int_equal(upload_write(u, buf, 10, 30), -EINVAL); /* ahead */
	assert_int_equal(upload_write(u, buf, 10, 5), -EINVAL);  /* back */
	assert_int_equal(upload_size(u), 20);
	assert_int_equal(upload_written(u), 20);
	upload_free(u);
}

static void test_efbig_at_10000_parts(void **state)
{
	struct fixture *f = *state;
	struct upload *u = upload_new(&f->p, "k");
	uint64_t limit = 10000ULL * 5 * MIB;
	char buf[2] = {0};

	assert_int_equal(upload_max_size(&f->p), limit);
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
	struct upload *u = upload_new(&f->p, "k");
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
	struct upload *u = upload_new(&f->p, "k");
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_etag_of_parts),
	    cmocka_unit_test(test_etag_of_parts_rejects_non_md5),
	    cmocka_unit_test_setup_teardown(test_sequential_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_efbig_at_10000_parts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_budget_charged_as_filled, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_append_nothing_written, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
