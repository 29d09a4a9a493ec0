/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sts: the AWS STS client (query protocol: form-encoded POST with
 * Action=...&Version=2011-06-15, XML results, ErrorResponse parsed into
 * code, message and request id). AssumeRole is signed with SigV4 (generic
 * style, service "sts"); AssumeRoleWithWebIdentity is unsigned, as in AWS.
 * Requests run on the transfer engine (xfer.h) as blocking calls.
 */
#ifndef HPCOPS_STS_H
#define HPCOPS_STS_H

#include <stddef.h>

#include "creds_value.h"

struct xfer_engine;

enum sts_err {
	STS_OK = 0,
	STS_ERR_INVALID,  /* missing or bad argument (message says which) */
	STS_ERR_NETWORK,  /* no response (after the engine's retries) */
	STS_ERR_REMOTE,   /* STS answered with an error: see code/message */
	STS_ERR_PROTOCOL, /* a reply we could not parse */
	STS_ERR_NOMEM,
};

/** An STS failure, fixed-size so it can live on the stack. */
struct sts_error {
	enum sts_err err;
	long http_status;  /* 0 when no response arrived */
	char code[64];     /* e.g. "AccessDenied", "ExpiredTokenException" */
	char message[384]; /* server message or a local explanation; never a secret */
	char request_id[64];
};

/** sts_strerror() - a short English text for @err (static storage). */
const char *sts_strerror(enum sts_err err);

/** sts_error_format() - "AccessDenied: ... (HTTP 403, request id X)" into @buf; returns @buf. */
const char *sts_error_format(const struct sts_error *e, char *buf, size_t len);

/** Where and how to reach STS. */
struct sts_config {
	struct xfer_engine *xfer; /* borrowed; required */
	const char *endpoint;     /* NULL = endpoint_resolve("sts", NULL, region) */
	const char *region;       /* signing region; NULL = "us-east-1" */
	long timeout_ms;          /* per attempt; 0 = 10000 */
};

/** What to assume. Strings are borrowed for the call. */
struct sts_assume_params {
	const char *role_arn;           /* required */
	const char *session_name;       /* NULL = "hpcops-<unix time>" */
	const char *external_id;        /* AssumeRole only; NULL = none */
	int duration_s;                 /* 0 = the role's default (3600) */
	const char *web_identity_token; /* AssumeRoleWithWebIdentity only (a secret) */
};

/**
 * sts_assume_role() - STS AssumeRole signed with @caller.
 * @out: on success, the role's temporary credentials (with expiration);
 *       the caller owns them: creds_clear().
 * Returns 0, or -1 with @err filled.
 */
int sts_assume_role(const struct sts_config *cfg, const struct creds *caller,
                    const struct sts_assume_params *p, struct creds *out, struct sts_error *err);

/**
 * sts_assume_role_with_web_identity() - STS AssumeRoleWithWebIdentity
 * (unsigned; the OIDC token in @p->web_identity_token authenticates).
 * @out as for sts_assume_role(). Returns 0, or -1 with @err filled.
 */
int sts_assume_role_with_web_identity(const struct sts_config *cfg,
                                      const struct sts_assume_params *p, struct creds *out,
                                      struct sts_error *err);

/**
 * sts_parse_error() - fill @err (code, message, request id) from an
 * ErrorResponse document. Exposed for tests and for the CloudFormation
 * client, which shares the query protocol. Returns 0, or -1 if @xml is not
 * an ErrorResponse (then @err->code is "").
 */
int sts_parse_error(const char *xml, size_t len, struct sts_error *err);

/**
 * sts_parse_credentials() - the Credentials of an AssumeRole(WithWebIdentity)
 * Response (@len bytes of @xml) into @out, which the caller then owns
 * (creds_clear()); the RequestId goes to @err->request_id. Exposed for the
 * fuzz harness. Returns 0, or -1 with @err filled (STS_ERR_PROTOCOL) and
 * @out empty.
 */
int sts_parse_credentials(const char *xml, size_t len, struct creds *out, struct sts_error *err);

#endif
