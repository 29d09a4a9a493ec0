/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_signer: the headers signer_sign() appends are exactly what
 * sigv4_sign() gives for the same request, in both styles (S3; the
 * normalized generic style of CloudFormation and STS), with the session
 * token sent only when there is one, and nothing at all for anonymous
 * requests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "creds.h"
#include "signer.h"
#include "sigv4.h"
#include "xfer.h"

#define NOW 1369353600 /* 20130524T000000Z, as in the S3 documentation's examples */

static char akid[] = "AKIAIOSFODNN7EXAMPLE";
static char secret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
static char token[] = "TOKEN-VALUE-123";

/* The list's lines joined by '\n', for one comparison with a readable failure. */
static char *join(const struct curl_slist *l)
{
	size_t n = 1;
	char *s;

	for (const struct curl_slist *i = l; i; i = i->next)
		n += strlen(i->data) + 1;
	s = calloc(1, n);
	assert_non_null(s);
	for (const struct curl_slist *i = l; i; i = i->next) {
		strcat(s, i->data);
		strcat(s, "\n");
	}
	return s;
}

/* What a sign callback used to append by hand from sigv4_sign()'s result. */
static char *expected(const struct sigv4_params *sp)
{
	struct sigv4_result r;
	char *s;

	assert_int_equal(sigv4_sign(sp, &r), 0);
	assert_true(asprintf(&s, "Authorization: %s\nX-Amz-Date: %s\n%s%s%s%s%s%s", r.authorization,
	                     r.amz_date, r.content_sha256[0] ? "x-amz-content-sha256: " : "",
	                     r.content_sha256, r.content_sha256[0] ? "\n" : "",
	                     r.security_token ? "X-Amz-Security-Token: " : "",
	                     r.security_token ? r.security_token : "",
	                     r.security_token ? "\n" : "") > 0);
	sigv4_result_free(&r);
	return s;
}

/* signer_sign() of @p for a @method request, as the list's lines. */
static char *signed_lines(const struct signer_params *p, const char *method)
{
	struct xfer_request x;
	struct curl_slist *l = NULL;
	char *s;

	xfer_request_init(&x);
	x.method = method;
	assert_int_equal(signer_sign(p, &x, &l), 0);
	s = join(l);
	curl_slist_free_all(l);
	return s;
}

static void s3_style_matches_sigv4(void **state)
{
	struct creds cr = {.access_key_id = akid, .secret_access_key = secret};
	struct sigv4_header h[] = {{"Host", "examplebucket.s3.amazonaws.com"},
	                           {"Range", "bytes=0-9"}};
	struct signer_params p = {
	    .service = "s3",
	    .region = "us-east-1",
	    .s3 = true,
	    .path = "/a%20b/test.txt",
	    .query = "list-type=2&prefix=a%2Fb",
	    .headers = h,
	    .n_headers = 2,
	    .payload_hash = SIGV4_UNSIGNED_PAYLOAD,
	    .creds = &cr,
	    .now = NOW,
	};
	struct sigv4_params sp = {
	    .method = "GET",
	    .path = p.path,
	    .query = p.query,
	    .headers = h,
	    .n_headers = 2,
	    .payload_hash = p.payload_hash,
	    .region = "us-east-1",
	    .service = "s3",
	    .now = NOW,
	    .s3 = true,
	    .creds = &cr,
	};
	char *got, *want;

	got = signed_lines(&p, "GET");
	want = expected(&sp);
	assert_string_equal(got, want);
	/* S3 style: the payload hash goes out as a header; no token, none sent */
	assert_non_null(strstr(got, "\nx-amz-content-sha256: UNSIGNED-PAYLOAD\n"));
	assert_null(strstr(got, "X-Amz-Security-Token"));
	free(got);
	free(want);

	/* with a session token: sent, and signed */
	cr.session_token = token;
	got = signed_lines(&p, "GET");
	want = expected(&sp);
	assert_string_equal(got, want);
	assert_non_null(strstr(got, "\nX-Amz-Security-Token: TOKEN-VALUE-123\n"));
	assert_non_null(strstr(got, "x-amz-date;x-amz-security-token, Signature="));
	free(got);
	free(want);

	/* an empty token is no token */
	cr.session_token = (char *)"";
	got = signed_lines(&p, "GET");
	assert_null(strstr(got, "X-Amz-Security-Token"));
	free(got);
}

