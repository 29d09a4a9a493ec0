/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the S3 reply parsers (s3_xml) and the client's offline
 * parts: error documents, listing pages fed in small pieces, multipart
 * replies, the errno table and request addressing. No network.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "creds.h"
#include "s3.h"
#include "s3_test.h"
#include "s3_xml.h"
#include "xfer.h"

/* Feed @xml to a parser of @kind in pieces of @step bytes. */
static int parse_in_steps(enum s3_doc_kind kind, const char *xml, size_t step,
                          struct s3_doc_out *out, char *why, size_t why_len)
{
	struct s3_doc *d = s3_doc_new(kind, out);
	size_t len = strlen(xml);
	int ret = 0;

	assert_non_null(d);
	for (size_t off = 0; off < len && ret == 0; off += step)
		ret = s3_doc_feed(d, xml + off, len - off < step ? len - off : step);
	/* finish also after a failed feed: it gives the reason */
	if (s3_doc_finish(d, why, why_len) != 0)
		ret = -1;
	s3_doc_free(d);
	return ret;
}

static const char list_xml[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>bkt</Name><Prefix>dir%2F</Prefix><KeyCount>5</KeyCount><MaxKeys>5</MaxKeys>"
    "<Delimiter>%2F</Delimiter><EncodingType>url</EncodingType>"
    "<IsTruncated>true</IsTruncated>"
    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
    "<Contents><Key>dir%2Fa+b.txt</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>"
    "<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size>"
    "<StorageClass>STANDARD</StorageClass></Contents>"
    "<Contents><Key>dir%2Fc%2Bd%25e</Key><LastModified>2020-01-01T00:00:00Z</LastModified>"
    "<ETag>\"5d41402abc4b2a76b9719d911017c592-3\"</ETag><Size>0</Size></Contents>"
    "<Contents><Key>dir%2F%C3%BC</Key><Size>18446744073709551615</Size></Contents>"
    "<CommonPrefixes><Prefix>dir%2Fsub%2F</Prefix></CommonPrefixes>"
    "<CommonPrefixes><Prefix>dir%2Fz%20z%2F</Prefix></CommonPrefixes>"
    "</ListBucketResult>";

static void check_list_page(const struct s3_list_page *pg)
{
	assert_int_equal(pg->n_entries, 3);
	assert_string_equal(pg->entries[0].key, "dir/a b.txt");
	assert_int_equal(pg->entries[0].size, 434234);
	assert_int_equal(pg->entries[0].mtime, 1255369830);
	assert_string_equal(pg->entries[0].etag, "fba9dede5f27731c9771645a39863328");
	assert_string_equal(pg->entries[1].key, "dir/c+d%e");
	assert_string_equal(pg->entries[1].etag, "5d41402abc4b2a76b9719d911017c592-3");
	assert_int_equal(pg->entries[1].mtime, 1577836800);
	assert_string_equal(pg->entries[2].key, "dir/\xc3\xbc");
	assert_true(pg->entries[2].size == UINT64_MAX);
	assert_int_equal(pg->n_prefixes, 2);
	assert_string_equal(pg->prefixes[0], "dir/sub/");
	assert_string_equal(pg->prefixes[1], "dir/z z/");
	assert_true(pg->truncated);
	assert_string_equal(pg->next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
}

static void test_list_page_any_chunking(void **state)
{
	static const size_t steps[] = {1, 2, 3, 7, 64, 4096};

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct s3_list_page pg;
		struct s3_doc_out out;
		char why[160] = "";

		memset(&pg, 0, sizeof(pg));
		memset(&out, 0, sizeof(out));
		out.page = &pg;
		out.max_entries = 5;
		assert_int_equal(
		    parse_in_steps(S3_DOC_LIST_OBJECTS, list_xml, steps[i], &out, why, sizeof(why)),
		    0);
		assert_false(out.is_error);
		check_list_page(&pg);
		s3_list_page_free(&pg);
		s3_doc_out_free(&out);
	}
}

static void test_list_page_plain_keys(void **state)
{
	/* Without EncodingType the keys are literal: '+' and '%' stay. */
	const char *xml = "<ListBucketResult><IsTruncated>false</IsTruncated>"
	                  "<Contents><Key>a+b%20c &amp; d</Key><Size>1</Size></Contents>"
	                  "</ListBucketResult>";
	struct s3_list_page pg;
	struct s3_doc_out out;

	memset(&pg, 0, sizeof(pg));
	memset(&out, 0, sizeof(out));
	out.page = &pg;
	out.max_entries = 1000;
	assert_int_equal(parse_in_steps(S3_DOC_LIST_OBJECTS, xml, 5, &out, NULL, 0), 0);
	assert_int_equal(pg.n_entries, 1);
	assert_string_equal(pg.entries[0].key, "a+b%20c & d");
	assert_false(pg.truncated);
	assert_null(pg.next_token);
	s3_list_page_free(&pg);
}

static void test_list_page_bounded_by_max_keys(void **state)
{
	struct s3_list_page pg;
	struct s3_doc_out out;
	char why[160] = "";

	memset(&pg, 0, sizeof(pg));
	memset(&out, 0, sizeof(out));
	out.page = &pg;
	out.max_entries = 2; /* the page above has 3 entries */
	assert_int_equal(parse_in_steps(S3_DOC_LIST_OBJECTS, list_xml, 100, &out, why, sizeof(why)),
	                 -1);
	assert_non_null(strstr(why, "max-keys"));
	s3_list_page_free(&pg);
}

static void test_list_many_entries(void **state)
{
	/* 1000 entries: the arrays grow past their first sizes. */
	char *xml = malloc(1000 * 80 + 200), *w = xml;
	struct s3_list_page pg;
	struct s3_doc_out out;

	w += sprintf(w, "<ListBucketResult>");
	for (int i = 0; i < 1000; i++)
		w += sprintf(w, "<Contents><Key>k%04d</Key><Size>%d</Size></Contents>", i, i);
	sprintf(w, "</ListBucketResult>");
	memset(&pg, 0, sizeof(pg));
	memset(&out, 0, sizeof(out));
	out.page = &pg;
	out.max_entries = 1000;
	assert_int_equal(parse_in_steps(S3_DOC_LIST_OBJECTS, xml, 1000, &out, NULL, 0), 0);
	assert_int_equal(pg.n_entries, 1000);
	for (int i = 0; i < 1000; i++) {
		char k[16];

		snprintf(k, sizeof(k), "k%04d", i);
		assert_string_equal(pg.entries[i].key, k);
		assert_int_equal(pg.entries[i].size, i);
	}
	s3_list_page_free(&pg);
	free(xml);
}

static void test_malformed_and_truncated(void **state)
{
	struct s3_list_page pg;
	struct s3_doc_out out;
	char why[160] = "";

	memset(&pg, 0, sizeof(pg));
	memset(&out, 0, sizeof(out));
	out.page = &pg;
	out.max_entries = 10;
	/* cut in the middle */
	assert_int_equal(parse_in_steps(S3_DOC_LIST_OBJECTS,
	                                "<ListBucketResult><Contents><Key>a</Key>", 4, &out, why,
	                                sizeof(why)),
	                 -1);
	assert_true(why[0] != '\0');
	s3_list_page_free(&pg);

	/* not XML */
	memset(&out, 0, sizeof(out));
	out.page = &pg;
	assert_int_equal(
	    parse_in_steps(S3_DOC_LIST_OBJECTS, "<html>oops", 3, &out, why, sizeof(why)), -1);
	s3_list_page_free(&pg);

	/* the wrong document */
	memset(&out, 0, sizeof(out));
	assert_int_equal(parse_in_steps(S3_DOC_INITIATE, "<Foo><UploadId>x</UploadId></Foo>", 3,
	                                &out, why, sizeof(why)),
	                 -1);
	assert_non_null(strstr(why, "Foo"));

	/* empty body */
	memset(&out, 0, sizeof(out));
	assert_int_equal(parse_in_steps(S3_DOC_COMPLETE, " ", 1, &out, why, sizeof(why)), -1);

	/*
	 * Element text past the 16 KiB bound fails the page instead of being
	 * cut: a cut prefix or continuation token would list the wrong keys.
	 */
	{
		static const char *const fmt[][2] = {
		    {"<ListBucketResult><CommonPrefixes><Prefix>",
		     "</Prefix></CommonPrefixes></ListBucketResult>"},
		    {"<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>",
		     "</NextContinuationToken></ListBucketResult>"},
		    {"<ListBucketResult><Contents><Key>", "</Key></Contents></ListBucketResult>"},
		};
		size_t big = 17 * 1024;
		char *text = malloc(big + 1), *xml = malloc(big + 256);

		assert_non_null(text);
		assert_non_null(xml);
		memset(text, 'p', big);
		text[big] = '\0';
		for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
			memset(&pg, 0, sizeof(pg));
			memset(&out, 0, sizeof(out));
			out.page = &pg;
			out.max_entries = 10;
			why[0] = '\0';
			snprintf(xml, big + 256, "%s%s%s", fmt[i][0], text, fmt[i][1]);
			assert_int_equal(
			    parse_in_steps(S3_DOC_LIST_OBJECTS, xml, 4096, &out, why, sizeof(why)),
			    -1);
			assert_non_null(strstr(why, "longer than"));
			assert_int_equal(pg.n_prefixes + pg.n_entries, 0);
			s3_list_page_free(&pg);
		}
		/* just under the bound is read whole */
		memset(&pg, 0, sizeof(pg));
		memset(&out, 0, sizeof(out));
		out.page = &pg;
		out.max_entries = 10;
		text[16 * 1024] = '\0';
		snprintf(xml, big + 256, "%s%s%s", fmt[0][0], text, fmt[0][1]);
		assert_int_equal(
		    parse_in_steps(S3_DOC_LIST_OBJECTS, xml, 4096, &out, why, sizeof(why)), 0);
		assert_int_equal(pg.n_prefixes, 1);
		assert_int_equal(strlen(pg.prefixes[0]), 16 * 1024);
		s3_list_page_free(&pg);
		free(text);
		free(xml);
	}
}

