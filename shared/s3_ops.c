/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3_ops: the S3 operations of s3.h, each a request built on s3_request.h:
 * objects (head, get, put, copy, delete), listings, and multipart uploads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "s3.h"
#include "s3_paginator.h"
#include "s3_request.h"
#include "sigv4.h"
#include "util.h"

/* ---- HEAD / GET ---- */

int s3_head_object(struct s3_client *c, const char *key, struct s3_object_info *info,
                   struct s3_error *err)
{
	struct s3_req *r = s3_req_new(c, "HEAD", "HeadObject", key, NULL);
	int ret;

	if (!r) {
		s3_set_err(err, S3_ERR_NOMEM, "HeadObject: out of memory");
		return -1;
	}
	ret = s3_req_run(r, err);
	if (ret == 0 && info)
		*info = r->info;
	s3_req_free(r);
	return ret;
}

int s3_head_object_async(struct s3_client *c, const char *key, s3_done_fn done, void *user,
                         struct s3_error *err)
{
	struct s3_req *r;

	if (!done) {
		s3_set_err(err, S3_ERR_INVALID_ARGUMENT, "HeadObject: no completion callback");
		return -1;
	}
	r = s3_req_new(c, "HEAD", "HeadObject", key, NULL);
	if (!r) {
		s3_set_err(err, S3_ERR_NOMEM, "HeadObject: out of memory");
		return -1;
	}
	return s3_req_submit(r, done, user, err);
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
		s3_set_err(err, S3_ERR_INVALID_ARGUMENT,
		           "GetObject: the range of %llu bytes at offset %llu runs past 2^64",
		           (unsigned long long)len, (unsigned long long)off);
		return NULL;
	}
	if (if_match && strlen(if_match) + 3 > sizeof(r->if_match)) {
		s3_set_err(err, S3_ERR_INVALID_ARGUMENT,
		           "GetObject: an If-Match ETag of %zu characters is longer than S3's",
		           strlen(if_match));
		return NULL;
	}
	r = s3_req_new(c, "GET", "GetObject", key, NULL);
	if (!r) {
		s3_set_err(err, S3_ERR_NOMEM, "GetObject: out of memory");
		return NULL;
	}
	s3_req_get_range(r, off, len);
	if (if_match && if_match[0]) {
		/* S3 compares quoted ETags; callers keep them unquoted. */
		snprintf(r->if_match, sizeof(r->if_match), "\"%s\"", if_match);
		s3_req_header(r, "If-Match", r->if_match);
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
		s3_set_err(err, S3_ERR_INVALID_ARGUMENT,
		           "GetObject: a range of %llu bytes does not fit a buffer of %zu",
		           (unsigned long long)len, cap);
		return -1;
	}
	r = get_req_new(c, key, off, len, if_match, err);
	if (!r)
		return -1;
	r->x.resp_buf = buf;
	r->x.resp_cap = len ? (size_t)len : cap;
	ret = s3_req_run(r, err);
	if (got && ret == 0)
		*got = r->x.result.body_len;
	if (ret == 0 && info)
		*info = r->info;
	s3_req_free(r);
	return ret;
}

int s3_get_object_async(struct s3_client *c, const char *key, uint64_t off, uint64_t len,
                        const char *if_match, void *buf, size_t cap, s3_done_fn done, void *user,
                        struct s3_error *err)
{
	struct s3_req *r;

	if (len > cap || !buf || !cap || !done) {
		s3_set_err(err, S3_ERR_INVALID_ARGUMENT,
		           "GetObject: a range of %llu bytes does not fit a buffer of %zu",
		           (unsigned long long)len, cap);
		return -1;
	}
	r = get_req_new(c, key, off, len, if_match, err);
	if (!r)
		return -1;
	r->x.resp_buf = buf;
	r->x.resp_cap = len ? (size_t)len : cap;
	return s3_req_submit(r, done, user, err);
}

