/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sigv4: the published SigV4 test suite (tests/data/sigv4, every case),
 * the S3 documentation's worked examples (tests/data/s3-sigv4) and
 * canonicalization edge cases. Expected values are read from the data files.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <jansson.h>

#include "sigv4.h"
#include "checksum.h"
#include "util.h"

#ifndef HPCOPS_TEST_SOURCE_ROOT
#define HPCOPS_TEST_SOURCE_ROOT "."
#endif

static const char *source_root(void)
{
	const char *r = getenv("HPCOPS_SOURCE_ROOT");

	return r && *r ? r : HPCOPS_TEST_SOURCE_ROOT;
}

static char *read_text(const char *dir, const char *name)
{
	char *path, *s;

	assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	s = util_read_file(path, 1 << 20);
	if (!s)
		fail_msg("cannot read %s", path);
	free(path);
	return s;
}

/* Expected files sometimes end with a newline the signer does not produce. */
static void chomp(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

/* A raw HTTP request as in request.txt / header-signed-request.txt. */
struct raw_request {
	char method[16];
	char *path;
	char *query;
	size_t n;
	char *names[32];
	char *values[32];
	char *body;
};

static void raw_free(struct raw_request *r)
{
	free(r->path);
	free(r->query);
	for (size_t i = 0; i < r->n; i++) {
		free(r->names[i]);
		free(r->values[i]);
	}
	free(r->body);
	memset(r, 0, sizeof(*r));
}

static void raw_parse(const char *text, struct raw_request *r)
{
	const char *p = text, *eol, *sp1, *sp2, *q;

	memset(r, 0, sizeof(*r));
	eol = strchr(p, '\n');
	assert_non_null(eol);
	sp1 = memchr(p, ' ', (size_t)(eol - p));
	assert_non_null(sp1);
	/* the request target may hold spaces ("/example space/"): the version is after the last one
	 */
	sp2 = eol;
	while (sp2 > sp1 && *sp2 != ' ')
		sp2--;
	assert_true(sp2 > sp1);
	snprintf(r->method, sizeof(r->method), "%.*s", (int)(sp1 - p), p);
	q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
	if (q) {
		r->path = strndup(sp1 + 1, (size_t)(q - sp1 - 1));
		r->query = strndup(q + 1, (size_t)(sp2 - q - 1));
	} else {
		r->path = strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
		r->query = strdup("");
	}
	p = eol + 1;
	while (*p && *p != '\n' && *p != '\r') {
		const char *colon;
		size_t len;

		eol = strchr(p, '\n');
		len = eol ? (size_t)(eol - p) : strlen(p);
		if (*p == ' ' || *p == '\t') {
			/* obsolete line folding: continue the previous value */
			char *v;
			assert_true(r->n > 0);
			assert_true(asprintf(&v, "%s\n%.*s", r->values[r->n - 1], (int)len, p) > 0);
			free(r->values[r->n - 1]);
			r->values[r->n - 1] = v;
		} else {
			colon = memchr(p, ':', len);
			assert_non_null(colon);
			assert_true(r->n < 32);
			r->names[r->n] = strndup(p, (size_t)(colon - p));
			r->values[r->n] = strndup(colon + 1, len - (size_t)(colon + 1 - p));
			r->n++;
		}
		p += len;
		if (*p == '\n')
			p++;
	}
	if (*p == '\r')
		p++;
	if (*p == '\n')
		p++;
	r->body = strdup(p);
}

static const char *raw_header(const struct raw_request *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcasecmp(r->names[i], name))
			return r->values[i];
	return NULL;
}

static size_t raw_count(const struct raw_request *r, const char *name)
{
	size_t c = 0;

	for (size_t i = 0; i < r->n; i++)
		c += !strcasecmp(r->names[i], name);
	return c;
}

