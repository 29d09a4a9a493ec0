/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3_request: private to the S3 client (s3_ops.c, s3_paginator.c and their
 * unit tests). One struct s3_req per call: URL and headers built here,
 * SigV4 per attempt from a credentials snapshot, response headers parsed,
 * an XML reply streamed into its parser, and the verdict on every attempt
 * (retry or stand) given to the transfer engine, which owns the one retry
 * policy. A request is freed by whoever ran it (s3_req_free), or by the
 * async completion.
 */
#ifndef HPCOPS_S3_REQUEST_H
#define HPCOPS_S3_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "s3.h"
#include "s3_xml.h"
#include "xfer.h"

#define S3_MAX_HEADERS 16

struct s3_client {
	char *region;
	char *bucket;
	char *url_prefix;  /* "http://h:p/base/bucket" or "http://bucket.h:p/base" */
	char *path_prefix; /* "/base/bucket" or "/base": what the signed path starts with */
	char host[300];    /* Host header for url_prefix */
	bool no_sign;
	struct creds_provider *creds;
	struct xfer_engine *xfer;
	/* Headers every request or every new object carries (s3_config). */
	char *storage_class;
	char *sse;
	char *sse_kms_key_id;
	char *expected_bucket_owner;
	bool requester_pays;
	enum s3_checksum checksum;
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
	char checksum[24]; /* x-amz-checksum-* value of the body (base64) */
	char range[64];
	char if_match[96];
	char copy_range[64];
	char meta_mtime[48]; /* x-amz-meta-mtime value */
	char *copy_source;
	char *body_owned; /* a body built here (XML), freed with the request */
	bool creds_failed;

	/* GET: the range asked for, checked against what comes back */
	bool is_get;
	uint64_t want_off;
	uint64_t want_len; /* 0 = to the end */
	bool range_from_zero;
	bool reply_bad; /* the last attempt's reply did not match (reason in bad_why) */
	char bad_why[160];

	/* response headers of interest */
	struct s3_object_info info;
	bool have_range; /* Content-Range was given */
	uint64_t cr_first, cr_last, cr_total;
	bool cr_total_known;
	bool have_length;
	uint64_t content_length;
	char region[32];
	char resp_checksum[24]; /* the server's x-amz-checksum-<ours>, if any */

	/* verdict bookkeeping across attempts */
	int protocol_retries;
	int token_retries;

	/* streamed XML reply */
	enum s3_doc_kind doc_kind;
	struct s3_doc *doc;
	bool doc_lost; /* a retry could not make a new parser (out of memory) */
	struct s3_doc_out out;

	/* streamed GET */
	const struct s3_sink *sink;
	uint64_t sink_bytes;

	/* async completion */
	s3_done_fn done;
	void *done_user;
	char *etag_out;
};

/** s3_set_err() - fill @e: @code and a formatted message, the rest zeroed. */
void s3_set_err(struct s3_error *e, enum s3_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** s3_err_from_code() - the enum for an S3 error code, or from the HTTP status. */
enum s3_err s3_err_from_code(const char *code, long status, const char *method);

/**
 * s3_req_new() - a request for @key (NULL = the bucket) with @query ("" or
 * NULL for none, already encoded). NULL on allocation failure.
 */
struct s3_req *s3_req_new(struct s3_client *c, const char *method, const char *op, const char *key,
                          const char *query);

/** s3_req_free() - free @r and everything it owns; NULL is fine. */
void s3_req_free(struct s3_req *r);

/** s3_req_header() - send "name: value" (both borrowed until the request is freed). */
void s3_req_header(struct s3_req *r, const char *name, const char *value);

/** s3_req_new_object() - the headers a new object carries: @m's metadata,
 * content type, and the client's storage class and encryption. */
void s3_req_new_object(struct s3_req *r, const struct s3_obj_meta *m);

/** s3_req_body() - @len bytes of @data as the body, with the client's checksum header. */
void s3_req_body(struct s3_req *r, const void *data, size_t len);

/** s3_req_expect_doc() - expect an XML document of @kind in a 2xx reply. 0 or -1 (ENOMEM). */
int s3_req_expect_doc(struct s3_req *r, enum s3_doc_kind kind);

/** s3_req_get_range() - make @r a GET of [@off, @off + @len) (@len 0: to the end), checked. */
void s3_req_get_range(struct s3_req *r, uint64_t off, uint64_t len);

/** s3_req_run() - run @r to completion on the calling thread; fills @err. 0 or -1. */
int s3_req_run(struct s3_req *r, struct s3_error *err);

/**
 * s3_req_submit() - start @r; @done runs on the engine thread, then @r is
 * freed. Returns 0, or -1 with @err filled (@r freed, @done not called).
 */
int s3_req_submit(struct s3_req *r, s3_done_fn done, void *user, struct s3_error *err);

/** s3_req_result() - @err from the finished request @r. */
void s3_req_result(struct s3_req *r, struct s3_error *err);

#endif
