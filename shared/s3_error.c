/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3_error: the S3 client's error taxonomy: enum s3_err, the table of the
 * server's error codes, what an HTTP error reply means, and the one-line
 * form of a failure for logs and messages. Nothing here knows errno: the
 * filesystem maps S3 errors to errno in its own table (fs/fs_errno.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "s3.h"
#include "s3_request.h"
#include "s3_test.h"
#include "s3_xml.h"

const char *s3_strerror(enum s3_err err)
{
	switch (err) {
	case S3_OK:
		return "success";
	case S3_ERR_NO_SUCH_KEY:
		return "no such key";
	case S3_ERR_NO_SUCH_BUCKET:
		return "no such bucket";
	case S3_ERR_NO_SUCH_UPLOAD:
		return "no such multipart upload";
	case S3_ERR_ACCESS_DENIED:
		return "access denied";
	case S3_ERR_SIGNATURE:
		return "signature does not match (wrong secret key?)";
	case S3_ERR_INVALID_ACCESS_KEY:
		return "unknown access key id";
	case S3_ERR_EXPIRED_TOKEN:
		return "credentials expired";
	case S3_ERR_WRONG_REGION:
		return "bucket is in another region";
	case S3_ERR_PRECONDITION:
		return "precondition failed (object changed)";
	case S3_ERR_NOT_MODIFIED:
		return "not modified";
	case S3_ERR_INVALID_RANGE:
		return "invalid range";
	case S3_ERR_ENTITY_TOO_SMALL:
		return "part too small";
	case S3_ERR_ENTITY_TOO_LARGE:
		return "object or part too large";
	case S3_ERR_BAD_DIGEST:
		return "Content-MD5 mismatch (bytes corrupted)";
	case S3_ERR_INVALID_PART:
		return "invalid part";
	case S3_ERR_INVALID_ARGUMENT:
		return "invalid argument";
	case S3_ERR_THROTTLED:
		return "throttled";
	case S3_ERR_SERVER:
		return "server error";
	case S3_ERR_NETWORK:
		return "network error";
	case S3_ERR_TIMEOUT:
		return "no answer in time";
	case S3_ERR_NO_CREDENTIALS:
		return "no credentials";
	case S3_ERR_CANCELLED:
		return "cancelled";
	case S3_ERR_NOMEM:
		return "out of memory";
	case S3_ERR_PROTOCOL:
		return "unparsable reply";
	case S3_ERR_OTHER:
		return "S3 error";
	}
	return "unknown error";
}

const char *s3_checksum_name(enum s3_checksum c)
{
	switch (c) {
	case S3_CHECKSUM_CRC32C:
		return "crc32c";
	case S3_CHECKSUM_CRC64NVME:
		return "crc64nvme";
	case S3_CHECKSUM_MD5:
		return "md5";
	case S3_CHECKSUM_NONE:
		return "off";
	}
	return "?";
}

const char *s3_error_format(const struct s3_error *e, char *buf, size_t len)
{
	const char *code = e->code[0] ? e->code : s3_strerror(e->err);
	int n;

	if (!len)
		return buf;
	n = snprintf(buf, len, "%s: %s", code, e->message[0] ? e->message : s3_strerror(e->err));
	if (n >= 0 && (size_t)n < len && e->http_status)
		n += snprintf(buf + n, len - (size_t)n, " (HTTP %ld%s%s)", e->http_status,
		              e->request_id[0] ? ", request id " : "", e->request_id);
	if (n >= 0 && (size_t)n < len && e->region[0])
		snprintf(buf + n, len - (size_t)n, " [bucket region %s]", e->region);
	return buf;
}

void s3_set_err(struct s3_error *e, enum s3_err code, const char *fmt, ...)
{
	va_list ap;

	memset(e, 0, sizeof(*e));
	e->err = code;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

static const struct {
	const char *code;
	enum s3_err err;
} code_table[] = {
    {"NoSuchKey", S3_ERR_NO_SUCH_KEY},
    {"NoSuchVersion", S3_ERR_NO_SUCH_KEY},
    {"NoSuchBucket", S3_ERR_NO_SUCH_BUCKET},
    {"NoSuchUpload", S3_ERR_NO_SUCH_UPLOAD},
    {"AccessDenied", S3_ERR_ACCESS_DENIED},
    {"AllAccessDisabled", S3_ERR_ACCESS_DENIED},
    {"AccountProblem", S3_ERR_ACCESS_DENIED},
    {"InvalidObjectState", S3_ERR_ACCESS_DENIED},
    {"SignatureDoesNotMatch", S3_ERR_SIGNATURE},
    {"InvalidAccessKeyId", S3_ERR_INVALID_ACCESS_KEY},
    {"ExpiredToken", S3_ERR_EXPIRED_TOKEN},
    {"TokenRefreshRequired", S3_ERR_EXPIRED_TOKEN},
    {"InvalidToken", S3_ERR_EXPIRED_TOKEN},
    {"RequestTimeTooSkewed", S3_ERR_SIGNATURE},
    {"PermanentRedirect", S3_ERR_WRONG_REGION},
    {"TemporaryRedirect", S3_ERR_WRONG_REGION},
    {"Redirect", S3_ERR_WRONG_REGION},
    {"IllegalLocationConstraintException", S3_ERR_WRONG_REGION},
    {"PreconditionFailed", S3_ERR_PRECONDITION},
    {"InvalidRange", S3_ERR_INVALID_RANGE},
    {"EntityTooSmall", S3_ERR_ENTITY_TOO_SMALL},
    {"EntityTooLarge", S3_ERR_ENTITY_TOO_LARGE},
    {"BadDigest", S3_ERR_BAD_DIGEST},
    {"InvalidDigest", S3_ERR_BAD_DIGEST},
    {"XAmzContentSHA256Mismatch", S3_ERR_BAD_DIGEST},
    {"InvalidPart", S3_ERR_INVALID_PART},
    {"InvalidPartOrder", S3_ERR_INVALID_PART},
    {"InvalidArgument", S3_ERR_INVALID_ARGUMENT},
    {"InvalidRequest", S3_ERR_INVALID_ARGUMENT},
    {"InvalidBucketName", S3_ERR_INVALID_ARGUMENT},
    {"KeyTooLongError", S3_ERR_INVALID_ARGUMENT},
    {"MalformedXML", S3_ERR_INVALID_ARGUMENT},
    {"InvalidURI", S3_ERR_INVALID_ARGUMENT},
    {"MissingContentLength", S3_ERR_INVALID_ARGUMENT},
    {"SlowDown", S3_ERR_THROTTLED},
    {"Throttling", S3_ERR_THROTTLED},
    {"ThrottlingException", S3_ERR_THROTTLED},
    {"RequestLimitExceeded", S3_ERR_THROTTLED},
    {"TooManyRequestsException", S3_ERR_THROTTLED},
    {"InternalError", S3_ERR_SERVER},
    {"ServiceUnavailable", S3_ERR_SERVER},
    {"RequestTimeout", S3_ERR_NETWORK},
};

/* The enum for an S3 code, or from the HTTP status when there is no body. */
enum s3_err s3_err_from_code(const char *code, long status, const char *method)
{
	if (code && code[0]) {
		for (size_t i = 0; i < sizeof(code_table) / sizeof(code_table[0]); i++)
			if (strcmp(code_table[i].code, code) == 0)
				return code_table[i].err;
		/* AuthorizationHeaderMalformed is a region mismatch only when it names one. */
	}
	switch (status) {
	case 301:
	case 307:
		return S3_ERR_WRONG_REGION;
	case 304:
		return S3_ERR_NOT_MODIFIED;
	case 403:
		return S3_ERR_ACCESS_DENIED;
	case 404:
		return method && strcmp(method, "HEAD") == 0
		           ? S3_ERR_NO_SUCH_KEY
		           : (code && code[0] ? S3_ERR_OTHER : S3_ERR_NO_SUCH_KEY);
	case 412:
		return S3_ERR_PRECONDITION;
	case 416:
		return S3_ERR_INVALID_RANGE;
	case 429:
	case 503:
		return S3_ERR_THROTTLED;
	default:
		break;
	}
	if (code && code[0])
		return S3_ERR_OTHER;
	if (status >= 500)
		return S3_ERR_SERVER;
	if (status == 400)
		return S3_ERR_INVALID_ARGUMENT;
	return S3_ERR_OTHER;
}

void s3_error_from_http(struct s3_error *e, long status, const char *method, const char *op,
                        const char *body, size_t len)
{
	e->http_status = status;
	s3_xml_parse_error(body, len, e);
	e->err = s3_err_from_code(e->code, status, method);
	/* AuthorizationHeaderMalformed is a region mismatch when it names the region. */
	if (strcmp(e->code, "AuthorizationHeaderMalformed") == 0 && e->region[0])
		e->err = S3_ERR_WRONG_REGION;
	if (!e->message[0]) {
		if (status == 404 && !e->code[0])
			snprintf(e->message, sizeof(e->message), "%s: not found (HTTP 404)", op);
		else
			snprintf(e->message, sizeof(e->message), "%s failed with HTTP %ld", op,
			         status);
	}
	if (!e->code[0] && status == 404 && e->err == S3_ERR_NO_SUCH_KEY)
		snprintf(e->code, sizeof(e->code), "NoSuchKey");
	if (!e->code[0] && status == 403)
		snprintf(e->code, sizeof(e->code), "AccessDenied");
	if (e->err == S3_ERR_WRONG_REGION) {
		size_t ml = strlen(e->message);

		if (e->region[0])
			snprintf(e->message + ml, sizeof(e->message) - ml,
			         "; the bucket is in region %s: use --region %s", e->region,
			         e->region);
		else
			snprintf(
			    e->message + ml, sizeof(e->message) - ml,
			    "; the bucket is in another region: give its region with --region");
	}
}