static void test_error_documents(void **state)
{
	struct s3_error e;
	const char *nsk = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	                  "<Error><Code>NoSuchKey</Code><Message>The resource you requested "
	                  "does not exist</Message><Resource>/mybucket/myfoto.jpg</Resource>"
	                  "<RequestId>4442587FB7D0A2F9</RequestId></Error>";
	const char *ahm = "<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region "
	                  "'us-east-1' is wrong; expecting 'eu-west-1'</Message>"
	                  "<Region>eu-west-1</Region><RequestId>R1</RequestId></Error>";
	const char *pr = "<Error><Code>PermanentRedirect</Code><Message>use the endpoint"
	                 "</Message><Bucket>b</Bucket>"
	                 "<Endpoint>b.s3.ap-southeast-2.amazonaws.com</Endpoint></Error>";

	memset(&e, 0, sizeof(e));
	assert_int_equal(s3_xml_parse_error(nsk, strlen(nsk), &e), 0);
	assert_string_equal(e.code, "NoSuchKey");
	assert_string_equal(e.message, "The resource you requested does not exist");
	assert_string_equal(e.request_id, "4442587FB7D0A2F9");

	memset(&e, 0, sizeof(e));
	assert_int_equal(s3_xml_parse_error(ahm, strlen(ahm), &e), 0);
	assert_string_equal(e.code, "AuthorizationHeaderMalformed");
	assert_string_equal(e.region, "eu-west-1");

	memset(&e, 0, sizeof(e));
	assert_int_equal(s3_xml_parse_error(pr, strlen(pr), &e), 0);
	assert_string_equal(e.code, "PermanentRedirect");
	assert_string_equal(e.region, "ap-southeast-2");

	/* A region from the header is kept when the body names none. */
	memset(&e, 0, sizeof(e));
	strcpy(e.region, "us-west-2");
	assert_int_equal(s3_xml_parse_error(nsk, strlen(nsk), &e), 0);
	assert_string_equal(e.region, "us-west-2");

	/* Not an error document: nothing parsed. */
	memset(&e, 0, sizeof(e));
	assert_int_equal(s3_xml_parse_error("<html>", 6, &e), -1);
	assert_int_equal(s3_xml_parse_error(NULL, 0, &e), -1);
	assert_string_equal(e.code, "");

	/* A message longer than the field is truncated, not overflowed. */
	{
		char big[2000];
		size_t n = (size_t)sprintf(big, "<Error><Code>X</Code><Message>");

		memset(big + n, 'm', 1500);
		n += 1500;
		n += (size_t)sprintf(big + n, "</Message></Error>");
		memset(&e, 0, sizeof(e));
		assert_int_equal(s3_xml_parse_error(big, n, &e), 0);
		assert_int_equal(strlen(e.message), sizeof(e.message) - 1);
	}
}

