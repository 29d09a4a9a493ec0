/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3_xml: streaming parsers for S3's XML replies on libxml2's SAX2 push
 * parser. Only the text of the element being read is buffered (bounded);
 * each finished element is handed to the document's handler, which keeps
 * just what the caller asked for.
 */
#include "s3_xml.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/SAX2.h>

/* Longest element text we keep: keys are <= 1024 bytes (x3 url-encoded). */
#define S3_XML_TEXT_MAX (16 * 1024)
#define S3_XML_DEPTH    8
#define S3_XML_NAME     48

struct s3_doc {
	enum s3_doc_kind kind;
	struct s3_doc_out *out;
	xmlParserCtxtPtr ctx;
	int depth;
	char path[S3_XML_DEPTH][S3_XML_NAME]; /* element names, [0] = root */
	char *text;
	size_t text_len, text_cap;
	bool text_overflow;
	bool root_ok;  /* the root element is the expected one (or Error) */
	bool url_keys; /* EncodingType url: decode keys and prefixes */
	bool failed;
	bool finished; /* s3_doc_finish() ran: a second call gives the same answer */
	char why[160];
	/* the entry being read */
	struct s3_list_entry entry;
	struct s3_part part;
	char *up_key, *up_id;
	time_t up_initiated;
	char del_key[256];
	char del_code[64];
};

static void doc_fail(struct s3_doc *d, const char *why)
{
	if (!d->failed) {
		d->failed = true;
		snprintf(d->why, sizeof(d->why), "%s", why);
	}
	xmlStopParser(d->ctx);
}

static const char *root_name(enum s3_doc_kind k)
{
	switch (k) {
	case S3_DOC_ERROR:
		return "Error";
	case S3_DOC_LIST_OBJECTS:
		return "ListBucketResult";
	case S3_DOC_INITIATE:
		return "InitiateMultipartUploadResult";
	case S3_DOC_COMPLETE:
		return "CompleteMultipartUploadResult";
	case S3_DOC_COPY:
		return "CopyObjectResult";
	case S3_DOC_LIST_PARTS:
		return "ListPartsResult";
	case S3_DOC_LIST_UPLOADS:
		return "ListMultipartUploadsResult";
	case S3_DOC_DELETE:
		return "DeleteResult";
	}
	return "?";
}

time_t s3_xml_parse_time(const char *s, size_t len)
{
	char buf[40];
	struct tm tm;
	int y, mo, da, h, mi, se;

	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (sscanf(buf, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &da, &h, &mi, &se) != 6)
		return 0;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = da;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	return timegm(&tm);
}

int s3_xml_region_from_endpoint(const char *ep, char *out, size_t len)
{
	const char *p, *end;
	size_t n;

	if (!ep || !len)
		return -1;
	/* ... "s3.REGION.amazonaws.com" or "s3-REGION.amazonaws.com" */
	end = strstr(ep, ".amazonaws.com");
	if (!end)
		return -1;
	p = NULL;
	for (const char *q = ep; q < end; q++) {
		if ((q == ep || q[-1] == '.') && strncmp(q, "s3", 2) == 0 &&
		    (q[2] == '.' || q[2] == '-'))
			p = q + 3;
	}
	if (!p || p >= end)
		return -1;
	/* Skip "dualstack." and similar single labels before the region. */
	if (strncmp(p, "dualstack.", 10) == 0)
		p += 10;
	n = (size_t)(end - p);
	if (!n || n >= len || memchr(p, '.', n))
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

/* S3's encoding-type=url is form encoding: '+' is a space, %XX a byte. */
static char *url_decode_dup(const char *s, size_t len)
{
	char *o = malloc(len + 1), *w = o;

	if (!o)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len) {
			char hx[3] = {s[i + 1], s[i + 2], 0};
			char *endp;
			long v = strtol(hx, &endp, 16);

			if (*endp == '\0' && endp == hx + 2) {
				*w++ = (char)v;
				i += 2;
				continue;
			}
		}
		*w++ = s[i] == '+' ? ' ' : s[i];
	}
	*w = '\0';
	return o;
}

static char *key_dup(struct s3_doc *d, const char *s, size_t len)
{
	return d->url_keys ? url_decode_dup(s, len) : strndup(s, len);
}