static void vector_case(void **state)
{
	const char *dir = *state;
	char *req_txt = read_text(dir, "request.txt");
	char *ctx_txt = read_text(dir, "context.json");
	char *want_creq = read_text(dir, "header-canonical-request.txt");
	char *want_sts = read_text(dir, "header-string-to-sign.txt");
	char *want_sig = read_text(dir, "header-signature.txt");
	char *want_signed = read_text(dir, "header-signed-request.txt");
	struct raw_request req, sreq;
	struct sigv4_header hdrs[32];
	struct sigv4_result res;
	struct creds cr = {0};
	json_error_t jerr;
	json_t *ctx, *jc;
	char hash[65];
	time_t when;

	ctx = json_loads(ctx_txt, 0, &jerr);
	assert_non_null(ctx);
	jc = json_object_get(ctx, "credentials");
	cr.access_key_id = (char *)json_string_value(json_object_get(jc, "access_key_id"));
	cr.secret_access_key = (char *)json_string_value(json_object_get(jc, "secret_access_key"));
	cr.session_token = (char *)json_string_value(json_object_get(jc, "token"));
	assert_int_equal(
	    util_parse_iso8601(json_string_value(json_object_get(ctx, "timestamp")), &when), 0);

	raw_parse(req_txt, &req);
	for (size_t i = 0; i < req.n; i++) {
		hdrs[i].name = req.names[i];
		hdrs[i].value = req.values[i];
	}
	util_sha256_hex(req.body, strlen(req.body), hash);

	struct sigv4_params p = {
	    .method = req.method,
	    .path = req.path,
	    .query = req.query,
	    .headers = hdrs,
	    .n_headers = req.n,
	    .payload_hash = hash,
	    .region = json_string_value(json_object_get(ctx, "region")),
	    .service = json_string_value(json_object_get(ctx, "service")),
	    .now = when,
	    .s3 = false,
	    .normalize_path = json_is_true(json_object_get(ctx, "normalize")),
	    .add_content_sha256 = json_is_true(json_object_get(ctx, "sign_body")),
	    .omit_session_token = json_is_true(json_object_get(ctx, "omit_session_token")),
	    .creds = &cr,
	};
	assert_int_equal(sigv4_sign(&p, &res), 0);

	chomp(want_creq);
	chomp(want_sts);
	chomp(want_sig);
	assert_string_equal(res.canonical_request, want_creq);
	assert_string_equal(res.string_to_sign, want_sts);
	assert_string_equal(res.signature, want_sig);

	/* The signed request = the request plus exactly what the signer asks to add. */
	raw_parse(want_signed, &sreq);
	assert_string_equal(res.authorization, raw_header(&sreq, "Authorization"));
	assert_string_equal(res.amz_date, raw_header(&sreq, "X-Amz-Date"));
	if (res.content_sha256[0])
		assert_string_equal(res.content_sha256, raw_header(&sreq, "x-amz-content-sha256"));
	else
		assert_null(raw_header(&sreq, "x-amz-content-sha256"));
	if (res.security_token)
		assert_string_equal(res.security_token, raw_header(&sreq, "X-Amz-Security-Token"));
	else
		assert_null(raw_header(&sreq, "X-Amz-Security-Token"));
	assert_int_equal(sreq.n,
	                 req.n + 2 + (res.content_sha256[0] != 0) + (res.security_token != NULL));
	for (size_t i = 0; i < req.n; i++)
		assert_int_equal(raw_count(&sreq, req.names[i]), raw_count(&req, req.names[i]));
	assert_string_equal(sreq.method, req.method);

	sigv4_result_free(&res);
	raw_free(&req);
	raw_free(&sreq);
	json_decref(ctx);
	free(req_txt);
	free(ctx_txt);
	free(want_creq);
	free(want_sts);
	free(want_sig);
	free(want_signed);
}