static void test_region_from_endpoint(void **state)
{
	char r[32];

	assert_int_equal(s3_xml_region_from_endpoint("b.s3.eu-west-1.amazonaws.com", r, sizeof(r)),
	                 0);
	assert_string_equal(r, "eu-west-1");
	assert_int_equal(s3_xml_region_from_endpoint("s3-us-west-2.amazonaws.com", r, sizeof(r)),
	                 0);
	assert_string_equal(r, "us-west-2");
	assert_int_equal(
	    s3_xml_region_from_endpoint("b.s3.dualstack.us-east-2.amazonaws.com", r, sizeof(r)), 0);
	assert_string_equal(r, "us-east-2");
	assert_int_equal(s3_xml_region_from_endpoint("s3.amazonaws.com", r, sizeof(r)), -1);
	assert_int_equal(s3_xml_region_from_endpoint("minio.local", r, sizeof(r)), -1);
}

static void test_multipart_documents(void **state)
{
	struct s3_doc_out out;
	const char *init = "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
	                   "<UploadId>2~abc-DEF_123</UploadId></InitiateMultipartUploadResult>";
	const char *comp = "<CompleteMultipartUploadResult><Location>http://x/b/k</Location>"
	                   "<Bucket>b</Bucket><Key>k</Key>"
	                   "<ETag>&quot;3858f62230ac3c915f300c664312c11f-9&quot;</ETag>"
	                   "</CompleteMultipartUploadResult>";
	const char *comp_empty = "<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
	                         "<ETag></ETag></CompleteMultipartUploadResult>";
	const char *comp_err = "<Error><Code>InternalError</Code><Message>We encountered an "
	                       "internal error. Please try again.</Message></Error>";
	const char *copy = "<CopyPartResult><LastModified>2011-04-11T20:34:56.000Z</LastModified>"
	                   "<ETag>\"9b2cf535f27731c974343645a3985328\"</ETag></CopyPartResult>";
	const char *parts =
	    "<ListPartsResult><Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId>"
	    "<PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>3</NextPartNumberMarker>"
	    "<MaxParts>3</MaxParts><IsTruncated>true</IsTruncated>"
	    "<Part><PartNumber>1</PartNumber><ETag>\"e1\"</ETag><Size>5242880</Size></Part>"
	    "<Part><PartNumber>2</PartNumber><ETag>\"e2\"</ETag><Size>5242880</Size></Part>"
	    "<Part><PartNumber>3</PartNumber><ETag>\"e3\"</ETag><Size>7</Size></Part>"
	    "</ListPartsResult>";
	const char *ups =
	    "<ListMultipartUploadsResult><Bucket>b</Bucket>"
	    "<EncodingType>url</EncodingType>"
	    "<NextKeyMarker>p%2Fk2</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>"
	    "<IsTruncated>false</IsTruncated>"
	    "<Upload><Key>p%2Fk1</Key><UploadId>u1</UploadId></Upload>"
	    "<Upload><Key>p%2Fk2</Key><UploadId>u2</UploadId></Upload>"
	    "</ListMultipartUploadsResult>";
	const char *del =
	    "<DeleteResult><Deleted><Key>a</Key></Deleted>"
	    "<Error><Key>b</Key><Code>AccessDenied</Code><Message>no</Message></Error>"
	    "<Error><Key>c</Key><Code>InternalError</Code></Error></DeleteResult>";

	memset(&out, 0, sizeof(out));
	assert_int_equal(parse_in_steps(S3_DOC_INITIATE, init, 3, &out, NULL, 0), 0);
	assert_string_equal(out.upload_id, "2~abc-DEF_123");
	s3_doc_out_free(&out);

	memset(&out, 0, sizeof(out));
	assert_int_equal(parse_in_steps(S3_DOC_COMPLETE, comp, 11, &out, NULL, 0), 0);
	assert_string_equal(out.etag, "3858f62230ac3c915f300c664312c11f-9");

	memset(&out, 0, sizeof(out));
	assert_int_equal(parse_in_steps(S3_DOC_COMPLETE, comp_empty, 11, &out, NULL, 0), 0);
	assert_string_equal(out.etag, "");
	assert_false(out.is_error);

	/* S3 can answer 200 and then an <Error> to CompleteMultipartUpload. */
	memset(&out, 0, sizeof(out));
	assert_int_equal(parse_in_steps(S3_DOC_COMPLETE, comp_err, 11, &out, NULL, 0), 0);
	assert_true(out.is_error);
	assert_string_equal(out.error.code, "InternalError");

	memset(&out, 0, sizeof(out));
	assert_int_equal(parse_in_steps(S3_DOC_COPY, copy, 6, &out, NULL, 0), 0);
	assert_string_equal(out.etag, "9b2cf535f27731c974343645a3985328");

	memset(&out, 0, sizeof(out));
	out.max_entries = 10000;
	assert_int_equal(parse_in_steps(S3_DOC_LIST_PARTS, parts, 9, &out, NULL, 0), 0);
	assert_int_equal(out.n_parts, 3);
	assert_int_equal(out.parts[2].part_no, 3);
	assert_string_equal(out.parts[2].etag, "e3");
	assert_int_equal(out.parts[2].size, 7);
	assert_true(out.truncated);
	assert_string_equal(out.next_marker, "3");
	s3_doc_out_free(&out);

	memset(&out, 0, sizeof(out));
	out.max_entries = 1000;
	assert_int_equal(parse_in_steps(S3_DOC_LIST_UPLOADS, ups, 9, &out, NULL, 0), 0);
	assert_int_equal(out.n_uploads, 2);
	assert_string_equal(out.uploads[0].key, "p/k1");
	assert_string_equal(out.uploads[1].upload_id, "u2");
	assert_false(out.truncated);
	assert_string_equal(out.next_marker, "p/k2");
	s3_doc_out_free(&out);

	memset(&out, 0, sizeof(out));
	assert_int_equal(parse_in_steps(S3_DOC_DELETE, del, 9, &out, NULL, 0), 0);
	assert_int_equal(out.n_deleted, 1);
	assert_int_equal(out.n_failed, 2);
	assert_string_equal(out.first_failed_key, "b");
	assert_string_equal(out.first_failed_code, "AccessDenied");
}

