/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_endpoint: endpoint resolution in the SDK order (flag, service
 * variable, AWS_ENDPOINT_URL, regional default) and Host header derivation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "endpoint.h"

static int clear_env(void **state)
{
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_ENDPOINT_URL_S3");
	unsetenv("AWS_ENDPOINT_URL_STS");
	unsetenv("AWS_ENDPOINT_URL_CLOUDFORMATION");
	unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	return 0;
}

static void expect(const char *svc, const char *flag, const char *region, const char *want)
{
	char err[256];
	char *url = NULL;

	assert_int_equal(endpoint_resolve(svc, flag, region, &url, err, sizeof(err)), 0);
	assert_non_null(url);
	assert_string_equal(url, want);
	free(url);
}

static void regional_defaults(void **state)
{
	expect("s3", NULL, "eu-west-1", "https://s3.eu-west-1.amazonaws.com");
	expect("cloudformation", NULL, "us-west-2",
	       "https://cloudformation.us-west-2.amazonaws.com");
	expect("sts", NULL, "ap-southeast-2", "https://sts.ap-southeast-2.amazonaws.com");
	expect("sts", NULL, NULL, "https://sts.us-east-1.amazonaws.com");
	expect("s3", "", "", "https://s3.us-east-1.amazonaws.com");
	expect("s3", NULL, "cn-north-1", "https://s3.cn-north-1.amazonaws.com.cn");
}

static void order_of_precedence(void **state)
{
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000", 1);
	expect("s3", NULL, "eu-west-1", "http://127.0.0.1:9000");
	expect("sts", NULL, "eu-west-1", "http://127.0.0.1:9000");

	setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:7480/", 1);
	setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", "http://127.0.0.1:5000", 1);
	expect("s3", NULL, "eu-west-1", "http://127.0.0.1:7480");
	expect("cloudformation", NULL, "eu-west-1", "http://127.0.0.1:5000");
	/* no STS-specific one: the global one applies */
	expect("sts", NULL, "eu-west-1", "http://127.0.0.1:9000");

	/* the flag beats everything */
	expect("s3", "https://minio.example:9443", "eu-west-1", "https://minio.example:9443");

	setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
	expect("s3", NULL, "eu-west-1", "https://s3.eu-west-1.amazonaws.com");
	expect("s3", "http://flag:1", "eu-west-1", "http://flag:1");
}

static void bad_values_are_explained(void **state)
{
	char err[256];
	char *url = (char *)1;

	setenv("AWS_ENDPOINT_URL_S3", "127.0.0.1:7480", 1);
	assert_int_equal(endpoint_resolve("s3", NULL, "us-east-1", &url, err, sizeof(err)), -1);
	assert_null(url);
	assert_non_null(strstr(err, "AWS_ENDPOINT_URL_S3"));
	assert_non_null(strstr(err, "127.0.0.1:7480"));
	assert_non_null(strstr(err, "http://"));

	assert_int_equal(endpoint_resolve("s3", "ftp://x", NULL, &url, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--endpoint-url"));
	assert_int_equal(endpoint_resolve("s3", "http://", NULL, &url, err, sizeof(err)), -1);

	unsetenv("AWS_ENDPOINT_URL_S3");
	assert_int_equal(endpoint_resolve("s3", NULL, "EU West 1", &url, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "EU West 1"));
	assert_non_null(strstr(err, "region"));
}

static void host_header(void **state)
{
	char h[128], p[128];

	assert_int_equal(endpoint_host_header("http://127.0.0.1:7480", h, sizeof(h)), 0);
	assert_string_equal(h, "127.0.0.1:7480");
	assert_int_equal(endpoint_host_header("https://s3.eu-west-1.amazonaws.com/", h, sizeof(h)),
	                 0);
	assert_string_equal(h, "s3.eu-west-1.amazonaws.com");
	assert_int_equal(endpoint_host_header("https://h.example:443/x", h, sizeof(h)), 0);
	assert_string_equal(h, "h.example");
	assert_int_equal(endpoint_host_header("http://h.example:80", h, sizeof(h)), 0);
	assert_string_equal(h, "h.example");
	assert_int_equal(endpoint_host_header("http://h.example:443", h, sizeof(h)), 0);
	assert_string_equal(h, "h.example:443");
	assert_int_equal(endpoint_host_header("http://user:pw@[::1]:8080/p", h, sizeof(h)), 0);
	assert_string_equal(h, "[::1]:8080");
	assert_int_equal(endpoint_host_header("nothttp", h, sizeof(h)), -1);
	assert_int_equal(endpoint_host_header("http://127.0.0.1:7480", h, 5), -1);

	assert_int_equal(endpoint_base_path("http://h:1", p, sizeof(p)), 0);
	assert_string_equal(p, "");
	assert_int_equal(endpoint_base_path("http://h:1/prefix/", p, sizeof(p)), 0);
	assert_string_equal(p, "/prefix");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(regional_defaults, clear_env),
	    cmocka_unit_test_setup(order_of_precedence, clear_env),
	    cmocka_unit_test_setup(bad_values_are_explained, clear_env),
	    cmocka_unit_test_setup(host_header, clear_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
