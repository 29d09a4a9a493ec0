/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3: the S3 client. Each call builds one struct s3_req (URL, headers,
 * body), signs it per attempt with SigV4 in the transfer engine's sign
 * callback, streams XML replies into the s3_xml parsers and turns the
 * outcome into a struct s3_error.
 */
#include "s3.h"

#include <ctype.h>
#include <limits.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "creds.h"
#include "endpoint.h"
#include "log.h"
#include "s3_test.h"
#include "s3_xml.h"
#include "sigv4.h"
#include "util.h"
#include "xfer.h"

#ifndef HPCOPS_VERSION
#define HPCOPS_VERSION "0"
#endif

#define S3_MAX_HEADERS 8

struct s3_client {
	char *region;
	char *bucket;
	char *url_prefix;  /* "http://h:p/base/bucket" or "http://bucket.h:p/base" */
	char *path_prefix; /* "/base/bucket" or "/base": what the signed path starts with */
	char host[300];    /* Host header for url_prefix */
	bool no_sign;
	struct creds_provider *creds;
	struct xfer_engine *xfer;
	bool test_corrupt_md5;
};

/* One S3 request: the engine request plus what the S3 layer keeps for it. */
struct s3_req {
	struct xfer_request x;
	struct s3_client *c;
	const char *op;
	char *url;
	char *path;
	char *query;
	struct xfer_header hdrs[S3_MAX_HEADERS];
	size_t nh;
	const char *payload_hash;
	char sha[65];
	char md5[25];
	char range[64];
	char if_match[96];
	char copy_range[64];
	char meta_mtime[48]; /* x-amz-meta-mtime value */
	char *copy_source;
	char *body_owned; /* a body built here (XML), freed with the request */
	bool creds_failed;
	bool range_from_zero; /* GET with a Range starting at byte 0 */

	/* response headers of interest */
	struct s3_object_info info;
	bool have_range_total;
	char region[32];

	/* streamed XML reply */
	enum s3_doc_kind doc_kind;
	struct s3_doc *doc;
	bool doc_lost; /* a retry could not make a new parser (out of memory) */
	struct s3_doc_out out;

	/* streamed GET */
	const struct s3_sink *sink;

	/* async completion */
	s3_done_fn done;
	void *done_user;
	char *etag_out;
};

static struct s3_req *req_new(struct s3_client *c, const char *method, const char *op,
                              const char *key, const char *query);
static void req_free(struct s3_req *r);

/* ---- errors ---- */

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

int s3_err_to_errno(enum s3_err err)
{
	switch (err) {
	case S3_OK:
		return 0;
	case S3_ERR_NO_SUCH_KEY:
		return ENOENT;
	case S3_ERR_NO_SUCH_BUCKET:
		return ENOENT;
	case S3_ERR_NO_SUCH_UPLOAD:
		return EIO;
	case S3_ERR_ACCESS_DENIED:
		return EACCES;
	case S3_ERR_SIGNATURE:
		return EACCES;
	case S3_ERR_INVALID_ACCESS_KEY:
		return EACCES;
	case S3_ERR_EXPIRED_TOKEN:
		return EACCES;
	case S3_ERR_WRONG_REGION:
		return EIO;
	case S3_ERR_PRECONDITION:
		return ESTALE;
	case S3_ERR_NOT_MODIFIED:
		return EAGAIN;
	case S3_ERR_INVALID_RANGE:
		return EINVAL;
	case S3_ERR_ENTITY_TOO_SMALL:
		return EIO;
	case S3_ERR_ENTITY_TOO_LARGE:
		return EFBIG;
	case S3_ERR_BAD_DIGEST:
		return EIO;
	case S3_ERR_INVALID_PART:
		return EIO;
	case S3_ERR_INVALID_ARGUMENT:
		return EINVAL;
	case S3_ERR_THROTTLED:
		return EIO;
	case S3_ERR_SERVER:
		return EIO;
	case S3_ERR_NETWORK:
		return EIO;
	case S3_ERR_NO_CREDENTIALS:
		return EACCES;
	case S3_ERR_CANCELLED:
		return ECANCELED;
	case S3_ERR_NOMEM:
		return ENOMEM;
	case S3_ERR_PROTOCOL:
		return EPROTO;
	case S3_ERR_OTHER:
		return EIO;
	}
	return EIO;
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

static void set_err(struct s3_error *e, enum s3_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(struct s3_error *e, enum s3_err code, const char *fmt, ...)
{
	va_list ap;

	memset(e, 0, sizeof(*e));
	e->err = code;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

static void clear_err(struct s3_error *e)
{
	memset(e, 0, sizeof(*e));
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
static enum s3_err err_from(const char *code, long status, const char *method)
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
	e->err = err_from(e->code, status, method);
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

/* Fill @e from the finished request @r. */
static void result_to_error(struct s3_req *r, struct s3_error *e)
{
	struct xfer_result *res = &r->x.result;

	clear_err(e);
	snprintf(e->request_id, sizeof(e->request_id), "%s", res->request_id);
	snprintf(e->region, sizeof(e->region), "%s", r->region);
	e->http_status = res->http_status;
	if (r->doc_lost) {
		e->err = S3_ERR_NOMEM;
		snprintf(e->message, sizeof(e->message), "%s: out of memory for the reply parser",
		         r->op);
		return;
	}
	switch (res->status) {
	case XFER_OK:
		break;
	case XFER_ERR_NETWORK:
	case XFER_ERR_TIMEOUT:
		e->err = S3_ERR_NETWORK;
		snprintf(e->message, sizeof(e->message), "%s %s: %.120s (%.80s)", r->op,
		         xfer_strstatus(res->status), res->errmsg, r->url);
		return;
	case XFER_ERR_CANCELLED:
		e->err = S3_ERR_CANCELLED;
		snprintf(e->message, sizeof(e->message), "%s cancelled", r->op);
		return;
	case XFER_ERR_TOO_LARGE:
		e->err = S3_ERR_INVALID_RANGE;
		snprintf(e->message, sizeof(e->message),
		         "%s: the object is larger than the buffer given", r->op);
		return;
	case XFER_ERR_SIGN:
		e->err = r->creds_failed ? S3_ERR_NO_CREDENTIALS : S3_ERR_INVALID_ARGUMENT;
		snprintf(e->message, sizeof(e->message), "%.250s", res->errmsg);
		return;
	case XFER_ERR_NOMEM:
		e->err = S3_ERR_NOMEM;
		snprintf(e->message, sizeof(e->message), "%s: out of memory", r->op);
		return;
	case XFER_ERR_INVALID:
		e->err = S3_ERR_INVALID_ARGUMENT;
		snprintf(e->message, sizeof(e->message), "%s: %.200s", r->op, res->errmsg);
		return;
	}
	if (res->http_status == 416 && r->range_from_zero) {
		/* Bytes from 0 not satisfiable: the object is empty. A read gets 0 bytes. */
		memset(&r->info, 0, sizeof(r->info));
		res->body_len = 0;
		return;
	}
	if (res->http_status >= 300) {
		s3_error_from_http(e, res->http_status, r->x.method, r->op, res->err_body,
		                   res->err_body_len);
		if (e->err == S3_ERR_EXPIRED_TOKEN && r->c->creds)
			creds_invalidate(r->c->creds);
		return;
	}
	if (res->http_status < 200) {
		e->err = S3_ERR_PROTOCOL;
		snprintf(e->message, sizeof(e->message), "%s: unexpected HTTP %ld", r->op,
		         res->http_status);
		return;
	}
	/* A 2xx with an XML reply: the document may still say <Error>. */
	if (r->doc) {
		char why[160];

		if (s3_doc_finish(r->doc, why, sizeof(why)) != 0) {
			e->err = S3_ERR_PROTOCOL;
			snprintf(e->message, sizeof(e->message), "%s: cannot parse the reply: %s",
			         r->op, why);
			return;
		}
		if (r->out.is_error) {
			memcpy(e->code, r->out.error.code, sizeof(e->code));
			memcpy(e->message, r->out.error.message, sizeof(e->message));
			if (r->out.error.request_id[0])
				memcpy(e->request_id, r->out.error.request_id,
				       sizeof(e->request_id));
			e->err = err_from(e->code, 500, r->x.method);
			return;
		}
	}
	e->err = S3_OK;
}

/* ---- client ---- */

void s3_client_test_corrupt_md5(struct s3_client *c, bool on)
{
	c->test_corrupt_md5 = on;
}

int s3_client_test_url(struct s3_client *c, const char *key, const char *query, char *url,
                       size_t url_len, char *host, size_t host_len, char *path, size_t path_len)
{
	struct s3_req *r = req_new(c, "GET", "test", key, query);
	int ret = -1;

	if (!r)
		return -1;
	if ((size_t)snprintf(url, url_len, "%s", r->url) < url_len &&
	    (size_t)snprintf(host, host_len, "%s", c->host) < host_len &&
	    (size_t)snprintf(path, path_len, "%s", r->path) < path_len)
		ret = 0;
	req_free(r);
	return ret;
}

static bool bucket_name_ok(const char *b)
{
	size_t n = strlen(b);

	if (n < 3 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)b[i]) || isdigit((unsigned char)b[i]) || b[i] == '-' ||
		      b[i] == '.' || b[i] == '_'))
			return false;
	return true;
}

/* An IPv4 or [IPv6] literal, or localhost, in [host, end) (a ":port" may follow). */
static bool host_is_literal(const char *host, const char *end)
{
	size_t len = (size_t)(end - host);
	const char *colon = memchr(host, ':', len);

	if (len > 0 && host[0] == '[')
		return true;
	if (colon)
		len = (size_t)(colon - host);
	if (len == 9 && strncasecmp(host, "localhost", 9) == 0)
		return true;
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!(host[i] == '.' || (host[i] >= '0' && host[i] <= '9')))
			return false;
	}
	return true;
}

