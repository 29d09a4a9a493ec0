/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_mountio: the job wrapper's reader of the mount's Prometheus text
 * metrics (tolerant of everything the format allows and of lines it does
 * not understand) and the job's I/O computed from two readings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mountio.h"

static void test_parse_format(void **state)
{
	struct mountio_sample s;
	const char text[] =
	    "# HELP hpcops_fs_bytes_written_total Bytes written.\n"
	    "# TYPE hpcops_fs_bytes_written_total counter\n"
	    "hpcops_fs_bytes_written_total{mount=\"/a\"} 1000 1700000000000\n"
	    "hpcops_fs_bytes_written_total{mount=\"/b \\\"q\\\" } , x\"} 24\r\n"
	    "hpcops_fs_bytes_written_total_created 1.7e9\n"
	    "hpcops_fs_bytes_read_totalx 5\n"
	    "  hpcops_fs_bytes_read_total   3.5e3  \n"
	    "hpcops_fs_files_created_total{} 7\n"
	    "hpcops_fs_errors_total{op=\"write\",errno=\"EIO\"} 2\n"
	    "hpcops_fs_errors_total{errno=\"EIO\",op=\"read\"} 1\n"
	    "hpcops_fs_errors_total{errno=\"ENOSPC\"} 4\n"
	    "hpcops_fs_errors_total 1\n"
	    "hpcops_fs_errors_total{errno=\"EIO\"} NaN\n"
	    "hpcops_fs_errors_total{errno=\"EIO\"} +Inf\n"
	    "hpcops_fs_errors_total{errno=\"EIO\"} -3\n"
	    "hpcops_fs_errors_total{errno=\"EIO\" 9\n" /* malformed labels: skipped */
	    "garbage line without value\n"
	    "hpcops_fs_files_created_total 1"; /* no final newline */

	assert_int_equal(mountio_parse(text, strlen(text), &s), 9);
	assert_true(s.bytes_written == 1024);
	assert_true(s.bytes_read == 3500);
	assert_true(s.files_created == 8);
	assert_true(s.errors == 8);
	assert_int_equal(s.n_errnos, 3);
	assert_string_equal(s.errnos[0].name, "EIO");
	assert_true(s.errnos[0].count == 3);
	assert_string_equal(s.errnos[1].name, "ENOSPC");
	assert_string_equal(s.errnos[2].name, ""); /* errors without an errno label */
	for (int i = 0; i < 4; i++)
		assert_true(s.found[i]);

	assert_int_equal(mountio_parse("", 0, &s), 0);
	assert_int_equal(mountio_parse("# only comments\nother_metric 3\n", 31, &s), 0);
}

static void test_delta(void **state)
{
	struct mountio_sample a, b;
	const char t1[] =
	    "hpcops_fs_bytes_written_total 100\nhpcops_fs_bytes_read_total 50\n"
	    "hpcops_fs_files_created_total 1\nhpcops_fs_errors_total{errno=\"EIO\"} 2\n";
	const char t2[] =
	    "hpcops_fs_bytes_written_total 4196\nhpcops_fs_bytes_read_total 50\n"
	    "hpcops_fs_files_created_total 3\nhpcops_fs_errors_total{errno=\"EIO\"} 3\n"
	    "hpcops_fs_errors_total{errno=\"EROFS\"} 1\n";
	const char t3[] = "hpcops_fs_bytes_written_total 10\n"; /* the mount restarted */
	json_t *d;

	mountio_parse(t1, strlen(t1), &a);
	mountio_parse(t2, strlen(t2), &b);
	d = mountio_delta_json(&a, &b, true, "/run/m.prom", NULL);
	assert_int_equal(json_integer_value(json_object_get(d, "bytes_written")), 4096);
	assert_int_equal(json_integer_value(json_object_get(d, "bytes_read")), 0);
	assert_int_equal(json_integer_value(json_object_get(d, "files_created")), 2);
	assert_int_equal(json_integer_value(json_object_get(d, "errors")), 2);
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(d, "errors_by_errno"), "EIO")), 1);
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(d, "errors_by_errno"), "EROFS")), 1);
	assert_true(json_is_true(json_object_get(d, "exact")));
	assert_null(json_object_get(d, "note"));
	json_decref(d);

	mountio_parse(t3, strlen(t3), &b);
	d = mountio_delta_json(&a, &b, true, "/run/m.prom", "shared");
	assert_int_equal(json_integer_value(json_object_get(d, "bytes_written")), 10);
	assert_true(json_is_false(json_object_get(d, "exact")));
	assert_non_null(strstr(json_string_value(json_object_get(d, "note")), "shared; a counter"));
	json_decref(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_format),
	    cmocka_unit_test(test_delta),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
