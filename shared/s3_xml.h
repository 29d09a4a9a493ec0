/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3_xml: private to the S3 client (and its unit tests). Streaming parsers
 * for the XML documents S3 answers with, built on libxml2's SAX2 push
 * parser: bytes are fed as they arrive and no document tree is ever built,
 * so a listing page costs memory for its entries only, bounded by max-keys.
 */
#ifndef HPCOPS_S3_XML_H
#define HPCOPS_S3_XML_H

#include <stdbool.h>
#include <stddef.h>

#include "s3.h"

/** Which response document a parser expects. */
enum s3_doc_kind {
	S3_DOC_ERROR = 0,    /* <Error> */
	S3_DOC_LIST_OBJECTS, /* <ListBucketResult> (ListObjectsV2) */
	S3_DOC_INITIATE,     /* <InitiateMultipartUploadResult> */
	S3_DOC_COMPLETE,     /* <CompleteMultipartUploadResult> */
	S3_DOC_COPY,         /* <CopyObjectResult> / <CopyPartResult> */
	S3_DOC_LIST_PARTS,   /* <ListPartsResult> */
	S3_DOC_LIST_UPLOADS, /* <ListMultipartUploadsResult> */
	S3_DOC_DELETE,       /* <DeleteResult> */
};

/**
 * What a parse found. The caller zeroes it and sets the inputs; malloc'd
 * outputs belong to the caller afterwards (free with s3_doc_out_free()).
 */
struct s3_doc_out {
	/* inputs */
	struct s3_list_page *page; /* LIST_OBJECTS: where entries go (caller zeroed it) */
	size_t max_entries;        /* LIST_OBJECTS/PARTS/UPLOADS: more is a protocol error */

	/* <Error> as the root of any document (S3 sends some in 200 replies) */
	bool is_error;
	struct s3_error error; /* code, message, request_id, region filled */

	/* INITIATE */
	char *upload_id;
	/* COMPLETE, COPY: the ETag without quotes ("" when the server sent none) */
	char etag[80];
	/* LIST_PARTS */
	struct s3_part *parts;
	size_t n_parts;
	/* LIST_UPLOADS */
	struct s3_upload_entry *uploads;
	size_t n_uploads;
	/* LIST_PARTS / LIST_UPLOADS: next page markers when truncated */
	bool truncated;
	char *next_marker;  /* NextPartNumberMarker / NextKeyMarker */
	char *next_marker2; /* NextUploadIdMarker */
	/* DELETE */
	size_t n_deleted;
	size_t n_failed;
	char first_failed_key[256];
	char first_failed_code[64];
};

struct s3_doc;

/** s3_doc_new() - a push parser for one document of @kind into @out (borrowed). NULL on ENOMEM. */
struct s3_doc *s3_doc_new(enum s3_doc_kind kind, struct s3_doc_out *out);

/** s3_doc_feed() - feed the next bytes. 0, or -1 once the document is malformed. */
int s3_doc_feed(struct s3_doc *d, const void *data, size_t len);

/**
 * s3_doc_finish() - end of the body. Returns 0 if a whole document of the
 * expected kind (or an <Error>) was read, else -1 with a reason in @why.
 * Calling it again gives the same answer (the parse is ended once).
 */
int s3_doc_finish(struct s3_doc *d, char *why, size_t why_len);

/** s3_doc_free() - free the parser (not @out). NULL allowed. */
void s3_doc_free(struct s3_doc *d);

/** s3_doc_out_free() - free the malloc'd outputs in @out (not @out->page). */
void s3_doc_out_free(struct s3_doc_out *out);

/**
 * s3_xml_parse_error() - parse an error body (@len bytes) into @err's code,
 * message, request_id and region (fields the body lacks are left as they
 * are). Returns 0 if the body was an <Error> document, -1 otherwise.
 */
int s3_xml_parse_error(const char *body, size_t len, struct s3_error *err);

/** s3_xml_parse_time() - ISO 8601 "2009-10-12T17:50:30.000Z" to time_t; 0 if malformed. */
time_t s3_xml_parse_time(const char *s, size_t len);

/**
 * s3_xml_region_from_endpoint() - "bucket.s3.us-west-2.amazonaws.com" or
 * "s3-eu-west-1.amazonaws.com" -> the region, into @out; 0 or -1.
 */
int s3_xml_region_from_endpoint(const char *endpoint, char *out, size_t len);

#endif