struct s3_client *s3_client_new(const struct s3_config *cfg)
{
	struct s3_client *c;
	char *ep = NULL, errbuf[256], base[512];
	const char *scheme_end, *host, *host_end;
	bool path_style = cfg && cfg->force_path_style;
	int n;

	if (!cfg || !cfg->bucket || !cfg->xfer || (!cfg->creds && !cfg->no_sign)) {
		log_err("s3: a client needs a bucket, a transfer engine and credentials");
		return NULL;
	}
	if (!bucket_name_ok(cfg->bucket)) {
		log_err("s3: \"%s\" is not a valid bucket name (3-63 characters: lower-case "
		        "letters, digits, '-' and '.')",
		        cfg->bucket);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->region = strdup(cfg->region && cfg->region[0] ? cfg->region : "us-east-1");
	c->bucket = strdup(cfg->bucket);
	c->no_sign = cfg->no_sign;
	c->creds = cfg->creds;
	c->xfer = cfg->xfer;
	if (!c->region || !c->bucket)
		goto fail;
	if (endpoint_resolve("s3", cfg->endpoint, c->region, &ep, errbuf, sizeof(errbuf))) {
		log_err("s3: %s", errbuf);
		goto fail;
	}
	if (endpoint_base_path(ep, base, sizeof(base))) {
		log_err("s3: endpoint path too long in %s", ep);
		goto fail;
	}
	scheme_end = strstr(ep, "://");
	if (!scheme_end)
		goto fail;
	host = scheme_end + 3;
	host_end = host + strcspn(host, "/?#");
	/*
	 * A dotted bucket name as a TLS host name fails certificate checks
	 * (*.s3.amazonaws.com covers one label): use path style, as the SDKs do.
	 */
	if (!cfg->force_path_style && strchr(c->bucket, '.') && strncmp(ep, "https:", 6) == 0) {
		log_info("s3: bucket %s has dots: using path-style addressing for TLS", c->bucket);
		path_style = true;
	}
	/*
	 * A bucket cannot be a label of an IP address or of "localhost": the
	 * SDKs use path style for such endpoints, and so do we.
	 */
	if (!path_style && host_is_literal(host, host_end)) {
		log_info("s3: endpoint %.*s is an address: using path-style addressing",
		         (int)(host_end - host), host);
		path_style = true;
	}
	if (path_style) {
		n = asprintf(&c->url_prefix, "%.*s%s/%s", (int)(host_end - ep), ep, base,
		             c->bucket);
		if (n < 0)
			c->url_prefix = NULL;
		n = asprintf(&c->path_prefix, "%s/%s", base, c->bucket);
		if (n < 0)
			c->path_prefix = NULL;
	} else {
		n = asprintf(&c->url_prefix, "%.*s%s.%.*s%s", (int)(host - ep), ep, c->bucket,
		             (int)(host_end - host), host, base);
		if (n < 0)
			c->url_prefix = NULL;
		c->path_prefix = strdup(base);
	}
	if (!c->url_prefix || !c->path_prefix)
		goto fail;
	if (endpoint_host_header(c->url_prefix, c->host, sizeof(c->host))) {
		log_err("s3: cannot find the host in %s", c->url_prefix);
		goto fail;
	}
	free(ep);
	return c;
fail:
	free(ep);
	s3_client_free(c);
	return NULL;
}

void s3_client_free(struct s3_client *c)
{
	if (!c)
		return;
	free(c->region);
	free(c->bucket);
	free(c->url_prefix);
	free(c->path_prefix);
	free(c);
}

/* ---- requests ---- */

static void req_free(struct s3_req *r)
{
	if (!r)
		return;
	xfer_request_cleanup(&r->x);
	free(r->url);
	free(r->path);
	free(r->query);
	free(r->copy_source);
	free(r->body_owned);
	s3_doc_free(r->doc);
	s3_doc_out_free(&r->out);
	free(r);
}

static void add_header(struct s3_req *r, const char *name, const char *value)
{
	if (r->nh < S3_MAX_HEADERS) {
		r->hdrs[r->nh].name = name;
		r->hdrs[r->nh].value = value;
		r->nh++;
	}
}

/* Put @m (NULL: nothing) on @r as x-amz-meta-* headers. */
static void add_meta(struct s3_req *r, const struct s3_obj_meta *m)
{
	if (!m || !m->has_mtime)
		return;
	if (m->mtime.tv_sec < 0 && m->mtime.tv_nsec > 0) /* {-2, .5e9} is -1.5 s */
		snprintf(r->meta_mtime, sizeof(r->meta_mtime), "-%lld.%09ld",
		         -((long long)m->mtime.tv_sec + 1), 1000000000L - (long)m->mtime.tv_nsec);
	else
		snprintf(r->meta_mtime, sizeof(r->meta_mtime), "%lld.%09ld",
		         (long long)m->mtime.tv_sec, (long)m->mtime.tv_nsec);
	add_header(r, "x-amz-meta-mtime", r->meta_mtime);
}

/* "SECONDS[.FRACTION]" (rclone, s3fs) -> @t; false if it is not that. */
static bool parse_meta_mtime(const char *v, size_t vlen, struct timespec *t)
{
	long long sec = 0;
	long nsec = 0;
	size_t i = 0;
	int digits = 0;
	bool neg = false;

	if (i < vlen && v[i] == '-') {
		neg = true;
		i++;
	}
	if (i == vlen || !isdigit((unsigned char)v[i]))
		return false;
	for (; i < vlen && isdigit((unsigned char)v[i]); i++) {
		if (sec > (LLONG_MAX - 9) / 10)
			return false;
		sec = sec * 10 + (v[i] - '0');
	}
	if (i < vlen && v[i] == '.') {
		for (i++; i < vlen && isdigit((unsigned char)v[i]); i++) {
			if (digits < 9) {
				nsec = nsec * 10 + (v[i] - '0');
				digits++;
			}
		}
		for (; digits < 9; digits++)
			nsec *= 10;
	}
	if (i != vlen)
		return false;
	t->tv_sec = (time_t)(neg ? -sec : sec);
	t->tv_nsec = nsec;
	if (neg && nsec) {
		t->tv_sec--;
		t->tv_nsec = 1000000000L - nsec;
	}
	return true;
}

static int s3_sign_cb(void *user, struct xfer_request *x, struct curl_slist **extra)
{
	struct s3_req *r = user;
	struct s3_client *c = r->c;
	struct sigv4_header h[S3_MAX_HEADERS + 1];
	struct sigv4_params p;
	struct sigv4_result res;
	struct creds cr;
	struct creds_error ce;
	size_t n = 0;
	int ret = -1;

	if (c->no_sign)
		return 0;
	memset(&cr, 0, sizeof(cr));
	memset(&res, 0, sizeof(res));
	if (creds_get(c->creds, &cr, &ce)) {
		r->creds_failed = true;
		snprintf(x->result.errmsg, sizeof(x->result.errmsg), "no credentials: %.230s",
		         ce.message);
		return -1;
	}
	h[n].name = "Host";
	h[n++].value = c->host;
	for (size_t i = 0; i < r->nh; i++) {
		if (!r->hdrs[i].value)
			continue;
		h[n].name = r->hdrs[i].name;
		h[n++].value = r->hdrs[i].value;
	}
	memset(&p, 0, sizeof(p));
	p.method = x->method;
	p.path = r->path;
	p.query = r->query;
	p.headers = h;
	p.n_headers = n;
	p.payload_hash = r->payload_hash;
	p.region = c->region;
	p.service = "s3";
	p.s3 = true;
	p.creds = &cr;
	if (sigv4_sign(&p, &res)) {
		snprintf(x->result.errmsg, sizeof(x->result.errmsg), "SigV4 signing failed");
		goto out;
	}
	if (xfer_header_add(extra, "Authorization", res.authorization) ||
	    xfer_header_add(extra, "X-Amz-Date", res.amz_date) ||
	    (res.content_sha256[0] &&
	     xfer_header_add(extra, "x-amz-content-sha256", res.content_sha256)) ||
	    (res.security_token &&
	     xfer_header_add(extra, "X-Amz-Security-Token", res.security_token))) {
		snprintf(x->result.errmsg, sizeof(x->result.errmsg),
		         "out of memory adding the signature headers");
		goto out;
	}
	ret = 0;
out:
	sigv4_result_free(&res);
	creds_clear(&cr);
	return ret;
}

static bool hname(const char *name, size_t nlen, const char *want)
{
	return strlen(want) == nlen && strncasecmp(name, want, nlen) == 0;
}

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* RFC 7231 IMF-fixdate, "Wed, 12 Oct 2009 17:50:00 GMT", without the locale. */
static time_t parse_http_date(const char *v, size_t len)
{
	char buf[64], mon[4];
	struct tm tm;
	int d, y, h, mi, s;

	if (len >= sizeof(buf))
		return 0;
	memcpy(buf, v, len);
	buf[len] = '\0';
	if (sscanf(buf, "%*3s, %d %3s %d %d:%d:%d", &d, mon, &y, &h, &mi, &s) != 6)
		return 0;
	memset(&tm, 0, sizeof(tm));
	tm.tm_mon = -1;
	for (int i = 0; i < 12; i++)
		if (strcmp(mon, months[i]) == 0)
			tm.tm_mon = i;
	if (tm.tm_mon < 0)
		return 0;
	tm.tm_mday = d;
	tm.tm_year = y - 1900;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	return timegm(&tm);
}

static void s3_header_cb(void *user, const char *name, size_t nlen, const char *v, size_t vlen)
{
	struct s3_req *r = user;
	char num[32];

	switch (nlen) {
	case 4:
		if (hname(name, nlen, "ETag")) {
			while (vlen && *v == '"') {
				v++;
				vlen--;
			}
			while (vlen && v[vlen - 1] == '"')
				vlen--;
			if (vlen >= sizeof(r->info.etag))
				vlen = sizeof(r->info.etag) - 1;
			memcpy(r->info.etag, v, vlen);
			r->info.etag[vlen] = '\0';
		}
		break;
	case 13:
		if (hname(name, nlen, "Last-Modified")) {
			r->info.mtime = parse_http_date(v, vlen);
		} else if (hname(name, nlen, "Content-Range")) {
			/* "bytes 0-99/1234": the total after '/' */
			const char *sl = memchr(v, '/', vlen);

			if (sl && (size_t)(v + vlen - sl - 1) < sizeof(num) && sl[1] != '*') {
				size_t k = (size_t)(v + vlen - sl - 1);

				memcpy(num, sl + 1, k);
				num[k] = '\0';
				r->info.size = strtoull(num, NULL, 10);
				r->have_range_total = true;
			}
		}
		break;
	case 14:
		if (hname(name, nlen, "Content-Length") && !r->have_range_total &&
		    vlen < sizeof(num)) {
			memcpy(num, v, vlen);
			num[vlen] = '\0';
			r->info.size = strtoull(num, NULL, 10);
		}
		break;
	case 16:
		if (hname(name, nlen, "x-amz-meta-mtime"))
			r->info.meta.has_mtime = parse_meta_mtime(v, vlen, &r->info.meta.mtime);
		break;
	case 19:
		if (hname(name, nlen, "x-amz-bucket-region") && vlen < sizeof(r->region)) {
			memcpy(r->region, v, vlen);
			r->region[vlen] = '\0';
		}
		break;
	default:
		break;
	}
}

static int doc_write_cb(void *user, const void *data, size_t len)
{
	struct s3_req *r = user;

	/* Without a parser the reply cannot be read: stop rather than pass it as empty. */
	if (!r->doc)
		return -1;
	/* A malformed document is reported at the end by s3_doc_finish(). */
	s3_doc_feed(r->doc, data, len);
	return 0;
}

static void doc_reset_cb(void *user)
{
	struct s3_req *r = user;
	struct s3_list_page *page = r->out.page;
	size_t max = r->out.max_entries;

	s3_doc_free(r->doc);
	s3_doc_out_free(&r->out);
	memset(&r->out, 0, sizeof(r->out));
	if (page) {
		s3_list_page_free(page);
		memset(page, 0, sizeof(*page));
	}
	r->out.page = page;
	r->out.max_entries = max;
	r->doc = s3_doc_new(r->doc_kind, &r->out);
	r->doc_lost = !r->doc;
}

/* Expect an XML document of @kind in a 2xx reply, parsed as it streams. */
static int req_expect_doc(struct s3_req *r, enum s3_doc_kind kind)
{
	r->doc_kind = kind;
	r->doc = s3_doc_new(kind, &r->out);
	if (!r->doc)
		return -1;
	r->x.write = doc_write_cb;
	r->x.write_reset = doc_reset_cb;
	return 0;
}

/*
 * A request for @key (NULL = the bucket) with @query ("" or NULL for none,
 * already encoded). NULL on allocation failure.
 */
static struct s3_req *req_new(struct s3_client *c, const char *method, const char *op,
                              const char *key, const char *query)
{
	struct s3_req *r = calloc(1, sizeof(*r));
	char *ekey = NULL;
	int n;

	if (!r)
		return NULL;
	xfer_request_init(&r->x);
	r->c = c;
	r->op = op;
	if (key) {
		ekey = util_uri_encode(key, strlen(key), true);
		if (!ekey)
			goto fail;
		n = asprintf(&r->path, "%s/%s", c->path_prefix, ekey);
	} else {
		n = asprintf(&r->path, "%s", c->path_prefix[0] ? c->path_prefix : "/");
	}
	if (n < 0) {
		r->path = NULL;
		goto fail;
	}
	if (query && query[0]) {
		r->query = strdup(query);
		if (!r->query)
			goto fail;
	}
	/* url_prefix ends where path_prefix starts (or is the bucket host for virtual). */
	if (key)
		n = asprintf(&r->url, "%s/%s%s%s", c->url_prefix, ekey, r->query ? "?" : "",
		             r->query ? r->query : "");
	else
		n = asprintf(&r->url, "%s%s%s%s", c->url_prefix, c->path_prefix[0] ? "" : "/",
		             r->query ? "?" : "", r->query ? r->query : "");
	if (n < 0) {
		r->url = NULL;
		goto fail;
	}
	free(ekey);
	r->x.method = method;
	r->x.url = r->url;
	r->x.headers = r->hdrs;
	r->x.sign = s3_sign_cb;
	r->x.sign_user = r;
	r->x.user = r;
	r->x.on_header = s3_header_cb;
	r->x.log_name = op;
	r->payload_hash = NULL;
	return r;
fail:
	free(ekey);
	req_free(r);
	return NULL;
}

static void req_set_md5(struct s3_req *r, const void *data, size_t len)
{
	util_md5_base64(data, len, r->md5);
	if (r->c->test_corrupt_md5)
		r->md5[0] = r->md5[0] == 'A' ? 'B' : 'A';
	add_header(r, "Content-MD5", r->md5);
}

/* Run @r to completion on the calling thread; fills @err. 0 or -1. */
static int req_run(struct s3_req *r, struct s3_error *err)
{
	r->x.n_headers = r->nh;
	for (int attempt = 1;; attempt++) {
		xfer_perform(r->c->xfer, &r->x);
		result_to_error(r, err);
		/*
		 * CompleteMultipartUpload and the copies can answer 200 and then
		 * an <Error> (InternalError, SlowDown): the engine saw a success,
		 * so retry those here, a few times with a short pause.
		 */
		bool retry_200 =
		    r->doc && r->out.is_error && attempt < 3 &&
		    xfer_is_retryable_code(r->out.error.code, strlen(r->out.error.code));
		/* Expired temporary credentials were invalidated: one more try with fresh ones. */
		bool retry_creds = err->err == S3_ERR_EXPIRED_TOKEN && attempt == 1;

		if (err->err == S3_OK || (!retry_200 && !retry_creds))
			break;
		log_msg(LOG_INFO, err->request_id[0] ? err->request_id : NULL, "%s: %s; retrying",
		        r->op, err->code[0] ? err->code : s3_strerror(err->err));
		if (retry_200)
			usleep((useconds_t)(200000 * attempt));
		if (r->doc)
			doc_reset_cb(r);
		xfer_request_cleanup(&r->x);
		memset(&r->info, 0, sizeof(r->info));
		r->have_range_total = false;
	}
	return err->err == S3_OK ? 0 : -1;
}

/* ---- HEAD / GET ---- */

int s3_head_object(struct s3_client *c, const char *key, struct s3_object_info *info,
                   struct s3_error *err)
{
	struct s3_req *r = req_new(c, "HEAD", "HeadObject", key, NULL);
	int ret;