static int sink_write_cb(void *user, const void *data, size_t len)
{
	struct s3_req *r = user;

	r->sink_bytes += len;
	return r->sink->write(r->sink->user, data, len);
}

static void sink_reset_cb(void *user)
{
	struct s3_req *r = user;

	r->sink_bytes = 0;
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
		s3_set_err(err, S3_ERR_INVALID_ARGUMENT, "GetObject: no sink to write to");
		return -1;
	}
	r = get_req_new(c, key, off, len, if_match, err);
	if (!r)
		return -1;
	r->sink = sink;
	r->x.write = sink_write_cb;
	/* Without a reset the sink cannot take the body twice: no retry after bytes. */
	r->x.write_reset = sink->reset ? sink_reset_cb : NULL;
	ret = s3_req_run(r, err);
	if (ret == 0 && info)
		*info = r->info;
	s3_req_free(r);
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
		s3_set_err(err, S3_ERR_INVALID_ARGUMENT,
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
	r = s3_req_new(c, "GET", "ListObjectsV2", NULL, q.data);
	if (!r)
		goto nomem;
	r->out.page = page;
	r->out.max_entries = p->max_keys ? (size_t)p->max_keys : 1000;
	if (s3_req_expect_doc(r, S3_DOC_LIST_OBJECTS))
		goto nomem;
	ret = s3_req_run(r, err);
	if (ret == 0 && page->truncated && !page->next_token) {
		s3_set_err(err, S3_ERR_PROTOCOL,
		           "ListObjectsV2: truncated page without NextContinuationToken");
		ret = -1;
	}
	goto out;
nomem:
	s3_set_err(err, S3_ERR_NOMEM, "ListObjectsV2: out of memory");
out:
	if (ret)
		s3_list_page_free(page);
	s3_req_free(r);
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
	struct s3_req *r = s3_req_new(c, "PUT", "PutObject", key, NULL);
	int ret;

	if (!r) {
		s3_set_err(err, S3_ERR_NOMEM, "PutObject: out of memory");
		return -1;
	}
	s3_req_new_object(r, meta);
	s3_req_body(r, data, len);
	ret = s3_req_run(r, err);
	if (ret == 0 && etag_out)
		memcpy(etag_out, r->info.etag, sizeof(r->info.etag));
	s3_req_free(r);
	return ret;
}

int s3_put_object_async(struct s3_client *c, const char *key, const void *data, size_t len,
                        char *etag_out, s3_done_fn done, void *user, struct s3_error *err)
{
	struct s3_req *r;

	if (!done) {
		s3_set_err(err, S3_ERR_INVALID_ARGUMENT, "PutObject: no completion callback");
		return -1;
	}
	r = s3_req_new(c, "PUT", "PutObject", key, NULL);
	if (!r) {
		s3_set_err(err, S3_ERR_NOMEM, "PutObject: out of memory");
		return -1;
	}
	s3_req_new_object(r, NULL);
	s3_req_body(r, data, len);
	r->etag_out = etag_out;
	return s3_req_submit(r, done, user, err);
}

int s3_create_multipart(struct s3_client *c, const char *key, char **upload_id,
                        struct s3_error *err)
{
	return s3_create_multipart_meta(c, key, NULL, upload_id, err);
}

int s3_create_multipart_meta(struct s3_client *c, const char *key, const struct s3_obj_meta *meta,
                             char **upload_id, struct s3_error *err)
{
	struct s3_req *r = s3_req_new(c, "POST", "CreateMultipartUpload", key, "uploads");
	int ret;

	*upload_id = NULL;
	if (!r || s3_req_expect_doc(r, S3_DOC_INITIATE)) {
		s3_req_free(r);
		s3_set_err(err, S3_ERR_NOMEM, "CreateMultipartUpload: out of memory");
		return -1;
	}
	s3_req_new_object(r, meta);
	/* The parts will carry checksums: the upload says of which kind. */
	if (c->checksum == S3_CHECKSUM_CRC32C)
		s3_req_header(r, "x-amz-checksum-algorithm", "CRC32C");
	else if (c->checksum == S3_CHECKSUM_CRC64NVME)
		s3_req_header(r, "x-amz-checksum-algorithm", "CRC64NVME");
	/* A second upload for a lost reply would be an orphan: the caller decides. */
	r->x.not_idempotent = true;
	ret = s3_req_run(r, err);
	if (ret == 0) {
		*upload_id = r->out.upload_id;
		r->out.upload_id = NULL;
	}
	s3_req_free(r);
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
	r = s3_req_new(c, method, op, key, q);
	free(q);
	return r;
}

