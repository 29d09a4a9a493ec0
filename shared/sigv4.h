/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sigv4: AWS Signature Version 4 in the Authorization header.
 * Two styles: S3 (path signed exactly as sent, x-amz-content-sha256 always
 * sent and signed) and generic (path normalized and URI-encoded, as used by
 * CloudFormation and STS). The signer is pure: no I/O, no global state.
 */
#ifndef HPCOPS_SIGV4_H
#define HPCOPS_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "creds_value.h"

/** Payload hash for S3 requests whose body is not hashed (streamed uploads). */
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/** Hex SHA-256 of the empty string: the payload hash of a request without a body. */
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/** One request header as the caller will send it (name in any case). */
struct sigv4_header {
	const char *name;
	const char *value;
};

struct sigv4_params {
	const char *method; /* "GET", "PUT", ... */
	/*
	 * Path as on the wire, without the query, e.g. "/bucket/a%20b.txt".
	 * S3 style: signed as given (the caller has already encoded it with
	 * util_uri_encode(..., false)); generic style: normalized (if
	 * normalize_path) and URI-encoded once more, per the SigV4 rules.
	 * NULL or "" means "/".
	 */
	const char *path;
	/*
	 * Query as on the wire, without the '?': "list-type=2&prefix=a%2Fb".
	 * Canonicalized here: each key and value is percent-decoded and
	 * re-encoded (SigV4 rules), pairs sorted by key then value, "key"
	 * without '=' becomes "key=". NULL or "" for none.
	 */
	const char *query;
	/*
	 * Headers to sign; must include Host. Names are lower-cased, values
	 * trimmed with inner whitespace runs folded to one space, duplicates
	 * combined with ',' in the given order. x-amz-date, authorization and the
	 * headers this signer adds (x-amz-content-sha256, x-amz-security-token)
	 * are ignored here if present: the signer's own values win.
	 */
	const struct sigv4_header *headers;
	size_t n_headers;
	/*
	 * Hex SHA-256 of the body (util_sha256_hex), SIGV4_UNSIGNED_PAYLOAD, or
	 * NULL for "no body" (SIGV4_EMPTY_SHA256).
	 */
	const char *payload_hash;
	const char *region;  /* "us-east-1" */
	const char *service; /* "s3", "cloudformation", "sts" */
	time_t now;          /* signing time; 0 = time(NULL) */
	/* S3 style: path as given, x-amz-content-sha256 sent and signed. */
	bool s3;
	/* Generic style only: remove "." / ".." segments and repeated '/'. */
	bool normalize_path;
	/* Generic style only: also send and sign x-amz-content-sha256. */
	bool add_content_sha256;
	/* Send the session token unsigned (only a few services want this; tests). */
	bool omit_session_token;
	/* Borrowed. A session_token, if set, is sent as X-Amz-Security-Token. */
	const struct creds *creds;
};

/**
 * What to add to the request. All strings are owned by the result: free
 * with sigv4_result_free(). Send, in addition to the caller's headers:
 *   Authorization: @authorization
 *   X-Amz-Date: @amz_date
 *   x-amz-content-sha256: @content_sha256     (when not "")
 *   X-Amz-Security-Token: @security_token     (when not NULL)
 */
struct sigv4_result {
	char *authorization;
	char amz_date[17];       /* "20130524T000000Z" */
	char content_sha256[65]; /* payload hash sent as a header, or "" */
	char *security_token;    /* a copy of creds->session_token, or NULL */
	char *canonical_request; /* for tests and LOG_DEBUG (contains no secret) */
	char *string_to_sign;    /* for tests */
	char signature[65];      /* hex; already in @authorization */
};

/**
 * sigv4_sign() - sign a request.
 * @p:   what to sign; nothing in it is kept.
 * @out: filled on success; on failure it holds nothing to free.
 * Returns 0, or -1 if an argument is missing (method, region, service,
 * creds with key id and secret, a Host header) or memory ran out.
 * The secret key never leaves this function except as the signature.
 */
int sigv4_sign(const struct sigv4_params *p, struct sigv4_result *out);

/** sigv4_result_free() - free what sigv4_sign() stored in @r; safe twice. */
void sigv4_result_free(struct sigv4_result *r);

/**
 * sigv4_canonical_query() - the canonical query string of @query (see
 * struct sigv4_params.query). Returns a heap string the caller frees, or
 * NULL on allocation failure.
 */
char *sigv4_canonical_query(const char *query);

/**
 * sigv4_canonical_path() - the canonical URI of @path in the given style.
 * Returns a heap string the caller frees, or NULL on allocation failure.
 */
char *sigv4_canonical_path(const char *path, bool s3, bool normalize);

#endif