	if (!r) {
		set_err(err, S3_ERR_NOMEM, "HeadObject: out of memory");
		return -1;
	}
	ret = req_run(r, err);
	if (ret == 0 && info)
		*info = r->info;
	req_free(r);
	return ret;
}

/*
 * A GetObject request for bytes [@off, @off + @len) (@len 0: to the end),
 * with If-Match when @if_match is given. NULL with @err set on failure.
 */
static struct s3_req *get_req_new(struct s3_client *c, const char *key, uint64_t off, uint64_t len,
                                  const char *if_match, struct s3_error *err)
{
	struct s3_req *r;

	/* The last byte, off + len - 1, must be representable. */
	if (len && off > UINT64_MAX - len + 1) {
		set_err(err, S3_ERR_INVALID_ARGUMENT,
		        "GetObject: the range of %llu bytes at offset %llu runs past 2^64",
		        (unsigned long long)len, (unsigned long long)off);
		return NULL;
	}
	if (if_match && strlen(if_match) + 3 > sizeof(r->if_match)) {
		set_err(err, S3_ERR_INVALID_ARGUMENT,
		        "GetObject: an If-Match ETag of %zu characters is longer than S3's",
		        strlen(if_match));
		return NULL;
	}
	r = req_new(c, "GET", "GetObject", key, NULL);
	if (!r) {
		set_err(err, S3_ERR_NOMEM, "GetObject: out of memory");
		return NULL;
	}
	if (len)
		snprintf(r->range, sizeof(r->range), "bytes=%llu-%llu", (unsigned long long)off,
		         (unsigned long long)(off + len - 1));
	else if (off)
		snprintf(r->range, sizeof(r->range), "bytes=%llu-", (unsigned long long)off);
	if (r->range[0])
		add_header(r, "Range", r->range);
	r->range_from_zero = off == 0 && len > 0;
	if (if_match && if_match[0]) {
		/* S3 compares quoted ETags; callers keep them unquoted. */
		snprintf(r->if_match, sizeof(r->if_match), "\"%s\"", if_match);
		add_header(r, "If-Match", r->if_match);
	}
	return r;
}

int s3_get_object(struct s3_client *c, const char *key, uint64_t off, uint64_t len,
                  const char *if_match, void *buf, size_t cap, size_t *got,
                  struct s3_object_info *info, struct s3_error *err)
{
	struct s3_req *r;
	int ret;