static void copy_field(char *dst, size_t cap, const char *s, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, s, len);
	dst[len] = '\0';
}

static void copy_etag(char *dst, size_t cap, const char *s, size_t len)
{
	while (len && (*s == '"' || *s == ' ')) {
		s++;
		len--;
	}
	while (len && (s[len - 1] == '"' || s[len - 1] == ' '))
		len--;
	copy_field(dst, cap, s, len);
}

static bool is(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

static bool text_true(const char *t, size_t len)
{
	return len == 4 && strncasecmp(t, "true", 4) == 0;
}

/* Grow *arr (of @size-byte items) to hold one more; bounded by @max. */
static int push_slot(void **arr, size_t n, size_t size, size_t max)
{
	void *na;
	size_t cap;

	if (max && n >= max)
		return -2;
	/* Capacity runs 16, 32, 64, ...: grow when n reaches it. */
	if (n == 0)
		cap = 16;
	else if (n >= 16 && (n & (n - 1)) == 0)
		cap = n * 2;
	else
		return 0;
	na = realloc(*arr, cap * size);
	if (!na)
		return -1;
	*arr = na;
	return 0;
}

/* ---- the documents ---- */

static void end_error(struct s3_doc *d, const char *name, const char *t, size_t n)
{
	struct s3_error *e = &d->out->error;

	if (d->depth != 2)
		return;
	if (is(name, "Code"))
		copy_field(e->code, sizeof(e->code), t, n);
	else if (is(name, "Message"))
		copy_field(e->message, sizeof(e->message), t, n);
	else if (is(name, "RequestId"))
		copy_field(e->request_id, sizeof(e->request_id), t, n);
	else if (is(name, "Region"))
		copy_field(e->region, sizeof(e->region), t, n);
	else if (is(name, "Endpoint") && !e->region[0]) {
		char ep[256];

		copy_field(ep, sizeof(ep), t, n);
		s3_xml_region_from_endpoint(ep, e->region, sizeof(e->region));
	}
}

static void end_list_objects(struct s3_doc *d, const char *name, const char *t, size_t n)
{
	struct s3_list_page *pg = d->out->page;
	const char *parent = d->depth >= 2 ? d->path[d->depth - 2] : "";

	if (d->depth == 2) {
		if (is(name, "IsTruncated")) {
			pg->truncated = text_true(t, n);
		} else if (is(name, "NextContinuationToken")) {
			free(pg->next_token);
			pg->next_token = strndup(t, n);
			if (!pg->next_token)
				doc_fail(d, "out of memory");
		} else if (is(name, "EncodingType")) {
			d->url_keys = n == 3 && strncasecmp(t, "url", 3) == 0;
		} else if (is(name, "Contents")) {
			int r;

			if (!d->entry.key) {
				doc_fail(d, "a listing entry without a Key");
				return;
			}
			r = push_slot((void **)&pg->entries, pg->n_entries, sizeof(*pg->entries),
			              d->out->max_entries);
			if (r) {
				doc_fail(d, r == -2 ? "more entries than max-keys in a listing page"
				                    : "out of memory");
				return;
			}
			pg->entries[pg->n_entries++] = d->entry;
			memset(&d->entry, 0, sizeof(d->entry));
		}
		return;
	}
	if (d->depth != 3)
		return;
	if (is(parent, "Contents")) {
		if (is(name, "Key")) {
			free(d->entry.key);
			d->entry.key = key_dup(d, t, n);
			if (!d->entry.key)
				doc_fail(d, "out of memory");
		} else if (is(name, "Size")) {
			d->entry.size = strtoull(t, NULL, 10);
		} else if (is(name, "LastModified")) {
			d->entry.mtime = s3_xml_parse_time(t, n);
		} else if (is(name, "ETag")) {
			copy_etag(d->entry.etag, sizeof(d->entry.etag), t, n);
		}
	} else if (is(parent, "CommonPrefixes") && is(name, "Prefix")) {
		char *p;
		int r = push_slot((void **)&pg->prefixes, pg->n_prefixes, sizeof(*pg->prefixes),
		                  d->out->max_entries);

		if (r) {
			doc_fail(d, r == -2 ? "more prefixes than max-keys in a listing page"
			                    : "out of memory");
			return;
		}
		p = key_dup(d, t, n);
		if (!p) {
			doc_fail(d, "out of memory");
			return;
		}
		pg->prefixes[pg->n_prefixes++] = p;
	}
}

static void end_list_parts(struct s3_doc *d, const char *name, const char *t, size_t n)
{
	struct s3_doc_out *o = d->out;

	if (d->depth == 2) {
		if (is(name, "IsTruncated")) {
			o->truncated = text_true(t, n);
		} else if (is(name, "NextPartNumberMarker")) {
			free(o->next_marker);
			o->next_marker = strndup(t, n);
		} else if (is(name, "Part")) {
			int r = push_slot((void **)&o->parts, o->n_parts, sizeof(*o->parts),
			                  o->max_entries);

			if (r) {
				doc_fail(d, r == -2 ? "too many parts in a page" : "out of memory");
				return;
			}
			o->parts[o->n_parts++] = d->part;
			memset(&d->part, 0, sizeof(d->part));
		}
		return;
	}
	if (d->depth != 3 || !is(d->path[1], "Part"))
		return;
	if (is(name, "PartNumber"))
		d->part.part_no = (int)strtol(t, NULL, 10);
	else if (is(name, "ETag"))
		copy_etag(d->part.etag, sizeof(d->part.etag), t, n);
	else if (is(name, "Size"))
		d->part.size = strtoull(t, NULL, 10);
}

static void end_list_uploads(struct s3_doc *d, const char *name, const char *t, size_t n)
{
	struct s3_doc_out *o = d->out;

	if (d->depth == 2) {
		if (is(name, "IsTruncated")) {
			o->truncated = text_true(t, n);
		} else if (is(name, "NextKeyMarker")) {
			free(o->next_marker);
			o->next_marker = key_dup(d, t, n);
		} else if (is(name, "NextUploadIdMarker")) {
			free(o->next_marker2);
			o->next_marker2 = strndup(t, n);
		} else if (is(name, "EncodingType")) {
			d->url_keys = n == 3 && strncasecmp(t, "url", 3) == 0;
		} else if (is(name, "Upload")) {
			int r;

			if (!d->up_key || !d->up_id) {
				doc_fail(d, "an Upload without Key or UploadId");
				return;
			}
			r = push_slot((void **)&o->uploads, o->n_uploads, sizeof(*o->uploads),
			              o->max_entries);
			if (r) {
				doc_fail(d,
				         r == -2 ? "too many uploads in a page" : "out of memory");
				return;
			}
			o->uploads[o->n_uploads].key = d->up_key;
			o->uploads[o->n_uploads].upload_id = d->up_id;
			o->uploads[o->n_uploads].initiated = d->up_initiated;
			o->n_uploads++;
			d->up_key = d->up_id = NULL;
			d->up_initiated = 0;
		}
		return;
	}
	if (d->depth != 3 || !is(d->path[1], "Upload"))
		return;
	if (is(name, "Key")) {
		free(d->up_key);
		d->up_key = key_dup(d, t, n);
	} else if (is(name, "UploadId")) {
		free(d->up_id);
		d->up_id = strndup(t, n);
	} else if (is(name, "Initiated")) {
		d->up_initiated = s3_xml_parse_time(t, n);
	}
}

static void end_delete(struct s3_doc *d, const char *name, const char *t, size_t n)
{
	struct s3_doc_out *o = d->out;

	if (d->depth == 2) {
		if (is(name, "Deleted")) {
			o->n_deleted++;
		} else if (is(name, "Error")) {
			if (!o->n_failed) {
				snprintf(o->first_failed_key, sizeof(o->first_failed_key), "%s",
				         d->del_key);
				snprintf(o->first_failed_code, sizeof(o->first_failed_code), "%s",
				         d->del_code);
			}
			o->n_failed++;
			d->del_key[0] = d->del_code[0] = '\0';
		}
		return;
	}
	if (d->depth == 3 && is(d->path[1], "Error")) {
		if (is(name, "Key"))
			copy_field(d->del_key, sizeof(d->del_key), t, n);
		else if (is(name, "Code"))
			copy_field(d->del_code, sizeof(d->del_code), t, n);
	}
}

static void end_element(struct s3_doc *d, const char *name)
{
	const char *t = d->text ? d->text : "";
	size_t n = d->text_len;

	if (d->depth == 1)
		return;
	if (d->out->is_error) {
		/* Error fields are fixed-size and cut anyway: a long text is fine. */
		end_error(d, name, t, n);
		return;
	}
	/*
	 * No S3 reply has a longer text (keys are <= 1024 bytes, x3 encoded):
	 * a cut prefix, marker or token would be used as if whole.
	 */
	if (d->text_overflow) {
		char why[96];

		snprintf(why, sizeof(why), "<%.40s> is longer than %d bytes", name,
		         S3_XML_TEXT_MAX);
		doc_fail(d, why);
		return;
	}
	switch (d->kind) {
	case S3_DOC_ERROR:
		break;
	case S3_DOC_LIST_OBJECTS:
		end_list_objects(d, name, t, n);
		break;
	case S3_DOC_INITIATE:
		if (d->depth == 2 && is(name, "UploadId")) {
			free(d->out->upload_id);
			d->out->upload_id = strndup(t, n);
		}
		break;
	case S3_DOC_COMPLETE:
	case S3_DOC_COPY:
		if (d->depth == 2 && is(name, "ETag"))
			copy_etag(d->out->etag, sizeof(d->out->etag), t, n);
		break;
	case S3_DOC_LIST_PARTS:
		end_list_parts(d, name, t, n);
		break;
	case S3_DOC_LIST_UPLOADS:
		end_list_uploads(d, name, t, n);
		break;
	case S3_DOC_DELETE:
		end_delete(d, name, t, n);
		break;
	}
}

/* ---- SAX callbacks ---- */

static void sax_start(void *ctx, const xmlChar *localname, const xmlChar *prefix,
                      const xmlChar *uri, int nb_ns, const xmlChar **ns, int nb_attr, int nb_def,
                      const xmlChar **attrs)
{
	struct s3_doc *d = ctx;
	const char *name = (const char *)localname;

	if (d->failed)
		return;
	if (d->depth == 0) {
		if (is(name, "Error")) {
			d->out->is_error = true;
			d->root_ok = true;
		} else if (is(name, root_name(d->kind)) ||
		           (d->kind == S3_DOC_COPY && is(name, "CopyPartResult"))) {
			d->root_ok = true;
		} else {
			char why[96];

			snprintf(why, sizeof(why), "unexpected document <%.40s>", name);
			doc_fail(d, why);
			return;
		}
	}
	if (d->depth >= S3_XML_DEPTH) {
		/* No S3 reply nests this deep: stop before libxml2's own stack grows. */
		doc_fail(d, "the document nests deeper than any S3 reply");
		return;
	}
	snprintf(d->path[d->depth], S3_XML_NAME, "%s", name);
	d->depth++;
	d->text_len = 0;
	d->text_overflow = false;
	if (d->text)
		d->text[0] = '\0';
}

static void sax_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
	struct s3_doc *d = ctx;

	if (d->failed)
		return;
	end_element(d, (const char *)localname);
	d->depth--;
	d->text_len = 0;
	if (d->text)
		d->text[0] = '\0';
}