static void test_parse_time(void **state)
{
	assert_int_equal(s3_xml_parse_time("1970-01-01T00:00:00.000Z", 24), 0);
	assert_int_equal(s3_xml_parse_time("2009-10-12T17:50:30.000Z", 24), 1255369830);
	assert_int_equal(s3_xml_parse_time("garbage", 7), 0);
}

static void test_error_texts(void **state)
{
	char buf[512];
	struct s3_error e;

	/* every error has a text (the errno table is the filesystem's: test_fs_core) */
	for (int i = S3_ERR_NO_SUCH_KEY; i <= S3_ERR_OTHER; i++)
		assert_true(strcmp(s3_strerror((enum s3_err)i), "unknown error") != 0);

	memset(&e, 0, sizeof(e));
	e.err = S3_ERR_NO_SUCH_BUCKET;
	e.http_status = 404;
	strcpy(e.code, "NoSuchBucket");
	strcpy(e.message, "The specified bucket does not exist");
	strcpy(e.request_id, "tx0001");
	assert_string_equal(s3_error_format(&e, buf, sizeof(buf)),
	                    "NoSuchBucket: The specified bucket does not exist (HTTP 404, "
	                    "request id tx0001)");
}

static void http_error(struct s3_error *e, long status, const char *method, const char *body,
                       const char *region_hdr)
{
	memset(e, 0, sizeof(*e));
	if (region_hdr)
		strcpy(e->region, region_hdr);
	s3_error_from_http(e, status, method, "Op", body, body ? strlen(body) : 0);
}