	if (got)
		*got = 0;
	if (len > cap || !buf || !cap) {
		set_err(err, S3_ERR_INVALID_ARGUMENT,
		        "GetObject: a range of %llu bytes does not fit a buffer of %zu",
		        (unsigned long long)len, cap);
		return -1;
	}
	r = get_req_new(c, key, off, len, if_match, err);
	if (!r)
		return -1;
	r->x.resp_buf = buf;
	r->x.resp_cap = len ? (size_t)len : cap;
	ret = req_run(r, err);
	if (got)
		*got = r->x.result.body_len;
	if (ret == 0 && info)
		*info = r->info;
	req_free(r);
	return ret;
}

static void async_done_cb(void *user, struct xfer_request *x)
{
	struct s3_req *r = user;
	struct s3_error e;

	(void)x;
	result_to_error(r, &e);
	if (e.err == S3_OK && r->etag_out) {
		memcpy(r->etag_out, r->info.etag, sizeof(r->info.etag));
		if (!r->etag_out[0]) {
			e.err = S3_ERR_PROTOCOL;
			snprintf(e.message, sizeof(e.message), "%s: no ETag in the reply", r->op);
		}
	}
	r->done(r->done_user, &e, r->x.result.body_len, &r->info);
	req_free(r);
}

static int req_submit(struct s3_req *r, s3_done_fn done, void *user, struct s3_error *err)
{
	r->done = done;
	r->done_user = user;
	r->x.done = async_done_cb;
	r->x.n_headers = r->nh;
	if (xfer_submit(r->c->xfer, &r->x)) {
		result_to_error(r, err);
		req_free(r);
		return -1;
	}
	clear_err(err);
	return 0;
}

int s3_get_object_async(struct s3_client *c, const char *key, uint64_t off, uint64_t len,
                        const char *if_match, void *buf, size_t cap, s3_done_fn done, void *user,
                        struct s3_error *err)
{
	struct s3_req *r;