static void sax_chars(void *ctx, const xmlChar *ch, int len)
{
	struct s3_doc *d = ctx;
	size_t n = (size_t)len;

	if (d->failed || d->depth < 2)
		return;
	if (d->text_len + n > S3_XML_TEXT_MAX) {
		d->text_overflow = true;
		n = S3_XML_TEXT_MAX - d->text_len;
	}
	if (d->text_len + n + 1 > d->text_cap) {
		size_t cap = d->text_cap ? d->text_cap : 256;
		char *nt;

		while (cap < d->text_len + n + 1)
			cap *= 2;
		nt = realloc(d->text, cap);
		if (!nt) {
			doc_fail(d, "out of memory");
			return;
		}
		d->text = nt;
		d->text_cap = cap;
	}
	memcpy(d->text + d->text_len, ch, n);
	d->text_len += n;
	d->text[d->text_len] = '\0';
}

static void sax_error(void *ctx, const char *msg, ...)
{
	/* Reported through xmlParseChunk()'s return value; keep stderr quiet. */
}

static void sax_serror(void *ctx, xmlErrorPtr err)
{
}

/* ---- public ---- */

struct s3_doc *s3_doc_new(enum s3_doc_kind kind, struct s3_doc_out *out)
{
	struct s3_doc *d = calloc(1, sizeof(*d));
	xmlSAXHandler sax;