static bool part_args_ok(const char *op, const char *upload_id, int part_no, struct s3_error *err)
{
	if (!upload_id || !upload_id[0]) {
		s3_set_err(err, S3_ERR_INVALID_ARGUMENT, "%s: no upload id", op);
		return false;
	}
	if (part_no < 1 || part_no > 10000) {
		s3_set_err(err, S3_ERR_INVALID_ARGUMENT, "%s: part number %d is outside 1..10000",
		           op, part_no);
		return false;
	}
	return true;
}

/* An UploadPart request; @out gets the part's number, size and checksum now. */
static struct s3_req *upload_part_req(struct s3_client *c, const char *key, const char *upload_id,
                                      int part_no, const void *data, size_t len,
                                      struct s3_part *out)
{
	struct s3_req *r = part_req(c, "PUT", "UploadPart", key, upload_id, part_no);

	if (!r)
		return NULL;
	s3_req_body(r, data, len);
	memset(out, 0, sizeof(*out));
	out->part_no = part_no;
	out->size = len;
	snprintf(out->checksum, sizeof(out->checksum), "%s", r->checksum);
	return r;
}

int s3_upload_part(struct s3_client *c, const char *key, const char *upload_id, int part_no,
                   const void *data, size_t len, struct s3_part *out, struct s3_error *err)
{
	struct s3_req *r;
	int ret;

	if (!part_args_ok("UploadPart", upload_id, part_no, err))
		return -1;
	r = upload_part_req(c, key, upload_id, part_no, data, len, out);
	if (!r) {
		s3_set_err(err, S3_ERR_NOMEM, "UploadPart: out of memory");
		return -1;
	}
	ret = s3_req_run(r, err);
	if (ret == 0) {
		if (!r->info.etag[0]) {
			s3_set_err(err, S3_ERR_PROTOCOL, "UploadPart: no ETag in the reply");
			ret = -1;
		} else {
			memcpy(out->etag, r->info.etag, sizeof(r->info.etag));
		}
	}
	s3_req_free(r);
	return ret;
}

int s3_upload_part_async(struct s3_client *c, const char *key, const char *upload_id, int part_no,
                         const void *data, size_t len, struct s3_part *out, s3_done_fn done,
                         void *user, struct s3_error *err)
{
	struct s3_req *r;

	if (!part_args_ok("UploadPart", upload_id, part_no, err))
		return -1;
	if (!done || !out) {
		s3_set_err(err, S3_ERR_INVALID_ARGUMENT, "UploadPart: no callback or part record");
		return -1;
	}
	r = upload_part_req(c, key, upload_id, part_no, data, len, out);
	if (!r) {
		s3_set_err(err, S3_ERR_NOMEM, "UploadPart: out of memory");
		return -1;
	}
	r->etag_out = out->etag;
	return s3_req_submit(r, done, user, err);
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
	s3_req_header(r, "x-amz-copy-source", r->copy_source);
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
		s3_set_err(err, S3_ERR_INVALID_ARGUMENT, "UploadPartCopy: empty range");
		return -1;
	}
	if (off > UINT64_MAX - len + 1) {
		s3_set_err(err, S3_ERR_INVALID_ARGUMENT,
		           "UploadPartCopy: the range of %llu bytes at offset %llu runs past 2^64",
		           (unsigned long long)len, (unsigned long long)off);
		return -1;
	}
	r = part_req(c, "PUT", "UploadPartCopy", key, upload_id, part_no);
	if (!r || set_copy_source(r, src_key) || s3_req_expect_doc(r, S3_DOC_COPY)) {
		s3_req_free(r);
		s3_set_err(err, S3_ERR_NOMEM, "UploadPartCopy: out of memory");
		return -1;
	}
	snprintf(r->copy_range, sizeof(r->copy_range), "bytes=%llu-%llu", (unsigned long long)off,
	         (unsigned long long)(off + len - 1));
	s3_req_header(r, "x-amz-copy-source-range", r->copy_range);
	ret = s3_req_run(r, err);
	if (ret == 0) {
		if (!r->out.etag[0]) {
			s3_set_err(err, S3_ERR_PROTOCOL, "UploadPartCopy: no ETag in the reply");
			ret = -1;
		} else if (etag_out) {
			memcpy(etag_out, r->out.etag, sizeof(r->out.etag));
		}
	}
	s3_req_free(r);
	return ret;
}