	if (len > cap || !buf || !cap || !done) {
		set_err(err, S3_ERR_INVALID_ARGUMENT,
		        "GetObject: a range of %llu bytes does not fit a buffer of %zu",
		        (unsigned long long)len, cap);
		return -1;
	}
	r = get_req_new(c, key, off, len, if_match, err);
	if (!r)
		return -1;
	r->x.resp_buf = buf;
	r->x.resp_cap = len ? (size_t)len : cap;
	return req_submit(r, done, user, err);
}

static int sink_write_cb(void *user, const void *data, size_t len)
{
	struct s3_req *r = user;

	return r->sink->write(r->sink->user, data, len);
}

static void sink_reset_cb(void *user)
{
	struct s3_req *r = user;

	if (r->sink->reset)
		r->sink->reset(r->sink->user);
}

int s3_get_object_stream(struct s3_client *c, const char *key, uint64_t off, uint64_t len,
                         const char *if_match, const struct s3_sink *sink,
                         struct s3_object_info *info, struct s3_error *err)
{
	struct s3_req *r;
	int ret;

	if (!sink || !sink->write) {
		set_err(err, S3_ERR_INVALID_ARGUMENT, "GetObject: no sink to write to");
		return -1;
	}
	r = get_req_new(c, key, off, len, if_match, err);
	if (!r)
		return -1;
	r->sink = sink;
	r->x.write = sink_write_cb;
	/* Without a reset the sink cannot take the body twice: no retry after bytes. */
	r->x.write_reset = sink->reset ? sink_reset_cb : NULL;
	ret = req_run(r, err);
	if (ret == 0 && info)
		*info = r->info;
	req_free(r);
	return ret;
}

/* ---- listing ---- */

void s3_list_page_free(struct s3_list_page *page)
{
	if (!page)
		return;
	for (size_t i = 0; i < page->n_entries; i++)
		free(page->entries[i].key);
	free(page->entries);
	for (size_t i = 0; i < page->n_prefixes; i++)
		free(page->prefixes[i]);
	free(page->prefixes);
	free(page->next_token);
	memset(page, 0, sizeof(*page));
}

/* Append "&name=enc(value)" (or without '&' first) to @b. */
static int query_add(struct util_buf *b, const char *name, const char *value)
{
	char *ev = NULL;
	int ret;

	if (value) {
		ev = util_uri_encode(value, strlen(value), false);
		if (!ev)
			return -1;
	}
	ret =
	    util_buf_printf(b, "%s%s%s%s", b->len ? "&" : "", name, value ? "=" : "", ev ? ev : "");
	free(ev);
	return ret;
}

int s3_list_objects(struct s3_client *c, const struct s3_list_params *p, struct s3_list_page *page,
                    struct s3_error *err)
{
	struct util_buf q = {0};
	struct s3_req *r = NULL;
	char num[16];
	int ret = -1;