	if (!d)
		return NULL;
	d->kind = kind;
	d->out = out;
	memset(&sax, 0, sizeof(sax));
	sax.initialized = XML_SAX2_MAGIC;
	sax.startElementNs = sax_start;
	sax.endElementNs = sax_end;
	sax.characters = sax_chars;
	sax.cdataBlock = sax_chars;
	sax.error = sax_error;
	sax.fatalError = sax_error;
	sax.warning = sax_error;
	sax.serror = sax_serror;
	d->ctx = xmlCreatePushParserCtxt(&sax, d, NULL, 0, NULL);
	if (!d->ctx) {
		free(d);
		return NULL;
	}
	/* Never fetch anything from the network, never expand external entities. */
	xmlCtxtUseOptions(d->ctx, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	return d;
}

int s3_doc_feed(struct s3_doc *d, const void *data, size_t len)
{
	if (d->failed)
		return -1;
	while (len) {
		int n = len > (1u << 30) ? (1 << 30) : (int)len;

		if (xmlParseChunk(d->ctx, data, n, 0) != 0 && !d->failed)
			doc_fail(d, "malformed XML");
		if (d->failed)
			return -1;
		data = (const char *)data + n;
		len -= (size_t)n;
	}
	return 0;
}

int s3_doc_finish(struct s3_doc *d, char *why, size_t why_len)
{
	/* the request's classify callback finishes it, then the result does again */
	if (!d->failed && !d->finished && xmlParseChunk(d->ctx, NULL, 0, 1) != 0)
		doc_fail(d, "malformed or truncated XML");
	d->finished = true;
	if (!d->failed && !d->root_ok)
		doc_fail(d, "empty document");
	if (!d->failed && d->kind == S3_DOC_INITIATE && !d->out->is_error && !d->out->upload_id)
		doc_fail(d, "no UploadId in the reply");
	if (d->failed) {
		if (why && why_len)
			snprintf(why, why_len, "%s", d->why);
		return -1;
	}
	return 0;
}

void s3_doc_free(struct s3_doc *d)
{
	if (!d)
		return;
	if (d->ctx) {
		if (d->ctx->myDoc)
			xmlFreeDoc(d->ctx->myDoc);
		xmlFreeParserCtxt(d->ctx);
	}
	free(d->entry.key);
	free(d->up_key);
	free(d->up_id);
	free(d->text);
	free(d);
}

void s3_doc_out_free(struct s3_doc_out *out)
{
	free(out->upload_id);
	out->upload_id = NULL;
	free(out->parts);
	out->parts = NULL;
	out->n_parts = 0;
	s3_upload_entries_free(out->uploads, out->n_uploads);
	out->uploads = NULL;
	out->n_uploads = 0;
	free(out->next_marker);
	out->next_marker = NULL;
	free(out->next_marker2);
	out->next_marker2 = NULL;
}

int s3_xml_parse_error(const char *body, size_t len, struct s3_error *err)
{
	struct s3_doc_out out;
	struct s3_doc *d;
	int ret = -1;

	if (!body || !len)
		return -1;
	memset(&out, 0, sizeof(out));
	out.error = *err;
	d = s3_doc_new(S3_DOC_ERROR, &out);
	if (!d)
		return -1;
	if (s3_doc_feed(d, body, len) == 0 && s3_doc_finish(d, NULL, 0) == 0 && out.is_error) {
		ret = 0;
	}
	/* Keep what was parsed even from a truncated error body. */
	if (out.is_error) {
		if (out.error.code[0])
			memcpy(err->code, out.error.code, sizeof(err->code));
		if (out.error.message[0])
			memcpy(err->message, out.error.message, sizeof(err->message));
		if (out.error.request_id[0])
			memcpy(err->request_id, out.error.request_id, sizeof(err->request_id));
		if (out.error.region[0])
			memcpy(err->region, out.error.region, sizeof(err->region));
		ret = out.error.code[0] ? 0 : ret;
	}
	s3_doc_free(d);
	return ret;
}
