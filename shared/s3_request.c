/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3_request: how one S3 call goes over the wire (see s3_request.h): the
 * client and its addressing, URL and headers, SigV4 per attempt, response
 * headers, the streamed XML reply, the checks a reply must pass before it
 * is believed (a GET's bytes against the range asked; an <Error> in a 200),
 * and the verdict on each attempt that the transfer engine's retry policy
 * acts on.
 */
#include "s3_request.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "checksum.h"
#include "creds.h"
#include "endpoint.h"
#include "log.h"
#include "s3_test.h"
#include "signer.h"
#include "sigv4.h"
#include "util.h"

/* A reply that cannot be trusted (malformed XML, bytes not matching the
 * range) is tried again this many times before the call fails with it. */
#define PROTOCOL_RETRIES 3
/* Expired temporary credentials: renewed and tried again this many times. */
#define TOKEN_RETRIES 2

/* ---- client ---- */

void s3_client_test_corrupt_md5(struct s3_client *c, bool on)
{
	c->test_corrupt_md5 = on;
}

int s3_client_test_url(struct s3_client *c, const char *key, const char *query, char *url,
                       size_t url_len, char *host, size_t host_len, char *path, size_t path_len)
{
	struct s3_req *r = s3_req_new(c, "GET", "test", key, query);
	int ret = -1;

	if (!r)
		return -1;
	if ((size_t)snprintf(url, url_len, "%s", r->url) < url_len &&
	    (size_t)snprintf(host, host_len, "%s", c->host) < host_len &&
	    (size_t)snprintf(path, path_len, "%s", r->path) < path_len)
		ret = 0;
	s3_req_free(r);
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

/* *@dst = a copy of @src, or NULL for NULL/"". 0, or -1 on ENOMEM. */
static int dup_opt(char **dst, const char *src)
{
	*dst = NULL;
	if (!src || !src[0])
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -1;
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
	c->checksum = cfg->checksum;
	c->requester_pays = cfg->requester_pays;
	if (!c->region || !c->bucket || dup_opt(&c->storage_class, cfg->storage_class) ||
	    dup_opt(&c->sse, cfg->sse) || dup_opt(&c->sse_kms_key_id, cfg->sse_kms_key_id) ||
	    dup_opt(&c->expected_bucket_owner, cfg->expected_bucket_owner))
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
	free(c->storage_class);
	free(c->sse);
	free(c->sse_kms_key_id);
	free(c->expected_bucket_owner);
	free(c);
}

/* ---- building requests ---- */

void s3_req_free(struct s3_req *r)
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

void s3_req_header(struct s3_req *r, const char *name, const char *value)
{
	/* Every call site adds a fixed set: running out is a bug, not input. */
	assert(r->nh < S3_MAX_HEADERS);
	if (r->nh < S3_MAX_HEADERS) {
		r->hdrs[r->nh].name = name;
		r->hdrs[r->nh].value = value;
		r->nh++;
	}
}

void s3_req_new_object(struct s3_req *r, const struct s3_obj_meta *m)
{
	struct s3_client *c = r->c;

	if (m && m->has_mtime) {
		if (m->mtime.tv_sec < 0 && m->mtime.tv_nsec > 0) /* {-2, .5e9} is -1.5 s */
			snprintf(r->meta_mtime, sizeof(r->meta_mtime), "-%lld.%09ld",
			         -((long long)m->mtime.tv_sec + 1),
			         1000000000L - (long)m->mtime.tv_nsec);
		else
			snprintf(r->meta_mtime, sizeof(r->meta_mtime), "%lld.%09ld",
			         (long long)m->mtime.tv_sec, (long)m->mtime.tv_nsec);
		s3_req_header(r, "x-amz-meta-mtime", r->meta_mtime);
	}
	/* Without a type, none is sent (curl's form type for a POST is removed):
	 * S3 then stores its default, as for mount-s3's uploads. */
	s3_req_header(r, "Content-Type", m && m->content_type ? m->content_type : NULL);
	if (c->storage_class)
		s3_req_header(r, "x-amz-storage-class", c->storage_class);
	if (c->sse)
		s3_req_header(r, "x-amz-server-side-encryption", c->sse);
	if (c->sse_kms_key_id)
		s3_req_header(r, "x-amz-server-side-encryption-aws-kms-key-id", c->sse_kms_key_id);
}

/* The header that carries a body checksum of @c, or NULL for none/MD5. */
static const char *checksum_header(enum s3_checksum c)
{
	switch (c) {
	case S3_CHECKSUM_CRC32C:
		return "x-amz-checksum-crc32c";
	case S3_CHECKSUM_CRC64NVME:
		return "x-amz-checksum-crc64nvme";
	default:
		return NULL;
	}
}

void s3_req_body(struct s3_req *r, const void *data, size_t len)
{
	switch (r->c->checksum) {
	case S3_CHECKSUM_CRC32C:
		checksum_base64_u32(checksum_crc32c(0, data, len), r->checksum);
		s3_req_header(r, checksum_header(r->c->checksum), r->checksum);
		break;
	case S3_CHECKSUM_CRC64NVME:
		checksum_base64_u64(checksum_crc64nvme(0, data, len), r->checksum);
		s3_req_header(r, checksum_header(r->c->checksum), r->checksum);
		break;
	case S3_CHECKSUM_MD5:
		util_md5_base64(data, len, r->md5);
		if (r->c->test_corrupt_md5)
			r->md5[0] = r->md5[0] == 'A' ? 'B' : 'A';
		s3_req_header(r, "Content-MD5", r->md5);
		break;
	case S3_CHECKSUM_NONE:
		break;
	}
	if (r->c->test_corrupt_md5 && r->checksum[0])
		r->checksum[0] = r->checksum[0] == 'A' ? 'B' : 'A';
	r->payload_hash = SIGV4_UNSIGNED_PAYLOAD;
	r->x.body = len ? data : NULL;
	r->x.body_len = len;
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

static void headers_reset(struct s3_req *r);

static int sign_cb(void *user, struct xfer_request *x, struct curl_slist **extra)
{
	struct s3_req *r = user;
	struct s3_client *c = r->c;
	struct sigv4_header h[S3_MAX_HEADERS + 1];
	struct signer_params p;
	struct creds cr;
	struct creds_error ce;
	size_t n = 0;
	int ret;

	/* A new attempt: what the last one's headers said no longer holds. */
	headers_reset(r);
	if (c->no_sign)
		return 0;
	memset(&cr, 0, sizeof(cr));
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
	p.service = "s3";
	p.region = c->region;
	p.s3 = true;
	p.path = r->path;
	p.query = r->query;
	p.headers = h;
	p.n_headers = n;
	p.payload_hash = r->payload_hash;
	p.creds = &cr;
	ret = signer_sign(&p, x, extra);
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

/* "N" (decimal, all of it) -> *@v; false if it is not that. */
static bool parse_u64(const char *s, size_t n, uint64_t *v)
{
	uint64_t x = 0;

	if (!n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || x > (UINT64_MAX - 9) / 10)
			return false;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	*v = x;
	return true;
}

/* "bytes FIRST-LAST/TOTAL" (TOTAL may be '*'). */
static void parse_content_range(struct s3_req *r, const char *v, size_t n)
{
	const char *dash, *slash, *end = v + n;

	if (n < 6 || strncasecmp(v, "bytes ", 6) != 0)
		return;
	v += 6;
	dash = memchr(v, '-', (size_t)(end - v));
	slash = dash ? memchr(dash, '/', (size_t)(end - dash)) : NULL;
	if (!dash || !slash || !parse_u64(v, (size_t)(dash - v), &r->cr_first) ||
	    !parse_u64(dash + 1, (size_t)(slash - dash - 1), &r->cr_last) ||
	    r->cr_last < r->cr_first)
		return;
	r->have_range = true;
	r->cr_total_known = parse_u64(slash + 1, (size_t)(end - slash - 1), &r->cr_total);
	if (r->cr_total_known) {
		r->info.size = r->cr_total;
	}
}

static void header_cb(void *user, const char *name, size_t nlen, const char *v, size_t vlen)
{
	struct s3_req *r = user;
	const char *ck = checksum_header(r->c->checksum);

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
		if (hname(name, nlen, "Last-Modified"))
			r->info.mtime = parse_http_date(v, vlen);
		else if (hname(name, nlen, "Content-Range"))
			parse_content_range(r, v, vlen);
		break;
	case 14:
		if (hname(name, nlen, "Content-Length") && parse_u64(v, vlen, &r->content_length)) {
			r->have_length = true;
			if (!r->cr_total_known)
				r->info.size = r->content_length;
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
	if (ck && hname(name, nlen, ck) && vlen < sizeof(r->resp_checksum)) {
		memcpy(r->resp_checksum, v, vlen);
		r->resp_checksum[vlen] = '\0';
	}
}

/* Forget what an earlier attempt's headers said. */
static void headers_reset(struct s3_req *r)
{
	memset(&r->info, 0, sizeof(r->info));
	r->have_range = r->cr_total_known = r->have_length = false;
	r->cr_first = r->cr_last = r->cr_total = r->content_length = 0;
	r->region[0] = '\0';
	r->resp_checksum[0] = '\0';
	r->reply_bad = false;
	r->bad_why[0] = '\0';
	r->sink_bytes = 0;
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

/* A new parser for a new attempt (the body comes again from its start). */
static void doc_reset(struct s3_req *r)
{
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

static void doc_reset_cb(void *user)
{
	doc_reset(user);
}

int s3_req_expect_doc(struct s3_req *r, enum s3_doc_kind kind)
{
	r->doc_kind = kind;
	r->doc = s3_doc_new(kind, &r->out);
	if (!r->doc)
		return -1;
	r->x.write = doc_write_cb;
	r->x.write_reset = doc_reset_cb;
	return 0;
}

void s3_req_get_range(struct s3_req *r, uint64_t off, uint64_t len)
{
	r->is_get = true;
	r->want_off = off;
	r->want_len = len;
	if (len)
		snprintf(r->range, sizeof(r->range), "bytes=%llu-%llu", (unsigned long long)off,
		         (unsigned long long)(off + len - 1));
	else if (off)
		snprintf(r->range, sizeof(r->range), "bytes=%llu-", (unsigned long long)off);
	if (r->range[0])
		s3_req_header(r, "Range", r->range);
	r->range_from_zero = off == 0 && len > 0;
}

/* ---- judging a reply ---- */

/*
 * Whether a 2xx GET reply holds exactly the bytes asked for: a 206 whose
 * Content-Range starts where asked and ends where asked (or at the end of
 * the object), whose Content-Length is that many bytes and whose body had
 * them all; or a 200 (the whole object) for a range from byte 0. Fills
 * r->bad_why when not.
 */
static bool get_reply_ok(struct s3_req *r)
{
	long st = r->x.result.http_status;
	uint64_t got = r->sink ? r->sink_bytes : (uint64_t)r->x.result.body_len;
	uint64_t want_last = r->want_len ? r->want_off + r->want_len - 1 : UINT64_MAX;
	char *w = r->bad_why;
	size_t wl = sizeof(r->bad_why);
	size_t im = strlen(r->if_match);

	/* If-Match "E": the server must answer with version E or refuse (412) */
	if (im > 2 && r->info.etag[0] &&
	    (strlen(r->info.etag) != im - 2 || strncmp(r->if_match + 1, r->info.etag, im - 2))) {
		snprintf(w, wl, "the reply is of version %.40s, not the %.40s asked for (If-Match)",
		         r->info.etag, r->if_match);
		return false;
	}
	if (st == 206) {
		uint64_t last = want_last, n;

		if (!r->have_range) {
			snprintf(w, wl, "206 without a Content-Range");
			return false;
		}
		if (r->cr_total_known && r->cr_total && last > r->cr_total - 1)
			last = r->cr_total - 1;
		n = r->cr_last - r->cr_first + 1;
		if (r->cr_first != r->want_off || (last != UINT64_MAX && r->cr_last != last) ||
		    (last == UINT64_MAX && r->cr_total_known && r->cr_last + 1 != r->cr_total)) {
			snprintf(w, wl, "the reply holds bytes %llu-%llu/%llu, not the range %s",
			         (unsigned long long)r->cr_first, (unsigned long long)r->cr_last,
			         (unsigned long long)r->cr_total, r->range);
			return false;
		}
		if ((r->have_length && r->content_length != n) || got != n) {
			snprintf(w, wl,
			         "the reply's body has %llu bytes (Content-Length %llu) for the "
			         "%llu bytes of its Content-Range",
			         (unsigned long long)got, (unsigned long long)r->content_length,
			         (unsigned long long)n);
			return false;
		}
		return true;
	}
	/* 200: the whole object; the server ignored or had no need of the range. */
	if (r->want_off != 0) {
		snprintf(w, wl, "the whole object came back (HTTP 200) for the range %s", r->range);
		return false;
	}
	if (r->have_length && got != r->content_length) {
		snprintf(w, wl, "the reply's body has %llu bytes, its Content-Length says %llu",
		         (unsigned long long)got, (unsigned long long)r->content_length);
		return false;
	}
	if (r->want_len && got > r->want_len) {
		snprintf(w, wl, "the reply has %llu bytes for the %llu asked for",
		         (unsigned long long)got, (unsigned long long)r->want_len);
		return false;
	}
	return true;
}

/* A reply we cannot trust: try again a few times, then let it stand (as an error). */
static enum xfer_verdict protocol_retry(struct s3_req *r, const char *why)
{
	if (r->protocol_retries++ >= PROTOCOL_RETRIES)
		return XFER_ACCEPT;
	log_msg(LOG_WARNING, r->x.result.request_id[0] ? r->x.result.request_id : NULL,
	        "%s of '%s': %s; asking again", r->op, r->path, why);
	return XFER_RETRY;
}

/* What an error code says about trying again. */
static enum xfer_verdict code_verdict(struct s3_req *r, const char *code)
{
	size_t n = strlen(code);

	if (!n)
		return XFER_ACCEPT;
	if ((!strcmp(code, "ExpiredToken") || !strcmp(code, "TokenRefreshRequired") ||
	     !strcmp(code, "InvalidToken")) &&
	    r->c->creds) {
		/* Temporary credentials ran out under us: renew them, sign again. */
		creds_invalidate(r->c->creds);
		return r->token_retries++ < TOKEN_RETRIES ? XFER_RETRY : XFER_ACCEPT;
	}
	if (xfer_is_throttle_code(code, n))
		return XFER_RETRY_SLOW;
	if (xfer_is_retryable_code(code, n))
		return XFER_RETRY;
	return XFER_ACCEPT;
}

/* Engine thread, after each attempt with a whole response (see xfer.h). */
static enum xfer_verdict classify_cb(void *user, struct xfer_request *x)
{
	struct s3_req *r = user;
	long st = x->result.http_status;
	enum xfer_verdict v = XFER_ACCEPT;

	if (st >= 300) {
		struct s3_error e;

		memset(&e, 0, sizeof(e));
		s3_xml_parse_error(x->result.err_body, x->result.err_body_len, &e);
		return code_verdict(r, e.code);
	}
	if (st < 200)
		return XFER_ACCEPT;
	if (r->doc) {
		char why[160];

		if (s3_doc_finish(r->doc, why, sizeof(why)) != 0) {
			v = protocol_retry(r, why);
		} else if (r->out.is_error) {
			/* An <Error> in a 200 (Complete, the copies): what it says goes. */
			v = code_verdict(r, r->out.error.code);
		}
		if (v != XFER_ACCEPT)
			doc_reset(r);
		return v;
	}
	/* The whole object into a buffer too small for it: nothing to retry. */
	if (r->is_get && !r->want_len && r->x.resp_buf && r->have_length &&
	    r->content_length > r->x.resp_cap)
		return XFER_ACCEPT;
	if (r->is_get && !(st == 416 && r->range_from_zero) && !get_reply_ok(r)) {
		r->reply_bad = true;
		return protocol_retry(r, r->bad_why);
	}
	if (r->checksum[0] && r->resp_checksum[0] && strcmp(r->checksum, r->resp_checksum)) {
		snprintf(r->bad_why, sizeof(r->bad_why),
		         "the server computed checksum %s of the body, %s was sent",
		         r->resp_checksum, r->checksum);
		r->reply_bad = true;
		return protocol_retry(r, r->bad_why);
	}
	return XFER_ACCEPT;
}

struct s3_req *s3_req_new(struct s3_client *c, const char *method, const char *op, const char *key,
                          const char *query)
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
	r->x.sign = sign_cb;
	r->x.sign_user = r;
	r->x.user = r;
	r->x.on_header = header_cb;
	r->x.classify = classify_cb;
	r->x.log_name = op;
	r->payload_hash = NULL;
	if (c->requester_pays)
		s3_req_header(r, "x-amz-request-payer", "requester");
	if (c->expected_bucket_owner)
		s3_req_header(r, "x-amz-expected-bucket-owner", c->expected_bucket_owner);
	return r;
fail:
	free(ekey);
	s3_req_free(r);
	return NULL;
}

void s3_req_result(struct s3_req *r, struct s3_error *e)
{
	struct xfer_result *res = &r->x.result;

	memset(e, 0, sizeof(*e));
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
		e->err = res->status == XFER_ERR_TIMEOUT ? S3_ERR_TIMEOUT : S3_ERR_NETWORK;
		e->outcome_unknown = res->outcome_unknown;
		snprintf(e->message, sizeof(e->message),
		         "%s %s after %d attempt(s) in %.1f s: %.120s", r->op,
		         xfer_strstatus(res->status), res->attempts,
		         (double)res->elapsed_ms / 1000.0, res->errmsg);
		return;
	case XFER_ERR_CANCELLED:
		e->err = S3_ERR_CANCELLED;
		snprintf(e->message, sizeof(e->message), "%s cancelled", r->op);
		return;
	case XFER_ERR_TOO_LARGE:
		if (r->is_get && !r->want_len) {
			e->err = S3_ERR_INVALID_RANGE;
			snprintf(e->message, sizeof(e->message),
			         "%s: the object is larger than the buffer given", r->op);
			return;
		}
		/* More bytes than asked for: never a short read or an end of object. */
		e->err = S3_ERR_PROTOCOL;
		snprintf(e->message, sizeof(e->message), "%s: %s", r->op,
		         r->reply_bad ? r->bad_why : "the reply is longer than what was asked for");
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
		return;
	}
	if (res->http_status < 200) {
		e->err = S3_ERR_PROTOCOL;
		snprintf(e->message, sizeof(e->message), "%s: unexpected HTTP %ld", r->op,
		         res->http_status);
		return;
	}
	if (r->reply_bad) {
		e->err =
		    r->checksum[0] && r->resp_checksum[0] ? S3_ERR_BAD_DIGEST : S3_ERR_PROTOCOL;
		snprintf(e->message, sizeof(e->message), "%s: %s (after %d attempts)", r->op,
		         r->bad_why, res->attempts);
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
			e->err = s3_err_from_code(e->code, 500, r->x.method);
			return;
		}
	}
	e->err = S3_OK;
}

int s3_req_run(struct s3_req *r, struct s3_error *err)
{
	r->x.n_headers = r->nh;
	xfer_perform(r->c->xfer, &r->x);
	s3_req_result(r, err);
	return err->err == S3_OK ? 0 : -1;
}

static void async_done_cb(void *user, struct xfer_request *x)
{
	struct s3_req *r = user;
	struct s3_error e;

	s3_req_result(r, &e);
	if (e.err == S3_OK && r->etag_out) {
		memcpy(r->etag_out, r->info.etag, sizeof(r->info.etag));
		if (!r->etag_out[0]) {
			e.err = S3_ERR_PROTOCOL;
			snprintf(e.message, sizeof(e.message), "%s: no ETag in the reply", r->op);
		}
	}
	r->done(r->done_user, &e, r->x.result.body_len, &r->info);
	s3_req_free(r);
}

int s3_req_submit(struct s3_req *r, s3_done_fn done, void *user, struct s3_error *err)
{
	r->done = done;
	r->done_user = user;
	r->x.done = async_done_cb;
	r->x.n_headers = r->nh;
	/*
	 * Cleared before, never after, the submit: once queued, the request may
	 * complete on the engine's thread before xfer_submit() returns, and
	 * @done may well copy its outcome into this very @err (the caller's
	 * one struct for both). Zeroing it afterwards turned a 404 into "OK".
	 */
	memset(err, 0, sizeof(*err));
	if (xfer_submit(r->c->xfer, &r->x)) {
		s3_req_result(r, err);
		s3_req_free(r);
		return -1;
	}
	return 0;
}