int s3_complete_multipart(struct s3_client *c, const char *key, const char *upload_id,
                          const struct s3_part *parts, size_t n, char *etag_out,
                          struct s3_error *err)
{
	const char *ck = c->checksum == S3_CHECKSUM_CRC32C      ? "ChecksumCRC32C"
	                 : c->checksum == S3_CHECKSUM_CRC64NVME ? "ChecksumCRC64NVME"
	                                                        : NULL;
	struct util_buf b = {.max = 16u << 20};
	struct s3_req *r = NULL;
	int ret = -1;

	if (!upload_id || !upload_id[0] || !n || n > 10000) {
		s3_set_err(
		    err, S3_ERR_INVALID_ARGUMENT,
		    "CompleteMultipartUpload: needs an upload id and 1..10000 parts (got %zu)", n);
		return -1;
	}
	if (util_buf_puts(&b, "<CompleteMultipartUpload>"))
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		if (util_buf_printf(&b, "<Part><PartNumber>%d</PartNumber><ETag>\"%s\"</ETag>",
		                    parts[i].part_no, parts[i].etag))
			goto nomem;
		if (ck && parts[i].checksum[0] &&
		    util_buf_printf(&b, "<%s>%s</%s>", ck, parts[i].checksum, ck))
			goto nomem;
		if (util_buf_puts(&b, "</Part>"))
			goto nomem;
	}
	if (util_buf_puts(&b, "</CompleteMultipartUpload>"))
		goto nomem;
	r = part_req(c, "POST", "CompleteMultipartUpload", key, upload_id, 0);
	if (!r || s3_req_expect_doc(r, S3_DOC_COMPLETE))
		goto nomem;
	r->body_owned = b.data;
	r->x.body = b.data;
	r->x.body_len = b.len;
	b.data = NULL;
	util_sha256_hex(r->x.body, r->x.body_len, r->sha);
	r->payload_hash = r->sha;
	s3_req_header(r, "Content-Type", "application/xml");
	/* A retry after a lost reply meets NoSuchUpload: the caller verifies instead. */
	r->x.not_idempotent = true;
	ret = s3_req_run(r, err);
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
	s3_set_err(err, S3_ERR_NOMEM, "CompleteMultipartUpload: out of memory");
out:
	util_buf_free(&b);
	s3_req_free(r);
	return ret;
}

int s3_abort_multipart(struct s3_client *c, const char *key, const char *upload_id,
                       struct s3_error *err)
{
	struct s3_req *r;
	int ret;

	if (!upload_id || !upload_id[0]) {
		s3_set_err(err, S3_ERR_INVALID_ARGUMENT, "AbortMultipartUpload: no upload id");
		return -1;
	}
	r = part_req(c, "DELETE", "AbortMultipartUpload", key, upload_id, 0);
	if (!r) {
		s3_set_err(err, S3_ERR_NOMEM, "AbortMultipartUpload: out of memory");
		return -1;
	}
	ret = s3_req_run(r, err);
	s3_req_free(r);
	return ret;
}

