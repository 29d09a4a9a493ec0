/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Suite unit: the log's three spellings (text, keyvalue, JSON) of lines a
 * collector must read back as written: object keys with newlines, quotes,
 * backslashes, an ESC, invalid UTF-8, and a request id.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "log.h"

static const char nasty[] = "key \"q\" back\\slash\nFORGED: notice: ok\x1b[31m \xc3\xbc \xff end";

/* Log @n lines in @f to a fresh file; returns its text (malloc'd). */
static char *log_lines(enum log_format f, int n)
{
	char path[] = "/tmp/hpcops-test-log-XXXXXX";
	int fd = mkstemp(path);
	char *text;
	long len;
	FILE *fp;

	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(log_init(LOG_DEST_FILE, path, "hpcops-test", LOG_DEBUG), 0);
	log_set_format(f);
	for (int i = 0; i < n; i++)
		log_msg(LOG_WARNING, i ? "tx0001-req" : NULL, "upload of '%s': line %d", nasty, i);
	log_debug("plain");
	log_close();
	log_set_format(LOG_FORMAT_TEXT);
	fp = fopen(path, "r");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	rewind(fp);
	text = calloc(1, (size_t)len + 1);
	assert_int_equal(fread(text, 1, (size_t)len, fp), (size_t)len);
	fclose(fp);
	unlink(path);
	return text;
}

static int count_lines(const char *t)
{
	int n = 0;

	for (; *t; t++)
		n += *t == '\n';
	return n;
}

static void test_text_escapes_one_line_each(void **state)
{
	char *t = log_lines(LOG_FORMAT_TEXT, 2);

	assert_int_equal(count_lines(t), 3); /* the key's newline did not make a line */
	assert_non_null(
	    strstr(t, "hpcops-test: warning: upload of 'key \"q\" back\\\\slash\\nFORGED"));
	assert_non_null(strstr(t, "\\x1b[31m"));
	assert_non_null(strstr(t, "[req tx0001-req] "));
	assert_null(strchr(t, '\x1b'));
	free(t);
}

static void test_json_lines_parse_back_to_the_message(void **state)
{
	char *t = log_lines(LOG_FORMAT_JSON, 2), *save = NULL, *line;
	char want[256];
	int i = 0;

	assert_int_equal(count_lines(t), 3);
	for (line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
		json_error_t err;
		json_t *j = json_loads(line, 0, &err);
		const char *msg, *level, *time, *prog;

		if (!j)
			fail_msg("line %d is not JSON (%s): %s", i, err.text, line);
		msg = json_string_value(json_object_get(j, "msg"));
		level = json_string_value(json_object_get(j, "level"));
		time = json_string_value(json_object_get(j, "time"));
		prog = json_string_value(json_object_get(j, "prog"));
		assert_non_null(msg);
		assert_non_null(time);
		assert_int_equal(strlen(time), strlen("2026-12-01T23:04:23.123456Z"));
		assert_string_equal(prog, "hpcops-test");
		if (i < 2) {
			/* the message comes back as written, the invalid byte as U+FFFD */
			snprintf(want, sizeof(want), "upload of '%.*s\xef\xbf\xbd end': line %d",
			         (int)(strlen(nasty) - strlen("\xff end")), nasty, i);
			assert_string_equal(msg, want);
			assert_string_equal(level, "warning");
			if (i == 1)
				assert_string_equal(json_string_value(json_object_get(j, "req")),
				                    "tx0001-req");
			else
				assert_null(json_object_get(j, "req"));
		} else {
			assert_string_equal(msg, "plain");
			assert_string_equal(level, "debug");
		}
		json_decref(j);
	}
	assert_int_equal(i, 3);
	free(t);
}

static void test_keyvalue_quotes_and_escapes(void **state)
{
	char *t = log_lines(LOG_FORMAT_KEYVALUE, 2);

	assert_int_equal(count_lines(t), 3);
	assert_non_null(strstr(t, " level=warning prog=hpcops-test msg=\"upload of 'key \\\"q\\\" "
	                          "back\\\\slash\\nFORGED: notice: ok\\x1b[31m"));
	assert_non_null(strstr(t, " req=\"tx0001-req\" msg=\""));
	assert_non_null(strstr(t, "level=debug prog=hpcops-test msg=\"plain\"\n"));
	assert_true(strncmp(t, "time=", 5) == 0);
	assert_null(strchr(t, '\x1b'));
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text_escapes_one_line_each),
	    cmocka_unit_test(test_json_lines_parse_back_to_the_message),
	    cmocka_unit_test(test_keyvalue_quotes_and_escapes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