static void generic_style_matches_sigv4(void **state)
{
	struct creds cr = {.access_key_id = akid, .secret_access_key = secret};
	struct sigv4_header h[] = {
	    {"Host", "sts.us-east-1.amazonaws.com"},
	    {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
	};
	/* a path that normalizing changes: the generic style must normalize it */
	struct signer_params p = {
	    .service = "sts",
	    .region = "eu-west-1",
	    .path = "/a/./b//../c",
	    .headers = h,
	    .n_headers = 2,
	    .payload_hash = SIGV4_EMPTY_SHA256,
	    .creds = &cr,
	    .now = NOW,
	};
	struct sigv4_params sp = {
	    .method = "POST",
	    .path = p.path,
	    .headers = h,
	    .n_headers = 2,
	    .payload_hash = p.payload_hash,
	    .region = "eu-west-1",
	    .service = "sts",
	    .now = NOW,
	    .normalize_path = true,
	    .creds = &cr,
	};
	char *got, *want;

	got = signed_lines(&p, "POST");
	want = expected(&sp);
	assert_string_equal(got, want);
	assert_null(strstr(got, "x-amz-content-sha256"));
	assert_null(strstr(got, "X-Amz-Security-Token"));
	assert_non_null(strstr(got, "Credential=AKIAIOSFODNN7EXAMPLE/20130524/eu-west-1/sts/"
	                            "aws4_request, SignedHeaders=content-type;host;x-amz-date,"));
	free(got);
	free(want);

	/* the un-normalized path would have signed differently */
	sp.normalize_path = false;
	got = signed_lines(&p, "POST");
	want = expected(&sp);
	assert_string_not_equal(got, want);
	free(got);
	free(want);

	cr.session_token = token;
	sp.normalize_path = true;
	got = signed_lines(&p, "POST");
	want = expected(&sp);
	assert_string_equal(got, want);
	assert_non_null(strstr(got, "\nX-Amz-Security-Token: TOKEN-VALUE-123\n"));
	free(got);
	free(want);
}

static void anonymous_adds_nothing(void **state)
{
	struct sigv4_header h[] = {{"Host", "h"}};
	struct signer_params p = {
	    .service = "s3",
	    .region = "us-east-1",
	    .s3 = true,
	    .headers = h,
	    .n_headers = 1,
	};
	struct xfer_request x;
	struct curl_slist *l = NULL;

	xfer_request_init(&x);
	x.method = "GET";
	assert_int_equal(signer_sign(&p, &x, &l), 0);
	assert_null(l);
	assert_string_equal(x.result.errmsg, "");
}

static void failure_says_why(void **state)
{
	struct creds cr = {.access_key_id = akid, .secret_access_key = secret};
	struct sigv4_header h[] = {{"X-Other", "1"}}; /* no Host: sigv4_sign refuses */
	struct signer_params p = {
	    .service = "s3",
	    .region = "us-east-1",
	    .s3 = true,
	    .headers = h,
	    .n_headers = 1,
	    .creds = &cr,
	};
	struct xfer_request x;
	struct curl_slist *l = NULL;

	xfer_request_init(&x);
	x.method = "GET";
	assert_int_equal(signer_sign(&p, &x, &l), -1);
	assert_null(l);
	assert_string_equal(x.result.errmsg, "SigV4 signing failed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(s3_style_matches_sigv4),
	    cmocka_unit_test(generic_style_matches_sigv4),
	    cmocka_unit_test(anonymous_adds_nothing),
	    cmocka_unit_test(failure_says_why),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