/* ---- paged listings: ListParts, ListMultipartUploads ---- */

struct parts_pages {
	const char *upload_id;
	struct s3_part *all;
	size_t n;
};

static int parts_query(void *user, struct util_buf *q, const char *marker, const char *marker2)
{
	struct parts_pages *pp = user;

	return (marker && query_add(q, "part-number-marker", marker)) ||
	       query_add(q, "uploadId", pp->upload_id);
}

static int parts_collect(void *user, struct s3_doc_out *out, struct s3_error *err)
{
	struct parts_pages *pp = user;
	struct s3_part *na;

	if (pp->n + out->n_parts > 10000) {
		s3_set_err(err, S3_ERR_PROTOCOL, "ListParts: more than 10000 parts");
		return -1;
	}
	na = realloc(pp->all, (pp->n + out->n_parts + 1) * sizeof(*na));
	if (!na) {
		s3_set_err(err, S3_ERR_NOMEM, "ListParts: out of memory");
		return -1;
	}
	pp->all = na;
	if (out->n_parts)
		memcpy(pp->all + pp->n, out->parts, out->n_parts * sizeof(*na));
	pp->n += out->n_parts;
	return 0;
}

int s3_list_parts(struct s3_client *c, const char *key, const char *upload_id,
                  struct s3_part **parts, size_t *n, struct s3_error *err)
{
	struct parts_pages pp = {.upload_id = upload_id};
	struct s3_pager pg = {
	    .op = "ListParts",
	    .kind = S3_DOC_LIST_PARTS,
	    .key = key,
	    .page_max = 10000,
	    .query = parts_query,
	    .collect = parts_collect,
	};

	*parts = NULL;
	*n = 0;
	if (!upload_id || !upload_id[0]) {
		s3_set_err(err, S3_ERR_INVALID_ARGUMENT, "ListParts: no upload id");
		return -1;
	}
	if (s3_paginate(c, &pg, &pp, err)) {
		free(pp.all);
		return -1;
	}
	*parts = pp.all;
	*n = pp.n;
	return 0;
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

struct uploads_pages {
	const char *prefix;
	struct s3_upload_entry *all;
	size_t n;
};

static int uploads_query(void *user, struct util_buf *q, const char *key_marker,
                         const char *id_marker)
{
	struct uploads_pages *up = user;

	/*
	 * No encoding-type=url here: radosgw encodes the keys but not
	 * NextKeyMarker and does not say EncodingType, so keys could not be
	 * told apart from literal '%' names.
	 */
	return (key_marker && query_add(q, "key-marker", key_marker)) ||
	       (up->prefix && up->prefix[0] && query_add(q, "prefix", up->prefix)) ||
	       (id_marker && query_add(q, "upload-id-marker", id_marker)) ||
	       query_add(q, "uploads", NULL);
}

static int uploads_collect(void *user, struct s3_doc_out *out, struct s3_error *err)
{
	struct uploads_pages *up = user;
	struct s3_upload_entry *na;

	if (up->n + out->n_uploads > S3_MAX_LISTED_UPLOADS) {
		s3_set_err(err, S3_ERR_INVALID_ARGUMENT,
		           "ListMultipartUploads: more than %d uploads under \"%s\"; "
		           "give a longer prefix",
		           S3_MAX_LISTED_UPLOADS, up->prefix ? up->prefix : "");
		return -1;
	}
	na = realloc(up->all, (up->n + out->n_uploads + 1) * sizeof(*na));
	if (!na) {
		s3_set_err(err, S3_ERR_NOMEM, "ListMultipartUploads: out of memory");
		return -1;
	}
	up->all = na;
	if (out->n_uploads)
		memcpy(up->all + up->n, out->uploads, out->n_uploads * sizeof(*na));
	up->n += out->n_uploads;
	/* The strings now belong to @up->all. */
	free(out->uploads);
	out->uploads = NULL;
	out->n_uploads = 0;
	return 0;
}

int s3_list_multipart_uploads(struct s3_client *c, const char *prefix, struct s3_upload_entry **ups,
                              size_t *n, struct s3_error *err)
{
	struct uploads_pages up = {.prefix = prefix};
	struct s3_pager pg = {
	    .op = "ListMultipartUploads",
	    .kind = S3_DOC_LIST_UPLOADS,
	    .key = NULL,
	    .page_max = 1000,
	    .query = uploads_query,
	    .collect = uploads_collect,
	};

	*ups = NULL;
	*n = 0;
	if (s3_paginate(c, &pg, &up, err)) {
		s3_upload_entries_free(up.all, up.n);
		return -1;
	}
	*ups = up.all;
	*n = up.n;
	return 0;
}

/* ---- copy, delete ---- */

int s3_copy_object(struct s3_client *c, const char *src_key, const char *dst_key, char *etag_out,
                   struct s3_error *err)
{
	return s3_copy_object_meta(c, src_key, dst_key, NULL, NULL, etag_out, err);
}

int s3_copy_object_meta(struct s3_client *c, const char *src_key, const char *dst_key,
                        const char *src_if_match, const struct s3_obj_meta *meta, char *etag_out,
                        struct s3_error *err)
{
	struct s3_req *r = s3_req_new(c, "PUT", "CopyObject", dst_key, NULL);
	int ret;