/* The S3 documentation examples: S3 style, path as given. */
static void s3_doc_cases(void **state)
{
	char dir[4096];
	char *txt;
	json_error_t jerr;
	json_t *root, *cases, *c;
	size_t idx;
	struct creds cr = {0};
	time_t when;

	snprintf(dir, sizeof(dir), "%s/tests/data/s3-sigv4", source_root());
	txt = read_text(dir, "cases.json");
	root = json_loads(txt, 0, &jerr);
	assert_non_null(root);
	cr.access_key_id = (char *)json_string_value(
	    json_object_get(json_object_get(root, "credentials"), "access_key_id"));
	cr.secret_access_key = (char *)json_string_value(
	    json_object_get(json_object_get(root, "credentials"), "secret_access_key"));
	assert_int_equal(
	    util_parse_iso8601(json_string_value(json_object_get(root, "timestamp")), &when), 0);
	cases = json_object_get(root, "cases");
	assert_int_equal(json_array_size(cases), 4);
	json_array_foreach(cases, idx, c)
	{
		struct sigv4_header hdrs[16];
		size_t n = 0;
		const char *k;
		json_t *v;
		const char *body = json_string_value(json_object_get(c, "body"));
		char hash[65];
		struct sigv4_result res;
		char want_prefix[256];

		json_object_foreach(json_object_get(c, "headers"), k, v)
		{
			hdrs[n].name = k;
			hdrs[n++].value = json_string_value(v);
		}
		util_sha256_hex(body, strlen(body), hash);
		struct sigv4_params p = {
		    .method = json_string_value(json_object_get(c, "method")),
		    .path = json_string_value(json_object_get(c, "path")),
		    .query = json_string_value(json_object_get(c, "query")),
		    .headers = hdrs,
		    .n_headers = n,
		    .payload_hash = hash,
		    .region = json_string_value(json_object_get(root, "region")),
		    .service = json_string_value(json_object_get(root, "service")),
		    .now = when,
		    .s3 = true,
		    .creds = &cr,
		};
		assert_int_equal(sigv4_sign(&p, &res), 0);
		assert_string_equal(res.canonical_request,
		                    json_string_value(json_object_get(c, "canonical_request")));
		assert_string_equal(res.string_to_sign,
		                    json_string_value(json_object_get(c, "string_to_sign")));
		assert_string_equal(res.signature,
		                    json_string_value(json_object_get(c, "signature")));
		snprintf(
		    want_prefix, sizeof(want_prefix),
		    "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, SignedHeaders=%s, "
		    "Signature=",
		    cr.access_key_id, json_string_value(json_object_get(root, "timestamp")),
		    p.region, p.service, json_string_value(json_object_get(c, "signed_headers")));
		assert_memory_equal(res.authorization, want_prefix, strlen(want_prefix));
		assert_string_equal(res.authorization + strlen(want_prefix), res.signature);
		assert_string_equal(res.content_sha256, hash);
		sigv4_result_free(&res);
	}
	json_decref(root);
	free(txt);
}