static void test_http_errors(void **state)
{
	struct s3_error e;

	/* HEAD 404 has no body */
	http_error(&e, 404, "HEAD", NULL, NULL);
	assert_int_equal(e.err, S3_ERR_NO_SUCH_KEY);
	assert_string_equal(e.code, "NoSuchKey");
	assert_int_equal(e.http_status, 404);
	/* 403 without a body */
	http_error(&e, 403, "HEAD", NULL, NULL);
	assert_int_equal(e.err, S3_ERR_ACCESS_DENIED);
	assert_string_equal(e.code, "AccessDenied");
	/* the code decides, not the status */
	http_error(&e, 404, "GET", "<Error><Code>NoSuchBucket</Code></Error>", NULL);
	assert_int_equal(e.err, S3_ERR_NO_SUCH_BUCKET);
	http_error(&e, 403, "GET", "<Error><Code>SignatureDoesNotMatch</Code></Error>", NULL);
	assert_int_equal(e.err, S3_ERR_SIGNATURE);
	http_error(&e, 400, "PUT", "<Error><Code>BadDigest</Code></Error>", NULL);
	assert_int_equal(e.err, S3_ERR_BAD_DIGEST);
	http_error(&e, 400, "PUT", "<Error><Code>InvalidDigest</Code></Error>", NULL);
	assert_int_equal(e.err, S3_ERR_BAD_DIGEST);
	http_error(&e, 400, "POST", "<Error><Code>EntityTooSmall</Code></Error>", NULL);
	assert_int_equal(e.err, S3_ERR_ENTITY_TOO_SMALL);
	http_error(&e, 503, "GET", "<Error><Code>SlowDown</Code></Error>", NULL);
	assert_int_equal(e.err, S3_ERR_THROTTLED);
	http_error(&e, 500, "GET", "<Error><Code>InternalError</Code></Error>", NULL);
	assert_int_equal(e.err, S3_ERR_SERVER);
	http_error(&e, 502, "GET", NULL, NULL);
	assert_int_equal(e.err, S3_ERR_SERVER);
	http_error(&e, 400, "GET", "<Error><Code>ExpiredToken</Code></Error>", NULL);
	assert_int_equal(e.err, S3_ERR_EXPIRED_TOKEN);
	http_error(&e, 412, "GET", "<Error><Code>PreconditionFailed</Code></Error>", NULL);
	assert_int_equal(e.err, S3_ERR_PRECONDITION);
	http_error(&e, 416, "GET", NULL, NULL);
	assert_int_equal(e.err, S3_ERR_INVALID_RANGE);
	http_error(&e, 409, "GET", "<Error><Code>SomethingNew</Code><Message>m</Message></Error>",
	           NULL);
	assert_int_equal(e.err, S3_ERR_OTHER);
	assert_string_equal(e.code, "SomethingNew");
	assert_string_equal(e.message, "m");

	/* region redirects name the right region, from the header or the body */
	http_error(&e, 301, "HEAD", NULL, "eu-central-1");
	assert_int_equal(e.err, S3_ERR_WRONG_REGION);
	assert_string_equal(e.region, "eu-central-1");
	assert_non_null(strstr(e.message, "--region eu-central-1"));
	http_error(&e, 301, "GET",
	           "<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting "
	           "to access must be addressed using the specified endpoint.</Message>"
	           "<Endpoint>b.s3.eu-west-3.amazonaws.com</Endpoint></Error>",
	           "eu-west-3");
	assert_int_equal(e.err, S3_ERR_WRONG_REGION);
	assert_string_equal(e.region, "eu-west-3");
	http_error(&e, 400, "GET",
	           "<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization "
	           "header is malformed; the region 'us-east-1' is wrong; expecting "
	           "'ap-south-1'</Message><Region>ap-south-1</Region></Error>",
	           NULL);
	assert_int_equal(e.err, S3_ERR_WRONG_REGION);
	assert_string_equal(e.region, "ap-south-1");
	/* ... but a malformed header without a region is not a redirect */
	http_error(&e, 400, "GET",
	           "<Error><Code>AuthorizationHeaderMalformed</Code><Message>x</Message></Error>",
	           NULL);
	assert_int_equal(e.err, S3_ERR_OTHER);
}