	if (!r || set_copy_source(r, src_key) || s3_req_expect_doc(r, S3_DOC_COPY)) {
		s3_req_free(r);
		s3_set_err(err, S3_ERR_NOMEM, "CopyObject: out of memory");
		return -1;
	}
	if (src_if_match && src_if_match[0]) {
		snprintf(r->if_match, sizeof(r->if_match), "\"%s\"", src_if_match);
		s3_req_header(r, "x-amz-copy-source-if-match", r->if_match);
	}
	if (meta) {
		s3_req_header(r, "x-amz-metadata-directive", "REPLACE");
		s3_req_new_object(r, meta);
	}
	ret = s3_req_run(r, err);
	if (ret == 0 && etag_out)
		memcpy(etag_out, r->out.etag, sizeof(r->out.etag));
	s3_req_free(r);
	return ret;
}

int s3_delete_object(struct s3_client *c, const char *key, struct s3_error *err)
{
	struct s3_req *r = s3_req_new(c, "DELETE", "DeleteObject", key, NULL);
	int ret;

	if (!r) {
		s3_set_err(err, S3_ERR_NOMEM, "DeleteObject: out of memory");
		return -1;
	}
	ret = s3_req_run(r, err);
	/* Deleting what is not there is success in S3; some servers say 404. */
	if (ret && err->err == S3_ERR_NO_SUCH_KEY) {
		memset(err, 0, sizeof(*err));
		ret = 0;
	}
	s3_req_free(r);
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
		memset(err, 0, sizeof(*err));
		return 0;
	}
	if (n > 1000) {
		s3_set_err(err, S3_ERR_INVALID_ARGUMENT,
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
	r = s3_req_new(c, "POST", "DeleteObjects", NULL, "delete");
	if (!r || s3_req_expect_doc(r, S3_DOC_DELETE))
		goto nomem;
	r->body_owned = b.data;
	r->x.body = b.data;
	r->x.body_len = b.len;
	b.data = NULL;
	/* S3 wants Content-MD5 (or a checksum) on DeleteObjects, whatever --upload-checksums says.
	 */
	util_md5_base64(r->x.body, r->x.body_len, r->md5);
	s3_req_header(r, "Content-MD5", r->md5);
	s3_req_header(r, "Content-Type", "application/xml");
	util_sha256_hex(r->x.body, r->x.body_len, r->sha);
	r->payload_hash = r->sha;
	ret = s3_req_run(r, err);
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
	s3_set_err(err, S3_ERR_NOMEM, "DeleteObjects: out of memory");
out:
	util_buf_free(&b);
	s3_req_free(r);
	return ret;
}