static void check_query(const char *in, const char *want)
{
	char *got = sigv4_canonical_query(in);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void canonical_query_edges(void **state)
{
	check_query(NULL, "");
	check_query("", "");
	check_query("uploads", "uploads=");
	check_query("b=2&a=1&a=0", "a=0&a=1&b=2");
	check_query("&&a=1&", "a=1");
	/* already encoded and raw forms canonicalize alike; hex upper-cased */
	check_query("prefix=a%2fb", "prefix=a%2Fb");
	check_query("prefix=a/b", "prefix=a%2Fb");
	check_query("k=%7e", "k=~");
	check_query("k=a b", "k=a%20b");
	/* '+' is a literal plus in SigV4, not a space */
	check_query("k=a+b", "k=a%2Bb");
	check_query("list-type=2&continuation-token=1%2F%3D%3D&max-keys=1000",
	            "continuation-token=1%2F%3D%3D&list-type=2&max-keys=1000");
	/* sorted by the encoded key: '%' (0x25) sorts before letters */
	check_query("z=1&%C3%A9=2", "%C3%A9=2&z=1");
	check_query("a=&a", "a=&a=");
	check_query("partNumber=2&uploadId=x%2By", "partNumber=2&uploadId=x%2By");
}

static void check_path(const char *in, bool s3, bool norm, const char *want)
{
	char *got = sigv4_canonical_path(in, s3, norm);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void canonical_path_edges(void **state)
{
	/* S3: exactly as given, even dot segments and doubled slashes */
	check_path("/bucket/a%20b", true, false, "/bucket/a%20b");
	check_path("/bucket/a/../b//c", true, false, "/bucket/a/../b//c");
	check_path("", true, false, "/");
	check_path(NULL, true, false, "/");
	/* generic: a second encoding of what is on the wire */
	check_path("/a%20b", false, true, "/a%2520b");
	check_path("/a/b/..", false, true, "/a/");
	check_path("/a/./b/../c", false, true, "/a/c");
	check_path("/../..", false, true, "/");
	check_path("/a//b/", false, true, "/a/b/");
	check_path("/a//b/", false, false, "/a//b/");
}

static void s3_unsigned_payload_and_token(void **state)
{
	char akid[] = "AKIDEXAMPLE", secret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	     token[] = "TOKEN-VALUE-123", other_secret[] = "another-secret";
	struct creds cr = {
	    .access_key_id = akid, .secret_access_key = secret, .session_token = token};
	struct sigv4_header h[] = {
	    {"Host", "127.0.0.1:7480"},
	    {"x-amz-content-sha256", "stale-value-is-replaced"},
	    {"Authorization", "old"},
	};
	struct sigv4_params p = {
	    .method = "PUT",
	    .path = "/bkt/some%20key",
	    .query = "partNumber=1&uploadId=abc",
	    .headers = h,
	    .n_headers = 3,
	    .payload_hash = SIGV4_UNSIGNED_PAYLOAD,
	    .region = "us-east-1",
	    .service = "s3",
	    .now = 1369353600,
	    .s3 = true,
	    .creds = &cr,
	};
	struct sigv4_result r;

	assert_int_equal(sigv4_sign(&p, &r), 0);
	assert_string_equal(r.content_sha256, "UNSIGNED-PAYLOAD");
	assert_string_equal(r.security_token, "TOKEN-VALUE-123");
	assert_string_equal(r.amz_date, "20130524T000000Z");
	assert_non_null(strstr(r.canonical_request, "\nx-amz-content-sha256:UNSIGNED-PAYLOAD\n"));
	assert_non_null(strstr(r.canonical_request, "\nx-amz-security-token:TOKEN-VALUE-123\n"));
	assert_null(strstr(r.canonical_request, "stale-value"));
	assert_null(strstr(r.canonical_request, "authorization"));
	assert_non_null(strstr(r.authorization, "SignedHeaders=host;x-amz-content-sha256;"
	                                        "x-amz-date;x-amz-security-token,"));
	/* the secret key appears nowhere in what the signer hands back */
	assert_null(strstr(r.canonical_request, cr.secret_access_key));
	assert_null(strstr(r.string_to_sign, cr.secret_access_key));
	assert_null(strstr(r.authorization, cr.secret_access_key));
	sigv4_result_free(&r);
	sigv4_result_free(&r);

	/* a different secret gives a different signature */
	{
		struct creds other = cr;
		struct sigv4_result r2;
		char sig1[65];

		assert_int_equal(sigv4_sign(&p, &r), 0);
		memcpy(sig1, r.signature, sizeof(sig1));
		other.secret_access_key = other_secret;
		p.creds = &other;
		assert_int_equal(sigv4_sign(&p, &r2), 0);
		assert_string_not_equal(sig1, r2.signature);
		sigv4_result_free(&r);
		sigv4_result_free(&r2);
	}
}

static void header_canonicalization(void **state)
{
	char akid[] = "AKID", secret[] = "s";
	struct creds cr = {.access_key_id = akid, .secret_access_key = secret};
	struct sigv4_header h[] = {
	    {"X-Tabs", "\ta\t\tb  "}, {"x-dup", "1"},   {"Host", "h:1"},
	    {"X-Empty", ""},          {"X-Dup", " 2 "},
	};
	struct sigv4_params p = {.method = "GET",
	                         .path = "/b/k",
	                         .headers = h,
	                         .n_headers = 5,
	                         .region = "us-east-1",
	                         .service = "s3",
	                         .s3 = true,
	                         .now = 1369353600,
	                         .creds = &cr};
	struct sigv4_result r;

	assert_int_equal(sigv4_sign(&p, &r), 0);
	assert_string_equal(
	    r.canonical_request,
	    "GET\n/b/k\n\n"
	    "host:h:1\n"
	    "x-amz-content-sha256:" SIGV4_EMPTY_SHA256 "\n"
	    "x-amz-date:20130524T000000Z\n"
	    "x-dup:1,2\n"
	    "x-empty:\n"
	    "x-tabs:a b\n"
	    "\n"
	    "host;x-amz-content-sha256;x-amz-date;x-dup;x-empty;x-tabs\n" SIGV4_EMPTY_SHA256);
	/* no token: nothing to send */
	assert_null(r.security_token);
	sigv4_result_free(&r);
}

static void refuses_incomplete_input(void **state)
{
	char akid[] = "AKID", secret[] = "s";
	struct creds cr = {.access_key_id = akid, .secret_access_key = secret};
	struct sigv4_header h[] = {{"X-Other", "1"}};
	struct sigv4_params p = {.method = "GET",
	                         .path = "/",
	                         .headers = h,
	                         .n_headers = 1,
	                         .region = "us-east-1",
	                         .service = "s3",
	                         .s3 = true,
	                         .creds = &cr};
	struct sigv4_result r;

	/* no Host header */
	assert_int_equal(sigv4_sign(&p, &r), -1);
	assert_null(r.authorization);
	h[0].name = "host";
	p.creds = NULL;
	assert_int_equal(sigv4_sign(&p, &r), -1);
	p.creds = &cr;
	p.region = NULL;
	assert_int_equal(sigv4_sign(&p, &r), -1);
	p.region = "us-east-1";
	h[0].name = NULL;
	assert_int_equal(sigv4_sign(&p, &r), -1);
	h[0].name = "host";
	assert_int_equal(sigv4_sign(&p, &r), 0);
	sigv4_result_free(&r);
}

static void util_encodings(void **state)
{
	char out[65];
	char *s;
	time_t t;

	util_md5_base64("", 0, out);
	assert_string_equal(out, "1B2M2Y8AsgTpgAmY7PhCfg==");
	util_base64("ab", 2, out);
	assert_string_equal(out, "YWI=");
	/* the CRC-32C check value of "123456789" is 0xE3069283 */
	assert_int_equal(checksum_crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(checksum_crc32c(checksum_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
	checksum_base64_u32(0xE3069283u, out);
	assert_string_equal(out, "4waSgw==");
	/* CRC-64/NVME's check value of "123456789" (x-amz-checksum-crc64nvme) */
	assert_true(checksum_crc64nvme(0, "123456789", 9) == 0xae8b14860a799888ULL);
	assert_true(checksum_crc64nvme(checksum_crc64nvme(0, "1234", 4), "56789", 5) ==
	            0xae8b14860a799888ULL);
	{
		/* the word-at-a-time loop agrees with the byte loop at every alignment */
		static unsigned char big[4099];
		uint64_t whole, split;

		for (size_t i = 0; i < sizeof(big); i++)
			big[i] = (unsigned char)(i * 131 + 7);
		whole = checksum_crc64nvme(0, big, sizeof(big));
		for (size_t cut = 1; cut < 17; cut++) {
			split = checksum_crc64nvme(checksum_crc64nvme(0, big, cut), big + cut,
			                           sizeof(big) - cut);
			assert_true(split == whole);
		}
		split = 0;
		for (size_t i = 0; i < sizeof(big); i++)
			split = checksum_crc64nvme(split, big + i, 1);
		assert_true(split == whole);
		assert_int_equal(
		    checksum_crc32c(checksum_crc32c(0, big, 5), big + 5, sizeof(big) - 5),
		    checksum_crc32c(0, big, sizeof(big)));
	}
	checksum_base64_u64(0xae8b14860a799888ULL, out);
	assert_string_equal(out, "rosUhgp5mIg=");
	s = util_uri_encode("a b/c~", 6, true);
	assert_string_equal(s, "a%20b/c~");
	free(s);
	s = util_uri_encode("a b/c~", 6, false);
	assert_string_equal(s, "a%20b%2Fc~");
	free(s);
	{
		const char *kv[] = {"Action", "AssumeRole", "RoleSessionName", "a b/c"};
		s = util_form_encode(kv, 2);
		assert_string_equal(s, "Action=AssumeRole&RoleSessionName=a%20b%2Fc");
		free(s);
	}
	assert_int_equal(util_parse_iso8601("2015-08-30T12:36:00Z", &t), 0);
	assert_int_equal(t, 1440938160);
	assert_int_equal(util_parse_iso8601("2015-08-30T12:36:00.123Z", &t), 0);
	assert_int_equal(t, 1440938160);
	assert_int_equal(util_parse_iso8601("2015-08-30T14:36:00+02:00", &t), 0);
	assert_int_equal(t, 1440938160);
	assert_int_equal(util_parse_iso8601("20150830T123600Z", &t), 0);
	assert_int_equal(t, 1440938160);
	assert_int_equal(util_parse_iso8601("2015-08-30", &t), -1);
	assert_int_equal(util_parse_iso8601("yesterday", &t), -1);
	util_amz_date(1440938160, out);
	assert_string_equal(out, "20150830T123600Z");
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
	    cmocka_unit_test(s3_doc_cases),
	    cmocka_unit_test(canonical_query_edges),
	    cmocka_unit_test(canonical_path_edges),
	    cmocka_unit_test(s3_unsigned_payload_and_token),
	    cmocka_unit_test(header_canonicalization),
	    cmocka_unit_test(refuses_incomplete_input),
	    cmocka_unit_test(util_encodings),
	};
	char base[4096];
	char *names[256], *dirs[256];
	struct CMUnitTest vec[256];
	size_t n = 0;
	struct dirent *de;
	DIR *d;
	int failed;

	snprintf(base, sizeof(base), "%s/tests/data/sigv4", source_root());
	d = opendir(base);
	if (!d) {
		fprintf(stderr, "test_sigv4: cannot open %s: set HPCOPS_SOURCE_ROOT\n", base);
		return 1;
	}
	for (de = readdir(d); de && n < 256; de = readdir(d)) {
		if (de->d_name[0] == '.' || de->d_type != DT_DIR)
			continue;
		names[n++] = strdup(de->d_name);
	}
	closedir(d);
	if (n == 0) {
		fprintf(stderr, "test_sigv4: no cases under %s\n", base);
		return 1;
	}
	qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		if (asprintf(&dirs[i], "%s/%s", base, names[i]) < 0)
			return 1;
		vec[i] = (struct CMUnitTest){
		    .name = names[i], .test_func = vector_case, .initial_state = dirs[i]};
	}
	failed = _cmocka_run_group_tests("sigv4_vectors", vec, n, NULL, NULL);
	failed += cmocka_run_group_tests(fixed, NULL, NULL);
	for (size_t i = 0; i < n; i++) {
		free(names[i]);
		free(dirs[i]);
	}
	return failed ? 1 : 0;
}