static void test_addressing(void **state)
{
	struct xfer_engine *xe = xfer_engine_new(NULL);
	struct creds_provider *cp = creds_provider_new_static("AKID", "secret", NULL);
	struct s3_config cfg;
	struct s3_client *c;
	char url[1024], host[256], path[1024];

	assert_non_null(xe);
	assert_non_null(cp);
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = "http://127.0.0.1:7480";
	cfg.bucket = "my-bucket";
	cfg.force_path_style = true;
	cfg.creds = cp;
	cfg.xfer = xe;
	c = s3_client_new(&cfg);
	assert_non_null(c);
	/* every byte but unreserved and '/' is encoded, UTF-8 byte-wise */
	assert_int_equal(s3_client_test_url(c, "a b/c+d~e=f&\xc3\xbc*", NULL, url, sizeof(url),
	                                    host, sizeof(host), path, sizeof(path)),
	                 0);
	assert_string_equal(url, "http://127.0.0.1:7480/my-bucket/a%20b/c%2Bd~e%3Df%26%C3%BC%2A");
	assert_string_equal(host, "127.0.0.1:7480");
	assert_string_equal(path, "/my-bucket/a%20b/c%2Bd~e%3Df%26%C3%BC%2A");
	assert_int_equal(s3_client_test_url(c, NULL, "list-type=2", url, sizeof(url), host,
	                                    sizeof(host), path, sizeof(path)),
	                 0);
	assert_string_equal(url, "http://127.0.0.1:7480/my-bucket?list-type=2");
	assert_string_equal(path, "/my-bucket");
	s3_client_free(c);

	cfg.force_path_style = false;
	cfg.endpoint = "https://s3.eu-west-1.amazonaws.com";
	c = s3_client_new(&cfg);
	assert_non_null(c);
	assert_int_equal(s3_client_test_url(c, "dir/k", "uploads", url, sizeof(url), host,
	                                    sizeof(host), path, sizeof(path)),
	                 0);
	assert_string_equal(url, "https://my-bucket.s3.eu-west-1.amazonaws.com/dir/k?uploads");
	assert_string_equal(host, "my-bucket.s3.eu-west-1.amazonaws.com");
	assert_string_equal(path, "/dir/k");
	assert_int_equal(s3_client_test_url(c, NULL, NULL, url, sizeof(url), host, sizeof(host),
	                                    path, sizeof(path)),
	                 0);
	assert_string_equal(url, "https://my-bucket.s3.eu-west-1.amazonaws.com/");
	assert_string_equal(path, "/");
	s3_client_free(c);

	/* a custom endpoint with a path prefix, virtual-hosted */
	cfg.endpoint = "http://store.example:9000/s3/";
	c = s3_client_new(&cfg);
	assert_non_null(c);
	assert_int_equal(s3_client_test_url(c, "k", NULL, url, sizeof(url), host, sizeof(host),
	                                    path, sizeof(path)),
	                 0);
	assert_string_equal(url, "http://my-bucket.store.example:9000/s3/k");
	assert_string_equal(host, "my-bucket.store.example:9000");
	assert_string_equal(path, "/s3/k");
	s3_client_free(c);

	/* a dotted bucket over TLS falls back to path style */
	cfg.bucket = "my.dotted.bucket";
	cfg.endpoint = "https://s3.us-west-2.amazonaws.com";
	c = s3_client_new(&cfg);
	assert_non_null(c);
	assert_int_equal(s3_client_test_url(c, "k", NULL, url, sizeof(url), host, sizeof(host),
	                                    path, sizeof(path)),
	                 0);
	assert_string_equal(url, "https://s3.us-west-2.amazonaws.com/my.dotted.bucket/k");
	assert_string_equal(host, "s3.us-west-2.amazonaws.com");
	s3_client_free(c);

	/* an address or localhost as the endpoint cannot carry a bucket label: path style */
	cfg.bucket = "my-bucket";
	{
		static const char *const eps[] = {"http://127.0.0.1:7480", "http://localhost:7480",
		                                  "http://[::1]:7480"};
		static const char *const want[] = {"http://127.0.0.1:7480/my-bucket/k",
		                                   "http://localhost:7480/my-bucket/k",
		                                   "http://[::1]:7480/my-bucket/k"};

		for (size_t i = 0; i < 3; i++) {
			cfg.endpoint = eps[i];
			c = s3_client_new(&cfg);
			assert_non_null(c);
			assert_int_equal(s3_client_test_url(c, "k", NULL, url, sizeof(url), host,
			                                    sizeof(host), path, sizeof(path)),
			                 0);
			assert_string_equal(url, want[i]);
			assert_string_equal(path, "/my-bucket/k");
			s3_client_free(c);
		}
	}

	/* bad bucket names are refused with a message */
	cfg.bucket = "Bad_Bucket!";
	assert_null(s3_client_new(&cfg));

	creds_provider_free(cp);
	xfer_engine_free(xe);
}