	memset(page, 0, sizeof(*page));
	if (p->max_keys < 0 || p->max_keys > 1000) {
		set_err(err, S3_ERR_INVALID_ARGUMENT,
		        "ListObjectsV2: max-keys %d is outside 0..1000", p->max_keys);
		return -1;
	}
	/* Parameters in canonical order; the signer sorts anyway. */
	if ((p->continuation_token && query_add(&q, "continuation-token", p->continuation_token)) ||
	    (p->delimiter && query_add(&q, "delimiter", p->delimiter)) ||
	    query_add(&q, "encoding-type", "url") || query_add(&q, "list-type", "2"))
		goto nomem;
	if (p->max_keys) {
		snprintf(num, sizeof(num), "%d", p->max_keys);
		if (query_add(&q, "max-keys", num))
			goto nomem;
	}
	if ((p->prefix && query_add(&q, "prefix", p->prefix)) ||
	    (p->start_after && query_add(&q, "start-after", p->start_after)))
		goto nomem;
	r = req_new(c, "GET", "ListObjectsV2", NULL, q.data);
	if (!r)
		goto nomem;
	r->out.page = page;
	r->out.max_entries = p->max_keys ? (size_t)p->max_keys : 1000;
	if (req_expect_doc(r, S3_DOC_LIST_OBJECTS))
		goto nomem;
	ret = req_run(r, err);
	if (ret == 0 && page->truncated && !page->next_token) {
		set_err(err, S3_ERR_PROTOCOL,
		        "ListObjectsV2: truncated page without NextContinuationToken");
		ret = -1;
	}
	goto out;
nomem:
	set_err(err, S3_ERR_NOMEM, "ListObjectsV2: out of memory");
out:
	if (ret)
		s3_list_page_free(page);
	req_free(r);
	util_buf_free(&q);
	return ret;
}

/* ---- writing ---- */

int s3_put_object(struct s3_client *c, const char *key, const void *data, size_t len,
                  char *etag_out, struct s3_error *err)
{
	return s3_put_object_meta(c, key, data, len, NULL, etag_out, err);
}

int s3_put_object_meta(struct s3_client *c, const char *key, const void *data, size_t len,
                       const struct s3_obj_meta *meta, char *etag_out, struct s3_error *err)
{
	struct s3_req *r = req_new(c, "PUT", "PutObject", key, NULL);
	int ret;

	if (!r) {
		set_err(err, S3_ERR_NOMEM, "PutObject: out of memory");
		return -1;
	}
	add_meta(r, meta);
	req_set_md5(r, data, len);
	r->payload_hash = SIGV4_UNSIGNED_PAYLOAD;
	r->x.body = len ? data : NULL;
	r->x.body_len = len;
	ret = req_run(r, err);
	if (ret == 0 && etag_out)
		memcpy(etag_out, r->info.etag, sizeof(r->info.etag));
	req_free(r);
	return ret;
}

int s3_put_object_async(struct s3_client *c, const char *key, const void *data, size_t len,
                        char *etag_out, s3_done_fn done, void *user, struct s3_error *err)
{
	struct s3_req *r;

	if (!done) {
		set_err(err, S3_ERR_INVALID_ARGUMENT, "PutObject: no completion callback");
		return -1;
	}
	r = req_new(c, "PUT", "PutObject", key, NULL);
	if (!r) {
		set_err(err, S3_ERR_NOMEM, "PutObject: out of memory");
		return -1;
	}
	req_set_md5(r, data, len);
	r->payload_hash = SIGV4_UNSIGNED_PAYLOAD;
	r->x.body = len ? data : NULL;
	r->x.body_len = len;
	r->etag_out = etag_out;
	return req_submit(r, done, user, err);
}

int s3_create_multipart(struct s3_client *c, const char *key, char **upload_id,
                        struct s3_error *err)
{
	return s3_create_multipart_meta(c, key, NULL, upload_id, err);
}

int s3_create_multipart_meta(struct s3_client *c, const char *key, const struct s3_obj_meta *meta,
                             char **upload_id, struct s3_error *err)
{
	struct s3_req *r = req_new(c, "POST", "CreateMultipartUpload", key, "uploads");
	int ret;

	*upload_id = NULL;
	if (!r || req_expect_doc(r, S3_DOC_INITIATE)) {
		req_free(r);
		set_err(err, S3_ERR_NOMEM, "CreateMultipartUpload: out of memory");
		return -1;
	}
	/* Stop curl's form Content-Type: it would become the object's type. */
	add_header(r, "Content-Type", NULL);
	add_meta(r, meta);
	ret = req_run(r, err);
	if (ret == 0) {
		*upload_id = r->out.upload_id;
		r->out.upload_id = NULL;
	}
	req_free(r);
	return ret;
}

static struct s3_req *part_req(struct s3_client *c, const char *method, const char *op,
                               const char *key, const char *upload_id, int part_no)
{
	char *eid, *q = NULL;
	struct s3_req *r;

	eid = util_uri_encode(upload_id, strlen(upload_id), false);
	if (!eid)
		return NULL;
	if (part_no > 0) {
		if (asprintf(&q, "partNumber=%d&uploadId=%s", part_no, eid) < 0)
			q = NULL;
	} else {
		if (asprintf(&q, "uploadId=%s", eid) < 0)
			q = NULL;
	}
	free(eid);
	if (!q)
		return NULL;
	r = req_new(c, method, op, key, q);
	free(q);
	return r;
}

static bool part_args_ok(const char *op, const char *upload_id, int part_no, struct s3_error *err)
{
	if (!upload_id || !upload_id[0]) {
		set_err(err, S3_ERR_INVALID_ARGUMENT, "%s: no upload id", op);
		return false;
	}
	if (part_no < 1 || part_no > 10000) {
		set_err(err, S3_ERR_INVALID_ARGUMENT, "%s: part number %d is outside 1..10000", op,
		        part_no);
		return false;
	}
	return true;
}

static struct s3_req *upload_part_req(struct s3_client *c, const char *key, const char *upload_id,
                                      int part_no, const void *data, size_t len)
{
	struct s3_req *r = part_req(c, "PUT", "UploadPart", key, upload_id, part_no);

	if (!r)
		return NULL;
	req_set_md5(r, data, len);
	r->payload_hash = SIGV4_UNSIGNED_PAYLOAD;
	r->x.body = len ? data : NULL;
	r->x.body_len = len;
	return r;
}

int s3_upload_part(struct s3_client *c, const char *key, const char *upload_id, int part_no,
                   const void *data, size_t len, char *etag_out, struct s3_error *err)
{
	struct s3_req *r;
	int ret;

	if (!part_args_ok("UploadPart", upload_id, part_no, err))
		return -1;
	r = upload_part_req(c, key, upload_id, part_no, data, len);
	if (!r) {
		set_err(err, S3_ERR_NOMEM, "UploadPart: out of memory");
		return -1;
	}
	ret = req_run(r, err);
	if (ret == 0) {
		if (!r->info.etag[0]) {
			set_err(err, S3_ERR_PROTOCOL, "UploadPart: no ETag in the reply");
			ret = -1;
		} else if (etag_out) {
			memcpy(etag_out, r->info.etag, sizeof(r->info.etag));
		}
	}
	req_free(r);
	return ret;
}

int s3_upload_part_async(struct s3_client *c, const char *key, const char *upload_id, int part_no,
                         const void *data, size_t len, char *etag_out, s3_done_fn done, void *user,
                         struct s3_error *err)
{
	struct s3_req *r;

	if (!part_args_ok("UploadPart", upload_id, part_no, err))
		return -1;
	if (!done || !etag_out) {
		set_err(err, S3_ERR_INVALID_ARGUMENT, "UploadPart: no callback or ETag buffer");
		return -1;
	}
	r = upload_part_req(c, key, upload_id, part_no, data, len);
	if (!r) {
		set_err(err, S3_ERR_NOMEM, "UploadPart: out of memory");
		return -1;
	}
	r->etag_out = etag_out;
	return req_submit(r, done, user, err);
}

/* "x-amz-copy-source: /bucket/encoded-key" for @src_key in this bucket. */
static int set_copy_source(struct s3_req *r, const char *src_key)
{
	char *ek = util_uri_encode(src_key, strlen(src_key), true);

	if (!ek)
		return -1;
	if (asprintf(&r->copy_source, "/%s/%s", r->c->bucket, ek) < 0)
		r->copy_source = NULL;
	free(ek);
	if (!r->copy_source)
		return -1;
	add_header(r, "x-amz-copy-source", r->copy_source);
	return 0;
}

int s3_upload_part_copy(struct s3_client *c, const char *key, const char *upload_id, int part_no,
                        const char *src_key, uint64_t off, uint64_t len, char *etag_out,
                        struct s3_error *err)
{
	struct s3_req *r;
	int ret;

