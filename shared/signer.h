/* SPDX-License-Identifier: Apache-2.0 */
/*
 * signer: sign one attempt of an xfer_request with SigV4 and append the
 * headers that carry the signature, for every client (S3, CloudFormation,
 * STS). The caller takes its own snapshot of the credentials (creds_get())
 * and keeps it for the call; nothing here is kept between calls.
 */
#ifndef HPCOPS_SIGNER_H
#define HPCOPS_SIGNER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <curl/curl.h>

#include "sigv4.h"

struct creds;
struct xfer_request;

/** What of one request is signed. Everything is borrowed for the call. */
struct signer_params {
	const char *service; /* "s3", "cloudformation", "sts" */
	const char *region;  /* "us-east-1" */
	/*
	 * S3 style (sigv4.h): @path signed as sent, x-amz-content-sha256 sent
	 * and signed. Otherwise the generic style of the query-protocol
	 * services: path normalized, no x-amz-content-sha256.
	 */
	bool s3;
	const char *path;  /* as on the wire, without the query; NULL = "/" */
	const char *query; /* as on the wire, without the '?'; NULL = none */
	/* The headers to sign, Host among them (struct xfer_header has the same layout). */
	const struct sigv4_header *headers;
	size_t n_headers;
	/* util_sha256_hex() of the body, SIGV4_UNSIGNED_PAYLOAD, or NULL for no body. */
	const char *payload_hash;
	/*
	 * The caller's snapshot of the credentials. NULL signs nothing: the
	 * request goes anonymous (--no-sign-request, unsigned STS calls).
	 */
	const struct creds *creds;
	time_t now; /* signing time; 0 = time(NULL) (tests fix it) */
};

/**
 * signer_sign() - sign @p for @x (its method) and append to @extra, in this
 * order: Authorization, X-Amz-Date, x-amz-content-sha256 (S3 style only)
 * and X-Amz-Security-Token (only when the credentials carry a session
 * token). For use in an xfer_sign_fn: @extra is the list it was given.
 * Returns 0, or -1 with the reason in @x->result.errmsg; headers appended
 * before a failure stay on @extra, which the engine frees either way.
 */
int signer_sign(const struct signer_params *p, struct xfer_request *x, struct curl_slist **extra);

#endif