/* The request's classify callback ends the parse, then the result reads it: same answer. */
static void test_finish_twice_same_answer(void **state)
{
	static const char trunc_xml[] = "<ListBucketResult><Name>b</Name><Contents><Key>a";
	struct s3_list_page pg;
	struct s3_doc_out out;
	struct s3_doc *d;
	char why[160];

	memset(&pg, 0, sizeof(pg));
	memset(&out, 0, sizeof(out));
	out.page = &pg;
	d = s3_doc_new(S3_DOC_LIST_OBJECTS, &out);
	assert_non_null(d);
	assert_int_equal(s3_doc_feed(d, list_xml, strlen(list_xml)), 0);
	assert_int_equal(s3_doc_finish(d, why, sizeof(why)), 0);
	assert_int_equal(s3_doc_finish(d, why, sizeof(why)), 0);
	s3_doc_free(d);
	check_list_page(&pg);
	s3_list_page_free(&pg);

	memset(&pg, 0, sizeof(pg));
	memset(&out, 0, sizeof(out));
	out.page = &pg;
	d = s3_doc_new(S3_DOC_LIST_OBJECTS, &out);
	assert_non_null(d);
	(void)s3_doc_feed(d, trunc_xml, strlen(trunc_xml));
	assert_int_equal(s3_doc_finish(d, why, sizeof(why)), -1);
	why[0] = '\0';
	assert_int_equal(s3_doc_finish(d, why, sizeof(why)), -1);
	assert_true(why[0] != '\0');
	s3_doc_free(d);
	s3_doc_out_free(&out);
	s3_list_page_free(&pg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_list_page_any_chunking),
	    cmocka_unit_test(test_finish_twice_same_answer),
	    cmocka_unit_test(test_list_page_plain_keys),
	    cmocka_unit_test(test_list_page_bounded_by_max_keys),
	    cmocka_unit_test(test_list_many_entries),
	    cmocka_unit_test(test_malformed_and_truncated),
	    cmocka_unit_test(test_error_documents),
	    cmocka_unit_test(test_region_from_endpoint),
	    cmocka_unit_test(test_multipart_documents),
	    cmocka_unit_test(test_parse_time),
	    cmocka_unit_test(test_error_texts),
	    cmocka_unit_test(test_http_errors),
	    cmocka_unit_test(test_addressing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