	if (!part_args_ok("UploadPartCopy", upload_id, part_no, err))
		return -1;
	if (!len) {
		set_err(err, S3_ERR_INVALID_ARGUMENT, "UploadPartCopy: empty range");
		return -1;
	}
	if (off > UINT64_MAX - len + 1) {
		set_err(err, S3_ERR_INVALID_ARGUMENT,
		        "UploadPartCopy: the range of %llu bytes at offset %llu runs past 2^64",
		        (unsigned long long)len, (unsigned long long)off);
		return -1;
	}
	r = part_req(c, "PUT", "UploadPartCopy", key, upload_id, part_no);
	if (!r || set_copy_source(r, src_key) || req_expect_doc(r, S3_DOC_COPY)) {
		req_free(r);
		set_err(err, S3_ERR_NOMEM, "UploadPartCopy: out of memory");
		return -1;
	}
	snprintf(r->copy_range, sizeof(r->copy_range), "bytes=%llu-%llu", (unsigned long long)off,
	         (unsigned long long)(off + len - 1));
	add_header(r, "x-amz-copy-source-range", r->copy_range);
	ret = req_run(r, err);
	if (ret == 0) {
		if (!r->out.etag[0]) {
			set_err(err, S3_ERR_PROTOCOL, "UploadPartCopy: no ETag in the reply");
			ret = -1;
		} else if (etag_out) {
			memcpy(etag_out, r->out.etag, sizeof(r->out.etag));
		}
	}
	req_free(r);
	return ret;
}

int s3_complete_multipart(struct s3_client *c, const char *key, const char *upload_id,
                          const struct s3_part *parts, size_t n, char *etag_out,
                          struct s3_error *err)
{
	struct util_buf b = {.max = 16u << 20};
	struct s3_req *r = NULL;
	int ret = -1;

	if (!upload_id || !upload_id[0] || !n || n > 10000) {
		set_err(err, S3_ERR_INVALID_ARGUMENT,
		        "CompleteMultipartUpload: needs an upload id and 1..10000 parts (got %zu)",
		        n);
		return -1;
	}
	if (util_buf_puts(&b, "<CompleteMultipartUpload>"))
		goto nomem;
	for (size_t i = 0; i < n; i++)
		if (util_buf_printf(&b,
		                    "<Part><PartNumber>%d</PartNumber><ETag>\"%s\"</ETag></Part>",
		                    parts[i].part_no, parts[i].etag))
			goto nomem;
	if (util_buf_puts(&b, "</CompleteMultipartUpload>"))
		goto nomem;
	r = part_req(c, "POST", "CompleteMultipartUpload", key, upload_id, 0);
	if (!r || req_expect_doc(r, S3_DOC_COMPLETE))
		goto nomem;
	r->body_owned = b.data;
	r->x.body = b.data;
	r->x.body_len = b.len;
	b.data = NULL;
	util_sha256_hex(r->x.body, r->x.body_len, r->sha);
	r->payload_hash = r->sha;
	add_header(r, "Content-Type", "application/xml");
	ret = req_run(r, err);
	if (ret == 0 && etag_out) {
		memcpy(etag_out, r->out.etag, sizeof(r->out.etag));
		if (!etag_out[0]) {
			/* radosgw may answer with <ETag></ETag>: ask the object. */
			struct s3_object_info info;

			ret = s3_head_object(c, key, &info, err);
			if (ret == 0)
				memcpy(etag_out, info.etag, sizeof(info.etag));
		}
	}
	goto out;
nomem:
	set_err(err, S3_ERR_NOMEM, "CompleteMultipartUpload: out of memory");
out:
	util_buf_free(&b);
	req_free(r);
	return ret;
}

int s3_abort_multipart(struct s3_client *c, const char *key, const char *upload_id,
                       struct s3_error *err)
{
	struct s3_req *r;
	int ret;

	if (!upload_id || !upload_id[0]) {
		set_err(err, S3_ERR_INVALID_ARGUMENT, "AbortMultipartUpload: no upload id");
		return -1;
	}
	r = part_req(c, "DELETE", "AbortMultipartUpload", key, upload_id, 0);
	if (!r) {
		set_err(err, S3_ERR_NOMEM, "AbortMultipartUpload: out of memory");
		return -1;
	}
	ret = req_run(r, err);
	req_free(r);
	return ret;
}

int s3_list_parts(struct s3_client *c, const char *key, const char *upload_id,
                  struct s3_part **parts, size_t *n, struct s3_error *err)
{
	struct s3_part *all = NULL;
	size_t total = 0;
	char *marker = NULL;
	int ret = -1;

	*parts = NULL;
	*n = 0;
	if (!upload_id || !upload_id[0]) {
		set_err(err, S3_ERR_INVALID_ARGUMENT, "ListParts: no upload id");
		return -1;
	}
	for (;;) {
		char *eid = util_uri_encode(upload_id, strlen(upload_id), false), *q = NULL;
		struct s3_req *r;
		struct s3_part *na;

		if (!eid)
			goto nomem;
		if (marker) {
			char *em = util_uri_encode(marker, strlen(marker), false);

			if (!em || asprintf(&q, "part-number-marker=%s&uploadId=%s", em, eid) < 0)
				q = NULL;
			free(em);
		} else if (asprintf(&q, "uploadId=%s", eid) < 0) {
			q = NULL;
		}
		free(eid);
		if (!q)
			goto nomem;
		r = req_new(c, "GET", "ListParts", key, q);
		free(q);
		if (!r)
			goto nomem;
		r->out.max_entries = 10000;
		if (req_expect_doc(r, S3_DOC_LIST_PARTS)) {
			req_free(r);
			goto nomem;
		}
		if (req_run(r, err)) {
			req_free(r);
			goto out;
		}
		if (total + r->out.n_parts > 10000) {
			req_free(r);
			set_err(err, S3_ERR_PROTOCOL, "ListParts: more than 10000 parts");
			goto out;
		}
		na = realloc(all, (total + r->out.n_parts + 1) * sizeof(*all));
		if (!na) {
			req_free(r);
			goto nomem;
		}
		all = na;
		if (r->out.n_parts)
			memcpy(all + total, r->out.parts, r->out.n_parts * sizeof(*all));
		total += r->out.n_parts;
		free(marker);
		marker = NULL;
		if (r->out.truncated && r->out.next_marker && r->out.n_parts) {
			marker = r->out.next_marker;
			r->out.next_marker = NULL;
		}
		req_free(r);
		if (!marker)
			break;
	}
	*parts = all;
	*n = total;
	all = NULL;
	ret = 0;
	goto out;
nomem:
	set_err(err, S3_ERR_NOMEM, "ListParts: out of memory");
out:
	free(all);
	free(marker);
	return ret;
}

void s3_upload_entries_free(struct s3_upload_entry *ups, size_t n)
{
	if (!ups)
		return;
	for (size_t i = 0; i < n; i++) {
		free(ups[i].key);
		free(ups[i].upload_id);
	}
	free(ups);
}

int s3_list_multipart_uploads(struct s3_client *c, const char *prefix, struct s3_upload_entry **ups,
                              size_t *n, struct s3_error *err)
{
	struct s3_upload_entry *all = NULL;
	size_t total = 0;
	char *key_marker = NULL, *id_marker = NULL;
	int ret = -1;

	*ups = NULL;
	*n = 0;
	for (;;) {
		struct util_buf q = {0};
		struct s3_req *r;
		struct s3_upload_entry *na;

		/*
		 * No encoding-type=url here: radosgw encodes the keys but not
		 * NextKeyMarker and does not say EncodingType, so keys could
		 * not be told apart from literal '%' names.
		 */
		if ((key_marker && query_add(&q, "key-marker", key_marker)) ||
		    (prefix && prefix[0] && query_add(&q, "prefix", prefix)) ||
		    (id_marker && query_add(&q, "upload-id-marker", id_marker)) ||
		    query_add(&q, "uploads", NULL)) {
			util_buf_free(&q);
			goto nomem;
		}
		r = req_new(c, "GET", "ListMultipartUploads", NULL, q.data);
		util_buf_free(&q);
		if (!r)
			goto nomem;
		r->out.max_entries = 1000;
		if (req_expect_doc(r, S3_DOC_LIST_UPLOADS)) {
			req_free(r);
			goto nomem;
		}
		if (req_run(r, err)) {
			req_free(r);
			goto out;
		}
		if (total + r->out.n_uploads > S3_MAX_LISTED_UPLOADS) {
			req_free(r);
			set_err(err, S3_ERR_INVALID_ARGUMENT,
			        "ListMultipartUploads: more than %d uploads under \"%s\"; "
			        "give a longer prefix",
			        S3_MAX_LISTED_UPLOADS, prefix ? prefix : "");
			goto out;
		}
		na = realloc(all, (total + r->out.n_uploads + 1) * sizeof(*all));
		if (!na) {
			req_free(r);
			goto nomem;
		}
		all = na;
		if (r->out.n_uploads)
			memcpy(all + total, r->out.uploads, r->out.n_uploads * sizeof(*all));
		total += r->out.n_uploads;
		/* The strings now belong to @all. */
		free(r->out.uploads);
		r->out.uploads = NULL;
		r->out.n_uploads = 0;
		free(key_marker);
		free(id_marker);
		key_marker = id_marker = NULL;
		if (r->out.truncated && r->out.next_marker) {
			key_marker = r->out.next_marker;
			id_marker = r->out.next_marker2;
			r->out.next_marker = r->out.next_marker2 = NULL;
		}
		req_free(r);
		if (!key_marker)
			break;
	}
	*ups = all;
	*n = total;
	all = NULL;
	total = 0;
	ret = 0;
	goto out;
nomem:
	set_err(err, S3_ERR_NOMEM, "ListMultipartUploads: out of memory");
out:
	s3_upload_entries_free(all, total);
	free(key_marker);
	free(id_marker);
	return ret;
}

int s3_copy_object(struct s3_client *c, const char *src_key, const char *dst_key, char *etag_out,
                   struct s3_error *err)
{
	return s3_copy_object_meta(c, src_key, dst_key, NULL, NULL, etag_out, err);
}

int s3_copy_object_meta(struct s3_client *c, const char *src_key, const char *dst_key,
                        const char *src_if_match, const struct s3_obj_meta *meta, char *etag_out,
                        struct s3_error *err)
{
	struct s3_req *r = req_new(c, "PUT", "CopyObject", dst_key, NULL);
	int ret;

	if (!r || set_copy_source(r, src_key) || req_expect_doc(r, S3_DOC_COPY)) {
		req_free(r);
		set_err(err, S3_ERR_NOMEM, "CopyObject: out of memory");
		return -1;
	}
	if (src_if_match && src_if_match[0]) {
		snprintf(r->if_match, sizeof(r->if_match), "\"%s\"", src_if_match);
		add_header(r, "x-amz-copy-source-if-match", r->if_match);
	}
	if (meta) {
		add_header(r, "x-amz-metadata-directive", "REPLACE");
		add_meta(r, meta);
	}
	ret = req_run(r, err);
	if (ret == 0 && etag_out)
		memcpy(etag_out, r->out.etag, sizeof(r->out.etag));
	req_free(r);
	return ret;
}

int s3_delete_object(struct s3_client *c, const char *key, struct s3_error *err)
{
	struct s3_req *r = req_new(c, "DELETE", "DeleteObject", key, NULL);
	int ret;

	if (!r) {
		set_err(err, S3_ERR_NOMEM, "DeleteObject: out of memory");
		return -1;
	}
	ret = req_run(r, err);
	/* Deleting what is not there is success in S3; some servers say 404. */
	if (ret && err->err == S3_ERR_NO_SUCH_KEY) {
		clear_err(err);
		ret = 0;
	}
	req_free(r);
	return ret;
}

static int xml_escape_append(struct util_buf *b, const char *s)
{
	for (; *s; s++) {
		const char *rep = NULL;
		char num[8];

		switch (*s) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&apos;";
			break;
		case '\r':
		case '\n':
		case '\t':
			snprintf(num, sizeof(num), "&#%d;", *s);
			rep = num;
			break;
		default:
			break;
		}
		if (rep ? util_buf_puts(b, rep) : util_buf_append(b, s, 1))
			return -1;
	}
	return 0;
}

int s3_delete_objects(struct s3_client *c, const char *const *keys, size_t n, size_t *failed,
                      struct s3_error *err)
{
	struct util_buf b = {.max = 4u << 20};
	struct s3_req *r = NULL;
	int ret = -1;

	if (failed)
		*failed = 0;
	if (n == 0) {
		clear_err(err);
		return 0;
	}
	if (n > 1000) {
		set_err(err, S3_ERR_INVALID_ARGUMENT,
		        "DeleteObjects: %zu keys; at most 1000 per call", n);
		return -1;
	}
	if (util_buf_puts(&b, "<Delete><Quiet>true</Quiet>"))
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		if (util_buf_puts(&b, "<Object><Key>") || xml_escape_append(&b, keys[i]) ||
		    util_buf_puts(&b, "</Key></Object>"))
			goto nomem;
	}
	if (util_buf_puts(&b, "</Delete>"))
		goto nomem;
	r = req_new(c, "POST", "DeleteObjects", NULL, "delete");
	if (!r || req_expect_doc(r, S3_DOC_DELETE))
		goto nomem;
	r->body_owned = b.data;
	r->x.body = b.data;
	r->x.body_len = b.len;
	b.data = NULL;
	util_md5_base64(r->x.body, r->x.body_len, r->md5);
	add_header(r, "Content-MD5", r->md5);
	add_header(r, "Content-Type", "application/xml");
	util_sha256_hex(r->x.body, r->x.body_len, r->sha);
	r->payload_hash = r->sha;
	ret = req_run(r, err);
	if (ret == 0) {
		if (failed)
			*failed = r->out.n_failed;
		if (r->out.n_failed)
			log_msg(LOG_INFO, err->request_id[0] ? err->request_id : NULL,
			        "DeleteObjects: %zu of %zu keys failed, first %s: %s",
			        r->out.n_failed, n, r->out.first_failed_key,
			        r->out.first_failed_code);
	}
	goto out;
nomem:
	set_err(err, S3_ERR_NOMEM, "DeleteObjects: out of memory");
out:
	util_buf_free(&b);
	req_free(r);
	return ret;
}
